//! The fuzz input is what a QMP server sends to `qmp_core::Client`.
//!
//! Input layout: `[flags, params, body...]`.
//! - flags bit 0: raw mode, `body` is the whole server stream from its first byte; otherwise
//!   the server greets, negotiates, waits for the client's commands, then sends `body`.
//! - flags bit 1: the client asks for `oob` (and the prelude offers it).
//! - flags bits 2-3: body written in one piece, or in pieces of 1, 7 or 61 bytes.
//! - flags bit 4: keep the connection open after `body` (else the server half-closes).
//! - flags bit 5: end with `Client::close` (else by dropping the handles).
//! - params bits 0-3: number of concurrent calls (1..=12); bits 4-5: event buffer
//!   (1, 2, 4, 64); bits 6-7: max nesting depth (4, 6, 32, 128).
//!
//! Calls cycle through `execute`, a `request` with a timeout of its own, `execute_as`, a call
//! cancelled while in flight, and an out-of-band `request` (or `execute_without_reply`).
//! Commands get ids 1, 2, 3... in that order (negotiation uses id 0; fuzz builds of qmp-core
//! number from 0 instead of a random start), which the seeds use. A slow subscriber reads every event
//! only at the end; another reads STOP/RESUME/JOB_STATUS_CHANGE as they come and decodes them
//! with the typed API.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qmp_core::{Capability, EventError};
use qmp_fuzz::{check_capabilities, check_ended, run_bounded, spawn_server, Prelude, ServerScript};
use serde_json::Value;

const CHUNKS: [usize; 4] = [usize::MAX, 1, 7, 61];
const EVENT_BUFFERS: [usize; 4] = [1, 2, 4, 64];
const DEPTHS: [usize; 4] = [4, 6, 32, 128];

fuzz_target!(|data: &[u8]| {
    let (&flags, &params, body) = match data {
        [f, p, rest @ ..] => (f, p, rest),
        _ => return,
    };
    let raw = flags & 1 != 0;
    let oob = flags & 2 != 0;
    let chunk = CHUNKS[usize::from(flags >> 2 & 3)];
    let keep_open = flags & 16 != 0;
    let graceful = flags & 32 != 0;
    let calls = usize::from(params & 15) % 12 + 1;
    let event_buffer = EVENT_BUFFERS[usize::from(params >> 4 & 3)];
    let depth = DEPTHS[usize::from(params >> 6)];
    run_bounded(
        "wire_client",
        session(
            raw,
            oob,
            chunk,
            keep_open,
            graceful,
            calls,
            event_buffer,
            depth,
            body.to_vec(),
        ),
    );
});

#[allow(clippy::too_many_arguments)]
async fn session(
    raw: bool,
    oob: bool,
    chunk: usize,
    keep_open: bool,
    graceful: bool,
    calls: usize,
    event_buffer: usize,
    depth: usize,
    body: Vec<u8>,
) {
    let script = ServerScript {
        prelude: (!raw).then_some(Prelude {
            oob,
            commands: calls,
        }),
        body,
        chunk,
        keep_open,
    };
    let (io, server) = spawn_server(script);
    let requested: Vec<Capability> = if oob { vec![Capability::Oob] } else { vec![] };
    let client = match qmp_fuzz::builder(oob, depth, event_buffer, keep_open)
        .connect_stream(io)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            if qmp_fuzz::verbose() {
                eprintln!("connect failed: {e}");
            }
            server.abort();
            let _ = server.await;
            return;
        }
    };
    check_capabilities(&client, &requested);

    // Subscribed before the connection task first runs: this stream sees every event.
    let mut all = client.subscribe();
    let mut live = client.subscribe_to(["STOP", "RESUME", "JOB_STATUS_CHANGE"]);
    let reader = tokio::spawn(async move {
        while let Some(item) = live.next().await {
            if let Ok(ev) = item {
                let _ = qmp_api::Event::from_raw(&ev);
                let _ = ev.data_value();
            }
        }
    });

    let mut waited = Vec::new();
    let mut cancelled = Vec::new();
    for i in 0..calls {
        let c = client.clone();
        match i % 5 {
            0 => waited.push(tokio::spawn(async move {
                let r = c.execute("query-status", ()).await;
                if qmp_fuzz::verbose() {
                    eprintln!("call {i} query-status: {r:?}");
                }
            })),
            1 => waited.push(tokio::spawn(async move {
                let mut args = serde_json::Map::new();
                args.insert("path".into(), Value::from("/machine"));
                let _ = c
                    .request("qom-list", args)
                    .timeout(Some(std::time::Duration::from_secs(3600)))
                    .await;
            })),
            2 => waited.push(tokio::spawn(async move {
                let _ = c.execute_as::<Vec<Value>>("query-block", ()).await;
            })),
            3 => cancelled.push(tokio::spawn(async move {
                let _ = c.execute("query-version", ()).await;
            })),
            _ => waited.push(tokio::spawn(async move {
                if c.capabilities().contains(&Capability::Oob) {
                    let _ = c.request("x-oob", ()).oob().await;
                } else {
                    let _ = c.execute_without_reply("guest-sync-delimited", ());
                }
            })),
        }
    }
    // Let every call send its command, then give up on the cancelled ones.
    tokio::task::yield_now().await;
    for task in &cancelled {
        task.abort();
    }
    for task in waited.into_iter().chain(cancelled) {
        // Without the server's EOF (keep_open) each call has a 2 s timeout; with it, every
        // call must end through a reply or the disconnect. Either way the watchdog catches a
        // call that never ends.
        let _ = task.await;
    }

    if graceful {
        client.close().await;
    }
    if graceful || !keep_open {
        // Closed by us, or the server closed: the connection must end by itself.
        client.closed().await;
        check_ended(&client).await;
    }
    let received = client.stats().events_received;
    if qmp_fuzz::verbose() {
        eprintln!(
            "{:?}; disconnect reason: {:?}",
            client.stats(),
            client.disconnect_reason().map(|r| r.to_string())
        );
    }
    drop(client);

    // The slow subscriber: every event is either delivered or counted as missed, then the
    // stream reports the disconnect, then ends.
    let mut delivered = 0u64;
    let mut missed = 0u64;
    let mut ended = false;
    while let Some(item) = all.next().await {
        assert!(!ended, "contract (EventStream): items after Disconnected");
        match item {
            Ok(_) => delivered += 1,
            Err(EventError::Missed { count }) => missed += count,
            Err(EventError::Disconnected(_)) => ended = true,
            Err(other) => panic!("unexpected event error {other:?}"),
        }
    }
    assert!(ended, "contract (EventStream): ended without Disconnected");
    // `received` was read with no await before the last handle was dropped, and dropping it
    // ends the connection before anything more is read: the counts must match exactly.
    assert!(
        delivered + missed == received,
        "contract (EventStream, Missed): {received} events received, but the subscriber got \
         {delivered} and was told of {missed} missed"
    );
    let _ = reader.await;
    server.abort();
    let _ = server.await;
}
