//! Starts a throwaway QEMU (`-machine none`), drives it through qmp-core, and prints what it
//! sees: version, run state, a stop/cont cycle with its events.
//!
//! Run with `cargo run -p qmp-core --example core_demo` (QEMU must be installed; see the README).

use std::process::{Command, Stdio};
use std::time::Duration;

use qmp_core::{Client, Listener};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let qemu_bin = std::env::var("QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into());
    let dir = std::env::temp_dir().join(format!("qmp-core-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // Accept mode: the socket exists before QEMU starts, so there is nothing to poll for.
    let listener = Listener::bind_unix(dir.join("qmp.sock"))?;
    let mut qemu = Command::new(&qemu_bin)
        .args([
            "-machine",
            "none",
            "-nodefaults",
            "-display",
            "none",
            "-qmp",
        ])
        .arg(listener.qemu_qmp_arg())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {qemu_bin}: {e} (run scripts/install-qemu.sh)"))?;

    let result = drive(&listener).await;
    qemu.kill()?;
    qemu.wait()?;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn drive(listener: &Listener) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder()
        .timeout(Some(Duration::from_secs(10)))
        .accept(listener)
        .await?;
    let greeting = client.greeting();
    println!(
        "connected: QEMU {} ({})",
        greeting.version, greeting.package
    );

    let status = client.execute("query-status", ()).await?;
    println!("run state: {}", status["status"]);

    let mut events = client.subscribe_to(["STOP", "RESUME"]);
    client.execute("stop", ()).await?;
    client.execute("cont", ()).await?;
    for _ in 0..2 {
        let ev = events.next().await.ok_or("connection ended")??;
        println!(
            "event: {} at {}.{:06}",
            ev.name(),
            ev.timestamp().seconds,
            ev.timestamp().microseconds
        );
    }

    match client.execute("no-such-command", ()).await {
        Err(e) => println!("as expected: {e}"),
        Ok(v) => println!("unexpected success: {v}"),
    }
    client.close().await;
    Ok(())
}
