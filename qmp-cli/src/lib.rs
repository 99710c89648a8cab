//! `qmp`: a command-line client and interactive shell for QEMU's QMP (and the guest agent)
//! that knows the schema.
//!
//! The binary is the product; this library holds its parts so that they can be tested:
//! [`args`] (qmp-shell's input language), [`schema`] (the built-in merged schemas, names for
//! completion, `qmp help`), [`check`] (checks before sending), [`connect`], [`output`],
//! [`progress`] (jobs with progress bars) and [`shell`].
//!
//! ```text
//! qmp -s /run/vm0/qmp.sock query-status
//! qmp -s /run/vm0/qmp.sock blockdev-add driver=null-co node-name=null0 size=67108864
//! qmp -s /run/vm0/qmp.sock events JOB_STATUS_CHANGE
//! qmp -s /run/vm0/qmp.sock                 # the shell
//! qmp --spawn query-version                # a QEMU of its own, stopped on exit
//! ```

pub mod app;
pub mod args;
pub mod check;
pub mod cli;
pub mod connect;
pub mod output;
pub mod progress;
pub mod schema;
pub mod shell;
