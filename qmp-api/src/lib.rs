//! Typed QMP: every QEMU command and event as Rust types and methods, generated at build time
//! from QEMU's QAPI schema: by default every QEMU from 2.12 to 10.0 merged with its version
//! history (`schema/qemu.json`; see [`SCHEMA`]).
//!
//! # Connecting
//!
//! [`Qmp`] wraps a [`qmp_core::Client`]: connect with [`Qmp::connect_unix`], or set
//! anything (timeouts, `wait_for_server`, capabilities, TCP, TLS with the `tls` feature,
//! accept mode) on [`Qmp::builder`] and connect in the same expression.
//!
//! ```no_run
//! use std::time::Duration;
//! use qmp_api::{EventKind, Qmp};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let qmp = Qmp::builder()
//!         .wait_for_server(true) // a QEMU just started: retry until its socket accepts
//!         .timeout(Some(Duration::from_secs(5)))
//!         .connect_unix("/run/vm0/qmp.sock")
//!         .await?;
//!     let status = qmp.query_status().await?;
//!     println!("{} (running: {})", status.status, status.running);
//!
//!     let mut events = qmp.subscribe([EventKind::Stop]);
//!     qmp.stop().await?;
//!     events.wait_for_kind(EventKind::Stop, Duration::from_secs(5)).await?;
//!     Ok(())
//! }
//! ```
//!
//! # Commands
//!
//! Each command is a method on [`Qmp`] that takes the required arguments and returns the
//! command's own call type (`commands::BlockResizeCall` for `block_resize`): set optional
//! arguments on it by name, then `.await` it to run the command and decode the reply (`()` for
//! commands that return nothing). The shape is the same for every command, whatever QAPI's
//! `boxed` says; a command whose arguments are a union (`blockdev-add`) takes that value.
//!
//! ```no_run
//! # async fn demo(qmp: qmp_api::Qmp) -> Result<(), qmp_api::ExecuteError> {
//! use qmp_api::types::{BlockdevOptions, BlockdevOptionsFile, MirrorSyncMode};
//!
//! qmp.block_resize(1 << 30).node_name("disk0").await?;
//! qmp.blockdev_backup("disk0", MirrorSyncMode::Full, "backup0").job_id("job0").speed(1 << 26).await?;
//!
//! let file = BlockdevOptions::file(BlockdevOptionsFile::new("/var/lib/images/disk.img"))
//!     .node_name("file0");
//! qmp.blockdev_add(file).await?;
//!
//! for block in qmp.query_block().await? {
//!     println!("{}: {:?}", block.device, block.inserted.map(|i| i.file));
//! }
//! # Ok(()) }
//! ```
//!
//! A call is a [`Future`](std::future::Future) that owns a handle to the connection: spawn
//! it, join many (they are pipelined on the one socket), race it. Every call takes a timeout
//! of its own; commands the schema allows out of band (`migrate-pause`, `yank`) offer
//! `.oob()`, which gets past an in-band command that is stuck (the connection needs the `oob`
//! capability); `getfd` and `add-fd` send a file descriptor with `.fd()` (unix sockets):
//!
//! ```no_run
//! # async fn demo(qmp: qmp_api::Qmp) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! let status = tokio::spawn(qmp.query_status());
//! qmp.query_block().timeout(Some(Duration::from_secs(2))).await?;
//! qmp.migrate_pause().oob().await?;
//! let image = std::fs::File::options().read(true).write(true).open("/var/lib/images/disk.img")?;
//! let added = qmp.add_fd().fdset_id(1).fd(&image).await?; // then open "/dev/fdset/1"
//! println!("{} in fd set {}; {:?}", added.fd, added.fdset_id, status.await??.status);
//! # Ok(()) }
//! ```
//!
//! Every command is also a type in [`commands`] implementing [`Command`]; [`Qmp::execute`]
//! runs any command value as a [`Call`]. A command whose arguments are a schema struct of the
//! same name *is* that struct (`types::BlockdevBackup`, re-exported in `commands`), so
//! `types`, `commands`, `events` and the crate root can be glob-imported together: no name is
//! defined twice.
//!
//! # Building values
//!
//! Arguments read like their JSON. Optional members have chainable setters beside the public
//! fields; a union is built from its branch (`From`, when the branch type belongs to one
//! branch only) or by a constructor named after the tag; alternates convert from each branch
//! (a node name is a `BlockdevRef`); single-member wrappers convert from what they wrap; and
//! parameters of schema types take `impl Into<..>`, so these conversions apply everywhere:
//!
//! ```no_run
//! # async fn demo(qmp: qmp_api::Qmp) -> Result<(), qmp_api::ExecuteError> {
//! use qmp_api::types::{
//!     BlockExportOptions, BlockExportOptionsNbd, BlockdevOptions, BlockdevOptionsNull,
//!     BlockdevOptionsQcow2, UnixSocketAddress,
//! };
//!
//! // {"driver": "null-co", "node-name": "null0", "size": 67108864}
//! qmp.blockdev_add(BlockdevOptions::null_co(BlockdevOptionsNull::default().size(64 << 20)).node_name("null0")).await?;
//! // {"driver": "qcow2", "node-name": "disk0", "file": "file0"}
//! qmp.blockdev_add(BlockdevOptions::from(BlockdevOptionsQcow2::new("file0")).node_name("disk0")).await?;
//! // nbd-server-start's "addr": {"type": "unix", "data": {"path": "/run/vm0/nbd.sock"}}
//! qmp.nbd_server_start(UnixSocketAddress::new("/run/vm0/nbd.sock")).await?;
//! // Two required strings: the constructor's name says which is which.
//! let export = BlockExportOptions::with_id_and_node_name("exp0", "disk0", BlockExportOptionsNbd::default());
//! qmp.block_export_add(export.writable(true)).await?;
//! # Ok(()) }
//! ```
//!
//! A union's `...Variant` prints its tag (`null-co`). Members that name files stay strings
//! (`impl Into<String>`), not `impl AsRef<Path>`: QMP strings are UTF-8 and a `Path` need not
//! be, so the conversion could only fail or silently open another file; and the schema does
//! not mark which strings are host paths (`qom-get`'s `path` is a QOM path). Convert with
//! `path.to_str()` and handle the `None`.
//!
//! Every type implements `Serialize`. `Deserialize` is on every type QEMU sends (reply and
//! event data, and whatever they contain); the types QEMU never sends, found only in command
//! arguments (`BlockdevOptions`, `SocketAddressLegacy`: their docs say so), decode only with
//! the cargo feature `decode-arguments` (also turned on by `mock`), for reading them from a
//! configuration file, say. A client only encodes them, and their decoders would be about 15%
//! of this crate's compile time. They refuse members they do not know (a typo in your file is
//! an error naming the member and the known ones), while the types QEMU sends skip them, since
//! a newer QEMU adds members. `serde_json` alone reports a line and column;
//! [`DecodeError::decode`] also names the member's path (`` at `[1].file` ``):
//!
//! ```toml
//! qmp-api = { version = "0.1", features = ["decode-arguments"] }
//! ```
//!
//! ```
//! # #[cfg(feature = "decode-arguments")] {
//! use qmp_api::types::BlockdevOptions;
//!
//! let file = r#"[{"driver": "null-co", "node-name": "null0"},
//!                {"driver": "qcow2", "node-name": "disk0",
//!                 "file": {"driver": "file", "filename": "/tmp/a.qcow2", "read-onyl": true}}]"#;
//! let e = qmp_api::DecodeError::decode::<Vec<BlockdevOptions>>("disks.json", file).unwrap_err();
//! assert_eq!(e.path, "[1].file");
//! assert!(e.message.starts_with("unknown field `read-onyl`, expected one of"));
//! # }
//! ```
//!
//! # Events
//!
//! [`Qmp::events`] returns an [`EventStream`] of [`Received`] items: the typed [`Event`] and
//! its timestamp. Create it before sending the command whose events you want; it sees every
//! event received from then on, and reports exactly how many it missed if it falls behind.
//! [`Qmp::subscribe`] takes [`EventKind`]s, so a misspelled event does not compile;
//! [`Qmp::events_named`] checks names against the schema (`"Stop"` is an error suggesting
//! `STOP`), and [`Qmp::events_named_unchecked`] subscribes to an event of a newer QEMU.
//!
//! # Workflows
//!
//! The `workflow` module has the loops everyone needs, on top of the typed API: start QEMU and
//! connect (`workflow::Launcher`), run a block job to its end (`workflow::Job`), run a
//! migration (`workflow::Migration`), each with progress, timeouts and clear errors. It is
//! built with the default schema and any QEMU system emulator schema from 9.1 on; a schema
//! without the commands and types it uses (the storage daemon's, the guest agent's, an older
//! release, an introspection dump) builds the typed API without it. The default schema's API
//! drives older QEMU and the storage daemon all the same.
//!
//! # Synchronous programs
//!
//! [`blocking`] has the same typed commands and events for programs that are not async, with
//! no runtime to create: [`blocking::Qmp`] dereferences to [`Qmp`], a call ends in
//! [`.wait()`](blocking::Wait::wait) instead of `.await`, and events are an iterator with
//! timeouts. It works from `main`, your own threads and `tokio::task::spawn_blocking`; inside
//! an async task it returns [`BlockingError::InAsyncContext`] instead of stalling the runtime.
//!
//! ```no_run
//! use qmp_api::blocking::{Qmp, Wait};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let qmp = Qmp::connect_unix("/run/vm0/qmp.sock")?;
//!     println!("{}", qmp.query_status().wait()?.status);
//!     Ok(())
//! }
//! ```
//!
//! The examples `vm_manager` and `block_tool` (in `qmp-api/examples`) are two complete small
//! programs, each beside its twin written with Python's qemu.qmp.
//!
//! # Newer and older QEMU
//!
//! Values the schema does not know are kept, not errors: enum values as
//! `Other(`[`UnknownValue`]`)`, union branches as `Other(`[`UnknownVariant`]`)`, events as
//! [`Event::Other`]. Only decoding creates those (or an enum's `from_wire`, which maps a known
//! name to its variant), so `Other` never stands for a value the schema knows. Members that a
//! QEMU build or version may leave out are `Option`s. A reply that still does not match fails
//! with [`ExecuteError::Decode`], which names the command and the path of the offending field.
//!
//! The default schema holds every version from 2.12 to 10.0: commands and members removed
//! since are still there, documented "**Removed** after QEMU X.Y", and members some version
//! leaves out (or does not require, for arguments) are `Option`s, so one program compiles once
//! and runs against all of them. Two kinds of version notes appear in the docs: "Since QEMU
//! X.Y" is what QEMU's own schema states; "Added in", "First in the schema of", "**Removed**
//! after" and "Deprecated since" come from comparing the schemas of the releases merged here
//! (2.12.0 to 10.0), so they can differ from it by a point release. To find what a given
//! release added, search the docs for "Since QEMU 10.0" (or ask [`Qmp::supports`] at run
//! time). [`Qmp::server_version`] is the server's version from its
//! greeting; [`Qmp::server_schema`] fetches its `query-qmp-schema` once per connection and
//! answers [`ServerSchema::supports`] for commands, events, arguments and enum values. From
//! then on a call the server cannot take fails before sending with
//! [`ExecuteError::Unsupported`]:
//!
//! ```no_run
//! # async fn demo(qmp: qmp_api::Qmp) -> Result<(), qmp_api::ExecuteError> {
//! use qmp_api::SchemaItem;
//!
//! println!("QEMU {}", qmp.server_version());
//! if !qmp.supports(SchemaItem::Command("query-cpus")).await? {
//!     // query-cpus was removed after QEMU 6.1: refused here, nothing sent.
//!     assert!(qmp.query_cpus().await.is_err_and(|e| e.is_unsupported()));
//! }
//! # Ok(()) }
//! ```
//!
//! # Finding your way
//!
//! Types live in one submodule of [`types`] per QAPI module (`types::block_core`), all
//! re-exported flat from `types`; the [`commands`] page lists every command by module, and
//! [`Qmp`]'s methods come in one block per module. Every item links to its entry in QEMU's
//! reference manual, and rustdoc's search finds items by their wire names too
//! (`blockdev-backup`, `BLOCK_JOB_COMPLETED`).
//!
//! # Choosing the schema
//!
//! Set `QMP_SCHEMA` at build time to generate from another schema: a normalized file from
//! `schema/` (merged, like `qemu-storage-daemon.json`, or of one version), a QAPI root file of a QEMU source tree (its doc comments become these docs), or a
//! `query-qmp-schema` dump of the QEMU you run.

pub mod blocking;
mod builder;
#[cfg(feature = "mock")]
pub mod capture;
mod client;
mod command;
#[cfg(feature = "mock")]
pub mod mock;
#[cfg(feature = "schema")]
pub mod schema;
mod server_schema;
mod stream;
mod unknown;
#[cfg(qmp_workflow)]
pub mod workflow;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// Every type of the schema: enums, structs, unions (with their `...Variant` branch enums)
/// and alternates, in one submodule per QAPI module (`types::block_core`, `types::machine`,
/// ...), all re-exported here.
#[allow(deprecated)]
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/types.rs"));
}

#[doc = include_str!(concat!(env!("OUT_DIR"), "/commands.md"))]
#[allow(deprecated)]
pub mod commands {
    include!(concat!(env!("OUT_DIR"), "/commands.rs"));
}

/// Event data types and the [`Event`] enum.
#[allow(deprecated)]
pub mod events {
    include!(concat!(env!("OUT_DIR"), "/events.rs"));
}

include!(concat!(env!("OUT_DIR"), "/schema.rs"));

pub use builder::QmpBuilder;
pub use client::{Qmp, UnknownEventName};
#[doc(hidden)]
pub use command::CallTarget;
pub use command::{Call, Command, FdCommand, OobCommand};
pub use events::{Event, EventKind};
pub use server_schema::{SchemaItem, ServerSchema};
pub use stream::{EventStream, Received, WaitError};
pub use unknown::{UnknownEvent, UnknownValue, UnknownVariant};

pub use qmp_core;
/// TLS for TCP connections (cargo feature `tls`): [`QmpBuilder::connect_tls`] takes a
/// [`rustls::ClientConfig`](tls::rustls::ClientConfig).
#[cfg(feature = "tls")]
pub use qmp_core::tls;
pub use qmp_core::{
    BlockingError, Capability, ConnectError, DecodeError, DisconnectReason, EventError,
    ExecuteError, Greeting, Listener, QmpError, Timestamp, Version,
};
/// `serde_json`, as the generated code uses it: [`json::Value`] for `any` members
/// (`qom-get`'s reply, `qom-set`'s value) and `.arg(..)`, and the [`json!`](json::json)
/// macro. (`Value` is not at the crate root, where a schema type of that name could take
/// it.)
///
/// ```
/// use qmp_api::json::json;
/// let args = json!({"path": "/machine"});
/// assert_eq!(args["path"], "/machine");
/// ```
pub use serde_json as json;
