//! Reconciliation (issue 14) end to end: an ONAP seller that loses notifications (the
//! simulator, with drops), its Service Ordering API serving the true orders, the suspect rules
//! that point at every order left wrong, and `order-listener reconcile` that repairs them with
//! synthesized events, until every projection equals the seller's order.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::helpers::*;
use crate::seller::{served_order, start_simulator, subscribe, summary};

/// Every non-final state stale at once: after the run, an order not final in the projection is
/// one whose last notifications were lost.
const STALE_AT_ONCE: &str = "[reconcile]\nsweep_every = \"never\"\n\
    [reconcile.stale_after]\nacknowledged = \"1ms\"\npending = \"1ms\"\nheld = \"1ms\"\n\
    inProgress = \"1ms\"\nassessingCancellation = \"1ms\"\npendingCancellation = \"1ms\"\n";

/// An order's state and its items' states, as the seller serves it or the listener shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct States {
    order: Option<String>,
    items: BTreeMap<String, String>,
}

fn states(order: &Value, items_key: &str) -> States {
    States {
        order: order["state"].as_str().map(str::to_owned),
        items: order[items_key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                Some((
                    item["id"].as_str()?.to_owned(),
                    item["state"].as_str()?.to_owned(),
                ))
            })
            .collect(),
    }
}

/// The seller's true orders, from its Service Ordering API.
async fn seller_orders(hub: &str, summary: &Value) -> BTreeMap<String, States> {
    let mut orders = BTreeMap::new();
    let truth = summary["truth"].as_array().unwrap();
    for id in truth.iter().map(|order| order["id"].as_str().unwrap()) {
        let served = served_order(hub, id).await;
        orders.insert(id.to_owned(), states(&served, "orderItem"));
    }
    orders
}

/// The orders whose projection differs from the seller's, with both.
async fn wrong_orders(
    admin: &str,
    truth: &BTreeMap<String, States>,
) -> BTreeMap<String, (Option<States>, States)> {
    let mut wrong = BTreeMap::new();
    for (id, seller) in truth {
        let (status, projection) = admin_json(admin, &format!("/api/v1/service-orders/{id}")).await;
        let projected = match status {
            404 => None,
            200 => {
                assert!(projection.is_object(), "order {id}: {projection}");
                Some(states(&projection, "items"))
            }
            status => panic!("order {id}: {status}"),
        };
        if projected.as_ref() != Some(seller) {
            wrong.insert(id.clone(), (projected, seller.clone()));
        }
    }
    wrong
}

/// The ids of every suspect order.
async fn suspects(admin: &str) -> BTreeSet<String> {
    let (_, listed) = admin_json(admin, "/api/v1/suspects?limit=1000").await;
    listed["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list of suspects: {listed}"))
        .iter()
        .map(|order| order["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs `reconcile` with the app's configuration and store; returns its JSON and exit status.
fn reconcile(dir: &std::path::Path, extra: &[&str]) -> (bool, Value, String) {
    let config = dir.join("config.toml");
    let data = dir.join("data");
    let mut args = vec![
        "reconcile",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--json",
    ];
    args.extend(extra);
    let (ok, stdout, stderr) = run_cli(&args);
    let checks = serde_json::from_str(&stdout)
        .unwrap_or_else(|_| panic!("reconcile prints JSON: {stdout}\n{stderr}"));
    (ok, checks, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_repairs_every_order_an_onap_seller_left_wrong_by_losing_notifications() {
    let (mut simulator, hub) = start_simulator(&[
        "--wait-subscribers",
        "1",
        "--orders",
        "60",
        "--drops",
        "0.3",
        "--duplicates",
        "0.1",
        "--reorder",
        "0.2",
        "--seed",
        "14",
        "--linger",
        "10m",
        "--json",
    ]);
    let hooks = WebhookReceiver::start(200).await;
    let sellers_only = WebhookReceiver::start(200).await;
    let app = spawn_app_with_file(&format!(
        "[seller_apis.nbi]\nbase_url = \"{hub}\"\ndialects = [\"onap\"]\n{STALE_AT_ONCE}\
         [sinks.all]\ntype = \"http\"\nurl = \"{}\"\nretry_schedule = [\"100ms\"]\n\
         [sinks.sellers]\ntype = \"http\"\nurl = \"{}\"\nsources = [\"seller\"]\n\
         retry_schedule = [\"100ms\"]\n",
        hooks.url, sellers_only.url
    ))
    .await;
    let dir = app.data_dir.parent().unwrap().to_owned();
    subscribe(&hub, None, &app.listener_url);
    let summary = summary(&mut simulator);
    assert!(summary["dropped"].as_u64().unwrap() > 0, "{summary:#}");
    let truth = seller_orders(&hub, &summary).await;
    let stored_before = app.stored_events().await.len();

    // Every order the lost notifications left wrong is suspect.
    let wrong = wrong_orders(&app.admin_base, &truth).await;
    assert!(
        wrong.len() >= 5,
        "drops at 30% leave orders wrong: {wrong:?}"
    );
    let suspect = suspects(&app.admin_base).await;
    for (id, (projected, seller)) in &wrong {
        assert!(
            suspect.contains(id),
            "order {id} is wrong ({projected:?}, the seller has {seller:?}) but not suspect"
        );
    }

    // A dry run shows the repairs and records nothing.
    let (ok, checks, stderr) = reconcile(&dir, &["--all-suspects", "--dry-run"]);
    assert!(ok, "{stderr}");
    let differs: BTreeSet<String> = checks
        .as_array()
        .unwrap()
        .iter()
        .filter(|check| check["outcome"] == "differs")
        .map(|check| check["orderId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(differs, wrong.keys().cloned().collect::<BTreeSet<_>>());
    assert_eq!(app.stored_events().await.len(), stored_before);

    // The repair: one synthesized event per wrong order, and every projection is right.
    let (ok, checks, stderr) = reconcile(&dir, &["--all-suspects"]);
    assert!(ok, "{stderr}\n{checks:#}");
    let repaired: BTreeMap<String, String> = checks
        .as_array()
        .unwrap()
        .iter()
        .filter(|check| check["outcome"] == "repaired")
        .map(|check| {
            (
                check["orderId"].as_str().unwrap().to_owned(),
                check["eventId"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        repaired.keys().cloned().collect::<BTreeSet<_>>(),
        wrong.keys().cloned().collect::<BTreeSet<_>>()
    );
    let still_wrong = wrong_orders(&app.admin_base, &truth).await;
    assert!(still_wrong.is_empty(), "after reconcile: {still_wrong:?}");
    let (ok, checks, stderr) = reconcile(&dir, &["--all-suspects"]);
    assert!(ok, "{stderr}");
    assert!(
        checks
            .as_array()
            .unwrap()
            .iter()
            .all(|check| check["outcome"] == "matched"),
        "a second run finds nothing to repair: {checks:#}"
    );

    // Synthesized events are marked: in the event list, the order's timeline, and for sinks.
    let stored = app.stored_events().await;
    assert_eq!(stored.len(), stored_before + repaired.len());
    for event_id in repaired.values() {
        let record = stored
            .iter()
            .find(|record| record.event_id.as_str() == event_id)
            .expect("the synthesized event is stored");
        assert_eq!(record.source.as_str(), "reconciled");
        assert!(event_id.starts_with("reconciled:"));
    }
    let (order_id, event_id) = repaired.iter().next().unwrap();
    let (status, order) = app
        .admin_get(&format!("/api/v1/service-orders/{order_id}"))
        .await;
    assert_eq!(status, 200);
    let marked: Vec<&Value> = order["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["source"] == "reconciled")
        .collect();
    assert_eq!(marked.len(), 1, "{order:#}");
    assert_eq!(marked[0]["eventId"], json!(event_id));
    let (status, event) = app.admin_get(&format!("/api/v1/events/{event_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(event["source"], "reconciled", "{event:#}");

    let synthesized: BTreeSet<String> = repaired.values().cloned().collect();
    let everything = hooks.until_delivered(&synthesized).await;
    for received in everything
        .iter()
        .filter(|received| synthesized.contains(&received.event_id))
    {
        assert_eq!(received.source, "reconciled");
        assert_eq!(received.dialect, "onap");
    }
    // The sink that takes sellers' events only has every seller event and none of these.
    let sellers: BTreeSet<String> = stored
        .iter()
        .filter(|record| record.source.as_str() == "seller")
        .map(|record| record.event_id.to_string())
        .collect();
    let got = sellers_only.until_delivered(&sellers).await;
    assert!(
        got.iter().all(
            |received| !synthesized.contains(&received.event_id) && received.source == "seller"
        ),
        "a sink with sources = [\"seller\"] gets no synthesized event"
    );
    simulator.kill().unwrap();
    simulator.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_sellers_event_after_a_repair_makes_no_second_state_change() {
    let base_url = seller_api(std::sync::Arc::default()).await;
    let app = spawn_app_with_file(&format!(
        "[seller_apis.nbi]\nbase_url = \"{base_url}\"\ndialects = [\"onap\"]\n{STALE_AT_ONCE}"
    ))
    .await;
    let dir = app.data_dir.parent().unwrap().to_owned();
    // The seller notified acknowledged and inProgress; its completion was lost.
    let lifecycle = onap_lifecycle("SO-LATE", 1);
    for event in &lifecycle[..lifecycle.len() - 2] {
        assert_eq!(app.post(event).await.status(), 201);
    }
    let (ok, checks, stderr) = reconcile(&dir, &["--order", "SO-LATE"]);
    assert!(ok, "{stderr}");
    assert_eq!(checks[0]["outcome"], "repaired", "{checks:#}");
    assert_eq!(checks[0]["difference"]["orderState"]["to"], "completed");

    // The lost notifications arrive after all, dated before the repair.
    for event in &lifecycle[lifecycle.len() - 2..] {
        assert_eq!(app.post(event).await.status(), 201);
    }
    let (_, order) = app.admin_get("/api/v1/service-orders/SO-LATE").await;
    assert_eq!(order["state"], "completed");
    let timeline = order["timeline"].as_array().unwrap();
    assert_eq!(
        timeline.last().unwrap()["source"],
        "reconciled",
        "the real events fold before the repair, by their dates: {order:#}"
    );
    let mut changes = Vec::new();
    let mut current: Option<&str> = None;
    for entry in timeline {
        if let Some(state) = entry["state"].as_str()
            && current != Some(state)
        {
            changes.push(state);
            current = Some(state);
        }
    }
    assert_eq!(
        changes
            .iter()
            .filter(|state| **state == "completed")
            .count(),
        1,
        "one change to completed: {changes:?}"
    );
    assert!(
        order["anomalies"].as_array().unwrap().is_empty(),
        "{order:#}"
    );

    // The CLI says who wrote each event.
    let data = dir.join("data");
    let repair_id = checks[0]["eventId"].as_str().unwrap();
    let (ok, shown, stderr) = run_cli(&[
        "events",
        "show",
        repair_id,
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(
        shown
            .lines()
            .any(|line| line.contains("source") && line.contains("reconciled")),
        "{shown}"
    );
    let (ok, listed, stderr) = run_cli(&["events", "list", "--data-dir", data.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(
        listed.contains("source") && listed.contains("reconciled"),
        "{listed}"
    );

    // An export keeps the repair a repair: imported, it is still `reconciled`, never a seller's.
    let (ok, exported, stderr) = run_cli(&["export", "--data-dir", data.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let line = exported
        .lines()
        .find(|line| line.contains("\"reconciled:SO-LATE:"))
        .expect("the repair is exported");
    assert_eq!(
        serde_json::from_str::<Value>(line).unwrap()["source"],
        "reconciled"
    );
    let file = dir.join("events.jsonl");
    std::fs::write(&file, &exported).unwrap();
    let target = dir.join("imported.sqlite3");
    let target_url = format!("sqlite://{}", target.display());
    let (ok, stdout, stderr) = run_cli(&[
        "import",
        file.to_str().unwrap(),
        "--database-url",
        &target_url,
    ]);
    assert!(ok, "{stdout}{stderr}");
    let store =
        order_listener::store::Store::open_read_only(&order_listener::store::Storage::Sqlite {
            path: target,
        })
        .await
        .unwrap();
    let repair = checks[0]["eventId"].as_str().unwrap().parse().unwrap();
    let (record, _) = store.event(&repair).await.unwrap().unwrap();
    assert_eq!(record.source.as_str(), "reconciled");
    let seller_event = lifecycle[0]["eventId"].as_str().unwrap().parse().unwrap();
    let (record, _) = store.event(&seller_event).await.unwrap().unwrap();
    assert_eq!(record.source.as_str(), "seller");
}

/// A seller API whose `serviceOrder/{id}` either answers the order completed or, while
/// `hang` is set, never answers.
async fn seller_api(hang: std::sync::Arc<std::sync::atomic::AtomicBool>) -> String {
    let seller = axum::Router::new().route(
        "/nbi/api/v4/serviceOrder/{id}",
        axum::routing::get(
            move |axum::extract::Path(id): axum::extract::Path<String>| async move {
                if hang.load(std::sync::atomic::Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                axum::Json(json!({
                    "id": id, "state": "completed",
                    "orderItem": [{"id": "1", "action": "add", "state": "completed"}]
                }))
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, seller).await });
    format!("http://{address}/nbi/api/v4")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_repairs_suspects_on_its_own_and_a_hanging_seller_api_holds_up_nothing() {
    let hang = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let base_url = seller_api(hang.clone()).await;
    let app = spawn_app_with_file(&format!(
        "[seller_apis.nbi]\nbase_url = \"{base_url}\"\ndialects = [\"onap\"]\ntimeout_seconds = 1\n\
         {}",
        STALE_AT_ONCE.replace("sweep_every = \"never\"", "sweep_every = \"100ms\"")
    ))
    .await;
    let lifecycle = onap_lifecycle("SO-SWEPT", 1);
    assert_eq!(app.post(&lifecycle[0]).await.status(), 201);

    // The seller API hangs: checks time out, reconciliation backs off and says so, and the
    // Listener API goes on answering.
    eventually(
        "reconciliation to back off from the hanging seller API",
        async || {
            let text = app.metrics_text().await;
            let failed = text.contains(
                r#"order_listener_reconcile_checks_total{seller="nbi",outcome="failed"}"#,
            );
            let backing_off = text.lines().any(|line| {
                line.starts_with(r#"order_listener_reconcile_backoff_seconds{seller="nbi"}"#)
                    && !line.ends_with(" 0")
            });
            (failed && backing_off).then_some(())
        },
    )
    .await;
    for n in 0..50 {
        let event = onap_event(
            &format!("other-{n}"),
            "ServiceOrderCreationNotification",
            n,
            &format!("SO-OTHER-{n}"),
            "completed",
            vec![onap_item("1", "add", "completed")],
        );
        assert_eq!(app.post(&event).await.status(), 201);
    }
    let (_, order) = app.admin_get("/api/v1/service-orders/SO-SWEPT").await;
    assert_eq!(order["state"], "acknowledged", "nothing repaired yet");

    // The seller API answers again: the sweep repairs the order without anyone asking.
    hang.store(false, std::sync::atomic::Ordering::SeqCst);
    let order = eventually("the sweep to repair the order", async || {
        let (_, order) = app.admin_get("/api/v1/service-orders/SO-SWEPT").await;
        (order["state"] == "completed").then_some(order)
    })
    .await;
    let last = order["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["source"], "reconciled", "{order:#}");
    assert_eq!(order["items"][0]["state"], "completed");
    let text = app.metrics_text().await;
    assert!(
        text.contains(
            r#"order_listener_reconcile_checks_total{seller="nbi",outcome="repaired"} 1"#
        ),
        "{text}"
    );
}

/// Starts `serve` on `listen` (a fixed address, so that a restart takes the seller's
/// notifications again) with the admin token set.
fn serve_at(listen: &str, config: &std::path::Path, data: &std::path::Path) -> RunningBinary {
    let mut command = std::process::Command::new(binary());
    command
        .args(["serve", "--plain-http", "--allow-anonymous"])
        .args(["--listen", listen, "--admin-listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .env("ORDER_LISTENER_ADMIN_TOKEN", ADMIN_TOKEN);
    spawn_serve(&mut command)
}

/// The newest stored event's sequence: how many events the listener has taken.
async fn newest_sequence(admin: &str) -> i64 {
    let (_, listed) = admin_json(admin, "/api/v1/events?limit=1").await;
    listed["items"][0]["sequence"].as_i64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_killed_for_a_window_of_the_run_is_repaired_to_the_sellers_truth() {
    init();
    let (mut simulator, hub) = start_simulator(&[
        "--wait-subscribers",
        "1",
        "--orders",
        "300",
        "--drops",
        "0.1",
        "--concurrency",
        "1",
        "--seed",
        "1414",
        "--linger",
        "10m",
        "--json",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "[seller_apis.nbi]\nbase_url = \"{hub}\"\ndialects = [\"onap\"]\nlist_orders = true\n\
             {}",
            STALE_AT_ONCE.replace(
                "sweep_every = \"never\"",
                "sweep_every = \"never\"\nlist_every = \"never\""
            )
        ),
    )
    .unwrap();
    let listen = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        free.local_addr().unwrap().to_string()
    };
    let mut running = serve_at(&listen, &config, &data);
    subscribe(&hub, None, &running.listener_url);

    // Killed a quarter of the way through the run: what the seller sends meanwhile is lost
    // (ONAP never retries).
    let admin = running.admin_url();
    eventually("a third of the run to be stored", async || {
        (newest_sequence(&admin).await >= 700).then_some(())
    })
    .await;
    running.child.kill().unwrap();
    running.child.wait().unwrap();
    // Down while the seller creates 40 more orders: some of them, start to finish.
    let listed = async || -> usize {
        let orders: Value = reqwest::get(format!("{hub}/serviceOrder?limit=1000"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        orders.as_array().map_or(0, Vec::len)
    };
    let at_the_kill = listed().await;
    eventually("the seller to create 40 orders more", async || {
        (listed().await >= at_the_kill + 40).then_some(())
    })
    .await;
    let running = serve_at(&listen, &config, &data);
    let admin = running.admin_url();
    let summary = summary(&mut simulator);
    let errors = summary["statuses"]["error"].as_u64().unwrap_or(0);
    assert!(
        errors > 0,
        "some notifications met the dead listener: {summary:#}"
    );
    let truth = seller_orders(&hub, &summary).await;

    // Every wrong order the listener knows is suspect; the ones it never heard of are listed.
    let wrong = wrong_orders(&admin, &truth).await;
    assert!(!wrong.is_empty());
    let suspect = suspects(&admin).await;
    let unknown: BTreeSet<String> = wrong
        .iter()
        .filter(|(_, (projected, _))| projected.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    for (id, (projected, seller)) in &wrong {
        assert!(
            projected.is_none() || suspect.contains(id),
            "order {id} is wrong ({projected:?}, the seller has {seller:?}) but not suspect"
        );
    }
    let (ok, checks, stderr) = reconcile(dir.path(), &["--all-suspects", "--list"]);
    assert!(ok, "{stderr}\n{checks:#}");
    let created: BTreeSet<String> = checks
        .as_array()
        .unwrap()
        .iter()
        .filter(|check| check["outcome"] == "repaired" && check["reasons"] == json!([]))
        .map(|check| check["orderId"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !unknown.is_empty(),
        "orders wholly inside the window: {wrong:?}"
    );
    assert_eq!(
        created, unknown,
        "the listing creates exactly the orders never heard of"
    );
    let still_wrong = wrong_orders(&admin, &truth).await;
    assert!(still_wrong.is_empty(), "after reconcile: {still_wrong:?}");
    println!(
        "killed for a window: {errors} notifications lost, {} orders wrong, {} never heard of; all repaired",
        wrong.len(),
        unknown.len()
    );
    simulator.kill().unwrap();
    simulator.wait().unwrap();
}
