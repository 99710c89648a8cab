//! The other side of the wire: a QMP server that behaves like QEMU's monitor, for testing
//! code that drives QEMU without starting one.
//!
//! A [`Server`] greets each client with a configurable version and capabilities, holds it in
//! capabilities negotiation mode until `qmp_capabilities`, then runs the commands it sends
//! through your [`Handler`]s and writes their results or errors; handlers and tests send
//! events. Everything a client can observe follows QEMU 10.0 (checked against the real thing
//! by a differential test in `tests/tests/server_qemu.rs`):
//!
//! - **Bytes**: replies and events are written as QEMU writes them (`{"return": {}, "id": 1}`
//!   with `", "` and `": "`, ASCII only, `\r\n` after each); ids are echoed as sent (numbers
//!   keep their text, where QEMU would print `1.0` as `1`).
//! - **Input**: read with QEMU's JSON dialect (single-quoted strings too) and QEMU's framing:
//!   a message ends where its braces and brackets balance, not at a newline. Bad input gets
//!   QEMU's id-less `GenericError` (`JSON parse error, ...`), and reading resumes where QEMU
//!   resumes, so garbage followed by a valid command gets an error, then the command's reply.
//!   QEMU's limits apply: 64 MiB of tokens, 2,097,152 tokens and nesting 1024 per message
//!   (configurable on [`ServerBuilder`]).
//! - **Checks and errors**: the request envelope (`execute` or `exec-oob`, `arguments`, `id`,
//!   nothing else), negotiation mode (`CommandNotFound`, "Expecting capabilities negotiation
//!   with 'qmp_capabilities'"; after it, `qmp_capabilities` gets "Capabilities negotiation is
//!   already complete, command ignored"), `enable` of an unknown or unoffered capability,
//!   unknown commands ("The command X has not been found", unless a
//!   [fallback](ServerBuilder::fallback) is set), `exec-oob` without `oob` or for a command
//!   that does not allow it: same class, same description, and with several faults in one
//!   request the same fault reported.
//! - **Ordering**: in-band commands run one at a time and are answered in order (the server
//!   keeps reading meanwhile, up to QEMU's queue of 8); with `oob` negotiated, `exec-oob`
//!   commands start at once and run concurrently, and their replies may overtake. Events are
//!   stamped with the current time (seconds and microseconds), never sent before negotiation,
//!   and a handler can put events right after its own reply ([`Call::emit_after_reply`]).
//! - **Hostile clients**: a client that stops reading stops being read (at most
//!   [`WRITE_HIGH_WATER`] bytes of replies wait for it), event queues are bounded
//!   ([`ServerBuilder::event_buffer`]), every session has its own task so a flooding client
//!   does not starve the others, and a handler that panics costs its command a
//!   `GenericError`, not the session.
//!
//! # Example
//!
//! ```
//! use qmp_core::server::{Call, Server};
//! use qmp_core::{Client, QmpError};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("qmp-server-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let path = dir.join("qmp.sock");
//! let server = Server::builder()
//!     .command("query-status", |_: Call| async {
//!         Ok(json!({"status": "running", "running": true}))
//!     })
//!     .command("stop", |call: Call| async move {
//!         // Reply first, then the event: the order QEMU uses for `stop`.
//!         call.emit_after_reply("STOP", None);
//!         Ok(json!({}))
//!     })
//!     .command("eject", |call: Call| async move {
//!         let device = call.arguments()["device"].as_str().unwrap_or_default().to_string();
//!         Err(QmpError::new("GenericError", format!("Device '{device}' not found")))
//!     })
//!     .bind_unix(&path)?;
//!
//! let client = Client::connect_unix(&path).await?;
//! assert_eq!(client.execute("query-status", ()).await?["status"], "running");
//!
//! let mut events = client.subscribe_to(["STOP"]);
//! client.execute("stop", ()).await?;
//! assert_eq!(events.next().await.expect("an event")?.name(), "STOP");
//!
//! let err = client.execute("eject", json!({"device": "cd0"})).await.unwrap_err();
//! assert_eq!(err.qmp_error().map(|e| e.desc.as_str()), Some("Device 'cd0' not found"));
//! let err = client.execute("query-nothing", ()).await.unwrap_err();
//! assert!(err.qmp_error().is_some_and(|e| e.is_command_not_found()));
//!
//! // Events from outside a handler: to every negotiated client, or to one session.
//! server.broadcast("RESUME", None).await;
//! client.close().await;
//! server.shutdown().await;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```
//!
//! # Sessions and closing
//!
//! By default one client is served at a time, as by a QEMU monitor: a second one waits in the
//! listen backlog, without a greeting, until the first leaves
//! ([`ServerBuilder::max_sessions`] changes that). Each client is a [`Session`]: handlers get
//! theirs from [`Call::session`], tests from [`Server::sessions`]. A session ends when the
//! client disconnects (commands still running are dropped, as QEMU drops them), when
//! [`Session::close`] or [`Server::shutdown`] is called (what was already queued for the
//! client is written first), or after a reply whose handler called
//! [`Call::close_after_reply`], optionally after a final event such as `SHUTDOWN`.
//!
//! Not built in: QEMU's other commands (`query-version`, `query-commands`, ...: register the
//! ones you need), file descriptors passed with `SCM_RIGHTS` (they are not received), and
//! QEMU's `pretty=on` output.

mod handler;
mod reader;
mod request;
#[allow(clippy::module_inception)]
mod server;
mod session;
mod sessions;
mod state;
mod task;
mod writer;

pub use handler::{Call, Handler, HandlerFuture};
pub use server::{Server, ServerBuilder};
pub use session::{EmitError, Session};
pub use task::{MAX_OOB_IN_FLIGHT, WRITE_HIGH_WATER};
