//! The schema this API was generated from, as a checked model, and QEMU's argument checks
//! over it (cargo feature `schema`).
//!
//! [`builtin`] loads the model once per process from normalized JSON compiled into the
//! binary (the build writes it next to the generated code; the default merged schema takes
//! 23 ms to load and check in a release build, the median of `cargo bench -p qmp-codegen
//! --bench load`, and about 0.1 s in a debug build). Members that some
//! merged QEMU version leaves out are optional in it, so what any supported QEMU accepts or
//! sends passes its checks. [`validate`] is `qmp_codegen::validate`: QEMU's error classes and
//! descriptions for bad arguments.
//!
//! ```
//! use qmp_api::schema::{self, validate};
//! use serde_json::json;
//!
//! let model = schema::builtin();
//! assert!(model.command("blockdev-add").is_some());
//! let err = validate::validate_command(model, "qom-list", Some(&json!({"pth": "/"})))
//!     .unwrap_err();
//! assert_eq!(err.message, "Parameter 'path' is missing");
//! ```

use std::sync::OnceLock;

pub use qmp_codegen::model::Schema;
pub use qmp_codegen::validate;
pub use qmp_codegen::SchemaError;

/// The normalized JSON the build wrote (see the module docs).
const NORMALIZED: &str = include_str!(concat!(env!("OUT_DIR"), "/schema.json"));

/// The checked model of the schema this API was generated from ([`crate::SCHEMA`] names
/// it), loaded on first use and then shared.
///
/// # Panics
///
/// Never for a build of this crate: the text was written by the build from a model that
/// passed the same check (a failure would be a bug in `qmp-codegen`, reported with the
/// schema error).
pub fn builtin() -> &'static Schema {
    static MODEL: OnceLock<Schema> = OnceLock::new();
    MODEL.get_or_init(|| match load_builtin() {
        Ok(schema) => schema,
        Err(e) => panic!("qmp-api: the built-in schema does not load back: {e}"),
    })
}

/// Loads a fresh copy of the model [`builtin`] shares (to change it, e.g. to remove
/// commands a test's QEMU lacks, before giving it to a mock).
///
/// # Errors
///
/// None for a build of this crate (see [`builtin`]).
///
/// ```
/// let mut model = qmp_api::schema::load_builtin()?;
/// assert_eq!(model.counts(), qmp_api::schema::builtin().counts());
/// # Ok::<(), qmp_api::schema::SchemaError>(())
/// ```
pub fn load_builtin() -> Result<Schema, qmp_codegen::SchemaError> {
    qmp_codegen::normalized::from_str(crate::SCHEMA, NORMALIZED)
}
