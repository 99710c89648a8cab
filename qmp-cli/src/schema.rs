//! The schemas `qmp` knows: the built-in ones (our merged normalized schemas, embedded), and
//! a server's own `query-qmp-schema`. Names for completion and suggestions, and `qmp help`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::OnceLock;

use qmp_codegen::history::{self, Merged, MergedSchema, Path};
use qmp_codegen::model::{Arguments, Definition, Member, Schema, TypeRef};

/// QEMU's QMP schema, every version from 2.12 to 10.0 merged with its history.
const QEMU_SCHEMA: &str = include_str!("../../schema/qemu.json");
/// The guest agent's schema, merged likewise.
const QGA_SCHEMA: &str = include_str!("../../schema/qga.json");

/// Which built-in schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// QEMU's QMP (system emulators and the storage daemon).
    Qemu,
    /// The guest agent (qemu-ga).
    Agent,
}

impl Family {
    /// The reference manual page and anchor namespace of this family.
    fn manual(self) -> (&'static str, &'static str) {
        match self {
            Family::Qemu => (
                "https://www.qemu.org/docs/master/interop/qemu-qmp-ref.html",
                "QMP",
            ),
            Family::Agent => (
                "https://www.qemu.org/docs/master/interop/qemu-ga-ref.html",
                "QGA",
            ),
        }
    }
}

/// The built-in merged schema of `family`, parsed once.
///
/// # Errors
///
/// A message if the embedded schema does not parse (a build of a broken schema file).
pub fn built_in(family: Family) -> Result<&'static MergedSchema, String> {
    static QEMU: OnceLock<Result<MergedSchema, String>> = OnceLock::new();
    static QGA: OnceLock<Result<MergedSchema, String>> = OnceLock::new();
    let (cell, name, text) = match family {
        Family::Qemu => (&QEMU, "schema/qemu.json", QEMU_SCHEMA),
        Family::Agent => (&QGA, "schema/qga.json", QGA_SCHEMA),
    };
    cell.get_or_init(|| history::from_str(name, text).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// A schema type as QAPI writes it: `str`, `['BlockInfo']`, `MirrorSyncMode`.
pub fn type_name(ty: &TypeRef) -> String {
    match ty {
        TypeRef::Builtin(b) => b.name().to_string(),
        TypeRef::Named(n) => n.clone(),
        TypeRef::Array(e) => format!("[{}]", type_name(e)),
    }
}

/// Every member an object of type `ty` can have on the wire (union branch members included),
/// looking through arrays and alternates.
pub fn members_of<'s>(schema: &'s Schema, ty: &TypeRef) -> Vec<&'s Member> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    collect_members(schema, ty, &mut out, &mut seen);
    out
}

fn collect_members<'s>(
    schema: &'s Schema,
    ty: &TypeRef,
    out: &mut Vec<&'s Member>,
    seen: &mut Vec<String>,
) {
    match ty {
        TypeRef::Builtin(_) => {}
        TypeRef::Array(e) => collect_members(schema, e, out, seen),
        TypeRef::Named(n) => {
            if seen.contains(n) {
                return;
            }
            seen.push(n.clone());
            match schema.get(n) {
                Some(Definition::Struct(s)) => out.extend(s.members.iter()),
                Some(Definition::Union(u)) => {
                    out.extend(u.base_members.iter());
                    for b in &u.branches {
                        collect_members(schema, &TypeRef::Named(b.ty_name.clone()), out, seen);
                    }
                }
                Some(Definition::Alternate(a)) => {
                    for b in &a.branches {
                        collect_members(schema, &b.ty, out, seen);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The top-level arguments of `command`; for arguments of a union type (`blockdev-add`),
/// every branch's members too.
pub fn top_members<'s>(schema: &'s Schema, command: &str) -> Vec<&'s Member> {
    let Some(cmd) = schema.command(command) else {
        return Vec::new();
    };
    match &cmd.arguments {
        Arguments::Type(t) => members_of(schema, &TypeRef::Named(t.clone())),
        other => other.argument_members(schema).iter().collect(),
    }
}

/// The action types `transaction` takes (`abort`, `block-dirty-bitmap-add`, ...), sorted.
pub fn transaction_actions(schema: &Schema) -> Vec<String> {
    let mut out: Vec<String> = action_union(schema)
        .map(|u| u.branches.iter().map(|b| b.value.clone()).collect())
        .unwrap_or_default();
    out.sort_unstable();
    out
}

/// The members of the `data` of transaction action `kind`.
pub fn action_members<'s>(schema: &'s Schema, kind: &str) -> Vec<&'s Member> {
    let Some(branch) = action_union(schema).and_then(|u| u.branch(kind)) else {
        return Vec::new();
    };
    schema
        .object_members(&branch.ty_name)
        .into_iter()
        .flatten()
        .filter(|m| m.name == "data")
        .flat_map(|m| members_of(schema, &m.ty))
        .collect()
}

/// The union of `transaction`'s `actions` elements.
fn action_union(schema: &Schema) -> Option<&qmp_codegen::model::Union> {
    let actions = top_members(schema, "transaction")
        .into_iter()
        .find(|m| m.name == "actions")?;
    let TypeRef::Array(element) = &actions.ty else {
        return None;
    };
    schema.union_type(element.named()?)
}

/// The members below a dotted prefix, starting from `top`: for `["file"]` and the arguments
/// of `blockdev-add`, the members of `file`'s type. Empty when the path leads nowhere.
pub fn members_below<'s>(
    schema: &'s Schema,
    top: Vec<&'s Member>,
    path: &[&str],
) -> Vec<&'s Member> {
    let mut current = top;
    for part in path {
        let next: Vec<&Member> = current
            .iter()
            .filter(|m| m.name == *part)
            .flat_map(|m| members_of(schema, &m.ty))
            .collect();
        current = next;
    }
    current
}

/// The candidate members at a dotted argument prefix of `command` (see [`members_below`]).
pub fn members_at<'s>(schema: &'s Schema, command: &str, path: &[&str]) -> Vec<&'s Member> {
    members_below(schema, top_members(schema, command), path)
}

/// The enum values a dotted argument of `command` takes (through arrays and alternates),
/// sorted.
pub fn enum_values(schema: &Schema, command: &str, dotted: &str) -> Vec<String> {
    enum_values_below(schema, top_members(schema, command), dotted)
}

/// The enum values at a dotted path below `top` (see [`enum_values`]).
pub fn enum_values_below<'s>(
    schema: &'s Schema,
    top: Vec<&'s Member>,
    dotted: &str,
) -> Vec<String> {
    let parts: Vec<&str> = dotted.split('.').collect();
    let Some((last, prefix)) = parts.split_last() else {
        return Vec::new();
    };
    let mut out = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for m in members_below(schema, top, prefix)
        .into_iter()
        .filter(|m| m.name == *last)
    {
        if !seen.insert(type_name(&m.ty)) {
            continue;
        }
        collect_enum_values(schema, &m.ty, &mut out, 0);
    }
    out.into_iter().collect()
}

fn collect_enum_values(schema: &Schema, ty: &TypeRef, out: &mut BTreeSet<String>, depth: usize) {
    if depth > 8 {
        return;
    }
    match ty {
        TypeRef::Builtin(b) if b.name() == "bool" => {
            out.insert("true".into());
            out.insert("false".into());
        }
        TypeRef::Builtin(_) => {}
        TypeRef::Array(e) => collect_enum_values(schema, e, out, depth + 1),
        TypeRef::Named(n) => match schema.get(n) {
            Some(Definition::Enum(e)) => out.extend(e.values.iter().map(|v| v.name.clone())),
            Some(Definition::Alternate(a)) => {
                for b in &a.branches {
                    collect_enum_values(schema, &b.ty, out, depth + 1);
                }
            }
            _ => {}
        },
    }
}

/// The nearest of `candidates` to `word` (Jaro-Winkler, above a threshold), for "did you mean".
pub fn nearest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    // Case does not count: `Stop` finds `STOP`.
    let word = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&word, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// The `qmp help COMMAND` text: what the command takes and returns, each argument with its
/// type, whether it is required, when it appeared (or was removed), and the link to QEMU's
/// reference. `None` for an unknown command.
pub fn help_text(merged: &MergedSchema, family: Family, command: &str) -> Option<String> {
    let schema = &merged.schema;
    let cmd = schema.command(command)?;
    let m = Merged::new(merged);
    let mut out = String::new();
    let lifetime = |path: &Path| -> String {
        let Some(l) = m.lifetime(path) else {
            return String::new();
        };
        let mut parts = Vec::new();
        match l.added() {
            Some(v) => parts.push(format!("since QEMU {v}")),
            None => parts.push(format!("since QEMU {} or earlier", l.first)),
        }
        if let Some(v) = l.removed_after() {
            parts.push(format!("removed after QEMU {v}"));
        }
        if let Some(v) = l.deprecated_since {
            parts.push(format!("deprecated since QEMU {v}"));
        }
        parts.join(", ")
    };
    let _ = writeln!(out, "{command}");
    let when = lifetime(&Path::definition(command));
    let schema_since = cmd
        .since
        .as_deref()
        .map(|s| format!(" (QEMU's schema: since {s})"))
        .unwrap_or_default();
    let _ = writeln!(out, "  {when}{schema_since}");
    if cmd.features.iter().any(|f| f.is_deprecated()) {
        let _ = writeln!(out, "  deprecated");
    }
    if cmd.allow_oob {
        let _ = writeln!(out, "  may run out of band");
    }
    let (page, ns) = family.manual();
    if let Some(module) = cmd.module.as_deref() {
        let _ = writeln!(out, "  {page}#command-{ns}-{module}.{command}");
    }
    let owner = match &cmd.arguments {
        Arguments::Type(t) => t.clone(),
        _ => command.to_string(),
    };
    let members = cmd.argument_members(schema);
    if members.is_empty() {
        let _ = writeln!(out, "\nArguments: none");
    } else {
        let _ = writeln!(out, "\nArguments:");
        let width = members.iter().map(|m| m.name.len()).max().unwrap_or(0);
        let twidth = members
            .iter()
            .map(|m| type_name(&m.ty).len())
            .max()
            .unwrap_or(0);
        for mem in members {
            let req = if mem.optional { "optional" } else { "required" };
            let mut notes = vec![lifetime(&Path::member(&owner, &mem.name))];
            if mem.is_deprecated() {
                notes.push("deprecated".into());
            }
            let values = {
                let mut v = BTreeSet::new();
                collect_enum_values(schema, &mem.ty, &mut v, 0);
                v
            };
            if !values.is_empty() && !matches!(&mem.ty, TypeRef::Builtin(_)) {
                let list: Vec<&str> = values.iter().map(String::as_str).collect();
                notes.push(format!("one of: {}", list.join(", ")));
            }
            notes.retain(|n| !n.is_empty());
            let _ = writeln!(
                out,
                "  {:width$}  {:twidth$}  {req}  {}",
                mem.name,
                type_name(&mem.ty),
                notes.join("; "),
            );
        }
        if let Arguments::Type(t) = &cmd.arguments {
            if let Some(Definition::Union(u)) = schema.get(t) {
                let _ = writeln!(
                    out,
                    "  ... and the members of the branch that '{}' selects: {}",
                    u.discriminator,
                    u.branches
                        .iter()
                        .map(|b| b.value.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    match &cmd.returns {
        Some(t) => {
            let _ = writeln!(out, "\nReturns: {}", type_name(t));
        }
        None => {
            let _ = writeln!(out, "\nReturns: nothing ({{}})");
        }
    }
    Some(out)
}
