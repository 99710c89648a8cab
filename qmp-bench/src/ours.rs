//! Our stack under test: the typed `qmp_api::Qmp` over `qmp_core::Client`, used as the README
//! shows (typed methods, typed events).

use std::error::Error;
use std::time::Instant;

use futures_util::future::join_all;
use qmp_api::{EventError, Qmp};

use crate::measure::{idle_connections, Sample, Start};
use crate::workload::{Job, Workload};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

async fn connect(job: &Job) -> Result<Qmp> {
    let mut builder = qmp_core::Client::builder();
    if let Some(n) = job.event_buffer {
        builder = builder.event_buffer(n);
    }
    Ok(Qmp::from(builder.connect_unix(&job.socket).await?))
}

/// Runs `job` with our client.
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
    let qmp = connect(job).await?;
    for _ in 0..(job.n / 10).min(1000) {
        std::hint::black_box(qmp.query_status().await?);
    }
    let mut lat = Vec::with_capacity(job.n as usize);
    let start = Start::now();
    for _ in 0..job.n {
        let t = Instant::now();
        std::hint::black_box(qmp.query_status().await?);
        lat.push(t.elapsed().as_nanos() as u64);
    }
    let sample = start.sample(job.n).with_latencies(lat);
    qmp.close().await;
    Ok(sample)
}

async fn pipe(job: &Job) -> Result<Sample> {
    let qmp = connect(job).await?;
    let start = Start::now();
    let calls = (0..job.n).map(|_| qmp.query_status());
    for reply in join_all(calls).await {
        std::hint::black_box(reply?);
    }
    let sample = start.sample(job.n).with_peak_rss();
    qmp.close().await;
    Ok(sample)
}

async fn schema(job: &Job) -> Result<Sample> {
    let qmp = connect(job).await?;
    std::hint::black_box(qmp.query_qmp_schema().await?);
    let start = Start::now();
    for _ in 0..job.n {
        let schema = qmp.query_qmp_schema().await?;
        if schema.is_empty() {
            return Err("empty schema".into());
        }
        std::hint::black_box(schema);
    }
    let sample = start.sample(job.n);
    qmp.close().await;
    Ok(sample)
}

/// Receives typed events until `n` arrived or were reported missed: (received, missed).
async fn subscriber(mut events: qmp_api::EventStream, n: u64) -> Result<(u64, u64)> {
    let (mut received, mut missed) = (0u64, 0u64);
    while received + missed < n {
        match events.next().await {
            Some(Ok(ev)) => {
                std::hint::black_box(ev);
                received += 1;
            }
            Some(Err(EventError::Missed { count })) => missed += count,
            Some(Err(e)) => return Err(e.into()),
            None => return Err("event stream ended".into()),
        }
    }
    Ok((received, missed))
}

async fn events(job: &Job) -> Result<Sample> {
    let qmp = connect(job).await?;
    let subs: Vec<_> = (0..job.subs.max(1))
        .map(|_| tokio::spawn(subscriber(qmp.events(), job.n)))
        .collect();
    let start = Start::now();
    qmp.raw()
        .execute("x-bench-events", serde_json::json!({ "count": job.n }))
        .await?;
    let mut missed = 0;
    for s in subs {
        missed += s.await??.1;
    }
    let mut sample = start.sample(job.n);
    sample.missed = missed;
    qmp.close().await;
    Ok(sample)
}

async fn qemu_events(job: &Job) -> Result<Sample> {
    let qmp = connect(job).await?;
    let sub = tokio::spawn(subscriber(qmp.events(), job.n));
    let start = Start::now();
    // `stop` and `cont` are different command types, hence different future types.
    let calls = (0..job.n / 2).flat_map(|_| {
        [
            futures_util::future::Either::Left(qmp.stop()),
            futures_util::future::Either::Right(qmp.cont()),
        ]
    });
    for reply in join_all(calls).await {
        reply?;
    }
    let (_, missed) = sub.await??;
    let mut sample = start.sample(job.n);
    sample.missed = missed;
    qmp.close().await;
    Ok(sample)
}

async fn idle(job: &Job) -> Result<Sample> {
    idle_connections(job.n, || connect(job)).await
}
