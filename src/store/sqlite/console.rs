//! The SQLite queries the web console needs beyond the admin API's: a search of service orders
//! (text on id or externalId, stuck orders) and event counts by minute. Reads only, on the pool.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{SUMMARY_COLUMNS, SqliteStore, classify, internal, limit, summary_from_row};
use crate::domain::state::State;
use crate::store::{MinuteCount, OrderSearch, OrderSummary, StoreError};

/// The most recent events [`SqliteStore::events_per_minute`] looks at, so that the overview
/// reads a bounded slice of the table however busy the listener is.
const MINUTE_COUNT_SCAN: i64 = 100_000;

impl SqliteStore {
    /// Orders matching `search`, most recently updated first.
    pub async fn search_orders(
        &self,
        search: OrderSearch,
    ) -> Result<Vec<OrderSummary>, StoreError> {
        let final_states = serde_json::to_string(
            &State::ALL
                .iter()
                .filter(|state| state.is_final())
                .map(|state| state.as_str())
                .collect::<Vec<_>>(),
        )
        .map_err(|error| internal(format!("final states as JSON: {error}")))?;
        self.read(move |connection| {
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT {SUMMARY_COLUMNS}
                     FROM service_orders
                     WHERE (?1 IS NULL OR state = ?1) AND (?2 = 0 OR anomaly_count > 0)
                       AND (?3 IS NULL OR instr(lower(id), lower(?3)) > 0
                            OR instr(lower(coalesce(external_id, '')), lower(?3)) > 0)
                       AND (?4 IS NULL OR (updated_at_us < ?4 AND (state IS NULL
                            OR state NOT IN (SELECT value FROM json_each(?5)))))
                     ORDER BY updated_at_us DESC, id LIMIT ?6"
                ))
                .map_err(classify)?;
            let rows = statement
                .query_map(
                    params![
                        search.state.map(State::as_str),
                        search.with_anomalies,
                        search.text.filter(|text| !text.is_empty()),
                        search.unchanged_before.map(|at| at.timestamp_micros()),
                        final_states,
                        limit(search.limit),
                    ],
                    |row| Ok(summary_from_row(row)),
                )
                .map_err(classify)?;
            let orders = rows
                .map(|row| row.map_err(classify)?)
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(orders)
        })
        .await
    }

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
