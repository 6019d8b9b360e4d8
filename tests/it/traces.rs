//! Distributed traces. The real binary exports its spans over OTLP to a collector the test runs
//! (`POST /v1/traces`, protobuf or JSON, decoded with opentelemetry-proto's types): a seller's
//! trace runs through the request's spans (gate, parse, append) and the commit batch to one
//! delivery attempt per sink, and each sink (an HTTP receiver, NATS JetStream, RabbitMQ) gets
//! its attempt's `traceparent`. The binary runs in its own process because the `tracing`
//! subscriber of this test process is global. With traces off, the seller's context is stored
//! and passed on as it came.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::forwarding::{amqp_queue, unique};
use crate::helpers::*;

/// The seller's trace, and the span of its that sent the notification.
const SELLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SELLER_SPAN: &str = "00f067aa0ba902b7";
const SELLER_STATE: &str = "seller=t61rcWkgMzE";

/// A header the collector wants with every export: a secret that must never be logged.
const COLLECTOR_TOKEN: &str = "t0ps3cret-collector-token";

/// A span as the collector received it, with the name of the service that sent it.
#[derive(Debug, Clone)]
struct Exported {
    service: String,
    span: Span,
}

impl Exported {
    fn name(&self) -> &str {
        &self.span.name
    }

    fn trace_id(&self) -> String {
        hex::encode(&self.span.trace_id)
    }

    fn span_id(&self) -> String {
        hex::encode(&self.span.span_id)
    }

    fn parent(&self) -> String {
        hex::encode(&self.span.parent_span_id)
    }

    /// An attribute's value as text (strings as they are, numbers and booleans printed).
    fn attribute(&self, key: &str) -> Option<String> {
        let value = self
            .span
            .attributes
            .iter()
            .find(|attribute| attribute.key == key)?
            .value
            .as_ref()?
            .value
            .as_ref()?;
        Some(match value {
            AnyValue::StringValue(text) => text.clone(),
            AnyValue::IntValue(number) => number.to_string(),
            AnyValue::BoolValue(flag) => flag.to_string(),
            AnyValue::DoubleValue(number) => number.to_string(),
            other => format!("{other:?}"),
        })
    }

    fn has(&self, key: &str, value: &str) -> bool {
        self.attribute(key).as_deref() == Some(value)
    }

    /// The `traceparent` a sink must get from this span.
    fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id(), self.span_id())
    }
}

/// What the collector received.
#[derive(Debug, Default, Clone)]
struct Exports {
    spans: Vec<Exported>,
    /// The `x-otlp-token` header of each export.
    tokens: Vec<String>,
    /// Bodies that did not decode.
    failures: Vec<String>,
}

/// An OTLP/HTTP collector on port 0 that records every span it is sent.
struct Collector {
    /// `http://127.0.0.1:PORT`: the base of `OTEL_EXPORTER_OTLP_ENDPOINT`.
    base: String,
    seen: watch::Receiver<Exports>,
    server: JoinHandle<()>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn export(
    State(seen): State<std::sync::Arc<watch::Sender<Exports>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    let decoded = if json {
        serde_json::from_slice::<ExportTraceServiceRequest>(&body)
            .map_err(|error| error.to_string())
    } else {
        ExportTraceServiceRequest::decode(body).map_err(|error| error.to_string())
    };
    let Ok(request) = decoded else {
        let error = decoded.err().unwrap_or_default();
        seen.send_modify(|seen| seen.failures.push(error));
        return StatusCode::BAD_REQUEST.into_response();
    };
    record(&seen, &headers, request);
    if json {
        ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            Vec::new(),
        )
            .into_response()
    }
}

/// Records the spans of one export and its `x-otlp-token` header (or gRPC metadata).
fn record(seen: &watch::Sender<Exports>, headers: &HeaderMap, request: ExportTraceServiceRequest) {
    let token = headers
        .get("x-otlp-token")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    seen.send_modify(|seen| {
        seen.tokens.push(token);
        for resource_spans in request.resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|resource| &resource.attributes)
                .find(|attribute| attribute.key == "service.name")
                .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
                .map(|value| match value {
                    AnyValue::StringValue(name) => name.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    seen.spans.push(Exported {
                        service: service.clone(),
                        span,
                    });
                }
            }
        }
    });
}

/// One gRPC call to the collector: `TraceService/Export`, its message behind gRPC's 5-byte
/// prefix (uncompressed); the answer is an empty message and `grpc-status: 0` in the trailers.
async fn grpc_export(
    seen: std::sync::Arc<watch::Sender<Exports>>,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<GrpcBody>, std::convert::Infallible> {
    use http_body_util::BodyExt;
    let path_ok =
        request.uri().path() == "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    let headers = request.headers().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes());
    let decoded = match body {
        Ok(bytes) if path_ok && bytes.len() >= 5 && bytes[0] == 0 => {
            ExportTraceServiceRequest::decode(&bytes[5..]).map_err(|error| error.to_string())
        }
        other => Err(format!(
            "not a gRPC Export call: {:?}",
            other.map(|bytes| bytes.len())
        )),
    };
    let status = match decoded {
        Ok(request) => {
            record(&seen, &headers, request);
            "0"
        }
        Err(error) => {
            seen.send_modify(|seen| seen.failures.push(error));
            "3"
        }
    };
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", status.parse().unwrap());
    let frames = vec![
        Ok(hyper::body::Frame::data(Bytes::from_static(&[
            0, 0, 0, 0, 0,
        ]))),
        Ok(hyper::body::Frame::trailers(trailers)),
    ];
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
    Ok(hyper::Response::builder()
        .header(header::CONTENT_TYPE, "application/grpc")
        .body(body)
        .unwrap())
}

/// The body of a gRPC answer: a message, then trailers.
type GrpcBody = http_body_util::StreamBody<
    futures_util::stream::Iter<
        std::vec::IntoIter<Result<hyper::body::Frame<Bytes>, std::convert::Infallible>>,
    >,
>;

impl Collector {
    async fn start() -> Collector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (sender, seen) = watch::channel(Exports::default());
        let router = axum::Router::new()
            .route("/v1/traces", axum::routing::post(export))
            .with_state(std::sync::Arc::new(sender));
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Collector { base, seen, server }
    }

    /// A collector that speaks OTLP/gRPC (HTTP/2 without TLS) instead.
    async fn start_grpc() -> Collector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (sender, seen) = watch::channel(Exports::default());
        let sender = std::sync::Arc::new(sender);
        let server = tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let sender = sender.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        grpc_export(sender.clone(), request)
                    });
                    let _ = hyper::server::conn::http2::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
            }
        });
        Collector { base, seen, server }
    }

    fn exports(&self) -> Exports {
        self.seen.borrow().clone()
    }

    /// Waits until `found` finds what it looks for in the spans received so far.
    async fn wait_for<T>(&self, what: &str, found: impl Fn(&[Exported]) -> Option<T>) -> T {
        eventually(what, async || found(&self.seen.borrow().spans)).await
    }
}

/// `order-listener serve` with a config file, logging at debug level into `log`, its spans
/// exported as the `OTEL_*` variables in `otel` say (and no other `OTEL_*` from this process).
fn start_traced(
    data_dir: &Path,
    config: &Path,
    log: &Path,
    otel: &[(&str, &str)],
) -> RunningBinary {
    let mut command = Command::new(binary());
    command
        .args(["serve", "--plain-http"])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("OTEL_")) {
        command.env_remove(name);
    }
    command
        .envs(otel.iter().copied())
        // Export every 100 ms rather than every 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("RUST_LOG", "debug");
    let file = std::fs::File::create(log).unwrap();
    spawn_serve_logging(&mut command, Stdio::from(file))
}

/// The `traceparent` and `tracestate` headers of the first message of `stream`.
async fn nats_trace(url: &str, stream: &str) -> (String, String) {
    let client = async_nats::connect(url).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    // The sink creates the stream when it first publishes.
    let stream = eventually("the sink's stream", async || {
        jetstream.get_stream(stream).await.ok()
    })
    .await;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let message = tokio::time::timeout(PATIENCE, messages.next())
        .await
        .expect("a message in the stream")
        .unwrap()
        .unwrap();
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(name))
            .map(|value| value.to_string())
            .unwrap_or_default()
    };
    (header("traceparent"), header("tracestate"))
}

/// The `traceparent` and `tracestate` headers of the next message.
async fn amqp_trace(consumer: &mut lapin::Consumer) -> (String, String) {
    let delivery = tokio::time::timeout(PATIENCE, consumer.next())
        .await
        .expect("a message from RabbitMQ")
        .unwrap()
        .unwrap();
    delivery
        .ack(lapin::options::BasicAckOptions::default())
        .await
        .unwrap();
    let header = |name: &str| {
        delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|headers| headers.inner().get(name).cloned())
            .and_then(|value| match value {
                lapin::types::AMQPValue::LongString(text) => Some(text.to_string()),
                _ => None,
            })
            .unwrap_or_default()
    };
    (header("traceparent"), header("tracestate"))
}

#[tokio::test]
async fn a_sellers_trace_runs_through_the_listener_to_every_sink_and_each_sink_joins_it() {
    let (Some(nats), Some(amqp)) = (
        service("ORDER_LISTENER_TEST_NATS_URL", "the real broker's URL"),
        service("ORDER_LISTENER_TEST_AMQP_URL", "the real broker's URL"),
    ) else {
        return;
    };
    init();
    let collector = Collector::start().await;
    let webhook = WebhookReceiver::start(204).await;
    let (stream, prefix, exchange) = (unique("OLTRACE"), unique("oltrace"), unique("oltrace-"));
    let (_amqp_connection, mut rabbit) = amqp_queue(&amqp, &exchange).await;
    let key = "olk_traces_test_key_0123456789";
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("order-listener.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[clients.seller]
[[clients.seller.api_keys]]
hash = "sha256:{hash}"

[sinks.hook]
type = "http"
url = "{hook}"

[sinks.bus]
type = "nats"
url = "{nats}"
subject = "{prefix}.{{eventType}}"
stream = "{stream}"

[sinks.rabbit]
type = "amqp"
url = "{amqp}"
exchange = "{exchange}"
"#,
            hash = sha256_hex(key),
            hook = webhook.url,
        ),
    )
    .unwrap();
    let log = dir.path().join("serve.log");
    let header = format!("x-otlp-token={COLLECTOR_TOKEN}");
    let running = start_traced(
        &dir.path().join("data"),
        &config,
        &log,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.base.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_HEADERS", header.as_str()),
            ("OTEL_SERVICE_NAME", "order-listener-under-test"),
        ],
    );
    let http = reqwest::Client::new();
    let event = onap_event(
        "trace-1",
        "ServiceOrderCreationNotification",
        1_000,
        "SO-trace",
        "acknowledged",
        vec![],
    );
    let post = |body: String, traceparent: String| {
        http.post(&running.listener_url)
            .bearer_auth(key)
            .header("content-type", "application/json")
            .header("traceparent", traceparent)
            .header("tracestate", SELLER_STATE)
            .body(body)
            .send()
    };
    let seller = format!("00-{SELLER_TRACE}-{SELLER_SPAN}-01");
    let response = post(event.to_string(), seller).await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    // A refusal in another trace: an unreadable body is 400, code 22.
    let other_trace = "0af7651916cd43dd8448eb211c80319c";
    let refused = post("{".into(), format!("00-{other_trace}-b7ad6b7169203331-01"))
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);

    // Every sink gets the event with its attempt's context, in the seller's trace.
    let hooked = webhook
        .wait_for("the event", |seen| seen.iter().any(Received::delivered))
        .await;
    let hooked = hooked[0].trace.clone();
    let bus = nats_trace(&nats, &stream).await;
    let rabbit = amqp_trace(&mut rabbit).await;

    let path = reqwest::Url::parse(&running.listener_url)
        .unwrap()
        .path()
        .to_owned();
    let attempts = collector
        .wait_for("a delivery attempt span per sink", |spans| {
            let attempts: Vec<Exported> = spans
                .iter()
                .filter(|span| span.name().starts_with("deliver "))
                .cloned()
                .collect();
            (attempts.len() >= 3).then_some(attempts)
        })
        .await;
    let in_trace = |name: &str| -> Vec<Exported> {
        collector
            .exports()
            .spans
            .into_iter()
            .filter(|span| span.trace_id() == SELLER_TRACE && span.name() == name)
            .collect()
    };
    let request = collector
        .wait_for("the request's span", |spans| {
            spans
                .iter()
                .find(|span| span.trace_id() == SELLER_TRACE && span.parent() == SELLER_SPAN)
                .cloned()
        })
        .await;

    // The request's span continues the seller's, and says what happened.
    assert_eq!(request.name(), format!("POST {path}"));
    assert_eq!(request.service, "order-listener-under-test");
    assert_eq!(request.span.kind, SpanKind::Server as i32);
    for (key, value) in [
        ("http.request.method", "POST"),
        ("url.path", path.as_str()),
        ("http.route", path.as_str()),
        ("http.response.status_code", "201"),
        ("order_listener.dialect", "onap"),
        ("order_listener.client", "seller"),
        ("order_listener.event_id", "trace-1"),
        (
            "order_listener.event_type",
            "ServiceOrderCreationNotification",
        ),
        ("client.address", "127.0.0.1"),
    ] {
        assert!(request.has(key, value), "{key} = {value}: {request:?}");
    }
    assert_eq!(request.attribute("order_listener.error.code"), None);

    // Its children: the gate, the parse, the append.
    let child = |name: &str| {
        let found = in_trace(name);
        assert_eq!(found.len(), 1, "one {name} span: {found:?}");
        let span = found[0].clone();
        assert_eq!(
            span.parent(),
            request.span_id(),
            "{name} is the request's child"
        );
        span
    };
    child("gate");
    child("parse");
    let append = child("append");
    assert!(append.has("order_listener.sequence", "1"), "{append:?}");
    assert!(
        append.has("order_listener.duplicate", "false"),
        "{append:?}"
    );
    let batch = append
        .attribute("order_listener.commit.batch")
        .expect("the append names its commit batch");
    assert_eq!(
        append.attribute("order_listener.commit.size").as_deref(),
        Some("1")
    );

    // The commit batch is a span of its own, linked to the append it held.
    let commit = collector
        .wait_for("the commit batch's span", |spans| {
            spans
                .iter()
                .find(|span| {
                    span.name() == "commit batch"
                        && span.span.links.iter().any(|link| {
                            hex::encode(&link.trace_id) == SELLER_TRACE
                                && hex::encode(&link.span_id) == append.span_id()
                        })
                })
                .cloned()
        })
        .await;
    assert!(
        commit.has("order_listener.commit.batch", &batch),
        "{commit:?}"
    );

    // One attempt per sink, each continuing the append's span; each sink got that attempt's
    // context, with the seller's tracestate.
    for (sink, kind, received) in [
        ("hook", "http", &hooked),
        ("bus", "nats", &bus),
        ("rabbit", "amqp", &rabbit),
    ] {
        let attempt = attempts
            .iter()
            .find(|span| span.has("order_listener.sink", sink))
            .unwrap_or_else(|| panic!("an attempt for {sink}: {attempts:?}"));
        assert_eq!(attempt.trace_id(), SELLER_TRACE, "{sink}");
        assert_eq!(attempt.parent(), append.span_id(), "{sink}");
        assert_eq!(attempt.name(), format!("deliver {sink}"));
        assert_eq!(attempt.span.kind, SpanKind::Producer as i32);
        for (key, value) in [
            ("order_listener.sink.kind", kind),
            ("order_listener.event_id", "trace-1"),
            ("order_listener.delivery.attempt", "1"),
            ("order_listener.delivery.outcome", "delivered"),
        ] {
            assert!(
                attempt.has(key, value),
                "{sink}: {key} = {value}: {attempt:?}"
            );
        }
        assert_eq!(
            received,
            &(attempt.traceparent(), SELLER_STATE.to_owned()),
            "{sink} joins the seller's trace as the attempt's child"
        );
    }

    // The refusal: its own trace, the error code, no append.
    let refusal = collector
        .wait_for("the refused request's span", |spans| {
            spans
                .iter()
                .find(|span| span.trace_id() == other_trace && span.name().starts_with("POST "))
                .cloned()
        })
        .await;
    assert!(
        refusal.has("http.response.status_code", "400"),
        "{refusal:?}"
    );
    assert!(
        refusal.has("order_listener.error.code", "22"),
        "{refusal:?}"
    );
    let refused_children: BTreeSet<String> = collector
        .exports()
        .spans
        .iter()
        .filter(|span| span.parent() == refusal.span_id())
        .map(|span| span.name().to_owned())
        .collect();
    assert_eq!(
        refused_children,
        BTreeSet::from(["gate".to_owned(), "parse".to_owned()])
    );

    // Every export carried the collector's header; the log names it, never its value.
    let exports = collector.exports();
    assert!(exports.failures.is_empty(), "{:?}", exports.failures);
    assert!(exports.tokens.iter().all(|token| token == COLLECTOR_TOKEN));
    drop(running);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("traces: exporting spans over OTLP") && logged.contains("x-otlp-token"),
        "the start-up line says where spans go: {}",
        logged.lines().take(5).collect::<Vec<_>>().join("\n")
    );
    assert!(
        !logged.contains(COLLECTOR_TOKEN),
        "the header's value is logged"
    );
    assert!(
        !logged.contains("listener request") && !logged.contains("delivery attempt"),
        "trace spans stay out of the log"
    );
}

#[tokio::test]
async fn with_traces_off_the_sellers_context_is_stored_and_passed_on_as_it_came() {
    let webhook = WebhookReceiver::start(503).await;
    let app = spawn_app_with_file(&format!(
        r#"
[sinks.hook]
type = "http"
url = "{}"
retry_schedule = ["50ms"]
"#,
        webhook.url
    ))
    .await;
    let event = |id: &str| {
        onap_event(
            id,
            "ServiceOrderCreationNotification",
            1_000,
            id,
            "acknowledged",
            vec![],
        )
    };
    let seller = format!("00-{SELLER_TRACE}-{SELLER_SPAN}-01");
    let traced = app
        .client
        .post(&app.listener_url)
        .header("content-type", "application/json")
        .header("traceparent", &seller)
        .header("tracestate", SELLER_STATE)
        .body(event("off-1").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(traced.status().as_u16(), 201);
    assert_eq!(app.post(&event("off-2")).await.status().as_u16(), 201);
    // An invalid traceparent is not passed on.
    let invalid = app
        .client
        .post(&app.listener_url)
        .header("content-type", "application/json")
        .header("traceparent", "00-not-a-trace-01")
        .body(event("off-3").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status().as_u16(), 201);
    // The first attempts fail; the retries read the deliveries from the store again.
    webhook
        .wait_for("three failed attempts", |seen| seen.len() >= 3)
        .await;
    webhook.answer(200);
    let ids = BTreeSet::from(["off-1", "off-2", "off-3"].map(str::to_owned));
    let seen = webhook.until_delivered(&ids).await;
    let trace_of = |id: &str| -> Vec<(String, String)> {
        seen.iter()
            .filter(|received| received.event_id == id)
            .map(|received| received.trace.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    assert_eq!(trace_of("off-1"), [(seller, SELLER_STATE.to_owned())]);
    assert_eq!(trace_of("off-2"), [(String::new(), String::new())]);
    assert_eq!(trace_of("off-3"), [(String::new(), String::new())]);
    app.stop().await;
}

#[tokio::test]
async fn spans_reach_the_collector_over_grpc_and_over_http_json() {
    init();
    for (protocol, collector) in [
        ("grpc", Collector::start_grpc().await),
        ("http/json", Collector::start().await),
    ] {
        let webhook = WebhookReceiver::start(204).await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("order-listener.toml");
        let sink = format!("[sinks.hook]\ntype = \"http\"\nurl = \"{}\"\n", webhook.url);
        std::fs::write(&config, format!("allow_anonymous = true\n{sink}")).unwrap();
        let log = dir.path().join("serve.log");
        let header = format!("x-otlp-token={COLLECTOR_TOKEN}");
        let running = start_traced(
            &dir.path().join("data"),
            &config,
            &log,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.base.as_str()),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
                ("OTEL_EXPORTER_OTLP_HEADERS", header.as_str()),
            ],
        );
        let event = onap_event(
            "over-the-wire",
            "ServiceOrderCreationNotification",
            1_000,
            "SO-wire",
            "acknowledged",
            vec![],
        );
        let response = reqwest::Client::new()
            .post(&running.listener_url)
            .header("content-type", "application/json")
            .header("traceparent", format!("00-{SELLER_TRACE}-{SELLER_SPAN}-01"))
            .body(event.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201, "{protocol}");
        let hooked = webhook
            .wait_for("the event", |seen| seen.iter().any(Received::delivered))
            .await;
        let attempt = collector
            .wait_for("the attempt's span", |spans| {
                spans
                    .iter()
                    .find(|span| span.name() == "deliver hook")
                    .cloned()
            })
            .await;
        assert_eq!(attempt.trace_id(), SELLER_TRACE, "{protocol}");
        assert_eq!(hooked[0].trace.0, attempt.traceparent(), "{protocol}");
        let request = collector
            .wait_for("the request's span", |spans| {
                spans
                    .iter()
                    .find(|span| span.parent() == SELLER_SPAN)
                    .cloned()
            })
            .await;
        assert!(
            request.has("http.response.status_code", "201"),
            "{protocol}: {request:?}"
        );
        assert_eq!(
            request.service, "order-listener",
            "the default service name"
        );
        let exports = collector.exports();
        assert!(
            exports.failures.is_empty(),
            "{protocol}: {:?}",
            exports.failures
        );
        assert!(
            exports.tokens.iter().all(|token| token == COLLECTOR_TOKEN),
            "{protocol}: the header goes with every export"
        );
        drop(running);
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(
            logged.contains(protocol),
            "{protocol}: the start-up line names it"
        );
        assert!(
            !logged.contains(COLLECTOR_TOKEN),
            "{protocol}: the header's value is logged"
        );
    }
}
