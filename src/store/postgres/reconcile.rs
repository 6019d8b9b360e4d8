//! The PostgreSQL queries of reconciliation (`store::reconcile` writes them): suspect orders,
//! their counts, and the gap report. Reads only.

use super::{PostgresStore, classify, summary_from_row};
use crate::store::StoreError;
use crate::store::reconcile::{
    Placeholders, ReceivedQuery, STORED_COUNTS_SQL, SUMMARY_COLUMN_COUNT, SuspectQuery, SuspectRow,
    received_sql, stale_counts_sql, suspects_sql,
};

/// Stored reasons' counts, and stale counts by state.
type CountRows = (Vec<(i64, i64)>, Vec<(String, i64)>);

impl PostgresStore {
    /// The rows of `store::reconcile::suspects_sql`.
    pub(crate) async fn suspect_rows(
        &self,
        query: SuspectQuery,
    ) -> Result<Vec<SuspectRow>, StoreError> {
        let [a, b, c, d, e, f] = query.stale_before_us;
        let rows = self
            .client()
            .await?
            .query(
                &suspects_sql(Placeholders::Postgres),
                &[
                    &query.stored,
                    &query.after,
                    &query.limit,
                    &a,
                    &b,
                    &c,
                    &d,
                    &e,
                    &f,
                ],
            )
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                Ok(SuspectRow {
                    order: summary_from_row(row)?,
                    stored: row.get(SUMMARY_COLUMN_COUNT),
                })
            })
            .collect()
    }

    /// The rows of `STORED_COUNTS_SQL` and `stale_counts_sql`.
    pub(crate) async fn suspect_count_rows(
        &self,
        stale_before_us: [Option<i64>; 6],
    ) -> Result<CountRows, StoreError> {
        let client = self.client().await?;
        let stored = client
            .query(STORED_COUNTS_SQL, &[])
            .await
            .map_err(classify)?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let [a, b, c, d, e, f] = stale_before_us;
        let stale = client
            .query(
                &stale_counts_sql(Placeholders::Postgres),
                &[&a, &b, &c, &d, &e, &f],
            )
            .await
            .map_err(classify)?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        Ok((stored, stale))
    }

    /// The rows of `received_sql`: `(client, event_id)` in receipt order.
    pub(crate) async fn received_rows(
        &self,
        query: ReceivedQuery,
    ) -> Result<Vec<(Option<String>, String)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                &received_sql(Placeholders::Postgres),
                &[
                    &query.since_us,
                    &query.until_us,
                    &query.sender,
                    &query.client,
                    &query.limit,
                ],
            )
            .await
            .map_err(classify)?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }
}
