//! `ForwardError`: why a delivery (or a fetch from a seller API, `SellerError`) failed, as the
//! sinks see it, with the underlying error kept as its source. The worker branches on it (`is_gone`, `is_retryable`, `retry_after`) and records
//! `telemetry::error_chain` of it. It must never carry a secret: a sink URL may hold a token,
//! so reqwest's errors are kept without their URL, and no variant holds a URL.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;

use crate::domain::envelope::{Dialect, EnvelopeError};
use crate::domain::snapshot::OtherOrder;
use crate::store::StoreError;

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ForwardError {
    /// The webhook answered, but not with a 2xx (nor 410). Retried, no sooner than `retry_after`.
    #[error("HTTP sink answered {status}{}", sink_hint(*status))]
    Rejected {
        /// Its status.
        status: StatusCode,
        /// The wait it asked for with `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// The webhook answered 410: it is gone for good. The sink is disabled and the delivery
    /// waits, untouched, for `sinks enable`.
    #[error("HTTP sink answered {}", StatusCode::GONE)]
    Gone,
    /// No connection to the webhook could be made.
    #[error("HTTP sink: could not connect")]
    Unreachable {
        /// reqwest's error, without its URL.
        #[source]
        source: reqwest::Error,
    },
    /// The HTTP client's timeout (connecting, or the whole request) passed.
    #[error("HTTP sink: timed out")]
    TimedOut {
        /// reqwest's error, without its URL.
        #[source]
        source: reqwest::Error,
    },
    /// The request failed after connecting (a reset, a protocol error).
    #[error("HTTP sink: request failed")]
    Request {
        /// reqwest's error, without its URL.
        #[source]
        source: reqwest::Error,
    },
    /// No OAuth2 token could be had for the webhook.
    #[error("HTTP sink: no OAuth2 token")]
    Token {
        /// Why.
        #[source]
        source: TokenError,
    },
    /// The worker's bound on one attempt (the sink's `timeout`) passed, whatever the sink.
    #[error("no answer within {}s", .after.as_secs())]
    NoAnswer {
        /// The bound.
        after: Duration,
    },
    /// No connection to the NATS server could be made.
    #[error("NATS: cannot connect")]
    NatsConnect {
        /// async-nats' error.
        #[source]
        source: async_nats::ConnectError,
    },
    /// The configured JetStream stream could not be found or created.
    #[error("NATS: cannot create stream {stream}")]
    NatsStream {
        /// The stream's name.
        stream: String,
        /// async-nats' error.
        #[source]
        source: async_nats::jetstream::context::CreateStreamError,
    },
    /// The message could not be published.
    #[error("NATS: cannot publish to {subject}")]
    NatsPublish {
        /// The subject.
        subject: String,
        /// async-nats' error.
        #[source]
        source: async_nats::jetstream::context::PublishError,
    },
    /// The stream did not acknowledge the message.
    #[error("NATS: no ack for {subject}")]
    NatsNoAck {
        /// The subject.
        subject: String,
        /// async-nats' error.
        #[source]
        source: async_nats::jetstream::context::PublishError,
    },
    /// A step with RabbitMQ failed (connecting, opening the channel, publishing…).
    #[error("AMQP: {step}")]
    Amqp {
        /// The step.
        step: AmqpStep,
        /// lapin's error.
        #[source]
        source: lapin::Error,
    },
    /// RabbitMQ returned the (mandatory) message: no queue is bound for its routing key.
    #[error("AMQP: {routing_key} routed nowhere ({reply}): bind a queue to exchange {exchange}")]
    Unroutable {
        /// The message's routing key.
        routing_key: String,
        /// The exchange.
        exchange: String,
        /// The broker's reply text.
        reply: String,
    },
    /// RabbitMQ refused the message (a publisher-confirm nack).
    #[error("AMQP: the broker refused the message")]
    Refused,
    /// RabbitMQ did not confirm the message (confirms were not on for the channel).
    #[error("AMQP: the broker did not confirm")]
    NotConfirmed,
    /// A step with Redis failed (connecting, adding to the stream).
    #[error("Redis: {step}")]
    Redis {
        /// The step.
        step: RedisStep,
        /// redis' error (it never holds the URL's password).
        #[source]
        source: redis::RedisError,
    },
    /// A publish to the MQTT broker failed (connecting, or the broker's answer).
    #[error("MQTT: cannot publish to {topic}")]
    Mqtt {
        /// The topic.
        topic: String,
        /// What went wrong.
        #[source]
        source: MqttError,
    },
    /// No connection to the MQTT broker could be made (a probe).
    #[error("MQTT: cannot connect")]
    MqttConnect {
        /// What went wrong.
        #[source]
        source: MqttError,
    },
    /// The order's projection could not be written as JSON.
    #[error("cannot write the order's projection")]
    Projection {
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// A step with Kafka failed (connecting, reading the metadata, producing).
    #[error("Kafka: {step}")]
    Kafka {
        /// The step.
        step: KafkaStep,
        /// rskafka's error.
        #[source]
        source: rskafka::client::error::Error,
    },
    /// The brokers do not know the topic.
    #[error("Kafka: no topic {topic}: create it, or let the brokers create topics")]
    NoSuchTopic {
        /// The topic.
        topic: String,
    },
    /// The Kafka URL does not read (the configuration check lets none through).
    #[error("Kafka: the url does not read")]
    KafkaUrl,
    /// A seller API could not resolve the event's order.
    #[error("seller API {seller}")]
    Seller {
        /// The seller API's name.
        seller: String,
        /// What went wrong.
        #[source]
        source: SellerError,
    },
    /// No seller API takes the event's dialect (a replay of an event the configuration no
    /// longer resolves).
    #[error("no seller API takes {dialect} events: add its dialect to a [seller_apis.NAME]")]
    NoSellerApi {
        /// The event's dialect.
        dialect: Dialect,
    },
    /// The store could not be read or written.
    #[error("the store failed")]
    Store {
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The event is no longer stored.
    #[error("event {event_id} is no longer stored")]
    EventGone {
        /// The event.
        event_id: String,
    },
    /// The stored event no longer parses.
    #[error("the stored event cannot be read")]
    StoredEvent {
        /// The parser's error.
        #[source]
        source: EnvelopeError,
    },
}

/// The step of a RabbitMQ exchange that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AmqpStep {
    /// Connecting.
    #[error("cannot connect")]
    Connect,
    /// Opening a channel.
    #[error("cannot open a channel")]
    OpenChannel,
    /// Turning publisher confirms on.
    #[error("no publisher confirms")]
    ConfirmSelect,
    /// Declaring the exchange.
    #[error("cannot declare exchange {0}")]
    DeclareExchange(String),
    /// Publishing.
    #[error("cannot publish")]
    Publish,
    /// Waiting for the confirm.
    #[error("no confirm")]
    Confirm,
}

/// The step with Redis that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RedisStep {
    /// Connecting (and authenticating).
    #[error("cannot connect")]
    Connect,
    /// Adding the entry to the stream.
    #[error("cannot add to stream {0}")]
    Add(String),
}

/// The step with Kafka that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KafkaStep {
    /// Connecting to the bootstrap brokers (and SASL).
    #[error("cannot connect")]
    Connect,
    /// Reading the topics' partitions.
    #[error("cannot read the metadata")]
    Metadata,
    /// Producing (or finding the partition's leader).
    #[error("cannot produce to {0}")]
    Produce(String),
}

/// What went wrong with an MQTT publish. Cloned to every publish a failed connection held, so
/// sources are shared.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum MqttError {
    /// The URL is not `mqtt://` or `mqtts://` with a host.
    #[error("url must be an mqtt:// or mqtts:// URL with a host")]
    Url,
    /// The MQTT 3.1.1 connection failed (connecting, refused, or lost).
    #[error("the connection failed")]
    Connection(#[source] Arc<rumqttc::ConnectionError>),
    /// The MQTT 5 connection failed (connecting, refused, or lost).
    #[error("the connection failed")]
    Connection5(#[source] Arc<rumqttc::v5::ConnectionError>),
    /// The MQTT 3.1.1 client took no more requests.
    #[error("the client took no more publishes")]
    Client(#[source] Arc<rumqttc::ClientError>),
    /// The MQTT 5 client took no more requests.
    #[error("the client took no more publishes")]
    Client5(#[source] Arc<rumqttc::v5::ClientError>),
    /// The broker answered the publish with a failure (MQTT 5's reason code).
    #[error("the broker refused the message ({0})")]
    Refused(String),
    /// The connection was stopped before the broker answered.
    #[error("the connection closed before the broker's ack")]
    Closed,
}

/// What went wrong with one seller API.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SellerError {
    /// It answered, but not with a 2xx.
    #[error("answered {status}{}", hint(*status))]
    Answered {
        /// Its status.
        status: StatusCode,
        /// The wait it asked for with `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// A request for the order failed before an answer (connecting, a timeout, a reset).
    #[error("cannot fetch the order")]
    Request {
        /// reqwest's error, without its URL.
        #[source]
        source: reqwest::Error,
    },
    /// No OAuth2 token could be had.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// It answered something that is not a service order.
    #[error("its answer is not a service order")]
    NotAnOrder(#[source] EnvelopeError),
    /// It answered another order.
    #[error(transparent)]
    OtherOrder(#[from] OtherOrder),
    /// Its answer is larger than the listener takes.
    #[error("its answer is larger than {} MiB", .limit / 1024 / 1024)]
    TooLarge {
        /// The most the listener takes, in bytes.
        limit: usize,
    },
}

/// Why no OAuth2 token could be had (`oauth2` of a seller API or a webhook sink).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    /// The request for a token failed before an answer.
    #[error("cannot get an OAuth2 token")]
    Request {
        /// reqwest's error, without its URL.
        #[source]
        source: reqwest::Error,
    },
    /// The OAuth2 token endpoint refused the client.
    #[error(
        "the OAuth2 token endpoint answered {status}; check oauth2's client_id, client_secret and scope"
    )]
    Refused {
        /// Its status.
        status: StatusCode,
    },
    /// The OAuth2 token endpoint answered without a token.
    #[error("the OAuth2 token endpoint's answer holds no access_token")]
    Unreadable,
}

/// What to check when a webhook refuses the sink.
fn sink_hint(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            " (check the sink's bearer_token, basic or oauth2, or the login in its url)"
        }
        _ => "",
    }
}

fn hint(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => " (the order may not be visible there yet)",
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => " (check the seller API's credentials)",
        _ => "",
    }
}

impl SellerError {
    /// Whether the seller answered 404: it has no such order.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, SellerError::Answered { status, .. } if *status == StatusCode::NOT_FOUND)
    }

    /// The wait the seller asked for.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            SellerError::Answered { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl ForwardError {
    /// The failure an HTTP answer other than a 2xx means: 410 is `Gone`, anything else is
    /// `Rejected`, with the wait that `retry_after` (the header's text) asks for.
    pub(crate) fn from_status(status: StatusCode, retry_after: Option<&str>) -> ForwardError {
        if status == StatusCode::GONE {
            return ForwardError::Gone;
        }
        ForwardError::Rejected {
            status,
            retry_after: retry_after.and_then(parse_retry_after),
        }
    }

    /// A failed request: the kind is kept, the URL (which may hold a token) is dropped.
    pub(crate) fn from_request(error: reqwest::Error) -> ForwardError {
        let source = error.without_url();
        if source.is_timeout() {
            ForwardError::TimedOut { source }
        } else if source.is_connect() {
            ForwardError::Unreachable { source }
        } else {
            ForwardError::Request { source }
        }
    }

    /// The sink is gone for good (HTTP 410): it must be disabled.
    pub(crate) fn is_gone(&self) -> bool {
        matches!(self, ForwardError::Gone)
    }

    /// Another attempt may succeed. Every failure is, except `Gone`: a 4xx is retried as well,
    /// since a receiver's refusal is often a configuration fixed later.
    pub(crate) fn is_retryable(&self) -> bool {
        !self.is_gone()
    }

    /// The sink asked to wait at least this long before the next attempt.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            ForwardError::Rejected { retry_after, .. } => *retry_after,
            ForwardError::Seller { source, .. } => source.retry_after(),
            _ => None,
        }
    }
}

/// `Retry-After` as seconds or as an HTTP date.
pub(super) fn parse_retry_after(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    (date.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::error_chain;

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let wait = parse_retry_after(&later).unwrap();
        assert!(
            wait > Duration::from_secs(80) && wait <= Duration::from_secs(90),
            "{wait:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn a_503_with_retry_after_is_retried_no_sooner_than_it_asks() {
        let error = ForwardError::from_status(StatusCode::SERVICE_UNAVAILABLE, Some("7"));
        assert!(error.is_retryable());
        assert!(!error.is_gone());
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            error.to_string(),
            "HTTP sink answered 503 Service Unavailable"
        );
    }

    #[test]
    fn a_410_is_gone_and_not_retried_whatever_its_retry_after() {
        let error = ForwardError::from_status(StatusCode::GONE, Some("60"));
        assert!(error.is_gone());
        assert!(!error.is_retryable());
        assert_eq!(error.retry_after(), None);
        assert_eq!(error.to_string(), "HTTP sink answered 410 Gone");
    }

    #[test]
    fn a_4xx_other_than_410_is_retried_on_the_schedule() {
        for status in [
            StatusCode::BAD_REQUEST,
            StatusCode::UNAUTHORIZED,
            StatusCode::NOT_FOUND,
        ] {
            let error = ForwardError::from_status(status, None);
            assert!(error.is_retryable(), "{status}");
            assert!(!error.is_gone(), "{status}");
            assert_eq!(error.retry_after(), None, "{status}");
        }
        let unreadable = ForwardError::from_status(StatusCode::TOO_MANY_REQUESTS, Some("soon"));
        assert!(unreadable.is_retryable());
        assert_eq!(unreadable.retry_after(), None);
    }

    #[test]
    fn broker_failures_are_retried_and_keep_their_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused here");
        let error = ForwardError::Amqp {
            step: AmqpStep::Connect,
            source: lapin::Error::from(io),
        };
        assert!(error.is_retryable());
        assert_eq!(error.retry_after(), None);
        assert!(
            std::error::Error::source(&error).is_some(),
            "lapin's error is the source"
        );
        let chain = error_chain(&error);
        assert!(
            chain.starts_with("AMQP: cannot connect: ") && chain.contains("refused here"),
            "{chain}"
        );
        let no_answer = ForwardError::NoAnswer {
            after: Duration::from_secs(10),
        };
        assert!(no_answer.is_retryable());
        assert_eq!(no_answer.to_string(), "no answer within 10s");
    }
}
