//! The Redis Streams sink against the real Redis: entries read back with `XRANGE`.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::streams::{StreamId, StreamRangeReply};

use super::*;
use crate::forwarding::broker;

fn redis_url() -> Option<String> {
    broker("ORDER_LISTENER_TEST_REDIS_URL")
}

/// Every entry of `stream`, oldest first.
async fn entries(url: &str, stream: &str) -> Vec<StreamId> {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let reply: StreamRangeReply = connection.xrange_all(stream).await.unwrap();
    reply.ids
}

/// Deletes `stream` and its late entries' markers, so that test runs leave nothing behind.
async fn forget(url: &str, stream: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let found: Vec<redis::RedisResult<String>> = connection
        .scan_match::<_, String>(format!("{stream}:late:*"))
        .await
        .unwrap()
        .collect()
        .await;
    let mut keys: Vec<String> = found.into_iter().map(Result::unwrap).collect();
    keys.push(stream.to_owned());
    let _: () = connection.del(keys).await.unwrap();
}

/// The field `name` of `entry`, as text.
fn field(entry: &StreamId, name: &str) -> Option<String> {
    entry.get::<String>(name)
}

/// The events in `stream`, in the stream's order.
async fn read(url: &str, stream: &str) -> Vec<Message> {
    entries(url, stream)
        .await
        .iter()
        .map(|entry| Message::of_body(&entry.get::<Vec<u8>>("body").expect("a body field")))
        .collect()
}

/// The stored events' sequences by eventId.
async fn sequences(app: &TestApp) -> BTreeMap<String, i64> {
    app.stored_events()
        .await
        .into_iter()
        .map(|event| (event.event_id.as_str().to_owned(), event.sequence))
        .collect()
}

#[tokio::test]
async fn redis_streams_get_what_their_filters_take_with_the_sequence_as_entry_id() {
    let Some(url) = redis_url() else { return };
    let (all, completed) = (unique("oltest:all:"), unique("oltest:completed:"));
    let toml = format!(
        r#"
[sinks.all]
type = "redis"
url = "{url}"
stream = "{all}"
concurrency = 1

[sinks.completed]
type = "redis"
url = "{url}"
stream = "{completed}:{{dialect}}"
order_states = ["completed"]
max_len = 1000
"#
    );
    let completed_stream = format!("{completed}:onap");
    let fixture = filters(
        &toml,
        async || read(&url, &all).await,
        async || read(&url, &completed_stream).await,
    )
    .await;
    // One order at a time, so the entries come in sequence order: each id is its sequence.
    let sequences = sequences(&fixture.app).await;
    for entry in entries(&url, &all).await {
        let event_id = field(&entry, "eventId").unwrap();
        assert_eq!(
            entry.id,
            format!("{}-0", sequences[&event_id]),
            "{event_id}"
        );
        assert_eq!(field(&entry, "dialect").as_deref(), Some("onap"));
        assert_eq!(field(&entry, "source").as_deref(), Some("seller"));
        assert!(field(&entry, "eventType").is_some_and(|kind| kind.ends_with("Notification")));
        assert!(field(&entry, "orderId").is_some_and(|order| event_id.starts_with(&order)));
    }
    forget(&url, &all).await;
    forget(&url, &completed_stream).await;
}

#[tokio::test]
async fn a_redis_server_out_of_reach_then_back_gets_every_event_in_event_date_order() {
    let Some(url) = redis_url() else { return };
    let relay = Relay::start(socket_of(&url)).await;
    let stream = unique("oltest:down:");
    let toml = format!(
        "[sinks.rd]\ntype = \"redis\"\nurl = \"{}\"\nstream = \"{stream}\"\n\
         retry_schedule = [\"50ms\", \"100ms\", \"200ms\"]\nconcurrency = 4\n",
        via(&url, &relay)
    );
    down_then_back(&relay, &toml, "rd", async || read(&url, &stream).await).await;
    forget(&url, &stream).await;
}

#[tokio::test]
async fn a_redis_dead_letter_retried_later_is_added_once_and_a_replay_adds_nothing() {
    let Some(url) = redis_url() else { return };
    let relay = Relay::start(socket_of(&url)).await;
    let stream = unique("oltest:dead:");
    let toml = format!(
        "[sinks.rd]\ntype = \"redis\"\nurl = \"{}\"\nstream = \"{stream}\"\n\
         retry_schedule = [\"100ms\"]\nretry_horizon = \"1s\"\n",
        via(&url, &relay)
    );
    let fixture =
        dead_letter_then_retry(&relay, &toml, "rd", async || read(&url, &stream).await).await;
    // The retried dead letter came after its order's later events: it was added after the
    // stream's last entry, not with its own sequence's id.
    let sequences = sequences(&fixture.app).await;
    let stored = entries(&url, &stream).await;
    let last = stored.last().unwrap();
    let event_id = field(last, "eventId").unwrap();
    assert!(event_id.ends_with("-created"), "{event_id}");
    assert_ne!(last.id, format!("{}-0", sequences[&event_id]));

    // A replay of the whole order finds every entry: by its id, or by the late one's marker.
    let order = field(last, "orderId").unwrap();
    let (ok, stdout, stderr) = fixture
        .cli(&["replay", "--sink", "rd", "--order", &order])
        .await;
    assert!(ok, "{stdout}{stderr}");
    let count = stored.len() as u64;
    fixture
        .until_sink("rd", "the replay delivered", |status| {
            status.pending == 0 && status.delivered == count
        })
        .await;
    let again = entries(&url, &stream).await;
    assert_eq!(
        again.iter().map(|entry| &entry.id).collect::<Vec<_>>(),
        stored.iter().map(|entry| &entry.id).collect::<Vec<_>>(),
        "no entry added by the replay"
    );
    let metrics = fixture
        .app
        .get(format!("{}/metrics", fixture.app.admin_base), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "order_listener_delivery_duplicates_total{{sink=\"rd\"}} {count}"
        )),
        "{metrics}"
    );
    forget(&url, &stream).await;
}

#[tokio::test]
async fn after_a_sigkill_during_forwarding_a_redis_stream_holds_each_event_once() {
    let Some(url) = redis_url() else { return };
    let stream = unique("oltest:kill:");
    let toml = format!(
        "[sinks.rd]\ntype = \"redis\"\nurl = \"{url}\"\nstream = \"{stream}\"\n\
         retry_schedule = [\"50ms\"]\n"
    );
    let (messages, acknowledged) =
        sigkill_during_forwarding(&toml, async || read(&url, &stream).await).await;
    let duplicates = duplicates(&messages);
    eprintln!("Redis Streams sink: {duplicates} duplicate entries after the SIGKILL");
    assert_each_once(&messages, &acknowledged);
    forget(&url, &stream).await;
}
