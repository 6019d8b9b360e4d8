//! The global bound on Listener API work: at most `max_in_flight` requests are handled at once
//! and at most `max_queued` wait for a slot. Past that a request is refused at once (503 with
//! code 6) instead of queueing without limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Admission control for the Listener API.
#[derive(Debug)]
pub(crate) struct Overload {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_queued: usize,
}

/// The listener is past its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the listener is overloaded")]
pub(crate) struct Overloaded;

/// Decrements the waiting count even when the waiting request is dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Overload {
    /// A bound of `max_in_flight` running and `max_queued` waiting.
    pub(crate) fn new(max_in_flight: usize, max_queued: usize) -> Self {
        Overload {
            slots: Arc::new(Semaphore::new(max_in_flight)),
            waiting: AtomicUsize::new(0),
            max_queued,
        }
    }

    /// Waits for a slot, or refuses at once when too many already wait.
    pub(crate) async fn admit(&self) -> Result<OwnedSemaphorePermit, Overloaded> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_queued {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Overloaded);
        }
        let _waiting = Waiting(&self.waiting);
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Overloaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_running_and_waiting_bounds_requests_are_refused() {
        let overload = Arc::new(Overload::new(1, 1));
        let running = overload.admit().await.unwrap();
        let waiter = {
            let overload = overload.clone();
            tokio::spawn(async move { overload.admit().await.map(drop) })
        };
        // Wait until the second request is queued, then a third is refused.
        while overload.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(overload.admit().await.unwrap_err(), Overloaded);
        drop(running);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert!(overload.admit().await.is_ok(), "the bound frees up");
    }
}
