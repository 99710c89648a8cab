//! Our normalized schema JSON: one self-contained file per schema, facts only.
//!
//! The format is documented in `schema/README.md`. In short:
//!
//! ```json
//! {
//!   "format": "qmp-normalized-schema/1",
//!   "source": "qemu-10.0.13/qapi/qapi-schema.json",
//!   "pragmas": { "doc-required": true, "command-name-exceptions": ["..."] },
//!   "definitions": [
//!     {"kind": "enum", "name": "OnOffAuto", "module": "common", "since": "2.2",
//!      "values": ["auto", "on", "off"]},
//!     {"kind": "struct", "name": "String", "module": "common",
//!      "members": [{"name": "str", "type": "str"}]}
//!   ]
//! }
//! ```
//!
//! Writing is deterministic (fixed key order, 2-space indent, a value that fits in 100 columns
//! stays on one line, trailing newline). Reading goes through the same check as every other
//! input; `from_str(to_string(s))` equals `s.without_docs_and_locations()`.

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::Value;

use crate::check::check;
use crate::error::{Location, SchemaError};
use crate::model::{
    Arguments, Cond, Definition, Feature, Kind, Member, Pragmas, Schema, TypeRef, UnionBase,
};
use crate::raw::{
    CommandFlags, Origin, RawArgs, RawBase, RawBody, RawBranch, RawDef, RawEnumValue, RawFeature,
    RawMember, RawSchema, RawTypeRef,
};

/// The value of the `format` key.
pub const FORMAT: &str = "qmp-normalized-schema/1";

/// Lines longer than this are broken up.
const WIDTH: usize = 100;

// ---------------------------------------------------------------------------------------
// Writing

/// An ordered JSON tree (key order as inserted).
pub(crate) enum J {
    Null,
    Str(String),
    Bool(bool),
    Arr(Vec<J>),
    /// An array written several elements per line when it does not fit on one.
    Fill(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

pub(crate) fn s(x: &str) -> J {
    J::Str(x.to_string())
}

fn quote(out: &mut String, x: &str) {
    out.push('"');
    for c in x.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl J {
    fn compact(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Str(x) => quote(out, x),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Arr(v) | J::Fill(v) => {
                out.push('[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    x.compact(out);
                }
                out.push(']');
            }
            J::Obj(v) => {
                out.push('{');
                for (i, (k, x)) in v.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    quote(out, k);
                    out.push_str(": ");
                    x.compact(out);
                }
                out.push('}');
            }
        }
    }

    /// Writes the value; `col` is the column where it starts.
    fn pretty(&self, out: &mut String, indent: usize, col: usize) {
        let mut c = String::new();
        self.compact(&mut c);
        let empty = matches!(self, J::Arr(v) | J::Fill(v) if v.is_empty())
            || matches!(self, J::Obj(v) if v.is_empty());
        if empty || col + c.len() < WIDTH || matches!(self, J::Null | J::Str(_) | J::Bool(_)) {
            out.push_str(&c);
            return;
        }
        let pad = " ".repeat(indent + 2);
        match self {
            J::Fill(v) => {
                out.push_str("[\n");
                out.push_str(&pad);
                let mut line = pad.len();
                for (i, x) in v.iter().enumerate() {
                    let mut item = String::new();
                    x.compact(&mut item);
                    if i + 1 < v.len() {
                        item.push(',');
                    }
                    if i > 0 {
                        if line + 1 + item.len() > WIDTH {
                            out.push('\n');
                            out.push_str(&pad);
                            line = pad.len();
                        } else {
                            out.push(' ');
                            line += 1;
                        }
                    }
                    out.push_str(&item);
                    line += item.len();
                }
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                out.push(']');
            }
            J::Arr(v) => {
                out.push_str("[\n");
                for (i, x) in v.iter().enumerate() {
                    out.push_str(&pad);
                    x.pretty(out, indent + 2, indent + 2);
                    if i + 1 < v.len() {
                        out.push(',');
                    }
                    out.push('\n');
                }
                out.push_str(&" ".repeat(indent));
                out.push(']');
            }
            J::Obj(v) => {
                out.push_str("{\n");
                for (i, (k, x)) in v.iter().enumerate() {
                    out.push_str(&pad);
                    quote(out, k);
                    out.push_str(": ");
                    x.pretty(out, indent + 2, indent + 2 + k.len() + 4);
                    if i + 1 < v.len() {
                        out.push(',');
                    }
                    out.push('\n');
                }
                out.push_str(&" ".repeat(indent));
                out.push('}');
            }
            J::Null | J::Str(_) | J::Bool(_) => out.push_str(&c),
        }
    }
}

pub(crate) fn type_j(t: &TypeRef) -> J {
    match t {
        TypeRef::Builtin(b) => s(b.name()),
        TypeRef::Named(n) => s(n),
        TypeRef::Array(e) => J::Arr(vec![type_j(e)]),
    }
}

pub(crate) fn cond_j(c: &Cond) -> J {
    match c {
        Cond::Symbol(x) => s(x),
        Cond::All(v) => J::Obj(vec![("all", J::Arr(v.iter().map(cond_j).collect()))]),
        Cond::Any(v) => J::Obj(vec![("any", J::Arr(v.iter().map(cond_j).collect()))]),
        Cond::Not(x) => J::Obj(vec![("not", cond_j(x))]),
    }
}

fn features_j(o: &mut Vec<(&'static str, J)>, f: &[Feature]) {
    if f.is_empty() {
        return;
    }
    o.push((
        "features",
        J::Arr(
            f.iter()
                .map(|f| match &f.cond {
                    None => s(&f.name),
                    Some(c) => J::Obj(vec![("name", s(&f.name)), ("if", cond_j(c))]),
                })
                .collect(),
        ),
    ));
}

fn common_j(
    o: &mut Vec<(&'static str, J)>,
    cond: Option<&Cond>,
    f: &[Feature],
    since: Option<&str>,
) {
    if let Some(c) = cond {
        o.push(("if", cond_j(c)));
    }
    features_j(o, f);
    if let Some(v) = since {
        o.push(("since", s(v)));
    }
}

fn member_j(m: &Member) -> J {
    let mut o = vec![("name", s(&m.name)), ("type", type_j(&m.ty))];
    if m.optional {
        o.push(("optional", J::Bool(true)));
    }
    common_j(&mut o, m.cond.as_ref(), &m.features, m.since.as_deref());
    J::Obj(o)
}

fn members_j(m: &[Member]) -> J {
    J::Arr(m.iter().map(member_j).collect())
}

fn args_j(o: &mut Vec<(&'static str, J)>, a: &Arguments) {
    match a {
        Arguments::None => {}
        Arguments::Members(m) => o.push(("data", members_j(m))),
        Arguments::Type(t) => o.push(("data", s(t))),
    }
}

fn definition_j(d: &Definition) -> J {
    let mut o = vec![("kind", s(d.kind().as_str())), ("name", s(d.name()))];
    if let Some(m) = d.module() {
        o.push(("module", s(m)));
    }
    if d.is_implicit() {
        o.push(("implicit", J::Bool(true)));
    }
    common_j(&mut o, d.cond(), d.features(), d.since());
    match d {
        Definition::Enum(e) => {
            if let Some(p) = &e.prefix {
                o.push(("prefix", s(p)));
            }
            let values = e
                .values
                .iter()
                .map(|v| {
                    if v.cond.is_none() && v.features.is_empty() && v.since.is_none() {
                        s(&v.name)
                    } else {
                        let mut vo = vec![("name", s(&v.name))];
                        common_j(&mut vo, v.cond.as_ref(), &v.features, v.since.as_deref());
                        J::Obj(vo)
                    }
                })
                .collect();
            o.push(("values", J::Fill(values)));
        }
        Definition::Struct(st) => {
            if let Some(b) = &st.base {
                o.push(("base", s(b)));
            }
            o.push(("members", members_j(&st.own_members)));
        }
        Definition::Union(u) => {
            o.push((
                "base",
                match &u.base {
                    UnionBase::Named(n) => s(n),
                    UnionBase::Inline(m) => members_j(m),
                },
            ));
            o.push(("discriminator", s(&u.discriminator)));
            if u.simple_legacy {
                o.push(("simple-legacy", J::Bool(true)));
            }
            let branches = u
                .branches
                .iter()
                .map(|b| {
                    let mut bo = vec![("value", s(&b.value)), ("type", s(&b.ty_name))];
                    if let Some(c) = &b.cond {
                        bo.push(("if", cond_j(c)));
                    }
                    J::Obj(bo)
                })
                .collect();
            o.push(("branches", J::Arr(branches)));
        }
        Definition::Alternate(a) => {
            let branches = a
                .branches
                .iter()
                .map(|b| {
                    let mut bo = vec![("name", s(&b.name)), ("type", type_j(&b.ty))];
                    if let Some(c) = &b.cond {
                        bo.push(("if", cond_j(c)));
                    }
                    J::Obj(bo)
                })
                .collect();
            o.push(("branches", J::Arr(branches)));
        }
        Definition::Command(c) => {
            args_j(&mut o, &c.arguments);
            if c.boxed {
                o.push(("boxed", J::Bool(true)));
            }
            if let Some(r) = &c.returns {
                o.push(("returns", type_j(r)));
            }
            if !c.success_response {
                o.push(("success-response", J::Bool(false)));
            }
            if !c.gen {
                o.push(("gen", J::Bool(false)));
            }
            if c.allow_oob {
                o.push(("allow-oob", J::Bool(true)));
            }
            if c.allow_preconfig {
                o.push(("allow-preconfig", J::Bool(true)));
            }
            if c.coroutine {
                o.push(("coroutine", J::Bool(true)));
            }
        }
        Definition::Event(e) => {
            args_j(&mut o, &e.data);
            if e.boxed {
                o.push(("boxed", J::Bool(true)));
            }
        }
    }
    J::Obj(o)
}

fn pragmas_j(p: &Pragmas) -> J {
    let mut o = Vec::new();
    if p.doc_required {
        o.push(("doc-required", J::Bool(true)));
    }
    let lists: [(&'static str, &Vec<String>); 6] = [
        ("command-name-exceptions", &p.command_name_exceptions),
        ("command-returns-exceptions", &p.command_returns_exceptions),
        ("documentation-exceptions", &p.documentation_exceptions),
        ("member-name-exceptions", &p.member_name_exceptions),
        ("returns-whitelist", &p.returns_whitelist),
        ("name-case-whitelist", &p.name_case_whitelist),
    ];
    for (k, v) in lists {
        if !v.is_empty() {
            o.push((k, J::Fill(v.iter().map(|x| s(x)).collect())));
        }
    }
    J::Obj(o)
}

/// Writes `schema` in the normalized format (no doc prose, no locations).
pub fn to_string(schema: &Schema) -> String {
    let mut top = vec![("format", s(FORMAT))];
    if let Some(src) = &schema.source {
        top.push(("source", s(src)));
    }
    top.push(("pragmas", pragmas_j(&schema.pragmas)));
    let defs = schema.definitions.iter().map(definition_j).collect();
    top.push(("definitions", J::Arr(defs)));
    if let Some(h) = &schema.history {
        top.push(("history", crate::history::json::to_j(h)));
    }
    let mut out = String::with_capacity(schema.definitions.len() * 200);
    // Top level always expanded, each definition on its own line(s).
    out.push_str("{\n");
    let n = top.len();
    for (i, (k, v)) in top.into_iter().enumerate() {
        out.push_str("  ");
        quote(&mut out, k);
        out.push_str(": ");
        match (k, &v) {
            ("definitions", J::Arr(items)) => {
                if items.is_empty() {
                    out.push_str("[]");
                } else {
                    out.push_str("[\n");
                    for (j, d) in items.iter().enumerate() {
                        out.push_str("    ");
                        d.pretty(&mut out, 4, 4);
                        if j + 1 < items.len() {
                            out.push(',');
                        }
                        out.push('\n');
                    }
                    out.push_str("  ]");
                }
            }
            _ => v.pretty(&mut out, 2, 4 + k.len() + 2),
        }
        if i + 1 < n {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str("}\n");
    out
}

// ---------------------------------------------------------------------------------------
// Reading

pub(crate) struct Reader<'a> {
    pub(crate) name: &'a str,
    pub(crate) ctx: String,
}

type Obj = serde_json::Map<String, Value>;

impl Reader<'_> {
    pub(crate) fn err(&self, msg: impl Into<String>) -> SchemaError {
        SchemaError::json(self.name, self.ctx.clone(), msg)
    }

    fn obj<'v>(&self, v: &'v Value, what: &str) -> Result<&'v Obj, SchemaError> {
        v.as_object()
            .ok_or_else(|| self.err(format!("{what} must be a JSON object, found {}", jkind(v))))
    }

    pub(crate) fn keys(&self, o: &Obj, allowed: &[&str], what: &str) -> Result<(), SchemaError> {
        for k in o.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(self.err(format!(
                    "unknown key \"{k}\" in {what} (allowed: {})",
                    allowed.join(", ")
                )));
            }
        }
        Ok(())
    }

    fn str<'v>(&self, o: &'v Obj, key: &str, what: &str) -> Result<&'v str, SchemaError> {
        match o.get(key) {
            Some(Value::String(x)) => Ok(x),
            Some(v) => Err(self.err(format!(
                "\"{key}\" of {what} must be a string, found {}",
                jkind(v)
            ))),
            None => Err(self.err(format!("{what} is missing \"{key}\""))),
        }
    }

    fn opt_str(&self, o: &Obj, key: &str, what: &str) -> Result<Option<String>, SchemaError> {
        match o.get(key) {
            None => Ok(None),
            Some(_) => self.str(o, key, what).map(|x| Some(x.to_string())),
        }
    }

    /// A flag that may only carry its one non-default value.
    fn flag(&self, o: &Obj, key: &str, legal: bool) -> Result<bool, SchemaError> {
        match o.get(key) {
            None => Ok(!legal),
            Some(Value::Bool(b)) if *b == legal => Ok(legal),
            Some(v) => Err(self.err(format!(
                "\"{key}\" may only be {legal} (leave it out for the default), found {v}"
            ))),
        }
    }

    fn str_list(&self, v: &Value, what: &str) -> Result<Vec<String>, SchemaError> {
        let Some(a) = v.as_array() else {
            return Err(self.err(format!(
                "{what} must be an array of strings, found {}",
                jkind(v)
            )));
        };
        a.iter()
            .map(|x| {
                x.as_str().map(str::to_string).ok_or_else(|| {
                    self.err(format!(
                        "{what} must contain only strings, found {}",
                        jkind(x)
                    ))
                })
            })
            .collect()
    }

    fn type_ref(&self, v: &Value, what: &str) -> Result<RawTypeRef, SchemaError> {
        match v {
            Value::String(x) => Ok(RawTypeRef::Name(x.clone())),
            Value::Array(a) if a.len() == 1 => match &a[0] {
                Value::String(x) => Ok(RawTypeRef::Array(x.clone())),
                other => Err(self.err(format!(
                    "{what}: array element type must be a type name string, found {}",
                    jkind(other)
                ))),
            },
            other => Err(self.err(format!(
                "{what} must be a type name or a one-element array [\"Name\"], found {}",
                short(other)
            ))),
        }
    }

    pub(crate) fn cond(&self, v: &Value, depth: usize) -> Result<Cond, SchemaError> {
        if depth > 32 {
            return Err(self.err("condition nested too deeply"));
        }
        match v {
            Value::String(x) if crate::parse::is_symbol(x) => Ok(Cond::Symbol(x.clone())),
            Value::String(x) => Err(self.err(format!("invalid condition symbol \"{x}\""))),
            Value::Object(o) if o.len() == 1 => {
                let (k, inner) = o.iter().next().ok_or_else(|| self.err("empty condition"))?;
                match k.as_str() {
                    "all" | "any" => {
                        let Some(a) = inner.as_array().filter(|a| !a.is_empty()) else {
                            return Err(self.err(format!(
                                "condition \"{k}\" takes a non-empty array of conditions"
                            )));
                        };
                        let v = a
                            .iter()
                            .map(|c| self.cond(c, depth + 1))
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok(if k == "all" {
                            Cond::All(v)
                        } else {
                            Cond::Any(v)
                        })
                    }
                    "not" => Ok(Cond::Not(Box::new(self.cond(inner, depth + 1)?))),
                    other => Err(self.err(format!(
                        "unknown condition operator \"{other}\" (expected all, any or not)"
                    ))),
                }
            }
            other => Err(self.err(format!(
                "a condition must be a symbol string or an object with one key all/any/not, \
                 found {}",
                short(other)
            ))),
        }
    }

    fn opt_cond(&self, o: &Obj) -> Result<Option<Cond>, SchemaError> {
        o.get("if").map(|c| self.cond(c, 0)).transpose()
    }

    fn features(&self, o: &Obj, loc: &Location) -> Result<Vec<RawFeature>, SchemaError> {
        let Some(v) = o.get("features") else {
            return Ok(Vec::new());
        };
        let Some(a) = v.as_array() else {
            return Err(self.err(format!("\"features\" must be an array, found {}", jkind(v))));
        };
        a.iter()
            .map(|f| {
                let feature = match f {
                    Value::String(n) => Feature {
                        name: n.clone(),
                        cond: None,
                    },
                    Value::Object(fo) => {
                        self.keys(fo, &["name", "if"], "a feature")?;
                        Feature {
                            name: self.str(fo, "name", "a feature")?.to_string(),
                            cond: self.opt_cond(fo)?,
                        }
                    }
                    other => {
                        return Err(self.err(format!(
                            "a feature must be a name or {{\"name\", \"if\"}}, found {}",
                            jkind(other)
                        )))
                    }
                };
                Ok(RawFeature {
                    feature,
                    loc: loc.clone(),
                })
            })
            .collect()
    }

    fn members(
        &self,
        v: &Value,
        loc: &Location,
        what: &str,
    ) -> Result<Vec<RawMember>, SchemaError> {
        let Some(a) = v.as_array() else {
            return Err(self.err(format!(
                "{what} must be an array of members, found {}",
                jkind(v)
            )));
        };
        let mut out = Vec::with_capacity(a.len());
        for (i, m) in a.iter().enumerate() {
            let mwhat = format!("{what}[{i}]");
            let mo = self.obj(m, &mwhat)?;
            self.keys(
                mo,
                &["name", "type", "optional", "if", "features", "since"],
                &mwhat,
            )?;
            let optional = match mo.get("optional") {
                None => false,
                Some(Value::Bool(true)) => true,
                Some(v) => {
                    return Err(self.err(format!(
                    "\"optional\" of {mwhat} may only be true (leave it out otherwise), found {v}"
                )))
                }
            };
            let ty = match mo.get("type") {
                Some(t) => self.type_ref(t, &format!("\"type\" of {mwhat}"))?,
                None => return Err(self.err(format!("{mwhat} is missing \"type\""))),
            };
            out.push(RawMember {
                name: self.str(mo, "name", &mwhat)?.to_string(),
                optional,
                ty,
                cond: self.opt_cond(mo)?,
                features: self.features(mo, loc)?,
                since: self.opt_str(mo, "since", &mwhat)?,
                loc: loc.clone(),
            });
        }
        Ok(out)
    }

    fn args(&self, o: &Obj, loc: &Location) -> Result<RawArgs, SchemaError> {
        match o.get("data") {
            None => Ok(RawArgs::None),
            Some(Value::String(t)) => Ok(RawArgs::Type(t.clone(), loc.clone())),
            Some(v @ Value::Array(_)) => Ok(RawArgs::Members(self.members(v, loc, "\"data\"")?)),
            Some(v) => Err(self.err(format!(
                "\"data\" must be a type name or an array of members, found {}",
                jkind(v)
            ))),
        }
    }

    fn branches(
        &self,
        o: &Obj,
        loc: &Location,
        name_key: &str,
    ) -> Result<Vec<RawBranch>, SchemaError> {
        let v = o
            .get("branches")
            .ok_or_else(|| self.err("missing \"branches\""))?;
        let Some(a) = v.as_array() else {
            return Err(self.err(format!("\"branches\" must be an array, found {}", jkind(v))));
        };
        let mut out = Vec::with_capacity(a.len());
        for (i, b) in a.iter().enumerate() {
            let bwhat = format!("\"branches\"[{i}]");
            let bo = self.obj(b, &bwhat)?;
            self.keys(bo, &[name_key, "type", "if"], &bwhat)?;
            let ty = match bo.get("type") {
                Some(t) => self.type_ref(t, &format!("\"type\" of {bwhat}"))?,
                None => return Err(self.err(format!("{bwhat} is missing \"type\""))),
            };
            out.push(RawBranch {
                name: self.str(bo, name_key, &bwhat)?.to_string(),
                ty,
                cond: self.opt_cond(bo)?,
                loc: loc.clone(),
            });
        }
        Ok(out)
    }

    fn enum_values(&self, o: &Obj, loc: &Location) -> Result<Vec<RawEnumValue>, SchemaError> {
        let v = o
            .get("values")
            .ok_or_else(|| self.err("enum is missing \"values\""))?;
        let Some(a) = v.as_array() else {
            return Err(self.err(format!("\"values\" must be an array, found {}", jkind(v))));
        };
        let mut values = Vec::with_capacity(a.len());
        for (i, x) in a.iter().enumerate() {
            values.push(match x {
                Value::String(n) => RawEnumValue {
                    name: n.clone(),
                    cond: None,
                    features: Vec::new(),
                    since: None,
                    loc: loc.clone(),
                },
                Value::Object(vo) => {
                    let vwhat = format!("\"values\"[{i}]");
                    self.keys(vo, &["name", "if", "features", "since"], &vwhat)?;
                    RawEnumValue {
                        name: self.str(vo, "name", &vwhat)?.to_string(),
                        cond: self.opt_cond(vo)?,
                        features: self.features(vo, loc)?,
                        since: self.opt_str(vo, "since", &vwhat)?,
                        loc: loc.clone(),
                    }
                }
                other => {
                    return Err(self.err(format!(
                        "\"values\"[{i}] must be a name or an object, found {}",
                        jkind(other)
                    )))
                }
            });
        }
        Ok(values)
    }

    fn union_body(&self, o: &Obj, loc: &Location) -> Result<RawBody, SchemaError> {
        let base = match o.get("base") {
            Some(Value::String(b)) => RawBase::Named(b.clone(), loc.clone()),
            Some(v @ Value::Array(_)) => RawBase::Inline(self.members(v, loc, "\"base\"")?),
            Some(v) => {
                return Err(self.err(format!(
                    "union \"base\" must be a struct name or an array of members, found {}",
                    jkind(v)
                )))
            }
            None => return Err(self.err("union is missing \"base\"")),
        };
        Ok(RawBody::Union {
            base: Some(base),
            discriminator: Some((
                self.str(o, "discriminator", "union")?.to_string(),
                loc.clone(),
            )),
            branches: self.branches(o, loc, "value")?,
            simple_legacy: self.flag(o, "simple-legacy", true)?,
        })
    }

    fn definition(&self, o: &Obj, loc: Location) -> Result<RawDef, SchemaError> {
        let kind_s = self.str(o, "kind", "a definition")?;
        let Some(kind) = Kind::from_keyword(kind_s) else {
            return Err(self.err(format!(
                "unknown \"kind\" \"{kind_s}\" (expected enum, struct, union, alternate, \
                 command or event)"
            )));
        };
        let common = [
            "kind", "name", "module", "implicit", "if", "features", "since",
        ];
        let specific: &[&str] = match kind {
            Kind::Enum => &["prefix", "values"],
            Kind::Struct => &["base", "members"],
            Kind::Union => &["base", "discriminator", "simple-legacy", "branches"],
            Kind::Alternate => &["branches"],
            Kind::Command => &[
                "data",
                "boxed",
                "returns",
                "success-response",
                "gen",
                "allow-oob",
                "allow-preconfig",
                "coroutine",
            ],
            Kind::Event => &["data", "boxed"],
        };
        let allowed: Vec<&str> = common.iter().chain(specific).copied().collect();
        self.keys(
            o,
            &allowed,
            &format!(
                "{} {kind} definition",
                if kind.to_string().starts_with(['a', 'e']) {
                    "an"
                } else {
                    "a"
                }
            ),
        )?;
        let implicit = self.flag(o, "implicit", true)?;
        let body = match kind {
            Kind::Enum => RawBody::Enum {
                values: self.enum_values(o, &loc)?,
                prefix: self.opt_str(o, "prefix", "enum")?,
            },
            Kind::Struct => RawBody::Struct {
                base: self.opt_str(o, "base", "struct")?.map(|b| (b, loc.clone())),
                members: match o.get("members") {
                    Some(m) => self.members(m, &loc, "\"members\"")?,
                    None => return Err(self.err("struct is missing \"members\"")),
                },
            },
            Kind::Union => self.union_body(o, &loc)?,
            Kind::Alternate => RawBody::Alternate {
                branches: self.branches(o, &loc, "name")?,
            },
            Kind::Command => RawBody::Command {
                data: self.args(o, &loc)?,
                returns: o
                    .get("returns")
                    .map(|r| self.type_ref(r, "\"returns\"").map(|t| (t, loc.clone())))
                    .transpose()?,
                flags: CommandFlags {
                    boxed: self.flag(o, "boxed", true)?,
                    success_response: self.flag(o, "success-response", false)?,
                    gen: self.flag(o, "gen", false)?,
                    allow_oob: self.flag(o, "allow-oob", true)?,
                    allow_preconfig: self.flag(o, "allow-preconfig", true)?,
                    coroutine: self.flag(o, "coroutine", true)?,
                },
            },
            Kind::Event => RawBody::Event {
                data: self.args(o, &loc)?,
                boxed: self.flag(o, "boxed", true)?,
            },
        };
        Ok(RawDef {
            name: self.str(o, "name", "a definition")?.to_string(),
            cond: self.opt_cond(o)?,
            features: self.features(o, &loc)?,
            doc: None,
            since: self.opt_str(o, "since", "a definition")?,
            implicit,
            module: self.opt_str(o, "module", "a definition")?,
            body,
            loc,
        })
    }
}

pub(crate) fn jkind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn short(v: &Value) -> String {
    let t = v.to_string();
    if t.len() > 60 {
        format!(
            "{}...",
            &t[..t.char_indices().nth(57).map(|(i, _)| i).unwrap_or(t.len())]
        )
    } else {
        t
    }
}

/// Reads a normalized schema already parsed as JSON. `name` names the input in messages.
pub fn from_value(name: &str, v: &Value) -> Result<Schema, SchemaError> {
    let mut schema = check(raw_from_value(name, v)?)?;
    if let Some(h) = v.get("history") {
        schema.history = Some(crate::history::json::read(name, h, &schema)?);
    }
    Ok(schema)
}

pub(crate) fn raw_from_value(name: &str, v: &Value) -> Result<RawSchema, SchemaError> {
    let mut r = Reader {
        name,
        ctx: "top level".into(),
    };
    let top = r.obj(v, "the normalized schema")?;
    r.keys(
        top,
        &["format", "source", "pragmas", "definitions", "history"],
        "the top-level object",
    )?;
    match top.get("format") {
        Some(Value::String(f)) if f == FORMAT => {}
        Some(other) => {
            return Err(r.err(format!(
                "unsupported \"format\" {other}; this reader understands \"{FORMAT}\""
            )))
        }
        None => return Err(r.err(format!("missing \"format\": \"{FORMAT}\""))),
    }
    let source = r.opt_str(top, "source", "the top-level object")?;
    let mut pragmas = Pragmas::default();
    if let Some(p) = top.get("pragmas") {
        r.ctx = "pragmas".into();
        let po = r.obj(p, "\"pragmas\"")?;
        for (k, v) in po {
            let list = match k.as_str() {
                "doc-required" => {
                    pragmas.doc_required = v.as_bool().ok_or_else(|| {
                        r.err(format!(
                            "\"doc-required\" must be a boolean, found {}",
                            jkind(v)
                        ))
                    })?;
                    continue;
                }
                "command-name-exceptions" => &mut pragmas.command_name_exceptions,
                "command-returns-exceptions" => &mut pragmas.command_returns_exceptions,
                "documentation-exceptions" => &mut pragmas.documentation_exceptions,
                "member-name-exceptions" => &mut pragmas.member_name_exceptions,
                "returns-whitelist" => &mut pragmas.returns_whitelist,
                "name-case-whitelist" => &mut pragmas.name_case_whitelist,
                other => return Err(r.err(format!("unknown pragma \"{other}\""))),
            };
            *list = r.str_list(v, &format!("pragma \"{k}\""))?;
        }
    }
    r.ctx = "top level".into();
    let defs_v = top
        .get("definitions")
        .ok_or_else(|| r.err("missing \"definitions\""))?;
    let Some(defs_a) = defs_v.as_array() else {
        return Err(r.err(format!(
            "\"definitions\" must be an array, found {}",
            jkind(defs_v)
        )));
    };
    let mut defs = Vec::with_capacity(defs_a.len());
    for (i, d) in defs_a.iter().enumerate() {
        let dname = d.get("name").and_then(Value::as_str).unwrap_or("?");
        r.ctx = format!("definitions[{i}] '{dname}'");
        let o = r.obj(d, "a definition")?;
        let loc = Location::new(Arc::from(format!("{name}: definitions[{i}]")), 0, 0);
        defs.push(r.definition(o, loc)?);
    }
    Ok(RawSchema {
        defs,
        pragmas,
        source,
        origin: Origin::Normalized,
    })
}

/// Reads and checks a normalized schema. `name` names the input in messages (a file name).
pub fn from_str(name: &str, text: &str) -> Result<Schema, SchemaError> {
    let v: Value = serde_json::from_str(text).map_err(|e| SchemaError::json_syntax(name, &e))?;
    from_value(name, &v)
}
