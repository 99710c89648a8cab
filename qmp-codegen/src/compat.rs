//! Compatibility report: the schema a program was built with against what a server says it
//! supports (its `query-qmp-schema`), as data ([`CompatReport`]) and as text (`Display`).
//!
//! Introspection hides type names (QEMU numbers them), so both schemas are compared by what
//! travels on the wire, reached from commands and events: each command and event, each
//! argument, event data member and reply member (nested ones dotted, union branch members
//! included, through arrays and alternates), and each value of the enums found there.
//!
//! ```
//! let built_in = qmp_codegen::parse_qapi_str("built-in", concat!(
//!     "{ 'enum': 'Sync', 'data': ['top', 'full', 'bitmap'] }\n",
//!     "{ 'command': 'mirror', 'data': { 'device': 'str', 'sync': 'Sync', '*copy-mode': 'str' } }\n",
//! ))?;
//! let server = qmp_codegen::load_str("server", r#"[
//!   {"name": "mirror", "meta-type": "command", "arg-type": "0", "ret-type": "1"},
//!   {"name": "0", "meta-type": "object", "members": [
//!     {"name": "device", "type": "str", "default": null}, {"name": "sync", "type": "2"}]},
//!   {"name": "1", "meta-type": "object", "members": []},
//!   {"name": "2", "meta-type": "enum", "values": ["top", "full"]},
//!   {"name": "str", "meta-type": "builtin", "json-type": "string"}
//! ]"#)?;
//! let report = qmp_codegen::compat::report(&built_in, &server);
//! let only: Vec<String> = report.only_built_in.iter().map(|e| e.to_string()).collect();
//! assert_eq!(only, ["argument mirror.copy-mode", "value mirror.sync = 'bitmap'"]);
//! assert_eq!(report.requirement_changes[0].path, "mirror.device");
//! assert!(report.to_string().contains("only in the built-in schema (2)"));
//! # Ok::<(), qmp_codegen::SchemaError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::model::{Arguments, Definition, Member, Schema, TypeRef};

/// What an [`Entry`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    /// A command (`path`: its name).
    Command,
    /// An event (`path`: its name).
    Event,
    /// A command argument (`blockdev-mirror.copy-mode`, nested members dotted).
    Argument,
    /// A member of a command's reply (`query-block.inserted.node-name`).
    Reply,
    /// A member of an event's data (`JOB_STATUS_CHANGE.status`).
    EventData,
    /// A value of an enum used at `path` (`blockdev-mirror.sync`).
    Value,
}

impl EntryKind {
    fn label(self) -> &'static str {
        match self {
            EntryKind::Command => "command",
            EntryKind::Event => "event",
            EntryKind::Argument => "argument",
            EntryKind::Reply => "reply member",
            EntryKind::EventData => "event member",
            EntryKind::Value => "value",
        }
    }
}

/// Something present on one side only.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    /// What it is.
    pub kind: EntryKind,
    /// Where: the command or event, then dotted members.
    pub path: String,
    /// For [`EntryKind::Value`]: the enum value.
    pub value: Option<String>,
}

impl fmt::Display for Entry {
    /// `command blockdev-mirror`, `argument blockdev-mirror.copy-mode`,
    /// `value blockdev-mirror.sync = 'top'`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.label(), self.path)?;
        if let Some(v) = &self.value {
            write!(f, " = '{v}'")?;
        }
        Ok(())
    }
}

/// A member both sides have, required on one and optional on the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementChange {
    /// What it is ([`EntryKind::Argument`], [`EntryKind::Reply`] or [`EntryKind::EventData`]).
    pub kind: EntryKind,
    /// Where (dotted).
    pub path: String,
    /// Required in the built-in schema.
    pub built_in_required: bool,
    /// Required by the server.
    pub server_required: bool,
}

/// The differences between two schemas ([`report`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompatReport {
    /// Where the built-in schema came from.
    pub built_in: String,
    /// Where the server's came from.
    pub server: String,
    /// In the built-in schema only: calling these fails on the server (or is never sent by
    /// it).
    pub only_built_in: Vec<Entry>,
    /// On the server only: the built-in schema (the generated API) does not know them.
    pub only_server: Vec<Entry>,
    /// Members whose requirement differs.
    pub requirement_changes: Vec<RequirementChange>,
}

impl CompatReport {
    /// Whether the two schemas agree on everything compared.
    pub fn is_empty(&self) -> bool {
        self.only_built_in.is_empty()
            && self.only_server.is_empty()
            && self.requirement_changes.is_empty()
    }
}

impl fmt::Display for CompatReport {
    /// A readable report: a summary line, then each list, one entry per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "built-in schema: {}\nserver schema: {}",
            self.built_in, self.server
        )?;
        if self.is_empty() {
            return writeln!(f, "no differences");
        }
        for (title, list) in [
            ("only in the built-in schema", &self.only_built_in),
            ("only on the server", &self.only_server),
        ] {
            writeln!(f, "{title} ({}):", list.len())?;
            for e in list {
                writeln!(f, "  {e}")?;
            }
        }
        writeln!(
            f,
            "requirement changes ({}):",
            self.requirement_changes.len()
        )?;
        for c in &self.requirement_changes {
            let word = |r: bool| if r { "required" } else { "optional" };
            writeln!(
                f,
                "  {} {}: {} built in, {} on the server",
                c.kind.label(),
                c.path,
                word(c.built_in_required),
                word(c.server_required)
            )?;
        }
        Ok(())
    }
}

/// How deep nested members are followed (QEMU's deepest argument nesting is well below).
const MAX_DEPTH: usize = 8;

/// Everything reachable on the wire: (kind, path, value) → required (for members).
type Surface = BTreeMap<(EntryKind, String, Option<String>), bool>;

struct Walker<'s> {
    schema: &'s Schema,
    out: Surface,
}

impl<'s> Walker<'s> {
    fn add(&mut self, kind: EntryKind, path: String, value: Option<String>, required: bool) {
        self.out
            .entry((kind, path, value))
            .and_modify(|r| *r = *r && required)
            .or_insert(required);
    }

    fn members(
        &mut self,
        kind: EntryKind,
        prefix: &str,
        members: &[Member],
        stack: &mut Vec<&'s str>,
    ) {
        for m in members {
            let path = format!("{prefix}.{}", m.name);
            self.add(kind, path.clone(), None, !m.optional);
            self.ty(kind, &path, &m.ty, stack);
        }
    }

    /// The members and enum values reachable through a value of type `ty` at `path`.
    fn ty(&mut self, kind: EntryKind, path: &str, ty: &TypeRef, stack: &mut Vec<&'s str>) {
        let schema = self.schema;
        match ty {
            TypeRef::Builtin(_) => {}
            TypeRef::Array(inner) => self.ty(kind, path, inner, stack),
            TypeRef::Named(name) => {
                let Some(def) = schema.get(name) else {
                    return;
                };
                let name = def.name();
                if stack.contains(&name) || stack.len() >= MAX_DEPTH {
                    return;
                }
                stack.push(name);
                match def {
                    Definition::Enum(e) => {
                        for v in &e.values {
                            self.add(
                                EntryKind::Value,
                                path.to_string(),
                                Some(v.name.clone()),
                                true,
                            );
                        }
                    }
                    Definition::Struct(s) => self.members(kind, path, &s.members, stack),
                    Definition::Union(u) => {
                        self.members(kind, path, &u.base_members, stack);
                        for b in &u.branches {
                            if let Some(ms) = schema.object_members(&b.ty_name) {
                                // Branch members are optional as seen from the union.
                                for m in ms {
                                    let p = format!("{path}.{}", m.name);
                                    self.add(kind, p.clone(), None, false);
                                    self.ty(kind, &p, &m.ty, stack);
                                }
                            }
                        }
                    }
                    Definition::Alternate(a) => {
                        for b in &a.branches {
                            self.ty(kind, path, &b.ty, stack);
                        }
                    }
                    Definition::Command(_) | Definition::Event(_) => {}
                }
                stack.pop();
            }
        }
    }
}

fn surface(schema: &Schema) -> Surface {
    let mut w = Walker {
        schema,
        out: Surface::new(),
    };
    for def in &schema.definitions {
        let mut stack = Vec::new();
        match def {
            Definition::Command(c) => {
                w.add(EntryKind::Command, c.name.clone(), None, true);
                match &c.arguments {
                    Arguments::None => {}
                    Arguments::Members(ms) => {
                        w.members(EntryKind::Argument, &c.name, ms, &mut stack)
                    }
                    Arguments::Type(t) => w.ty(
                        EntryKind::Argument,
                        &c.name,
                        &TypeRef::Named(t.clone()),
                        &mut stack,
                    ),
                }
                if let Some(r) = &c.returns {
                    w.ty(EntryKind::Reply, &c.name, r, &mut stack);
                }
            }
            Definition::Event(e) => {
                w.add(EntryKind::Event, e.name.clone(), None, true);
                match &e.data {
                    Arguments::None => {}
                    Arguments::Members(ms) => {
                        w.members(EntryKind::EventData, &e.name, ms, &mut stack)
                    }
                    Arguments::Type(t) => w.ty(
                        EntryKind::EventData,
                        &e.name,
                        &TypeRef::Named(t.clone()),
                        &mut stack,
                    ),
                }
            }
            _ => {}
        }
    }
    w.out
}

/// Compares `built_in` (the schema a program was built with, e.g. `schema/qemu.json`) with
/// `server` (a server's `query-qmp-schema`, read with [`crate::load_str`] or
/// [`crate::introspect::from_value`]): what is present on one side only, and members required
/// on one side and optional on the other. Entries are sorted by kind, then path.
pub fn report(built_in: &Schema, server: &Schema) -> CompatReport {
    let a = surface(built_in);
    let b = surface(server);
    let entry = |(kind, path, value): &(EntryKind, String, Option<String>)| Entry {
        kind: *kind,
        path: path.clone(),
        value: value.clone(),
    };
    let mut r = CompatReport {
        built_in: built_in
            .source
            .clone()
            .unwrap_or_else(|| "built-in schema".into()),
        server: server
            .source
            .clone()
            .unwrap_or_else(|| "server schema".into()),
        ..CompatReport::default()
    };
    for (k, required) in &a {
        match b.get(k) {
            None => r.only_built_in.push(entry(k)),
            Some(server_required) if server_required != required && k.2.is_none() => {
                if matches!(
                    k.0,
                    EntryKind::Argument | EntryKind::Reply | EntryKind::EventData
                ) {
                    r.requirement_changes.push(RequirementChange {
                        kind: k.0,
                        path: k.1.clone(),
                        built_in_required: *required,
                        server_required: *server_required,
                    });
                }
            }
            Some(_) => {}
        }
    }
    r.only_server = b
        .keys()
        .filter(|k| !a.contains_key(*k))
        .map(entry)
        .collect();
    r.only_built_in.sort();
    r.only_server.sort();
    r
}
