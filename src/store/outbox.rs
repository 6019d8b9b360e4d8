//! The outbox's types: a [`Delivery`] and its [`DeliveryState`], what became of an attempt,
//! what to queue again, and a sink's counts. Both backends read and write these; the SQL is in
//! `sqlite/outbox.rs` and `postgres/outbox.rs`.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::envelope::{EventDate, EventId, EventType, OrderId};
use crate::domain::routing::{RouteFilter, SinkName};

/// Where a delivery is in its life; stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting for its (next) attempt.
    Pending,
    /// The sink took it.
    Delivered,
    /// It failed past the retry horizon: a dead letter.
    Dead,
}

impl DeliveryState {
    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryState {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Dead,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
        .ok_or_else(|| format!("{text:?} is not a delivery state"))
    }
}

/// A delivery in the outbox, with what a sink needs to send it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The outbox row.
    pub id: i64,
    /// The sink it is for.
    pub sink: SinkName,
    /// The event's place in receipt order.
    pub sequence: i64,
    /// The event.
    pub event_id: EventId,
    /// Its type.
    pub event_type: EventType,
    /// Its date.
    pub event_date: EventDate,
    /// Its order, for service-order events.
    pub order_id: Option<OrderId>,
    /// Where it is in its life.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it was queued; the retry horizon counts from here.
    pub created_at: DateTime<Utc>,
    /// When it is next due.
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The event's body as received.
    #[serde(skip)]
    pub body: Bytes,
    /// The trace the event belongs to; each attempt continues it.
    #[serde(skip)]
    pub trace_context: Option<crate::traces::TraceContext>,
    /// How the seller sent the event.
    pub dialect: crate::domain::envelope::Dialect,
    /// Who wrote the event: a seller, or the listener's reconciliation.
    pub source: crate::domain::envelope::Source,
}

impl Delivery {
    /// Its lane: deliveries of one lane go one at a time, in eventDate order.
    pub fn lane(&self) -> String {
        lane(
            self.order_id.as_ref().map(OrderId::as_str),
            self.event_id.as_str(),
        )
    }
}

/// The lane of an event: its order, so that one order's deliveries keep their order; an event
/// without an order is a lane of its own.
pub fn lane(order_id: Option<&str>, event_id: &str) -> String {
    match order_id {
        Some(order_id) => format!("order:{order_id}"),
        None => format!("event:{event_id}"),
    }
}

/// What became of one delivery attempt. It applies only if the delivery was not queued again
/// meanwhile (a replay or a retry while the attempt was in flight), so that a requeue is never
/// swallowed by an older attempt's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    /// The outbox row.
    pub id: i64,
    /// The row's `created_at` when the attempt began.
    pub queued_at: DateTime<Utc>,
    /// What happened.
    pub result: OutcomeKind,
}

/// What happened to a delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeKind {
    /// The sink has it.
    Delivered,
    /// Try again at `next_attempt_at`.
    Retry {
        /// When.
        next_attempt_at: DateTime<Utc>,
        /// Why it failed.
        error: String,
    },
    /// Past the retry horizon: a dead letter.
    Dead {
        /// Why it failed last.
        error: String,
    },
}

/// What a [`Requeue`] takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RequeueScope {
    /// Dead letters only (`dead-letters retry`).
    DeadLetters,
    /// Every matching event, delivered or not, and events the sink never had (`replay`).
    #[default]
    Replay,
}

/// Which deliveries to queue again.
#[derive(Debug, Clone, Default)]
pub struct Requeue {
    /// For this sink only; `None` means every sink (dead letters only).
    pub sink: Option<SinkName>,
    /// Dead letters only, or a replay.
    pub scope: RequeueScope,
    /// Only these outbox rows.
    pub ids: Vec<i64>,
    /// Only events received at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only events of this order.
    pub order_id: Option<OrderId>,
    /// Only this event.
    pub event_id: Option<EventId>,
    /// At most this many in one call (the CLI calls again until none is left).
    pub limit: usize,
    /// For replay: events after this sequence (the previous call's last).
    pub after_sequence: i64,
    /// For replay: only events the sink's filter takes.
    pub filter: Option<RouteFilter>,
}

/// What a requeue call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requeued {
    /// Deliveries queued again.
    pub count: usize,
    /// The highest event sequence looked at, to continue from.
    pub last_sequence: i64,
}

/// The outbox of one sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkStatus {
    /// The sink.
    pub name: SinkName,
    /// Deliveries waiting.
    pub pending: u64,
    /// Deliveries made.
    pub delivered: u64,
    /// Dead letters.
    pub dead: u64,
    /// Pending deliveries whose last attempt failed.
    pub failing: u64,
    /// The oldest pending delivery's queue time.
    pub oldest_pending_at: Option<DateTime<Utc>>,
    /// Set when the sink answered 410 Gone: when, and why.
    pub disabled: Option<(DateTime<Utc>, String)>,
}

impl From<&SinkStatus> for crate::metrics::OutboxGauges {
    fn from(status: &SinkStatus) -> Self {
        crate::metrics::OutboxGauges {
            sink: status.name.to_string(),
            pending: status.pending,
            dead: status.dead,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_states_read_back_what_they_print() {
        for state in [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Dead,
        ] {
            assert_eq!(state.as_str().parse::<DeliveryState>(), Ok(state));
            assert_eq!(
                serde_json::to_value(state).unwrap_or_default(),
                serde_json::json!(state.as_str())
            );
        }
        assert!("Dead".parse::<DeliveryState>().is_err());
    }
}
