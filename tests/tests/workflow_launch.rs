//! Issue 12, starting QEMU: `qmp_api::workflow::Launcher` and `QemuProcess` against real QEMU
//! 10.0.2, 7.2 and qemu-storage-daemon. Run with `--nocapture` to see the measured times.

use std::process::Command;
use std::time::{Duration, Instant};

use qmp_api::workflow::{LaunchError, Launcher, MonitorWiring};
use qmp_api::DisconnectReason;
use qmp_tests::qemu::Kind;
use qmp_tests::{within, TempDir};

fn base_command(kind: Kind) -> Option<Command> {
    let bin = kind.require()?;
    let mut cmd = Command::new(bin);
    if kind != Kind::StorageDaemon {
        cmd.args(["-machine", "none", "-nodefaults", "-display", "none"]);
    }
    Some(cmd)
}

/// True while a process with this pid exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => !matches!(
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().chars().next()),
            Some(Some('Z')) | Some(Some('X'))
        ),
        Err(_) => false,
    }
}

/// True once the pid no longer exists at all (killed and reaped).
fn gone(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

async fn launch_quit(kind: Kind) {
    let Some(cmd) = base_command(kind) else {
        return;
    };
    let (qmp, mut qemu) = within(30, Launcher::new(cmd).launch())
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    let v = &qmp.greeting().version;
    assert_eq!((v.major, v.minor), kind.expected_version(), "{kind:?}");
    let expected = match kind {
        Kind::StorageDaemon => MonitorWiring::StorageDaemon,
        _ => MonitorWiring::Qmp,
    };
    assert_eq!(qemu.wiring(), expected);
    eprintln!(
        "{kind:?}: spawn to negotiated client {:?}",
        qemu.connected_after()
    );
    let status = qmp.query_version().await.expect("query-version");
    assert_eq!(status.qemu.major as u64, v.major);
    assert!(alive(qemu.pid()));
    let pid = qemu.pid();
    let t = Instant::now();
    let exit = within(30, qemu.quit_and_wait())
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    eprintln!("{kind:?}: quit to reaped exit {:?}", t.elapsed());
    assert!(exit.success(), "{kind:?}: {exit}");
    // The connection has ended by then, as an orderly shutdown.
    let reason = qmp
        .raw()
        .disconnect_reason()
        .unwrap_or_else(|| panic!("{kind:?}: the connection is still open after quit_and_wait"));
    assert!(
        matches!(*reason, DisconnectReason::ServerShutDown),
        "{kind:?}: {reason}"
    );
    assert!(
        gone(pid),
        "{kind:?}: pid {pid} still exists after quit_and_wait"
    );
    // A second call reports the same status.
    assert!(qemu.quit_and_wait().await.expect("again").success());
}

#[tokio::test]
async fn launch_and_quit_qemu_10() {
    launch_quit(Kind::System10).await;
}

#[tokio::test]
async fn launch_and_quit_qemu_72() {
    launch_quit(Kind::System72).await;
}

#[tokio::test]
async fn launch_and_quit_storage_daemon() {
    launch_quit(Kind::StorageDaemon).await;
}

/// An invalid `-machine` name: the error comes as soon as QEMU exits, with its status and
/// its own message, long before the connect timeout.
async fn exits_at_startup(kind: Kind) {
    let Some(bin) = kind.require() else { return };
    let mut cmd = Command::new(bin);
    cmd.args([
        "-machine",
        "no-such-machine",
        "-nodefaults",
        "-display",
        "none",
    ]);
    let t = Instant::now();
    let err = within(
        20,
        Launcher::new(cmd)
            .connect_timeout(Duration::from_secs(15))
            .launch(),
    )
    .await
    .expect_err("QEMU must not start with an invalid machine");
    let took = t.elapsed();
    eprintln!("{kind:?}: early exit reported after {took:?}: {err}");
    match &err {
        LaunchError::Exited {
            status,
            stderr_tail,
            ..
        } => {
            assert_eq!(status.code(), Some(1), "{kind:?}: {err}");
            assert!(
                stderr_tail.contains("unsupported machine type"),
                "{kind:?}: {stderr_tail}"
            );
        }
        other => panic!("{kind:?}: expected Exited, got {other}"),
    }
    let text = err.to_string();
    assert!(text.contains("exited before connecting"), "{text}");
    assert!(text.contains("exit status: 1"), "{text}");
    assert!(text.contains("unsupported machine type"), "{text}");
    assert!(took < Duration::from_secs(5), "{kind:?}: took {took:?}");
}

#[tokio::test]
async fn invalid_machine_fails_at_once_qemu_10() {
    exits_at_startup(Kind::System10).await;
}

#[tokio::test]
async fn invalid_machine_fails_at_once_qemu_72() {
    exits_at_startup(Kind::System72).await;
}

/// Missing firmware: QEMU 10 connects its monitor before it loads the BIOS, so the exit comes
/// during the handshake; it is still reported as the exit, with QEMU's message.
#[tokio::test]
async fn missing_firmware_reports_the_exit() {
    let Some(bin) = Kind::System10.require() else {
        return;
    };
    let mut cmd = Command::new(bin);
    cmd.args([
        "-machine",
        "q35",
        "-S",
        "-m",
        "64",
        "-nodefaults",
        "-display",
        "none",
        "-bios",
        "/nonexistent/bios.bin",
    ]);
    let err = within(20, Launcher::new(cmd).launch())
        .await
        .expect_err("QEMU must not start without its firmware");
    eprintln!("missing firmware: {err}");
    match &err {
        LaunchError::Exited {
            status,
            stderr_tail,
            ..
        } => {
            assert!(!status.success());
            assert!(
                stderr_tail.contains("/nonexistent/bios.bin"),
                "{stderr_tail}"
            );
        }
        other => panic!("expected Exited, got {other}"),
    }
}

/// The storage daemon rejecting a `--blockdev` exits before connecting: our wiring comes after
/// the user's arguments.
#[tokio::test]
async fn storage_daemon_bad_blockdev_fails_at_once() {
    let Some(mut cmd) = base_command(Kind::StorageDaemon) else {
        return;
    };
    cmd.args(["--blockdev", "no-such-driver,node-name=x"]);
    let err = within(20, Launcher::new(cmd).launch())
        .await
        .expect_err("must fail");
    match &err {
        LaunchError::Exited { stderr_tail, .. } => {
            assert!(stderr_tail.contains("no-such-driver"), "{stderr_tail}")
        }
        other => panic!("expected Exited, got {other}"),
    }
}

#[tokio::test]
async fn missing_program_is_a_spawn_error() {
    let cmd = Command::new("/nonexistent/qemu-system-x86_64");
    let err = within(10, Launcher::new(cmd).launch())
        .await
        .expect_err("must fail");
    assert!(matches!(err, LaunchError::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("is QEMU installed?"), "{err}");
}

#[tokio::test]
async fn daemonize_is_refused() {
    let Some(mut cmd) = base_command(Kind::System10) else {
        return;
    };
    cmd.arg("-daemonize");
    let err = within(10, Launcher::new(cmd).launch())
        .await
        .expect_err("must be refused");
    assert!(
        matches!(&err, LaunchError::Unsupported { argument, .. } if argument == "-daemonize"),
        "{err}"
    );
}

/// A QEMU that never connects (its own monitor waits for a client first) times out, is
/// killed, and the error shows why from its stderr.
#[tokio::test]
async fn never_connecting_times_out_and_is_killed() {
    let Some(mut cmd) = base_command(Kind::System10) else {
        return;
    };
    let dir = TempDir::new();
    cmd.arg("-qmp").arg(format!(
        "unix:{},server=on",
        dir.join("other.sock").display()
    ));
    let err = within(
        20,
        Launcher::new(cmd)
            .connect_timeout(Duration::from_millis(1500))
            .launch(),
    )
    .await
    .expect_err("must time out");
    match &err {
        LaunchError::Timeout { stderr_tail, .. } => {
            assert!(
                stderr_tail.contains("waiting for connection"),
                "{stderr_tail}"
            )
        }
        other => panic!("expected Timeout, got {other}"),
    }
}

/// The user's own arguments pass through untouched, including a second QMP monitor of
/// theirs; and a QEMU started without -S runs.
#[tokio::test]
async fn user_arguments_and_a_second_monitor() {
    let Some(mut cmd) = base_command(Kind::System10) else {
        return;
    };
    let dir = TempDir::new();
    let other = dir.join("mine.sock");
    cmd.arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", other.display()))
        .args(["-name", "wf-test"]);
    let (qmp, mut qemu) = within(30, Launcher::new(cmd).launch())
        .await
        .expect("launch");
    assert_eq!(
        qmp.query_name().await.expect("query-name").name.as_deref(),
        Some("wf-test")
    );
    let mine = within(10, qmp_api::Qmp::connect_unix(&other))
        .await
        .expect("the user's own monitor works too");
    assert!(mine.query_status().await.expect("status").running);
    assert!(within(30, qemu.quit_and_wait())
        .await
        .expect("quit")
        .success());
}

/// Dropping the handle kills the process by PID and reaps it.
#[tokio::test]
async fn drop_kills_and_reaps() {
    let Some(cmd) = base_command(Kind::System10) else {
        return;
    };
    let (qmp, qemu) = within(30, Launcher::new(cmd).launch())
        .await
        .expect("launch");
    let pid = qemu.pid();
    assert!(alive(pid));
    drop(qemu);
    let reason = within(10, qmp.closed()).await;
    eprintln!("after drop, the client saw: {reason}");
    // Killed, not shut down: the connection just ended.
    assert!(
        matches!(
            *reason,
            DisconnectReason::ServerClosed | DisconnectReason::Io(_)
        ),
        "{reason}"
    );
    within(10, async {
        while !gone(pid) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// QEMU killed from outside: the handle's wait reports the signal, the client's calls fail.
#[tokio::test]
async fn killed_from_outside_is_reported() {
    let Some(cmd) = base_command(Kind::System72) else {
        return;
    };
    let (qmp, mut qemu) = within(30, Launcher::new(cmd).launch())
        .await
        .expect("launch");
    let kill = Command::new("kill")
        .args(["-KILL", &qemu.pid().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let status = within(10, qemu.wait()).await.expect("wait");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9));
    let err = within(10, qmp.query_status()).await.expect_err("gone");
    assert!(err.is_disconnected(), "{err}");
    // quit_and_wait on a dead process just reports how it ended.
    let again = within(10, qemu.quit_and_wait()).await.expect("status");
    assert_eq!(again.signal(), Some(9));
}
