//! The admin API's reconciliation routes (issue 14): `GET /api/v1/suspects`, the orders that
//! look incomplete and why, a page at a time; and `GET /api/v1/received`, the gap report a
//! seller compares with what it sent. Both only read the store; the rules are
//! `domain::suspect`'s, the queries `store::reconcile`'s. `/metrics` counts the suspects with
//! [`suspect_gauges`], and an order's own JSON lists its findings ([`order_document`]).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;

use super::error::ApiError;
use super::query::{ApiQuery, Parameters, invalid, parse_limit, parse_range};
use super::{AppState, json};
use crate::config::clients::ClientName;
use crate::domain::envelope::OrderId;
use crate::domain::projection::ServiceOrder;
use crate::domain::suspect::{self, Reason, Reasons};
use crate::metrics::SuspectGauge;
use crate::store::{ReceivedFilter, Sender, SuspectFilter};

/// The routes, behind the admin API's authentication layer.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/suspects", get(suspects))
        .route("/api/v1/received", get(received))
}

/// `GET /api/v1/suspects` parameters.
#[derive(Debug, Deserialize)]
struct SuspectsQuery {
    reason: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl Parameters for SuspectsQuery {}

/// Suspect orders in order id order, each with every reason it has; `nextCursor` (the last
/// order id) is set when the page is full.
async fn suspects(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<SuspectsQuery>,
) -> Result<Response, ApiError> {
    let reasons = match query.reason.as_deref() {
        None => Reasons::NONE,
        Some(text) => Reasons::NONE.with(
            text.parse::<Reason>()
                .map_err(|problem| invalid("reason", problem))?,
        ),
    };
    let after = query
        .cursor
        .as_deref()
        .map(|text| {
            text.parse::<OrderId>()
                .map_err(|_| invalid("cursor", "must be a nextCursor from an earlier page"))
        })
        .transpose()?;
    let limit = parse_limit(query.limit.as_deref())?;
    let items = app
        .store
        .suspects(SuspectFilter {
            reasons,
            stale_after: app.reconcile.stale_after,
            now: Utc::now(),
            after,
            limit,
        })
        .await?;
    let next_cursor = (items.len() == limit)
        .then(|| items.last().map(|item| item.order.id.to_string()))
        .flatten();
    let body = serde_json::json!({ "items": items, "nextCursor": next_cursor });
    Ok(json(
        StatusCode::OK,
        serde_json::to_vec(&body).map_err(ApiError::internal)?,
    ))
}

/// `GET /api/v1/received` parameters.
#[derive(Debug, Deserialize)]
struct ReceivedQuery {
    since: String,
    until: Option<String>,
    client: Option<String>,
}

impl Parameters for ReceivedQuery {
    fn form_of(name: &str) -> &'static str {
        match name {
            "since" => "RFC 3339 date",
            _ => "value",
        }
    }
}

/// The gap report: for `[since, until)` of receipt, the eventIds received from each sender (the
/// authenticated client, or the anonymous group) and their count, in receipt order. An `until`
/// given must be after `since`; without one, the range ends now.
async fn received(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ReceivedQuery>,
) -> Result<Response, ApiError> {
    let (since, until) = parse_range(Some(&query.since), query.until.as_deref())?;
    let since = since.unwrap_or_default();
    let until = until.unwrap_or_else(Utc::now);
    let sender = match query.client.as_deref() {
        None => None,
        Some("") => Some(Sender::Anonymous),
        Some(name) => Some(Sender::Client(
            name.parse::<ClientName>()
                .map_err(|error| invalid("client", format!("{error:#}")))?
                .as_str()
                .to_owned(),
        )),
    };
    let limit = app.reconcile.received_limit;
    let report = app
        .store
        .received(ReceivedFilter {
            since,
            until,
            sender,
            limit,
        })
        .await?;
    if report.over_limit {
        return Err(invalid(
            "until",
            format!(
                "the range holds more than {limit} events, the most one report lists \
                 (reconcile.received_limit): narrow since and until (or ask for one client) and \
                 ask for each part"
            ),
        ));
    }
    let total: u64 = report.senders.iter().map(|sender| sender.count).sum();
    let body = serde_json::json!({
        "since": since,
        "until": until,
        "total": total,
        "senders": report.senders,
    });
    Ok(json(
        StatusCode::OK,
        serde_json::to_vec(&body).map_err(ApiError::internal)?,
    ))
}

/// The suspect orders counted by reason now, for `/metrics`; `None` (logged) when the store
/// does not answer, so that the rest of the metrics are still served.
pub(super) async fn suspect_gauges(app: &AppState) -> Option<Vec<SuspectGauge>> {
    match app
        .store
        .suspect_counts(&app.reconcile.stale_after, Utc::now())
        .await
    {
        Ok(counts) => Some(
            counts
                .into_iter()
                .map(|(reason, orders)| SuspectGauge {
                    reason: reason.as_str(),
                    orders,
                })
                .collect(),
        ),
        Err(error) => {
            tracing::warn!(error = %crate::telemetry::error_chain(&error), "metrics: cannot count the suspect orders");
            None
        }
    }
}

/// An order's JSON: its projection, and `suspects`, every reason it is suspect now with what
/// shows it.
pub(super) fn order_document(
    app: &AppState,
    order: &ServiceOrder,
) -> Result<serde_json::Value, ApiError> {
    let mut document = serde_json::to_value(order).map_err(ApiError::internal)?;
    let findings = suspect::findings(order, Utc::now(), &app.reconcile.stale_after);
    document["suspects"] = serde_json::to_value(findings).map_err(ApiError::internal)?;
    Ok(document)
}
