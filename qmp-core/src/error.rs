//! Error types, one per operation: [`ConnectError`] for connecting and negotiating,
//! [`ExecuteError`] for running a command, [`EventError`] for event streams.
//!
//! Errors the server reports about a command are kept verbatim in [`QmpError`]; faults of the
//! byte stream itself are [`ProtocolError`]s; why a connection ended is a [`DisconnectReason`].

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// An error reply from the server: `{"error": {"class": ..., "desc": ...}}`.
///
/// `class` is one of QEMU's error classes (`GenericError`, `CommandNotFound`, `DeviceNotActive`,
/// `DeviceNotFound`, `KVMMissingCap`) or a class this library does not know yet; it is kept as a
/// string so that a newer QEMU never breaks decoding. Do not parse `desc`: it is meant for humans
/// and changes between QEMU versions.
///
/// ```
/// # use qmp_core::QmpError;
/// let err = QmpError::new("CommandNotFound", "The command nope has not been found");
/// assert!(err.is_command_not_found());
/// assert_eq!(err.to_string(), "CommandNotFound: The command nope has not been found");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QmpError {
    /// The error class, e.g. `GenericError`.
    pub class: String,
    /// The human-readable description.
    pub desc: String,
    /// The whole reply as the server sent it (without the trailing newline), for logs and for
    /// members this library does not model. Empty for errors built with [`QmpError::new`].
    pub raw: String,
}

impl QmpError {
    /// Builds an error from its class and description (mostly useful in tests).
    pub fn new(class: impl Into<String>, desc: impl Into<String>) -> Self {
        QmpError {
            class: class.into(),
            desc: desc.into(),
            raw: String::new(),
        }
    }

    /// True for `CommandNotFound`: the command does not exist in this QEMU (an older version, a
    /// build without the feature, or a command hidden by `-compat`), or capabilities negotiation
    /// is not complete.
    pub fn is_command_not_found(&self) -> bool {
        self.class == "CommandNotFound"
    }

    /// True for `GenericError`, the class of most errors.
    pub fn is_generic(&self) -> bool {
        self.class == "GenericError"
    }
}

impl fmt::Display for QmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.desc)
    }
}

impl std::error::Error for QmpError {}

/// A fault in the byte stream or message structure received from the server.
///
/// Framing faults (anything that leaves the stream unreadable) end the connection; the error
/// then reaches every pending call as [`DisconnectReason::Protocol`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A message grew beyond the configured maximum size before it ended.
    #[error(
        "the server sent a message larger than the limit of {limit} bytes; \
         raise it with ClientBuilder::max_message_size if this is expected"
    )]
    MessageTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// A message nested objects/arrays deeper than the configured limit.
    #[error("the server sent JSON nested deeper than {limit} levels")]
    TooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// A byte that cannot start a message (QMP messages are JSON objects).
    #[error(
        "expected a JSON object from the server, found byte 0x{byte:02x} at stream offset {offset}"
    )]
    UnexpectedByte {
        /// The offending byte.
        byte: u8,
        /// Its offset in the stream, counted from the start of the connection.
        offset: u64,
    },
    /// A message that is not valid UTF-8.
    #[error("the server sent invalid UTF-8 at byte {position} of a message: {excerpt}")]
    InvalidUtf8 {
        /// Offset of the first invalid byte inside the message.
        position: usize,
        /// The start of the message, lossily decoded, for diagnosis.
        excerpt: String,
    },
    /// A message that is not valid JSON.
    #[error("the server sent invalid JSON ({reason}): {excerpt}")]
    InvalidJson {
        /// What the JSON parser reported.
        reason: String,
        /// The start of the message, for diagnosis.
        excerpt: String,
    },
    /// The server closed the connection in the middle of a message.
    #[error("the server closed the connection in the middle of a message ({received} bytes of it received)")]
    TruncatedMessage {
        /// How much of the message had arrived.
        received: usize,
    },
    /// A well-formed JSON message whose structure does not fit the protocol.
    #[error("unexpected message from the server ({reason}): {excerpt}")]
    UnexpectedMessage {
        /// What is wrong with it.
        reason: String,
        /// The start of the message, for diagnosis.
        excerpt: String,
    },
}

/// Why a connection ended. Shared (behind an [`Arc`]) by every error that reports it.
///
/// A QEMU that exits after `quit` often resets the socket instead of closing it. Once the
/// client has seen the `quit` reply or a `SHUTDOWN` event, an end of stream, a reset or a
/// broken pipe is therefore [`ServerShutDown`](Self::ServerShutDown), the orderly end; the
/// same faults without that notice are [`ServerClosed`](Self::ServerClosed) or
/// [`Io`](Self::Io), as for a server that was killed.
///
/// Everything the server sent before the end is delivered first, also when a write failed
/// because the server had already closed its side: replies reach their callers and events
/// their streams, then the connection reports why it ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The server closed the connection (end of stream) without announcing a shutdown.
    #[error("the server closed the connection")]
    ServerClosed,
    /// The server shut down: it had answered `quit` or sent a `SHUTDOWN` event (not followed
    /// by `RESUME`, as when a guest shuts down under `-no-shutdown` and is restarted), then
    /// closed or reset the connection. The normal end of a QEMU told to quit.
    #[error("the server shut down (after `quit` or a SHUTDOWN event) and closed the connection")]
    ServerShutDown,
    /// Reading from or writing to the socket failed.
    #[error("connection I/O failed: {0}")]
    Io(io::Error),
    /// The server sent something unreadable; see [`ProtocolError`].
    #[error("protocol error: {0}")]
    Protocol(ProtocolError),
    /// The connection was closed on this side ([`Client::close`](crate::Client::close), or
    /// every [`Client`](crate::Client) handle was dropped).
    #[error("the connection was closed by the client")]
    ClientClosed,
}

/// Errors from connecting, accepting, reading the greeting, or negotiating capabilities.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// Opening the socket failed (not found, refused, listen queue full, permission denied...).
    /// The message says what the error means for a QMP socket and what to try.
    #[error("cannot connect to {target}: {error}; {}", connect_hint(error))]
    Connect {
        /// The address or path tried.
        target: String,
        /// The underlying error.
        error: io::Error,
    },
    /// The TLS handshake failed (untrusted or mismatched certificate, protocol error...).
    #[error("TLS handshake with {target} failed: {error}; check the CA the client trusts and the server name")]
    Tls {
        /// The address tried.
        target: String,
        /// What rustls reported.
        error: io::Error,
    },
    /// Waiting for a peer on a listener failed.
    #[error("accepting a QMP connection on {target} failed: {error}")]
    Accept {
        /// The listener's address or path.
        target: String,
        /// The underlying error.
        error: io::Error,
    },
    /// The whole connect (or accept) plus handshake did not finish in time.
    #[error("timed out after {after:?} while {stage}")]
    Timeout {
        /// What was being waited for.
        stage: &'static str,
        /// The configured timeout.
        after: Duration,
    },
    /// The server closed the connection before sending its greeting (another client may hold the
    /// monitor: a QMP socket serves one client at a time).
    #[error("the server closed the connection before its greeting; is another client connected to this monitor? (A QEMU guest agent sends no greeting: connect to one with ClientBuilder::guest_agent)")]
    ClosedBeforeGreeting,
    /// The first message was not a usable QMP greeting.
    #[error("malformed QMP greeting ({reason}): {excerpt}")]
    MalformedGreeting {
        /// What is wrong with it.
        reason: String,
        /// The start of what was received.
        excerpt: String,
    },
    /// The server refused `qmp_capabilities`.
    #[error("the server refused capabilities negotiation: {0}")]
    NegotiationRefused(QmpError),
    /// Resynchronising with a guest agent failed (see
    /// [`ClientBuilder::guest_agent`](crate::ClientBuilder::guest_agent)).
    #[error("cannot synchronise with the guest agent: {reason}")]
    GuestAgentSync {
        /// What went wrong.
        reason: String,
    },
    /// The stream failed during the handshake.
    #[error("I/O error during the QMP handshake: {0}")]
    Io(io::Error),
    /// The server sent unreadable data during the handshake.
    #[error("protocol error during the QMP handshake: {0}")]
    Protocol(ProtocolError),
    /// A blocking connect (`qmp_api::blocking`) could not wait here; nothing was opened.
    #[error(transparent)]
    Blocking(#[from] BlockingError),
}

/// Errors from [`Client::execute`](crate::Client::execute) and its siblings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecuteError {
    /// A guest agent operation on a QMP connection (see
    /// [`ClientBuilder::guest_agent`](crate::ClientBuilder::guest_agent)).
    #[error("{command}: this connection is not to a guest agent (connect with ClientBuilder::guest_agent)")]
    NotGuestAgent {
        /// The operation.
        command: String,
    },
    /// The server answered with an error.
    #[error("{command} failed: {error}")]
    Qmp {
        /// The command that failed.
        command: String,
        /// The server's error.
        error: QmpError,
    },
    /// The server answered commands sent after this one but never this one, so its reply
    /// will not come. QEMU answers in-band commands in the order it receives them, and
    /// out-of-band ones as soon as it reads them, so a reply to a later command (a later
    /// in-band one, for an in-band command) proves that this one was dropped. That happens
    /// when the server could not parse the command: it then sends errors without an `id`,
    /// and the first of those that arrived while this command was the oldest one waiting is
    /// kept here. (This client refuses what QEMU's parser rejects before sending it, see
    /// [`ExceedsJsonLimit`](Self::ExceedsJsonLimit), so with QEMU this points at a fault
    /// elsewhere.)
    #[error("{command}: the server answered later commands but never this one{}", unanswered_detail(server_error.as_ref(), *errors_without_id))]
    Unanswered {
        /// The command.
        command: String,
        /// The first error without an `id` that arrived while this command was the oldest
        /// one waiting, if any: most likely the server's verdict on it.
        server_error: Option<QmpError>,
        /// How many errors without an `id` arrived meanwhile (0 when `server_error` is
        /// `None`).
        errors_without_id: u64,
    },
    /// The command was not sent: QEMU's JSON parser would reject it. QEMU would answer with
    /// errors that carry no `id` (one for each fragment of the rejected text) and never run
    /// the command, so the client refuses it before sending. Split the work into smaller
    /// commands, or pass large data another way (a file, an fd).
    #[error("{command}: not sent: {limit}")]
    ExceedsJsonLimit {
        /// The command.
        command: String,
        /// Which rule of QEMU's parser the command breaks.
        limit: JsonLimit,
    },
    /// The connection ended before the reply arrived, or had already ended.
    #[error("{command}: not answered, the connection is gone ({reason}); {}", if *sent { "the command was sent and may have run" } else { "the command was never sent" })]
    Disconnected {
        /// The command that was not answered.
        command: String,
        /// Why the connection ended.
        reason: Arc<DisconnectReason>,
        /// Whether the command was handed to the socket. `false`: it never left this process,
        /// so it certainly did not run (safe to retry on a new connection). `true`: the server
        /// may have received and run it; check the VM's state before retrying.
        sent: bool,
    },
    /// No reply within the configured command timeout. The connection stays usable; a late
    /// reply is discarded.
    #[error("{command}: no reply within {after:?}")]
    Timeout {
        /// The command.
        command: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The arguments could not be serialized, or did not serialize to a JSON object.
    #[error("{command}: invalid arguments: {reason}")]
    InvalidArguments {
        /// The command.
        command: String,
        /// What is wrong.
        reason: String,
    },
    /// The reply could not be decoded into the requested type.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The reply was valid JSON but not a valid reply (for example `error` without `class`).
    #[error("{command}: malformed reply: {error}")]
    MalformedReply {
        /// The command.
        command: String,
        /// What is wrong.
        error: ProtocolError,
    },
    /// `exec-oob` was used but the `oob` capability is not enabled on this connection. Request
    /// it with [`ClientBuilder::capabilities`](crate::ClientBuilder::capabilities); the server
    /// offers it only for monitors on a socket chardev.
    #[error(
        "{command}: exec-oob needs the oob capability, which is not enabled on this connection"
    )]
    OobNotEnabled {
        /// The command.
        command: String,
    },
    /// File descriptors were attached but this transport cannot carry them (only unix sockets
    /// can).
    #[error("{command}: file descriptors can only be passed over a unix socket")]
    FdPassingUnsupported {
        /// The command.
        command: String,
    },
    /// Duplicating a file descriptor to pass failed.
    #[error("{command}: cannot duplicate a file descriptor to pass: {error}")]
    Fd {
        /// The command.
        command: String,
        /// The underlying error.
        error: io::Error,
    },
    /// The server does not have this command, one of the arguments given, or the enum value
    /// given for one, as its `query-qmp-schema` says (checked only once the typed client has
    /// fetched it: `qmp_api::Qmp::server_schema`). Nothing was sent.
    #[error(
        "{}{}{command} is not supported by the server (QEMU {server}, per its query-qmp-schema); \
         nothing was sent",
        value.as_ref().map(|v| format!("value {v:?} of ")).unwrap_or_default(),
        argument.as_ref().map(|a| format!("argument `{a}` of ")).unwrap_or_default()
    )]
    Unsupported {
        /// The command.
        command: String,
        /// The argument the server does not know, dotted for a nested member
        /// (`target.copy-mode`); `None` when the command itself is missing.
        argument: Option<String>,
        /// The enum value of `argument` the server does not know (`"bitmap"`), when the
        /// argument itself is known.
        value: Option<String>,
        /// The server's QEMU version, from its greeting (`7.2.0`).
        server: String,
    },
    /// A blocking call (`qmp_api::blocking`) could not wait here; nothing was sent.
    #[error(transparent)]
    Blocking(#[from] BlockingError),
}

impl ExecuteError {
    /// The server's error, when the server answered with one.
    pub fn qmp_error(&self) -> Option<&QmpError> {
        match self {
            ExecuteError::Qmp { error, .. } => Some(error),
            _ => None,
        }
    }

    /// True when the call failed before sending because the server lacks the command or an
    /// argument ([`ExecuteError::Unsupported`]).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, ExecuteError::Unsupported { .. })
    }

    /// True when the call failed because the connection is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, ExecuteError::Disconnected { .. })
    }

    /// Whether the command may have reached the server (and so may have run). `false` means
    /// it certainly did not leave this process: it failed before sending (bad arguments, a
    /// [`JsonLimit`], the connection already gone) or its bytes never reached the socket,
    /// so it is safe to retry on a new connection.
    ///
    /// ```
    /// # use qmp_core::{ExecuteError, JsonLimit};
    /// let e = ExecuteError::ExceedsJsonLimit {
    ///     command: "qom-list".into(),
    ///     limit: JsonLimit::NestingDepth { depth: 1102, limit: 1024 },
    /// };
    /// assert!(!e.was_sent());
    /// ```
    pub fn was_sent(&self) -> bool {
        match self {
            ExecuteError::Qmp { .. }
            | ExecuteError::Unanswered { .. }
            | ExecuteError::Timeout { .. }
            | ExecuteError::Decode(_)
            | ExecuteError::MalformedReply { .. } => true,
            ExecuteError::Disconnected { sent, .. } => *sent,
            ExecuteError::ExceedsJsonLimit { .. }
            | ExecuteError::InvalidArguments { .. }
            | ExecuteError::OobNotEnabled { .. }
            | ExecuteError::FdPassingUnsupported { .. }
            | ExecuteError::Fd { .. }
            | ExecuteError::Unsupported { .. }
            | ExecuteError::Blocking(_)
            | ExecuteError::NotGuestAgent { .. } => false,
        }
    }
}

/// A rule of QEMU's JSON parser that a command would break, from
/// [`ExecuteError::ExceedsJsonLimit`]. The limits are QEMU's (`qobject/json-streamer.c`, the
/// same in QEMU 7.2 and 10.0); they apply to the whole command as sent, `{"execute": ...}`
/// included.
///
/// ```
/// # use qmp_core::JsonLimit;
/// let limit = JsonLimit::NestingDepth { depth: 1102, limit: 1024 };
/// assert!(limit.to_string().contains("1024"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonLimit {
    /// Objects and arrays nest deeper than QEMU accepts (1024 levels, the command object
    /// being the first, so arguments may nest 1022 levels below their own object).
    #[error("it nests {depth} levels of objects and arrays, beyond the {limit} levels QEMU's JSON parser accepts (the command object counts as one)")]
    NestingDepth {
        /// How deep the command nests, the command object counting as level 1.
        depth: usize,
        /// QEMU's limit (1024).
        limit: usize,
    },
    /// The command has more JSON tokens than QEMU accepts in one message (2,097,152). A
    /// token is a bracket, a brace, a colon, a comma, a string, a number or a keyword.
    #[error(
        "it has {count} JSON tokens, beyond the {limit} QEMU's JSON parser accepts in one message"
    )]
    TokenCount {
        /// Tokens in the command.
        count: usize,
        /// QEMU's limit (2^21).
        limit: usize,
    },
    /// The command's tokens add up to more bytes than QEMU accepts in one message
    /// (64 MiB - 1; whitespace between tokens does not count).
    #[error("its JSON tokens add up to {bytes} bytes, beyond the {limit} QEMU's JSON parser accepts in one message")]
    TokenSize {
        /// Total size of the command's tokens, in bytes.
        bytes: usize,
        /// QEMU's limit (2^26 - 1 bytes).
        limit: usize,
    },
    /// A string holds a character QEMU's parser refuses: a Unicode noncharacter (U+FDD0 to
    /// U+FDEF, U+FFFE, U+FFFF and their counterparts in every plane) or an unpaired
    /// surrogate (escaped as `\uD800`, possible in a raw JSON value).
    #[error("a string holds U+{code_point:04X}, which QEMU's JSON parser refuses (it accepts no Unicode noncharacter or unpaired surrogate)")]
    InvalidCharacter {
        /// The refused character.
        code_point: u32,
    },
}

fn unanswered_detail(first: Option<&QmpError>, count: u64) -> String {
    match (first, count) {
        (None, _) => String::new(),
        (Some(e), 0 | 1) => format!(
            "; meanwhile it sent an error without an id, most likely about this command: {e}"
        ),
        (Some(e), n) => format!(
            "; meanwhile it sent {n} errors without an id, most likely about this command; the first: {e}"
        ),
    }
}

/// What a failed `connect(2)` to a QMP socket means, and what to try.
fn connect_hint(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::WouldBlock => {
            "the socket's listen queue is full: QEMU is not accepting connections yet, or other \
             clients are already waiting for this monitor (it serves one client at a time); \
             retry later, or let ClientBuilder::wait_for_server(true) retry until the timeout"
        }
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
            "is QEMU running with -qmp pointing there (or, for a guest agent, qemu-ga with \
             -m unix-listen -p, or QEMU's chardev for the agent)? For a server that is still \
             starting, ClientBuilder::wait_for_server(true) retries until the socket accepts, \
             and for QMP accept mode (Listener, QEMU connecting to you) avoids the race \
             altogether"
        }
        io::ErrorKind::PermissionDenied => {
            "check the socket's permissions (QEMU creates it with the mode its umask allows)"
        }
        _ => "is QEMU running with -qmp pointing there (or qemu-ga, for a guest agent)?",
    }
}

/// A reply (or event data) that does not match the type it was decoded into.
///
/// Names the command (or event), the JSON path of the offending field, and keeps the raw JSON.
///
/// ```
/// # use qmp_core::DecodeError;
/// #[derive(serde::Deserialize, Debug)]
/// struct Status { running: bool }
/// let err = DecodeError::decode::<Status>("query-status", r#"{"running": "yes"}"#).unwrap_err();
/// assert_eq!(err.path, "running");
/// assert!(err.to_string().contains("query-status"));
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot decode the data of {context} at `{path}`: {message}")]
pub struct DecodeError {
    /// The command or event whose data failed to decode.
    pub context: String,
    /// The path of the offending value, e.g. `[3].inserted.image.format` (`.` for the root).
    pub path: String,
    /// What the decoder reported.
    pub message: String,
    /// The JSON that was being decoded.
    pub raw: String,
}

impl DecodeError {
    /// Decodes `json` as `T`; on failure, decodes again while tracking the path so the error can
    /// name the offending field. The success path pays nothing for the path tracking.
    pub fn decode<T: serde::de::DeserializeOwned>(context: &str, json: &str) -> Result<T, Self> {
        match serde_json::from_str::<T>(json) {
            Ok(v) => Ok(v),
            Err(first) => Err(Self::locate::<T>(context, json, first)),
        }
    }

    fn locate<T: serde::de::DeserializeOwned>(
        context: &str,
        json: &str,
        first: serde_json::Error,
    ) -> Self {
        let (path, message) = match Locating::enter(|| tracked::<T>(json)) {
            Ok(_) => (".".to_string(), first.to_string()),
            Err(located) => located,
        };
        DecodeError {
            context: context.to_string(),
            path,
            message,
            raw: json.to_string(),
        }
    }

    /// Decodes part of a value again, for hand-written `Deserialize` impls (unions and
    /// alternates of the generated API, which look at their input twice). The error text carries
    /// the path inside the part, for the outer [`DecodeError`] to join to its own.
    ///
    /// Normally a plain, fast decode. While a failed decode is being located (the second pass of
    /// [`DecodeError::decode`]), a single path-tracking decode instead: so each nested part is
    /// decoded a bounded number of times however deep the nesting (a decode per part and pass,
    /// not one that doubles with every level).
    #[doc(hidden)]
    pub fn decode_part<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, String> {
        if Locating::active() {
            tracked::<T>(json).map_err(|(path, message)| Self::nested(&path, &message))
        } else {
            serde_json::from_str(json).map_err(|e| e.to_string())
        }
    }
}

/// Decodes with path tracking; on failure, the full path (joined with any nested path reported
/// by an inner part) and the message.
fn tracked<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, (String, String)> {
    let mut de = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        // A part decoded on its own (a union branch, say) reports its inner path in its
        // message; join it to the outer one.
        match message
            .strip_prefix(NESTED_PATH_MARK)
            .and_then(|m| m.split_once(NESTED_PATH_MARK))
        {
            Some((inner, rest)) => (join_path(&path, inner), rest.to_string()),
            None => (path, message),
        }
    })
}

thread_local! {
    static LOCATING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the current thread as running the path-locating pass of a failed decode.
struct Locating;

impl Locating {
    fn active() -> bool {
        LOCATING.with(|l| l.get())
    }

    fn enter<R>(f: impl FnOnce() -> R) -> R {
        let outer = LOCATING.with(|l| l.replace(true));
        // Restored even if `f` unwinds.
        struct Restore(bool);
        impl Drop for Restore {
            fn drop(&mut self) {
                LOCATING.with(|l| l.set(self.0));
            }
        }
        let _restore = Restore(outer);
        f()
    }
}

/// Marks a path inside an error message produced by [`DecodeError::nested`]; `\u{1}` cannot
/// occur in a QMP member name.
const NESTED_PATH_MARK: char = '\u{1}';

impl DecodeError {
    /// Formats the failure of decoding an inner value (at `path`, relative to the value being
    /// decoded) so that the outer decode reports the full path. For types with hand-written
    /// `Deserialize` impls that parse part of their input again.
    pub fn nested(path: &str, message: &str) -> String {
        format!("{NESTED_PATH_MARK}{path}{NESTED_PATH_MARK}{message}")
    }
}

fn join_path(outer: &str, inner: &str) -> String {
    match (outer, inner) {
        (".", i) => i.to_string(),
        (o, ".") => o.to_string(),
        (o, i) if i.starts_with('[') => format!("{o}{i}"),
        (o, i) => format!("{o}.{i}"),
    }
}

/// An event stream could not deliver the next event.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The subscriber fell behind its bounded buffer and this many events were dropped (the
    /// oldest ones). The stream goes on with the newest events.
    #[error("{count} events were missed because the subscriber fell behind")]
    Missed {
        /// How many events were dropped.
        count: u64,
    },
    /// The connection ended; the stream yields nothing after this.
    #[error("the connection ended: {0}")]
    Disconnected(Arc<DisconnectReason>),
    /// A known event whose data does not match its schema (yielded by typed streams, such as
    /// qmp-api's; the raw JSON is in the error). The stream goes on.
    #[error(transparent)]
    Decode(DecodeError),
}

/// Why a blocking call (the synchronous facade `qmp_api::blocking`) did not wait for its
/// result. Nothing was sent.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BlockingError {
    /// The call was made on a thread that runs async tasks (inside `#[tokio::main]`, a
    /// `tokio::spawn`ed task, a runtime's `block_on`), where waiting would stall every task of
    /// that thread, possibly the very one that would deliver the reply. In async code, `.await`
    /// the call; to keep blocking code, run it in `tokio::task::spawn_blocking` or a thread of
    /// its own.
    #[error(
        "a blocking QMP call was made inside an async task, where waiting would stall the \
         runtime; .await it there instead, or run the blocking code in \
         tokio::task::spawn_blocking or on a thread of its own"
    )]
    InAsyncContext,
    /// The background runtime that blocking calls run on could not be started (no thread or
    /// no event loop could be created: the process is out of resources).
    #[error("cannot start the background runtime for blocking QMP calls: {0}")]
    Runtime(Arc<io::Error>),
}

/// Errors from binding a [`Listener`](crate::Listener).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// The path exists and is not a socket; it is never replaced.
    #[error("{path} exists and is not a socket; refusing to replace it")]
    PathExists {
        /// The path.
        path: String,
    },
    /// Binding or setting permissions failed.
    #[error("cannot listen on {target}: {error}")]
    Io {
        /// The path or address.
        target: String,
        /// The underlying error.
        error: io::Error,
    },
    /// There is no current tokio runtime and the shared background one could not be started
    /// (the process is out of threads or file descriptors).
    #[error("cannot start the background runtime to serve from: {0}")]
    Runtime(Arc<io::Error>),
}

/// Shortens a message for inclusion in an error: at most `MAX` characters, lossily decoded.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 200;
    let cut = bytes.len().min(MAX);
    let mut s = String::from_utf8_lossy(&bytes[..cut]).into_owned();
    if bytes.len() > MAX {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole chain as error reporters print it (anyhow's `{:#}`, tracing's error fields).
    fn chain(e: &dyn std::error::Error) -> String {
        let mut text = e.to_string();
        let mut next = e.source();
        while let Some(cause) = next {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            next = cause.source();
        }
        text
    }

    /// An error either says its cause or returns it from `source()`, never both, so that no
    /// reporter prints a cause twice.
    #[test]
    fn no_cause_is_printed_twice() {
        let io = || io::Error::new(io::ErrorKind::NotFound, "no such file (os error 2)");
        let samples: Vec<Box<dyn std::error::Error>> = vec![
            Box::new(ConnectError::Connect {
                target: "/run/q.sock".into(),
                error: io(),
            }),
            Box::new(ConnectError::Tls {
                target: "h:1".into(),
                error: io(),
            }),
            Box::new(ConnectError::Accept {
                target: "/run/l.sock".into(),
                error: io(),
            }),
            Box::new(ConnectError::NegotiationRefused(QmpError::new(
                "GenericError",
                "nope",
            ))),
            Box::new(ConnectError::Io(io())),
            Box::new(ConnectError::Protocol(ProtocolError::TooDeep { limit: 4 })),
            Box::new(DisconnectReason::Io(io())),
            Box::new(DisconnectReason::Protocol(ProtocolError::TooDeep {
                limit: 4,
            })),
            Box::new(ExecuteError::Qmp {
                command: "x".into(),
                error: QmpError::new("CommandNotFound", "The command x has not been found"),
            }),
            Box::new(ExecuteError::MalformedReply {
                command: "x".into(),
                error: ProtocolError::TooDeep { limit: 4 },
            }),
            Box::new(ExecuteError::Fd {
                command: "getfd".into(),
                error: io(),
            }),
            Box::new(ExecuteError::Unanswered {
                command: "x".into(),
                server_error: Some(QmpError::new("GenericError", "nope")),
                errors_without_id: 3,
            }),
            Box::new(ExecuteError::ExceedsJsonLimit {
                command: "x".into(),
                limit: JsonLimit::NestingDepth {
                    depth: 1025,
                    limit: 1024,
                },
            }),
            Box::new(ConnectError::Connect {
                target: "/run/q.sock".into(),
                error: io::Error::from(io::ErrorKind::WouldBlock),
            }),
            Box::new(ListenError::Io {
                target: "/run/l.sock".into(),
                error: io(),
            }),
        ];
        for e in &samples {
            let text = chain(e.as_ref());
            for needle in [
                "no such file",
                "nope",
                "deeper than 4",
                "has not been found",
                "1024",
                "listen queue",
            ] {
                assert!(
                    text.matches(needle).count() <= 1,
                    "printed twice in: {text}"
                );
            }
            assert!(
                [
                    "no such file",
                    "nope",
                    "deeper than 4",
                    "has not been found",
                    "1024",
                    "listen queue",
                ]
                .iter()
                .any(|n| text.contains(n)),
                "the cause is missing from: {text}"
            );
        }
    }
}
