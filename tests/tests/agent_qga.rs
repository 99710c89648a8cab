//! Issue 14 against a real qemu-ga 10.0.2, run on the host (`qemu-ga -m unix-listen`) with
//! every command that changes the host blocked (see `qmp_tests::qga`); files are created only
//! in each test's temp directory, and `guest-exec` runs only `echo` and `cat`.
//!
//! A restarted agent behind a chardev (the host end stays connected while the agent in the
//! guest restarts) is played by a small proxy between the client and the agent's socket.

// Test fixtures (the fake agent, the chardev proxy) panic on what cannot happen in a test.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use qmp_core::{Client, ExecuteError};
use qmp_ga::GuestAgent;
use qmp_tests::qga::{Options, QemuGa};
use qmp_tests::within;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

fn builder() -> qmp_core::ClientBuilder {
    GuestAgent::builder()
        .wait_for_server(true)
        .timeout(Some(Duration::from_secs(10)))
        .command_timeout(Some(Duration::from_secs(20)))
}

async fn connect(ga: &QemuGa) -> GuestAgent {
    builder()
        .connect_unix(&ga.socket)
        .await
        .expect("connect to qemu-ga")
        .into()
}

/// A file content that shows misplaced chunks: every 4-byte word is its own offset.
fn pattern(len: usize) -> Vec<u8> {
    (0..len.div_ceil(4))
        .flat_map(|i| (i as u32).to_le_bytes())
        .take(len)
        .collect()
}

fn first_line(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[tokio::test]
async fn commands_against_qemu_ga() {
    let Some(ga) = QemuGa::start() else { return };
    within(30, async {
        let started = Instant::now();
        let agent = connect(&ga).await;
        eprintln!(
            "connected (resynchronised, version read) in {:?}",
            started.elapsed()
        );
        assert_eq!(
            (agent.version().major, agent.version().minor),
            (10, 0),
            "{}",
            agent.version()
        );
        agent.guest_ping().await.unwrap();

        let info = agent.guest_info().await.unwrap();
        assert_eq!(info.version, agent.version().to_string());
        let enabled = |name: &str| {
            info.supported_commands
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.enabled)
        };
        assert_eq!(enabled("guest-ping"), Some(true));
        assert_eq!(
            enabled("guest-shutdown"),
            Some(false),
            "blocked by the test"
        );

        let ns = agent.guest_get_time().await.unwrap();
        let host = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        assert!((ns - host).abs() < 60_000_000_000, "guest {ns} host {host}");

        let os = agent.guest_get_osinfo().await.unwrap();
        assert_eq!(
            os.kernel_release.as_deref(),
            Some(first_line("/proc/sys/kernel/osrelease").as_str())
        );
        let host_name = agent.guest_get_host_name().await.unwrap();
        assert_eq!(host_name.host_name, first_line("/proc/sys/kernel/hostname"));

        // Errors keep the agent's class and description.
        let err = agent
            .raw()
            .execute("guest-no-such-command", ())
            .await
            .unwrap_err();
        assert!(
            err.qmp_error().is_some_and(|e| e.is_command_not_found()),
            "{err}"
        );
        let err = agent
            .raw()
            .execute("qmp_capabilities", ())
            .await
            .unwrap_err();
        assert!(
            err.qmp_error().is_some_and(|e| e.is_command_not_found()),
            "{err}"
        );

        // guest-shutdown sends no reply on success, so it completes once sent; this agent
        // blocks it and answers with an error, which is dropped without confusing the next
        // command's reply.
        agent.guest_shutdown().mode("powerdown").await.unwrap();
        agent.guest_ping().await.unwrap();
        assert!(agent.raw().disconnect_reason().is_none());
        agent.close().await;
    })
    .await
}

#[tokio::test]
async fn file_round_trip_with_base64_and_large_reads() {
    let Some(ga) = QemuGa::start() else { return };
    within(60, async {
        let agent = connect(&ga).await;
        let path = ga.dir.join("file.bin");
        let path = path.to_str().unwrap();

        // The raw protocol: open, write base64, seek, read base64, close.
        let handle = agent.guest_file_open(path).mode("w+").await.unwrap();
        let wrote = agent
            .guest_file_write(handle, BASE64.encode(b"hello, agent\n"))
            .await
            .unwrap();
        assert_eq!(wrote.count, 13);
        agent
            .guest_file_seek(
                handle,
                0,
                qmp_ga::types::GuestFileWhence::Name(qmp_ga::types::QGASeek::Set),
            )
            .await
            .unwrap();
        let read = agent.guest_file_read(handle).count(100).await.unwrap();
        assert_eq!(BASE64.decode(&read.buf_b64).unwrap(), b"hello, agent\n");
        assert!(read.eof);
        agent.guest_file_close(handle).await.unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"hello, agent\n");

        // The helpers: a 4 MiB file written and read back in 1 MiB chunks.
        let data = pattern(4 << 20);
        let started = Instant::now();
        agent.write_file(path, &data).await.unwrap();
        let wrote_in = started.elapsed();
        assert_eq!(std::fs::read(path).unwrap(), data);
        let started = Instant::now();
        let back = agent.read_file(path).await.unwrap();
        let read_in = started.elapsed();
        assert!(back == data, "read_file returned different bytes");
        eprintln!("4 MiB file: written in {wrote_in:?}, read in {read_in:?} (1 MiB chunks)");

        // One 4 MiB read: a 5.6 MB reply.
        let handle = agent.guest_file_open(path).await.unwrap();
        let started = Instant::now();
        let read = agent.guest_file_read(handle).count(4 << 20).await.unwrap();
        eprintln!(
            "one guest-file-read of 4 MiB: {} bytes of base64 in {:?}",
            read.buf_b64.len(),
            started.elapsed()
        );
        assert_eq!(read.count, 4 << 20);
        assert!(BASE64.decode(&read.buf_b64).unwrap() == data);
        agent.guest_file_close(handle).await.unwrap();

        // A reply above the configured limit ends that connection with a clear error. (The
        // agent serves one client at a time: this one goes first.)
        agent.close().await;
        drop(agent);
        let small: GuestAgent = builder()
            .max_message_size(1 << 20)
            .connect_unix(&ga.socket)
            .await
            .unwrap()
            .into();
        let handle = small.guest_file_open(path).await.unwrap();
        let err = small
            .guest_file_read(handle)
            .count(1 << 20)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("1048576"), "{err}");
    })
    .await
}

#[tokio::test]
async fn blocked_command_error() {
    let options = Options {
        block: vec!["guest-file-open"],
        ..Options::default()
    };
    let Some(ga) = QemuGa::start_with(options) else {
        return;
    };
    within(30, async {
        let agent = connect(&ga).await;
        let err = agent
            .guest_file_open(ga.dir.join("x").to_str().unwrap())
            .await
            .unwrap_err();
        let ExecuteError::Qmp { error, .. } = &err else {
            panic!("{err}")
        };
        assert!(
            error.desc.contains("guest-file-open has been disabled"),
            "{err}"
        );
        agent.guest_ping().await.unwrap();
    })
    .await
}

#[tokio::test]
async fn exec_with_captured_output() {
    let options = Options {
        allow_exec: true,
        ..Options::default()
    };
    let Some(ga) = QemuGa::start_with(options) else {
        return;
    };
    within(30, async {
        let agent = connect(&ga).await;
        let out = agent.exec("/bin/echo", ["hello", "agent"]).await.unwrap();
        assert!(out.success(), "{out:?}");
        assert_eq!(out.stdout, b"hello agent\n");
        assert!(out.stderr.is_empty());

        let file = ga.dir.join("cat-me.txt");
        std::fs::write(&file, b"line one\nline two\n").unwrap();
        let out = agent
            .exec("/bin/cat", [file.to_str().unwrap()])
            .await
            .unwrap();
        assert_eq!(
            (out.exitcode, out.stdout.as_slice()),
            (Some(0), &b"line one\nline two\n"[..])
        );

        let missing = ga.dir.join("missing.txt");
        let out = agent
            .exec("/bin/cat", [missing.to_str().unwrap()])
            .await
            .unwrap();
        assert_eq!(out.exitcode, Some(1), "{out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("No such file"),
            "{out:?}"
        );
    })
    .await
}

/// Garbage leaves the agent's JSON parser in the middle of an object, so it answers nothing
/// any more; connecting on that same stream resynchronises (the client's 0xFF byte resets the
/// parser) and everything works again.
#[tokio::test]
async fn resync_after_garbage() {
    let Some(ga) = QemuGa::start() else { return };
    within(30, async {
        let mut stream = UnixStream::connect(&ga.socket).await.unwrap();
        stream
            .write_all(b"{\"execute\": \"guest-ping\", \"arguments\": {\"x\": [1, {\"y\": 2},\n{\"execute\":\"guest-ping\",\"id\":1}\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let silent = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await;
        assert!(
            silent.is_err(),
            "the agent answered despite the garbage: {:?}",
            silent.map(|n| String::from_utf8_lossy(&buf[..n.unwrap_or(0)]).into_owned())
        );

        let started = Instant::now();
        let client = builder().connect_unix_stream(stream).await.unwrap();
        let took = started.elapsed();
        eprintln!("resynchronised after garbage in {took:?}");
        let agent = GuestAgent::from(client);
        agent.guest_ping().await.unwrap();

        // On demand, many times over: the figure for the README.
        let started = Instant::now();
        for _ in 0..100 {
            agent.sync().await.unwrap();
        }
        eprintln!("guest-sync-delimited round trip: {:?}", started.elapsed() / 100);
        agent.guest_ping().await.unwrap();
    })
    .await
}

/// The host end of an agent's chardev: it stays connected to the client while the agent
/// behind it goes away and comes back.
struct Chardev {
    control: mpsc::UnboundedSender<Control>,
}

enum Control {
    /// Forward this many more bytes from the agent, then drop it and report.
    CutAfter(usize, oneshot::Sender<()>),
    /// Connect to a (new) agent at this socket.
    Reconnect(PathBuf, oneshot::Sender<()>),
}

impl Chardev {
    async fn start(socket: PathBuf) -> (Chardev, DuplexStream) {
        let (client_side, mut ours) = tokio::io::duplex(1 << 20);
        let (control, mut rx) = mpsc::unbounded_channel();
        let mut agent = Some(UnixStream::connect(&socket).await.unwrap());
        tokio::spawn(async move {
            let mut from_client = vec![0u8; 64 * 1024];
            let mut from_agent = vec![0u8; 64 * 1024];
            let mut budget: Option<(usize, oneshot::Sender<()>)> = None;
            loop {
                tokio::select! {
                    n = ours.read(&mut from_client) => {
                        let Ok(n @ 1..) = n else { return };
                        // With no agent behind, what the client writes is lost.
                        if let Some(a) = &mut agent {
                            if a.write_all(&from_client[..n]).await.is_err() {
                                agent = None;
                            }
                        }
                    }
                    n = async { agent.as_mut().unwrap().read(&mut from_agent).await }, if agent.is_some() => {
                        let n = match n { Ok(n @ 1..) => n, _ => { agent = None; continue } };
                        let mut forward = n;
                        if let Some((left, _)) = &mut budget {
                            forward = forward.min(*left);
                            *left -= forward;
                        }
                        if ours.write_all(&from_agent[..forward]).await.is_err() {
                            return;
                        }
                        if budget.as_ref().is_some_and(|(left, _)| *left == 0) {
                            agent = None;
                            if let Some((_, done)) = budget.take() {
                                let _ = done.send(());
                            }
                        }
                    }
                    ctl = rx.recv() => match ctl {
                        None => return,
                        Some(Control::CutAfter(bytes, done)) => budget = Some((bytes, done)),
                        Some(Control::Reconnect(path, done)) => {
                            agent = Some(UnixStream::connect(&path).await.unwrap());
                            let _ = done.send(());
                        }
                    },
                }
            }
        });
        (Chardev { control }, client_side)
    }
}

/// The agent dies in the middle of a 5.6 MB reply and a new one starts behind the same
/// channel: the call times out, the next command resynchronises (dropping the half reply), and
/// the connection carries on with the new agent.
#[tokio::test]
async fn restarted_agent_mid_reply() {
    let Some(mut ga) = QemuGa::start() else {
        return;
    };
    within(60, async {
        let (chardev, stream) = Chardev::start(ga.socket.clone()).await;
        let agent: GuestAgent = builder()
            .command_timeout(Some(Duration::from_secs(2)))
            .connect_stream(stream)
            .await
            .unwrap()
            .into();
        let path = ga.dir.join("big.bin");
        std::fs::write(&path, pattern(4 << 20)).unwrap();
        let handle = agent.guest_file_open(path.to_str().unwrap()).await.unwrap();

        let (cut_tx, cut) = oneshot::channel();
        chardev
            .control
            .send(Control::CutAfter(100_000, cut_tx))
            .unwrap();
        let read = tokio::spawn({
            let agent = agent.clone();
            async move { agent.guest_file_read(handle).count(4 << 20).await }
        });
        cut.await.unwrap();
        let old_pid = ga.pid();
        ga.restart();
        assert_ne!(ga.pid(), old_pid);
        let (done_tx, done) = oneshot::channel();
        chardev
            .control
            .send(Control::Reconnect(ga.socket.clone(), done_tx))
            .unwrap();
        done.await.unwrap();

        let err = read.await.unwrap().unwrap_err();
        assert!(matches!(err, ExecuteError::Timeout { .. }), "{err}");
        let started = Instant::now();
        agent.guest_ping().await.expect("ping after the restart");
        eprintln!(
            "first command after the restart (resynchronisation included): {:?}",
            started.elapsed()
        );
        let info = agent.guest_info().await.unwrap();
        assert_eq!(info.version, agent.version().to_string());
        let raw: &Client = agent.raw();
        assert!(raw.disconnect_reason().is_none());
        // The handle belonged to the old agent.
        let err = agent.guest_file_close(handle).await.unwrap_err();
        assert!(err.qmp_error().is_some(), "{err}");
    })
    .await
}

/// The host end of a guest's agent channel, as QEMU 10.0.2 serves it (`-chardev socket` behind
/// a `virtserialport` named `org.qemu.guest_agent.0`): agent mode connects to it like to any
/// socket; with no guest (and so no agent) running behind it, connecting times out naming the
/// resynchronisation and what to check, rather than blaming another client.
#[tokio::test]
async fn chardev_without_an_agent_behind_it() {
    let dir = qmp_tests::TempDir::new();
    let chardev = dir.join("qga.sock");
    let arg = format!(
        "socket,path={},server=on,wait=off,id=qga0",
        chardev.display()
    );
    let Some(_qemu) = qmp_tests::qemu::Qemu::start_with(
        qmp_tests::qemu::Kind::System10,
        &[
            "-machine",
            "q35",
            "-S",
            "-chardev",
            &arg,
            "-device",
            "virtio-serial",
            "-device",
            "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
        ],
    ) else {
        return;
    };
    within(30, async {
        let err = GuestAgent::builder()
            .wait_for_server(true)
            .timeout(Some(Duration::from_millis(500)))
            .connect_unix(&chardev)
            .await
            .unwrap_err();
        assert!(
            matches!(err, qmp_core::ConnectError::Timeout { .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("guest-sync-delimited")
                && text.contains("is qemu-ga running in the guest"),
            "{text}"
        );
        assert!(!text.contains("another client"), "{text}");
    })
    .await
}
