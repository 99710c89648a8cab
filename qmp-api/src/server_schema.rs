//! [`ServerSchema`]: what the server at the other end supports, from its `query-qmp-schema`.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::{DecodeError, Version};

/// Something a server may or may not support, for [`ServerSchema::supports`] and
/// [`Qmp::supports`](crate::Qmp::supports). Names are QMP's (`blockdev-mirror`, `copy-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaItem<'a> {
    /// A command.
    Command(&'a str),
    /// An event.
    Event(&'a str),
    /// An argument of a command; a nested member is written with dots (`target.driver`
    /// names `driver` inside the `target` argument). Members of union branches count.
    Argument {
        /// The command.
        command: &'a str,
        /// The argument (dotted for nested members).
        argument: &'a str,
    },
    /// A value of the enum an argument takes (through arrays and alternates).
    Value {
        /// The command.
        command: &'a str,
        /// The argument (dotted for nested members).
        argument: &'a str,
        /// The enum value (`top`).
        value: &'a str,
    },
    /// A member of an event's data (dotted for nested members).
    EventMember {
        /// The event.
        event: &'a str,
        /// The member.
        member: &'a str,
    },
}

/// An object type of the server's schema.
#[derive(Debug, Default)]
struct Object {
    /// Member name → type name.
    members: HashMap<String, String>,
    /// The types of the union branches.
    variants: Vec<String>,
    /// The discriminator member of a union, and each branch's tag value → branch type.
    tag: Option<(String, HashMap<String, String>)>,
}

/// What [`ServerSchema::find_unsupported`] found in a command's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsupported {
    /// The argument, dotted for nested members (`target.copy-mode`, `disks[0].driver` is
    /// written `disks.driver`).
    pub argument: String,
    /// The enum value the server lacks, when the argument itself is known.
    pub value: Option<String>,
}

/// How deep [`ServerSchema::find_unsupported`] looks into nested arguments.
const MAX_ARGUMENT_DEPTH: usize = 32;

/// What a server supports: its `query-qmp-schema` reply, reduced to what
/// [`supports`](Self::supports) answers, with its version from the greeting.
///
/// Get one with [`Qmp::server_schema`](crate::Qmp::server_schema), which fetches it once per
/// connection; from then on, typed calls of a command the server lacks, or with an argument
/// it does not know, fail before sending with [`ExecuteError::Unsupported`](crate::ExecuteError::Unsupported).
///
/// ```
/// use qmp_api::{SchemaItem, ServerSchema, Version};
///
/// let reply = serde_json::json!([
///     {"name": "query-status", "meta-type": "command", "arg-type": "0", "ret-type": "1"},
///     {"name": "drive-mirror", "meta-type": "command", "arg-type": "2", "ret-type": "0"},
///     {"name": "0", "meta-type": "object", "members": []},
///     {"name": "1", "meta-type": "object", "members": [{"name": "running", "type": "bool"}]},
///     {"name": "2", "meta-type": "object", "members": [
///         {"name": "device", "type": "str"}, {"name": "sync", "type": "3"}]},
///     {"name": "3", "meta-type": "enum", "values": ["top", "full"]},
/// ]);
/// let s = ServerSchema::from_introspection(Version::new(7, 2, 0), &reply)?;
/// assert!(s.supports(SchemaItem::Command("drive-mirror")));
/// assert!(!s.supports(SchemaItem::Command("blockdev-mirror")));
/// assert!(s.supports(SchemaItem::Argument { command: "drive-mirror", argument: "sync" }));
/// assert!(!s.supports(SchemaItem::Argument { command: "drive-mirror", argument: "copy-mode" }));
/// assert!(s.supports(SchemaItem::Value { command: "drive-mirror", argument: "sync", value: "top" }));
/// assert!(!s.supports(SchemaItem::Value { command: "drive-mirror", argument: "sync", value: "bitmap" }));
/// # Ok::<(), qmp_api::DecodeError>(())
/// ```
#[derive(Debug)]
pub struct ServerSchema {
    version: Version,
    /// Command → its argument type.
    commands: HashMap<String, String>,
    /// Event → its data type.
    events: HashMap<String, String>,
    objects: HashMap<String, Object>,
    enums: HashMap<String, HashSet<String>>,
    /// Array type → element type.
    arrays: HashMap<String, String>,
    /// Alternate type → its branch types.
    alternates: HashMap<String, Vec<String>>,
}

fn text<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

impl ServerSchema {
    /// Reads a `query-qmp-schema` reply (its `return` value) from a server whose greeting
    /// said `version`.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] naming the entry when the reply is not a list of schema entries
    /// with `name` and `meta-type`.
    pub fn from_introspection(
        version: Version,
        reply: &Value,
    ) -> Result<ServerSchema, DecodeError> {
        let bad = |path: String, message: &str, raw: &Value| DecodeError {
            context: "query-qmp-schema".into(),
            path,
            message: message.into(),
            raw: raw.to_string(),
        };
        let entries = reply.as_array().ok_or_else(|| {
            bad(
                ".".into(),
                "expected an array of schema entries",
                &Value::Null,
            )
        })?;
        let mut s = ServerSchema {
            version,
            commands: HashMap::new(),
            events: HashMap::new(),
            objects: HashMap::new(),
            enums: HashMap::new(),
            arrays: HashMap::new(),
            alternates: HashMap::new(),
        };
        for (i, e) in entries.iter().enumerate() {
            let (Some(name), Some(meta)) = (text(e, "name"), text(e, "meta-type")) else {
                return Err(bad(
                    format!("[{i}]"),
                    "a schema entry needs \"name\" and \"meta-type\" strings",
                    e,
                ));
            };
            let name = name.to_string();
            let list = |key: &str| e.get(key).and_then(Value::as_array).into_iter().flatten();
            match meta {
                "command" => {
                    s.commands
                        .insert(name, text(e, "arg-type").unwrap_or_default().to_string());
                }
                "event" => {
                    s.events
                        .insert(name, text(e, "arg-type").unwrap_or_default().to_string());
                }
                "object" => {
                    let members = list("members")
                        .filter_map(|m| Some((text(m, "name")?.into(), text(m, "type")?.into())))
                        .collect();
                    let variants = list("variants")
                        .filter_map(|v| text(v, "type").map(str::to_string))
                        .collect();
                    let tag = text(e, "tag").map(|tag| {
                        let cases = list("variants")
                            .filter_map(|v| {
                                Some((text(v, "case")?.into(), text(v, "type")?.into()))
                            })
                            .collect();
                        (tag.to_string(), cases)
                    });
                    s.objects.insert(
                        name,
                        Object {
                            members,
                            variants,
                            tag,
                        },
                    );
                }
                "enum" => {
                    // `values` in every QEMU; `members` (with features) from 6.2 on.
                    let mut values: HashSet<String> = list("values")
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect();
                    values.extend(
                        list("members").filter_map(|m| text(m, "name").map(str::to_string)),
                    );
                    s.enums.insert(name, values);
                }
                "array" => {
                    if let Some(t) = text(e, "element-type") {
                        s.arrays.insert(name, t.to_string());
                    }
                }
                "alternate" => {
                    let types = list("members")
                        .filter_map(|m| text(m, "type").map(str::to_string))
                        .collect();
                    s.alternates.insert(name, types);
                }
                _ => {}
            }
        }
        Ok(s)
    }

    /// The server's QEMU version, from its greeting.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether the server has `item` (see [`SchemaItem`]).
    pub fn supports(&self, item: SchemaItem<'_>) -> bool {
        match item {
            SchemaItem::Command(c) => self.commands.contains_key(c),
            SchemaItem::Event(e) => self.events.contains_key(e),
            SchemaItem::Argument { command, argument } => self
                .commands
                .get(command)
                .is_some_and(|t| !self.member_types(t, argument).is_empty()),
            SchemaItem::Value {
                command,
                argument,
                value,
            } => self.commands.get(command).is_some_and(|t| {
                self.member_types(t, argument)
                    .into_iter()
                    .any(|t| self.enum_has(t, value, 0))
            }),
            SchemaItem::EventMember { event, member } => self
                .events
                .get(event)
                .is_some_and(|t| !self.member_types(t, member).is_empty()),
        }
    }

    /// Whether the server has command `command`.
    pub fn has_command(&self, command: &str) -> bool {
        self.supports(SchemaItem::Command(command))
    }

    /// Whether command `command` takes a top-level argument `argument`.
    pub fn has_argument(&self, command: &str, argument: &str) -> bool {
        self.commands.get(command).is_some_and(|t| {
            let mut seen = Vec::new();
            self.has_member(t, argument, &mut seen)
        })
    }

    /// The commands the server has, in no particular order.
    pub fn commands(&self) -> impl Iterator<Item = &str> + '_ {
        self.commands.keys().map(String::as_str)
    }

    /// The events the server may send, in no particular order.
    pub fn events(&self) -> impl Iterator<Item = &str> + '_ {
        self.events.keys().map(String::as_str)
    }

    /// The first argument (or enum value of an argument) in `arguments` that command
    /// `command` does not take on this server, looking into nested objects, union branches
    /// (chosen by their discriminator), arrays and alternates. Values of `any` type and
    /// members of types the server leaves open are not looked into; `None` also when the
    /// server lacks the command (ask [`has_command`](Self::has_command) first).
    pub(crate) fn find_unsupported(
        &self,
        command: &str,
        arguments: &serde_json::Map<String, Value>,
    ) -> Option<Unsupported> {
        let ty = self.commands.get(command)?;
        self.unsupported_in_object(ty, arguments, "", 0)
    }

    fn unsupported_in_object(
        &self,
        ty: &str,
        value: &serde_json::Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Option<Unsupported> {
        let object = self.objects.get(ty)?;
        // The branch the discriminator selects; with an unknown tag value the tag member's
        // own enum check reports it.
        let branch = object.tag.as_ref().and_then(|(tag, cases)| {
            let case = value.get(tag)?.as_str()?;
            cases.get(case).and_then(|t| self.objects.get(t))
        });
        for (key, member_value) in value {
            let dotted = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let member_type = object
                .members
                .get(key)
                .or_else(|| branch.and_then(|b| b.members.get(key)));
            let Some(member_type) = member_type else {
                // Without a selected branch, a member of any branch may be meant.
                if branch.is_none() && self.has_member(ty, key, &mut Vec::new()) {
                    continue;
                }
                return Some(Unsupported {
                    argument: dotted,
                    value: None,
                });
            };
            if let Some(found) =
                self.unsupported_in_value(member_type, member_value, &dotted, depth + 1)
            {
                return Some(found);
            }
        }
        None
    }

    fn unsupported_in_value(
        &self,
        ty: &str,
        value: &Value,
        path: &str,
        depth: usize,
    ) -> Option<Unsupported> {
        if depth > MAX_ARGUMENT_DEPTH {
            return None;
        }
        if let Some(element) = self.arrays.get(ty) {
            let items = value.as_array()?;
            return items
                .iter()
                .find_map(|item| self.unsupported_in_value(element, item, path, depth + 1));
        }
        if let Some(branches) = self.alternates.get(ty) {
            // Unsupported only if every branch that fits the value's JSON type says so.
            let mut first = None;
            for b in branches {
                if !self.fits(b, value) {
                    continue;
                }
                match self.unsupported_in_value(b, value, path, depth + 1) {
                    None => return None,
                    Some(found) => {
                        first.get_or_insert(found);
                    }
                }
            }
            return first;
        }
        match value {
            Value::Object(map) => self.unsupported_in_object(ty, map, path, depth),
            Value::String(s) => {
                let values = self.enums.get(ty)?;
                (!values.contains(s)).then(|| Unsupported {
                    argument: path.to_string(),
                    value: Some(s.clone()),
                })
            }
            _ => None,
        }
    }

    /// Whether a value of JSON type `value` can be of (alternate branch) type `ty`.
    fn fits(&self, ty: &str, value: &Value) -> bool {
        match value {
            Value::Object(_) => self.objects.contains_key(ty) || ty == "any",
            Value::String(_) => self.enums.contains_key(ty) || ty == "str" || ty == "any",
            Value::Array(_) => self.arrays.contains_key(ty) || ty == "any",
            // Scalars other than strings are never checked further.
            _ => true,
        }
    }

    /// Whether object type `ty` (or one of its branches) has member `member`.
    fn has_member<'s>(&'s self, ty: &'s str, member: &str, seen: &mut Vec<&'s str>) -> bool {
        if seen.contains(&ty) {
            return false;
        }
        seen.push(ty);
        let Some(o) = self.objects.get(ty) else {
            return false;
        };
        o.members.contains_key(member)
            || o.variants.iter().any(|v| self.has_member(v, member, seen))
    }

    /// The types of the member at dotted `path` inside type `ty` (several where branches or
    /// alternates differ), looking through arrays and alternates.
    fn member_types<'s>(&'s self, ty: &'s str, path: &str) -> Vec<&'s str> {
        let mut current = vec![ty];
        for part in path.split('.') {
            let mut next = Vec::new();
            for t in current {
                for object in self.objects_of(t, 0) {
                    self.collect_member(object, part, &mut next, &mut Vec::new());
                }
            }
            if next.is_empty() {
                return next;
            }
            current = next;
        }
        current
    }

    fn collect_member<'s>(
        &'s self,
        ty: &'s str,
        member: &str,
        out: &mut Vec<&'s str>,
        seen: &mut Vec<&'s str>,
    ) {
        if seen.contains(&ty) {
            return;
        }
        seen.push(ty);
        if let Some(o) = self.objects.get(ty) {
            if let Some(t) = o.members.get(member) {
                out.push(t);
            }
            for v in &o.variants {
                self.collect_member(v, member, out, seen);
            }
        }
    }

    /// The object types a value of `ty` can be (through arrays and alternates).
    fn objects_of<'s>(&'s self, ty: &'s str, depth: usize) -> Vec<&'s str> {
        if depth > 8 {
            return Vec::new();
        }
        if self.objects.contains_key(ty) {
            return vec![ty];
        }
        if let Some(e) = self.arrays.get(ty) {
            return self.objects_of(e, depth + 1);
        }
        if let Some(branches) = self.alternates.get(ty) {
            return branches
                .iter()
                .flat_map(|b| self.objects_of(b, depth + 1))
                .collect();
        }
        Vec::new()
    }

    fn enum_has(&self, ty: &str, value: &str, depth: usize) -> bool {
        if depth > 8 {
            return false;
        }
        if let Some(values) = self.enums.get(ty) {
            return values.contains(value);
        }
        if let Some(e) = self.arrays.get(ty) {
            return self.enum_has(e, value, depth + 1);
        }
        self.alternates
            .get(ty)
            .is_some_and(|bs| bs.iter().any(|b| self.enum_has(b, value, depth + 1)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failure is a test failure

    use super::*;
    use serde_json::json;

    /// A small server schema: `add` takes a flat union on `driver` (branches `a`, `b`), a
    /// list of enum values, an alternate of an object and a string, and an `any`.
    fn schema() -> ServerSchema {
        let reply = json!([
            {"name": "add", "meta-type": "command", "arg-type": "0", "ret-type": "9"},
            {"name": "0", "meta-type": "object", "tag": "driver",
             "members": [{"name": "driver", "type": "1"}, {"name": "modes", "type": "[2]"},
                         {"name": "ref", "type": "3"}, {"name": "opaque", "type": "any"}],
             "variants": [{"case": "a", "type": "4"}, {"case": "b", "type": "5"}]},
            {"name": "1", "meta-type": "enum", "values": ["a", "b"]},
            {"name": "2", "meta-type": "enum", "values": ["fast", "slow"]},
            {"name": "[2]", "meta-type": "array", "element-type": "2"},
            {"name": "3", "meta-type": "alternate", "members": [{"type": "6"}, {"type": "str"}]},
            {"name": "4", "meta-type": "object", "members": [{"name": "size", "type": "int"}]},
            {"name": "5", "meta-type": "object", "members": [{"name": "path", "type": "str"}]},
            {"name": "6", "meta-type": "object", "members": [{"name": "node", "type": "str"}]},
            {"name": "9", "meta-type": "object", "members": []},
        ]);
        ServerSchema::from_introspection(Version::new(9, 0, 0), &reply).unwrap()
    }

    fn find(arguments: Value) -> Option<(String, Option<String>)> {
        let Value::Object(map) = arguments else {
            panic!("arguments must be an object")
        };
        schema()
            .find_unsupported("add", &map)
            .map(|u| (u.argument, u.value))
    }

    #[test]
    fn known_arguments_pass() {
        assert_eq!(
            find(json!({"driver": "a", "size": 1, "modes": ["fast"]})),
            None
        );
        assert_eq!(
            find(json!({"driver": "b", "path": "/x", "ref": "node0"})),
            None
        );
        assert_eq!(find(json!({"driver": "b", "ref": {"node": "n"}})), None);
        // `any` is never looked into.
        assert_eq!(
            find(json!({"driver": "a", "opaque": {"whatever": [1]}})),
            None
        );
        // Without the discriminator, a member of any branch may be meant.
        assert_eq!(find(json!({"path": "/x"})), None);
    }

    #[test]
    fn members_of_the_other_branch_are_unsupported() {
        assert_eq!(
            find(json!({"driver": "a", "path": "/x"})),
            Some(("path".into(), None))
        );
        assert_eq!(
            find(json!({"driver": "a", "nope": 1})),
            Some(("nope".into(), None))
        );
    }

    #[test]
    fn unknown_enum_values_name_their_argument() {
        assert_eq!(
            find(json!({"driver": "c"})),
            Some(("driver".into(), Some("c".into())))
        );
        assert_eq!(
            find(json!({"driver": "a", "modes": ["fast", "warp"]})),
            Some(("modes".into(), Some("warp".into())))
        );
    }

    #[test]
    fn nested_members_are_dotted() {
        assert_eq!(
            find(json!({"driver": "a", "ref": {"node": "n", "extra": true}})),
            Some(("ref.extra".into(), None))
        );
    }

    #[test]
    fn unknown_commands_are_left_to_has_command() {
        let map = serde_json::Map::new();
        assert!(schema().find_unsupported("nope", &map).is_none());
    }
}
