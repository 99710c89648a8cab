//! The `history` key of the normalized format (see `schema/README.md`, *Merged schemas*).

use std::collections::HashSet;

use serde_json::Value;

use crate::error::SchemaError;
use crate::model::{Arguments, Builtin, Definition, Feature, Kind, Schema, TypeRef};
use crate::normalized::{cond_j, jkind, s, type_j, Reader, J};

use super::{
    facts, Attr, AttrHistory, AttrValue, Data, DefHistory, History, ItemHistory, ItemKind,
    MergedVersion, Path, Relaxed, Version, VersionSet, MAX_VERSIONS,
};

// ---------------------------------------------------------------------------------------
// Version sets as text

/// `2.12-8.1`, `8.2-` (through the newest), `5.0`, comma-separated; `none` when empty.
pub(crate) fn format_set(set: VersionSet, versions: &[MergedVersion]) -> String {
    let n = versions.len();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < n {
        if !set.contains(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i + 1 < n && set.contains(i + 1) {
            i += 1;
        }
        let a = versions[start].version;
        parts.push(if i + 1 == n {
            format!("{a}-")
        } else if i == start {
            a.to_string()
        } else {
            format!("{a}-{}", versions[i].version)
        });
        i += 1;
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(",")
    }
}

/// Reads what [`format_set`] writes; every version named must be a merged one.
pub(crate) fn parse_set(text: &str, versions: &[MergedVersion]) -> Result<VersionSet, String> {
    let mut set = VersionSet::EMPTY;
    if text == "none" {
        return Ok(set);
    }
    let index = |v: &str| -> Result<usize, String> {
        let parsed = Version::parse(v)
            .filter(|p| p.to_string() == v)
            .ok_or_else(|| format!("'{v}' is not a version like 7.2"))?;
        versions
            .iter()
            .position(|m| m.version == parsed)
            .ok_or_else(|| format!("version {v} is not one of the merged versions"))
    };
    for part in text.split(',') {
        let (a, b) = match part.split_once('-') {
            None => {
                let i = index(part)?;
                (i, i)
            }
            Some((a, "")) => (index(a)?, versions.len() - 1),
            Some((a, b)) => (index(a)?, index(b)?),
        };
        if a > b {
            return Err(format!("range '{part}' ends before it starts"));
        }
        for i in a..=b {
            set.insert(i);
        }
    }
    Ok(set)
}

// ---------------------------------------------------------------------------------------
// Writing

fn feature_j(f: &Feature) -> J {
    match &f.cond {
        None => s(&f.name),
        Some(c) => J::Obj(vec![("name", s(&f.name)), ("if", cond_j(c))]),
    }
}

fn value_j(v: &AttrValue) -> J {
    match v {
        AttrValue::Kind(k) => s(k.as_str()),
        AttrValue::Cond(None) | AttrValue::Text(None) | AttrValue::Type(None) => J::Null,
        AttrValue::Data(Data::None) => J::Null,
        AttrValue::Cond(Some(c)) => cond_j(c),
        AttrValue::Features(f) => J::Arr(f.iter().map(feature_j).collect()),
        AttrValue::Flag(b) => J::Bool(*b),
        AttrValue::Text(Some(t)) => s(t),
        AttrValue::Data(Data::Members) => J::Arr(Vec::new()),
        AttrValue::Data(Data::Type(t)) => s(t),
        AttrValue::Type(Some(t)) => type_j(t),
    }
}

fn attrs_j(o: &mut Vec<(&'static str, J)>, attrs: &[AttrHistory], versions: &[MergedVersion]) {
    for a in attrs {
        let values = a
            .values
            .iter()
            .map(|(v, set)| J::Arr(vec![value_j(v), s(&format_set(*set, versions))]))
            .collect();
        o.push((a.attr.key(), J::Arr(values)));
    }
}

fn item_j(it: &ItemHistory, kind: ItemKind, versions: &[MergedVersion]) -> J {
    let mut o = vec![(kind.name_key(), s(&it.name))];
    if let Some(p) = it.present {
        o.push(("in", s(&format_set(p, versions))));
    }
    attrs_j(&mut o, &it.attrs, versions);
    J::Obj(o)
}

fn def_j(d: &DefHistory, versions: &[MergedVersion]) -> J {
    let mut o = vec![("name", s(&d.name))];
    if let Some(p) = d.present {
        o.push(("in", s(&format_set(p, versions))));
    }
    if !d.names.is_empty() {
        let names = d
            .names
            .iter()
            .map(|(n, set)| J::Arr(vec![s(n), s(&format_set(*set, versions))]))
            .collect();
        o.push(("names", J::Arr(names)));
    }
    attrs_j(&mut o, &d.attrs, versions);
    for kind in ItemKind::ALL {
        let items = d.items(kind);
        if !items.is_empty() {
            let list = items.iter().map(|it| item_j(it, kind, versions)).collect();
            o.push((kind.list_key(), J::Arr(list)));
        }
    }
    J::Obj(o)
}

/// The `history` value.
pub(crate) fn to_j(h: &History) -> J {
    let versions = h
        .versions
        .iter()
        .map(|v| {
            J::Obj(vec![
                ("version", s(&v.version.to_string())),
                ("source", s(&v.source)),
            ])
        })
        .collect();
    let defs = h
        .definitions
        .iter()
        .map(|d| def_j(d, &h.versions))
        .collect();
    let paths = |set: &std::collections::BTreeSet<Path>| {
        J::Fill(set.iter().map(|p| s(&p.to_string())).collect())
    };
    J::Obj(vec![
        ("versions", J::Arr(versions)),
        ("definitions", J::Arr(defs)),
        (
            "relaxed",
            J::Obj(vec![
                ("replies", paths(&h.relaxed.in_replies)),
                ("arguments", paths(&h.relaxed.in_arguments)),
            ]),
        ),
    ])
}

// ---------------------------------------------------------------------------------------
// Reading

type Obj = serde_json::Map<String, Value>;

struct HistoryReader<'a> {
    r: Reader<'a>,
    schema: &'a Schema,
    versions: Vec<MergedVersion>,
}

impl HistoryReader<'_> {
    fn err(&self, msg: impl Into<String>) -> SchemaError {
        self.r.err(msg)
    }

    fn obj<'v>(&self, v: &'v Value, what: &str) -> Result<&'v Obj, SchemaError> {
        v.as_object()
            .ok_or_else(|| self.err(format!("{what} must be a JSON object, found {}", jkind(v))))
    }

    fn array<'v>(&self, v: &'v Value, what: &str) -> Result<&'v Vec<Value>, SchemaError> {
        v.as_array()
            .ok_or_else(|| self.err(format!("{what} must be an array, found {}", jkind(v))))
    }

    fn string<'v>(&self, v: &'v Value, what: &str) -> Result<&'v str, SchemaError> {
        v.as_str()
            .ok_or_else(|| self.err(format!("{what} must be a string, found {}", jkind(v))))
    }

    fn set(&self, v: &Value, what: &str) -> Result<VersionSet, SchemaError> {
        let text = self.string(v, what)?;
        parse_set(text, &self.versions).map_err(|e| self.err(format!("{what}: {e}")))
    }

    fn type_ref(&self, v: &Value, what: &str) -> Result<TypeRef, SchemaError> {
        let name = |n: &str| -> Result<TypeRef, SchemaError> {
            if let Some(b) = Builtin::from_name(n) {
                return Ok(TypeRef::Builtin(b));
            }
            match self.schema.get(n) {
                Some(d) if d.kind().is_type() => Ok(TypeRef::Named(n.to_string())),
                Some(d) => Err(self.err(format!("{what}: '{n}' is a {}, not a type", d.kind()))),
                None => Err(self.err(format!("{what}: unknown type '{n}'"))),
            }
        };
        match v {
            Value::String(n) => name(n),
            Value::Array(a) if a.len() == 1 => match &a[0] {
                Value::String(n) => Ok(TypeRef::Array(Box::new(name(n)?))),
                other => Err(self.err(format!(
                    "{what}: an array type holds a type name, found {}",
                    jkind(other)
                ))),
            },
            other => Err(self.err(format!(
                "{what} must be a type name or [\"Name\"], found {}",
                jkind(other)
            ))),
        }
    }

    fn features(&self, v: &Value, what: &str) -> Result<Vec<Feature>, SchemaError> {
        self.array(v, what)?
            .iter()
            .map(|f| match f {
                Value::String(n) => Ok(Feature {
                    name: n.clone(),
                    cond: None,
                }),
                Value::Object(o) => {
                    self.r.keys(o, &["name", "if"], what)?;
                    let name = o
                        .get("name")
                        .ok_or_else(|| self.err(format!("a feature in {what} has no \"name\"")))?;
                    Ok(Feature {
                        name: self.string(name, what)?.to_string(),
                        cond: o.get("if").map(|c| self.r.cond(c, 0)).transpose()?,
                    })
                }
                other => Err(self.err(format!(
                    "{what}: a feature is a name or {{\"name\", \"if\"}}, found {}",
                    jkind(other)
                ))),
            })
            .collect()
    }

    fn value(&self, attr: Attr, v: &Value, what: &str) -> Result<AttrValue, SchemaError> {
        Ok(match attr {
            Attr::Kind => {
                let k = self.string(v, what)?;
                AttrValue::Kind(
                    Kind::from_keyword(k)
                        .ok_or_else(|| self.err(format!("{what}: unknown kind '{k}'")))?,
                )
            }
            Attr::If => match v {
                Value::Null => AttrValue::Cond(None),
                c => AttrValue::Cond(Some(self.r.cond(c, 0)?)),
            },
            Attr::Features => AttrValue::Features(self.features(v, what)?),
            Attr::Prefix => match v {
                Value::Null => AttrValue::Text(None),
                t => AttrValue::Text(Some(self.string(t, what)?.to_string())),
            },
            Attr::Discriminator => AttrValue::Text(Some(self.string(v, what)?.to_string())),
            Attr::Data => match v {
                Value::Null => AttrValue::Data(Data::None),
                Value::Array(a) if a.is_empty() => AttrValue::Data(Data::Members),
                Value::String(t) => match self.schema.get(t).map(|d| d.kind()) {
                    Some(Kind::Struct | Kind::Union) => AttrValue::Data(Data::Type(t.clone())),
                    _ => {
                        return Err(self.err(format!(
                            "{what}: '{t}' is not a struct or union of the schema"
                        )))
                    }
                },
                other => {
                    return Err(self.err(format!(
                        "{what} must be null, [] (inline members) or a type name, found {}",
                        jkind(other)
                    )))
                }
            },
            Attr::Returns => match v {
                Value::Null => AttrValue::Type(None),
                t => AttrValue::Type(Some(self.type_ref(t, what)?)),
            },
            Attr::Type => AttrValue::Type(Some(self.type_ref(v, what)?)),
            Attr::Implicit
            | Attr::SimpleLegacy
            | Attr::Boxed
            | Attr::SuccessResponse
            | Attr::Gen
            | Attr::AllowOob
            | Attr::AllowPreconfig
            | Attr::Coroutine
            | Attr::Optional => AttrValue::Flag(v.as_bool().ok_or_else(|| {
                self.err(format!("{what} must be a boolean, found {}", jkind(v)))
            })?),
        })
    }

    /// Reads the attribute keys of `o` among `allowed`.
    fn attrs(
        &self,
        o: &Obj,
        allowed: &[Attr],
        what: &str,
    ) -> Result<Vec<AttrHistory>, SchemaError> {
        let mut out = Vec::new();
        for attr in allowed {
            let Some(v) = o.get(attr.key()) else { continue };
            let awhat = format!("\"{}\" of {what}", attr.key());
            let mut values: Vec<(AttrValue, VersionSet)> = Vec::new();
            let mut seen = VersionSet::EMPTY;
            for (i, pair) in self.array(v, &awhat)?.iter().enumerate() {
                let pwhat = format!("{awhat}[{i}]");
                let p = self.array(pair, &pwhat)?;
                if p.len() != 2 {
                    return Err(self.err(format!("{pwhat} must be a pair [value, versions]")));
                }
                let value = self.value(*attr, &p[0], &pwhat)?;
                let set = self.set(&p[1], &pwhat)?;
                if !set.intersection(seen).is_empty() {
                    return Err(self.err(format!(
                        "{pwhat}: versions {} already have another value",
                        format_set(set.intersection(seen), &self.versions)
                    )));
                }
                seen = seen.union(set);
                values.push((value, set));
            }
            out.push(AttrHistory {
                attr: *attr,
                values,
            });
        }
        out.sort_by_key(|a| a.attr);
        Ok(out)
    }

    fn items(
        &self,
        def: &DefHistory,
        o: &Obj,
        kind: ItemKind,
        merged: &facts::Facts,
    ) -> Result<Vec<ItemHistory>, SchemaError> {
        let Some(v) = o.get(kind.list_key()) else {
            return Ok(Vec::new());
        };
        let owner_present = def.present.unwrap_or(VersionSet::all(self.versions.len()));
        let mut out = Vec::new();
        let mut names = HashSet::new();
        for (i, it) in self.array(v, kind.list_key())?.iter().enumerate() {
            let what = format!("\"{}\"[{i}]", kind.list_key());
            let io = self.obj(it, &what)?;
            let mut allowed = vec![kind.name_key(), "in"];
            allowed.extend(kind.attrs().iter().map(|a| a.key()));
            self.r.keys(io, &allowed, &what)?;
            let name = io
                .get(kind.name_key())
                .ok_or_else(|| self.err(format!("{what} has no \"{}\"", kind.name_key())))?;
            let name = self.string(name, &what)?.to_string();
            if !names.insert(name.clone()) {
                return Err(self.err(format!("{what}: '{name}' is listed twice")));
            }
            let what = format!("{what} '{name}'");
            let present = io.get("in").map(|p| self.set(p, &what)).transpose()?;
            if let Some(p) = present {
                if !p.is_subset(owner_present) {
                    return Err(self.err(format!(
                        "{what}: present in {}, where '{}' itself is not",
                        format_set(p.difference(owner_present), &self.versions),
                        def.name
                    )));
                }
            }
            let attrs = self.attrs(io, kind.attrs(), &what)?;
            // An item the merged schema lacks needs a type wherever it exists.
            let path = kind.path(&def.name, &name);
            if !merged.items.contains_key(&path) && kind != ItemKind::Value {
                let typed =
                    attrs
                        .iter()
                        .find(|a| a.attr == Attr::Type)
                        .map_or(VersionSet::EMPTY, |a| {
                            a.values
                                .iter()
                                .fold(VersionSet::EMPTY, |acc, (_, s)| acc.union(*s))
                        });
                let needed = present.unwrap_or(owner_present);
                if !needed.is_subset(typed) {
                    return Err(self.err(format!(
                        "{what} is not in the merged definition, so its \"type\" must be given \
                         for every version that has it (missing for {})",
                        format_set(needed.difference(typed), &self.versions)
                    )));
                }
            }
            out.push(ItemHistory {
                name,
                present,
                attrs,
            });
        }
        Ok(out)
    }
}

/// Reads and validates the `history` value of the normalized file `name` whose definitions
/// gave `schema`.
pub(crate) fn read(name: &str, v: &Value, schema: &Schema) -> Result<History, SchemaError> {
    let mut hr = HistoryReader {
        r: Reader {
            name,
            ctx: "history".into(),
        },
        schema,
        versions: Vec::new(),
    };
    let top = hr.obj(v, "\"history\"")?;
    hr.r.keys(top, &["versions", "definitions", "relaxed"], "\"history\"")?;
    let vs = top
        .get("versions")
        .ok_or_else(|| hr.err("\"history\" is missing \"versions\""))?;
    let vs = hr.array(vs, "\"versions\"")?;
    if vs.is_empty() || vs.len() > MAX_VERSIONS {
        return Err(hr.err(format!(
            "\"versions\" must list 1 to {MAX_VERSIONS} versions, found {}",
            vs.len()
        )));
    }
    let mut versions: Vec<MergedVersion> = Vec::with_capacity(vs.len());
    for (i, x) in vs.iter().enumerate() {
        let what = format!("\"versions\"[{i}]");
        let o = hr.obj(x, &what)?;
        hr.r.keys(o, &["version", "source"], &what)?;
        let text = hr.string(
            o.get("version")
                .ok_or_else(|| hr.err(format!("{what} has no \"version\"")))?,
            &what,
        )?;
        let version = Version::parse(text)
            .filter(|p| p.to_string() == text)
            .ok_or_else(|| hr.err(format!("{what}: '{text}' is not a version like 7.2")))?;
        if versions.last().is_some_and(|p| p.version >= version) {
            return Err(hr.err(format!(
                "{what}: {version} does not come after {}; list versions oldest first, once each",
                versions[versions.len() - 1].version
            )));
        }
        let source = hr.string(
            o.get("source")
                .ok_or_else(|| hr.err(format!("{what} has no \"source\"")))?,
            &what,
        )?;
        versions.push(MergedVersion {
            version,
            source: source.to_string(),
        });
    }
    hr.versions = versions;
    let merged = facts::Facts::of(schema);
    let defs_v = top
        .get("definitions")
        .ok_or_else(|| hr.err("\"history\" is missing \"definitions\""))?;
    let mut definitions = Vec::new();
    let mut seen = HashSet::new();
    let mut def_keys: Vec<&str> = vec!["name", "in", "names"];
    def_keys.extend(
        Attr::ALL
            .iter()
            .filter(|a| !matches!(a, Attr::Type | Attr::Optional))
            .map(|a| a.key()),
    );
    def_keys.extend(ItemKind::ALL.iter().map(|k| k.list_key()));
    let def_attrs: Vec<Attr> = Attr::ALL
        .into_iter()
        .filter(|a| !matches!(a, Attr::Type | Attr::Optional))
        .collect();
    for (i, d) in hr.array(defs_v, "\"definitions\"")?.iter().enumerate() {
        let dname = d.get("name").and_then(Value::as_str).unwrap_or("?");
        hr.r.ctx = format!("history.definitions[{i}] '{dname}'");
        let o = hr.obj(d, "a history entry")?;
        hr.r.keys(o, &def_keys, "a history entry")?;
        let name = hr.string(
            o.get("name")
                .ok_or_else(|| hr.err("a history entry has no \"name\""))?,
            "\"name\"",
        )?;
        if schema.get(name).is_none() {
            return Err(hr.err(format!("'{name}' is not a definition of the schema")));
        }
        if !seen.insert(name.to_string()) {
            return Err(hr.err(format!("'{name}' has two history entries")));
        }
        let mut e = DefHistory::new(name.to_string());
        e.present = o.get("in").map(|p| hr.set(p, "\"in\"")).transpose()?;
        if let Some(ns) = o.get("names") {
            for (j, pair) in hr.array(ns, "\"names\"")?.iter().enumerate() {
                let what = format!("\"names\"[{j}]");
                let p = hr.array(pair, &what)?;
                if p.len() != 2 {
                    return Err(hr.err(format!("{what} must be a pair [name, versions]")));
                }
                e.names
                    .push((hr.string(&p[0], &what)?.to_string(), hr.set(&p[1], &what)?));
            }
        }
        e.attrs = hr.attrs(o, &def_attrs, "the definition")?;
        for kind in ItemKind::ALL {
            let items = hr.items(&e, o, kind, &merged)?;
            *e.items_mut(kind) = items;
        }
        definitions.push(e);
    }
    hr.r.ctx = "history.relaxed".into();
    let relaxed = hr.relaxed(
        top.get("relaxed")
            .ok_or_else(|| hr.err("\"history\" is missing \"relaxed\""))?,
    )?;
    Ok(History {
        versions: hr.versions,
        definitions,
        relaxed,
    })
}

impl HistoryReader<'_> {
    /// `"relaxed": {"replies": ["Owner.member", ...], "arguments": [...]}`: each a member the
    /// merged definitions require.
    fn relaxed(&self, v: &Value) -> Result<Relaxed, SchemaError> {
        let o = self.obj(v, "\"relaxed\"")?;
        self.r.keys(o, &["replies", "arguments"], "\"relaxed\"")?;
        let mut out = Relaxed::default();
        for (key, set) in [
            ("replies", &mut out.in_replies),
            ("arguments", &mut out.in_arguments),
        ] {
            let list = o
                .get(key)
                .ok_or_else(|| self.err(format!("\"relaxed\" is missing \"{key}\"")))?;
            for (i, x) in self.array(list, key)?.iter().enumerate() {
                let what = format!("\"{key}\"[{i}]");
                let text = self.string(x, &what)?;
                let (owner, member) = text.split_once('.').ok_or_else(|| {
                    self.err(format!(
                        "{what}: '{text}' is not a member like Owner.member"
                    ))
                })?;
                let members = match self.schema.get(owner) {
                    Some(Definition::Command(c)) => match &c.arguments {
                        Arguments::Members(m) => &m[..],
                        _ => &[],
                    },
                    Some(Definition::Event(e)) => match &e.data {
                        Arguments::Members(m) => &m[..],
                        _ => &[],
                    },
                    _ => self.schema.object_members(owner).unwrap_or(&[]),
                };
                let required = members.iter().any(|m| m.name == member && !m.optional);
                if !required {
                    return Err(self.err(format!(
                        "{what}: '{text}' is not a required member of the merged definitions"
                    )));
                }
                set.insert(Path::member(owner, member));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(list: &[&str]) -> Vec<MergedVersion> {
        list.iter()
            .map(|v| MergedVersion {
                version: Version::parse(v).expect("version"),
                source: String::new(),
            })
            .collect()
    }

    #[test]
    fn version_sets_as_text() {
        let vs = versions(&["2.12", "3.0", "3.1", "4.0", "4.1"]);
        let set = |idx: &[usize]| {
            let mut s = VersionSet::EMPTY;
            for i in idx {
                s.insert(*i);
            }
            s
        };
        for (idx, text) in [
            (&[][..], "none"),
            (&[0, 1, 2, 3, 4][..], "2.12-"),
            (&[0, 1][..], "2.12-3.0"),
            (&[2][..], "3.1"),
            (&[4][..], "4.1-"),
            (&[0, 2, 3, 4][..], "2.12,3.1-"),
            (&[0, 2, 4][..], "2.12,3.1,4.1-"),
        ] {
            assert_eq!(format_set(set(idx), &vs), text);
            assert_eq!(parse_set(text, &vs), Ok(set(idx)), "{text}");
        }
        assert_eq!(parse_set("3.0-4.0", &vs), Ok(set(&[1, 2, 3])));
        assert!(parse_set("4.0-3.0", &vs).is_err());
        assert!(parse_set("5.0", &vs).is_err());
        assert!(parse_set("3.0.0", &vs).is_err());
        assert!(parse_set("", &vs).is_err());
    }
}
