//! Conveniences that make building a value read like its JSON (issue 11), emitted beside
//! each type by `types`:
//!
//! - chainable setters for optional members (`.node_name("null0")`), inherent `#[inline]`
//!   methods that cost nothing to compile until used;
//! - `From<Branch>` into a union and its `...Variant`, where the branch type belongs to one
//!   branch only (for a legacy simple union, also from the type its `...Wrapper` wraps);
//! - `From` the single member's type into a single-member struct (`...Wrapper`);
//! - `From` each branch type into an alternate (and `From<&str>` for a string branch);
//! - `Display` on a `...Variant` enum: its tag.
//!
//! Parameters take `impl Into<T>` for schema types, so these conversions also apply to
//! constructor and method arguments (`qmp.nbd_server_start(UnixSocketAddress::new(p))`).

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::docs::deprecated;
use super::plan::{branch_key, Field, Module, Plan};
use crate::ident;
use crate::model::{Alternate, Builtin, JsonType, TypeRef, Union};

/// How a setter or constructor takes a value of `ty`: the parameter type and the expression
/// that turns parameter `value` into the field's type (before any `Box`).
///
/// Strings take `impl Into<String>`, schema types `impl Into<T>` (so `From` conversions
/// apply); numbers, booleans and lists take their exact type, so that an integer literal
/// keeps its inferred type.
pub(crate) fn param_type(
    plan: &Plan<'_>,
    ty: &TypeRef,
    module: Module,
    value: &Ident,
) -> (TokenStream, TokenStream) {
    match ty {
        TypeRef::Builtin(Builtin::Str) => {
            let string = plan.std("String", module);
            (quote!(impl Into<#string>), quote!(#value.into()))
        }
        TypeRef::Builtin(Builtin::Any) => (
            quote!(impl Into<::serde_json::Value>),
            quote!(#value.into()),
        ),
        TypeRef::Named(_) => {
            let t = plan.rust_type(ty, module);
            (quote!(impl Into<#t>), quote!(#value.into()))
        }
        _ => (plan.rust_type(ty, module), quote!(#value)),
    }
}

/// Chainable setters for the optional fields of type `name`: `fn member(self, value) -> Self`.
/// Fields named like one of `taken` (the type's other methods) get an `_arg` suffix.
pub(crate) fn setters(
    plan: &Plan<'_>,
    name: &Ident,
    fields: &[Field<'_>],
    taken: &[&str],
    module: Module,
) -> TokenStream {
    let value = ident::ident("value");
    let setters: Vec<TokenStream> = fields
        .iter()
        .filter(|f| f.optional)
        .map(|f| {
            let m = f.member;
            let setter_name = super::plan::setter_name(&m.name, taken);
            let setter = ident::ident(&setter_name);
            let id = &f.ident;
            let (ty, mut conv) = param_type(plan, &m.ty, module, &value);
            if f.boxed {
                let b = plan.std("Box", module);
                conv = quote!(#b::new(#conv));
            }
            let doc = format!(" Sets the optional member `{}`.", m.name);
            let dep = deprecated(&m.features);
            quote! {
                #[doc = #doc]
                #dep
                #[inline]
                pub fn #setter(mut self, #value: #ty) -> Self {
                    self.#id = Some(#conv);
                    self
                }
            }
        })
        .collect();
    if setters.is_empty() {
        return TokenStream::new();
    }
    quote! {
        #[allow(deprecated)]
        impl #name {
            #(#setters)*
        }
    }
}

/// `From<T> for S` for a struct whose only member is required and of a schema type (the
/// `...Wrapper` structs of legacy simple unions, `{"data": ...}`).
pub(crate) fn single_member_from(
    plan: &Plan<'_>,
    name: &Ident,
    fields: &[Field<'_>],
) -> TokenStream {
    let [f] = fields else {
        return TokenStream::new();
    };
    if f.optional || !matches!(f.member.ty, TypeRef::Named(_)) {
        return TokenStream::new();
    }
    let ty = plan.rust_type(&f.member.ty, Module::Types);
    let id = &f.ident;
    let init = if f.boxed {
        let b = plan.std("Box", Module::Types);
        quote!(#b::new(value))
    } else {
        quote!(value)
    };
    quote! {
        #[allow(deprecated)]
        impl ::core::convert::From<#ty> for #name {
            #[inline]
            fn from(value: #ty) -> Self {
                #name { #id: #init }
            }
        }
    }
}

/// The single required member of schema struct `qapi` when it is of a schema type: the type
/// a legacy simple union's `...Wrapper` branch wraps.
fn wrapped_type<'s>(plan: &Plan<'s>, qapi: &str) -> Option<&'s str> {
    let s = plan.schema.struct_type(qapi)?;
    match s.members.as_slice() {
        [m] if !m.optional => match &m.ty {
            TypeRef::Named(n) => Some(n.as_str()),
            _ => None,
        },
        _ => None,
    }
}

/// For a union: `Display` on its `...Variant` (the tag); `From<Branch>` into the variant
/// enum, and into the union when its base members are all optional (then also
/// `From<...Variant>` and a constructor per tag, `BlockdevOptions::null_co(branch)`); the
/// same `From` from the type a single-member branch wraps (`...Wrapper`).
///
/// A branch type shared by several branches (`BlockdevOptionsGenericFormat`) gets no `From`:
/// which branch it means would be a guess.
pub(crate) fn union_conversions(
    plan: &Plan<'_>,
    u: &Union,
    name: &Ident,
    variant_ty: &Ident,
    base_all_optional: bool,
    tags: &[(Ident, &str)],
    taken: &[&str],
) -> TokenStream {
    let m = Module::Types;
    let mut out = variant_display(variant_ty);
    if base_all_optional {
        out.extend(quote! {
            #[allow(deprecated)]
            impl ::core::convert::From<#variant_ty> for #name {
                #[inline]
                fn from(value: #variant_ty) -> Self {
                    #name::new(value)
                }
            }
        });
    }
    let count = |ty: &str, of: &dyn Fn(&str) -> Option<String>| {
        u.branches
            .iter()
            .filter(|b| of(&b.ty_name).as_deref() == Some(ty))
            .count()
    };
    let direct = |t: &str| Some(t.to_string());
    let mut tag_ctors = Vec::new();
    let mut seen_ctors = std::collections::HashSet::new();
    let wrapped = |t: &str| wrapped_type(plan, t).map(str::to_string);
    for (tag, value) in tags {
        let boxed = plan.is_boxed(&u.name, &branch_key(value));
        let b = plan.std("Box", m);
        let wrap = |e: TokenStream| if boxed { quote!(#b::new(#e)) } else { e };
        let ctor_name = ident::field_name(value);
        let ctor_free = base_all_optional
            && ctor_name != "new"
            && seen_ctors.insert(ctor_name.clone())
            && !taken.iter().any(|t| ident::field_name(t) == ctor_name);
        if ctor_free {
            let ctor = ident::ident(&ctor_name);
            let doc = format!(" A `{value}` value (other members `None`).");
            tag_ctors.push(match u.branch(value) {
                Some(branch) => {
                    let ty = plan.type_path(&branch.ty_name, m);
                    let build = wrap(quote!(branch.into()));
                    quote! {
                        #[doc = #doc]
                        #[inline]
                        pub fn #ctor(branch: impl Into<#ty>) -> Self {
                            #name::new(#variant_ty::#tag(#build))
                        }
                    }
                }
                None => quote! {
                    #[doc = #doc]
                    #[inline]
                    pub fn #ctor() -> Self {
                        #name::new(#variant_ty::#tag)
                    }
                },
            });
        }
        let Some(branch) = u.branch(value) else {
            continue;
        };
        // Sources: the branch type itself, and for a legacy simple union its wrapped type.
        let mut sources: Vec<(TokenStream, TokenStream)> = Vec::new();
        if count(&branch.ty_name, &direct) == 1 {
            let ty = plan.type_path(&branch.ty_name, m);
            sources.push((ty, wrap(quote!(value))));
        }
        if let Some(inner) = wrapped_type(plan, &branch.ty_name) {
            let unique =
                count(inner, &wrapped) == 1 && !u.branches.iter().any(|b| b.ty_name == inner);
            if unique {
                let ty = plan.type_path(inner, m);
                let wrapper = plan.type_path(&branch.ty_name, m);
                sources.push((ty, wrap(quote!(#wrapper::from(value)))));
            }
        }
        for (ty, build) in sources {
            out.extend(quote! {
                #[allow(deprecated)]
                impl ::core::convert::From<#ty> for #variant_ty {
                    #[inline]
                    fn from(value: #ty) -> Self {
                        #variant_ty::#tag(#build)
                    }
                }
            });
            if base_all_optional {
                out.extend(quote! {
                    #[allow(deprecated)]
                    impl ::core::convert::From<#ty> for #name {
                        #[inline]
                        fn from(value: #ty) -> Self {
                            #name::new(#variant_ty::from(value))
                        }
                    }
                });
            }
        }
    }
    if !tag_ctors.is_empty() {
        out.extend(quote! {
            #[allow(deprecated)]
            impl #name {
                #(#tag_ctors)*
            }
        });
    }
    out
}

/// `Display` on a union's `...Variant` enum: its tag, as sent on the wire.
pub(crate) fn variant_display(variant_ty: &Ident) -> TokenStream {
    quote! {
        impl ::core::fmt::Display for #variant_ty {
            /// The tag (the discriminator's wire value), e.g. `null-co`.
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Display::fmt(&self.tag(), f)
            }
        }
    }
}

/// `From` each branch's type into an alternate, where no other branch has the same Rust
/// type; a string branch also converts from `&str`.
pub(crate) fn alternate_conversions(plan: &Plan<'_>, a: &Alternate, name: &Ident) -> TokenStream {
    let m = Module::Types;
    let mut out = TokenStream::new();
    for b in &a.branches {
        if plan.schema.json_type(&b.ty) == Some(JsonType::Null) {
            continue;
        }
        let same = a.branches.iter().filter(|o| o.ty == b.ty).count();
        if same != 1 {
            continue;
        }
        let v = ident::ident(&ident::variant_name(&b.name));
        let ty = plan.rust_type(&b.ty, m);
        let boxed = plan.is_boxed(&a.name, &branch_key(&b.name));
        let bx = plan.std("Box", m);
        let wrap = |e: TokenStream| if boxed { quote!(#bx::new(#e)) } else { e };
        let build = wrap(quote!(value));
        out.extend(quote! {
            #[allow(deprecated)]
            impl ::core::convert::From<#ty> for #name {
                #[inline]
                fn from(value: #ty) -> Self {
                    #name::#v(#build)
                }
            }
        });
        if b.ty == TypeRef::Builtin(Builtin::Str) {
            let build = wrap(quote!(value.into()));
            out.extend(quote! {
                impl ::core::convert::From<&str> for #name {
                    #[inline]
                    fn from(value: &str) -> Self {
                        #name::#v(#build)
                    }
                }
            });
        }
    }
    out
}

/// Whether every field is an `Option`.
pub(crate) fn all_optional(fields: &[Field<'_>]) -> bool {
    fields.iter().all(|f| f.optional)
}

/// The name of the constructor for `fields` (required ones, in order, plus a union's branch)
/// of a type users build (`built`): `new`, unless two or more required members are strings,
/// which are easy to swap by accident. Then the name lists those members in order
/// (`with_id_and_node_name(id, node_name, ..)`), so a call site shows which string goes where.
/// Types only QEMU sends keep `new`.
pub(crate) fn constructor_name(fields: &[Field<'_>], built: bool) -> String {
    let strings: Vec<String> = fields
        .iter()
        .filter(|f| !f.optional && f.member.ty == TypeRef::Builtin(Builtin::Str))
        .map(|f| f.ident.to_string().trim_start_matches("r#").to_string())
        .collect();
    if !built || strings.len() < 2 {
        return "new".into();
    }
    format!("with_{}", strings.join("_and_"))
}
