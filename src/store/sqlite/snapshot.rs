//! SQLite: an order fetched from the seller, stored through the shared
//! [`append::record_snapshot`] as a job on the writer thread, in one transaction; and read back.

use bytes::Bytes;
use chrono::Utc;
use rusqlite::{OptionalExtension, TransactionBehavior};

use super::tx::Sql;
use super::{SqliteStore, classify};
use crate::domain::envelope::OrderFacts;
use crate::store::rows::{SNAPSHOT_SQL, SnapshotColumns};
use crate::store::{OrderSnapshot, StoreError, append};

impl SqliteStore {
    /// See [`crate::store::Store::record_snapshot`].
    pub async fn record_snapshot(
        &self,
        sequence: i64,
        body: Bytes,
        facts: OrderFacts,
    ) -> Result<(), StoreError> {
        self.write(move |connection, _| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(classify)?;
            futures_executor::block_on(append::record_snapshot(
                &mut Sql(&transaction),
                sequence,
                &body,
                &facts,
                Utc::now(),
            ))?;
            transaction.commit().map_err(classify)
        })
        .await
    }

    /// See [`crate::store::Store::snapshot`].
    pub async fn snapshot(&self, sequence: i64) -> Result<Option<OrderSnapshot>, StoreError> {
        self.read(move |connection| {
            connection
                .query_row(SNAPSHOT_SQL, [sequence], |row| {
                    Ok(SnapshotColumns {
                        sequence: row.get(0)?,
                        order_id: row.get(1)?,
                        fetched_at_us: row.get(2)?,
                        body: row.get(3)?,
                    })
                })
                .optional()
                .map_err(classify)?
                .map(SnapshotColumns::decode)
                .transpose()
        })
        .await
    }
}
