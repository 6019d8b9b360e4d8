//! PostgreSQL retention: pruning old events, their deliveries and finished outbox rows, one
//! short transaction per batch. Rows are claimed with `FOR UPDATE SKIP LOCKED`, so replicas
//! pruning at once split the work instead of waiting on each other; the append lock is taken
//! only at the end, for the refresh of the orders that lost events, because an append refreshes
//! projections under it too.

use std::collections::BTreeSet;

use deadpool_postgres::GenericClient;

use super::tx::Sql;
use super::{PostgresStore, classify, micros};
use crate::store::append;
use crate::store::{PruneLimits, Pruned, StoreError};

/// An event that retention lets go: received before `$1`, and no delivery of it still pending.
const PRUNABLE_EVENT: &str = "e.received_at_us < $1
     AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.sequence = e.sequence AND p.state = 'pending')";

fn count(value: i64) -> usize {
    usize::try_from(value).unwrap_or_default()
}

impl PostgresStore {
    /// Deletes one batch; see [`crate::store::Store::prune`].
    pub async fn prune(&self, limits: PruneLimits, batch: usize) -> Result<Pruned, StoreError> {
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(classify)?;
        let mut pruned = Pruned::default();
        let mut touched = BTreeSet::new();
        if let Some(before) = limits.events_before.map(micros) {
            let rows = transaction
                .query(
                    &format!(
                        "SELECT e.sequence, e.order_id FROM events e WHERE {PRUNABLE_EVENT}
                         ORDER BY e.received_at_us LIMIT $2 FOR UPDATE SKIP LOCKED"
                    ),
                    &[&before, &batch],
                )
                .await
                .map_err(classify)?;
            let sequences: Vec<i64> = rows.iter().map(|row| row.get(0)).collect();
            touched.extend(
                rows.iter()
                    .filter_map(|row| row.get::<_, Option<String>>(1)),
            );
            if !sequences.is_empty() {
                transaction
                    .execute(
                        "DELETE FROM order_snapshots WHERE sequence = ANY($1)",
                        &[&sequences],
                    )
                    .await
                    .map_err(classify)?;
                pruned.deliveries = transaction
                    .execute(
                        "DELETE FROM deliveries WHERE sequence = ANY($1)",
                        &[&sequences],
                    )
                    .await
                    .map_err(classify)? as usize;
                pruned.events = transaction
                    .execute("DELETE FROM events WHERE sequence = ANY($1)", &[&sequences])
                    .await
                    .map_err(classify)? as usize;
            }
        }
        if let Some(before) = limits.delivered_before.map(micros) {
            pruned.finished_deliveries = transaction
                .execute(
                    "DELETE FROM deliveries WHERE id IN (
                         SELECT id FROM deliveries WHERE state <> 'pending' AND last_attempt_us < $1
                         ORDER BY last_attempt_us LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    &[&before, &batch],
                )
                .await
                .map_err(classify)? as usize;
        }
        // In id order, as appends lock orders, so that the two never wait in a cycle.
        for order_id in &touched {
            pruned.orders += append::settle_order(&mut Sql(&transaction), order_id).await?;
        }
        transaction.commit().await.map_err(classify)?;
        Ok(pruned)
    }

    /// Counts what [`PostgresStore::prune`] would delete.
    pub async fn prunable(&self, limits: PruneLimits) -> Result<Pruned, StoreError> {
        let client = self.client().await?;
        let mut pruned = Pruned::default();
        let events_before = limits.events_before.map(micros);
        if let Some(before) = events_before {
            let row = client
                .query_one(
                    &format!(
                        "SELECT (SELECT COUNT(*) FROM events e WHERE {PRUNABLE_EVENT}),
                                (SELECT COUNT(*) FROM deliveries d JOIN events e
                                     ON e.sequence = d.sequence WHERE {PRUNABLE_EVENT}),
                                (SELECT COUNT(*) FROM service_orders o
                                 WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.order_id = o.id
                                                   AND NOT ({PRUNABLE_EVENT})))"
                    ),
                    &[&before],
                )
                .await
                .map_err(classify)?;
            pruned.events = count(row.get(0));
            pruned.deliveries = count(row.get(1));
            pruned.orders = count(row.get(2));
        }
        if let Some(before) = limits.delivered_before.map(micros) {
            let row = client
                .query_one(
                    &format!(
                        "SELECT COUNT(*) FROM deliveries d JOIN events e ON e.sequence = d.sequence
                         WHERE d.state <> 'pending' AND d.last_attempt_us < $2
                           AND NOT ({PRUNABLE_EVENT})"
                    ),
                    &[&events_before.unwrap_or(i64::MIN), &before],
                )
                .await
                .map_err(classify)?;
            pruned.finished_deliveries = count(row.get(0));
        }
        Ok(pruned)
    }
}
