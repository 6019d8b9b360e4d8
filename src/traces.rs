//! Distributed traces: OpenTelemetry spans of the listener's work, exported over OTLP when the
//! standard `OTEL_*` variables name a collector, and the W3C trace context that joins them to
//! the seller's trace and the consumers' (a leaf: it knows neither HTTP handlers nor SQL).
//!
//! The spans are `tracing` spans with the target [`TARGET`]: the exporter's layer takes only
//! those, and the log output leaves them out, so that log lines look the same with or without
//! traces. Without an exporter no layer wants them, and `tracing` never builds them: traces off
//! cost one disabled-callsite check per span.
//!
//! A trace context is parsed from the seller's `traceparent`/`tracestate` ([`TraceContext`]),
//! stored with the event, continued by each delivery attempt and sent on to the sink. With
//! traces off, the seller's context is still stored and passed on as it came.

pub mod context;
pub mod export;

pub use context::{InvalidTraceparent, TraceContext};

use opentelemetry::trace::{TraceContextExt, TracerProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};

use self::export::Settings;

/// The target of every span meant for the exporter, and only for it (no module has this path,
/// so that no log line has it).
pub const TARGET: &str = "order_listener::spans";

/// The exporter, running: what the `tracing` subscriber needs, and the provider to flush at
/// exit.
pub struct Exporter {
    provider: SdkTracerProvider,
    settings: Settings,
    service: String,
}

impl Exporter {
    /// Builds the exporter for `settings`; must run inside the Tokio runtime that outlives it.
    pub fn start(settings: Settings) -> anyhow::Result<Exporter> {
        let provider = export::provider(&settings)?;
        Ok(Exporter {
            provider,
            settings,
            service: export::exported_service_name(),
        })
    }

    /// The `tracing` layer that turns [`TARGET`]'s spans into OpenTelemetry spans.
    pub fn layer(&self) -> Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync> {
        let tracer = self.provider.tracer("order-listener");
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_location(false)
            .with_filter(Targets::new().with_target(TARGET, LevelFilter::TRACE))
            .boxed()
    }

    /// Logs where spans go: the endpoint without credentials and the headers' names only.
    pub fn announce(&self) {
        tracing::info!(
            endpoint = %self.settings.endpoint_to_log(),
            protocol = self.settings.protocol.as_str(),
            service = %self.service,
            headers = ?self.settings.header_names(),
            "traces: exporting spans over OTLP"
        );
    }

    /// Exports what is still batched and stops. The exports run on the runtime, so the wait
    /// is off its threads.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(error)) = flushed {
            tracing::warn!(%error, "traces: the last spans could not be exported");
        }
    }
}

/// Makes `span` continue `parent`'s trace (a remote parent). Call it before the span is first
/// entered; without an exporter it does nothing.
pub(crate) fn continue_from(span: &Span, parent: Option<&TraceContext>) {
    if let Some(parent) = parent {
        let context = opentelemetry::Context::new().with_remote_span_context(parent.span_context());
        // Disabled (traces off) or already started: the span keeps the parent it has.
        let _ = span.set_parent(context);
    }
}

/// The trace context to pass on from `span`: its own when traces are exported, else
/// `otherwise` (the context that came in, passed on unchanged).
pub(crate) fn pass_on(span: &Span, otherwise: Option<&TraceContext>) -> Option<TraceContext> {
    if span.is_disabled() {
        return otherwise.cloned();
    }
    TraceContext::of_span(span.context().span().span_context()).or_else(|| otherwise.cloned())
}

/// Links `span` to the span that `to` names (a commit batch to each of its appends).
pub(crate) fn link(span: &Span, to: &TraceContext) {
    if !span.is_disabled() {
        span.add_link(to.span_context());
    }
}

/// Marks `span` as failed, with a description (never a secret).
pub(crate) fn fail(span: &Span, description: String) {
    if !span.is_disabled() {
        span.set_status(opentelemetry::trace::Status::error(description));
    }
}

/// Sets an attribute on `span` that its creation did not declare.
pub(crate) fn attribute(span: &Span, key: &'static str, value: impl Into<opentelemetry::Value>) {
    if !span.is_disabled() {
        span.set_attribute(key, value);
    }
}
