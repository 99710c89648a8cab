//! The main demo: starts its own QEMU, drives it through the typed API, prints what it sees.
//!
//! 1. `workflow::Launcher` starts QEMU connected in accept mode (no start-up race; an early
//!    exit would be reported at once with QEMU's stderr), with the `oob` capability.
//! 2. Typed queries: version and run state, as spawned calls running side by side.
//! 3. The image file is opened here and passed to QEMU (`add-fd` with `.fd()`); QEMU opens it
//!    as `/dev/fdset/1`, never by path.
//! 4. A small job: `workflow::Job` runs `blockdev-create` (qcow2) to its end while the job's
//!    states and progress are printed; it dismisses the job.
//! 5. The new image is opened and the block nodes are listed (a call with its own timeout);
//!    `query-yank` goes out of band (`.oob()`).
//! 6. `stop` / `cont` with their events, then `quit_and_wait` (QEMU's exit status).
//!
//! Run it with `./scripts/demo` (installs QEMU when missing), or
//! `cargo run -p qmp-api --example demo`. `QEMU=/path/to/qemu-system-x86_64` picks the binary.

use std::process::Command;
use std::time::Duration;

use qmp_api::types::{
    BlockdevCreateOptions, BlockdevCreateOptionsQcow2, BlockdevCreateOptionsVariant,
    BlockdevOptions, BlockdevOptionsFile, BlockdevOptionsQcow2, BlockdevOptionsVariant,
    BlockdevRef,
};
use qmp_api::workflow::{Job, Launcher};
use qmp_api::{Capability, EventKind};

type Error = Box<dyn std::error::Error>;

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
    let mut cmd = Command::new(qemu);
    cmd.args(["-machine", "none", "-nodefaults", "-display", "none"]);
    // QEMU connects to a private socket of ours; dropping `process` would kill it.
    let client = qmp_api::qmp_core::Client::builder()
        .capabilities([Capability::Oob])
        .command_timeout(Some(Duration::from_secs(30)));
    let (qmp, mut process) = Launcher::new(cmd)
        .client(client)
        .connect_timeout(Duration::from_secs(10))
        .launch()
        .await
        .map_err(|e| format!("{e} (run ./scripts/install-qemu.sh if QEMU is missing)"))?;
    println!(
        "started {qemu} (pid {}), connected after {:.1?}",
        process.pid(),
        process.connected_after()
    );

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
    let mut file = BlockdevOptions::new(BlockdevOptionsVariant::File(BlockdevOptionsFile::new(
        "/dev/fdset/1",
    )));
    file.node_name = Some("file0".into());
    qmp.blockdev_add(file).await?;

    // A small job, run to its end by the job runner while its progress is printed.
    let format = BlockdevCreateOptions::new(BlockdevCreateOptionsVariant::Qcow2(
        BlockdevCreateOptionsQcow2::new(BlockdevRef::Reference("file0".into()), 256 << 20),
    ));
    println!(
        "job format0: formatting {} as qcow2, 256 MiB",
        image.display()
    );
    let job = Job::new(&qmp, "format0").progress_interval(Duration::from_millis(5));
    let mut progress = job.progress();
    let printer = tokio::spawn(async move {
        let mut last = None;
        while progress.changed().await.is_ok() {
            let p = progress.borrow_and_update().clone();
            if last.as_ref() != Some(&p.status) {
                println!("  job format0: {} ({}/{})", p.status, p.current, p.total);
                last = Some(p.status);
            }
        }
    });
    let report = job.run(qmp.blockdev_create("format0", format)).await?;
    let _ = printer.await;
    println!(
        "job format0 completed and dismissed in {:.1?}",
        report.elapsed
    );

    let mut disk = BlockdevOptions::new(BlockdevOptionsVariant::Qcow2(BlockdevOptionsQcow2::new(
        BlockdevRef::Reference("file0".into()),
    )));
    disk.node_name = Some("disk0".into());
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

    // quit: QEMU shuts down in order (SHUTDOWN), the connection ends, the process exits.
    let status = process.quit_and_wait().await?;
    let reason = tokio::time::timeout(Duration::from_secs(5), qmp.raw().closed()).await?;
    println!("connection ended: {reason}");
    println!("QEMU exited: {status}");
    Ok(())
}
