//! The PostgreSQL query the web console needs beyond the admin API's: event counts by minute.
//! Reads only. (Its order search is `orders.rs`'s `orders`, with the text and stuck filters.)

use chrono::{DateTime, Utc};

use super::{PostgresStore, classify, internal, micros};
use crate::store::{MinuteCount, StoreError};

/// The most recent events [`PostgresStore::events_per_minute`] looks at.
const MINUTE_COUNT_SCAN: i64 = 100_000;

impl PostgresStore {
    /// Events received at or after `since`, counted by minute and type, oldest minute first.
    /// Only the newest 100,000 events are looked at.
    pub async fn events_per_minute(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<MinuteCount>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT received_at_us / 60000000 AS minute, event_type, count(*)
                 FROM (SELECT received_at_us, event_type FROM events
                       ORDER BY sequence DESC LIMIT $2) recent
                 WHERE received_at_us >= $1
                 GROUP BY minute, event_type ORDER BY minute, event_type",
                &[&micros(since), &MINUTE_COUNT_SCAN],
            )
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                let minute: i64 = row.get(0);
                let event_type: String = row.get(1);
                let count: i64 = row.get(2);
                Ok(MinuteCount {
                    minute: DateTime::from_timestamp(minute * 60, 0)
                        .ok_or_else(|| internal(format!("minute {minute} out of range")))?,
                    event_type: event_type.parse().map_err(internal)?,
                    count: u64::try_from(count).unwrap_or_default(),
                })
            })
            .collect()
    }
}
