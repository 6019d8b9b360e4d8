//! The responses and checks every console handler shares: the console's headers on HTML pages,
//! redirects and refusals, the session check that sends a stranger to the login page, and the
//! origin and CSRF test of a form that changes something.
//!
//! It renders no page and reads no store; it is a leaf that the login and the pages import.

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::session::Session;
use crate::http::AppState;

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
pub(super) fn html(status: StatusCode, body: String) -> Response {
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
pub(super) fn see_other(location: &str) -> Response {
    let mut response = Redirect::to(location).into_response();
    secure_headers(&mut response);
    response
}

/// The request's session, or a redirect to the login page that comes back here.
// The error is the response a handler returns at once; it is made once per refused request.
#[allow(clippy::result_large_err)]
pub(super) fn session_or_login(
    app: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Session, Response> {
    app.console.sessions.find(headers).ok_or_else(|| {
        let back = uri
            .path_and_query()
            .map_or("/console/orders", |path| path.as_str());
        let next: String = url_query_value(back);
        see_other(&format!("/console/login?next={next}"))
    })
}

/// Text percent-encoded as one value of a query string.
pub(super) fn url_query_value(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Whether a form POST comes from this origin: its `Origin` (or, without one, its `Referer`)
/// names the host the request was sent to. A request that names neither is let through: the
/// CSRF token and the `SameSite=Strict` cookie still guard it.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
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
pub(super) fn from_this_console(headers: &HeaderMap, session: &Session, form: &CsrfForm) -> bool {
    same_origin(headers) && session.csrf_matches(&form.csrf)
}

/// A 403 that says why, in plain text, with the console's headers.
pub(super) fn forbidden(why: &str) -> Response {
    let mut response = (StatusCode::FORBIDDEN, why.to_owned()).into_response();
    secure_headers(&mut response);
    response
}

/// A form that only carries the CSRF token.
#[derive(Deserialize)]
pub(super) struct CsrfForm {
    /// The session's CSRF token.
    pub(super) csrf: String,
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
