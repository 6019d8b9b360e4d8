//! PostgreSQL: an order fetched from the seller, stored through the shared
//! [`append::record_snapshot`] in one transaction; and read back.

use bytes::Bytes;
use chrono::Utc;

use super::tx::Sql;
use super::{PostgresStore, classify};
use crate::domain::envelope::OrderFacts;
use crate::store::rows::{SNAPSHOT_SQL, SnapshotColumns};
use crate::store::{OrderSnapshot, StoreError, append};

impl PostgresStore {
    /// See [`crate::store::Store::record_snapshot`].
    pub async fn record_snapshot(
        &self,
        sequence: i64,
        body: Bytes,
        facts: OrderFacts,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(classify)?;
        append::record_snapshot(&mut Sql(&transaction), sequence, &body, &facts, Utc::now())
            .await?;
        transaction.commit().await.map_err(classify)
    }

    /// See [`crate::store::Store::snapshot`].
    pub async fn snapshot(&self, sequence: i64) -> Result<Option<OrderSnapshot>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(SNAPSHOT_SQL, &[&sequence])
            .await
            .map_err(classify)?;
        row.map(|row| {
            SnapshotColumns {
                sequence: row.get(0),
                order_id: row.get(1),
                fetched_at_us: row.get(2),
                body: row.get(3),
            }
            .decode()
        })
        .transpose()
    }
}
