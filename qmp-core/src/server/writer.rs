//! Writing messages the way QEMU writes them: `", "` and `": "` separators, ASCII only
//! (everything else as `\uXXXX` with upper-case hex, surrogate pairs beyond the BMP), each
//! message ended by `\r\n`, and the members of the protocol's own objects in QEMU's order
//! (`{"return": ..., "id": ...}` but `{"id": ..., "error": ...}`), so that a client sees the
//! same bytes it would see from QEMU.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::reader::Json;
use crate::event::Timestamp;
use crate::greeting::{Capability, Version};

/// Appends `s` as a JSON string.
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let u = |out: &mut Vec<u8>, cp: u32| {
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(HEX[(cp >> shift & 0xF) as usize]);
        }
    };
    out.push(b'"');
    let mut plain = 0;
    let bytes = s.as_bytes();
    for (i, c) in s.char_indices() {
        let special = match c {
            '"' | '\\' | '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => true,
            c => (c as u32) < 0x20 || (c as u32) >= 0x7F,
        };
        if !special {
            continue;
        }
        out.extend_from_slice(&bytes[plain..i]);
        plain = i + c.len_utf8();
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) > 0xFFFF => {
                let v = c as u32 - 0x10000;
                u(out, 0xD800 + (v >> 10));
                u(out, 0xDC00 + (v & 0x3FF));
            }
            c => u(out, c as u32),
        }
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

/// Appends a value (a command's result or an event's data).
pub(crate) fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                value(out, item);
            }
            out.push(b']');
        }
        Value::Object(members) => {
            out.push(b'{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                string(out, k);
                out.extend_from_slice(b": ");
                value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Appends a value as the client sent it (an `id`): members in the client's order, numbers as
/// their original text. Strings are re-encoded (a client may have used single quotes).
pub(crate) fn json(out: &mut Vec<u8>, v: &Json) {
    match v {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(true) => out.extend_from_slice(b"true"),
        Json::Bool(false) => out.extend_from_slice(b"false"),
        Json::Number(text, _) => out.extend_from_slice(text.as_bytes()),
        Json::String(s) => string(out, s),
        Json::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                json(out, item);
            }
            out.push(b']');
        }
        Json::Object(members) => {
            out.push(b'{');
            for (i, (k, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                string(out, k);
                out.extend_from_slice(b": ");
                json(out, item);
            }
            out.push(b'}');
        }
    }
}

/// `{"return": RESULT, "id": ID}`.
pub(crate) fn success(out: &mut Vec<u8>, result: &Value, id: Option<&[u8]>) {
    out.extend_from_slice(b"{\"return\": ");
    value(out, result);
    if let Some(id) = id {
        out.extend_from_slice(b", \"id\": ");
        out.extend_from_slice(id);
    }
    out.extend_from_slice(b"}\r\n");
}

/// `{"id": ID, "error": {"class": CLASS, "desc": DESC}}`.
pub(crate) fn error(out: &mut Vec<u8>, class: &str, desc: &str, id: Option<&[u8]>) {
    out.push(b'{');
    if let Some(id) = id {
        out.extend_from_slice(b"\"id\": ");
        out.extend_from_slice(id);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(b"\"error\": {\"class\": ");
    string(out, class);
    out.extend_from_slice(b", \"desc\": ");
    string(out, desc);
    out.extend_from_slice(b"}}\r\n");
}

/// `{"timestamp": {"seconds": S, "microseconds": US}, "event": NAME, "data": DATA}`.
pub(crate) fn event(out: &mut Vec<u8>, name: &str, data: Option<&Value>, at: Timestamp) {
    out.extend_from_slice(b"{\"timestamp\": {\"seconds\": ");
    out.extend_from_slice(at.seconds.to_string().as_bytes());
    out.extend_from_slice(b", \"microseconds\": ");
    out.extend_from_slice(at.microseconds.to_string().as_bytes());
    out.extend_from_slice(b"}, \"event\": ");
    string(out, name);
    if let Some(data) = data {
        out.extend_from_slice(b", \"data\": ");
        value(out, data);
    }
    out.extend_from_slice(b"}\r\n");
}

/// The greeting, with QEMU's member order.
pub(crate) fn greeting(
    out: &mut Vec<u8>,
    version: Version,
    package: &str,
    capabilities: &[Capability],
) {
    out.extend_from_slice(b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": ");
    out.extend_from_slice(version.micro.to_string().as_bytes());
    out.extend_from_slice(b", \"minor\": ");
    out.extend_from_slice(version.minor.to_string().as_bytes());
    out.extend_from_slice(b", \"major\": ");
    out.extend_from_slice(version.major.to_string().as_bytes());
    out.extend_from_slice(b"}, \"package\": ");
    string(out, package);
    out.extend_from_slice(b"}, \"capabilities\": [");
    for (i, c) in capabilities.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        string(out, c.name());
    }
    out.extend_from_slice(b"]}}\r\n");
}

/// The current time as QEMU stamps events: seconds and microseconds since the epoch, or -1
/// for both if the clock is before it.
pub(crate) fn now() -> Timestamp {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => Timestamp {
            seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            microseconds: i64::from(d.subsec_micros()),
        },
        Err(_) => Timestamp::UNKNOWN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_ascii_with_upper_case_escapes() {
        assert_eq!(
            text(|o| string(o, "é😀 \" \\ \n\u{1}\u{7f}/")),
            r#""\u00E9\uD83D\uDE00 \" \\ \n\u0001\u007F/""#
        );
    }

    #[test]
    fn envelopes_in_qemu_order() {
        assert_eq!(
            text(|o| success(o, &serde_json::json!({}), Some(b"1"))),
            "{\"return\": {}, \"id\": 1}\r\n"
        );
        assert_eq!(
            text(|o| error(o, "CommandNotFound", "x", Some(b"\"a\""))),
            "{\"id\": \"a\", \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"x\"}}\r\n"
        );
        assert_eq!(
            text(|o| error(o, "GenericError", "x", None)),
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"x\"}}\r\n"
        );
        assert_eq!(
            text(|o| greeting(o, Version::new(10, 0, 2), "p", &[Capability::Oob])),
            "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": \"p\"}, \"capabilities\": [\"oob\"]}}\r\n"
        );
        assert_eq!(
            text(|o| event(
                o,
                "STOP",
                None,
                Timestamp {
                    seconds: 1,
                    microseconds: 2
                }
            )),
            "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"STOP\"}\r\n"
        );
    }
}
