//! The `commands` module: per command, a type holding its arguments (the schema struct itself
//! when it has the command's name) that implements the runtime's `Command` trait, a call type
//! (a newtype over the runtime's `Call`) with a setter per optional argument, and a method on
//! the typed client that takes the required arguments. Methods are grouped in one `impl` block
//! per QAPI module; `commands.md` lists the commands by module for the module's docs.

use std::fmt::Write as _;

use proc_macro2::TokenStream;
use quote::quote;

use super::docs::{alias, deprecated, rst_to_markdown, with_reference, Docs};
use super::fields::{field_decls, params_and_inits, struct_derives};
use super::plan::{setter_name, CommandNames, Field, Module, Plan, FD_COMMANDS};
use super::serde_impls;
use super::{EmitError, Item, Options};
use crate::history::Path;
use crate::ident;
use crate::model::{Arguments, Command};

const M: Module = Module::Other;

/// The items of `commands.rs` and the Markdown of the module's docs.
pub(crate) fn emit(plan: &Plan<'_>, opts: &Options) -> Result<(Vec<Item>, String), EmitError> {
    let mut items = Vec::new();
    let mut index = Index::new(plan);
    for (module, _) in &plan.modules {
        let mut methods = Vec::new();
        for c in plan
            .schema
            .commands()
            .filter(|c| c.module.as_deref() == *module)
        {
            let names = plan.command_names(&c.name);
            let shape = shape(plan, c)?;
            let mut tokens = command_value(plan, opts, c, &names, &shape);
            tokens.extend(command_impl(plan, c, &names));
            if plan.method_ident(&c.name).is_some() {
                tokens.extend(call_type(plan, opts, c, &names, &shape));
            }
            items.push(Item::new(&c.name, tokens));
            if let Some(m) = method(plan, opts, c, &names, &shape) {
                methods.push(m);
            }
            index.row(c, &names);
        }
        if !methods.is_empty() {
            let mut d = Docs::new();
            match module {
                Some(m) => {
                    d.para(format!("# Commands of the QAPI module `{m}`"));
                    d.para(format!(
                        "QEMU reference: [`{m}`]({}).",
                        plan.manual.module_url(m)
                    ));
                }
                None => {
                    d.para("# Commands");
                }
            }
            let docs = d.tokens();
            let name = module.unwrap_or("commands");
            let client = ident::ident(&plan.client);
            items.push(Item::new(
                name,
                quote! {
                    #docs
                    impl crate::#client {
                        #(#methods)*
                    }
                },
            ));
        }
    }
    Ok((items, index.finish()))
}

/// How a command's value holds its arguments.
enum Shape<'m> {
    /// No arguments: a unit struct (serializes to nothing on the wire).
    Unit,
    /// Inline members: a struct in `commands` with one field each.
    Fields(Vec<Field<'m>>),
    /// A schema struct: its fields become parameters and setters. The command type is the
    /// struct itself when the names agree, else a newtype around it.
    Struct { ty: String, fields: Vec<Field<'m>> },
    /// A union (boxed commands such as `blockdev-add`): a newtype; the method takes the value.
    Value { ty: String },
}

fn shape<'m>(plan: &Plan<'m>, c: &'m Command) -> Result<Shape<'m>, EmitError> {
    Ok(match &c.arguments {
        Arguments::None => Shape::Unit,
        Arguments::Members(ms) => {
            Shape::Fields(plan.fields(&c.name, c.since.as_deref(), ms, false)?)
        }
        Arguments::Type(t) => match plan.schema.struct_type(t) {
            Some(s) => Shape::Struct {
                ty: t.clone(),
                fields: plan.fields(t, s.since.as_deref(), &s.members, plan.sent_by_qemu(t))?,
            },
            None => Shape::Value { ty: t.clone() },
        },
    })
}

impl Shape<'_> {
    /// The fields that become parameters and setters.
    fn fields(&self) -> &[Field<'_>] {
        match self {
            Shape::Fields(f) | Shape::Struct { fields: f, .. } => f,
            Shape::Unit | Shape::Value { .. } => &[],
        }
    }
}

/// Whether the command takes arguments beyond those listed (`gen: false` with inline
/// members, e.g. `device_add`): its value has an `extra` map and its call an `.arg()`.
fn has_extra(c: &Command, shape: &Shape<'_>) -> bool {
    !c.gen && matches!(shape, Shape::Fields(_))
}

/// The command value: a struct in `commands`, or a re-export of the schema struct.
fn command_value(
    plan: &Plan<'_>,
    opts: &Options,
    c: &Command,
    names: &CommandNames,
    shape: &Shape<'_>,
) -> TokenStream {
    let ty = ident::ident(&names.ty);
    let wire = &c.name;
    let dep = deprecated(&c.features);
    let alias = alias(wire, &names.ty);
    if names.is_schema_struct {
        return quote!(pub use crate::types::#ty;);
    }
    let mut d = Docs::new();
    let run = match plan.method_ident(&c.name) {
        Some(m) => format!(
            "run it with [`{q}::{m}`](crate::{q}::{m}) or [`{q}::execute`](crate::{q}::execute)",
            q = plan.client
        ),
        None => format!(
            "run it with [`{q}::execute`](crate::{q}::execute)",
            q = plan.client
        ),
    };
    d.para(format!("Arguments of the QMP command `{wire}`; {run}."));
    d.facts(c.since.as_deref(), &c.features, c.cond.as_ref());
    if let Some(note) = plan.note(&Path::definition(wire), c.since.as_deref()) {
        d.para(note);
    }
    let url = plan.command_reference(c);
    d.reference(wire, url.as_deref());
    let docs = d.tokens();
    match shape {
        Shape::Unit => quote! {
            #docs
            #alias
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
            let decls = field_decls(plan, opts, fields, M, (wire, url.as_deref()));
            let extra_ident = ident::ident("extra");
            let extra = has_extra(c, shape);
            let extra_decl = extra.then(|| {
                quote! {
                    /// Arguments the schema does not list (this command accepts more, e.g.
                    /// device properties); set them with the call's `arg`. A key here is sent
                    /// instead of the listed argument of the same name.
                    pub extra: ::serde_json::Map<String, ::serde_json::Value>,
                }
            });
            let derives = struct_derives(fields);
            let ser = serde_impls::serialize(&ty, fields, extra.then_some(&extra_ident));
            quote! {
                #docs
                #alias
                #dep
                #derives
                pub struct #ty { #decls #extra_decl }

                #ser
            }
        }
        Shape::Struct { ty: inner, .. } | Shape::Value { ty: inner } => {
            let inner = plan.type_path(inner, M);
            quote! {
                #docs
                #alias
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
    }
}

/// `impl Command` for the command type.
fn command_impl(plan: &Plan<'_>, c: &Command, names: &CommandNames) -> TokenStream {
    let ty = command_path(names);
    let wire = &c.name;
    let (output, decode, raw) = match &c.returns {
        None => (quote!(()), quote!(Ok(())), quote!(_raw)),
        Some(r) => (
            plan.rust_type(r, M),
            quote!(crate::__private::decode_return(Self::NAME, raw)),
            quote!(raw),
        ),
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
    let unlisted = (!c.gen).then(|| {
        quote!(
            const UNLISTED_ARGUMENTS: bool = true;
        )
    });
    quote! {
        impl crate::Command for #ty {
            const NAME: &'static str = #wire;
            #oob
            #no_reply
            #unlisted
            type Output = #output;
            #[inline]
            fn decode(#raw: &str) -> ::core::result::Result<Self::Output, crate::DecodeError> {
                #decode
            }
        }
    }
}

/// The command type as a path from `commands` (where a schema struct is re-exported).
fn command_path(names: &CommandNames) -> TokenStream {
    let ty = ident::ident(&names.ty);
    quote!(#ty)
}

/// The call type: a newtype over `Call`, the shared impls (from the runtime macro), and a
/// setter per optional argument.
fn call_type(
    plan: &Plan<'_>,
    opts: &Options,
    c: &Command,
    names: &CommandNames,
    shape: &Shape<'_>,
) -> TokenStream {
    let call = ident::ident(&names.call);
    let cmd = command_path(names);
    let wire = &c.name;
    let taken = plan.call_methods(c);
    let optional: Vec<&Field<'_>> = shape.fields().iter().filter(|f| f.optional).collect();
    let mut d = Docs::new();
    let from = match plan.method_ident(&c.name) {
        Some(m) => format!("returned by [`{q}::{m}`](crate::{q}::{m})", q = plan.client),
        None => String::new(),
    };
    d.para(format!(
        "A call of the QMP command `{wire}`, {from}: set optional arguments, then `.await` it \
         (a `Future` owning a handle to the connection: nothing is sent until it is first \
         polled)."
    ));
    let mut offers: Vec<String> = optional
        .iter()
        .map(|f| format!("[`{0}`](Self::{0})", setter_name(&f.member.name, &taken)))
        .collect();
    offers.push("[`timeout`](Self::timeout)".into());
    if c.allow_oob {
        offers.push("[`oob`](Self::oob)".into());
    }
    if FD_COMMANDS.contains(&wire.as_str()) {
        offers.push("[`fd`](Self::fd)".into());
    }
    if has_extra(c, shape) {
        offers.push("[`arg`](Self::arg)".into());
    }
    d.para(format!("Settings: {}.", offers.join(", ")));
    let docs = d.tokens();
    let mut extras = Vec::new();
    if c.allow_oob {
        extras.push(quote!(oob));
    }
    if FD_COMMANDS.contains(&wire.as_str()) {
        extras.push(quote!(fd));
    }
    let target = match shape {
        Shape::Struct { .. } if !names.is_schema_struct => quote!(.0),
        _ => TokenStream::new(),
    };
    let extra = has_extra(c, shape);
    let url = plan.command_reference(c);
    let link = (wire.as_str(), url.as_deref());
    let setters: Vec<TokenStream> = optional
        .iter()
        .map(|f| setter(plan, opts, f, &taken, &target, extra, link))
        .collect();
    let arg = extra.then(|| arg_setter(shape));
    let setters_impl = (!setters.is_empty() || arg.is_some()).then(|| {
        quote! {
            impl #call {
                #(#setters)*
                #arg
            }
        }
    });
    let dep = deprecated(&c.features);
    quote! {
        #docs
        #dep
        #[must_use = "a command does nothing until it is awaited"]
        pub struct #call(crate::Call<#cmd>);

        crate::__qmp_call_type!(#call, #cmd #(, #extras)*);

        #setters_impl
    }
}

/// A setter for optional field `f`. For a command with `extra` arguments, it also drops an
/// `extra` entry of the same name: the last call wins.
#[allow(clippy::too_many_arguments)]
fn setter(
    plan: &Plan<'_>,
    opts: &Options,
    f: &Field<'_>,
    taken: &[&str],
    target: &TokenStream,
    extra: bool,
    (owner, url): (&str, Option<&str>),
) -> TokenStream {
    let m = f.member;
    let name = setter_name(&m.name, taken);
    let setter = ident::ident(&name);
    let id = &f.ident;
    let mut sd = Docs::new();
    sd.para(with_reference(
        format!("Sets the optional argument `{}`", m.name),
        owner,
        url,
    ));
    if opts.prose {
        sd.prose(m.doc.as_deref());
    }
    sd.facts(m.since.as_deref(), &m.features, m.cond.as_ref());
    let docs = sd.tokens();
    let dep = deprecated(&m.features);
    let alias = alias(&m.name, &name);
    let (arg_ty, conv) = super::conversions::param_type(plan, &m.ty, M, &ident::ident("value"));
    let conv = if f.boxed {
        quote!(Box::new(#conv))
    } else {
        conv
    };
    let wire = &m.name;
    let unset_extra = extra.then(|| quote!(self.0.command.extra.remove(#wire);));
    quote! {
        #docs
        #alias
        #dep
        #[inline]
        pub fn #setter(mut self, value: #arg_ty) -> Self {
            #unset_extra
            self.0.command #target.#id = Some(#conv);
            self
        }
    }
}

/// `.arg(name, value)` for commands that accept arguments the schema does not list.
fn arg_setter(shape: &Shape<'_>) -> TokenStream {
    let clears = shape.fields().iter().filter(|f| f.optional).map(|f| {
        let id = &f.ident;
        let wire = &f.member.name;
        quote! {
            if name == #wire {
                args.#id = None;
            }
        }
    });
    quote! {
        /// Sets an argument the schema does not list (for example a device property of
        /// `device_add`), as JSON.
        ///
        /// The last call wins: `.arg("bus", "pcie.1")` replaces a bus set earlier with `.bus()`
        /// (and clears it), and a later `.bus()` replaces it again. A listed argument given
        /// as a method parameter is replaced by an `arg` of the same name.
        pub fn arg(mut self, name: impl Into<String>, value: impl Into<::serde_json::Value>) -> Self {
            let name = name.into();
            let args = &mut self.0.command;
            #(#clears)*
            args.extra.insert(name, value.into());
            self
        }
    }
}

/// The client method: required arguments as parameters; `None` for commands without one.
fn method(
    plan: &Plan<'_>,
    opts: &Options,
    c: &Command,
    names: &CommandNames,
    shape: &Shape<'_>,
) -> Option<TokenStream> {
    let method = plan.method_ident(&c.name)?;
    let call = ident::ident(&names.call);
    let ty = ident::ident(&names.ty);
    let wire = &c.name;
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
    let (params, build) = match shape {
        Shape::Unit => (Vec::new(), quote!(#ty)),
        Shape::Fields(fields) => {
            let (params, inits) = params_and_inits(plan, fields, M);
            let extra = has_extra(c, shape).then(|| quote!(extra: ::serde_json::Map::new(),));
            (params, quote!(#ty { #(#inits)* #extra }))
        }
        Shape::Struct { ty: inner, fields } => {
            let (params, inits) = params_and_inits(plan, fields, M);
            let path = plan.type_path(inner, M);
            if names.is_schema_struct {
                (params, quote!(#path { #(#inits)* }))
            } else {
                (params, quote!(#ty(#path { #(#inits)* })))
            }
        }
        Shape::Value { ty: inner } => {
            let path = plan.type_path(inner, M);
            let param = ident::ident(&ident::field_name(&ident::type_name(inner)));
            (
                vec![quote!(#param: impl Into<#path>)],
                quote!(#ty(#param.into())),
            )
        }
    };
    for f in shape.fields().iter().filter(|f| !f.optional) {
        param_doc(&mut md, opts, f);
    }
    md.para(format!(
        "Returns a [`{0}`](crate::commands::{0}): set optional arguments on it, then `.await` it.",
        names.call
    ));
    md.facts(c.since.as_deref(), &c.features, c.cond.as_ref());
    if let Some(note) = plan.note(&Path::definition(wire), c.since.as_deref()) {
        md.para(note);
    }
    md.reference(wire, plan.command_reference(c).as_deref());
    let docs = md.tokens();
    let dep = deprecated(&c.features);
    let alias = alias(wire, &method.to_string());
    // Clippy's limit is 7 parameters besides self; the schema decides how many there are.
    let many = (params.len() > 6).then(|| quote!(#[allow(clippy::too_many_arguments)]));
    Some(quote! {
        #docs
        #alias
        #dep
        #many
        #[inline]
        pub fn #method(&self #(, #params)*) -> crate::commands::#call {
            crate::commands::#call(crate::Call::new(self, #build))
        }
    })
}

fn param_doc(d: &mut Docs, opts: &Options, f: &Field<'_>) {
    let name = f.ident.to_string();
    let name = name.trim_start_matches("r#");
    let text = if opts.prose {
        f.member.doc.as_deref().map(rst_to_markdown)
    } else {
        None
    };
    match text {
        Some(t) if !t.is_empty() => d.para(format!("- `{name}`: {}", t.replace('\n', "\n  "))),
        _ => d.para(format!("- `{name}`")),
    };
}

/// The command list of the `commands` module's docs, by QAPI module.
struct Index<'p> {
    plan: &'p Plan<'p>,
    text: String,
    module: Option<Option<String>>,
}

impl<'p> Index<'p> {
    fn new(plan: &'p Plan<'p>) -> Self {
        let mut text = String::new();
        let _ = write!(
            text,
            "Every command: a type holding its arguments (implementing [`Command`](crate::Command)) \
             and a call type, which its method on [`{q}`](crate::{q}) returns: set optional \
             arguments on the call, then `.await` it.\n\n\
             A command whose arguments are a schema struct of the same name is that struct, \
             re-exported from [`types`](crate::types) (`BlockdevBackup`); every other command \
             type is defined here. Calls own a handle to the connection, so they can be spawned.\n",
            q = plan.client
        );
        Index {
            plan,
            text,
            module: None,
        }
    }

    fn row(&mut self, c: &Command, names: &CommandNames) {
        let module = c.module.clone();
        if self.module.as_ref() != Some(&module) {
            match &module {
                Some(m) => {
                    let _ = write!(
                        self.text,
                        "\n## `{m}`\n\nQEMU reference: [`{m}`]({}).\n\n",
                        self.plan.manual.module_url(m)
                    );
                }
                None => self.text.push_str("\n## Commands\n\n"),
            }
            self.text
                .push_str("| command | method | arguments | call |\n|---|---|---|---|\n");
            self.module = Some(module);
        }
        let (method, call) = match self.plan.method_ident(&c.name) {
            Some(m) => (
                format!("[`{q}::{m}`](crate::{q}::{m})", q = self.plan.client),
                format!("[`{0}`](crate::commands::{0})", names.call),
            ),
            None => ("(negotiated by the transport)".to_string(), "-".to_string()),
        };
        let path = if names.is_schema_struct {
            format!("crate::types::{}", names.ty)
        } else {
            format!("crate::commands::{}", names.ty)
        };
        let _ = writeln!(
            self.text,
            "| `{}` | {method} | [`{}`]({path}) | {call} |",
            c.name, names.ty
        );
    }

    fn finish(self) -> String {
        self.text
    }
}
