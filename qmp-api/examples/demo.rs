//! The main demo: starts its own QEMU, drives it through the typed API, prints what it sees.
//!
//! 1. QEMU connects to a socket we listen on (accept mode: no start-up race), with the `oob`
//!    capability.
//! 2. Typed queries: version and run state, as spawned calls running side by side.
//! 3. The image file is opened here and passed to QEMU (`add-fd` with `.fd()`); QEMU opens it
//!    as `/dev/fdset/1`, never by path.
//! 4. A small job: `blockdev-create` formats it as qcow2 while the `JOB_STATUS_CHANGE` events
//!    are printed as typed `Event`s; then the job is dismissed.
//! 5. The new image is opened and the block nodes are listed (a call with its own timeout);
//!    `query-yank` goes out of band (`.oob()`).
//! 6. `stop` / `cont` with their events, then `quit`.
//!
//! Run it with `./scripts/demo` (installs QEMU when missing), or
//! `cargo run -p qmp-api --example demo`. `QEMU=/path/to/qemu-system-x86_64` picks the binary.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use qmp_api::types::{
    BlockdevCreateOptionsQcow2, BlockdevOptions, BlockdevOptionsFile, BlockdevOptionsQcow2,
    JobStatus,
};
use qmp_api::{Capability, Event, EventKind, Listener, Qmp};

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

    let qmp = Qmp::builder()
        .capabilities([Capability::Oob])
        .timeout(Some(Duration::from_secs(10)))
        .command_timeout(Some(Duration::from_secs(30)))
        .accept(&listener)
        .await?;

    // Calls own a handle to the connection: these two run side by side in their own tasks.
    let version = tokio::spawn(qmp.query_version());
    let status = tokio::spawn(qmp.query_status());
    let (version, status) = (version.await??, status.await??);
    let v = &version.qemu;
    println!(
        "QEMU {}.{}.{} ({})",
        v.major,
        v.minor,
        v.micro,
        version.package.trim()
    );
    println!("run state: {} (running: {})", status.status, status.running);

    // The image is opened here and handed to QEMU as a descriptor in fd set 1.
    let image = dir.join("disk.qcow2");
    let handle = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&image)?;
    let added = qmp
        .add_fd()
        .fdset_id(1)
        .opaque("demo image")
        .fd(&handle)
        .await?;
    println!(
        "passed {} to QEMU: fd {} in fd set {}",
        image.display(),
        added.fd,
        added.fdset_id
    );
    let file = BlockdevOptions::file(BlockdevOptionsFile::new("/dev/fdset/1")).node_name("file0");
    qmp.blockdev_add(file).await?;

    // A small job, with its typed events.

    let mut events = qmp.events();
    // A node name is enough where a `BlockdevRef` is expected.
    let format = BlockdevCreateOptionsQcow2::new("file0", 256 << 20);
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

    let disk = BlockdevOptions::from(BlockdevOptionsQcow2::new("file0")).node_name("disk0");
    qmp.blockdev_add(disk).await?;
    println!("block nodes:");
    let nodes = qmp
        .query_named_block_nodes()
        .timeout(Some(Duration::from_secs(5)))
        .await?;
    for node in nodes {
        println!(
            "  {:<6} {:<6} {:>10} bytes  {}",
            node.node_name.as_deref().unwrap_or("-"),
            node.drv,
            node.image.virtual_size,
            node.file
        );
    }

    // Out of band: answered at once, even if an in-band command were stuck.
    let yankable = qmp.query_yank().oob().await?;
    println!("yank instances (asked out of band): {}", yankable.len());

    // stop / cont, with the events they cause (the stream was created before the commands).
    let mut run_events = qmp.subscribe([EventKind::Stop, EventKind::Resume]);
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
