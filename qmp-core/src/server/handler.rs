//! Command handlers and what they receive: [`Handler`], [`Call`].

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::session::{EmitError, Session};
use super::sessions::SessionTable;
use super::writer;
use crate::error::QmpError;

/// The future a [`Handler`] returns: the command's `return` value, or the error to reply with.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Value, QmpError>> + Send>>;

/// Runs one command. Any `Fn(Call) -> impl Future<Output = Result<Value, QmpError>>` closure
/// (`Send + Sync + 'static`, with a `Send + 'static` future) is a handler:
///
/// ```
/// use qmp_core::server::{Call, Server};
/// use qmp_core::QmpError;
/// use serde_json::json;
///
/// let server = Server::builder()
///     .command("query-status", |_call: Call| async {
///         Ok(json!({"status": "running", "running": true}))
///     })
///     .command("device_del", |call: Call| async move {
///         let id = call.arguments().get("id").and_then(|v| v.as_str()).unwrap_or("");
///         Err(QmpError::new("DeviceNotFound", format!("Device '{id}' not found")))
///     })
///     .build();
/// # drop(server);
/// ```
///
/// A handler that panics does not take the session down: the client gets a `GenericError`
/// naming the command, and the panic is logged.
pub trait Handler: Send + Sync + 'static {
    /// Starts running the command described by `call`.
    fn call(&self, call: Call) -> HandlerFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(Call) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, QmpError>> + Send + 'static,
{
    fn call(&self, call: Call) -> HandlerFuture {
        Box::pin(self(call))
    }
}

/// What a command leaves for after its reply.
#[derive(Default)]
pub(crate) struct AfterReply {
    /// Encoded events, written right after the reply.
    pub(crate) events: Mutex<Vec<u8>>,
    /// Close the session once the reply and those events are written.
    pub(crate) close: AtomicBool,
}

/// One command being run: its name, arguments and `id`, the [`Session`] it came from, and
/// ways to send events around its reply.
///
/// ```
/// use qmp_core::server::{Call, Server};
/// use serde_json::json;
///
/// // `quit` as QEMU does it: the reply, then SHUTDOWN, then the connection closes.
/// let server = Server::builder()
///     .command("quit", |call: Call| async move {
///         call.emit_after_reply("SHUTDOWN", json!({"guest": false, "reason": "host-qmp-quit"}));
///         call.close_after_reply();
///         Ok(json!({}))
///     })
///     .build();
/// # drop(server);
/// ```
pub struct Call {
    pub(crate) name: String,
    pub(crate) arguments: Map<String, Value>,
    pub(crate) id: Option<String>,
    pub(crate) oob: bool,
    pub(crate) session: Session,
    pub(crate) sessions: Arc<SessionTable>,
    pub(crate) after: Arc<AfterReply>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("name", &self.name)
            .field("arguments", &self.arguments)
            .field("id", &self.id)
            .field("oob", &self.oob)
            .field("session", &self.session.id())
            .finish()
    }
}

impl Call {
    /// The command name (`execute` or `exec-oob`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `arguments` object (empty when the client sent none).
    pub fn arguments(&self) -> &Map<String, Value> {
        &self.arguments
    }

    /// Takes the arguments out, leaving an empty object.
    pub fn take_arguments(&mut self) -> Map<String, Value> {
        std::mem::take(&mut self.arguments)
    }

    /// Decodes the arguments into `T`. A mismatch is a `GenericError` whose description is
    /// serde's message, ready to return to the client:
    ///
    /// ```
    /// # use qmp_core::server::Call;
    /// #[derive(serde::Deserialize)]
    /// struct Args { device: String, force: Option<bool> }
    /// async fn eject(call: Call) -> Result<serde_json::Value, qmp_core::QmpError> {
    ///     let args: Args = call.decode()?;
    ///     Ok(serde_json::json!({}))
    /// }
    /// ```
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, QmpError> {
        T::deserialize(Value::Object(self.arguments.clone()))
            .map_err(|e| QmpError::new("GenericError", e.to_string()))
    }

    /// The request's `id` as JSON text, as it will be echoed in the reply (`None` without one).
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// True for `exec-oob` (out-of-band) commands.
    pub fn is_oob(&self) -> bool {
        self.oob
    }

    /// The session (connection) the command came from.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Sends an event on this session now: it reaches the client before this command's
    /// reply. Waits while the session's event queue is full. See [`Session::emit`].
    pub async fn emit(&self, name: &str, data: impl Into<Option<Value>>) -> Result<(), EmitError> {
        self.session.emit(name, data).await
    }

    /// Queues an event to be written right after this command's reply, before anything else
    /// the session sends: "reply, then these events", in the order queued. The timestamp is
    /// taken now.
    pub fn emit_after_reply(&self, name: &str, data: impl Into<Option<Value>>) {
        let data = data.into();
        let mut events = self
            .after
            .events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        writer::event(&mut events, name, data.as_ref(), writer::now());
    }

    /// Closes the session once the reply and the events queued with
    /// [`emit_after_reply`](Self::emit_after_reply) are written (what QEMU's `quit` looks like
    /// to a client). Commands still queued behind this one are dropped.
    pub fn close_after_reply(&self) {
        self.after.close.store(true, Ordering::Relaxed);
    }

    /// Sends an event to every negotiated session of the server. See
    /// [`Server::broadcast`](super::Server::broadcast).
    pub async fn broadcast(&self, name: &str, data: impl Into<Option<Value>>) -> usize {
        self.sessions.broadcast(name, data.into().as_ref()).await
    }
}

/// Runs a handler's future and turns a panic into an error value.
pub(crate) struct CatchUnwind(pub(crate) HandlerFuture);

impl Future for CatchUnwind {
    type Output = Result<Value, QmpError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => Poll::Ready(Err(panicked(payload))),
        }
    }
}

/// Calls a handler, turning a panic in the call itself into an error.
pub(crate) fn start(handler: &dyn Handler, call: Call) -> CatchUnwind {
    let name = call.name.clone();
    match std::panic::catch_unwind(AssertUnwindSafe(|| handler.call(call))) {
        Ok(fut) => CatchUnwind(fut),
        Err(payload) => {
            let error = panicked(payload);
            tracing::error!(command = %name, desc = %error.desc, "command handler panicked");
            CatchUnwind(Box::pin(std::future::ready(Err(error))))
        }
    }
}

fn panicked(payload: Box<dyn std::any::Any + Send>) -> QmpError {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    tracing::error!(panic = %message, "command handler panicked");
    QmpError::new(
        "GenericError",
        format!("the command handler panicked: {message}"),
    )
}
