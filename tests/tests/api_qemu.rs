//! The typed API (qmp-api, default schema: the merged `schema/qemu.json`) against real QEMU 10.0.2
//! and 7.2.

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
                                assert!(v.is_untagged(), "{v:?}");
                                assert!(v.members().contains_key("state"), "{v:?}");
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

/// Issue 10, item 3: typed `getfd` really passes a descriptor (QEMU needs `SCM_RIGHTS`), and
/// typed `closefd` releases it; typed `add-fd` adds one to an fd set that typed `query-fdsets`
/// then lists.
#[tokio::test]
async fn issue_10_typed_fd_passing_getfd_closefd_add_fd_query_fdsets() {
    for kind in SYSTEMS {
        let Some(qemu) = Qemu::start(kind) else {
            continue;
        };
        within(30, async {
            let qmp = Qmp::from(qemu.connect().await);
            let file = std::fs::File::create(qemu.dir.join("typed.img")).unwrap();

            qmp.getfd("typed").fd(&file).await.unwrap();
            qmp.closefd("typed").await.unwrap();
            // Closed: a second closefd fails, which shows the first really had a descriptor.
            let again = qmp.closefd("typed").await.unwrap_err();
            assert!(again.qmp_error().is_some(), "{again}");
            // Without a descriptor QEMU refuses getfd: the typed call did attach one.
            let none = qmp.getfd("none").await.unwrap_err();
            assert!(
                none.qmp_error().unwrap().desc.contains("SCM_RIGHTS"),
                "{none}"
            );

            let added = qmp
                .add_fd()
                .fdset_id(11)
                .opaque("typed-disk")
                .fd(&file)
                .await
                .unwrap();
            assert_eq!(added.fdset_id, 11);
            let sets = qmp.query_fdsets().await.unwrap();
            let set = sets.iter().find(|s| s.fdset_id == 11).expect("fd set 11");
            let fd = set
                .fds
                .iter()
                .find(|f| f.fd == added.fd)
                .expect("the added fd");
            assert_eq!(fd.opaque.as_deref(), Some("typed-disk"));
            qmp.remove_fd(11).await.unwrap();
            assert!(qmp
                .query_fdsets()
                .await
                .unwrap()
                .iter()
                .all(|s| s.fdset_id != 11));
        })
        .await;
    }
}

/// Issue 10, item 3: out-of-band calls get past a stuck in-band command. `blockdev-add` of an
/// NBD node whose server accepts the connection but never speaks blocks QEMU's main loop; with
/// the `oob` capability, `query-yank`, `yank` and `migrate-pause` are handled by the monitor's
/// I/O thread and answered at once, while an in-band `query-status` waits its turn.
#[tokio::test]
async fn issue_10_out_of_band_calls_get_past_a_stuck_command() {
    use qmp_api::types::{
        BlockdevOptions, BlockdevOptionsNbd, BlockdevOptionsVariant, InetSocketAddress,
        SocketAddress, SocketAddressVariant, YankInstanceVariant,
    };
    use qmp_api::Capability;
    use std::time::Duration;

    for kind in SYSTEMS {
        let Some(qemu) = Qemu::start(kind) else {
            continue;
        };
        within(60, async {
            let client = qemu
                .connect_with(qmp_core::Client::builder().capabilities([Capability::Oob]))
                .await;
            let qmp = Qmp::from(client);
            // An NBD "server" that accepts and then says nothing.
            let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = silent.local_addr().unwrap().port();
            let server = SocketAddress::new(SocketAddressVariant::Inet(InetSocketAddress::with_host_and_port(
                "127.0.0.1",
                port.to_string(),
            )));
            let mut nbd = BlockdevOptionsNbd::new(server);
            nbd.export = Some("none".into());
            let mut node = BlockdevOptions::new(BlockdevOptionsVariant::Nbd(nbd));
            node.node_name = Some("stuck".into());
            let add = tokio::spawn(qmp.blockdev_add(node));
            let (connection, _) = tokio::task::spawn_blocking(move || silent.accept())
                .await
                .unwrap()
                .unwrap();
            // QEMU is inside blockdev-add now: in-band commands queue behind it.
            let status = tokio::spawn(qmp.query_status());

            let quick = Some(Duration::from_secs(5));
            let yankable = qmp.query_yank().oob().timeout(quick).await.unwrap();
            assert!(
                yankable.iter().any(|y| matches!(&y.r#type, YankInstanceVariant::BlockNode(b) if b.node_name == "stuck")),
                "{yankable:?}"
            );
            qmp.yank(vec![]).oob().timeout(quick).await.unwrap();
            // Answered (with QEMU's error: no postcopy migration runs), not stuck.
            let pause = qmp.migrate_pause().oob().timeout(quick).await.unwrap_err();
            assert_eq!(pause.qmp_error().map(|e| e.class.as_str()), Some("GenericError"), "{pause}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(!add.is_finished() && !status.is_finished(), "the in-band commands were not stuck");

            // The server hangs up: blockdev-add fails, and the queued in-band command runs.
            drop(connection);
            let err = add.await.unwrap().unwrap_err();
            assert!(err.qmp_error().is_some(), "{err}");
            assert!(status.await.unwrap().unwrap().running);
        })
        .await;
    }
}
