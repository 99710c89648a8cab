//! The [`Command`] trait every generated command type implements, and [`Call`], the pending
//! call the typed methods return.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use serde::Serialize;

use crate::{DecodeError, ExecuteError, Qmp};

/// A QMP command: its arguments (the value), its name, and how its reply decodes.
///
/// One type per command is generated in [`commands`](crate::commands). Run one with
/// [`Qmp::execute`], or through the matching method on [`Qmp`], which builds the value for
/// you.
///
/// ```no_run
/// # async fn demo(qmp: qmp_api::Qmp) -> Result<(), qmp_api::ExecuteError> {
/// use qmp_api::{commands, Command};
///
/// assert_eq!(commands::QueryStatus::NAME, "query-status");
/// let status = qmp.execute(commands::QueryStatus).await?;
/// println!("{}", status.status);
/// # Ok(()) }
/// ```
pub trait Command: Serialize + Send + Sync {
    /// The command's QMP name, e.g. `query-block`.
    const NAME: &'static str;
    /// Whether the schema allows it out of band (`exec-oob`).
    const ALLOW_OOB: bool = false;
    /// Whether QEMU replies on success (`false` for `success-response: false` commands, which
    /// complete once sent).
    const SUCCESS_REPLY: bool = true;
    /// What a successful reply decodes into (`()` for commands that return nothing).
    type Output;
    /// Decodes the `return` value.
    fn decode(raw: &str) -> Result<Self::Output, DecodeError>;
}

/// A command about to run: set optional arguments by name, then `.await` it.
///
/// Returned by the typed methods of [`Qmp`]. Nothing is sent until it is awaited.
///
/// ```no_run
/// # async fn demo(qmp: qmp_api::Qmp) -> Result<(), qmp_api::ExecuteError> {
/// // Required arguments are parameters; optional ones are set by name.
/// qmp.block_resize(1 << 30).node_name("disk0").await?;
/// # Ok(()) }
/// ```
#[must_use = "a command does nothing until it is awaited"]
pub struct Call<'a, C> {
    pub(crate) qmp: &'a Qmp,
    pub(crate) command: C,
}

impl<'a, C> Call<'a, C> {
    /// A call of `command` on `qmp`.
    pub fn new(qmp: &'a Qmp, command: C) -> Self {
        Call { qmp, command }
    }

    /// The command value (its arguments).
    pub fn command(&self) -> &C {
        &self.command
    }

    /// The command value, to change arguments directly.
    pub fn command_mut(&mut self) -> &mut C {
        &mut self.command
    }

    /// Takes the command value out without running it.
    pub fn into_command(self) -> C {
        self.command
    }
}

impl<'a, C: Command + 'a> IntoFuture for Call<'a, C> {
    type Output = Result<C::Output, ExecuteError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.qmp.execute(self.command).await })
    }
}

impl<C: std::fmt::Debug> std::fmt::Debug for Call<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Call").field(&self.command).finish()
    }
}
