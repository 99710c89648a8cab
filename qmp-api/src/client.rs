//! [`Qmp`], the typed client.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use qmp_core::Client;

use crate::command::{Call, Command};
use crate::server_schema::{SchemaItem, ServerSchema};
use crate::stream::EventStream;
use crate::{ConnectError, ExecuteError, Version};

/// A typed QMP client: one method per QEMU command, typed events.
///
/// It wraps a [`qmp_core::Client`] (see there for concurrency, cancellation and disconnect
/// behaviour) and is just as cheap to clone. The generated methods (`query_block`,
/// `blockdev_add`, ...), grouped below by QAPI module, each return the command's call type
/// (`commands::QueryBlockCall`): set optional arguments, a timeout, `oob` or a descriptor
/// where the command allows them, then `.await` it (or spawn it: it owns a clone of this
/// handle). [`raw`](Self::raw) gives the untyped client for anything else.
///
/// `qmp_capabilities` has no method: the connection negotiated capabilities already, and QEMU
/// refuses the command afterwards.
///
/// ```compile_fail,E0599
/// # async fn demo(qmp: qmp_api::Qmp) {
/// qmp.qmp_capabilities().await; // no such method: the transport negotiates
/// # }
/// ```
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use qmp_api::Qmp;
///
/// let qmp = Qmp::connect_unix("/run/vm0/qmp.sock").await?;
/// let version = qmp.query_version().await?;
/// println!("QEMU {}.{}.{}", version.qemu.major, version.qemu.minor, version.qemu.micro);
/// for block in qmp.query_block().await? {
///     println!("{}: {:?}", block.device, block.inserted.map(|i| i.file));
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Qmp {
    raw: Client,
    /// The server's schema once fetched ([`Qmp::server_schema`]), shared by the clones.
    server: Arc<OnceLock<Arc<ServerSchema>>>,
}

impl Qmp {
    /// Connects to a QMP unix socket with default settings. For other transports and settings,
    /// build a [`qmp_core::Client`] and convert it: `Qmp::from(client)`.
    pub async fn connect_unix(path: impl AsRef<Path>) -> Result<Qmp, ConnectError> {
        Ok(Qmp::from(Client::connect_unix(path).await?))
    }

    /// The untyped client underneath (same connection).
    pub fn raw(&self) -> &Client {
        &self.raw
    }

    /// Runs any command value (see [`Command`]) and decodes its reply.
    ///
    /// ```no_run
    /// # async fn demo(qmp: qmp_api::Qmp) -> Result<(), qmp_api::ExecuteError> {
    /// use qmp_api::commands::QomListTypes;
    /// let types = qmp.execute(QomListTypes { implements: Some("device".into()), r#abstract: None }).await?;
    /// # Ok(()) }
    /// ```
    pub fn execute<C: Command>(&self, command: C) -> Call<C> {
        Call::new(self, command)
    }

    /// Subscribes to every event, decoded into [`Event`](crate::Event). Subscribe before
    /// sending the command whose events you want: the stream sees every event received from
    /// now on.
    pub fn events(&self) -> EventStream {
        EventStream::new(self.raw.subscribe())
    }

    /// Subscribes to the events with these QMP names only (e.g. `["JOB_STATUS_CHANGE"]`; the
    /// names are in [`Event::NAMES`](crate::Event::NAMES)). A name the schema does not know is
    /// still subscribed to (a newer QEMU may send it), with a warning in the log, since it is
    /// more often a typo such as `"Stop"` for `"STOP"`.
    pub fn events_named<I, S>(&self, names: I) -> EventStream
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        for name in &names {
            if !crate::Event::NAMES.contains(&name.as_str()) {
                tracing::warn!(
                    event = %name,
                    "subscribing to an event the schema does not know; QMP event names look like BLOCK_JOB_COMPLETED"
                );
            }
        }
        EventStream::new(self.raw.subscribe_to(names))
    }

    /// Closes the connection gracefully (see [`Client::close`]).
    pub async fn close(&self) {
        self.raw.close().await
    }

    /// The server's greeting: QEMU's version and offered capabilities.
    pub fn greeting(&self) -> &qmp_core::Greeting {
        self.raw.greeting()
    }

    /// The server's QEMU version, from its greeting (no round trip).
    pub fn server_version(&self) -> Version {
        self.raw.greeting().version
    }

    /// What the server supports: its `query-qmp-schema`, fetched on the first call and then
    /// kept for this handle and its clones (one round trip per connection; QEMU builds a
    /// reply of about 240 KB).
    ///
    /// Fetching it is the opt-in to support checks: from then on, a typed call of a command
    /// the server lacks, or with an argument it does not know, fails before anything is sent
    /// with [`ExecuteError::Unsupported`] naming the command (and argument) and the server's
    /// version. Until then nothing is checked and nothing extra goes over the wire.
    ///
    /// # Errors
    ///
    /// The [`ExecuteError`] of `query-qmp-schema` (a server without introspection, such as
    /// the guest agent, answers `CommandNotFound`).
    ///
    /// ```no_run
    /// # async fn demo(qmp: qmp_api::Qmp) -> Result<(), qmp_api::ExecuteError> {
    /// use qmp_api::SchemaItem;
    ///
    /// let server = qmp.server_schema().await?;
    /// if server.supports(SchemaItem::Command("blockdev-mirror")) {
    ///     // ...
    /// }
    /// // Without it: ExecuteError::Unsupported, nothing sent.
    /// match qmp.query_cpus().await {
    ///     Err(e) if e.is_unsupported() => println!("{e}"),
    ///     other => println!("{other:?}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn server_schema(&self) -> Result<Arc<ServerSchema>, ExecuteError> {
        if let Some(s) = self.server.get() {
            return Ok(s.clone());
        }
        let reply: serde_json::Value = self.raw.execute("query-qmp-schema", ()).await?;
        let schema = Arc::new(ServerSchema::from_introspection(
            self.server_version(),
            &reply,
        )?);
        Ok(self.server.get_or_init(|| schema).clone())
    }

    /// The server's schema if [`server_schema`](Self::server_schema) fetched it already.
    pub fn cached_server_schema(&self) -> Option<Arc<ServerSchema>> {
        self.server.get().cloned()
    }

    /// Whether the server supports `item` (a command, event, argument or enum value), fetching
    /// its schema first if needed (see [`server_schema`](Self::server_schema)).
    ///
    /// # Errors
    ///
    /// As [`server_schema`](Self::server_schema).
    pub async fn supports(&self, item: SchemaItem<'_>) -> Result<bool, ExecuteError> {
        Ok(self.server_schema().await?.supports(item))
    }

    /// Waits until the connection has ended, and says why (see [`Client::closed`]).
    pub async fn closed(&self) -> std::sync::Arc<qmp_core::DisconnectReason> {
        self.raw.closed().await
    }
}

impl AsRef<Client> for Qmp {
    fn as_ref(&self) -> &Client {
        &self.raw
    }
}

impl From<Client> for Qmp {
    fn from(raw: Client) -> Self {
        Qmp {
            raw,
            server: Arc::default(),
        }
    }
}

impl From<Qmp> for Client {
    /// The untyped client underneath (same connection).
    fn from(qmp: Qmp) -> Self {
        qmp.raw
    }
}
