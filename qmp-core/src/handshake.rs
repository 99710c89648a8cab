//! The start of every connection: read the greeting, then negotiate capabilities with
//! `qmp_capabilities`. Runs before the connection task starts, under the connect timeout.

use std::sync::Mutex;

use crate::error::{excerpt, ConnectError, ProtocolError};
use crate::framing::ReadBuffer;
use crate::greeting::{Capability, Greeting};
use crate::json::Object;
use crate::message::{classify, Id, Incoming};
use crate::transport::Transport;

/// What the handshake is waiting for, so a timeout can say which step was slow. A lock rather
/// than a `Cell`: the connect future holds it across awaits and must stay `Send`, so that it
/// can run under `tokio::spawn`.
pub(crate) struct Stage(Mutex<&'static str>);

impl Stage {
    pub(crate) fn new(stage: &'static str) -> Self {
        Stage(Mutex::new(stage))
    }

    pub(crate) fn set(&self, stage: &'static str) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = stage;
    }

    pub(crate) fn get(&self) -> &'static str {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub(crate) const STAGE_GREETING: &str = "waiting for the QMP greeting (a monitor serves one client at a time: is another client connected to it?)";
pub(crate) const STAGE_NEGOTIATION: &str = "negotiating capabilities (qmp_capabilities)";

/// The outcome of a handshake.
pub(crate) struct Negotiated {
    pub(crate) greeting: Greeting,
    pub(crate) enabled: Vec<Capability>,
    /// Messages skipped as stray output (see [`handshake`]).
    pub(crate) skipped: u64,
    /// The first id for the connection's commands.
    pub(crate) first_id: u64,
}

/// Reads the greeting and enables the requested capabilities that the server offers. Bytes
/// that arrive after the negotiation reply stay in `rb` for the connection task.
///
/// A monitor sends each reply to whichever client holds it when the command finishes, so a
/// new client can receive what an earlier one asked for: replies (even the negotiation reply
/// of an earlier attempt) before the greeting, replies and events during negotiation. Those
/// are skipped, logged and counted, never fatal: before the greeting anything shaped like a
/// reply or an event, during negotiation anything but the reply carrying our id. That id is
/// random and 16 digits long (see [`random_ids`]), so no earlier client's reply can be
/// mistaken for ours. A message that is no QMP message at all (valid JSON, but neither
/// greeting, reply nor event) before the greeting still fails the connect: that is not a QMP
/// server.
pub(crate) async fn handshake(
    io: &mut Transport,
    rb: &mut ReadBuffer,
    requested: &[Capability],
    stage: &Stage,
) -> Result<Negotiated, ConnectError> {
    stage.set(STAGE_GREETING);
    let mut skipped = 0u64;
    let greeting = loop {
        let msg = read_message(io, rb)
            .await?
            .ok_or(ConnectError::ClosedBeforeGreeting)?;
        match classify(&msg).map_err(ConnectError::Protocol)? {
            Incoming::Greeting(body) => break Greeting::parse(body)?,
            Incoming::Reply { .. } | Incoming::Event { .. } => {}
            Incoming::Malformed { .. } if looks_like_reply_or_event(&msg) => {}
            Incoming::Malformed { .. } => {
                return Err(ConnectError::MalformedGreeting {
                    reason: "the first message is neither a greeting (no `QMP` member) nor a reply or event left over from an earlier client".into(),
                    excerpt: excerpt(&msg),
                })
            }
        }
        skipped += 1;
        tracing::warn!(message = %excerpt(&msg), "skipping a message that arrived before the greeting (output for an earlier client of this monitor?)");
    };
    tracing::debug!(
        version = %greeting.version,
        package = %greeting.package,
        offered = ?greeting.capabilities,
        "received QMP greeting"
    );

    let enable: Vec<Capability> = requested
        .iter()
        .filter(|c| greeting.capabilities.contains(c))
        .cloned()
        .collect();
    for missing in requested.iter().filter(|c| !enable.contains(c)) {
        tracing::debug!(capability = %missing, "requested capability not offered by the server");
    }

    stage.set(STAGE_NEGOTIATION);
    let ids = random_ids();
    let id = ids.negotiation;
    let mut request = String::from(r#"{"execute":"qmp_capabilities""#);
    if !enable.is_empty() {
        let names: Vec<&str> = enable.iter().map(Capability::name).collect();
        request.push_str(r#","arguments":{"enable":"#);
        request.push_str(&serde_json::Value::from(names).to_string());
        request.push('}');
    }
    request.push_str(&format!(",\"id\":{id}}}\n"));
    io.write_all(request.as_bytes())
        .await
        .map_err(ConnectError::Io)?;

    loop {
        let msg = read_message(io, rb)
            .await?
            .ok_or(ConnectError::Io(std::io::ErrorKind::UnexpectedEof.into()))?;
        match classify(&msg).map_err(ConnectError::Protocol)? {
            Incoming::Reply {
                id: Id::Ours(n),
                result,
            } if n == id => {
                result.map_err(ConnectError::NegotiationRefused)?;
                tracing::debug!(enabled = ?enable, skipped, "capabilities negotiated");
                return Ok(Negotiated {
                    greeting,
                    enabled: enable,
                    skipped,
                    first_id: ids.first_command,
                });
            }
            Incoming::Malformed {
                id: Id::Ours(n),
                error,
            } if n == id => {
                return Err(ConnectError::MalformedGreeting {
                    reason: format!("malformed reply to qmp_capabilities: {error}"),
                    excerpt: excerpt(&msg),
                })
            }
            Incoming::Event { name, .. } => {
                // QEMU sends no events before negotiation completes: this one was meant for
                // an earlier client (and there is no subscriber yet anyway).
                tracing::debug!(
                    event = name,
                    "skipping an event that arrived during negotiation"
                );
            }
            _ => {
                tracing::warn!(message = %excerpt(&msg), "skipping a message that arrived during negotiation (output for an earlier client of this monitor?)")
            }
        }
        skipped += 1;
    }
}

/// Whether a message that is not a valid reply or event at least tries to be one (it has
/// `return`, `error` or `event`): stray output, not a sign of a non-QMP server.
fn looks_like_reply_or_event(msg: &[u8]) -> bool {
    std::str::from_utf8(msg)
        .ok()
        .and_then(|text| Object::parse(text).ok())
        .is_some_and(|o| {
            o.get("return").is_some() || o.get("error").is_some() || o.get("event").is_some()
        })
}

/// A connection's ids: one for `qmp_capabilities`, and where its commands start.
pub(crate) struct Ids {
    pub(crate) negotiation: u64,
    pub(crate) first_command: u64,
}

/// Negotiation ids are drawn from [10^15, 4 * 10^15): 16 digits, below 2^53 (exact for servers
/// that store numbers as doubles).
const NEGOTIATION_IDS: std::ops::Range<u64> = 1_000_000_000_000_000..4_000_000_000_000_000;
/// Command ids start at a point drawn from [10^5, 10^6): 6 digits (7 after at least 900,000
/// commands).
const FIRST_COMMAND_IDS: std::ops::Range<u64> = 100_000..1_000_000;

/// Random ids for a new connection.
///
/// A monitor delivers replies to whoever holds it when they are ready, so a new client can
/// receive replies to an earlier client's commands. The negotiation id is drawn among 3 * 10^15
/// and has 16 digits, while other clients number from 0 or 1 (or use strings) and our own
/// commands have 6 or 7 digits: no leftover reply can be taken for the negotiation reply. With
/// QEMU that settles it: it runs in-band commands one at a time and drops an earlier client's
/// queued commands when it disconnects, so whatever it still owed that client arrives before
/// the reply to our `qmp_capabilities` (none arrived after it in 2,000 reconnects with a
/// command in flight, see the README). For a server that delivered leftovers later, command
/// ids start at a random point among 900,000, so a leftover would most likely match no
/// command of ours either.
///
/// Why not longer command ids: QEMU reads its monitor one byte per `read`, a few microseconds
/// each, so every digit of every command's id costs QEMU time; with 6 digits the ids cost about
/// what the short ids of other clients cost (measured: ten digits made QEMU's round trips 12%
/// slower than a client numbering from 0).
///
/// Randomness comes from std's randomly keyed hasher (seeded from the OS once per thread, then
/// varied per use), fed the time, the process id and a counter.
pub(crate) fn random_ids() -> Ids {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    if cfg!(fuzzing) {
        // Fuzz inputs are fixed bytes that name the ids they answer (0 for the negotiation,
        // then 1, 2, ...); cargo-fuzz builds with `--cfg fuzzing`.
        return Ids {
            negotiation: 0,
            first_command: 1,
        };
    }
    static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let connection = CONNECTIONS.fetch_add(1, Relaxed);
    let draw = |range: std::ops::Range<u64>, salt: u8| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(now);
        h.write_u32(std::process::id());
        h.write_u64(connection);
        h.write_u8(salt);
        range.start + h.finish() % (range.end - range.start)
    };
    Ids {
        negotiation: draw(NEGOTIATION_IDS, 0),
        first_command: draw(FIRST_COMMAND_IDS, 1),
    }
}

/// Reads until one complete message is buffered and returns a copy of it; `None` at a clean
/// end of stream.
async fn read_message(
    io: &mut Transport,
    rb: &mut ReadBuffer,
) -> Result<Option<Vec<u8>>, ConnectError> {
    loop {
        if let Some(msg) = rb.next_message().map_err(ConnectError::Protocol)? {
            return Ok(Some(msg.to_vec()));
        }
        let n = io.read(rb.spare()).await.map_err(ConnectError::Io)?;
        if n == 0 {
            if rb.has_partial_message() {
                return Err(ConnectError::Protocol(ProtocolError::TruncatedMessage {
                    received: rb.partial_len(),
                }));
            }
            return Ok(None);
        }
        rb.advance(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_16_and_6_digits() {
        let ids: Vec<Ids> = (0..1000).map(|_| random_ids()).collect();
        for i in &ids {
            assert_eq!(i.negotiation.to_string().len(), 16, "{}", i.negotiation);
            assert_eq!(i.first_command.to_string().len(), 6, "{}", i.first_command);
        }
        for (pick, low, high) in [
            (
                (|i: &Ids| i.negotiation) as fn(&Ids) -> u64,
                1_750_000_000_000_000,
                3_250_000_000_000_000,
            ),
            (|i: &Ids| i.first_command, 325_000, 775_000),
        ] {
            let mut values: Vec<u64> = ids.iter().map(pick).collect();
            // Spread over the range, not clustered.
            assert!(values.iter().any(|&v| v < low) && values.iter().any(|&v| v > high));
            values.sort_unstable();
            values.dedup();
            assert!(values.len() > 990, "{} distinct of 1000", values.len());
        }
    }
}
