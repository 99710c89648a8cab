//! A JSON object as its members' unparsed values: the one decoding shape the protocol layer
//! needs. Each member is validated but not built into a tree, and is borrowed from the input;
//! the caller decodes the few members it wants, straight into their types.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The members of a JSON object, in order. Duplicate names are an error.
pub(crate) struct Object<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Object<'a> {
    /// Parses `text`, which must be a JSON object.
    pub(crate) fn parse(text: &'a str) -> Result<Object<'a>, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The member called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    }

    /// Decodes member `name` as `T`; a missing member is an error naming it.
    pub(crate) fn field<T: DeserializeOwned>(&self, name: &str) -> Result<T, String> {
        let raw = self
            .get(name)
            .ok_or_else(|| format!("missing member `{name}`"))?;
        serde_json::from_str(raw.get()).map_err(|e| format!("member `{name}`: {e}"))
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Object<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = Object<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object<'de>, A::Error> {
                let mut members: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::with_capacity(4);
                while let Some(Key(name)) = map.next_key()? {
                    if members.iter().any(|(k, _)| *k == name) {
                        return Err(de::Error::custom(format_args!("duplicate member `{name}`")));
                    }
                    let value: &'de RawValue = map.next_value()?;
                    members.push((name, value));
                }
                Ok(Object { members })
            }
        }
        d.deserialize_map(ObjectVisitor)
    }
}

/// A member name, borrowed unless it contains escapes. Public (hidden) for the code qmp-api
/// generates, whose `visit_map`s match member names with it.
#[doc(hidden)]
pub struct Key<'de>(pub(crate) Cow<'de, str>);

impl Key<'_> {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_and_errors() {
        let o = Object::parse(r#"{"a": 1, "b\u0020c": [2], "s": "x"}"#).unwrap();
        assert_eq!(o.get("a").unwrap().get(), "1");
        assert_eq!(o.get("b c").unwrap().get(), "[2]");
        assert_eq!(o.field::<String>("s").unwrap(), "x");
        assert!(o.field::<u64>("s").unwrap_err().contains("member `s`"));
        assert!(o
            .field::<u64>("zz")
            .unwrap_err()
            .contains("missing member `zz`"));
        assert!(Object::parse(r#"{"a": 1, "a": 2}"#).is_err());
        assert!(Object::parse("[1]").is_err());
    }
}
