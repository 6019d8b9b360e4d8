//! [`ApiError`]: every failure of a request, mapped to the spec's ErrorRepresentation and its
//! numbered code. A 5xx says little to the client; its full cause is logged here, once.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::auth::{Denied, DeniedCode};
use crate::domain::envelope::{Dialect, EnvelopeError, Family, FunctionalError};
use crate::domain::routing::SinkName;
use crate::store::StoreError;

/// The media type of every JSON answer.
pub(crate) const JSON_UTF8: &str = "application/json;charset=utf-8";

/// How long a sender should wait before retrying after a 503, in seconds.
pub(crate) const RETRY_AFTER_SECONDS: u32 = 5;

/// How long a sender should wait before retrying after an overload (503/6), in seconds.
pub(crate) const OVERLOAD_RETRY_AFTER_SECONDS: u32 = 1;

/// The body of every error answer (the spec's `ErrorRepresentation`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorRepresentation {
    /// The spec's numbered code.
    pub code: u16,
    /// A short phrase.
    pub reason: String,
    /// What went wrong and what to do about it.
    pub message: String,
    /// The HTTP status.
    pub status: u16,
    /// A JSON Pointer (`#/eventDate`) to the field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_error: Option<String>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The body broke the envelope's rules (400/21–24 or 422).
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// No Content-Type header (400/25).
    #[error(
        "the Content-Type header is missing; send Content-Type: application/json;charset=utf-8"
    )]
    MissingContentType,
    /// A Content-Type that is not JSON in UTF-8 (400/26).
    #[error(
        "Content-Type {0:?} is not accepted; send Content-Type: application/json;charset=utf-8"
    )]
    InvalidContentType(String),
    /// The body is compressed, which the Listener API does not take (400/22).
    #[error(
        "Content-Encoding {0:?} is not accepted; send the body uncompressed, without Content-Encoding"
    )]
    ContentEncoding(String),
    /// The body could not be read to its end (400/22).
    #[error("the body could not be read: {0}")]
    UnreadableBody(String),
    /// The body is larger than allowed (413).
    #[error(
        "the body is larger than this listener's limit of {limit} bytes (its operator sets \
         body_limit_bytes)"
    )]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body took too long to arrive (408).
    #[error("the body took too long to arrive")]
    BodyTimeout,
    /// No credentials were sent (401/40).
    #[error("credentials are missing; send Authorization: Bearer <token>")]
    MissingCredentials,
    /// The credentials are not valid (401/41).
    #[error("the credentials are not valid")]
    InvalidCredentials,
    /// The gate refused the caller (401/40–42, 403/50–53).
    #[error(transparent)]
    Denied(#[from] Denied),
    /// Too much work is in flight and queued (503/6).
    #[error(
        "the listener is overloaded and did not store the event; retry after {OVERLOAD_RETRY_AFTER_SECONDS} second"
    )]
    Overloaded,
    /// A required query-string parameter is missing (400/27).
    #[error("query parameter {name} is missing: send {name}=<{form}>")]
    MissingQuery {
        /// The parameter.
        name: String,
        /// What to send, such as `RFC 3339 date`.
        form: &'static str,
    },
    /// A query-string parameter has a value that cannot be used (400/28).
    #[error("query parameter {name} {problem}")]
    InvalidQuery {
        /// The parameter.
        name: &'static str,
        /// What is wrong and what to send instead.
        problem: String,
    },
    /// The query string does not read as the route's parameters (400/28): a repeated
    /// parameter, a value of the wrong kind.
    #[error("query parameter {name}: {problem}")]
    MalformedQuery {
        /// The parameter, as far as it can be told.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// No route has this path (404).
    #[error("no resource at {0}")]
    NotFound(String),
    /// A dialect's listener path names no event of that dialect (404).
    #[error(
        "{dialect} has no listener for {name:?}; its listener paths end in /listener/ and one of: {known}",
        known = dialect.event_types().iter().filter_map(|kind| kind.path_name()).collect::<Vec<_>>().join(", ")
    )]
    UnknownEvent {
        /// The dialect whose path it is.
        dialect: Dialect,
        /// The name in the path.
        name: String,
    },
    /// The configuration names no sink of this name (404).
    #[error("no sink named {0} is configured: GET /api/v1/sinks lists the sinks")]
    UnknownSink(SinkName),
    /// The path exists but not with this method (405).
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    /// The store failed or refused (422/60, 503/5 or 500/1).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something that is not the store failed: an answer that cannot be encoded, no randomness
    /// for a session (500/1).
    #[error("internal error")]
    Internal(#[source] crate::store::SharedError),
}

impl ApiError {
    /// An [`ApiError::Internal`] for `error`.
    pub(crate) fn internal(error: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::Internal(std::sync::Arc::new(error))
    }

    /// The error's code, as ONAP's ErrorRepresentation numbers it (traces record it).
    pub(crate) fn code(&self) -> u16 {
        self.status_and_code().1
    }

    /// The HTTP status of the answer.
    pub(crate) fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn status_and_code(&self) -> (StatusCode, u16, &'static str) {
        match self {
            ApiError::Envelope(error) => match error {
                EnvelopeError::MissingBody => (StatusCode::BAD_REQUEST, 21, "Missing body"),
                EnvelopeError::InvalidBody(_) => (StatusCode::BAD_REQUEST, 22, "Invalid body"),
                EnvelopeError::MissingFields(_) | EnvelopeError::MissingDate(_) => {
                    (StatusCode::BAD_REQUEST, 23, "Missing body field")
                }
                EnvelopeError::InvalidField { .. } => {
                    (StatusCode::BAD_REQUEST, 24, "Invalid body field")
                }
                EnvelopeError::Functional { kind, .. } => {
                    (StatusCode::UNPROCESSABLE_ENTITY, kind.code(), kind.reason())
                }
            },
            ApiError::UnreadableBody(_) | ApiError::ContentEncoding(_) => {
                (StatusCode::BAD_REQUEST, 22, "Invalid body")
            }
            ApiError::MissingContentType => (StatusCode::BAD_REQUEST, 25, "Missing header"),
            ApiError::InvalidContentType(_) => {
                (StatusCode::BAD_REQUEST, 26, "Invalid header value")
            }
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, 413, "Payload too large")
            }
            ApiError::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, 408, "Request timeout"),
            ApiError::MissingCredentials => (StatusCode::UNAUTHORIZED, 40, "Missing credentials"),
            ApiError::InvalidCredentials => (StatusCode::UNAUTHORIZED, 41, "Invalid credentials"),
            ApiError::Denied(denied) => {
                let status = if denied.code.code() < 50 {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::FORBIDDEN
                };
                let reason = match denied.code {
                    DeniedCode::Missing => "Missing credentials",
                    DeniedCode::Invalid => "Invalid credentials",
                    DeniedCode::Expired => "Expired credentials",
                    DeniedCode::Disabled => "Access denied",
                    DeniedCode::ForbiddenRequester => "Forbidden requester",
                    DeniedCode::ForbiddenEventType => "Forbidden user",
                    DeniedCode::TooManyRequests => "Too many requests",
                };
                (status, denied.code.code(), reason)
            }
            ApiError::Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                6,
                "The service is temporarily overloaded",
            ),
            ApiError::MissingQuery { .. } => (
                StatusCode::BAD_REQUEST,
                27,
                "Missing query-string parameter",
            ),
            ApiError::InvalidQuery { .. } | ApiError::MalformedQuery { .. } => (
                StatusCode::BAD_REQUEST,
                28,
                "Invalid query-string parameter value",
            ),
            ApiError::NotFound(_) | ApiError::UnknownEvent { .. } | ApiError::UnknownSink(_) => {
                (StatusCode::NOT_FOUND, 404, "Not found")
            }
            ApiError::MethodNotAllowed(_) => {
                (StatusCode::METHOD_NOT_ALLOWED, 405, "Method not allowed")
            }
            ApiError::Store(error) => match error {
                StoreError::Conflict { .. } => {
                    let kind = FunctionalError::EventIdConflict;
                    (StatusCode::UNPROCESSABLE_ENTITY, kind.code(), kind.reason())
                }
                error if error.is_retryable() => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    5,
                    "The service is temporarily unavailable",
                ),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, 1, "Internal error"),
            },
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, 1, "Internal error"),
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            ApiError::Store(StoreError::Conflict { event_id }) => format!(
                "eventId {event_id} is already stored with a different payload; the stored event is \
                 kept. Send a new eventId for a new event, or resend the same payload"
            ),
            ApiError::Store(StoreError::DiskFull(_)) => format!(
                "the listener's disk is full and the event was not stored; retry after \
                 {RETRY_AFTER_SECONDS} seconds"
            ),
            ApiError::Store(error) if error.is_retryable() => format!(
                "storage is unavailable right now and the event was not stored; retry after \
                 {RETRY_AFTER_SECONDS} seconds"
            ),
            ApiError::Store(_) => {
                "the event could not be stored because of an internal error; it was not \
                 acknowledged, so retry it"
                    .to_owned()
            }
            ApiError::Internal(_) => {
                "an internal error stopped this request; the listener's log says more".to_owned()
            }
            other => other.to_string(),
        }
    }

    pub(crate) fn reference(&self) -> Option<String> {
        match self {
            ApiError::Envelope(error) => error.field().map(json_pointer),
            ApiError::Store(StoreError::Conflict { .. }) => Some("#/eventId".to_owned()),
            ApiError::MissingContentType | ApiError::InvalidContentType(_) => {
                Some("header:Content-Type".to_owned())
            }
            ApiError::ContentEncoding(_) => Some("header:Content-Encoding".to_owned()),
            ApiError::InvalidQuery { name, .. } => Some(format!("query:{name}")),
            ApiError::MalformedQuery { name, .. } | ApiError::MissingQuery { name, .. } => {
                Some(format!("query:{name}"))
            }
            _ => None,
        }
    }
}

/// `event.orderItem[0].state` → `#/event/orderItem/0/state`.
fn json_pointer(path: &str) -> String {
    let mut pointer = String::from("#");
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, Some(rest.trim_end_matches(']'))),
            None => (part, None),
        };
        pointer.push('/');
        pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
        if let Some(index) = index {
            pointer.push('/');
            pointer.push_str(index);
        }
    }
    pointer
}

impl ApiError {
    /// The answer in `dialect`'s error shape. ONAP's is ErrorRepresentation with numbered codes.
    /// The TM Forum's `Error` carries the same numbers as strings; its listeners list no 422, so
    /// a functional error is a 400 and a conflicting resend a 409. MEF's codes are strings
    /// (`invalidBody`, `missingCredentials`, …); every error about the body is a 400
    /// `invalidBody` there, a conflicting resend included.
    pub(crate) fn respond(self, dialect: Dialect) -> Response {
        let (mut status, code, reason) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(code, %dialect, error = %crate::telemetry::error_chain(&self), "request failed");
        } else {
            tracing::debug!(code, %dialect, status = status.as_u16(), error = %self, "request refused");
        }
        let family = dialect.family();
        if status == StatusCode::UNPROCESSABLE_ENTITY && family != Family::Onap {
            let conflict = matches!(self, ApiError::Store(StoreError::Conflict { .. }));
            status = if conflict && family == Family::Tmf {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_REQUEST
            };
        }
        let (message, reference_error) = (self.message(), self.reference());
        let body = match family {
            Family::Onap => serde_json::to_vec(&ErrorRepresentation {
                code,
                reason: reason.to_owned(),
                message,
                status: status.as_u16(),
                reference_error,
            }),
            Family::Tmf => serde_json::to_vec(&TmfError {
                code: code.to_string(),
                reason,
                message,
                status: status.as_u16().to_string(),
                reference_error,
                kind: "Error",
            }),
            Family::Mef => serde_json::to_vec(&MefError {
                code: self.mef_code(status, code),
                reason,
                message,
                reference_error,
            }),
        };
        let json = body.unwrap_or_else(|_| b"{\"code\":1}".to_vec());
        let mut response = (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8))],
            json,
        )
            .into_response();
        let retry_after = match &self {
            ApiError::Overloaded => Some(OVERLOAD_RETRY_AFTER_SECONDS),
            ApiError::Denied(denied) => denied
                .retry_after
                .map(|wait| wait.as_secs_f64().ceil().max(1.0) as u32),
            _ if status == StatusCode::SERVICE_UNAVAILABLE => Some(RETRY_AFTER_SECONDS),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }

    /// MEF's string code for an answer of `status` with ONAP's numbered `code`.
    fn mef_code(&self, status: StatusCode, code: u16) -> &'static str {
        match (status.as_u16(), code) {
            (401, 40) => "missingCredentials",
            (401, _) => "invalidCredentials",
            (403, 51) => "forbiddenRequester",
            (403, 53) => "tooManyUsers",
            (403, _) => "accessDenied",
            (400, 27) => "missingQueryParameter",
            (400, 28) => "invalidQuery",
            (400 | 413 | 415, _) => "invalidBody",
            (404, _) => "notFound",
            (405, _) => "methodNotAllowed",
            (408, _) => "timeOut",
            (503, _) => "serviceUnavailable",
            _ => "internalError",
        }
    }
}

/// The TM Forum's `Error`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TmfError {
    code: String,
    reason: &'static str,
    message: String,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference_error: Option<String>,
    #[serde(rename = "@type")]
    kind: &'static str,
}

/// MEF LSO Legato's `Error`, with its string code.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MefError {
    code: &'static str,
    reason: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reference_error: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.respond(Dialect::Onap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_is_a_500_1_that_says_nothing_of_storing_an_event() {
        let error = ApiError::internal(std::io::Error::other("no randomness"));
        assert_eq!(
            error.status_and_code(),
            (StatusCode::INTERNAL_SERVER_ERROR, 1, "Internal error")
        );
        assert!(!error.message().contains("event"), "{}", error.message());
        assert!(!error.message().contains("randomness"));
    }

    #[test]
    fn field_paths_become_json_pointers() {
        assert_eq!(json_pointer("eventDate"), "#/eventDate");
        assert_eq!(
            json_pointer("event.orderItem[0].state"),
            "#/event/orderItem/0/state"
        );
    }

    #[test]
    fn every_functional_error_is_a_422_with_its_own_code() {
        let mut codes = Vec::new();
        for kind in FunctionalError::ALL {
            let error = ApiError::Envelope(EnvelopeError::Functional {
                kind,
                event_type: None,
                field: "event".into(),
                message: "x".into(),
            });
            let (status, code, _) = error.status_and_code();
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
            codes.push(code);
        }
        codes.dedup();
        assert_eq!(codes.len(), FunctionalError::ALL.len());
    }

    /// The status and JSON body of `error` in `dialect`'s shape.
    async fn answer(error: ApiError, dialect: Dialect) -> (u16, serde_json::Value, bool) {
        let response = error.respond(dialect);
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key(header::RETRY_AFTER);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap(), retry_after)
    }

    #[tokio::test]
    async fn server_side_failures_answer_in_every_dialects_shape() {
        let unavailable = || {
            ApiError::Store(StoreError::Unavailable(std::sync::Arc::new(
                std::io::Error::other("disk"),
            )))
        };
        type Case = (fn() -> ApiError, u16, u16, &'static str);
        let cases: [Case; 4] = [
            (|| ApiError::BodyTimeout, 408, 408, "timeOut"),
            (|| ApiError::Overloaded, 503, 6, "serviceUnavailable"),
            (unavailable, 503, 5, "serviceUnavailable"),
            (
                || ApiError::Store(StoreError::ReadOnly),
                500,
                1,
                "internalError",
            ),
        ];
        for (error, status, code, mef) in cases {
            let (got, body, retry) = answer(error(), Dialect::Onap).await;
            assert_eq!((got, &body["code"]), (status, &serde_json::json!(code)));
            assert_eq!(retry, status == 503, "{body}");
            for dialect in [Dialect::Tmf641V4, Dialect::Tmf641V5] {
                let (got, body, retry) = answer(error(), dialect).await;
                assert_eq!(got, status);
                assert_eq!(body["code"], code.to_string());
                assert_eq!(body["status"], status.to_string());
                assert_eq!(body["@type"], "Error");
                assert_eq!(retry, status == 503);
            }
            for dialect in [Dialect::MefLegatoV5, Dialect::MefLegatoV6] {
                let (got, body, retry) = answer(error(), dialect).await;
                assert_eq!((got, body["code"].as_str()), (status, Some(mef)));
                assert!(body.get("status").is_none());
                assert_eq!(retry, status == 503);
            }
        }
        let (_, body, _) = answer(
            ApiError::internal(std::io::Error::other("x")),
            Dialect::MefLegatoV6,
        )
        .await;
        assert_eq!(body["code"], "internalError");
    }
}
