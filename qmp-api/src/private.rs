//! Support for the generated code: helpers it calls and the crates it names. Not a public
//! API; everything here may change with the generator.
//!
//! Unions and alternates have hand-written (generated) `Deserialize` impls: QEMU does not
//! order object members, so a union's discriminator may come after its branch members. Such a
//! value is first captured as JSON text ([`capture`]), then decoded once for the base members
//! and once for the branch ([`decode_part`]): each pass skips what it does not need, which is
//! much cheaper than building an intermediate tree.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::ser::{Error as _, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

pub use ::qmp_core;
pub use ::serde;
pub use ::serde_json;

use crate::UnknownVariant;

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
pub(crate) fn unknown_variant<U, E: de::Error>(
    tag: String,
    raw: &RawValue,
) -> Result<UnknownVariant<U>, E> {
    let members: Map<String, Value> = decode_part(raw)?;
    Ok(UnknownVariant::new(tag, members))
}

/// Builds a union's wire object: base members, discriminator, then the branch's members.
/// Errors are kept until [`FlatObject::serialize`], so generated code stays a list of `put`s.
#[derive(Default)]
pub struct FlatObject {
    map: Map<String, Value>,
    error: Option<serde_json::Error>,
}

impl FlatObject {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a member.
    pub fn put<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) {
        match serde_json::to_value(value) {
            Ok(v) => {
                self.map.insert(key.to_string(), v);
            }
            Err(e) => self.fail(e),
        }
    }

    /// Adds an optional member when it is present.
    pub fn put_opt<T: Serialize>(&mut self, key: &str, value: &Option<T>) {
        if let Some(v) = value {
            self.put(key, v);
        }
    }

    /// Adds every member of `value`, which must serialize to an object (a branch struct or
    /// union).
    pub fn extend<T: Serialize + ?Sized>(&mut self, value: &T) {
        match serde_json::to_value(value) {
            Ok(Value::Object(members)) => self.map.extend(members),
            Ok(other) => self.fail(serde_json::Error::custom(format!(
                "a union branch must serialize to an object, got {other}"
            ))),
            Err(e) => self.fail(e),
        }
    }

    /// Adds the members kept for a branch this schema does not know.
    pub fn extend_unknown<U>(&mut self, unknown: &UnknownVariant<U>) {
        for (k, v) in unknown.members() {
            self.map.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }

    fn fail(&mut self, e: serde_json::Error) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    /// Serializes the object (or reports the first error).
    pub fn serialize<S: Serializer>(self, s: S) -> Result<S::Ok, S::Error> {
        match self.error {
            Some(e) => Err(S::Error::custom(e)),
            None => self.map.serialize(s),
        }
    }
}

/// Decodes a command's `return` value.
pub fn decode_return<T: DeserializeOwned>(
    command: &str,
    raw: &str,
) -> Result<T, qmp_core::DecodeError> {
    qmp_core::DecodeError::decode(command, raw)
}
