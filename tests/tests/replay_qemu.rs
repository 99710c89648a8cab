//! Issue 15: record a session against real QEMU 10.0.2 through `qmp_api::capture::Recorder`,
//! replay it with `Replay`, and check that the same client code gets exactly the same
//! results; libvirt's capture format with two sessions; mismatch reports.

// Test code: unwrapping our own fixtures' results is fine.
#![allow(clippy::unwrap_used)]

use qmp_api::capture::{Capture, CaptureError, Recorder, Replay};
use qmp_api::{EventKind, Qmp};
use qmp_tests::qemu::{Kind, Qemu};
use qmp_tests::{within, TempDir};
use serde_json::json;

/// A result as the client code sees it: the value, or the error's class and description
/// (the raw reply text is left out: it holds the client's own random id).
fn show<T: std::fmt::Debug>(r: Result<T, qmp_api::ExecuteError>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => match e.qmp_error() {
            Some(q) => format!("Err({}: {})", q.class, q.desc),
            None => format!("Err({e})"),
        },
    }
}

/// The client code under test: what it sees, as text, in order.
async fn session(qmp: &Qmp) -> Vec<String> {
    let mut out = Vec::new();
    let mut events = qmp.subscribe([EventKind::Stop, EventKind::Resume]);
    out.push(show(qmp.query_status().await));
    let v = qmp.query_version().await.unwrap();
    out.push(format!(
        "{:?}",
        (v.qemu.major, v.qemu.minor, v.qemu.micro, v.package)
    ));
    out.push(show(qmp.qom_list("/machine").await));
    out.push(show(qmp.qom_list("/nope").await));
    out.push(show(
        qmp.raw().execute("qom-list", json!({"path": 1})).await,
    ));
    out.push(show(qmp.stop().await));
    out.push(format!(
        "{:?}",
        events.next().await.map(|r| r.map(|e| e.event))
    ));
    out.push(show(qmp.cont().await));
    out.push(format!(
        "{:?}",
        events.next().await.map(|r| r.map(|e| e.event))
    ));
    out.push(show(qmp.query_status().await));
    out
}

#[tokio::test]
async fn replay_of_a_recorded_qemu_session_gives_the_same_results() {
    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    within(60, async {
        let dir = TempDir::new();
        let capture = dir.join("session.qmpcap");
        let proxy = dir.join("proxy.sock");
        let recorder = Recorder::start(&proxy, &qemu.socket, &capture).unwrap();
        let qmp = Qmp::connect_unix(&proxy).await.unwrap();
        let live = session(&qmp).await;
        qmp.close().await;
        recorder.finish().await.unwrap();
        // Sanity: the live session did real work (an error reply, events).
        assert!(
            live[3].contains("GenericError") || live[3].contains("DeviceNotFound"),
            "{live:?}"
        );
        assert!(live[6].contains("Stop"), "{live:?}");

        let text = std::fs::read_to_string(&capture).unwrap();
        let recorded = Capture::parse(&text).unwrap();
        assert_eq!(recorded.sessions.len(), 1, "{text}");
        let s = &recorded.sessions[0];
        assert!(s.greeting.is_some());
        assert_eq!(s.exchanges[0].command, "qmp_capabilities");
        assert_eq!(s.exchanges.len(), 9, "{text}");
        let stop = s.exchanges.iter().find(|e| e.command == "stop").unwrap();
        assert_eq!(
            stop.events_before[0].0, "STOP",
            "QEMU sends STOP before its reply"
        );
        assert!(
            text.lines().any(|l| l.contains(r#""event":"STOP""#)),
            "{text}"
        );

        let socket = dir.join("replay.sock");
        let replay = Replay::bind_unix(Capture::load(&capture).unwrap(), &socket).unwrap();
        let qmp = Qmp::connect_unix(&socket).await.unwrap();
        assert_eq!(qmp.server_version(), qemu_version(&qemu).await);
        let replayed = session(&qmp).await;
        qmp.close().await;
        assert_eq!(replayed, live);
        assert!(replay.mismatches().is_empty(), "{:?}", replay.mismatches());
        assert!(replay.finished());
        replay.shutdown().await;
    })
    .await;
}

/// The same with qemu-storage-daemon 10.0.2: block nodes added, listed and removed.
#[tokio::test]
async fn replay_of_a_recorded_storage_daemon_session_gives_the_same_results() {
    let Some(qemu) = Qemu::start(Kind::StorageDaemon) else {
        return;
    };
    async fn storage(qmp: &Qmp) -> Vec<String> {
        let raw = qmp.raw();
        let node = json!({"driver": "null-co", "node-name": "n0", "size": 1048576});
        vec![
            show(raw.execute("blockdev-add", &node).await),
            show(raw.execute("blockdev-add", &node).await),
            show(qmp.query_named_block_nodes().await.map(|nodes| {
                nodes
                    .iter()
                    .map(|n| (n.node_name.clone(), n.drv.clone(), n.image.virtual_size))
                    .collect::<Vec<_>>()
            })),
            show(qmp.blockdev_del("n0").await),
            show(qmp.blockdev_del("n0").await),
        ]
    }
    within(60, async {
        let dir = TempDir::new();
        let capture = dir.join("qsd.qmpcap");
        let proxy = dir.join("proxy.sock");
        let recorder = Recorder::start(&proxy, &qemu.socket, &capture).unwrap();
        let qmp = Qmp::connect_unix(&proxy).await.unwrap();
        let live = storage(&qmp).await;
        qmp.close().await;
        recorder.finish().await.unwrap();
        assert!(
            live[0].starts_with("Ok") && live[1].starts_with("Err(GenericError"),
            "{live:?}"
        );

        let socket = dir.join("replay.sock");
        let replay = Replay::bind_unix(Capture::load(&capture).unwrap(), &socket).unwrap();
        let qmp = Qmp::connect_unix(&socket).await.unwrap();
        let replayed = storage(&qmp).await;
        qmp.close().await;
        assert_eq!(replayed, live);
        assert!(replay.mismatches().is_empty(), "{:?}", replay.mismatches());
        assert!(replay.finished());
    })
    .await;
}

async fn qemu_version(qemu: &Qemu) -> qmp_api::Version {
    let qmp = Qmp::from(qemu.connect().await);
    let v = qmp.server_version();
    qmp.close().await;
    v
}

const OURS: &str = concat!(
    r#"{"t": 0, "greeting": {"QMP": {"version": {"qemu": {"major": 9, "minor": 2, "micro": 1}, "package": "v9.2.1"}, "capabilities": ["oob"]}}}"#,
    "\n",
    r#"{"t": 0.001, "execute": "qmp_capabilities", "return": {}}"#,
    "\n",
    r#"{"t": 0.002, "execute": "qom-list", "arguments": {"path": "/machine"}, "return": [{"name": "type", "type": "string"}]}"#,
    "\n",
    r#"{"t": 0.003, "execute": "query-status", "return": {"status": "running", "running": true}}"#,
    "\n",
);

#[tokio::test]
async fn a_mismatch_names_the_expected_exchange_and_the_arguments_diff() {
    within(20, async {
        let dir = TempDir::new();
        let socket = dir.join("r.sock");
        let replay = Replay::bind_unix(Capture::parse(OURS).unwrap(), &socket).unwrap();
        let qmp = Qmp::connect_unix(&socket).await.unwrap();
        assert_eq!(qmp.server_version(), qmp_api::Version::new(9, 2, 1));
        let err = qmp.query_status().await.unwrap_err();
        assert_eq!(
            err.qmp_error().unwrap().desc,
            "replay: session 0, exchange 1 (0-based): expected `qom-list` {\"path\":\"/machine\"}, \
             but `query-status` {} arrived"
        );
        let err = qmp.qom_list("/x").await.unwrap_err();
        assert_eq!(
            err.qmp_error().unwrap().desc,
            "replay: session 0, exchange 1 (0-based): expected `qom-list` {\"path\":\"/machine\"}, \
             but `qom-list` {\"path\":\"/x\"} arrived; arguments differ: \
             `path`: expected \"/machine\", got \"/x\""
        );
        // The position is kept: the right command still gets its reply.
        assert_eq!(qmp.qom_list("/machine").await.unwrap()[0].name, "type");
        assert!(qmp.query_status().await.unwrap().running);
        let err = qmp.query_status().await.unwrap_err();
        assert!(err
            .qmp_error()
            .unwrap()
            .desc
            .contains("has no more exchanges"));
        let m = replay.mismatches();
        assert_eq!(m.len(), 3);
        assert_eq!(
            (m[0].expected.as_deref(), m[0].arrived.as_str()),
            (Some("qom-list"), "query-status")
        );
        // The message's numbers are the fields' (both 0-based).
        assert_eq!((m[0].session, m[0].index), (0, Some(1)));
        assert!(m[0].message.contains("session 0, exchange 1 (0-based)"));
        qmp.close().await;
    })
    .await;
}

/// libvirt's layout: pretty-printed objects, blank lines, no greeting, ids; two sessions.
const LIBVIRT: &str = r#"{
  "execute": "qmp_capabilities",
  "id": "libvirt-1"
}

{
  "return": {
  },
  "id": "libvirt-1"
}

{
  "execute": "query-version",
  "id": "libvirt-2"
}

{
  "return": {
    "qemu": {
      "micro": 0,
      "minor": 2,
      "major": 8
    },
    "package": "v8.2.0"
  },
  "id": "libvirt-2"
}

{
  "execute": "query-kvm",
  "id": "libvirt-3"
}

{
  "return": {
    "enabled": false,
    "present": false
  },
  "id": "libvirt-3"
}

{
  "execute": "qmp_capabilities",
  "id": "libvirt-4"
}

{
  "return": {
  },
  "id": "libvirt-4"
}

{
  "execute": "qom-list-types",
  "arguments": {
    "abstract": true
  },
  "id": "libvirt-5"
}

{
  "error": {
    "class": "GenericError",
    "desc": "synthetic failure"
  },
  "id": "libvirt-5"
}
"#;

#[tokio::test]
async fn libvirt_capture_with_two_sessions() {
    within(20, async {
        let capture = Capture::parse_libvirt(LIBVIRT).unwrap();
        assert_eq!(capture.sessions.len(), 2);
        assert_eq!(capture.sessions[0].exchanges.len(), 3);
        let dir = TempDir::new();
        let socket = dir.join("l.sock");
        let replay = Replay::bind_unix(capture, &socket).unwrap();

        // Session 1; the greeting comes from its query-version reply.
        let qmp = Qmp::connect_unix(&socket).await.unwrap();
        assert_eq!(qmp.server_version(), qmp_api::Version::new(8, 2, 0));
        let v = qmp.query_version().await.unwrap();
        assert_eq!(v.package, "v8.2.0");
        assert!(!qmp.query_kvm().await.unwrap().present);
        qmp.close().await;

        // Session 2, on the next connection.
        let qmp = Qmp::connect_unix(&socket).await.unwrap();
        let err = qmp
            .raw()
            .execute("qom-list-types", json!({"abstract": true}))
            .await
            .unwrap_err();
        assert_eq!(err.qmp_error().unwrap().desc, "synthetic failure");
        qmp.close().await;
        assert!(replay.mismatches().is_empty(), "{:?}", replay.mismatches());
        assert!(replay.finished());

        // A third connection: nothing left.
        let qmp = Qmp::connect_unix(&socket).await.unwrap();
        let err = qmp.query_status().await.unwrap_err();
        assert!(err
            .qmp_error()
            .unwrap()
            .desc
            .contains("no recorded session left"));
        qmp.close().await;
    })
    .await;
}

#[test]
fn capture_faults_name_the_line() {
    let text = format!("{OURS}{{\"t\": 1, \"execute\": \"stop\"}}\n");
    match Capture::parse(&text) {
        Err(CaptureError::Format { line, message }) => {
            assert_eq!(line, 5);
            assert!(
                message.contains("neither `return` nor `error`"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    match Capture::parse_libvirt("{\"execute\": \"a\"}\n\n{\"execute\": \"b\"}\n") {
        Err(CaptureError::Format { line, message }) => {
            assert_eq!(line, 1);
            assert_eq!(message, "a request without a reply");
        }
        other => panic!("{other:?}"),
    }
    match Capture::parse_libvirt("{\n  \"return\": {}\n}\n") {
        Err(CaptureError::Format { message, .. }) => {
            assert_eq!(message, "a reply without a request")
        }
        other => panic!("{other:?}"),
    }
}

/// Recording and replaying from a synchronous program (no tokio runtime anywhere): a session
/// that ends with `quit`. QEMU closes the connection after `quit`'s reply and SHUTDOWN; the
/// capture records that, and the replay closes the session at the same point, so
/// `closed()` reports the orderly end instead of waiting forever.
#[test]
fn replay_closes_the_session_after_a_recorded_quit_without_a_runtime() {
    use qmp_api::blocking::{Qmp as BlockingQmp, Wait};
    use std::time::Duration;

    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    let dir = TempDir::new();
    let capture = dir.join("quit.qmpcap");
    let proxy = dir.join("proxy.sock");
    // A plain test thread: no runtime is current; these used to panic ("no reactor running").
    assert!(tokio::runtime::Handle::try_current().is_err());
    let recorder = Recorder::start(&proxy, &qemu.socket, &capture).unwrap();
    let qmp = BlockingQmp::connect_unix(&proxy).unwrap();
    qmp.query_status().wait().unwrap();
    qmp.quit().wait().unwrap();
    let live = qmp
        .closed_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("closed within 10 s");
    assert!(
        matches!(*live, qmp_core::DisconnectReason::ServerShutDown),
        "{live:?}"
    );
    drop(qmp);
    recorder.finish().wait().unwrap();

    let text = std::fs::read_to_string(&capture).unwrap();
    let last = text.lines().last().unwrap();
    assert!(last.contains(r#""closed":"qemu""#), "{text}");
    let recorded = Capture::parse(&text).unwrap();
    assert!(recorded.sessions[0].closed_by_server, "{text}");
    let quit = recorded.sessions[0].exchanges.last().unwrap();
    assert_eq!(quit.command, "quit");
    // QEMU 10.0.2 sends SHUTDOWN while `quit` runs, before its reply.
    assert!(
        quit.events_before
            .iter()
            .chain(&quit.events)
            .any(|(name, _)| name == "SHUTDOWN"),
        "{text}"
    );

    let socket = dir.join("replay.sock");
    let replay = Replay::bind_unix(Capture::load(&capture).unwrap(), &socket).unwrap();
    let qmp = BlockingQmp::connect_unix(&socket).unwrap();
    let mut shutdown = qmp.subscribe([EventKind::Shutdown]);
    qmp.query_status().wait().unwrap();
    qmp.quit().wait().unwrap();
    shutdown
        .wait_for_kind(EventKind::Shutdown, Duration::from_secs(10))
        .unwrap();
    let replayed = qmp
        .closed_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("closed within 10 s");
    assert!(
        matches!(*replayed, qmp_core::DisconnectReason::ServerShutDown),
        "{replayed:?}"
    );
    assert!(replay.mismatches().is_empty(), "{:?}", replay.mismatches());
    assert!(replay.finished());
}

/// A successful `quit` closes the replayed session even in a capture without the `closed`
/// line (libvirt's captures, older recordings), like QEMU.
#[tokio::test]
async fn replayed_quit_closes_the_session_without_a_closed_line() {
    within(20, async {
        let dir = TempDir::new();
        let socket = dir.join("replay.sock");
        let capture = Capture::parse(concat!(
            r#"{"t": 0.001, "execute": "qmp_capabilities", "return": {}}"#,
            "\n",
            r#"{"t": 0.002, "execute": "quit", "return": {}}"#,
            "\n",
            r#"{"t": 0.003, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}"#,
            "\n",
        ))
        .unwrap();
        assert!(!capture.sessions[0].closed_by_server);
        let replay = Replay::bind_unix(capture, &socket).unwrap();
        let qmp = Qmp::connect_unix(&socket).await.unwrap();
        qmp.quit().await.unwrap();
        let reason = qmp.closed().await;
        assert!(
            matches!(*reason, qmp_core::DisconnectReason::ServerShutDown),
            "{reason:?}"
        );
        assert!(replay.finished());
    })
    .await;
}

/// Recorder with QEMU's socket missing: the error comes from `start`, names the path, and
/// no capture file or listening socket is left; `start_waiting` waits for a QEMU that is
/// still starting.
#[test]
fn recorder_fails_fast_when_qemu_is_missing_and_can_wait_for_it() {
    use qmp_api::blocking::{Qmp as BlockingQmp, Wait};
    use std::time::{Duration, Instant};

    let dir = TempDir::new();
    let missing = dir.join("no-qemu.sock");
    let proxy = dir.join("proxy.sock");
    let capture = dir.join("c.qmpcap");
    let err = Recorder::start(&proxy, &missing, &capture)
        .err()
        .expect("no QEMU there");
    let text = err.to_string();
    assert!(
        text.contains("cannot connect to QEMU") && text.contains("no-qemu.sock"),
        "{text}"
    );
    assert!(matches!(err, CaptureError::Io { .. }), "{err:?}");
    assert!(!capture.exists() && !proxy.exists());

    let began = Instant::now();
    let err = Recorder::start_waiting(&proxy, &missing, &capture, Duration::from_millis(300))
        .err()
        .expect("still no QEMU");
    assert!(began.elapsed() >= Duration::from_millis(300), "{err}");

    if Kind::System10.require().is_none() {
        return;
    }
    let qemu_socket = dir.join("late.sock");
    let late = qemu_socket.clone();
    let starter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let arg = format!("unix:{},server=on,wait=off", late.display());
        Qemu::start_connecting(Kind::System10, &arg, &late)
    });
    let recorder =
        Recorder::start_waiting(&proxy, &qemu_socket, &capture, Duration::from_secs(20)).unwrap();
    let _qemu = starter.join().unwrap();
    let qmp = BlockingQmp::connect_unix(&proxy).unwrap();
    qmp.query_status().wait().unwrap();
    qmp.close().unwrap();
    recorder.finish().wait().unwrap();
    assert!(Capture::load(&capture).unwrap().sessions[0]
        .exchanges
        .iter()
        .any(|e| e.command == "query-status"));
}
