//! Handing events on: every accepted event reaches every sink whose filter it matches (a real
//! HTTP receiver on port 0, the real NATS JetStream and RabbitMQ), a sink that was down gets
//! everything once back, in eventDate order within each order, and a SIGKILL loses nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures_util::StreamExt;
use serde_json::Value;

use crate::helpers::*;

/// The events of `orders` orders of two items each: creation, items, completion.
pub(crate) fn lifecycles(prefix: &str, orders: usize) -> Vec<Value> {
    (0..orders)
        .flat_map(|index| onap_lifecycle(&format!("{prefix}-{index}"), 2))
        .collect()
}

pub(crate) fn ids<'a>(events: impl IntoIterator<Item = &'a Value>) -> BTreeSet<String> {
    events
        .into_iter()
        .map(|event| event["eventId"].as_str().unwrap().to_owned())
        .collect()
}

/// Asserts that, within each order, the deliveries (2xx answers) came in eventDate order.
fn assert_in_order_per_order(requests: &[Received]) {
    let mut last: HashMap<String, String> = HashMap::new();
    for request in requests.iter().filter(|request| request.delivered()) {
        let order = request.order_id.clone().unwrap_or_default();
        if let Some(previous) = last.get(&order) {
            assert!(
                previous <= &request.event_date,
                "order {order}: {} delivered after an event of {previous}",
                request.event_date
            );
        }
        last.insert(order, request.event_date.clone());
    }
}

#[tokio::test]
async fn every_accepted_event_reaches_the_http_sinks_whose_filters_it_matches() {
    let all = WebhookReceiver::start(204).await;
    let completions = WebhookReceiver::start(200).await;
    let app = spawn_app_with_file(&format!(
        r#"
[sinks.everything]
type = "http"
url = "{}"
signing_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[sinks.completions]
type = "http"
url = "{}"
event_types = ["ServiceOrderStateChangeNotification"]
order_states = ["completed"]
"#,
        all.url, completions.url
    ))
    .await;
    let events = lifecycles("SO-fwd", 4);
    for event in &events {
        assert_eq!(app.post(event).await.status().as_u16(), 201);
    }
    // Resends are stored once and delivered once.
    for event in events.iter().take(3) {
        assert_eq!(app.post(event).await.status().as_u16(), 201);
    }
    let every = ids(&events);
    let seen = all.until_delivered(&every).await;
    assert_eq!(seen.len(), every.len(), "each event once: {seen:?}");
    assert!(
        seen.iter()
            .all(|request| request.signed && request.webhook_id == request.event_id)
    );
    assert_in_order_per_order(&seen);

    let completed = ids(events
        .iter()
        .filter(|event| event["event"]["state"] == "completed"));
    assert_eq!(completed.len(), 4);
    let seen = completions.until_delivered(&completed).await;
    assert_eq!(ids_of(&seen), completed, "only what the filter takes");

    let (status, event) = app.admin_get("/api/v1/events/SO-fwd-0-completed").await;
    assert_eq!(status, 200, "{event}");
    let (_, sinks) = app.admin_get("/api/v1/sinks").await;
    let names: Vec<&str> = sinks["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|sink| sink["configured"] == true)
        .map(|sink| sink["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["completions", "everything"], "{sinks}");
}

fn ids_of(requests: &[Received]) -> BTreeSet<String> {
    requests
        .iter()
        .map(|request| request.event_id.clone())
        .collect()
}

#[tokio::test]
async fn a_sink_that_was_down_receives_everything_once_back_in_order_within_each_order() {
    let receiver = WebhookReceiver::start(503).await;
    let app = spawn_app_with_file(&format!(
        r#"
[sinks.downstream]
type = "http"
url = "{}"
retry_schedule = ["50ms", "100ms", "200ms"]
retry_horizon = "1h"
concurrency = 4
"#,
        receiver.url
    ))
    .await;
    // Each order's events arrive in reverse: the sink must still get them in eventDate order.
    let mut events = lifecycles("SO-down", 5);
    events.reverse();
    for event in &events {
        assert_eq!(app.post(event).await.status().as_u16(), 201);
    }
    // While the sink is down, attempts fail and are retried.
    let failed = receiver
        .wait_for("10 attempts while the sink is down", |seen| {
            seen.len() >= 10
        })
        .await;
    assert!(failed.iter().all(|request| request.answered == 503));
    receiver.answer(200);
    let seen = receiver.until_delivered(&ids(&events)).await;
    let delivered: Vec<&Received> = seen.iter().filter(|r| r.answered == 200).collect();
    assert_eq!(delivered.len(), events.len(), "each event delivered once");
    assert_in_order_per_order(&seen);
}

#[tokio::test]
async fn a_delivery_past_the_horizon_becomes_a_dead_letter_and_later_events_go_on() {
    let receiver = WebhookReceiver::start(500).await;
    let app = spawn_app_with_file(&format!(
        r#"
[sinks.flaky]
type = "http"
url = "{}"
retry_schedule = ["100ms"]
retry_horizon = "300ms"
"#,
        receiver.url
    ))
    .await;
    let events = lifecycles("SO-dead", 1);
    assert_eq!(app.post(&events[0]).await.status().as_u16(), 201);
    // Attempts until the horizon has passed; then the delivery is dead.
    when_outbox_changes(&app.store, "a dead letter", async || {
        let statuses = app.store.sink_statuses().await.unwrap();
        statuses
            .iter()
            .any(|status| status.name.as_str() == "flaky" && status.dead == 1)
            .then_some(())
    })
    .await;
    let dead = app
        .store
        .dead_letters(Some(&"flaky".parse().unwrap()), None, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event_id.as_str(), "SO-dead-0-created");
    assert!(dead[0].attempts >= 2, "{dead:?}");
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("500")
    );

    // The dead letter does not block its order: the next events are delivered once the sink
    // is back, and the retried dead letter too.
    receiver.answer(200);
    for event in &events[1..] {
        assert_eq!(app.post(event).await.status().as_u16(), 201);
    }
    receiver.until_delivered(&ids(&events[1..])).await;
    let requeued = app
        .store
        .requeue(order_listener::store::Requeue {
            scope: order_listener::store::RequeueScope::DeadLetters,
            sink: Some("flaky".parse().unwrap()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(requeued.count, 1);
    receiver.until_delivered(&ids(&events[..1])).await;
    // The receiver answered; the worker records that right after.
    let settled = when_outbox_changes(&app.store, "the outbox to settle", async || {
        let statuses = app.store.sink_statuses().await.unwrap();
        ((statuses[0].dead, statuses[0].pending) == (0, 0)).then_some(statuses)
    })
    .await;
    assert_eq!(settled[0].delivered, events.len() as u64);
}

/// POSTs `event` to the listener at `url`, expects a 201 and records its eventId.
pub(crate) async fn post_acknowledged(
    http: &reqwest::Client,
    url: &str,
    event: &Value,
    acknowledged: &mut BTreeSet<String>,
) {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    acknowledged.insert(event["eventId"].as_str().unwrap().to_owned());
}

/// The broker URLs from `.ci/run`; `None` (and a note) when unset.
pub(crate) fn broker(variable: &str) -> Option<String> {
    service(variable, "the real broker's URL")
}

/// A unique name for this run's stream, subjects, exchange and queue.
pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// Reads `at_least` messages of `stream` and returns the Nats-Msg-Id of each, and how many
/// messages the stream holds in all.
async fn nats_message_ids(url: &str, stream: &str, at_least: usize) -> (Vec<String>, u64) {
    let client = async_nats::connect(url).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let mut stream = jetstream.get_stream(stream).await.unwrap();
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut ids = Vec::new();
    while ids.len() < at_least {
        let message = tokio::time::timeout(PATIENCE, messages.next())
            .await
            .unwrap_or_else(|_| panic!("only {} messages in the stream", ids.len()))
            .unwrap()
            .unwrap();
        let id = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|value| value.to_string())
            .unwrap_or_default();
        ids.push(id);
        message.ack().await.unwrap();
    }
    let held = stream.info().await.unwrap().state.messages;
    (ids, held)
}

/// Declares a queue bound to every key of `exchange` (a topic exchange, declared too).
pub(crate) async fn amqp_queue(url: &str, exchange: &str) -> (lapin::Connection, lapin::Consumer) {
    use lapin::options::*;
    use lapin::types::FieldTable;
    let connection = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let (channel, queue) = amqp_bound_queue(&connection, exchange).await;
    let consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "order-listener-test".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    (connection, consumer)
}

/// On `connection`, declares `exchange` (durable, topic) and a queue bound to every key of it;
/// the channel and the queue's name.
pub(crate) async fn amqp_bound_queue(
    connection: &lapin::Connection,
    exchange: &str,
) -> (lapin::Channel, String) {
    use lapin::options::*;
    use lapin::types::FieldTable;
    let channel = connection.create_channel().await.unwrap();
    channel
        .exchange_declare(
            exchange.into(),
            lapin::ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let queue = format!("{exchange}-queue");
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    (channel, queue)
}

/// Reads messages until every one of `expected` came; returns the message ids (duplicates kept).
async fn amqp_message_ids(
    consumer: &mut lapin::Consumer,
    expected: &BTreeSet<String>,
) -> Vec<String> {
    use lapin::options::BasicAckOptions;
    let mut ids = Vec::new();
    while !expected.iter().all(|id| ids.contains(id)) {
        let delivery = tokio::time::timeout(PATIENCE, consumer.next())
            .await
            .unwrap_or_else(|_| panic!("only {} messages from RabbitMQ", ids.len()))
            .unwrap()
            .unwrap();
        assert_eq!(delivery.properties.delivery_mode(), &Some(2), "persistent");
        let id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.to_string())
            .unwrap_or_default();
        ids.push(id);
        delivery.ack(BasicAckOptions::default()).await.unwrap();
    }
    ids
}

#[tokio::test]
async fn nats_jetstream_and_rabbitmq_get_every_event_their_filters_take() {
    let (Some(nats), Some(amqp)) = (
        broker("ORDER_LISTENER_TEST_NATS_URL"),
        broker("ORDER_LISTENER_TEST_AMQP_URL"),
    ) else {
        return;
    };
    let (stream, prefix, exchange) = (unique("OLTEST"), unique("oltest"), unique("oltest-"));
    let (_connection, mut consumer) = amqp_queue(&amqp, &exchange).await;
    let app = spawn_app_with_file(&format!(
        r#"
[sinks.bus]
type = "nats"
url = "{nats}"
subject = "{prefix}.{{eventType}}.{{orderId}}"
stream = "{stream}"

[sinks.rabbit]
type = "amqp"
url = "{amqp}"
exchange = "{exchange}"
item_states = ["completed"]
"#
    ))
    .await;
    let events = lifecycles("SO-bus", 3);
    for event in &events {
        assert_eq!(app.post(event).await.status().as_u16(), 201);
    }
    let (published, held) = nats_message_ids(&nats, &stream, events.len()).await;
    assert_eq!(held, events.len() as u64);
    assert_eq!(
        published.iter().cloned().collect::<BTreeSet<_>>(),
        ids(&events),
        "every event, with its eventId as Nats-Msg-Id"
    );
    let with_completed_items = ids(events.iter().filter(|event| {
        event["event"]["orderItem"]
            .as_array()
            .is_some_and(|items| items.iter().any(|item| item["state"] == "completed"))
    }));
    let routed = amqp_message_ids(&mut consumer, &with_completed_items).await;
    assert_eq!(
        routed.iter().cloned().collect::<BTreeSet<_>>(),
        with_completed_items
    );
}

#[tokio::test]
async fn sigkill_during_forwarding_loses_nothing_and_only_sinks_that_cannot_deduplicate_see_duplicates()
 {
    init();
    let receiver = WebhookReceiver::start(200).await;
    let dir = tempfile::tempdir().unwrap();
    let brokers =
        broker("ORDER_LISTENER_TEST_NATS_URL").zip(broker("ORDER_LISTENER_TEST_AMQP_URL"));
    let (stream, prefix, exchange) = (unique("OLKILL"), unique("olkill"), unique("olkill-"));
    let mut toml = format!(
        "[sinks.hook]\ntype = \"http\"\nurl = \"{}\"\nretry_schedule = [\"50ms\"]\n",
        receiver.url
    );
    let mut consumer = None;
    if let Some((nats, amqp)) = &brokers {
        toml.push_str(&format!(
            "[sinks.bus]\ntype = \"nats\"\nurl = \"{nats}\"\nsubject = \"{prefix}.{{eventType}}.{{orderId}}\"\nstream = \"{stream}\"\n\
             [sinks.rabbit]\ntype = \"amqp\"\nurl = \"{amqp}\"\nexchange = \"{exchange}\"\n"
        ));
        consumer = Some(amqp_queue(amqp, &exchange).await);
    }
    let config = dir.path().join("config.toml");
    std::fs::write(&config, toml).unwrap();
    let data_dir = dir.path().join("data");

    let events = lifecycles("SO-kill", 20);
    let mut child = start_binary_with(&data_dir, Some(&config));
    let url = child.listener_url.clone();
    let http = reqwest::Client::new();
    let mut acknowledged = BTreeSet::new();
    for (index, event) in events.iter().enumerate() {
        post_acknowledged(&http, &url, event, &mut acknowledged).await;
        if index == events.len() / 2 {
            // Kill once the receiver is seeing deliveries: forwarding is under way.
            receiver
                .wait_for("a first delivery", |seen| !seen.is_empty())
                .await;
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
            child.child.wait().unwrap();
            break;
        }
    }
    // Start again; the rest is sent to the new process.
    let mut child = start_binary_with(&data_dir, Some(&config));
    let url = child.listener_url.clone();
    for event in &events {
        post_acknowledged(&http, &url, event, &mut acknowledged).await;
    }
    // Every request counts, those to the killed process included.
    let seen = receiver.until_delivered(&acknowledged).await;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for request in seen.iter().filter(|r| r.answered == 200) {
        *counts.entry(request.event_id.as_str()).or_default() += 1;
    }
    let http_duplicates: usize = counts.values().map(|count| count - 1).sum();
    eprintln!(
        "HTTP sink: {http_duplicates} duplicate deliveries after the SIGKILL (it cannot deduplicate)"
    );
    assert!(http_duplicates <= order_listener::config::sinks::SinkSettings::default().concurrency);

    if let (Some((nats, _)), Some((_connection, mut consumer))) = (&brokers, consumer) {
        let (published, held) = nats_message_ids(nats, &stream, acknowledged.len()).await;
        assert_eq!(
            held,
            acknowledged.len() as u64,
            "JetStream deduplicated by Nats-Msg-Id"
        );
        assert_eq!(published.into_iter().collect::<BTreeSet<_>>(), acknowledged);
        let routed = amqp_message_ids(&mut consumer, &acknowledged).await;
        eprintln!(
            "RabbitMQ sink: {} duplicate deliveries after the SIGKILL (it cannot deduplicate)",
            routed.len() - acknowledged.len()
        );
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.child.wait().unwrap().success());
}
