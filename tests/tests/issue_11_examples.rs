//! Issue 11, acceptance: the two trial programs (`qmp-api/examples/vm_manager.rs` on
//! `qemu-system-x86_64 -machine q35 -S`, `block_tool.rs` on `qemu-storage-daemon`, both
//! 10.0.2) run against real QEMU and print what they did; their Python twins with qemu.qmp
//! (`qmp-api/examples/python`, run in the virtualenv of `scripts/install-python-qmp.sh`) print
//! the same; and the Rust programs stay within 1.25x the lines of the Python ones
//! (`scripts/count-lines`).
//!
//! The Rust programs are built with `cargo build -p qmp-api --examples` when their binaries
//! are missing or older than their sources (`scripts/test` builds them with `--all-targets`).

// Test code: unwrapping our own fixtures' results is fine.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use qmp_tests::qemu::Kind;
use qmp_tests::skip_or_fail;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// The example's binary, built first if it is missing or older than its source.
fn example(name: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _one_build_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let binary = target_dir().join("debug/examples").join(name);
    let source = root().join(format!("qmp-api/examples/{name}.rs"));
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    if modified(&binary).is_none() || modified(&binary) < modified(&source) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "qmp-api", "--example", name])
            .current_dir(root())
            .status()
            .unwrap();
        assert!(status.success(), "building example {name} failed");
    }
    binary
}

/// Runs a program to its end (at most 60 s: killed by PID after that) and returns its
/// output; fails the test with its stderr if it failed.
fn run(mut cmd: Command) -> String {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    assert!(
        status.success(),
        "{what} failed ({status}):\n{stdout}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
}

/// What vm_manager prints on `-machine q35 -S -nodefaults` with one root port (thread ids
/// vary: `N`).
const VM_MANAGER: &str = "\
status: prelaunch
cpu 0: thread N
pci 00.0: Host bridge
pci 01.0: PCI bridge
pci 1f.0: ISA bridge
pci 1f.2: SATA controller
pci 1f.3: SMBus
added disk0 on port0
tg0: iops-total 1000
resumed: running
stopped: paused
quit: exit status: 0
";

const BLOCK_TOOL: &str = "\
created src
created dst
backup: 67108864 of 67108864 bytes
export exp0: dst
quit: exit status: 0
";

fn normalize(out: &str) -> String {
    out.lines()
        .map(|l| match l.split_once(": thread ") {
            Some((cpu, _)) => format!("{cpu}: thread N\n"),
            None => format!("{l}\n"),
        })
        .collect()
}

/// The virtualenv's python with qemu.qmp, if there.
fn python() -> Option<PathBuf> {
    qmp_tests::python_qmp("the Python trial programs did not run")
}

#[test]
fn vm_manager_rust_and_python() {
    let Some(qemu) = Kind::System10.require() else {
        return;
    };
    let mut cmd = Command::new(example("vm_manager"));
    cmd.env("QEMU", &qemu);
    assert_eq!(normalize(&run(cmd)), VM_MANAGER);
    if let Some(python) = python() {
        let mut cmd = Command::new(python);
        cmd.arg(root().join("qmp-api/examples/python/vm_manager.py"))
            .env("QEMU", &qemu);
        assert_eq!(normalize(&run(cmd)), VM_MANAGER);
    }
}

#[test]
fn block_tool_rust_and_python() {
    let Some(qsd) = Kind::StorageDaemon.require() else {
        return;
    };
    let mut cmd = Command::new(example("block_tool"));
    cmd.env("QSD", &qsd);
    assert_eq!(run(cmd), BLOCK_TOOL);
    if let Some(python) = python() {
        let mut cmd = Command::new(python);
        cmd.arg(root().join("qmp-api/examples/python/block_tool.py"))
            .env("QSD", &qsd);
        assert_eq!(run(cmd), BLOCK_TOOL);
    }
}

/// Against a QEMU the caller started: the programs take its QMP socket instead.
#[test]
fn vm_manager_on_a_given_socket() {
    let Some(qemu) = qmp_tests::qemu::Qemu::start_with(
        Kind::System10,
        &[
            "-machine",
            "q35",
            "-S",
            "-device",
            "pcie-root-port,id=port0,chassis=1",
        ],
    ) else {
        return;
    };
    let mut cmd = Command::new(example("vm_manager"));
    cmd.arg(&qemu.socket);
    let out = normalize(&run(cmd));
    // Without a process of its own it only sends `quit`.
    let expected = VM_MANAGER.replace("quit: exit status: 0\n", "");
    assert_eq!(out, expected);
}

/// The Rust programs stay within 1.25x the lines of their Python twins (rustfmt'd, black'd;
/// without comments and blank lines), as `scripts/count-lines` counts them.
#[test]
fn rust_within_1_25x_of_python() {
    // `--check`: the Python must be black'd, when black is installed (the Rust is checked by
    // `cargo fmt --check`).
    let out = Command::new("python3")
        .arg(root().join("scripts/count-lines"))
        .arg("--check")
        .output();
    let out = match out {
        Ok(out) => {
            assert!(
                out.status.success(),
                "scripts/count-lines --check failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }
        Err(e) => {
            skip_or_fail(&format!("scripts/count-lines did not run (python3: {e})"));
            return;
        }
    };
    println!("{out}");
    for row in out
        .lines()
        .filter(|l| l.starts_with("| ") && !l.contains("program"))
    {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (rust, python): (f64, f64) = (cells[2].parse().unwrap(), cells[3].parse().unwrap());
        assert!(rust > 20.0 && python > 20.0, "implausible counts: {row}");
        assert!(
            rust <= 1.25 * python,
            "{}: Rust {rust} lines > 1.25 x Python {python}",
            cells[1]
        );
    }
}
