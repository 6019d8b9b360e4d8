//! The Kafka sink (rskafka: pure Rust, rustls on ring): produces the event's body to a topic
//! made from the event, keyed by the order id, with `acks=all`, and waits for the answer. The
//! key picks the partition as Kafka's own clients do (murmur2 of the key, modulo the topic's
//! partitions), so one order's events stay in one partition, in order, beside those of a Java
//! or librdkafka producer. An event without an order goes to partition 0 without a key.
//!
//! Headers: `eventId`, `eventType`, `dialect`, `source`, `orderId` (when the event has one),
//! `traceparent` and `tracestate` (when passed on). rskafka has no idempotent producer, so an
//! attempt made again after a crash or a lost answer may produce the event twice; a consumer
//! deduplicates by `eventId`.
//!
//! The topic must exist (or the brokers create topics on first use). Connects on first use,
//! and again after a failure; partition clients and partition counts are kept per topic.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};
use rskafka::record::Record;
use tokio::sync::Mutex;

use super::error::KafkaStep;
use super::{ForwardError, Sent, render_with};
use crate::config::sinks::{KafkaBrokers, KafkaSasl, SinkTls};
use crate::secret::Secret;
use crate::store::Delivery;
use crate::traces::TraceContext;
use crate::traces::context::{TRACEPARENT, TRACESTATE};

/// A Kafka producer.
pub(crate) struct KafkaSink {
    url: Secret,
    topic: String,
    sasl: KafkaSasl,
    timeout: Duration,
    /// The TLS of a `kafkas://` URL: the system's roots and the sink's CAs and client
    /// certificate; `None` for `kafka://`.
    tls: Option<Arc<rustls::ClientConfig>>,
    state: Mutex<Option<Connected>>,
}

/// A client and what it learned: each topic's partition count and partition clients.
struct Connected {
    client: Arc<Client>,
    partitions: HashMap<String, i32>,
    producers: HashMap<(String, i32), Arc<PartitionClient>>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.topic)
            .field("sasl", &self.sasl)
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// A sink producing to `topic` (a template) on the brokers of `url`, with `sasl` when the
    /// URL has credentials; an attempt's retries inside rskafka stop after `timeout`.
    pub(crate) fn new(
        url: Secret,
        topic: String,
        sasl: KafkaSasl,
        timeout: Duration,
        tls: &SinkTls,
    ) -> anyhow::Result<Self> {
        let tls = super::tls::client_config_if(
            KafkaBrokers::parse(url.expose()).is_ok_and(|brokers| brokers.tls),
            tls,
        )?;
        Ok(KafkaSink {
            url,
            topic,
            sasl,
            timeout,
            tls,
            state: Mutex::new(None),
        })
    }

    /// Produces one event with `acks=all` and waits for the brokers' answer.
    pub(crate) async fn deliver(
        &self,
        delivery: &Delivery,
        trace: Option<&TraceContext>,
    ) -> Result<Sent, ForwardError> {
        let topic = render_with(&self.topic, delivery, |c| {
            !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        });
        let key = delivery.order_id.as_ref().map(|id| id.as_str().as_bytes());
        let producer = self.producer(&topic, key).await?;
        let mut headers = BTreeMap::new();
        let mut header = |name: &str, value: &str| {
            headers.insert(name.to_owned(), value.as_bytes().to_vec());
        };
        header("eventId", delivery.event_id.as_str());
        header("eventType", delivery.event_type.as_str());
        header("dialect", delivery.dialect.as_str());
        header("source", delivery.source.as_str());
        if let Some(order) = &delivery.order_id {
            header("orderId", order.as_str());
        }
        if let Some(trace) = trace {
            header(TRACEPARENT, &trace.traceparent());
            if let Some(state) = trace.tracestate() {
                header(TRACESTATE, state);
            }
        }
        let record = Record {
            key: key.map(<[u8]>::to_vec),
            value: Some(delivery.body.to_vec()),
            headers,
            timestamp: chrono::Utc::now(),
        };
        match producer
            .produce(vec![record], Compression::NoCompression)
            .await
        {
            Ok(_) => Ok(Sent::default()),
            Err(source) => {
                // Learn the brokers and partitions again next time.
                *self.state.lock().await = None;
                Err(ForwardError::Kafka {
                    step: KafkaStep::Produce(topic),
                    source,
                })
            }
        }
    }

    /// The partition client for `key` in `topic`, connecting and reading the topic's
    /// partitions when not known yet.
    async fn producer(
        &self,
        topic: &str,
        key: Option<&[u8]>,
    ) -> Result<Arc<PartitionClient>, ForwardError> {
        let failed = |step: KafkaStep| move |source| ForwardError::Kafka { step, source };
        let mut slot = self.state.lock().await;
        let connected = match slot.as_mut() {
            Some(connected) => connected,
            None => slot.insert(Connected {
                client: Arc::new(self.connect().await?),
                partitions: HashMap::new(),
                producers: HashMap::new(),
            }),
        };
        let count = match connected.partitions.get(topic) {
            Some(count) => *count,
            None => {
                let topics = connected
                    .client
                    .list_topics()
                    .await
                    .map_err(failed(KafkaStep::Metadata))?;
                let count = topics
                    .iter()
                    .find(|known| known.name == topic)
                    .map_or(0, |known| known.partitions.len() as i32);
                if count == 0 {
                    return Err(ForwardError::NoSuchTopic {
                        topic: topic.to_owned(),
                    });
                }
                connected.partitions.insert(topic.to_owned(), count);
                count
            }
        };
        let partition = key.map_or(0, |key| partition_of(key, count));
        let slot_key = (topic.to_owned(), partition);
        if let Some(producer) = connected.producers.get(&slot_key) {
            return Ok(producer.clone());
        }
        let producer = Arc::new(
            connected
                .client
                .partition_client(topic, partition, UnknownTopicHandling::Error)
                .await
                .map_err(failed(KafkaStep::Produce(topic.to_owned())))?,
        );
        connected.producers.insert(slot_key, producer.clone());
        Ok(producer)
    }

    /// Connects to the bootstrap brokers (and logs in, when the URL has a login).
    pub(crate) async fn probe(&self) -> Result<String, ForwardError> {
        self.connect().await?;
        Ok("connected to the brokers".to_owned())
    }

    async fn connect(&self) -> Result<Client, ForwardError> {
        let brokers = KafkaBrokers::parse(self.url.expose()).map_err(|_| ForwardError::KafkaUrl)?;
        let mut builder = ClientBuilder::new(brokers.addresses)
            .client_id("order-listener")
            .backoff_config(rskafka::BackoffConfig {
                deadline: Some(self.timeout),
                ..rskafka::BackoffConfig::default()
            });
        if let Some(tls) = &self.tls {
            builder = builder.tls_config(tls.clone());
        }
        if let Some((username, password)) = brokers.credentials {
            let credentials = Credentials::new(username, password);
            builder = builder.sasl_config(match self.sasl {
                KafkaSasl::Plain => SaslConfig::Plain(credentials),
                KafkaSasl::ScramSha256 => SaslConfig::ScramSha256(credentials),
                KafkaSasl::ScramSha512 => SaslConfig::ScramSha512(credentials),
            });
        }
        builder.build().await.map_err(|source| ForwardError::Kafka {
            step: KafkaStep::Connect,
            source,
        })
    }
}

/// The partition Kafka's default partitioner gives `key`: murmur2, made positive, modulo the
/// partition count.
fn partition_of(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) % partitions.max(1) as u32) as i32
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), seed 0x9747b28c.
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut hash: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        hash = hash.wrapping_mul(M);
        hash ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        hash ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        hash ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        hash ^= u32::from(tail[0]);
        hash = hash.wrapping_mul(M);
    }
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(M);
    hash ^= hash >> 15;
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_is_kafkas() {
        // Kafka's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key) as i32, expected, "{key:?}");
        }
    }
}
