//! The SQL of the append pipeline ([`AppendTx`]) on a PostgreSQL transaction, with cached
//! prepared statements (one round trip per statement).

use deadpool_postgres::Transaction;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::classify;
use crate::store::StoreError;
use crate::store::append::{
    AppendTx, DeliveryRow, Direction, EventRow, ORDER_EVENTS_SQL, OrderEvent, OrderRow, RowChange,
    SnapshotRow, Stored, StoredFold, order_page_sql, order_values,
};

/// Inserts an order's projection row, or replaces every column of it.
const UPSERT_ORDER: &str = "INSERT INTO service_orders (id, external_id, order_date,
         completion_date_time, item_count, anomaly_count, event_count, last_event_date_us,
         updated_at_us, fold, suspects, state)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     ON CONFLICT (id) DO UPDATE SET
         state = excluded.state, external_id = excluded.external_id,
         order_date = excluded.order_date, completion_date_time = excluded.completion_date_time,
         item_count = excluded.item_count, anomaly_count = excluded.anomaly_count,
         event_count = excluded.event_count, last_event_date_us = excluded.last_event_date_us,
         updated_at_us = excluded.updated_at_us, fold = excluded.fold,
         suspects = excluded.suspects";

/// Updates an existing order's projection row: the ten columns every save writes, then the
/// suspect reasons and the state (`$11`, `$12`) where the save names them.
macro_rules! update_order {
    ($($also:literal)?) => {
        concat!(
            "UPDATE service_orders SET external_id = $2, order_date = $3,
                 completion_date_time = $4, item_count = $5, anomaly_count = $6,
                 event_count = $7, last_event_date_us = $8, updated_at_us = $9, fold = $10",
            $($also,)?
            " WHERE id = $1"
        )
    };
}

/// A transaction of the pool.
pub(super) struct Sql<'a, 'b>(pub &'a Transaction<'b>);

/// Reads a row of [`ORDER_EVENTS_SQL`] or [`order_page_sql`].
pub(super) fn order_event(row: &Row) -> OrderEvent {
    OrderEvent {
        sequence: row.get(0),
        event_id: row.get(1),
        event_type: row.get(2),
        date_us: row.get(3),
        facts: row.get(4),
        facts_json: row.get(5),
        dialect: row.get(6),
        source: row.get(7),
    }
}

impl Sql<'_, '_> {
    async fn query(
        &self,
        sql: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.0.prepare_cached(sql).await.map_err(classify)?;
        self.0.query(&statement, parameters).await.map_err(classify)
    }

    async fn execute(
        &self,
        sql: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let statement = self.0.prepare_cached(sql).await.map_err(classify)?;
        self.0
            .execute(&statement, parameters)
            .await
            .map_err(classify)
    }
}

impl AppendTx for Sql<'_, '_> {
    async fn find_event(&mut self, event_id: &str) -> Result<Option<Stored>, StoreError> {
        let rows = self
            .query(
                "SELECT sequence, body FROM events WHERE event_id = $1",
                &[&event_id],
            )
            .await?;
        Ok(rows.first().map(|row| Stored {
            sequence: row.get(0),
            body: row.get(1),
        }))
    }

    async fn insert_event(&mut self, row: &EventRow<'_>) -> Result<Option<i64>, StoreError> {
        let notification = &row.event.notification;
        let rows = self
            .query(
                "INSERT INTO events (event_id, event_type, event_date, event_date_us, order_id,
                                     received_at_us, sender, client, facts_c, body, dialect,
                                     reference, trace_context, source)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (event_id) DO NOTHING
                 RETURNING sequence",
                &[
                    &notification.event_id.as_str(),
                    &notification.event_type.as_str(),
                    &notification.event_date.to_string(),
                    &notification.event_date.timestamp_micros(),
                    &notification
                        .order
                        .as_ref()
                        .map(|facts| facts.order_id.as_str()),
                    &row.event.received_at.timestamp_micros(),
                    &row.event.sender,
                    &row.event.client,
                    &row.facts,
                    &&notification.raw[..],
                    &notification.dialect.as_str(),
                    &notification.reference,
                    &row.event.trace_context.as_ref().map(ToString::to_string),
                    &notification.source.column(),
                ],
            )
            .await?;
        Ok(rows.first().map(|row| row.get(0)))
    }

    async fn insert_delivery(&mut self, row: &DeliveryRow<'_>) -> Result<bool, StoreError> {
        let added = self
            .execute(
                "INSERT INTO deliveries (sink, sequence, lane, event_date_us, state, created_us,
                                         next_attempt_us)
                 VALUES ($1, $2, $3, $4, 'pending', $5, $5)
                 ON CONFLICT (sink, sequence) DO NOTHING",
                &[
                    &row.sink,
                    &row.sequence,
                    &row.lane,
                    &row.event_date_us,
                    &row.created_us,
                ],
            )
            .await?;
        Ok(added > 0)
    }

    async fn lock_fold(&mut self, order_id: &str, empty: &[u8]) -> Result<StoredFold, StoreError> {
        // An empty row first, so that two replicas projecting a new order queue on its lock;
        // the SELECT runs after the INSERT (a new snapshot), so it sees a row another replica
        // committed while this one waited. Both go in one round trip.
        let insert = self
            .0
            .prepare_cached(
                "INSERT INTO service_orders (id, item_count, anomaly_count, event_count,
                                             last_event_date_us, updated_at_us, fold)
                 VALUES ($1, 0, 0, 0, 0, 0, $2) ON CONFLICT (id) DO NOTHING",
            )
            .await
            .map_err(classify)?;
        let select = self
            .0
            .prepare_cached("SELECT fold FROM service_orders WHERE id = $1 FOR UPDATE")
            .await
            .map_err(classify)?;
        // Polled in this order, the two are sent in this order.
        let inserted: [&(dyn ToSql + Sync); 2] = [&order_id, &empty];
        let selected: [&(dyn ToSql + Sync); 1] = [&order_id];
        let (_, rows) = tokio::try_join!(
            self.0.execute(&insert, &inserted),
            self.0.query(&select, &selected)
        )
        .map_err(classify)?;
        // The row exists now; a NULL fold is a row written before folds were stored.
        Ok(
            match rows
                .first()
                .and_then(|row| row.get::<_, Option<Vec<u8>>>(0))
            {
                Some(fold) => StoredFold::Fold(fold),
                None => StoredFold::Legacy,
            },
        )
    }

    async fn order_page(
        &mut self,
        order_id: &str,
        direction: Direction,
        (date_us, sequence): (i64, i64),
        limit: usize,
    ) -> Result<Vec<OrderEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                order_page_sql(direction),
                &[&order_id, &date_us, &sequence, &limit],
            )
            .await?;
        Ok(rows.iter().map(order_event).collect())
    }

    async fn order_events(&mut self, order_id: &str) -> Result<Vec<OrderEvent>, StoreError> {
        let rows = self.query(ORDER_EVENTS_SQL, &[&order_id]).await?;
        Ok(rows.iter().map(order_event).collect())
    }

    async fn save_order(&mut self, row: &OrderRow) -> Result<(), StoreError> {
        let sql = match row.change {
            RowChange::Upsert => UPSERT_ORDER,
            RowChange::Update { state, suspects } => match (suspects, state) {
                (false, false) => update_order!(),
                (true, false) => update_order!(", suspects = $11"),
                (false, true) => update_order!(", state = $11"),
                (true, true) => update_order!(", suspects = $11, state = $12"),
            },
        };
        let values = order_values!(row, (dyn ToSql + Sync));
        self.execute(sql, &values).await?;
        Ok(())
    }

    async fn order_updated_at(&mut self, order_id: &str) -> Result<Option<i64>, StoreError> {
        let rows = self
            .query(
                "SELECT updated_at_us FROM service_orders WHERE id = $1",
                &[&order_id],
            )
            .await?;
        Ok(rows.first().map(|row| row.get(0)))
    }

    async fn delete_order(&mut self, order_id: &str) -> Result<usize, StoreError> {
        let deleted = self
            .execute("DELETE FROM service_orders WHERE id = $1", &[&order_id])
            .await?;
        Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
    }

    async fn update_facts(
        &mut self,
        sequence: i64,
        order_id: &str,
        facts: &[u8],
    ) -> Result<usize, StoreError> {
        let changed = self
            .execute(
                "UPDATE events SET facts_c = $3 WHERE sequence = $1 AND order_id = $2",
                &[&sequence, &order_id, &facts],
            )
            .await?;
        Ok(usize::try_from(changed).unwrap_or(usize::MAX))
    }

    async fn save_snapshot(&mut self, row: &SnapshotRow<'_>) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO order_snapshots (sequence, order_id, fetched_at_us, body)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (sequence) DO UPDATE SET order_id = excluded.order_id,
                 fetched_at_us = excluded.fetched_at_us, body = excluded.body",
            &[&row.sequence, &row.order_id, &row.fetched_at_us, &row.body],
        )
        .await?;
        Ok(())
    }
}
