//! Loads `query-qmp-schema` output (a list of `SchemaInfo`) into the model.
//!
//! QEMU release builds mask every type name except built-ins (`"0"`, `"123"`, arrays
//! `"[123]"`); such names are replaced by readable CamelCase names derived from where the type
//! is first used in a deterministic walk: commands sorted by name, then events sorted by name,
//! depth first through members, union variants and alternate branches.
//!
//! - the return type of command `query-block` (or its element, for an array) becomes
//!   `QueryBlockRet`, its member `inserted` → `QueryBlockRetInserted`;
//! - a member `reason` of the arguments of event `SHUTDOWN` → `ShutdownReason`;
//! - a union used as boxed arguments of `blockdev-add` → `BlockdevAddArg`;
//! - a variant `file` of a union `X` → `XFile`; an alternate branch → alternate name + branch.
//!
//! Real (unmasked) names are kept, except QEMU's implicit `q_*` names, which are derived like
//! masked ones. A derived name that is already taken gets a numeric suffix (`2`, `3`, ...);
//! one that would end in `List` gets `Type` appended. Argument objects of commands and events
//! become inline [`Arguments::Members`](crate::model::Arguments); a union argument type
//! becomes a named, boxed argument type. Types no command or event reaches (QEMU does not
//! list them, but a hand-made dump might) are kept, named after their original name.
//!
//! Unknown meta-types and unknown keys are ignored (a reference to an entity of unknown
//! meta-type reads as `any`). Since the dump carries no pragmas, the loader infers the rule
//! exceptions the names need, so the result also passes the checks of the normalized format.
//! Conditions are already applied by QEMU, so none appear; since-versions are unknown.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use crate::check::{c_name, check, lower_problem, valid_name};
use crate::error::{Location, SchemaError};
use crate::ident;
use crate::model::{Builtin, Feature, Pragmas, Schema};
use crate::raw::{
    CommandFlags, Origin, RawArgs, RawBase, RawBody, RawBranch, RawDef, RawEnumValue, RawFeature,
    RawMember, RawSchema, RawTypeRef,
};

/// Loads and checks `query-qmp-schema` output: a JSON array of `SchemaInfo` objects, or a
/// QMP reply object `{"return": [...]}`.
pub fn load_introspection(text: &str) -> Result<Schema, SchemaError> {
    let name = "<query-qmp-schema>";
    let v: Value = serde_json::from_str(text).map_err(|e| {
        SchemaError::json(
            name,
            format!("line {} column {}", e.line(), e.column()),
            format!("not valid JSON: {e}"),
        )
    })?;
    from_value(name, &v)
}

/// Loads and checks introspection data already parsed as JSON; `name` names the input in
/// messages and becomes the schema's source name.
pub fn from_value(name: &str, v: &Value) -> Result<Schema, SchemaError> {
    check(raw_from_value(name, v)?)
}

#[derive(Debug)]
struct IMember {
    name: String,
    ty: String,
    optional: bool,
    features: Vec<String>,
}

#[derive(Debug)]
enum Ent {
    Builtin(Builtin),
    Enum(Vec<(String, Vec<String>)>),
    Array(String),
    Object {
        members: Vec<IMember>,
        tag: Option<String>,
        variants: Vec<(String, String)>,
    },
    Alternate(Vec<String>),
    Command {
        arg: Option<String>,
        ret: Option<String>,
        allow_oob: bool,
    },
    Event {
        arg: Option<String>,
    },
    Unknown,
}

struct Entity {
    name: String,
    features: Vec<String>,
    ent: Ent,
}

struct Loader<'a> {
    src: &'a str,
    ents: Vec<Entity>,
    by_name: HashMap<String, usize>,
    /// Final names of type entities, by entity index.
    assigned: HashMap<usize, String>,
    used: HashSet<String>,
    /// Type entities in the order they were named.
    order: Vec<usize>,
}

fn jerr(src: &str, ctx: impl Into<String>, msg: impl Into<String>) -> SchemaError {
    SchemaError::json(src, ctx, msg)
}

fn str_list(src: &str, ctx: &str, v: Option<&Value>) -> Result<Vec<String>, SchemaError> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| jerr(src, ctx, "\"features\" must contain only strings"))
            })
            .collect(),
        Some(_) => Err(jerr(src, ctx, "\"features\" must be an array of strings")),
    }
}

fn get_str<'v>(
    src: &str,
    ctx: &str,
    o: &'v serde_json::Map<String, Value>,
    key: &str,
) -> Result<&'v str, SchemaError> {
    match o.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(jerr(src, ctx, format!("\"{key}\" must be a string"))),
        None => Err(jerr(src, ctx, format!("missing \"{key}\""))),
    }
}

fn parse_entity(src: &str, i: usize, v: &Value) -> Result<Entity, SchemaError> {
    let ctx0 = format!("[{i}]");
    let Some(o) = v.as_object() else {
        return Err(jerr(src, ctx0, "each SchemaInfo must be a JSON object"));
    };
    let name = get_str(src, &ctx0, o, "name")?.to_string();
    let ctx = format!("[{i}] '{name}'");
    let meta = get_str(src, &ctx, o, "meta-type")?;
    let features = str_list(src, &ctx, o.get("features"))?;
    let arr = |key: &str| -> Result<&Vec<Value>, SchemaError> {
        match o.get(key) {
            Some(Value::Array(a)) => Ok(a),
            _ => Err(jerr(src, &ctx, format!("\"{key}\" must be an array"))),
        }
    };
    let ent = match meta {
        "builtin" => {
            let b = Builtin::from_name(&name).unwrap_or_else(|| {
                match o.get("json-type").and_then(Value::as_str) {
                    Some("string") => Builtin::Str,
                    Some("int") => Builtin::Int,
                    Some("number") => Builtin::Number,
                    Some("boolean") => Builtin::Bool,
                    Some("null") => Builtin::Null,
                    _ => Builtin::Any,
                }
            });
            Ent::Builtin(b)
        }
        "enum" => {
            let mut values = Vec::new();
            if let Some(Value::Array(ms)) = o.get("members") {
                for m in ms {
                    let Some(mo) = m.as_object() else {
                        return Err(jerr(src, &ctx, "enum \"members\" entries must be objects"));
                    };
                    values.push((
                        get_str(src, &ctx, mo, "name")?.to_string(),
                        str_list(src, &ctx, mo.get("features"))?,
                    ));
                }
            } else {
                for x in arr("values")? {
                    let Some(s) = x.as_str() else {
                        return Err(jerr(src, &ctx, "enum \"values\" must be strings"));
                    };
                    values.push((s.to_string(), Vec::new()));
                }
            }
            Ent::Enum(values)
        }
        "array" => Ent::Array(get_str(src, &ctx, o, "element-type")?.to_string()),
        "object" => {
            let mut members = Vec::new();
            for m in arr("members")? {
                let Some(mo) = m.as_object() else {
                    return Err(jerr(
                        src,
                        &ctx,
                        "object \"members\" entries must be objects",
                    ));
                };
                members.push(IMember {
                    name: get_str(src, &ctx, mo, "name")?.to_string(),
                    ty: get_str(src, &ctx, mo, "type")?.to_string(),
                    optional: mo.contains_key("default"),
                    features: str_list(src, &ctx, mo.get("features"))?,
                });
            }
            let tag = match o.get("tag") {
                None => None,
                Some(Value::String(t)) => Some(t.clone()),
                Some(_) => return Err(jerr(src, &ctx, "\"tag\" must be a string")),
            };
            let mut variants = Vec::new();
            if tag.is_some() {
                for x in arr("variants")? {
                    let Some(xo) = x.as_object() else {
                        return Err(jerr(src, &ctx, "\"variants\" entries must be objects"));
                    };
                    variants.push((
                        get_str(src, &ctx, xo, "case")?.to_string(),
                        get_str(src, &ctx, xo, "type")?.to_string(),
                    ));
                }
            }
            Ent::Object {
                members,
                tag,
                variants,
            }
        }
        "alternate" => {
            let mut types = Vec::new();
            for m in arr("members")? {
                let Some(mo) = m.as_object() else {
                    return Err(jerr(
                        src,
                        &ctx,
                        "alternate \"members\" entries must be objects",
                    ));
                };
                types.push(get_str(src, &ctx, mo, "type")?.to_string());
            }
            Ent::Alternate(types)
        }
        "command" => Ent::Command {
            arg: o
                .get("arg-type")
                .and_then(Value::as_str)
                .map(str::to_string),
            ret: o
                .get("ret-type")
                .and_then(Value::as_str)
                .map(str::to_string),
            allow_oob: o.get("allow-oob").and_then(Value::as_bool).unwrap_or(false),
        },
        "event" => Ent::Event {
            arg: o
                .get("arg-type")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
        _ => Ent::Unknown,
    };
    Ok(Entity {
        name,
        features,
        ent,
    })
}

fn is_kept_name(n: &str) -> bool {
    valid_name(n, false) && !c_name(n).starts_with("q_") && Builtin::from_name(n).is_none()
}

impl Loader<'_> {
    fn ent(&self, name: &str) -> Option<(usize, &Entity)> {
        let i = *self.by_name.get(name)?;
        self.ents.get(i).map(|e| (i, e))
    }

    fn is_empty_object(&self, name: &str) -> bool {
        matches!(self.ent(name), Some((_, Entity { ent: Ent::Object { members, tag: None, .. }, .. })) if members.is_empty())
    }

    fn unique(&mut self, suggestion: &str) -> String {
        let mut base = if suggestion.starts_with(|c: char| c.is_ascii_uppercase()) {
            suggestion.to_string()
        } else {
            format!("T{suggestion}")
        };
        if base.ends_with("List") {
            base.push_str("Type");
        }
        let mut candidate = base.clone();
        let mut n = 2;
        while self.used.contains(&candidate) {
            candidate = format!("{base}{n}");
            n += 1;
        }
        self.used.insert(candidate.clone());
        candidate
    }

    /// Names `root` (and everything it reaches) if not named yet; depth first, pre-order.
    fn visit(&mut self, root: &str, suggestion: String) {
        let mut stack: Vec<(String, String)> = vec![(root.to_string(), suggestion)];
        while let Some((tname, sugg)) = stack.pop() {
            let Some((i, e)) = self.ent(&tname) else {
                continue;
            };
            match &e.ent {
                Ent::Array(elem) => {
                    // Arrays of arrays (and array cycles) are rejected by type_ref().
                    if !matches!(self.ent(elem).map(|(_, x)| &x.ent), Some(Ent::Array(_))) {
                        stack.push((elem.clone(), sugg));
                    }
                    continue;
                }
                Ent::Enum(_) | Ent::Object { .. } | Ent::Alternate(_) => {}
                _ => continue,
            }
            if self.assigned.contains_key(&i) {
                continue;
            }
            let name = if is_kept_name(&tname) {
                // Reserved for it up front (entity names are unique).
                tname.clone()
            } else {
                self.unique(&sugg)
            };
            let Some(e) = self.ents.get(i) else { continue };
            let children: Vec<(String, String)> = match &e.ent {
                Ent::Object {
                    members, variants, ..
                } => members
                    .iter()
                    .map(|m| {
                        (
                            m.ty.clone(),
                            format!("{name}{}", ident::camel_words(&m.name)),
                        )
                    })
                    .chain(
                        variants
                            .iter()
                            // An empty variant becomes no branch at all (see raw_from_value).
                            .filter(|(_, t)| !self.is_empty_object(t))
                            .map(|(case, t)| {
                                (t.clone(), format!("{name}{}", ident::camel_words(case)))
                            }),
                    )
                    .collect(),
                Ent::Alternate(types) => types
                    .iter()
                    .map(|t| {
                        (
                            t.clone(),
                            format!("{name}{}", ident::camel_words(&self.branch_word(t))),
                        )
                    })
                    .collect(),
                _ => Vec::new(),
            };
            self.assigned.insert(i, name);
            self.order.push(i);
            for c in children.into_iter().rev() {
                stack.push(c);
            }
        }
    }

    /// The alternate branch name for a branch of type `t`.
    fn branch_word(&self, t: &str) -> String {
        match self.ent(t).map(|(_, e)| &e.ent) {
            Some(Ent::Builtin(b)) => b.name().to_string(),
            Some(Ent::Enum(_)) => "enum".into(),
            Some(Ent::Object { .. }) => "object".into(),
            Some(Ent::Array(_)) => "array".into(),
            Some(Ent::Alternate(_)) => "alternate".into(),
            _ => "value".into(),
        }
    }

    fn type_ref(&self, t: &str, ctx: &str) -> Result<RawTypeRef, SchemaError> {
        let Some((i, e)) = self.ent(t) else {
            return Err(jerr(
                self.src,
                ctx,
                format!("type '{t}' is referenced but not in the data"),
            ));
        };
        match &e.ent {
            Ent::Builtin(b) => Ok(RawTypeRef::Name(b.name().to_string())),
            Ent::Array(elem) => {
                if let Some((
                    _,
                    Entity {
                        ent: Ent::Array(_), ..
                    },
                )) = self.ent(elem)
                {
                    return Err(jerr(
                        self.src,
                        ctx,
                        format!("array '{t}' has an array element type, which QAPI cannot express"),
                    ));
                }
                match self.type_ref(elem, ctx)? {
                    RawTypeRef::Name(n) => Ok(RawTypeRef::Array(n)),
                    RawTypeRef::Array(_) => Err(jerr(
                        self.src,
                        ctx,
                        format!("array '{t}' has an array element type"),
                    )),
                }
            }
            Ent::Unknown => Ok(RawTypeRef::Name("any".into())),
            Ent::Command { .. } | Ent::Event { .. } => Err(jerr(
                self.src,
                ctx,
                format!("'{t}' is used as a type but is a command or event"),
            )),
            _ => match self.assigned.get(&i) {
                Some(n) => Ok(RawTypeRef::Name(n.clone())),
                None => Err(jerr(
                    self.src,
                    ctx,
                    format!("type '{t}' was not named (internal)"),
                )),
            },
        }
    }
}

fn feats(f: &[String], loc: &Location) -> Vec<RawFeature> {
    f.iter()
        .map(|n| RawFeature {
            feature: Feature {
                name: n.clone(),
                cond: None,
            },
            loc: loc.clone(),
        })
        .collect()
}

pub(crate) fn raw_from_value(src: &str, v: &Value) -> Result<RawSchema, SchemaError> {
    let mut ld = Loader::new(src, entity_list(src, v)?)?;
    let (commands, events) = ld.commands_and_events();
    ld.name_types(&commands, &events);
    let mut defs = Vec::with_capacity(ld.order.len() + commands.len() + events.len());
    for &i in &ld.order {
        defs.extend(ld.type_def(i)?);
    }
    for &i in commands.iter().chain(&events) {
        defs.extend(ld.command_or_event_def(i)?);
    }
    let pragmas = infer_pragmas(&defs);
    Ok(RawSchema {
        defs,
        pragmas,
        source: Some(src.to_string()),
        origin: Origin::Introspection,
    })
}

/// The array of SchemaInfo objects: the input itself, or its `return` member.
fn entity_list<'v>(src: &str, v: &'v Value) -> Result<&'v [Value], SchemaError> {
    match v {
        Value::Array(a) => Ok(a),
        Value::Object(o) => match o.get("return") {
            Some(Value::Array(a)) => Ok(a),
            _ => Err(jerr(
                src,
                "top level",
                "expected a JSON array of SchemaInfo or an object {\"return\": [...]}",
            )),
        },
        _ => Err(jerr(
            src,
            "top level",
            "expected a JSON array of SchemaInfo or an object {\"return\": [...]}",
        )),
    }
}

impl<'a> Loader<'a> {
    /// Parses every entity; names must be unique.
    fn new(src: &'a str, list: &[Value]) -> Result<Loader<'a>, SchemaError> {
        let mut ld = Loader {
            src,
            ents: Vec::with_capacity(list.len()),
            by_name: HashMap::with_capacity(list.len()),
            assigned: HashMap::new(),
            used: HashSet::new(),
            order: Vec::new(),
        };
        for (i, x) in list.iter().enumerate() {
            let e = parse_entity(src, i, x)?;
            if ld.by_name.insert(e.name.clone(), i).is_some() {
                return Err(jerr(src, format!("[{i}] '{}'", e.name), "duplicate name"));
            }
            ld.ents.push(e);
        }
        Ok(ld)
    }

    /// The command and event entities, each sorted by name; reserves the names that are kept
    /// as they are (commands, events, and types whose names QEMU did not mask).
    fn commands_and_events(&mut self) -> (Vec<usize>, Vec<usize>) {
        let mut commands: Vec<usize> = Vec::new();
        let mut events: Vec<usize> = Vec::new();
        for (i, e) in self.ents.iter().enumerate() {
            match &e.ent {
                Ent::Command { .. } => commands.push(i),
                Ent::Event { .. } => events.push(i),
                Ent::Enum(_) | Ent::Object { .. } | Ent::Alternate(_) if is_kept_name(&e.name) => {
                    self.used.insert(e.name.clone());
                }
                _ => {}
            }
        }
        for &i in commands.iter().chain(&events) {
            let n = self.ents[i].name.clone();
            self.used.insert(n);
        }
        commands.sort_by(|a, b| self.ents[*a].name.cmp(&self.ents[*b].name));
        events.sort_by(|a, b| self.ents[*a].name.cmp(&self.ents[*b].name));
        (commands, events)
    }

    /// Names every type entity: after where commands and events use it first, then the types
    /// nothing reaches (sorted by original name). Objects used as inline arguments or as the
    /// empty return type are not definitions and get no name.
    fn name_types(&mut self, commands: &[usize], events: &[usize]) {
        let mut inlined: HashSet<usize> = HashSet::new();
        for &i in commands.iter().chain(events) {
            let e = &self.ents[i];
            let prefix = ident::camel_words(&e.name);
            let (arg, ret) = match &e.ent {
                Ent::Command { arg, ret, .. } => (arg.clone(), ret.clone()),
                Ent::Event { arg } => (arg.clone(), None),
                _ => (None, None),
            };
            if let Some(a) = arg {
                match self.ent(&a) {
                    Some((
                        j,
                        Entity {
                            ent:
                                Ent::Object {
                                    members, tag: None, ..
                                },
                            ..
                        },
                    )) => {
                        inlined.insert(j);
                        let kids: Vec<(String, String)> = members
                            .iter()
                            .map(|m| {
                                (
                                    m.ty.clone(),
                                    format!("{prefix}{}", ident::camel_words(&m.name)),
                                )
                            })
                            .collect();
                        for (t, s) in kids {
                            self.visit(&t, s);
                        }
                    }
                    _ => self.visit(&a, format!("{prefix}Arg")),
                }
            }
            if let Some(r) = ret {
                if self.is_empty_object(&r) {
                    if let Some((j, _)) = self.ent(&r) {
                        inlined.insert(j);
                    }
                } else {
                    self.visit(&r, format!("{prefix}Ret"));
                }
            }
        }
        let mut rest: Vec<usize> = (0..self.ents.len())
            .filter(|i| {
                matches!(
                    self.ents[*i].ent,
                    Ent::Enum(_) | Ent::Object { .. } | Ent::Alternate(_)
                ) && !self.assigned.contains_key(i)
                    && !inlined.contains(i)
            })
            .collect();
        rest.sort_by(|a, b| self.ents[*a].name.cmp(&self.ents[*b].name));
        for i in rest {
            let n = self.ents[i].name.clone();
            let sugg = format!("Unreferenced{}", ident::camel_words(&n));
            self.visit(&n, sugg);
        }
    }

    fn members(
        &self,
        ms: &[IMember],
        ctx: &str,
        what: &str,
        loc: &Location,
    ) -> Result<Vec<RawMember>, SchemaError> {
        ms.iter()
            .map(|m| {
                Ok(RawMember {
                    name: m.name.clone(),
                    optional: m.optional,
                    ty: self.type_ref(&m.ty, &format!("{ctx}, {what} '{}'", m.name))?,
                    cond: None,
                    features: feats(&m.features, loc),
                    since: None,
                    loc: loc.clone(),
                })
            })
            .collect()
    }

    /// The definition of named type entity `i` (`None` for entities that are not types).
    fn type_def(&self, i: usize) -> Result<Option<RawDef>, SchemaError> {
        let e = &self.ents[i];
        let name = self.assigned.get(&i).cloned().unwrap_or_default();
        let ctx = format!("'{}' (named {name})", e.name);
        let loc = Location::new(Arc::from(format!("{} '{}'", self.src, e.name)), 0, 0);
        let body = match &e.ent {
            Ent::Enum(values) => RawBody::Enum {
                values: values
                    .iter()
                    .map(|(n, f)| RawEnumValue {
                        name: n.clone(),
                        cond: None,
                        features: feats(f, &loc),
                        since: None,
                        loc: loc.clone(),
                    })
                    .collect(),
                prefix: None,
            },
            Ent::Object {
                members: ms,
                tag: None,
                ..
            } => RawBody::Struct {
                base: None,
                members: self.members(ms, &ctx, "member", &loc)?,
            },
            Ent::Object {
                members: ms,
                tag: Some(tag),
                variants,
            } => self.union_body(&ctx, &loc, ms, tag, variants)?,
            Ent::Alternate(types) => self.alternate_body(&ctx, &loc, types)?,
            _ => return Ok(None),
        };
        let file = Location::new(Arc::from(self.src), 0, 0);
        Ok(Some(RawDef {
            module: None,
            name,
            loc,
            cond: None,
            features: feats(&e.features, &file),
            doc: None,
            since: None,
            implicit: false,
            body,
        }))
    }

    fn union_body(
        &self,
        ctx: &str,
        loc: &Location,
        ms: &[IMember],
        tag: &str,
        variants: &[(String, String)],
    ) -> Result<RawBody, SchemaError> {
        let mut branches = Vec::new();
        for (case, t) in variants {
            if self.is_empty_object(t) {
                continue;
            }
            let ty = self.type_ref(t, &format!("{ctx}, variant '{case}'"))?;
            branches.push(RawBranch {
                name: case.clone(),
                ty,
                cond: None,
                loc: loc.clone(),
            });
        }
        Ok(RawBody::Union {
            base: Some(RawBase::Inline(self.members(ms, ctx, "member", loc)?)),
            discriminator: Some((tag.to_string(), loc.clone())),
            branches,
            simple_legacy: false,
        })
    }

    fn alternate_body(
        &self,
        ctx: &str,
        loc: &Location,
        types: &[String],
    ) -> Result<RawBody, SchemaError> {
        let mut branches: Vec<RawBranch> = Vec::new();
        for t in types {
            let word = self.branch_word(t);
            let mut bname = word.clone();
            let mut n = 2;
            while branches.iter().any(|b| b.name == bname) {
                bname = format!("{word}{n}");
                n += 1;
            }
            branches.push(RawBranch {
                name: bname,
                ty: self.type_ref(t, &format!("{ctx}, alternate branch"))?,
                cond: None,
                loc: loc.clone(),
            });
        }
        Ok(RawBody::Alternate { branches })
    }

    /// The arguments (or event data) of type `arg`: inline members for a plain object type,
    /// a boxed named type for a union; `bool` is `boxed`.
    fn args(
        &self,
        arg: Option<&String>,
        ctx: &str,
        loc: &Location,
    ) -> Result<(RawArgs, bool), SchemaError> {
        let Some(a) = arg else {
            return Ok((RawArgs::None, false));
        };
        match self.ent(a) {
            Some((
                _,
                Entity {
                    ent:
                        Ent::Object {
                            members, tag: None, ..
                        },
                    ..
                },
            )) => {
                if members.is_empty() {
                    return Ok((RawArgs::None, false));
                }
                let out = self.members(members, ctx, "argument", loc)?;
                Ok((RawArgs::Members(out), false))
            }
            Some((
                j,
                Entity {
                    ent: Ent::Object { .. },
                    ..
                },
            )) => {
                let n = self.assigned.get(&j).cloned().unwrap_or_default();
                Ok((RawArgs::Type(n, loc.clone()), true))
            }
            _ => Err(jerr(
                self.src,
                ctx,
                format!("\"arg-type\" '{a}' is not an object type"),
            )),
        }
    }

    /// The definition of command or event entity `i`.
    fn command_or_event_def(&self, i: usize) -> Result<Option<RawDef>, SchemaError> {
        let e = &self.ents[i];
        let ctx = format!("'{}'", e.name);
        let loc = Location::new(Arc::from(format!("{} '{}'", self.src, e.name)), 0, 0);
        let body = match &e.ent {
            Ent::Command {
                arg,
                ret,
                allow_oob,
            } => {
                let (data, boxed) = self.args(arg.as_ref(), &ctx, &loc)?;
                let returns = match ret {
                    Some(r) if !self.is_empty_object(r) => Some((
                        self.type_ref(r, &format!("{ctx}, \"ret-type\""))?,
                        loc.clone(),
                    )),
                    _ => None,
                };
                RawBody::Command {
                    data,
                    returns,
                    flags: CommandFlags {
                        boxed,
                        allow_oob: *allow_oob,
                        ..CommandFlags::default()
                    },
                }
            }
            Ent::Event { arg } => {
                let (data, boxed) = self.args(arg.as_ref(), &ctx, &loc)?;
                RawBody::Event { data, boxed }
            }
            _ => return Ok(None),
        };
        Ok(Some(RawDef {
            module: None,
            name: e.name.clone(),
            loc: loc.clone(),
            cond: None,
            features: feats(&e.features, &loc),
            doc: None,
            since: None,
            implicit: false,
            body,
        }))
    }
}

/// The exceptions the (QEMU-checked) names need under the current naming rules, so that the
/// schema also passes when re-read from the normalized format.
fn infer_pragmas(defs: &[RawDef]) -> Pragmas {
    let mut p = Pragmas::default();
    let object_names: HashSet<&str> = defs
        .iter()
        .filter(|d| matches!(d.body, RawBody::Struct { .. } | RawBody::Union { .. }))
        .map(|d| d.name.as_str())
        .collect();
    let bad_member = |n: &str| lower_problem(n, false, false).is_some();
    for d in defs {
        let members: Vec<&str> = match &d.body {
            RawBody::Struct { members, .. } => members.iter().map(|m| m.name.as_str()).collect(),
            RawBody::Union {
                base: Some(RawBase::Inline(m)),
                ..
            } => m.iter().map(|m| m.name.as_str()).collect(),
            RawBody::Enum { values, .. } => values.iter().map(|v| v.name.as_str()).collect(),
            RawBody::Command {
                data: RawArgs::Members(m),
                ..
            }
            | RawBody::Event {
                data: RawArgs::Members(m),
                ..
            } => m.iter().map(|m| m.name.as_str()).collect(),
            _ => Vec::new(),
        };
        if members.iter().any(|m| bad_member(m)) {
            p.member_name_exceptions.push(d.name.clone());
        }
        if let RawBody::Command { returns, .. } = &d.body {
            if lower_problem(&d.name, false, false).is_some() {
                p.command_name_exceptions.push(d.name.clone());
            }
            let object = match returns {
                None => true,
                Some((RawTypeRef::Name(n), _)) | Some((RawTypeRef::Array(n), _)) => {
                    object_names.contains(n.as_str())
                }
            };
            if !object {
                p.command_returns_exceptions.push(d.name.clone());
            }
        }
    }
    p
}
