//! [`Client`], the handle users hold, and [`ClientBuilder`], which opens connections.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::net::{TcpStream, ToSocketAddrs, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::connection::{Connection, Op, Request, Settings, Shared};
use crate::error::{ConnectError, DisconnectReason, ExecuteError};
use crate::event::EventStream;
use crate::framing::ReadBuffer;
use crate::greeting::{Capability, Greeting};
use crate::handshake::{handshake, Negotiated, Stage, STAGE_GREETING};
use crate::transport::{AsyncStream, Transport};

/// Configures and opens a connection. Every setting has a default suited to QEMU; see each
/// method.
///
/// ```no_run
/// # async fn demo() -> Result<(), qmp_core::ConnectError> {
/// use std::time::Duration;
/// use qmp_core::{Capability, Client};
///
/// let client = Client::builder()
///     .capabilities([Capability::Oob])
///     .timeout(Some(Duration::from_secs(5)))
///     .command_timeout(Some(Duration::from_secs(30)))
///     .connect_unix("/run/vm0/qmp.sock")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    capabilities: Vec<Capability>,
    timeout: Option<Duration>,
    command_timeout: Option<Duration>,
    close_timeout: Duration,
    max_message_size: usize,
    max_depth: usize,
    event_buffer: usize,
    pub(crate) wait_for_server: bool,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            capabilities: Vec::new(),
            timeout: Some(Duration::from_secs(10)),
            command_timeout: None,
            close_timeout: Duration::from_secs(5),
            max_message_size: 16 << 20,
            max_depth: 128,
            event_buffer: 4096,
            wait_for_server: false,
        }
    }
}

impl ClientBuilder {
    /// A builder with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Capabilities to enable if the server offers them (default: none). Only `oob` exists
    /// today; with it, out-of-band calls ([`Request::oob`](crate::Request::oob)) work and at
    /// most 8 in-band commands are kept in flight (QEMU's queue depth; more are held back and
    /// sent in order).
    pub fn capabilities(mut self, caps: impl IntoIterator<Item = Capability>) -> Self {
        self.capabilities = caps.into_iter().collect();
        self
    }

    /// Time allowed for connecting (or accepting) plus the greeting and negotiation
    /// (default: 10 s; `None` waits forever).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Default time each command may wait for its reply before failing with
    /// [`ExecuteError::Timeout`] (default: `None`, no limit; some commands legitimately take
    /// long). The connection stays usable after a timeout.
    pub fn command_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// How long [`Client::close`] waits for replies to commands already sent (default 5 s).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Largest message accepted from the server, in bytes (default 16 MiB, some 70 times the
    /// largest reply of QEMU 10, `query-qmp-schema`). A larger message ends the connection
    /// with [`ProtocolError::MessageTooLarge`](crate::ProtocolError::MessageTooLarge) before
    /// it is buffered whole.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes.max(1024);
        self
    }

    /// Deepest nesting of arrays/objects accepted from the server (default and maximum 128;
    /// QEMU's replies nest a handful of levels).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth.clamp(2, 128);
        self
    }

    /// Capacity of each subscriber's event buffer (default 4096). A subscriber that falls
    /// further behind loses the oldest events and is told how many.
    pub fn event_buffer(mut self, events: usize) -> Self {
        self.event_buffer = events.max(1);
        self
    }

    /// Whether connecting keeps retrying while the server is not there yet (default: no, fail
    /// at once). When on, a socket path that does not exist yet, a refused connection (QEMU
    /// still starting) or a full listen queue (QEMU listens with a backlog of 1: while one
    /// client holds the monitor and others wait, `connect(2)` fails with `EAGAIN`) is retried
    /// every 10 ms until the [`timeout`](Self::timeout) runs out, which then fails with
    /// [`ConnectError::Timeout`]. Meant for a QEMU you have just started, or a monitor another
    /// client holds for a while; accept mode ([`Listener`](crate::Listener)) avoids the
    /// start-up race altogether.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), qmp_core::ConnectError> {
    /// use std::time::Duration;
    /// // std::process::Command::new("qemu-system-x86_64").args(["-qmp", "unix:/tmp/q.sock,server=on,wait=off", ...]).spawn()?;
    /// let client = qmp_core::Client::builder()
    ///     .wait_for_server(true)
    ///     .timeout(Some(Duration::from_secs(5)))
    ///     .connect_unix("/tmp/q.sock")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn wait_for_server(mut self, wait: bool) -> Self {
        self.wait_for_server = wait;
        self
    }

    /// The stage named by a timeout while the socket is being opened.
    fn connect_stage(&self) -> &'static str {
        if self.wait_for_server {
            "connecting (retrying while the socket was missing, refused connections or had a full listen queue)"
        } else {
            "connecting"
        }
    }

    /// Connects to a QMP unix socket (QEMU: `-qmp unix:PATH,server=on,wait=off`). Unix sockets
    /// can pass file descriptors ([`Request::fd`](crate::Request::fd)).
    pub async fn connect_unix(self, path: impl AsRef<Path>) -> Result<Client, ConnectError> {
        let path = path.as_ref();
        let target = path.display().to_string();
        self.within_timeout(self.connect_stage(), async {
            let stream = retrying(self.wait_for_server, || UnixStream::connect(path))
                .await
                .map_err(|error| ConnectError::Connect {
                    target: target.clone(),
                    error,
                })?;
            Ok((Transport::Unix(stream), target.clone()))
        })
        .await
    }

    /// Connects over TCP (QEMU: `-qmp tcp:HOST:PORT,server=on,wait=off`). Plain TCP QMP has no
    /// authentication or encryption: anyone who can reach the port controls the VM.
    pub async fn connect_tcp(self, addr: impl ToSocketAddrs) -> Result<Client, ConnectError> {
        self.within_timeout(self.connect_stage(), async {
            let (stream, target) = connect_tcp(addr, self.wait_for_server).await?;
            Ok((Transport::Tcp(stream), target))
        })
        .await
    }

    /// Runs QMP over any byte stream: a TLS stream, a pipe, an in-memory duplex in tests.
    /// File descriptors cannot be passed over it.
    pub async fn connect_stream<S: AsyncStream>(self, stream: S) -> Result<Client, ConnectError> {
        self.within_timeout("connecting", async {
            Ok((Transport::Stream(Box::new(stream)), "stream".to_string()))
        })
        .await
    }

    /// Runs QMP over an already connected unix socket (keeps fd passing).
    pub async fn connect_unix_stream(self, stream: UnixStream) -> Result<Client, ConnectError> {
        self.within_timeout("connecting", async {
            Ok((Transport::Unix(stream), "unix stream".to_string()))
        })
        .await
    }

    /// Opens the transport with `open`, then handshakes, all under the configured timeout.
    pub(crate) async fn within_timeout<F>(
        &self,
        first_stage: &'static str,
        open: F,
    ) -> Result<Client, ConnectError>
    where
        F: std::future::Future<Output = Result<(Transport, String), ConnectError>>,
    {
        let stage: Stage = Stage::new(first_stage);
        let work = async {
            let (mut io, target) = open.await?;
            stage.set(STAGE_GREETING);
            let mut rb = ReadBuffer::new(self.max_message_size, self.max_depth);
            let negotiated = handshake(&mut io, &mut rb, &self.capabilities, &stage).await?;
            tracing::info!(peer = %target, version = %negotiated.greeting.version, "connected to QMP server");
            Ok(self.start(io, rb, negotiated))
        };
        match self.timeout {
            None => work.await,
            Some(after) => match tokio::time::timeout(after, work).await {
                Ok(res) => res,
                Err(_) => Err(ConnectError::Timeout {
                    stage: stage.get(),
                    after,
                }),
            },
        }
    }

    fn start(&self, io: Transport, rb: ReadBuffer, negotiated: Negotiated) -> Client {
        let Negotiated {
            greeting,
            enabled,
            skipped,
            first_id,
        } = negotiated;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::new());
        shared.stats.stray_during_handshake.store(skipped, Relaxed);
        let oob = enabled.contains(&Capability::Oob);
        let can_pass_fds = io.can_pass_fds();
        let conn = Connection::new(
            io,
            rb,
            rx,
            shared.clone(),
            Settings {
                oob,
                close_timeout: self.close_timeout,
                first_id,
            },
        );
        tokio::spawn(conn.run());
        Client {
            inner: Arc::new(Inner {
                ops: tx,
                shared,
                greeting,
                enabled,
                oob,
                can_pass_fds,
                command_timeout: self.command_timeout,
                event_buffer: self.event_buffer,
            }),
        }
    }
}

/// A QMP connection: execute commands, subscribe to events.
///
/// `Client` is a handle: cloning it is one reference-count increment, and every clone talks to
/// the same connection. Use it from as many tasks as you like; commands are pipelined on the one
/// socket and each reply is routed to its caller by id. A single background task (spawned on
/// the current tokio runtime when the connection opens) owns the socket.
///
/// **Cancellation.** Dropping a call's future before the reply arrives is safe: the command
/// still runs on the server, its reply is discarded, the connection stays healthy.
///
/// **Disconnects.** When the server closes the connection or dies, every pending call fails at
/// once with [`ExecuteError::Disconnected`], every [`EventStream`] ends, and later calls fail
/// immediately. [`Client::closed`] waits for that moment.
///
/// **Closing.** [`Client::close`] lets commands already sent finish (up to the close timeout),
/// then closes. Dropping the last handle closes the connection at once.
///
/// **Replies reach their own caller, or none.** A monitor delivers what it still owed an
/// earlier client to whoever holds it now. Each connection negotiates with a random 16-digit id
/// and numbers its commands from a random point, so such leftovers match nothing of ours: they
/// are dropped and counted in [`Stats`] (during the handshake too). The rest follows from the order in which
/// QEMU answers: in-band commands in the order it reads them, `exec-oob` commands as soon as it
/// reads them.
///
/// - A command that the server skipped, shown by a reply to a command sent after it (a later
///   in-band one, for an in-band command; any later one, for an `exec-oob` command), fails at
///   once with [`ExecuteError::Unanswered`] rather than waiting forever.
/// - An error without an `id` (QEMU's answer to input it cannot parse, or output meant for an
///   earlier client) is never handed to a caller by guessing. QEMU queues such errors with its
///   in-band work, so one can only be about the oldest command waiting when it arrives (anything
///   sent later would be answered after it), or about an `exec-oob` command that a later reply
///   already showed unanswered (then it is dropped). It is held for that oldest command: if the
///   command is then answered, the error was about something else and is dropped; if it is
///   skipped, its `Unanswered` error carries the held error. So an id-less error reaches at
///   most one caller, never one whose command was sent after the input that caused it. To
///   settle the question when nothing later is in flight, the client sends a sync probe, a
///   command that cannot exist (`qmp-rs-sync`), whose error reply overtakes everything sent
///   before it; that reply is consumed here. Id-less replies are counted in
///   [`Stats::replies_without_id`], unanswered commands in [`Stats::commands_unanswered`].
/// - The client never sends what QEMU's JSON parser rejects (nesting beyond 1024 levels, more
///   than 2^21 tokens, 64 MiB of tokens, noncharacters): such a command fails before sending
///   with [`ExecuteError::ExceedsJsonLimit`]. With QEMU, id-less errors therefore only come from
///   elsewhere.
///
/// **Nothing received is lost.** When the server closes the connection, everything it sent
/// before is dispatched first: replies reach their callers, events every subscriber, also when
/// writing a later command failed because the server was already gone (that command then fails
/// with `sent: false`). A command counts as sent once its closing brace was written (before
/// that the server cannot have run it). After a successful `quit` or a `SHUTDOWN` event, the end
/// of the connection (QEMU often resets the socket as it exits) is reported as
/// [`DisconnectReason::ServerShutDown`].
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use qmp_core::Client;
///
/// let client = Client::connect_unix("/run/vm0/qmp.sock").await?;
/// let status = client.execute("query-status", ()).await?;
/// println!("running: {}", status["running"]);
///
/// // Arguments are anything that serializes to a JSON object.
/// client.execute("human-monitor-command", serde_json::json!({"command-line": "info version"})).await?;
/// client.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    ops: mpsc::UnboundedSender<Op>,
    shared: Arc<Shared>,
    greeting: Greeting,
    enabled: Vec<Capability>,
    oob: bool,
    can_pass_fds: bool,
    command_timeout: Option<Duration>,
    event_buffer: usize,
}

/// Counters describing a connection, from [`Client::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Commands sent and not yet answered (including ones whose caller gave up).
    pub in_flight: u64,
    /// Commands written to the socket.
    pub commands_sent: u64,
    /// Replies received.
    pub replies_received: u64,
    /// Replies thrown away: unknown id, or the caller gave up waiting.
    pub replies_discarded: u64,
    /// Events received (whether or not anyone subscribed).
    pub events_received: u64,
    /// Messages ignored because their structure was invalid.
    pub malformed_messages: u64,
    /// Replies and events skipped while connecting (before the greeting and during
    /// negotiation): output the monitor owed an earlier client.
    pub stray_during_handshake: u64,
    /// Replies without an `id` received (included in `replies_received` and
    /// `replies_discarded`): errors about input the server could not parse, or replies to
    /// another client. Each is quoted in at most one [`ExecuteError::Unanswered`].
    pub replies_without_id: u64,
    /// Commands that failed with [`ExecuteError::Unanswered`]: the server answered later
    /// commands but never these.
    pub commands_unanswered: u64,
    /// Sync probes sent after errors without id (not counted as commands; their replies are
    /// consumed internally and not counted as replies).
    pub sync_probes: u64,
}

impl Client {
    /// A [`ClientBuilder`] with the default settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Connects to a unix socket with the default settings. See
    /// [`ClientBuilder::connect_unix`].
    pub async fn connect_unix(path: impl AsRef<Path>) -> Result<Client, ConnectError> {
        ClientBuilder::default().connect_unix(path).await
    }

    /// Connects over TCP with the default settings. See [`ClientBuilder::connect_tcp`].
    pub async fn connect_tcp(addr: impl ToSocketAddrs) -> Result<Client, ConnectError> {
        ClientBuilder::default().connect_tcp(addr).await
    }

    /// The server's greeting (QEMU version, offered capabilities).
    pub fn greeting(&self) -> &Greeting {
        &self.inner.greeting
    }

    /// The capabilities enabled on this connection.
    pub fn capabilities(&self) -> &[Capability] {
        &self.inner.enabled
    }

    /// Subscribes to every event. The stream sees every event received from now on, so
    /// subscribe *before* sending the command whose events you want.
    ///
    /// ```no_run
    /// # async fn demo(client: qmp_core::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut events = client.subscribe();
    /// client.execute("stop", ()).await?;
    /// while let Some(ev) = events.next().await {
    ///     let ev = ev?;
    ///     println!("{} at {:?}", ev.name(), ev.timestamp());
    ///     if ev.name() == "STOP" { break; }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn subscribe(&self) -> EventStream {
        self.inner
            .shared
            .subscribers
            .subscribe(None, self.inner.event_buffer)
    }

    /// Subscribes to the events with these names only. Other events neither reach this stream
    /// nor count against its buffer.
    pub fn subscribe_to<I, S>(&self, names: I) -> EventStream
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names = names.into_iter().map(Into::into).collect();
        self.inner
            .shared
            .subscribers
            .subscribe(Some(names), self.inner.event_buffer)
    }

    /// Closes the connection gracefully: new calls fail at once, commands already sent get
    /// their replies (waiting at most the close timeout), then the socket is shut down and
    /// event streams end. Returns when the connection has ended. Idempotent.
    pub async fn close(&self) {
        self.inner.shared.closing.store(true, Relaxed);
        let (ack, done) = oneshot::channel();
        if self.inner.ops.send(Op::Close(ack)).is_ok() {
            let _ = done.await;
        }
    }

    /// Waits until the connection has ended, and says why. Useful to notice that QEMU exited.
    pub async fn closed(&self) -> Arc<DisconnectReason> {
        loop {
            let notified = self.inner.shared.closed_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(reason) = self.inner.shared.closed.get() {
                return reason.clone();
            }
            notified.await;
        }
    }

    /// Why the connection ended, or `None` while it is open.
    pub fn disconnect_reason(&self) -> Option<Arc<DisconnectReason>> {
        self.inner.shared.closed.get().cloned()
    }

    /// Counters describing the connection.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.shared.stats;
        Stats {
            in_flight: c.in_flight.load(Relaxed),
            commands_sent: c.commands_sent.load(Relaxed),
            replies_received: c.replies_received.load(Relaxed),
            replies_discarded: c.replies_discarded.load(Relaxed),
            events_received: c.events_received.load(Relaxed),
            malformed_messages: c.malformed_messages.load(Relaxed),
            stray_during_handshake: c.stray_during_handshake.load(Relaxed),
            replies_without_id: c.replies_without_id.load(Relaxed),
            commands_unanswered: c.commands_unanswered.load(Relaxed),
            sync_probes: c.sync_probes.load(Relaxed),
        }
    }

    /// The error for a call the connection can no longer answer; `sent` says whether the
    /// command may have reached the server.
    pub(crate) fn disconnected(&self, command: &str, sent: bool) -> ExecuteError {
        let reason = self
            .inner
            .shared
            .closed
            .get()
            .cloned()
            .unwrap_or_else(|| Arc::new(DisconnectReason::ClientClosed));
        ExecuteError::Disconnected {
            command: command.to_string(),
            reason,
            sent,
        }
    }

    /// Hands an encoded command to the connection task.
    pub(crate) fn submit(&self, request: Request, command: &str) -> Result<(), ExecuteError> {
        if self.inner.shared.closing.load(Relaxed) {
            return Err(self.disconnected(command, false));
        }
        self.inner
            .ops
            .send(Op::Execute(request))
            .map_err(|_| self.disconnected(command, false))
    }

    /// Digits of the id the next command gets (it affects what QEMU's parser accepts).
    pub(crate) fn id_digits(&self) -> usize {
        self.inner.shared.id_digits.load(Relaxed)
    }

    /// The per-command timeout, if configured.
    pub(crate) fn command_timeout(&self) -> Option<Duration> {
        self.inner.command_timeout
    }

    /// Whether a graceful close has begun: new commands fail at once.
    pub(crate) fn is_closing(&self) -> bool {
        self.inner.shared.closing.load(Relaxed)
    }

    /// Whether the `oob` capability is enabled (`exec-oob` allowed).
    pub(crate) fn oob_enabled(&self) -> bool {
        self.inner.oob
    }

    /// Whether the transport can carry file descriptors (unix sockets).
    pub(crate) fn can_pass_fds(&self) -> bool {
        self.inner.can_pass_fds
    }
}

/// Encodes `{"execute":NAME[,"arguments":ARGS]` without the closing brace (the connection task
/// appends the id). Arguments that serialize to `null` (`()`, `None`) are left out. A command
/// QEMU's JSON parser would reject is refused here, before it is sent.
pub(crate) fn encode(
    command: &str,
    arguments: &impl Serialize,
    oob: bool,
    id_digits: usize,
) -> Result<(Vec<u8>, u32), ExecuteError> {
    let mut text = Vec::with_capacity(64 + command.len());
    text.extend_from_slice(if oob {
        b"{\"exec-oob\":"
    } else {
        b"{\"execute\":"
    });
    // Serializing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut text, command);
    let name_end = u32::try_from(text.len() - 1).map_err(|_| ExecuteError::InvalidArguments {
        command: command.chars().take(80).collect(),
        reason: "the command name is too long".into(),
    })?;
    let args_at = text.len();
    text.extend_from_slice(b",\"arguments\":");
    let json_at = text.len();
    serde_json::to_writer(&mut text, arguments).map_err(|e| ExecuteError::InvalidArguments {
        command: command.to_string(),
        reason: e.to_string(),
    })?;
    match text.get(json_at) {
        Some(b'{') => {}
        Some(b'n') => text.truncate(args_at), // null: no arguments
        _ => {
            return Err(ExecuteError::InvalidArguments {
                command: command.to_string(),
                reason: format!(
                    "arguments must serialize to a JSON object (or null for none), got {}",
                    String::from_utf8_lossy(&text[json_at..])
                        .chars()
                        .take(80)
                        .collect::<Cow<str>>()
                ),
            })
        }
    }
    crate::limits::check(&text, id_digits).map_err(|limit| ExecuteError::ExceedsJsonLimit {
        command: command.to_string(),
        limit,
    })?;
    Ok((text, name_end))
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("version", &self.inner.greeting.version)
            .field("capabilities", &self.inner.enabled)
            .field("closed", &self.inner.shared.closed.get())
            .finish()
    }
}

/// Runs `connect` once, or, with `wait`, until it fails with something other than "not there
/// yet" or "busy" (the caller's timeout bounds the wait).
async fn retrying<T, F: std::future::Future<Output = std::io::Result<T>>>(
    wait: bool,
    mut connect: impl FnMut() -> F,
) -> std::io::Result<T> {
    loop {
        match connect().await {
            Err(e)
                if wait
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound
                            | std::io::ErrorKind::ConnectionRefused
                            // EAGAIN: the listen queue is full (QEMU listens with a backlog of
                            // 1 and accepts nobody while a client holds the monitor).
                            | std::io::ErrorKind::WouldBlock
                    ) =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
}

/// Resolves `addr` and connects to the first of its addresses that accepts, without Nagle's
/// delay (commands are small and latency matters). Errors name the addresses tried, since
/// `ToSocketAddrs` itself cannot be printed.
pub(crate) async fn connect_tcp(
    addr: impl ToSocketAddrs,
    wait_for_server: bool,
) -> Result<(TcpStream, String), ConnectError> {
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .map_err(|error| ConnectError::Connect {
            target: "the TCP address (name lookup failed)".into(),
            error,
        })?
        .collect();
    let tried = match addrs.as_slice() {
        [] => "the TCP address (it resolved to no address)".to_string(),
        [one] => one.to_string(),
        many => many
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" or "),
    };
    let stream = retrying(wait_for_server, || TcpStream::connect(addrs.as_slice()))
        .await
        .map_err(|error| ConnectError::Connect {
            target: tried.clone(),
            error,
        })?;
    let target = stream.peer_addr().map_or(tried, |a| a.to_string());
    stream
        .set_nodelay(true)
        .map_err(|error| ConnectError::Connect {
            target: target.clone(),
            error,
        })?;
    Ok((stream, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(args: impl Serialize) -> Result<String, ExecuteError> {
        encode("query-status", &args, false, 6).map(|(t, _)| String::from_utf8(t).unwrap())
    }

    #[test]
    fn encoding() {
        assert_eq!(enc(()).unwrap(), r#"{"execute":"query-status""#);
        assert_eq!(
            enc(None::<serde_json::Value>).unwrap(),
            r#"{"execute":"query-status""#
        );
        assert_eq!(
            enc(serde_json::json!({"a": 1})).unwrap(),
            r#"{"execute":"query-status","arguments":{"a":1}"#
        );
        let err = enc(5).unwrap_err();
        assert!(err.to_string().contains("JSON object"), "{err}");
        let (text, end) = encode("x-oob", &(), true, 6).unwrap();
        assert_eq!(&text[13..end as usize], b"x-oob");
        assert!(text.starts_with(b"{\"exec-oob\":"));
    }
}
