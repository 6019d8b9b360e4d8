//! Deduplication and the order projection through the real API: every event sent twice, in
//! any order and concurrently, gives one stored event each and the same projections.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use serde_json::Value;

use crate::helpers::*;

/// A deterministic shuffle (xorshift), so a failure can be replayed.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for index in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(index, (seed % (index as u64 + 1)) as usize);
    }
}

fn orders(count: usize) -> Vec<(String, Vec<Value>)> {
    (0..count)
        .map(|n| {
            let id = format!("SO-{n:03}");
            let events = onap_lifecycle(&id, 1 + n % 3);
            (id, events)
        })
        .collect()
}

async fn projections(app: &TestApp, ids: &[String]) -> BTreeMap<String, Value> {
    let mut result = BTreeMap::new();
    for id in ids {
        let (status, mut order) = app.admin_get(&format!("/api/v1/service-orders/{id}")).await;
        assert_eq!(status, 200, "order {id}");
        // The projection must not depend on receipt details.
        order.as_object_mut().unwrap().remove("receivedAt");
        result.insert(id.clone(), order);
    }
    result
}

#[tokio::test]
async fn every_event_sent_twice_in_any_order_is_stored_once_with_the_same_projection() {
    let orders = orders(12);
    let ids: Vec<String> = orders.iter().map(|(id, _)| id.clone()).collect();
    let in_order: Vec<Value> = orders
        .iter()
        .flat_map(|(_, events)| events.clone())
        .collect();

    // Reference: one app, each event once, in order.
    let reference = spawn_app().await;
    for event in &in_order {
        assert_eq!(reference.post(event).await.status().as_u16(), 201);
    }
    let expected = projections(&reference, &ids).await;
    for (id, order) in &expected {
        assert_eq!(order["state"], "completed", "{id}");
        assert_eq!(order["anomalies"], Value::Array(vec![]), "{id}");
    }

    // Every event twice, shuffled, sent by 16 concurrent senders.
    let app = spawn_app().await;
    let mut doubled: Vec<Value> = in_order.iter().chain(in_order.iter()).cloned().collect();
    shuffle(&mut doubled, 0x5eed_1234_abcd_0001);
    let statuses: Vec<u16> = futures_util::stream::iter(doubled.iter())
        .map(|event| async { app.post(event).await.status().as_u16() })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|status| *status == 201), "{statuses:?}");

    let stored = app.stored_events().await;
    assert_eq!(stored.len(), in_order.len(), "each event is stored once");
    assert_eq!(projections(&app, &ids).await, expected);
}

#[tokio::test]
async fn an_out_of_order_event_does_not_overwrite_a_newer_state_and_bad_transitions_are_anomalies()
{
    let app = spawn_app().await;
    let events = onap_lifecycle("SO-late", 1);
    // The completion arrives first, the creation last.
    for event in events.iter().rev() {
        assert_eq!(app.post(event).await.status().as_u16(), 201);
    }
    let (_, order) = app.admin_get("/api/v1/service-orders/SO-late").await;
    assert_eq!(order["state"], "completed");
    assert_eq!(order["items"][0]["state"], "completed");
    assert_eq!(
        order["timeline"][0]["eventType"],
        "ServiceOrderCreationNotification"
    );
    assert_eq!(order["anomalies"], Value::Array(vec![]));

    // A failure after completion is accepted but recorded as an anomaly.
    let failed = onap_event(
        "SO-late-failed",
        "ServiceOrderStateChangeNotification",
        10_000,
        "SO-late",
        "failed",
        vec![],
    );
    assert_eq!(app.post(&failed).await.status().as_u16(), 201);
    let (_, order) = app.admin_get("/api/v1/service-orders/SO-late").await;
    assert_eq!(order["state"], "failed");
    assert_eq!(order["anomalies"][0]["eventId"], "SO-late-failed");
    assert_eq!(order["anomalies"][0]["from"], "completed");
    assert_eq!(order["anomalies"][0]["to"], "failed");
    assert_eq!(order["anomalies"][0]["subject"], "order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_commits() {
    let app = spawn_app().await;
    let events: Vec<Value> = (0..40)
        .flat_map(|n| onap_lifecycle(&format!("SO-gc-{n}"), 2))
        .collect();
    let before = app.store.writer_stats();
    let statuses: Vec<u16> = futures_util::stream::iter(events.iter())
        .map(|event| async { app.post(event).await.status().as_u16() })
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(statuses.iter().all(|status| *status == 201));
    let after = app.store.writer_stats();
    let appends = after.appends - before.appends;
    let commits = after.commits - before.commits;
    assert_eq!(appends, events.len() as u64);
    assert!(
        commits < appends,
        "{appends} appends took {commits} commits: no commit was shared"
    );
}

/// The same lifecycle as Casablanca's NBI sent it: every date as a JSON number of epoch
/// milliseconds.
fn as_casablanca(mut event: Value, order_id: &str) -> Value {
    let millis = |value: &Value| {
        value.as_str().map(|text| {
            Value::from(
                chrono::DateTime::parse_from_rfc3339(text)
                    .unwrap()
                    .timestamp_millis(),
            )
        })
    };
    event["eventId"] = Value::from(format!("casablanca-{}", event["eventId"].as_str().unwrap()));
    event["eventDate"] = millis(&event["eventDate"]).unwrap();
    event["event"]["id"] = Value::from(order_id);
    for field in ["orderDate", "completionDateTime"] {
        if let Some(number) = millis(&event["event"][field]) {
            event["event"][field] = number;
        }
    }
    event
}

#[tokio::test]
async fn a_casablanca_order_with_epoch_millisecond_dates_projects_as_its_dublin_twin() {
    let app = spawn_app().await;
    for event in onap_lifecycle("SO-dublin", 2) {
        let casablanca = as_casablanca(event.clone(), "SO-casablanca");
        assert!(casablanca["eventDate"].is_i64(), "{casablanca}");
        assert_eq!(app.post(&event).await.status().as_u16(), 201);
        let response = app.post(&casablanca).await;
        assert_eq!(response.status().as_u16(), 201, "{casablanca}");
        let echoed: Value = response.json().await.unwrap();
        assert_eq!(echoed, casablanca, "the answer echoes the body as sent");
    }
    let (_, dublin) = app.admin_get("/api/v1/service-orders/SO-dublin").await;
    let (status, casablanca) = app.admin_get("/api/v1/service-orders/SO-casablanca").await;
    assert_eq!(status, 200, "{casablanca}");
    assert_eq!(casablanca["state"], "completed");
    for field in [
        "state",
        "items",
        "orderDate",
        "completionDateTime",
        "lastEventDate",
        "anomalies",
    ] {
        assert_eq!(casablanca[field], dublin[field], "{field}");
    }
    let dates = |order: &Value| -> Vec<Value> {
        order["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["eventDate"].clone())
            .collect()
    };
    assert_eq!(dates(&dublin).len(), 6, "{dublin}");
    assert_eq!(dates(&casablanca), dates(&dublin));
    // The stored body keeps the numbers as they were sent.
    let (_, raw) = app
        .admin_get("/api/v1/events/casablanca-SO-dublin-created?raw=true")
        .await;
    assert!(raw["eventDate"].is_i64(), "{raw}");
}
