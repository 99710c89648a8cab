//! Starts real QEMU processes on private sockets and kills them (by PID) when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qmp_core::{Client, DisconnectReason, ExecuteError};

use crate::{skip_or_fail, TempDir};

/// Which QEMU program to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `qemu-system-x86_64` 10.0.2 from bookworm-backports (`$QMP_TEST_QEMU` overrides).
    System10,
    /// `qemu-system-x86_64` 7.2 unpacked under `/opt/qemu-7.2` (`$QEMU_72_DIR` overrides).
    System72,
    /// `qemu-storage-daemon` 10.0.2 (`$QMP_TEST_QSD` overrides).
    StorageDaemon,
    /// `qemu-storage-daemon` 7.2 unpacked under `/opt/qemu-7.2` (`$QEMU_72_DIR` overrides).
    StorageDaemon72,
}

impl Kind {
    /// Where the binary is expected.
    pub fn binary(self) -> PathBuf {
        let env = |var: &str, default: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(default))
        };
        match self {
            Kind::System10 => env("QMP_TEST_QEMU", "/usr/bin/qemu-system-x86_64"),
            Kind::System72 => {
                env("QEMU_72_DIR", "/opt/qemu-7.2").join("usr/bin/qemu-system-x86_64")
            }
            Kind::StorageDaemon => env("QMP_TEST_QSD", "/usr/bin/qemu-storage-daemon"),
            Kind::StorageDaemon72 => {
                env("QEMU_72_DIR", "/opt/qemu-7.2").join("usr/bin/qemu-storage-daemon")
            }
        }
    }

    /// The binary, if present; otherwise skips (or fails in CI) with a message naming it.
    pub fn require(self) -> Option<PathBuf> {
        let bin = self.binary();
        if bin.is_file() {
            Some(bin)
        } else {
            skip_or_fail(&format!(
                "{self:?} QEMU not found at {} (run scripts/install-qemu.sh)",
                bin.display()
            ));
            None
        }
    }

    /// The major.minor version this binary is expected to report.
    pub fn expected_version(self) -> (u64, u64) {
        match self {
            Kind::System10 | Kind::StorageDaemon => (10, 0),
            Kind::System72 | Kind::StorageDaemon72 => (7, 2),
        }
    }
}

/// A running QEMU. Killed with SIGKILL (by PID) and reaped on drop.
pub struct Qemu {
    child: Child,
    /// The QMP socket path (server mode) or the listener path QEMU connects to.
    pub socket: PathBuf,
    /// Scratch directory for this instance (removed on drop).
    pub dir: TempDir,
    /// Which program runs.
    pub kind: Kind,
}

impl Qemu {
    /// Starts `kind` with a QMP server socket (`server=on,wait=off`) and waits until the socket
    /// accepts connections. `None` if the binary is missing (outside CI).
    pub fn start(kind: Kind) -> Option<Qemu> {
        Self::start_with(kind, &[])
    }

    /// Like [`start`](Self::start), with extra command-line arguments.
    pub fn start_with(kind: Kind, extra: &[&str]) -> Option<Qemu> {
        let bin = kind.require()?;
        let dir = TempDir::new();
        let socket = dir.join("qmp.sock");
        let mut cmd = Command::new(bin);
        match kind {
            Kind::System10 | Kind::System72 => {
                cmd.args([
                    "-machine",
                    "none",
                    "-nodefaults",
                    "-display",
                    "none",
                    "-qmp",
                ])
                .arg(format!("unix:{},server=on,wait=off", socket.display()));
            }
            Kind::StorageDaemon | Kind::StorageDaemon72 => {
                cmd.arg("--chardev")
                    .arg(format!(
                        "socket,path={},server=on,wait=off,id=m0",
                        socket.display()
                    ))
                    .args(["--monitor", "chardev=m0"]);
            }
        }
        cmd.args(extra);
        let qemu = Self::spawn(cmd, kind, socket, dir);
        qemu.wait_for_socket();
        Some(qemu)
    }

    /// Starts `kind` so that it connects to a listener at `qmp_arg` (accept mode), e.g. the
    /// value of `Listener::qemu_qmp_arg()`.
    pub fn start_connecting(kind: Kind, qmp_arg: &str, socket: &Path) -> Option<Qemu> {
        let bin = kind.require()?;
        let dir = TempDir::new();
        let mut cmd = Command::new(bin);
        match kind {
            Kind::System10 | Kind::System72 => {
                cmd.args([
                    "-machine",
                    "none",
                    "-nodefaults",
                    "-display",
                    "none",
                    "-qmp",
                    qmp_arg,
                ]);
            }
            Kind::StorageDaemon | Kind::StorageDaemon72 => {
                let path = socket.display();
                cmd.arg("--chardev")
                    .arg(format!("socket,path={path},server=off,id=m0"))
                    .args(["--monitor", "chardev=m0"]);
            }
        }
        Some(Self::spawn(cmd, kind, socket.to_path_buf(), dir))
    }

    /// Starts `kind` (`-machine none` for system emulators) with exactly these extra
    /// arguments and no QMP socket of ours; the caller configures and waits for its monitor.
    pub fn start_bare(kind: Kind, args: &[String]) -> Option<Qemu> {
        let bin = kind.require()?;
        let dir = TempDir::new();
        let mut cmd = Command::new(bin);
        if !matches!(kind, Kind::StorageDaemon | Kind::StorageDaemon72) {
            cmd.args(["-machine", "none", "-nodefaults", "-display", "none"]);
        }
        cmd.args(args);
        Some(Self::spawn(cmd, kind, PathBuf::new(), dir))
    }

    fn spawn(mut cmd: Command, kind: Kind, socket: PathBuf, dir: TempDir) -> Qemu {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start {:?} ({}): {e}", kind, kind.binary().display())
        });
        Qemu {
            child,
            socket,
            dir,
            kind,
        }
    }

    fn wait_for_socket(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                // That probe took the monitor's one client slot for a moment; QEMU frees it
                // when it sees the close, which the next connect waits for.
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "{:?} did not create its QMP socket {} within 20 s",
            self.kind,
            self.socket.display()
        );
    }

    /// Connects a client with default settings (retrying briefly while QEMU finishes with the
    /// readiness probe).
    pub async fn connect(&self) -> Client {
        self.connect_with(Client::builder()).await
    }

    /// Connects a client with the given builder.
    pub async fn connect_with(&self, builder: qmp_core::ClientBuilder) -> Client {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match builder
                .clone()
                .timeout(Some(Duration::from_secs(2)))
                .connect_unix(&self.socket)
                .await
            {
                Ok(c) => return c,
                Err(e) if Instant::now() < deadline => {
                    tracing_free_log(&format!("retrying connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!(
                    "cannot connect to {:?} at {}: {e}",
                    self.kind,
                    self.socket.display()
                ),
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal by PID (e.g. `STOP`, `CONT`, `KILL`) using the `kill` program.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid());
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Freezes QEMU, puts `n` commands in flight on `client`, SIGKILLs QEMU, and checks that
    /// every caller gets the disconnected error (the server closed, or the socket failed).
    /// Returns how long after the kill each caller got it.
    pub async fn kill_with_commands_in_flight(
        &mut self,
        client: &Client,
        n: usize,
    ) -> Vec<Duration> {
        // Frozen, QEMU reads nothing, so the commands stay in flight until the kill.
        self.signal("STOP");
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let c = client.clone();
                tokio::spawn(async move { (c.execute("query-status", ()).await, Instant::now()) })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        while client.stats().in_flight < n as u64 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(
            client.stats().in_flight,
            n as u64,
            "{:?}: commands not all in flight",
            self.kind
        );
        let killed = Instant::now();
        self.kill();
        let mut delays = Vec::with_capacity(n);
        for t in tasks {
            let (res, at) = t.await.expect("caller task");
            match res {
                Err(ExecuteError::Disconnected { reason, .. }) => assert!(
                    matches!(
                        *reason,
                        DisconnectReason::ServerClosed | DisconnectReason::Io(_)
                    ),
                    "{:?}: {reason}",
                    self.kind
                ),
                other => panic!("{:?}: expected a disconnect, got {other:?}", self.kind),
            }
            delays.push(at.saturating_duration_since(killed));
        }
        delays
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.kill();
    }
}

fn tracing_free_log(msg: &str) {
    if std::env::var_os("QMP_TEST_VERBOSE").is_some() {
        eprintln!("{msg}");
    }
}
