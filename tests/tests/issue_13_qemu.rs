//! Issue 13: the default API, built from the schema merged from every QEMU version
//! (`schema/qemu.json`), against real QEMU 7.2 and 10.0.2.
//!
//! - A running mirror job: QEMU 7.2 sends `query-block-jobs` entries of type `mirror` without
//!   `actively-synced` (the mirror branch appeared in 8.2), 10.0 sends it; both decode.
//! - Every command of the schema that needs no argument, on `-machine none`, `pc` and `q35`
//!   and on the storage daemon, for both versions: each reply decodes, or QEMU answers with an
//!   error (a command it lacks is `CommandNotFound`). Zero decode failures.

#![allow(clippy::unwrap_used)] // a failure is a test failure

use std::time::Duration;

use qmp_api::types::{BlockJobInfoVariant, JobStatus};
use qmp_api::{ExecuteError, Qmp};
use qmp_tests::no_argument_commands::{NO_ARGUMENT_COMMANDS, NO_ARGUMENT_COUNT};
use qmp_tests::qemu::{Kind, Qemu};
use qmp_tests::within;
use serde_json::json;

/// Arguments selecting `machine` (`-S`: the guest does not run). QEMU 7.2, unpacked beside
/// 10.0.2, finds the PC firmware only when told where the installed SeaBIOS is.
fn machine_args(kind: Kind, machine: &str) -> Vec<&str> {
    let mut args = match machine {
        "" | "none" => return vec![],
        m => vec!["-machine", m, "-S"],
    };
    if kind == Kind::System72 {
        args.extend(["-L", "/usr/share/seabios", "-L", "/usr/share/qemu"]);
    }
    args
}

/// Starts a mirror job `j1` from a 1 GiB `null-co` node to another and waits until it is
/// ready, with the untyped client (what is tested is the typed decoding of the job list).
async fn start_mirror(qmp: &Qmp) {
    let raw = qmp.raw();
    for node in ["src", "dst"] {
        raw.execute(
            "blockdev-add",
            json!({"driver": "null-co", "node-name": node, "size": 1u64 << 30}),
        )
        .await
        .unwrap();
    }
    raw.execute(
        "blockdev-mirror",
        json!({"job-id": "j1", "device": "src", "target": "dst", "sync": "full"}),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn issue_13_mirror_job_decodes_on_7_2_and_10_0() {
    for (kind, machine) in [
        (Kind::System72, "q35"),
        (Kind::System10, "q35"),
        (Kind::StorageDaemon72, ""),
        (Kind::StorageDaemon, ""),
    ] {
        let Some(qemu) = Qemu::start_with(kind, &machine_args(kind, machine)) else {
            continue;
        };
        within(60, async {
            let qmp = Qmp::from(qemu.connect().await);
            start_mirror(&qmp).await;
            // Typed, until the job is ready (null-co copies 1 GiB at once).
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            let job = loop {
                let jobs = qmp
                    .query_block_jobs()
                    .await
                    .unwrap_or_else(|e| panic!("{kind:?}: query-block-jobs does not decode: {e}"));
                assert_eq!(jobs.len(), 1, "{kind:?}: {jobs:?}");
                let job = jobs.into_iter().next().unwrap();
                if job.ready || tokio::time::Instant::now() > deadline {
                    break job;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            assert_eq!(job.device, "j1", "{kind:?}");
            assert!(job.ready, "{kind:?}: {job:?}");
            assert_eq!(job.status, JobStatus::Ready, "{kind:?}");
            assert_eq!(job.len, 1 << 30, "{kind:?}");
            let BlockJobInfoVariant::Mirror(mirror) = &job.r#type else {
                panic!("{kind:?}: not a mirror job: {job:?}");
            };
            if kind.expected_version() == (7, 2) {
                // The reply the issue quotes: no `actively-synced` before 8.2.
                assert_eq!(mirror.actively_synced, None, "{kind:?}");
            } else {
                assert!(mirror.actively_synced.is_some(), "{kind:?}: {mirror:?}");
            }
            qmp.raw()
                .execute("block-job-cancel", json!({"device": "j1", "force": true}))
                .await
                .unwrap();
        })
        .await;
    }
}

/// Commands that stop, reset or quit the machine (or start a stopped one): not called.
const SKIPPED: &[&str] = &[
    "quit",
    "system_reset",
    "system_powerdown",
    "stop",
    "cont",
    "x-exit-preconfig",
];

/// What the calls on one server gave.
#[derive(Debug, Default)]
struct Counts {
    decoded: usize,
    not_found: usize,
    qemu_error: usize,
    decode_failures: Vec<String>,
}

/// Commands that crash QEMU 10.0.2 on `-machine none` (`rtc-reset-reinjection` asserts the
/// machine is an x86 one): not called there.
const CRASH_ON_NONE: &[&str] = &["rtc-reset-reinjection"];

async fn call_all(qmp: &Qmp, machine: &str) -> Counts {
    let mut counts = Counts::default();
    for (name, run) in NO_ARGUMENT_COMMANDS {
        if SKIPPED.contains(name) || (machine == "none" && CRASH_ON_NONE.contains(name)) {
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(20), run(qmp.clone())).await {
            Err(_) => panic!("{name}: no reply within 20 s"),
            Ok(Ok(())) => counts.decoded += 1,
            Ok(Err(e)) => match e.qmp_error() {
                Some(q) if q.is_command_not_found() => counts.not_found += 1,
                Some(_) => counts.qemu_error += 1,
                None if matches!(e, ExecuteError::Decode(_)) => {
                    counts.decode_failures.push(format!("{name}: {e}"))
                }
                None => panic!("{name}: {e}"),
            },
        }
    }
    counts
}

#[tokio::test]
async fn issue_13_every_no_argument_command_decodes_or_is_refused() {
    const { assert!(NO_ARGUMENT_COUNT > 90) };
    let names: Vec<&str> = NO_ARGUMENT_COMMANDS.iter().map(|(n, _)| *n).collect();
    for expected in [
        "query-status",
        "query-block-jobs",
        "query-cpus",
        "query-version",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    let mut failures = Vec::new();
    for kind in [
        Kind::System72,
        Kind::System10,
        Kind::StorageDaemon72,
        Kind::StorageDaemon,
    ] {
        let machines: &[&str] = match kind {
            Kind::System72 | Kind::System10 => &["none", "pc", "q35"],
            _ => &[""],
        };
        for machine in machines {
            let Some(qemu) = Qemu::start_with(kind, &machine_args(kind, machine)) else {
                continue;
            };
            let counts = within(300, async {
                let qmp = Qmp::from(qemu.connect().await);
                if !machine.is_empty() {
                    let t: String = qmp
                        .raw()
                        .execute_as("qom-get", json!({"path": "/machine", "property": "type"}))
                        .await
                        .unwrap();
                    assert!(t.contains(machine), "{kind:?} {machine}: runs {t}");
                }
                call_all(&qmp, machine).await
            })
            .await;
            eprintln!(
                "{kind:?} {machine}: {} decoded, {} not found (absent from this QEMU), {} QEMU \
                 errors, {} decode failures",
                counts.decoded,
                counts.not_found,
                counts.qemu_error,
                counts.decode_failures.len()
            );
            // Enough really decoded for the run to mean something (the storage daemon has
            // few commands).
            let least = if machine.is_empty() { 10 } else { 50 };
            assert!(counts.decoded > least, "{kind:?} {machine}: {counts:?}");
            failures.extend(
                counts
                    .decode_failures
                    .into_iter()
                    .map(|f| format!("{kind:?} {machine}: {f}")),
            );
        }
    }
    assert!(
        failures.is_empty(),
        "decode failures:\n{}",
        failures.join("\n")
    );
}
