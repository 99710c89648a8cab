//! The `types` module: one Rust type per schema type, in one submodule per QAPI module
//! (`types::block_core`), all re-exported flat from `types`.
//!
//! - enum → `enum` with one variant per value plus `Other(UnknownValue<Self>)` for values a
//!   newer QEMU may send; its wire form comes from the runtime's `__qapi_enum_impls!` macro.
//! - struct → `struct` with every member (base members included), serde impls.
//! - union → `struct` with the base members and one field, named after the discriminator,
//!   holding a `<Union>Variant` enum with the branch's members; hand-written serde impls
//!   (the discriminator may come after the branch members on the wire).
//! - alternate → `enum` decoded by the JSON type of the value.

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::conversions;
use super::docs::{alias, deprecated, Docs};
use super::fields::{field_decls, params_and_inits, struct_derives};
use super::plan::{branch_key, Field, Module, Plan};
use super::serde_impls::{self, Unknown};
use super::{EmitError, Item, Options};
use crate::history::Path;
use crate::ident;
use crate::model::{
    Alternate, Builtin, Definition, Enum, EnumValue, JsonType, Member, Struct, Union,
};

const M: Module = Module::Types;

/// The items of `types.rs` for the QAPI modules `plan.modules[modules]` (the file's first piece
/// also defines `QType`).
pub(crate) fn emit(
    plan: &Plan<'_>,
    opts: &Options,
    modules: std::ops::Range<usize>,
) -> Result<Vec<Item>, EmitError> {
    let mut items = Vec::new();
    if modules.start == 0 {
        items.push(Item::new("QType", qtype(plan)));
    }
    for (module, rust) in plan.modules.get(modules).unwrap_or_default() {
        let mut children = Vec::new();
        for def in plan
            .schema
            .definitions
            .iter()
            .filter(|d| d.module() == *module)
        {
            let tokens = match def {
                Definition::Enum(e) => enum_type(plan, opts, e)?,
                Definition::Struct(s) => struct_type(plan, opts, s)?,
                Definition::Union(u) => union_type(plan, opts, u)?,
                Definition::Alternate(a) => alternate_type(plan, opts, a)?,
                Definition::Command(_) | Definition::Event(_) => continue,
            };
            children.push(Item::new(def.name(), tokens));
        }
        match module {
            // Input without modules (introspection): every type directly in `types`.
            None => items.extend(children),
            Some(_) if children.is_empty() => {}
            Some(m) => {
                let id = ident::ident(rust);
                let mut d = Docs::new();
                d.para(format!("Types of the QAPI module `{m}`."));
                d.para(format!(
                    "QEMU reference: [`{m}`]({}).",
                    plan.manual.module_url(m)
                ));
                let docs = d.tokens();
                items.push(Item::module(
                    m,
                    quote!(#docs #[allow(deprecated)]),
                    id.clone(),
                    TokenStream::new(),
                    children,
                ));
                items.push(Item::new(m, quote!(pub use #id::*;)));
            }
        }
    }
    Ok(items)
}

/// The item docs shared by every kind: prose, a line naming the QMP type, facts, the link.
fn type_docs(plan: &Plan<'_>, opts: &Options, kind: &str, def: &Definition) -> Docs {
    let mut d = Docs::new();
    if opts.prose {
        d.prose(def.doc().map(|d| d.body.as_str()));
    }
    d.para(format!("QMP {kind} `{}`.", def.name()));
    d.facts(def.since(), def.features(), def.cond());
    if let Some(note) = plan.note(&Path::definition(def.name()), def.since()) {
        d.para(note);
    }
    if let Some(feature) = decode_feature(plan, opts, def.name()).filter(|_| kind != "enum") {
        d.para(format!(
            "QEMU never sends this type (it is only in command arguments), so it implements \
             `Deserialize` only with the crate feature `{feature}`; decoding refuses members \
             it does not know."
        ));
    }
    d.reference(def.name(), plan.reference(def).as_deref());
    d
}

/// The cargo feature that gates `Deserialize` on the schema type `qapi`, when it is gated: a
/// type QEMU never sends, with [`Options::decode_arguments_feature`] set.
fn decode_feature<'o>(plan: &Plan<'_>, opts: &'o Options, qapi: &str) -> Option<&'o str> {
    opts.decode_arguments_feature
        .as_deref()
        .filter(|_| !plan.sent_by_qemu(qapi))
}

/// What decoding the schema type `qapi` does with members it does not know: types QEMU sends
/// skip them (a newer QEMU may add some); types it never sends (read from a user's file, say)
/// refuse them, so a misspelled member is an error instead of silently gone.
fn unknown_members(plan: &Plan<'_>, qapi: &str) -> Unknown {
    if plan.sent_by_qemu(qapi) {
        Unknown::Skip
    } else {
        Unknown::Refuse
    }
}

/// `#[cfg(feature = ...)]` for the `Deserialize` impl of `qapi`, if gated (see
/// [`decode_feature`]); nothing otherwise.
fn decode_gate(plan: &Plan<'_>, opts: &Options, qapi: &str) -> TokenStream {
    match decode_feature(plan, opts, qapi) {
        Some(feature) => quote!(#[cfg(feature = #feature)]),
        None => TokenStream::new(),
    }
}

fn qtype(plan: &Plan<'_>) -> TokenStream {
    let values = Builtin::QTYPE_VALUES;
    let variants: Vec<_> = values
        .iter()
        .map(|v| ident::ident(&ident::variant_name(v)))
        .collect();
    let docs: Vec<TokenStream> = values
        .iter()
        .map(|v| {
            let d = format!(" `{v}`");
            quote!(#[doc = #d])
        })
        .collect();
    let name = plan.type_ident("QType");
    enum_tokens(
        quote!(#[doc = " QEMU's built-in `QType` enum: the type of a JSON value inside QEMU."]),
        &name,
        &variants,
        &docs,
        &values,
    )
}

/// An enum with its `Other` catch-all, its wire mapping (`as_str`, `from_wire`, `VALUES`),
/// and the trait impls from the runtime macro.
fn enum_tokens(
    head: TokenStream,
    name: &Ident,
    variants: &[Ident],
    docs: &[TokenStream],
    wires: &[&str],
) -> TokenStream {
    quote! {
        #head
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum #name {
            #( #docs #variants, )*
            /// A value this schema does not know (sent by a newer QEMU). Only decoding and
            /// [`from_wire`](Self::from_wire) make one, and never for a known value.
            Other(crate::UnknownValue<#name>),
        }

        #[allow(deprecated)]
        impl #name {
            /// Every value this schema knows, as sent on the wire, in schema order.
            pub const VALUES: &'static [&'static str] = &[#(#wires),*];

            /// The value as sent on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    #( Self::#variants => #wires, )*
                    Self::Other(other) => other.as_str(),
                }
            }

            /// The value for a wire name: its variant, or `Other` for a name this schema does
            /// not know.
            pub fn from_wire(name: &str) -> Self {
                match name {
                    #( #wires => Self::#variants, )*
                    other => Self::Other(crate::__private::unknown_value(other)),
                }
            }
        }

        crate::__qapi_enum_impls!(#name);
    }
}

fn value_docs(
    plan: &Plan<'_>,
    opts: &Options,
    paths: &[Path],
    v: &EnumValue,
    variant: &Ident,
) -> TokenStream {
    let mut d = Docs::new();
    d.para(format!("`{}`", v.name));
    if opts.prose {
        d.prose(v.doc.as_deref());
    }
    d.facts(v.since.as_deref(), &v.features, v.cond.as_ref());
    for path in paths {
        if let Some(note) = plan.note(path, v.since.as_deref()) {
            d.para(note);
        }
    }
    let dep = deprecated(&v.features);
    let docs = d.tokens();
    let alias = alias(&v.name, &variant.to_string());
    quote!(#docs #alias #dep)
}

/// Variant names for an enum's values, with the catch-all rule: a value that would be called
/// `Other` is called `OtherValue`, so `Other` always means "unknown".
fn value_variants(e: &Enum) -> Result<Vec<Ident>, EmitError> {
    let mut seen = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for v in &e.values {
        let mut name = ident::variant_name(&v.name);
        if name == "Other" {
            name = "OtherValue".into();
        }
        if let Some(prev) = seen.insert(name.clone(), v.name.clone()) {
            return Err(EmitError::Clash {
                scope: format!("the values of enum {}", e.name),
                rust: name,
                first: prev,
                second: v.name.clone(),
            });
        }
        out.push(ident::ident(&name));
    }
    Ok(out)
}

fn enum_type(plan: &Plan<'_>, opts: &Options, e: &Enum) -> Result<TokenStream, EmitError> {
    let name = plan.type_ident(&e.name);
    let def = Definition::Enum(e.clone());
    let docs = type_docs(plan, opts, "enum", &def).tokens();
    let alias = {
        let wire = alias(&e.name, &name.to_string());
        let old = plan.old_name_aliases(&e.name);
        quote!(#wire #old)
    };
    let dep = deprecated(&e.features);
    let variants = value_variants(e)?;
    let vdocs: Vec<TokenStream> = e
        .values
        .iter()
        .zip(&variants)
        .map(|(v, id)| value_docs(plan, opts, &[Path::value(&e.name, &v.name)], v, id))
        .collect();
    let wires: Vec<&str> = e.values.iter().map(|v| v.name.as_str()).collect();
    Ok(enum_tokens(
        quote!(#docs #alias #dep),
        &name,
        &variants,
        &vdocs,
        &wires,
    ))
}

fn struct_type(plan: &Plan<'_>, opts: &Options, s: &Struct) -> Result<TokenStream, EmitError> {
    let name = plan.type_ident(&s.name);
    let def = Definition::Struct(s.clone());
    let mut d = type_docs(plan, opts, "struct", &def);
    if let Some(base) = &s.base {
        let same_module = plan.schema.get(base).and_then(Definition::module) == s.module.as_deref();
        let rust = plan.type_ident(base);
        d.para(if same_module {
            format!("Includes the members of [`{rust}`].")
        } else {
            format!("Includes the members of [`{rust}`](crate::types::{rust}).")
        });
    }
    if let Some(c) = plan.command_of_struct(&s.name) {
        let run = match plan.method_ident(&c.name) {
            Some(m) => format!(
                ": run it with [`{q}::{m}`](crate::{q}::{m})",
                q = plan.client
            ),
            None => String::new(),
        };
        d.para(format!(
            "It is also the type of the QMP command `{}` (it implements \
             [`Command`](crate::Command)){run}.",
            c.name
        ));
    }
    let docs = d.tokens();
    let alias = {
        let wire = alias(&s.name, &name.to_string());
        let old = plan.old_name_aliases(&s.name);
        quote!(#wire #old)
    };
    let dep = deprecated(&s.features);
    let fields = plan.fields(
        &s.name,
        s.since.as_deref(),
        &s.members,
        plan.sent_by_qemu(&s.name),
    )?;
    let url = plan.reference(&def);
    let decls = field_decls(plan, opts, &fields, M, (&s.name, url.as_deref()));
    let derives = struct_derives(&fields);
    // Conveniences for building values, on the types users send (arguments).
    let built = plan.sent_to_qemu(&s.name);
    let ctor_name = conversions::constructor_name(&fields, built);
    let ctor = constructor(plan, &name, &fields, None, &ctor_name);
    let setters =
        built.then(|| conversions::setters(plan, &name, &fields, &[ctor_name.as_str()], M));
    let from = built.then(|| conversions::single_member_from(plan, &name, &fields));
    let ser = serde_impls::serialize(&name, &fields, None);
    let gate = decode_gate(plan, opts, &s.name);
    let de = serde_impls::deserialize(&name, &fields, unknown_members(plan, &s.name));
    Ok(quote! {
        #docs
        #alias
        #dep
        #derives
        pub struct #name { #decls }

        #ctor
        #setters
        #from
        #ser
        #gate
        #de
    })
}

/// `new(required...)` for a struct (or union, with its branch last) that has required fields:
/// optional ones start as `None`. Structs whose fields are all optional derive `Default`
/// instead.
fn constructor(
    plan: &Plan<'_>,
    name: &Ident,
    fields: &[Field<'_>],
    variant: Option<(&Ident, &Ident)>,
    ctor_name: &str,
) -> TokenStream {
    if variant.is_none() && fields.iter().all(|f| f.optional) {
        return TokenStream::new();
    }
    let (mut params, mut inits) = params_and_inits(plan, fields, M);
    if let Some((field, ty)) = variant {
        params.push(quote!(#field: impl Into<#ty>));
        inits.push(quote!(#field: #field.into(),));
    }
    let many = (params.len() > 7).then(|| quote!(#[allow(clippy::too_many_arguments)]));
    let doc = if ctor_name == "new" {
        " A value with the given required members; optional members start as `None`."
    } else {
        " A value with the given required members; optional members start as `None`. The \
         name lists the string members in order, since strings are easy to swap by accident."
    };
    let ctor = ident::ident(ctor_name);
    quote! {
        #[allow(deprecated)]
        impl #name {
            #[doc = #doc]
            #many
            pub fn #ctor(#(#params),*) -> Self {
                #name { #(#inits)* }
            }
        }
    }
}

/// What the pieces of a union's code share.
struct UnionParts<'p, 'm> {
    u: &'p Union,
    name: Ident,
    variant_ty: Ident,
    /// The base members other than the discriminator.
    fields: Vec<Field<'m>>,
    disc: &'p Member,
    disc_ident: Ident,
    /// The discriminator's enum, as a path (it may live in another QAPI module).
    disc_enum: TokenStream,
    /// QEMU sends values of this union: an older QEMU may leave the discriminator out (9.1
    /// turned `SevInfo` into a union on a new `sev-type` member), so such a value decodes as
    /// an untagged `Other` keeping every member.
    relaxed: bool,
}

fn union_type(plan: &Plan<'_>, opts: &Options, u: &Union) -> Result<TokenStream, EmitError> {
    let base: Vec<Member> = u
        .base_members
        .iter()
        .filter(|m| m.name != u.discriminator)
        .cloned()
        .collect();
    let relaxed = plan.sent_by_qemu(&u.name);
    let fields = plan.fields(&u.name, u.since.as_deref(), &base, relaxed)?;
    let disc = u
        .base_members
        .iter()
        .find(|m| m.name == u.discriminator)
        .ok_or_else(|| EmitError::Model(format!("union {} has no discriminator member", u.name)))?;
    let disc_ident = ident::ident(&ident::field_name(&disc.name));
    if fields.iter().any(|f| f.ident == disc_ident) {
        return Err(EmitError::Clash {
            scope: format!("the fields of {}", u.name),
            rust: disc_ident.to_string(),
            first: disc.name.clone(),
            second: "a base member".into(),
        });
    }
    let p = UnionParts {
        u,
        name: plan.type_ident(&u.name),
        variant_ty: plan.variant_type_ident(&u.name),
        fields,
        disc,
        disc_ident,
        disc_enum: plan.type_path(&u.discriminator_enum, M),
        relaxed,
    };
    let def = Definition::Union(u.clone());
    let mut d = type_docs(plan, opts, "union", &def);
    d.para(format!(
        "The members of the branch selected by `{}` are in the [`{}`] field.",
        u.discriminator, p.variant_ty
    ));
    let docs = d.tokens();
    let alias = {
        let wire = alias(&u.name, &p.name.to_string());
        let old = plan.old_name_aliases(&u.name);
        quote!(#wire #old)
    };
    let dep = deprecated(&u.features);
    let url = plan.reference(&def);
    let decls = field_decls(plan, opts, &p.fields, M, (&u.name, url.as_deref()));
    let (name, variant_ty, disc_ident) = (&p.name, &p.variant_ty, &p.disc_ident);
    let variant_doc = format!(
        " The branch of [`{name}`] selected by `{}`, with the branch's members.",
        u.discriminator
    );
    let branch_enum = branch_enum(plan, opts, &p, &variant_doc)?;
    let built = plan.sent_to_qemu(&u.name);
    let ctor_name = conversions::constructor_name(&p.fields, built);
    let ctor = constructor(
        plan,
        name,
        &p.fields,
        Some((disc_ident, variant_ty)),
        &ctor_name,
    );
    let setters =
        built.then(|| conversions::setters(plan, name, &p.fields, &[ctor_name.as_str()], M));
    let conversions = if built {
        union_conversions(plan, &p, &ctor_name)?
    } else {
        conversions::variant_display(&p.variant_ty)
    };
    let ser = union_serialize(&p);
    let de = union_deserialize(plan, &p)?;
    let gate = decode_gate(plan, opts, &u.name);
    Ok(quote! {
        #docs
        #alias
        #dep
        #[derive(Debug, Clone, PartialEq)]
        pub struct #name {
            #decls
            #[doc = #variant_doc]
            pub #disc_ident: #variant_ty,
        }

        #branch_enum
        #ctor
        #setters
        #conversions
        #ser
        #gate
        #de
    })
}

/// The union's `From` impls and its variant's `Display` (see [`conversions`]).
fn union_conversions(
    plan: &Plan<'_>,
    p: &UnionParts<'_, '_>,
    ctor_name: &str,
) -> Result<TokenStream, EmitError> {
    let enum_def = plan
        .schema
        .enum_type(&p.u.discriminator_enum)
        .ok_or_else(|| {
            EmitError::Model(format!("union {}: discriminator enum missing", p.u.name))
        })?;
    let tags = value_variants(enum_def)?;
    let values: Vec<&str> = enum_def.values.iter().map(|v| v.name.as_str()).collect();
    // Tag constructors must not take a setter's name.
    let base_members: Vec<&str> = p.fields.iter().map(|f| f.member.name.as_str()).collect();
    // `From` builds the union with `new(variant)`: only when that is the constructor.
    let from_variant = ctor_name == "new" && conversions::all_optional(&p.fields);
    Ok(conversions::union_conversions(
        plan,
        p.u,
        &p.name,
        &p.variant_ty,
        from_variant,
        &tags.into_iter().zip(values).collect::<Vec<_>>(),
        &base_members,
    ))
}

/// `<Union>Variant`: one variant per discriminator value, carrying the branch (if any), plus
/// `Other` for values this schema does not know; its `tag()` and member writer.
fn branch_enum(
    plan: &Plan<'_>,
    opts: &Options,
    p: &UnionParts<'_, '_>,
    doc: &str,
) -> Result<TokenStream, EmitError> {
    let (u, variant_ty, disc_enum) = (p.u, &p.variant_ty, &p.disc_enum);
    let enum_def = plan
        .schema
        .enum_type(&u.discriminator_enum)
        .ok_or_else(|| EmitError::Model(format!("union {}: discriminator enum missing", u.name)))?;
    let tags = value_variants(enum_def)?;
    let mut decls = Vec::new();
    let mut tag_arms = Vec::new();
    let mut put_arms = Vec::new();
    for (value, tag) in enum_def.values.iter().zip(&tags) {
        let paths = [
            Path::value(&u.discriminator_enum, &value.name),
            Path::branch(&u.name, &value.name),
        ];
        let vdocs = value_docs(plan, opts, &paths, value, tag);
        match u.branch(&value.name) {
            Some(branch) => {
                let mut ty = plan.type_path(&branch.ty_name, M);
                if plan.is_boxed(&u.name, &branch_key(&value.name)) {
                    let b = plan.std("Box", M);
                    ty = quote!(#b<#ty>);
                }
                decls.push(quote!(#vdocs #tag(#ty),));
                tag_arms.push(quote!(Self::#tag(_) => #disc_enum::#tag,));
                put_arms.push(quote!(Self::#tag(v) => out.extend(v),));
            }
            None => {
                decls.push(quote!(#vdocs #tag,));
                tag_arms.push(quote!(Self::#tag => #disc_enum::#tag,));
                put_arms.push(quote!(Self::#tag => {}));
            }
        }
    }
    Ok(quote! {
        #[doc = #doc]
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum #variant_ty {
            #(#decls)*
            /// A branch this schema does not know (sent by a newer QEMU), with all its members.
            /// Only decoding makes one, and never for a known discriminator value.
            Other(crate::UnknownVariant<#variant_ty>),
        }

        impl #variant_ty {
            /// The discriminator value of this branch.
            pub fn tag(&self) -> #disc_enum {
                match self {
                    #(#tag_arms)*
                    Self::Other(v) => #disc_enum::from_wire(v.tag()),
                }
            }

            // Generic over the serializer only so that it is compiled where a union is
            // serialized: a plain fn would be compiled into the crate for every union, with
            // the serialization of every branch type (a second of rustc's time, measured).
            #[allow(clippy::extra_unused_type_parameters)]
            fn put_members<S: ::serde::Serializer>(&self, out: &mut crate::__private::FlatObject) {
                match self {
                    #(#put_arms)*
                    Self::Other(v) => out.extend_unknown(v),
                }
            }
        }
    })
}

/// `Serialize`: the discriminator, the other base members, then the branch's members, as one
/// object (the order QEMU's documentation writes them in).
fn union_serialize(p: &UnionParts<'_, '_>) -> TokenStream {
    let (name, variant_ty, disc_ident) = (&p.name, &p.variant_ty, &p.disc_ident);
    let disc_wire = &p.disc.name;
    let puts = p.fields.iter().map(|f| {
        let id = &f.ident;
        let wire = &f.member.name;
        if f.optional {
            quote!(__out.put_opt(#wire, &self.#id);)
        } else {
            quote!(__out.put(#wire, &self.#id);)
        }
    });
    let put_tag = if p.relaxed {
        quote! {
            // An untagged value (from a QEMU older than the discriminator) stays untagged.
            match &self.#disc_ident {
                #variant_ty::Other(v) if v.is_untagged() => {}
                branch => __out.put(#disc_wire, &branch.tag()),
            }
        }
    } else {
        quote!(__out.put(#disc_wire, &self.#disc_ident.tag());)
    };
    quote! {
        impl ::serde::Serialize for #name {
            fn serialize<S: ::serde::Serializer>(&self, __s: S) -> ::core::result::Result<S::Ok, S::Error> {
                let mut __out = crate::__private::FlatObject::new();
                #put_tag
                #(#puts)*
                self.#disc_ident.put_members::<S>(&mut __out);
                __out.serialize(__s)
            }
        }
    }
}

/// `Deserialize`: the base (with the discriminator) from a first pass over the captured
/// value, the branch from a second. The base is a private struct of the base members plus
/// the discriminator.
fn union_deserialize(plan: &Plan<'_>, p: &UnionParts<'_, '_>) -> Result<TokenStream, EmitError> {
    let (u, name, variant_ty, disc_ident, disc_enum) =
        (p.u, &p.name, &p.variant_ty, &p.disc_ident, &p.disc_enum);
    let tagged = |pat: TokenStream| {
        if p.relaxed {
            quote!(Some(#pat))
        } else {
            pat
        }
    };
    let enum_def = plan
        .schema
        .enum_type(&u.discriminator_enum)
        .ok_or_else(|| EmitError::Model(format!("union {}: discriminator enum missing", u.name)))?;
    let tags = value_variants(enum_def)?;
    // Strict unions (QEMU never sends them) decode the branch from the members the base
    // does not name, so that the branch refuses anything it does not know either.
    let strict = unknown_members(plan, &u.name) == Unknown::Refuse;
    let base_names: Vec<&str> = p
        .fields
        .iter()
        .map(|f| f.member.name.as_str())
        .chain([p.disc.name.as_str()])
        .collect();
    let decode_arms = enum_def.values.iter().zip(&tags).map(|(value, tag)| {
        let pat = tagged(quote!(#disc_enum::#tag));
        match (u.branch(&value.name).is_some(), strict) {
            (true, false) => {
                quote!(#pat => #variant_ty::#tag(crate::__private::decode_part!(__raw)),)
            }
            (true, true) => {
                // The branch's own members, when it is a struct (a union branch's depend on
                // its tag: it checks them itself).
                let branch: Vec<&str> = u
                    .branch(&value.name)
                    .and_then(|b| plan.schema.struct_type(&b.ty_name))
                    .map(|s| s.members.iter().map(|m| m.name.as_str()).collect())
                    .unwrap_or_default();
                let names = base_names.iter().chain(&branch);
                let base = proc_macro2::Literal::usize_unsuffixed(base_names.len());
                quote! {
                    #pat => #variant_ty::#tag(crate::__private::decode_branch!(__raw, #base, [#(#names),*])),
                }
            }
            (false, false) => quote!(#pat => #variant_ty::#tag,),
            (false, true) => quote! {
                #pat => {
                    crate::__private::no_branch_members!(__raw, [#(#base_names),*]);
                    #variant_ty::#tag
                }
            },
        }
    });
    let base_ident = ident::ident("Base");
    let disc_member = Member {
        name: p.disc.name.clone(),
        ty: p.disc.ty.clone(),
        optional: false,
        cond: None,
        features: Vec::new(),
        since: None,
        doc: None,
    };
    let mut base_plan: Vec<Field<'_>> = p.fields.clone();
    base_plan.push(Field {
        member: &disc_member,
        ident: disc_ident.clone(),
        optional: p.relaxed,
        boxed: false,
        note: None,
    });
    let base_fields = base_plan.iter().map(|f| {
        let id = &f.ident;
        let ty = plan.field_type(f, M);
        quote!(#id: #ty,)
    });
    // The base pass skips the branch's members; the branch pass below checks them.
    let base_de = serde_impls::deserialize(&base_ident, &base_plan, Unknown::Skip);
    let field_names: Vec<_> = p.fields.iter().map(|f| &f.ident).collect();
    let other_pat = tagged(quote!(#disc_enum::Other(tag)));
    let untagged_arm = p.relaxed.then(
        || quote!(None => #variant_ty::Other(crate::__private::unknown_variant!("", __raw)),),
    );
    Ok(quote! {
        impl<'de> ::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::serde::Deserializer<'de>>(__d: D) -> ::core::result::Result<Self, D::Error> {
                struct Base {
                    #(#base_fields)*
                }
                #base_de
                let __raw = crate::__private::capture!(__d);
                let __base: Base = crate::__private::decode_part!(__raw);
                let #disc_ident = match __base.#disc_ident {
                    #(#decode_arms)*
                    #other_pat => #variant_ty::Other(crate::__private::unknown_variant!(tag.as_str(), __raw)),
                    #untagged_arm
                };
                Ok(#name { #(#field_names: __base.#field_names,)* #disc_ident })
            }
        }
    })
}

fn alternate_type(
    plan: &Plan<'_>,
    opts: &Options,
    a: &Alternate,
) -> Result<TokenStream, EmitError> {
    let name = plan.type_ident(&a.name);
    let def = Definition::Alternate(a.clone());
    let mut d = type_docs(plan, opts, "alternate", &def);
    d.para("No tag on the wire: the branch is chosen by the JSON type of the value.");
    let docs = d.tokens();
    let alias = {
        let wire = alias(&a.name, &name.to_string());
        let old = plan.old_name_aliases(&a.name);
        quote!(#wire #old)
    };
    let dep = deprecated(&a.features);
    let mut seen = std::collections::BTreeMap::new();
    let mut decls = Vec::new();
    let mut ser_arms = Vec::new();
    let mut de_arms = Vec::new();
    let mut expected = Vec::new();
    for b in &a.branches {
        let vname = ident::variant_name(&b.name);
        if let Some(prev) = seen.insert(vname.clone(), b.name.clone()) {
            return Err(EmitError::Clash {
                scope: format!("the branches of alternate {}", a.name),
                rust: vname,
                first: prev,
                second: b.name.clone(),
            });
        }
        let v = ident::ident(&vname);
        let json = plan.schema.json_type(&b.ty).ok_or_else(|| {
            EmitError::Model(format!(
                "alternate {}: branch {} has no JSON type",
                a.name, b.name
            ))
        })?;
        let (kind, what) = match json {
            JsonType::String => (quote!(String), "a string"),
            JsonType::Number => (quote!(Number), "a number"),
            JsonType::Boolean => (quote!(Bool), "a boolean"),
            JsonType::Null => (quote!(Null), "null"),
            JsonType::Object => (quote!(Object), "an object"),
            JsonType::Array => (quote!(Array), "an array"),
        };
        expected.push(what);
        let mut bd = Docs::new();
        bd.para(format!("`{}`: `{}`", b.name, b.ty));
        if let Some(c) = &b.cond {
            bd.para(format!("Only in QEMU builds with `{c}`."));
        }
        let bdocs = bd.tokens();
        if json == JsonType::Null {
            decls.push(quote!(#bdocs #v,));
            ser_arms.push(quote!(Self::#v => s.serialize_unit(),));
            de_arms.push(quote!(crate::__private::JsonKind::Null => Ok(Self::#v),));
        } else {
            let mut ty = plan.rust_type(&b.ty, M);
            if plan.is_boxed(&a.name, &branch_key(&b.name)) {
                let bx = plan.std("Box", M);
                ty = quote!(#bx<#ty>);
            }
            decls.push(quote!(#bdocs #v(#ty),));
            ser_arms.push(quote!(Self::#v(v) => ::serde::Serialize::serialize(v, s),));
            de_arms.push(quote!(crate::__private::JsonKind::#kind => Ok(Self::#v(crate::__private::decode_part!(__raw))),));
        }
    }
    let expected = expected.join(" or ");
    let alt_name = &a.name;
    let gate = decode_gate(plan, opts, &a.name);
    let conversions = plan
        .sent_to_qemu(&a.name)
        .then(|| conversions::alternate_conversions(plan, a, &name));
    Ok(quote! {
        #conversions

        #docs
        #alias
        #dep
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum #name { #(#decls)* }

        impl ::serde::Serialize for #name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::core::result::Result<S::Ok, S::Error> {
                match self { #(#ser_arms)* }
            }
        }

        #gate
        impl<'de> ::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::serde::Deserializer<'de>>(__d: D) -> ::core::result::Result<Self, D::Error> {
                let __raw = crate::__private::capture!(__d);
                match crate::__private::json_kind(&__raw) {
                    #(#de_arms)*
                    other => Err(crate::__private::alternate_mismatch(#alt_name, other, #expected)),
                }
            }
        }
    })
}
