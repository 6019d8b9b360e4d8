//! The console's pages, one module each: `overview`, `orders`, `order`, `suspects`, `events`
//! and `sinks`.
//!
//! Every handler tells the same story: the session (or a redirect to the login page), its query
//! parsed into typed values, what it shows read through `Store`, `Metrics` and
//! `http::outbox`, then its module's pure `render_*` function, which turns that plain data into
//! the whole page. Render functions do no IO, so their tests need no store and no server; every
//! value they show that came from a notification or the store goes through `html::esc`.

mod events;
mod order;
mod orders;
mod overview;
mod sinks;
mod suspects;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, TimeDelta, Utc};

use super::html::{Layout, Live, Nav, error_page, page};
use super::respond::{html, session_or_login};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::store::Cursor;

/// The pages' routes, merged into the console's router.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/", get(overview::show))
        .route("/console/orders", get(orders::show))
        .route("/console/orders/{order_id}", get(order::show))
        .route("/console/suspects", get(suspects::show))
        .route("/console/events", get(events::show))
        .route("/console/sinks", get(sinks::show))
        .route(
            "/console/dead-letters/{id}/retry",
            post(sinks::retry_dead_letter),
        )
}

/// A page, or the response that stands for it (a redirect to the login page, an error).
type PageResult = Result<Response, Response>;

/// A page that cannot be shown, with the admin API's status and message, as an HTML page: a
/// query that does not read, an unknown order, a failure of the store or the outbox overview.
fn failed(error: impl Into<ApiError>) -> Response {
    let error = error.into();
    let status = error.status();
    let title = status.canonical_reason().unwrap_or("Error");
    html(status, error_page(title, &error.message()))
}

/// A query parameter that does not read, as the admin API words it (400/28).
fn invalid(name: &'static str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidQuery {
        name,
        problem: problem.to_string(),
    }
}

/// Who reads a live page: what every page's layout needs of the session and the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reader {
    /// The session's CSRF token, for the page's forms (logout, retry).
    pub csrf: String,
    /// The stream's position when the page was read, where its live updates start.
    pub since: Cursor,
}

impl Reader {
    /// A page that follows the stream from where this reader read it.
    fn stream_page(&self, title: &str, nav: Nav, content: &str) -> String {
        page(
            &Layout {
                title,
                nav,
                csrf: &self.csrf,
                live: Live::Stream { since: self.since },
            },
            content,
        )
    }

    /// A reader with the CSRF token `csrf-token` at stream position `sequence`, for tests.
    #[cfg(test)]
    fn at(sequence: i64) -> Reader {
        Reader {
            csrf: "csrf-token".to_owned(),
            since: Cursor { tx: 0, sequence },
        }
    }
}

/// The request's session and the stream's position now, or the redirect to the login page.
async fn reader(app: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Reader, Response> {
    let session = session_or_login(app, headers, uri)?;
    let since = app.store.stream_head().await.map_err(failed)?;
    Ok(Reader {
        csrf: session.csrf,
        since,
    })
}

/// A filter form's field, unless it is empty: an empty choice means "any".
fn chosen(field: Option<&str>) -> Option<&str> {
    field.filter(|text| !text.is_empty())
}

/// The instant before which a non-final order that has not changed counts as stuck.
fn stuck_before(now: DateTime<Utc>, stuck_after: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(stuck_after)
        .ok()
        .and_then(|span| now.checked_sub_signed(span))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A JSON body pretty-printed for a `<pre>`, or as received when it is not JSON.
fn pretty(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

/// A rendered page, answered 200.
fn ok(page: String) -> Response {
    html(StatusCode::OK, page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_pretty_printed_when_they_are_json_and_shown_as_received_otherwise() {
        assert_eq!(pretty(br#"{"a":1}"#), "{\n  \"a\": 1\n}");
        assert_eq!(pretty(b"not json <b>"), "not json <b>");
    }

    #[test]
    fn an_empty_choice_means_any() {
        assert_eq!(chosen(Some("")), None);
        assert_eq!(chosen(None), None);
        assert_eq!(chosen(Some("held")), Some("held"));
    }

    #[test]
    fn a_stuck_limit_too_long_to_subtract_counts_nothing_as_stuck() {
        let now = Utc::now();
        assert_eq!(
            stuck_before(now, Duration::from_secs(60)),
            now - TimeDelta::seconds(60)
        );
        assert_eq!(stuck_before(now, Duration::MAX), DateTime::<Utc>::MIN_UTC);
    }
}
