//! The `qmp-codegen` command line.

mod common;

use std::process::Command;

use common::TempTree;

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

const SCHEMA: &str = "{ 'enum': 'Mode', 'data': [ 'a', 'b' ] }\n\
                      { 'struct': 'Info', 'data': { 'mode': 'Mode' } }\n\
                      { 'command': 'query-info', 'returns': 'Info' }\n\
                      { 'event': 'CHANGED', 'data': { 'info': 'Info' } }\n";

#[test]
fn check_prints_counts() {
    let t = TempTree::new(&[("s.json", SCHEMA)]);
    let (code, out, err) = run(&["check", &t.path("s.json").display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "commands 1  events 1  structs 1  unions 0  alternates 0  enums 1\n"
    );
}

#[test]
fn check_fails_with_the_error() {
    let t = TempTree::new(&[(
        "bad.json",
        "{ 'struct': 'Info', 'data': { 'm': 'Nope' } }\n",
    )]);
    let path = t.path("bad.json").display().to_string();
    let (code, out, err) = run(&["check", &path]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains(&format!(
            "{path}:1: struct 'Info', member 'm': unknown type 'Nope'"
        )),
        "{err}"
    );
}

#[test]
fn import_writes_normalized_json_that_checks() {
    let t = TempTree::new(&[("qemu-9.9.9/qapi/qapi-schema.json", SCHEMA)]);
    let input = t
        .path("qemu-9.9.9/qapi/qapi-schema.json")
        .display()
        .to_string();
    let output = t.path("out.json").display().to_string();
    let (code, _, err) = run(&["import", &input, "-o", &output]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&output).expect("written");
    assert!(
        text.contains("\"source\": \"qemu-9.9.9/qapi/qapi-schema.json\""),
        "{text}"
    );
    assert!(text.ends_with("}\n"));
    let (code, out, _) = run(&["check", &output]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "commands 1  events 1  structs 1  unions 0  alternates 0  enums 1\n"
    );
    let (code, _, err) = run(&[
        "import",
        &input,
        "-o",
        &output,
        "--source-name",
        "custom name",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read_to_string(&output)
        .expect("written")
        .contains("\"source\": \"custom name\""));
}

#[test]
fn usage_errors_and_help() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("qmp-codegen import PATH -o FILE"));
    for (args, want) in [
        (&[][..], "missing subcommand"),
        (&["frobnicate"][..], "unknown subcommand 'frobnicate'"),
        (&["import", "x.json"][..], "import: missing -o FILE"),
        (&["import", "-o"][..], "option -o needs a file name"),
        (&["check"][..], "check: missing input PATH"),
        (&["check", "a", "b"][..], "unexpected extra argument 'b'"),
        (&["check", "--fast", "a"][..], "unknown option '--fast'"),
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(
            err.contains(want) && err.contains("Usage:"),
            "{args:?}: {err}"
        );
    }
    let (code, _, err) = run(&["check", "/nonexistent.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent.json: cannot read"), "{err}");
}
