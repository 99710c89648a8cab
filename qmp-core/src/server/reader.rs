//! Reading what a client sends, the way QEMU's monitor reads it.
//!
//! QEMU does not read JSON with a conventional parser. Its lexer turns bytes into tokens (and
//! recovers from bad bytes by skipping to the next structural character or control
//! character), a streamer counts braces and brackets and hands over the collected tokens when
//! they balance, and a recursive parser builds the value from them. Every message is therefore
//! either a value or exactly one error, in a fixed wording, and the next message starts right
//! after. A server that is to behave like QEMU must reproduce all of that: which bytes end a
//! message, which error a given input gets, and where reading resumes after garbage. This
//! module does, for QMP's configuration (no `%` interpolation); it also keeps the three limits
//! QEMU uses against hostile input (bytes of tokens per message, tokens per message, nesting).
//!
//! Strings may use single quotes and `\'`, as QEMU allows; text is read as QEMU's "modified
//! UTF-8" (`\xC0\x80` is U+0000); invalid sequences, surrogates and noncharacters are errors.

/// Limits on one message. QEMU's values are the defaults (see `ServerBuilder`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Bytes of all tokens of one message (whitespace excluded); QEMU: 64 MiB.
    pub(crate) max_size: usize,
    /// Tokens in one message; QEMU: 2 Mi.
    pub(crate) max_tokens: usize,
    /// Open objects plus open arrays; QEMU: 1024.
    pub(crate) max_depth: usize,
}

impl Limits {
    pub(crate) const QEMU: Limits = Limits {
        max_size: 64 << 20,
        max_tokens: 2 << 20,
        max_depth: 1 << 10,
    };
}

/// A JSON value as QEMU reads it: members keep their order (QEMU's checks walk objects in an
/// order computed from the names, see `request`), numbers keep their text (for echoing ids).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// The number's token text (`-1.5e3`) and its value.
    Number(Box<str>, serde_json::Value),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The member called `name`, for objects.
    pub(crate) fn get(&self, name: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Converts to a [`serde_json::Value`]. Numbers keep the value QEMU would read: a 64-bit
    /// integer when the text is one, else a double. A double JSON cannot carry (QEMU reads
    /// `1e400` as infinity) becomes `null`.
    pub(crate) fn into_value(self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(b),
            Json::Number(_, v) => v,
            Json::String(s) => Value::String(s),
            Json::Array(items) => Value::Array(items.into_iter().map(Json::into_value).collect()),
            Json::Object(members) => Value::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (k, v.into_value()))
                    .collect(),
            ),
        }
    }
}

/// What one message turned out to be.
#[derive(Debug, PartialEq)]
pub(crate) enum Message {
    Value(Json),
    /// The error QEMU reports for it, e.g. `JSON parse error, expecting value` (class
    /// GenericError, no `id`).
    Error(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    LCurly,
    RCurly,
    LSquare,
    RSquare,
    Colon,
    Comma,
    Integer,
    Float,
    Keyword,
    String,
}

/// A token: its kind and where its text is in `Reader::text` (structural tokens have none).
#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: u32,
    end: u32,
}

/// Lexer states (QEMU's `json_lexer` table, without interpolation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    /// After an error: skip to a byte where a token may start.
    Recovery,
    Dq,
    DqEscape,
    Sq,
    SqEscape,
    Zero,
    Sign,
    Digits,
    /// After the decimal point.
    Mantissa,
    MantissaDigits,
    ExpE,
    ExpSign,
    ExpDigits,
    Keyword,
}

/// What a byte does in a state.
enum Step {
    /// The byte belongs to the token; go to the state.
    Consume(State),
    /// The byte completes a token of this kind.
    Complete(Kind),
    /// The token ended before this byte (which is read again from `Start`).
    EndBefore(Kind),
    /// The byte is skipped (whitespace, or recovery).
    Skip(State),
    /// Go to `Start` and read this byte again.
    Restart,
    /// The byte is not allowed here: it ends a stray token.
    Error,
}

fn step(state: State, b: u8) -> Step {
    use State::*;
    match state {
        Start => match b {
            b'"' => Step::Consume(Dq),
            b'\'' => Step::Consume(Sq),
            b'0' => Step::Consume(Zero),
            b'1'..=b'9' => Step::Consume(Digits),
            b'-' => Step::Consume(Sign),
            b'{' => Step::Complete(Kind::LCurly),
            b'}' => Step::Complete(Kind::RCurly),
            b'[' => Step::Complete(Kind::LSquare),
            b']' => Step::Complete(Kind::RSquare),
            b',' => Step::Complete(Kind::Comma),
            b':' => Step::Complete(Kind::Colon),
            b'a'..=b'z' => Step::Consume(Keyword),
            b' ' | b'\t' | b'\r' | b'\n' => Step::Skip(Start),
            _ => Step::Error,
        },
        Recovery => match b {
            b'\t' => Step::Skip(Recovery),
            0..=0x1f | 0xfe | 0xff | b'[' | b']' | b'{' | b'}' | b':' | b',' => Step::Restart,
            _ => Step::Skip(Recovery),
        },
        Dq => match b {
            b'\\' => Step::Consume(DqEscape),
            b'"' => Step::Complete(Kind::String),
            0x20..=0xfd => Step::Consume(Dq),
            _ => Step::Error,
        },
        Sq => match b {
            b'\\' => Step::Consume(SqEscape),
            b'\'' => Step::Complete(Kind::String),
            0x20..=0xfd => Step::Consume(Sq),
            _ => Step::Error,
        },
        DqEscape | SqEscape => match b {
            0x20..=0xfd => Step::Consume(if state == DqEscape { Dq } else { Sq }),
            _ => Step::Error,
        },
        Zero => match b {
            b'0'..=b'9' => Step::Error,
            b'.' => Step::Consume(Mantissa),
            _ => Step::EndBefore(Kind::Integer),
        },
        Sign => match b {
            b'0' => Step::Consume(Zero),
            b'1'..=b'9' => Step::Consume(Digits),
            _ => Step::Error,
        },
        Digits => match b {
            b'0'..=b'9' => Step::Consume(Digits),
            b'e' | b'E' => Step::Consume(ExpE),
            b'.' => Step::Consume(Mantissa),
            _ => Step::EndBefore(Kind::Integer),
        },
        Mantissa => match b {
            b'0'..=b'9' => Step::Consume(MantissaDigits),
            _ => Step::Error,
        },
        MantissaDigits => match b {
            b'0'..=b'9' => Step::Consume(MantissaDigits),
            b'e' | b'E' => Step::Consume(ExpE),
            _ => Step::EndBefore(Kind::Float),
        },
        ExpE => match b {
            b'-' | b'+' => Step::Consume(ExpSign),
            b'0'..=b'9' => Step::Consume(ExpDigits),
            _ => Step::Error,
        },
        ExpSign => match b {
            b'0'..=b'9' => Step::Consume(ExpDigits),
            _ => Step::Error,
        },
        ExpDigits => match b {
            b'0'..=b'9' => Step::Consume(ExpDigits),
            _ => Step::EndBefore(Kind::Float),
        },
        Keyword => match b {
            b'a'..=b'z' => Step::Consume(Keyword),
            _ => Step::EndBefore(Kind::Keyword),
        },
    }
}

/// The incremental reader: feed it bytes, get messages. Memory is bounded by the limits: the
/// token in progress and the tokens of the message in progress, never the whitespace or the
/// garbage around them.
#[derive(Debug)]
pub(crate) struct Reader {
    limits: Limits,
    state: State,
    /// Text of the tokens of the message in progress, then the token being lexed.
    text: Vec<u8>,
    /// Where the token being lexed starts in `text`.
    token_start: usize,
    tokens: Vec<Token>,
    braces: i64,
    brackets: i64,
    /// Bytes of the tokens collected so far (QEMU counts structural tokens too).
    size: usize,
}

impl Reader {
    pub(crate) fn new(limits: Limits) -> Reader {
        Reader {
            limits,
            state: State::Start,
            text: Vec::new(),
            token_start: 0,
            tokens: Vec::new(),
            braces: 0,
            brackets: 0,
            size: 0,
        }
    }

    /// True while part of a message has been read.
    pub(crate) fn in_message(&self) -> bool {
        !self.tokens.is_empty() || self.token_start < self.text.len()
    }

    /// Reads from `input` until a message is complete. Returns how many bytes were used and the
    /// message, if one completed; call again with the rest.
    pub(crate) fn feed(&mut self, input: &[u8]) -> (usize, Option<Message>) {
        let mut i = 0;
        while i < input.len() {
            // Fast path through the body of a string.
            if matches!(self.state, State::Dq | State::Sq) {
                let quote = if self.state == State::Dq { b'"' } else { b'\'' };
                let run = input[i..]
                    .iter()
                    .position(|&b| b == quote || b == b'\\' || !(0x20..=0xfd).contains(&b))
                    .unwrap_or(input.len() - i);
                let room = self.limits.max_size + 1 - (self.text.len() - self.token_start);
                let take = run.min(room);
                self.text.extend_from_slice(&input[i..i + take]);
                i += take;
                if let Some(m) = self.check_token_length() {
                    return (i, Some(m));
                }
                if i == input.len() {
                    break;
                }
            }
            let b = input[i];
            match step(self.state, b) {
                Step::Consume(next) => {
                    self.text.push(b);
                    self.state = next;
                    i += 1;
                    if let Some(m) = self.check_token_length() {
                        return (i, Some(m));
                    }
                }
                Step::Skip(next) => {
                    self.state = next;
                    i += 1;
                }
                Step::Restart => self.state = State::Start,
                Step::Complete(kind) => {
                    self.text.push(b);
                    i += 1;
                    self.state = State::Start;
                    if let Some(m) = self.token(kind) {
                        return (i, Some(m));
                    }
                }
                Step::EndBefore(kind) => {
                    self.state = State::Start;
                    if let Some(m) = self.token(kind) {
                        return (i, Some(m));
                    }
                }
                Step::Error => {
                    self.text.push(b);
                    i += 1;
                    self.state = State::Recovery;
                    // QEMU prints the token as a C string: a NUL byte ends it.
                    let token = &self.text[self.token_start..];
                    let token = token.split(|&b| b == 0).next().unwrap_or(token);
                    let stray = sanitize(token);
                    self.reset();
                    return (
                        i,
                        Some(Message::Error(format!("JSON parse error, stray '{stray}'"))),
                    );
                }
            }
        }
        (i, None)
    }

    /// A single token longer than the size limit is dropped with an error (QEMU does the same
    /// after each byte, so that one token cannot grow without bound), and lexing starts over.
    fn check_token_length(&mut self) -> Option<Message> {
        if self.text.len() - self.token_start > self.limits.max_size {
            self.state = State::Start;
            self.reset();
            return Some(Message::Error("JSON token size limit exceeded".into()));
        }
        None
    }

    /// Forgets the message in progress.
    fn reset(&mut self) {
        self.text.clear();
        self.token_start = 0;
        self.tokens.clear();
        self.braces = 0;
        self.brackets = 0;
        self.size = 0;
        if self.text.capacity() > 64 * 1024 {
            self.text = Vec::new();
        }
        if self.tokens.capacity() > 4096 {
            self.tokens = Vec::new();
        }
    }

    /// QEMU's streamer: count, check the limits, collect, and parse once balanced.
    fn token(&mut self, kind: Kind) -> Option<Message> {
        match kind {
            Kind::LCurly => self.braces += 1,
            Kind::RCurly => self.braces -= 1,
            Kind::LSquare => self.brackets += 1,
            Kind::RSquare => self.brackets -= 1,
            _ => {}
        }
        let len = self.text.len() - self.token_start;
        let limit = if self.size + len + 1 > self.limits.max_size {
            Some("JSON token size limit exceeded")
        } else if self.tokens.len() + 1 > self.limits.max_tokens {
            Some("JSON token count limit exceeded")
        } else if self.braces + self.brackets > self.limits.max_depth as i64 {
            Some("JSON nesting depth limit exceeded")
        } else {
            None
        };
        if let Some(error) = limit {
            self.reset();
            return Some(Message::Error(error.into()));
        }
        self.size += len;
        let has_text = matches!(
            kind,
            Kind::Integer | Kind::Float | Kind::Keyword | Kind::String
        );
        if !has_text {
            // Structural tokens need no text; keep the buffer to the values.
            self.text.truncate(self.token_start);
        }
        self.tokens.push(Token {
            kind,
            start: self.token_start as u32,
            end: self.text.len() as u32,
        });
        self.token_start = self.text.len();
        // Wait while anything is open, unless something was closed that was not open.
        if (self.braces > 0 || self.brackets > 0) && self.braces >= 0 && self.brackets >= 0 {
            return None;
        }
        let message = Parser {
            tokens: &self.tokens,
            text: &self.text,
            pos: 0,
            error: None,
        }
        .run();
        self.reset();
        Some(message)
    }
}

/// QEMU's recursive parser over the tokens of one message. The first error wins: later
/// failures on the way back up do not replace its message.
struct Parser<'a> {
    tokens: &'a [Token],
    text: &'a [u8],
    pos: usize,
    error: Option<String>,
}

impl Parser<'_> {
    fn run(mut self) -> Message {
        let value = self.value();
        match (value, self.error) {
            (Some(v), None) => Message::Value(v),
            (_, Some(e)) => Message::Error(format!("JSON parse error, {e}")),
            (None, None) => Message::Error("JSON parse error, expecting value".into()),
        }
    }

    fn fail(&mut self, message: impl FnOnce() -> String) {
        if self.error.is_none() {
            self.error = Some(message());
        }
    }

    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.pos).copied()
    }

    fn pop(&mut self) -> Option<Token> {
        let t = self.peek();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn text(&self, t: Token) -> &[u8] {
        &self.text[t.start as usize..t.end as usize]
    }

    fn value(&mut self) -> Option<Json> {
        let Some(token) = self.peek() else {
            self.fail(|| "premature EOI".into());
            return None;
        };
        match token.kind {
            Kind::LCurly => self.object(),
            Kind::LSquare => self.array(),
            Kind::Integer | Kind::Float | Kind::String => self.literal(),
            Kind::Keyword => {
                self.pos += 1;
                match self.text(token) {
                    b"true" => Some(Json::Bool(true)),
                    b"false" => Some(Json::Bool(false)),
                    b"null" => Some(Json::Null),
                    other => {
                        let word = String::from_utf8_lossy(other).into_owned();
                        self.fail(|| format!("invalid keyword '{word}'"));
                        None
                    }
                }
            }
            _ => {
                self.fail(|| "expecting value".into());
                None
            }
        }
    }

    fn object(&mut self) -> Option<Json> {
        self.pos += 1; // `{`
        let mut members: Vec<(String, Json)> = Vec::new();
        // Duplicate checks: a scan while small, a set once large (a hostile message may have
        // a million members).
        let mut seen: Option<std::collections::HashSet<String>> = None;
        let Some(first) = self.peek() else {
            self.fail(|| "premature EOI".into());
            return None;
        };
        if first.kind == Kind::RCurly {
            self.pos += 1;
            return Some(Json::Object(members));
        }
        loop {
            self.pair(&mut members, &mut seen)?;
            let Some(token) = self.pop() else {
                self.fail(|| "premature EOI".into());
                return None;
            };
            match token.kind {
                Kind::RCurly => return Some(Json::Object(members)),
                Kind::Comma => {}
                _ => {
                    self.fail(|| "expected separator in dict".into());
                    return None;
                }
            }
        }
    }

    fn pair(
        &mut self,
        members: &mut Vec<(String, Json)>,
        seen: &mut Option<std::collections::HashSet<String>>,
    ) -> Option<()> {
        if self.peek().is_none() {
            self.fail(|| "premature EOI".into());
            return None;
        }
        let key = match self.value() {
            Some(Json::String(key)) => key,
            _ => {
                self.fail(|| "key is not a string in object".into());
                return None;
            }
        };
        match self.pop() {
            None => {
                self.fail(|| "premature EOI".into());
                return None;
            }
            Some(t) if t.kind != Kind::Colon => {
                self.fail(|| "missing : in object pair".into());
                return None;
            }
            Some(_) => {}
        }
        let Some(value) = self.value() else {
            self.fail(|| "Missing value in dict".into());
            return None;
        };
        let duplicate = match seen {
            Some(set) => set.contains(&key),
            None => members.iter().any(|(k, _)| *k == key),
        };
        if duplicate {
            self.fail(|| "duplicate key".into());
            return None;
        }
        if let Some(set) = seen {
            set.insert(key.clone());
        } else if members.len() >= 16 {
            *seen = Some(
                members
                    .iter()
                    .map(|(k, _)| k.clone())
                    .chain([key.clone()])
                    .collect(),
            );
        }
        members.push((key, value));
        Some(())
    }

    fn array(&mut self) -> Option<Json> {
        self.pos += 1; // `[`
        let mut items = Vec::new();
        let Some(first) = self.peek() else {
            self.fail(|| "premature EOI".into());
            return None;
        };
        if first.kind == Kind::RSquare {
            self.pos += 1;
            return Some(Json::Array(items));
        }
        loop {
            let Some(item) = self.value() else {
                self.fail(|| "expecting value".into());
                return None;
            };
            items.push(item);
            let Some(token) = self.pop() else {
                self.fail(|| "premature EOI".into());
                return None;
            };
            match token.kind {
                Kind::RSquare => return Some(Json::Array(items)),
                Kind::Comma => {}
                _ => {
                    self.fail(|| "expected separator in list".into());
                    return None;
                }
            }
        }
    }

    fn literal(&mut self) -> Option<Json> {
        let token = self.pop()?;
        let text = self.text(token);
        match token.kind {
            Kind::String => match decode_string(text) {
                Ok(s) => Some(Json::String(s)),
                Err(e) => {
                    self.fail(|| e);
                    None
                }
            },
            _ => {
                // Number tokens are ASCII by construction.
                let s = std::str::from_utf8(text).unwrap_or("0");
                Some(Json::Number(s.into(), number_value(s, token.kind)))
            }
        }
    }
}

/// A number as QEMU stores it: a signed 64-bit integer if the text is one, else an unsigned
/// one (not for negative text), else a double.
fn number_value(text: &str, kind: Kind) -> serde_json::Value {
    if kind == Kind::Integer {
        if let Ok(n) = text.parse::<i64>() {
            return n.into();
        }
        if !text.starts_with('-') {
            if let Ok(n) = text.parse::<u64>() {
                return n.into();
            }
        }
    }
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// Decodes a string token (quotes included), with QEMU's escapes and error messages.
fn decode_string(token: &[u8]) -> Result<String, String> {
    let quote = token[0];
    let mut out = String::with_capacity(token.len());
    let mut i = 1;
    while i < token.len() && token[i] != quote {
        match token[i] {
            b'\\' => {
                let begin = i;
                let escape = token.get(i + 1).copied().unwrap_or(0);
                i += 2;
                match escape {
                    b'"' => out.push('"'),
                    b'\'' => out.push('\''),
                    b'\\' => out.push('\\'),
                    b'/' => out.push('/'),
                    b'b' => out.push('\u{8}'),
                    b'f' => out.push('\u{c}'),
                    b'n' => out.push('\n'),
                    b'r' => out.push('\r'),
                    b't' => out.push('\t'),
                    b'u' => {
                        let mut cp = hex4(&token[i.min(token.len())..]);
                        i += 4;
                        if (0xD800..=0xDBFF).contains(&cp)
                            && token.get(i) == Some(&b'\\')
                            && token.get(i + 1) == Some(&b'u')
                        {
                            let trailing = hex4(&token[i + 2..]);
                            if (0xDC00..=0xDFFF).contains(&trailing) {
                                cp = (0x10000 + ((cp & 0x3FF) << 10)) | (trailing & 0x3FF);
                                i += 6;
                            } else {
                                cp = -1;
                            }
                        }
                        match u32::try_from(cp)
                            .ok()
                            .filter(|&c| valid_codepoint(c))
                            .and_then(char::from_u32)
                        {
                            Some(c) => out.push(c),
                            None => {
                                let shown = &token[begin..i.min(token.len())];
                                return Err(format!(
                                    "{} is not a valid Unicode character",
                                    sanitize(shown)
                                ));
                            }
                        }
                    }
                    _ => return Err("invalid escape sequence in string".into()),
                }
            }
            _ => {
                let (cp, len) = mod_utf8_codepoint(&token[i..]);
                match cp.and_then(char::from_u32) {
                    Some(c) => out.push(c),
                    None => return Err("invalid UTF-8 sequence in string".into()),
                }
                i += len;
            }
        }
    }
    Ok(out)
}

/// Four hex digits as a number, or -1 (QEMU's `cvt4hex`).
fn hex4(s: &[u8]) -> i32 {
    let mut cp = 0i32;
    for k in 0..4 {
        let Some(d) = s.get(k).and_then(|&b| (b as char).to_digit(16)) else {
            return -1;
        };
        cp = cp << 4 | d as i32;
    }
    cp
}

/// A Unicode scalar value that is not a noncharacter.
fn valid_codepoint(cp: u32) -> bool {
    cp <= 0x10FFFF
        && !(0xFDD0..=0xFDEF).contains(&cp)
        && (cp & 0xFFFE) != 0xFFFE
        && !(0xD800..=0xDFFF).contains(&cp)
}

/// Decodes one modified-UTF-8 sequence (QEMU's `mod_utf8_codepoint`, at most 6 bytes): the
/// code point if valid, and how many bytes the sequence spans.
pub(crate) fn mod_utf8_codepoint(s: &[u8]) -> (Option<u32>, usize) {
    const MIN: [u32; 5] = [0x80, 0x800, 0x10000, 0x200000, 0x4000000];
    let Some(&first) = s.first() else {
        return (None, 0);
    };
    if first < 0x80 {
        return (
            if first == 0 {
                None
            } else {
                Some(u32::from(first))
            },
            1,
        );
    }
    if first >= 0xFE || first & 0x40 == 0 {
        return (None, 1);
    }
    let len = first.leading_ones() as usize;
    let mut cp = u32::from(first) & ((0x80u32 >> len) - 1);
    for k in 1..len {
        match s.get(k) {
            Some(&b) if k < 6 && b & 0xC0 == 0x80 => cp = cp << 6 | u32::from(b & 0x3F),
            _ => return (None, k),
        }
    }
    let valid = valid_codepoint(cp) && (cp >= MIN[len - 2] || (cp == 0 && len == 2));
    (valid.then_some(cp), len)
}

/// Bytes as QEMU would print them back: valid modified UTF-8 as text, anything else as
/// U+FFFD, one per invalid sequence.
pub(crate) fn sanitize(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let (cp, len) = mod_utf8_codepoint(&bytes[i..]);
        out.push(cp.and_then(char::from_u32).unwrap_or('\u{FFFD}'));
        i += len.max(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8]) -> Vec<Message> {
        let mut r = Reader::new(Limits::QEMU);
        let mut out = Vec::new();
        let mut rest = input;
        loop {
            let (used, m) = r.feed(rest);
            rest = &rest[used..];
            match m {
                Some(m) => out.push(m),
                None => break,
            }
        }
        out
    }

    fn errors(input: &[u8]) -> Vec<String> {
        read_all(input)
            .into_iter()
            .map(|m| match m {
                Message::Error(e) => e,
                Message::Value(v) => format!("value {v:?}"),
            })
            .collect()
    }

    #[test]
    fn values_and_extensions() {
        let m = read_all(b"{'a': \"x\\u00e9\\ud83d\\ude00\", \"b\": [1, -2.5e3, true, null]}");
        let Message::Value(v) = &m[0] else {
            panic!("{m:?}")
        };
        assert_eq!(
            v.clone().into_value(),
            serde_json::json!({"a": "xé😀", "b": [1, -2500.0, true, null]})
        );
        assert_eq!(read_all(b"1 2").len(), 1, "the 2 is still open at the end");
        assert_eq!(
            errors(b"[]\n1\n"),
            ["value Array([])", "value Number(\"1\", Number(1))"]
        );
    }

    #[test]
    fn errors_match_qemu() {
        assert_eq!(
            errors(b"\xff{\"a\":1}"),
            [
                "JSON parse error, stray '\u{FFFD}'",
                "value Object([(\"a\", Number(\"1\", Number(1)))])"
            ]
        );
        assert_eq!(
            errors(b"{\"id\":\"\x01\"}\n"),
            [
                "JSON parse error, stray '\"\u{1}'",
                "JSON parse error, expecting value"
            ]
        );
        assert_eq!(
            errors(b"{\"a\":01}"),
            [
                "JSON parse error, stray '01'",
                "JSON parse error, expecting value"
            ]
        );
        assert_eq!(
            errors(b"{\"a\":1,\"a\":2}"),
            ["JSON parse error, duplicate key"]
        );
        assert_eq!(
            errors(b"garbage "),
            ["JSON parse error, invalid keyword 'garbage'"]
        );
        assert_eq!(
            errors(b"{\"a\" 1}"),
            ["JSON parse error, missing : in object pair"]
        );
        assert_eq!(
            errors(b"{1:1}"),
            ["JSON parse error, key is not a string in object"]
        );
        assert_eq!(
            errors(b"[1 2]"),
            ["JSON parse error, expected separator in list"]
        );
        assert_eq!(
            errors(b"{\"a\":1 \"b\"}"),
            ["JSON parse error, expected separator in dict"]
        );
        assert_eq!(
            errors(b"\"\\ud83d\""),
            ["JSON parse error, \\ud83d is not a valid Unicode character"]
        );
        assert_eq!(
            errors(b"\"\\q\""),
            ["JSON parse error, invalid escape sequence in string"]
        );
        assert_eq!(
            errors(b"\"\xed\xa0\x80\""),
            ["JSON parse error, invalid UTF-8 sequence in string"]
        );
        assert_eq!(errors(b"\"\xc0\x80\""), ["value String(\"\\0\")"]);
    }

    #[test]
    fn limits() {
        let mut deep = vec![b'['; 1025];
        deep.extend_from_slice(b"]");
        let got = errors(&deep);
        assert_eq!(got[0], "JSON nesting depth limit exceeded");
        let r = Reader::new(Limits {
            max_size: 100,
            max_tokens: 10,
            max_depth: 8,
        });
        let mut r2 = r;
        let mut long = b"\"".to_vec();
        long.extend(std::iter::repeat_n(b'x', 200));
        let (used, m) = r2.feed(&long);
        assert_eq!(
            m,
            Some(Message::Error("JSON token size limit exceeded".into()))
        );
        assert!(used <= 102);
        let mut r3 = Reader::new(Limits {
            max_size: 1000,
            max_tokens: 10,
            max_depth: 8,
        });
        let (_, m) = r3.feed(b"[1,1,1,1,1,1,1]");
        assert_eq!(
            m,
            Some(Message::Error("JSON token count limit exceeded".into()))
        );
    }

    #[test]
    fn byte_at_a_time_is_the_same() {
        let input = b"{\"execute\": 'x', \"id\": [1, {\"y\": -0.5}]} garbage \xfe{\"a\":}";
        let whole = read_all(input);
        let mut r = Reader::new(Limits::QEMU);
        let mut pieces = Vec::new();
        for b in input.iter() {
            let (used, m) = r.feed(std::slice::from_ref(b));
            if let Some(m) = m {
                pieces.push(m);
            }
            if used == 0 {
                // A lookahead byte ended a token: feed it again.
                let (_, m) = r.feed(std::slice::from_ref(b));
                pieces.extend(m);
            }
        }
        assert_eq!(whole, pieces);
    }
}
