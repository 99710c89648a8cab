//! Issue 11, item 1: building unions and nested values reads like their JSON. Each value is
//! one expression, checked against the exact JSON text QEMU's documentation writes.

use qmp_api::types::{
    BlockExportOptions, BlockExportOptionsNbd, BlockExportOptionsVariant, BlockdevOptions,
    BlockdevOptionsFile, BlockdevOptionsNull, BlockdevOptionsQcow2, BlockdevOptionsVariant,
    BlockdevRef, BlockdevRefOrNull, BlockdevSnapshotSync, ImageInfoSpecificVariant,
    InetSocketAddress, SocketAddress, SocketAddressLegacy, SocketAddressLegacyVariant,
    UnixSocketAddress, UnixSocketAddressWrapper,
};

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("serializable")
}

/// The issue's first example: a null-co node named `null0` of 64 MiB.
#[test]
fn null_co_blockdev_is_one_expression() {
    let null =
        BlockdevOptions::null_co(BlockdevOptionsNull::default().size(64 << 20)).node_name("null0");
    assert_eq!(
        json(&null),
        r#"{"driver":"null-co","node-name":"null0","size":67108864}"#
    );
    // The same value spelled the long way is equal.
    let mut long = BlockdevOptions::new(BlockdevOptionsVariant::NullCo(BlockdevOptionsNull {
        size: Some(64 << 20),
        ..Default::default()
    }));
    long.node_name = Some("null0".into());
    assert_eq!(null, long);
}

/// The issue's second example: a legacy socket address (`nbd-server-start`'s `addr`).
#[test]
fn legacy_socket_address_is_one_expression() {
    let p = "/run/vm0/nbd.sock";
    let addr = SocketAddressLegacy::from(UnixSocketAddress::new(p));
    assert_eq!(
        json(&addr),
        format!(r#"{{"type":"unix","data":{{"path":"{p}"}}}}"#)
    );
    // Through the wrapper and through the variant: the same value.
    let wrapper = UnixSocketAddressWrapper::from(UnixSocketAddress::new(p));
    assert_eq!(addr, SocketAddressLegacy::from(wrapper.clone()));
    assert_eq!(
        addr,
        SocketAddressLegacy::from(SocketAddressLegacyVariant::from(wrapper))
    );
}

/// `From<Branch>` where the branch type belongs to one branch only; a shared branch type
/// (`BlockdevOptionsNull` is both `null-aio` and `null-co`) has none, the tag constructor
/// says which.
#[test]
fn from_branch_into_union_and_variant() {
    // `BlockdevOptionsFile` is shared by `file`, `host_device` and `host_cdrom`.
    let file = BlockdevOptions::file(BlockdevOptionsFile::new("/tmp/disk.img")).node_name("file0");
    assert_eq!(
        json(&file),
        r#"{"driver":"file","node-name":"file0","filename":"/tmp/disk.img"}"#
    );
    let variant = BlockdevOptionsVariant::from(BlockdevOptionsQcow2::new("file0"));
    assert!(matches!(variant, BlockdevOptionsVariant::Qcow2(_)));
    let aio = BlockdevOptions::null_aio(BlockdevOptionsNull::default());
    assert_eq!(json(&aio), r#"{"driver":"null-aio"}"#);
}

/// Alternates with a string branch convert from `&str` and `String`; their other branches
/// from their own types. Setters and constructors take `impl Into<..>`, so a node name is
/// enough where a `BlockdevRef` is expected.
#[test]
fn alternates_convert_from_their_branches() {
    assert_eq!(
        BlockdevRef::from("node0"),
        BlockdevRef::Reference("node0".into())
    );
    assert_eq!(
        BlockdevRef::from(String::from("node0")),
        BlockdevRef::Reference("node0".into())
    );
    let inline = BlockdevRef::from(BlockdevOptions::file(BlockdevOptionsFile::new("/tmp/a")));
    assert!(matches!(inline, BlockdevRef::Definition(_)));

    let qcow2 = BlockdevOptions::from(
        BlockdevOptionsQcow2::new("file0").backing(BlockdevRefOrNull::from("base0")),
    )
    .node_name("disk0");
    assert_eq!(
        json(&qcow2),
        r#"{"driver":"qcow2","node-name":"disk0","file":"file0","backing":"base0"}"#
    );
    // The inline definition of a file node, in the same expression.
    let nested = BlockdevOptions::from(BlockdevOptionsQcow2::new(BlockdevOptions::file(
        BlockdevOptionsFile::new("/tmp/disk.qcow2"),
    )));
    assert_eq!(
        json(&nested),
        r#"{"driver":"qcow2","file":{"driver":"file","filename":"/tmp/disk.qcow2"}}"#
    );
}

/// Setters sit beside the public fields and set the `Option`; the fields stay usable.
#[test]
fn setters_chain_beside_public_fields() {
    let snap = BlockdevSnapshotSync::new("overlay.qcow2")
        .node_name("disk0")
        .snapshot_node_name("overlay0");
    assert_eq!(snap.node_name.as_deref(), Some("disk0"));
    assert_eq!(snap.snapshot_node_name.as_deref(), Some("overlay0"));
    assert_eq!(snap.device, None);
}

/// `Display` on a `...Variant` enum is its tag, as on the wire.
#[test]
fn variants_display_their_tag() {
    let v = BlockdevOptionsVariant::from(BlockdevOptionsQcow2::new("file0"));
    assert_eq!(v.to_string(), "qcow2");
    let null = BlockdevOptions::null_co(BlockdevOptionsNull::default());
    assert_eq!(null.driver.to_string(), "null-co");
    assert_eq!(
        SocketAddressLegacy::from(UnixSocketAddress::new("/a"))
            .r#type
            .to_string(),
        "unix"
    );
    // Reply types too (nothing converts into them, but they print their tag).
    let unknown: qmp_api::types::ImageInfoSpecific =
        serde_json::from_value(serde_json::json!({"type": "qcow9", "data": {}})).expect("decodes");
    assert!(matches!(unknown.r#type, ImageInfoSpecificVariant::Other(_)));
    assert_eq!(unknown.r#type.to_string(), "qcow9");
}

/// Two required strings in a row are easy to swap: such constructors are named after them,
/// in order, so the call site shows which is which.
#[test]
fn swappable_strings_are_named_by_the_constructor() {
    let export = BlockExportOptions::with_id_and_node_name(
        "exp0",
        "disk0",
        BlockExportOptionsVariant::Nbd(BlockExportOptionsNbd::default().name("disk")),
    )
    .writable(true);
    assert_eq!(
        json(&export),
        r#"{"type":"nbd","id":"exp0","node-name":"disk0","writable":true,"name":"disk"}"#
    );
    let inet = SocketAddress::from(InetSocketAddress::with_host_and_port("127.0.0.1", "10809"));
    assert_eq!(
        json(&inet),
        r#"{"type":"inet","host":"127.0.0.1","port":"10809"}"#
    );
}

/// Types QEMU never sends (here `BlockdevOptions` and `SocketAddressLegacy`, only in
/// arguments) decode with the `decode-arguments` feature, which this crate gets through
/// `mock`: a configuration file's `blockdev-add` options read back into the typed value.
#[test]
fn argument_types_decode_with_the_decode_arguments_feature() {
    let text = r#"{"driver":"null-co","node-name":"null0","size":67108864}"#;
    let read: BlockdevOptions = serde_json::from_str(text).expect("decodes");
    let built =
        BlockdevOptions::null_co(BlockdevOptionsNull::default().size(64 << 20)).node_name("null0");
    assert_eq!(read, built);
    assert_eq!(json(&read), text);
    let text = r#"{"type":"unix","data":{"path":"/run/qmp.sock"}}"#;
    let addr: SocketAddressLegacy = serde_json::from_str(text).expect("decodes");
    assert_eq!(json(&addr), text);
}

/// Types QEMU never sends refuse members they do not know, so a typo in a configuration file
/// is an error naming the member (and the known ones), not a member silently dropped; in the
/// base, in a union's branch, in a branch without members, and nested. Types QEMU sends still
/// skip unknown members (a newer QEMU adds some).
#[test]
fn argument_types_refuse_unknown_members() {
    let refused = |text: &str| -> String {
        match qmp_core::DecodeError::decode::<BlockdevOptions>("config", text) {
            Ok(v) => panic!("{text} decoded as {v:?}"),
            Err(e) => e.to_string(),
        }
    };
    // A base member misspelled, with a known driver (the trial's case).
    let e =
        refused(r#"{"driver":"file","node-name":"f0","filename":"/tmp/a.img","read-onyl":true}"#);
    assert!(e.contains("unknown field `read-onyl`"), "{e}");
    assert!(
        e.contains("`read-only`"),
        "the known members are listed: {e}"
    );
    // A branch member misspelled.
    let e = refused(r#"{"driver":"file","filenme":"/tmp/a.img"}"#);
    assert!(e.contains("unknown field `filenme`"), "{e}");
    assert!(e.contains("`filename`"), "{e}");
    // Nested: the qcow2 node's `file` child, with its path.
    let e = refused(
        r#"{"driver":"qcow2","node-name":"q","file":{"driver":"file","filename":"/a","cache-drect":true}}"#,
    );
    assert!(e.contains("unknown field `cache-drect`"), "{e}");
    assert!(e.contains("file"), "the path names the member: {e}");
    // Every member known: decodes, base and branch alike.
    let ok: BlockdevOptions = serde_json::from_str(
        r#"{"driver":"file","node-name":"f0","filename":"/tmp/a.img","read-only":true}"#,
    )
    .expect("decodes");
    assert_eq!(ok.read_only, Some(true));
    // A struct QEMU never sends, refusing on its own.
    let e = serde_json::from_str::<BlockdevOptionsNull>(r#"{"size":1,"read-zeros":true}"#)
        .expect_err("refused")
        .to_string();
    assert!(e.contains("unknown field `read-zeros`"), "{e}");
    assert!(e.contains("`read-zeroes`"), "{e}");
    // A struct without members takes `{}` only.
    assert!(serde_json::from_str::<qmp_api::types::Abort>("{}").is_ok());
    let e = serde_json::from_str::<qmp_api::types::Abort>(r#"{"now":true}"#)
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("unknown field `now`, there are no fields"),
        "{e}"
    );
    // `UnixSocketAddress` is also in replies (`query-vnc`...): it skips.
    let unix: UnixSocketAddress =
        serde_json::from_str(r#"{"path":"/s","from-qemu-11":true}"#).expect("decodes");
    assert_eq!(unix.path, "/s");
    // A type QEMU sends skips what it does not know.
    let status: qmp_api::types::StatusInfo = serde_json::from_str(
        r#"{"running":true,"status":"running","singlestep":false,"from-qemu-11":1}"#,
    )
    .expect("a reply with a newer member decodes");
    assert!(status.running);
}
