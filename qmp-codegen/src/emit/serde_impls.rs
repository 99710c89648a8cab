//! `Serialize` / `Deserialize` impls for generated structs, written out instead of derived.
//!
//! QMP only ever speaks JSON objects, so each impl is a plain map: serialization writes the
//! present members, deserialization matches member names in one `visit_map` and ignores
//! members it does not know (a newer QEMU adds some). That is a fraction of the code
//! `serde_derive` produces (no sequence form, no field-identifier visitors), which is what
//! keeps the generated crate fast to compile.
//!
//! Locals of the generated code start with `__` so that no member name can shadow them.
//!
//! Errors are passed on by the runtime's small macros (`__private::propagate!`, `entry!`,
//! `required!`, ...) rather than `?`: rustc type-checks each `?` (its `Try`, `FromResidual` and
//! `From` obligations, on a generic error type) far more slowly than the `match` the macros
//! expand to, and these impls hold thousands of them (a tenth of `qmp-api`'s compile time,
//! measured in BENCHMARKS.md).

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::plan::Field;
use crate::model::{Builtin, TypeRef};

/// `impl Serialize`: a map of the members that are present, then `extra` members (a map
/// field holding arguments the schema does not list). An `extra` entry replaces a member of
/// the same name, so that no key is ever sent twice (QEMU rejects duplicate keys).
pub(crate) fn serialize(name: &Ident, fields: &[Field<'_>], extra: Option<&Ident>) -> TokenStream {
    let entries = fields.iter().map(|f| {
        let id = &f.ident;
        let wire = &f.member.name;
        let entry = if f.optional {
            quote!(crate::__private::optional_entry!(__map, #wire, self.#id);)
        } else {
            quote!(crate::__private::entry!(__map, #wire, self.#id);)
        };
        match extra {
            Some(e) => quote! {
                if !self.#e.contains_key(#wire) {
                    #entry
                }
            },
            None => entry,
        }
    });
    let extra_entries = extra.map(|e| {
        quote! {
            for (__k, __v) in &self.#e {
                crate::__private::entry!(__map, __k, *__v);
            }
        }
    });
    let mutable = if fields.is_empty() && extra.is_none() {
        TokenStream::new()
    } else {
        quote!(mut)
    };
    quote! {
        impl ::serde::Serialize for #name {
            fn serialize<S: ::serde::Serializer>(&self, __s: S) -> ::core::result::Result<S::Ok, S::Error> {
                use ::serde::ser::SerializeMap as _;
                let #mutable __map = crate::__private::serialize_map!(__s);
                #(#entries)*
                #extra_entries
                __map.end()
            }
        }
    }
}

/// What a `Deserialize` impl does with an object member it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unknown {
    /// Skips it: a newer QEMU may send members this schema does not know.
    Skip,
    /// Refuses it, naming the member and the known ones: for types QEMU never sends (only
    /// in arguments), read from a user's file, where an unknown member is a typo that would
    /// otherwise vanish silently.
    Refuse,
}

/// `impl Deserialize` for struct `name` with `fields`, accepting a JSON object.
pub(crate) fn deserialize(name: &Ident, fields: &[Field<'_>], unknown: Unknown) -> TokenStream {
    let body = visit_map_body(name, fields, unknown);
    let expecting = format!("a {name} object");
    quote! {
        impl<'de> ::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::serde::Deserializer<'de>>(__d: D) -> ::core::result::Result<Self, D::Error> {
                struct Visitor;
                impl<'de> ::serde::de::Visitor<'de> for Visitor {
                    type Value = #name;
                    fn expecting(&self, __f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        __f.write_str(#expecting)
                    }
                    fn visit_map<A: ::serde::de::MapAccess<'de>>(self, mut __map: A) -> ::core::result::Result<#name, A::Error> {
                        #body
                    }
                }
                __d.deserialize_map(Visitor)
            }
        }
    }
}

/// The body of `visit_map`: one local per field, a `match` on member names, then the value.
fn visit_map_body(name: &Ident, fields: &[Field<'_>], unknown: Unknown) -> TokenStream {
    let locals = fields.iter().map(|f| {
        let id = &f.ident;
        quote!(let mut #id = None;)
    });
    let arms = fields.iter().map(|f| {
        let id = &f.ident;
        let wire = &f.member.name;
        if f.optional && f.member.ty == TypeRef::Builtin(Builtin::Any) && !f.boxed {
            // An `any` member keeps a present `null` (`Some(Value::Null)`), which differs from
            // an absent one (introspection's `"default": null` marks an optional member).
            quote!(#wire => crate::__private::member!(__map, #id),)
        } else if f.optional {
            // `null` counts as absent.
            quote!(#wire => crate::__private::optional_member!(__map, #id),)
        } else {
            quote!(#wire => crate::__private::member!(__map, #id),)
        }
    });
    let inits = fields.iter().map(|f| {
        let id = &f.ident;
        let wire = &f.member.name;
        if f.optional {
            quote!(#id,)
        } else {
            quote!(#id: crate::__private::required!(#id, #wire),)
        }
    });
    let names = fields.iter().map(|f| &f.member.name);
    let other = match unknown {
        Unknown::Skip => quote!(crate::__private::skip_value!(__map)),
        Unknown::Refuse => quote!(crate::__private::unknown_member!(__key, [#(#names),*])),
    };
    let key_match = if fields.is_empty() && unknown == Unknown::Refuse {
        // No members: the first one is refused.
        quote! {
            if let Some(__key) = crate::__private::next_key!(__map) {
                #other
            }
        }
    } else if fields.is_empty() {
        quote! {
            while let Some(::serde::de::IgnoredAny) = crate::__private::propagate!(__map.next_key()) {
                crate::__private::skip_value!(__map);
            }
        }
    } else {
        quote! {
            while let Some(__key) = crate::__private::next_key!(__map) {
                match __key.as_str() {
                    #(#arms)*
                    _ => #other,
                }
            }
        }
    };
    quote! {
        #(#locals)*
        #key_match
        Ok(#name { #(#inits)* })
    }
}
