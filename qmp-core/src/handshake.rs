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
/// reply or an event, during negotiation anything but the reply carrying our id. That id
/// starts the connection's random range of ids (see [`random_id_base`]), so no earlier
/// client's reply can be mistaken for ours. A message that is no QMP message at all (valid
/// JSON, but neither greeting, reply nor event) before the greeting still fails the connect:
/// that is not a QMP server.
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
    let id = random_id_base();
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
                    first_id: id + 1,
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

/// Lowest id a connection uses: every id has [`ID_DIGITS`](crate::limits::ID_DIGITS) (10)
/// digits, for the first 8 * 10^9 commands of a connection at least.
const ID_MIN: u64 = 1_000_000_000;
/// Ids start below `ID_MIN + ID_SPAN` (2 * 10^9).
const ID_SPAN: u64 = 1_000_000_000;

/// A random starting point for a connection's ids, in [10^9, 2 * 10^9).
///
/// A monitor delivers replies to whoever holds it when they are ready, so a new client can
/// receive replies to an earlier client's commands. Other clients number from 0 or 1 (or use
/// strings); an earlier connection of ours picked its own random start among 10^9, so the
/// chance that a leftover reply carries an id we are waiting for is negligible: its last ids
/// would have to fall among our first ones. (With QEMU, leftover replies come before the reply
/// to our `qmp_capabilities`, which carries the start itself: QEMU runs in-band commands one
/// at a time, so the earlier client's last command is answered before our first.) Why not
/// more digits: QEMU reads its monitor one byte per `read`, a few microseconds each, so every
/// digit of every id costs QEMU time; ten keep that close to the short ids of other clients.
///
/// Randomness comes from std's randomly keyed hasher (seeded from the OS once per thread,
/// then varied per use), fed the time, the process id and a counter.
pub(crate) fn random_id_base() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    if cfg!(fuzzing) {
        // Fuzz inputs are fixed bytes that name the ids they answer (0 for the negotiation,
        // then 1, 2, ...); cargo-fuzz builds with `--cfg fuzzing`.
        return 0;
    }
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(now);
    h.write_u32(std::process::id());
    h.write_u64(CONNECTIONS.fetch_add(1, Relaxed));
    ID_MIN + h.finish() % ID_SPAN
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
    fn id_bases_have_10_digits_and_differ() {
        let bases: Vec<u64> = (0..1000).map(|_| random_id_base()).collect();
        for &b in &bases {
            assert_eq!(b.to_string().len(), crate::limits::ID_DIGITS, "{b}");
            assert!(b < 2_000_000_000, "{b}");
            // Ten digits for the next 8 * 10^9 ids.
            assert_eq!(
                (b + 8_000_000_000).to_string().len(),
                crate::limits::ID_DIGITS
            );
        }
        let mut unique = bases.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), bases.len());
        // Spread over the range, not clustered.
        assert!(bases.iter().any(|&b| b < 1_250_000_000));
        assert!(bases.iter().any(|&b| b > 1_750_000_000));
    }
}
