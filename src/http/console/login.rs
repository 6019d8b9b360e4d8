//! The console's way in and out: the login page, a login with the admin token or a first
//! start's one-time link, which starts a session (`session.rs`) and sends the browser back where
//! it was going, on this console only; and logout.
//!
//! It never renders a page behind the login and never reads the store.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::html::{esc, head};
use super::respond::{CsrfForm, forbidden, from_this_console, html, same_origin, see_other};
use super::session;
use crate::http::AppState;
use crate::http::error::ApiError;

/// Where to go after logging in: a console path, never another site.
pub(super) fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next)
            if next.starts_with("/console/")
                && !next.contains("//")
                && !next.contains('\\')
                && !next.chars().any(char::is_control) =>
        {
            next
        }
        _ => "/console/orders",
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginQuery {
    next: Option<String>,
    /// The one-time code of a first start's login link.
    code: Option<String>,
}

/// `GET /console/login`: the form, or a session at once for a valid one-time link.
pub(super) async fn login_form(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    if let Some(code) = &query.code {
        if app.console.redeem_login_code(code) {
            return start_session(&app, "/console/");
        }
        tracing::warn!("console: a login link that was used already, or expired, was refused");
        return refused(
            StatusCode::UNAUTHORIZED,
            next,
            "This login link was used already or has expired. Log in with the admin token.",
        );
    }
    if app.console.sessions.find(&headers).is_some() {
        return see_other(next);
    }
    html(StatusCode::OK, render_login(next, None))
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    token: String,
    next: Option<String>,
}

/// `POST /console/login`: the admin token starts a session.
pub(super) async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    if !same_origin(&headers) {
        return forbidden("cross-origin login refused");
    }
    let Some(expected) = &app.admin_token else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            next,
            "No admin token is configured (admin_token), so the console is closed.",
        );
    };
    if !expected.matches(form.token.trim()) {
        tracing::warn!("console: a login with a wrong admin token was refused");
        return refused(
            StatusCode::UNAUTHORIZED,
            next,
            "That is not the admin token.",
        );
    }
    start_session(&app, next)
}

/// The login page again with `why` the last attempt failed.
fn refused(status: StatusCode, next: &str, why: &str) -> Response {
    html(status, render_login(next, Some(why)))
}

/// Starts a session and sends the browser to `next` with its cookie.
fn start_session(app: &AppState, next: &str) -> Response {
    match app.console.sessions.start() {
        Ok(id) => {
            let mut response = see_other(next);
            if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie(
                &id,
                app.console.sessions.ttl(),
                app.console.cookie_security,
            )) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(error) => {
            tracing::error!(error = %crate::telemetry::error_chain(&error), "console: cannot start a session");
            ApiError::internal(error).into_response()
        }
    }
}

/// `POST /console/logout`: ends the session, when the form came from this console, and clears
/// its cookie.
pub(super) async fn logout(
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

/// The login page, with why the last attempt failed.
pub(super) fn render_login(next: &str, error: Option<&str>) -> String {
    let error = error
        .map(|error| format!(r#"<p class="error" role="alert">{}</p>"#, esc(error)))
        .unwrap_or_default();
    format!(
        r#"{head}
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
        head = head("Log in", ""),
        next = esc(next)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_followed_after_login() {
        assert_eq!(
            safe_next(Some("/console/orders?state=held")),
            "/console/orders?state=held"
        );
        assert_eq!(safe_next(Some("https://evil.example/")), "/console/orders");
        assert_eq!(safe_next(Some("/console//evil.example")), "/console/orders");
        assert_eq!(safe_next(Some("/console/\\evil")), "/console/orders");
        assert_eq!(safe_next(Some("/api/v1/events")), "/console/orders");
        assert_eq!(safe_next(None), "/console/orders");
    }

    #[test]
    fn the_login_page_keeps_where_to_go_next_escaped() {
        let page = render_login(r#"/console/orders?q="><script>"#, None);
        assert!(page.contains(
            r#"<input type="hidden" name="next" value="/console/orders?q=&quot;&gt;&lt;script&gt;">"#
        ));
        assert!(!page.contains("<script>"));
        assert!(
            !page.contains(r#"role="alert""#),
            "no error before an attempt"
        );
    }

    #[test]
    fn a_failed_login_says_why_as_an_alert() {
        let page = render_login("/console/", Some("That is not the <admin> token."));
        assert!(
            page.contains(
                r#"<p class="error" role="alert">That is not the &lt;admin&gt; token.</p>"#
            )
        );
        assert!(page.contains(r#"name="token" type="password""#));
    }
}
