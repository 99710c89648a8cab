//! The typed API (qmp-api, default schema QEMU 10.0.13) against real QEMU 10.0.2 and 7.2.

use qmp_api::types::SevInfoVariant;
use qmp_api::Qmp;
use qmp_tests::qemu::{Kind, Qemu};
use qmp_tests::within;

const SYSTEMS: [Kind; 2] = [Kind::System10, Kind::System72];

#[tokio::test]
async fn typed_queries_decode_against_real_qemu() {
    for kind in SYSTEMS {
        let Some(qemu) = Qemu::start(kind) else {
            continue;
        };
        within(60, async {
            let qmp = Qmp::from(qemu.connect().await);
            let v = qmp.query_version().await.unwrap();
            assert_eq!(
                (v.qemu.major as u64, v.qemu.minor as u64),
                kind.expected_version()
            );
            let s = qmp.query_status().await.unwrap();
            assert!(s.running);
            let cmds = qmp.query_commands().await.unwrap();
            assert!(cmds.iter().any(|c| c.name == "query-status"));
            let schema = qmp.query_qmp_schema().await.unwrap();
            assert!(schema.len() > 500, "{}", schema.len());
            let _blocks = qmp.query_block().await.unwrap();
            let _nodes = qmp.query_named_block_nodes().await.unwrap();
            let machines = qmp.query_machines().await.unwrap();
            assert!(machines.iter().any(|m| m.name == "none"));
            let _cpus = qmp.query_cpus_fast().await.unwrap();
            let _jobs = qmp.query_jobs().await.unwrap();
            let types = qmp.qom_list_types().await.unwrap();
            assert!(types.len() > 100);
            let defs = qmp.query_cpu_definitions().await.unwrap();
            assert!(!defs.is_empty());
            // `SevInfo` became a union on a new `sev-type` member in 9.1; QEMU 7.2 replies
            // without it, which decodes as an untagged branch keeping every member.
            match qmp.query_sev().await {
                Ok(sev) => {
                    assert!(!sev.enabled);
                    if kind == Kind::System72 {
                        match &sev.sev_type {
                            SevInfoVariant::Other(v) => {
                                assert!(v.tag.is_empty(), "{v:?}");
                                assert!(v.members.contains_key("state"), "{v:?}");
                            }
                            other => panic!("{other:?}"),
                        }
                    }
                }
                Err(e) if kind == Kind::System72 => panic!("query-sev on 7.2: {e}"),
                // QEMU 10 without SEV answers with an error, which must not be a decode error.
                Err(e) => assert!(e.qmp_error().is_some(), "{e}"),
            }
        })
        .await;
    }
}

/// The typed job workflow on qemu-storage-daemon: `blockdev-add` with a typed union value,
/// `blockdev-create` whose `JOB_STATUS_CHANGE` events are matched as `Event` variants until
/// `concluded`, then `job-dismiss`.
#[tokio::test]
async fn typed_job_workflow_on_the_storage_daemon() {
    use qmp_api::types::{
        BlockdevCreateOptions, BlockdevCreateOptionsQcow2, BlockdevCreateOptionsVariant,
        BlockdevOptions, BlockdevOptionsFile, BlockdevOptionsVariant, BlockdevRef, JobStatus,
    };
    use qmp_api::Event;
    use std::time::Duration;

    let Some(qsd) = Qemu::start(Kind::StorageDaemon) else {
        return;
    };
    within(60, async {
        let qmp = Qmp::from(qsd.connect().await);
        let image = qsd.dir.join("disk.qcow2");
        std::fs::File::create(&image).unwrap();

        let mut file = BlockdevOptions::new(BlockdevOptionsVariant::File(BlockdevOptionsFile::new(
            image.display().to_string(),
        )));
        file.node_name = Some("file0".into());
        qmp.blockdev_add(file).await.unwrap();

        let mut events = qmp.events();
        let options = BlockdevCreateOptions::new(BlockdevCreateOptionsVariant::Qcow2(
            BlockdevCreateOptionsQcow2::new(BlockdevRef::Reference("file0".into()), 64 << 20),
        ));
        qmp.blockdev_create("job0", options).await.unwrap();

        let mut seen = Vec::new();
        while seen.last() != Some(&JobStatus::Concluded) {
            let received = events.next().await.expect("stream ended").unwrap();
            if let Event::JobStatusChange(change) = received.event {
                assert_eq!(change.id, "job0");
                seen.push(change.status);
            }
        }
        assert_eq!(seen.first(), Some(&JobStatus::Created), "{seen:?}");
        assert!(seen.contains(&JobStatus::Running), "{seen:?}");

        let jobs = qmp.query_jobs().await.unwrap();
        let job = jobs.iter().find(|j| j.id == "job0").expect("job0 listed");
        assert_eq!(job.status, JobStatus::Concluded);
        assert!(job.error.is_none(), "{:?}", job.error);

        qmp.job_dismiss("job0").await.unwrap();
        events
            .wait_for(
                |e| matches!(e, Event::JobStatusChange(c) if c.id == "job0" && c.status == JobStatus::Null),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert!(qmp.query_jobs().await.unwrap().is_empty());

        // The image really is qcow2 now: open it as such.
        let mut qcow2 = BlockdevOptions::new(BlockdevOptionsVariant::Qcow2(
            qmp_api::types::BlockdevOptionsQcow2::new(BlockdevRef::Reference("file0".into())),
        ));
        qcow2.node_name = Some("disk0".into());
        qmp.blockdev_add(qcow2).await.unwrap();
        let nodes = qmp.query_named_block_nodes().await.unwrap();
        let disk = nodes.iter().find(|n| n.node_name.as_deref() == Some("disk0")).expect("disk0");
        assert_eq!(disk.drv, "qcow2");
        assert_eq!(disk.image.virtual_size, 64 << 20);
    })
    .await;
}
