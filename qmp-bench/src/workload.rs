//! The clients, the workloads, and a [`Job`]: one repetition of one workload by one client,
//! passed to a client process on its command line.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// A QMP client under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Client {
    /// Our stack: `qmp_api::Qmp` over `qmp_core::Client`.
    Ours,
    /// The raw client: plain socket, newline JSON, `serde_json::Value`, no library.
    Raw,
    /// The `qapi` crate (qapi-rs) with its tokio client.
    QapiRs,
    /// The Python `qemu.qmp` package.
    Python,
}

impl Client {
    /// Every client, in table order.
    pub const ALL: [Client; 4] = [Client::Ours, Client::Raw, Client::QapiRs, Client::Python];

    /// The name used in tables and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Client::Ours => "qmp-rs",
            Client::Raw => "raw",
            Client::QapiRs => "qapi-rs",
            Client::Python => "qemu.qmp",
        }
    }

    /// Parses [`name`](Self::name) (also `ours`, `qapi`, `python`).
    pub fn parse(s: &str) -> Option<Client> {
        match s {
            "qmp-rs" | "ours" => Some(Client::Ours),
            "raw" => Some(Client::Raw),
            "qapi-rs" | "qapi" => Some(Client::QapiRs),
            "qemu.qmp" | "python" | "py" => Some(Client::Python),
            _ => None,
        }
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a client process does in its timed section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// `n` × `query-status`, each awaited before the next; latencies recorded.
    Seq,
    /// `n` × `query-status`, all in flight at once.
    Pipe,
    /// `n` × `query-qmp-schema`, each decoded (typed where the client has types).
    Schema,
    /// The server streams `n` events (`x-bench-events`); `subs` subscribers each receive and
    /// decode every one.
    Events,
    /// `n / 2` × (`stop`, `cont`) pipelined against QEMU; one subscriber receives the `n`
    /// STOP/RESUME events QEMU emits.
    QemuEvents,
    /// Open `n` connections and keep them idle; resident memory per connection.
    Idle,
}

impl Workload {
    /// The name used on the command line.
    pub fn arg(self) -> &'static str {
        match self {
            Workload::Seq => "seq",
            Workload::Pipe => "pipe",
            Workload::Schema => "schema",
            Workload::Events => "events",
            Workload::QemuEvents => "qemu-events",
            Workload::Idle => "idle",
        }
    }

    /// Parses [`arg`](Self::arg).
    pub fn parse(s: &str) -> Option<Workload> {
        [
            Workload::Seq,
            Workload::Pipe,
            Workload::Schema,
            Workload::Events,
            Workload::QemuEvents,
            Workload::Idle,
        ]
        .into_iter()
        .find(|w| w.arg() == s)
    }
}

/// One repetition of one workload by one client.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Which client runs.
    pub client: Client,
    /// What it does.
    pub workload: Workload,
    /// The QMP socket (QEMU's or the in-process server's).
    pub socket: PathBuf,
    /// Operation count (see [`Workload`]).
    pub n: u64,
    /// Event subscribers ([`Workload::Events`]).
    pub subs: usize,
    /// Per-subscriber event buffer for our client (`None`: the library default).
    pub event_buffer: Option<usize>,
    /// Run the Rust async clients on a multi-thread tokio runtime instead of a current-thread
    /// one.
    pub multi_thread: bool,
    /// Pin the client process to this CPU.
    pub cpu: Option<usize>,
}

impl Job {
    /// The arguments that [`Job::parse`] reads back (after the subcommand).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--client".to_string(),
            self.client.name().to_string(),
            "--workload".into(),
            self.workload.arg().into(),
            "--socket".into(),
            self.socket.display().to_string(),
            "--n".into(),
            self.n.to_string(),
            "--subs".into(),
            self.subs.to_string(),
        ];
        if let Some(b) = self.event_buffer {
            args.extend(["--event-buffer".to_string(), b.to_string()]);
        }
        if self.multi_thread {
            args.push("--multi-thread".into());
        }
        if let Some(cpu) = self.cpu {
            args.extend(["--cpu".to_string(), cpu.to_string()]);
        }
        args
    }

    /// Parses the arguments written by [`to_args`](Self::to_args).
    pub fn parse(args: &[String]) -> Result<Job, String> {
        let mut job = Job {
            client: Client::Ours,
            workload: Workload::Seq,
            socket: PathBuf::new(),
            n: 0,
            subs: 1,
            event_buffer: None,
            multi_thread: false,
            cpu: None,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if flag == "--multi-thread" {
                job.multi_thread = true;
                continue;
            }
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || value.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
            match flag.as_str() {
                "--client" => {
                    job.client = Client::parse(value).ok_or(format!("unknown client {value}"))?
                }
                "--workload" => {
                    job.workload =
                        Workload::parse(value).ok_or(format!("unknown workload {value}"))?
                }
                "--socket" => job.socket = PathBuf::from(value),
                "--n" => job.n = number()?,
                "--subs" => job.subs = number()? as usize,
                "--event-buffer" => job.event_buffer = Some(number()? as usize),
                "--cpu" => job.cpu = Some(number()? as usize),
                _ => return Err(format!("unknown argument {flag}")),
            }
        }
        if job.socket.as_os_str().is_empty() || job.n == 0 {
            return Err("--socket and --n are required".into());
        }
        Ok(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_round_trips_through_args() {
        let job = Job {
            client: Client::QapiRs,
            workload: Workload::QemuEvents,
            socket: "/tmp/x.sock".into(),
            n: 20,
            subs: 10,
            event_buffer: Some(64),
            multi_thread: true,
            cpu: Some(0),
        };
        assert_eq!(Job::parse(&job.to_args()), Ok(job));
        for c in Client::ALL {
            assert_eq!(Client::parse(c.name()), Some(c));
        }
    }
}
