//! The PostgreSQL outbox. Replicas share the work: a worker claims due lane heads with
//! `FOR UPDATE SKIP LOCKED` and a lease; the outcome clears the lease. A replica that dies
//! leaves its leases to expire, and another replica takes the deliveries over.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{
    PostgresStore, RECORD_COLUMN_COUNT, RECORD_COLUMNS, classify, instant, internal, micros,
    record_from_row,
};
use crate::domain::envelope::EventId;
use crate::domain::routing::SinkName;
use crate::store::rows::page_size;
use crate::store::rows::{
    DELIVERY_COLUMNS, DeliveryColumns, REPLAY_FILTER_COLUMNS, ReplayRow, parse_sink_name,
};
use crate::store::{
    Cursor, Delivery, DeliveryOutcome, EventRecord, OutcomeKind, Requeue, RequeueScope, Requeued,
    SinkStatus, StoreError, lane,
};

fn delivery_from_row(row: &Row) -> Result<Delivery, StoreError> {
    DeliveryColumns {
        id: row.get(0),
        sink: row.get(1),
        sequence: row.get(2),
        event_id: row.get(3),
        event_type: row.get(4),
        event_date_us: row.get(5),
        order_id: row.get(6),
        state: row.get(7),
        attempts: i64::from(row.get::<_, i32>(8)),
        created_us: row.get(9),
        next_attempt_us: row.get(10),
        last_error: row.get(11),
        body: row.get(12),
        trace_context: row.get(13),
        dialect: row.get(14),
        source: row.get(15),
    }
    .decode()
}

fn parse_tx(text: &str) -> Result<u64, StoreError> {
    text.parse()
        .map_err(|_| internal(format!("stored transaction id {text:?} is not a number")))
}

impl PostgresStore {
    fn outbox_changed(&self) {
        if let Some(announce) = &self.inner.announce {
            announce.outbox.send_modify(|generation| *generation += 1);
        }
    }

    /// Events after `sequence`, oldest first, with their bodies.
    pub async fn events_after(
        &self,
        sequence: i64,
        limit: usize,
    ) -> Result<Vec<(EventRecord, Bytes)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {RECORD_COLUMNS}, body FROM events WHERE sequence > $1
                     ORDER BY sequence LIMIT $2"
                ),
                &[&sequence, &page_size(limit)],
            )
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                let body: Vec<u8> = row.get(RECORD_COLUMN_COUNT);
                Ok((record_from_row(row)?, Bytes::from(body)))
            })
            .collect()
    }

    /// Events after `cursor` in commit-safe order: by writing transaction, then sequence, and
    /// only those of transactions older than every one still running, so that no event can
    /// become visible behind a reader that has passed it.
    pub async fn follow(
        &self,
        cursor: Cursor,
        limit: usize,
    ) -> Result<Vec<(Cursor, EventRecord, Bytes)>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {RECORD_COLUMNS}, body, tx::text FROM events
                     WHERE (tx, sequence) > ($1::text::xid8, $2)
                       AND tx < pg_snapshot_xmin(pg_current_snapshot())
                     ORDER BY tx, sequence LIMIT $3"
                ),
                &[&cursor.tx.to_string(), &cursor.sequence, &page_size(limit)],
            )
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                let record = record_from_row(row)?;
                let body: Vec<u8> = row.get(RECORD_COLUMN_COUNT);
                let cursor = Cursor {
                    tx: parse_tx(row.get(RECORD_COLUMN_COUNT + 1))?,
                    sequence: record.sequence,
                };
                Ok((cursor, record, Bytes::from(body)))
            })
            .collect()
    }

    /// The stream's position now: the newest event [`PostgresStore::follow`] can read.
    pub async fn stream_head(&self) -> Result<Cursor, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT tx::text, sequence FROM events
                 WHERE tx < pg_snapshot_xmin(pg_current_snapshot())
                 ORDER BY tx DESC, sequence DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(classify)?;
        row.map_or(Ok(Cursor::default()), |row| {
            Ok(Cursor {
                tx: parse_tx(row.get(0))?,
                sequence: row.get(1),
            })
        })
    }

    /// Claims the due heads of the lanes of `sink` for this replica, skipping `busy` lanes and
    /// rows another replica holds (locked now, or leased and not expired).
    pub async fn due_deliveries(
        &self,
        sink: String,
        now: DateTime<Utc>,
        busy: Vec<String>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let lease_until =
            now + chrono::Duration::from_std(self.inner.lease).unwrap_or(chrono::Duration::MAX);
        let client = self.client().await?;
        let claimed: Vec<i64> = client
            .query(
                "UPDATE deliveries SET lease_until_us = $3, leased_by = $4
                 WHERE id IN (
                     SELECT d.id FROM deliveries d
                     WHERE d.sink = $1 AND d.state = 'pending' AND d.next_attempt_us <= $2
                       AND (d.lease_until_us IS NULL OR d.lease_until_us < $2)
                       AND NOT (d.lane = ANY($5))
                       AND NOT EXISTS (
                           SELECT 1 FROM deliveries h
                           WHERE h.sink = d.sink AND h.lane = d.lane AND h.state = 'pending'
                             AND (h.event_date_us, h.sequence) < (d.event_date_us, d.sequence))
                     ORDER BY d.next_attempt_us, d.id
                     LIMIT $6
                     FOR UPDATE SKIP LOCKED)
                 RETURNING id",
                &[
                    &sink,
                    &micros(now),
                    &micros(lease_until),
                    &self.inner.replica,
                    &busy,
                    &(limit.max(1) as i64),
                ],
            )
            .await
            .map_err(classify)?
            .iter()
            .map(|row| row.get(0))
            .collect();
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let rows = client
            .query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.sequence = d.sequence
                     WHERE d.id = ANY($1) ORDER BY d.next_attempt_us, d.id"
                ),
                &[&claimed],
            )
            .await
            .map_err(classify)?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// When the next pending delivery of `sink` is due (or its lease ends).
    pub async fn next_due(&self, sink: String) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT MIN(GREATEST(next_attempt_us, COALESCE(lease_until_us, 0))) FROM deliveries
                 WHERE sink = $1 AND state = 'pending'",
                &[&sink],
            )
            .await
            .map_err(classify)?;
        row.get::<_, Option<i64>>(0).map(instant).transpose()
    }

    /// Records outcomes; each applies only if the delivery was not queued again meanwhile.
    pub async fn record_outcomes(&self, outcomes: Vec<DeliveryOutcome>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(classify)?;
        let now = micros(Utc::now());
        for outcome in &outcomes {
            let (id, queued) = (outcome.id, micros(outcome.queued_at));
            match &outcome.result {
                OutcomeKind::Delivered => {
                    transaction
                        .execute(
                            "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1,
                             last_attempt_us = $2, last_error = NULL, lease_until_us = NULL
                         WHERE id = $1 AND created_us = $3 AND state = 'pending'",
                            &[&id, &now, &queued],
                        )
                        .await
                }
                OutcomeKind::Retry {
                    next_attempt_at,
                    error,
                } => {
                    transaction
                        .execute(
                            "UPDATE deliveries SET attempts = attempts + 1, last_attempt_us = $2,
                             next_attempt_us = $3, last_error = $4, lease_until_us = NULL
                         WHERE id = $1 AND created_us = $5 AND state = 'pending'",
                            &[&id, &now, &micros(*next_attempt_at), error, &queued],
                        )
                        .await
                }
                OutcomeKind::Dead { error } => {
                    transaction
                        .execute(
                            "UPDATE deliveries SET state = 'dead', attempts = attempts + 1,
                             last_attempt_us = $2, last_error = $3, lease_until_us = NULL
                         WHERE id = $1 AND created_us = $4 AND state = 'pending'",
                            &[&id, &now, error, &queued],
                        )
                        .await
                }
            }
            .map_err(classify)?;
        }
        transaction.commit().await.map_err(classify)?;
        self.outbox_changed();
        Ok(())
    }

    /// Queues deliveries again: dead letters, or a replay of one sink.
    pub async fn requeue(&self, request: Requeue) -> Result<Requeued, StoreError> {
        let now = micros(Utc::now());
        let limit = request.limit.max(1) as i64;
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(classify)?;
        let outcome = if request.scope == RequeueScope::DeadLetters {
            let ids: Option<Vec<i64>> = (!request.ids.is_empty()).then(|| request.ids.clone());
            let count = transaction
                .execute(
                    "UPDATE deliveries SET state = 'pending', attempts = 0, created_us = $1,
                         next_attempt_us = $1, last_error = NULL, lease_until_us = NULL
                     WHERE id IN (SELECT d.id FROM deliveries d JOIN events e ON e.sequence = d.sequence
                                  WHERE d.state = 'dead'
                                    AND ($2::text IS NULL OR d.sink = $2)
                                    AND ($3::bigint IS NULL OR e.received_at_us >= $3)
                                    AND ($4::text IS NULL OR e.order_id = $4)
                                    AND ($5::text IS NULL OR e.event_id = $5)
                                    AND ($7::bigint[] IS NULL OR d.id = ANY($7))
                                  ORDER BY d.id LIMIT $6)",
                    &[
                        &now,
                        &request.sink.as_ref().map(SinkName::as_str),
                        &request.since.map(micros),
                        &request.order_id.as_ref().map(|id| id.as_str()),
                        &request.event_id.as_ref().map(EventId::as_str),
                        &limit,
                        &ids,
                    ],
                )
                .await
                .map_err(classify)?;
            Requeued {
                count: count as usize,
                last_sequence: 0,
            }
        } else if let Some(sink) = request.sink.as_ref().map(SinkName::as_str) {
            let rows = transaction
                .query(
                    &format!(
                        "SELECT sequence, event_id, event_date_us, {REPLAY_FILTER_COLUMNS}
                         FROM events WHERE sequence > $1
                           AND ($2::bigint IS NULL OR received_at_us >= $2)
                           AND ($3::text IS NULL OR order_id = $3)
                           AND ($4::text IS NULL OR event_id = $4)
                         ORDER BY sequence LIMIT $5"
                    ),
                    &[
                        &request.after_sequence,
                        &request.since.map(micros),
                        &request.order_id.as_ref().map(|id| id.as_str()),
                        &request.event_id.as_ref().map(EventId::as_str),
                        &limit,
                    ],
                )
                .await
                .map_err(classify)?;
            let mut count = 0;
            let mut last_sequence = request.after_sequence;
            for row in rows {
                let sequence: i64 = row.get(0);
                let event_id: String = row.get(1);
                let event_date_us: i64 = row.get(2);
                let order_id: Option<String> = row.get(5);
                last_sequence = sequence;
                if let Some(filter) = &request.filter {
                    let stored = ReplayRow {
                        dialect: row.get(3),
                        event_type: row.get(4),
                        order_id: order_id.clone(),
                        facts: row.get(6),
                        facts_json: row.get(7),
                        source: row.get(8),
                    };
                    if !stored.taken_by(filter) {
                        continue;
                    }
                }
                count += transaction
                    .execute(
                        "INSERT INTO deliveries (sink, sequence, lane, event_date_us, state,
                                                 created_us, next_attempt_us)
                         VALUES ($1, $2, $3, $4, 'pending', $5, $5)
                         ON CONFLICT (sink, sequence) DO UPDATE SET state = 'pending',
                             attempts = 0, created_us = $5, next_attempt_us = $5,
                             last_error = NULL, lease_until_us = NULL",
                        &[
                            &sink,
                            &sequence,
                            &lane(order_id.as_deref(), &event_id),
                            &event_date_us,
                            &now,
                        ],
                    )
                    .await
                    .map_err(classify)? as usize;
            }
            Requeued {
                count,
                last_sequence,
            }
        } else {
            Requeued::default()
        };
        transaction.commit().await.map_err(classify)?;
        if outcome.count > 0 {
            self.outbox_changed();
        }
        Ok(outcome)
    }

    /// Disables a sink, or enables it with `None`.
    pub async fn set_sink_disabled(
        &self,
        sink: String,
        reason: Option<String>,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let changed = match &reason {
            Some(reason) => {
                client
                    .execute(
                        "INSERT INTO sinks (name, disabled_us, reason) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO UPDATE SET disabled_us = $2, reason = $3",
                        &[&sink, &micros(Utc::now()), reason],
                    )
                    .await
            }
            None => {
                client
                    .execute("DELETE FROM sinks WHERE name = $1", &[&sink])
                    .await
            }
        }
        .map_err(classify)?;
        if reason.is_none() && changed > 0 {
            self.outbox_changed();
        }
        Ok(())
    }

    /// Every sink with deliveries or a disabled mark.
    pub async fn sink_statuses(&self) -> Result<Vec<SinkStatus>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT names.name,
                    COUNT(d.id) FILTER (WHERE d.state = 'pending'),
                    COUNT(d.id) FILTER (WHERE d.state = 'delivered'),
                    COUNT(d.id) FILTER (WHERE d.state = 'dead'),
                    COUNT(d.id) FILTER (WHERE d.state = 'pending' AND d.last_error IS NOT NULL),
                    MIN(d.created_us) FILTER (WHERE d.state = 'pending'),
                    MAX(s.disabled_us), MAX(s.reason)
                 FROM (SELECT DISTINCT sink AS name FROM deliveries UNION SELECT name FROM sinks) names
                 LEFT JOIN deliveries d ON d.sink = names.name
                 LEFT JOIN sinks s ON s.name = names.name
                 GROUP BY names.name ORDER BY names.name",
                &[],
            )
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                let disabled: Option<i64> = row.get(6);
                let reason: Option<String> = row.get(7);
                Ok(SinkStatus {
                    name: parse_sink_name(row.get(0))?,
                    pending: row.get::<_, i64>(1) as u64,
                    delivered: row.get::<_, i64>(2) as u64,
                    dead: row.get::<_, i64>(3) as u64,
                    failing: row.get::<_, i64>(4) as u64,
                    oldest_pending_at: row.get::<_, Option<i64>>(5).map(instant).transpose()?,
                    disabled: match disabled {
                        Some(at) => Some((instant(at)?, reason.unwrap_or_default())),
                        None => None,
                    },
                })
            })
            .collect()
    }

    /// Dead letters, newest first.
    pub async fn dead_letters(
        &self,
        sink: Option<String>,
        before_id: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.deliveries_where(
            "d.state = 'dead' AND ($1::text IS NULL OR d.sink = $1)
               AND ($2::bigint IS NULL OR d.id < $2)
             ORDER BY d.id DESC LIMIT $3",
            &[&sink, &before_id, &page_size(limit)],
        )
        .await
    }

    /// The deliveries of one event.
    pub async fn deliveries_of(&self, event_id: EventId) -> Result<Vec<Delivery>, StoreError> {
        self.deliveries_where("e.event_id = $1 ORDER BY d.sink", &[&event_id.as_str()])
            .await
    }

    /// Deliveries with their events, as `WHERE {condition}` (and its order and limit) picks them.
    async fn deliveries_where(
        &self,
        condition: &str,
        parameters: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.sequence = d.sequence
                     WHERE {condition}"
                ),
                parameters,
            )
            .await
            .map_err(classify)?;
        rows.iter().map(delivery_from_row).collect()
    }
}
