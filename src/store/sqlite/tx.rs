//! The SQL of the append pipeline ([`AppendTx`]) on a SQLite connection: the writer's
//! transaction, or a read connection for the order reads that share it.

use rusqlite::{Connection, OptionalExtension, params};

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
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
     ON CONFLICT (id) DO UPDATE SET
         state = excluded.state, external_id = excluded.external_id,
         order_date = excluded.order_date, completion_date_time = excluded.completion_date_time,
         item_count = excluded.item_count, anomaly_count = excluded.anomaly_count,
         event_count = excluded.event_count, last_event_date_us = excluded.last_event_date_us,
         updated_at_us = excluded.updated_at_us, fold = excluded.fold,
         suspects = excluded.suspects";

/// Updates an existing order's projection row: the ten columns every save writes, then the
/// suspect reasons and the state (`?11`, `?12`) where the save names them.
macro_rules! update_order {
    ($($also:literal)?) => {
        concat!(
            "UPDATE service_orders SET external_id = ?2, order_date = ?3,
                 completion_date_time = ?4, item_count = ?5, anomaly_count = ?6,
                 event_count = ?7, last_event_date_us = ?8, updated_at_us = ?9, fold = ?10",
            $($also,)?
            " WHERE id = ?1"
        )
    };
}

/// A connection, inside the writer's transaction when it writes.
pub(super) struct Sql<'a>(pub &'a Connection);

/// Reads a row of [`ORDER_EVENTS_SQL`] or [`order_page_sql`].
fn order_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<OrderEvent> {
    Ok(OrderEvent {
        sequence: row.get(0)?,
        event_id: row.get(1)?,
        event_type: row.get(2)?,
        date_us: row.get(3)?,
        facts: row.get(4)?,
        facts_json: row.get(5)?,
        dialect: row.get(6)?,
        source: row.get(7)?,
    })
}

impl AppendTx for Sql<'_> {
    async fn find_event(&mut self, event_id: &str) -> Result<Option<Stored>, StoreError> {
        self.0
            .prepare_cached("SELECT sequence, body FROM events WHERE event_id = ?1")
            .and_then(|mut statement| {
                statement
                    .query_row([event_id], |row| {
                        Ok(Stored {
                            sequence: row.get(0)?,
                            body: row.get(1)?,
                        })
                    })
                    .optional()
            })
            .map_err(classify)
    }

    async fn insert_event(&mut self, row: &EventRow<'_>) -> Result<Option<i64>, StoreError> {
        let notification = &row.event.notification;
        let inserted = self
            .0
            .prepare_cached(
                "INSERT INTO events (event_id, event_type, event_date, event_date_us, order_id,
                                     received_at_us, sender, client, facts_c, body, dialect,
                                     reference, trace_context, source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT (event_id) DO NOTHING",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    notification.event_id.as_str(),
                    notification.event_type.as_str(),
                    notification.event_date.to_string(),
                    notification.event_date.timestamp_micros(),
                    notification
                        .order
                        .as_ref()
                        .map(|facts| facts.order_id.as_str()),
                    row.event.received_at.timestamp_micros(),
                    row.event.sender,
                    row.event.client,
                    row.facts,
                    &notification.raw[..],
                    notification.dialect.as_str(),
                    notification.reference,
                    row.event.trace_context.as_ref().map(ToString::to_string),
                    notification.source.column(),
                ])
            })
            .map_err(classify)?;
        Ok((inserted > 0).then(|| self.0.last_insert_rowid()))
    }

    async fn insert_delivery(&mut self, row: &DeliveryRow<'_>) -> Result<bool, StoreError> {
        let added = self
            .0
            .prepare_cached(
                "INSERT INTO deliveries (sink, sequence, lane, event_date_us, state, created_us,
                                         next_attempt_us)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)
                 ON CONFLICT (sink, sequence) DO NOTHING",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    row.sink,
                    row.sequence,
                    row.lane,
                    row.event_date_us,
                    row.created_us
                ])
            })
            .map_err(classify)?;
        Ok(added > 0)
    }

    async fn lock_fold(&mut self, order_id: &str, _empty: &[u8]) -> Result<StoredFold, StoreError> {
        // The writer is the only one: reading is locking.
        let row = self
            .0
            .prepare_cached("SELECT fold FROM service_orders WHERE id = ?1")
            .and_then(|mut statement| {
                statement
                    .query_row([order_id], |row| row.get::<_, Option<Vec<u8>>>(0))
                    .optional()
            })
            .map_err(classify)?;
        Ok(match row {
            None => StoredFold::Missing,
            Some(None) => StoredFold::Legacy,
            Some(Some(fold)) => StoredFold::Fold(fold),
        })
    }

    async fn order_page(
        &mut self,
        order_id: &str,
        direction: Direction,
        (date_us, sequence): (i64, i64),
        limit: usize,
    ) -> Result<Vec<OrderEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.0
            .prepare_cached(order_page_sql(direction))
            .and_then(|mut statement| {
                statement
                    .query_map(params![order_id, date_us, sequence, limit], order_event)?
                    .collect()
            })
            .map_err(classify)
    }

    async fn order_events(&mut self, order_id: &str) -> Result<Vec<OrderEvent>, StoreError> {
        self.0
            .prepare_cached(ORDER_EVENTS_SQL)
            .and_then(|mut statement| statement.query_map([order_id], order_event)?.collect())
            .map_err(classify)
    }

    async fn save_order(&mut self, row: &OrderRow) -> Result<(), StoreError> {
        // A column the UPDATE does not name keeps its index entries as they are.
        let sql = match row.change {
            RowChange::Upsert => UPSERT_ORDER,
            RowChange::Update { state, suspects } => match (suspects, state) {
                (false, false) => update_order!(),
                (true, false) => update_order!(", suspects = ?11"),
                (false, true) => update_order!(", state = ?11"),
                (true, true) => update_order!(", suspects = ?11, state = ?12"),
            },
        };
        let values = order_values!(row, dyn rusqlite::ToSql);
        self.0
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(values.as_slice()))
            .map_err(classify)?;
        Ok(())
    }

    async fn order_updated_at(&mut self, order_id: &str) -> Result<Option<i64>, StoreError> {
        self.0
            .prepare_cached("SELECT updated_at_us FROM service_orders WHERE id = ?1")
            .and_then(|mut statement| statement.query_row([order_id], |row| row.get(0)).optional())
            .map_err(classify)
    }

    async fn delete_order(&mut self, order_id: &str) -> Result<usize, StoreError> {
        self.0
            .prepare_cached("DELETE FROM service_orders WHERE id = ?1")
            .and_then(|mut statement| statement.execute([order_id]))
            .map_err(classify)
    }

    async fn update_facts(
        &mut self,
        sequence: i64,
        order_id: &str,
        facts: &[u8],
    ) -> Result<usize, StoreError> {
        self.0
            .prepare_cached("UPDATE events SET facts_c = ?3 WHERE sequence = ?1 AND order_id = ?2")
            .and_then(|mut statement| statement.execute(params![sequence, order_id, facts]))
            .map_err(classify)
    }

    async fn save_snapshot(&mut self, row: &SnapshotRow<'_>) -> Result<(), StoreError> {
        self.0
            .prepare_cached(
                "INSERT INTO order_snapshots (sequence, order_id, fetched_at_us, body)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (sequence) DO UPDATE SET order_id = excluded.order_id,
                     fetched_at_us = excluded.fetched_at_us, body = excluded.body",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    row.sequence,
                    row.order_id,
                    row.fetched_at_us,
                    row.body
                ])
            })
            .map_err(classify)?;
        Ok(())
    }
}
