//! The checked schema model.
//!
//! A [`Schema`] is what every loader ([`crate::parse_qapi`], [`crate::load_introspection`],
//! [`crate::normalized::from_str`]) produces after the check: every type reference resolved,
//! struct bases flattened, union branches tied to discriminator values, legacy simple unions
//! rewritten into the flat-union shape. An emitter can rely on those facts without re-checking.

use std::collections::HashMap;
use std::fmt;

use crate::error::Location;

/// A checked schema: all definitions of one QAPI schema (QEMU, storage daemon, guest agent...).
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// Definitions in include-expanded source order. A synthesized implicit definition (the
    /// `<Union>Kind` enum and `q_obj_<T>-wrapper` structs of a legacy simple union) comes right
    /// after the definition that caused it. Treat as read-only: [`Schema::get`] uses an index
    /// built by the check.
    pub definitions: Vec<Definition>,
    /// The merged `pragma` directives.
    pub pragmas: Pragmas,
    /// A short descriptive name of where the schema came from (e.g.
    /// `qemu-10.0.13/qapi/qapi-schema.json`); never an absolute path.
    pub source: Option<String>,
    /// For a schema merged from several versions ([`crate::history::merge`], or a merged
    /// normalized file): in which versions each definition and item exists and how it
    /// differed. `None` for the schema of one version.
    pub history: Option<crate::history::History>,
    pub(crate) index: HashMap<String, usize>,
}

impl Schema {
    pub(crate) fn from_parts(
        definitions: Vec<Definition>,
        pragmas: Pragmas,
        source: Option<String>,
    ) -> Schema {
        let index = definitions
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name().to_string(), i))
            .collect();
        Schema {
            definitions,
            pragmas,
            source,
            history: None,
            index,
        }
    }

    /// The definition called `name` (type, command or event), if any.
    pub fn get(&self, name: &str) -> Option<&Definition> {
        self.index.get(name).and_then(|&i| self.definitions.get(i))
    }

    /// The enum called `name`.
    pub fn enum_type(&self, name: &str) -> Option<&Enum> {
        match self.get(name) {
            Some(Definition::Enum(e)) => Some(e),
            _ => None,
        }
    }

    /// The struct called `name`.
    pub fn struct_type(&self, name: &str) -> Option<&Struct> {
        match self.get(name) {
            Some(Definition::Struct(s)) => Some(s),
            _ => None,
        }
    }

    /// The union called `name`.
    pub fn union_type(&self, name: &str) -> Option<&Union> {
        match self.get(name) {
            Some(Definition::Union(u)) => Some(u),
            _ => None,
        }
    }

    /// The alternate called `name`.
    pub fn alternate_type(&self, name: &str) -> Option<&Alternate> {
        match self.get(name) {
            Some(Definition::Alternate(a)) => Some(a),
            _ => None,
        }
    }

    /// The command called `name`.
    pub fn command(&self, name: &str) -> Option<&Command> {
        match self.get(name) {
            Some(Definition::Command(c)) => Some(c),
            _ => None,
        }
    }

    /// The event called `name`.
    pub fn event(&self, name: &str) -> Option<&Event> {
        match self.get(name) {
            Some(Definition::Event(e)) => Some(e),
            _ => None,
        }
    }

    /// All enums, in schema order (implicit ones included).
    pub fn enums(&self) -> impl Iterator<Item = &Enum> + '_ {
        self.definitions.iter().filter_map(|d| match d {
            Definition::Enum(e) => Some(e),
            _ => None,
        })
    }

    /// All structs, in schema order (implicit ones included).
    pub fn structs(&self) -> impl Iterator<Item = &Struct> + '_ {
        self.definitions.iter().filter_map(|d| match d {
            Definition::Struct(s) => Some(s),
            _ => None,
        })
    }

    /// All unions, in schema order.
    pub fn unions(&self) -> impl Iterator<Item = &Union> + '_ {
        self.definitions.iter().filter_map(|d| match d {
            Definition::Union(u) => Some(u),
            _ => None,
        })
    }

    /// All alternates, in schema order.
    pub fn alternates(&self) -> impl Iterator<Item = &Alternate> + '_ {
        self.definitions.iter().filter_map(|d| match d {
            Definition::Alternate(a) => Some(a),
            _ => None,
        })
    }

    /// All commands, in schema order.
    pub fn commands(&self) -> impl Iterator<Item = &Command> + '_ {
        self.definitions.iter().filter_map(|d| match d {
            Definition::Command(c) => Some(c),
            _ => None,
        })
    }

    /// All events, in schema order.
    pub fn events(&self) -> impl Iterator<Item = &Event> + '_ {
        self.definitions.iter().filter_map(|d| match d {
            Definition::Event(e) => Some(e),
            _ => None,
        })
    }

    /// Number of definitions per kind; implicit (synthesized) definitions are not counted.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for d in self.definitions.iter().filter(|d| !d.is_implicit()) {
            match d {
                Definition::Enum(_) => c.enums += 1,
                Definition::Struct(_) => c.structs += 1,
                Definition::Union(_) => c.unions += 1,
                Definition::Alternate(_) => c.alternates += 1,
                Definition::Command(_) => c.commands += 1,
                Definition::Event(_) => c.events += 1,
            }
        }
        c
    }

    /// The members of the object type `name` as they appear on the wire regardless of the
    /// branch: a struct's flattened members, or a union's base members. `None` if `name` is
    /// not a struct or union.
    pub fn object_members(&self, name: &str) -> Option<&[Member]> {
        match self.get(name) {
            Some(Definition::Struct(s)) => Some(&s.members),
            Some(Definition::Union(u)) => Some(&u.base_members),
            _ => None,
        }
    }

    /// Whether `name` is an object type (struct or union).
    pub fn is_object_type(&self, name: &str) -> bool {
        matches!(
            self.get(name),
            Some(Definition::Struct(_)) | Some(Definition::Union(_))
        )
    }

    /// The JSON type a value of `ty` takes on the wire (`None` for `any`, which takes every
    /// JSON type).
    pub fn json_type(&self, ty: &TypeRef) -> Option<JsonType> {
        match ty {
            TypeRef::Builtin(b) => b.json_type(),
            TypeRef::Array(_) => Some(JsonType::Array),
            TypeRef::Named(n) => match self.get(n) {
                Some(Definition::Enum(_)) => Some(JsonType::String),
                Some(Definition::Struct(_)) | Some(Definition::Union(_)) => Some(JsonType::Object),
                _ => None,
            },
        }
    }

    /// A copy without doc prose and without source locations: what survives a round trip
    /// through the normalized format. Use it to compare models from different inputs.
    pub fn without_docs_and_locations(&self) -> Schema {
        let mut s = self.clone();
        for d in &mut s.definitions {
            d.strip();
        }
        s
    }
}

/// Number of (non-implicit) definitions per kind, as printed by `qmp-codegen check`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Commands.
    pub commands: usize,
    /// Events.
    pub events: usize,
    /// Structs.
    pub structs: usize,
    /// Unions (legacy simple unions included).
    pub unions: usize,
    /// Alternates.
    pub alternates: usize,
    /// Enums.
    pub enums: usize,
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "commands {}  events {}  structs {}  unions {}  alternates {}  enums {}",
            self.commands, self.events, self.structs, self.unions, self.alternates, self.enums
        )
    }
}

/// The merged `pragma` directives of a schema (schema-wide settings and rule exceptions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pragmas {
    /// `doc-required`: every definition must carry a doc comment block.
    pub doc_required: bool,
    /// `command-name-exceptions`: commands allowed to use `_` in their names.
    pub command_name_exceptions: Vec<String>,
    /// `command-returns-exceptions`: commands allowed to return a non-object type.
    pub command_returns_exceptions: Vec<String>,
    /// `documentation-exceptions`: definitions whose members may be undocumented.
    pub documentation_exceptions: Vec<String>,
    /// `member-name-exceptions`: definitions whose member names may use uppercase and `_`.
    pub member_name_exceptions: Vec<String>,
    /// Old (QEMU <= 5.2) `returns-whitelist`, the former name of `command-returns-exceptions`.
    pub returns_whitelist: Vec<String>,
    /// Old (QEMU <= 5.2) `name-case-whitelist`: definitions (including implicit ones such as
    /// `q_obj_CpuInfo-base`) whose members may use uppercase.
    pub name_case_whitelist: Vec<String>,
}

impl Pragmas {
    /// Whether the schema uses the pre-6.0 pragma names, which select the older, laxer naming
    /// rules (only uppercase in member names is restricted).
    pub fn legacy_names(&self) -> bool {
        !self.returns_whitelist.is_empty() || !self.name_case_whitelist.is_empty()
    }

    /// Whether command `name` may return a non-object type (either pragma spelling).
    pub fn returns_exception(&self, name: &str) -> bool {
        self.command_returns_exceptions.iter().any(|n| n == name)
            || self.returns_whitelist.iter().any(|n| n == name)
    }

    /// Whether definition `name` may use uppercase (and, under the current rules, `_`) in its
    /// member names (either pragma spelling).
    pub fn member_name_exception(&self, name: &str) -> bool {
        self.member_name_exceptions.iter().any(|n| n == name)
            || self.name_case_whitelist.iter().any(|n| n == name)
    }

    /// Whether command `name` may use `_`.
    pub fn command_name_exception(&self, name: &str) -> bool {
        self.command_name_exceptions.iter().any(|n| n == name)
    }

    /// Whether definition `name` may have undocumented members.
    pub fn documentation_exception(&self, name: &str) -> bool {
        self.documentation_exceptions.iter().any(|n| n == name)
    }
}

/// The kind of a definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `enum`
    Enum,
    /// `struct`
    Struct,
    /// `union`
    Union,
    /// `alternate`
    Alternate,
    /// `command`
    Command,
    /// `event`
    Event,
}

impl Kind {
    /// The QAPI keyword (`enum`, `struct`, ...), also used as `kind` in the normalized format.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Enum => "enum",
            Kind::Struct => "struct",
            Kind::Union => "union",
            Kind::Alternate => "alternate",
            Kind::Command => "command",
            Kind::Event => "event",
        }
    }

    /// The kind for a QAPI keyword.
    pub fn from_keyword(s: &str) -> Option<Kind> {
        Some(match s {
            "enum" => Kind::Enum,
            "struct" => Kind::Struct,
            "union" => Kind::Union,
            "alternate" => Kind::Alternate,
            "command" => Kind::Command,
            "event" => Kind::Event,
            _ => return None,
        })
    }

    /// Whether definitions of this kind are types (as opposed to commands and events).
    pub fn is_type(self) -> bool {
        !matches!(self, Kind::Command | Kind::Event)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One definition of the schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Definition {
    /// An enumeration.
    Enum(Enum),
    /// A struct (object type without variants).
    Struct(Struct),
    /// A discriminated union (also the rewritten form of a legacy simple union).
    Union(Union),
    /// An alternate (untagged; the branch is chosen by JSON type).
    Alternate(Alternate),
    /// A command.
    Command(Command),
    /// An event.
    Event(Event),
}

macro_rules! each_def {
    ($self:expr, $d:ident => $e:expr) => {
        match $self {
            Definition::Enum($d) => $e,
            Definition::Struct($d) => $e,
            Definition::Union($d) => $e,
            Definition::Alternate($d) => $e,
            Definition::Command($d) => $e,
            Definition::Event($d) => $e,
        }
    };
}

impl Definition {
    /// The definition's name (wire name for commands and events).
    pub fn name(&self) -> &str {
        each_def!(self, d => &d.name)
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Definition::Enum(_) => Kind::Enum,
            Definition::Struct(_) => Kind::Struct,
            Definition::Union(_) => Kind::Union,
            Definition::Alternate(_) => Kind::Alternate,
            Definition::Command(_) => Kind::Command,
            Definition::Event(_) => Kind::Event,
        }
    }

    /// Its `if` condition.
    pub fn cond(&self) -> Option<&Cond> {
        each_def!(self, d => d.cond.as_ref())
    }

    /// Its features.
    pub fn features(&self) -> &[Feature] {
        each_def!(self, d => &d.features)
    }

    /// Its since-version (from the `Since:` doc section).
    pub fn since(&self) -> Option<&str> {
        each_def!(self, d => d.since.as_deref())
    }

    /// Its doc comment (only when loaded from QAPI source).
    pub fn doc(&self) -> Option<&Doc> {
        each_def!(self, d => d.doc.as_ref())
    }

    /// Where it was defined.
    pub fn location(&self) -> &Location {
        each_def!(self, d => &d.location)
    }

    /// The QAPI module it belongs to (e.g. `block-core`), if known.
    pub fn module(&self) -> Option<&str> {
        each_def!(self, d => d.module.as_deref())
    }

    /// Whether it was synthesized by the check (not written in the schema).
    pub fn is_implicit(&self) -> bool {
        match self {
            Definition::Enum(e) => e.implicit,
            Definition::Struct(s) => s.implicit,
            _ => false,
        }
    }

    /// Whether it carries the `deprecated` feature.
    pub fn is_deprecated(&self) -> bool {
        self.features().iter().any(Feature::is_deprecated)
    }

    /// Whether it carries the `unstable` feature.
    pub fn is_unstable(&self) -> bool {
        self.features().iter().any(Feature::is_unstable)
    }

    fn strip(&mut self) {
        each_def!(self, d => {
            d.doc = None;
            d.location = Location::unknown();
        });
        match self {
            Definition::Enum(e) => {
                for v in &mut e.values {
                    v.doc = None;
                }
            }
            Definition::Struct(s) => {
                strip_members(&mut s.own_members);
                strip_members(&mut s.members);
            }
            Definition::Union(u) => {
                if let UnionBase::Inline(m) = &mut u.base {
                    strip_members(m);
                }
                strip_members(&mut u.base_members);
            }
            Definition::Alternate(_) => {}
            Definition::Command(c) => {
                if let Arguments::Members(m) = &mut c.arguments {
                    strip_members(m);
                }
            }
            Definition::Event(e) => {
                if let Arguments::Members(m) = &mut e.data {
                    strip_members(m);
                }
            }
        }
    }
}

fn strip_members(members: &mut [Member]) {
    for m in members {
        m.doc = None;
    }
}

/// A built-in type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Builtin {
    /// `str`: a JSON string.
    Str,
    /// `number`: any JSON number.
    Number,
    /// `int`: a 64-bit signed integer.
    Int,
    /// `int8`
    Int8,
    /// `int16`
    Int16,
    /// `int32`
    Int32,
    /// `int64`
    Int64,
    /// `uint8`
    Uint8,
    /// `uint16`
    Uint16,
    /// `uint32`
    Uint32,
    /// `uint64`
    Uint64,
    /// `size`: like `uint64` on the wire.
    Size,
    /// `bool`
    Bool,
    /// `null`: only JSON null (used in alternates).
    Null,
    /// `any`: any JSON value.
    Any,
    /// `QType`: the built-in enum of QEMU's value types.
    QType,
}

impl Builtin {
    /// Every built-in type.
    pub const ALL: [Builtin; 16] = [
        Builtin::Str,
        Builtin::Number,
        Builtin::Int,
        Builtin::Int8,
        Builtin::Int16,
        Builtin::Int32,
        Builtin::Int64,
        Builtin::Uint8,
        Builtin::Uint16,
        Builtin::Uint32,
        Builtin::Uint64,
        Builtin::Size,
        Builtin::Bool,
        Builtin::Null,
        Builtin::Any,
        Builtin::QType,
    ];

    /// The values of the built-in enum `QType`.
    pub const QTYPE_VALUES: [&'static str; 7] = [
        "none", "qnull", "qnum", "qstring", "qdict", "qlist", "qbool",
    ];

    /// The schema name (`str`, `uint64`, `QType`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Str => "str",
            Builtin::Number => "number",
            Builtin::Int => "int",
            Builtin::Int8 => "int8",
            Builtin::Int16 => "int16",
            Builtin::Int32 => "int32",
            Builtin::Int64 => "int64",
            Builtin::Uint8 => "uint8",
            Builtin::Uint16 => "uint16",
            Builtin::Uint32 => "uint32",
            Builtin::Uint64 => "uint64",
            Builtin::Size => "size",
            Builtin::Bool => "bool",
            Builtin::Null => "null",
            Builtin::Any => "any",
            Builtin::QType => "QType",
        }
    }

    /// The built-in called `name`.
    pub fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL.iter().copied().find(|b| b.name() == name)
    }

    /// Whether it is one of the integer types (`int*`, `uint*`, `size`).
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            Builtin::Int
                | Builtin::Int8
                | Builtin::Int16
                | Builtin::Int32
                | Builtin::Int64
                | Builtin::Uint8
                | Builtin::Uint16
                | Builtin::Uint32
                | Builtin::Uint64
                | Builtin::Size
        )
    }

    /// The JSON type of its values (`None` for `any`).
    pub fn json_type(self) -> Option<JsonType> {
        match self {
            Builtin::Str | Builtin::QType => Some(JsonType::String),
            Builtin::Bool => Some(JsonType::Boolean),
            Builtin::Null => Some(JsonType::Null),
            Builtin::Any => None,
            _ => Some(JsonType::Number),
        }
    }
}

impl fmt::Display for Builtin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A JSON value type, used to tell alternate branches apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JsonType {
    /// A string (`str`, enums).
    String,
    /// A number (all numeric built-ins).
    Number,
    /// `true`/`false`.
    Boolean,
    /// `null`.
    Null,
    /// An object (structs and unions).
    Object,
    /// An array.
    Array,
}

impl JsonType {
    /// Lower-case name (`string`, `number`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Number => "number",
            JsonType::Boolean => "boolean",
            JsonType::Null => "null",
            JsonType::Object => "object",
            JsonType::Array => "array",
        }
    }
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resolved type reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TypeRef {
    /// A built-in type.
    Builtin(Builtin),
    /// A type defined in the schema (guaranteed to exist after the check).
    Named(String),
    /// An array of the element type (`['T']` in QAPI).
    Array(Box<TypeRef>),
}

impl TypeRef {
    /// The named type this refers to (looking through an array), if any.
    pub fn named(&self) -> Option<&str> {
        match self {
            TypeRef::Named(n) => Some(n),
            TypeRef::Array(e) => e.named(),
            TypeRef::Builtin(_) => None,
        }
    }

    /// The element type if this is an array.
    pub fn element(&self) -> Option<&TypeRef> {
        match self {
            TypeRef::Array(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for TypeRef {
    /// QAPI notation: `str`, `BlockInfo`, `['BlockInfo']` is shown as `[BlockInfo]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeRef::Builtin(b) => f.write_str(b.name()),
            TypeRef::Named(n) => f.write_str(n),
            TypeRef::Array(e) => write!(f, "[{e}]"),
        }
    }
}

/// A condition (`if`): the entity exists only in QEMU builds where it holds.
///
/// Both the current grammar (`'SYMBOL'`, `all`, `any`, `not`) and the old C-preprocessor
/// strings (`'defined(A) && !defined(B)'`) are parsed into this tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Cond {
    /// A configuration symbol such as `CONFIG_SPICE`.
    Symbol(String),
    /// All of them hold.
    All(Vec<Cond>),
    /// At least one holds.
    Any(Vec<Cond>),
    /// It does not hold.
    Not(Box<Cond>),
}

impl Cond {
    /// Every symbol mentioned, in order of first appearance.
    pub fn symbols(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_symbols(&mut out);
        out
    }

    fn collect_symbols<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Cond::Symbol(s) => {
                if !out.contains(&s.as_str()) {
                    out.push(s);
                }
            }
            Cond::All(v) | Cond::Any(v) => v.iter().for_each(|c| c.collect_symbols(out)),
            Cond::Not(c) => c.collect_symbols(out),
        }
    }

    /// Evaluates the condition given the set of defined symbols.
    pub fn eval(&self, defined: &dyn Fn(&str) -> bool) -> bool {
        match self {
            Cond::Symbol(s) => defined(s),
            Cond::All(v) => v.iter().all(|c| c.eval(defined)),
            Cond::Any(v) => v.iter().any(|c| c.eval(defined)),
            Cond::Not(c) => !c.eval(defined),
        }
    }
}

impl fmt::Display for Cond {
    /// Readable form: `CONFIG_SPICE`, `all(A, B)`, `any(A, B)`, `not(X)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(f: &mut fmt::Formatter<'_>, op: &str, v: &[Cond]) -> fmt::Result {
            write!(f, "{op}(")?;
            for (i, c) in v.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str(")")
        }
        match self {
            Cond::Symbol(s) => f.write_str(s),
            Cond::All(v) => list(f, "all", v),
            Cond::Any(v) => list(f, "any", v),
            Cond::Not(c) => write!(f, "not({c})"),
        }
    }
}

/// A feature flag of a definition, member or enum value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Feature {
    /// Its name (`deprecated`, `unstable`, or a custom one).
    pub name: String,
    /// Its condition.
    pub cond: Option<Cond>,
}

impl Feature {
    /// `deprecated`: may be removed after the deprecation period.
    pub fn is_deprecated(&self) -> bool {
        self.name == "deprecated"
    }

    /// `unstable`: may change or vanish at any time.
    pub fn is_unstable(&self) -> bool {
        self.name == "unstable"
    }
}

/// A member of a struct, of a union base, or of a command's/event's inline arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Wire name (without the `*` optional marker).
    pub name: String,
    /// Its type.
    pub ty: TypeRef,
    /// Whether it may be absent.
    pub optional: bool,
    /// Its condition.
    pub cond: Option<Cond>,
    /// Its features.
    pub features: Vec<Feature>,
    /// Since-version (the inline `(since X.Y)` of its doc text).
    pub since: Option<String>,
    /// Its doc text (only when loaded from QAPI source).
    pub doc: Option<String>,
}

impl Member {
    /// Whether it carries the `deprecated` feature.
    pub fn is_deprecated(&self) -> bool {
        self.features.iter().any(Feature::is_deprecated)
    }

    /// Whether it carries the `unstable` feature.
    pub fn is_unstable(&self) -> bool {
        self.features.iter().any(Feature::is_unstable)
    }
}

/// An enum value.
#[derive(Debug, Clone, PartialEq)]
pub struct EnumValue {
    /// Wire name (may start with a digit or be a Rust keyword).
    pub name: String,
    /// Its condition.
    pub cond: Option<Cond>,
    /// Its features.
    pub features: Vec<Feature>,
    /// Since-version from its doc text.
    pub since: Option<String>,
    /// Its doc text (only when loaded from QAPI source).
    pub doc: Option<String>,
}

impl EnumValue {
    /// Whether it carries the `deprecated` feature.
    pub fn is_deprecated(&self) -> bool {
        self.features.iter().any(Feature::is_deprecated)
    }
}

/// An enum type.
#[derive(Debug, Clone, PartialEq)]
pub struct Enum {
    /// Its name.
    pub name: String,
    /// Its values in source order.
    pub values: Vec<EnumValue>,
    /// The C constant prefix (`prefix` key; no wire effect).
    pub prefix: Option<String>,
    /// Its condition.
    pub cond: Option<Cond>,
    /// Its features.
    pub features: Vec<Feature>,
    /// Since-version.
    pub since: Option<String>,
    /// Its doc comment.
    pub doc: Option<Doc>,
    /// Synthesized (the `<Union>Kind` enum of a legacy simple union).
    pub implicit: bool,
    /// Where it was defined.
    pub location: Location,
    /// The QAPI module (schema file, e.g. `block-core` for `qapi/block-core.json`) it is
    /// defined in; `None` when the input does not say (introspection).
    pub module: Option<String>,
}

impl Enum {
    /// The value called `name`.
    pub fn value(&self, name: &str) -> Option<&EnumValue> {
        self.values.iter().find(|v| v.name == name)
    }
}

/// A struct type.
#[derive(Debug, Clone, PartialEq)]
pub struct Struct {
    /// Its name.
    pub name: String,
    /// Its base struct.
    pub base: Option<String>,
    /// Members declared by this struct itself.
    pub own_members: Vec<Member>,
    /// All members: those of the base chain first, then its own.
    pub members: Vec<Member>,
    /// Its condition.
    pub cond: Option<Cond>,
    /// Its features.
    pub features: Vec<Feature>,
    /// Since-version.
    pub since: Option<String>,
    /// Its doc comment.
    pub doc: Option<Doc>,
    /// Synthesized (a `q_obj_<T>-wrapper` of a legacy simple union).
    pub implicit: bool,
    /// Where it was defined.
    pub location: Location,
    /// The QAPI module (schema file, e.g. `block-core` for `qapi/block-core.json`) it is
    /// defined in; `None` when the input does not say (introspection).
    pub module: Option<String>,
}

/// The base of a union.
#[derive(Debug, Clone, PartialEq)]
pub enum UnionBase {
    /// A named struct.
    Named(String),
    /// Inline members (QEMU's implicit `q_obj_<Union>-base`).
    Inline(Vec<Member>),
}

/// A branch of a union: the members added when the discriminator has `value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    /// The discriminator value.
    pub value: String,
    /// The object type (struct or union) whose members are added.
    pub ty_name: String,
    /// Its condition.
    pub cond: Option<Cond>,
}

/// A discriminated union.
///
/// Wire form: one flat JSON object holding the base members plus the members of the branch
/// selected by the discriminator (nothing more when the value has no branch).
#[derive(Debug, Clone, PartialEq)]
pub struct Union {
    /// Its name.
    pub name: String,
    /// Its base.
    pub base: UnionBase,
    /// The base members, flattened (include the discriminator).
    pub base_members: Vec<Member>,
    /// The discriminator member's name.
    pub discriminator: String,
    /// The discriminator's enum type.
    pub discriminator_enum: String,
    /// The branches, in source order.
    pub branches: Vec<Branch>,
    /// Rewritten from a legacy (QEMU <= 6.1) simple union: the base is one member
    /// `type: <Union>Kind` and each branch is a `q_obj_<T>-wrapper` struct with one member
    /// `data`, so the wire form is `{"type": ..., "data": ...}`.
    pub simple_legacy: bool,
    /// Its condition.
    pub cond: Option<Cond>,
    /// Its features.
    pub features: Vec<Feature>,
    /// Since-version.
    pub since: Option<String>,
    /// Its doc comment.
    pub doc: Option<Doc>,
    /// Where it was defined.
    pub location: Location,
    /// The QAPI module (schema file, e.g. `block-core` for `qapi/block-core.json`) it is
    /// defined in; `None` when the input does not say (introspection).
    pub module: Option<String>,
}

impl Union {
    /// The branch for discriminator value `value`.
    pub fn branch(&self, value: &str) -> Option<&Branch> {
        self.branches.iter().find(|b| b.value == value)
    }

    /// The base's name if it is a named struct.
    pub fn base_name(&self) -> Option<&str> {
        match &self.base {
            UnionBase::Named(n) => Some(n),
            UnionBase::Inline(_) => None,
        }
    }
}

/// A branch of an alternate.
#[derive(Debug, Clone, PartialEq)]
pub struct AltBranch {
    /// Branch name (only used for generated code; nothing on the wire).
    pub name: String,
    /// Its type.
    pub ty: TypeRef,
    /// Its condition.
    pub cond: Option<Cond>,
}

impl AltBranch {
    /// The JSON type a value of this branch takes (distinct per branch, guaranteed by the
    /// check).
    pub fn json_type(&self, schema: &Schema) -> Option<JsonType> {
        schema.json_type(&self.ty)
    }
}

/// An alternate: no tag on the wire; the branch is chosen by the JSON type of the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Alternate {
    /// Its name.
    pub name: String,
    /// Its branches, in source order.
    pub branches: Vec<AltBranch>,
    /// Its condition.
    pub cond: Option<Cond>,
    /// Its features.
    pub features: Vec<Feature>,
    /// Since-version.
    pub since: Option<String>,
    /// Its doc comment.
    pub doc: Option<Doc>,
    /// Where it was defined.
    pub location: Location,
    /// The QAPI module (schema file, e.g. `block-core` for `qapi/block-core.json`) it is
    /// defined in; `None` when the input does not say (introspection).
    pub module: Option<String>,
}

impl Alternate {
    /// The branch taking values of JSON type `json`, if any.
    pub fn branch_for(&self, schema: &Schema, json: JsonType) -> Option<&AltBranch> {
        self.branches
            .iter()
            .find(|b| b.json_type(schema) == Some(json))
    }
}

/// The arguments of a command or the data of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Arguments {
    /// None.
    None,
    /// Inline members (QEMU's implicit `q_obj_<name>-arg` type).
    Members(Vec<Member>),
    /// A named type: a struct, or (only with `boxed`) a union; its members are the arguments.
    Type(String),
}

impl Arguments {
    /// The flattened argument members: inline members, a struct's members, or a union's base
    /// members (the branch members depend on the discriminator value). Empty for `None`.
    pub fn argument_members<'a>(&'a self, schema: &'a Schema) -> &'a [Member] {
        match self {
            Arguments::None => &[],
            Arguments::Members(m) => m,
            Arguments::Type(t) => schema.object_members(t).unwrap_or(&[]),
        }
    }

    /// Whether there are no arguments at all.
    pub fn is_none(&self) -> bool {
        matches!(self, Arguments::None)
    }
}

/// A command.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Wire name.
    pub name: String,
    /// Its arguments.
    pub arguments: Arguments,
    /// Its return type (`None`: returns an empty object `{}`).
    pub returns: Option<TypeRef>,
    /// `boxed: true` (C signature only; no wire effect).
    pub boxed: bool,
    /// `false` for `success-response: false`: no reply at all on success.
    pub success_response: bool,
    /// `false` for `gen: false`: hand-written marshaller; arguments may be incomplete.
    pub gen: bool,
    /// `allow-oob: true`: may be sent with `exec-oob`.
    pub allow_oob: bool,
    /// `allow-preconfig: true`: usable in the preconfig state.
    pub allow_preconfig: bool,
    /// `coroutine: true` (server-internal).
    pub coroutine: bool,
    /// Its condition.
    pub cond: Option<Cond>,
    /// Its features.
    pub features: Vec<Feature>,
    /// Since-version.
    pub since: Option<String>,
    /// Its doc comment.
    pub doc: Option<Doc>,
    /// Where it was defined.
    pub location: Location,
    /// The QAPI module (schema file, e.g. `block-core` for `qapi/block-core.json`) it is
    /// defined in; `None` when the input does not say (introspection).
    pub module: Option<String>,
}

impl Command {
    /// The flattened argument members (see [`Arguments::argument_members`]).
    pub fn argument_members<'a>(&'a self, schema: &'a Schema) -> &'a [Member] {
        self.arguments.argument_members(schema)
    }
}

/// An event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Wire name.
    pub name: String,
    /// Its data.
    pub data: Arguments,
    /// `boxed: true`.
    pub boxed: bool,
    /// Its condition.
    pub cond: Option<Cond>,
    /// Its features.
    pub features: Vec<Feature>,
    /// Since-version.
    pub since: Option<String>,
    /// Its doc comment.
    pub doc: Option<Doc>,
    /// Where it was defined.
    pub location: Location,
    /// The QAPI module (schema file, e.g. `block-core` for `qapi/block-core.json`) it is
    /// defined in; `None` when the input does not say (introspection).
    pub module: Option<String>,
}

impl Event {
    /// The flattened data members (see [`Arguments::argument_members`]).
    pub fn argument_members<'a>(&'a self, schema: &'a Schema) -> &'a [Member] {
        self.data.argument_members(schema)
    }
}

pub use crate::doc::{Doc, DocItem, DocSection, SectionKind};
