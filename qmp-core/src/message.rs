//! Classifying one received message: a reply, an event, or a greeting.
//!
//! The envelope is decoded with borrowed [`RawValue`]s, so the payload (`return`, `data`) is
//! validated but not built into a tree here: whoever consumes it decodes it once, straight into
//! the type it wants.

use serde_json::value::RawValue;

use crate::error::{excerpt, ProtocolError, QmpError};
use crate::event::Timestamp;
use crate::json::Object;

/// A classified message, borrowing from the receive buffer.
#[derive(Debug)]
pub(crate) enum Incoming<'a> {
    /// A reply to a command.
    Reply {
        /// The `id` echoed by the server.
        id: Id,
        /// `return` value or server error.
        result: Result<&'a RawValue, QmpError>,
    },
    /// An asynchronous event.
    Event {
        name: &'a str,
        data: Option<&'a RawValue>,
        timestamp: Timestamp,
    },
    /// A greeting (only expected as the first message).
    Greeting(&'a RawValue),
    /// Valid JSON that is not a valid message. When it carries one of our ids, the call
    /// waiting for that id is failed with this error rather than left hanging.
    Malformed { id: Id, error: ProtocolError },
}

/// The `id` member of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Id {
    /// One of ours: we send unsigned integer ids.
    Ours(u64),
    /// A value we never send (string, negative, object...).
    Foreign,
    /// No `id` member: the server could not attribute the reply (e.g. it failed to parse the
    /// request).
    Missing,
}

/// Decodes and classifies one complete message.
///
/// `Err` means the bytes are not valid JSON: the stream cannot be trusted any more and the
/// caller ends the connection (failing every pending call) instead of guessing.
pub(crate) fn classify(bytes: &[u8]) -> Result<Incoming<'_>, ProtocolError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ProtocolError::InvalidUtf8 {
        position: e.valid_up_to(),
        excerpt: excerpt(bytes),
    })?;
    let env = Object::parse(text).map_err(|e| ProtocolError::InvalidJson {
        reason: e.to_string(),
        excerpt: excerpt(bytes),
    })?;
    let id = match env.get("id") {
        None => Id::Missing,
        Some(raw) => parse_id(raw.get()),
    };
    Ok(interpret(&env, id, bytes).unwrap_or_else(|error| Incoming::Malformed { id, error }))
}

/// The `id` member's JSON text as an [`Id`]. Ours are plain decimal integers: those are read
/// directly (every reply has one); anything else goes through serde_json.
fn parse_id(text: &str) -> Id {
    let digits = text.as_bytes();
    // JSON has no leading zeros, and 19 digits cannot overflow a u64.
    if !digits.is_empty() && digits.len() <= 19 && digits.iter().all(u8::is_ascii_digit) {
        return Id::Ours(
            digits
                .iter()
                .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')),
        );
    }
    match serde_json::from_str::<u64>(text) {
        Ok(n) => Id::Ours(n),
        Err(_) if text == "null" => Id::Missing,
        Err(_) => Id::Foreign,
    }
}

fn unexpected(reason: impl Into<String>, bytes: &[u8]) -> ProtocolError {
    ProtocolError::UnexpectedMessage {
        reason: reason.into(),
        excerpt: excerpt(bytes),
    }
}

fn interpret<'a>(env: &Object<'a>, id: Id, bytes: &[u8]) -> Result<Incoming<'a>, ProtocolError> {
    match (env.get("return"), env.get("error")) {
        (Some(ret), None) => {
            return Ok(Incoming::Reply {
                id,
                result: Ok(ret),
            })
        }
        (None, Some(err)) => {
            let (class, desc) = Object::parse(err.get())
                .map_err(|e| e.to_string())
                .and_then(|o| Ok((o.field::<String>("class")?, o.field::<String>("desc")?)))
                .map_err(|e| {
                    unexpected(
                        format!("`error` must be an object with string `class` and `desc`: {e}"),
                        bytes,
                    )
                })?;
            let error = QmpError {
                class,
                desc,
                raw: String::from_utf8_lossy(bytes).into_owned(),
            };
            return Ok(Incoming::Reply {
                id,
                result: Err(error),
            });
        }
        (Some(_), Some(_)) => {
            return Err(unexpected("a reply with both `return` and `error`", bytes))
        }
        (None, None) => {}
    }
    if let Some(name) = env.get("event") {
        // Event names are plain identifiers: a string without escapes.
        let name = name
            .get()
            .strip_prefix('"')
            .and_then(|n| n.strip_suffix('"'))
            .filter(|n| !n.contains('\\'))
            .ok_or_else(|| unexpected("`event` must be a string (without escapes)", bytes))?;
        let timestamp = match env.get("timestamp") {
            None => Timestamp::UNKNOWN,
            Some(ts) => Object::parse(ts.get())
                .map_err(|e| e.to_string())
                .and_then(|o| {
                    Ok(Timestamp {
                        seconds: o.field("seconds")?,
                        microseconds: o.field("microseconds")?,
                    })
                })
                .map_err(|e| unexpected(format!("malformed `timestamp`: {e}"), bytes))?,
        };
        let data = env.get("data");
        if data.is_some_and(|d| !d.get().starts_with('{')) {
            return Err(unexpected("event `data` must be an object", bytes));
        }
        return Ok(Incoming::Event {
            name,
            data,
            timestamp,
        });
    }
    if let Some(greeting) = env.get("QMP") {
        return Ok(Incoming::Greeting(greeting));
    }
    Err(unexpected(
        "neither a reply (`return`/`error`) nor an event (`event`)",
        bytes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Incoming<'_> {
        classify(s.as_bytes()).unwrap()
    }

    #[test]
    fn reply_with_our_id() {
        match ok(r#"{"return": {"status": "running"}, "id": 7}"#) {
            Incoming::Reply { id, result } => {
                assert_eq!(id, Id::Ours(7));
                assert_eq!(result.unwrap().get(), r#"{"status": "running"}"#);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_reply_without_id() {
        match ok(r#"{"error": {"class": "GenericError", "desc": "JSON parse error"}}"#) {
            Incoming::Reply { id, result } => {
                assert_eq!(id, Id::Missing);
                let e = result.unwrap_err();
                assert_eq!(e.class, "GenericError");
                assert!(e.raw.contains("JSON parse error"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ids() {
        for (text, id) in [
            ("0", Id::Ours(0)),
            ("1234567890", Id::Ours(1_234_567_890)),
            ("9999999999999999999", Id::Ours(9_999_999_999_999_999_999)),
            ("18446744073709551615", Id::Ours(u64::MAX)),
            ("18446744073709551616", Id::Foreign),
            ("null", Id::Missing),
            ("1e3", Id::Foreign),
        ] {
            assert_eq!(parse_id(text), id, "{text}");
        }
    }

    #[test]
    fn foreign_ids() {
        for id in [r#""x""#, "-1", "1.5", "{}"] {
            let msg = format!(r#"{{"return": {{}}, "id": {id}}}"#);
            match classify(msg.as_bytes()).unwrap() {
                Incoming::Reply { id, .. } => assert_eq!(id, Id::Foreign),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn event_with_and_without_data() {
        match ok(r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"#) {
            Incoming::Event {
                name,
                data,
                timestamp,
            } => {
                assert_eq!(name, "STOP");
                assert!(data.is_none());
                assert_eq!(timestamp.seconds, 1);
                assert_eq!(timestamp.microseconds, 2);
            }
            other => panic!("{other:?}"),
        }
        match ok(r#"{"event": "X", "data": {"a": 1}}"#) {
            Incoming::Event {
                data, timestamp, ..
            } => {
                assert_eq!(data.unwrap().get(), r#"{"a": 1}"#);
                assert_eq!(timestamp, Timestamp::UNKNOWN);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shape_errors_are_recoverable() {
        for (msg, needle) in [
            (
                r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "data": {}}"#,
                "neither",
            ),
            (r#"{"event": 5}"#, "`event` must be a string"),
            (r#"{"return": 1, "error": {}}"#, "both"),
            (r#"{"error": {"class": 1}}"#, "`error` must be"),
            (r#"{"event": "X", "data": [1]}"#, "`data` must be an object"),
            (r#"{"event": "X", "timestamp": "now"}"#, "timestamp"),
        ] {
            match classify(msg.as_bytes()).unwrap() {
                Incoming::Malformed { error, .. } => {
                    assert!(error.to_string().contains(needle), "{msg}: {error}")
                }
                other => panic!("{msg}: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_reply_keeps_its_id() {
        match ok(r#"{"id": 3, "error": "oops"}"#) {
            Incoming::Malformed { id, .. } => assert_eq!(id, Id::Ours(3)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn syntax_errors_are_fatal() {
        assert!(classify(b"{\"return\": }").is_err());
        assert!(classify(b"{\"a\": \"\xff\"}").is_err());
        assert!(classify(b"{\"return\": {}, \"return\": {}}").is_err());
    }
}
