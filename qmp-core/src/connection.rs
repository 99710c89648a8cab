//! The connection task: the one owner of the socket.
//!
//! [`Client`](crate::Client) handles send it [`Op`]s over a channel. It assigns each command an
//! id, batches pending commands into one write, reads and classifies everything the server
//! sends, routes each reply to its caller's one-shot channel and fans events out to the
//! subscribers. It is a single hand-written `poll` loop so that reading, writing and taking new
//! commands interleave without locks on the hot path.
//!
//! Beyond routing by id it keeps three promises (see the [`Client`](crate::Client) docs):
//!
//! - **Order.** QEMU answers in-band commands in the order it reads them and out-of-band ones
//!   as soon as it reads them. A reply therefore proves that older commands it would have
//!   answered first will never be answered: they fail at once ("overtaken") instead of
//!   waiting forever. Errors without an `id` are never routed by guessing: they are held for
//!   the oldest command waiting and handed over only if that command is overtaken; a sync
//!   probe (a command that cannot exist, whose error reply overtakes everything before it)
//!   settles the question when nothing else is in flight.
//! - **Nothing received is lost.** When a write fails because the server closed its side,
//!   the task keeps reading until end of stream and dispatches everything first.
//! - **Honest `sent`.** Each command remembers where its bytes end in the output stream, so a
//!   command the server cannot have read is reported as never sent.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::error::{DisconnectReason, ProtocolError, QmpError};
use crate::event::{Event, Subscribers};
use crate::framing::ReadBuffer;
use crate::message::{classify, Id, Incoming};
use crate::slot;
use crate::transport::Transport;

/// With `oob` enabled QEMU queues at most 8 in-band commands and stops reading (even `exec-oob`)
/// when the queue is full, so we keep at most this many in flight and hold the rest.
const OOB_IN_BAND_LIMIT: usize = 8;
/// The command of a sync probe: one no server has, so its reply is a `CommandNotFound` error.
const PROBE_COMMAND: &[u8] = b"{\"execute\":\"qmp-rs-sync\"";
/// Stop taking new commands while this many bytes wait to be written (backpressure).
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// Rounds of the poll loop before yielding to other tasks.
const POLL_BUDGET: usize = 32;

/// A request from a client handle to the connection task.
pub(crate) enum Op {
    Execute(Request),
    /// Graceful close; acknowledged when the connection has ended.
    Close(oneshot::Sender<()>),
}

/// An encoded command, waiting for its id.
pub(crate) struct Request {
    /// `{"execute":"name"` (or `exec-oob`), then `,"arguments":{...}` if any, and no closing
    /// brace: the connection task appends `,"id":N}` and a newline.
    pub(crate) text: Vec<u8>,
    /// Where the command name ends inside `text` (it starts after the key), for logs.
    pub(crate) name_end: u32,
    pub(crate) oob: bool,
    /// Descriptors to attach (`SCM_RIGHTS`) to the command's first byte.
    pub(crate) fds: Box<[OwnedFd]>,
    pub(crate) reply: slot::Sender<Reply>,
}

impl Request {
    fn name_bytes(&self) -> &[u8] {
        let start = if self.oob { 13 } else { 12 };
        self.text.get(start..self.name_end as usize).unwrap_or(b"?")
    }

    fn name(&self) -> &str {
        std::str::from_utf8(self.name_bytes()).unwrap_or("?")
    }
}

pub(crate) type Reply = Result<Box<RawValue>, ReplyError>;

/// Why a command got no `return` value. Payloads are boxed: the common case is a return
/// value, and every in-flight command carries room for a `Reply`.
pub(crate) enum ReplyError {
    Qmp(Box<QmpError>),
    Malformed(Box<ProtocolError>),
    /// The connection ended; `sent`: the command was handed to the socket (it may have run).
    Disconnected {
        reason: Arc<DisconnectReason>,
        sent: bool,
    },
    FdPassingUnsupported,
    /// The server answered a later command first, so it will never answer this one. Carries
    /// the errors without id held for this command, if any: the first, and how many (boxed,
    /// so that every reply slot stays small).
    Unanswered(Option<Box<(QmpError, u64)>>),
}

impl ReplyError {
    /// The caller's error for [`ReplyError::Unanswered`] (out of line: rare, and it keeps the
    /// reply path of every command small).
    #[cold]
    pub(crate) fn unanswered(
        command: String,
        held: Option<Box<(QmpError, u64)>>,
    ) -> crate::ExecuteError {
        let (server_error, errors_without_id) = match held.map(|h| *h) {
            Some((error, count)) => (Some(error), count),
            None => (None, 0),
        };
        crate::ExecuteError::Unanswered {
            command,
            server_error,
            errors_without_id,
        }
    }
}

/// State shared between the connection task and every handle.
pub(crate) struct Shared {
    pub(crate) subscribers: Subscribers,
    /// Set once, when the connection has ended, before pending calls are failed.
    pub(crate) closed: OnceLock<Arc<DisconnectReason>>,
    /// Notified when `closed` is set.
    pub(crate) closed_notify: Notify,
    /// Set by a graceful close: new commands fail at once.
    pub(crate) closing: AtomicBool,
    /// Digits of the next command id, for the JSON limit check of commands being encoded.
    pub(crate) id_digits: AtomicUsize,
    pub(crate) stats: Counters,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Shared {
            subscribers: Subscribers::default(),
            closed: OnceLock::new(),
            closed_notify: Notify::new(),
            closing: AtomicBool::new(false),
            id_digits: AtomicUsize::new(0),
            stats: Counters::default(),
        }
    }
}

/// Counters behind [`Stats`](crate::Stats); written only by the connection task.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) in_flight: AtomicU64,
    pub(crate) commands_sent: AtomicU64,
    pub(crate) replies_received: AtomicU64,
    pub(crate) replies_discarded: AtomicU64,
    pub(crate) events_received: AtomicU64,
    pub(crate) malformed_messages: AtomicU64,
    pub(crate) stray_during_handshake: AtomicU64,
    pub(crate) replies_without_id: AtomicU64,
    pub(crate) commands_unanswered: AtomicU64,
    pub(crate) sync_probes: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    // Only the connection task writes, so a load and a store are enough (no atomic RMW).
    counter.store(counter.load(Relaxed) + 1, Relaxed);
}

/// Ids are sequential integers: a multiplicative hash spreads them well and costs one
/// multiplication, where the default SipHash would cost far more per command.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A command sent and not yet answered.
struct Pending {
    reply: slot::Sender<Reply>,
    /// Stream offset just past the command's closing brace. A command counts as sent once
    /// that many bytes were written: before its closing brace the server cannot have parsed
    /// it, let alone run it, so a command cut off earlier is reported as never sent.
    end: u64,
    /// [`OOB`], [`QUIT`], [`PROBE`].
    flags: u8,
}

/// Sent with `exec-oob`.
const OOB: u8 = 1;
/// A `quit`: its success announces that the server shuts down.
const QUIT: u8 = 2;
/// A sync probe of our own; its reply is consumed here.
const PROBE: u8 = 4;

/// Errors without an `id`, held for the oldest command waiting when they arrived.
struct HeldErrors {
    for_id: u64,
    first: Box<QmpError>,
    count: u64,
}

/// A write failed because the server closed its side: read what it sent until end of stream
/// (or the deadline), then end.
struct WriteFailure {
    error: io::Error,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

struct Closing {
    acks: Vec<oneshot::Sender<()>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    shutdown_started: bool,
}

pub(crate) struct Settings {
    pub(crate) oob: bool,
    /// How long [`Client::close`](crate::Client::close) waits for replies, and how long the
    /// task keeps reading after a failed write.
    pub(crate) close_timeout: Duration,
    /// The id of the first command (the negotiation used the one before).
    pub(crate) first_id: u64,
}

/// The connection task's state. See the module docs.
pub(crate) struct Connection {
    io: Transport,
    rb: ReadBuffer,
    ops: mpsc::UnboundedReceiver<Op>,
    ops_closed: bool,
    shared: Arc<Shared>,
    settings: Settings,
    pending: HashMap<u64, Pending, BuildHasherDefault<IdHasher>>,
    /// Prune cancelled calls from `pending` when it reaches this size (see `prune`).
    prune_at: usize,
    next_id: u64,
    /// `next_id` in decimal.
    next_id_text: IdText,
    out: Vec<u8>,
    out_pos: usize,
    /// Stream offset of `out[0]`: bytes written and dropped from `out` before.
    out_offset: u64,
    /// Offsets in `out` where a command carrying descriptors starts, with its descriptors.
    fd_marks: VecDeque<(usize, Box<[OwnedFd]>)>,
    /// A user-supplied stream may buffer: flush it once `out` is written.
    unflushed: bool,
    /// In-band commands sent and not yet answered (only tracked with oob enabled).
    in_band: usize,
    held: VecDeque<Request>,
    closing: Option<Closing>,
    events: Vec<Event>,
    wake: Vec<Waker>,
    /// Every in-band command with a lower id is answered or known unanswered (all commands,
    /// without oob).
    in_band_floor: u64,
    /// Every exec-oob command with a lower id is answered or known unanswered.
    oob_floor: u64,
    held_errors: Option<HeldErrors>,
    /// Exec-oob commands failed as unanswered: their errors without id may still be on the
    /// way (QEMU queues parse errors in-band), so such an error is not held for a later
    /// command. Only entries at or above `in_band_floor` matter; older ones are pruned.
    unanswered_oob: VecDeque<u64>,
    /// The id of the sync probe in flight.
    probe: Option<u64>,
    /// A probe waits for a free in-band slot (oob only).
    probe_wanted: bool,
    /// `quit` was answered successfully: the server is shutting down.
    quit_answered: bool,
    /// A SHUTDOWN event arrived (and no RESUME since).
    shutdown_event: bool,
    write_failure: Option<WriteFailure>,
}

impl Connection {
    pub(crate) fn new(
        io: Transport,
        rb: ReadBuffer,
        ops: mpsc::UnboundedReceiver<Op>,
        shared: Arc<Shared>,
        settings: Settings,
    ) -> Self {
        let next_id_text = IdText::new(settings.first_id);
        shared
            .id_digits
            .store(next_id_text.as_bytes().len(), Relaxed);
        Connection {
            io,
            rb,
            ops,
            ops_closed: false,
            shared,
            pending: HashMap::default(),
            prune_at: 1024,
            next_id: settings.first_id,
            next_id_text,
            out: Vec::new(),
            out_pos: 0,
            out_offset: 0,
            fd_marks: VecDeque::new(),
            unflushed: false,
            in_band: 0,
            held: VecDeque::new(),
            closing: None,
            events: Vec::new(),
            wake: Vec::new(),
            in_band_floor: settings.first_id,
            oob_floor: settings.first_id,
            held_errors: None,
            unanswered_oob: VecDeque::new(),
            probe: None,
            probe_wanted: false,
            quit_answered: false,
            shutdown_event: false,
            write_failure: None,
            settings,
        }
    }

    /// Runs until the connection ends.
    pub(crate) async fn run(mut self) {
        // Bytes that arrived with the negotiation reply are processed first.
        if let Err(e) = self.process_input() {
            let _ = self.finish(DisconnectReason::Protocol(e));
            return;
        }
        std::future::poll_fn(|cx| self.poll_run(cx)).await
    }

    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        for _ in 0..POLL_BUDGET {
            let mut progress = false;

            // 1. Take new commands (unless too much is already waiting to be written, or
            //    nothing can be written any more).
            while !self.ops_closed
                && self.write_failure.is_none()
                && self.out.len() - self.out_pos < WRITE_HIGH_WATER
            {
                match self.ops.poll_recv(cx) {
                    Poll::Ready(Some(op)) => {
                        self.accept(op, cx);
                        progress = true;
                    }
                    Poll::Ready(None) => {
                        // Every client handle is gone: nobody can wait for anything.
                        self.ops_closed = true;
                        if self.closing.is_none() {
                            return self.finish(DisconnectReason::ClientClosed);
                        }
                    }
                    Poll::Pending => break,
                }
            }

            // 2. Write what is waiting.
            if self.write_failure.is_none() {
                match self.poll_write(cx) {
                    Poll::Ready(Ok(wrote)) => progress |= wrote,
                    Poll::Ready(Err(e)) if peer_gone(&e) => {
                        // The server closed its side; what it sent before is still to be read.
                        tracing::debug!(error = %e, "write failed; reading what the server sent before closing");
                        self.write_failure = Some(WriteFailure {
                            error: e,
                            deadline: Box::pin(tokio::time::sleep(self.settings.close_timeout)),
                        });
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return self.finish(DisconnectReason::Io(e)),
                    Poll::Pending => {}
                }
            }

            // 3. Read and dispatch.
            match self.io.poll_read(cx, self.rb.spare()) {
                Poll::Ready(Ok(0)) => {
                    let reason = match self.rb.partial_len() {
                        0 if self.shutdown_seen() => DisconnectReason::ServerShutDown,
                        0 => DisconnectReason::ServerClosed,
                        received => {
                            DisconnectReason::Protocol(ProtocolError::TruncatedMessage { received })
                        }
                    };
                    return self.finish(reason);
                }
                Poll::Ready(Ok(n)) => {
                    self.rb.advance(n);
                    if let Err(e) = self.process_input() {
                        return self.finish(DisconnectReason::Protocol(e));
                    }
                    progress = true;
                }
                Poll::Ready(Err(e)) if self.shutdown_seen() && peer_gone(&e) => {
                    // QEMU resets the socket as it exits after `quit`: an orderly end.
                    tracing::debug!(error = %e, "connection reset after the server announced its shutdown");
                    return self.finish(DisconnectReason::ServerShutDown);
                }
                Poll::Ready(Err(e)) => return self.finish(DisconnectReason::Io(e)),
                Poll::Pending => {}
            }

            // 4. After a failed write, read until end of stream, within the deadline.
            if let Some(failure) = &mut self.write_failure {
                if failure.deadline.as_mut().poll(cx).is_ready() {
                    let reason = match self.write_failure.take() {
                        _ if self.shutdown_seen() => DisconnectReason::ServerShutDown,
                        Some(failure) => DisconnectReason::Io(failure.error),
                        None => DisconnectReason::ServerClosed,
                    };
                    return self.finish(reason);
                }
            } else if let Some(done) = self.poll_closing(cx) {
                // 5. A graceful close ends once everything sent was answered (or time is up).
                return done;
            }

            if !progress {
                return Poll::Pending;
            }
        }
        // Busy: let other tasks run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn accept(&mut self, op: Op, cx: &mut Context<'_>) {
        match op {
            Op::Close(ack) => match &mut self.closing {
                Some(closing) => closing.acks.push(ack),
                None => {
                    tracing::debug!(in_flight = self.pending.len(), "closing the connection");
                    self.closing = Some(Closing {
                        acks: vec![ack],
                        deadline: Box::pin(tokio::time::sleep(self.settings.close_timeout)),
                        shutdown_started: false,
                    });
                    // Make sure the deadline is polled (registers its timer).
                    cx.waker().wake_by_ref();
                }
            },
            Op::Execute(req) => {
                if self.closing.is_some() {
                    let _ = req.reply.send(Err(ReplyError::Disconnected {
                        reason: Arc::new(DisconnectReason::ClientClosed),
                        sent: false,
                    }));
                } else if !req.fds.is_empty() && !self.io.can_pass_fds() {
                    let _ = req.reply.send(Err(ReplyError::FdPassingUnsupported));
                } else if self.settings.oob && !req.oob && self.in_band >= OOB_IN_BAND_LIMIT {
                    self.held.push_back(req);
                } else {
                    self.enqueue(req);
                }
            }
        }
    }

    /// Gives a user's command its id and appends it to the output buffer.
    fn enqueue(&mut self, req: Request) {
        let mut flags = if req.oob { OOB } else { 0 };
        if req.name_bytes() == b"quit" {
            flags |= QUIT;
        }
        self.enqueue_flagged(req, flags);
    }

    fn enqueue_flagged(&mut self, req: Request, flags: u8) {
        let id = self.next_id;
        self.next_id += 1;
        tracing::debug!(id, command = req.name(), oob = req.oob, "sending command");
        if self.out_pos > 0 && self.out_pos >= self.out.len() / 2 {
            // Reclaim the written prefix so the buffer does not grow while the peer is slow.
            self.out.drain(..self.out_pos);
            for (mark, _) in &mut self.fd_marks {
                *mark -= self.out_pos;
            }
            self.out_offset += self.out_pos as u64;
            self.out_pos = 0;
        }
        let Request {
            text,
            oob,
            fds,
            reply,
            ..
        } = req;
        if !fds.is_empty() {
            self.fd_marks.push_back((self.out.len(), fds));
        }
        self.out.extend_from_slice(&text);
        self.out.extend_from_slice(b",\"id\":");
        self.out.extend_from_slice(self.next_id_text.as_bytes());
        if self.next_id_text.increment() {
            let digits = self.next_id_text.as_bytes().len();
            self.shared.id_digits.store(digits, Relaxed);
        }
        self.out.push(b'}');
        let end = self.out_offset + self.out.len() as u64;
        self.out.push(b'\n');
        if self.settings.oob && !oob {
            self.in_band += 1;
        }
        self.pending.insert(id, Pending { reply, end, flags });
        if self.pending.len() >= self.prune_at {
            self.prune();
        }
        if flags & PROBE == 0 {
            bump(&self.shared.stats.commands_sent);
        }
        self.update_in_flight();
    }

    /// Commands waiting for a reply, the sync probe not counted.
    fn update_in_flight(&self) {
        let probes = usize::from(self.probe.is_some());
        self.shared
            .stats
            .in_flight
            .store(self.pending.len().saturating_sub(probes) as u64, Relaxed);
    }

    /// The server announced that it shuts down, so the end of the connection is orderly.
    fn shutdown_seen(&self) -> bool {
        self.quit_answered || self.shutdown_event
    }

    /// Bytes written to the socket since the connection task started.
    fn written(&self) -> u64 {
        self.out_offset + self.out_pos as u64
    }

    /// Forgets calls whose caller went away (cancelled or timed out), so a server that never
    /// answers them cannot make the table grow without bound. Amortized: runs when the table
    /// doubles. Not with oob, where each entry also counts against QEMU's in-band queue. A
    /// sync probe stays (nobody waits for it, but its reply settles older commands); errors
    /// without id held for a forgotten call are dropped with it.
    fn prune(&mut self) {
        if !self.settings.oob {
            self.pending
                .retain(|_, p| p.flags & PROBE != 0 || !p.reply.is_closed());
            if let Some(held) = self
                .held_errors
                .take_if(|h| !self.pending.contains_key(&h.for_id))
            {
                tracing::debug!(count = held.count, first = %held.first, "dropping errors without id held for a cancelled command");
            }
        }
        self.prune_at = (self.pending.len() * 2).max(1024);
    }

    /// Writes as much as the socket takes. `Ok(true)` if anything was written.
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let mut wrote = false;
        while self.out_pos < self.out.len() {
            let next_mark = self.fd_marks.front().map(|(at, _)| *at);
            let n = if next_mark == Some(self.out_pos) {
                // This command carries descriptors: send its first bytes with them, alone.
                let end = self.fd_marks.get(1).map_or(self.out.len(), |(at, _)| *at);
                let fds = self
                    .fd_marks
                    .front()
                    .map(|(_, fds)| &fds[..])
                    .unwrap_or(&[]);
                match self
                    .io
                    .poll_write_with_fds(cx, &self.out[self.out_pos..end], fds)
                {
                    Poll::Ready(Ok(n)) => {
                        // Sent: the kernel holds its own references now; ours close here.
                        self.fd_marks.pop_front();
                        n
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        return if wrote {
                            Poll::Ready(Ok(true))
                        } else {
                            Poll::Pending
                        }
                    }
                }
            } else {
                let end = next_mark.unwrap_or(self.out.len());
                match self.io.poll_write(cx, &self.out[self.out_pos..end]) {
                    Poll::Ready(Ok(n)) => n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        return if wrote {
                            Poll::Ready(Ok(true))
                        } else {
                            Poll::Pending
                        }
                    }
                }
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
            wrote = true;
            self.unflushed = true;
        }
        self.out_offset += self.out.len() as u64;
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

    /// Handles every complete message in the read buffer.
    fn process_input(&mut self) -> Result<(), ProtocolError> {
        let result = self.process_messages();
        // Events received before a fatal error are still delivered.
        self.flush_events();
        self.rb.shrink_if_idle();
        result
    }

    fn process_messages(&mut self) -> Result<(), ProtocolError> {
        let deliver_events = self.shared.subscribers.count() > 0;
        loop {
            let (id, result) = {
                let Some(msg) = self.rb.next_message()? else {
                    return Ok(());
                };
                match classify(msg)? {
                    Incoming::Event {
                        name,
                        data,
                        timestamp,
                    } => {
                        bump(&self.shared.stats.events_received);
                        tracing::trace!(event = name, "event received");
                        // A guest shutdown under `-no-shutdown` leaves QEMU running: a later
                        // RESUME withdraws the notice.
                        match name {
                            "SHUTDOWN" => self.shutdown_event = true,
                            "RESUME" => self.shutdown_event = false,
                            _ => {}
                        }
                        if deliver_events {
                            self.events.push(Event::from_parts(
                                name,
                                data.map(RawValue::get),
                                timestamp,
                            ));
                        }
                        continue;
                    }
                    Incoming::Reply { id, result } => (
                        id,
                        result
                            .map(|raw| raw.to_owned())
                            .map_err(|e| ReplyError::Qmp(Box::new(e))),
                    ),
                    Incoming::Malformed { id, error } => {
                        bump(&self.shared.stats.malformed_messages);
                        tracing::warn!(%error, "ignoring malformed message from the server");
                        match id {
                            Id::Ours(_) => (id, Err(ReplyError::Malformed(Box::new(error)))),
                            _ => continue,
                        }
                    }
                    Incoming::Greeting(_) => {
                        bump(&self.shared.stats.malformed_messages);
                        tracing::warn!("ignoring a second greeting from the server");
                        continue;
                    }
                }
            };
            // Events that preceded this reply on the wire are visible before the caller wakes.
            self.flush_events();
            self.route(id, result);
        }
    }

    fn flush_events(&mut self) {
        if !self.events.is_empty() {
            self.shared
                .subscribers
                .dispatch(&self.events, &mut self.wake);
            self.events.clear();
            for w in self.wake.drain(..) {
                w.wake();
            }
        }
    }

    fn route(&mut self, id: Id, result: Reply) {
        let n = match id {
            Id::Ours(n) => n,
            Id::Missing => return self.hold_without_id(result),
            Id::Foreign => {
                bump(&self.shared.stats.replies_received);
                return self.discard(id, &result);
            }
        };
        let Some(pending) = self.pending.remove(&n) else {
            bump(&self.shared.stats.replies_received);
            if !self.settings.oob && (self.settings.first_id..self.next_id).contains(&n) {
                // The late reply of a command forgotten after its caller gave up: still a
                // sign that every older command was answered or skipped.
                self.overtake(n, 0);
            }
            return self.discard(id, &result);
        };
        // The server answered `n`: older commands it would have answered first never will be.
        // (Without oob, replies come in order: the next one is for the oldest command.)
        if n == self.in_band_floor && !self.settings.oob {
            self.in_band_floor += 1;
        } else {
            self.overtake(n, pending.flags);
        }
        self.release_in_band_slot(&pending);
        if let Some(held) = self.held_errors.take_if(|h| h.for_id == n) {
            tracing::info!(
                id = n,
                count = held.count,
                first = %held.first,
                "errors without id arrived while this command was the oldest waiting, and it was answered after all: they were about something else (another client's input?)"
            );
        }
        if pending.flags & PROBE != 0 {
            tracing::debug!(id = n, "sync probe answered");
            self.probe = None;
            self.update_in_flight();
            return;
        }
        bump(&self.shared.stats.replies_received);
        self.update_in_flight();
        if pending.flags & QUIT != 0 && result.is_ok() {
            self.quit_answered = true;
        }
        if pending.reply.send(result).is_err() {
            bump(&self.shared.stats.replies_discarded);
            tracing::debug!(?id, "discarding the reply of a cancelled command");
        }
    }

    fn discard(&mut self, id: Id, result: &Reply) {
        bump(&self.shared.stats.replies_discarded);
        match result {
            Err(ReplyError::Qmp(e)) => {
                tracing::warn!(?id, class = %e.class, desc = %e.desc, "dropping an error reply that matches no pending command")
            }
            _ => tracing::warn!(?id, "dropping a reply that matches no pending command"),
        }
    }

    /// A reply without `id`. This client sends an id with every command, and QEMU echoes it
    /// whenever it could parse the command, so such a reply is either about input QEMU could
    /// not parse or meant for another client. It is never routed by guessing: an error is
    /// held for the oldest command waiting (the only one it can be about, since QEMU answers
    /// in order), to be handed over only if that command turns out to be unanswered, and a
    /// sync probe makes sure that question gets settled.
    fn hold_without_id(&mut self, result: Reply) {
        bump(&self.shared.stats.replies_received);
        bump(&self.shared.stats.replies_without_id);
        bump(&self.shared.stats.replies_discarded);
        let Err(ReplyError::Qmp(error)) = result else {
            tracing::warn!("dropping a reply without id: every command of this client has one, so it answers someone else's");
            return;
        };
        let Some(&oldest) = self.pending.keys().min() else {
            tracing::warn!(class = %error.class, desc = %error.desc, "dropping an error without id: no command is waiting");
            return;
        };
        // QEMU queues parse errors with its in-band work, so this error is about input it read
        // after the last in-band command it answered. An exec-oob command read there may
        // already have failed as unanswered (a later reply overtook it before its errors
        // arrived): the error may be about that one, so it must not go to a later command.
        let floor = self.in_band_floor;
        self.unanswered_oob.retain(|&id| id >= floor);
        if self.unanswered_oob.iter().any(|&id| id < oldest) {
            tracing::warn!(class = %error.class, desc = %error.desc, "dropping an error without id: it may be about an out-of-band command that already failed as unanswered");
            return;
        }
        tracing::warn!(class = %error.class, desc = %error.desc, oldest, "an error without id arrived; holding it for the oldest command waiting until the order of replies shows whose it is");
        match &mut self.held_errors {
            Some(held) if held.for_id == oldest => held.count += 1,
            _ => {
                self.held_errors = Some(HeldErrors {
                    for_id: oldest,
                    first: error,
                    count: 1,
                })
            }
        }
        if self.probe.is_none() && !self.probe_wanted {
            self.send_probe();
        }
    }

    /// Sends a sync probe: a command no server has. Its reply (an error) overtakes every
    /// command sent before it, so none of them waits forever for a reply that will not come.
    fn send_probe(&mut self) {
        if self.settings.oob && self.in_band >= OOB_IN_BAND_LIMIT {
            // Sent as soon as an in-band slot frees up, before any held command.
            self.probe_wanted = true;
            return;
        }
        let (reply, _nobody_waits) = slot::slot();
        let request = Request {
            text: PROBE_COMMAND.to_vec(),
            name_end: (PROBE_COMMAND.len() - 1) as u32,
            oob: false,
            fds: Box::default(),
            reply,
        };
        self.probe = Some(self.next_id);
        bump(&self.shared.stats.sync_probes);
        self.enqueue_flagged(request, PROBE);
    }

    /// The server answered command `n` (with `flags`): fails every command it must have
    /// processed before `n`. In-band commands are answered in order, so an in-band reply
    /// settles every older in-band command; out-of-band commands are answered as soon as they
    /// are read, so any reply settles every older out-of-band command. Without oob every
    /// command is in-band. Each floor only moves forward, so this costs O(1) per command
    /// (one comparison when replies come in order, as they do).
    fn overtake(&mut self, n: u64, flags: u8) {
        if !self.settings.oob {
            while self.in_band_floor < n {
                let older = self.in_band_floor;
                self.in_band_floor += 1;
                if let Some(p) = self.pending.remove(&older) {
                    self.unanswered(older, p);
                }
            }
            self.in_band_floor = self.in_band_floor.max(n + 1);
            return;
        }
        if flags & OOB == 0 {
            while self.in_band_floor < n {
                let older = self.in_band_floor;
                self.in_band_floor += 1;
                if self.pending.get(&older).is_some_and(|p| p.flags & OOB == 0) {
                    if let Some(p) = self.pending.remove(&older) {
                        self.unanswered(older, p);
                    }
                }
            }
            self.in_band_floor = self.in_band_floor.max(n + 1);
        }
        while self.oob_floor < n {
            let older = self.oob_floor;
            self.oob_floor += 1;
            if self.pending.get(&older).is_some_and(|p| p.flags & OOB != 0) {
                if let Some(p) = self.pending.remove(&older) {
                    self.unanswered(older, p);
                }
            }
        }
        self.oob_floor = self.oob_floor.max(n + 1);
    }

    /// Fails a command the server skipped, with the errors without id held for it.
    fn unanswered(&mut self, id: u64, pending: Pending) {
        self.release_in_band_slot(&pending);
        if pending.flags & PROBE != 0 {
            self.probe = None;
            return;
        }
        bump(&self.shared.stats.commands_unanswered);
        if pending.flags & OOB != 0 {
            self.unanswered_oob.push_back(id);
        }
        let held = self.held_errors.take_if(|h| h.for_id == id);
        tracing::warn!(
            id,
            errors_without_id = held.as_ref().map_or(0, |h| h.count),
            "the server answered later commands but never this one"
        );
        let error = ReplyError::Unanswered(held.map(|h| Box::new((*h.first, h.count))));
        let _ = pending.reply.send(Err(error));
    }

    /// With oob, an answered (or skipped) in-band command frees a slot of QEMU's queue: send
    /// a waiting probe, else the oldest held command.
    fn release_in_band_slot(&mut self, pending: &Pending) {
        if !self.settings.oob || pending.flags & OOB != 0 {
            return;
        }
        self.in_band = self.in_band.saturating_sub(1);
        if self.probe_wanted {
            self.probe_wanted = false;
            self.send_probe();
        } else if let Some(next) = self.held.pop_front() {
            self.enqueue(next);
        }
    }

    fn poll_closing(&mut self, cx: &mut Context<'_>) -> Option<Poll<()>> {
        let closing = self.closing.as_mut()?;
        let drained = self.pending.is_empty()
            && self.held.is_empty()
            && self.out.is_empty()
            && !self.probe_wanted;
        if closing.deadline.as_mut().poll(cx).is_ready() {
            tracing::debug!(unanswered = self.pending.len(), "close timeout reached");
            return Some(self.finish(DisconnectReason::ClientClosed));
        }
        if drained || closing.shutdown_started {
            closing.shutdown_started = true;
            // Half-close so the server sees a clean end of stream; ignore errors, we are done.
            return match self.io.poll_shutdown(cx) {
                Poll::Pending => Some(Poll::Pending),
                Poll::Ready(_) => Some(self.finish(DisconnectReason::ClientClosed)),
            };
        }
        None
    }

    /// Ends the connection: records why, fails everything still waiting, ends event streams.
    fn finish(&mut self, reason: DisconnectReason) -> Poll<()> {
        match &reason {
            DisconnectReason::ClientClosed => tracing::debug!("connection closed"),
            other => tracing::info!(reason = %other, "connection ended"),
        }
        let reason = Arc::new(reason);
        let reason = self.shared.closed.get_or_init(|| reason).clone();
        self.shared.closing.store(true, Relaxed);
        self.flush_events();
        let disconnected = |sent| {
            Err(ReplyError::Disconnected {
                reason: reason.clone(),
                sent,
            })
        };
        if let Some(held) = self.held_errors.take() {
            tracing::debug!(count = held.count, first = %held.first, "errors without id still held at the end");
        }
        let written = self.written();
        for (_, p) in self.pending.drain() {
            if p.flags & PROBE == 0 {
                let _ = p.reply.send(disconnected(p.end <= written));
            }
        }
        self.probe = None;
        for req in self.held.drain(..) {
            let _ = req.reply.send(disconnected(false));
        }
        self.shared.stats.in_flight.store(0, Relaxed);
        self.shared.subscribers.close(&reason);
        self.ops.close();
        while let Ok(op) = self.ops.try_recv() {
            match op {
                Op::Execute(req) => {
                    let _ = req.reply.send(disconnected(false));
                }
                Op::Close(ack) => {
                    let _ = ack.send(());
                }
            }
        }
        if let Some(closing) = self.closing.take() {
            for ack in closing.acks {
                let _ = ack.send(());
            }
        }
        self.shared.closed_notify.notify_waiters();
        Poll::Ready(())
    }
}

/// Errors meaning the server closed (or reset) its side of the connection.
fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
    )
}

/// The next id in decimal, kept in step with the number: an id is written for every command,
/// and incrementing its text in place (a carry now and then) is cheaper than formatting it.
struct IdText {
    /// `digits[start..]` is the decimal text.
    digits: [u8; 20],
    start: usize,
}

impl IdText {
    fn new(mut n: u64) -> Self {
        let mut digits = [b'0'; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        IdText { digits, start }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.digits[self.start..]
    }

    /// Adds one; true when the text got a digit longer.
    fn increment(&mut self) -> bool {
        for i in (self.start..self.digits.len()).rev() {
            if self.digits[i] == b'9' {
                self.digits[i] = b'0';
            } else {
                self.digits[i] += 1;
                return false;
            }
        }
        // All nines: one digit more (u64 has 20 digits at most; ids never get near that).
        match self.start.checked_sub(1) {
            Some(start) => {
                self.start = start;
                self.digits[start] = b'1';
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_ids() {
        for n in [0u64, 7, 10, 12345, 1_999_999_999, u64::MAX] {
            assert_eq!(IdText::new(n).as_bytes(), n.to_string().as_bytes());
        }
        for start in [0u64, 8, 99, 1_234_567_889, 9_999_999_998] {
            let mut text = IdText::new(start);
            for n in start..start + 25 {
                assert_eq!(text.as_bytes(), n.to_string().as_bytes());
                let grew = (n + 1).to_string().len() > n.to_string().len();
                assert_eq!(text.increment(), grew, "{n}");
            }
        }
    }
}
