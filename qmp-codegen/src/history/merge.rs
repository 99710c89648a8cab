//! Building a merged schema from the checked schemas of several versions.
//!
//! 1. **Canonical names.** Walking from the newest version back, a definition keeps the
//!    identity of the definition of the same name in the next version. A name that vanishes
//!    is followed to its new name when every position that used it (the same member of the
//!    same owner, the same branch of the same union, the same command's arguments or
//!    return...) uses one and the same type in the next version, and that type is new there
//!    and of the same kind. Otherwise the definition was removed.
//! 2. **Merged definitions.** Each definition is taken from the newest version that has it
//!    (references renamed to canonical names). Members, enum values and branches that only
//!    older versions had are added back (members as optional) where they fit without a name
//!    clash; what does not fit lives in the history only.
//! 3. **Member types.** A member keeps its newest type, except that in types QEMU sends, an
//!    integer member whose older range the newest type does not cover gets the narrowest
//!    built-in integer type covering every version (when one exists).
//! 4. **History.** The facts of each version (under canonical names) are compared with the
//!    facts of the merged schema; every difference is recorded.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::check::c_name;
use crate::error::{Location, SchemaError};
use crate::model::{
    AltBranch, Arguments, Branch, Builtin, Definition, EnumValue, JsonType, Kind, Member, Pragmas,
    Schema, TypeRef, UnionBase,
};
use crate::normalized;

use super::facts::{definition_defaults, item_defaults, rename_type, Attrs, Facts};
use super::{
    Attr, AttrHistory, AttrValue, DefHistory, History, ItemHistory, ItemKind, MergedSchema,
    MergedVersion, Path, Version, VersionSet, MAX_VERSIONS,
};

/// One version's schema, for [`merge`].
#[derive(Debug, Clone)]
pub struct MergeInput {
    /// Its release.
    pub version: Version,
    /// Where it came from (recorded in the history), e.g.
    /// `qemu-7.2.0/qapi/qapi-schema.json`.
    pub source: String,
    /// The checked schema.
    pub schema: Schema,
}

impl MergeInput {
    /// One version's schema.
    pub fn new(version: Version, source: impl Into<String>, schema: Schema) -> MergeInput {
        MergeInput {
            version,
            source: source.into(),
            schema,
        }
    }
}

/// Why schemas could not be merged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// No schema was given.
    #[error("nothing to merge: give the schemas of at least one version")]
    Empty,
    /// Two inputs claim the same version.
    #[error("version {version} is given twice ({first} and {second}); give each version once")]
    DuplicateVersion {
        /// The version.
        version: Version,
        /// The first input's source.
        first: String,
        /// The second input's source.
        second: String,
    },
    /// More versions than a [`super::VersionSet`] holds.
    #[error("{count} versions given; a merged schema holds at most {MAX_VERSIONS}")]
    TooManyVersions {
        /// How many were given.
        count: usize,
    },
    /// A name changed kind in a way the merge cannot represent.
    #[error(
        "'{name}' is {old} in {old_version} but {new} in {new_version}; under one name only a \
         struct may become a union (or back). Give one of them another name in the schema"
    )]
    KindChange {
        /// The name.
        name: String,
        /// Its kind in the older version.
        old: Kind,
        /// The older version.
        old_version: Version,
        /// Its kind in the newer version.
        new: Kind,
        /// The newer version.
        new_version: Version,
    },
    /// Two definitions of one version map to the same merged definition.
    #[error(
        "in {version}, '{name}' cannot be merged: its name is taken by '{other}', which became \
         '{name}' later"
    )]
    NameConflict {
        /// The version.
        version: Version,
        /// The definition that could not be placed.
        name: String,
        /// The definition of the same version that maps to that name.
        other: String,
    },
    /// The merged schema fails the check (a bug in the merge).
    #[error(
        "the merged schema does not pass the check (a bug in the merge, please report it): {0}"
    )]
    Check(SchemaError),
}

fn kinds_compatible(a: Kind, b: Kind) -> bool {
    a == b
        || matches!(
            (a, b),
            (Kind::Struct, Kind::Union) | (Kind::Union, Kind::Struct)
        )
}

/// Where a type is used inside a definition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Role {
    Member(String),
    Branch(String),
    Alternative(String),
    Base,
    Data,
    Returns,
}

fn positions(d: &Definition) -> Vec<(Role, TypeRef)> {
    let mut out = Vec::new();
    let members = |out: &mut Vec<(Role, TypeRef)>, ms: &[Member]| {
        out.extend(
            ms.iter()
                .map(|m| (Role::Member(m.name.clone()), m.ty.clone())),
        );
    };
    match d {
        Definition::Enum(_) => {}
        Definition::Struct(s) => {
            members(&mut out, &s.members);
            if let Some(b) = &s.base {
                out.push((Role::Base, TypeRef::Named(b.clone())));
            }
        }
        Definition::Union(u) => {
            members(&mut out, &u.base_members);
            if let Some(b) = u.base_name() {
                out.push((Role::Base, TypeRef::Named(b.to_string())));
            }
            for b in &u.branches {
                out.push((
                    Role::Branch(b.value.clone()),
                    TypeRef::Named(b.ty_name.clone()),
                ));
            }
        }
        Definition::Alternate(a) => {
            for b in &a.branches {
                out.push((Role::Alternative(b.name.clone()), b.ty.clone()));
            }
        }
        Definition::Command(c) => {
            match &c.arguments {
                Arguments::Members(ms) => members(&mut out, ms),
                Arguments::Type(t) => out.push((Role::Data, TypeRef::Named(t.clone()))),
                Arguments::None => {}
            }
            if let Some(r) = &c.returns {
                out.push((Role::Returns, r.clone()));
            }
        }
        Definition::Event(e) => match &e.data {
            Arguments::Members(ms) => members(&mut out, ms),
            Arguments::Type(t) => out.push((Role::Data, TypeRef::Named(t.clone()))),
            Arguments::None => {}
        },
    }
    out
}

/// The named type at the same place of two type references of the same shape.
fn same_shape<'a>(old: &TypeRef, new: &'a TypeRef) -> Option<&'a str> {
    match (old, new) {
        (TypeRef::Named(_), TypeRef::Named(n)) => Some(n),
        (TypeRef::Array(a), TypeRef::Array(b)) => same_shape(a, b),
        _ => None,
    }
}

/// For each version, the canonical name of each of its definitions.
fn canonical_names(inputs: &[MergeInput]) -> Result<Vec<HashMap<String, String>>, MergeError> {
    let n = inputs.len();
    let mut canon: Vec<HashMap<String, String>> = vec![HashMap::new(); n];
    // Canonical name -> (kind, version) in the newest version that has it.
    let mut known: HashMap<String, (Kind, Version)> = HashMap::new();
    let newest = &inputs[n - 1];
    for d in &newest.schema.definitions {
        canon[n - 1].insert(d.name().to_string(), d.name().to_string());
        known.insert(d.name().to_string(), (d.kind(), newest.version));
    }
    for i in (0..n.saturating_sub(1)).rev() {
        let cur = &inputs[i].schema;
        let next = &inputs[i + 1].schema;
        let next_canon = &canon[i + 1];
        let next_by_canon: HashMap<&str, &str> = next_canon
            .iter()
            .map(|(name, c)| (c.as_str(), name.as_str()))
            .collect();
        let next_positions: HashMap<&str, HashMap<Role, TypeRef>> = next
            .definitions
            .iter()
            .map(|d| (d.name(), positions(d).into_iter().collect()))
            .collect();
        let mut map: HashMap<String, String> = HashMap::new();
        let mut claimed: HashMap<String, String> = HashMap::new();
        for d in &cur.definitions {
            let Some(nd) = next.get(d.name()) else {
                continue;
            };
            if !kinds_compatible(d.kind(), nd.kind()) {
                return Err(MergeError::KindChange {
                    name: d.name().to_string(),
                    old: d.kind(),
                    old_version: inputs[i].version,
                    new: nd.kind(),
                    new_version: inputs[i + 1].version,
                });
            }
            let c = next_canon[d.name()].clone();
            claimed.insert(c.clone(), d.name().to_string());
            map.insert(d.name().to_string(), c);
        }
        // Renames, decided by position. Strict rounds wait until every owner using a
        // candidate is mapped; when they stall, one lenient round decides on what is known.
        let mut strict = true;
        loop {
            let mut proposals: BTreeMap<&str, Option<&str>> = BTreeMap::new();
            let mut waiting: HashSet<&str> = HashSet::new();
            for d in &cur.definitions {
                let owner = map.get(d.name());
                for (role, t) in positions(d) {
                    let Some(old) = t.named() else { continue };
                    // The definition's own name, borrowed from the schema rather than `t`.
                    let Some(old) = cur.get(old).map(|od| od.name()) else {
                        continue;
                    };
                    if map.contains_key(old) || next.get(old).is_some() {
                        continue;
                    }
                    let Some(c) = owner else {
                        waiting.insert(old);
                        continue;
                    };
                    let Some(new_pos) = next_by_canon
                        .get(c.as_str())
                        .and_then(|nn| next_positions.get(nn))
                    else {
                        continue;
                    };
                    let Some(nt) = new_pos.get(&role) else {
                        continue;
                    };
                    let target = same_shape(&t, nt);
                    let e = proposals.entry(old).or_insert(target);
                    if *e != target {
                        *e = None;
                    }
                }
            }
            let mut votes: HashMap<&str, usize> = HashMap::new();
            for t in proposals.values().flatten() {
                *votes.entry(t).or_default() += 1;
            }
            let mut progress = false;
            for (old, target) in &proposals {
                let Some(t) = target else { continue };
                if (strict && waiting.contains(old))
                    || cur.get(t).is_some()
                    || votes.get(t) != Some(&1)
                {
                    continue;
                }
                let (Some(od), Some(nd)) = (cur.get(old), next.get(t)) else {
                    continue;
                };
                let c = next_canon[*t].clone();
                if claimed.contains_key(&c) || !kinds_compatible(od.kind(), nd.kind()) {
                    continue;
                }
                claimed.insert(c.clone(), old.to_string());
                map.insert(old.to_string(), c);
                progress = true;
            }
            if progress {
                strict = true;
            } else if strict {
                strict = false;
            } else {
                break;
            }
        }
        for d in &cur.definitions {
            let name = d.name();
            if map.contains_key(name) {
                continue;
            }
            if let Some(other) = claimed.get(name) {
                return Err(MergeError::NameConflict {
                    version: inputs[i].version,
                    name: name.to_string(),
                    other: other.clone(),
                });
            }
            if let Some((k, v)) = known.get(name) {
                if !kinds_compatible(d.kind(), *k) {
                    return Err(MergeError::KindChange {
                        name: name.to_string(),
                        old: d.kind(),
                        old_version: inputs[i].version,
                        new: *k,
                        new_version: *v,
                    });
                }
            } else {
                known.insert(name.to_string(), (d.kind(), inputs[i].version));
            }
            claimed.insert(name.to_string(), name.to_string());
            map.insert(name.to_string(), name.to_string());
        }
        canon[i] = map;
    }
    Ok(canon)
}

/// `d` with every name mapped to its canonical name, and without prose or location.
fn rename_def(d: &Definition, map: &HashMap<String, String>) -> Definition {
    let r = |n: &str| map.get(n).cloned().unwrap_or_else(|| n.to_string());
    let rt = |t: &TypeRef| rename_type(t, &r);
    let rm = |ms: &[Member]| -> Vec<Member> {
        ms.iter()
            .map(|m| Member {
                ty: rt(&m.ty),
                doc: None,
                ..m.clone()
            })
            .collect()
    };
    let mut d = d.clone();
    match &mut d {
        Definition::Enum(e) => {
            e.name = r(&e.name);
            e.doc = None;
            e.location = Location::unknown();
            for v in &mut e.values {
                v.doc = None;
            }
        }
        Definition::Struct(s) => {
            s.name = r(&s.name);
            s.base = s.base.as_deref().map(r);
            s.own_members = rm(&s.own_members);
            s.members = rm(&s.members);
            s.doc = None;
            s.location = Location::unknown();
        }
        Definition::Union(u) => {
            u.name = r(&u.name);
            u.base = match &u.base {
                UnionBase::Named(n) => UnionBase::Named(r(n)),
                UnionBase::Inline(ms) => UnionBase::Inline(rm(ms)),
            };
            u.base_members = rm(&u.base_members);
            u.discriminator_enum = r(&u.discriminator_enum);
            for b in &mut u.branches {
                b.ty_name = r(&b.ty_name);
            }
            u.doc = None;
            u.location = Location::unknown();
        }
        Definition::Alternate(a) => {
            a.name = r(&a.name);
            for b in &mut a.branches {
                b.ty = rt(&b.ty);
            }
            a.doc = None;
            a.location = Location::unknown();
        }
        Definition::Command(c) => {
            c.name = r(&c.name);
            c.arguments = match &c.arguments {
                Arguments::None => Arguments::None,
                Arguments::Members(ms) => Arguments::Members(rm(ms)),
                Arguments::Type(t) => Arguments::Type(r(t)),
            };
            c.returns = c.returns.as_ref().map(rt);
            c.doc = None;
            c.location = Location::unknown();
        }
        Definition::Event(e) => {
            e.name = r(&e.name);
            e.data = match &e.data {
                Arguments::None => Arguments::None,
                Arguments::Members(ms) => Arguments::Members(rm(ms)),
                Arguments::Type(t) => Arguments::Type(r(t)),
            };
            e.doc = None;
            e.location = Location::unknown();
        }
    }
    d
}

/// The merged definitions while they are being built.
struct Draft {
    defs: Vec<Definition>,
    index: HashMap<String, usize>,
}

impl Draft {
    fn get(&self, name: &str) -> Option<&Definition> {
        self.index.get(name).and_then(|&i| self.defs.get(i))
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut Definition> {
        let i = *self.index.get(name)?;
        self.defs.get_mut(i)
    }

    /// The wire members of an object type (struct with its bases, union base), by name.
    fn flat(&self, name: &str, depth: usize) -> Vec<String> {
        if depth > 64 {
            return Vec::new();
        }
        match self.get(name) {
            Some(Definition::Struct(s)) => {
                let mut out = s
                    .base
                    .as_deref()
                    .map(|b| self.flat(b, depth + 1))
                    .unwrap_or_default();
                out.extend(s.own_members.iter().map(|m| m.name.clone()));
                out
            }
            Some(Definition::Union(u)) => match &u.base {
                UnionBase::Named(b) => self.flat(b, depth + 1),
                UnionBase::Inline(ms) => ms.iter().map(|m| m.name.clone()).collect(),
            },
            Some(Definition::Command(c)) => match &c.arguments {
                Arguments::Members(ms) => ms.iter().map(|m| m.name.clone()).collect(),
                _ => Vec::new(),
            },
            Some(Definition::Event(e)) => match &e.data {
                Arguments::Members(ms) => ms.iter().map(|m| m.name.clone()).collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// Names (C-mapped) an object type can put on the wire: its members and, for a union,
    /// those of every branch, recursively.
    fn contributed(&self, name: &str, seen: &mut HashSet<String>, out: &mut HashSet<String>) {
        if !seen.insert(name.to_string()) {
            return;
        }
        out.extend(self.flat(name, 0).iter().map(|n| c_name(n)));
        if let Some(Definition::Union(u)) = self.get(name) {
            for b in &u.branches {
                self.contributed(&b.ty_name, seen, out);
            }
        }
    }

    /// Names (C-mapped) that can share a wire object with the members of `name`: its own
    /// and (with `branches`) its branches', those of every struct or union built on it, and
    /// the base members of every union that has it as a branch.
    fn cooccurring(&self, name: &str, branches: bool) -> HashSet<String> {
        let mut out = HashSet::new();
        let mut seen: HashSet<(String, bool)> = HashSet::new();
        let mut todo = vec![(name.to_string(), branches)];
        while let Some((x, full)) = todo.pop() {
            if !seen.insert((x.clone(), full)) || seen.len() > 10_000 {
                continue;
            }
            if full {
                self.contributed(&x, &mut HashSet::new(), &mut out);
            } else {
                out.extend(self.flat(&x, 0).iter().map(|n| c_name(n)));
            }
            if matches!(
                self.get(&x),
                Some(Definition::Command(_) | Definition::Event(_))
            ) {
                continue;
            }
            for d in &self.defs {
                match d {
                    Definition::Struct(s) if s.base.as_deref() == Some(x.as_str()) => {
                        todo.push((s.name.clone(), true));
                    }
                    Definition::Union(u) => {
                        if u.base_name() == Some(x.as_str()) {
                            todo.push((u.name.clone(), true));
                        } else if u.branches.iter().any(|b| b.ty_name == x) {
                            todo.push((u.name.clone(), false));
                        }
                    }
                    _ => {}
                }
            }
        }
        out
    }

    /// The JSON types values of `t` can take, as the check's alternate rule sees them.
    fn claims(&self, t: &TypeRef) -> Option<Vec<JsonType>> {
        Some(match t {
            TypeRef::Array(_) => vec![JsonType::Array],
            TypeRef::Builtin(Builtin::Any) => return None,
            TypeRef::Builtin(Builtin::Str) => {
                vec![JsonType::String, JsonType::Number, JsonType::Boolean]
            }
            TypeRef::Builtin(b) => vec![b.json_type()?],
            TypeRef::Named(n) => match self.get(n)? {
                Definition::Struct(_) | Definition::Union(_) => vec![JsonType::Object],
                Definition::Enum(e) => {
                    let mut v = vec![JsonType::String];
                    if e.values.iter().any(|x| x.name == "on" || x.name == "off") {
                        v.push(JsonType::Boolean);
                    }
                    if e.values.iter().any(|x| {
                        x.name.starts_with(|c: char| {
                            c.is_ascii_digit() || matches!(c, '-' | '+' | '.')
                        })
                    }) {
                        v.push(JsonType::Number);
                    }
                    v
                }
                _ => return None,
            },
        })
    }
}

/// Inserts `item` after the item called `after` (if present), else at the end.
fn insert_after<T>(list: &mut Vec<T>, item: T, after: Option<&str>, name: impl Fn(&T) -> &str) {
    let pos = after
        .and_then(|a| list.iter().position(|x| name(x) == a))
        .map_or(list.len(), |p| p + 1);
    list.insert(pos, item);
}

/// A removed item to place back into its merged definition.
struct Removed<T> {
    item: T,
    after: Option<String>,
    /// For a branch: the discriminator its union had in that version.
    discriminator: Option<String>,
}

/// The item of `kind` called `item` in definition `def`, with the name of the item before it
/// and its index.
fn find_item(
    def: &Definition,
    kind: ItemKind,
    item: &str,
) -> Option<(Found, Option<String>, usize)> {
    fn pick<T: Clone>(
        list: &[T],
        name: impl Fn(&T) -> &str,
        item: &str,
    ) -> Option<(T, Option<String>, usize)> {
        let i = list.iter().position(|x| name(x) == item)?;
        let after = i.checked_sub(1).map(|j| name(&list[j]).to_string());
        Some((list[i].clone(), after, i))
    }
    match (kind, def) {
        (ItemKind::Member, d) => {
            let ms: &[Member] = match d {
                Definition::Struct(s) => &s.members,
                Definition::Union(u) => &u.base_members,
                Definition::Command(c) => match &c.arguments {
                    Arguments::Members(ms) => ms,
                    _ => &[],
                },
                Definition::Event(e) => match &e.data {
                    Arguments::Members(ms) => ms,
                    _ => &[],
                },
                _ => &[],
            };
            pick(ms, |m| &m.name, item).map(|(m, a, i)| (Found::Member(m), a, i))
        }
        (ItemKind::Value, Definition::Enum(e)) => {
            pick(&e.values, |v| &v.name, item).map(|(v, a, i)| (Found::Value(v), a, i))
        }
        (ItemKind::Branch, Definition::Union(u)) => {
            pick(&u.branches, |b| &b.value, item).map(|(b, a, i)| (Found::Branch(b), a, i))
        }
        (ItemKind::Alternative, Definition::Alternate(alt)) => {
            pick(&alt.branches, |b| &b.name, item).map(|(b, a, i)| (Found::Alternative(b), a, i))
        }
        _ => None,
    }
}

enum Found {
    Member(Member),
    Value(EnumValue),
    Branch(Branch),
    Alternative(AltBranch),
}

/// Integer ranges of the built-in integer types.
fn int_range(b: Builtin) -> Option<(i128, i128)> {
    Some(match b {
        Builtin::Int8 => (i8::MIN.into(), i8::MAX.into()),
        Builtin::Int16 => (i16::MIN.into(), i16::MAX.into()),
        Builtin::Int32 => (i32::MIN.into(), i32::MAX.into()),
        Builtin::Int | Builtin::Int64 => (i64::MIN.into(), i64::MAX.into()),
        Builtin::Uint8 => (0, u8::MAX.into()),
        Builtin::Uint16 => (0, u16::MAX.into()),
        Builtin::Uint32 => (0, u32::MAX.into()),
        Builtin::Uint64 | Builtin::Size => (0, u64::MAX.into()),
        _ => return None,
    })
}

/// Whether every value of integer type `old` is a value of integer type `new`.
pub(crate) fn integer_covers(new: Builtin, old: Builtin) -> bool {
    match (int_range(new), int_range(old)) {
        (Some((a, z)), Some((b, y))) => a <= b && z >= y,
        _ => false,
    }
}

/// The type for an integer member that took the types `seen` (newest last) in versions
/// where QEMU sent it: the newest if it covers every range, else the narrowest integer type
/// that does (preferring one the member had), else the newest.
pub(crate) fn covering_integer(seen: &[Builtin]) -> Option<Builtin> {
    let newest = *seen.last()?;
    let mut lo = i128::MAX;
    let mut hi = i128::MIN;
    for b in seen {
        let (a, z) = int_range(*b)?;
        lo = lo.min(a);
        hi = hi.max(z);
    }
    let covers = |b: Builtin| int_range(b).is_some_and(|(a, z)| a <= lo && z >= hi);
    if covers(newest) {
        return Some(newest);
    }
    let width = |b: Builtin| int_range(b).map_or(i128::MAX, |(a, z)| z - a);
    let mut candidates: Vec<Builtin> = seen.iter().rev().copied().collect();
    candidates.extend([
        Builtin::Int8,
        Builtin::Uint8,
        Builtin::Int16,
        Builtin::Uint16,
        Builtin::Int32,
        Builtin::Uint32,
        Builtin::Int,
        Builtin::Uint64,
    ]);
    let best = candidates
        .into_iter()
        .filter(|b| covers(*b))
        .min_by_key(|b| width(*b));
    Some(best.unwrap_or(newest))
}

/// Merges the schemas of several versions of one family into one schema with a history.
/// Inputs may come in any order; they are sorted by version. See the [module
/// docs](super) and `schema/README.md` for the rules.
pub fn merge(mut inputs: Vec<MergeInput>) -> Result<MergedSchema, MergeError> {
    if inputs.is_empty() {
        return Err(MergeError::Empty);
    }
    if inputs.len() > MAX_VERSIONS {
        return Err(MergeError::TooManyVersions {
            count: inputs.len(),
        });
    }
    inputs.sort_by_key(|i| i.version);
    for w in inputs.windows(2) {
        if w[0].version == w[1].version {
            return Err(MergeError::DuplicateVersion {
                version: w[0].version,
                first: w[0].source.clone(),
                second: w[1].source.clone(),
            });
        }
    }
    let n = inputs.len();
    let canon = canonical_names(&inputs)?;
    let facts: Vec<Facts> = inputs
        .iter()
        .zip(&canon)
        .map(|(inp, map)| Facts::of(&inp.schema).renamed(map))
        .collect();
    // canonical -> name, per version
    let names_at: Vec<HashMap<&str, &str>> = canon
        .iter()
        .map(|m| m.iter().map(|(n, c)| (c.as_str(), n.as_str())).collect())
        .collect();

    // Definition order: the newest version's, with older definitions after the one they
    // followed in the newest version that has them.
    let mut order: Vec<String> = inputs[n - 1]
        .schema
        .definitions
        .iter()
        .map(|d| d.name().to_string())
        .collect();
    let mut placed: HashSet<String> = order.iter().cloned().collect();
    for i in (0..n - 1).rev() {
        let mut prev: Option<&str> = None;
        for d in &inputs[i].schema.definitions {
            let c = canon[i][d.name()].as_str();
            if placed.insert(c.to_string()) {
                let pos = prev
                    .and_then(|p| order.iter().position(|x| x == p))
                    .map_or(0, |p| p + 1);
                order.insert(pos, c.to_string());
            }
            prev = Some(c);
        }
    }

    // Presence of each definition, and the newest version that has it.
    let present_in = |c: &str| -> VersionSet {
        let mut s = VersionSet::EMPTY;
        for (i, m) in names_at.iter().enumerate() {
            if m.contains_key(c) {
                s.insert(i);
            }
        }
        s
    };
    let mut draft = Draft {
        defs: Vec::with_capacity(order.len()),
        index: HashMap::new(),
    };
    for c in &order {
        let last = present_in(c).last().unwrap_or(n - 1);
        let Some(d) = names_at[last]
            .get(c.as_str())
            .and_then(|name| inputs[last].schema.get(name))
        else {
            continue;
        };
        draft.index.insert(c.clone(), draft.defs.len());
        draft.defs.push(rename_def(d, &canon[last]));
    }

    // Items any version had, per definition and kind, with the newest version having each.
    let mut last_seen: BTreeMap<&Path, usize> = BTreeMap::new();
    for (i, f) in facts.iter().enumerate() {
        for p in f.items.keys() {
            if !matches!(p, Path::Definition(_)) {
                last_seen.insert(p, i);
            }
        }
    }
    let kind_rank = |d: &Definition| -> usize {
        match d {
            Definition::Enum(_) => 0,
            Definition::Struct(_) => 1,
            Definition::Union(_) => 2,
            Definition::Alternate(_) => 3,
            Definition::Command(_) | Definition::Event(_) => 4,
        }
    };
    let depth = |draft: &Draft, name: &str| -> usize {
        let mut d = 0;
        let mut cur = name.to_string();
        while let Some(Definition::Struct(s)) = draft.get(&cur) {
            match &s.base {
                Some(b) if d < 64 => {
                    cur = b.clone();
                    d += 1;
                }
                _ => break,
            }
        }
        d
    };
    let mut work: Vec<(usize, usize, String)> = draft
        .defs
        .iter()
        .map(|d| (kind_rank(d), depth(&draft, d.name()), d.name().to_string()))
        .collect();
    work.sort();
    for (_, _, c) in &work {
        let cur_last = present_in(c).last().unwrap_or(n - 1);
        // Removed items of this definition: the items older versions had, the newest lacks;
        // newest first, each in its list order, so that the item it followed is placed first.
        let mut removed: Vec<(std::cmp::Reverse<usize>, usize, Removed<Found>)> = Vec::new();
        for kind in ItemKind::ALL {
            let start = kind.path(c, "");
            for (p, &li) in last_seen.range::<&Path, _>(&start..) {
                if p.owner() != c || p.item_kind() != Some(kind) {
                    break;
                }
                if li >= cur_last || facts[cur_last].items.contains_key(*p) {
                    continue;
                }
                let Some(item) = p.item() else { continue };
                let Some(old) = names_at[li]
                    .get(c.as_str())
                    .and_then(|nm| inputs[li].schema.get(nm))
                else {
                    continue;
                };
                let Some((found, after, index)) = find_item(old, kind, item) else {
                    continue;
                };
                let found = match found {
                    Found::Member(m) => Found::Member(Member {
                        ty: rename_type(&m.ty, &|x: &str| {
                            canon[li].get(x).cloned().unwrap_or_else(|| x.to_string())
                        }),
                        optional: true,
                        doc: None,
                        ..m
                    }),
                    Found::Value(v) => Found::Value(EnumValue { doc: None, ..v }),
                    Found::Branch(b) => Found::Branch(Branch {
                        ty_name: canon[li].get(&b.ty_name).cloned().unwrap_or(b.ty_name),
                        ..b
                    }),
                    Found::Alternative(b) => Found::Alternative(AltBranch {
                        ty: rename_type(&b.ty, &|x: &str| {
                            canon[li].get(x).cloned().unwrap_or_else(|| x.to_string())
                        }),
                        ..b
                    }),
                };
                let discriminator = match old {
                    Definition::Union(u) => Some(u.discriminator.clone()),
                    _ => None,
                };
                removed.push((
                    std::cmp::Reverse(li),
                    index,
                    Removed {
                        item: found,
                        after,
                        discriminator,
                    },
                ));
            }
        }
        removed.sort_by_key(|(li, index, _)| (*li, *index));
        for (_, _, r) in removed {
            place(&mut draft, c, r);
        }
    }

    cover_integers(&mut draft, &facts);

    let pragmas = merged_pragmas(&inputs, &canon);
    let source = format!(
        "merged from {n} versions, {} ({}) to {} ({})",
        inputs[0].version,
        inputs[0].source,
        inputs[n - 1].version,
        inputs[n - 1].source
    );
    let pre = Schema::from_parts(draft.defs, pragmas, Some(source));
    let text = normalized::to_string(&pre);
    let schema = normalized::from_str("merged schema", &text).map_err(MergeError::Check)?;
    let history = build_history(&inputs, &names_at, &facts, &schema);
    let mut merged = MergedSchema { schema, history };
    let relaxed = {
        let m = super::Merged::new(&merged);
        m.relaxed_in(m.history().all())
    };
    merged.history.relaxed = relaxed;
    Ok(merged)
}

/// Puts a removed item back into definition `c` if it fits there.
fn place(draft: &mut Draft, c: &str, r: Removed<Found>) {
    let after = r.after.as_deref();
    match r.item {
        Found::Member(m) => {
            let fits = match draft.get(c) {
                Some(Definition::Struct(_))
                | Some(Definition::Union(crate::model::Union {
                    base: UnionBase::Inline(_),
                    ..
                })) => !draft.cooccurring(c, true).contains(&c_name(&m.name)),
                Some(Definition::Command(crate::model::Command {
                    arguments: Arguments::Members(ms),
                    ..
                }))
                | Some(Definition::Event(crate::model::Event {
                    data: Arguments::Members(ms),
                    ..
                })) => !ms.iter().any(|x| c_name(&x.name) == c_name(&m.name)),
                _ => false,
            };
            if !fits {
                return;
            }
            match draft.get_mut(c) {
                Some(Definition::Struct(s)) => {
                    insert_after(&mut s.own_members, m, after, |x| &x.name)
                }
                Some(Definition::Union(u)) => {
                    if let UnionBase::Inline(ms) = &mut u.base {
                        insert_after(ms, m, after, |x| &x.name);
                    }
                }
                Some(Definition::Command(cmd)) => {
                    if let Arguments::Members(ms) = &mut cmd.arguments {
                        insert_after(ms, m, after, |x| &x.name);
                    }
                }
                Some(Definition::Event(e)) => {
                    if let Arguments::Members(ms) = &mut e.data {
                        insert_after(ms, m, after, |x| &x.name);
                    }
                }
                _ => {}
            }
        }
        Found::Value(v) => {
            if let Some(Definition::Enum(e)) = draft.get_mut(c) {
                if !e.values.iter().any(|x| c_name(&x.name) == c_name(&v.name)) {
                    insert_after(&mut e.values, v, after, |x| &x.name);
                }
            }
        }
        Found::Branch(b) => {
            let fits = match draft.get(c) {
                Some(Definition::Union(u)) => {
                    let value_known = matches!(
                        draft.get(&u.discriminator_enum),
                        Some(Definition::Enum(e)) if e.value(&b.value).is_some()
                    );
                    let object = matches!(
                        draft.get(&b.ty_name),
                        Some(Definition::Struct(_) | Definition::Union(_))
                    );
                    let free = u.branch(&b.value).is_none();
                    let same_disc = r.discriminator.as_deref() == Some(u.discriminator.as_str());
                    value_known && object && free && same_disc && {
                        let outer = draft.cooccurring(c, false);
                        let mut inner = HashSet::new();
                        draft.contributed(&b.ty_name, &mut HashSet::new(), &mut inner);
                        outer.is_disjoint(&inner)
                    }
                }
                _ => false,
            };
            if fits {
                if let Some(Definition::Union(u)) = draft.get_mut(c) {
                    insert_after(&mut u.branches, b, after, |x| &x.value);
                }
            }
        }
        Found::Alternative(b) => {
            let fits = match draft.get(c) {
                Some(Definition::Alternate(a)) => {
                    let mut taken: HashSet<JsonType> = HashSet::new();
                    let mut ok = true;
                    for x in &a.branches {
                        match draft.claims(&x.ty) {
                            Some(v) => taken.extend(v),
                            None => ok = false,
                        }
                    }
                    ok && !a
                        .branches
                        .iter()
                        .any(|x| c_name(&x.name) == c_name(&b.name))
                        && draft
                            .claims(&b.ty)
                            .is_some_and(|v| v.iter().all(|j| !taken.contains(j)))
                }
                _ => false,
            };
            if fits {
                if let Some(Definition::Alternate(a)) = draft.get_mut(c) {
                    insert_after(&mut a.branches, b, after, |x| &x.name);
                }
            }
        }
    }
}

/// Applies the integer covering rule to members of types QEMU sends.
fn cover_integers(draft: &mut Draft, facts: &[Facts]) {
    // (declaring definition, member) -> integer types seen, oldest first.
    let mut seen: BTreeMap<(String, String), Vec<Builtin>> = BTreeMap::new();
    // Which definition declares member m of owner o (walking struct bases).
    let declaring = |draft: &Draft, owner: &str, member: &str| -> Option<String> {
        let mut cur = owner.to_string();
        for _ in 0..64 {
            match draft.get(&cur)? {
                Definition::Struct(s) => {
                    if s.own_members.iter().any(|m| m.name == member) {
                        return Some(cur);
                    }
                    cur = s.base.clone()?;
                }
                Definition::Union(u) => match &u.base {
                    UnionBase::Inline(ms) => {
                        return ms.iter().any(|m| m.name == member).then_some(cur)
                    }
                    UnionBase::Named(b) => cur = b.clone(),
                },
                Definition::Event(_) | Definition::Command(_) => return Some(cur),
                _ => return None,
            }
        }
        None
    };
    for f in facts {
        let sent = f.reachable(f.roots(true));
        for (p, a) in &f.items {
            let Path::Member(owner, member) = p else {
                continue;
            };
            if !sent.contains(owner.as_str()) {
                continue;
            }
            let Some(AttrValue::Type(Some(TypeRef::Builtin(b)))) = a.get(&Attr::Type) else {
                continue;
            };
            if !b.is_integer() {
                continue;
            }
            if let Some(decl) = declaring(draft, owner, member) {
                seen.entry((decl, member.clone())).or_default().push(*b);
            }
        }
    }
    for ((decl, member), types) in seen {
        let mut all = types;
        let members: Option<&mut Vec<Member>> = match draft.get_mut(&decl) {
            Some(Definition::Struct(s)) => Some(&mut s.own_members),
            Some(Definition::Union(u)) => match &mut u.base {
                UnionBase::Inline(ms) => Some(ms),
                UnionBase::Named(_) => None,
            },
            Some(Definition::Event(e)) => match &mut e.data {
                Arguments::Members(ms) => Some(ms),
                _ => None,
            },
            Some(Definition::Command(c)) => match &mut c.arguments {
                Arguments::Members(ms) => Some(ms),
                _ => None,
            },
            _ => None,
        };
        let Some(m) = members.and_then(|ms| ms.iter_mut().find(|m| m.name == member)) else {
            continue;
        };
        let TypeRef::Builtin(current) = m.ty else {
            continue;
        };
        if !current.is_integer() {
            continue;
        }
        all.push(current);
        if let Some(b) = covering_integer(&all) {
            m.ty = TypeRef::Builtin(b);
        }
    }
}

fn merged_pragmas(inputs: &[MergeInput], canon: &[HashMap<String, String>]) -> Pragmas {
    let Some(newest) = inputs.last() else {
        return Pragmas::default();
    };
    let mut p = newest.schema.pragmas.clone();
    let extend = |list: &mut Vec<String>, more: &[String], map: &HashMap<String, String>| {
        for x in more {
            let x = map.get(x).cloned().unwrap_or_else(|| x.clone());
            if !list.contains(&x) {
                list.push(x);
            }
        }
    };
    let legacy = p.legacy_names();
    for (inp, map) in inputs.iter().zip(canon).rev().skip(1) {
        let o = &inp.schema.pragmas;
        p.doc_required |= o.doc_required;
        extend(
            &mut p.command_name_exceptions,
            &o.command_name_exceptions,
            map,
        );
        extend(
            &mut p.documentation_exceptions,
            &o.documentation_exceptions,
            map,
        );
        if legacy {
            extend(&mut p.returns_whitelist, &o.returns_whitelist, map);
            extend(&mut p.returns_whitelist, &o.command_returns_exceptions, map);
            extend(&mut p.name_case_whitelist, &o.name_case_whitelist, map);
            extend(&mut p.name_case_whitelist, &o.member_name_exceptions, map);
        } else {
            extend(
                &mut p.command_returns_exceptions,
                &o.command_returns_exceptions,
                map,
            );
            extend(&mut p.command_returns_exceptions, &o.returns_whitelist, map);
            extend(
                &mut p.member_name_exceptions,
                &o.member_name_exceptions,
                map,
            );
            extend(&mut p.member_name_exceptions, &o.name_case_whitelist, map);
        }
    }
    p
}

/// The attribute differences between each version's values and the reference.
fn attr_diff(versions: &[(usize, &Attrs)], reference: &Attrs) -> Vec<AttrHistory> {
    let keys: BTreeSet<Attr> = versions
        .iter()
        .flat_map(|(_, a)| a.keys().copied())
        .collect();
    let mut out = Vec::new();
    for key in keys {
        let r = reference.get(&key);
        let mut values: Vec<(AttrValue, VersionSet)> = Vec::new();
        for (i, a) in versions {
            let Some(v) = a.get(&key) else { continue };
            if Some(v) == r {
                continue;
            }
            match values.iter_mut().find(|(x, _)| x == v) {
                Some((_, s)) => s.insert(*i),
                None => values.push((v.clone(), VersionSet::one(*i))),
            }
        }
        if !values.is_empty() {
            out.push(AttrHistory { attr: key, values });
        }
    }
    out
}

/// Item names of a merged definition, in schema order.
fn merged_items(d: &Definition, kind: ItemKind) -> Vec<&str> {
    match (kind, d) {
        (ItemKind::Member, Definition::Struct(s)) => s.members.iter().map(|m| &*m.name).collect(),
        (ItemKind::Member, Definition::Union(u)) => {
            u.base_members.iter().map(|m| &*m.name).collect()
        }
        (ItemKind::Member, Definition::Command(c)) => match &c.arguments {
            Arguments::Members(ms) => ms.iter().map(|m| &*m.name).collect(),
            _ => Vec::new(),
        },
        (ItemKind::Member, Definition::Event(e)) => match &e.data {
            Arguments::Members(ms) => ms.iter().map(|m| &*m.name).collect(),
            _ => Vec::new(),
        },
        (ItemKind::Value, Definition::Enum(e)) => e.values.iter().map(|v| &*v.name).collect(),
        (ItemKind::Branch, Definition::Union(u)) => u.branches.iter().map(|b| &*b.value).collect(),
        (ItemKind::Alternative, Definition::Alternate(a)) => {
            a.branches.iter().map(|b| &*b.name).collect()
        }
        _ => Vec::new(),
    }
}

fn build_history(
    inputs: &[MergeInput],
    names_at: &[HashMap<&str, &str>],
    facts: &[Facts],
    merged: &Schema,
) -> History {
    let n = inputs.len();
    let all = VersionSet::all(n);
    let mfacts = Facts::of(merged);
    let mut per: BTreeMap<&Path, Vec<(usize, &Attrs)>> = BTreeMap::new();
    for (i, f) in facts.iter().enumerate() {
        for (p, a) in &f.items {
            per.entry(p).or_default().push((i, a));
        }
    }
    let set_of = |vs: Option<&Vec<(usize, &Attrs)>>| -> VersionSet {
        let mut s = VersionSet::EMPTY;
        for (i, _) in vs.into_iter().flatten() {
            s.insert(*i);
        }
        s
    };
    let mut definitions = Vec::new();
    for d in &merged.definitions {
        let c = d.name();
        let mut e = DefHistory::new(c.to_string());
        let dp = Path::definition(c);
        let dv = per.get(&dp);
        let present = set_of(dv);
        if present != all {
            e.present = Some(present);
        }
        for (i, m) in names_at.iter().enumerate() {
            let Some(&name) = m.get(c) else { continue };
            if name == c {
                continue;
            }
            match e.names.iter_mut().find(|(x, _)| x == name) {
                Some((_, s)) => s.insert(i),
                None => e.names.push((name.to_string(), VersionSet::one(i))),
            }
        }
        let mut reference = definition_defaults();
        reference.extend(
            mfacts
                .items
                .get(&dp)
                .into_iter()
                .flatten()
                .map(|(k, v)| (*k, v.clone())),
        );
        e.attrs = attr_diff(dv.map_or(&[][..], |v| v.as_slice()), &reference);
        for kind in ItemKind::ALL {
            let mut paths: Vec<Path> = merged_items(d, kind)
                .into_iter()
                .map(|x| kind.path(c, x))
                .collect();
            let start = kind.path(c, "");
            for p in per.range::<&Path, _>(&start..).map(|(p, _)| *p) {
                if p.owner() != c || p.item_kind() != Some(kind) {
                    break;
                }
                if !mfacts.items.contains_key(p) {
                    paths.push(p.clone());
                }
            }
            for p in paths {
                let vs = per.get(&p);
                let ip = set_of(vs);
                let defaults;
                let reference = match mfacts.items.get(&p) {
                    Some(a) => a,
                    None => {
                        defaults = item_defaults(kind);
                        &defaults
                    }
                };
                let item = ItemHistory {
                    name: p.item().unwrap_or_default().to_string(),
                    present: (ip != present).then_some(ip),
                    attrs: attr_diff(vs.map_or(&[][..], |v| v.as_slice()), reference),
                };
                if item.present.is_some() || !item.attrs.is_empty() {
                    e.items_mut(kind).push(item);
                }
            }
        }
        if !e.is_empty() {
            definitions.push(e);
        }
    }
    History {
        versions: inputs
            .iter()
            .map(|i| MergedVersion {
                version: i.version,
                source: i.source.clone(),
            })
            .collect(),
        definitions,
        relaxed: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_covering() {
        use Builtin::*;
        assert_eq!(covering_integer(&[Uint32, Int]), Some(Int));
        assert_eq!(covering_integer(&[Uint64, Uint32]), Some(Uint64));
        assert_eq!(covering_integer(&[Int8, Uint8]), Some(Int16));
        assert_eq!(covering_integer(&[Size, Uint32]), Some(Size));
        // Nothing holds both int64 and uint64: the newest stays.
        assert_eq!(covering_integer(&[Int, Size]), Some(Size));
        assert_eq!(covering_integer(&[Str, Int]), None);
        assert!(integer_covers(Int, Uint32));
        assert!(!integer_covers(Size, Int));
        assert!(integer_covers(Uint64, Size));
    }
}
