//! [`GuestAgent`], the typed guest agent client.

use std::path::Path;
use std::sync::Arc;

use qmp_core::{Client, ClientBuilder, DisconnectReason};
use tokio::net::ToSocketAddrs;

use crate::{Call, Command, ConnectError, ExecuteError, Version};

/// A typed guest agent client: one method per `guest-*` command.
///
/// It wraps a [`qmp_core::Client`] in guest agent mode (see there for concurrency,
/// cancellation and disconnect behaviour) and is just as cheap to clone. The generated methods
/// (`guest_ping`, `guest_file_open`, ...) each return the command's call type: set optional
/// arguments and a timeout, then `.await` it. [`raw`](Self::raw) gives the untyped client.
///
/// Timeouts matter more here than on QMP: a guest that is paused, busy or has no agent running
/// leaves commands unanswered. Set one per client
/// ([`ClientBuilder::command_timeout`](qmp_core::ClientBuilder::command_timeout)) or per call;
/// after a timeout the connection resynchronises with the agent before the next command.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use qmp_ga::GuestAgent;
///
/// let agent: GuestAgent = GuestAgent::builder()
///     .command_timeout(Some(Duration::from_secs(5)))
///     // For an agent just started: retry until its socket accepts (within the timeout).
///     .wait_for_server(true)
///     .connect_unix("/run/vm0/qga.sock")
///     .await?
///     .into();
/// let info = agent.guest_info().await?;
/// println!("qemu-ga {}, {} commands", info.version, info.supported_commands.len());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct GuestAgent {
    raw: Client,
}

impl GuestAgent {
    /// A [`ClientBuilder`] in guest agent mode, for settings and transports beyond
    /// [`connect_unix`](Self::connect_unix); convert the client with `GuestAgent::from`.
    pub fn builder() -> ClientBuilder {
        Client::builder().guest_agent(true)
    }

    /// Connects to a guest agent's unix socket with default settings: the host end of the
    /// agent's chardev, or `qemu-ga -m unix-listen -p PATH`.
    pub async fn connect_unix(path: impl AsRef<Path>) -> Result<GuestAgent, ConnectError> {
        Ok(GuestAgent::from(Self::builder().connect_unix(path).await?))
    }

    /// Connects to a guest agent over TCP with default settings (QEMU:
    /// `-chardev socket,host=...,port=...,server=on,wait=off,id=qga0`).
    pub async fn connect_tcp(addr: impl ToSocketAddrs) -> Result<GuestAgent, ConnectError> {
        Ok(GuestAgent::from(Self::builder().connect_tcp(addr).await?))
    }

    /// The untyped client underneath (same connection).
    pub fn raw(&self) -> &Client {
        &self.raw
    }

    /// The agent's version, from `guest-info` when connecting (0.0.0 if the agent blocks
    /// `guest-info`).
    pub fn version(&self) -> Version {
        self.raw.greeting().version
    }

    /// Runs any command value (see [`Command`]) and decodes its reply.
    ///
    /// ```no_run
    /// # async fn demo(agent: qmp_ga::GuestAgent) -> Result<(), qmp_ga::ExecuteError> {
    /// use qmp_ga::commands::GuestPing;
    /// agent.execute(GuestPing).await?;
    /// # Ok(()) }
    /// ```
    pub fn execute<C: Command>(&self, command: C) -> Call<C> {
        Call::new(self, command)
    }

    /// Resynchronises with the agent now (see
    /// [`Client::sync_guest_agent`](qmp_core::Client::sync_guest_agent)): everything the
    /// agent sent before is dropped, and its parser starts afresh.
    pub async fn sync(&self) -> Result<(), ExecuteError> {
        self.raw.sync_guest_agent().await
    }

    /// Closes the connection gracefully (see [`Client::close`]).
    pub async fn close(&self) {
        self.raw.close().await
    }

    /// Waits until the connection has ended, and says why (see [`Client::closed`]).
    pub async fn closed(&self) -> Arc<DisconnectReason> {
        self.raw.closed().await
    }
}

/// The agent has no `query-qmp-schema`: calls are never checked against a server schema.
impl qmp_api::CallTarget for GuestAgent {}

impl AsRef<Client> for GuestAgent {
    fn as_ref(&self) -> &Client {
        &self.raw
    }
}

impl From<Client> for GuestAgent {
    /// Wraps a client opened in guest agent mode ([`GuestAgent::builder`]). A client of a QMP
    /// monitor would send `guest-*` commands to QEMU, which knows none of them.
    fn from(raw: Client) -> Self {
        GuestAgent { raw }
    }
}

impl From<GuestAgent> for Client {
    /// The untyped client underneath (same connection).
    fn from(agent: GuestAgent) -> Self {
        agent.raw
    }
}
