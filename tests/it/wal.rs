//! SQLite's write-ahead log under appends that never pause: a thread checkpoints it while the
//! writer appends, and the writer restarts it, so that the file stays bounded.

use order_listener::domain::envelope::{Dialect, EventType};
use order_listener::store::{Storage, Store, WriterOptions};

use crate::helpers::*;
use crate::store_contract::dialect_event;

/// The test's restart size, in pages of 4 KiB (the default is 8,192).
const WAL_PAGES: u32 = 512;
/// Appenders, each appending without a pause.
const APPENDERS: usize = 16;
/// Events per appender.
const EVENTS: usize = 125;

#[tokio::test]
async fn the_write_ahead_log_stays_bounded_while_appends_never_pause() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite3");
    let options = WriterOptions {
        wal_pages: WAL_PAGES,
        ..WriterOptions::default()
    };
    let store = Store::open(&Storage::Sqlite { path: path.clone() }, options)
        .await
        .unwrap();
    // 2,000 events with 8 KiB of description each put at least 16 MiB of bodies (4,000 pages,
    // eight times the restart size) through the log, besides the indexes' pages.
    let padding = "x".repeat(8192);
    let mut appenders = tokio::task::JoinSet::new();
    for appender in 0..APPENDERS {
        let (store, padding) = (store.clone(), padding.clone());
        appenders.spawn(async move {
            for index in 0..EVENTS {
                let mut event = onap_lifecycle(&format!("SO-wal-{appender}-{index}"), 1).remove(0);
                event["event"]["description"] = padding.clone().into();
                let event = dialect_event(Dialect::Onap, EventType::ServiceOrderCreation, &event);
                store.append(event).await.unwrap();
            }
        });
    }
    appenders.join_all().await;
    assert_eq!(
        store.writer_stats().appends,
        (APPENDERS * EVENTS) as u64,
        "every append committed"
    );
    // A WAL that never restarted would hold every page written; a restarted one reuses its
    // frames from the start, so the file is as large as the most the log ever held.
    let wal = std::fs::metadata(dir.path().join("events.sqlite3-wal"))
        .unwrap()
        .len();
    let bound = 2 * u64::from(WAL_PAGES) * 4096;
    assert!(
        wal <= bound,
        "the WAL file is {wal} bytes, more than twice the restart size ({bound} bytes)"
    );
    store.close().await;
}
