//! Online backup and restore of the SQLite store, and the lock that says a `serve` is using
//! it. A backup is SQLite's online backup API from a read-only connection: it copies one
//! committed state while `serve` goes on writing, then checks the copy (`PRAGMA
//! integrity_check`, the events and orders it holds) before it takes the target name.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// What a checked copy of the store holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Its events.
    pub events: u64,
    /// Its service orders.
    pub orders: u64,
    /// Its newest event's sequence (0 when empty).
    pub last_sequence: i64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Why a backup or a restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// SQLite refused.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file could not be read or written.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The copy is not a sound order-listener store.
    #[error("{0}")]
    NotSound(String),
    /// `serve` holds the store. The caller says why that stops it.
    #[error("a running `order-listener serve` holds {0}")]
    InUse(PathBuf),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let context = context.into();
    move |source| BackupError::Io { context, source }
}

/// The lock file of the store at `database`.
fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".serve-lock");
    PathBuf::from(name)
}

/// Takes the lock that says a `serve` uses the store at `database`, for as long as the
/// returned file lives; fails if another process holds it.
pub fn lock_for_serve(database: &Path) -> Result<File, BackupError> {
    let path = lock_path(database);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(format!("cannot open {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(BackupError::InUse(database.to_path_buf())),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(io(format!("cannot lock {}", path.display()))(error))
        }
    }
}

/// Copies the store at `source` to `target` while it may be in use, then checks the copy.
/// `target` appears only once it is complete and checked.
///
/// The copy is one step of SQLite's online backup: one read transaction, so one committed
/// state, which in WAL mode never blocks the writer. (Copying in several steps would restart
/// whenever `serve` commits in between, and under a steady load would never end.)
pub fn backup(source: &Path, target: &Path) -> Result<Checked, BackupError> {
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    from.busy_timeout(Duration::from_secs(5))?;
    let partial = partial_path(target);
    let _ = std::fs::remove_file(&partial);
    {
        let mut to = Connection::open(&partial)?;
        {
            let copy = Backup::new(&from, &mut to)?;
            let mut waits = 0;
            loop {
                match copy.step(-1)? {
                    StepResult::Done => break,
                    // A writer's lock for a moment (a checkpoint): wait, as SQLite advises.
                    _ if waits < 500 => {
                        waits += 1;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    _ => {
                        return Err(BackupError::NotSound(format!(
                            "{} stayed locked for 10 seconds; try again",
                            source.display()
                        )));
                    }
                }
            }
        }
        to.execute_batch("PRAGMA journal_mode = DELETE;")?;
    }
    let checked = check(&partial)?;
    File::open(&partial)
        .and_then(|file| file.sync_all())
        .map_err(io(format!("cannot sync {}", partial.display())))?;
    std::fs::rename(&partial, target).map_err(io(format!(
        "cannot move {} to {}",
        partial.display(),
        target.display()
    )))?;
    Ok(checked)
}

fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Checks that `path` is a sound order-listener store: SQLite's integrity check passes and it
/// has the store's tables; says what it holds.
pub fn check(path: &Path) -> Result<Checked, BackupError> {
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let verdict: String = connection.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    if verdict != "ok" {
        return Err(BackupError::NotSound(format!(
            "{} fails SQLite's integrity check: {verdict}",
            path.display()
        )));
    }
    let count = |sql: &str| -> Result<i64, BackupError> {
        connection.query_row(sql, [], |row| row.get(0)).map_err(|_| {
            BackupError::NotSound(format!(
                "{} is not an order-listener store (it has no events and service_orders tables)",
                path.display()
            ))
        })
    };
    let events = count("SELECT COUNT(*) FROM events")?;
    let orders = count("SELECT COUNT(*) FROM service_orders")?;
    let last_sequence = count("SELECT COALESCE(MAX(sequence), 0) FROM events")?;
    let bytes = std::fs::metadata(path)
        .map_err(io(format!("cannot read {}", path.display())))?
        .len();
    Ok(Checked {
        events: u64::try_from(events).unwrap_or(0),
        orders: u64::try_from(orders).unwrap_or(0),
        last_sequence,
        bytes,
    })
}

/// Replaces the store at `database` with the checked copy `file`. Refuses while a `serve`
/// holds the store. The store it replaces is kept beside it as `…sqlite3.before-restore`.
pub fn restore(file: &Path, database: &Path) -> Result<(Checked, Option<PathBuf>), BackupError> {
    let checked = check(file)?;
    if let Some(parent) = database.parent() {
        std::fs::create_dir_all(parent)
            .map_err(io(format!("cannot create {}", parent.display())))?;
    }
    let _lock = lock_for_serve(database)?;
    let staged = partial_path(database);
    std::fs::copy(file, &staged).map_err(io(format!(
        "cannot copy {} to {}",
        file.display(),
        staged.display()
    )))?;
    File::open(&staged)
        .and_then(|copy| copy.sync_all())
        .map_err(io(format!("cannot sync {}", staged.display())))?;
    let with = |path: &Path, suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let kept = if database.exists() {
        let kept = with(database, ".before-restore");
        std::fs::rename(database, &kept)
            .map_err(io(format!("cannot move {} aside", database.display())))?;
        // Its write-ahead log goes with it: it may hold its newest commits.
        for suffix in ["-wal", "-shm"] {
            let log = with(database, suffix);
            if log.exists() {
                std::fs::rename(&log, with(&kept, suffix))
                    .map_err(io(format!("cannot move {} aside", log.display())))?;
            }
        }
        Some(kept)
    } else {
        None
    };
    std::fs::rename(&staged, database).map_err(io(format!(
        "cannot move the restored store to {}",
        database.display()
    )))?;
    Ok((checked, kept))
}
