//! The console's pages: each handler checks the session, reads through the store and
//! `Metrics`, and renders HTML with `html.rs`. Every stored value is escaped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use super::html::{Layout, Live, Nav, duration, esc, page, path_segment, state_badge, time};
use super::{html, session_or_login};
use crate::domain::envelope::{EventId, EventType, OrderId};
use crate::domain::projection::{AnomalySubject, ServiceOrder};
use crate::domain::state::State as OrderState;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::store::{Cursor, EventFilter, EventRecord, OrderSearch, SinkStatus, StoreError};

/// Rows shown in a list.
const LIST_LIMIT: usize = 200;
/// Events shown on the events page, with their bodies.
const EVENTS_LIMIT: usize = 100;
/// Dead letters shown per sink.
const DEAD_LETTERS_LIMIT: usize = 50;
/// Minutes in the overview's chart.
const CHART_MINUTES: i64 = 30;

type PageResult = Result<Response, Response>;

fn store_error(error: StoreError) -> Response {
    ApiError::from(error).into_response()
}

fn invalid(name: &'static str, problem: String) -> Response {
    ApiError::InvalidQuery { name, problem }.into_response()
}

/// The stream's position now, where the page's event stream starts.
async fn committed(app: &AppState) -> Result<Cursor, Response> {
    app.store.stream_head().await.map_err(store_error)
}

/// The login page, with an error message after a failed attempt.
pub(super) fn login_page(next: &str, error: Option<&str>) -> String {
    let error = error
        .map(|error| format!(r#"<p class="error" role="alert">{}</p>"#, esc(error)))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · order-listener console</title>
<link rel="stylesheet" href="/console/assets/console.css">
</head>
<body class="login">
<main id="main">
<h1>order-listener console</h1>
{error}
<form method="post" action="/console/login" class="card">
<input type="hidden" name="next" value="{next}">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<p class="hint">The admin API's token (admin_token, or ORDER_LISTENER_ADMIN_TOKEN).</p>
<button type="submit">Log in</button>
</form>
</main>
</body>
</html>
"#,
        next = esc(next)
    )
}

/// `GET /console/orders` parameters: the filter form's fields.
#[derive(Debug, Default, Deserialize)]
pub(super) struct OrdersQuery {
    state: Option<String>,
    q: Option<String>,
    anomalies: Option<String>,
    stuck: Option<String>,
}

fn checked(flag: &Option<String>) -> bool {
    flag.as_deref().is_some_and(|value| !value.is_empty())
}

/// The orders page: a filter form and a table that follows the stream.
pub(super) async fn orders(
    State(app): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<OrdersQuery>,
) -> PageResult {
    let session = session_or_login(&app, &headers, &uri)?;
    let since = committed(&app).await?;
    let state = match query.state.as_deref().filter(|text| !text.is_empty()) {
        None => None,
        Some(text) => Some(
            text.parse::<OrderState>()
                .map_err(|_| invalid("state", format!("is not a TMF641 state (got {text:?})")))?,
        ),
    };
    let text = query
        .q
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned);
    let now = Utc::now();
    let stuck_before = now - TimeDelta::from_std(app.console.stuck_after).unwrap_or(TimeDelta::MAX);
    let orders = app
        .store
        .search_orders(OrderSearch {
            state,
            with_anomalies: checked(&query.anomalies),
            text: text.clone(),
            unchanged_before: checked(&query.stuck).then_some(stuck_before),
            limit: LIST_LIMIT,
        })
        .await
        .map_err(store_error)?;

    let mut content = String::new();
    let mut options = String::from(r#"<option value="">any state</option>"#);
    for candidate in OrderState::ALL {
        let selected = if Some(candidate) == state {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            options,
            r#"<option value="{0}"{selected}>{0}</option>"#,
            candidate.as_str()
        );
    }
    let _ = write!(
        content,
        r#"<form method="get" action="/console/orders" class="filters" role="search" aria-label="Filter orders">
<div><label for="state">State</label><select id="state" name="state">{options}</select></div>
<div><label for="q">Id or externalId contains</label><input id="q" name="q" type="search" value="{q}"></div>
<div class="check"><input id="anomalies" name="anomalies" type="checkbox" value="1"{anomalies}><label for="anomalies">Anomalies only</label></div>
<div class="check"><input id="stuck" name="stuck" type="checkbox" value="1"{stuck}><label for="stuck">Stuck only (not final, unchanged for {stuck_after})</label></div>
<div><button type="submit">Filter</button> <a href="/console/orders">Clear</a></div>
</form>
"#,
        q = esc(text.as_deref().unwrap_or_default()),
        anomalies = if checked(&query.anomalies) {
            " checked"
        } else {
            ""
        },
        stuck = if checked(&query.stuck) {
            " checked"
        } else {
            ""
        },
        stuck_after = esc(&humantime::format_duration(app.console.stuck_after).to_string()),
    );
    let _ = write!(
        content,
        r#"<section id="orders-live" data-live aria-labelledby="orders-count">
<p id="orders-count" class="count">{count} order{plural}{more}</p>
<div class="scroll"><table id="orders-table">
<caption class="visually-hidden">Service orders, most recently changed first</caption>
<thead><tr><th scope="col">Order</th><th scope="col">externalId</th><th scope="col">State</th><th scope="col">Items</th><th scope="col">Events</th><th scope="col">Last update</th><th scope="col">Anomalies</th></tr></thead>
<tbody>"#,
        count = orders.len(),
        plural = if orders.len() == 1 { "" } else { "s" },
        more = if orders.len() == LIST_LIMIT {
            " (the most recent; narrow the filter to see others)"
        } else {
            ""
        },
    );
    for order in &orders {
        let stuck =
            order.state.is_none_or(|state| !state.is_final()) && order.updated_at < stuck_before;
        let anomalies = if order.anomaly_count > 0 {
            format!(
                r#"<span class="flag anomaly">⚠ {} anomal{}</span>"#,
                order.anomaly_count,
                if order.anomaly_count == 1 { "y" } else { "ies" }
            )
        } else {
            "<span class=\"muted\">none</span>".to_owned()
        };
        let _ = write!(
            content,
            r#"<tr data-order-id="{id}" data-state="{state}"><th scope="row"><a href="/console/orders/{href}">{id}</a></th><td>{external}</td><td>{badge}{stuck}</td><td>{items}</td><td>{events}</td><td>{updated} <span class="muted">({ago} ago)</span></td><td>{anomalies}</td></tr>"#,
            id = esc(order.id.as_str()),
            state = order.state.map_or("", OrderState::as_str),
            href = esc(&path_segment(order.id.as_str())),
            external = esc(order.external_id.as_deref().unwrap_or("—")),
            badge = state_badge(order.state),
            stuck = if stuck {
                r#" <span class="flag stuck">stuck</span>"#
            } else {
                ""
            },
            items = order.item_count,
            events = order.event_count,
            updated = time(order.updated_at),
            ago = duration(now - order.updated_at),
        );
    }
    if orders.is_empty() {
        content.push_str(r#"<tr><td colspan="7">No order matches.</td></tr>"#);
    }
    content.push_str("</tbody></table></div></section>");
    Ok(html(
        StatusCode::OK,
        page(
            &Layout {
                title: "Service orders",
                nav: Nav::Orders,
                csrf: &session.csrf,
                live: Live::Stream { since },
            },
            &content,
        ),
    ))
}

/// A JSON body pretty-printed for a `<pre>`, or as received when it is not JSON.
fn pretty(body: &Bytes) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

/// One row of a state timeline: when, which state, and how long after the previous state.
struct Step<'a> {
    at: DateTime<Utc>,
    state: OrderState,
    event_id: &'a EventId,
    anomaly: Option<(OrderState, OrderState)>,
}

fn timeline_table(
    caption: &str,
    steps: &[Step<'_>],
    event_anchor: &BTreeMap<&EventId, usize>,
) -> String {
    let mut table = format!(
        r#"<table class="timeline"><caption>{}</caption>
<thead><tr><th scope="col">eventDate</th><th scope="col">State</th><th scope="col">After previous</th><th scope="col">Event</th></tr></thead><tbody>"#,
        esc(caption)
    );
    let mut previous: Option<DateTime<Utc>> = None;
    for step in steps {
        let after = previous.map_or_else(|| "—".to_owned(), |before| duration(step.at - before));
        previous = Some(step.at);
        let (class, note) = match step.anomaly {
            Some((from, to)) => (
                r#" class="anomaly""#,
                format!(
                    r#" <strong class="flag anomaly">⚠ unexpected: {} → {}</strong>"#,
                    from.as_str(),
                    to.as_str()
                ),
            ),
            None => ("", String::new()),
        };
        let event = match event_anchor.get(step.event_id) {
            Some(index) => format!(
                r##"<a href="#event-{index}">{}</a>"##,
                esc(step.event_id.as_str())
            ),
            None => esc(step.event_id.as_str()),
        };
        let _ = write!(
            table,
            "<tr{class}><td>{}</td><td>{}{note}</td><td>{after}</td><td>{event}</td></tr>",
            time(step.at),
            state_badge(Some(step.state)),
        );
    }
    if steps.is_empty() {
        table.push_str(r#"<tr><td colspan="4">No state given yet.</td></tr>"#);
    }
    table.push_str("</tbody></table>");
    table
}

/// The order page's live part: summary, timelines and events.
fn order_content(order: &ServiceOrder, bodies: &BTreeMap<EventId, (EventRecord, Bytes)>) -> String {
    let mut content = String::new();
    let _ = write!(
        content,
        r#"<section id="order-live" data-live aria-label="Order details">
<dl class="summary">
<div><dt>Order id</dt><dd id="order-id">{id}</dd></div>
<div><dt>State</dt><dd>{state}</dd></div>
<div><dt>externalId</dt><dd>{external}</dd></div>
<div><dt>orderDate</dt><dd>{order_date}</dd></div>
<div><dt>completionDateTime</dt><dd>{completion}</dd></div>
<div><dt>Last event</dt><dd>{last}</dd></div>
<div><dt>Events</dt><dd>{events}</dd></div>
<div><dt>Anomalies</dt><dd>{anomalies}</dd></div>
</dl>
"#,
        id = esc(order.id.as_str()),
        state = state_badge(order.state),
        external = esc(order.external_id.as_deref().unwrap_or("—")),
        order_date = esc(order.order_date.as_deref().unwrap_or("—")),
        completion = esc(order.completion_date_time.as_deref().unwrap_or("—")),
        last = time(order.last_event_date.as_datetime()),
        events = order.timeline.len(),
        anomalies = if order.anomalies.is_empty() {
            "none".to_owned()
        } else {
            format!(
                r#"<span class="flag anomaly">⚠ {}</span>"#,
                order.anomalies.len()
            )
        },
    );
    let anchors: BTreeMap<&EventId, usize> = order
        .timeline
        .iter()
        .enumerate()
        .map(|(index, entry)| (&entry.event_id, index))
        .collect();
    let anomaly_of = |event_id: &EventId, item: Option<&str>| {
        order.anomalies.iter().find_map(|anomaly| {
            let subject_matches = match (&anomaly.subject, item) {
                (AnomalySubject::Order, None) => true,
                (AnomalySubject::Item { item_id }, Some(item)) => item_id == item,
                _ => false,
            };
            (subject_matches && &anomaly.event_id == event_id).then_some((anomaly.from, anomaly.to))
        })
    };
    let order_steps: Vec<Step<'_>> = order
        .timeline
        .iter()
        .filter_map(|entry| {
            entry.facts.state.map(|state| Step {
                at: entry.event_date.as_datetime(),
                state,
                event_id: &entry.event_id,
                anomaly: anomaly_of(&entry.event_id, None),
            })
        })
        .collect();
    content.push_str(r#"<h2>Timeline of the order</h2>"#);
    content.push_str(&timeline_table(
        "The order's state at each event, by eventDate",
        &order_steps,
        &anchors,
    ));
    content.push_str(r#"<h2>Items</h2>"#);
    for item in &order.items {
        let steps: Vec<Step<'_>> = order
            .timeline
            .iter()
            .flat_map(|entry| {
                entry
                    .facts
                    .items
                    .iter()
                    .filter(|fact| fact.id == item.id)
                    .filter_map(move |fact| fact.state.map(|state| (entry, state)))
            })
            .map(|(entry, state)| Step {
                at: entry.event_date.as_datetime(),
                state,
                event_id: &entry.event_id,
                anomaly: anomaly_of(&entry.event_id, Some(&item.id)),
            })
            .collect();
        let _ = write!(
            content,
            r#"<h3>Item {} {}{}</h3>"#,
            esc(&item.id),
            state_badge(item.state),
            item.action
                .as_deref()
                .map(|action| format!(r#" <span class="muted">({})</span>"#, esc(action)))
                .unwrap_or_default()
        );
        content.push_str(&timeline_table(
            &format!("Item {}: its state at each event", item.id),
            &steps,
            &anchors,
        ));
    }
    if order.items.is_empty() {
        content.push_str("<p>No items known.</p>");
    }
    content.push_str(r#"<h2>Events</h2><ol class="events">"#);
    for (index, entry) in order.timeline.iter().enumerate() {
        let anomalous = order
            .anomalies
            .iter()
            .any(|anomaly| anomaly.event_id == entry.event_id);
        let (received, body) = match bodies.get(&entry.event_id) {
            Some((record, body)) => (
                format!(" · received {}", time(record.received_at)),
                pretty(body),
            ),
            None => (String::new(), "(body not loaded)".to_owned()),
        };
        let _ = write!(
            content,
            r#"<li id="event-{index}" data-event-id="{id}"{class}><details id="event-details-{index}"><summary>{date} · {kind} · <code>{id}</code>{received}{flag}</summary><pre>{body}</pre></details></li>"#,
            id = esc(entry.event_id.as_str()),
            class = if anomalous { r#" class="anomaly""# } else { "" },
            date = time(entry.event_date.as_datetime()),
            kind = esc(entry.event_type.as_str()),
            flag = if anomalous {
                r#" <strong class="flag anomaly">⚠ anomaly</strong>"#
            } else {
                ""
            },
            body = esc(&body),
        );
    }
    content.push_str("</ol></section>");
    content
}

/// The most events whose bodies an order page loads.
const ORDER_BODIES_LIMIT: usize = 500;

/// An order's page: its timeline and each item's, and every event's raw JSON.
pub(super) async fn order(
    State(app): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Path(order_id): Path<String>,
) -> PageResult {
    let session = session_or_login(&app, &headers, &uri)?;
    let since = committed(&app).await?;
    let missing = || ApiError::NotFound(format!("/console/orders/{order_id}")).into_response();
    let id: OrderId = order_id.parse().map_err(|_| missing())?;
    let order = app
        .store
        .order(&id)
        .await
        .map_err(store_error)?
        .ok_or_else(missing)?;
    let mut bodies = BTreeMap::new();
    for entry in order.timeline.iter().rev().take(ORDER_BODIES_LIMIT) {
        if let Some(found) = app
            .store
            .event(&entry.event_id)
            .await
            .map_err(store_error)?
        {
            bodies.insert(entry.event_id.clone(), found);
        }
    }
    let mut content = String::from(r#"<p><a href="/console/orders">← All orders</a></p>"#);
    content.push_str(&order_content(&order, &bodies));
    let title = format!("Service order {}", order.id.as_str());
    Ok(html(
        StatusCode::OK,
        page(
            &Layout {
                title: &title,
                nav: Nav::Orders,
                csrf: &session.csrf,
                live: Live::Order {
                    since,
                    order_id: order.id.as_str(),
                },
            },
            &content,
        ),
    ))
}

/// `GET /console/events` parameters.
#[derive(Debug, Default, Deserialize)]
pub(super) struct EventsQuery {
    #[serde(rename = "type")]
    event_type: Option<String>,
}

/// The latest events, filtered by type, each with its raw JSON.
pub(super) async fn events(
    State(app): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<EventsQuery>,
) -> PageResult {
    let session = session_or_login(&app, &headers, &uri)?;
    let since = committed(&app).await?;
    let event_type = match query.event_type.as_deref().filter(|text| !text.is_empty()) {
        None => None,
        Some(text) => Some(
            text.parse::<EventType>()
                .map_err(|problem| invalid("type", problem))?,
        ),
    };
    let records = app
        .store
        .events(EventFilter {
            event_type,
            limit: EVENTS_LIMIT,
            ..EventFilter::default()
        })
        .await
        .map_err(store_error)?;
    let mut options = String::from(r#"<option value="">any type</option>"#);
    for candidate in EventType::ALL {
        let selected = if Some(candidate) == event_type {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            options,
            r#"<option value="{0}"{selected}>{0}</option>"#,
            candidate.as_str()
        );
    }
    let mut content = format!(
        r#"<form method="get" action="/console/events" class="filters" role="search" aria-label="Filter events">
<div><label for="type">Event type</label><select id="type" name="type">{options}</select></div>
<div><button type="submit">Filter</button> <a href="/console/events">Clear</a></div>
</form>
<section id="events-live" data-live aria-label="Latest events">
<p class="count">The latest {count} event{plural}, newest first. Expand one for its raw JSON.</p>
<div class="scroll"><table id="events-table">
<caption class="visually-hidden">Latest events</caption>
<thead><tr><th scope="col">#</th><th scope="col">Received</th><th scope="col">Type</th><th scope="col">Order</th><th scope="col">Event</th><th scope="col">Client</th></tr></thead>
<tbody>"#,
        count = records.len(),
        plural = if records.len() == 1 { "" } else { "s" },
    );
    for record in &records {
        let body = app
            .store
            .event(&record.event_id)
            .await
            .map_err(store_error)?
            .map(|(_, body)| pretty(&body))
            .unwrap_or_default();
        let order = record.order_id.as_ref().map_or_else(
            || "—".to_owned(),
            |order| {
                format!(
                    r#"<a href="/console/orders/{}">{}</a>"#,
                    esc(&path_segment(order.as_str())),
                    esc(order.as_str())
                )
            },
        );
        let _ = write!(
            content,
            r#"<tr data-event-id="{id}"><td>{sequence}</td><td>{received}</td><td>{kind}</td><td>{order}</td><td><details id="raw-{sequence}"><summary><code>{id}</code></summary><pre>{body}</pre><p><a href="/api/v1/events/{href}?raw=true">Raw body as received</a></p></details></td><td>{client}</td></tr>"#,
            id = esc(record.event_id.as_str()),
            sequence = record.sequence,
            received = time(record.received_at),
            kind = esc(record.event_type.as_str()),
            href = esc(&path_segment(record.event_id.as_str())),
            body = esc(&body),
            client = esc(record.client.as_deref().unwrap_or("—")),
        );
    }
    if records.is_empty() {
        content.push_str(r#"<tr><td colspan="6">No events yet.</td></tr>"#);
    }
    content.push_str("</tbody></table></div></section>");
    Ok(html(
        StatusCode::OK,
        page(
            &Layout {
                title: "Events",
                nav: Nav::Events,
                csrf: &session.csrf,
                live: Live::Stream { since },
            },
            &content,
        ),
    ))
}

/// Every configured sink and every sink with an outbox, by name.
async fn all_sinks(app: &AppState) -> Result<Vec<SinkStatus>, Response> {
    let mut statuses = app.store.sink_statuses().await.map_err(store_error)?;
    for name in app.sinks.iter() {
        if !statuses.iter().any(|status| &status.name == name) {
            statuses.push(SinkStatus {
                name: name.clone(),
                pending: 0,
                delivered: 0,
                dead: 0,
                failing: 0,
                oldest_pending_at: None,
                disabled: None,
            });
        }
    }
    statuses.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(statuses)
}

/// `GET /console/sinks` parameters: what the last retry did.
#[derive(Debug, Default, Deserialize)]
pub(super) struct SinksQuery {
    retried: Option<String>,
    missing: Option<String>,
}

/// Each sink's outbox and dead letters, with a retry button per dead letter.
pub(super) async fn sinks(
    State(app): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<SinksQuery>,
) -> PageResult {
    let session = session_or_login(&app, &headers, &uri)?;
    let statuses = all_sinks(&app).await?;
    let mut content = String::new();
    if let Some(id) = &query.retried {
        let _ = write!(
            content,
            r#"<p class="notice" role="status" id="retry-result">Delivery {} is queued again.</p>"#,
            esc(id)
        );
    }
    if let Some(id) = &query.missing {
        let _ = write!(
            content,
            r#"<p class="error" role="alert" id="retry-result">Delivery {} is not a dead letter (any more).</p>"#,
            esc(id)
        );
    }
    let _ = write!(
        content,
        r#"<section id="sinks-live" data-live aria-labelledby="outboxes">
<h2 id="outboxes">Outboxes</h2>
<div class="scroll"><table id="sinks-table">
<caption class="visually-hidden">Each sink's outbox</caption>
<thead><tr><th scope="col">Sink</th><th scope="col">Outbox depth (pending)</th><th scope="col">Failing</th><th scope="col">Delivered</th><th scope="col">Dead letters</th><th scope="col">Oldest pending</th><th scope="col">Status</th></tr></thead><tbody>"#
    );
    for status in &statuses {
        let state = match &status.disabled {
            Some((at, reason)) => format!(
                r#"<span class="flag anomaly">disabled {} ({})</span>"#,
                time(*at),
                esc(reason)
            ),
            None if !app.sinks.contains(&status.name) => "not configured".to_owned(),
            None => "enabled".to_owned(),
        };
        let _ = write!(
            content,
            r#"<tr data-sink="{name}"><th scope="row">{name}</th><td>{pending}</td><td>{failing}</td><td>{delivered}</td><td>{dead}</td><td>{oldest}</td><td>{state}</td></tr>"#,
            name = esc(&status.name),
            pending = status.pending,
            failing = status.failing,
            delivered = status.delivered,
            dead = status.dead,
            oldest = status
                .oldest_pending_at
                .map(time)
                .unwrap_or_else(|| "—".into()),
        );
    }
    if statuses.is_empty() {
        content.push_str(r#"<tr><td colspan="7">No sink is configured ([sinks.NAME] in the configuration).</td></tr>"#);
    }
    content.push_str("</tbody></table></div>");
    for status in statuses.iter().filter(|status| status.dead > 0) {
        let letters = app
            .store
            .dead_letters(Some(status.name.clone()), None, DEAD_LETTERS_LIMIT)
            .await
            .map_err(store_error)?;
        let _ = write!(
            content,
            r#"<h2>Dead letters of {name}</h2>
<div class="scroll"><table class="dead-letters" data-sink="{name}">
<caption class="visually-hidden">Dead letters of {name}, newest first</caption>
<thead><tr><th scope="col">Delivery</th><th scope="col">Event</th><th scope="col">Type</th><th scope="col">Order</th><th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col">Queued</th><th scope="col">Action</th></tr></thead><tbody>"#,
            name = esc(&status.name),
        );
        for letter in &letters {
            let order = letter.order_id.as_ref().map_or_else(
                || "—".to_owned(),
                |order| {
                    format!(
                        r#"<a href="/console/orders/{}">{}</a>"#,
                        esc(&path_segment(order.as_str())),
                        esc(order.as_str())
                    )
                },
            );
            let _ = write!(
                content,
                r#"<tr data-delivery-id="{id}" data-event-id="{event}"><td>{id}</td><td><code>{event}</code></td><td>{kind}</td><td>{order}</td><td>{attempts}</td><td>{error}</td><td>{queued}</td><td><form method="post" action="/console/dead-letters/{id}/retry"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" aria-label="Retry delivery {id} of event {event}">Retry</button></form></td></tr>"#,
                id = letter.id,
                event = esc(letter.event_id.as_str()),
                kind = esc(letter.event_type.as_str()),
                attempts = letter.attempts,
                error = esc(letter.last_error.as_deref().unwrap_or("—")),
                queued = time(letter.created_at),
                csrf = esc(&session.csrf),
            );
        }
        content.push_str("</tbody></table></div>");
        if status.dead as usize > letters.len() {
            let _ = write!(
                content,
                r#"<p class="hint">The newest {} of {}; <code>order-listener dead-letters retry --sink {}</code> retries them all.</p>"#,
                letters.len(),
                status.dead,
                esc(&status.name)
            );
        }
    }
    content.push_str("</section>");
    Ok(html(
        StatusCode::OK,
        page(
            &Layout {
                title: "Sinks",
                nav: Nav::Sinks,
                csrf: &session.csrf,
                live: Live::Poll,
            },
            &content,
        ),
    ))
}

/// The chart's colour and short name for each event type.
fn type_style(event_type: EventType) -> (&'static str, &'static str) {
    match event_type {
        EventType::ServiceOrderCreation => ("#1d4ed8", "creation"),
        EventType::ServiceOrderStateChange => ("#047857", "order state"),
        EventType::ServiceOrderItemStateChange => ("#b45309", "item state"),
        EventType::ServiceCreation => ("#7c3aed", "service created"),
        EventType::ServiceAttributeValueChange => ("#be185d", "service changed"),
        EventType::ServiceRemove => ("#374151", "service removed"),
    }
}

/// Events per minute by type as stacked bars, with a legend and the numbers in a table.
fn chart(now: DateTime<Utc>, counts: &[crate::store::MinuteCount]) -> String {
    let first_minute = now.timestamp() / 60 - (CHART_MINUTES - 1);
    let mut per_minute: BTreeMap<i64, BTreeMap<EventType, u64>> = BTreeMap::new();
    let mut types = BTreeSet::new();
    for count in counts {
        let minute = count.minute.timestamp() / 60;
        if minute >= first_minute {
            *per_minute
                .entry(minute)
                .or_default()
                .entry(count.event_type)
                .or_default() += count.count;
            types.insert(count.event_type);
        }
    }
    let highest = per_minute
        .values()
        .map(|by_type| by_type.values().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let (width, height, left, bottom) = (640.0_f64, 180.0_f64, 40.0_f64, 20.0_f64);
    let bar = (width - left) / CHART_MINUTES as f64;
    let plot = height - bottom - 10.0;
    let mut svg = format!(
        r##"<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">
<title id="chart-title">Events received per minute, by type</title>
<desc id="chart-desc">The last {CHART_MINUTES} minutes; at most {highest} events in one minute. The numbers are in the table below.</desc>
<line x1="{left}" y1="{base}" x2="{width}" y2="{base}" stroke="#374151"/>
<text x="{label_x}" y="14" font-size="11" text-anchor="end" fill="#1f2937">{highest}</text>
<text x="{label_x}" y="{base}" font-size="11" text-anchor="end" fill="#1f2937">0</text>
"##,
        base = height - bottom,
        label_x = left - 4.0,
    );
    for slot in 0..CHART_MINUTES {
        let minute = first_minute + slot;
        let x = left + slot as f64 * bar;
        let mut y = height - bottom;
        if let Some(by_type) = per_minute.get(&minute) {
            for (event_type, count) in by_type {
                let bar_height = plot * (*count as f64) / (highest as f64);
                y -= bar_height;
                let (colour, name) = type_style(*event_type);
                let _ = write!(
                    svg,
                    r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{bar_height:.1}" fill="{colour}"><title>{name}: {count}</title></rect>"#,
                    w = bar - 2.0,
                );
            }
        }
        if slot % 5 == 0 || slot == CHART_MINUTES - 1 {
            let label = DateTime::from_timestamp(minute * 60, 0)
                .map(|at| at.format("%H:%M").to_string())
                .unwrap_or_default();
            let (x, anchor) = if slot == CHART_MINUTES - 1 {
                (width - 2.0, "end")
            } else {
                (x, "start")
            };
            let _ = write!(
                svg,
                r##"<text x="{x:.1}" y="{y}" font-size="11" text-anchor="{anchor}" fill="#1f2937">{label}</text>"##,
                y = height - 4.0
            );
        }
    }
    svg.push_str("</svg>");
    let mut legend = String::from(r#"<ul class="legend">"#);
    for event_type in &types {
        let (colour, name) = type_style(*event_type);
        let _ = write!(
            legend,
            r#"<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill="{colour}"/></svg> {name} <span class="muted">({})</span></li>"#,
            event_type.as_str()
        );
    }
    if types.is_empty() {
        legend.push_str("<li>No events in the last 30 minutes.</li>");
    }
    legend.push_str("</ul>");
    let mut table = String::from(
        r#"<details><summary>The numbers</summary><table><caption class="visually-hidden">Events per minute by type</caption><thead><tr><th scope="col">Minute (UTC)</th><th scope="col">Type</th><th scope="col">Events</th></tr></thead><tbody>"#,
    );
    for (minute, by_type) in &per_minute {
        for (event_type, count) in by_type {
            let _ = write!(
                table,
                "<tr><td>{}</td><td>{}</td><td>{count}</td></tr>",
                DateTime::from_timestamp(minute * 60, 0)
                    .map(|at| at.format("%H:%M").to_string())
                    .unwrap_or_default(),
                event_type.as_str()
            );
        }
    }
    table.push_str("</tbody></table></details>");
    format!("{svg}{legend}{table}")
}

/// The overview: events per minute, answers and refusals by code, commit latency, outboxes.
pub(super) async fn overview(
    State(app): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> PageResult {
    let session = session_or_login(&app, &headers, &uri)?;
    let since = committed(&app).await?;
    let now = Utc::now();
    let counts = app
        .store
        .events_per_minute(now - TimeDelta::minutes(CHART_MINUTES))
        .await
        .map_err(store_error)?;
    let snapshot = app.metrics.snapshot();
    let statuses = all_sinks(&app).await?;
    let stuck_before = now - TimeDelta::from_std(app.console.stuck_after).unwrap_or(TimeDelta::MAX);
    let stuck = app
        .store
        .search_orders(OrderSearch {
            unchanged_before: Some(stuck_before),
            limit: 1000,
            ..OrderSearch::default()
        })
        .await
        .map_err(store_error)?
        .len();
    let anomalous = app
        .store
        .search_orders(OrderSearch {
            with_anomalies: true,
            limit: 1000,
            ..OrderSearch::default()
        })
        .await
        .map_err(store_error)?
        .len();
    let p99 = match snapshot.commit_p99_seconds {
        None => "no commit yet".to_owned(),
        Some(seconds) if seconds.is_infinite() => "over 4 s".to_owned(),
        Some(seconds) if seconds < 1.0 => format!("≤ {:.2} ms", seconds * 1000.0),
        Some(seconds) => format!("≤ {seconds:.2} s"),
    };
    let pending: u64 = statuses.iter().map(|status| status.pending).sum();
    let dead: u64 = statuses.iter().map(|status| status.dead).sum();
    let at_most = |count: usize| {
        if count >= 1000 {
            "1000 or more".to_owned()
        } else {
            count.to_string()
        }
    };
    let mut content = format!(
        r#"<section id="overview-live" data-live aria-label="Overview">
<ul class="tiles">
<li><span class="tile-label">p99 commit latency</span> <span class="tile-value" id="commit-p99">{p99}</span> <span class="muted">over {commits} commits since start</span></li>
<li><span class="tile-label">Stuck orders</span> <a class="tile-value" href="/console/orders?stuck=1">{stuck}</a></li>
<li><span class="tile-label">Orders with anomalies</span> <a class="tile-value" href="/console/orders?anomalies=1">{anomalous}</a></li>
<li><span class="tile-label">Outbox</span> <a class="tile-value" href="/console/sinks">{pending} pending, {dead} dead</a></li>
</ul>
<h2>Events received per minute</h2>
{chart}
"#,
        commits = snapshot.commits,
        stuck = at_most(stuck),
        anomalous = at_most(anomalous),
        chart = chart(now, &counts),
    );
    content.push_str(
        r#"<div class="columns"><div><h2>Refusals by error code</h2><table id="refusals"><caption class="visually-hidden">Callers refused, by error code</caption><thead><tr><th scope="col">Code</th><th scope="col">Count</th></tr></thead><tbody>"#,
    );
    for (code, count) in &snapshot.refusals_by_code {
        let _ = write!(content, "<tr><td>{code}</td><td>{count}</td></tr>");
    }
    if snapshot.refusals_by_code.is_empty() {
        content.push_str(r#"<tr><td colspan="2">None since start.</td></tr>"#);
    }
    content.push_str(
        r#"</tbody></table></div><div><h2>Listener API answers by status</h2><table id="answers"><caption class="visually-hidden">Listener API answers by HTTP status</caption><thead><tr><th scope="col">Status</th><th scope="col">Count</th></tr></thead><tbody>"#,
    );
    for (status, count) in &snapshot.answers_by_status {
        let class = if *status >= 400 {
            r#" class="anomaly""#
        } else {
            ""
        };
        let _ = write!(content, "<tr{class}><td>{status}</td><td>{count}</td></tr>");
    }
    if snapshot.answers_by_status.is_empty() {
        content.push_str(r#"<tr><td colspan="2">None since start.</td></tr>"#);
    }
    content.push_str("</tbody></table></div></div></section>");
    Ok(html(
        StatusCode::OK,
        page(
            &Layout {
                title: "Overview",
                nav: Nav::Overview,
                csrf: &session.csrf,
                live: Live::Stream { since },
            },
            &content,
        ),
    ))
}
