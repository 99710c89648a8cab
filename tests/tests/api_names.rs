//! Issue 10: the eight names that used to exist both in `commands` and in `types` are one item
//! each now (the command type *is* the schema struct), so glob-importing every public module
//! together works, with `ambiguous_glob_imports` denied, and each name means one thing: a
//! value, a command (`Command`), and the argument shape of its call type.

#![deny(ambiguous_glob_imports)]
#![allow(deprecated)] // drive-backup and drive-mirror are deprecated in QEMU's schema

use qmp_api::commands::*;
use qmp_api::events::*;
use qmp_api::types::*;
use qmp_api::*;

fn name_of<C: Command>(_: &C) -> &'static str {
    C::NAME
}

#[test]
fn the_eight_formerly_colliding_names_work_through_glob_imports() {
    let backup = BlockdevBackup::with_device_and_target("disk0", MirrorSyncMode::Full, "backup0");
    assert_eq!(name_of(&backup), "blockdev-backup");
    let snapshot = BlockdevSnapshot::with_node_and_overlay("disk0", "overlay0");
    assert_eq!(name_of(&snapshot), "blockdev-snapshot");
    let mut sync = BlockdevSnapshotSync::new("/tmp/overlay.qcow2");
    sync.device = Some("disk0".into());
    assert_eq!(name_of(&sync), "blockdev-snapshot-sync");
    let add = BlockDirtyBitmapAdd::with_node_and_name("disk0", "bitmap0");
    assert_eq!(name_of(&add), "block-dirty-bitmap-add");
    // Issue 13: QEMU 3.x named these arguments `dst_name` and `src_name`, so `target` and
    // `bitmaps` are not required in every version that has the command: setters.
    let merge = BlockDirtyBitmapMerge::new("disk0")
        .target("bitmap0")
        .bitmaps(vec![BlockDirtyBitmapOrStr::Local("bitmap1".into())]);
    assert_eq!(name_of(&merge), "block-dirty-bitmap-merge");
    let drive_backup =
        DriveBackup::with_device_and_target("disk0", MirrorSyncMode::Top, "/tmp/backup.qcow2");
    assert_eq!(name_of(&drive_backup), "drive-backup");
    let mirror =
        DriveMirror::with_device_and_target("disk0", "/tmp/mirror.qcow2", MirrorSyncMode::Full);
    assert_eq!(name_of(&mirror), "drive-mirror");
    let params = MigrateSetParameters {
        downtime_limit: Some(300),
        ..Default::default()
    };
    assert_eq!(name_of(&params), "migrate-set-parameters");
    // And `events::*` is part of the same glob set: its names are distinct too.
    let _: Option<BlockJobCompleted> = None;

    // Each is still the schema struct it always was: the same value serializes as the
    // command's arguments.
    assert_eq!(
        serde_json::to_value(&backup).unwrap(),
        serde_json::json!({"device": "disk0", "target": "backup0", "sync": "full"})
    );
    assert_eq!(
        serde_json::to_value(&merge).unwrap(),
        serde_json::json!({"node": "disk0", "target": "bitmap0", "bitmaps": ["bitmap1"]})
    );
    assert_eq!(
        serde_json::to_value(&params).unwrap(),
        serde_json::json!({"downtime-limit": 300})
    );
}

/// The call types of those commands are nameable too, and a command value runs through
/// `Qmp::execute` as a `Call` of that very type.
#[allow(dead_code)]
fn call_types(
    qmp: &Qmp,
) -> (
    BlockdevBackupCall,
    Call<BlockdevBackup>,
    MigrateSetParametersCall,
) {
    (
        qmp.blockdev_backup("disk0", MirrorSyncMode::Full, "backup0")
            .job_id("job0")
            .speed(1 << 20),
        qmp.execute(BlockdevBackup::with_device_and_target(
            "disk0",
            MirrorSyncMode::Full,
            "backup0",
        )),
        qmp.migrate_set_parameters().downtime_limit(300),
    )
}
