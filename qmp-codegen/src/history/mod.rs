//! Version history: one merged schema built from every version of a schema family.
//!
//! [`merge`] takes the checked schemas of several versions of one family (QEMU's QMP schema
//! 2.12 to 10.0, or the storage daemon's, or the guest agent's) and returns one [`Schema`]
//! whose definitions hold everything any of them had, plus a [`History`] side table (the
//! two together: [`MergedSchema`]) that records, for every definition, member, enum value, union branch,
//! alternate branch and feature, in which versions it exists and how it differed there. The
//! rules (which name is canonical, where a removed member goes, which type a member whose
//! type changed gets) are written down in `schema/README.md`.
//!
//! Versions are compared on the checked model, not on source text: bases are flattened (a
//! member moved into a new base struct is not a change), legacy simple unions are already in
//! their flat form, and type names are mapped to one canonical name per definition (renamed
//! types are followed by position, see [`merge`]).
//!
//! [`Merged`] answers questions about a merged schema: the [`Lifetime`] of anything (first
//! version, removed after, deprecated since), [`Merged::supports`] for a given QEMU version,
//! old names, and whether a member is required in what QEMU sends or in arguments
//! ([`Merged::requirement`]).
//!
//! # Example
//!
//! ```
//! use qmp_codegen::history::{self, MergeInput, Merged, Path, Support, Version};
//!
//! let old = qmp_codegen::parse_qapi_str("a", concat!(
//!     "{ 'struct': 'Job', 'data': { 'id': 'str' } }\n",
//!     "{ 'command': 'query-jobs', 'returns': ['Job'] }\n",
//! ))?;
//! let new = qmp_codegen::parse_qapi_str("b", concat!(
//!     "{ 'struct': 'Job', 'data': { 'id': 'str', 'busy': 'bool' } }\n",
//!     "{ 'command': 'query-jobs', 'returns': ['Job'] }\n",
//! ))?;
//! let merged = history::merge(vec![
//!     MergeInput::new(Version::new(7, 2), "a", old),
//!     MergeInput::new(Version::new(8, 0), "b", new),
//! ])?;
//! let m = Merged::new(&merged);
//!
//! let busy = Path::member("Job", "busy");
//! assert_eq!(m.lifetime(&busy).expect("known").added(), Some(Version::new(8, 0)));
//! assert_eq!(m.supports(&busy, Version::new(7, 2)), Support::No);
//! // QEMU 7.2 sends jobs without `busy`: not required in replies.
//! assert_eq!(m.requirement("Job", "busy").in_replies, Some(false));
//! assert_eq!(m.requirement("Job", "id").in_replies, Some(true));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod facts;
pub(crate) mod json;
mod merge;
mod rules;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::error::SchemaError;
use crate::model::{Cond, Feature, Kind, Schema, TypeRef};

pub use merge::{merge, MergeError, MergeInput};
pub use rules::{Requirement, TypeChange, TypeChangeKind};

pub(crate) use facts::Facts;

/// The most versions one merged schema can hold.
pub const MAX_VERSIONS: usize = 128;

/// A QEMU release, as `major.minor` (`7.2`). Micro versions do not change the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major version (`7` in 7.2).
    pub major: u32,
    /// Minor version (`2` in 7.2).
    pub minor: u32,
}

impl Version {
    /// The version `major.minor`.
    pub const fn new(major: u32, minor: u32) -> Version {
        Version { major, minor }
    }

    /// Parses `7.2`, `7.2.0`, `9.2.0-rc2` or `10.0.13` (micro versions and release-candidate
    /// suffixes are dropped). `None` if it does not start with `major.minor`.
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.trim().splitn(3, '.');
        let major = parts.next()?.parse().ok()?;
        let minor_text = parts.next()?;
        let digits = minor_text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(minor_text.len());
        let minor = minor_text[..digits].parse().ok()?;
        Some(Version { major, minor })
    }

    /// The version in a path such as `.../qemu-9.2.0-rc2/qapi/qapi-schema.json` or
    /// `qga-10.0.13/qapi-schema.json`: the last component named `qemu-X.Y...`, `qga-X.Y...` or
    /// `qemu-storage-daemon-X.Y...`.
    pub fn from_path(path: &str) -> Option<Version> {
        path.rsplit(['/', '\\']).find_map(|c| {
            ["qemu-storage-daemon-", "qemu-", "qga-"]
                .iter()
                .find_map(|p| c.strip_prefix(p))
                .and_then(Version::parse)
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> Result<Version, String> {
        Version::parse(s).ok_or_else(|| format!("'{s}' is not a version like 7.2 or 10.0.13"))
    }
}

/// A set of merged versions, as indices into [`History::versions`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct VersionSet(u128);

impl VersionSet {
    /// No version.
    pub const EMPTY: VersionSet = VersionSet(0);

    /// The first `n` versions.
    pub fn all(n: usize) -> VersionSet {
        if n >= 128 {
            VersionSet(u128::MAX)
        } else {
            VersionSet((1u128 << n) - 1)
        }
    }

    /// The one version `i`.
    pub fn one(i: usize) -> VersionSet {
        let mut s = VersionSet::EMPTY;
        s.insert(i);
        s
    }

    /// Whether version `i` is in the set.
    pub fn contains(self, i: usize) -> bool {
        i < 128 && self.0 & (1u128 << i) != 0
    }

    /// Adds version `i` (ignored beyond [`MAX_VERSIONS`]).
    pub fn insert(&mut self, i: usize) {
        if i < 128 {
            self.0 |= 1u128 << i;
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The number of versions in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The lowest index.
    pub fn first(self) -> Option<usize> {
        (self.0 != 0).then(|| self.0.trailing_zeros() as usize)
    }

    /// The highest index.
    pub fn last(self) -> Option<usize> {
        (self.0 != 0).then(|| 127 - self.0.leading_zeros() as usize)
    }

    /// The indices, in increasing order.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..128).filter(move |&i| self.contains(i))
    }

    /// Versions in both sets.
    pub fn intersection(self, other: VersionSet) -> VersionSet {
        VersionSet(self.0 & other.0)
    }

    /// Versions in either set.
    pub fn union(self, other: VersionSet) -> VersionSet {
        VersionSet(self.0 | other.0)
    }

    /// Versions in `self` but not in `other`.
    pub fn difference(self, other: VersionSet) -> VersionSet {
        VersionSet(self.0 & !other.0)
    }

    /// Whether every version of `self` is in `other`.
    pub fn is_subset(self, other: VersionSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// Whether the set has holes between its first and last version.
    pub fn has_gaps(self) -> bool {
        match (self.first(), self.last()) {
            (Some(a), Some(b)) => self.len() != b - a + 1,
            _ => false,
        }
    }
}

/// One version that went into a merged schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedVersion {
    /// The release.
    pub version: Version,
    /// Where its schema came from (`qemu-9.2.0-rc2/qapi/qapi-schema.json`).
    pub source: String,
}

/// Something a schema has: a definition, or one item of a definition.
///
/// Owners are canonical definition names (the newest name of a renamed type). Members are
/// those on the wire: a struct's members with its bases flattened, a union's base members
/// (branch members belong to the branch type), or a command's or event's inline arguments.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Path {
    /// A type, command or event.
    Definition(String),
    /// A member of a struct, union base, or inline command/event arguments.
    Member(String, String),
    /// A value of an enum.
    Value(String, String),
    /// A branch of a union, by discriminator value.
    Branch(String, String),
    /// A branch of an alternate, by branch name.
    Alternative(String, String),
}

impl Path {
    /// The definition `name`.
    pub fn definition(name: impl Into<String>) -> Path {
        Path::Definition(name.into())
    }

    /// Member `member` of `owner` (a struct, union, command or event).
    pub fn member(owner: impl Into<String>, member: impl Into<String>) -> Path {
        Path::Member(owner.into(), member.into())
    }

    /// Value `value` of enum `owner`.
    pub fn value(owner: impl Into<String>, value: impl Into<String>) -> Path {
        Path::Value(owner.into(), value.into())
    }

    /// The branch of union `owner` for discriminator value `value`.
    pub fn branch(owner: impl Into<String>, value: impl Into<String>) -> Path {
        Path::Branch(owner.into(), value.into())
    }

    /// Branch `name` of alternate `owner`.
    pub fn alternative(owner: impl Into<String>, name: impl Into<String>) -> Path {
        Path::Alternative(owner.into(), name.into())
    }

    /// The definition it is, or belongs to.
    pub fn owner(&self) -> &str {
        match self {
            Path::Definition(o)
            | Path::Member(o, _)
            | Path::Value(o, _)
            | Path::Branch(o, _)
            | Path::Alternative(o, _) => o,
        }
    }

    /// The item's name (member, value, discriminator value, branch), `None` for a definition.
    pub fn item(&self) -> Option<&str> {
        match self {
            Path::Definition(_) => None,
            Path::Member(_, n)
            | Path::Value(_, n)
            | Path::Branch(_, n)
            | Path::Alternative(_, n) => Some(n),
        }
    }

    fn item_kind(&self) -> Option<ItemKind> {
        match self {
            Path::Definition(_) => None,
            Path::Member(..) => Some(ItemKind::Member),
            Path::Value(..) => Some(ItemKind::Value),
            Path::Branch(..) => Some(ItemKind::Branch),
            Path::Alternative(..) => Some(ItemKind::Alternative),
        }
    }

    fn with_owner(&self, owner: String) -> Path {
        match self {
            Path::Definition(_) => Path::Definition(owner),
            Path::Member(_, n) => Path::Member(owner, n.clone()),
            Path::Value(_, n) => Path::Value(owner, n.clone()),
            Path::Branch(_, n) => Path::Branch(owner, n.clone()),
            Path::Alternative(_, n) => Path::Alternative(owner, n.clone()),
        }
    }
}

impl fmt::Display for Path {
    /// `BlockInfo`, `BlockInfo.device`, `RunState value 'paused'`, `BlockdevOptions branch
    /// 'file'`, `BlockdevRef alternative 'reference'`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Definition(o) => f.write_str(o),
            Path::Member(o, n) => write!(f, "{o}.{n}"),
            Path::Value(o, n) => write!(f, "{o} value '{n}'"),
            Path::Branch(o, n) => write!(f, "{o} branch '{n}'"),
            Path::Alternative(o, n) => write!(f, "{o} alternative '{n}'"),
        }
    }
}

/// The kinds of items a definition has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ItemKind {
    Member,
    Value,
    Branch,
    Alternative,
}

impl ItemKind {
    pub(crate) const ALL: [ItemKind; 4] = [
        ItemKind::Member,
        ItemKind::Value,
        ItemKind::Branch,
        ItemKind::Alternative,
    ];

    /// The key of the item list in a history entry (and in definitions).
    pub(crate) fn list_key(self) -> &'static str {
        match self {
            ItemKind::Member => "members",
            ItemKind::Value => "values",
            ItemKind::Branch => "branches",
            ItemKind::Alternative => "alternatives",
        }
    }

    /// The key naming an item.
    pub(crate) fn name_key(self) -> &'static str {
        match self {
            ItemKind::Branch => "value",
            _ => "name",
        }
    }

    pub(crate) fn path(self, owner: &str, name: &str) -> Path {
        let (o, n) = (owner.to_string(), name.to_string());
        match self {
            ItemKind::Member => Path::Member(o, n),
            ItemKind::Value => Path::Value(o, n),
            ItemKind::Branch => Path::Branch(o, n),
            ItemKind::Alternative => Path::Alternative(o, n),
        }
    }

    /// The attributes an item of this kind has.
    pub(crate) fn attrs(self) -> &'static [Attr] {
        match self {
            ItemKind::Member => &[Attr::If, Attr::Features, Attr::Type, Attr::Optional],
            ItemKind::Value => &[Attr::If, Attr::Features],
            ItemKind::Branch | ItemKind::Alternative => &[Attr::If, Attr::Type],
        }
    }
}

/// A fact about a definition or item that may differ between versions. The names are the
/// keys of the normalized format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Attr {
    /// `kind` of a definition (a struct may become a union).
    Kind,
    /// `if`: the condition.
    If,
    /// `features`.
    Features,
    /// `implicit`: synthesized by the importer (enums and structs).
    Implicit,
    /// `prefix` of an enum.
    Prefix,
    /// `discriminator` of a union.
    Discriminator,
    /// `simple-legacy` of a union.
    SimpleLegacy,
    /// `data` of a command or event: none, inline members, or a type.
    Data,
    /// `returns` of a command.
    Returns,
    /// `boxed` of a command or event.
    Boxed,
    /// `success-response` of a command.
    SuccessResponse,
    /// `gen` of a command.
    Gen,
    /// `allow-oob` of a command.
    AllowOob,
    /// `allow-preconfig` of a command.
    AllowPreconfig,
    /// `coroutine` of a command.
    Coroutine,
    /// `type` of a member, branch or alternative.
    Type,
    /// `optional` of a member.
    Optional,
}

impl Attr {
    const ALL: [Attr; 17] = [
        Attr::Kind,
        Attr::If,
        Attr::Features,
        Attr::Implicit,
        Attr::Prefix,
        Attr::Discriminator,
        Attr::SimpleLegacy,
        Attr::Data,
        Attr::Returns,
        Attr::Boxed,
        Attr::SuccessResponse,
        Attr::Gen,
        Attr::AllowOob,
        Attr::AllowPreconfig,
        Attr::Coroutine,
        Attr::Type,
        Attr::Optional,
    ];

    /// The normalized format's key.
    pub fn key(self) -> &'static str {
        match self {
            Attr::Kind => "kind",
            Attr::If => "if",
            Attr::Features => "features",
            Attr::Implicit => "implicit",
            Attr::Prefix => "prefix",
            Attr::Discriminator => "discriminator",
            Attr::SimpleLegacy => "simple-legacy",
            Attr::Data => "data",
            Attr::Returns => "returns",
            Attr::Boxed => "boxed",
            Attr::SuccessResponse => "success-response",
            Attr::Gen => "gen",
            Attr::AllowOob => "allow-oob",
            Attr::AllowPreconfig => "allow-preconfig",
            Attr::Coroutine => "coroutine",
            Attr::Type => "type",
            Attr::Optional => "optional",
        }
    }

    /// The attributes a definition of `kind` has.
    pub(crate) fn of_definition(kind: Kind) -> &'static [Attr] {
        match kind {
            Kind::Enum => &[
                Attr::Kind,
                Attr::If,
                Attr::Features,
                Attr::Implicit,
                Attr::Prefix,
            ],
            Kind::Struct => &[Attr::Kind, Attr::If, Attr::Features, Attr::Implicit],
            Kind::Union => &[
                Attr::Kind,
                Attr::If,
                Attr::Features,
                Attr::Discriminator,
                Attr::SimpleLegacy,
            ],
            Kind::Alternate => &[Attr::Kind, Attr::If, Attr::Features],
            Kind::Command => &[
                Attr::Kind,
                Attr::If,
                Attr::Features,
                Attr::Data,
                Attr::Returns,
                Attr::Boxed,
                Attr::SuccessResponse,
                Attr::Gen,
                Attr::AllowOob,
                Attr::AllowPreconfig,
                Attr::Coroutine,
            ],
            Kind::Event => &[
                Attr::Kind,
                Attr::If,
                Attr::Features,
                Attr::Data,
                Attr::Boxed,
            ],
        }
    }
}

/// The arguments of a command or the data of an event, as far as history cares.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Data {
    /// None at all.
    None,
    /// Inline members (recorded as the definition's members).
    Members,
    /// A named struct or union.
    Type(String),
}

/// The value of an [`Attr`] in one version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttrValue {
    /// [`Attr::Kind`].
    Kind(Kind),
    /// [`Attr::If`].
    Cond(Option<Cond>),
    /// [`Attr::Features`].
    Features(Vec<Feature>),
    /// The boolean attributes ([`Attr::Optional`], [`Attr::Boxed`], ...).
    Flag(bool),
    /// [`Attr::Prefix`] and [`Attr::Discriminator`].
    Text(Option<String>),
    /// [`Attr::Data`].
    Data(Data),
    /// [`Attr::Type`] (always `Some`) and [`Attr::Returns`].
    Type(Option<TypeRef>),
}

/// How one attribute differed from the merged schema: each value with the versions that had
/// it. Versions not listed had the merged value.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrHistory {
    /// The attribute.
    pub attr: Attr,
    /// Values other than the merged one, with the versions that had them.
    pub values: Vec<(AttrValue, VersionSet)>,
}

impl AttrHistory {
    /// The value in version `i`, if it differed from the merged one.
    pub fn at(&self, i: usize) -> Option<&AttrValue> {
        self.values
            .iter()
            .find(|(_, s)| s.contains(i))
            .map(|(v, _)| v)
    }
}

/// The history of one item (member, value, branch, alternative) of a definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemHistory {
    /// Its name (for a branch: the discriminator value).
    pub name: String,
    /// The versions that have it; `None`: every version that has its definition.
    pub present: Option<VersionSet>,
    /// Attributes that differed from the merged schema.
    pub attrs: Vec<AttrHistory>,
}

/// The history of one definition and its items. Only what differs from the default is
/// recorded: a definition without an entry exists in every merged version exactly as the
/// merged schema has it.
#[derive(Debug, Clone, PartialEq)]
pub struct DefHistory {
    /// Its canonical name.
    pub name: String,
    /// The versions that have it; `None`: every merged version.
    pub present: Option<VersionSet>,
    /// Other names it had, with the versions that used them.
    pub names: Vec<(String, VersionSet)>,
    /// Attributes that differed from the merged schema.
    pub attrs: Vec<AttrHistory>,
    /// Members that differed (present in fewer versions, other type, optionality...).
    pub members: Vec<ItemHistory>,
    /// Enum values that differed.
    pub values: Vec<ItemHistory>,
    /// Union branches that differed.
    pub branches: Vec<ItemHistory>,
    /// Alternate branches that differed.
    pub alternatives: Vec<ItemHistory>,
}

impl DefHistory {
    pub(crate) fn new(name: String) -> DefHistory {
        DefHistory {
            name,
            present: None,
            names: Vec::new(),
            attrs: Vec::new(),
            members: Vec::new(),
            values: Vec::new(),
            branches: Vec::new(),
            alternatives: Vec::new(),
        }
    }

    pub(crate) fn items(&self, kind: ItemKind) -> &Vec<ItemHistory> {
        match kind {
            ItemKind::Member => &self.members,
            ItemKind::Value => &self.values,
            ItemKind::Branch => &self.branches,
            ItemKind::Alternative => &self.alternatives,
        }
    }

    pub(crate) fn items_mut(&mut self, kind: ItemKind) -> &mut Vec<ItemHistory> {
        match kind {
            ItemKind::Member => &mut self.members,
            ItemKind::Value => &mut self.values,
            ItemKind::Branch => &mut self.branches,
            ItemKind::Alternative => &mut self.alternatives,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.present.is_none()
            && self.names.is_empty()
            && self.attrs.is_empty()
            && ItemKind::ALL.iter().all(|k| self.items(*k).is_empty())
    }
}

/// The version history of a merged schema (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// The merged versions, oldest first. [`VersionSet`]s index into this list.
    pub versions: Vec<MergedVersion>,
    /// One entry per definition that differed somewhere, in schema order.
    pub definitions: Vec<DefHistory>,
    /// Members the requirement rules make optional although the merged definitions require
    /// them, over every merged version: derived by [`merge`] (from [`Merged::requirements`])
    /// and stored in the merged file, so that code generation need not run the rules.
    pub relaxed: Relaxed,
}

/// Members required in the merged definitions that the requirement rules
/// ([`Merged::requirement`], over every merged version) make optional, each a
/// [`Path::Member`]. The file's `history.relaxed` key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relaxed {
    /// Optional in what QEMU sends (rule *a*: some version that sends the owner leaves the
    /// member out), e.g. `BlockJobInfoMirror.actively-synced`.
    pub in_replies: std::collections::BTreeSet<Path>,
    /// Optional in arguments (rule *b*: some version that accepts the owner does not require
    /// the member).
    pub in_arguments: std::collections::BTreeSet<Path>,
}

impl Relaxed {
    /// Whether member `member` of `owner` is optional in what QEMU sends although its merged
    /// definition requires it.
    pub fn in_replies(&self, owner: &str, member: &str) -> bool {
        self.in_replies
            .contains(&Path::Member(owner.to_string(), member.to_string()))
    }

    /// Whether member `member` of `owner` is optional in arguments although its merged
    /// definition requires it.
    pub fn in_arguments(&self, owner: &str, member: &str) -> bool {
        self.in_arguments
            .contains(&Path::Member(owner.to_string(), member.to_string()))
    }
}

impl History {
    /// The index of `version` among the merged versions.
    pub fn index_of(&self, version: Version) -> Option<usize> {
        self.versions.iter().position(|v| v.version == version)
    }

    /// Every merged version.
    pub fn all(&self) -> VersionSet {
        VersionSet::all(self.versions.len())
    }

    /// The versions of a set, written as ranges: `2.12-8.1`, `8.2-` (to the newest), `5.0`,
    /// several separated by commas; `none` for the empty set.
    pub fn format_set(&self, set: VersionSet) -> String {
        json::format_set(set, &self.versions)
    }
}

/// When something appeared, disappeared and was deprecated, over the merged versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// The first merged version that has it.
    pub first: Version,
    /// The last merged version that has it.
    pub last: Version,
    /// Whether `first` is the oldest merged version: it may then be older still (the doc's
    /// since-version tells).
    pub since_oldest: bool,
    /// Whether `last` is not the newest merged version: it was removed after `last`.
    pub removed: bool,
    /// Whether it was missing from some version between `first` and `last` (removed and
    /// added again).
    pub gaps: bool,
    /// If it carries the `deprecated` feature in `last`: the first version of that unbroken
    /// run of deprecation (the oldest merged version if it was deprecated all along).
    pub deprecated_since: Option<Version>,
}

impl Lifetime {
    /// The version that added it, `None` if the oldest merged version already has it.
    pub fn added(&self) -> Option<Version> {
        (!self.since_oldest).then_some(self.first)
    }

    /// The last version that has it, if it was removed.
    pub fn removed_after(&self) -> Option<Version> {
        self.removed.then_some(self.last)
    }
}

/// Whether a version has something ([`Merged::supports`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// It does.
    Yes,
    /// It does not.
    No,
    /// The merged versions do not tell: older than the oldest, newer than the newest, or
    /// between two merged versions that disagree.
    Unknown,
}

/// A schema merged from several versions, with its history: what [`merge`] returns and what
/// a merged normalized file (`schema/qemu.json`) holds.
///
/// The schema alone is an ordinary [`Schema`] holding everything any version had (the
/// `history` key of a merged file is ignored by [`crate::normalized::from_str`] and
/// [`crate::load_path`]); the history says in which versions each part exists.
#[derive(Debug, Clone, PartialEq)]
pub struct MergedSchema {
    /// The merged definitions.
    pub schema: Schema,
    /// In which versions each definition and item exists and how it differed.
    pub history: History,
}

impl MergedSchema {
    /// The merged definitions with every relaxed member ([`History::relaxed`], in replies or
    /// in arguments) made optional: the schema a check must use to accept what any merged
    /// version sends or accepts (a test double's reply check, an argument check that must
    /// not refuse what an older QEMU allows). A member relaxed in a base is relaxed in every
    /// struct and union that inherits it.
    ///
    /// ```no_run
    /// let merged = qmp_codegen::history::load_path("schema/qemu.json")?;
    /// let lenient = merged.lenient_schema();
    /// assert_eq!(lenient.counts(), merged.schema.counts());
    /// # Ok::<(), qmp_codegen::SchemaError>(())
    /// ```
    pub fn lenient_schema(&self) -> Schema {
        let relaxed = &self.history.relaxed;
        let is_relaxed = |owner: &str, member: &str| {
            relaxed.in_replies(owner, member) || relaxed.in_arguments(owner, member)
        };
        // The owners a definition's flattened members may come from: itself and its bases.
        let chain = |name: &str| {
            let mut out = vec![name.to_string()];
            let mut next = match self.schema.get(name) {
                Some(crate::model::Definition::Struct(s)) => s.base.clone(),
                Some(crate::model::Definition::Union(u)) => u.base_name().map(str::to_string),
                _ => None,
            };
            while let Some(b) = next {
                next = self.schema.struct_type(&b).and_then(|s| s.base.clone());
                out.push(b);
            }
            out
        };
        // A union's discriminator stays required (the check insists), in its base too.
        let discriminators: Vec<(String, String)> = self
            .schema
            .unions()
            .flat_map(|u| {
                let mut owners = chain(&u.name);
                owners.push(u.name.clone());
                owners
                    .into_iter()
                    .map(move |o| (o, u.discriminator.clone()))
            })
            .collect();
        let relax = |owners: &[String], members: &mut [crate::model::Member]| {
            for m in members {
                let discriminator = owners
                    .iter()
                    .any(|o| discriminators.iter().any(|(d, n)| d == o && *n == m.name));
                if !discriminator && owners.iter().any(|o| is_relaxed(o, &m.name)) {
                    m.optional = true;
                }
            }
        };
        let mut schema = self.schema.clone();
        for d in &mut schema.definitions {
            let owners = chain(d.name());
            match d {
                crate::model::Definition::Struct(s) => {
                    relax(&owners, &mut s.members);
                    relax(&owners, &mut s.own_members);
                }
                crate::model::Definition::Union(u) => {
                    relax(&owners, &mut u.base_members);
                    if let crate::model::UnionBase::Inline(m) = &mut u.base {
                        relax(&owners, m);
                    }
                }
                crate::model::Definition::Command(c) => {
                    if let crate::model::Arguments::Members(m) = &mut c.arguments {
                        relax(&owners, m);
                    }
                }
                crate::model::Definition::Event(e) => {
                    if let crate::model::Arguments::Members(m) = &mut e.data {
                        relax(&owners, m);
                    }
                }
                _ => {}
            }
        }
        schema
    }

    /// The normalized text: the schema's, plus the `history` key.
    pub fn to_normalized(&self) -> String {
        crate::normalized::to_string_with(
            &self.schema,
            vec![("history", json::to_j(&self.history))],
        )
    }
}

/// Reads a merged normalized file from text. `name` names the input in messages.
///
/// # Errors
///
/// What [`crate::normalized::from_str`] reports, a file without a `history` key (not a
/// merged schema), or a history that does not fit the definitions.
pub fn from_str(name: &str, text: &str) -> Result<MergedSchema, SchemaError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| SchemaError::json_syntax(name, &e))?;
    from_value(name, &v)
}

/// Reads a merged normalized file already parsed as JSON (see [`from_str`]).
///
/// # Errors
///
/// As [`from_str`].
pub fn from_value(name: &str, v: &serde_json::Value) -> Result<MergedSchema, SchemaError> {
    let schema = crate::normalized::from_value(name, v)?;
    let h = v.get("history").ok_or_else(|| {
        SchemaError::json(
            name,
            "top level",
            "no \"history\" key: this is the schema of one version, not a merged schema \
             (make one with `qmp-codegen merge`)",
        )
    })?;
    let history = json::read(name, h, &schema)?;
    Ok(MergedSchema { schema, history })
}

/// Reads the merged normalized file at `path` (see [`from_str`]).
///
/// # Errors
///
/// An unreadable file, or what [`from_str`] reports.
pub fn load_path(path: impl AsRef<std::path::Path>) -> Result<MergedSchema, SchemaError> {
    let path = path.as_ref();
    let name = path.to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).map_err(|e| SchemaError::Io {
        path: name.clone(),
        error: e,
    })?;
    from_str(&name, &text)
}

/// Questions about a merged schema: a [`Schema`] with its [`History`].
pub struct Merged<'s> {
    schema: &'s Schema,
    history: &'s History,
    /// Facts of the merged schema itself.
    facts: Facts,
    /// Definition name → index in `history.definitions`.
    entries: HashMap<&'s str, usize>,
    /// Every version's facts, built on first use by the rules.
    versions: std::sync::OnceLock<rules::Versions>,
}

impl<'s> Merged<'s> {
    /// The merged view of a merged schema.
    pub fn new(merged: &'s MergedSchema) -> Merged<'s> {
        let (schema, history) = (&merged.schema, &merged.history);
        let entries = history
            .definitions
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.as_str(), i))
            .collect();
        Merged {
            schema,
            history,
            facts: Facts::of(schema),
            entries,
            versions: std::sync::OnceLock::new(),
        }
    }

    /// The merged schema.
    pub fn schema(&self) -> &'s Schema {
        self.schema
    }

    /// Its history.
    pub fn history(&self) -> &'s History {
        self.history
    }

    pub(crate) fn merged_facts(&self) -> &Facts {
        &self.facts
    }

    fn entry(&self, def: &str) -> Option<&'s DefHistory> {
        self.entries
            .get(def)
            .and_then(|&i| self.history.definitions.get(i))
    }

    fn item_entry(&self, path: &Path) -> Option<&'s ItemHistory> {
        let kind = path.item_kind()?;
        let name = path.item()?;
        self.entry(path.owner())?
            .items(kind)
            .iter()
            .find(|it| it.name == name)
    }

    /// The versions that have `path`; `None` if neither the merged schema nor its history
    /// knows it.
    pub fn presence(&self, path: &Path) -> Option<VersionSet> {
        let all = self.history.all();
        let def_presence = |name: &str| -> Option<VersionSet> {
            self.schema.get(name)?;
            Some(self.entry(name).and_then(|e| e.present).unwrap_or(all))
        };
        match path {
            Path::Definition(name) => def_presence(name),
            _ => {
                let owner = def_presence(path.owner())?;
                if let Some(item) = self.item_entry(path) {
                    return Some(item.present.unwrap_or(owner));
                }
                self.facts.items.contains_key(path).then_some(owner)
            }
        }
    }

    /// When `path` appeared, was removed and was deprecated; `None` if unknown.
    pub fn lifetime(&self, path: &Path) -> Option<Lifetime> {
        let present = self.presence(path)?;
        let first = present.first()?;
        let last = present.last()?;
        let n = self.history.versions.len();
        let version = |i: usize| self.history.versions[i].version;
        Some(Lifetime {
            first: version(first),
            last: version(last),
            since_oldest: first == 0,
            removed: last + 1 < n,
            gaps: present.has_gaps(),
            deprecated_since: self.deprecated_run(path, present).map(version),
        })
    }

    /// The first version of the unbroken run of versions with the `deprecated` feature that
    /// ends in the last version having `path`.
    fn deprecated_run(&self, path: &Path, present: VersionSet) -> Option<usize> {
        let deprecated_in = |i: usize| -> bool {
            match self.features_at(path, i) {
                Some(f) => f.iter().any(Feature::is_deprecated),
                None => false,
            }
        };
        let last = present.last()?;
        if !deprecated_in(last) {
            return None;
        }
        let mut start = last;
        for i in (0..last).rev() {
            if !present.contains(i) {
                continue;
            }
            if !deprecated_in(i) {
                break;
            }
            start = i;
        }
        Some(start)
    }

    /// The features of `path` in version `i` (assumes it is present there).
    fn features_at(&self, path: &Path, i: usize) -> Option<Vec<Feature>> {
        let history = match path {
            Path::Definition(name) => self.entry(name).map(|e| &e.attrs),
            _ => self.item_entry(path).map(|e| &e.attrs),
        };
        if let Some(AttrValue::Features(f)) = history
            .and_then(|h| h.iter().find(|a| a.attr == Attr::Features))
            .and_then(|a| a.at(i))
        {
            return Some(f.clone());
        }
        match self.facts.items.get(path)?.get(&Attr::Features)? {
            AttrValue::Features(f) => Some(f.clone()),
            _ => None,
        }
    }

    /// Whether QEMU `version` has `path` (a command, event, type, member, enum value or
    /// branch). Exact for merged versions; between two merged versions, `Yes` or `No` only
    /// when both agree; `Unknown` outside the merged range or for an unknown path.
    pub fn supports(&self, path: &Path, version: Version) -> Support {
        let Some(present) = self.presence(path) else {
            return Support::Unknown;
        };
        let versions = &self.history.versions;
        if let Some(i) = self.history.index_of(version) {
            return if present.contains(i) {
                Support::Yes
            } else {
                Support::No
            };
        }
        let after = versions.iter().position(|v| v.version > version);
        match after {
            Some(b) if b > 0 => match (present.contains(b - 1), present.contains(b)) {
                (true, true) => Support::Yes,
                (false, false) => Support::No,
                _ => Support::Unknown,
            },
            _ => Support::Unknown,
        }
    }

    /// The other names definition `name` had, with the versions that used each.
    pub fn old_names(&self, name: &str) -> Vec<(&'s str, VersionSet)> {
        self.entry(name)
            .map(|e| e.names.iter().map(|(n, s)| (n.as_str(), *s)).collect())
            .unwrap_or_default()
    }

    /// The canonical (merged) name of a definition called `name` in some version, if any. A
    /// merged definition of that name wins over an old name of another one.
    pub fn canonical_name(&self, name: &str) -> Option<&'s str> {
        let schema: &'s Schema = self.schema;
        if let Some(d) = schema.get(name) {
            return Some(d.name());
        }
        self.history
            .definitions
            .iter()
            .find(|e| e.names.iter().any(|(n, _)| n == name))
            .map(|e| e.name.as_str())
    }

    /// The name definition `canonical` had in version index `i`, if it existed there.
    pub fn name_at(&self, canonical: &str, i: usize) -> Option<&'s str> {
        let present = self.presence(&Path::definition(canonical))?;
        if !present.contains(i) {
            return None;
        }
        let def = self.schema.get(canonical)?;
        Some(
            self.entry(canonical)
                .and_then(|e| e.names.iter().find(|(_, s)| s.contains(i)))
                .map_or(def.name(), |(n, _)| n.as_str()),
        )
    }
}
