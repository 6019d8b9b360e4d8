//! The SQLite query of the order list (`store::orders` holds its types): the admin API's, the
//! CLI's and the console's, with every filter and the page's start. Reads only, on the pool.

use rusqlite::params;

use super::{SUMMARY_COLUMNS, SqliteStore, classify, internal, summary_from_row};
use crate::domain::state::State;
use crate::store::rows::page_size;
use crate::store::{OrderFilter, OrderSummary, StoreError};

impl SqliteStore {
    /// Orders matching `filter`, most recently updated first (then by id), from the place
    /// `filter.after` names. `updated_at_us <= ?9` is a range of `service_orders_by_update`,
    /// so a later page starts where the last one ended rather than reading past it.
    pub async fn orders(&self, filter: OrderFilter) -> Result<Vec<OrderSummary>, StoreError> {
        let final_states = serde_json::to_string(&State::FINAL.map(State::as_str))
            .map_err(|error| internal(format!("final states as JSON: {error}")))?;
        self.read(move |connection| {
            let (until_us, after_id) = filter.page_start();
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT {SUMMARY_COLUMNS}
                     FROM service_orders
                     WHERE (?1 IS NULL OR state = ?1) AND (?2 = 0 OR anomaly_count > 0)
                       AND (?3 IS NULL OR external_id = ?3)
                       AND (?4 IS NULL OR updated_at_us >= ?4)
                       AND (?5 IS NULL OR instr(lower(id), lower(?5)) > 0
                            OR instr(lower(coalesce(external_id, '')), lower(?5)) > 0)
                       AND (?6 IS NULL OR (updated_at_us < ?6 AND (state IS NULL
                            OR state NOT IN (SELECT value FROM json_each(?7)))))
                       AND updated_at_us <= ?9
                       AND (?10 IS NULL OR updated_at_us < ?9 OR id > ?10)
                     ORDER BY updated_at_us DESC, id LIMIT ?8"
                ))
                .map_err(classify)?;
            let rows = statement
                .query_map(
                    params![
                        filter.state.map(State::as_str),
                        filter.with_anomalies,
                        filter.external_id,
                        filter.updated_since.map(|at| at.timestamp_micros()),
                        filter.text.as_deref().filter(|text| !text.is_empty()),
                        filter.unchanged_before.map(|at| at.timestamp_micros()),
                        final_states,
                        page_size(filter.limit),
                        until_us,
                        after_id,
                    ],
                    |row| Ok(summary_from_row(row)),
                )
                .map_err(classify)?;
            rows.map(|row| row.map_err(classify)?).collect()
        })
        .await
    }
}
