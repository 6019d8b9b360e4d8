//! `[sinks.NAME]`: where accepted events are handed on — an HTTP webhook, NATS JetStream,
//! RabbitMQ, Redis Streams, MQTT or Kafka — with a filter (dialects, event types, order and item states), a
//! retry schedule and a horizon. Read as plain settings, checked once into [`SinkConfig`].

mod kafka;
mod tls;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use super::http_auth::{self, BasicSettings, HttpAuth, OAuth2Settings};
use crate::domain::envelope::{Dialect, EventType};
use crate::domain::routing::{Route, RouteFilter, SinkName};
use crate::domain::state::State;
use crate::secret::Secret;
use crate::standard_webhooks::WebhookSecret;

pub use self::kafka::{KafkaBrokers, KafkaSasl};
pub use self::tls::{ClientCertificate, SinkTls};
use self::tls::{read_tls, speaks_tls};

/// One sink as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SinkSettings {
    /// `http`, `nats`, `amqp`, `redis`, `mqtt` or `kafka`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A disabled sink gets no new deliveries.
    pub enabled: bool,
    /// Only events sent in these dialects (`onap`, `tmf641-v4`, …); empty means all.
    pub dialects: Vec<String>,
    /// Only events from these sources: `seller` (a seller's notification) and `reconciled`
    /// (synthesized by the listener from the seller's API); empty means both.
    pub sources: Vec<String>,
    /// Only these event types; empty means all.
    pub event_types: Vec<String>,
    /// Only events whose order is in one of these states.
    pub order_states: Vec<String>,
    /// Only events with an item in one of these states.
    pub item_states: Vec<String>,
    /// Orders delivered at once.
    pub concurrency: usize,
    /// How long one attempt may take.
    pub timeout_seconds: u64,
    /// Waits between attempts, as `5s`, `2m`, `1h`; the last repeats.
    pub retry_schedule: Vec<String>,
    /// How long after it was queued a delivery becomes a dead letter.
    pub retry_horizon: String,
    /// HTTP: the URL to POST to. NATS: `nats://host:4222`. RabbitMQ: `amqp://user:pass@host/vhost`.
    pub url: Option<Secret>,
    /// HTTP: a `whsec_` secret to sign requests with (Standard Webhooks).
    pub signing_secret: Option<Secret>,
    /// HTTP: `Authorization: Bearer` with this token.
    pub bearer_token: Option<Secret>,
    /// HTTP: HTTP Basic.
    pub basic: Option<BasicSettings>,
    /// HTTP: a token from OAuth2's client-credentials grant.
    pub oauth2: Option<OAuth2Settings>,
    /// NATS: the subject, with `{eventType}`, `{orderId}` and `{eventId}`.
    pub subject: String,
    /// NATS: a JetStream stream to create for the subjects when it does not exist. Redis: the
    /// stream's key, a template with the same placeholders as `subject` (default `orders`).
    pub stream: Option<String>,
    /// RabbitMQ: the exchange.
    pub exchange: String,
    /// RabbitMQ: the routing key, with the same placeholders as `subject`.
    pub routing_key: String,
    /// RabbitMQ: declare the exchange (durable, topic) at start.
    pub declare_exchange: bool,
    /// Redis: trim the stream to about this many entries (`MAXLEN ~`); unset: never trimmed.
    pub max_len: Option<u64>,
    /// MQTT: the topic, a template (default `orders/{orderId}/events`). Kafka: the topic, a
    /// template (default `orders`).
    pub topic: Option<String>,
    /// MQTT: where the order's projection is published, retained, after each event (a
    /// template such as `orders/{orderId}/state`); unset: not published.
    pub state_topic: Option<String>,
    /// MQTT: `5` or `3.1.1`.
    pub protocol: String,
    /// MQTT: the client id; unset: `order-listener-NAME-` and 8 random hex digits.
    pub client_id: Option<String>,
    /// Kafka: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`, for the URL's user and password.
    pub sasl_mechanism: String,
    /// TLS: also trust the servers whose certificates the CAs of this PEM file sign, on top of
    /// the system's roots (a private CA).
    pub ca_cert: Option<PathBuf>,
    /// TLS: the client certificate (PEM, with its chain) to show a server that asks for one.
    pub client_cert: Option<PathBuf>,
    /// TLS: the private key (PEM) of `client_cert`.
    pub client_key: Option<PathBuf>,
}

impl Default for SinkSettings {
    fn default() -> Self {
        SinkSettings {
            kind: String::new(),
            enabled: true,
            dialects: Vec::new(),
            sources: Vec::new(),
            event_types: Vec::new(),
            order_states: Vec::new(),
            item_states: Vec::new(),
            concurrency: 8,
            timeout_seconds: 10,
            retry_schedule: ["5s", "30s", "2m", "10m", "1h"].map(str::to_owned).to_vec(),
            retry_horizon: "24h".into(),
            url: None,
            signing_secret: None,
            bearer_token: None,
            basic: None,
            oauth2: None,
            subject: "orders.{eventType}.{orderId}".into(),
            stream: None,
            exchange: "order-listener".into(),
            routing_key: "{eventType}.{orderId}".into(),
            declare_exchange: true,
            max_len: None,
            topic: None,
            state_topic: None,
            protocol: "5".into(),
            client_id: None,
            sasl_mechanism: "PLAIN".into(),
            ca_cert: None,
            client_cert: None,
            client_key: None,
        }
    }
}

/// The sink types, as an error names them.
const KINDS: &str = "http, nats, amqp, redis, mqtt or kafka";

/// The Redis stream's key when `stream` is not set.
const REDIS_STREAM: &str = "orders";

/// The MQTT topic when `topic` is not set.
const MQTT_TOPIC: &str = "orders/{orderId}/events";

/// The Kafka topic when `topic` is not set.
const KAFKA_TOPIC: &str = "orders";

/// The name of the internal sink that fetches orders from the seller APIs
/// ([`SinkTarget::SellerApi`]); no configured sink may take it.
pub const SELLER_API_SINK: &str = "seller-api";

/// When a failed delivery is tried again, and when it is given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The waits after the first, second, … failure; the last repeats.
    pub schedule: Vec<Duration>,
    /// Past this age a delivery becomes a dead letter.
    pub horizon: Duration,
}

impl RetryPolicy {
    /// The wait after `failures` failed attempts (1 for the first).
    pub fn wait_after(&self, failures: u32) -> Duration {
        let index = (failures.max(1) - 1) as usize;
        self.schedule
            .get(index)
            .or(self.schedule.last())
            .copied()
            .unwrap_or(Duration::from_secs(60))
    }
}

/// Where a sink sends.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkTarget {
    /// POST the event to a URL.
    Http {
        /// The URL.
        url: Secret,
        /// The `whsec_` secret, when requests are signed.
        signing_secret: Option<WebhookSecret>,
        /// How the sink proves who it is, if the receiver asks.
        auth: Option<Box<HttpAuth>>,
    },
    /// Publish to NATS JetStream and wait for the ack.
    Nats {
        /// The server URL.
        url: Secret,
        /// The subject template.
        subject: String,
        /// A stream to create when missing.
        stream: Option<String>,
    },
    /// Publish to a RabbitMQ exchange with publisher confirms.
    Amqp {
        /// The broker URL.
        url: Secret,
        /// The exchange.
        exchange: String,
        /// The routing key template.
        routing_key: String,
        /// Whether to declare the exchange.
        declare_exchange: bool,
    },
    /// Add to a Redis stream, with an entry id derived from the store's sequence.
    Redis {
        /// The server URL (`redis://` or `rediss://`, with an ACL user and password).
        url: Secret,
        /// The stream's key template.
        stream: String,
        /// `MAXLEN ~`, when set.
        max_len: Option<u64>,
    },
    /// Publish to an MQTT broker at QoS 1, and the order's projection, retained, when asked.
    Mqtt {
        /// The broker URL (`mqtt://` or `mqtts://`, with a user and password).
        url: Secret,
        /// The topic template.
        topic: String,
        /// The retained projection's topic template.
        state_topic: Option<String>,
        /// The protocol version.
        protocol: MqttProtocol,
        /// The client id, when set.
        client_id: Option<String>,
    },
    /// Produce to Kafka with `acks=all`, keyed by the order id.
    Kafka {
        /// `kafka://` or `kafkas://`, the login and the bootstrap brokers.
        url: Secret,
        /// The topic template.
        topic: String,
        /// The SASL mechanism, when the URL has a login.
        sasl: KafkaSasl,
    },
    /// Fetch each event's order from the seller APIs of `Config::seller_apis` and store it as
    /// a snapshot: the internal sink [`SELLER_API_SINK`], never configured under `[sinks]`.
    SellerApi,
}

/// The MQTT version a sink speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttProtocol {
    /// MQTT 5.
    V5,
    /// MQTT 3.1.1.
    V311,
}

impl FromStr for MqttProtocol {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<MqttProtocol> {
        match text {
            "5" | "5.0" => Ok(MqttProtocol::V5),
            "3.1.1" => Ok(MqttProtocol::V311),
            other => bail!("protocol {other:?} is not known: use \"5\" or \"3.1.1\""),
        }
    }
}

/// A checked sink.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkConfig {
    /// Its name.
    pub name: SinkName,
    /// Whether it gets new deliveries.
    pub enabled: bool,
    /// The events it takes.
    pub filter: RouteFilter,
    /// Orders delivered at once.
    pub concurrency: usize,
    /// One attempt's time limit.
    pub timeout: Duration,
    /// Retries.
    pub retry: RetryPolicy,
    /// Where it sends.
    pub target: SinkTarget,
    /// The CAs it trusts besides the system's and the certificate it shows, as read from the
    /// files when the configuration was checked.
    pub tls: SinkTls,
}

impl SinkConfig {
    /// The route the store applies to new events.
    pub fn route(&self) -> Route {
        Route {
            sink: self.name.clone(),
            filter: self.filter.clone(),
        }
    }
}

fn set<T: Ord>(
    field: &str,
    values: &[String],
    parse: impl Fn(&str) -> Option<T>,
    valid: &str,
) -> anyhow::Result<Option<BTreeSet<T>>> {
    if values.is_empty() {
        return Ok(None);
    }
    values
        .iter()
        .map(|value| {
            parse(value).with_context(|| format!("{field} has {value:?}; use one of {valid}"))
        })
        .collect::<anyhow::Result<BTreeSet<T>>>()
        .map(Some)
}

fn duration(field: &str, text: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(text.trim())
        .with_context(|| format!("{field} {text:?} is not a duration such as 30s, 2m or 1h"))
}

/// A retry policy from `retry_schedule` and `retry_horizon` as written.
pub(super) fn retry_policy(schedule: &[String], horizon: &str) -> anyhow::Result<RetryPolicy> {
    let schedule = schedule
        .iter()
        .map(|text| duration("retry_schedule", text))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if schedule.is_empty() {
        bail!("retry_schedule needs at least one wait, such as [\"5s\", \"1m\"]");
    }
    let horizon = duration("retry_horizon", horizon)?;
    Ok(RetryPolicy { schedule, horizon })
}

/// Checks every `[sinks.NAME]`.
pub fn check(sinks: &BTreeMap<String, SinkSettings>) -> anyhow::Result<Vec<SinkConfig>> {
    sinks
        .iter()
        .map(|(name, settings)| {
            check_sink(name, settings).with_context(|| format!("in [sinks.{name}]"))
        })
        .collect()
}

fn check_sink(name: &str, settings: &SinkSettings) -> anyhow::Result<SinkConfig> {
    let name = SinkName::from_str(name).map_err(anyhow::Error::msg)?;
    if name.as_str() == SELLER_API_SINK {
        bail!(
            "the name {SELLER_API_SINK} is reserved for the fetches from [seller_apis]: give this \
             sink another name"
        );
    }
    let states = State::ALL.map(|state| state.as_str()).join(", ");
    let types = EventType::ALL.map(|kind| kind.as_str()).join(", ");
    let dialects = Dialect::ALL.map(Dialect::as_str).join(", ");
    let filter = RouteFilter {
        dialects: set(
            "dialects",
            &settings.dialects,
            |text| text.parse().ok(),
            &dialects,
        )?,
        sources: set(
            "sources",
            &settings.sources,
            |text| text.parse().ok(),
            "seller, reconciled",
        )?,
        event_types: set(
            "event_types",
            &settings.event_types,
            |text| text.parse().ok(),
            &types,
        )?,
        order_states: set(
            "order_states",
            &settings.order_states,
            |text| text.parse().ok(),
            &states,
        )?,
        item_states: set(
            "item_states",
            &settings.item_states,
            |text| text.parse().ok(),
            &states,
        )?,
    };
    let retry = retry_policy(&settings.retry_schedule, &settings.retry_horizon)?;
    if settings.concurrency == 0 {
        bail!("concurrency must be at least 1");
    }
    let url = settings
        .url
        .clone()
        .filter(|url| !url.expose().is_empty())
        .context("url is required")?;
    let tls = read_tls(settings)?;
    if tls.is_set() && !speaks_tls(&settings.kind, url.expose()) {
        bail!(
            "ca_cert, client_cert and client_key are for TLS, and this url does not use it: \
             use https://, amqps://, rediss://, mqtts:// or kafkas://"
        );
    }
    let auth = http_auth::check(
        settings.bearer_token.as_ref(),
        settings.basic.as_ref(),
        settings.oauth2.as_ref(),
    )?;
    if auth.is_some() && settings.kind != "http" {
        bail!(
            "bearer_token, basic and oauth2 are for http sinks: a broker's user and password go \
             in its url"
        );
    }
    let target = match settings.kind.as_str() {
        "http" => {
            let parsed = reqwest::Url::parse(url.expose())
                .ok()
                .filter(|parsed| matches!(parsed.scheme(), "http" | "https"));
            if parsed.is_none() {
                bail!("url must be an http:// or https:// URL");
            }
            let signing_secret = settings
                .signing_secret
                .as_ref()
                .map(|secret| secret.expose().parse::<WebhookSecret>())
                .transpose()
                .context("signing_secret is not valid")?;
            SinkTarget::Http {
                url,
                signing_secret,
                auth: auth.map(Box::new),
            }
        }
        "nats" => {
            if !url.expose().starts_with("nats://") && !url.expose().starts_with("tls://") {
                bail!("url must be a nats:// URL, as nats://127.0.0.1:4222");
            }
            SinkTarget::Nats {
                url,
                subject: settings.subject.clone(),
                stream: settings.stream.clone(),
            }
        }
        "amqp" => {
            if !url.expose().starts_with("amqp://") && !url.expose().starts_with("amqps://") {
                bail!("url must be an amqp:// URL, as amqp://guest:guest@127.0.0.1:5672/%2f");
            }
            SinkTarget::Amqp {
                url,
                exchange: settings.exchange.clone(),
                routing_key: settings.routing_key.clone(),
                declare_exchange: settings.declare_exchange,
            }
        }
        "redis" => {
            if !url.expose().starts_with("redis://") && !url.expose().starts_with("rediss://") {
                bail!(
                    "url must be a redis:// or rediss:// URL, as redis://user:password@127.0.0.1:6379/0"
                );
            }
            if settings.max_len == Some(0) {
                bail!("max_len must be at least 1, or left out to keep every entry");
            }
            SinkTarget::Redis {
                url,
                stream: settings
                    .stream
                    .clone()
                    .unwrap_or_else(|| REDIS_STREAM.to_owned()),
                max_len: settings.max_len,
            }
        }
        "mqtt" => {
            if !url.expose().starts_with("mqtt://") && !url.expose().starts_with("mqtts://") {
                bail!(
                    "url must be an mqtt:// or mqtts:// URL, as mqtt://user:password@127.0.0.1:1883"
                );
            }
            let topic = settings
                .topic
                .clone()
                .unwrap_or_else(|| MQTT_TOPIC.to_owned());
            for (field, template) in [
                ("topic", Some(&topic)),
                ("state_topic", settings.state_topic.as_ref()),
            ] {
                if let Some(template) = template
                    && (template.is_empty() || template.contains(['+', '#']))
                {
                    bail!("{field} {template:?} must be a topic to publish to, without + or #");
                }
            }
            SinkTarget::Mqtt {
                url,
                topic,
                state_topic: settings.state_topic.clone(),
                protocol: settings.protocol.parse()?,
                client_id: settings.client_id.clone(),
            }
        }
        "kafka" => {
            KafkaBrokers::parse(url.expose()).map_err(anyhow::Error::msg)?;
            SinkTarget::Kafka {
                url,
                topic: settings
                    .topic
                    .clone()
                    .unwrap_or_else(|| KAFKA_TOPIC.to_owned()),
                sasl: settings.sasl_mechanism.parse()?,
            }
        }
        "" => bail!("type is required: {KINDS}"),
        other => bail!("type {other:?} is not known: use {KINDS}"),
    };
    Ok(SinkConfig {
        name,
        enabled: settings.enabled,
        filter,
        concurrency: settings.concurrency,
        timeout: Duration::from_secs(settings.timeout_seconds.max(1)),
        retry,
        target,
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::envelope::Source;

    /// The settings of a sink of `kind` to `url`, the rest as by default.
    pub(super) fn sink(kind: &str, url: &str) -> SinkSettings {
        SinkSettings {
            kind: kind.into(),
            url: Some(Secret::new(url)),
            ..SinkSettings::default()
        }
    }

    #[test]
    fn the_retry_schedule_repeats_its_last_wait() {
        let retry = check_sink("s", &sink("http", "http://x/")).unwrap().retry;
        let waits: Vec<u64> = (1..=7).map(|n| retry.wait_after(n).as_secs()).collect();
        assert_eq!(waits, [5, 30, 120, 600, 3600, 3600, 3600]);
        assert_eq!(retry.horizon, Duration::from_secs(24 * 3600));
    }

    #[test]
    fn a_sink_takes_the_dialects_it_names() {
        let settings = SinkSettings {
            dialects: vec!["tmf641-v4".into(), "mef-legato-v6".into()],
            ..sink("http", "http://x/")
        };
        let filter = check_sink("s", &settings).unwrap().filter;
        assert_eq!(
            filter.dialects,
            Some([Dialect::Tmf641V4, Dialect::MefLegatoV6].into())
        );
        let every = check_sink("s", &sink("http", "http://x/")).unwrap().filter;
        assert_eq!(every.dialects, None, "no dialects: every dialect");
        assert_eq!(every.sources, None, "no sources: both");
        let sellers_only = SinkSettings {
            sources: vec!["seller".into()],
            ..sink("http", "http://x/")
        };
        assert_eq!(
            check_sink("s", &sellers_only).unwrap().filter.sources,
            Some([Source::Seller].into())
        );
        let wrong = SinkSettings {
            sources: vec!["synthesized".into()],
            ..sink("http", "http://x/")
        };
        let message = format!("{:#}", check_sink("s", &wrong).unwrap_err());
        assert!(message.contains("seller, reconciled"), "{message}");
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (sink("smtp", "x"), "smtp"),
            (sink("http", "ftp://x"), "http://"),
            (sink("nats", "http://x"), "nats://"),
            (sink("redis", "http://x"), "redis://"),
            (sink("mqtt", "tcp://x"), "mqtt://"),
            (sink("kafka", "kafka://broker"), "host:port"),
            (
                SinkSettings {
                    sasl_mechanism: "GSSAPI".into(),
                    ..sink("kafka", "kafka://broker:9092")
                },
                "SCRAM-SHA-512",
            ),
            (
                SinkSettings {
                    protocol: "3".into(),
                    ..sink("mqtt", "mqtt://x")
                },
                "3.1.1",
            ),
            (
                SinkSettings {
                    state_topic: Some("orders/+/state".into()),
                    ..sink("mqtt", "mqtt://x")
                },
                "without + or #",
            ),
            (
                SinkSettings {
                    max_len: Some(0),
                    ..sink("redis", "redis://x")
                },
                "max_len",
            ),
            (
                SinkSettings {
                    order_states: vec!["COMPLETED".into()],
                    ..sink("http", "http://x/")
                },
                "COMPLETED",
            ),
            (
                SinkSettings {
                    dialects: vec!["onap".into(), "tmf641".into()],
                    ..sink("http", "http://x/")
                },
                "dialects has \"tmf641\"; use one of onap, tmf641-v4, tmf641-v5, mef-legato-v5, mef-legato-v6",
            ),
            (
                SinkSettings {
                    retry_schedule: vec!["soon".into()],
                    ..sink("http", "http://x/")
                },
                "soon",
            ),
            (
                SinkSettings {
                    url: None,
                    ..sink("http", "")
                },
                "url is required",
            ),
        ];
        let message = format!(
            "{:#}",
            check(&[(SELLER_API_SINK.into(), sink("http", "http://x/"))].into()).unwrap_err()
        );
        assert!(message.contains("reserved"), "{message}");
        for (settings, expected) in cases {
            let message = format!("{:#}", check_sink("s", &settings).unwrap_err());
            assert!(message.contains(expected), "{expected}: {message}");
        }
    }
}
