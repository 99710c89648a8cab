//! Top-level expressions of the QAPI source language: definitions and directives, checked for
//! shape (allowed keys, value kinds) and turned into raw definitions.

use std::sync::Arc;

use crate::error::{Location, SchemaError};
use crate::model::{Feature, Kind, Pragmas};
use crate::raw::{
    CommandFlags, RawArgs, RawBase, RawBody, RawBranch, RawDef, RawEnumValue, RawFeature,
    RawMember, RawTypeRef,
};

use super::cond::parse_cond;
use super::syntax::{Entry, Node, Pos, Val};

/// Context for messages: the file and what is being parsed.
pub(crate) struct Ctx<'a> {
    pub file: &'a Arc<str>,
    pub what: String,
}

impl Ctx<'_> {
    pub fn loc(&self, pos: Pos) -> Location {
        Location::new(self.file.clone(), pos.line, 0)
    }

    pub fn err(&self, pos: Pos, msg: impl Into<String>) -> SchemaError {
        SchemaError::invalid(&self.loc(pos), self.what.clone(), msg)
    }
}

fn entries<'n>(ctx: &Ctx<'_>, node: &'n Node, what: &str) -> Result<&'n [Entry], SchemaError> {
    match &node.val {
        Val::Dict(e) => Ok(e),
        v => Err(ctx.err(
            node.pos,
            format!("{what} must be an object, found {}", v.describe()),
        )),
    }
}

fn get<'n>(e: &'n [Entry], key: &str) -> Option<&'n Entry> {
    e.iter().find(|x| x.key == key)
}

fn check_keys(
    ctx: &Ctx<'_>,
    e: &[Entry],
    allowed: &[&str],
    required: &[&str],
    pos: Pos,
    what: &str,
) -> Result<(), SchemaError> {
    for x in e {
        if !allowed.contains(&x.key.as_str()) {
            return Err(ctx.err(
                x.key_pos,
                format!(
                    "unknown key '{}' in {what} (allowed: {})",
                    x.key,
                    allowed.join(", ")
                ),
            ));
        }
    }
    for r in required {
        if get(e, r).is_none() {
            return Err(ctx.err(pos, format!("{what} is missing required key '{r}'")));
        }
    }
    Ok(())
}

fn string<'n>(ctx: &Ctx<'_>, node: &'n Node, what: &str) -> Result<&'n str, SchemaError> {
    match &node.val {
        Val::Str(s) => Ok(s),
        v => Err(ctx.err(
            node.pos,
            format!("{what} must be a string, found {}", v.describe()),
        )),
    }
}

fn bool_flag(ctx: &Ctx<'_>, e: Option<&Entry>, legal: bool) -> Result<Option<bool>, SchemaError> {
    let Some(e) = e else { return Ok(None) };
    match e.value.val {
        Val::Bool(b) if b == legal => Ok(Some(b)),
        ref v => Err(ctx.err(
            e.value.pos,
            format!(
                "flag '{}' may only be {legal} (leave it out for the default), found {}",
                e.key,
                match v {
                    Val::Bool(b) => b.to_string(),
                    other => other.describe().to_string(),
                }
            ),
        )),
    }
}

fn cond(ctx: &Ctx<'_>, e: Option<&Entry>) -> Result<Option<crate::model::Cond>, SchemaError> {
    let Some(e) = e else { return Ok(None) };
    parse_cond(&e.value)
        .map(Some)
        .map_err(|m| ctx.err(e.value.pos, format!("bad 'if': {m}")))
}

fn features(ctx: &Ctx<'_>, e: Option<&Entry>) -> Result<Vec<RawFeature>, SchemaError> {
    let Some(e) = e else { return Ok(Vec::new()) };
    let Val::List(items) = &e.value.val else {
        return Err(ctx.err(
            e.value.pos,
            format!(
                "'features' must be a list of feature names or {{'name': ..., 'if': ...}} \
                 objects, found {}",
                e.value.val.describe()
            ),
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let feature = match &it.val {
            Val::Str(s) => Feature {
                name: s.clone(),
                cond: None,
            },
            Val::Dict(fe) => {
                check_keys(ctx, fe, &["name", "if"], &["name"], it.pos, "feature")?;
                let name = get(fe, "name").map(|n| string(ctx, &n.value, "feature 'name'"));
                let name = match name {
                    Some(n) => n?.to_string(),
                    None => String::new(),
                };
                Feature {
                    name,
                    cond: cond(ctx, get(fe, "if"))?,
                }
            }
            v => {
                return Err(ctx.err(
                    it.pos,
                    format!(
                        "a feature must be a name or an object with 'name' and 'if', found {}",
                        v.describe()
                    ),
                ))
            }
        };
        out.push(RawFeature {
            feature,
            loc: ctx.loc(it.pos),
        });
    }
    Ok(out)
}

/// A type reference: `'Name'` or `['Name']`.
fn type_ref(ctx: &Ctx<'_>, node: &Node, what: &str) -> Result<RawTypeRef, SchemaError> {
    match &node.val {
        Val::Str(s) => Ok(RawTypeRef::Name(s.clone())),
        Val::List(items) => {
            if items.len() != 1 {
                return Err(ctx.err(
                    node.pos,
                    format!(
                        "{what}: an array type must be a list of exactly one type name, found \
                         {} elements",
                        items.len()
                    ),
                ));
            }
            match &items[0].val {
                Val::Str(s) => Ok(RawTypeRef::Array(s.clone())),
                v => Err(ctx.err(
                    items[0].pos,
                    format!(
                        "{what}: array element must be a type name, found {} (arrays of \
                         arrays are not expressible)",
                        v.describe()
                    ),
                )),
            }
        }
        v => Err(ctx.err(
            node.pos,
            format!(
                "{what} must be a type name or a one-element list ['TypeName'], found {}",
                v.describe()
            ),
        )),
    }
}

/// MEMBERS: `{'name': TYPE, '*opt': {'type': TYPE, 'if': ..., 'features': [...]}}`.
fn members(ctx: &Ctx<'_>, node: &Node, what: &str) -> Result<Vec<RawMember>, SchemaError> {
    let e = entries(ctx, node, what)?;
    let mut out = Vec::with_capacity(e.len());
    for x in e {
        let (name, optional) = match x.key.strip_prefix('*') {
            Some(n) => (n.to_string(), true),
            None => (x.key.clone(), false),
        };
        let mwhat = format!("member '{name}'");
        let (ty, c, f) = match &x.value.val {
            Val::Dict(me) => {
                check_keys(
                    ctx,
                    me,
                    &["type", "if", "features"],
                    &["type"],
                    x.value.pos,
                    &mwhat,
                )?;
                let t = match get(me, "type") {
                    Some(t) => type_ref(ctx, &t.value, &format!("type of {mwhat}"))?,
                    None => RawTypeRef::Name(String::new()),
                };
                (
                    t,
                    cond(ctx, get(me, "if"))?,
                    features(ctx, get(me, "features"))?,
                )
            }
            _ => (
                type_ref(ctx, &x.value, &format!("type of {mwhat}"))?,
                None,
                Vec::new(),
            ),
        };
        out.push(RawMember {
            name,
            optional,
            ty,
            cond: c,
            features: f,
            since: None,
            loc: ctx.loc(x.key_pos),
        });
    }
    Ok(out)
}

/// Union or alternate branches: `{'name': TYPE | {'type': TYPE, 'if': ...}}`.
fn branches(ctx: &Ctx<'_>, node: &Node, what: &str) -> Result<Vec<RawBranch>, SchemaError> {
    let e = entries(ctx, node, what)?;
    let mut out = Vec::with_capacity(e.len());
    for x in e {
        if x.key.starts_with('*') {
            return Err(ctx.err(
                x.key_pos,
                format!("branch '{}' cannot be optional (remove the '*')", x.key),
            ));
        }
        let bwhat = format!("branch '{}'", x.key);
        let (ty, c) = match &x.value.val {
            Val::Dict(be) => {
                check_keys(ctx, be, &["type", "if"], &["type"], x.value.pos, &bwhat)?;
                let t = match get(be, "type") {
                    Some(t) => type_ref(ctx, &t.value, &format!("type of {bwhat}"))?,
                    None => RawTypeRef::Name(String::new()),
                };
                (t, cond(ctx, get(be, "if"))?)
            }
            _ => (type_ref(ctx, &x.value, &format!("type of {bwhat}"))?, None),
        };
        out.push(RawBranch {
            name: x.key.clone(),
            ty,
            cond: c,
            loc: ctx.loc(x.key_pos),
        });
    }
    Ok(out)
}

fn enum_values(ctx: &Ctx<'_>, node: &Node) -> Result<Vec<RawEnumValue>, SchemaError> {
    let Val::List(items) = &node.val else {
        return Err(ctx.err(
            node.pos,
            format!(
                "enum 'data' must be a list of value names, found {}",
                node.val.describe()
            ),
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let v = match &it.val {
            Val::Str(s) => RawEnumValue {
                name: s.clone(),
                cond: None,
                features: Vec::new(),
                since: None,
                loc: ctx.loc(it.pos),
            },
            Val::Dict(ve) => {
                check_keys(
                    ctx,
                    ve,
                    &["name", "if", "features"],
                    &["name"],
                    it.pos,
                    "enum value",
                )?;
                let name = match get(ve, "name") {
                    Some(n) => string(ctx, &n.value, "enum value 'name'")?.to_string(),
                    None => String::new(),
                };
                RawEnumValue {
                    name,
                    cond: cond(ctx, get(ve, "if"))?,
                    features: features(ctx, get(ve, "features"))?,
                    since: None,
                    loc: ctx.loc(it.pos),
                }
            }
            v => {
                return Err(ctx.err(
                    it.pos,
                    format!(
                        "an enum value must be a name or an object with 'name', 'if' and \
                         'features', found {}",
                        v.describe()
                    ),
                ))
            }
        };
        out.push(v);
    }
    Ok(out)
}

fn args(ctx: &Ctx<'_>, e: Option<&Entry>) -> Result<RawArgs, SchemaError> {
    let Some(e) = e else { return Ok(RawArgs::None) };
    match &e.value.val {
        Val::Str(s) => Ok(RawArgs::Type(s.clone(), ctx.loc(e.value.pos))),
        Val::Dict(_) => Ok(RawArgs::Members(members(ctx, &e.value, "'data'")?)),
        v => Err(ctx.err(
            e.value.pos,
            format!(
                "'data' must be an object of members or the name of a type, found {}",
                v.describe()
            ),
        )),
    }
}

const KINDS: [&str; 6] = ["enum", "struct", "union", "alternate", "command", "event"];

/// Turns a top-level object (not `include`/`pragma`) into a raw definition.
pub(crate) fn definition(file: &Arc<str>, node: &Node) -> Result<RawDef, SchemaError> {
    let mut ctx = Ctx {
        file,
        what: "definition".into(),
    };
    let e = entries(&ctx, node, "a definition")?;
    let kw = kind_keyword(&ctx, e, node)?;
    let kind = Kind::from_keyword(kw).unwrap_or(Kind::Struct);
    let name = match get(e, kw) {
        Some(n) => string(&ctx, &n.value, &format!("'{kw}' (the definition name)"))?.to_string(),
        None => String::new(),
    };
    ctx.what = format!("{kw} '{name}'");
    let required: &[&str] = match kind {
        Kind::Command | Kind::Event => &[],
        _ => &["data"],
    };
    check_keys(&ctx, e, allowed_keys(kind), required, node.pos, kw)?;
    let data = get(e, "data");
    let body = match kind {
        Kind::Enum => enum_body(&ctx, e, data)?,
        Kind::Struct => struct_body(&ctx, e, data)?,
        Kind::Union => union_body(&ctx, e, data)?,
        Kind::Alternate => RawBody::Alternate {
            branches: match data {
                Some(d) => branches(&ctx, &d.value, "alternate 'data'")?,
                None => Vec::new(),
            },
        },
        Kind::Command => command_body(&ctx, e, data)?,
        Kind::Event => RawBody::Event {
            data: args(&ctx, data)?,
            boxed: bool_flag(&ctx, get(e, "boxed"), true)?.unwrap_or(false),
        },
    };
    Ok(RawDef {
        name,
        loc: ctx.loc(node.pos),
        cond: cond(&ctx, get(e, "if"))?,
        features: features(&ctx, get(e, "features"))?,
        doc: None,
        since: None,
        implicit: false,
        module: None,
        body,
    })
}

/// The one kind keyword (`enum`, `struct`, ...) a definition must have.
fn kind_keyword(ctx: &Ctx<'_>, e: &[Entry], node: &Node) -> Result<&'static str, SchemaError> {
    let present: Vec<&str> = KINDS
        .iter()
        .copied()
        .filter(|k| get(e, k).is_some())
        .collect();
    match present.as_slice() {
        [k] => Ok(*k),
        [] => {
            let first = e.first().map(|x| x.key.as_str()).unwrap_or("");
            Err(ctx.err(
                node.pos,
                format!(
                    "expression must have exactly one of the keys {} (or be an include or \
                     pragma directive); found none{}",
                    KINDS.join(", "),
                    if first.is_empty() {
                        String::new()
                    } else {
                        format!(" (first key is '{first}')")
                    }
                ),
            ))
        }
        many => Err(ctx.err(
            node.pos,
            format!(
                "expression has several kind keys ({}); exactly one is allowed",
                many.join(", ")
            ),
        )),
    }
}

/// The keys a definition of `kind` may have.
fn allowed_keys(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Enum => &["enum", "data", "prefix", "if", "features"],
        Kind::Struct => &["struct", "data", "base", "if", "features"],
        Kind::Union => &["union", "base", "discriminator", "data", "if", "features"],
        Kind::Alternate => &["alternate", "data", "if", "features"],
        Kind::Command => &[
            "command",
            "data",
            "boxed",
            "returns",
            "success-response",
            "gen",
            "allow-oob",
            "allow-preconfig",
            "coroutine",
            "if",
            "features",
        ],
        Kind::Event => &["event", "data", "boxed", "if", "features"],
    }
}

fn enum_body(ctx: &Ctx<'_>, e: &[Entry], data: Option<&Entry>) -> Result<RawBody, SchemaError> {
    let prefix = match get(e, "prefix") {
        Some(p) => Some(string(ctx, &p.value, "'prefix'")?.to_string()),
        None => None,
    };
    let values = match data {
        Some(d) => enum_values(ctx, &d.value)?,
        None => Vec::new(),
    };
    Ok(RawBody::Enum { values, prefix })
}

fn struct_body(ctx: &Ctx<'_>, e: &[Entry], data: Option<&Entry>) -> Result<RawBody, SchemaError> {
    let base = match get(e, "base") {
        Some(b) => Some((
            string(ctx, &b.value, "struct 'base' (a struct name)")?.to_string(),
            ctx.loc(b.value.pos),
        )),
        None => None,
    };
    let members = match data {
        Some(d) => members(ctx, &d.value, "struct 'data'")?,
        None => Vec::new(),
    };
    Ok(RawBody::Struct { base, members })
}

fn union_body(ctx: &Ctx<'_>, e: &[Entry], data: Option<&Entry>) -> Result<RawBody, SchemaError> {
    let base = match get(e, "base") {
        Some(b) => Some(match &b.value.val {
            Val::Str(s) => RawBase::Named(s.clone(), ctx.loc(b.value.pos)),
            Val::Dict(_) => RawBase::Inline(members(ctx, &b.value, "union 'base'")?),
            v => {
                return Err(ctx.err(
                    b.value.pos,
                    format!(
                        "union 'base' must be a struct name or an object of members, found {}",
                        v.describe()
                    ),
                ))
            }
        }),
        None => None,
    };
    let discriminator = match get(e, "discriminator") {
        Some(d) => Some((
            string(ctx, &d.value, "'discriminator' (a base member name)")?.to_string(),
            ctx.loc(d.value.pos),
        )),
        None => None,
    };
    let branches = match data {
        Some(d) => branches(ctx, &d.value, "union 'data'")?,
        None => Vec::new(),
    };
    Ok(RawBody::Union {
        base,
        discriminator,
        branches,
        simple_legacy: false,
    })
}

fn command_body(ctx: &Ctx<'_>, e: &[Entry], data: Option<&Entry>) -> Result<RawBody, SchemaError> {
    let returns = match get(e, "returns") {
        Some(r) => Some((type_ref(ctx, &r.value, "'returns'")?, ctx.loc(r.value.pos))),
        None => None,
    };
    let mut flags = CommandFlags::default();
    let settings: [(&str, bool, &mut bool); 6] = [
        ("boxed", true, &mut flags.boxed),
        ("success-response", false, &mut flags.success_response),
        ("gen", false, &mut flags.gen),
        ("allow-oob", true, &mut flags.allow_oob),
        ("allow-preconfig", true, &mut flags.allow_preconfig),
        ("coroutine", true, &mut flags.coroutine),
    ];
    for (key, legal, flag) in settings {
        if let Some(b) = bool_flag(ctx, get(e, key), legal)? {
            *flag = b;
        }
    }
    Ok(RawBody::Command {
        data: args(ctx, data)?,
        returns,
        flags,
    })
}

pub(crate) fn include_path(file: &Arc<str>, node: &Node) -> Result<Option<String>, SchemaError> {
    let Val::Dict(e) = &node.val else {
        return Ok(None);
    };
    let Some(inc) = get(e, "include") else {
        return Ok(None);
    };
    let ctx = Ctx {
        file,
        what: "include".into(),
    };
    check_keys(&ctx, e, &["include"], &[], node.pos, "include directive")?;
    Ok(Some(
        string(&ctx, &inc.value, "'include' (a file path)")?.to_string(),
    ))
}

/// Merges a `pragma` directive into `pragmas`; returns `false` if `node` is not a pragma.
pub(crate) fn pragma(
    file: &Arc<str>,
    node: &Node,
    pragmas: &mut Pragmas,
) -> Result<bool, SchemaError> {
    let Val::Dict(e) = &node.val else {
        return Ok(false);
    };
    let Some(p) = get(e, "pragma") else {
        return Ok(false);
    };
    let ctx = Ctx {
        file,
        what: "pragma".into(),
    };
    check_keys(&ctx, e, &["pragma"], &[], node.pos, "pragma directive")?;
    let pe = entries(&ctx, &p.value, "'pragma'")?;
    for x in pe {
        let list = match x.key.as_str() {
            "doc-required" => {
                match x.value.val {
                    Val::Bool(b) => pragmas.doc_required = b,
                    ref v => {
                        return Err(ctx.err(
                            x.value.pos,
                            format!(
                                "pragma 'doc-required' must be true or false, found {}",
                                v.describe()
                            ),
                        ))
                    }
                }
                continue;
            }
            "command-name-exceptions" => &mut pragmas.command_name_exceptions,
            "command-returns-exceptions" => &mut pragmas.command_returns_exceptions,
            "documentation-exceptions" => &mut pragmas.documentation_exceptions,
            "member-name-exceptions" => &mut pragmas.member_name_exceptions,
            "returns-whitelist" => &mut pragmas.returns_whitelist,
            "name-case-whitelist" => &mut pragmas.name_case_whitelist,
            other => {
                return Err(ctx.err(
                    x.key_pos,
                    format!(
                        "unknown pragma '{other}' (known: doc-required, command-name-exceptions, \
                         command-returns-exceptions, documentation-exceptions, \
                         member-name-exceptions, and the old returns-whitelist, \
                         name-case-whitelist)"
                    ),
                ))
            }
        };
        let Val::List(items) = &x.value.val else {
            return Err(ctx.err(
                x.value.pos,
                format!(
                    "pragma '{}' must be a list of names, found {}",
                    x.key,
                    x.value.val.describe()
                ),
            ));
        };
        for it in items {
            let s = string(&ctx, it, &format!("an entry of pragma '{}'", x.key))?;
            list.push(s.to_string());
        }
    }
    Ok(true)
}
