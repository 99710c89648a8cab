//! [`Qmp`], the typed client.

use std::path::Path;

use qmp_core::Client;

use crate::command::{Call, Command};
use crate::stream::EventStream;
use crate::ConnectError;

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

    /// Waits until the connection has ended, and says why (see [`Client::closed`]).
    pub async fn closed(&self) -> std::sync::Arc<qmp_core::DisconnectReason> {
        self.raw.closed().await
    }
}

impl From<Client> for Qmp {
    fn from(raw: Client) -> Self {
        Qmp { raw }
    }
}

impl From<Qmp> for Client {
    /// The untyped client underneath (same connection).
    fn from(qmp: Qmp) -> Self {
        qmp.raw
    }
}
