//! The cost floor of a durable SQLite append, without order-listener: one thread inserting
//! ~1.5 KB bodies with random UUID eventIds into a minimal schema, `BATCH` per transaction, WAL
//! with `synchronous = FULL` (so every commit is fsynced, as every 201 is), SQLite's own
//! autocheckpoint. It prints the rate and the CPU time (user + system, checkpoints and fsyncs
//! included) per event, which bounds from below what any listener built on SQLite spends per
//! event on its store. `bench/wrk.sh`'s `floor` target runs it.
//!
//! Usage: cargo run --release --example store_floor -- DIR [EVENTS] [BATCH]
//!
//! Schemas, cumulative, each on a fresh database in DIR:
//!   bare        events(sequence, event_id UNIQUE, body): deduplication and the body only
//!   timeline    + order_id and event_date, indexed (order_id, event_date): an order's timeline
//!   projection  + one row per order (upsert of state and updated_at, no index): the projection

use std::path::Path;
use std::time::Instant;

use order_listener::simulate::load::Bodies;
use rusqlite::{Connection, params};

const SCHEMAS: [(&str, &str); 3] = [
    (
        "bare",
        "CREATE TABLE events (sequence INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, \
         body BLOB NOT NULL);",
    ),
    (
        "timeline",
        "CREATE TABLE events (sequence INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, \
         order_id TEXT NOT NULL, event_date INTEGER NOT NULL, body BLOB NOT NULL); \
         CREATE INDEX events_by_order ON events (order_id, event_date);",
    ),
    (
        "projection",
        "CREATE TABLE events (sequence INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, \
         order_id TEXT NOT NULL, event_date INTEGER NOT NULL, body BLOB NOT NULL); \
         CREATE INDEX events_by_order ON events (order_id, event_date); \
         CREATE TABLE orders (id TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at INTEGER NOT \
         NULL) WITHOUT ROWID;",
    ),
];

/// CPU seconds this thread has run so far (`/proc/thread-self/schedstat`, in nanoseconds; the
/// kernel's time in writes and fsyncs included).
fn cpu_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let nanos: f64 = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    nanos / 1e9
}

fn run(dir: &Path, name: &str, schema: &str, events: u64, batch: u64) -> rusqlite::Result<()> {
    let path = dir.join(format!("floor-{name}.sqlite3"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut connection = Connection::open(&path)?;
    connection.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = -32768;",
    )?;
    connection.execute_batch(schema)?;
    // Bodies are made before the clock starts: only the store's work is measured.
    let bodies = Bodies::new(1, "floor");
    let made: Vec<(String, String, String)> = (0..events)
        .map(|n| {
            let body = bodies.body(n);
            let value: serde_json::Value = serde_json::from_str(&body).expect("a body is JSON");
            let text = |pointer: &str| {
                value
                    .pointer(pointer)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            let event_id = text("/eventId").expect("an eventId");
            // Spread over 100,000 orders, as bench/wrk/events.lua's `spread`.
            let order_id = format!("5c98cb4e{:016}", rand::random_range(0..100_000u32));
            (event_id, order_id, body)
        })
        .collect();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    for (round, chunk) in made.chunks(batch as usize).enumerate() {
        let transaction = connection.transaction()?;
        {
            let mut insert = transaction.prepare_cached(match name {
                "bare" => "INSERT INTO events (event_id, body) VALUES (?1, ?3) ON CONFLICT DO NOTHING",
                _ => "INSERT INTO events (event_id, order_id, event_date, body) VALUES (?1, ?2, ?4, ?3) ON CONFLICT DO NOTHING",
            })?;
            let mut upsert = match name {
                "projection" => Some(transaction.prepare_cached(
                    "INSERT INTO orders (id, state, updated_at) VALUES (?1, 'inProgress', ?2) \
                     ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at",
                )?),
                _ => None,
            };
            for (index, (event_id, order_id, body)) in chunk.iter().enumerate() {
                let date = (round * batch as usize + index) as i64;
                match name {
                    "bare" => insert.execute(params![event_id, order_id, body.as_bytes()])?,
                    _ => insert.execute(params![event_id, order_id, body.as_bytes(), date])?,
                };
                if let Some(upsert) = upsert.as_mut() {
                    upsert.execute(params![order_id, date])?;
                }
            }
        }
        transaction.commit()?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    println!(
        "| {name} | {events} | {batch} | {:.0} | {:.1} |",
        events as f64 / seconds,
        cpu / events as f64 * 1e6
    );
    drop(connection);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "/tmp/store-floor".into()));
    let events: u64 = args.next().map_or(Ok(200_000), |n| n.parse())?;
    let batch: u64 = args.next().map_or(Ok(64), |n| n.parse())?;
    std::fs::create_dir_all(&dir)?;
    println!("| schema | events | per commit | events/s (one thread) | CPU µs per event |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, schema) in SCHEMAS {
        run(&dir, name, schema, events, batch)?;
    }
    Ok(())
}
