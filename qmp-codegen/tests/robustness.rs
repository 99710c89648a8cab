//! Bad input never panics, hangs or explodes: deterministic mutation runs over every front
//! end, and pathological sizes.

mod common;

use std::time::{Duration, Instant};

use common::TempTree;
use qmp_codegen::{load_introspection, normalized, parse_qapi, parse_qapi_str};
use serde_json::Value;

const SCHEMA: &str = "\
{ 'pragma': { 'doc-required': true, 'command-returns-exceptions': [ 'get-n' ] } }
##
# = Heading
##

##
# @Mode:
#
# @a: first (since 2.1)
#
# @b: second
#
# Since: 2.0
##
{ 'enum': 'Mode', 'data': [ 'a', { 'name': 'b', 'if': 'defined(X) && !defined(Y)' } ] }

##
# @Base:
#
# @mode: the mode
##
{ 'struct': 'Base', 'data': { 'mode': 'Mode', '*name': 'str' } }

##
# @Leaf:
##
{ 'struct': 'Leaf', 'base': 'Base', 'data': { 'list': [ 'int' ],
  'x': { 'type': 'str', 'if': { 'any': [ 'A', { 'not': 'B' } ] }, 'features': [ 'deprecated' ] } } }

##
# @Un:
##
{ 'union': 'Un', 'base': { 'kind': 'Mode' }, 'discriminator': 'kind', 'data': { 'a': 'Leaf', 'b': { 'type': 'Leaf', 'if': 'C' } } }

##
# @Simple:
##
{ 'union': 'Simple', 'data': { 'one': 'Leaf', 'two': [ 'str' ] } }

##
# @Alt:
##
{ 'alternate': 'Alt', 'data': { 's': 'str', 'o': 'Leaf', 'l': [ 'int' ] } }

##
# @get-n:
#
# Returns: a number
##
{ 'command': 'get-n', 'data': { '*alt': 'Alt' }, 'returns': 'int', 'allow-oob': true }

##
# @EVT:
##
{ 'event': 'EVT', 'data': 'Un', 'boxed': true }
";

/// A small deterministic pseudo-random generator (no dependency needed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

const INTERESTING: &[u8] = b"{}[]:,'\"#\\\n @*-_aZ09\t\x7f\xc3";

fn mutate(rng: &mut Lcg, src: &[u8]) -> Vec<u8> {
    let mut v = src.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(v.len() + 1);
        match rng.below(4) {
            0 if !v.is_empty() => {
                let end = (at + 1 + rng.below(8)).min(v.len());
                let at = at.min(end);
                v.drain(at..end);
            }
            1 => v.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            2 if at < v.len() => v[at] = INTERESTING[rng.below(INTERESTING.len())],
            _ => {
                let from = rng.below(v.len());
                let len = rng.below(16).min(v.len() - from.min(v.len()));
                let chunk: Vec<u8> = v[from..from + len].to_vec();
                let at = at.min(v.len());
                v.splice(at..at, chunk);
            }
        }
    }
    v
}

#[test]
fn the_base_schema_is_valid() {
    let s = parse_qapi_str("t.json", SCHEMA).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        s.counts().to_string(),
        "commands 1  events 1  structs 2  unions 2  alternates 1  enums 1"
    );
}

#[test]
fn qapi_source_mutations_never_panic() {
    let mut rng = Lcg(1);
    let start = Instant::now();
    let mut errors = 0;
    for _ in 0..3000 {
        let text = String::from_utf8_lossy(&mutate(&mut rng, SCHEMA.as_bytes())).into_owned();
        if let Err(e) = parse_qapi_str("t.json", &text) {
            errors += 1;
            let msg = e.to_string();
            assert!(
                msg.starts_with("t.json"),
                "every error names the file: {msg}"
            );
        }
    }
    assert!(errors > 1000, "most mutations must be caught ({errors})");
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn normalized_mutations_never_panic() {
    let s = parse_qapi_str("t.json", SCHEMA).unwrap_or_else(|e| panic!("{e}"));
    let text = normalized::to_string(&s);
    let mut rng = Lcg(2);
    for _ in 0..3000 {
        let m = String::from_utf8_lossy(&mutate(&mut rng, text.as_bytes())).into_owned();
        if let Err(e) = normalized::from_str("n.json", &m) {
            assert!(e.to_string().starts_with("n.json"), "{e}");
        }
    }
}

/// Every way of replacing one value of a JSON tree by a value of another kind.
fn replacements(v: &Value) -> Vec<Value> {
    let kinds = [
        Value::Null,
        Value::Bool(true),
        Value::from(7),
        Value::from("0"),
        Value::Array(vec![]),
        Value::Object(serde_json::Map::new()),
    ];
    let mut out = Vec::new();
    fn walk(root: &Value, path: &mut Vec<String>, kinds: &[Value], out: &mut Vec<Value>) {
        let node = path.iter().try_fold(root, |n, k| match n {
            Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
            Value::Object(o) => o.get(k),
            _ => None,
        });
        let Some(node) = node else { return };
        for k in kinds {
            if std::mem::discriminant(k) != std::mem::discriminant(node) {
                let mut copy = root.clone();
                let slot = path.iter().try_fold(&mut copy, |n, key| match n {
                    Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
                    Value::Object(o) => o.get_mut(key),
                    _ => None,
                });
                if let Some(slot) = slot {
                    *slot = k.clone();
                    out.push(copy);
                }
            }
        }
        let keys: Vec<String> = match node {
            Value::Array(a) => (0..a.len()).map(|i| i.to_string()).collect(),
            Value::Object(o) => o.keys().cloned().collect(),
            _ => Vec::new(),
        };
        for k in keys {
            path.push(k);
            walk(root, path, kinds, out);
            path.pop();
        }
    }
    walk(v, &mut Vec::new(), &kinds, &mut out);
    out
}

#[test]
fn introspection_type_confusion_never_panics() {
    let dump: Value = serde_json::json!([
        {"name": "q", "meta-type": "command", "arg-type": "0", "ret-type": "[1]", "allow-oob": true},
        {"name": "0", "meta-type": "object", "members": [{"name": "a", "type": "2", "default": null}, {"name": "b", "type": "3"}]},
        {"name": "[1]", "meta-type": "array", "element-type": "1"},
        {"name": "1", "meta-type": "object", "members": [{"name": "k", "type": "2"}],
         "tag": "k", "variants": [{"case": "x", "type": "4"}]},
        {"name": "4", "meta-type": "object", "members": [{"name": "v", "type": "str"}]},
        {"name": "2", "meta-type": "enum", "members": [{"name": "x", "features": ["deprecated"]}], "values": ["x"]},
        {"name": "3", "meta-type": "alternate", "members": [{"type": "str"}, {"type": "4"}]},
        {"name": "str", "meta-type": "builtin", "json-type": "string"},
        {"name": "E", "meta-type": "event", "arg-type": "0", "features": ["unstable"]}
    ]);
    load_introspection(&dump.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let variants = replacements(&dump);
    assert!(variants.len() > 300);
    for v in variants {
        let _ = load_introspection(&v.to_string());
    }
}

#[test]
fn normalized_type_confusion_never_panics() {
    let s = parse_qapi_str("t.json", SCHEMA).unwrap_or_else(|e| panic!("{e}"));
    let v: Value = serde_json::from_str(&normalized::to_string(&s)).expect("json");
    let variants = replacements(&v);
    assert!(variants.len() > 500, "{}", variants.len());
    for m in variants {
        let _ = normalized::from_value("n.json", &m);
    }
}

#[test]
fn long_base_chain_is_bounded() {
    // Iterative (no stack overflow) and bounded (flattening copies members per level).
    let mut text = String::from("{ 'struct': 'Sx0', 'data': { 'm0': 'int' } }\n");
    for i in 1..20000 {
        text.push_str(&format!(
            "{{ 'struct': 'Sx{i}', 'base': 'Sx{}', 'data': {{ 'm{i}': 'int' }} }}\n",
            i - 1
        ));
    }
    let start = Instant::now();
    let err = parse_qapi_str("t.json", &text).expect_err("too deep");
    assert!(
        err.to_string()
            .contains("base chain is deeper than 64 levels"),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    let ok: String = text.lines().take(60).map(|l| format!("{l}\n")).collect();
    let s = parse_qapi_str("t.json", &ok).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.struct_type("Sx59").map(|x| x.members.len()), Some(60));
}

#[test]
fn wide_and_deep_union_nesting_is_linear() {
    // U0 -> U1 -> ... with two branches per level: 2^40 paths, checked in linear time.
    let mut text = String::new();
    let levels = 40;
    for i in 0..levels {
        text.push_str(&format!("{{ 'enum': 'K{i}x', 'data': [ 'a', 'b' ] }}\n"));
        let next = if i + 1 < levels {
            format!("U{}x", i + 1)
        } else {
            "Leaf".into()
        };
        text.push_str(&format!(
            "{{ 'union': 'U{i}x', 'base': {{ 'k{i}': 'K{i}x' }}, 'discriminator': 'k{i}', 'data': {{ 'a': '{next}', 'b': '{next}' }} }}\n"
        ));
    }
    text.push_str("{ 'struct': 'Leaf', 'data': { 'v': 'int' } }\n");
    let start = Instant::now();
    parse_qapi_str("t.json", &text).unwrap_or_else(|e| panic!("{e}"));
    assert!(start.elapsed() < Duration::from_secs(5));
    // And a clash at the bottom is found from the top.
    let bad = text.replace("'data': { 'v': 'int' }", "'data': { 'k0': 'int' }");
    let err = parse_qapi_str("t.json", &bad).expect_err("clash");
    assert!(
        err.to_string()
            .contains("member 'k0' of 'Leaf' clashes with base member 'k0'"),
        "{err}"
    );
}

#[test]
fn union_branch_loop_is_reported() {
    let text = "{ 'enum': 'Ka', 'data': [ 'x' ] }\n{ 'enum': 'Kb', 'data': [ 'y' ] }\n\
                { 'union': 'Ua', 'base': { 'ka': 'Ka' }, 'discriminator': 'ka', 'data': { 'x': 'Ub' } }\n\
                { 'union': 'Ub', 'base': { 'kb': 'Kb' }, 'discriminator': 'kb', 'data': { 'y': 'Ua' } }\n";
    let err = parse_qapi_str("t.json", text).expect_err("loop");
    assert!(
        err.to_string()
            .contains("union branches loop back: Ua -> Ub -> Ua"),
        "{err}"
    );
}

#[test]
fn include_depth_is_bounded() {
    let mut files: Vec<(String, String)> = Vec::new();
    for i in 0..70 {
        files.push((
            format!("f{i}.json"),
            format!("{{ 'include': 'f{}.json' }}\n", i + 1),
        ));
    }
    files.push(("f70.json".into(), "{ 'enum': 'Deep', 'data': [] }\n".into()));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let t = TempTree::new(&refs);
    let err = parse_qapi(t.path("f0.json")).expect_err("too deep");
    assert!(
        err.to_string()
            .contains("includes nested deeper than 64 files"),
        "{err}"
    );
}

/// Inputs that are clearly not the schema meant get an error that says so, not an empty API.
#[test]
fn empty_and_truncated_inputs_are_errors_that_say_why() {
    for (name, text) in [
        ("empty.json", ""),
        ("blank.json", "  \n"),
        ("dump.json", "[]"),
        (
            "normalized.json",
            r#"{"format": "qmp-normalized-schema/1", "definitions": []}"#,
        ),
        ("comments-only.json", "# nothing here\n"),
    ] {
        let err = qmp_codegen::load_str(name, text).unwrap_err().to_string();
        assert!(
            err.starts_with(name) && err.contains("defines nothing"),
            "{name}: {err}"
        );
    }
    let err = qmp_codegen::load_str("cut.json", r#"[{"name": "query-status", "meta-"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated"), "{err}");
    assert_eq!(err.matches("column").count(), 1, "{err}");
}
