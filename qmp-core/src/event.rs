//! Events: the [`Event`] value, and [`EventStream`]s that deliver them to subscribers.
//!
//! Every subscriber has its own bounded queue. The connection task pushes into each queue
//! without ever waiting: when a queue is full its oldest event is dropped and counted, and the
//! subscriber learns the exact count ([`EventError::Missed`]) before its next event. A slow
//! subscriber therefore costs memory up to its bound and nothing else: replies and other
//! subscribers are never held up.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{DecodeError, DisconnectReason, EventError};

/// When the server emitted an event: seconds and microseconds since the Unix epoch, as QEMU
/// reports them. QEMU sends `-1` for both if it could not read its clock.
///
/// ```
/// # use qmp_core::Timestamp;
/// let t = Timestamp { seconds: 1_700_000_000, microseconds: 250_000 };
/// assert!(t.to_system_time().is_some());
/// assert!(Timestamp::UNKNOWN.to_system_time().is_none());
/// // Display: seconds.microseconds since the epoch, as QEMU's own logs print them.
/// assert_eq!(t.to_string(), "1700000000.250000");
/// assert_eq!(Timestamp::UNKNOWN.to_string(), "unknown");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp {
    /// Whole seconds since the epoch.
    pub seconds: i64,
    /// Microseconds within the second.
    pub microseconds: i64,
}

impl Timestamp {
    /// The value QEMU uses when its clock failed, and the value used when an event has no
    /// `timestamp` at all.
    pub const UNKNOWN: Timestamp = Timestamp {
        seconds: -1,
        microseconds: -1,
    };

    /// The timestamp as a [`SystemTime`], or `None` if it is unknown or out of range.
    pub fn to_system_time(&self) -> Option<SystemTime> {
        let secs = u64::try_from(self.seconds).ok()?;
        let micros = u64::try_from(self.microseconds).ok()?;
        UNIX_EPOCH.checked_add(Duration::from_secs(secs) + Duration::from_micros(micros))
    }
}

impl std::fmt::Display for Timestamp {
    /// `SECONDS.MICROSECONDS` (six digits) since the epoch, or `unknown` for a negative value
    /// (QEMU's clock failed, or the event had no timestamp).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.seconds < 0 || self.microseconds < 0 {
            f.write_str("unknown")
        } else {
            write!(f, "{}.{:06}", self.seconds, self.microseconds)
        }
    }
}

/// An event received from the server. Cheap to clone (reference counted): every subscriber
/// that receives the same event shares one copy.
///
/// The data stays in its JSON text form until asked for, so a subscriber decodes it once,
/// straight into the type it wants.
///
/// ```
/// # use qmp_core::{Event, Timestamp};
/// #[derive(serde::Deserialize)]
/// struct JobStatusChange { id: String, status: String }
///
/// let ev = Event::new("JOB_STATUS_CHANGE", Some(serde_json::json!({"id": "j0", "status": "running"})), Timestamp::UNKNOWN);
/// assert_eq!(ev.name(), "JOB_STATUS_CHANGE");
/// let data: JobStatusChange = ev.data().unwrap();
/// assert_eq!(data.status, "running");
/// ```
#[derive(Clone)]
pub struct Event(Arc<EventInner>);

struct EventInner {
    /// The event name followed by the data's JSON text (empty when the event had no data).
    text: Box<str>,
    name_len: usize,
    timestamp: Timestamp,
}

impl Event {
    /// Builds an event (for tests and for servers written with this crate).
    pub fn new(name: &str, data: Option<Value>, timestamp: Timestamp) -> Event {
        let data = data.map(|d| d.to_string());
        Event::from_parts(name, data.as_deref(), timestamp)
    }

    /// `data_json` must be a JSON object's text (already validated by the caller).
    pub(crate) fn from_parts(name: &str, data_json: Option<&str>, timestamp: Timestamp) -> Event {
        let data_json = data_json.unwrap_or("");
        let mut text = String::with_capacity(name.len() + data_json.len());
        text.push_str(name);
        text.push_str(data_json);
        Event(Arc::new(EventInner {
            text: text.into_boxed_str(),
            name_len: name.len(),
            timestamp,
        }))
    }

    /// The event name, e.g. `STOP` or `JOB_STATUS_CHANGE`.
    pub fn name(&self) -> &str {
        &self.0.text[..self.0.name_len]
    }

    /// When the server emitted the event.
    pub fn timestamp(&self) -> Timestamp {
        self.0.timestamp
    }

    /// The `data` member as JSON text, or `None` when the event carried no data.
    pub fn data_json(&self) -> Option<&str> {
        let data = &self.0.text[self.0.name_len..];
        (!data.is_empty()).then_some(data)
    }

    /// Decodes the data into `T`. An event without data decodes as an empty object, so types
    /// whose members are all optional (or that have none) work for both.
    ///
    /// Errors name the event and the path of the offending field.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        DecodeError::decode(self.name(), self.data_json().unwrap_or("{}"))
    }

    /// The data as a [`serde_json::Value`] (an empty object when the event had none).
    pub fn data_value(&self) -> Value {
        self.data_json()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_else(|| Value::Object(Default::default()))
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.name())
            .field("data", &self.data_json())
            .field("timestamp", &self.0.timestamp)
            .finish()
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.0.text == other.0.text
            && self.0.name_len == other.0.name_len
            && self.0.timestamp == other.0.timestamp
    }
}

/// The per-subscriber queue shared by an [`EventStream`] and the connection task.
pub(crate) struct Queue {
    /// Event names this subscriber wants; `None` for all.
    filter: Option<Box<[Box<str>]>>,
    capacity: usize,
    state: Mutex<QueueState>,
}

struct QueueState {
    events: VecDeque<Event>,
    /// Events dropped since the subscriber last heard about it.
    missed: u64,
    waker: Option<Waker>,
    /// Set when the connection ended.
    end: Option<Arc<DisconnectReason>>,
    /// Set when the [`EventStream`] was dropped; the connection then forgets the queue.
    abandoned: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while holding this lock cannot leave the state inconsistent (every update
        // is a single push/pop/assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wants(&self, name: &str) -> bool {
        match &self.filter {
            None => true,
            Some(names) => names.iter().any(|n| &**n == name),
        }
    }
}

/// The set of subscribers of one connection.
#[derive(Default)]
pub(crate) struct Subscribers {
    queues: Mutex<SubscriberList>,
}

#[derive(Default)]
struct SubscriberList {
    queues: Vec<Arc<Queue>>,
    /// Once set, new subscribers start out ended.
    end: Option<Arc<DisconnectReason>>,
}

impl Subscribers {
    fn lock(&self) -> MutexGuard<'_, SubscriberList> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a subscriber. Events dispatched after this returns reach it.
    pub(crate) fn subscribe(&self, filter: Option<Vec<String>>, capacity: usize) -> EventStream {
        let queue = Arc::new(Queue {
            filter: filter.map(|names| names.into_iter().map(String::into_boxed_str).collect()),
            capacity: capacity.max(1),
            state: Mutex::new(QueueState {
                events: VecDeque::new(),
                missed: 0,
                waker: None,
                end: None,
                abandoned: false,
            }),
        });
        let mut list = self.lock();
        match &list.end {
            Some(reason) => queue.lock().end = Some(reason.clone()),
            None => list.queues.push(queue.clone()),
        }
        EventStream { queue, done: false }
    }

    /// Delivers a batch of events, in order, to every subscriber that wants them. Wakers of
    /// subscribers waiting for events are moved to `wake`, to be woken once for the batch.
    pub(crate) fn dispatch(&self, batch: &[Event], wake: &mut Vec<Waker>) {
        let mut list = self.lock();
        let mut abandoned = false;
        for queue in &list.queues {
            let mut state = queue.lock();
            if state.abandoned {
                abandoned = true;
                continue;
            }
            let mut pushed = false;
            for ev in batch {
                if !queue.wants(ev.name()) {
                    continue;
                }
                if state.events.len() == queue.capacity {
                    state.events.pop_front();
                    state.missed += 1;
                }
                state.events.push_back(ev.clone());
                pushed = true;
            }
            if pushed {
                if let Some(w) = state.waker.take() {
                    wake.push(w);
                }
            }
        }
        if abandoned {
            list.queues.retain(|q| !q.lock().abandoned);
        }
    }

    /// Ends every stream: each yields what it already holds, then the disconnect reason.
    pub(crate) fn close(&self, reason: &Arc<DisconnectReason>) {
        let queues = {
            let mut list = self.lock();
            list.end = Some(reason.clone());
            std::mem::take(&mut list.queues)
        };
        for queue in queues {
            let waker = {
                let mut state = queue.lock();
                state.end = Some(reason.clone());
                state.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.lock().queues.len()
    }
}

/// A subscription to the server's events, created by
/// [`Client::subscribe`](crate::Client::subscribe) or
/// [`Client::subscribe_to`](crate::Client::subscribe_to).
///
/// It yields, in order, every event received after it was created (filtered by name if it was
/// created with names): `Ok(event)`, or `Err(EventError::Missed { count })` when it fell more
/// than its buffer behind and that many of the oldest events were dropped. When the connection
/// ends it yields what it still holds, then `Err(EventError::Disconnected(reason))`, then
/// `None`.
///
/// It implements [`futures_core::Stream`]; [`next`](Self::next) is the same without needing
/// a stream extension trait. Dropping it unsubscribes.
///
/// ```no_run
/// # async fn demo(client: qmp_core::Client) -> Result<(), Box<dyn std::error::Error>> {
/// let mut events = client.subscribe_to(["STOP", "RESUME"]);
/// client.execute("stop", ()).await?;
/// let stop = events.next().await.expect("stream ended")?;
/// assert_eq!(stop.name(), "STOP");
/// # Ok(()) }
/// ```
pub struct EventStream {
    queue: Arc<Queue>,
    done: bool,
}

impl EventStream {
    /// Waits for the next event. When the connection ends, the stream first delivers every
    /// event received before the end, then yields one `Some(Err(EventError::Disconnected(..)))`
    /// saying why, then `None` from then on. A subscriber that fell behind its buffer gets
    /// `Some(Err(EventError::Missed { count }))` in place of the events it lost.
    pub async fn next(&mut self) -> Option<Result<Event, EventError>> {
        std::future::poll_fn(|cx| self.poll_next_item(cx)).await
    }

    /// Returns the next event if one is already queued, without waiting.
    pub fn try_next(&mut self) -> Option<Result<Event, EventError>> {
        let mut state = self.queue.lock();
        match Self::take(&mut state, &mut self.done) {
            Poll::Ready(item) => item,
            Poll::Pending => None,
        }
    }

    /// Number of events queued and not yet taken.
    pub fn len(&self) -> usize {
        self.queue.lock().events.len()
    }

    /// True when no event is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(state: &mut QueueState, done: &mut bool) -> Poll<Option<Result<Event, EventError>>> {
        if *done {
            return Poll::Ready(None);
        }
        if state.missed > 0 {
            let count = std::mem::take(&mut state.missed);
            return Poll::Ready(Some(Err(EventError::Missed { count })));
        }
        if let Some(ev) = state.events.pop_front() {
            return Poll::Ready(Some(Ok(ev)));
        }
        if let Some(reason) = &state.end {
            *done = true;
            return Poll::Ready(Some(Err(EventError::Disconnected(reason.clone()))));
        }
        Poll::Pending
    }

    fn poll_next_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Event, EventError>>> {
        let mut state = self.queue.lock();
        let res = Self::take(&mut state, &mut self.done);
        if res.is_pending() {
            match &state.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => state.waker = Some(cx.waker().clone()),
            }
        }
        res
    }
}

impl futures_core::Stream for EventStream {
    type Item = Result<Event, EventError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_item(cx)
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        state.abandoned = true;
        state.events.clear();
        state.waker = None;
    }
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("filter", &self.queue.filter)
            .field("capacity", &self.queue.capacity)
            .field("queued", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, n: u64) -> Event {
        Event::new(
            name,
            Some(serde_json::json!({ "n": n })),
            Timestamp::UNKNOWN,
        )
    }

    #[test]
    fn slow_subscriber_learns_exact_count_and_keeps_newest() {
        let subs = Subscribers::default();
        let mut s = subs.subscribe(None, 3);
        let batch: Vec<Event> = (0..10).map(|n| ev("E", n)).collect();
        subs.dispatch(&batch, &mut Vec::new());
        match s.try_next() {
            Some(Err(EventError::Missed { count })) => assert_eq!(count, 7),
            other => panic!("{other:?}"),
        }
        let rest: Vec<u64> = std::iter::from_fn(|| s.try_next())
            .map(|r| r.unwrap().data_value()["n"].as_u64().unwrap())
            .collect();
        assert_eq!(rest, vec![7, 8, 9]);
    }

    #[test]
    fn filter_and_close() {
        let subs = Subscribers::default();
        let mut only_stop = subs.subscribe(Some(vec!["STOP".into()]), 16);
        let all = subs.subscribe(None, 16);
        subs.dispatch(&[ev("RESUME", 0), ev("STOP", 1)], &mut Vec::new());
        subs.close(&Arc::new(DisconnectReason::ServerClosed));
        assert_eq!(only_stop.try_next().unwrap().unwrap().name(), "STOP");
        assert!(matches!(
            only_stop.try_next(),
            Some(Err(EventError::Disconnected(_)))
        ));
        assert!(only_stop.try_next().is_none());
        assert_eq!(all.len(), 2);
        let late = subs.subscribe(None, 4);
        drop(late);
    }

    #[test]
    fn dropped_streams_are_forgotten() {
        let subs = Subscribers::default();
        let s = subs.subscribe(None, 4);
        assert_eq!(subs.count(), 1);
        drop(s);
        subs.dispatch(&[ev("X", 0)], &mut Vec::new());
        assert_eq!(subs.count(), 0);
    }
}
