//! The merge rules of `schema/README.md` (*Merged schemas*), one small synthetic schema per
//! rule. Every merge is also checked to reproduce each input exactly and to survive a round
//! trip through the normalized format.

use qmp_codegen::history::{
    self, Lifetime, MergeError, MergeInput, Merged, MergedSchema, Path, Requirement, Support,
    TypeChangeKind, Version,
};
use qmp_codegen::model::{Builtin, TypeRef};
use qmp_codegen::parse_qapi_str;

fn v(text: &str) -> Version {
    Version::parse(text).expect("version")
}

/// Merges QAPI source texts given as `(version, text)`, checks that the history reproduces
/// each of them and that the normalized text reads back to the same schema.
fn merge(versions: &[(&str, &str)]) -> MergedSchema {
    let inputs: Vec<MergeInput> = versions
        .iter()
        .map(|(ver, text)| {
            let schema = parse_qapi_str(ver, text).unwrap_or_else(|e| panic!("{ver}: {e}"));
            MergeInput::new(v(ver), format!("test-{ver}"), schema)
        })
        .collect();
    let merged = history::merge(inputs.clone()).unwrap_or_else(|e| panic!("{e}"));
    let text = merged.to_normalized();
    // Deterministic: the same inputs (in any order) give the same text.
    let mut reversed = inputs.clone();
    reversed.reverse();
    let again = history::merge(reversed).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.to_normalized(), text, "deterministic");
    let back = history::from_str("merged.json", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back.history, merged.history, "history round trip");
    assert_eq!(
        back.schema.without_docs_and_locations().definitions,
        merged.schema.without_docs_and_locations().definitions,
        "definitions round trip"
    );
    // Read as a plain normalized schema, a merged file gives its merged definitions; the
    // history layer refuses the file of one version.
    let plain = qmp_codegen::normalized::from_str("merged.json", &text).expect("plain read");
    assert_eq!(plain, back.schema);
    let one = qmp_codegen::normalized::to_string(&back.schema);
    let e = history::from_str("one.json", &one).expect_err("no history");
    assert!(e.to_string().contains("not a merged schema"), "{e}");
    let m = Merged::new(&back);
    for input in &inputs {
        if let Err(diffs) = m.verify(input.version, &input.schema) {
            panic!(
                "{} not reproduced:\n{}\n{text}",
                input.version,
                diffs.join("\n")
            );
        }
    }
    back
}

fn merged(s: &MergedSchema) -> Merged<'_> {
    Merged::new(s)
}

fn lifetime(m: &Merged<'_>, p: Path) -> Lifetime {
    m.lifetime(&p).unwrap_or_else(|| panic!("{p} unknown"))
}

const JOBS_OLD: &str = "
{ 'enum': 'JobType', 'data': ['commit', 'mirror'] }
{ 'struct': 'JobInfo', 'data': { 'id': 'str', 'type': 'JobType' } }
{ 'command': 'query-jobs', 'returns': ['JobInfo'] }
{ 'command': 'job-pause', 'data': { 'id': 'str' } }
";

const JOBS_NEW: &str = "
{ 'enum': 'JobType', 'data': ['commit', 'mirror', 'backup'] }
{ 'struct': 'JobInfo', 'data': { 'id': 'str', 'type': 'JobType', 'busy': 'bool' } }
{ 'command': 'query-jobs', 'returns': ['JobInfo'] }
{ 'command': 'job-pause', 'data': { 'id': 'str', '*force': 'bool' } }
{ 'command': 'job-finalize', 'data': { 'id': 'str' } }
{ 'event': 'JOB_READY', 'data': { 'id': 'str' } }
";

#[test]
fn added_items_record_their_first_version() {
    let s = merge(&[("7.2", JOBS_OLD), ("8.0", JOBS_NEW)]);
    let m = merged(&s);
    let busy = lifetime(&m, Path::member("JobInfo", "busy"));
    assert_eq!(busy.added(), Some(v("8.0")));
    assert_eq!(busy.removed_after(), None);
    assert_eq!(lifetime(&m, Path::member("JobInfo", "id")).added(), None);
    assert_eq!(
        lifetime(&m, Path::value("JobType", "backup")).added(),
        Some(v("8.0"))
    );
    assert_eq!(
        lifetime(&m, Path::definition("job-finalize")).added(),
        Some(v("8.0"))
    );
    assert_eq!(
        lifetime(&m, Path::definition("JOB_READY")).added(),
        Some(v("8.0"))
    );
    assert_eq!(
        m.supports(&Path::definition("job-finalize"), v("7.2")),
        Support::No
    );
    assert_eq!(
        m.supports(&Path::definition("job-finalize"), v("8.0.3")),
        Support::Yes
    );
    // Rule (a): 7.2 sends jobs without busy.
    assert_eq!(
        m.requirement("JobInfo", "busy"),
        Requirement {
            in_replies: Some(false),
            in_arguments: None
        }
    );
    assert_eq!(m.requirement("JobInfo", "id").in_replies, Some(true));
    assert_eq!(m.requirement("job-pause", "id").in_arguments, Some(true));
    assert_eq!(
        m.requirement("job-pause", "force").in_arguments,
        Some(false)
    );
    // The merged definitions are the newest ones.
    assert_eq!(
        s.schema
            .struct_type("JobInfo")
            .expect("struct")
            .members
            .len(),
        3
    );
}

#[test]
fn removed_items_stay_with_their_last_version() {
    let s = merge(&[
        (
            "5.0",
            "
{ 'enum': 'Driver', 'data': ['file', 'vxhs'] }
{ 'struct': 'OptsFile', 'data': { 'filename': 'str' } }
{ 'struct': 'OptsVxhs', 'data': { 'vdisk': 'str' } }
{ 'union': 'Opts', 'base': { 'driver': 'Driver' }, 'discriminator': 'driver',
  'data': { 'file': 'OptsFile', 'vxhs': 'OptsVxhs' } }
{ 'struct': 'Status', 'data': { 'running': 'bool', 'singlestep': 'bool' } }
{ 'command': 'query-status', 'returns': 'Status' }
{ 'command': 'add', 'data': 'Opts', 'boxed': true }
{ 'command': 'cpu-add', 'data': { 'id': 'int' } }
",
        ),
        (
            "5.1",
            "
{ 'enum': 'Driver', 'data': ['file'] }
{ 'struct': 'OptsFile', 'data': { 'filename': 'str' } }
{ 'union': 'Opts', 'base': { 'driver': 'Driver' }, 'discriminator': 'driver',
  'data': { 'file': 'OptsFile' } }
{ 'struct': 'Status', 'data': { 'running': 'bool' } }
{ 'command': 'query-status', 'returns': 'Status' }
{ 'command': 'add', 'data': 'Opts', 'boxed': true }
",
        ),
    ]);
    let m = merged(&s);
    for p in [
        Path::definition("cpu-add"),
        Path::definition("OptsVxhs"),
        Path::value("Driver", "vxhs"),
        Path::branch("Opts", "vxhs"),
        Path::member("Status", "singlestep"),
    ] {
        assert_eq!(
            lifetime(&m, p.clone()).removed_after(),
            Some(v("5.0")),
            "{p}"
        );
        assert_eq!(m.supports(&p, v("5.1")), Support::No, "{p}");
        assert_eq!(m.supports(&p, v("5.0")), Support::Yes, "{p}");
    }
    // Kept in the merged definitions; a removed member is optional there.
    assert!(s.schema.command("cpu-add").is_some());
    assert!(s
        .schema
        .union_type("Opts")
        .expect("union")
        .branch("vxhs")
        .is_some());
    let singlestep = s.schema.struct_type("Status").expect("struct").members[1].clone();
    assert_eq!(singlestep.name, "singlestep");
    assert!(singlestep.optional);
    assert_eq!(
        m.requirement("Status", "singlestep").in_replies,
        Some(false)
    );
    // Branch members: only 5.0 has the branch; it requires vdisk.
    assert_eq!(m.requirement("OptsVxhs", "vdisk").in_arguments, Some(true));
}

#[test]
fn renamed_types_take_the_newest_name_by_position() {
    let s = merge(&[
        (
            "9.1",
            "
{ 'enum': 'HashAlgorithm', 'data': ['md5', 'sha256'] }
{ 'struct': 'LuksInfo', 'data': { 'hash-alg': 'HashAlgorithm' } }
{ 'command': 'query-luks', 'returns': 'LuksInfo' }
{ 'command': 'hash', 'data': { 'alg': 'HashAlgorithm' } }
",
        ),
        (
            "9.2",
            "
{ 'enum': 'HashAlgo', 'data': ['md5', 'sha256', 'sha512'] }
{ 'struct': 'LuksInfo', 'data': { 'hash-alg': 'HashAlgo' } }
{ 'command': 'query-luks', 'returns': 'LuksInfo' }
{ 'command': 'hash', 'data': { 'alg': 'HashAlgo' } }
",
        ),
    ]);
    let m = merged(&s);
    assert!(
        s.schema.get("HashAlgorithm").is_none(),
        "one definition, newest name"
    );
    assert_eq!(m.canonical_name("HashAlgorithm"), Some("HashAlgo"));
    assert_eq!(m.old_names("HashAlgo").len(), 1);
    assert_eq!(m.name_at("HashAlgo", 0), Some("HashAlgorithm"));
    assert_eq!(m.name_at("HashAlgo", 1), Some("HashAlgo"));
    assert!(m.type_changes().is_empty(), "a rename is not a type change");
    assert_eq!(
        lifetime(&m, Path::value("HashAlgo", "sha512")).added(),
        Some(v("9.2"))
    );
}

#[test]
fn legacy_simple_union_wrappers_map_to_their_named_successors() {
    let s = merge(&[
        (
            "6.1",
            "
{ 'struct': 'Inet', 'data': { 'host': 'str' } }
{ 'struct': 'String', 'data': { 'str': 'str' } }
{ 'union': 'Addr', 'data': { 'inet': 'Inet', 'fd': 'String' } }
{ 'command': 'query-addr', 'returns': 'Addr' }
",
        ),
        (
            "6.2",
            "
{ 'struct': 'Inet', 'data': { 'host': 'str' } }
{ 'struct': 'String', 'data': { 'str': 'str' } }
{ 'enum': 'AddrType', 'data': ['inet', 'fd'] }
{ 'struct': 'InetWrapper', 'data': { 'data': 'Inet' } }
{ 'struct': 'StringWrapper', 'data': { 'data': 'String' } }
{ 'union': 'Addr', 'base': { 'type': 'AddrType' }, 'discriminator': 'type',
  'data': { 'inet': 'InetWrapper', 'fd': 'StringWrapper' } }
{ 'command': 'query-addr', 'returns': 'Addr' }
",
        ),
        (
            "9.0",
            "
{ 'struct': 'Inet', 'data': { 'host': 'str' } }
{ 'struct': 'String', 'data': { 'str': 'str' } }
{ 'struct': 'FdAddr', 'data': { 'str': 'str' } }
{ 'enum': 'AddrType', 'data': ['inet', 'fd'] }
{ 'struct': 'InetWrapper', 'data': { 'data': 'Inet' } }
{ 'struct': 'FdAddrWrapper', 'data': { 'data': 'FdAddr' } }
{ 'union': 'Addr', 'base': { 'type': 'AddrType' }, 'discriminator': 'type',
  'data': { 'inet': 'InetWrapper', 'fd': 'FdAddrWrapper' } }
{ 'command': 'query-addr', 'returns': 'Addr' }
",
        ),
    ]);
    let m = merged(&s);
    assert_eq!(m.canonical_name("q_obj_Inet-wrapper"), Some("InetWrapper"));
    assert_eq!(
        m.canonical_name("q_obj_String-wrapper"),
        Some("FdAddrWrapper")
    );
    assert_eq!(m.canonical_name("StringWrapper"), Some("FdAddrWrapper"));
    // The implicit AddrKind enum of the simple union became AddrType, new in 6.2 and at the
    // same place (the discriminator): a rename as well.
    assert_eq!(m.canonical_name("AddrKind"), Some("AddrType"));
    // String itself exists in every version: no rename, a type change of the wrapper.
    assert!(s.schema.struct_type("String").is_some());
    // The wrapper's member went from String to FdAddr: same wire form, an object change.
    let changes = m.type_changes();
    let data = changes
        .iter()
        .find(|c| c.path == Path::member("FdAddrWrapper", "data"))
        .expect("a type change");
    assert_eq!(data.others[0].2, TypeChangeKind::Object);
    assert_eq!(m.requirement("FdAddr", "str").in_replies, Some(true));
    // The union was a simple one up to 6.1.
    assert!(!s.schema.union_type("Addr").expect("union").simple_legacy);
}

#[test]
fn ambiguous_renames_are_not_followed() {
    // Old is used at two places that get two different new types: neither is a rename.
    let s = merge(&[
        (
            "1.0",
            "
{ 'enum': 'Old', 'data': ['a'] }
{ 'struct': 'Holder', 'data': { 'x': 'Old', 'y': 'Old' } }
",
        ),
        (
            "2.0",
            "
{ 'enum': 'NewX', 'data': ['a'] }
{ 'enum': 'NewY', 'data': ['a'] }
{ 'struct': 'Holder', 'data': { 'x': 'NewX', 'y': 'NewY' } }
",
        ),
    ]);
    let m = merged(&s);
    assert_eq!(m.canonical_name("Old"), Some("Old"));
    assert_eq!(
        lifetime(&m, Path::definition("Old")).removed_after(),
        Some(v("1.0"))
    );
    assert_eq!(m.type_changes().len(), 2);
}

#[test]
fn optionality_changes_follow_both_rules() {
    let s = merge(&[
        (
            "8.2",
            "
{ 'struct': 'Info', 'data': { 'a': 'str', '*b': 'str' } }
{ 'command': 'query-info', 'returns': 'Info' }
{ 'command': 'migrate', 'data': { 'uri': 'str', '*detach': 'bool' } }
",
        ),
        (
            "9.0",
            "
{ 'struct': 'Info', 'data': { '*a': 'str', 'b': 'str' } }
{ 'command': 'query-info', 'returns': 'Info' }
{ 'command': 'migrate', 'data': { '*uri': 'str', 'detach': 'bool' } }
",
        ),
    ]);
    let m = merged(&s);
    // Made optional: newer QEMU may leave it out; newer QEMU accepts calls without it.
    assert_eq!(m.requirement("Info", "a").in_replies, Some(false));
    assert_eq!(m.requirement("migrate", "uri").in_arguments, Some(false));
    // Made required: older QEMU may leave it out; older QEMU does not require it.
    assert_eq!(m.requirement("Info", "b").in_replies, Some(false));
    assert_eq!(m.requirement("migrate", "detach").in_arguments, Some(false));
    // Code for 9.0 and newer only sees 9.0's rules.
    let newer = m.versions_from(v("9.0"));
    assert_eq!(m.history().format_set(newer), "9.0-");
    assert_eq!(
        m.requirement_in("migrate", "detach", newer).in_arguments,
        Some(true)
    );
    assert_eq!(m.requirement_in("Info", "b", newer).in_replies, Some(true));
    // The merged definition keeps the newest optionality; the history has the rest.
    let info = s.schema.struct_type("Info").expect("struct");
    assert!(info.members[0].optional && !info.members[1].optional);
}

#[test]
fn a_branch_added_for_an_old_discriminator_value_is_not_required_in_replies() {
    // Issue 13's query-block-jobs: a struct with a plain `str` type becomes a union on an
    // enum, and only the mirror branch gets members.
    let s = merge(&[
        (
            "7.2",
            "
{ 'enum': 'JobType', 'data': ['commit', 'mirror'] }
{ 'struct': 'BlockJobInfo', 'data': { 'type': 'str', 'device': 'str' } }
{ 'command': 'query-block-jobs', 'returns': ['BlockJobInfo'] }
",
        ),
        (
            "8.2",
            "
{ 'enum': 'JobType', 'data': ['commit', 'mirror'] }
{ 'struct': 'BlockJobInfoMirror', 'data': { 'actively-synced': 'bool' } }
{ 'union': 'BlockJobInfo', 'base': { 'type': 'JobType', 'device': 'str' },
  'discriminator': 'type', 'data': { 'mirror': 'BlockJobInfoMirror' } }
{ 'command': 'query-block-jobs', 'returns': ['BlockJobInfo'] }
",
        ),
    ]);
    let m = merged(&s);
    assert_eq!(
        m.requirement("BlockJobInfoMirror", "actively-synced")
            .in_replies,
        Some(false)
    );
    assert_eq!(
        m.requirement("BlockJobInfo", "device").in_replies,
        Some(true)
    );
    assert_eq!(m.requirement("BlockJobInfo", "type").in_replies, Some(true));
    let change = &m.type_changes()[0];
    assert_eq!(change.path, Path::member("BlockJobInfo", "type"));
    assert_eq!(change.others[0].2, TypeChangeKind::String);
    assert_eq!(
        lifetime(&m, Path::branch("BlockJobInfo", "mirror")).added(),
        Some(v("8.2"))
    );
}

#[test]
fn a_branch_added_to_an_existing_union_value_is_not_required_in_replies() {
    let s = merge(&[
        (
            "5.1",
            "
{ 'enum': 'Driver', 'data': ['file', 'nvme'] }
{ 'struct': 'StatsFile', 'data': { 'reads': 'int' } }
{ 'struct': 'StatsNvme', 'data': { 'errors': 'int' } }
{ 'union': 'Stats', 'base': { 'driver': 'Driver' }, 'discriminator': 'driver',
  'data': { 'file': 'StatsFile' } }
{ 'command': 'query-stats', 'returns': ['Stats'] }
{ 'command': 'set-stats', 'data': 'Stats', 'boxed': true }
",
        ),
        (
            "5.2",
            "
{ 'enum': 'Driver', 'data': ['file', 'nvme'] }
{ 'struct': 'StatsFile', 'data': { 'reads': 'int' } }
{ 'struct': 'StatsNvme', 'data': { 'errors': 'int' } }
{ 'union': 'Stats', 'base': { 'driver': 'Driver' }, 'discriminator': 'driver',
  'data': { 'file': 'StatsFile', 'nvme': 'StatsNvme' } }
{ 'command': 'query-stats', 'returns': ['Stats'] }
{ 'command': 'set-stats', 'data': 'Stats', 'boxed': true }
",
        ),
    ]);
    let m = merged(&s);
    assert_eq!(
        m.requirement("StatsNvme", "errors"),
        Requirement {
            // 5.1 sends {"driver": "nvme"} without it.
            in_replies: Some(false),
            // Only 5.2 accepts the nvme branch's members at all, and requires errors.
            in_arguments: Some(true)
        }
    );
    assert_eq!(m.requirement("StatsFile", "reads").in_replies, Some(true));
}

#[test]
fn a_struct_turned_union_on_a_new_discriminator() {
    // SevInfo in 9.1: older QEMU never sends sev-type; its policy and handle moved into the
    // sev branch and stay in the history only (the base would clash with the branch).
    let s = merge(&[
        (
            "9.0",
            "
{ 'struct': 'SevInfo', 'data': { 'enabled': 'bool', 'policy': 'uint32', 'handle': 'uint32' } }
{ 'command': 'query-sev', 'returns': 'SevInfo' }
",
        ),
        (
            "9.1",
            "
{ 'enum': 'SevGuestType', 'data': ['sev', 'sev-snp'] }
{ 'struct': 'SevGuestInfo', 'data': { 'policy': 'uint32', 'handle': 'uint32' } }
{ 'struct': 'SevSnpGuestInfo', 'data': { 'snp-policy': 'uint64' } }
{ 'union': 'SevInfo', 'base': { 'enabled': 'bool', 'sev-type': 'SevGuestType' },
  'discriminator': 'sev-type',
  'data': { 'sev': 'SevGuestInfo', 'sev-snp': 'SevSnpGuestInfo' } }
{ 'command': 'query-sev', 'returns': 'SevInfo' }
",
        ),
    ]);
    let m = merged(&s);
    let sev = s.schema.union_type("SevInfo").expect("union");
    assert_eq!(
        sev.base_members.len(),
        2,
        "policy and handle are not put back into the base"
    );
    assert_eq!(m.requirement("SevInfo", "sev-type").in_replies, Some(false));
    assert_eq!(m.requirement("SevInfo", "enabled").in_replies, Some(true));
    // When the tag is there, the branch's members are too.
    assert_eq!(
        m.requirement("SevGuestInfo", "policy").in_replies,
        Some(true)
    );
    let policy = lifetime(&m, Path::member("SevInfo", "policy"));
    assert_eq!(policy.removed_after(), Some(v("9.0")));
    assert_eq!(
        m.supports(&Path::member("SevInfo", "policy"), v("9.0")),
        Support::Yes
    );
}

#[test]
fn members_moved_into_a_new_base_are_no_change() {
    let s = merge(&[
        (
            "7.2",
            "
{ 'struct': 'ImageInfo', 'data': { 'filename': 'str', '*backing-image': 'ImageInfo' } }
{ 'command': 'query-image', 'returns': 'ImageInfo' }
",
        ),
        (
            "8.0",
            "
{ 'struct': 'BlockNodeInfo', 'data': { 'filename': 'str' } }
{ 'struct': 'ImageInfo', 'base': 'BlockNodeInfo', 'data': { '*backing-image': 'ImageInfo' } }
{ 'command': 'query-image', 'returns': 'ImageInfo' }
",
        ),
    ]);
    let m = merged(&s);
    assert!(m
        .history()
        .definitions
        .iter()
        .all(|d| d.name != "ImageInfo"));
    assert_eq!(
        lifetime(&m, Path::definition("BlockNodeInfo")).added(),
        Some(v("8.0"))
    );
    assert_eq!(
        m.requirement("ImageInfo", "filename").in_replies,
        Some(true)
    );
}

#[test]
fn arguments_moved_from_inline_members_to_a_union() {
    // object-add: inline qom-type/id/props, then a boxed union on qom-type.
    let s = merge(&[
        (
            "5.2",
            "
{ 'command': 'object-add', 'data': { 'qom-type': 'str', 'id': 'str', '*props': 'any' } }
",
        ),
        (
            "6.0",
            "
{ 'enum': 'ObjectType', 'data': ['memory-backend-file', 'iothread'] }
{ 'struct': 'MemoryBackendFileProperties', 'data': { 'mem-path': 'str', '*size': 'size' } }
{ 'union': 'ObjectOptions', 'base': { 'qom-type': 'ObjectType', 'id': 'str' },
  'discriminator': 'qom-type',
  'data': { 'memory-backend-file': 'MemoryBackendFileProperties' } }
{ 'command': 'object-add', 'data': 'ObjectOptions', 'boxed': true }
",
        ),
    ]);
    let m = merged(&s);
    // The old inline arguments live in the history only.
    assert_eq!(
        lifetime(&m, Path::member("object-add", "props")).removed_after(),
        Some(v("5.2"))
    );
    assert!(s.schema.struct_type("ObjectOptions").is_none());
    assert_eq!(
        m.requirement("ObjectOptions", "id").in_arguments,
        Some(true)
    );
    assert_eq!(
        m.requirement("ObjectOptions", "qom-type").in_arguments,
        Some(true)
    );
    // 5.2 takes no flattened properties at all: only 6.0 counts for the branch.
    assert_eq!(
        m.requirement("MemoryBackendFileProperties", "mem-path")
            .in_arguments,
        Some(true)
    );
    assert_eq!(
        m.requirement("MemoryBackendFileProperties", "size")
            .in_arguments,
        Some(false)
    );
}

#[test]
fn member_type_changes_are_classified_and_merged() {
    let s = merge(&[
        (
            "5.2",
            "
{ 'enum': 'GLMode', 'data': ['off', 'on', 'core'] }
{ 'enum': 'Target', 'data': ['i386'] }
{ 'struct': 'Extent', 'data': { 'filename': 'str', 'virtual-size': 'int' } }
{ 'struct': 'Image', 'data': { 'filename': 'str', 'virtual-size': 'int', 'format': 'str' } }
{ 'alternate': 'BitmapOrStr', 'data': { 'local': 'str', 'external': 'Extent' } }
{ 'struct': 'Stats', 'data': { 'cache-size': 'int', 'count': 'uint64', 'arch': 'str',
  'gl': 'bool', 'extents': ['Image'], 'bitmaps': ['str'] } }
{ 'command': 'query-stats', 'returns': 'Stats' }
{ 'command': 'set-limit', 'data': { 'limit': 'int' } }
",
        ),
        (
            "6.0",
            "
{ 'enum': 'GLMode', 'data': ['off', 'on', 'core'] }
{ 'enum': 'Target', 'data': ['i386'] }
{ 'struct': 'Extent', 'data': { 'filename': 'str', 'virtual-size': 'int' } }
{ 'struct': 'Image', 'data': { 'filename': 'str', 'virtual-size': 'int', 'format': 'str' } }
{ 'alternate': 'BitmapOrStr', 'data': { 'local': 'str', 'external': 'Extent' } }
{ 'struct': 'Stats', 'data': { 'cache-size': 'size', 'count': 'uint32', 'arch': 'Target',
  'gl': 'GLMode', 'extents': ['Extent'], 'bitmaps': ['BitmapOrStr'] } }
{ 'command': 'query-stats', 'returns': 'Stats' }
{ 'command': 'set-limit', 'data': { 'limit': 'uint8' } }
",
        ),
    ]);
    let m = merged(&s);
    let stats = s.schema.struct_type("Stats").expect("struct");
    let ty = |name: &str| {
        stats
            .members
            .iter()
            .find(|x| x.name == name)
            .map(|x| x.ty.clone())
            .expect("member")
    };
    // No built-in covers int and size: the newest stays (and the change is reported).
    assert_eq!(ty("cache-size"), TypeRef::Builtin(Builtin::Size));
    // uint64 narrowed to uint32 in what QEMU sends: uint64 covers both.
    assert_eq!(ty("count"), TypeRef::Builtin(Builtin::Uint64));
    // Arguments take what the newest accepts.
    assert_eq!(
        s.schema
            .command("set-limit")
            .map(|c| c.argument_members(&s.schema)[0].ty.clone()),
        Some(TypeRef::Builtin(Builtin::Uint8))
    );
    let kinds: Vec<(String, TypeChangeKind)> = m
        .type_changes()
        .into_iter()
        .flat_map(|c| {
            let p = c.path.to_string();
            c.others.into_iter().map(move |(_, _, k)| (p.clone(), k))
        })
        .collect();
    let kind = |p: &str| {
        kinds
            .iter()
            .find(|(x, _)| x == p)
            .map(|(_, k)| *k)
            .unwrap_or_else(|| panic!("{p} not in {kinds:?}"))
    };
    assert_eq!(
        kind("Stats.cache-size"),
        TypeChangeKind::Integer { covered: false }
    );
    assert_eq!(
        kind("set-limit.limit"),
        TypeChangeKind::Integer { covered: false }
    );
    assert_eq!(kind("Stats.arch"), TypeChangeKind::String);
    assert_eq!(kind("Stats.gl"), TypeChangeKind::Incompatible);
    assert_eq!(kind("Stats.extents"), TypeChangeKind::Object);
    assert_eq!(kind("Stats.bitmaps"), TypeChangeKind::Widened);
    // The newest 6.0 count is uint32; the merged uint64 is recorded as not 6.0's type.
    assert!(m
        .type_changes()
        .iter()
        .any(|c| c.path == Path::member("Stats", "count") && c.sent.len() == 2));
    // Extent at `extents` held Image values in 5.2: its members are there, required.
    assert_eq!(m.requirement("Extent", "filename").in_replies, Some(true));
}

#[test]
fn features_over_time_give_deprecated_since() {
    let s = merge(&[
        (
            "7.2",
            "
{ 'struct': 'Info', 'data': { 'a': 'str', 'b': 'str' } }
{ 'command': 'query-info', 'returns': 'Info' }
{ 'command': 'old-cmd' }
",
        ),
        (
            "8.0",
            "
{ 'struct': 'Info', 'data': { 'a': 'str', 'b': { 'type': 'str', 'features': ['deprecated'] } } }
{ 'command': 'query-info', 'returns': 'Info' }
{ 'command': 'old-cmd', 'features': ['deprecated'] }
",
        ),
        (
            "8.1",
            "
{ 'struct': 'Info', 'data': { 'a': 'str', 'b': { 'type': 'str', 'features': ['deprecated'] } } }
{ 'command': 'query-info', 'returns': 'Info' }
",
        ),
    ]);
    let m = merged(&s);
    let old = lifetime(&m, Path::definition("old-cmd"));
    assert_eq!(old.deprecated_since, Some(v("8.0")));
    assert_eq!(old.removed_after(), Some(v("8.0")));
    assert_eq!(
        lifetime(&m, Path::member("Info", "b")).deprecated_since,
        Some(v("8.0"))
    );
    assert_eq!(
        lifetime(&m, Path::member("Info", "a")).deprecated_since,
        None
    );
    // Hidden by -compat deprecated-output=hide: not required in replies.
    assert_eq!(m.requirement("Info", "b").in_replies, Some(false));
    assert_eq!(m.requirement("Info", "a").in_replies, Some(true));
}

#[test]
fn conditional_members_are_not_required_in_replies() {
    let text = "
{ 'struct': 'Info', 'data': { 'a': 'str', 'b': { 'type': 'str', 'if': 'CONFIG_B' } } }
{ 'command': 'query-info', 'returns': 'Info' }
{ 'command': 'set-info', 'data': 'Info' }
";
    let s = merge(&[("1.0", text), ("2.0", text)]);
    let m = merged(&s);
    assert_eq!(
        m.requirement("Info", "b"),
        Requirement {
            in_replies: Some(false),
            in_arguments: Some(true)
        }
    );
    assert!(
        m.history().definitions.is_empty(),
        "identical versions: no history entries"
    );
}

#[test]
fn removed_and_readded_items_have_gaps() {
    let with = "{ 'enum': 'Display', 'data': ['gtk', 'sdl'] }\n{ 'command': 'x-test' }\n";
    let without = "{ 'enum': 'Display', 'data': ['gtk'] }\n";
    let s = merge(&[
        ("3.0", with),
        ("3.1", without),
        ("4.0", without),
        ("4.1", with),
    ]);
    let m = merged(&s);
    for p in [Path::value("Display", "sdl"), Path::definition("x-test")] {
        let l = lifetime(&m, p.clone());
        assert!(l.gaps, "{p}");
        assert_eq!((l.added(), l.removed_after()), (None, None), "{p}");
        assert_eq!(m.supports(&p, v("3.1")), Support::No);
        assert_eq!(m.supports(&p, v("4.1")), Support::Yes);
        assert_eq!(
            m.history().format_set(m.presence(&p).expect("known")),
            "3.0,4.1-"
        );
    }
}

#[test]
fn supports_between_and_outside_merged_versions() {
    let s = merge(&[
        ("7.2", "{ 'command': 'a' }\n{ 'command': 'b' }\n"),
        ("10.0", "{ 'command': 'a' }\n{ 'command': 'c' }\n"),
    ]);
    let m = merged(&s);
    let (a, b, c) = (
        Path::definition("a"),
        Path::definition("b"),
        Path::definition("c"),
    );
    assert_eq!(
        m.supports(&a, v("8.1")),
        Support::Yes,
        "both neighbours have it"
    );
    assert_eq!(
        m.supports(&b, v("8.1")),
        Support::Unknown,
        "removed somewhere in between"
    );
    assert_eq!(
        m.supports(&c, v("8.1")),
        Support::Unknown,
        "added somewhere in between"
    );
    assert_eq!(m.supports(&c, v("7.2.11")), Support::No);
    assert_eq!(
        m.supports(&a, v("6.0")),
        Support::Unknown,
        "older than every version"
    );
    assert_eq!(
        m.supports(&a, v("10.1")),
        Support::Unknown,
        "newer than every version"
    );
    assert_eq!(
        m.supports(&Path::definition("nope"), v("7.2")),
        Support::Unknown
    );
}

#[test]
fn a_name_clash_keeps_the_old_member_in_the_history_only() {
    let s = merge(&[
        (
            "3.1",
            "{ 'pragma': { 'member-name-exceptions': ['Merge'] } }\n\
             { 'struct': 'Merge', 'data': { 'dst_name': 'str' } }\n\
             { 'command': 'merge', 'data': 'Merge' }\n",
        ),
        ("4.0", "{ 'struct': 'Merge', 'data': { 'dst-name': 'str' } }\n{ 'command': 'merge', 'data': 'Merge' }\n"),
    ]);
    let m = merged(&s);
    assert_eq!(
        s.schema.struct_type("Merge").expect("struct").members.len(),
        1
    );
    assert_eq!(
        lifetime(&m, Path::member("Merge", "dst_name")).removed_after(),
        Some(v("3.1"))
    );
}

#[test]
fn unsupported_inputs_are_clear_errors() {
    let schema = |t: &str| parse_qapi_str("t", t).expect("schema");
    let e = history::merge(vec![
        MergeInput::new(v("1.0"), "a", schema("{ 'enum': 'Thing', 'data': ['a'] }")),
        MergeInput::new(v("2.0"), "b", schema("{ 'struct': 'Thing', 'data': {} }")),
    ])
    .expect_err("kind change");
    assert!(matches!(e, MergeError::KindChange { .. }));
    assert_eq!(
        e.to_string(),
        "'Thing' is enum in 1.0 but struct in 2.0; under one name only a struct may become a \
         union (or back). Give one of them another name in the schema"
    );
    let e = history::merge(vec![
        MergeInput::new(v("1.0"), "a", schema("{ 'command': 'x' }")),
        MergeInput::new(v("1.0.2"), "b", schema("{ 'command': 'x' }")),
    ])
    .expect_err("duplicate");
    assert_eq!(
        e.to_string(),
        "version 1.0 is given twice (a and b); give each version once"
    );
    assert!(matches!(history::merge(Vec::new()), Err(MergeError::Empty)));
}

#[test]
fn versions_parse_from_paths() {
    assert_eq!(
        Version::from_path("/x/shared/qapi/qemu-9.2.0-rc2/qapi/qapi-schema.json"),
        Some(v("9.2"))
    );
    assert_eq!(
        Version::from_path("qga-10.0.13/qapi-schema.json"),
        Some(v("10.0"))
    );
    assert_eq!(Version::from_path("schema/qemu.json"), None);
    assert_eq!(v("10.0.13").to_string(), "10.0");
    assert!(Version::parse("x.1").is_none());
}

#[test]
fn history_errors_name_the_entry_and_the_problem() {
    let s = merge(&[("7.2", JOBS_OLD), ("8.0", JOBS_NEW)]);
    let text = s.to_normalized();
    let base: serde_json::Value = serde_json::from_str(&text).expect("json");
    let fail = |edit: &dyn Fn(&mut serde_json::Value)| -> String {
        let mut v = base.clone();
        edit(&mut v);
        match history::from_value("m.json", &v) {
            Ok(_) => panic!("should fail"),
            Err(e) => e.to_string(),
        }
    };
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v| v["history"]["extra"] = 1.into()),
            "m.json: history: unknown key \"extra\" in \"history\"",
        ),
        (
            Box::new(|v| v["history"]["versions"][1]["version"] = "7.1".into()),
            "\"versions\"[1]: 7.1 does not come after 7.2",
        ),
        (
            Box::new(|v| v["history"]["versions"][0]["version"] = "7.2.0".into()),
            "\"versions\"[0]: '7.2.0' is not a version like 7.2",
        ),
        (
            Box::new(|v| {
                let mut e = entry(v, "job-finalize");
                e["name"] = "nope".into();
                set_entry_at_end(v, e);
            }),
            "m.json: history.definitions[5] 'nope': 'nope' is not a definition of the schema",
        ),
        (
            Box::new(|v| v["history"]["relaxed"]["replies"] = serde_json::json!(["Nope.x"])),
            "m.json: history.relaxed: \"replies\"[0]: 'Nope.x' is not a required member of the \
             merged definitions",
        ),
        (
            Box::new(|v| {
                if let Some(o) = v["history"].as_object_mut() {
                    o.remove("relaxed");
                }
            }),
            "\"history\" is missing \"relaxed\"",
        ),
        (
            Box::new(|v| {
                let mut e = entry(v, "job-finalize");
                e["in"] = "7.3-".into();
                set_entry(v, e);
            }),
            "'job-finalize': \"in\": version 7.3 is not one of the merged versions",
        ),
        (
            Box::new(|v| {
                let mut e = entry(v, "job-finalize");
                e["gen"] = serde_json::json!([[false, "8.0-"], [true, "8.0"]]);
                set_entry(v, e);
            }),
            "\"gen\" of the definition[1]: versions 8.0- already have another value",
        ),
        (
            Box::new(|v| {
                let mut e = entry(v, "JobInfo");
                e["members"] = serde_json::json!([{"name": "gone", "in": "7.2"}]);
                set_entry(v, e);
            }),
            "'gone' is not in the merged definition, so its \"type\" must be given for every \
             version that has it (missing for 7.2)",
        ),
        (
            Box::new(|v| {
                let mut e = entry(v, "JobInfo");
                e["members"] = serde_json::json!([{"name": "gone", "type": [["Nope", "7.2"]]}]);
                set_entry(v, e);
            }),
            "unknown type 'Nope'",
        ),
        (
            Box::new(|v| {
                let mut e = entry(v, "job-finalize");
                e["members"] =
                    serde_json::json!([{"name": "x", "in": "7.2", "type": [["str", "7.2"]]}]);
                set_entry(v, e);
            }),
            "present in 7.2, where 'job-finalize' itself is not",
        ),
    ];
    for (edit, want) in cases {
        let got = fail(&*edit);
        assert!(got.contains(want), "{got}\n  does not contain\n{want}");
    }
}

fn set_entry_at_end(v: &mut serde_json::Value, e: serde_json::Value) {
    v["history"]["definitions"]
        .as_array_mut()
        .expect("array")
        .push(e);
}

fn entry(v: &mut serde_json::Value, name: &str) -> serde_json::Value {
    let defs = v["history"]["definitions"].as_array_mut().expect("array");
    let i = defs
        .iter()
        .position(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("{name} has an entry"));
    defs[i].clone()
}

fn set_entry(v: &mut serde_json::Value, e: serde_json::Value) {
    let defs = v["history"]["definitions"].as_array_mut().expect("array");
    let i = defs
        .iter()
        .position(|d| d["name"] == e["name"])
        .expect("entry");
    defs[i] = e;
}
