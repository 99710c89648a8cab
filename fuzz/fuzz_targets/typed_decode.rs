//! The fuzz input is JSON decoded into the typed API's types (unions, alternates, enums, and
//! legacy simple unions), or an event decoded with `Event::from_raw`.
//!
//! Input layout: `[selector, json...]`; selector % 12 picks the type. For the event (5) the
//! rest is `NAME\nDATA-JSON` (no newline: an event without data).
//!
//! Besides "no panic", two documented properties are checked:
//! - `DecodeError::decode` (what `execute_as` and `Event::data` use) accepts exactly what
//!   `serde_json` accepts;
//! - a decoded value serializes to JSON that decodes again, and after that first encoding the
//!   value is stable ("the wire name is always kept", unknown enum values and union branches
//!   are kept; unknown object members are ignored, so the first encoding may drop some).
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use qmp_api::types::{
    BlockDeviceInfo, BlockInfo, BlockdevCreateOptions, BlockdevOptions, BlockdevRef,
    BlockdevRefOrNull, ChardevBackend, SchemaInfo, SocketAddressLegacy, StatusInfo, StrOrNull,
    TransactionAction,
};
use qmp_core::{DecodeError, Event, Timestamp};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, json)) = data.split_first() else {
        return;
    };
    match selector % 12 {
        0 => check::<Vec<SchemaInfo>>(json),
        1 => check::<BlockdevOptions>(json),
        2 => check::<BlockdevRef>(json),
        3 => check::<Vec<BlockInfo>>(json),
        4 => check::<StatusInfo>(json),
        5 => event(json),
        6 => check::<BlockdevCreateOptions>(json),
        7 => check::<ChardevBackend>(json),
        8 => check::<SocketAddressLegacy>(json),
        9 => check::<Vec<BlockDeviceInfo>>(json),
        10 => check::<Vec<TransactionAction>>(json),
        _ => {
            check::<BlockdevRefOrNull>(json);
            check::<Vec<StrOrNull>>(json);
        }
    }
});

fn check<T: DeserializeOwned + Serialize + PartialEq + Debug>(json: &[u8]) {
    let direct = serde_json::from_slice::<T>(json);
    if let Ok(text) = std::str::from_utf8(json) {
        let via_api = DecodeError::decode::<T>("fuzz", text);
        if let Err(e) = &via_api {
            let _ = e.to_string();
        }
        assert_eq!(
            direct.is_ok(),
            via_api.is_ok(),
            "contract (DecodeError::decode): disagrees with serde_json ({:?} vs {:?})",
            direct.as_ref().err(),
            via_api.as_ref().err()
        );
    }
    let Ok(first) = direct else {
        return;
    };
    // Unknown members are ignored by design (so the first encoding may drop some, e.g. inside
    // a base member of an unknown union branch); from the first encoding on, the value must be
    // stable: decode(encode(v)) == v.
    let second: T = round_trip(&first, &first);
    let third: T = round_trip(&second, &first);
    assert!(
        third == second,
        "round trip: decoding the serialized value gives a different value\n\
         input:  {first:?}\nsecond: {second:?}\nthird:  {third:?}"
    );
}

/// Encodes `value` and decodes it again; both must succeed.
fn round_trip<T: DeserializeOwned + Serialize + Debug>(value: &T, input: &T) -> T {
    let text = match serde_json::to_string(value) {
        Ok(t) => t,
        Err(e) => panic!("round trip: a decoded value does not serialize: {e}\n{input:?}"),
    };
    match serde_json::from_str::<T>(&text) {
        Ok(v) => v,
        Err(e) => panic!(
            "round trip: the serialized value does not decode: {e}\nJSON: {text}\ninput: {input:?}"
        ),
    }
}

fn event(rest: &[u8]) {
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (name, data) = match text.split_once('\n') {
        Some((name, json)) => match serde_json::from_str::<Value>(json) {
            Ok(v) => (name, Some(v)),
            Err(_) => return,
        },
        None => (text, None),
    };
    let ev = Event::new(name, data, Timestamp::UNKNOWN);
    let _ = ev.data_value();
    let _ = ev.data::<Value>();
    match qmp_api::Event::from_raw(&ev) {
        Ok(typed) => {
            let _ = typed.name();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
