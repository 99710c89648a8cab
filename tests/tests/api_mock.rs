//! The typed API against the scripted mock server: wire form of arguments, decoding of
//! replies the schema does not fully describe, typed events.

use std::time::Duration;

use qmp_api::commands::QueryStatus;
use qmp_api::types::{
    BlockdevOptions, BlockdevOptionsFile, BlockdevOptionsVariant, BlockdevRef, RunState,
    SchemaInfoVariant,
};
use qmp_api::{Event, EventError, ExecuteError, Qmp, WaitError};
use qmp_tests::mock::{MockPeer, MockServer};
use qmp_tests::within;
use serde_json::json;

async fn connected() -> (Qmp, MockPeer<tokio::net::UnixStream>, MockServer) {
    let server = MockServer::new();
    let (qmp, peer) = tokio::join!(Qmp::connect_unix(server.path()), server.accept_handshake());
    (qmp.expect("connect"), peer, server)
}

#[tokio::test]
async fn arguments_go_on_the_wire_as_the_schema_says() {
    within(10, async {
        let (qmp, mut peer, _s) = connected().await;
        let calls = async {
            qmp.block_resize(1 << 30).node_name("disk0").await.unwrap();
            qmp.device_add("virtio-blk-pci").id("d0").arg("drive", "disk0").await.unwrap();
            // `arg` replaces a listed argument of the same name: one key on the wire.
            qmp.device_add("virtio-blk-pci").id("d0").arg("id", "d1").await.unwrap();
            let mut file = BlockdevOptions::new(BlockdevOptionsVariant::File(BlockdevOptionsFile::new("/tmp/x.img")));
            file.node_name = Some("n0".into());
            file.read_only = Some(true);
            qmp.blockdev_add(file).await.unwrap();
            qmp.query_status().await.unwrap()
        };
        let serve = async {
            let r = peer.expect("block_resize").await;
            assert_eq!(r.arguments, json!({"size": 1073741824, "node-name": "disk0"}));
            peer.reply(&r.id, json!({})).await;
            let r = peer.expect("device_add").await;
            assert_eq!(r.arguments, json!({"driver": "virtio-blk-pci", "id": "d0", "drive": "disk0"}));
            peer.reply(&r.id, json!({})).await;
            let r = peer.expect("device_add").await;
            assert_eq!(r.arguments, json!({"driver": "virtio-blk-pci", "id": "d1"}));
            peer.reply(&r.id, json!({})).await;
            let r = peer.expect("blockdev-add").await;
            assert_eq!(
                r.arguments,
                json!({"driver": "file", "filename": "/tmp/x.img", "node-name": "n0", "read-only": true})
            );
            peer.reply(&r.id, json!({})).await;
            let r = peer.expect("query-status").await;
            // No arguments at all for argument-less commands.
            assert_eq!(r.arguments, serde_json::Value::Null);
            peer.reply(&r.id, json!({"running": true, "status": "running"})).await;
        };
        let (status, ()) = tokio::join!(calls, serve);
        assert!(status.running);
        assert_eq!(status.status, RunState::Running);
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
        assert_eq!(status.status, RunState::Other("hibernating".into()));
        assert_eq!(status.status.as_str(), "hibernating");
        let schema = schema.unwrap();
        assert!(matches!(&schema[0].meta_type, SchemaInfoVariant::Command(c) if c.arg_type == "0"));
        // The discriminator came last on the wire: still decoded.
        assert!(matches!(&schema[1].meta_type, SchemaInfoVariant::Command(c) if c.ret_type == "2"));
        match &schema[2].meta_type {
            SchemaInfoVariant::Other(u) => {
                assert_eq!(u.tag, "quantum");
                assert_eq!(u.members["spin"], json!("up"));
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
            Event::Other(raw) => {
                assert_eq!(raw.name(), "FROM_THE_FUTURE");
                assert_eq!(raw.data_value(), json!({"x": 1}));
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
        let (qmp, mut peer, _s) = connected().await;
        // The event arrives before the reply: a stream created before the command sees it.
        let mut events = qmp.events_named(["STOP"]);
        let call = qmp.stop();
        let serve = async {
            let r = peer.expect("stop").await;
            peer.event("STOP", None).await;
            peer.reply(&r.id, json!({})).await;
        };
        let (res, ()) = tokio::join!(call, serve);
        res.unwrap();
        let got = events
            .wait_for(|e| matches!(e, Event::Stop), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(got.event, Event::Stop);
    })
    .await;
}

#[tokio::test]
async fn generic_execute_and_command_values() {
    within(10, async {
        let (qmp, mut peer, _s) = connected().await;
        let call = qmp.execute(QueryStatus);
        let serve = async {
            let r = peer.expect("query-status").await;
            peer.reply(&r.id, json!({"running": true, "status": "paused"}))
                .await;
        };
        let (res, ()) = tokio::join!(call, serve);
        assert_eq!(res.unwrap().status, RunState::Paused);
        assert_eq!(<QueryStatus as qmp_api::Command>::NAME, "query-status");
        let call = qmp.block_resize(10).device("ide0");
        assert_eq!(call.command().device.as_deref(), Some("ide0"));
    })
    .await;
}
