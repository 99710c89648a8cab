//! Starts a real qemu-ga on the host, on a private unix socket, and kills it (by PID) on drop.
//!
//! The agent runs on the test machine itself (in CI as root), so it always runs with every
//! command that changes the host blocked ([`HOST_CHANGING`]): shutdown, suspend, clock, CPUs,
//! memory, file system freeze and trim, passwords, SSH keys. `guest-exec` is blocked too
//! unless a test asks for it ([`Options::allow_exec`]) to run a harmless program of its own
//! choosing (`echo`, `cat` of a temp file). Tests touch only files in their temp directory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{skip_or_fail, TempDir};

/// Commands that change the host: always blocked.
pub const HOST_CHANGING: &[&str] = &[
    "guest-shutdown",
    "guest-set-time",
    "guest-suspend-disk",
    "guest-suspend-ram",
    "guest-suspend-hybrid",
    "guest-fsfreeze-freeze",
    "guest-fsfreeze-freeze-list",
    "guest-fsfreeze-thaw",
    "guest-fstrim",
    "guest-set-vcpus",
    "guest-set-memory-blocks",
    "guest-set-user-password",
    "guest-ssh-add-authorized-keys",
    "guest-ssh-remove-authorized-keys",
];

/// Where qemu-ga is expected: `$QMP_TEST_QGA`, else `$QGA_DIR/usr/sbin/qemu-ga` (default
/// `/opt/qemu-ga`, where `scripts/install-qemu-ga.sh` unpacks it).
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("QMP_TEST_QGA") {
        return PathBuf::from(bin);
    }
    std::env::var_os("QGA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/qemu-ga"))
        .join("usr/sbin/qemu-ga")
}

/// How to start the agent.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Allow `guest-exec` and `guest-exec-status`.
    pub allow_exec: bool,
    /// Further commands to block (e.g. `guest-file-open`).
    pub block: Vec<&'static str>,
}

/// A running qemu-ga. Killed with SIGKILL (by PID) and reaped on drop.
pub struct QemuGa {
    child: Child,
    /// The agent's socket.
    pub socket: PathBuf,
    /// Scratch directory: the socket, the agent's state, and the tests' files.
    pub dir: TempDir,
    options: Options,
}

impl QemuGa {
    /// Starts the agent with the default block list. `None` if qemu-ga is missing (outside
    /// CI; under `CI=true` that fails the test).
    pub fn start() -> Option<QemuGa> {
        Self::start_with(Options::default())
    }

    /// Starts the agent with `options`.
    pub fn start_with(options: Options) -> Option<QemuGa> {
        let bin = binary();
        if !bin.is_file() {
            skip_or_fail(&format!(
                "qemu-ga not found at {} (run scripts/install-qemu-ga.sh)",
                bin.display()
            ));
            return None;
        }
        let dir = TempDir::new();
        let socket = dir.join("qga.sock");
        let child = Self::spawn(&dir, &socket, &options);
        let agent = QemuGa {
            child,
            socket,
            dir,
            options,
        };
        agent.wait_for_socket();
        Some(agent)
    }

    fn spawn(dir: &TempDir, socket: &std::path::Path, options: &Options) -> Child {
        let mut blocked: Vec<&str> = HOST_CHANGING.to_vec();
        if !options.allow_exec {
            blocked.extend(["guest-exec", "guest-exec-status"]);
        }
        blocked.extend(options.block.iter().copied());
        let state = dir.join("state");
        let _ = std::fs::create_dir_all(&state);
        let conf = dir.join("qemu-ga.conf");
        let _ = std::fs::write(&conf, "");
        let _ = std::fs::remove_file(socket);
        Command::new(binary())
            .arg("-m")
            .arg("unix-listen")
            .arg("-p")
            .arg(socket)
            .arg("-t")
            .arg(&state)
            .arg("-f")
            .arg(dir.join("qemu-ga.pid"))
            .arg("-c")
            .arg(&conf)
            .arg("-b")
            .arg(blocked.join(","))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("QMP_TEST_VERBOSE").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()))
    }

    fn wait_for_socket(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.socket.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!(
            "qemu-ga did not create {} within 20 s",
            self.socket.display()
        );
    }

    /// The agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the agent and starts a new one on the same socket, with the same options.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn(&self.dir, &self.socket, &self.options);
        self.wait_for_socket();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for QemuGa {
    fn drop(&mut self) {
        self.kill();
    }
}
