//! `POST {base_path}/listener`: the Listener API. Checks credentials, reads and checks the body,
//! stores the event and answers 201 only once it is committed.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::AppState;
use super::error::{ApiError, JSON_UTF8};
use crate::domain::envelope::{EnvelopeError, parse_notification};
use crate::store::{Appended, NewEvent};

/// Characters left as they are in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Receives one notification.
pub async fn create_event(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let client = app.auth.check(&headers)?;
    let raw = read_body(body, &headers, app.body_limit, app.body_read_timeout).await?;
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(EnvelopeError::MissingBody.into());
    }
    check_content_type(&headers)?;
    let notification = parse_notification(raw, app.parse)?;
    let location = format!(
        "{}/api/v1/events/{}",
        app.admin_public_url,
        utf8_percent_encode(notification.event_id.as_str(), SEGMENT)
    );
    let received = notification.raw.clone();
    let (event_id, event_type) = (notification.event_id.clone(), notification.event_type);
    let outcome = app
        .store
        .append(NewEvent {
            notification,
            received_at: chrono::Utc::now(),
            sender: Some(peer.ip().to_string()),
            client: client.map(str::to_owned),
        })
        .await?;
    let echoed = match outcome {
        Appended::Stored { sequence } => {
            tracing::debug!(%event_id, %event_type, sequence, "event stored");
            received
        }
        Appended::Duplicate { sequence, body } => {
            tracing::debug!(%event_id, %event_type, sequence, "event resent; already stored");
            body
        }
    };
    let mut response = (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8))],
        echoed,
    )
        .into_response();
    if let Ok(location) = HeaderValue::try_from(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Reads the whole body, up to `limit` bytes and within `timeout`.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_) => Err(ApiError::BodyTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::PayloadTooLarge { limit })
        }
        Ok(Err(error)) => Err(ApiError::UnreadableBody(error.to_string())),
    }
}

/// Accepts `application/json`, with or without a UTF-8 charset, in any case and spacing.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .ok_or(ApiError::MissingContentType)?;
    let text = value.to_str().map_err(|_| {
        ApiError::InvalidContentType(String::from_utf8_lossy(value.as_bytes()).into_owned())
    })?;
    let invalid = || ApiError::InvalidContentType(text.to_owned());
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(invalid());
    }
    for parameter in parts.map(str::trim).filter(|part| !part.is_empty()) {
        let (name, value) = parameter.split_once('=').ok_or_else(invalid)?;
        if name.trim().eq_ignore_ascii_case("charset") {
            let charset = value.trim().trim_matches('"');
            if !(charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("utf8")) {
                return Err(invalid());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_type(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn json_content_types_are_accepted_in_any_case_and_spacing() {
        for accepted in [
            "application/json",
            "application/json;charset=utf-8",
            "Application/JSON; Charset=UTF-8",
            "application/json ;  charset=\"utf-8\"",
            "application/json;charset=UTF8;",
        ] {
            assert!(
                check_content_type(&with_type(accepted)).is_ok(),
                "{accepted}"
            );
        }
    }

    #[test]
    fn other_content_types_are_refused() {
        for refused in [
            "text/plain",
            "application/xml",
            "application/json;charset=iso-8859-1",
            "application/jsonx",
            "",
        ] {
            assert!(
                matches!(
                    check_content_type(&with_type(refused)),
                    Err(ApiError::InvalidContentType(_))
                ),
                "{refused}"
            );
        }
        assert!(matches!(
            check_content_type(&HeaderMap::new()),
            Err(ApiError::MissingContentType)
        ));
    }
}
