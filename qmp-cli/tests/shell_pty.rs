//! The interactive shell in a pseudo terminal (tmux) against real QEMU 10.0.2: completion of
//! commands, argument names and enum values, replies, an event printed while the prompt
//! waits, transactions, HMP passthrough, `help`, checks, and history kept across sessions.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qmp_tests::qemu::{Kind, Qemu};
use qmp_tests::{skip_or_fail, TempDir};

const QMP: &str = env!("CARGO_BIN_EXE_qmp");

/// A tmux server of our own (its socket in a private directory, removed with it) running one
/// session; killed on drop.
struct Tmux {
    socket: std::path::PathBuf,
    _dir: TempDir,
}

impl Tmux {
    /// Starts `command` in a 160x50 terminal. `None` (after a skip message, or a failure
    /// under CI) when tmux is missing.
    fn start(command: &str) -> Option<Tmux> {
        if Command::new("tmux")
            .arg("-V")
            .stdout(Stdio::null())
            .status()
            .map(|s| !s.success())
            .unwrap_or(true)
        {
            skip_or_fail("tmux not found (scripts/install-tmux.sh installs it)");
            return None;
        }
        let dir = TempDir::new();
        let t = Tmux {
            socket: dir.join("tmux.sock"),
            _dir: dir,
        };
        // The command runs with a clean environment for colours; the pane stays after exit
        // so that its last screen can be read.
        let status = t
            .tmux()
            .args(["new-session", "-d", "-s", "t", "-x", "160", "-y", "50"])
            .arg(format!(
                "env NO_COLOR=1 TERM=xterm {command}; echo '[exited]'; sleep 60"
            ))
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        Some(t)
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket).args(["-f", "/dev/null"]);
        c
    }

    /// Sends keys (tmux key names: `Tab`, `Enter`, `C-d`, `Up`; other words as text).
    fn keys(&self, keys: &[&str]) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", "t"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    /// Sends text literally.
    fn text(&self, text: &str) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", "t", "-l", text])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    /// The screen with its scrollback, as text.
    fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-J", "-t", "t", "-S", "-1000"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The last non-empty line on the screen.
    fn last_line(&self) -> String {
        self.screen()
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .to_string()
    }

    /// Waits (up to 20 s) until the screen satisfies `pred`; returns the screen.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("waited 20 s for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the screen contains `text`.
    fn wait_text(&self, text: &str) -> String {
        self.wait_for(&format!("{text:?}"), |s| s.contains(text))
    }

    /// Waits until the last line is exactly `line` (trailing spaces ignored).
    fn wait_last_line(&self, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let last = self.last_line();
            if last.trim_end() == line {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "waited 20 s for the last line {line:?}, it is {last:?}; the screen:\n{}",
                    self.screen()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .tmux()
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}

fn shell_command(socket: &Path, history: &Path) -> String {
    format!(
        "{QMP} -s {} --history {}",
        socket.display(),
        history.display()
    )
}

fn one_shot(socket: &Path, args: &[&str]) {
    let out = Command::new(QMP)
        .arg("-s")
        .arg(socket)
        .args(args)
        .output()
        .expect("run qmp");
    assert!(
        out.status.success(),
        "qmp {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_shell_completes_runs_prints_events_and_keeps_history() {
    let dir = TempDir::new();
    let second = dir.join("second.sock");
    let arg = format!("unix:{},server=on,wait=off", second.display());
    let Some(qemu) = Qemu::start_with(Kind::System10, &["-qmp", &arg]) else {
        return;
    };
    let history = dir.join("history");
    let Some(t) = Tmux::start(&shell_command(&qemu.socket, &history)) else {
        return;
    };
    t.wait_text("Connected to QEMU 10.0.2");
    t.wait_last_line("(QEMU)");

    // Commands: a common prefix completes, a second Tab lists the candidates.
    t.keys(&["query-sta", "Tab"]);
    t.wait_last_line("(QEMU) query-stat");
    t.keys(&["Tab"]);
    t.wait_text("query-stats-schemas");
    t.keys(&["us", "Enter"]);
    t.wait_text("\"status\": \"running\"");
    t.wait_last_line("(QEMU)");

    // Argument names, then enum values after '='.
    t.keys(&["qom-list pa", "Tab"]);
    t.wait_last_line("(QEMU) qom-list path=");
    t.keys(&["/machine", "Enter"]);
    t.wait_text("\"name\": \"type\"");
    t.wait_last_line("(QEMU)");
    t.keys(&["block-job-set-speed dev", "Tab"]);
    t.wait_last_line("(QEMU) block-job-set-speed device=");
    t.keys(&["C-u"]);
    t.keys(&["blockdev-backup sync=f", "Tab"]);
    t.wait_last_line("(QEMU) blockdev-backup sync=full");
    t.keys(&["C-u"]);
    t.wait_last_line("(QEMU)");

    // An event while the prompt waits with half a command typed: it is printed at once,
    // above the prompt, and the typed text stays.
    t.keys(&["query-vers"]);
    t.wait_last_line("(QEMU) query-vers");
    one_shot(&second, &["stop"]);
    let screen = t.wait_text("\"event\":\"STOP\"");
    assert!(screen.contains("\"timestamp\":{"), "{screen}");
    t.wait_last_line("(QEMU) query-vers");
    t.keys(&["ion", "Enter"]);
    t.wait_text("\"major\": 10");
    t.wait_last_line("(QEMU)");

    // Checks before sending, with the suggestion.
    t.keys(&["blockdev-add drvier=null-co node-name=n0", "Enter"]);
    t.wait_text("did you mean `driver`?");
    t.wait_last_line("(QEMU)");

    // transaction( ... ): the actions go in one command; QEMU runs the abort action.
    t.keys(&["transaction(", "Enter"]);
    t.wait_last_line("(transaction)");
    // Action types complete from the schema.
    t.keys(&["abo", "Tab"]);
    t.wait_last_line("(transaction) abort");
    t.keys(&["Enter"]);
    t.wait_last_line("(transaction)");
    t.keys(&[")", "Enter"]);
    t.wait_text("Transaction aborted using Abort action");
    t.wait_last_line("(QEMU)");

    // HMP passthrough, and help.
    t.keys(&["hmp info version", "Enter"]);
    t.wait_text("10.0.2");
    t.wait_last_line("(QEMU)");
    t.keys(&["help query-status", "Enter"]);
    t.wait_text("Returns: StatusInfo");
    t.wait_last_line("(QEMU)");
    // HMP mode.
    t.keys(&["hmp", "Enter"]);
    t.wait_last_line("(HMP)");
    t.text("info status");
    t.keys(&["Enter"]);
    t.wait_text("VM status: paused");
    t.keys(&["qmp", "Enter"]);
    t.wait_last_line("(QEMU)");

    // Ctrl-D ends the shell; the history is on disk.
    t.keys(&["C-d"]);
    t.wait_text("[exited]");
    let saved = std::fs::read_to_string(&history).expect("history file");
    assert!(saved.contains("query-status"), "{saved}");
    assert!(saved.contains("hmp info version"), "{saved}");
    drop(t);

    // A new session finds it: Up recalls the last line.
    let Some(t) = Tmux::start(&shell_command(&qemu.socket, &history)) else {
        return;
    };
    t.wait_last_line("(QEMU)");
    t.keys(&["Up"]);
    t.wait_last_line("(QEMU) qmp");
    t.keys(&["Up"]);
    t.wait_last_line("(QEMU) info status");
    t.keys(&["C-u", "exit", "Enter"]);
    t.wait_text("[exited]");
}

#[test]
fn colours_on_a_terminal_and_a_storage_daemon_spawned_by_the_shell() {
    let Some(qsd) = Kind::StorageDaemon.require() else {
        return;
    };
    let dir = TempDir::new();
    let history = dir.join("history");
    // Without NO_COLOR (the shell's own `env` sets it: unset it again).
    let Some(t) = Tmux::start(&format!(
        "env -u NO_COLOR {QMP} --spawn --qemu {} --history {}",
        qsd.display(),
        history.display()
    )) else {
        return;
    };
    t.wait_text("Connected to QEMU 10.0.2");
    t.wait_last_line("(QEMU)");
    // The storage daemon's own schema: it has no query-status, but block exports.
    t.keys(&["query-status", "Enter"]);
    t.wait_text("the server does not offer the command 'query-status'");
    t.keys(&["query-block-exp", "Tab"]);
    t.wait_last_line("(QEMU) query-block-exports");
    t.keys(&["Enter"]);
    t.wait_text("[]");
    t.keys(&["query-version", "Enter"]);
    t.wait_text("\"major\": 10");
    // The reply was coloured: escape sequences in the pane's attributes.
    let out = t
        .tmux()
        .args(["capture-pane", "-p", "-e", "-t", "t", "-S", "-1000"])
        .output()
        .expect("tmux capture-pane");
    let coloured = String::from_utf8_lossy(&out.stdout);
    assert!(coloured.contains("\u{1b}["), "no colour in:\n{coloured}");
    // `quit` is QMP's: the daemon stops, and the shell ends with it.
    t.keys(&["quit", "Enter"]);
    t.wait_text("[exited]");
}

#[test]
fn the_shell_against_a_guest_agent() {
    let Some(agent) = qmp_tests::qga::QemuGa::start() else {
        return;
    };
    let dir = TempDir::new();
    let Some(t) = Tmux::start(&format!(
        "{QMP} --agent -s {} --history {}",
        agent.socket.display(),
        dir.join("history").display()
    )) else {
        return;
    };
    t.wait_text("Connected to guest agent");
    t.wait_last_line("(QGA)");
    // Completion from the built-in agent schema.
    t.keys(&["guest-pi", "Tab"]);
    t.wait_last_line("(QGA) guest-ping");
    t.keys(&["Enter"]);
    t.wait_text("{}");
    t.wait_last_line("(QGA)");
    t.keys(&["guest-info", "Enter"]);
    t.wait_text("\"supported_commands\": [");
    t.wait_last_line("(QGA)");
    t.keys(&["guest-file-open pat", "Tab"]);
    t.wait_last_line("(QGA) guest-file-open path=");
    t.keys(&["C-u", "C-d"]);
    t.wait_text("[exited]");
}

#[test]
fn issue_16_lines_typed_ahead_or_pasted_all_run_in_order() {
    let dir = TempDir::new();
    let Some(qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    one_shot(
        &qemu.socket,
        &[
            "blockdev-add",
            "driver=null-co",
            "node-name=n0",
            "size=1048576",
        ],
    );
    let history = dir.join("history");
    let Some(t) = Tmux::start(&shell_command(&qemu.socket, &history)) else {
        return;
    };
    t.wait_last_line("(QEMU)");
    // Five lines written to the terminal at once, before the first has run.
    t.keys(&[
        "query-status",
        "Enter",
        "stop",
        "Enter",
        "query-status",
        "Enter",
        "cont",
        "Enter",
        "query-status",
        "Enter",
    ]);
    t.wait_for("three query-status replies", |s| {
        s.matches("\"status\": ").count() == 3
    });
    let screen = t.screen();
    let order: Vec<&str> = screen
        .lines()
        .filter_map(|l| l.trim().strip_prefix("\"status\": "))
        .collect();
    assert_eq!(
        order,
        ["\"running\"", "\"paused\"", "\"running\""],
        "{screen}"
    );
    // A multi-line transaction pasted in one go (bracketed paste), then Enter.
    let text = "transaction(\nblock-dirty-bitmap-add node=n0 name=b0\n\
                block-dirty-bitmap-add node=n0 name=b1\n)\nquery-named-block-nodes";
    let status = t
        .tmux()
        .args(["set-buffer", "--", text])
        .status()
        .expect("tmux set-buffer");
    assert!(status.success());
    let status = t
        .tmux()
        .args(["paste-buffer", "-p", "-t", "t"])
        .status()
        .expect("tmux paste-buffer");
    assert!(status.success());
    t.keys(&["Enter"]);
    let screen = t.wait_text("\"name\": \"b1\"");
    assert!(screen.contains("\"name\": \"b0\""), "{screen}");
}

#[test]
fn issue_16_the_shell_ends_after_quit_and_when_qemu_dies() {
    let dir = TempDir::new();
    let history = dir.join("history");
    // `quit` on a QEMU of our own: the shell ends with status 0 (and QEMU is reaped).
    let command = format!(
        "{QMP} --spawn --history {}; echo status=$?",
        history.display()
    );
    let Some(t) = Tmux::start(&command) else {
        return;
    };
    t.wait_last_line("(QEMU)");
    t.keys(&["quit", "Enter"]);
    t.wait_text("status=0");
    // QEMU killed while the prompt waits: the shell ends at once, status 3, saying why.
    let Some(mut qemu) = Qemu::start(Kind::System10) else {
        return;
    };
    let command = format!("{}; echo status=$?", shell_command(&qemu.socket, &history));
    let Some(t) = Tmux::start(&command) else {
        return;
    };
    t.wait_last_line("(QEMU)");
    qemu.kill();
    let screen = t.wait_text("status=3");
    assert!(
        screen.contains("the server closed the connection"),
        "{screen}"
    );
}

#[test]
fn issue_16_job_wait_shows_the_jobs_state_from_the_start() {
    let dir = TempDir::new();
    let second = dir.join("second.sock");
    let arg = format!("unix:{},server=on,wait=off", second.display());
    let Some(qemu) = Qemu::start_with(Kind::System10, &["-qmp", &arg]) else {
        return;
    };
    for node in ["src", "dst"] {
        one_shot(
            &second,
            &[
                "blockdev-add",
                "driver=null-co",
                &format!("node-name={node}"),
                "size=1073741824",
            ],
        );
    }
    // Throttled to 8 MiB/s over 1 GiB: running, without a state change, for minutes.
    one_shot(
        &second,
        &[
            "blockdev-mirror",
            "job-id=m0",
            "device=src",
            "target=dst",
            "sync=full",
            "speed=8388608",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    let command = format!("{QMP} -s {} job wait m0", qemu.socket.display());
    let Some(t) = Tmux::start(&command) else {
        return;
    };
    let screen = t.wait_text("m0 running");
    assert!(!screen.contains("undefined"), "{screen}");
    one_shot(&second, &["block-job-cancel", "device=m0"]);
    let screen = t.wait_text("[exited]");
    assert!(screen.contains("\"cancelled\": true"), "{screen}");
}
