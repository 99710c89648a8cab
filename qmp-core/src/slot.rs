//! A one-shot slot carrying one reply from the connection task to the caller.
//!
//! Like a oneshot channel, but lean for this one job: a single small allocation, and its
//! receiving side does not take part in tokio's cooperative budgeting. That budget is meant
//! to stop a task from starving others; here it would only make a task that awaits thousands
//! of replies (a pipelined batch) re-poll them over and over, since every reply is already
//! complete when it is polled.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

enum State<T> {
    /// Nothing yet; the receiver's waker, if it is waiting.
    Waiting(Option<Waker>),
    /// The value, not yet taken.
    Full(T),
    /// The sender went away without sending.
    SenderGone,
    /// The receiver went away (or took the value).
    Done,
}

struct Shared<T>(Mutex<State<T>>);

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The state is a plain enum replaced in one assignment: a panic elsewhere cannot leave
        // it half-updated, so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sending half, held by the connection task.
pub(crate) struct Sender<T> {
    shared: Option<Arc<Shared<T>>>,
}

/// The receiving half: a future resolving to the value, or `Err(())` if the sender was dropped
/// without sending.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// A connected pair.
pub(crate) fn slot<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared(Mutex::new(State::Waiting(None))));
    (
        Sender {
            shared: Some(shared.clone()),
        },
        Receiver { shared },
    )
}

impl<T> Sender<T> {
    /// Delivers `value`; gives it back if the receiver is gone.
    pub(crate) fn send(mut self, value: T) -> Result<(), T> {
        let Some(shared) = self.shared.take() else {
            return Err(value);
        };
        let waker = {
            let mut state = shared.lock();
            match std::mem::replace(&mut *state, State::Done) {
                State::Waiting(waker) => {
                    *state = State::Full(value);
                    waker
                }
                _ => return Err(value),
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// True once the receiver was dropped: nobody wants the value any more.
    pub(crate) fn is_closed(&self) -> bool {
        match &self.shared {
            Some(shared) => matches!(*shared.lock(), State::Done),
            None => true,
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let waker = {
                let mut state = shared.lock();
                match std::mem::replace(&mut *state, State::SenderGone) {
                    State::Waiting(waker) => waker,
                    other => {
                        *state = other;
                        None
                    }
                }
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Result<T, ()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.shared.lock();
        match std::mem::replace(&mut *state, State::Done) {
            State::Full(value) => Poll::Ready(Ok(value)),
            State::SenderGone => Poll::Ready(Err(())),
            State::Waiting(waker) => {
                let waker = match waker {
                    Some(w) if w.will_wake(cx.waker()) => w,
                    _ => cx.waker().clone(),
                };
                *state = State::Waiting(Some(waker));
                Poll::Pending
            }
            State::Done => Poll::Ready(Err(())),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        *self.shared.lock() = State::Done;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn send_receive_and_drops() {
        let (tx, rx) = slot();
        tx.send(5).unwrap();
        assert_eq!(rx.await, Ok(5));

        let (tx, rx) = slot::<u8>();
        drop(tx);
        assert_eq!(rx.await, Err(()));

        let (tx, rx) = slot();
        assert!(!tx.is_closed());
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.send(7), Err(7));

        let (tx, rx) = slot();
        let waiter = tokio::spawn(rx);
        tokio::task::yield_now().await;
        tx.send("late").unwrap();
        assert_eq!(waiter.await.unwrap(), Ok("late"));
    }
}
