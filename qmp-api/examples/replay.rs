//! Serves a recorded QMP session to the code under test, as if it were QEMU:
//! `cargo run -p qmp-api --example replay -- CAPTURE SOCKET` (`--help` for details).
//!
//! CAPTURE is our JSON-lines capture (written by `qmp_api::capture::Recorder`) or a libvirt
//! `.replies` file; each connection gets the capture's next session. Mismatches are printed
//! as they happen; at the end (Ctrl-C, or every session replayed to its end) a summary says
//! how far each session went and how many mismatches there were. Exit status: 0 when every
//! session was replayed to its end without a mismatch, 1 otherwise.

use std::time::Duration;

use qmp_api::capture::{Capture, Replay};

const HELP: &str = "\
usage: replay CAPTURE SOCKET

Serves the QMP sessions recorded in CAPTURE on the unix socket SOCKET, as QEMU would have:
each client connection gets the next recorded session; each command must be the one
recorded next (same name, same arguments) and gets the recorded reply and events. Anything
else gets an error naming the expected exchange, printed here as a mismatch.

CAPTURE: a qmp-capture/1 file (written by qmp_api::capture::Recorder) or libvirt's
.replies file. Stops on Ctrl-C, or once every session was replayed to its end and its
client has disconnected; then prints a summary per session. Exit status: 0 when every
session was replayed to its end without a mismatch, 1 otherwise, 2 on bad usage.";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{HELP}");
        return;
    }
    let [capture, socket] = args.as_slice() else {
        eprintln!("{HELP}");
        std::process::exit(2);
    };
    let loaded = match Capture::load(capture) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {capture}: {e}");
            std::process::exit(1);
        }
    };
    let sessions = loaded.sessions.len();
    let replay = match Replay::bind_unix(loaded, socket) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!("serving {sessions} session(s) from {capture} on {socket}; Ctrl-C to stop");
    let mut seen = 0;
    let interrupted = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break true,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let mismatches = replay.mismatches();
        for m in &mismatches[seen..] {
            eprintln!("mismatch: {}", m.message);
        }
        seen = mismatches.len();
        let progress = replay.progress();
        let all_done = progress.iter().all(|p| p.served && p.finished());
        if all_done && replay.server().sessions().is_empty() {
            break false;
        }
    };
    replay.shutdown().await;
    let _ = std::fs::remove_file(socket);

    println!(
        "\n{} ({} session(s)):",
        if interrupted {
            "interrupted"
        } else {
            "every session replayed"
        },
        sessions
    );
    let mismatches = replay.mismatches();
    let mut ok = true;
    for p in replay.progress() {
        let count = mismatches.iter().filter(|m| m.session == p.session).count();
        let state = if !p.served {
            "not served"
        } else if p.finished() {
            "replayed to its end"
        } else {
            "stopped early"
        };
        ok &= p.finished() && count == 0;
        println!(
            "  session {}: {state}, {}/{} exchanges, {count} mismatch(es)",
            p.session, p.replayed, p.total
        );
    }
    // Commands that came after every recorded session was used.
    let extra = mismatches.iter().filter(|m| m.session >= sessions).count();
    if extra > 0 {
        ok = false;
        println!("  {extra} command(s) on connections beyond the recorded sessions");
    }
    std::process::exit(if ok { 0 } else { 1 });
}
