//! Trial program (a) of issue 11: a small VM manager on `-machine q35 -S`.
//!
//! Queries status, CPUs, block devices and PCI devices; hot-adds a null-co block node and a
//! virtio-blk-pci disk on a PCIe root port; sets and reads a throttle group's limits
//! (`qom-set` / `qom-get`); resumes and stops the VM, awaiting the events; quits.
//!
//! `cargo run -p qmp-api --example vm_manager [QMP_SOCKET]`: without a socket it starts its
//! own QEMU (`$QEMU`, default `qemu-system-x86_64`). The same program in Python with
//! qemu.qmp is `examples/python/vm_manager.py`; the README compares their lengths.

use std::process::Command;
use std::time::Duration;

use qmp_api::json;
use qmp_api::types::{
    BlockdevOptions, BlockdevOptionsNull, ObjectOptions, ThrottleGroupProperties, ThrottleLimits,
};
use qmp_api::workflow::Launcher;
use qmp_api::{EventKind, Qmp};

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (qmp, qemu) = match std::env::args().nth(1) {
        Some(socket) => (Qmp::connect_unix(socket).await?, None),
        None => {
            let mut cmd =
                Command::new(std::env::var("QEMU").unwrap_or("qemu-system-x86_64".into()));
            cmd.args(["-machine", "q35", "-S", "-nodefaults", "-display", "none"]);
            cmd.args(["-device", "pcie-root-port,id=port0,chassis=1"]);
            let (qmp, qemu) = Launcher::new(cmd).launch().await?;
            (qmp, Some(qemu))
        }
    };

    println!("status: {}", qmp.query_status().await?.status);
    for cpu in qmp.query_cpus_fast().await? {
        println!("cpu {}: thread {}", cpu.cpu_index, cpu.thread_id);
    }
    for block in qmp.query_block().await? {
        println!("block {}: {}", block.device, block.r#type);
    }
    for bus in qmp.query_pci().await? {
        for dev in bus.devices {
            let desc = dev.class_info.desc.unwrap_or_default();
            println!("pci {:02x}.{}: {desc}", dev.slot, dev.function);
        }
    }

    let null = BlockdevOptions::null_co(BlockdevOptionsNull::default().size(64 << 20));
    qmp.blockdev_add(null.node_name("null0")).await?;
    let disk = qmp.device_add("virtio-blk-pci").id("disk0").bus("port0");
    disk.arg("drive", "null0").await?;
    println!("added disk0 on port0");

    let group = ObjectOptions::new("tg0", ThrottleGroupProperties::default());
    qmp.object_add(group).await?;
    let limits = ThrottleLimits::default().iops_total(1000).bps_read(1 << 20);
    qmp.qom_set("/objects/tg0", "limits", json::to_value(limits)?)
        .await?;
    let limits: ThrottleLimits = json::from_value(qmp.qom_get("/objects/tg0", "limits").await?)?;
    println!("tg0: iops-total {}", limits.iops_total.unwrap_or_default());

    let mut events = qmp.subscribe([EventKind::Resume, EventKind::Stop]);
    qmp.cont().await?;
    events.wait_for_kind(EventKind::Resume, TIMEOUT).await?;
    println!("resumed: {}", qmp.query_status().await?.status);
    qmp.stop().await?;
    events.wait_for_kind(EventKind::Stop, TIMEOUT).await?;
    println!("stopped: {}", qmp.query_status().await?.status);

    match qemu {
        Some(mut qemu) => println!("quit: {}", qemu.quit_and_wait().await?),
        None => qmp.quit().await?,
    }
    Ok(())
}
