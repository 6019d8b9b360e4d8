//! `backup` and `restore` of the embedded store: an online copy taken under load holds every
//! event acknowledged before it began, byte for byte, with projections equal to their events';
//! `restore` refuses a store that `serve` holds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use order_listener::domain::envelope::EventId;
use order_listener::store::{OrderFilter, Storage, Store, WriterOptions};
use serde_json::Value;

use crate::helpers::*;

/// Sends `events` at about `per_second` until `stop`, each from its own task as ONAP does;
/// returns when the events run out or on `stop`, with each acknowledged eventId and when its
/// 201 came.
async fn load(
    app: Arc<TestApp>,
    events: Vec<Value>,
    per_second: u64,
    stop: tokio_util::sync::CancellationToken,
    acked: Arc<Mutex<Vec<(String, Instant)>>>,
) {
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / per_second));
    let mut tasks = tokio::task::JoinSet::new();
    for event in events {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let (app, acked) = (app.clone(), acked.clone());
        tasks.spawn(async move {
            let response = app.post(&event).await;
            if response.status().as_u16() == 201 {
                let id = event["eventId"].as_str().unwrap().to_owned();
                acked.lock().unwrap().push((id, Instant::now()));
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[tokio::test]
async fn a_backup_taken_under_load_restores_every_event_acknowledged_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let app = Arc::new(start(TestConfig::new(&data).build()).await);
    let events: Vec<Value> = (0..4_000)
        .flat_map(|order| onap_lifecycle(&format!("SO-bk-{order}"), 1))
        .collect();
    let sent: BTreeMap<String, String> = events
        .iter()
        .map(|event| {
            (
                event["eventId"].as_str().unwrap().to_owned(),
                event.to_string(),
            )
        })
        .collect();
    let order_of: BTreeMap<String, String> = events
        .iter()
        .map(|event| {
            let id = event["eventId"].as_str().unwrap().to_owned();
            (id, event["event"]["id"].as_str().unwrap().to_owned())
        })
        .collect();
    let (stop, acked) = (
        tokio_util::sync::CancellationToken::new(),
        Arc::new(Mutex::new(Vec::new())),
    );
    let loader = tokio::spawn(load(
        app.clone(),
        events,
        1_000,
        stop.clone(),
        acked.clone(),
    ));
    eventually("the load to be under way", async || {
        (acked.lock().unwrap().len() >= 500).then_some(())
    })
    .await;

    // The backup, from another process, while the load goes on.
    let file = dir.path().join("backup.sqlite3");
    let began = Instant::now();
    let arguments = [
        "backup".to_owned(),
        "--to".to_owned(),
        file.display().to_string(),
        "--data-dir".to_owned(),
        data.display().to_string(),
    ];
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        run_cli(&arguments)
    })
    .await
    .unwrap();
    assert!(ok, "{stderr}");
    assert!(stdout.contains("integrity check passed"), "{stdout}");
    // The load goes on after the backup (it ran all along); then it stops.
    let after = acked.lock().unwrap().len();
    eventually("the load to go on after the backup", async || {
        (acked.lock().unwrap().len() > after).then_some(())
    })
    .await;
    stop.cancel();
    loader.await.unwrap();
    let before: Vec<String> = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| *at < began)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(before.len() >= 500, "the load ran before the backup");

    // Restoring over the running store is refused.
    let (ok, _, stderr) = run_cli(&[
        "restore",
        &file.display().to_string(),
        "--data-dir",
        &data.display().to_string(),
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("running `order-listener serve`")
            && stderr.contains("stop it first (a restore replaces the whole store)"),
        "{stderr}"
    );

    // Restored elsewhere: every event acknowledged before the backup, byte for byte.
    let restored = dir.path().join("restored");
    let (ok, stdout, stderr) = run_cli(&[
        "restore",
        &file.display().to_string(),
        "--data-dir",
        &restored.display().to_string(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("restored"), "{stdout}");
    let store = Store::open(
        &Storage::Sqlite {
            path: restored.join("events.sqlite3"),
        },
        WriterOptions::default(),
    )
    .await
    .unwrap();
    for id in &before {
        let (_, body) = store
            .event(&id.parse::<EventId>().unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id} was acknowledged before the backup began"));
        assert_eq!(body, sent[id].as_bytes(), "{id} byte for byte");
    }
    // Each order's stored projection equals the fold of the events the copy holds.
    let orders = store
        .orders(OrderFilter {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let listed: std::collections::BTreeSet<&str> =
        orders.iter().map(|summary| summary.id.as_str()).collect();
    for id in &before {
        assert!(listed.contains(order_of[id].as_str()), "the order of {id}");
    }
    for summary in orders {
        let projected = store.order(&summary.id).await.unwrap().unwrap();
        assert_eq!(summary.state, projected.state, "{}", summary.id);
        assert_eq!(
            summary.event_count,
            projected.timeline.len(),
            "{}",
            summary.id
        );
        assert_eq!(summary.item_count, projected.items.len(), "{}", summary.id);
        assert_eq!(
            summary.anomaly_count,
            projected.anomalies.len(),
            "{}",
            summary.id
        );
    }
    store.close().await;
}

#[tokio::test]
async fn a_second_serve_on_one_store_is_refused_and_a_restore_keeps_the_replaced_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let app = start(TestConfig::new(&data).build()).await;
    assert_eq!(
        app.post(&onap_lifecycle("SO-one", 1)[0])
            .await
            .status()
            .as_u16(),
        201
    );
    let second = order_listener::app::App::build(TestConfig::new(&data).build()).await;
    let error = format!("{:#}", second.err().expect("a second serve is refused"));
    assert!(error.contains("running `order-listener serve`"), "{error}");
    // Its own reason, not restore's.
    assert!(
        error.contains(
            "one data directory serves one listener; stop the other or choose another --data-dir"
        ) && !error.contains("restore"),
        "{error}"
    );
    // A store named by database_url is named so.
    let url = format!("sqlite://{}", data.join("events.sqlite3").display());
    let elsewhere = TestConfig::new(dir.path().join("other"))
        .overrides(|overrides| overrides.database_url = Some(url))
        .build();
    let error = format!(
        "{:#}",
        order_listener::app::App::build(elsewhere)
            .await
            .err()
            .expect("a second serve is refused")
    );
    assert!(
        error.contains(
            "one store serves one listener; stop the other or choose another database_url"
        ),
        "{error}"
    );

    let file = dir.path().join("one.sqlite3");
    let (ok, _, stderr) = run_cli(&[
        "backup",
        "--to",
        &file.display().to_string(),
        "--data-dir",
        &data.display().to_string(),
    ]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = run_cli(&[
        "backup",
        "--to",
        &file.display().to_string(),
        "--data-dir",
        &data.display().to_string(),
    ]);
    assert!(
        !ok && stderr.contains("--force"),
        "an existing file is kept: {stderr}"
    );
    assert_eq!(
        app.post(&onap_lifecycle("SO-two", 1)[0])
            .await
            .status()
            .as_u16(),
        201
    );
    app.stop().await;

    // Stopped: the restore replaces the store, and keeps the one it replaced.
    let (ok, stdout, stderr) = run_cli(&[
        "restore",
        &file.display().to_string(),
        "--data-dir",
        &data.display().to_string(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("before-restore"), "{stdout}");
    assert!(data.join("events.sqlite3.before-restore").exists());
    let app = start(TestConfig::new(&data).build()).await;
    let ids: Vec<String> = app
        .stored_events()
        .await
        .into_iter()
        .map(|record| record.event_id.as_str().to_owned())
        .collect();
    assert_eq!(ids, ["SO-one-created"], "the store as it was backed up");

    // A file that is no store is refused, and the store stays.
    let junk = dir.path().join("junk.sqlite3");
    std::fs::write(&junk, b"not a database").unwrap();
    app.stop().await;
    let (ok, _, stderr) = run_cli(&[
        "restore",
        &junk.display().to_string(),
        "--data-dir",
        &data.display().to_string(),
    ]);
    assert!(!ok, "{stderr}");
    assert!(data.join("events.sqlite3").exists());
}

#[test]
fn on_postgresql_backup_explains_pg_dump() {
    let (ok, _, stderr) = run_cli(&[
        "backup",
        "--to",
        "/tmp/never-written.sqlite3",
        "--database-url",
        "postgres://nobody@127.0.0.1:1/none",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("pg_dump") && stderr.contains("pg_restore"),
        "{stderr}"
    );
    assert!(!std::path::Path::new("/tmp/never-written.sqlite3").exists());
}
