//! Struct fields, shared by every emitter that writes a struct (types, command arguments,
//! event data): their declarations with docs, the derives they allow, and the constructor
//! parameters for the required ones.

use proc_macro2::TokenStream;
use quote::quote;

use super::docs::{alias, deprecated, with_reference, Docs};
use super::plan::{Field, Module, Plan};
use super::Options;

/// Field declarations with their docs; `owner_url` is the reference entry of the type (or
/// command, or event) the fields belong to.
pub(crate) fn field_decls(
    plan: &Plan<'_>,
    opts: &Options,
    fields: &[Field<'_>],
    module: Module,
    owner: (&str, Option<&str>),
) -> TokenStream {
    let decls = fields.iter().map(|f| {
        let m = f.member;
        let mut d = Docs::new();
        d.para(with_reference(
            format!(
                "`{}`{}",
                m.name,
                if m.optional { " (optional)" } else { "" }
            ),
            owner.0,
            owner.1,
        ));
        if opts.prose {
            d.prose(m.doc.as_deref());
        }
        d.facts(m.since.as_deref(), &m.features, m.cond.as_ref());
        if f.optional && !m.optional {
            d.para("Required in the schema, but a QEMU build or version may leave it out.");
        }
        if let Some(note) = &f.note {
            d.para(note);
        }
        let docs = d.tokens();
        let dep = deprecated(&m.features);
        let id = &f.ident;
        let alias = alias(&m.name, &id.to_string());
        let ty = plan.field_type(f, module);
        quote! { #docs #alias #dep pub #id: #ty, }
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

/// Parameters for the required fields, and the struct initializers for all fields (optional
/// ones `None`); strings and schema types are taken as `impl Into<..>` (see
/// `conversions::param_type`).
pub(crate) fn params_and_inits(
    plan: &Plan<'_>,
    fields: &[Field<'_>],
    module: Module,
) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let mut params = Vec::new();
    let mut inits = Vec::new();
    for f in fields {
        let id = &f.ident;
        if f.optional {
            inits.push(quote!(#id: None,));
            continue;
        }
        let (ty, conv) = super::conversions::param_type(plan, &f.member.ty, module, id);
        params.push(quote!(#id: #ty));
        if f.boxed {
            let b = plan.std("Box", module);
            inits.push(quote!(#id: #b::new(#conv),));
        } else if *id == conv.to_string() {
            inits.push(quote!(#id,));
        } else {
            inits.push(quote!(#id: #conv,));
        }
    }
    (params, inits)
}
