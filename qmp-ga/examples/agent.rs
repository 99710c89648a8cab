//! Talks to a QEMU guest agent: `cargo run -p qmp-ga --example agent -- SOCKET [FILE]`.
//!
//! SOCKET is the host end of the agent's channel (QEMU: `-chardev
//! socket,path=SOCKET,server=on,wait=off,id=qga0 -device virtio-serial -device
//! virtserialport,chardev=qga0,name=org.qemu.guest_agent.0`) or the socket of
//! `qemu-ga -m unix-listen -p SOCKET`. Prints the agent's version, the guest's OS, host name
//! and clock, and, given FILE, the file's size as read through the agent.

use std::time::Duration;

use qmp_ga::GuestAgent;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(socket) = args.next() else {
        eprintln!("usage: agent SOCKET [FILE]");
        std::process::exit(2);
    };
    let agent: GuestAgent = GuestAgent::builder()
        .timeout(Some(Duration::from_secs(5)))
        .command_timeout(Some(Duration::from_secs(10)))
        .connect_unix(&socket)
        .await?
        .into();
    println!("qemu-ga {}", agent.version());
    agent.guest_ping().await?;
    let os = agent.guest_get_osinfo().await?;
    println!(
        "OS: {} (kernel {})",
        os.pretty_name.as_deref().unwrap_or("?"),
        os.kernel_release.as_deref().unwrap_or("?")
    );
    println!(
        "host name: {}",
        agent.guest_get_host_name().await?.host_name
    );
    println!(
        "clock: {} ns since the epoch",
        agent.guest_get_time().await?
    );
    if let Some(file) = args.next() {
        let data = agent.read_file(&file).await?;
        println!("{file}: {} bytes", data.len());
    }
    agent.close().await;
    Ok(())
}
