//! The committed merged schemas (`schema/qemu.json`, `schema/qemu-storage-daemon.json`,
//! `schema/qga.json`) are exactly what `qmp-codegen merge` writes today from `../shared/qapi`,
//! and their history reproduces every merged version exactly. Set `QMP_CODEGEN_BLESS=1` to
//! rewrite them instead of failing.

mod common;

use std::path::Path as FsPath;

use qmp_codegen::history::{
    self, MergeInput, Merged, MergedSchema, Path, Requirement, Support, Version,
};
use qmp_codegen::{load_path, source_name};

/// A merged file and the family's QAPI roots (under `shared/qapi/`): `{}` stands for the
/// version directory's suffix.
struct Family {
    file: &'static str,
    prefix: &'static str,
    root: &'static str,
}

const FAMILIES: &[Family] = &[
    Family {
        file: "qemu.json",
        prefix: "qemu-",
        root: "qapi/qapi-schema.json",
    },
    Family {
        file: "qemu-storage-daemon.json",
        prefix: "qemu-",
        root: "storage-daemon/qapi/qapi-schema.json",
    },
    Family {
        file: "qga.json",
        prefix: "qga-",
        root: "qapi-schema.json",
    },
];

/// Every version of `family` in the corpus, loaded, oldest first.
fn corpus(qapi: &FsPath, family: &Family) -> Vec<MergeInput> {
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(qapi)
        .unwrap_or_else(|e| panic!("{}: {e}", qapi.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(rest) = name.as_deref().and_then(|n| n.strip_prefix(family.prefix)) else {
            continue;
        };
        let root = dir.join(family.root);
        if !root.is_file() {
            continue;
        }
        let version = Version::parse(rest).unwrap_or_else(|| panic!("version of {rest}"));
        let schema = load_path(&root).unwrap_or_else(|e| panic!("{e}"));
        out.push(MergeInput::new(version, source_name(&root), schema));
    }
    out.sort_by_key(|i| i.version);
    out
}

#[test]
fn committed_merged_files_are_up_to_date_and_faithful() {
    let Some(shared) = common::shared_dir("committed_merged_files_are_up_to_date_and_faithful")
    else {
        return;
    };
    let bless = std::env::var("QMP_CODEGEN_BLESS").as_deref() == Ok("1");
    let schema_dir = common::workspace_root().join("schema");
    let mut stale = Vec::new();
    for family in FAMILIES {
        let inputs = corpus(&shared.join("qapi"), family);
        assert!(
            inputs.len() >= 2,
            "{}: found {} versions",
            family.file,
            inputs.len()
        );
        let merged = history::merge(inputs.clone()).unwrap_or_else(|e| panic!("{e}"));
        let want = merged.to_normalized();
        let path = schema_dir.join(family.file);
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            if bless {
                std::fs::write(&path, &want).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                eprintln!("blessed {}", path.display());
            } else {
                stale.push(format!("schema/{}", family.file));
            }
        }
        // The file loads back to the same schema and history.
        let back = history::from_str(family.file, &want).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            back.history, merged.history,
            "{}: history round trip",
            family.file
        );
        assert_eq!(
            back.schema.without_docs_and_locations(),
            merged.schema.without_docs_and_locations()
        );
        // Every version is reproduced exactly from the merged file.
        let m = Merged::new(&back);
        for input in &inputs {
            if let Err(diffs) = m.verify(input.version, &input.schema) {
                panic!(
                    "{}: {} is not reproduced ({} differences), first: {}",
                    family.file,
                    input.version,
                    diffs.len(),
                    diffs[..diffs.len().min(10)].join("\n  ")
                );
            }
        }
    }
    assert!(
        stale.is_empty(),
        "out of date: {}\nregenerate with the commands in schema/README.md, or run this test \
         with QMP_CODEGEN_BLESS=1",
        stale.join(", ")
    );
}

fn committed(file: &str) -> MergedSchema {
    let path = common::workspace_root().join("schema").join(file);
    history::load_path(&path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn committed_merged_qemu_answers_the_issue_cases() {
    // Independent of ../shared: the committed file alone answers these.
    let schema = committed("qemu.json");
    let m = Merged::new(&schema);
    // Issue 13: QEMU 7.2 sends mirror jobs without `actively-synced` (the branch type is from
    // 8.2): the stored rule results make it optional in what QEMU sends.
    let relaxed = &schema.history.relaxed;
    assert!(relaxed.in_replies("BlockJobInfoMirror", "actively-synced"));
    assert!(relaxed.in_replies("BlockDeviceInfo", "active"));
    assert!(!relaxed.in_replies("BlockJobInfo", "device"));
    // What is stored is what the rules say.
    assert_eq!(*relaxed, m.relaxed_in(m.history().all()));
    let versions: Vec<String> = m
        .history()
        .versions
        .iter()
        .map(|v| v.version.to_string())
        .collect();
    assert_eq!(versions.first().map(String::as_str), Some("2.12"));
    assert_eq!(versions.last().map(String::as_str), Some("10.0"));
    assert_eq!(versions.len(), 22);

    // Issue 13: a 7.2 mirror job reply lacks actively-synced (the branch came in 8.2, the
    // "mirror" tag is far older).
    assert_eq!(
        m.requirement("BlockJobInfoMirror", "actively-synced"),
        Requirement {
            in_replies: Some(false),
            in_arguments: None
        }
    );
    assert_eq!(m.requirement("BlockInfo", "device").in_replies, Some(true));
    assert_eq!(m.requirement("BlockJobInfo", "type").in_replies, Some(true));
    // SevInfo became a union on a new member older QEMU never sends.
    assert_eq!(m.requirement("SevInfo", "sev-type").in_replies, Some(false));
    // The member the demo tripped over: required in the newest schema only.
    assert_eq!(
        m.requirement("BlockDeviceInfo", "node-name").in_replies,
        Some(false)
    );
    let mirror = m
        .lifetime(&Path::branch("BlockJobInfo", "mirror"))
        .expect("known");
    assert_eq!(mirror.added(), Some(Version::new(8, 2)));
    assert_eq!(
        m.supports(&Path::branch("BlockJobInfo", "mirror"), Version::new(7, 2)),
        Support::No
    );

    // Renamed types: canonical newest name, old names kept.
    assert_eq!(
        m.canonical_name("QCryptoHashAlgorithm"),
        Some("QCryptoHashAlgo")
    );
    assert_eq!(m.canonical_name("BlockJobType"), Some("JobType"));
    assert_eq!(
        m.canonical_name("q_obj_InetSocketAddress-wrapper"),
        Some("InetSocketAddressWrapper")
    );
    assert_eq!(
        m.canonical_name("StringWrapper"),
        Some("FdSocketAddressWrapper")
    );

    // Removed commands, values and branches stay, with their last version.
    let cpus = m.lifetime(&Path::definition("query-cpus")).expect("known");
    assert_eq!(cpus.removed_after(), Some(Version::new(5, 2)));
    assert_eq!(
        m.supports(&Path::definition("query-cpus"), Version::new(6, 0)),
        Support::No
    );
    assert_eq!(
        m.lifetime(&Path::value("BlockdevDriver", "vxhs"))
            .expect("known")
            .removed_after(),
        Some(Version::new(5, 0))
    );
    assert!(schema
        .schema
        .union_type("BlockdevOptions")
        .is_some_and(|u| u.branch("vxhs").is_some()));
    // Made optional later: required in arguments only where every version requires it.
    assert_eq!(m.requirement("migrate", "uri").in_arguments, Some(false));
    assert_eq!(
        m.requirement("BlockdevCreateOptionsLUKS", "file")
            .in_arguments,
        Some(false)
    );
    // Deprecation, and removal after it.
    let reconnect = m
        .lifetime(&Path::member("ChardevSocket", "reconnect"))
        .expect("known");
    assert_eq!(reconnect.deprecated_since, Some(Version::new(9, 2)));
    let disk = m
        .lifetime(&Path::member("MigrationInfo", "disk"))
        .expect("known");
    assert_eq!(disk.deprecated_since, Some(Version::new(8, 2)));
    assert_eq!(disk.removed_after(), Some(Version::new(9, 0)));
    // Between merged versions: none are missing for QEMU, so 7.2.5 is 7.2.
    assert_eq!(
        m.supports(
            &Path::definition("query-cpus-fast"),
            Version::parse("7.2.5").expect("v")
        ),
        Support::Yes
    );
    assert_eq!(
        m.supports(&Path::definition("query-cpus-fast"), Version::new(11, 0)),
        Support::Unknown
    );
}

#[test]
fn committed_merged_storage_daemon_and_guest_agent_load() {
    let qsd = committed("qemu-storage-daemon.json");
    let m = Merged::new(&qsd);
    let v: Vec<Version> = m.history().versions.iter().map(|v| v.version).collect();
    assert_eq!(v, [Version::new(7, 2), Version::new(10, 0)]);
    // Between 7.2 and 10.0 the storage daemon's history cannot tell what was added when.
    let added = m
        .history()
        .definitions
        .iter()
        .find(|d| d.present.is_some_and(|p| p.first() == Some(1)))
        .map(|d| Path::definition(d.name.clone()))
        .expect("something was added after 7.2");
    assert_eq!(m.supports(&added, Version::new(8, 0)), Support::Unknown);
    assert_eq!(m.supports(&added, Version::new(10, 0)), Support::Yes);

    let qga = committed("qga.json");
    let m = Merged::new(&qga);
    assert_eq!(m.history().versions.len(), 22);
    assert!(m.schema().command("guest-exec").is_some());
}
