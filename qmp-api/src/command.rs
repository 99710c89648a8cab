//! The [`Command`] trait every generated command type implements, and [`Call`], the pending
//! call the typed methods return.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use qmp_core::Pending;
use serde::Serialize;

use crate::{DecodeError, DisconnectReason, ExecuteError, Qmp};

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
pub trait Command: Serialize + Send + Sync + Unpin {
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
    type IntoFuture = CallFuture<'a, C>;

    fn into_future(self) -> Self::IntoFuture {
        CallFuture {
            state: CallState::Start(self.qmp, self.command),
        }
    }
}

/// The future of an awaited [`Call`]: sends the command when first polled, then decodes the
/// reply into the command's output type.
#[must_use = "a command does nothing until it is awaited"]
pub struct CallFuture<'a, C> {
    state: CallState<'a, C>,
}

enum CallState<'a, C> {
    Start(&'a Qmp, C),
    Sent(Pending<'a>),
    Done,
}

impl<C: Command> Future for CallFuture<'_, C> {
    type Output = Result<C::Output, ExecuteError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                CallState::Start(..) => {
                    let CallState::Start(qmp, command) =
                        std::mem::replace(&mut this.state, CallState::Done)
                    else {
                        continue;
                    };
                    if !C::SUCCESS_REPLY {
                        let sent = qmp.raw().execute_without_reply(C::NAME, &command);
                        return Poll::Ready(sent.and_then(|()| Ok(C::decode("{}")?)));
                    }
                    this.state = CallState::Sent(qmp.raw().execute_raw(C::NAME, &command));
                }
                CallState::Sent(pending) => {
                    let reply = match Pin::new(pending).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(reply) => reply,
                    };
                    this.state = CallState::Done;
                    return Poll::Ready(reply.and_then(|raw| Ok(C::decode(raw.get())?)));
                }
                // Polled again after completion: answer rather than panic or hang.
                CallState::Done => {
                    return Poll::Ready(Err(ExecuteError::Disconnected {
                        command: C::NAME.to_string(),
                        reason: Arc::new(DisconnectReason::ClientClosed),
                    }))
                }
            }
        }
    }
}

impl<C: std::fmt::Debug> std::fmt::Debug for Call<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Call").field(&self.command).finish()
    }
}
