//! Issue 11, item 5: the blocking facade (`qmp_api::blocking`) against real QEMU 10.0.2:
//! typed calls and their errors, events with timeouts, use from plain threads and from a
//! runtime's blocking threads, the clear error (not a panic, not a hang) inside an async task,
//! and clean ends (drop, close, quit; QEMU killed by PID whatever happens).

// Test code: unwrapping our own fixtures' results is fine.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use qmp_api::blocking::{Qmp, Wait};
use qmp_api::types::{BlockdevOptions, BlockdevOptionsNull, RunState};
use qmp_api::workflow::Launcher;
use qmp_api::{BlockingError, ConnectError, Event, EventKind, ExecuteError, WaitError};
use qmp_tests::qemu::{Kind, Qemu};

/// Runs `body` on a thread of its own and fails the test if it does not finish in `secs`
/// (a blocking test that hangs must not hang the suite).
fn within_sync<T: Send + 'static>(secs: u64, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = tx.send(body());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test body did not finish within {secs} s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The body panicked: re-raise its panic here.
            std::panic::resume_unwind(thread.join().unwrap_err())
        }
    }
}

#[test]
fn typed_calls_and_errors() {
    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    let socket = qemu.socket.clone();
    within_sync(60, move || {
        let qmp = Qmp::builder()
            .timeout(Some(Duration::from_secs(10)))
            .command_timeout(Some(Duration::from_secs(20)))
            .connect_unix_blocking(&socket)
            .unwrap();
        assert_eq!(qmp.server_version().major, 10);

        let version = qmp.query_version().wait().unwrap();
        assert_eq!((version.qemu.major, version.qemu.minor), (10, 0));
        let status = qmp.query_status().wait().unwrap();
        assert_eq!(status.status, RunState::Running);

        // Arguments and setters as in the async API; a reply that is a value.
        let null = BlockdevOptionsNull::default().size(64 << 20);
        qmp.blockdev_add(BlockdevOptions::null_co(null).node_name("null0"))
            .wait()
            .unwrap();
        let nodes = qmp.query_named_block_nodes().flat(true).wait().unwrap();
        assert!(nodes
            .iter()
            .any(|n| n.node_name.as_deref() == Some("null0")));

        // QEMU's error, typed as in the async API.
        let err = qmp.blockdev_del("no-such-node").wait().unwrap_err();
        let qmp_error = err.qmp_error().expect("a QMP error");
        assert_eq!(qmp_error.class, "GenericError");
        assert!(qmp_error.desc.contains("no-such-node"), "{err}");

        // A call's own timeout and the generic `execute` both wait.
        let types = qmp
            .execute(qmp_api::commands::QomListTypes {
                implements: Some("device".into()),
                r#abstract: None,
            })
            .timeout(Some(Duration::from_secs(5)))
            .wait()
            .unwrap();
        assert!(!types.is_empty());

        // The server's schema, fetched blocking; then unsupported calls fail before sending.
        assert!(qmp
            .supports(qmp_api::SchemaItem::Command("query-status"))
            .unwrap());
        #[allow(deprecated)] // removed after QEMU 6.1: the point here
        let err = qmp.query_cpus().wait().unwrap_err();
        assert!(err.is_unsupported(), "{err}");
    });
}

#[test]
fn events_with_timeouts() {
    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    let socket = qemu.socket.clone();
    within_sync(60, move || {
        let qmp = Qmp::connect_unix(&socket).unwrap();
        let mut runstate = qmp.subscribe([EventKind::Stop, EventKind::Resume]);
        let mut all = qmp.events();

        // Nothing yet: the timeout comes back as an error, after about the time asked.
        let start = Instant::now();
        match runstate.next_timeout(Duration::from_millis(300)) {
            Err(WaitError::Timeout(d)) => assert_eq!(d, Duration::from_millis(300)),
            other => panic!("expected a timeout, got {other:?}"),
        }
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");

        qmp.stop().wait().unwrap();
        let stop = runstate
            .wait_for_kind(EventKind::Stop, Duration::from_secs(10))
            .unwrap();
        assert!(matches!(stop.event, Event::Stop));
        qmp.cont().wait().unwrap();
        let resume = runstate.next_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(resume.event.kind(), Some(EventKind::Resume));
        assert!(resume.timestamp >= stop.timestamp);

        // The iterator sees both, in order, with the same data.
        let names: Vec<String> = all
            .by_ref()
            .take(2)
            .map(|r| r.unwrap().event.name().to_string())
            .collect();
        assert_eq!(names, ["STOP", "RESUME"]);
        assert!(matches!(
            all.wait_for(|e| matches!(e, Event::Stop), Duration::from_millis(200)),
            Err(WaitError::Timeout(_))
        ));

        // A zero timeout takes an event already received, and waits for nothing.
        qmp.stop().wait().unwrap();
        runstate
            .wait_for_kind(EventKind::Stop, Duration::from_secs(10))
            .unwrap();
        let stop = all.next_timeout(Duration::ZERO).unwrap();
        assert_eq!(stop.event.kind(), Some(EventKind::Stop));
        assert!(matches!(
            all.next_timeout(Duration::ZERO),
            Err(WaitError::Timeout(_))
        ));

        // A checked name; a typo is refused at once.
        assert_eq!(
            qmp.events_named(["Stop"]).unwrap_err().suggestion(),
            Some("STOP")
        );

        // QEMU goes away: the iterator reports the end, then stops.
        let mut events = qmp.events();
        qmp.quit().wait().unwrap();
        let mut ended = false;
        for item in events.by_ref() {
            match item {
                Ok(r) => assert_eq!(r.event.kind(), Some(EventKind::Shutdown)),
                Err(WaitError::Event(qmp_api::EventError::Disconnected(_))) => ended = true,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert!(ended, "the iterator ended without saying why");
        assert!(matches!(
            events.next_timeout(Duration::from_secs(1)),
            Err(WaitError::Ended)
        ));
        let err = qmp.query_status().wait().unwrap_err();
        assert!(err.is_disconnected(), "{err}");
    });
}

#[test]
fn calls_from_many_threads_share_one_connection() {
    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    let socket = qemu.socket.clone();
    within_sync(60, move || {
        let qmp = Qmp::connect_unix(&socket).unwrap();
        let before = qmp.raw().stats().commands_sent;
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let qmp = qmp.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let name = qmp.query_name().wait().unwrap();
                        assert_eq!(name.name, None);
                    }
                    i
                })
            })
            .collect();
        let done: Vec<i32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(done, [0, 1, 2, 3]);
        assert_eq!(qmp.raw().stats().commands_sent - before, 100);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_in_spawn_blocking_and_refuses_async_tasks() {
    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    let socket = qemu.socket.clone();
    // From a runtime's blocking thread: works, connect included.
    let qmp = tokio::task::spawn_blocking(move || {
        let qmp = Qmp::connect_unix(&socket).unwrap();
        assert_eq!(qmp.query_status().wait().unwrap().status, RunState::Running);
        qmp
    })
    .await
    .unwrap();

    // Inside this async test (the runtime's block_on thread): a clear error, nothing sent.
    let before = qmp.raw().stats().commands_sent;
    match qmp.query_status().wait() {
        Err(ExecuteError::Blocking(BlockingError::InAsyncContext)) => {}
        other => panic!("expected the async-context error, got {other:?}"),
    }
    let err = qmp.query_status().wait().unwrap_err();
    assert!(err.to_string().contains("spawn_blocking"), "{err}");
    assert_eq!(qmp.raw().stats().commands_sent, before);
    // In a spawned task (a worker thread): the same.
    let in_task = qmp.clone();
    let result = tokio::spawn(async move { in_task.query_status().wait().map(|_| ()) })
        .await
        .unwrap();
    assert!(matches!(result, Err(ExecuteError::Blocking(_))));
    // Connect, events, close: the same error, no panic.
    assert!(matches!(
        Qmp::connect_unix("/nonexistent"),
        Err(ConnectError::Blocking(BlockingError::InAsyncContext))
    ));
    let mut events = qmp.events();
    assert!(matches!(events.next(), Some(Err(WaitError::Blocking(_)))));
    assert!(matches!(
        events.next_timeout(Duration::from_secs(1)),
        Err(WaitError::Blocking(_))
    ));
    assert!(qmp.close().is_err());
    // The async client underneath still works here, with `.await`.
    assert_eq!(
        qmp.as_async().query_status().await.unwrap().status,
        RunState::Running
    );
}

#[tokio::test(flavor = "current_thread")]
async fn refuses_a_current_thread_runtime() {
    // A current-thread runtime's only thread runs the tasks: blocking it would deadlock a
    // connection opened there. Refused before anything is sent.
    let err = Qmp::connect_unix("/nonexistent").unwrap_err();
    assert!(matches!(
        err,
        ConnectError::Blocking(BlockingError::InAsyncContext)
    ));
}

#[test]
fn drop_and_close_do_not_hang() {
    let Some(mut qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    let socket = qemu.socket.clone();
    within_sync(60, move || {
        // Dropping every handle closes the connection: QEMU's monitor accepts the next client.
        for _ in 0..3 {
            let qmp = Qmp::connect_unix(&socket).unwrap();
            let _events = qmp.events();
            qmp.query_status().wait().unwrap();
        }
        // A graceful close; later calls fail at once.
        let qmp = Qmp::connect_unix(&socket).unwrap();
        qmp.close().unwrap();
        let reason = qmp.closed().unwrap();
        assert!(reason.to_string().contains("closed"), "{reason}");
        assert!(qmp.query_status().wait().unwrap_err().is_disconnected());
        // QEMU killed under a blocked call: the call ends with an error, no hang.
        let qmp = Qmp::connect_unix(&socket).unwrap();
        let waiting = {
            let qmp = qmp.clone();
            let mut events = qmp.events();
            std::thread::spawn(move || events.next_timeout(Duration::from_secs(30)))
        };
        std::thread::sleep(Duration::from_millis(100));
        qemu.kill();
        match waiting.join().unwrap() {
            Err(WaitError::Event(qmp_api::EventError::Disconnected(_))) => {}
            other => panic!("expected the end of the connection, got {other:?}"),
        }
        assert!(qmp.query_status().wait().unwrap_err().is_disconnected());
    });
}

#[test]
fn launcher_blocking_and_quit() {
    let Some(bin) = Kind::System10.require() else {
        return;
    };
    within_sync(60, move || {
        let mut cmd = Command::new(bin);
        cmd.args(["-machine", "none", "-nodefaults", "-display", "none"]);
        let (qmp, mut qemu) = Launcher::new(cmd).launch_blocking().unwrap();
        let pid = qemu.pid();
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        assert_eq!(qmp.query_status().wait().unwrap().status, RunState::Running);
        let status = qemu.quit_and_wait().wait().unwrap();
        assert!(status.success(), "{status}");
        assert!(qmp.query_status().wait().unwrap_err().is_disconnected());

        // Dropping the process handle kills QEMU (by PID), blocking program or not.
        let mut cmd = Command::new(Kind::System10.binary());
        cmd.args(["-machine", "none", "-nodefaults", "-display", "none"]);
        let (qmp, qemu) = Launcher::new(cmd).launch_blocking().unwrap();
        let pid = qemu.pid();
        drop(qemu);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
            && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
        {
            assert!(
                Instant::now() < deadline,
                "QEMU {pid} still runs after drop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(qmp.closed().is_ok());
    });
}

#[test]
fn accept_mode_blocking() {
    let dir = qmp_tests::TempDir::new();
    let path = dir.join("accept.sock");
    let listener = qmp_api::Listener::bind_unix(&path).unwrap();
    let Some(_qemu) = Qemu::start_connecting(Kind::System10, &listener.qemu_qmp_arg(), &path)
    else {
        return;
    };
    within_sync(60, move || {
        let qmp = qmp_api::Qmp::builder()
            .timeout(Some(Duration::from_secs(10)))
            .accept_blocking(&listener)
            .unwrap();
        assert_eq!(qmp.query_status().wait().unwrap().status, RunState::Running);
    });
}

/// Workflows wait too: a `blockdev-create` job on qemu-storage-daemon run by `Job`, then a
/// job that fails, with QEMU's reason.
#[test]
fn job_workflow_blocking() {
    use qmp_api::types::{BlockdevCreateOptions, BlockdevCreateOptionsFile};
    use qmp_api::workflow::{Job, JobError};
    let Some(qemu) = Qemu::start(Kind::StorageDaemon) else {
        return;
    };
    let socket = qemu.socket.clone();
    let image = qemu.dir.join("new.img").to_str().unwrap().to_string();
    within_sync(60, move || {
        let qmp = Qmp::connect_unix(&socket).unwrap();
        let options = BlockdevCreateOptions::file(BlockdevCreateOptionsFile::new(&image, 1 << 20));
        let report = Job::new(&qmp, "c0")
            .run(qmp.blockdev_create("c0", options))
            .wait()
            .unwrap();
        assert_eq!(report.id, "c0");
        assert_eq!(std::fs::metadata(&image).unwrap().len(), 1 << 20);
        let bad = BlockdevCreateOptionsFile::new("/nonexistent/dir/x.img", 1 << 20);
        let err = Job::new(&qmp, "c1")
            .run(qmp.blockdev_create("c1", BlockdevCreateOptions::file(bad)))
            .wait()
            .unwrap_err();
        match err {
            JobError::Failed { error, .. } => assert!(error.contains("No such file"), "{error}"),
            other => panic!("expected a failed job, got {other}"),
        }
    });
}

/// The guest agent's typed calls and helpers wait too (`qmp_api::blocking::Wait`), on a real
/// qemu-ga 10.0.2 (host-changing commands blocked; only a temp file is touched).
#[test]
fn guest_agent_blocking() {
    use qmp_ga::GuestAgent;
    let Some(ga) = qmp_tests::qga::QemuGa::start() else {
        return;
    };
    let socket = ga.socket.clone();
    let file = ga.dir.join("blocking.txt").to_str().unwrap().to_string();
    within_sync(60, move || {
        let agent: GuestAgent = GuestAgent::builder()
            .wait_for_server(true)
            .timeout(Some(Duration::from_secs(10)))
            .connect_unix(&socket)
            .wait()
            .unwrap()
            .into();
        agent.guest_ping().wait().unwrap();
        let info = agent.guest_info().wait().unwrap();
        assert!(info.version.starts_with("10.0"), "{}", info.version);
        agent
            .write_file(&file, b"written by a blocking program")
            .wait()
            .unwrap();
        assert_eq!(
            agent.read_file(&file).wait().unwrap(),
            b"written by a blocking program"
        );
        // A disabled command (guest-exec, of a harmless program): the agent's error, typed.
        let err = agent.guest_exec("/bin/true").wait().unwrap_err();
        assert!(err.qmp_error().is_some(), "{err}");
    });
}

/// qmp_core's server, bound and listening from a plain thread (no tokio runtime): it serves
/// from the shared background runtime instead of panicking ("there is no reactor running"),
/// and a blocking client talks to it.
#[test]
fn a_server_can_be_bound_and_served_without_a_runtime() {
    use qmp_core::server::{Call, Server};

    assert!(tokio::runtime::Handle::try_current().is_err());
    let dir = qmp_tests::TempDir::new();
    let name = |_: Call| async { Ok(serde_json::json!({"name": "vm0"})) };
    let server = Server::builder()
        .command("query-name", name)
        .bind_unix(dir.join("a.sock"))
        .unwrap();
    let qmp = Qmp::connect_unix(dir.join("a.sock")).unwrap();
    assert_eq!(
        qmp.query_name().wait().unwrap().name.as_deref(),
        Some("vm0")
    );
    qmp.close().unwrap();

    // `listen` with a listener bound outside any runtime, likewise.
    let listener = qmp_core::Listener::bind_unix(dir.join("b.sock")).unwrap();
    let other = Server::builder().command("query-name", name).build();
    other.listen(listener);
    let qmp = Qmp::connect_unix(dir.join("b.sock")).unwrap();
    assert_eq!(
        qmp.query_name().wait().unwrap().name.as_deref(),
        Some("vm0")
    );
    qmp.close().unwrap();
    drop(server);
}

/// `closed_timeout`: `None` while the connection stays open, the reason once it ends.
#[test]
fn closed_timeout_says_none_while_open_and_the_reason_after() {
    use qmp_core::server::{Call, Server};

    let dir = qmp_tests::TempDir::new();
    let quit = |call: Call| async move {
        call.close_after_reply();
        Ok(serde_json::json!({}))
    };
    let _server = Server::builder()
        .command("quit", quit)
        .bind_unix(dir.join("q.sock"))
        .unwrap();
    let qmp = Qmp::connect_unix(dir.join("q.sock")).unwrap();
    let began = Instant::now();
    assert!(qmp
        .closed_timeout(Duration::from_millis(200))
        .unwrap()
        .is_none());
    assert!(began.elapsed() >= Duration::from_millis(200));
    qmp.quit().wait().unwrap();
    let reason = qmp
        .closed_timeout(Duration::from_secs(10))
        .unwrap()
        .expect("closed after quit");
    assert!(
        matches!(*reason, qmp_core::DisconnectReason::ServerShutDown),
        "{reason:?}"
    );
}
