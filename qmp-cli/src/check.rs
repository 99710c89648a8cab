//! Schema-aware checks before sending: the command, its arguments and event names, against
//! the server's own schema (its `query-qmp-schema`) when there is one, the built-in merged
//! schema otherwise. Argument checks are `qmp_codegen::validate`'s; this module adds what the
//! merged schema's history knows ("removed after QEMU 6.1").

use std::fmt;
use std::sync::{Arc, OnceLock};

use qmp_codegen::history::{Merged, MergedSchema, Path, Support, Version};
use qmp_codegen::model::{Arguments, Definition, JsonType, Member, Schema, TypeRef};
use qmp_codegen::validate::{validate_command, ValidationError, ValidationErrorKind};
use serde_json::{Map, Value};

use crate::args::{Request, Typed};
use crate::schema::{self, Family};

/// Why a request was refused before sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    /// What was wrong (with "did you mean ..." when a near name exists).
    pub message: String,
    /// The nearest valid name, if any.
    pub suggestion: Option<String>,
    /// What the built-in schema's history adds, if anything.
    pub note: Option<String>,
    /// Which schema refused it (`the built-in schema`, `QEMU 10.0.2`).
    pub against: String,
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (checked against {})", self.message, self.against)?;
        if let Some(note) = &self.note {
            write!(f, "\nnote: {note}")?;
        }
        write!(
            f,
            "\nhint: run 'qmp help COMMAND' for the arguments, or pass --no-check to send it anyway"
        )
    }
}

/// Checks requests against a server's schema or the built-in one.
#[derive(Clone)]
pub struct Checker {
    built_in: &'static MergedSchema,
    family: Family,
    /// The server's schema, and its version for messages.
    server: Option<(String, Arc<Schema>)>,
    /// The built-in schema with every command walked as generated (`gen: true`), made on
    /// first need, to check the listed arguments of a `gen: false` command.
    all_generated: Arc<OnceLock<Schema>>,
}

impl Checker {
    /// A checker with the built-in schema only.
    pub fn new(built_in: &'static MergedSchema, family: Family) -> Checker {
        Checker {
            built_in,
            family,
            server: None,
            all_generated: Arc::default(),
        }
    }

    /// Uses the server's `query-qmp-schema` reply from now on; a reply that does not read as
    /// a schema is ignored (with a warning), leaving the built-in schema in charge.
    pub fn set_server(&mut self, version: String, reply: &Value) {
        let name = format!("QEMU {version}");
        match qmp_codegen::introspect::from_value(&name, reply) {
            Ok(s) => self.server = Some((name, Arc::new(s))),
            Err(e) => eprintln!("warning: the server's query-qmp-schema does not read as a schema ({e}); checking against the built-in schema"),
        }
    }

    /// The schema checks run against, and its name.
    pub fn schema(&self) -> (&Schema, &str) {
        match &self.server {
            Some((name, s)) => (s, name),
            None => (&self.built_in.schema, "the built-in schema"),
        }
    }

    /// The built-in schema.
    pub fn built_in(&self) -> &'static MergedSchema {
        self.built_in
    }

    /// The schema family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Checks `command` with `arguments` before sending.
    ///
    /// # Errors
    ///
    /// A [`CheckError`] naming the unknown command or argument, the missing argument or the
    /// wrong type, with the nearest valid name.
    pub fn check(
        &self,
        command: &str,
        arguments: Option<&Map<String, Value>>,
    ) -> Result<(), CheckError> {
        let (mut schema, against) = self.schema();
        let mut args = arguments.map(|a| Value::Object(a.clone()));
        // A `gen: false` command (device_add) parses its own arguments and takes more than
        // its schema lists (a device's properties): check the listed ones only. Only the
        // built-in schema says gen: false; a server's introspection does not.
        if self
            .built_in
            .schema
            .command(command)
            .is_some_and(|c| !c.gen)
        {
            if let (Some(cmd), Some(Value::Object(given))) = (schema.command(command), &mut args) {
                let listed: Vec<&str> = cmd
                    .argument_members(schema)
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect();
                given.retain(|k, _| listed.contains(&k.as_str()));
            }
            if schema.command(command).is_some_and(|c| !c.gen) {
                schema = self.all_generated.get_or_init(|| {
                    let mut all = self.built_in.schema.clone();
                    for d in &mut all.definitions {
                        if let Definition::Command(c) = d {
                            c.gen = true;
                        }
                    }
                    all
                });
            }
        }
        validate_command(schema, command, args.as_ref()).map_err(|mut e| {
            if e.kind == ValidationErrorKind::UnknownCommand {
                // Jaro-Winkler weighs the common prefix: `query-cpus` finds `query-cpus-fast`.
                let names = schema.commands().map(|c| c.name.as_str());
                e.suggestion = schema::nearest(command, names).map(str::to_string);
            }
            self.error(command, misspelt(e, arguments), against)
        })
    }

    /// Sends what was typed as a string where the schema wants a string (`str`, an enum, an
    /// alternate without a number or boolean branch) and the value read as a JSON number or
    /// boolean: `filename=123` is the file `123`, `serial=1.50` the text `1.50`.
    pub fn coerce(&self, request: &mut Request) {
        if request.typed.is_empty() {
            return;
        }
        let (schema, _) = self.schema();
        let (Some(cmd), Some(args)) = (schema.command(&request.command), &mut request.arguments)
        else {
            return;
        };
        let shape = match &cmd.arguments {
            Arguments::Type(t) => Shape::Named(t),
            other => Shape::Members(other.argument_members(schema)),
        };
        coerce_object(schema, shape, args, "", &request.typed);
    }

    fn error(&self, command: &str, mut e: ValidationError, against: &str) -> CheckError {
        let unknown = e.kind == ValidationErrorKind::UnknownCommand;
        // A command the server's QEMU version has but the server does not offer (a storage
        // daemon has no `query-status`): not a typo, nor a version matter.
        if unknown && self.built_in.schema.command(command).is_some() {
            if let Some(note) = self.server_lacks(&Path::definition(command)) {
                e.suggestion = None;
                return CheckError {
                    message: format!("the server does not offer the command '{command}'"),
                    suggestion: None,
                    note: Some(note),
                    against: against.to_string(),
                };
            }
        }
        let note = match &e.kind {
            ValidationErrorKind::UnknownCommand => self
                .built_in
                .schema
                .command(command)
                .and_then(|_| self.history_note(&Path::definition(command))),
            ValidationErrorKind::UnknownArgument if !e.path.contains(['.', '[']) => self
                .argument_owners(command)
                .into_iter()
                .find_map(|owner| self.history_note(&Path::member(owner, &e.path))),
            ValidationErrorKind::BadEnumValue { value } if !e.path.contains(['.', '[']) => {
                self.enum_value_note(command, &e.path, value)
            }
            _ => None,
        };
        let note = match (&self.server, note) {
            (Some((server, _)), Some(n)) => Some(format!("{n}; the server runs {server}")),
            (_, n) => n,
        };
        CheckError {
            message: if unknown {
                e.to_string()
            } else {
                format!("{command}: {e}")
            },
            suggestion: e.suggestion.clone(),
            note,
            against: against.to_string(),
        }
    }

    /// Checks an event name.
    ///
    /// # Errors
    ///
    /// A [`CheckError`] for an event the schema does not have, with the nearest name.
    pub fn check_event(&self, name: &str) -> Result<(), CheckError> {
        let (schema, against) = self.schema();
        if schema.event(name).is_some() {
            return Ok(());
        }
        let suggestion =
            schema::nearest(name, schema.events().map(|e| e.name.as_str())).map(str::to_string);
        let hint = suggestion
            .as_deref()
            .map(|s| format!("; did you mean '{s}'?"))
            .unwrap_or_default();
        // Events are compared with events only (`stop` is a command, `STOP` the event).
        let path = Path::definition(name);
        let known = self.built_in.schema.event(name).is_some();
        let note = if known {
            self.server_lacks(&path)
                .or_else(|| self.history_note(&path))
        } else {
            None
        };
        Err(CheckError {
            message: if known
                && note
                    .as_deref()
                    .is_some_and(|n| n.contains("may offer less"))
            {
                format!("the server does not offer the event '{name}'")
            } else {
                format!("unknown event '{name}'{hint}")
            },
            suggestion,
            note,
            against: against.to_string(),
        })
    }

    /// Where the built-in schema's history keeps the arguments of `command`: the command
    /// itself (inline arguments) or its argument type, and a union's branch types.
    fn argument_owners(&self, command: &str) -> Vec<String> {
        let schema = &self.built_in.schema;
        let Some(cmd) = schema.command(command) else {
            return Vec::new();
        };
        match &cmd.arguments {
            Arguments::Type(t) => {
                let mut owners = vec![t.clone()];
                if let Some(u) = schema.union_type(t) {
                    owners.extend(u.branches.iter().map(|b| b.ty_name.clone()));
                }
                owners
            }
            _ => vec![command.to_string()],
        }
    }

    /// The history of enum value `value` of top-level argument `argument`.
    fn enum_value_note(&self, command: &str, argument: &str, value: &str) -> Option<String> {
        let schema = &self.built_in.schema;
        let owners = self.argument_owners(command);
        let member = owners.iter().find_map(|o| {
            let members = if o == command {
                schema.command(command)?.argument_members(schema)
            } else {
                schema.object_members(o)?
            };
            members.iter().find(|m| m.name == argument)
        })?;
        let TypeRef::Named(enum_name) = &member.ty else {
            return None;
        };
        schema.enum_type(enum_name)?;
        let note = self.history_note(&Path::value(enum_name, value))?;
        Some(note.replacen(&format!("'{value}'"), &format!("'{argument}={value}'"), 1))
    }

    /// When the server's QEMU version has `path` in the built-in schema but the server's own
    /// schema does not: a server that offers less than QEMU of its version (a storage daemon).
    fn server_lacks(&self, path: &Path) -> Option<String> {
        let (server, _) = self.server.as_ref()?;
        let version = Version::parse(server.strip_prefix("QEMU ")?)?;
        let m = Merged::new(self.built_in);
        if m.supports(path, version) != Support::Yes {
            return None;
        }
        let name = path.item().unwrap_or(path.owner());
        Some(format!(
            "{server} has '{name}', but a server may offer less (qemu-storage-daemon offers the \
             block layer's commands and events only)"
        ))
    }

    /// "`X` is in QEMU 2.12 to 6.1 (removed after 6.1)", from the merged history, when the
    /// built-in schema knows `path`.
    fn history_note(&self, path: &Path) -> Option<String> {
        let m = Merged::new(self.built_in);
        let l = m.lifetime(path)?;
        let name = path.item().unwrap_or(path.owner());
        Some(match l.removed_after() {
            Some(v) => format!("'{name}' was removed after QEMU {v}"),
            None => match l.added() {
                Some(v) => format!("'{name}' was added in QEMU {v}"),
                None => format!("'{name}' exists in QEMU {} and later", l.first),
            },
        })
    }
}

/// Where an object's members are listed.
enum Shape<'a> {
    Members(&'a [Member]),
    Named(&'a str),
}

fn coerce_object(
    schema: &Schema,
    shape: Shape<'_>,
    obj: &mut Map<String, Value>,
    path: &str,
    typed: &Typed,
) {
    let members: Vec<&Member> = match shape {
        Shape::Members(m) => m.iter().collect(),
        Shape::Named(name) => match schema.get(name) {
            Some(Definition::Struct(s)) => s.members.iter().collect(),
            Some(Definition::Union(u)) => {
                let mut all: Vec<&Member> = u.base_members.iter().collect();
                let tag = obj.get(&u.discriminator).and_then(Value::as_str);
                if let Some(branch) = tag.and_then(|t| u.branch(t)) {
                    if let Some(m) = schema.object_members(&branch.ty_name) {
                        all.extend(m);
                    }
                }
                all
            }
            _ => return,
        },
    };
    for m in members {
        let Some(value) = obj.get_mut(&m.name) else {
            continue;
        };
        let full = if path.is_empty() {
            m.name.clone()
        } else {
            format!("{path}.{}", m.name)
        };
        coerce_value(schema, &m.ty, value, &full, typed);
    }
}

fn coerce_value(schema: &Schema, ty: &TypeRef, value: &mut Value, path: &str, typed: &Typed) {
    let json = match value {
        Value::Number(_) => JsonType::Number,
        Value::Bool(_) => JsonType::Boolean,
        Value::Object(obj) => {
            let TypeRef::Named(name) = ty else {
                return;
            };
            let target = match schema.alternate_type(name) {
                Some(alt) => match alt.branch_for(schema, JsonType::Object) {
                    Some(b) => &b.ty,
                    None => return,
                },
                None => ty,
            };
            if let TypeRef::Named(name) = target {
                coerce_object(schema, Shape::Named(name), obj, path, typed);
            }
            return;
        }
        _ => return,
    };
    let wants_string = match schema.json_type(ty) {
        Some(JsonType::String) => true,
        Some(_) => false,
        None => ty
            .named()
            .and_then(|n| schema.alternate_type(n))
            .is_some_and(|alt| {
                alt.branch_for(schema, json).is_none()
                    && alt.branch_for(schema, JsonType::String).is_some()
            }),
    };
    if let (true, Some(text)) = (wants_string, typed.get(path)) {
        *value = Value::String(text.clone());
    }
}

/// QEMU reports a misspelt required member as missing (`drvier=` leaves `driver` missing):
/// when a given member beside it is near the missing name, suggest that it is a typo.
fn misspelt(mut e: ValidationError, arguments: Option<&Map<String, Value>>) -> ValidationError {
    if e.kind != ValidationErrorKind::MissingArgument || e.suggestion.is_some() {
        return e;
    }
    let mut parts: Vec<&str> = e.path.split('.').collect();
    let Some(missing) = parts.pop() else {
        return e;
    };
    let mut object = arguments;
    for p in parts {
        object = object.and_then(|o| o.get(p)).and_then(Value::as_object);
    }
    let Some(object) = object else {
        return e;
    };
    let typo = object
        .keys()
        .filter(|k| k.as_str() != missing)
        .find(|k| schema::nearest(k, [missing]).is_some());
    if let Some(typo) = typo {
        e.message = format!("{} ('{typo}' is given)", e.message);
        e.suggestion = Some(missing.to_string());
    }
    e
}
