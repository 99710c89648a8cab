//! A minimal QMP server that answers instantly, to expose client-side cost.
//!
//! It runs on its own thread with a current-thread tokio runtime (one core), in the bench
//! process; the clients run in other processes. Every reply is pre-serialized: the replies to
//! `query-status` and `query-qmp-schema` are the bytes real QEMU sent (captured at start), so
//! clients decode exactly what they would decode from QEMU. All requests found in one read are
//! answered with one write. Requests are framed by JSON object boundaries, not lines
//! (`qemu.qmp` sends no newline).
//!
//! Besides real commands it knows `x-bench-events {"count": N}`: it replies, then streams N
//! events (pre-serialized chunks, written back to back).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;

/// The greeting QEMU 10.0.2 sends (it offers `oob` on socket monitors).
pub const GREETING: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": \"Debian 1:10.0.2+ds-2+deb13u1~bpo12+1\"}, \"capabilities\": [\"oob\"]}}\r\n";

/// The events streamed by `x-bench-events`, in turn. All carry data, as most QEMU events do.
pub const EVENT_CYCLE: [&str; 3] = [
    r#"{"timestamp": {"seconds": 1732550000, "microseconds": 123456}, "event": "JOB_STATUS_CHANGE", "data": {"status": "running", "id": "mirror-job0"}}"#,
    r#"{"timestamp": {"seconds": 1732550000, "microseconds": 123789}, "event": "BLOCK_JOB_COMPLETED", "data": {"device": "mirror-job0", "len": 10737418240, "offset": 10737418240, "speed": 0, "type": "mirror"}}"#,
    r#"{"timestamp": {"seconds": 1732550001, "microseconds": 4567}, "event": "DEVICE_DELETED", "data": {"path": "/machine/peripheral/virtio-disk1/virtio-backend", "device": "virtio-disk1"}}"#,
];

const EVENTS_PER_CHUNK: usize = 1023;

/// The `return` payloads the server replays (JSON text, as QEMU sent it).
#[derive(Debug, Clone)]
pub struct Replies {
    /// `query-status`.
    pub status: String,
    /// `query-qmp-schema`.
    pub schema: String,
}

/// Pre-built bytes shared by every connection.
struct Canned {
    replies: Replies,
    /// `EVENTS_PER_CHUNK` events, each followed by CRLF.
    chunk: Vec<u8>,
    /// `ends[i]`: where event `i` of the chunk ends.
    ends: Vec<usize>,
}

impl Canned {
    fn new(replies: Replies) -> Canned {
        let mut chunk = Vec::new();
        let mut ends = Vec::with_capacity(EVENTS_PER_CHUNK);
        for i in 0..EVENTS_PER_CHUNK {
            chunk.extend_from_slice(EVENT_CYCLE[i % EVENT_CYCLE.len()].as_bytes());
            chunk.extend_from_slice(b"\r\n");
            ends.push(chunk.len());
        }
        Canned {
            replies,
            chunk,
            ends,
        }
    }
}

/// A running server; stopped (and its socket removed) when dropped.
pub struct Server {
    path: PathBuf,
    replies: Replies,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `path` and starts serving on a new thread.
    pub fn start(path: &Path, replies: Replies) -> io::Result<Server> {
        let _ = std::fs::remove_file(path);
        let std_listener = std::os::unix::net::UnixListener::bind(path)?;
        std_listener.set_nonblocking(true)?;
        let canned = Arc::new(Canned::new(replies.clone()));
        let (stop, stopped) = oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("qmp-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = UnixListener::from_std(std_listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = stopped => {}
                        _ = accept_loop(listener, canned) => {}
                    }
                })
            })?;
        Ok(Server {
            path: path.to_path_buf(),
            replies,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The payloads it replays.
    pub fn replies(&self) -> Replies {
        self.replies.clone()
    }
}

/// `qmp_core::server` on its own thread (a current-thread runtime, one core, like [`Server`]),
/// answering `query-status` with QEMU's payload; stopped when dropped.
pub struct OurServer {
    path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OurServer {
    /// Binds `path` and starts serving on a new thread.
    pub fn start(path: &Path, replies: Replies) -> io::Result<OurServer> {
        let _ = std::fs::remove_file(path);
        let status: serde_json::Value = serde_json::from_str(&replies.status)?;
        let listener = qmp_core::Listener::bind_unix(path).map_err(io::Error::other)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("qmp-core-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let server = qmp_core::server::Server::builder()
                        .max_sessions(0)
                        .command("query-status", move |_: qmp_core::server::Call| {
                            let status = status.clone();
                            async move { Ok(status) }
                        })
                        .build();
                    server.listen(listener);
                    let _ = stopped.await;
                    server.shutdown().await;
                })
            })?;
        Ok(OurServer {
            path: path.to_path_buf(),
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OurServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn accept_loop(listener: UnixListener, canned: Arc<Canned>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve(stream, canned.clone()));
            }
            Err(e) => {
                // EMFILE and the like: wait a little rather than spin.
                eprintln!("qmp-bench server: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow, default)]
    execute: Option<&'a str>,
    #[serde(borrow, default, rename = "exec-oob")]
    exec_oob: Option<&'a str>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EventsArgs {
    count: u64,
}

/// Serves one connection until the client hangs up.
async fn serve(mut stream: UnixStream, canned: Arc<Canned>) {
    if stream.write_all(GREETING).await.is_err() {
        return;
    }
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut out: Vec<u8> = Vec::new();
    loop {
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(buf.capacity().max(1024));
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut events = 0u64;
        let mut start = 0;
        while let Some(len) = frame(&buf[start..]) {
            events += answer(&buf[start..start + len], &canned, &mut out);
            start += len;
        }
        buf.drain(..start);
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
            if out.capacity() > 1 << 20 {
                out = Vec::new();
            }
        }
        if events > 0 && stream_events(&mut stream, &canned, events).await.is_err() {
            return;
        }
    }
}

async fn stream_events(stream: &mut UnixStream, canned: &Canned, count: u64) -> io::Result<()> {
    let per = EVENTS_PER_CHUNK as u64;
    for _ in 0..count / per {
        stream.write_all(&canned.chunk).await?;
    }
    let rest = (count % per) as usize;
    if rest > 0 {
        stream
            .write_all(&canned.chunk[..canned.ends[rest - 1]])
            .await?;
    }
    Ok(())
}

/// Length of the first complete JSON object in `buf` (leading whitespace included), if any.
fn frame(buf: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in buf.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Appends the reply to one request to `out`; returns how many events to stream after it.
fn answer(request: &[u8], canned: &Canned, out: &mut Vec<u8>) -> u64 {
    let req: Request<'_> = match serde_json::from_slice(request) {
        Ok(r) => r,
        Err(_) => {
            out.extend_from_slice(
                b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\r\n",
            );
            return 0;
        }
    };
    let mut events = 0;
    let payload: &[u8] = match req.execute.or(req.exec_oob) {
        Some("query-status") => canned.replies.status.as_bytes(),
        Some("query-qmp-schema") => canned.replies.schema.as_bytes(),
        Some("x-bench-events") => {
            events = req
                .arguments
                .and_then(|a| serde_json::from_str::<EventsArgs>(a.get()).ok())
                .map_or(0, |a| a.count);
            b"{}"
        }
        Some("qmp_capabilities" | "stop" | "cont") => b"{}",
        other => {
            out.extend_from_slice(b"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": ");
            let desc = format!("The command {} has not been found", other.unwrap_or(""));
            let _ = serde_json::to_writer(&mut *out, &desc);
            out.extend_from_slice(b"}");
            finish(out, req.id);
            return 0;
        }
    };
    out.extend_from_slice(b"{\"return\": ");
    out.extend_from_slice(payload);
    finish(out, req.id);
    events
}

fn finish(out: &mut Vec<u8>, id: Option<&RawValue>) {
    if let Some(id) = id {
        out.extend_from_slice(b", \"id\": ");
        out.extend_from_slice(id.get().as_bytes());
    }
    out.extend_from_slice(b"}\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canned() -> Canned {
        Canned::new(Replies {
            status: r#"{"status": "running", "running": true}"#.into(),
            schema: "[]".into(),
        })
    }

    #[test]
    fn frames_objects_without_newlines() {
        let buf = br#"{"execute":"a\"}"}{"execute":"b"} {"#;
        let first = frame(buf).expect("complete");
        assert_eq!(&buf[..first], br#"{"execute":"a\"}"}"#);
        let second = frame(&buf[first..]).expect("complete");
        assert_eq!(&buf[first..first + second], br#"{"execute":"b"}"#);
        assert!(frame(&buf[first + second..]).is_none());
    }

    #[test]
    fn replies_echo_ids() {
        let c = canned();
        let mut out = Vec::new();
        answer(br#"{"execute":"query-status","id":7}"#, &c, &mut out);
        answer(
            br#"{"execute": "query-status", "id": "__qmp#00001"}"#,
            &c,
            &mut out,
        );
        answer(
            br#"{"execute":"query-status","arguments":{}}"#,
            &c,
            &mut out,
        );
        answer(br#"{"execute":"nope","id":1}"#, &c, &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"return": {"status": "running", "running": true}, "id": 7}"#
        );
        assert!(lines[1].ends_with(r#""id": "__qmp#00001"}"#));
        assert!(!lines[2].contains("\"id\""));
        assert!(lines[3].contains("CommandNotFound") && lines[3].ends_with(r#""id": 1}"#));
        for l in lines {
            serde_json::from_str::<serde_json::Value>(l).expect("valid JSON");
        }
    }

    #[test]
    fn event_stream_request() {
        let c = canned();
        let mut out = Vec::new();
        let n = answer(
            br#"{"execute":"x-bench-events","arguments":{"count":5},"id":1}"#,
            &c,
            &mut out,
        );
        assert_eq!(n, 5);
        for e in EVENT_CYCLE {
            serde_json::from_str::<serde_json::Value>(e).expect("valid event");
        }
        assert_eq!(c.ends.len(), EVENTS_PER_CHUNK);
    }
}
