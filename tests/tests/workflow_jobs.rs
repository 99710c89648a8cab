//! Issue 12, block jobs: `qmp_api::workflow::Job` against real QEMU 10.0.2, 7.2 and
//! qemu-storage-daemon 10.0.2, including failing, cancelled, timed-out, dropped and killed
//! jobs.

use std::process::Command;
use std::time::{Duration, Instant};

use qmp_api::commands::BlockdevBackupCall;
use qmp_api::types::{
    BlkdebugEvent, BlkdebugInjectErrorOptions, BlockdevCreateOptions, BlockdevCreateOptionsQcow2,
    BlockdevCreateOptionsVariant, BlockdevOptions, BlockdevOptionsBlkdebug, BlockdevOptionsFile,
    BlockdevOptionsQcow2, BlockdevOptionsVariant, BlockdevRef, JobStatus, MirrorSyncMode,
};
use qmp_api::workflow::{Job, JobError, Launcher, QemuProcess};
use qmp_api::Qmp;
use qmp_tests::qemu::Kind;
use qmp_tests::{within, TempDir};
use serde_json::json;

const KINDS: [Kind; 3] = [Kind::System10, Kind::System72, Kind::StorageDaemon];

/// A started QEMU with a scratch directory.
struct Vm {
    qmp: Qmp,
    qemu: QemuProcess,
    dir: TempDir,
    kind: Kind,
}

async fn start(kind: Kind) -> Option<Vm> {
    let bin = kind.require()?;
    let mut cmd = Command::new(bin);
    if kind != Kind::StorageDaemon {
        cmd.args(["-machine", "none", "-nodefaults", "-display", "none"]);
    }
    let (qmp, qemu) = within(30, Launcher::new(cmd).launch())
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    Some(Vm {
        qmp,
        qemu,
        dir: TempDir::new(),
        kind,
    })
}

impl Vm {
    /// A raw image file of `mib` MiB filled with data, opened as node `name`.
    async fn raw_node(&self, name: &str, mib: usize, fill: u8) {
        let path = self.dir.join(&format!("{name}.img"));
        std::fs::write(&path, vec![fill; mib << 20]).expect("write image");
        self.add_file_node(name, &path).await;
    }

    async fn add_file_node(&self, name: &str, path: &std::path::Path) {
        let file = BlockdevOptionsFile::new(path.display().to_string());
        self.add_node(name, BlockdevOptionsVariant::File(file))
            .await;
    }

    async fn add_node(&self, name: &str, driver: BlockdevOptionsVariant) {
        let mut node = BlockdevOptions::new(driver);
        node.node_name = Some(name.into());
        self.qmp
            .blockdev_add(node)
            .await
            .unwrap_or_else(|e| panic!("{:?}: blockdev-add {name}: {e}", self.kind));
    }

    async fn jobs(&self) -> Vec<String> {
        self.qmp
            .query_jobs()
            .await
            .expect("query-jobs")
            .into_iter()
            .map(|j| format!("{}:{}", j.id, j.status))
            .collect()
    }

    /// A full backup of `src` to `dst` as job `id`; callers add options with its setters.
    fn backup(&self, id: &str, src: &str, dst: &str) -> BlockdevBackupCall {
        self.qmp
            .blockdev_backup(src, MirrorSyncMode::Full, dst)
            .job_id(id)
    }
}

fn qcow2(file: &str, size: u64, cluster_size: Option<u64>) -> BlockdevCreateOptions {
    let mut q = BlockdevCreateOptionsQcow2::new(BlockdevRef::Reference(file.into()), size);
    q.cluster_size = cluster_size;
    BlockdevCreateOptions::new(BlockdevCreateOptionsVariant::Qcow2(q))
}

/// blockdev-create (manual dismiss) to the end, with progress; the image then opens.
#[tokio::test]
async fn create_qcow2_runs_to_the_end() {
    for kind in KINDS {
        let Some(vm) = start(kind).await else {
            continue;
        };
        let path = vm.dir.join("new.qcow2");
        std::fs::File::create(&path).expect("create");
        vm.add_file_node("file0", &path).await;
        let job = Job::new(&vm.qmp, "create0").progress_interval(Duration::from_millis(20));
        let progress = job.progress();
        let report = within(
            30,
            job.run(
                vm.qmp
                    .blockdev_create("create0", qcow2("file0", 64 << 20, None)),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert!(!report.cancelled);
        assert_eq!(report.id, "create0");
        // Dismissed by the runner.
        assert_eq!(report.progress.status, JobStatus::Null, "{kind:?}");
        assert_eq!(progress.borrow().status, JobStatus::Null);
        assert!(
            vm.jobs().await.is_empty(),
            "{kind:?}: {:?}",
            vm.jobs().await
        );
        // The created image opens.
        let qcow2 = BlockdevOptionsQcow2::new(BlockdevRef::Reference("file0".into()));
        vm.add_node("disk0", BlockdevOptionsVariant::Qcow2(qcow2))
            .await;
        eprintln!(
            "{kind:?}: blockdev-create of a 64 MiB qcow2: {:?}",
            report.elapsed
        );
    }
}

/// A job that fails: an invalid qcow2 cluster size. The error is QEMU's text, the job is
/// dismissed.
#[tokio::test]
async fn create_with_invalid_cluster_size_fails_with_qemus_error() {
    for kind in KINDS {
        let Some(vm) = start(kind).await else {
            continue;
        };
        let path = vm.dir.join("bad.qcow2");
        std::fs::File::create(&path).expect("create");
        vm.add_file_node("file0", &path).await;
        for cluster in [1000u64, 256, 4 << 20] {
            let id = format!("bad{cluster}");
            let err = within(
                30,
                Job::new(&vm.qmp, id.clone()).run(
                    vm.qmp
                        .blockdev_create(&id, qcow2("file0", 1 << 20, Some(cluster))),
                ),
            )
            .await
            .expect_err("an invalid cluster size must fail");
            match &err {
                JobError::Failed { id: failed, error } => {
                    assert_eq!(failed, &id);
                    assert!(
                        error.contains("Cluster size must be a power of two between 512 and"),
                        "{kind:?}: {error}"
                    );
                }
                other => panic!("{kind:?}: expected Failed, got {other}"),
            }
            assert!(err
                .to_string()
                .starts_with(&format!("job {id} failed: Cluster size")));
            assert!(vm.jobs().await.is_empty(), "{kind:?}: not dismissed");
        }
    }
}

/// backup with the default auto-dismiss (the job vanishes at concluded) and with
/// auto-finalize/auto-dismiss off (the runner finalizes and dismisses), with progress.
#[tokio::test]
async fn backup_with_and_without_auto_finalize_and_dismiss() {
    for kind in KINDS {
        let Some(vm) = start(kind).await else {
            continue;
        };
        vm.raw_node("src", 4, 0xab).await;
        vm.raw_node("dst1", 4, 0).await;
        vm.raw_node("dst2", 4, 0).await;
        let auto = within(
            30,
            Job::new(&vm.qmp, "b1").run(vm.backup("b1", "src", "dst1")),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(auto.progress.status, JobStatus::Null);
        // Auto-dismissed (QEMU forgets the job at once) and never polled: the final numbers
        // come from BLOCK_JOB_COMPLETED (a new user's trial saw 0 of 0 here).
        assert_eq!(auto.progress.total, 4 << 20, "{kind:?}");
        assert_eq!(auto.progress.current, 4 << 20, "{kind:?}");

        let job = Job::new(&vm.qmp, "b2").progress_interval(Duration::from_millis(10));
        let mut progress = job.progress();
        let seen = tokio::spawn(async move {
            let mut states = Vec::new();
            while progress.changed().await.is_ok() {
                let p = progress.borrow_and_update().clone();
                if states.last() != Some(&p.status) {
                    states.push(p.status.clone());
                }
            }
            states
        });
        let manual = within(
            30,
            job.run(
                vm.backup("b2", "src", "dst2")
                    .auto_finalize(false)
                    .auto_dismiss(false)
                    .speed(8 << 20),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(manual.progress.total, 4 << 20, "{kind:?}");
        assert_eq!(manual.progress.current, 4 << 20, "{kind:?}");
        let states = seen.await.expect("progress task");
        for s in [JobStatus::Pending, JobStatus::Concluded, JobStatus::Null] {
            assert!(states.contains(&s), "{kind:?}: {s} not in {states:?}");
        }
        assert!(vm.jobs().await.is_empty(), "{kind:?}");
        assert_eq!(
            std::fs::read(vm.dir.join("dst2.img")).expect("read copy"),
            vec![0xab; 4 << 20],
            "{kind:?}: the backup is not a copy"
        );
    }
}

/// A mirror handed back at ready, then cancelled: the target stays unused, the job is gone.
/// A second mirror is completed at ready by `run`.
#[tokio::test]
async fn mirror_cancelled_on_ready_and_mirror_completed() {
    for kind in KINDS {
        let Some(vm) = start(kind).await else {
            continue;
        };
        vm.raw_node("src", 2, 0x5a).await;
        vm.raw_node("dst", 2, 0).await;
        let ready = within(
            30,
            Job::new(&vm.qmp, "m1").run_until_ready(
                vm.qmp
                    .blockdev_mirror("src", "dst", MirrorSyncMode::Full)
                    .job_id("m1"),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(ready.id(), "m1");
        assert_eq!(ready.progress().borrow().status, JobStatus::Ready);
        assert_eq!(vm.jobs().await, ["m1:ready"], "{kind:?}: keeps running");
        let report = within(30, ready.cancel())
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert!(report.cancelled, "{kind:?}");
        assert!(vm.jobs().await.is_empty(), "{kind:?}");

        let report = within(
            30,
            Job::new(&vm.qmp, "m2").run(
                vm.qmp
                    .blockdev_mirror("src", "dst", MirrorSyncMode::Full)
                    .job_id("m2"),
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert!(!report.cancelled);
        assert!(vm.jobs().await.is_empty(), "{kind:?}");
    }
}

/// A backup, not a mirror, never becomes ready: run_until_ready says so. The backup is
/// started untyped here: the runner takes any job-creating future.
#[tokio::test]
async fn run_until_ready_on_a_job_without_ready() {
    let Some(vm) = start(Kind::StorageDaemon).await else {
        return;
    };
    vm.raw_node("src", 1, 1).await;
    vm.raw_node("dst", 1, 0).await;
    let untyped = vm.qmp.raw().execute(
        "blockdev-backup",
        json!({"job-id": "b", "device": "src", "target": "dst", "sync": "full"}),
    );
    let err = within(30, Job::new(&vm.qmp, "b").run_until_ready(untyped))
        .await
        .expect_err("a backup is never ready");
    assert!(matches!(err, JobError::NotReady { .. }), "{err}");
}

/// A throttled job that outlives the timeout is cancelled and dismissed.
#[tokio::test]
async fn timeout_cancels_the_job() {
    for kind in KINDS {
        let Some(vm) = start(kind).await else {
            continue;
        };
        vm.raw_node("src", 4, 7).await;
        vm.raw_node("dst", 4, 0).await;
        let t = Instant::now();
        let err = within(
            30,
            Job::new(&vm.qmp, "slow")
                .timeout(Duration::from_millis(400))
                .run(vm.backup("slow", "src", "dst").speed(64 << 10)),
        )
        .await
        .expect_err("must time out");
        match &err {
            JobError::Timeout {
                cancelled, after, ..
            } => {
                assert!(cancelled, "{kind:?}: {err}");
                assert_eq!(*after, Duration::from_millis(400));
            }
            other => panic!("{kind:?}: expected Timeout, got {other}"),
        }
        assert!(t.elapsed() < Duration::from_secs(10));
        assert!(vm.jobs().await.is_empty(), "{kind:?}");
    }
}

/// Dropping the runner's future cancels the job (and dismisses it) in the background.
#[tokio::test]
async fn dropping_the_runner_cancels_the_job() {
    for kind in KINDS {
        let Some(vm) = start(kind).await else {
            continue;
        };
        vm.raw_node("src", 4, 7).await;
        vm.raw_node("dst", 4, 0).await;
        let manual = vm
            .backup("dropped", "src", "dst")
            .speed(64 << 10)
            .auto_dismiss(false);
        let run = Job::new(&vm.qmp, "dropped").run(manual);
        let res = tokio::time::timeout(Duration::from_millis(300), run).await;
        assert!(res.is_err(), "{kind:?}: the throttled job ended early");
        assert_eq!(vm.jobs().await.len(), 1);
        within(10, async {
            while !vm.jobs().await.is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }
}

/// The job id of a running job: the second start fails, and the first job is not touched.
#[tokio::test]
async fn duplicate_job_id_fails_to_start_and_leaves_the_other_job() {
    let Some(vm) = start(Kind::System10).await else {
        return;
    };
    vm.raw_node("src", 4, 7).await;
    vm.raw_node("dst", 4, 0).await;
    vm.raw_node("dst2", 4, 0).await;
    vm.backup("j", "src", "dst")
        .speed(64 << 10)
        .await
        .expect("first job");
    let err = within(
        30,
        Job::new(&vm.qmp, "j").run(vm.backup("j", "src", "dst2")),
    )
    .await
    .expect_err("duplicate id");
    match &err {
        JobError::Start { error, .. } => {
            assert!(error.to_string().contains("already in use"), "{err}")
        }
        other => panic!("expected Start, got {other}"),
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(vm.jobs().await, ["j:running"]);
}

/// QEMU killed mid-job: the runner, its progress receiver, the process handle and any other
/// caller all end with a clear error, none hangs.
#[tokio::test]
async fn qemu_killed_mid_job() {
    for kind in KINDS {
        let Some(mut vm) = start(kind).await else {
            continue;
        };
        vm.raw_node("src", 4, 7).await;
        vm.raw_node("dst", 4, 0).await;
        let job = Job::new(&vm.qmp, "k").progress_interval(Duration::from_millis(20));
        let mut progress = job.progress();
        let run = tokio::spawn(job.run(vm.backup("k", "src", "dst").speed(64 << 10)));
        let watcher = tokio::spawn(async move {
            while progress.changed().await.is_ok() {}
            "progress receiver ended"
        });
        let mut events = vm.qmp.subscribe([qmp_api::EventKind::Shutdown]);
        let waiter = tokio::spawn(async move { events.next().await.map(|e| e.map(|r| r.event)) });
        within(10, async {
            while vm.jobs().await.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        let killed = Instant::now();
        let kill = Command::new("kill")
            .args(["-KILL", &vm.qemu.pid().to_string()])
            .status()
            .expect("kill");
        assert!(kill.success());
        let err = within(10, run)
            .await
            .expect("runner task")
            .expect_err("killed");
        let took = killed.elapsed();
        match &err {
            JobError::Disconnected { id, .. } => assert_eq!(id, "k"),
            other => panic!("{kind:?}: expected Disconnected, got {other}"),
        }
        assert!(err.to_string().contains("outcome is unknown"), "{err}");
        assert_eq!(
            within(10, watcher).await.expect("watcher"),
            "progress receiver ended"
        );
        // The event stream ends after reporting the disconnect.
        let ev = within(10, waiter).await.expect("waiter");
        assert!(
            matches!(ev, Some(Err(qmp_api::EventError::Disconnected(_))) | None),
            "{ev:?}"
        );
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            within(10, vm.qemu.wait()).await.expect("wait").signal(),
            Some(9)
        );
        eprintln!("{kind:?}: job runner ended {took:?} after the kill: {err}");
    }
}

/// A block job failing mid-way (blkdebug injects EIO on the target's writes), with
/// auto-dismiss (the job is gone at concluded: the error comes from BLOCK_JOB_COMPLETED) and
/// without (the error comes from query-jobs, and the runner dismisses the job).
#[tokio::test]
async fn backup_io_error_with_and_without_auto_dismiss() {
    for kind in KINDS {
        let Some(vm) = start(kind).await else {
            continue;
        };
        vm.raw_node("src", 1, 3).await;
        for (n, auto_dismiss) in [(1, true), (2, false)] {
            vm.raw_node(&format!("file{n}"), 1, 0).await;
            // Every write to bad{n} fails with EIO (errno 5).
            let mut eio = BlkdebugInjectErrorOptions::new(BlkdebugEvent::Pwritev);
            eio.errno = Some(5);
            eio.immediately = Some(true);
            let mut blkdebug =
                BlockdevOptionsBlkdebug::new(BlockdevRef::Reference(format!("file{n}")));
            blkdebug.inject_error = Some(vec![eio]);
            vm.add_node(
                &format!("bad{n}"),
                BlockdevOptionsVariant::Blkdebug(blkdebug),
            )
            .await;
            let id = format!("eio{n}");
            let err = within(
                30,
                Job::new(&vm.qmp, id.clone()).run(
                    vm.backup(&id, "src", &format!("bad{n}"))
                        .auto_dismiss(auto_dismiss),
                ),
            )
            .await
            .expect_err("the target fails every write");
            match &err {
                JobError::Failed { error, .. } => {
                    assert_eq!(
                        error, "Input/output error",
                        "{kind:?} auto-dismiss {auto_dismiss}"
                    )
                }
                other => panic!("{kind:?}: expected Failed, got {other}"),
            }
            assert!(vm.jobs().await.is_empty(), "{kind:?}");
        }
    }
}

/// Issue 16: a job cancelled by another client (here `block-job-cancel` sent beside the
/// runner) is `JobError::Cancelled` with a report saying `cancelled`, with auto-dismiss (the
/// job is gone before its error can be read) and without.
#[tokio::test]
async fn a_job_cancelled_by_another_client_is_cancelled_with_or_without_auto_dismiss() {
    for kind in KINDS {
        let Some(vm) = start(kind).await else {
            continue;
        };
        vm.raw_node("src", 4, 7).await;
        vm.raw_node("dst", 4, 0).await;
        for auto_dismiss in [true, false] {
            let id = format!("c{auto_dismiss}");
            let run = Job::new(&vm.qmp, id.clone()).run(
                vm.backup(&id, "src", "dst")
                    .speed(64 << 10)
                    .auto_dismiss(auto_dismiss),
            );
            let cancel = async {
                let deadline = Instant::now() + Duration::from_secs(10);
                while !vm.jobs().await.contains(&format!("{id}:running")) {
                    assert!(Instant::now() < deadline, "{kind:?}: {id} not running");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                vm.qmp
                    .raw()
                    .execute("block-job-cancel", json!({ "device": id }))
                    .await
                    .expect("block-job-cancel");
            };
            let (result, ()) = within(30, async { tokio::join!(run, cancel) }).await;
            match result {
                Err(JobError::Cancelled { id: got, report }) => {
                    assert_eq!(got, id);
                    assert!(report.cancelled, "{kind:?} {id}");
                    assert!(report.progress.total > 0, "{kind:?} {id}: {report:?}");
                }
                other => panic!("{kind:?} {id}: expected Cancelled, got {other:?}"),
            }
            assert!(
                vm.jobs().await.is_empty(),
                "{kind:?} {id}: {:?}",
                vm.jobs().await
            );
        }
        drop(vm.qemu);
    }
}
