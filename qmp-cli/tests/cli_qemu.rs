//! The `qmp` binary end to end against real QEMU 10.0.2 (`-machine none`) and
//! qemu-storage-daemon: one-shot commands, QMP errors, checks with suggestions, `--args`,
//! `$QMP_SOCKET`, `--tcp`, `--listen`, events, `--spawn`, `help`, `compat`, jobs.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use qmp_tests::qemu::{Kind, Qemu};
use qmp_tests::TempDir;
use serde_json::{json, Value};

const QMP: &str = env!("CARGO_BIN_EXE_qmp");

/// What a finished `qmp` run left.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        assert_eq!(
            self.stdout.lines().count(),
            1,
            "one JSON line expected, got {:?} (stderr {:?})",
            self.stdout,
            self.stderr
        );
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?} (stderr {:?})",
                self.stdout, self.stderr
            )
        })
    }
}

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(QMP);
    cmd.args(args)
        .env_remove("QMP_SOCKET")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Waits for `child` (killing it after 60 s) and collects its output.
fn finish(mut child: Child) -> Run {
    // Read both pipes on their own threads (a full pipe must not block the child); one
    // already taken by the test reads as empty.
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut s);
            }
            s
        })
    }
    let out_t = drain(child.stdout.take());
    let err_t = drain(child.stderr.take());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("qmp did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code(),
        stdout: out_t.join().expect("stdout thread"),
        stderr: err_t.join().expect("stderr thread"),
    }
}

fn qmp(args: &[&str]) -> Run {
    finish(command(args).spawn().expect("start qmp"))
}

fn qmp_on(socket: &Path, args: &[&str]) -> Run {
    let socket = socket.to_str().expect("utf-8 path");
    let mut all = vec!["-s", socket];
    all.extend_from_slice(args);
    qmp(&all)
}

fn ok(run: &Run) -> &Run {
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    run
}

#[test]
fn one_shot_prints_the_reply_as_one_json_line() {
    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    let run = qmp_on(&qemu.socket, &["query-status"]);
    assert_eq!(
        ok(&run).json(),
        json!({"running": true, "status": "running"})
    );
    assert_eq!(run.stderr, "");
    // `$QMP_SOCKET` is the default socket; `--json` changes nothing off a terminal.
    let run = finish(
        command(&["query-version", "--json"])
            .env("QMP_SOCKET", &qemu.socket)
            .spawn()
            .expect("start"),
    );
    assert_eq!(ok(&run).json()["qemu"]["major"], 10);
    // A command without return value prints {}.
    let run = qmp_on(&qemu.socket, &["stop"]);
    assert_eq!(ok(&run).json(), json!({}));
    assert_eq!(
        qmp_on(&qemu.socket, &["query-status"]).json()["status"],
        "paused"
    );
}

#[test]
fn a_qmp_error_exits_1_with_class_and_description_on_stderr() {
    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    let run = qmp_on(&qemu.socket, &["qom-get", "path=/machine", "property=nope"]);
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr.trim(),
        "error: GenericError: Property 'none-machine.nope' not found"
    );
    // Unchecked, an unknown command reaches QEMU, which answers CommandNotFound.
    let run = qmp_on(&qemu.socket, &["--no-check", "no-such-command"]);
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(
        run.stderr
            .contains("CommandNotFound: The command no-such-command has not been found"),
        "{}",
        run.stderr
    );
}

#[test]
fn arguments_are_checked_before_sending_with_suggestions() {
    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    // The issue's example: a misspelt required member.
    let run = qmp_on(
        &qemu.socket,
        &["blockdev-add", "drvier=null-co", "node-name=n0"],
    );
    assert_eq!(run.code, Some(2), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("'drvier' is given"), "{}", run.stderr);
    assert!(
        run.stderr.contains("did you mean `driver`?"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("checked against QEMU 10.0.2"),
        "{}",
        run.stderr
    );
    // Nothing was sent: no node n0.
    let nodes = qmp_on(&qemu.socket, &["query-named-block-nodes"]).json();
    assert_eq!(nodes, json!([]));
    // An unknown command, an unknown optional argument, a bad enum value, a wrong type.
    let cases: [(&[&str], &str); 4] = [
        (&["qeury-status"], "did you mean `query-status`?"),
        (
            &["blockdev-add", "driver=null-co", "node-name=n0", "sise=1"],
            "did you mean `size`?",
        ),
        (
            &["blockdev-add", "driver=nul-co", "node-name=n0"],
            "did you mean `null-co`?",
        ),
        (
            &["blockdev-add", "driver=null-co", "node-name=n0", "size=big"],
            "expected: integer",
        ),
    ];
    for (args, want) in cases {
        let run = qmp_on(&qemu.socket, args);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(want), "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "");
    }
    // Usage errors in the words themselves.
    let run = qmp_on(&qemu.socket, &["blockdev-add", "driver"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("'driver' is not key=value"),
        "{}",
        run.stderr
    );
    let run = qmp_on(&qemu.socket, &["query-status", "--args", "[1]"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("--args must be a JSON object"),
        "{}",
        run.stderr
    );
}

#[test]
fn dotted_keys_and_args_json_build_the_arguments_qemu_gets() {
    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    ok(&qmp_on(
        &qemu.socket,
        &[
            "blockdev-add",
            "driver=raw",
            "node-name=raw0",
            "file.driver=null-co",
            "file.node-name=null0",
            "file.size=1048576",
            "read-only=true",
        ],
    ));
    ok(&qmp_on(
        &qemu.socket,
        &[
            "--args",
            r#"{"driver": "null-co", "node-name": "null1"}"#,
            "blockdev-add",
            "size=2097152",
        ],
    ));
    // --args after the command works too.
    ok(&qmp_on(
        &qemu.socket,
        &[
            "blockdev-add",
            "--args",
            r#"{"driver": "null-co"}"#,
            "node-name=null2",
        ],
    ));
    let nodes = qmp_on(&qemu.socket, &["query-named-block-nodes"]).json();
    let find = |name: &str| -> Value {
        nodes
            .as_array()
            .expect("array")
            .iter()
            .find(|n| n["node-name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no node {name} in {nodes}"))
    };
    assert_eq!(find("raw0")["ro"], true);
    assert_eq!(find("raw0")["drv"], "raw");
    assert_eq!(find("null0")["image"]["virtual-size"], 1048576);
    assert_eq!(find("null1")["image"]["virtual-size"], 2097152);
    assert_eq!(find("null2")["drv"], "null-co");
}

#[test]
fn tcp_and_listen_reach_qemu() {
    // TCP: a free port, then QEMU listening on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let tcp = format!("tcp:127.0.0.1:{port},server=on,wait=off");
    let Some(bin) = Kind::System10.require() else {
        return;
    };
    let mut qemu = Command::new(bin)
        .args([
            "-machine",
            "none",
            "-nodefaults",
            "-display",
            "none",
            "-qmp",
            &tcp,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start QEMU");
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "QEMU did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = qmp(&["--tcp", &addr, "query-version"]);
    let _ = qemu.kill();
    let _ = qemu.wait();
    assert_eq!(ok(&run).json()["qemu"]["major"], 10);

    // --listen: qmp creates the socket and waits; QEMU connects to it.
    let dir = TempDir::new();
    let path = dir.join("listen.sock");
    let child = command(&["--listen", path.to_str().expect("utf-8"), "query-status"])
        .spawn()
        .expect("start qmp");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "qmp did not create {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The binary was found above: this cannot skip.
    let _qemu = Qemu::start_connecting(Kind::System10, &format!("unix:{}", path.display()), &path)
        .expect("QEMU 10.0.2");
    let run = finish(child);
    assert_eq!(ok(&run).json()["status"], "running");
    assert!(
        run.stderr.contains("waiting for QEMU to connect"),
        "{}",
        run.stderr
    );
}

#[test]
fn events_stream_as_json_lines_until_interrupted() {
    let dir = TempDir::new();
    let second = dir.join("events.sock");
    let arg = format!("unix:{},server=on,wait=off", second.display());
    let Some(qemu) = Qemu::start_with(Kind::System10, &["-qmp", &arg]) else {
        return;
    };
    // A misspelt event name is refused with the nearest name.
    let run = qmp_on(&second, &["events", "Stop"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("did you mean 'STOP'?"),
        "{}",
        run.stderr
    );

    let mut child = command(&[
        "-s",
        second.to_str().expect("utf-8"),
        "events",
        "STOP",
        "RESUME",
    ])
    .spawn()
    .expect("start qmp events");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The events client may not be subscribed yet: stop and resume until it sees a STOP.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let pair_seen = |seen: &[Value]| {
        seen.windows(2)
            .any(|w| w[0]["event"] == "STOP" && w[1]["event"] == "RESUME")
    };
    while !pair_seen(&seen) {
        assert!(Instant::now() < deadline, "no events seen: {seen:?}");
        ok(&qmp_on(&qemu.socket, &["stop"]));
        ok(&qmp_on(&qemu.socket, &["cont"]));
        // Not subscribed: a filtered-out event must not appear.
        ok(&qmp_on(
            &qemu.socket,
            &["blockdev-add", "driver=null-co", "node-name=n0"],
        ));
        ok(&qmp_on(&qemu.socket, &["blockdev-del", "node-name=n0"]));
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            seen.push(v);
        }
    }
    for e in &seen {
        assert!(
            e["event"] == "STOP" || e["event"] == "RESUME",
            "unexpected event {e}"
        );
        assert!(
            e["timestamp"]["seconds"].as_i64().unwrap_or(0) > 1_600_000_000,
            "{e}"
        );
    }
    // Interrupted (Ctrl-C): exit status 0.
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let run = finish(child);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
}

#[test]
fn spawn_starts_a_private_qemu_and_stops_it() {
    let Some(bin) = Kind::System10.require() else {
        return;
    };
    let bin = bin.to_str().expect("utf-8");
    let run = qmp(&["--spawn", "--qemu", bin, "query-status"]);
    assert_eq!(
        ok(&run).json(),
        json!({"running": true, "status": "running"})
    );
    // QEMU arguments after `--`.
    let run = qmp(&[
        "--spawn",
        "--qemu",
        bin,
        "query-status",
        "--",
        "-machine",
        "none",
        "-nodefaults",
        "-display",
        "none",
        "-S",
    ]);
    assert_eq!(ok(&run).json()["status"], "prelaunch");
    // The QEMU it started is gone when it exits (shell mode too, on end of input).
    let name = format!("qmp-cli-spawn-{}", std::process::id());
    let run = qmp(&[
        "--spawn",
        "--qemu",
        bin,
        "query-name",
        "--",
        "-machine",
        "none",
        "-display",
        "none",
        "-name",
        &name,
    ]);
    assert_eq!(ok(&run).json(), json!({"name": name}));
    // HMP with QEMU arguments: they go to QEMU, not onto the HMP line.
    let run = qmp(&[
        "--spawn", "--qemu", bin, "-H", "info", "status", "--", "-machine", "none", "-display",
        "none", "-S",
    ]);
    assert_eq!(ok(&run).stdout.trim_end(), "VM status: paused (prelaunch)");
    let run = qmp(&[
        "--spawn", "--qemu", bin, "--", "-machine", "none", "-display", "none", "-name", &name,
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let running: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&name))
        .collect();
    assert!(running.is_empty(), "still running: {running:?}");
    // A QEMU that refuses its arguments: its error, exit status 3.
    let run = qmp(&[
        "--spawn",
        "--qemu",
        bin,
        "query-status",
        "--",
        "-no-such-option",
    ]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.stderr.contains("no-such-option"), "{}", run.stderr);
    // The storage daemon (its own monitor wiring, no -machine).
    let Some(qsd) = Kind::StorageDaemon.require() else {
        return;
    };
    let run = qmp(&[
        "--spawn",
        "--qemu",
        qsd.to_str().expect("utf-8"),
        "query-block-jobs",
    ]);
    assert_eq!(ok(&run).json(), json!([]));
}

#[test]
fn help_and_compat() {
    let run = qmp(&["help", "blockdev-backup"]);
    ok(&run);
    assert!(run
        .stdout
        .contains("#command-QMP-block-core.blockdev-backup"));
    assert!(run.stdout.contains("discard-source"));
    let run = qmp(&["help", "blockdev-bakup"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("did you mean 'blockdev-backup'?"),
        "{}",
        run.stderr
    );
    let run = qmp(&["--agent", "help", "guest-ping"]);
    assert!(
        ok(&run).stdout.contains("qemu-ga-ref.html"),
        "{}",
        run.stdout
    );
    let run = qmp(&["help"]);
    assert!(ok(&run).stdout.lines().any(|l| l == "query-status"));

    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    // By default a summary: commands, events, top-level arguments; --verbose has the rest.
    let verbose = qmp_on(&qemu.socket, &["compat", "--verbose"]);
    ok(&verbose);
    assert!(verbose.stdout.contains("  value "), "{}", verbose.stdout);
    let run = qmp_on(&qemu.socket, &["compat"]);
    ok(&run);
    for line in run.stdout.lines().filter(|l| l.starts_with("  ")) {
        let entry = line.trim();
        let top = entry.starts_with("command ")
            || entry.starts_with("event ")
            || (entry.starts_with("argument ") && entry.matches('.').count() == 1);
        assert!(top, "not in a summary: {line}");
    }
    assert!(
        run.stdout.contains("qmp compat --verbose)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.lines().count() * 3 < verbose.stdout.lines().count());
    assert!(
        run.stdout.contains("only in the built-in schema"),
        "{}",
        run.stdout
    );
    // The merged schema has commands QEMU 10.0 no longer has.
    assert!(
        run.stdout.contains("command query-cpus\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn jobs_are_followed_to_their_end() {
    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    let image = qemu.dir.join("disk.qcow2");
    std::fs::write(&image, b"").expect("create image file");
    ok(&qmp_on(
        &qemu.socket,
        &[
            "blockdev-add",
            "driver=file",
            "node-name=file0",
            &format!("filename={}", image.display()),
        ],
    ));
    let run = qmp_on(
        &qemu.socket,
        &[
            "blockdev-create",
            "job-id=create0",
            "options.driver=qcow2",
            "options.file=file0",
            "options.size=67108864",
            "--wait",
        ],
    );
    let report = ok(&run).json();
    assert_eq!(report["id"], "create0");
    assert_eq!(report["status"], "concluded");
    assert_eq!(report["cancelled"], false);
    // The job was dismissed, and the image is a qcow2 of the asked size.
    assert_eq!(qmp_on(&qemu.socket, &["query-jobs"]).json(), json!([]));
    ok(&qmp_on(
        &qemu.socket,
        &[
            "blockdev-add",
            "driver=qcow2",
            "node-name=disk0",
            "file=file0",
        ],
    ));
    let nodes = qmp_on(&qemu.socket, &["query-named-block-nodes"]).json();
    let disk = nodes
        .as_array()
        .and_then(|n| n.iter().find(|n| n["node-name"] == "disk0"))
        .cloned()
        .expect("disk0");
    assert_eq!(disk["image"]["virtual-size"], 67108864);

    // A job that fails: its error, exit status 1.
    let run = qmp_on(
        &qemu.socket,
        &[
            "blockdev-create",
            "job-id=create1",
            "options.driver=qcow2",
            "options.file=file0",
            "options.size=67108864",
            "options.cluster-size=1000",
            "--wait",
        ],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("create1"), "{}", run.stderr);
    // --wait needs a job id.
    let run = qmp_on(&qemu.socket, &["query-status", "--wait"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("job-id"), "{}", run.stderr);
    // `job wait` on a running job: a mirror throttled to 32 MiB/s over 64 MiB, completed
    // when ready.
    for node in ["src", "dst"] {
        ok(&qmp_on(
            &qemu.socket,
            &[
                "blockdev-add",
                "driver=null-co",
                &format!("node-name={node}"),
                "size=67108864",
            ],
        ));
    }
    ok(&qmp_on(
        &qemu.socket,
        &[
            "blockdev-mirror",
            "job-id=m0",
            "device=src",
            "target=dst",
            "sync=full",
            "speed=33554432",
        ],
    ));
    let report = ok(&qmp_on(&qemu.socket, &["job", "wait", "m0"])).json();
    assert_eq!(report["id"], "m0");
    assert_eq!(report["cancelled"], false);
    assert_eq!(report["current-progress"], 67108864);
    assert_eq!(qmp_on(&qemu.socket, &["query-jobs"]).json(), json!([]));
    // `job wait` on a job that concluded before: its numbers, and it is dismissed.
    let image2 = qemu.dir.join("disk2.qcow2");
    std::fs::write(&image2, b"").expect("create image file");
    ok(&qmp_on(
        &qemu.socket,
        &[
            "blockdev-add",
            "driver=file",
            "node-name=file2",
            &format!("filename={}", image2.display()),
        ],
    ));
    ok(&qmp_on(
        &qemu.socket,
        &[
            "blockdev-create",
            "job-id=create2",
            "options.driver=qcow2",
            "options.file=file2",
            "options.size=1048576",
        ],
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while qmp_on(&qemu.socket, &["query-jobs"]).json()[0]["status"] != "concluded" {
        assert!(Instant::now() < deadline, "create2 did not conclude");
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = ok(&qmp_on(&qemu.socket, &["job", "wait", "create2"])).json();
    assert_eq!(report["id"], "create2");
    assert_eq!(report["status"], "concluded");
    assert_eq!(qmp_on(&qemu.socket, &["query-jobs"]).json(), json!([]));
    // Waiting for a job that does not exist.
    let run = qmp_on(&qemu.socket, &["job", "wait", "nojob"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("no job 'nojob'"), "{}", run.stderr);
}

#[test]
fn the_guest_agent_with_its_own_schema() {
    let Some(agent) = qmp_tests::qga::QemuGa::start() else {
        return;
    };
    let socket = agent.socket.to_str().expect("utf-8");
    let run = qmp(&["--agent", "-s", socket, "guest-ping"]);
    assert_eq!(ok(&run).json(), json!({}));
    let run = qmp(&["--agent", "-s", socket, "guest-info"]);
    assert!(ok(&run).json()["version"]
        .as_str()
        .is_some_and(|v| v.starts_with("10.0")));
    // Checked against the built-in agent schema.
    let run = qmp(&["--agent", "-s", socket, "guest-pign"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("did you mean `guest-ping`?"),
        "{}",
        run.stderr
    );
    // A blocked command: the agent's error, exit status 1.
    let run = qmp(&["--agent", "-s", socket, "guest-shutdown"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("error: "), "{}", run.stderr);
}

#[test]
fn an_older_qemu_is_judged_by_its_own_schema_with_version_notes() {
    let Some(qemu) = Qemu::start(Kind::System72) else {
        return;
    };
    // An argument QEMU 7.2 does not have: refused before sending, with when it came.
    let run = qmp_on(
        &qemu.socket,
        &[
            "blockdev-backup",
            "device=a",
            "target=b",
            "sync=full",
            "discard-source=true",
        ],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("checked against QEMU 7.2"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("'discard-source' was added in QEMU 9.1; the server runs QEMU 7.2"),
        "{}",
        run.stderr
    );
    // A removed command, suggesting its successor.
    let run = qmp_on(&qemu.socket, &["query-cpus"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("did you mean `query-cpus-fast`?"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("'query-cpus' was removed after QEMU 5.2"),
        "{}",
        run.stderr
    );
    // What 7.2 has passes and runs.
    let run = qmp_on(&qemu.socket, &["query-version"]);
    assert_eq!(ok(&run).json()["qemu"]["minor"], 2);
}

#[test]
fn migrations_are_followed_with_wait() {
    let Some(src) = Qemu::start(Kind::System10) else {
        return;
    };
    let Some(dst) = Qemu::start_with(Kind::System10, &["-incoming", "defer"]) else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let uri = format!("uri=tcp:127.0.0.1:{port}");
    let incoming = command(&[
        "-s",
        dst.socket.to_str().expect("utf-8"),
        "migrate-incoming",
        &uri,
        "--wait",
    ])
    .spawn()
    .expect("start qmp");
    // The destination listens once migrate-incoming ran. A probe connection would be taken
    // for the migration stream: look for the listening socket in /proc/net/tcp instead.
    let listening = || {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        let local = format!("0100007F:{port:04X}");
        table.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1] == local && f[3] == "0A"
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !listening() {
        assert!(Instant::now() < deadline, "the destination never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = qmp_on(&src.socket, &["migrate", &uri, "--wait"]);
    let report = ok(&out).json();
    assert_eq!(report["status"], "completed", "{report}");
    assert!(report["transferred"].as_u64().unwrap_or(0) > 0, "{report}");
    let report = ok(&finish(incoming)).json();
    assert_eq!(report["status"], "completed", "{report}");
    assert_eq!(
        qmp_on(&src.socket, &["query-status"]).json()["status"],
        "postmigrate"
    );
    assert_eq!(
        qmp_on(&dst.socket, &["query-status"]).json()["status"],
        "running"
    );
    // Other arguments than uri are refused with --wait.
    let run = qmp_on(&src.socket, &["migrate", &uri, "detach=true", "--wait"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
}

/// Issue 16: what failed with qmp-shell. `-l LOGFILE` was taken for the server address; `-H`
/// against `-machine none` crashed. Every option value stays what it is, HMP works without
/// CPUs, and a path that is not a QMP socket is a clear error, never a crash.
#[test]
fn issue_16_log_files_hmp_without_cpus_and_bad_addresses() {
    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    let log = qemu.dir.join("qmp.log");
    let log_arg = log.to_str().expect("utf-8");
    // The log option before and after the socket; the log gets commands and replies.
    let run = qmp_on(&qemu.socket, &["-l", log_arg, "query-status"]);
    assert_eq!(ok(&run).json()["status"], "running");
    let run = qmp(&[
        "--log",
        log_arg,
        "-s",
        qemu.socket.to_str().expect("utf-8"),
        "qom-get",
        "path=/machine",
        "property=nope",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .expect("log file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(
        lines,
        [
            json!({"execute": "query-status"}),
            json!({"return": {"running": true, "status": "running"}}),
            json!({"execute": "qom-get", "arguments": {"path": "/machine", "property": "nope"}}),
            json!({"error": {"class": "GenericError", "desc": "Property 'none-machine.nope' not found"}}),
        ]
    );
    // A log file but no server: a usage error, nothing connects to the log.
    let run = qmp(&["-l", log_arg, "query-status"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("no server given"), "{}", run.stderr);
    // HMP against -machine none: QEMU's own text, as is.
    let run = qmp_on(&qemu.socket, &["-H", "info", "registers"]);
    assert_eq!(ok(&run).stdout.trim_end(), "No CPU available");
    let run = qmp_on(&qemu.socket, &["-H", "info", "status"]);
    assert_eq!(ok(&run).stdout.trim_end(), "VM status: running");
    let run = qmp_on(&qemu.socket, &["-H", "info", "cpus"]);
    assert_eq!(ok(&run).stdout, "");
    // Paths that are not a QMP socket: an error naming the path, exit status 3.
    let not_socket = qemu.dir.join("not-a-socket");
    std::fs::write(&not_socket, b"x").expect("write");
    for path in [
        not_socket.as_path(),
        qemu.dir.path(),
        Path::new("/nonexistent/qmp.sock"),
    ] {
        let run = qmp_on(path, &["query-status"]);
        assert_eq!(run.code, Some(3), "{}: {}", path.display(), run.stderr);
        assert!(
            run.stderr.contains(&path.display().to_string()),
            "{}: {}",
            path.display(),
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
}

/// Polls `query-jobs` on `socket` until job `id` is running.
fn wait_running(socket: &Path, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let jobs = ok(&qmp_on(socket, &["query-jobs"])).json();
        let running = jobs
            .as_array()
            .is_some_and(|j| j.iter().any(|j| j["id"] == id && j["status"] == "running"));
        if running {
            return;
        }
        assert!(Instant::now() < deadline, "{id} not running: {jobs}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn issue_16_a_job_cancelled_from_another_monitor_is_reported_cancelled() {
    // The storage daemon with two monitors: `qmp` follows the job on the first, the test
    // cancels it on the second.
    let second = TempDir::new();
    let sock2 = second.join("m1.sock");
    let chardev = format!("socket,path={},server=on,wait=off,id=m1", sock2.display());
    let Some(qsd) = Qemu::start_with(
        Kind::StorageDaemon,
        &["--chardev", &chardev, "--monitor", "chardev=m1"],
    ) else {
        return;
    };
    for node in ["src", "dst"] {
        ok(&qmp_on(
            &sock2,
            &[
                "blockdev-add",
                "driver=null-co",
                &format!("node-name={node}"),
                "size=1073741824",
            ],
        ));
    }
    let sock1 = qsd.socket.to_str().expect("utf-8").to_string();
    // A backup throttled to 8 MiB/s over 1 GiB runs for minutes unless cancelled: with
    // auto-dismiss (QEMU's default) and without.
    let cases: [(&str, &str, &[&str]); 3] = [
        ("b4", "blockdev-backup", &[]),
        ("b5", "blockdev-backup", &["auto-dismiss=false"]),
        ("m4", "blockdev-mirror", &[]),
    ];
    for (id, starter, extra) in cases {
        let job_id = format!("job-id={id}");
        let mut args = vec![
            "-s",
            &sock1,
            starter,
            &job_id,
            "device=src",
            "target=dst",
            "sync=full",
            "speed=8388608",
        ];
        args.extend_from_slice(extra);
        args.push("--wait");
        let child = command(&args).spawn().expect("start qmp");
        wait_running(&sock2, id);
        ok(&qmp_on(
            &sock2,
            &["block-job-cancel", &format!("device={id}")],
        ));
        let run = finish(child);
        assert_eq!(run.code, Some(1), "{id}: {} / {}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(&format!("job {id} was cancelled")),
            "{id}: {}",
            run.stderr
        );
        let report = run.json();
        assert_eq!(report["id"], id);
        assert_eq!(report["cancelled"], true, "{report}");
        assert_eq!(qmp_on(&sock2, &["query-jobs"]).json(), json!([]), "{id}");
    }
    // `job wait` on a job started elsewhere, cancelled from the other monitor.
    ok(&qmp_on(
        &sock2,
        &[
            "blockdev-backup",
            "job-id=b3",
            "device=src",
            "target=dst",
            "sync=full",
            "speed=8388608",
        ],
    ));
    let child = command(&["-s", &sock1, "job", "wait", "b3"])
        .spawn()
        .expect("start qmp");
    // No signal tells when `job wait` has attached; the job runs for minutes.
    std::thread::sleep(Duration::from_secs(2));
    ok(&qmp_on(&sock2, &["block-job-cancel", "device=b3"]));
    let run = finish(child);
    assert_eq!(run.code, Some(1), "{} / {}", run.stdout, run.stderr);
    assert_eq!(run.json()["cancelled"], true);
}

#[test]
fn issue_16_device_add_passes_device_properties_and_checks_its_listed_ones() {
    let Some(qemu) = Qemu::start_with(
        Kind::System10,
        &[
            "-machine",
            "q35",
            "-S",
            "-device",
            "pcie-root-port,id=rp0,chassis=1,bus=pcie.0",
        ],
    ) else {
        return;
    };
    let s = &qemu.socket;
    ok(&qmp_on(
        s,
        &[
            "blockdev-add",
            "driver=null-co",
            "node-name=raw0",
            "size=1048576",
        ],
    ));
    // Unlisted keys (`drive`, `serial`) are the device's properties: passed on.
    ok(&qmp_on(
        s,
        &[
            "device_add",
            "driver=virtio-blk-pci",
            "id=vblk0",
            "bus=rp0",
            "drive=raw0",
            "serial=abc",
        ],
    ));
    let serial = ok(&qmp_on(
        s,
        &[
            "qom-get",
            "path=/machine/peripheral/vblk0",
            "property=serial",
        ],
    ))
    .json();
    assert_eq!(serial, "abc");
    // The listed ones are still checked: a misspelt `driver` is missing, a list is no id.
    let run = qmp_on(s, &["device_add", "drvier=virtio-blk-pci", "id=v1"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("'driver' is missing"), "{}", run.stderr);
    let run = qmp_on(s, &["device_add", "driver=virtio-blk-pci", "id=[1]"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("'id'"), "{}", run.stderr);
}

#[test]
fn issue_16_numbers_and_booleans_typed_for_strings_are_sent_as_typed() {
    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    let s = &qemu.socket;
    // `size` is an integer: it stays a number.
    ok(&qmp_on(
        s,
        &[
            "blockdev-add",
            "driver=null-co",
            "node-name=n0",
            "size=1048576",
        ],
    ));
    // `name` is a string: the text typed, `1.50` not `1.5`.
    for name in ["123", "1.50", "true"] {
        ok(&qmp_on(
            s,
            &["block-dirty-bitmap-add", "node=n0", &format!("name={name}")],
        ));
    }
    let nodes = qmp_on(s, &["query-named-block-nodes"]).json();
    let mut names: Vec<String> = nodes[0]["dirty-bitmaps"]
        .as_array()
        .expect("dirty-bitmaps")
        .iter()
        .map(|b| b["name"].as_str().expect("name").to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["1.50", "123", "true"]);
    // A boolean member keeps its boolean (`read-only`, in blockdev-add's union base).
    let run = qmp_on(
        s,
        &[
            "blockdev-add",
            "driver=null-co",
            "node-name=n1",
            "size=1048576",
            "read-only=true",
        ],
    );
    ok(&run);
    // A string member given a number: the HMP line `true` reaches HMP.
    let out = ok(&qmp_on(s, &["human-monitor-command", "command-line=true"])).json();
    assert!(out.as_str().is_some_and(|t| t.contains("true")), "{out}");
}

#[test]
fn issue_16_the_log_file_is_written_with_wait_and_job_wait() {
    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    let s = &qemu.socket;
    for node in ["src", "dst"] {
        ok(&qmp_on(
            s,
            &[
                "blockdev-add",
                "driver=null-co",
                &format!("node-name={node}"),
                "size=4194304",
            ],
        ));
    }
    let log = qemu.dir.join("qmp.log");
    let log_arg = log.to_str().expect("utf-8");
    let read_log = || -> Vec<Value> {
        std::fs::read_to_string(&log)
            .expect("log file")
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect()
    };
    let has_event = |lines: &[Value], name: &str| lines.iter().any(|l| l["event"] == name);
    let mirror = [
        "blockdev-mirror",
        "job-id=m1",
        "device=src",
        "target=dst",
        "sync=full",
    ];
    let mut args = vec!["-l", log_arg];
    args.extend_from_slice(&mirror);
    args.push("--wait");
    ok(&qmp_on(s, &args));
    let lines = read_log();
    assert_eq!(
        lines[0],
        json!({"execute": "blockdev-mirror", "arguments": {"job-id": "m1", "device": "src",
            "target": "dst", "sync": "full"}})
    );
    // The reply, with the job's first events around it (QEMU sends them as they happen).
    assert!(lines.contains(&json!({"return": {}})), "{lines:?}");
    assert!(has_event(&lines, "BLOCK_JOB_READY"), "{lines:?}");
    assert!(has_event(&lines, "BLOCK_JOB_COMPLETED"), "{lines:?}");
    // `job wait`: what it asks QEMU, and the job's events.
    std::fs::remove_file(&log).expect("remove log");
    let mut args = mirror.to_vec();
    args[1] = "job-id=m2";
    args.push("speed=1048576");
    ok(&qmp_on(s, &args));
    ok(&qmp_on(s, &["-l", log_arg, "job", "wait", "m2"]));
    let lines = read_log();
    assert_eq!(lines[0], json!({"execute": "query-jobs"}), "{lines:?}");
    assert!(has_event(&lines, "BLOCK_JOB_COMPLETED"), "{lines:?}");
}

#[test]
fn issue_16_a_busy_monitor_is_named_as_such() {
    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    // Another client holds the monitor (QEMU has greeted it).
    let mut other = std::os::unix::net::UnixStream::connect(&qemu.socket).expect("connect");
    let mut greeting = [0u8; 16];
    other.read_exact(&mut greeting).expect("greeting");
    let started = Instant::now();
    let run = qmp_on(&qemu.socket, &["--timeout", "3", "query-status"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(started.elapsed() >= Duration::from_secs(3));
    let err = &run.stderr;
    assert!(
        err.contains("no greeting yet; the monitor may be busy"),
        "{err}"
    );
    assert!(
        err.contains("the monitor is busy with another client (QEMU serves one client per -qmp socket): add a second -qmp socket"),
        "{err}"
    );
    // Said once, in qmp's terms.
    assert_eq!(err.matches("one client").count(), 1, "{err}");
    assert!(!err.contains("ClientBuilder"), "{err}");
    drop(other);
}

#[test]
fn issue_16_notes_say_what_the_server_lacks_and_events_are_compared_with_events() {
    let Some(qsd) = Qemu::start(Kind::StorageDaemon) else {
        return;
    };
    // QEMU 10.0 has query-status; the storage daemon does not offer it: no typo suggestion,
    // no version note.
    let run = qmp_on(&qsd.socket, &["query-status"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let err = &run.stderr;
    assert!(
        err.contains("the server does not offer the command 'query-status'"),
        "{err}"
    );
    assert!(err.contains("QEMU 10.0.2 has 'query-status'"), "{err}");
    assert!(!err.contains("did you mean"), "{err}");
    assert!(!err.contains("2.12"), "{err}");
    // The same for an event (STOP), and a command's name is no event's note.
    let run = qmp_on(&qsd.socket, &["events", "STOP"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the server does not offer the event 'STOP'"),
        "{}",
        run.stderr
    );
    let run = qmp_on(&qsd.socket, &["events", "stop"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("unknown event 'stop'"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("note:"), "{}", run.stderr);
}
