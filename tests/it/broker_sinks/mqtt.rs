//! The MQTT sink against the real Mosquitto, read back by Mosquitto's own client,
//! `mosquitto_sub` (Debian's `mosquitto-clients`), as JSON lines (`-F %j`).

use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::*;
use crate::forwarding::broker;
use crate::seller::simulate_into;

fn mqtt_url() -> Option<String> {
    broker("ORDER_LISTENER_TEST_MQTT_URL")
}

/// `mosquitto_sub`, subscribed to one topic filter at QoS 1, recording every message.
struct Subscriber {
    _child: Child,
    seen: watch::Receiver<Vec<Value>>,
}

impl Subscriber {
    /// Subscribes to `filter` on the broker at `url` with `protocol` (`mqttv5`, `mqttv311`);
    /// returns once the broker acknowledged the subscription.
    async fn start(url: &str, filter: &str, protocol: &str) -> Subscriber {
        let parsed = reqwest::Url::parse(url).expect("an mqtt:// URL");
        // Line-buffered, so that the "Subscribed" line comes before any message does.
        let mut command = Command::new("stdbuf");
        command
            .args(["-oL", "mosquitto_sub"])
            .args(["-h", parsed.host_str().unwrap()])
            .args(["-p", &parsed.port().unwrap_or(1883).to_string()])
            .args(["-V", protocol, "-q", "1", "-t", filter, "-F", "%j", "-d"]);
        if !parsed.username().is_empty() {
            command.args(["-u", parsed.username()]);
            command.args(["-P", parsed.password().unwrap_or_default()]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("mosquitto_sub runs (Debian: apt-get install mosquitto-clients)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (record, seen) = watch::channel(Vec::new());
        let (subscribed, is_subscribed) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut subscribed = Some(subscribed);
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("Subscribed") {
                    if let Some(subscribed) = subscribed.take() {
                        let _ = subscribed.send(());
                    }
                } else if line.starts_with('{') {
                    let message: Value = serde_json::from_str(&line).expect("a %j line");
                    record.send_modify(|seen| seen.push(message));
                }
            }
        });
        tokio::time::timeout(PATIENCE, is_subscribed)
            .await
            .expect("mosquitto_sub subscribed in time")
            .expect("mosquitto_sub subscribed");
        Subscriber {
            _child: child,
            seen,
        }
    }

    /// Every message so far, as `%j` prints it.
    fn messages(&self) -> Vec<Value> {
        self.seen.borrow().clone()
    }

    /// The events published on topics that start with `prefix`, in arrival order.
    fn events(&self, prefix: &str) -> Vec<Message> {
        self.messages()
            .iter()
            .filter(|message| message["topic"].as_str().unwrap().starts_with(prefix))
            .map(|message| Message::of_body(payload(message).as_bytes()))
            .collect()
    }
}

/// A `%j` message's payload, as text.
fn payload(message: &Value) -> &str {
    message["payload"].as_str().unwrap_or_default()
}

/// Clears the retained messages of `topics`, so that test runs leave nothing behind.
async fn clear_retained(url: &str, topics: impl IntoIterator<Item = String>) {
    let parsed = reqwest::Url::parse(url).unwrap();
    for topic in topics {
        let status = Command::new("mosquitto_pub")
            .args(["-h", parsed.host_str().unwrap()])
            .args(["-p", &parsed.port().unwrap_or(1883).to_string()])
            .args(["-q", "1", "-r", "-n", "-t", &topic])
            .status()
            .await
            .expect("mosquitto_pub runs");
        assert!(status.success());
    }
}

#[tokio::test]
async fn mqtt_5_and_3_1_1_sinks_get_what_their_filters_take_at_qos_1() {
    let Some(url) = mqtt_url() else { return };
    let prefix = unique("oltest-");
    let subscriber = Subscriber::start(&url, &format!("{prefix}/#"), "mqttv5").await;
    let toml = format!(
        r#"
[sinks.all]
type = "mqtt"
url = "{url}"
topic = "{prefix}/all/{{orderId}}/events"

[sinks.completed]
type = "mqtt"
url = "{url}"
protocol = "3.1.1"
topic = "{prefix}/completed/{{dialect}}/{{eventType}}"
order_states = ["completed"]
"#
    );
    let (all, completed) = (format!("{prefix}/all/"), format!("{prefix}/completed/"));
    filters(
        &toml,
        async || subscriber.events(&all),
        async || subscriber.events(&completed),
    )
    .await;
    for message in subscriber.messages() {
        assert_eq!(message["qos"], 1, "{message}");
        assert_eq!(message["retain"], 0, "{message}");
        let body: Value = serde_json::from_str(payload(&message)).unwrap();
        let topic = message["topic"].as_str().unwrap();
        if topic.starts_with(&all) {
            // MQTT 5: the event's identity in user properties.
            let properties = &message["properties"];
            assert_eq!(properties["content-type"], "application/json");
            assert_eq!(properties["user-properties"]["eventId"], body["eventId"]);
            assert_eq!(properties["user-properties"]["dialect"], "onap");
            assert_eq!(
                topic,
                format!("{all}{}/events", body["event"]["id"].as_str().unwrap())
            );
        } else {
            // MQTT 3.1.1 has no properties.
            assert!(message.get("properties").is_none(), "{message}");
            assert_eq!(
                topic,
                format!("{completed}onap/ServiceOrderStateChangeNotification")
            );
        }
    }
}

#[tokio::test]
async fn an_mqtt_broker_out_of_reach_then_back_gets_every_event_in_event_date_order() {
    let Some(url) = mqtt_url() else { return };
    let relay = Relay::start(socket_of(&url)).await;
    let prefix = unique("oltest-");
    let subscriber = Subscriber::start(&url, &format!("{prefix}/#"), "mqttv5").await;
    let toml = format!(
        "[sinks.mq]\ntype = \"mqtt\"\nurl = \"{}\"\ntopic = \"{prefix}/{{orderId}}/events\"\n\
         retry_schedule = [\"50ms\", \"100ms\", \"200ms\"]\nconcurrency = 4\n",
        via(&url, &relay)
    );
    down_then_back(&relay, &toml, "mq", async || subscriber.events(&prefix)).await;
}

#[tokio::test]
async fn an_mqtt_dead_letter_is_published_after_dead_letters_retry() {
    let Some(url) = mqtt_url() else { return };
    let relay = Relay::start(socket_of(&url)).await;
    let prefix = unique("oltest-");
    let subscriber = Subscriber::start(&url, &format!("{prefix}/#"), "mqttv311").await;
    let toml = format!(
        "[sinks.mq]\ntype = \"mqtt\"\nurl = \"{}\"\nprotocol = \"3.1.1\"\n\
         topic = \"{prefix}/{{orderId}}/events\"\nretry_schedule = [\"100ms\"]\nretry_horizon = \"1s\"\n",
        via(&url, &relay)
    );
    dead_letter_then_retry(&relay, &toml, "mq", async || subscriber.events(&prefix)).await;
}

#[tokio::test]
async fn after_a_sigkill_during_forwarding_an_mqtt_subscriber_gets_every_event_and_duplicates_are_counted()
 {
    let Some(url) = mqtt_url() else { return };
    let prefix = unique("oltest-");
    let subscriber = Subscriber::start(&url, &format!("{prefix}/#"), "mqttv5").await;
    let toml = format!(
        "[sinks.mq]\ntype = \"mqtt\"\nurl = \"{url}\"\ntopic = \"{prefix}/{{orderId}}/events\"\n\
         retry_schedule = [\"50ms\"]\n"
    );
    let (messages, acknowledged) =
        sigkill_during_forwarding(&toml, async || subscriber.events(&prefix)).await;
    let duplicates = duplicates(&messages);
    eprintln!(
        "MQTT sink: {duplicates} duplicate messages after the SIGKILL (MQTT cannot deduplicate)"
    );
    let got: BTreeSet<String> = messages.iter().map(|m| m.event_id.clone()).collect();
    assert_eq!(got, acknowledged, "every acknowledged event, nothing else");
    // Only the attempts in flight at the kill can come twice.
    assert!(duplicates <= order_listener::config::sinks::SinkSettings::default().concurrency);
}

#[tokio::test]
async fn after_a_simulate_run_the_retained_state_of_every_order_equals_orders_show() {
    let Some(url) = mqtt_url() else { return };
    let prefix = unique("oltest-");
    let toml = format!(
        "[sinks.mq]\ntype = \"mqtt\"\nurl = \"{url}\"\ntopic = \"{prefix}/{{orderId}}/events\"\n\
         state_topic = \"{prefix}/{{orderId}}/state\"\n"
    );
    let fixture = Fixture::start(&toml).await;
    let args = ["--orders", "12", "--max-items", "3", "--seed", "16"];
    let summary = simulate_into(&fixture.app.listener_url, &args).await;
    let orders: BTreeSet<String> = summary["truth"]
        .as_array()
        .unwrap()
        .iter()
        .map(|order| order["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(orders.len(), 12);
    // Every event was stored before simulate ended; wait until each was handed on.
    fixture
        .until_sink("mq", "every delivery made", |status| {
            status.pending == 0 && status.dead == 0 && status.delivered > 0
        })
        .await;
    // A new subscriber gets every order's state at once, retained.
    let subscriber = Subscriber::start(&url, &format!("{prefix}/+/state"), "mqttv5").await;
    let states = eventually("a retained state for every order", async || {
        let messages = subscriber.messages();
        (messages.len() >= orders.len()).then_some(messages)
    })
    .await;
    assert_eq!(states.len(), orders.len(), "one retained message per order");
    for state in &states {
        assert_eq!(state["retain"], 1, "{state}");
        let published: Value = serde_json::from_str(payload(state)).unwrap();
        let id = published["id"].as_str().unwrap();
        assert!(orders.contains(id), "{id}");
        assert_eq!(state["topic"], format!("{prefix}/{id}/state"));
        let (ok, stdout, stderr) = fixture.cli(&["orders", "show", id, "--json"]).await;
        assert!(ok, "{stderr}");
        let mut shown: Value = serde_json::from_str(&stdout).unwrap();
        // What makes an order suspect is judged when it is read, so it is not published.
        shown.as_object_mut().unwrap().remove("suspects");
        assert_eq!(published, shown, "order {id}");
    }
    clear_retained(&url, orders.iter().map(|id| format!("{prefix}/{id}/state"))).await;
}
