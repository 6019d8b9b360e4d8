//! The web console, on the admin listener only: server-rendered pages of service orders,
//! events, sinks and an overview, with a little JavaScript (`console.js`) that follows the event
//! stream. Everything it serves is bundled into the binary.
//!
//! A login with the admin token (`login.rs`) starts a session (`session.rs`). The session cookie
//! is also accepted by the admin API's read routes (so that the page's EventSource can follow
//! `/api/v1/stream`), never by its POST routes: changes made from the console go through the
//! console's own forms, which carry the session's CSRF token and must come from the same origin.
//!
//! The console reads only through the same `Store` methods as the admin API (plus
//! `events_per_minute`) and `Metrics`; it never writes except to requeue a
//! dead letter, through the same `http::outbox::retry_dead_letter` as
//! `POST /api/v1/dead-letters/{id}/retry`.
//!
//! This module holds `Console`, the router and the bundled assets. `login.rs` lets people in
//! and out, each page is a module of `pages`, `respond.rs` holds the responses and checks they
//! all share, and `html.rs` the building blocks they render with.

mod html;
mod login;
mod pages;
mod respond;
pub(crate) mod session;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use self::session::{CookieSecurity, Sessions};
use super::AppState;
use crate::config::ConsoleConfig;

const CSS: &str = include_str!("console.css");
const JS: &str = include_str!("console.js");

/// The console's settings and sessions, shared by its handlers.
#[derive(Debug)]
pub(crate) struct Console {
    /// The live sessions.
    pub sessions: Sessions,
    /// How long a non-final order may stay unchanged before it is shown as stuck.
    pub stuck_after: Duration,
    /// Whether cookies are marked `Secure` (the admin listener is reached over HTTPS).
    cookie_security: CookieSecurity,
    /// The one-time login code of a first start: its SHA-256 and when it expires.
    login_code: std::sync::Mutex<Option<([u8; 32], std::time::Instant)>>,
}

impl Console {
    /// The console for these settings; `admin_url` is how browsers reach the admin listener.
    pub(crate) fn new(config: &ConsoleConfig, admin_url: &str) -> Self {
        Console {
            sessions: Sessions::new(config.session_ttl),
            stuck_after: config.stuck_after,
            cookie_security: CookieSecurity::for_url(admin_url),
            login_code: std::sync::Mutex::new(None),
        }
    }

    /// A code that opens the console once, within [`LOGIN_CODE_TTL`], without the admin token:
    /// the login link a first start prints. A new code replaces the last.
    pub(crate) fn issue_login_code(&self) -> Result<String, session::NoRandomness> {
        let code = session::random_token()?;
        *self
            .login_code
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((
            session::digest(&code),
            std::time::Instant::now() + LOGIN_CODE_TTL,
        ));
        Ok(code)
    }

    /// Whether `code` is the login code, unused and not expired; it is used up either way
    /// when it matches.
    fn redeem_login_code(&self, code: &str) -> bool {
        use subtle::ConstantTimeEq;
        let mut slot = self
            .login_code
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let matches = slot.as_ref().is_some_and(|(hash, expires)| {
            bool::from(session::digest(code).ct_eq(hash)) && *expires > std::time::Instant::now()
        });
        if matches {
            *slot = None;
        }
        matches
    }
}

/// How long the login link of a first start works.
pub(crate) const LOGIN_CODE_TTL: Duration = Duration::from_secs(60 * 60);

/// The console's routes, merged into the admin router.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/login", get(login::login_form).post(login::login))
        .route("/console/logout", post(login::logout))
        .merge(pages::routes())
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response();
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::envelope::EventType;

    #[test]
    fn the_script_follows_every_event_type_the_stream_sends() {
        let listed = JS
            .split_once("var EVENT_TYPES = [")
            .and_then(|(_, rest)| rest.split_once("];"))
            .map(|(list, _)| list)
            .unwrap_or_default();
        let listed: Vec<&str> = listed
            .split(',')
            .map(|name| name.trim().trim_matches('"'))
            .collect();
        assert_eq!(listed, EventType::ALL.map(EventType::as_str));
    }
}
