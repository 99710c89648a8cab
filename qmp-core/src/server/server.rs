//! [`Server`] and [`ServerBuilder`]: configuration, the command table, listeners and sessions.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, Semaphore};

use super::handler::Handler;
use super::reader::Limits;
use super::session::Session;
use super::state::{Config, Entry, Registry, ServerInner};
use super::task::SessionTask;
use crate::error::ListenError;
use crate::greeting::{Capability, Version};
use crate::listener::Listener;
use crate::transport::{AsyncStream, Transport};

/// Nesting the reader accepts at most, whatever is configured: parsing recurses once per level.
const MAX_DEPTH_CAP: usize = 2048;
/// Message size the reader accepts at most, whatever is configured (token offsets are 32-bit).
const MAX_SIZE_CAP: usize = 1 << 30;

/// Configures a [`Server`]. Every setting has a default that behaves like QEMU 10.0's monitor.
///
/// ```
/// use qmp_core::server::{Call, Server};
/// use qmp_core::{Capability, Version};
/// use serde_json::json;
///
/// let server = Server::builder()
///     .version(Version::new(9, 2, 0), "v9.2.0")
///     .capabilities([Capability::Oob])
///     .command("query-status", |_: Call| async { Ok(json!({"status": "running", "running": true})) })
///     .max_sessions(4)
///     .build();
/// # drop(server);
/// ```
#[derive(Clone)]
pub struct ServerBuilder {
    config: Config,
    registry: HashMap<String, Entry>,
    fallback: Option<Entry>,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut commands: Vec<&String> = self.registry.keys().collect();
        commands.sort();
        f.debug_struct("ServerBuilder")
            .field("version", &self.config.version)
            .field("package", &self.config.package)
            .field("capabilities", &self.config.capabilities)
            .field("commands", &commands)
            .field("fallback", &self.fallback.is_some())
            .field("max_sessions", &self.config.max_sessions)
            .finish()
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        ServerBuilder {
            config: Config {
                version: Version::new(10, 0, 2),
                package: "qmp-rs server".into(),
                capabilities: vec![Capability::Oob],
                limits: Limits::QEMU,
                event_buffer: 1024,
                max_sessions: 1,
            },
            registry: HashMap::new(),
            fallback: None,
        }
    }
}

impl ServerBuilder {
    /// A builder with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The QEMU version and package string in the greeting (default 10.0.2, `qmp-rs server`).
    pub fn version(mut self, version: Version, package: impl Into<String>) -> Self {
        self.config.version = version;
        self.config.package = package.into();
        self
    }

    /// The capabilities offered in the greeting (default: `oob`, as QEMU offers on a socket).
    /// A client asking `qmp_capabilities` for one not offered gets QEMU's error
    /// (`Capability oob not available`).
    pub fn capabilities(mut self, capabilities: impl IntoIterator<Item = Capability>) -> Self {
        self.config.capabilities = capabilities.into_iter().collect();
        self
    }

    /// Registers an in-band command (`execute`). A later registration of the same name
    /// replaces the earlier one. `qmp_capabilities` is built in and cannot be replaced.
    pub fn command(mut self, name: impl Into<String>, handler: impl Handler) -> Self {
        self.registry.insert(
            name.into(),
            Entry {
                handler: Arc::new(handler),
                allow_oob: false,
            },
        );
        self
    }

    /// Registers a command that may also run out of band (`allow-oob` in QEMU's schema: it
    /// can be sent with `exec-oob` once the client enabled `oob`).
    pub fn oob_command(mut self, name: impl Into<String>, handler: impl Handler) -> Self {
        self.registry.insert(
            name.into(),
            Entry {
                handler: Arc::new(handler),
                allow_oob: true,
            },
        );
        self
    }

    /// A handler for every command without its own (default: none, and such commands get
    /// QEMU's `CommandNotFound`, "The command X has not been found"). It sees `exec-oob`
    /// commands too ([`Call::is_oob`](super::Call::is_oob)).
    pub fn fallback(mut self, handler: impl Handler) -> Self {
        self.fallback = Some(Entry {
            handler: Arc::new(handler),
            allow_oob: true,
        });
        self
    }

    /// How many clients are served at once (default 1: like a QEMU monitor, a second client
    /// waits in the listen backlog, without a greeting, until the first disconnects). 0 means
    /// no limit. Streams given to [`Server::serve_stream`] do not count.
    pub fn max_sessions(mut self, sessions: usize) -> Self {
        self.config.max_sessions = sessions;
        self
    }

    /// The most bytes of tokens one message may have (whitespace not counted); QEMU's limit,
    /// 64 MiB, is the default, 1 GiB the most. Beyond it the client gets `JSON token size limit
    /// exceeded`. A session holds up to this much per message it has read ahead (at most 8).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.config.limits.max_size = bytes.clamp(1, MAX_SIZE_CAP);
        self
    }

    /// The most tokens one message may have (default: QEMU's 2,097,152); beyond it the client
    /// gets `JSON token count limit exceeded`.
    pub fn max_tokens(mut self, tokens: usize) -> Self {
        self.config.limits.max_tokens = tokens.max(1);
        self
    }

    /// The most objects and arrays open at once in a message (default: QEMU's 1024, at most
    /// 2048); beyond it the client gets `JSON nesting depth limit exceeded`.
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.config.limits.max_depth = depth.clamp(1, MAX_DEPTH_CAP);
        self
    }

    /// Events each session holds for a client that is not reading (default 1024); emitters
    /// wait for room beyond that.
    pub fn event_buffer(mut self, events: usize) -> Self {
        self.config.event_buffer = events.max(1);
        self
    }

    /// Builds the server. It serves nothing until given a listener ([`Server::listen`]) or a
    /// stream ([`Server::serve_stream`]).
    pub fn build(self) -> Server {
        let permits = (self.config.max_sessions > 0)
            .then(|| Arc::new(Semaphore::new(self.config.max_sessions)));
        let inner = Arc::new(ServerInner {
            config: self.config,
            registry: RwLock::new(Registry {
                commands: self.registry,
                fallback: self.fallback,
            }),
            sessions: Arc::default(),
            next_id: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
            accept_loops: AtomicU64::new(0),
            permits,
            addresses: Mutex::new(Vec::new()),
        });
        Server {
            _guard: Arc::new(Guard(inner.clone())),
            inner,
        }
    }

    /// Builds the server and listens on a unix socket (created with mode 0600, see
    /// [`Listener::bind_unix`]). Serves on the current tokio runtime, or, called outside any
    /// (from a synchronous program), on the [shared background runtime](crate::runtime).
    ///
    /// # Errors
    ///
    /// [`ListenError`] when the socket cannot be created, or
    /// [`ListenError::Runtime`] when there is no runtime and none can be started.
    pub fn bind_unix(self, path: impl AsRef<Path>) -> Result<Server, ListenError> {
        let handle = crate::runtime::current_or_shared().map_err(ListenError::Runtime)?;
        let listener = Listener::bind_unix(path)?;
        let server = self.build();
        server.spawn_accept_loop(&handle, listener);
        Ok(server)
    }

    /// Builds the server and listens on a TCP address (port 0 picks a free port; read it back
    /// with [`Server::local_addr`]). Plain TCP has no authentication: bind to loopback.
    pub async fn bind_tcp(
        self,
        addr: impl tokio::net::ToSocketAddrs,
    ) -> Result<Server, ListenError> {
        let listener = Listener::bind_tcp(addr).await?;
        let server = self.build();
        server.listen(listener);
        Ok(server)
    }
}

/// Stops the server when the last [`Server`] handle is dropped.
struct Guard(Arc<ServerInner>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.begin_shutdown();
    }
}

/// A QMP server: greets each client like QEMU, enforces capabilities negotiation, reads
/// commands (`execute`, and `exec-oob` once negotiated), runs your handlers and writes their
/// replies, and sends events. Cheap to clone; all clones control the same server.
///
/// Built with [`Server::builder`]; serves unix or TCP listeners ([`listen`](Self::listen),
/// [`ServerBuilder::bind_unix`], [`ServerBuilder::bind_tcp`]) and any byte stream
/// ([`serve_stream`](Self::serve_stream)). Dropping the last handle stops it, like
/// [`shutdown`](Self::shutdown) without waiting. See the [module docs](super) for what it
/// does on the wire.
///
/// ```no_run
/// use qmp_core::server::{Call, Server};
/// use serde_json::json;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let server = Server::builder()
///     .command("stop", |call: Call| async move {
///         call.emit_after_reply("STOP", None);
///         Ok(json!({}))
///     })
///     .bind_unix("/tmp/qmp-test.sock")?;
/// // ... run the code under test against /tmp/qmp-test.sock ...
/// server.broadcast("RESUME", None).await;
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerInner>,
    /// Shared by the clones; stops the server when the last one goes.
    _guard: Arc<Guard>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("version", &self.inner.config.version)
            .field("sessions", &self.inner.sessions.len())
            .field("stopping", &self.inner.stopping.load(Relaxed))
            .finish()
    }
}

impl Server {
    /// A [`ServerBuilder`] with the defaults.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Accepts clients on `listener` (from [`Listener::bind_unix`] or
    /// [`Listener::bind_tcp`]) until the server stops, in a task of its own; at most
    /// [`max_sessions`](ServerBuilder::max_sessions) are served at once. Can be called for
    /// several listeners. Serves on the current tokio runtime, or, called outside any, on the
    /// [shared background runtime](crate::runtime) (if even that cannot be started, which
    /// only happens when the process is out of resources, the listener is dropped and the
    /// fault logged).
    ///
    /// ```no_run
    /// # async fn demo(server: qmp_core::server::Server) -> Result<(), qmp_core::ListenError> {
    /// let listener = qmp_core::Listener::bind_tcp("127.0.0.1:0").await?;
    /// let addr = listener.local_addr();
    /// server.listen(listener);
    /// # Ok(()) }
    /// ```
    pub fn listen(&self, listener: Listener) {
        match crate::runtime::current_or_shared() {
            Ok(handle) => self.spawn_accept_loop(&handle, listener),
            Err(e) => tracing::error!("qmp server: cannot listen, no runtime to serve from: {e}"),
        }
    }

    fn spawn_accept_loop(&self, handle: &tokio::runtime::Handle, listener: Listener) {
        self.inner
            .addresses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((
                listener.local_addr(),
                listener.path().map(Path::to_path_buf),
            ));
        self.inner.accept_loops.fetch_add(1, Relaxed);
        handle.spawn(accept_loop(self.inner.clone(), listener));
    }

    /// Serves one client over any byte stream (a pipe, a TLS stream, one end of
    /// `tokio::io::duplex`) in a task of its own, at once (not counted against
    /// [`max_sessions`](ServerBuilder::max_sessions)). Must be called within a tokio runtime
    /// (the stream belongs to one).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use qmp_core::server::{Call, Server};
    ///
    /// let server = Server::builder()
    ///     .command("query-name", |_: Call| async { Ok(serde_json::json!({"name": "vm0"})) })
    ///     .build();
    /// let (ours, theirs) = tokio::io::duplex(64 * 1024);
    /// server.serve_stream(theirs);
    /// let client = qmp_core::Client::builder().connect_stream(ours).await?;
    /// assert_eq!(client.execute("query-name", ()).await?["name"], "vm0");
    /// # Ok(()) }
    /// ```
    pub fn serve_stream<S: AsyncStream>(&self, stream: S) -> Session {
        spawn_session(
            &self.inner,
            Transport::Stream(Box::new(stream)),
            "stream".into(),
            None,
        )
    }

    /// The address of the first TCP listener, if any.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.addresses().into_iter().find_map(|(a, _)| a)
    }

    /// The path of the first unix socket listener, if any.
    pub fn path(&self) -> Option<PathBuf> {
        self.addresses().into_iter().find_map(|(_, p)| p)
    }

    fn addresses(&self) -> Vec<(Option<SocketAddr>, Option<PathBuf>)> {
        self.inner
            .addresses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The sessions open now, oldest first.
    pub fn sessions(&self) -> Vec<Session> {
        self.inner.sessions.list()
    }

    /// Waits until at least `n` sessions are open and returns them (oldest first).
    pub async fn wait_for_sessions(&self, n: usize) -> Vec<Session> {
        loop {
            let changed = self.inner.sessions.changed.notified();
            let sessions = self.inner.sessions.list();
            if sessions.len() >= n {
                return sessions;
            }
            changed.await;
        }
    }

    /// Sends an event, stamped with the current time, to every session that completed
    /// negotiation; returns to how many. Waits for room in each session's event queue in turn
    /// (a client that does not read holds this up once its queue is full; use
    /// [`Session::try_emit`] per session to skip such clients instead).
    pub async fn broadcast(&self, name: &str, data: impl Into<Option<Value>>) -> usize {
        self.inner
            .sessions
            .broadcast(name, data.into().as_ref())
            .await
    }

    /// Registers (or replaces) an in-band command while the server runs; the next request
    /// for it uses the new handler. See [`ServerBuilder::command`].
    pub fn register(&self, name: impl Into<String>, handler: impl Handler) {
        self.write_registry().commands.insert(
            name.into(),
            Entry {
                handler: Arc::new(handler),
                allow_oob: false,
            },
        );
    }

    /// Registers (or replaces) a command that may run out of band. See
    /// [`ServerBuilder::oob_command`].
    pub fn register_oob(&self, name: impl Into<String>, handler: impl Handler) {
        self.write_registry().commands.insert(
            name.into(),
            Entry {
                handler: Arc::new(handler),
                allow_oob: true,
            },
        );
    }

    /// Removes a command; returns whether it was registered. Requests for it then go to the
    /// fallback, or get `CommandNotFound`.
    pub fn unregister(&self, name: &str) -> bool {
        self.write_registry().commands.remove(name).is_some()
    }

    /// Sets (or, with `None`, removes) the fallback handler. See [`ServerBuilder::fallback`].
    pub fn set_fallback(&self, handler: Option<Box<dyn Handler>>) {
        self.write_registry().fallback = handler.map(|h| Entry {
            handler: Arc::from(h),
            allow_oob: true,
        });
    }

    fn write_registry(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.inner
            .registry
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stops the server: no more clients are accepted (unix socket files are removed), every
    /// session writes what it already holds for its client and closes (commands still running
    /// are dropped, unanswered), and this returns once all have ended.
    pub async fn shutdown(&self) {
        self.inner.begin_shutdown();
        loop {
            let changed = self.inner.sessions.changed.notified();
            if self.inner.sessions.len() == 0 && self.inner.accept_loops.load(Relaxed) == 0 {
                return;
            }
            changed.await;
        }
    }

    /// True once [`shutdown`](Self::shutdown) was called (or every handle dropped).
    pub fn is_shut_down(&self) -> bool {
        self.inner.stopping.load(Relaxed)
    }
}

/// Starts serving one client.
fn spawn_session(
    this: &Arc<ServerInner>,
    io: Transport,
    peer: String,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Session {
    let id = this.next_id.fetch_add(1, Relaxed);
    let task = SessionTask::new(this.clone(), id, io, peer, permit);
    let session = task.session().clone();
    this.sessions.insert(session.clone());
    if this.stopping.load(Relaxed) {
        session.request_close();
    }
    tokio::spawn(task.run());
    session
}

/// Accepts clients until the server stops, within the session limit.
async fn accept_loop(this: Arc<ServerInner>, listener: Listener) {
    loop {
        // Accept first, then wait for a free session slot: a loop that held a slot while
        // waiting for a client would starve every other listener of the same server (with
        // `max_sessions(1)` and two listeners, the second would never serve). A client accepted
        // while every slot is taken waits for its greeting, as it would in the kernel's queue.
        let (io, peer) = match this.until_stopped(listener.accept_with_peer()).await {
            None => break,
            Some(Ok(accepted)) => accepted,
            Some(Err(e)) => {
                // Out of descriptors, or the like: keep serving once it passes.
                tracing::warn!(error = %e, "accepting a QMP client failed; retrying");
                if this
                    .until_stopped(tokio::time::sleep(Duration::from_millis(100)))
                    .await
                    .is_none()
                {
                    break;
                }
                continue;
            }
        };
        let permit = match &this.permits {
            Some(semaphore) => match this.until_stopped(semaphore.clone().acquire_owned()).await {
                Some(Ok(permit)) => Some(permit),
                _ => break,
            },
            None => None,
        };
        spawn_session(&this, io, peer, permit);
    }
    drop(listener);
    this.accept_loops.fetch_sub(1, Relaxed);
    this.sessions.changed.notify_waiters();
}
