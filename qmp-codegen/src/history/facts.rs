//! The facts of a schema that history records: every definition and item with its
//! attributes, as a flat map from [`Path`] to values. Two schemas are the same for history
//! purposes when their facts are equal; doc prose, since-versions, locations, struct bases
//! (members are flattened) and the order of members and values are not facts.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::model::{Arguments, Definition, Kind, Member, Schema, TypeRef};

use super::{Attr, AttrValue, Data, History, ItemKind, Path};

/// Attribute values of one definition or item.
pub(crate) type Attrs = BTreeMap<Attr, AttrValue>;

/// Everything history compares, for one schema.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Facts {
    pub(crate) items: BTreeMap<Path, Attrs>,
}

fn member_attrs(m: &Member) -> Attrs {
    let mut a = Attrs::new();
    a.insert(Attr::If, AttrValue::Cond(m.cond.clone()));
    a.insert(Attr::Features, AttrValue::Features(m.features.clone()));
    a.insert(Attr::Type, AttrValue::Type(Some(m.ty.clone())));
    a.insert(Attr::Optional, AttrValue::Flag(m.optional));
    a
}

fn data_value(a: &Arguments) -> AttrValue {
    AttrValue::Data(match a {
        Arguments::None => Data::None,
        Arguments::Members(_) => Data::Members,
        Arguments::Type(t) => Data::Type(t.clone()),
    })
}

impl Facts {
    /// The facts of `schema`, under its own names.
    pub(crate) fn of(schema: &Schema) -> Facts {
        let mut items = BTreeMap::new();
        for d in &schema.definitions {
            let name = d.name();
            let mut a = Attrs::new();
            a.insert(Attr::Kind, AttrValue::Kind(d.kind()));
            a.insert(Attr::If, AttrValue::Cond(d.cond().cloned()));
            a.insert(Attr::Features, AttrValue::Features(d.features().to_vec()));
            let mut members = |ms: &[Member]| {
                for m in ms {
                    items.insert(Path::member(name, &m.name), member_attrs(m));
                }
            };
            match d {
                Definition::Enum(e) => {
                    a.insert(Attr::Implicit, AttrValue::Flag(e.implicit));
                    a.insert(Attr::Prefix, AttrValue::Text(e.prefix.clone()));
                    for v in &e.values {
                        let mut va = Attrs::new();
                        va.insert(Attr::If, AttrValue::Cond(v.cond.clone()));
                        va.insert(Attr::Features, AttrValue::Features(v.features.clone()));
                        items.insert(Path::value(name, &v.name), va);
                    }
                }
                Definition::Struct(s) => {
                    a.insert(Attr::Implicit, AttrValue::Flag(s.implicit));
                    members(&s.members);
                }
                Definition::Union(u) => {
                    a.insert(
                        Attr::Discriminator,
                        AttrValue::Text(Some(u.discriminator.clone())),
                    );
                    a.insert(Attr::SimpleLegacy, AttrValue::Flag(u.simple_legacy));
                    members(&u.base_members);
                    for b in &u.branches {
                        let mut ba = Attrs::new();
                        ba.insert(Attr::If, AttrValue::Cond(b.cond.clone()));
                        ba.insert(
                            Attr::Type,
                            AttrValue::Type(Some(TypeRef::Named(b.ty_name.clone()))),
                        );
                        items.insert(Path::branch(name, &b.value), ba);
                    }
                }
                Definition::Alternate(alt) => {
                    for b in &alt.branches {
                        let mut ba = Attrs::new();
                        ba.insert(Attr::If, AttrValue::Cond(b.cond.clone()));
                        ba.insert(Attr::Type, AttrValue::Type(Some(b.ty.clone())));
                        items.insert(Path::alternative(name, &b.name), ba);
                    }
                }
                Definition::Command(c) => {
                    a.insert(Attr::Data, data_value(&c.arguments));
                    a.insert(Attr::Returns, AttrValue::Type(c.returns.clone()));
                    a.insert(Attr::Boxed, AttrValue::Flag(c.boxed));
                    a.insert(Attr::SuccessResponse, AttrValue::Flag(c.success_response));
                    a.insert(Attr::Gen, AttrValue::Flag(c.gen));
                    a.insert(Attr::AllowOob, AttrValue::Flag(c.allow_oob));
                    a.insert(Attr::AllowPreconfig, AttrValue::Flag(c.allow_preconfig));
                    a.insert(Attr::Coroutine, AttrValue::Flag(c.coroutine));
                    if let Arguments::Members(ms) = &c.arguments {
                        members(ms);
                    }
                }
                Definition::Event(e) => {
                    a.insert(Attr::Data, data_value(&e.data));
                    a.insert(Attr::Boxed, AttrValue::Flag(e.boxed));
                    if let Arguments::Members(ms) = &e.data {
                        members(ms);
                    }
                }
            }
            items.insert(Path::definition(name), a);
        }
        Facts { items }
    }

    /// The same facts with definition names mapped through `map` (names not in it are kept).
    pub(crate) fn renamed(self, map: &HashMap<String, String>) -> Facts {
        let rename = |n: &str| map.get(n).cloned().unwrap_or_else(|| n.to_string());
        let items = self
            .items
            .into_iter()
            .map(|(p, attrs)| {
                let p = p.with_owner(rename(p.owner()));
                let attrs = attrs
                    .into_iter()
                    .map(|(k, v)| (k, rename_value(v, &rename)))
                    .collect();
                (p, attrs)
            })
            .collect();
        Facts { items }
    }

    /// Item paths per owner, in path order.
    pub(crate) fn items_of<'a>(
        &'a self,
        owner: &'a str,
        kind: ItemKind,
    ) -> impl Iterator<Item = &'a Path> + 'a {
        let start = kind.path(owner, "");
        self.items
            .range(start..)
            .map(|(p, _)| p)
            .take_while(move |p| p.owner() == owner && p.item_kind() == Some(kind))
    }

    /// The value of `attr` of `path`.
    pub(crate) fn get(&self, path: &Path, attr: Attr) -> Option<&AttrValue> {
        self.items.get(path)?.get(&attr)
    }

    /// The kind of definition `name`.
    pub(crate) fn kind(&self, name: &str) -> Option<Kind> {
        match self.get(&Path::definition(name), Attr::Kind)? {
            AttrValue::Kind(k) => Some(*k),
            _ => None,
        }
    }

    /// The type of a member, branch or alternative.
    pub(crate) fn type_of(&self, path: &Path) -> Option<&TypeRef> {
        match self.get(path, Attr::Type)? {
            AttrValue::Type(t) => t.as_ref(),
            _ => None,
        }
    }

    /// Named types reachable from `roots` (definition names: types, or commands and events
    /// standing for their inline members) through members, union branches and alternates.
    pub(crate) fn reachable<'a>(&'a self, roots: Vec<&'a str>) -> HashSet<&'a str> {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut todo = roots;
        while let Some(n) = todo.pop() {
            if !seen.insert(n) {
                continue;
            }
            for kind in [ItemKind::Member, ItemKind::Branch, ItemKind::Alternative] {
                for p in self.items_of(n, kind) {
                    if let Some(t) = self.type_of(p).and_then(TypeRef::named) {
                        todo.push(t);
                    }
                }
            }
        }
        seen
    }

    /// Roots of what QEMU sends (command return types, event data) or receives (command
    /// arguments).
    pub(crate) fn roots(&self, sent: bool) -> Vec<&str> {
        let mut out = Vec::new();
        for (p, a) in &self.items {
            let Path::Definition(name) = p else { continue };
            match (a.get(&Attr::Kind), sent) {
                (Some(AttrValue::Kind(Kind::Command)), true) => {
                    if let Some(AttrValue::Type(Some(t))) = a.get(&Attr::Returns) {
                        out.extend(t.named());
                    }
                }
                (Some(AttrValue::Kind(Kind::Event)), true)
                | (Some(AttrValue::Kind(Kind::Command)), false) => match a.get(&Attr::Data) {
                    Some(AttrValue::Data(Data::Type(t))) => out.push(t.as_str()),
                    Some(AttrValue::Data(Data::Members)) => out.push(name.as_str()),
                    _ => {}
                },
                _ => {}
            }
        }
        out
    }
}

fn rename_value(v: AttrValue, rename: &dyn Fn(&str) -> String) -> AttrValue {
    match v {
        AttrValue::Type(Some(t)) => AttrValue::Type(Some(rename_type(&t, rename))),
        AttrValue::Data(Data::Type(t)) => AttrValue::Data(Data::Type(rename(&t))),
        other => other,
    }
}

pub(crate) fn rename_type(t: &TypeRef, rename: &dyn Fn(&str) -> String) -> TypeRef {
    match t {
        TypeRef::Builtin(b) => TypeRef::Builtin(*b),
        TypeRef::Named(n) => TypeRef::Named(rename(n)),
        TypeRef::Array(e) => TypeRef::Array(Box::new(rename_type(e, rename))),
    }
}

/// The default attributes of an item the merged schema does not have (it lives in the
/// history only): required, unconditional, no features. `type` has no default.
pub(crate) fn item_defaults(kind: ItemKind) -> Attrs {
    let mut a = Attrs::new();
    a.insert(Attr::If, AttrValue::Cond(None));
    match kind {
        ItemKind::Member => {
            a.insert(Attr::Features, AttrValue::Features(Vec::new()));
            a.insert(Attr::Optional, AttrValue::Flag(false));
        }
        ItemKind::Value => {
            a.insert(Attr::Features, AttrValue::Features(Vec::new()));
        }
        ItemKind::Branch | ItemKind::Alternative => {}
    }
    a
}

/// Defaults of definition attributes the merged definition's kind lacks (a struct's
/// `implicit` when the merged definition is a union, say): what the normalized format
/// means when the key is left out.
pub(crate) fn definition_defaults() -> Attrs {
    let mut a = Attrs::new();
    for (k, v) in [
        (Attr::Implicit, false),
        (Attr::SimpleLegacy, false),
        (Attr::Boxed, false),
        (Attr::SuccessResponse, true),
        (Attr::Gen, true),
        (Attr::AllowOob, false),
        (Attr::AllowPreconfig, false),
        (Attr::Coroutine, false),
    ] {
        a.insert(k, AttrValue::Flag(v));
    }
    a.insert(Attr::Prefix, AttrValue::Text(None));
    a.insert(Attr::Data, AttrValue::Data(Data::None));
    a.insert(Attr::Returns, AttrValue::Type(None));
    a
}

/// The facts of version `i`, rebuilt from the merged facts and the history.
pub(crate) fn facts_at(merged: &Facts, history: &History, i: usize) -> Facts {
    let all = history.all();
    let entries: HashMap<&str, &super::DefHistory> = history
        .definitions
        .iter()
        .map(|d| (d.name.as_str(), d))
        .collect();
    let apply = |attrs: &mut Attrs, hist: &[super::AttrHistory]| {
        for h in hist {
            if let Some(v) = h.at(i) {
                attrs.insert(h.attr, v.clone());
            }
        }
    };
    let mut items = BTreeMap::new();
    // Definitions first: items need their owner's presence.
    let mut def_present: HashMap<&str, bool> = HashMap::new();
    for (p, attrs) in &merged.items {
        let Path::Definition(name) = p else { continue };
        let entry = entries.get(name.as_str());
        let present = entry.and_then(|e| e.present).unwrap_or(all).contains(i);
        def_present.insert(name, present);
        if !present {
            continue;
        }
        let mut a = definition_defaults();
        a.extend(attrs.iter().map(|(k, v)| (*k, v.clone())));
        if let Some(e) = entry {
            apply(&mut a, &e.attrs);
        }
        if let Some(AttrValue::Kind(k)) = a.get(&Attr::Kind) {
            let keep = Attr::of_definition(*k);
            a.retain(|k, _| keep.contains(k));
        }
        items.insert(p.clone(), a);
    }
    let item_entry = |p: &Path| -> Option<&super::ItemHistory> {
        let kind = p.item_kind()?;
        entries
            .get(p.owner())?
            .items(kind)
            .iter()
            .find(|it| Some(it.name.as_str()) == p.item())
    };
    for (p, attrs) in &merged.items {
        if matches!(p, Path::Definition(_)) {
            continue;
        }
        let owner = def_present.get(p.owner()).copied().unwrap_or(false);
        let entry = item_entry(p);
        let present = match entry.and_then(|e| e.present) {
            Some(s) => s.contains(i),
            None => owner,
        };
        if !present {
            continue;
        }
        let mut a = attrs.clone();
        if let Some(e) = entry {
            apply(&mut a, &e.attrs);
        }
        items.insert(p.clone(), a);
    }
    // Items only the history has.
    for e in &history.definitions {
        let owner = def_present.get(e.name.as_str()).copied().unwrap_or(false);
        for kind in ItemKind::ALL {
            for it in e.items(kind) {
                let p = kind.path(&e.name, &it.name);
                if merged.items.contains_key(&p) {
                    continue;
                }
                if !it.present.map_or(owner, |s| s.contains(i)) {
                    continue;
                }
                let mut a = item_defaults(kind);
                apply(&mut a, &it.attrs);
                items.insert(p, a);
            }
        }
    }
    Facts { items }
}
