//! Every real QEMU schema under `../shared/qapi` loads, checks, has the expected number of
//! definitions per kind, and survives the normalized round trip.

mod common;

use std::path::{Path, PathBuf};

use qmp_codegen::model::{Definition, TypeRef};
use qmp_codegen::{normalized, parse_qapi, Schema};

/// Root file → [commands, events, structs, unions, alternates, enums], from
/// `shared/qapi/README.md` ("unions" includes legacy simple unions).
const EXPECTED: &[(&str, [usize; 6])] = &[
    (
        "qemu-2.12.0/qapi/qapi-schema.json",
        [167, 39, 228, 27, 4, 95],
    ),
    (
        "qemu-3.0.0/qapi/qapi-schema.json",
        [182, 41, 226, 27, 4, 99],
    ),
    (
        "qemu-3.1.0/qapi/qapi-schema.json",
        [184, 42, 229, 27, 4, 100],
    ),
    (
        "qemu-4.0.0/qapi/qapi-schema.json",
        [187, 42, 251, 28, 4, 112],
    ),
    (
        "qemu-4.1.0/qapi/qapi-schema.json",
        [187, 42, 252, 28, 5, 113],
    ),
    (
        "qemu-4.2.0/qapi/qapi-schema.json",
        [187, 44, 255, 29, 5, 114],
    ),
    (
        "qemu-5.0.0/qapi/qapi-schema.json",
        [187, 45, 260, 30, 5, 121],
    ),
    (
        "qemu-5.1.0/qapi/qapi-schema.json",
        [188, 46, 265, 31, 5, 122],
    ),
    (
        "qemu-5.2.0/qapi/qapi-schema.json",
        [196, 48, 275, 31, 5, 125],
    ),
    (
        "qemu-6.0.0/qapi/qapi-schema.json",
        [196, 48, 313, 33, 5, 132],
    ),
    (
        "qemu-6.1.0/qapi/qapi-schema.json",
        [197, 48, 320, 34, 5, 133],
    ),
    (
        "qemu-6.2.0/qapi/qapi-schema.json",
        [208, 49, 369, 34, 5, 140],
    ),
    (
        "qemu-7.0.0/qapi/qapi-schema.json",
        [208, 49, 376, 36, 5, 143],
    ),
    (
        "qemu-7.1.0/qapi/qapi-schema.json",
        [214, 50, 397, 39, 6, 154],
    ),
    (
        "qemu-7.2.0/qapi/qapi-schema.json",
        [220, 52, 418, 39, 6, 155],
    ),
    (
        "qemu-8.0.0/qapi/qapi-schema.json",
        [228, 52, 431, 39, 6, 161],
    ),
    (
        "qemu-8.1.0/qapi/qapi-schema.json",
        [231, 52, 435, 39, 6, 163],
    ),
    (
        "qemu-8.2.0/qapi/qapi-schema.json",
        [235, 54, 444, 42, 6, 170],
    ),
    (
        "qemu-9.0.0/qapi/qapi-schema.json",
        [236, 54, 450, 42, 6, 173],
    ),
    (
        "qemu-9.1.0/qapi/qapi-schema.json",
        [238, 54, 456, 43, 6, 177],
    ),
    (
        "qemu-9.2.0-rc2/qapi/qapi-schema.json",
        [239, 54, 461, 43, 6, 179],
    ),
    (
        "qemu-10.0.13/qapi/qapi-schema.json",
        [240, 56, 468, 43, 6, 181],
    ),
    (
        "qemu-7.2.0/storage-daemon/qapi/qapi-schema.json",
        [74, 13, 233, 23, 5, 78],
    ),
    (
        "qemu-10.0.13/storage-daemon/qapi/qapi-schema.json",
        [76, 13, 254, 25, 5, 79],
    ),
    ("qga-2.12.0/qapi-schema.json", [35, 0, 23, 0, 1, 5]),
    ("qga-3.0.0/qapi-schema.json", [35, 0, 23, 0, 1, 5]),
    ("qga-3.1.0/qapi-schema.json", [35, 0, 23, 0, 1, 5]),
    ("qga-4.0.0/qapi-schema.json", [35, 0, 23, 0, 1, 5]),
    ("qga-4.1.0/qapi-schema.json", [35, 0, 23, 0, 1, 5]),
    ("qga-4.2.0/qapi-schema.json", [35, 0, 23, 0, 1, 5]),
    ("qga-5.0.0/qapi-schema.json", [35, 0, 23, 0, 1, 5]),
    ("qga-5.1.0/qapi-schema.json", [35, 0, 23, 0, 1, 5]),
    ("qga-5.2.0/qapi-schema.json", [40, 0, 27, 1, 1, 6]),
    ("qga-6.0.0/qapi-schema.json", [40, 0, 28, 1, 1, 6]),
    ("qga-6.1.0/qapi-schema.json", [40, 0, 28, 1, 1, 6]),
    ("qga-6.2.0/qapi-schema.json", [40, 0, 28, 1, 1, 6]),
    ("qga-7.0.0/qapi-schema.json", [40, 0, 28, 1, 1, 6]),
    ("qga-7.1.0/qapi-schema.json", [42, 0, 32, 3, 1, 7]),
    ("qga-7.2.0/qapi-schema.json", [42, 0, 32, 3, 1, 7]),
    ("qga-8.0.0/qapi-schema.json", [42, 0, 32, 3, 1, 7]),
    ("qga-8.1.0/qapi-schema.json", [42, 0, 32, 3, 2, 8]),
    ("qga-8.2.0/qapi-schema.json", [42, 0, 32, 3, 2, 8]),
    ("qga-9.0.0/qapi-schema.json", [42, 0, 32, 3, 2, 8]),
    ("qga-9.1.0/qapi-schema.json", [43, 0, 33, 3, 2, 8]),
    ("qga-9.2.0-rc2/qapi-schema.json", [43, 0, 33, 3, 2, 8]),
    ("qga-10.0.13/qapi-schema.json", [44, 0, 34, 3, 2, 8]),
];

/// Every root schema under `qapi/`: relative name → path.
fn roots(qapi: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(qapi) else {
        return out;
    };
    let mut dirs: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    for d in dirs {
        for rel in [
            "qapi/qapi-schema.json",
            "storage-daemon/qapi/qapi-schema.json",
            "qapi-schema.json",
        ] {
            let p = qapi.join(&d).join(rel);
            if p.is_file() {
                out.push((format!("{d}/{rel}"), p));
            }
        }
    }
    out
}

fn counts(s: &Schema) -> [usize; 6] {
    let c = s.counts();
    [
        c.commands,
        c.events,
        c.structs,
        c.unions,
        c.alternates,
        c.enums,
    ]
}

/// (major, minor) of a directory name like `qemu-6.1.0` or `qga-9.2.0-rc2`.
fn version(name: &str) -> (u32, u32) {
    let v = name.split('/').next().unwrap_or("");
    let v = v.trim_start_matches("qemu-").trim_start_matches("qga-");
    let mut it = v.split(['.', '-']).map(|x| x.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

#[test]
fn every_corpus_schema_loads_checks_and_round_trips() {
    let Some(shared) = common::shared_dir("corpus") else {
        return;
    };
    let roots = roots(&shared.join("qapi"));
    assert!(
        roots.len() >= EXPECTED.len(),
        "found only {} roots",
        roots.len()
    );
    for (name, _) in EXPECTED {
        assert!(
            roots.iter().any(|(n, _)| n == name),
            "expected root {name} is missing"
        );
    }
    let mut failures = Vec::new();
    for (name, path) in &roots {
        let schema = match parse_qapi(path) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        match EXPECTED.iter().find(|(n, _)| n == name) {
            Some((_, want)) => {
                if counts(&schema) != *want {
                    failures.push(format!(
                        "{name}: counts {:?} != expected {want:?} ({})",
                        counts(&schema),
                        schema.counts()
                    ));
                }
            }
            None => eprintln!(
                "note: {name} is not in the expected-counts table: {}",
                schema.counts()
            ),
        }
        // Legacy simple unions: 8 in every QMP schema up to 6.1, none later.
        let simple = schema.unions().filter(|u| u.simple_legacy).count();
        let (major, minor) = version(name);
        if name.starts_with("qemu-") && !name.contains("storage-daemon") {
            let want = if (major, minor) <= (6, 1) { 8 } else { 0 };
            if simple != want {
                failures.push(format!("{name}: {simple} simple unions, expected {want}"));
            }
        }
        // Normalized round trip: same model minus prose and locations, same text again.
        let text = normalized::to_string(&schema);
        match normalized::from_str(name, &text) {
            Ok(back) => {
                if back.without_docs_and_locations() != schema.without_docs_and_locations() {
                    failures.push(format!("{name}: normalized round trip changed the model"));
                }
                if normalized::to_string(&back) != text {
                    failures.push(format!("{name}: normalized output is not stable"));
                }
            }
            Err(e) => failures.push(format!("{name}: normalized file does not load: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_facts_of_qemu_10_0() {
    let Some(shared) = common::shared_dir("corpus_facts_of_qemu_10_0") else {
        return;
    };
    let s = parse_qapi(shared.join("qapi/qemu-10.0.13/qapi/qapi-schema.json")).expect("loads");
    // A union branch that is a union (8.2+).
    let m = s.union_type("MigrationAddress").expect("MigrationAddress");
    let socket = m.branch("socket").expect("socket branch");
    assert!(
        s.union_type(&socket.ty_name).is_some(),
        "{} is a union",
        socket.ty_name
    );
    // An alternate with an array branch (7.1+).
    let sv = s.alternate_type("StatsValue").expect("StatsValue");
    assert!(sv
        .branches
        .iter()
        .any(|b| matches!(b.ty, TypeRef::Array(_))));
    // Commands with legacy names, flags, and pragma-excepted return types.
    assert!(s.command("qmp_capabilities").expect("cmd").allow_preconfig);
    assert!(!s.command("device_add").expect("cmd").gen);
    assert!(s.command("migrate-recover").expect("cmd").allow_oob);
    assert_eq!(
        s.command("qom-get")
            .expect("cmd")
            .returns
            .as_ref()
            .map(|t| t.to_string())
            .as_deref(),
        Some("any")
    );
    // Docs: since-versions, per-member since, deprecation.
    assert_eq!(
        s.get("query-block").and_then(Definition::since),
        Some("0.14")
    );
    let nbd = s.struct_type("NbdServerOptionsBase").expect("struct");
    let hs = nbd
        .members
        .iter()
        .find(|m| m.name == "handshake-max-seconds")
        .expect("member");
    assert_eq!(hs.since.as_deref(), Some("10.0"));
    assert!(s
        .commands()
        .any(|c| c.features.iter().any(|f| f.is_deprecated())));
    let documented = s.definitions.iter().filter(|d| d.doc().is_some()).count();
    assert_eq!(
        documented,
        s.definitions.len(),
        "doc-required: every definition has its doc"
    );
    // Conditions: all/any appear in 10.0 QMP.
    let conds: Vec<String> = s
        .definitions
        .iter()
        .filter_map(|d| d.cond())
        .map(|c| c.to_string())
        .collect();
    assert!(conds.iter().any(|c| c.starts_with("any(")), "{conds:?}");
    assert!(conds.iter().any(|c| c.starts_with("all(")), "{conds:?}");
}

#[test]
fn corpus_facts_of_old_schemas() {
    let Some(shared) = common::shared_dir("corpus_facts_of_old_schemas") else {
        return;
    };
    let s = parse_qapi(shared.join("qapi/qemu-3.0.0/qapi/qapi-schema.json")).expect("loads");
    // Old C-preprocessor conditions are parsed into the tree.
    let spice = s
        .get("SpiceInfo")
        .and_then(Definition::cond)
        .map(|c| c.to_string());
    assert_eq!(spice.as_deref(), Some("CONFIG_SPICE"));
    // Simple unions: implicit Kind enum right after the union, wrapper structs.
    let i = s
        .definitions
        .iter()
        .position(|d| d.name() == "SocketAddressLegacy")
        .expect("union");
    assert_eq!(s.definitions[i + 1].name(), "SocketAddressLegacyKind");
    assert!(s.definitions[i + 1].is_implicit());
    let u = s.union_type("SocketAddressLegacy").expect("union");
    assert!(u.simple_legacy);
    let w = s.struct_type(&u.branches[0].ty_name).expect("wrapper");
    assert!(w.implicit && w.members.len() == 1 && w.members[0].name == "data");
    assert!(s.pragmas.legacy_names());

    let q = parse_qapi(shared.join("qapi/qga-8.1.0/qapi-schema.json")).expect("loads");
    let mode = q.enum_type("GuestExecCaptureOutputMode").expect("enum");
    let merged = mode
        .value("merged")
        .and_then(|v| v.cond.as_ref())
        .map(|c| c.to_string());
    assert_eq!(
        merged.as_deref(),
        Some("not(CONFIG_WIN32)"),
        "QGA 8.1 uses {{'not': ...}}"
    );
    assert!(!q.command("guest-shutdown").expect("cmd").success_response);
}
