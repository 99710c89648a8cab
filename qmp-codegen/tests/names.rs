//! Issue 10: no name is defined twice across the public modules of the generated API
//! (`types`, `commands`, `events` and the crate root, which users glob-import together), for
//! every schema in the corpus; and clashes that remain are errors naming both QAPI names.
//! Only the plan runs (no code is emitted, no rustc), so the whole corpus takes seconds.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use qmp_codegen::emit::{public_names, EmitError, PublicName};
use qmp_codegen::{load_path, parse_qapi_str};

fn corpus_roots(shared: &std::path::Path) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    for entry in std::fs::read_dir(shared.join("qapi")).unwrap() {
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
    roots
}

fn by_name(names: &[PublicName]) -> BTreeMap<&str, Vec<&PublicName>> {
    let mut map: BTreeMap<&str, Vec<&PublicName>> = BTreeMap::new();
    for n in names {
        map.entry(n.rust.as_str()).or_default().push(n);
    }
    map
}

#[test]
fn every_corpus_schema_has_one_item_per_public_name() {
    let Some(shared) = common::shared_dir(module_path!()) else {
        return;
    };
    let roots = corpus_roots(&shared);
    assert!(roots.len() >= 46, "{roots:?}");
    for root in roots {
        let schema = load_path(&root).unwrap();
        let names = public_names(&schema).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
        for (rust, items) in by_name(&names) {
            assert_eq!(items.len(), 1, "{}: `{rust}` is {items:?}", root.display());
        }
        // Every command has a command type; every one with a method has a call type.
        for c in schema.commands() {
            let what = format!("command {}", c.name);
            let ty = names.iter().find(|n| {
                n.what == what
                    || n.item
                        .ends_with(&format!("::{}", qmp_codegen::ident::variant_name(&c.name)))
            });
            assert!(ty.is_some(), "{}: no type for {}", root.display(), c.name);
            if c.name != "qmp_capabilities" {
                let call = qmp_codegen::ident::call_type_name(&c.name);
                assert!(
                    names.iter().any(|n| n.rust == call),
                    "{}: no call type {call}",
                    root.display()
                );
            }
        }
    }
}

#[test]
fn the_eight_formerly_colliding_names_are_one_item_each() {
    let schema =
        load_path(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema/qemu-10.0.13.json"))
            .unwrap();
    let names = public_names(&schema).unwrap();
    let map = by_name(&names);
    for name in [
        "BlockdevBackup",
        "BlockdevSnapshot",
        "BlockdevSnapshotSync",
        "BlockDirtyBitmapAdd",
        "BlockDirtyBitmapMerge",
        "DriveBackup",
        "DriveMirror",
        "MigrateSetParameters",
    ] {
        let items = &map[name];
        assert_eq!(items.len(), 1, "{name}: {items:?}");
        assert_eq!(items[0].item, format!("types::{name}"), "{name}");
        assert!(
            map.contains_key(format!("{name}Call").as_str()),
            "{name}Call"
        );
    }
}

#[test]
fn a_command_named_like_an_unrelated_type_yields_to_the_type() {
    // The guest agent's `guest-file-read` returns a `GuestFileRead`.
    let schema =
        load_path(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema/qga-10.0.13.json"))
            .unwrap();
    let map_owned = public_names(&schema).unwrap();
    let map = by_name(&map_owned);
    assert_eq!(map["GuestFileRead"][0].item, "types::GuestFileRead");
    assert_eq!(
        map["GuestFileReadCommand"][0].item,
        "commands::GuestFileReadCommand"
    );
    assert_eq!(
        map["GuestFileReadCall"][0].item,
        "commands::GuestFileReadCall"
    );
}

#[test]
fn remaining_clashes_are_errors_naming_both_qapi_names() {
    let cases = [
        (
            "{ 'struct': 'PingCall', 'data': {} }\n{ 'command': 'ping' }",
            "PingCall",
            "struct PingCall",
            "the call type of command ping",
        ),
        (
            "{ 'struct': 'Qmp', 'data': {} }",
            "Qmp",
            "qmp_api's own `Qmp`",
            "struct Qmp",
        ),
        (
            "{ 'enum': 'JobDone', 'data': ['a'] }\n{ 'event': 'JOB_DONE', 'data': { 'id': 'str' } }",
            "JobDone",
            "enum JobDone",
            "event JOB_DONE",
        ),
        (
            "{ 'struct': 'Common', 'data': {} }\n{ 'command': 'types' }",
            "TypesCall",
            "",
            "",
        ),
    ];
    for (text, rust, first, second) in cases {
        let schema = parse_qapi_str("clash.json", text).unwrap();
        match public_names(&schema) {
            Err(EmitError::Clash {
                rust: r,
                first: f,
                second: s,
                ..
            }) => {
                assert_eq!(r, rust, "{text}");
                assert_eq!((f.as_str(), s.as_str()), (first, second), "{text}");
            }
            Ok(names) if first.is_empty() => {
                // No clash: a module and a command type are different names.
                assert!(names.iter().any(|n| n.rust == rust), "{text}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}
