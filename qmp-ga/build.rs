//! Generates the typed guest agent API from the agent's schema: `schema/qga-10.0.13.json` by
//! default, or the file named by `QGA_SCHEMA` (normalized JSON, or the agent's QAPI source
//! `qga/qapi-schema.json`). The command methods are generated on `GuestAgent`.

use std::path::PathBuf;

fn main() {
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema/qga-10.0.13.json");
    let result = qmp_codegen::Config::new()
        .schema(default)
        .schema_env("QGA_SCHEMA")
        .client_type("GuestAgent")
        .run();
    if let Err(e) = result {
        eprintln!("error: qmp-ga: {e}");
        std::process::exit(1);
    }
}
