//! A scripted mock QMP server: the test plays the server, step by step.
//!
//! ```ignore
//! let server = MockServer::new();
//! let (client, mut peer) = tokio::join!(Client::connect_unix(server.path()), server.accept_handshake());
//! let req = peer.expect("query-status").await;
//! peer.reply(&req.id, json!({"running": true, "status": "running"})).await;
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf, WriteHalf,
};
use tokio::net::UnixListener;

use crate::TempDir;

/// A greeting like QEMU 10.0.2's, offering `oob`.
pub const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": "mock"}, "capabilities": ["oob"]}}"#;

/// The command qmp-core sends as a sync probe after an error without id.
pub const PROBE: &str = "qmp-rs-sync";

/// A unix socket the test server listens on.
pub struct MockServer {
    listener: UnixListener,
    path: PathBuf,
    _dir: TempDir,
}

impl MockServer {
    /// Binds a fresh socket in a private temp dir. Must run inside a tokio runtime.
    pub fn new() -> MockServer {
        let dir = TempDir::new();
        let path = dir.join("mock.sock");
        let listener = UnixListener::bind(&path).expect("bind mock socket");
        MockServer {
            listener,
            path,
            _dir: dir,
        }
    }

    /// The socket path to connect to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts one client.
    pub async fn accept(&self) -> MockPeer<tokio::net::UnixStream> {
        let (stream, _) = self.listener.accept().await.expect("mock accept");
        MockPeer::new_unix(stream)
    }

    /// Accepts one client and completes greeting + negotiation.
    pub async fn accept_handshake(&self) -> MockPeer<tokio::net::UnixStream> {
        let mut peer = self.accept().await;
        peer.handshake().await;
        peer
    }
}

impl MockPeer<tokio::net::UnixStream> {
    /// Wraps an accepted unix stream, keeping a handle for socket-level faults.
    pub fn new_unix(stream: tokio::net::UnixStream) -> Self {
        let std = stream.into_std().expect("mock socket into std");
        let socket = std.try_clone().expect("duplicate mock socket");
        std.set_nonblocking(true).expect("nonblocking mock socket");
        let stream = tokio::net::UnixStream::from_std(std).expect("mock socket back to tokio");
        let mut peer = MockPeer::new(stream);
        peer.socket = Some(socket);
        peer
    }
}

impl Default for MockServer {
    fn default() -> Self {
        Self::new()
    }
}

/// One request received from the client.
#[derive(Debug, Clone)]
pub struct Request {
    /// `execute` or `exec-oob` value.
    pub command: String,
    /// Whether it came as `exec-oob`.
    pub oob: bool,
    /// The `arguments` object (`Null` when absent).
    pub arguments: Value,
    /// The `id` (`Null` when absent).
    pub id: Value,
}

/// The server side of one connection.
pub struct MockPeer<S> {
    reader: MockReader<S>,
    writer: WriteHalf<S>,
    /// A second handle on a unix socket, for socket-level faults ([`MockPeer::shutdown_read`]).
    socket: Option<std::os::unix::net::UnixStream>,
}

/// The reading half of a [`MockPeer`], for servers that read and write from separate tasks.
pub struct MockReader<S> {
    reader: BufReader<ReadHalf<S>>,
}

impl<S: AsyncRead + AsyncWrite> MockReader<S> {
    /// The next line from the client, as JSON; `None` at end of stream.
    pub async fn recv(&mut self) -> Option<serde_json::Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line).await {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                // QEMU rejects an object with a repeated key; so does the mock, loudly.
                if let Err(e) = serde_json::from_str::<UniqueKeys>(&line) {
                    panic!("client sent invalid JSON {line:?}: {e}");
                }
                Some(
                    serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("client sent invalid JSON {line:?}: {e}")),
                )
            }
        }
    }

    /// The next request, whatever it is; `None` at end of stream.
    pub async fn next_request(&mut self) -> Option<Request> {
        let msg = self.recv().await?;
        let (command, oob) = match (msg.get("execute"), msg.get("exec-oob")) {
            (Some(Value::String(c)), None) => (c.clone(), false),
            (None, Some(Value::String(c))) => (c.clone(), true),
            _ => panic!("not a request: {msg}"),
        };
        Some(Request {
            command,
            oob,
            arguments: msg.get("arguments").cloned().unwrap_or(Value::Null),
            id: msg.get("id").cloned().unwrap_or(Value::Null),
        })
    }
}

impl<S: AsyncRead + AsyncWrite> MockPeer<S> {
    /// Wraps a connected stream.
    pub fn new(stream: S) -> Self {
        let (r, w) = tokio::io::split(stream);
        MockPeer {
            reader: MockReader {
                reader: BufReader::new(r),
            },
            writer: w,
            socket: None,
        }
    }

    /// Stops receiving (`shutdown(SHUT_RD)`): the client's next write fails with `EPIPE`,
    /// while what this side sends still arrives. Only for peers accepted on a unix socket.
    pub fn shutdown_read(&self) {
        if let Some(s) = &self.socket {
            let _ = s.shutdown(std::net::Shutdown::Read);
        }
    }

    /// Splits into a reader (requests) and the raw write half.
    pub fn into_split(self) -> (MockReader<S>, WriteHalf<S>) {
        (self.reader, self.writer)
    }

    /// Sends bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        // The client may have gone away; tests assert on the client side.
        let _ = self.writer.write_all(bytes).await;
        let _ = self.writer.flush().await;
    }

    /// Sends bytes in chunks of `chunk` with `delay` between them (a slow peer).
    pub async fn send_slowly(&mut self, bytes: &[u8], chunk: usize, delay: Duration) {
        for part in bytes.chunks(chunk.max(1)) {
            self.send_raw(part).await;
            tokio::time::sleep(delay).await;
        }
    }

    /// Sends a JSON message followed by CRLF, as QEMU does.
    pub async fn send(&mut self, msg: &Value) {
        let mut line = msg.to_string();
        line.push_str("\r\n");
        self.send_raw(line.as_bytes()).await;
    }

    /// Sends [`GREETING`].
    pub async fn greet(&mut self) {
        self.send_raw(format!("{GREETING}\r\n").as_bytes()).await;
    }

    /// Greets, expects `qmp_capabilities`, and accepts it.
    pub async fn handshake(&mut self) {
        self.greet().await;
        let req = self.expect("qmp_capabilities").await;
        self.reply(&req.id, json!({})).await;
    }

    /// The next line from the client, as JSON; `None` at end of stream.
    pub async fn recv(&mut self) -> Option<Value> {
        self.reader.recv().await
    }

    /// The next request, which must be `command`.
    pub async fn expect(&mut self, command: &str) -> Request {
        let req = self
            .next_request()
            .await
            .unwrap_or_else(|| panic!("client closed, expected {command}"));
        assert_eq!(req.command, command, "unexpected command {req:?}");
        req
    }

    /// The next request, whatever it is; `None` at end of stream.
    pub async fn next_request(&mut self) -> Option<Request> {
        self.reader.next_request().await
    }

    /// Expects the client's sync probe (sent after an error without id) and answers it as
    /// QEMU does, with `CommandNotFound`. Returns the probe.
    pub async fn answer_probe(&mut self) -> Request {
        let probe = self.expect(PROBE).await;
        let desc = format!("The command {PROBE} has not been found");
        self.reply_error(&probe.id, "CommandNotFound", &desc).await;
        probe
    }

    /// Sends an error without `id`, as QEMU does for input it cannot parse.
    pub async fn error_without_id(&mut self, desc: &str) {
        self.send(&json!({"error": {"class": "GenericError", "desc": desc}}))
            .await;
    }

    /// Replies with a `return` value.
    pub async fn reply(&mut self, id: &Value, ret: Value) {
        self.send(&json!({"return": ret, "id": id})).await;
    }

    /// Replies with an error.
    pub async fn reply_error(&mut self, id: &Value, class: &str, desc: &str) {
        self.send(&json!({"error": {"class": class, "desc": desc}, "id": id}))
            .await;
    }

    /// Sends an event with a timestamp.
    pub async fn event(&mut self, name: &str, data: Option<Value>) {
        let mut ev =
            json!({"event": name, "timestamp": {"seconds": 1_700_000_000, "microseconds": 42}});
        if let Some(d) = data {
            ev["data"] = d;
        }
        self.send(&ev).await;
    }

    /// Closes the write side (the client sees end of stream).
    pub async fn close(mut self) {
        let _ = self.writer.shutdown().await;
    }
}

/// A client/server pair over an in-memory duplex stream (no socket), for protocol tests.
pub fn duplex_pair() -> (tokio::io::DuplexStream, MockPeer<tokio::io::DuplexStream>) {
    let (client_side, server_side) = tokio::io::duplex(1 << 20);
    (client_side, MockPeer::new(server_side))
}

/// Deserializes any JSON value and fails on an object that repeats a key, at any depth
/// (`serde_json::Value` would silently keep the last one).
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(UniqueKeys)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(UniqueKeys)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(UniqueKeys)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(UniqueKeys)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(UniqueKeys)
    }

    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(UniqueKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }
}
