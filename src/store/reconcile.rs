//! What the store answers for reconciliation (issue 14): the suspect orders, their counts for
//! the metrics, and the gap report of the events received from each seller. What is judged and
//! merged is written once here; each backend's `reconcile.rs` runs the SQL this module writes.
//!
//! How each read stays cheap, whatever the number of orders:
//! - the reasons judged when an order is saved are a bit set in `service_orders.suspects`, and
//!   a partial index (`service_orders_suspect`) holds only the orders where it is not 0: lists
//!   and counts read suspects only, and saving an order that is not suspect never touches it;
//! - stale is judged when read: for each non-final state, the orders in that state are walked
//!   in id order through `service_orders_by_state`, reading their newest event's date. That
//!   costs the number of orders in non-final states (the ones in flight), never all orders, and
//!   adds no index to the append path (an index on the newest event's date would change with
//!   almost every event).
//! - a list is one query: a `UNION` of one index range per source, each cut at the page's
//!   limit, then merged and cut again in id order; its cursor is the last order id.
//! - the gap report reads a range of receipt times through `events_by_received`, at most one
//!   more row than its limit.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{OrderSummary, Store, StoreError};
use crate::domain::envelope::{EventId, OrderId};
use crate::domain::state::State;
use crate::domain::suspect::{Reason, Reasons, StaleAfter};

/// Which suspect orders to list, in order id order.
#[derive(Debug, Clone)]
pub struct SuspectFilter {
    /// Only orders suspect for one of these reasons; empty is any reason.
    pub reasons: Reasons,
    /// The stale thresholds.
    pub stale_after: StaleAfter,
    /// When staleness is judged.
    pub now: DateTime<Utc>,
    /// Only orders whose id sorts after this one (the previous page's last).
    pub after: Option<OrderId>,
    /// At most this many.
    pub limit: usize,
}

/// A suspect order: its summary and every reason it is suspect for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuspectOrder {
    /// The order as the order list shows it.
    #[serde(flatten)]
    pub order: OrderSummary,
    /// Why it is suspect.
    pub reasons: Reasons,
}

/// How many orders are suspect for each reason (an order counts once for each of its reasons).
pub type SuspectCounts = BTreeMap<Reason, u64>;

/// Whose events a gap report lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sender {
    /// Those of the authenticated client of this name.
    Client(String),
    /// Those received without credentials.
    Anonymous,
}

/// Which events a gap report lists: those received in `[since, until)`.
#[derive(Debug, Clone)]
pub struct ReceivedFilter {
    /// Received at or after this instant.
    pub since: DateTime<Utc>,
    /// Received before this instant.
    pub until: DateTime<Utc>,
    /// Only this sender's; `None` is every sender.
    pub sender: Option<Sender>,
    /// The most events the report may hold.
    pub limit: usize,
}

/// The events one sender's requests delivered in a report's range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SenderEvents {
    /// The authenticated client; `None` for events received without credentials.
    pub client: Option<String>,
    /// How many.
    pub count: u64,
    /// Their eventIds, in receipt order.
    pub event_ids: Vec<EventId>,
}

/// A gap report: the events received in a range, by sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Each sender's events, clients by name, then the anonymous ones.
    pub senders: Vec<SenderEvents>,
    /// Whether the range holds more events than the limit (the report is then incomplete).
    pub over_limit: bool,
}

/// The parameters of [`suspects_sql`], in its placeholders' order.
#[derive(Debug, Clone)]
pub(crate) struct SuspectQuery {
    /// `?1`: the stored reasons asked for (`Reasons::stored_bits`); 0 leaves them out.
    pub stored: i64,
    /// `?2`: the previous page's last order id, or the empty string.
    pub after: String,
    /// `?3`: the page's size.
    pub limit: i64,
    /// `?4`…`?9`: for each of [`StaleAfter::OPEN_STATES`], the eventDate before which an order
    /// in it is stale; `None` when that state is not asked for.
    pub stale_before_us: [Option<i64>; 6],
}

impl SuspectQuery {
    fn of(filter: &SuspectFilter) -> SuspectQuery {
        let wanted = if filter.reasons.is_empty() {
            Reasons::all()
        } else {
            filter.reasons
        };
        let cutoffs = filter.stale_after.cutoffs(filter.now);
        let stale_before_us = StaleAfter::OPEN_STATES.map(|state| {
            cutoffs
                .iter()
                .find(|(open, _)| *open == state)
                .filter(|_| wanted.contains(Reason::Stale))
                .map(|(_, cutoff)| cutoff.timestamp_micros())
        });
        SuspectQuery {
            stored: wanted.stored_bits(),
            after: filter
                .after
                .as_ref()
                .map(|id| id.as_str().to_owned())
                .unwrap_or_default(),
            limit: super::rows::page_size(filter.limit),
            stale_before_us,
        }
    }
}

/// How a backend writes a query's placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placeholders {
    /// `?N`.
    Sqlite,
    /// `$N::type`.
    Postgres,
}

impl Placeholders {
    fn at(self, number: usize, sql_type: &str) -> String {
        match self {
            Placeholders::Sqlite => format!("?{number}"),
            Placeholders::Postgres => format!("${number}::{sql_type}"),
        }
    }
}

/// How many columns `SUMMARY_COLUMNS` names: the suspects query reads `suspects` after them.
pub(crate) const SUMMARY_COLUMN_COUNT: usize = 8;

/// The suspects query, with [`SuspectQuery`]'s parameters: the stored reasons' rows through
/// the partial index, and each asked-for non-final state's stale rows through the state index,
/// each cut at the limit, merged without duplicates and cut again, in id order. A part whose
/// parameter leaves it out is a constant false, which both backends evaluate once.
pub(crate) fn suspects_sql(placeholders: Placeholders) -> String {
    let columns = super::rows::SUMMARY_COLUMNS;
    let after = placeholders.at(2, "text");
    let limit = placeholders.at(3, "bigint");
    let mut parts = vec![format!(
        "SELECT {columns}, suspects FROM service_orders
         WHERE {stored} <> 0 AND suspects <> 0 AND (suspects & {stored}) <> 0 AND id > {after}
         ORDER BY id LIMIT {limit}",
        stored = placeholders.at(1, "bigint"),
    )];
    for (index, state) in StaleAfter::OPEN_STATES.into_iter().enumerate() {
        let cutoff = placeholders.at(4 + index, "bigint");
        parts.push(format!(
            "SELECT {columns}, suspects FROM service_orders
             WHERE {cutoff} IS NOT NULL AND state = '{state}' AND last_event_date_us < {cutoff}
               AND id > {after}
             ORDER BY id LIMIT {limit}",
            state = state.as_str(),
        ));
    }
    let union = parts
        .iter()
        .map(|part| match placeholders {
            // SQLite takes ORDER BY and LIMIT in a compound's member only inside a subquery.
            Placeholders::Sqlite => format!("SELECT * FROM ({part})"),
            Placeholders::Postgres => format!("({part})"),
        })
        .collect::<Vec<_>>()
        .join("\nUNION\n");
    format!("{union}\nORDER BY id LIMIT {limit}")
}

/// The counts query for the stale reason: one row per non-final state, `(state, count)`, with
/// `?1`…`?6` the cutoffs of [`StaleAfter::OPEN_STATES`] (NULL: not judged, counted 0).
pub(crate) fn stale_counts_sql(placeholders: Placeholders) -> String {
    StaleAfter::OPEN_STATES
        .into_iter()
        .enumerate()
        .map(|(index, state)| {
            let cutoff = placeholders.at(1 + index, "bigint");
            format!(
                "SELECT '{state}', COUNT(*) FROM service_orders
                 WHERE {cutoff} IS NOT NULL AND state = '{state}' AND last_event_date_us < {cutoff}",
                state = state.as_str(),
            )
        })
        .collect::<Vec<_>>()
        .join("\nUNION ALL\n")
}

/// The counts query for the stored reasons: `(suspects, count)` for each stored set.
pub(crate) const STORED_COUNTS_SQL: &str =
    "SELECT suspects, COUNT(*) FROM service_orders WHERE suspects <> 0 GROUP BY suspects";

/// The gap report's query: `(client, event_id)` of the events received in `[?1, ?2)`, of
/// sender `?3` (0 every sender, 1 anonymous, 2 the client `?4`), in receipt order, at most
/// `?5`.
pub(crate) fn received_sql(placeholders: Placeholders) -> String {
    let p = |number, sql_type| placeholders.at(number, sql_type);
    format!(
        "SELECT client, event_id FROM events
         WHERE received_at_us >= {since} AND received_at_us < {until}
           AND ({sender} = 0 OR ({sender} = 1 AND client IS NULL)
                OR ({sender} = 2 AND client = {client}))
         ORDER BY received_at_us, sequence LIMIT {limit}",
        since = p(1, "bigint"),
        until = p(2, "bigint"),
        sender = p(3, "int"),
        client = p(4, "text"),
        limit = p(5, "bigint"),
    )
}

/// The parameters of [`received_sql`], in its placeholders' order.
#[derive(Debug, Clone)]
pub(crate) struct ReceivedQuery {
    pub since_us: i64,
    pub until_us: i64,
    pub sender: i32,
    pub client: Option<String>,
    /// One more than the report's limit, to tell a range that holds more.
    pub limit: i64,
}

impl ReceivedQuery {
    fn of(filter: &ReceivedFilter) -> ReceivedQuery {
        let (sender, client) = match &filter.sender {
            None => (0, None),
            Some(Sender::Anonymous) => (1, None),
            Some(Sender::Client(name)) => (2, Some(name.clone())),
        };
        ReceivedQuery {
            since_us: filter.since.timestamp_micros(),
            until_us: filter.until.timestamp_micros(),
            sender,
            client,
            limit: i64::try_from(filter.limit.saturating_add(1)).unwrap_or(i64::MAX),
        }
    }
}

/// A row of [`suspects_sql`]: the summary and the stored reasons.
pub(crate) struct SuspectRow {
    pub order: OrderSummary,
    pub stored: i64,
}

/// Every reason of a listed order: its stored ones and, judged now, stale.
fn reasons_of(row: &SuspectRow, filter: &SuspectFilter) -> Reasons {
    let stored = Reasons::from_stored_bits(row.stored);
    let stale = filter.stale_after.is_stale(
        row.order.state,
        row.order.last_event_date.as_datetime(),
        filter.now,
    );
    if stale {
        stored.with(Reason::Stale)
    } else {
        stored
    }
}

/// The counts of every reason, zero included, from the two counts queries' rows.
fn counts_of(stored: &[(i64, i64)], stale: &[(String, i64)]) -> SuspectCounts {
    let mut counts: SuspectCounts = Reason::ALL.into_iter().map(|reason| (reason, 0)).collect();
    for (bits, count) in stored {
        for reason in Reasons::from_stored_bits(*bits).iter() {
            *counts.entry(reason).or_default() += u64::try_from(*count).unwrap_or_default();
        }
    }
    let stale: i64 = stale.iter().map(|(_, count)| *count).sum();
    counts.insert(Reason::Stale, u64::try_from(stale).unwrap_or_default());
    counts
}

/// The report of `(client, event_id)` rows in receipt order, at most `limit` events.
fn report(rows: Vec<(Option<String>, String)>, limit: usize) -> Result<Received, StoreError> {
    let over_limit = rows.len() > limit;
    let mut by_sender: BTreeMap<(bool, Option<String>), Vec<EventId>> = BTreeMap::new();
    for (client, event_id) in rows.into_iter().take(limit) {
        let event_id = super::append::parse_event_id(&event_id)?;
        // Clients by name first, then the anonymous group.
        by_sender
            .entry((client.is_none(), client))
            .or_default()
            .push(event_id);
    }
    Ok(Received {
        senders: by_sender
            .into_iter()
            .map(|((_, client), event_ids)| SenderEvents {
                client,
                count: event_ids.len() as u64,
                event_ids,
            })
            .collect(),
        over_limit,
    })
}

impl Store {
    /// Suspect orders, in order id order: those with a stored reason in `filter.reasons`, and,
    /// when stale is asked for, those stale at `filter.now`; each with every reason it has. A
    /// full page (`filter.limit` orders) may have more after its last id.
    pub async fn suspects(&self, filter: SuspectFilter) -> Result<Vec<SuspectOrder>, StoreError> {
        let query = SuspectQuery::of(&filter);
        let rows = match self {
            Store::Sqlite(store) => store.suspect_rows(query).await?,
            Store::Postgres(store) => store.suspect_rows(query).await?,
        };
        Ok(rows
            .into_iter()
            .map(|row| SuspectOrder {
                reasons: reasons_of(&row, &filter),
                order: row.order,
            })
            .collect())
    }

    /// How many orders are suspect for each reason at `now` (every reason, zero included).
    pub async fn suspect_counts(
        &self,
        stale_after: &StaleAfter,
        now: DateTime<Utc>,
    ) -> Result<SuspectCounts, StoreError> {
        let cutoffs = stale_after.cutoffs(now);
        let stale_before_us = StaleAfter::OPEN_STATES.map(|state: State| {
            cutoffs
                .iter()
                .find(|(open, _)| *open == state)
                .map(|(_, cutoff)| cutoff.timestamp_micros())
        });
        let (stored, stale) = match self {
            Store::Sqlite(store) => store.suspect_count_rows(stale_before_us).await?,
            Store::Postgres(store) => store.suspect_count_rows(stale_before_us).await?,
        };
        Ok(counts_of(&stored, &stale))
    }

    /// The gap report: the eventIds received in `[filter.since, filter.until)`, by sender, at
    /// most `filter.limit` of them ([`Received::over_limit`] says when the range holds more).
    pub async fn received(&self, filter: ReceivedFilter) -> Result<Received, StoreError> {
        let query = ReceivedQuery::of(&filter);
        let rows = match self {
            Store::Sqlite(store) => store.received_rows(query).await?,
            Store::Postgres(store) => store.received_rows(query).await?,
        };
        report(rows, filter.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_column_count_is_the_number_of_summary_columns() {
        assert_eq!(
            super::super::rows::SUMMARY_COLUMNS.split(',').count(),
            SUMMARY_COLUMN_COUNT
        );
    }

    #[test]
    fn every_reason_is_counted_once_per_order_and_absent_ones_are_zero() {
        let stored = [(1 | 4, 3), (4, 2)];
        let stale = [("acknowledged".to_owned(), 1), ("inProgress".to_owned(), 5)];
        let counts = counts_of(&stored, &stale);
        assert_eq!(counts[&Reason::MissedTransition], 3);
        assert_eq!(counts[&Reason::CreationMissing], 5);
        assert_eq!(counts[&Reason::ItemNotFinal], 0);
        assert_eq!(counts[&Reason::OutOfStep], 0);
        assert_eq!(counts[&Reason::Stale], 6);
        assert_eq!(counts.len(), Reason::ALL.len());
    }

    #[test]
    fn a_report_groups_by_client_with_the_anonymous_last_and_says_when_it_is_over() {
        let rows = vec![
            (None, "a1".to_owned()),
            (Some("seller-b".to_owned()), "b1".to_owned()),
            (Some("seller-a".to_owned()), "x1".to_owned()),
            (Some("seller-b".to_owned()), "b2".to_owned()),
        ];
        let received = report(rows.clone(), 10).unwrap();
        assert!(!received.over_limit);
        let clients: Vec<(Option<&str>, u64)> = received
            .senders
            .iter()
            .map(|sender| (sender.client.as_deref(), sender.count))
            .collect();
        assert_eq!(
            clients,
            [(Some("seller-a"), 1), (Some("seller-b"), 2), (None, 1)]
        );
        assert_eq!(
            received.senders[1]
                .event_ids
                .iter()
                .map(EventId::as_str)
                .collect::<Vec<_>>(),
            ["b1", "b2"],
            "in receipt order"
        );
        let cut = report(rows, 3).unwrap();
        assert!(cut.over_limit);
        assert_eq!(
            cut.senders.iter().map(|sender| sender.count).sum::<u64>(),
            3
        );
    }

    #[test]
    fn a_query_asks_only_for_the_reasons_wanted() {
        let now = Utc::now();
        let filter = |reasons| SuspectFilter {
            reasons,
            stale_after: StaleAfter::default(),
            now,
            after: None,
            limit: 50,
        };
        let all = SuspectQuery::of(&filter(Reasons::NONE));
        assert_eq!(all.stored, 15);
        assert!(all.stale_before_us.iter().all(Option::is_some));
        let stale = SuspectQuery::of(&filter(Reasons::NONE.with(Reason::Stale)));
        assert_eq!(stale.stored, 0);
        assert_eq!(
            stale.stale_before_us[3],
            Some((now - chrono::TimeDelta::hours(24)).timestamp_micros()),
            "inProgress's default threshold"
        );
        let gaps = SuspectQuery::of(&filter(Reasons::NONE.with(Reason::MissedTransition)));
        assert_eq!(gaps.stored, 1);
        assert!(gaps.stale_before_us.iter().all(Option::is_none));
        assert_eq!(gaps.after, "");
    }

    #[test]
    fn each_backend_gets_its_placeholders() {
        let sqlite = suspects_sql(Placeholders::Sqlite);
        assert!(sqlite.contains("?9") && !sqlite.contains('$'), "{sqlite}");
        assert_eq!(sqlite.matches("UNION").count(), 6);
        let postgres = suspects_sql(Placeholders::Postgres);
        assert!(postgres.contains("$9::bigint") && !postgres.contains('?'));
        assert!(received_sql(Placeholders::Postgres).contains("$4::text"));
        assert_eq!(
            stale_counts_sql(Placeholders::Sqlite)
                .matches("UNION ALL")
                .count(),
            5
        );
    }
}
