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
//! (`WriterOptions::wal_pages`, 32 MiB by default), after waking the thread once more if they
//! are many ([`next_step`]): then the next transaction restarts the log,
//! and the file stays bounded (`tests/it/wal.rs`).
//!
//! The thread is woken each time the WAL has grown by a quarter of that size (8 MiB by
//! default). A page written several times between two checkpoints is copied once, and the
//! database is fsynced once per wake-up; waking it every 1 MiB instead wrote 17% more bytes
//! per event and gave 12–17% less throughput (BENCHMARKS.md, session 9). Frames written
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
    /// When to wake the thread, and when to bring the log to its end.
    sizes: Sizes,
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
            sizes: Sizes {
                wake: (catch_up_at / WAKE_FRACTION).max(1),
                catch_up: catch_up_at,
            },
        }
    }

    /// After a batch's callers have their answers: wakes the thread, or copies the rest of the
    /// WAL itself, as [`next_step`] says.
    pub(super) fn after_batch(&mut self, connection: &Connection) {
        let pages = WAL_PAGES.get();
        if pages < self.woken_at {
            // The log restarted.
            self.woken_at = 0;
        }
        let Some(wake) = &self.wake else {
            if pages >= self.sizes.wake {
                checkpoint(connection, "writer");
            }
            return;
        };
        match next_step(
            self.sizes,
            pages,
            self.woken_at,
            self.running.load(Ordering::Acquire),
        ) {
            Step::Nothing => {}
            Step::Wake => {
                self.woken_at = pages;
                // Marked before the thread takes the wake-up, so that the writer never copies
                // alongside it.
                self.running.store(true, Ordering::Release);
                match wake.try_send(()) {
                    Ok(()) | Err(TrySendError::Full(())) => {}
                    Err(TrySendError::Disconnected(())) => {
                        self.running.store(false, Ordering::Release);
                        tracing::warn!("the checkpoint thread has stopped");
                    }
                }
            }
            Step::Copy => {
                checkpoint(connection, "writer");
                self.woken_at = 0;
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

/// The WAL sizes, in pages, that the writer acts at.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// The thread is woken each time the WAL has grown by this much.
    wake: i32,
    /// From this size on, the log is brought to its end so that it can restart.
    catch_up: i32,
}

/// What the writer does after a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Nothing,
    /// Wake the checkpoint thread.
    Wake,
    /// Copy the rest of the WAL on the writer's own connection.
    Copy,
}

/// The most pages the writer copies itself once the WAL has reached its catch-up size (1 MiB):
/// past it, the thread is woken again instead, so that a batch never waits for more.
const WRITER_COPIES_AT_MOST: i32 = 256;

/// The writer's step, with `pages` in the WAL, the thread last woken at `woken_at` pages, and
/// `running` whether the thread is at work (or about to be).
///
/// Below the catch-up size, the thread is woken every `sizes.wake` pages. From it on, the
/// thread is left to finish its run. Then, if more than [`WRITER_COPIES_AT_MOST`] pages were
/// written since it was last woken, and that was below the catch-up size, it is woken once
/// more; else the writer copies what is left itself, after which the next transaction restarts
/// the log. Waking it only once more keeps the log bounded: a busy writer may write more during
/// any run of the thread than the writer would copy.
fn next_step(sizes: Sizes, pages: i32, woken_at: i32, running: bool) -> Step {
    let grown = pages - woken_at;
    if pages < sizes.catch_up {
        if grown >= sizes.wake {
            Step::Wake
        } else {
            Step::Nothing
        }
    } else if running {
        Step::Nothing
    } else if woken_at < sizes.catch_up && grown > WRITER_COPIES_AT_MOST.min(sizes.wake) {
        Step::Wake
    } else {
        Step::Copy
    }
}

/// The checkpoint thread: one `PASSIVE` checkpoint each time it is woken, until the writer's
/// side is dropped.
fn run(connection: &Connection, woken: &Receiver<()>, running: &AtomicBool) {
    while woken.recv().is_ok() {
        // The writer marked it running when it woke it; a wake-up queued during a run finds
        // the mark cleared by that run.
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

#[cfg(test)]
mod tests {
    use super::*;

    const SIZES: Sizes = Sizes {
        wake: 2048,
        catch_up: 8192,
    };

    #[test]
    fn the_thread_is_woken_each_time_the_log_grows_by_the_wake_up_size() {
        assert_eq!(next_step(SIZES, 2047, 0, false), Step::Nothing);
        assert_eq!(next_step(SIZES, 2048, 0, false), Step::Wake);
        assert_eq!(next_step(SIZES, 4000, 2048, true), Step::Nothing);
        assert_eq!(next_step(SIZES, 4096, 2048, true), Step::Wake);
    }

    #[test]
    fn at_the_catch_up_size_the_writer_waits_for_a_running_thread() {
        assert_eq!(next_step(SIZES, 8200, 8190, true), Step::Nothing);
    }

    #[test]
    fn at_the_catch_up_size_the_thread_is_woken_once_more_then_the_writer_copies() {
        // Much written since the thread was woken: it is woken once more to copy it.
        assert_eq!(next_step(SIZES, 8192, 6144, false), Step::Wake);
        assert_eq!(
            next_step(SIZES, 8000 + WRITER_COPIES_AT_MOST + 1, 8000, false),
            Step::Wake
        );
        // Little: the writer copies it, and the log can restart.
        assert_eq!(
            next_step(SIZES, 8000 + WRITER_COPIES_AT_MOST, 8000, false),
            Step::Copy
        );
        // Woken at the catch-up size already: the writer copies whatever that run left,
        // however much, so that the log restarts.
        assert_eq!(next_step(SIZES, 9000, 8192, false), Step::Copy);
    }

    #[test]
    fn a_small_log_is_copied_by_the_writer_at_its_wake_up_size() {
        // tests/it/wal.rs's size: 512 pages, a wake-up every 128.
        let small = Sizes {
            wake: 128,
            catch_up: 512,
        };
        assert_eq!(next_step(small, 600, 500, false), Step::Copy);
        assert_eq!(next_step(small, 700, 500, false), Step::Wake);
        assert_eq!(next_step(small, 900, 700, false), Step::Copy);
    }
}
