//! Checkpoints of the write-ahead log, mostly off the writer's path.
//!
//! A checkpoint copies the WAL's pages into the database file and fsyncs it: under load it was
//! a quarter of the writer's time, during which no batch could commit. So a thread of its own,
//! with its own connection, runs them (`PASSIVE`: it never waits for the writer or a reader),
//! while the writer goes on appending to the WAL.
//!
//! Such a checkpoint never quite catches up with a busy writer, and SQLite starts the WAL
//! from its beginning only when a write finds every frame copied. So the writer itself copies
//! the few frames written since the thread's last run once the WAL reaches a size
//! (`WriterOptions::wal_pages`, 32 MiB by default): then the next transaction restarts the log,
//! and the file stays bounded (`tests/it/wal.rs`).
//!
//! The thread is woken each time the WAL has grown by a quarter of that size (8 MiB by
//! default). A page written several times between two checkpoints is copied once, and the
//! database is fsynced once per wake-up; waking it every 1 MiB instead wrote 17% more bytes
//! per event and took 11–20% of the throughput (BENCHMARKS.md, session 9). Frames written
//! since the thread was last woken stay in the WAL, durable, until later writes wake it, or
//! until the store closes and folds the whole WAL back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use rusqlite::Connection;

thread_local! {
    /// Pages in the WAL after the writer's last commit, from SQLite's WAL hook.
    static WAL_PAGES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// The WAL hook: runs on the writer thread after each commit. Installing it replaces SQLite's
/// autocheckpoint, which uses the same hook.
pub(super) fn count_wal_pages(
    _: &rusqlite::hooks::Wal,
    pages: std::ffi::c_int,
) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

/// The thread is woken each time the WAL has grown by this fraction of the catch-up size since
/// it was last woken. Without the thread, the writer checkpoints at that size.
const WAKE_FRACTION: i32 = 4;

/// The writer's side of the checkpoint thread.
pub(super) struct Checkpoints {
    /// Wakes the thread; one pending wake-up is enough.
    wake: Option<SyncSender<()>>,
    /// Whether the thread is copying pages now.
    running: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The WAL's size when the thread was last woken.
    woken_at: i32,
    /// The thread is woken each time the WAL has grown by this many pages.
    wake_pages: i32,
    /// At this size, the writer copies what the thread has not, to restart the log.
    catch_up_at: i32,
}

impl Checkpoints {
    /// Starts the checkpoint thread on `connection` (a second connection to the writer's
    /// database, with the same `synchronous` setting). Without the thread (it could not be
    /// started), the writer checkpoints as the thread would.
    pub(super) fn start(connection: Connection, catch_up_at: u32) -> Checkpoints {
        let (wake, woken) = sync_channel(1);
        let running = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn({
                let running = running.clone();
                move || run(&connection, &woken, &running)
            })
            .inspect_err(|error| {
                tracing::warn!(%error, "could not start the checkpoint thread; the writer checkpoints");
            })
            .ok();
        let catch_up_at = i32::try_from(catch_up_at).unwrap_or(i32::MAX).max(1);
        Checkpoints {
            wake: thread.as_ref().map(|_| wake),
            running,
            thread,
            woken_at: 0,
            wake_pages: (catch_up_at / WAKE_FRACTION).max(1),
            catch_up_at,
        }
    }

    /// After a batch's callers have their answers: wakes the thread when the WAL has grown
    /// by `wake_pages` since it was last woken, and copies the rest itself once the WAL
    /// reaches its catch-up size and the thread is not at work.
    pub(super) fn after_batch(&mut self, connection: &Connection) {
        let pages = WAL_PAGES.get();
        if pages < self.woken_at {
            // The log restarted.
            self.woken_at = 0;
        }
        let Some(wake) = &self.wake else {
            if pages >= self.wake_pages {
                checkpoint(connection, "writer");
            }
            return;
        };
        if pages >= self.catch_up_at {
            // The thread is left to finish its run, not woken again: then the writer copies
            // only what was written during that run.
            if !self.running.load(Ordering::Acquire) {
                checkpoint(connection, "writer");
                self.woken_at = 0;
            }
        } else if pages - self.woken_at >= self.wake_pages {
            self.woken_at = pages;
            match wake.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => {
                    tracing::warn!("the checkpoint thread has stopped");
                }
            }
        }
    }

    /// Stops the thread and waits for it: no checkpoint runs after this returns.
    pub(super) fn stop(&mut self) {
        self.wake = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The checkpoint thread: one `PASSIVE` checkpoint each time it is woken, until the writer's
/// side is dropped.
fn run(connection: &Connection, woken: &Receiver<()>, running: &AtomicBool) {
    while woken.recv().is_ok() {
        running.store(true, Ordering::Release);
        checkpoint(connection, "checkpoint thread");
        running.store(false, Ordering::Release);
    }
}

/// One `PASSIVE` checkpoint: it copies what no reader still needs and never waits.
fn checkpoint(connection: &Connection, by: &'static str) {
    if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(%error, by, "could not checkpoint the write-ahead log");
    }
}
