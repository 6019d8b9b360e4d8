//! The HTTP surface: the public router (Listener API, health, OpenAPI document) and the admin
//! router (health, read-only queries, the event stream, metrics and the web console), the shared
//! accept loop, TLS and credentials.
//!
//! Handlers parse at the edge and call the store; they never call a downstream system.

pub(crate) mod admin;
pub(crate) mod auth;
pub(crate) mod console;
pub(crate) mod error;
pub(crate) mod listener;
pub(crate) mod openapi;
pub(crate) mod outbox;
pub(crate) mod query;
pub(crate) mod reconcile;
pub(crate) mod server;
pub(crate) mod stream;
pub(crate) mod tls;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use tokio_util::sync::CancellationToken;

use self::auth::Gate;
use self::auth::overload::Overload;
use self::error::{ApiError, JSON_UTF8};
use crate::domain::envelope::{Dialect, ParseOptions};
use crate::store::Store;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    /// The app's metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The names of the configured, enabled sinks (swapped by a reload).
    pub sinks: Arc<arc_swap::ArcSwap<Vec<crate::domain::routing::SinkName>>>,
    /// The event store.
    pub store: Store,
    /// Checks who may post and what.
    pub gate: Arc<arc_swap::ArcSwap<Gate>>,
    /// Bounds the Listener API's concurrent and queued work.
    pub overload: Arc<Overload>,
    /// The admin API's token; none means the admin API refuses every call.
    pub admin_token: Option<Arc<crate::http::auth::generated::AdminToken>>,
    /// The largest body accepted.
    pub body_limit: usize,
    /// How long a body may take to arrive.
    pub body_read_timeout: Duration,
    /// Which event types are accepted.
    pub parse: ParseOptions,
    /// The admin listener's URL, for Location headers and the admin OpenAPI document's
    /// `servers`.
    pub admin_public_url: Arc<str>,
    /// The public listener's URL (its scheme and bound address), for the public OpenAPI
    /// document's `servers`.
    pub public_url: Arc<str>,
    /// The Listener API's path prefix, where the public OpenAPI document is served.
    pub base_path: Arc<str>,
    /// The dialects' listeners and their base paths.
    pub listeners: Arc<[crate::config::listeners::Mount]>,
    /// The web console's sessions and settings.
    pub console: Arc<console::Console>,
    /// How suspect orders are found (stale thresholds) and the gap report's bound.
    pub reconcile: crate::config::reconcile::Reconcile,
    /// Cancelled when the app stops, so that long-lived answers (the event stream) end and do
    /// not hold up the drain.
    pub shutdown: CancellationToken,
}

/// The public port: only the listeners of the mounted dialects, the OpenAPI document and
/// health. A trailing slash on a listener path reaches the same listener: a callback registered
/// with one gets every notification too (ONAP never retries, so a 404 there would lose them all).
pub(crate) fn public_router(state: AppState) -> Router {
    let base = state.base_path.clone();
    let document = {
        let (base, listeners, parse) = (base.clone(), state.listeners.clone(), state.parse);
        let server = state.public_url.clone();
        serve_document(move || openapi::public(&base, &listeners, parse, &server))
    };
    let mut router = Router::new();
    for mount in state.listeners.iter() {
        for path in &mount.base_paths {
            if mount.dialect == Dialect::Onap {
                router = router
                    .route(&format!("{path}/listener"), post(listener::create_event))
                    .route(&format!("{path}/listener/"), post(listener::create_event));
            } else {
                let handler = post(listener::create_dialect_event).layer(Extension(mount.dialect));
                router = router
                    .route(&format!("{path}/listener/{{event}}"), handler.clone())
                    .route(&format!("{path}/listener/{{event}}/"), handler);
            }
        }
    }
    router
        .route(&format!("{base}/openapi.json"), get(document))
        .route("/healthz", get(admin::live))
        .route("/readyz", get(admin::ready))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// A JSON answer with `status`.
fn json(status: axum::http::StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8))],
        body,
    )
        .into_response()
}

/// The handler of an OpenAPI document's route. The document is written by `write` on the first
/// request for it, not at start: building it takes a few MiB for a moment, which the allocator
/// then keeps (bench/wrk.sh saw the idle process grow by 7 MiB).
fn serve_document(
    write: impl Fn() -> bytes::Bytes + Send + Sync + 'static,
) -> impl Fn() -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    let written = Arc::new(std::sync::OnceLock::<bytes::Bytes>::new());
    let write = Arc::new(write);
    move || {
        let document = written.get_or_init(|| write()).clone();
        std::future::ready(
            (
                [(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8))],
                document,
            )
                .into_response(),
        )
    }
}

/// A 404, in the error shape of the dialect whose listener path it falls under.
async fn not_found(State(app): State<AppState>, uri: Uri) -> Response {
    ApiError::NotFound(uri.path().to_owned()).respond(dialect_at(&app, uri.path()))
}

/// A 405, in the error shape of the dialect whose listener path it falls under.
async fn method_not_allowed(State(app): State<AppState>, method: Method, uri: Uri) -> Response {
    ApiError::MethodNotAllowed(method.to_string()).respond(dialect_at(&app, uri.path()))
}

/// The dialect whose listeners are under `path` (the longest base path that prefixes it), else
/// ONAP's.
fn dialect_at(app: &AppState, path: &str) -> Dialect {
    app.listeners
        .iter()
        .flat_map(|mount| {
            mount
                .base_paths
                .iter()
                .map(move |base| (base, mount.dialect))
        })
        .filter(|(base, _)| {
            path.strip_prefix(base.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .max_by_key(|(base, _)| base.len())
        .map_or(Dialect::Onap, |(_, dialect)| dialect)
}
