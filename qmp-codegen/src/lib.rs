//! Reads QEMU's QAPI schema into a checked model, for generating a typed Rust QMP API.
//!
//! Three inputs lead to the same [`model::Schema`]:
//! - QAPI source: a root file such as `qapi/qapi-schema.json` and everything it includes
//!   ([`parse_qapi`]); the only input that carries doc comments;
//! - `query-qmp-schema` output of a running QEMU ([`load_introspection`]); masked type names
//!   get stable names derived from where they are used;
//! - our normalized JSON ([`normalized::from_str`]), written by [`normalized::to_string`] or
//!   `qmp-codegen import`: facts only, no prose.
//!
//! [`load_path`] tells the three apart by content. Every input goes through the same check,
//! so an emitter can trust the model: references resolve, bases are flattened, union branches
//! match their discriminator's values. Errors ([`SchemaError`]) say what is wrong and where
//! (`file:line`, definition name).
//!
//! The pipeline is parse → check → model → [`emit`]: the emitter turns a model into the Rust
//! source of the typed API (`qmp-api` includes it), and [`Config`] runs the whole pipeline from
//! a build script.
//!
//! | module | what |
//! |---|---|
//! | [`model`] | the checked model: [`Schema`], [`model::Definition`] and its kinds |
//! | [`doc`] | doc comment blocks: overview, member and feature text, tagged sections |
//! | [`introspect`] | `query-qmp-schema` output → model |
//! | [`normalized`] | our normalized JSON: [`normalized::to_string`], [`normalized::from_str`] |
//! | [`history`] | one schema merged from every version of a family with its version history ([`history::MergedSchema`]), on top of the model and the normalized format |
//! | `compat` | compatibility report: a built-in schema against a server's introspection (cargo feature `compat`) |
//! | `validate` | a command's arguments (or a reply, an event) against the model, with QEMU's error classes and descriptions (cargo feature `validate`) |
//! | [`error`] | [`SchemaError`], [`Location`] |
//!
//! Cargo features `validate` and `compat` (both default) add the modules tools and runtimes
//! use; a build script needs neither, so `qmp-api` and `qmp-ga` build-depend on this crate
//! with `default-features = false`, which keeps their clean builds shorter.
//!
//! # Example
//!
//! ```
//! use qmp_codegen::model::{Builtin, TypeRef};
//!
//! let text = concat!(
//!     "##\n",
//!     "# @Status:\n",
//!     "#\n",
//!     "# @running: whether the guest runs (since 1.0)\n",
//!     "#\n",
//!     "# Since: 0.14\n",
//!     "##\n",
//!     "{ 'struct': 'Status', 'data': { 'running': 'bool', '*reason': 'str' } }\n",
//!     "{ 'command': 'query-status', 'returns': 'Status' }\n",
//! );
//! let schema = qmp_codegen::parse_qapi_str("example.json", text)?;
//!
//! let status = schema.struct_type("Status").expect("defined");
//! assert_eq!(status.members[0].ty, TypeRef::Builtin(Builtin::Bool));
//! assert_eq!(status.members[0].since.as_deref(), Some("1.0"));
//! assert!(status.members[1].optional);
//! assert_eq!(status.since.as_deref(), Some("0.14"));
//! assert_eq!(schema.counts().to_string(),
//!            "commands 1  events 0  structs 1  unions 0  alternates 0  enums 0");
//!
//! // The normalized form keeps the facts and drops the prose.
//! let json = qmp_codegen::normalized::to_string(&schema);
//! let again = qmp_codegen::normalized::from_str("example", &json)?;
//! assert_eq!(again.without_docs_and_locations(), schema.without_docs_and_locations());
//! # Ok::<(), qmp_codegen::SchemaError>(())
//! ```

mod check;
#[cfg(feature = "compat")]
pub mod compat;
mod config;
pub mod doc;
pub mod emit;
pub mod error;
pub mod history;
pub mod ident;
pub mod introspect;
mod load;
pub mod model;
pub mod normalized;
mod parse;
mod raw;
#[cfg(feature = "validate")]
pub mod validate;

pub use config::{write_if_changed, BuildError, Config, Report};
pub use error::{Location, SchemaError};
pub use introspect::load_introspection;
pub use load::{detect, load_path, load_str, InputKind};
pub use model::Schema;
pub use parse::source_name;

use std::path::Path;

/// Parses and checks a QAPI schema from its root file (e.g. `qapi/qapi-schema.json`),
/// following `include` directives relative to each including file.
pub fn parse_qapi(root: impl AsRef<Path>) -> Result<Schema, SchemaError> {
    check::check(parse::parse_raw(root.as_ref())?)
}

/// Parses and checks QAPI source text held in memory (no `include` possible); `name` is
/// used in locations and as the schema's source name.
pub fn parse_qapi_str(name: &str, text: &str) -> Result<Schema, SchemaError> {
    check::check(parse::parse_raw_str(name, text)?)
}
