//! Issue 13: code generated from a merged schema (`emit::generate_merged`): optionality from
//! the history's requirement rules, lifetime notes in the docs, old names as `doc(alias)`.

use qmp_codegen::emit::{generate, generate_merged, GeneratedFile};
use qmp_codegen::history::{self, MergeInput, MergedSchema, Version};
use qmp_codegen::parse_qapi_str;

fn merge(versions: &[(&str, &str)]) -> MergedSchema {
    let inputs = versions
        .iter()
        .map(|(ver, text)| {
            let schema = parse_qapi_str(ver, text).unwrap_or_else(|e| panic!("{ver}: {e}"));
            let version = Version::parse(ver).expect("version");
            MergeInput::new(version, format!("test-{ver}"), schema)
        })
        .collect();
    history::merge(inputs).unwrap_or_else(|e| panic!("{e}"))
}

fn file<'f>(files: &'f [GeneratedFile], name: &str) -> &'f str {
    &files
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} not generated"))
        .contents
}

/// The case of the issue: a union branch type appears (8.2) for a discriminator value QEMU
/// sent long before (7.2 sends `"type": "mirror"` without `actively-synced`).
const OLD: &str = "
{ 'enum': 'JobType', 'data': ['commit', 'mirror'] }
{ 'struct': 'JobInfo', 'data': { 'type': 'str', 'device': 'str' } }
{ 'command': 'query-jobs', 'returns': ['JobInfo'] }
{ 'command': 'job-cancel', 'data': { 'device': 'str', 'force': 'bool' } }
{ 'command': 'cpu-add', 'data': { 'id': 'int' } }
{ 'enum': 'HashAlgorithm', 'data': ['md5'] }
{ 'command': 'hash', 'data': { 'alg': 'HashAlgorithm' } }
";

const NEW: &str = "
{ 'enum': 'JobType', 'data': ['commit', 'mirror'] }
{ 'struct': 'JobInfoBase', 'data': { 'type': 'JobType', 'device': 'str' } }
{ 'struct': 'JobInfoMirror', 'data': { 'actively-synced': 'bool' } }
{ 'union': 'JobInfo', 'base': 'JobInfoBase', 'discriminator': 'type',
  'data': { 'mirror': 'JobInfoMirror' } }
{ 'command': 'query-jobs', 'returns': ['JobInfo'] }
{ 'command': 'job-cancel', 'data': { 'device': 'str', '*force': 'bool' } }
{ 'enum': 'HashAlgo', 'data': ['md5', 'sha512'] }
{ 'command': 'hash', 'data': { 'alg': 'HashAlgo' } }
";

#[test]
fn issue_13_merged_schema_generates_a_portable_api() {
    let merged = merge(&[("7.2", OLD), ("8.2", NEW)]);
    let files = generate_merged(&merged, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    let types = file(&files, "types.rs");
    let commands = file(&files, "commands.rs");

    // Rule a: 7.2 sends mirror jobs without the member.
    assert!(
        types.contains("pub actively_synced: Option<bool>"),
        "{types}"
    );
    assert!(types.contains("pub device: String"), "{types}");
    assert!(
        types.contains("The members of this branch since QEMU 8.2"),
        "{types}"
    );
    // Rule b: 7.2 requires `force`, 8.2 does not: optional.
    assert!(commands.contains("pub force: Option<bool>"), "{commands}");
    // The removed command is present and documented as removed.
    assert!(commands.contains("pub struct CpuAdd"), "{commands}");
    assert!(
        commands.contains("**Removed** after QEMU 7.2 (present in QEMU 7.2)"),
        "{commands}"
    );
    // The renamed enum keeps its old name as an alias; the new value is dated.
    assert!(
        types.contains("#[doc(alias = \"HashAlgorithm\")]"),
        "{types}"
    );
    assert!(types.contains("Added in QEMU 8.2."), "{types}");

    // The same definitions without their history: the one-schema guess, no notes.
    let plain = generate(&merged.schema, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    let plain_types = file(&plain, "types.rs");
    assert!(
        plain_types.contains("pub actively_synced: bool"),
        "{plain_types}"
    );
    assert!(!plain_types.contains("HashAlgorithm"), "{plain_types}");
}
