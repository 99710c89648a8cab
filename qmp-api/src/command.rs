//! The [`Command`] trait every generated command type implements, and [`Call`], the one
//! generic runtime type behind every generated call type (`commands::QueryStatusCall`, ...).

use std::future::Future;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use qmp_core::{Client, Request, RequestOptions};
use serde::Serialize;

use crate::server_schema::ServerSchema;
use crate::{DecodeError, ExecuteError, Qmp};

/// What a typed call runs on: the connection, and the server's schema when the client has
/// fetched it (then calls are checked against it before sending). Implemented by [`Qmp`] and
/// `qmp_ga::GuestAgent`; only the generated code and the typed clients need it.
#[doc(hidden)]
pub trait CallTarget: AsRef<Client> {
    /// The server's schema, if fetched (see [`Qmp::server_schema`]).
    fn server_schema(&self) -> Option<Arc<ServerSchema>> {
        None
    }
}

impl CallTarget for Qmp {
    fn server_schema(&self) -> Option<Arc<ServerSchema>> {
        self.cached_server_schema()
    }
}

/// A QMP command: its arguments (the value), its name, and how its reply decodes.
///
/// Implemented by every type in [`commands`](crate::commands). Run one with [`Qmp::execute`];
/// the matching method on [`Qmp`] builds the value for you and returns the command's own call
/// type.
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
pub trait Command: Serialize + Send + Sync + Unpin + 'static {
    /// The command's QMP name, e.g. `query-block`.
    const NAME: &'static str;
    /// Whether the schema allows it out of band (`exec-oob`); such commands also implement
    /// [`OobCommand`].
    const ALLOW_OOB: bool = false;
    /// Whether QEMU replies on success (`false` for `success-response: false` commands, which
    /// complete once sent).
    const SUCCESS_REPLY: bool = true;
    /// Whether the command takes arguments its schema does not list (`gen: false` commands
    /// such as `device_add`, whose device properties are arguments too): checks against the
    /// server's schema then leave its arguments alone.
    const UNLISTED_ARGUMENTS: bool = false;
    /// What a successful reply decodes into (`()` for commands that return nothing).
    type Output: Send + 'static;
    /// Decodes the `return` value.
    fn decode(raw: &str) -> Result<Self::Output, DecodeError>;
}

/// A command the schema allows out of band (`allow-oob`, e.g. `migrate-pause`, `yank`): its
/// calls offer [`Call::oob`].
pub trait OobCommand: Command {}

/// A command that takes file descriptors sent along with it (`getfd`, `add-fd`): its calls
/// offer [`Call::fd`] and [`Call::fds`].
pub trait FdCommand: Command {}

/// A command about to run: the one runtime type behind every generated call type.
///
/// The methods of [`Qmp`] return a call type per command (`commands::BlockdevBackupCall`),
/// which wraps a `Call` and adds that command's setters; [`Qmp::execute`] returns a `Call` for
/// any command value. Either way it is a [`Future`] that owns a handle to the connection: it is
/// `'static` and `Send`, nothing is sent until it is first polled, and it works with
/// `tokio::spawn`, `join_all`, `try_join`, `select!` and `tokio::time::timeout`.
///
/// ```no_run
/// # async fn demo(qmp: qmp_api::Qmp) -> Result<(), qmp_api::ExecuteError> {
/// use std::time::Duration;
///
/// // Required arguments are parameters; optional ones are set by name.
/// qmp.block_resize(1 << 30).node_name("disk0").await?;
///
/// // Many at once, pipelined on the one connection.
/// let statuses = futures_util::future::try_join_all((0..4).map(|_| qmp.query_status())).await?;
///
/// // Calls own what they need: spawn them.
/// let status = tokio::spawn(qmp.query_status()).await.unwrap()?;
///
/// // Every call can have its own timeout.
/// qmp.query_block().timeout(Some(Duration::from_secs(2))).await?;
/// # Ok(()) }
/// ```
#[must_use = "a command does nothing until it is awaited"]
pub struct Call<C> {
    /// The arguments; the generated setters write them directly (no call per setter), also
    /// those of `qmp-ga`, hence public but hidden: use [`command`](Self::command).
    #[doc(hidden)]
    pub command: C,
    state: CallState,
    /// The server's schema when the client fetched it: checked before sending.
    server: Option<Arc<ServerSchema>>,
}

enum CallState {
    /// Not polled yet: the arguments and options can still change.
    Start(Client, RequestOptions),
    Sent(Request),
    Done,
}

impl<C> Call<C> {
    /// A call of `command` on the connection of `client` (a [`Qmp`] or a `qmp_ga::GuestAgent`;
    /// cloned: one reference-count increment).
    pub fn new(client: &impl CallTarget, command: C) -> Self {
        Call {
            command,
            state: CallState::Start(client.as_ref().clone(), RequestOptions::new()),
            server: client.server_schema(),
        }
    }

    /// The command value (its arguments).
    pub fn command(&self) -> &C {
        &self.command
    }

    /// Takes the command value out without running it.
    pub fn into_command(self) -> C {
        self.command
    }

    fn with(mut self, set: impl FnOnce(RequestOptions) -> RequestOptions) -> Self {
        if let CallState::Start(_, options) = &mut self.state {
            *options = set(std::mem::take(options));
        }
        self
    }

    /// How long this call waits for its reply once sent, instead of the client's
    /// [`command_timeout`](qmp_core::ClientBuilder::command_timeout); `None` waits forever.
    /// On expiry the call fails with [`ExecuteError::Timeout`]; the connection stays usable.
    pub fn timeout(self, timeout: Option<Duration>) -> Self {
        self.with(|o| o.timeout(timeout))
    }
}

impl<C: OobCommand> Call<C> {
    /// Sends the command out of band (`exec-oob`): QEMU runs it at once, even while an in-band
    /// command is still executing (that is what `migrate-pause` and `yank` are for). Needs the
    /// `oob` capability, requested when connecting
    /// ([`ClientBuilder::capabilities`](qmp_core::ClientBuilder::capabilities)); without it
    /// the call fails with [`ExecuteError::OobNotEnabled`] before anything is sent.
    pub fn oob(self) -> Self {
        self.with(RequestOptions::oob)
    }
}

impl<C: FdCommand> Call<C> {
    /// Sends a file descriptor with the command (`SCM_RIGHTS`). It is duplicated now, so you
    /// keep your own. Only unix socket connections can pass descriptors
    /// ([`ExecuteError::FdPassingUnsupported`] otherwise).
    pub fn fd(self, fd: impl AsFd) -> Self {
        self.with(|o| o.fd(fd))
    }

    /// Sends several file descriptors with the command, in order (see [`fd`](Self::fd)).
    pub fn fds<I>(self, fds: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsFd,
    {
        self.with(|o| o.fds(fds))
    }
}

impl<C: Command> Future for Call<C> {
    type Output = Result<C::Output, ExecuteError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                CallState::Start(..) => {
                    let CallState::Start(client, options) =
                        std::mem::replace(&mut this.state, CallState::Done)
                    else {
                        unreachable!("matched Start just above")
                    };
                    if let Some(server) = &this.server {
                        if let Err(e) = check_support(server, C::NAME, &this.command) {
                            return Poll::Ready(Err(e));
                        }
                    }
                    if !C::SUCCESS_REPLY {
                        let sent = client.execute_without_reply(C::NAME, &this.command);
                        return Poll::Ready(sent.and_then(|()| Ok(C::decode("{}")?)));
                    }
                    let request = Request::new(client, C::NAME, &this.command).options(options);
                    this.state = CallState::Sent(request);
                }
                CallState::Sent(request) => {
                    let reply = match Pin::new(request).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(reply) => reply,
                    };
                    this.state = CallState::Done;
                    return Poll::Ready(reply.and_then(|raw| Ok(C::decode(raw.get())?)));
                }
                // As every future: polling after completion is a bug in the caller.
                CallState::Done => {
                    panic!("qmp_api::Call of `{}` polled after it completed", C::NAME)
                }
            }
        }
    }
}

/// [`ExecuteError::Unsupported`] if the server lacks command `name`, or an argument `command`
/// sets (nested ones and enum values too; see [`ServerSchema::find_unsupported`]).
fn check_support<C: Command>(
    server: &ServerSchema,
    name: &str,
    command: &C,
) -> Result<(), ExecuteError> {
    let unsupported = |argument: Option<String>, value: Option<String>| ExecuteError::Unsupported {
        command: name.to_string(),
        argument,
        value,
        server: server.version().to_string(),
    };
    if !server.has_command(name) {
        return Err(unsupported(None, None));
    }
    if C::UNLISTED_ARGUMENTS {
        return Ok(());
    }
    // Serializing fails only for arguments the request would refuse too: leave that to it.
    if let Ok(serde_json::Value::Object(arguments)) = serde_json::to_value(command) {
        if let Some(found) = server.find_unsupported(name, &arguments) {
            return Err(unsupported(Some(found.argument), found.value));
        }
    }
    Ok(())
}

impl<C: std::fmt::Debug> std::fmt::Debug for Call<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            CallState::Start(..) => "unsent",
            CallState::Sent(_) => "sent",
            CallState::Done => "done",
        };
        f.debug_struct("Call")
            .field("command", &self.command)
            .field("state", &state)
            .finish()
    }
}

/// The shared part of every generated call type `$call` (a newtype over [`Call<$cmd>`]):
/// `Future`, `Debug`, `timeout`, and `oob` / `fd` where the command allows them.
#[doc(hidden)]
#[macro_export]
macro_rules! __qmp_call_type {
    ($call:ident, $cmd:ty $(, $extra:ident)*) => {
        impl ::core::future::Future for $call {
            type Output = ::core::result::Result<<$cmd as $crate::Command>::Output, $crate::ExecuteError>;
            #[inline]
            fn poll(
                self: ::core::pin::Pin<&mut Self>,
                cx: &mut ::core::task::Context<'_>,
            ) -> ::core::task::Poll<Self::Output> {
                ::core::future::Future::poll(::core::pin::Pin::new(&mut self.get_mut().0), cx)
            }
        }

        impl ::core::fmt::Debug for $call {
            #[inline]
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Debug::fmt(&self.0, f)
            }
        }

        impl $call {
            /// How long this call waits for its reply once sent, instead of the client's
            /// `command_timeout`; `None` waits forever (see [`Call::timeout`](crate::Call::timeout)).
            #[inline]
            pub fn timeout(self, timeout: ::core::option::Option<::core::time::Duration>) -> Self {
                Self(self.0.timeout(timeout))
            }

            /// The command value: its arguments as they will be sent.
            #[inline]
            pub fn command(&self) -> &$cmd {
                self.0.command()
            }

            /// The generic [`Call`](crate::Call) underneath.
            #[inline]
            pub fn into_call(self) -> $crate::Call<$cmd> {
                self.0
            }
        }

        $( $crate::__qmp_call_type!(@$extra $call, $cmd); )*
    };
    (@oob $call:ident, $cmd:ty) => {
        impl $crate::OobCommand for $cmd {}

        impl $call {
            /// Sends the command out of band (`exec-oob`), past an in-band command that is
            /// still running; needs the `oob` capability (see [`Call::oob`](crate::Call::oob)).
            #[inline]
            pub fn oob(self) -> Self {
                Self(self.0.oob())
            }
        }
    };
    (@fd $call:ident, $cmd:ty) => {
        impl $crate::FdCommand for $cmd {}

        impl $call {
            /// Sends a file descriptor with the command (duplicated: you keep yours); unix
            /// sockets only (see [`Call::fd`](crate::Call::fd)).
            #[inline]
            pub fn fd(self, fd: impl ::std::os::fd::AsFd) -> Self {
                Self(self.0.fd(fd))
            }

            /// Sends several file descriptors with the command, in order (see
            /// [`Call::fds`](crate::Call::fds)).
            pub fn fds<I>(self, fds: I) -> Self
            where
                I: ::core::iter::IntoIterator,
                I::Item: ::std::os::fd::AsFd,
            {
                Self(self.0.fds(fds))
            }
        }
    };
}
