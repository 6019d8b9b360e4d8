//! The delivery worker of one sink: takes the due head of each lane from the outbox (one order's
//! deliveries go one at a time, in eventDate order; different orders in parallel, up to the
//! sink's `concurrency`), delivers, and records each outcome. A failure is retried on the
//! sink's schedule, no sooner than the sink's `Retry-After`, until the horizon; then it becomes
//! a dead letter. A 410 disables the sink.
//!
//! It wakes when the store announces outbox work, when the next retry is due, and once a second
//! for work queued by another process (the CLI's replay). On shutdown it stops taking work and
//! waits for the attempts in flight, each bounded by the sink's timeout.
//!
//! Each attempt is a trace span that continues the trace stored with its event; the sink gets
//! that attempt's context (or, with traces off, the stored one as it is).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing::field::Empty;

use super::{ForwardError, Sent, Sink};
use crate::config::sinks::{RetryPolicy, SinkConfig};
use crate::domain::routing::SinkName;
use crate::metrics::{AttemptResult, Metrics};
use crate::store::{Delivery, DeliveryOutcome, OutcomeKind, Store};
use crate::traces;

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
pub(crate) async fn run(
    store: Store,
    sink: Arc<Sink>,
    config: SinkConfig,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let name = config.name.clone();
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
                        let span = attempt_span(&name, &sink, &delivery);
                        let sink = sink.clone();
                        let timeout = config.timeout;
                        in_flight.spawn(
                            async move {
                                let started = Instant::now();
                                let result = attempt(&sink, &delivery, timeout).await;
                                Attempt {
                                    lane,
                                    delivery,
                                    result,
                                    elapsed: started.elapsed(),
                                }
                            }
                            .instrument(span),
                        );
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

/// The span of one delivery attempt: it continues the trace stored with the event.
fn attempt_span(name: &SinkName, sink: &Sink, delivery: &Delivery) -> tracing::Span {
    let span = tracing::info_span!(
        target: traces::TARGET,
        "delivery attempt",
        otel.name = %format_args!("deliver {name}"),
        otel.kind = "producer",
        order_listener.sink = name.as_str(),
        order_listener.sink.kind = sink.kind(),
        order_listener.event_id = delivery.event_id.as_str(),
        order_listener.delivery.id = delivery.id,
        order_listener.delivery.attempt = delivery.attempts + 1,
        order_listener.delivery.outcome = Empty,
    );
    traces::continue_from(&span, delivery.trace_context.as_ref());
    span
}

/// One attempt, in its span: the sink gets the span's trace context, and the span what became
/// of the attempt.
async fn attempt(
    sink: &Sink,
    delivery: &Delivery,
    timeout: Duration,
) -> Result<Sent, ForwardError> {
    let span = tracing::Span::current();
    let context = traces::pass_on(&span, delivery.trace_context.as_ref());
    let result = tokio::time::timeout(timeout, sink.deliver(delivery, context.as_ref()))
        .await
        .unwrap_or(Err(ForwardError::NoAnswer { after: timeout }));
    let outcome = match &result {
        Ok(Sent { duplicate: true }) => "duplicate",
        Ok(_) => "delivered",
        Err(error) => {
            traces::fail(&span, crate::telemetry::error_chain(error));
            "failed"
        }
    };
    span.record("order_listener.delivery.outcome", outcome);
    result
}

/// After a failed attempt: the next one, on the schedule and no sooner than the sink asked, or
/// a dead letter when that would be past the horizon or the error is not worth retrying.
fn after_failure(
    retry: &RetryPolicy,
    delivery: &Delivery,
    error: &ForwardError,
    now: DateTime<Utc>,
) -> OutcomeKind {
    let error_text = crate::telemetry::error_chain(error);
    if !error.is_retryable() {
        return OutcomeKind::Dead { error: error_text };
    }
    let failures = delivery.attempts + 1;
    let wait = retry
        .wait_after(failures)
        .max(error.retry_after().unwrap_or_default());
    let next_attempt_at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
    let horizon = delivery.created_at
        + chrono::Duration::from_std(retry.horizon).unwrap_or(chrono::Duration::MAX);
    if next_attempt_at > horizon {
        OutcomeKind::Dead { error: error_text }
    } else {
        OutcomeKind::Retry {
            next_attempt_at,
            error: error_text,
        }
    }
}

async fn is_disabled(store: &Store, name: &SinkName) -> bool {
    store.sink_statuses().await.is_ok_and(|statuses| {
        statuses
            .iter()
            .any(|status| &status.name == name && status.disabled.is_some())
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
        let result = match &attempt.result {
            Ok(sent) => {
                if sent.duplicate {
                    metrics.duplicate(name);
                }
                metrics.delivery(name, AttemptResult::Delivered, attempt.elapsed);
                tracing::debug!(sink = name, event_id = %delivery.event_id, "delivered");
                OutcomeKind::Delivered
            }
            Err(error) if error.is_gone() => {
                let reason = crate::telemetry::error_chain(error);
                gone = Some(reason.clone());
                metrics.delivery(name, AttemptResult::Failed, attempt.elapsed);
                // Not the delivery's fault: it waits, untouched, for the sink to come back.
                OutcomeKind::Retry {
                    next_attempt_at: now,
                    error: reason,
                }
            }
            Err(error) => {
                let outcome = after_failure(&config.retry, delivery, error, now);
                let failures = delivery.attempts + 1;
                match &outcome {
                    OutcomeKind::Dead { .. } => {
                        metrics.delivery(name, AttemptResult::Dead, attempt.elapsed);
                        tracing::warn!(sink = name, event_id = %delivery.event_id, attempts = failures, error = %crate::telemetry::error_chain(error), "delivery failed past the retry horizon: now a dead letter");
                    }
                    _ => {
                        metrics.delivery(name, AttemptResult::Failed, attempt.elapsed);
                        tracing::info!(sink = name, event_id = %delivery.event_id, attempts = failures, error = %crate::telemetry::error_chain(error), "delivery failed; will retry");
                    }
                }
                outcome
            }
        };
        outcomes.push(DeliveryOutcome {
            id: delivery.id,
            queued_at: delivery.created_at,
            result,
        });
    }
    if let Some(reason) = &gone {
        tracing::error!(sink = name, reason = %reason, "the sink answered 410 Gone: it is disabled until `order-listener sinks enable {name}`");
        if let Err(error) = store
            .set_sink_disabled(&config.name, Some(reason.clone()))
            .await
        {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn delivery(attempts: u32, queued_seconds_ago: i64, now: DateTime<Utc>) -> Delivery {
        Delivery {
            source: crate::domain::envelope::Source::Seller,
            id: 1,
            sink: "s".parse().unwrap(),
            sequence: 1,
            event_id: "e".parse().unwrap(),
            event_type: crate::domain::envelope::EventType::ServiceOrderCreation,
            event_date: now.into(),
            order_id: None,
            state: crate::store::DeliveryState::Pending,
            attempts,
            created_at: now - chrono::Duration::seconds(queued_seconds_ago),
            next_attempt_at: now,
            last_error: None,
            body: bytes::Bytes::new(),
            trace_context: None,
            dialect: crate::domain::envelope::Dialect::Onap,
        }
    }

    fn next_in(outcome: &OutcomeKind, now: DateTime<Utc>) -> Option<i64> {
        match outcome {
            OutcomeKind::Retry {
                next_attempt_at, ..
            } => Some((*next_attempt_at - now).num_seconds()),
            _ => None,
        }
    }

    #[test]
    fn failures_follow_the_schedule_honour_retry_after_and_die_past_the_horizon() {
        let retry = RetryPolicy {
            schedule: vec![Duration::from_secs(5), Duration::from_secs(30)],
            horizon: Duration::from_secs(600),
        };
        let now = Utc::now();
        let plain = ForwardError::Rejected {
            status: reqwest::StatusCode::SERVICE_UNAVAILABLE,
            retry_after: None,
        };
        let patient = ForwardError::Rejected {
            status: reqwest::StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(Duration::from_secs(120)),
        };
        assert_eq!(
            next_in(
                &after_failure(&retry, &delivery(0, 0, now), &plain, now),
                now
            ),
            Some(5)
        );
        assert_eq!(
            next_in(
                &after_failure(&retry, &delivery(1, 0, now), &plain, now),
                now
            ),
            Some(30)
        );
        assert_eq!(
            next_in(
                &after_failure(&retry, &delivery(7, 0, now), &plain, now),
                now
            ),
            Some(30)
        );
        assert_eq!(
            next_in(
                &after_failure(&retry, &delivery(0, 0, now), &patient, now),
                now
            ),
            Some(120),
            "Retry-After is longer than the schedule's wait"
        );
        assert!(matches!(
            after_failure(&retry, &delivery(3, 590, now), &plain, now),
            OutcomeKind::Dead { .. }
        ));
        assert!(
            matches!(
                after_failure(&retry, &delivery(3, 500, now), &patient, now),
                OutcomeKind::Dead { .. }
            ),
            "a Retry-After past the horizon makes a dead letter now"
        );
    }

    #[test]
    fn the_outcome_says_what_happened_and_an_error_not_worth_retrying_is_dead_at_once() {
        let retry = RetryPolicy {
            schedule: vec![Duration::from_secs(5)],
            horizon: Duration::from_secs(600),
        };
        let now = Utc::now();
        let rejected = ForwardError::from_status(reqwest::StatusCode::BAD_REQUEST, None);
        match after_failure(&retry, &delivery(0, 0, now), &rejected, now) {
            OutcomeKind::Retry { error, .. } => {
                assert_eq!(error, "HTTP sink answered 400 Bad Request")
            }
            other => panic!("a 400 is retried: {other:?}"),
        }
        let no_answer = ForwardError::NoAnswer {
            after: Duration::from_secs(3),
        };
        match after_failure(&retry, &delivery(0, 0, now), &no_answer, now) {
            OutcomeKind::Retry { error, .. } => assert_eq!(error, "no answer within 3s"),
            other => panic!("a timeout is retried: {other:?}"),
        }
        // `record` disables the sink on a 410 before it gets here; on its own, it is final.
        match after_failure(&retry, &delivery(0, 0, now), &ForwardError::Gone, now) {
            OutcomeKind::Dead { error } => assert_eq!(error, "HTTP sink answered 410 Gone"),
            other => panic!("not retryable: {other:?}"),
        }
    }
}
