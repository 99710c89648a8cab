//! The typed API against a mock QEMU: wire form of arguments and typed calls on the typed
//! mock (`qmp_api::mock`, which also checks every argument against the schema); decoding of
//! replies the schema does not describe, unknown events, timeouts and late replies on the
//! scripted byte-level mock (a well-behaved server, and the typed mock, cannot send those).

use std::time::Duration;

use qmp_api::commands::{self, QueryStatus};
use qmp_api::mock::{MockQemu, Reply};
use qmp_api::types::{
    BlockdevOptions, BlockdevOptionsFile, BlockdevOptionsVariant, BlockdevRef, MirrorSyncMode,
    RunState, SchemaInfoVariant, StatusInfo,
};
use qmp_api::{Capability, Event, EventError, EventKind, ExecuteError, Qmp, WaitError};
use qmp_tests::mock::{MockPeer, MockServer};
use qmp_tests::within;
use serde_json::json;

async fn connected() -> (Qmp, MockPeer<tokio::net::UnixStream>, MockServer) {
    let server = MockServer::new();
    let (qmp, peer) = tokio::join!(Qmp::connect_unix(server.path()), server.accept_handshake());
    (qmp.expect("connect"), peer, server)
}

/// On the typed mock (issue 15): every argument is also checked against the schema, as
/// QEMU checks it.
#[tokio::test]
async fn arguments_go_on_the_wire_as_the_schema_says() {
    within(10, async {
        let mock = MockQemu::start().await.unwrap();
        mock.on::<commands::BlockResize, _, _>(|_| async { Ok(()) });
        mock.on::<commands::DeviceAdd, _, _>(|_| async { Ok(()) });
        mock.on::<commands::BlockdevAdd, _, _>(|_| async { Ok(()) });
        mock.on::<QueryStatus, _, _>(|args| async move {
            // No arguments at all for argument-less commands.
            assert!(args.json().is_empty());
            Ok(StatusInfo::new(true, RunState::Running))
        });
        let qmp = mock.connect().await.unwrap();
        qmp.block_resize(1 << 30).node_name("disk0").await.unwrap();
        qmp.device_add("virtio-blk-pci").id("d0").arg("drive", "disk0").await.unwrap();
        let mut file = BlockdevOptions::new(BlockdevOptionsVariant::File(BlockdevOptionsFile::new("/tmp/x.img")));
        file.node_name = Some("n0".into());
        file.read_only = Some(true);
        qmp.blockdev_add(file).await.unwrap();
        let status = qmp.query_status().await.unwrap();
        assert!(status.running);
        assert_eq!(status.status, RunState::Running);
        let sent: Vec<(String, serde_json::Value)> =
            mock.sent().into_iter().map(|s| (s.command, s.arguments)).collect();
        assert_eq!(
            sent,
            [
                ("block_resize".to_string(), json!({"size": 1073741824, "node-name": "disk0"})),
                ("device_add".to_string(), json!({"driver": "virtio-blk-pci", "id": "d0", "drive": "disk0"})),
                ("blockdev-add".to_string(),
                 json!({"driver": "file", "filename": "/tmp/x.img", "node-name": "n0", "read-only": true})),
                ("query-status".to_string(), json!({})),
            ]
        );
        qmp.close().await;
        mock.verify().unwrap();
    })
    .await;
}

#[tokio::test]
async fn values_from_a_newer_qemu_are_kept() {
    within(10, async {
        let (qmp, mut peer, _s) = connected().await;
        let calls = async { (qmp.query_status().await, qmp.query_qmp_schema().await) };
        let serve = async {
            let r = peer.expect("query-status").await;
            peer.reply(&r.id, json!({"running": false, "status": "hibernating", "new-member": 1})).await;
            let r = peer.expect("query-qmp-schema").await;
            peer.reply(
                &r.id,
                json!([
                    {"name": "query-status", "meta-type": "command", "arg-type": "0", "ret-type": "1"},
                    {"ret-type": "2", "name": "late-tag", "arg-type": "3", "meta-type": "command"},
                    {"name": "x", "meta-type": "quantum", "spin": "up"}
                ]),
            )
            .await;
        };
        let ((status, schema), ()) = tokio::join!(calls, serve);
        let status = status.unwrap();
        assert_eq!(status.status, RunState::from_wire("hibernating"));
        assert!(matches!(&status.status, RunState::Other(v) if v.as_str() == "hibernating"));
        assert_eq!(status.status.as_str(), "hibernating");
        let schema = schema.unwrap();
        assert!(matches!(&schema[0].meta_type, SchemaInfoVariant::Command(c) if c.arg_type == "0"));
        // The discriminator came last on the wire: still decoded.
        assert!(matches!(&schema[1].meta_type, SchemaInfoVariant::Command(c) if c.ret_type == "2"));
        match &schema[2].meta_type {
            SchemaInfoVariant::Other(u) => {
                assert_eq!(u.tag(), "quantum");
                assert_eq!(u.members()["spin"], json!("up"));
            }
            other => panic!("{other:?}"),
        }
        // And it serializes back to what was received.
        let back = serde_json::to_value(&schema[2]).unwrap();
        assert_eq!(back, json!({"name": "x", "meta-type": "quantum", "spin": "up"}));
    })
    .await;
}

#[tokio::test]
async fn replies_that_do_not_match_the_schema_name_command_and_path() {
    within(10, async {
        let (qmp, mut peer, _s) = connected().await;
        let calls = async { (qmp.query_block().await, qmp.query_qmp_schema().await) };
        let serve = async {
            let r = peer.expect("query-block").await;
            peer.reply(
                &r.id,
                json!([{"device": "ide0", "locked": false, "removable": true, "type": "unknown",
                        "inserted": {"file": 42}}]),
            )
            .await;
            let r = peer.expect("query-qmp-schema").await;
            peer.reply(
                &r.id,
                json!([{"name": "q", "meta-type": "command", "arg-type": 7, "ret-type": "1"}]),
            )
            .await;
        };
        let ((block, schema), ()) = tokio::join!(calls, serve);
        match block {
            Err(ExecuteError::Decode(e)) => {
                assert_eq!(e.context, "query-block");
                assert_eq!(e.path, "[0].inserted.file");
                assert!(e.raw.contains("\"ide0\""), "{}", e.raw);
                assert!(e.to_string().contains("query-block"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        match schema {
            // The offending member sits in a union branch: the path still reaches it.
            Err(ExecuteError::Decode(e)) => assert_eq!(e.path, "[0].arg-type", "{e}"),
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn alternates_decode_by_json_type() {
    let by_name: BlockdevRef = serde_json::from_value(json!("node0")).unwrap();
    assert_eq!(by_name, BlockdevRef::Reference("node0".into()));
    let inline: BlockdevRef =
        serde_json::from_value(json!({"driver": "file", "filename": "/x"})).unwrap();
    match inline {
        BlockdevRef::Definition(d) => match d.driver {
            BlockdevOptionsVariant::File(f) => assert_eq!(f.filename, "/x"),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    let err = serde_json::from_value::<BlockdevRef>(json!(5)).unwrap_err();
    assert!(
        err.to_string()
            .contains("BlockdevRef expects an object or a string"),
        "{err}"
    );
}

#[tokio::test]
async fn typed_events_with_timestamps_fallback_and_errors() {
    within(10, async {
        let (qmp, mut peer, _s) = connected().await;
        let mut events = qmp.events();
        peer.event("STOP", None).await;
        peer.event(
            "JOB_STATUS_CHANGE",
            Some(json!({"id": "j0", "status": "concluded"})),
        )
        .await;
        peer.event("FROM_THE_FUTURE", Some(json!({"x": 1}))).await;
        peer.event("JOB_STATUS_CHANGE", Some(json!({"id": 5})))
            .await;
        peer.event("RESUME", None).await;

        let stop = events.next().await.unwrap().unwrap();
        assert_eq!(stop.event, Event::Stop);
        assert_eq!(stop.timestamp.seconds, 1_700_000_000);
        assert_eq!(stop.raw().name(), "STOP");
        match events.next().await.unwrap().unwrap().event {
            Event::JobStatusChange(c) => {
                assert_eq!(c.id, "j0");
                assert_eq!(c.status, qmp_api::types::JobStatus::Concluded);
            }
            other => panic!("{other:?}"),
        }
        match events.next().await.unwrap().unwrap().event {
            Event::Other(unknown) => {
                assert_eq!(unknown.name(), "FROM_THE_FUTURE");
                assert_eq!(unknown.raw().data_value(), json!({"x": 1}));
            }
            other => panic!("{other:?}"),
        }
        match events.next().await.unwrap() {
            Err(EventError::Decode(e)) => {
                assert_eq!(e.context, "JOB_STATUS_CHANGE");
                assert_eq!(e.path, "id");
            }
            other => panic!("{other:?}"),
        }
        // The stream goes on after a decode error.
        let resume = events
            .wait_for(|e| matches!(e, Event::Resume), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(resume.event.name(), "RESUME");
        match events
            .wait_for(
                |e| matches!(e, Event::Shutdown(_)),
                Duration::from_millis(50),
            )
            .await
        {
            Err(WaitError::Timeout(_)) => {}
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn wait_for_is_race_free_with_the_command_that_triggers_it() {
    within(10, async {
        let mock = MockQemu::start().await.unwrap();
        // The event arrives before the reply, as from QEMU: a stream created before the
        // command sees it.
        mock.replies::<commands::Stop>([Reply::ok(()).event_before(EventKind::Stop, ())]);
        let qmp = mock.connect().await.unwrap();
        let mut events = qmp.events_named(["STOP"]).unwrap();
        qmp.stop().await.unwrap();
        let got = events
            .wait_for(|e| matches!(e, Event::Stop), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(got.event, Event::Stop);
        qmp.close().await;
    })
    .await;
}

#[tokio::test]
async fn generic_execute_and_command_values() {
    within(10, async {
        let mock = MockQemu::start().await.unwrap();
        mock.on::<QueryStatus, _, _>(|_| async { Ok(StatusInfo::new(true, RunState::Paused)) });
        let qmp = mock.connect().await.unwrap();
        assert_eq!(
            qmp.execute(QueryStatus).await.unwrap().status,
            RunState::Paused
        );
        assert_eq!(<QueryStatus as qmp_api::Command>::NAME, "query-status");
        let call = qmp.block_resize(10).device("ide0");
        assert_eq!(call.command().device.as_deref(), Some("ide0"));
        qmp.close().await;
    })
    .await;
}

/// Issue 10, item 4: `.arg()` and the typed setters of a `gen: false` command: the last call
/// wins, in either order, and the call's value shows what will be sent.
#[tokio::test]
async fn issue_10_arg_and_typed_setters_last_call_wins() {
    within(10, async {
        let mock = MockQemu::start().await.unwrap();
        mock.on::<commands::DeviceAdd, _, _>(|_| async { Ok(()) });
        let qmp = mock.connect().await.unwrap();
        // The two orders from the issue.
        let typed_last = qmp
            .device_add("virtio-blk-pci")
            .arg("bus", "rp0")
            .bus("pcie.0");
        assert_eq!(typed_last.command().bus.as_deref(), Some("pcie.0"));
        assert!(!typed_last.command().extra.contains_key("bus"));
        let arg_last = qmp.device_add("virtio-blk-pci").id("d1").arg("id", 5);
        assert_eq!(arg_last.command().id, None);
        assert_eq!(arg_last.command().extra["id"], json!(5));
        // And the other two: a typed setter after a typed setter, `arg` after `arg`.
        let twice = qmp
            .device_add("e1000")
            .bus("a")
            .arg("bus", "b")
            .arg("bus", "c");
        // A required argument given as a parameter is replaced by an `arg` of its name.
        let driver = qmp.device_add("e1000").arg("driver", "virtio-net-pci");
        typed_last.await.unwrap();
        arg_last.await.unwrap();
        twice.await.unwrap();
        driver.await.unwrap();
        assert_eq!(
            mock.sent_arguments::<commands::DeviceAdd>(),
            [
                json!({"driver": "virtio-blk-pci", "bus": "pcie.0"}),
                json!({"driver": "virtio-blk-pci", "id": 5}),
                json!({"driver": "e1000", "bus": "c"}),
                json!({"driver": "virtio-net-pci"}),
            ]
        );
        qmp.close().await;
    })
    .await;
}

/// Issue 10, item 1: a boxed command (`blockdev-backup`) has the same shape as an unboxed one
/// (`blockdev-mirror`): required arguments as parameters, optional ones as setters.
#[tokio::test]
#[allow(deprecated)] // drive-backup is deprecated in QEMU's schema
async fn issue_10_boxed_and_unboxed_commands_have_one_shape() {
    within(10, async {
        let mock = MockQemu::start().await.unwrap();
        mock.on::<commands::BlockdevBackup, _, _>(|_| async { Ok(()) });
        mock.on::<commands::BlockdevMirror, _, _>(|_| async { Ok(()) });
        mock.on::<commands::DriveBackup, _, _>(|_| async { Ok(()) });
        let qmp = mock.connect().await.unwrap();
        qmp.blockdev_backup("disk0", MirrorSyncMode::Full, "backup0")
            .job_id("job0")
            .speed(1 << 20)
            .await
            .unwrap();
        qmp.blockdev_mirror("disk0", "mirror0", MirrorSyncMode::Full)
            .job_id("job1")
            .speed(1 << 20)
            .await
            .unwrap();
        qmp.drive_backup("disk0", MirrorSyncMode::Top, "/tmp/b.qcow2")
            .format("qcow2")
            .await
            .unwrap();
        assert_eq!(
            mock.sent_arguments::<commands::BlockdevBackup>(),
            [json!({"job-id": "job0", "device": "disk0", "sync": "full", "speed": 1048576, "target": "backup0"})]
        );
        assert_eq!(
            mock.sent_arguments::<commands::BlockdevMirror>(),
            [json!({"job-id": "job1", "device": "disk0", "target": "mirror0", "sync": "full", "speed": 1048576})]
        );
        assert_eq!(
            mock.sent_arguments::<commands::DriveBackup>(),
            [json!({"device": "disk0", "sync": "top", "target": "/tmp/b.qcow2", "format": "qcow2"})]
        );
        qmp.close().await;
    })
    .await;
}

/// Issue 10, item 3: typed calls reach the transport's options: out of band where the schema
/// allows it, a timeout of their own, and spawning (a call owns its connection handle).
#[tokio::test]
async fn issue_10_typed_calls_go_out_of_band_time_out_and_spawn() {
    within(10, async {
        let server = MockServer::new();
        let (client, mut peer) = tokio::join!(
            qmp_api::qmp_core::Client::builder()
                .capabilities([Capability::Oob])
                .connect_unix(server.path()),
            server.accept_handshake()
        );
        let qmp = Qmp::from(client.unwrap());
        let pause = tokio::spawn(qmp.migrate_pause().oob());
        let r = peer.next_request().await.unwrap();
        assert!(r.oob && r.command == "migrate-pause", "{r:?}");
        peer.reply(&r.id, json!({})).await;
        pause.await.unwrap().unwrap();

        let yank = tokio::spawn(qmp.yank(vec![]).oob().timeout(Some(Duration::from_secs(5))));
        let r = peer.next_request().await.unwrap();
        assert!(r.oob && r.command == "yank", "{r:?}");
        assert_eq!(r.arguments, json!({"instances": []}));
        peer.reply(&r.id, json!({})).await;
        yank.await.unwrap().unwrap();

        // A call's own timeout; the connection stays usable.
        match qmp
            .query_status()
            .timeout(Some(Duration::from_millis(30)))
            .await
        {
            Err(ExecuteError::Timeout { command, after }) => {
                assert_eq!(command, "query-status");
                assert_eq!(after, Duration::from_millis(30));
            }
            other => panic!("{other:?}"),
        }
        let _late = peer.expect("query-status").await;
        let status = tokio::spawn(qmp.query_status());
        let r = peer.expect("query-status").await;
        peer.reply(&r.id, json!({"running": true, "status": "running"}))
            .await;
        assert!(status.await.unwrap().unwrap().running);
    })
    .await;
}

#[tokio::test]
async fn issue_10_oob_without_the_capability_fails_before_sending() {
    within(10, async {
        let (qmp, _peer, _s) = connected().await;
        match qmp.migrate_pause().oob().await {
            Err(ExecuteError::OobNotEnabled { command }) => assert_eq!(command, "migrate-pause"),
            other => panic!("{other:?}"),
        }
        assert_eq!(qmp.raw().stats().commands_sent, 0);
    })
    .await;
}

/// Issue 10, item 5: an unknown value never stands for a known one.
#[test]
fn issue_10_unknown_values_cannot_impersonate_known_ones() {
    assert_eq!(RunState::from_wire("running"), RunState::Running);
    let decoded: RunState = serde_json::from_value(json!("running")).unwrap();
    assert_eq!(decoded, RunState::Running);
    let newer: RunState = serde_json::from_value(json!("hibernating")).unwrap();
    assert!(matches!(&newer, RunState::Other(v) if v.as_str() == "hibernating"));
    assert_ne!(newer, RunState::Running);
    for value in RunState::VALUES {
        assert!(
            !matches!(RunState::from_wire(value), RunState::Other(_)),
            "{value}"
        );
    }
    // A union with a known tag decodes to its typed branch, never to `Other`.
    let known: BlockdevOptions =
        serde_json::from_value(json!({"driver": "file", "filename": "/x"})).unwrap();
    assert!(matches!(known.driver, BlockdevOptionsVariant::File(_)));
    let unknown: BlockdevOptions =
        serde_json::from_value(json!({"driver": "quantum-disk", "spin": 1})).unwrap();
    match &unknown.driver {
        BlockdevOptionsVariant::Other(u) => {
            assert_eq!(u.tag(), "quantum-disk");
            assert_eq!(unknown.driver.tag().as_str(), "quantum-disk");
        }
        other => panic!("{other:?}"),
    }
    // Unknown events likewise: a known name is always its variant.
    let at = qmp_api::Timestamp {
        seconds: 1,
        microseconds: 0,
    };
    let raw = qmp_api::qmp_core::Event::new("STOP", None, at);
    assert_eq!(Event::from_raw(&raw).unwrap(), Event::Stop);
}

#[tokio::test]
#[should_panic(expected = "polled after it completed")]
async fn issue_10_a_typed_call_polled_after_completion_panics() {
    let (qmp, mut peer, _s) = connected().await;
    let mut call = qmp.query_status();
    let serve = async {
        let r = peer.expect("query-status").await;
        peer.reply(&r.id, json!({"running": true, "status": "running"}))
            .await;
    };
    let (first, ()) = tokio::join!(&mut call, serve);
    assert!(first.is_ok());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let _ = std::future::Future::poll(std::pin::Pin::new(&mut call), &mut cx);
}

/// A pipelined batch keeps one call per command alive: a call owning its connection handle
/// and options must stay as small as the borrowed one it replaced (80 bytes on 64-bit targets
/// for an argument-less command; 72 today).
#[test]
#[cfg(target_pointer_width = "64")]
fn issue_10_calls_stay_small() {
    assert!(std::mem::size_of::<qmp_api::commands::QueryStatusCall>() <= 80);
    assert!(std::mem::size_of::<qmp_api::qmp_core::Request>() <= 80);
}
