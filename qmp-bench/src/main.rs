//! `qmp-bench`: the QMP stack measured side by side with a raw client, qapi-rs and qemu.qmp,
//! in the same run, against real QEMU and against an in-process server that answers
//! instantly. Prints a Markdown table (median, min and max of the repetitions, and ratios
//! ours/baseline) and the targets of issue 5; `--json FILE` writes the same figures as JSON.
//!
//! Run it with `scripts/bench` (release build); see BENCHMARKS.md for what each figure means
//! and what limits it.

mod bench;
mod child;
mod cleanbuild;
mod codegen;
mod measure;
mod ours;
mod qapi_rs;
mod raw;
mod report;
mod runner;
mod server;
mod setup;
mod workload;

use std::path::PathBuf;

use bench::{Config, Group};
use workload::Client;

const USAGE: &str = "\
usage: qmp-bench [OPTIONS]

Measures qmp-rs against a raw socket client, qapi-rs and qemu.qmp, against QEMU 10.0.2
(-machine none) and an in-process server, and prints a Markdown table.

options:
  --quick            short smoke run (small counts, 1 repetition; no build row unless --only)
  --json FILE        also write the figures (and every sample) as JSON
  --only LIST        run only these groups (comma-separated)
  --skip LIST        skip these groups
  --clients LIST     run only these clients (qmp-rs, raw, qapi-rs, qemu.qmp)
  --reps N           repetitions per figure (default 5; --quick: 1)
  --build-reps N     repetitions of the build row (default 3; --quick: 1)
  --multi-thread     run the Rust async clients on a 2-worker tokio runtime
                     (default: current-thread)
  --pin              pin servers (QEMU, in-process server) to the last CPU and clients
                     to the first (default: the kernel places them; see BENCHMARKS.md)
  --wait-quiet       before each part, wait (up to 10 min) until no other process is
                     using the CPUs; the run warns about other load either way
  --event-buffer N   per-subscriber event buffer of qmp-rs in the event rows
                     (default: the library default)
  -h, --help         this text

groups: seq, pipe, schema, events, qemu-events, idle, codegen, build
";

struct Args {
    config: Config,
    json: Option<PathBuf>,
}

fn parse_list<T>(s: &str, parse: fn(&str) -> Option<T>, what: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| parse(x.trim()).ok_or_else(|| format!("unknown {what} `{x}`")))
        .collect()
}

fn parse_args(args: &[String]) -> Result<Option<Args>, String> {
    let mut quick = false;
    let mut json = None;
    let mut only: Option<Vec<Group>> = None;
    let mut skip: Vec<Group> = Vec::new();
    let mut clients = Client::ALL.to_vec();
    let mut reps = None;
    let mut build_reps = None;
    let mut multi_thread = false;
    let mut event_buffer = None;
    let mut pin = false;
    let mut wait_quiet = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--quick" => quick = true,
            "--multi-thread" => multi_thread = true,
            "--pin" => pin = true,
            "--wait-quiet" => wait_quiet = true,
            "--json" => json = Some(PathBuf::from(value()?)),
            "--only" => only = Some(parse_list(value()?, Group::parse, "group")?),
            "--skip" => skip = parse_list(value()?, Group::parse, "group")?,
            "--clients" => clients = parse_list(value()?, Client::parse, "client")?,
            "--reps" => reps = Some(value()?.parse::<usize>().map_err(|e| e.to_string())?),
            "--build-reps" => {
                build_reps = Some(value()?.parse::<usize>().map_err(|e| e.to_string())?)
            }
            "--event-buffer" => {
                event_buffer = Some(value()?.parse::<usize>().map_err(|e| e.to_string())?)
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let mut groups = match &only {
        Some(list) => list.clone(),
        // The build row takes minutes: a quick run leaves it out unless asked for.
        None if quick => Group::ALL
            .into_iter()
            .filter(|g| *g != Group::Build)
            .collect(),
        None => Group::ALL.to_vec(),
    };
    groups.retain(|g| !skip.contains(g));
    groups.sort();
    Ok(Some(Args {
        config: Config {
            quick,
            reps: reps.unwrap_or(if quick { 1 } else { 5 }).max(1),
            build_reps: build_reps.unwrap_or(if quick { 1 } else { 3 }).max(1),
            groups,
            clients,
            multi_thread,
            event_buffer,
            pin,
            wait_quiet,
        },
        json,
    }))
}

/// `qmp-bench serve SOCKET`: runs the in-process server alone until killed, for profiling a
/// client by hand (`qmp-bench child ... --socket SOCKET` under valgrind, say). It starts QEMU
/// once to capture the replies it replays.
fn serve(args: &[String]) -> i32 {
    let [socket] = args else {
        eprintln!("usage: qmp-bench serve SOCKET");
        return 2;
    };
    let dir = std::env::temp_dir().join(format!("qmp-bench-serve-{}", std::process::id()));
    let replies = std::fs::create_dir_all(&dir)
        .and_then(|()| setup::Qemu::start(&setup::qemu_binary(), &dir.join("qemu.sock")))
        .and_then(|qemu| qemu.capture_replies());
    let _ = std::fs::remove_dir_all(&dir);
    let replies = match replies {
        Ok(r) => r,
        Err(e) => {
            eprintln!("qmp-bench serve: capturing QEMU's replies: {e}");
            return 1;
        }
    };
    match server::Server::start(std::path::Path::new(socket), replies) {
        Ok(_server) => {
            eprintln!("serving QMP on {socket}; stop with Ctrl-C");
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            eprintln!("qmp-bench serve: {e}");
            1
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    match argv.get(1).map(String::as_str) {
        Some("child") => std::process::exit(child::main(&argv[2..])),
        Some("serve") => std::process::exit(serve(&argv[2..])),
        _ => {}
    }
    let args = match parse_args(&argv[1..]) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("qmp-bench: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let results = match bench::run(args.config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("qmp-bench: {e}");
            std::process::exit(1);
        }
    };
    let rows = report::rows(&results);
    let checks = report::checks(&rows);
    let m = &results.machine;
    println!(
        "\nqmp-bench: {} × {}, {:.0} GiB, Linux {}; {}; {}; {}; qemu.qmp {}; qapi-rs {}",
        m.cpus, m.cpu, m.memory_gib, m.kernel, m.rustc, m.qemu, m.python, m.qemu_qmp, m.qapi_rs
    );
    println!(
        "each cell: median (min–max) of {} repetitions{}; ratios: ours/baseline of the medians; ↑/↓: higher/lower is better\n",
        results.config.reps,
        if results.config.quick { ", quick run" } else { "" }
    );
    print!("{}", report::table(&rows));
    println!("\ntargets (issue 5):\n");
    print!("{}", report::checks_text(&checks));
    for g in report::empty_groups(&results, &rows) {
        println!("- group `{}` produced no figures", g.name());
    }
    let busy: Vec<_> = results
        .foreign_load
        .iter()
        .filter(|(_, l)| *l > bench::LOAD_WARNING)
        .collect();
    if !busy.is_empty() {
        println!("\nwarning: the machine was shared; other processes used CPU during:");
        for (label, load) in busy {
            println!("- {label}: {load:.2} CPUs");
        }
    }
    if !results.errors.is_empty() {
        println!("\nerrors:");
        for e in &results.errors {
            println!("- {e}");
        }
    }
    if let Some(path) = &args.json {
        let doc = report::json(&results, &rows, &checks, &argv);
        if let Err(e) = std::fs::write(path, doc) {
            eprintln!("qmp-bench: writing {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    if !results.errors.is_empty() {
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options() {
        let a = parse_args(&args("--quick --skip codegen --json out.json"))
            .expect("valid")
            .expect("not help");
        assert!(a.config.quick);
        assert_eq!(a.config.reps, 1);
        assert!(!a.config.groups.contains(&Group::Build));
        assert!(!a.config.groups.contains(&Group::Codegen));
        assert_eq!(a.json, Some(PathBuf::from("out.json")));
        let a = parse_args(&args("--quick --only build,seq --clients ours,raw"))
            .expect("valid")
            .expect("not help");
        assert_eq!(a.config.groups, vec![Group::Seq, Group::Build]);
        assert_eq!(a.config.clients, vec![Client::Ours, Client::Raw]);
        assert!(parse_args(&args("--only nope")).is_err());
        assert!(parse_args(&args("--help")).expect("valid").is_none());
    }
}
