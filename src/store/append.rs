//! The append pipeline, written once for both backends: the dedupe decision and the conflict
//! rule, routing to sinks, the incremental projection with its failure policy, and the
//! bookkeeping after a commit. A backend supplies a transaction that speaks SQL
//! ([`AppendTx`]); nothing here knows SQL.
//!
//! One batch is one transaction. Its events are inserted first (in eventId order, so that two
//! replicas inserting the same ids never wait on each other in a cycle), then each order they
//! touch is projected once: its stored [`Fold`] is locked and read, the batch's events of that
//! order are applied in receipt order, and the fold is written back. An event that lands
//! between two stored events of a track has its neighbours looked up a page at a time around
//! its key ([`NeighbourSearch`]).
//!
//! The cost of one event is therefore constant in the number of its order's events when it
//! arrives in order (after every event of its tracks) or before all of them (newest-first),
//! and, when it lands between two events, proportional to the number of the order's events
//! between it and its nearest neighbours on its tracks, read in pages of 8 doubling to 256.
//! With ONAP's out-of-order threads those neighbours are the next few events. The worst case
//! is a late event naming an item that only events far away on either side name: the search
//! reads the events in between, at most the order's events, each decoded from its compact
//! facts (never JSON).
//!
//! The failure policy, the same on both backends: a fold that cannot be read, or whose
//! neighbours are not where it says, is rebuilt from the order's events; an event whose stored
//! facts cannot be read is left out of its order's projection and logged. Neither fails the
//! batch: the events are stored and acknowledged.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::codec::{decode_facts, decode_fold, encode_facts, encode_fold};
use super::{Appended, NewEvent, StoreError, internal, lane};
use crate::domain::envelope::{
    EventDate, EventId, EventType, OrderFacts, OrderId, Source, same_payload,
};
use crate::domain::fold::{Fold, NeighbourSearch, Neighbours, Step, Track};
use crate::domain::projection::TimelineEntry;
use crate::domain::routing::Route;

/// How many of an order's events a neighbour search reads first: neighbours are usually the
/// next events. Each further page is twice as large, up to [`LAST_PAGE`].
const FIRST_PAGE: usize = 8;
/// The largest page of a neighbour search.
const LAST_PAGE: usize = 256;

/// A stored event found by its eventId.
#[derive(Debug)]
pub(crate) struct Stored {
    /// Its place in receipt order.
    pub sequence: i64,
    /// Its body.
    pub body: Vec<u8>,
}

/// An event to insert, with its facts in their compact form.
pub(crate) struct EventRow<'a> {
    /// The event.
    pub event: &'a NewEvent,
    /// Its facts, encoded, for service-order events.
    pub facts: Option<Vec<u8>>,
}

/// A delivery to queue.
pub(crate) struct DeliveryRow<'a> {
    /// The sink.
    pub sink: &'a str,
    /// The event's sequence.
    pub sequence: i64,
    /// Its lane.
    pub lane: String,
    /// The event's date.
    pub event_date_us: i64,
    /// When it was received; the delivery is due then.
    pub created_us: i64,
}

/// What a projection write changes, so that a backend touches only the indexes it must.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowChange {
    /// The row may not exist: insert it, or replace every column.
    Upsert,
    /// The row exists. The state and the suspect reasons are written only when they changed,
    /// so that their indexes are left alone otherwise (SQLite rewrites an index entry whenever
    /// the UPDATE names one of its columns, even with the value it had).
    Update {
        /// The state changed.
        state: bool,
        /// The suspect reasons changed.
        suspects: bool,
    },
}

impl RowChange {
    /// Whether a save names the suspect reasons, and the state.
    pub(crate) fn names(self) -> (bool, bool) {
        match self {
            RowChange::Upsert => (true, true),
            RowChange::Update { state, suspects } => (suspects, state),
        }
    }
}

/// The values a save of `row` binds, as a `Vec<&$value>` (each backend's `ToSql` trait
/// object), in the order of its placeholders: the ten columns every save writes, then the
/// suspect reasons and the state where [`RowChange::names`] says the save names them.
macro_rules! order_values {
    ($row:expr, $value:ty) => {{
        let row = $row;
        let (suspects, state) = row.change.names();
        let mut values: Vec<&$value> = vec![
            &row.id,
            &row.external_id,
            &row.order_date,
            &row.completion_date_time,
            &row.item_count,
            &row.anomaly_count,
            &row.event_count,
            &row.last_event_date_us,
            &row.updated_at_us,
            &row.fold,
        ];
        if suspects {
            values.push(&row.suspects);
        }
        if state {
            values.push(&row.state);
        }
        values
    }};
}
pub(crate) use order_values;

/// An order's projection as stored.
pub(crate) struct OrderRow {
    /// How to write it.
    pub change: RowChange,
    /// The order.
    pub id: String,
    /// Its fold, encoded.
    pub fold: Vec<u8>,
    /// The columns lists and searches read.
    pub state: Option<&'static str>,
    /// `externalId`.
    pub external_id: Option<String>,
    /// `orderDate`.
    pub order_date: Option<String>,
    /// `completionDateTime`.
    pub completion_date_time: Option<String>,
    /// How many items.
    pub item_count: i64,
    /// How many anomalies.
    pub anomaly_count: i64,
    /// How many events.
    pub event_count: i64,
    /// The reasons it is suspect, as stored (`Reasons::stored_bits`).
    pub suspects: i64,
    /// The newest eventDate.
    pub last_event_date_us: i64,
    /// When the listener changed it.
    pub updated_at_us: i64,
}

/// One stored event of an order, as the projection reads it.
#[derive(Debug, Clone)]
pub(crate) struct OrderEvent {
    /// Its place in receipt order.
    pub sequence: i64,
    /// Its eventId.
    pub event_id: String,
    /// Its eventType.
    pub event_type: String,
    /// Its eventDate.
    pub date_us: i64,
    /// Its facts in the compact form.
    pub facts: Option<Vec<u8>>,
    /// Its facts as JSON text, for rows written before the compact form.
    pub facts_json: Option<String>,
    /// How the seller sent it.
    pub dialect: String,
    /// Who wrote it (`NULL`: the seller).
    pub source: Option<String>,
}

/// The SQL of [`AppendTx::order_events`], one text for both backends.
pub(crate) const ORDER_EVENTS_SQL: &str =
    "SELECT sequence, event_id, event_type, event_date_us, facts_c, facts, dialect, source
     FROM events WHERE order_id = $1";

/// The SQL of [`AppendTx::order_page`], one text for both backends: `$1` to `$4` are the order,
/// the point's date and sequence, and the limit, in order of first appearance (the order in
/// which SQLite numbers `$N` parameters). Columns as [`ORDER_EVENTS_SQL`].
pub(crate) fn order_page_sql(direction: Direction) -> &'static str {
    match direction {
        Direction::Before => {
            "SELECT sequence, event_id, event_type, event_date_us, facts_c, facts, dialect, source
             FROM events WHERE order_id = $1 AND (event_date_us, sequence) < ($2, $3)
             ORDER BY event_date_us DESC, sequence DESC LIMIT $4"
        }
        Direction::After => {
            "SELECT sequence, event_id, event_type, event_date_us, facts_c, facts, dialect, source
             FROM events WHERE order_id = $1 AND (event_date_us, sequence) > ($2, $3)
             ORDER BY event_date_us, sequence LIMIT $4"
        }
    }
}

/// Which way an order's events are paged from a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Before the point, newest first: `(event_date_us, sequence) < point`, descending.
    Before,
    /// After the point, oldest first: `(event_date_us, sequence) > point`, ascending.
    After,
}

/// What a backend does inside one append transaction. Every method is one or two SQL
/// statements; the SQLite backend's futures never wait.
pub(crate) trait AppendTx {
    /// The stored event with this eventId.
    async fn find_event(&mut self, event_id: &str) -> Result<Option<Stored>, StoreError>;
    /// Inserts the event; `None` if its eventId is already stored (after waiting for another
    /// replica's transaction that inserted it, on PostgreSQL).
    async fn insert_event(&mut self, row: &EventRow<'_>) -> Result<Option<i64>, StoreError>;
    /// Queues a delivery; whether a row was added.
    async fn insert_delivery(&mut self, row: &DeliveryRow<'_>) -> Result<bool, StoreError>;
    /// Locks the order's projection row for this transaction and returns its stored fold.
    /// PostgreSQL creates the row if there is none, holding `empty` (the encoded empty fold),
    /// so that replicas projecting a new order wait for each other.
    async fn lock_fold(&mut self, order_id: &str, empty: &[u8]) -> Result<StoredFold, StoreError>;
    /// A page of the order's events from `point` (`(event_date_us, sequence)`).
    async fn order_page(
        &mut self,
        order_id: &str,
        direction: Direction,
        point: (i64, i64),
        limit: usize,
    ) -> Result<Vec<OrderEvent>, StoreError>;
    /// Every event of the order.
    async fn order_events(&mut self, order_id: &str) -> Result<Vec<OrderEvent>, StoreError>;
    /// Writes the order's projection row.
    async fn save_order(&mut self, row: &OrderRow) -> Result<(), StoreError>;
    /// When the listener last changed the order's projection row, if it has one.
    async fn order_updated_at(&mut self, order_id: &str) -> Result<Option<i64>, StoreError>;
    /// Deletes the order's projection row; how many rows went.
    async fn delete_order(&mut self, order_id: &str) -> Result<usize, StoreError>;
    /// Replaces the compact facts of the event at `sequence`, if it is an event of `order_id`;
    /// how many rows changed.
    async fn update_facts(
        &mut self,
        sequence: i64,
        order_id: &str,
        facts: &[u8],
    ) -> Result<usize, StoreError>;
    /// Stores the event's snapshot, replacing one fetched before.
    async fn save_snapshot(&mut self, row: &SnapshotRow<'_>) -> Result<(), StoreError>;
}

/// An order fetched from the seller for one event, as stored.
pub(crate) struct SnapshotRow<'a> {
    /// The event's sequence.
    pub sequence: i64,
    /// Its order.
    pub order_id: &'a str,
    /// When it was fetched.
    pub fetched_at_us: i64,
    /// The seller's answer, as received.
    pub body: &'a [u8],
}

/// An order's projection row, as [`AppendTx::lock_fold`] found it.
#[derive(Debug)]
pub(crate) enum StoredFold {
    /// There is no row: the order has no stored event before this transaction.
    Missing,
    /// The row was written before folds were stored (or its fold was cleared).
    Legacy,
    /// The row's fold, encoded.
    Fold(Vec<u8>),
}

/// What a batch did: each append's outcome, in the batch's order, and the deliveries queued.
pub(crate) struct BatchOutcome {
    /// One per append.
    pub outcomes: Vec<Result<Appended, StoreError>>,
    /// Deliveries queued.
    pub queued: u64,
}

/// Appends a batch inside `tx`; the caller commits.
pub(crate) async fn append_batch<T: AppendTx>(
    tx: &mut T,
    events: &[&NewEvent],
    routes: &[Route],
    now: DateTime<Utc>,
) -> Result<BatchOutcome, StoreError> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by(|a, b| {
        events[*a]
            .notification
            .event_id
            .cmp(&events[*b].notification.event_id)
    });
    let mut outcomes: Vec<Option<Result<Appended, StoreError>>> = vec![None; events.len()];
    let mut touched: BTreeMap<&OrderId, Vec<(i64, Step)>> = BTreeMap::new();
    let mut queued = 0;
    for index in order {
        let event = events[index];
        let outcome = append_one(tx, event).await?;
        if let Ok(Appended::Stored { sequence }) = outcome {
            queued += queue_deliveries(tx, event, sequence, routes).await?;
            let notification = &event.notification;
            if let Some(facts) = &notification.order {
                let step = Step::new(
                    &notification.event_id,
                    notification.event_type,
                    notification.event_date,
                    facts,
                    notification.dialect,
                );
                touched
                    .entry(&facts.order_id)
                    .or_default()
                    .push((sequence, step));
            }
        }
        outcomes[index] = Some(outcome);
    }
    for (order_id, steps) in touched {
        project_order(tx, order_id, steps, now).await?;
    }
    Ok(BatchOutcome {
        outcomes: outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or_else(|| Err(internal("an append was skipped"))))
            .collect(),
        queued,
    })
}

/// Dedupe: a new eventId is inserted; a known one is a duplicate if its payload is the same
/// (compared as JSON) and a conflict otherwise, and the stored event is kept.
async fn append_one<T: AppendTx>(
    tx: &mut T,
    event: &NewEvent,
) -> Result<Result<Appended, StoreError>, StoreError> {
    let notification = &event.notification;
    let event_id = notification.event_id.as_str();
    let row = EventRow {
        event,
        facts: notification.order.as_ref().map(encode_facts),
    };
    // Inserting first costs a new event (the usual case) one statement. A second round
    // happens only if the stored event went (retention) between the two statements.
    for _ in 0..2 {
        if let Some(sequence) = tx.insert_event(&row).await? {
            return Ok(Ok(Appended::Stored { sequence }));
        }
        if let Some(stored) = tx.find_event(event_id).await? {
            return Ok(if same_payload(&stored.body, &notification.raw) {
                Ok(Appended::Duplicate {
                    sequence: stored.sequence,
                    body: Bytes::from(stored.body),
                })
            } else {
                Err(StoreError::Conflict {
                    event_id: notification.event_id.clone(),
                })
            });
        }
    }
    Err(internal(format!(
        "event {event_id} is neither stored nor insertable"
    )))
}

/// Queues a delivery of a new event for every route it matches.
async fn queue_deliveries<T: AppendTx>(
    tx: &mut T,
    event: &NewEvent,
    sequence: i64,
    routes: &[Route],
) -> Result<u64, StoreError> {
    let notification = &event.notification;
    let mut queued = 0;
    for route in routes
        .iter()
        .filter(|route| route.filter.matches(notification))
    {
        let row = DeliveryRow {
            sink: route.sink.as_str(),
            sequence,
            lane: lane(
                notification
                    .order
                    .as_ref()
                    .map(|facts| facts.order_id.as_str()),
                notification.event_id.as_str(),
            ),
            event_date_us: notification.event_date.timestamp_micros(),
            created_us: event.received_at.timestamp_micros(),
        };
        queued += u64::from(tx.insert_delivery(&row).await?);
    }
    Ok(queued)
}

/// Applies the batch's new events of one order to its stored fold, once per batch.
async fn project_order<T: AppendTx>(
    tx: &mut T,
    order_id: &OrderId,
    mut steps: Vec<(i64, Step)>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let id = order_id.as_str();
    let found = tx.lock_fold(id, &encode_fold(&Fold::default())).await?;
    let upsert = matches!(found, StoredFold::Missing);
    let stored = match found {
        // A new order: its first events are applied to an empty fold.
        StoredFold::Missing => Some(Fold::default()),
        StoredFold::Legacy => None,
        StoredFold::Fold(bytes) => match decode_fold(&bytes) {
            Ok(fold) => Some(fold),
            Err(error) => {
                tracing::warn!(%order_id, error = %crate::telemetry::error_chain(&error), "rebuilding an order's projection from its events");
                None
            }
        },
    };
    let before = stored
        .as_ref()
        .map(|fold| (fold.state(), fold.suspects().stored_bits()));
    let fold = match stored {
        Some(mut fold) => {
            steps.sort_by_key(|(sequence, _)| *sequence);
            let mut pending: BTreeSet<i64> = steps.iter().map(|(sequence, _)| *sequence).collect();
            let mut applied = true;
            for (sequence, step) in &steps {
                pending.remove(sequence);
                let tracks = fold.between(step);
                let neighbours = if tracks.is_empty() {
                    Neighbours::new()
                } else {
                    find_neighbours(tx, order_id, step, tracks, &pending).await?
                };
                if let Err(error) = fold.apply(step, &neighbours) {
                    tracing::warn!(%order_id, %error, "rebuilding an order's projection from its events");
                    applied = false;
                    break;
                }
            }
            if applied {
                fold
            } else {
                rebuild(tx, order_id).await?
            }
        }
        None => rebuild(tx, order_id).await?,
    };
    let change = match before {
        _ if upsert => RowChange::Upsert,
        // Rebuilt: what the row holds is not known, so both are written.
        None => RowChange::Update {
            state: true,
            suspects: true,
        },
        Some((state, suspects)) => RowChange::Update {
            state: state != fold.state(),
            suspects: suspects != fold.suspects().stored_bits(),
        },
    };
    tx.save_order(&order_row(order_id, &fold, now, change))
        .await
}

/// Looks up the neighbours of `step` on `tracks` among the order's stored events, leaving out
/// the batch's events not applied yet.
async fn find_neighbours<T: AppendTx>(
    tx: &mut T,
    order_id: &OrderId,
    step: &Step,
    tracks: Vec<Track>,
    pending: &BTreeSet<i64>,
) -> Result<Neighbours, StoreError> {
    let mut search = NeighbourSearch::new(step.key.clone(), tracks);
    for direction in [Direction::Before, Direction::After] {
        let mut point = match direction {
            Direction::Before => (step.key.date_us, i64::MAX),
            Direction::After => (step.key.date_us, i64::MIN),
        };
        let mut size = FIRST_PAGE;
        loop {
            let wants = match direction {
                Direction::Before => search.wants_before(),
                Direction::After => search.wants_after(),
            };
            if !wants {
                break;
            }
            let page = tx
                .order_page(order_id.as_str(), direction, point, size)
                .await?;
            for event in &page {
                if pending.contains(&event.sequence) {
                    continue;
                }
                if let Some(step) = step_of(order_id, event) {
                    search.offer(&step);
                }
            }
            let last = page.last().map(|event| (event.date_us, event.sequence));
            let full = page.len() == size;
            let seen = last.filter(|_| full).map(|(date, _)| date);
            match direction {
                Direction::Before => search.seen_before_down_to(seen),
                Direction::After => search.seen_after_up_to(seen),
            }
            match last {
                Some(last) if full => point = last,
                _ => break,
            }
            size = (size * 2).min(LAST_PAGE);
        }
    }
    Ok(search.neighbours())
}

/// After retention deleted some of an order's events: deletes its projection row when none is
/// left (returns 1), or rebuilds it from the events left, keeping its `updated_at` so that
/// pruning does not move it to the top of the list.
pub(crate) async fn settle_order<T: AppendTx>(
    tx: &mut T,
    order_id: &str,
) -> Result<usize, StoreError> {
    let Ok(parsed) = order_id.parse::<OrderId>() else {
        tracing::error!(%order_id, "a stored order id no longer parses; its projection is left as it is");
        return Ok(0);
    };
    // Locks the row first, so that an append to the same order waits (PostgreSQL).
    tx.lock_fold(order_id, &encode_fold(&Fold::default()))
        .await?;
    let events = tx.order_events(order_id).await?;
    if events.is_empty() {
        return tx.delete_order(order_id).await;
    }
    let updated_at = tx.order_updated_at(order_id).await?;
    let fold = Fold::rebuild(
        events
            .iter()
            .filter_map(|event| step_of(&parsed, event))
            .collect(),
    );
    let mut row = order_row(&parsed, &fold, Utc::now(), RowChange::Upsert);
    if let Some(updated_at) = updated_at.filter(|at| *at > 0) {
        row.updated_at_us = updated_at;
    }
    tx.save_order(&row).await?;
    Ok(0)
}

/// Stores the order fetched for the event at `sequence` and gives the event `facts` (the merge
/// of what it said with the snapshot: `domain::snapshot::merge`), then folds the order again
/// from its events, since the facts may move the event on its tracks. The order's row is
/// locked first, so that an append to the same order waits (PostgreSQL). The event's body is
/// never changed.
pub(crate) async fn record_snapshot<T: AppendTx>(
    tx: &mut T,
    sequence: i64,
    body: &[u8],
    facts: &OrderFacts,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let order_id = facts.order_id.as_str();
    tx.lock_fold(order_id, &encode_fold(&Fold::default()))
        .await?;
    if tx
        .update_facts(sequence, order_id, &encode_facts(facts))
        .await?
        == 0
    {
        return Err(internal(format!(
            "no event {sequence} of order {order_id} is stored for its snapshot"
        )));
    }
    let row = SnapshotRow {
        sequence,
        order_id,
        fetched_at_us: now.timestamp_micros(),
        body,
    };
    tx.save_snapshot(&row).await?;
    let fold = rebuild(tx, &facts.order_id).await?;
    tx.save_order(&order_row(&facts.order_id, &fold, now, RowChange::Upsert))
        .await
}

/// The timeline of an order from its stored events, for reads; an event that cannot be read
/// is left out, as the stored projection leaves it out.
pub(crate) fn timeline(order_id: &OrderId, events: &[OrderEvent]) -> Vec<TimelineEntry> {
    events
        .iter()
        .filter_map(|event| match timeline_entry(order_id, event) {
            Ok(entry) => Some(entry),
            Err(error) => {
                tracing::error!(%order_id, sequence = event.sequence, error = %crate::telemetry::error_chain(&error), "a stored event cannot be read; it is left out of its order's projection");
                None
            }
        })
        .collect()
}

/// Folds every stored event of the order again.
async fn rebuild<T: AppendTx>(tx: &mut T, order_id: &OrderId) -> Result<Fold, StoreError> {
    let events = tx.order_events(order_id.as_str()).await?;
    Ok(Fold::rebuild(
        events
            .iter()
            .filter_map(|event| step_of(order_id, event))
            .collect(),
    ))
}

/// What a stored event contributes, or `None` (logged) when its row cannot be read: such an
/// event is left out of its order's projection rather than blocking the order.
fn step_of(order_id: &OrderId, event: &OrderEvent) -> Option<Step> {
    timeline(order_id, std::slice::from_ref(event))
        .pop()
        .map(|entry| Step::of_entry(&entry))
}

/// A stored event of an order as the projection's timeline shows it.
pub(crate) fn timeline_entry(
    order_id: &OrderId,
    event: &OrderEvent,
) -> Result<TimelineEntry, StoreError> {
    Ok(TimelineEntry {
        event_id: parse_event_id(&event.event_id)?,
        event_date: event_date(event.date_us)?,
        event_type: parse_event_type(&event.event_type)?,
        dialect: event
            .dialect
            .parse()
            .map_err(|why| internal(format!("stored dialect: {why}")))?,
        source: Source::from_column(event.source.as_deref())
            .map_err(|why| internal(format!("stored source: {why}")))?,
        facts: decode_facts(
            order_id,
            event.facts.as_deref(),
            event.facts_json.as_deref(),
        )?,
    })
}

/// A stored eventId.
pub(crate) fn parse_event_id(text: &str) -> Result<EventId, StoreError> {
    text.parse()
        .map_err(|why| internal(format!("stored event id {text:?} {why}")))
}

/// A stored eventType.
pub(crate) fn parse_event_type(text: &str) -> Result<EventType, StoreError> {
    text.parse().map_err(internal)
}

/// A stored eventDate.
pub(crate) fn event_date(micros: i64) -> Result<EventDate, StoreError> {
    EventDate::from_timestamp_micros(micros)
        .ok_or_else(|| internal(format!("stored date {micros} is out of range")))
}

fn order_row(order_id: &OrderId, fold: &Fold, now: DateTime<Utc>, change: RowChange) -> OrderRow {
    let value = |slot: &Option<crate::domain::fold::Stamped<String>>| {
        slot.as_ref().map(|stamped| stamped.value.clone())
    };
    OrderRow {
        change,
        id: order_id.as_str().to_owned(),
        fold: encode_fold(fold),
        state: fold.state().map(|state| state.as_str()),
        external_id: value(&fold.external_id),
        order_date: value(&fold.order_date),
        completion_date_time: value(&fold.completion_date_time),
        item_count: fold.items.len() as i64,
        anomaly_count: i64::try_from(fold.anomalies).unwrap_or(i64::MAX),
        event_count: i64::try_from(fold.events).unwrap_or(i64::MAX),
        suspects: fold.suspects().stored_bits(),
        last_event_date_us: fold.newest.as_ref().map_or(0, |key| key.date_us),
        updated_at_us: now.timestamp_micros(),
    }
}
