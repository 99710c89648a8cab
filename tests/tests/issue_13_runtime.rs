//! Issue 13, runtime knowledge and the compatibility report, against real QEMU 7.2 and 10.0.2:
//!
//! - the typed client knows the server's version from the greeting;
//! - after `Qmp::server_schema` (one `query-qmp-schema`, cached), `supports` answers for
//!   commands, events, arguments and enum values, agreeing with the merged schema's history;
//!   a command the server lacks, or an argument it does not know, fails before sending with
//!   `ExecuteError::Unsupported` naming the command and the server's version;
//! - without it, the same calls go to QEMU as before;
//! - `qmp_codegen::compat::report` of the built-in schema against each server.

#![allow(clippy::unwrap_used)] // a failure is a test failure
#![allow(deprecated)] // query-cpus is deprecated (and removed) in QEMU's schema

use qmp_api::{Qmp, SchemaItem};
use qmp_codegen::compat::{self, EntryKind};
use qmp_codegen::history::{self, Merged, Path, Support, Version};
use qmp_tests::qemu::{Kind, Qemu};
use qmp_tests::within;

fn merged() -> history::MergedSchema {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/qemu.json");
    history::load_path(path).unwrap()
}

#[tokio::test]
async fn issue_13_support_checks_before_sending() {
    let merged = merged();
    let m = Merged::new(&merged);
    for kind in [Kind::System72, Kind::System10] {
        let Some(qemu) = Qemu::start(kind) else {
            continue;
        };
        within(60, async {
            let qmp = Qmp::from(qemu.connect().await);
            let v = qmp.server_version();
            assert_eq!((v.major, v.minor), kind.expected_version());
            let server_text = v.to_string();

            // Without the schema nothing is checked: QEMU answers.
            assert!(qmp.cached_server_schema().is_none());
            let e = qmp.query_cpus().await.unwrap_err();
            assert!(
                e.qmp_error().is_some_and(|q| q.is_command_not_found()),
                "{kind:?}: {e}"
            );
            let with_new_argument = qmp.query_machines().compat_props(true).await;
            if kind == Kind::System72 {
                let e = with_new_argument.unwrap_err();
                assert!(e.qmp_error().is_some(), "{kind:?}: {e}");
            } else {
                with_new_argument.unwrap();
            }

            // One query-qmp-schema, cached for the clones.
            let server = qmp.server_schema().await.unwrap();
            let clone = qmp.clone();
            assert!(std::sync::Arc::ptr_eq(
                &server,
                &clone.cached_server_schema().unwrap()
            ));
            assert_eq!(server.version(), v);

            // A removed command: refused before sending, naming command and version.
            let e = qmp.query_cpus().await.unwrap_err();
            assert!(e.is_unsupported(), "{kind:?}: {e}");
            assert!(!e.was_sent());
            let text = e.to_string();
            assert!(
                text.contains("query-cpus") && text.contains(&server_text),
                "{text}"
            );

            // An argument added in 9.1.
            let r = qmp.query_machines().compat_props(true).await;
            if kind == Kind::System72 {
                let e = r.unwrap_err();
                assert!(e.is_unsupported(), "{e}");
                let text = e.to_string();
                assert!(
                    text.contains("argument `compat-props` of query-machines")
                        && text.contains("7.2"),
                    "{text}"
                );
            } else {
                assert!(!r.unwrap().is_empty());
            }
            // Calls the server supports still work.
            assert!(qmp.query_status().await.is_ok());

            // supports(): commands, events, arguments, values.
            assert!(qmp
                .supports(SchemaItem::Command("query-status"))
                .await
                .unwrap());
            assert!(!server.supports(SchemaItem::Command("query-cpus")));
            assert!(server.supports(SchemaItem::Event("JOB_STATUS_CHANGE")));
            assert!(!server.supports(SchemaItem::Event("NO_SUCH_EVENT")));
            assert!(server.supports(SchemaItem::Argument {
                command: "blockdev-mirror",
                argument: "sync"
            }));
            assert!(server.supports(SchemaItem::Argument {
                command: "blockdev-add",
                argument: "file.filename"
            }));
            assert!(server.supports(SchemaItem::Value {
                command: "blockdev-mirror",
                argument: "sync",
                value: "top"
            }));
            assert!(!server.supports(SchemaItem::Value {
                command: "blockdev-mirror",
                argument: "sync",
                value: "sideways"
            }));
            assert_eq!(
                server.supports(SchemaItem::Argument {
                    command: "query-machines",
                    argument: "compat-props"
                }),
                kind == Kind::System10
            );

            // The server agrees with the merged schema's history: nothing the history says
            // this version lacks is there; what it says the version has is there unless it
            // is conditional (compiled out of this build).
            let version = Version::new(v.major as u32, v.minor as u32);
            let (mut agree, mut compiled_out) = (0, 0);
            for c in merged.schema.commands() {
                let has = server.has_command(&c.name);
                match m.supports(&Path::definition(c.name.clone()), version) {
                    Support::No => assert!(!has, "{kind:?}: {} should be absent", c.name),
                    Support::Yes if !has => {
                        assert!(c.cond.is_some(), "{kind:?}: {} missing", c.name);
                        compiled_out += 1;
                    }
                    _ => agree += 1,
                }
            }
            eprintln!(
                "{kind:?}: {agree} commands as the history says, {compiled_out} compiled out"
            );
            assert!(agree > 200, "{agree}");
        })
        .await;
    }
}

#[tokio::test]
async fn issue_13_compatibility_report_against_real_qemu() {
    let merged = merged();
    for kind in [Kind::System72, Kind::System10] {
        let Some(qemu) = Qemu::start(kind) else {
            continue;
        };
        within(60, async {
            let qmp = Qmp::from(qemu.connect().await);
            let reply: serde_json::Value = qmp.raw().execute("query-qmp-schema", ()).await.unwrap();
            let server = qmp_codegen::introspect::from_value(&format!("{kind:?}"), &reply).unwrap();
            let report = compat::report(&merged.schema, &server);
            let only_built_in: Vec<String> =
                report.only_built_in.iter().map(|e| e.to_string()).collect();
            let only_server: Vec<String> =
                report.only_server.iter().map(|e| e.to_string()).collect();
            eprintln!(
                "{kind:?}: {} only built in ({} commands), {} only on the server, {} \
                 requirement changes",
                report.only_built_in.len(),
                report
                    .only_built_in
                    .iter()
                    .filter(|e| e.kind == EntryKind::Command)
                    .count(),
                report.only_server.len(),
                report.requirement_changes.len()
            );
            // Removed long before either: built in only.
            assert!(only_built_in.contains(&"command query-cpus".to_string()));
            assert!(!only_built_in.contains(&"command query-status".to_string()));
            // Every command of either server is in the merged schema.
            assert!(
                !report
                    .only_server
                    .iter()
                    .any(|e| e.kind == EntryKind::Command),
                "{only_server:?}"
            );
            if kind == Kind::System72 {
                assert!(
                    only_built_in.contains(&"argument query-machines.compat-props".to_string()),
                    "{only_built_in:?}"
                );
            }
            let text = report.to_string();
            assert!(text.contains("only in the built-in schema ("), "{text}");
            assert!(text.contains("  command query-cpus\n"), "{text}");
        })
        .await;
    }
}
