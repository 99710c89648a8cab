//! The [`Command`] trait every generated command type implements, and [`Call`], the
//! command future the typed methods return.

use std::future::Future;
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
/// Returned by the typed methods of [`Qmp`] and by [`Qmp::execute`]. It is a [`Future`]:
/// nothing is sent until it is first polled, so it also works with `join_all`, `try_join`,
/// `select!` and `tokio::time::timeout`.
///
/// ```no_run
/// # async fn demo(qmp: qmp_api::Qmp) -> Result<(), qmp_api::ExecuteError> {
/// // Required arguments are parameters; optional ones are set by name.
/// qmp.block_resize(1 << 30).node_name("disk0").await?;
///
/// // Many at once, pipelined on the one connection.
/// let statuses = futures_util::future::try_join_all((0..4).map(|_| qmp.query_status())).await?;
///
/// // A call borrows the client; to run one in another task, move a clone there.
/// let q = qmp.clone();
/// let status = tokio::spawn(async move { q.query_status().await }).await.unwrap()?;
/// # Ok(()) }
/// ```
#[must_use = "a command does nothing until it is awaited"]
pub struct Call<'a, C> {
    qmp: &'a Qmp,
    pub(crate) command: C,
    state: CallState<'a>,
}

enum CallState<'a> {
    /// Not polled yet: the arguments can still change.
    Start,
    Sent(Pending<'a>),
    Done,
}

impl<'a, C> Call<'a, C> {
    /// A call of `command` on `qmp`.
    pub fn new(qmp: &'a Qmp, command: C) -> Self {
        Call {
            qmp,
            command,
            state: CallState::Start,
        }
    }

    /// The command value (its arguments).
    pub fn command(&self) -> &C {
        &self.command
    }

    /// The command value, to change arguments directly. Changes made after the call was first
    /// polled are not sent.
    pub fn command_mut(&mut self) -> &mut C {
        &mut self.command
    }

    /// Takes the command value out without running it.
    pub fn into_command(self) -> C {
        self.command
    }
}

impl<C: Command> Future for Call<'_, C> {
    type Output = Result<C::Output, ExecuteError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                CallState::Start => {
                    let raw = this.qmp.raw();
                    if !C::SUCCESS_REPLY {
                        this.state = CallState::Done;
                        let sent = raw.execute_without_reply(C::NAME, &this.command);
                        return Poll::Ready(sent.and_then(|()| Ok(C::decode("{}")?)));
                    }
                    this.state = CallState::Sent(raw.execute_raw(C::NAME, &this.command));
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
                        sent: true,
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
