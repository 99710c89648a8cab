//! What a client process measures about itself (CPU time, memory), the sample it reports to
//! the parent, and the summary (median, min, max) of several samples.

use std::time::{Duration, Instant};

use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeValLike;
use nix::time::{clock_gettime, ClockId};
use serde::{Deserialize, Serialize};

/// CPU time (user + system) consumed so far by every thread of this process
/// (`CLOCK_PROCESS_CPUTIME_ID`, nanosecond resolution).
pub fn process_cpu() -> Duration {
    clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(|t| Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32))
        .unwrap_or_default()
}

/// User and kernel CPU time consumed so far by this process (`getrusage`; the kernel splits
/// the exact total between the two by sampling at clock ticks, so the split is meaningful over
/// runs of many ticks).
pub fn user_kernel_cpu() -> (Duration, Duration) {
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => (
            Duration::from_micros(u.user_time().num_microseconds().max(0) as u64),
            Duration::from_micros(u.system_time().num_microseconds().max(0) as u64),
        ),
        Err(_) => (Duration::ZERO, Duration::ZERO),
    }
}

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`), or 0 if unavailable.
pub fn proc_status_kib(field: &str) -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Pins this process (its calling thread, and the threads and processes it creates later) to
/// one CPU.
pub fn pin_to_cpu(cpu: usize) -> std::io::Result<()> {
    use nix::sched::{sched_setaffinity, CpuSet};
    let mut set = CpuSet::new();
    set.set(cpu).map_err(std::io::Error::from)?;
    sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(std::io::Error::from)
}

/// Raises the soft limit on open files to the hard limit (1,000 connections need it).
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// CPU time used on the whole machine and by this process tree, to tell how much of the
/// machine something else used while the bench ran (other work skews every figure).
#[derive(Debug, Clone, Copy)]
pub struct Load {
    at: Instant,
    machine_busy: Duration,
    own: Duration,
}

impl Load {
    /// Samples now. `extra_pid`: a process of ours that is not a reaped child (QEMU).
    pub fn sample(extra_pid: Option<u32>) -> Load {
        Load {
            at: Instant::now(),
            machine_busy: machine_busy(),
            own: own_tree_cpu(extra_pid),
        }
    }

    /// CPUs' worth of time (0.0 = none, 1.0 = one whole CPU) used by other processes since
    /// `self`.
    pub fn foreign_cpus_since(&self, extra_pid: Option<u32>) -> f64 {
        let wall = self.at.elapsed().as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        let machine = machine_busy()
            .saturating_sub(self.machine_busy)
            .as_secs_f64();
        let own = own_tree_cpu(extra_pid)
            .saturating_sub(self.own)
            .as_secs_f64();
        ((machine - own) / wall).max(0.0)
    }
}

/// Busy time of all CPUs (user, nice, system, irq, softirq, steal) from `/proc/stat`.
fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|f| f.parse::<u64>().ok())
                .enumerate()
                // user nice system idle iowait irq softirq steal: skip idle and iowait.
                .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
                .map(|(_, v)| v)
                .sum()
        })
        .unwrap_or(0);
    // /proc reports USER_HZ (100) ticks.
    Duration::from_millis(ticks * 10)
}

/// CPU time of this process, its reaped children, and `extra_pid`.
fn own_tree_cpu(extra_pid: Option<u32>) -> Duration {
    let usage = |who| {
        getrusage(who).map_or(Duration::ZERO, |u| {
            Duration::from_micros(
                (u.user_time().num_microseconds() + u.system_time().num_microseconds()).max(0)
                    as u64,
            )
        })
    };
    let mut total = usage(UsageWho::RUSAGE_SELF) + usage(UsageWho::RUSAGE_CHILDREN);
    if let Some(pid) = extra_pid {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<u64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|f| f.parse().ok())
            .collect();
        total += Duration::from_millis(fields.iter().sum::<u64>() * 10);
    }
    total
}

/// Where a timed section started: wall clock and the process's CPU clocks.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    wall: Instant,
    cpu: Duration,
    user: Duration,
    kernel: Duration,
}

impl Start {
    /// Starts timing now.
    pub fn now() -> Start {
        let (user, kernel) = user_kernel_cpu();
        Start {
            cpu: process_cpu(),
            user,
            kernel,
            wall: Instant::now(),
        }
    }

    /// The sample of `ops` operations done since the start.
    pub fn sample(&self, ops: u64) -> Sample {
        let wall_s = self.wall.elapsed().as_secs_f64();
        let cpu_s = process_cpu().saturating_sub(self.cpu).as_secs_f64();
        let (user, kernel) = user_kernel_cpu();
        Sample {
            ops,
            wall_s,
            cpu_s,
            user_s: Some(user.saturating_sub(self.user).as_secs_f64()),
            kernel_s: Some(kernel.saturating_sub(self.kernel).as_secs_f64()),
            ..Sample::default()
        }
    }
}

/// The result of one repetition of one workload by one client, as a client process prints it
/// (one JSON object on stdout; the Python driver prints the same shape).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sample {
    /// Operations completed in the timed section (commands, fetches, events per subscriber,
    /// connections).
    pub ops: u64,
    /// Wall time of the timed section.
    pub wall_s: f64,
    /// Process CPU time (user + system) during the timed section.
    pub cpu_s: f64,
    /// Median round-trip latency in microseconds (sequential runs).
    #[serde(default)]
    pub p50_us: Option<f64>,
    /// 99th percentile round-trip latency in microseconds (sequential runs).
    #[serde(default)]
    pub p99_us: Option<f64>,
    /// User-mode part of `cpu_s` (clock-tick resolution).
    #[serde(default)]
    pub user_s: Option<f64>,
    /// Kernel part of `cpu_s` (clock-tick resolution).
    #[serde(default)]
    pub kernel_s: Option<f64>,
    /// Peak resident set size of the process (`VmHWM`), KiB.
    #[serde(default)]
    pub peak_rss_kib: Option<f64>,
    /// Resident memory added per open connection, KiB (idle-connection runs).
    #[serde(default)]
    pub kib_per_conn: Option<f64>,
    /// Events a subscriber lost because it fell behind (summed over subscribers).
    #[serde(default)]
    pub missed: u64,
}

impl Sample {
    /// Adds p50 and p99 of `latencies` (nanoseconds).
    pub fn with_latencies(mut self, mut latencies: Vec<u64>) -> Sample {
        if !latencies.is_empty() {
            latencies.sort_unstable();
            let at = |q: f64| {
                let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len());
                latencies[i - 1] as f64 / 1e3
            };
            self.p50_us = Some(at(0.50));
            self.p99_us = Some(at(0.99));
        }
        self
    }

    /// Adds this process's peak RSS.
    pub fn with_peak_rss(mut self) -> Sample {
        self.peak_rss_kib = Some(proc_status_kib("VmHWM") as f64);
        self
    }
}

/// Median, minimum and maximum of one figure over the repetitions.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Summary {
    /// Median (the mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Number of repetitions.
    pub n: usize,
}

impl Summary {
    /// Summarizes `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Summary> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Summary {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }
}

/// Memory per idle connection for the async clients: opens one connection (the process's
/// baseline), then `n` more with `connect`, waits for them to settle, and divides the growth
/// of resident memory by `n`.
pub async fn idle_connections<C, E, F>(
    n: u64,
    mut connect: impl FnMut() -> F,
) -> std::result::Result<Sample, E>
where
    F: std::future::Future<Output = std::result::Result<C, E>>,
{
    let mut conns = vec![connect().await?];
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = proc_status_kib("VmRSS");
    let start = Start::now();
    for _ in 0..n {
        conns.push(connect().await?);
    }
    let mut sample = start.sample(n);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = proc_status_kib("VmRSS");
    sample.kib_per_conn = Some(after.saturating_sub(before) as f64 / n as f64);
    drop(conns);
    Ok(sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_and_percentiles() {
        let s = Summary::of(&[3.0, 1.0, 2.0, 10.0]).expect("values");
        assert_eq!((s.median, s.min, s.max, s.n), (2.5, 1.0, 10.0, 4));
        assert!(Summary::of(&[]).is_none());
        let lat: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        let s = Sample::default().with_latencies(lat);
        assert_eq!(s.p50_us, Some(50.0));
        assert_eq!(s.p99_us, Some(99.0));
    }

    #[test]
    fn reads_own_memory_and_cpu() {
        assert!(proc_status_kib("VmRSS") > 0);
        let a = process_cpu();
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        assert!(process_cpu() > a);
        let s = Start::now().sample(1);
        assert!(s.user_s.is_some() && s.kernel_s.is_some());
    }
}
