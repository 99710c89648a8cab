//! Support for the generated code: helpers it calls and the crates it names. Not a public
//! API; everything here may change with the generator.
//!
//! Unions and alternates have hand-written (generated) `Deserialize` impls: QEMU does not
//! order object members, so a union's discriminator may come after its branch members. Such a
//! value is first captured as JSON text ([`capture`](fn@capture)), then decoded once for the
//! base members and once for the branch ([`decode_part`](fn@decode_part)): each pass skips what
//! it does not need, which is much cheaper than building an intermediate tree.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::ser::{Error as _, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

pub use ::qmp_core;
pub use ::serde;
pub use ::serde_json;

use crate::{UnknownValue, UnknownVariant};

/// The `Other` value of an enum for a wire name its schema does not know (only the generated
/// `from_wire` calls it, after matching every known name).
#[inline]
pub fn unknown_value<E>(wire: &str) -> UnknownValue<E> {
    UnknownValue {
        wire: wire.into(),
        of: std::marker::PhantomData,
    }
}

// Error passing for the generated serde impls, written as macros instead of `?`: rustc
// type-checks each `?` (its `Try`, `FromResidual` and `From` obligations, on a generic error
// type) much more slowly than the `match` it stands for, and the generated impls hold about
// 8,000 of them (a tenth of the crate's compile time; see BENCHMARKS.md, "Build row back within
// budget"). Their arguments are plain names so that the formatted code reads well.

/// `result?` without the `From` conversion: the `Ok` value, or `return Err(e)` unchanged.
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_propagate {
    ($result:expr) => {
        match $result {
            ::core::result::Result::Ok(v) => v,
            ::core::result::Result::Err(e) => return ::core::result::Result::Err(e),
        }
    };
}

/// A required member's value, or serde's "missing field" error naming it (`wire`).
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_required {
    ($local:ident, $wire:literal) => {
        match $local {
            ::core::option::Option::Some(v) => v,
            ::core::option::Option::None => {
                return ::core::result::Result::Err(
                    <_ as $crate::__private::serde::de::Error>::missing_field($wire),
                )
            }
        }
    };
}

/// The next member name of a `MapAccess`, borrowed when possible.
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_next_key {
    ($map:ident) => {
        $crate::__private::propagate!($map.next_key::<$crate::__private::Key<'_>>())
    };
}

/// Reads a member's value into `slot` (an `Option` local): `Some(value)`, so that a `null`
/// value of an `any` member stays present.
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_member {
    ($map:ident, $slot:ident) => {
        $slot = ::core::option::Option::Some($crate::__private::propagate!($map.next_value()))
    };
}

/// Reads an optional member's value into `slot` (an `Option` local): `null` counts as absent.
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_optional_member {
    ($map:ident, $slot:ident) => {
        $slot = $crate::__private::propagate!($map.next_value())
    };
}

/// Skips the value of a member this type does not know.
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_skip_value {
    ($map:ident) => {{
        $crate::__private::propagate!(
            $map.next_value::<$crate::__private::serde::de::IgnoredAny>()
        );
    }};
}

/// Starts serializing an object of unknown length.
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_serialize_map {
    ($serializer:ident) => {
        $crate::__private::propagate!($serializer.serialize_map(::core::option::Option::None))
    };
}

/// Writes member `key` with `value` (a place, borrowed here).
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_entry {
    ($map:ident, $key:expr, $value:expr) => {
        $crate::__private::propagate!(
            $crate::__private::serde::ser::SerializeMap::serialize_entry(&mut $map, $key, &$value,)
        )
    };
}

/// Writes member `key` when the optional `value` (a place) is present.
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_optional_entry {
    ($map:ident, $key:expr, $value:expr) => {
        if let ::core::option::Option::Some(v) = &$value {
            $crate::__private::entry!($map, $key, *v);
        }
    };
}

/// The captured JSON text of a value (see [`capture`](fn@capture)).
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_capture {
    ($deserializer:ident) => {
        $crate::__private::propagate!($crate::__private::capture($deserializer))
    };
}

/// Decodes (part of) a captured value (see [`decode_part`](fn@decode_part)).
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_decode_part {
    ($raw:ident) => {
        $crate::__private::propagate!($crate::__private::decode_part(&$raw))
    };
}

/// The `Other` variant's content for a union branch this schema does not know (see
/// [`unknown_variant`](fn@unknown_variant)): its tag (`&str`) and the captured value.
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_unknown_variant {
    ($tag:expr, $raw:ident) => {
        $crate::__private::propagate!($crate::__private::unknown_variant(
            ::std::string::String::from($tag),
            &$raw,
        ))
    };
}

/// Refuses a member the type does not know (`key`, a [`Key`]), naming the known ones: for
/// types QEMU never sends, where an unknown member is a typo in the caller's input.
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_unknown_member {
    ($key:ident, [$($name:literal),*]) => {
        return ::core::result::Result::Err(
            <_ as $crate::__private::serde::de::Error>::unknown_field($key.as_str(), &[$($name),*]),
        )
    };
}

/// Decodes a strict union's branch from a captured value: `$base` names are the base's
/// members, then come the branch's (see [`decode_branch`](fn@decode_branch)).
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_decode_branch {
    ($raw:ident, $base:literal, [$($name:literal),*]) => {
        $crate::__private::propagate!($crate::__private::decode_branch(&$raw, $base, &[$($name),*]))
    };
}

/// Refuses any member of a captured value beyond the base's, for a strict union's tag that
/// has no branch members (see [`no_branch_members`](fn@no_branch_members)).
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_no_branch_members {
    ($raw:ident, [$($name:literal),*]) => {
        $crate::__private::propagate!($crate::__private::no_branch_members(&$raw, &[$($name),*]))
    };
}

pub use crate::{
    __qapi_capture as capture, __qapi_decode_branch as decode_branch,
    __qapi_decode_part as decode_part, __qapi_entry as entry, __qapi_member as member,
    __qapi_next_key as next_key, __qapi_no_branch_members as no_branch_members,
    __qapi_optional_entry as optional_entry, __qapi_optional_member as optional_member,
    __qapi_propagate as propagate, __qapi_required as required,
    __qapi_serialize_map as serialize_map, __qapi_skip_value as skip_value,
    __qapi_unknown_member as unknown_member, __qapi_unknown_variant as unknown_variant,
};

/// Implements `Display`, `FromStr`, `Serialize` and `Deserialize` for a generated QAPI enum
/// through its `as_str` and `from_wire` methods.
#[doc(hidden)]
#[macro_export]
macro_rules! __qapi_enum_impls {
    ($name:ident) => {
        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::core::str::FromStr for $name {
            type Err = ::core::convert::Infallible;
            fn from_str(s: &str) -> ::core::result::Result<Self, Self::Err> {
                Ok(Self::from_wire(s))
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(
                &self,
                s: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                d: D,
            ) -> ::core::result::Result<Self, D::Error> {
                $crate::__private::deserialize_enum(d, Self::from_wire)
            }
        }
    };
}

/// Deserializes a string and maps it with `from_wire`.
pub fn deserialize_enum<'de, D: Deserializer<'de>, T>(
    d: D,
    from_wire: fn(&str) -> T,
) -> Result<T, D::Error> {
    struct WireName<T>(fn(&str) -> T);
    impl<T> Visitor<'_> for WireName<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an enum value (a string)")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            Ok((self.0)(v))
        }
    }
    d.deserialize_str(WireName(from_wire))
}

/// An object member name, borrowed from the input when it has no escapes (qmp-core's).
pub use qmp_core::Key;

/// A required member's value, or serde's "missing field" error naming it.
pub fn required<T, E: de::Error>(value: Option<T>, name: &'static str) -> Result<T, E> {
    value.ok_or_else(|| E::missing_field(name))
}

/// Captures a value's JSON text, to be decoded in several passes.
pub fn capture<'de, D: Deserializer<'de>>(d: D) -> Result<Box<RawValue>, D::Error> {
    <Box<RawValue> as serde::Deserialize>::deserialize(d)
}

/// Decodes (part of) a captured value. On failure the error carries the path inside the value,
/// which the outer decoder joins to its own (see `DecodeError::decode_part`).
pub fn decode_part<T: DeserializeOwned, E: de::Error>(raw: &RawValue) -> Result<T, E> {
    qmp_core::DecodeError::decode_part::<T>(raw.get()).map_err(E::custom)
}

/// The members of a captured object, by name (raw values, not decoded).
fn object_members(
    raw: &RawValue,
) -> Result<std::collections::BTreeMap<String, Box<RawValue>>, String> {
    serde_json::from_str(raw.get()).map_err(|e| e.to_string())
}

/// Decodes a strict union's branch (a type QEMU never sends). `names` are the members the
/// value may have: the first `base` of them the base's (with the discriminator), then the
/// branch's. A member outside `names` is refused, naming them all; the branch is then decoded
/// from the members the base does not name. When the branch's names are not listed (a branch
/// that is itself a union, whose members depend on its own tag), the branch type refuses what
/// it does not know by itself. Errors carry the path inside the value, like
/// [`decode_part`](fn@decode_part)'s.
pub fn decode_branch<T: DeserializeOwned, E: de::Error>(
    raw: &RawValue,
    base: usize,
    names: &'static [&'static str],
) -> Result<T, E> {
    let mut members = object_members(raw).map_err(E::custom)?;
    if names.len() > base {
        if let Some(unknown) = members.keys().find(|m| !names.contains(&m.as_str())) {
            return Err(E::unknown_field(unknown, names));
        }
    }
    let base_names = names.get(..base).unwrap_or(names);
    members.retain(|name, _| !base_names.contains(&name.as_str()));
    let rest = serde_json::to_string(&members).map_err(E::custom)?;
    qmp_core::DecodeError::decode_part::<T>(&rest).map_err(E::custom)
}

/// Refuses the first member of `raw` that `base` does not name: a strict union's tag without
/// branch members takes nothing else.
pub fn no_branch_members<E: de::Error>(
    raw: &RawValue,
    base: &'static [&'static str],
) -> Result<(), E> {
    let members = object_members(raw).map_err(E::custom)?;
    match members.keys().find(|name| !base.contains(&name.as_str())) {
        Some(name) => Err(E::unknown_field(name, base)),
        None => Ok(()),
    }
}

/// The JSON type of a captured value, which selects an alternate's branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// `null`
    Null,
    /// `true` / `false`
    Bool,
    /// a number
    Number,
    /// a string
    String,
    /// an array
    Array,
    /// an object
    Object,
}

impl JsonKind {
    fn describe(self) -> &'static str {
        match self {
            JsonKind::Null => "null",
            JsonKind::Bool => "a boolean",
            JsonKind::Number => "a number",
            JsonKind::String => "a string",
            JsonKind::Array => "an array",
            JsonKind::Object => "an object",
        }
    }
}

/// The JSON type of `raw` (valid JSON, so its first byte decides).
pub fn json_kind(raw: &RawValue) -> JsonKind {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') => JsonKind::Object,
        Some(b'[') => JsonKind::Array,
        Some(b'"') => JsonKind::String,
        Some(b't' | b'f') => JsonKind::Bool,
        Some(b'n') => JsonKind::Null,
        _ => JsonKind::Number,
    }
}

/// The error for an alternate given a JSON type none of its branches takes.
pub fn alternate_mismatch<E: de::Error>(alternate: &str, kind: JsonKind, expected: &str) -> E {
    E::custom(format!(
        "{alternate} expects {expected}, found {}",
        kind.describe()
    ))
}

/// Decodes the members of a union value whose discriminator this schema does not know.
/// Crate-private: decoding is the only way to an [`UnknownVariant`]. (Unused with a schema
/// that has no unions, like old guest agents'.)
#[allow(dead_code)]
pub fn unknown_variant<U, E: de::Error>(
    tag: String,
    raw: &RawValue,
) -> Result<UnknownVariant<U>, E> {
    let members: Map<String, Value> = decode_part(raw)?;
    Ok(UnknownVariant::new(tag, members))
}

/// Builds a union's wire object: the discriminator, the other base members, then the
/// branch's members, in that order (the order QEMU's documentation writes them in).
/// Errors are kept until [`FlatObject::serialize`], so generated code stays a list of `put`s.
#[derive(Default)]
pub struct FlatObject {
    members: Vec<(String, Box<RawValue>)>,
    error: Option<serde_json::Error>,
}

impl FlatObject {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a member (replacing one of the same name).
    pub fn put<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) {
        match serde_json::value::to_raw_value(value) {
            Ok(v) => self.insert(key, v, true),
            Err(e) => self.fail(e),
        }
    }

    fn insert(&mut self, key: &str, value: Box<RawValue>, replace: bool) {
        match self.members.iter_mut().find(|(k, _)| k == key) {
            Some(slot) if replace => slot.1 = value,
            Some(_) => {}
            None => self.members.push((key.to_string(), value)),
        }
    }

    /// Adds an optional member when it is present.
    pub fn put_opt<T: Serialize>(&mut self, key: &str, value: &Option<T>) {
        if let Some(v) = value {
            self.put(key, v);
        }
    }

    /// Adds every member of `value`, which must serialize to an object (a branch struct or
    /// union), in its order.
    pub fn extend<T: Serialize + ?Sized>(&mut self, value: &T) {
        let members = serde_json::value::to_raw_value(value)
            .and_then(|raw| serde_json::from_str::<OrderedMembers>(raw.get()));
        match members {
            Ok(OrderedMembers(members)) => {
                for (k, v) in members {
                    self.insert(&k, v, true);
                }
            }
            Err(e) => self.fail(e),
        }
    }

    /// Adds the members kept for a branch this schema does not know.
    pub fn extend_unknown<U>(&mut self, unknown: &UnknownVariant<U>) {
        for (k, v) in unknown.members() {
            match serde_json::value::to_raw_value(v) {
                Ok(v) => self.insert(k, v, false),
                Err(e) => self.fail(e),
            }
        }
    }

    fn fail(&mut self, e: serde_json::Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// Serializes the object (or reports the first error).
    pub fn serialize<S: Serializer>(self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if let Some(e) = self.error {
            return Err(S::Error::custom(e));
        }
        let mut map = s.serialize_map(Some(self.members.len()))?;
        for (k, v) in &self.members {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// An object's members in their order (a branch's members, spliced into a union's object).
struct OrderedMembers(Vec<(String, Box<RawValue>)>);

impl<'de> de::Deserialize<'de> for OrderedMembers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = OrderedMembers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a union branch serialized as an object")
            }
            fn visit_map<A: de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<OrderedMembers, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = a.next_entry::<String, Box<RawValue>>()? {
                    out.push(entry);
                }
                Ok(OrderedMembers(out))
            }
        }
        d.deserialize_map(Members)
    }
}

/// Decodes a command's `return` value.
pub fn decode_return<T: DeserializeOwned>(
    command: &str,
    raw: &str,
) -> Result<T, qmp_core::DecodeError> {
    qmp_core::DecodeError::decode(command, raw)
}
