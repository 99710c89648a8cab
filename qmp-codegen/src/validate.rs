//! Checks a command's arguments (and a reply or an event's data) against a checked
//! [`Schema`], the way QEMU's QMP input visitor does, with QEMU's error classes and texts.
//!
//! [`validate_command`] answers what QEMU 10.0 would answer for the same request before
//! running the command: `CommandNotFound` for an unknown command, `GenericError` with QEMU's
//! description (`Parameter 'driver' is missing`, `Parameter 'file.filename' is unexpected`,
//! `Invalid parameter type for 'size', expected: integer`, ...) for a bad argument. Members
//! are visited in schema order (a struct's base first, a union's base then the branch the
//! discriminator selects), and the first fault wins, as in QEMU; members nobody expected are
//! reported once an object's own members all passed. The path of a nested member is QEMU's
//! (`file.driver`, `keys[1].data`); where QEMU names only the last member (enum values,
//! integer ranges, alternates) the description does too, and [`ValidationError::path`] still
//! has the whole path.
//!
//! [`validate_return`] and [`validate_event`] run the same walk over what a server sends, so
//! that a reply or event QEMU could never produce is refused.
//!
//! Not checked, as QEMU does not check them either before running a command: conditions
//! (`if`; a value of a configuration this QEMU lacks is accepted), features (`deprecated`
//! members are accepted, as with QEMU's default `-compat` policy), and every argument of a
//! `gen: false` command (those parse their own arguments).
//!
//! # Example
//!
//! ```
//! use qmp_codegen::validate::{validate_command, ErrorClass, ValidationErrorKind};
//! use serde_json::json;
//!
//! let schema = qmp_codegen::parse_qapi_str("example.json", concat!(
//!     "{ 'enum': 'Driver', 'data': ['file', 'null-co'] }\n",
//!     "{ 'struct': 'Node', 'data': { 'driver': 'Driver', '*size': 'uint32' } }\n",
//!     "{ 'command': 'add-node', 'data': { 'node': 'Node' } }\n",
//! ))?;
//!
//! validate_command(&schema, "add-node", Some(&json!({"node": {"driver": "file"}})))
//!     .expect("valid");
//!
//! let err = validate_command(&schema, "add-node", Some(&json!({"node": {"drivr": "file"}})))
//!     .unwrap_err();
//! assert_eq!(err.class, ErrorClass::GenericError);
//! assert_eq!(err.message, "Parameter 'node.driver' is missing");
//!
//! let err = validate_command(&schema, "add-node", Some(&json!({"node": {"driver": "fil"}})))
//!     .unwrap_err();
//! assert_eq!(err.kind, ValidationErrorKind::BadEnumValue { value: "fil".into() });
//! assert_eq!(err.to_string(),
//!            "Parameter 'driver' does not accept value 'fil'; did you mean `file`?");
//!
//! let err = validate_command(&schema, "add-nod", None).unwrap_err();
//! assert_eq!(err.class, ErrorClass::CommandNotFound);
//! assert_eq!(err.suggestion.as_deref(), Some("add-node"));
//! # Ok::<(), qmp_codegen::SchemaError>(())
//! ```

use std::fmt;

use serde_json::{Map, Value};

use crate::model::{Builtin, Definition, Member, Schema, TypeRef};

/// The QMP error class QEMU uses for a fault (the `class` of its error reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// `CommandNotFound`: the command does not exist.
    CommandNotFound,
    /// `GenericError`: everything else, bad arguments included.
    GenericError,
}

impl ErrorClass {
    /// The class as QMP writes it (`CommandNotFound`, `GenericError`).
    ///
    /// ```
    /// assert_eq!(qmp_codegen::validate::ErrorClass::GenericError.as_str(), "GenericError");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::CommandNotFound => "CommandNotFound",
            ErrorClass::GenericError => "GenericError",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was wrong, for a program to act on (the text for humans is
/// [`ValidationError::message`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValidationErrorKind {
    /// The command is not in the schema.
    UnknownCommand,
    /// `arguments` (or an event's `data`) is not a JSON object.
    ArgumentsNotObject,
    /// A member the type does not have.
    UnknownArgument,
    /// A required member is absent.
    MissingArgument,
    /// A value of the wrong JSON type. `expected` is QEMU's word for what it wanted:
    /// `string`, `integer`, `number`, `boolean`, `null`, `object`, `array`, `uint64` (for a
    /// non-integer where an unsigned one belongs), or an alternate's type name.
    WrongType {
        /// What was expected, as QEMU says it.
        expected: String,
    },
    /// An integer outside its type's range (`int8` ... `uint32`).
    OutOfRange {
        /// QEMU's name of the C type (`uint8_t`, `int32_t`, ...).
        ty: String,
    },
    /// A string that is not one of the enum's values.
    BadEnumValue {
        /// The value given.
        value: String,
    },
    /// A command without return type replied something other than `{}` (replies only).
    NotEmptyObject,
}

/// A fault in a command's arguments (or a reply or event data), with what QEMU would reply.
///
/// `Display` prints [`message`](Self::message), then `; did you mean `x`?` when there is a
/// [`suggestion`](Self::suggestion).
///
/// ```
/// use qmp_codegen::validate::{validate_command, ValidationErrorKind};
///
/// let schema = qmp_codegen::parse_qapi_str("s.json",
///     "{ 'command': 'eject', 'data': { 'device': 'str', '*force': 'bool' } }")?;
/// let args = serde_json::json!({"device": "cd0", "forse": true});
/// let err = validate_command(&schema, "eject", Some(&args)).unwrap_err();
/// assert_eq!(err.kind, ValidationErrorKind::UnknownArgument);
/// assert_eq!(err.path, "forse");
/// assert_eq!(err.to_string(), "Parameter 'forse' is unexpected; did you mean `force`?");
/// # Ok::<(), qmp_codegen::SchemaError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// QEMU's error class for this fault.
    pub class: ErrorClass,
    /// The offending member, dotted as QEMU names it (`file.driver`, `keys[0]`); `""` when
    /// the fault is the command itself (unknown) or its whole `arguments`.
    pub path: String,
    /// QEMU's own description of the fault (its error reply's `desc`).
    pub message: String,
    /// The nearest valid name (command, member or enum value), if one is close.
    pub suggestion: Option<String>,
    /// What was wrong.
    pub kind: ValidationErrorKind,
}

impl ValidationError {
    fn generic(path: String, message: String, kind: ValidationErrorKind) -> Self {
        ValidationError {
            class: ErrorClass::GenericError,
            path,
            message,
            suggestion: None,
            kind,
        }
    }

    fn with_suggestion(mut self, suggestion: Option<String>) -> Self {
        self.suggestion = suggestion;
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, "; did you mean `{s}`?")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}

/// Checks `command` and its `arguments` (`None`: no `arguments` member, as QEMU reads it: an
/// empty object) against `schema`, as QEMU does before running the command.
///
/// # Errors
///
/// The first fault QEMU would report, with its class and description: see
/// [`ValidationError`] and the [module docs](self).
///
/// ```
/// use qmp_codegen::validate::validate_command;
/// use serde_json::json;
///
/// let schema = qmp_codegen::parse_qapi_str("s.json",
///     "{ 'command': 'set-size', 'data': { 'size': 'uint16' } }")?;
/// assert!(validate_command(&schema, "set-size", Some(&json!({"size": 512}))).is_ok());
/// let err = validate_command(&schema, "set-size", Some(&json!({"size": 70000}))).unwrap_err();
/// assert_eq!(err.message, "Parameter 'size' expects uint16_t");
/// # Ok::<(), qmp_codegen::SchemaError>(())
/// ```
pub fn validate_command(
    schema: &Schema,
    command: &str,
    arguments: Option<&Value>,
) -> Result<(), ValidationError> {
    let Some(cmd) = schema.command(command) else {
        let suggestion = nearest(command, schema.commands().map(|c| c.name.as_str()));
        return Err(ValidationError {
            class: ErrorClass::CommandNotFound,
            path: String::new(),
            message: format!("The command {command} has not been found"),
            suggestion,
            kind: ValidationErrorKind::UnknownCommand,
        });
    };
    let empty = Map::new();
    let args = match arguments {
        None => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(ValidationError::generic(
                String::new(),
                "QMP input member 'arguments' must be an object".into(),
                ValidationErrorKind::ArgumentsNotObject,
            ))
        }
    };
    if !cmd.gen {
        return Ok(());
    }
    let walker = Walker { schema };
    walker.object(Shape::from_arguments(&cmd.arguments), args, "")
}

/// Checks a command's successful reply (the value of `return`) against its return type: what
/// a test double must do so that a test cannot pass with a reply QEMU could never send.
/// A command without return type must reply `{}`.
///
/// # Errors
///
/// [`ValidationErrorKind::UnknownCommand`] for a command not in the schema; otherwise the
/// first fault, described in QEMU's words, with the path below `return`.
///
/// ```
/// use qmp_codegen::validate::validate_return;
/// use serde_json::json;
///
/// let schema = qmp_codegen::parse_qapi_str("s.json", concat!(
///     "{ 'struct': 'Status', 'data': { 'running': 'bool' } }\n",
///     "{ 'command': 'query-status', 'returns': 'Status' }\n",
/// ))?;
/// assert!(validate_return(&schema, "query-status", &json!({"running": true})).is_ok());
/// let err = validate_return(&schema, "query-status", &json!({"running": "yes"})).unwrap_err();
/// assert_eq!(err.message, "Invalid parameter type for 'running', expected: boolean");
/// # Ok::<(), qmp_codegen::SchemaError>(())
/// ```
pub fn validate_return(
    schema: &Schema,
    command: &str,
    value: &Value,
) -> Result<(), ValidationError> {
    let Some(cmd) = schema.command(command) else {
        return Err(ValidationError {
            class: ErrorClass::CommandNotFound,
            path: String::new(),
            message: format!("The command {command} has not been found"),
            suggestion: nearest(command, schema.commands().map(|c| c.name.as_str())),
            kind: ValidationErrorKind::UnknownCommand,
        });
    };
    let walker = Walker { schema };
    match &cmd.returns {
        Some(ty) => walker.value(ty, value, "", None),
        None => match value {
            Value::Object(m) if m.is_empty() => Ok(()),
            _ => Err(ValidationError::generic(
                String::new(),
                format!("The command {command} returns nothing, so its reply must be {{}}"),
                ValidationErrorKind::NotEmptyObject,
            )),
        },
    }
}

/// Checks an event's `data` (`None`: absent) against the event's definition.
///
/// # Errors
///
/// [`ValidationErrorKind::UnknownCommand`] (class `CommandNotFound`, naming the event) for
/// an event not in the schema; otherwise the first fault, as for arguments.
///
/// ```
/// use qmp_codegen::validate::validate_event;
/// use serde_json::json;
///
/// let schema = qmp_codegen::parse_qapi_str("s.json",
///     "{ 'event': 'SHUTDOWN', 'data': { 'guest': 'bool' } }")?;
/// assert!(validate_event(&schema, "SHUTDOWN", Some(&json!({"guest": false}))).is_ok());
/// assert!(validate_event(&schema, "SHUTDOWN", None).is_err());
/// # Ok::<(), qmp_codegen::SchemaError>(())
/// ```
pub fn validate_event(
    schema: &Schema,
    event: &str,
    data: Option<&Value>,
) -> Result<(), ValidationError> {
    let Some(ev) = schema.event(event) else {
        return Err(ValidationError {
            class: ErrorClass::CommandNotFound,
            path: String::new(),
            message: format!("The event {event} is not in the schema"),
            suggestion: nearest(event, schema.events().map(|e| e.name.as_str())),
            kind: ValidationErrorKind::UnknownCommand,
        });
    };
    let empty = Map::new();
    let data = match data {
        None => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(ValidationError::generic(
                String::new(),
                format!("The data of event {event} must be an object"),
                ValidationErrorKind::ArgumentsNotObject,
            ))
        }
    };
    Walker { schema }.object(Shape::from_arguments(&ev.data), data, "")
}

/// The members an object must have: inline ones, or those of a named struct or union.
#[derive(Clone, Copy)]
enum Shape<'a> {
    Members(&'a [Member]),
    Named(&'a str),
}

impl<'a> Shape<'a> {
    fn from_arguments(args: &'a crate::model::Arguments) -> Shape<'a> {
        match args {
            crate::model::Arguments::None => Shape::Members(&[]),
            crate::model::Arguments::Members(m) => Shape::Members(m),
            crate::model::Arguments::Type(t) => Shape::Named(t),
        }
    }
}

struct Walker<'a> {
    schema: &'a Schema,
}

impl<'a> Walker<'a> {
    /// An object: its members in schema order, then anything left over is unexpected.
    fn object(
        &self,
        shape: Shape<'a>,
        obj: &Map<String, Value>,
        path: &str,
    ) -> Result<(), ValidationError> {
        let mut known: Vec<&'a str> = Vec::new();
        self.members(shape, obj, path, &mut known)?;
        if let Some(key) = obj.keys().find(|k| !known.contains(&k.as_str())) {
            let full = join(path, key);
            let unused = known.iter().copied().filter(|n| !obj.contains_key(*n));
            return Err(ValidationError::generic(
                full.clone(),
                format!("Parameter '{full}' is unexpected"),
                ValidationErrorKind::UnknownArgument,
            )
            .with_suggestion(nearest(key, unused)));
        }
        Ok(())
    }

    fn members(
        &self,
        shape: Shape<'a>,
        obj: &Map<String, Value>,
        path: &str,
        known: &mut Vec<&'a str>,
    ) -> Result<(), ValidationError> {
        let list: &'a [Member] = match shape {
            Shape::Members(m) => m,
            Shape::Named(name) => match self.schema.get(name) {
                Some(Definition::Struct(s)) => &s.members,
                Some(Definition::Union(u)) => {
                    for m in &u.base_members {
                        known.push(&m.name);
                        self.member(m, obj, path)?;
                    }
                    // The discriminator passed its enum check above (it is a base member).
                    let tag = obj.get(&u.discriminator).and_then(Value::as_str);
                    if let Some(branch) = tag.and_then(|t| u.branch(t)) {
                        self.members(Shape::Named(&branch.ty_name), obj, path, known)?;
                    }
                    return Ok(());
                }
                // The check guarantees object types here; nothing to walk otherwise.
                _ => &[],
            },
        };
        for m in list {
            known.push(&m.name);
            self.member(m, obj, path)?;
        }
        Ok(())
    }

    fn member(
        &self,
        m: &'a Member,
        obj: &Map<String, Value>,
        path: &str,
    ) -> Result<(), ValidationError> {
        let full = join(path, &m.name);
        match obj.get(&m.name) {
            // A JSON null is a value, not an absent member, for QEMU too.
            Some(v) => self.value(&m.ty, v, &full, Some(&m.name)),
            None if m.optional => Ok(()),
            None => Err(ValidationError::generic(
                full.clone(),
                format!("Parameter '{full}' is missing"),
                ValidationErrorKind::MissingArgument,
            )),
        }
    }

    /// A value of type `ty` at `full` (QEMU's full name); `name` is the member's own name
    /// (`None` for an array element or a whole reply), which QEMU uses in some messages.
    fn value(
        &self,
        ty: &'a TypeRef,
        v: &Value,
        full: &str,
        name: Option<&str>,
    ) -> Result<(), ValidationError> {
        let short = name.unwrap_or("null");
        match ty {
            TypeRef::Builtin(b) => builtin(*b, v, full, short),
            TypeRef::Array(elem) => {
                let Value::Array(items) = v else {
                    return Err(wrong_type(full, "array"));
                };
                for (i, item) in items.iter().enumerate() {
                    self.value(elem, item, &format!("{full}[{i}]"), None)?;
                }
                Ok(())
            }
            TypeRef::Named(n) => match self.schema.get(n) {
                Some(Definition::Enum(e)) => {
                    let Value::String(s) = v else {
                        return Err(wrong_type(full, "string"));
                    };
                    if e.value(s).is_some() {
                        return Ok(());
                    }
                    let names = e.values.iter().map(|x| x.name.as_str());
                    Err(bad_enum(full, short, s).with_suggestion(nearest(s, names)))
                }
                Some(Definition::Struct(_)) | Some(Definition::Union(_)) => {
                    let Value::Object(obj) = v else {
                        return Err(wrong_type(full, "object"));
                    };
                    self.object(Shape::Named(n), obj, full)
                }
                Some(Definition::Alternate(a)) => {
                    let json = json_type(v);
                    match a.branch_for(self.schema, json) {
                        Some(branch) => self.value(&branch.ty, v, full, name),
                        None => Err(ValidationError::generic(
                            full.to_string(),
                            format!("Invalid parameter type for '{short}', expected: {}", a.name),
                            ValidationErrorKind::WrongType {
                                expected: a.name.clone(),
                            },
                        )),
                    }
                }
                // Commands and events are not types; the check rules them out.
                _ => Ok(()),
            },
        }
    }
}

fn builtin(b: Builtin, v: &Value, full: &str, short: &str) -> Result<(), ValidationError> {
    match b {
        Builtin::Any => Ok(()),
        Builtin::Str => v
            .is_string()
            .then_some(())
            .ok_or_else(|| wrong_type(full, "string")),
        Builtin::Bool => v
            .is_boolean()
            .then_some(())
            .ok_or_else(|| wrong_type(full, "boolean")),
        Builtin::Null => v
            .is_null()
            .then_some(())
            .ok_or_else(|| wrong_type(full, "null")),
        Builtin::Number => v
            .is_number()
            .then_some(())
            .ok_or_else(|| wrong_type(full, "number")),
        Builtin::QType => {
            let Value::String(s) = v else {
                return Err(wrong_type(full, "string"));
            };
            if Builtin::QTYPE_VALUES.contains(&s.as_str()) {
                Ok(())
            } else {
                let names = Builtin::QTYPE_VALUES.iter().copied();
                Err(bad_enum(full, short, s).with_suggestion(nearest(s, names)))
            }
        }
        Builtin::Int | Builtin::Int64 | Builtin::Int8 | Builtin::Int16 | Builtin::Int32 => {
            let n = v.as_i64().ok_or_else(|| wrong_type(full, "integer"))?;
            let (min, max, ty) = match b {
                Builtin::Int8 => (i8::MIN as i64, i8::MAX as i64, "int8_t"),
                Builtin::Int16 => (i16::MIN as i64, i16::MAX as i64, "int16_t"),
                Builtin::Int32 => (i32::MIN as i64, i32::MAX as i64, "int32_t"),
                _ => return Ok(()),
            };
            if (min..=max).contains(&n) {
                Ok(())
            } else {
                Err(out_of_range(full, short, ty))
            }
        }
        Builtin::Uint8 | Builtin::Uint16 | Builtin::Uint32 | Builtin::Uint64 | Builtin::Size => {
            // QEMU takes negative integers for unsigned types (as their two's complement),
            // for compatibility; only the narrower types then fail their range check.
            let n = match (v.as_u64(), v.as_i64()) {
                (Some(n), _) => n,
                (None, Some(n)) => n as u64,
                (None, None) => {
                    return Err(ValidationError::generic(
                        full.to_string(),
                        format!("Parameter '{full}' expects uint64"),
                        ValidationErrorKind::WrongType {
                            expected: "uint64".into(),
                        },
                    ))
                }
            };
            let (max, ty) = match b {
                Builtin::Uint8 => (u8::MAX as u64, "uint8_t"),
                Builtin::Uint16 => (u16::MAX as u64, "uint16_t"),
                Builtin::Uint32 => (u32::MAX as u64, "uint32_t"),
                _ => return Ok(()),
            };
            if n <= max {
                Ok(())
            } else {
                Err(out_of_range(full, short, ty))
            }
        }
    }
}

fn wrong_type(full: &str, expected: &str) -> ValidationError {
    ValidationError::generic(
        full.to_string(),
        format!("Invalid parameter type for '{full}', expected: {expected}"),
        ValidationErrorKind::WrongType {
            expected: expected.to_string(),
        },
    )
}

fn out_of_range(full: &str, short: &str, ty: &str) -> ValidationError {
    ValidationError::generic(
        full.to_string(),
        format!("Parameter '{short}' expects {ty}"),
        ValidationErrorKind::OutOfRange { ty: ty.to_string() },
    )
}

fn bad_enum(full: &str, short: &str, value: &str) -> ValidationError {
    ValidationError::generic(
        full.to_string(),
        format!("Parameter '{short}' does not accept value '{value}'"),
        ValidationErrorKind::BadEnumValue {
            value: value.to_string(),
        },
    )
}

fn json_type(v: &Value) -> crate::model::JsonType {
    use crate::model::JsonType;
    match v {
        Value::Null => JsonType::Null,
        Value::Bool(_) => JsonType::Boolean,
        Value::Number(_) => JsonType::Number,
        Value::String(_) => JsonType::String,
        Value::Array(_) => JsonType::Array,
        Value::Object(_) => JsonType::Object,
    }
}

/// QEMU's full name of member `name` inside `path`.
fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// The candidate closest to `given` by edit distance, if it is close enough to be a likely
/// typo: at most a third of the longer name's length (and at least 1) edits away.
///
/// ```
/// use qmp_codegen::validate::nearest;
/// assert_eq!(nearest("drivr", ["driver", "node-name"]).as_deref(), Some("driver"));
/// assert_eq!(nearest("xyz", ["driver", "node-name"]), None);
/// ```
pub fn nearest<'c>(given: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(given, c), c))
        .filter(|(d, c)| *d > 0 && *d <= (given.len().max(c.len()) / 3).max(1))
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    const SCHEMA: &str = r#"
{ 'enum': 'Driver', 'data': ['file', 'null-co', 'qcow2'] }
{ 'enum': 'Mode', 'data': ['on', 'off'] }
{ 'struct': 'Base', 'data': { 'driver': 'Driver', '*node-name': 'str' } }
{ 'struct': 'FileOpts', 'data': { 'filename': 'str', '*locking': 'Mode' } }
{ 'struct': 'NullOpts', 'data': { '*size': 'size' } }
{ 'struct': 'Qcow2Opts', 'data': { 'file': 'Ref' } }
{ 'union': 'Options', 'base': 'Base', 'discriminator': 'driver',
  'data': { 'file': 'FileOpts', 'null-co': 'NullOpts', 'qcow2': 'Qcow2Opts' } }
{ 'alternate': 'Ref', 'data': { 'definition': 'Options', 'reference': 'str' } }
{ 'alternate': 'StrOrNull', 'data': { 's': 'str', 'n': 'null' } }
{ 'struct': 'Ranges', 'data': { '*i8': 'int8', '*i16': 'int16', '*i32': 'int32', '*i': 'int',
  '*u8': 'uint8', '*u16': 'uint16', '*u32': 'uint32', '*u64': 'uint64', '*sz': 'size',
  '*n': 'number', '*b': 'bool', '*q': 'QType', '*a': 'any', '*sn': 'StrOrNull' } }
{ 'command': 'add', 'data': 'Options', 'boxed': true }
{ 'command': 'ranges', 'data': 'Ranges' }
{ 'command': 'list', 'data': { 'modes': ['Mode'], '*nodes': ['FileOpts'] } }
{ 'command': 'none' }
{ 'command': 'free', 'data': { 'driver': 'str' }, 'gen': false }
{ 'command': 'query', 'returns': ['FileOpts'] }
"#;

    fn schema() -> Schema {
        crate::parse_qapi_str("t.json", SCHEMA).unwrap()
    }

    fn err(cmd: &str, args: Value) -> ValidationError {
        validate_command(&schema(), cmd, Some(&args)).unwrap_err()
    }

    #[test]
    fn valid_inputs_pass() {
        let s = schema();
        for (cmd, args) in [
            ("add", json!({"driver": "file", "filename": "/x"})),
            (
                "add",
                json!({"driver": "null-co", "size": 1024, "node-name": "n"}),
            ),
            ("add", json!({"driver": "qcow2", "file": "n"})),
            (
                "add",
                json!({"driver": "qcow2", "file": {"driver": "file", "filename": "/x"}}),
            ),
            (
                "ranges",
                json!({"i8": -128, "u8": 255, "u64": -1, "sz": 18446744073709551615u64,
                              "n": 1.5, "b": true, "q": "qdict", "a": [1, {}], "sn": null}),
            ),
            ("ranges", json!({"sn": "x", "i": i64::MIN})),
            ("list", json!({"modes": [], "nodes": [{"filename": "a"}]})),
            ("none", json!({})),
            ("free", json!({"whatever": 1})),
        ] {
            validate_command(&s, cmd, Some(&args)).unwrap_or_else(|e| panic!("{cmd} {args}: {e}"));
        }
        validate_command(&s, "none", None).unwrap();
    }

    #[test]
    fn unknown_command() {
        let e = validate_command(&schema(), "ad", None).unwrap_err();
        assert_eq!(e.class, ErrorClass::CommandNotFound);
        assert_eq!(e.message, "The command ad has not been found");
        assert_eq!(e.suggestion.as_deref(), Some("add"));
        assert_eq!(e.kind, ValidationErrorKind::UnknownCommand);
        assert_eq!(e.path, "");
    }

    #[test]
    fn faults_and_their_texts() {
        let cases = [
            ("add", json!({}), "driver", "Parameter 'driver' is missing"),
            (
                "add",
                json!({"driver": 1}),
                "driver",
                "Invalid parameter type for 'driver', expected: string",
            ),
            (
                "add",
                json!({"driver": "raw"}),
                "driver",
                "Parameter 'driver' does not accept value 'raw'",
            ),
            (
                "add",
                json!({"driver": "file"}),
                "filename",
                "Parameter 'filename' is missing",
            ),
            (
                "add",
                json!({"driver": "file", "filename": "x", "size": 1}),
                "size",
                "Parameter 'size' is unexpected",
            ),
            (
                "add",
                json!({"driver": "qcow2", "file": 1}),
                "file",
                "Invalid parameter type for 'file', expected: Ref",
            ),
            (
                "add",
                json!({"driver": "qcow2", "file": {"driver": "file"}}),
                "file.filename",
                "Parameter 'file.filename' is missing",
            ),
            (
                "add",
                json!({"driver": "qcow2", "file": {"driver": "file", "filename": "x",
              "locking": "maybe"}}),
                "file.locking",
                "Parameter 'locking' does not accept value 'maybe'",
            ),
            (
                "add",
                json!({"driver": "qcow2", "file": {"driver": "null-co", "x": 1}}),
                "file.x",
                "Parameter 'file.x' is unexpected",
            ),
            (
                "ranges",
                json!({"i8": 128}),
                "i8",
                "Parameter 'i8' expects int8_t",
            ),
            (
                "ranges",
                json!({"i16": -32769}),
                "i16",
                "Parameter 'i16' expects int16_t",
            ),
            (
                "ranges",
                json!({"i32": 2147483648u64}),
                "i32",
                "Parameter 'i32' expects int32_t",
            ),
            (
                "ranges",
                json!({"i": 1.0}),
                "i",
                "Invalid parameter type for 'i', expected: integer",
            ),
            (
                "ranges",
                json!({"i": 9223372036854775808u64}),
                "i",
                "Invalid parameter type for 'i', expected: integer",
            ),
            (
                "ranges",
                json!({"u8": 256}),
                "u8",
                "Parameter 'u8' expects uint8_t",
            ),
            (
                "ranges",
                json!({"u8": -1}),
                "u8",
                "Parameter 'u8' expects uint8_t",
            ),
            (
                "ranges",
                json!({"u16": 65536}),
                "u16",
                "Parameter 'u16' expects uint16_t",
            ),
            (
                "ranges",
                json!({"u32": 4294967296u64}),
                "u32",
                "Parameter 'u32' expects uint32_t",
            ),
            (
                "ranges",
                json!({"u64": "1"}),
                "u64",
                "Parameter 'u64' expects uint64",
            ),
            (
                "ranges",
                json!({"sz": 0.5}),
                "sz",
                "Parameter 'sz' expects uint64",
            ),
            (
                "ranges",
                json!({"n": "1"}),
                "n",
                "Invalid parameter type for 'n', expected: number",
            ),
            (
                "ranges",
                json!({"b": null}),
                "b",
                "Invalid parameter type for 'b', expected: boolean",
            ),
            (
                "ranges",
                json!({"q": "qint"}),
                "q",
                "Parameter 'q' does not accept value 'qint'",
            ),
            (
                "ranges",
                json!({"sn": 1}),
                "sn",
                "Invalid parameter type for 'sn', expected: StrOrNull",
            ),
            (
                "list",
                json!({"modes": "on"}),
                "modes",
                "Invalid parameter type for 'modes', expected: array",
            ),
            (
                "list",
                json!({"modes": ["on", "of"]}),
                "modes[1]",
                "Parameter 'null' does not accept value 'of'",
            ),
            (
                "list",
                json!({"modes": [1]}),
                "modes[0]",
                "Invalid parameter type for 'modes[0]', expected: string",
            ),
            (
                "list",
                json!({"modes": [], "nodes": [{"filename": "a"}, {}]}),
                "nodes[1].filename",
                "Parameter 'nodes[1].filename' is missing",
            ),
            (
                "list",
                json!({"modes": [], "nodes": [3]}),
                "nodes[0]",
                "Invalid parameter type for 'nodes[0]', expected: object",
            ),
            ("none", json!({"x": 1}), "x", "Parameter 'x' is unexpected"),
        ];
        for (cmd, args, path, message) in cases {
            let e = err(cmd, args.clone());
            assert_eq!(e.class, ErrorClass::GenericError, "{cmd} {args}");
            assert_eq!(e.message, message, "{cmd} {args}");
            assert_eq!(e.path, path, "{cmd} {args}");
        }
    }

    #[test]
    fn kinds_and_suggestions() {
        let e = err("add", json!({"driver": "file", "filenam": "x"}));
        assert_eq!(e.kind, ValidationErrorKind::MissingArgument);
        let e = err(
            "add",
            json!({"driver": "file", "filename": "x", "lockin": "on"}),
        );
        assert_eq!(e.kind, ValidationErrorKind::UnknownArgument);
        assert_eq!(e.suggestion.as_deref(), Some("locking"));
        assert_eq!(
            e.to_string(),
            "Parameter 'lockin' is unexpected; did you mean `locking`?"
        );
        let e = err("add", json!({"driver": "qcow"}));
        assert_eq!(
            e.kind,
            ValidationErrorKind::BadEnumValue {
                value: "qcow".into()
            }
        );
        assert_eq!(e.suggestion.as_deref(), Some("qcow2"));
        let e = err("ranges", json!({"u8": 300}));
        assert_eq!(
            e.kind,
            ValidationErrorKind::OutOfRange {
                ty: "uint8_t".into()
            }
        );
        let e = err("ranges", json!({"b": 1}));
        assert_eq!(
            e.kind,
            ValidationErrorKind::WrongType {
                expected: "boolean".into()
            }
        );
        assert_eq!(e.suggestion, None);
        let e = validate_command(&schema(), "none", Some(&json!([1]))).unwrap_err();
        assert_eq!(e.kind, ValidationErrorKind::ArgumentsNotObject);
        assert_eq!(e.message, "QMP input member 'arguments' must be an object");
    }

    #[test]
    fn replies_and_events() {
        let s = schema();
        validate_return(&s, "query", &json!([{"filename": "a"}])).unwrap();
        let e = validate_return(&s, "query", &json!([{"filename": 1}])).unwrap_err();
        assert_eq!(e.path, "[0].filename");
        validate_return(&s, "none", &json!({})).unwrap();
        let e = validate_return(&s, "none", &json!({"a": 1})).unwrap_err();
        assert_eq!(e.kind, ValidationErrorKind::NotEmptyObject);
        let e = validate_event(&s, "NOPE", None).unwrap_err();
        assert_eq!(e.kind, ValidationErrorKind::UnknownCommand);
    }
}
