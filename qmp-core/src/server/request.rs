//! Checking a request the way QEMU does, with QEMU's words.
//!
//! QEMU stores JSON objects in hash tables and checks their members in table order, not in the
//! order the client wrote them: with several faults in one request, the one QEMU reports
//! depends on the member names. To report the same fault, the checks here walk members in the
//! same order: a `QDict`'s (512 buckets, the `tdb` hash, newest first within a bucket) for the
//! request envelope, and GLib's `GHashTable`'s for the arguments of `qmp_capabilities`.

use super::reader::Json;

/// Errors the checks produce: class and description.
pub(crate) struct Refusal {
    pub(crate) class: &'static str,
    pub(crate) desc: String,
}

impl Refusal {
    pub(crate) fn generic(desc: impl Into<String>) -> Refusal {
        Refusal {
            class: "GenericError",
            desc: desc.into(),
        }
    }

    pub(crate) fn command_not_found(desc: impl Into<String>) -> Refusal {
        Refusal {
            class: "CommandNotFound",
            desc: desc.into(),
        }
    }
}

/// A request that passed the envelope checks.
pub(crate) struct Envelope<'a> {
    pub(crate) command: &'a str,
    pub(crate) oob: bool,
    pub(crate) arguments: Option<&'a [(String, Json)]>,
}

/// The key bytes as QEMU stores them: modified UTF-8, where U+0000 is `\xC0\x80`.
fn stored_bytes(key: &str) -> std::borrow::Cow<'_, [u8]> {
    if key.contains('\0') {
        let mut v = Vec::with_capacity(key.len() + 1);
        for b in key.bytes() {
            if b == 0 {
                v.extend_from_slice(&[0xC0, 0x80]);
            } else {
                v.push(b);
            }
        }
        v.into()
    } else {
        key.as_bytes().into()
    }
}

/// QEMU's `tdb_hash`.
fn tdb_hash(key: &[u8]) -> u32 {
    let mut value = 0x238F_13AFu32.wrapping_mul(key.len() as u32);
    for (i, &b) in key.iter().enumerate() {
        value = value.wrapping_add(u32::from(b) << ((i * 5) % 24));
    }
    1_103_515_243u32.wrapping_mul(value).wrapping_add(12345)
}

/// Indices of `members` in the order QEMU's `qdict_first`/`qdict_next` visit them.
pub(crate) fn qdict_order(members: &[(String, Json)]) -> Vec<usize> {
    let mut order: Vec<(u32, std::cmp::Reverse<usize>)> = members
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (tdb_hash(&stored_bytes(k)) % 512, std::cmp::Reverse(i)))
        .collect();
    order.sort_unstable();
    order
        .into_iter()
        .map(|(_, std::cmp::Reverse(i))| i)
        .collect()
}

/// Checks the envelope (`qmp_dispatch_check_obj`): `execute` (or `exec-oob`, when allowed),
/// `arguments`, `id`, nothing else.
pub(crate) fn check_envelope(request: &Json, allow_oob: bool) -> Result<Envelope<'_>, Refusal> {
    let Json::Object(members) = request else {
        return Err(Refusal::generic("QMP input must be a JSON object"));
    };
    let mut exec: Option<&str> = None;
    for i in qdict_order(members) {
        let (name, value) = &members[i];
        match name.as_str() {
            "execute" | "exec-oob" if name == "execute" || allow_oob => {
                if !matches!(value, Json::String(_)) {
                    return Err(Refusal::generic(format!(
                        "QMP input member '{name}' must be a string"
                    )));
                }
                if let Some(first) = exec {
                    return Err(Refusal::generic(format!(
                        "QMP input member '{name}' clashes with '{first}'"
                    )));
                }
                exec = Some(name);
            }
            "arguments" => {
                if !matches!(value, Json::Object(_)) {
                    return Err(Refusal::generic(
                        "QMP input member 'arguments' must be an object",
                    ));
                }
            }
            "id" => {}
            other => {
                return Err(Refusal::generic(format!(
                    "QMP input member '{other}' is unexpected"
                )))
            }
        }
    }
    let Some(key) = exec else {
        return Err(Refusal::generic("QMP input lacks member 'execute'"));
    };
    let command = match request.get(key) {
        Some(Json::String(s)) => s.as_str(),
        _ => "",
    };
    let arguments = match request.get("arguments") {
        Some(Json::Object(members)) => Some(members.as_slice()),
        _ => None,
    };
    Ok(Envelope {
        command,
        oob: key == "exec-oob",
        arguments,
    })
}

/// Checks the arguments of `qmp_capabilities` as QEMU's generated code does (the `enable` list
/// first, then members nobody asked for) and returns the capability names asked for.
/// `known` says whether a name is a value of QEMU's `QMPCapability` enum.
pub(crate) fn capabilities_arguments(
    arguments: Option<&[(String, Json)]>,
    known: impl Fn(&str) -> bool,
) -> Result<Vec<String>, Refusal> {
    let members = arguments.unwrap_or(&[]);
    let mut enable = Vec::new();
    if let Some((_, list)) = members.iter().find(|(k, _)| k == "enable") {
        let Json::Array(items) = list else {
            return Err(Refusal::generic(
                "Invalid parameter type for 'enable', expected: array",
            ));
        };
        for (i, item) in items.iter().enumerate() {
            let Json::String(name) = item else {
                return Err(Refusal::generic(format!(
                    "Invalid parameter type for 'enable[{i}]', expected: string"
                )));
            };
            if !known(name) {
                // QEMU names the list element `null` in this message.
                return Err(Refusal::generic(format!(
                    "Parameter 'null' does not accept value '{name}'"
                )));
            }
            enable.push(name.clone());
        }
    }
    let unexpected: Vec<&str> = qdict_order(members)
        .into_iter()
        .map(|i| members[i].0.as_str())
        .collect();
    if let Some(first) = ghash_first(&unexpected, "enable") {
        return Err(Refusal::generic(format!(
            "Parameter '{first}' is unexpected"
        )));
    }
    Ok(enable)
}

/// GLib's `g_str_hash` (djb2 over signed chars).
fn g_str_hash(key: &[u8]) -> u32 {
    key.iter().fold(5381u32, |h, &b| {
        (h << 5).wrapping_add(h).wrapping_add(b as i8 as i32 as u32)
    })
}

/// The first key a `GHashTable` filled with `keys` (in this order) yields once `visited` was
/// removed, as QEMU's input visitor reports unexpected members. Tables of up to 7 keys are
/// exact (GLib's 8-slot table, `(hash * 11) % 7`, quadratic probing); larger ones use the size
/// GLib grows to and are close.
fn ghash_first<'a>(keys: &[&'a str], visited: &str) -> Option<&'a str> {
    if keys.iter().all(|k| *k == visited) {
        return None;
    }
    const PRIMES: [u32; 16] = [
        1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749,
    ];
    let mut shift = 3usize;
    while keys.len() + keys.len() / 16 >= 1 << shift && shift < 15 {
        shift += 1;
    }
    let size = 1usize << shift;
    let modulo = PRIMES[shift];
    let mut slots: Vec<Option<(&str, bool)>> = vec![None; size];
    for &key in keys {
        let hash = g_str_hash(&stored_bytes(key)).max(2);
        let mut index = (hash.wrapping_mul(11) % modulo) as usize;
        let mut step = 0;
        while slots[index].is_some() {
            step += 1;
            index = (index + step) & (size - 1);
        }
        slots[index] = Some((key, key == visited));
    }
    slots
        .into_iter()
        .flatten()
        .find(|(_, removed)| !removed)
        .map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(keys: &[&str]) -> Json {
        Json::Object(
            keys.iter()
                .map(|k| (k.to_string(), Json::Number("1".into(), 1.into())))
                .collect(),
        )
    }

    #[test]
    fn qdict_order_matches_qemus_replies() {
        // QEMU's own replies show its order: `{"return", "id"}`, `{"id", "error"}`, and the
        // greeting's `{"micro", "minor", "major"}` (one bucket, newest first).
        fn names<'a>(keys: &[&'a str]) -> Vec<&'a str> {
            let Json::Object(m) = obj(keys) else {
                unreachable!()
            };
            qdict_order(&m).into_iter().map(|i| keys[i]).collect()
        }
        assert_eq!(names(&["id", "return"]), ["return", "id"]);
        assert_eq!(names(&["error", "id"]), ["id", "error"]);
        assert_eq!(
            names(&["major", "minor", "micro"]),
            ["micro", "minor", "major"]
        );
        assert_eq!(
            names(&["data", "event", "timestamp"]),
            ["timestamp", "event", "data"]
        );
    }

    #[test]
    fn ghash_order_matches_qemu() {
        // QEMU 10.0.2 reports 'b' for {"a":1,"b":2,"c":3}.
        assert_eq!(ghash_first(&["a", "b", "c"], "enable"), Some("b"));
        assert_eq!(ghash_first(&["enable"], "enable"), None);
    }
}
