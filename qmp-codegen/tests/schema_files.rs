//! The committed `schema/*.json` files are exactly what `qmp-codegen import` writes today from
//! `../shared/qapi`. Set `QMP_CODEGEN_BLESS=1` to rewrite them instead of failing.

mod common;

use qmp_codegen::{load_path, normalized};

/// Committed file (under `schema/`) → QAPI root (under `shared/qapi/`).
const FILES: &[(&str, &str)] = &[
    ("qemu-10.0.13.json", "qemu-10.0.13/qapi/qapi-schema.json"),
    (
        "qemu-storage-daemon-10.0.13.json",
        "qemu-10.0.13/storage-daemon/qapi/qapi-schema.json",
    ),
    ("qga-10.0.13.json", "qga-10.0.13/qapi-schema.json"),
];

#[test]
fn committed_schema_files_are_up_to_date() {
    let Some(shared) = common::shared_dir("committed_schema_files_are_up_to_date") else {
        return;
    };
    let bless = std::env::var("QMP_CODEGEN_BLESS").as_deref() == Ok("1");
    let schema_dir = common::workspace_root().join("schema");
    let mut stale = Vec::new();
    for (file, root) in FILES {
        let schema = load_path(shared.join("qapi").join(root)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            schema.source.as_deref(),
            Some(*root),
            "source name recorded in the file"
        );
        let want = normalized::to_string(&schema);
        let path = schema_dir.join(file);
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            if bless {
                std::fs::write(&path, &want).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                eprintln!("blessed {}", path.display());
            } else {
                stale.push(format!("schema/{file} (from {root})"));
            }
        }
        // The committed file loads back to the same facts.
        let back = normalized::from_str(file, &want).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            back.without_docs_and_locations(),
            schema.without_docs_and_locations()
        );
    }
    assert!(
        stale.is_empty(),
        "out of date: {}\nregenerate with the commands in schema/README.md, or run this test \
         with QMP_CODEGEN_BLESS=1",
        stale.join(", ")
    );
}

#[test]
fn committed_schema_files_load_without_shared() {
    // Independent of ../shared: what the build uses by default must always load.
    let schema_dir = common::workspace_root().join("schema");
    let qemu = load_path(schema_dir.join("qemu-10.0.13.json")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        qemu.counts().to_string(),
        "commands 240  events 56  structs 468  unions 43  alternates 6  enums 181"
    );
    let qsd = load_path(schema_dir.join("qemu-storage-daemon-10.0.13.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        qsd.counts().to_string(),
        "commands 76  events 13  structs 254  unions 25  alternates 5  enums 79"
    );
    let qga = load_path(schema_dir.join("qga-10.0.13.json")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        qga.counts().to_string(),
        "commands 44  events 0  structs 34  unions 3  alternates 2  enums 8"
    );
    assert!(
        qemu.definitions.iter().all(|d| d.doc().is_none()),
        "no prose in normalized files"
    );
}
