//! Trial program (b) of issue 11: a small backup tool on qemu-storage-daemon.
//!
//! Creates two qcow2 images with `blockdev-create` (each a job: the file, then the format),
//! adds them, copies the first to the second with `blockdev-backup`, and exports the copy
//! over NBD on a unix socket.
//!
//! `cargo run -p qmp-api --example block_tool [QMP_SOCKET]`: without a socket it starts its
//! own storage daemon (`$QSD`, default `qemu-storage-daemon`). The same program in Python
//! with qemu.qmp is `examples/python/block_tool.py`; the README compares their lengths.

use std::process::Command;

use qmp_api::types::{
    BlockExportOptions, BlockExportOptionsNbd, BlockdevCreateOptions, BlockdevCreateOptionsFile,
    BlockdevCreateOptionsQcow2, BlockdevOptions, BlockdevOptionsFile, BlockdevOptionsQcow2,
    MirrorSyncMode, UnixSocketAddress,
};
use qmp_api::workflow::{Job, Launcher};
use qmp_api::Qmp;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (qmp, qemu) = match std::env::args().nth(1) {
        Some(socket) => (Qmp::connect_unix(socket).await?, None),
        None => {
            let cmd = Command::new(std::env::var("QSD").unwrap_or("qemu-storage-daemon".into()));
            let (qmp, qemu) = Launcher::new(cmd).launch().await?;
            (qmp, Some(qemu))
        }
    };
    let tmp = std::env::temp_dir();
    let dir = format!("{}/block-tool-{}", tmp.display(), std::process::id());
    std::fs::create_dir_all(&dir)?;

    for name in ["src", "dst"] {
        let (path, file) = (format!("{dir}/{name}.qcow2"), format!("{name}-file"));
        let options = BlockdevCreateOptionsFile::new(&path, 0);
        let create = qmp.blockdev_create("create", BlockdevCreateOptions::file(options));
        Job::new(&qmp, "create").run(create).await?;
        let node = BlockdevOptions::file(BlockdevOptionsFile::new(&path));
        qmp.blockdev_add(node.node_name(&file)).await?;
        let options = BlockdevCreateOptionsQcow2::new(file.as_str(), 64 << 20);
        let create = qmp.blockdev_create("create", BlockdevCreateOptions::qcow2(options));
        Job::new(&qmp, "create").run(create).await?;
        let node = BlockdevOptions::qcow2(BlockdevOptionsQcow2::new(file.as_str()));
        qmp.blockdev_add(node.node_name(name)).await?;
        println!("created {name}");
    }

    let backup = qmp.blockdev_backup("src", MirrorSyncMode::Full, "dst");
    let done = Job::new(&qmp, "backup")
        .run(backup.job_id("backup"))
        .await?;
    println!(
        "backup: {} of {} bytes",
        done.progress.current, done.progress.total
    );

    let addr = UnixSocketAddress::new(format!("{dir}/nbd.sock"));
    qmp.nbd_server_start(addr).await?;
    let nbd = BlockExportOptionsNbd::default();
    let export = BlockExportOptions::with_id_and_node_name("exp0", "dst", nbd);
    qmp.block_export_add(export).await?;
    for export in qmp.query_block_exports().await? {
        println!("export {}: {}", export.id, export.node_name);
    }

    match qemu {
        Some(mut qemu) => println!("quit: {}", qemu.quit_and_wait().await?),
        None => qmp.quit().await?,
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
