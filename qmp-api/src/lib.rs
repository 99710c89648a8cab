//! Typed QMP: every QEMU command and event as Rust types and methods, generated at build time
//! from QEMU's QAPI schema (by default QEMU 10.0.13's; see [`SCHEMA`]).
//!
//! # Connecting
//!
//! [`Qmp`] wraps a [`qmp_core::Client`]: connect with [`Qmp::connect_unix`], or build any
//! client (TCP, TLS, accept mode, timeouts, capabilities) with [`qmp_core::ClientBuilder`] and
//! convert it with `Qmp::from(client)`.
//!
//! ```no_run
//! use std::time::Duration;
//! use qmp_api::{Event, Qmp};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let qmp = Qmp::connect_unix("/run/vm0/qmp.sock").await?;
//!     let status = qmp.query_status().await?;
//!     println!("{} (running: {})", status.status, status.running);
//!
//!     let mut events = qmp.events();
//!     qmp.stop().await?;
//!     events.wait_for(|e| matches!(e, Event::Stop), Duration::from_secs(5)).await?;
//!     Ok(())
//! }
//! ```
//!
//! # Commands
//!
//! Each command is a method on [`Qmp`] that takes the required arguments and returns a
//! [`Call`]; optional arguments are set on the call by name, and awaiting it runs the command
//! and decodes the reply (`()` for commands that return nothing):
//!
//! ```no_run
//! # async fn demo(qmp: qmp_api::Qmp) -> Result<(), qmp_api::ExecuteError> {
//! qmp.block_resize(1 << 30).node_name("disk0").await?;
//! for block in qmp.query_block().await? {
//!     println!("{}: {:?}", block.device, block.inserted.map(|i| i.file));
//! }
//! # Ok(()) }
//! ```
//!
//! Every command is also a type in [`commands`] implementing [`Command`]; [`Qmp::execute`]
//! runs any of them. Commands whose arguments are a union (`blockdev-add`) take that type:
//!
//! ```no_run
//! # async fn demo(qmp: qmp_api::Qmp) -> Result<(), qmp_api::ExecuteError> {
//! use qmp_api::types::{BlockdevOptions, BlockdevOptionsFile, BlockdevOptionsVariant};
//!
//! let mut file = BlockdevOptions::new(BlockdevOptionsVariant::File(
//!     BlockdevOptionsFile::new("/var/lib/images/disk.img"),
//! ));
//! file.node_name = Some("file0".into());
//! qmp.blockdev_add(file).await?;
//! # Ok(()) }
//! ```
//!
//! # Events
//!
//! [`Qmp::events`] returns an [`EventStream`] of [`Received`] items: the typed [`Event`] and
//! its timestamp. Create it before sending the command whose events you want; it sees every
//! event received from then on, and reports exactly how many it missed if it falls behind.
//!
//! # Workflows
//!
//! [`workflow`] has the loops everyone needs, on top of the typed API: start QEMU and connect
//! ([`workflow::Launcher`]), run a block job to its end ([`workflow::Job`]), run a migration
//! ([`workflow::Migration`]), each with progress, timeouts and clear errors.
//!
//! # Newer and older QEMU
//!
//! Values the schema does not know are kept, not errors: enum values as `Other(String)`,
//! union branches as `Other(`[`UnknownVariant`]`)`, events as [`Event::Other`]. Members that a
//! QEMU build or version may leave out are `Option`s. A reply that still does not match fails
//! with [`ExecuteError::Decode`], which names the command and the path of the offending field.
//!
//! # Choosing the schema
//!
//! Set `QMP_SCHEMA` at build time to generate from another schema: a normalized file from
//! `schema/`, a QAPI root file of a QEMU source tree (its doc comments become these docs), or a
//! `query-qmp-schema` dump of the QEMU you run.

mod client;
mod command;
mod stream;
pub mod workflow;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// Every type of the schema: enums, structs, unions (with their `...Variant` branch enums)
/// and alternates.
#[allow(deprecated)]
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/types.rs"));
}

/// One type per command, holding its arguments (see [`Command`]).
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

pub use client::Qmp;
pub use command::{Call, Command};
pub use events::Event;
pub use stream::{EventStream, Received, WaitError};

pub use qmp_core;
pub use qmp_core::{
    Capability, ConnectError, DecodeError, DisconnectReason, EventError, ExecuteError, Greeting,
    Listener, QmpError, Timestamp, Version,
};

/// A union branch this schema does not know (a newer QEMU's discriminator value): the
/// discriminator value and every member of the object, kept as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownVariant {
    /// The discriminator value; empty when the object had none (a QEMU older than the
    /// discriminator member, e.g. QEMU 7.2's `query-sev` reply).
    pub tag: String,
    /// The object's members (base members included).
    pub members: serde_json::Map<String, serde_json::Value>,
}
