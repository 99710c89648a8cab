//! Hostile and broken clients against our server: killed mid-command, flooding, never
//! reading, huge messages, deep nesting, invalid UTF-8. Each case asserts that the server
//! neither panics, hangs nor grows without bound, and that other clients are served. Lines
//! starting with `SERVER-RELIABILITY |` are the figures behind the README's server table
//! (`cargo test -p qmp-tests --test server_faults -- --nocapture`); `SERVER-SPEED |` lines
//! give our client's throughput against our server.

// Test code: unwrapping our own fixtures' results is fine.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmp_core::server::{Call, Server};
use qmp_core::Client;
use qmp_tests::memory::{exclusive, mib, peak, reset_peak, rss};
use qmp_tests::wire::RawPeer;
use qmp_tests::{within, TempDir};
use serde_json::json;
use tokio::io::AsyncWriteExt;

fn report(case: &str, result: &str, memory: &str) {
    println!("SERVER-RELIABILITY | {case} | {result} | {memory}");
}

fn server(sessions: usize) -> (Server, std::path::PathBuf, TempDir) {
    let dir = TempDir::new();
    let path = dir.join("qmp.sock");
    let server = Server::builder()
        .max_sessions(sessions)
        .command("query-status", |_: Call| async {
            Ok(json!({"status": "running", "running": true}))
        })
        .bind_unix(&path)
        .unwrap();
    (server, path, dir)
}

/// Round trips of a well-behaved client: the slowest one.
async fn worst_round_trip(client: &Client, n: usize) -> Duration {
    let mut worst = Duration::ZERO;
    for _ in 0..n {
        let t = Instant::now();
        client.execute("query-status", ()).await.unwrap();
        worst = worst.max(t.elapsed());
    }
    worst
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_killed_mid_command() {
    within(30, async {
        let dropped = Arc::new(AtomicU64::new(0));
        let d = dropped.clone();
        let dir = TempDir::new();
        let path = dir.join("qmp.sock");
        let server = Server::builder()
            .command("hang", move |_: Call| {
                struct Count(Arc<AtomicU64>);
                impl Drop for Count {
                    fn drop(&mut self) {
                        self.0.fetch_add(1, Ordering::SeqCst);
                    }
                }
                let count = Count(d.clone());
                async move {
                    let _count = count;
                    std::future::pending::<()>().await;
                    Ok(json!({}))
                }
            })
            .command("query-status", |_: Call| async { Ok(json!({})) })
            .bind_unix(&path)
            .unwrap();
        for round in 0..20u64 {
            let mut peer = RawPeer::connect(&path).await;
            peer.handshake(&[]).await;
            // A stuck command, more queued behind it, then the client vanishes.
            peer.send(b"{\"execute\": \"hang\", \"id\": 1}\n{\"execute\": \"query-status\", \"id\": 2}\n{\"execute\": \"query-status\"").await;
            let session = server.wait_for_sessions(1).await.remove(0);
            tokio::time::sleep(Duration::from_millis(5)).await;
            drop(peer);
            within(5, session.closed()).await;
            assert_eq!(dropped.load(Ordering::SeqCst), round + 1);
        }
        // The next client is served as usual (one session at a time: the slot was freed).
        let client = Client::connect_unix(&path).await.unwrap();
        assert!(client.execute("query-status", ()).await.is_ok());
        report(
            "client killed with a command running and more queued",
            "20 times: the session ends at once, the running handler is dropped, the next client is served",
            "-",
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_never_reads() {
    let _serial = exclusive().await;
    within(60, async {
        let (server, path, _dir) = server(0);
        let mut peer = RawPeer::connect(&path).await;
        peer.handshake(&[]).await;
        let base = rss();
        reset_peak();
        // Write commands and never read a reply: the server must stop reading once its
        // replies back up, so our writes block.
        let line = b"{\"execute\": \"query-status\", \"id\": 123456}\n".repeat(1000);
        let mut sent = 0usize;
        let stalled = loop {
            match tokio::time::timeout(Duration::from_secs(1), peer.stream().write_all(&line)).await {
                Ok(Ok(())) => sent += line.len(),
                Ok(Err(e)) => panic!("write failed: {e}"),
                Err(_) => break true,
            }
            if sent > 1 << 30 {
                break false;
            }
        };
        assert!(stalled, "the server kept reading 1 GiB of commands whose replies nobody read");
        let growth = peak().saturating_sub(base);
        // Meanwhile another client is served.
        let other = Client::connect_unix(&path).await.unwrap();
        let worst = worst_round_trip(&other, 100).await;
        assert!(worst < Duration::from_secs(2), "{worst:?}");
        assert!(growth < 64 << 20, "memory grew by {}", mib(growth));
        report(
            "a client writing commands and never reading replies",
            &format!(
                "the server stopped reading after {} KiB of commands; another client's slowest round trip {:.1} ms",
                sent >> 10,
                worst.as_secs_f64() * 1e3
            ),
            &format!("+{}", mib(growth)),
        );
        // Events to it wait in a bounded queue; try_emit reports it full.
        let session = server.sessions().remove(0);
        let mut full = false;
        for _ in 0..100_000 {
            if session.try_emit("FLOOD", json!({"pad": "x".repeat(100)})).is_err() {
                full = true;
                break;
            }
        }
        assert!(full, "the event queue of a client that never reads is unbounded");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_client_does_not_starve_others() {
    let _serial = exclusive().await;
    within(60, async {
        let (server, path, _dir) = server(0);
        let stop = Arc::new(AtomicBool::new(false));
        let base = rss();
        reset_peak();
        let mut floods = Vec::new();
        // One client floods valid commands (reading its replies), one floods garbage.
        for garbage in [false, true] {
            let path = path.clone();
            let stop = stop.clone();
            floods.push(tokio::spawn(async move {
                let mut peer = RawPeer::connect(&path).await;
                peer.handshake(&[]).await;
                let (mut rd, mut wr) = tokio::io::split(peer.into_stream());
                let reader = tokio::spawn(async move {
                    let mut buf = vec![0u8; 1 << 16];
                    let mut total = 0u64;
                    loop {
                        match tokio::io::AsyncReadExt::read(&mut rd, &mut buf).await {
                            Ok(0) | Err(_) => return total,
                            Ok(n) => total += n as u64,
                        }
                    }
                });
                let chunk: Vec<u8> = if garbage {
                    b"]\xff}garbage,".repeat(4000)
                } else {
                    b"{\"execute\": \"query-status\"}\n".repeat(2000)
                };
                let mut sent = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if wr.write_all(&chunk).await.is_err() {
                        break;
                    }
                    sent += chunk.len() as u64;
                }
                drop(wr);
                // Detached: it reads until the server closes the connection.
                drop(reader);
                sent
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let client = Client::connect_unix(&path).await.unwrap();
        let t = Instant::now();
        let worst = worst_round_trip(&client, 200).await;
        let elapsed = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        let mut flooded = 0;
        for f in floods {
            flooded += f.await.unwrap();
        }
        let growth = peak().saturating_sub(base);
        assert!(worst < Duration::from_secs(2), "slowest round trip {worst:?}");
        assert!(growth < 64 << 20, "memory grew by {}", mib(growth));
        report(
            "two clients flooding (valid commands; garbage) while a third works",
            &format!(
                "{} MiB flooded; the third client's 200 round trips took {:.0} ms, slowest {:.1} ms",
                flooded >> 20,
                elapsed.as_secs_f64() * 1e3,
                worst.as_secs_f64() * 1e3
            ),
            &format!("+{}", mib(growth)),
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_deep_and_invalid_input() {
    let _serial = exclusive().await;
    within(120, async {
        let (_server, path, _dir) = server(0);
        let mut peer = RawPeer::connect(&path).await;
        peer.handshake(&[]).await;

        // A 200 MiB string: QEMU's 64 MiB token limit cuts it; the rest is read as garbage
        // and reading goes on.
        let mut big = b"{\"execute\": \"query-status\", \"id\": \"".to_vec();
        big.extend(std::iter::repeat_n(b'x', 200 << 20));
        big.extend_from_slice(b"\"}\n{\"execute\": \"query-status\", \"id\": \"after-big\"}\n");
        // Measured from here: the 200 MiB this test holds are not the server's.
        let base = rss();
        reset_peak();
        let (mut rd, mut wr) = tokio::io::split(peer.into_stream());
        let writer = tokio::spawn(async move {
            wr.write_all(&big).await.unwrap();
            wr
        });
        let mut lines = Vec::new();
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 1 << 16];
        while !lines.iter().any(|l: &String| l.contains("after-big")) {
            let n = tokio::io::AsyncReadExt::read(&mut rd, &mut chunk).await.unwrap();
            assert!(n > 0, "closed");
            buf.extend_from_slice(&chunk[..n]);
            while let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = buf.drain(..end + 2).take(end).collect();
                lines.push(String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned());
            }
        }
        let wr = writer.await.unwrap();
        let growth = peak().saturating_sub(base);
        assert!(
            lines[0].contains("JSON token size limit exceeded"),
            "{:?}",
            &lines[..lines.len().min(3)]
        );
        assert!(growth < 400 << 20, "memory grew by {}", mib(growth));
        report(
            "a 200 MiB string in a command",
            &format!(
                "`JSON token size limit exceeded` at QEMU's 64 MiB, {} error replies for the rest, then the next command is answered",
                lines.len() - 1
            ),
            &format!("+{}", mib(growth)),
        );
        let mut peer = RawPeer::from_stream(rd.unsplit(wr));

        // JSON nested 102,500 deep (100 times QEMU's limit plus one: every 1025th `[` is an
        // error and starts over, so nothing is left open), then a valid command.
        reset_peak();
        let base = rss();
        let mut deep = "[".repeat(102_500).into_bytes();
        deep.extend_from_slice(b"\n{\"execute\": \"query-status\", \"id\": \"after-deep\"}\n");
        peer.send(&deep).await;
        let lines = peer.lines_until("after-deep", 30).await;
        let depth_errors = lines
            .iter()
            .filter(|l| l.contains("JSON nesting depth limit exceeded"))
            .count();
        assert_eq!(depth_errors, 100);
        assert!(lines.last().unwrap().starts_with("{\"return\""));
        let growth = peak().saturating_sub(base);
        report(
            "JSON nested 102,500 deep",
            &format!("{depth_errors} `JSON nesting depth limit exceeded` (QEMU's 1024), then the next command is answered"),
            &format!("+{}", mib(growth)),
        );

        // Invalid UTF-8 and binary garbage, then a valid command.
        let mut garbage: Vec<u8> = (0..=255u8).cycle().take(1 << 16).collect();
        garbage.extend_from_slice(b"\n\"\xc3\x28\"\n{\"execute\": \"query-status\", \"id\": \"after-garbage\"}\n");
        peer.send(&garbage).await;
        let lines = peer.lines_until("after-garbage", 30).await;
        assert!(lines.iter().any(|l| l.contains("invalid UTF-8 sequence in string")));
        assert!(lines.iter().all(|l| l.is_ascii()));
        assert!(lines.last().unwrap().starts_with("{\"return\""));
        report(
            "64 KiB of binary garbage and invalid UTF-8",
            &format!("{} id-less parse errors, then the next command is answered", lines.len() - 1),
            "-",
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lower_limits_bound_memory() {
    let _serial = exclusive().await;
    within(60, async {
        let dir = TempDir::new();
        let path = dir.join("qmp.sock");
        let _server = Server::builder()
            .max_message_size(1 << 20)
            .max_depth(32)
            .max_tokens(10_000)
            .command("query-status", |_: Call| async { Ok(json!({})) })
            .bind_unix(&path)
            .unwrap();
        let mut peer = RawPeer::connect(&path).await;
        peer.handshake(&[]).await;
        let mut big = b"{\"execute\": \"query-status\", \"id\": \"".to_vec();
        big.extend(std::iter::repeat_n(b' ', 100 << 20));
        big.extend_from_slice(b"\n{\"execute\": \"query-status\", \"id\": \"end\"}\n");
        let base = rss();
        reset_peak();
        peer.send(&big).await;
        let lines = peer.lines_until("end", 60).await;
        let growth = peak().saturating_sub(base);
        // The string is cut at 1 MiB; the rest (spaces) is skipped as whitespace.
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("JSON token size limit exceeded"));
        assert!(growth < 16 << 20, "{}", mib(growth));
        report(
            "100 MiB string with max_message_size(1 MiB)",
            "`JSON token size limit exceeded` at 1 MiB, then the next command is answered",
            &format!("+{}", mib(growth)),
        );
        peer.send(&"[".repeat(33).into_bytes()).await;
        peer.send(b"\n{\"execute\": \"query-status\", \"id\": \"end2\"}\n")
            .await;
        let lines = peer.lines_until("end2", 10).await;
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("JSON nesting depth limit exceeded"));
        let mut many = b"[".to_vec();
        many.extend(b"1,".repeat(6000));
        many.extend_from_slice(b"\n{\"execute\": \"query-status\", \"id\": \"end3\"}\n");
        peer.send(&many).await;
        let lines = peer.lines_until("end3", 10).await;
        assert!(
            lines[0].contains("JSON token count limit exceeded"),
            "{:?}",
            &lines[0]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_of_our_client_against_our_server() {
    let _serial = exclusive().await;
    within(120, async {
        let (_server, path, _dir) = server(1);
        let client = Client::connect_unix(&path).await.unwrap();
        let n = 20_000;
        let t = Instant::now();
        for _ in 0..n {
            client.execute("query-status", ()).await.unwrap();
        }
        let sequential = n as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let calls = (0..n).map(|_| client.execute("query-status", ()));
        let results = futures_util::future::join_all(calls).await;
        assert!(results.iter().all(Result::is_ok));
        let pipelined = n as f64 / t.elapsed().as_secs_f64();
        println!(
            "SERVER-SPEED | our client against our server, debug test build, unix socket | sequential {sequential:.0} commands/s | pipelined {pipelined:.0} commands/s"
        );
        assert!(sequential > 100.0 && pipelined > 100.0);
    })
    .await;
}
