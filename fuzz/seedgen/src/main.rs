//! Writes the seed corpora of the fuzz targets (`fuzz/corpus/<target>/`), from real inputs
//! read at seed time, never committed:
//!
//! - QMP traffic captured from a live QEMU (greeting, replies, events, error replies);
//! - QAPI schema sources from the shared corpus (`../shared/qapi` or `$QMP_SHARED_DIR`);
//! - the repository's normalized schemas (`schema/`);
//! - the captured `query-qmp-schema` reply.
//!
//! Large schemas are cut into small, self-contained seeds: for a command or event, the
//! definitions it needs (its closure), which load and check on their own. Every seed is at
//! most the target's `-max_len`.
//!
//! Whatever is unavailable (no QEMU, no shared corpus) is reported on stderr and in
//! `<out>/SEEDS.txt`; built-in seeds (written here, in the shapes the protocol defines) keep
//! every corpus non-empty.
//!
//! Usage: `seedgen --out DIR --schema-dir DIR [--shared DIR] [--qemu PATH]
//!         [--max-len TARGET=BYTES]...`

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const TARGETS: [&str; 7] = [
    "wire_client",
    "greeting",
    "qapi_parser",
    "introspection",
    "normalized",
    "emit",
    "typed_decode",
];

struct Args {
    out: PathBuf,
    schema_dir: PathBuf,
    shared: Option<PathBuf>,
    qemu: Option<PathBuf>,
    max_len: HashMap<String, usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut out = None;
    let mut schema_dir = None;
    let mut shared = None;
    let mut qemu = None;
    let mut max_len = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(value()?)),
            "--schema-dir" => schema_dir = Some(PathBuf::from(value()?)),
            "--shared" => shared = Some(PathBuf::from(value()?)),
            "--qemu" => qemu = Some(PathBuf::from(value()?)),
            "--max-len" => {
                let v = value()?;
                let (t, n) = v.split_once('=').ok_or("--max-len wants TARGET=BYTES")?;
                let n: usize = n.parse().map_err(|_| format!("bad length in {v}"))?;
                max_len.insert(t.to_string(), n);
            }
            "-h" | "--help" => {
                return Err("usage: seedgen --out DIR --schema-dir DIR [--shared DIR] \
                            [--qemu PATH] [--max-len TARGET=BYTES]..."
                    .into())
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        out: out.ok_or("--out is required")?,
        schema_dir: schema_dir.ok_or("--schema-dir is required")?,
        shared,
        qemu,
        max_len,
    })
}

/// The seeds of one target, deduplicated, each at most `max_len` bytes.
struct Corpus {
    max_len: usize,
    seeds: BTreeMap<String, Vec<u8>>,
    seen: HashSet<Vec<u8>>,
}

impl Corpus {
    fn new(max_len: usize) -> Self {
        Corpus {
            max_len,
            seeds: BTreeMap::new(),
            seen: HashSet::new(),
        }
    }

    /// Adds a seed unless it is too long or already present. True if added.
    fn add(&mut self, name: &str, bytes: Vec<u8>) -> bool {
        if bytes.len() > self.max_len {
            return false;
        }
        if !self.seen.insert(bytes.clone()) {
            return false;
        }
        let mut key: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if self.seeds.contains_key(&key) {
            key = format!("{key}-{}", self.seeds.len());
        }
        self.seeds.insert(key, bytes);
        true
    }

    /// Adds a seed cut down to `max_len` (for inputs that are interesting even when cut).
    fn add_truncated(&mut self, name: &str, mut bytes: Vec<u8>) {
        bytes.truncate(self.max_len);
        self.add(name, bytes);
    }

    fn bytes(&self) -> usize {
        self.seeds.values().map(Vec::len).sum()
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("seedgen: {e}");
            return ExitCode::from(2);
        }
    };
    let mut corpora: BTreeMap<&str, Corpus> = TARGETS
        .iter()
        .map(|t| {
            (
                *t,
                Corpus::new(args.max_len.get(*t).copied().unwrap_or(8192)),
            )
        })
        .collect();
    let mut notes: Vec<String> = Vec::new();

    builtin_seeds(&mut corpora);

    // Live QEMU traffic.
    match args.qemu.as_deref() {
        Some(q) if q.is_file() => match capture(q) {
            Ok(cap) => traffic_seeds(&cap, &mut corpora),
            Err(e) => notes.push(format!("QEMU capture failed ({}): {e}", q.display())),
        },
        Some(q) => notes.push(format!(
            "QEMU not found at {}: no captured traffic (wire_client, greeting and typed_decode \
             use the built-in seeds; introspection has no query-qmp-schema seeds)",
            q.display()
        )),
        None => notes.push("no --qemu given: no captured traffic".into()),
    }

    // QAPI sources.
    match args.shared.as_deref() {
        Some(dir) if dir.join("qapi").is_dir() => {
            for root in qapi_roots(&dir.join("qapi")) {
                match qapi_seeds(&root, &mut corpora) {
                    Ok(()) => {}
                    Err(e) => notes.push(format!("{}: {e}", root.display())),
                }
            }
        }
        Some(dir) => notes.push(format!(
            "shared schema corpus not found ({}/qapi): no QAPI source seeds (qapi_parser has \
             the built-in one only; emit has the built-in and normalized-schema seeds)",
            dir.display()
        )),
        None => notes.push("no --shared given: no QAPI source seeds".into()),
    }

    // The repository's normalized schemas: always there.
    let mut normalized_files = 0;
    if let Ok(entries) = std::fs::read_dir(&args.schema_dir) {
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        for p in paths {
            match normalized_seeds(&p, &mut corpora) {
                Ok(()) => normalized_files += 1,
                Err(e) => notes.push(format!("{}: {e}", p.display())),
            }
        }
    }
    if normalized_files == 0 {
        eprintln!(
            "seedgen: no normalized schema could be read from {}",
            args.schema_dir.display()
        );
        return ExitCode::FAILURE;
    }

    // Write out.
    let mut summary = String::new();
    for (target, corpus) in &corpora {
        let dir = args.out.join(target);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("seedgen: cannot create {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
        for (name, bytes) in &corpus.seeds {
            let path = dir.join(format!("seed-{name}"));
            if let Err(e) = std::fs::write(&path, bytes) {
                eprintln!("seedgen: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        let _ = writeln!(
            summary,
            "{target:<14} {:>5} seeds {:>9} bytes (each at most {})",
            corpus.seeds.len(),
            corpus.bytes(),
            corpus.max_len,
        );
    }
    for n in &notes {
        let _ = writeln!(summary, "NOTE: {n}");
    }
    eprint!("{summary}");
    if let Err(e) = std::fs::write(args.out.join("SEEDS.txt"), &summary) {
        eprintln!("seedgen: cannot write SEEDS.txt: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------------
// Built-in seeds: minimal inputs in the shapes the QMP specification and the schema formats
// define, so that every corpus has something even without QEMU or the shared corpus.

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 1, "major": 9}, "package": ""}, "capabilities": ["oob"]}}"#;

fn wire_seed(flags: u8, params: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, params];
    v.extend_from_slice(body);
    v
}

/// wire_client `params` for `calls` calls, event buffer index `buf` and depth 128.
fn params(calls: u8, buf: u8) -> u8 {
    (calls - 1) & 15 | (buf & 3) << 4 | 3 << 6
}

fn builtin_seeds(c: &mut BTreeMap<&str, Corpus>) {
    let lines = [
        r#"{"timestamp": {"seconds": 1700000000, "microseconds": 5}, "event": "STOP"}"#,
        r#"{"return": {"status": "paused", "singlestep": false, "running": false}, "id": 1}"#,
        r#"{"return": [{"name": "type", "type": "string"}], "id": 2}"#,
        r#"{"return": [], "id": 3}"#,
        r#"{"timestamp": {"seconds": 1700000001, "microseconds": 6}, "event": "RESUME"}"#,
        r#"{"return": {"qemu": {"micro": 0, "minor": 1, "major": 9}, "package": ""}, "id": 4}"#,
        r#"{"error": {"class": "CommandNotFound", "desc": "The command x has not been found"}, "id": 5}"#,
        r#"{"event": "JOB_STATUS_CHANGE", "data": {"status": "created", "id": "j0"}, "timestamp": {"seconds": 1, "microseconds": 2}}"#,
    ];
    let body = lines.join("\r\n") + "\r\n";
    let w = c.get_mut("wire_client").expect("target");
    w.add(
        "builtin-session",
        wire_seed(0, params(5, 1), body.as_bytes()),
    );
    w.add(
        "builtin-session-bytewise",
        wire_seed(4, params(5, 0), body.as_bytes()),
    );
    w.add(
        "builtin-session-open",
        wire_seed(16 | 32, params(5, 2), body.as_bytes()),
    );
    w.add(
        "builtin-oob",
        wire_seed(2 | 8, params(12, 1), body.as_bytes()),
    );
    let raw = format!("{GREETING}\r\n{{\"return\": {{}}, \"id\": 0}}\r\n{body}");
    w.add("builtin-raw", wire_seed(1, params(5, 3), raw.as_bytes()));
    let odd = [
        r#"{"return": {}, "id": 1}"#,
        r#"{"return": {}, "id": 1}"#,
        r#"{"return": {}, "id": "1"}"#,
        r#"{"return": {}}"#,
        r#"{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}"#,
        r#"{"return": {}, "error": {"class": "x", "desc": "y"}, "id": 2}"#,
        r#"{"id": 3, "error": "oops"}"#,
        r#"{"event": "STOP", "data": [1]}"#,
        r#"{"data": {}, "timestamp": {"seconds": 1, "microseconds": 1}}"#,
        r#"{"QMP": {"version": {}, "capabilities": []}}"#,
        "{\"return\": {\"a\": \"\\u00e9\\\"}{\"}, \"id\": 4}",
        "{\n  \"return\": [\n    1,\n    2\n  ],\n  \"id\": 5\n}",
    ];
    let body = odd.join("\r\n") + "\r\n";
    w.add(
        "builtin-routing",
        wire_seed(0, params(6, 0), body.as_bytes()),
    );
    w.add(
        "builtin-routing-chunked",
        wire_seed(12, params(6, 1), body.as_bytes()),
    );
    w.add(
        "builtin-garbage",
        wire_seed(0, params(2, 0), b"{\"return\": {}, \"id\": 1}\r\nxyz"),
    );
    w.add(
        "builtin-invalid-utf8",
        wire_seed(0, params(2, 0), b"{\"return\": \"\xff\", \"id\": 1}"),
    );
    w.add(
        "builtin-truncated",
        wire_seed(0, params(2, 0), b"{\"return\": {\"a\": [1, 2"),
    );
    let mut deep = b"{\"return\": ".to_vec();
    deep.extend(std::iter::repeat_n(b'[', 200));
    w.add("builtin-deep", wire_seed(0, params(1, 0), &deep));

    let g = c.get_mut("greeting").expect("target");
    for flags in 0..8u8 {
        let mut v = vec![flags];
        v.extend_from_slice(GREETING.as_bytes());
        g.add(&format!("builtin-{flags}"), v);
    }
    g.add(
        "builtin-no-version",
        b"\x02{\"QMP\": {\"capabilities\": []}}".to_vec(),
    );
    g.add("builtin-not-greeting", b"\x02{\"return\": {}}".to_vec());

    let qapi = concat!(
        "# A small schema with one of each kind of definition.\n",
        "{ 'pragma': { 'doc-required': true } }\n",
        "##\n# @Color:\n#\n# A color.\n#\n# @red: red\n#\n# @green: green (since 2.0)\n#\n# Since: 1.0\n##\n",
        "{ 'enum': 'Color', 'data': [ 'red', { 'name': 'green', 'if': 'CONFIG_GREEN' } ] }\n",
        "##\n# @Base:\n#\n# @kind: the kind\n#\n# @id: optional id\n##\n",
        "{ 'struct': 'Base', 'data': { 'kind': 'Color', '*id': 'str' } }\n",
        "##\n# @Red:\n#\n# @depth: how red\n##\n",
        "{ 'struct': 'Red', 'data': { 'depth': { 'type': 'uint8', 'features': [ 'unstable' ] } } }\n",
        "##\n# @Paint:\n#\n# A union.\n##\n",
        "{ 'union': 'Paint', 'base': 'Base', 'discriminator': 'kind',\n",
        "  'data': { 'red': 'Red' } }\n",
        "##\n# @PaintOrName:\n#\n# @paint: a paint\n#\n# @name: a name\n##\n",
        "{ 'alternate': 'PaintOrName', 'data': { 'paint': 'Paint', 'name': 'str' } }\n",
        "##\n# @paint:\n#\n# @what: what to paint\n#\n# @times: how often\n#\n# Returns: the paint\n#\n# Since: 3.0\n##\n",
        "{ 'command': 'paint', 'data': { 'what': 'PaintOrName', '*times': ['int'] },\n",
        "  'returns': 'Paint', 'allow-oob': true,\n",
        "  'if': { 'all': [ 'CONFIG_A', { 'not': 'CONFIG_B' } ] } }\n",
        "##\n# @PAINTED:\n#\n# @color: the color\n##\n",
        "{ 'event': 'PAINTED', 'data': { 'color': 'Color' } }\n",
    );
    c.get_mut("qapi_parser")
        .expect("target")
        .add("builtin-kinds", qapi.as_bytes().to_vec());
    c.get_mut("emit")
        .expect("target")
        .add("builtin-kinds", qapi.as_bytes().to_vec());

    let intro = json!([
        {"name": "query-thing", "meta-type": "command", "arg-type": "0", "ret-type": "1"},
        {"name": "THING_CHANGED", "meta-type": "event", "arg-type": "1"},
        {"name": "0", "meta-type": "object", "members": []},
        {"name": "1", "meta-type": "object", "members": [
            {"name": "state", "type": "2"},
            {"name": "count", "type": "int", "default": null},
            {"name": "tags", "type": "[str]", "features": ["unstable"]}
        ], "tag": "state", "variants": [{"case": "on", "type": "3"}]},
        {"name": "2", "meta-type": "enum", "values": ["on", "off"], "members": [{"name": "on"}, {"name": "off"}]},
        {"name": "3", "meta-type": "object", "members": [{"name": "level", "type": "4"}]},
        {"name": "4", "meta-type": "alternate", "members": [{"type": "int"}, {"type": "5"}]},
        {"name": "5", "meta-type": "object", "members": [{"name": "text", "type": "str"}]},
        {"name": "[str]", "meta-type": "array", "element-type": "str"},
        {"name": "int", "meta-type": "builtin", "json-type": "int"},
        {"name": "str", "meta-type": "builtin", "json-type": "string"}
    ]);
    let i = c.get_mut("introspection").expect("target");
    i.add("builtin-array", intro.to_string().into_bytes());
    i.add(
        "builtin-reply",
        json!({"return": intro}).to_string().into_bytes(),
    );

    let t = c.get_mut("typed_decode").expect("target");
    let typed: [(u8, Value); 14] = [
        (
            1,
            json!({"driver": "qcow2", "node-name": "disk0", "file": {"driver": "file", "filename": "/tmp/a.qcow2"}}),
        ),
        (
            1,
            json!({"driver": "raw", "file": "file0", "read-only": true, "cache": {"direct": true}}),
        ),
        (
            1,
            json!({"driver": "nbd", "server": {"type": "inet", "host": "127.0.0.1", "port": "10809"}, "export": "e"}),
        ),
        (
            1,
            json!({"driver": "quorum", "vote-threshold": 2, "children": ["a", {"driver": "null-co"}, "c"]}),
        ),
        (
            1,
            json!({"driver": "some-future-driver", "node-name": "n", "x": [1, 2]}),
        ),
        (2, json!("node0")),
        (
            2,
            json!({"driver": "throttle", "throttle-group": "g", "file": {"driver": "null-aio", "size": 1024}}),
        ),
        (4, json!({"running": true, "status": "running"})),
        (4, json!({"running": false, "status": "a-future-state"})),
        (
            6,
            json!({"driver": "qcow2", "file": "f0", "size": 1048576, "cluster-size": 65536}),
        ),
        (
            7,
            json!({"type": "socket", "data": {"addr": {"type": "unix", "data": {"path": "/tmp/s"}}, "server": true}}),
        ),
        (
            8,
            json!({"type": "inet", "data": {"host": "localhost", "port": "4444"}}),
        ),
        (
            10,
            json!([{"type": "block-dirty-bitmap-add", "data": {"node": "n", "name": "b"}}, {"type": "abort", "data": {}}]),
        ),
        (11, json!(["a", null])),
    ];
    for (n, (sel, v)) in typed.iter().enumerate() {
        let mut bytes = vec![*sel];
        bytes.extend_from_slice(v.to_string().as_bytes());
        t.add(&format!("builtin-{sel}-{n}"), bytes);
    }
    t.add("builtin-event-stop", b"\x05STOP".to_vec());
    t.add(
        "builtin-event-job",
        b"\x05JOB_STATUS_CHANGE\n{\"id\": \"j0\", \"status\": \"concluded\"}".to_vec(),
    );
    t.add(
        "builtin-event-unknown",
        b"\x05FUTURE_EVENT\n{\"x\": 1}".to_vec(),
    );
}

// ---------------------------------------------------------------------------------------------
// Live QEMU capture.

struct Capture {
    /// Every byte the server sent, in order (greeting first).
    transcript: Vec<u8>,
    greeting: String,
    /// Reply lines by the command they answer.
    replies: Vec<(String, String)>,
    /// Event lines.
    events: Vec<String>,
    /// The `query-qmp-schema` reply's `return` value.
    schema: Option<Value>,
}

/// Kills and reaps QEMU when dropped (by PID: it is our own child).
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Session {
    stream: BufReader<UnixStream>,
    transcript: Vec<u8>,
    events: Vec<String>,
    next_id: u64,
}

impl Session {
    fn read_line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match self.stream.read_line(&mut line) {
            Ok(0) => Err("QEMU closed the connection".into()),
            Ok(_) => {
                self.transcript.extend_from_slice(line.as_bytes());
                Ok(line.trim_end().to_string())
            }
            Err(e) => Err(format!("reading from QEMU: {e}")),
        }
    }

    fn send(&mut self, text: &str) -> Result<(), String> {
        let s = self.stream.get_mut();
        s.write_all(text.as_bytes())
            .and_then(|_| s.write_all(b"\n"))
            .map_err(|e| format!("writing to QEMU: {e}"))
    }

    /// Sends a command with the next id and returns its reply line; events seen on the way
    /// are kept.
    fn execute(&mut self, command: &str, args: Option<Value>) -> Result<String, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"execute": command, "id": id});
        if let Some(a) = args {
            msg["arguments"] = a;
        }
        self.send(&msg.to_string())?;
        self.reply_for(Some(id))
    }

    fn reply_for(&mut self, id: Option<u64>) -> Result<String, String> {
        loop {
            let line = self.read_line()?;
            let v: Value = serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
            if v.get("event").is_some() {
                self.events.push(line);
                continue;
            }
            if v.get("id").and_then(Value::as_u64) == id {
                return Ok(line);
            }
        }
    }

    /// Waits until an event received since `since` (an index into `events`) satisfies
    /// `done`, reading more while needed, for at most `within`.
    fn wait_event(
        &mut self,
        since: usize,
        done: impl Fn(&Value) -> bool,
        within: Duration,
    ) -> bool {
        let matches = |line: &String| serde_json::from_str::<Value>(line).is_ok_and(|v| done(&v));
        if self.events[since.min(self.events.len())..]
            .iter()
            .any(matches)
        {
            return true;
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let Ok(line) = self.read_line() else {
                return false;
            };
            if serde_json::from_str::<Value>(&line).is_ok_and(|v| v.get("event").is_some()) {
                let hit = matches(&line);
                self.events.push(line);
                if hit {
                    return true;
                }
            }
        }
        false
    }
}

fn capture(qemu: &Path) -> Result<Capture, String> {
    let dir = std::env::temp_dir().join(format!("qmp-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("temp dir: {e}"))?;
    let result = capture_in(qemu, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn capture_in(qemu: &Path, dir: &Path) -> Result<Capture, String> {
    let sock = dir.join("qmp.sock");
    let disk = dir.join("disk.raw");
    std::fs::File::create(&disk)
        .and_then(|f| f.set_len(1 << 20))
        .map_err(|e| format!("disk image: {e}"))?;
    let child = Command::new(qemu)
        .args([
            "-machine",
            "none",
            "-nodefaults",
            "-display",
            "none",
            "-qmp",
        ])
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        // One drive, so that query-block has something to report.
        .arg("-drive")
        .arg(format!(
            "if=none,id=drive0,format=raw,file={}",
            disk.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start QEMU: {e}"))?;
    let mut qemu_proc = Qemu(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match UnixStream::connect(&sock) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => {
                if let Ok(Some(status)) = qemu_proc.0.try_wait() {
                    let mut err = String::new();
                    if let Some(mut e) = qemu_proc.0.stderr.take() {
                        let _ = e.read_to_string(&mut err);
                    }
                    return Err(format!("QEMU exited ({status}): {}", err.trim()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(format!("cannot connect to {}: {e}", sock.display())),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut s = Session {
        stream: BufReader::new(stream),
        transcript: Vec::new(),
        events: Vec::new(),
        next_id: 1,
    };
    let greeting = s.read_line()?;
    s.send(r#"{"execute": "qmp_capabilities", "id": 0}"#)?;
    s.reply_for(Some(0))?;

    let mut replies = Vec::new();
    // Ids 1-4 in the order the wire_client harness issues its calls (query-status, qom-list,
    // query-block, query-version), so replies captured here route to those calls.
    replies.push(("query-status".into(), s.execute("query-status", None)?));
    replies.push((
        "qom-list".into(),
        s.execute("qom-list", Some(json!({"path": "/machine"})))?,
    ));
    replies.push(("query-block".into(), s.execute("query-block", None)?));
    replies.push(("query-version".into(), s.execute("query-version", None)?));
    let since = s.events.len();
    replies.push(("stop".into(), s.execute("stop", None)?));
    s.wait_event(since, |v| v["event"] == "STOP", Duration::from_secs(5));
    let since = s.events.len();
    replies.push(("cont".into(), s.execute("cont", None)?));
    s.wait_event(since, |v| v["event"] == "RESUME", Duration::from_secs(5));
    replies.push((
        "no-such-command".into(),
        s.execute("no-such-command", None)?,
    ));
    replies.push((
        "query-status-bad-args".into(),
        s.execute("query-status", Some(json!({"bogus": 1})))?,
    ));
    // A request QEMU cannot parse: its error reply carries no id.
    s.send(r#"{"execute": }"#)?;
    replies.push(("parse-error".into(), s.reply_for(None)?));
    let new_file = dir.join("new.raw");
    let since = s.events.len();
    replies.push((
        "blockdev-create".into(),
        s.execute(
            "blockdev-create",
            Some(json!({"job-id": "job0", "options": {
                "driver": "file", "filename": new_file.display().to_string(), "size": 65536}})),
        )?,
    ));
    s.wait_event(
        since,
        |v| v["event"] == "JOB_STATUS_CHANGE" && v["data"]["status"] == "concluded",
        Duration::from_secs(10),
    );
    replies.push(("query-jobs".into(), s.execute("query-jobs", None)?));
    let since = s.events.len();
    replies.push((
        "job-dismiss".into(),
        s.execute("job-dismiss", Some(json!({"id": "job0"})))?,
    ));
    s.wait_event(
        since,
        |v| v["data"]["status"] == "null",
        Duration::from_secs(5),
    );
    replies.push((
        "blockdev-add".into(),
        s.execute(
            "blockdev-add",
            Some(json!({"driver": "raw", "node-name": "disk1",
                "file": {"driver": "file", "filename": new_file.display().to_string()}})),
        )?,
    ));
    replies.push((
        "query-named-block-nodes".into(),
        s.execute("query-named-block-nodes", Some(json!({"flat": true})))?,
    ));
    replies.push(("query-commands".into(), s.execute("query-commands", None)?));
    replies.push((
        "query-qmp-schema".into(),
        s.execute("query-qmp-schema", None)?,
    ));
    let schema = replies
        .last()
        .and_then(|(_, line)| serde_json::from_str::<Value>(line).ok())
        .map(|mut v| v["return"].take());
    let _ = s.execute("quit", None);
    Ok(Capture {
        transcript: s.transcript,
        greeting,
        replies,
        events: s.events,
        schema,
    })
}

/// Rewrites the `id` of a captured reply line.
fn with_id(line: &str, id: Option<u64>) -> String {
    match serde_json::from_str::<Value>(line) {
        Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                match id {
                    Some(n) => o.insert("id".into(), json!(n)),
                    None => o.remove("id"),
                };
            }
            v.to_string()
        }
        Err(_) => line.to_string(),
    }
}

fn traffic_seeds(cap: &Capture, c: &mut BTreeMap<&str, Corpus>) {
    let reply = |name: &str| -> Option<&str> {
        cap.replies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| l.as_str())
    };
    let event = |name: &str| {
        cap.events
            .iter()
            .find(|l| l.contains(&format!("\"{name}\"")))
    };

    // greeting
    let g = c.get_mut("greeting").expect("target");
    for flags in 0..8u8 {
        let mut v = vec![flags];
        v.extend_from_slice(cap.greeting.as_bytes());
        g.add(&format!("qemu-greeting-{flags}"), v);
    }

    // wire_client: the calls' replies (ids 1.. in call order), events in between.
    let mut body = String::new();
    let order = [
        "query-status",
        "qom-list",
        "query-block",
        "query-version",
        "no-such-command",
    ];
    for (i, name) in order.iter().enumerate() {
        if i == 1 {
            if let Some(e) = event("STOP") {
                body.push_str(e);
                body.push_str("\r\n");
            }
        }
        if let Some(line) = reply(name) {
            body.push_str(&with_id(line, Some(i as u64 + 1)));
            body.push_str("\r\n");
        }
    }
    for e in &cap.events {
        body.push_str(e);
        body.push_str("\r\n");
    }
    let w = c.get_mut("wire_client").expect("target");
    let b = body.as_bytes();
    w.add("qemu-replies", wire_seed(0, params(5, 1), b));
    w.add("qemu-replies-bytewise", wire_seed(4, params(5, 0), b));
    w.add("qemu-replies-7", wire_seed(8, params(5, 3), b));
    w.add(
        "qemu-replies-open-close",
        wire_seed(16 | 32, params(5, 2), b),
    );
    w.add("qemu-replies-close", wire_seed(32, params(5, 1), b));
    w.add("qemu-replies-oob", wire_seed(2, params(10, 1), b));
    w.add("qemu-replies-shallow", wire_seed(0, params(5, 1) & 0x3f, b));
    // Replies in reverse order, one duplicated, one without id.
    let mut shuffled: Vec<String> = order
        .iter()
        .enumerate()
        .filter_map(|(i, n)| reply(n).map(|l| with_id(l, Some(i as u64 + 1))))
        .rev()
        .collect();
    if let Some(first) = shuffled.first().cloned() {
        shuffled.push(first);
    }
    if let Some(l) = reply("parse-error") {
        shuffled.insert(1, with_id(l, None));
    }
    w.add(
        "qemu-shuffled",
        wire_seed(0, params(6, 1), (shuffled.join("\r\n") + "\r\n").as_bytes()),
    );
    // The raw transcript from the greeting on (capped).
    let mut raw = cap.transcript.clone();
    raw.truncate(w.max_len - 2);
    w.add("qemu-transcript", wire_seed(1, params(5, 1), &raw));
    // Each captured message on its own, as the reply to call 1.
    for (name, line) in &cap.replies {
        let mut one = with_id(line, Some(1)).into_bytes();
        one.extend_from_slice(b"\r\n");
        if one.len() + 2 <= w.max_len {
            w.add(
                &format!("qemu-reply-{name}"),
                wire_seed(0, params(1, 0), &one),
            );
        } else {
            // Larger than max_message_size: the client must fail the connection cleanly.
            one.truncate(w.max_len - 2);
            w.add(
                &format!("qemu-reply-{name}-cut"),
                wire_seed(0, params(1, 0), &one),
            );
        }
    }
    for (n, e) in cap.events.iter().enumerate() {
        w.add(
            &format!("qemu-event-{n}"),
            wire_seed(0, params(1, 0), e.as_bytes()),
        );
    }

    // typed_decode: the replies' values for their types.
    let t = c.get_mut("typed_decode").expect("target");
    let ret = |line: &str| -> Option<Value> {
        serde_json::from_str::<Value>(line)
            .ok()
            .map(|mut v| v["return"].take())
    };
    for (sel, name) in [
        (3u8, "query-block"),
        (4, "query-status"),
        (9, "query-named-block-nodes"),
    ] {
        if let Some(v) = reply(name).and_then(ret) {
            let mut bytes = vec![sel];
            bytes.extend_from_slice(v.to_string().as_bytes());
            if bytes.len() > t.max_len {
                if let Value::Array(items) = &v {
                    // One element at a time.
                    for (i, item) in items.iter().enumerate() {
                        let mut one = vec![sel];
                        one.extend_from_slice(
                            Value::Array(vec![item.clone()]).to_string().as_bytes(),
                        );
                        t.add(&format!("qemu-{name}-{i}"), one);
                    }
                    continue;
                }
            }
            t.add(&format!("qemu-{name}"), bytes);
        }
    }
    for (i, line) in cap.events.iter().enumerate() {
        if let Ok(v) = serde_json::from_str::<Value>(line) {
            let name = v["event"].as_str().unwrap_or("");
            let mut bytes = vec![5u8];
            bytes.extend_from_slice(name.as_bytes());
            if let Some(d) = v.get("data") {
                bytes.push(b'\n');
                bytes.extend_from_slice(d.to_string().as_bytes());
            }
            t.add(&format!("qemu-event-{i}"), bytes);
        }
    }
    if let Some(Value::Array(schema)) = &cap.schema {
        // SchemaInfo lists of 8 entries, spread over the whole reply.
        let groups: Vec<&[Value]> = schema.chunks(8).collect();
        let step = (groups.len() / 40).max(1);
        for (i, g) in groups.iter().enumerate().step_by(step) {
            let mut bytes = vec![0u8];
            bytes.extend_from_slice(Value::Array(g.to_vec()).to_string().as_bytes());
            t.add(&format!("qemu-schema-{i}"), bytes);
        }
        introspection_seeds(schema, c);
    }
}

// ---------------------------------------------------------------------------------------------
// Closures: for each command or event, the definitions it needs.

/// Every string value inside `v` (not object keys).
fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Indexes of the definitions reachable from `root`, in definition order. `refs[i]` lists the
/// definitions that definition `i` mentions.
fn closure(root: usize, refs: &[Vec<usize>]) -> Vec<usize> {
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([root]);
    while let Some(i) = queue.pop_front() {
        if seen.insert(i) {
            queue.extend(refs[i].iter().copied());
        }
    }
    seen.into_iter().collect()
}

/// References between definitions named by `name_of`, found as string values.
fn references(defs: &[Value], name_of: impl Fn(&Value) -> Option<&str>) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = defs
        .iter()
        .enumerate()
        .filter_map(|(i, d)| name_of(d).map(|n| (n, i)))
        .collect();
    defs.iter()
        .enumerate()
        .map(|(me, d)| {
            let mut s = Vec::new();
            strings(d, &mut s);
            // `[T]` names an array type (introspection defines those too) and needs `T`.
            let mut r: Vec<usize> = s
                .iter()
                .flat_map(|n| {
                    [
                        index.get(n).copied(),
                        index
                            .get(n.trim_start_matches('[').trim_end_matches(']'))
                            .copied(),
                    ]
                })
                .flatten()
                .filter(|&i| i != me)
                .collect();
            r.sort_unstable();
            r.dedup();
            r
        })
        .collect()
}

/// Picks at most `cap` items spread evenly over `items`.
fn spread<T>(items: Vec<T>, cap: usize) -> Vec<T> {
    if items.len() <= cap {
        return items;
    }
    let n = items.len();
    items
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i * cap / n != (i + 1) * cap / n)
        .map(|(_, x)| x)
        .collect()
}

fn introspection_seeds(schema: &[Value], c: &mut BTreeMap<&str, Corpus>) {
    let refs = references(schema, |d| d["name"].as_str());
    let corpus = c.get_mut("introspection").expect("target");
    let mut candidates = Vec::new();
    for (i, d) in schema.iter().enumerate() {
        let meta = d["meta-type"].as_str().unwrap_or("");
        if meta != "command" && meta != "event" {
            continue;
        }
        let picked: Vec<Value> = closure(i, &refs)
            .into_iter()
            .map(|j| schema[j].clone())
            .collect();
        let name = d["name"].as_str().unwrap_or("?").to_string();
        let text = Value::Array(picked).to_string();
        if text.len() <= corpus.max_len {
            candidates.push((name, text));
        }
    }
    for (n, (name, text)) in spread(candidates, 120).into_iter().enumerate() {
        let bytes = if n % 4 == 3 {
            format!("{{\"return\": {text}}}").into_bytes()
        } else {
            text.into_bytes()
        };
        corpus.add(&format!("qemu-{name}"), bytes);
    }
    // The whole dump, cut: a large real input, even though the cut leaves it incomplete.
    corpus.add_truncated(
        "qemu-whole-cut",
        Value::Array(schema.to_vec()).to_string().into_bytes(),
    );
}

/// Normalized schema files: closures of commands and events, with the pragma lists reduced to
/// the names that remain.
fn normalized_seeds(path: &Path, c: &mut BTreeMap<&str, Corpus>) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let defs = v["definitions"].as_array().ok_or("no definitions")?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("schema");
    let refs = references(defs, |d| d["name"].as_str());
    let max_len = c.get("normalized").map_or(0, |n| n.max_len);
    let mut candidates = Vec::new();
    for (i, d) in defs.iter().enumerate() {
        let kind = d["kind"].as_str().unwrap_or("");
        if kind != "command" && kind != "event" {
            continue;
        }
        let picked: Vec<Value> = closure(i, &refs)
            .into_iter()
            .map(|j| defs[j].clone())
            .collect();
        let names: HashSet<&str> = picked.iter().filter_map(|d| d["name"].as_str()).collect();
        let mut pragmas = v["pragmas"].clone();
        if let Some(p) = pragmas.as_object_mut() {
            for list in p.values_mut() {
                if let Value::Array(a) = list {
                    let first = a.first().cloned();
                    a.retain(|n| n.as_str().is_some_and(|n| names.contains(n)));
                    // A non-empty pre-6.0 list selects the old naming rules: keep it non-empty.
                    if a.is_empty() {
                        a.extend(first);
                    }
                }
            }
        }
        let mut doc = serde_json::Map::new();
        doc.insert("format".into(), v["format"].clone());
        doc.insert("source".into(), json!(format!("{stem} (excerpt)")));
        doc.insert("pragmas".into(), pragmas);
        doc.insert("definitions".into(), Value::Array(picked));
        let text = Value::Object(doc).to_string();
        if text.len() <= max_len {
            candidates.push((d["name"].as_str().unwrap_or("?").to_string(), text));
        }
    }
    // `emit` loads any kind of schema: a few of these give it real shapes even without the
    // QAPI sources.
    let emit_max = c.get("emit").map_or(0, |e| e.max_len);
    let for_emit: Vec<_> = candidates
        .iter()
        .filter(|(_, t)| t.len() <= emit_max)
        .cloned()
        .collect();
    for (name, text) in spread(for_emit, 10) {
        if let Some(e) = c.get_mut("emit") {
            e.add(&format!("{stem}-{name}"), text.into_bytes());
        }
    }
    let corpus = c.get_mut("normalized").expect("target");
    for (name, text) in spread(candidates, 80) {
        corpus.add(&format!("{stem}-{name}"), text.into_bytes());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// QAPI source: split into expressions (with their doc comment), follow includes.

/// One top-level expression of a QAPI file.
struct Expr {
    /// Its doc comment block (`##` ... `##`), if one directly precedes it.
    doc: String,
    /// The expression's own text.
    text: String,
    /// The text from the end of the previous expression to the end of this one.
    with_context: String,
    /// The expression as JSON (QAPI's single quotes turned into double quotes), if that parses.
    json: Option<Value>,
}

/// Splits QAPI source into its top-level expressions.
fn split_qapi(src: &str) -> Vec<Expr> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut last_end = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'{' => {
                let start = i;
                let mut depth = 0usize;
                let mut in_str = false;
                let mut json = String::new();
                while i < b.len() {
                    let ch = b[i];
                    if in_str {
                        if ch == b'\'' {
                            in_str = false;
                            json.push('"');
                        } else if ch == b'"' {
                            json.push_str("\\\"");
                        } else {
                            json.push(ch as char);
                        }
                        i += 1;
                        continue;
                    }
                    match ch {
                        b'\'' => {
                            in_str = true;
                            json.push('"');
                        }
                        b'#' => {
                            while i < b.len() && b[i] != b'\n' {
                                i += 1;
                            }
                            continue;
                        }
                        b'{' | b'[' => {
                            depth += 1;
                            json.push(ch as char);
                        }
                        b'}' | b']' => {
                            depth = depth.saturating_sub(1);
                            json.push(ch as char);
                        }
                        _ => json.push(ch as char),
                    }
                    i += 1;
                    if depth == 0 {
                        break;
                    }
                }
                let text = src[start..i].to_string();
                let context = src[last_end..start].to_string();
                out.push(Expr {
                    doc: doc_block(&context),
                    with_context: format!("{context}{text}"),
                    text,
                    // Non-ASCII bytes were pushed as Latin-1 chars above: harmless, the JSON
                    // view only serves to find names and references.
                    json: serde_json::from_str(&json).ok(),
                });
                last_end = i;
            }
            _ => i += 1,
        }
    }
    out
}

/// The doc block ending right before an expression: the last `##` ... `##` block of `context`
/// when only blank lines follow it.
fn doc_block(context: &str) -> String {
    let lines: Vec<&str> = context.lines().collect();
    let mut end = lines.len();
    while end > 0 && lines[end - 1].trim().is_empty() {
        end -= 1;
    }
    if end == 0 || lines[end - 1].trim() != "##" {
        return String::new();
    }
    let mut start = end - 1;
    while start > 0 {
        start -= 1;
        if lines[start].trim() == "##" {
            let mut s = lines[start..end].join("\n");
            s.push('\n');
            return s;
        }
        // QEMU's doc blocks may contain blank lines; anything else ends the search.
        let l = lines[start].trim_start();
        if !l.is_empty() && !l.starts_with('#') {
            break;
        }
    }
    String::new()
}

/// The QAPI root files under a shared `qapi/` directory, newest and oldest first, so that a
/// capped corpus still spans the versions.
fn qapi_roots(dir: &Path) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    for name in [
        "qemu-10.0.13/qapi/qapi-schema.json",
        "qemu-2.12.0/qapi/qapi-schema.json",
        "qga-10.0.13/qapi-schema.json",
        "qemu-6.1.0/qapi/qapi-schema.json",
        "qemu-10.0.13/storage-daemon/qapi/qapi-schema.json",
        "qga-2.12.0/qapi-schema.json",
        "qemu-4.0.0/qapi/qapi-schema.json",
        "qemu-8.0.0/qapi/qapi-schema.json",
    ] {
        let p = dir.join(name);
        if p.is_file() {
            roots.push(p);
        }
    }
    roots
}

/// Reads a root file and everything it includes, each file once, in first-inclusion order.
fn read_with_includes(
    path: &Path,
    seen: &mut HashSet<PathBuf>,
    files: &mut Vec<(PathBuf, String)>,
) {
    let Ok(canon) = path.canonicalize() else {
        return;
    };
    if !seen.insert(canon) {
        return;
    }
    let Ok(src) = std::fs::read_to_string(path) else {
        return;
    };
    let exprs = split_qapi(&src);
    files.push((path.to_path_buf(), src));
    for e in exprs {
        if let Some(inc) = e.json.as_ref().and_then(|j| j["include"].as_str()) {
            let next = path.parent().unwrap_or(Path::new(".")).join(inc);
            read_with_includes(&next, seen, files);
        }
    }
}

const DEF_KEYS: [&str; 6] = ["enum", "struct", "union", "alternate", "command", "event"];

fn def_name(v: &Value) -> Option<&str> {
    DEF_KEYS
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
}

/// Writes a JSON value in QAPI's single-quoted syntax.
fn qapi_syntax(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        Value::Array(a) => format!(
            "[ {} ]",
            a.iter().map(qapi_syntax).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => format!(
            "{{ {} }}",
            o.iter()
                .map(|(k, v)| format!("'{k}': {}", qapi_syntax(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn qapi_seeds(root: &Path, c: &mut BTreeMap<&str, Corpus>) -> Result<(), String> {
    let mut files = Vec::new();
    read_with_includes(root, &mut HashSet::new(), &mut files);
    if files.is_empty() {
        return Err("cannot read".into());
    }
    // A short label: the version directory (qemu-10.0.13, qga-2.12.0), plus storage-daemon.
    let rel: Vec<String> = root
        .iter()
        .rev()
        .take(4)
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let version = rel
        .iter()
        .find(|s| s.starts_with("qemu-") || s.starts_with("qga-"))
        .cloned()
        .unwrap_or_else(|| "qapi".into());
    let label = if root.to_string_lossy().contains("storage-daemon") {
        format!("{version}-qsd")
    } else {
        version
    };

    let mut exprs = Vec::new();
    for (_, src) in &files {
        exprs.extend(split_qapi(src));
    }

    // 1. Plain pieces of each file: consecutive expressions with their comments, up to 4 KiB,
    //    whether or not they check (they exercise the parser and the checker's errors).
    let mut pieces = Vec::new();
    for (path, src) in &files {
        let file = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("f")
            .to_string();
        let mut piece = String::new();
        let mut n = 0;
        for e in split_qapi(src) {
            if !piece.is_empty() && piece.len() + e.with_context.len() > 4096 {
                pieces.push((format!("{label}-{file}-{n}"), std::mem::take(&mut piece)));
                n += 1;
            }
            piece.push_str(&e.with_context);
            piece.push('\n');
        }
        if !piece.is_empty() {
            pieces.push((format!("{label}-{file}-{n}"), piece));
        }
    }
    let parser = c.get_mut("qapi_parser").expect("target");
    for (name, text) in spread(pieces, 40) {
        parser.add_truncated(&name, text.into_bytes());
    }

    // 2. Self-contained closures of commands and events, with their doc comments and the
    //    pragmas reduced to the names that remain.
    let defs: Vec<Value> = exprs
        .iter()
        .map(|e| e.json.clone().unwrap_or(Value::Null))
        .collect();
    let refs = references(&defs, def_name);
    let pragmas: Vec<&Value> = defs.iter().filter_map(|d| d.get("pragma")).collect();
    let mut candidates = Vec::new();
    for (i, d) in defs.iter().enumerate() {
        if d.get("command").is_none() && d.get("event").is_none() {
            continue;
        }
        let picked = closure(i, &refs);
        let names: HashSet<&str> = picked.iter().filter_map(|&j| def_name(&defs[j])).collect();
        let mut text = String::new();
        for p in &pragmas {
            let mut p = (*p).clone();
            if let Some(o) = p.as_object_mut() {
                for list in o.values_mut() {
                    if let Value::Array(a) = list {
                        let first = a.first().cloned();
                        a.retain(|n| n.as_str().is_some_and(|n| names.contains(n)));
                        // A non-empty pre-6.0 list selects the old naming rules: keep one
                        // entry so that it stays non-empty.
                        if a.is_empty() {
                            a.extend(first);
                        }
                    }
                }
            }
            text.push_str(&format!("{{ 'pragma': {} }}\n\n", qapi_syntax(&p)));
        }
        for &j in &picked {
            text.push_str(&exprs[j].doc);
            text.push_str(&exprs[j].text);
            text.push_str("\n\n");
        }
        candidates.push((def_name(d).unwrap_or("?").to_string(), text));
    }
    for target in ["qapi_parser", "emit"] {
        let corpus = c.get_mut(target).expect("target");
        let fitting: Vec<_> = candidates
            .iter()
            .filter(|(_, t)| t.len() <= corpus.max_len)
            .cloned()
            .collect();
        let cap = if target == "emit" { 30 } else { 40 };
        for (name, text) in spread(fitting, cap) {
            corpus.add(&format!("{label}-{name}"), text.into_bytes());
        }
    }
    Ok(())
}
