//! [`Qmp`], the typed client.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use qmp_core::Client;

use crate::builder::QmpBuilder;
use crate::command::{Call, Command};
use crate::server_schema::{SchemaItem, ServerSchema};
use crate::stream::EventStream;
use crate::{ConnectError, EventKind, ExecuteError, Version};

/// An event name the schema does not know, from [`Qmp::events_named`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the schema knows no event `{name}`{}; subscribe by `EventKind`, or with \
     `events_named_unchecked` for an event of a newer QEMU",
    match suggestion { Some(s) => format!(" (did you mean `{s}`?)"), None => String::new() }
)]
pub struct UnknownEventName {
    name: String,
    suggestion: Option<&'static str>,
}

impl UnknownEventName {
    fn new(name: &str) -> Self {
        let normal = |n: &str| n.to_ascii_uppercase().replace('-', "_");
        let suggestion = crate::Event::NAMES
            .iter()
            .copied()
            .find(|known| normal(known) == normal(name));
        UnknownEventName {
            name: name.to_string(),
            suggestion,
        }
    }

    /// The name given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The known event whose name differs only in case or `-`/`_` (`"Stop"` → `STOP`).
    pub fn suggestion(&self) -> Option<&'static str> {
        self.suggestion
    }
}

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
    /// Connects to a QMP unix socket with default settings. For other settings and transports
    /// (timeouts, `wait_for_server`, TCP, TLS, accept mode), use [`Qmp::builder`].
    pub async fn connect_unix(path: impl AsRef<Path>) -> Result<Qmp, ConnectError> {
        Ok(Qmp::from(Client::connect_unix(path).await?))
    }

    /// Connects over TCP with default settings (see [`QmpBuilder::connect_tcp`]).
    pub async fn connect_tcp(addr: impl tokio::net::ToSocketAddrs) -> Result<Qmp, ConnectError> {
        Ok(Qmp::from(Client::connect_tcp(addr).await?))
    }

    /// Every connection setting, then connect, in one expression: see [`QmpBuilder`].
    pub fn builder() -> QmpBuilder {
        QmpBuilder::new()
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

    /// Subscribes to events of these kinds only: a misspelled kind does not compile.
    ///
    /// ```no_run
    /// # async fn demo(qmp: qmp_api::Qmp) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use qmp_api::EventKind;
    ///
    /// let mut runstate = qmp.subscribe([EventKind::Stop, EventKind::Resume]);
    /// qmp.stop().await?;
    /// let stop = runstate.wait_for_kind(EventKind::Stop, Duration::from_secs(5)).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// A misspelled kind is a compile error:
    ///
    /// ```compile_fail,E0599
    /// # fn demo(qmp: qmp_api::Qmp) {
    /// let stops = qmp.subscribe([qmp_api::EventKind::Stopp]);
    /// # }
    /// ```
    pub fn subscribe(&self, kinds: impl IntoIterator<Item = EventKind>) -> EventStream {
        EventStream::new(
            self.raw
                .subscribe_to(kinds.into_iter().map(EventKind::as_str)),
        )
    }

    /// Subscribes to the events with these QMP names only (e.g. `["JOB_STATUS_CHANGE"]`).
    /// Prefer [`subscribe`](Self::subscribe), whose kinds are checked by the compiler.
    ///
    /// # Errors
    ///
    /// [`UnknownEventName`] for a name the schema does not know (more often a typo such as
    /// `"Stop"` for `"STOP"` than an event of a newer QEMU); the error suggests the name
    /// meant. To subscribe to an event this schema lacks, use
    /// [`events_named_unchecked`](Self::events_named_unchecked).
    ///
    /// ```
    /// # async fn demo(qmp: qmp_api::Qmp) {
    /// let err = qmp.events_named(["Stop"]).unwrap_err();
    /// assert_eq!(err.suggestion(), Some("STOP"));
    /// # }
    /// ```
    pub fn events_named<I, S>(&self, names: I) -> Result<EventStream, UnknownEventName>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        if let Some(name) = names.iter().find(|n| EventKind::from_name(n).is_none()) {
            return Err(UnknownEventName::new(name));
        }
        Ok(EventStream::new(self.raw.subscribe_to(names)))
    }

    /// Subscribes to the events with these QMP names, known to the schema or not (an event
    /// of a newer QEMU arrives as [`Event::Other`](crate::Event::Other)). Nothing checks the
    /// names: a misspelled one never matches.
    pub fn events_named_unchecked<I, S>(&self, names: I) -> EventStream
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
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
    /// the server lacks, or with an argument or enum value it does not know (nested ones too,
    /// named with dots: `capabilities.capability`), fails before anything is sent with
    /// [`ExecuteError::Unsupported`] naming the command (and argument, and value) and the
    /// server's version. Arguments of `gen: false` commands that the schema does not list
    /// (`device_add`'s device properties) are left to the server. Until then nothing is checked and nothing extra goes over the wire.
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
