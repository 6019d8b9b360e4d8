//! The PostgreSQL backend, for several replicas behind one load balancer. A replica's
//! concurrent appends share one transaction (group commit, as SQLite's writer does), through
//! the shared pipeline (`store::append`); a few such transactions run at once, and replicas'
//! transactions commit concurrently: there is no global lock. The unique `event_id`
//! deduplicates across replicas; an order's projection row is locked (`FOR UPDATE`) while a
//! transaction applies its events. Because sequences may then become visible out of order,
//! the event stream reads in commit-safe order (`follow`): by writing transaction, below the
//! oldest transaction still running.
//!
//! When the server cannot be reached, every call fails with [`StoreError::Unavailable`] (the
//! Listener API answers 503, code 5) and the pool connects again by itself once it is back.

mod console;
mod orders;
mod outbox;
mod reconcile;
mod retention;
mod snapshot;
mod tls;
mod tx;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::append::{self, AppendTx};
use super::books::{Announcer, Answer, Bookkeeper, Counters, Reply};
use super::rows::page_size;
use super::rows::{RecordRow, SummaryRow};
use super::{
    Appended, Commits, Cursor, DriverFailure, EventFilter, EventRecord, NewEvent, OrderSummary,
    StoreError, TimeField, WriterOptions, WriterStats, internal,
};
use crate::domain::envelope::{Dialect, EventId, OrderId};
use crate::domain::projection::{ServiceOrder, project};
use crate::domain::routing::Route;
use crate::metrics::Metrics;
use crate::secret::Secret;

mod embedded {
    refinery::embed_migrations!("src/store/migrations/postgres");
}

/// The advisory lock migrations take, so that replicas starting together migrate once.
const MIGRATION_LOCK: i64 = 0x6f6c_6d67; // "olmg"

/// How many append transactions of one replica run at once.
const CONCURRENT_BATCHES: usize = 4;

/// How often a replica looks for events and outbox work that other replicas committed.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// The PostgreSQL store. Clones share the pool.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// The appender's routes (none for a read-only store).
    routes: super::Routes,
    commits: Option<Commits>,
    announce: Option<Announcer>,
    counters: Arc<Counters>,
    /// This replica's name in outbox leases.
    replica: String,
    /// How long a claimed delivery stays this replica's.
    lease: Duration,
    stop: CancellationToken,
    /// The queue of the group-commit task; `None` for a read-only store.
    appends: Option<tokio::sync::mpsc::Sender<(Box<NewEvent>, Reply)>>,
    /// The group-commit task, joined at `close` after it has committed what was queued.
    appender: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("replica", &self.inner.replica)
            .finish_non_exhaustive()
    }
}

/// Maps a driver error: connection trouble is retryable (503), the rest internal.
fn classify(error: tokio_postgres::Error) -> StoreError {
    let retryable = error.is_closed()
        || error.code().is_none_or(|code| {
            code.code().starts_with("08") // connection exception
                || code.code().starts_with("53") // insufficient resources
                || code.code().starts_with("57") // operator intervention (shutdown)
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
        });
    let failure = if error.code() == Some(&SqlState::DISK_FULL) {
        DriverFailure::DiskFull
    } else if retryable {
        DriverFailure::Retryable
    } else {
        DriverFailure::Internal
    };
    StoreError::of_driver(failure, error)
}

fn pool_error(error: deadpool_postgres::PoolError) -> StoreError {
    match error {
        deadpool_postgres::PoolError::Backend(error) => classify(error),
        other => StoreError::Unavailable(Arc::new(other)),
    }
}

fn micros(instant: DateTime<Utc>) -> i64 {
    instant.timestamp_micros()
}

/// Builds the pool: TLS as the URL's `sslmode` says, with libpq's meaning (`tls.rs`), and
/// short connect and wait timeouts so that an outage fails fast.
fn pool(url: &Secret) -> Result<Pool, StoreError> {
    let tls::Connect { mut config, tls } = tls::connect_options(url.expose()).map_err(internal)?;
    config.connect_timeout(Duration::from_secs(5));
    if config.get_application_name().is_none() {
        config.application_name("order-listener");
    }
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match tls {
        None => Manager::from_config(config, NoTls, manager_config),
        Some(tls) => Manager::from_config(
            config,
            tokio_postgres_rustls::MakeRustlsConnect::new(tls),
            manager_config,
        ),
    };
    Pool::builder(manager)
        .max_size(16)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|error| internal(format!("cannot build the PostgreSQL pool: {error}")))
}

/// What a [`PostgresStore`] may do: append and change the outbox, or only read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Migrates, appends, announces commits (`serve`, the outbox commands).
    ReadWrite,
    /// Reads only (the CLI's queries).
    ReadOnly,
}

impl PostgresStore {
    /// Connects, migrates (one replica at a time) and starts watching for other replicas'
    /// commits. With [`Access::ReadOnly`], the store only reads (the CLI's queries).
    pub async fn open(
        url: &Secret,
        options: WriterOptions,
        routes: Vec<Route>,
        metrics: Option<Arc<Metrics>>,
        access: Access,
    ) -> Result<Self, StoreError> {
        let pool = pool(url)?;
        {
            let mut client = pool.get().await.map_err(pool_error)?;
            if access == Access::ReadWrite {
                client
                    .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
                    .await
                    .map_err(classify)?;
                let migrated = embedded::migrations::runner()
                    .set_migration_table_name("order_listener_migrations")
                    .run_async(&mut **client)
                    .await;
                client
                    .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
                    .await
                    .map_err(classify)?;
                migrated.map_err(|error| StoreError::Internal(Arc::new(error)))?;
            } else {
                let exists: bool = client
                    .query_one("SELECT to_regclass('events') IS NOT NULL", &[])
                    .await
                    .map_err(classify)?
                    .get(0);
                if !exists {
                    return Err(StoreError::Missing(
                        "the PostgreSQL database has no order-listener tables".into(),
                    ));
                }
            }
        }
        let stop = CancellationToken::new();
        let (commits, announce) = if access == Access::ReadWrite {
            let last: i64 = pool
                .get()
                .await
                .map_err(pool_error)?
                .query_one("SELECT COALESCE(MAX(sequence), 0) FROM events", &[])
                .await
                .map_err(classify)?
                .get(0);
            let (sequence, sequence_receiver) = tokio::sync::watch::channel(last);
            let (outbox, outbox_receiver) = tokio::sync::watch::channel(0u64);
            (
                Some(Commits {
                    sequence: sequence_receiver,
                    outbox: outbox_receiver,
                }),
                Some(Announcer { sequence, outbox }),
            )
        } else {
            (None, None)
        };
        let (appends, queue) = if access == Access::ReadWrite {
            let (sender, receiver) = tokio::sync::mpsc::channel(options.queue_capacity.max(1));
            (Some(sender), Some(receiver))
        } else {
            (None, None)
        };
        let counters = Arc::new(Counters::default());
        let routes: super::Routes = Arc::new(arc_swap::ArcSwap::from_pointee(routes));
        let appender = match (&announce, queue) {
            (Some(announcer), Some(queue)) => Some(Appender {
                pool: pool.clone(),
                routes: routes.clone(),
                books: Arc::new(Bookkeeper {
                    counters: counters.clone(),
                    metrics,
                    announcer: announcer.clone(),
                }),
                queue,
                max_batch: options.max_batch.max(1),
                stop: stop.clone(),
            }),
            _ => None,
        };
        let store = PostgresStore {
            inner: Arc::new(Inner {
                routes,
                appender: std::sync::Mutex::new(None),
                appends,
                pool,
                commits,
                announce,
                counters,
                replica: format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple()),
                lease: options.lease,
                stop,
            }),
        };
        if let Some(appender) = appender {
            tokio::spawn(watch_others(store.clone()));
            let task = tokio::spawn(appender.run());
            if let Ok(mut slot) = store.inner.appender.lock() {
                *slot = Some(task);
            }
        }
        Ok(store)
    }

    /// Commit announcements, for a store that writes.
    pub fn commits(&self) -> Option<Commits> {
        self.inner.commits.clone()
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.inner.pool.get().await.map_err(pool_error)
    }

    /// Swaps the routes the appender queues deliveries by.
    pub(super) fn set_routes(&self, routes: Arc<Vec<Route>>) {
        self.inner.routes.store(routes);
    }

    /// Stores the event and its deliveries, or recognises a resend. Concurrent appends share a
    /// transaction (group commit, as SQLite's writer does): the answer comes after the commit
    /// that holds the event.
    pub async fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
        let sender = self.inner.appends.as_ref().ok_or(StoreError::ReadOnly)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        sender
            .send((Box::new(event), reply))
            .await
            .map_err(|_| StoreError::ShuttingDown)?;
        answer
            .await
            .map_or(Err(StoreError::ShuttingDown), Answer::into_outcome)
    }

    /// Checks that the server answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client()
            .await?
            .query_one("SELECT 1", &[])
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// One stored event with its raw body.
    pub async fn event(
        &self,
        event_id: EventId,
    ) -> Result<Option<(EventRecord, Bytes)>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {RECORD_COLUMNS}, body FROM events WHERE event_id = $1"),
                &[&event_id.as_str()],
            )
            .await
            .map_err(classify)?;
        row.map(|row| {
            let record = record_from_row(&row)?;
            let body: Vec<u8> = row.get(RECORD_COLUMN_COUNT);
            Ok((record, Bytes::from(body)))
        })
        .transpose()
    }

    /// Stored events, newest first.
    pub async fn events(&self, filter: EventFilter) -> Result<Vec<EventRecord>, StoreError> {
        let time = i32::from(filter.time == TimeField::ReceivedAt);
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {RECORD_COLUMNS} FROM events
                     WHERE ($1::text IS NULL OR event_type = $1)
                       AND ($2::text IS NULL OR order_id = $2)
                       AND ($3::bigint IS NULL OR sequence < $3)
                       AND ($5::bigint IS NULL OR (CASE $7::int WHEN 0 THEN event_date_us ELSE received_at_us END) >= $5)
                       AND ($6::bigint IS NULL OR (CASE $7::int WHEN 0 THEN event_date_us ELSE received_at_us END) < $6)
                       AND ($8::text IS NULL OR dialect = $8)
                     ORDER BY sequence DESC LIMIT $4"
                ),
                &[
                    &filter.event_type.map(|kind| kind.as_str()),
                    &filter.order_id.as_ref().map(OrderId::as_str),
                    &filter.before_sequence,
                    &page_size(filter.limit),
                    &filter.since.map(micros),
                    &filter.until.map(micros),
                    &time,
                    &filter.dialect.map(Dialect::as_str),
                ],
            )
            .await
            .map_err(classify)?;
        rows.iter().map(record_from_row).collect()
    }

    /// The projection of one order, recomputed from its events.
    pub async fn order(&self, order_id: OrderId) -> Result<Option<ServiceOrder>, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(classify)?;
        let events = tx::Sql(&transaction)
            .order_events(order_id.as_str())
            .await?;
        Ok(project(
            order_id.clone(),
            append::timeline(&order_id, &events),
        ))
    }

    /// Commits and appends made by this replica.
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.counters.stats()
    }

    /// Commits the appends already queued, stops watching other replicas and closes the pool.
    pub async fn close(&self) {
        self.inner.stop.cancel();
        let task = self
            .inner
            .appender
            .lock()
            .ok()
            .and_then(|mut slot| slot.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        self.inner.pool.close();
    }
}

/// The group-commit task of a replica: takes whatever appends are queued and commits them in
/// one transaction through the shared pipeline, up to [`CONCURRENT_BATCHES`] transactions at
/// once, then answers each.
struct Appender {
    pool: Pool,
    routes: super::Routes,
    books: Arc<Bookkeeper>,
    queue: tokio::sync::mpsc::Receiver<(Box<NewEvent>, Reply)>,
    max_batch: usize,
    stop: CancellationToken,
}

impl Appender {
    async fn run(mut self) {
        let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_BATCHES));
        loop {
            let first = tokio::select! {
                first = self.queue.recv() => first,
                () = self.stop.cancelled() => {
                    // Refuse new appends, but commit those already queued.
                    self.queue.close();
                    self.queue.recv().await
                }
            };
            let Some(first) = first else {
                break;
            };
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match self.queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let (pool, routes, books) = (
                self.pool.clone(),
                self.routes.load_full(),
                self.books.clone(),
            );
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let note = books.counters.next_batch(batch.len());
                let events: Vec<&NewEvent> = batch.iter().map(|(event, _)| &**event).collect();
                let span = note.span(&events);
                let result = commit_batch(&pool, &events, &routes).instrument(span).await;
                books.settle(
                    batch.into_iter().map(|(_, reply)| reply),
                    result,
                    note,
                    started.elapsed(),
                );
                drop(slot);
            });
        }
        // Wait for the transactions in flight.
        let _ = slots.acquire_many(CONCURRENT_BATCHES as u32).await;
    }
}

/// One transaction for a batch of appends, through the shared pipeline.
async fn commit_batch(
    pool: &Pool,
    events: &[&NewEvent],
    routes: &[Route],
) -> Result<append::BatchOutcome, StoreError> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let transaction = client.transaction().await.map_err(classify)?;
    // A 201 means durable, whatever the server's default.
    transaction
        .batch_execute("SET LOCAL synchronous_commit = on")
        .await
        .map_err(classify)?;
    let outcome =
        append::append_batch(&mut tx::Sql(&transaction), events, routes, Utc::now()).await?;
    transaction.commit().await.map_err(classify)?;
    Ok(outcome)
}

fn hostname() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "replica".into())
}

/// Bumps the announcements when the stream's head moves (events that other replicas
/// committed, or this replica's, once no older transaction holds them back), so that the
/// stream and the delivery workers of this replica see them.
async fn watch_others(store: PostgresStore) {
    let Some(announce) = &store.inner.announce else {
        return;
    };
    let mut last = Cursor::default();
    loop {
        tokio::select! {
            () = store.inner.stop.cancelled() => return,
            () = tokio::time::sleep(WATCH_INTERVAL) => {}
        }
        if let Ok(head) = store.stream_head().await
            && head != last
        {
            last = head;
            announce
                .sequence
                .send_modify(|sequence| *sequence = (*sequence).max(head.sequence));
            announce.outbox_changed();
        }
    }
}

pub(super) use crate::store::rows::{
    RECORD_COLUMN_COUNT, RECORD_COLUMNS, SUMMARY_COLUMNS, instant,
};

/// Reads an [`OrderSummary`] from a row of [`SUMMARY_COLUMNS`].
fn summary_from_row(row: &Row) -> Result<OrderSummary, StoreError> {
    SummaryRow {
        id: row.get(0),
        state: row.get(1),
        external_id: row.get(2),
        item_count: row.get(3),
        anomaly_count: row.get(4),
        event_count: row.get(5),
        last_event_date_us: row.get(6),
        updated_at_us: row.get(7),
    }
    .decode()
}

/// Reads an [`EventRecord`] from a row of [`RECORD_COLUMNS`].
fn record_from_row(row: &Row) -> Result<EventRecord, StoreError> {
    RecordRow {
        sequence: row.get(0),
        event_id: row.get(1),
        event_type: row.get(2),
        event_date_us: row.get(3),
        order_id: row.get(4),
        received_at_us: row.get(5),
        sender: row.get(6),
        client: row.get(7),
        dialect: row.get(8),
        reference: row.get(9),
        source: row.get(10),
    }
    .decode()
}
