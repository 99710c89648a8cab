//! The check: raw definitions to a [`Schema`].
//!
//! What it guarantees (and reports as [`SchemaError`] otherwise):
//! - one namespace for types, commands and events, built-in names reserved;
//! - every type reference resolves to a built-in or a type definition;
//! - struct base chains are structs, loop-free, and flattened base first;
//! - member names are valid and do not clash (after mapping `-` and `.` to `_`), including
//!   between a union's base and each branch (recursively for union-typed branches);
//! - union discriminators are required, unconditional, enum-typed base members, and every
//!   branch is a value of that enum naming an object type;
//! - legacy simple unions are rewritten into the flat shape with an implicit `<Union>Kind`
//!   enum and implicit `q_obj_<T>-wrapper` structs;
//! - alternate branches are distinguishable by JSON type;
//! - command and event `data`/`boxed`/`returns` rules, flag values, `allow-oob` vs
//!   `coroutine`;
//! - features: valid, unique, and `deprecated`/`unstable` only on commands, events, members and
//!   enum values (QEMU rejects them on types);
//! - naming conventions and their pragma exceptions (current or pre-6.0 rules, chosen by which
//!   pragma names the schema uses);
//! - for QAPI source: `doc-required`, and undocumented members when the schema declares
//!   `documentation-exceptions` (QEMU 9.0+ behaviour).

mod names;

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::doc::{inline_since, Doc};
use crate::error::{Location, SchemaError};
use crate::model::{
    AltBranch, Alternate, Arguments, Branch, Builtin, Command, Definition, Enum, EnumValue, Event,
    Feature, JsonType, Kind, Member, Pragmas, Schema, Struct, TypeRef, Union, UnionBase,
};
use crate::raw::{
    Origin, RawArgs, RawBase, RawBody, RawBranch, RawDef, RawEnumValue, RawFeature, RawMember,
    RawSchema, RawTypeRef,
};

pub(crate) use names::{c_name, camel_problem, lower_problem, upper_problem, valid_name};
use names::{reserved_q, Rules};

/// Deepest nesting of union branches that are unions themselves.
const MAX_UNION_NESTING: usize = 64;
/// Longest struct base chain accepted (real schemas need 3); bounds the flattened size.
const MAX_BASE_DEPTH: usize = 64;
/// QEMU's limit on distinct feature names in one schema.
const MAX_FEATURES: usize = 64;

/// What every definition has, checked; moved into the definition's model struct.
struct Header {
    name: String,
    cond: Option<crate::model::Cond>,
    features: Vec<Feature>,
    since: Option<String>,
    doc: Option<Doc>,
    location: Location,
    module: Option<String>,
}

/// Checks a raw schema and builds the model.
pub(crate) fn check(raw: RawSchema) -> Result<Schema, SchemaError> {
    let RawSchema {
        defs,
        pragmas,
        source,
        origin,
    } = raw;
    let rules = match origin {
        Origin::Introspection | Origin::Normalized => Rules::None,
        _ if pragmas.legacy_names() => Rules::Legacy,
        _ => Rules::Modern,
    };
    let defs = expand_simple_unions(defs)?;
    let mut cx = Checker::new(&defs, &pragmas, rules, origin)?;
    let definitions = cx.run()?;
    Ok(Schema::from_parts(definitions, pragmas, source))
}

fn err(loc: &Location, what: impl Into<String>, msg: impl Into<String>) -> SchemaError {
    SchemaError::invalid(&loc.line_only(), what, msg)
}

/// Rewrites legacy simple unions (no base, no discriminator) into flat unions, inserting the
/// implicit `<Union>Kind` enum and the (shared) `q_obj_<T>-wrapper` structs after each union.
fn expand_simple_unions(defs: Vec<RawDef>) -> Result<Vec<RawDef>, SchemaError> {
    let mut out = Vec::with_capacity(defs.len());
    let mut wrappers: HashSet<String> = HashSet::new();
    for mut def in defs {
        let RawBody::Union {
            base,
            discriminator,
            branches,
            simple_legacy,
        } = &mut def.body
        else {
            out.push(def);
            continue;
        };
        match (base.is_some(), discriminator.is_some()) {
            (true, true) => {
                out.push(def);
                continue;
            }
            (false, false) => {}
            (true, false) => {
                return Err(err(
                    &def.loc,
                    def.what(),
                    "a union with 'base' also needs 'discriminator' (the base member that \
                     selects the branch)",
                ))
            }
            (false, true) => {
                return Err(err(
                    &def.loc,
                    def.what(),
                    "a union with 'discriminator' also needs 'base' (a struct name or inline \
                     members that include the discriminator)",
                ))
            }
        }
        let kind_name = format!("{}Kind", def.name);
        let mut values = Vec::with_capacity(branches.len());
        let mut new_wrappers = Vec::new();
        for b in branches.iter_mut() {
            values.push(RawEnumValue {
                name: b.name.clone(),
                cond: b.cond.clone(),
                features: Vec::new(),
                since: None,
                loc: b.loc.clone(),
            });
            let tname = match &b.ty {
                RawTypeRef::Name(n) => n.clone(),
                RawTypeRef::Array(n) => format!("{n}List"),
            };
            let wname = format!("q_obj_{tname}-wrapper");
            if wrappers.insert(wname.clone()) {
                new_wrappers.push(RawDef {
                    name: wname.clone(),
                    loc: b.loc.clone(),
                    cond: None,
                    features: Vec::new(),
                    doc: None,
                    since: None,
                    implicit: true,
                    module: def.module.clone(),
                    body: RawBody::Struct {
                        base: None,
                        members: vec![RawMember {
                            name: "data".into(),
                            optional: false,
                            ty: b.ty.clone(),
                            cond: None,
                            features: Vec::new(),
                            since: None,
                            loc: b.loc.clone(),
                        }],
                    },
                });
            }
            b.ty = RawTypeRef::Name(wname);
        }
        *base = Some(RawBase::Inline(vec![RawMember {
            name: "type".into(),
            optional: false,
            ty: RawTypeRef::Name(kind_name.clone()),
            cond: None,
            features: Vec::new(),
            since: None,
            loc: def.loc.clone(),
        }]));
        *discriminator = Some(("type".into(), def.loc.clone()));
        *simple_legacy = true;
        let kind_def = RawDef {
            name: kind_name,
            loc: def.loc.clone(),
            cond: def.cond.clone(),
            features: Vec::new(),
            doc: None,
            since: None,
            implicit: true,
            module: def.module.clone(),
            body: RawBody::Enum {
                values,
                prefix: None,
            },
        };
        out.push(def);
        out.push(kind_def);
        out.extend(new_wrappers);
    }
    Ok(out)
}

/// Names an object type can contribute: (C-mapped name, description), first occurrence.
type Contrib = Rc<Vec<(String, String)>>;

/// Who owns a list of members, for messages and name-rule exceptions.
struct Owner<'a> {
    what: String,
    name: &'a str,
    /// QEMU's implicit type name (`q_obj_X-base`, `q_obj_X-arg`), also accepted in exception
    /// lists.
    implicit_name: Option<String>,
    implicit_def: bool,
    doc: Option<&'a Doc>,
}

struct Checker<'a> {
    defs: &'a [RawDef],
    index: HashMap<&'a str, usize>,
    pragmas: &'a Pragmas,
    rules: Rules,
    origin: Origin,
    /// Flattened struct members, by definition index.
    struct_members: Vec<Option<Vec<Member>>>,
    /// Length of each struct's base chain (0: no base).
    struct_depth: Vec<usize>,
    own_members: Vec<Option<Vec<Member>>>,
    /// Union base members, by definition index.
    union_base: Vec<Option<Vec<Member>>>,
    /// Member names (C-mapped, with a description) that an object type can put on the wire
    /// on some path through its branches, by definition index; memoized.
    contrib: Vec<Option<Contrib>>,
    feature_names: HashSet<String>,
}

impl<'a> Checker<'a> {
    fn new(
        defs: &'a [RawDef],
        pragmas: &'a Pragmas,
        rules: Rules,
        origin: Origin,
    ) -> Result<Self, SchemaError> {
        let mut index: HashMap<&'a str, usize> = HashMap::with_capacity(defs.len());
        for (i, d) in defs.iter().enumerate() {
            if Builtin::from_name(&d.name).is_some() {
                return Err(err(
                    &d.loc,
                    d.what(),
                    format!("'{}' is a built-in type and cannot be redefined", d.name),
                ));
            }
            if let Some(&j) = index.get(d.name.as_str()) {
                let prev = &defs[j];
                let msg = if d.implicit || prev.implicit {
                    let (imp, other) = if d.implicit { (d, prev) } else { (prev, d) };
                    format!(
                        "implicit {} '{}' (synthesized for a simple union at {}) clashes with {} \
                         at {}",
                        imp.body.kind(),
                        imp.name,
                        imp.loc.line_only(),
                        other.what(),
                        other.loc.line_only()
                    )
                } else {
                    format!(
                        "'{}' is already defined as {} at {}; types, commands and events share \
                         one namespace",
                        d.name,
                        prev.body.kind(),
                        prev.loc.line_only()
                    )
                };
                return Err(err(&d.loc, d.what(), msg));
            }
            index.insert(&d.name, i);
        }
        Ok(Checker {
            defs,
            index,
            pragmas,
            rules,
            origin,
            struct_members: vec![None; defs.len()],
            struct_depth: vec![0; defs.len()],
            own_members: vec![None; defs.len()],
            union_base: vec![None; defs.len()],
            contrib: vec![None; defs.len()],
            feature_names: HashSet::new(),
        })
    }

    fn def(&self, name: &str) -> Option<(usize, &'a RawDef)> {
        let i = *self.index.get(name)?;
        self.defs.get(i).map(|d| (i, d))
    }

    fn kind_of(&self, name: &str) -> Option<Kind> {
        self.def(name).map(|(_, d)| d.body.kind())
    }

    fn run(&mut self) -> Result<Vec<Definition>, SchemaError> {
        let defs = self.defs;
        for d in defs {
            self.def_name(d)?;
        }
        // Own members of structs, then flattening (needs every struct's own members).
        for (i, d) in defs.iter().enumerate() {
            if let RawBody::Struct { members, .. } = &d.body {
                let owner = Owner {
                    what: d.what(),
                    name: &d.name,
                    implicit_name: None,
                    implicit_def: d.implicit,
                    doc: d.doc.as_ref(),
                };
                self.own_members[i] = Some(self.members(members, &owner)?);
            }
        }
        for (i, d) in defs.iter().enumerate() {
            if matches!(d.body, RawBody::Struct { .. }) {
                self.flatten(i)?;
            }
        }
        for (i, d) in defs.iter().enumerate() {
            if let RawBody::Union { .. } = &d.body {
                self.union_base[i] = Some(self.union_base_members(d)?);
            }
        }
        let mut out = Vec::with_capacity(defs.len());
        for (i, d) in defs.iter().enumerate() {
            out.push(self.definition(i, d)?);
        }
        if self.feature_names.len() > MAX_FEATURES && self.rules == Rules::Modern {
            let mut names: Vec<&String> = self.feature_names.iter().collect();
            names.sort();
            return Err(SchemaError::invalid(
                &Location::unknown(),
                "schema",
                format!(
                    "{} distinct feature names are used; at most {MAX_FEATURES} are allowed",
                    names.len()
                ),
            ));
        }
        Ok(out)
    }

    /// Name validity and conventions of the definition itself, plus doc-required.
    fn def_name(&self, d: &RawDef) -> Result<(), SchemaError> {
        let what = d.what();
        if d.implicit {
            return Ok(());
        }
        if !valid_name(&d.name, false) {
            return Err(err(
                &d.loc,
                &what,
                format!(
                    "invalid name '{}': a name is an optional '__RFQDN_' and 'x-' prefix, then \
                     a letter followed by letters, digits, '-' and '_'",
                    d.name
                ),
            ));
        }
        if reserved_q(&d.name) {
            return Err(err(
                &d.loc,
                &what,
                format!(
                    "name '{}' uses the prefix 'q_', which is reserved for generated names",
                    d.name
                ),
            ));
        }
        let kind = d.body.kind();
        if kind.is_type() && self.rules != Rules::None && d.name.ends_with("List") {
            return Err(err(
                &d.loc,
                &what,
                format!(
                    "type name '{}' must not end in 'List' (reserved for array types)",
                    d.name
                ),
            ));
        }
        if self.rules == Rules::Modern {
            let problem = match kind {
                Kind::Command => {
                    lower_problem(&d.name, false, self.pragmas.command_name_exception(&d.name)).map(
                        |p| {
                            format!(
                        "command name '{}' {p} (or list it in pragma 'command-name-exceptions')",
                        d.name
                    )
                        },
                    )
                }
                Kind::Event => upper_problem(&d.name).map(|p| format!("'{}': {p}", d.name)),
                _ => camel_problem(&d.name).map(|p| format!("'{}': {p}", d.name)),
            };
            if let Some(p) = problem {
                return Err(err(&d.loc, &what, p));
            }
        }
        if self.origin == Origin::Source {
            if let Some(doc) = &d.doc {
                documented_names_exist(d, doc)?;
            }
        }
        if self.origin == Origin::Source && self.pragmas.doc_required && d.doc.is_none() {
            return Err(SchemaError::Doc {
                location: d.loc.line_only(),
                message: format!(
                    "{what} has no documentation comment block, but pragma 'doc-required' is \
                     set (add a '##' block starting with '# @{}:' right before it)",
                    d.name
                ),
            });
        }
        Ok(())
    }

    fn resolve(&self, t: &RawTypeRef, loc: &Location, what: &str) -> Result<TypeRef, SchemaError> {
        match t {
            RawTypeRef::Name(n) => self.resolve_name(n, loc, what),
            RawTypeRef::Array(n) => Ok(TypeRef::Array(Box::new(self.resolve_name(n, loc, what)?))),
        }
    }

    fn resolve_name(&self, n: &str, loc: &Location, what: &str) -> Result<TypeRef, SchemaError> {
        if let Some(b) = Builtin::from_name(n) {
            return Ok(TypeRef::Builtin(b));
        }
        match self.kind_of(n) {
            Some(k) if k.is_type() => Ok(TypeRef::Named(n.to_string())),
            Some(k) => Err(err(loc, what, format!("'{n}' is a {k}, not a type"))),
            None => Err(err(
                loc,
                what,
                format!("unknown type '{n}' (not a built-in type and not defined anywhere)"),
            )),
        }
    }

    fn features(
        &mut self,
        raw: &[RawFeature],
        what: &str,
        on_type: bool,
    ) -> Result<Vec<Feature>, SchemaError> {
        let mut out: Vec<Feature> = Vec::with_capacity(raw.len());
        for f in raw {
            let name = &f.feature.name;
            if !valid_name(name, false) {
                return Err(err(&f.loc, what, format!("invalid feature name '{name}'")));
            }
            if self.rules == Rules::Modern {
                if let Some(p) = lower_problem(name, false, true) {
                    return Err(err(&f.loc, what, format!("feature name '{name}' {p}")));
                }
            }
            if out.iter().any(|o| o.name == *name) {
                return Err(err(&f.loc, what, format!("duplicate feature '{name}'")));
            }
            if on_type && (name == "deprecated" || name == "unstable") {
                return Err(err(
                    &f.loc,
                    what,
                    format!(
                        "feature '{name}' is not allowed on a type (QEMU rejects it); put it \
                         on the members, enum values, commands or events that use the type"
                    ),
                ));
            }
            self.feature_names.insert(name.clone());
            out.push(f.feature.clone());
        }
        Ok(out)
    }

    /// Checks a member name against validity, reservation and convention rules.
    fn member_name(
        &self,
        name: &str,
        loc: &Location,
        owner: &Owner<'_>,
        role: &str,
        digit_ok: bool,
    ) -> Result<(), SchemaError> {
        if !valid_name(name, digit_ok) {
            return Err(err(
                loc,
                &owner.what,
                format!(
                    "{role} '{name}' has an invalid name (expected letters, digits, '-' and '_', \
                     starting with a letter{})",
                    if digit_ok { " or digit" } else { "" }
                ),
            ));
        }
        if owner.implicit_def {
            return Ok(());
        }
        if reserved_q(name) {
            return Err(err(
                loc,
                &owner.what,
                format!("{role} '{name}' uses the reserved prefix 'q_'"),
            ));
        }
        if role == "member" && (name == "u" || c_name(name).starts_with("has_")) {
            return Err(err(
                loc,
                &owner.what,
                format!(
                    "member name '{name}' is reserved ('u' and names starting with 'has-' or \
                     'has_' clash with generated C code)"
                ),
            ));
        }
        let excepted = self.pragmas.member_name_exception(owner.name)
            || owner
                .implicit_name
                .as_deref()
                .is_some_and(|n| self.pragmas.member_name_exception(n));
        let problem = match self.rules {
            Rules::Modern => lower_problem(name, excepted, excepted),
            Rules::Legacy => {
                if !excepted && name.chars().any(|c| c.is_ascii_uppercase()) {
                    Some("must not use upper case")
                } else {
                    None
                }
            }
            Rules::None => None,
        };
        if let Some(p) = problem {
            return Err(err(
                loc,
                &owner.what,
                format!(
                    "{role} '{name}' {p} (or list '{}' in pragma '{}')",
                    owner.name,
                    if self.rules == Rules::Legacy {
                        "name-case-whitelist"
                    } else {
                        "member-name-exceptions"
                    }
                ),
            ));
        }
        Ok(())
    }

    fn undocumented(
        &self,
        owner: &Owner<'_>,
        role: &str,
        name: &str,
        loc: &Location,
    ) -> Result<(), SchemaError> {
        if self.origin != Origin::Source
            || owner.implicit_def
            || self.pragmas.documentation_exceptions.is_empty()
            || self.pragmas.documentation_exception(owner.name)
        {
            return Ok(());
        }
        let Some(doc) = owner.doc else { return Ok(()) };
        if doc.member(name).is_none() {
            return Err(SchemaError::Doc {
                location: loc.line_only(),
                message: format!(
                    "{role} '{name}' of {} is not documented (add '@{name}:' to its doc block, \
                     or list '{}' in pragma 'documentation-exceptions')",
                    owner.what, owner.name
                ),
            });
        }
        Ok(())
    }

    /// Converts and checks a member list (no clash check across bases here).
    fn members(
        &mut self,
        raw: &[RawMember],
        owner: &Owner<'_>,
    ) -> Result<Vec<Member>, SchemaError> {
        let mut out: Vec<Member> = Vec::with_capacity(raw.len());
        let mut seen: HashMap<String, &str> = HashMap::with_capacity(raw.len());
        for m in raw {
            self.member_name(&m.name, &m.loc, owner, "member", false)?;
            if let Some(prev) = seen.insert(c_name(&m.name), &m.name) {
                return Err(err(
                    &m.loc,
                    &owner.what,
                    format!(
                        "member '{}' clashes with member '{prev}' (names are compared after \
                         mapping '-' and '.' to '_')",
                        m.name
                    ),
                ));
            }
            self.undocumented(owner, "member", &m.name, &m.loc)?;
            let what = format!("{}, member '{}'", owner.what, m.name);
            let ty = self.resolve(&m.ty, &m.loc, &what)?;
            let features = self.features(&m.features, &what, false)?;
            let doc = owner
                .doc
                .and_then(|d| d.member(&m.name))
                .map(str::to_string);
            let since = m
                .since
                .clone()
                .or_else(|| doc.as_deref().and_then(inline_since));
            out.push(Member {
                name: m.name.clone(),
                ty,
                optional: m.optional,
                cond: m.cond.clone(),
                features,
                since,
                doc,
            });
        }
        Ok(out)
    }

    /// Flattens struct `i`'s base chain (iteratively, with loop detection).
    fn flatten(&mut self, i: usize) -> Result<(), SchemaError> {
        if self.struct_members[i].is_some() {
            return Ok(());
        }
        let defs = self.defs;
        // Walk up to the first struct without base or already flattened.
        let mut chain: Vec<usize> = vec![i];
        loop {
            let cur = chain[chain.len() - 1];
            if self.struct_members[cur].is_some() && cur != i {
                break;
            }
            let d = &defs[cur];
            let RawBody::Struct { base, .. } = &d.body else {
                break;
            };
            let Some((bname, bloc)) = base else { break };
            let Some((j, bdef)) = self.def(bname) else {
                return Err(err(
                    bloc,
                    d.what(),
                    format!("base '{bname}' is not defined (expected a struct name)"),
                ));
            };
            if !matches!(bdef.body, RawBody::Struct { .. }) {
                return Err(err(
                    bloc,
                    d.what(),
                    format!(
                        "base '{bname}' is {}, but a struct's base must be a struct",
                        bdef.what()
                    ),
                ));
            }
            if let Some(pos) = chain.iter().position(|&c| c == j) {
                let mut names: Vec<&str> = chain[pos..]
                    .iter()
                    .map(|&c| defs[c].name.as_str())
                    .collect();
                names.push(&defs[j].name);
                return Err(err(
                    &defs[i].loc,
                    defs[i].what(),
                    format!("base chain loops: {}", names.join(" -> ")),
                ));
            }
            chain.push(j);
        }
        // Flatten from the top of the chain down.
        for k in (0..chain.len()).rev() {
            let c = chain[k];
            if self.struct_members[c].is_some() {
                continue;
            }
            let d = &defs[c];
            let RawBody::Struct {
                base,
                members: raw_own,
            } = &d.body
            else {
                continue;
            };
            let mut all: Vec<Member> = Vec::new();
            let mut seen: HashMap<String, String> = HashMap::new();
            if let Some((bname, _)) = base {
                if let Some((j, _)) = self.def(bname) {
                    let depth = self.struct_depth[j] + 1;
                    if depth > MAX_BASE_DEPTH {
                        return Err(err(
                            &d.loc,
                            d.what(),
                            format!("base chain is deeper than {MAX_BASE_DEPTH} levels"),
                        ));
                    }
                    self.struct_depth[c] = depth;
                    if let Some(bm) = &self.struct_members[j] {
                        for m in bm {
                            seen.insert(c_name(&m.name), m.name.clone());
                        }
                        all.extend(bm.iter().cloned());
                    }
                }
            }
            let own = self.own_members[c].clone().unwrap_or_default();
            for (m, rm) in own.iter().zip(raw_own.iter()) {
                if let Some(prev) = seen.get(&c_name(&m.name)) {
                    let bname = base.as_ref().map(|b| b.0.as_str()).unwrap_or("");
                    return Err(err(
                        &rm.loc,
                        d.what(),
                        format!(
                            "member '{}' clashes with member '{prev}' inherited from base \
                             '{bname}'",
                            m.name
                        ),
                    ));
                }
            }
            all.extend(own);
            self.struct_members[c] = Some(all);
        }
        Ok(())
    }

    fn union_base_members(&mut self, d: &'a RawDef) -> Result<Vec<Member>, SchemaError> {
        let RawBody::Union { base, .. } = &d.body else {
            return Ok(Vec::new());
        };
        match base {
            Some(RawBase::Named(bname, bloc)) => {
                let Some((j, bdef)) = self.def(bname) else {
                    return Err(err(
                        bloc,
                        d.what(),
                        format!("base '{bname}' is not defined (expected a struct name)"),
                    ));
                };
                if !matches!(bdef.body, RawBody::Struct { .. }) {
                    return Err(err(
                        bloc,
                        d.what(),
                        format!(
                            "base '{bname}' is {}, but a union's base must be a struct or \
                             inline members",
                            bdef.what()
                        ),
                    ));
                }
                Ok(self.struct_members[j].clone().unwrap_or_default())
            }
            Some(RawBase::Inline(members)) => {
                let owner = Owner {
                    what: d.what(),
                    name: &d.name,
                    implicit_name: Some(format!("q_obj_{}-base", d.name)),
                    implicit_def: false,
                    doc: d.doc.as_ref(),
                };
                self.members(members, &owner)
            }
            None => Err(err(&d.loc, d.what(), "a union needs a 'base'")),
        }
    }

    /// The member names object type `j` can contribute on the wire: its members, and for a
    /// union its base members plus those of every branch (recursively). A union's own
    /// branches cannot clash with its base (checked when that union is checked), so a union
    /// branch of type `j` clashes with the outer base exactly when a name here does.
    fn contributed(&mut self, j: usize, path: &mut Vec<usize>) -> Result<Contrib, SchemaError> {
        if let Some(c) = &self.contrib[j] {
            return Ok(c.clone());
        }
        let defs = self.defs;
        let d = &defs[j];
        if let Some(pos) = path.iter().position(|&p| p == j) {
            let mut names: Vec<&str> = path[pos..].iter().map(|&p| defs[p].name.as_str()).collect();
            names.push(&d.name);
            return Err(err(
                &d.loc,
                d.what(),
                format!("union branches loop back: {}", names.join(" -> ")),
            ));
        }
        if path.len() > MAX_UNION_NESTING {
            return Err(err(
                &d.loc,
                d.what(),
                format!("union branches nested more than {MAX_UNION_NESTING} levels deep"),
            ));
        }
        let mut out: Vec<(String, String)> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let own: &[Member] = match &d.body {
            RawBody::Struct { .. } => self.struct_members[j].as_deref().unwrap_or(&[]),
            RawBody::Union { .. } => self.union_base[j].as_deref().unwrap_or(&[]),
            _ => &[],
        };
        for m in own {
            let cn = c_name(&m.name);
            if seen.insert(cn.clone()) {
                out.push((cn, format!("member '{}' of '{}'", m.name, d.name)));
            }
        }
        if let RawBody::Union { branches, .. } = &d.body {
            path.push(j);
            for b in branches {
                let RawTypeRef::Name(n) = &b.ty else { continue };
                let Some((k, kd)) = self.def(n) else { continue };
                if !matches!(kd.body, RawBody::Struct { .. } | RawBody::Union { .. }) {
                    continue;
                }
                let inner = self.contributed(k, path)?;
                for (cn, desc) in inner.iter() {
                    if seen.insert(cn.clone()) {
                        out.push((cn.clone(), desc.clone()));
                    }
                }
            }
            path.pop();
        }
        let rc = Rc::new(out);
        self.contrib[j] = Some(rc.clone());
        Ok(rc)
    }

    fn enum_values_of(&self, name: &str) -> Option<Vec<&'a str>> {
        if name == "QType" {
            return Some(Builtin::QTYPE_VALUES.to_vec());
        }
        match self.def(name).map(|(_, d)| &d.body) {
            Some(RawBody::Enum { values, .. }) => {
                Some(values.iter().map(|v| v.name.as_str()).collect())
            }
            _ => None,
        }
    }

    fn definition(&mut self, i: usize, d: &'a RawDef) -> Result<Definition, SchemaError> {
        let what = d.what();
        let kind = d.body.kind();
        let h = Header {
            name: d.name.clone(),
            cond: d.cond.clone(),
            features: self.features(&d.features, &what, kind.is_type())?,
            since: d
                .since
                .clone()
                .or_else(|| d.doc.as_ref().and_then(Doc::since)),
            doc: d.doc.clone(),
            location: d.loc.line_only(),
            module: d.module.clone(),
        };
        Ok(match &d.body {
            RawBody::Enum { values, prefix } => {
                let values = self.enum_values(d, values)?;
                Definition::Enum(Enum {
                    name: h.name,
                    values,
                    prefix: prefix.clone(),
                    cond: h.cond,
                    features: h.features,
                    since: h.since,
                    doc: h.doc,
                    implicit: d.implicit,
                    location: h.location,
                    module: h.module,
                })
            }
            RawBody::Struct { base, .. } => Definition::Struct(Struct {
                name: h.name,
                base: base.as_ref().map(|b| b.0.clone()),
                own_members: self.own_members[i].clone().unwrap_or_default(),
                members: self.struct_members[i].clone().unwrap_or_default(),
                cond: h.cond,
                features: h.features,
                since: h.since,
                doc: h.doc,
                implicit: d.implicit,
                location: h.location,
                module: h.module,
            }),
            RawBody::Union {
                base,
                discriminator,
                branches,
                simple_legacy,
            } => Definition::Union(self.union_def(
                i,
                d,
                h,
                base.as_ref(),
                discriminator.as_ref(),
                branches,
                *simple_legacy,
            )?),
            RawBody::Alternate { branches } => Definition::Alternate(Alternate {
                branches: self.alternate(d, branches)?,
                name: h.name,
                cond: h.cond,
                features: h.features,
                since: h.since,
                doc: h.doc,
                location: h.location,
                module: h.module,
            }),
            RawBody::Command {
                data,
                returns,
                flags,
            } => {
                let arguments = self.arguments(d, data, flags.boxed, "q_obj_{}-arg")?;
                let returns = self.command_returns(d, returns.as_ref())?;
                if flags.allow_oob && flags.coroutine {
                    return Err(err(
                        &d.loc,
                        &what,
                        "'coroutine': true and 'allow-oob': true cannot be combined",
                    ));
                }
                Definition::Command(Command {
                    name: h.name,
                    arguments,
                    returns,
                    boxed: flags.boxed,
                    success_response: flags.success_response,
                    gen: flags.gen,
                    allow_oob: flags.allow_oob,
                    allow_preconfig: flags.allow_preconfig,
                    coroutine: flags.coroutine,
                    cond: h.cond,
                    features: h.features,
                    since: h.since,
                    doc: h.doc,
                    location: h.location,
                    module: h.module,
                })
            }
            RawBody::Event { data, boxed } => Definition::Event(Event {
                data: self.arguments(d, data, *boxed, "q_obj_{}-arg")?,
                name: h.name,
                boxed: *boxed,
                cond: h.cond,
                features: h.features,
                since: h.since,
                doc: h.doc,
                location: h.location,
                module: h.module,
            }),
        })
    }

    /// An enum's values: valid, distinct names, features, since-versions and docs.
    fn enum_values(
        &mut self,
        d: &'a RawDef,
        values: &[RawEnumValue],
    ) -> Result<Vec<EnumValue>, SchemaError> {
        let what = d.what();
        let owner = Owner {
            what: what.clone(),
            name: &d.name,
            implicit_name: None,
            implicit_def: d.implicit,
            doc: d.doc.as_ref(),
        };
        let mut seen: HashMap<String, &str> = HashMap::new();
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            self.member_name(&v.name, &v.loc, &owner, "value", true)?;
            if let Some(prev) = seen.insert(c_name(&v.name), &v.name) {
                return Err(err(
                    &v.loc,
                    &what,
                    format!(
                        "value '{}' clashes with value '{prev}' (names are compared after \
                         mapping '-' and '.' to '_')",
                        v.name
                    ),
                ));
            }
            self.undocumented(&owner, "value", &v.name, &v.loc)?;
            let vwhat = format!("{what}, value '{}'", v.name);
            let vdoc = d
                .doc
                .as_ref()
                .and_then(|x| x.member(&v.name))
                .map(str::to_string);
            out.push(EnumValue {
                name: v.name.clone(),
                cond: v.cond.clone(),
                features: self.features(&v.features, &vwhat, false)?,
                since: v
                    .since
                    .clone()
                    .or_else(|| vdoc.as_deref().and_then(inline_since)),
                doc: vdoc,
            });
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn union_def(
        &mut self,
        i: usize,
        d: &'a RawDef,
        h: Header,
        base: Option<&RawBase>,
        discriminator: Option<&(String, Location)>,
        branches: &[RawBranch],
        simple_legacy: bool,
    ) -> Result<Union, SchemaError> {
        let what = d.what();
        let base_members = self.union_base[i].clone().unwrap_or_default();
        let Some((disc, disc_loc)) = discriminator else {
            return Err(err(&d.loc, &what, "a union needs a 'discriminator'"));
        };
        let enum_name = self.discriminator_enum(&what, &base_members, disc, disc_loc)?;
        let values = self.enum_values_of(&enum_name).unwrap_or_default();
        if branches.is_empty() {
            return Err(err(
                &d.loc,
                &what,
                "a union needs at least one branch in 'data'",
            ));
        }
        let mut base_seen: HashMap<String, String> = HashMap::new();
        for m in &base_members {
            base_seen.insert(c_name(&m.name), format!("base member '{}'", m.name));
        }
        let mut out: Vec<Branch> = Vec::with_capacity(branches.len());
        for b in branches {
            if !values.contains(&b.name.as_str()) {
                return Err(err(
                    &b.loc,
                    &what,
                    format!(
                        "branch '{}' is not a value of the discriminator enum '{enum_name}' \
                         (values: {})",
                        b.name,
                        values.join(", ")
                    ),
                ));
            }
            if out.iter().any(|o| o.value == b.name) {
                return Err(err(&b.loc, &what, format!("duplicate branch '{}'", b.name)));
            }
            out.push(self.union_branch(i, &what, b, &base_seen)?);
        }
        Ok(Union {
            name: h.name,
            base: match base {
                Some(RawBase::Named(n, _)) => UnionBase::Named(n.clone()),
                _ => UnionBase::Inline(base_members.clone()),
            },
            base_members,
            discriminator: disc.clone(),
            discriminator_enum: enum_name,
            branches: out,
            simple_legacy,
            cond: h.cond,
            features: h.features,
            since: h.since,
            doc: h.doc,
            location: h.location,
            module: h.module,
        })
    }

    /// Checks a union's discriminator member and returns the name of its enum type.
    fn discriminator_enum(
        &self,
        what: &str,
        base_members: &[Member],
        disc: &str,
        disc_loc: &Location,
    ) -> Result<String, SchemaError> {
        let Some(dm) = base_members.iter().find(|m| m.name == *disc) else {
            let names: Vec<&str> = base_members.iter().map(|m| m.name.as_str()).collect();
            return Err(err(
                disc_loc,
                what,
                format!(
                    "discriminator '{disc}' is not a member of the base (base members: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        };
        if dm.optional {
            return Err(err(
                disc_loc,
                what,
                format!("discriminator member '{disc}' must not be optional"),
            ));
        }
        if dm.cond.is_some() {
            return Err(err(
                disc_loc,
                what,
                format!("discriminator member '{disc}' must not be conditional ('if')"),
            ));
        }
        match &dm.ty {
            TypeRef::Named(n) if self.kind_of(n) == Some(Kind::Enum) => Ok(n.clone()),
            TypeRef::Builtin(Builtin::QType) => Ok("QType".to_string()),
            other => Err(err(
                disc_loc,
                what,
                format!(
                    "discriminator member '{disc}' has type '{other}', but it must be an enum \
                     type"
                ),
            )),
        }
    }

    /// Checks one union branch: an object type whose members do not clash with the base's.
    fn union_branch(
        &mut self,
        i: usize,
        what: &str,
        b: &RawBranch,
        base_seen: &HashMap<String, String>,
    ) -> Result<Branch, SchemaError> {
        let tname = match &b.ty {
            RawTypeRef::Name(n) => n,
            RawTypeRef::Array(_) => {
                return Err(err(
                    &b.loc,
                    what,
                    format!(
                        "branch '{}' has an array type; a union branch must name a struct or \
                         union",
                        b.name
                    ),
                ))
            }
        };
        let bwhat = format!("{what}, branch '{}'", b.name);
        self.resolve_name(tname, &b.loc, &bwhat)?;
        match self.kind_of(tname) {
            Some(Kind::Struct) | Some(Kind::Union) => {}
            other => {
                let k = match other {
                    Some(k) => format!("{k} '{tname}'"),
                    None => format!("built-in type '{tname}'"),
                };
                return Err(err(
                    &b.loc,
                    what,
                    format!(
                        "branch '{}' has type {k}, but a union branch must be an object type \
                         (struct or union)",
                        b.name
                    ),
                ));
            }
        }
        if let Some((k, _)) = self.def(tname) {
            let names = self.contributed(k, &mut vec![i])?;
            for (cn, desc) in names.iter() {
                if let Some(prev) = base_seen.get(cn) {
                    return Err(err(
                        &b.loc,
                        what,
                        format!("branch '{}': {desc} clashes with {prev}", b.name),
                    ));
                }
            }
        }
        Ok(Branch {
            value: b.name.clone(),
            ty_name: tname.clone(),
            cond: b.cond.clone(),
        })
    }

    /// A command's return type: an object type or an array of one, unless a pragma allows
    /// otherwise.
    fn command_returns(
        &self,
        d: &'a RawDef,
        returns: Option<&(RawTypeRef, Location)>,
    ) -> Result<Option<TypeRef>, SchemaError> {
        let Some((r, rloc)) = returns else {
            return Ok(None);
        };
        let what = d.what();
        let t = self.resolve(r, rloc, &format!("{what}, 'returns'"))?;
        let is_object = |n: &str| matches!(self.kind_of(n), Some(Kind::Struct | Kind::Union));
        let object = match &t {
            TypeRef::Named(n) => is_object(n),
            TypeRef::Array(e) => matches!(&**e, TypeRef::Named(n) if is_object(n)),
            TypeRef::Builtin(_) => false,
        };
        if !object && self.rules != Rules::None && !self.pragmas.returns_exception(&d.name) {
            return Err(err(
                rloc,
                &what,
                format!(
                    "'returns' is '{t}', but a command may only return an object type (struct \
                     or union) or an array of one, unless it is listed in pragma '{}'",
                    if self.rules == Rules::Legacy {
                        "returns-whitelist"
                    } else {
                        "command-returns-exceptions"
                    }
                ),
            ));
        }
        Ok(Some(t))
    }

    fn arguments(
        &mut self,
        d: &'a RawDef,
        data: &RawArgs,
        boxed: bool,
        implicit_pattern: &str,
    ) -> Result<Arguments, SchemaError> {
        let what = d.what();
        match data {
            RawArgs::None => {
                if boxed {
                    return Err(err(
                        &d.loc,
                        &what,
                        "'boxed': true requires 'data' naming a struct or union",
                    ));
                }
                Ok(Arguments::None)
            }
            RawArgs::Members(m) => {
                if boxed {
                    return Err(err(
                        &d.loc,
                        &what,
                        "'boxed': true requires 'data' to name a type, not inline members",
                    ));
                }
                let owner = Owner {
                    what: what.clone(),
                    name: &d.name,
                    implicit_name: Some(implicit_pattern.replace("{}", &d.name)),
                    implicit_def: false,
                    doc: d.doc.as_ref(),
                };
                Ok(Arguments::Members(self.members(m, &owner)?))
            }
            RawArgs::Type(t, loc) => {
                let awhat = format!("{what}, 'data'");
                let r = self.resolve_name(t, loc, &awhat)?;
                let kind = match &r {
                    TypeRef::Named(n) => self.kind_of(n),
                    _ => None,
                };
                match (kind, boxed) {
                    (Some(Kind::Struct), _) | (Some(Kind::Union), true) => {
                        Ok(Arguments::Type(t.clone()))
                    }
                    (Some(Kind::Union), false) => Err(err(
                        loc,
                        &what,
                        format!("'data' names union '{t}', which requires 'boxed': true"),
                    )),
                    _ => Err(err(
                        loc,
                        &what,
                        format!(
                            "'data' must be inline members or name a struct{}; '{t}' is {}",
                            if boxed { " or union" } else { "" },
                            match kind {
                                Some(k) => format!("a {k}"),
                                None => "a built-in type".into(),
                            }
                        ),
                    )),
                }
            }
        }
    }

    fn alternate(
        &mut self,
        d: &'a RawDef,
        branches: &[RawBranch],
    ) -> Result<Vec<AltBranch>, SchemaError> {
        let what = d.what();
        if branches.is_empty() {
            return Err(err(
                &d.loc,
                &what,
                "an alternate needs at least one branch in 'data'",
            ));
        }
        let owner = Owner {
            what: what.clone(),
            name: &d.name,
            implicit_name: None,
            implicit_def: false,
            doc: d.doc.as_ref(),
        };
        // JSON type -> the branch that claimed it.
        let mut claimed: HashMap<JsonType, String> = HashMap::new();
        let mut out: Vec<AltBranch> = Vec::with_capacity(branches.len());
        for b in branches {
            self.member_name(&b.name, &b.loc, &owner, "branch", false)?;
            if out.iter().any(|o| c_name(&o.name) == c_name(&b.name)) {
                return Err(err(
                    &b.loc,
                    &what,
                    format!("branch '{}' clashes with another branch", b.name),
                ));
            }
            self.undocumented(&owner, "branch", &b.name, &b.loc)?;
            let bwhat = format!("{what}, branch '{}'", b.name);
            let ty = self.resolve(&b.ty, &b.loc, &bwhat)?;
            let (json, also): (JsonType, Vec<JsonType>) = match &ty {
                TypeRef::Array(_) => (JsonType::Array, vec![]),
                TypeRef::Builtin(Builtin::Any) => {
                    return Err(err(
                        &b.loc,
                        &what,
                        format!(
                            "branch '{}' cannot be 'any': it would take every JSON value",
                            b.name
                        ),
                    ))
                }
                TypeRef::Builtin(Builtin::Str) => {
                    (JsonType::String, vec![JsonType::Number, JsonType::Boolean])
                }
                TypeRef::Builtin(Builtin::QType) => (JsonType::String, vec![]),
                TypeRef::Builtin(bt) => (bt.json_type().unwrap_or(JsonType::Null), vec![]),
                TypeRef::Named(n) => match self.kind_of(n) {
                    Some(Kind::Struct | Kind::Union) => (JsonType::Object, vec![]),
                    Some(Kind::Enum) => {
                        let mut also = Vec::new();
                        let vals = self.enum_values_of(n).unwrap_or_default();
                        if vals.iter().any(|v| *v == "on" || *v == "off") {
                            also.push(JsonType::Boolean);
                        }
                        if vals.iter().any(|v| {
                            v.starts_with(|c: char| {
                                c.is_ascii_digit() || matches!(c, '-' | '+' | '.')
                            })
                        }) {
                            also.push(JsonType::Number);
                        }
                        (JsonType::String, also)
                    }
                    _ => {
                        return Err(err(
                            &b.loc,
                            &what,
                            format!(
                                "branch '{}' has type '{n}', an alternate; alternates cannot \
                                 nest",
                                b.name
                            ),
                        ))
                    }
                },
            };
            for jt in std::iter::once(json).chain(also.iter().copied()) {
                if let Some(prev) = claimed.get(&jt) {
                    return Err(err(
                        &b.loc,
                        &what,
                        format!(
                            "branch '{}' ({ty}) cannot be distinguished from branch '{prev}': \
                             both could take a JSON {jt}{}",
                            b.name,
                            if jt != json {
                                " (string values of this type may read as that on the \
                                 command line)"
                            } else {
                                ""
                            }
                        ),
                    ));
                }
            }
            for jt in std::iter::once(json).chain(also) {
                claimed.insert(jt, b.name.clone());
            }
            out.push(AltBranch {
                name: b.name.clone(),
                ty,
                cond: b.cond.clone(),
            });
        }
        Ok(out)
    }
}

/// Every `@name:` of a doc block names something the definition has (a member, argument,
/// enum value or branch), and every feature it describes is a feature of the definition or
/// of one of its members. A typo there would otherwise silently drop the description.
fn documented_names_exist(d: &RawDef, doc: &Doc) -> Result<(), SchemaError> {
    let member_names = |ms: &[crate::raw::RawMember]| -> Vec<String> {
        ms.iter().map(|m| m.name.clone()).collect()
    };
    let (role, names): (&str, Vec<String>) = match &d.body {
        RawBody::Enum { values, .. } => ("value", values.iter().map(|v| v.name.clone()).collect()),
        RawBody::Struct { members, .. } => ("member", member_names(members)),
        RawBody::Union { base, branches, .. } => {
            let mut names = match base {
                Some(crate::raw::RawBase::Inline(ms)) => member_names(ms),
                _ => Vec::new(),
            };
            names.extend(branches.iter().map(|b| b.name.clone()));
            ("member or branch", names)
        }
        RawBody::Alternate { branches } => {
            ("branch", branches.iter().map(|b| b.name.clone()).collect())
        }
        RawBody::Command { data, .. } | RawBody::Event { data, .. } => match data {
            crate::raw::RawArgs::Members(ms) => ("argument", member_names(ms)),
            crate::raw::RawArgs::None => ("argument", Vec::new()),
            // The arguments are a named type's members, documented with that type; QEMU's
            // docs of such commands name the type's members or the whole value freely.
            crate::raw::RawArgs::Type(..) => return Ok(()),
        },
    };
    for item in &doc.members {
        if !names.contains(&item.name) {
            let known = if names.is_empty() {
                "it has none".to_string()
            } else {
                format!("it has: {}", names.join(", "))
            };
            return Err(SchemaError::Doc {
                location: d.loc.line_only(),
                message: format!(
                    "the doc comment of {} describes '@{}', which is not one of its {role}s ({known})",
                    d.what(),
                    item.name
                ),
            });
        }
    }
    let mut features: Vec<String> = d.features.iter().map(|f| f.feature.name.clone()).collect();
    let mut member_features = |ms: &[crate::raw::RawMember]| {
        for m in ms {
            features.extend(m.features.iter().map(|f| f.feature.name.clone()));
        }
    };
    match &d.body {
        RawBody::Struct { members, .. } => member_features(members),
        RawBody::Union {
            base: Some(crate::raw::RawBase::Inline(ms)),
            ..
        } => member_features(ms),
        RawBody::Command {
            data: crate::raw::RawArgs::Members(ms),
            ..
        }
        | RawBody::Event {
            data: crate::raw::RawArgs::Members(ms),
            ..
        } => member_features(ms),
        RawBody::Enum { values, .. } => {
            for v in values {
                features.extend(v.features.iter().map(|f| f.feature.name.clone()));
            }
        }
        _ => {}
    }
    for item in &doc.features {
        if !features.contains(&item.name) {
            return Err(SchemaError::Doc {
                location: d.loc.line_only(),
                message: format!(
                    "the doc comment of {} describes feature '{}', which neither it nor its members have",
                    d.what(),
                    item.name
                ),
            });
        }
    }
    Ok(())
}
