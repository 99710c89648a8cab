//! The `commands` module: per command, a type holding its arguments that implements the
//! runtime's `Command` trait, a method on the typed client that builds it from the required
//! arguments, and setters on `Call` for the optional ones.

use proc_macro2::TokenStream;
use quote::quote;

use super::docs::{deprecated, Docs};
use super::plan::{Field, Module, Plan, CALL_METHODS};
use super::serde_impls;
use super::types::field_decls;
use super::{EmitError, Item, Options};
use crate::ident;
use crate::model::{Arguments, Builtin, Command, TypeRef};

const M: Module = Module::Other;

pub(crate) fn emit(plan: &Plan<'_>, opts: &Options) -> Result<Vec<Item>, EmitError> {
    plan.schema
        .commands()
        .map(|c| command(plan, opts, c).map(|t| Item::new(&c.name, t)))
        .collect()
}

/// How the command value holds its arguments.
enum Shape<'m> {
    /// No arguments: a unit struct (serializes to nothing on the wire).
    Unit,
    /// Inline members: a struct with one field each.
    Fields(Vec<Field<'m>>),
    /// A named type: a transparent newtype around it. `fields` are the type's fields when it is
    /// a struct passed unboxed (its required members become method parameters).
    Newtype {
        ty: String,
        fields: Option<Vec<Field<'m>>>,
    },
}

fn is_string(ty: &TypeRef) -> bool {
    matches!(ty, TypeRef::Builtin(Builtin::Str))
}

fn command(plan: &Plan<'_>, opts: &Options, c: &Command) -> Result<TokenStream, EmitError> {
    let schema = plan.schema;
    let ty = ident::ident(&ident::variant_name(&c.name));
    let method = plan.method_ident(&c.name);
    let wire = &c.name;
    let dep = deprecated(&c.features);
    let shape = match &c.arguments {
        Arguments::None => Shape::Unit,
        Arguments::Members(ms) => {
            Shape::Fields(plan.fields(&c.name, c.since.as_deref(), ms, false)?)
        }
        Arguments::Type(t) => {
            let fields = match schema.struct_type(t) {
                Some(s) if !c.boxed => {
                    Some(plan.fields(t, s.since.as_deref(), &s.members, plan.sent_by_qemu(t))?)
                }
                _ => None,
            };
            Shape::Newtype {
                ty: t.clone(),
                fields,
            }
        }
    };
    let extra = !c.gen && matches!(shape, Shape::Fields(_));

    // The command value.
    let mut d = Docs::new();
    d.para(format!(
        "Arguments of the QMP command `{wire}`; run it with [`Qmp::{method}`](crate::Qmp::{method}) or [`Qmp::execute`](crate::Qmp::execute)."
    ));
    d.facts(c.since.as_deref(), &c.features, c.cond.as_ref());
    let struct_docs = d.tokens();
    let value = match &shape {
        Shape::Unit => quote! {
            #struct_docs
            #dep
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
            pub struct #ty;

            impl ::serde::Serialize for #ty {
                fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::core::result::Result<S::Ok, S::Error> {
                    s.serialize_unit()
                }
            }
        },
        Shape::Fields(fields) => {
            let decls = field_decls(plan, opts, fields, M);
            let extra_ident = ident::ident("extra");
            let extra_decl = extra.then(|| {
                quote! {
                    /// Arguments the schema does not list (this command accepts more, e.g.
                    /// device properties); set them with `Call::arg`.
                    pub extra: ::serde_json::Map<String, ::serde_json::Value>,
                }
            });
            let derives = super::types::struct_derives(fields);
            let ser = serde_impls::serialize(&ty, fields, extra.then_some(&extra_ident));
            quote! {
                #struct_docs
                #dep
                #derives
                pub struct #ty { #decls #extra_decl }

                #ser
            }
        }
        Shape::Newtype { ty: inner, .. } => {
            let inner = plan.type_path(inner, M);
            quote! {
                #struct_docs
                #dep
                #[derive(Debug, Clone, PartialEq)]
                pub struct #ty(pub #inner);

                impl ::serde::Serialize for #ty {
                    fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::core::result::Result<S::Ok, S::Error> {
                        ::serde::Serialize::serialize(&self.0, s)
                    }
                }
            }
        }
    };

    // The Command impl.
    let (output, decode) = match &c.returns {
        None => (quote!(()), quote!(Ok(()))),
        Some(r) => (
            plan.rust_type(r, M),
            quote!(crate::__private::decode_return(Self::NAME, raw)),
        ),
    };
    let raw_arg = if c.returns.is_none() {
        quote!(_raw)
    } else {
        quote!(raw)
    };
    let oob = c.allow_oob.then(|| {
        quote!(
            const ALLOW_OOB: bool = true;
        )
    });
    let no_reply = (!c.success_response).then(|| {
        quote!(
            const SUCCESS_REPLY: bool = false;
        )
    });
    let command_impl = quote! {
        impl crate::Command for #ty {
            const NAME: &'static str = #wire;
            #oob
            #no_reply
            type Output = #output;
            #[inline]
            fn decode(#raw_arg: &str) -> ::core::result::Result<Self::Output, crate::DecodeError> {
                #decode
            }
        }
    };

    // The client method: required arguments as parameters.
    let mut md = Docs::new();
    if opts.prose {
        md.prose(c.doc.as_ref().map(|d| d.body.as_str()));
    }
    let returns = match &c.returns {
        None => "nothing".to_string(),
        Some(r) => format!("`{r}`"),
    };
    md.para(format!("Runs the QMP command `{wire}`; returns {returns}."));
    if !c.success_response {
        md.para("QEMU sends no reply when this command succeeds: the call completes once the command is sent.");
    }
    md.facts(c.since.as_deref(), &c.features, c.cond.as_ref());
    let (params, build, setters_for) = match &shape {
        Shape::Unit => (Vec::new(), quote!(#ty), None),
        Shape::Fields(fields) => {
            let (params, inits) = params_and_inits(plan, fields, M);
            let extra_init = extra.then(|| quote!(extra: ::serde_json::Map::new(),));
            (
                params,
                quote!(#ty { #(#inits)* #extra_init }),
                Some((fields, quote!(self.command))),
            )
        }
        Shape::Newtype {
            ty: inner,
            fields: Some(fields),
        } => {
            let (params, inits) = params_and_inits(plan, fields, M);
            let path = plan.type_path(inner, M);
            (
                params,
                quote!(#ty(#path { #(#inits)* })),
                Some((fields, quote!(self.command.0))),
            )
        }
        Shape::Newtype {
            ty: inner,
            fields: None,
        } => {
            let path = plan.type_path(inner, M);
            (vec![quote!(arguments: #path)], quote!(#ty(arguments)), None)
        }
    };
    if let Some((fields, _)) = &setters_for {
        for f in fields.iter().filter(|f| !f.optional) {
            param_doc(&mut md, opts, f);
        }
        let optional: Vec<_> = fields
            .iter()
            .filter(|f| f.optional)
            .map(|f| format!("`{}`", setter_name(f)))
            .collect();
        if !optional.is_empty() {
            md.para(format!(
                "Optional arguments, set on the returned [`Call`](crate::Call): {}.",
                optional.join(", ")
            ));
        }
    }
    let method_docs = md.tokens();
    // Clippy's limit is 7 parameters besides self; the schema decides how many there are.
    let many = (params.len() > 6).then(|| quote!(#[allow(clippy::too_many_arguments)]));
    let method_impl = quote! {
        impl crate::Qmp {
            #method_docs
            #dep
            #many
            pub fn #method(&self #(, #params)*) -> crate::Call<'_, #ty> {
                crate::Call::new(self, #build)
            }
        }
    };

    // Setters for optional arguments.
    let setters = match setters_for {
        None => TokenStream::new(),
        Some((fields, target)) => {
            let mut taken: Vec<String> = fields
                .iter()
                .filter(|f| !f.optional)
                .map(|f| f.ident.to_string())
                .collect();
            let list: Vec<TokenStream> = fields
                .iter()
                .filter(|f| f.optional)
                .map(|f| {
                    let name = setter_name(f);
                    taken.push(name.clone());
                    let setter = ident::ident(&name);
                    let id = &f.ident;
                    let m = f.member;
                    let mut sd = Docs::new();
                    sd.para(format!("Sets the optional argument `{}`.", m.name));
                    if opts.prose {
                        sd.prose(m.doc.as_deref());
                    }
                    sd.facts(m.since.as_deref(), &m.features, m.cond.as_ref());
                    let docs = sd.tokens();
                    let dep = deprecated(&m.features);
                    let inner = plan.rust_type(&m.ty, M);
                    let (arg_ty, conv) = if is_string(&m.ty) {
                        (quote!(impl Into<String>), quote!(value.into()))
                    } else {
                        (inner, quote!(value))
                    };
                    let conv = if f.boxed {
                        quote!(Box::new(#conv))
                    } else {
                        conv
                    };
                    quote! {
                        #docs
                        #dep
                        pub fn #setter(mut self, value: #arg_ty) -> Self {
                            #target.#id = Some(#conv);
                            self
                        }
                    }
                })
                .collect();
            let arg = (extra && !taken.iter().any(|t| t == "arg")).then(|| {
                quote! {
                    /// Sets an argument the schema does not list (for example a device property
                    /// of `device_add`). It replaces a listed argument of the same name.
                    pub fn arg(mut self, name: impl Into<String>, value: impl Into<::serde_json::Value>) -> Self {
                        self.command.extra.insert(name.into(), value.into());
                        self
                    }
                }
            });
            if list.is_empty() && arg.is_none() {
                TokenStream::new()
            } else {
                quote! {
                    impl crate::Call<'_, #ty> {
                        #(#list)*
                        #arg
                    }
                }
            }
        }
    };

    Ok(quote! {
        #value
        #command_impl
        #method_impl
        #setters
    })
}

/// A setter's name: the field name, unless `Call` already has a method by that name.
fn setter_name(f: &Field<'_>) -> String {
    let name = ident::field_name(&f.member.name);
    if CALL_METHODS.contains(&name.as_str()) {
        format!("{name}_arg")
    } else {
        name
    }
}

fn param_doc(d: &mut Docs, opts: &Options, f: &Field<'_>) {
    let text = if opts.prose {
        f.member.doc.as_deref().map(super::docs::rst_to_markdown)
    } else {
        None
    };
    match text {
        Some(t) if !t.is_empty() => d.para(format!(
            "- `{}`: {}",
            f.ident.to_string().trim_start_matches("r#"),
            t.replace('\n', "\n  ")
        )),
        _ => d.para(format!(
            "- `{}`",
            f.ident.to_string().trim_start_matches("r#")
        )),
    };
}

/// Method parameters for the required fields, and the struct initializers for all fields
/// (optional ones `None`); strings are taken as `impl Into<String>`.
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
        let inner = plan.rust_type(&f.member.ty, module);
        let (ty, conv) = if is_string(&f.member.ty) {
            let string = plan.std("String", module);
            (quote!(impl Into<#string>), quote!(#id.into()))
        } else {
            (inner, quote!(#id))
        };
        params.push(quote!(#id: #ty));
        if f.boxed {
            let b = plan.std("Box", module);
            inits.push(quote!(#id: #b::new(#conv),));
        } else if is_string(&f.member.ty) {
            inits.push(quote!(#id: #conv,));
        } else {
            inits.push(quote!(#id,));
        }
    }
    (params, inits)
}
