//! The SQLite query the web console needs beyond the admin API's: event counts by minute. Reads
//! only, on the pool. (Its order search is `orders.rs`'s `orders`, with the text and stuck
//! filters.)

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{SqliteStore, classify, internal};
use crate::store::{MinuteCount, StoreError};

/// The most recent events [`SqliteStore::events_per_minute`] looks at, so that the overview
/// reads a bounded slice of the table however busy the listener is.
const MINUTE_COUNT_SCAN: i64 = 100_000;

impl SqliteStore {
    /// Events received at or after `since`, counted by minute of receipt and type, oldest
    /// minute first. Only the newest 100,000 events are looked at.
    pub async fn events_per_minute(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<MinuteCount>, StoreError> {
        self.read(move |connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT received_at_us / 60000000 AS minute, event_type, count(*)
                     FROM (SELECT received_at_us, event_type FROM events
                           ORDER BY sequence DESC LIMIT ?2)
                     WHERE received_at_us >= ?1
                     GROUP BY minute, event_type ORDER BY minute, event_type",
                )
                .map_err(classify)?;
            let rows = statement
                .query_map(
                    params![since.timestamp_micros(), MINUTE_COUNT_SCAN],
                    |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, i64>(2)?,
                        ))
                    },
                )
                .map_err(classify)?;
            let mut counts = Vec::new();
            for row in rows {
                let (minute, event_type, count) = row.map_err(classify)?;
                counts.push(MinuteCount {
                    minute: DateTime::from_timestamp(minute * 60, 0)
                        .ok_or_else(|| internal(format!("minute {minute} out of range")))?,
                    event_type: event_type.parse().map_err(internal)?,
                    count: u64::try_from(count).unwrap_or_default(),
                });
            }
            Ok(counts)
        })
        .await
    }
}
