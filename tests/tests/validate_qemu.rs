//! Differential test of `qmp_codegen::validate`: the same bad arguments go to real QEMU
//! 10.0.2 (`-machine none`, and `qemu-storage-daemon` for `blockdev-add` with nested faults)
//! and to the validator, and the error class and description must be the same.
//!
//! The validator runs on the schema the reply comes from: our normalized 10.0 schema (the
//! build's), and, for the faults that do not name a type, the server's own
//! `query-qmp-schema` read back through the introspection loader.

// Test code: unwrapping our own fixtures' results is fine.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use qmp_codegen::validate::{validate_command, ValidationErrorKind};
use qmp_codegen::Schema;
use qmp_tests::qemu::{Kind, Qemu};
use qmp_tests::within;
use serde_json::{json, Value};

fn schema_file(name: &str) -> Schema {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../schema")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    qmp_codegen::normalized::from_str(name, &text).unwrap()
}

/// Sends every case to `qemu`, checks that QEMU refuses it, and that the validator refuses it
/// the same way with each schema in `schemas` (cases whose text names a type are only checked
/// against the normalized schema: introspection masks type names).
async fn compare(kind: Kind, normalized: &str, cases: &[(&str, Value)]) {
    let Some(qemu) = Qemu::start(kind) else {
        return;
    };
    let client = qemu.connect().await;
    let normalized = schema_file(normalized);
    let introspected = client.execute("query-qmp-schema", ()).await.unwrap();
    let introspected = qmp_codegen::load_introspection(&introspected.to_string()).unwrap();
    let mut mismatches = Vec::new();
    for (command, args) in cases {
        let reply = within(10, client.execute(command, args)).await;
        let err = match reply {
            Err(e) => e
                .qmp_error()
                .cloned()
                .unwrap_or_else(|| panic!("{command} {args}: {e}")),
            Ok(v) => panic!("{kind:?} accepted {command} {args}: {v}"),
        };
        let ours = validate_command(&normalized, command, Some(args))
            .expect_err(&format!("the validator accepted {command} {args}"));
        if (ours.class.as_str(), ours.message.as_str()) != (err.class.as_str(), err.desc.as_str()) {
            mismatches.push(format!(
                "{command} {args}\n  QEMU: {err}\n  ours: {} {}",
                ours.class, ours.message
            ));
            continue;
        }
        if !introspection_can_tell(&ours.kind) {
            continue;
        }
        let Err(ours) = validate_command(&introspected, command, Some(args)) else {
            mismatches.push(format!(
                "{command} {args}: accepted with the introspected schema"
            ));
            continue;
        };
        if (ours.class.as_str(), ours.message.as_str()) != (err.class.as_str(), err.desc.as_str()) {
            mismatches.push(format!(
                "{command} {args} (introspected schema)\n  QEMU: {err}\n  ours: {} {}",
                ours.class, ours.message
            ));
        }
    }
    client.close().await;
    assert!(
        mismatches.is_empty(),
        "{kind:?}: the validator differs from QEMU:\n{}",
        mismatches.join("\n")
    );
}

/// Whether a fault can be told apart with an introspected schema: it masks type names (an
/// alternate's name is in its fault's text) and calls every integer type `int` (no ranges, no
/// unsigned types).
fn introspection_can_tell(kind: &ValidationErrorKind) -> bool {
    match kind {
        ValidationErrorKind::OutOfRange { .. } => false,
        ValidationErrorKind::WrongType { expected } => {
            expected != "uint64" && !expected.starts_with(char::is_uppercase)
        }
        _ => true,
    }
}

#[tokio::test]
async fn system_emulator_faults_match_qemu() {
    let cases = [
        ("query-stauts", json!({})),
        ("query-status", json!({"verbose": true})),
        ("qom-list", json!({})),
        ("qom-list", json!({"path": 1})),
        ("qom-list", json!({"path": null})),
        ("qom-list", json!({"path": "/machine", "pth": 1})),
        ("qom-get", json!({"path": "/machine", "property": 5})),
        ("set_link", json!({"name": "n", "up": "yes"})),
        ("migrate-set-capabilities", json!({"capabilities": {}})),
        (
            "migrate-set-capabilities",
            json!({"capabilities": [{"capability": "xbzrle", "state": 1}]}),
        ),
        (
            "migrate-set-capabilities",
            json!({"capabilities": [{"capability": "nope", "state": true}]}),
        ),
        (
            "migrate-set-capabilities",
            json!({"capabilities": [{"capability": "xbzrle"}]}),
        ),
        ("migrate-set-capabilities", json!({"capabilities": [5]})),
        (
            "migrate-set-capabilities",
            json!({"capabilities": ["xbzrle"]}),
        ),
        ("migrate-set-parameters", json!({"max-cpu-throttle": 300})),
        ("migrate-set-parameters", json!({"max-cpu-throttle": -1})),
        ("migrate-set-parameters", json!({"max-cpu-throttle": 1.5})),
        (
            "migrate-set-parameters",
            json!({"x-checkpoint-delay": 4294967296u64}),
        ),
        ("migrate-set-parameters", json!({"xbzrle-cache-size": "1"})),
        ("migrate-set-parameters", json!({"downtime-limit": -1.0})),
        ("migrate-set-parameters", json!({"tls-creds": 5})),
        ("migrate-set-parameters", json!({"tls-creds": [null]})),
        ("migrate-set-parameters", json!({"mode": "fast"})),
        ("announce-self", json!({"initial": 1})),
        (
            "announce-self",
            json!({"initial": 1.5, "max": 1, "rounds": 1, "step": 1}),
        ),
        (
            "announce-self",
            json!({"initial": 9223372036854775808u64, "max": 1, "rounds": 1, "step": 1}),
        ),
        ("object-add", json!({"qom-type": "nope", "id": "x"})),
        (
            "object-add",
            json!({"qom-type": "memory-backend-ram", "id": "m", "size": "1"}),
        ),
        (
            "object-add",
            json!({"qom-type": "memory-backend-ram", "id": "m", "size": 1, "bogus": 1}),
        ),
        (
            "object-add",
            json!({"qom-type": "memory-backend-ram", "size": 1}),
        ),
        ("object-add", json!({"id": "m"})),
        (
            "object-add",
            json!({"qom-type": "memory-backend-ram", "id": "m", "size": 1,
                              "host-nodes": [1, 70000]}),
        ),
        (
            "object-add",
            json!({"qom-type": "memory-backend-ram", "id": "m", "size": 1,
                              "policy": "everywhere"}),
        ),
        (
            "input-send-event",
            json!({"events": [{"type": "key", "data": {"down": true,
                              "key": {"type": "qcode", "data": "nokey"}}}]}),
        ),
        (
            "input-send-event",
            json!({"events": [{"type": "abs", "data": {"axis": "x",
                              "value": "1"}}]}),
        ),
    ];
    within(60, compare(Kind::System10, "qemu-10.0.13.json", &cases)).await;
}

#[tokio::test]
async fn storage_daemon_nested_faults_match_qemu() {
    let cases = [
        ("blockdev-add", json!({"driver": "nope", "node-name": "n"})),
        ("blockdev-add", json!({"node-name": "n"})),
        (
            "blockdev-add",
            json!({"driver": "qcow2", "node-name": "n", "file": {"driver": "file"}}),
        ),
        (
            "blockdev-add",
            json!({"driver": "qcow2", "node-name": "n",
                                "file": {"driver": "file", "filename": "/x", "bogus": 1}}),
        ),
        (
            "blockdev-add",
            json!({"driver": "qcow2", "node-name": "n",
                                "file": {"driver": "file", "filename": "/x", "aio": "nope"}}),
        ),
        (
            "blockdev-add",
            json!({"driver": "raw", "node-name": "n",
                                "file": {"driver": "file", "filename": 7}}),
        ),
        (
            "blockdev-add",
            json!({"driver": "qcow2", "node-name": "n", "file": 5}),
        ),
        (
            "blockdev-add",
            json!({"driver": "qcow2", "node-name": "n",
                                "file": {"driver": "qcow2", "file": {"driver": "file"}}}),
        ),
        (
            "blockdev-add",
            json!({"driver": "quorum", "node-name": "n", "vote-threshold": 1,
                                "children": [5]}),
        ),
        (
            "blockdev-add",
            json!({"driver": "quorum", "node-name": "n", "vote-threshold": 1,
                                "children": ["a", {"driver": "file"}]}),
        ),
        (
            "blockdev-add",
            json!({"driver": "null-co", "node-name": "n", "size": "big"}),
        ),
        (
            "blockdev-add",
            json!({"driver": "null-co", "node-name": "n", "read-zeroes": 1}),
        ),
        (
            "blockdev-add",
            json!({"driver": "file", "node-name": "n", "filename": "/x",
                                "cache": {"direct": 1}}),
        ),
        (
            "blockdev-add",
            json!({"driver": "file", "node-name": "n", "filename": "/x",
                                "cache": {"no-flush": true, "x": 1}}),
        ),
        ("blockdev-del", json!({})),
        (
            "block-export-add",
            json!({"type": "nbd", "id": "e", "node-name": "n",
                                    "bitmaps": [1]}),
        ),
    ];
    within(
        60,
        compare(
            Kind::StorageDaemon,
            "qemu-storage-daemon-10.0.13.json",
            &cases,
        ),
    )
    .await;
}
