//! The orders page: a filter form (state, id or externalId text, anomalies only, stuck only)
//! and the matching orders, most recently changed first, in a table that follows the stream,
//! a page at a time (the API's `OrderCursor`). An order that is not final and has not changed
//! for `stuck_after` is flagged as stuck.

use std::fmt::Write;
use std::time::Duration;

use axum::extract::{OriginalUri, Query, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{PageResult, Reader, chosen, failed, invalid, ok, reader, stuck_before};
use crate::domain::state::State as OrderState;
use crate::http::AppState;
use crate::http::console::html::{
    Nav, checked, duration, esc, path_segment, select_options, state_badge, time,
};
use crate::http::error::ApiError;
use crate::store::{OrderCursor, OrderFilter, OrderSummary};

/// Rows shown on one page.
const LIST_LIMIT: usize = 200;

/// `GET /console/orders` parameters: the filter form's fields and the page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct OrdersQuery {
    state: Option<String>,
    q: Option<String>,
    anomalies: Option<String>,
    stuck: Option<String>,
    cursor: Option<String>,
}

/// The filter, parsed from the form.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct OrdersFilter {
    /// Only orders in this state.
    pub state: Option<OrderState>,
    /// Only orders whose id or externalId contains this text (trimmed, never empty).
    pub text: Option<String>,
    /// Only orders with an anomaly.
    pub anomalies_only: bool,
    /// Only stuck orders.
    pub stuck_only: bool,
    /// The page after this place in the list; the first page when none.
    pub after: Option<OrderCursor>,
}

impl TryFrom<OrdersQuery> for OrdersFilter {
    type Error = ApiError;

    fn try_from(query: OrdersQuery) -> Result<Self, Self::Error> {
        let state = chosen(query.state.as_deref())
            .map(|text| {
                text.parse::<OrderState>()
                    .map_err(|_| invalid("state", format!("is not a TMF641 state (got {text:?})")))
            })
            .transpose()?;
        let ticked = |field: Option<String>| chosen(field.as_deref()).is_some();
        Ok(OrdersFilter {
            state,
            text: query
                .q
                .as_deref()
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(str::to_owned),
            anomalies_only: ticked(query.anomalies),
            stuck_only: ticked(query.stuck),
            after: chosen(query.cursor.as_deref())
                .map(|text| {
                    text.parse::<OrderCursor>()
                        .map_err(|_| invalid("cursor", "is not a page of this list"))
                })
                .transpose()?,
        })
    }
}

/// `GET /console/orders`.
pub(super) async fn show(
    State(app): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<OrdersQuery>,
) -> PageResult {
    let reader = reader(&app, &headers, &uri).await?;
    let filter = OrdersFilter::try_from(query).map_err(failed)?;
    let now = Utc::now();
    let stuck_after = app.console.stuck_after;
    let orders = app
        .store
        .orders(OrderFilter {
            state: filter.state,
            with_anomalies: filter.anomalies_only,
            text: filter.text.clone(),
            unchanged_before: filter.stuck_only.then(|| stuck_before(now, stuck_after)),
            after: filter.after.clone(),
            limit: LIST_LIMIT,
            ..OrderFilter::default()
        })
        .await
        .map_err(failed)?;
    Ok(ok(render_orders(
        &reader,
        &OrdersView {
            filter: &filter,
            orders: &orders,
            now,
            stuck_after,
        },
    )))
}

/// What the orders page shows.
#[derive(Debug)]
pub(super) struct OrdersView<'a> {
    /// The filter the orders match, shown in the form.
    pub filter: &'a OrdersFilter,
    /// The matching orders, most recently changed first.
    pub orders: &'a [OrderSummary],
    /// When the page is read: ages and the stuck test count from here.
    pub now: DateTime<Utc>,
    /// How long a non-final order may stay unchanged before it is stuck.
    pub stuck_after: Duration,
}

/// Whether `order` is stuck: in no state or a non-final one, unchanged since before
/// `stuck_before`.
fn is_stuck(order: &OrderSummary, stuck_before: DateTime<Utc>) -> bool {
    order.state.is_none_or(|state| !state.is_final()) && order.updated_at < stuck_before
}

/// The orders page.
pub(super) fn render_orders(reader: &Reader, view: &OrdersView<'_>) -> String {
    let filter = view.filter;
    let mut content = format!(
        r#"<form method="get" action="/console/orders" class="filters" role="search" aria-label="Filter orders">
<div><label for="state">State</label><select id="state" name="state">{options}</select></div>
<div><label for="q">Id or externalId contains</label><input id="q" name="q" type="search" value="{q}"></div>
<div class="check"><input id="anomalies" name="anomalies" type="checkbox" value="1"{anomalies}><label for="anomalies">Anomalies only</label></div>
<div class="check"><input id="stuck" name="stuck" type="checkbox" value="1"{stuck}><label for="stuck">Stuck only (not final, unchanged for {stuck_after})</label></div>
<div><button type="submit">Filter</button> <a href="/console/orders">Clear</a></div>
</form>
"#,
        options = select_options(
            "any state",
            OrderState::ALL.map(OrderState::as_str),
            filter.state.map(OrderState::as_str),
        ),
        q = esc(filter.text.as_deref().unwrap_or_default()),
        anomalies = checked(filter.anomalies_only),
        stuck = checked(filter.stuck_only),
        stuck_after = esc(&humantime::format_duration(view.stuck_after).to_string()),
    );
    let count = view.orders.len();
    let _ = write!(
        content,
        r#"<section id="orders-live" data-live aria-labelledby="orders-count">
<p id="orders-count" class="count">{count} order{plural}{more}</p>
<div class="scroll"><table id="orders-table">
<caption class="visually-hidden">Service orders, most recently changed first</caption>
<thead><tr><th scope="col">Order</th><th scope="col">externalId</th><th scope="col">State</th><th scope="col">Items</th><th scope="col">Events</th><th scope="col">Last update</th><th scope="col">Anomalies</th></tr></thead>
<tbody>"#,
        plural = if count == 1 { "" } else { "s" },
        more = match (count == LIST_LIMIT, filter.after.is_some()) {
            (true, false) => " (the most recent; more on the next page)",
            (true, true) => " (more on the next page)",
            (false, _) => "",
        },
    );
    let stuck_before = stuck_before(view.now, view.stuck_after);
    for order in view.orders {
        let _ = write!(
            content,
            r#"<tr data-order-id="{id}" data-state="{state}"><th scope="row"><a href="/console/orders/{href}">{id}</a></th><td>{external}</td><td>{badge}{stuck}</td><td>{items}</td><td>{events}</td><td>{updated} <span class="muted">({ago} ago)</span></td><td>{anomalies}</td></tr>"#,
            id = esc(order.id.as_str()),
            state = order.state.map_or("", OrderState::as_str),
            href = esc(&path_segment(order.id.as_str())),
            external = esc(order.external_id.as_deref().unwrap_or("—")),
            badge = state_badge(order.state),
            stuck = if is_stuck(order, stuck_before) {
                r#" <span class="flag stuck">stuck</span>"#
            } else {
                ""
            },
            items = order.item_count,
            events = order.event_count,
            updated = time(order.updated_at),
            ago = duration(view.now - order.updated_at),
            anomalies = anomaly_flag(order.anomaly_count),
        );
    }
    if view.orders.is_empty() {
        content.push_str(r#"<tr><td colspan="7">No order matches.</td></tr>"#);
    }
    content.push_str("</tbody></table></div>");
    let next = view
        .orders
        .last()
        .filter(|_| count == LIST_LIMIT)
        .map(|last| {
            format!(
                r#"<a href="{}" rel="next">Next page →</a>"#,
                esc(&page_link(filter, Some(&OrderCursor::after(last))))
            )
        });
    let first = filter.after.as_ref().map(|_| {
        format!(
            r#"<a href="{}">First page</a>"#,
            esc(&page_link(filter, None))
        )
    });
    let links: Vec<String> = first.into_iter().chain(next).collect();
    if !links.is_empty() {
        let _ = write!(content, "<p>{}</p>", links.join(" · "));
    }
    content.push_str("</section>");
    reader.stream_page("Service orders", Nav::Orders, &content)
}

/// The orders page with `filter`'s filters, the page after `cursor` (the first without one).
fn page_link(filter: &OrdersFilter, cursor: Option<&OrderCursor>) -> String {
    let mut parameters = Vec::new();
    if let Some(state) = filter.state {
        parameters.push(format!("state={}", state.as_str()));
    }
    if let Some(text) = &filter.text {
        parameters.push(format!("q={}", path_segment(text)));
    }
    if filter.anomalies_only {
        parameters.push("anomalies=1".to_owned());
    }
    if filter.stuck_only {
        parameters.push("stuck=1".to_owned());
    }
    if let Some(cursor) = cursor {
        parameters.push(format!("cursor={}", path_segment(&cursor.to_string())));
    }
    if parameters.is_empty() {
        "/console/orders".to_owned()
    } else {
        format!("/console/orders?{}", parameters.join("&"))
    }
}

/// An order's anomaly count as a warning, or "none".
fn anomaly_flag(count: usize) -> String {
    if count > 0 {
        format!(
            r#"<span class="flag anomaly">⚠ {count} anomal{}</span>"#,
            if count == 1 { "y" } else { "ies" }
        )
    } else {
        r#"<span class="muted">none</span>"#.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeDelta;

    use super::*;

    fn summary(
        id: &str,
        state: Option<OrderState>,
        age: TimeDelta,
        now: DateTime<Utc>,
    ) -> OrderSummary {
        OrderSummary {
            id: id.parse().unwrap(),
            state,
            external_id: Some("ext-1".to_owned()),
            item_count: 2,
            anomaly_count: 0,
            event_count: 3,
            last_event_date: "2024-01-01T00:00:00Z".parse().unwrap(),
            updated_at: now - age,
        }
    }

    fn render(filter: &OrdersFilter, orders: &[OrderSummary], now: DateTime<Utc>) -> String {
        render_orders(
            &Reader::at(7),
            &OrdersView {
                filter,
                orders,
                now,
                stuck_after: Duration::from_secs(3600),
            },
        )
    }

    /// The table row of order `id`.
    fn row<'a>(page: &'a str, id: &str) -> &'a str {
        let start = page.find(&format!(r#"<tr data-order-id="{id}""#)).unwrap();
        &page[start..start + page[start..].find("</tr>").unwrap()]
    }

    #[test]
    fn an_order_unchanged_past_the_limit_and_not_final_is_flagged_stuck() {
        let now = Utc::now();
        let orders = [
            summary("old-held", Some(OrderState::Held), TimeDelta::hours(2), now),
            summary(
                "old-done",
                Some(OrderState::Completed),
                TimeDelta::hours(2),
                now,
            ),
            summary(
                "fresh",
                Some(OrderState::InProgress),
                TimeDelta::minutes(5),
                now,
            ),
            summary("no-state", None, TimeDelta::hours(2), now),
        ];
        let page = render(&OrdersFilter::default(), &orders, now);
        let stuck = r#"<span class="flag stuck">stuck</span>"#;
        assert!(row(&page, "old-held").contains(stuck));
        assert!(row(&page, "no-state").contains(stuck));
        assert!(
            !row(&page, "old-done").contains(stuck),
            "a final order is never stuck"
        );
        assert!(!row(&page, "fresh").contains(stuck));
        assert!(page.contains(r#"<p id="orders-count" class="count">4 orders</p>"#));
        assert!(page.contains(r#"data-stream-since="7""#));
        assert!(page.contains(r#"name="csrf" value="csrf-token""#));
    }

    #[test]
    fn hostile_ids_and_filter_text_are_escaped() {
        let now = Utc::now();
        let mut order = summary("<script>x</script>", None, TimeDelta::zero(), now);
        order.external_id = Some(r#""><img src=x onerror=alert(1)>"#.to_owned());
        order.anomaly_count = 1;
        let filter = OrdersFilter {
            text: Some(r#""><script>"#.to_owned()),
            ..OrdersFilter::default()
        };
        let page = render(&filter, &[order], now);
        assert!(!page.contains("<script>"));
        assert!(!page.contains("<img"));
        assert!(page.contains(r#"href="/console/orders/%3Cscript%3Ex%3C%2Fscript%3E""#));
        assert!(page.contains(r#"value="&quot;&gt;&lt;script&gt;""#));
        assert!(page.contains("⚠ 1 anomaly"));
        assert!(page.contains(r#"<p id="orders-count" class="count">1 order</p>"#));
    }

    #[test]
    fn no_match_says_so_and_the_form_keeps_the_filter() {
        let filter = OrdersFilter {
            state: Some(OrderState::Held),
            text: None,
            anomalies_only: true,
            stuck_only: false,
            after: None,
        };
        let page = render(&filter, &[], Utc::now());
        assert!(page.contains("No order matches."));
        assert!(page.contains(r#"<option value="held" selected>held</option>"#));
        assert!(page.contains(r#"name="anomalies" type="checkbox" value="1" checked>"#));
        assert!(page.contains(r#"name="stuck" type="checkbox" value="1"><label"#));
        assert!(page.contains("unchanged for 1h"));
    }

    #[test]
    fn the_form_parses_into_a_filter_and_a_bad_state_is_refused() {
        let filter = OrdersFilter::try_from(OrdersQuery {
            state: Some("held".to_owned()),
            q: Some("  abc ".to_owned()),
            anomalies: Some("1".to_owned()),
            stuck: Some(String::new()),
            cursor: Some("1764497296310123-SO 1".to_owned()),
        })
        .unwrap();
        assert_eq!(
            filter,
            OrdersFilter {
                state: Some(OrderState::Held),
                text: Some("abc".to_owned()),
                anomalies_only: true,
                stuck_only: false,
                after: Some("1764497296310123-SO 1".parse().unwrap()),
            }
        );
        assert_eq!(
            OrdersFilter::try_from(OrdersQuery {
                state: Some(String::new()),
                q: Some("   ".to_owned()),
                ..OrdersQuery::default()
            })
            .unwrap(),
            OrdersFilter::default()
        );
        let refused = OrdersFilter::try_from(OrdersQuery {
            state: Some("sideways".to_owned()),
            ..OrdersQuery::default()
        })
        .unwrap_err();
        assert!(
            matches!(refused, ApiError::InvalidQuery { name: "state", .. }),
            "{refused:?}"
        );
        let refused = OrdersFilter::try_from(OrdersQuery {
            cursor: Some("SO-1".to_owned()),
            ..OrdersQuery::default()
        })
        .unwrap_err();
        assert!(
            matches!(refused, ApiError::InvalidQuery { name: "cursor", .. }),
            "{refused:?}"
        );
    }

    #[test]
    fn a_full_page_links_to_the_next_with_its_filter_and_a_later_one_to_the_first() {
        let now = Utc::now();
        let orders: Vec<OrderSummary> = (0..LIST_LIMIT)
            .map(|index| summary(&format!("SO {index}"), None, TimeDelta::zero(), now))
            .collect();
        let filter = OrdersFilter {
            text: Some("SO &".to_owned()),
            stuck_only: true,
            ..OrdersFilter::default()
        };
        let page = render(&filter, &orders, now);
        let micros = now.timestamp_micros();
        assert!(
            page.contains(&format!(
                r#"<a href="/console/orders?q=SO%20%26&amp;stuck=1&amp;cursor={micros}%2DSO%20199" rel="next">Next page →</a>"#
            )),
            "{page}"
        );
        assert!(page.contains("200 orders (the most recent; more on the next page)"));
        assert!(!page.contains("First page"));

        let later = OrdersFilter {
            after: Some(OrderCursor::after(&orders[199])),
            ..filter
        };
        let page = render(&later, &orders[..3], now);
        assert!(
            !page.contains("Next page"),
            "a page that is not full is the last"
        );
        assert!(
            page.contains(r#"<a href="/console/orders?q=SO%20%26&amp;stuck=1">First page</a>"#),
            "{page}"
        );
    }
}
