//! The table of open sessions, shared by the server, its session tasks and handlers (for
//! broadcasts).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::Notify;

use super::session::{encode_event, Session};

/// Open sessions by id, and a notification whenever the set changes.
#[derive(Default)]
pub(crate) struct SessionTable {
    map: Mutex<HashMap<u64, Session>>,
    /// Notified when a session opens or ends, and when an accept loop ends.
    pub(crate) changed: Notify,
}

impl SessionTable {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Session>> {
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn insert(&self, session: Session) {
        self.lock().insert(session.id(), session);
        self.changed.notify_waiters();
    }

    pub(crate) fn remove(&self, id: u64) {
        self.lock().remove(&id);
        self.changed.notify_waiters();
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// The open sessions, oldest first.
    pub(crate) fn list(&self) -> Vec<Session> {
        let mut all: Vec<Session> = self.lock().values().cloned().collect();
        all.sort_by_key(Session::id);
        all
    }

    /// Asks every open session to close.
    pub(crate) fn close_all(&self) {
        for session in self.lock().values() {
            session.request_close();
        }
    }

    /// Sends an event to every negotiated session; returns to how many.
    pub(crate) async fn broadcast(&self, name: &str, data: Option<&Value>) -> usize {
        let bytes = encode_event(name, data);
        let mut delivered = 0;
        for session in self.list() {
            if session.is_negotiated() && session.send_encoded(bytes.clone()).await.is_ok() {
                delivered += 1;
            }
        }
        delivered
    }
}
