//! Decisions made before any code is written: the Rust name of everything, which members need
//! a `Box` (recursive types), which standard names a schema type shadows. Clashes are found
//! here and reported with both QAPI names, instead of surfacing as rustc errors in generated
//! code.

use std::collections::{BTreeMap, HashMap, HashSet};

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::versions::Versions;
use super::EmitError;
use crate::history::{MergedSchema, Path};
use crate::ident;
use crate::model::{Arguments, Builtin, Definition, Kind, Member, Schema, TypeRef};

/// Which generated module code is written for: names resolve differently in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Module {
    /// `types`: schema types are reached as `crate::types::X` (like elsewhere), but standard
    /// names a schema type takes (`String`) are written fully qualified.
    Types,
    /// `commands` and `events`: schema types are reached as `crate::types::X`.
    Other,
}

/// Standard names that generated code writes unqualified unless a schema type takes them.
const STD_NAMES: &[&str] = &["String", "Option", "Vec", "Box"];

/// How a member is represented in Rust.
#[derive(Debug, Clone)]
pub(crate) struct Field<'s> {
    pub(crate) member: &'s Member,
    /// The Rust identifier (`node_name`, `r#type`).
    pub(crate) ident: Ident,
    /// Whether the Rust field is an `Option` (see [`Plan::field`]).
    pub(crate) optional: bool,
    /// Whether the value is boxed (recursive type).
    pub(crate) boxed: bool,
    /// What the version history says about the member (a merged schema only).
    pub(crate) note: Option<String>,
}

/// Names and representation choices for one schema.
pub(crate) struct Plan<'s> {
    /// Every public name (see [`Namespace`]): Rust name → (item, what claimed it).
    pub(crate) public: BTreeMap<String, (String, String)>,
    pub(crate) schema: &'s Schema,
    /// QAPI type name → Rust type name (schema types and the built-in `QType`).
    type_names: HashMap<&'s str, String>,
    /// Union QAPI name → Rust name of its branch enum (`BlockdevOptionsVariant`).
    variant_types: HashMap<&'s str, String>,
    /// (owner type, member or branch name) pairs whose value must be boxed.
    boxed: HashSet<(String, String)>,
    /// Standard names shadowed by a schema type in the `types` module.
    shadowed: HashSet<&'static str>,
    /// Command name → method name on the typed client (commands without a method are absent).
    methods: HashMap<&'s str, String>,
    /// Command name → how its command type is named and whether it is a schema struct.
    commands: HashMap<&'s str, CommandNames>,
    /// The QAPI modules in schema order, with their `types` submodule names.
    pub(crate) modules: Vec<(Option<&'s str>, String)>,
    /// Where the schema's definitions are documented.
    pub(crate) manual: Manual,
    /// The oldest QEMU the generated code should decode (see [`Plan::fields`]).
    oldest_qemu: (u32, u32, u32),
    /// Types QEMU sends: reachable from a command's return type or an event's data.
    sent_by_qemu: HashSet<&'s str>,
    /// The version history, when generating from a merged schema.
    pub(crate) versions: Option<Versions<'s>>,
    /// The typed client the command methods are generated on (`Qmp`; see
    /// [`Options::client_type`](super::Options::client_type)).
    pub(crate) client: String,
    /// Types users send: reachable from a command's arguments.
    sent_to_qemu: HashSet<&'s str>,
}

/// The Rust names of one command's items.
#[derive(Debug, Clone)]
pub(crate) struct CommandNames {
    /// The command type in `commands` (`BlockdevBackup`).
    pub(crate) ty: String,
    /// Its call type (`BlockdevBackupCall`).
    pub(crate) call: String,
    /// The command's arguments are a schema struct of the same Rust name: the command type is
    /// that struct, re-exported from `types`.
    pub(crate) is_schema_struct: bool,
}

/// Commands that take file descriptors sent along with them (`SCM_RIGHTS`): their calls offer
/// `.fd()`. The schema does not say which commands read descriptors from the monitor, so this is
/// a fact table (QEMU's `monitor_get_fd` / `qemu_add_fd` callers reached from QMP).
pub(crate) const FD_COMMANDS: &[&str] = &["getfd", "add-fd"];

/// Commands that get no method on the typed client: the transport negotiates capabilities
/// itself, and calling `qmp_capabilities` again always fails.
pub(crate) const NO_METHOD: &[&str] = &["qmp_capabilities"];

/// The reference manual a schema's definitions are documented in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manual {
    /// The page's URL.
    pub(crate) page: &'static str,
    /// The namespace in its anchors (`QMP`, `QSD`, `QGA`).
    pub(crate) namespace: &'static str,
}

impl Manual {
    /// QEMU's QMP reference.
    pub(crate) const QMP: Manual = Manual {
        page: "https://www.qemu.org/docs/master/interop/qemu-qmp-ref.html",
        namespace: "QMP",
    };
    /// The storage daemon's QMP reference.
    pub(crate) const QSD: Manual = Manual {
        page: "https://www.qemu.org/docs/master/interop/qemu-storage-daemon-qmp-ref.html",
        namespace: "QSD",
    };
    /// The guest agent's protocol reference.
    pub(crate) const QGA: Manual = Manual {
        page: "https://www.qemu.org/docs/master/interop/qemu-ga-ref.html",
        namespace: "QGA",
    };

    /// The manual for `schema`: by its source name (`.../storage-daemon/...`, `qga-...`), or
    /// by content for the guest agent (`guest-sync`), else QEMU's QMP reference.
    pub(crate) fn of(schema: &Schema) -> Manual {
        let source = schema.source.as_deref().unwrap_or("");
        if source.contains("storage-daemon") {
            Manual::QSD
        } else if source.starts_with("qga")
            || source.contains("/qga")
            || schema.command("guest-sync").is_some()
        {
            Manual::QGA
        } else {
            Manual::QMP
        }
    }

    /// The anchor of a definition: `#command-QMP-block-core.blockdev-backup`,
    /// `#object-QMP-block-core.BlockdevBackup` (structs and unions), `#enum-...`,
    /// `#alternate-...`, `#event-...`; for an implicit definition (which has no entry of its
    /// own) the module's, `#module-QMP-block-core`. `None` when the module is not known
    /// (introspection input).
    pub(crate) fn url(&self, def: &Definition) -> Option<String> {
        self.entry_url(def.kind(), def.name(), def.module(), def.is_implicit())
    }

    /// [`url`](Self::url) from the parts of a definition.
    pub(crate) fn entry_url(
        &self,
        kind: Kind,
        name: &str,
        module: Option<&str>,
        implicit: bool,
    ) -> Option<String> {
        let module = module?;
        let (ns, page) = (self.namespace, self.page);
        if implicit {
            return Some(self.module_url(module));
        }
        let kind = match kind {
            Kind::Enum => "enum",
            Kind::Struct | Kind::Union => "object",
            Kind::Alternate => "alternate",
            Kind::Command => "command",
            Kind::Event => "event",
        };
        Some(format!("{page}#{kind}-{ns}-{module}.{name}"))
    }

    /// The anchor of a QAPI module's section.
    pub(crate) fn module_url(&self, module: &str) -> String {
        format!("{}#module-{}-{module}", self.page, self.namespace)
    }
}

/// Method names the typed client has besides the generated ones.
pub(crate) const CLIENT_METHODS: &[&str] = &[
    "raw",
    "execute",
    "events",
    "events_named",
    "events_named_unchecked",
    "subscribe",
    "builder",
    "connect_tcp",
    "accept",
    "close",
    "closed",
    "greeting",
    "connect_unix",
    "from",
    "into",
    "clone",
];

/// Methods every call type has besides its setters (a setter by one of these names gets an
/// `_arg` suffix).
const CALL_METHODS: &[&str] = &[
    "timeout",
    "command",
    "into_call",
    "poll",
    "into_future",
    // `blocking::Wait::wait`, which a setter would shadow.
    "wait",
];

/// The items of `qmp_api`'s crate root. `types`, `commands`, `events` and the crate root are
/// meant to be glob-imported together, so no generated name may repeat one of these (unless it
/// is the same item, like `Event`).
pub(crate) const ROOT_ITEMS: &[&str] = &[
    "Qmp",
    "Call",
    "Command",
    "OobCommand",
    "FdCommand",
    "Event",
    "EventKind",
    "EventStream",
    "Received",
    "WaitError",
    "UnknownEvent",
    "UnknownValue",
    "UnknownVariant",
    "SCHEMA",
    "Capability",
    "ConnectError",
    "DecodeError",
    "DisconnectReason",
    "EventError",
    "ExecuteError",
    "Greeting",
    "Listener",
    "QmpError",
    "Timestamp",
    "Version",
    "json",
    "tls",
    "QmpBuilder",
    "UnknownEventName",
    "BlockingError",
    "CallTarget",
    "SchemaItem",
    "ServerSchema",
    "blocking",
    "workflow",
    // Behind the `schema` and `mock` features.
    "schema",
    "mock",
    "capture",
    "qmp_core",
    "types",
    "commands",
    "events",
];

/// Every name the generated modules and the crate root put in scope when glob-imported
/// together, with the item it stands for: a second claim on a name is an error unless it is
/// the same item (a re-export).
struct Namespace {
    /// Rust name → (item identity, what claimed it, for messages).
    names: BTreeMap<String, (String, String)>,
}

impl Namespace {
    fn new() -> Self {
        Namespace {
            names: BTreeMap::new(),
        }
    }

    /// Claims `rust` for the item `identity` (a path such as `types::BlockdevBackup`),
    /// described as `what` (e.g. `struct BlockdevBackup`) in messages.
    fn claim(&mut self, rust: &str, identity: &str, what: String) -> Result<(), EmitError> {
        match self.names.get(rust) {
            Some((id, _)) if id == identity => Ok(()),
            Some((_, prev)) => Err(EmitError::Clash {
                scope: "the public names of the typed API (types, commands, events and the \
                        crate root are glob-imported together)"
                    .into(),
                rust: rust.to_string(),
                first: prev.clone(),
                second: what,
            }),
            None => {
                self.names
                    .insert(rust.to_string(), (identity.to_string(), what));
                Ok(())
            }
        }
    }
}

impl<'s> Plan<'s> {
    pub(crate) fn new(schema: &'s Schema, oldest_qemu: (u32, u32)) -> Result<Plan<'s>, EmitError> {
        let mut ns = Namespace::new();
        for item in ROOT_ITEMS {
            let identity = if *item == "Event" || *item == "EventKind" {
                format!("events::{item}")
            } else {
                format!("crate::{item}")
            };
            ns.claim(item, &identity, format!("qmp_api's own `{item}`"))?;
        }
        let (type_names, variant_types) = type_names(schema, &mut ns)?;
        let modules = modules(schema, &mut ns)?;
        let shadowed = STD_NAMES
            .iter()
            .copied()
            .filter(|n| type_names.values().any(|t| t == n))
            .collect();
        let (methods, commands) = command_names(schema, &type_names, &mut ns)?;
        event_names(schema, &mut ns)?;
        Ok(Plan {
            public: ns.names,
            schema,
            oldest_qemu: (oldest_qemu.0, oldest_qemu.1, 0),
            sent_by_qemu: sent_by_qemu(schema),
            sent_to_qemu: sent_to_qemu(schema),
            type_names,
            variant_types,
            boxed: recursive_edges(schema),
            shadowed,
            methods,
            commands,
            modules,
            manual: Manual::of(schema),
            versions: None,
            client: "Qmp".to_string(),
        })
    }

    /// The plan for a merged schema: optionality from its history's rules, lifetime notes.
    pub(crate) fn merged(
        merged: &'s MergedSchema,
        oldest_qemu: (u32, u32),
    ) -> Result<Plan<'s>, EmitError> {
        let mut plan = Plan::new(&merged.schema, oldest_qemu)?;
        plan.versions = Some(Versions::new(merged, oldest_qemu));
        Ok(plan)
    }

    /// The lifetime note of `path` (see [`Versions::note`]), for a merged schema.
    pub(crate) fn note(&self, path: &Path, doc_since: Option<&str>) -> Option<String> {
        self.versions.as_ref()?.note(path, doc_since)
    }

    /// `#[doc(alias)]` for each old name of definition `name` (a merged schema's renamed
    /// types).
    pub(crate) fn old_name_aliases(&self, name: &str) -> TokenStream {
        let Some(v) = &self.versions else {
            return TokenStream::new();
        };
        let names = v.old_names(name);
        quote!(#(#[doc(alias = #names)])*)
    }

    /// Generates the command methods on `client` instead of `Qmp`; the name is claimed like
    /// the runtime's own items, so no schema type may take it.
    pub(crate) fn with_client(mut self, client: &str) -> Result<Self, EmitError> {
        if client != "Qmp" {
            let mut ns = Namespace {
                names: std::mem::take(&mut self.public),
            };
            ns.claim(
                client,
                &format!("crate::{client}"),
                format!("the typed client `{client}`"),
            )?;
            self.public = ns.names;
        }
        self.client = client.to_string();
        Ok(self)
    }

    /// The Rust names of command `name`'s items.
    pub(crate) fn command_names(&self, command: &str) -> CommandNames {
        self.commands
            .get(command)
            .cloned()
            .unwrap_or_else(|| CommandNames {
                ty: ident::variant_name(command),
                call: ident::call_type_name(command),
                is_schema_struct: false,
            })
    }

    /// The typed client's method for command `name`, if it has one.
    pub(crate) fn method_ident(&self, command: &str) -> Option<Ident> {
        self.methods.get(command).map(|m| ident::ident(m))
    }

    /// The URL of `def`'s entry in QEMU's reference, if known.
    pub(crate) fn reference(&self, def: &Definition) -> Option<String> {
        self.manual.url(def)
    }

    /// The URL of command `c`'s entry in QEMU's reference, if known.
    pub(crate) fn command_reference(&self, c: &crate::model::Command) -> Option<String> {
        self.manual
            .entry_url(Kind::Command, &c.name, c.module.as_deref(), false)
    }

    /// The command whose command type is schema struct `qapi`, if any.
    pub(crate) fn command_of_struct(&self, qapi: &str) -> Option<&'s crate::model::Command> {
        self.schema.commands().find(|c| {
            matches!(&c.arguments, Arguments::Type(t) if t == qapi)
                && self
                    .commands
                    .get(c.name.as_str())
                    .is_some_and(|n| n.is_schema_struct)
        })
    }

    /// The methods a command's call type has besides its setters.
    pub(crate) fn call_methods(&self, c: &crate::model::Command) -> Vec<&'static str> {
        let mut m = CALL_METHODS.to_vec();
        if c.allow_oob {
            m.push("oob");
        }
        if FD_COMMANDS.contains(&c.name.as_str()) {
            m.extend(["fd", "fds"]);
        }
        if !c.gen {
            m.push("arg");
        }
        m
    }

    /// The Rust name of schema type `qapi`.
    pub(crate) fn type_ident(&self, qapi: &str) -> Ident {
        let name = self
            .type_names
            .get(qapi)
            .cloned()
            .unwrap_or_else(|| ident::type_name(qapi));
        ident::ident(&name)
    }

    /// A path to schema type `qapi` from `module`.
    pub(crate) fn type_path(&self, qapi: &str, module: Module) -> TokenStream {
        let id = self.type_ident(qapi);
        match module {
            // Types sit in one submodule per QAPI module: a full path needs no glob import of
            // the others into each (which costs the compiler more than the longer paths).
            Module::Types => quote!(crate::types::#id),
            Module::Other => quote!(crate::types::#id),
        }
    }

    /// The Rust name of a union's branch enum.
    pub(crate) fn variant_type_ident(&self, union: &str) -> Ident {
        let name = self
            .variant_types
            .get(union)
            .cloned()
            .unwrap_or_else(|| format!("{}Variant", ident::type_name(union)));
        ident::ident(&name)
    }

    /// A standard type name as written in `module` (fully qualified when shadowed).
    pub(crate) fn std(&self, name: &'static str, module: Module) -> TokenStream {
        let shadowed = module == Module::Types && self.shadowed.contains(name);
        match (name, shadowed) {
            ("String", false) => quote!(String),
            ("String", true) => quote!(::std::string::String),
            ("Option", false) => quote!(Option),
            ("Option", true) => quote!(::core::option::Option),
            ("Vec", false) => quote!(Vec),
            ("Vec", true) => quote!(::std::vec::Vec),
            ("Box", false) => quote!(Box),
            _ => quote!(::std::boxed::Box),
        }
    }

    /// The Rust type of a type reference (without `Option`/`Box`).
    pub(crate) fn rust_type(&self, ty: &TypeRef, module: Module) -> TokenStream {
        match ty {
            TypeRef::Builtin(b) => self.builtin(*b, module),
            TypeRef::Named(n) => self.type_path(n, module),
            TypeRef::Array(e) => {
                let vec = self.std("Vec", module);
                let inner = self.rust_type(e, module);
                quote!(#vec<#inner>)
            }
        }
    }

    fn builtin(&self, b: Builtin, module: Module) -> TokenStream {
        match b {
            Builtin::Str => self.std("String", module),
            Builtin::Number => quote!(f64),
            Builtin::Int | Builtin::Int64 => quote!(i64),
            Builtin::Int8 => quote!(i8),
            Builtin::Int16 => quote!(i16),
            Builtin::Int32 => quote!(i32),
            Builtin::Uint8 => quote!(u8),
            Builtin::Uint16 => quote!(u16),
            Builtin::Uint32 => quote!(u32),
            Builtin::Uint64 | Builtin::Size => quote!(u64),
            Builtin::Bool => quote!(bool),
            Builtin::Null => quote!(()),
            Builtin::Any => quote!(::serde_json::Value),
            Builtin::QType => self.type_path("QType", module),
        }
    }

    /// The Rust type of a field: `rust_type`, boxed if recursive, in `Option` if optional.
    pub(crate) fn field_type(&self, field: &Field<'_>, module: Module) -> TokenStream {
        let mut ty = self.rust_type(&field.member.ty, module);
        if field.boxed {
            let b = self.std("Box", module);
            ty = quote!(#b<#ty>);
        }
        if field.optional {
            let o = self.std("Option", module);
            ty = quote!(#o<#ty>);
        }
        ty
    }

    /// Plans the fields of `owner` (a type, command or event name).
    ///
    /// `relaxed` applies to values QEMU sends (types and event data): a member is an `Option`
    /// not only when the schema says optional, but also when some QEMU build or version may
    /// leave it out: it is conditional (`if`), deprecated (hidden under
    /// `-compat deprecated-output=hide`), or was added after its type (older QEMU lacks it).
    /// Command arguments keep the schema's optionality.
    pub(crate) fn fields<'m>(
        &self,
        owner: &str,
        owner_since: Option<&str>,
        members: &'m [Member],
        relaxed: bool,
    ) -> Result<Vec<Field<'m>>, EmitError> {
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        let mut out = Vec::with_capacity(members.len());
        for m in members {
            let name = ident::field_name(&m.name);
            if let Some(prev) = seen.insert(ident::display(&name), &m.name) {
                return Err(EmitError::Clash {
                    scope: format!("the fields of {owner}"),
                    rust: ident::display(&name),
                    first: prev.to_string(),
                    second: m.name.clone(),
                });
            }
            let (optional, note) = match &self.versions {
                // A merged schema: the history's rules decide, for both directions.
                Some(v) => (
                    m.optional || v.relaxed(owner, &m.name),
                    v.note(&Path::member(owner, &m.name), m.since.as_deref()),
                ),
                None => {
                    let later = relaxed && self.added_later(owner_since, m.since.as_deref());
                    let optional =
                        m.optional || (relaxed && (m.cond.is_some() || m.is_deprecated() || later));
                    (optional, None)
                }
            };
            out.push(Field {
                member: m,
                ident: ident::ident(&name),
                optional,
                boxed: self.is_boxed(owner, &m.name),
                note,
            });
        }
        Ok(out)
    }

    /// Whether QEMU ever sends values of type `qapi` (in a reply or an event), so that its
    /// fields are planned `relaxed` (see [`Plan::fields`]). Types only ever sent to QEMU keep
    /// the schema's optionality: a required argument stays required.
    pub(crate) fn sent_by_qemu(&self, qapi: &str) -> bool {
        self.sent_by_qemu.contains(qapi)
    }

    /// Whether users send values of type `qapi` to QEMU (it is reachable from a command's
    /// arguments): such types get the conveniences for building values (setters, `From`).
    pub(crate) fn sent_to_qemu(&self, qapi: &str) -> bool {
        self.sent_to_qemu.contains(qapi)
    }

    /// Whether a member appeared after both its type and the oldest QEMU targeted.
    fn added_later(&self, owner: Option<&str>, member: Option<&str>) -> bool {
        let Some(m) = member.and_then(parse_version) else {
            return false;
        };
        let owner = owner.and_then(parse_version).unwrap_or((0, 0, 0));
        m > owner && m > self.oldest_qemu
    }

    /// Whether the value of `member` (or branch) of `owner` must be boxed.
    pub(crate) fn is_boxed(&self, owner: &str, member: &str) -> bool {
        self.boxed
            .contains(&(owner.to_string(), member.to_string()))
    }
}

/// Rust names of every schema type and union branch enum, claimed in the namespace.
#[allow(clippy::type_complexity)]
fn type_names<'s>(
    schema: &'s Schema,
    ns: &mut Namespace,
) -> Result<(HashMap<&'s str, String>, HashMap<&'s str, String>), EmitError> {
    let mut type_names = HashMap::new();
    ns.claim("QType", "types::QType", "the built-in enum QType".into())?;
    type_names.insert("QType", "QType".to_string());
    for def in schema.definitions.iter().filter(|d| d.kind().is_type()) {
        let rust = ident::type_name(def.name());
        let what = format!("{} {}", def.kind(), def.name());
        ns.claim(&rust, &format!("types::{rust}"), what)?;
        type_names.insert(def.name(), rust);
    }
    let mut variant_types = HashMap::new();
    for u in schema.unions() {
        let rust = format!("{}Variant", type_names[u.name.as_str()]);
        let what = format!("the branch enum of union {}", u.name);
        ns.claim(&rust, &format!("types::{rust}"), what)?;
        variant_types.insert(u.name.as_str(), rust);
    }
    Ok((type_names, variant_types))
}

/// The QAPI modules that hold types, in schema order, with their `types` submodule names.
fn modules<'s>(
    schema: &'s Schema,
    ns: &mut Namespace,
) -> Result<Vec<(Option<&'s str>, String)>, EmitError> {
    let mut out: Vec<(Option<&'s str>, String)> = Vec::new();
    for def in &schema.definitions {
        let module = def.module();
        if out.iter().any(|(m, _)| *m == module) {
            continue;
        }
        let rust = module.map(ident::module_name).unwrap_or_default();
        let has_types = schema
            .definitions
            .iter()
            .any(|d| d.module() == module && d.kind().is_type());
        if let (Some(m), true) = (module, has_types) {
            ns.claim(&rust, &format!("types::{rust}"), format!("QAPI module {m}"))?;
        }
        out.push((module, rust));
    }
    Ok(out)
}

/// Method names and command type names; a command whose arguments are a struct of its own
/// name is that struct.
#[allow(clippy::type_complexity)]
fn command_names<'s>(
    schema: &'s Schema,
    type_names: &HashMap<&'s str, String>,
    ns: &mut Namespace,
) -> Result<(HashMap<&'s str, String>, HashMap<&'s str, CommandNames>), EmitError> {
    let mut methods = HashMap::new();
    let mut method_taken: BTreeMap<String, &str> = BTreeMap::new();
    let mut commands = HashMap::new();
    for c in schema.commands() {
        let mut ty = ident::variant_name(&c.name);
        let is_schema_struct = match &c.arguments {
            Arguments::Type(t) => {
                schema.struct_type(t).is_some() && type_names.get(t.as_str()) == Some(&ty)
            }
            _ => false,
        };
        // A schema type already has this name (the guest agent's `guest-file-read` returns a
        // `GuestFileRead`): the type keeps it, the command type is `GuestFileReadCommand`.
        if !is_schema_struct && ns.names.contains_key(&ty) {
            ty.push_str("Command");
        }
        let identity = if is_schema_struct {
            format!("types::{ty}")
        } else {
            format!("commands::{ty}")
        };
        ns.claim(&ty, &identity, format!("command {}", c.name))?;
        let call = ident::call_type_name(&c.name);
        if !NO_METHOD.contains(&c.name.as_str()) {
            let what = format!("the call type of command {}", c.name);
            ns.claim(&call, &format!("commands::{call}"), what)?;
        }
        commands.insert(
            c.name.as_str(),
            CommandNames {
                ty,
                call,
                is_schema_struct,
            },
        );
        if NO_METHOD.contains(&c.name.as_str()) {
            continue;
        }
        let mut m = ident::method_name(&c.name);
        if CLIENT_METHODS.contains(&m.as_str()) {
            m.push_str("_command");
        }
        if let Some(prev) = method_taken.insert(m.clone(), &c.name) {
            return Err(EmitError::Clash {
                scope: "the typed client's methods".into(),
                rust: m,
                first: prev.to_string(),
                second: c.name.clone(),
            });
        }
        methods.insert(c.name.as_str(), m);
    }
    Ok((methods, commands))
}

/// Event variant names (unique within `Event`) and event data structs (in the namespace).
fn event_names(schema: &Schema, ns: &mut Namespace) -> Result<(), EmitError> {
    let mut variants: BTreeMap<String, &str> = BTreeMap::new();
    variants.insert("Other".into(), "(the variant for unknown events)");
    for e in schema.events() {
        let ty = ident::variant_name(&e.name);
        if let Some(prev) = variants.insert(ty.clone(), &e.name) {
            return Err(EmitError::Clash {
                scope: "the variants of Event".into(),
                rust: ty,
                first: prev.to_string(),
                second: e.name.clone(),
            });
        }
        if let Arguments::Members(_) = e.data {
            ns.claim(&ty, &format!("events::{ty}"), format!("event {}", e.name))?;
        }
    }
    Ok(())
}

/// A setter's name on a call type: the field name, unless the call type already has a method
/// by that name (`timeout` → `timeout_arg`).
pub(crate) fn setter_name(member: &str, taken: &[&str]) -> String {
    let name = ident::field_name(member);
    if taken.contains(&name.as_str()) {
        format!("{name}_arg")
    } else {
        name
    }
}

/// The named types reachable from command return types and event data, through members,
/// union bases and branches, and alternate branches.
fn sent_by_qemu(schema: &Schema) -> HashSet<&str> {
    fn members(ms: &[Member]) -> impl Iterator<Item = &str> {
        ms.iter().filter_map(|m| m.ty.named())
    }
    let mut todo: Vec<&str> = Vec::new();
    for c in schema.commands() {
        todo.extend(c.returns.as_ref().and_then(|r| r.named()));
    }
    for e in schema.events() {
        match &e.data {
            Arguments::None => {}
            Arguments::Members(ms) => todo.extend(members(ms)),
            Arguments::Type(t) => todo.push(t),
        }
    }
    reachable(schema, todo)
}

/// The named types reachable from command arguments, the same way as [`sent_by_qemu`].
fn sent_to_qemu(schema: &Schema) -> HashSet<&str> {
    let mut todo: Vec<&str> = Vec::new();
    for c in schema.commands() {
        match &c.arguments {
            Arguments::None => {}
            Arguments::Members(ms) => todo.extend(ms.iter().filter_map(|m| m.ty.named())),
            Arguments::Type(t) => todo.push(t),
        }
    }
    reachable(schema, todo)
}

/// The types in `todo` and those reachable from them through members, union bases and
/// branches, and alternate branches.
fn reachable<'s>(schema: &'s Schema, mut todo: Vec<&'s str>) -> HashSet<&'s str> {
    fn members(ms: &[Member]) -> impl Iterator<Item = &str> {
        ms.iter().filter_map(|m| m.ty.named())
    }
    let mut seen: HashSet<&str> = HashSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name) {
            continue;
        }
        match schema.get(name) {
            Some(Definition::Struct(s)) => todo.extend(members(&s.members)),
            Some(Definition::Union(u)) => {
                todo.extend(members(&u.base_members));
                todo.extend(u.branches.iter().map(|b| b.ty_name.as_str()));
            }
            Some(Definition::Alternate(a)) => {
                todo.extend(a.branches.iter().filter_map(|b| b.ty.named()))
            }
            _ => {}
        }
    }
    seen
}

fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut parts = v.trim().split('.').map(|p| p.trim().parse::<u32>());
    let major = parts.next()?.ok()?;
    let minor = parts.next().unwrap_or(Ok(0)).ok()?;
    let micro = parts.next().unwrap_or(Ok(0)).ok()?;
    Some((major, minor, micro))
}

/// Finds the member edges that make types recursive, so that boxing them makes every type
/// finite.
///
/// An alternate's branch that leads back to the alternate is boxed first (the usual shape:
/// `BlockdevRef::Definition(Box<BlockdevOptions>)`, which breaks every cycle through block
/// node definitions at one place); remaining cycles (a struct containing itself, say) are
/// broken by a depth-first walk in schema order that boxes each edge back into its path.
fn recursive_edges(schema: &Schema) -> HashSet<(String, String)> {
    fn direct(ty: &TypeRef) -> Option<&str> {
        match ty {
            TypeRef::Named(n) => Some(n.as_str()),
            _ => None,
        }
    }
    // Edges: owner → (member or branch name, target type), only for values stored inline.
    let mut edges: HashMap<&str, Vec<(String, &str)>> = HashMap::new();
    let mut alternate_edges: Vec<(&str, String, &str)> = Vec::new();
    for def in &schema.definitions {
        let list = edges.entry(def.name()).or_default();
        match def {
            Definition::Struct(s) => {
                for m in &s.members {
                    if let Some(t) = direct(&m.ty) {
                        list.push((m.name.clone(), t));
                    }
                }
            }
            Definition::Union(u) => {
                for m in &u.base_members {
                    if let Some(t) = direct(&m.ty) {
                        list.push((m.name.clone(), t));
                    }
                }
                for b in &u.branches {
                    list.push((branch_key(&b.value), b.ty_name.as_str()));
                }
            }
            Definition::Alternate(a) => {
                for b in &a.branches {
                    if let Some(t) = direct(&b.ty) {
                        list.push((branch_key(&b.name), t));
                        alternate_edges.push((def.name(), branch_key(&b.name), t));
                    }
                }
            }
            _ => {}
        }
    }
    let mut boxed = HashSet::new();
    for (alt, label, target) in alternate_edges {
        if reaches(target, alt, &edges) {
            boxed.insert((alt.to_string(), label));
        }
    }
    let mut state: HashMap<&str, u8> = HashMap::new(); // 1 = on the path, 2 = done
    for def in &schema.definitions {
        visit(def.name(), &edges, &mut state, &mut boxed);
    }
    boxed
}

/// Whether `to` is reachable from `from` along inline edges.
fn reaches(from: &str, to: &str, edges: &HashMap<&str, Vec<(String, &str)>>) -> bool {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut stack = vec![from];
    while let Some(n) = stack.pop() {
        if n == to {
            return true;
        }
        if seen.insert(n) {
            if let Some(out) = edges.get(n) {
                stack.extend(out.iter().map(|(_, t)| *t));
            }
        }
    }
    false
}

fn visit<'a>(
    node: &'a str,
    edges: &HashMap<&'a str, Vec<(String, &'a str)>>,
    state: &mut HashMap<&'a str, u8>,
    boxed: &mut HashSet<(String, String)>,
) {
    if state.contains_key(node) {
        return;
    }
    state.insert(node, 1);
    if let Some(out) = edges.get(node) {
        for (label, target) in out {
            if boxed.contains(&(node.to_string(), label.clone())) {
                continue;
            }
            match state.get(target) {
                Some(1) => {
                    boxed.insert((node.to_string(), label.clone()));
                }
                Some(_) => {}
                None => visit(target, edges, state, boxed),
            }
        }
    }
    state.insert(node, 2);
}

/// The key under which union and alternate branches are recorded in the boxing set.
pub(crate) fn branch_key(name: &str) -> String {
    format!("branch:{name}")
}
