//! Workflows: the loops every VM manager, backup tool and test harness needs, written once.
//!
//! - [`Launcher`]: start `qemu-system-*` or `qemu-storage-daemon` from your own command line,
//!   connected through accept mode (no start-up race), with an error *at once* when the
//!   process exits before connecting; [`QemuProcess`] kills it on drop, and
//!   [`QemuProcess::quit_and_wait`] ends it in order.
//! - [`Job`]: run a block job (`blockdev-create`, `blockdev-backup`, `blockdev-mirror`,
//!   `block-commit`, `block-stream`, `drive-*`) through its states to the end: complete on
//!   `ready`, finalize on `pending`, read its error and dismiss it on `concluded`, with
//!   progress, a timeout, and cancellation when dropped.
//! - [`Migration`]: run a migration (outgoing or incoming) to `completed` or `failed`, with
//!   the `events` capability enabled for you, progress, a timeout and cancel.
//!
//! The module uses generated commands, events and types, so it exists when the schema has
//! them in the shapes it uses: the default schema, and QEMU system emulator schemas from 9.1
//! on (QAPI source or normalized). Built from another schema (the storage daemon's, the guest
//! agent's, an older release, a `query-qmp-schema` dump, which hides type names), `qmp-api`
//! leaves it out. The default schema's API drives QEMU 7.2 and the storage daemon as well.
//!
//! ```no_run
//! use std::process::Command;
//! use qmp_api::types::{BlockdevCreateOptions, BlockdevCreateOptionsQcow2,
//!     BlockdevCreateOptionsVariant, BlockdevRef};
//! use qmp_api::workflow::{Job, Launcher};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut cmd = Command::new("qemu-storage-daemon");
//! cmd.args(["--blockdev", "file,filename=/tmp/disk.qcow2,node-name=file0"]);
//! let (qmp, mut qemu) = Launcher::new(cmd).launch().await?;
//!
//! let options = BlockdevCreateOptions::new(BlockdevCreateOptionsVariant::Qcow2(
//!     BlockdevCreateOptionsQcow2::new(BlockdevRef::Reference("file0".into()), 1 << 30),
//! ));
//! Job::new(&qmp, "create0").run(qmp.blockdev_create("create0", options)).await?;
//!
//! let status = qemu.quit_and_wait().await?;
//! println!("qemu-storage-daemon exited: {status}");
//! # Ok(()) }
//! ```

mod cleanup;
mod job;
mod launch;
mod migration;
mod tail;

pub use job::{Job, JobError, JobProgress, JobReport, ReadyJob};
pub use launch::{LaunchError, Launcher, MonitorWiring, QemuProcess, QuitError};
pub use migration::{
    Migration, MigrationError, MigrationProgress, MigrationReport, RunningMigration,
};
