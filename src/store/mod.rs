//! Durable storage of received events and of the service-order projection.
//!
//! [`Store`] is the one interface the rest of the program sees; each backend lives in its own
//! module with its own migrations. Only this module knows SQL. An append returns only once the
//! event is committed, so the HTTP layer can acknowledge it.

mod append;
mod books;
mod codec;
mod cursor;
mod orders;
mod outbox;
pub mod postgres;
mod reconcile;
mod rows;
pub mod sqlite;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::envelope::{
    Dialect, EventDate, EventId, EventType, Notification, OrderFacts, OrderId, Source,
};
use crate::domain::projection::ServiceOrder;
use crate::domain::routing::{Route, SinkName};
use crate::metrics::Metrics;

pub use self::cursor::{Cursor, InvalidCursor};
pub use self::orders::{InvalidOrderCursor, OrderCursor, OrderFilter, OrderSummary};
pub use self::outbox::{
    Delivery, DeliveryOutcome, DeliveryState, OutcomeKind, Requeue, RequeueScope, Requeued,
    SinkStatus, lane,
};
pub use self::reconcile::{
    Received, ReceivedFilter, Sender, SenderEvents, SuspectCounts, SuspectFilter, SuspectOrder,
};
pub use postgres::PostgresStore;
pub(crate) use rows::MOST_ROWS;
pub use sqlite::SqliteStore;

/// Where the events are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// An embedded SQLite database file.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL server.
    Postgres {
        /// The connection URL. It may hold a password, so it is never logged.
        url: crate::secret::Secret,
    },
}

/// A source error shared by every request of a failed commit batch.
pub type SharedError = Arc<dyn std::error::Error + Send + Sync>;

/// An internal error with a message: a stored value that no longer reads, or a bug.
pub(crate) fn internal(message: impl Into<String>) -> StoreError {
    StoreError::Internal(Arc::new(std::io::Error::other(message.into())))
}

/// Why the store could not do what was asked. Callers branch on the variant.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The eventId is already stored with another payload; the stored event is kept.
    #[error("event {event_id} is already stored with a different payload")]
    Conflict {
        /// The contested id.
        event_id: EventId,
    },
    /// The storage cannot be reached or written to right now; retrying later may work.
    #[error("storage is unavailable")]
    Unavailable(#[source] SharedError),
    /// The disk that holds the store is full: nothing more can be written until space returns.
    #[error("the disk that holds the store is full")]
    DiskFull(#[source] SharedError),
    /// The store is shutting down and takes no more writes.
    #[error("the store is shutting down")]
    ShuttingDown,
    /// The store was opened for reading only.
    #[error("the store was opened read-only")]
    ReadOnly,
    /// Nothing is stored at the given place yet.
    #[error(
        "no store at {0}: start `order-listener serve` with the same --data-dir first, or pass the right --data-dir or --database-url"
    )]
    Missing(String),
    /// The store was written by a newer version of order-listener.
    #[error(
        "the store at {location} has schema version {found}, newer than this program's {supported}; upgrade order-listener"
    )]
    TooNew {
        /// Where the store is.
        location: String,
        /// The version found.
        found: usize,
        /// The newest version this program knows.
        supported: usize,
    },
    /// Anything else: a bug, corruption or a misconfiguration.
    #[error("storage failed")]
    Internal(#[source] SharedError),
}

/// What a backend makes of its driver's error, by the driver's code: [`StoreError::of_driver`].
pub(crate) enum DriverFailure {
    /// The disk is full ([`StoreError::DiskFull`]).
    DiskFull,
    /// Trying again later may work ([`StoreError::Unavailable`]).
    Retryable,
    /// Anything else ([`StoreError::Internal`]).
    Internal,
}

impl StoreError {
    /// A driver's `error`, which its backend judged a `failure`.
    pub(crate) fn of_driver(
        failure: DriverFailure,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        let shared: SharedError = Arc::new(error);
        match failure {
            DriverFailure::DiskFull => StoreError::DiskFull(shared),
            DriverFailure::Retryable => StoreError::Unavailable(shared),
            DriverFailure::Internal => StoreError::Internal(shared),
        }
    }

    /// Whether the caller may succeed by trying again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::DiskFull(_) | StoreError::ShuttingDown
        )
    }
}

/// The routes a writer queues deliveries by, swapped whole when the sinks are reloaded.
pub(crate) type Routes = Arc<arc_swap::ArcSwap<Vec<Route>>>;

/// An event to store, with what the listener knows of its receipt.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The parsed notification and its raw bytes.
    pub notification: Notification,
    /// When the listener received it.
    pub received_at: DateTime<Utc>,
    /// The peer address it came from.
    pub sender: Option<String>,
    /// The authenticated client that sent it, if any.
    pub client: Option<String>,
    /// The trace it belongs to: the seller's W3C context, or the listener's span that stored
    /// it when traces are exported. Its deliveries continue it.
    pub trace_context: Option<crate::traces::TraceContext>,
}

/// The outcome of a successful append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// The event is new and is now committed.
    Stored {
        /// Its place in receipt order.
        sequence: i64,
    },
    /// The same eventId was already stored with the same payload; nothing new was written.
    Duplicate {
        /// The stored event's place in receipt order.
        sequence: i64,
        /// The stored body, to echo.
        body: Bytes,
    },
}

/// A stored event's metadata, without its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    /// Its place in receipt order.
    pub sequence: i64,
    /// The seller's eventId.
    pub event_id: EventId,
    /// Its type.
    pub event_type: EventType,
    /// When the seller says it happened.
    pub event_date: EventDate,
    /// The service order it is about, for service-order events.
    pub order_id: Option<OrderId>,
    /// When the listener received it.
    pub received_at: DateTime<Utc>,
    /// The peer address it came from.
    pub sender: Option<String>,
    /// The authenticated client that sent it.
    pub client: Option<String>,
    /// How the seller sent it.
    pub dialect: Dialect,
    /// Where the seller serves the order, when the event only refers to it (MEF's
    /// `event.href`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Who wrote it: `seller`, or `reconciled` for an event the listener synthesized.
    pub source: Source,
}

/// An order as the seller's Service Ordering API answered it, fetched for one event that only
/// referred to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSnapshot {
    /// The event's place in receipt order.
    pub sequence: i64,
    /// The order.
    pub order_id: OrderId,
    /// When it was fetched.
    pub fetched_at: DateTime<Utc>,
    /// The seller's answer, as received.
    pub body: Bytes,
}

/// Which events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this type.
    pub event_type: Option<EventType>,
    /// Only events of this order.
    pub order_id: Option<OrderId>,
    /// Only events sent in this dialect.
    pub dialect: Option<Dialect>,
    /// Only events received before this sequence number (a cursor).
    pub before_sequence: Option<i64>,
    /// Only events at or after this instant (of `time`).
    pub since: Option<DateTime<Utc>>,
    /// Only events before this instant (of `time`).
    pub until: Option<DateTime<Utc>>,
    /// Which instant `since` and `until` compare.
    pub time: TimeField,
    /// At most this many.
    pub limit: usize,
}

/// Which instant of an event a time filter compares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TimeField {
    /// The seller's `eventDate`.
    #[default]
    EventDate,
    /// When the listener received it.
    ReceivedAt,
}

/// How many events of one type were received in one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteCount {
    /// The start of the minute.
    pub minute: DateTime<Utc>,
    /// The events' type.
    pub event_type: EventType,
    /// How many.
    pub count: u64,
}

/// What to prune: each limit is an instant; `None` keeps those rows forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneLimits {
    /// Events received before this instant go, with their deliveries, unless a delivery of
    /// theirs is still pending.
    pub events_before: Option<DateTime<Utc>>,
    /// Delivered and dead outbox rows whose last attempt was before this instant go.
    pub delivered_before: Option<DateTime<Utc>>,
}

/// What one prune call removed, or (for [`Store::prunable`]) would remove.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pruned {
    /// Events deleted.
    pub events: usize,
    /// Outbox rows of those events deleted with them (delivered or dead).
    pub deliveries: usize,
    /// Delivered and dead outbox rows of kept events deleted past `delivered_before`.
    pub finished_deliveries: usize,
    /// `service_orders` rows deleted because none of their events is left.
    pub orders: usize,
}

impl Pruned {
    /// Whether a call with this `batch` size filled it, so that more may be left.
    pub fn filled(&self, batch: usize) -> bool {
        self.events >= batch || self.finished_deliveries >= batch
    }

    /// Whether nothing was removed.
    pub fn is_empty(&self) -> bool {
        self.events == 0
            && self.deliveries == 0
            && self.finished_deliveries == 0
            && self.orders == 0
    }

    /// Adds another call's counts.
    pub fn add(&mut self, other: Pruned) {
        self.events += other.events;
        self.deliveries += other.deliveries;
        self.finished_deliveries += other.finished_deliveries;
        self.orders += other.orders;
    }
}

/// Counters of the writer, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: u64,
    /// Appends answered by those commits.
    pub appends: u64,
}

/// What a running store announces after each commit.
#[derive(Debug, Clone)]
pub struct Commits {
    /// The highest committed event sequence.
    pub sequence: tokio::sync::watch::Receiver<i64>,
    /// Bumped whenever the outbox may have new work (new deliveries, a requeue, a sink enabled).
    pub outbox: tokio::sync::watch::Receiver<u64>,
}

/// Calls the same method, with the same arguments, on whichever backend is behind a
/// [`Store`], and awaits it.
macro_rules! on_backend {
    ($store:expr, $method:ident($($argument:expr),*)) => {
        match $store {
            Store::Sqlite(store) => store.$method($($argument),*).await,
            Store::Postgres(store) => store.$method($($argument),*).await,
        }
    };
}

/// The store, whichever backend is behind it. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Store {
    /// Embedded SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL, shared by replicas.
    Postgres(PostgresStore),
}

impl Store {
    /// Opens the store for the service: creates and migrates it if needed and starts the writer.
    pub async fn open(storage: &Storage, options: WriterOptions) -> Result<Store, StoreError> {
        Self::open_writer(storage, options, Vec::new(), None).await
    }

    /// Swaps the routes new events are queued by (the sinks after a reload); an event being
    /// committed now keeps the routes it started with. Nothing for a read-only store.
    pub fn set_routes(&self, routes: Vec<Route>) {
        let routes = Arc::new(routes);
        match self {
            Store::Sqlite(store) => store.set_routes(routes),
            Store::Postgres(store) => store.set_routes(routes),
        }
    }

    /// As [`Store::open`]; each new event also queues a delivery for every route it matches, and
    /// every commit's size and duration are recorded in `metrics`.
    pub async fn open_with_routes(
        storage: &Storage,
        options: WriterOptions,
        routes: Vec<Route>,
        metrics: Arc<Metrics>,
    ) -> Result<Store, StoreError> {
        Self::open_writer(storage, options, routes, Some(metrics)).await
    }

    async fn open_writer(
        storage: &Storage,
        options: WriterOptions,
        routes: Vec<Route>,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Store, StoreError> {
        match storage {
            Storage::Sqlite { path } => Ok(Store::Sqlite(
                SqliteStore::open(path.clone(), options, routes, metrics).await?,
            )),
            Storage::Postgres { url } => Ok(Store::Postgres(
                PostgresStore::open(url, options, routes, metrics, postgres::Access::ReadWrite)
                    .await?,
            )),
        }
    }

    /// Commit announcements; `None` for a read-only store.
    pub fn commits(&self) -> Option<Commits> {
        match self {
            Store::Sqlite(store) => store.commits(),
            Store::Postgres(store) => store.commits(),
        }
    }

    /// Events received after `sequence`, oldest first, with their bodies.
    pub async fn events_after(
        &self,
        sequence: i64,
        limit: usize,
    ) -> Result<Vec<(EventRecord, Bytes)>, StoreError> {
        on_backend!(self, events_after(sequence, limit))
    }

    /// Events committed after `cursor`, in the stream's order (see [`Cursor`]), with their
    /// bodies.
    pub async fn follow(
        &self,
        cursor: Cursor,
        limit: usize,
    ) -> Result<Vec<(Cursor, EventRecord, Bytes)>, StoreError> {
        match self {
            Store::Sqlite(store) => Ok(store
                .events_after(cursor.sequence, limit)
                .await?
                .into_iter()
                .map(|(record, body)| {
                    let cursor = Cursor {
                        tx: 0,
                        sequence: record.sequence,
                    };
                    (cursor, record, body)
                })
                .collect()),
            Store::Postgres(store) => store.follow(cursor, limit).await,
        }
    }

    /// The stream's position now: [`Store::follow`] from here gives only events committed
    /// later.
    pub async fn stream_head(&self) -> Result<Cursor, StoreError> {
        match self {
            Store::Sqlite(store) => Ok(Cursor {
                tx: 0,
                sequence: store.last_sequence().await?,
            }),
            Store::Postgres(store) => store.stream_head().await,
        }
    }

    /// Deliveries of `sink` that are due at `now`: the head of each lane (the earliest pending
    /// by eventDate), skipping `busy` lanes.
    pub async fn due_deliveries(
        &self,
        sink: &SinkName,
        now: DateTime<Utc>,
        busy: Vec<String>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let sink = sink.as_str().to_owned();
        on_backend!(self, due_deliveries(sink, now, busy, limit))
    }

    /// When the next pending delivery of `sink` is due, if any.
    pub async fn next_due(&self, sink: &SinkName) -> Result<Option<DateTime<Utc>>, StoreError> {
        let sink = sink.as_str().to_owned();
        on_backend!(self, next_due(sink))
    }

    /// Records what became of delivery attempts.
    pub async fn record_outcomes(&self, outcomes: Vec<DeliveryOutcome>) -> Result<(), StoreError> {
        on_backend!(self, record_outcomes(outcomes))
    }

    /// Queues deliveries again (replay, dead-letter retry).
    pub async fn requeue(&self, request: Requeue) -> Result<Requeued, StoreError> {
        on_backend!(self, requeue(request))
    }

    /// Disables a sink (it answered 410 Gone), or enables it again with `None`.
    pub async fn set_sink_disabled(
        &self,
        sink: &SinkName,
        reason: Option<String>,
    ) -> Result<(), StoreError> {
        let sink = sink.as_str().to_owned();
        on_backend!(self, set_sink_disabled(sink, reason))
    }

    /// The outbox of every sink that has one, or is disabled.
    pub async fn sink_statuses(&self) -> Result<Vec<SinkStatus>, StoreError> {
        on_backend!(self, sink_statuses())
    }

    /// Dead letters, newest first; `before_id` pages.
    pub async fn dead_letters(
        &self,
        sink: Option<&SinkName>,
        before_id: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let sink = sink.map(|sink| sink.as_str().to_owned());
        on_backend!(self, dead_letters(sink, before_id, limit))
    }

    /// Deliveries of one event, to every sink.
    pub async fn deliveries_of(&self, event_id: &EventId) -> Result<Vec<Delivery>, StoreError> {
        on_backend!(self, deliveries_of(event_id.clone()))
    }

    /// Opens an existing store to change its outbox from another process (replay and
    /// dead-letter retry from the CLI while `serve` runs); appends nothing.
    pub async fn open_for_admin(storage: &Storage) -> Result<Store, StoreError> {
        match storage {
            Storage::Sqlite { path } => {
                if !path.exists() {
                    return Err(StoreError::Missing(path.display().to_string()));
                }
                Ok(Store::Sqlite(
                    SqliteStore::open(path.clone(), WriterOptions::default(), Vec::new(), None)
                        .await?,
                ))
            }
            Storage::Postgres { url } => cli_postgres(url, postgres::Access::ReadWrite).await,
        }
    }

    /// Opens an existing store for reading only, as the CLI does while `serve` runs.
    pub async fn open_read_only(storage: &Storage) -> Result<Store, StoreError> {
        match storage {
            Storage::Sqlite { path } => Ok(Store::Sqlite(
                SqliteStore::open_read_only(path.clone()).await?,
            )),
            Storage::Postgres { url } => cli_postgres(url, postgres::Access::ReadOnly).await,
        }
    }

    /// Stores the event durably, or recognises a resend. Returns only after the commit.
    pub async fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
        on_backend!(self, append(event))
    }

    /// Stores the order fetched from the seller for the event at `sequence` (`body` as received,
    /// replacing an earlier snapshot) and gives that event `facts`, the merge of what it said
    /// with the snapshot; the order is folded again from its events, in the same transaction.
    /// The event's body is never changed.
    pub async fn record_snapshot(
        &self,
        sequence: i64,
        body: Bytes,
        facts: OrderFacts,
    ) -> Result<(), StoreError> {
        on_backend!(self, record_snapshot(sequence, body, facts))
    }

    /// The order fetched for the event at `sequence`, if any.
    pub async fn snapshot(&self, sequence: i64) -> Result<Option<OrderSnapshot>, StoreError> {
        on_backend!(self, snapshot(sequence))
    }

    /// Checks that the storage answers and takes writes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, ping())
    }

    /// One stored event with its raw body.
    pub async fn event(
        &self,
        event_id: &EventId,
    ) -> Result<Option<(EventRecord, Bytes)>, StoreError> {
        on_backend!(self, event(event_id.clone()))
    }

    /// Stored events, newest first.
    pub async fn events(&self, filter: EventFilter) -> Result<Vec<EventRecord>, StoreError> {
        on_backend!(self, events(filter))
    }

    /// The projection of one order, timeline included.
    pub async fn order(&self, order_id: &OrderId) -> Result<Option<ServiceOrder>, StoreError> {
        on_backend!(self, order(order_id.clone()))
    }

    /// Orders, most recently updated first, a page at a time ([`OrderFilter::after`]).
    pub async fn orders(&self, filter: OrderFilter) -> Result<Vec<OrderSummary>, StoreError> {
        on_backend!(self, orders(filter))
    }

    /// Events received since `since`, counted by minute and type, oldest minute first.
    pub async fn events_per_minute(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<MinuteCount>, StoreError> {
        on_backend!(self, events_per_minute(since))
    }

    /// Deletes one batch of what retention lets go: at most `batch` old events (with their
    /// deliveries; an event with a pending delivery is kept) and at most `batch` finished
    /// outbox rows, in one short transaction. Orders left without events lose their
    /// `service_orders` row; the others' row is refreshed from the events left (keeping its
    /// `updatedAt`). Call again while [`Pruned::filled`] says so.
    pub async fn prune(&self, limits: PruneLimits, batch: usize) -> Result<Pruned, StoreError> {
        on_backend!(self, prune(limits, batch.max(1)))
    }

    /// What [`Store::prune`] would remove, counted without changing anything (works
    /// read-only).
    pub async fn prunable(&self, limits: PruneLimits) -> Result<Pruned, StoreError> {
        on_backend!(self, prunable(limits))
    }

    /// How many commits and appends the writer has made since it started.
    pub fn writer_stats(&self) -> WriterStats {
        match self {
            Store::Sqlite(store) => store.writer_stats(),
            Store::Postgres(store) => store.writer_stats(),
        }
    }

    /// Commits everything already queued, then stops the writer. Later appends fail with
    /// [`StoreError::ShuttingDown`].
    pub async fn close(&self) {
        on_backend!(self, close())
    }
}

/// A PostgreSQL store as the CLI opens it: default options, no routes, no metrics.
async fn cli_postgres(
    url: &crate::secret::Secret,
    access: postgres::Access,
) -> Result<Store, StoreError> {
    let store = PostgresStore::open(url, WriterOptions::default(), Vec::new(), None, access);
    Ok(Store::Postgres(store.await?))
}

/// How the writer batches commits.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// The most appends committed in one transaction.
    pub max_batch: usize,
    /// The most appends waiting for the writer; past it, callers wait.
    pub queue_capacity: usize,
    /// PostgreSQL: how long a claimed delivery stays one replica's before another may take it
    /// over.
    pub lease: std::time::Duration,
    /// SQLite: the write-ahead log's size in pages at which the writer restarts it.
    pub wal_pages: u32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            max_batch: 512,
            queue_capacity: 4096,
            lease: std::time::Duration::from_secs(60),
            wal_pages: 8192,
        }
    }
}
