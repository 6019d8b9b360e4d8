//! The PostgreSQL query of the order list (`store::orders` holds its types): the admin API's,
//! the CLI's and the console's, with every filter and the page's start. Reads only.

use super::{PostgresStore, SUMMARY_COLUMNS, classify, micros, summary_from_row};
use crate::domain::state::State;
use crate::store::rows::page_size;
use crate::store::{OrderFilter, OrderSummary, StoreError};

impl PostgresStore {
    /// Orders matching `filter`, most recently updated first (then by id), from the place
    /// `filter.after` names. `updated_at_us <= $9` is a range of `service_orders_by_update`,
    /// so a later page starts where the last one ended rather than reading past it.
    pub async fn orders(&self, filter: OrderFilter) -> Result<Vec<OrderSummary>, StoreError> {
        let final_states = State::FINAL.map(State::as_str);
        let (until_us, after_id) = filter.page_start();
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {SUMMARY_COLUMNS}
                     FROM service_orders
                     WHERE ($1::text IS NULL OR state = $1) AND (NOT $2 OR anomaly_count > 0)
                       AND ($3::text IS NULL OR external_id = $3)
                       AND ($4::bigint IS NULL OR updated_at_us >= $4)
                       AND ($5::text IS NULL OR strpos(lower(id), lower($5)) > 0
                            OR strpos(lower(coalesce(external_id, '')), lower($5)) > 0)
                       AND ($6::bigint IS NULL OR (updated_at_us < $6
                            AND (state IS NULL OR NOT (state = ANY($7)))))
                       AND updated_at_us <= $9
                       AND ($10::text IS NULL OR updated_at_us < $9 OR id > $10)
                     ORDER BY updated_at_us DESC, id LIMIT $8"
                ),
                &[
                    &filter.state.map(State::as_str),
                    &filter.with_anomalies,
                    &filter.external_id,
                    &filter.updated_since.map(micros),
                    &filter.text.as_deref().filter(|text| !text.is_empty()),
                    &filter.unchanged_before.map(micros),
                    &&final_states[..],
                    &page_size(filter.limit),
                    &until_us,
                    &after_id,
                ],
            )
            .await
            .map_err(classify)?;
        rows.iter().map(summary_from_row).collect()
    }
}
