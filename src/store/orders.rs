//! The order list, written once for both backends: [`OrderSummary`] (one line), [`OrderFilter`]
//! (which orders, from which place) and [`OrderCursor`] (a place in the list, as a page's
//! `nextCursor` prints it). Each backend's `orders` is only its SQL; the place a page starts at
//! is bound from [`OrderFilter::page_start`].

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::envelope::{EventDate, OrderId};
use crate::domain::state::State;

/// One line of the order list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSummary {
    /// The seller's order id.
    pub id: OrderId,
    /// Its latest known state.
    pub state: Option<State>,
    /// The buyer's reference.
    pub external_id: Option<String>,
    /// How many items it has.
    pub item_count: usize,
    /// How many anomalies were recorded.
    pub anomaly_count: usize,
    /// How many events were applied.
    pub event_count: usize,
    /// The eventDate of its newest event.
    pub last_event_date: EventDate,
    /// When the listener last changed it.
    pub updated_at: DateTime<Utc>,
}

/// Which orders to list, most recently updated first (`updated_at` descending, then id
/// ascending: one order for every order, ties included).
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    /// Only orders in this state.
    pub state: Option<State>,
    /// Only orders with at least one anomaly.
    pub with_anomalies: bool,
    /// Only orders with this externalId.
    pub external_id: Option<String>,
    /// Only orders the listener changed at or after this instant.
    pub updated_since: Option<DateTime<Utc>>,
    /// Only orders whose id or externalId contains this text, ignoring ASCII case (the
    /// console's search); empty is no filter.
    pub text: Option<String>,
    /// Only stuck orders: in no state or a non-final one, last changed before this instant.
    pub unchanged_before: Option<DateTime<Utc>>,
    /// Only orders after this place in the list: the next page after the one that ended there.
    pub after: Option<OrderCursor>,
    /// At most this many.
    pub limit: usize,
}

impl OrderFilter {
    /// Where the page starts, as both backends bind it: orders changed at or before the first
    /// value (in microseconds; `i64::MAX` on the first page), and, among those changed at that
    /// very instant, only ids after the second. The first condition alone bounds the scan of
    /// the `updated_at_us` index; the second leaves out the orders the last page listed.
    pub(crate) fn page_start(&self) -> (i64, Option<&str>) {
        match &self.after {
            Some(after) => (after.updated_at_us, Some(after.id.as_str())),
            None => (i64::MAX, None),
        }
    }
}

/// A place in the order list: the last order of a page, its `updated_at` and id, after which
/// the next page starts. An order keeps its place while it is not changed, so that a walk from
/// page to page lists every order left unchanged exactly once, whatever else is inserted or
/// changed meanwhile. An order changed during a walk takes a new place at the head of the list,
/// before the cursor: it is not listed again if it was listed already, and not listed at all
/// if it was not yet (a walk that must see it starts again, or asks for `updatedSince` its own
/// start).
///
/// It prints as `{updated_at in microseconds}-{order id}`; clients treat it as opaque. Every
/// text of that form reads (an id is any text a seller may give), so a cursor is never refused
/// for what it points at, only for its form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderCursor {
    updated_at_us: i64,
    id: OrderId,
}

impl OrderCursor {
    /// The place of `order`: the next page starts after it.
    pub fn after(order: &OrderSummary) -> OrderCursor {
        OrderCursor {
            updated_at_us: order.updated_at.timestamp_micros(),
            id: order.id.clone(),
        }
    }
}

/// The most digits the instant of an [`OrderCursor`] has: 18 always fit an `i64`.
const MOST_DIGITS: usize = 18;

impl std::fmt::Display for OrderCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.updated_at_us, self.id)
    }
}

/// The text is not a place in the order list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a place in the order list: expected a nextCursor, digits, `-` and a service order id")]
pub struct InvalidOrderCursor;

impl std::str::FromStr for OrderCursor {
    type Err = InvalidOrderCursor;

    fn from_str(text: &str) -> Result<OrderCursor, InvalidOrderCursor> {
        let (instant, id) = text.split_once('-').ok_or(InvalidOrderCursor)?;
        if instant.is_empty()
            || instant.len() > MOST_DIGITS
            || !instant.bytes().all(|byte| byte.is_ascii_digit())
        {
            return Err(InvalidOrderCursor);
        }
        Ok(OrderCursor {
            updated_at_us: instant.parse().map_err(|_| InvalidOrderCursor)?,
            id: id.parse().map_err(|_| InvalidOrderCursor)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_it_prints_whatever_the_id() {
        for id in ["SO-1", "SO 2", "a-b-c", "ünïcode/&?#", "-"] {
            let order = OrderSummary {
                id: id.parse().unwrap(),
                state: None,
                external_id: None,
                item_count: 0,
                anomaly_count: 0,
                event_count: 0,
                last_event_date: "2024-01-01T00:00:00Z".parse().unwrap(),
                updated_at: DateTime::from_timestamp_micros(1_764_497_296_310_123).unwrap(),
            };
            let cursor = OrderCursor::after(&order);
            let text = cursor.to_string();
            assert_eq!(text, format!("1764497296310123-{id}"));
            assert_eq!(text.parse::<OrderCursor>(), Ok(cursor));
        }
        let filter = OrderFilter {
            after: Some("0-SO-9".parse().unwrap()),
            ..OrderFilter::default()
        };
        assert_eq!(filter.page_start(), (0, Some("SO-9")));
        assert_eq!(OrderFilter::default().page_start(), (i64::MAX, None));
    }

    #[test]
    fn a_text_of_another_form_is_not_a_cursor() {
        for text in [
            "",
            "12",
            "-SO-1",
            "12-",
            "+12-SO-1",
            "1.5-SO-1",
            "1234567890123456789-SO-1",
            "12-SO\u{7}",
            " 12-SO-1",
        ] {
            assert_eq!(
                text.parse::<OrderCursor>(),
                Err(InvalidOrderCursor),
                "{text:?}"
            );
        }
    }
}
