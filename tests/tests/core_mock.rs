//! qmp-core against the scripted mock server: protocol handling, faults, concurrency. Cases
//! a well-behaved server covers run on `qmp_core::server` instead (issue 15).

use std::sync::Arc;
use std::time::{Duration, Instant};

use qmp_core::server::{Call, Server};
use qmp_core::{
    Capability, Client, ConnectError, DisconnectReason, EventError, ExecuteError, ProtocolError,
    QmpError, Version,
};
use qmp_tests::mock::{duplex_pair, MockServer, GREETING};
use qmp_tests::within;
use serde_json::{json, Value};

async fn connected() -> (
    Client,
    qmp_tests::mock::MockPeer<tokio::net::UnixStream>,
    MockServer,
) {
    let server = MockServer::new();
    let (client, peer) = tokio::join!(
        Client::connect_unix(server.path()),
        server.accept_handshake()
    );
    (client.expect("connect"), peer, server)
}

/// A client of `qmp_core::server` over an in-memory stream, for cases a well-behaved server
/// covers (the scripted mock stays for what such a server cannot send).
async fn served(builder: qmp_core::server::ServerBuilder) -> (Client, Server) {
    let server = builder.build();
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    server.serve_stream(theirs);
    let client = Client::builder()
        .connect_stream(ours)
        .await
        .expect("connect");
    (client, server)
}

async fn connected_oob() -> (
    Client,
    qmp_tests::mock::MockPeer<tokio::net::UnixStream>,
    MockServer,
) {
    let server = MockServer::new();
    let (client, peer) = tokio::join!(
        Client::builder()
            .capabilities([Capability::Oob])
            .connect_unix(server.path()),
        server.accept_handshake()
    );
    (client.expect("connect"), peer, server)
}

#[tokio::test]
async fn greeting_is_parsed_and_oob_negotiated_when_requested() {
    within(10, async {
        let server = MockServer::new();
        let connect = Client::builder()
            .capabilities([Capability::Oob])
            .connect_unix(server.path());
        let serve = async {
            let mut peer = server.accept().await;
            peer.greet().await;
            let req = peer.expect("qmp_capabilities").await;
            assert_eq!(req.arguments, json!({"enable": ["oob"]}));
            peer.reply(&req.id, json!({})).await;
            peer
        };
        let (client, _peer) = tokio::join!(connect, serve);
        let client = client.unwrap();
        assert_eq!(client.greeting().version, Version::new(10, 0, 2));
        assert_eq!(client.greeting().package, "mock");
        assert_eq!(client.capabilities(), &[Capability::Oob]);
    })
    .await;
}

#[tokio::test]
async fn no_capabilities_requested_sends_no_arguments() {
    within(10, async {
        let server = MockServer::new();
        let serve = async {
            let mut peer = server.accept().await;
            peer.greet().await;
            let req = peer.expect("qmp_capabilities").await;
            assert_eq!(req.arguments, Value::Null);
            peer.reply(&req.id, json!({})).await;
            peer
        };
        let (client, _peer) = tokio::join!(Client::connect_unix(server.path()), serve);
        assert!(client.unwrap().capabilities().is_empty());
    })
    .await;
}

/// With oob, out-of-band replies overtake in-band ones; every reply reaches its own caller
/// (events in between change nothing).
#[tokio::test]
async fn replies_out_of_order_reach_their_callers() {
    within(10, async {
        let server = MockServer::new();
        let (client, mut peer) = tokio::join!(
            Client::builder()
                .capabilities([Capability::Oob])
                .connect_unix(server.path()),
            server.accept_handshake()
        );
        let client = client.unwrap();
        let calls = async {
            tokio::join!(
                client.execute("a", json!({"n": 1})),
                client
                    .request("b", json!({"n": 2}))
                    .oob()
                    .decode::<serde_json::Value>(),
                client
                    .request("c", json!({"n": 3}))
                    .oob()
                    .decode::<serde_json::Value>(),
            )
        };
        let serve = async {
            let mut reqs = Vec::new();
            for _ in 0..3 {
                reqs.push(peer.next_request().await.unwrap());
            }
            // Out-of-band replies first (in the order QEMU read them), the in-band one last,
            // with an event before each.
            for req in [&reqs[1], &reqs[2], &reqs[0]] {
                peer.event("TICK", None).await;
                peer.reply(
                    &req.id,
                    json!({"echo": req.command, "n": req.arguments["n"]}),
                )
                .await;
            }
        };
        let ((a, b, c), ()) = tokio::join!(calls, serve);
        assert_eq!(a.unwrap(), json!({"echo": "a", "n": 1}));
        assert_eq!(b.unwrap(), json!({"echo": "b", "n": 2}));
        assert_eq!(c.unwrap(), json!({"echo": "c", "n": 3}));
    })
    .await;
}

/// On `qmp_core::server` (issue 15): a well-behaved server, QEMU's bytes.
#[tokio::test]
async fn qmp_errors_keep_class_desc_and_raw() {
    within(10, async {
        let (client, _server) = served(Server::builder()).await;
        let err = client.execute("nope", ()).await.unwrap_err();
        let qmp = err.qmp_error().expect("a QMP error");
        assert!(qmp.is_command_not_found());
        assert_eq!(qmp.desc, "The command nope has not been found");
        // The raw reply, as QEMU writes it.
        assert!(
            qmp.raw.contains(r#""error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}"#),
            "{}",
            qmp.raw
        );
        assert!(
            err.to_string().starts_with("nope failed: CommandNotFound"),
            "{err}"
        );
    })
    .await;
}

#[tokio::test]
async fn unknown_id_is_dropped_and_connection_continues() {
    within(10, async {
        let (client, mut peer, _s) = connected().await;
        let call = client.execute("x", ());
        let serve = async {
            let req = peer.expect("x").await;
            peer.reply(&json!(999_999), json!({"wrong": true})).await;
            peer.reply(&json!("not-ours"), json!({"wrong": true})).await;
            peer.reply(&req.id, json!({"right": true})).await;
        };
        let (res, ()) = tokio::join!(call, serve);
        assert_eq!(res.unwrap(), json!({"right": true}));
        assert_eq!(client.stats().replies_discarded, 2);
        assert!(client.disconnect_reason().is_none());
    })
    .await;
}

#[tokio::test]
async fn malformed_reply_with_our_id_fails_that_call_only() {
    within(10, async {
        let (client, mut peer, _s) = connected().await;
        let calls = async { tokio::join!(client.execute("a", ()), client.execute("b", ())) };
        let serve = async {
            let a = peer.expect("a").await;
            let b = peer.expect("b").await;
            peer.send(&json!({"error": "not an object", "id": a.id}))
                .await;
            peer.reply(&b.id, json!(7)).await;
        };
        let ((a, b), ()) = tokio::join!(calls, serve);
        assert!(
            matches!(a, Err(ExecuteError::MalformedReply { .. })),
            "{a:?}"
        );
        assert_eq!(b.unwrap(), json!(7));
        assert_eq!(client.stats().malformed_messages, 1);
    })
    .await;
}

#[tokio::test]
async fn message_neither_reply_nor_event_is_reported_and_skipped() {
    within(10, async {
        let (client, mut peer, _s) = connected().await;
        let mut events = client.subscribe();
        let call = client.execute("x", ());
        let serve = async {
            let req = peer.expect("x").await;
            // An "event" without its `event` key.
            peer.send(&json!({"data": {"a": 1}, "timestamp": {"seconds": 1, "microseconds": 2}}))
                .await;
            peer.event("REAL", None).await;
            peer.reply(&req.id, json!({})).await;
        };
        let (res, ()) = tokio::join!(call, serve);
        res.unwrap();
        assert_eq!(client.stats().malformed_messages, 1);
        assert_eq!(events.next().await.unwrap().unwrap().name(), "REAL");
    })
    .await;
}

#[tokio::test]
async fn pretty_printed_and_dribbled_messages() {
    within(10, async {
        let server = MockServer::new();
        let serve = async {
            let mut peer = server.accept().await;
            // Greeting one byte at a time, then a pretty-printed (multi-line) reply.
            peer.send_slowly(format!("{GREETING}\r\n").as_bytes(), 1, Duration::from_micros(200)).await;
            let req = peer.expect("qmp_capabilities").await;
            peer.reply(&req.id, json!({})).await;
            let req = peer.expect("query-status").await;
            let pretty = format!(
                "{{\n    \"return\": {{\n        \"status\": \"running\",\n        \"running\": true\n    }},\n    \"id\": {}\n}}\n",
                req.id
            );
            peer.send_slowly(pretty.as_bytes(), 7, Duration::from_micros(300)).await;
            peer
        };
        let client = async {
            let c = Client::connect_unix(server.path()).await.unwrap();
            let status = c.execute("query-status", ()).await.unwrap();
            (c, status)
        };
        let ((_c, status), _peer) = tokio::join!(client, serve);
        assert_eq!(status, json!({"status": "running", "running": true}));
    })
    .await;
}

#[tokio::test]
async fn events_reach_every_subscriber_in_order_with_filters_and_timestamps() {
    within(10, async {
        let (client, mut peer, _s) = connected().await;
        let mut all = client.subscribe();
        let mut stops = client.subscribe_to(["STOP"]);
        for i in 0..5 {
            peer.event("RESUME", Some(json!({"i": i}))).await;
            peer.event("STOP", Some(json!({"i": i}))).await;
        }
        for i in 0..5 {
            for name in ["RESUME", "STOP"] {
                let ev = all.next().await.unwrap().unwrap();
                assert_eq!(ev.name(), name);
                assert_eq!(ev.data_value()["i"], i);
                assert_eq!(ev.timestamp().seconds, 1_700_000_000);
                assert_eq!(ev.timestamp().microseconds, 42);
            }
            let ev = stops.next().await.unwrap().unwrap();
            assert_eq!(
                (ev.name(), ev.data_value()["i"].clone()),
                ("STOP", json!(i))
            );
        }
        assert!(stops.try_next().is_none());
    })
    .await;
}

#[tokio::test]
async fn slow_subscriber_is_told_how_many_it_missed_and_blocks_nobody() {
    within(20, async {
        let server = MockServer::new();
        let (client, mut peer) = tokio::join!(
            Client::builder().event_buffer(100).connect_unix(server.path()),
            server.accept_handshake()
        );
        let client = client.unwrap();
        let mut slow = client.subscribe(); // never read until the end
        let mut fast = client.subscribe();
        let total = 10_000u64;
        let serve = async {
            let mut batch = String::new();
            for i in 0..total {
                batch.push_str(&format!(r#"{{"event": "E", "data": {{"i": {i}}}, "timestamp": {{"seconds": 1, "microseconds": 0}}}}"#));
                batch.push_str("\r\n");
            }
            peer.send_raw(batch.as_bytes()).await;
            let req = peer.expect("after").await;
            peer.reply(&req.id, json!({"done": true})).await;
            peer
        };
        let reader = async {
            let mut seen = 0u64;
            while seen < total {
                match fast.next().await.unwrap() {
                    Ok(ev) => {
                        assert_eq!(ev.data_value()["i"], seen);
                        seen += 1;
                    }
                    Err(EventError::Missed { count }) => seen += count,
                    Err(e) => panic!("{e}"),
                }
            }
            seen
        };
        let (reply, _peer, seen) = tokio::join!(client.execute("after", ()), serve, reader);
        assert_eq!(reply.unwrap(), json!({"done": true}));
        assert_eq!(seen, total);
        // The slow one kept the newest 100 and knows exactly what it lost.
        match slow.next().await.unwrap() {
            Err(EventError::Missed { count }) => assert_eq!(count, total - 100),
            other => panic!("{other:?}"),
        }
        let first = slow.next().await.unwrap().unwrap();
        assert_eq!(first.data_value()["i"], total - 100);
        assert_eq!(slow.len(), 99);
    })
    .await;
}

/// On `qmp_core::server` (issue 15): QEMU sends STOP before `stop`'s reply.
#[tokio::test]
async fn subscriber_created_before_a_command_sees_events_sent_before_its_reply() {
    within(10, async {
        let builder = Server::builder().command("stop", |call: Call| async move {
            call.emit("STOP", None)
                .await
                .map_err(|e| QmpError::new("GenericError", e.to_string()))?;
            Ok(json!({}))
        });
        let (client, _server) = served(builder).await;
        let mut events = client.subscribe_to(["STOP"]);
        client.execute("stop", ()).await.unwrap();
        // Delivered before the reply woke us: no waiting needed.
        assert_eq!(events.try_next().unwrap().unwrap().name(), "STOP");
    })
    .await;
}

#[tokio::test]
async fn cancelled_call_leaves_connection_healthy() {
    within(10, async {
        let (client, mut peer, _s) = connected().await;
        let slow = client.execute("slow", ());
        let serve = async {
            let req = peer.expect("slow").await;
            (peer, req)
        };
        // Drop the call once the server has it.
        let (peer_req, _) = tokio::join!(serve, async {
            let _ = tokio::time::timeout(Duration::from_millis(100), slow).await;
        });
        let (mut peer, slow_req) = peer_req;
        let call = client.execute("next", ());
        let serve = async {
            peer.reply(&slow_req.id, json!({"late": true})).await;
            let req = peer.expect("next").await;
            peer.reply(&req.id, json!({"fresh": true})).await;
        };
        let (res, ()) = tokio::join!(call, serve);
        assert_eq!(res.unwrap(), json!({"fresh": true}));
        assert_eq!(client.stats().replies_discarded, 1);
        assert_eq!(client.stats().in_flight, 0);
    })
    .await;
}

#[tokio::test]
async fn command_timeout_fires_and_connection_stays_usable() {
    within(10, async {
        let server = MockServer::new();
        let (client, mut peer) = tokio::join!(
            Client::builder()
                .command_timeout(Some(Duration::from_millis(100)))
                .connect_unix(server.path()),
            server.accept_handshake()
        );
        let client = client.unwrap();
        let start = Instant::now();
        let err = client.execute("hang", ()).await.unwrap_err();
        assert!(matches!(err, ExecuteError::Timeout { .. }), "{err:?}");
        assert!(start.elapsed() < Duration::from_secs(2));
        let _hang = peer.expect("hang").await;
        let call = client.execute("ok", ());
        let serve = async {
            let req = peer.expect("ok").await;
            peer.reply(&req.id, json!(1)).await;
        };
        let (res, ()) = tokio::join!(call, serve);
        assert_eq!(res.unwrap(), json!(1));
    })
    .await;
}

#[tokio::test]
async fn server_close_fails_pending_calls_ends_streams_and_later_calls_fail_fast() {
    within(10, async {
        let (client, mut peer, _s) = connected().await;
        let mut events = client.subscribe();
        let calls = async { tokio::join!(client.execute("a", ()), client.execute("b", ())) };
        let serve = async {
            peer.expect("a").await;
            peer.expect("b").await;
            peer.event("LAST", None).await;
            peer.close().await;
        };
        let ((a, b), ()) = tokio::join!(calls, serve);
        for res in [a, b] {
            match res {
                Err(ExecuteError::Disconnected { reason, sent, .. }) => {
                    assert!(
                        matches!(*reason, DisconnectReason::ServerClosed),
                        "{reason}"
                    );
                    // The server read them: they may have run.
                    assert!(sent);
                }
                other => panic!("{other:?}"),
            }
        }
        // Events received before the close are still delivered, then the stream ends.
        assert_eq!(events.next().await.unwrap().unwrap().name(), "LAST");
        assert!(matches!(
            events.next().await,
            Some(Err(EventError::Disconnected(_)))
        ));
        assert!(events.next().await.is_none());
        let start = Instant::now();
        let late = client.execute("c", ()).await.unwrap_err();
        assert!(start.elapsed() < Duration::from_millis(100));
        assert!(
            matches!(late, ExecuteError::Disconnected { sent: false, .. }),
            "{late:?}"
        );
        assert!(late.to_string().contains("never sent"), "{late}");
        assert!(matches!(
            *client.closed().await,
            DisconnectReason::ServerClosed
        ));
    })
    .await;
}

#[tokio::test]
async fn garbage_ends_the_connection_with_a_protocol_error() {
    for (garbage, check) in [
        (&b"not json at all\r\n"[..], "unexpected byte" as &str),
        (b"{\"return\": }\r\n", "invalid JSON"),
        (b"{\"return\": \"\xff\xfe\"}\r\n", "invalid UTF-8"),
        (b"\x00\x01\x02\x03", "unexpected byte"),
    ] {
        within(10, async {
            let (client, mut peer, _s) = connected().await;
            let call = client.execute("x", ());
            let serve = async {
                peer.expect("x").await;
                peer.send_raw(garbage).await;
            };
            let (res, ()) = tokio::join!(call, serve);
            match res {
                Err(ExecuteError::Disconnected { reason, .. }) => match &*reason {
                    DisconnectReason::Protocol(p) => {
                        let msg = p.to_string().to_lowercase();
                        assert!(
                            msg.contains(&check.to_lowercase())
                                || matches!(p, ProtocolError::UnexpectedByte { .. }),
                            "{p}"
                        )
                    }
                    other => panic!("{other}"),
                },
                other => panic!("{other:?}"),
            }
        })
        .await;
    }
}

#[tokio::test]
async fn oversized_and_too_deep_messages_are_errors_with_bounded_memory() {
    within(20, async {
        let server = MockServer::new();
        let (client, mut peer) = tokio::join!(
            Client::builder()
                .max_message_size(64 * 1024)
                .connect_unix(server.path()),
            server.accept_handshake()
        );
        let client = client.unwrap();
        let call = client.execute("big", ());
        let serve = async {
            peer.expect("big").await;
            // 1 MiB of string, never terminated: the client must stop at its 64 KiB limit.
            peer.send_raw(b"{\"return\": \"").await;
            let chunk = vec![b'a'; 64 * 1024];
            for _ in 0..16 {
                peer.send_raw(&chunk).await;
            }
        };
        let (res, ()) = tokio::join!(call, serve);
        match res {
            Err(ExecuteError::Disconnected { reason, .. }) => {
                assert!(
                    matches!(
                        &*reason,
                        DisconnectReason::Protocol(ProtocolError::MessageTooLarge { limit: 65536 })
                    ),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }

        let (client, mut peer, _s) = connected().await;
        let call = client.execute("deep", ());
        let serve = async {
            peer.expect("deep").await;
            let mut deep = b"{\"return\": ".to_vec();
            deep.extend(std::iter::repeat_n(b'[', 100_000));
            peer.send_raw(&deep).await;
        };
        let (res, ()) = tokio::join!(call, serve);
        match res {
            Err(ExecuteError::Disconnected { reason, .. }) => {
                assert!(
                    matches!(
                        &*reason,
                        DisconnectReason::Protocol(ProtocolError::TooDeep { .. })
                    ),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn greeting_faults_are_specific_errors() {
    within(20, async {
        // Closed before greeting.
        let server = MockServer::new();
        let (res, ()) = tokio::join!(Client::connect_unix(server.path()), async {
            let peer = server.accept().await;
            peer.close().await;
        });
        assert!(
            matches!(res, Err(ConnectError::ClosedBeforeGreeting)),
            "{res:?}"
        );

        // Not a greeting.
        let server = MockServer::new();
        let (res, _peer) = tokio::join!(Client::connect_unix(server.path()), async {
            let mut peer = server.accept().await;
            peer.send(&json!({"hello": "world"})).await;
            peer
        });
        assert!(
            matches!(res, Err(ConnectError::MalformedGreeting { .. })),
            "{res:?}"
        );

        // Greeting with the wrong shape.
        let server = MockServer::new();
        let (res, _peer) = tokio::join!(Client::connect_unix(server.path()), async {
            let mut peer = server.accept().await;
            peer.send(&json!({"QMP": {"version": "ten"}})).await;
            peer
        });
        assert!(
            matches!(res, Err(ConnectError::MalformedGreeting { .. })),
            "{res:?}"
        );

        // Slow greeting.
        let server = MockServer::new();
        let start = Instant::now();
        let (res, _peer) = tokio::join!(
            Client::builder()
                .timeout(Some(Duration::from_millis(200)))
                .connect_unix(server.path()),
            server.accept()
        );
        match res {
            Err(ConnectError::Timeout { stage, .. }) => {
                assert!(stage.contains("greeting"), "{stage}")
            }
            other => panic!("{other:?}"),
        }
        assert!(start.elapsed() < Duration::from_secs(2));

        // Negotiation refused.
        let server = MockServer::new();
        let (res, _peer) = tokio::join!(Client::connect_unix(server.path()), async {
            let mut peer = server.accept().await;
            peer.greet().await;
            let req = peer.expect("qmp_capabilities").await;
            peer.reply_error(&req.id, "GenericError", "Capability 'oob' not available")
                .await;
            peer
        });
        match res {
            Err(ConnectError::NegotiationRefused(e)) => assert_eq!(e.class, "GenericError"),
            other => panic!("{other:?}"),
        }

        // Nothing listening.
        let res = Client::connect_unix("/nonexistent/qmp.sock").await;
        assert!(matches!(res, Err(ConnectError::Connect { .. })), "{res:?}");
        // The message names what was tried, also for TCP (a closed port).
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        let err = Client::connect_tcp(format!("127.0.0.1:{port}"))
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
        assert!(msg.contains("is QEMU running"), "{msg}");
    })
    .await;
}

#[tokio::test]
async fn graceful_close_waits_for_replies_then_fails_new_calls() {
    within(10, async {
        let (client, mut peer, _s) = connected().await;
        let c2 = client.clone();
        let pending = tokio::spawn(async move { c2.execute("finishing", ()).await });
        let req = peer.expect("finishing").await;
        let closer = {
            let c = client.clone();
            tokio::spawn(async move { c.close().await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let late = client.execute("too-late", ()).await.unwrap_err();
        assert!(
            matches!(late, ExecuteError::Disconnected { sent: false, .. }),
            "{late:?}"
        );
        peer.reply(&req.id, json!({"done": 1})).await;
        assert_eq!(pending.await.unwrap().unwrap(), json!({"done": 1}));
        closer.await.unwrap();
        // The server sees a clean end of stream.
        assert!(peer.recv().await.is_none());
        assert!(matches!(
            *client.closed().await,
            DisconnectReason::ClientClosed
        ));
        client.close().await; // idempotent
    })
    .await;
}

#[tokio::test]
async fn dropping_every_handle_closes_the_connection() {
    within(10, async {
        let (client, mut peer, _s) = connected().await;
        drop(client);
        assert!(peer.recv().await.is_none());
    })
    .await;
}

#[tokio::test]
async fn oob_commands_and_in_band_limit() {
    within(10, async {
        let server = MockServer::new();
        let (client, mut peer) = tokio::join!(
            Client::builder()
                .capabilities([Capability::Oob])
                .connect_unix(server.path()),
            server.accept_handshake()
        );
        let client = Arc::new(client.unwrap());
        let mut in_band = Vec::new();
        for i in 0..10 {
            let c = client.clone();
            in_band.push(tokio::spawn(async move {
                c.execute("slow", json!({"i": i})).await
            }));
        }
        // QEMU queues only 8 in-band commands: the client holds back the rest.
        let mut first = Vec::new();
        for _ in 0..8 {
            first.push(peer.expect("slow").await);
        }
        let c = client.clone();
        let oob = tokio::spawn(
            c.request("yank", json!({"instances": []}))
                .oob()
                .decode::<Value>(),
        );
        let req = peer.next_request().await.unwrap();
        assert!(req.oob && req.command == "yank", "{req:?}");
        peer.reply(&req.id, json!({})).await;
        assert_eq!(oob.await.unwrap().unwrap(), json!({}));
        // Answer one: exactly one held command is released.
        peer.reply(&first[0].id, json!(0)).await;
        let ninth = peer.expect("slow").await;
        for req in first.iter().skip(1).chain([&ninth]) {
            peer.reply(&req.id, json!(1)).await;
        }
        let tenth = peer.expect("slow").await;
        peer.reply(&tenth.id, json!(2)).await;
        for h in in_band {
            h.await.unwrap().unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn oob_without_capability_and_fds_without_unix_socket_are_errors() {
    within(10, async {
        let (stream, mut peer) = duplex_pair();
        let (client, ()) = tokio::join!(Client::builder().connect_stream(stream), peer.handshake());
        let client = client.unwrap();
        assert!(matches!(
            client.request("yank", ()).oob().await,
            Err(ExecuteError::OobNotEnabled { .. })
        ));
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(matches!(
            client
                .request("getfd", json!({"fdname": "x"}))
                .fd(&file)
                .await,
            Err(ExecuteError::FdPassingUnsupported { .. })
        ));
        // Options combine: the first one that cannot be honoured is reported, nothing is sent.
        assert!(matches!(
            client
                .request("getfd", json!({"fdname": "x"}))
                .timeout(Some(Duration::from_secs(1)))
                .fd(&file)
                .oob()
                .await,
            Err(ExecuteError::OobNotEnabled { .. })
        ));
        assert_eq!(client.stats().commands_sent, 0);
        assert!(matches!(
            client.execute("x", 5).await,
            Err(ExecuteError::InvalidArguments { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn typed_decode_errors_name_command_and_path() {
    within(10, async {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Status {
            running: bool,
            status: String,
        }
        let (client, mut peer, _s) = connected().await;
        let call = client.execute_as::<Vec<Status>>("query-things", ());
        let serve = async {
            let req = peer.expect("query-things").await;
            peer.reply(
                &req.id,
                json!([{"running": true, "status": "ok"}, {"running": "yes", "status": "x"}]),
            )
            .await;
        };
        let (res, ()) = tokio::join!(call, serve);
        match res {
            Err(ExecuteError::Decode(e)) => {
                assert_eq!(e.context, "query-things");
                assert_eq!(e.path, "[1].running");
                assert!(e.raw.contains("\"yes\""));
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn many_concurrent_calls_with_random_cancellation_leave_nothing_pending() {
    within(30, async {
        let (client, mut peer, _s) = connected().await;
        let n = 2000u64;
        let serve = tokio::spawn(async move {
            // Echo every request's number back.
            let mut answered = 0;
            while answered < n {
                let req = peer.next_request().await.unwrap();
                peer.reply(&req.id, req.arguments["n"].clone()).await;
                answered += 1;
            }
            peer
        });
        let mut tasks = Vec::new();
        for i in 0..n {
            let c = client.clone();
            tasks.push(tokio::spawn(async move {
                let call = c.execute("echo", json!({"n": i}));
                if i % 2 == 0 {
                    // Give up almost at once: the reply must be discarded, not misrouted.
                    let _ = tokio::time::timeout(Duration::from_micros(1), call).await;
                    None
                } else {
                    Some(call.await.unwrap())
                }
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            if let Some(v) = t.await.unwrap() {
                assert_eq!(v, json!(i));
            }
        }
        let _peer = serve.await.unwrap();
        // Every reply arrived; nothing stays in the pending table.
        let deadline = Instant::now() + Duration::from_secs(5);
        while client.stats().in_flight != 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(client.stats().in_flight, 0);
        assert_eq!(client.stats().replies_received, n);
    })
    .await;
}

#[tokio::test]
async fn close_gives_up_on_unanswered_commands_after_the_close_timeout() {
    within(10, async {
        let server = MockServer::new();
        let (client, mut peer) = tokio::join!(
            Client::builder()
                .close_timeout(Duration::from_millis(200))
                .connect_unix(server.path()),
            server.accept_handshake()
        );
        let client = client.unwrap();
        let c2 = client.clone();
        let stuck = tokio::spawn(async move { c2.execute("never-answered", ()).await });
        peer.expect("never-answered").await;
        let start = Instant::now();
        client.close().await;
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(150) && took < Duration::from_secs(2),
            "{took:?}"
        );
        match stuck.await.unwrap() {
            Err(ExecuteError::Disconnected { reason, .. }) => {
                assert!(matches!(*reason, DisconnectReason::ClientClosed))
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn wait_for_server_retries_until_the_socket_appears() {
    within(10, async {
        let dir = qmp_tests::TempDir::new();
        let path = dir.join("late.sock");
        // Without the option a missing socket fails at once.
        let err = Client::connect_unix(&path).await.unwrap_err();
        assert!(matches!(err, ConnectError::Connect { .. }), "{err:?}");

        let server_path = path.clone();
        let server = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let listener = tokio::net::UnixListener::bind(&server_path).expect("bind");
            let (stream, _) = listener.accept().await.expect("accept");
            let mut peer = qmp_tests::mock::MockPeer::new(stream);
            peer.handshake().await;
            let r = peer.expect("query-status").await;
            peer.reply(&r.id, json!({"status": "running", "running": true}))
                .await;
            peer
        });
        let start = Instant::now();
        let client = Client::builder()
            .wait_for_server(true)
            .timeout(Some(Duration::from_secs(5)))
            .connect_unix(&path)
            .await
            .expect("connect once the socket exists");
        assert!(start.elapsed() >= Duration::from_millis(150));
        let status = client.execute("query-status", ()).await.expect("reply");
        assert_eq!(status["status"], "running");
        let _peer = server.await.expect("server task");

        // A server that never comes: the timeout names what it was doing.
        let err = Client::builder()
            .wait_for_server(true)
            .timeout(Some(Duration::from_millis(200)))
            .connect_unix(dir.join("never.sock"))
            .await
            .unwrap_err();
        match err {
            ConnectError::Timeout { stage, after } => {
                assert!(stage.contains("retrying"), "{stage}");
                assert_eq!(after, Duration::from_millis(200));
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn per_call_timeouts_override_the_client_default() {
    within(10, async {
        let server = MockServer::new();
        let (client, mut peer) = tokio::join!(
            Client::builder()
                .command_timeout(Some(Duration::from_millis(50)))
                .connect_unix(server.path()),
            server.accept_handshake()
        );
        let client = client.unwrap();
        // A shorter timeout of its own.
        let short = client
            .request("stuck", ())
            .timeout(Some(Duration::from_millis(20)));
        match short.await {
            Err(ExecuteError::Timeout { after, command }) => {
                assert_eq!(after, Duration::from_millis(20));
                assert_eq!(command, "stuck");
            }
            other => panic!("{other:?}"),
        }
        let _ = peer.expect("stuck").await;
        // No timeout at all, although the client has one: outlives the default.
        let patient = tokio::spawn(client.request("slow", ()).timeout(None).decode::<Value>());
        let req = peer.expect("slow").await;
        tokio::time::sleep(Duration::from_millis(120)).await;
        peer.reply(&req.id, json!(7)).await;
        assert_eq!(patient.await.unwrap().unwrap(), json!(7));
        // The client's default still applies to calls without one.
        assert!(matches!(
            client.request("stuck-again", ()).await,
            Err(ExecuteError::Timeout { after, .. }) if after == Duration::from_millis(50)
        ));
    })
    .await;
}

#[tokio::test]
async fn an_oob_request_goes_as_exec_oob_and_combines_with_a_timeout() {
    within(10, async {
        let (client, mut peer, _s) = connected_oob().await;
        let call = client
            .request("migrate-pause", ())
            .timeout(Some(Duration::from_secs(5)))
            .oob();
        assert_eq!(call.command(), "migrate-pause");
        let call = tokio::spawn(call);
        let req = peer.next_request().await.unwrap();
        assert!(req.oob, "{req:?}");
        assert_eq!(req.command, "migrate-pause");
        peer.reply(&req.id, json!({})).await;
        assert_eq!(call.await.unwrap().unwrap().get(), "{}");
    })
    .await;
}

#[tokio::test]
#[should_panic(expected = "polled after it completed")]
async fn a_request_polled_after_completion_panics() {
    let (client, mut peer, _s) = connected().await;
    let mut call = client.request("query-status", ());
    let serve = async {
        let req = peer.expect("query-status").await;
        peer.reply(&req.id, json!({})).await;
    };
    let (first, ()) = tokio::join!(&mut call, serve);
    assert!(first.is_ok());
    // As with any future, polling again is a bug in the caller: it panics.
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let _ = std::future::Future::poll(std::pin::Pin::new(&mut call), &mut cx);
}
