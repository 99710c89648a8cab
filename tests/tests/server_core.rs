//! Our client (`qmp_core::Client`) against our server (`qmp_core::server`): greeting,
//! negotiation, commands, errors, events and their order, sessions, out-of-band commands,
//! closing and shutdown.

// Test code: unwrapping our own fixtures' results is fine.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use qmp_core::server::{Call, EmitError, Server, ServerBuilder};
use qmp_core::{Capability, Client, DisconnectReason, QmpError, Version};
use qmp_tests::wire::RawPeer;
use qmp_tests::{within, TempDir};
use serde_json::{json, Value};
use tokio::sync::Notify;

async fn status(_: Call) -> Result<Value, QmpError> {
    Ok(json!({"status": "running", "running": true}))
}

/// A server on a fresh unix socket; the directory lives as long as the returned guard.
fn serve(builder: ServerBuilder) -> (Server, std::path::PathBuf, TempDir) {
    let dir = TempDir::new();
    let path = dir.join("qmp.sock");
    let server = builder.bind_unix(&path).unwrap();
    (server, path, dir)
}

#[tokio::test]
async fn greeting_and_negotiation() {
    within(30, async {
        let (server, path, _dir) = serve(
            Server::builder()
                .version(Version::new(9, 1, 3), "v9.1.3-test")
                .command("query-status", status),
        );
        // Without oob.
        let client = Client::connect_unix(&path).await.unwrap();
        assert_eq!(client.greeting().version, Version::new(9, 1, 3));
        assert_eq!(client.greeting().package, "v9.1.3-test");
        assert_eq!(client.greeting().capabilities, vec![Capability::Oob]);
        assert!(client.capabilities().is_empty());
        let session = server.wait_for_sessions(1).await.remove(0);
        assert!(session.is_negotiated());
        assert!(!session.oob_enabled());
        assert!(session.peer().starts_with("unix socket"), "{}", session.peer());
        client.close().await;
        session.closed().await;

        // With oob.
        let client = Client::builder()
            .capabilities([Capability::Oob])
            .connect_unix(&path)
            .await
            .unwrap();
        assert_eq!(client.capabilities(), [Capability::Oob]);
        let session = server.wait_for_sessions(1).await.remove(0);
        assert!(session.oob_enabled());
        client.close().await;
        session.closed().await;

        // A server offering nothing: our client does not ask, a raw client that asks is refused.
        server.shutdown().await;
        let (_server, path, _dir2) = serve(Server::builder().capabilities([]));
        let client = Client::builder()
            .capabilities([Capability::Oob])
            .connect_unix(&path)
            .await
            .unwrap();
        assert!(client.greeting().capabilities.is_empty());
        assert!(client.capabilities().is_empty());
        client.close().await;
        let mut raw = RawPeer::connect(&path).await;
        assert!(raw.line(10).await.unwrap().ends_with("\"capabilities\": []}}"));
        raw.send(b"{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\", \"oob\"]}, \"id\": 1}\n").await;
        assert_eq!(
            raw.line(10).await.unwrap(),
            r#"{"id": 1, "error": {"class": "GenericError", "desc": "Capability oob, oob not available"}}"#
        );
    })
    .await;
}

#[tokio::test]
async fn commands_results_and_errors() {
    within(30, async {
        let (_server, path, _dir) = serve(
            Server::builder()
                .command("query-status", status)
                .command("echo", |call: Call| async move {
                    Ok(Value::Object(call.arguments().clone()))
                })
                .command("typed", |call: Call| async move {
                    #[derive(serde::Deserialize)]
                    struct Args {
                        size: u64,
                    }
                    let args: Args = call.decode()?;
                    Ok(json!(args.size * 2))
                })
                .command("eject", |call: Call| async move {
                    let device = call.arguments()["device"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    Err(QmpError::new(
                        "DeviceNotFound",
                        format!("Device '{device}' not found"),
                    ))
                })
                .command("panics", |_: Call| async move {
                    if true {
                        panic!("handler bug");
                    }
                    Ok(json!({}))
                }),
        );
        let client = Client::connect_unix(&path).await.unwrap();
        assert_eq!(
            client.execute("query-status", ()).await.unwrap(),
            json!({"status": "running", "running": true})
        );
        let args = json!({"s": "é😀\"\\\n", "n": [1, -2, 2.5, null, true], "o": {"k": {}}});
        assert_eq!(client.execute("echo", &args).await.unwrap(), args);
        assert_eq!(
            client.execute("typed", json!({"size": 21})).await.unwrap(),
            json!(42)
        );
        let e = client
            .execute("typed", json!({"size": "x"}))
            .await
            .unwrap_err();
        assert!(e.qmp_error().unwrap().is_generic(), "{e}");
        let e = client
            .execute("eject", json!({"device": "cd0"}))
            .await
            .unwrap_err();
        let q = e.qmp_error().unwrap();
        assert_eq!(
            (q.class.as_str(), q.desc.as_str()),
            ("DeviceNotFound", "Device 'cd0' not found")
        );
        let e = client.execute("nope", ()).await.unwrap_err();
        let q = e.qmp_error().unwrap();
        assert!(q.is_command_not_found());
        assert_eq!(q.desc, "The command nope has not been found");
        // A panicking handler costs its command, not the session.
        let e = client.execute("panics", ()).await.unwrap_err();
        assert!(e.qmp_error().unwrap().desc.contains("handler bug"), "{e}");
        assert!(client.execute("query-status", ()).await.is_ok());
        // qmp_capabilities again is refused, as by QEMU.
        let e = client.execute("qmp_capabilities", ()).await.unwrap_err();
        assert_eq!(
            e.qmp_error().unwrap().desc,
            "Capabilities negotiation is already complete, command ignored"
        );
        // 1000 pipelined commands, each answered with its own reply.
        let calls = (0..1000).map(|i| {
            let client = client.clone();
            async move { client.execute("echo", json!({"i": i})).await.unwrap()["i"].as_i64() }
        });
        let results = futures_util::future::join_all(calls).await;
        assert!(results
            .iter()
            .enumerate()
            .all(|(i, r)| *r == Some(i as i64)));
    })
    .await;
}

#[tokio::test]
async fn runtime_registration_and_fallback() {
    within(30, async {
        let (server, path, _dir) = serve(Server::builder());
        let client = Client::connect_unix(&path).await.unwrap();
        assert!(client.execute("late", ()).await.is_err());
        server.register("late", |_: Call| async { Ok(json!("here")) });
        assert_eq!(client.execute("late", ()).await.unwrap(), json!("here"));
        server.set_fallback(Some(Box::new(|call: Call| async move {
            Ok(json!({"fallback": call.name()}))
        })));
        assert_eq!(
            client.execute("anything", ()).await.unwrap(),
            json!({"fallback": "anything"})
        );
        assert!(server.unregister("late"));
        assert_eq!(
            client.execute("late", ()).await.unwrap(),
            json!({"fallback": "late"})
        );
        server.set_fallback(None);
        assert!(client.execute("late", ()).await.is_err());
    })
    .await;
}

#[tokio::test]
async fn events_around_replies_in_order() {
    within(30, async {
        let (server, path, _dir) = serve(
            Server::builder()
                .command("stop", |call: Call| async move {
                    call.emit("BEFORE", json!({"n": 1})).await.unwrap();
                    call.emit_after_reply("STOP", None);
                    call.emit_after_reply("AFTER", json!({"n": 2}));
                    Ok(json!({}))
                })
                .command("query-status", status),
        );
        let client = Client::connect_unix(&path).await.unwrap();
        let mut events = client.subscribe();
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        client.execute("stop", ()).await.unwrap();
        // The raw wire order: event, reply, events.
        let mut raw = RawPeer::connect(&path).await;
        // (one session at a time: the raw client waits until ours leaves)
        let names: Vec<String> = {
            let mut names = Vec::new();
            for _ in 0..3 {
                let ev = events.next().await.unwrap().unwrap();
                let t = ev.timestamp().to_system_time().unwrap();
                let t = t.duration_since(UNIX_EPOCH).unwrap();
                assert!(
                    t + Duration::from_secs(1) >= before && t <= before + Duration::from_secs(30)
                );
                names.push(ev.name().to_string());
            }
            names
        };
        assert_eq!(names, ["BEFORE", "STOP", "AFTER"]);
        // Broadcast and per-session events.
        assert_eq!(server.broadcast("RESUME", None).await, 1);
        let session = server.sessions().remove(0);
        session.emit("RESET", json!({"guest": true})).await.unwrap();
        assert_eq!(events.next().await.unwrap().unwrap().name(), "RESUME");
        let reset = events.next().await.unwrap().unwrap();
        assert_eq!(reset.data_value(), json!({"guest": true}));
        client.close().await;
        session.closed().await;
        assert_eq!(session.emit("X", None).await, Err(EmitError::Closed));

        raw.line(10).await.unwrap(); // greeting, now that the first client left
                                     // No events before negotiation.
        let pending = server.wait_for_sessions(1).await.remove(0);
        assert_eq!(
            pending.try_emit("EARLY", None),
            Err(EmitError::NotNegotiated)
        );
        assert_eq!(server.broadcast("EARLY", None).await, 0);
        raw.send(b"{\"execute\": \"qmp_capabilities\"}\n{\"execute\": \"stop\", \"id\": 1}\n")
            .await;
        assert_eq!(raw.line(10).await.unwrap(), "{\"return\": {}}");
        let lines = [
            raw.line(10).await.unwrap(),
            raw.line(10).await.unwrap(),
            raw.line(10).await.unwrap(),
            raw.line(10).await.unwrap(),
        ];
        assert!(
            lines[0].contains("\"event\": \"BEFORE\", \"data\": {\"n\": 1}}"),
            "{lines:?}"
        );
        assert_eq!(lines[1], "{\"return\": {}, \"id\": 1}");
        assert!(lines[2].ends_with("\"event\": \"STOP\"}"), "{lines:?}");
        assert!(
            lines[3].ends_with("\"event\": \"AFTER\", \"data\": {\"n\": 2}}"),
            "{lines:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_at_a_time_like_qemu() {
    within(30, async {
        let (server, path, _dir) = serve(Server::builder().command("query-status", status));
        let first = Client::connect_unix(&path).await.unwrap();
        // The second connects (the kernel queues it) but gets no greeting meanwhile.
        let second = tokio::spawn({
            let path = path.clone();
            async move { Client::connect_unix(&path).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !second.is_finished(),
            "a second client was greeted while the first was served"
        );
        assert_eq!(server.sessions().len(), 1);
        first.close().await;
        let second = second.await.unwrap().unwrap();
        assert!(second.execute("query-status", ()).await.is_ok());
    })
    .await;
}

/// One session at a time across all of a server's listeners: a client on either is served
/// when nobody else is, and waits for its greeting while someone is (a slot held by one
/// listener's idle accept loop used to starve the other listener).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_at_a_time_across_two_listeners() {
    within(30, async {
        let (server, path, _dir) = serve(Server::builder().command("query-status", status));
        server.listen(qmp_core::Listener::bind_tcp("127.0.0.1:0").await.unwrap());
        let addr = server.local_addr().unwrap();
        // Nobody on the unix socket: a TCP client is served.
        let tcp = within(5, Client::connect_tcp(addr)).await.unwrap();
        assert!(tcp.execute("query-status", ()).await.is_ok());
        // While it is, a unix client waits.
        let unix = tokio::spawn({
            let path = path.clone();
            async move { Client::connect_unix(&path).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !unix.is_finished(),
            "a second client was greeted on the other listener"
        );
        assert_eq!(server.sessions().len(), 1);
        tcp.close().await;
        let unix = within(5, unix).await.unwrap().unwrap();
        assert!(unix.execute("query-status", ()).await.is_ok());
        // And the other way round.
        let tcp = tokio::spawn(async move { Client::connect_tcp(addr).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !tcp.is_finished(),
            "a second client was greeted on the other listener"
        );
        unix.close().await;
        let tcp = within(5, tcp).await.unwrap().unwrap();
        assert!(tcp.execute("query-status", ()).await.is_ok());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_clients() {
    within(60, async {
        let (server, path, _dir) = serve(
            Server::builder()
                .max_sessions(0)
                .command("whoami", |call: Call| async move {
                    Ok(json!(call.session().id()))
                }),
        );
        let clients = (0..20).map(|_| {
            let path = path.clone();
            tokio::spawn(async move {
                let client = Client::connect_unix(&path).await.unwrap();
                let me = client.execute("whoami", ()).await.unwrap();
                for _ in 0..200 {
                    assert_eq!(client.execute("whoami", ()).await.unwrap(), me);
                }
                client
            })
        });
        let clients: Vec<Client> = futures_util::future::join_all(clients)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(server.sessions().len(), 20);
        assert_eq!(server.broadcast("PING", None).await, 20);
        for client in &clients {
            client.close().await;
        }
        server.shutdown().await;
        assert!(server.sessions().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_band_in_order_and_oob_overtakes_a_stuck_command() {
    within(30, async {
        let release = Arc::new(Notify::new());
        let finished = Arc::new(AtomicU64::new(0));
        let (r, f) = (release.clone(), finished.clone());
        let (_server, path, _dir) = serve(
            Server::builder()
                .command("stuck", move |_: Call| {
                    let r = r.clone();
                    async move {
                        r.notified().await;
                        Ok(json!("released"))
                    }
                })
                .command("sleep", move |call: Call| {
                    let f = f.clone();
                    async move {
                        let ms = call.arguments()["ms"].as_u64().unwrap_or(0);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        Ok(json!(f.fetch_add(1, Ordering::SeqCst)))
                    }
                })
                .oob_command("ping", |call: Call| async move {
                    assert!(call.is_oob());
                    Ok(json!("pong"))
                }),
        );
        let client = Client::builder()
            .capabilities([Capability::Oob])
            .connect_unix(&path)
            .await
            .unwrap();
        // In-band commands run one at a time: replies in order although later ones are
        // shorter.
        let calls = [50, 30, 10, 0].map(|ms| client.execute("sleep", json!({"ms": ms})));
        let results = futures_util::future::join_all(calls).await;
        let order: Vec<Value> = results.into_iter().map(Result::unwrap).collect();
        assert_eq!(order, [json!(0), json!(1), json!(2), json!(3)]);

        // exec-oob overtakes an in-band command that is stuck.
        let stuck = tokio::spawn({
            let client = client.clone();
            async move { client.execute("stuck", ()).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t = Instant::now();
        assert_eq!(
            client
                .request("ping", ())
                .oob()
                .decode::<serde_json::Value>()
                .await
                .unwrap(),
            json!("pong")
        );
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(!stuck.is_finished());
        // In-band work queued behind the stuck one waits; exec-oob of an in-band command is
        // refused as by QEMU.
        let e = client
            .request("sleep", ())
            .oob()
            .decode::<serde_json::Value>()
            .await
            .unwrap_err();
        assert_eq!(
            e.qmp_error().unwrap().desc,
            "The command sleep does not support OOB"
        );
        release.notify_one();
        assert_eq!(stuck.await.unwrap().unwrap(), json!("released"));
    })
    .await;
}

#[tokio::test]
async fn quit_closes_after_reply_and_event() {
    within(30, async {
        let (server, path, _dir) =
            serve(Server::builder().command("quit", |call: Call| async move {
                call.emit_after_reply(
                    "SHUTDOWN",
                    json!({"guest": false, "reason": "host-qmp-quit"}),
                );
                call.close_after_reply();
                Ok(json!({}))
            }));
        let client = Client::connect_unix(&path).await.unwrap();
        let mut events = client.subscribe_to(["SHUTDOWN"]);
        client.execute("quit", ()).await.unwrap();
        let shutdown = events.next().await.unwrap().unwrap();
        assert_eq!(shutdown.data_value()["reason"], "host-qmp-quit");
        // After `quit` and SHUTDOWN the client names the end a shutdown.
        assert!(matches!(
            *client.closed().await,
            DisconnectReason::ServerShutDown
        ));
        assert!(events.next().await.unwrap().is_err());
        // The server itself goes on.
        let again = Client::connect_unix(&path).await.unwrap();
        assert!(again.execute("nope", ()).await.is_err());
        again.close().await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn session_close_and_server_shutdown() {
    within(30, async {
        let dropped = Arc::new(AtomicBool::new(false));
        let d = dropped.clone();
        let (server, path, _dir) = serve(Server::builder().max_sessions(0).command(
            "hang",
            move |_: Call| {
                struct Flag(Arc<AtomicBool>);
                impl Drop for Flag {
                    fn drop(&mut self) {
                        self.0.store(true, Ordering::SeqCst);
                    }
                }
                let flag = Flag(d.clone());
                async move {
                    let _flag = flag;
                    std::future::pending::<()>().await;
                    Ok(json!({}))
                }
            },
        ));
        let a = Client::connect_unix(&path).await.unwrap();
        let b = Client::connect_unix(&path).await.unwrap();
        let hanging = tokio::spawn({
            let a = a.clone();
            async move { a.execute("hang", ()).await }
        });
        let sessions = server.wait_for_sessions(2).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Closing one session: the event sent before the close arrives, then the end.
        let mut events = a.subscribe();
        sessions[0].emit("LAST", None).await.unwrap();
        sessions[0].close().await;
        assert_eq!(events.next().await.unwrap().unwrap().name(), "LAST");
        assert!(hanging.await.unwrap().unwrap_err().is_disconnected());
        assert!(
            dropped.load(Ordering::SeqCst),
            "the running handler was not dropped"
        );
        assert!(b
            .execute("nope", ())
            .await
            .unwrap_err()
            .qmp_error()
            .is_some());
        // Shutdown: the other client is disconnected, the socket file removed.
        server.shutdown().await;
        assert!(matches!(*b.closed().await, DisconnectReason::ServerClosed));
        assert!(!path.exists());
        assert!(Client::connect_unix(&path).await.is_err());
    })
    .await;
}

#[tokio::test]
async fn serve_stream_and_tcp() {
    within(30, async {
        let server = Server::builder().command("query-status", status).build();
        let (ours, theirs) = tokio::io::duplex(4096);
        let session = server.serve_stream(theirs);
        assert_eq!(session.peer(), "stream");
        let client = Client::builder().connect_stream(ours).await.unwrap();
        assert!(client.execute("query-status", ()).await.is_ok());
        client.close().await;

        let server = Server::builder()
            .command("query-status", status)
            .bind_tcp("127.0.0.1:0")
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let client = Client::connect_tcp(addr).await.unwrap();
        assert!(client.execute("query-status", ()).await.is_ok());
        assert!(server.sessions()[0].peer().starts_with("127.0.0.1:"));
        // Dropping the last handle stops the server.
        drop(server);
        assert!(matches!(
            *client.closed().await,
            DisconnectReason::ServerClosed
        ));
    })
    .await;
}
