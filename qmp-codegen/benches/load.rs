//! Load times: `cargo bench -p qmp-codegen`. Prints a table (median, min, max of several runs)
//! with, per row, the ratio to the baseline: `serde_json::from_str::<Value>` of the normalized
//! QEMU schema, measured in the same run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const RUNS: usize = 25;
const WARMUP: usize = 3;

struct Stats {
    median: Duration,
    min: Duration,
    max: Duration,
}

fn measure(mut f: impl FnMut()) -> Stats {
    for _ in 0..WARMUP {
        f();
    }
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    Stats {
        median: times[RUNS / 2],
        min: times[0],
        max: times[RUNS - 1],
    }
}

fn ms(d: Duration) -> String {
    format!("{:8.2} ms", d.as_secs_f64() * 1e3)
}

fn shared_dir() -> PathBuf {
    match std::env::var_os("QMP_SHARED_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let normalized_path = root.join("schema/qemu-10.0.13.json");
    let text = match std::fs::read_to_string(&normalized_path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {}: {e}", normalized_path.display());
            std::process::exit(1);
        }
    };
    let source = shared_dir().join("qapi/qemu-10.0.13/qapi/qapi-schema.json");

    let baseline = measure(|| {
        let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        std::hint::black_box(v);
    });
    let mut rows: Vec<(String, Stats)> = Vec::new();
    if source.is_file() {
        rows.push((
            "parse+check QEMU 10.0.13 QAPI source".into(),
            measure(|| {
                let s = qmp_codegen::parse_qapi(&source).expect("corpus schema loads");
                std::hint::black_box(s);
            }),
        ));
    } else {
        eprintln!(
            "skipping the QAPI source row: {} not found",
            source.display()
        );
    }
    rows.push((
        "load+check schema/qemu-10.0.13.json".into(),
        measure(|| {
            let s = qmp_codegen::normalized::from_str("qemu-10.0.13.json", &text).expect("loads");
            std::hint::black_box(s);
        }),
    ));
    rows.push((
        "  (the same from the file: load_path)".into(),
        measure(|| {
            let s = qmp_codegen::load_path(&normalized_path).expect("loads");
            std::hint::black_box(s);
        }),
    ));
    // What `qmp_api::schema::builtin` loads: the merged schema, relaxed, without history.
    let merged_path = root.join("schema/qemu.json");
    if let Ok(merged) = qmp_codegen::history::load_path(&merged_path) {
        let builtin = qmp_codegen::normalized::to_string(&merged.lenient_schema());
        rows.push((
            "load+check qmp_api::schema::builtin text".into(),
            measure(|| {
                let s = qmp_codegen::normalized::from_str("builtin", &builtin).expect("loads");
                std::hint::black_box(s);
            }),
        ));
        let model = merged.lenient_schema();
        let args = serde_json::json!({"driver": "qcow2", "node-name": "n",
            "file": {"driver": "file", "filename": "/x", "aio": "native"}});
        rows.push((
            "validate blockdev-add (nested), x1000".into(),
            measure(|| {
                for _ in 0..1000 {
                    let r = qmp_codegen::validate::validate_command(
                        &model,
                        "blockdev-add",
                        Some(&args),
                    );
                    std::hint::black_box(r).expect("valid");
                }
            }),
        ));
    }
    rows.push(("baseline: serde_json::Value of that file".into(), baseline));

    let base = rows.last().map(|r| r.1.median.as_secs_f64()).unwrap_or(1.0);
    println!(
        "{:<42} {:>11} {:>11} {:>11} {:>8}   ({RUNS} runs)",
        "", "median", "min", "max", "ratio"
    );
    for (name, s) in &rows {
        println!(
            "{name:<42} {} {} {} {:>7.1}x",
            ms(s.median),
            ms(s.min),
            ms(s.max),
            s.median.as_secs_f64() / base
        );
    }
}
