//! What a server's sessions share: its configuration, the command table and the session
//! table.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::task::Poll;

use tokio::sync::{Notify, Semaphore};

use super::handler::Handler;
use super::reader::Limits;
use super::sessions::SessionTable;
use crate::greeting::{Capability, Version};

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) version: Version,
    pub(crate) package: String,
    pub(crate) capabilities: Vec<Capability>,
    pub(crate) limits: Limits,
    pub(crate) event_buffer: usize,
    pub(crate) max_sessions: usize,
}

/// A registered command.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) allow_oob: bool,
}

#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) commands: HashMap<String, Entry>,
    pub(crate) fallback: Option<Entry>,
}

pub(crate) struct ServerInner {
    pub(crate) config: Config,
    pub(crate) registry: RwLock<Registry>,
    pub(crate) sessions: Arc<SessionTable>,
    pub(crate) next_id: AtomicU64,
    pub(crate) stopping: AtomicBool,
    /// Notified when the server stops.
    pub(crate) stop: Notify,
    pub(crate) accept_loops: AtomicU64,
    pub(crate) permits: Option<Arc<Semaphore>>,
    pub(crate) addresses: Mutex<Vec<(Option<SocketAddr>, Option<PathBuf>)>>,
}

impl ServerInner {
    pub(crate) fn lookup(&self, name: &str) -> Option<Entry> {
        let registry = self
            .registry
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        registry
            .commands
            .get(name)
            .or(registry.fallback.as_ref())
            .cloned()
    }

    /// Stops accepting and asks every session to close. Does not wait.
    pub(crate) fn begin_shutdown(&self) {
        if self.stopping.swap(true, Relaxed) {
            return;
        }
        tracing::debug!("QMP server shutting down");
        self.stop.notify_waiters();
        self.sessions.close_all();
    }

    /// Runs `fut` until it finishes or the server stops (`None`).
    pub(crate) async fn until_stopped<F: Future>(&self, fut: F) -> Option<F::Output> {
        let mut fut = pin!(fut);
        let mut stopped = pin!(self.stop.notified());
        if self.stopping.load(Relaxed) {
            return None;
        }
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(v));
            }
            if stopped.as_mut().poll(cx).is_ready() || self.stopping.load(Relaxed) {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await
    }
}
