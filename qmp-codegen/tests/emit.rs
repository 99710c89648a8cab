//! The emitter: golden output for an edge-case schema, determinism, and clash errors.
//!
//! Golden files live in `tests/golden/edge-cases/`. When the emitter changes on purpose,
//! regenerate them with `QMP_CODEGEN_BLESS=1 cargo test -p qmp-codegen --test emit`, then review
//! the diff.

mod common;

use std::path::PathBuf;

use qmp_codegen::emit::{generate, EmitError, GeneratedFile, Options};
use qmp_codegen::{load_path, parse_qapi_str};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn edge_files() -> Vec<GeneratedFile> {
    let schema = load_path(golden_dir().join("edge-cases.json")).expect("edge-case schema loads");
    generate(&schema, &Options::default()).expect("edge-case schema generates")
}

#[test]
fn edge_cases_match_golden_files() {
    let dir = golden_dir().join("edge-cases");
    let bless = std::env::var_os("QMP_CODEGEN_BLESS").is_some();
    let mut stale = Vec::new();
    for f in edge_files() {
        let path = dir.join(&f.name);
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &f.contents).unwrap();
            continue;
        }
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        if old != f.contents {
            stale.push(f.name.clone());
        }
    }
    assert!(
        stale.is_empty(),
        "generated code differs from the golden files {stale:?}; if intended, rerun with QMP_CODEGEN_BLESS=1 and review the diff"
    );
}

#[test]
fn edge_case_output_has_the_promised_shapes() {
    let files = edge_files();
    let get = |n: &str| files.iter().find(|f| f.name == n).unwrap().contents.clone();
    let types = get("types.rs");
    let commands = get("commands.rs");
    let events = get("events.rs");
    // Keywords and capitals as fields, wire names kept.
    assert!(types.contains("pub r#type: String,"), "{types}");
    assert!(types.contains("pub self_: bool,"));
    assert!(types.contains(r#"crate::__private::entry!(__map, "CPU", self.cpu);"#));
    assert!(types.contains(r#""CPU" => crate::__private::member!(__map, cpu),"#));
    // Digits and the catch-all rule for enum values; unknown values are opaque.
    assert!(types.contains("V2nd,"));
    assert!(types.contains("OtherValue,"));
    assert!(types.contains("Other(crate::UnknownValue<Color>),"));
    assert!(types.contains("Self::Other(crate::__private::unknown_value(other))"));
    // Optional in Rust: added later, conditional, deprecated.
    assert!(types.contains("pub later: Option<u64>,"));
    assert!(types.contains("pub cond: Option<f64>,"));
    assert!(types.contains("#[deprecated(note = \"deprecated in the QEMU schema\")]"));
    // Recursion broken by boxes at the right place.
    assert!(types.contains("pub left: Option<Box<crate::types::Tree>>,"));
    assert!(types.contains("Definition(Box<crate::types::Node>),"));
    // Unions: branch enum, unit variant for a value without branch, unknown branches kept
    // (opaque, tied to their union).
    assert!(types.contains("pub enum ShapeVariant {"));
    assert!(types.contains("    Point,\n"));
    assert!(types.contains("Other(crate::UnknownVariant<ShapeVariant>),"));
    // One submodule per QAPI module, re-exported flat.
    assert!(types.contains("pub mod edge_cases {"));
    assert!(types.contains("pub use edge_cases::*;"));
    assert!(types.contains("pub mod edge_cases_control {"));
    assert!(types.contains("pub use edge_cases_control::*;"));
    // Commands: unit args, required params, setters on the call type, union argument taken
    // whole, gen: false, no reply, oob, fds.
    assert!(commands.contains("pub struct QueryThings {"));
    assert!(commands.contains("pub struct QueryThingsCall(crate::Call<QueryThings>);"));
    assert!(commands.contains("crate::__qmp_call_type!(QueryThingsCall, QueryThings);"));
    assert!(commands.contains("pub fn set_thing("));
    assert!(commands.contains("r#type: impl Into<crate::types::Color>"));
    assert!(commands.contains("node: impl Into<crate::types::Node>,"));
    assert!(commands.contains("pub fn arg("));
    assert!(commands.contains("const SUCCESS_REPLY: bool = false;"));
    assert!(commands.contains("const ALLOW_OOB: bool = true;"));
    assert!(commands.contains("crate::__qmp_call_type!(PauseNowCall, PauseNow, oob);"));
    assert!(commands.contains("crate::__qmp_call_type!(GetfdCall, Getfd, fd);"));
    assert!(commands.contains("type Output = i64;"));
    assert!(commands.contains("type Output = ::serde_json::Value;"));
    // A struct that has the command's name is the command type, boxed or not; its optional
    // members are setters like any other; a member named like a call setting gets `_arg`.
    assert!(commands.contains("pub use crate::types::SetSpeed;"));
    assert!(commands.contains("impl crate::Command for SetSpeed {"));
    assert!(commands.contains("pub fn speed(mut self, value: i64) -> Self {"));
    assert!(commands.contains("pub fn timeout_arg(mut self, value: i64) -> Self {"));
    assert!(
        !commands.contains("pub struct SetSpeed {") && !commands.contains("pub struct SetSpeed(")
    );
    assert!(commands.contains("pub fn add_tree(&self, name: impl Into<String>)"));
    // qmp_capabilities: a command type, but no method and no call type.
    assert!(commands.contains("pub struct QmpCapabilities {"));
    assert!(!commands.contains("fn qmp_capabilities("));
    assert!(!commands.contains("QmpCapabilitiesCall"));
    // Methods grouped by QAPI module, with a heading each.
    assert!(commands.contains("/// # Commands of the QAPI module `edge-cases`"));
    assert!(commands.contains("/// # Commands of the QAPI module `edge-cases-control`"));
    let docs = get("commands.md");
    assert!(docs.contains("## `edge-cases-control`"));
    assert!(docs.contains("| `qmp_capabilities` | (negotiated by the transport) |"));
    // Events: data struct, unit variant, named-type variant, fallback.
    assert!(events.contains("ThingChanged(ThingChanged),"));
    assert!(events.contains("    Stopped,\n"));
    assert!(events.contains("NodeAdded(crate::types::Node),"));
    assert!(events.contains("Other(crate::UnknownEvent),"));
}

/// Issue 11: what makes values read like their JSON, on the edge-case schema.
#[test]
fn edge_case_values_get_setters_and_conversions() {
    let files = edge_files();
    let types = &files
        .iter()
        .find(|f| f.name == "types.rs")
        .unwrap()
        .contents;
    // Setters for optional members, inherent and inline (nothing to compile until used).
    assert!(types.contains("#[inline]\n        pub fn speed(mut self, value: i64) -> Self {"));
    // A union's variant prints its tag.
    assert!(types.contains("impl ::core::fmt::Display for ShapeVariant {"));
    // Alternates convert from each branch type, and from `&str` for a string branch.
    assert!(types.contains("impl ::core::convert::From<&str> for"));
}

#[test]
fn every_item_links_to_its_entry_in_qemus_reference_and_carries_its_wire_name() {
    let files = edge_files();
    let get = |n: &str| files.iter().find(|f| f.name == n).unwrap().contents.clone();
    let (types, commands, events) = (get("types.rs"), get("commands.rs"), get("events.rs"));
    let page = "https://www.qemu.org/docs/master/interop/qemu-qmp-ref.html";
    for (text, anchor) in [
        (&types, "#enum-QMP-edge-cases.Color"),
        (&types, "#object-QMP-edge-cases.Keywords"),
        (&types, "#object-QMP-edge-cases.Shape"),
        (&types, "#alternate-QMP-edge-cases.Value"),
        (&types, "#object-QMP-edge-cases-control.SetSpeed"),
        (&types, "#module-QMP-edge-cases-control"),
        (&commands, "#command-QMP-edge-cases.query-things"),
        (&commands, "#command-QMP-edge-cases-control.getfd"),
        (&events, "#event-QMP-edge-cases.THING_CHANGED"),
        (&events, "#event-QMP-edge-cases-control.SPEED_SET"),
    ] {
        assert!(
            text.contains(&format!("({page}{anchor})")),
            "{anchor} missing"
        );
    }
    // Members link to their owner's entry.
    let member = types
        .split("pub struct Keywords {")
        .nth(1)
        .and_then(|s| s.split("pub r#type").next())
        .unwrap();
    assert!(
        member.contains(&format!("({page}#object-QMP-edge-cases.Keywords)")),
        "{member}"
    );
    // Wire names as search aliases where the Rust name differs, never where it is the same.
    assert!(commands.contains("#[doc(alias = \"query-things\")]"));
    assert!(events.contains("#[doc(alias = \"THING_CHANGED\")]"));
    assert!(types.contains("#[doc(alias = \"opt-list\")]"));
    assert!(!types.contains("#[doc(alias = \"Keywords\")]"));
    // The storage daemon and the guest agent have manuals of their own.
    for (schema, page, anchor) in [
        (
            "qemu-storage-daemon-10.0.13.json",
            "qemu-storage-daemon-qmp-ref.html",
            "#command-QSD-block-core.blockdev-add",
        ),
        (
            "qga-10.0.13.json",
            "qemu-ga-ref.html",
            "#command-QGA-qapi-schema.guest-sync",
        ),
        (
            "qemu-10.0.13.json",
            "qemu-qmp-ref.html",
            "#command-QMP-block-core.blockdev-add",
        ),
    ] {
        let schema = load_path(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../schema")
                .join(schema),
        )
        .unwrap();
        let files = generate(&schema, &Options::default()).unwrap();
        let commands = &files
            .iter()
            .find(|f| f.name == "commands.rs")
            .unwrap()
            .contents;
        let url = format!("https://www.qemu.org/docs/master/interop/{page}{anchor}");
        assert!(commands.contains(&url), "{url}");
    }
}

#[test]
fn generation_is_deterministic() {
    assert_eq!(edge_files(), edge_files());
    let Some(shared) = common::shared_dir(module_path!()) else {
        return;
    };
    let schema = load_path(shared.join("qapi/qemu-10.0.13/qapi/qapi-schema.json")).unwrap();
    let a = generate(&schema, &Options::default()).unwrap();
    let b = generate(&schema, &Options::default()).unwrap();
    assert_eq!(a, b);
    // The normalized schema gives the same code minus the prose.
    let normalized =
        load_path(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema/qemu-10.0.13.json"))
            .unwrap();
    let no_prose = Options {
        prose: false,
        ..Options::default()
    };
    let from_source = generate(&schema, &no_prose).unwrap();
    let from_normalized = generate(&normalized, &no_prose).unwrap();
    for (x, y) in from_source.iter().zip(&from_normalized) {
        assert_eq!(
            x.contents, y.contents,
            "{} differs between source and normalized input",
            x.name
        );
    }
}

#[test]
fn every_corpus_schema_generates() {
    let Some(shared) = common::shared_dir(module_path!()) else {
        return;
    };
    let qapi = shared.join("qapi");
    let mut roots = Vec::new();
    for entry in std::fs::read_dir(&qapi).unwrap() {
        let dir = entry.unwrap().path();
        for rel in [
            "qapi/qapi-schema.json",
            "storage-daemon/qapi/qapi-schema.json",
            "qapi-schema.json",
        ] {
            let p = dir.join(rel);
            if p.is_file() {
                roots.push(p);
            }
        }
    }
    roots.sort();
    assert!(roots.len() >= 46, "{roots:?}");
    // Spread over the cores: generation in a debug build takes a while per schema.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunks: Vec<Vec<PathBuf>> = (0..workers)
        .map(|w| roots.iter().skip(w).step_by(workers).cloned().collect())
        .collect();
    std::thread::scope(|scope| {
        for chunk in &chunks {
            scope.spawn(move || {
                for root in chunk {
                    let schema = load_path(root).unwrap();
                    let files = generate(&schema, &Options::default())
                        .unwrap_or_else(|e| panic!("{}: {e}", root.display()));
                    assert_eq!(files.len(), 6);
                }
            });
        }
    });
}

#[test]
fn name_clashes_are_reported_with_both_names() {
    let schema = parse_qapi_str(
        "clash.json",
        "{ 'pragma': { 'member-name-exceptions': [ 'Foo' ] } }\n{ 'struct': 'Foo', 'data': { 'a-b': 'str', 'aB': 'int' } }",
    )
    .unwrap();
    match generate(&schema, &Options::default()) {
        Err(EmitError::Clash {
            rust,
            first,
            second,
            ..
        }) => {
            assert_eq!(rust, "a_b");
            assert_eq!((first.as_str(), second.as_str()), ("a-b", "aB"));
        }
        other => panic!("{other:?}"),
    }

    let schema = parse_qapi_str(
        "clash2.json",
        "{ 'pragma': { 'member-name-exceptions': [ 'Mode' ] } }\n{ 'enum': 'Mode', 'data': [ 'fast-mode', 'fastMode' ] }",
    )
    .unwrap();
    let err = generate(&schema, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`fast-mode` and `fastMode` would both be named `FastMode`"),
        "{err}"
    );

    let schema = parse_qapi_str(
        "clash3.json",
        "{ 'struct': 'Disk', 'data': {} }\n{ 'union': 'Blk', 'base': { 'k': 'K' }, 'discriminator': 'k', 'data': {} }\n{ 'enum': 'K', 'data': ['a'] }\n{ 'struct': 'BlkVariant', 'data': {} }",
    );
    if let Ok(schema) = schema {
        let err = generate(&schema, &Options::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("BlkVariant"), "{err}");
    }
}

#[test]
fn prose_becomes_rustdoc_without_doctests() {
    let schema = parse_qapi_str(
        "doc.json",
        r#"
##
# @resize:
#
# Resize @device. See [1].
#
# .. qmp-example::
#
#    -> { "execute": "resize" }
#    <- { "return": {} }
#
# @device: the device
#
# Since: 2.0
##
{ 'command': 'resize', 'data': { 'device': 'str' } }
"#,
    )
    .unwrap();
    let files = generate(&schema, &Options::default()).unwrap();
    let commands = &files
        .iter()
        .find(|f| f.name == "commands.rs")
        .unwrap()
        .contents;
    assert!(
        commands.contains("/// Resize `device`. See \\[1\\]."),
        "{commands}"
    );
    assert!(commands.contains("/// ```text"), "{commands}");
    assert!(commands.contains("/// Since QEMU 2.0."));
    let quiet = generate(
        &schema,
        &Options {
            prose: false,
            ..Options::default()
        },
    )
    .unwrap();
    let commands = &quiet
        .iter()
        .find(|f| f.name == "commands.rs")
        .unwrap()
        .contents;
    assert!(!commands.contains("Resize `device`"));
}

/// `Options::decode_arguments_feature` gates `Deserialize` on exactly the types QEMU never
/// sends (structs, unions and alternates reached only from arguments), says so in their docs,
/// and leaves everything else (and the default output) alone.
#[test]
fn decode_arguments_feature_gates_only_the_types_qemu_never_sends() {
    let schema = parse_qapi_str(
        "gate.json",
        r#"
        { 'enum': 'Kind', 'data': [ 'a', 'b' ] }
        { 'struct': 'Opts', 'data': { 'size': 'int' } }
        { 'struct': 'KindB', 'data': { 'n': 'int' } }
        { 'union': 'Target', 'base': { 'kind': 'Kind' }, 'discriminator': 'kind',
          'data': { 'a': 'Opts', 'b': 'KindB' } }
        { 'alternate': 'Ref', 'data': { 'def': 'Opts', 'name': 'str' } }
        { 'struct': 'Both', 'data': { 'on': 'bool' } }
        { 'struct': 'Status', 'data': { 'running': 'bool', 'both': 'Both' } }
        { 'command': 'resize', 'data': { 'target': 'Target', 'ref': 'Ref', 'both': 'Both' } }
        { 'command': 'query-status', 'returns': 'Status' }
        "#,
    )
    .expect("schema parses");
    let types = |opts: &Options| {
        generate(&schema, opts)
            .expect("generates")
            .into_iter()
            .find(|f| f.name == "types.rs")
            .expect("types.rs")
            .contents
    };
    // The line before each `Deserialize` impl, by type.
    let gates = |text: &str| -> Vec<(String, bool)> {
        let lines: Vec<&str> = text.lines().collect();
        lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                let ty = l
                    .trim()
                    .strip_prefix("impl<'de> ::serde::Deserialize<'de> for ")?
                    .trim_end_matches(" {");
                let gated =
                    i > 0 && lines[i - 1].trim() == "#[cfg(feature = \"decode-arguments\")]";
                Some((ty.to_string(), gated))
            })
            .collect()
    };
    let default = types(&Options::default());
    assert!(
        !default.contains("#[cfg(feature"),
        "default output gates something"
    );
    let gated = types(&Options {
        decode_arguments_feature: Some("decode-arguments".into()),
        ..Options::default()
    });
    let mut found = gates(&gated);
    found.sort();
    let expected: Vec<(String, bool)> = [
        // `Target`'s private base struct: inside `Target`'s gated impl.
        ("Base", false),
        ("Both", false),
        ("KindB", true),
        ("Opts", true),
        ("Ref", true),
        ("Status", false),
        ("Target", true),
    ]
    .iter()
    .map(|(t, g)| (t.to_string(), *g))
    .collect();
    assert_eq!(found, expected);
    // Enums keep their impls (from the runtime macro) whatever the feature.
    assert_eq!(
        default.matches("__qapi_enum_impls!(Kind)").count(),
        gated.matches("__qapi_enum_impls!(Kind)").count()
    );
    let note = "implements `Deserialize` only with the crate feature `decode-arguments`";
    assert_eq!(gated.matches(note).count(), 4, "one note per gated type");
    // Nothing else changes: without the gates and the notes (and blank doc lines), the two
    // outputs have the same lines.
    let strip = |t: &str| {
        t.lines()
            .filter(|l| !l.contains("decode-arguments") && !l.contains("QEMU never sends this"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let rest = |t: &str| -> Vec<String> {
        strip(t)
            .lines()
            .filter(|l| l.trim() != "///")
            .map(str::to_string)
            .collect()
    };
    assert_eq!(rest(&gated), rest(&default));
}
