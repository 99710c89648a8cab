//! What the bench needs around the clients: paths, a QEMU process, the Python virtualenv with
//! `qemu.qmp`, and the facts about the machine that go into the report.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::server::Replies;

/// The `qemu.qmp` release installed into the virtualenv.
pub const QEMU_QMP_VERSION: &str = "0.0.6";
/// The qapi-rs release the bench depends on (see Cargo.toml).
pub const QAPI_RS_VERSION: &str = "0.15.0";

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Where generated files go: `target/` of the workspace (or `$CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The QEMU binary: `$QMP_BENCH_QEMU` or `/usr/bin/qemu-system-x86_64`.
pub fn qemu_binary() -> PathBuf {
    std::env::var_os("QMP_BENCH_QEMU")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/qemu-system-x86_64"))
}

/// The QEMU 10.0.13 QAPI schema root of the shared corpus (`$QMP_SHARED_DIR` overrides the
/// `../shared` next to the workspace).
pub fn qapi_schema_root() -> PathBuf {
    let shared = std::env::var_os("QMP_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared"));
    shared.join("qapi/qemu-10.0.13/qapi/qapi-schema.json")
}

/// A QEMU process (`-machine none`) with a QMP server socket; killed by PID when dropped.
pub struct Qemu {
    child: Child,
    socket: PathBuf,
}

impl Qemu {
    /// Starts QEMU and waits until its socket exists.
    pub fn start(binary: &Path, socket: &Path) -> io::Result<Qemu> {
        let _ = std::fs::remove_file(socket);
        let child = Command::new(binary)
            .args([
                "-machine",
                "none",
                "-nodefaults",
                "-display",
                "none",
                "-qmp",
            ])
            .arg(format!("unix:{},server=on,wait=off", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let qemu = Qemu {
            child,
            socket: socket.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "QEMU did not create its QMP socket within 10 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(qemu)
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The QMP socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Captures QEMU's own `return` payloads for the in-process server to replay.
    pub fn capture_replies(&self) -> io::Result<Replies> {
        let stream = UnixStream::connect(&self.socket)?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        let mut line = String::new();
        reader.read_line(&mut line)?; // greeting
        let mut payload = |cmd: &str| -> io::Result<String> {
            writeln!(writer, "{{\"execute\":\"{cmd}\"}}")?;
            line.clear();
            reader.read_line(&mut line)?;
            #[derive(Deserialize)]
            struct Reply<'a> {
                #[serde(borrow, rename = "return")]
                ret: &'a RawValue,
            }
            let reply: Reply<'_> = serde_json::from_str(&line)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            Ok(reply.ret.get().to_string())
        };
        payload("qmp_capabilities")?;
        Ok(Replies {
            status: payload("query-status")?,
            schema: payload("query-qmp-schema")?,
        })
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// The virtualenv's Python with `qemu.qmp` installed, creating the virtualenv (with
/// `python3 -m venv`) and installing the package (with pip) when missing.
pub fn python_venv(dir: &Path) -> Result<PathBuf, String> {
    let python = dir.join("bin/python");
    let has_qmp = |py: &Path| {
        Command::new(py)
            .args(["-c", "import qemu.qmp"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.is_file() && has_qmp(&python) {
        return Ok(python);
    }
    eprintln!(
        "setup: creating {} with qemu.qmp {QEMU_QMP_VERSION}",
        dir.display()
    );
    let run = |cmd: &mut Command| -> Result<(), String> {
        let status = cmd.status().map_err(|e| format!("{cmd:?}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{cmd:?} failed ({status})"))
        }
    };
    if !python.is_file() {
        run(Command::new("python3").args(["-m", "venv"]).arg(dir))?;
    }
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("qemu.qmp=={QEMU_QMP_VERSION}"),
    ]))?;
    if has_qmp(&python) {
        Ok(python)
    } else {
        Err("qemu.qmp does not import after installing it".into())
    }
}

/// The Python driver script (part of this crate).
pub fn python_driver() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/driver.py")
}

/// Facts about the machine and the software measured.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model name.
    pub cpu: String,
    /// Logical CPUs available.
    pub cpus: usize,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// `rustc --version`.
    pub rustc: String,
    /// `qemu-system-x86_64 --version` (first line).
    pub qemu: String,
    /// The virtualenv's `python --version`.
    pub python: String,
    /// qemu.qmp version.
    pub qemu_qmp: String,
    /// qapi-rs version.
    pub qapi_rs: String,
}

fn first_line(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| "unknown".into())
}

impl Machine {
    /// Gathers the facts (`python` is the virtualenv interpreter, if any).
    pub fn probe(python: Option<&Path>) -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1))
            .unwrap_or("unknown")
            .trim()
            .to_string();
        let memory_gib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
        Machine {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            rustc: first_line(Command::new("rustc").arg("--version")),
            qemu: first_line(Command::new(qemu_binary()).arg("--version")),
            python: python.map_or_else(
                || "not used".into(),
                |p| first_line(Command::new(p).arg("--version")),
            ),
            qemu_qmp: QEMU_QMP_VERSION.into(),
            qapi_rs: QAPI_RS_VERSION.into(),
        }
    }
}
