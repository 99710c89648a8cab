//! The start of every connection: read the greeting, then negotiate capabilities with
//! `qmp_capabilities`. Runs before the connection task starts, under the connect timeout.

use std::sync::Mutex;

use crate::error::{excerpt, ConnectError, ProtocolError};
use crate::framing::ReadBuffer;
use crate::greeting::{Capability, Greeting};
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

/// Reads the greeting and enables the requested capabilities that the server offers.
/// Returns the greeting and the enabled capabilities. Bytes that arrive after the negotiation
/// reply stay in `rb` for the connection task.
pub(crate) async fn handshake(
    io: &mut Transport,
    rb: &mut ReadBuffer,
    requested: &[Capability],
    stage: &Stage,
) -> Result<(Greeting, Vec<Capability>), ConnectError> {
    stage.set(STAGE_GREETING);
    let first = read_message(io, rb)
        .await?
        .ok_or(ConnectError::ClosedBeforeGreeting)?;
    let greeting = match classify(&first).map_err(ConnectError::Protocol)? {
        Incoming::Greeting(body) => Greeting::parse(body)?,
        _ => {
            return Err(ConnectError::MalformedGreeting {
                reason: "the first message has no `QMP` member".into(),
                excerpt: excerpt(&first),
            })
        }
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
    let mut request = String::from(r#"{"execute":"qmp_capabilities""#);
    if !enable.is_empty() {
        let names: Vec<&str> = enable.iter().map(Capability::name).collect();
        request.push_str(r#","arguments":{"enable":"#);
        request.push_str(&serde_json::Value::from(names).to_string());
        request.push('}');
    }
    request.push_str(",\"id\":0}\n");
    io.write_all(request.as_bytes())
        .await
        .map_err(ConnectError::Io)?;

    loop {
        let msg = read_message(io, rb)
            .await?
            .ok_or(ConnectError::Io(std::io::ErrorKind::UnexpectedEof.into()))?;
        match classify(&msg).map_err(ConnectError::Protocol)? {
            Incoming::Reply {
                id: Id::Ours(0) | Id::Missing,
                result,
            } => {
                result.map_err(ConnectError::NegotiationRefused)?;
                tracing::debug!(enabled = ?enable, "capabilities negotiated");
                return Ok((greeting, enable));
            }
            Incoming::Event { name, .. } => {
                // QEMU sends no events before negotiation completes; a server that does has
                // no subscriber to deliver them to yet.
                tracing::debug!(event = name, "event before negotiation completed, ignored");
            }
            _ => {
                return Err(ConnectError::MalformedGreeting {
                    reason: "unexpected message while negotiating capabilities".into(),
                    excerpt: excerpt(&msg),
                })
            }
        }
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
