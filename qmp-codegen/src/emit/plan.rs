//! Decisions made before any code is written: the Rust name of everything, which members need
//! a `Box` (recursive types), which standard names a schema type shadows. Clashes are found
//! here and reported with both QAPI names, instead of surfacing as rustc errors in generated
//! code.

use std::collections::{BTreeMap, HashMap, HashSet};

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::EmitError;
use crate::ident;
use crate::model::{Arguments, Builtin, Definition, Member, Schema, TypeRef};

/// Which generated module code is written for: names resolve differently in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Module {
    /// `types`: schema types are in scope by their bare names.
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
}

/// Names and representation choices for one schema.
pub(crate) struct Plan<'s> {
    pub(crate) schema: &'s Schema,
    /// QAPI type name → Rust type name (schema types and the built-in `QType`).
    type_names: HashMap<&'s str, String>,
    /// Union QAPI name → Rust name of its branch enum (`BlockdevOptionsVariant`).
    variant_types: HashMap<&'s str, String>,
    /// (owner type, member or branch name) pairs whose value must be boxed.
    boxed: HashSet<(String, String)>,
    /// Standard names shadowed by a schema type in the `types` module.
    shadowed: HashSet<&'static str>,
    /// Command name → method name on the typed client.
    methods: HashMap<&'s str, String>,
    /// The oldest QEMU the generated code should decode (see [`Plan::fields`]).
    oldest_qemu: (u32, u32, u32),
    /// Types QEMU sends: reachable from a command's return type or an event's data.
    sent_by_qemu: HashSet<&'s str>,
}

/// Method names the typed client has besides the generated ones.
pub(crate) const CLIENT_METHODS: &[&str] = &[
    "raw",
    "execute",
    "events",
    "events_named",
    "close",
    "closed",
    "greeting",
    "connect_unix",
    "from",
    "clone",
];
/// Method names `Call` has besides the generated setters.
pub(crate) const CALL_METHODS: &[&str] = &[
    "new",
    "command",
    "command_mut",
    "into_command",
    "into_future",
    "poll",
    "extra",
];

impl<'s> Plan<'s> {
    pub(crate) fn new(schema: &'s Schema, oldest_qemu: (u32, u32)) -> Result<Plan<'s>, EmitError> {
        let mut type_names = HashMap::new();
        let mut taken: BTreeMap<String, &str> = BTreeMap::new();
        let mut claim = |rust: String, qapi: &'s str, what: &str| -> Result<String, EmitError> {
            if let Some(prev) = taken.insert(rust.clone(), qapi) {
                return Err(EmitError::Clash {
                    scope: "the types module".into(),
                    rust,
                    first: prev.to_string(),
                    second: format!("{qapi} ({what})"),
                });
            }
            Ok(rust)
        };
        claim("QType".into(), "QType", "built-in enum")?;
        type_names.insert("QType", "QType".to_string());
        for def in &schema.definitions {
            let name = def.name();
            match def {
                Definition::Command(_) | Definition::Event(_) => continue,
                _ => {}
            }
            let rust = claim(ident::type_name(name), name, def.kind().as_str())?;
            type_names.insert(name, rust);
        }
        let mut variant_types = HashMap::new();
        for u in schema.unions() {
            let rust = format!("{}Variant", type_names[u.name.as_str()]);
            let rust = claim(rust, &u.name, "branch enum of the union")?;
            variant_types.insert(u.name.as_str(), rust);
        }
        let shadowed = STD_NAMES
            .iter()
            .copied()
            .filter(|n| taken.contains_key(*n))
            .collect();

        let mut methods = HashMap::new();
        let mut method_taken: BTreeMap<String, &str> = BTreeMap::new();
        let mut command_types: BTreeMap<String, &str> = BTreeMap::new();
        for c in schema.commands() {
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
            let ty = ident::variant_name(&c.name);
            if let Some(prev) = command_types.insert(ty.clone(), &c.name) {
                return Err(EmitError::Clash {
                    scope: "the commands module".into(),
                    rust: ty,
                    first: prev.to_string(),
                    second: c.name.clone(),
                });
            }
            methods.insert(c.name.as_str(), m);
        }
        let mut event_types: BTreeMap<String, &str> = BTreeMap::new();
        event_types.insert("Event".into(), "(the Event enum)");
        for e in schema.events() {
            let ty = ident::variant_name(&e.name);
            if let Some(prev) = event_types.insert(ty.clone(), &e.name) {
                return Err(EmitError::Clash {
                    scope: "the events module".into(),
                    rust: ty,
                    first: prev.to_string(),
                    second: e.name.clone(),
                });
            }
        }

        let boxed = recursive_edges(schema);
        Ok(Plan {
            schema,
            oldest_qemu: (oldest_qemu.0, oldest_qemu.1, 0),
            sent_by_qemu: sent_by_qemu(schema),
            type_names,
            variant_types,
            boxed,
            shadowed,
            methods,
        })
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
            Module::Types => quote!(#id),
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

    /// The typed client's method for command `name`.
    pub(crate) fn method_ident(&self, command: &str) -> Ident {
        let name = self
            .methods
            .get(command)
            .cloned()
            .unwrap_or_else(|| ident::method_name(command));
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
            let later = relaxed && self.added_later(owner_since, m.since.as_deref());
            let optional =
                m.optional || (relaxed && (m.cond.is_some() || m.is_deprecated() || later));
            out.push(Field {
                member: m,
                ident: ident::ident(&name),
                optional,
                boxed: self.is_boxed(owner, &m.name),
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

/// The named types reachable from command return types and event data, through members,
/// union bases and branches, and alternate branches.
fn sent_by_qemu(schema: &Schema) -> HashSet<&str> {
    fn members(ms: &[Member]) -> impl Iterator<Item = &str> {
        ms.iter().filter_map(|m| m.ty.named())
    }
    let mut seen: HashSet<&str> = HashSet::new();
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
