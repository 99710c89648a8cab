//! A small, untyped, async client for QMP, the QEMU Machine Protocol.
//!
//! QMP is JSON over a socket: the server greets, the client negotiates capabilities, then sends
//! commands (`{"execute": ...}`) and receives replies and asynchronous events. This crate does
//! exactly that, correctly under concurrency and faults, and nothing more: commands and
//! arguments are strings and [`serde`] values. The `qmp-api` crate layers typed methods and
//! events generated from QEMU's schema on top of it.
//!
//! # Example
//!
//! Start QEMU with a QMP socket, e.g.
//! `qemu-system-x86_64 -machine none -display none -qmp unix:/tmp/qmp.sock,server=on,wait=off`,
//! then:
//!
//! ```no_run
//! use qmp_core::Client;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let client = Client::connect_unix("/tmp/qmp.sock").await?;
//!     println!("connected to QEMU {}", client.greeting().version);
//!
//!     // Subscribe before sending the command whose events you want: nothing is missed.
//!     let mut events = client.subscribe_to(["STOP"]);
//!     client.execute("stop", ()).await?;
//!     let stop = events.next().await.expect("connection ended")?;
//!     println!("{} at {:?}", stop.name(), stop.timestamp().to_system_time());
//!
//!     // Typed results: decode the reply straight into your own type.
//!     #[derive(serde::Deserialize)]
//!     struct Status { status: String, running: bool }
//!     let status: Status = client.execute_as("query-status", ()).await?;
//!     println!("status {} (running: {})", status.status, status.running);
//!
//!     // Errors from the server keep their class and description.
//!     if let Err(e) = client.execute("no-such-command", ()).await {
//!         println!("{e}");
//!     }
//!     client.close().await;
//!     Ok(())
//! }
//! ```
//!
//! # What you get
//!
//! - Connections over unix sockets, TCP, or any `AsyncRead + AsyncWrite` stream, and accept
//!   mode ([`Listener`]) where QEMU connects to you; timeouts on all of them.
//! - A [`Client`] handle that is cheap to clone and used from many tasks at once: commands are
//!   pipelined on one connection and replies matched by id.
//! - Events fanned out to any number of [`EventStream`]s, in order, each with a bounded buffer
//!   that reports exactly how many events a slow subscriber missed.
//! - One [`Request`] per command, with options that combine: out of band (`exec-oob`), file
//!   descriptors for `getfd` / `add-fd` (unix sockets), a timeout of its own.
//! - TLS over TCP with rustls (feature `tls`: `ClientBuilder::connect_tls`, see the `tls`
//!   module). Plain TCP QMP has no authentication and no encryption.
//! - Limits on message size and nesting depth; every fault is a specific error, never a panic
//!   or a hang.
//! - A command only ever receives its own reply: random ids per connection (a monitor hands a
//!   new client what it still owed the previous one), commands the server skipped fail as soon
//!   as the order of replies proves it, errors without `id` are never routed by guessing, and
//!   what QEMU's JSON parser would reject is refused before sending. Nothing received is lost
//!   when the server goes away, and `quit` ends as an orderly shutdown. See [`Client`].
//!
//! - The QEMU guest agent (qemu-ga), which speaks the same wire format with other rules (no
//!   greeting, the 0xFF delimiter, resynchronisation with `guest-sync-delimited`):
//!   [`ClientBuilder::guest_agent`]; the [`agent`] module documents each rule. The `qmp-ga`
//!   crate has the typed guest agent API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let agent = qmp_core::Client::builder()
//!     .guest_agent(true)
//!     .connect_unix("/run/vm0/qga.sock")
//!     .await?;
//! let info = agent.execute("guest-info", ()).await?;
//! println!("qemu-ga {}", info["version"]);
//! # Ok(()) }
//! ```
//!
//! The other side of the wire is here too: [`server::Server`] serves QMP like QEMU's monitor
//! (greeting, negotiation, QEMU's errors and framing, events) with your command handlers, for
//! testing code that drives QEMU without starting one.
//!
//! Logging goes through [`tracing`]: connects and negotiation at debug/info, each command's id
//! and name at debug, discarded replies and malformed messages at warn.

pub mod agent;
mod client;
mod connection;
mod error;
mod event;
mod framing;
mod greeting;
mod handshake;
mod json;
mod limits;
#[doc(hidden)]
pub use json::Key;
mod listener;
mod message;
mod request;
pub mod runtime;
pub mod server;
mod slot;
#[cfg(feature = "tls")]
pub mod tls;
mod transport;

pub use client::{Client, ClientBuilder, Stats};
pub use error::{
    BlockingError, ConnectError, DecodeError, DisconnectReason, EventError, ExecuteError,
    JsonLimit, ListenError, ProtocolError, QmpError,
};
pub use event::{Event, EventStream, Timestamp};
pub use greeting::{Capability, Greeting, Version};
pub use listener::Listener;
pub use request::{Request, RequestOptions};
pub use transport::AsyncStream;

// Re-exported for the generated typed API and for users decoding replies themselves.
pub use serde_json::value::RawValue;
