//! The admin listener: health, read-only queries of events and service orders, and the outbox
//! (sink status, dead letters and their retry, enabling a sink again), behind the admin token
//! (reads also take a console session cookie: see `console`);
//! the event stream (`stream.rs`); and `/metrics`, without a token so that Prometheus can
//! scrape it. It is bound to its own address and never served on the public port. Outbox
//! changes only write the store; the delivery worker does the sending.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::auth::generated::bearer_token;
use super::error::ApiError;
use super::outbox::{self, Retry, SinkOverview};
use super::query::{ApiQuery, Parameters, invalid, parse_instant, parse_limit, parse_range};
use super::{AppState, json, method_not_allowed, not_found};
use crate::domain::envelope::{Dialect, EventId, EventType, OrderId};
use crate::domain::routing::SinkName;
use crate::domain::state::State as OrderState;
use crate::metrics::OutboxGauges;
use crate::store::{EventFilter, OrderCursor, OrderFilter, TimeField};

/// The admin port's routes.
pub(crate) fn router(state: AppState) -> Router {
    // Every API route checks its credentials before anything of the request is read: reads
    // take the admin token or a console session, changes the admin token only.
    let api = Router::new()
        .route("/api/v1/events", get(events))
        .route("/api/v1/events/{event_id}", get(event))
        .route("/api/v1/service-orders", get(service_orders))
        .route("/api/v1/service-orders/{order_id}", get(service_order))
        .route("/api/v1/stream", get(super::stream::stream))
        .merge(outbox_routes())
        .merge(super::reconcile::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ));
    Router::new()
        .route("/healthz", get(live))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(admin_document(&state)))
        .merge(api)
        .merge(super::console::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The handler of `/api/v1/openapi.json`: the admin document, naming the admin listener as
/// clients reach it.
fn admin_document(
    state: &AppState,
) -> impl Fn() -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    let server = state.admin_public_url.clone();
    super::serve_document(move || super::openapi::admin(&server))
}

/// Answers while the process runs.
pub(crate) async fn live() -> Response {
    json(StatusCode::OK, br#"{"status":"ok"}"#.to_vec())
}

/// Answers 200 when the store answers and takes writes, 503 otherwise.
pub(crate) async fn ready(State(app): State<AppState>) -> Result<Response, ApiError> {
    app.store.ping().await?;
    Ok(json(StatusCode::OK, br#"{"status":"ready"}"#.to_vec()))
}

/// The API routes' layer: a read needs the admin token or a console session
/// ([`require_reader`]), anything else the admin token ([`require_admin`]).
async fn authenticate(
    State(app): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<Response, ApiError> {
    if request.method() == axum::http::Method::GET || request.method() == axum::http::Method::HEAD {
        require_reader(&app, request.headers())?;
    } else {
        require_admin(&app, request.headers())?;
    }
    Ok(next.run(request).await)
}

/// Refuses the call unless it carries the admin token.
pub(super) fn require_admin(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = bearer_token(headers)
        .map_err(|_| ApiError::InvalidCredentials)?
        .ok_or(ApiError::MissingCredentials)?;
    match &app.admin_token {
        Some(expected) if expected.matches(token) => Ok(()),
        _ => Err(ApiError::InvalidCredentials),
    }
}

/// Lets a read through with the admin token, or with a console session cookie when no
/// `Authorization` header is sent (a browser's EventSource cannot send one). Routes that change
/// something use [`require_admin`]: the console changes things through its own forms.
pub(super) fn require_reader(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if headers.get(header::AUTHORIZATION).is_none() && app.console.sessions.find(headers).is_some()
    {
        return Ok(());
    }
    require_admin(app, headers)
}

#[derive(Debug, Deserialize)]
struct EventQuery {
    #[serde(default)]
    raw: bool,
}

impl Parameters for EventQuery {}

async fn event(
    State(app): State<AppState>,
    Path(event_id): Path<String>,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> Result<Response, ApiError> {
    let missing = || ApiError::NotFound(format!("/api/v1/events/{event_id}"));
    let id: EventId = event_id.parse().map_err(|_| missing())?;
    let (record, body) = app.store.event(&id).await?.ok_or_else(missing)?;
    if query.raw {
        return Ok(json(StatusCode::OK, body.to_vec()));
    }
    let event: serde_json::Value = serde_json::from_slice(&body).map_err(ApiError::internal)?;
    let mut document = serde_json::to_value(&record).map_err(ApiError::internal)?;
    document["body"] = event;
    document["deliveries"] = deliveries_of(&app, &id).await?;
    Ok(json(StatusCode::OK, document.to_string().into_bytes()))
}

/// `GET /api/v1/events` parameters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventsQuery {
    dialect: Option<String>,
    event_type: Option<String>,
    order_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// `eventDate` (default) or `receivedAt`: what `since` and `until` compare.
    time: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl Parameters for EventsQuery {}

/// A page's `cursor`: the positive whole number an earlier page gave as `nextCursor`, in
/// digits only (no sign, no leading zero), as the OpenAPI document's pattern says.
fn parse_cursor(text: &str) -> Result<i64, ApiError> {
    Some(text)
        .filter(|text| text.bytes().all(|byte| byte.is_ascii_digit()) && !text.starts_with('0'))
        .and_then(|text| text.parse::<i64>().ok())
        .filter(|cursor| *cursor > 0)
        .ok_or_else(|| invalid("cursor", "must be a nextCursor from an earlier page"))
}

/// Stored events, newest first, a page at a time: `nextCursor` is set when there may be more.
async fn events(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let limit = parse_limit(query.limit.as_deref())?;
    let event_type = query
        .event_type
        .as_deref()
        .map(|text| {
            text.parse::<EventType>()
                .map_err(|problem| invalid("eventType", problem))
        })
        .transpose()?;
    let order_id = query
        .order_id
        .as_deref()
        .map(|text| {
            text.parse::<OrderId>()
                .map_err(|_| invalid("orderId", "is not a service order id"))
        })
        .transpose()?;
    let dialect = query
        .dialect
        .as_deref()
        .map(|text| {
            text.parse::<Dialect>()
                .map_err(|problem| invalid("dialect", problem))
        })
        .transpose()?;
    let time = match query.time.as_deref() {
        None | Some("eventDate") => TimeField::EventDate,
        Some("receivedAt") => TimeField::ReceivedAt,
        Some(other) => {
            return Err(invalid(
                "time",
                format!("must be eventDate or receivedAt (got {other:?})"),
            ));
        }
    };
    let before_sequence = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let (since, until) = parse_range(query.since.as_deref(), query.until.as_deref())?;
    let records = app
        .store
        .events(EventFilter {
            event_type,
            order_id,
            dialect,
            before_sequence,
            since,
            until,
            time,
            limit,
        })
        .await?;
    let next_cursor = (records.len() == limit)
        .then(|| records.last().map(|record| record.sequence.to_string()))
        .flatten();
    let body = serde_json::to_vec(&serde_json::json!({
        "items": records,
        "nextCursor": next_cursor,
    }))
    .map_err(ApiError::internal)?;
    Ok(json(StatusCode::OK, body))
}

/// `GET /api/v1/service-orders` parameters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrdersQuery {
    state: Option<String>,
    external_id: Option<String>,
    updated_since: Option<String>,
    anomalies: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl Parameters for OrdersQuery {}

/// Service orders, most recently changed first (then by id), a page at a time: `nextCursor` is
/// the place of the last order of a full page (`OrderCursor`, which says what a walk sees of
/// the orders changed while it goes).
async fn service_orders(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<OrdersQuery>,
) -> Result<Response, ApiError> {
    let state = query
        .state
        .as_deref()
        .map(|text| {
            text.parse::<OrderState>()
                .map_err(|_| invalid("state", format!("is not a TMF641 state (got {text:?})")))
        })
        .transpose()?;
    let with_anomalies = match query.anomalies.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(invalid(
                "anomalies",
                format!("must be true or false (got {other:?})"),
            ));
        }
    };
    let after = query
        .cursor
        .as_deref()
        .map(|text| {
            text.parse::<OrderCursor>()
                .map_err(|_| invalid("cursor", "must be a nextCursor from an earlier page"))
        })
        .transpose()?;
    let limit = parse_limit(query.limit.as_deref())?;
    let orders = app
        .store
        .orders(OrderFilter {
            state,
            with_anomalies,
            external_id: query.external_id,
            updated_since: parse_instant("updatedSince", query.updated_since.as_deref())?,
            after,
            limit,
            ..OrderFilter::default()
        })
        .await?;
    let next_cursor = (orders.len() == limit)
        .then(|| {
            orders
                .last()
                .map(|order| OrderCursor::after(order).to_string())
        })
        .flatten();
    let body = serde_json::json!({ "items": orders, "nextCursor": next_cursor });
    Ok(json(StatusCode::OK, to_body(&body)?))
}

async fn service_order(
    State(app): State<AppState>,
    Path(order_id): Path<String>,
) -> Result<Response, ApiError> {
    let missing = || ApiError::NotFound(format!("/api/v1/service-orders/{order_id}"));
    let id: OrderId = order_id.parse().map_err(|_| missing())?;
    let order = app.store.order(&id).await?.ok_or_else(missing)?;
    let document = super::reconcile::order_document(&app, &order)?;
    let body = serde_json::to_vec(&document).map_err(ApiError::internal)?;
    Ok(json(StatusCode::OK, body))
}

/// Prometheus metrics as OpenMetrics text. No admin token: scrapers seldom carry one, and the
/// admin port is internal. The outbox and suspect gauges are read from the store now; when it
/// does not answer they are left out and the rest is still served.
async fn metrics(State(app): State<AppState>) -> Response {
    let sinks = match app.store.sink_statuses().await {
        Ok(sinks) => Some(sinks.iter().map(OutboxGauges::from).collect::<Vec<_>>()),
        Err(error) => {
            tracing::warn!(error = %crate::telemetry::error_chain(&error), "metrics: cannot read the outbox");
            None
        }
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
        )],
        app.metrics.render_with(
            sinks.as_deref(),
            super::reconcile::suspect_gauges(&app).await.as_deref(),
        ),
    )
        .into_response()
}

/// The outbox's routes: sink status, dead letters, and the changes an operator makes to them.
fn outbox_routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sinks", get(sinks))
        .route("/api/v1/sinks/{name}/enable", post(enable_sink))
        .route("/api/v1/dead-letters", get(dead_letters))
        .route("/api/v1/dead-letters/{id}/retry", post(retry_dead_letter))
}

fn to_body(value: &impl serde::Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(ApiError::internal)
}

/// An event's deliveries, to every sink, without bodies.
async fn deliveries_of(app: &AppState, id: &EventId) -> Result<serde_json::Value, ApiError> {
    let deliveries = app.store.deliveries_of(id).await?;
    serde_json::to_value(&deliveries).map_err(ApiError::internal)
}

/// A sink as the API shows it: the disabled mark as an object, not a pair.
fn sink_json(sink: &SinkOverview) -> serde_json::Value {
    let status = &sink.status;
    serde_json::json!({
        "name": status.name,
        "pending": status.pending,
        "delivered": status.delivered,
        "dead": status.dead,
        "failing": status.failing,
        "oldestPendingAt": status.oldest_pending_at,
        "disabled": status.disabled.as_ref().map(|(at, reason)| {
            serde_json::json!({ "at": at, "reason": reason })
        }),
        "configured": sink.configured,
    })
}

/// Every configured sink, and every sink that has an outbox or is disabled.
async fn sinks(State(app): State<AppState>) -> Result<Response, ApiError> {
    let items: Vec<serde_json::Value> = outbox::sink_overview(&app)
        .await?
        .iter()
        .map(sink_json)
        .collect();
    Ok(json(
        StatusCode::OK,
        to_body(&serde_json::json!({ "items": items }))?,
    ))
}

/// Clears a configured sink's 410 mark; its worker resumes within a second. A sink the
/// configuration does not name is a 404: it has no worker to resume.
async fn enable_sink(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let sink: SinkName = name
        .parse()
        .map_err(|_| ApiError::NotFound(format!("/api/v1/sinks/{name}/enable")))?;
    if !app.sinks.load().contains(&sink) {
        return Err(ApiError::UnknownSink(sink));
    }
    let was_disabled = app
        .store
        .sink_statuses()
        .await?
        .iter()
        .any(|status| status.name == sink && status.disabled.is_some());
    app.store.set_sink_disabled(&sink, None).await?;
    let body = serde_json::json!({ "name": sink.as_str(), "wasDisabled": was_disabled });
    Ok(json(StatusCode::OK, to_body(&body)?))
}

/// `GET /api/v1/dead-letters` parameters.
#[derive(Debug, Deserialize)]
struct DeadLettersQuery {
    sink: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl Parameters for DeadLettersQuery {}

/// Dead letters, newest first, a page at a time: `nextCursor` is the last id of a full page.
async fn dead_letters(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<DeadLettersQuery>,
) -> Result<Response, ApiError> {
    let limit = parse_limit(query.limit.as_deref())?;
    let sink = query
        .sink
        .as_deref()
        .map(|text| {
            text.parse::<SinkName>()
                .map_err(|problem| invalid("sink", problem))
        })
        .transpose()?;
    let before_id = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let letters = app
        .store
        .dead_letters(sink.as_ref(), before_id, limit)
        .await?;
    let next_cursor = (letters.len() == limit)
        .then(|| letters.last().map(|letter| letter.id.to_string()))
        .flatten();
    let body = serde_json::json!({ "items": letters, "nextCursor": next_cursor });
    Ok(json(StatusCode::OK, to_body(&body)?))
}

/// Queues one dead letter again: 202, since the worker delivers it later.
async fn retry_dead_letter(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let missing = || ApiError::NotFound(format!("/api/v1/dead-letters/{id}"));
    let row: i64 = id.parse().map_err(|_| missing())?;
    if outbox::retry_dead_letter(&app.store, row).await? == Retry::NotADeadLetter {
        return Err(missing());
    }
    let body = serde_json::json!({ "requeued": 1 });
    Ok(json(StatusCode::ACCEPTED, to_body(&body)?))
}
