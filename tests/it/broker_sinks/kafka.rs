//! The Kafka sink against a real Kafka-protocol broker, tansu (`cargo install tansu --locked
//! --features dynostore`), one per test with in-memory storage, advertised on a [`Relay`] in
//! front of it so that every connection (the sink's and the consumer's) passes where the test
//! can cut it. Read back by an independent client, kafka-python, which also says which
//! partition its own murmur2 gives each key.

use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::*;
use crate::forwarding::broker;

/// kafka-python: `create TOPIC PARTITIONS`, or `consume TOPIC`, which prints one JSON line per
/// record, from the beginning of every partition, after a line `assigned`.
const CLIENT: &str = r#"
import json, sys, time
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.partitioner.default import murmur2

bootstrap, command, topic = sys.argv[1], sys.argv[2], sys.argv[3]
if command == "create":
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=int(sys.argv[4]), replication_factor=1)])
    sys.exit(0)
consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                         auto_offset_reset="earliest")
partitions = None
while not partitions:
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        time.sleep(0.05)
        consumer.topics()
partitions = sorted(partitions)
assigned = [TopicPartition(topic, p) for p in partitions]
consumer.assign(assigned)
consumer.seek_to_beginning(*assigned)
print("assigned", flush=True)
for record in consumer:
    print(json.dumps({
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key.decode() if record.key is not None else None,
        # The Java client's (and kafka-python's) default: murmur2 of the key, made positive.
        "expected_partition": partitions[(murmur2(record.key) & 0x7fffffff) % len(partitions)] if record.key else None,
        "headers": {name: value.decode() for name, value in record.headers},
        "value": record.value.decode(),
    }), flush=True)
"#;

/// What the Kafka tests need: tansu and a Python with kafka-python.
fn programs() -> Option<(String, String)> {
    let tansu = broker("ORDER_LISTENER_TEST_TANSU")?;
    let python = service(
        "ORDER_LISTENER_TEST_PYTHON",
        "a Python with kafka-python (pip install kafka-python)",
    )?;
    Some((tansu, python))
}

/// A tansu broker of its own, in memory, behind a relay it advertises.
struct Broker {
    _child: Child,
    relay: Relay,
    python: String,
}

impl Broker {
    async fn start(tansu: &str, python: &str) -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let direct = SocketAddr::from(([127, 0, 0, 1], port));
        let relay = Relay::start(direct).await;
        let child = Command::new(tansu)
            .arg("broker")
            .args(["--listener-url", &format!("tcp://{direct}")])
            .args([
                "--advertised-listener-url",
                &format!("tcp://{}", relay.addr),
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("tansu runs");
        eventually("tansu listening", async || {
            TcpStream::connect(direct).await.ok().map(|_| ())
        })
        .await;
        Broker {
            _child: child,
            relay,
            python: python.to_owned(),
        }
    }

    /// The bootstrap address, through the relay.
    fn bootstrap(&self) -> String {
        self.relay.addr.to_string()
    }

    /// The sink's URL.
    fn url(&self) -> String {
        format!("kafka://{}", self.bootstrap())
    }

    async fn create_topic(&self, topic: &str, partitions: u32) {
        let output = Command::new(&self.python)
            .args(["-c", CLIENT, &self.bootstrap(), "create", topic])
            .arg(partitions.to_string())
            .output()
            .await
            .expect("python runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A kafka-python consumer of every partition of `topic`, from the beginning.
    async fn consume(&self, topic: &str) -> Consumer {
        let mut child = Command::new(&self.python)
            .args(["-c", CLIENT, &self.bootstrap(), "consume", topic])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (record, seen) = watch::channel(Vec::new());
        let (assigned, is_assigned) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut assigned = Some(assigned);
            while let Ok(Some(line)) = lines.next_line().await {
                if line == "assigned" {
                    if let Some(assigned) = assigned.take() {
                        let _ = assigned.send(());
                    }
                } else {
                    let message: Value = serde_json::from_str(&line).expect("a JSON line");
                    record.send_modify(|seen| seen.push(message));
                }
            }
        });
        tokio::time::timeout(PATIENCE, is_assigned)
            .await
            .expect("the consumer is assigned in time")
            .expect("the consumer runs");
        Consumer {
            _child: child,
            seen,
        }
    }
}

struct Consumer {
    _child: Child,
    seen: watch::Receiver<Vec<Value>>,
}

impl Consumer {
    fn records(&self) -> Vec<Value> {
        self.seen.borrow().clone()
    }

    fn events(&self) -> Vec<Message> {
        self.records()
            .iter()
            .map(|record| Message::of_body(record["value"].as_str().unwrap().as_bytes()))
            .collect()
    }
}

#[tokio::test]
async fn kafka_topics_get_what_their_filters_take_keyed_by_order_as_kafkas_partitioner_does() {
    let Some((tansu, python)) = programs() else {
        return;
    };
    let broker = Broker::start(&tansu, &python).await;
    let (all, completed) = (unique("oltest-all-"), unique("oltest-completed-"));
    let completed_onap = format!("{completed}-onap");
    broker.create_topic(&all, 3).await;
    broker.create_topic(&completed_onap, 1).await;
    let (every, done) = (
        broker.consume(&all).await,
        broker.consume(&completed_onap).await,
    );
    let toml = format!(
        r#"
[sinks.all]
type = "kafka"
url = "{url}"
topic = "{all}"

[sinks.completed]
type = "kafka"
url = "{url}"
topic = "{completed}-{{dialect}}"
order_states = ["completed"]
"#,
        url = broker.url()
    );
    filters(&toml, async || every.events(), async || done.events()).await;
    // Each record is where Kafka's own clients put its key (the order ids are random, so
    // which partitions the 3 orders take varies from run to run).
    for record in every.records() {
        let body: Value = serde_json::from_str(record["value"].as_str().unwrap()).unwrap();
        assert_eq!(record["key"], body["event"]["id"], "{record}");
        assert_eq!(
            record["partition"], record["expected_partition"],
            "{record}"
        );
        let headers = &record["headers"];
        assert_eq!(headers["eventId"], body["eventId"]);
        assert_eq!(headers["eventType"], body["eventType"]);
        assert_eq!(headers["dialect"], "onap");
        assert_eq!(headers["orderId"], body["event"]["id"]);
    }
}

#[tokio::test]
async fn a_kafka_broker_out_of_reach_then_back_gets_every_event_in_event_date_order() {
    let Some((tansu, python)) = programs() else {
        return;
    };
    let broker = Broker::start(&tansu, &python).await;
    let topic = unique("oltest-down-");
    broker.create_topic(&topic, 2).await;
    let consumer = broker.consume(&topic).await;
    let toml = format!(
        "[sinks.kf]\ntype = \"kafka\"\nurl = \"{}\"\ntopic = \"{topic}\"\n\
         retry_schedule = [\"50ms\", \"100ms\", \"200ms\"]\nconcurrency = 4\ntimeout_seconds = 2\n",
        broker.url()
    );
    down_then_back(&broker.relay, &toml, "kf", async || consumer.events()).await;
}

#[tokio::test]
async fn a_kafka_dead_letter_is_produced_after_dead_letters_retry() {
    let Some((tansu, python)) = programs() else {
        return;
    };
    let broker = Broker::start(&tansu, &python).await;
    let topic = unique("oltest-dead-");
    broker.create_topic(&topic, 1).await;
    let consumer = broker.consume(&topic).await;
    let toml = format!(
        "[sinks.kf]\ntype = \"kafka\"\nurl = \"{}\"\ntopic = \"{topic}\"\n\
         retry_schedule = [\"100ms\"]\nretry_horizon = \"1s\"\ntimeout_seconds = 1\n",
        broker.url()
    );
    dead_letter_then_retry(&broker.relay, &toml, "kf", async || consumer.events()).await;
}

#[tokio::test]
async fn after_a_sigkill_during_forwarding_a_kafka_consumer_gets_every_event_and_duplicates_are_counted()
 {
    let Some((tansu, python)) = programs() else {
        return;
    };
    let broker = Broker::start(&tansu, &python).await;
    let topic = unique("oltest-kill-");
    broker.create_topic(&topic, 3).await;
    let consumer = broker.consume(&topic).await;
    let toml = format!(
        "[sinks.kf]\ntype = \"kafka\"\nurl = \"{}\"\ntopic = \"{topic}\"\nretry_schedule = [\"50ms\"]\n",
        broker.url()
    );
    let (messages, acknowledged) =
        sigkill_during_forwarding(&toml, async || consumer.events()).await;
    let duplicates = duplicates(&messages);
    eprintln!(
        "Kafka sink: {duplicates} duplicate records after the SIGKILL (no idempotent producer)"
    );
    let got: BTreeSet<String> = messages.iter().map(|m| m.event_id.clone()).collect();
    assert_eq!(got, acknowledged, "every acknowledged event, nothing else");
    assert!(duplicates <= order_listener::config::sinks::SinkSettings::default().concurrency);
    // An attempt made again comes right after its first copy, before the order's next event.
    assert_in_order_per_order(&messages);
}
