//! Values from a newer QEMU that this schema does not know, kept as received.
//!
//! Each is opaque: only decoding (or an enum's `from_wire`, which maps known names to their
//! variants) creates one, so an `Other` value never stands for something the schema knows.
//! `RunState::from_wire("running")` is `RunState::Running`, and no `RunState::Other` holding
//! `"running"` can be built. The type parameter ties each value to the enum, union or event
//! type it was decoded as, so it cannot be moved into another one where its name is known.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use serde_json::{Map, Value};

/// An enum value this schema does not know, in the `Other` variant of enum `E`.
///
/// ```
/// use qmp_api::types::RunState;
///
/// let known = RunState::from_wire("running");
/// assert_eq!(known, RunState::Running);
/// let newer = RunState::from_wire("hibernating");
/// match &newer {
///     RunState::Other(value) => assert_eq!(value.as_str(), "hibernating"),
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(newer.to_string(), "hibernating");
/// ```
///
/// It cannot be built by hand, so no `Other` can stand for a known value:
///
/// ```compile_fail,E0451
/// use qmp_api::{types::RunState, UnknownValue};
/// let fake = RunState::Other(UnknownValue { wire: "running".into(), of: Default::default() });
/// ```
pub struct UnknownValue<E> {
    /// Only the generated `from_wire`, after matching every known name, sets these (a struct
    /// literal rather than a constructor: no function per enum to compile).
    pub(crate) wire: String,
    pub(crate) of: PhantomData<fn() -> E>,
}

impl<E> UnknownValue<E> {
    /// The value as received.
    pub fn as_str(&self) -> &str {
        &self.wire
    }
}

impl<E> Clone for UnknownValue<E> {
    fn clone(&self) -> Self {
        UnknownValue {
            wire: self.wire.clone(),
            of: PhantomData,
        }
    }
}

impl<E> PartialEq for UnknownValue<E> {
    fn eq(&self, other: &Self) -> bool {
        self.wire == other.wire
    }
}

impl<E> Eq for UnknownValue<E> {}

impl<E> PartialOrd for UnknownValue<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for UnknownValue<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.wire.cmp(&other.wire)
    }
}

impl<E> Hash for UnknownValue<E> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.wire.hash(state)
    }
}

impl<E> fmt::Debug for UnknownValue<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.wire, f)
    }
}

impl<E> fmt::Display for UnknownValue<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.wire)
    }
}

/// A union branch this schema does not know (a newer QEMU's discriminator value), in the
/// `Other` variant of the branch enum `U`: the discriminator value and every member of the
/// object, kept as JSON.
///
/// It is sent back unchanged when the union is serialized. To send a branch this schema does
/// not know, deserialize the union from JSON (`serde_json::from_value`): a known tag becomes
/// its typed branch, an unknown one this value.
///
/// ```
/// use qmp_api::types::{BlockdevOptions, BlockdevOptionsVariant};
///
/// let newer: BlockdevOptions =
///     serde_json::from_value(serde_json::json!({"driver": "quantum", "spin": 1}))?;
/// let BlockdevOptionsVariant::Other(unknown) = &newer.driver else { unreachable!() };
/// assert_eq!(unknown.tag(), "quantum");
/// assert_eq!(unknown.members()["spin"], 1);
/// // A known tag is always its typed branch.
/// let file: BlockdevOptions =
///     serde_json::from_value(serde_json::json!({"driver": "file", "filename": "/x"}))?;
/// assert!(matches!(file.driver, BlockdevOptionsVariant::File(_)));
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// Its fields are private, so it cannot be built by hand with a known tag:
///
/// ```compile_fail,E0451
/// use qmp_api::{types::BlockdevOptionsVariant, UnknownVariant};
/// let fake: UnknownVariant<BlockdevOptionsVariant> =
///     UnknownVariant { tag: "file".into(), members: Default::default(), of: Default::default() };
/// ```
pub struct UnknownVariant<U> {
    tag: String,
    members: Map<String, Value>,
    of: PhantomData<fn() -> U>,
}

impl<U> UnknownVariant<U> {
    /// Only the generated decoders create one, for a tag no branch matched. (Unused with a
    /// schema that has no unions.)
    #[allow(dead_code)]
    pub(crate) fn new(tag: String, members: Map<String, Value>) -> Self {
        UnknownVariant {
            tag,
            members,
            of: PhantomData,
        }
    }

    /// The discriminator value; empty when the object had none (a QEMU older than the
    /// discriminator member, e.g. QEMU 7.2's `query-sev` reply).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Whether the object had no discriminator at all.
    pub fn is_untagged(&self) -> bool {
        self.tag.is_empty()
    }

    /// The object's members (base members and the discriminator included).
    pub fn members(&self) -> &Map<String, Value> {
        &self.members
    }
}

impl<U> Clone for UnknownVariant<U> {
    fn clone(&self) -> Self {
        UnknownVariant {
            tag: self.tag.clone(),
            members: self.members.clone(),
            of: PhantomData,
        }
    }
}

impl<U> PartialEq for UnknownVariant<U> {
    fn eq(&self, other: &Self) -> bool {
        self.tag == other.tag && self.members == other.members
    }
}

impl<U> fmt::Debug for UnknownVariant<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnknownVariant")
            .field("tag", &self.tag)
            .field("members", &self.members)
            .finish()
    }
}

/// An event this schema does not know (a newer QEMU's, or a downstream build's), in
/// [`Event::Other`](crate::Event::Other): its name and data as received. Only
/// [`Event::from_raw`](crate::Event::from_raw) creates one, for a name no variant matched.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownEvent(qmp_core::Event);

impl UnknownEvent {
    pub(crate) fn new(raw: &qmp_core::Event) -> Self {
        UnknownEvent(raw.clone())
    }

    /// The event's QMP name.
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// The event as received (name, data, timestamp).
    pub fn raw(&self) -> &qmp_core::Event {
        &self.0
    }
}
