//! The web console, on the admin listener only: server-rendered pages of service orders,
//! events, sinks and an overview, with a little JavaScript (`console.js`) that follows the event
//! stream. Everything it serves is bundled into the binary.
//!
//! A login with the admin token (`login.rs`) starts a session (`session.rs`). The session cookie is also
//! accepted by the admin API's read routes (so that the page's EventSource can follow
//! `/api/v1/stream`), never by its POST routes: changes made from the console go through the
//! console's own forms, which carry the session's CSRF token and must come from the same origin.
//!
//! The console reads only through the same `Store` methods as the admin API (plus
//! `search_orders` and `events_per_minute`) and `Metrics`; it never writes except to requeue a
//! dead letter, through the same `http::outbox::retry_dead_letter` as
//! `POST /api/v1/dead-letters/{id}/retry`.
//!
//! This module holds the router, the responses every page shares (headers, redirects, the
//! session check, `same_origin`) and logout; each page is a module of `pages`, and `html.rs`
//! holds the building blocks they render with.

mod html;
mod login;
mod pages;
pub mod session;

use std::time::Duration;

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use self::session::{CookieSecurity, Session, Sessions};
use super::AppState;
use crate::config::ConsoleConfig;

const CSS: &str = include_str!("console.css");
const JS: &str = include_str!("console.js");

/// The console's settings and sessions, shared by its handlers.
#[derive(Debug)]
pub struct Console {
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
    pub fn new(config: &ConsoleConfig, admin_url: &str) -> Self {
        Console {
            sessions: Sessions::new(config.session_ttl),
            stuck_after: config.stuck_after,
            cookie_security: CookieSecurity::for_url(admin_url),
            login_code: std::sync::Mutex::new(None),
        }
    }

    /// A code that opens the console once, within [`LOGIN_CODE_TTL`], without the admin token:
    /// the login link a first start prints. A new code replaces the last.
    pub fn issue_login_code(&self) -> Result<String, session::NoRandomness> {
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
pub const LOGIN_CODE_TTL: Duration = Duration::from_secs(60 * 60);

/// The console's routes, merged into the admin router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/login", get(login::login_form).post(login::login))
        .route("/console/logout", post(logout))
        .merge(pages::routes())
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
}

/// The headers of every console page: no caching, no framing, scripts and styles from here
/// only.
fn secure_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// An HTML page with the console's headers.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response();
    secure_headers(&mut response);
    response
}

/// A 303 to `location` (after a form, the browser GETs it).
fn see_other(location: &str) -> Response {
    let mut response = Redirect::to(location).into_response();
    secure_headers(&mut response);
    response
}

/// The request's session, or a redirect to the login page that comes back here.
// The error is the response a handler returns at once; it is made once per refused request.
#[allow(clippy::result_large_err)]
fn session_or_login(app: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Session, Response> {
    app.console.sessions.find(headers).ok_or_else(|| {
        let back = uri
            .path_and_query()
            .map_or("/console/orders", |path| path.as_str());
        let next: String = url_query_value(back);
        see_other(&format!("/console/login?next={next}"))
    })
}

fn url_query_value(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Whether a form POST comes from this origin: its `Origin` (or, without one, its `Referer`)
/// names the host the request was sent to. A request that names neither is let through: the
/// CSRF token and the `SameSite=Strict` cookie still guard it.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    let claimed = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .map(|value| value.to_str().unwrap_or("null"));
    match claimed {
        None => true,
        Some(url) => {
            let authority = url
                .split_once("://")
                .map(|(_, rest)| rest.split('/').next().unwrap_or_default());
            matches!((authority, host), (Some(authority), Some(host)) if authority.eq_ignore_ascii_case(host))
        }
    }
}

/// Whether a form that changes something came from this console: from this origin, with the
/// session's CSRF token.
fn from_this_console(headers: &HeaderMap, session: &Session, form: &CsrfForm) -> bool {
    same_origin(headers) && session.csrf_matches(&form.csrf)
}

fn forbidden(why: &str) -> Response {
    let mut response = (StatusCode::FORBIDDEN, why.to_owned()).into_response();
    secure_headers(&mut response);
    response
}

/// A form that only carries the CSRF token.
#[derive(Deserialize)]
struct CsrfForm {
    /// The session's CSRF token.
    csrf: String,
}

async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(session) = app.console.sessions.find(&headers) {
        if !from_this_console(&headers, &session, &form) {
            return forbidden("logout refused: the form did not come from this console");
        }
        app.console.sessions.end(&session);
    }
    let mut response = see_other("/console/login");
    if let Ok(cookie) = HeaderValue::from_str(&session::clear_cookie(app.console.cookie_security)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
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
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_form_from_another_origin_is_refused() {
        let headers = |pairs: &[(header::HeaderName, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
            }
            map
        };
        assert!(same_origin(&headers(&[
            (header::HOST, "127.0.0.1:9090"),
            (header::ORIGIN, "http://127.0.0.1:9090"),
        ])));
        assert!(!same_origin(&headers(&[
            (header::HOST, "127.0.0.1:9090"),
            (header::ORIGIN, "http://evil.example"),
        ])));
        assert!(!same_origin(&headers(&[
            (header::HOST, "127.0.0.1:9090"),
            (header::ORIGIN, "null"),
        ])));
        assert!(same_origin(&headers(&[
            (header::HOST, "127.0.0.1:9090"),
            (header::REFERER, "http://127.0.0.1:9090/console/sinks"),
        ])));
        assert!(same_origin(&headers(&[(header::HOST, "127.0.0.1:9090")])));
    }
}
