//! The raw client: the floor for our own stack. A plain blocking unix socket, commands written
//! as newline-terminated JSON, every received line parsed into a `serde_json::Value`, and no
//! library. Sequential runs use one thread; pipelined runs split the socket between a writer
//! thread and the reading thread.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::measure::{proc_status_kib, Sample, Start};
use crate::workload::{Job, Workload};

/// One raw connection: the socket and a read buffer split into lines.
pub struct RawConn {
    stream: UnixStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl RawConn {
    /// Connects, reads the greeting and negotiates capabilities.
    pub fn connect(path: &Path) -> io::Result<RawConn> {
        let stream = UnixStream::connect(path)?;
        let mut conn = RawConn {
            stream,
            buf: vec![0; 4096],
            start: 0,
            end: 0,
        };
        let greeting = conn.read_value()?;
        if greeting.get("QMP").is_none() {
            return Err(invalid("expected a greeting"));
        }
        conn.stream
            .write_all(b"{\"execute\":\"qmp_capabilities\"}\n")?;
        let reply = conn.read_value()?;
        if reply.get("return").is_none() {
            return Err(invalid("qmp_capabilities failed"));
        }
        Ok(conn)
    }

    /// The next line (without its terminator).
    fn read_line(&mut self) -> io::Result<&[u8]> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let line = self.start..self.start + i;
                self.start += i + 1;
                return Ok(&self.buf[line]);
            }
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = self.stream.read(&mut self.buf[self.end..])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.end += n;
        }
    }

    /// The next message, parsed.
    fn read_value(&mut self) -> io::Result<Value> {
        let line = self.read_line()?;
        serde_json::from_slice(line).map_err(io::Error::from)
    }

    /// Runs one command and returns its `return` value (events before it are skipped).
    fn execute(&mut self, cmd: &[u8], id: u64) -> io::Result<Value> {
        self.stream.write_all(cmd)?;
        loop {
            let mut v = self.read_value()?;
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                return v
                    .get_mut("return")
                    .map(Value::take)
                    .ok_or_else(|| invalid(&format!("command failed: {v}")));
            }
        }
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn command(out: &mut Vec<u8>, name: &str, id: u64) {
    out.clear();
    let _ = writeln!(out, "{{\"execute\":\"{name}\",\"id\":{id}}}");
}

/// Runs `job` with the raw client.
pub fn run(job: &Job) -> io::Result<Sample> {
    match job.workload {
        Workload::Seq => seq(job),
        Workload::Pipe => pipelined(job, &["query-status"], 0),
        Workload::Schema => schema(job),
        Workload::Events => events(job),
        Workload::QemuEvents => pipelined(job, &["stop", "cont"], job.n),
        Workload::Idle => idle(job),
    }
}

fn seq(job: &Job) -> io::Result<Sample> {
    let mut conn = RawConn::connect(&job.socket)?;
    let mut cmd = Vec::with_capacity(64);
    let warmup = (job.n / 10).min(1000);
    for id in 0..warmup {
        command(&mut cmd, "query-status", id);
        std::hint::black_box(conn.execute(&cmd, id)?);
    }
    let mut lat = Vec::with_capacity(job.n as usize);
    let start = Start::now();
    for id in warmup..warmup + job.n {
        let t = Instant::now();
        command(&mut cmd, "query-status", id);
        std::hint::black_box(conn.execute(&cmd, id)?);
        lat.push(t.elapsed().as_nanos() as u64);
    }
    Ok(start.sample(job.n).with_latencies(lat))
}

/// `job.n` commands (cycling through `names`) written by a writer thread while this thread
/// reads every reply, and `events` events, parsing each line.
fn pipelined(job: &Job, names: &[&str], events: u64) -> io::Result<Sample> {
    let mut conn = RawConn::connect(&job.socket)?;
    let n = job.n;
    let start = Start::now();
    let mut writer = conn.stream.try_clone()?;
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let write = std::thread::spawn(move || -> io::Result<()> {
        let mut out = Vec::with_capacity(64 * 1024);
        let mut one = Vec::with_capacity(64);
        for id in 0..n {
            command(&mut one, &names[id as usize % names.len()], id);
            out.extend_from_slice(&one);
            if out.len() >= 60 * 1024 {
                writer.write_all(&out)?;
                out.clear();
            }
        }
        writer.write_all(&out)
    });
    let (mut replies, mut seen_events) = (0u64, 0u64);
    while replies < n || seen_events < events {
        let v = conn.read_value()?;
        if v.get("return").is_some() {
            replies += 1;
        } else if v.get("event").is_some() {
            seen_events += 1;
        } else {
            return Err(invalid(&format!("unexpected message: {v}")));
        }
        std::hint::black_box(v);
    }
    write
        .join()
        .map_err(|_| invalid("writer thread panicked"))??;
    let ops = if events > 0 { events } else { n };
    Ok(start.sample(ops).with_peak_rss())
}

fn schema(job: &Job) -> io::Result<Sample> {
    let mut conn = RawConn::connect(&job.socket)?;
    let mut cmd = Vec::with_capacity(64);
    command(&mut cmd, "query-qmp-schema", 0);
    std::hint::black_box(conn.execute(&cmd, 0)?);
    let start = Start::now();
    for id in 1..=job.n {
        command(&mut cmd, "query-qmp-schema", id);
        let v = conn.execute(&cmd, id)?;
        if !v.is_array() {
            return Err(invalid("query-qmp-schema did not return an array"));
        }
        std::hint::black_box(v);
    }
    Ok(start.sample(job.n))
}

fn events(job: &Job) -> io::Result<Sample> {
    let mut conn = RawConn::connect(&job.socket)?;
    let start = Start::now();
    let cmd = format!(
        "{{\"execute\":\"x-bench-events\",\"arguments\":{{\"count\":{}}},\"id\":1}}\n",
        job.n
    );
    conn.stream.write_all(cmd.as_bytes())?;
    let mut seen = 0;
    while seen < job.n {
        let v = conn.read_value()?;
        if v.get("event").is_some() {
            seen += 1;
        }
        std::hint::black_box(v);
    }
    Ok(start.sample(job.n))
}

fn idle(job: &Job) -> io::Result<Sample> {
    let mut conns = vec![RawConn::connect(&job.socket)?];
    std::thread::sleep(Duration::from_millis(50));
    let before = proc_status_kib("VmRSS");
    let start = Start::now();
    for _ in 0..job.n {
        conns.push(RawConn::connect(&job.socket)?);
    }
    let mut sample = start.sample(job.n);
    std::thread::sleep(Duration::from_millis(200));
    let after = proc_status_kib("VmRSS");
    sample.kib_per_conn = Some(after.saturating_sub(before) as f64 / job.n as f64);
    drop(conns);
    Ok(sample)
}
