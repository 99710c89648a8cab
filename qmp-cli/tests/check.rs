//! Checks before sending, completion and `qmp help`, against the built-in merged schema.

use qmp_cli::check::Checker;
use qmp_cli::schema::{self, Family};
use qmp_cli::shell::completions;
use serde_json::{json, Map, Value};

fn checker() -> Checker {
    Checker::new(
        schema::built_in(Family::Qemu).expect("built-in schema"),
        Family::Qemu,
    )
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("object")
}

#[test]
fn unknown_commands_are_refused_with_the_nearest_name() {
    let c = checker();
    assert!(c.check("query-status", None).is_ok());
    let e = c.check("qeury-status", None).unwrap_err();
    assert_eq!(e.suggestion.as_deref(), Some("query-status"));
    assert!(e.message.contains("qeury-status"), "{e}");
    assert!(e.to_string().contains("did you mean `query-status`"), "{e}");
    assert!(e.to_string().contains("the built-in schema"), "{e}");
    let e = c.check("blockdev-bakup", None).unwrap_err();
    assert_eq!(e.suggestion.as_deref(), Some("blockdev-backup"));
    // Nothing near: no suggestion.
    let e = c.check("zzzzzzzzzz", None).unwrap_err();
    assert_eq!(e.suggestion, None, "{e}");
}

#[test]
fn the_history_says_when_a_command_was_removed() {
    // query-cpus is in the merged schema (removed after QEMU 5.2): the built-in check
    // accepts it; the note appears when a server's schema lacks it.
    let c = checker();
    assert!(c.check("query-cpus", None).is_ok());
    let mut server = checker();
    server.set_server(
        "10.0.2".into(),
        &json!([
            {"name": "query-status", "meta-type": "command", "arg-type": "0", "ret-type": "0"},
            {"name": "0", "meta-type": "object", "members": []},
        ]),
    );
    let e = server.check("query-cpus", None).unwrap_err();
    assert_eq!(
        e.note.as_deref(),
        Some("'query-cpus' was removed after QEMU 5.2; the server runs QEMU 10.0.2"),
        "{e}"
    );
    assert!(e.to_string().contains("checked against QEMU 10.0.2"), "{e}");
    assert!(server.check("query-status", None).is_ok());
}

#[test]
fn arguments_are_checked_with_suggestions() {
    let c = checker();
    // Unknown argument, suggesting the nearest (the example).
    let e = c
        .check(
            "blockdev-add",
            Some(&obj(json!({"drvier": "null-co", "node-name": "n0"}))),
        )
        .unwrap_err();
    assert!(e.message.starts_with("blockdev-add: "), "{e}");
    assert!(e.message.contains("'drvier' is given"), "{e}");
    assert_eq!(e.suggestion.as_deref(), Some("driver"), "{e}");
    assert!(e.to_string().contains("did you mean `driver`?"), "{e}");
    // An unknown optional argument, suggesting the nearest.
    let e = c
        .check(
            "blockdev-add",
            Some(&obj(
                json!({"driver": "null-co", "node-name": "n0", "sise": 1}),
            )),
        )
        .unwrap_err();
    assert_eq!(e.suggestion.as_deref(), Some("size"), "{e}");
    // Missing required argument.
    let e = c
        .check("block-job-set-speed", Some(&obj(json!({"speed": 1}))))
        .unwrap_err();
    assert!(e.message.contains("'device' is missing"), "{e}");
    // Wrong type.
    let e = c
        .check(
            "block-job-set-speed",
            Some(&obj(json!({"device": "j0", "speed": "fast"}))),
        )
        .unwrap_err();
    assert!(
        e.message.contains("speed") && e.message.contains("integer"),
        "{e}"
    );
    // A bad enum value, with the nearest value.
    let e = c
        .check(
            "blockdev-backup",
            Some(&obj(json!({"device": "d", "target": "t", "sync": "ful"}))),
        )
        .unwrap_err();
    assert_eq!(e.suggestion.as_deref(), Some("full"), "{e}");
    // Nested members (dotted keys) of union branches.
    assert!(c
        .check(
            "blockdev-add",
            Some(&obj(
                json!({"driver": "file", "node-name": "f0", "filename": "/tmp/x"})
            ))
        )
        .is_ok());
    let e = c
        .check(
            "blockdev-add",
            Some(&obj(json!({"driver": "qcow2", "node-name": "q0", "file": {"driver": "file", "filenme": "/x"}}))),
        )
        .unwrap_err();
    assert!(
        e.message
            .contains("'file.filename' is missing ('filenme' is given)"),
        "{e}"
    );
    assert_eq!(e.suggestion.as_deref(), Some("filename"), "{e}");
    assert!(c
        .check("query-status", Some(&obj(json!({"x": 1}))))
        .is_err());
}

#[test]
fn event_names_are_checked() {
    let c = checker();
    assert!(c.check_event("STOP").is_ok());
    let e = c.check_event("Stop").unwrap_err();
    assert_eq!(e.suggestion.as_deref(), Some("STOP"));
    let e = c.check_event("JOB_STATUS_CHANG").unwrap_err();
    assert_eq!(e.suggestion.as_deref(), Some("JOB_STATUS_CHANGE"));
}

#[test]
fn completion_offers_commands_arguments_nested_members_and_enum_values() {
    let c = checker();
    let (start, words) = completions(&c, false, "query-sta");
    assert_eq!(start, 0);
    assert_eq!(
        words,
        ["query-stats", "query-stats-schemas", "query-status"]
    );
    let (_, words) = completions(&c, false, "he");
    assert_eq!(words, ["help"]);
    let (start, words) = completions(&c, false, "qom-get pa");
    assert_eq!((start, words), (8, vec!["path=".to_string()]));
    // Arguments already given are not offered again.
    let (_, words) = completions(&c, false, "qom-get path=/machine ");
    assert_eq!(words, ["property="]);
    // Enum values after '=', and booleans.
    let (start, words) = completions(&c, false, "blockdev-backup sync=");
    assert_eq!(start, 16);
    assert_eq!(
        words,
        [
            "sync=bitmap",
            "sync=full",
            "sync=incremental",
            "sync=none",
            "sync=top"
        ]
    );
    let (_, words) = completions(&c, false, "blockdev-backup sync=f");
    assert_eq!(words, ["sync=full"]);
    let (_, words) = completions(&c, false, "blockdev-backup compress=");
    assert_eq!(words, ["compress=false", "compress=true"]);
    // Object members offer the dotted form; members of union branches below them.
    let (_, words) = completions(&c, false, "blockdev-add fi");
    assert!(words.contains(&"file.".to_string()), "{words:?}");
    assert!(words.contains(&"filename=".to_string()), "{words:?}");
    let (_, words) = completions(&c, false, "blockdev-add file.filen");
    assert_eq!(words, ["file.filename="]);
    let (_, words) = completions(&c, false, "blockdev-add driver=qco");
    assert_eq!(words, ["driver=qcow", "driver=qcow2"]);
    // `help` completes command names.
    let (start, words) = completions(&c, false, "help query-versio");
    assert_eq!((start, words), (5, vec!["query-version".to_string()]));
    // Unknown command: nothing to offer, no panic.
    assert!(completions(&c, false, "no-such-command a").1.is_empty());
}

#[test]
fn help_shows_arguments_types_versions_and_the_reference_link() {
    let merged = schema::built_in(Family::Qemu).unwrap();
    let text = schema::help_text(merged, Family::Qemu, "blockdev-backup").unwrap();
    assert!(text.starts_with("blockdev-backup\n"), "{text}");
    assert!(
        text.contains("https://www.qemu.org/docs/master/interop/qemu-qmp-ref.html#command-QMP-block-core.blockdev-backup"),
        "{text}"
    );
    let line = |name: &str| -> String {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no line for {name} in\n{text}"))
            .to_string()
    };
    let sync = line("sync");
    assert!(
        sync.contains("MirrorSyncMode") && sync.contains("required"),
        "{sync}"
    );
    assert!(
        sync.contains("one of: bitmap, full, incremental, none, top"),
        "{sync}"
    );
    let discard = line("discard-source");
    assert!(
        discard.contains("bool") && discard.contains("optional"),
        "{discard}"
    );
    assert!(discard.contains("since QEMU 9.1"), "{discard}");
    assert!(line("job-id").contains("since QEMU 2.12 or earlier"));
    // A removed command says so.
    let text = schema::help_text(merged, Family::Qemu, "query-cpus").unwrap();
    assert!(text.contains("removed after QEMU 5.2"), "{text}");
    assert!(text.contains("deprecated"), "{text}");
    // The agent's schema and manual.
    let qga = schema::built_in(Family::Agent).unwrap();
    let text = schema::help_text(qga, Family::Agent, "guest-file-open").unwrap();
    assert!(text.contains("qemu-ga-ref.html#command-QGA-"), "{text}");
    assert!(schema::help_text(merged, Family::Qemu, "no-such").is_none());
}

#[test]
fn enum_values_and_arguments_a_server_lacks_get_version_notes() {
    // A server schema whose mirror has no `copy-mode` and whose sync enum lacks `bitmap`.
    let mut c = checker();
    c.set_server(
        "7.2.0".into(),
        &json!([
            {"name": "blockdev-mirror", "meta-type": "command", "arg-type": "0", "ret-type": "1"},
            {"name": "0", "meta-type": "object", "members": [
                {"name": "device", "type": "str"}, {"name": "target", "type": "str"},
                {"name": "sync", "type": "2"}]},
            {"name": "1", "meta-type": "object", "members": []},
            {"name": "2", "meta-type": "enum", "values": ["top", "full", "none"]},
            {"name": "str", "meta-type": "builtin", "json-type": "string"},
        ]),
    );
    let e = c
        .check(
            "blockdev-mirror",
            Some(&obj(
                json!({"device": "d", "target": "t", "sync": "full", "copy-mode": "background"}),
            )),
        )
        .unwrap_err();
    assert_eq!(
        e.note.as_deref(),
        Some("'copy-mode' was added in QEMU 3.0; the server runs QEMU 7.2.0"),
        "{e}"
    );
    let e = c
        .check(
            "blockdev-mirror",
            Some(&obj(
                json!({"device": "d", "target": "t", "sync": "bitmap"}),
            )),
        )
        .unwrap_err();
    assert!(
        e.note
            .as_deref()
            .is_some_and(|n| n.starts_with("'sync=bitmap' ")),
        "{e}"
    );
}

#[test]
fn completion_in_a_transaction_offers_action_types_and_their_data() {
    let c = checker();
    let (start, words) = completions(&c, true, "block-dirty-bitmap-a");
    assert_eq!(
        (start, words),
        (0, vec!["block-dirty-bitmap-add".to_string()])
    );
    let (_, words) = completions(&c, true, "ab");
    assert_eq!(words, ["abort"]);
    let (_, words) = completions(&c, true, "block-dirty-bitmap-add na");
    assert_eq!(words, ["name="]);
    let (_, words) = completions(&c, true, "blockdev-backup device=d sync=inc");
    assert_eq!(words, ["sync=incremental"]);
    // On the line that opens it.
    let (start, words) = completions(&c, false, "transaction( block-dirty-bitmap-add node=d0 per");
    assert_eq!((start, words), (44, vec!["persistent=".to_string()]));
    let (_, words) = completions(&c, false, "transaction( abo");
    assert_eq!(words, ["abort"]);
}
