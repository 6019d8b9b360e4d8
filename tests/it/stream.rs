//! `GET /api/v1/stream`: Server-Sent Events of stored events, resumable with `Last-Event-ID`
//! (or `?since=`) without a gap or a duplicate, behind the admin token, and ended by shutdown.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde_json::Value;

use crate::helpers::*;

/// One parsed SSE message.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) id: i64,
    pub(crate) event: String,
    pub(crate) data: Value,
}

/// Reads SSE messages from a streaming response, skipping keep-alive comments.
pub(crate) struct SseReader {
    chunks: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
    fn new(response: reqwest::Response) -> SseReader {
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|value| value.to_str().ok()),
            Some("text/event-stream")
        );
        SseReader {
            chunks: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next message, or `None` when the server ended the stream. Fails the test if nothing
    /// comes within [`PATIENCE`].
    async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(message) = parse_block(&block) {
                    return Some(message);
                }
                continue;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.chunks.next())
                .await
                .expect("the stream sends within the patience")?;
            let chunk = chunk.expect("the stream reads");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("SSE is UTF-8"));
        }
    }

    /// The next `count` messages.
    pub(crate) async fn take(&mut self, count: usize) -> Vec<Message> {
        let mut messages = Vec::with_capacity(count);
        while messages.len() < count {
            messages.push(self.next().await.expect("the stream goes on"));
        }
        messages
    }
}

/// One SSE block (`field: value` lines) as a message; `None` for a comment-only block.
fn parse_block(block: &str) -> Option<Message> {
    let (mut id, mut event, mut data) = (None, None, String::new());
    for line in block.lines().filter(|line| !line.is_empty()) {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.parse().expect("the id is a sequence number")),
            "event" => event = Some(value.to_owned()),
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            other => panic!("unexpected SSE field {other:?} in {block:?}"),
        }
    }
    let id = id?;
    Some(Message {
        id,
        event: event.expect("every message names its event type"),
        data: serde_json::from_str(&data).expect("the data is one JSON document"),
    })
}

/// Opens the stream with the admin token, resuming after `last_event_id` when given.
pub(crate) async fn open_stream(
    app: &TestApp,
    query: &str,
    last_event_id: Option<i64>,
) -> SseReader {
    let mut request = app
        .client
        .get(format!("{}/api/v1/stream{query}", app.admin_base))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id.to_string());
    }
    SseReader::new(request.send().await.expect("the admin API answers"))
}

async fn post_all(app: &TestApp, events: &[Value]) {
    for event in events {
        assert_eq!(app.post(event).await.status().as_u16(), 201);
    }
}

fn event_ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| event["eventId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_client_that_reconnects_with_last_event_id_gets_every_event_once_in_order() {
    let app = spawn_app().await;
    // Stored before the client connects, so not sent: without Last-Event-ID it starts from now.
    let earlier = onap_lifecycle("SO-S0", 1);
    post_all(&app, &earlier).await;

    let first_batch = onap_lifecycle("SO-S1", 2);
    let second_batch = onap_lifecycle("SO-S2", 2);
    let mut stream = open_stream(&app, "", None).await;
    post_all(&app, &first_batch).await;
    let mut received = stream.take(3).await;
    // Disconnect mid-stream: three events of the first batch are committed and not yet read.
    drop(stream);
    post_all(&app, &second_batch).await;

    let last = received.last().unwrap().id;
    let mut resumed = open_stream(&app, "", Some(last)).await;
    let remaining = first_batch.len() + second_batch.len() - received.len();
    received.extend(resumed.take(remaining).await);

    let expected: Vec<String> = event_ids(&first_batch)
        .into_iter()
        .chain(event_ids(&second_batch))
        .collect();
    let got: Vec<String> = received
        .iter()
        .map(|message| message.data["eventId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, expected, "every event once, in order");
    let ids: Vec<i64> = received.iter().map(|message| message.id).collect();
    assert!(
        ids.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "sequences follow one another: {ids:?}"
    );

    // Nothing else was queued before a new event: the next message is that event.
    let live = onap_lifecycle("SO-S3", 1);
    post_all(&app, &live[..1]).await;
    let next = resumed.next().await.unwrap();
    assert_eq!(next.id, ids.last().unwrap() + 1);
    assert_eq!(next.data["eventId"], live[0]["eventId"]);
}

#[tokio::test]
async fn each_message_carries_the_sequence_the_event_type_the_record_and_the_body() {
    let app = spawn_app().await;
    let events = onap_lifecycle("SO-S4", 1);
    post_all(&app, &events).await;
    // `since=0` replays from the first stored event.
    let mut stream = open_stream(&app, "?since=0", None).await;
    let messages = stream.take(events.len()).await;
    let (_, listed) = app.admin_get("/api/v1/events?limit=100").await;
    let mut listed = listed["items"].as_array().unwrap().clone();
    listed.reverse();
    for ((message, sent), item) in messages.iter().zip(&events).zip(&listed) {
        assert_eq!(message.event, sent["eventType"].as_str().unwrap());
        assert_eq!(message.data["sequence"].as_i64(), Some(message.id));
        assert_eq!(&message.data["body"], sent);
        let mut record = message.data.clone();
        record.as_object_mut().unwrap().remove("body");
        assert_eq!(
            &record, item,
            "the record is as GET /api/v1/events lists it"
        );
    }
}

#[tokio::test]
async fn last_event_id_wins_over_since() {
    let app = spawn_app().await;
    let events = onap_lifecycle("SO-S5", 1);
    post_all(&app, &events).await;
    let mut stream = open_stream(&app, "?since=0", Some(2)).await;
    assert_eq!(stream.next().await.unwrap().id, 3);
}

#[tokio::test]
async fn the_stream_without_the_admin_token_is_refused_with_401() {
    let app = spawn_app().await;
    let url = format!("{}/api/v1/stream", app.admin_base);
    let response = app.get(&url, None).await;
    assert_error(response, 401, 40).await;
    let response = app.get(&url, Some("wrong")).await;
    assert_error(response, 401, 41).await;
}

#[tokio::test]
async fn a_resume_point_that_is_not_a_sequence_is_refused_with_400() {
    let app = spawn_app().await;
    let response = app
        .get(
            format!("{}/api/v1/stream?since=yesterday", app.admin_base),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_error(response, 400, 28).await;
}

#[tokio::test]
async fn an_open_stream_ends_at_shutdown_and_does_not_hold_up_the_drain() {
    // A grace long enough that the test would time out if the stream held the connection open.
    let app =
        spawn_app_with(|config| config.limits.shutdown_grace = Duration::from_secs(600)).await;
    let mut stream = open_stream(&app, "", None).await;
    tokio::time::timeout(PATIENCE, app.stop())
        .await
        .expect("the app stops while a stream is open");
    assert!(stream.next().await.is_none(), "the stream ended");
}
