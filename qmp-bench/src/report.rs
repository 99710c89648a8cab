//! Turns samples into the report: rows of figures (median, min, max per client), ratios
//! ours/baseline, the targets of issue 5, a Markdown table, and the JSON document.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::bench::{Group, Item, Results, Target};
use crate::measure::{Sample, Summary};
use crate::workload::{Client, Workload};

/// One figure for every client that measured it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Stable key, e.g. `seq.qemu.rate`, `events10.server.rate`.
    pub id: String,
    /// The workload, in words.
    pub workload: String,
    /// `QEMU`, `server` or `-`.
    pub target: String,
    /// The figure and its unit, e.g. `commands/s`.
    pub metric: String,
    /// Whether a larger or a smaller value is better (or neither, for counts).
    pub better: Better,
    /// Per client (by table column name): the summary and every repetition's value.
    pub values: BTreeMap<String, Cell>,
    /// `ours/raw`, `ours/qapi-rs`, `ours/qemu.qmp`: ratio of medians.
    pub ratios: BTreeMap<String, f64>,
}

/// Which direction of a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Larger values are better (rates).
    Higher,
    /// Smaller values are better (times, CPU, memory).
    Lower,
    /// A count, for context.
    Neither,
}

/// One client's value of one figure.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// Median, min, max over the repetitions.
    #[serde(flatten)]
    pub summary: Summary,
    /// Every repetition's value.
    pub samples: Vec<f64>,
}

/// One target of issue 5, checked.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What the target says.
    pub target: String,
    /// The measured value(s) behind the verdict.
    pub measured: String,
    /// Met, missed, or not measured in this run (`None`).
    pub met: Option<bool>,
}

/// The table columns, in order.
pub const COLUMNS: [Client; 4] = [Client::Ours, Client::Raw, Client::QapiRs, Client::Python];

type Extract = fn(&Sample) -> Option<f64>;

struct Metric {
    key: &'static str,
    name: &'static str,
    higher: bool,
    get: Extract,
}

fn metrics(workload: Workload) -> Vec<Metric> {
    let rate: Extract = |s| Some(s.ops as f64 / s.wall_s);
    let m = |key, name, higher, get| Metric {
        key,
        name,
        higher,
        get,
    };
    match workload {
        Workload::Seq => vec![
            m("rate", "commands/s", true, rate),
            m("p50", "p50 latency, µs", false, |s| s.p50_us),
            m("p99", "p99 latency, µs", false, |s| s.p99_us),
            m("cpu", "client CPU per command, µs", false, |s| {
                Some(s.cpu_s / s.ops as f64 * 1e6)
            }),
            m("kernel", "of which in the kernel, µs", false, |s| {
                s.kernel_s.map(|k| k / s.ops as f64 * 1e6)
            }),
        ],
        Workload::Pipe => vec![
            m("rate", "commands/s", true, rate),
            m("cpu", "client CPU per command, µs", false, |s| {
                Some(s.cpu_s / s.ops as f64 * 1e6)
            }),
            m("kernel", "of which in the kernel, µs", false, |s| {
                s.kernel_s.map(|k| k / s.ops as f64 * 1e6)
            }),
            m("rss", "peak RSS, MiB", false, |s| {
                s.peak_rss_kib.map(|k| k / 1024.0)
            }),
        ],
        Workload::Schema => vec![
            m("time", "time per fetch + decode, ms", false, |s| {
                Some(s.wall_s / s.ops as f64 * 1e3)
            }),
            m("cpu", "client CPU per fetch + decode, ms", false, |s| {
                Some(s.cpu_s / s.ops as f64 * 1e3)
            }),
        ],
        Workload::Events => vec![
            m("rate", "events/s per subscriber", true, rate),
            m("cpu", "client CPU per event, ns", false, |s| {
                Some(s.cpu_s / s.ops as f64 * 1e9)
            }),
            m("missed", "events missed (all subscribers)", false, |s| {
                Some(s.missed as f64)
            }),
        ],
        Workload::QemuEvents => vec![
            m("rate", "events/s", true, rate),
            m("cpu", "client CPU per event, µs", false, |s| {
                Some(s.cpu_s / s.ops as f64 * 1e6)
            }),
        ],
        Workload::Idle => vec![m(
            "mem",
            "resident memory per connection, KiB",
            false,
            |s| s.kib_per_conn,
        )],
    }
}

fn target_key(t: Target) -> &'static str {
    match t {
        Target::Qemu => "qemu",
        Target::Server => "server",
        Target::OurServer => "qmp-core-server",
        Target::None => "none",
    }
}

fn item_key(item: &Item) -> String {
    if item.subs > 1 {
        format!("{}{}", item.group.name(), item.subs)
    } else {
        item.group.name().to_string()
    }
}

fn cell(values: Vec<f64>) -> Option<Cell> {
    Some(Cell {
        summary: Summary::of(&values)?,
        samples: values,
    })
}

fn add_ratios(row: &mut Row) {
    let Some(ours) = row
        .values
        .get(Client::Ours.name())
        .map(|c| c.summary.median)
    else {
        return;
    };
    for base in [Client::Raw, Client::QapiRs, Client::Python] {
        if let Some(b) = row.values.get(base.name()) {
            if b.summary.median != 0.0 {
                row.ratios
                    .insert(format!("ours/{}", base.name()), ours / b.summary.median);
            }
        }
    }
}

/// Builds every row of the report.
pub fn rows(results: &Results) -> Vec<Row> {
    let mut rows = Vec::new();
    for (item, samples) in &results.items {
        for metric in metrics(item.workload) {
            let mut row = Row {
                id: format!(
                    "{}.{}.{}",
                    item_key(item),
                    target_key(item.target),
                    metric.key
                ),
                workload: item.label.clone(),
                target: item.target.to_string(),
                metric: metric.name.into(),
                better: if metric.higher {
                    Better::Higher
                } else {
                    Better::Lower
                },
                values: BTreeMap::new(),
                ratios: BTreeMap::new(),
            };
            for (client, list) in samples {
                let values: Vec<f64> = list.iter().filter_map(metric.get).collect();
                if let Some(c) = cell(values) {
                    row.values.insert(client.name().into(), c);
                }
            }
            if metric.key == "missed" && row.values.values().all(|c| c.summary.max == 0.0) {
                continue;
            }
            add_ratios(&mut row);
            rows.push(row);
        }
    }
    // Codegen and build: ours in the qmp-rs column, qapi-rs's counterpart in its column.
    let peer_rows =
        |id: &str, workload: &str, metric: &str, ours: Vec<f64>, peer: Vec<f64>| -> Row {
            let better = if metric.starts_with("lines") || metric.starts_with("generated") {
                Better::Neither
            } else {
                Better::Lower
            };
            let mut row = Row {
                id: id.into(),
                workload: workload.into(),
                target: Target::None.to_string(),
                metric: metric.into(),
                better,
                values: BTreeMap::new(),
                ratios: BTreeMap::new(),
            };
            if let Some(c) = cell(ours) {
                row.values.insert(Client::Ours.name().into(), c);
            }
            if let Some(c) = cell(peer) {
                row.values.insert(Client::QapiRs.name().into(), c);
            }
            add_ratios(&mut row);
            row
        };
    if let Some((ours, peer)) = &results.codegen {
        let label = "codegen, QEMU 10.0.13 QAPI schema (qapi-rs: qapi-codegen)";
        rows.push(peer_rows(
            "codegen.none.time",
            label,
            "parse + check + emit, ms",
            ours.iter().map(|g| g.secs * 1e3).collect(),
            peer.iter().map(|g| g.secs * 1e3).collect(),
        ));
        rows.push(peer_rows(
            "codegen.none.lines",
            label,
            "lines of Rust generated",
            ours.iter().map(|g| g.lines as f64).collect(),
            peer.iter().map(|g| g.lines as f64).collect(),
        ));
    }
    if let Some((ours, peer)) = &results.build {
        let label = "debug build, CARGO_INCREMENTAL=0 (qmp-api vs qapi-qmp 0.15)";
        rows.push(peer_rows(
            "build.none.clean",
            label,
            "clean build with dependencies, s",
            ours.iter().map(|b| b.clean_s).collect(),
            peer.iter().map(|b| b.clean_s).collect(),
        ));
        rows.push(peer_rows(
            "build.none.crate",
            label,
            "rebuild of the crate alone, s",
            ours.iter().map(|b| b.crate_s).collect(),
            peer.iter().map(|b| b.crate_s).collect(),
        ));
        rows.push(peer_rows(
            "build.none.lines",
            label,
            "generated lines",
            ours.iter().map(|b| b.generated_lines as f64).collect(),
            peer.iter().map(|b| b.generated_lines as f64).collect(),
        ));
    }
    rows
}

fn find<'a>(rows: &'a [Row], id: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.id == id)
}

fn median(row: &Row, client: Client) -> Option<f64> {
    row.values.get(client.name()).map(|c| c.summary.median)
}

/// Checks the targets of issue 5 against the rows.
pub fn checks(rows: &[Row]) -> Vec<Check> {
    let mut out = Vec::new();
    // Round trips against QEMU within 3% of the raw client.
    for (id, what) in [
        ("seq.qemu.rate", "sequential"),
        ("pipe.qemu.rate", "pipelined"),
    ] {
        let target = format!("{what} round trips against QEMU within 3% of the raw client");
        out.push(ratio_check(
            rows,
            id,
            target,
            Client::Raw,
            |r| r >= 0.97,
            "of raw's rate",
        ));
    }
    // Client CPU per command.
    for id in [
        "seq.qemu.cpu",
        "pipe.qemu.cpu",
        "seq.server.cpu",
        "pipe.server.cpu",
    ] {
        let (w, t) = id.split_once('.').unwrap_or((id, ""));
        let t = t.trim_end_matches(".cpu");
        out.push(factor_check(
            rows,
            id,
            &format!("{w}/{t}"),
            Client::Python,
            10.0,
        ));
        out.push(factor_check(
            rows,
            id,
            &format!("{w}/{t}"),
            Client::QapiRs,
            2.0,
        ));
    }
    for (id, t) in [
        ("schema.qemu.time", "QEMU"),
        ("schema.server.time", "server"),
    ] {
        let target = format!("schema fetch + typed decode within 10% of raw fetch ({t})");
        out.push(ratio_check(
            rows,
            id,
            target,
            Client::Raw,
            |r| r <= 1.10,
            "of raw's time",
        ));
    }
    let events = find(rows, "events.server.rate").and_then(|r| median(r, Client::Ours));
    out.push(Check {
        target: "at least 1,000,000 typed events/s to one subscriber".into(),
        measured: events.map_or("not measured".into(), |v| format!("{} events/s", num(v))),
        met: events.map(|v| v >= 1e6),
    });
    for (id, t) in [("pipe.qemu.rss", "QEMU"), ("pipe.server.rss", "server")] {
        let v = find(rows, id).and_then(|r| median(r, Client::Ours));
        out.push(Check {
            target: format!("peak RSS of the pipelined run below 15 MiB ({t})"),
            measured: v.map_or("not measured".into(), |v| format!("{} MiB", num(v))),
            met: v.map(|v| v < 15.0),
        });
    }
    let v = find(rows, "idle.server.mem").and_then(|r| median(r, Client::Ours));
    out.push(Check {
        target: "memory per idle connection below 32 KiB".into(),
        measured: v.map_or("not measured".into(), |v| format!("{} KiB", num(v))),
        met: v.map(|v| v < 32.0),
    });
    out
}

fn ratio_check(
    rows: &[Row],
    id: &str,
    target: String,
    base: Client,
    ok: fn(f64) -> bool,
    of: &str,
) -> Check {
    let row = find(rows, id);
    let pair = row.and_then(|r| Some((median(r, Client::Ours)?, median(r, base)?)));
    match (row, pair) {
        (Some(row), Some((ours, b))) => Check {
            target,
            measured: format!(
                "{:.1}% {of} (qmp-rs {} vs {} {}, {})",
                ours / b * 100.0,
                num(ours),
                base.name(),
                num(b),
                row.metric
            ),
            met: Some(ok(ours / b)),
        },
        _ => Check {
            target,
            measured: "not measured".into(),
            met: None,
        },
    }
}

fn factor_check(rows: &[Row], id: &str, what: &str, base: Client, factor: f64) -> Check {
    let target = format!(
        "client CPU per command at least {factor}x lower than {} ({what})",
        base.name()
    );
    let pair = find(rows, id).and_then(|r| Some((median(r, Client::Ours)?, median(r, base)?)));
    match pair {
        Some((ours, b)) => Check {
            target,
            measured: format!(
                "{:.1}x lower (qmp-rs {} µs vs {} {} µs)",
                b / ours,
                num(ours),
                base.name(),
                num(b)
            ),
            met: Some(b / ours >= factor),
        },
        None => Check {
            target,
            measured: "not measured".into(),
            met: None,
        },
    }
}

/// A number for humans: thousands separators for large values, 3 significant digits for
/// small ones.
pub fn num(x: f64) -> String {
    let a = x.abs();
    if a >= 1000.0 {
        crate::bench::thousands(x.round() as u64)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a == 0.0 {
        "0".into()
    } else {
        let digits = (2.0 - a.log10().floor()).clamp(0.0, 12.0) as usize;
        format!("{x:.digits$}")
    }
}

fn cell_text(c: &Cell) -> String {
    if c.summary.n == 1 {
        num(c.summary.median)
    } else {
        format!(
            "{} ({}–{})",
            num(c.summary.median),
            num(c.summary.min),
            num(c.summary.max)
        )
    }
}

/// The Markdown table of every row.
pub fn table(rows: &[Row]) -> String {
    let mut t = String::new();
    let mut header = vec!["workload", "target", "figure"];
    header.extend(COLUMNS.iter().map(|c| c.name()));
    header.extend(["ours/raw", "ours/qapi-rs", "ours/qemu.qmp"]);
    let _ = writeln!(t, "| {} |", header.join(" | "));
    let _ = writeln!(
        t,
        "|{}|",
        header
            .iter()
            .enumerate()
            .map(|(i, _)| if i < 3 { "---" } else { "---:" })
            .collect::<Vec<_>>()
            .join("|")
    );
    let mut last = String::new();
    for row in rows {
        let key = format!("{}/{}", row.workload, row.target);
        let (w, tg) = if key == last {
            (String::new(), String::new())
        } else {
            (row.workload.clone(), row.target.clone())
        };
        last = key;
        let figure = match row.better {
            Better::Higher => format!("{} ↑", row.metric),
            Better::Lower => format!("{} ↓", row.metric),
            Better::Neither => row.metric.clone(),
        };
        let mut cols = vec![w, tg, figure];
        for c in COLUMNS {
            cols.push(row.values.get(c.name()).map_or("n/a".into(), cell_text));
        }
        for base in [Client::Raw, Client::QapiRs, Client::Python] {
            cols.push(
                row.ratios
                    .get(&format!("ours/{}", base.name()))
                    .map_or(String::new(), |r| format!("{r:.2}")),
            );
        }
        let _ = writeln!(t, "| {} |", cols.join(" | "));
    }
    t
}

/// The targets as a Markdown list.
pub fn checks_text(checks: &[Check]) -> String {
    let mut t = String::new();
    let mut unmeasured = 0;
    for c in checks {
        let mark = match c.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => {
                unmeasured += 1;
                continue;
            }
        };
        let _ = writeln!(t, "- **{mark}**: {}: {}", c.target, c.measured);
    }
    if unmeasured > 0 {
        let _ = writeln!(t, "- ({unmeasured} targets not measured in this run)");
    }
    t
}

/// The JSON document: command, machine, configuration, rows, targets, errors and every
/// sample.
pub fn json(results: &Results, rows: &[Row], checks: &[Check], command: &[String]) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        command: &'a [String],
        machine: &'a crate::setup::Machine,
        config: &'a crate::bench::Config,
        rows: &'a [Row],
        targets: &'a [Check],
        errors: &'a [String],
        runs: &'a Results,
    }
    serde_json::to_string_pretty(&Doc {
        command,
        machine: &results.machine,
        config: &results.config,
        rows,
        targets: checks,
        errors: &results.errors,
        runs: results,
    })
    .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Groups that were selected but produced no row (for the summary).
pub fn empty_groups(results: &Results, rows: &[Row]) -> Vec<Group> {
    results
        .config
        .groups
        .iter()
        .copied()
        .filter(|g| !rows.iter().any(|r| r.id.starts_with(g.name())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(num(1_234_567.4), "1,234,567");
        assert_eq!(num(123.4), "123");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(1.234), "1.23");
        assert_eq!(num(0.01234), "0.0123");
        assert_eq!(num(0.5), "0.500");
    }
}
