//! The synchronous facade: the same typed commands and events, for programs that are not
//! async (test drivers, CLIs, build scripts). No tokio runtime to create.
//!
//! [`blocking::Qmp`](Qmp) dereferences to the async [`crate::Qmp`], so every generated
//! command method is there, with the same arguments and setters; end the call with
//! [`.wait()`](Wait::wait) instead of `.await`. Every generated method's doc says "then
//! `.await` it": in synchronous code, that is `.wait()`. Untyped calls work the same way:
//! `qmp.raw().execute("qom-list", json!({"path": "/"})).wait()?` (with
//! `use qmp_api::json::json;`). [`Qmp::closed`] waits for the end of the connection,
//! [`Qmp::closed_timeout`] at most a given time. Events come as an iterator
//! ([`EventStream`]) with timeouts.
//!
//! ```no_run
//! use std::time::Duration;
//! use qmp_api::blocking::{Qmp, Wait};
//! use qmp_api::EventKind;
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let qmp = Qmp::connect_unix("/run/vm0/qmp.sock")?;
//!     let status = qmp.query_status().wait()?;
//!     println!("{} (running: {})", status.status, status.running);
//!
//!     let mut events = qmp.subscribe([EventKind::Stop]);
//!     qmp.stop().wait()?;
//!     events.wait_for_kind(EventKind::Stop, Duration::from_secs(5))?;
//!     Ok(())
//! }
//! ```
//!
//! # How it works
//!
//! The connection runs on one small runtime that the process shares for all blocking
//! connections: a single background thread (`qmp-blocking`), started on first use, that
//! owns the sockets and the timers. A blocking call drives its future on the calling thread
//! and parks that thread between wake-ups; nothing is copied to another thread. Calls from
//! several threads at once on one connection are pipelined as with the async client.
//!
//! # Where it may be called
//!
//! From any thread that is not running async tasks: `main`, threads of your own, and the
//! blocking threads of a tokio runtime (`tokio::task::spawn_blocking`). Inside an async task
//! (`#[tokio::main]`, `tokio::spawn`, `Runtime::block_on`) waiting would stall the runtime, so
//! there every blocking call fails at once, before sending anything, with
//! [`BlockingError::InAsyncContext`] (inside
//! [`ExecuteError::Blocking`], [`WaitError::Blocking`], ...):
//! `.await` the call there instead. (The check also refuses a thread that merely holds a
//! runtime's `Handle::enter` guard, and `tokio::task::block_in_place`: use `spawn_blocking`.)
//!
//! # Closing
//!
//! Dropping the last handle (and its event streams) closes the connection;
//! [`Qmp::close`] does it gracefully, waiting for replies to commands already sent. A
//! `QemuProcess` from `workflow::Launcher::launch_blocking` kills QEMU when dropped;
//! `qemu.quit_and_wait().wait()` ends it in order.

use std::future::{Future, IntoFuture};
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use tokio::runtime::Handle;

use crate::stream::{Received, WaitError};
use crate::{BlockingError, ConnectError, EventKind, ExecuteError, QmpBuilder, UnknownEventName};

/// Runs to completion on the calling thread: every typed call (`qmp.query_status().wait()`),
/// and any other future of this crate whose error can say [`BlockingError`]: connecting
/// (`Qmp::builder().connect_unix(p).wait()`), a `workflow::Job` run, `quit_and_wait`.
///
/// Implemented for every [`IntoFuture`] whose output is a `Result<T, E>` with
/// `E: From<BlockingError>`.
///
/// # Errors
///
/// Those of the future; and, without running it, [`BlockingError::InAsyncContext`] on a thread
/// that runs async tasks (see [the module docs](self#where-it-may-be-called)).
///
/// ```no_run
/// # fn demo(qmp: qmp_api::blocking::Qmp) -> Result<(), qmp_api::ExecuteError> {
/// use std::time::Duration;
/// use qmp_api::blocking::Wait;
///
/// qmp.block_resize(1 << 30).node_name("disk0").wait()?;
/// let blocks = qmp.query_block().timeout(Some(Duration::from_secs(2))).wait()?;
/// # Ok(()) }
/// ```
pub trait Wait: IntoFuture {
    /// Runs the call (or future) and blocks this thread until it has its result.
    fn wait(self) -> Self::Output;
}

impl<F> Wait for F
where
    F: IntoFuture,
    F::Output: BlockingResult,
{
    fn wait(self) -> Self::Output {
        match block_on(self) {
            Ok(out) => out,
            Err(e) => <F::Output as BlockingResult>::from_blocking(e),
        }
    }
}

/// A result whose error can say why a blocking call did not run.
#[doc(hidden)]
pub trait BlockingResult {
    /// The error for `e`.
    fn from_blocking(e: BlockingError) -> Self;
}

impl<T, E: From<BlockingError>> BlockingResult for Result<T, E> {
    fn from_blocking(e: BlockingError) -> Self {
        Err(E::from(e))
    }
}

/// Runs `future` on this thread inside the shared runtime's context, parking between
/// wake-ups. Refuses threads that run async tasks.
fn block_on<F: IntoFuture>(future: F) -> Result<F::Output, BlockingError> {
    if in_async_context() {
        return Err(BlockingError::InAsyncContext);
    }
    let runtime = runtime()?;
    let _context = runtime.enter();
    let mut future = pin!(future.into_future());
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return Ok(out);
        }
        // A wake-up unparks; a spurious return only costs one more poll.
        thread::park();
    }
}

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Whether this thread runs async tasks: a runtime worker (tokio sets a worker index for
/// those, current-thread runtimes included), or a thread inside `Runtime::block_on` of a
/// multi-thread runtime (a runtime context but no task). The blocking threads of
/// `spawn_blocking` have a runtime context and a task id, and no worker index.
fn in_async_context() -> bool {
    tokio::runtime::worker_index().is_some()
        || (Handle::try_current().is_ok() && tokio::task::try_id().is_none())
}

/// The runtime every blocking connection runs on: qmp_core's shared background runtime, one
/// thread started on first use and kept for the life of the process (the connections' actor
/// tasks, sockets and timers live there).
pub(crate) fn runtime() -> Result<&'static Handle, BlockingError> {
    qmp_core::runtime::shared().map_err(BlockingError::Runtime)
}

/// A synchronous typed QMP client: [`crate::Qmp`] whose calls end in [`.wait()`](Wait::wait).
///
/// It dereferences to the async client, so every generated command method is available
/// with its arguments and setters; the methods below replace the async ones that need
/// waiting (connecting, events, closing, the server's schema). A clone is one more handle
/// on the same connection (a reference count); handles and calls can move between threads.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use qmp_api::blocking::{Qmp, Wait};
/// use qmp_api::types::{BlockdevOptions, BlockdevOptionsNull};
///
/// let qmp = Qmp::connect_unix("/run/vm0/qmp.sock")?;
/// let null = BlockdevOptionsNull::default().size(64 << 20);
/// qmp.blockdev_add(BlockdevOptions::null_co(null).node_name("null0")).wait()?;
/// for cpu in qmp.query_cpus_fast().wait()? {
///     println!("CPU {} is thread {}", cpu.cpu_index, cpu.thread_id);
/// }
/// match qmp.device_del("nonexistent").wait() {
///     Err(e) => println!("refused as expected: {}", e.qmp_error().map_or("?", |q| &q.desc)),
///     Ok(()) => println!("deleted"),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Qmp {
    inner: crate::Qmp,
}

impl Qmp {
    /// Connects to a QMP unix socket with default settings; for other settings use
    /// [`QmpBuilder::connect_unix_blocking`] (`Qmp::builder()`).
    ///
    /// # Errors
    ///
    /// As [`crate::Qmp::connect_unix`]; [`ConnectError::Blocking`] inside an async task.
    pub fn connect_unix(path: impl AsRef<Path>) -> Result<Qmp, ConnectError> {
        QmpBuilder::new().connect_unix_blocking(path)
    }

    /// Connects over TCP with default settings (see [`QmpBuilder::connect_tcp`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Qmp::connect_tcp`]; [`ConnectError::Blocking`] inside an async task.
    pub fn connect_tcp(addr: impl tokio::net::ToSocketAddrs) -> Result<Qmp, ConnectError> {
        QmpBuilder::new().connect_tcp_blocking(addr)
    }

    /// Every connection setting, then a `..._blocking` connect: see [`QmpBuilder`].
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), qmp_api::ConnectError> {
    /// use std::time::Duration;
    ///
    /// let qmp = qmp_api::blocking::Qmp::builder()
    ///     .wait_for_server(true)
    ///     .command_timeout(Some(Duration::from_secs(30)))
    ///     .connect_unix_blocking("/run/vm0/qmp.sock")?;
    /// # Ok(()) }
    /// ```
    pub fn builder() -> QmpBuilder {
        QmpBuilder::new()
    }

    /// The async client (same connection), e.g. for a part of the program that is async.
    pub fn as_async(&self) -> &crate::Qmp {
        &self.inner
    }

    /// Subscribes to every event (see [`crate::Qmp::events`]).
    pub fn events(&self) -> EventStream {
        EventStream::new(self.inner.events())
    }

    /// Subscribes to events of these kinds only (see [`crate::Qmp::subscribe`]). Subscribe
    /// before sending the command whose events you want.
    ///
    /// ```no_run
    /// # fn demo(qmp: qmp_api::blocking::Qmp) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use qmp_api::blocking::Wait;
    /// use qmp_api::EventKind;
    ///
    /// let mut runstate = qmp.subscribe([EventKind::Stop, EventKind::Resume]);
    /// qmp.cont().wait()?;
    /// runstate.wait_for_kind(EventKind::Resume, Duration::from_secs(5))?;
    /// # Ok(()) }
    /// ```
    pub fn subscribe(&self, kinds: impl IntoIterator<Item = EventKind>) -> EventStream {
        EventStream::new(self.inner.subscribe(kinds))
    }

    /// Subscribes to events by QMP name, checked against the schema (see
    /// [`crate::Qmp::events_named`]).
    ///
    /// # Errors
    ///
    /// [`UnknownEventName`] for a name the schema does not know.
    pub fn events_named<I, S>(&self, names: I) -> Result<EventStream, UnknownEventName>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner.events_named(names).map(EventStream::new)
    }

    /// The server's `query-qmp-schema`, fetched once per connection (see
    /// [`crate::Qmp::server_schema`]).
    ///
    /// # Errors
    ///
    /// As the async method; [`ExecuteError::Blocking`] inside an async task.
    pub fn server_schema(&self) -> Result<Arc<crate::ServerSchema>, ExecuteError> {
        self.inner.server_schema().wait()
    }

    /// Whether the server supports `item` (see [`crate::Qmp::supports`]).
    ///
    /// # Errors
    ///
    /// As [`server_schema`](Self::server_schema).
    pub fn supports(&self, item: crate::SchemaItem<'_>) -> Result<bool, ExecuteError> {
        self.inner.supports(item).wait()
    }

    /// Closes the connection gracefully: waits (up to the close timeout, 5 s by default) for
    /// replies to commands already sent, then disconnects (see [`qmp_core::Client::close`]).
    ///
    /// # Errors
    ///
    /// [`BlockingError::InAsyncContext`] inside an async task (use `as_async().close().await`).
    pub fn close(&self) -> Result<(), BlockingError> {
        block_on(self.inner.close())
    }

    /// Waits until the connection has ended, and says why (see [`crate::Qmp::closed`]).
    ///
    /// # Errors
    ///
    /// [`BlockingError::InAsyncContext`] inside an async task.
    pub fn closed(&self) -> Result<Arc<qmp_core::DisconnectReason>, BlockingError> {
        block_on(self.inner.closed())
    }

    /// [`closed`](Self::closed), waiting at most `timeout`: `Ok(None)` when the connection is
    /// still open then (nothing is closed by this).
    ///
    /// # Errors
    ///
    /// [`BlockingError::InAsyncContext`] inside an async task.
    ///
    /// ```no_run
    /// # fn demo(qmp: qmp_api::blocking::Qmp) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use qmp_api::blocking::Wait;
    /// qmp.quit().wait()?;
    /// match qmp.closed_timeout(Duration::from_secs(10))? {
    ///     Some(reason) => println!("ended: {reason}"),
    ///     None => eprintln!("QEMU still has the connection open after 10 s"),
    /// }
    /// # Ok(()) }
    /// ```
    pub fn closed_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<Arc<qmp_core::DisconnectReason>>, BlockingError> {
        block_on(async {
            tokio::time::timeout(timeout, self.inner.closed())
                .await
                .ok()
        })
    }
}

impl std::ops::Deref for Qmp {
    type Target = crate::Qmp;

    fn deref(&self) -> &crate::Qmp {
        &self.inner
    }
}

impl From<crate::Qmp> for Qmp {
    /// The blocking facade over an async client (same connection). Its calls can wait on any
    /// thread that is not running async tasks; the connection stays on the runtime it was
    /// opened on, which must keep running.
    fn from(inner: crate::Qmp) -> Self {
        Qmp { inner }
    }
}

impl From<Qmp> for crate::Qmp {
    fn from(qmp: Qmp) -> Self {
        qmp.inner
    }
}

impl QmpBuilder {
    /// Connects to a QMP unix socket and returns a blocking client (see
    /// [`connect_unix`](Self::connect_unix)).
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), qmp_api::ConnectError> {
    /// let qmp = qmp_api::Qmp::builder().wait_for_server(true).connect_unix_blocking("/run/vm0/qmp.sock")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As the async method; [`ConnectError::Blocking`] inside an async task.
    pub fn connect_unix_blocking(self, path: impl AsRef<Path>) -> Result<Qmp, ConnectError> {
        self.connect_unix(path).wait().map(Qmp::from)
    }

    /// Connects over TCP and returns a blocking client (see
    /// [`connect_tcp`](Self::connect_tcp)).
    ///
    /// # Errors
    ///
    /// As the async method; [`ConnectError::Blocking`] inside an async task.
    pub fn connect_tcp_blocking(
        self,
        addr: impl tokio::net::ToSocketAddrs,
    ) -> Result<Qmp, ConnectError> {
        self.connect_tcp(addr).wait().map(Qmp::from)
    }

    /// Connects over TCP with TLS and returns a blocking client (see
    /// [`connect_tls`](Self::connect_tls)).
    ///
    /// # Errors
    ///
    /// As the async method; [`ConnectError::Blocking`] inside an async task.
    #[cfg(feature = "tls")]
    pub fn connect_tls_blocking(
        self,
        addr: impl tokio::net::ToSocketAddrs,
        server_name: &str,
        config: Arc<crate::tls::rustls::ClientConfig>,
    ) -> Result<Qmp, ConnectError> {
        self.connect_tls(addr, server_name, config)
            .wait()
            .map(Qmp::from)
    }

    /// Accepts one connection from QEMU (accept mode) and returns a blocking client (see
    /// [`accept`](Self::accept)). Bind the [`Listener`](crate::Listener) inside a runtime
    /// context (or let `workflow::Launcher::launch_blocking` start QEMU and accept it).
    ///
    /// # Errors
    ///
    /// As the async method; [`ConnectError::Blocking`] inside an async task.
    pub fn accept_blocking(self, listener: &crate::Listener) -> Result<Qmp, ConnectError> {
        self.accept(listener).wait().map(Qmp::from)
    }
}

/// Typed events as an iterator, from [`Qmp::events`] or [`Qmp::subscribe`].
///
/// `next()` blocks until the next event; it ends (`None`) after the connection ended and
/// everything received was delivered. An item is an error when events were missed
/// (the subscriber fell behind its buffer: the count is exact), when a known event's data
/// does not match the schema (the stream goes on), when the connection ended, or when called
/// inside an async task ([`WaitError::Blocking`]).
///
/// ```no_run
/// # fn demo(qmp: qmp_api::blocking::Qmp) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use qmp_api::blocking::Wait;
/// use qmp_api::{Event, WaitError};
///
/// let mut events = qmp.events();
/// qmp.stop().wait()?;
/// let stop = events.wait_for(|e| matches!(e, Event::Stop), Duration::from_secs(5))?;
/// println!("stopped at {}", stop.timestamp);
/// // Whatever arrives within a second, then stop looking.
/// loop {
///     match events.next_timeout(Duration::from_secs(1)) {
///         Ok(r) => println!("{}", r.event.name()),
///         Err(WaitError::Timeout(_)) => break,
///         Err(e) => return Err(e.into()),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EventStream {
    inner: crate::EventStream,
}

impl EventStream {
    fn new(inner: crate::EventStream) -> Self {
        EventStream { inner }
    }

    /// The next event, waiting at most `timeout` for it. `Duration::ZERO` takes an event
    /// already received, without waiting.
    ///
    /// # Errors
    ///
    /// [`WaitError::Timeout`] when none came in time (the stream stays usable);
    /// [`WaitError::Event`] for missed events, an event that does not decode, or the end of
    /// the connection; [`WaitError::Ended`] once the stream has ended; [`WaitError::Blocking`]
    /// inside an async task.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Received, WaitError> {
        let next = async {
            match tokio::time::timeout(timeout, self.inner.next()).await {
                Err(_) => Err(WaitError::Timeout(timeout)),
                Ok(Some(Ok(r))) => Ok(r),
                Ok(Some(Err(e))) => Err(WaitError::Event(e)),
                Ok(None) => Err(WaitError::Ended),
            }
        };
        next.wait()
    }

    /// Waits for the first event for which `matches` returns true, skipping (and consuming)
    /// others, for at most `timeout` (see [`crate::EventStream::wait_for`]).
    ///
    /// # Errors
    ///
    /// As [`next_timeout`](Self::next_timeout); missed events are an error, since the awaited
    /// one may have been among them.
    pub fn wait_for(
        &mut self,
        matches: impl FnMut(&crate::Event) -> bool,
        timeout: Duration,
    ) -> Result<Received, WaitError> {
        self.inner.wait_for(matches, timeout).wait()
    }

    /// Waits for the first event of `kind`, for at most `timeout` (see
    /// [`wait_for`](Self::wait_for)).
    ///
    /// # Errors
    ///
    /// As [`wait_for`](Self::wait_for).
    pub fn wait_for_kind(
        &mut self,
        kind: EventKind,
        timeout: Duration,
    ) -> Result<Received, WaitError> {
        self.inner.wait_for_kind(kind, timeout).wait()
    }

    /// The async stream (the same subscription).
    pub fn into_async(self) -> crate::EventStream {
        self.inner
    }
}

impl Iterator for EventStream {
    type Item = Result<Received, WaitError>;

    /// Blocks until the next event; `None` once the connection ended and everything was
    /// delivered.
    fn next(&mut self) -> Option<Self::Item> {
        match block_on(self.inner.next()) {
            Ok(item) => item.map(|r| r.map_err(WaitError::Event)),
            Err(e) => Some(Err(WaitError::Blocking(e))),
        }
    }
}

impl From<crate::EventStream> for EventStream {
    fn from(inner: crate::EventStream) -> Self {
        EventStream::new(inner)
    }
}
