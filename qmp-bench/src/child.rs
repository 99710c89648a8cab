//! The client process: `qmp-bench child ARGS` runs one [`Job`] and prints its [`Sample`] as one
//! JSON line on stdout. Each repetition is a fresh process, so CPU time and peak RSS belong to
//! that client and that run alone.

use crate::measure::{pin_to_cpu, raise_fd_limit, Sample};
use crate::workload::{Client, Job};
use crate::{ours, qapi_rs, raw};

/// Runs the job described by `args`; returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let job = match Job::parse(args) {
        Ok(job) => job,
        Err(e) => {
            eprintln!("qmp-bench child: {e}");
            return 2;
        }
    };
    raise_fd_limit();
    if let Some(cpu) = job.cpu {
        if let Err(e) = pin_to_cpu(cpu) {
            eprintln!("qmp-bench child: cannot pin to CPU {cpu}: {e}");
        }
    }
    match run(&job) {
        Ok(sample) => match serde_json::to_string(&sample) {
            Ok(line) => {
                println!("{line}");
                0
            }
            Err(e) => {
                eprintln!("qmp-bench child: {e}");
                1
            }
        },
        Err(e) => {
            eprintln!(
                "qmp-bench child ({} {}): {e}",
                job.client,
                job.workload.arg()
            );
            1
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn run(job: &Job) -> Result<Sample, BoxError> {
    match job.client {
        Client::Raw => Ok(raw::run(job)?),
        Client::Ours => runtime(job)?.block_on(ours::run(job)),
        Client::QapiRs => runtime(job)?.block_on(qapi_rs::run(job)),
        Client::Python => Err("the Python client runs in its own interpreter".into()),
    }
}

/// A current-thread runtime (default), or a two-worker multi-thread one.
fn runtime(job: &Job) -> std::io::Result<tokio::runtime::Runtime> {
    if job.multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
}
