//! Record a real QMP session, then replay it as a server (cargo feature `mock`): the VCR
//! pattern for code that drives QEMU. (Not called `replay`: that name belongs to QEMU's own
//! record/replay QAPI module, `types::replay` in the default schema.)
//!
//! - [`Recorder`] is a transparent proxy: your code connects to its socket, it connects to
//!   QEMU, passes every byte through unchanged, and writes what went by to a capture file.
//! - [`Capture`] holds the sessions of a capture: read from our format ([`Capture::parse`])
//!   or from libvirt's probing data ([`Capture::parse_libvirt`]).
//! - [`Replay`] serves a capture on qmp_core's server: each connection gets the next
//!   session; each command must be the one recorded next (same name, same arguments) and
//!   gets the recorded reply, followed by the events recorded after it. Anything else gets a
//!   `GenericError` naming the expected exchange and what arrived instead (with the
//!   arguments' differences), kept in [`Replay::mismatches`]; the replay stays where it was,
//!   so the right command still gets its reply.
//!
//! # Capture format (`qmp-capture/1`, JSON lines)
//!
//! One JSON object per line, in the order things happened:
//!
//! | line | meaning |
//! |---|---|
//! | `{"t": 0.0, "greeting": {"QMP": {...}}}` | QEMU's greeting; starts a session |
//! | `{"t": 0.0021, "execute": "query-status", "arguments": {...}, "return": {...}}` | an exchange and its success |
//! | `{"t": 0.0032, "execute": "eject", "arguments": {...}, "error": {"class": "...", "desc": "..."}}` | an exchange that failed |
//! | `{"t": 0.0040, "event": "RESET", "data": {...}, "timestamp": {"seconds": ..., "microseconds": ...}}` | an event while no command ran |
//! | `{"t": 0.0040, "event": "STOP", "in": "stop", "timestamp": {...}}` | an event while command `stop` ran (QEMU sent it before that command's reply) |
//! | `{"t": 0.0051, "closed": "qemu"}` | QEMU closed the connection (after `quit`); ends the session |
//!
//! `t` is seconds since the session's connection, when the line's message arrived from
//! QEMU (for an exchange, its reply), so an event sent while a command ran comes before
//! that command's line. `arguments` and `data` are left out when absent;
//! `qmp_capabilities` is recorded like any command. Ids are not recorded: the replay echoes
//! the client's.
//!
//! # Replay details
//!
//! The greeting comes from the first session's recorded greeting, else from its `query-version`
//! reply, else QEMU 10.0.2's. `qmp_capabilities` is answered by the server itself (and its
//! recorded exchange skipped). Events recorded while a command ran are sent before its
//! reply, the others after the reply before them, all with the current time as timestamp.
//! Events
//! recorded before the session's first command after negotiation follow that command's
//! reply.
//!
//! A session ends as recorded: where QEMU closed the connection (a `closed` line), the
//! replay closes it after the last exchange's reply and events; a successful `quit` closes
//! it likewise even in captures without the line (libvirt's), like QEMU, so code that waits
//! for the end of the connection (`closed()`, `quit_and_wait`) does not hang.
//!
//! Mismatches name the session and the exchange by their 0-based index in the capture
//! (`session 0, exchange 7`), the same numbers as [`Mismatch::session`] and
//! [`Mismatch::index`]; `qmp_capabilities` exchanges count.
//!
//! # Example
//!
//! ```
//! use qmp_api::capture::{Capture, Replay};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let capture = Capture::parse(concat!(
//!     r#"{"t": 0, "greeting": {"QMP": {"version": {"qemu": {"major": 10, "minor": 0, "micro": 2}, "package": ""}, "capabilities": []}}}"#, "\n",
//!     r#"{"t": 0.001, "execute": "qmp_capabilities", "return": {}}"#, "\n",
//!     r#"{"t": 0.002, "execute": "query-status", "return": {"status": "prelaunch", "running": false}}"#, "\n",
//! ))?;
//! let dir = std::env::temp_dir().join(format!("qmp-replay-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let replay = Replay::bind_unix(capture, dir.join("qmp.sock"))?;
//!
//! let qmp = qmp_api::Qmp::connect_unix(dir.join("qmp.sock")).await?;
//! assert!(!qmp.query_status().await?.running);
//! qmp.close().await;
//! assert!(replay.mismatches().is_empty());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use qmp_core::server::{Call, Server};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::{QmpError, Version};

/// A fault in a capture file, or in recording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// A line (or object) that is not what the format allows.
    #[error("capture line {line}: {message}")]
    Format {
        /// 1-based line number (the object's first line in libvirt files).
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// Reading, writing, listening or connecting failed.
    #[error("{what}: {error}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        error: std::io::Error,
    },
    /// The replay server could not listen.
    #[error("replay: {0}")]
    Listen(#[from] qmp_core::ListenError),
    /// A blocking wait ([`Wait::wait`](crate::blocking::Wait::wait) on
    /// [`Recorder::finish`]) did not run: see [`BlockingError`](crate::BlockingError).
    #[error(transparent)]
    Blocking(#[from] crate::BlockingError),
}

/// One recorded exchange: a command and QEMU's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// The command name.
    pub command: String,
    /// Its arguments (`None` when absent).
    pub arguments: Option<Value>,
    /// The `return` value, or the error.
    pub reply: Result<Value, QmpError>,
    /// Events QEMU sent while this command was running, before its reply (QEMU sends
    /// `STOP` before `stop`'s reply): recorded with `"in"`.
    pub events_before: Vec<(String, Option<Value>)>,
    /// Events recorded after the reply (name, data), until the next exchange.
    pub events: Vec<(String, Option<Value>)>,
}

/// One client session of a capture.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Session {
    /// The greeting's `QMP` object, if recorded.
    pub greeting: Option<Value>,
    /// Events recorded before the first exchange.
    pub leading_events: Vec<(String, Option<Value>)>,
    /// The exchanges, in order.
    pub exchanges: Vec<Exchange>,
    /// Whether QEMU closed the connection at the end of the recording (after `quit`,
    /// recorded as a `{"t": ..., "closed": "qemu"}` line): the replay closes the session
    /// after the last exchange's reply and events, as QEMU did.
    pub closed_by_server: bool,
}

impl Session {
    /// The QEMU version: from the greeting, else from a `query-version` reply.
    ///
    /// ```
    /// use qmp_api::capture::Capture;
    /// let c = Capture::parse(r#"{"t": 0.1, "execute": "query-version", "return": {"qemu": {"major": 9, "minor": 2, "micro": 0}, "package": ""}}"#)?;
    /// assert_eq!(c.sessions[0].version(), Some((qmp_api::Version::new(9, 2, 0), String::new())));
    /// # Ok::<(), qmp_api::capture::CaptureError>(())
    /// ```
    pub fn version(&self) -> Option<(Version, String)> {
        let from = |v: &Value| -> Option<(Version, String)> {
            let q = v.get("qemu")?;
            let n = |k: &str| q.get(k).and_then(Value::as_u64);
            let package = v.get("package").and_then(Value::as_str).unwrap_or("");
            Some((
                Version::new(n("major")?, n("minor")?, n("micro")?),
                package.to_string(),
            ))
        };
        if let Some(v) = self.greeting.as_ref().and_then(|g| g.get("version")) {
            return from(v);
        }
        self.exchanges
            .iter()
            .filter(|e| e.command == "query-version")
            .find_map(|e| e.reply.as_ref().ok().and_then(from))
    }
}

/// The sessions of a capture file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Capture {
    /// The sessions, in order.
    pub sessions: Vec<Session>,
}

impl Capture {
    /// Reads our JSON-lines format (see the [module docs](self)).
    ///
    /// # Errors
    ///
    /// [`CaptureError::Format`] naming the line.
    ///
    /// ```
    /// let c = qmp_api::capture::Capture::parse(concat!(
    ///     r#"{"t": 0.001, "execute": "stop", "return": {}}"#, "\n",
    ///     r#"{"t": 0.002, "event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}"#, "\n",
    /// ))?;
    /// assert_eq!(c.sessions[0].exchanges[0].events[0].0, "STOP");
    /// # Ok::<(), qmp_api::capture::CaptureError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Capture, CaptureError> {
        let mut capture = Capture::default();
        // Events recorded while a command ran, waiting for that command's exchange line.
        let mut held = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let bad = |message: String| CaptureError::Format {
                line: line_no,
                message,
            };
            let v: Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
            let Value::Object(obj) = v else {
                return Err(bad("not a JSON object".into()));
            };
            if let Some(greeting) = obj.get("greeting") {
                let qmp = greeting.get("QMP").cloned().unwrap_or(greeting.clone());
                capture.sessions.push(Session {
                    greeting: Some(qmp),
                    ..Session::default()
                });
            } else if obj.contains_key("closed") {
                capture.current().closed_by_server = true;
            } else if obj.contains_key("execute") {
                let mut exchange = exchange_from(&obj, &obj).map_err(bad)?;
                exchange.events_before = std::mem::take(&mut held);
                capture.current().exchanges.push(exchange);
            } else if obj.contains_key("event") {
                let event = event_from(&obj).map_err(bad)?;
                if obj.contains_key("in") {
                    held.push(event);
                } else {
                    capture.push_event(event);
                }
            } else {
                return Err(bad(
                    "expected a greeting, an exchange (`execute`), an event or `closed`".into(),
                ));
            }
        }
        // Events of a command whose reply never came (the session ended): after the last.
        if let Some(last) = capture.current().exchanges.last_mut() {
            last.events.extend(held);
        }
        Ok(capture)
    }

    /// Reads libvirt's capture format (its `tests/qemucapabilitiesdata/*.replies` files):
    /// pretty-printed request and reply objects, separated by blank lines, no greeting; each
    /// `qmp_capabilities` request starts a new session. Events, if present, attach to the
    /// exchange before them.
    ///
    /// # Errors
    ///
    /// [`CaptureError::Format`] naming the line where an object starts.
    ///
    /// ```
    /// let text = "{\n  \"execute\": \"qmp_capabilities\",\n  \"id\": \"libvirt-1\"\n}\n\n\
    ///             {\n  \"return\": {\n  },\n  \"id\": \"libvirt-1\"\n}\n";
    /// let c = qmp_api::capture::Capture::parse_libvirt(text)?;
    /// assert_eq!(c.sessions.len(), 1);
    /// # Ok::<(), qmp_api::capture::CaptureError>(())
    /// ```
    pub fn parse_libvirt(text: &str) -> Result<Capture, CaptureError> {
        let mut capture = Capture::default();
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        let mut pending: Option<(Map<String, Value>, usize)> = None;
        loop {
            let offset = stream.byte_offset();
            let line = text[..offset].matches('\n').count() + 1;
            let bad = |message: String| CaptureError::Format { line, message };
            let Some(next) = stream.next() else { break };
            let Value::Object(obj) = next.map_err(|e| bad(e.to_string()))? else {
                return Err(bad("not a JSON object".into()));
            };
            if obj.contains_key("execute") {
                if let Some((_, at)) = &pending {
                    return Err(CaptureError::Format {
                        line: *at,
                        message: "a request without a reply".into(),
                    });
                }
                if obj.get("execute").and_then(Value::as_str) == Some("qmp_capabilities") {
                    capture.sessions.push(Session::default());
                }
                pending = Some((obj, line));
            } else if obj.contains_key("event") {
                capture.push_event(event_from(&obj).map_err(bad)?);
            } else if obj.contains_key("return") || obj.contains_key("error") {
                let Some((request, _)) = pending.take() else {
                    return Err(bad("a reply without a request".into()));
                };
                let exchange = exchange_from(&request, &obj).map_err(bad)?;
                capture.current().exchanges.push(exchange);
            } else {
                return Err(bad("expected a request, a reply or an event".into()));
            }
        }
        if let Some((_, line)) = pending {
            return Err(CaptureError::Format {
                line,
                message: "a request without a reply at the end of the file".into(),
            });
        }
        Ok(capture)
    }

    /// Reads a file in either format (ours when its first non-blank line is a whole JSON
    /// object, libvirt's otherwise).
    ///
    /// # Errors
    ///
    /// [`CaptureError::Io`] or what the parser reports.
    ///
    /// ```no_run
    /// let c = qmp_api::capture::Capture::load("tests/data/caps_8.2.0_x86_64.replies")?;
    /// println!("{} sessions", c.sessions.len());
    /// # Ok::<(), qmp_api::capture::CaptureError>(())
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Capture, CaptureError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| CaptureError::Io {
            what: format!("cannot read {}", path.display()),
            error,
        })?;
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        if serde_json::from_str::<Value>(first).is_ok() {
            Capture::parse(&text)
        } else {
            Capture::parse_libvirt(&text)
        }
    }

    fn current(&mut self) -> &mut Session {
        if self.sessions.is_empty() {
            self.sessions.push(Session::default());
        }
        let last = self.sessions.len() - 1;
        &mut self.sessions[last]
    }

    fn push_event(&mut self, event: (String, Option<Value>)) {
        let session = self.current();
        match session.exchanges.last_mut() {
            Some(e) => e.events.push(event),
            None => session.leading_events.push(event),
        }
    }
}

fn event_from(obj: &Map<String, Value>) -> Result<(String, Option<Value>), String> {
    let name = obj
        .get("event")
        .and_then(Value::as_str)
        .ok_or("`event` is not a string")?;
    Ok((name.to_string(), obj.get("data").cloned()))
}

fn exchange_from(
    request: &Map<String, Value>,
    reply: &Map<String, Value>,
) -> Result<Exchange, String> {
    let command = request
        .get("execute")
        .and_then(Value::as_str)
        .ok_or("`execute` is not a string")?
        .to_string();
    let reply = if let Some(r) = reply.get("return") {
        Ok(r.clone())
    } else if let Some(e) = reply.get("error") {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Err(QmpError::new(s("class"), s("desc")))
    } else {
        return Err(format!(
            "the exchange of `{command}` has neither `return` nor `error`"
        ));
    };
    Ok(Exchange {
        command,
        arguments: request.get("arguments").cloned(),
        reply,
        events_before: Vec::new(),
        events: Vec::new(),
    })
}

/// A replay that did not go as recorded: what was expected and what arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// The session (0-based, in capture order), as in [`message`](Self::message).
    pub session: usize,
    /// The exchange expected next (0-based, `qmp_capabilities` counted, as in
    /// [`message`](Self::message)), `None` past the end of the session.
    pub index: Option<usize>,
    /// The command expected, `None` past the end.
    pub expected: Option<String>,
    /// The command that arrived.
    pub arrived: String,
    /// The whole text, as sent to the client.
    pub message: String,
}

/// How far one session of a capture was replayed: see [`Replay::progress`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionProgress {
    /// The session (0-based, in capture order, as in [`Mismatch::session`]).
    pub session: usize,
    /// Whether a client got this session (sent it a command after `qmp_capabilities`).
    pub served: bool,
    /// Exchanges replayed (`qmp_capabilities` not counted).
    pub replayed: usize,
    /// Exchanges recorded (`qmp_capabilities` not counted).
    pub total: usize,
}

impl SessionProgress {
    /// Whether the session was replayed to its end.
    pub fn finished(&self) -> bool {
        self.replayed == self.total
    }
}

struct ReplayState {
    capture: Capture,
    /// Server session id → (capture session, next exchange).
    positions: HashMap<u64, (usize, usize)>,
    next_session: usize,
    mismatches: Vec<Mismatch>,
}

/// Serves a [`Capture`]: see the [module docs](self).
pub struct Replay {
    server: Server,
    state: Arc<Mutex<ReplayState>>,
}

impl Replay {
    /// Serves `capture` on a unix socket at `path`, one connection at a time, each getting
    /// the next session.
    ///
    /// # Errors
    ///
    /// [`CaptureError::Listen`] when the socket cannot be created.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), qmp_api::capture::CaptureError> {
    /// use qmp_api::capture::{Capture, Replay};
    /// let replay = Replay::bind_unix(Capture::load("session.qmpcap")?, "/tmp/vm0.sock")?;
    /// # Ok(()) }
    /// ```
    pub fn bind_unix(capture: Capture, path: impl AsRef<Path>) -> Result<Replay, CaptureError> {
        let (version, package) = capture
            .sessions
            .first()
            .and_then(Session::version)
            .unwrap_or((Version::new(10, 0, 2), String::new()));
        // The recorded greeting's capabilities (libvirt captures have none: QEMU's `oob`).
        let capabilities: Vec<qmp_core::Capability> = capture
            .sessions
            .first()
            .and_then(|s| s.greeting.as_ref())
            .and_then(|g| g.get("capabilities"))
            .and_then(Value::as_array)
            .map(|caps| {
                caps.iter()
                    .filter_map(Value::as_str)
                    .map(qmp_core::Capability::from_name)
                    .collect()
            })
            .unwrap_or_else(|| vec![qmp_core::Capability::Oob]);
        let state = Arc::new(Mutex::new(ReplayState {
            capture,
            positions: HashMap::new(),
            next_session: 0,
            mismatches: Vec::new(),
        }));
        let handler_state = state.clone();
        let server = Server::builder()
            .version(version, package)
            .capabilities(capabilities)
            .fallback(move |call: Call| {
                let answer = answer(&handler_state, &call);
                async move {
                    for (name, data) in answer.before {
                        let _ = call.emit(&name, data).await;
                    }
                    for (name, data) in answer.after {
                        call.emit_after_reply(&name, data);
                    }
                    if answer.close {
                        call.close_after_reply();
                    }
                    answer.reply
                }
            })
            .bind_unix(path)?;
        Ok(Replay { server, state })
    }

    /// Every mismatch so far.
    ///
    /// ```no_run
    /// # fn demo(replay: qmp_api::capture::Replay) {
    /// for m in replay.mismatches() {
    ///     eprintln!("{}", m.message);
    /// }
    /// # }
    /// ```
    pub fn mismatches(&self) -> Vec<Mismatch> {
        lock(&self.state).mismatches.clone()
    }

    /// Whether every session that was served was replayed to its end.
    ///
    /// ```no_run
    /// # fn demo(replay: qmp_api::capture::Replay) {
    /// assert!(replay.finished(), "the code under test stopped early");
    /// # }
    /// ```
    pub fn finished(&self) -> bool {
        let st = lock(&self.state);
        st.positions
            .values()
            .all(|(s, i)| remaining(&st.capture.sessions[*s], *i) == 0)
    }

    /// How far each of the capture's sessions was replayed, in capture order.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use qmp_api::capture::{Capture, Replay};
    /// let capture = Capture::parse(r#"{"t": 0.1, "execute": "query-status", "return": {"status": "running", "running": true}}"#)?;
    /// let dir = std::env::temp_dir().join(format!("qmp-progress-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let replay = Replay::bind_unix(capture, dir.join("qmp.sock"))?;
    /// assert!(!replay.progress()[0].served);
    /// let qmp = qmp_api::Qmp::connect_unix(dir.join("qmp.sock")).await?;
    /// qmp.query_status().await?;
    /// let p = &replay.progress()[0];
    /// assert!(p.served && p.finished());
    /// assert_eq!((p.replayed, p.total), (1, 1));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn progress(&self) -> Vec<SessionProgress> {
        let st = lock(&self.state);
        st.capture
            .sessions
            .iter()
            .enumerate()
            .map(|(n, session)| {
                let total = remaining(session, 0);
                let at = st
                    .positions
                    .values()
                    .find(|(s, _)| *s == n)
                    .map(|(_, i)| *i);
                SessionProgress {
                    session: n,
                    served: at.is_some(),
                    replayed: total - at.map_or(total, |i| remaining(session, i)),
                    total,
                }
            })
            .collect()
    }

    /// The underlying server.
    ///
    /// ```no_run
    /// # fn demo(replay: qmp_api::capture::Replay) {
    /// let sessions = replay.server().sessions().len();
    /// # }
    /// ```
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Stops serving.
    ///
    /// ```no_run
    /// # async fn demo(replay: qmp_api::capture::Replay) {
    /// replay.shutdown().await;
    /// # }
    /// ```
    pub async fn shutdown(&self) {
        self.server.shutdown().await;
    }
}

/// Exchanges left in `session` from `index` on (`qmp_capabilities` aside).
fn remaining(session: &Session, index: usize) -> usize {
    session.exchanges[index.min(session.exchanges.len())..]
        .iter()
        .filter(|e| e.command != "qmp_capabilities")
        .count()
}

/// What a command gets: events before the reply, the reply, events after it.
struct Answer {
    before: Vec<(String, Option<Value>)>,
    reply: Result<Value, QmpError>,
    after: Vec<(String, Option<Value>)>,
    /// Close the session after the reply and `after` (QEMU did, or it was `quit`).
    close: bool,
}

impl From<QmpError> for Answer {
    fn from(e: QmpError) -> Answer {
        Answer {
            before: Vec::new(),
            reply: Err(e),
            after: Vec::new(),
            close: false,
        }
    }
}

fn answer(state: &Mutex<ReplayState>, call: &Call) -> Answer {
    let mut st = lock(state);
    let sid = call.session().id();
    let (s, mut i) = match st.positions.get(&sid) {
        Some(p) => *p,
        None => {
            let s = st.next_session;
            st.next_session += 1;
            st.positions.insert(sid, (s, 0));
            (s, 0)
        }
    };
    let arrived_args = call.arguments();
    let Some(session) = st.capture.sessions.get(s) else {
        let message = format!(
            "replay: no recorded session left for this connection (the capture has {}); \
             `{}` arrived",
            st.capture.sessions.len(),
            call.name()
        );
        return mismatch(&mut st, s, None, None, call.name(), message).into();
    };
    let first = i == 0;
    while session
        .exchanges
        .get(i)
        .is_some_and(|e| e.command == "qmp_capabilities")
    {
        i += 1;
    }
    let Some(expected) = session.exchanges.get(i) else {
        let message = format!(
            "replay: session {} (0-based) has no more exchanges (all {} replayed); `{}` {} arrived",
            s,
            session.exchanges.len(),
            call.name(),
            Value::Object(arrived_args.clone())
        );
        return mismatch(&mut st, s, None, None, call.name(), message).into();
    };
    let empty = Map::new();
    let expected_args = expected
        .arguments
        .as_ref()
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    if expected.command != call.name() || expected_args != arrived_args {
        let mut message = format!(
            "replay: session {}, exchange {} (0-based): expected `{}` {}, but `{}` {} arrived",
            s,
            i,
            expected.command,
            Value::Object(expected_args.clone()),
            call.name(),
            Value::Object(arrived_args.clone())
        );
        if expected.command == call.name() {
            let mut diffs = Vec::new();
            diff(
                "",
                &Value::Object(expected_args.clone()),
                &Value::Object(arrived_args.clone()),
                &mut diffs,
            );
            message.push_str(&format!("; arguments differ: {}", diffs.join("; ")));
        }
        let expected_name = expected.command.clone();
        return mismatch(
            &mut st,
            s,
            Some(i),
            Some(expected_name),
            call.name(),
            message,
        )
        .into();
    }
    let mut after = Vec::new();
    if first {
        after.extend(session.leading_events.iter().cloned());
    }
    after.extend(expected.events.iter().cloned());
    let last = i + 1 == session.exchanges.len();
    let quit = expected.command == "quit" && expected.reply.is_ok();
    let answer = Answer {
        before: expected.events_before.clone(),
        reply: expected.reply.clone(),
        after,
        close: quit || (last && session.closed_by_server),
    };
    st.positions.insert(sid, (s, i + 1));
    answer
}

fn mismatch(
    st: &mut ReplayState,
    session: usize,
    index: Option<usize>,
    expected: Option<String>,
    arrived: &str,
    message: String,
) -> QmpError {
    st.mismatches.push(Mismatch {
        session,
        index,
        expected,
        arrived: arrived.to_string(),
        message: message.clone(),
    });
    QmpError::new("GenericError", message)
}

/// The differences between two JSON values, as `path: expected X, got Y` items.
fn diff(path: &str, expected: &Value, got: &Value, out: &mut Vec<String>) {
    let shown = |p: &str| {
        if p.is_empty() {
            "arguments".to_string()
        } else {
            format!("`{p}`")
        }
    };
    match (expected, got) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff(&p, x, y, out),
                    (Some(x), None) => out.push(format!("`{p}`: expected {x}, missing")),
                    (None, Some(y)) => out.push(format!("`{p}`: not expected, got {y}")),
                    (None, None) => {}
                }
            }
        }
        (a, b) if a != b => out.push(format!("{}: expected {a}, got {b}", shown(path))),
        _ => {}
    }
}

/// A transparent proxy that records a session between a client and QEMU: see the
/// [module docs](self).
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use qmp_api::capture::Recorder;
/// let recorder = Recorder::start("/tmp/proxy.sock", "/run/qemu/vm0.qmp", "session.qmpcap")?;
/// let qmp = qmp_api::Qmp::connect_unix("/tmp/proxy.sock").await?;
/// qmp.query_status().await?;
/// qmp.close().await;
/// recorder.finish().await?; // the capture file is complete
/// # Ok(()) }
/// ```
pub struct Recorder {
    task: tokio::task::JoinHandle<Result<(), CaptureError>>,
}

impl Recorder {
    /// Connects to QEMU's socket `qemu`, then listens on `listen` (a unix socket path); the
    /// first client to connect is relayed to QEMU, both ways, and its session written to
    /// `capture` (created or truncated) when it ends. One session per recorder: start another
    /// for the next.
    ///
    /// QEMU is connected to first, so a missing or refused socket fails here, naming the
    /// path (QEMU greets the recorder at once and waits; the greeting reaches the client when
    /// it connects). To wait for a QEMU that is still starting, use
    /// [`start_waiting`](Self::start_waiting).
    ///
    /// Works with or without a tokio runtime: outside one (a synchronous program) the relay
    /// runs on qmp_core's [shared background runtime](qmp_core::runtime).
    ///
    /// # Errors
    ///
    /// [`CaptureError::Io`] when QEMU's socket cannot be connected to, or the socket or the
    /// file cannot be created; nothing is created then.
    pub fn start(
        listen: impl AsRef<Path>,
        qemu: impl AsRef<Path>,
        capture: impl AsRef<Path>,
    ) -> Result<Recorder, CaptureError> {
        Recorder::start_waiting(listen, qemu, capture, Duration::ZERO)
    }

    /// [`start`](Self::start), retrying the connection to QEMU's socket every 10 ms for up
    /// to `wait` while it is missing or refuses (QEMU still starting). Blocks the calling
    /// thread meanwhile: inside an async task, call it from `spawn_blocking`, or with a short
    /// `wait`.
    ///
    /// # Errors
    ///
    /// Those of [`start`](Self::start); the connect error is the last one seen.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use qmp_api::capture::Recorder;
    /// let recorder = Recorder::start_waiting(
    ///     "/tmp/proxy.sock", "/run/qemu/vm0.qmp", "session.qmpcap", Duration::from_secs(5))?;
    /// # Ok::<(), qmp_api::capture::CaptureError>(())
    /// ```
    pub fn start_waiting(
        listen: impl AsRef<Path>,
        qemu: impl AsRef<Path>,
        capture: impl AsRef<Path>,
        wait: Duration,
    ) -> Result<Recorder, CaptureError> {
        let listen = listen.as_ref().to_path_buf();
        let qemu = qemu.as_ref().to_path_buf();
        let capture = capture.as_ref().to_path_buf();
        let io = |what: String| move |error| CaptureError::Io { what, error };
        let handle = qmp_core::runtime::current_or_shared().map_err(|e| CaptureError::Io {
            what: "cannot start the background runtime to record on".into(),
            error: std::io::Error::new(e.kind(), e.to_string()),
        })?;
        let upstream = connect_waiting(&qemu, wait)
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(io(format!("cannot connect to QEMU at {}", qemu.display())))?;
        let _context = handle.enter();
        let upstream = UnixStream::from_std(upstream)
            .map_err(io(format!("cannot connect to QEMU at {}", qemu.display())))?;
        let listener = UnixListener::bind(&listen)
            .map_err(io(format!("cannot listen on {}", listen.display())))?;
        if let Err(e) = std::fs::write(&capture, b"") {
            let _ = std::fs::remove_file(&listen);
            return Err(io(format!("cannot create {}", capture.display()))(e));
        }
        let task = handle.spawn(async move {
            let accepted = listener
                .accept()
                .await
                .map_err(io(format!("accept on {}", listen.display())));
            let result = match accepted {
                Ok((client, _)) => relay(client, upstream, &capture).await,
                Err(e) => Err(e),
            };
            let _ = std::fs::remove_file(&listen);
            result
        });
        Ok(Recorder { task })
    }

    /// Waits until the recorded session ends (the client or QEMU closed the connection) and
    /// the capture file is complete. In synchronous code: `recorder.finish().wait()`
    /// ([`Wait`](crate::blocking::Wait)).
    ///
    /// # Errors
    ///
    /// What failed while relaying or writing.
    ///
    /// ```no_run
    /// # async fn demo(recorder: qmp_api::capture::Recorder) -> Result<(), qmp_api::capture::CaptureError> {
    /// recorder.finish().await?;
    /// # Ok(()) }
    /// ```
    pub async fn finish(self) -> Result<(), CaptureError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(CaptureError::Io {
                what: "the recorder task".into(),
                error: std::io::Error::other(e.to_string()),
            }),
        }
    }
}

/// Connects to `path`, retrying every 10 ms for up to `wait` while it is missing or refuses.
fn connect_waiting(path: &Path, wait: Duration) -> std::io::Result<std::os::unix::net::UnixStream> {
    let deadline = Instant::now() + wait;
    loop {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(s) => return Ok(s),
            Err(e)
                if Instant::now() < deadline
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Requests waiting for their reply: by id (as JSON text), and those without an id, in order.
#[derive(Default)]
struct Pending {
    by_id: BTreeMap<String, Value>,
    without_id: VecDeque<Value>,
}

async fn relay(
    client: UnixStream,
    upstream: UnixStream,
    capture: &PathBuf,
) -> Result<(), CaptureError> {
    let start = Instant::now();
    let lines: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let pending: Arc<Mutex<Pending>> = Arc::default();
    let (client_read, mut client_write) = client.into_split();
    let (up_read, mut up_write) = upstream.into_split();
    // Set when the client ends its side: QEMU's end of file after that is the answer to it,
    // one before it is QEMU closing the session (after `quit`), which the capture records.
    let client_closed = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let to_qemu = {
        let pending = pending.clone();
        let client_closed = client_closed.clone();
        async move {
            let mut reader = BufReader::new(client_read);
            let mut line = Vec::new();
            loop {
                line.clear();
                if reader.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                    break;
                }
                // Noted before it is sent: the reply may come back at once.
                if let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(&line) {
                    let req = Value::Object(req);
                    let mut p = lock(&pending);
                    match req.get("id") {
                        Some(id) => {
                            p.by_id.insert(id.to_string(), req);
                        }
                        None => p.without_id.push_back(req),
                    }
                }
                if up_write.write_all(&line).await.is_err() {
                    break;
                }
            }
            client_closed.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = up_write.shutdown().await;
        }
    };
    let from_qemu = {
        let lines = lines.clone();
        async move {
            let mut reader = BufReader::new(up_read);
            let mut line = Vec::new();
            loop {
                line.clear();
                if reader.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                    if !client_closed.load(std::sync::atomic::Ordering::SeqCst) {
                        let t = start.elapsed().as_secs_f64();
                        lock(&lines).push(json!({"t": t, "closed": "qemu"}).to_string());
                    }
                    break;
                }
                if client_write.write_all(&line).await.is_err() {
                    break;
                }
                let t = start.elapsed().as_secs_f64();
                let Ok(Value::Object(msg)) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                let entry = if let Some(greeting) = msg.get("QMP") {
                    Some(json!({"t": t, "greeting": {"QMP": greeting}}))
                } else if msg.contains_key("event") {
                    let mut e = Map::new();
                    e.insert("t".into(), json!(t));
                    for k in ["event", "data", "timestamp"] {
                        if let Some(v) = msg.get(k) {
                            e.insert(k.into(), v.clone());
                        }
                    }
                    // Sent while a command ran (the oldest one still waiting, with several).
                    let running = {
                        let p = lock(&pending);
                        p.without_id
                            .front()
                            .or_else(|| p.by_id.values().next())
                            .and_then(|r| r.get("execute").or_else(|| r.get("exec-oob")).cloned())
                    };
                    if let Some(name) = running {
                        e.insert("in".into(), name);
                    }
                    Some(Value::Object(e))
                } else {
                    let request = {
                        let mut p = lock(&pending);
                        match msg.get("id") {
                            Some(id) => p.by_id.remove(&id.to_string()),
                            None => p.without_id.pop_front(),
                        }
                    };
                    request.map(|req| {
                        let mut e = Map::new();
                        e.insert("t".into(), json!(t));
                        let name = req.get("execute").or_else(|| req.get("exec-oob"));
                        e.insert("execute".into(), name.cloned().unwrap_or(Value::Null));
                        if let Some(a) = req.get("arguments") {
                            e.insert("arguments".into(), a.clone());
                        }
                        for k in ["return", "error"] {
                            if let Some(v) = msg.get(k) {
                                e.insert(k.into(), v.clone());
                            }
                        }
                        Value::Object(e)
                    })
                };
                if let Some(entry) = entry {
                    lock(&lines).push(entry.to_string());
                }
            }
            let _ = client_write.shutdown().await;
        }
    };
    tokio::join!(to_qemu, from_qemu);
    let mut text = lock(&lines).join("\n");
    text.push('\n');
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(capture)
        .await
        .map_err(|error| CaptureError::Io {
            what: format!("cannot open {}", capture.display()),
            error,
        })?;
    // tokio's File writes in the background: flush, so the file is complete on return.
    let written = match file.write_all(text.as_bytes()).await {
        Ok(()) => file.flush().await,
        Err(e) => Err(e),
    };
    written.map_err(|error| CaptureError::Io {
        what: format!("cannot write {}", capture.display()),
        error,
    })?;
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
