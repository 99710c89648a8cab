//! Typed event streams.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::{Event, EventError, Timestamp};

/// An event as received: the typed [`Event`], when it was emitted, and the raw event.
#[derive(Debug, Clone)]
pub struct Received {
    /// The decoded event.
    pub event: Event,
    /// When the server emitted it.
    pub timestamp: Timestamp,
    raw: qmp_core::Event,
}

impl Received {
    /// The event as received (name and JSON data), e.g. for logging.
    pub fn raw(&self) -> &qmp_core::Event {
        &self.raw
    }
}

/// Why [`EventStream::wait_for`] gave up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// No matching event within the timeout.
    #[error("no matching event within {0:?}")]
    Timeout(Duration),
    /// The stream failed: events were missed (the awaited one may be among them), an event did
    /// not decode, or the connection ended.
    #[error(transparent)]
    Event(EventError),
    /// The stream had already ended before this call.
    #[error("the event stream had already ended")]
    Ended,
    /// A blocking wait ([`crate::blocking`]) inside an async task: `.await` there instead.
    #[error(transparent)]
    Blocking(#[from] crate::BlockingError),
}

/// A subscription yielding typed events, from [`Qmp::events`](crate::Qmp::events).
///
/// Each item is `Ok(Received)`, or an [`EventError`]: `Missed` when the subscriber fell
/// behind its buffer (the count is exact), `Decode` when a known event's data does not match
/// the schema (the stream goes on), `Disconnected` at the end.
///
/// ```no_run
/// # async fn demo(qmp: qmp_api::Qmp) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use qmp_api::Event;
///
/// let mut events = qmp.events();
/// qmp.stop().await?;
/// let stop = events.wait_for(|e| matches!(e, Event::Stop), Duration::from_secs(5)).await?;
/// println!("stopped at {:?}", stop.timestamp);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EventStream {
    inner: qmp_core::EventStream,
}

impl EventStream {
    pub(crate) fn new(inner: qmp_core::EventStream) -> Self {
        EventStream { inner }
    }

    /// The next event; `None` once the connection ended and everything was delivered.
    pub async fn next(&mut self) -> Option<Result<Received, EventError>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    /// Waits for the first event for which `matches` returns true, skipping others, for at
    /// most `timeout`.
    ///
    /// Race-free when the stream was created before the command that causes the event.
    /// Missed events are an error, since the awaited one may have been among them. Events it
    /// skips are consumed: to await several events that may come in any order, give each its
    /// own stream (streams are cheap; each sees every event).
    pub async fn wait_for(
        &mut self,
        mut matches: impl FnMut(&Event) -> bool,
        timeout: Duration,
    ) -> Result<Received, WaitError> {
        let search = async {
            loop {
                match self.next().await {
                    Some(Ok(r)) if matches(&r.event) => return Ok(r),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(WaitError::Event(e)),
                    None => return Err(WaitError::Ended),
                }
            }
        };
        tokio::time::timeout(timeout, search)
            .await
            .unwrap_or(Err(WaitError::Timeout(timeout)))
    }

    /// Waits for the first event of `kind`, skipping others, for at most `timeout` (see
    /// [`wait_for`](Self::wait_for)).
    pub async fn wait_for_kind(
        &mut self,
        kind: crate::EventKind,
        timeout: Duration,
    ) -> Result<Received, WaitError> {
        self.wait_for(|e| e.kind() == Some(kind), timeout).await
    }

    /// The underlying untyped stream.
    pub fn into_raw(self) -> qmp_core::EventStream {
        self.inner
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Received, EventError>>> {
        let item = match futures_core::Stream::poll_next(Pin::new(&mut self.inner), cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        Poll::Ready(item.map(|res| {
            let raw = res?;
            let event = Event::from_raw(&raw).map_err(EventError::Decode)?;
            Ok(Received {
                event,
                timestamp: raw.timestamp(),
                raw,
            })
        }))
    }
}

impl futures_core::Stream for EventStream {
    type Item = Result<Received, EventError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}
