//! `qmp-codegen merge`: versions from directory names or `X.Y=PATH`, a merged file that
//! loads with its history, and clear usage errors.

mod common;

use std::process::Command;

use common::TempTree;
use qmp_codegen::history::{Merged, Path, Version};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_qmp-codegen"))
        .args(args)
        .output()
        .expect("run qmp-codegen");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const OLD: &str = "{ 'struct': 'Info', 'data': { 'a': 'int' } }\n\
                   { 'command': 'query-info', 'returns': 'Info' }\n";
const NEW: &str = "{ 'struct': 'Info', 'data': { 'a': 'int', 'b': 'bool' } }\n\
                   { 'command': 'query-info', 'returns': 'Info' }\n\
                   { 'command': 'stop' }\n";

#[test]
fn merge_writes_a_file_with_history() {
    let t = TempTree::new(&[
        ("qemu-7.2.0/qapi/qapi-schema.json", OLD),
        ("new/schema.json", NEW),
    ]);
    let out = t.path("merged.json").display().to_string();
    let old = t
        .path("qemu-7.2.0/qapi/qapi-schema.json")
        .display()
        .to_string();
    let new = format!("8.0={}", t.path("new/schema.json").display());
    let (code, stdout, err) = run(&["merge", &new, &old, "-o", &out, "--report"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("2 versions (7.2 to 8.0)"), "{err}");
    assert!(
        stdout.contains("members in what QEMU sends: 2 (1 optional)"),
        "{stdout}"
    );
    let schema = qmp_codegen::history::load_path(&out).expect("loads");
    let m = Merged::new(&schema);
    assert_eq!(
        m.history().versions[0].source,
        "qemu-7.2.0/qapi/qapi-schema.json"
    );
    assert_eq!(
        m.lifetime(&Path::definition("stop"))
            .expect("known")
            .added(),
        Some(Version::new(8, 0))
    );
    // `check` reads it like any normalized file.
    let (code, stdout, err) = run(&["check", &out]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        stdout,
        "commands 2  events 0  structs 1  unions 0  alternates 0  enums 0\n"
    );
}

#[test]
fn merge_usage_errors() {
    let t = TempTree::new(&[("x/schema.json", OLD)]);
    let path = t.path("x/schema.json").display().to_string();
    let (code, _, err) = run(&["merge", &path, "-o", "/dev/null"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cannot tell the version of") && err.contains(&format!("X.Y={path}")),
        "{err}"
    );
    let (code, _, err) = run(&["merge", "-o", "/dev/null"]);
    assert_eq!(code, 2);
    assert!(err.contains("merge: missing input PATHs"), "{err}");
    let (code, _, err) = run(&["merge", &format!("1.0={path}")]);
    assert_eq!(code, 2);
    assert!(err.contains("merge: missing -o FILE"), "{err}");
    let (code, _, err) = run(&[
        "merge",
        &format!("1.0={path}"),
        &format!("1.0={path}"),
        "-o",
        "/dev/null",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("version 1.0 is given twice"), "{err}");
}
