//! SQLite retention: pruning old events, their deliveries and finished outbox rows. Each batch
//! is one short transaction on the writer thread, so appends queued meanwhile commit between
//! two batches and never wait behind a whole prune.

use std::collections::BTreeSet;

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use super::tx::Sql;
use super::{SqliteStore, classify};
use crate::store::append;
use crate::store::{PruneLimits, Pruned, StoreError};

/// An event that retention lets go: received before `?1`, and no delivery of it still pending.
const PRUNABLE_EVENT: &str = "e.received_at_us < ?1
     AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.sequence = e.sequence AND p.state = 'pending')";

impl SqliteStore {
    /// Deletes one batch; see [`crate::store::Store::prune`].
    pub async fn prune(&self, limits: PruneLimits, batch: usize) -> Result<Pruned, StoreError> {
        let events_before = limits.events_before.map(|at| at.timestamp_micros());
        let delivered_before = limits.delivered_before.map(|at| at.timestamp_micros());
        let batch = i64::try_from(batch).unwrap_or(i64::MAX);
        self.write(move |connection, _| {
            prune_batch(connection, events_before, delivered_before, batch).map_err(classify)?
        })
        .await
    }

    /// Counts what [`SqliteStore::prune`] would delete, on a read connection.
    pub async fn prunable(&self, limits: PruneLimits) -> Result<Pruned, StoreError> {
        let events_before = limits.events_before.map(|at| at.timestamp_micros());
        let delivered_before = limits.delivered_before.map(|at| at.timestamp_micros());
        self.read(move |connection| {
            count_prunable(connection, events_before, delivered_before).map_err(classify)
        })
        .await
    }
}

fn count(connection: &Connection, sql: &str, before: i64) -> rusqlite::Result<usize> {
    let count: i64 = connection.query_row(sql, [before], |row| row.get(0))?;
    Ok(usize::try_from(count).unwrap_or_default())
}

fn count_prunable(
    connection: &Connection,
    events_before: Option<i64>,
    delivered_before: Option<i64>,
) -> rusqlite::Result<Pruned> {
    let mut pruned = Pruned::default();
    if let Some(before) = events_before {
        pruned.events = count(
            connection,
            &format!("SELECT COUNT(*) FROM events e WHERE {PRUNABLE_EVENT}"),
            before,
        )?;
        pruned.deliveries = count(
            connection,
            &format!(
                "SELECT COUNT(*) FROM deliveries d JOIN events e ON e.sequence = d.sequence
                 WHERE {PRUNABLE_EVENT}"
            ),
            before,
        )?;
        // Orders none of whose events is kept.
        pruned.orders = count(
            connection,
            &format!(
                "SELECT COUNT(*) FROM service_orders o
                 WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.order_id = o.id
                                   AND NOT ({PRUNABLE_EVENT}))"
            ),
            before,
        )?;
    }
    if let Some(before) = delivered_before {
        let kept_events = events_before.unwrap_or(i64::MIN);
        let finished: i64 = connection.query_row(
            &format!(
                "SELECT COUNT(*) FROM deliveries d JOIN events e ON e.sequence = d.sequence
                 WHERE d.state <> 'pending' AND d.last_attempt_us < ?2 AND NOT ({PRUNABLE_EVENT})"
            ),
            params![kept_events, before],
            |row| row.get(0),
        )?;
        pruned.finished_deliveries = usize::try_from(finished).unwrap_or_default();
    }
    Ok(pruned)
}

fn prune_batch(
    connection: &mut Connection,
    events_before: Option<i64>,
    delivered_before: Option<i64>,
    batch: i64,
) -> rusqlite::Result<Result<Pruned, StoreError>> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut pruned = Pruned::default();
    let mut touched = BTreeSet::new();
    if let Some(before) = events_before {
        let victims: Vec<(i64, Option<String>)> = transaction
            .prepare_cached(&format!(
                "SELECT e.sequence, e.order_id FROM events e WHERE {PRUNABLE_EVENT}
                 ORDER BY e.received_at_us LIMIT ?2"
            ))?
            .query_map(params![before, batch], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (sequence, order_id) in victims {
            transaction
                .prepare_cached("DELETE FROM order_snapshots WHERE sequence = ?1")?
                .execute([sequence])?;
            pruned.deliveries += transaction
                .prepare_cached("DELETE FROM deliveries WHERE sequence = ?1")?
                .execute([sequence])?;
            pruned.events += transaction
                .prepare_cached("DELETE FROM events WHERE sequence = ?1")?
                .execute([sequence])?;
            if let Some(order_id) = order_id {
                touched.insert(order_id);
            }
        }
    }
    if let Some(before) = delivered_before {
        pruned.finished_deliveries = transaction
            .prepare_cached(
                "DELETE FROM deliveries WHERE id IN (
                     SELECT id FROM deliveries WHERE state <> 'pending' AND last_attempt_us < ?1
                     ORDER BY last_attempt_us LIMIT ?2)",
            )?
            .execute(params![before, batch])?;
    }
    for order_id in touched {
        match settle_order(&transaction, &order_id) {
            Ok(deleted) => pruned.orders += deleted,
            Err(error) => return Ok(Err(error)),
        }
    }
    transaction.commit()?;
    Ok(Ok(pruned))
}

/// After some of an order's events went: the shared [`append::settle_order`].
fn settle_order(transaction: &Transaction<'_>, order_id: &str) -> Result<usize, StoreError> {
    futures_executor::block_on(append::settle_order(&mut Sql(transaction), order_id))
}
