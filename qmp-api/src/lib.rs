//! Typed QMP: every QEMU command and event as Rust types and methods, generated at build time
//! from QEMU's QAPI schema.
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

mod client;
mod command;
mod stream;

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
    /// The discriminator value.
    pub tag: String,
    /// The object's members (base members included).
    pub members: serde_json::Map<String, serde_json::Value>,
}
