//! The SQLite outbox: due deliveries (the head of each lane), outcomes, requeues (replay and
//! dead-letter retry), sink status, and the event feed that the live stream reads. Reads use the
//! pool; changes run on the writer thread, each in its own transaction.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior, params, params_from_iter};

use super::{
    RECORD_COLUMN_COUNT, RECORD_COLUMNS, SqliteStore, classify, received_at, record_from_row,
};
use crate::domain::envelope::EventId;
use crate::store::lane;
use crate::store::rows::page_size;
use crate::store::rows::{
    DELIVERY_COLUMN_COUNT, DELIVERY_COLUMNS, DeliveryColumns, REPLAY_FILTER_COLUMNS, ReplayRow,
    parse_sink_name,
};
use crate::store::{
    Delivery, DeliveryOutcome, EventRecord, OutcomeKind, Requeue, RequeueScope, Requeued,
    SinkStatus, StoreError,
};

fn delivery_from_row(row: &rusqlite::Row<'_>) -> Result<Delivery, StoreError> {
    DeliveryColumns {
        id: row.get(0).map_err(classify)?,
        sink: row.get(1).map_err(classify)?,
        sequence: row.get(2).map_err(classify)?,
        event_id: row.get(3).map_err(classify)?,
        event_type: row.get(4).map_err(classify)?,
        event_date_us: row.get(5).map_err(classify)?,
        order_id: row.get(6).map_err(classify)?,
        state: row.get(7).map_err(classify)?,
        attempts: row.get(8).map_err(classify)?,
        created_us: row.get(9).map_err(classify)?,
        next_attempt_us: row.get(10).map_err(classify)?,
        last_error: row.get(11).map_err(classify)?,
        body: row.get(12).map_err(classify)?,
        trace_context: row.get(13).map_err(classify)?,
        dialect: row.get(14).map_err(classify)?,
        source: row.get(15).map_err(classify)?,
    }
    .decode()
}

fn collect<T>(
    rows: impl Iterator<Item = rusqlite::Result<Result<T, StoreError>>>,
) -> Result<Vec<T>, StoreError> {
    rows.map(|row| row.map_err(classify)?).collect()
}

impl SqliteStore {
    /// Events after `sequence`, oldest first, with their bodies.
    pub async fn events_after(
        &self,
        sequence: i64,
        limit: usize,
    ) -> Result<Vec<(EventRecord, Bytes)>, StoreError> {
        self.read(move |connection| {
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT {RECORD_COLUMNS}, body FROM events WHERE sequence > ?1
                     ORDER BY sequence LIMIT ?2"
                ))
                .map_err(classify)?;
            let rows = statement
                .query_map(params![sequence, page_size(limit)], |row| {
                    Ok(record_from_row(row).and_then(|record| {
                        let body: Vec<u8> = row.get(RECORD_COLUMN_COUNT).map_err(classify)?;
                        Ok((record, Bytes::from(body)))
                    }))
                })
                .map_err(classify)?;
            collect(rows)
        })
        .await
    }

    /// The newest committed sequence.
    pub async fn last_sequence(&self) -> Result<i64, StoreError> {
        if let Some(commits) = &self.inner.commits {
            return Ok(*commits.sequence.borrow());
        }
        self.read(|connection| {
            connection
                .query_row("SELECT COALESCE(MAX(sequence), 0) FROM events", [], |row| {
                    row.get(0)
                })
                .map_err(classify)
        })
        .await
    }

    /// The due heads of the lanes of `sink`, skipping `busy` lanes.
    pub async fn due_deliveries(
        &self,
        sink: String,
        now: DateTime<Utc>,
        busy: Vec<String>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.read(move |connection| {
            // The head of a lane is its earliest pending delivery by eventDate (then receipt);
            // a later one waits for it even when the later one is due and the head is not.
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS}, d.lane
                     FROM deliveries d JOIN events e ON e.sequence = d.sequence
                     WHERE d.sink = ?1 AND d.state = 'pending' AND d.next_attempt_us <= ?2
                       AND NOT EXISTS (
                           SELECT 1 FROM deliveries h
                           WHERE h.sink = d.sink AND h.lane = d.lane AND h.state = 'pending'
                             AND (h.event_date_us < d.event_date_us
                                  OR (h.event_date_us = d.event_date_us AND h.sequence < d.sequence)))
                     ORDER BY d.next_attempt_us, d.id
                     LIMIT ?3"
                ))
                .map_err(classify)?;
            let rows = statement
                .query_map(
                    params![sink, now.timestamp_micros(), (limit + busy.len()) as i64],
                    |row| {
                        let lane: String = row.get(DELIVERY_COLUMN_COUNT)?;
                        Ok(delivery_from_row(row).map(|delivery| (lane, delivery)))
                    },
                )
                .map_err(classify)?;
            let due = collect(rows)?;
            Ok(due
                .into_iter()
                .filter(|(lane, _)| !busy.contains(lane))
                .map(|(_, delivery)| delivery)
                .take(limit)
                .collect())
        })
        .await
    }

    /// When the next pending delivery of `sink` is due.
    pub async fn next_due(&self, sink: String) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read(move |connection| {
            let next: Option<i64> = connection
                .query_row(
                    "SELECT MIN(next_attempt_us) FROM deliveries WHERE sink = ?1 AND state = 'pending'",
                    [sink],
                    |row| row.get(0),
                )
                .map_err(classify)?;
            next.map(received_at).transpose()
        })
        .await
    }

    /// Records outcomes of delivery attempts in one transaction.
    pub async fn record_outcomes(&self, outcomes: Vec<DeliveryOutcome>) -> Result<(), StoreError> {
        self.write(move |connection, announcer| {
            let now = Utc::now().timestamp_micros();
            let result = (|| -> rusqlite::Result<()> {
                let transaction =
                    connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
                for outcome in &outcomes {
                    let (id, queued) = (outcome.id, outcome.queued_at.timestamp_micros());
                    match &outcome.result {
                        OutcomeKind::Delivered => transaction
                            .prepare_cached(
                                "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1,
                                     last_attempt_us = ?2, last_error = NULL
                                 WHERE id = ?1 AND created_us = ?3 AND state = 'pending'",
                            )?
                            .execute(params![id, now, queued])?,
                        OutcomeKind::Retry {
                            next_attempt_at,
                            error,
                        } => transaction
                            .prepare_cached(
                                "UPDATE deliveries SET attempts = attempts + 1, last_attempt_us = ?2,
                                     next_attempt_us = ?3, last_error = ?4
                                 WHERE id = ?1 AND created_us = ?5 AND state = 'pending'",
                            )?
                            .execute(params![
                                id,
                                now,
                                next_attempt_at.timestamp_micros(),
                                error,
                                queued
                            ])?,
                        OutcomeKind::Dead { error } => transaction
                            .prepare_cached(
                                "UPDATE deliveries SET state = 'dead', attempts = attempts + 1,
                                     last_attempt_us = ?2, last_error = ?3
                                 WHERE id = ?1 AND created_us = ?4 AND state = 'pending'",
                            )?
                            .execute(params![id, now, error, queued])?,
                    };
                }
                transaction.commit()
            })();
            result.map_err(classify)?;
            // A delivery made or given up lets the next one of its lane go.
            announcer.outbox_changed();
            Ok(())
        })
        .await
    }

    /// Queues deliveries again: dead letters (`RequeueScope::DeadLetters`), or a replay of every matching event
    /// of one sink, delivered or not, and of events the sink never had.
    pub async fn requeue(&self, request: Requeue) -> Result<Requeued, StoreError> {
        self.write(move |connection, announcer| {
            let result = requeue(connection, &request).map_err(classify)?;
            if result.count > 0 {
                announcer.outbox_changed();
            }
            Ok(result)
        })
        .await
    }

    /// Disables a sink, or enables it with `None`.
    pub async fn set_sink_disabled(
        &self,
        sink: String,
        reason: Option<String>,
    ) -> Result<(), StoreError> {
        self.write(move |connection, announcer| {
            let now = Utc::now().timestamp_micros();
            let changed = match &reason {
                Some(reason) => connection.execute(
                    "INSERT INTO sinks (name, disabled_us, reason) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET disabled_us = ?2, reason = ?3",
                    params![sink, now, reason],
                ),
                None => connection.execute("DELETE FROM sinks WHERE name = ?1", [&sink]),
            }
            .map_err(classify)?;
            if reason.is_none() && changed > 0 {
                announcer.outbox_changed();
            }
            Ok(())
        })
        .await
    }

    /// Every sink with deliveries or a disabled mark.
    pub async fn sink_statuses(&self) -> Result<Vec<SinkStatus>, StoreError> {
        self.read(move |connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT names.name,
                        (SELECT COUNT(*) FROM deliveries WHERE sink = names.name AND state = 'pending'),
                        (SELECT COUNT(*) FROM deliveries WHERE sink = names.name AND state = 'delivered'),
                        (SELECT COUNT(*) FROM deliveries WHERE sink = names.name AND state = 'dead'),
                        (SELECT COUNT(*) FROM deliveries WHERE sink = names.name AND state = 'pending'
                             AND last_error IS NOT NULL),
                        (SELECT MIN(created_us) FROM deliveries WHERE sink = names.name AND state = 'pending'),
                        s.disabled_us, s.reason
                     FROM (SELECT DISTINCT sink AS name FROM deliveries UNION SELECT name FROM sinks) names
                     LEFT JOIN sinks s ON s.name = names.name
                     ORDER BY names.name",
                )
                .map_err(classify)?;
            let rows = statement
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, Option<i64>>(5)?,
                        row.get::<_, Option<i64>>(6)?,
                        row.get::<_, Option<String>>(7)?,
                    ))
                })
                .map_err(classify)?;
            let mut statuses = Vec::new();
            for row in rows {
                let (name, pending, delivered, dead, failing, oldest, disabled, reason) =
                    row.map_err(classify)?;
                statuses.push(SinkStatus {
                    name: parse_sink_name(&name)?,
                    pending: pending as u64,
                    delivered: delivered as u64,
                    dead: dead as u64,
                    failing: failing as u64,
                    oldest_pending_at: oldest.map(received_at).transpose()?,
                    disabled: match disabled {
                        Some(at) => Some((received_at(at)?, reason.unwrap_or_default())),
                        None => None,
                    },
                });
            }
            Ok(statuses)
        })
        .await
    }

    /// Dead letters, newest first.
    pub async fn dead_letters(
        &self,
        sink: Option<String>,
        before_id: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.read(move |connection| {
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.sequence = d.sequence
                     WHERE d.state = 'dead' AND (?1 IS NULL OR d.sink = ?1) AND (?2 IS NULL OR d.id < ?2)
                     ORDER BY d.id DESC LIMIT ?3"
                ))
                .map_err(classify)?;
            let rows = statement
                .query_map(params![sink, before_id, page_size(limit)], |row| {
                    Ok(delivery_from_row(row))
                })
                .map_err(classify)?;
            collect(rows)
        })
        .await
    }

    /// The deliveries of one event.
    pub async fn deliveries_of(&self, event_id: EventId) -> Result<Vec<Delivery>, StoreError> {
        self.read(move |connection| {
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.sequence = d.sequence
                     WHERE e.event_id = ?1 ORDER BY d.sink"
                ))
                .map_err(classify)?;
            let rows = statement
                .query_map([event_id.as_str()], |row| Ok(delivery_from_row(row)))
                .map_err(classify)?;
            collect(rows)
        })
        .await
    }
}

fn requeue(connection: &mut Connection, request: &Requeue) -> rusqlite::Result<Requeued> {
    let now = Utc::now().timestamp_micros();
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let limit = request.limit.max(1) as i64;
    let outcome = if request.scope == RequeueScope::DeadLetters {
        // Dead letters, by id; the lane order resumes from them.
        let mut sql = String::from(
            "UPDATE deliveries SET state = 'pending', attempts = 0, created_us = ?1,
                 next_attempt_us = ?1, last_error = NULL
             WHERE id IN (SELECT d.id FROM deliveries d JOIN events e ON e.sequence = d.sequence
                          WHERE d.state = 'dead'
                            AND (?2 IS NULL OR d.sink = ?2)
                            AND (?3 IS NULL OR e.received_at_us >= ?3)
                            AND (?4 IS NULL OR e.order_id = ?4)
                            AND (?5 IS NULL OR e.event_id = ?5)",
        );
        if !request.ids.is_empty() {
            let list: Vec<String> = (0..request.ids.len())
                .map(|index| format!("?{}", 7 + index))
                .collect();
            sql.push_str(&format!(" AND d.id IN ({})", list.join(",")));
        }
        sql.push_str(" ORDER BY d.id LIMIT ?6)");
        let mut values: Vec<rusqlite::types::Value> = vec![
            now.into(),
            request
                .sink
                .as_ref()
                .map(|sink| sink.as_str().to_owned())
                .into(),
            request.since.map(|at| at.timestamp_micros()).into(),
            request
                .order_id
                .as_ref()
                .map(|id| id.as_str().to_owned())
                .into(),
            request
                .event_id
                .as_ref()
                .map(|id| id.as_str().to_owned())
                .into(),
            limit.into(),
        ];
        values.extend(request.ids.iter().map(|id| (*id).into()));
        let count = transaction.execute(&sql, params_from_iter(values))?;
        Requeued {
            count,
            last_sequence: 0,
        }
    } else {
        let Some(sink) = &request.sink else {
            return Ok(Requeued::default());
        };
        replay(&transaction, sink.as_str(), request, now, limit)?
    };
    transaction.commit()?;
    Ok(outcome)
}

/// sequence, event_id, event_date_us, and what the sink's filter reads.
type Replayed = (i64, String, i64, ReplayRow);

/// Replays one sink: every event after `after_sequence` that matches the selection and the
/// sink's filter (as the stored facts say) is queued again; up to `limit` events are looked at.
fn replay(
    transaction: &rusqlite::Transaction<'_>,
    sink: &str,
    request: &Requeue,
    now: i64,
    limit: i64,
) -> rusqlite::Result<Requeued> {
    let mut statement = transaction.prepare_cached(&format!(
        "SELECT sequence, event_id, event_date_us, {REPLAY_FILTER_COLUMNS}
         FROM events WHERE sequence > ?1
           AND (?2 IS NULL OR received_at_us >= ?2)
           AND (?3 IS NULL OR order_id = ?3)
           AND (?4 IS NULL OR event_id = ?4)
         ORDER BY sequence LIMIT ?5"
    ))?;
    let rows: Vec<Replayed> = statement
        .query_map(
            params![
                request.after_sequence,
                request.since.map(|at| at.timestamp_micros()),
                request.order_id.as_ref().map(|id| id.as_str()),
                request.event_id.as_ref().map(|id| id.as_str()),
                limit
            ],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    ReplayRow {
                        dialect: row.get(3)?,
                        event_type: row.get(4)?,
                        order_id: row.get(5)?,
                        facts: row.get(6)?,
                        facts_json: row.get(7)?,
                        source: row.get(8)?,
                    },
                ))
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    let mut count = 0;
    let mut last_sequence = request.after_sequence;
    for (sequence, event_id, event_date_us, stored) in rows {
        last_sequence = sequence;
        if request
            .filter
            .as_ref()
            .is_some_and(|filter| !stored.taken_by(filter))
        {
            continue;
        }
        let order_id = stored.order_id;
        count += transaction
            .prepare_cached(
                "INSERT INTO deliveries (sink, sequence, lane, event_date_us, state, created_us,
                                         next_attempt_us)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)
                 ON CONFLICT (sink, sequence) DO UPDATE SET state = 'pending', attempts = 0,
                     created_us = ?5, next_attempt_us = ?5, last_error = NULL",
            )?
            .execute(params![
                sink,
                sequence,
                lane(order_id.as_deref(), &event_id),
                event_date_us,
                now
            ])?;
    }
    Ok(Requeued {
        count,
        last_sequence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::envelope::{ParseOptions, parse_notification};
    use crate::domain::routing::{Route, RouteFilter};
    use crate::store::{NewEvent, WriterOptions};

    fn event(id: &str, millis: u32) -> NewEvent {
        let body = serde_json::json!({
            "eventId": id,
            "eventDate": format!("2019-03-25T08:08:56.{millis:03}Z"),
            "eventType": "ServiceOrderCreationNotification",
            "event": {"id": "SO-1", "state": "acknowledged", "orderItem": []},
        });
        NewEvent {
            notification: parse_notification(body.to_string().into(), ParseOptions::default())
                .unwrap(),
            received_at: Utc::now(),
            sender: None,
            client: None,
            trace_context: None,
        }
    }

    async fn store(dir: &std::path::Path) -> SqliteStore {
        let route = Route {
            sink: "hook".parse().unwrap(),
            filter: RouteFilter::default(),
        };
        SqliteStore::open(
            dir.join("s.sqlite3"),
            WriterOptions::default(),
            vec![route],
            None,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn one_lane_goes_in_event_date_order_one_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        store.append(event("late", 900)).await.unwrap();
        store.append(event("early", 100)).await.unwrap();
        let due = store
            .due_deliveries("hook".into(), Utc::now(), Vec::new(), 10)
            .await
            .unwrap();
        let ids: Vec<&str> = due.iter().map(|d| d.event_id.as_str()).collect();
        assert_eq!(ids, ["early"], "only the head of the order's lane");
        let busy = store
            .due_deliveries("hook".into(), Utc::now(), vec![due[0].lane()], 10)
            .await
            .unwrap();
        assert!(busy.is_empty(), "a busy lane gives nothing");
        store
            .record_outcomes(vec![DeliveryOutcome {
                id: due[0].id,
                queued_at: due[0].created_at,
                result: OutcomeKind::Delivered,
            }])
            .await
            .unwrap();
        let next = store
            .due_deliveries("hook".into(), Utc::now(), Vec::new(), 10)
            .await
            .unwrap();
        assert_eq!(next[0].event_id.as_str(), "late");
        store.close().await;
    }

    #[tokio::test]
    async fn an_attempt_in_flight_does_not_swallow_a_replay_queued_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        store.append(event("e1", 100)).await.unwrap();
        let taken = store
            .due_deliveries("hook".into(), Utc::now(), Vec::new(), 10)
            .await
            .unwrap()
            .remove(0);
        // Replayed while the attempt is in flight…
        let replayed = store
            .requeue(Requeue {
                sink: Some("hook".parse().unwrap()),
                limit: 10,
                ..Requeue::default()
            })
            .await
            .unwrap();
        assert_eq!(replayed.count, 1);
        // …then the attempt's outcome arrives: it must not mark the replay delivered.
        store
            .record_outcomes(vec![DeliveryOutcome {
                id: taken.id,
                queued_at: taken.created_at,
                result: OutcomeKind::Delivered,
            }])
            .await
            .unwrap();
        let statuses = store.sink_statuses().await.unwrap();
        assert_eq!((statuses[0].pending, statuses[0].delivered), (1, 0));
        store.close().await;
    }
}
