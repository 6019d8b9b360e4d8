//! Retention and moving data: `Store::prune` on every backend (the store contract's
//! `backends()`), and `export` from SQLite then `import` into PostgreSQL (or another SQLite file
//! without it) through the real binary.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use order_listener::domain::envelope::{
    Dialect, EventType, OrderId, ParseOptions, parse_notification,
};
use order_listener::domain::routing::{Route, RouteFilter};
use order_listener::metrics::Metrics;
use order_listener::store::{
    Appended, DeliveryOutcome, NewEvent, OrderFilter, OutcomeKind, PruneLimits, Pruned, Storage,
    Store, WriterOptions,
};
use serde_json::Value;

use crate::helpers::*;
use crate::store_contract::{
    backends, dialect_event, fresh_postgres_schema, mef_href, mef_v6_state_change, postgres_url,
    tmf641_v4_state_change,
};

fn received(body: &Value, received_at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        notification: parse_notification(Bytes::from(body.to_string()), ParseOptions::default())
            .unwrap(),
        received_at,
        sender: Some("192.0.2.7".into()),
        client: Some("seller".into()),
        trace_context: None,
    }
}

async fn open(storage: &Storage, routes: Vec<Route>) -> Store {
    Store::open_with_routes(
        storage,
        WriterOptions::default(),
        routes,
        Arc::new(Metrics::new()),
    )
    .await
    .unwrap()
}

fn every_event_to(sink: &str) -> Route {
    Route {
        sink: sink.parse().unwrap(),
        filter: RouteFilter::default(),
    }
}

fn events_before(before: DateTime<Utc>) -> PruneLimits {
    PruneLimits {
        events_before: Some(before),
        delivered_before: None,
    }
}

async fn append_all(store: &Store, events: &[Value], received_at: DateTime<Utc>) {
    for event in events {
        let appended = store.append(received(event, received_at)).await.unwrap();
        assert!(matches!(appended, Appended::Stored { .. }), "{appended:?}");
    }
}

fn order_id(id: &str) -> OrderId {
    id.parse().unwrap()
}

#[tokio::test]
async fn old_events_go_with_orders_left_empty_and_recent_ones_stay() {
    for backend in backends().await {
        let store = open(&backend.storage, Vec::new()).await;
        let now = Utc::now();
        let long_ago = now - Duration::days(500);
        // SO-old: every event is old. SO-mixed: created long ago, completed recently.
        append_all(&store, &onap_lifecycle("SO-old", 1), long_ago).await;
        let mixed = onap_lifecycle("SO-mixed", 1);
        let (early, late) = mixed.split_at(2);
        append_all(&store, early, long_ago).await;
        append_all(&store, late, now).await;
        let before_pruning = store
            .orders(OrderFilter {
                limit: 10,
                ..OrderFilter::default()
            })
            .await
            .unwrap();
        let mixed_updated_at = before_pruning
            .iter()
            .find(|order| order.id.as_str() == "SO-mixed")
            .unwrap()
            .updated_at;

        let limits = events_before(now - Duration::days(400));
        let expected = store.prunable(limits).await.unwrap();
        let pruned = store.prune(limits, 500).await.unwrap();
        let old_count = onap_lifecycle("SO-old", 1).len() + early.len();
        assert_eq!(pruned.events, old_count, "{}", backend.name);
        assert_eq!(pruned.orders, 1, "{}", backend.name);
        assert!(!pruned.filled(500));
        assert_eq!(
            expected, pruned,
            "{}: the dry run counts the same",
            backend.name
        );

        assert_eq!(store.order(&order_id("SO-old")).await.unwrap(), None);
        let kept = store.order(&order_id("SO-mixed")).await.unwrap().unwrap();
        assert_eq!(kept.timeline.len(), late.len(), "{}", backend.name);
        let listed = store
            .orders(OrderFilter {
                limit: 10,
                ..OrderFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.len(), 1, "{}: {listed:?}", backend.name);
        assert_eq!(listed[0].id.as_str(), "SO-mixed");
        assert_eq!(listed[0].event_count, late.len(), "{}", backend.name);
        assert_eq!(
            listed[0].updated_at, mixed_updated_at,
            "{}: pruning does not move an order up the list",
            backend.name
        );
        let left = store.events_after(0, 100).await.unwrap();
        assert_eq!(left.len(), late.len(), "{}", backend.name);

        // Nothing more is old enough.
        assert_eq!(store.prune(limits, 500).await.unwrap(), Pruned::default());
        store.close().await;
    }
}

#[tokio::test]
async fn pending_deliveries_protect_their_events_and_finished_ones_go_with_them() {
    for backend in backends().await {
        let store = open(&backend.storage, vec![every_event_to("billing")]).await;
        let long_ago = Utc::now() - Duration::days(500);
        let events = onap_lifecycle("SO-pending", 1);
        append_all(&store, &events[..2], long_ago).await;
        let limits = events_before(Utc::now() - Duration::days(400));

        assert_eq!(
            store.prune(limits, 500).await.unwrap(),
            Pruned::default(),
            "{}: both deliveries are pending",
            backend.name
        );

        // Deliver the first event only.
        let first_id =
            parse_notification(Bytes::from(events[0].to_string()), ParseOptions::default())
                .unwrap()
                .event_id;
        let delivery = store.deliveries_of(&first_id).await.unwrap().remove(0);
        store
            .record_outcomes(vec![DeliveryOutcome {
                id: delivery.id,
                queued_at: delivery.created_at,
                result: OutcomeKind::Delivered,
            }])
            .await
            .unwrap();
        let pruned = store.prune(limits, 500).await.unwrap();
        assert_eq!(
            (pruned.events, pruned.deliveries, pruned.orders),
            (1, 1, 0),
            "{}: {pruned:?}",
            backend.name
        );
        assert!(store.event(&first_id).await.unwrap().is_none());
        let left = store.events_after(0, 10).await.unwrap();
        assert_eq!(left.len(), 1, "{}", backend.name);
        assert_eq!(
            store.deliveries_of(&left[0].0.event_id).await.unwrap()[0].state,
            order_listener::store::DeliveryState::Pending
        );
        store.close().await;
    }
}

#[tokio::test]
async fn delivered_outbox_rows_go_after_their_own_retention_and_their_events_stay() {
    for backend in backends().await {
        let store = open(&backend.storage, vec![every_event_to("billing")]).await;
        let events = onap_lifecycle("SO-outbox", 1);
        append_all(&store, &events, Utc::now()).await;
        let due = store
            .due_deliveries(&"billing".parse().unwrap(), Utc::now(), Vec::new(), 100)
            .await
            .unwrap();
        assert_eq!(due.len(), 1, "one lane, one head");
        store
            .record_outcomes(vec![DeliveryOutcome {
                id: due[0].id,
                queued_at: due[0].created_at,
                result: OutcomeKind::Delivered,
            }])
            .await
            .unwrap();
        let limits = PruneLimits {
            events_before: None,
            delivered_before: Some(Utc::now() + Duration::seconds(1)),
        };
        assert_eq!(store.prunable(limits).await.unwrap().finished_deliveries, 1);
        let pruned = store.prune(limits, 500).await.unwrap();
        assert_eq!(
            pruned,
            Pruned {
                finished_deliveries: 1,
                ..Pruned::default()
            },
            "{}",
            backend.name
        );
        assert_eq!(
            store.events_after(0, 100).await.unwrap().len(),
            events.len()
        );
        let status = &store.sink_statuses().await.unwrap()[0];
        assert_eq!(
            (status.pending, status.delivered),
            (events.len() as u64 - 1, 0),
            "{}",
            backend.name
        );
        store.close().await;
    }
}

#[tokio::test]
async fn each_prune_call_deletes_at_most_one_batch() {
    for backend in backends().await {
        let store = open(&backend.storage, Vec::new()).await;
        let long_ago = Utc::now() - Duration::days(500);
        for order in 0..3 {
            append_all(
                &store,
                &onap_lifecycle(&format!("SO-b{order}"), 1),
                long_ago,
            )
            .await;
        }
        let total = store.events_after(0, 100).await.unwrap().len();
        assert!(total > 7);
        let limits = events_before(Utc::now() - Duration::days(1));
        let mut batches = Vec::new();
        loop {
            let pruned = store.prune(limits, 4).await.unwrap();
            assert!(pruned.events <= 4, "{}: {pruned:?}", backend.name);
            batches.push(pruned.events);
            if !pruned.filled(4) {
                break;
            }
        }
        assert_eq!(batches.iter().sum::<usize>(), total, "{}", backend.name);
        assert_eq!(
            batches.len(),
            total.div_ceil(4) + usize::from(total % 4 == 0)
        );
        assert!(store.events_after(0, 100).await.unwrap().is_empty());
        assert!(
            store
                .orders(OrderFilter {
                    limit: 10,
                    ..OrderFilter::default()
                })
                .await
                .unwrap()
                .is_empty(),
            "{}",
            backend.name
        );
        store.close().await;
    }
}

/// The target of the import: PostgreSQL when configured, else another SQLite file.
async fn import_target(dir: &std::path::Path) -> (String, Storage) {
    match postgres_url() {
        Some(url) => {
            let url = fresh_postgres_schema(&url).await;
            (
                url.clone(),
                Storage::Postgres {
                    url: order_listener::secret::Secret::new(url),
                },
            )
        }
        None => {
            let path = dir.join("target.sqlite3");
            (
                format!("sqlite://{}", path.display()),
                Storage::Sqlite { path },
            )
        }
    }
}

#[tokio::test]
async fn export_then_import_keeps_every_body_byte_for_byte_and_every_projection() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let source_path = dir.path().join("source.sqlite3");
    let source_storage = Storage::Sqlite {
        path: source_path.clone(),
    };
    let source = open(&source_storage, vec![every_event_to("billing")]).await;
    let mut orders = Vec::new();
    for order in 0..4 {
        let id = format!("SO-x{order}");
        for (index, event) in onap_lifecycle(&id, 2).into_iter().enumerate() {
            // Odd spacing and key order: the exact text must survive the trip.
            let text = if index % 2 == 0 {
                serde_json::to_string_pretty(&event).unwrap()
            } else {
                format!(" {event}\t")
            };
            let mut new = received(&event, Utc::now() - Duration::minutes(index as i64));
            new.notification.raw = Bytes::from(text);
            if order == 3 {
                new.sender = None;
                new.client = None;
            }
            source.append(new).await.unwrap();
        }
        orders.push(id);
    }
    source.close().await;

    let source_url = format!("sqlite://{}", source_path.display());
    let (ok, exported, stderr) = run_cli(&["export", "--database-url", &source_url]);
    assert!(ok, "{stderr}");
    let export_file = dir.path().join("events.jsonl");
    std::fs::write(&export_file, &exported).unwrap();

    let (target_url, target_storage) = import_target(dir.path()).await;
    let file = export_file.to_str().unwrap();
    let (ok, stdout, stderr) = run_cli(&["import", file, "--database-url", &target_url]);
    assert!(ok, "{stdout}{stderr}");
    let source_events = {
        let source = Store::open_read_only(&source_storage).await.unwrap();
        let events = source.events_after(0, 1000).await.unwrap();
        let mut projections = Vec::new();
        for id in &orders {
            projections.push(source.order(&order_id(id)).await.unwrap().unwrap());
        }
        (events, projections)
    };
    assert!(
        stdout.contains(&format!("{} stored", source_events.0.len())),
        "{stdout}"
    );

    let target = Store::open_read_only(&target_storage).await.unwrap();
    for (record, body) in &source_events.0 {
        let (stored, stored_body) = target.event(&record.event_id).await.unwrap().unwrap();
        assert_eq!(&stored_body[..], &body[..], "{}", record.event_id);
        assert_eq!(stored.received_at, record.received_at);
        assert_eq!(
            (&stored.sender, &stored.client),
            (&record.sender, &record.client)
        );
    }
    for (id, projection) in orders.iter().zip(&source_events.1) {
        let imported = target.order(&order_id(id)).await.unwrap().unwrap();
        assert_eq!(&imported, projection, "{id}");
    }
    assert!(
        target.sink_statuses().await.unwrap().is_empty(),
        "imported history is not queued for sinks"
    );

    // Again, with a bad line and a conflicting payload: duplicates are skipped, the rest is
    // reported by line number and fails the command.
    let mut lines: Vec<String> = exported.lines().map(str::to_owned).collect();
    let mut conflicting: Value = serde_json::from_str(&lines[1]).unwrap();
    let body: Value = serde_json::from_str(conflicting["body"].as_str().unwrap()).unwrap();
    let mut changed = body.clone();
    changed["event"]["state"] = Value::from("failed");
    conflicting["body"] = Value::from(changed.to_string());
    lines[1] = conflicting.to_string();
    lines.insert(3, "{not json".into());
    std::fs::write(&export_file, lines.join("\n")).unwrap();
    let (ok, stdout, stderr) = run_cli(&["import", file, "--database-url", &target_url]);
    assert!(!ok, "{stdout}{stderr}");
    assert!(stderr.contains("line 2:"), "{stderr}");
    assert!(stderr.contains("line 4:"), "{stderr}");
    assert!(
        stdout.contains("0 stored")
            && stdout.contains(&format!("{} duplicates", source_events.0.len() - 1))
            && stdout.contains("1 conflict,")
            && stdout.contains("1 error"),
        "{stdout}"
    );
}

#[tokio::test]
async fn export_then_import_keeps_each_events_dialect_and_an_older_export_imports_as_onap() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let source_path = dir.path().join("source.sqlite3");
    let source_storage = Storage::Sqlite {
        path: source_path.clone(),
    };
    let source = open(&source_storage, Vec::new()).await;
    let state_change = EventType::ServiceOrderStateChangeEvent;
    let onap = onap_lifecycle("SO-t-onap", 1).remove(0);
    source.append(received(&onap, Utc::now())).await.unwrap();
    let tmf = tmf641_v4_state_change("tmf-t-1", "SO-t-tmf", "inProgress");
    let mef = mef_v6_state_change("mef-t-1", "SO-t-mef", "completed");
    for (dialect, body) in [(Dialect::Tmf641V4, &tmf), (Dialect::MefLegatoV6, &mef)] {
        source
            .append(dialect_event(dialect, state_change, body))
            .await
            .unwrap();
    }
    let source_events = source.events_after(0, 100).await.unwrap();
    source.close().await;

    let source_url = format!("sqlite://{}", source_path.display());
    let (ok, exported, stderr) = run_cli(&["export", "--database-url", &source_url]);
    assert!(ok, "{stderr}");
    let lines: Vec<Value> = exported
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let written: Vec<(&str, &str)> = lines
        .iter()
        .map(|line| {
            (
                line["dialect"].as_str().unwrap(),
                line["eventType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        written,
        [
            ("onap", "ServiceOrderCreationNotification"),
            ("tmf641-v4", "ServiceOrderStateChangeEvent"),
            ("mef-legato-v6", "ServiceOrderStateChangeEvent"),
        ]
    );
    let export_file = dir.path().join("events.jsonl");
    std::fs::write(&export_file, &exported).unwrap();
    let (target_url, target_storage) = import_target(dir.path()).await;
    let file = export_file.to_str().unwrap();
    let (ok, stdout, stderr) = run_cli(&["import", file, "--database-url", &target_url]);
    assert!(ok && stdout.contains("3 stored"), "{stdout}{stderr}");

    let target = Store::open_read_only(&target_storage).await.unwrap();
    for (record, body) in &source_events {
        let (stored, stored_body) = target.event(&record.event_id).await.unwrap().unwrap();
        assert_eq!(&stored_body[..], &body[..], "{}", record.event_id);
        assert_eq!(
            (stored.dialect, &stored.reference, stored.event_type),
            (record.dialect, &record.reference, record.event_type),
            "{}",
            record.event_id
        );
    }
    let (mef_record, _) = target
        .event(&"mef-t-1".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mef_record.reference, Some(mef_href("SO-t-mef")));
    let projected = target.order(&order_id("SO-t-mef")).await.unwrap().unwrap();
    assert_eq!(
        projected.state,
        Some(order_listener::domain::state::State::Completed)
    );
    target.close().await;

    // A line written before dialects were stored has neither dialect nor eventType: ONAP's. A
    // line of another dialect without its eventType cannot be parsed, and says so.
    let old_body = onap_lifecycle("SO-t-old", 1).remove(0).to_string();
    let old_line = serde_json::json!({
        "sequence": 9, "eventId": "SO-t-old-created", "receivedAt": "2024-05-01T12:00:00Z",
        "sender": null, "client": null, "body": old_body,
    });
    let mut typeless = lines[1].clone();
    typeless.as_object_mut().unwrap().remove("eventType");
    typeless["body"] = tmf641_v4_state_change("tmf-t-2", "SO-t-tmf", "completed")
        .to_string()
        .into();
    typeless["eventId"] = "tmf-t-2".into();
    std::fs::write(&export_file, format!("{old_line}\n{typeless}\n")).unwrap();
    let (ok, stdout, stderr) = run_cli(&["import", file, "--database-url", &target_url]);
    assert!(!ok, "{stdout}{stderr}");
    assert!(
        stderr.contains("line 2: a tmf641-v4 event needs its eventType"),
        "{stderr}"
    );
    assert!(
        stdout.contains("1 stored") && stdout.contains("1 error"),
        "{stdout}"
    );
    let target = Store::open_read_only(&target_storage).await.unwrap();
    let (old, _) = target
        .event(&"SO-t-old-created".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((old.dialect, old.reference), (Dialect::Onap, None));
}

#[tokio::test]
async fn serve_prunes_old_events_every_interval_and_stops_with_the_app() {
    let app = spawn_app_with(|config| {
        config.retention = order_listener::config::retention::Retention {
            events: Some(std::time::Duration::from_secs(400 * 86_400)),
            interval: std::time::Duration::from_millis(20),
            ..Default::default()
        };
    })
    .await;
    let old = onap_lifecycle("SO-serve-old", 1);
    append_all(&app.store, &old, Utc::now() - Duration::days(500)).await;
    let recent = onap_lifecycle("SO-serve-new", 1);
    append_all(&app.store, &recent, Utc::now()).await;

    let left = eventually("the old events pruned", async || {
        let events = app.stored_events().await;
        (events.len() <= recent.len()).then_some(events)
    })
    .await;
    assert!(
        left.iter()
            .all(|event| event.order_id.as_ref().unwrap().as_str() == "SO-serve-new")
    );
    app.stop().await;
}

#[tokio::test]
async fn the_prune_command_counts_with_dry_run_then_deletes_by_the_configured_retention() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite3");
    let storage = Storage::Sqlite { path: path.clone() };
    let store = open(&storage, Vec::new()).await;
    append_all(
        &store,
        &onap_lifecycle("SO-cli-old", 1),
        Utc::now() - Duration::days(30),
    )
    .await;
    append_all(&store, &onap_lifecycle("SO-cli-new", 1), Utc::now()).await;
    store.close().await;
    let old_count = onap_lifecycle("SO-cli-old", 1).len();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "database_url = \"sqlite://{}\"\n[retention]\nevents = \"7days\"\nbatch_size = 2\n",
            path.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();

    let (ok, stdout, stderr) = run_cli(&["prune", "--dry-run", "--config", config]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("would delete {old_count} events")) && stdout.contains("1 order"),
        "{stdout}"
    );
    let (ok, stdout, stderr) = run_cli(&["prune", "--config", config]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("deleted {old_count} events")),
        "{stdout}"
    );
    let store = Store::open_read_only(&storage).await.unwrap();
    assert_eq!(store.order(&order_id("SO-cli-old")).await.unwrap(), None);
    assert!(
        store
            .order(&order_id("SO-cli-new"))
            .await
            .unwrap()
            .is_some()
    );
}
