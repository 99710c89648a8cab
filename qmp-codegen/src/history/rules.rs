//! Answers the code generator needs from a merged schema: whether a member is required in
//! what QEMU sends and in arguments, and which member types changed how.
//!
//! Both requirement rules look at *positions*: the places where the merged schema uses an
//! object type (a member of some owner, a union branch, an alternate branch, a command's
//! return value or arguments, an event's data). In each version, a position holds a value
//! of that version's type, which may be an older type, inline members, or nothing at all (a
//! discriminator value that had no branch yet). A member is required only if the value at
//! every position, in every version where that position exists, always has it.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::model::{Arguments, Builtin, Definition, Feature, JsonType, Kind, Schema, TypeRef};

use super::facts::{facts_at, Facts};
use super::merge::integer_covers;
use super::{Attr, AttrValue, Data, Merged, Path, Relaxed, Version, VersionSet};

/// Whether a member must be present, in each direction ([`Merged::requirement`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requirement {
    /// In values QEMU sends (replies, events): `Some(true)` if every version that can send
    /// the member's owner always sends it. `None` if no version sends the owner.
    pub in_replies: Option<bool>,
    /// In arguments: `Some(true)` if every version that accepts the owner requires it.
    /// `None` if no version takes the owner as an argument.
    pub in_arguments: Option<bool>,
}

/// How a member's (or branch's, or return) type in some versions relates to the merged type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeChangeKind {
    /// Both are integers (JSON numbers); `covered`: every value of the old type fits the
    /// merged one.
    Integer {
        /// Whether the merged type's range holds the old one's.
        covered: bool,
    },
    /// JSON strings both: `str` and an enum, or two enums. Strings a newer enum does not know
    /// are kept by the generated code (`Other`).
    String,
    /// Two object types (or inline members and an object type): compatible member by
    /// member, which the requirement rules account for.
    Object,
    /// Every JSON type the old type takes is one the merged type takes (an alternate that has
    /// a branch for it, or `any`).
    Widened,
    /// The old type takes JSON values the merged one rejects.
    Incompatible,
}

/// A member, branch or return type that differed between versions ([`Merged::type_changes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeChange {
    /// Where: a member, a branch, an alternative, or a command (its return type).
    pub path: Path,
    /// The merged type.
    pub merged: Option<TypeRef>,
    /// Each other type, with the versions that had it and how it relates to the merged one.
    pub others: Vec<(Option<TypeRef>, VersionSet, TypeChangeKind)>,
    /// Versions in which QEMU sends values at this place (its owner is reachable from a
    /// return type or event).
    pub sent: VersionSet,
    /// Versions in which QEMU accepts values at this place (reachable from arguments).
    pub accepted: VersionSet,
}

/// Where the merged schema uses an object type.
#[derive(Debug, Clone)]
enum Pos {
    /// A member (of a struct, union base or inline arguments), alternate branch: its path,
    /// and whether the merged type is an array of the object type.
    Typed(Path, bool),
    /// A union branch.
    Branch(String, String),
    /// A command's return value (array or not).
    Returns(String, bool),
    /// A command's arguments or an event's data (a named type or inline members).
    Data(String),
}

/// What a position holds in one version.
enum Held {
    /// Values of this object type (or these inline members: the command or event's name).
    Object(String),
    /// Values without any member of the merged type (no branch yet, another JSON type).
    Nothing,
}

/// Precomputed facts of every version for the rules, and the positions of every object type
/// of the merged schema.
pub(crate) struct Versions {
    facts: Vec<Facts>,
    sent: Vec<HashSet<String>>,
    accepted: Vec<HashSet<String>>,
    positions: HashMap<String, Vec<Pos>>,
}

impl Versions {
    pub(crate) fn new(m: &Merged<'_>) -> Versions {
        let n = m.history().versions.len();
        let facts: Vec<Facts> = (0..n)
            .map(|i| facts_at(m.merged_facts(), m.history(), i))
            .collect();
        let reach = |f: &Facts, sent: bool| -> HashSet<String> {
            f.reachable(f.roots(sent))
                .into_iter()
                .map(str::to_string)
                .collect()
        };
        Versions {
            sent: facts.iter().map(|f| reach(f, true)).collect(),
            accepted: facts.iter().map(|f| reach(f, false)).collect(),
            facts,
            positions: positions(m.schema()),
        }
    }

    pub(crate) fn facts(&self, i: usize) -> &Facts {
        &self.facts[i]
    }
}

fn is_object(f: &Facts, name: &str) -> bool {
    matches!(f.kind(name), Some(Kind::Struct | Kind::Union))
}

/// What a position whose merged type is `[T]` (`array`) or `T` holds, given its type `t` in
/// one version.
fn held_by_type(f: &Facts, t: &TypeRef, array: bool) -> Held {
    let element = match (t, array) {
        (TypeRef::Array(e), true) => e.as_ref(),
        (TypeRef::Named(_), false) => t,
        _ => return Held::Nothing,
    };
    match element {
        TypeRef::Named(x) if is_object(f, x) => Held::Object(x.clone()),
        _ => Held::Nothing,
    }
}

impl Merged<'_> {
    fn versions_cache(&self) -> &Versions {
        self.versions.get_or_init(|| Versions::new(self))
    }
}

/// Every position of every object type of `schema`.
fn positions(schema: &Schema) -> HashMap<String, Vec<Pos>> {
    let mut out: HashMap<String, Vec<Pos>> = HashMap::new();
    let typed = |out: &mut HashMap<String, Vec<Pos>>, path: Path, t: &TypeRef| {
        let (array, name) = match t {
            TypeRef::Named(n) => (false, n.as_str()),
            TypeRef::Array(e) => match e.as_ref() {
                TypeRef::Named(n) => (true, n.as_str()),
                _ => return,
            },
            TypeRef::Builtin(_) => return,
        };
        if schema.is_object_type(name) {
            out.entry(name.to_string())
                .or_default()
                .push(Pos::Typed(path, array));
        }
    };
    for d in &schema.definitions {
        let name = d.name();
        match d {
            Definition::Struct(s) => {
                for m in &s.members {
                    typed(&mut out, Path::member(name, &m.name), &m.ty);
                }
            }
            Definition::Union(u) => {
                for m in &u.base_members {
                    typed(&mut out, Path::member(name, &m.name), &m.ty);
                }
                for b in &u.branches {
                    out.entry(b.ty_name.clone())
                        .or_default()
                        .push(Pos::Branch(name.to_string(), b.value.clone()));
                }
            }
            Definition::Alternate(a) => {
                for b in &a.branches {
                    typed(&mut out, Path::alternative(name, &b.name), &b.ty);
                }
            }
            Definition::Command(c) => {
                match &c.arguments {
                    Arguments::Members(ms) => {
                        for m in ms {
                            typed(&mut out, Path::member(name, &m.name), &m.ty);
                        }
                    }
                    Arguments::Type(t) => {
                        out.entry(t.clone())
                            .or_default()
                            .push(Pos::Data(name.to_string()));
                    }
                    Arguments::None => {}
                }
                if let Some(r) = &c.returns {
                    let (array, t) = match r {
                        TypeRef::Array(e) => (true, e.as_ref()),
                        t => (false, t),
                    };
                    if let TypeRef::Named(n) = t {
                        out.entry(n.clone())
                            .or_default()
                            .push(Pos::Returns(name.to_string(), array));
                    }
                }
            }
            Definition::Event(e) => match &e.data {
                Arguments::Members(ms) => {
                    for m in ms {
                        typed(&mut out, Path::member(name, &m.name), &m.ty);
                    }
                }
                Arguments::Type(t) => {
                    out.entry(t.clone())
                        .or_default()
                        .push(Pos::Data(name.to_string()));
                }
                Arguments::None => {}
            },
            Definition::Enum(_) => {}
        }
    }
    // Inline arguments and event data: the command or event is its own position.
    for d in &schema.definitions {
        let inline = match d {
            Definition::Command(c) => matches!(c.arguments, Arguments::Members(_)),
            Definition::Event(e) => matches!(e.data, Arguments::Members(_)),
            _ => false,
        };
        if inline {
            out.entry(d.name().to_string())
                .or_default()
                .push(Pos::Data(d.name().to_string()));
        }
    }
    out
}

impl Merged<'_> {
    /// What position `pos` holds in version `i`, in direction `sent`; `None` if the position
    /// does not exist there or carries nothing in that direction.
    fn held(&self, v: &Versions, pos: &Pos, i: usize, sent: bool) -> Option<Held> {
        let f = v.facts(i);
        let reach = if sent { &v.sent[i] } else { &v.accepted[i] };
        match pos {
            Pos::Typed(path, array) => {
                if !reach.contains(path.owner()) {
                    return None;
                }
                Some(held_by_type(f, f.type_of(path)?, *array))
            }
            Pos::Branch(union, value) => {
                if !reach.contains(union.as_str()) {
                    return None;
                }
                // The merged discriminator; a version's branches count only if that version's
                // union selects them by the same member.
                let disc = &self.schema().union_type(union)?.discriminator;
                let same_disc = matches!(
                    f.get(&Path::definition(union), Attr::Discriminator),
                    Some(AttrValue::Text(Some(d))) if d == disc
                );
                let branch = f.type_of(&Path::branch(union, value)).filter(|_| same_disc);
                if !sent {
                    // Arguments in the merged shape can only go to a version with that branch.
                    return branch.map(|t| held_by_type(f, t, false));
                }
                // Replies: every version whose discriminator member can take this value.
                let possible = match f.type_of(&Path::member(union, disc))? {
                    TypeRef::Builtin(Builtin::Str) => true,
                    TypeRef::Named(e) => f.items.contains_key(&Path::value(e, value)),
                    _ => false,
                };
                if !possible {
                    return None;
                }
                Some(branch.map_or(Held::Nothing, |t| held_by_type(f, t, false)))
            }
            Pos::Returns(command, array) => {
                if !sent {
                    return None;
                }
                match f.get(&Path::definition(command), Attr::Returns)? {
                    AttrValue::Type(Some(t)) => Some(held_by_type(f, t, *array)),
                    _ => Some(Held::Nothing),
                }
            }
            Pos::Data(owner) => {
                let kind = f.kind(owner)?;
                if (kind == Kind::Event) != sent {
                    return None;
                }
                Some(match f.get(&Path::definition(owner), Attr::Data)? {
                    AttrValue::Data(Data::Type(t)) if is_object(f, t) => Held::Object(t.clone()),
                    AttrValue::Data(Data::Members) => Held::Object(owner.clone()),
                    _ => Held::Nothing,
                })
            }
        }
    }

    fn required(
        &self,
        v: &Versions,
        positions: &[Pos],
        member: &str,
        sent: bool,
        versions: VersionSet,
    ) -> Option<bool> {
        let mut any = false;
        for pos in positions {
            for i in versions.iter() {
                let Some(held) = self.held(v, pos, i, sent) else {
                    continue;
                };
                any = true;
                let Held::Object(owner) = held else {
                    return Some(false);
                };
                let f = v.facts(i);
                let Some(attrs) = f.items.get(&Path::member(&owner, member)) else {
                    return Some(false);
                };
                let optional = matches!(attrs.get(&Attr::Optional), Some(AttrValue::Flag(true)));
                let conditional = matches!(attrs.get(&Attr::If), Some(AttrValue::Cond(Some(_))));
                let deprecated = matches!(
                    attrs.get(&Attr::Features),
                    Some(AttrValue::Features(fs)) if fs.iter().any(Feature::is_deprecated)
                );
                if optional || (sent && (conditional || deprecated)) {
                    return Some(false);
                }
            }
        }
        any.then_some(true)
    }

    /// Whether member `member` of `owner` (a struct, union base, or inline command or event
    /// arguments of the merged schema) is required.
    ///
    /// - **In replies and events** (rule *a*): required only if, at every place where the
    ///   merged schema uses `owner` in something QEMU sends, every version that can send a
    ///   value there always sends the member: present, not optional, unconditional and not
    ///   deprecated (QEMU hides deprecated members under `-compat deprecated-output=hide`).
    ///   For a union branch type, the versions are those whose discriminator can take that
    ///   value, including versions where the union was still a struct with a plain `str`
    ///   member: their values for that tag lack the branch's members.
    /// - **In arguments** (rule *b*): required only if every version that accepts `owner`
    ///   at some place declares the member required there. For a union branch type, only
    ///   versions that have that branch count: a version without it cannot accept those
    ///   members at all.
    ///
    /// Both are `None` for a direction in which the owner never travels.
    pub fn requirement(&self, owner: &str, member: &str) -> Requirement {
        self.requirement_in(owner, member, self.history().all())
    }

    /// [`Merged::requirement`] counting only `versions` (for code that supports only newer
    /// QEMU: [`Merged::versions_from`]).
    pub fn requirement_in(&self, owner: &str, member: &str, versions: VersionSet) -> Requirement {
        let v = self.versions_cache();
        let Some(pos) = v.positions.get(owner) else {
            return Requirement::default();
        };
        Requirement {
            in_replies: self.required(v, pos, member, true, versions),
            in_arguments: self.required(v, pos, member, false, versions),
        }
    }

    /// [`Merged::requirement`] for every member of the merged schema.
    pub fn requirements(&self) -> BTreeMap<Path, Requirement> {
        self.requirements_in(self.history().all())
    }

    /// [`Merged::requirement_in`] for every member of the merged schema.
    pub fn requirements_in(&self, versions: VersionSet) -> BTreeMap<Path, Requirement> {
        let v = self.versions_cache();
        let mut out = BTreeMap::new();
        for (p, _) in self.merged_facts().items.iter() {
            let Path::Member(owner, member) = p else {
                continue;
            };
            let r = match v.positions.get(owner.as_str()) {
                Some(pos) => Requirement {
                    in_replies: self.required(v, pos, member, true, versions),
                    in_arguments: self.required(v, pos, member, false, versions),
                },
                None => Requirement::default(),
            };
            out.insert(p.clone(), r);
        }
        out
    }

    /// The members required in the merged definitions that the rules make optional, counting
    /// `versions` (what [`merge`](super::merge) stores as [`History::relaxed`](super::History::relaxed) for all of
    /// them).
    pub fn relaxed_in(&self, versions: VersionSet) -> Relaxed {
        let mut out = Relaxed::default();
        for (p, r) in self.requirements_in(versions) {
            let required =
                self.merged_facts().items.get(&p).is_some_and(|a| {
                    !matches!(a.get(&Attr::Optional), Some(AttrValue::Flag(true)))
                });
            if !required {
                continue;
            }
            if r.in_replies == Some(false) {
                out.in_replies.insert(p.clone());
            }
            if r.in_arguments == Some(false) {
                out.in_arguments.insert(p);
            }
        }
        out
    }

    /// The merged versions from `oldest` on (all of them if `oldest` is older than every one).
    pub fn versions_from(&self, oldest: Version) -> VersionSet {
        let mut s = VersionSet::EMPTY;
        for (i, v) in self.history().versions.iter().enumerate() {
            if v.version >= oldest {
                s.insert(i);
            }
        }
        s
    }

    /// The JSON types a value of `t` can take (all of them for `any`).
    fn json_types(&self, t: &TypeRef) -> Vec<JsonType> {
        let all = vec![
            JsonType::String,
            JsonType::Number,
            JsonType::Boolean,
            JsonType::Null,
            JsonType::Object,
            JsonType::Array,
        ];
        match t {
            TypeRef::Builtin(Builtin::Any) => all,
            TypeRef::Named(n) => match self.schema().get(n) {
                Some(Definition::Alternate(a)) => {
                    let mut v: Vec<JsonType> = a
                        .branches
                        .iter()
                        .flat_map(|b| self.json_types(&b.ty))
                        .collect();
                    v.sort();
                    v.dedup();
                    v
                }
                _ => self.schema().json_type(t).into_iter().collect(),
            },
            _ => self.schema().json_type(t).into_iter().collect(),
        }
    }

    /// How an older type `old` relates to the merged type `new`.
    pub fn classify(&self, old: &TypeRef, new: &TypeRef) -> TypeChangeKind {
        match (old, new) {
            (TypeRef::Array(a), TypeRef::Array(b)) => return self.classify(a, b),
            (TypeRef::Builtin(a), TypeRef::Builtin(b)) if a.is_integer() && b.is_integer() => {
                return TypeChangeKind::Integer {
                    covered: integer_covers(*b, *a),
                }
            }
            _ => {}
        }
        let (jo, jn) = (self.json_types(old), self.json_types(new));
        if jo.len() == 1 && jo == jn {
            return match jo[0] {
                JsonType::String => TypeChangeKind::String,
                JsonType::Object => TypeChangeKind::Object,
                JsonType::Number => TypeChangeKind::Integer {
                    covered: *new == TypeRef::Builtin(Builtin::Number),
                },
                _ => TypeChangeKind::Widened,
            };
        }
        if jo.iter().all(|j| jn.contains(j)) {
            TypeChangeKind::Widened
        } else {
            TypeChangeKind::Incompatible
        }
    }

    /// Every member, branch, alternative and command return type that differed between
    /// versions, with how each older type relates to the merged one.
    pub fn type_changes(&self) -> Vec<TypeChange> {
        let v = self.versions_cache();
        let n = self.history().versions.len();
        let mut out = Vec::new();
        for (path, attrs) in self.merged_facts().items.iter() {
            let attr = match path {
                Path::Definition(_) => Attr::Returns,
                _ => Attr::Type,
            };
            let Some(AttrValue::Type(merged)) = attrs.get(&attr) else {
                continue;
            };
            let mut others: Vec<(Option<TypeRef>, VersionSet, TypeChangeKind)> = Vec::new();
            let mut sent = VersionSet::EMPTY;
            let mut accepted = VersionSet::EMPTY;
            for i in 0..n {
                let f = v.facts(i);
                let Some(AttrValue::Type(t)) = f.get(path, attr) else {
                    continue;
                };
                let owner = path.owner();
                let (s, a) = match f.kind(owner) {
                    Some(Kind::Command) => (attr == Attr::Returns, attr != Attr::Returns),
                    Some(Kind::Event) => (true, false),
                    _ => (v.sent[i].contains(owner), v.accepted[i].contains(owner)),
                };
                if s {
                    sent.insert(i);
                }
                if a {
                    accepted.insert(i);
                }
                if t == merged {
                    continue;
                }
                match others.iter_mut().find(|(x, _, _)| x == t) {
                    Some((_, set, _)) => set.insert(i),
                    None => {
                        let kind = match (t, merged) {
                            (Some(o), Some(m)) => self.classify(o, m),
                            _ => TypeChangeKind::Incompatible,
                        };
                        others.push((t.clone(), VersionSet::one(i), kind));
                    }
                }
            }
            if !others.is_empty() {
                out.push(TypeChange {
                    path: path.clone(),
                    merged: merged.clone(),
                    others,
                    sent,
                    accepted,
                });
            }
        }
        out
    }

    /// Checks that the history reproduces `schema`, the schema of merged version `version`,
    /// exactly (its facts: definitions, items, types, optionality, conditions, features,
    /// flags; not doc prose, since-versions, bases or order). Returns the differences, each
    /// naming the path.
    pub fn verify(&self, version: super::Version, schema: &Schema) -> Result<(), Vec<String>> {
        let Some(i) = self.history().index_of(version) else {
            return Err(vec![format!("{version} is not one of the merged versions")]);
        };
        let mut map: HashMap<String, String> = HashMap::new();
        for d in &self.schema().definitions {
            if let Some(name) = self.name_at(d.name(), i) {
                map.insert(name.to_string(), d.name().to_string());
            }
        }
        let want = Facts::of(schema).renamed(&map);
        let have = &self.versions_cache().facts[i];
        if &want == have {
            return Ok(());
        }
        let mut diffs = Vec::new();
        for (p, a) in &want.items {
            match have.items.get(p) {
                None => diffs.push(format!("{p}: missing from the history's {version}")),
                Some(b) if a != b => diffs.push(format!("{p}: {version} has {a:?}, history {b:?}")),
                _ => {}
            }
        }
        for p in have.items.keys() {
            if !want.items.contains_key(p) {
                diffs.push(format!(
                    "{p}: the history's {version} has it, the schema does not"
                ));
            }
        }
        Err(diffs)
    }
}
