//! Issue 9, the kind rather than the instance: a seeded random sweep over a scripted server
//! that behaves like QEMU (in-band replies in order, `exec-oob` replies as soon as it reads
//! them, errors without id in in-band order for input it "cannot parse") and interleaves
//! stray events, replies with foreign, unknown, duplicated or missing ids, errors without id,
//! early closes, resets and failed writes at every point of the handshake and the session,
//! while the client's callers cancel at random.
//!
//! Checked in every case:
//! - every caller that kept waiting gets its own reply if the server sent one, an
//!   [`ExecuteError::Unanswered`] only if the server refused its command, a disconnect only if
//!   the server never answered it, and `sent: false` only if the server never read it;
//! - an error without id reaches at most one caller, never one sent after its cause;
//! - nothing received is dropped without being counted: every reply, event and stray
//!   handshake message the server wrote is counted in `Stats`, every event reaches the
//!   subscriber in order;
//! - no hang: each case ends within its deadline; and the pending table is empty once the
//!   server has answered everything.
//!
//! `QMP_RANDOM_CASES` sets the number of cases (default 300), `QMP_RANDOM_SEED` the first seed
//! (a failure names the seed of its case).

// Test code: unwrapping our own fixtures' results is fine.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qmp_core::{Capability, Client, ConnectError, EventError, ExecuteError};
use qmp_tests::mock::{GREETING, PROBE};
use qmp_tests::{within, TempDir};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};

/// xorshift: reproducible "random" numbers.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// True with probability `percent` %.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// How the server ends a connection early.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Closes its writing side (the client sees end of stream), then the socket.
    Close,
    /// Drops the socket at once (a reset if the client's input is unread).
    Reset,
    /// Stops reading (`shutdown(SHUT_RD)`): the client's next write fails; the server still
    /// sends what it owes for what it read, then closes.
    StopReading,
}

fn pick_fault(rng: &mut Rng) -> Fault {
    match rng.below(3) {
        0 => Fault::Close,
        1 => Fault::Reset,
        _ => Fault::StopReading,
    }
}

/// Where an error without id came from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Origin {
    Noise,
    /// The server "could not parse" the command with this number.
    Refusal(u64),
}

/// What the server did with each command, and what it wrote.
#[derive(Debug, Default)]
struct Record {
    /// The greeting was sent and `qmp_capabilities` answered.
    negotiated: bool,
    handshake_strays: u64,
    /// Replies written after the handshake, strays included, probe answers not.
    replies: u64,
    probe_answers: u64,
    /// Replies without id and without error (`{"return": ...}`) written after the handshake.
    returns_without_id: u64,
    /// Event sequence numbers in the order written (0 for END).
    events: Vec<u64>,
    answered: HashMap<u64, ()>,
    /// Commands the server "could not parse" when it read them: it never answers them.
    refused: HashMap<u64, ()>,
    read: HashMap<u64, ()>,
    errors_without_id: HashMap<String, Origin>,
    /// The session ran to its planned end (no early fault).
    completed: bool,
}

/// The server side of one case.
struct Server {
    rng: Rng,
    reader: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    writer: Option<OwnedWriteHalf>,
    control: std::os::unix::net::UnixStream,
    record: Arc<Mutex<Record>>,
    seq: u64,
    /// In-band work in the order QEMU would do it.
    queue: VecDeque<Work>,
    /// Ids of replies already written (for duplicated-reply noise).
    answered_ids: Vec<Value>,
}

enum Work {
    Answer { id: Value, n: u64 },
    Refuse { n: u64 },
    Probe { id: Value },
}

impl Server {
    fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn write(&mut self, msg: &Value) -> bool {
        let Some(w) = self.writer.as_mut() else {
            return false;
        };
        let mut line = msg.to_string();
        line.push_str("\r\n");
        w.write_all(line.as_bytes()).await.is_ok()
    }

    async fn event(&mut self) {
        self.seq += 1;
        let seq = self.seq;
        if self
            .write(&json!({"event": "NOISE", "data": {"seq": seq}, "timestamp": {"seconds": 1, "microseconds": 2}}))
            .await
        {
            self.record().events.push(seq);
        }
    }

    async fn error_without_id(&mut self, origin: Origin) {
        self.seq += 1;
        let desc = format!("JSON parse error #{}", self.seq);
        if self
            .write(&json!({"error": {"class": "GenericError", "desc": desc}}))
            .await
        {
            self.record().errors_without_id.insert(desc, origin);
            self.record().replies += 1;
        }
    }

    /// One piece of stray output: an event, a reply for someone else, an error without id.
    async fn noise(&mut self, in_handshake: bool) {
        let msg = match self.rng.below(6) {
            0 => return self.event_or_stray(in_handshake).await,
            1 => json!({"return": {"stray": true}, "id": self.rng.below(1000)}),
            2 => json!({"return": {}, "id": format!("other-{}", self.rng.below(100))}),
            3 if !in_handshake => return self.error_without_id(Origin::Noise).await,
            4 if !in_handshake => {
                if self.write(&json!({"return": {"no": "id"}})).await {
                    self.record().replies += 1;
                    self.record().returns_without_id += 1;
                }
                return;
            }
            4 => json!({"return": {"no": "id"}}),
            _ => match self.answered_ids.last() {
                Some(id) if !in_handshake => json!({"return": {"duplicate": true}, "id": id}),
                _ => json!({"error": {"class": "GenericError", "desc": "stray"}, "id": 0}),
            },
        };
        if self.write(&msg).await {
            if in_handshake {
                self.record().handshake_strays += 1;
            } else {
                self.record().replies += 1;
            }
        }
    }

    async fn event_or_stray(&mut self, in_handshake: bool) {
        if in_handshake {
            if self
                .write(&json!({"event": "STRAY", "timestamp": {"seconds": 1, "microseconds": 2}}))
                .await
            {
                self.record().handshake_strays += 1;
            }
        } else {
            self.event().await;
        }
    }

    async fn fault(&mut self, fault: Fault) {
        match fault {
            Fault::Close => {
                if let Some(mut w) = self.writer.take() {
                    let _ = w.shutdown().await;
                }
            }
            Fault::Reset => {
                self.writer = None;
                let _ = self.control.shutdown(std::net::Shutdown::Both);
            }
            Fault::StopReading => {
                let _ = self.control.shutdown(std::net::Shutdown::Read);
            }
        }
    }

    /// Greeting and negotiation, with stray output and maybe a fault. `false` if the
    /// handshake was cut short.
    async fn handshake(&mut self, fault: Option<(u64, Fault)>) -> bool {
        let mut step = 0;
        let faulted = |step: u64| fault.filter(|(at, _)| *at == step).map(|(_, f)| f);
        for _ in 0..self.rng.below(4) {
            self.noise(true).await;
        }
        if let Some(f) = faulted(step) {
            self.fault(f).await;
            return false;
        }
        step += 1;
        let greeting: Value = serde_json::from_str(GREETING).unwrap();
        self.write(&greeting).await;
        if let Some(f) = faulted(step) {
            self.fault(f).await;
            return false;
        }
        step += 1;
        let Ok(Some(line)) = self.reader.next_line().await else {
            return false;
        };
        let neg: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(neg["execute"], "qmp_capabilities");
        for _ in 0..self.rng.below(4) {
            self.noise(true).await;
        }
        if let Some(f) = faulted(step) {
            self.fault(f).await;
            return false;
        }
        let ok = self.write(&json!({"return": {}, "id": neg["id"]})).await;
        self.record().negotiated = ok;
        ok
    }

    async fn do_work(&mut self, work: Work) {
        match work {
            Work::Answer { id, n } => {
                if self.write(&json!({"return": {"n": n}, "id": id})).await {
                    self.record().answered.insert(n, ());
                    self.record().replies += 1;
                    self.answered_ids.push(id);
                }
            }
            Work::Refuse { n } => {
                for _ in 0..1 + self.rng.below(3) {
                    self.error_without_id(Origin::Refusal(n)).await;
                }
            }
            Work::Probe { id } => {
                let desc = format!("The command {PROBE} has not been found");
                if self
                    .write(&json!({"error": {"class": "CommandNotFound", "desc": desc}, "id": id}))
                    .await
                {
                    self.record().probe_answers += 1;
                }
            }
        }
    }

    /// Answers `commands` user commands (and any probes), like QEMU, with noise, then ends:
    /// early with `fault` at a random step, or with an END event once `may_close` fires.
    async fn session(
        &mut self,
        commands: u64,
        fault: Option<(u64, Fault)>,
        mut may_close: tokio::sync::oneshot::Receiver<()>,
    ) {
        let mut handled = 0u64;
        let mut step = 0u64;
        let mut reading = true;
        let mut end_sent = false;
        loop {
            step += 1;
            if self.rng.chance(12) {
                self.noise(false).await;
            }
            if let Some((at, f)) = fault {
                if step == at {
                    self.fault(f).await;
                    if f != Fault::StopReading {
                        return;
                    }
                    reading = false;
                }
            }
            if !reading {
                // Answer what was read, then close.
                while let Some(w) = self.queue.pop_front() {
                    self.do_work(w).await;
                }
                self.fault(Fault::Close).await;
                return;
            }
            if end_sent && may_close.try_recv().is_ok() {
                self.fault(Fault::Close).await;
                self.record().completed = true;
                return;
            }
            let wait = if self.queue.is_empty() { 30 } else { 2 };
            match tokio::time::timeout(Duration::from_millis(wait), self.reader.next_line()).await {
                Ok(Ok(Some(line))) => {
                    let req: Value = serde_json::from_str(&line).unwrap();
                    let id = req["id"].clone();
                    if req["execute"] == PROBE {
                        self.queue.push_back(Work::Probe { id });
                        continue;
                    }
                    let oob = req.get("exec-oob").is_some();
                    let n = req["arguments"]["n"].as_u64().unwrap();
                    self.record().read.insert(n, ());
                    handled += 1;
                    let work = if self.rng.chance(10) {
                        // QEMU fails to parse the command as it reads it: it will never
                        // answer it (the errors come later, in in-band order).
                        self.record().refused.insert(n, ());
                        Work::Refuse { n }
                    } else {
                        Work::Answer { id, n }
                    };
                    match work {
                        // exec-oob is answered as soon as it is read; a refusal is an in-band
                        // error, like every parse error.
                        Work::Answer { .. } if oob => self.do_work(work).await,
                        _ => self.queue.push_back(work),
                    }
                    // Some of the in-band work gets done now.
                    for _ in 0..self.rng.below(self.queue.len() as u64 + 1) {
                        if let Some(w) = self.queue.pop_front() {
                            self.do_work(w).await;
                        }
                    }
                }
                Ok(Ok(None)) | Ok(Err(_)) => {
                    while let Some(w) = self.queue.pop_front() {
                        self.do_work(w).await;
                    }
                    return;
                }
                Err(_) => {
                    // Quiet: finish the in-band work.
                    while let Some(w) = self.queue.pop_front() {
                        self.do_work(w).await;
                    }
                    if handled == commands && !end_sent {
                        if self
                            .write(&json!({"event": "END", "timestamp": {"seconds": 1, "microseconds": 2}}))
                            .await
                        {
                            self.record().events.push(0);
                        }
                        end_sent = true;
                    }
                }
            }
            if step > 100_000 {
                panic!("the session never ended");
            }
        }
    }
}

/// What a caller did and got.
enum Outcome {
    Kept(u64, Result<Value, ExecuteError>),
    Cancelled,
}

/// What the sweep exercised, summed over its cases (so that a quiet sweep cannot pass).
#[derive(Debug, Default)]
struct Coverage {
    connect_failures: u64,
    session_faults: u64,
    oob_sessions: u64,
    own_replies: u64,
    unanswered: u64,
    unanswered_quoting: u64,
    disconnected: u64,
    never_sent: u64,
    cancelled: u64,
    stray_in_handshake: u64,
    errors_without_id: u64,
    probes: u64,
}

async fn run_case(seed: u64, cov: &mut Coverage) {
    let mut rng = Rng::new(seed);
    let ctx = format!("case seed {seed}");
    let oob = rng.chance(30);
    let commands = 1 + rng.below(30);
    let handshake_fault = rng.chance(15).then(|| (rng.below(3), pick_fault(&mut rng)));
    // The session step of an early fault (roughly one step per command and noise).
    let session_fault = rng
        .chance(35)
        .then(|| (1 + rng.below(commands * 2 + 4), pick_fault(&mut rng)));

    let dir = TempDir::new();
    let path = dir.join("random.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let record = Arc::new(Mutex::new(Record::default()));
    let (may_close_tx, may_close) = tokio::sync::oneshot::channel();
    let server_rng = Rng::new(rng.next());
    let server_record = record.clone();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let std = stream.into_std().unwrap();
        let control = std.try_clone().unwrap();
        let stream = UnixStream::from_std(std).unwrap();
        let (r, w) = stream.into_split();
        let mut server = Server {
            rng: server_rng,
            reader: BufReader::new(r).lines(),
            writer: Some(w),
            control,
            record: server_record,
            seq: 0,
            queue: VecDeque::new(),
            answered_ids: Vec::new(),
        };
        if server.handshake(handshake_fault).await {
            server.session(commands, session_fault, may_close).await;
        }
        // Dropping `server` closes the socket.
    });

    let caps = if oob { vec![Capability::Oob] } else { vec![] };
    let connect = Client::builder()
        .capabilities(caps)
        .timeout(Some(Duration::from_secs(10)))
        .close_timeout(Duration::from_secs(2))
        .connect_unix(&path)
        .await;
    let client = match connect {
        Ok(c) => c,
        Err(e) => {
            cov.connect_failures += 1;
            server.await.unwrap();
            assert!(
                handshake_fault.is_some(),
                "{ctx}: connect failed without a fault: {e}"
            );
            assert!(
                !record.lock().unwrap().negotiated,
                "{ctx}: negotiated, yet: {e}"
            );
            assert!(
                matches!(e, ConnectError::ClosedBeforeGreeting | ConnectError::Io(_)),
                "{ctx}: unclear connect error: {e:?}"
            );
            return;
        }
    };
    assert!(
        handshake_fault.is_none(),
        "{ctx}: connected despite {handshake_fault:?}"
    );

    let mut events = client.subscribe();
    let mut callers = Vec::new();
    for n in 0..commands {
        let c = client.clone();
        let delay = Duration::from_micros(rng.below(3000));
        let how = rng.below(100);
        let as_oob = oob && rng.chance(30);
        let cancel_after = Duration::from_micros(rng.below(2000));
        callers.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let args = json!({ "n": n });
            if how < 8 {
                // Nobody waits for the reply.
                let _ = c.execute_without_reply("echo", args);
                return Outcome::Cancelled;
            }
            let call = async {
                if as_oob {
                    c.request("echo", args)
                        .oob()
                        .decode::<serde_json::Value>()
                        .await
                } else {
                    c.execute("echo", args).await
                }
            };
            match how {
                8..=17 => {
                    let _ = tokio::time::timeout(Duration::ZERO, call).await;
                    Outcome::Cancelled
                }
                18..=37 => match tokio::time::timeout(cancel_after, call).await {
                    Ok(res) => Outcome::Kept(n, res),
                    Err(_) => Outcome::Cancelled,
                },
                _ => Outcome::Kept(n, call.await),
            }
        }));
    }

    // Events, until END (then the pending table must be empty) or the end of the connection.
    let mut seen_events = Vec::new();
    let mut may_close_tx = Some(may_close_tx);
    let disconnected = loop {
        match events.next().await {
            Some(Ok(ev)) if ev.name() == "END" => {
                seen_events.push(0);
                // Everything was answered or refused: the client settles the rest at once.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                while client.stats().in_flight > 0 && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                assert_eq!(
                    client.stats().in_flight,
                    0,
                    "{ctx}: pending table not empty: {:?}",
                    client.stats()
                );
                if let Some(tx) = may_close_tx.take() {
                    let _ = tx.send(());
                }
            }
            Some(Ok(ev)) => {
                assert_eq!(ev.name(), "NOISE", "{ctx}");
                seen_events.push(ev.data_value()["seq"].as_u64().unwrap());
            }
            Some(Err(EventError::Disconnected(_))) => break true,
            Some(Err(e)) => panic!("{ctx}: {e}"),
            None => break false,
        }
    };
    assert!(disconnected, "{ctx}: the stream ended without saying why");
    server.await.unwrap();
    let mut outcomes = Vec::new();
    for c in callers {
        outcomes.push(c.await.unwrap());
    }
    let record = record.lock().unwrap();
    let stats = client.stats();
    cov.session_faults += u64::from(session_fault.is_some() && !record.completed);
    cov.oob_sessions += u64::from(oob);
    cov.stray_in_handshake += stats.stray_during_handshake;
    cov.errors_without_id += stats.replies_without_id;
    cov.probes += stats.sync_probes;

    // Nothing received is dropped without being counted.
    assert_eq!(
        stats.stray_during_handshake, record.handshake_strays,
        "{ctx}: {stats:?}"
    );
    assert_eq!(stats.replies_received, record.replies, "{ctx}: {stats:?}");
    assert_eq!(
        stats.events_received as usize,
        record.events.len(),
        "{ctx}: {stats:?}"
    );
    assert_eq!(seen_events, record.events, "{ctx}: events");
    assert!(
        stats.sync_probes >= record.probe_answers,
        "{ctx}: {stats:?}"
    );
    assert_eq!(stats.in_flight, 0, "{ctx}");
    assert_eq!(
        stats.replies_without_id,
        record.errors_without_id.len() as u64 + record.returns_without_id,
        "{ctx}: {stats:?}"
    );

    // Every caller that waited got its own reply or a clear error.
    let mut quoted = HashMap::new();
    for outcome in outcomes {
        let Outcome::Kept(n, res) = outcome else {
            cov.cancelled += 1;
            continue;
        };
        let answered = record.answered.contains_key(&n);
        let refused = record.refused.contains_key(&n);
        let read = record.read.contains_key(&n);
        match res {
            Ok(v) => {
                cov.own_replies += 1;
                assert!(
                    answered,
                    "{ctx}: command {n} got a reply the server never sent: {v}"
                );
                assert_eq!(
                    v,
                    json!({ "n": n }),
                    "{ctx}: command {n} got someone else's reply"
                );
            }
            Err(ExecuteError::Unanswered { server_error, .. }) => {
                assert!(
                    refused,
                    "{ctx}: command {n} reported unanswered, but the server answered={answered} read={read}; stats {stats:?}"
                );
                cov.unanswered += 1;
                if let Some(e) = server_error {
                    cov.unanswered_quoting += 1;
                    match record.errors_without_id.get(&e.desc) {
                        Some(Origin::Refusal(m)) => assert!(
                            *m >= n,
                            "{ctx}: command {n} got the error about earlier command {m}"
                        ),
                        Some(Origin::Noise) => {}
                        None => {
                            panic!("{ctx}: command {n} quotes an error the server never sent: {e}")
                        }
                    }
                    assert!(
                        quoted.insert(e.desc.clone(), n).is_none(),
                        "{ctx}: {} quoted twice",
                        e.desc
                    );
                }
            }
            Err(ExecuteError::Disconnected { sent, .. }) => {
                cov.disconnected += 1;
                cov.never_sent += u64::from(!sent);
                assert!(
                    !answered,
                    "{ctx}: command {n} was answered, but its caller got a disconnect"
                );
                if !sent {
                    assert!(
                        !read,
                        "{ctx}: command {n} reported never sent, but the server read it"
                    );
                }
            }
            Err(e) => panic!("{ctx}: command {n}: unexpected error {e:?}"),
        }
    }
}

#[tokio::test]
async fn issue_9_random_faults_keep_every_promise() {
    let cases = std::env::var("QMP_RANDOM_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300u64);
    let first = std::env::var("QMP_RANDOM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1u64);
    let mut cov = Coverage::default();
    for seed in first..first + cases {
        within(30, run_case(seed, &mut cov)).await;
    }
    println!("{cov:?}");
    // Every kind of outcome occurred.
    for (what, n) in [
        ("connect failures", cov.connect_failures),
        ("session faults", cov.session_faults),
        ("own replies", cov.own_replies),
        ("unanswered commands", cov.unanswered),
        (
            "unanswered commands quoting an error",
            cov.unanswered_quoting,
        ),
        ("disconnects", cov.disconnected),
        ("commands never sent", cov.never_sent),
        ("cancellations", cov.cancelled),
        ("stray handshake messages", cov.stray_in_handshake),
        ("sync probes", cov.probes),
    ] {
        assert!(cases < 100 || n > 0, "no {what} in {cases} cases: {cov:?}");
    }
    println!(
        "RELIABILITY | randomized faults (scripted QEMU-like server): stray events, foreign/unknown/duplicated/missing ids, errors without id, closes, resets, failed writes at every point of the handshake and session; callers cancelling at random | {cases} | every caller got its own reply or a clear error; every message counted; no hang; pending table empty | -"
    );
}
