//! Starting QEMU: [`Launcher`] and the [`QemuProcess`] handle.
//!
//! QEMU connects to us (accept mode): a [`Listener`] is bound in a private directory before the
//! process starts, so there is no socket to poll for and nothing to race. While waiting for the
//! connection we also wait for the process: one that exits first (bad arguments, missing
//! firmware, an image it cannot open) is reported at once with its exit status and the end of
//! what it wrote to stderr.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use qmp_core::{ClientBuilder, ConnectError, ListenError, Listener};
use tokio::process::{Child, Command};

use super::tail::Tail;
use crate::{ExecuteError, Qmp};

/// How long a process that closed the connection during the handshake may take to exit before
/// the connect error is reported instead of its exit.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// How long to wait for the rest of stderr once the process has exited (a child process
/// holding the pipe open must not delay the error for long).
const STDERR_GRACE: Duration = Duration::from_millis(500);

/// How QMP is wired into the command line: which options [`Launcher`] appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MonitorWiring {
    /// `-qmp unix:PATH,server=off` (`qemu-system-*`).
    Qmp,
    /// `--chardev socket,id=ID,path=PATH,server=off --monitor chardev=ID`
    /// (`qemu-storage-daemon`, which has no `-qmp`).
    StorageDaemon,
}

impl MonitorWiring {
    /// The wiring a program needs, from its file name: [`StorageDaemon`](Self::StorageDaemon)
    /// when the name contains `storage-daemon`, [`Qmp`](Self::Qmp) otherwise.
    ///
    /// ```
    /// use qmp_api::workflow::MonitorWiring;
    /// assert_eq!(MonitorWiring::for_program("/usr/bin/qemu-storage-daemon"), MonitorWiring::StorageDaemon);
    /// assert_eq!(MonitorWiring::for_program("qemu-system-aarch64"), MonitorWiring::Qmp);
    /// ```
    pub fn for_program(program: impl AsRef<Path>) -> MonitorWiring {
        let name = program.as_ref().file_name().unwrap_or_default();
        if name.to_string_lossy().contains("storage-daemon") {
            MonitorWiring::StorageDaemon
        } else {
            MonitorWiring::Qmp
        }
    }

    /// The arguments that make the process connect to a unix socket at `path`.
    fn args(self, path: &Path) -> Vec<String> {
        // QEMU's option syntax: a comma inside a value is written twice.
        let path = path.display().to_string().replace(',', ",,");
        match self {
            MonitorWiring::Qmp => vec!["-qmp".into(), format!("unix:{path},server=off")],
            MonitorWiring::StorageDaemon => vec![
                "--chardev".into(),
                format!("socket,id={CHARDEV_ID},path={path},server=off"),
                "--monitor".into(),
                format!("chardev={CHARDEV_ID}"),
            ],
        }
    }
}

/// The chardev id of the storage daemon's monitor wiring.
const CHARDEV_ID: &str = "qmp-rs-launcher";

/// Starts `qemu-system-*` or `qemu-storage-daemon` from your command line and connects to it.
///
/// Your arguments are passed through untouched; the launcher only appends the monitor wiring
/// (see [`MonitorWiring`]) pointing at a socket in a new private directory (mode 0700, under
/// the system temp directory), pipes stderr to keep its last 8 KiB, and sets
/// `kill_on_drop`. It then waits for whichever comes first:
///
/// - QEMU connects and the handshake completes: you get the typed client and a
///   [`QemuProcess`];
/// - the process exits: [`LaunchError::Exited`] with its exit status and stderr tail, as soon
///   as the exit is seen (no timeout involved);
/// - the connect timeout (default 30 s) runs out: the process is killed,
///   [`LaunchError::Timeout`].
///
/// Further monitors of your own (`-qmp`, `-mon`, `--monitor`) are fine: QEMU serves several.
/// Note that a server socket without `wait=off` makes QEMU wait for *its* client before going
/// on; the timeout error's stderr tail then shows QEMU's "waiting for connection" line.
/// Refused, because the handle could not follow the process: `-daemonize` / `--daemonize`
/// ([`LaunchError::Unsupported`]).
///
/// ```no_run
/// use std::process::Command;
/// use qmp_api::workflow::Launcher;
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut cmd = Command::new("qemu-system-x86_64");
/// cmd.args(["-machine", "q35", "-S", "-m", "256", "-nodefaults", "-display", "none"]);
/// let (qmp, mut qemu) = Launcher::new(cmd).launch().await?;
/// println!("QEMU {} is pid {}", qmp.greeting().version, qemu.pid());
/// let status = qemu.quit_and_wait().await?;
/// assert!(status.success());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Launcher {
    command: Command,
    wiring: Option<MonitorWiring>,
    connect_timeout: Duration,
    quit_timeout: Duration,
    builder: ClientBuilder,
    capture_stderr: bool,
    stderr_limit: usize,
    socket_parent: Option<PathBuf>,
}

impl Launcher {
    /// A launcher for this command line (a `std::process::Command` or a
    /// `tokio::process::Command`).
    pub fn new(command: impl Into<Command>) -> Launcher {
        Launcher {
            command: command.into(),
            wiring: None,
            connect_timeout: Duration::from_secs(30),
            quit_timeout: Duration::from_secs(30),
            builder: ClientBuilder::default(),
            capture_stderr: true,
            stderr_limit: 8 << 10,
            socket_parent: None,
        }
    }

    /// Which monitor options to append (default: from the program's name, see
    /// [`MonitorWiring::for_program`]). Set it when the binary is named differently.
    pub fn wiring(mut self, wiring: MonitorWiring) -> Self {
        self.wiring = Some(wiring);
        self
    }

    /// How long QEMU may take to start and connect, handshake included (default 30 s). A
    /// process that exits is reported at once, whatever this is.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long [`QemuProcess::quit_and_wait`] waits for the process to exit (default 30 s).
    pub fn quit_timeout(mut self, timeout: Duration) -> Self {
        self.quit_timeout = timeout;
        self
    }

    /// Client settings (command timeout, event buffer, capabilities...): a
    /// [`QmpBuilder`](crate::QmpBuilder) (`Qmp::builder()`) or the transport's
    /// [`ClientBuilder`]. Its connect timeout is replaced by
    /// [`connect_timeout`](Self::connect_timeout).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), qmp_api::workflow::LaunchError> {
    /// use std::time::Duration;
    /// use qmp_api::{Capability, Qmp};
    /// use qmp_api::workflow::Launcher;
    ///
    /// let client = Qmp::builder().capabilities([Capability::Oob]).command_timeout(Some(Duration::from_secs(30)));
    /// let (qmp, qemu) = Launcher::new(std::process::Command::new("qemu-storage-daemon")).client(client).launch().await?;
    /// # Ok(()) }
    /// ```
    pub fn client(mut self, builder: impl Into<ClientBuilder>) -> Self {
        self.builder = builder.into();
        self
    }

    /// Whether to capture stderr (default: yes, keeping its last 8 KiB). When off, stderr is
    /// left as you configured it on the command and errors carry no stderr tail.
    pub fn capture_stderr(mut self, capture: bool) -> Self {
        self.capture_stderr = capture;
        self
    }

    /// How many bytes of stderr to keep (default 8 KiB). Each line is also logged through
    /// `tracing` at debug level.
    pub fn stderr_tail_bytes(mut self, bytes: usize) -> Self {
        self.stderr_limit = bytes.max(256);
        self
    }

    /// Where to create the private socket directory (default: the system temp directory).
    /// Unix socket paths are limited to 107 bytes.
    pub fn socket_dir(mut self, parent: impl Into<PathBuf>) -> Self {
        self.socket_parent = Some(parent.into());
        self
    }

    /// [`launch`](Self::launch) for synchronous programs: starts the process and returns a
    /// [`blocking::Qmp`](crate::blocking::Qmp) once it is connected. The process's
    /// [`QemuProcess`] methods are async: end them with
    /// [`.wait()`](crate::blocking::Wait::wait) (`qemu.quit_and_wait().wait()?`); dropping it
    /// kills QEMU as usual.
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::process::Command;
    /// use qmp_api::blocking::Wait;
    /// use qmp_api::workflow::Launcher;
    ///
    /// let mut cmd = Command::new("qemu-system-x86_64");
    /// cmd.args(["-machine", "none", "-nodefaults", "-display", "none"]);
    /// let (qmp, mut qemu) = Launcher::new(cmd).launch_blocking()?;
    /// println!("{}", qmp.query_status().wait()?.status);
    /// qemu.quit_and_wait().wait()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`launch`](Self::launch); [`LaunchError::Blocking`] inside an async task.
    pub fn launch_blocking(self) -> Result<(crate::blocking::Qmp, QemuProcess), LaunchError> {
        use crate::blocking::Wait;
        let (qmp, qemu) = self.launch().wait()?;
        Ok((qmp.into(), qemu))
    }

    /// Starts the process and waits until it is connected (see the type's documentation).
    ///
    /// # Errors
    ///
    /// [`LaunchError`]: refused arguments, the socket directory or listener, starting the
    /// program, the process exiting first (with status and stderr tail), the handshake, or the
    /// connect timeout. In every case no process is left running.
    pub async fn launch(mut self) -> Result<(Qmp, QemuProcess), LaunchError> {
        let program = self.command.as_std().get_program().to_owned();
        let program_name = program.to_string_lossy().into_owned();
        for arg in self.command.as_std().get_args() {
            if arg == OsStr::new("-daemonize") || arg == OsStr::new("--daemonize") {
                return Err(LaunchError::Unsupported {
                    program: program_name,
                    argument: arg.to_string_lossy().into_owned(),
                    reason: "the process would fork away from the handle that follows it; run it in the foreground",
                });
            }
        }
        let wiring = self
            .wiring
            .unwrap_or_else(|| MonitorWiring::for_program(&program));

        let parent = self
            .socket_parent
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        let dir = PrivateDir::create(&parent).map_err(|error| LaunchError::SocketDir {
            parent: parent.display().to_string(),
            error,
        })?;
        let socket = dir.path.join("qmp.sock");
        let listener = Listener::bind_unix(&socket).map_err(LaunchError::Listen)?;

        self.command.args(wiring.args(&socket));
        self.command.kill_on_drop(true);
        if self.capture_stderr {
            self.command.stderr(Stdio::piped());
        }
        let started = Instant::now();
        let mut child = self.command.spawn().map_err(|error| LaunchError::Spawn {
            program: program_name.clone(),
            error,
        })?;
        let pid = child.id().unwrap_or(0);
        let stderr = match child.stderr.take() {
            Some(pipe) => Tail::collect(pipe, self.stderr_limit, pid),
            None => Tail::none(),
        };
        tracing::debug!(pid, program = %program_name, "started; waiting for it to connect");

        let deadline = tokio::time::Instant::from_std(started + self.connect_timeout);
        let accept = self.builder.timeout(None).accept(&listener);
        let outcome = tokio::select! {
            biased;
            status = child.wait() => Outcome::Exited(status),
            res = tokio::time::timeout_at(deadline, accept) => match res {
                Ok(Ok(client)) => Outcome::Connected(client),
                Ok(Err(error)) => Outcome::Failed(error),
                Err(_) => Outcome::TimedOut,
            },
        };
        // QEMU connects once; the socket and its directory are not needed any more.
        drop(listener);
        drop(dir);
        let early_exit = |status, stderr: Tail, program: String| async move {
            exited_early(program, status, stderr, started).await
        };
        match outcome {
            Outcome::Connected(client) => {
                let connected_after = started.elapsed();
                tracing::debug!(pid, after = ?connected_after, "connected");
                let qmp = Qmp::from(client);
                let process = QemuProcess {
                    child: Some(child),
                    pid,
                    program: program_name,
                    qmp: qmp.clone(),
                    stderr,
                    status: None,
                    quit_timeout: self.quit_timeout,
                    wiring,
                    connected_after,
                };
                Ok((qmp, process))
            }
            Outcome::Exited(status) => Err(early_exit(status, stderr, program_name).await),
            Outcome::Failed(error) => {
                // A process that dies during the handshake is best described by its exit.
                match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
                    Ok(status) => Err(early_exit(status, stderr, program_name).await),
                    Err(_) => {
                        kill_and_reap(&mut child).await;
                        Err(LaunchError::Connect {
                            program: program_name,
                            error,
                            stderr_tail: stderr.text(),
                        })
                    }
                }
            }
            Outcome::TimedOut => {
                kill_and_reap(&mut child).await;
                Err(LaunchError::Timeout {
                    program: program_name,
                    after: self.connect_timeout,
                    stderr_tail: stderr.text(),
                })
            }
        }
    }
}

enum Outcome {
    Connected(qmp_core::Client),
    Exited(io::Result<ExitStatus>),
    Failed(ConnectError),
    TimedOut,
}

async fn kill_and_reap(child: &mut Child) {
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// The error for a process that exited before it was connected.
async fn exited_early(
    program: String,
    status: io::Result<ExitStatus>,
    stderr: Tail,
    started: Instant,
) -> LaunchError {
    let after = started.elapsed();
    match status {
        Ok(status) => {
            stderr.wait_ended(STDERR_GRACE).await;
            LaunchError::Exited {
                program,
                status,
                after,
                stderr_tail: stderr.text(),
            }
        }
        Err(error) => LaunchError::Spawn { program, error },
    }
}

/// A QEMU process started by [`Launcher`].
///
/// - **Drop** kills the process (SIGKILL, by PID, only while it has not been reaped) and reaps
///   it: at once if it is already gone, otherwise in a task on the current tokio runtime
///   (outside a runtime, tokio's own orphan reaping takes over).
/// - [`quit_and_wait`](Self::quit_and_wait) ends it in order and reports its exit status.
/// - [`wait`](Self::wait) follows a process that exits by itself (a guest powering off).
///
/// ```no_run
/// # async fn demo(mut qemu: qmp_api::workflow::QemuProcess) -> Result<(), Box<dyn std::error::Error>> {
/// println!("pid {}, connected after {:?}", qemu.pid(), qemu.connected_after());
/// qemu.qmp().stop().await?;
/// let status = qemu.quit_and_wait().await?;
/// println!("exited: {status}; last words: {}", qemu.stderr_tail());
/// # Ok(()) }
/// ```
pub struct QemuProcess {
    /// `None` once reaped by `Drop` or handed to a reaper.
    child: Option<Child>,
    pid: u32,
    program: String,
    qmp: Qmp,
    stderr: Tail,
    status: Option<ExitStatus>,
    quit_timeout: Duration,
    wiring: MonitorWiring,
    connected_after: Duration,
}

impl QemuProcess {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The program that was started, as given.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The typed client of this process's monitor (the same connection [`Launcher::launch`]
    /// returned).
    pub fn qmp(&self) -> &Qmp {
        &self.qmp
    }

    /// How long it took from starting the process to a negotiated connection.
    pub fn connected_after(&self) -> Duration {
        self.connected_after
    }

    /// The end of what the process wrote to stderr so far (the last 8 KiB by default, from a
    /// line start); empty when stderr is not captured.
    pub fn stderr_tail(&self) -> String {
        self.stderr.text()
    }

    /// The exit status, if the process has exited (does not block).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        let status = child.try_wait()?;
        self.status = status;
        Ok(status)
    }

    /// Waits until the process exits by itself, and returns its status.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let child = self
            .child
            .as_mut()
            .ok_or_else(|| io::Error::other("the process handle was already released"))?;
        let status = child.wait().await?;
        self.status = Some(status);
        Ok(status)
    }

    /// Kills the process (SIGKILL) unless it has exited, waits for it, and returns its status.
    pub async fn kill(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        if let Some(child) = self.child.as_mut() {
            // Fails only when it has already exited; the wait below tells.
            let _ = child.start_kill();
        }
        self.wait().await
    }

    /// Ends QEMU in order: sends `quit`, waits for QEMU to close the connection (the client
    /// then reports [`DisconnectReason::ServerShutDown`](crate::DisconnectReason::ServerShutDown),
    /// the orderly end) and for the process to exit, and returns its exit status (`success()`
    /// for a normal quit). When it returns, the connection has ended and the process is reaped.
    ///
    /// A process that has already exited just reports its status.
    ///
    /// # Errors
    ///
    /// [`QuitError::Refused`] when QEMU answers `quit` with an error;
    /// [`QuitError::Timeout`] when it has not exited within the quit timeout
    /// ([`Launcher::quit_timeout`], default 30 s): it is then killed and reaped;
    /// [`QuitError::Wait`] when waiting for the process fails.
    pub async fn quit_and_wait(&mut self) -> Result<ExitStatus, QuitError> {
        if let Some(status) = self.try_wait().map_err(|e| self.wait_error(e))? {
            return Ok(status);
        }
        let deadline = tokio::time::Instant::now() + self.quit_timeout;
        match self.qmp.quit().await {
            Ok(()) => {}
            // QEMU may close the connection before (or instead of) answering.
            Err(ExecuteError::Disconnected { .. }) => {}
            Err(error) => return Err(QuitError::Refused(error)),
        }
        // QEMU closes the monitor as it exits (after SHUTDOWN, for qemu-system); a process
        // that hangs instead is killed at the deadline below.
        let _ = tokio::time::timeout_at(deadline, self.qmp.closed()).await;
        let exited = match self.child.as_mut() {
            Some(child) => tokio::time::timeout_at(deadline, child.wait()).await,
            None => return Err(self.wait_error(io::Error::other("no process handle"))),
        };
        match exited {
            Ok(Ok(status)) => {
                self.status = Some(status);
                Ok(status)
            }
            Ok(Err(error)) => Err(self.wait_error(error)),
            Err(_) => {
                let killed = self.kill().await.ok();
                Err(QuitError::Timeout {
                    program: self.program.clone(),
                    pid: self.pid,
                    after: self.quit_timeout,
                    status_after_kill: killed,
                })
            }
        }
    }

    /// How QMP was wired into the command line.
    pub fn wiring(&self) -> MonitorWiring {
        self.wiring
    }

    fn wait_error(&self, error: io::Error) -> QuitError {
        QuitError::Wait {
            program: self.program.clone(),
            pid: self.pid,
            error,
        }
    }
}

impl fmt::Debug for QemuProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QemuProcess")
            .field("program", &self.program)
            .field("pid", &self.pid)
            .field("status", &self.status)
            .finish()
    }
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if self.status.is_some() {
            return;
        }
        // start_kill signals by PID only while tokio has not reaped the child, so it can never
        // hit a recycled PID.
        let _ = child.start_kill();
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = child.wait().await;
            });
        }
        // Otherwise the child is dropped here: kill_on_drop and tokio's orphan queue reap it.
    }
}

/// Why [`Launcher::launch`] failed. No process is left running in any case.
///
/// ```no_run
/// # async fn demo() {
/// use qmp_api::workflow::{LaunchError, Launcher};
///
/// let mut cmd = std::process::Command::new("qemu-system-x86_64");
/// cmd.args(["-machine", "no-such-machine"]);
/// match Launcher::new(cmd).launch().await {
///     Err(LaunchError::Exited { status, stderr_tail, .. }) => {
///         // At once, with QEMU's own words: "unsupported machine type ..."
///         eprintln!("QEMU failed to start ({status}):\n{stderr_tail}");
///     }
///     Err(other) => eprintln!("{other}"),
///     Ok((_qmp, _qemu)) => println!("started"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// An argument the launcher cannot work with.
    #[error("{program}: {argument} is not supported by the launcher: {reason}")]
    Unsupported {
        /// The program.
        program: String,
        /// The refused argument.
        argument: String,
        /// Why.
        reason: &'static str,
    },
    /// Creating the private socket directory failed.
    #[error("cannot create a private directory for the QMP socket under {parent}: {error}; choose another with Launcher::socket_dir")]
    SocketDir {
        /// Where it was to be created.
        parent: String,
        /// The underlying error.
        error: io::Error,
    },
    /// Binding the socket QEMU connects to failed (a path longer than 107 bytes, for
    /// example).
    #[error("{0}")]
    Listen(ListenError),
    /// The program could not be started.
    #[error("cannot start {program}: {error}{}", spawn_hint(error))]
    Spawn {
        /// The program.
        program: String,
        /// The underlying error.
        error: io::Error,
    },
    /// The process exited before connecting (bad arguments, missing firmware or images...).
    #[error(
        "{program} exited before connecting to QMP ({status}, after {after:.2?}){}",
        TailText(stderr_tail)
    )]
    Exited {
        /// The program.
        program: String,
        /// Its exit status.
        status: ExitStatus,
        /// How long after starting it exited.
        after: Duration,
        /// The end of its stderr (QEMU's error message is there).
        stderr_tail: String,
    },
    /// The process connected, but the QMP handshake failed; it was killed.
    #[error(
        "{program} connected, but the QMP handshake failed: {error}{}",
        TailText(stderr_tail)
    )]
    Connect {
        /// The program.
        program: String,
        /// What failed.
        error: ConnectError,
        /// The end of its stderr.
        stderr_tail: String,
    },
    /// The process neither connected nor exited in time; it was killed.
    #[error("{program} did not connect to QMP within {after:?}; it was killed (raise Launcher::connect_timeout if it needs longer){}", TailText(stderr_tail))]
    Timeout {
        /// The program.
        program: String,
        /// The connect timeout.
        after: Duration,
        /// The end of its stderr.
        stderr_tail: String,
    },
    /// [`Launcher::launch_blocking`] inside an async task: nothing was started.
    #[error(transparent)]
    Blocking(#[from] crate::BlockingError),
}

impl LaunchError {
    /// The end of the process's stderr, for errors after it started.
    pub fn stderr_tail(&self) -> Option<&str> {
        match self {
            LaunchError::Exited { stderr_tail, .. }
            | LaunchError::Connect { stderr_tail, .. }
            | LaunchError::Timeout { stderr_tail, .. } => Some(stderr_tail),
            _ => None,
        }
    }
}

fn spawn_hint(error: &io::Error) -> &'static str {
    if error.kind() == io::ErrorKind::NotFound {
        "; is QEMU installed? Give the program's full path, or add its directory to PATH"
    } else {
        ""
    }
}

/// Formats a stderr tail after an error message.
struct TailText<'a>(&'a str);

impl fmt::Display for TailText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("; nothing on stderr");
        }
        f.write_str("; its stderr ends with:")?;
        for line in self.0.lines() {
            write!(f, "\n    {line}")?;
        }
        Ok(())
    }
}

/// Why [`QemuProcess::quit_and_wait`] failed.
///
/// ```no_run
/// # async fn demo(mut qemu: qmp_api::workflow::QemuProcess) {
/// use qmp_api::workflow::QuitError;
///
/// match qemu.quit_and_wait().await {
///     Ok(status) => println!("exited: {status}"),
///     Err(QuitError::Timeout { status_after_kill, .. }) => {
///         println!("hung on quit, killed: {status_after_kill:?}")
///     }
///     Err(other) => println!("{other}"),
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuitError {
    /// QEMU answered `quit` with an error.
    #[error("{0}")]
    Refused(ExecuteError),
    /// The process did not exit in time after `quit`; it was killed.
    #[error("{program} (pid {pid}) did not exit within {after:?} of quit; it was killed")]
    Timeout {
        /// The program.
        program: String,
        /// Its process id.
        pid: u32,
        /// The quit timeout.
        after: Duration,
        /// The status after the kill, if it could be read.
        status_after_kill: Option<ExitStatus>,
    },
    /// Waiting for the process failed.
    #[error("waiting for {program} (pid {pid}) failed: {error}")]
    Wait {
        /// The program.
        program: String,
        /// Its process id.
        pid: u32,
        /// The underlying error.
        error: io::Error,
    },
    /// A blocking wait (`quit_and_wait().wait()`, [`crate::blocking`]) inside an async task:
    /// nothing was sent.
    #[error(transparent)]
    Blocking(#[from] crate::BlockingError),
}

/// A new directory only this user can enter (mode 0700), removed with its contents on drop.
struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    fn create(parent: &Path) -> io::Result<PrivateDir> {
        use std::hash::{BuildHasher, Hasher};
        use std::os::unix::fs::DirBuilderExt;
        // mkdir is atomic and fails on an existing name, so a guessed name can only make us
        // try another, never share a directory.
        for attempt in 0u32..16 {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u32(attempt);
            hasher.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos(),
            );
            let name = format!("qmp-{}-{:012x}", std::process::id(), hasher.finish() >> 16);
            let path = parent.join(name);
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(PrivateDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no unused directory name found",
        ))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiring_args() {
        let qmp = MonitorWiring::Qmp.args(Path::new("/tmp/a,b/qmp.sock"));
        assert_eq!(qmp, ["-qmp", "unix:/tmp/a,,b/qmp.sock,server=off"]);
        let qsd = MonitorWiring::StorageDaemon.args(Path::new("/tmp/d/qmp.sock"));
        assert_eq!(
            qsd,
            [
                "--chardev",
                "socket,id=qmp-rs-launcher,path=/tmp/d/qmp.sock,server=off",
                "--monitor",
                "chardev=qmp-rs-launcher"
            ]
        );
    }

    #[test]
    fn private_dir_is_0700_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = PrivateDir::create(&std::env::temp_dir()).unwrap();
        let mode = std::fs::metadata(&dir.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let path = dir.path.clone();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn error_text_shows_the_stderr_tail() {
        let e = LaunchError::Timeout {
            program: "qemu".into(),
            after: Duration::from_secs(1),
            stderr_tail: "line one\nline two".into(),
        };
        let text = e.to_string();
        assert!(
            text.ends_with("its stderr ends with:\n    line one\n    line two"),
            "{text}"
        );
    }
}
