//! Malformed schemas: each must fail with a message that says what is wrong and where.

mod common;

use common::TempTree;
use qmp_codegen::{parse_qapi, parse_qapi_str, SchemaError};

/// Parses `text` as `t.json` and returns the error's one-line message.
fn fail(text: &str) -> String {
    match parse_qapi_str("t.json", text) {
        Ok(s) => panic!("schema unexpectedly passed: {:?}", s.counts()),
        Err(e) => e.to_string(),
    }
}

/// Asserts the message starts with `loc` and contains every fragment.
#[track_caller]
fn assert_msg(msg: &str, loc: &str, fragments: &[&str]) {
    assert!(
        msg.starts_with(loc),
        "message should start with {loc:?}: {msg}"
    );
    for f in fragments {
        assert!(msg.contains(f), "message should contain {f:?}: {msg}");
    }
}

macro_rules! neg {
    ($name:ident, $text:expr, $loc:expr, $($frag:expr),+ $(,)?) => {
        #[test]
        fn $name() {
            let msg = fail($text);
            assert_msg(&msg, $loc, &[$($frag),+]);
        }
    };
}

// ---- lexical -------------------------------------------------------------------------------

neg!(
    double_quotes,
    "{ \"enum\": 'Aa', 'data': [] }",
    "t.json:1:3: syntax error:",
    "double-quoted strings are not allowed"
);
neg!(
    bad_escape,
    "{ 'enum': 'Aa',\n  'data': [ 'a\\n' ] }",
    "t.json:2:15: syntax error:",
    "unknown escape '\\n'",
    "only '\\\\' is allowed"
);
neg!(
    non_ascii_in_string,
    "{ 'enum': 'Aa', 'data': [ 'caf\u{e9}' ] }",
    "t.json:1:31: syntax error:",
    "non-ASCII character",
    "only printable ASCII"
);
neg!(
    number_literal,
    "{ 'enum': 'Aa',\n  'data': [ 1 ] }",
    "t.json:2:13: syntax error:",
    "numbers are not allowed"
);
neg!(
    null_literal,
    "{ 'struct': 'Aa', 'data': null }",
    "t.json:1:27: syntax error:",
    "'null' is not allowed"
);
neg!(
    unterminated_string,
    "{ 'enum': 'A,\n  'data': [] }",
    "t.json:1:11: syntax error:",
    "unterminated string"
);
neg!(
    missing_comma,
    "{ 'enum': 'Aa' 'data': [] }",
    "t.json:1:16: syntax error:",
    "expected ',' or '}' after object member"
);
neg!(
    top_level_not_object,
    "[ 'enum' ]",
    "t.json:1:1: syntax error:",
    "expected '{' to start a definition"
);
neg!(
    unexpected_eof,
    "{ 'enum': 'Aa', 'data': [",
    "t.json:1:26: syntax error:",
    "unexpected end of file"
);
neg!(
    duplicate_key,
    "{ 'struct': 'Aa',\n  'data': {},\n  'data': {} }",
    "t.json:3:3: syntax error:",
    "duplicate key 'data'"
);
neg!(
    doc_missing_space,
    "##\n# @A:\n#text\n##\n{ 'enum': 'Aa', 'data': [] }",
    "t.json:3:1: syntax error:",
    "missing space after '#'"
);
neg!(
    doc_unterminated,
    "##\n# @A:\n# text\n",
    "t.json:1:1: syntax error:",
    "unterminated documentation block"
);
neg!(
    deep_nesting,
    &format!(
        "{{ 'struct': 'Aa', 'data': {}'str'{} }}",
        "[".repeat(40),
        "]".repeat(40)
    ),
    "t.json:1:",
    "nesting deeper than 32 levels"
);

// ---- expression shape ----------------------------------------------------------------------

neg!(
    unknown_key,
    "{ 'struct': 'Aa', 'data': {},\n  'bse': 'Bb' }",
    "t.json:2: struct 'Aa':",
    "unknown key 'bse' in struct",
    "allowed: struct, data, base, if, features"
);
neg!(
    missing_kind,
    "{ 'data': {} }",
    "t.json:1: definition:",
    "exactly one of the keys enum, struct, union, alternate, command, event"
);
neg!(
    two_kinds,
    "{ 'struct': 'Aa', 'enum': 'Aa', 'data': {} }",
    "t.json:1: definition:",
    "several kind keys (enum, struct)"
);
neg!(
    missing_data,
    "{ 'enum': 'Aa' }",
    "t.json:1: enum 'Aa':",
    "missing required key 'data'"
);
neg!(
    bad_flag_value,
    "{ 'command': 'do-it',\n  'boxed': false }",
    "t.json:2: command 'do-it':",
    "flag 'boxed' may only be true"
);
neg!(
    bad_gen_flag,
    "{ 'command': 'do-it', 'gen': true }",
    "t.json:1: command 'do-it':",
    "flag 'gen' may only be false"
);
neg!(
    array_of_arrays,
    "{ 'struct': 'Aa', 'data': { 'm': [ ['str'] ] } }",
    "t.json:1: struct 'Aa':",
    "arrays of arrays are not expressible"
);
neg!(
    optional_branch,
    "{ 'alternate': 'Alt', 'data': { '*a': 'str' } }",
    "t.json:1: alternate 'Alt':",
    "branch '*a' cannot be optional"
);
neg!(
    unknown_pragma,
    "{ 'pragma': { 'doc-requird': true } }",
    "t.json:1: pragma:",
    "unknown pragma 'doc-requird'"
);
neg!(
    pragma_not_list,
    "{ 'pragma': { 'command-name-exceptions': 'a_b' } }",
    "t.json:1: pragma:",
    "must be a list of names"
);

// ---- conditions and features ----------------------------------------------------------------

neg!(
    bad_if_empty_all,
    "{ 'struct': 'Aa', 'data': {},\n  'if': { 'all': [] } }",
    "t.json:2: struct 'Aa':",
    "bad 'if'",
    "'all' list must not be empty"
);
neg!(
    bad_if_old_expression,
    "{ 'struct': 'Aa', 'data': {}, 'if': 'defined(A' }",
    "t.json:1: struct 'Aa':",
    "bad 'if'",
    "invalid condition 'defined(A'"
);
neg!(
    bad_if_operator,
    "{ 'struct': 'Aa', 'data': {}, 'if': { 'xor': ['Aa', 'Bb'] } }",
    "t.json:1: struct 'Aa':",
    "unknown condition operator 'xor'"
);
neg!(
    bad_if_two_keys,
    "{ 'struct': 'Aa', 'data': {}, 'if': { 'not': 'Aa', 'all': ['Bb'] } }",
    "t.json:1: struct 'Aa':",
    "exactly one key"
);
neg!(
    deprecated_on_type,
    "{ 'struct': 'Aa', 'data': {},\n  'features': [ 'deprecated' ] }",
    "t.json:2: struct 'Aa':",
    "feature 'deprecated' is not allowed on a type"
);
neg!(
    duplicate_feature,
    "{ 'command': 'do-it', 'features': [ 'a', { 'name': 'a', 'if': 'X' } ] }",
    "t.json:1: command 'do-it':",
    "duplicate feature 'a'"
);
neg!(
    bad_feature_shape,
    "{ 'command': 'do-it', 'features': [ true ] }",
    "t.json:1: command 'do-it':",
    "a feature must be a name or an object"
);
neg!(
    bad_feature_name,
    "{ 'command': 'do-it', 'features': [ 'Fancy' ] }",
    "t.json:1: command 'do-it':",
    "feature name 'Fancy' must not use upper case"
);

// ---- names ----------------------------------------------------------------------------------

neg!(
    command_underscore,
    "{ 'command': 'do_it' }",
    "t.json:1: command 'do_it':",
    "command name 'do_it' must use '-', not '_'",
    "command-name-exceptions"
);
neg!(
    type_not_camel,
    "{ 'struct': 'my-type', 'data': {} }",
    "t.json:1: struct 'my-type':",
    "must use CamelCase"
);
neg!(
    event_lower_case,
    "{ 'event': 'shutdown' }",
    "t.json:1: event 'shutdown':",
    "UPPER_CASE"
);
neg!(
    member_upper_case,
    "{ 'struct': 'Aa',\n  'data': { 'Big': 'str' } }",
    "t.json:2: struct 'Aa':",
    "member 'Big' must not use upper case",
    "member-name-exceptions"
);
neg!(
    type_ends_in_list,
    "{ 'struct': 'ThingList', 'data': {} }",
    "t.json:1: struct 'ThingList':",
    "must not end in 'List'"
);
neg!(
    reserved_q_prefix,
    "{ 'struct': 'q_obj_Foo', 'data': {} }",
    "t.json:1: struct 'q_obj_Foo':",
    "uses the prefix 'q_', which is reserved"
);
neg!(
    reserved_q_member,
    "{ 'struct': 'Aa', 'data': { 'q-thing': 'str' } }",
    "t.json:1: struct 'Aa':",
    "member 'q-thing' uses the reserved prefix 'q_'"
);
neg!(
    reserved_has_member,
    "{ 'struct': 'Aa', 'data': { 'has-foo': 'str' } }",
    "t.json:1: struct 'Aa':",
    "member name 'has-foo' is reserved"
);
neg!(
    invalid_name,
    "{ 'enum': 'Aa', 'data': [ 'a b' ] }",
    "t.json:1: enum 'Aa':",
    "value 'a b' has an invalid name"
);
neg!(
    builtin_redefined,
    "{ 'enum': 'str', 'data': [] }",
    "t.json:1: enum 'str':",
    "'str' is a built-in type and cannot be redefined"
);

// ---- resolution and namespace -----------------------------------------------------------------

neg!(
    unknown_type,
    "{ 'struct': 'Aa',\n  'data': { 'm': 'Nope' } }",
    "t.json:2: struct 'Aa', member 'm':",
    "unknown type 'Nope'"
);
neg!(
    command_used_as_type,
    "{ 'command': 'do-it' }\n{ 'struct': 'Aa', 'data': { 'm': 'do-it' } }",
    "t.json:2: struct 'Aa', member 'm':",
    "'do-it' is a command, not a type"
);
neg!(
    redefinition,
    "{ 'struct': 'Aa', 'data': {} }\n{ 'enum': 'Aa', 'data': [] }",
    "t.json:2: enum 'Aa':",
    "'Aa' is already defined as struct at t.json:1",
    "one namespace"
);
neg!(
    base_loop,
    "{ 'struct': 'Aa', 'base': 'Bb', 'data': {} }\n{ 'struct': 'Bb', 'base': 'Aa', 'data': {} }",
    "t.json:1: struct 'Aa':",
    "base chain loops: Aa -> Bb -> Aa"
);
neg!(
    base_not_struct,
    "{ 'enum': 'Ee', 'data': [] }\n{ 'struct': 'Aa', 'base': 'Ee', 'data': {} }",
    "t.json:2: struct 'Aa':",
    "base 'Ee' is enum 'Ee', but a struct's base must be a struct"
);
neg!(member_clash, "{ 'pragma': { 'member-name-exceptions': [ 'Aa' ] } }\n{ 'struct': 'Aa',\n  'data': { 'a-b': 'str',\n            'a_b': 'int' } }",
    "t.json:4: struct 'Aa':", "member 'a_b' clashes with member 'a-b'");
neg!(member_clash_with_base, "{ 'struct': 'Bb', 'data': { 'x': 'str' } }\n{ 'struct': 'Aa', 'base': 'Bb',\n  'data': { '*x': 'int' } }",
    "t.json:3: struct 'Aa':", "member 'x' clashes with member 'x' inherited from base 'Bb'");
neg!(enum_value_clash, "{ 'pragma': { 'member-name-exceptions': [ 'Ee' ] } }\n{ 'enum': 'Ee', 'data': [ 'a_b', 'a-b' ] }",
    "t.json:2: enum 'Ee':", "value 'a-b' clashes with value 'a_b'");
neg!(
    simple_union_kind_clash,
    "{ 'enum': 'UuKind', 'data': [] }\n{ 'union': 'Uu', 'data': { 'a': 'str' } }",
    "t.json:2: enum 'UuKind':",
    "implicit enum 'UuKind'",
    "clashes with enum 'UuKind' at t.json:1"
);

// ---- unions ---------------------------------------------------------------------------------

const UNION_PRELUDE: &str =
    "{ 'enum': 'Kk', 'data': [ 'a', 'b' ] }\n{ 'struct': 'Sa', 'data': { 'x': 'str' } }\n";

neg!(discriminator_missing,
    &format!("{UNION_PRELUDE}{{ 'union': 'Uu', 'base': {{ 'kind': 'Kk' }},\n  'discriminator': 'type',\n  'data': {{ 'a': 'Sa' }} }}"),
    "t.json:4: union 'Uu':", "discriminator 'type' is not a member of the base (base members: kind)");
neg!(discriminator_optional,
    &format!("{UNION_PRELUDE}{{ 'union': 'Uu', 'base': {{ '*kind': 'Kk' }}, 'discriminator': 'kind', 'data': {{ 'a': 'Sa' }} }}"),
    "t.json:3: union 'Uu':", "discriminator member 'kind' must not be optional");
neg!(discriminator_not_enum,
    &format!("{UNION_PRELUDE}{{ 'union': 'Uu', 'base': {{ 'kind': 'str' }}, 'discriminator': 'kind', 'data': {{ 'a': 'Sa' }} }}"),
    "t.json:3: union 'Uu':", "discriminator member 'kind' has type 'str', but it must be an enum type");
neg!(discriminator_conditional,
    &format!("{UNION_PRELUDE}{{ 'union': 'Uu', 'base': {{ 'kind': {{ 'type': 'Kk', 'if': 'CONFIG_X' }} }}, 'discriminator': 'kind', 'data': {{ 'a': 'Sa' }} }}"),
    "t.json:3: union 'Uu':", "discriminator member 'kind' must not be conditional");
neg!(branch_not_enum_value,
    &format!("{UNION_PRELUDE}{{ 'union': 'Uu', 'base': {{ 'kind': 'Kk' }}, 'discriminator': 'kind',\n  'data': {{ 'c': 'Sa' }} }}"),
    "t.json:4: union 'Uu':", "branch 'c' is not a value of the discriminator enum 'Kk' (values: a, b)");
neg!(branch_not_object,
    &format!("{UNION_PRELUDE}{{ 'union': 'Uu', 'base': {{ 'kind': 'Kk' }}, 'discriminator': 'kind', 'data': {{ 'a': 'Kk' }} }}"),
    "t.json:3: union 'Uu':", "branch 'a' has type enum 'Kk', but a union branch must be an object type");
neg!(branch_member_clash,
    &format!("{UNION_PRELUDE}{{ 'union': 'Uu', 'base': {{ 'kind': 'Kk', 'x': 'int' }}, 'discriminator': 'kind', 'data': {{ 'a': 'Sa' }} }}"),
    "t.json:3: union 'Uu':", "branch 'a': member 'x' of 'Sa' clashes with base member 'x'");
neg!(union_base_is_union,
    &format!("{UNION_PRELUDE}{{ 'union': 'Uu', 'base': {{ 'kind': 'Kk' }}, 'discriminator': 'kind', 'data': {{ 'a': 'Sa' }} }}\n{{ 'union': 'Vv', 'base': 'Uu', 'discriminator': 'kind', 'data': {{ 'a': 'Sa' }} }}"),
    "t.json:4: union 'Vv':", "base 'Uu' is union 'Uu', but a union's base must be a struct");
neg!(
    union_base_without_discriminator,
    &format!(
        "{UNION_PRELUDE}{{ 'union': 'Uu', 'base': {{ 'kind': 'Kk' }}, 'data': {{ 'a': 'Sa' }} }}"
    ),
    "t.json:3: union 'Uu':",
    "also needs 'discriminator'"
);
neg!(union_no_branches,
    &format!("{UNION_PRELUDE}{{ 'union': 'Uu', 'base': {{ 'kind': 'Kk' }}, 'discriminator': 'kind', 'data': {{}} }}"),
    "t.json:3: union 'Uu':", "at least one branch");

// ---- alternates -----------------------------------------------------------------------------

neg!(
    alternate_two_numbers,
    "{ 'alternate': 'Alt',\n  'data': { 'i': 'int',\n            'n': 'number' } }",
    "t.json:3: alternate 'Alt':",
    "branch 'n' (number) cannot be distinguished from branch 'i'"
);
neg!(
    alternate_str_and_bool,
    "{ 'alternate': 'Alt', 'data': { 's': 'str', 'b': 'bool' } }",
    "t.json:1: alternate 'Alt':",
    "branch 'b' (bool) cannot be distinguished from branch 's'"
);
neg!(alternate_enum_on_off_and_bool,
    "{ 'enum': 'OnOff', 'data': [ 'on', 'off' ] }\n{ 'alternate': 'Alt', 'data': { 'b': 'bool', 'e': 'OnOff' } }",
    "t.json:2: alternate 'Alt':", "branch 'e' (OnOff) cannot be distinguished from branch 'b'");
neg!(
    alternate_any,
    "{ 'alternate': 'Alt', 'data': { 'a': 'any' } }",
    "t.json:1: alternate 'Alt':",
    "branch 'a' cannot be 'any'"
);
neg!(
    alternate_nested,
    "{ 'alternate': 'In', 'data': { 's': 'str' } }\n{ 'alternate': 'Out', 'data': { 'i': 'In' } }",
    "t.json:2: alternate 'Out':",
    "alternates cannot nest"
);

// ---- commands and events ----------------------------------------------------------------------

neg!(
    returns_not_allowed,
    "{ 'command': 'get-name',\n  'returns': 'str' }",
    "t.json:2: command 'get-name':",
    "'returns' is 'str', but a command may only return an object type",
    "command-returns-exceptions"
);
neg!(
    boxed_without_data,
    "{ 'command': 'do-it', 'boxed': true }",
    "t.json:1: command 'do-it':",
    "'boxed': true requires 'data'"
);
neg!(union_data_without_boxed,
    &format!("{UNION_PRELUDE}{{ 'union': 'Uu', 'base': {{ 'kind': 'Kk' }}, 'discriminator': 'kind', 'data': {{ 'a': 'Sa' }} }}\n{{ 'command': 'do-it', 'data': 'Uu' }}"),
    "t.json:4: command 'do-it':", "'data' names union 'Uu', which requires 'boxed': true");
neg!(
    data_names_enum,
    "{ 'enum': 'Ee', 'data': [] }\n{ 'event': 'SOMETHING', 'data': 'Ee' }",
    "t.json:2: event 'SOMETHING':",
    "'data' must be inline members or name a struct; 'Ee' is a enum"
);
neg!(
    oob_and_coroutine,
    "{ 'command': 'do-it', 'allow-oob': true, 'coroutine': true }",
    "t.json:1: command 'do-it':",
    "'coroutine': true and 'allow-oob': true cannot be combined"
);

// ---- documentation --------------------------------------------------------------------------

neg!(
    doc_name_mismatch,
    "\n##\n# @Foo:\n#\n# Text.\n##\n{ 'struct': 'Bar', 'data': {} }",
    "t.json:2: documentation:",
    "documentation block is for 'Foo' but the definition that follows is 'Bar'"
);
neg!(
    doc_describes_a_member_that_does_not_exist,
    "##\n# @Job:\n#\n# @statuz: typo\n##\n{ 'struct': 'Job', 'data': { 'status': 'str' } }",
    "t.json:6: documentation:",
    "the doc comment of struct 'Job' describes '@statuz', which is not one of its members",
    "it has: status"
);
neg!(
    doc_describes_an_enum_value_that_does_not_exist,
    "##\n# @Mode:\n#\n# @c: no such value\n##\n{ 'enum': 'Mode', 'data': [ 'a', 'b' ] }",
    "t.json:6: documentation:",
    "describes '@c', which is not one of its values (it has: a, b)"
);
neg!(
    doc_describes_a_feature_that_does_not_exist,
    "##\n# @go:\n#\n# Features:\n#\n# @unstabel: typo\n##\n{ 'command': 'go', 'features': [ 'unstable' ] }",
    "t.json:8: documentation:",
    "describes feature 'unstabel', which neither it nor its members have"
);
neg!(
    doc_not_followed,
    "##\n# @Foo:\n##\n{ 'pragma': { 'doc-required': false } }",
    "t.json:1: documentation:",
    "documentation block for 'Foo' is not followed by the definition"
);
neg!(
    doc_bad_first_line,
    "##\n# @Foo\n##\n{ 'struct': 'Foo', 'data': {} }",
    "t.json:1: documentation:",
    "must be '@NAME:'"
);
neg!(
    doc_required_missing,
    "{ 'pragma': { 'doc-required': true } }\n\n{ 'struct': 'Foo', 'data': {} }",
    "t.json:3: documentation:",
    "struct 'Foo' has no documentation comment block",
    "doc-required"
);
neg!(undocumented_member,
    "{ 'pragma': { 'documentation-exceptions': [ 'Other' ] } }\n##\n# @Foo:\n#\n# @a: documented\n##\n{ 'struct': 'Foo',\n  'data': { 'a': 'str',\n            'b': 'str' } }",
    "t.json:9: documentation:", "member 'b' of struct 'Foo' is not documented", "documentation-exceptions");

// ---- includes (need files) ---------------------------------------------------------------------

#[test]
fn include_missing_file() {
    let t = TempTree::new(&[("root.json", "# comment\n{ 'include': 'sub/nope.json' }\n")]);
    let err = parse_qapi(t.path("root.json")).expect_err("must fail");
    let msg = err.to_string();
    assert!(matches!(err, SchemaError::Include { .. }), "{err:?}");
    let root = t.path("root.json").display().to_string();
    assert_msg(
        &msg,
        &format!("{root}:2: "),
        &["cannot open included file", "sub/nope.json"],
    );
}

#[test]
fn include_loop_names_the_chain() {
    let t = TempTree::new(&[
        ("qapi/root.json", "{ 'include': 'a.json' }\n"),
        ("qapi/a.json", "{ 'include': '../other/b.json' }\n"),
        ("other/b.json", "\n\n{ 'include': '../qapi/a.json' }\n"),
    ]);
    let err = parse_qapi(t.path("qapi/root.json")).expect_err("must fail");
    let msg = err.to_string();
    let b = t.path("other/b.json").display().to_string();
    let root = t.path("qapi/root.json").display().to_string();
    let a = t.path("qapi/a.json").display().to_string();
    assert_msg(
        &msg,
        &format!("{b}:3: "),
        &[&format!("include loop: {root} -> {a} -> {b} -> {a}")],
    );
}

#[test]
fn include_error_location_is_in_the_included_file() {
    let t = TempTree::new(&[
        ("root.json", "{ 'include': 'sub.json' }\n"),
        (
            "sub.json",
            "{ 'struct': 'Aa',\n  'data': { 'm': 'Missing' } }\n",
        ),
    ]);
    let msg = parse_qapi(t.path("root.json"))
        .expect_err("must fail")
        .to_string();
    let sub = t.path("sub.json").display().to_string();
    assert_msg(
        &msg,
        &format!("{sub}:2: struct 'Aa', member 'm':"),
        &["unknown type 'Missing'"],
    );
}

#[test]
fn include_in_memory_text_is_refused() {
    let msg = fail("{ 'include': 'x.json' }");
    assert_msg(&msg, "t.json:1: ", &["cannot include 'x.json'"]);
}

#[test]
fn root_file_missing() {
    let err = parse_qapi("/nonexistent/qapi-schema.json").expect_err("must fail");
    assert!(matches!(err, SchemaError::Io { .. }), "{err:?}");
    assert!(err
        .to_string()
        .starts_with("/nonexistent/qapi-schema.json: cannot read"));
}

#[test]
fn binary_garbage_does_not_panic() {
    // Every byte value at every structural position: must end in an error, never a panic.
    for b in 0u8..=255 {
        let mut text = b"{ 'struct': 'Aa', 'data': { 'm".to_vec();
        text.push(b);
        text.extend_from_slice(b"': 'str' } }");
        let s = String::from_utf8_lossy(&text).into_owned();
        let _ = parse_qapi_str("t.json", &s);
        let _ = parse_qapi_str("t.json", &s[..s.len() / 2]);
    }
}

#[test]
fn error_location_accessor() {
    let err = parse_qapi_str("t.json", "\n{ 'enum': 'Aa', 'data': [ 1 ] }").expect_err("must fail");
    let loc = err.location().expect("has a location");
    assert_eq!((&*loc.file, loc.line, loc.col), ("t.json", 2, 27));
}
