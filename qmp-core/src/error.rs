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
/// The socket cannot tell a clean exit from a crash: a QEMU that exits after a successful
/// `quit` often resets the connection (`Io` with `ConnectionReset`) just as a killed one
/// does. QEMU's exit status is what tells them apart.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The server closed the connection (end of stream).
    #[error("the server closed the connection")]
    ServerClosed,
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
    /// Opening the socket failed (not found, refused, permission denied...).
    #[error("cannot connect to {target}: {error}; is QEMU running with -qmp pointing there?")]
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
    #[error("the server closed the connection before its greeting; is another client connected to this monitor?")]
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
    /// The stream failed during the handshake.
    #[error("I/O error during the QMP handshake: {0}")]
    Io(io::Error),
    /// The server sent unreadable data during the handshake.
    #[error("protocol error during the QMP handshake: {0}")]
    Protocol(ProtocolError),
}

/// Errors from [`Client::execute`](crate::Client::execute) and its siblings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecuteError {
    /// The server answered with an error.
    #[error("{command} failed: {error}")]
    Qmp {
        /// The command that failed.
        command: String,
        /// The server's error.
        error: QmpError,
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
}

impl ExecuteError {
    /// The server's error, when the server answered with one.
    pub fn qmp_error(&self) -> Option<&QmpError> {
        match self {
            ExecuteError::Qmp { error, .. } => Some(error),
            _ => None,
        }
    }

    /// True when the call failed because the connection is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, ExecuteError::Disconnected { .. })
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
                    "has not been found"
                ]
                .iter()
                .any(|n| text.contains(n)),
                "the cause is missing from: {text}"
            );
        }
    }
}
