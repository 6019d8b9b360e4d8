//! One contract for the store, run against every backend: SQLite always, PostgreSQL when
//! `ORDER_LISTENER_TEST_POSTGRES_URL` names a database (each test gets its own schema there).

use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use order_listener::domain::envelope::{
    Dialect, EventType, ParseOptions, parse, parse_notification,
};
use order_listener::domain::routing::{Route, RouteFilter};
use order_listener::domain::state::State;
use order_listener::metrics::Metrics;
use order_listener::secret::Secret;
use order_listener::store::{
    Appended, DeliveryOutcome, EventFilter, NewEvent, OrderFilter, OutcomeKind, Requeue, Storage,
    Store, StoreError, WriterOptions,
};
use serde_json::Value;

use crate::helpers::*;

/// A backend under test and what keeps it alive.
pub(crate) struct Backend {
    pub name: &'static str,
    pub storage: Storage,
    _dir: Option<tempfile::TempDir>,
}

/// The PostgreSQL database of this run, from `.ci/run`.
pub(crate) fn postgres_url() -> Option<String> {
    service(
        "ORDER_LISTENER_TEST_POSTGRES_URL",
        "a PostgreSQL database's URL (each test makes its own schema there)",
    )
}

/// A fresh schema in the run's database, as a URL whose connections use it.
pub(crate) async fn fresh_postgres_schema(url: &str) -> String {
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("the test PostgreSQL answers");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// SQLite in a temporary directory, and PostgreSQL in a fresh schema when configured.
pub(crate) async fn backends() -> Vec<Backend> {
    init();
    let dir = tempfile::tempdir().unwrap();
    let mut backends = vec![Backend {
        name: "sqlite",
        storage: Storage::Sqlite {
            path: dir.path().join("contract.sqlite3"),
        },
        _dir: Some(dir),
    }];
    if let Some(url) = postgres_url() {
        backends.push(Backend {
            name: "postgres",
            storage: Storage::Postgres {
                url: Secret::new(fresh_postgres_schema(&url).await),
            },
            _dir: None,
        });
    }
    backends
}

pub(crate) fn new_event(body: &Value) -> NewEvent {
    NewEvent {
        notification: parse_notification(Bytes::from(body.to_string()), ParseOptions::default())
            .unwrap(),
        received_at: Utc::now(),
        sender: Some("192.0.2.1".into()),
        client: Some("seller".into()),
        trace_context: None,
    }
}

/// A TMF641 v4 state change of `order_id` to `state`, as a seller POSTs it to
/// `/tmf-api/serviceOrdering/v4/listener/serviceOrderStateChangeEvent`, with the swagger's
/// fields (`timeOcurred` spelt so).
pub(crate) fn tmf641_v4_state_change(event_id: &str, order_id: &str, state: &str) -> Value {
    serde_json::json!({
        "eventId": event_id,
        "eventTime": "2026-11-30T10:00:00.000Z",
        "eventType": "ServiceOrderStateChangeEvent",
        "correlationId": format!("corr-{event_id}"),
        "domain": "serviceOrdering",
        "title": "ServiceOrderStateChangeEvent",
        "priority": "4",
        "timeOcurred": "2026-11-30T10:00:00.000Z",
        "event": {"serviceOrder": {
            "id": order_id,
            "href": format!("https://seller.example/tmf-api/serviceOrdering/v4/serviceOrder/{order_id}"),
            "state": state,
            "externalId": format!("BSS-{order_id}"),
            "orderDate": "2026-11-30T09:00:00.000Z",
            "serviceOrderItem": [
                {"id": "1", "action": "add", "state": state, "service": {"name": "vCPE"}}
            ]
        }}
    })
}

/// Where a MEF seller serves `order_id`.
pub(crate) fn mef_href(order_id: &str) -> String {
    format!("https://seller.example/mefApi/legato/serviceOrdering/v6/serviceOrder/{order_id}")
}

/// A MEF LSO Legato v6 state change of `order_id` to `state`: only a reference to the order,
/// `{id, href, state}`, as POSTed to `…/v6/listener/serviceOrderStateChangeEvent`.
pub(crate) fn mef_v6_state_change(event_id: &str, order_id: &str, state: &str) -> Value {
    serde_json::json!({
        "eventId": event_id,
        "eventTime": "2026-11-30T10:00:01.000Z",
        "eventType": "serviceOrderStateChangeEvent",
        "event": {"id": order_id, "href": mef_href(order_id), "state": state}
    })
}

/// `body` as the listener of `dialect` parses it at the path of `kind`, received now.
pub(crate) fn dialect_event(dialect: Dialect, kind: EventType, body: &Value) -> NewEvent {
    let raw = Bytes::from(body.to_string());
    NewEvent {
        notification: parse(dialect, Some(kind), raw, ParseOptions::default())
            .unwrap_or_else(|error| panic!("a {dialect} {kind}: {error}")),
        received_at: Utc::now(),
        sender: Some("192.0.2.1".into()),
        client: Some("seller".into()),
        trace_context: None,
    }
}

fn route(sink: &str, filter: RouteFilter) -> Route {
    Route {
        sink: sink.parse().unwrap(),
        filter,
    }
}

pub(crate) async fn open(backend: &Backend, routes: Vec<Route>) -> Store {
    Store::open_with_routes(
        &backend.storage,
        WriterOptions::default(),
        routes,
        Arc::new(Metrics::new()),
    )
    .await
    .unwrap_or_else(|error| panic!("{}: {error:?}", backend.name))
}

#[tokio::test]
async fn an_event_is_stored_once_and_a_different_payload_under_its_id_is_a_conflict() {
    for backend in backends().await {
        let store = open(&backend, Vec::new()).await;
        let event = onap_lifecycle("SO-c1", 1).remove(0);
        let first = store.append(new_event(&event)).await.unwrap();
        let Appended::Stored { sequence } = first else {
            panic!("{}: {first:?}", backend.name);
        };
        // A resend with other spacing is the same payload.
        let resent = serde_json::to_string_pretty(&event).unwrap();
        let mut again = new_event(&event);
        again.notification.raw = Bytes::from(resent);
        match store.append(again).await.unwrap() {
            Appended::Duplicate {
                sequence: same,
                body,
            } => {
                assert_eq!(same, sequence, "{}", backend.name);
                assert_eq!(
                    body,
                    Bytes::from(event.to_string()),
                    "the stored body is echoed"
                );
            }
            other => panic!("{}: {other:?}", backend.name),
        }
        let mut changed = event.clone();
        changed["event"]["state"] = "completed".into();
        let error = store.append(new_event(&changed)).await.unwrap_err();
        assert!(
            matches!(error, StoreError::Conflict { .. }),
            "{}: {error:?}",
            backend.name
        );
        let (record, body) = store
            .event(&"SO-c1-created".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(body, Bytes::from(event.to_string()), "{}", backend.name);
        assert_eq!(record.client.as_deref(), Some("seller"));
        assert_eq!(record.sender.as_deref(), Some("192.0.2.1"));
        store.close().await;
    }
}

#[tokio::test]
async fn concurrent_appends_with_duplicates_store_each_event_once() {
    for backend in backends().await {
        let store = open(&backend, Vec::new()).await;
        let events: Vec<Value> = (0..6)
            .flat_map(|index| onap_lifecycle(&format!("SO-cc{index}"), 2))
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        for _copy in 0..3 {
            for event in &events {
                let (store, event) = (store.clone(), new_event(event));
                tasks.spawn(async move { store.append(event).await });
            }
        }
        let mut stored = 0;
        while let Some(outcome) = tasks.join_next().await {
            if let Appended::Stored { .. } = outcome.unwrap().unwrap() {
                stored += 1;
            }
        }
        assert_eq!(stored, events.len(), "{}", backend.name);
        let listed = store
            .events(EventFilter {
                limit: 1000,
                ..EventFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.len(), events.len(), "{}", backend.name);
        let order = store
            .order(&"SO-cc3".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(order.state, Some(State::Completed), "{}", backend.name);
        store.close().await;
    }
}

#[tokio::test]
async fn lists_filter_and_page_and_the_feed_is_in_receipt_order() {
    for backend in backends().await {
        let store = open(&backend, Vec::new()).await;
        let events: Vec<Value> = onap_lifecycle("SO-l1", 1)
            .into_iter()
            .chain(onap_lifecycle("SO-l2", 1))
            .collect();
        for event in &events {
            store.append(new_event(event)).await.unwrap();
        }
        let first = store
            .events(EventFilter {
                limit: 3,
                ..EventFilter::default()
            })
            .await
            .unwrap();
        let rest = store
            .events(EventFilter {
                limit: 100,
                before_sequence: Some(first.last().unwrap().sequence),
                ..EventFilter::default()
            })
            .await
            .unwrap();
        let mut ids: Vec<String> = first
            .iter()
            .chain(&rest)
            .map(|record| record.event_id.as_str().to_owned())
            .collect();
        ids.reverse();
        let sent: Vec<String> = events
            .iter()
            .map(|event| event["eventId"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, sent, "{}: newest first, pages join", backend.name);

        let feed = store.events_after(first[1].sequence, 100).await.unwrap();
        assert_eq!(
            feed.iter()
                .map(|(record, _)| record.sequence)
                .collect::<Vec<_>>(),
            vec![first[0].sequence],
            "{}",
            backend.name
        );
        // A request for no rows is a request for the smallest page, on both backends alike.
        let smallest = store.events_after(0, 0).await.unwrap();
        assert_eq!(smallest.len(), 1, "{}: at least one row", backend.name);
        let completed = store
            .orders(OrderFilter {
                state: Some(State::Completed),
                limit: 10,
                ..OrderFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(completed.len(), 2, "{}", backend.name);
        let by_external = store
            .orders(OrderFilter {
                external_id: Some("ext-SO-l2".into()),
                limit: 10,
                ..OrderFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(by_external[0].id.as_str(), "SO-l2", "{}", backend.name);
        store.close().await;
    }
}

#[tokio::test]
async fn the_outbox_routes_orders_lanes_records_outcomes_and_requeues() {
    for backend in backends().await {
        let completions = RouteFilter {
            order_states: Some([State::Completed].into()),
            ..RouteFilter::default()
        };
        let store = open(
            &backend,
            vec![
                route("all", RouteFilter::default()),
                route("done", completions),
            ],
        )
        .await;
        let mut events = onap_lifecycle("SO-o1", 1);
        events.reverse();
        for event in &events {
            store.append(new_event(event)).await.unwrap();
        }
        let now = Utc::now();
        // One lane: only its earliest event is due, whatever the arrival order.
        let due = store
            .due_deliveries(&"all".parse().unwrap(), now, Vec::new(), 10)
            .await
            .unwrap();
        assert_eq!(due.len(), 1, "{}", backend.name);
        assert_eq!(
            due[0].event_id.as_str(),
            "SO-o1-created",
            "{}",
            backend.name
        );
        let done = store
            .due_deliveries(&"done".parse().unwrap(), now, Vec::new(), 10)
            .await
            .unwrap();
        assert_eq!(done.len(), 1, "{}: only the completion", backend.name);

        // A failure keeps the lane waiting; a dead letter lets it go on.
        store
            .record_outcomes(vec![DeliveryOutcome {
                id: due[0].id,
                queued_at: due[0].created_at,
                result: OutcomeKind::Dead {
                    error: "HTTP sink answered 500".into(),
                },
            }])
            .await
            .unwrap();
        let next = store
            .due_deliveries(&"all".parse().unwrap(), Utc::now(), Vec::new(), 10)
            .await
            .unwrap();
        let second = onap_lifecycle("SO-o1", 1)[1]["eventId"].clone();
        assert_eq!(next[0].event_id.as_str(), second, "{}", backend.name);
        let dead = store
            .dead_letters(Some(&"all".parse().unwrap()), None, 10)
            .await
            .unwrap();
        assert_eq!(dead.len(), 1, "{}", backend.name);
        assert_eq!(
            dead[0].last_error.as_deref(),
            Some("HTTP sink answered 500")
        );

        let statuses = store.sink_statuses().await.unwrap();
        let all = statuses
            .iter()
            .find(|status| status.name.as_str() == "all")
            .unwrap();
        assert_eq!(
            (all.pending, all.dead),
            (events.len() as u64 - 1, 1),
            "{}",
            backend.name
        );

        // The dead letter is queued again.
        let requeued = store
            .requeue(Requeue {
                scope: order_listener::store::RequeueScope::DeadLetters,
                sink: Some("all".parse().unwrap()),
                limit: 10,
                ..Requeue::default()
            })
            .await
            .unwrap();
        assert_eq!(requeued.count, 1, "{}", backend.name);
        // A replay of one event queues it again even when delivered.
        let replayed = store
            .requeue(Requeue {
                sink: Some("done".parse().unwrap()),
                event_id: Some("SO-o1-completed".parse().unwrap()),
                limit: 100,
                ..Requeue::default()
            })
            .await
            .unwrap();
        assert_eq!(replayed.count, 1, "{}", backend.name);

        store
            .set_sink_disabled(&"done".parse().unwrap(), Some("410 Gone".into()))
            .await
            .unwrap();
        let statuses = store.sink_statuses().await.unwrap();
        let done = statuses
            .iter()
            .find(|status| status.name.as_str() == "done")
            .unwrap();
        assert!(done.disabled.is_some(), "{}", backend.name);
        store
            .set_sink_disabled(&"done".parse().unwrap(), None)
            .await
            .unwrap();
        let deliveries = store
            .deliveries_of(&"SO-o1-completed".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(deliveries.len(), 2, "{}: one per sink", backend.name);
        store.close().await;
    }
}

#[tokio::test]
async fn each_event_keeps_its_dialect_and_reference_and_is_found_routed_and_replayed_by_dialect() {
    for backend in backends().await {
        let name = backend.name;
        let only = |dialects: &[Dialect]| RouteFilter {
            dialects: Some(dialects.iter().copied().collect()),
            ..RouteFilter::default()
        };
        let store = open(
            &backend,
            vec![
                route("tm-forum", only(&[Dialect::Tmf641V4, Dialect::Tmf641V5])),
                route("legato", only(&[Dialect::MefLegatoV6])),
            ],
        )
        .await;
        let onap = onap_lifecycle("SO-d-onap", 1).remove(0);
        let tmf = tmf641_v4_state_change("tmf-d-1", "SO-d-tmf", "inProgress");
        let mef = mef_v6_state_change("mef-d-1", "SO-d-mef", "inProgress");
        store.append(new_event(&onap)).await.unwrap();
        let state_change = EventType::ServiceOrderStateChangeEvent;
        for (dialect, body) in [(Dialect::Tmf641V4, &tmf), (Dialect::MefLegatoV6, &mef)] {
            let appended = store
                .append(dialect_event(dialect, state_change, body))
                .await
                .unwrap();
            assert!(matches!(appended, Appended::Stored { .. }), "{name}");
        }

        // By id: the dialect, the reference (MEF's href only) and the body as received.
        let (record, body) = store
            .event(&"mef-d-1".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.dialect, Dialect::MefLegatoV6, "{name}");
        assert_eq!(record.reference, Some(mef_href("SO-d-mef")), "{name}");
        assert_eq!(record.event_type, state_change, "{name}");
        assert_eq!(body, Bytes::from(mef.to_string()), "{name}");
        let listed = serde_json::to_value(&record).unwrap();
        assert_eq!(listed["dialect"], "mef-legato-v6", "{name}");
        assert_eq!(listed["reference"], mef_href("SO-d-mef").as_str(), "{name}");
        let (record, body) = store
            .event(&"tmf-d-1".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (record.dialect, record.reference.as_deref()),
            (Dialect::Tmf641V4, None),
            "{name}"
        );
        assert_eq!(body, Bytes::from(tmf.to_string()), "{name}");
        let listed = serde_json::to_value(&record).unwrap();
        assert!(listed.get("reference").is_none(), "{name}: {listed}");

        // Listed by dialect.
        let by_dialect = async |dialect: Option<Dialect>| -> Vec<String> {
            let filter = EventFilter {
                dialect,
                limit: 100,
                ..EventFilter::default()
            };
            let records = store.events(filter).await.unwrap();
            records
                .iter()
                .map(|record| format!("{} {}", record.dialect, record.event_id))
                .collect()
        };
        assert_eq!(
            by_dialect(Some(Dialect::MefLegatoV6)).await,
            ["mef-legato-v6 mef-d-1"],
            "{name}"
        );
        assert_eq!(
            by_dialect(Some(Dialect::Tmf641V4)).await,
            ["tmf641-v4 tmf-d-1"],
            "{name}"
        );
        assert_eq!(
            by_dialect(Some(Dialect::Onap)).await,
            ["onap SO-d-onap-created"],
            "{name}"
        );
        assert!(
            by_dialect(Some(Dialect::Tmf641V5)).await.is_empty(),
            "{name}"
        );
        assert_eq!(by_dialect(None).await.len(), 3, "{name}");

        // The feed and the stream read the same columns, and the body after them.
        let feed = store.events_after(0, 100).await.unwrap();
        let dialects: Vec<Dialect> = feed.iter().map(|(record, _)| record.dialect).collect();
        assert_eq!(
            dialects,
            [Dialect::Onap, Dialect::Tmf641V4, Dialect::MefLegatoV6],
            "{name}"
        );
        assert_eq!(feed[2].1, Bytes::from(mef.to_string()), "{name}");
        let followed = eventually("the three events in the stream", async || {
            let page = store.follow(Default::default(), 100).await.unwrap();
            (page.len() == 3).then_some(page)
        })
        .await;
        assert_eq!(followed[1].1.dialect, Dialect::Tmf641V4, "{name}");
        assert_eq!(followed[1].2, Bytes::from(tmf.to_string()), "{name}");
        assert!(followed[0].0 < followed[2].0, "{name}");

        // Each dialect's order is projected as ONAP's are.
        let order = store
            .order(&"SO-d-mef".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(order.state, Some(State::InProgress), "{name}");
        let order = store
            .order(&"SO-d-tmf".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(order.external_id.as_deref(), Some("BSS-SO-d-tmf"), "{name}");

        // Routes take the dialects they name.
        let now = Utc::now();
        let due = |sink: &'static str| {
            let store = store.clone();
            async move {
                let due = store
                    .due_deliveries(&sink.parse().unwrap(), now, Vec::new(), 10)
                    .await
                    .unwrap();
                due.iter()
                    .map(|delivery| delivery.event_id.to_string())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(due("tm-forum").await, ["tmf-d-1"], "{name}");
        assert_eq!(due("legato").await, ["mef-d-1"], "{name}");

        // A replay reads the stored dialect: only what the filter takes is queued again.
        let replay = |filter: RouteFilter| Requeue {
            sink: Some("legato".parse().unwrap()),
            scope: order_listener::store::RequeueScope::Replay,
            limit: 100,
            filter: Some(filter),
            ..Requeue::default()
        };
        let replayed = store
            .requeue(replay(only(&[Dialect::MefLegatoV6])))
            .await
            .unwrap();
        assert_eq!(replayed.count, 1, "{name}: the MEF event only");
        let replayed = store
            .requeue(replay(only(&[Dialect::Onap, Dialect::Tmf641V4])))
            .await
            .unwrap();
        assert_eq!(replayed.count, 2, "{name}: the ONAP and TMF events");
        let mut queued = store
            .deliveries_of(&"SO-d-onap-created".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(queued.len(), 1, "{name}");
        assert_eq!(queued.remove(0).sink.as_str(), "legato", "{name}");
        store.close().await;
    }
}

#[tokio::test]
async fn the_console_searches_orders_and_counts_events_by_minute() {
    for backend in backends().await {
        let store = open(&backend, Vec::new()).await;
        let done = onap_lifecycle("SO-Search-Done", 1);
        for event in &done {
            store.append(new_event(event)).await.unwrap();
        }
        let open_order = onap_lifecycle("so-search-open", 1).remove(0);
        store.append(new_event(&open_order)).await.unwrap();
        let search = |text: &str, stuck: bool| order_listener::store::OrderFilter {
            text: Some(text.to_owned()),
            unchanged_before: stuck.then(|| Utc::now() + chrono::Duration::hours(1)),
            limit: 10,
            ..Default::default()
        };
        let found = store.orders(search("SEARCH", false)).await.unwrap();
        assert_eq!(found.len(), 2, "{}: text ignores case", backend.name);
        let found = store
            .orders(search("ext-so-search-open", false))
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{}: externalId", backend.name);
        let stuck = store.orders(search("search", true)).await.unwrap();
        assert_eq!(
            stuck
                .iter()
                .map(|order| order.id.as_str())
                .collect::<Vec<_>>(),
            ["so-search-open"],
            "{}: a completed order is never stuck",
            backend.name
        );
        let minutes = store
            .events_per_minute(Utc::now() - chrono::Duration::minutes(5))
            .await
            .unwrap();
        let total: u64 = minutes.iter().map(|count| count.count).sum();
        assert_eq!(total, done.len() as u64 + 1, "{}", backend.name);
        store.close().await;
    }
}

/// Runs one statement on the backend's database, behind the store's back.
pub(crate) async fn tamper(backend: &Backend, sqlite: &str, postgres: &str) {
    match &backend.storage {
        Storage::Sqlite { path } => {
            let connection = rusqlite::Connection::open(path).unwrap();
            connection
                .busy_timeout(std::time::Duration::from_secs(5))
                .unwrap();
            assert_eq!(connection.execute(sqlite, []).unwrap(), 1, "{sqlite}");
        }
        Storage::Postgres { url } => {
            let (client, connection) = tokio_postgres::connect(url.expose(), tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            assert_eq!(
                client.execute(postgres, &[]).await.unwrap(),
                1,
                "{postgres}"
            );
        }
    }
}

#[tokio::test]
async fn a_stored_row_that_cannot_be_read_is_left_out_and_new_events_still_land() {
    for backend in backends().await {
        let store = open(&backend, Vec::new()).await;
        let lifecycle = onap_lifecycle("SO-bad", 1);
        for event in &lifecycle[..3] {
            store.append(new_event(event)).await.unwrap();
        }
        // The order's fold and one event's facts no longer decode.
        tamper(
            &backend,
            "UPDATE service_orders SET fold = X'09FFFF' WHERE id = 'SO-bad'",
            "UPDATE service_orders SET fold = '\\x09ffff'::bytea WHERE id = 'SO-bad'",
        )
        .await;
        tamper(
            &backend,
            "UPDATE events SET facts_c = X'01FFFFFFFF' WHERE event_id = 'SO-bad-item-1-0'",
            "UPDATE events SET facts_c = '\\x01ffffffff'::bytea WHERE event_id = 'SO-bad-item-1-0'",
        )
        .await;
        let appended = store.append(new_event(&lifecycle[3])).await.unwrap();
        assert!(
            matches!(appended, Appended::Stored { .. }),
            "{}: {appended:?}",
            backend.name
        );
        // The projection is rebuilt from the events that read, and says so in its counts.
        let summary = store
            .orders(OrderFilter {
                limit: 10,
                ..OrderFilter::default()
            })
            .await
            .unwrap()
            .into_iter()
            .find(|order| order.id.as_str() == "SO-bad")
            .unwrap();
        assert_eq!(summary.event_count, 3, "{}", backend.name);
        assert_eq!(summary.state, Some(State::Completed), "{}", backend.name);
        let order = store
            .order(&"SO-bad".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(order.timeline.len(), 3, "{}", backend.name);
        assert_eq!(order.items[0].state, Some(State::Completed));
        // The unreadable event is still stored, byte for byte.
        let (_, body) = store
            .event(&"SO-bad-item-1-0".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(body, Bytes::from(lifecycle[1].to_string()));
        store.close().await;
    }
}

/// Replica A's append transaction is held open (its order's projection row is locked by a
/// third connection) after it has inserted its event; replica B commits a later-sequenced
/// event meanwhile. The stream must not move past A's event before A commits, and then give
/// both, each once.
#[tokio::test]
async fn the_stream_never_skips_an_event_that_commits_late() {
    let Some(url) = postgres_url() else {
        return;
    };
    init();
    let url = fresh_postgres_schema(&url).await;
    let storage = Storage::Postgres {
        url: Secret::new(url.clone()),
    };
    let a = Store::open(&storage, WriterOptions::default())
        .await
        .unwrap();
    let b = Store::open(&storage, WriterOptions::default())
        .await
        .unwrap();
    let late_order = onap_lifecycle("SO-late", 1);
    let Appended::Stored { sequence: first } = a.append(new_event(&late_order[0])).await.unwrap()
    else {
        panic!("the first event is new");
    };
    // The head covers a committed event only once every older transaction of the cluster has
    // ended, and other tests' transactions run on the same server.
    let start = eventually("the stream's head to reach the first event", async || {
        let head = b.stream_head().await.unwrap();
        (head.sequence >= first).then_some(head)
    })
    .await;

    let (mut locker, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let locker_pid: i32 = locker
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let hold = locker.transaction().await.unwrap();
    hold.execute(
        "SELECT 1 FROM service_orders WHERE id = 'SO-late' FOR UPDATE",
        &[],
    )
    .await
    .unwrap();
    let late = tokio::spawn({
        let a = a.clone();
        let event = new_event(&late_order[1]);
        async move { a.append(event).await }
    });
    let (watcher, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    eventually("replica A to wait for the order's row", async || {
        let waiting: i64 = watcher
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                &[&locker_pid],
            )
            .await
            .unwrap()
            .get(0);
        (waiting > 0).then_some(())
    })
    .await;

    let early = onap_lifecycle("SO-early", 1).remove(0);
    let Appended::Stored {
        sequence: early_sequence,
    } = b.append(new_event(&early)).await.unwrap()
    else {
        panic!("the early event is new");
    };
    assert!(
        b.follow(start, 100).await.unwrap().is_empty(),
        "the stream must wait for the transaction that is still open"
    );

    hold.commit().await.unwrap();
    let Appended::Stored {
        sequence: late_sequence,
    } = late.await.unwrap().unwrap()
    else {
        panic!("the late event is new");
    };
    assert!(
        late_sequence < early_sequence,
        "the late event took its sequence first ({late_sequence} against {early_sequence})"
    );
    let page = eventually("both events in the stream", async || {
        let page = b.follow(start, 100).await.unwrap();
        (page.len() >= 2).then_some(page)
    })
    .await;
    let ids: Vec<&str> = page
        .iter()
        .map(|(_, record, _)| record.event_id.as_str())
        .collect();
    assert_eq!(ids, ["SO-late-item-1-0", "SO-early-created"]);
    assert!(page[0].0 < page[1].0, "positions grow along the stream");
    a.close().await;
    b.close().await;
}

/// Ten thousand events of one order: creation, then its three items and the order moving
/// through states (some moves forbidden, some dates shared), ending completed.
fn long_order(order_id: &str, count: usize) -> Vec<Value> {
    let items = ["1", "2", "3"];
    let item_states = [
        "inProgress",
        "inProgress",
        "held",
        "inProgress",
        "completed",
        "failed",
    ];
    let order_states = ["inProgress", "held", "inProgress", "pending", "inProgress"];
    let mut events = vec![onap_event(
        &format!("{order_id}-0"),
        "ServiceOrderCreationNotification",
        0,
        order_id,
        "acknowledged",
        items
            .iter()
            .map(|id| onap_item(id, "add", "acknowledged"))
            .collect(),
    )];
    for n in 1..count {
        // Every fifth event shares its date with the one before.
        let millis = (n - usize::from(n % 5 == 0)) as i64;
        let event = if n + 1 == count {
            onap_event(
                &format!("{order_id}-{n}"),
                "ServiceOrderStateChangeNotification",
                millis,
                order_id,
                "completed",
                items
                    .iter()
                    .map(|id| onap_item(id, "add", "completed"))
                    .collect(),
            )
        } else if n % 7 == 0 {
            onap_event(
                &format!("{order_id}-{n}"),
                "ServiceOrderStateChangeNotification",
                millis,
                order_id,
                order_states[n / 7 % order_states.len()],
                vec![],
            )
        } else {
            onap_event(
                &format!("{order_id}-{n}"),
                "ServiceOrderItemStateChangeNotification",
                millis,
                order_id,
                "inProgress",
                vec![onap_item(
                    items[n % items.len()],
                    "modify",
                    item_states[n / 3 % item_states.len()],
                )],
            )
        };
        events.push(event);
    }
    events
}

/// Appends in chunks of 64 at once (one commit batch each), chunk after chunk.
async fn append_in_chunks(store: &Store, events: &[Value]) {
    for chunk in events.chunks(64) {
        let appends = chunk.iter().map(|event| store.append(new_event(event)));
        for outcome in futures_util::future::join_all(appends).await {
            assert!(matches!(outcome.unwrap(), Appended::Stored { .. }));
        }
    }
}

#[tokio::test]
async fn ten_thousand_events_of_one_order_newest_first_project_as_in_order() {
    for backend in backends().await {
        let store = open(&backend, Vec::new()).await;
        let forward = long_order("SO-long-a", 10_000);
        append_in_chunks(&store, &forward).await;
        let mut backward = long_order("SO-long-b", 10_000);
        backward.reverse();
        append_in_chunks(&store, &backward).await;

        let summaries = store
            .orders(OrderFilter {
                limit: 10,
                ..OrderFilter::default()
            })
            .await
            .unwrap();
        let summary = |id: &str| {
            let mut summary = summaries
                .iter()
                .find(|summary| summary.id.as_str() == id)
                .unwrap()
                .clone();
            summary.id = "SO-long".parse().unwrap();
            summary.external_id = None;
            summary.updated_at = chrono::DateTime::UNIX_EPOCH;
            summary
        };
        let (a, b) = (summary("SO-long-a"), summary("SO-long-b"));
        assert_eq!(a, b, "{}", backend.name);
        assert_eq!(a.event_count, 10_000, "{}", backend.name);
        assert_eq!(a.state, Some(State::Completed), "{}", backend.name);
        // The stored fold agrees with the reference fold of the same events.
        let reference = store
            .order(&"SO-long-b".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(a.anomaly_count > 0, "the sequence has forbidden moves");
        assert_eq!(
            a.anomaly_count,
            reference.anomalies.len(),
            "{}",
            backend.name
        );
        assert_eq!(a.item_count, reference.items.len(), "{}", backend.name);
        store.close().await;
    }
}

/// The URL without its `sslmode`, with `application_name` set to find its connections and
/// the given TLS options.
fn with_tls(url: &str, options: &[(&str, &str)], name: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("sslmode="))
        .map(str::to_owned)
        .collect();
    pairs.push(format!("application_name={name}"));
    for (key, value) in options {
        pairs.push(format!("{key}={}", value.replace('/', "%2F")));
    }
    format!("{base}?{}", pairs.join("&"))
}

/// A connection to try: host, TLS options, whether it connects, whether it is encrypted.
type TlsCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, bool, bool);

/// Whether the certificate in PEM names `host`.
fn names(pem: &[u8], host: &str) -> bool {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).unwrap();
    let certificate = pem.parse_x509().unwrap();
    certificate
        .subject_alternative_name()
        .ok()
        .flatten()
        .is_some_and(|names| {
            names.value.general_names.iter().any(|name| {
                matches!(name, x509_parser::extensions::GeneralName::DNSName(dns) if *dns == host)
            })
        })
}

#[tokio::test]
async fn postgres_urls_take_sslmode_as_libpq_does() {
    let Some(base) = postgres_url() else {
        return;
    };
    init();
    let schema_url = fresh_postgres_schema(&base).await;
    let (watcher, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let setting = async |name: &str| -> String {
        watcher
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .unwrap()
            .get(0)
    };
    let offers_tls = setting("ssl").await == "on";
    let server_cert = setting("ssl_cert_file").await;
    let dir = tempfile::tempdir().unwrap();
    // A CA that signed nothing the server holds.
    let stranger = dir.path().join("stranger.pem");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(
        &stranger,
        ca.self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap()
            .pem(),
    )
    .unwrap();
    let stranger = stranger.to_str().unwrap().to_owned();
    // (host, options, whether it connects, whether the connection is encrypted)
    let mut cases: Vec<TlsCase> = vec![
        ("127.0.0.1", vec![("sslmode", "disable")], true, false),
        ("127.0.0.1", vec![("sslmode", "allow")], true, offers_tls),
        ("127.0.0.1", vec![("sslmode", "prefer")], true, offers_tls),
        ("127.0.0.1", vec![], true, offers_tls),
        ("127.0.0.1", vec![("sslmode", "require")], offers_tls, true),
        (
            "127.0.0.1",
            vec![("sslmode", "verify-ca"), ("sslrootcert", &stranger)],
            false,
            true,
        ),
        (
            "127.0.0.1",
            vec![("sslmode", "require"), ("sslrootcert", &stranger)],
            false,
            true,
        ),
    ];
    // With the server's own certificate as the trusted root: verify-ca takes it whatever it
    // names, verify-full only for a host it names.
    match std::fs::read(&server_cert) {
        Ok(pem) if offers_tls => {
            cases.push((
                "127.0.0.1",
                vec![("sslmode", "verify-ca"), ("sslrootcert", &server_cert)],
                true,
                true,
            ));
            cases.push((
                "127.0.0.1",
                vec![("sslmode", "verify-full"), ("sslrootcert", &server_cert)],
                names(&pem, "127.0.0.1"),
                true,
            ));
            if names(&pem, "localhost") {
                cases.push((
                    "localhost",
                    vec![("sslmode", "verify-full"), ("sslrootcert", &server_cert)],
                    true,
                    true,
                ));
            }
        }
        _ => eprintln!(
            "the server's certificate {server_cert} cannot be read: verify-ca and verify-full are checked by the unit tests only"
        ),
    }
    for (index, (host, options, connects, encrypted)) in cases.into_iter().enumerate() {
        let name = format!("ol-tls-{index}");
        let url = with_tls(&schema_url, &options, &name).replace("127.0.0.1", host);
        let opened = Store::open(
            &Storage::Postgres {
                url: Secret::new(url),
            },
            WriterOptions::default(),
        )
        .await;
        assert_eq!(
            opened.is_ok(),
            connects,
            "{host} {options:?}: {:?}",
            opened.err()
        );
        let Ok(store) = opened else {
            continue;
        };
        store.ping().await.unwrap();
        let rows = watcher
            .query(
                "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
                 WHERE a.application_name = $1",
                &[&name],
            )
            .await
            .unwrap();
        assert!(!rows.is_empty(), "{options:?}: no connection found");
        for row in rows {
            assert_eq!(row.get::<_, bool>(0), encrypted, "{host} {options:?}");
        }
        store.close().await;
    }
    // The key=value form, as psql takes it.
    let config: tokio_postgres::Config = base.parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        other => panic!("{other:?}"),
    };
    let key_value = format!(
        "host={host} port={} user={} dbname='{}' application_name=ol-tls-kv sslmode=prefer",
        config.get_ports()[0],
        config.get_user().unwrap(),
        config.get_dbname().unwrap(),
    );
    // The database's own schema may have no tables: reaching it is what counts here.
    match Store::open_read_only(&Storage::Postgres {
        url: Secret::new(key_value),
    })
    .await
    {
        Ok(store) => store.ping().await.unwrap(),
        Err(error) => assert!(matches!(error, StoreError::Missing(_)), "{error:?}"),
    }
}
