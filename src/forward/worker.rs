//! The delivery worker of one sink: takes the due head of each lane from the outbox (one order's
//! deliveries go one at a time, in eventDate order; different orders in parallel, up to the
//! sink's `concurrency`), delivers, and records each outcome. A failure is retried on the
//! sink's schedule, no sooner than the sink's `Retry-After`, until the horizon; then it becomes
//! a dead letter. A 410 disables the sink.
//!
//! It wakes when the store announces outbox work, when the next retry is due, and once a second
//! for work queued by another process (the CLI's replay). On shutdown it stops taking work and
//! waits for the attempts in flight, each bounded by the sink's timeout.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{ForwardError, Sent, Sink};
use crate::config::sinks::SinkConfig;
use crate::metrics::{AttemptResult, Metrics};
use crate::store::{Delivery, DeliveryOutcome, Store};

/// How often the worker looks for work that another process queued.
const POLL: Duration = Duration::from_secs(1);

/// One finished attempt.
struct Attempt {
    lane: String,
    delivery: Delivery,
    result: Result<Sent, ForwardError>,
    elapsed: Duration,
}

/// Delivers `config`'s outbox until `shutdown`.
pub async fn run(
    store: Store,
    sink: Arc<Sink>,
    config: SinkConfig,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let name = config.name.as_str().to_owned();
    let mut outbox = store.commits().map(|commits| commits.outbox);
    let mut in_flight: JoinSet<Attempt> = JoinSet::new();
    let mut busy: HashSet<String> = HashSet::new();
    let mut disabled = is_disabled(&store, &name).await;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let free = config.concurrency.saturating_sub(in_flight.len());
        if free > 0 && !disabled {
            match store
                .due_deliveries(&name, Utc::now(), busy.iter().cloned().collect(), free)
                .await
            {
                Ok(due) => {
                    for delivery in due {
                        let lane = delivery.lane();
                        busy.insert(lane.clone());
                        let sink = sink.clone();
                        let timeout = config.timeout;
                        in_flight.spawn(async move {
                            let started = Instant::now();
                            let result = tokio::time::timeout(timeout, sink.deliver(&delivery))
                                .await
                                .unwrap_or_else(|_| {
                                    Err(ForwardError::retry(format!(
                                        "no answer within {}s",
                                        timeout.as_secs()
                                    )))
                                });
                            Attempt {
                                lane,
                                delivery,
                                result,
                                elapsed: started.elapsed(),
                            }
                        });
                    }
                }
                Err(error) => {
                    tracing::warn!(sink = %name, error = %crate::telemetry::error_chain(&error), "cannot read the outbox");
                }
            }
        }
        let next_due = if disabled || free == 0 {
            None
        } else {
            store.next_due(&name).await.ok().flatten()
        };
        let wait = next_due
            .and_then(|due| (due - Utc::now()).to_std().ok())
            .unwrap_or(POLL)
            .min(POLL);
        tokio::select! {
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                let mut finished = Vec::new();
                if let Ok(attempt) = joined {
                    finished.push(attempt);
                }
                // Record every attempt that is already done in one transaction.
                while let Some(Ok(attempt)) = in_flight.try_join_next() {
                    finished.push(attempt);
                }
                disabled |= record(&store, &config, &metrics, &mut busy, finished).await;
            }
            changed = async {
                match outbox.as_mut() {
                    Some(receiver) => receiver.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            } => {
                if !changed {
                    outbox = None;
                }
                if disabled {
                    disabled = is_disabled(&store, &name).await;
                }
            }
            () = tokio::time::sleep(wait) => {
                if disabled {
                    disabled = is_disabled(&store, &name).await;
                }
            }
            () = shutdown.cancelled() => break,
        }
    }
    // Let the attempts in flight finish (each has a timeout) and record them.
    let mut finished = Vec::new();
    while let Some(joined) = in_flight.join_next().await {
        if let Ok(attempt) = joined {
            finished.push(attempt);
        }
    }
    record(&store, &config, &metrics, &mut busy, finished).await;
}

async fn is_disabled(store: &Store, name: &str) -> bool {
    store.sink_statuses().await.is_ok_and(|statuses| {
        statuses
            .iter()
            .any(|status| status.name == name && status.disabled.is_some())
    })
}

/// Records attempts; returns whether the sink must now be disabled (it answered 410).
async fn record(
    store: &Store,
    config: &SinkConfig,
    metrics: &Metrics,
    busy: &mut HashSet<String>,
    attempts: Vec<Attempt>,
) -> bool {
    if attempts.is_empty() {
        return false;
    }
    let name = config.name.as_str();
    let now = Utc::now();
    let mut gone = None;
    let mut outcomes = Vec::with_capacity(attempts.len());
    for attempt in &attempts {
        let delivery = &attempt.delivery;
        let outcome = match &attempt.result {
            Ok(sent) => {
                if sent.duplicate {
                    metrics.duplicate(name);
                }
                metrics.delivery(name, AttemptResult::Delivered, attempt.elapsed);
                tracing::debug!(sink = name, event_id = %delivery.event_id, "delivered");
                DeliveryOutcome::Delivered { id: delivery.id }
            }
            Err(error) if error.gone => {
                gone = Some(error.message.clone());
                metrics.delivery(name, AttemptResult::Failed, attempt.elapsed);
                // Not the delivery's fault: it waits, untouched, for the sink to come back.
                DeliveryOutcome::Retry {
                    id: delivery.id,
                    next_attempt_at: now,
                    error: error.message.clone(),
                }
            }
            Err(error) => {
                let failures = delivery.attempts + 1;
                let wait = config
                    .retry
                    .wait_after(failures)
                    .max(error.retry_after.unwrap_or_default());
                let next_attempt_at =
                    now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                let horizon = delivery.created_at
                    + chrono::Duration::from_std(config.retry.horizon)
                        .unwrap_or(chrono::Duration::MAX);
                if next_attempt_at > horizon {
                    metrics.delivery(name, AttemptResult::Dead, attempt.elapsed);
                    tracing::warn!(sink = name, event_id = %delivery.event_id, attempts = failures, error = %error, "delivery failed past the retry horizon: now a dead letter");
                    DeliveryOutcome::Dead {
                        id: delivery.id,
                        error: error.message.clone(),
                    }
                } else {
                    metrics.delivery(name, AttemptResult::Failed, attempt.elapsed);
                    tracing::info!(sink = name, event_id = %delivery.event_id, attempts = failures, retry_in_s = wait.as_secs(), error = %error, "delivery failed; will retry");
                    DeliveryOutcome::Retry {
                        id: delivery.id,
                        next_attempt_at,
                        error: error.message.clone(),
                    }
                }
            }
        };
        outcomes.push(outcome);
    }
    if let Some(reason) = &gone {
        tracing::error!(sink = name, reason = %reason, "the sink answered 410 Gone: it is disabled until `order-listener sinks enable {name}`");
        if let Err(error) = store.set_sink_disabled(name, Some(reason.clone())).await {
            tracing::error!(sink = name, error = %crate::telemetry::error_chain(&error), "cannot record that the sink is disabled");
        }
    }
    if let Err(error) = store.record_outcomes(outcomes).await {
        // The attempts stay pending and are made again: a possible duplicate, never a loss.
        tracing::error!(sink = name, error = %crate::telemetry::error_chain(&error), "cannot record delivery outcomes");
    }
    for attempt in attempts {
        busy.remove(&attempt.lane);
    }
    gone.is_some()
}
