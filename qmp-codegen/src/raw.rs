//! Unchecked definitions: what every front end (QAPI source, introspection, normalized JSON)
//! produces and [`crate::check`] turns into a [`crate::model::Schema`].

use crate::doc::Doc;
use crate::error::Location;
use crate::model::{Cond, Feature, Kind, Pragmas};

/// Which front end produced the raw schema; selects the checks that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// QAPI source files: every check, including documentation rules.
    Source,
    /// Our normalized JSON: structural checks only, like introspection. It is written from an
    /// already checked schema, which may come from introspection, where names follow no
    /// convention; QEMU's naming and documentation rules are checks on QAPI source.
    Normalized,
    /// `query-qmp-schema` output: structural checks only (names and pragmas are QEMU's own
    /// business there, and conditions are already applied).
    Introspection,
}

#[derive(Debug, Clone)]
pub(crate) struct RawSchema {
    pub defs: Vec<RawDef>,
    pub pragmas: Pragmas,
    pub source: Option<String>,
    pub origin: Origin,
}

/// A type reference as written: a name or a one-element list.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawTypeRef {
    Name(String),
    Array(String),
}

#[derive(Debug, Clone)]
pub(crate) struct RawFeature {
    pub feature: Feature,
    pub loc: Location,
}

#[derive(Debug, Clone)]
pub(crate) struct RawMember {
    pub name: String,
    pub optional: bool,
    pub ty: RawTypeRef,
    pub cond: Option<Cond>,
    pub features: Vec<RawFeature>,
    /// Since-version given explicitly (normalized input); source input gets it from the doc.
    pub since: Option<String>,
    pub loc: Location,
}

#[derive(Debug, Clone)]
pub(crate) struct RawEnumValue {
    pub name: String,
    pub cond: Option<Cond>,
    pub features: Vec<RawFeature>,
    pub since: Option<String>,
    pub loc: Location,
}

/// A union or alternate branch.
#[derive(Debug, Clone)]
pub(crate) struct RawBranch {
    pub name: String,
    pub ty: RawTypeRef,
    pub cond: Option<Cond>,
    pub loc: Location,
}

#[derive(Debug, Clone)]
pub(crate) enum RawBase {
    Named(String, Location),
    Inline(Vec<RawMember>),
}

#[derive(Debug, Clone)]
pub(crate) enum RawArgs {
    None,
    Members(Vec<RawMember>),
    Type(String, Location),
}

#[derive(Debug, Clone)]
pub(crate) struct CommandFlags {
    pub boxed: bool,
    pub success_response: bool,
    pub gen: bool,
    pub allow_oob: bool,
    pub allow_preconfig: bool,
    pub coroutine: bool,
}

impl Default for CommandFlags {
    fn default() -> Self {
        CommandFlags {
            boxed: false,
            success_response: true,
            gen: true,
            allow_oob: false,
            allow_preconfig: false,
            coroutine: false,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum RawBody {
    Enum {
        values: Vec<RawEnumValue>,
        prefix: Option<String>,
    },
    Struct {
        base: Option<(String, Location)>,
        members: Vec<RawMember>,
    },
    Union {
        /// `None` together with `discriminator: None`: a legacy simple union.
        base: Option<RawBase>,
        discriminator: Option<(String, Location)>,
        branches: Vec<RawBranch>,
        /// Already rewritten from a simple union (normalized input).
        simple_legacy: bool,
    },
    Alternate {
        branches: Vec<RawBranch>,
    },
    Command {
        data: RawArgs,
        returns: Option<(RawTypeRef, Location)>,
        flags: CommandFlags,
    },
    Event {
        data: RawArgs,
        boxed: bool,
    },
}

impl RawBody {
    pub fn kind(&self) -> Kind {
        match self {
            RawBody::Enum { .. } => Kind::Enum,
            RawBody::Struct { .. } => Kind::Struct,
            RawBody::Union { .. } => Kind::Union,
            RawBody::Alternate { .. } => Kind::Alternate,
            RawBody::Command { .. } => Kind::Command,
            RawBody::Event { .. } => Kind::Event,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RawDef {
    pub name: String,
    pub loc: Location,
    pub cond: Option<Cond>,
    pub features: Vec<RawFeature>,
    pub doc: Option<Doc>,
    /// Since-version given explicitly (normalized input).
    pub since: Option<String>,
    pub implicit: bool,
    /// The QAPI module (schema file name without `.json`) it comes from; `None` when unknown
    /// (introspection input).
    pub module: Option<String>,
    pub body: RawBody,
}

impl RawDef {
    pub fn what(&self) -> String {
        format!("{} '{}'", self.body.kind(), self.name)
    }
}
