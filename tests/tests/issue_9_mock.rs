//! Issue 9: the connection life-cycle under real-world faults, against the scripted mock server.
//! Each input of the issue is a test here (the real-QEMU reproductions are in
//! `issue_9_qemu.rs`, the randomized sweep over the whole kind in `issue_9_random.rs`).

use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use qmp_core::{
    Capability, Client, ConnectError, DisconnectReason, EventError, ExecuteError, JsonLimit,
};
use qmp_tests::mock::{MockPeer, MockServer, GREETING, PROBE};
use qmp_tests::{within, TempDir};
use serde_json::{json, Value};

async fn connected(
    builder: qmp_core::ClientBuilder,
) -> (Client, MockPeer<tokio::net::UnixStream>, MockServer) {
    let server = MockServer::new();
    let (client, peer) = tokio::join!(
        builder.connect_unix(server.path()),
        server.accept_handshake()
    );
    (client.expect("connect"), peer, server)
}

fn id_of(req: &qmp_tests::mock::Request) -> u64 {
    req.id
        .as_u64()
        .unwrap_or_else(|| panic!("id is not an integer: {req:?}"))
}

// ---------------------------------------------------------------------------------------------
// 1. Stray output around the handshake
// ---------------------------------------------------------------------------------------------

/// What a monitor still owed an earlier client arrives before the greeting and during the
/// negotiation: replies (one the size of a schema), an error without id, an earlier attempt's
/// negotiation reply, events. All are skipped and counted, and the connection works.
#[tokio::test]
async fn issue_9_stray_output_around_the_handshake_is_skipped_and_counted() {
    within(10, async {
        let server = MockServer::new();
        let serve = async {
            let mut peer = server.accept().await;
            // Before the greeting: a failed attempt's negotiation reply, another client's reply.
            peer.send(&json!({"return": {}, "id": 0})).await;
            peer.send(&json!({"return": {"status": "running"}, "id": "libvirt-42"}))
                .await;
            peer.greet().await;
            let neg = peer.expect("qmp_capabilities").await;
            // During negotiation: the earlier client's big reply, an error without id, an
            // event, an id-less reply, then ours.
            let schema: Vec<Value> = (0..2000)
                .map(|i| json!({"name": format!("t{i}"), "meta-type": "object"}))
                .collect();
            peer.send(&json!({"return": schema, "id": 7})).await;
            peer.error_without_id("JSON parse error, invalid keyword 'x'")
                .await;
            peer.event("RESUME", None).await;
            peer.send(&json!({"return": {}})).await;
            peer.reply(&neg.id, json!({})).await;
            // After negotiation: more of the earlier client's replies, then ours.
            peer.send(&json!({"return": {}, "id": 8})).await;
            let req = peer.expect("query-status").await;
            peer.reply(&req.id, json!({"status": "running", "running": true}))
                .await;
            (peer, neg)
        };
        let client = async {
            let c = Client::connect_unix(server.path())
                .await
                .expect("connect despite stray output");
            let status = c.execute("query-status", ()).await.expect("query-status");
            (c, status)
        };
        let ((client, status), (_peer, neg)) = tokio::join!(client, serve);
        assert_eq!(status["status"], "running");
        let stats = client.stats();
        assert_eq!(stats.stray_during_handshake, 6, "{stats:?}");
        assert_eq!(stats.replies_discarded, 1, "{stats:?}");
        assert_eq!(stats.in_flight, 0);
        // The negotiation id is a random 16-digit number no other client uses.
        let neg_id = id_of(&neg);
        assert_eq!(neg_id.to_string().len(), 16, "{neg_id}");
    })
    .await;
}

/// Every connection uses its own ids: the negotiation's (16 digits) and the commands' (6
/// digits, counting up from a random start) differ between two connections to the same
/// server.
#[tokio::test]
async fn issue_9_ids_are_unique_per_connection() {
    within(10, async {
        let server = MockServer::new();
        let mut seen = Vec::new();
        for _ in 0..2 {
            let serve = async {
                let mut peer = server.accept().await;
                peer.greet().await;
                let neg = peer.expect("qmp_capabilities").await;
                peer.reply(&neg.id, json!({})).await;
                let a = peer.expect("a").await;
                peer.reply(&a.id, json!(1)).await;
                (peer, id_of(&neg), id_of(&a))
            };
            let client = async {
                let c = Client::connect_unix(server.path()).await.unwrap();
                c.execute("a", ()).await.unwrap();
                c
            };
            let (_c, (_peer, neg, a)) = tokio::join!(client, serve);
            assert_eq!(neg.to_string().len(), 16, "{neg}");
            assert_eq!(a.to_string().len(), 6, "{a}");
            seen.push((neg, a));
        }
        assert_ne!(seen[0].0, seen[1].0);
        assert_ne!(seen[0].1, seen[1].1);
    })
    .await;
}

/// A well-formed message that is neither a greeting, a reply nor an event is not stray output
/// but a sign of a server that does not speak QMP: still an error, and it says why.
#[tokio::test]
async fn issue_9_a_non_qmp_first_message_is_still_an_error() {
    within(10, async {
        let server = MockServer::new();
        let (res, _peer) = tokio::join!(Client::connect_unix(server.path()), async {
            let mut peer = server.accept().await;
            peer.send(&json!({"hello": "world"})).await;
            peer
        });
        match res {
            Err(ConnectError::MalformedGreeting { reason, .. }) => {
                assert!(reason.contains("neither a greeting"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 2. Nothing already received is lost because a write failed
// ---------------------------------------------------------------------------------------------

/// A blocking QMP server on its own thread, so that the client's (current-thread) runtime can
/// be kept busy while the server acts.
struct ThreadServer {
    path: std::path::PathBuf,
    _dir: TempDir,
    listener: std::os::unix::net::UnixListener,
}

impl ThreadServer {
    fn new() -> Self {
        let dir = TempDir::new();
        let path = dir.join("thread.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        ThreadServer {
            path,
            _dir: dir,
            listener,
        }
    }

    /// Accepts one client and negotiates; returns the stream and a line reader on it.
    fn accept(
        &self,
    ) -> (
        std::os::unix::net::UnixStream,
        BufReader<std::os::unix::net::UnixStream>,
    ) {
        let (mut stream, _) = self.listener.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        writeln!(stream, "{GREETING}\r").expect("greet");
        let neg = read_request(&mut reader);
        writeln!(stream, "{}\r", json!({"return": {}, "id": neg["id"]})).expect("negotiate");
        (stream, reader)
    }
}

fn read_request(reader: &mut BufReader<std::os::unix::net::UnixStream>) -> Value {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read request");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// The issue's transcript: `quit` is answered, SHUTDOWN sent, the socket closed, all before
/// the client's connection task reads anything; meanwhile another task submits
/// `query-status`, whose write fails. `quit` still returns `Ok`, every subscriber gets
/// SHUTDOWN, the reason is the server's shutdown, and `query-status` was never sent.
#[tokio::test]
async fn issue_9_quit_reply_and_shutdown_survive_a_failed_write() {
    let server = ThreadServer::new();
    let (read_quit, quit_read) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let (closed, closed_rx) = mpsc::channel();
    let path = server.path.clone();
    let thread = std::thread::spawn(move || {
        let (mut stream, mut reader) = server.accept();
        let quit = read_request(&mut reader);
        assert_eq!(quit["execute"], "quit");
        read_quit.send(()).unwrap();
        go_rx.recv().unwrap();
        write!(
            stream,
            "{}\r\n{}\r\n",
            json!({"return": {}, "id": quit["id"]}),
            json!({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}})
        )
        .unwrap();
        drop(reader);
        drop(stream);
        closed.send(()).unwrap();
    });
    within(10, async {
        let client = Client::connect_unix(&path).await.unwrap();
        let mut all = client.subscribe();
        let mut shutdowns = client.subscribe_to(["SHUTDOWN"]);
        let c = client.clone();
        let quit = tokio::spawn(async move { c.execute("quit", ()).await });
        // Let the connection task write `quit` (the server says when it has read it).
        while quit_read.try_recv().is_err() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        go.send(()).unwrap();
        // Busy: the runtime's only thread waits here, so the connection task cannot read.
        closed_rx.recv().unwrap();
        let c = client.clone();
        let status = tokio::spawn(async move { c.execute("query-status", ()).await });

        assert_eq!(quit.await.unwrap().expect("quit returns Ok"), json!({}));
        match status.await.unwrap() {
            Err(e @ ExecuteError::Disconnected { sent: false, .. }) => {
                assert!(!e.was_sent());
                assert!(e.to_string().contains("never sent"), "{e}");
            }
            other => panic!("query-status: {other:?}"),
        }
        for stream in [&mut all, &mut shutdowns] {
            let ev = stream.next().await.unwrap().expect("SHUTDOWN delivered");
            assert_eq!(ev.name(), "SHUTDOWN");
            assert_eq!(ev.data_value()["reason"], "host-qmp-quit");
            assert!(matches!(
                stream.next().await,
                Some(Err(EventError::Disconnected(_)))
            ));
        }
        let reason = client.closed().await;
        assert!(
            matches!(*reason, DisconnectReason::ServerShutDown),
            "{reason}"
        );
        assert!(
            reason.to_string().contains("closed the connection"),
            "{reason}"
        );
        assert_eq!(client.stats().in_flight, 0);
    })
    .await;
    thread.join().unwrap();
}

/// The same without any shutdown notice: the reply the server sent before closing still
/// reaches its caller, the command whose write failed is reported as never sent, and the
/// reason is that the server closed the connection.
#[tokio::test]
async fn issue_9_replies_sent_before_the_close_are_delivered_after_a_failed_write() {
    let server = ThreadServer::new();
    let (read_a, a_read) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let (closed, closed_rx) = mpsc::channel();
    let path = server.path.clone();
    let thread = std::thread::spawn(move || {
        let (mut stream, mut reader) = server.accept();
        let a = read_request(&mut reader);
        read_a.send(()).unwrap();
        go_rx.recv().unwrap();
        write!(
            stream,
            "{}\r\n{}\r\n",
            json!({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "LAST"}),
            json!({"return": {"answer": 42}, "id": a["id"]}),
        )
        .unwrap();
        drop(reader);
        drop(stream);
        closed.send(()).unwrap();
    });
    within(10, async {
        let client = Client::connect_unix(&path).await.unwrap();
        let mut events = client.subscribe();
        let c = client.clone();
        let a = tokio::spawn(async move { c.execute("a", ()).await });
        while a_read.try_recv().is_err() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        go.send(()).unwrap();
        closed_rx.recv().unwrap();
        let c = client.clone();
        let b = tokio::spawn(async move { c.execute("b", ()).await });
        assert_eq!(a.await.unwrap().unwrap(), json!({"answer": 42}));
        let b = b.await.unwrap().unwrap_err();
        assert!(
            matches!(b, ExecuteError::Disconnected { sent: false, .. }),
            "{b:?}"
        );
        assert_eq!(events.next().await.unwrap().unwrap().name(), "LAST");
        assert!(matches!(
            *client.closed().await,
            DisconnectReason::ServerClosed
        ));
    })
    .await;
    thread.join().unwrap();
}

/// A command cut off in the middle (the server stopped reading, then closed) counts as never
/// sent: the server cannot have parsed it without its closing brace. A command written
/// completely before it counts as sent.
#[tokio::test]
async fn issue_9_a_command_cut_off_before_its_end_was_never_sent() {
    within(20, async {
        let (client, mut peer, _s) = connected(Client::builder()).await;
        let c = client.clone();
        let small = tokio::spawn(async move { c.execute("small", ()).await });
        peer.expect("small").await;
        // The server reads nothing more; 8 MiB cannot fit into the socket buffers.
        let c = client.clone();
        let big =
            tokio::spawn(
                async move { c.execute("big", json!({"data": "x".repeat(8 << 20)})).await },
            );
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(peer);
        match small.await.unwrap() {
            Err(ExecuteError::Disconnected { sent: true, .. }) => {}
            other => panic!("small: {other:?}"),
        }
        match big.await.unwrap() {
            Err(ExecuteError::Disconnected { sent: false, .. }) => {}
            other => panic!("big: {other:?}"),
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 3. A clean `quit` ends cleanly
// ---------------------------------------------------------------------------------------------

/// QEMU often resets the socket as it exits after `quit` (it leaves the client's later input
/// unread). After the `quit` reply, or after a SHUTDOWN event alone, that is the orderly end;
/// without either it is still an I/O error.
#[tokio::test]
async fn issue_9_a_reset_after_quit_or_shutdown_is_an_orderly_end() {
    for notice in ["quit", "SHUTDOWN", "SHUTDOWN then RESUME", "none"] {
        within(10, async {
            let (client, mut peer, _s) = connected(Client::builder()).await;
            let c = client.clone();
            let first = tokio::spawn(async move {
                let cmd = if notice == "quit" { "quit" } else { "stop" };
                c.execute(cmd, ()).await
            });
            let req = peer.next_request().await.unwrap();
if notice.starts_with("SHUTDOWN") {
                peer.event(
                    "SHUTDOWN",
                    Some(json!({"guest": true, "reason": "guest-shutdown"})),
                )
                .await;
            }
            if notice.ends_with("RESUME") {
                // -no-shutdown: the guest was reset and runs again.
                peer.event("RESUME", None).await;
            }
            peer.reply(&req.id, json!({})).await;
            first.await.unwrap().unwrap();
            // The client writes another command, which the server never reads: closing with
            // unread input resets the connection.
            let c = client.clone();
            let later = tokio::spawn(async move { c.execute("query-status", ()).await });
            while client.stats().commands_sent < 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(peer);
            let reason = client.closed().await;
            match notice {
                "none" | "SHUTDOWN then RESUME" => assert!(
                    matches!(&*reason, DisconnectReason::Io(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
                    "{reason}"
                ),
                _ => assert!(matches!(*reason, DisconnectReason::ServerShutDown), "{notice}: {reason}"),
            }
            assert!(later.await.unwrap().unwrap_err().is_disconnected());
        })
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// 4. A command only ever receives its own reply
// ---------------------------------------------------------------------------------------------

/// The issue's transcript: two pipelined calls, two errors without id (the first call's text
/// was refused), then the second call's reply. The second call gets its own reply; the first
/// fails as unanswered, carrying the errors; the probe sent after the first error is answered
/// and consumed.
#[tokio::test]
async fn issue_9_errors_without_id_never_reach_a_later_command() {
    within(10, async {
        let (client, mut peer, _s) = connected(Client::builder()).await;
        let calls = async {
            tokio::join!(
                client.execute("qom-list", json!({"path": "/"})),
                client.execute("query-status", ())
            )
        };
        let serve = async {
            let first = peer.expect("qom-list").await;
            let second = peer.expect("query-status").await;
            peer.error_without_id("JSON nesting depth limit exceeded")
                .await;
            peer.error_without_id("JSON parse error, expecting value")
                .await;
            peer.reply(&second.id, json!({"status": "running", "running": true}))
                .await;
            let probe = peer.answer_probe().await;
            assert!(id_of(&probe) > id_of(&second) && id_of(&second) > id_of(&first));
        };
        let ((first, second), ()) = tokio::join!(calls, serve);
        assert_eq!(
            second.unwrap(),
            json!({"status": "running", "running": true})
        );
        match first {
            Err(
                ref e @ ExecuteError::Unanswered {
                    ref server_error,
                    errors_without_id,
                    ..
                },
            ) => {
                let held = server_error.as_ref().expect("the held error");
                assert_eq!(held.desc, "JSON nesting depth limit exceeded");
                assert_eq!(errors_without_id, 2);
                assert!(e.was_sent());
                let text = e.to_string();
                assert!(
                    text.contains("answered later commands but never this one"),
                    "{text}"
                );
                assert!(text.contains("JSON nesting depth limit exceeded"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        let stats = client.stats();
        assert_eq!(stats.replies_without_id, 2, "{stats:?}");
        assert_eq!(stats.commands_unanswered, 1, "{stats:?}");
        assert_eq!(stats.sync_probes, 1, "{stats:?}");
        assert_eq!(stats.in_flight, 0, "{stats:?}");
        // The connection is in step afterwards.
        let call = client.execute("again", ());
        let serve = async {
            let r = peer.expect("again").await;
            peer.reply(&r.id, json!("fresh")).await;
        };
        let (res, ()) = tokio::join!(call, serve);
        assert_eq!(res.unwrap(), json!("fresh"));
        assert_eq!(client.stats().commands_unanswered, 1);
    })
    .await;
}

/// An error without id that was about something else (an earlier client's input): the command
/// it was held for is answered after all and gets its own reply; the error is dropped and
/// counted, and the probe's reply is consumed.
#[tokio::test]
async fn issue_9_a_stray_error_without_id_is_dropped() {
    within(10, async {
        let (client, mut peer, _s) = connected(Client::builder()).await;
        let call = client.execute("a", ());
        let serve = async {
            let a = peer.expect("a").await;
            peer.error_without_id("JSON parse error, stray 'x'").await;
            peer.reply(&a.id, json!("mine")).await;
            peer.answer_probe().await;
        };
        let (res, ()) = tokio::join!(call, serve);
        assert_eq!(res.unwrap(), json!("mine"));
        let stats = client.stats();
        assert_eq!(stats.replies_without_id, 1);
        assert_eq!(stats.commands_unanswered, 0);
        // An error without id while nothing is waiting: dropped at once, no probe.
        peer.error_without_id("JSON parse error, stray 'y'").await;
        while client.stats().replies_without_id < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let call = client.execute("b", ());
        let serve = async {
            let b = peer.expect("b").await;
            peer.reply(&b.id, json!("b")).await;
        };
        let (res, ()) = tokio::join!(call, serve);
        assert_eq!(res.unwrap(), json!("b"));
        let stats = client.stats();
        assert_eq!(stats.replies_without_id, 2, "{stats:?}");
        assert_eq!(stats.sync_probes, 1, "{stats:?}");
        assert_eq!(stats.in_flight, 0, "{stats:?}");
    })
    .await;
}

/// The only command waiting is refused with an error without id and nothing is sent after it:
/// the probe's reply settles it at once instead of leaving it waiting forever (also with oob,
/// where the refused command would otherwise never be answered).
#[tokio::test]
async fn issue_9_a_refused_last_command_fails_instead_of_waiting_forever() {
    for oob in [false, true] {
        within(10, async {
            let caps = if oob { vec![Capability::Oob] } else { vec![] };
            let (client, mut peer, _s) = connected(Client::builder().capabilities(caps)).await;
            let call = client.execute("refused", ());
            let serve = async {
                peer.expect("refused").await;
                peer.error_without_id("JSON token count limit exceeded")
                    .await;
                peer.answer_probe().await;
            };
            let (res, ()) = tokio::join!(call, serve);
            match res {
                Err(ExecuteError::Unanswered {
                    server_error: Some(e),
                    ..
                }) => {
                    assert_eq!(e.desc, "JSON token count limit exceeded")
                }
                other => panic!("oob {oob}: {other:?}"),
            }
        })
        .await;
    }
}

/// Without oob QEMU answers in order: a server that skips a command (no error at all) fails it
/// as soon as a later command is answered, without waiting for a timeout.
#[tokio::test]
async fn issue_9_a_skipped_command_fails_when_a_later_one_is_answered() {
    within(10, async {
        let (client, mut peer, _s) = connected(Client::builder()).await;
        let calls = async {
            tokio::join!(
                client.execute("skipped", ()),
                client.execute("answered", ())
            )
        };
        let serve = async {
            peer.expect("skipped").await;
            let answered = peer.expect("answered").await;
            peer.reply(&answered.id, json!("ok")).await;
        };
        let ((skipped, answered), ()) = tokio::join!(calls, serve);
        assert_eq!(answered.unwrap(), json!("ok"));
        match skipped {
            Err(ExecuteError::Unanswered {
                server_error: None,
                errors_without_id: 0,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(client.stats().in_flight, 0);
    })
    .await;
}

/// With oob, an out-of-band reply may overtake in-band commands (no failure), an in-band reply
/// overtakes older out-of-band commands it was read after, and a later in-band reply overtakes
/// older in-band commands.
#[tokio::test]
async fn issue_9_overtaking_with_oob_follows_qemus_order() {
    within(10, async {
        let (client, mut peer, _s) =
            connected(Client::builder().capabilities([Capability::Oob])).await;
        let calls = async {
            tokio::join!(
                client.execute("slow-in-band", ()),
                client
                    .request("oob-answered", ())
                    .oob()
                    .decode::<serde_json::Value>(),
                client
                    .request("oob-skipped", ())
                    .oob()
                    .decode::<serde_json::Value>(),
                client.execute("in-band-skipped", ()),
                client.execute("in-band-answered", ()),
            )
        };
        let serve = async {
            let slow = peer.expect("slow-in-band").await;
            let oob_answered = peer.next_request().await.unwrap();
            let _oob_skipped = peer.next_request().await.unwrap();
            let _skipped = peer.expect("in-band-skipped").await;
            let answered = peer.expect("in-band-answered").await;
            assert!(oob_answered.oob);
            // The oob reply jumps the in-band queue: slow-in-band must not fail for that.
            peer.reply(&oob_answered.id, json!("oob")).await;
            peer.reply(&slow.id, json!("slow")).await;
            // Skips one oob and one in-band command.
            peer.reply(&answered.id, json!("answered")).await;
        };
        let ((slow, oob_answered, oob_skipped, skipped, answered), ()) = tokio::join!(calls, serve);
        assert_eq!(slow.unwrap(), json!("slow"));
        assert_eq!(oob_answered.unwrap(), json!("oob"));
        assert_eq!(answered.unwrap(), json!("answered"));
        assert!(
            matches!(oob_skipped, Err(ExecuteError::Unanswered { .. })),
            "{oob_skipped:?}"
        );
        assert!(
            matches!(skipped, Err(ExecuteError::Unanswered { .. })),
            "{skipped:?}"
        );
        assert_eq!(client.stats().commands_unanswered, 2);
        assert_eq!(client.stats().in_flight, 0);
    })
    .await;
}

/// With oob, QEMU's in-band queue holds 8 commands. A probe needed while 8 are in flight waits
/// for a free slot and then goes before the commands held back, so it settles exactly the
/// commands sent before it.
#[tokio::test]
async fn issue_9_the_probe_respects_the_oob_in_band_limit() {
    within(10, async {
        let (client, mut peer, _s) =
            connected(Client::builder().capabilities([Capability::Oob])).await;
        let mut calls = Vec::new();
        for i in 0..10 {
            let c = client.clone();
            calls.push(tokio::spawn(async move {
                c.execute("cmd", json!({"i": i})).await
            }));
        }
        let mut first = Vec::new();
        for _ in 0..8 {
            first.push(peer.expect("cmd").await);
        }
        // The first command's text was refused; QEMU answers the other 7 in order.
        peer.error_without_id("JSON parse error, expecting value")
            .await;
        for req in &first[1..] {
            peer.reply(&req.id, req.arguments["i"].clone()).await;
        }
        // A slot freed: the probe comes before the two held commands.
        let probe = peer.answer_probe().await;
        let ninth = peer.expect("cmd").await;
        let tenth = peer.expect("cmd").await;
        assert!(id_of(&probe) < id_of(&ninth));
        for req in [&ninth, &tenth] {
            peer.reply(&req.id, req.arguments["i"].clone()).await;
        }
        let refused = first[0].arguments["i"].as_u64().unwrap() as usize;
        for (i, c) in calls.into_iter().enumerate() {
            match c.await.unwrap() {
                Err(ExecuteError::Unanswered {
                    server_error: Some(e),
                    ..
                }) if i == refused => {
                    assert_eq!(e.desc, "JSON parse error, expecting value")
                }
                Ok(v) if i != refused => assert_eq!(v, json!(i), "call {i}"),
                other => panic!("call {i}: {other:?}"),
            }
        }
    })
    .await;
}

/// Cancelled calls are settled the same way (silently), and `close` waits for the probe's
/// reply before it ends: nothing stays pending.
#[tokio::test]
async fn issue_9_cancelled_calls_and_close_with_a_probe_in_flight() {
    within(10, async {
        let (client, mut peer, _s) = connected(Client::builder()).await;
        let cancelled = client.execute("cancelled", ());
        let (req, _) = tokio::join!(peer.expect("cancelled"), async {
            let _ = tokio::time::timeout(Duration::from_millis(50), cancelled).await;
        });
        let c = client.clone();
        let kept = tokio::spawn(async move { c.execute("kept", ()).await });
        let kept_req = peer.expect("kept").await;
        peer.error_without_id("JSON parse error, stray '?'").await;
        let probe = peer.expect(PROBE).await;
        // The cancelled command is skipped: answering `kept` settles it.
        peer.reply(&kept_req.id, json!("kept")).await;
        assert_eq!(kept.await.unwrap().unwrap(), json!("kept"));
        assert!(id_of(&req) < id_of(&kept_req));
        let closer = {
            let c = client.clone();
            tokio::spawn(async move { c.close().await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !closer.is_finished(),
            "close must wait for the probe's reply"
        );
        peer.reply_error(
            &probe.id,
            "CommandNotFound",
            "The command qmp-rs-sync has not been found",
        )
        .await;
        closer.await.unwrap();
        assert!(matches!(
            *client.closed().await,
            DisconnectReason::ClientClosed
        ));
        let stats = client.stats();
        assert_eq!(stats.in_flight, 0, "{stats:?}");
        assert_eq!(stats.commands_unanswered, 1, "{stats:?}");
    })
    .await;
}

/// The pending table forgets calls whose callers gave up once it grows past 1024 entries; the
/// probe (which nobody waits for) must survive that, or no probe would ever be sent again.
#[tokio::test]
async fn issue_9_pruning_keeps_the_probe() {
    within(30, async {
        let (client, mut peer, _s) = connected(Client::builder()).await;
        let c = client.clone();
        let a = tokio::spawn(async move { c.execute("a", ()).await });
        let a_req = peer.expect("a").await;
        peer.error_without_id("JSON parse error, stray '#'").await;
        let probe = peer.expect(PROBE).await;
        // 1,100 calls given up at once: the table is pruned on the way.
        for i in 0..1100 {
            let call = client.execute("gone", json!({ "i": i }));
            let _ = tokio::time::timeout(Duration::ZERO, call).await;
        }
        for _ in 0..1100 {
            peer.expect("gone").await;
        }
        // In order: `a`, then the probe.
        peer.reply(&a_req.id, json!("a")).await;
        peer.reply_error(
            &probe.id,
            "CommandNotFound",
            "The command qmp-rs-sync has not been found",
        )
        .await;
        assert_eq!(a.await.unwrap().unwrap(), json!("a"));
        // The next error without id gets a probe of its own.
        let c = client.clone();
        let b = tokio::spawn(async move { c.execute("b", ()).await });
        let b_req = peer.expect("b").await;
        peer.error_without_id("JSON parse error, stray '%'").await;
        // In order: `b`, then the probe sent after the error.
        let probe = peer.expect(PROBE).await;
        peer.reply(&b_req.id, json!("b")).await;
        peer.reply_error(
            &probe.id,
            "CommandNotFound",
            "The command qmp-rs-sync has not been found",
        )
        .await;
        assert_eq!(b.await.unwrap().unwrap(), json!("b"));
        assert_eq!(client.stats().sync_probes, 2);
        assert_eq!(client.stats().in_flight, 0);
    })
    .await;
}

/// What QEMU's JSON parser rejects is refused before sending: nothing reaches the server, the
/// error names the limit, and the command counts as never sent.
#[tokio::test]
async fn issue_9_input_qemu_cannot_parse_is_refused_before_sending() {
    within(20, async {
        let (client, mut peer, _s) = connected(Client::builder()).await;
        let mut deep = json!("leaf");
        for _ in 0..1100 {
            deep = json!([deep]);
        }
        let err = client
            .execute("qom-list", json!({"path": deep}))
            .await
            .unwrap_err();
        match &err {
            ExecuteError::ExceedsJsonLimit {
                command,
                limit: JsonLimit::NestingDepth { depth, limit },
            } => {
                assert_eq!(command, "qom-list");
                assert_eq!((*depth, *limit), (1102, 1024));
            }
            other => panic!("{other:?}"),
        }
        assert!(!err.was_sent());
        assert!(err.to_string().contains("1024"), "{err}");
        let err = client
            .execute("qom-get", json!({"path": "/\u{FFFF}", "property": "type"}))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ExecuteError::ExceedsJsonLimit {
                    limit: JsonLimit::InvalidCharacter { code_point: 0xFFFF },
                    ..
                }
            ),
            "{err:?}"
        );
        let err = client
            .execute_without_reply("x", json!({"d": deep}))
            .unwrap_err();
        assert!(
            matches!(err, ExecuteError::ExceedsJsonLimit { .. }),
            "{err:?}"
        );
        // Nothing was sent: the next request the server sees is this one.
        let call = client.execute("next", ());
        let serve = async {
            let r = peer.next_request().await.unwrap();
            assert_eq!(r.command, "next");
            peer.reply(&r.id, json!(1)).await;
        };
        let (res, ()) = tokio::join!(call, serve);
        assert_eq!(res.unwrap(), json!(1));
        assert_eq!(client.stats().commands_sent, 1);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 5. Full listen queue
// ---------------------------------------------------------------------------------------------

/// A socket listening with a backlog of 1 (as QEMU's) and accepting nobody: after two queued
/// connections, `connect(2)` fails with EAGAIN. Without `wait_for_server` the error says the
/// listen queue is full; with it the client retries until the server accepts.
#[tokio::test]
async fn issue_9_a_full_listen_queue_is_retried_or_explained() {
    within(20, async {
        let dir = TempDir::new();
        let path = dir.join("backlog.sock");
        let socket = tokio::net::UnixSocket::new_stream().unwrap();
        socket.bind(&path).unwrap();
        let listener = socket.listen(1).unwrap();
        let mut queued = Vec::new();
        let err = loop {
            match tokio::net::UnixStream::connect(&path).await {
                Ok(s) => queued.push(s),
                Err(e) => break e,
            }
            assert!(queued.len() < 10, "the queue never filled");
        };
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{err}");

        let err = Client::connect_unix(&path).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("listen queue is full"), "{msg}");
        assert!(msg.contains("wait_for_server"), "{msg}");
        assert!(!msg.contains("is QEMU running"), "{msg}");

        // The server starts accepting after 300 ms: the queued connections are served (and
        // closed), then the waiting client's.
        let server = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(queued);
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let mut peer = MockPeer::new_unix(stream);
                peer.greet().await;
                if let Some(req) = peer.next_request().await {
                    peer.reply(&req.id, json!({})).await;
                    let r = peer.expect("query-status").await;
                    peer.reply(&r.id, json!({"status": "running"})).await;
                    return peer;
                }
            }
        });
        let start = Instant::now();
        let client = Client::builder()
            .wait_for_server(true)
            .timeout(Some(Duration::from_secs(10)))
            .connect_unix(&path)
            .await
            .expect("connects once the queue drains");
        assert!(
            start.elapsed() >= Duration::from_millis(250),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            client.execute("query-status", ()).await.unwrap()["status"],
            "running"
        );
        let _peer = server.await.unwrap();
    })
    .await;
}

/// A missing socket or a refused connection, without `wait_for_server`: the error says that
/// `wait_for_server` and accept mode exist.
#[tokio::test]
async fn issue_9_missing_or_refusing_sockets_point_to_wait_for_server() {
    within(10, async {
        let dir = TempDir::new();
        let missing = Client::connect_unix(dir.join("missing.sock"))
            .await
            .unwrap_err();
        // A socket file nobody listens on any more refuses connections.
        let stale = dir.join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        let refused = Client::connect_unix(&stale).await.unwrap_err();
        for err in [missing, refused] {
            let msg = err.to_string();
            assert!(msg.contains("is QEMU running"), "{msg}");
            assert!(msg.contains("wait_for_server(true)"), "{msg}");
            assert!(msg.contains("accept mode"), "{msg}");
        }
    })
    .await;
}
