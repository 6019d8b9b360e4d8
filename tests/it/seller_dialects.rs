//! The seller side in TMF641 v4 and v5 and MEF Legato v5 and v6: `hub` against the simulator's
//! hub in each dialect, and `simulate --dialect` against the listener's endpoints for that
//! dialect, with duplicates and reordering, ending with the ground-truth check.
//!
//! What these tests rely on from the listener: each dialect's endpoints mounted by default on
//! the public port (`/tmf-api/serviceOrdering/v4|v5/listener/{eventName}`,
//! `/mefApi/legato/serviceOrderingNotification/v5|v6/listener/{eventName}`), answering 201 (TMF641
//! v4) or 204 (v5, MEF) to every event and to its resends; one stored event per eventId; the
//! projection of `GET /api/v1/service-orders/{id}` built from what the events carry (TMF641: the
//! order's and its items' states; MEF v6: `state` of order and item events; MEF v5: no state,
//! one timeline entry per event).

use std::collections::BTreeSet;
use std::process::Child;

use serde_json::{Value, json};

use crate::helpers::*;
use crate::seller::{exit_summary, served_order, start_simulator, subscribe, summary};

/// The dialects besides ONAP, each with its hub's base path.
const DIALECTS: [(&str, &str); 4] = [
    ("tmf641-v4", "/tmf-api/serviceOrdering/v4"),
    ("tmf641-v5", "/tmf-api/serviceOrdering/v5"),
    (
        "mef-legato-v5",
        "/mefApi/legato/serviceOrderingManagement/v5",
    ),
    (
        "mef-legato-v6",
        "/mefApi/legato/serviceOrderingManagement/v6",
    ),
];

/// The callback a buyer registers for a listener at `public_base`, in `dialect`.
fn callback(dialect: &str, public_base: &str) -> String {
    match dialect {
        "tmf641-v4" => format!("{public_base}/tmf-api/serviceOrdering/v4"),
        "tmf641-v5" => format!("{public_base}/tmf-api/serviceOrdering/v5"),
        _ => public_base.to_owned(),
    }
}

fn stop(mut simulator: Child) {
    simulator.kill().unwrap();
    simulator.wait().unwrap();
}

#[tokio::test]
async fn the_hub_client_subscribes_lists_shows_and_deletes_in_every_dialect() {
    for (dialect, base) in DIALECTS {
        let (simulator, hub) =
            start_simulator(&["--dialect", dialect, "--wait-subscribers", "1000"]);
        assert!(hub.ends_with(base), "{dialect}: {hub}");
        let server = hub.strip_suffix(base).unwrap();
        let callback = callback(dialect, "https://buyer.example:8443");

        // The client adds the dialect's base path to a bare server URL.
        let (ok, stdout, stderr) = run_cli(&[
            "hub",
            "subscribe",
            "--dialect",
            dialect,
            "--server",
            server,
            "--callback",
            &callback,
            "--json",
        ]);
        assert!(ok, "{dialect}: {stderr}");
        assert!(!stderr.contains("warning"), "{dialect}: {stderr}");
        let created: Value = serde_json::from_str(&stdout).unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(created["callback"], callback.as_str());
        // The default query names every event type of the dialect, in its spelling.
        let query = created["query"].as_str().unwrap();
        if dialect.starts_with("mef") {
            assert!(
                query.contains("serviceOrderItemStateChangeEvent"),
                "{query}"
            );
            assert!(
                stderr.contains("note: a MEF seller appends the base path")
                    && stderr.contains("root URL")
                    && stderr.contains(&format!(
                        "https://buyer.example:8443/mefApi/legato/serviceOrderingNotification/{}/listener/serviceOrderStateChangeEvent",
                        &dialect[11..]
                    )),
                "{stderr}"
            );
        } else {
            assert!(
                query.contains("ServiceOrderJeopardyEvent")
                    && query.contains("CancelServiceOrderStateChangeEvent"),
                "{query}"
            );
            assert!(
                stderr.contains(&format!("{callback}/listener/serviceOrderStateChangeEvent")),
                "{stderr}"
            );
        }

        let (ok, stdout, stderr) = run_cli(&[
            "hub",
            "list",
            "--dialect",
            dialect,
            "--server",
            &hub,
            "--json",
        ]);
        assert!(ok, "{dialect}: {stderr}");
        let listed: Vec<Value> = serde_json::from_str(&stdout).unwrap();
        assert_eq!(listed, vec![created.clone()], "{dialect}");

        let (ok, stdout, stderr) =
            run_cli(&["hub", "show", &id, "--dialect", dialect, "--server", &hub]);
        assert!(ok, "{dialect}: {stderr}");
        assert!(
            stdout.contains(&id) && stdout.contains(&callback),
            "{stdout}"
        );

        let (ok, stdout, stderr) =
            run_cli(&["hub", "delete", &id, "--dialect", dialect, "--server", &hub]);
        assert!(ok, "{dialect}: {stderr}");
        assert!(stdout.contains(&id));
        let (ok, _, stderr) =
            run_cli(&["hub", "show", &id, "--dialect", dialect, "--server", &hub]);
        assert!(!ok);
        assert!(stderr.contains("no subscription"), "{dialect}: {stderr}");

        // Another dialect's hub path is not this seller's.
        let (ok, _, stderr) = run_cli(&[
            "hub",
            "subscribe",
            "--server",
            server,
            "--callback",
            "https://buyer.example/listener",
        ]);
        assert!(
            !ok,
            "an ONAP subscription at the {dialect} seller: {stderr}"
        );
        stop(simulator);
    }
}

#[tokio::test]
async fn each_dialects_hub_takes_only_its_own_subscription_body() {
    init();
    let (simulator, hub) =
        start_simulator(&["--dialect", "tmf641-v5", "--wait-subscribers", "1000"]);
    let client = reqwest::Client::new();
    // TMF641 v5's Hub_FVO needs its @type.
    let response = client
        .post(format!("{hub}/hub"))
        .json(&json!({"callback": "https://buyer.example/tmf-api/serviceOrdering/v5"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["status"], "400");
    assert!(
        error["message"].as_str().unwrap().contains("@type"),
        "{error}"
    );
    let response = client
        .post(format!("{hub}/hub"))
        .json(&json!({"@type": "Hub", "callback": "https://buyer.example/tmf-api/serviceOrdering/v5"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["@type"], "Hub");
    assert_eq!(created["query"], "");
    stop(simulator);

    let (simulator, hub) =
        start_simulator(&["--dialect", "mef-legato-v6", "--wait-subscribers", "1000"]);
    let response = client
        .post(format!("{hub}/hub"))
        .json(&json!({"query": "eventType=serviceOrderStateChangeEvent"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], "invalidBody");
    stop(simulator);
}

/// Starts the listener and `simulate --dialect DIALECT` against it through a subscription,
/// with duplicates, reordering and malformed bodies, and returns the simulator's summary once it has verified
/// every order (the simulator keeps serving when `linger` is set: the caller stops it).
async fn simulate(dialect: &str, orders: usize, linger: bool) -> (TestApp, Value, Child, String) {
    let app = spawn_app().await;
    let orders = orders.to_string();
    let mut args = vec![
        "--dialect",
        dialect,
        "--wait-subscribers",
        "1",
        "--orders",
        &orders,
        "--duplicates",
        "0.25",
        "--reorder",
        "0.3",
        "--malformed",
        "0.05",
        "--concurrency",
        "8",
        "--seed",
        "20261130",
        "--verify-admin",
        &app.admin_base,
        "--json",
    ];
    if linger {
        args.extend(["--linger", "10m"]);
    }
    let (mut simulator, hub) = start_simulator(&args);
    let stderr = subscribe(&hub, Some(dialect), &callback(dialect, &app.public_base));
    assert!(!stderr.contains("warning"), "{stderr}");

    // The summary is one pretty-printed JSON object: it ends with a line of its own "}".
    let summary = if linger {
        summary(&mut simulator)
    } else {
        exit_summary(&mut simulator)
    };
    (app, summary, simulator, hub)
}

/// What every run shows: each notification acknowledged with the dialect's status and stored
/// once, every malformed body refused with a 4xx, duplicates and reordering sent, and every
/// order as the ground truth says.
async fn check_run(app: &TestApp, summary: &Value, dialect: &str, orders: usize) {
    assert_eq!(summary["dialect"], dialect);
    assert_eq!(
        summary["verification"]["mismatches"],
        json!([]),
        "{summary:#}"
    );
    assert_eq!(summary["verification"]["checked"], orders);
    assert_eq!(summary["wrongSuccessStatus"], 0);
    let success = if dialect == "tmf641-v4" { "201" } else { "204" };
    let statuses = summary["statuses"].as_object().unwrap();
    assert!(statuses.contains_key(success), "{summary:#}");
    for status in statuses.keys().filter(|status| *status != success) {
        assert!(status.starts_with('4'), "{status}: {summary:#}");
    }
    let malformed = summary["malformedSent"].as_u64().unwrap();
    assert!(malformed > 0);
    assert_eq!(summary["malformedRefused"], malformed, "{summary:#}");
    assert!(summary["duplicatesSent"].as_u64().unwrap() > 0);
    assert!(summary["reordered"].as_u64().unwrap() > 0);
    let stored = app.stored_events().await;
    assert_eq!(
        stored.len() as u64,
        summary["notifications"].as_u64().unwrap(),
        "each notification is stored once, however often it was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tmf641_seller_in_either_version_gives_the_ground_truth_through_every_listener_path() {
    for dialect in ["tmf641-v4", "tmf641-v5"] {
        let (app, summary, _, _) = simulate(dialect, 200, false).await;
        check_run(&app, &summary, dialect, 200).await;
        // TMF641's events carry the whole order: the projection is the ground truth's.
        for order in summary["truth"].as_array().unwrap() {
            let id = order["id"].as_str().unwrap();
            let (status, projection) = app.admin_get(&format!("/api/v1/service-orders/{id}")).await;
            assert_eq!(status, 200, "order {id}");
            assert_eq!(projection["state"], order["state"], "order {id}");
            let items: serde_json::Map<String, Value> = projection["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| {
                    (
                        item["id"].as_str().unwrap().to_owned(),
                        item["state"].clone(),
                    )
                })
                .collect();
            assert_eq!(Value::Object(items), order["items"], "order {id}");
            assert_eq!(projection["anomalies"], json!([]), "order {id}");
        }
        // All ten listener paths were used, and each took its events.
        let types: BTreeSet<String> = app
            .stored_events()
            .await
            .iter()
            .map(|event| event.event_type.to_string())
            .collect();
        assert_eq!(types.len(), 10, "{dialect}: {types:?}");
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mef_v5_seller_gives_every_order_with_each_of_its_references() {
    let (app, summary, _, _) = simulate("mef-legato-v5", 120, false).await;
    check_run(&app, &summary, "mef-legato-v5", 120).await;
    for order in summary["truth"].as_array().unwrap() {
        let id = order["id"].as_str().unwrap();
        let (status, projection) = app.admin_get(&format!("/api/v1/service-orders/{id}")).await;
        assert_eq!(status, 200, "order {id}");
        assert_eq!(
            projection["timeline"].as_array().unwrap().len() as u64,
            order["acknowledgedEvents"].as_u64().unwrap(),
            "order {id}"
        );
        assert_eq!(order["state"], Value::Null, "v5 events carry no state");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mef_v6_seller_gives_the_states_its_references_carry_and_serves_the_orders() {
    let (app, summary, simulator, hub) = simulate("mef-legato-v6", 120, true).await;
    check_run(&app, &summary, "mef-legato-v6", 120).await;
    let truth = summary["truth"].as_array().unwrap();
    for order in truth {
        let id = order["id"].as_str().unwrap();
        let (_, projection) = app.admin_get(&format!("/api/v1/service-orders/{id}")).await;
        assert!(order["state"].is_string(), "every v6 order's state changes");
        assert_eq!(projection["state"], order["state"], "order {id}");
        assert_eq!(projection["anomalies"], json!([]), "order {id}");
    }
    // The seller's Service Ordering API serves each order in its final state, where the
    // events' href points.
    let stored = app.stored_events().await;
    let (_, event) = app
        .admin_get(&format!("/api/v1/events/{}", stored[0].event_id.as_str()))
        .await;
    let href = event["body"]["event"]["href"].as_str().unwrap().to_owned();
    assert!(href.starts_with(&format!("{hub}/serviceOrder/")), "{href}");
    let served: Value = reqwest::get(&href).await.unwrap().json().await.unwrap();
    let order = truth
        .iter()
        .find(|order| order["id"] == served["id"])
        .expect("the href names a simulated order");
    assert_eq!(served["state"], order["sellerState"]);
    assert!(served["orderDate"].is_string());
    for item in served["serviceOrderItem"].as_array().unwrap() {
        assert!(item["state"].is_string() && item["action"].is_string());
        if let Some(notified) = order["items"].get(item["id"].as_str().unwrap()) {
            assert_eq!(
                &item["state"], notified,
                "the last item event is the item's state"
            );
        }
    }
    let missing = reqwest::get(format!("{hub}/serviceOrder/no-such-order"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    stop(simulator);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mef_v6_run_with_the_sellers_api_ends_with_its_items_and_dates_in_every_projection() {
    // The seller first: its Service Ordering API is where the listener fetches each order.
    let (mut simulator, hub) = start_simulator(&[
        "--dialect",
        "mef-legato-v6",
        "--wait-subscribers",
        "1",
        "--orders",
        "60",
        "--duplicates",
        "0.25",
        "--reorder",
        "0.3",
        "--seed",
        "20261130",
        "--linger",
        "10m",
        "--json",
    ]);
    let app = spawn_app_with_file(&format!(
        "[seller_apis.simulator]\nbase_url = \"{hub}\"\n\
         [seller_fetch]\nretry_schedule = [\"100ms\"]\nretry_horizon = \"1h\"\n"
    ))
    .await;
    subscribe(
        &hub,
        Some("mef-legato-v6"),
        &callback("mef-legato-v6", &app.public_base),
    );
    let summary = summary(&mut simulator);
    let truth = summary["truth"].as_array().unwrap().clone();
    assert_eq!(truth.len(), 60);

    // Every order ends with what the seller's API says of its items and dates, and the
    // states its events said.
    for order in &truth {
        let id = order["id"].as_str().unwrap();
        let served = served_order(&hub, id).await;
        let served_items: BTreeSet<String> = served["serviceOrderItem"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_owned())
            .collect();
        let projection = eventually(
            &format!("order {id} to hold the fetched order"),
            async || {
                let (status, projection) =
                    app.admin_get(&format!("/api/v1/service-orders/{id}")).await;
                let items: BTreeSet<String> = projection["items"]
                    .as_array()?
                    .iter()
                    .filter_map(|item| item["id"].as_str().map(str::to_owned))
                    .collect();
                (status == 200
                    && projection["orderDate"] == served["orderDate"]
                    && items == served_items)
                    .then_some(projection)
            },
        )
        .await;
        assert_eq!(
            projection["state"], order["state"],
            "order {id}: its events' state"
        );
        assert_eq!(projection["anomalies"], json!([]), "order {id}");
        for item in projection["items"].as_array().unwrap() {
            assert!(item["action"].is_string(), "order {id}: {item}");
        }
    }
    let (_, sinks) = app.admin_get("/api/v1/sinks").await;
    assert!(sinks.to_string().contains("seller-api"), "{sinks}");
    stop(simulator);
}
