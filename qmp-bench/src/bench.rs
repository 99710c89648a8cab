//! The bench run: what to measure ([`Config`], [`plan`]), and running it ([`run`]): QEMU and the
//! in-process server in this process, every client in its own processes, repetitions
//! interleaved across clients so that drift hits all of them alike.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::cleanbuild::{self, Build, Subject};
use crate::codegen::{self, Generated};
use crate::measure::{Load, Sample};
use crate::runner::Runner;
use crate::server::Server;
use crate::setup::{self, Machine, Qemu};
use crate::workload::{Client, Job, Workload};

/// Other processes using more than this many CPUs during a part of the run earn a warning.
pub const LOAD_WARNING: f64 = 0.05;

/// A selectable part of the bench (`--only` / `--skip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    /// Sequential round trips.
    Seq,
    /// Pipelined round trips.
    Pipe,
    /// Schema fetch + decode.
    Schema,
    /// Event throughput from the in-process server.
    Events,
    /// Events from QEMU (stop/cont).
    QemuEvents,
    /// Memory per idle connection.
    Idle,
    /// Code generation from the QAPI schema.
    Codegen,
    /// Clean build of qmp-api against qapi-qmp.
    Build,
}

impl Group {
    /// Every group, in report order.
    pub const ALL: [Group; 8] = [
        Group::Seq,
        Group::Pipe,
        Group::Schema,
        Group::Events,
        Group::QemuEvents,
        Group::Idle,
        Group::Codegen,
        Group::Build,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Group::Seq => "seq",
            Group::Pipe => "pipe",
            Group::Schema => "schema",
            Group::Events => "events",
            Group::QemuEvents => "qemu-events",
            Group::Idle => "idle",
            Group::Codegen => "codegen",
            Group::Build => "build",
        }
    }

    /// Parses [`name`](Self::name).
    pub fn parse(s: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.name() == s)
    }
}

/// Where the clients connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// Real QEMU 10.0.2, `-machine none`.
    Qemu,
    /// The in-process server that answers instantly.
    Server,
    /// `qmp_core::server` (our QMP server) answering `query-status` with QEMU's payload, in
    /// the bench process on one core: the cost of our server side, for each client.
    OurServer,
    /// No socket (codegen, build).
    None,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Qemu => "QEMU",
            Target::Server => "server",
            Target::OurServer => "qmp-core server",
            Target::None => "-",
        })
    }
}

/// What to run.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Short smoke run: small counts, one repetition, no build row unless asked for.
    pub quick: bool,
    /// Repetitions of each client workload (and of the codegen row).
    pub reps: usize,
    /// Repetitions of the build row.
    pub build_reps: usize,
    /// Groups to run.
    pub groups: Vec<Group>,
    /// Clients to run.
    pub clients: Vec<Client>,
    /// Run the Rust async clients on a two-worker multi-thread runtime.
    pub multi_thread: bool,
    /// Event buffer for our client in the event rows (`None`: library default).
    pub event_buffer: Option<usize>,
    /// Pin the servers (QEMU, in-process server) to the last CPU and the client processes to
    /// the first (when there are at least two).
    pub pin: bool,
    /// Before each part, wait (up to 10 minutes) until other processes leave the machine idle.
    pub wait_quiet: bool,
}

/// One client workload of the plan, run by several clients.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// Its group.
    pub group: Group,
    /// Where the clients connect.
    pub target: Target,
    /// What each client does.
    pub workload: Workload,
    /// Operation count.
    pub n: u64,
    /// Operation count for the Python client, when smaller (it is too slow for the full count).
    pub python_n: u64,
    /// Event subscribers.
    pub subs: usize,
    /// Clients that can run it.
    pub clients: Vec<Client>,
    /// Human description.
    pub label: String,
}

/// The client workloads to run for `config`.
pub fn plan(config: &Config) -> Vec<Item> {
    let q = config.quick;
    let pick = |full: u64, quick: u64| if q { quick } else { full };
    let all = Client::ALL.to_vec();
    let mut items = Vec::new();
    let mut add = |group: Group,
                   target: Target,
                   workload: Workload,
                   n: u64,
                   python_n: u64,
                   subs: usize,
                   clients: &[Client],
                   label: String| {
        if !config.groups.contains(&group) {
            return;
        }
        let clients: Vec<Client> = clients
            .iter()
            .copied()
            .filter(|c| config.clients.contains(c))
            .collect();
        if clients.is_empty() {
            return;
        }
        items.push(Item {
            group,
            target,
            workload,
            n,
            python_n,
            subs,
            clients,
            label,
        });
    };
    for target in [Target::Qemu, Target::Server, Target::OurServer] {
        let n = pick(20_000, 500);
        add(
            Group::Seq,
            target,
            Workload::Seq,
            n,
            n,
            1,
            &all,
            format!("{} × query-status, sequential", thousands(n)),
        );
    }
    for target in [Target::Qemu, Target::Server, Target::OurServer] {
        let n = pick(20_000, 2_000);
        add(
            Group::Pipe,
            target,
            Workload::Pipe,
            n,
            n,
            1,
            &all,
            format!("{} × query-status, all in flight", thousands(n)),
        );
    }
    for target in [Target::Qemu, Target::Server] {
        let n = pick(50, 3);
        add(
            Group::Schema,
            target,
            Workload::Schema,
            n,
            n,
            1,
            &all,
            format!("{n} × query-qmp-schema fetched + decoded"),
        );
    }
    let (n, py) = (pick(1_000_000, 20_000), pick(100_000, 5_000));
    add(
        Group::Events,
        Target::Server,
        Workload::Events,
        n,
        py,
        1,
        &all,
        format!(
            "{} events streamed, 1 subscriber (qemu.qmp: {})",
            thousands(n),
            thousands(py)
        ),
    );
    let py10 = pick(20_000, 1_000);
    add(
        Group::Events,
        Target::Server,
        Workload::Events,
        n,
        py10,
        10,
        &[Client::Ours, Client::Python],
        format!(
            "{} events streamed, 10 subscribers (qemu.qmp: {})",
            thousands(n),
            thousands(py10)
        ),
    );
    let n = pick(20_000, 200);
    add(
        Group::QemuEvents,
        Target::Qemu,
        Workload::QemuEvents,
        n,
        n,
        1,
        &all,
        format!(
            "{} × stop+cont pipelined: {} STOP/RESUME events",
            thousands(n / 2),
            thousands(n)
        ),
    );
    let n = pick(1_000, 50);
    add(
        Group::Idle,
        Target::Server,
        Workload::Idle,
        n,
        n,
        1,
        &all,
        format!("{} idle connections", thousands(n)),
    );
    items
}

/// `12345` → `12,345`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Everything measured.
#[derive(Debug, Serialize)]
pub struct Results {
    /// The machine and software versions.
    pub machine: Machine,
    /// What was run.
    pub config: Config,
    /// Client workloads with each client's samples (one per repetition).
    pub items: Vec<(Item, BTreeMap<Client, Vec<Sample>>)>,
    /// Codegen runs: ours, qapi-codegen.
    pub codegen: Option<(Vec<GeneratedOut>, Vec<GeneratedOut>)>,
    /// Build runs: qmp-api, qapi-qmp.
    pub build: Option<(Vec<BuildOut>, Vec<BuildOut>)>,
    /// Failures (a client that could not run a workload); the rest of the run goes on.
    pub errors: Vec<String>,
    /// Per part (by label): the most CPUs' worth of time other processes used during one of
    /// its kept repetitions. Anything but ~0 means the machine was shared and the figures are
    /// skewed.
    pub foreign_load: Vec<(String, f64)>,
}

/// A [`Generated`] as reported.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct GeneratedOut {
    /// Seconds.
    pub secs: f64,
    /// Lines generated.
    pub lines: usize,
}

impl From<Generated> for GeneratedOut {
    fn from(g: Generated) -> Self {
        GeneratedOut {
            secs: g.secs,
            lines: g.lines,
        }
    }
}

/// A [`Build`] as reported.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BuildOut {
    /// Clean build, seconds.
    pub clean_s: f64,
    /// Crate-only rebuild, seconds.
    pub crate_s: f64,
    /// Generated lines.
    pub generated_lines: usize,
}

impl From<Build> for BuildOut {
    fn from(b: Build) -> Self {
        BuildOut {
            clean_s: b.clean_s,
            crate_s: b.crate_s,
            generated_lines: b.generated_lines,
        }
    }
}

/// Runs the plan for `config`, reporting progress on stderr.
pub fn run(config: Config) -> Result<Results, String> {
    let items = plan(&config);
    let scratch = std::env::temp_dir().join(format!("qmp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let result = run_in(config, items, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn run_in(config: Config, items: Vec<Item>, scratch: &std::path::Path) -> Result<Results, String> {
    let target = setup::target_dir();
    let needs_python = items.iter().any(|i| i.clients.contains(&Client::Python));
    let python = if needs_python {
        Some(setup::python_venv(&target.join("bench-venv"))?)
    } else {
        None
    };
    let machine = Machine::probe(python.as_deref());
    // Servers on the last CPU (QEMU and the server thread inherit this thread's affinity),
    // clients on the first: every run sees the same placement.
    let client_cpu = if config.pin && machine.cpus >= 2 {
        match crate::measure::pin_to_cpu(machine.cpus - 1) {
            Ok(()) => Some(0),
            Err(e) => {
                eprintln!("not pinning to CPUs: {e}");
                None
            }
        }
    } else {
        None
    };
    let runner = Runner {
        exe: std::env::current_exe().map_err(|e| e.to_string())?,
        python,
        driver: setup::python_driver(),
    };

    // QEMU runs for the whole bench; the server replays QEMU's own replies.
    let needs_sockets = !items.is_empty();
    let qemu = if needs_sockets {
        let q = Qemu::start(&setup::qemu_binary(), &scratch.join("qemu.sock")).map_err(|e| {
            format!(
                "starting QEMU ({}): {e}; run scripts/install-qemu.sh",
                setup::qemu_binary().display()
            )
        })?;
        Some(q)
    } else {
        None
    };
    let server = match &qemu {
        Some(q) => {
            let replies = q
                .capture_replies()
                .map_err(|e| format!("capturing QEMU's replies: {e}"))?;
            Some(Server::start(&scratch.join("server.sock"), replies).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let ours = match &server {
        Some(s) => Some(
            crate::server::OurServer::start(&scratch.join("ours.sock"), s.replies())
                .map_err(|e| e.to_string())?,
        ),
        None => None,
    };

    let mut errors = Vec::new();
    let mut foreign_load = Vec::new();
    let mut measured = Vec::new();
    let qemu_pid = qemu.as_ref().map(Qemu::pid);
    for item in items {
        let socket: PathBuf = match (item.target, &qemu, &server, &ours) {
            (Target::Qemu, Some(q), _, _) => q.socket().to_path_buf(),
            (Target::Server, _, Some(s), _) => s.path().to_path_buf(),
            (Target::OurServer, _, _, Some(o)) => o.path().to_path_buf(),
            _ => continue,
        };
        let ctx = ItemRun {
            runner: &runner,
            config: &config,
            socket,
            client_cpu,
            qemu_pid,
        };
        let run = ctx.run(&item);
        errors.extend(run.errors);
        foreign_load.push((format!("{} [{}]", item.label, item.target), run.foreign));
        measured.push((item, run.samples));
    }
    drop(server);
    drop(qemu);

    let attempts = if config.wait_quiet { 3 } else { 1 };
    let codegen = if config.groups.contains(&Group::Codegen) {
        let (c, load) = quiet_attempts(attempts, config.wait_quiet, None, || {
            let mut errs = Vec::new();
            let c = run_codegen(&config, &mut errs);
            (c, errs)
        });
        foreign_load.push(("codegen".into(), load));
        errors.extend(c.1);
        c.0
    } else {
        None
    };
    let build = if config.groups.contains(&Group::Build) {
        // Each build is retried on its own (see run_build).
        let (b, load) = quiet_attempts(1, false, None, || {
            let mut errs = Vec::new();
            let b = run_build(&config, &target, &mut errs);
            (b, errs)
        });
        foreign_load.push(("build".into(), load));
        errors.extend(b.1);
        b.0
    } else {
        None
    };
    Ok(Results {
        machine,
        config,
        items: measured,
        codegen,
        build,
        errors,
        foreign_load,
    })
}

/// What one part of the plan needs to run.
struct ItemRun<'a> {
    runner: &'a Runner,
    config: &'a Config,
    socket: PathBuf,
    client_cpu: Option<usize>,
    qemu_pid: Option<u32>,
}

/// One part's samples, failures, and the most load other processes put on the machine during
/// one of its (kept) repetitions.
struct ItemOutcome {
    samples: BTreeMap<Client, Vec<Sample>>,
    errors: Vec<String>,
    foreign: f64,
}

impl ItemRun<'_> {
    /// Runs one repetition; with `--wait-quiet`, first waits for quiet, and runs it again
    /// (up to 4 more times) when other processes used the CPUs meanwhile.
    fn run_job(&self, job: &Job) -> (Result<Sample, String>, f64) {
        let attempts = if self.config.wait_quiet { 5 } else { 1 };
        quiet_attempts(attempts, self.config.wait_quiet, self.qemu_pid, || {
            self.runner.run(job)
        })
    }

    fn run(&self, item: &Item) -> ItemOutcome {
        eprintln!("{} [{}]", item.label, item.target);
        let mut foreign: f64 = 0.0;
        let mut samples: BTreeMap<Client, Vec<Sample>> = BTreeMap::new();
        let mut errors = Vec::new();
        let mut failed: Vec<Client> = Vec::new();
        for rep in 0..self.config.reps {
            for &client in &item.clients {
                if failed.contains(&client) {
                    continue;
                }
                let job = Job {
                    client,
                    workload: item.workload,
                    socket: self.socket.clone(),
                    n: if client == Client::Python {
                        item.python_n
                    } else {
                        item.n
                    },
                    subs: item.subs,
                    event_buffer: self.config.event_buffer,
                    multi_thread: self.config.multi_thread,
                    // A multi-thread runtime gets every CPU.
                    cpu: self.client_cpu.filter(|_| !self.config.multi_thread),
                };
                let (result, load) = self.run_job(&job);
                foreign = foreign.max(load);
                match result {
                    Ok(sample) => {
                        eprintln!(
                            "  rep {} {:<9} {:>10.4} s wall {:>10.4} s cpu",
                            rep + 1,
                            client.name(),
                            sample.wall_s,
                            sample.cpu_s
                        );
                        samples.entry(client).or_default().push(sample);
                    }
                    Err(e) => {
                        eprintln!("  {e}");
                        errors.push(format!("{} [{}]: {e}", item.label, item.target));
                        failed.push(client);
                    }
                }
            }
        }
        ItemOutcome {
            samples,
            errors,
            foreign,
        }
    }
}

/// Runs `f` (after waiting for quiet when asked), again while other processes disturbed it,
/// `attempts` times at most. Returns the last result and the load others put on the machine.
fn quiet_attempts<T>(
    attempts: usize,
    wait: bool,
    extra_pid: Option<u32>,
    mut f: impl FnMut() -> T,
) -> (T, f64) {
    let mut attempt = 1;
    loop {
        if wait {
            wait_quiet(extra_pid);
        }
        let load = Load::sample(extra_pid);
        let out = f();
        let foreign = load.foreign_cpus_since(extra_pid);
        if foreign <= LOAD_WARNING || attempt >= attempts {
            if foreign > LOAD_WARNING {
                eprintln!("    warning: other processes used {foreign:.2} CPUs meanwhile");
            }
            return (out, foreign);
        }
        eprintln!("    other processes used {foreign:.2} CPUs meanwhile: running it again");
        attempt += 1;
    }
}

/// Waits until other processes used less than [`LOAD_WARNING`] CPUs over half a second, for at
/// most 10 minutes.
fn wait_quiet(extra_pid: Option<u32>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    let mut said = false;
    while std::time::Instant::now() < deadline {
        let load = Load::sample(extra_pid);
        std::thread::sleep(std::time::Duration::from_millis(500));
        let foreign = load.foreign_cpus_since(extra_pid);
        if foreign < LOAD_WARNING {
            return;
        }
        if !said {
            eprintln!("waiting for the machine to be quiet (others use {foreign:.2} CPUs)");
            said = true;
        }
    }
    eprintln!("still busy after 10 minutes: going on");
}

type CodegenRuns = (Vec<GeneratedOut>, Vec<GeneratedOut>);

fn run_codegen(config: &Config, errors: &mut Vec<String>) -> Option<CodegenRuns> {
    let root = setup::qapi_schema_root();
    if !root.is_file() {
        errors.push(format!("codegen: {} not found", root.display()));
        return None;
    }
    eprintln!("codegen: QEMU 10.0.13 schema");
    let out =
        std::env::temp_dir().join(format!("qmp-bench-qapi-codegen-{}.rs", std::process::id()));
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    // One unmeasured round first: file cache and allocator warm for both.
    let _ = codegen::ours(&root);
    let _ = codegen::qapi_codegen(&root, &out);
    for rep in 0..config.reps {
        match codegen::ours(&root) {
            Ok(g) => ours.push(g.into()),
            Err(e) => errors.push(format!("codegen (qmp-codegen): {e}")),
        }
        match codegen::qapi_codegen(&root, &out) {
            Ok(g) => peer.push(g.into()),
            Err(e) => errors.push(format!("codegen (qapi-codegen): {e}")),
        }
        if let (Some(a), Some(b)) = (ours.last(), peer.last()) {
            let (a, b): (&GeneratedOut, &GeneratedOut) = (a, b);
            eprintln!(
                "  rep {} qmp-codegen {:.3} s, qapi-codegen {:.3} s",
                rep + 1,
                a.secs,
                b.secs
            );
        }
    }
    let _ = std::fs::remove_file(&out);
    Some((ours, peer))
}

type BuildRuns = (Vec<BuildOut>, Vec<BuildOut>);

fn run_build(
    config: &Config,
    target: &std::path::Path,
    errors: &mut Vec<String>,
) -> Option<BuildRuns> {
    let dir = target.join("bench-build");
    // Both crates are built as a user's crate would build them: as the dependency of a fresh
    // project outside any workspace (so our workspace's profile settings do not apply).
    let peer_manifest = match cleanbuild::prepare_project(
        &dir.join("qapi-qmp-project"),
        "qapi-qmp-clean-build",
        "qapi-qmp = \"=0.15.0\"",
        "qapi_qmp",
    ) {
        Ok(m) => m,
        Err(e) => {
            errors.push(format!("build: preparing the qapi-qmp project: {e}"));
            return None;
        }
    };
    let ours_path = setup::workspace_root().join("qmp-api");
    let ours_manifest = match cleanbuild::prepare_project(
        &dir.join("qmp-api-project"),
        "qmp-api-clean-build",
        &format!(
            "qmp-api = {{ path = {:?} }}",
            ours_path.display().to_string()
        ),
        "qmp_api",
    ) {
        Ok(m) => m,
        Err(e) => {
            errors.push(format!("build: preparing the qmp-api project: {e}"));
            return None;
        }
    };
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for rep in 0..config.build_reps {
        eprintln!("build: rep {}", rep + 1);
        let attempts = if config.wait_quiet { 5 } else { 1 };
        let measure = |subject, manifest: &std::path::Path, dir: std::path::PathBuf| {
            quiet_attempts(attempts, config.wait_quiet, None, || {
                cleanbuild::measure(subject, manifest, &dir)
            })
            .0
        };
        match measure(Subject::QmpApi, &ours_manifest, dir.join("target-qmp-api")) {
            Ok(b) => {
                eprintln!(
                    "  qmp-api  clean {:.1} s, crate {:.1} s",
                    b.clean_s, b.crate_s
                );
                ours.push(b.into());
            }
            Err(e) => errors.push(format!("build (qmp-api): {e}")),
        }
        match measure(
            Subject::QapiQmp,
            &peer_manifest,
            dir.join("target-qapi-qmp"),
        ) {
            Ok(b) => {
                eprintln!(
                    "  qapi-qmp clean {:.1} s, crate {:.1} s",
                    b.clean_s, b.crate_s
                );
                peer.push(b.into());
            }
            Err(e) => errors.push(format!("build (qapi-qmp): {e}")),
        }
    }
    Some((ours, peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_respects_groups_and_clients() {
        let config = Config {
            quick: true,
            reps: 1,
            build_reps: 1,
            groups: vec![Group::Events],
            clients: vec![Client::Ours, Client::Raw],
            multi_thread: false,
            event_buffer: None,
            pin: false,
            wait_quiet: false,
        };
        let items = plan(&config);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].clients, vec![Client::Ours, Client::Raw]);
        assert_eq!(items[1].clients, vec![Client::Ours]);
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
    }
}
