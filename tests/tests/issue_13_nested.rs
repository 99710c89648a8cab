//! Issue 13, item 3 in depth: once the typed client has the server's `query-qmp-schema`,
//! nested arguments and enum values the server does not know are refused before sending,
//! naming the dotted argument (and value); `gen: false` commands (`device_add`) keep their
//! unlisted arguments; and what the server knows still goes to QEMU unchanged.

#![allow(clippy::unwrap_used)] // a failure is a test failure

use qmp_api::types::{
    BlockdevOptions, BlockdevOptionsQcow2, MigrationCapability, MigrationCapabilityStatus,
};
use qmp_api::{ExecuteError, Qmp};
use qmp_tests::qemu::{Kind, Qemu};
use qmp_tests::within;

/// The unsupported argument and value an error names, or a description of what it is.
fn unsupported(e: &ExecuteError) -> (Option<String>, Option<String>) {
    match e {
        ExecuteError::Unsupported {
            argument, value, ..
        } => (argument.clone(), value.clone()),
        other => panic!("expected ExecuteError::Unsupported, got {other}"),
    }
}

#[tokio::test]
async fn issue_13_nested_arguments_and_values_checked_before_sending() {
    for kind in [Kind::System72, Kind::System10] {
        let Some(qemu) = Qemu::start(kind) else {
            continue;
        };
        within(60, async {
            let qmp = Qmp::from(qemu.connect().await);
            qmp.server_schema().await.unwrap();

            // A union branch member added in QEMU 8.1 (qcow2's `discard-no-unref`), chosen
            // by the discriminator `driver`.
            let node = BlockdevOptions::qcow2(
                BlockdevOptionsQcow2::new("no-such-node").discard_no_unref(true),
            )
            .node_name("q0");
            let e = qmp.blockdev_add(node).await.unwrap_err();
            if kind == Kind::System72 {
                assert_eq!(unsupported(&e), (Some("discard-no-unref".into()), None));
                assert!(!e.was_sent());
                let text = e.to_string();
                assert!(
                    text.contains("argument `discard-no-unref` of blockdev-add")
                        && text.contains("7.2"),
                    "{text}"
                );
            } else {
                // 10.0 knows it: QEMU itself answers (the file node does not exist).
                assert!(e.qmp_error().is_some(), "{kind:?}: {e}");
            }

            // An enum value added in QEMU 8.1, inside an array of objects.
            let caps = vec![MigrationCapabilityStatus::new(
                MigrationCapability::SwitchoverAck,
                false,
            )];
            let r = qmp.migrate_set_capabilities(caps).await;
            if kind == Kind::System72 {
                let e = r.unwrap_err();
                assert_eq!(
                    unsupported(&e),
                    (
                        Some("capabilities.capability".into()),
                        Some("switchover-ack".into())
                    )
                );
                let text = e.to_string();
                assert!(
                    text.contains("value \"switchover-ack\" of argument `capabilities.capability` of migrate-set-capabilities"),
                    "{text}"
                );
            } else {
                r.unwrap();
            }

            // Known nested values pass the check and reach QEMU.
            let caps = vec![MigrationCapabilityStatus::new(
                MigrationCapability::Events,
                true,
            )];
            qmp.migrate_set_capabilities(caps).await.unwrap();

            // device_add takes device properties the schema does not list: they are not
            // refused by the check; QEMU judges them (no such device on `-machine none`).
            let e = qmp
                .device_add("virtio-blk-pci")
                .arg("drive", "d0")
                .await
                .unwrap_err();
            assert!(e.qmp_error().is_some(), "{kind:?}: {e}");
        })
        .await;
    }
}
