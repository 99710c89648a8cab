//! The connection task: the one owner of the socket.
//!
//! [`Client`](crate::Client) handles send it [`Op`]s over a channel. It assigns each command an
//! id, batches pending commands into one write, reads and classifies everything the server
//! sends, routes each reply to its caller's one-shot channel and fans events out to the
//! subscribers. It is a single hand-written `poll` loop so that reading, writing and taking new
//! commands interleave without locks on the hot path.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
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
    fn name(&self) -> &str {
        let start = if self.oob { 13 } else { 12 };
        self.text
            .get(start..self.name_end as usize)
            .and_then(|n| std::str::from_utf8(n).ok())
            .unwrap_or("?")
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
    pub(crate) stats: Counters,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Shared {
            subscribers: Subscribers::default(),
            closed: OnceLock::new(),
            closed_notify: Notify::new(),
            closing: AtomicBool::new(false),
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

struct Pending {
    reply: slot::Sender<Reply>,
    oob: bool,
}

struct Closing {
    acks: Vec<oneshot::Sender<()>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    shutdown_started: bool,
}

pub(crate) struct Settings {
    pub(crate) oob: bool,
    pub(crate) close_timeout: Duration,
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
    out: Vec<u8>,
    out_pos: usize,
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
}

impl Connection {
    pub(crate) fn new(
        io: Transport,
        rb: ReadBuffer,
        ops: mpsc::UnboundedReceiver<Op>,
        shared: Arc<Shared>,
        settings: Settings,
    ) -> Self {
        Connection {
            io,
            rb,
            ops,
            ops_closed: false,
            shared,
            settings,
            pending: HashMap::default(),
            prune_at: 1024,
            next_id: 1,
            out: Vec::new(),
            out_pos: 0,
            fd_marks: VecDeque::new(),
            unflushed: false,
            in_band: 0,
            held: VecDeque::new(),
            closing: None,
            events: Vec::new(),
            wake: Vec::new(),
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

            // 1. Take new commands (unless too much is already waiting to be written).
            while !self.ops_closed && self.out.len() - self.out_pos < WRITE_HIGH_WATER {
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
            match self.poll_write(cx) {
                Poll::Ready(Ok(wrote)) => progress |= wrote,
                Poll::Ready(Err(e)) => return self.finish(DisconnectReason::Io(e)),
                Poll::Pending => {}
            }

            // 3. Read and dispatch.
            match self.io.poll_read(cx, self.rb.spare()) {
                Poll::Ready(Ok(0)) => {
                    let reason = match self.rb.partial_len() {
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
                Poll::Ready(Err(e)) => return self.finish(DisconnectReason::Io(e)),
                Poll::Pending => {}
            }

            // 4. A graceful close ends once everything sent was answered (or time is up).
            if let Some(done) = self.poll_closing(cx) {
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

    /// Gives the command its id and appends it to the output buffer.
    fn enqueue(&mut self, req: Request) {
        let id = self.next_id;
        self.next_id += 1;
        tracing::debug!(id, command = req.name(), oob = req.oob, "sending command");
        if self.out_pos > 0 && self.out_pos >= self.out.len() / 2 {
            // Reclaim the written prefix so the buffer does not grow while the peer is slow.
            self.out.drain(..self.out_pos);
            for (mark, _) in &mut self.fd_marks {
                *mark -= self.out_pos;
            }
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
        push_decimal(&mut self.out, id);
        self.out.extend_from_slice(b"}\n");
        if self.settings.oob && !oob {
            self.in_band += 1;
        }
        self.pending.insert(id, Pending { reply, oob });
        if self.pending.len() >= self.prune_at {
            self.prune();
        }
        bump(&self.shared.stats.commands_sent);
        self.shared
            .stats
            .in_flight
            .store(self.pending.len() as u64, Relaxed);
    }

    /// Forgets calls whose caller went away (cancelled or timed out), so a server that never
    /// answers them cannot make the table grow without bound. Amortized: runs when the table
    /// doubles. Not with oob, where each entry also counts against QEMU's in-band queue.
    fn prune(&mut self) {
        if !self.settings.oob {
            self.pending.retain(|_, p| !p.reply.is_closed());
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
        bump(&self.shared.stats.replies_received);
        let key = match id {
            Id::Ours(n) => Some(n),
            // Without oob QEMU answers in order, so a reply it could not tag belongs to the
            // oldest command (typically: QEMU failed to parse it). With oob the order is lost.
            Id::Missing if !self.settings.oob => self.pending.keys().min().copied(),
            Id::Missing | Id::Foreign => None,
        };
        let Some(pending) = key.and_then(|k| self.pending.remove(&k)) else {
            bump(&self.shared.stats.replies_discarded);
            match (id, &result) {
                (_, Err(ReplyError::Qmp(e))) => {
                    tracing::warn!(?id, class = %e.class, desc = %e.desc, "dropping an error reply that matches no pending command")
                }
                _ => tracing::warn!(?id, "dropping a reply that matches no pending command"),
            }
            return;
        };
        self.shared
            .stats
            .in_flight
            .store(self.pending.len() as u64, Relaxed);
        if self.settings.oob && !pending.oob {
            self.in_band = self.in_band.saturating_sub(1);
            if let Some(next) = self.held.pop_front() {
                self.enqueue(next);
            }
        }
        if pending.reply.send(result).is_err() {
            bump(&self.shared.stats.replies_discarded);
            tracing::debug!(?id, "discarding the reply of a cancelled command");
        }
    }

    fn poll_closing(&mut self, cx: &mut Context<'_>) -> Option<Poll<()>> {
        let closing = self.closing.as_mut()?;
        let drained = self.pending.is_empty() && self.held.is_empty() && self.out.is_empty();
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
        for (_, p) in self.pending.drain() {
            let _ = p.reply.send(disconnected(true));
        }
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

/// Appends `n` in decimal (ids are written for every command; this avoids `fmt`).
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_ids() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }
}
