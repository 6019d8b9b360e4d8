//! The SQLite queries of reconciliation (`store::reconcile` writes them): suspect orders, their
//! counts, and the gap report. Reads only, on the pool.

use rusqlite::params;

use super::{SqliteStore, classify, summary_from_row};
use crate::store::StoreError;
use crate::store::reconcile::{
    Placeholders, ReceivedQuery, STORED_COUNTS_SQL, SUMMARY_COLUMN_COUNT, SuspectQuery, SuspectRow,
    received_sql, stale_counts_sql, suspects_sql,
};

/// Stored reasons' counts, and stale counts by state.
type CountRows = (Vec<(i64, i64)>, Vec<(String, i64)>);

impl SqliteStore {
    /// The rows of `store::reconcile::suspects_sql`.
    pub(crate) async fn suspect_rows(
        &self,
        query: SuspectQuery,
    ) -> Result<Vec<SuspectRow>, StoreError> {
        self.read(move |connection| {
            let mut statement = connection
                .prepare_cached(&suspects_sql(Placeholders::Sqlite))
                .map_err(classify)?;
            let [a, b, c, d, e, f] = query.stale_before_us;
            let rows = statement
                .query_map(
                    params![query.stored, query.after, query.limit, a, b, c, d, e, f],
                    |row| {
                        Ok(summary_from_row(row).and_then(|order| {
                            Ok(SuspectRow {
                                order,
                                stored: row.get(SUMMARY_COLUMN_COUNT).map_err(classify)?,
                            })
                        }))
                    },
                )
                .map_err(classify)?;
            rows.map(|row| row.map_err(classify)?).collect()
        })
        .await
    }

    /// The rows of `STORED_COUNTS_SQL` and `stale_counts_sql`.
    pub(crate) async fn suspect_count_rows(
        &self,
        stale_before_us: [Option<i64>; 6],
    ) -> Result<CountRows, StoreError> {
        self.read(move |connection| {
            let stored = connection
                .prepare_cached(STORED_COUNTS_SQL)
                .and_then(|mut statement| {
                    statement
                        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(classify)?;
            let [a, b, c, d, e, f] = stale_before_us;
            let stale = connection
                .prepare_cached(&stale_counts_sql(Placeholders::Sqlite))
                .and_then(|mut statement| {
                    statement
                        .query_map(params![a, b, c, d, e, f], |row| {
                            Ok((row.get(0)?, row.get(1)?))
                        })?
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(classify)?;
            Ok((stored, stale))
        })
        .await
    }

    /// The rows of `received_sql`: `(client, event_id)` in receipt order.
    pub(crate) async fn received_rows(
        &self,
        query: ReceivedQuery,
    ) -> Result<Vec<(Option<String>, String)>, StoreError> {
        self.read(move |connection| {
            connection
                .prepare_cached(&received_sql(Placeholders::Sqlite))
                .and_then(|mut statement| {
                    statement
                        .query_map(
                            params![
                                query.since_us,
                                query.until_us,
                                query.sender,
                                query.client,
                                query.limit
                            ],
                            |row| Ok((row.get(0)?, row.get(1)?)),
                        )?
                        .collect()
                })
                .map_err(classify)
        })
        .await
    }
}
