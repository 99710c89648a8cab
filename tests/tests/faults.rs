//! Fault injection: servers that die, stall, flood or lie. Each case asserts that nothing is
//! lost and nothing hangs, and measures memory. Lines starting with `RELIABILITY |` are the
//! figures behind the README's "Reliability" table (`cargo test --test faults -- --nocapture`).

// Test code: unwrapping our own fixtures' results is fine.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmp_core::{Client, DisconnectReason, EventError, ExecuteError, Listener, ProtocolError};
use qmp_tests::memory::{exclusive, mib, peak, reset_peak, rss};
use qmp_tests::mock::{MockPeer, MockServer};
use qmp_tests::qemu::{Kind, Qemu};
use qmp_tests::{within, TempDir};
use serde_json::json;
use tokio::io::AsyncWriteExt;

fn report(case: &str, tries: u64, result: &str, memory: &str) {
    println!("RELIABILITY | {case} | {tries} | {result} | {memory}");
}

async fn mock_client(
    builder: qmp_core::ClientBuilder,
) -> (Client, MockPeer<tokio::net::UnixStream>, MockServer) {
    let server = MockServer::new();
    let (client, peer) = tokio::join!(
        builder.connect_unix(server.path()),
        server.accept_handshake()
    );
    (client.expect("connect"), peer, server)
}

fn reason_of(res: Result<serde_json::Value, ExecuteError>) -> Arc<DisconnectReason> {
    match res {
        Err(ExecuteError::Disconnected { reason, .. }) => reason,
        other => panic!("expected a disconnect, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_1000_commands_in_flight() {
    let _serial = exclusive().await;
    let mut tries = 0;
    let mut worst = Duration::ZERO;
    for kind in [
        Kind::System10,
        Kind::System72,
        Kind::StorageDaemon,
        Kind::System10,
        Kind::System10,
    ] {
        let Some(mut qemu) = Qemu::start(kind) else {
            continue;
        };
        within(60, async {
            let client = qemu.connect().await;
            client.execute("query-version", ()).await.unwrap();
            for after in qemu.kill_with_commands_in_flight(&client, 1000).await {
                worst = worst.max(after);
                assert!(
                    after < Duration::from_millis(100),
                    "{kind:?}: a caller failed only after {after:?}"
                );
            }
            assert_eq!(client.stats().in_flight, 0);
        })
        .await;
        tries += 1;
    }
    if tries > 0 {
        report(
            "QEMU SIGKILLed with 1,000 commands in flight",
            tries,
            &format!("all 1,000 callers get Disconnected; slowest {worst:?} after the kill"),
            "-",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stops_answering_then_recovers() {
    let _serial = exclusive().await;
    // Real QEMU, frozen: every call times out, and the connection works again once it thaws.
    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    within(60, async {
        let client = qemu
            .connect_with(Client::builder().command_timeout(Some(Duration::from_millis(100))))
            .await;
        client.execute("query-status", ()).await.unwrap();
        qemu.signal("STOP");
        let start = Instant::now();
        let calls: Vec<_> = (0..10).map(|_| client.execute("query-status", ())).collect();
        for res in futures_util::future::join_all(calls).await {
            assert!(matches!(res, Err(ExecuteError::Timeout { .. })), "{res:?}");
        }
        let waited = start.elapsed();
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        qemu.signal("CONT");
        let status = client.execute("query-status", ()).await.unwrap();
        assert_eq!(status["running"], json!(true));
        // The ten late replies were discarded, none misrouted.
        assert_eq!(client.stats().replies_discarded, 10);
        report(
            "QEMU frozen (SIGSTOP) under 10 calls, then thawed",
            1,
            &format!("each call times out after 100 ms (all within {waited:?}); after SIGCONT the same connection answers; 10 late replies discarded"),
            "-",
        );
    })
    .await;

    // A server that ignores one command but answers later ones: only that call fails, as
    // soon as a later command is answered (QEMU answers in order), well before its timeout.
    within(20, async {
        let (client, mut peer, _s) =
            mock_client(Client::builder().command_timeout(Some(Duration::from_secs(10)))).await;
        let calls = async {
            tokio::join!(
                client.execute("ignored", ()),
                client.execute("answered", ())
            )
        };
        let serve = async {
            let _ignored = peer.expect("ignored").await;
            let answered = peer.expect("answered").await;
            peer.reply(&answered.id, json!("ok")).await;
        };
        let start = Instant::now();
        let ((ignored, answered), ()) = tokio::join!(calls, serve);
        assert!(
            matches!(ignored, Err(ExecuteError::Unanswered { .. })),
            "{ignored:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(answered.unwrap(), json!("ok"));
    })
    .await;
}

/// One hostile input: what the server sends after the handshake, while one call is pending,
/// and what the client must conclude.
async fn hostile(bytes: &[u8], check: impl Fn(&DisconnectReason) -> bool) {
    let (client, mut peer, _s) = mock_client(Client::builder()).await;
    let call = client.execute("x", ());
    let serve = async {
        peer.expect("x").await;
        peer.send_raw(bytes).await;
        // End the stream too: a truncated message must be reported as such at the end.
        peer.close().await;
    };
    let (res, ()) = tokio::join!(call, serve);
    let reason = reason_of(res);
    assert!(check(&reason), "unexpected reason: {reason}");
    // Later calls fail at once with the same reason; streams end.
    assert!(client.execute("y", ()).await.unwrap_err().is_disconnected());
    let mut events = client.subscribe();
    assert!(matches!(
        events.next().await,
        Some(Err(EventError::Disconnected(_)))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_are_clear_errors_with_bounded_memory() {
    let _serial = exclusive().await;
    const TRIES: u64 = 20;
    within(120, async {
        type Check = fn(&DisconnectReason) -> bool;
        let cases: Vec<(&str, Vec<u8>, Check)> = vec![
            ("truncated JSON, then end of stream", b"{\"return\": {\"status\": \"runn".to_vec(), |r| {
                matches!(r, DisconnectReason::Protocol(ProtocolError::TruncatedMessage { received: 27 }))
            }),
            ("invalid UTF-8 in a string", b"{\"return\": \"\xc3\x28\"}\r\n".to_vec(), |r| {
                matches!(r, DisconnectReason::Protocol(ProtocolError::InvalidUtf8 { .. }))
            }),
            ("binary garbage", (0u8..=255).rev().collect(), |r| {
                matches!(r, DisconnectReason::Protocol(ProtocolError::UnexpectedByte { byte: 255, .. }))
            }),
            ("invalid JSON inside braces", b"{\"return\": [1, 2,, 3]}\r\n".to_vec(), |r| {
                matches!(r, DisconnectReason::Protocol(ProtocolError::InvalidJson { .. }))
            }),
            ("JSON nested 100,000 deep", {
                let mut v = b"{\"return\": ".to_vec();
                v.extend(std::iter::repeat_n(b'[', 100_000));
                v
            }, |r| matches!(r, DisconnectReason::Protocol(ProtocolError::TooDeep { limit: 128 }))),
        ];
        for (name, bytes, check) in &cases {
            let base = rss();
            reset_peak();
            for _ in 0..TRIES {
                hostile(bytes, check).await;
            }
            let grew = peak().saturating_sub(base);
            assert!(grew < 32 << 20, "{name}: peak RSS grew by {}", mib(grew));
            report(name, TRIES, "connection ends with a specific ProtocolError; pending and later calls fail, streams end", &format!("+{} peak RSS", mib(grew)));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_gib_line_is_cut_off_at_the_limit() {
    let _serial = exclusive().await;
    within(120, async {
        let (client, peer, _s) = mock_client(Client::builder()).await;
        let base = rss();
        reset_peak();
        let call = client.execute("x", ());
        // The server streams a 1 GiB string without end; the client must stop at 16 MiB.
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let serve = async move {
            let mut peer = peer;
            peer.expect("x").await;
            let (_, mut w) = peer.into_split();
            let _ = w.write_all(b"{\"return\": \"").await;
            let chunk = vec![b'a'; 1 << 20];
            for _ in 0..1024 {
                if w.write_all(&chunk).await.is_err() {
                    break;
                }
                counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        };
        let (res, ()) = tokio::join!(call, serve);
        let reason = reason_of(res);
        assert!(
            matches!(*reason, DisconnectReason::Protocol(ProtocolError::MessageTooLarge { limit }) if limit == 16 << 20),
            "{reason}"
        );
        let grew = peak().saturating_sub(base);
        let sent = sent.load(Ordering::Relaxed);
        assert!(sent < 256 << 20, "the server could send {} before the client stopped reading", mib(sent as usize));
        assert!(grew < 64 << 20, "peak RSS grew by {}", mib(grew));
        report(
            "a 1 GiB line (no end)",
            1,
            &format!("MessageTooLarge at the 16 MiB limit; the server got {} out before the client hung up", mib(sent as usize)),
            &format!("+{} peak RSS", mib(grew)),
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_servers_ids_and_shapes() {
    let _serial = exclusive().await;
    const TRIES: u64 = 20;
    within(60, async {
        for _ in 0..TRIES {
            let (client, mut peer, _s) = mock_client(Client::builder()).await;
            let calls = async { tokio::join!(client.execute("a", ()), client.execute("b", ())) };
            let serve = async {
                let a = peer.expect("a").await;
                let b = peer.expect("b").await;
                peer.reply(&json!(987_654), json!("unknown id")).await;
                peer.reply(&json!("text-id"), json!("foreign id")).await;
                peer.send(&json!({"data": {}, "timestamp": {"seconds": 1, "microseconds": 1}})).await;
                peer.reply(&a.id, json!("a")).await;
                peer.reply(&a.id, json!("a again")).await; // duplicated id
                peer.reply(&b.id, json!("b")).await;
            };
            let ((a, b), ()) = tokio::join!(calls, serve);
            assert_eq!(a.unwrap(), json!("a"));
            assert_eq!(b.unwrap(), json!("b"));
            let stats = client.stats();
            assert_eq!(stats.replies_discarded, 3, "{stats:?}");
            assert_eq!(stats.malformed_messages, 1, "{stats:?}");
            assert_eq!(stats.in_flight, 0);
            assert!(client.disconnect_reason().is_none());
        }
        report(
            "replies with unknown, foreign or duplicated ids; an event without `event`",
            TRIES,
            "dropped with a warning and counted (Stats); every caller gets its own reply; the connection stays up",
            "-",
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_flood_with_a_slow_subscriber() {
    let _serial = exclusive().await;
    const EVENTS: u64 = 10_000_000;
    const BATCH: u64 = 10_000;
    within(300, async {
        let (client, peer, _s) = mock_client(Client::builder().event_buffer(4096)).await;
        let mut slow = client.subscribe();
        let base = rss();
        reset_peak();
        let (reader, mut writer) = peer.into_split();
        // The server streams the events in batches.
        let flood = tokio::spawn(async move {
            let mut batch = Vec::new();
            for i in 0..BATCH {
                batch.extend_from_slice(
                    format!("{{\"event\": \"TICK\", \"data\": {{\"i\": {i}}}, \"timestamp\": {{\"seconds\": 1, \"microseconds\": 2}}}}\r\n").as_bytes(),
                );
            }
            for _ in 0..EVENTS / BATCH {
                writer.write_all(&batch).await.unwrap();
            }
            writer
        });
        // The client sends nothing here; keep the read half open for the flood's duration.
        let _reader = reader;
        // The slow subscriber takes one event every millisecond while the flood runs.
        let mut received = 0u64;
        let mut missed = 0u64;
        let start = Instant::now();
        while !flood.is_finished() {
            match slow.try_next() {
                Some(Ok(_)) => received += 1,
                Some(Err(EventError::Missed { count })) => missed += count,
                Some(Err(e)) => panic!("{e}"),
                None => {}
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let elapsed = start.elapsed();
        let _writer = flood.await.unwrap();
        // Wait until the client has read everything, then drain.
        let deadline = Instant::now() + Duration::from_secs(60);
        while client.stats().events_received < EVENTS && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(client.stats().events_received, EVENTS);
        while let Some(item) = slow.try_next() {
            match item {
                Ok(_) => received += 1,
                Err(EventError::Missed { count }) => missed += count,
                Err(e) => panic!("{e}"),
            }
        }
        let grew = peak().saturating_sub(base);
        assert_eq!(received + missed, EVENTS, "received {received} + missed {missed}");
        assert!(received <= 4096 + elapsed.as_millis() as u64 + 10, "{received}");
        assert!(grew < 64 << 20, "peak RSS grew by {}", mib(grew));
        report(
            "10,000,000 events, one subscriber reading 1 per ms (buffer 4,096)",
            1,
            &format!("received {received} + told it missed {missed} = exactly 10,000,000; flood took {elapsed:?}"),
            &format!("+{} peak RSS", mib(grew)),
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_keep_flowing_during_an_event_flood() {
    let _serial = exclusive().await;
    within(120, async {
        let (client, peer, _s) = mock_client(Client::builder().event_buffer(64)).await;
        let _never_read = client.subscribe();
        let (mut reader, mut writer) = peer.into_split();
        let mut events = Vec::new();
        for i in 0..1000 {
            events.extend_from_slice(
                format!("{{\"event\": \"E\", \"data\": {{\"i\": {i}}}}}\r\n").as_bytes(),
            );
        }
        let server = tokio::spawn(async move {
            // Every request is answered after another 1,000 events.
            while let Some(req) = reader.next_request().await {
                writer.write_all(&events).await.unwrap();
                let reply = format!(
                    "{{\"return\": {}, \"id\": {}}}\r\n",
                    req.arguments["n"], req.id
                );
                writer.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        let start = Instant::now();
        for n in 0..1000 {
            let v = client.execute("ping", json!({"n": n})).await.unwrap();
            assert_eq!(v, json!(n));
        }
        let took = start.elapsed();
        assert_eq!(client.stats().events_received, 1_000_000);
        drop(client);
        let _ = server.await;
        report(
            "1,000 commands, each behind 1,000 events, subscriber never reading",
            1,
            &format!("all 1,000 replies correct in {took:?}"),
            "-",
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_commands_with_random_cancellation() {
    let _serial = exclusive().await;
    const N: u64 = 100_000;
    within(300, async {
        let (client, peer, _s) = mock_client(Client::builder()).await;
        let (mut reader, mut writer) = peer.into_split();
        let server = tokio::spawn(async move {
            let mut answered = 0u64;
            while let Some(req) = reader.next_request().await {
                let reply = format!("{{\"return\": {}, \"id\": {}}}\r\n", req.arguments["n"], req.id);
                writer.write_all(reply.as_bytes()).await.unwrap();
                answered += 1;
            }
            answered
        });
        let base = rss();
        reset_peak();
        let mut tasks = Vec::with_capacity(N as usize);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for n in 0..N {
            // xorshift: a cheap, reproducible "random" choice per command.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let cancel = seed.is_multiple_of(2);
            let after = Duration::from_micros(seed % 500);
            let c = client.clone();
            tasks.push(tokio::spawn(async move {
                let call = c.execute("echo", json!({"n": n}));
                if cancel {
                    let _ = tokio::time::timeout(after, call).await;
                    None
                } else {
                    Some(call.await)
                }
            }));
        }
        let mut answered = 0u64;
        for (n, t) in tasks.into_iter().enumerate() {
            if let Some(res) = t.await.unwrap() {
                assert_eq!(res.unwrap(), json!(n), "command {n} got someone else's reply");
                answered += 1;
            }
        }
        // Everything sent was answered and the pending table is empty.
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.stats().replies_received < client.stats().commands_sent && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let stats = client.stats();
        assert_eq!(stats.in_flight, 0, "{stats:?}");
        assert_eq!(stats.replies_received, stats.commands_sent, "{stats:?}");
        let grew = peak().saturating_sub(base);
        drop(client);
        let server_answered = server.await.unwrap();
        report(
            "100,000 commands, half cancelled at random",
            1,
            &format!("{answered} kept callers each got their own reply; {} commands reached the server; pending table empty", server_answered),
            &format!("+{} peak RSS", mib(grew)),
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qemu_restarted_under_a_live_client() {
    let _serial = exclusive().await;
    let dir = TempDir::new();
    let path = dir.join("restart.sock");
    let listener = Listener::bind_unix(&path).unwrap();
    let Some(mut first) = Qemu::start_connecting(Kind::System10, &listener.qemu_qmp_arg(), &path)
    else {
        return;
    };
    within(60, async {
        let old = listener.accept().await.unwrap();
        let mut events = old.subscribe();
        old.execute("query-status", ()).await.unwrap();
        first.kill();
        // The old connection fails cleanly: its stream ends, calls fail at once.
        assert!(matches!(
            *old.closed().await,
            DisconnectReason::ServerClosed | DisconnectReason::Io(_)
        ));
        assert!(matches!(
            events.next().await,
            Some(Err(EventError::Disconnected(_)))
        ));
        assert!(old
            .execute("query-status", ())
            .await
            .unwrap_err()
            .is_disconnected());
        // The listener is still bound: the restarted QEMU connects to it and a new client works.
        let second =
            Qemu::start_connecting(Kind::System10, &listener.qemu_qmp_arg(), &path).unwrap();
        let new = listener.accept().await.unwrap();
        assert_eq!(
            new.execute("query-status", ()).await.unwrap()["running"],
            json!(true)
        );
        drop(second);
    })
    .await;
    report(
        "QEMU killed and restarted under a live client (accept mode)",
        1,
        "old client: closed() reports why, calls fail, streams end; the same Listener accepts the new QEMU",
        "-",
    );
}
