//! Generates the typed API from the schema: `schema/qemu.json` by default (every QEMU from 2.12
//! to 10.0, merged with its version history), or the file named by `QMP_SCHEMA` (our normalized
//! JSON, merged or not, a QAPI root file such as `qapi/qapi-schema.json`, or a
//! `query-qmp-schema` dump).

use std::path::PathBuf;

fn main() {
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema/qemu.json");
    let result = qmp_codegen::Config::new()
        .schema(default)
        .schema_env("QMP_SCHEMA")
        .run();
    if let Err(e) = result {
        eprintln!("error: qmp-api: {e}");
        std::process::exit(1);
    }
}
