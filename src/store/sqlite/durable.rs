//! Group commit with the fsync beside the writer.
//!
//! The writer commits with `synchronous = NORMAL`: SQLite writes the batch's frames to the
//! write-ahead log and returns without an fsync. This thread then makes the log durable
//! (`fdatasync` of the WAL file) and only then answers the batch's callers: a 201 still means
//! the event is on disk. Meanwhile the writer is already building the next batch, so its work
//! and the disk's flush overlap instead of taking turns; batches committed while a flush runs
//! share the next one.
//!
//! Why this is sound: in WAL mode every commit only appends frames to the log (or, after a
//! checkpoint that copied every frame into the database and synced it, writes them from the
//! log's start under a new salt). An fsync of the log makes every frame written before it
//! durable; recovery replays the frames up to the last valid commit frame. Checkpoints sync the
//! log before they copy it and the database after, whatever the writer's setting. `fsync`
//! applies to the file, not to the descriptor, so this thread's own descriptor of the log is
//! as good as SQLite's; it is opened again if the log is ever replaced.
//!
//! Other connections can read a commit before its flush ends (for about a millisecond); the
//! answers, the stream's announcements and the outbox's wake-ups all wait for it.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::store::StoreError;
use crate::store::append::BatchOutcome;
use crate::store::books::{Batch, Bookkeeper, Reply};

/// A committed batch, waiting for its flush.
pub(super) struct Committed {
    /// Its callers.
    pub replies: Vec<Reply>,
    /// What the commit gave.
    pub result: Result<BatchOutcome, StoreError>,
    /// Its number and size.
    pub note: Batch,
    /// When it began, for its duration.
    pub started: Instant,
}

/// The writer's side of the flushing thread.
pub(super) struct Flusher {
    sender: Option<Sender<Committed>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts the thread that flushes `wal` (the database's `-wal` file) and then settles each
    /// batch with `books`.
    pub(super) fn start(wal: PathBuf, books: Bookkeeper) -> std::io::Result<Flusher> {
        let (sender, receiver) = channel();
        let thread = std::thread::Builder::new()
            .name("sqlite-flush".into())
            .spawn(move || {
                run(
                    Wal {
                        path: wal,
                        file: None,
                    },
                    &receiver,
                    &books,
                )
            })?;
        Ok(Flusher {
            sender: Some(sender),
            thread: Some(thread),
        })
    }

    /// Hands a committed batch to the thread.
    pub(super) fn flush(&self, committed: Committed) {
        if let Some(sender) = &self.sender {
            // The thread only ends when the sender is dropped.
            let _ = sender.send(committed);
        }
    }

    /// Settles every batch handed over, then stops the thread.
    pub(super) fn stop(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The write-ahead log, opened by path.
struct Wal {
    path: PathBuf,
    file: Option<(File, u64)>,
}

impl Wal {
    /// Makes every frame written to the log so far durable.
    fn sync(&mut self) -> std::io::Result<()> {
        let inode = std::fs::metadata(&self.path)?.ino();
        if self.file.as_ref().is_none_or(|(_, open)| *open != inode) {
            let file = File::open(&self.path)?;
            let opened = file.metadata()?.ino();
            self.file = Some((file, opened));
        }
        match &self.file {
            Some((file, _)) => file.sync_data(),
            None => Ok(()),
        }
    }
}

fn run(mut wal: Wal, receiver: &Receiver<Committed>, books: &Bookkeeper) {
    while let Ok(first) = receiver.recv() {
        let mut batches = vec![first];
        batches.extend(receiver.try_iter());
        let flushed = if batches.iter().any(|batch| batch.result.is_ok()) {
            wal.sync()
        } else {
            Ok(())
        };
        if let Err(error) = &flushed {
            tracing::error!(%error, path = %wal.path.display(), "could not flush the write-ahead log: the batches committed since the last flush are answered with an error; restart the listener");
        }
        let flushed = flushed.map_err(|error| StoreError::Unavailable(Arc::new(error)));
        for batch in batches {
            let result = match (&flushed, batch.result) {
                (Err(error), Ok(_)) => Err(error.clone()),
                (_, result) => result,
            };
            books.settle(batch.replies, result, batch.note, batch.started.elapsed());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Appended;
    use crate::store::books::{Announcer, Counters};

    fn books() -> Bookkeeper {
        Bookkeeper {
            counters: Arc::new(Counters::default()),
            metrics: None,
            announcer: Announcer {
                sequence: tokio::sync::watch::channel(0).0,
                outbox: tokio::sync::watch::channel(0).0,
            },
        }
    }

    /// Hands one stored append to `flusher` and returns what its caller hears.
    fn answer(flusher: &Flusher, sequence: i64) -> Result<Appended, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        flusher.flush(Committed {
            replies: vec![reply],
            result: Ok(BatchOutcome {
                outcomes: vec![Ok(Appended::Stored { sequence })],
                queued: 0,
            }),
            note: Batch { id: 1, size: 1 },
            started: Instant::now(),
        });
        answer.blocking_recv().unwrap().into_outcome()
    }

    #[test]
    fn a_commit_is_answered_once_its_log_is_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("events.sqlite3-wal");
        std::fs::write(&wal, b"frames").unwrap();
        let mut flusher = Flusher::start(wal, books()).unwrap();
        assert!(matches!(
            answer(&flusher, 7),
            Ok(Appended::Stored { sequence: 7 })
        ));
        flusher.stop();
    }

    #[test]
    fn a_commit_whose_log_cannot_be_flushed_is_answered_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let flusher = Flusher::start(dir.path().join("missing-wal"), books()).unwrap();
        assert!(matches!(
            answer(&flusher, 7),
            Err(StoreError::Unavailable(_))
        ));
    }

    #[test]
    fn a_log_replaced_under_its_path_is_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.sqlite3-wal");
        std::fs::write(&path, b"first").unwrap();
        let mut wal = Wal {
            path: path.clone(),
            file: None,
        };
        wal.sync().unwrap();
        let first = wal.file.as_ref().unwrap().1;
        let other = dir.path().join("other");
        std::fs::write(&other, b"second").unwrap();
        std::fs::rename(&other, &path).unwrap();
        wal.sync().unwrap();
        let second = wal.file.as_ref().unwrap().1;
        assert_ne!(first, second);
        assert_eq!(second, std::fs::metadata(&path).unwrap().ino());
    }
}
