//! `serve`'s reconciliation: every `[reconcile] sweep_every`, the suspect orders that are due
//! are queued to their seller API's worker, which checks them one at a time within the API's
//! request budget (`requests_per_minute`, a `governor` quota) and backs off from an API that
//! fails (from 1 s, doubling, to 5 min: `order_listener_reconcile_backoff_seconds`, and a
//! warning). A worker's queue is bounded: while an API is slow or hangs, its orders wait for a
//! later sweep, and nothing else waits for it: neither the Listener API, nor the other APIs.
//!
//! Which suspects are due is remembered in memory, per order: one found right (or repaired) is
//! not asked again for `recheck_after` unless a new event arrives; one whose check failed waits
//! longer after each failure. A restart forgets it, and checks the suspects once more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{Quota, RateLimiter};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Outcome, Reconciler};
use crate::config::reconcile::Reconcile;
use crate::domain::envelope::OrderId;
use crate::domain::suspect::Reasons;
use crate::metrics::Metrics;
use crate::store::{Store, SuspectFilter, SuspectOrder};

/// How many orders wait for one seller API at most.
const QUEUE: usize = 256;
/// How many suspects one read of the store lists.
const PAGE: usize = 500;
/// The longest backoff from a failing seller API.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// The longest an order whose check failed waits before it is due again (from one sweep's
/// interval, doubling after each failure).
const MAX_RETRY: Duration = Duration::from_secs(3600);

/// What the sweep remembers of one order.
#[derive(Debug, Clone)]
struct Memo {
    /// Waiting in a worker's queue.
    queued: bool,
    /// The order's event count after its last check.
    events: usize,
    /// Consecutive failed checks.
    failures: u32,
    /// Not due before this, unless it has new events (and its last check did not fail).
    next_at: tokio::time::Instant,
}

type Memos = Arc<Mutex<HashMap<OrderId, Memo>>>;

fn due(memo: Option<&Memo>, suspect: &SuspectOrder, now: tokio::time::Instant) -> bool {
    match memo {
        None => true,
        Some(memo) if memo.queued => false,
        Some(memo) if memo.failures > 0 => now >= memo.next_at,
        Some(memo) => suspect.order.event_count != memo.events || now >= memo.next_at,
    }
}

/// One queued check.
struct Job {
    order_id: OrderId,
    reasons: Reasons,
    events: usize,
}

/// Runs the sweep until `shutdown`; returns at once when there is no seller API or the sweep
/// is turned off.
pub(crate) async fn run(
    reconciler: Arc<Reconciler>,
    store: Store,
    settings: Reconcile,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let Some(every) = settings.sweep_every.filter(|_| reconciler.has_sellers()) else {
        return;
    };
    tracing::info!(
        seller_apis = ?reconciler.seller_names(),
        "reconciliation: checking suspect orders every {}",
        humantime::format_duration(every)
    );
    let memos: Memos = Arc::default();
    let mut queues = Vec::new();
    let mut workers = tokio::task::JoinSet::new();
    let listing = reconciler.listing_sellers();
    for (index, name) in reconciler.seller_names().into_iter().enumerate() {
        let (sender, receiver) = mpsc::channel(QUEUE);
        queues.push(sender);
        // One budget per seller API, for its checks and its listing.
        let budget = Arc::new(RateLimiter::direct(Quota::per_minute(
            settings.requests_per_minute,
        )));
        if let Some(every) = settings.list_every
            && listing.contains(&index)
        {
            workers.spawn(list(
                reconciler.clone(),
                index,
                every,
                budget.clone(),
                shutdown.clone(),
            ));
        }
        workers.spawn(work(Worker {
            budget,
            name,
            reconciler: reconciler.clone(),
            memos: memos.clone(),
            settings,
            metrics: metrics.clone(),
            receiver,
            shutdown: shutdown.clone(),
        }));
    }
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        if let Err(error) = sweep(&reconciler, &store, &settings, &memos, &queues).await {
            tracing::warn!(
                error = %crate::telemetry::error_chain(&error),
                "reconciliation: cannot list the suspect orders; trying again at the next sweep"
            );
        }
    }
    drop(queues);
    while workers.join_next().await.is_some() {}
}

/// Queues every due suspect to its seller API's worker.
async fn sweep(
    reconciler: &Reconciler,
    store: &Store,
    settings: &Reconcile,
    memos: &Memos,
    queues: &[mpsc::Sender<Job>],
) -> Result<(), crate::store::StoreError> {
    let mut after = None;
    let mut seen = std::collections::HashSet::new();
    loop {
        let page = store
            .suspects(SuspectFilter {
                reasons: Reasons::NONE,
                stale_after: settings.stale_after,
                now: chrono::Utc::now(),
                after: after.clone(),
                limit: PAGE,
            })
            .await?;
        let now = tokio::time::Instant::now();
        for suspect in &page {
            let id = &suspect.order.id;
            seen.insert(id.clone());
            // Every seller API is behind: the rest waits for a later sweep, unread.
            if queues.iter().all(|queue| queue.capacity() == 0) {
                continue;
            }
            let is_due = {
                let memos = memos
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                due(memos.get(id), suspect, now)
            };
            if !is_due {
                continue;
            }
            let Some(index) = reconciler.route(id).await? else {
                continue;
            };
            let job = Job {
                order_id: id.clone(),
                reasons: suspect.reasons,
                events: suspect.order.event_count,
            };
            // A full queue: the API is behind; the order waits for a later sweep.
            if queues[index].try_send(job).is_ok() {
                let mut memos = memos
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let memo = memos.entry(id.clone()).or_insert(Memo {
                    queued: true,
                    events: suspect.order.event_count,
                    failures: 0,
                    next_at: now,
                });
                memo.queued = true;
            }
        }
        if page.len() < PAGE {
            break;
        }
        after = page.last().map(|suspect| suspect.order.id.clone());
    }
    // Orders no longer suspect are forgotten.
    memos
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|id, memo| memo.queued || seen.contains(id));
    Ok(())
}

struct Worker {
    budget: Arc<Budget>,
    name: String,
    reconciler: Arc<Reconciler>,
    memos: Memos,
    settings: Reconcile,
    metrics: Arc<Metrics>,
    receiver: mpsc::Receiver<Job>,
    shutdown: CancellationToken,
}

/// A seller API's request budget.
type Budget = governor::DefaultDirectRateLimiter;

/// Lists the orders of the seller API at `index` every `every`, within its `budget`, and
/// records the creation of those the listener never heard of.
async fn list(
    reconciler: Arc<Reconciler>,
    index: usize,
    every: Duration,
    budget: Arc<Budget>,
    shutdown: CancellationToken,
) {
    let name = reconciler.seller_names()[index].clone();
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let listed = tokio::select! {
            () = shutdown.cancelled() => return,
            listed = reconciler.list(index, false, Some(&budget)) => listed,
        };
        match listed {
            Ok(checks) if checks.is_empty() => {}
            Ok(checks) => tracing::info!(
                seller_api = %name,
                "reconciliation: the seller's list holds {} order(s) the listener never heard of",
                checks.len()
            ),
            Err(outcome) => tracing::warn!(
                seller_api = %name,
                outcome = ?outcome,
                "reconciliation: cannot list the seller's orders; trying again in {}",
                humantime::format_duration(every)
            ),
        }
    }
}

/// One seller API's worker: its queue's checks, one at a time, within its budget.
async fn work(mut worker: Worker) {
    let budget = worker.budget.clone();
    let mut backoff = Duration::ZERO;
    worker.metrics.reconcile_backoff(&worker.name, backoff);
    loop {
        let job = tokio::select! {
            () = worker.shutdown.cancelled() => return,
            job = worker.receiver.recv() => match job {
                Some(job) => job,
                None => return,
            },
        };
        let ready = async {
            tokio::time::sleep(backoff).await;
            budget.until_ready().await;
        };
        tokio::select! {
            () = worker.shutdown.cancelled() => return,
            () = ready => {}
        }
        let check = tokio::select! {
            () = worker.shutdown.cancelled() => return,
            check = worker.reconciler.check(&job.order_id, job.reasons, false) => check,
        };
        let failed = matches!(check.outcome, Outcome::Failed { .. });
        if let Outcome::Failed {
            error,
            seller_failed,
        } = &check.outcome
        {
            if *seller_failed {
                backoff = (backoff * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
                worker.metrics.reconcile_backoff(&worker.name, backoff);
            }
            tracing::warn!(
                seller_api = %worker.name,
                order_id = %job.order_id,
                %error,
                "reconciliation: the check failed; trying again in {}",
                humantime::format_duration(backoff.max(Duration::from_secs(1)))
            );
        } else if !backoff.is_zero() {
            backoff = Duration::ZERO;
            worker.metrics.reconcile_backoff(&worker.name, backoff);
            tracing::info!(seller_api = %worker.name, "reconciliation: the seller API answers again");
        }
        let now = tokio::time::Instant::now();
        let mut memos = worker
            .memos
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let memo = memos.entry(job.order_id).or_insert(Memo {
            queued: false,
            events: job.events,
            failures: 0,
            next_at: now,
        });
        memo.queued = false;
        if failed {
            memo.failures = memo.failures.saturating_add(1);
            let every = worker.settings.sweep_every.unwrap_or(MAX_RETRY);
            let wait = every.saturating_mul(1 << memo.failures.min(12));
            memo.next_at = now + wait.min(MAX_RETRY);
        } else {
            memo.failures = 0;
            memo.events =
                job.events + usize::from(matches!(check.outcome, Outcome::Repaired { .. }));
            memo.next_at = now + worker.settings.recheck_after;
        }
    }
}
