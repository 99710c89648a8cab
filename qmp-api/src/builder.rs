//! [`QmpBuilder`]: every connection setting, ending in a typed [`Qmp`].

use std::path::Path;
use std::time::Duration;

use qmp_core::{AsyncStream, ClientBuilder};
use tokio::net::{ToSocketAddrs, UnixStream};

use crate::{Capability, ConnectError, Listener, Qmp};

/// Configures and opens a typed connection in one step: [`Qmp::builder`]. Each setting is
/// the transport's ([`qmp_core::ClientBuilder`], which documents them in full); each way of
/// connecting returns a negotiated [`Qmp`].
///
/// ```no_run
/// # async fn demo() -> Result<(), qmp_api::ConnectError> {
/// use std::time::Duration;
/// use qmp_api::{Capability, Qmp};
///
/// let qmp = Qmp::builder()
///     .capabilities([Capability::Oob])
///     .wait_for_server(true) // QEMU was just started: retry until its socket accepts
///     .timeout(Some(Duration::from_secs(5)))
///     .command_timeout(Some(Duration::from_secs(30)))
///     .connect_unix("/run/vm0/qmp.sock")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until one of its connect methods is awaited"]
pub struct QmpBuilder {
    inner: ClientBuilder,
}

impl QmpBuilder {
    /// A builder with the defaults (those of [`ClientBuilder`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Capabilities to enable if the server offers them (default: none); `Capability::Oob`
    /// makes `.oob()` calls work. See [`ClientBuilder::capabilities`].
    pub fn capabilities(self, caps: impl IntoIterator<Item = Capability>) -> Self {
        self.map(|b| b.capabilities(caps))
    }

    /// Time allowed for connecting (or accepting) plus the greeting and negotiation
    /// (default: 10 s; `None` waits forever). See [`ClientBuilder::timeout`].
    pub fn timeout(self, timeout: Option<Duration>) -> Self {
        self.map(|b| b.timeout(timeout))
    }

    /// Default time each command may wait for its reply (default: no limit); a call's own
    /// `.timeout(..)` overrides it. See [`ClientBuilder::command_timeout`].
    pub fn command_timeout(self, timeout: Option<Duration>) -> Self {
        self.map(|b| b.command_timeout(timeout))
    }

    /// How long [`Qmp::close`] waits for replies to commands already sent (default 5 s).
    pub fn close_timeout(self, timeout: Duration) -> Self {
        self.map(|b| b.close_timeout(timeout))
    }

    /// Largest message accepted from the server, in bytes (default 16 MiB). See
    /// [`ClientBuilder::max_message_size`].
    pub fn max_message_size(self, bytes: usize) -> Self {
        self.map(|b| b.max_message_size(bytes))
    }

    /// Deepest nesting accepted from the server (default and maximum 128).
    pub fn max_depth(self, depth: usize) -> Self {
        self.map(|b| b.max_depth(depth))
    }

    /// Capacity of each subscriber's event buffer (default 4096); a subscriber that falls
    /// further behind is told how many events it missed.
    pub fn event_buffer(self, events: usize) -> Self {
        self.map(|b| b.event_buffer(events))
    }

    /// Whether connecting retries, within the [`timeout`](Self::timeout), while the socket
    /// is missing, refuses connections or has a full listen queue (a QEMU just started, or a
    /// monitor another client holds). See [`ClientBuilder::wait_for_server`].
    pub fn wait_for_server(self, wait: bool) -> Self {
        self.map(|b| b.wait_for_server(wait))
    }

    /// Connects to a QMP unix socket (QEMU: `-qmp unix:PATH,server=on,wait=off`); unix
    /// sockets can pass file descriptors.
    pub async fn connect_unix(self, path: impl AsRef<Path>) -> Result<Qmp, ConnectError> {
        Ok(Qmp::from(self.inner.connect_unix(path).await?))
    }

    /// Connects over TCP (QEMU: `-qmp tcp:HOST:PORT,server=on,wait=off`). Plain TCP QMP has
    /// no authentication: prefer a unix socket, or TLS.
    pub async fn connect_tcp(self, addr: impl ToSocketAddrs) -> Result<Qmp, ConnectError> {
        Ok(Qmp::from(self.inner.connect_tcp(addr).await?))
    }

    /// Connects over TCP with TLS (cargo feature `tls`), verifying the server's certificate
    /// for `server_name`; see [`qmp_core::tls`] for building the configuration.
    #[cfg(feature = "tls")]
    pub async fn connect_tls(
        self,
        addr: impl ToSocketAddrs,
        server_name: &str,
        config: std::sync::Arc<crate::tls::rustls::ClientConfig>,
    ) -> Result<Qmp, ConnectError> {
        Ok(Qmp::from(
            self.inner.connect_tls(addr, server_name, config).await?,
        ))
    }

    /// Accepts one connection from QEMU on `listener` (accept mode: QEMU connects to us, with
    /// `-qmp unix:PATH` without `server=on`), then negotiates.
    pub async fn accept(self, listener: &Listener) -> Result<Qmp, ConnectError> {
        Ok(Qmp::from(self.inner.accept(listener).await?))
    }

    /// Runs QMP over any byte stream (a pipe, an in-memory duplex in tests).
    pub async fn connect_stream<S: AsyncStream>(self, stream: S) -> Result<Qmp, ConnectError> {
        Ok(Qmp::from(self.inner.connect_stream(stream).await?))
    }

    /// Runs QMP over an already connected unix socket (keeps fd passing).
    pub async fn connect_unix_stream(self, stream: UnixStream) -> Result<Qmp, ConnectError> {
        Ok(Qmp::from(self.inner.connect_unix_stream(stream).await?))
    }

    /// The transport's builder with these settings.
    pub fn into_client_builder(self) -> ClientBuilder {
        self.inner
    }

    fn map(self, f: impl FnOnce(ClientBuilder) -> ClientBuilder) -> Self {
        QmpBuilder {
            inner: f(self.inner),
        }
    }
}

impl From<ClientBuilder> for QmpBuilder {
    fn from(inner: ClientBuilder) -> Self {
        QmpBuilder { inner }
    }
}

impl From<QmpBuilder> for ClientBuilder {
    /// The transport's builder with these settings (as [`QmpBuilder::into_client_builder`]).
    fn from(builder: QmpBuilder) -> Self {
        builder.inner
    }
}
