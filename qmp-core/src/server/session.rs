//! The [`Session`] handle: one client's connection, as seen from handlers and tests. The
//! task that owns its socket is in `task`.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{mpsc, Notify};

use super::writer;

/// Why an event could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The session has ended.
    #[error("the session has ended")]
    Closed,
    /// The client has not completed capabilities negotiation; QEMU sends no events before it,
    /// and neither does this server.
    #[error("the client has not negotiated capabilities yet (no events before qmp_capabilities)")]
    NotNegotiated,
    /// The session's event queue is full (only from [`Session::try_emit`]).
    #[error("the session's event queue is full (the client is not reading)")]
    Full,
}

pub(crate) struct SessionShared {
    pub(crate) id: u64,
    pub(crate) peer: String,
    pub(crate) negotiated: AtomicBool,
    pub(crate) oob: AtomicBool,
    pub(crate) events: mpsc::Sender<Arc<[u8]>>,
    pub(crate) close: mpsc::Sender<()>,
    pub(crate) closed: AtomicBool,
    pub(crate) closed_notify: Notify,
}

/// A client's connection to a [`Server`](super::Server): cheap to clone, usable from any task.
///
/// Send events to this one client with [`emit`](Self::emit), end the session with
/// [`close`](Self::close). The session ends by itself when the client disconnects, when a
/// handler calls [`Call::close_after_reply`], or when the server shuts down.
///
/// ```no_run
/// # async fn demo(server: qmp_core::server::Server) -> Result<(), qmp_core::server::EmitError> {
/// for session in server.sessions() {
///     println!("session {} from {}", session.id(), session.peer());
///     session.emit("RESET", serde_json::json!({"guest": true, "reason": "guest-reset"})).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session(pub(crate) Arc<SessionShared>);

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.0.id)
            .field("peer", &self.0.peer)
            .field("negotiated", &self.is_negotiated())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Session {
    /// A number identifying the session within its server (1, 2, 3, ... in accept order).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Who is connected: `unix socket, pid N`, a TCP address, or `stream`.
    pub fn peer(&self) -> &str {
        &self.0.peer
    }

    /// True once the client completed `qmp_capabilities` (command mode).
    pub fn is_negotiated(&self) -> bool {
        self.0.negotiated.load(Relaxed)
    }

    /// True when the client enabled `oob`.
    pub fn oob_enabled(&self) -> bool {
        self.0.oob.load(Relaxed)
    }

    /// True once the session has ended.
    pub fn is_closed(&self) -> bool {
        self.0.closed.load(Relaxed)
    }

    /// Sends an event to this client, stamped with the current time (seconds and microseconds
    /// since the epoch, as QEMU stamps them). Waits while the session's event queue (see
    /// [`ServerBuilder::event_buffer`](super::ServerBuilder::event_buffer)) is full, so a
    /// client that does not read slows the sender down instead of growing memory.
    ///
    /// Errors: [`EmitError::NotNegotiated`] before `qmp_capabilities` (QEMU sends no events
    /// then), [`EmitError::Closed`] once the session ended.
    pub async fn emit(&self, name: &str, data: impl Into<Option<Value>>) -> Result<(), EmitError> {
        self.check_open()?;
        let bytes = encode_event(name, data.into().as_ref());
        self.send_encoded(bytes).await
    }

    /// Like [`emit`](Self::emit), but fails with [`EmitError::Full`] instead of waiting.
    pub fn try_emit(&self, name: &str, data: impl Into<Option<Value>>) -> Result<(), EmitError> {
        self.check_open()?;
        let bytes = encode_event(name, data.into().as_ref());
        self.0.events.try_send(bytes).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => EmitError::Full,
            mpsc::error::TrySendError::Closed(_) => EmitError::Closed,
        })
    }

    fn check_open(&self) -> Result<(), EmitError> {
        if self.is_closed() {
            Err(EmitError::Closed)
        } else if !self.is_negotiated() {
            Err(EmitError::NotNegotiated)
        } else {
            Ok(())
        }
    }

    pub(crate) async fn send_encoded(&self, bytes: Arc<[u8]>) -> Result<(), EmitError> {
        self.0
            .events
            .send(bytes)
            .await
            .map_err(|_| EmitError::Closed)
    }

    /// Ends the session: what is already queued to the client (replies, events emitted before
    /// this call) is written, commands still running are dropped, and the connection is
    /// closed. Returns once the session has ended.
    pub async fn close(&self) {
        self.request_close();
        self.closed().await;
    }

    pub(crate) fn request_close(&self) {
        // A full channel means a close is already pending.
        let _ = self.0.close.try_send(());
    }

    /// Waits until the session has ended (for any reason).
    pub async fn closed(&self) {
        loop {
            let notified = self.0.closed_notify.notified();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }
}

pub(crate) fn encode_event(name: &str, data: Option<&Value>) -> Arc<[u8]> {
    let mut out = Vec::with_capacity(96);
    writer::event(&mut out, name, data, writer::now());
    out.into()
}
