//! Interoperation with a client nobody here wrote: Python's qemu.qmp 0.0.6 (the library QEMU's
//! own tests use) drives our server over a unix socket: greeting, negotiation (it asks for
//! `oob` when offered), commands, an error, events, an `exec-oob` command and a clean
//! disconnect. The virtualenv comes from `scripts/install-python-qmp.sh` (run by
//! `scripts/test`); without it the test skips visibly, or fails under `CI=true`.

// Test code: unwrapping our own fixtures' results is fine.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use qmp_core::server::{Call, Server};
use qmp_core::{QmpError, Version};
use qmp_tests::{within, TempDir};
use serde_json::{json, Value};

/// The virtualenv's python, if it has qemu.qmp.
fn python() -> Option<PathBuf> {
    qmp_tests::python_qmp("qemu.qmp did not drive our server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_qmp_drives_our_server() {
    let Some(python) = python() else {
        return;
    };
    within(60, async {
        let dir = TempDir::new();
        let path = dir.join("qmp.sock");
        let server = Server::builder()
            .version(Version::new(10, 0, 2), "interop")
            .command("query-status", |_: Call| async {
                Ok(json!({"status": "running", "running": true}))
            })
            .command("echo", |call: Call| async move {
                Ok(Value::Object(call.arguments().clone()))
            })
            .command("eject", |call: Call| async move {
                let device = call.arguments()["device"].as_str().unwrap_or("").to_string();
                Err(QmpError::new("DeviceNotFound", format!("Device '{device}' not found")))
            })
            .command("stop", |call: Call| async move {
                call.emit("BEFORE", json!({"n": 1})).await.unwrap();
                call.emit_after_reply("STOP", None);
                call.emit_after_reply("JOB_STATUS_CHANGE", json!({"id": "j0", "status": "running"}));
                Ok(json!({}))
            })
            .oob_command("ping", |_: Call| async { Ok(json!("pong")) })
            .bind_unix(&path)
            .unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/qmp_interop.py");
        let out = tokio::process::Command::new(&python)
            .arg(&script)
            .arg(&path)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "qemu.qmp failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            seen["greeting"],
            json!({"version": {"qemu": {"major": 10, "minor": 0, "micro": 2}, "package": "interop"}, "capabilities": ["oob"]})
        );
        assert_eq!(seen["status"], json!({"status": "running", "running": true}));
        assert_eq!(
            seen["echo"],
            json!({"text": "h\u{e9}llo \u{1F600}", "list": [1, 2.5, null, true, {"k": "v"}]})
        );
        assert_eq!(
            seen["error"],
            json!({"class": "CommandNotFound", "desc": "The command no-such-command has not been found"})
        );
        assert_eq!(
            seen["eject"],
            json!({"class": "DeviceNotFound", "desc": "Device 'cd0' not found"})
        );
        assert_eq!(seen["stop"], json!({}));
        let events = seen["events"].as_array().unwrap();
        let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(names, ["BEFORE", "STOP", "JOB_STATUS_CHANGE"]);
        assert_eq!(events[2]["data"], json!({"id": "j0", "status": "running"}));
        assert!(events[0]["timestamp"]["seconds"].as_i64().unwrap() > 1_600_000_000);
        assert_eq!(seen["oob"], json!("pong"));
        assert_eq!(seen["disconnected"], json!(true));
        // qemu.qmp negotiated oob, and its disconnect ended the session on our side.
        within(10, async {
            while !server.sessions().is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await;
        server.shutdown().await;
    })
    .await;
}
