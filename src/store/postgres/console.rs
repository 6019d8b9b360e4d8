//! The PostgreSQL queries the web console needs beyond the admin API's: a search of service
//! orders (text on id or externalId, stuck orders) and event counts by minute. Reads only.

use chrono::{DateTime, Utc};

use super::{PostgresStore, SUMMARY_COLUMNS, classify, internal, limit, micros, summary_from_row};
use crate::domain::state::State;
use crate::store::{MinuteCount, OrderSearch, OrderSummary, StoreError};

/// The most recent events [`PostgresStore::events_per_minute`] looks at.
const MINUTE_COUNT_SCAN: i64 = 100_000;

impl PostgresStore {
    /// Orders matching `search`, most recently updated first.
    pub async fn search_orders(
        &self,
        search: OrderSearch,
    ) -> Result<Vec<OrderSummary>, StoreError> {
        let final_states: Vec<&str> = State::ALL
            .iter()
            .filter(|state| state.is_final())
            .map(|state| state.as_str())
            .collect();
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {SUMMARY_COLUMNS}
                 FROM service_orders
                 WHERE ($1::text IS NULL OR state = $1) AND (NOT $2 OR anomaly_count > 0)
                   AND ($3::text IS NULL OR strpos(lower(id), lower($3)) > 0
                        OR strpos(lower(coalesce(external_id, '')), lower($3)) > 0)
                   AND ($4::bigint IS NULL OR (updated_at_us < $4
                        AND (state IS NULL OR NOT (state = ANY($5)))))
                 ORDER BY updated_at_us DESC, id LIMIT $6"
                ),
                &[
                    &search.state.map(State::as_str),
                    &search.with_anomalies,
                    &search.text.filter(|text| !text.is_empty()),
                    &search.unchanged_before.map(micros),
                    &final_states,
                    &limit(search.limit),
                ],
            )
            .await
            .map_err(classify)?;
        rows.iter().map(summary_from_row).collect()
    }

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
