//! The Rust peer: the `qapi` crate (qapi-rs 0.15) with its tokio client and the typed commands
//! and events of `qapi-qmp`, driven as its own docs show: `QmpStreamTokio::open_uds`,
//! `negotiate`, then a `QapiService` to execute commands while `QapiEvents` reads (spawned,
//! or polled as the event stream).
//!
//! Note: qapi-rs sends command ids (and so lets several commands be in flight) only when it
//! sees `oob` in the greeting, and it never does: its untagged `QmpCapability` enum reads the
//! string `"oob"` as an unknown capability (see the test below). Without ids it holds its
//! write lock until each reply arrives, so its "pipelined" run executes one command at a time.
//! That is how it behaves against QEMU 10, measured as is.

use std::error::Error;
use std::time::Instant;

use futures_util::future::join_all;
use futures_util::StreamExt;
use qapi::futures::{QapiEvents, QapiService, QmpStreamTokio};
use qapi::qmp;
use serde::Serialize;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::UnixStream;

use crate::measure::{idle_connections, Sample, Start};
use crate::workload::{Job, Workload};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;
type Service = QapiService<QmpStreamTokio<WriteHalf<UnixStream>>>;
type Events = QapiEvents<QmpStreamTokio<ReadHalf<UnixStream>>>;

/// The bench server's event-streaming command, as a qapi-rs command type.
#[derive(Serialize)]
struct BenchEvents {
    count: u64,
}

impl qapi::Command for BenchEvents {
    type Ok = qapi::Any;
    const NAME: &'static str = "x-bench-events";
    const ALLOW_OOB: bool = false;
}

impl qmp::QmpCommand for BenchEvents {}

async fn connect(job: &Job) -> Result<(Service, Events)> {
    let stream = QmpStreamTokio::open_uds(&job.socket)
        .await?
        .negotiate()
        .await?;
    Ok(stream.into_parts())
}

/// Connects and spawns the reader: for command-only workloads.
async fn connect_spawned(job: &Job) -> Result<(Service, tokio::task::JoinHandle<()>)> {
    let (service, events) = connect(job).await?;
    Ok((service, events.spawn_tokio()))
}

/// Runs `job` with qapi-rs.
pub async fn run(job: &Job) -> Result<Sample> {
    match job.workload {
        Workload::Seq => seq(job).await,
        Workload::Pipe => pipe(job).await,
        Workload::Schema => schema(job).await,
        Workload::Events => events(job).await,
        Workload::QemuEvents => qemu_events(job).await,
        Workload::Idle => idle(job).await,
    }
}

async fn seq(job: &Job) -> Result<Sample> {
    let (service, _reader) = connect_spawned(job).await?;
    for _ in 0..(job.n / 10).min(1000) {
        std::hint::black_box(service.execute(qmp::query_status {}).await?);
    }
    let mut lat = Vec::with_capacity(job.n as usize);
    let start = Start::now();
    for _ in 0..job.n {
        let t = Instant::now();
        std::hint::black_box(service.execute(qmp::query_status {}).await?);
        lat.push(t.elapsed().as_nanos() as u64);
    }
    Ok(start.sample(job.n).with_latencies(lat))
}

async fn pipe(job: &Job) -> Result<Sample> {
    let (service, _reader) = connect_spawned(job).await?;
    let start = Start::now();
    let calls = (0..job.n).map(|_| service.execute(qmp::query_status {}));
    for reply in join_all(calls).await {
        std::hint::black_box(reply?);
    }
    Ok(start.sample(job.n).with_peak_rss())
}

async fn schema(job: &Job) -> Result<Sample> {
    let (service, _reader) = connect_spawned(job).await?;
    std::hint::black_box(service.execute(qmp::query_qmp_schema {}).await?);
    let start = Start::now();
    for _ in 0..job.n {
        let schema = service.execute(qmp::query_qmp_schema {}).await?;
        if schema.is_empty() {
            return Err("empty schema".into());
        }
        std::hint::black_box(schema);
    }
    Ok(start.sample(job.n))
}

/// Reads typed events (the stream also routes replies) until `n` arrived.
async fn count_events(mut events: Events, n: u64) -> Result<()> {
    let mut seen = 0;
    while seen < n {
        match events.next().await {
            Some(ev) => {
                std::hint::black_box(ev?);
                seen += 1;
            }
            None => return Err("event stream ended".into()),
        }
    }
    Ok(())
}

async fn events(job: &Job) -> Result<Sample> {
    if job.subs > 1 {
        return Err("qapi-rs has a single event stream per connection".into());
    }
    let (service, events) = connect(job).await?;
    let start = Start::now();
    let reader = tokio::spawn(count_events(events, job.n));
    service.execute(BenchEvents { count: job.n }).await?;
    reader.await??;
    Ok(start.sample(job.n))
}

async fn qemu_events(job: &Job) -> Result<Sample> {
    let (service, mut events) = connect(job).await?;
    let start = Start::now();
    // QEMU sends each event before the reply of the command that caused it, so the stream
    // (which also routes replies) must keep being polled after the last event: the reader
    // reports the count and runs until the commands are done.
    let n = job.n;
    let (counted, all_seen) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(async move {
        let mut seen = 0;
        let mut counted = Some(counted);
        while let Some(ev) = events.next().await {
            if ev.is_err() {
                break;
            }
            seen += 1;
            if seen == n {
                if let Some(tx) = counted.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    // One at a time: qapi-rs runs them one at a time anyway (see the module docs), and its
    // lock does not promise FIFO order, which stop/cont pairs need to emit every event.
    for _ in 0..job.n / 2 {
        service.execute(qmp::stop {}).await?;
        service.execute(qmp::cont {}).await?;
    }
    all_seen.await?;
    let sample = start.sample(job.n);
    reader.abort();
    Ok(sample)
}

async fn idle(job: &Job) -> Result<Sample> {
    idle_connections(job.n, || connect_spawned(job)).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn qapi_rs_does_not_see_oob_in_qemus_greeting() {
        // QEMU 10 offers `oob`; qapi-rs's untagged `QmpCapability` takes the string for an
        // unknown capability, so it never pipelines with ids (see the module docs).
        let caps: qapi::qmp::QapiCapabilities =
            serde_json::from_slice(crate::server::GREETING).expect("a greeting");
        assert!(!caps.supports_oob());
        assert_eq!(caps.capabilities().count(), 0);
    }
}
