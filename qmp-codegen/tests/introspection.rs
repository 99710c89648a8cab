//! `query-qmp-schema` output: masked names, old enum `values`, unions, alternates, arrays,
//! unknown meta-types.

mod common;

use common::TempTree;
use qmp_codegen::model::{Arguments, Builtin, JsonType, TypeRef, UnionBase};
use qmp_codegen::{introspect, load_introspection, load_path, normalized, Schema};
use serde_json::Value;

const DUMP: &str = r#"{"return": [
 {"name": "query-status", "meta-type": "command", "arg-type": "0", "ret-type": "1"},
 {"name": "0", "meta-type": "object", "members": []},
 {"name": "1", "meta-type": "object", "members": [
    {"name": "running", "type": "bool"},
    {"name": "status", "type": "2"},
    {"name": "reason", "type": "str", "default": null}]},
 {"name": "2", "meta-type": "enum", "values": ["debug", "running"]},
 {"name": "QueryStatusRetStatus", "meta-type": "enum", "members": [{"name": "x"}], "values": ["x"]},
 {"name": "bool", "meta-type": "builtin", "json-type": "boolean"},
 {"name": "str", "meta-type": "builtin", "json-type": "string"},
 {"name": "int", "meta-type": "builtin", "json-type": "int"},
 {"name": "null", "meta-type": "builtin", "json-type": "null"},
 {"name": "query-block", "meta-type": "command", "arg-type": "0", "ret-type": "[3]"},
 {"name": "[3]", "meta-type": "array", "element-type": "3"},
 {"name": "3", "meta-type": "object", "members": [
    {"name": "device", "type": "str"},
    {"name": "inserted", "type": "4", "default": null}]},
 {"name": "4", "meta-type": "object", "members": [
    {"name": "file", "type": "str"},
    {"name": "ro", "type": "bool", "features": ["deprecated"]},
    {"name": "backing", "type": "StrOrNull", "default": null}]},
 {"name": "StrOrNull", "meta-type": "alternate", "members": [{"type": "str"}, {"type": "null"}]},
 {"name": "blockdev-add", "meta-type": "command", "arg-type": "5", "ret-type": "0", "allow-oob": true},
 {"name": "5", "meta-type": "object", "members": [
    {"name": "driver", "type": "6"},
    {"name": "node-name", "type": "str", "default": null}],
  "tag": "driver", "variants": [{"case": "file", "type": "7"}, {"case": "null-co", "type": "0"}]},
 {"name": "6", "meta-type": "enum", "members": [{"name": "file"}, {"name": "null-co", "features": ["unstable"]}],
  "values": ["file", "null-co"]},
 {"name": "7", "meta-type": "object", "members": [
    {"name": "filename", "type": "str"},
    {"name": "aio", "type": "8", "default": null}], "future-key": 1},
 {"name": "8", "meta-type": "alternate", "members": [{"type": "str"}, {"type": "9"}, {"type": "[int]"}]},
 {"name": "9", "meta-type": "object", "members": [{"name": "x", "type": "int"}]},
 {"name": "[int]", "meta-type": "array", "element-type": "int"},
 {"name": "query-future", "meta-type": "command", "arg-type": "0", "ret-type": "x-gizmo"},
 {"name": "x-gizmo", "meta-type": "gizmo", "whatever": [1, 2]},
 {"name": "human-monitor-command", "meta-type": "command", "arg-type": "12", "ret-type": "str",
  "features": ["deprecated"]},
 {"name": "12", "meta-type": "object", "members": [{"name": "command-line", "type": "str"}]},
 {"name": "SHUTDOWN", "meta-type": "event", "arg-type": "10"},
 {"name": "10", "meta-type": "object", "members": [{"name": "guest", "type": "bool"}, {"name": "reason", "type": "11"}]},
 {"name": "11", "meta-type": "enum", "members": [{"name": "host-qmp-quit"}, {"name": "guest-reset"}]},
 {"name": "STOP", "meta-type": "event", "arg-type": "0"}
]}"#;

fn load() -> Schema {
    load_introspection(DUMP).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn masked_names_are_derived_from_their_first_use() {
    let s = load();
    let qb = s.command("query-block").expect("command");
    assert_eq!(
        qb.returns,
        Some(TypeRef::Array(Box::new(TypeRef::Named(
            "QueryBlockRet".into()
        ))))
    );
    let ret = s.struct_type("QueryBlockRet").expect("struct");
    assert_eq!(
        ret.members[1].ty,
        TypeRef::Named("QueryBlockRetInserted".into())
    );
    assert!(
        ret.members[1].optional,
        "'default' marks an optional member"
    );
    assert!(!ret.members[0].optional);
    let ins = s.struct_type("QueryBlockRetInserted").expect("struct");
    assert!(ins.members[1].is_deprecated());
    assert_eq!(
        ins.members[2].ty,
        TypeRef::Named("StrOrNull".into()),
        "real names are kept"
    );
    // A derived name that is taken gets a suffix.
    let qs = s.command("query-status").expect("command");
    assert_eq!(qs.returns, Some(TypeRef::Named("QueryStatusRet".into())));
    let st = s.struct_type("QueryStatusRet").expect("struct");
    assert_eq!(
        st.members[1].ty,
        TypeRef::Named("QueryStatusRetStatus2".into())
    );
    assert!(
        s.enum_type("QueryStatusRetStatus").is_some(),
        "the real one, though unreferenced"
    );
    // Event data stays inline; its member types are named after the event.
    let ev = s.event("SHUTDOWN").expect("event");
    let Arguments::Members(m) = &ev.data else {
        panic!("inline data expected")
    };
    assert_eq!(m[1].ty, TypeRef::Named("ShutdownReason".into()));
    assert!(s.event("STOP").expect("event").data.is_none());
    assert!(qs.arguments.is_none());
    assert_eq!(
        s.command("human-monitor-command")
            .expect("command")
            .argument_members(&s)[0]
            .name,
        "command-line"
    );
}

#[test]
fn old_values_and_new_members_of_enums() {
    let s = load();
    let old = s.enum_type("QueryStatusRetStatus2").expect("enum");
    assert_eq!(
        old.values
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>(),
        ["debug", "running"]
    );
    let new = s.enum_type("BlockdevAddArgDriver").expect("enum");
    assert!(new.values[1].features.iter().any(|f| f.is_unstable()));
}

#[test]
fn unions_alternates_and_arrays() {
    let s = load();
    let c = s.command("blockdev-add").expect("command");
    assert!(c.allow_oob);
    assert!(c.boxed, "a union argument type is boxed");
    assert_eq!(c.arguments, Arguments::Type("BlockdevAddArg".into()));
    assert!(c.returns.is_none(), "empty object return = no return type");
    let u = s.union_type("BlockdevAddArg").expect("union");
    assert!(
        matches!(&u.base, UnionBase::Inline(m) if m.len() == 2),
        "the union's own members are its base"
    );
    assert_eq!(u.discriminator, "driver");
    assert_eq!(u.discriminator_enum, "BlockdevAddArgDriver");
    assert_eq!(
        u.branches.len(),
        1,
        "a variant with the empty object is no branch"
    );
    assert_eq!(u.branches[0].ty_name, "BlockdevAddArgFile");
    let alt = s
        .alternate_type("BlockdevAddArgFileAio")
        .expect("alternate");
    let names: Vec<&str> = alt.branches.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        ["str", "object", "array"],
        "branch names derived from the branch type"
    );
    assert_eq!(
        alt.branches[1].ty,
        TypeRef::Named("BlockdevAddArgFileAioObject".into())
    );
    assert_eq!(
        alt.branches[2].ty,
        TypeRef::Array(Box::new(TypeRef::Builtin(Builtin::Int)))
    );
    assert_eq!(
        alt.branch_for(&s, JsonType::Array).map(|b| b.name.as_str()),
        Some("array")
    );
    let sn = s.alternate_type("StrOrNull").expect("alternate");
    assert_eq!(sn.branches[1].ty, TypeRef::Builtin(Builtin::Null));
}

#[test]
fn unknown_meta_type_reads_as_any() {
    let s = load();
    let c = s.command("query-future").expect("command");
    assert_eq!(c.returns, Some(TypeRef::Builtin(Builtin::Any)));
    assert!(s.get("x-gizmo").is_none());
}

#[test]
fn names_do_not_depend_on_the_order_of_the_dump() {
    let v: Value = serde_json::from_str(DUMP).expect("json");
    let mut list = v
        .get("return")
        .and_then(Value::as_array)
        .cloned()
        .expect("array");
    list.reverse();
    let a = introspect::from_value("dump", &v).expect("loads");
    let b = introspect::from_value("dump", &Value::Array(list)).expect("loads");
    assert_eq!(normalized::to_string(&a), normalized::to_string(&b));
}

#[test]
fn round_trips_through_the_normalized_form() {
    let s = load();
    let text = normalized::to_string(&s);
    let back = normalized::from_str("intro.json", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        back.without_docs_and_locations(),
        s.without_docs_and_locations()
    );
    // The inferred pragmas make the non-object return acceptable to the normalized check.
    assert!(s.pragmas.returns_exception("human-monitor-command"));
}

#[test]
fn load_path_detects_array_and_reply_forms() {
    let v: Value = serde_json::from_str(DUMP).expect("json");
    let array = serde_json::to_string(v.get("return").expect("return")).expect("json");
    let t = TempTree::new(&[("reply.json", DUMP), ("array.json", &array)]);
    let a = load_path(t.path("reply.json")).expect("reply form");
    let b = load_path(t.path("array.json")).expect("array form");
    assert_eq!(a.counts(), b.counts());
    assert_eq!(
        a.counts().to_string(),
        "commands 5  events 2  structs 5  unions 1  alternates 2  enums 4"
    );
    assert_eq!(
        a.source.as_deref(),
        Some("query-qmp-schema output reply.json")
    );
}

#[test]
fn broken_dumps_are_errors() {
    let cases: &[(&str, &str)] = &[
        ("{\"return\": 5}", "expected a JSON array of SchemaInfo"),
        ("[{\"meta-type\": \"enum\"}]", "[0]: missing \"name\""),
        ("[{\"name\": \"a\", \"meta-type\": \"command\", \"arg-type\": \"nope\"}]", "'a': \"arg-type\" 'nope' is not an object type"),
        (
            "[{\"name\": \"a\", \"meta-type\": \"command\", \"ret-type\": \"9\"}]",
            "type '9' is referenced but not in the data",
        ),
        (
            "[{\"name\": \"x\", \"meta-type\": \"enum\", \"values\": []}, {\"name\": \"x\", \"meta-type\": \"enum\", \"values\": []}]",
            "[1] 'x': duplicate name",
        ),
        (
            "[{\"name\": \"a\", \"meta-type\": \"command\", \"ret-type\": \"1\"}, {\"name\": \"1\", \"meta-type\": \"object\", \"members\": [{\"name\": \"t\", \"type\": \"2\"}], \"tag\": \"t\", \"variants\": []}, {\"name\": \"2\", \"meta-type\": \"enum\", \"values\": [\"v\"]}]",
            "a union needs at least one branch",
        ),
        ("[1,", "not valid JSON"),
        (
            "[{\"name\": \"c\", \"meta-type\": \"command\", \"ret-type\": \"[1]\"}, {\"name\": \"[1]\", \"meta-type\": \"array\", \"element-type\": \"[1]\"}]",
            "array '[1]' has an array element type",
        ),
        (
            "[{\"name\": \"c\", \"meta-type\": \"command\", \"ret-type\": \"e\"}, {\"name\": \"e\", \"meta-type\": \"event\"}]",
            "'e' is used as a type but is a command or event",
        ),
    ];
    for (text, want) in cases {
        let err = load_introspection(text).expect_err(text);
        assert!(err.to_string().contains(want), "{text}: {err}");
    }
}
