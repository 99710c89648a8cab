//! Shared pieces of the fuzz targets: one paused-clock tokio runtime, a scripted in-memory QMP
//! server that answers a client with fuzz input, and checks of documented contracts.
//!
//! Every `assert!`/`panic!` here checks a contract the crates document (the first line of
//! each message says which); a failure is a finding, not a harness bug.

#![forbid(unsafe_code)]

use std::sync::OnceLock;
use std::time::Duration;

use qmp_core::{Capability, Client, ClientBuilder, ExecuteError};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// A current-thread runtime with a paused clock, created once per process. When every task is
/// waiting, the clock jumps to the next timer, so a 5 s connect timeout costs no wall time and
/// the same input always runs the same way.
pub fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
        {
            Ok(rt) => rt,
            Err(e) => panic!("cannot build the tokio runtime: {e}"),
        }
    })
}

/// Runs `scenario` on the shared runtime under a virtual-time watchdog. A scenario still
/// running after an hour of virtual time is stuck (every wait in it is bounded by a timeout or
/// a disconnect), so that is reported as a hang.
pub fn run_bounded<F: std::future::Future<Output = ()>>(what: &str, scenario: F) {
    let outcome = runtime()
        .block_on(async { tokio::time::timeout(Duration::from_secs(3600), scenario).await });
    if outcome.is_err() {
        panic!("hang: {what} did not finish within 3600 s of (virtual) time");
    }
}

/// True when `QMP_FUZZ_VERBOSE` is set: harnesses then describe what each input did (for
/// reproducing a finding, or checking that seeds reach deep code).
pub fn verbose() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| std::env::var_os("QMP_FUZZ_VERBOSE").is_some())
}

/// The greeting of QEMU 10.0.2, as captured, with or without the `oob` capability.
pub fn qemu_greeting(oob: bool) -> &'static [u8] {
    if oob {
        br#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": "Debian 1:10.0.2+ds-2+deb13u1~bpo12+1"}, "capabilities": ["oob"]}}"#
    } else {
        br#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": "Debian 1:10.0.2+ds-2+deb13u1~bpo12+1"}, "capabilities": []}}"#
    }
}

/// What the in-memory server sends, and how.
pub struct ServerScript {
    /// Send a valid greeting, wait for `qmp_capabilities`, answer it, and wait (briefly) for
    /// the client's commands before sending `body`. Without it `body` is sent at once.
    pub prelude: Option<Prelude>,
    /// The bytes under test.
    pub body: Vec<u8>,
    /// Write `body` in pieces of this size, letting the client run in between.
    pub chunk: usize,
    /// Keep the connection open after `body` (the client must then time out or close);
    /// otherwise half-close it, which the client sees as the server closing.
    pub keep_open: bool,
}

/// The handshake the server plays before the fuzz input.
pub struct Prelude {
    /// Offer the `oob` capability.
    pub oob: bool,
    /// How many command lines to wait for after negotiating, before sending the body.
    pub commands: usize,
}

/// Spawns the server side of an in-memory connection and returns the client side.
pub fn spawn_server(script: ServerScript) -> (DuplexStream, JoinHandle<()>) {
    // Large enough that the client never blocks writing its few commands.
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(serve(server_io, script));
    (client_io, task)
}

async fn serve(io: DuplexStream, script: ServerScript) {
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut lines = 0usize;
    let mut buf = vec![0u8; 4096];
    if let Some(p) = &script.prelude {
        let mut hello = qemu_greeting(p.oob).to_vec();
        hello.extend_from_slice(b"\r\n");
        if wr.write_all(&hello).await.is_err() {
            return;
        }
        // The client's `qmp_capabilities`, then its commands (not all of them may come: a
        // bounded wait).
        if !read_lines(&mut rd, &mut buf, &mut lines, 1).await {
            return;
        }
        if wr
            .write_all(b"{\"return\": {}, \"id\": 0}\r\n")
            .await
            .is_err()
        {
            return;
        }
        let want = 1 + p.commands;
        let _ = tokio::time::timeout(
            Duration::from_millis(50),
            read_lines(&mut rd, &mut buf, &mut lines, want),
        )
        .await;
    }
    for piece in script.body.chunks(script.chunk.max(1)) {
        if wr.write_all(piece).await.is_err() {
            return;
        }
        tokio::task::yield_now().await;
    }
    if !script.keep_open {
        let _ = wr.shutdown().await;
    }
    // Swallow whatever else the client sends until it goes away.
    while matches!(rd.read(&mut buf).await, Ok(n) if n > 0) {}
    if script.keep_open {
        // Hold the write half open until the harness aborts this task.
        std::future::pending::<()>().await;
    }
}

/// Reads until `lines` reaches `want` newlines. False at end of stream or on error.
async fn read_lines<R: tokio::io::AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut [u8],
    lines: &mut usize,
    want: usize,
) -> bool {
    while *lines < want {
        match rd.read(buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => *lines += buf[..n].iter().filter(|&&b| b == b'\n').count(),
        }
    }
    true
}

/// Checks what `connect` promised about capabilities: only ones that were both requested and
/// offered by the greeting are enabled.
pub fn check_capabilities(client: &Client, requested: &[Capability]) {
    for cap in client.capabilities() {
        assert!(
            requested.contains(cap) && client.greeting().capabilities.contains(cap),
            "contract (ClientBuilder::capabilities): enabled {cap} was not both requested \
             ({requested:?}) and offered ({:?})",
            client.greeting().capabilities
        );
    }
}

/// Checks the documented state of a connection that has ended: nothing in flight, a reason
/// recorded, and new calls failing at once with `Disconnected`.
pub async fn check_ended(client: &Client) {
    assert!(
        client.disconnect_reason().is_some(),
        "contract (Client::closed): no disconnect reason after the connection ended"
    );
    assert_eq!(
        client.stats().in_flight,
        0,
        "contract (Client, Disconnects): commands still in flight after the connection ended"
    );
    match client.execute("query-status", ()).await {
        Err(ExecuteError::Disconnected { .. }) => {}
        other => panic!(
            "contract (Client, Disconnects): a call after the end must fail with \
             Disconnected, got {other:?}"
        ),
    }
}

/// Default client settings for the harnesses: small limits so every input stays cheap.
pub fn builder(oob: bool, max_depth: usize, event_buffer: usize, keep_open: bool) -> ClientBuilder {
    let caps = if oob { vec![Capability::Oob] } else { vec![] };
    ClientBuilder::new()
        .capabilities(caps)
        .timeout(Some(Duration::from_secs(5)))
        // With the server gone, every call must end through the disconnect path alone: no
        // per-call timeout then. With the server silent, calls time out instead.
        .command_timeout(keep_open.then_some(Duration::from_secs(2)))
        .close_timeout(Duration::from_secs(1))
        .max_message_size(2048)
        .max_depth(max_depth)
        .event_buffer(event_buffer)
}

/// Findings already reported, each with its reproducer under `fuzz/regressions/`. While
/// fuzzing, the harnesses step over them so that fuzzing can go on finding new ones; with
/// `QMP_FUZZ_STRICT` set (as `scripts/fuzz` does when it replays the regressions, so CI keeps
/// failing until they are fixed) they count. Delete an entry once its bug is fixed.
///
/// Messages of findings that are known and not fixed yet: inputs failing with them are
/// skipped while fuzzing (so the search goes on) but still fail the strict replay of
/// `fuzz/regressions/`. Empty: every finding so far is fixed (see `fuzz/regressions/README.md`).
const KNOWN_FINDINGS: &[&str] = &[];

/// Like [`KNOWN_FINDINGS`], only for schemas read from introspection.
const KNOWN_INTROSPECTION_FINDINGS: &[&str] = &[];

fn is_known_finding(from_introspection: bool, message: &str) -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    let strict = *STRICT.get_or_init(|| std::env::var_os("QMP_FUZZ_STRICT").is_some());
    let known = |list: &[&str]| list.iter().any(|k| message.contains(k));
    !strict
        && (known(KNOWN_FINDINGS) || (from_introspection && known(KNOWN_INTROSPECTION_FINDINGS)))
}

/// Loads `text` through the documented round trip of the normalized format: a checked schema
/// written with `normalized::to_string` must load again and describe the same schema (the
/// crate-level example of qmp-codegen states this).
///
/// `from_introspection`: the schema was read from `query-qmp-schema` output (see
/// `KNOWN_INTROSPECTION_FINDINGS`).
pub fn check_normalized_round_trip(schema: &qmp_codegen::Schema, from_introspection: bool) {
    let text = qmp_codegen::normalized::to_string(schema);
    let again = match qmp_codegen::normalized::from_str("round-trip", &text) {
        Ok(s) => s,
        Err(e) if is_known_finding(from_introspection, &e.to_string()) => return,
        Err(e) => panic!(
            "contract (normalized::to_string): a checked schema's normalized form does not load \
             again: {e}\n--- normalized text ---\n{text}"
        ),
    };
    let a = schema.without_docs_and_locations();
    let b = again.without_docs_and_locations();
    assert!(
        a == b,
        "contract (normalized round trip): the reloaded schema differs\n--- normalized text ---\n{text}"
    );
}
