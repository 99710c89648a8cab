//! qmp-shell's input language: values, dotted keys, `--args`, word splitting, transactions.

use qmp_cli::args::{
    parse_args_json, parse_arguments, parse_value, split_words, ArgError, Line, Transaction,
};
use serde_json::{json, Map, Value};

fn args(words: &[&str]) -> Result<Value, ArgError> {
    parse_arguments(None, words.iter().copied()).map(Value::Object)
}

#[test]
fn values_are_json_when_they_parse_as_json_and_strings_otherwise() {
    let cases = [
        ("42", json!(42)),
        ("-1", json!(-1)),
        ("1.5", json!(1.5)),
        ("true", json!(true)),
        ("false", json!(false)),
        ("null", json!(null)),
        ("\"42\"", json!("42")),
        ("'42'", json!("42")),
        ("'two words'", json!("two words")),
        ("[1, \"a\"]", json!([1, "a"])),
        ("{\"a\": {\"b\": 1}}", json!({"a": {"b": 1}})),
        ("disk0", json!("disk0")),
        ("/tmp/a b", json!("/tmp/a b")),
        ("1G", json!("1G")),
        ("tru", json!("tru")),
        ("{broken", json!("{broken")),
        ("", json!("")),
        ("'", json!("'")),
    ];
    for (text, want) in cases {
        assert_eq!(parse_value(text), want, "value {text:?}");
    }
}

#[test]
fn dotted_keys_build_nested_objects() {
    assert_eq!(
        args(&[
            "driver=qcow2",
            "node-name=disk0",
            "file.driver=file",
            "file.filename=/tmp/disk.qcow2",
            "file.aio.x=1",
        ])
        .unwrap(),
        json!({"driver": "qcow2", "node-name": "disk0",
               "file": {"driver": "file", "filename": "/tmp/disk.qcow2", "aio": {"x": 1}}})
    );
    // A JSON object value and dotted keys below it merge.
    assert_eq!(
        args(&["file={\"driver\": \"file\"}", "file.filename=x"]).unwrap(),
        json!({"file": {"driver": "file", "filename": "x"}})
    );
    // A value may contain '=' and dots.
    assert_eq!(
        args(&["command-line=info version=1.2"]).unwrap(),
        json!({"command-line": "info version=1.2"})
    );
}

#[test]
fn bad_words_are_errors_naming_the_word() {
    assert_eq!(
        args(&["device"]),
        Err(ArgError::NotKeyValue {
            word: "device".into()
        })
    );
    assert_eq!(
        args(&["a..b=1"]),
        Err(ArgError::EmptyKey {
            word: "a..b=1".into()
        })
    );
    assert_eq!(args(&["=1"]), Err(ArgError::EmptyKey { word: "=1".into() }));
    assert_eq!(
        args(&["file.=1"]),
        Err(ArgError::EmptyKey {
            word: "file.=1".into()
        })
    );
    assert_eq!(
        args(&["id=a", "id=b"]),
        Err(ArgError::Duplicate { key: "id".into() })
    );
    assert_eq!(
        args(&["file.driver=a", "file.driver=b"]),
        Err(ArgError::Duplicate {
            key: "file.driver".into()
        })
    );
    assert_eq!(
        args(&["file=x", "file.driver=y"]),
        Err(ArgError::NotAnObject { key: "file".into() })
    );
    assert_eq!(
        args(&["file.driver=y", "file=x"]),
        Err(ArgError::NotAnObject { key: "file".into() })
    );
    assert_eq!(
        args(&["a.b=1", "a.b.c=2"]),
        Err(ArgError::NotAnObject { key: "a.b".into() })
    );
    let text = ArgError::NotAnObject { key: "file".into() }.to_string();
    assert!(text.contains("'file'"), "{text}");
}

#[test]
fn args_json_is_the_base_that_key_values_extend() {
    let base = parse_args_json(r#"{"node-name": "n0", "file": {"driver": "file"}}"#).unwrap();
    let merged = parse_arguments(Some(base), ["file.filename=/x", "read-only=true"]).unwrap();
    assert_eq!(
        Value::Object(merged),
        json!({"node-name": "n0", "read-only": true, "file": {"driver": "file", "filename": "/x"}})
    );
    // A key given in both places is a duplicate, not silently overwritten.
    let base = parse_args_json(r#"{"id": "a"}"#).unwrap();
    assert_eq!(
        parse_arguments(Some(base), ["id=b"]),
        Err(ArgError::Duplicate { key: "id".into() })
    );
    for bad in ["[1]", "\"x\"", "{", "", "null"] {
        assert!(
            matches!(parse_args_json(bad), Err(ArgError::BadArgsJson { .. })),
            "--args {bad:?}"
        );
    }
    assert_eq!(parse_args_json("{}").unwrap(), Map::new());
}

#[test]
fn words_split_at_spaces_outside_quotes_and_brackets() {
    let cases: [(&str, &[&str]); 6] = [
        ("query-status", &["query-status"]),
        (
            "  eject   device=cd0  force=true ",
            &["eject", "device=cd0", "force=true"],
        ),
        (
            r#"qom-set path=/m property=p value={"a": [1, 2], "b": "x y"}"#,
            &[
                "qom-set",
                "path=/m",
                "property=p",
                r#"value={"a": [1, 2], "b": "x y"}"#,
            ],
        ),
        (
            r#"x desc="two words" b='c d'"#,
            &["x", r#"desc="two words""#, "b='c d'"],
        ),
        (r#"x a="quote \" inside""#, &["x", r#"a="quote \" inside""#]),
        ("", &[]),
    ];
    for (line, want) in cases {
        assert_eq!(split_words(line).unwrap(), want, "line {line:?}");
    }
    for open in [r#"x a="b"#, "x a='b", "x a=[1, 2", "x a={\"b\": 1"] {
        assert!(
            matches!(split_words(open), Err(ArgError::Unclosed { .. })),
            "{open:?}"
        );
    }
    // The whole line parses to the request QEMU gets.
    let mut t = Transaction::default();
    let Line::Send(r) = t
        .line(r#"qom-set path=/machine property=x value={"a": [1, 2]}"#)
        .unwrap()
    else {
        panic!("not sent")
    };
    assert_eq!(r.command, "qom-set");
    assert_eq!(
        r.arguments_value().unwrap(),
        json!({"path": "/machine", "property": "x", "value": {"a": [1, 2]}})
    );
    let Line::Send(r) = t.line("query-status").unwrap() else {
        panic!("not sent")
    };
    assert_eq!(r.arguments, None);
    assert_eq!(r.to_string(), r#"{"execute":"query-status"}"#);
    assert_eq!(t.line("   ").unwrap(), Line::Pending);
}

#[test]
fn transaction_mode_collects_actions_until_the_closing_parenthesis() {
    let mut t = Transaction::default();
    assert_eq!(t.line("transaction(").unwrap(), Line::Pending);
    assert!(t.is_open());
    assert_eq!(
        t.line("block-dirty-bitmap-add node=d0 name=b0 persistent=true")
            .unwrap(),
        Line::Pending
    );
    // An error keeps the transaction open.
    assert!(t.line("abort x").is_err());
    assert!(t.is_open());
    assert_eq!(t.line("abort").unwrap(), Line::Pending);
    let Line::Send(r) = t.line(")").unwrap() else {
        panic!("not sent")
    };
    assert!(!t.is_open());
    assert_eq!(r.command, "transaction");
    assert_eq!(
        r.arguments_value().unwrap(),
        json!({"actions": [
            {"type": "block-dirty-bitmap-add", "data": {"node": "d0", "name": "b0", "persistent": true}},
            {"type": "abort", "data": {}},
        ]})
    );

    // On one line, as qmp-shell accepts it.
    let Line::Send(r) = t.line("transaction( abort )").unwrap() else {
        panic!("not sent")
    };
    assert_eq!(
        r.arguments_value().unwrap(),
        json!({"actions": [{"type": "abort", "data": {}}]})
    );
    // The last action's closing parenthesis may touch its last word.
    assert_eq!(t.line("transaction(").unwrap(), Line::Pending);
    let Line::Send(r) = t
        .line("block-dirty-bitmap-clear node=d0 name=b0 )")
        .unwrap()
    else {
        panic!("not sent")
    };
    assert_eq!(
        r.arguments_value().unwrap()["actions"][0]["data"]["name"],
        "b0"
    );
    assert_eq!(t.line("transaction(").unwrap(), Line::Pending);
    let Line::Send(r) = t.line("abort)").unwrap() else {
        panic!("not sent")
    };
    assert_eq!(r.arguments_value().unwrap()["actions"][0]["type"], "abort");
    // An empty transaction is still sent (QEMU accepts it).
    let Line::Send(r) = t.line("transaction( )").unwrap() else {
        panic!("not sent")
    };
    assert_eq!(r.arguments_value().unwrap(), json!({"actions": []}));
    // Dropping an open transaction.
    t.line("transaction(").unwrap();
    t.abort();
    assert!(!t.is_open());
}
