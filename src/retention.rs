//! The pruning task of `serve`: every `retention.interval`, deletes what `[retention]` lets go,
//! one bounded batch (one short transaction) at a time, so appends never wait long behind it.
//! It decides only *when*; what goes is the store's rule ([`Store::prune`]).

use chrono::Utc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::config::retention::Retention;
use crate::store::{Pruned, Store};

/// Prunes on every tick until `shutdown`, with the retention `settings` hold at that tick (a
/// reload changes them: a new interval starts a new schedule; with neither limit set the task
/// only waits); a failed batch is logged and tried again at the next tick.
pub(crate) async fn run(
    store: Store,
    mut settings: tokio::sync::watch::Receiver<Retention>,
    shutdown: CancellationToken,
) {
    loop {
        let retention = *settings.borrow_and_update();
        let mut ticks = tokio::time::interval(retention.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The first tick is at once: a start, or new settings, prune now.
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = settings.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                _ = ticks.tick() => {}
            }
            if retention.is_enabled() {
                prune_and_log(&store, &retention, &shutdown).await;
            }
        }
    }
}

async fn prune_and_log(store: &Store, retention: &Retention, shutdown: &CancellationToken) {
    let started = std::time::Instant::now();
    match prune_once(store, retention, shutdown).await {
        Ok(pruned) if pruned.is_empty() => tracing::debug!("retention: nothing to prune"),
        Ok(pruned) => tracing::info!(
            events = pruned.events,
            deliveries = pruned.deliveries + pruned.finished_deliveries,
            orders = pruned.orders,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "retention: pruned {} events, {} deliveries and {} orders",
            pruned.events,
            pruned.deliveries + pruned.finished_deliveries,
            pruned.orders
        ),
        Err((pruned, error)) => tracing::warn!(
            events = pruned.events,
            error = %crate::telemetry::error_chain(&error),
            "retention: pruning failed; trying again at the next interval"
        ),
    }
}

/// One run: batches until a batch is not full, or `shutdown`. The limits are fixed at the start
/// of the run, so that events arriving meanwhile never keep it going.
pub(crate) async fn prune_once(
    store: &Store,
    retention: &Retention,
    shutdown: &CancellationToken,
) -> Result<Pruned, (Pruned, crate::store::StoreError)> {
    let limits = retention.limits(Utc::now());
    let mut total = Pruned::default();
    while !shutdown.is_cancelled() {
        let pruned = store
            .prune(limits, retention.batch_size)
            .await
            .map_err(|error| (total, error))?;
        total.add(pruned);
        if !pruned.filled(retention.batch_size) {
            break;
        }
        // Let the appends and deliveries that queued meanwhile go first.
        tokio::task::yield_now().await;
    }
    Ok(total)
}
