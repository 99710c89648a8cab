//! One tiny schema per edge case of the QAPI language, checked against the model.

mod common;

use common::TempTree;
use qmp_codegen::model::{
    Arguments, Builtin, Cond, Definition, JsonType, SectionKind, TypeRef, UnionBase,
};
use qmp_codegen::{normalized, parse_qapi, parse_qapi_str, Schema};

fn ok(text: &str) -> Schema {
    match parse_qapi_str("t.json", text) {
        Ok(s) => s,
        Err(e) => panic!("schema should pass: {e}"),
    }
}

fn sym(s: &str) -> Cond {
    Cond::Symbol(s.into())
}

fn named(s: &str) -> TypeRef {
    TypeRef::Named(s.into())
}

/// Every edge-case schema must also survive the normalized round trip.
fn round_trip(s: &Schema) {
    let text = normalized::to_string(s);
    let back = normalized::from_str("rt.json", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        back.without_docs_and_locations(),
        s.without_docs_and_locations()
    );
    assert_eq!(
        normalized::to_string(&back),
        text,
        "writing is deterministic"
    );
}

#[test]
fn keyword_members_and_values() {
    let s = ok(
        "{ 'enum': 'Kw', 'data': [ 'static', 'virtual', 'enum', 'type' ] }\n\
                { 'struct': 'Words', 'data': { 'type': 'str', 'in': 'int', 'match': 'bool', \
                  '*if': 'str', 'abstract': 'Kw', 'use': 'any' } }",
    );
    let w = s.struct_type("Words").expect("struct");
    let names: Vec<&str> = w.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["type", "in", "match", "if", "abstract", "use"]);
    assert!(
        w.members[3].optional,
        "'*if' is an optional member called 'if'"
    );
    assert_eq!(w.members[4].ty, named("Kw"));
    assert_eq!(w.members[5].ty, TypeRef::Builtin(Builtin::Any));
    let kw = s.enum_type("Kw").expect("enum");
    assert_eq!(
        kw.values
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>(),
        ["static", "virtual", "enum", "type"]
    );
    round_trip(&s);
}

#[test]
fn digit_enum_values() {
    let s = ok("{ 'pragma': { 'member-name-exceptions': [ 'Speed' ] } }\n\
                { 'enum': 'Floppy', 'data': [ '144', '288', '120', 'auto', 'none' ] }\n\
                { 'enum': 'Speed', 'data': [ '2_5', '5', '8', '16' ] }\n\
                { 'enum': 'Granule', 'data': [ '4k', '8k', '16k', 'host' ] }");
    assert_eq!(s.enum_type("Floppy").expect("enum").values[0].name, "144");
    assert_eq!(s.enum_type("Speed").expect("enum").values[0].name, "2_5");
    assert_eq!(s.enum_type("Granule").expect("enum").values[0].name, "4k");
    round_trip(&s);
}

#[test]
fn nested_union_branch() {
    // A union branch that is itself a union (QEMU 8.2 MigrationAddress -> SocketAddress).
    let s = ok("{ 'enum': 'SockType', 'data': [ 'inet', 'unix' ] }\n\
                { 'struct': 'Inet', 'data': { 'host': 'str', 'port': 'str' } }\n\
                { 'struct': 'Unix', 'data': { 'path': 'str' } }\n\
                { 'union': 'Sock', 'base': { 'type': 'SockType' }, 'discriminator': 'type',\n\
                  'data': { 'inet': 'Inet', 'unix': 'Unix' } }\n\
                { 'enum': 'Transport', 'data': [ 'socket', 'exec' ] }\n\
                { 'struct': 'MigBase', 'data': { 'transport': 'Transport' } }\n\
                { 'union': 'MigAddr', 'base': 'MigBase', 'discriminator': 'transport',\n\
                  'data': { 'socket': 'Sock' } }");
    let u = s.union_type("MigAddr").expect("union");
    assert_eq!(u.base, UnionBase::Named("MigBase".into()));
    assert_eq!(u.base_members.len(), 1);
    assert_eq!(u.discriminator_enum, "Transport");
    assert_eq!(
        u.branches.len(),
        1,
        "'exec' has no branch: base members only"
    );
    assert_eq!(u.branch("socket").map(|b| b.ty_name.as_str()), Some("Sock"));
    assert!(s.union_type("Sock").is_some());
    round_trip(&s);
}

#[test]
fn nested_union_clash_is_detected_through_the_inner_union() {
    let err = parse_qapi_str(
        "t.json",
        "{ 'enum': 'SockType', 'data': [ 'inet' ] }\n\
         { 'struct': 'Inet', 'data': { 'transport': 'str' } }\n\
         { 'union': 'Sock', 'base': { 'type': 'SockType' }, 'discriminator': 'type', 'data': { 'inet': 'Inet' } }\n\
         { 'enum': 'Transport', 'data': [ 'socket' ] }\n\
         { 'union': 'MigAddr', 'base': { 'transport': 'Transport' }, 'discriminator': 'transport',\n\
           'data': { 'socket': 'Sock' } }",
    )
    .expect_err("inner branch member clashes with the outer discriminator");
    assert!(
        err.to_string()
            .contains("member 'transport' of 'Inet' clashes with base member 'transport'"),
        "{err}"
    );
}

#[test]
fn alternate_with_array_branch() {
    let s = ok(
        "{ 'struct': 'Hist', 'data': { 'buckets': [ 'uint64' ] } }\n\
                { 'alternate': 'StatsValue', 'data': { 'scalar': 'uint64', 'boolean': 'bool',\n\
                  'list': [ 'uint64' ], 'histogram': 'Hist' } }\n\
                { 'enum': 'Mode', 'data': [ 'fast', 'slow' ] }\n\
                { 'alternate': 'ModeOrNull', 'data': { 'm': 'Mode', 'n': 'null' } }",
    );
    let a = s.alternate_type("StatsValue").expect("alternate");
    let json: Vec<Option<JsonType>> = a.branches.iter().map(|b| b.json_type(&s)).collect();
    assert_eq!(
        json,
        [
            Some(JsonType::Number),
            Some(JsonType::Boolean),
            Some(JsonType::Array),
            Some(JsonType::Object)
        ]
    );
    assert_eq!(
        a.branches[2].ty,
        TypeRef::Array(Box::new(TypeRef::Builtin(Builtin::Uint64)))
    );
    assert_eq!(
        a.branch_for(&s, JsonType::Array).map(|b| b.name.as_str()),
        Some("list")
    );
    let m = s.alternate_type("ModeOrNull").expect("alternate");
    assert_eq!(
        m.branch_for(&s, JsonType::String).map(|b| b.name.as_str()),
        Some("m")
    );
    assert_eq!(
        m.branch_for(&s, JsonType::Null).map(|b| b.name.as_str()),
        Some("n")
    );
    round_trip(&s);
}

#[test]
fn old_if_strings() {
    // QEMU 3.0-6.1 wrote C preprocessor expressions, and lists meaning "all".
    let s = ok("{ 'struct': 'Spice', 'data': {}, 'if': 'defined(CONFIG_SPICE)' }\n\
                { 'struct': 'Both', 'data': {}, 'if': 'defined(CONFIG_OPENGL) && defined(CONFIG_GBM)' }\n\
                { 'struct': 'Either', 'data': {},\n\
                  'if': 'defined(TARGET_S390X) || defined(TARGET_I386) || defined(TARGET_ARM)' }\n\
                { 'struct': 'Neither', 'data': {}, 'if': '!defined(CONFIG_WIN32)' }\n\
                { 'struct': 'Listed', 'data': {}, 'if': [ 'defined(A)', 'defined(B)' ] }\n\
                { 'struct': 'New', 'data': {}, 'if': { 'any': [ 'A', { 'not': 'B' } ] } }");
    let cond = |n: &str| s.get(n).and_then(|d| d.cond()).cloned();
    assert_eq!(cond("Spice"), Some(sym("CONFIG_SPICE")));
    assert_eq!(
        cond("Both"),
        Some(Cond::All(vec![sym("CONFIG_OPENGL"), sym("CONFIG_GBM")]))
    );
    assert_eq!(
        cond("Either").map(|c| c.to_string()).as_deref(),
        Some("any(TARGET_S390X, TARGET_I386, TARGET_ARM)")
    );
    assert_eq!(
        cond("Neither"),
        Some(Cond::Not(Box::new(sym("CONFIG_WIN32"))))
    );
    assert_eq!(cond("Listed"), Some(Cond::All(vec![sym("A"), sym("B")])));
    assert_eq!(
        cond("New").map(|c| c.to_string()).as_deref(),
        Some("any(A, not(B))")
    );
    let c = cond("New").expect("cond");
    assert!(c.eval(&|x| x == "A"));
    assert!(!c.eval(&|x| x == "B"));
    assert_eq!(c.symbols(), ["A", "B"]);
    round_trip(&s);
}

#[test]
fn simple_unions_become_flat() {
    let s = ok("{ 'pragma': { 'returns-whitelist': [] } }\n\
                { 'struct': 'Inet', 'data': { 'host': 'str' } }\n\
                { 'struct': 'String', 'data': { 'str': 'str' } }\n\
                { 'union': 'Addr', 'data': { 'inet': 'Inet', 'fd': 'String', 'many': [ 'Inet' ],\n\
                  'num': { 'type': 'int', 'if': 'CONFIG_NUM' } } }\n\
                { 'union': 'Other', 'data': { 'name': 'String' } }");
    let names: Vec<(&str, bool)> = s
        .definitions
        .iter()
        .map(|d| (d.name(), d.is_implicit()))
        .collect();
    assert_eq!(
        names,
        [
            ("Inet", false),
            ("String", false),
            ("Addr", false),
            ("AddrKind", true),
            ("q_obj_Inet-wrapper", true),
            ("q_obj_String-wrapper", true),
            ("q_obj_InetList-wrapper", true),
            ("q_obj_int-wrapper", true),
            ("Other", false),
            ("OtherKind", true),
        ],
        "implicit definitions follow their union; wrappers are shared"
    );
    let u = s.union_type("Addr").expect("union");
    assert!(u.simple_legacy);
    assert_eq!(u.discriminator, "type");
    assert_eq!(u.discriminator_enum, "AddrKind");
    assert_eq!(u.base_members.len(), 1);
    assert_eq!(u.base_members[0].ty, named("AddrKind"));
    assert_eq!(u.branches[2].ty_name, "q_obj_InetList-wrapper");
    assert_eq!(u.branches[3].cond, Some(sym("CONFIG_NUM")));
    let kind = s.enum_type("AddrKind").expect("enum");
    assert!(kind.implicit);
    assert_eq!(
        kind.values[3].cond,
        Some(sym("CONFIG_NUM")),
        "branch conditions carry over"
    );
    let w = s.struct_type("q_obj_InetList-wrapper").expect("wrapper");
    assert_eq!(w.members[0].name, "data");
    assert_eq!(w.members[0].ty, TypeRef::Array(Box::new(named("Inet"))));
    let c = s.counts();
    assert_eq!(
        (c.unions, c.enums, c.structs),
        (2, 0, 2),
        "implicit definitions are not counted"
    );
    round_trip(&s);
}

#[test]
fn conditions_everywhere() {
    let s = ok("{ 'enum': 'Ev', 'data': [ 'a', { 'name': 'b', 'if': 'C_VAL', 'features': [ { 'name': 'deprecated', 'if': 'C_FEAT' } ] } ],\n\
                  'if': 'C_ENUM' }\n\
                { 'struct': 'Sb', 'data': { 'm': { 'type': 'str', 'if': { 'all': [ 'C_MEM', 'C_X' ] } } },\n\
                  'if': 'C_STRUCT', 'features': [ { 'name': 'custom', 'if': 'C_F' } ] }\n\
                { 'union': 'Un', 'base': { 'k': 'Ev' }, 'discriminator': 'k',\n\
                  'data': { 'b': { 'type': 'Sb', 'if': 'C_BRANCH' } }, 'if': 'C_UNION' }\n\
                { 'alternate': 'Al', 'data': { 's': { 'type': 'str', 'if': 'C_ALT' }, 'o': 'Sb' } }\n\
                { 'command': 'cmd', 'data': { '*x': { 'type': 'int', 'if': 'C_ARG' } }, 'if': { 'not': 'C_CMD' } }\n\
                { 'event': 'EVT', 'data': 'Sb', 'if': 'C_EVT' }");
    let e = s.enum_type("Ev").expect("enum");
    assert_eq!(e.cond, Some(sym("C_ENUM")));
    assert_eq!(e.values[1].cond, Some(sym("C_VAL")));
    assert_eq!(e.values[1].features[0].cond, Some(sym("C_FEAT")));
    assert!(e.values[1].is_deprecated());
    let st = s.struct_type("Sb").expect("struct");
    assert_eq!(
        st.members[0]
            .cond
            .as_ref()
            .map(|c| c.to_string())
            .as_deref(),
        Some("all(C_MEM, C_X)")
    );
    assert_eq!(st.features[0].cond, Some(sym("C_F")));
    let u = s.union_type("Un").expect("union");
    assert_eq!(u.branches[0].cond, Some(sym("C_BRANCH")));
    assert_eq!(
        s.alternate_type("Al").expect("alternate").branches[0].cond,
        Some(sym("C_ALT"))
    );
    let c = s.command("cmd").expect("command");
    assert_eq!(c.cond, Some(Cond::Not(Box::new(sym("C_CMD")))));
    assert_eq!(c.argument_members(&s)[0].cond, Some(sym("C_ARG")));
    let ev = s.event("EVT").expect("event");
    assert_eq!(
        ev.data,
        Arguments::Type("Sb".into()),
        "event data naming a type (8.2+)"
    );
    assert_eq!(ev.argument_members(&s).len(), 1);
    round_trip(&s);
}

#[test]
fn commands_flags_and_arguments() {
    let s = ok("{ 'pragma': { 'command-name-exceptions': [ 'device_add' ],\n\
                  'command-returns-exceptions': [ 'qom-get', 'guest-sync' ] } }\n\
                { 'struct': 'Info', 'base': 'InfoBase', 'data': { 'b': 'int' } }\n\
                { 'struct': 'InfoBase', 'data': { 'a': 'str' } }\n\
                { 'enum': 'Drv', 'data': [ 'x' ] }\n\
                { 'union': 'Opts', 'base': { 'driver': 'Drv', '*id': 'str' }, 'discriminator': 'driver', 'data': { 'x': 'Info' } }\n\
                { 'command': 'device_add', 'data': { 'driver': 'str' }, 'gen': false, 'allow-preconfig': true }\n\
                { 'command': 'qom-get', 'data': 'Info', 'returns': 'any' }\n\
                { 'command': 'guest-sync', 'returns': 'int', 'success-response': false }\n\
                { 'command': 'blockdev-add', 'data': 'Opts', 'boxed': true, 'allow-oob': true }\n\
                { 'command': 'query-all', 'returns': [ 'Info' ], 'coroutine': true,\n\
                  'features': [ 'deprecated', 'unstable' ] }\n\
                { 'event': 'NOTHING' }");
    let d = s.command("device_add").expect("cmd");
    assert!(!d.gen && d.allow_preconfig && d.success_response && !d.boxed);
    let q = s.command("qom-get").expect("cmd");
    assert_eq!(q.arguments, Arguments::Type("Info".into()));
    let names: Vec<&str> = q
        .argument_members(&s)
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["a", "b"],
        "base members first (forward reference to the base is fine)"
    );
    assert_eq!(q.returns, Some(TypeRef::Builtin(Builtin::Any)));
    assert!(!s.command("guest-sync").expect("cmd").success_response);
    let b = s.command("blockdev-add").expect("cmd");
    assert!(b.boxed && b.allow_oob);
    assert_eq!(b.argument_members(&s).len(), 2, "a union's base members");
    let qa = s.command("query-all").expect("cmd");
    assert_eq!(qa.returns, Some(TypeRef::Array(Box::new(named("Info")))));
    let def = s.get("query-all").expect("def");
    assert!(def.is_deprecated() && def.is_unstable() && qa.coroutine);
    assert!(s.event("NOTHING").expect("event").data.is_none());
    assert_eq!(s.struct_type("Info").expect("struct").own_members.len(), 1);
    round_trip(&s);
}

#[test]
fn docs_are_attached_and_since_extracted() {
    let s = ok("##\n\
                # = Section heading (free-form block)\n\
                #\n\
                # Some text with a `Reference` and @name.\n\
                ##\n\
                \n\
                ##\n\
                # ****************\n\
                # rST heading (10.2 style)\n\
                # ****************\n\
                ##\n\
                \n\
                ##\n\
                # @Thing:\n\
                #\n\
                # A thing.\n\
                #\n\
                # @name: its name\n\
                #\n\
                # @size: its size in bytes, a rather long description that\n\
                #     goes on (since 2.12)\n\
                #\n\
                # Features:\n\
                #\n\
                # @deprecated: Member @size is deprecated.\n\
                #\n\
                # .. note:: A note.\n\
                #\n\
                # Since: 1.5\n\
                ##\n\
                { 'struct': 'Thing', 'data': { 'name': 'str',\n\
                  'size': { 'type': 'int', 'features': [ 'deprecated' ] } } }\n\
                \n\
                ##\n\
                # @get-thing:\n\
                #\n\
                # Returns: the @Thing\n\
                #\n\
                # Errors:\n\
                #     - If there is none, GenericError\n\
                #\n\
                # Since: 9.0\n\
                #\n\
                # .. qmp-example::\n\
                #\n\
                #     -> { \"execute\": \"get-thing\" }\n\
                #     <- { \"return\": { \"name\": \"x\", \"size\": 1 } }\n\
                ##\n\
                { 'command': 'get-thing', 'returns': 'Thing' }\n");
    let t = s.struct_type("Thing").expect("struct");
    assert_eq!(t.since.as_deref(), Some("1.5"));
    let doc = t.doc.as_ref().expect("doc");
    assert_eq!(doc.body, "A thing.");
    assert_eq!(t.members[0].doc.as_deref(), Some("its name"));
    assert_eq!(t.members[0].since, None);
    assert_eq!(t.members[1].since.as_deref(), Some("2.12"));
    assert!(t.members[1].is_deprecated());
    assert_eq!(
        doc.feature("deprecated"),
        Some("Member @size is deprecated.")
    );
    let c = s.command("get-thing").expect("command");
    let cdoc = c.doc.as_ref().expect("doc");
    assert_eq!(c.since.as_deref(), Some("9.0"));
    assert_eq!(cdoc.section(SectionKind::Returns), Some("the @Thing"));
    assert_eq!(
        cdoc.section(SectionKind::Errors),
        Some("- If there is none, GenericError")
    );
    assert!(cdoc
        .sections
        .iter()
        .any(|x| x.kind == SectionKind::Plain && x.text.contains("qmp-example")));
    // Prose never reaches the normalized form, facts do.
    let text = normalized::to_string(&s);
    assert!(
        !text.contains("A thing") && !text.contains("its name"),
        "{text}"
    );
    assert!(text.contains("\"since\": \"2.12\""));
    round_trip(&s);
}

#[test]
fn old_doc_layout() {
    let s = ok("##\n\
                # @query-name:\n\
                #\n\
                # Return the name information of a guest.\n\
                #\n\
                # @verbose: #optional whether to say more\n\
                #           (Since 2.7)\n\
                #\n\
                # Returns: @NameInfo of the guest\n\
                #\n\
                # Since 0.14.0\n\
                #\n\
                # Example:\n\
                #\n\
                # -> { \"execute\": \"query-name\" }\n\
                # <- { \"return\": { \"name\": \"qemu-name\" } }\n\
                #\n\
                # Notes: the name may be empty\n\
                ##\n\
                { 'command': 'query-name', 'data': { '*verbose': 'bool' } }");
    let c = s.command("query-name").expect("command");
    assert_eq!(
        c.since.as_deref(),
        Some("0.14.0"),
        "old 'Since X' line without colon"
    );
    assert_eq!(c.argument_members(&s)[0].since.as_deref(), Some("2.7"));
    let doc = c.doc.as_ref().expect("doc");
    assert!(doc
        .section(SectionKind::Example)
        .is_some_and(|e| e.contains("<- { \"return\"")));
    assert_eq!(
        doc.section(SectionKind::Note),
        Some("the name may be empty")
    );
}

#[test]
fn legacy_pragmas_select_legacy_name_rules() {
    // Pre-6.0 schemas: '_' in command and member names is fine, uppercase needs the whitelist,
    // and members of an inline union base are whitelisted by QEMU's implicit type name.
    let s = ok("{ 'pragma': { 'name-case-whitelist': [ 'q_obj_Cpu-base', 'UuidInfo' ],\n\
                  'returns-whitelist': [ 'query_cpu_count' ] } }\n\
                { 'pragma': { 'doc-required': false } }\n\
                { 'struct': 'UuidInfo', 'data': { 'UUID': 'str', 'long_name': 'str' } }\n\
                { 'enum': 'CpuArch', 'data': [ 'x86' ] }\n\
                { 'struct': 'CpuX86', 'data': { 'pc': 'int' } }\n\
                { 'union': 'Cpu', 'base': { 'CPU': 'int', 'arch': 'CpuArch' }, 'discriminator': 'arch',\n\
                  'data': { 'x86': 'CpuX86' } }\n\
                { 'command': 'query_cpu_count', 'returns': 'int' }");
    assert!(s.pragmas.legacy_names());
    assert_eq!(s.pragmas.name_case_whitelist.len(), 2);
    assert!(s.command("query_cpu_count").is_some());
    assert_eq!(s.counts().commands, 1);
    round_trip(&s);
}

#[test]
fn legacy_returns_whitelist_is_honoured() {
    let err = parse_qapi_str(
        "t.json",
        "{ 'pragma': { 'returns-whitelist': [ 'other' ] } }\n{ 'command': 'get-n', 'returns': 'int' }",
    )
    .expect_err("not whitelisted");
    assert!(
        err.to_string().contains("pragma 'returns-whitelist'"),
        "{err}"
    );
    ok("{ 'pragma': { 'returns-whitelist': [ 'get-n' ] } }\n{ 'command': 'get-n', 'returns': 'int' }");
}

#[test]
fn includes_relative_with_dotdot_each_file_once() {
    let t = TempTree::new(&[
        (
            "daemon/qapi/root.json",
            "{ 'include': '../../qapi/common.json' }\n\
                                    { 'include': '../../qapi/block.json' }\n\
                                    { 'include': '../../qapi/./common.json' }\n\
                                    { 'command': 'quit' }\n",
        ),
        (
            "qapi/common.json",
            "{ 'enum': 'OnOff', 'data': [ 'on', 'off' ] }\n",
        ),
        (
            "qapi/block.json",
            "{ 'include': 'common.json' }\n\
                             { 'struct': 'BlockOpts', 'data': { 'flag': 'OnOff' } }\n",
        ),
    ]);
    let s = parse_qapi(t.path("daemon/qapi/root.json")).expect("loads");
    let names: Vec<&str> = s.definitions.iter().map(|d| d.name()).collect();
    assert_eq!(
        names,
        ["OnOff", "BlockOpts", "quit"],
        "include-expanded order, each file once"
    );
    let loc = s.get("BlockOpts").expect("def").location();
    assert!(loc.file.ends_with("qapi/block.json"), "{loc}");
    assert_eq!(loc.line, 2);
    assert_eq!(s.source.as_deref(), Some("root.json"));
}

#[test]
fn pragmas_merge() {
    let s = ok("{ 'pragma': { 'doc-required': false } }\n\
                { 'pragma': { 'command-name-exceptions': [ 'a_b' ] } }\n\
                { 'pragma': { 'command-name-exceptions': [ 'c_d' ], 'member-name-exceptions': [ 'Xy' ] } }\n\
                { 'command': 'a_b' }\n{ 'command': 'c_d' }\n\
                { 'struct': 'Xy', 'data': { 'Up_per': 'str' } }");
    assert_eq!(s.pragmas.command_name_exceptions, ["a_b", "c_d"]);
    assert!(s.pragmas.member_name_exception("Xy"));
    round_trip(&s);
}

#[test]
fn forward_references_and_empty_things() {
    let s = ok(
        "{ 'command': 'make', 'data': { 'opts': 'Later' }, 'returns': [ 'Later' ] }\n\
                { 'struct': 'Later', 'data': { '*next': [ 'Later' ], 'e': 'Empty' } }\n\
                { 'enum': 'Empty', 'data': [] }\n\
                { 'struct': 'Nothing', 'data': {} }\n\
                { 'enum': 'WithPrefix', 'prefix': 'QAPI_WP', 'data': [ 'a' ] }",
    );
    assert_eq!(
        s.struct_type("Later").expect("struct").members[0].ty,
        TypeRef::Array(Box::new(named("Later")))
    );
    assert!(s.enum_type("Empty").expect("enum").values.is_empty());
    assert_eq!(
        s.enum_type("WithPrefix").expect("enum").prefix.as_deref(),
        Some("QAPI_WP")
    );
    assert!(matches!(s.get("Nothing"), Some(Definition::Struct(x)) if x.members.is_empty()));
    round_trip(&s);
}

#[test]
fn downstream_and_experimental_names() {
    let s = ok("{ 'struct': '__com.redhat_Thing', 'data': { '__com.redhat_x': 'str', 'x-debug': 'bool' } }\n\
                { 'command': '__org.qemu_x-do', 'data': '__com.redhat_Thing' }\n\
                { 'event': 'X_STUFF' }");
    assert_eq!(
        s.counts().to_string(),
        "commands 1  events 1  structs 1  unions 0  alternates 0  enums 0"
    );
    round_trip(&s);
}
