//! Issue 11 against real QEMU 10.0.2 and 7.2: a typed program connects in one step through
//! `Qmp::builder()` (waiting for a QEMU it just started, or accepting its connection), adds a
//! null-co node built with the new conversions and setters, exports it over NBD on a legacy
//! socket address, and awaits typed event kinds.

use std::time::Duration;

use qmp_api::types::{
    BlockExportOptionsNbd, BlockdevOptions, BlockdevOptionsNull, UnixSocketAddress,
};
use qmp_api::{Event, EventKind, Listener, Qmp};
use qmp_tests::qemu::{Kind, Qemu};
use qmp_tests::{within, TempDir};

const SYSTEMS: [Kind; 2] = [Kind::System10, Kind::System72];

/// One QEMU started bare, its monitor socket, and the typed client connected by the builder
/// while QEMU may still be starting.
async fn started(kind: Kind) -> Option<(Qemu, Qmp)> {
    let dir = TempDir::new();
    let socket = dir.join("qmp.sock");
    let qemu = Qemu::start_bare(
        kind,
        &[
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", socket.display()),
        ],
    )?;
    // No readiness probe: the builder retries until the socket accepts.
    let qmp = Qmp::builder()
        .wait_for_server(true)
        .timeout(Some(Duration::from_secs(20)))
        .command_timeout(Some(Duration::from_secs(20)))
        .connect_unix(&socket)
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e:#}"));
    std::mem::forget(dir); // the socket's directory outlives the test's QEMU
    Some((qemu, qmp))
}

#[tokio::test]
async fn typed_program_with_conversions_setters_and_event_kinds() {
    for kind in SYSTEMS {
        let Some((_qemu, qmp)) = started(kind).await else {
            continue;
        };
        within(60, async {
            // The first example, as one expression.
            let null = BlockdevOptions::null_co(BlockdevOptionsNull::default().size(64 << 20))
                .node_name("null0");
            qmp.blockdev_add(null).await.unwrap();
            let nodes = qmp.query_named_block_nodes().await.unwrap();
            let node = nodes
                .iter()
                .find(|n| n.node_name.as_deref() == Some("null0"))
                .unwrap_or_else(|| panic!("{kind:?}: null0 not among {nodes:?}"));
            assert_eq!(node.drv, "null-co");
            assert_eq!(node.image.virtual_size, 64 << 20);

            // The second: `nbd-server-start`'s legacy address from a plain unix address.
            let dir = TempDir::new();
            let nbd = dir.join("nbd.sock");
            qmp.nbd_server_start(UnixSocketAddress::new(nbd.to_str().unwrap()))
                .await
                .unwrap();
            assert!(nbd.exists(), "{kind:?}: NBD socket missing");
            // Two required strings: the constructor names them.
            let export = qmp_api::types::BlockExportOptions::with_id_and_node_name(
                "exp0",
                "null0",
                BlockExportOptionsNbd::default().name("null"),
            );
            qmp.block_export_add(export).await.unwrap();
            let exports = qmp.query_block_exports().await.unwrap();
            assert!(
                exports
                    .iter()
                    .any(|e| e.id == "exp0" && e.node_name == "null0"),
                "{kind:?}: {exports:?}"
            );
            qmp.block_export_del("exp0").await.unwrap();
            qmp.nbd_server_stop().await.unwrap();

            // Typed subscriptions: only the kinds asked for arrive.
            let mut runstate = qmp.subscribe([EventKind::Stop, EventKind::Resume]);
            let mut all = qmp.events();
            qmp.stop().await.unwrap();
            qmp.cont().await.unwrap();
            let stop = runstate.next().await.unwrap().unwrap();
            assert_eq!(stop.event.kind(), Some(EventKind::Stop));
            let resume = runstate
                .wait_for_kind(EventKind::Resume, Duration::from_secs(5))
                .await
                .unwrap();
            assert!(matches!(resume.event, Event::Resume));
            // The unfiltered stream saw them too (and possibly others in between).
            all.wait_for_kind(EventKind::Resume, Duration::from_secs(5))
                .await
                .unwrap();

            // The string form checks names against the schema, unless asked not to.
            let err = qmp.events_named(["Stop"]).unwrap_err();
            assert_eq!(err.suggestion(), Some("STOP"));
            assert!(err.to_string().contains("did you mean `STOP`"), "{err}");
            assert!(qmp.events_named(["STOP", "RESUME"]).is_ok());
            let mut newer = qmp.events_named_unchecked(["AN_EVENT_OF_A_NEWER_QEMU", "STOP"]);
            qmp.stop().await.unwrap();
            let got = newer.next().await.unwrap().unwrap();
            assert_eq!(got.event.kind(), Some(EventKind::Stop));

            qmp.blockdev_del("null0").await.unwrap();
        })
        .await;
    }
}

/// Accept mode through the typed builder: QEMU connects to us.
#[tokio::test]
async fn builder_accepts_a_connecting_qemu() {
    for kind in SYSTEMS {
        let dir = TempDir::new();
        let path = dir.join("accept.sock");
        let listener = Listener::bind_unix(&path).unwrap();
        let Some(_qemu) = Qemu::start_connecting(kind, &listener.qemu_qmp_arg(), &path) else {
            continue;
        };
        within(60, async {
            let qmp = Qmp::builder()
                .timeout(Some(Duration::from_secs(20)))
                .event_buffer(64)
                .accept(&listener)
                .await
                .unwrap();
            let v = qmp.query_version().await.unwrap();
            assert_eq!(
                (v.qemu.major as u64, v.qemu.minor as u64),
                kind.expected_version()
            );
        })
        .await;
    }
}

/// The builder's errors are the transport's: a connection that never comes is a timeout, and
/// TLS names the bad server name.
#[tokio::test]
async fn builder_reports_connect_errors() {
    within(20, async {
        let dir = TempDir::new();
        let missing = dir.join("nobody.sock");
        let err = Qmp::builder()
            .wait_for_server(true)
            .timeout(Some(Duration::from_millis(200)))
            .connect_unix(&missing)
            .await
            .unwrap_err();
        assert!(
            matches!(err, qmp_api::ConnectError::Timeout { .. }),
            "{err}"
        );

        let config = qmp_api::tls::rustls::ClientConfig::builder()
            .with_root_certificates(qmp_api::tls::rustls::RootCertStore::empty())
            .with_no_client_auth();
        let err = Qmp::builder()
            .connect_tls(
                "127.0.0.1:1",
                "not a host name!",
                std::sync::Arc::new(config),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, qmp_api::ConnectError::Tls { .. }), "{err}");
    })
    .await;
}

/// Event kinds are generated from the schema, in the order of `Event::NAMES`.
#[test]
fn event_kinds_match_the_schema() {
    assert_eq!(EventKind::ALL.len(), Event::NAMES.len());
    for (kind, name) in EventKind::ALL.iter().zip(Event::NAMES) {
        assert_eq!(kind.as_str(), *name);
        assert_eq!(EventKind::from_name(name), Some(*kind));
        assert_eq!(kind.to_string(), *name);
    }
    assert_eq!(EventKind::from_name("Stop"), None);
    assert_eq!(Event::Stop.kind(), Some(EventKind::Stop));
    assert_eq!(EventKind::BlockJobCompleted.as_str(), "BLOCK_JOB_COMPLETED");
}
