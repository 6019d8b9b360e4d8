//! Handing accepted events on: sinks (an HTTP webhook, NATS JetStream, RabbitMQ, Redis Streams,
//! MQTT, Kafka) and the worker that delivers from the store's outbox. Handlers never call a sink; the outbox
//! is written with the event, so nothing acknowledged is lost when a sink is slow or down. Each
//! sink passes the event's trace context on (a `traceparent` header, and `tracestate`), so that
//! a consumer's trace joins the seller's.

pub(crate) mod amqp;
pub(crate) mod error;
pub(crate) mod http;
pub(crate) mod kafka;
pub(crate) mod mqtt;
pub(crate) mod nats;
pub(crate) mod redis;
pub(crate) mod seller_api;
pub(crate) mod tls;
pub(crate) mod token;
pub(crate) mod worker;
pub(crate) mod workers;

pub(crate) use error::ForwardError;

use std::sync::Arc;
use std::time::Duration;

use crate::config::seller_apis::SellerApi;
use crate::config::sinks::{SinkConfig, SinkTarget};
use crate::domain::routing::SinkName;
use crate::metrics::Metrics;
use crate::store::{Delivery, Store};
use crate::traces::TraceContext;

/// What a sink said about a delivery it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Sent {
    /// The broker already had this event (it deduplicated it).
    pub duplicate: bool,
}

/// A configured sink, ready to deliver (it connects on first use and again after failures).
#[derive(Debug)]
pub(crate) enum Sink {
    /// An HTTP webhook.
    Http(http::HttpSink),
    /// NATS JetStream.
    Nats(nats::NatsSink),
    /// RabbitMQ.
    Amqp(amqp::AmqpSink),
    /// Redis Streams.
    Redis(redis::RedisSink),
    /// An MQTT broker.
    Mqtt(mqtt::MqttSink),
    /// Kafka.
    Kafka(kafka::KafkaSink),
    /// The seller APIs, from which the orders of reference-only events are fetched.
    SellerApi(seller_api::SellerApiSink),
}

impl Sink {
    /// Prepares the sink; nothing is connected yet. The `seller-api` sink fetches from
    /// `seller_apis` and writes its snapshots to `store`, counted in `metrics`.
    pub(crate) fn new(
        config: &SinkConfig,
        seller_apis: &[SellerApi],
        store: &Store,
        metrics: &Arc<Metrics>,
    ) -> anyhow::Result<Sink> {
        Ok(match &config.target {
            SinkTarget::Http {
                url,
                signing_secret,
                auth,
            } => Sink::Http(http::HttpSink::new(
                url,
                signing_secret.as_ref(),
                auth.as_deref(),
                config.timeout,
                &config.tls,
            )?),
            SinkTarget::Nats {
                url,
                subject,
                stream,
            } => Sink::Nats(nats::NatsSink::new(
                url.clone(),
                subject.clone(),
                stream.clone(),
                &config.tls,
            )?),
            SinkTarget::Amqp {
                url,
                exchange,
                routing_key,
                declare_exchange,
            } => Sink::Amqp(amqp::AmqpSink::new(
                url.clone(),
                exchange.clone(),
                routing_key.clone(),
                *declare_exchange,
                &config.tls,
            )),
            SinkTarget::Redis {
                url,
                stream,
                max_len,
            } => Sink::Redis(redis::RedisSink::new(
                url.clone(),
                stream.clone(),
                *max_len,
                config.retry.horizon.max(Duration::from_secs(3600)),
                &config.tls,
            )),
            SinkTarget::Mqtt {
                url,
                topic,
                state_topic,
                protocol,
                client_id,
            } => Sink::Mqtt(mqtt::MqttSink::new(
                url.clone(),
                topic.clone(),
                state_topic.clone(),
                *protocol,
                client_id.clone().unwrap_or_else(|| {
                    format!(
                        "order-listener-{}-{}",
                        config.name,
                        &uuid::Uuid::new_v4().simple().to_string()[..8]
                    )
                }),
                store.clone(),
                &config.tls,
            )?),
            SinkTarget::Kafka { url, topic, sasl } => Sink::Kafka(kafka::KafkaSink::new(
                url.clone(),
                topic.clone(),
                *sasl,
                config.timeout,
                &config.tls,
            )?),
            SinkTarget::SellerApi => Sink::SellerApi(seller_api::SellerApiSink::new(
                seller_apis,
                store.clone(),
                metrics.clone(),
            )?),
        })
    }

    /// Delivers one event with the trace context to pass on (headers named as W3C names them);
    /// returns once the sink has taken it for good (a 2xx, a broker ack).
    pub(crate) async fn deliver(
        &self,
        delivery: &Delivery,
        trace: Option<&TraceContext>,
    ) -> Result<Sent, ForwardError> {
        match self {
            Sink::Http(sink) => sink.deliver(delivery, trace).await,
            Sink::Nats(sink) => sink.deliver(delivery, trace).await,
            Sink::Amqp(sink) => sink.deliver(delivery, trace).await,
            Sink::Redis(sink) => sink.deliver(delivery, trace).await,
            Sink::Mqtt(sink) => sink.deliver(delivery, trace).await,
            Sink::Kafka(sink) => sink.deliver(delivery, trace).await,
            // A fetch from the seller, not a message: nothing to pass on.
            Sink::SellerApi(sink) => sink.deliver(delivery).await,
        }
    }

    /// Connects to the sink's server without delivering anything, to check its settings (the
    /// address, TLS, the login; a NATS stream or RabbitMQ exchange is created as for a
    /// delivery); says what it found. The seller APIs are not probed here.
    pub(crate) async fn probe(&self) -> Result<String, ForwardError> {
        match self {
            Sink::Http(sink) => sink.probe().await,
            Sink::Nats(sink) => sink.probe().await,
            Sink::Amqp(sink) => sink.probe().await,
            Sink::Redis(sink) => sink.probe().await,
            Sink::Mqtt(sink) => sink.probe().await,
            Sink::Kafka(sink) => sink.probe().await,
            Sink::SellerApi(_) => Ok("fetches from [seller_apis]; not probed".to_owned()),
        }
    }

    /// What kind of sink it is, as traces record it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Sink::Http(_) => "http",
            Sink::Nats(_) => "nats",
            Sink::Amqp(_) => "amqp",
            Sink::Redis(_) => "redis",
            Sink::Mqtt(_) => "mqtt",
            Sink::Kafka(_) => "kafka",
            Sink::SellerApi(_) => "seller-api",
        }
    }
}

/// Probes a sink once, within `timeout`, and logs what it found: each sink's worker starts with
/// it (`serve` starting, a reload adding or changing the sink). A sink that cannot be reached is
/// a warning, not a failure: its deliveries wait in the outbox and are retried.
pub(crate) async fn probe_and_log(
    name: SinkName,
    timeout: Duration,
    sink: Arc<Sink>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    if matches!(*sink, Sink::SellerApi(_)) {
        return;
    }
    let probed = tokio::select! {
        probed = tokio::time::timeout(timeout, sink.probe()) => probed,
        () = shutdown.cancelled() => return,
    };
    match probed {
        Ok(Ok(found)) => {
            tracing::info!(sink = %name, kind = sink.kind(), "sink reachable: {found}")
        }
        Ok(Err(error)) => tracing::warn!(
            sink = %name,
            kind = sink.kind(),
            error = %crate::telemetry::error_chain(&error),
            "sink not reachable at the start: its deliveries wait in the outbox and are retried; \
             `order-listener sinks check` tries again"
        ),
        Err(_) => tracing::warn!(
            sink = %name,
            kind = sink.kind(),
            "sink did not answer within {}s at the start: its deliveries wait in the outbox and \
             are retried; `order-listener sinks check` tries again",
            timeout.as_secs()
        ),
    }
}

/// The header (HTTP, NATS) and AMQP header-table key that names the event's dialect.
pub(crate) const DIALECT_HEADER: &str = "Order-Listener-Dialect";

/// The header (HTTP, NATS) and AMQP header-table key that says who wrote the event: `seller`,
/// or `reconciled` for an event the listener synthesized from the seller's API.
pub(crate) const SOURCE_HEADER: &str = "Order-Listener-Source";

/// Fills `{eventType}`, `{orderId}`, `{eventId}` and `{dialect}` in a subject or routing key. Values are
/// made single tokens: `.`, `*`, `>`, `#` and white space become `_`.
pub(crate) fn render(template: &str, delivery: &Delivery) -> String {
    render_with(template, delivery, |c| {
        matches!(c, '.' | '*' | '>' | '#') || c.is_whitespace()
    })
}

/// As [`render`], with the characters that are `special` where the value goes (an MQTT topic
/// level, a Kafka topic name) replaced by `_`.
pub(crate) fn render_with(
    template: &str,
    delivery: &Delivery,
    special: fn(char) -> bool,
) -> String {
    let token = |value: &str| -> String {
        value
            .chars()
            .map(|c| if special(c) { '_' } else { c })
            .collect()
    };
    template
        .replace("{eventType}", delivery.event_type.as_str())
        .replace(
            "{orderId}",
            &token(delivery.order_id.as_ref().map_or("-", |id| id.as_str())),
        )
        .replace("{eventId}", &token(delivery.event_id.as_str()))
        .replace("{dialect}", delivery.dialect.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_rendered_with_single_tokens() {
        let delivery = Delivery {
            source: crate::domain::envelope::Source::Seller,
            id: 1,
            sink: "s".parse().unwrap(),
            sequence: 1,
            event_id: "e.1".parse().unwrap(),
            event_type: crate::domain::envelope::EventType::ServiceOrderStateChange,
            event_date: chrono::Utc::now().into(),
            order_id: Some("SO 1.2>".parse().unwrap()),
            state: crate::store::DeliveryState::Pending,
            attempts: 0,
            created_at: chrono::Utc::now(),
            next_attempt_at: chrono::Utc::now(),
            last_error: None,
            body: bytes::Bytes::new(),
            trace_context: None,
            dialect: crate::domain::envelope::Dialect::MefLegatoV6,
        };
        assert_eq!(
            render("orders.{eventType}.{orderId}.{eventId}", &delivery),
            "orders.ServiceOrderStateChangeNotification.SO_1_2_.e_1"
        );
        assert_eq!(
            render("{dialect}.{eventType}", &delivery),
            "mef-legato-v6.ServiceOrderStateChangeNotification"
        );
    }
}
