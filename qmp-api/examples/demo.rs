//! The main demo: starts its own QEMU, drives it through the typed API, prints what it sees.
//!
//! 1. QEMU connects to a socket we listen on (accept mode: no start-up race).
//! 2. Typed queries: version, run state.
//! 3. A small job: `blockdev-create` formats a qcow2 image while the `JOB_STATUS_CHANGE`
//!    events are printed as typed `Event`s; then the job is dismissed.
//! 4. The new image is opened and the block nodes are listed.
//! 5. `stop` / `cont` with their events, then `quit`.
//!
//! Run it with `./scripts/demo` (installs QEMU when missing), or
//! `cargo run -p qmp-api --example demo`. `QEMU=/path/to/qemu-system-x86_64` picks the binary.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use qmp_api::types::{
    BlockdevCreateOptions, BlockdevCreateOptionsQcow2, BlockdevCreateOptionsVariant,
    BlockdevOptions, BlockdevOptionsFile, BlockdevOptionsQcow2, BlockdevOptionsVariant,
    BlockdevRef, JobStatus,
};
use qmp_api::{Event, Listener, Qmp};

type Error = Box<dyn std::error::Error>;

/// Kills QEMU when the demo ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let qemu = std::env::var("QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into());
    let dir = std::env::temp_dir().join(format!("qmp-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&qemu, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(qemu: &str, dir: &std::path::Path) -> Result<(), Error> {
    // The socket exists (mode 0600) before QEMU starts.
    let listener = Listener::bind_unix(dir.join("qmp.sock"))?;
    let child = Command::new(qemu)
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
        .map_err(|e| format!("cannot start {qemu}: {e} (run ./scripts/install-qemu.sh)"))?;
    let mut guard = Guard(child);
    println!("started {qemu} (pid {})", guard.0.id());

    let client = qmp_api::qmp_core::Client::builder()
        .timeout(Some(Duration::from_secs(10)))
        .command_timeout(Some(Duration::from_secs(30)))
        .accept(&listener)
        .await?;
    let qmp = Qmp::from(client);

    let version = qmp.query_version().await?;
    let v = &version.qemu;
    println!(
        "QEMU {}.{}.{} ({})",
        v.major,
        v.minor,
        v.micro,
        version.package.trim()
    );
    let status = qmp.query_status().await?;
    println!("run state: {} (running: {})", status.status, status.running);

    // A small job, with its typed events.
    let image = dir.join("disk.qcow2");
    std::fs::File::create(&image)?;
    let mut file = BlockdevOptions::new(BlockdevOptionsVariant::File(BlockdevOptionsFile::new(
        image.display().to_string(),
    )));
    file.node_name = Some("file0".into());
    qmp.blockdev_add(file).await?;

    let mut events = qmp.events();
    let format = BlockdevCreateOptions::new(BlockdevCreateOptionsVariant::Qcow2(
        BlockdevCreateOptionsQcow2::new(BlockdevRef::Reference("file0".into()), 256 << 20),
    ));
    qmp.blockdev_create("format0", format).await?;
    println!(
        "job format0: formatting {} as qcow2, 256 MiB",
        image.display()
    );
    loop {
        let received = events.next().await.ok_or("event stream ended")??;
        let t = received.timestamp;
        match &received.event {
            Event::JobStatusChange(change) => {
                println!(
                    "  [{}.{:06}] JOB_STATUS_CHANGE {} -> {}",
                    t.seconds, t.microseconds, change.id, change.status
                );
                if change.status == JobStatus::Concluded {
                    break;
                }
            }
            other => println!("  [{}.{:06}] {}", t.seconds, t.microseconds, other.name()),
        }
    }
    for job in qmp.query_jobs().await? {
        println!(
            "job {}: {} ({}/{}), error: {}",
            job.id,
            job.status,
            job.current_progress,
            job.total_progress,
            job.error.as_deref().unwrap_or("none")
        );
    }
    qmp.job_dismiss("format0").await?;
    println!("job format0 dismissed");

    let mut disk = BlockdevOptions::new(BlockdevOptionsVariant::Qcow2(BlockdevOptionsQcow2::new(
        BlockdevRef::Reference("file0".into()),
    )));
    disk.node_name = Some("disk0".into());
    qmp.blockdev_add(disk).await?;
    println!("block nodes:");
    for node in qmp.query_named_block_nodes().await? {
        println!(
            "  {:<6} {:<6} {:>10} bytes  {}",
            node.node_name.as_deref().unwrap_or("-"),
            node.drv,
            node.image.virtual_size,
            node.file
        );
    }

    // stop / cont, with the events they cause (the stream was created before the commands).
    let mut run_events = qmp.events_named(["STOP", "RESUME"]);
    qmp.stop().await?;
    qmp.cont().await?;
    for _ in 0..2 {
        let received = run_events.next().await.ok_or("event stream ended")??;
        println!("event: {}", received.event.name());
    }
    println!("run state: {}", qmp.query_status().await?.status);

    // quit: QEMU exits, and the client sees the connection end (an orderly shutdown).
    qmp.quit().await?;
    let reason = tokio::time::timeout(Duration::from_secs(5), qmp.raw().closed()).await?;
    println!("connection ended: {reason}");
    let status = tokio::task::spawn_blocking(move || guard.0.wait()).await??;
    println!("QEMU exited: {status}");
    Ok(())
}
