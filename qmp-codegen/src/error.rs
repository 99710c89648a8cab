//! Errors and source locations.

use std::fmt;
use std::sync::Arc;

/// Where something was defined: a file and a line (and column, for lexical errors).
///
/// For JSON inputs (introspection dumps, normalized files) `file` also names the item, e.g.
/// `schema/qemu.json definitions[12]`, and `line` is 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file as the user named it (includes are joined onto the including file's path).
    pub file: Arc<str>,
    /// 1-based line; 0 if unknown.
    pub line: u32,
    /// 1-based column; 0 if unknown or not relevant.
    pub col: u32,
}

impl Location {
    /// A location with file, line and column.
    pub fn new(file: Arc<str>, line: u32, col: u32) -> Location {
        Location { file, line, col }
    }

    /// The empty location used after [`crate::model::Schema::without_docs_and_locations`].
    pub fn unknown() -> Location {
        Location {
            file: Arc::from(""),
            line: 0,
            col: 0,
        }
    }

    /// The same location without the column (definition-level messages).
    pub(crate) fn line_only(&self) -> Location {
        Location {
            file: self.file.clone(),
            line: self.line,
            col: 0,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.file.is_empty() {
            f.write_str("<unknown>")?;
        } else {
            f.write_str(&self.file)?;
        }
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.col > 0 {
                write!(f, ":{}", self.col)?;
            }
        }
        Ok(())
    }
}

/// Everything that can go wrong while loading or checking a schema.
///
/// Every variant says what is wrong and where; `Display` gives one line such as
/// `qapi/block.json:120: struct 'Foo': member 'bar' uses unknown type 'Baz'`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// A file could not be read.
    #[error("{path}: cannot read: {error}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The QAPI source text is malformed (lexical or structural JSON-ish error).
    #[error("{location}: syntax error: {message}")]
    Syntax {
        /// Where.
        location: Location,
        /// What is wrong.
        message: String,
    },
    /// A bad `include` directive (missing file, loop).
    #[error("{location}: {message}")]
    Include {
        /// The include directive.
        location: Location,
        /// What is wrong (with the include chain for loops).
        message: String,
    },
    /// A malformed or inconsistent definition or directive.
    #[error("{location}: {what}: {message}")]
    Invalid {
        /// Where.
        location: Location,
        /// The definition (`struct 'Foo'`) or directive (`pragma`) concerned.
        what: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A problem with a documentation comment block.
    #[error("{location}: documentation: {message}")]
    Doc {
        /// Where the block starts.
        location: Location,
        /// What is wrong.
        message: String,
    },
    /// A JSON input (introspection dump, normalized schema) is malformed.
    #[error("{source_name}: {context}: {message}")]
    Json {
        /// The input's name.
        source_name: String,
        /// The item concerned, e.g. `definitions[12] 'Foo'`.
        context: String,
        /// What is wrong.
        message: String,
    },
}

impl SchemaError {
    /// The location, when the error has one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            SchemaError::Syntax { location, .. }
            | SchemaError::Include { location, .. }
            | SchemaError::Invalid { location, .. }
            | SchemaError::Doc { location, .. } => Some(location),
            SchemaError::Io { .. } | SchemaError::Json { .. } => None,
        }
    }

    pub(crate) fn invalid(
        location: &Location,
        what: impl Into<String>,
        message: impl Into<String>,
    ) -> SchemaError {
        SchemaError::Invalid {
            location: location.clone(),
            what: what.into(),
            message: message.into(),
        }
    }

    pub(crate) fn json(
        source_name: &str,
        context: impl Into<String>,
        message: impl Into<String>,
    ) -> SchemaError {
        SchemaError::Json {
            source_name: source_name.to_string(),
            context: context.into(),
            message: message.into(),
        }
    }

    /// A JSON syntax error, with the position once and a hint when the input ends early.
    pub(crate) fn json_syntax(name: &str, e: &serde_json::Error) -> SchemaError {
        let text = e.to_string();
        let what = text
            .rsplit_once(" at line ")
            .map_or(text.as_str(), |(w, _)| w);
        let hint = if e.classify() == serde_json::error::Category::Eof {
            " (the input ends too early: is the file truncated?)"
        } else {
            ""
        };
        SchemaError::json(
            name,
            format!("line {} column {}", e.line(), e.column()),
            format!("not valid JSON: {what}{hint}"),
        )
    }
}
