//! The task that owns one session's socket: it reads, parses (see `reader`), checks and
//! dispatches requests, and writes replies and events, in one hand-written poll loop like the
//! client's connection task. What QEMU guarantees, it guarantees:
//!
//! - in-band commands run one at a time, in order, and their replies (and the replies to bad
//!   input) come in that order; the task keeps reading meanwhile, up to QEMU's queue of 8;
//! - with `oob` negotiated, `exec-oob` commands start as soon as they are read and run
//!   concurrently (at most [`MAX_OOB_IN_FLIGHT`] per session); their replies may overtake;
//! - no events before negotiation.
//!
//! Backpressure: while more than [`WRITE_HIGH_WATER`] bytes wait to be written, or the queues
//! are full, the task reads nothing more, so a client that never reads cannot make the server
//! buffer without bound; events wait in a bounded queue (their senders wait with them).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit};
use tokio::task::JoinSet;

use super::handler::{start, AfterReply, Call, CatchUnwind};
use super::reader::{Json, Message, Reader};
use super::request::{capabilities_arguments, check_envelope, Refusal};
use super::session::{Session, SessionShared};
use super::state::{Entry, ServerInner};
use super::writer;
use crate::error::QmpError;
use crate::greeting::Capability;
use crate::transport::Transport;
/// QEMU's in-band request queue (`QMP_REQ_QUEUE_LEN_MAX`): requests read ahead while one runs.
const IN_BAND_QUEUE: usize = 8;
/// Out-of-band commands running at once in one session; reading pauses at this many.
pub const MAX_OOB_IN_FLIGHT: usize = 64;
/// Bytes waiting to be written above which the session stops reading and starting commands.
pub const WRITE_HIGH_WATER: usize = 256 * 1024;
/// How long a closing session tries to write what it still holds.
const CLOSE_FLUSH: Duration = Duration::from_secs(5);
/// Rounds of the poll loop before yielding to other tasks.
const POLL_BUDGET: usize = 32;
const READ_CHUNK: usize = 16 * 1024;

/// Work for the in-band queue, in arrival order.
enum Work {
    /// A reply decided when the message was read (bad JSON).
    Reply(Vec<u8>),
    /// A request, checked when its turn comes (the negotiation state may change before then).
    Request(Json),
}

/// The in-band command running now.
struct Running {
    fut: CatchUnwind,
    name: String,
    id: Option<Vec<u8>>,
    after: Arc<AfterReply>,
}

/// An out-of-band command's outcome.
struct Finished {
    result: Result<Value, QmpError>,
    name: String,
    id: Option<Vec<u8>>,
    after: Arc<AfterReply>,
}

struct Closing {
    deadline: Pin<Box<tokio::time::Sleep>>,
    shutdown_started: bool,
}

pub(crate) struct SessionTask {
    io: Transport,
    session: Session,
    server: Arc<ServerInner>,
    events: mpsc::Receiver<Arc<[u8]>>,
    close: mpsc::Receiver<()>,
    reader: Reader,
    input: Vec<u8>,
    in_start: usize,
    in_end: usize,
    in_band: VecDeque<Work>,
    running: Option<Running>,
    oob: JoinSet<Finished>,
    out: Vec<u8>,
    out_pos: usize,
    /// A user-supplied stream may buffer: flush it once `out` is written.
    unflushed: bool,
    closing: Option<Closing>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl SessionTask {
    /// Creates the session (registered with the server by the caller) and its task.
    pub(crate) fn new(
        server: Arc<ServerInner>,
        id: u64,
        io: Transport,
        peer: String,
        permit: Option<OwnedSemaphorePermit>,
    ) -> SessionTask {
        let (events_tx, events) = mpsc::channel(server.config.event_buffer.max(1));
        let (close_tx, close) = mpsc::channel(1);
        let session = Session(Arc::new(SessionShared {
            id,
            peer,
            negotiated: AtomicBool::new(false),
            oob: AtomicBool::new(false),
            events: events_tx,
            close: close_tx,
            closed: AtomicBool::new(false),
            closed_notify: Notify::new(),
        }));
        let mut out = Vec::with_capacity(256);
        let c = &server.config;
        writer::greeting(&mut out, c.version, &c.package, &c.capabilities);
        SessionTask {
            io,
            session,
            reader: Reader::new(c.limits),
            server,
            events,
            close,
            input: vec![0; READ_CHUNK],
            in_start: 0,
            in_end: 0,
            in_band: VecDeque::new(),
            running: None,
            oob: JoinSet::new(),
            out,
            out_pos: 0,
            unflushed: false,
            closing: None,
            _permit: permit,
        }
    }

    pub(crate) fn session(&self) -> &Session {
        &self.session
    }

    pub(crate) async fn run(mut self) {
        tracing::debug!(session = self.session.id(), peer = %self.session.peer(), "QMP session opened");
        std::future::poll_fn(|cx| self.poll_run(cx)).await;
        self.oob.abort_all();
        let shared = &self.session.0;
        shared.closed.store(true, Relaxed);
        self.server.sessions.remove(shared.id);
        shared.closed_notify.notify_waiters();
        tracing::debug!(session = shared.id, "QMP session ended");
    }

    fn backlog(&self) -> usize {
        self.out.len() - self.out_pos
    }

    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..POLL_BUDGET {
            let mut progress = false;

            // A close request (Session::close, server shutdown).
            if self.closing.is_none() && self.close.poll_recv(cx).is_ready() {
                self.begin_close();
                progress = true;
            }

            // Events queued for this client, while there is room to write.
            while self.closing.is_none() && self.backlog() < WRITE_HIGH_WATER {
                match self.events.poll_recv(cx) {
                    Poll::Ready(Some(bytes)) => {
                        self.out.extend_from_slice(&bytes);
                        progress = true;
                    }
                    _ => break,
                }
            }

            if self.closing.is_none() {
                progress |= self.poll_commands(cx);
                progress |= self.read_input(cx);
            }

            match self.poll_write(cx) {
                Poll::Ready(Ok(wrote)) => progress |= wrote,
                Poll::Ready(Err(e)) => {
                    tracing::debug!(session = self.session.id(), error = %e, "write failed; ending the session");
                    return Poll::Ready(());
                }
                Poll::Pending => {}
            }

            if let Some(closing) = &mut self.closing {
                if closing.deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                if (self.out_pos == self.out.len() && !self.unflushed) || closing.shutdown_started {
                    closing.shutdown_started = true;
                    return match self.io.poll_shutdown(cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(_) => Poll::Ready(()),
                    };
                }
            }

            if !progress {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Stops reading and running commands; what is queued for the client is still written.
    fn begin_close(&mut self) {
        if self.closing.is_some() {
            return;
        }
        self.running = None;
        self.in_band.clear();
        self.oob.abort_all();
        // Events emitted before the close was asked for still go out, in order.
        while let Ok(bytes) = self.events.try_recv() {
            self.out.extend_from_slice(&bytes);
        }
        self.events.close();
        self.closing = Some(Closing {
            deadline: Box::pin(tokio::time::sleep(CLOSE_FLUSH)),
            shutdown_started: false,
        });
    }

    /// Advances commands: out-of-band completions, the running in-band command, and the next
    /// queued in-band work. True if anything happened.
    fn poll_commands(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        while let Poll::Ready(Some(done)) = self.oob.poll_join_next(cx) {
            progress = true;
            // An error is an abort on close; a handler's panic is caught inside the task.
            if let Ok(f) = done {
                self.finish(f.result, &f.name, f.id.as_deref(), &f.after);
            }
            if self.closing.is_some() {
                return true;
            }
        }
        loop {
            if let Some(running) = &mut self.running {
                match Pin::new(&mut running.fut).poll(cx) {
                    Poll::Ready(result) => {
                        progress = true;
                        if let Some(r) = self.running.take() {
                            self.finish(result, &r.name, r.id.as_deref(), &r.after);
                        }
                        if self.closing.is_some() {
                            return true;
                        }
                    }
                    Poll::Pending => return progress,
                }
            }
            if self.backlog() >= WRITE_HIGH_WATER {
                return progress;
            }
            let Some(work) = self.in_band.pop_front() else {
                return progress;
            };
            progress = true;
            match work {
                Work::Reply(bytes) => self.out.extend_from_slice(&bytes),
                Work::Request(request) => self.dispatch(request),
            }
        }
    }

    /// Writes a command's reply: events already emitted first, then the reply, then the
    /// events it queued for after its reply.
    fn finish(
        &mut self,
        result: Result<Value, QmpError>,
        name: &str,
        id: Option<&[u8]>,
        after: &AfterReply,
    ) {
        while let Ok(bytes) = self.events.try_recv() {
            self.out.extend_from_slice(&bytes);
        }
        match &result {
            Ok(value) => writer::success(&mut self.out, value, id),
            Err(e) => {
                tracing::debug!(session = self.session.id(), command = name, class = %e.class, desc = %e.desc, "command failed");
                writer::error(&mut self.out, &e.class, &e.desc, id);
            }
        }
        let events = std::mem::take(
            &mut *after
                .events
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        self.out.extend_from_slice(&events);
        if after.close.load(Relaxed) {
            tracing::debug!(
                session = self.session.id(),
                command = name,
                "closing after the reply, as the handler asked"
            );
            self.begin_close();
        }
    }

    /// Parses buffered input and reads more, while the queues and the write buffer have room.
    fn read_input(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        loop {
            if self.in_band.len() >= IN_BAND_QUEUE
                || self.oob.len() >= MAX_OOB_IN_FLIGHT
                || self.backlog() >= WRITE_HIGH_WATER
                || self.closing.is_some()
            {
                return progress;
            }
            if self.in_start < self.in_end {
                let (used, message) = self.reader.feed(&self.input[self.in_start..self.in_end]);
                self.in_start += used;
                if let Some(message) = message {
                    progress = true;
                    self.received(message);
                }
                continue;
            }
            self.in_start = 0;
            self.in_end = 0;
            match self.io.poll_read(cx, &mut self.input) {
                Poll::Ready(Ok(0)) => {
                    tracing::debug!(
                        session = self.session.id(),
                        partial = self.reader.in_message(),
                        "the client closed the connection"
                    );
                    self.begin_close();
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    self.in_end = n;
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    tracing::debug!(session = self.session.id(), error = %e, "read failed; ending the session");
                    self.begin_close();
                    return true;
                }
                Poll::Pending => return progress,
            }
        }
    }

    /// A complete message: `exec-oob` runs now when `oob` is on; everything else waits its
    /// turn in the in-band queue (QEMU queues parse errors there too).
    fn received(&mut self, message: Message) {
        match message {
            Message::Error(desc) => {
                tracing::debug!(session = self.session.id(), %desc, "unparseable input");
                let mut bytes = Vec::new();
                writer::error(&mut bytes, "GenericError", &desc, None);
                self.in_band.push_back(Work::Reply(bytes));
            }
            Message::Value(request) => {
                let oob_request =
                    request.get("exec-oob").is_some() && request.get("execute").is_none();
                if oob_request && self.session.oob_enabled() {
                    self.dispatch(request);
                } else {
                    self.in_band.push_back(Work::Request(request));
                }
            }
        }
    }

    /// Checks a request and runs it (or answers it at once).
    fn dispatch(&mut self, request: Json) {
        let id = request.get("id").map(|id| {
            let mut v = Vec::new();
            writer::json(&mut v, id);
            v
        });
        let negotiated = self.session.is_negotiated();
        let refusal = match check_envelope(&request, self.session.oob_enabled()) {
            Err(r) => r,
            Ok(env) => {
                let command = env.command.to_string();
                match self.command(env.command, env.oob, env.arguments, negotiated) {
                    Ok(None) => {
                        // qmp_capabilities succeeded.
                        writer::success(&mut self.out, &Value::Object(Map::new()), id.as_deref());
                        return;
                    }
                    Ok(Some(entry)) => {
                        let arguments = match env.arguments {
                            Some(members) => match Json::Object(members.to_vec()).into_value() {
                                Value::Object(map) => map,
                                _ => Map::new(),
                            },
                            None => Map::new(),
                        };
                        let oob = env.oob;
                        self.start(entry, command, arguments, id, oob);
                        return;
                    }
                    Err(r) => r,
                }
            }
        };
        let desc = if !negotiated && refusal.class == "CommandNotFound" {
            "Expecting capabilities negotiation with 'qmp_capabilities'".to_string()
        } else {
            refusal.desc
        };
        writer::error(&mut self.out, refusal.class, &desc, id.as_deref());
    }

    /// Finds what runs `command`. `Ok(None)`: it was `qmp_capabilities`, handled here.
    fn command(
        &mut self,
        command: &str,
        oob: bool,
        arguments: Option<&[(String, Json)]>,
        negotiated: bool,
    ) -> Result<Option<Entry>, Refusal> {
        if command == "qmp_capabilities" {
            if oob {
                return Err(Refusal::generic(
                    "The command qmp_capabilities does not support OOB",
                ));
            }
            let offered = &self.server.config.capabilities;
            let requested = capabilities_arguments(arguments, |name| {
                name == "oob" || offered.iter().any(|c| c.name() == name)
            })?;
            if negotiated {
                return Err(Refusal::command_not_found(
                    "Capabilities negotiation is already complete, command ignored",
                ));
            }
            let unavailable: Vec<&str> = requested
                .iter()
                .map(String::as_str)
                .filter(|r| !offered.iter().any(|c| c.name() == *r))
                .collect();
            if !unavailable.is_empty() {
                return Err(Refusal::generic(format!(
                    "Capability {} not available",
                    unavailable.join(", ")
                )));
            }
            let shared = &self.session.0;
            shared.oob.store(
                requested.iter().any(|r| r == Capability::Oob.name()),
                Relaxed,
            );
            shared.negotiated.store(true, Relaxed);
            tracing::debug!(session = shared.id, enabled = ?requested, "capabilities negotiated");
            return Ok(None);
        }
        if !negotiated {
            return Err(Refusal::command_not_found(""));
        }
        let Some(entry) = self.server.lookup(command) else {
            return Err(Refusal::command_not_found(format!(
                "The command {command} has not been found"
            )));
        };
        if oob && !entry.allow_oob {
            return Err(Refusal::generic(format!(
                "The command {command} does not support OOB"
            )));
        }
        Ok(Some(entry))
    }

    fn start(
        &mut self,
        entry: Entry,
        name: String,
        arguments: Map<String, Value>,
        id: Option<Vec<u8>>,
        oob: bool,
    ) {
        tracing::debug!(session = self.session.id(), command = %name, oob, "running command");
        let after = Arc::new(AfterReply::default());
        let call = Call {
            name: name.clone(),
            arguments,
            id: id.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()),
            oob,
            session: self.session.clone(),
            sessions: self.server.sessions.clone(),
            after: after.clone(),
        };
        let fut = start(entry.handler.as_ref(), call);
        if oob {
            self.oob.spawn(async move {
                let result = fut.await;
                Finished {
                    result,
                    name,
                    id,
                    after,
                }
            });
        } else {
            self.running = Some(Running {
                fut,
                name,
                id,
                after,
            });
        }
    }

    /// Writes as much as the socket takes. `Ok(true)` if anything was written.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<bool>> {
        let mut wrote = false;
        while self.out_pos < self.out.len() {
            match self.io.poll_write(cx, &self.out[self.out_pos..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => {
                    self.out_pos += n;
                    wrote = true;
                    self.unflushed = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    // Reclaim the written prefix so the buffer does not creep while the
                    // client is slow.
                    if self.out_pos > 0 && self.out_pos >= self.out.len() / 2 {
                        self.out.drain(..self.out_pos);
                        self.out_pos = 0;
                    }
                    return if wrote {
                        Poll::Ready(Ok(true))
                    } else {
                        Poll::Pending
                    };
                }
            }
        }
        self.out.clear();
        self.out_pos = 0;
        if self.out.capacity() > WRITE_HIGH_WATER {
            self.out = Vec::new();
        }
        if self.unflushed {
            match self.io.poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        Poll::Ready(Ok(wrote))
    }
}
