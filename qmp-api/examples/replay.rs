//! Serves a capture file on a unix socket until interrupted:
//! `cargo run -p qmp-api --example replay -- CAPTURE SOCKET`.
//!
//! CAPTURE is our JSON-lines capture (written by `qmp_api::capture::Recorder`) or a libvirt
//! `.replies` file; each connection gets the capture's next session. Mismatches are printed
//! as they happen.

use qmp_api::capture::{Capture, Replay};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [capture, socket] = args.as_slice() else {
        eprintln!(
            "usage: replay CAPTURE SOCKET   (serves CAPTURE's sessions on the unix socket SOCKET)"
        );
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
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
        }
        let mismatches = replay.mismatches();
        for m in &mismatches[seen..] {
            eprintln!("mismatch: {}", m.message);
        }
        seen = mismatches.len();
    }
    replay.shutdown().await;
    let _ = std::fs::remove_file(socket);
}
