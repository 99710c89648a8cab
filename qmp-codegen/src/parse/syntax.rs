//! The lexical and syntactic layer of one QAPI source file.
//!
//! A file is a sequence of top-level objects in a JSON-like syntax (single-quoted strings,
//! `true`/`false`, no numbers, no `null`) with `#` comments. At top level, a comment line that
//! is exactly `##` opens a documentation block, closed by another `##` line.

use std::sync::Arc;

use crate::error::{Location, SchemaError};

/// Deepest nesting of `{`/`[` accepted (real schemas need 5).
const MAX_DEPTH: usize = 32;

/// A position in the file (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: u32,
    pub col: u32,
}

/// A parsed value with its position.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub val: Val,
    pub pos: Pos,
}

/// A value of the QAPI JSON-like language.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Str(String),
    Bool(bool),
    List(Vec<Node>),
    Dict(Vec<Entry>),
}

/// One `key: value` of an object, keys unique.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

impl Val {
    /// What kind of value this is, for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Val::Str(_) => "a string",
            Val::Bool(_) => "a boolean",
            Val::List(_) => "a list",
            Val::Dict(_) => "an object",
        }
    }
}

/// A documentation comment block: its text lines (without the leading `# `).
#[derive(Debug, Clone)]
pub(crate) struct DocBlock {
    /// Line of the opening `##`.
    pub line: u32,
    pub lines: Vec<String>,
}

/// A top-level item of a file.
#[derive(Debug)]
pub(crate) enum TopItem {
    Expr(Node),
    Doc(DocBlock),
}

struct Lexer<'a> {
    src: &'a [u8],
    i: usize,
    line: u32,
    line_start: usize,
    file: &'a Arc<str>,
}

/// Parses one file into its top-level items.
pub(crate) fn parse_file(file: &Arc<str>, src: &[u8]) -> Result<Vec<TopItem>, SchemaError> {
    let mut lx = Lexer {
        src,
        i: 0,
        line: 1,
        line_start: 0,
        file,
    };
    let mut items = Vec::new();
    loop {
        // Top-level trivia: whitespace, comments, doc blocks.
        lx.skip_ws();
        match lx.peek() {
            None => break,
            Some(b'#') => {
                let pos = lx.pos();
                let text = lx.comment();
                if text.starts_with("##") {
                    if text.trim_end() != "##" {
                        return Err(lx.err_at(
                            pos,
                            "junk after '##' at the start of a documentation block \
                             (the opening line must be exactly '##')",
                        ));
                    }
                    items.push(TopItem::Doc(lx.doc_block(pos)?));
                }
            }
            Some(b'{') => {
                let node = lx.value(0)?;
                items.push(TopItem::Expr(node));
            }
            Some(_) => {
                let pos = lx.pos();
                let what = lx.describe_here();
                return Err(lx.err_at(
                    pos,
                    format!("expected '{{' to start a definition or directive, found {what}"),
                ));
            }
        }
    }
    Ok(items)
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.i).copied()
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: (self.i - self.line_start + 1) as u32,
        }
    }

    fn err_at(&self, pos: Pos, msg: impl Into<String>) -> SchemaError {
        SchemaError::Syntax {
            location: Location::new(self.file.clone(), pos.line, pos.col),
            message: msg.into(),
        }
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.i += 1;
            if c == b'\n' {
                self.line += 1;
                self.line_start = self.i;
            }
        }
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c == b' ' || c == b'\t' || c == b'\n' || c == b'\r' || c == 0x0c {
                self.bump();
            } else {
                break;
            }
        }
    }

    /// Skips whitespace and comments (inside an expression, `##` is a plain comment).
    fn skip_trivia(&mut self) {
        loop {
            self.skip_ws();
            if self.peek() == Some(b'#') {
                self.comment();
            } else {
                break;
            }
        }
    }

    /// Reads a comment from `#` to the end of the line (newline not consumed).
    fn comment(&mut self) -> String {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == b'\n' {
                break;
            }
            self.i += 1;
        }
        String::from_utf8_lossy(&self.src[start..self.i]).into_owned()
    }

    fn doc_block(&mut self, open: Pos) -> Result<DocBlock, SchemaError> {
        let mut lines = Vec::new();
        loop {
            self.skip_ws();
            let pos = self.pos();
            match self.peek() {
                None => {
                    return Err(self.err_at(
                        open,
                        "unterminated documentation block: missing closing '##' line",
                    ))
                }
                Some(b'#') => {}
                Some(_) => {
                    return Err(self.err_at(
                        pos,
                        "documentation block must end with a '##' line before the next \
                         definition",
                    ))
                }
            }
            let raw = self.comment();
            let text = raw.trim_end();
            if text.starts_with("##") {
                if text != "##" {
                    return Err(
                        self.err_at(pos, "junk after '##' at the end of a documentation block")
                    );
                }
                return Ok(DocBlock {
                    line: open.line,
                    lines,
                });
            }
            if text == "#" {
                lines.push(String::new());
            } else if let Some(rest) = text.strip_prefix("# ") {
                lines.push(rest.to_string());
            } else {
                return Err(self.err_at(
                    pos,
                    "documentation line must be '#' alone or start with '# ' (missing space \
                     after '#')",
                ));
            }
        }
    }

    fn describe_here(&self) -> String {
        match self.peek() {
            None => "end of file".to_string(),
            Some(c) if c.is_ascii_graphic() => format!("'{}'", c as char),
            Some(c) => format!("byte 0x{c:02x}"),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, SchemaError> {
        self.skip_trivia();
        let pos = self.pos();
        if depth > MAX_DEPTH {
            return Err(self.err_at(
                pos,
                format!("nesting deeper than {MAX_DEPTH} levels is not allowed"),
            ));
        }
        let val = match self.peek() {
            None => return Err(self.err_at(pos, "unexpected end of file: expected a value")),
            Some(b'{') => {
                self.bump();
                self.dict(depth)?
            }
            Some(b'[') => {
                self.bump();
                self.list(depth)?
            }
            Some(b'\'') => Val::Str(self.string()?),
            Some(b'"') => {
                return Err(self.err_at(
                    pos,
                    "double-quoted strings are not allowed; QAPI uses single quotes",
                ))
            }
            Some(c) if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' => {
                return Err(self.err_at(
                    pos,
                    "numbers are not allowed in QAPI schemas (only strings, true, false, \
                     objects and lists)",
                ))
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.i;
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || c == b'_' {
                        self.bump();
                    } else {
                        break;
                    }
                }
                let word = String::from_utf8_lossy(&self.src[start..self.i]).into_owned();
                match word.as_str() {
                    "true" => Val::Bool(true),
                    "false" => Val::Bool(false),
                    "null" => return Err(self.err_at(pos, "'null' is not allowed in QAPI schemas")),
                    _ => {
                        return Err(self.err_at(
                            pos,
                            format!(
                                "unexpected word '{word}' (expected a quoted string, true or \
                                 false)"
                            ),
                        ))
                    }
                }
            }
            Some(_) => {
                let what = self.describe_here();
                return Err(self.err_at(pos, format!("unexpected {what}: expected a value")));
            }
        };
        Ok(Node { val, pos })
    }

    fn expect_punct(&mut self, want: &[u8], ctx: &str) -> Result<u8, SchemaError> {
        self.skip_trivia();
        let pos = self.pos();
        match self.peek() {
            Some(c) if want.contains(&c) => {
                self.bump();
                Ok(c)
            }
            _ => {
                let what = self.describe_here();
                let expected: Vec<String> =
                    want.iter().map(|c| format!("'{}'", *c as char)).collect();
                Err(self.err_at(
                    pos,
                    format!("expected {} {ctx}, found {what}", expected.join(" or ")),
                ))
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Val, SchemaError> {
        let mut entries: Vec<Entry> = Vec::new();
        self.skip_trivia();
        if self.peek() == Some(b'}') {
            self.bump();
            return Ok(Val::Dict(entries));
        }
        loop {
            self.skip_trivia();
            let key_pos = self.pos();
            let key = match self.peek() {
                Some(b'\'') => self.string()?,
                Some(b'"') => {
                    return Err(self.err_at(
                        key_pos,
                        "double-quoted strings are not allowed; QAPI uses single quotes",
                    ))
                }
                _ => {
                    let what = self.describe_here();
                    return Err(self.err_at(
                        key_pos,
                        format!("expected a quoted key in object, found {what}"),
                    ));
                }
            };
            if entries.iter().any(|e| e.key == key) {
                return Err(self.err_at(key_pos, format!("duplicate key '{key}' in object")));
            }
            self.expect_punct(b":", "after object key")?;
            let value = self.value(depth + 1)?;
            entries.push(Entry {
                key,
                key_pos,
                value,
            });
            if self.expect_punct(b",}", "after object member")? == b'}' {
                return Ok(Val::Dict(entries));
            }
        }
    }

    fn list(&mut self, depth: usize) -> Result<Val, SchemaError> {
        let mut items = Vec::new();
        self.skip_trivia();
        if self.peek() == Some(b']') {
            self.bump();
            return Ok(Val::List(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            if self.expect_punct(b",]", "after list element")? == b']' {
                return Ok(Val::List(items));
            }
        }
    }

    /// Reads a single-quoted string; the cursor is on the opening quote.
    fn string(&mut self) -> Result<String, SchemaError> {
        let open = self.pos();
        self.bump();
        let mut out = String::new();
        loop {
            let pos = self.pos();
            match self.peek() {
                None | Some(b'\n') => {
                    return Err(self.err_at(
                        open,
                        "unterminated string: missing closing single quote on this line",
                    ))
                }
                Some(b'\'') => {
                    self.bump();
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.bump();
                    match self.peek() {
                        Some(b'\\') => {
                            self.bump();
                            out.push('\\');
                        }
                        Some(c) if c.is_ascii_graphic() || c == b' ' => {
                            return Err(self.err_at(
                                pos,
                                format!(
                                    "unknown escape '\\{}' in string: only '\\\\' is allowed",
                                    c as char
                                ),
                            ))
                        }
                        _ => {
                            return Err(self
                                .err_at(pos, "unknown escape in string: only '\\\\' is allowed"))
                        }
                    }
                }
                Some(c) if (0x20..0x7f).contains(&c) => {
                    self.bump();
                    out.push(c as char);
                }
                Some(c) => {
                    let what = if c >= 0x80 {
                        "non-ASCII character"
                    } else {
                        "control character"
                    };
                    return Err(self.err_at(
                        pos,
                        format!(
                            "{what} (byte 0x{c:02x}) in string: only printable ASCII is allowed"
                        ),
                    ));
                }
            }
        }
    }
}
