//! Splitting the server's byte stream into messages.
//!
//! QMP messages are JSON objects, normally one per line (`\r\n`), but a monitor started with
//! `pretty=on` spreads one object over many lines, so lines cannot be trusted: the scanner
//! tracks strings and nesting to find where each top-level object ends. It keeps its position
//! between calls, so a large message arriving in many reads is scanned once, not once per read.
//!
//! A guest agent's stream (see [`Scanner::set_guest_agent`]) also carries 0xFF bytes: the
//! agent writes one before the reply to `guest-sync-delimited`, precisely so that a client can
//! find a message boundary in a stream left mid-message. 0xFF never occurs in UTF-8 JSON, so
//! there the byte ends whatever message was unfinished (it is dropped) and scanning restarts.
//!
//! Limits bound memory and stack: a message longer than `max_size` bytes or nested deeper than
//! `max_depth` is an error as soon as the limit is crossed, before the rest arrives.

use crate::error::ProtocolError;

/// Finds message boundaries in a growing buffer. See the module docs.
#[derive(Debug)]
pub(crate) struct Scanner {
    max_size: usize,
    max_depth: usize,
    /// Where scanning resumes, relative to the start of the buffer.
    pos: usize,
    /// Start of the message being scanned, if one has begun.
    start: Option<usize>,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Bytes consumed before the current buffer start, for error offsets.
    consumed_total: u64,
    /// Guest agent mode: 0xFF is a delimiter, stray bytes between messages are skipped.
    agent: bool,
}

/// The guest agent's delimiter byte (see the module docs).
pub(crate) const DELIMITER: u8 = 0xFF;

impl Scanner {
    pub(crate) fn new(max_size: usize, max_depth: usize) -> Self {
        Scanner {
            max_size,
            max_depth,
            pos: 0,
            start: None,
            depth: 0,
            in_string: false,
            escaped: false,
            consumed_total: 0,
            agent: false,
        }
    }

    /// Reads a guest agent's stream: a 0xFF byte (the delimiter qemu-ga writes before the reply
    /// to `guest-sync-delimited`) drops any unfinished message and restarts scanning, and
    /// bytes between messages that cannot start one are skipped rather than fatal (a restarted
    /// agent or a noisy serial line leaves such bytes; the next resynchronisation finds the
    /// boundary again).
    pub(crate) fn set_guest_agent(&mut self, on: bool) {
        self.agent = on;
    }

    /// Drops the unfinished message at a delimiter (guest agent mode).
    #[cold]
    fn reset_at_delimiter(&mut self) {
        self.start = None;
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
    }

    /// Returns the byte range of the next complete message in `buf`, or `None` if more bytes
    /// are needed. Whitespace between messages is skipped.
    pub(crate) fn next_frame(
        &mut self,
        buf: &[u8],
    ) -> Result<Option<std::ops::Range<usize>>, ProtocolError> {
        let mut i = self.pos;
        while i < buf.len() {
            if self.start.is_none() {
                match buf[i] {
                    b' ' | b'\t' | b'\r' | b'\n' => {
                        i += 1;
                        continue;
                    }
                    b'{' => {
                        self.start = Some(i);
                        self.depth = 1;
                        i += 1;
                        continue;
                    }
                    _ if self.agent => {
                        i += 1;
                        continue;
                    }
                    byte => {
                        self.pos = i;
                        return Err(ProtocolError::UnexpectedByte {
                            byte,
                            offset: self.consumed_total + i as u64,
                        });
                    }
                }
            }
            let start = self.start.unwrap_or(i);
            if self.in_string {
                if self.escaped {
                    // The byte after a backslash is part of the escape, whatever it is (but a
                    // delimiter is never part of a message).
                    if self.agent && buf[i] == DELIMITER {
                        self.reset_at_delimiter();
                    } else {
                        self.escaped = false;
                    }
                    i += 1;
                    continue;
                }
                // Skip quickly to the next byte that matters inside a string.
                let next = if self.agent {
                    memchr::memchr3(b'"', b'\\', DELIMITER, &buf[i..])
                } else {
                    memchr::memchr2(b'"', b'\\', &buf[i..])
                };
                match next {
                    None => i = buf.len(),
                    Some(off) => {
                        i += off;
                        if buf[i] == DELIMITER {
                            self.reset_at_delimiter();
                        } else if buf[i] == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_string = false;
                        }
                        i += 1;
                        continue;
                    }
                }
            } else {
                // Skip quickly to the next byte that matters outside strings.
                let structural = if self.agent {
                    &AGENT_STRUCTURAL
                } else {
                    &STRUCTURAL
                };
                while i < buf.len() && !structural[usize::from(buf[i])] {
                    i += 1;
                }
                if i == buf.len() {
                    break;
                }
                match buf[i] {
                    b'"' => self.in_string = true,
                    DELIMITER => {
                        self.reset_at_delimiter();
                        i += 1;
                        continue;
                    }
                    b'{' | b'[' => {
                        self.depth += 1;
                        if self.depth > self.max_depth {
                            self.pos = i;
                            return Err(ProtocolError::TooDeep {
                                limit: self.max_depth,
                            });
                        }
                    }
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            let end = i + 1;
                            if end - start > self.max_size {
                                return Err(ProtocolError::MessageTooLarge {
                                    limit: self.max_size,
                                });
                            }
                            self.start = None;
                            self.pos = end;
                            return Ok(Some(start..end));
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            if i - start > self.max_size {
                self.pos = i;
                return Err(ProtocolError::MessageTooLarge {
                    limit: self.max_size,
                });
            }
        }
        self.pos = i;
        match self.start {
            Some(start) if i - start > self.max_size => Err(ProtocolError::MessageTooLarge {
                limit: self.max_size,
            }),
            _ => Ok(None),
        }
    }

    /// Where the unfinished message (if any) starts; bytes before it may be discarded.
    pub(crate) fn keep_from(&self) -> usize {
        self.start.unwrap_or(self.pos)
    }

    /// Tells the scanner that the first `n` bytes of the buffer were removed.
    pub(crate) fn shift(&mut self, n: usize) {
        self.pos -= n;
        if let Some(s) = self.start.as_mut() {
            *s -= n;
        }
        self.consumed_total += n as u64;
    }

    /// True while a message has started but not ended.
    pub(crate) fn in_message(&self) -> bool {
        self.start.is_some()
    }
}

/// The bytes that matter outside strings: quotes and brackets.
static STRUCTURAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'"' as usize] = true;
    table[b'{' as usize] = true;
    table[b'}' as usize] = true;
    table[b'[' as usize] = true;
    table[b']' as usize] = true;
    table
};

/// [`STRUCTURAL`] plus the guest agent's delimiter.
static AGENT_STRUCTURAL: [bool; 256] = {
    let mut table = STRUCTURAL;
    table[DELIMITER as usize] = true;
    table
};

/// A buffer of received bytes with a [`Scanner`] over it: feed it reads, take out messages.
#[derive(Debug)]
pub(crate) struct ReadBuffer {
    buf: Vec<u8>,
    /// Bytes of `buf` holding data (the rest is zeroed spare room for the next read).
    filled: usize,
    /// Bytes at the start of `buf` already handed out as messages.
    taken: usize,
    scanner: Scanner,
}

/// Capacity a fresh or idle buffer keeps: small, because idle connections should be cheap.
const IDLE_CAPACITY: usize = 4 * 1024;
/// Largest single read; a buffer grows to this while data keeps arriving.
const MAX_READ: usize = 64 * 1024;

impl ReadBuffer {
    pub(crate) fn new(max_size: usize, max_depth: usize) -> Self {
        ReadBuffer {
            buf: vec![0; IDLE_CAPACITY],
            filled: 0,
            taken: 0,
            scanner: Scanner::new(max_size, max_depth),
        }
    }

    /// Room to read into. Makes room first: discards messages already taken, and grows the
    /// buffer when a message in progress needs it (up to the size limit plus one read).
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        let keep = self.scanner.keep_from().min(self.taken);
        if keep > 0 && (self.filled == keep || keep >= self.buf.len() / 2) {
            self.buf.copy_within(keep..self.filled, 0);
            self.filled -= keep;
            self.taken -= keep;
            self.scanner.shift(keep);
        }
        if self.filled == self.buf.len() {
            let grow = self.buf.len().clamp(IDLE_CAPACITY, MAX_READ);
            self.buf.resize(self.buf.len() + grow, 0);
        }
        &mut self.buf[self.filled..]
    }

    /// Records that `n` bytes were read into the slice returned by [`spare`](Self::spare).
    pub(crate) fn advance(&mut self, n: usize) {
        self.filled += n;
    }

    /// The next complete message, if there is one.
    pub(crate) fn next_message(&mut self) -> Result<Option<&[u8]>, ProtocolError> {
        match self.scanner.next_frame(&self.buf[..self.filled])? {
            Some(range) => {
                self.taken = range.end;
                Ok(Some(&self.buf[range]))
            }
            None => {
                self.taken = self.scanner.keep_from();
                Ok(None)
            }
        }
    }

    /// Drops a large allocation once everything in it was consumed, so that one huge reply
    /// (say, `query-qmp-schema`) does not pin its memory for the life of the connection.
    pub(crate) fn shrink_if_idle(&mut self) {
        if self.buf.len() > MAX_READ && !self.scanner.in_message() && self.taken == self.filled {
            self.scanner.shift(self.taken);
            self.buf = vec![0; IDLE_CAPACITY];
            self.filled = 0;
            self.taken = 0;
        }
    }

    /// Reads a guest agent's stream (see [`Scanner::set_guest_agent`]).
    pub(crate) fn set_guest_agent(&mut self, on: bool) {
        self.scanner.set_guest_agent(on);
    }

    /// Bytes received but not yet part of a complete message.
    pub(crate) fn has_partial_message(&self) -> bool {
        self.scanner.in_message()
    }

    /// How many bytes of the unfinished message have arrived (0 if none has started).
    pub(crate) fn partial_len(&self) -> usize {
        match self.scanner.start {
            Some(start) => self.filled - start,
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[&[u8]], max_size: usize) -> Result<Vec<String>, ProtocolError> {
        let mut rb = ReadBuffer::new(max_size, 16);
        let mut out = Vec::new();
        for chunk in input {
            let mut rest: &[u8] = chunk;
            while !rest.is_empty() {
                let spare = rb.spare();
                let n = spare.len().min(rest.len());
                spare[..n].copy_from_slice(&rest[..n]);
                rb.advance(n);
                rest = &rest[n..];
                while let Some(m) = rb.next_message()? {
                    out.push(String::from_utf8_lossy(m).into_owned());
                }
            }
        }
        Ok(out)
    }

    #[test]
    fn splits_lines_and_crlf() {
        let got = frames(&[b"{\"a\":1}\r\n{\"b\":2}\r\n"], 1024).unwrap();
        assert_eq!(got, vec!["{\"a\":1}", "{\"b\":2}"]);
    }

    #[test]
    fn pretty_printed_multiline_message() {
        let got = frames(
            &[b"{\n  \"a\": {\n    \"b\": [1, 2]\n  }\n}\n{\"c\":3}"],
            1024,
        )
        .unwrap();
        assert_eq!(got.len(), 2);
        assert!(got[0].contains("\"b\": [1, 2]"));
    }

    #[test]
    fn braces_and_escapes_inside_strings() {
        let got = frames(&[br#"{"s":"}{\"\\"}"#, b"{}"], 1024).unwrap();
        assert_eq!(got, vec![r#"{"s":"}{\"\\"}"#, "{}"]);
    }

    #[test]
    fn escapes_before_the_closing_quote() {
        // `\n` then the closing quote: the quote ends the string.
        let got = frames(
            &[br#"{"return": "line\nnext\r\n", "id": 1}"#, b"\r\n{}"],
            1024,
        )
        .unwrap();
        assert_eq!(got, vec![r#"{"return": "line\nnext\r\n", "id": 1}"#, "{}"]);
        // Split inside an escape, one byte at a time.
        let msg = br#"{"a": "x\\", "b": "\u005c\"}", "c": "\\\""}"#;
        let chunks: Vec<&[u8]> = msg.chunks(1).collect();
        let got = frames(&chunks, 1024).unwrap();
        assert_eq!(got, vec![String::from_utf8_lossy(msg).into_owned()]);
    }

    /// Tiny deterministic generator (xorshift), so the differential test needs no new crate.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// A random JSON value whose strings are dense in what trips up a scanner: quotes,
    /// backslashes, braces, brackets, newlines, control characters and non-ASCII text.
    fn random_value(rng: &mut Rng, depth: u32) -> serde_json::Value {
        use serde_json::Value;
        const PIECES: [&str; 12] = [
            "\\",
            "\"",
            "{",
            "}",
            "[",
            "]",
            "\n",
            "\r\n",
            "\u{1}",
            "é€😀",
            "x",
            "\\\"",
        ];
        let string = |rng: &mut Rng| -> String {
            (0..rng.below(6))
                .map(|_| PIECES[rng.below(PIECES.len() as u64) as usize])
                .collect()
        };
        match (depth, rng.below(7)) {
            (0, _) | (_, 0) => Value::String(string(rng)),
            (_, 1) => Value::from(rng.below(1 << 40) as i64 - (1 << 39)),
            (_, 2) => Value::Bool(rng.below(2) == 0),
            (_, 3) => Value::Null,
            (_, 4) => Value::Array(
                (0..rng.below(4))
                    .map(|_| random_value(rng, depth - 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.below(4))
                    .map(|_| (string(rng), random_value(rng, depth - 1)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn frames_agree_with_serde_json_on_random_messages_and_cuts() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..300 {
            let mut wire = Vec::new();
            let mut sent = Vec::new();
            for _ in 0..1 + rng.below(5) {
                let mut message = serde_json::Map::new();
                message.insert("return".into(), random_value(&mut rng, 4));
                let text = if rng.below(3) == 0 {
                    serde_json::to_string_pretty(&message).unwrap()
                } else {
                    serde_json::to_string(&message).unwrap()
                };
                wire.extend_from_slice(text.as_bytes());
                wire.extend_from_slice(if rng.below(2) == 0 { b"\r\n" } else { b"\n" });
                sent.push(text);
            }
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut rest = &wire[..];
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at((1 + rng.below(40) as usize).min(rest.len()));
                chunks.push(chunk);
                rest = tail;
            }
            let got = frames(&chunks, 1 << 20).unwrap();
            assert_eq!(got, sent, "round {round}");
        }
    }

    #[test]
    fn byte_at_a_time() {
        let msg = br#"{"return": {"a": "x\"}"}, "id": 1}"#;
        let chunks: Vec<&[u8]> = msg.chunks(1).collect();
        let got = frames(&chunks, 1024).unwrap();
        assert_eq!(got, vec![String::from_utf8_lossy(msg).into_owned()]);
    }

    #[test]
    fn large_message_in_many_reads() {
        let mut msg = b"{\"return\": [".to_vec();
        for i in 0..50_000 {
            msg.extend_from_slice(format!("{{\"n\": {i}}},").as_bytes());
        }
        msg.extend_from_slice(b"{}]}\r\n");
        let chunks: Vec<&[u8]> = msg.chunks(1000).collect();
        let got = frames(&chunks, 1 << 20).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), msg.len() - 2);
    }

    #[test]
    fn too_large_is_an_error_before_the_end() {
        let err = frames(&[b"{\"a\": \"", &[b'x'; 100]], 64).unwrap_err();
        assert_eq!(err, ProtocolError::MessageTooLarge { limit: 64 });
    }

    #[test]
    fn too_deep_is_an_error() {
        let err = frames(&[&[b'['; 100]], 1024).unwrap_err();
        assert_eq!(
            err,
            ProtocolError::UnexpectedByte {
                byte: b'[',
                offset: 0
            }
        );
        let mut deep = b"{\"a\":".to_vec();
        deep.extend(std::iter::repeat_n(b'[', 100));
        let err = frames(&[&deep], 1024).unwrap_err();
        assert_eq!(err, ProtocolError::TooDeep { limit: 16 });
    }

    #[test]
    fn garbage_between_messages_names_the_offset() {
        let err = frames(&[b"{}\r\nxyz"], 1024).unwrap_err();
        assert_eq!(
            err,
            ProtocolError::UnexpectedByte {
                byte: b'x',
                offset: 4
            }
        );
    }

    #[test]
    fn buffer_shrinks_after_a_big_message() {
        let mut rb = ReadBuffer::new(1 << 20, 16);
        let mut msg = b"{\"a\":\"".to_vec();
        msg.extend(std::iter::repeat_n(b'x', 300_000));
        msg.extend_from_slice(b"\"}");
        let mut rest: &[u8] = &msg;
        let mut seen = 0;
        while !rest.is_empty() {
            let spare = rb.spare();
            let n = spare.len().min(rest.len());
            spare[..n].copy_from_slice(&rest[..n]);
            rb.advance(n);
            rest = &rest[n..];
            while rb.next_message().unwrap().is_some() {
                seen += 1;
            }
        }
        assert_eq!(seen, 1);
        rb.shrink_if_idle();
        assert_eq!(rb.buf.len(), IDLE_CAPACITY);
    }

    fn agent_frames(input: &[&[u8]]) -> Vec<String> {
        let mut rb = ReadBuffer::new(1024, 16);
        rb.set_guest_agent(true);
        let mut out = Vec::new();
        for chunk in input {
            let spare = rb.spare();
            spare[..chunk.len()].copy_from_slice(chunk);
            rb.advance(chunk.len());
            while let Some(m) = rb.next_message().unwrap() {
                out.push(String::from_utf8_lossy(m).into_owned());
            }
        }
        out
    }

    #[test]
    fn agent_delimiter_before_a_reply() {
        let got = agent_frames(&[b"\xff{\"return\": 1234, \"id\": 1}\n"]);
        assert_eq!(got, vec![r#"{"return": 1234, "id": 1}"#]);
    }

    #[test]
    fn agent_delimiter_drops_an_unfinished_message_wherever_it_stopped() {
        for cut in [
            &b"{\"return\": {\"a\": [1, "[..],
            b"{\"return\": \"abc",
            b"{\"return\": \"abc\\",
            b"{",
        ] {
            let got = agent_frames(&[cut, b"\xff{\"return\": 7}\n{\"return\": 8}"]);
            assert_eq!(got, vec![r#"{"return": 7}"#, r#"{"return": 8}"#], "{cut:?}");
        }
    }

    #[test]
    fn agent_stray_bytes_between_messages_are_skipped() {
        let got = agent_frames(&[b"\"id\": 3}\n]]x\xff{\"return\": {}}"]);
        assert_eq!(got, vec![r#"{"return": {}}"#]);
        // Not in QMP mode: there a stray byte is a protocol error.
        assert!(matches!(
            frames(&[b"\xff{}"], 1024),
            Err(ProtocolError::UnexpectedByte { byte: 0xff, .. })
        ));
    }
}
