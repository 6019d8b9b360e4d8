//! The bookkeeping around a commit batch, the same for both backends: its trace span (linked
//! to each append's), the writer's counters, the announcements of new events and outbox work,
//! metrics, then each caller's answer (which names its batch).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::append::BatchOutcome;
use super::{Appended, NewEvent, StoreError, WriterStats};
use crate::metrics::Metrics;
use crate::traces;

/// The answer to one append.
pub(crate) type Reply = oneshot::Sender<Answer>;

/// What an append hears back: its outcome, and the commit batch that held it.
pub(crate) struct Answer {
    outcome: Result<Appended, StoreError>,
    batch: Batch,
}

impl Answer {
    /// The outcome; the caller's span (the listener's `append`) is told the batch's number
    /// and size, the attributes its trace shows.
    pub(super) fn into_outcome(self) -> Result<Appended, StoreError> {
        let span = tracing::Span::current();
        traces::attribute(&span, "order_listener.commit.batch", self.batch.id as i64);
        traces::attribute(&span, "order_listener.commit.size", self.batch.size as i64);
        self.outcome
    }
}

/// One commit batch: its number in this process (or replica), and how many appends it held.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batch {
    /// Its number.
    pub id: u64,
    /// Its appends.
    pub size: usize,
}

impl Batch {
    /// The span of the batch's transaction: a trace of its own, linked to the span of each
    /// append it holds (whose context each event carries when traces are exported).
    pub(super) fn span(self, events: &[&NewEvent]) -> tracing::Span {
        let span = tracing::info_span!(
            target: traces::TARGET,
            "commit batch",
            order_listener.commit.batch = self.id,
            order_listener.commit.size = self.size,
        );
        for context in events
            .iter()
            .filter_map(|event| event.trace_context.as_ref())
        {
            traces::link(&span, context);
        }
        span
    }
}

/// What the writer has done since it started.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    commits: AtomicU64,
    appends: AtomicU64,
    /// Batches begun.
    batches: AtomicU64,
    /// The last commit failed for lack of disk space (cleared by the next one that succeeds).
    disk_full: AtomicBool,
}

impl Counters {
    /// Whether the last commit failed for lack of disk space.
    pub(super) fn disk_full(&self) -> bool {
        self.disk_full.load(Ordering::Relaxed)
    }

    /// Numbers the next commit batch of `size` appends.
    pub(super) fn next_batch(&self, size: usize) -> Batch {
        Batch {
            id: self.batches.fetch_add(1, Ordering::Relaxed) + 1,
            size,
        }
    }

    /// A snapshot.
    pub(super) fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.commits.load(Ordering::Relaxed),
            appends: self.appends.load(Ordering::Relaxed),
        }
    }
}

/// What a writer tells the rest of the process after each commit.
#[derive(Debug, Clone)]
pub(crate) struct Announcer {
    /// The highest committed sequence.
    pub sequence: watch::Sender<i64>,
    /// Bumped when the outbox may have new work.
    pub outbox: watch::Sender<u64>,
}

impl Announcer {
    /// The outbox has new work.
    pub(super) fn outbox_changed(&self) {
        self.outbox.send_modify(|generation| *generation += 1);
    }

    /// Sequences up to `newest` are committed.
    pub(super) fn committed(&self, newest: i64) {
        self.sequence
            .send_modify(|sequence| *sequence = (*sequence).max(newest));
    }
}

/// The bookkeeping after a batch, the same for both backends: metrics, counters,
/// announcements, then each caller's answer.
#[derive(Clone)]
pub(crate) struct Bookkeeper {
    /// Commits and appends.
    pub counters: Arc<Counters>,
    /// Where commit sizes and durations go.
    pub metrics: Option<Arc<Metrics>>,
    /// Commit announcements.
    pub announcer: Announcer,
}

impl Bookkeeper {
    /// Answers every append of a batch with its outcome, or with the batch's error.
    pub(super) fn settle(
        &self,
        replies: impl IntoIterator<Item = Reply>,
        result: Result<BatchOutcome, StoreError>,
        batch: Batch,
        elapsed: Duration,
    ) {
        let size = batch.size;
        tracing::debug!(
            size,
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            "commit batch"
        );
        let full = matches!(result, Err(StoreError::DiskFull(_)));
        if self.counters.disk_full.swap(full, Ordering::Relaxed) != full {
            if let Some(metrics) = &self.metrics {
                metrics.disk_full(full);
            }
            if full {
                tracing::error!(
                    "the disk that holds the store is full: events are refused with 503 (code 5) \
                     and /readyz fails until space is freed; nothing acknowledged is lost"
                );
            } else {
                tracing::info!("the store takes writes again: disk space is back");
            }
        }
        match result {
            Ok(outcomes) => {
                if let Some(metrics) = &self.metrics {
                    metrics.commit(size, elapsed);
                }
                self.counters.commits.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .appends
                    .fetch_add(size as u64, Ordering::Relaxed);
                let newest = outcomes
                    .outcomes
                    .iter()
                    .filter_map(|outcome| match outcome {
                        Ok(Appended::Stored { sequence }) => Some(*sequence),
                        _ => None,
                    })
                    .max();
                if let Some(newest) = newest {
                    self.announcer.committed(newest);
                }
                if outcomes.queued > 0 {
                    self.announcer.outbox_changed();
                }
                for (reply, outcome) in replies.into_iter().zip(outcomes.outcomes) {
                    let _ = reply.send(Answer { outcome, batch });
                }
            }
            Err(error) => {
                if error.is_retryable() {
                    tracing::warn!(size, error = %crate::telemetry::error_chain(&error), "commit batch failed");
                } else {
                    tracing::error!(size, error = %crate::telemetry::error_chain(&error), "commit batch failed");
                }
                for reply in replies {
                    let outcome = Err(error.clone());
                    let _ = reply.send(Answer { outcome, batch });
                }
            }
        }
    }
}
