//! A raw QMP peer for server tests: writes exact bytes and reads `\r\n`-ended lines, so tests
//! see what a server sends byte for byte (greeting, replies, events, parse errors), and can
//! misbehave (garbage, floods, never reading) in ways no well-behaved client does.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// One connection, reading and writing raw bytes.
pub struct RawPeer {
    stream: UnixStream,
    buf: Vec<u8>,
}

impl RawPeer {
    /// Connects to a unix socket (no greeting read).
    pub async fn connect(path: &Path) -> RawPeer {
        let stream = UnixStream::connect(path)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", path.display()));
        RawPeer {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes `bytes`.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write to server");
    }

    /// The next line without its `\r\n`, or `None` at end of stream. Panics after `secs`.
    pub async fn line(&mut self, secs: u64) -> Option<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).take(end).collect();
                return Some(String::from_utf8(line).expect("servers send ASCII"));
            }
            // On the heap: a 64 KiB array would live in every future that awaits a line.
            let mut chunk = vec![0u8; 65536];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no complete line within {secs} s; have: {:?}",
                        String::from_utf8_lossy(&self.buf[..self.buf.len().min(300)])
                    )
                })
                .expect("read from server");
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Lines up to and including the one whose `id` is the string `sentinel`.
    pub async fn lines_until(&mut self, sentinel: &str, secs: u64) -> Vec<String> {
        let needle = format!("\"id\": \"{sentinel}\"");
        let mut lines = Vec::new();
        loop {
            let line = self
                .line(secs)
                .await
                .unwrap_or_else(|| panic!("connection closed before {sentinel}: {lines:?}"));
            let done = line.contains(&needle);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// Reads the greeting and negotiates (`enable` as given), returning the greeting line.
    pub async fn handshake(&mut self, enable: &[&str]) -> String {
        let greeting = self.line(10).await.expect("greeting");
        let enable = serde_json::to_string(enable).expect("names");
        self.send(
            format!(
                "{{\"execute\": \"qmp_capabilities\", \"arguments\": {{\"enable\": {enable}}}, \"id\": \"neg\"}}\n"
            )
            .as_bytes(),
        )
        .await;
        let reply = self.lines_until("neg", 10).await;
        assert_eq!(
            reply.last().map(String::as_str),
            Some("{\"return\": {}, \"id\": \"neg\"}")
        );
        greeting
    }

    /// The underlying socket (to shut down one direction, or drop).
    pub fn stream(&mut self) -> &mut UnixStream {
        &mut self.stream
    }

    /// The socket, for tests that read and write it from two tasks. Panics if received bytes
    /// are still buffered (call it between exchanges).
    pub fn into_stream(self) -> UnixStream {
        assert!(
            self.buf.is_empty(),
            "unread bytes: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        self.stream
    }

    /// A peer over a socket obtained from [`into_stream`](Self::into_stream).
    pub fn from_stream(stream: UnixStream) -> RawPeer {
        RawPeer {
            stream,
            buf: Vec::new(),
        }
    }
}
