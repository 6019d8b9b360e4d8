//! The listeners of every dialect: ONAP's `POST {base_path}/listener`, and the TM Forum's and
//! MEF's `POST {base}/listener/{eventName}`. Each admits the request under the global bound,
//! passes it through the [`Gate`](super::auth::Gate) (source, credentials, policy), reads and
//! checks the body with its dialect's parser, stores the event and answers (201 with the body,
//! or 204) only once it is committed; a refusal is in its dialect's error shape. Every answer is
//! counted in the metrics. A refusal sent before the body was read to its end says
//! `Connection: close` on HTTP/1: the accept loop ([`super::server`]) then drains what the
//! client still sends before it closes (a lingering close), so that the client reads the answer.
//!
//! Each request is a trace span (`traces::TARGET`: exported when traces are on, never logged)
//! that continues the seller's W3C `traceparent`, with child spans for the gate, the parse and
//! the append. The event is stored with the trace context its deliveries continue.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tracing::Instrument;
use tracing::field::Empty;

use super::AppState;
use super::auth::mtls::PeerIdentity;
use super::auth::{Denied, Identified};
use super::error::{ApiError, JSON_UTF8};
use crate::domain::envelope::{
    Dialect, EnvelopeError, EventType, Notification, ParseOptions, parse, same_payload,
};
use crate::metrics::Metrics;
use crate::store::{Appended, NewEvent};
use crate::traces::{self, TraceContext};

/// Characters left as they are in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Receives one notification at ONAP's listener.
pub(crate) async fn create_event(
    State(app): State<AppState>,
    connection: Connection,
    headers: HeaderMap,
    body: Body,
) -> Response {
    create(&app, Dialect::Onap, None, connection, headers, body).await
}

/// Receives one notification at a dialect's listener for the event named in the path; a name
/// the dialect does not know is a 404 in its error shape.
pub(crate) async fn create_dialect_event(
    State(app): State<AppState>,
    Extension(dialect): Extension<Dialect>,
    Path(name): Path<String>,
    connection: Connection,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match dialect.event_at_path(&name) {
        Some(kind) => create(&app, dialect, Some(kind), connection, headers, body).await,
        None => ApiError::UnknownEvent { dialect, name }.respond(dialect),
    }
}

/// What a listener needs to know of the connection: the peer, its certificate (mTLS) and the
/// HTTP version; and of the request, for its trace: its path and the route it matched.
pub(crate) struct Connection {
    peer: SocketAddr,
    certificate: Option<Extension<Arc<PeerIdentity>>>,
    version: Version,
    path: String,
    route: Option<MatchedPath>,
}

impl<S: Send + Sync> FromRequestParts<S> for Connection {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // The accept loop gives every connection its peer; without one, nothing can be checked.
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied()
        else {
            return Err(ApiError::internal(std::io::Error::other(
                "the connection has no peer address",
            )));
        };
        let certificate = Option::<Extension<Arc<PeerIdentity>>>::from_request_parts(parts, state)
            .await
            .unwrap_or(None);
        Ok(Connection {
            peer,
            certificate,
            version: parts.version,
            path: parts.uri.path().to_owned(),
            route: parts.extensions.get::<MatchedPath>().cloned(),
        })
    }
}

/// Every answer, refusals included, is counted in the metrics by status and by eventType (once
/// the body has been parsed).
async fn create(
    app: &AppState,
    dialect: Dialect,
    path_event: Option<EventType>,
    connection: Connection,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Connection {
        peer,
        certificate,
        version,
        path,
        route,
    } = connection;
    let route = route.as_ref().map_or(path.as_str(), MatchedPath::as_str);
    let span = tracing::info_span!(
        target: traces::TARGET,
        "listener request",
        otel.name = %format_args!("POST {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = "POST",
        http.route = route,
        url.path = %path,
        client.address = %peer.ip(),
        http.response.status_code = Empty,
        order_listener.dialect = dialect.as_str(),
        order_listener.client = Empty,
        order_listener.event_id = Empty,
        order_listener.event_type = Empty,
        order_listener.error.code = Empty,
    );
    // The seller's context, if it sent one: the request's span continues it, and the event
    // keeps it when traces are off.
    let parent = TraceContext::from_headers(&headers);
    traces::continue_from(&span, parent.as_ref());
    let mut progress = Progress {
        event_type: None,
        event_id: None,
        client: None,
        body_read: body.is_end_stream(),
        parent,
    };
    let listener = Listener {
        dialect,
        path_event,
    };
    let mut response = match receive(
        app,
        listener,
        peer,
        certificate,
        headers,
        body,
        &mut progress,
    )
    .instrument(span.clone())
    .await
    {
        Ok(response) => response,
        Err(error) => {
            span.record("order_listener.error.code", error.code());
            error.respond(dialect)
        }
    };
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
    if let Some(client) = &progress.client {
        span.record("order_listener.client", client.as_str());
    }
    if let Some(event_id) = &progress.event_id {
        span.record("order_listener.event_id", event_id.as_str());
    }
    if let Some(event_type) = progress.event_type {
        span.record("order_listener.event_type", event_type.as_str());
    }
    app.metrics.request(
        progress.event_type.map(EventType::as_str),
        response.status().as_u16(),
    );
    if !progress.body_read && version <= Version::HTTP_11 {
        // hyper will not read the rest, so it closes the connection: say so.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Which listener a request reached.
#[derive(Debug, Clone, Copy)]
struct Listener {
    dialect: Dialect,
    /// The event type its path names (none for ONAP's one path).
    path_event: Option<EventType>,
}

/// How far a request got.
struct Progress {
    /// Set as soon as the body names one.
    event_type: Option<EventType>,
    /// Set as soon as the body is parsed.
    event_id: Option<crate::domain::envelope::EventId>,
    /// The client, once the gate has named it.
    client: Option<String>,
    /// Whether the body was read to its end (or had none).
    body_read: bool,
    /// The seller's trace context, if it sent one.
    parent: Option<TraceContext>,
}

/// The Listener API itself; records in `progress` how far the request got.
async fn receive(
    app: &AppState,
    listener: Listener,
    peer: SocketAddr,
    certificate: Option<Extension<Arc<PeerIdentity>>>,
    headers: HeaderMap,
    body: Body,
    progress: &mut Progress,
) -> Result<Response, ApiError> {
    let _slot = app.overload.admit().await.map_err(|_| {
        tracing::warn!(%peer, code = 6, "request refused: overloaded");
        app.metrics.auth_failure(6);
        ApiError::Overloaded
    })?;
    // The gate of this moment: a reload (SIGHUP) swaps it for later requests.
    let gate = app.gate.load_full();
    let ip = gate.client_ip(peer, &headers);
    let refused = |denied: Denied| refused(&app.metrics, ip, denied);
    // The gate's span covers the source, the credentials and the policy; for a signed request,
    // whose signature covers the body, the body's read too.
    let gate_span = tracing::info_span!(target: traces::TARGET, "gate");
    let identified = async {
        gate.check_source(ip)?;
        gate.identify(
            &headers,
            certificate.as_ref().map(|Extension(identity)| &**identity),
        )
        .await
    }
    .instrument(gate_span.clone())
    .await
    .map_err(refused)?;
    let (caller, raw) = match identified {
        Identified::Caller(caller) => {
            gate_span
                .in_scope(|| gate.authorize(caller, ip))
                .map_err(refused)?;
            drop(gate_span);
            let raw = read_body(body, &headers, app.body_limit, app.body_read_timeout).await?;
            progress.body_read = true;
            (caller, raw)
        }
        Identified::NeedsBody => {
            let raw = read_body(body, &headers, app.body_limit, app.body_read_timeout)
                .instrument(gate_span.clone())
                .await?;
            progress.body_read = true;
            let caller = gate_span
                .in_scope(|| {
                    let caller = gate.identify_signed(&headers, &raw)?;
                    gate.authorize(caller, ip).map(|()| caller)
                })
                .map_err(refused)?;
            drop(gate_span);
            (caller, raw)
        }
    };
    progress.client = gate.client_name(caller).map(|name| name.to_string());
    let strict = tracing::info_span!(target: traces::TARGET, "parse").in_scope(|| {
        if raw.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::from(EnvelopeError::MissingBody));
        }
        check_content_type(&headers)?;
        parse(
            listener.dialect,
            listener.path_event,
            raw.clone(),
            app.parse,
        )
        .map_err(|error| {
            // A functional refusal (61–64) comes after the body named its type: count it there.
            progress.event_type = error.event_type();
            ApiError::from(error)
        })
    });
    let (notification, resent) = match strict {
        Ok(notification) => (notification, None),
        Err(ApiError::Envelope(error)) => match stored_resend(app, listener, raw).await {
            Some((notification, duplicate)) => (notification, Some(duplicate)),
            None => return Err(ApiError::Envelope(error)),
        },
        Err(other) => return Err(other),
    };
    progress.event_type = Some(notification.event_type);
    progress.event_id = Some(notification.event_id.clone());
    gate.permit_event_type(caller, notification.event_type)
        .map_err(refused)?;
    let location = format!(
        "{}/api/v1/events/{}",
        app.admin_public_url,
        utf8_percent_encode(notification.event_id.as_str(), SEGMENT)
    );
    let received = notification.raw.clone();
    let (event_id, event_type) = (notification.event_id.clone(), notification.event_type);
    let append_span = tracing::info_span!(
        target: traces::TARGET,
        "append",
        order_listener.sequence = Empty,
        order_listener.duplicate = Empty,
    );
    // What the deliveries continue: this span when traces are exported, else the seller's.
    let trace_context = traces::pass_on(&append_span, progress.parent.as_ref());
    let appended = match resent {
        Some(duplicate) => Ok(duplicate),
        None => {
            app.store
                .append(NewEvent {
                    notification,
                    received_at: chrono::Utc::now(),
                    sender: Some(peer.ip().to_string()),
                    client: progress.client.clone(),
                    trace_context,
                })
                .instrument(append_span.clone())
                .await
        }
    };
    let outcome = appended.inspect_err(|error| {
        traces::fail(&append_span, crate::telemetry::error_chain(error));
    })?;
    let (Appended::Stored { sequence } | Appended::Duplicate { sequence, .. }) = &outcome;
    append_span.record("order_listener.sequence", sequence);
    append_span.record(
        "order_listener.duplicate",
        matches!(outcome, Appended::Duplicate { .. }),
    );
    drop(append_span);
    let echoed = match outcome {
        Appended::Stored { sequence } => {
            tracing::debug!(%event_id, %event_type, dialect = %listener.dialect, sequence, "event stored");
            received
        }
        Appended::Duplicate { sequence, body } => {
            tracing::debug!(%event_id, %event_type, dialect = %listener.dialect, sequence, "event resent; already stored");
            body
        }
    };
    if !listener.dialect.echoes_body() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
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

/// A body the current checks refuse may still be the resend of an event stored under a release
/// whose checks were looser (see `ParseOptions::as_stored`): a resend is answered as the
/// duplicate it is, never refused. Read as stored, the body gives an eventId; if that event is
/// stored with the same payload, here is the body read so and the duplicate's answer. Anything
/// else is `None`, and the caller keeps its refusal: a store that cannot be read now too, since
/// the body is refused by today's checks either way.
async fn stored_resend(
    app: &AppState,
    listener: Listener,
    raw: Bytes,
) -> Option<(Notification, Appended)> {
    let options = ParseOptions {
        as_stored: true,
        ..app.parse
    };
    let notification = parse(listener.dialect, listener.path_event, raw.clone(), options).ok()?;
    let stored = app
        .store
        .event(&notification.event_id)
        .await
        .inspect_err(|error| {
            tracing::warn!(
                event_id = %notification.event_id,
                error = %crate::telemetry::error_chain(error),
                "cannot tell whether a refused body is the resend of a stored event; refused"
            );
        })
        .ok()??;
    let (record, body) = Some(stored).filter(|(_, body)| same_payload(body, &raw))?;
    let sequence = record.sequence;
    Some((notification, Appended::Duplicate { sequence, body }))
}

/// Logs a refusal with the caller's address, its code and client (never its credentials), and
/// counts it.
fn refused(metrics: &Metrics, ip: IpAddr, denied: Denied) -> ApiError {
    metrics.auth_failure(denied.code.code());
    tracing::warn!(
        client_ip = %ip,
        code = denied.code.code(),
        client = denied.client.as_deref().unwrap_or("-"),
        reason = %denied.message,
        "request refused"
    );
    ApiError::Denied(denied)
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

/// Accepts `application/json`, with or without a UTF-8 charset, in any case and spacing, once;
/// and an uncompressed body (no `Content-Encoding` but `identity`).
pub(crate) fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(encoding) = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()))
        .find(|value| !value.trim().eq_ignore_ascii_case("identity"))
    {
        return Err(ApiError::ContentEncoding(encoding.into_owned()));
    }
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let value = values.next().ok_or(ApiError::MissingContentType)?;
    if values.next().is_some() {
        let all: Vec<_> = headers
            .get_all(header::CONTENT_TYPE)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect();
        return Err(ApiError::InvalidContentType(all.join(", ")));
    }
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

    #[test]
    fn a_second_content_type_or_a_compressed_body_is_refused() {
        let mut two = with_type("application/json");
        two.append(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        match check_content_type(&two) {
            Err(ApiError::InvalidContentType(both)) => {
                assert_eq!(both, "application/json, text/plain")
            }
            other => panic!("expected 26, got {other:?}"),
        }
        let mut gzip = with_type("application/json");
        gzip.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let refused = check_content_type(&gzip).unwrap_err();
        assert_eq!(refused.code(), 22);
        assert!(refused.to_string().contains("uncompressed"), "{refused}");
        let mut identity = with_type("application/json");
        identity.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        assert!(check_content_type(&identity).is_ok());
    }
}
