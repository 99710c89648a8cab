//! [`Request`]: one command from encoding to reply, with its [`RequestOptions`] (out of band,
//! file descriptors, timeout); and the `execute` family of [`Client`] built on it.
//!
//! `Request` is a hand-written state machine rather than an `async fn`: it is what every
//! pipelined command keeps alive while it waits, so it holds only what it needs (the encoded
//! request until it is sent, then the reply slot and an optional deadline). It owns a clone of
//! the client (one reference-count increment), so it is `'static` and can be spawned.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::time::Sleep;

use crate::client::{encode, Client};
use crate::connection::{self, Reply, ReplyError};
use crate::error::{DecodeError, ExecuteError};
use crate::slot;

/// Per-call settings: send out of band, attach file descriptors, a timeout of its own.
///
/// The same value configures an untyped [`Request`] ([`Request::options`]) and the typed calls
/// of `qmp-api`, which offer each setting only on the commands that allow it. Unset, a call is
/// in band, carries no descriptors and uses the client's
/// [`command_timeout`](crate::ClientBuilder::command_timeout). Holding no settings costs
/// nothing (no allocation).
///
/// ```no_run
/// # async fn demo(client: qmp_core::Client) -> Result<(), qmp_core::ExecuteError> {
/// use std::time::Duration;
/// use qmp_core::RequestOptions;
///
/// let quick = RequestOptions::new().timeout(Some(Duration::from_secs(2)));
/// let status = client.request("query-status", ()).options(quick).decode::<serde_json::Value>().await?;
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct RequestOptions {
    /// `None` until a setting is made: the common call carries no settings at all.
    set: Option<Box<Settings>>,
}

#[derive(Default)]
struct Settings {
    oob: bool,
    /// `None`: the client's default; `Some(None)`: no timeout.
    timeout: Option<Option<Duration>>,
    fds: Vec<OwnedFd>,
    /// A descriptor that could not be duplicated; reported when the call is polled.
    fd_error: Option<io::Error>,
}

impl RequestOptions {
    /// No settings: in band, no descriptors, the client's timeout.
    pub fn new() -> Self {
        Self::default()
    }

    fn settings(&mut self) -> &mut Settings {
        self.set.get_or_insert_with(Box::default)
    }

    /// Sends the command out of band (`exec-oob`): the server runs it at once, even while an
    /// in-band command is still executing, and its reply may overtake earlier ones. Needs the
    /// `oob` capability ([`ClientBuilder::capabilities`](crate::ClientBuilder::capabilities);
    /// without it the call fails with [`ExecuteError::OobNotEnabled`] before sending) and a
    /// command the schema marks `allow-oob` (e.g. `migrate-pause`, `yank`); QEMU refuses others.
    pub fn oob(mut self) -> Self {
        self.settings().oob = true;
        self
    }

    /// How long this call waits for its reply once sent, instead of the client's
    /// [`command_timeout`](crate::ClientBuilder::command_timeout); `None` waits forever. On
    /// expiry the call fails with [`ExecuteError::Timeout`] and the connection stays usable.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings().timeout = Some(timeout);
        self
    }

    /// Attaches a file descriptor (`SCM_RIGHTS`), for `getfd` and `add-fd`. It is duplicated
    /// now, so the caller keeps its own; the duplicate is closed once sent. Only unix socket
    /// connections can pass descriptors ([`ExecuteError::FdPassingUnsupported`] otherwise); a
    /// failed duplication is reported as [`ExecuteError::Fd`] when the call runs.
    pub fn fd(mut self, fd: impl AsFd) -> Self {
        let settings = self.settings();
        match fd.as_fd().try_clone_to_owned() {
            Ok(owned) => settings.fds.push(owned),
            Err(e) => {
                settings.fd_error.get_or_insert(e);
            }
        }
        self
    }

    /// Attaches several file descriptors, in order (see [`fd`](Self::fd)).
    pub fn fds<I>(self, fds: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsFd,
    {
        fds.into_iter().fold(self, Self::fd)
    }

    /// Whether the call goes out of band.
    pub fn is_oob(&self) -> bool {
        self.set.as_ref().is_some_and(|s| s.oob)
    }

    /// The timeout chosen for this call: `None` if it uses the client's default, `Some(None)`
    /// for no timeout.
    pub fn timeout_setting(&self) -> Option<Option<Duration>> {
        self.set.as_ref().and_then(|s| s.timeout)
    }

    /// How many descriptors are attached.
    pub fn fd_count(&self) -> usize {
        self.set.as_ref().map_or(0, |s| s.fds.len())
    }

    /// Adds every setting made in `other` to these (later settings win; descriptors are
    /// appended).
    fn merge(&mut self, other: RequestOptions) {
        let Some(theirs) = other.set else { return };
        let mine = self.settings();
        mine.oob |= theirs.oob;
        if theirs.timeout.is_some() {
            mine.timeout = theirs.timeout;
        }
        mine.fds.extend(theirs.fds);
        if mine.fd_error.is_none() {
            mine.fd_error = theirs.fd_error;
        }
    }
}

impl fmt::Debug for RequestOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestOptions")
            .field("oob", &self.is_oob())
            .field("timeout", &self.timeout_setting())
            .field("fds", &self.fd_count())
            .finish()
    }
}

/// A command on its way, returned by [`Client::request`]: set options, then `.await` it for
/// the reply's `return` value as unparsed JSON ([`decode`](Self::decode) for a typed value).
///
/// The arguments are encoded at once; nothing is sent until the request is first polled.
/// It owns a handle to the connection, so it is `'static` and `Send`: spawn it, put it in a
/// `join_all`, or race it in `select!`. Dropping it cancels the wait (the command may still run
/// on the server; its reply is discarded). A timeout starts when the command is sent.
///
/// ```no_run
/// # async fn demo(client: qmp_core::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use serde_json::json;
///
/// // Any combination of options: here a descriptor and a timeout.
/// let file = std::fs::File::open("/var/lib/images/disk.qcow2")?;
/// client
///     .request("getfd", json!({"fdname": "disk"}))
///     .fd(&file)
///     .timeout(Some(Duration::from_secs(5)))
///     .await?;
///
/// // Out of band, decoded into a type of your own.
/// #[derive(serde::Deserialize)]
/// struct Instance { r#type: String }
/// let yankable: Vec<Instance> = client.request("query-yank", ()).oob().decode().await?;
///
/// // A spawned request: it owns what it needs.
/// let pending = tokio::spawn(client.request("query-status", ()));
/// let raw = pending.await??;
/// println!("{}", raw.get());
/// # Ok(()) }
/// ```
#[must_use = "a command does nothing until it is awaited"]
pub struct Request {
    client: Client,
    command: Cow<'static, str>,
    state: State,
}

enum State {
    /// Encoded, not yet handed to the connection.
    Unsent {
        text: Vec<u8>,
        name_end: u32,
        options: RequestOptions,
    },
    /// Failed before sending (bad arguments, connection closing).
    Failed(Box<ExecuteError>),
    /// Sent: waiting for the reply (and maybe a deadline, with its duration for the error).
    Waiting {
        rx: slot::Receiver<Reply>,
        deadline: Option<(Pin<Box<Sleep>>, Duration)>,
    },
    /// The result was returned.
    Done,
}

impl Request {
    /// A request of `command` with `arguments` on the connection of `client` (which it keeps).
    /// [`Client::request`] is the usual way to get one; this form takes the handle by value, so
    /// a caller that owns one saves a reference-count increment.
    ///
    /// `arguments` is anything that serializes to a JSON object, or `()` / `None` for none;
    /// anything else fails with [`ExecuteError::InvalidArguments`] when polled.
    pub fn new(
        client: Client,
        command: impl Into<Cow<'static, str>>,
        arguments: impl Serialize,
    ) -> Request {
        let command = command.into();
        let state = if client.is_closing() {
            State::Failed(Box::new(client.disconnected(&command, false)))
        } else {
            match encode(&command, &arguments, false, client.id_digits()) {
                Ok((text, name_end)) => State::Unsent {
                    text,
                    name_end,
                    options: RequestOptions::default(),
                },
                Err(e) => State::Failed(Box::new(e)),
            }
        };
        Request {
            client,
            command,
            state,
        }
    }

    /// The command's name.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Applies `options` (see [`RequestOptions`]); settings made earlier on this request stay
    /// unless `options` sets them too. Ignored once the request was polled.
    pub fn options(mut self, options: RequestOptions) -> Self {
        if let State::Unsent { options: mine, .. } = &mut self.state {
            mine.merge(options);
        }
        self
    }

    fn with(mut self, set: impl FnOnce(RequestOptions) -> RequestOptions) -> Self {
        if let State::Unsent { options, .. } = &mut self.state {
            *options = set(std::mem::take(options));
        }
        self
    }

    /// Sends the command out of band (see [`RequestOptions::oob`]).
    pub fn oob(self) -> Self {
        self.with(RequestOptions::oob)
    }

    /// This call's own timeout (see [`RequestOptions::timeout`]).
    pub fn timeout(self, timeout: Option<Duration>) -> Self {
        self.with(|o| o.timeout(timeout))
    }

    /// Attaches a file descriptor (see [`RequestOptions::fd`]).
    pub fn fd(self, fd: impl AsFd) -> Self {
        self.with(|o| o.fd(fd))
    }

    /// Attaches several file descriptors (see [`RequestOptions::fds`]).
    pub fn fds<I>(self, fds: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsFd,
    {
        self.with(|o| o.fds(fds))
    }

    /// Runs the request and decodes its `return` value into `T` (a [`Value`], or a type of your
    /// own). A mismatch is an [`ExecuteError::Decode`] naming the command and the path of the
    /// offending field.
    pub async fn decode<T: DeserializeOwned>(self) -> Result<T, ExecuteError> {
        let command = self.command.clone();
        let raw = self.await?;
        Ok(DecodeError::decode(&command, raw.get())?)
    }

    /// Hands the command to the connection task; on success the request waits for its reply.
    fn send(
        &mut self,
        text: Vec<u8>,
        name_end: u32,
        options: RequestOptions,
    ) -> Result<(), ExecuteError> {
        let command = || self.command.to_string();
        let settings = options.set.map(|s| *s).unwrap_or_default();
        if let Some(error) = settings.fd_error {
            return Err(ExecuteError::Fd {
                command: command(),
                error,
            });
        }
        if settings.oob && !self.client.oob_enabled() {
            return Err(ExecuteError::OobNotEnabled { command: command() });
        }
        if !settings.fds.is_empty() && !self.client.can_pass_fds() {
            return Err(ExecuteError::FdPassingUnsupported { command: command() });
        }
        let (text, name_end) = if settings.oob {
            to_oob(text, name_end)
        } else {
            (text, name_end)
        };
        let (reply, rx) = slot::slot();
        let request = connection::Request {
            text,
            name_end,
            oob: settings.oob,
            fds: settings.fds.into_boxed_slice(),
            reply,
        };
        self.client.submit(request, &self.command)?;
        let after = match settings.timeout {
            Some(chosen) => chosen,
            None => self.client.command_timeout(),
        };
        let deadline = after.map(|after| (Box::pin(tokio::time::sleep(after)), after));
        self.state = State::Waiting { rx, deadline };
        Ok(())
    }

    fn finish(&self, reply: Result<Reply, ()>) -> Result<Box<RawValue>, ExecuteError> {
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
            Err(()) => Err(self.client.disconnected(&self.command, true)),
        }
    }
}

/// Turns `{"execute":NAME...` into `{"exec-oob":NAME...` (one byte longer).
fn to_oob(mut text: Vec<u8>, name_end: u32) -> (Vec<u8>, u32) {
    const IN_BAND: &[u8] = b"{\"execute\":";
    const OOB: &[u8] = b"{\"exec-oob\":";
    if text.starts_with(IN_BAND) {
        text.splice(..IN_BAND.len(), OOB.iter().copied());
        (text, name_end + 1)
    } else {
        (text, name_end)
    }
}

impl Future for Request {
    type Output = Result<Box<RawValue>, ExecuteError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Unsent { .. } => {
                    let State::Unsent {
                        text,
                        name_end,
                        options,
                    } = std::mem::replace(&mut this.state, State::Done)
                    else {
                        unreachable!("matched Unsent just above")
                    };
                    if let Err(e) = this.send(text, name_end, options) {
                        return Poll::Ready(Err(e));
                    }
                }
                State::Failed(_) => {
                    let State::Failed(e) = std::mem::replace(&mut this.state, State::Done) else {
                        unreachable!("matched Failed just above")
                    };
                    return Poll::Ready(Err(*e));
                }
                State::Waiting { rx, deadline } => {
                    if let Poll::Ready(reply) = Pin::new(rx).poll(cx) {
                        this.state = State::Done;
                        return Poll::Ready(this.finish(reply));
                    }
                    if let Some((sleep, after)) = deadline {
                        if sleep.as_mut().poll(cx).is_ready() {
                            let after = *after;
                            this.state = State::Done;
                            return Poll::Ready(Err(ExecuteError::Timeout {
                                command: this.command.to_string(),
                                after,
                            }));
                        }
                    }
                    return Poll::Pending;
                }
                // As every future: polling after completion is a bug in the caller.
                State::Done => panic!(
                    "qmp_core::Request for `{}` polled after it completed",
                    this.command
                ),
            }
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Request");
        d.field("command", &self.command);
        match &self.state {
            State::Unsent { options, .. } => d.field("state", &"unsent").field("options", options),
            State::Failed(e) => d.field("state", &"failed").field("error", e),
            State::Waiting { .. } => d.field("state", &"waiting"),
            State::Done => d.field("state", &"done"),
        };
        d.finish()
    }
}

/// The `execute` family: every way to run a command is a [`Request`] underneath.
impl Client {
    /// A request of `command` with `arguments`, to configure (out of band, descriptors, a
    /// timeout: see [`Request`]) and await. It resolves to the `return` value as unparsed JSON;
    /// [`Request::decode`] decodes it.
    ///
    /// `arguments` is anything that serializes to a JSON object (a struct, a map,
    /// `serde_json::json!({...})`), or `()` / `None` for none.
    ///
    /// ```no_run
    /// # async fn demo(client: qmp_core::Client) -> Result<(), qmp_core::ExecuteError> {
    /// let raw = client.request("query-status", ()).await?;
    /// assert!(raw.get().contains("running"));
    /// let paused = client.request("migrate-pause", ()).oob().await;
    /// # Ok(()) }
    /// ```
    pub fn request(
        &self,
        command: impl Into<Cow<'static, str>>,
        arguments: impl Serialize,
    ) -> Request {
        Request::new(self.clone(), command, arguments)
    }

    /// Runs `command` and returns its `return` value: short for
    /// `request(command, arguments).decode::<Value>()`.
    ///
    /// `arguments` is anything that serializes to a JSON object (a struct, a map,
    /// `serde_json::json!({...})`), or `()` / `None` for none.
    ///
    /// ```no_run
    /// # async fn demo(client: qmp_core::Client) -> Result<(), qmp_core::ExecuteError> {
    /// let list = client.execute("qom-list", serde_json::json!({"path": "/machine"})).await?;
    /// match client.execute("no-such-command", ()).await {
    ///     Err(e) if e.qmp_error().is_some_and(|e| e.is_command_not_found()) => {}
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn execute(
        &self,
        command: &str,
        arguments: impl Serialize,
    ) -> Result<Value, ExecuteError> {
        self.execute_as(command, arguments).await
    }

    /// Runs `command` and decodes its `return` value straight into `T` (no intermediate
    /// [`Value`]): short for `request(command, arguments).decode::<T>()`. A mismatch is an
    /// [`ExecuteError::Decode`] naming the command and the path of the offending field.
    ///
    /// ```no_run
    /// # async fn demo(client: qmp_core::Client) -> Result<(), qmp_core::ExecuteError> {
    /// #[derive(serde::Deserialize)]
    /// struct Status { running: bool, status: String }
    /// let s: Status = client.execute_as("query-status", ()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute_as<T: DeserializeOwned>(
        &self,
        command: &str,
        arguments: impl Serialize,
    ) -> Result<T, ExecuteError> {
        let raw = self.request(command.to_owned(), arguments).await?;
        Ok(DecodeError::decode(command, raw.get())?)
    }

    /// Runs `command` and returns its `return` value as unparsed JSON text, for callers that
    /// decode it themselves: short for [`request`](Self::request) without options.
    pub fn execute_raw(
        &self,
        command: impl Into<Cow<'static, str>>,
        arguments: impl Serialize,
    ) -> Request {
        self.request(command, arguments)
    }

    /// Sends a command whose success QEMU does not answer (`success-response: false` in the
    /// schema; the guest agent's `guest-shutdown` and `guest-suspend-*`). Returns once the
    /// command is handed to the connection; an error reply, if any, is logged and discarded.
    pub fn execute_without_reply(
        &self,
        command: &str,
        arguments: impl Serialize,
    ) -> Result<(), ExecuteError> {
        if self.is_closing() {
            return Err(self.disconnected(command, false));
        }
        let (text, name_end) = encode(command, &arguments, false, self.id_digits())?;
        let (reply, rx) = slot::slot();
        drop(rx);
        let request = connection::Request {
            text,
            name_end,
            oob: false,
            fds: Box::default(),
            reply,
        };
        self.submit(request, command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oob_rewrites_the_key_and_keeps_the_name() {
        let (text, end) = encode("migrate-pause", &(), false, 6).unwrap();
        let (oob, oob_end) = to_oob(text, end);
        assert_eq!(oob, b"{\"exec-oob\":\"migrate-pause\"");
        assert_eq!(&oob[13..oob_end as usize], b"migrate-pause");
        let (text, end) = encode("yank", &serde_json::json!({"instances": []}), false, 6).unwrap();
        let (oob, _) = to_oob(text, end);
        assert_eq!(
            oob,
            b"{\"exec-oob\":\"yank\",\"arguments\":{\"instances\":[]}"
        );
    }

    #[test]
    fn options_cost_nothing_until_set_and_merge() {
        let none = RequestOptions::new();
        assert!(none.set.is_none());
        assert!(!none.is_oob() && none.timeout_setting().is_none() && none.fd_count() == 0);
        let file = std::fs::File::open("/dev/null").unwrap();
        let mut a = RequestOptions::new()
            .timeout(Some(Duration::from_secs(1)))
            .fd(&file);
        a.merge(
            RequestOptions::new()
                .oob()
                .timeout(None)
                .fds([&file, &file]),
        );
        assert!(a.is_oob());
        assert_eq!(a.timeout_setting(), Some(None));
        assert_eq!(a.fd_count(), 3);
        a.merge(RequestOptions::new());
        assert_eq!(a.fd_count(), 3);
    }
}
