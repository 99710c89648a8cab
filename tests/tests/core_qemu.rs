//! qmp-core against real QEMU: 10.0.2, 7.2 and qemu-storage-daemon 10.0.2.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use qmp_core::{Capability, Client, DisconnectReason, Listener};
use qmp_tests::qemu::{Kind, Qemu};
use qmp_tests::{within, TempDir};
use serde_json::{json, Value};

const ALL: [Kind; 3] = [Kind::System10, Kind::System72, Kind::StorageDaemon];
const SYSTEMS: [Kind; 2] = [Kind::System10, Kind::System72];

#[tokio::test]
async fn greeting_reports_the_real_version() {
    for kind in ALL {
        let Some(qemu) = Qemu::start(kind) else {
            continue;
        };
        within(20, async {
            let client = qemu.connect().await;
            let v = client.greeting().version;
            assert_eq!((v.major, v.minor), kind.expected_version(), "{kind:?}");
            assert!(client.greeting().capabilities.contains(&Capability::Oob));
            // The greeting agrees with query-version.
            let qv = client.execute("query-version", ()).await.unwrap();
            assert_eq!(qv["qemu"]["micro"], v.micro);
        })
        .await;
    }
}

#[tokio::test]
async fn query_status_and_command_not_found() {
    for kind in SYSTEMS {
        let Some(qemu) = Qemu::start(kind) else {
            continue;
        };
        within(20, async {
            let client = qemu.connect().await;
            let status = client.execute("query-status", ()).await.unwrap();
            assert_eq!(status["running"], json!(true), "{kind:?}: {status}");
            assert_eq!(status["status"], json!("running"));
            let err = client.execute("no-such-command", ()).await.unwrap_err();
            let qmp = err.qmp_error().unwrap_or_else(|| panic!("{err:?}"));
            assert_eq!(qmp.class, "CommandNotFound");
            assert!(qmp.desc.contains("no-such-command"), "{}", qmp.desc);
        })
        .await;
    }
}

/// Half the commands succeed with a per-command payload, half fail with an error naming their
/// own number: a misrouted reply cannot go unnoticed.
#[tokio::test]
async fn thousand_concurrent_executes_are_each_answered_correctly() {
    for kind in ALL {
        let Some(qemu) = Qemu::start(kind) else {
            continue;
        };
        within(60, async {
            let client = qemu.connect().await;
            let mut tasks = Vec::new();
            for i in 0..1000u32 {
                let c = client.clone();
                tasks.push(tokio::spawn(async move {
                    if i % 2 == 0 {
                        let r = c
                            .execute(
                                "qom-get",
                                json!({"path": format!("/nope-{i}"), "property": "type"}),
                            )
                            .await;
                        let err = r.unwrap_err();
                        let desc = &err.qmp_error().expect("error reply").desc;
                        assert!(
                            desc.contains(&format!("'/nope-{i}'")),
                            "command {i} got: {desc}"
                        );
                    } else {
                        let r = c.execute("query-version", ()).await.unwrap();
                        assert!(r["qemu"]["major"].is_u64(), "{r}");
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(client.stats().in_flight, 0);
            assert_eq!(client.stats().replies_received, 1000);
        })
        .await;
    }
}

#[tokio::test]
async fn stop_and_cont_produce_stop_then_resume() {
    for kind in SYSTEMS {
        let Some(qemu) = Qemu::start(kind) else {
            continue;
        };
        within(20, async {
            let client = qemu.connect().await;
            let mut events = client.subscribe_to(["STOP", "RESUME"]);
            client.execute("stop", ()).await.unwrap();
            client.execute("cont", ()).await.unwrap();
            let stop = events.next().await.unwrap().unwrap();
            let resume = events.next().await.unwrap().unwrap();
            assert_eq!((stop.name(), resume.name()), ("STOP", "RESUME"), "{kind:?}");
            let (t1, t2) = (stop.timestamp(), resume.timestamp());
            assert!(t1.to_system_time().is_some() && t1 <= t2, "{t1:?} {t2:?}");
            let status = client.execute("query-status", ()).await.unwrap();
            assert_eq!(status["running"], json!(true));
        })
        .await;
    }
}

#[tokio::test]
async fn accept_mode_qemu_connects_to_us() {
    for kind in ALL {
        within(20, async {
            let dir = TempDir::new();
            let path = dir.join("accept.sock");
            let listener = Listener::bind_unix(&path).unwrap();
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&path).unwrap().permissions(),
            );
            assert_eq!(mode & 0o777, 0o600);
            // The socket exists before QEMU starts: no race, no polling.
            let Some(_qemu) = Qemu::start_connecting(kind, &listener.qemu_qmp_arg(), &path) else {
                return;
            };
            let client = Client::builder()
                .timeout(Some(Duration::from_secs(10)))
                .accept(&listener)
                .await
                .unwrap();
            assert_eq!(
                (
                    client.greeting().version.major,
                    client.greeting().version.minor
                ),
                kind.expected_version()
            );
            client.execute("query-version", ()).await.unwrap();
        })
        .await;
    }
}

#[tokio::test]
async fn fd_passing_with_add_fd_and_getfd() {
    // qemu-storage-daemon has neither add-fd nor getfd.
    for kind in SYSTEMS {
        let Some(qemu) = Qemu::start(kind) else {
            continue;
        };
        within(20, async {
            let client = qemu.connect().await;
            let file = std::fs::File::create(qemu.dir.join("disk.img")).unwrap();
            let added: Value = client
                .request("add-fd", json!({"fdset-id": 7, "opaque": "test-disk"}))
                .fd(&file)
                .decode()
                .await
                .unwrap();
            assert_eq!(added["fdset-id"], json!(7));
            let qemu_fd = added["fd"].as_i64().unwrap();
            let sets = client.execute("query-fdsets", ()).await.unwrap();
            let set = sets
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["fdset-id"] == json!(7))
                .expect("fdset 7");
            let fds: Vec<&Value> = set["fds"].as_array().unwrap().iter().collect();
            assert!(
                fds.iter()
                    .any(|f| f["fd"] == json!(qemu_fd) && f["opaque"] == json!("test-disk")),
                "{set}"
            );

            // getfd: named fd on this monitor; closefd releases it, a second closefd fails.
            client
                .request("getfd", json!({"fdname": "mine"}))
                .fd(file.as_fd())
                .await
                .unwrap();
            client
                .execute("closefd", json!({"fdname": "mine"}))
                .await
                .unwrap();
            assert!(client
                .execute("closefd", json!({"fdname": "mine"}))
                .await
                .is_err());
            // Without a descriptor, getfd fails: QEMU really relies on SCM_RIGHTS.
            let err = client
                .execute("getfd", json!({"fdname": "none"}))
                .await
                .unwrap_err();
            assert!(
                err.qmp_error().unwrap().desc.contains("SCM_RIGHTS"),
                "{err}"
            );
            client
                .execute("remove-fd", json!({"fdset-id": 7}))
                .await
                .unwrap();
        })
        .await;
    }
}

#[tokio::test]
async fn exec_oob_against_real_qemu() {
    for kind in ALL {
        let Some(qemu) = Qemu::start(kind) else {
            continue;
        };
        within(20, async {
            let client = qemu
                .connect_with(Client::builder().capabilities([Capability::Oob]))
                .await;
            assert_eq!(client.capabilities(), &[Capability::Oob]);
            if kind != Kind::StorageDaemon {
                // The storage daemon has no allow-oob command.
                let yank: Value = client
                    .request("query-yank", ())
                    .oob()
                    .decode()
                    .await
                    .unwrap();
                assert!(yank.is_array(), "{yank}");
            }
            // exec-oob of a command not marked allow-oob is refused by the server.
            let err = client.request("query-status", ()).oob().await.unwrap_err();
            assert!(err.qmp_error().is_some(), "{err:?}");
            // In-band commands still flow (and are limited to QEMU's queue depth).
            let mut tasks = Vec::new();
            for _ in 0..50 {
                let c = client.clone();
                tasks.push(tokio::spawn(
                    async move { c.execute("query-version", ()).await },
                ));
            }
            for t in tasks {
                t.await.unwrap().unwrap();
            }
        })
        .await;
    }
}

#[tokio::test]
async fn sigkill_with_100_commands_in_flight_fails_all_promptly() {
    for kind in ALL {
        let Some(mut qemu) = Qemu::start(kind) else {
            continue;
        };
        within(30, async {
            let client = qemu.connect().await;
            client.execute("query-version", ()).await.unwrap();
            for after in qemu.kill_with_commands_in_flight(&client, 100).await {
                assert!(
                    after < Duration::from_secs(1),
                    "{kind:?}: failed after {after:?}"
                );
            }
            // Later calls fail fast.
            let start = Instant::now();
            assert!(client
                .execute("query-status", ())
                .await
                .unwrap_err()
                .is_disconnected());
            assert!(start.elapsed() < Duration::from_millis(100));
        })
        .await;
    }
}

#[tokio::test]
async fn graceful_close_against_qemu() {
    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    within(20, async {
        let client = qemu.connect().await;
        let mut events = client.subscribe();
        client.execute("query-status", ()).await.unwrap();
        client.close().await;
        assert!(matches!(
            *client.closed().await,
            DisconnectReason::ClientClosed
        ));
        assert!(matches!(
            events.next().await,
            Some(Err(qmp_core::EventError::Disconnected(_)))
        ));
        // The monitor is free again for a new client.
        let again = qemu.connect().await;
        again.execute("query-status", ()).await.unwrap();
    })
    .await;
}

/// Strings with escapes (`\r\n` in HMP output, `\"` and `\\` in error messages) frame and
/// decode correctly, including an escape right before a closing quote.
#[tokio::test]
async fn escaped_strings_from_real_qemu() {
    for kind in SYSTEMS {
        let Some(qemu) = Qemu::start(kind) else {
            continue;
        };
        within(20, async {
            let client = qemu.connect().await;
            let out = client
                .execute(
                    "human-monitor-command",
                    json!({"command-line": "info version"}),
                )
                .await
                .unwrap();
            let text = out.as_str().unwrap();
            assert!(text.ends_with("\r\n"), "{text:?}");
            assert!(
                text.starts_with(&format!("{}.", kind.expected_version().0)),
                "{text:?}"
            );
            let path = r#"/a"b\c\"#;
            let err = client
                .execute("qom-get", json!({"path": path, "property": "type"}))
                .await
                .unwrap_err();
            let desc = &err.qmp_error().unwrap().desc;
            assert!(desc.contains(path), "{desc:?}");
            // The connection is still in step afterwards.
            client.execute("query-status", ()).await.unwrap();
        })
        .await;
    }
}

#[tokio::test]
async fn wait_for_server_connects_to_a_qemu_just_started() {
    for kind in SYSTEMS {
        let dir = TempDir::new();
        let socket = dir.join("late.sock");
        let qmp = format!("unix:{},server=on,wait=off", socket.display());
        // No waiting for the socket here: the client's retry is what is tested.
        let Some(_qemu) = Qemu::start_bare(kind, &["-qmp".to_string(), qmp]) else {
            return;
        };
        within(20, async {
            let client = Client::builder()
                .wait_for_server(true)
                .timeout(Some(Duration::from_secs(15)))
                .connect_unix(&socket)
                .await
                .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            let status = client
                .execute("query-status", ())
                .await
                .expect("query-status");
            assert_eq!(status["status"], "running", "{kind:?}");
        })
        .await;
    }
}
