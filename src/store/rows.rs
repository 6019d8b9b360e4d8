//! Stored rows decoded once for both backends: a backend reads the columns into these plain
//! structs (that part is SQL), and the checks that turn text back into domain types live here.

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::append::{event_date, parse_event_id, parse_event_type};
use super::codec::decode_facts;
use super::{Delivery, EventRecord, OrderSnapshot, OrderSummary, StoreError, internal};
use crate::domain::envelope::{Dialect, EventType, OrderFacts, OrderId, Source};
use crate::domain::routing::{RouteFilter, SinkName};

/// The most rows one page of a listing, or one read of the stream or a dead-letter queue,
/// returns, whatever was asked: the same on both backends.
pub(crate) const MOST_ROWS: usize = 10_000;

/// A requested number of rows as both backends bind it: at least one, at most [`MOST_ROWS`].
pub(crate) fn page_size(requested: usize) -> i64 {
    i64::try_from(requested.clamp(1, MOST_ROWS)).unwrap_or(i64::MAX)
}

/// The columns of an [`EventRecord`], in the order both backends select them
/// ([`RECORD_COLUMNS`]).
pub(crate) struct RecordRow {
    pub sequence: i64,
    pub event_id: String,
    pub event_type: String,
    pub event_date_us: i64,
    pub order_id: Option<String>,
    pub received_at_us: i64,
    pub sender: Option<String>,
    pub client: Option<String>,
    pub dialect: String,
    pub reference: Option<String>,
    pub source: Option<String>,
}

/// The columns [`RecordRow`] reads.
pub(crate) const RECORD_COLUMNS: &str = "sequence, event_id, event_type, event_date_us, order_id,
     received_at_us, sender, client, dialect, reference, source";

/// How many columns [`RECORD_COLUMNS`] names: a query that selects more after them (the body,
/// PostgreSQL's `tx`) reads those from this index on.
pub(crate) const RECORD_COLUMN_COUNT: usize = 11;

impl RecordRow {
    pub(super) fn decode(self) -> Result<EventRecord, StoreError> {
        Ok(EventRecord {
            sequence: self.sequence,
            event_id: parse_event_id(&self.event_id)?,
            event_type: parse_event_type(&self.event_type)?,
            event_date: event_date(self.event_date_us)?,
            order_id: self.order_id.as_deref().map(parse_order_id).transpose()?,
            received_at: instant(self.received_at_us)?,
            sender: self.sender,
            client: self.client,
            dialect: parse_dialect(&self.dialect)?,
            reference: self.reference,
            source: parse_source(self.source.as_deref())?,
        })
    }
}

/// The columns of an [`OrderSummary`], in the order both backends select them
/// ([`SUMMARY_COLUMNS`]).
pub(crate) struct SummaryRow {
    pub id: String,
    pub state: Option<String>,
    pub external_id: Option<String>,
    pub item_count: i64,
    pub anomaly_count: i64,
    pub event_count: i64,
    pub last_event_date_us: i64,
    pub updated_at_us: i64,
}

/// The columns [`SummaryRow`] reads.
pub(crate) const SUMMARY_COLUMNS: &str = "id, state, external_id, item_count, anomaly_count,
     event_count, last_event_date_us, updated_at_us";

impl SummaryRow {
    pub(super) fn decode(self) -> Result<OrderSummary, StoreError> {
        let count = |value: i64| usize::try_from(value).unwrap_or_default();
        Ok(OrderSummary {
            id: parse_order_id(&self.id)?,
            state: self
                .state
                .map(|state| state.parse())
                .transpose()
                .map_err(|error| internal(format!("stored state: {error}")))?,
            external_id: self.external_id,
            item_count: count(self.item_count),
            anomaly_count: count(self.anomaly_count),
            event_count: count(self.event_count),
            last_event_date: event_date(self.last_event_date_us)?,
            updated_at: instant(self.updated_at_us)?,
        })
    }
}

/// The columns of a [`Delivery`] with its event, in the order both backends select them
/// ([`DELIVERY_COLUMNS`]).
pub(crate) struct DeliveryColumns {
    pub id: i64,
    pub sink: String,
    pub sequence: i64,
    pub event_id: String,
    pub event_type: String,
    pub event_date_us: i64,
    pub order_id: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub created_us: i64,
    pub next_attempt_us: i64,
    pub last_error: Option<String>,
    pub body: Vec<u8>,
    pub trace_context: Option<String>,
    pub dialect: String,
    pub source: Option<String>,
}

/// The columns [`DeliveryColumns`] reads, from `deliveries d JOIN events e`.
pub(crate) const DELIVERY_COLUMNS: &str =
    "d.id, d.sink, d.sequence, e.event_id, e.event_type, e.event_date_us,
     e.order_id, d.state, d.attempts, d.created_us, d.next_attempt_us, d.last_error, e.body,
     e.trace_context, e.dialect, e.source";

/// How many columns [`DELIVERY_COLUMNS`] names: a query that selects more after them reads
/// those from this index on.
pub(crate) const DELIVERY_COLUMN_COUNT: usize = 16;

impl DeliveryColumns {
    pub(super) fn decode(self) -> Result<Delivery, StoreError> {
        Ok(Delivery {
            id: self.id,
            sink: parse_sink_name(&self.sink)?,
            sequence: self.sequence,
            event_id: parse_event_id(&self.event_id)?,
            event_type: parse_event_type(&self.event_type)?,
            event_date: event_date(self.event_date_us)?,
            order_id: self.order_id.as_deref().map(parse_order_id).transpose()?,
            state: self
                .state
                .parse()
                .map_err(|error| internal(format!("stored delivery state: {error}")))?,
            attempts: u32::try_from(self.attempts).unwrap_or_default(),
            created_at: instant(self.created_us)?,
            next_attempt_at: instant(self.next_attempt_us)?,
            last_error: self.last_error,
            body: bytes::Bytes::from(self.body),
            // A context that no longer reads only loses the trace, never the delivery.
            trace_context: self.trace_context.and_then(|text| text.parse().ok()),
            dialect: parse_dialect(&self.dialect)?,
            source: parse_source(self.source.as_deref())?,
        })
    }
}

/// A stored source (`NULL`: a seller's event).
pub(crate) fn parse_source(column: Option<&str>) -> Result<Source, StoreError> {
    Source::from_column(column).map_err(|why| internal(format!("stored source: {why}")))
}

/// A stored sink name.
pub(crate) fn parse_sink_name(text: &str) -> Result<SinkName, StoreError> {
    text.parse()
        .map_err(|why| internal(format!("stored sink name: {why}")))
}

/// A stored dialect.
pub(crate) fn parse_dialect(text: &str) -> Result<Dialect, StoreError> {
    text.parse()
        .map_err(|why| internal(format!("stored dialect: {why}")))
}

/// A stored order id.
pub(crate) fn parse_order_id(text: &str) -> Result<OrderId, StoreError> {
    text.parse()
        .map_err(|why| internal(format!("stored order id {text:?} {why}")))
}

/// A stored instant in microseconds since the epoch.
pub(crate) fn instant(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| internal(format!("stored time {micros} is out of range")))
}

/// The SQL that reads an event's snapshot, one text for both backends; columns as
/// [`SnapshotColumns`].
pub(crate) const SNAPSHOT_SQL: &str =
    "SELECT sequence, order_id, fetched_at_us, body FROM order_snapshots WHERE sequence = $1";

/// A row of [`SNAPSHOT_SQL`].
pub(crate) struct SnapshotColumns {
    pub sequence: i64,
    pub order_id: String,
    pub fetched_at_us: i64,
    pub body: Vec<u8>,
}

impl SnapshotColumns {
    /// The snapshot, or why the row no longer reads.
    pub(crate) fn decode(self) -> Result<OrderSnapshot, StoreError> {
        Ok(OrderSnapshot {
            sequence: self.sequence,
            order_id: parse_order_id(&self.order_id)?,
            fetched_at: instant(self.fetched_at_us)?,
            body: Bytes::from(self.body),
        })
    }
}

/// The columns a replay reads to apply a sink's filter to a stored event
/// ([`REPLAY_FILTER_COLUMNS`]).
pub(crate) struct ReplayRow {
    pub dialect: String,
    pub source: Option<String>,
    pub event_type: String,
    pub order_id: Option<String>,
    pub facts: Option<Vec<u8>>,
    pub facts_json: Option<String>,
}

/// The columns [`ReplayRow`] reads, in its order.
pub(crate) const REPLAY_FILTER_COLUMNS: &str =
    "dialect, event_type, order_id, facts_c, facts, source";

impl ReplayRow {
    /// Whether the sink's `filter` takes the stored event, as its stored facts say. An event
    /// whose row no longer reads is not replayed.
    pub(super) fn taken_by(&self, filter: &RouteFilter) -> bool {
        let (Ok(dialect), Ok(event_type), Ok(source)) = (
            self.dialect.parse::<Dialect>(),
            self.event_type.parse::<EventType>(),
            parse_source(self.source.as_deref()),
        ) else {
            return false;
        };
        let facts: Option<OrderFacts> = match &self.order_id {
            Some(order_id) => parse_order_id(order_id).ok().and_then(|order_id| {
                decode_facts(&order_id, self.facts.as_deref(), self.facts_json.as_deref()).ok()
            }),
            None => None,
        };
        filter.matches_facts(source, dialect, event_type, facts.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_column_count_is_the_number_of_record_columns() {
        assert_eq!(RECORD_COLUMNS.split(',').count(), RECORD_COLUMN_COUNT);
        assert_eq!(DELIVERY_COLUMNS.split(',').count(), DELIVERY_COLUMN_COUNT);
    }

    #[test]
    fn a_page_holds_at_least_one_row_and_at_most_the_most() {
        assert_eq!(page_size(0), 1);
        assert_eq!(page_size(250), 250);
        assert_eq!(page_size(usize::MAX), MOST_ROWS as i64);
    }
}
