//! Issue 9 against real QEMU (10.0.2 and 7.2): reconnect churn with a command in flight, `quit`
//! under a busy current-thread runtime, the resets that follow `quit`, QEMU's JSON parser
//! limits at their boundaries, and a full listen queue. Lines starting with `RELIABILITY |`
//! are the figures behind the README's table (`cargo test --test issue_9_qemu -- --nocapture`).
//!
//! `QMP_CHURN_CYCLES` sets the reconnect cycles per QEMU version (default 200; the README's
//! figure is from 1,000), `QMP_QUIT_RUNS` the `quit` runs per version (default 50).

// Test code: unwrapping our own fixtures' results is fine.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::{Duration, Instant};

use qmp_core::{Capability, Client, DisconnectReason, ExecuteError, JsonLimit, RawValue};
use qmp_tests::memory::exclusive;
use qmp_tests::qemu::{Kind, Qemu};
use qmp_tests::within;
use serde_json::{json, Value};

const SYSTEMS: [Kind; 2] = [Kind::System10, Kind::System72];

fn report(case: &str, tries: u64, result: &str) {
    println!("RELIABILITY | {case} | {tries} | {result} | -");
}

fn env_count(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift: reproducible "random" numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Reconnect churn
// ---------------------------------------------------------------------------------------------

/// Each client connects, checks that a command gets its own reply, starts `query-qmp-schema`
/// and is dropped 0.2-1.4 ms later; the next client connects at once and receives what the
/// monitor still owed the previous one. Before issue 9, about 199 of 200 connects failed with
/// "unexpected message while negotiating capabilities".
async fn churn(kind: Kind, cycles: u64) -> (u64, u64, u64) {
    let Some(qemu) = Qemu::start(kind) else {
        return (0, 0, 0);
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ cycles);
    let (mut failures, mut saw_stray, mut stray_after) = (0u64, 0u64, 0u64);
    let builder = Client::builder().timeout(Some(Duration::from_secs(10)));
    let mut client = qemu.connect_with(builder.clone()).await;
    for cycle in 0..cycles {
        // Start the command and make sure it was written, then let it run for a moment.
        let before = client.stats().commands_sent;
        let c = client.clone();
        let schema = tokio::spawn(async move { c.execute("query-qmp-schema", ()).await });
        while client.stats().commands_sent == before {
            tokio::task::yield_now().await;
        }
        let delay = Duration::from_micros(200 + rng.next() % 1200);
        std::thread::sleep(delay);
        schema.abort();
        drop(client);
        // The next client at once.
        client = match builder.clone().connect_unix(&qemu.socket).await {
            Ok(c) => c,
            Err(e) => {
                failures += 1;
                eprintln!("{kind:?} cycle {cycle}: connect failed: {e}");
                qemu.connect_with(builder.clone()).await
            }
        };
        let path = format!("/churn-{cycle}");
        match client
            .execute("qom-get", json!({"path": path, "property": "type"}))
            .await
        {
            Err(ExecuteError::Qmp { error, .. }) if error.desc.contains(&path) => {}
            other => {
                failures += 1;
                eprintln!("{kind:?} cycle {cycle}: expected our own error reply, got {other:?}");
            }
        }
        let stats = client.stats();
        if stats.stray_during_handshake > 0 {
            saw_stray += 1;
        }
        if stats.replies_discarded > 0 {
            stray_after += 1;
        }
    }
    (failures, saw_stray, stray_after)
}

#[tokio::test]
async fn issue_9_reconnect_churn_with_a_command_in_flight() {
    let _serial = exclusive().await;
    let cycles = env_count("QMP_CHURN_CYCLES", 200);
    for kind in SYSTEMS {
        let start = Instant::now();
        let (failures, saw_stray, stray_after) = within(600, churn(kind, cycles)).await;
        if kind.binary().is_file() {
            assert_eq!(
                failures, 0,
                "{kind:?}: {failures} of {cycles} cycles failed"
            );
            // The fault was really provoked, not avoided by timing.
            assert!(
                saw_stray > cycles / 10,
                "{kind:?}: only {saw_stray} of {cycles} clients saw stray output"
            );
            report(
                &format!("reconnect churn on QEMU {}: each client dropped 0.2-1.4 ms into query-qmp-schema, the next connecting at once", version(kind)),
                cycles,
                &format!("0 failures; {saw_stray} clients received the previous client's output while connecting, {stray_after} after (skipped and counted); {:.1} s", start.elapsed().as_secs_f64()),
            );
        }
    }
}

fn version(kind: Kind) -> &'static str {
    match kind {
        Kind::System10 => "10.0.2",
        Kind::System72 => "7.2",
        Kind::StorageDaemon => "storage daemon 10.0.2",
        Kind::StorageDaemon72 => "storage daemon 7.2",
    }
}

// ---------------------------------------------------------------------------------------------
// 2 and 3. `quit`
// ---------------------------------------------------------------------------------------------

/// `quit` while the client's (current-thread) runtime is busy: QEMU answers, sends SHUTDOWN and
/// exits before the connection task reads anything, and another task submits `query-status`,
/// whose write then fails. Before issue 9 `quit` failed with a broken pipe in 5 of 5 runs on
/// 10.0.2 and 3-5 of 5 on 7.2.
#[tokio::test]
async fn issue_9_quit_under_a_busy_current_thread_runtime() {
    let _serial = exclusive().await;
    const RUNS: u64 = 5;
    for kind in SYSTEMS {
        for run in 0..RUNS {
            let Some(mut qemu) = Qemu::start(kind) else {
                return;
            };
            within(20, async {
                let client = qemu.connect().await;
                let mut shutdowns = client.subscribe_to(["SHUTDOWN"]);
                let mut all = client.subscribe();
                let c = client.clone();
                let quit = tokio::spawn(async move { c.execute("quit", ()).await });
                while client.stats().commands_sent < 1 {
                    tokio::task::yield_now().await;
                }
                // Busy: block the runtime's thread until QEMU has exited.
                let deadline = Instant::now() + Duration::from_secs(10);
                while qemu.is_running() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                assert!(!qemu.is_running(), "{kind:?}: QEMU did not exit after quit");
                let c = client.clone();
                let status = tokio::spawn(async move { c.execute("query-status", ()).await });

                assert_eq!(
                    quit.await
                        .unwrap()
                        .unwrap_or_else(|e| panic!("{kind:?} run {run}: quit: {e}")),
                    json!({})
                );
                match status.await.unwrap() {
                    Err(ExecuteError::Disconnected { sent: false, .. }) => {}
                    other => panic!("{kind:?} run {run}: query-status: {other:?}"),
                }
                for stream in [&mut shutdowns, &mut all] {
                    let ev = stream.next().await.unwrap().expect("SHUTDOWN");
                    assert_eq!(ev.name(), "SHUTDOWN");
                    assert_eq!(ev.data_value()["reason"], "host-qmp-quit");
                }
                let reason = client.closed().await;
                assert!(
                    matches!(*reason, DisconnectReason::ServerShutDown),
                    "{kind:?} run {run}: {reason}"
                );
            })
            .await;
        }
        report(
            &format!("`quit` on QEMU {} while the client's current-thread runtime is busy; another task's command then fails to write", version(kind)),
            RUNS,
            "every run: quit returns Ok, SHUTDOWN reaches every subscriber, the other command fails with sent: false, the reason is ServerShutDown",
        );
    }
}

/// A plain client's view of the end after `quit`: `true` if QEMU reset the socket.
fn raw_quit_resets(socket: &std::path::Path) -> bool {
    let mut stream = StdUnixStream::connect(socket).expect("connect");
    // A QEMU that never exits (seen once on a machine under heavy load) must fail the test,
    // not hang it: a read that times out counts as no reset.
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("read timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("greeting");
    stream
        .write_all(
            b"{\"execute\":\"qmp_capabilities\",\"id\":1}\n{\"execute\":\"quit\",\"id\":2}\n",
        )
        .expect("send");
    let mut rest = Vec::new();
    match std::io::Read::read_to_end(&mut reader, &mut rest) {
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// QEMU often resets the socket as it exits after `quit` (it reads its input one byte at a
/// time and leaves the newline after the command unread). Every run must end as an orderly
/// shutdown. For comparison, as many runs with a plain socket count the resets.
#[tokio::test]
async fn issue_9_quit_ends_as_an_orderly_shutdown() {
    let _serial = exclusive().await;
    let runs = env_count("QMP_QUIT_RUNS", 50);
    for kind in SYSTEMS {
        let mut resets = 0;
        for _ in 0..runs {
            let Some(mut qemu) = Qemu::start(kind) else {
                return;
            };
            let socket = qemu.socket.clone();
            if tokio::task::spawn_blocking(move || raw_quit_resets(&socket))
                .await
                .unwrap()
            {
                resets += 1;
            }
            qemu.kill();
        }
        let mut ok = 0;
        for run in 0..runs {
            let Some(mut qemu) = Qemu::start(kind) else {
                return;
            };
            within(20, async {
                let client = qemu.connect().await;
                client
                    .execute("quit", ())
                    .await
                    .unwrap_or_else(|e| panic!("{kind:?} run {run}: {e}"));
                let reason = client.closed().await;
                assert!(
                    matches!(*reason, DisconnectReason::ServerShutDown),
                    "{kind:?} run {run}: {reason}"
                );
                ok += 1;
            })
            .await;
            qemu.kill();
        }
        if ok > 0 {
            report(
                &format!("`quit` on QEMU {}, then wait for the end of the connection", version(kind)),
                runs,
                &format!("{ok} of {runs} runs end with ServerShutDown, none with an error (a plain socket client saw QEMU reset the connection in {resets} of {runs} runs)"),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. QEMU's JSON parser limits
// ---------------------------------------------------------------------------------------------

/// Arguments `{"x": RAW}` with `RAW` written as it is.
#[derive(serde::Serialize)]
struct RawArg<'a> {
    x: &'a RawValue,
}

fn raw(text: String) -> Box<RawValue> {
    RawValue::from_string(text).expect("valid JSON")
}

/// `levels` nested arrays: with the command object and the arguments object, `levels + 2`
/// levels in all.
fn nested(levels: usize) -> Box<RawValue> {
    raw(format!("{}{}", "[".repeat(levels), "]".repeat(levels)))
}

/// `[{},0,...]` with `k` zeros (`extra`: `[{},{},0,...]`): the whole `query-status` command
/// then has 20 + 2k tokens (+1 with `extra`).
fn tokens(k: usize, extra: bool) -> Box<RawValue> {
    let mut s = String::with_capacity(2 * k + 8);
    s.push_str(if extra { "[{},{}" } else { "[{}" });
    for _ in 0..k {
        s.push_str(",0");
    }
    s.push(']');
    raw(s)
}

/// Sends `text` to QEMU over a plain socket, then `query-version` with id 2, and returns the
/// errors without id that came before its reply (QEMU's own verdict on `text`).
fn raw_send(socket: &std::path::Path, text: &str) -> Vec<String> {
    let mut stream = StdUnixStream::connect(socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(600)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("greeting");
    stream
        .write_all(b"{\"execute\":\"qmp_capabilities\",\"id\":1}\n")
        .expect("negotiate");
    line.clear();
    reader.read_line(&mut line).expect("negotiation reply");
    stream.write_all(text.as_bytes()).expect("send");
    stream
        .write_all(b"\n{\"execute\":\"query-version\",\"id\":2}\n")
        .expect("send");
    let mut errors = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).expect("read") == 0 {
            panic!("QEMU closed the connection");
        }
        let msg: Value = serde_json::from_str(&line).expect("JSON from QEMU");
        if msg["id"] == json!(2) {
            return errors;
        }
        assert!(
            msg.get("id").is_none(),
            "QEMU answered the rejected command: {msg}"
        );
        if let Some(desc) = msg["error"]["desc"].as_str() {
            errors.push(desc.to_string());
        }
    }
}

/// `query-status` with `{"x": RAW}` as QEMU would receive it from a client that does not check
/// (with a 6-digit id, like ours, so that the token sizes are the same).
fn raw_command(x: &RawValue) -> String {
    format!(
        r#"{{"execute":"query-status","arguments":{{"x":{}}},"id":100001}}"#,
        x.get()
    )
}

/// At the limit QEMU parses the command (it then objects to the unexpected argument, with our
/// id); one beyond it we refuse before sending, and QEMU itself, sent the same over a plain
/// socket, answers only with errors without id.
async fn boundary(
    kind: Kind,
    at: Box<RawValue>,
    beyond: Box<RawValue>,
    qemu_error: &str,
) -> String {
    let Some(qemu) = Qemu::start(kind) else {
        return String::new();
    };
    let client = qemu
        .connect_with(Client::builder().capabilities([Capability::Oob]))
        .await;
    let start = Instant::now();
    let err = client
        .execute("query-status", RawArg { x: &at })
        .await
        .expect_err("QEMU objects to the argument");
    let parsed_in = start.elapsed();
    let qmp = err
        .qmp_error()
        .unwrap_or_else(|| panic!("{kind:?}: at the limit: {err:?}"));
    assert_eq!(qmp.desc, "Parameter 'x' is unexpected", "{kind:?}");
    let err = client
        .execute("query-status", RawArg { x: &beyond })
        .await
        .expect_err("refused");
    assert!(
        matches!(err, ExecuteError::ExceedsJsonLimit { .. }),
        "{kind:?}: {err:?}"
    );
    assert!(!err.was_sent());
    // Still in step.
    assert_eq!(
        client.execute("query-status", ()).await.unwrap()["status"],
        "running"
    );
    assert_eq!(client.stats().replies_without_id, 0);
    client.close().await;
    // QEMU's own verdict on the same text one beyond the limit.
    let text = raw_command(&beyond);
    let socket = qemu.socket.clone();
    let errors = tokio::task::spawn_blocking(move || raw_send(&socket, &text))
        .await
        .unwrap();
    assert!(
        errors.first().is_some_and(|e| e == qemu_error),
        "{kind:?}: QEMU answered {errors:?}"
    );
    let took = if parsed_in < Duration::from_secs(1) {
        format!("{} ms", parsed_in.as_millis())
    } else {
        format!("{:.1} s", parsed_in.as_secs_f64())
    };
    let plural = if errors.len() == 1 { "" } else { "s" };
    format!(
        "{}: parsed at the limit (answered in {took}), refused locally beyond it (sent anyway, QEMU answers with {} error{plural} without id)",
        version(kind),
        errors.len()
    )
}

#[tokio::test]
async fn issue_9_nesting_depth_boundary_against_qemu() {
    let _serial = exclusive().await;
    let mut results = Vec::new();
    for kind in SYSTEMS {
        results.push(
            within(
                60,
                boundary(
                    kind,
                    nested(1022),
                    nested(1023),
                    "JSON nesting depth limit exceeded",
                ),
            )
            .await,
        );
    }
    if results.iter().all(|r| !r.is_empty()) {
        report(
            "arguments nested 1,024 levels (the limit) and 1,025",
            2,
            &results.join("; "),
        );
    }
}

#[tokio::test]
async fn issue_9_token_count_boundary_against_qemu() {
    let _serial = exclusive().await;
    let k = ((1 << 21) - 20) / 2;
    let mut results = Vec::new();
    for kind in SYSTEMS {
        results.push(
            within(
                300,
                boundary(
                    kind,
                    tokens(k, false),
                    tokens(k - 1, true),
                    "JSON token count limit exceeded",
                ),
            )
            .await,
        );
    }
    if results.iter().all(|r| !r.is_empty()) {
        report(
            "a command of 2,097,152 JSON tokens (the limit) and 2,097,153",
            2,
            &results.join("; "),
        );
    }
}

/// The token size limit at its boundary: 64 MiB - 1 bytes of tokens pass, one more is refused.
/// QEMU reads its monitor one byte per read (about 250 KB/s here), so sending 64 MiB takes
/// about 4.5 minutes per QEMU: run it with `cargo test --test issue_9_qemu -- --ignored`. The
/// default suite checks the refusal against QEMU in
/// `issue_9_token_size_refusal_against_qemu`.
#[tokio::test]
#[ignore = "sends 64 MiB to each QEMU, which reads them in about 4.5 minutes"]
async fn issue_9_token_size_boundary_against_qemu() {
    // `query-status` with `{"x": "aaa..."}`: the tokens besides the string take 59 bytes
    // (`{` `"execute"` `:` `"query-status"` `,` `"arguments"` `:` `{` `"x"` `:` the string's
    // two quotes, `}` and the id's `,` `"id"` `:` 6 digits `}`).
    let fixed = 1 + 9 + 1 + 14 + 1 + 11 + 1 + 1 + 3 + 1 + 2 + 1 + (1 + 4 + 1 + 6 + 1);
    let n = (64 << 20) - 1 - fixed;
    let string = |len: usize| raw(format!("\"{}\"", "a".repeat(len)));
    let runs = SYSTEMS.map(|kind| {
        let (at, beyond) = (string(n), string(n + 1));
        tokio::spawn(async move {
            within(
                1200,
                boundary(kind, at, beyond, "JSON token size limit exceeded"),
            )
            .await
        })
    });
    let mut results = Vec::new();
    for r in runs {
        results.push(r.await.unwrap());
    }
    report(
        "a command whose JSON tokens take 67,108,863 bytes (the limit) and 67,108,864",
        2,
        &results.join("; "),
    );
}

/// The token size limit, beyond it: refused before sending, and the connection stays in step.
#[tokio::test]
async fn issue_9_token_size_refusal_against_qemu() {
    for kind in SYSTEMS {
        let Some(qemu) = Qemu::start(kind) else {
            continue;
        };
        within(60, async {
            let client = qemu.connect().await;
            let big = "a".repeat(64 << 20);
            let err = client
                .execute("query-status", json!({ "x": big }))
                .await
                .unwrap_err();
            match &err {
                ExecuteError::ExceedsJsonLimit {
                    limit: JsonLimit::TokenSize { bytes, limit },
                    ..
                } => {
                    assert_eq!(*limit, (64 << 20) - 1);
                    assert!(*bytes > *limit);
                }
                other => panic!("{kind:?}: {other:?}"),
            }
            assert_eq!(
                client.execute("query-status", ()).await.unwrap()["status"],
                "running"
            );
            assert_eq!(client.stats().commands_sent, 1);
        })
        .await;
    }
}

/// The issue's input: `qom-list` with a path nested 1,100 levels deep. Refused before sending,
/// and the 300 strictly sequential calls after it each get their own reply, with and without
/// oob. (Sent as it is, QEMU answers it with over a thousand errors without id.)
#[tokio::test]
async fn issue_9_deeply_nested_argument_is_refused_and_later_calls_are_unaffected() {
    let _serial = exclusive().await;
    for kind in SYSTEMS {
        for oob in [false, true] {
            let Some(qemu) = Qemu::start(kind) else {
                return;
            };
            within(60, async {
                let caps = if oob { vec![Capability::Oob] } else { vec![] };
                let client = qemu.connect_with(Client::builder().capabilities(caps)).await;
                let mut path = json!("/");
                for _ in 0..1100 {
                    path = json!([path]);
                }
                let err = client
                    .execute("qom-list", json!({ "path": path }))
                    .await
                    .unwrap_err();
                assert!(
                    matches!(err, ExecuteError::ExceedsJsonLimit { limit: JsonLimit::NestingDepth { depth: 1102, limit: 1024 }, .. }),
                    "{kind:?}: {err:?}"
                );
                for i in 0..300 {
                    let path = format!("/after-{i}");
                    let err = client
                        .execute("qom-get", json!({"path": path, "property": "type"}))
                        .await
                        .unwrap_err();
                    let desc = &err.qmp_error().unwrap_or_else(|| panic!("{kind:?} oob {oob} call {i}: {err:?}")).desc;
                    assert!(desc.contains(&path), "{kind:?} oob {oob} call {i} got: {desc}");
                }
                let stats = client.stats();
                assert_eq!((stats.replies_without_id, stats.commands_unanswered), (0, 0), "{stats:?}");
                if !oob {
                    client.close().await;
                    let mut path_text = String::from("\"/\"");
                    for _ in 0..1100 {
                        path_text = format!("[{path_text}]");
                    }
                    let text = format!(r#"{{"execute":"qom-list","arguments":{{"path":{path_text}}},"id":1}}"#);
                    let socket = qemu.socket.clone();
                    let errors = tokio::task::spawn_blocking(move || raw_send(&socket, &text)).await.unwrap();
                    assert_eq!(errors.first().map(String::as_str), Some("JSON nesting depth limit exceeded"));
                    println!("{kind:?}: the 1,100-deep qom-list, sent as it is, draws {} errors without id from QEMU", errors.len());
                }
            })
            .await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Full listen queue
// ---------------------------------------------------------------------------------------------

/// QEMU listens with a backlog of 1. With the monitor held by client A and two more
/// connections queued, a third `connect(2)` fails with EAGAIN: without `wait_for_server` the
/// error says the listen queue is full; with it, client C connects once A lets go (after 1 s).
#[tokio::test]
async fn issue_9_full_listen_queue_against_qemu() {
    let _serial = exclusive().await;
    for kind in SYSTEMS {
        let Some(qemu) = Qemu::start(kind) else {
            return;
        };
        let waited = within(30, async {
            let a = qemu.connect().await;
            a.execute("query-status", ()).await.unwrap();
            let queued: Vec<StdUnixStream> = (0..2)
                .map(|_| StdUnixStream::connect(&qemu.socket).expect("queued connect"))
                .collect();
            let err = Client::connect_unix(&qemu.socket).await.unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("listen queue is full"), "{kind:?}: {msg}");

            let release = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                a.close().await;
                drop(queued);
            });
            let start = Instant::now();
            let c = Client::builder()
                .wait_for_server(true)
                .timeout(Some(Duration::from_secs(15)))
                .connect_unix(&qemu.socket)
                .await
                .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            let waited = start.elapsed();
            assert!(waited >= Duration::from_millis(900), "{kind:?}: {waited:?}");
            assert_eq!(
                c.execute("query-status", ()).await.unwrap()["status"],
                "running"
            );
            release.await.unwrap();
            waited
        })
        .await;
        report(
            &format!("full listen queue on QEMU {}: the monitor held, two connections queued, a third client connects", version(kind)),
            1,
            &format!("without wait_for_server: an error saying the listen queue is full; with it: connected after {:.2} s (the holder let go after 1 s)", waited.as_secs_f64()),
        );
    }
}
