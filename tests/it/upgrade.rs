//! Upgrading data written by an older release. `tests/fixtures/sqlite-v4` holds a data
//! directory written by commit e4647ca (SQLite schema version 4), with what that release
//! exported from it. Today's code must open a copy of it, migrate it in place, and keep every
//! event byte for byte, every order's projection and the outbox, and go on taking events.
//!
//! The committed file is never opened: each test works on its own copy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use order_listener::domain::envelope::{
    Dialect, EventId, OrderId, ParseOptions, parse_notification,
};
use order_listener::store::{
    Appended, EventRecord, NewEvent, OrderFilter, Storage, Store, StoreError, WriterOptions,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::*;

/// The fixture, written by commit e4647ca; see its README.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sqlite-v4");

/// The schema version the fixture was written with.
const FIXTURE_SCHEMA_VERSION: i64 = 4;

/// One line of the fixture's `events.jsonl`, as `order-listener export` wrote it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportedEvent {
    sequence: i64,
    event_id: String,
    received_at: DateTime<Utc>,
    sender: Option<String>,
    client: Option<String>,
    /// The body exactly as received.
    body: String,
}

/// One order of the fixture's `orders.json`: its line of `orders list --json` (without
/// `updatedAt`) and its `orders show ID --json`.
#[derive(Debug, Deserialize)]
struct RecordedOrder {
    summary: Value,
    projection: Value,
}

/// The fixture's `orders.json`.
#[derive(Debug, Deserialize)]
struct RecordedOrders {
    orders: Vec<RecordedOrder>,
}

/// The fixture's `outbox.json`: `sinks list --json` and `dead-letters list --json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordedOutbox {
    sinks: Vec<RecordedSink>,
    dead_letters: Vec<Value>,
}

/// One line of `sinks list --json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordedSink {
    name: String,
    pending: u64,
    delivered: u64,
    dead: u64,
    failing: u64,
    oldest_pending_at: Option<DateTime<Utc>>,
    disabled_at: Option<DateTime<Utc>>,
    disabled_reason: Option<String>,
}

fn read_fixture(name: &str) -> String {
    let path = Path::new(FIXTURE).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn recorded_events() -> Vec<ExportedEvent> {
    read_fixture("events.jsonl")
        .lines()
        .enumerate()
        .map(|(index, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("events.jsonl line {}: {error}", index + 1))
        })
        .collect()
}

fn recorded_orders() -> Vec<RecordedOrder> {
    serde_json::from_str::<RecordedOrders>(&read_fixture("orders.json"))
        .unwrap()
        .orders
}

fn recorded_outbox() -> RecordedOutbox {
    serde_json::from_str(&read_fixture("outbox.json")).unwrap()
}

/// A copy of the fixture's data directory in a fresh temporary directory.
struct DataDir {
    dir: TempDir,
}

impl DataDir {
    fn copy_of_fixture() -> DataDir {
        init();
        let dir = tempfile::tempdir().unwrap();
        let source = Path::new(FIXTURE).join("data-dir");
        for entry in std::fs::read_dir(&source).unwrap() {
            let entry = entry.unwrap();
            assert!(
                entry.file_type().unwrap().is_file(),
                "the fixture's data directory holds only files: {}",
                entry.path().display()
            );
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        DataDir { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The store of this data directory, as `serve` finds it.
    fn storage(&self) -> Storage {
        TestConfig::new(self.path()).build().storage
    }

    fn database_file(&self) -> PathBuf {
        match self.storage() {
            Storage::Sqlite { path } => path,
            Storage::Postgres { .. } => panic!("a data directory's store is SQLite"),
        }
    }

    /// Opens the store as `serve` does: migrating it to the newest schema.
    async fn open(&self) -> Store {
        Store::open(&self.storage(), WriterOptions::default())
            .await
            .expect("the upgraded store opens")
    }

    fn user_version(&self) -> i64 {
        let connection = rusqlite::Connection::open(self.database_file()).unwrap();
        connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap()
    }
}

/// The newest SQLite schema version: `MIGRATIONS` in `src/store/sqlite/mod.rs` includes one
/// file of this directory per version (a migration that is not a file must be counted here).
fn newest_schema_version() -> i64 {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/migrations/sqlite");
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|extension| extension == "sql")
        })
        .count() as i64
}

/// Every stored event with its body, oldest first, read a page at a time.
async fn all_events(store: &Store) -> Vec<(EventRecord, Bytes)> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = store.events_after(after, 50).await.unwrap();
        let Some((last, _)) = page.last() else {
            return events;
        };
        after = last.sequence;
        events.extend(page);
    }
}

/// An append of these exact bytes, as the Listener API would make it.
fn new_event(body: impl Into<Bytes>) -> NewEvent {
    let options = ParseOptions {
        accept_service_inventory: true,
        ..ParseOptions::default()
    };
    NewEvent {
        notification: parse_notification(body.into(), options).expect("a valid notification"),
        received_at: Utc::now(),
        sender: Some("192.0.2.1".into()),
        client: None,
        trace_context: None,
    }
}

/// Asserts that every field of `recorded` is in `actual` with the same value; objects in
/// `actual` may have fields that were not recorded (added since), arrays must match entry by
/// entry.
fn assert_recorded_fields(recorded: &Value, actual: &Value, at: &str) {
    match (recorded, actual) {
        (Value::Object(recorded), Value::Object(actual)) => {
            for (key, value) in recorded {
                let Some(found) = actual.get(key) else {
                    panic!("{at}.{key} is missing; recorded {value}");
                };
                assert_recorded_fields(value, found, &format!("{at}.{key}"));
            }
        }
        (Value::Array(recorded), Value::Array(actual)) => {
            assert_eq!(
                recorded.len(),
                actual.len(),
                "{at} has {} entries, recorded {}: {actual:?}",
                actual.len(),
                recorded.len()
            );
            for (index, (recorded, actual)) in recorded.iter().zip(actual).enumerate() {
                assert_recorded_fields(recorded, actual, &format!("{at}[{index}]"));
            }
        }
        _ => assert_eq!(recorded, actual, "{at}"),
    }
}

#[test]
fn the_fixture_is_a_version_4_store_with_bodies_that_a_reserialisation_would_change() {
    let data = DataDir::copy_of_fixture();
    assert_eq!(data.user_version(), FIXTURE_SCHEMA_VERSION);
    let events = recorded_events();
    assert!(events.len() > 100, "{} events", events.len());
    // What makes byte-for-byte matter: bodies that parsing and writing again would change.
    let reserialised = events
        .iter()
        .filter(|event| {
            let parsed: Value = serde_json::from_str(&event.body).unwrap();
            serde_json::to_string(&parsed).unwrap() != event.body
        })
        .count();
    assert!(reserialised > events.len() / 2, "{reserialised} bodies");
    assert!(events.iter().any(|event| event.body.contains("\r\n")));
    assert!(events.iter().any(|event| event.body.contains("\\u00e9")));
    assert!(events.iter().any(|event| !event.body.is_ascii()));
}

#[tokio::test]
async fn every_event_of_a_version_4_data_directory_is_kept_byte_for_byte() {
    let data = DataDir::copy_of_fixture();
    let recorded = recorded_events();
    let store = data.open().await;

    let stored = all_events(&store).await;
    assert_eq!(stored.len(), recorded.len(), "events after the upgrade");
    for (expected, (record, body)) in recorded.iter().zip(&stored) {
        let id = &expected.event_id;
        assert_eq!(record.sequence, expected.sequence, "sequence of {id}");
        assert_eq!(record.event_id.as_str(), id);
        assert!(
            body[..] == *expected.body.as_bytes(),
            "the body of {id} changed:\n stored   {:?}\n recorded {:?}",
            String::from_utf8_lossy(body),
            expected.body
        );
        assert_eq!(
            record.received_at, expected.received_at,
            "receivedAt of {id}"
        );
        assert_eq!(record.sender, expected.sender, "sender of {id}");
        assert_eq!(record.client, expected.client, "client of {id}");
        // Every event stored before dialects were recorded came from ONAP's listener.
        assert_eq!(record.dialect, Dialect::Onap, "dialect of {id}");
        assert_eq!(record.reference, None, "reference of {id}");
        // The columns read from the body agree with it.
        let parsed = new_event(Bytes::copy_from_slice(body)).notification;
        assert_eq!(record.event_type, parsed.event_type, "eventType of {id}");
        assert_eq!(record.event_date, parsed.event_date, "eventDate of {id}");
        assert_eq!(
            record.order_id,
            parsed.order.map(|facts| facts.order_id),
            "order of {id}"
        );

        // Looked up by its id, too.
        let event_id: EventId = id.parse().unwrap();
        let (by_id, by_id_body) = store.event(&event_id).await.unwrap().expect("found by id");
        assert_eq!(by_id, *record);
        assert!(by_id_body[..] == *expected.body.as_bytes(), "{id} by id");
    }

    let listed = store
        .events(order_listener::store::EventFilter {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), recorded.len(), "events listed");
    store.close().await;
}

#[tokio::test]
async fn every_order_of_a_version_4_data_directory_keeps_its_projection() {
    let data = DataDir::copy_of_fixture();
    let recorded = recorded_orders();
    assert!(recorded.len() >= 20, "{} orders", recorded.len());
    let store = data.open().await;

    for order in &recorded {
        let id = order.summary["id"].as_str().unwrap();
        let order_id: OrderId = id.parse().unwrap();
        let projection = store
            .order(&order_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("order {id} is gone"));
        let actual = serde_json::to_value(&projection).unwrap();
        assert_recorded_fields(&order.projection, &actual, id);
        // The summary's counts agree with the recorded projection.
        assert_eq!(
            order.summary["eventCount"],
            json!(projection.timeline.len()),
            "{id}"
        );
        assert_eq!(
            order.summary["anomalyCount"],
            json!(projection.anomalies.len()),
            "{id}"
        );
    }

    // The order list (the stored summaries) has every order, and only those.
    let summaries: BTreeMap<String, Value> = store
        .orders(OrderFilter {
            limit: 10_000,
            ..OrderFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|summary| {
            (
                summary.id.to_string(),
                serde_json::to_value(summary).unwrap(),
            )
        })
        .collect();
    assert_eq!(summaries.len(), recorded.len(), "orders listed");
    for order in &recorded {
        let id = order.summary["id"].as_str().unwrap();
        let actual = summaries
            .get(id)
            .unwrap_or_else(|| panic!("order {id} is not listed"));
        assert_recorded_fields(&order.summary, actual, id);
    }
    store.close().await;
}

#[tokio::test]
async fn the_outbox_of_a_version_4_data_directory_is_kept() {
    let data = DataDir::copy_of_fixture();
    let recorded = recorded_outbox();
    assert!(
        recorded.sinks.iter().any(|sink| sink.pending > 0)
            && recorded.sinks.iter().any(|sink| sink.delivered > 0)
            && recorded.sinks.iter().any(|sink| sink.failing > 0)
            && recorded.sinks.iter().any(|sink| sink.disabled_at.is_some())
            && !recorded.dead_letters.is_empty(),
        "the fixture's outbox has pending, delivered, failing and dead deliveries and a disabled sink"
    );
    let store = data.open().await;

    let statuses = store.sink_statuses().await.unwrap();
    assert_eq!(
        statuses.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        recorded
            .sinks
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
    );
    for (status, expected) in statuses.iter().zip(&recorded.sinks) {
        let name = &expected.name;
        assert_eq!(status.pending, expected.pending, "{name} pending");
        assert_eq!(status.delivered, expected.delivered, "{name} delivered");
        assert_eq!(status.dead, expected.dead, "{name} dead");
        assert_eq!(status.failing, expected.failing, "{name} failing");
        assert_eq!(
            status.oldest_pending_at, expected.oldest_pending_at,
            "{name} oldest pending"
        );
        assert_eq!(
            status.disabled.as_ref().map(|(at, _)| *at),
            expected.disabled_at,
            "{name} disabled at"
        );
        assert_eq!(
            status.disabled.as_ref().map(|(_, reason)| reason.clone()),
            expected.disabled_reason,
            "{name} disabled reason"
        );
    }

    let dead = store.dead_letters(None, None, 10_000).await.unwrap();
    let dead = serde_json::to_value(dead).unwrap();
    assert_recorded_fields(&Value::Array(recorded.dead_letters), &dead, "dead letters");

    // Every delivery names its event, and carries the body first received.
    let mut deliveries = 0;
    for event in recorded_events() {
        let event_id: EventId = event.event_id.parse().unwrap();
        for delivery in store.deliveries_of(&event_id).await.unwrap() {
            assert_eq!(delivery.sequence, event.sequence, "{event_id}");
            assert!(delivery.body[..] == *event.body.as_bytes(), "{event_id}");
            deliveries += 1;
        }
    }
    let recorded_total: u64 = recorded
        .sinks
        .iter()
        .map(|sink| sink.pending + sink.delivered + sink.dead)
        .sum();
    assert_eq!(deliveries, recorded_total, "deliveries in the outbox");
    store.close().await;
}

#[tokio::test]
async fn an_upgraded_store_takes_new_events_and_knows_its_old_ones() {
    let data = DataDir::copy_of_fixture();
    let recorded = recorded_events();
    let newest = recorded.iter().map(|event| event.sequence).max().unwrap();
    let store = data.open().await;

    // Every old event resent with its own bytes is a duplicate of itself.
    for event in &recorded {
        match store.append(new_event(event.body.clone())).await.unwrap() {
            Appended::Duplicate { sequence, body } => {
                assert_eq!(sequence, event.sequence, "{}", event.event_id);
                assert!(body[..] == *event.body.as_bytes(), "{}", event.event_id);
            }
            other => panic!("{} resent: {other:?}", event.event_id),
        }
    }

    // The odd-looking body, resent with other spacing and key order, is a duplicate too, and
    // the stored bytes are the ones first received.
    let odd = recorded
        .iter()
        .find(|event| event.event_id == "HF-21-created")
        .expect("the fixture has HF-21-created");
    let parsed: Value = serde_json::from_str(&odd.body).unwrap();
    let relaid = serde_json::to_string_pretty(&parsed).unwrap();
    assert_ne!(relaid, odd.body);
    match store.append(new_event(relaid)).await.unwrap() {
        Appended::Duplicate { sequence, body } => {
            assert_eq!(sequence, odd.sequence);
            assert!(body[..] == *odd.body.as_bytes());
        }
        other => panic!("HF-21-created relaid: {other:?}"),
    }

    // The same eventId with another payload is a conflict, and the stored event stays.
    let mut changed = parsed.clone();
    changed["event"]["state"] = json!("inProgress");
    match store.append(new_event(changed.to_string())).await {
        Err(StoreError::Conflict { event_id }) => assert_eq!(event_id.as_str(), "HF-21-created"),
        other => panic!("a changed payload under HF-21-created: {other:?}"),
    }
    let (_, kept) = store
        .event(&"HF-21-created".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(kept[..] == *odd.body.as_bytes());

    // A new event for an order of the fixture is stored after the old ones and projected.
    let order_id: OrderId = "HF-16".parse().unwrap();
    let before = store.order(&order_id).await.unwrap().unwrap();
    assert_eq!(before.state.map(|state| state.as_str()), Some("inProgress"));
    let completion = json!({
        "eventId": "HF-16-after-the-upgrade",
        "eventDate": "2019-03-26T08:00:00.000Z",
        "eventType": "ServiceOrderStateChangeNotification",
        "event": {
            "id": "HF-16", "href": "serviceOrder/HF-16", "externalId": "BSS-HF-16",
            "state": "completed", "orderDate": "2019-03-25T08:08:56.310Z",
            "completionDateTime": "2019-03-26T08:00:00.000Z",
            "orderItem": [onap_item("1", "add", "completed")]
        }
    });
    let body = completion.to_string();
    let Appended::Stored { sequence } = store.append(new_event(body.clone())).await.unwrap() else {
        panic!("the new event is stored");
    };
    assert!(sequence > newest, "sequence {sequence} after {newest}");

    let after = store.order(&order_id).await.unwrap().unwrap();
    assert_eq!(after.state.map(|state| state.as_str()), Some("completed"));
    assert_eq!(after.timeline.len(), before.timeline.len() + 1);
    assert_eq!(
        after.timeline.last().unwrap().event_id.as_str(),
        "HF-16-after-the-upgrade"
    );
    assert_eq!(after.items.len(), 1);
    assert_eq!(
        after.items[0].state.map(|state| state.as_str()),
        Some("completed")
    );
    assert_eq!(after.anomalies, before.anomalies);
    let summary = store
        .orders(OrderFilter {
            limit: 10_000,
            ..OrderFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .find(|summary| summary.id == order_id)
        .unwrap();
    assert_eq!(summary.state.map(|state| state.as_str()), Some("completed"));
    assert_eq!(summary.event_count, before.timeline.len() + 1);

    let stored = all_events(&store).await;
    assert_eq!(stored.len(), recorded.len() + 1);
    let (last, last_body) = stored.last().unwrap();
    assert_eq!(last.sequence, sequence);
    assert!(last_body[..] == *body.as_bytes());
    store.close().await;

    // Opened again, the migrated store is as it was left.
    let store = data.open().await;
    assert_eq!(all_events(&store).await.len(), recorded.len() + 1);
    let again = store.order(&order_id).await.unwrap().unwrap();
    assert_eq!(again, after);
    store.close().await;
}

#[tokio::test]
async fn opening_a_version_4_data_directory_migrates_it_to_the_newest_schema() {
    let data = DataDir::copy_of_fixture();
    assert_eq!(data.user_version(), FIXTURE_SCHEMA_VERSION);
    let store = data.open().await;
    store.close().await;
    drop(store);

    assert_eq!(data.user_version(), newest_schema_version());
    let connection = rusqlite::Connection::open(data.database_file()).unwrap();
    let integrity: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let mut foreign_keys = connection.prepare("PRAGMA foreign_key_check").unwrap();
    assert!(
        foreign_keys.query([]).unwrap().next().unwrap().is_none(),
        "a row refers to a missing row"
    );
}

#[tokio::test]
async fn the_app_serves_an_upgraded_version_4_data_directory() {
    let data = DataDir::copy_of_fixture();
    let recorded = recorded_events();
    let app = start(TestConfig::new(data.path()).build()).await;

    // A seller's resend of an old event is answered 201 with the body first received.
    let odd = recorded
        .iter()
        .find(|event| event.event_id == "HF-21-created")
        .unwrap();
    let parsed: Value = serde_json::from_str(&odd.body).unwrap();
    let response = app.post(&parsed).await;
    assert_eq!(response.status().as_u16(), 201);
    let echoed = response.bytes().await.unwrap();
    assert!(
        echoed[..] == *odd.body.as_bytes(),
        "echoed {:?}, first received {:?}",
        String::from_utf8_lossy(&echoed),
        odd.body
    );

    // Old orders are served by the admin API.
    let (status, order) = app.admin_get("/api/v1/service-orders/HF-02").await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["externalId"], "Größe-東京-🚀-commande n°7");
    assert_eq!(order["state"], "completed");

    assert_eq!(app.stored_events().await.len(), recorded.len());
    // Old events are ONAP's, and found as such.
    let (status, page) = app
        .admin_get("/api/v1/events?dialect=onap&limit=1000")
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), recorded.len());
    let (_, page) = app.admin_get("/api/v1/events?dialect=tmf641-v4").await;
    assert_eq!(page["items"], serde_json::json!([]));
    app.stop().await;
}
