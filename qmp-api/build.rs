//! Generates the typed API from the schema: `schema/qemu.json` by default (every QEMU from 2.12
//! to 10.0, merged with its version history), or the file named by `QMP_SCHEMA` (our normalized
//! JSON, merged or not, a QAPI root file such as `qapi/qapi-schema.json`, or a
//! `query-qmp-schema` dump).
//!
//! Then decides whether `qmp_api::workflow` is built (`cfg(qmp_workflow)`): it calls generated
//! methods and reads generated types, so it needs a schema that has them in the shapes it uses
//! (the merged default, or QEMU's system emulator schema from 9.1 on, from QAPI source or a
//! normalized file). Other schemas (the storage daemon's, the guest agent's, older releases, an
//! introspection dump, which hides type names) build the typed API without the workflows.

use std::path::PathBuf;

use qmp_codegen::model::{Definition, Member, TypeRef};
use qmp_codegen::Schema;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(qmp_workflow)");
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema/qemu.json");
    let result = qmp_codegen::Config::new()
        .schema(default)
        .schema_env("QMP_SCHEMA")
        .decode_arguments_feature("decode-arguments")
        .run();
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: qmp-api: {e}");
            std::process::exit(1);
        }
    };
    if std::env::var_os("CARGO_FEATURE_SCHEMA").is_some() {
        if let Err(e) = write_schema(&report) {
            eprintln!("error: qmp-api: cannot write the schema for `qmp_api::schema`: {e}");
            std::process::exit(1);
        }
    }
    match workflow_support(&report.model) {
        Ok(()) => println!("cargo::rustc-cfg=qmp_workflow"),
        // Not an error: this schema's API is built without `workflow`.
        Err(missing) => eprintln!("qmp-api: no `workflow` module with this schema: {missing}"),
    }
}

/// A member the workflows use: its wire name and whether it is optional (set through a call's
/// setter, or read as an `Option`) or required (a positional argument, or a plain field).
type Use = (&'static str, bool);

const REQUIRED: bool = false;
const OPTIONAL: bool = true;

/// Commands: their name, required arguments in order (the method's parameters), and the
/// optional ones set by name.
const COMMANDS: &[(&str, &[&str], &[&str])] = &[
    ("quit", &[], &[]),
    ("query-jobs", &[], &[]),
    ("job-complete", &["id"], &[]),
    ("job-cancel", &["id"], &[]),
    ("job-finalize", &["id"], &[]),
    ("job-dismiss", &["id"], &[]),
    ("migrate", &[], &["uri"]),
    ("migrate-incoming", &[], &["uri", "exit-on-error"]),
    ("migrate-set-capabilities", &["capabilities"], &[]),
    ("migrate_cancel", &[], &[]),
    ("migrate-continue", &["state"], &[]),
    ("query-migrate", &[], &[]),
];

/// Structs and event data the workflows read or build.
const OBJECTS: &[(&str, &[Use])] = &[
    (
        "JobInfo",
        &[
            ("id", REQUIRED),
            ("status", REQUIRED),
            ("current-progress", REQUIRED),
            ("total-progress", REQUIRED),
            ("error", OPTIONAL),
        ],
    ),
    (
        "MigrationInfo",
        &[
            ("status", OPTIONAL),
            ("ram", OPTIONAL),
            ("total-time", OPTIONAL),
            ("downtime", OPTIONAL),
            ("error-desc", OPTIONAL),
            ("socket-address", OPTIONAL),
        ],
    ),
    (
        "MigrationStats",
        &[
            ("transferred", REQUIRED),
            ("remaining", REQUIRED),
            ("total", REQUIRED),
            ("mbps", REQUIRED),
            ("dirty-sync-count", REQUIRED),
        ],
    ),
    (
        "MigrationCapabilityStatus",
        &[("capability", REQUIRED), ("state", REQUIRED)],
    ),
    ("SocketAddress", &[]),
];

const EVENTS: &[(&str, &[Use])] = &[
    (
        "JOB_STATUS_CHANGE",
        &[("id", REQUIRED), ("status", REQUIRED)],
    ),
    (
        "BLOCK_JOB_COMPLETED",
        &[
            ("device", REQUIRED),
            ("error", OPTIONAL),
            ("offset", REQUIRED),
            ("len", REQUIRED),
        ],
    ),
    (
        "BLOCK_JOB_CANCELLED",
        &[
            ("device", REQUIRED),
            ("offset", REQUIRED),
            ("len", REQUIRED),
        ],
    ),
    ("MIGRATION", &[("status", REQUIRED)]),
    ("MIGRATION_PASS", &[("pass", REQUIRED)]),
];

const ENUMS: &[(&str, &[&str])] = &[
    (
        "JobStatus",
        &[
            "undefined",
            "running",
            "ready",
            "pending",
            "concluded",
            "null",
        ],
    ),
    (
        "MigrationStatus",
        &["none", "cancelled", "completed", "failed", "pre-switchover"],
    ),
    ("MigrationCapability", &["events"]),
];

/// `Ok` when the schema has everything `qmp_api::workflow` uses; otherwise what is missing.
fn workflow_support(schema: &Schema) -> Result<(), String> {
    for (name, required, optional) in COMMANDS {
        let Some(command) = schema.command(name) else {
            return Err(format!("command {name} missing"));
        };
        let members = command.arguments.argument_members(schema);
        let positional: Vec<&str> = members
            .iter()
            .filter(|m| !m.optional)
            .map(|m| m.name.as_str())
            .collect();
        if positional != *required {
            return Err(format!(
                "command {name}: required arguments {positional:?}, not {required:?}"
            ));
        }
        let setters: Vec<Use> = optional.iter().map(|o| (*o, OPTIONAL)).collect();
        check_members(name, members, &setters)?;
    }
    if !returns(schema, "query-jobs", "JobInfo")
        || !returns(schema, "query-migrate", "MigrationInfo")
    {
        return Err("query-jobs or query-migrate returns another type".into());
    }
    for (name, uses) in OBJECTS {
        let members = schema
            .object_members(name)
            .ok_or_else(|| format!("type {name} missing"))?;
        check_members(name, members, uses)?;
    }
    for (name, uses) in EVENTS {
        let event = schema
            .event(name)
            .ok_or_else(|| format!("event {name} missing"))?;
        check_members(name, event.data.argument_members(schema), uses)?;
    }
    for (name, values) in ENUMS {
        let Some(Definition::Enum(e)) = schema.get(name) else {
            return Err(format!("enum {name} missing"));
        };
        if let Some(value) = values
            .iter()
            .find(|v| !e.values.iter().any(|x| x.name == **v))
        {
            return Err(format!("enum {name} has no value {value}"));
        }
    }
    Ok(())
}

fn check_members(owner: &str, members: &[Member], uses: &[Use]) -> Result<(), String> {
    for (name, optional) in uses {
        let Some(member) = members.iter().find(|m| m.name == *name) else {
            return Err(format!("{owner}: member {name} missing"));
        };
        if member.optional != *optional {
            return Err(format!("{owner}: member {name} has another optionality"));
        }
    }
    Ok(())
}

/// Whether `command` returns `ty` or an array of it.
fn returns(schema: &Schema, command: &str, ty: &str) -> bool {
    let returned = schema.command(command).and_then(|c| c.returns.as_ref());
    match returned {
        Some(TypeRef::Named(n)) => n == ty,
        Some(TypeRef::Array(inner)) => matches!(&**inner, TypeRef::Named(n) if n == ty),
        _ => false,
    }
}

/// Feature `schema`: the model the API was generated from, as normalized JSON in
/// `$OUT_DIR/schema.json`, for `qmp_api::schema::builtin`. A merged schema is written with its
/// relaxed members optional (what some merged version leaves out may be left out).
fn write_schema(report: &qmp_codegen::Report) -> Result<(), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(&report.schema).unwrap_or_default();
    let model = if text.contains("\"history\"") {
        match qmp_codegen::history::from_str(&report.schema.to_string_lossy(), &text) {
            Ok(merged) => merged.lenient_schema(),
            Err(_) => report.model.clone(),
        }
    } else {
        report.model.clone()
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let file = qmp_codegen::emit::GeneratedFile {
        name: "schema.json".into(),
        contents: qmp_codegen::normalized::to_string(&model),
    };
    qmp_codegen::write_if_changed(&out, &[file])?;
    Ok(())
}
