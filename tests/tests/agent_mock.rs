//! Issue 14: the guest agent's wire quirks, against scripted fake agents over in-memory streams
//! (the real qemu-ga is in `agent_qga.rs`).
//!
//! The fake agent reads commands as qemu-ga does: a 0xFF byte resets its parser (and is
//! reported with an error without id, as qemu-ga 10.0.2 does), `guest-sync-delimited` is
//! answered with the delimiter byte before the reply, and each test decides how the agent
//! answers the rest.

// Test fixtures (the fake agent, the chardev proxy) panic on what cannot happen in a test.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qmp_core::{Client, ConnectError, DisconnectReason, ExecuteError, ProtocolError};
use qmp_tests::within;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// What the fake agent does with one command.
enum Answer {
    /// Reply with this `return` value.
    Return(Value),
    /// Reply with an error of this class and description.
    Error(&'static str, String),
    /// Write these bytes verbatim.
    Raw(Vec<u8>),
    /// Send nothing.
    Silent,
}

type Script = Box<dyn FnMut(&str, &Value) -> Answer + Send>;

/// How the fake agent behaves beyond the script.
#[derive(Clone, Copy)]
struct Fake {
    /// Echo command ids (qemu-ga since about 2.12) or not (older agents).
    echo_ids: bool,
    /// Know `guest-sync-delimited` (else it is `CommandNotFound`, as before qemu-ga 1.1).
    delimited: bool,
}

const MODERN: Fake = Fake {
    echo_ids: true,
    delimited: true,
};

/// Everything the fake agent received, and the most commands it saw waiting at once.
#[derive(Default)]
struct Log {
    received: Vec<u8>,
    commands: Vec<String>,
    most_waiting: usize,
}

/// Runs a fake agent on `io` until the client goes away.
async fn fake_agent(mut io: DuplexStream, fake: Fake, mut script: Script, log: Arc<Mutex<Log>>) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match io.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        log.lock().unwrap().received.extend_from_slice(&chunk[..n]);
        // One command per line (the client writes one per line), 0xFF resets.
        let mut commands = Vec::new();
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            commands.push(line);
        }
        {
            let mut log = log.lock().unwrap();
            log.most_waiting = log.most_waiting.max(commands.len());
        }
        for mut line in commands {
            let mut out = Vec::new();
            while let Some(ff) = line.iter().position(|&b| b == 0xFF) {
                line.drain(..=ff);
                out.extend_from_slice(
                    b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\ufffd'\"}}\n",
                );
            }
            let Ok(cmd) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            let name = cmd["execute"].as_str().unwrap_or_default().to_string();
            log.lock().unwrap().commands.push(name.clone());
            let id = cmd.get("id").filter(|_| fake.echo_ids).cloned();
            let reply = |mut body: Value| {
                if let Some(id) = &id {
                    body["id"] = id.clone();
                }
                let mut text = serde_json::to_vec(&body).unwrap();
                text.push(b'\n');
                text
            };
            let answer = match name.as_str() {
                "guest-sync-delimited" if fake.delimited => {
                    out.push(0xFF);
                    Answer::Return(cmd["arguments"]["id"].clone())
                }
                "guest-sync-delimited" => Answer::Error(
                    "CommandNotFound",
                    "The command guest-sync-delimited has not been found".into(),
                ),
                "guest-sync" => Answer::Return(cmd["arguments"]["id"].clone()),
                "guest-info" => {
                    Answer::Return(json!({"version": "10.0.2", "supported_commands": []}))
                }
                _ => script(&name, &cmd),
            };
            match answer {
                Answer::Return(v) => out.extend(reply(json!({ "return": v }))),
                Answer::Error(class, desc) => {
                    out.extend(reply(json!({"error": {"class": class, "desc": desc}})))
                }
                Answer::Raw(bytes) => out.extend(bytes),
                Answer::Silent => {}
            }
            if io.write_all(&out).await.is_err() {
                return;
            }
        }
    }
}

/// A client in guest agent mode connected to a fake agent.
async fn connect(
    fake: Fake,
    builder: qmp_core::ClientBuilder,
    script: impl FnMut(&str, &Value) -> Answer + Send + 'static,
) -> (Client, Arc<Mutex<Log>>) {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let log = Arc::new(Mutex::new(Log::default()));
    tokio::spawn(fake_agent(theirs, fake, Box::new(script), log.clone()));
    let client = builder
        .guest_agent(true)
        .connect_stream(ours)
        .await
        .expect("connect to the fake agent");
    (client, log)
}

fn pong(name: &str, _: &Value) -> Answer {
    match name {
        "guest-ping" => Answer::Return(json!({})),
        other => Answer::Error(
            "CommandNotFound",
            format!("The command {other} has not been found"),
        ),
    }
}

/// The issue's reproduction: `guest-sync-delimited` is answered with
/// `\xff{"return": 1234, "id": N}\n`, exactly as qemu-ga 10.0.2 writes it; the call returns 1234
/// and the connection stays up.
#[tokio::test]
async fn issue_14_delimited_reply_returns_its_value_and_keeps_the_connection() {
    within(10, async {
        let (client, log) = connect(MODERN, Client::builder(), |name, cmd| match name {
            // Exactly qemu-ga's bytes: "return" first, a space after each colon.
            "guest-ping" => {
                Answer::Raw(format!("{{\"return\": {{}}, \"id\": {}}}\n", cmd["id"]).into_bytes())
            }
            _ => Answer::Silent,
        })
        .await;
        assert!(client.is_guest_agent());
        assert_eq!(client.greeting().version, qmp_core::Version::new(10, 0, 2));
        let value = client
            .execute("guest-sync-delimited", json!({"id": 1234}))
            .await
            .expect("guest-sync-delimited");
        assert_eq!(value, json!(1234));
        for _ in 0..3 {
            client
                .execute("guest-ping", ())
                .await
                .expect("connection stays up");
        }
        assert!(client.disconnect_reason().is_none());
        let log = log.lock().unwrap();
        // Connecting resynchronised: the delimiter byte, then guest-sync-delimited.
        assert_eq!(log.received[0], 0xFF);
        assert!(log.received[1..].starts_with(b"{\"execute\":\"guest-sync-delimited\""));
        assert_eq!(
            log.commands[..2],
            ["guest-sync-delimited".to_string(), "guest-info".to_string()]
        );
    })
    .await
}

/// Whatever a previous client or a restarted agent left in the channel (stale replies, half a
/// message, stray bytes) is dropped while connecting; only the reply returning the random
/// value counts.
#[tokio::test]
async fn stale_output_before_the_delimiter_is_dropped_when_connecting() {
    within(10, async {
        let (ours, mut theirs) = tokio::io::duplex(1 << 16);
        let agent = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !got.contains(&b'\n') {
                let n = theirs.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            let start = got.iter().position(|&b| b == b'{').unwrap();
            let end = got.iter().position(|&b| b == b'\n').unwrap();
            let cmd: Value = serde_json::from_slice(&got[start..end]).unwrap();
            let value = &cmd["arguments"]["id"];
            // A stale reply to someone else, a reply with a wrong value, half a message, and
            // a stray closing bracket, then the delimiter and the real reply.
            let mut out = Vec::new();
            out.extend_from_slice(b"{\"return\": 5, \"id\": 3}\n");
            out.extend_from_slice(b"{\"return\": 77, \"id\": 77}\n");
            out.extend_from_slice(b"{\"return\": {\"buf-b64\": \"QUJD");
            out.push(0xFF);
            out.extend_from_slice(format!("{{\"return\": {value}, \"id\": {value}}}\n").as_bytes());
            theirs.write_all(&out).await.unwrap();
            // guest-info: blocked on this agent.
            let mut got = Vec::new();
            while !got.contains(&b'\n') {
                let n = theirs.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            let cmd: Value = serde_json::from_slice(&got[..got.len() - 1]).unwrap();
            theirs
                .write_all(
                    format!(
                        "{{\"error\": {{\"class\": \"GenericError\", \"desc\": \"Command guest-info has been disabled\"}}, \"id\": {}}}\n",
                        cmd["id"]
                    )
                    .as_bytes(),
                )
                .await
                .unwrap();
            theirs
        });
        let client = Client::builder()
            .guest_agent(true)
            .connect_stream(ours)
            .await
            .expect("connect despite stale output");
        assert_eq!(client.stats().stray_during_handshake, 2);
        // guest-info refused: the version is unknown.
        assert_eq!(client.greeting().version, qmp_core::Version::new(0, 0, 0));
        drop(agent.await.unwrap());
    })
    .await
}

/// An agent that echoes no ids (older qemu-ga): the connection notices while connecting, keeps
/// one command in flight, and gives each reply to the command waiting, so concurrent callers
/// still get their own replies.
#[tokio::test]
async fn agent_without_ids_gets_one_command_at_a_time() {
    within(10, async {
        let fake = Fake {
            echo_ids: false,
            delimited: true,
        };
        let (client, log) = connect(fake, Client::builder(), |name, cmd| match name {
            "guest-file-read" => Answer::Return(json!({
                "count": 1, "eof": false, "buf-b64": cmd["arguments"]["handle"].to_string()
            })),
            _ => Answer::Silent,
        })
        .await;
        let calls = (0..40).map(|handle| {
            let client = client.clone();
            tokio::spawn(async move {
                let reply = client
                    .execute("guest-file-read", json!({"handle": handle}))
                    .await
                    .unwrap();
                assert_eq!(reply["buf-b64"], json!(handle.to_string()));
            })
        });
        for call in calls.collect::<Vec<_>>() {
            call.await.unwrap();
        }
        assert_eq!(log.lock().unwrap().most_waiting, 1, "one command at a time");
        assert_eq!(client.stats().replies_without_id, 40);
        // On demand, resynchronising still works (its value is checked, not an id).
        client.sync_guest_agent().await.unwrap();
    })
    .await
}

/// An agent without `guest-sync-delimited` (before qemu-ga 1.1): connecting falls back to
/// `guest-sync`.
#[tokio::test]
async fn agent_without_the_delimited_form_gets_guest_sync() {
    within(10, async {
        let fake = Fake {
            echo_ids: false,
            delimited: false,
        };
        let (client, log) = connect(fake, Client::builder(), pong).await;
        client.execute("guest-ping", ()).await.unwrap();
        let commands = log.lock().unwrap().commands.clone();
        assert_eq!(
            commands[..4],
            [
                "guest-sync-delimited",
                "guest-sync",
                "guest-info",
                "guest-ping"
            ]
            .map(String::from)
        );
    })
    .await
}

/// `guest-shutdown` (like `guest-suspend-*`) sends no reply when it succeeds: the typed call
/// completes once sent, and the next command is answered normally.
#[tokio::test]
async fn commands_without_success_reply_complete_when_sent() {
    within(10, async {
        let (client, log) = connect(MODERN, Client::builder(), |name, cmd| match name {
            "guest-shutdown" | "guest-suspend-ram" => Answer::Silent,
            _ => pong(name, cmd),
        })
        .await;
        let agent = qmp_ga::GuestAgent::from(client.clone());
        agent.guest_shutdown().mode("powerdown").await.unwrap();
        agent.guest_suspend_ram().await.unwrap();
        agent.guest_ping().await.unwrap();
        let commands = log.lock().unwrap().commands.clone();
        assert_eq!(
            commands[2..],
            ["guest-shutdown", "guest-suspend-ram", "guest-ping"].map(String::from)
        );
        assert_eq!(client.stats().in_flight, 0);
    })
    .await
}

/// A command the agent never answers times out; the next command is preceded by a
/// resynchronisation (0xFF, then guest-sync-delimited), so half a message the agent left in
/// the stream is dropped and the connection carries on.
#[tokio::test]
async fn resync_after_a_timeout_drops_half_a_reply() {
    within(10, async {
        let (client, log) = connect(
            MODERN,
            Client::builder().command_timeout(Some(Duration::from_millis(200))),
            |name, cmd| match name {
                // Half a reply, then nothing (an agent that died mid-reply).
                "guest-file-read" => {
                    Answer::Raw(b"{\"return\": {\"count\": 3, \"buf-b64\": \"QU".to_vec())
                }
                _ => pong(name, cmd),
            },
        )
        .await;
        let err = client
            .execute("guest-file-read", json!({"handle": 1}))
            .await
            .unwrap_err();
        assert!(matches!(err, ExecuteError::Timeout { .. }), "{err}");
        let started = Instant::now();
        client
            .execute("guest-ping", ())
            .await
            .expect("ping after resync");
        let took = started.elapsed();
        eprintln!("resynchronised and answered in {took:?}");
        let log = log.lock().unwrap();
        let n = log.commands.len();
        assert_eq!(
            log.commands[n - 2..],
            ["guest-sync-delimited", "guest-ping"].map(String::from)
        );
        assert!(client.disconnect_reason().is_none());
    })
    .await
}

/// Unreadable output (an agent restarted mid-reply writes a new reply into the old one) is
/// skipped rather than ending the connection.
#[tokio::test]
async fn unreadable_output_is_skipped_not_fatal() {
    within(10, async {
        let (client, _log) = connect(
            MODERN,
            Client::builder().command_timeout(Some(Duration::from_millis(300))),
            |name, cmd| match name {
                "guest-get-time" => Answer::Raw(b"{\"return\": 12, \"id\": tru}\n".to_vec()),
                _ => pong(name, cmd),
            },
        )
        .await;
        let err = client.execute("guest-get-time", ()).await.unwrap_err();
        assert!(matches!(err, ExecuteError::Timeout { .. }), "{err}");
        client.execute("guest-ping", ()).await.unwrap();
        assert_eq!(client.stats().malformed_messages, 1);
    })
    .await
}

/// Large replies (base64 file contents) are accepted up to the configured limit; beyond it the
/// connection ends with a clear error instead of buffering without bound.
#[tokio::test]
async fn large_replies_up_to_the_limit() {
    within(30, async {
        let big = "QUJD".repeat(3 << 20); // 12 MiB of base64
        let reply = big.clone();
        let (client, _log) = connect(MODERN, Client::builder(), move |name, cmd| match name {
            "guest-file-read" => {
                Answer::Return(json!({"count": 9 << 20, "eof": true, "buf-b64": reply}))
            }
            _ => pong(name, cmd),
        })
        .await;
        let got = client
            .execute("guest-file-read", json!({"handle": 1}))
            .await
            .unwrap();
        assert_eq!(got["buf-b64"].as_str().map(str::len), Some(big.len()));
        client.execute("guest-ping", ()).await.unwrap();

        let big = "QUJD".repeat(1 << 19); // 2 MiB
        let (client, _log) = connect(
            MODERN,
            Client::builder().max_message_size(1 << 20),
            move |name, cmd| match name {
                "guest-file-read" => {
                    Answer::Return(json!({"count": 0, "eof": true, "buf-b64": big}))
                }
                _ => pong(name, cmd),
            },
        )
        .await;
        let err = client
            .execute("guest-file-read", json!({"handle": 1}))
            .await
            .unwrap_err();
        let ExecuteError::Disconnected { reason, .. } = &err else {
            panic!("{err}")
        };
        assert!(
            matches!(
                **reason,
                DisconnectReason::Protocol(ProtocolError::MessageTooLarge { limit: 1048576 })
            ),
            "{reason}"
        );
    })
    .await
}

/// While a resynchronisation is waiting, the agent's errors without id (about the delimiter
/// byte and whatever it discarded) are expected and dropped quietly: no sync probe, no error
/// held for anyone.
#[tokio::test]
async fn errors_about_the_delimiter_are_dropped() {
    within(10, async {
        let (client, _log) = connect(MODERN, Client::builder(), pong).await;
        for _ in 0..5 {
            client.sync_guest_agent().await.unwrap();
        }
        client.execute("guest-ping", ()).await.unwrap();
        let stats = client.stats();
        assert_eq!(stats.sync_probes, 0);
        assert_eq!(stats.commands_unanswered, 0);
        assert_eq!(stats.replies_without_id, 5);
    })
    .await
}

/// A QMP connection to something that sends no greeting says that a guest agent needs
/// `guest_agent`, and guest agent mode refuses a QMP monitor by name.
#[tokio::test]
async fn wrong_mode_errors_say_what_to_do() {
    within(10, async {
        let (ours, _silent) = tokio::io::duplex(4096);
        let err = Client::builder()
            .timeout(Some(Duration::from_millis(100)))
            .connect_stream(ours)
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectError::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("guest_agent"), "{err}");

        let (ours, mut theirs) = tokio::io::duplex(4096);
        theirs
            .write_all(b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": \"\"}, \"capabilities\": []}}\r\n")
            .await
            .unwrap();
        let err = Client::builder()
            .guest_agent(true)
            .connect_stream(ours)
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectError::GuestAgentSync { .. }), "{err}");
        assert!(err.to_string().contains("QMP monitor"), "{err}");

        let (ours, mut theirs) = tokio::io::duplex(4096);
        theirs
            .write_all(b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": \"\"}, \"capabilities\": []}}\r\n")
            .await
            .unwrap();
        let client = Client::builder().connect_stream(ours);
        let answer = async {
            let mut buf = vec![0u8; 4096];
            let n = theirs.read(&mut buf).await.unwrap();
            let cmd: Value = serde_json::from_slice(buf[..n].trim_ascii()).unwrap();
            theirs
                .write_all(format!("{{\"return\": {{}}, \"id\": {}}}\r\n", cmd["id"]).as_bytes())
                .await
                .unwrap();
            theirs
        };
        let (client, _theirs) = tokio::join!(client, answer);
        let client = client.unwrap();
        let err = client.sync_guest_agent().await.unwrap_err();
        assert!(matches!(err, ExecuteError::NotGuestAgent { .. }), "{err}");
    })
    .await
}

/// Without ids, a command that never replies on success must not hold the one slot, and its
/// error reply (the agent blocks it) must not be taken for the next command's: it is followed
/// by a resynchronisation, which drops that error. A timed-out command is given up the same
/// way, and its late output cannot reach a later caller.
#[tokio::test]
async fn agent_without_ids_no_reply_commands_and_timeouts() {
    within(10, async {
        let fake = Fake {
            echo_ids: false,
            delimited: true,
        };
        let (client, log) = connect(
            fake,
            Client::builder().command_timeout(Some(Duration::from_millis(200))),
            |name, cmd| match name {
                "guest-shutdown" => Answer::Error(
                    "GenericError",
                    "Command guest-shutdown has been disabled".into(),
                ),
                "guest-suspend-ram" | "guest-stuck" => Answer::Silent,
                "guest-get-time" => Answer::Return(json!(42)),
                _ => pong(name, cmd),
            },
        )
        .await;
        let agent = qmp_ga::GuestAgent::from(client.clone());
        agent.guest_shutdown().await.unwrap();
        assert_eq!(agent.guest_get_time().await.unwrap(), 42);
        agent.guest_suspend_ram().await.unwrap();
        assert_eq!(agent.guest_get_time().await.unwrap(), 42);

        let err = client.execute("guest-stuck", ()).await.unwrap_err();
        assert!(matches!(err, ExecuteError::Timeout { .. }), "{err}");
        assert_eq!(agent.guest_get_time().await.unwrap(), 42);
        agent.guest_ping().await.unwrap();
        let commands = log.lock().unwrap().commands.clone();
        assert_eq!(
            commands[2..],
            [
                "guest-shutdown",
                "guest-sync-delimited",
                "guest-get-time",
                "guest-suspend-ram",
                "guest-sync-delimited",
                "guest-get-time",
                "guest-stuck",
                "guest-sync-delimited",
                "guest-get-time",
                "guest-ping",
            ]
            .map(String::from)
        );
        // Closing does not wait for replies that will not come.
        let started = Instant::now();
        client.close().await;
        assert!(started.elapsed() < Duration::from_secs(1));
    })
    .await
}

/// Closing right after a command that never replies returns at once (it is not waited for).
#[tokio::test]
async fn close_after_a_no_reply_command_does_not_wait() {
    within(10, async {
        let (client, _log) = connect(MODERN, Client::builder(), |name, cmd| match name {
            "guest-shutdown" => Answer::Silent,
            _ => pong(name, cmd),
        })
        .await;
        qmp_ga::GuestAgent::from(client.clone())
            .guest_shutdown()
            .await
            .unwrap();
        let started = Instant::now();
        client.close().await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    })
    .await
}
