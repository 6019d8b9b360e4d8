//! The embedded SQLite backend: one writer thread that commits appends in batches (group
//! commit), and a pool of read-only connections. WAL mode lets readers, including the CLI in
//! another process, run while the writer commits.
//!
//! Every commit is fsynced (`synchronous = FULL`) before any caller of that batch hears back.

pub mod backup;
mod checkpoint;
mod console;
mod durable;
mod orders;
mod outbox;
mod reconcile;
mod retention;
mod snapshot;
mod tx;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use rusqlite_migration::{M, Migrations};
use tokio::sync::{mpsc, oneshot};

use self::checkpoint::Checkpoints;
use self::durable::{Committed, Flusher};
use super::append::{self, AppendTx};
use super::books::{Announcer, Answer, Bookkeeper, Counters, Reply};
use super::rows::{RecordRow, SummaryRow, page_size};
use super::{
    Appended, Commits, DriverFailure, EventFilter, EventRecord, NewEvent, OrderSummary, StoreError,
    TimeField, WriterOptions, WriterStats, internal,
};
use crate::domain::envelope::{Dialect, EventId, OrderId};
use crate::domain::projection::{ServiceOrder, project};
use crate::domain::routing::Route;
use crate::metrics::Metrics;

/// The schema, one migration per version. Never edit a released migration: add one.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_events_and_orders.sql"),
    include_str!("../migrations/sqlite/0002_drop_events_by_type.sql"),
    include_str!("../migrations/sqlite/0003_outbox.sql"),
    include_str!("../migrations/sqlite/0004_retention.sql"),
    include_str!("../migrations/sqlite/0005_incremental_projection.sql"),
    include_str!("../migrations/sqlite/0006_event_dialect.sql"),
    include_str!("../migrations/sqlite/0007_order_snapshots.sql"),
    include_str!("../migrations/sqlite/0008_suspects.sql"),
    include_str!("../migrations/sqlite/0009_trace_context.sql"),
    include_str!("../migrations/sqlite/0010_event_source.sql"),
    include_str!("../migrations/sqlite/0011_deliveries_due.sql"),
];

fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

/// The newest schema version this program knows (SQLite's `user_version`).
fn schema_version() -> usize {
    MIGRATIONS.len()
}

/// Work for the writer thread besides appends: outbox changes, each in its own transaction.
type Job = Box<dyn FnOnce(&mut Connection, &Announcer) + Send>;

enum Command {
    Append(Box<NewEvent>, Reply),
    Run(Job),
    Shutdown(oneshot::Sender<()>),
}

/// The SQLite store. Clones share the writer and the pool.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The writer's routes (none for a read-only store).
    routes: super::Routes,
    writer: Option<mpsc::Sender<Command>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    counters: Arc<Counters>,
    commits: Option<Commits>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// The free space that makes a store whose disk was full ready again.
const MIN_ROOM_BYTES: u64 = 1024 * 1024;

/// Whether the file system that holds `path` has [`MIN_ROOM_BYTES`] free for this user.
fn has_room(path: &std::path::Path) -> bool {
    let directory = path.parent().unwrap_or(path);
    rustix::fs::statvfs(directory).map_or(true, |stats| {
        stats.f_bavail.saturating_mul(stats.f_frsize) >= MIN_ROOM_BYTES
    })
}

fn classify(error: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::*;
    let failure = match &error {
        rusqlite::Error::SqliteFailure(failure, _) if failure.code == DiskFull => {
            DriverFailure::DiskFull
        }
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(
                failure.code,
                DatabaseBusy
                    | DatabaseLocked
                    | SystemIoFailure
                    | CannotOpen
                    | ReadOnly
                    | OutOfMemory
            ) =>
        {
            DriverFailure::Retryable
        }
        _ => DriverFailure::Internal,
    };
    StoreError::of_driver(failure, error)
}

fn pool_error(error: r2d2::Error) -> StoreError {
    StoreError::Unavailable(Arc::new(error))
}

fn reader_pool(path: &Path) -> Result<r2d2::Pool<SqliteConnectionManager>, StoreError> {
    let manager = SqliteConnectionManager::file(path)
        .with_flags(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .with_init(|connection| {
            connection.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")
        });
    r2d2::Pool::builder()
        .max_size(4)
        .min_idle(Some(0))
        .build(manager)
        .map_err(pool_error)
}

impl SqliteStore {
    /// Opens or creates the database at `path`, migrates it and starts the writer thread, which
    /// records each commit in `metrics` when given.
    pub async fn open(
        path: PathBuf,
        options: WriterOptions,
        routes: Vec<Route>,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Self, StoreError> {
        let (connection, checkpoints, path) =
            tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|error| StoreError::Unavailable(Arc::new(error)))?;
                }
                let mut connection = Connection::open(&path).map_err(classify)?;
                // The writer keeps 32 MiB of pages cached, so that the upper levels of every index
                // stay in memory however large the store grows. The WAL is checkpointed by a thread
                // of its own and, to restart the log, by the writer after a batch's callers have
                // their answers (`checkpoint.rs`), never inside a commit as SQLite's autocheckpoint
                // would. Commits do not fsync: a thread flushes the log before their callers are
                // answered (`durable.rs`); the writer's other transactions sync as they commit.
                connection
                    .execute_batch(
                        "PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = NORMAL;
                     PRAGMA busy_timeout = 5000;
                     PRAGMA cache_size = -32768;
                     PRAGMA journal_size_limit = 67108864;",
                    )
                    .map_err(classify)?;
                check_not_too_new(&connection, &path)?;
                migrations()
                    .to_latest(&mut connection)
                    .map_err(|error| StoreError::Internal(Arc::new(error)))?;
                connection.wal_hook(Some(checkpoint::count_wal_pages));
                let checkpoints = Connection::open(&path)
                    .and_then(|checkpoints| {
                        checkpoints.execute_batch("PRAGMA synchronous = FULL;")?;
                        Ok(checkpoints)
                    })
                    .map_err(classify)?;
                Ok((connection, checkpoints, path))
            })
            .await
            .map_err(|error| internal(format!("opening the store panicked: {error}")))??;

        let last_sequence: i64 = connection
            .query_row("SELECT COALESCE(MAX(sequence), 0) FROM events", [], |row| {
                row.get(0)
            })
            .map_err(classify)?;
        let (sequence, sequence_receiver) = tokio::sync::watch::channel(last_sequence);
        let (outbox, outbox_receiver) = tokio::sync::watch::channel(0);
        let announcer = Announcer { sequence, outbox };
        let counters = Arc::new(Counters::default());
        let readers = reader_pool(&path)?;
        let (sender, receiver) = mpsc::channel(options.queue_capacity.max(1));
        let max_batch = options.max_batch.max(1);
        let routes: super::Routes = Arc::new(arc_swap::ArcSwap::from_pointee(routes));
        let books = Bookkeeper {
            counters: counters.clone(),
            metrics,
            announcer,
        };
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        let flusher = Flusher::start(wal.into(), books.clone())
            .map_err(|error| StoreError::Internal(Arc::new(error)))?;
        let writer = Writer {
            max_batch,
            wal_pages: options.wal_pages,
            routes: routes.clone(),
            books,
        };
        let writer_thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run_writer(connection, checkpoints, flusher, receiver, &writer))
            .map_err(|error| StoreError::Internal(Arc::new(error)))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                routes,
                writer: Some(sender),
                writer_thread: Mutex::new(Some(writer_thread)),
                readers,
                counters,
                commits: Some(Commits {
                    sequence: sequence_receiver,
                    outbox: outbox_receiver,
                }),
            }),
        })
    }

    /// Opens an existing database for reading, without migrating it or starting a writer.
    pub async fn open_read_only(path: PathBuf) -> Result<Self, StoreError> {
        let path = tokio::task::spawn_blocking(move || -> Result<PathBuf, StoreError> {
            if !path.exists() {
                return Err(StoreError::Missing(path.display().to_string()));
            }
            let connection = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)
                .map_err(classify)?;
            check_not_too_new(&connection, &path)?;
            let version: i64 = connection
                .query_row("PRAGMA user_version", [], |row| row.get(0))
                .map_err(classify)?;
            if version == 0 {
                return Err(StoreError::Missing(path.display().to_string()));
            }
            Ok(path)
        })
        .await
        .map_err(|error| internal(format!("opening the store panicked: {error}")))??;
        let readers = reader_pool(&path)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                routes: Arc::default(),
                writer: None,
                writer_thread: Mutex::new(None),
                readers,
                counters: Arc::default(),
                commits: None,
            }),
        })
    }

    /// Commit announcements, for a store with a writer.
    pub fn commits(&self) -> Option<Commits> {
        self.inner.commits.clone()
    }

    /// Runs `job` on the writer thread and waits for its answer.
    async fn write<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Announcer) -> Result<T, StoreError> + Send + 'static,
    {
        let writer = self.inner.writer.as_ref().ok_or(StoreError::ReadOnly)?;
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |connection, announcer| {
            let _ = reply.send(job(connection, announcer));
        });
        writer
            .send(Command::Run(job))
            .await
            .map_err(|_| StoreError::ShuttingDown)?;
        answer.await.unwrap_or(Err(StoreError::ShuttingDown))
    }

    /// Queues the event for the next commit batch and waits for that commit.
    pub async fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
        let writer = self.inner.writer.as_ref().ok_or(StoreError::ReadOnly)?;
        let (reply, outcome) = oneshot::channel();
        writer
            .send(Command::Append(Box::new(event), reply))
            .await
            .map_err(|_| StoreError::ShuttingDown)?;
        // A dropped reply means the writer stopped before answering; the event may or may not
        // be committed, so the sender must retry (and a retry is deduplicated).
        outcome
            .await
            .map_or(Err(StoreError::ShuttingDown), Answer::into_outcome)
    }

    /// How many commits and appends the writer has made.
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.counters.stats()
    }

    /// Swaps the routes the writer queues deliveries by.
    pub(super) fn set_routes(&self, routes: Arc<Vec<Route>>) {
        self.inner.routes.store(routes);
    }

    /// Checks that the writer runs and that the database answers a query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        if self
            .inner
            .writer
            .as_ref()
            .is_some_and(mpsc::Sender::is_closed)
        {
            return Err(StoreError::ShuttingDown);
        }
        // After a commit failed for lack of space, ready again only once there is room.
        if self.inner.counters.disk_full() && !has_room(&self.inner.path) {
            return Err(StoreError::DiskFull(Arc::new(std::io::Error::other(
                format!(
                    "less than {} bytes are free beside {}",
                    MIN_ROOM_BYTES,
                    self.inner.path.display()
                ),
            ))));
        }
        self.read(|connection| {
            connection
                .query_row("SELECT 1", [], |_| Ok(()))
                .map_err(classify)
        })
        .await
    }

    /// Runs `query` on a pooled read connection, off the async threads.
    async fn read<T, F>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.inner.readers.clone();
        tokio::task::spawn_blocking(move || {
            let connection = pool.get().map_err(pool_error)?;
            query(&connection)
        })
        .await
        .map_err(|error| internal(format!("a store query panicked: {error}")))?
    }

    /// One stored event with its raw body.
    pub async fn event(
        &self,
        event_id: EventId,
    ) -> Result<Option<(EventRecord, Bytes)>, StoreError> {
        self.read(move |connection| {
            connection
                .query_row(
                    &format!("SELECT {RECORD_COLUMNS}, body FROM events WHERE event_id = ?1"),
                    [event_id.as_str()],
                    |row| {
                        Ok((
                            record_from_row(row),
                            Bytes::from(row.get::<_, Vec<u8>>(RECORD_COLUMN_COUNT)?),
                        ))
                    },
                )
                .optional()
                .map_err(classify)?
                .map(|(record, body)| record.map(|record| (record, body)))
                .transpose()
        })
        .await
    }

    /// Stored events, newest first.
    pub async fn events(&self, filter: EventFilter) -> Result<Vec<EventRecord>, StoreError> {
        self.read(move |connection| {
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT {RECORD_COLUMNS} FROM events
                     WHERE (?1 IS NULL OR event_type = ?1)
                       AND (?2 IS NULL OR order_id = ?2)
                       AND (?3 IS NULL OR sequence < ?3)
                       AND (?5 IS NULL OR (CASE ?7 WHEN 0 THEN event_date_us ELSE received_at_us END) >= ?5)
                       AND (?6 IS NULL OR (CASE ?7 WHEN 0 THEN event_date_us ELSE received_at_us END) < ?6)
                       AND (?8 IS NULL OR dialect = ?8)
                     ORDER BY sequence DESC LIMIT ?4"
                ))
                .map_err(classify)?;
            let micros = |instant: Option<DateTime<Utc>>| instant.map(|at| at.timestamp_micros());
            let rows = statement
                .query_map(
                    params![
                        filter.event_type.map(|kind| kind.as_str()),
                        filter.order_id.as_ref().map(OrderId::as_str),
                        filter.before_sequence,
                        page_size(filter.limit),
                        micros(filter.since),
                        micros(filter.until),
                        i64::from(filter.time == TimeField::ReceivedAt),
                        filter.dialect.map(Dialect::as_str),
                    ],
                    |row| Ok(record_from_row(row)),
                )
                .map_err(classify)?;
            rows.map(|row| row.map_err(classify)?).collect()
        })
        .await
    }

    /// The projection of one order, recomputed from its events.
    pub async fn order(&self, order_id: OrderId) -> Result<Option<ServiceOrder>, StoreError> {
        self.read(move |connection| {
            let events =
                futures_executor::block_on(tx::Sql(connection).order_events(order_id.as_str()))?;
            Ok(project(
                order_id.clone(),
                append::timeline(&order_id, &events),
            ))
        })
        .await
    }

    /// Commits what is queued, stops the writer thread and waits for it.
    pub async fn close(&self) {
        let Some(writer) = &self.inner.writer else {
            return;
        };
        let (done, finished) = oneshot::channel();
        if writer.send(Command::Shutdown(done)).await.is_ok() {
            let _ = finished.await;
        }
        let handle = self
            .inner
            .writer_thread
            .lock()
            .ok()
            .and_then(|mut slot| slot.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

fn check_not_too_new(connection: &Connection, path: &Path) -> Result<(), StoreError> {
    let found: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(classify)?;
    let found = usize::try_from(found).unwrap_or(usize::MAX);
    if found > schema_version() {
        return Err(StoreError::TooNew {
            location: path.display().to_string(),
            found,
            supported: schema_version(),
        });
    }
    Ok(())
}

pub(super) use crate::store::rows::{
    RECORD_COLUMN_COUNT, RECORD_COLUMNS, SUMMARY_COLUMNS, instant as received_at,
};

/// Reads an [`OrderSummary`] from a row of [`SUMMARY_COLUMNS`].
fn summary_from_row(row: &rusqlite::Row<'_>) -> Result<OrderSummary, StoreError> {
    SummaryRow {
        id: row.get(0).map_err(classify)?,
        state: row.get(1).map_err(classify)?,
        external_id: row.get(2).map_err(classify)?,
        item_count: row.get(3).map_err(classify)?,
        anomaly_count: row.get(4).map_err(classify)?,
        event_count: row.get(5).map_err(classify)?,
        last_event_date_us: row.get(6).map_err(classify)?,
        updated_at_us: row.get(7).map_err(classify)?,
    }
    .decode()
}

/// Reads an [`EventRecord`] from a row of [`RECORD_COLUMNS`].
fn record_from_row(row: &rusqlite::Row<'_>) -> Result<EventRecord, StoreError> {
    RecordRow {
        sequence: row.get(0).map_err(classify)?,
        event_id: row.get(1).map_err(classify)?,
        event_type: row.get(2).map_err(classify)?,
        event_date_us: row.get(3).map_err(classify)?,
        order_id: row.get(4).map_err(classify)?,
        received_at_us: row.get(5).map_err(classify)?,
        sender: row.get(6).map_err(classify)?,
        client: row.get(7).map_err(classify)?,
        dialect: row.get(8).map_err(classify)?,
        reference: row.get(9).map_err(classify)?,
        source: row.get(10).map_err(classify)?,
    }
    .decode()
}

/// What the writer thread owns besides its connection.
struct Writer {
    max_batch: usize,
    /// The WAL's size at which the writer restarts it.
    wal_pages: u32,
    routes: super::Routes,
    books: Bookkeeper,
}

/// The writer thread: takes whatever appends are queued, commits them in one transaction,
/// and hands them to the flusher, which answers each once the log is on disk. Under load,
/// batches grow; when idle, one append is one commit. Outbox jobs run between batches, each in
/// its own transaction, synced as it commits.
fn run_writer(
    mut connection: Connection,
    checkpoints: Connection,
    mut flusher: Flusher,
    mut receiver: mpsc::Receiver<Command>,
    writer: &Writer,
) {
    let mut checkpoints = Checkpoints::start(checkpoints, writer.wal_pages);
    let mut batch: Vec<(Box<NewEvent>, Reply)> = Vec::with_capacity(writer.max_batch);
    let mut jobs: Vec<Job> = Vec::new();
    let mut shutdown: Option<oneshot::Sender<()>> = None;
    while let Some(command) = receiver.blocking_recv() {
        let mut next = Some(command);
        while let Some(command) = next.take() {
            match command {
                Command::Append(event, reply) => batch.push((event, reply)),
                Command::Run(job) => jobs.push(job),
                Command::Shutdown(done) => shutdown = Some(done),
            }
            if batch.len() < writer.max_batch {
                next = receiver.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut connection, &mut batch, writer, &flusher);
        }
        if !jobs.is_empty() {
            run_jobs(&mut connection, &mut jobs, writer);
        }
        checkpoints.after_batch(&connection);
        if shutdown.is_some() {
            // Refuse new appends, but commit those that were already waiting.
            receiver.close();
            while let Ok(command) = receiver.try_recv() {
                match command {
                    Command::Append(event, reply) => {
                        batch.push((event, reply));
                        if batch.len() >= writer.max_batch {
                            commit_batch(&mut connection, &mut batch, writer, &flusher);
                        }
                    }
                    Command::Run(job) => run_jobs(&mut connection, &mut vec![job], writer),
                    Command::Shutdown(_) => {}
                }
            }
            if !batch.is_empty() {
                commit_batch(&mut connection, &mut batch, writer, &flusher);
            }
            break;
        }
    }
    flusher.stop();
    checkpoints.stop();
    // Fold the WAL back into the database so the file is complete on its own.
    if let Err(error) = connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::warn!(%error, "could not checkpoint the write-ahead log at shutdown");
    }
    drop(connection);
    if let Some(done) = shutdown {
        let _ = done.send(());
    }
}

/// Runs outbox jobs, each a transaction of its own that syncs as it commits: their callers
/// hear back from the job itself, not from the flusher.
fn run_jobs(connection: &mut Connection, jobs: &mut Vec<Job>, writer: &Writer) {
    set_synchronous(connection, "FULL");
    for job in jobs.drain(..) {
        job(connection, &writer.books.announcer);
    }
    set_synchronous(connection, "NORMAL");
}

fn set_synchronous(connection: &Connection, value: &str) {
    if let Err(error) = connection.execute_batch(&format!("PRAGMA synchronous = {value};")) {
        tracing::warn!(%error, value, "could not set the writer's synchronous mode");
    }
}

/// Commits a batch of appends in one transaction through the shared pipeline
/// ([`append::append_batch`]), then hands it to the flusher, which answers each.
fn commit_batch(
    connection: &mut Connection,
    batch: &mut Vec<(Box<NewEvent>, Reply)>,
    writer: &Writer,
    flusher: &Flusher,
) {
    let started = std::time::Instant::now();
    let note = writer.books.counters.next_batch(batch.len());
    let result = (|| {
        let events: Vec<&NewEvent> = batch.iter().map(|(event, _)| &**event).collect();
        let _span = note.span(&events).entered();
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(classify)?;
        let outcome = futures_executor::block_on(append::append_batch(
            &mut tx::Sql(&transaction),
            &events,
            &writer.routes.load(),
            Utc::now(),
        ))?;
        transaction.commit().map_err(classify)?;
        Ok(outcome)
    })();
    flusher.flush(Committed {
        replies: batch.drain(..).map(|(_, reply)| reply).collect(),
        result,
        note,
        started,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        assert!(migrations().validate().is_ok());
    }
}
