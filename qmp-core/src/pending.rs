//! [`Pending`]: the future of one command, from encoding to reply.
//!
//! A hand-written state machine rather than an `async fn`: it is what every pipelined command
//! keeps alive while it waits, so it holds only what it needs (the encoded request until it is
//! sent, then the reply slot and an optional deadline).

use std::fmt;
use std::future::Future;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde_json::value::RawValue;
use tokio::time::Sleep;

use crate::client::Client;
use crate::connection::{Reply, ReplyError, Request};
use crate::error::ExecuteError;
use crate::slot;

/// A command on its way: returned by [`Client::execute_raw`], resolves to the reply's
/// `return` value as JSON text.
///
/// Nothing is sent until it is first polled. Dropping it cancels the wait (the command may
/// still run on the server; its reply is discarded). If the client has a command timeout, it
/// starts when the command is sent.
#[must_use = "a command does nothing until it is awaited"]
pub struct Pending<'a> {
    client: &'a Client,
    command: &'a str,
    state: State,
}

enum State {
    /// Encoded, not yet handed to the connection.
    Unsent {
        text: Vec<u8>,
        name_end: u32,
        oob: bool,
        fds: Box<[OwnedFd]>,
    },
    /// Failed before sending (bad arguments, connection gone).
    Failed(Box<ExecuteError>),
    /// Sent: waiting for the reply (and maybe a deadline).
    Waiting {
        rx: slot::Receiver<Reply>,
        deadline: Option<Pin<Box<Sleep>>>,
    },
    /// The result was returned.
    Done,
}

impl<'a> Pending<'a> {
    pub(crate) fn new(
        client: &'a Client,
        command: &'a str,
        encoded: Result<(Vec<u8>, u32), ExecuteError>,
        oob: bool,
        fds: Box<[OwnedFd]>,
    ) -> Self {
        let state = match encoded {
            Ok((text, name_end)) => State::Unsent {
                text,
                name_end,
                oob,
                fds,
            },
            Err(e) => State::Failed(Box::new(e)),
        };
        Pending {
            client,
            command,
            state,
        }
    }

    /// The command's name.
    pub fn command(&self) -> &str {
        self.command
    }

    fn finish(&mut self, reply: Result<Reply, ()>) -> Result<Box<RawValue>, ExecuteError> {
        let command = || self.command.to_string();
        match reply {
            Ok(Ok(raw)) => Ok(raw),
            Ok(Err(ReplyError::Qmp(error))) => Err(ExecuteError::Qmp {
                command: command(),
                error: *error,
            }),
            Ok(Err(ReplyError::Malformed(error))) => Err(ExecuteError::MalformedReply {
                command: command(),
                error: *error,
            }),
            Ok(Err(ReplyError::FdPassingUnsupported)) => {
                Err(ExecuteError::FdPassingUnsupported { command: command() })
            }
            Ok(Err(ReplyError::Disconnected { reason, sent })) => Err(ExecuteError::Disconnected {
                command: command(),
                reason,
                sent,
            }),
            Ok(Err(ReplyError::Unanswered(held))) => Err(ReplyError::unanswered(command(), held)),
            // The connection task dropped the slot: it ended, maybe after sending the command.
            Err(()) => Err(self.client.disconnected(self.command, true)),
        }
    }
}

impl Future for Pending<'_> {
    type Output = Result<Box<RawValue>, ExecuteError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Unsent { .. } => {
                    let State::Unsent {
                        text,
                        name_end,
                        oob,
                        fds,
                    } = std::mem::replace(&mut this.state, State::Done)
                    else {
                        continue;
                    };
                    let (reply, rx) = slot::slot();
                    let request = Request {
                        text,
                        name_end,
                        oob,
                        fds,
                        reply,
                    };
                    if let Err(e) = this.client.submit(request, this.command) {
                        return Poll::Ready(Err(e));
                    }
                    let deadline = this
                        .client
                        .command_timeout()
                        .map(|after| Box::pin(tokio::time::sleep(after)));
                    this.state = State::Waiting { rx, deadline };
                }
                State::Failed(_) => {
                    let State::Failed(e) = std::mem::replace(&mut this.state, State::Done) else {
                        continue;
                    };
                    return Poll::Ready(Err(*e));
                }
                State::Waiting { rx, deadline } => {
                    if let Poll::Ready(reply) = Pin::new(rx).poll(cx) {
                        this.state = State::Done;
                        return Poll::Ready(this.finish(reply));
                    }
                    if let Some(d) = deadline {
                        if d.as_mut().poll(cx).is_ready() {
                            let after = this.client.command_timeout().unwrap_or_default();
                            this.state = State::Done;
                            return Poll::Ready(Err(ExecuteError::Timeout {
                                command: this.command.to_string(),
                                after,
                            }));
                        }
                    }
                    return Poll::Pending;
                }
                // Polled again after completion: answer rather than panic.
                State::Done => {
                    return Poll::Ready(Err(this.client.disconnected(this.command, true)))
                }
            }
        }
    }
}

impl fmt::Debug for Pending<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Unsent { .. } => "unsent",
            State::Failed(_) => "failed",
            State::Waiting { .. } => "waiting",
            State::Done => "done",
        };
        f.debug_struct("Pending")
            .field("command", &self.command)
            .field("state", &state)
            .finish()
    }
}
