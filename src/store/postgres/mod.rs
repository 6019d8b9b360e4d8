//! The PostgreSQL backend, for several replicas behind one load balancer. A replica's
//! concurrent appends share one transaction (group commit, as SQLite's writer does); each such
//! transaction takes one advisory lock, so that receipt sequences commit in order (the event
//! stream relies on it) and an order's projection is never refreshed by two replicas at once.
//! The unique `event_id` deduplicates across replicas.
//!
//! When the server cannot be reached, every call fails with [`StoreError::Unavailable`] (the
//! Listener API answers 503, code 5) and the pool connects again by itself once it is back.

mod console;
mod outbox;
mod retention;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use tokio_util::sync::CancellationToken;

use super::{
    Appended, Commits, EventFilter, EventRecord, NewEvent, OrderFilter, OrderSummary, StoreError,
    TimeField, WriterOptions, WriterStats, lane,
};
use crate::config::Secret;
use crate::domain::envelope::{EventDate, EventId, OrderFacts, OrderId, same_payload};
use crate::domain::projection::{ServiceOrder, TimelineEntry, project};
use crate::domain::routing::Route;
use crate::metrics::Metrics;

mod embedded {
    refinery::embed_migrations!("src/store/migrations/postgres");
}

/// The advisory lock every append takes (and migrations, with another key).
const APPEND_LOCK: i64 = 0x6f6c_6170; // "olap"
const MIGRATION_LOCK: i64 = 0x6f6c_6d67; // "olmg"

/// How often a replica looks for events and outbox work that other replicas committed.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// The PostgreSQL store. Clones share the pool.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    routes: Vec<Route>,
    metrics: Option<Arc<Metrics>>,
    commits: Option<Commits>,
    announce: Option<Announce>,
    counters: Arc<Counters>,
    /// This replica's name in outbox leases.
    replica: String,
    /// How long a claimed delivery stays this replica's.
    lease: Duration,
    stop: CancellationToken,
    /// The queue of the group-commit task; `None` for a read-only store.
    appends: Option<tokio::sync::mpsc::Sender<(Box<NewEvent>, AppendReply)>>,
    /// The group-commit task, joined at `close` after it has committed what was queued.
    appender: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

struct Announce {
    sequence: tokio::sync::watch::Sender<i64>,
    outbox: tokio::sync::watch::Sender<u64>,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    appends: AtomicU64,
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
    let shared: super::SharedError = Arc::new(error);
    if retryable {
        StoreError::Unavailable(shared)
    } else {
        StoreError::Internal(shared)
    }
}

fn pool_error(error: deadpool_postgres::PoolError) -> StoreError {
    match error {
        deadpool_postgres::PoolError::Backend(error) => classify(error),
        other => StoreError::Unavailable(Arc::new(other)),
    }
}

fn internal(message: impl Into<String>) -> StoreError {
    StoreError::Internal(Arc::new(std::io::Error::other(message.into())))
}

fn micros(instant: DateTime<Utc>) -> i64 {
    instant.timestamp_micros()
}

fn instant(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| internal(format!("stored time {micros} is out of range")))
}

fn event_date(micros: i64) -> Result<EventDate, StoreError> {
    EventDate::from_timestamp_micros(micros)
        .ok_or_else(|| internal(format!("stored date {micros} is out of range")))
}

/// Builds the pool: TLS unless the URL says `sslmode=disable` (rustls, with the platform's
/// roots), short connect and wait timeouts so that an outage fails fast.
fn pool(url: &Secret) -> Result<Pool, StoreError> {
    let mut config = tokio_postgres::Config::from_str(url.expose()).map_err(|_| {
        internal("database_url is not a valid postgres:// URL (the value is not shown: it may hold a password)")
    })?;
    config.connect_timeout(Duration::from_secs(5));
    if config.get_application_name().is_none() {
        config.application_name("order-listener");
    }
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = if config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
        Manager::from_config(config, NoTls, manager_config)
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(certificate);
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|error| internal(format!("TLS for PostgreSQL: {error}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Manager::from_config(
            config,
            tokio_postgres_rustls::MakeRustlsConnect::new(tls),
            manager_config,
        )
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

impl PostgresStore {
    /// Connects, migrates (one replica at a time) and starts watching for other replicas'
    /// commits. With `writer` false, the store only reads (the CLI's queries).
    pub async fn open(
        url: &Secret,
        options: WriterOptions,
        routes: Vec<Route>,
        metrics: Option<Arc<Metrics>>,
        writer: bool,
    ) -> Result<Self, StoreError> {
        let pool = pool(url)?;
        {
            let mut client = pool.get().await.map_err(pool_error)?;
            if writer {
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
        let (commits, announce) = if writer {
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
                Some(Announce { sequence, outbox }),
            )
        } else {
            (None, None)
        };
        let (appends, queue) = if writer {
            let (sender, receiver) = tokio::sync::mpsc::channel(options.queue_capacity.max(1));
            (Some(sender), Some(receiver))
        } else {
            (None, None)
        };
        let store = PostgresStore {
            inner: Arc::new(Inner {
                appender: std::sync::Mutex::new(None),
                appends,
                pool,
                routes,
                metrics,
                commits,
                announce,
                counters: Arc::default(),
                replica: format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple()),
                lease: options.lease,
                stop,
            }),
        };
        if let Some(queue) = queue {
            tokio::spawn(watch_others(store.clone()));
            // The appender holds a clone of the store, so it ends when every other clone is
            // gone or at `close`.
            let task = tokio::spawn(run_appender(
                store.without_appends(),
                queue,
                options.max_batch.max(1),
            ));
            if let Ok(mut slot) = store.inner.appender.lock() {
                *slot = Some(task);
            }
        }
        Ok(store)
    }

    /// A handle for the appender task: everything but the append queue, so that the task does
    /// not keep its own queue open.
    fn without_appends(&self) -> PostgresStore {
        PostgresStore {
            inner: Arc::new(Inner {
                pool: self.inner.pool.clone(),
                routes: self.inner.routes.clone(),
                metrics: self.inner.metrics.clone(),
                commits: None,
                announce: self.inner.announce.as_ref().map(|announce| Announce {
                    sequence: announce.sequence.clone(),
                    outbox: announce.outbox.clone(),
                }),
                counters: self.inner.counters.clone(),
                replica: self.inner.replica.clone(),
                lease: self.inner.lease,
                stop: self.inner.stop.clone(),
                appends: None,
                appender: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Commit announcements, for a store that writes.
    pub fn commits(&self) -> Option<Commits> {
        self.inner.commits.clone()
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.inner.pool.get().await.map_err(pool_error)
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
        answer.await.unwrap_or(Err(StoreError::ShuttingDown))
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
            let body: Vec<u8> = row.get(9);
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
                     ORDER BY sequence DESC LIMIT $4"
                ),
                &[
                    &filter.event_type.map(|kind| kind.as_str()),
                    &filter.order_id.as_ref().map(OrderId::as_str),
                    &filter.before_sequence,
                    &limit(filter.limit),
                    &filter.since.map(micros),
                    &filter.until.map(micros),
                    &time,
                ],
            )
            .await
            .map_err(classify)?;
        rows.iter().map(record_from_row).collect()
    }

    /// The projection of one order, recomputed from its events.
    pub async fn order(&self, order_id: OrderId) -> Result<Option<ServiceOrder>, StoreError> {
        let client = self.client().await?;
        let timeline = load_timeline(&client, &order_id).await?;
        Ok(project(order_id, timeline))
    }

    /// Orders, most recently updated first.
    pub async fn orders(&self, filter: OrderFilter) -> Result<Vec<OrderSummary>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {SUMMARY_COLUMNS}
                     FROM service_orders
                     WHERE ($1::text IS NULL OR state = $1) AND (NOT $2 OR anomaly_count > 0)
                       AND ($4::text IS NULL OR external_id = $4)
                       AND ($5::bigint IS NULL OR updated_at_us >= $5)
                     ORDER BY updated_at_us DESC, id LIMIT $3"
                ),
                &[
                    &filter.state.map(|state| state.as_str()),
                    &filter.with_anomalies,
                    &limit(filter.limit),
                    &filter.external_id,
                    &filter.updated_since.map(micros),
                ],
            )
            .await
            .map_err(classify)?;
        rows.iter().map(summary_from_row).collect()
    }

    /// Commits and appends made by this replica.
    pub fn writer_stats(&self) -> WriterStats {
        WriterStats {
            commits: self.inner.counters.commits.load(Ordering::Relaxed),
            appends: self.inner.counters.appends.load(Ordering::Relaxed),
        }
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

type AppendReply = tokio::sync::oneshot::Sender<Result<Appended, StoreError>>;

/// Takes whatever appends are queued and commits them in one transaction, then answers each.
async fn run_appender(
    store: PostgresStore,
    mut receiver: tokio::sync::mpsc::Receiver<(Box<NewEvent>, AppendReply)>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch);
    let stop = store.inner.stop.clone();
    loop {
        let first = tokio::select! {
            first = receiver.recv() => first,
            () = stop.cancelled() => {
                // Refuse new appends, but commit those already queued.
                receiver.close();
                receiver.recv().await
            }
        };
        let Some(first) = first else {
            return;
        };
        batch.push(first);
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let size = batch.len();
        let events: Vec<&NewEvent> = batch.iter().map(|(event, _)| &**event).collect();
        match store.commit_batch(&events).await {
            Ok((outcomes, queued)) => {
                store.inner.counters.commits.fetch_add(1, Ordering::Relaxed);
                store
                    .inner
                    .counters
                    .appends
                    .fetch_add(size as u64, Ordering::Relaxed);
                if let Some(metrics) = &store.inner.metrics {
                    metrics.commit(size, started.elapsed());
                }
                let newest = outcomes
                    .iter()
                    .filter_map(|outcome| match outcome {
                        Ok(Appended::Stored { sequence }) => Some(*sequence),
                        _ => None,
                    })
                    .max();
                if let Some(announce) = &store.inner.announce {
                    if let Some(newest) = newest {
                        announce
                            .sequence
                            .send_modify(|last| *last = (*last).max(newest));
                    }
                    if queued > 0 {
                        announce.outbox.send_modify(|generation| *generation += 1);
                    }
                }
                for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(error) => {
                if error.is_retryable() {
                    tracing::warn!(size, error = %crate::telemetry::error_chain(&error), "commit batch failed");
                } else {
                    tracing::error!(size, error = %crate::telemetry::error_chain(&error), "commit batch failed");
                }
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

impl PostgresStore {
    /// One transaction for a batch of appends: the append lock, then each event (dedup,
    /// deliveries), then the projection of each order touched. Returns each append's outcome
    /// and how many deliveries were queued.
    async fn commit_batch(
        &self,
        events: &[&NewEvent],
    ) -> Result<(Vec<Result<Appended, StoreError>>, u64), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(classify)?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])
            .await
            .map_err(classify)?;
        let mut outcomes = Vec::with_capacity(events.len());
        let mut touched = std::collections::BTreeSet::new();
        let mut queued = 0;
        for event in events {
            let (outcome, deliveries) = self.append_one(&transaction, event).await?;
            if let (Ok(Appended::Stored { .. }), Some(facts)) =
                (&outcome, &event.notification.order)
            {
                touched.insert(facts.order_id.clone());
            }
            queued += deliveries;
            outcomes.push(outcome);
        }
        for order_id in &touched {
            refresh_order(&transaction, order_id).await?;
        }
        transaction.commit().await.map_err(classify)?;
        Ok((outcomes, queued))
    }

    /// Inserts one event and its deliveries, or recognises a resend or a conflict.
    async fn append_one(
        &self,
        transaction: &deadpool_postgres::Transaction<'_>,
        event: &NewEvent,
    ) -> Result<(Result<Appended, StoreError>, u64), StoreError> {
        let notification = &event.notification;
        let facts = match &notification.order {
            Some(facts) => Some(
                serde_json::to_string(facts)
                    .map_err(|error| internal(format!("cannot encode the order facts: {error}")))?,
            ),
            None => None,
        };
        let order_id = notification
            .order
            .as_ref()
            .map(|facts| facts.order_id.as_str());
        let inserted = transaction
            .query_opt(
                "INSERT INTO events (event_id, event_type, event_date, event_date_us, order_id,
                                     received_at_us, sender, client, facts, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (event_id) DO NOTHING
                 RETURNING sequence",
                &[
                    &notification.event_id.as_str(),
                    &notification.event_type.as_str(),
                    &notification.event_date.to_string(),
                    &notification.event_date.timestamp_micros(),
                    &order_id,
                    &micros(event.received_at),
                    &event.sender,
                    &event.client,
                    &facts,
                    &&notification.raw[..],
                ],
            )
            .await
            .map_err(classify)?;
        let Some(row) = inserted else {
            let row = transaction
                .query_one(
                    "SELECT sequence, body FROM events WHERE event_id = $1",
                    &[&notification.event_id.as_str()],
                )
                .await
                .map_err(classify)?;
            let (sequence, body): (i64, Vec<u8>) = (row.get(0), row.get(1));
            let outcome = if same_payload(&body, &notification.raw) {
                Ok(Appended::Duplicate {
                    sequence,
                    body: Bytes::from(body),
                })
            } else {
                Err(StoreError::Conflict {
                    event_id: notification.event_id.clone(),
                })
            };
            return Ok((outcome, 0));
        };
        let sequence: i64 = row.get(0);
        let mut queued = 0;
        for route in self
            .inner
            .routes
            .iter()
            .filter(|route| route.filter.matches(notification))
        {
            queued += transaction
                .execute(
                    "INSERT INTO deliveries (sink, sequence, lane, event_date_us, state, created_us,
                                             next_attempt_us)
                     VALUES ($1, $2, $3, $4, 'pending', $5, $5)
                     ON CONFLICT (sink, sequence) DO NOTHING",
                    &[
                        &route.sink.as_str(),
                        &sequence,
                        &lane(order_id, notification.event_id.as_str()),
                        &notification.event_date.timestamp_micros(),
                        &micros(event.received_at),
                    ],
                )
                .await
                .map_err(classify)?;
        }
        Ok((Ok(Appended::Stored { sequence }), queued))
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "replica".into())
}

/// Bumps the announcements when other replicas commit events, so that the stream and the
/// delivery workers of this replica see them.
async fn watch_others(store: PostgresStore) {
    let Some(announce) = &store.inner.announce else {
        return;
    };
    loop {
        tokio::select! {
            () = store.inner.stop.cancelled() => return,
            () = tokio::time::sleep(WATCH_INTERVAL) => {}
        }
        let Ok(client) = store.client().await else {
            continue;
        };
        if let Ok(row) = client
            .query_one("SELECT COALESCE(MAX(sequence), 0) FROM events", &[])
            .await
        {
            let newest: i64 = row.get(0);
            let changed = *announce.sequence.borrow() < newest;
            if changed {
                announce
                    .sequence
                    .send_modify(|last| *last = (*last).max(newest));
                announce.outbox.send_modify(|generation| *generation += 1);
            }
        }
    }
}

fn limit(limit: usize) -> i64 {
    i64::try_from(limit.clamp(1, 10_000)).unwrap_or(10_000)
}

/// The columns [`summary_from_row`] reads, in its order.
const SUMMARY_COLUMNS: &str = "id, state, external_id, item_count, anomaly_count, event_count,
     last_event_date_us, updated_at_us";

/// Reads an [`OrderSummary`] from a row of [`SUMMARY_COLUMNS`].
fn summary_from_row(row: &Row) -> Result<OrderSummary, StoreError> {
    let id: String = row.get(0);
    let state: Option<String> = row.get(1);
    let count = |index| usize::try_from(row.get::<_, i64>(index)).unwrap_or_default();
    Ok(OrderSummary {
        id: id
            .parse()
            .map_err(|why| internal(format!("stored order id {id:?} {why}")))?,
        state: state
            .map(|state| state.parse())
            .transpose()
            .map_err(|error| internal(format!("stored state: {error}")))?,
        external_id: row.get(2),
        item_count: count(3),
        anomaly_count: count(4),
        event_count: count(5),
        last_event_date: event_date(row.get(6))?,
        updated_at: instant(row.get(7))?,
    })
}

const RECORD_COLUMNS: &str = "sequence, event_id, event_type, event_date_us, order_id, received_at_us, sender, client, facts";

fn record_from_row(row: &Row) -> Result<EventRecord, StoreError> {
    let event_id: String = row.get(1);
    let event_type: String = row.get(2);
    let order_id: Option<String> = row.get(4);
    Ok(EventRecord {
        sequence: row.get(0),
        event_id: event_id
            .parse()
            .map_err(|why| internal(format!("stored event id {event_id:?} {why}")))?,
        event_type: event_type.parse().map_err(internal)?,
        event_date: event_date(row.get(3))?,
        order_id: order_id
            .map(|id| {
                id.parse()
                    .map_err(|why| internal(format!("stored order id {id:?} {why}")))
            })
            .transpose()?,
        received_at: instant(row.get(5))?,
        sender: row.get(6),
        client: row.get(7),
    })
}

async fn load_timeline(
    client: &impl GenericClient,
    order_id: &OrderId,
) -> Result<Vec<TimelineEntry>, StoreError> {
    let rows = client
        .query(
            "SELECT event_id, event_date_us, event_type, facts FROM events WHERE order_id = $1",
            &[&order_id.as_str()],
        )
        .await
        .map_err(classify)?;
    rows.iter()
        .map(|row| {
            let event_id: String = row.get(0);
            let event_type: String = row.get(2);
            let facts: String = row.get(3);
            Ok(TimelineEntry {
                event_id: event_id
                    .parse()
                    .map_err(|why| internal(format!("stored event id {event_id:?} {why}")))?,
                event_date: event_date(row.get(1))?,
                event_type: event_type.parse().map_err(internal)?,
                facts: serde_json::from_str::<OrderFacts>(&facts)
                    .map_err(|error| internal(format!("stored facts of {event_id}: {error}")))?,
            })
        })
        .collect()
}

async fn refresh_order(client: &impl GenericClient, order_id: &OrderId) -> Result<(), StoreError> {
    let timeline = load_timeline(client, order_id).await?;
    let event_count = timeline.len() as i64;
    let Some(order) = project(order_id.clone(), timeline) else {
        return Ok(());
    };
    let items = serde_json::to_string(&order.items)
        .map_err(|error| internal(format!("cannot encode items: {error}")))?;
    let parameters: [&(dyn ToSql + Sync); 11] = [
        &order.id.as_str(),
        &order.state.map(|state| state.as_str()),
        &order.external_id,
        &order.order_date,
        &order.completion_date_time,
        &(order.items.len() as i64),
        &(order.anomalies.len() as i64),
        &event_count,
        &order.last_event_date.timestamp_micros(),
        &micros(Utc::now()),
        &items,
    ];
    client
        .execute(
            "INSERT INTO service_orders (id, state, external_id, order_date, completion_date_time,
                 item_count, anomaly_count, event_count, last_event_date_us, updated_at_us, items)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (id) DO UPDATE SET
                 state = excluded.state, external_id = excluded.external_id,
                 order_date = excluded.order_date, completion_date_time = excluded.completion_date_time,
                 item_count = excluded.item_count, anomaly_count = excluded.anomaly_count,
                 event_count = excluded.event_count, last_event_date_us = excluded.last_event_date_us,
                 updated_at_us = excluded.updated_at_us, items = excluded.items",
            &parameters,
        )
        .await
        .map_err(classify)?;
    Ok(())
}
