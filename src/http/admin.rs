//! The admin listener: health, and read-only queries of events and service orders, behind the
//! admin token. It is bound to its own address and never served on the public port.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::auth::generated::{bearer_token, secrets_match};
use super::error::{ApiError, JSON_UTF8};
use super::{AppState, method_not_allowed, not_found};
use crate::domain::envelope::{EventId, OrderId};
use crate::store::StoreError;

/// The admin port's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(live))
        .route("/readyz", get(ready))
        .route("/api/v1/events/{event_id}", get(event))
        .route("/api/v1/service-orders/{order_id}", get(service_order))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8))],
        body,
    )
        .into_response()
}

/// Answers while the process runs.
pub async fn live() -> Response {
    json(StatusCode::OK, br#"{"status":"ok"}"#.to_vec())
}

/// Answers 200 when the store answers and takes writes, 503 otherwise.
pub async fn ready(State(app): State<AppState>) -> Result<Response, ApiError> {
    app.store.ping().await?;
    Ok(json(StatusCode::OK, br#"{"status":"ready"}"#.to_vec()))
}

fn require_admin(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = bearer_token(headers)?.ok_or(ApiError::MissingCredentials)?;
    match &app.admin_token {
        Some(expected) if secrets_match(token, expected) => Ok(()),
        _ => Err(ApiError::InvalidCredentials),
    }
}

#[derive(Debug, Deserialize)]
struct EventQuery {
    #[serde(default)]
    raw: bool,
}

async fn event(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
    Query(query): Query<EventQuery>,
) -> Result<Response, ApiError> {
    require_admin(&app, &headers)?;
    let missing = || ApiError::NotFound(format!("/api/v1/events/{event_id}"));
    let id: EventId = event_id.parse().map_err(|_| missing())?;
    let (record, body) = app.store.event(&id).await?.ok_or_else(missing)?;
    if query.raw {
        return Ok(json(StatusCode::OK, body.to_vec()));
    }
    let event: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|error| ApiError::Store(StoreError::Internal(std::sync::Arc::new(error))))?;
    let mut document = serde_json::to_value(&record)
        .map_err(|error| ApiError::Store(StoreError::Internal(std::sync::Arc::new(error))))?;
    document["body"] = event;
    Ok(json(StatusCode::OK, document.to_string().into_bytes()))
}

async fn service_order(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
) -> Result<Response, ApiError> {
    require_admin(&app, &headers)?;
    let missing = || ApiError::NotFound(format!("/api/v1/service-orders/{order_id}"));
    let id: OrderId = order_id.parse().map_err(|_| missing())?;
    let order = app.store.order(&id).await?.ok_or_else(missing)?;
    let body = serde_json::to_vec(&order)
        .map_err(|error| ApiError::Store(StoreError::Internal(std::sync::Arc::new(error))))?;
    Ok(json(StatusCode::OK, body))
}
