//! The `events` module: a data type per event that carries members, and the `Event` enum with
//! one variant per event plus `Other` for events this schema does not know.

use proc_macro2::TokenStream;
use quote::quote;

use super::docs::{alias, deprecated, Docs};
use super::fields::{field_decls, struct_derives};
use super::plan::{Module, Plan};
use super::serde_impls;
use super::{EmitError, Item, Options};
use crate::history::Path;
use crate::ident;
use crate::model::{Arguments, Kind};

const M: Module = Module::Other;

pub(crate) fn emit(plan: &Plan<'_>, opts: &Options) -> Result<Vec<Item>, EmitError> {
    let mut items = Vec::new();
    let mut variants = Vec::new();
    let mut decode_arms = Vec::new();
    let mut name_arms = Vec::new();
    let mut names = Vec::new();
    let mut kinds = Vec::new();
    let mut kind_arms = Vec::new();
    let mut kind_idents = Vec::new();
    for e in plan.schema.events() {
        let v = ident::ident(&ident::variant_name(&e.name));
        let wire = &e.name;
        let dep = deprecated(&e.features);
        let mut d = Docs::new();
        if opts.prose {
            d.prose(e.doc.as_ref().map(|d| d.body.as_str()));
        }
        d.para(format!("QMP event `{wire}`."));
        d.facts(e.since.as_deref(), &e.features, e.cond.as_ref());
        if let Some(note) = plan.note(&Path::definition(wire), e.since.as_deref()) {
            d.para(note);
        }
        let url = plan
            .manual
            .entry_url(Kind::Event, &e.name, e.module.as_deref(), false);
        d.reference(wire, url.as_deref());
        let docs = d.tokens();
        let alias = alias(wire, &v.to_string());
        names.push(wire.clone());
        let kind_doc = format!(" [`Event::{v}`]: `{wire}`.");
        kinds.push(quote!(#[doc = #kind_doc] #alias #dep #v,));
        kind_idents.push(v.clone());
        match &e.data {
            Arguments::None => kind_arms.push(quote!(Event::#v => EventKind::#v,)),
            _ => kind_arms.push(quote!(Event::#v(_) => EventKind::#v,)),
        }
        match &e.data {
            Arguments::None => {
                variants.push(quote!(#docs #alias #dep #v,));
                decode_arms.push(quote!(#wire => Event::#v,));
                name_arms.push(quote!(Event::#v => #wire,));
            }
            Arguments::Members(ms) => {
                let fields = plan.fields(&e.name, e.since.as_deref(), ms, true)?;
                let decls = field_decls(plan, opts, &fields, M, (wire, url.as_deref()));
                let derives = struct_derives(&fields);
                let ser = serde_impls::serialize(&v, &fields, None);
                let de = serde_impls::deserialize(&v, &fields, serde_impls::Unknown::Skip);
                let mut sd = Docs::new();
                sd.para(format!("Data of the QMP event `{wire}` ([`Event::{v}`])."));
                sd.reference(wire, url.as_deref());
                let sdoc = sd.tokens();
                items.push(Item::new(
                    wire,
                    quote! {
                        #sdoc
                        #alias
                        #dep
                        #derives
                        pub struct #v { #decls }

                        #ser
                        #de
                    },
                ));
                variants.push(quote!(#docs #alias #dep #v(#v),));
                decode_arms
                    .push(quote!(#wire => Event::#v(crate::__private::propagate!(raw.data())),));
                name_arms.push(quote!(Event::#v(_) => #wire,));
            }
            Arguments::Type(t) => {
                let path = plan.type_path(t, M);
                variants.push(quote!(#docs #alias #dep #v(#path),));
                decode_arms
                    .push(quote!(#wire => Event::#v(crate::__private::propagate!(raw.data())),));
                name_arms.push(quote!(Event::#v(_) => #wire,));
            }
        }
    }
    // A schema without events (the guest agent's) gets the same API without one-arm matches.
    let (name_body, decode_body) = if names.is_empty() {
        (
            quote! {
                let Event::Other(unknown) = self;
                unknown.name()
            },
            quote!(Ok(Event::Other(crate::UnknownEvent::new(raw)))),
        )
    } else {
        (
            quote! {
                match self {
                    #(#name_arms)*
                    Event::Other(unknown) => unknown.name(),
                }
            },
            quote! {
                Ok(match raw.name() {
                    #(#decode_arms)*
                    _ => Event::Other(crate::UnknownEvent::new(raw)),
                })
            },
        )
    };
    items.push(Item::new(
        "Event",
        quote! {
            /// Every QMP event of this schema, with its data decoded.
            ///
            /// Events this schema does not know (from a newer QEMU, or a downstream build) arrive
            /// as [`Event::Other`], with their name and raw data intact.
            #[derive(Debug, Clone, PartialEq)]
            #[non_exhaustive]
            pub enum Event {
                #(#variants)*
                /// An event this schema does not know, as received. Only
                /// [`from_raw`](Self::from_raw) makes one, and never for a known event name.
                Other(crate::UnknownEvent),
            }

            impl Event {
                /// The QMP names of every event this schema knows, in schema order.
                pub const NAMES: &'static [&'static str] = &[#(#names),*];

                /// The event's QMP name, e.g. `BLOCK_JOB_COMPLETED`.
                pub fn name(&self) -> &str {
                    #name_body
                }

                /// Decodes a received event. Unknown names give [`Event::Other`]; a known event
                /// whose data does not match the schema is an error naming the field.
                pub fn from_raw(raw: &crate::__private::qmp_core::Event) -> ::core::result::Result<Event, crate::DecodeError> {
                    #decode_body
                }
            }
        },
    ));
    items.push(Item::new(
        "EventKind",
        event_kind(&kinds, &kind_idents, &kind_arms),
    ));
    Ok(items)
}

/// `EventKind`: one unit variant per event, for subscribing by kind
/// (`qmp.subscribe([EventKind::Stop])`), so that a misspelled event does not compile.
fn event_kind(
    kinds: &[TokenStream],
    idents: &[proc_macro2::Ident],
    kind_arms: &[TokenStream],
) -> TokenStream {
    // A schema without events (the guest agent's): an empty enum, and `kind` is always `None`.
    let as_str = if kinds.is_empty() {
        quote!(match self {})
    } else {
        quote!(Event::NAMES[self as usize])
    };
    let kind_body = if kinds.is_empty() {
        quote!(None)
    } else {
        quote! {
            Some(match self {
                #(#kind_arms)*
                Event::Other(_) => return None,
            })
        }
    };
    quote! {
        /// Which event an [`Event`] is, without its data: subscribe by kind with
        /// [`Qmp::subscribe`](crate::Qmp::subscribe), where a misspelled kind does not compile.
        /// The wire name is [`as_str`](Self::as_str) (also its `Display`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum EventKind {
            #(#kinds)*
        }

        #[allow(deprecated)]
        impl EventKind {
            /// Every kind, in schema order (the order of [`Event::NAMES`]).
            pub const ALL: &'static [EventKind] = &[#(EventKind::#idents),*];

            /// The event's QMP name, e.g. `BLOCK_JOB_COMPLETED`.
            pub fn as_str(self) -> &'static str {
                #as_str
            }

            /// The kind of the event with QMP name `name`, if this schema knows it.
            pub fn from_name(name: &str) -> ::core::option::Option<EventKind> {
                Event::NAMES.iter().position(|n| *n == name).map(|i| EventKind::ALL[i])
            }
        }

        impl ::core::fmt::Display for EventKind {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Event {
            /// Which event this is; `None` for [`Event::Other`].
            #[allow(deprecated)]
            pub fn kind(&self) -> ::core::option::Option<EventKind> {
                #kind_body
            }
        }
    }
}
