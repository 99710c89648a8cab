//! Typed QEMU guest agent (qemu-ga): every `guest-*` command as a method of [`GuestAgent`],
//! generated at build time from the agent's QAPI schema (by default QEMU 10.0.13's; see
//! [`SCHEMA`]).
//!
//! # Connecting
//!
//! The agent runs inside the guest; the host reaches it through the chardev of its
//! virtio-serial port (QEMU:
//! `-chardev socket,path=/run/vm0/qga.sock,server=on,wait=off,id=qga0 -device virtio-serial
//! -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0`), or directly where it
//! listens itself (`qemu-ga -m unix-listen -p PATH`). [`GuestAgent::connect_unix`] connects with
//! default settings; for TCP, other streams and settings, build a client with
//! [`GuestAgent::builder`] (a [`qmp_core::ClientBuilder`] in guest agent mode) and convert it.
//!
//! ```no_run
//! use qmp_ga::GuestAgent;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let agent = GuestAgent::connect_unix("/run/vm0/qga.sock").await?;
//!     println!("qemu-ga {}", agent.version());
//!     agent.guest_ping().await?;
//!     let os = agent.guest_get_osinfo().await?;
//!     println!("{:?} {:?}", os.pretty_name, os.kernel_release);
//!     let ns = agent.guest_get_time().await?;
//!     println!("guest clock: {ns} ns since the epoch");
//!     Ok(())
//! }
//! ```
//!
//! Connecting resynchronises with the agent (`guest-sync-delimited`: whatever an earlier
//! client or a restarted agent left in the channel is dropped) and reads its version. The
//! protocol's rules (no greeting, the 0xFF delimiter, agents that echo no ids, commands that
//! never reply, large replies) are handled in `qmp-core`; its `agent` module documents each.
//!
//! # Commands
//!
//! The same shape as `qmp-api`: each command is a method taking the required arguments and
//! returning the command's call type (`commands::GuestFileOpenCall`); set optional arguments on
//! it, then `.await` it for the typed reply. Commands that send no reply on success
//! (`guest-shutdown`, `guest-suspend-*`) complete once sent.
//!
//! ```no_run
//! # async fn demo(agent: qmp_ga::GuestAgent) -> Result<(), qmp_ga::ExecuteError> {
//! let handle = agent.guest_file_open("/tmp/notes.txt").mode("r").await?;
//! let chunk = agent.guest_file_read(handle).count(4096).await?;
//! println!("{} bytes, eof {}", chunk.count, chunk.eof);
//! agent.guest_file_close(handle).await?;
//! # Ok(()) }
//! ```
//!
//! # Helpers
//!
//! Where the raw protocol is awkward: [`GuestAgent::read_file`] and
//! [`GuestAgent::write_file`] move whole files in chunks and do the base64 for you, and
//! [`GuestAgent::exec`] runs a program, waits for it and returns its exit status and decoded
//! output.
//!
//! ```no_run
//! # async fn demo(agent: qmp_ga::GuestAgent) -> Result<(), qmp_ga::Error> {
//! agent.write_file("/tmp/hello.txt", b"hello\n").await?;
//! assert_eq!(agent.read_file("/tmp/hello.txt").await?, b"hello\n");
//! let out = agent.exec("/bin/cat", ["/tmp/hello.txt"]).await?;
//! assert_eq!((out.exitcode, out.stdout.as_slice()), (Some(0), &b"hello\n"[..]));
//! # Ok(()) }
//! ```
//!
//! # Why a crate of its own
//!
//! The agent's schema is another schema: its own types (`GuestFileRead`, `GuestExecStatus`)
//! and commands, none shared with QMP's. A sibling crate keeps the two APIs apart (no
//! `guest_*` methods on the QMP client or the reverse), builds from its own schema with no
//! setting on the user's side, and shares `qmp-api`'s runtime (the [`Call`] type, [`Command`]
//! trait and decoding helpers) instead of copying it. Set `QGA_SCHEMA` at build time to
//! generate from another agent schema (normalized JSON, or `qga/qapi-schema.json` of a QEMU
//! source tree, whose doc comments then become these docs).

mod client;
mod helpers;

/// Every type of the agent's schema: enums, structs, unions and alternates.
#[allow(deprecated)]
pub mod types {
    include!(concat!(env!("OUT_DIR"), "/types.rs"));
}

#[doc = include_str!(concat!(env!("OUT_DIR"), "/commands.md"))]
#[allow(deprecated)]
pub mod commands {
    include!(concat!(env!("OUT_DIR"), "/commands.rs"));
}

include!(concat!(env!("OUT_DIR"), "/schema.rs"));

pub use client::GuestAgent;
pub use helpers::{Error, ExecOutput, FILE_CHUNK};

pub use qmp_api::{Call, Command, UnknownValue, UnknownVariant};
pub use qmp_core;
pub use qmp_core::{ConnectError, DecodeError, ExecuteError, QmpError, Version};

// The generated code reaches qmp-api's runtime through these, as qmp-api's own does.
#[doc(hidden)]
pub use qmp_api::{__private, __qapi_enum_impls, __qmp_call_type};
