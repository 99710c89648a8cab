//! qmp-shell's input language: `command key=value ...`, values that are JSON when they parse
//! as JSON and strings otherwise, dotted keys for nested objects (`file.filename=x`), and
//! `transaction(` ... `)` for grouped actions.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// What is wrong with a command line's arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// A word without `=`.
    #[error("'{word}' is not key=value (write a value after '=', e.g. '{word}=true')")]
    NotKeyValue {
        /// The word.
        word: String,
    },
    /// A key that is empty or has an empty part between dots.
    #[error("'{word}' has an empty key or an empty part between dots")]
    EmptyKey {
        /// The word.
        word: String,
    },
    /// The same key given twice.
    #[error("'{key}' is given twice")]
    Duplicate {
        /// The dotted key.
        key: String,
    },
    /// A key used both as a value and as an object (`file=x file.driver=y`).
    #[error("'{key}' is both a value and an object with members ('{key}.…')")]
    NotAnObject {
        /// The dotted key.
        key: String,
    },
    /// `--args` that is not a JSON object.
    #[error("--args must be a JSON object ({reason})")]
    BadArgsJson {
        /// Why.
        reason: String,
    },
    /// A quote or bracket that is never closed.
    #[error("unclosed {what} in: {line}")]
    Unclosed {
        /// `"`, `'`, `[` or `{`.
        what: String,
        /// The line.
        line: String,
    },
}

/// Parses one value: JSON when it parses as JSON (`true`, `42`, `"x"`, `[1]`, `{"a":1}`,
/// `null`), a string otherwise; a value in single quotes is the string inside them.
///
/// ```
/// use qmp_cli::args::parse_value;
/// use serde_json::json;
/// assert_eq!(parse_value("42"), json!(42));
/// assert_eq!(parse_value("disk0"), json!("disk0"));
/// assert_eq!(parse_value("'two words'"), json!("two words"));
/// ```
pub fn parse_value(text: &str) -> Value {
    if text.len() >= 2 && text.starts_with('\'') && text.ends_with('\'') {
        return Value::String(text[1..text.len() - 1].to_string());
    }
    match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => Value::String(text.to_string()),
    }
}

/// Builds a command's arguments from `key=value` words, with dotted keys making nested
/// objects, merged over `base` (from `--args`) when given.
///
/// ```
/// use qmp_cli::args::parse_arguments;
/// use serde_json::json;
/// let words = ["node-name=disk0", "file.driver=file", "file.filename=/tmp/x", "read-only=true"];
/// let args = parse_arguments(None, words.iter().copied())?;
/// assert_eq!(args, json!({"node-name": "disk0", "read-only": true,
///                         "file": {"driver": "file", "filename": "/tmp/x"}}).as_object().cloned().unwrap());
/// # Ok::<(), qmp_cli::args::ArgError>(())
/// ```
///
/// # Errors
///
/// [`ArgError`]: a word without `=`, an empty key part, a key given twice, a key that is
/// both a value and an object.
pub fn parse_arguments<'a>(
    base: Option<Map<String, Value>>,
    words: impl IntoIterator<Item = &'a str>,
) -> Result<Map<String, Value>, ArgError> {
    parse_arguments_typed(base, words).map(|(args, _)| args)
}

/// The text typed for values that read as JSON numbers or booleans, by dotted key: sent as
/// that string where the schema wants a string ([`crate::check::Checker::coerce`]).
pub type Typed = BTreeMap<String, String>;

/// [`parse_arguments`], also returning what was typed for number and boolean values.
///
/// ```
/// use qmp_cli::args::parse_arguments_typed;
/// let (args, typed) = parse_arguments_typed(None, ["filename=1.50", "x.on=true", "n=a"])?;
/// assert_eq!(args["filename"], 1.5);
/// assert_eq!(typed["filename"], "1.50");
/// assert_eq!(typed["x.on"], "true");
/// assert!(!typed.contains_key("n"));
/// # Ok::<(), qmp_cli::args::ArgError>(())
/// ```
///
/// # Errors
///
/// As [`parse_arguments`].
pub fn parse_arguments_typed<'a>(
    base: Option<Map<String, Value>>,
    words: impl IntoIterator<Item = &'a str>,
) -> Result<(Map<String, Value>, Typed), ArgError> {
    let mut out = base.unwrap_or_default();
    let mut typed = Typed::new();
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(ArgError::NotKeyValue { word: word.into() });
        };
        let parts: Vec<&str> = key.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(ArgError::EmptyKey { word: word.into() });
        }
        let parsed = parse_value(value);
        if parsed.is_number() || parsed.is_boolean() {
            typed.insert(key.to_string(), value.to_string());
        }
        insert(&mut out, &parts, parsed, key)?;
    }
    Ok((out, typed))
}

fn insert(
    map: &mut Map<String, Value>,
    parts: &[&str],
    value: Value,
    full: &str,
) -> Result<(), ArgError> {
    let (first, rest) = match parts.split_first() {
        Some(p) => p,
        None => return Ok(()),
    };
    if rest.is_empty() {
        if map.contains_key(*first) {
            return Err(if map[*first].is_object() && !value.is_object() {
                ArgError::NotAnObject { key: full.into() }
            } else {
                ArgError::Duplicate { key: full.into() }
            });
        }
        map.insert((*first).to_string(), value);
        return Ok(());
    }
    let entry = map
        .entry((*first).to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    let prefix_len = full.len() - rest.iter().map(|r| r.len() + 1).sum::<usize>();
    match entry {
        Value::Object(inner) => insert(inner, rest, value, full),
        _ => Err(ArgError::NotAnObject {
            key: full[..prefix_len].to_string(),
        }),
    }
}

/// Parses `--args` text: a JSON object.
///
/// # Errors
///
/// [`ArgError::BadArgsJson`] when it is not valid JSON or not an object.
pub fn parse_args_json(text: &str) -> Result<Map<String, Value>, ArgError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(ArgError::BadArgsJson {
            reason: format!("got {}", json_kind(&other)),
        }),
        Err(e) => Err(ArgError::BadArgsJson {
            reason: e.to_string(),
        }),
    }
}

/// `an object`, `a string`... for messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Splits a shell line into words at whitespace outside quotes and brackets, so that
/// `args={"a": 1, "b": [1, 2]}` and `desc="two words"` stay one word each. Quotes stay in
/// the word ([`parse_value`] reads them).
///
/// ```
/// use qmp_cli::args::split_words;
/// assert_eq!(split_words(r#"qom-set path=/machine property=x value={"a": [1, 2]}"#)?,
///            ["qom-set", "path=/machine", "property=x", r#"value={"a": [1, 2]}"#]);
/// # Ok::<(), qmp_cli::args::ArgError>(())
/// ```
///
/// # Errors
///
/// [`ArgError::Unclosed`] for a quote or bracket left open.
pub fn split_words(line: &str) -> Result<Vec<String>, ArgError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut depth: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in line.chars() {
        if let Some(q) = quote {
            word.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' && q == '"' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => {
                quote = Some(c);
                word.push(c);
            }
            '[' | '{' => {
                depth.push(c);
                word.push(c);
            }
            ']' | '}' => {
                depth.pop();
                word.push(c);
            }
            c if c.is_whitespace() && depth.is_empty() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if let Some(q) = quote {
        return Err(ArgError::Unclosed {
            what: q.to_string(),
            line: line.into(),
        });
    }
    if let Some(b) = depth.last() {
        return Err(ArgError::Unclosed {
            what: b.to_string(),
            line: line.into(),
        });
    }
    if !word.is_empty() {
        words.push(word);
    }
    Ok(words)
}

/// One parsed shell line (or one-shot command line).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The QMP command.
    pub command: String,
    /// Its arguments (`None` when there are none).
    pub arguments: Option<Map<String, Value>>,
    /// What was typed for `key=value` values that read as numbers or booleans.
    pub typed: Typed,
}

impl Request {
    /// The arguments as a JSON value (`None` when there are none).
    pub fn arguments_value(&self) -> Option<Value> {
        self.arguments.clone().map(Value::Object)
    }
}

impl fmt::Display for Request {
    /// The QMP request as one JSON line (without an id; keys in serde_json's order).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = Map::new();
        m.insert("execute".into(), Value::String(self.command.clone()));
        if let Some(a) = &self.arguments {
            m.insert("arguments".into(), Value::Object(a.clone()));
        }
        write!(f, "{}", Value::Object(m))
    }
}

/// The state of `transaction(` mode in the shell: actions collected so far.
#[derive(Debug, Default)]
pub struct Transaction {
    actions: Option<Vec<Value>>,
}

/// What a shell line amounts to.
#[derive(Debug, PartialEq)]
pub enum Line {
    /// Nothing to send yet (empty line, or an action added to an open transaction).
    Pending,
    /// A request to send.
    Send(Request),
}

impl Transaction {
    /// Whether a `transaction(` is open.
    pub fn is_open(&self) -> bool {
        self.actions.is_some()
    }

    /// Reads one line of the shell language: `command key=value ...`, or qmp-shell's
    /// transaction mode: `transaction(` opens it (optionally followed by the first action),
    /// each line `action-type key=value ...` adds an action, and `)` (alone or ending an action
    /// line) sends `transaction` with every action.
    ///
    /// ```
    /// use qmp_cli::args::{Line, Transaction};
    /// let mut t = Transaction::default();
    /// assert_eq!(t.line("transaction(")?, Line::Pending);
    /// assert_eq!(t.line("block-dirty-bitmap-add node=disk0 name=b0")?, Line::Pending);
    /// let Line::Send(r) = t.line(")")? else { panic!() };
    /// assert_eq!(r.command, "transaction");
    /// assert_eq!(r.arguments_value(), Some(serde_json::json!({"actions": [
    ///     {"type": "block-dirty-bitmap-add", "data": {"node": "disk0", "name": "b0"}}]})));
    /// # Ok::<(), qmp_cli::args::ArgError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// What [`split_words`] and [`parse_arguments`] report. After an error, an open
    /// transaction stays open.
    pub fn line(&mut self, line: &str) -> Result<Line, ArgError> {
        let mut words = split_words(line)?;
        if words.is_empty() {
            return Ok(Line::Pending);
        }
        if words[0] == "transaction(" {
            self.actions = Some(Vec::new());
            words.remove(0);
            if words.is_empty() {
                return Ok(Line::Pending);
            }
        } else if let Some(stripped) = words[0].strip_prefix("transaction(") {
            self.actions = Some(Vec::new());
            words[0] = stripped.to_string();
        }
        let Some(actions) = self.actions.as_mut() else {
            let command = words.remove(0);
            let (arguments, typed) = parse_arguments_typed(None, words.iter().map(String::as_str))?;
            return Ok(Line::Send(Request {
                command,
                arguments: (!arguments.is_empty()).then_some(arguments),
                typed,
            }));
        };
        let mut finish = false;
        if words.last().is_some_and(|w| w == ")") {
            words.pop();
            finish = true;
        } else if let Some(last) = words.last_mut() {
            if last.len() > 1 && last.ends_with(')') && !last.contains('=') {
                last.pop();
                finish = true;
            }
        }
        if !words.is_empty() {
            let kind = words.remove(0);
            let data = parse_arguments(None, words.iter().map(String::as_str))?;
            let mut action = Map::new();
            action.insert("type".into(), Value::String(kind));
            action.insert("data".into(), Value::Object(data));
            actions.push(Value::Object(action));
        }
        if !finish {
            return Ok(Line::Pending);
        }
        let actions = self.actions.take().unwrap_or_default();
        let mut arguments = Map::new();
        arguments.insert("actions".into(), Value::Array(actions));
        Ok(Line::Send(Request {
            command: "transaction".into(),
            arguments: Some(arguments),
            typed: Typed::new(),
        }))
    }

    /// Drops an open transaction.
    pub fn abort(&mut self) {
        self.actions = None;
    }
}
