//! Loading any input kind, detected by content.

use std::path::Path;

use serde_json::Value;

use crate::error::SchemaError;
use crate::model::Schema;
use crate::{introspect, normalized, parse};

/// The kind of a schema input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// QAPI source (single-quoted JSON-like text with `#` comments).
    QapiSource,
    /// `query-qmp-schema` output: a JSON array, or a JSON object with `return`.
    Introspection,
    /// Our normalized schema: a JSON object with `format`/`definitions`.
    Normalized,
}

/// Tells the input kind from the text alone (cheap: looks at the first characters; a JSON
/// object is told apart by its keys, which needs a parse, so `{"` counts as JSON here and
/// [`load_path`] looks closer).
pub fn detect(text: &str) -> InputKind {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('[') {
        return InputKind::Introspection;
    }
    if let Some(rest) = t.strip_prefix('{') {
        if rest.trim_start().starts_with('"') {
            return if rest.contains("\"return\"") && !rest.contains("\"definitions\"") {
                InputKind::Introspection
            } else {
                InputKind::Normalized
            };
        }
    }
    InputKind::QapiSource
}

fn from_json(name: &str, source: String, v: Value) -> Result<Schema, SchemaError> {
    match &v {
        Value::Array(_) => {
            let mut s = introspect::from_value(name, &v)?;
            s.source = Some(source);
            Ok(s)
        }
        Value::Object(o) if o.contains_key("return") => {
            let mut s = introspect::from_value(name, &v)?;
            s.source = Some(source);
            Ok(s)
        }
        Value::Object(o) if o.contains_key("format") || o.contains_key("definitions") => {
            normalized::from_value(name, &v)
        }
        _ => Err(SchemaError::json(
            name,
            "top level",
            "JSON that is neither introspection output (an array, or an object with \
             \"return\") nor a normalized schema (an object with \"format\" and \
             \"definitions\")",
        )),
    }
}

/// Loads and checks a schema from a file of any kind: a QAPI root file (its includes are
/// followed), a `query-qmp-schema` dump, or a normalized schema.
pub fn load_path(path: impl AsRef<Path>) -> Result<Schema, SchemaError> {
    let path = path.as_ref();
    let display = path.to_string_lossy().into_owned();
    let bytes = std::fs::read(path).map_err(|e| SchemaError::Io {
        path: display.clone(),
        error: e,
    })?;
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    if detect(&head) == InputKind::QapiSource {
        return not_empty(&display, crate::parse_qapi(path)?);
    }
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        SchemaError::json(
            &display,
            "encoding",
            format!("JSON input is not UTF-8: {e}"),
        )
    })?;
    let v: Value =
        serde_json::from_str(text).map_err(|e| SchemaError::json_syntax(&display, &e))?;
    let source = format!("query-qmp-schema output {}", parse::source_name(path));
    not_empty(&display, from_json(&display, source, v)?)
}

/// Rejects a schema that defines nothing: an empty file or `[]` is far more likely the wrong
/// file than a schema, and would generate an API without a single command.
fn not_empty(name: &str, schema: Schema) -> Result<Schema, SchemaError> {
    let c = schema.counts();
    if c.commands + c.events + c.structs + c.unions + c.alternates + c.enums == 0 {
        return Err(SchemaError::json(
            name,
            "content",
            "the schema defines nothing (no command, event or type); is this the right file?",
        ));
    }
    Ok(schema)
}

/// Loads and checks a schema held in memory, of any kind (QAPI source cannot use `include`
/// here). `name` names the input in messages.
pub fn load_str(name: &str, text: &str) -> Result<Schema, SchemaError> {
    match detect(text) {
        InputKind::QapiSource => not_empty(name, crate::parse_qapi_str(name, text)?),
        _ => {
            let v: Value =
                serde_json::from_str(text).map_err(|e| SchemaError::json_syntax(name, &e))?;
            not_empty(
                name,
                from_json(name, format!("query-qmp-schema output {name}"), v)?,
            )
        }
    }
}
