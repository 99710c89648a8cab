//! The `types` module: one Rust type per schema type.
//!
//! - enum → `enum` with one variant per value plus `Other(String)` for values a newer QEMU
//!   may send; its wire form comes from the runtime's `__qapi_enum!` macro.
//! - struct → `struct` with every member (base members included), serde derives.
//! - union → `struct` with the base members and one field, named after the discriminator,
//!   holding a `<Union>Variant` enum with the branch's members; hand-written serde impls
//!   (the discriminator may come after the branch members on the wire).
//! - alternate → `enum` decoded by the JSON type of the value.

use proc_macro2::TokenStream;
use quote::quote;

use super::docs::{deprecated, Docs};
use super::plan::{branch_key, Field, Module, Plan};
use super::serde_impls;
use super::{EmitError, Item, Options};
use crate::ident;
use crate::model::{Alternate, Builtin, Definition, Enum, EnumValue, JsonType, Struct, Union};

const M: Module = Module::Types;

pub(crate) fn emit(plan: &Plan<'_>, opts: &Options) -> Result<Vec<Item>, EmitError> {
    let mut items = Vec::new();
    items.push(Item::new("QType", qtype(plan)));
    for def in &plan.schema.definitions {
        let tokens = match def {
            Definition::Enum(e) => enum_type(plan, opts, e)?,
            Definition::Struct(s) => struct_type(plan, opts, s)?,
            Definition::Union(u) => union_type(plan, opts, u)?,
            Definition::Alternate(a) => alternate_type(plan, opts, a)?,
            Definition::Command(_) | Definition::Event(_) => continue,
        };
        items.push(Item::new(def.name(), tokens));
    }
    Ok(items)
}

/// The item docs shared by every kind: prose, then a line naming the QMP type, then facts.
fn type_docs(opts: &Options, kind: &str, name: &str, def: &Definition) -> Docs {
    let mut d = Docs::new();
    if opts.prose {
        d.prose(def.doc().map(|d| d.body.as_str()));
    }
    d.para(format!("QMP {kind} `{name}`."));
    d.facts(def.since(), def.features(), def.cond());
    d
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
        plan,
        quote!(#[doc = " QEMU's built-in `QType` enum: the type of a JSON value inside QEMU."]),
        &name,
        &variants,
        &docs,
        &values,
    )
}

/// An enum with its `Other(String)` catch-all, its wire mapping (`as_str`, `from_wire`,
/// `VALUES`), and the trait impls from the runtime macro.
fn enum_tokens(
    plan: &Plan<'_>,
    head: TokenStream,
    name: &proc_macro2::Ident,
    variants: &[proc_macro2::Ident],
    docs: &[TokenStream],
    wires: &[&str],
) -> TokenStream {
    let string = plan.std("String", M);
    quote! {
        #head
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum #name {
            #( #docs #variants, )*
            /// A value this schema does not know (sent by a newer QEMU).
            Other(#string),
        }

        #[allow(deprecated)]
        impl #name {
            /// Every value this schema knows, as sent on the wire, in schema order.
            pub const VALUES: &'static [&'static str] = &[#(#wires),*];

            /// The value as sent on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    #( Self::#variants => #wires, )*
                    Self::Other(other) => other,
                }
            }

            /// The value for a wire name; names this schema does not know become `Other`.
            pub fn from_wire(name: &str) -> Self {
                match name {
                    #( #wires => Self::#variants, )*
                    other => Self::Other(other.into()),
                }
            }
        }

        crate::__qapi_enum_impls!(#name);
    }
}

fn value_docs(opts: &Options, v: &EnumValue) -> TokenStream {
    let mut d = Docs::new();
    d.para(format!("`{}`", v.name));
    if opts.prose {
        d.prose(v.doc.as_deref());
    }
    d.facts(v.since.as_deref(), &v.features, v.cond.as_ref());
    let dep = deprecated(&v.features);
    let docs = d.tokens();
    quote!(#docs #dep)
}

/// Variant names for an enum's values, with the catch-all rule: a value that would be called
/// `Other` is called `OtherValue`, so `Other(String)` always means "unknown".
fn value_variants(e: &Enum) -> Result<Vec<proc_macro2::Ident>, EmitError> {
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
    let docs = type_docs(opts, "enum", &e.name, &Definition::Enum(e.clone())).tokens();
    let dep = deprecated(&e.features);
    let variants = value_variants(e)?;
    let vdocs: Vec<TokenStream> = e.values.iter().map(|v| value_docs(opts, v)).collect();
    let wires: Vec<&str> = e.values.iter().map(|v| v.name.as_str()).collect();
    Ok(enum_tokens(
        plan,
        quote!(#docs #dep),
        &name,
        &variants,
        &vdocs,
        &wires,
    ))
}

/// Field declarations with their docs.
pub(crate) fn field_decls(
    plan: &Plan<'_>,
    opts: &Options,
    fields: &[Field<'_>],
    module: Module,
) -> TokenStream {
    let decls = fields.iter().map(|f| {
        let m = f.member;
        let mut d = Docs::new();
        d.para(format!(
            "`{}`{}",
            m.name,
            if m.optional { " (optional)" } else { "" }
        ));
        if opts.prose {
            d.prose(m.doc.as_deref());
        }
        d.facts(m.since.as_deref(), &m.features, m.cond.as_ref());
        if f.optional && !m.optional {
            d.para("Required in the schema, but a QEMU build or version may leave it out.");
        }
        let docs = d.tokens();
        let dep = deprecated(&m.features);
        let id = &f.ident;
        let ty = plan.field_type(f, module);
        quote! { #docs #dep pub #id: #ty, }
    });
    quote!(#(#decls)*)
}

/// Derives for a struct of `fields`: `Default` too when every field is optional.
pub(crate) fn struct_derives(fields: &[Field<'_>]) -> TokenStream {
    if fields.iter().all(|f| f.optional) {
        quote!(#[derive(Debug, Clone, PartialEq, Default)])
    } else {
        quote!(#[derive(Debug, Clone, PartialEq)])
    }
}

fn struct_type(plan: &Plan<'_>, opts: &Options, s: &Struct) -> Result<TokenStream, EmitError> {
    let name = plan.type_ident(&s.name);
    let def = Definition::Struct(s.clone());
    let mut d = type_docs(opts, "struct", &s.name, &def);
    if let Some(base) = &s.base {
        d.para(format!(
            "Includes the members of [`{}`].",
            plan.type_ident(base)
        ));
    }
    let docs = d.tokens();
    let dep = deprecated(&s.features);
    let fields = plan.fields(
        &s.name,
        s.since.as_deref(),
        &s.members,
        plan.sent_by_qemu(&s.name),
    )?;
    let decls = field_decls(plan, opts, &fields, M);
    let derives = struct_derives(&fields);
    let ctor = constructor(plan, &name, &fields, None);
    let ser = serde_impls::serialize(&name, &fields, None);
    let de = serde_impls::deserialize(&name, &fields);
    Ok(quote! {
        #docs
        #dep
        #derives
        pub struct #name { #decls }

        #ctor
        #ser
        #de
    })
}

/// `new(required...)` for a struct (or union, with its branch last) that has required fields:
/// optional ones start as `None`. Structs whose fields are all optional derive `Default`
/// instead.
fn constructor(
    plan: &Plan<'_>,
    name: &proc_macro2::Ident,
    fields: &[Field<'_>],
    variant: Option<(&proc_macro2::Ident, &proc_macro2::Ident)>,
) -> TokenStream {
    if variant.is_none() && fields.iter().all(|f| f.optional) {
        return TokenStream::new();
    }
    let (mut params, mut inits) = super::commands::params_and_inits(plan, fields, M);
    if let Some((field, ty)) = variant {
        params.push(quote!(#field: #ty));
        inits.push(quote!(#field,));
    }
    let many = (params.len() > 7).then(|| quote!(#[allow(clippy::too_many_arguments)]));
    quote! {
        #[allow(deprecated)]
        impl #name {
            /// A value with the given required members; optional members start as `None`.
            #many
            pub fn new(#(#params),*) -> Self {
                #name { #(#inits)* }
            }
        }
    }
}

fn union_type(plan: &Plan<'_>, opts: &Options, u: &Union) -> Result<TokenStream, EmitError> {
    let name = plan.type_ident(&u.name);
    let variant_ty = plan.variant_type_ident(&u.name);
    let def = Definition::Union(u.clone());
    let mut d = type_docs(opts, "union", &u.name, &def);
    d.para(format!(
        "The members of the branch selected by `{}` are in the [`{variant_ty}`] field.",
        u.discriminator
    ));
    let docs = d.tokens();
    let dep = deprecated(&u.features);

    let base: Vec<_> = u
        .base_members
        .iter()
        .filter(|m| m.name != u.discriminator)
        .cloned()
        .collect();
    let sent = plan.sent_by_qemu(&u.name);
    let fields = plan.fields(&u.name, u.since.as_deref(), &base, sent)?;
    let decls = field_decls(plan, opts, &fields, M);
    let disc = u
        .base_members
        .iter()
        .find(|m| m.name == u.discriminator)
        .ok_or_else(|| EmitError::Model(format!("union {} has no discriminator member", u.name)))?;
    // QEMU has turned structs into unions (9.1 made `SevInfo` a union on a new `sev-type`
    // member, without saying so in the schema), so an older QEMU's reply may lack the
    // discriminator: such a value decodes as an untagged `Other` keeping every member.
    let disc_relaxed = sent;
    let tagged = |pat: TokenStream| {
        if disc_relaxed {
            quote!(Some(#pat))
        } else {
            pat
        }
    };
    let disc_ident = ident::ident(&ident::field_name(&disc.name));
    if fields.iter().any(|f| f.ident == disc_ident) {
        return Err(EmitError::Clash {
            scope: format!("the fields of {}", u.name),
            rust: disc_ident.to_string(),
            first: disc.name.clone(),
            second: "a base member".into(),
        });
    }
    let disc_wire = &disc.name;
    let disc_enum = plan.type_ident(&u.discriminator_enum);
    let enum_def = plan
        .schema
        .enum_type(&u.discriminator_enum)
        .ok_or_else(|| EmitError::Model(format!("union {}: discriminator enum missing", u.name)))?;
    let tags = value_variants(enum_def)?;

    // The branch enum: one variant per discriminator value, carrying the branch (if any).
    let mut variant_decls = Vec::new();
    let mut tag_arms = Vec::new();
    let mut put_arms = Vec::new();
    let mut decode_arms = Vec::new();
    for (value, tag) in enum_def.values.iter().zip(&tags) {
        let vdocs = value_docs(opts, value);
        match u.branch(&value.name) {
            Some(branch) => {
                let mut ty = plan.type_path(&branch.ty_name, M);
                let boxed = plan.is_boxed(&u.name, &branch_key(&value.name));
                if boxed {
                    let b = plan.std("Box", M);
                    ty = quote!(#b<#ty>);
                }
                variant_decls.push(quote!(#vdocs #tag(#ty),));
                tag_arms.push(quote!(Self::#tag(_) => #disc_enum::#tag,));
                put_arms.push(quote!(Self::#tag(v) => out.extend(v),));
                let pat = tagged(quote!(#disc_enum::#tag));
                decode_arms.push(quote!(#pat => #variant_ty::#tag(crate::__private::decode_part::<_, D::Error>(&__raw)?),));
            }
            None => {
                variant_decls.push(quote!(#vdocs #tag,));
                tag_arms.push(quote!(Self::#tag => #disc_enum::#tag,));
                put_arms.push(quote!(Self::#tag => {}));
                let pat = tagged(quote!(#disc_enum::#tag));
                decode_arms.push(quote!(#pat => #variant_ty::#tag,));
            }
        }
    }
    let variant_doc = format!(
        " The branch of [`{name}`] selected by `{}`, with the branch's members.",
        u.discriminator
    );

    // Decoding: the base (with the discriminator) from a first pass, the branch from a second.
    // The base is a private struct whose fields are the base members plus the discriminator.
    let base_ident = ident::ident("Base");
    let disc_member = crate::model::Member {
        name: disc.name.clone(),
        ty: disc.ty.clone(),
        optional: false,
        cond: None,
        features: Vec::new(),
        since: None,
        doc: None,
    };
    let mut base_plan: Vec<Field<'_>> = fields.clone();
    base_plan.push(Field {
        member: &disc_member,
        ident: disc_ident.clone(),
        optional: disc_relaxed,
        boxed: false,
    });
    let base_fields = base_plan.iter().map(|f| {
        let id = &f.ident;
        let ty = plan.field_type(f, M);
        quote!(#id: #ty,)
    });
    let base_de = serde_impls::deserialize(&base_ident, &base_plan);
    let field_names: Vec<_> = fields.iter().map(|f| &f.ident).collect();
    let puts = fields.iter().map(|f| {
        let id = &f.ident;
        let wire = &f.member.name;
        if f.optional {
            quote!(__out.put_opt(#wire, &self.#id);)
        } else {
            quote!(__out.put(#wire, &self.#id);)
        }
    });
    let ctor = constructor(plan, &name, &fields, Some((&disc_ident, &variant_ty)));
    let other_pat = tagged(quote!(#disc_enum::Other(tag)));
    let (untagged_arm, put_tag) = if disc_relaxed {
        (
            quote!(None => #variant_ty::Other(crate::__private::unknown_variant::<D::Error>(::std::string::String::new(), &__raw)?),),
            quote! {
                // An untagged value (from a QEMU older than the discriminator) stays untagged.
                match &self.#disc_ident {
                    #variant_ty::Other(v) if v.tag.is_empty() => {}
                    branch => __out.put(#disc_wire, &branch.tag()),
                }
            },
        )
    } else {
        (
            TokenStream::new(),
            quote!(__out.put(#disc_wire, &self.#disc_ident.tag());),
        )
    };
    Ok(quote! {
        #docs
        #dep
        #[derive(Debug, Clone, PartialEq)]
        pub struct #name {
            #decls
            #[doc = #variant_doc]
            pub #disc_ident: #variant_ty,
        }

        #[doc = #variant_doc]
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum #variant_ty {
            #(#variant_decls)*
            /// A branch this schema does not know (sent by a newer QEMU), with all its members.
            Other(crate::UnknownVariant),
        }

        impl #variant_ty {
            /// The discriminator value of this branch.
            pub fn tag(&self) -> #disc_enum {
                match self {
                    #(#tag_arms)*
                    Self::Other(v) => #disc_enum::from_wire(&v.tag),
                }
            }

            fn put_members(&self, out: &mut crate::__private::FlatObject) {
                match self {
                    #(#put_arms)*
                    Self::Other(v) => out.extend_unknown(v),
                }
            }
        }

        #ctor

        impl ::serde::Serialize for #name {
            fn serialize<S: ::serde::Serializer>(&self, __s: S) -> ::core::result::Result<S::Ok, S::Error> {
                let mut __out = crate::__private::FlatObject::new();
                #(#puts)*
                #put_tag
                self.#disc_ident.put_members(&mut __out);
                __out.serialize(__s)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::serde::Deserializer<'de>>(__d: D) -> ::core::result::Result<Self, D::Error> {
                struct Base {
                    #(#base_fields)*
                }
                #base_de
                let __raw = crate::__private::capture(__d)?;
                let __base: Base = crate::__private::decode_part::<_, D::Error>(&__raw)?;
                let #disc_ident = match __base.#disc_ident {
                    #(#decode_arms)*
                    #other_pat => #variant_ty::Other(crate::__private::unknown_variant::<D::Error>(tag, &__raw)?),
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
    let mut d = type_docs(opts, "alternate", &a.name, &def);
    d.para("No tag on the wire: the branch is chosen by the JSON type of the value.");
    let docs = d.tokens();
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
        let kind = match json {
            JsonType::String => quote!(String),
            JsonType::Number => quote!(Number),
            JsonType::Boolean => quote!(Bool),
            JsonType::Null => quote!(Null),
            JsonType::Object => quote!(Object),
            JsonType::Array => quote!(Array),
        };
        expected.push(match json {
            JsonType::Object => "an object",
            JsonType::Array => "an array",
            JsonType::String => "a string",
            JsonType::Number => "a number",
            JsonType::Boolean => "a boolean",
            JsonType::Null => "null",
        });
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
            de_arms.push(quote!(crate::__private::JsonKind::#kind => Ok(Self::#v(crate::__private::decode_part::<_, D::Error>(&__raw)?)),));
        }
    }
    let expected = expected.join(" or ");
    let alt_name = &a.name;
    Ok(quote! {
        #docs
        #dep
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum #name { #(#decls)* }

        impl ::serde::Serialize for #name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::core::result::Result<S::Ok, S::Error> {
                match self { #(#ser_arms)* }
            }
        }

        impl<'de> ::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::serde::Deserializer<'de>>(__d: D) -> ::core::result::Result<Self, D::Error> {
                let __raw = crate::__private::capture(__d)?;
                match crate::__private::json_kind(&__raw) {
                    #(#de_arms)*
                    other => Err(crate::__private::alternate_mismatch(#alt_name, other, #expected)),
                }
            }
        }
    })
}
