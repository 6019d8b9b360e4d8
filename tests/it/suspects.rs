//! Suspect orders and the gap report (issue 14): event sequences in which a notification was
//! lost, each reason found by the admin API, an order's JSON, the CLI and the metrics; an order
//! that stops being suspect when its missing event arrives; the store's suspect lists, counts
//! and gap report on every backend; the gap report over HTTP, by sender and bounded.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use order_listener::domain::envelope::{ParseOptions, parse_notification};
use order_listener::domain::suspect::{Reason, Reasons, StaleAfter};
use order_listener::metrics::Metrics;
use order_listener::store::{
    NewEvent, ReceivedFilter, Sender, Store, SuspectFilter, WriterOptions,
};
use serde_json::{Value, json};

use crate::dialects::lower_camel;
use crate::helpers::*;
use crate::store_contract::backends;

const TMF_V4: &str = "/tmf-api/serviceOrdering/v4/listener";
const MEF_V6: &str = "/mefApi/legato/serviceOrderingNotification/v6/listener";

/// `ago` before now, as sellers write dates.
fn date(ago: TimeDelta) -> String {
    (Utc::now() - ago)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn minutes(count: i64) -> TimeDelta {
    TimeDelta::minutes(count)
}

/// An ONAP notification dated `ago` before now, its items given as `(id, state)`.
fn onap(
    event_id: &str,
    kind: &str,
    ago: TimeDelta,
    order_id: &str,
    state: &str,
    items: &[(&str, &str)],
) -> Value {
    let items = items
        .iter()
        .map(|(id, state)| onap_item(id, "add", state))
        .collect();
    let mut event = onap_event(event_id, kind, 0, order_id, state, items);
    event["eventDate"] = json!(date(ago));
    event
}

const CREATION: &str = "ServiceOrderCreationNotification";
const ITEM: &str = "ServiceOrderItemStateChangeNotification";
const ORDER: &str = "ServiceOrderStateChangeNotification";

async fn post_to(app: &TestApp, path: &str, body: &Value, status: u16) {
    let response = app
        .post_raw_to(
            &format!("{}{path}", app.public_base),
            body.to_string(),
            Some("application/json;charset=utf-8"),
        )
        .await;
    assert_eq!(response.status().as_u16(), status, "{path}: {body}");
}

async fn post_onap(app: &TestApp, body: &Value) {
    let response = app.post(body).await;
    assert_eq!(response.status().as_u16(), 201, "{body}");
}

/// A TMF641 v4 event of `order_id` in `state`, its two items in `items`' states.
fn tmf(
    event_id: &str,
    kind: &str,
    ago: TimeDelta,
    order_id: &str,
    state: &str,
    items: [&str; 2],
) -> Value {
    json!({
        "eventId": event_id,
        "eventTime": date(ago),
        "eventType": kind,
        "event": {"serviceOrder": {
            "id": order_id,
            "state": state,
            "serviceOrderItem": [
                {"id": "1", "action": "add", "state": items[0]},
                {"id": "2", "action": "add", "state": items[1]}
            ]
        }}
    })
}

/// A MEF LSO Legato v6 event: only a reference to the order, with a state when it has one.
fn mef(event_id: &str, kind: &str, ago: TimeDelta, payload: Value) -> Value {
    json!({"eventId": event_id, "eventTime": date(ago), "eventType": kind, "event": payload})
}

/// Posts one order of each kind of loss, and one that lost nothing.
async fn post_every_kind_of_loss(app: &TestApp) {
    // Acknowledged two hours ago, nothing since: stale (acknowledged's threshold is 1h).
    post_onap(
        app,
        &onap(
            "stale-1",
            CREATION,
            minutes(120),
            "SO-stale",
            "acknowledged",
            &[("1", "acknowledged")],
        ),
    )
    .await;
    // Every notification of an ONAP order: not suspect.
    for event in onap_lifecycle("SO-done", 2) {
        post_onap(app, &event).await;
    }
    // ONAP notifies each item's inProgress: an item that goes from acknowledged to completed
    // lost one. (The order may: ONAP never notifies an order's inProgress.)
    post_onap(
        app,
        &onap(
            "skip-1",
            CREATION,
            minutes(3),
            "SO-skip",
            "acknowledged",
            &[("1", "acknowledged")],
        ),
    )
    .await;
    post_onap(
        app,
        &onap(
            "skip-2",
            ORDER,
            minutes(1),
            "SO-skip",
            "completed",
            &[("1", "completed")],
        ),
    )
    .await;
    // A MEF order completed while its item 2 is still in progress: item 2's completion was lost.
    let href = "https://seller.example/mefApi/legato/serviceOrdering/v6/serviceOrder/SO-open";
    let reference = |state: Option<&str>, item: Option<&str>| {
        let mut payload = json!({"id": "SO-open", "href": href});
        if let Some(state) = state {
            payload["state"] = json!(state);
        }
        if let Some(item) = item {
            payload["orderItemId"] = json!(item);
        }
        payload
    };
    for (index, (kind, ago, payload)) in [
        ("serviceOrderCreateEvent", 6, reference(None, None)),
        (
            "serviceOrderItemStateChangeEvent",
            5,
            reference(Some("inProgress"), Some("1")),
        ),
        (
            "serviceOrderItemStateChangeEvent",
            5,
            reference(Some("inProgress"), Some("2")),
        ),
        (
            "serviceOrderStateChangeEvent",
            4,
            reference(Some("inProgress"), None),
        ),
        (
            "serviceOrderItemStateChangeEvent",
            3,
            reference(Some("completed"), Some("1")),
        ),
        (
            "serviceOrderStateChangeEvent",
            2,
            reference(Some("completed"), None),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let body = mef(&format!("open-{index}"), kind, minutes(ago), payload);
        post_to(app, &format!("{MEF_V6}/{kind}"), &body, 204).await;
    }
    // An item change of an order whose creation never arrived.
    post_onap(
        app,
        &onap(
            "orphan-1",
            ITEM,
            minutes(1),
            "SO-orphan",
            "inProgress",
            &[("1", "inProgress")],
        ),
    )
    .await;
    // A TMF641 event that completes the order with item 2 still in progress.
    for (event_id, kind, ago, state, items) in [
        (
            "step-1",
            "ServiceOrderCreateEvent",
            3,
            "acknowledged",
            ["acknowledged", "acknowledged"],
        ),
        (
            "step-2",
            "ServiceOrderStateChangeEvent",
            2,
            "inProgress",
            ["inProgress", "inProgress"],
        ),
        (
            "step-3",
            "ServiceOrderStateChangeEvent",
            1,
            "completed",
            ["completed", "inProgress"],
        ),
    ] {
        let body = tmf(event_id, kind, minutes(ago), "SO-step", state, items);
        let path = format!("{TMF_V4}/{}", lower_camel(kind));
        post_to(app, &path, &body, 201).await;
    }
}

/// What each of [`post_every_kind_of_loss`]'s orders is suspect for.
fn expected_reasons() -> BTreeMap<String, Vec<String>> {
    [
        ("SO-open", vec!["itemNotFinal"]),
        ("SO-orphan", vec!["creationMissing"]),
        ("SO-skip", vec!["missedTransition"]),
        ("SO-stale", vec!["stale"]),
        ("SO-step", vec!["itemNotFinal", "outOfStep"]),
    ]
    .into_iter()
    .map(|(id, reasons)| {
        (
            id.to_owned(),
            reasons.into_iter().map(str::to_owned).collect(),
        )
    })
    .collect()
}

/// `GET /api/v1/suspects` with `query`: each order's reasons, and the next cursor.
async fn suspects(app: &TestApp, query: &str) -> (BTreeMap<String, Vec<String>>, Value) {
    let (status, body) = app.admin_get(&format!("/api/v1/suspects{query}")).await;
    assert_eq!(status, 200, "{body}");
    let mut listed = BTreeMap::new();
    let mut previous = String::new();
    for item in body["items"].as_array().unwrap() {
        let id = item["id"].as_str().unwrap().to_owned();
        assert!(id > previous, "in order id order: {body}");
        previous = id.clone();
        let reasons = item["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|reason| reason.as_str().unwrap().to_owned())
            .collect();
        listed.insert(id, reasons);
    }
    (listed, body["nextCursor"].clone())
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

async fn scrape(app: &TestApp) -> String {
    let response = app.get(format!("{}/metrics", app.admin_base), None).await;
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.unwrap()
}

#[tokio::test]
async fn every_kind_of_loss_is_found_by_the_api_the_cli_and_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(TestConfig::new(dir.path()).build()).await;
    post_every_kind_of_loss(&app).await;

    let (listed, next) = suspects(&app, "").await;
    assert_eq!(listed, expected_reasons());
    assert_eq!(next, Value::Null);

    let (by_reason, _) = suspects(&app, "?reason=itemNotFinal").await;
    assert_eq!(by_reason.keys().collect::<Vec<_>>(), ["SO-open", "SO-step"]);
    assert_eq!(
        by_reason["SO-step"],
        ["itemNotFinal", "outOfStep"],
        "every reason of a listed order"
    );
    let (stale, _) = suspects(&app, "?reason=stale").await;
    assert_eq!(stale.keys().collect::<Vec<_>>(), ["SO-stale"]);

    // Pages of two join into the whole list.
    let mut paged = BTreeMap::new();
    let mut query = "?limit=2".to_owned();
    for page in 1.. {
        let (listed, next) = suspects(&app, &query).await;
        assert!(listed.len() <= 2);
        paged.extend(listed);
        match next.as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => {
                assert_eq!(page, 3, "five suspects in pages of two");
                break;
            }
        }
    }
    assert_eq!(paged, expected_reasons());

    let response = app
        .get(
            format!("{}/api/v1/suspects?reason=bored", app.admin_base),
            Some(ADMIN_TOKEN),
        )
        .await;
    let error = assert_error(response, 400, 28).await;
    assert_eq!(error["referenceError"], "query:reason");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("missedTransition")
    );

    // An order's JSON says why, with the event that shows it.
    let (status, order) = app.admin_get("/api/v1/service-orders/SO-skip").await;
    assert_eq!(status, 200);
    assert_eq!(
        order["suspects"],
        json!([{
            "reason": "missedTransition",
            "eventId": "skip-2",
            "eventDate": order["timeline"][1]["eventDate"],
            "subject": "item",
            "itemId": "1",
            "from": "acknowledged",
            "to": "completed"
        }])
    );
    assert_eq!(order["timeline"][1]["dialect"], "onap");
    let (_, stale) = app.admin_get("/api/v1/service-orders/SO-stale").await;
    assert_eq!(stale["suspects"][0]["reason"], "stale");
    assert_eq!(stale["suspects"][0]["staleAfterSeconds"], 3600);
    let (_, done) = app.admin_get("/api/v1/service-orders/SO-done").await;
    assert_eq!(done["suspects"], json!([]));

    // The metrics count each reason, an order once per reason.
    let text = scrape(&app).await;
    for (reason, count) in [
        ("stale", 1.0),
        ("missedTransition", 1.0),
        ("itemNotFinal", 2.0),
        ("creationMissing", 1.0),
        ("outOfStep", 1.0),
    ] {
        assert_eq!(
            sample(
                &text,
                &format!("order_listener_orders_suspect{{reason=\"{reason}\"}}")
            ),
            Some(count),
            "{reason}"
        );
    }

    // The CLI, reading the same store while the app runs.
    let data_dir = app.data_dir.to_str().unwrap().to_owned();
    let (ok, stdout, stderr) = run_cli(&["orders", "suspects", "--json", "--data-dir", &data_dir]);
    assert!(ok, "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    let cli: BTreeMap<String, Vec<String>> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["id"].as_str().unwrap().to_owned(),
                serde_json::from_value(item["reasons"].clone()).unwrap(),
            )
        })
        .collect();
    assert_eq!(cli, expected_reasons());
    let (ok, stdout, _) = run_cli(&[
        "orders",
        "suspects",
        "--reason",
        "outOfStep",
        "--data-dir",
        &data_dir,
    ]);
    assert!(ok);
    assert!(
        stdout.contains("SO-step") && stdout.contains("itemNotFinal outOfStep"),
        "{stdout}"
    );
    assert!(!stdout.contains("SO-stale"), "{stdout}");
    assert!(stdout.contains("1 suspect order"), "{stdout}");
    let (ok, stdout, _) = run_cli(&["orders", "show", "SO-orphan", "--data-dir", &data_dir]);
    assert!(ok);
    assert!(
        stdout.contains("creationMissing") && stdout.contains("orphan-1"),
        "{stdout}"
    );
    let (ok, stdout, _) = run_cli(&[
        "orders",
        "show",
        "SO-done",
        "--json",
        "--data-dir",
        &data_dir,
    ]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["suspects"],
        json!([])
    );
    let (ok, _, stderr) = run_cli(&[
        "orders",
        "suspects",
        "--reason",
        "bored",
        "--data-dir",
        &data_dir,
    ]);
    assert!(!ok && stderr.contains("stale"), "{stderr}");
}

#[tokio::test]
async fn an_order_stops_being_suspect_when_its_missing_event_arrives() {
    let app = spawn_app().await;
    let reasons_of = async |id: &str| -> Vec<String> {
        let (status, order) = app.admin_get(&format!("/api/v1/service-orders/{id}")).await;
        assert_eq!(status, 200, "{order}");
        order["suspects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|finding| finding["reason"].as_str().unwrap().to_owned())
            .collect()
    };

    // The creation arrives after an item change, dated before it.
    post_onap(
        &app,
        &onap(
            "late-2",
            ITEM,
            minutes(2),
            "SO-late",
            "inProgress",
            &[("1", "inProgress")],
        ),
    )
    .await;
    assert_eq!(reasons_of("SO-late").await, ["creationMissing"]);
    post_onap(
        &app,
        &onap(
            "late-1",
            CREATION,
            minutes(3),
            "SO-late",
            "acknowledged",
            &[("1", "acknowledged")],
        ),
    )
    .await;
    assert_eq!(reasons_of("SO-late").await, Vec::<String>::new());

    // The item's inProgress arrives last, between the two events that skipped it: the store
    // looks up its neighbours and the skipped transition is gone.
    post_onap(
        &app,
        &onap(
            "gap-1",
            CREATION,
            minutes(3),
            "SO-gap",
            "acknowledged",
            &[("1", "acknowledged")],
        ),
    )
    .await;
    post_onap(
        &app,
        &onap(
            "gap-3",
            ORDER,
            minutes(1),
            "SO-gap",
            "completed",
            &[("1", "completed")],
        ),
    )
    .await;
    assert_eq!(reasons_of("SO-gap").await, ["missedTransition"]);
    post_onap(
        &app,
        &onap(
            "gap-2",
            ITEM,
            minutes(2),
            "SO-gap",
            "inProgress",
            &[("1", "inProgress")],
        ),
    )
    .await;
    assert_eq!(reasons_of("SO-gap").await, Vec::<String>::new());

    // A stale order hears from its seller again.
    post_onap(
        &app,
        &onap(
            "quiet-1",
            CREATION,
            minutes(90),
            "SO-quiet",
            "acknowledged",
            &[("1", "acknowledged")],
        ),
    )
    .await;
    assert_eq!(reasons_of("SO-quiet").await, ["stale"]);
    post_onap(
        &app,
        &onap(
            "quiet-2",
            ITEM,
            minutes(0),
            "SO-quiet",
            "inProgress",
            &[("1", "inProgress")],
        ),
    )
    .await;
    assert_eq!(reasons_of("SO-quiet").await, Vec::<String>::new());

    let (listed, _) = suspects(&app, "").await;
    assert_eq!(listed, BTreeMap::new());
    let text = scrape(&app).await;
    for reason in Reason::ALL {
        assert_eq!(
            sample(
                &text,
                &format!("order_listener_orders_suspect{{reason=\"{reason}\"}}")
            ),
            Some(0.0),
            "{reason}"
        );
    }
}

#[tokio::test]
async fn stale_thresholds_come_from_the_configuration() {
    let app = spawn_app_with_file(
        "[reconcile.stale_after]\nacknowledged = \"never\"\ninProgress = \"30m\"\n",
    )
    .await;
    post_onap(
        &app,
        &onap(
            "never-1",
            CREATION,
            minutes(600),
            "SO-never",
            "acknowledged",
            &[],
        ),
    )
    .await;
    post_onap(
        &app,
        &onap(
            "half-1",
            ITEM,
            minutes(45),
            "SO-half",
            "inProgress",
            &[("1", "inProgress")],
        ),
    )
    .await;
    let (stale, _) = suspects(&app, "?reason=stale").await;
    assert_eq!(stale.keys().collect::<Vec<_>>(), ["SO-half"]);
    let (_, order) = app.admin_get("/api/v1/service-orders/SO-half").await;
    assert_eq!(order["suspects"][0]["staleAfterSeconds"], 1800);
}

const KEY_A: &str = "olk_suspects_test_key_seller_a_0123";
const KEY_B: &str = "olk_suspects_test_key_seller_b_0123";

async fn post_as(app: &TestApp, key: Option<&str>, body: &Value) {
    let response = match key {
        Some(key) => app.post_as(key, body).await,
        None => app.post(body).await,
    };
    assert_eq!(response.status().as_u16(), 201, "{body}");
}

/// `GET /api/v1/received` with `query`: status and body.
async fn received(app: &TestApp, query: &str) -> (u16, Value) {
    app.admin_get(&format!("/api/v1/received?{query}")).await
}

fn encoded(instant: DateTime<Utc>) -> String {
    instant
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        .replace('+', "%2B")
}

#[tokio::test]
async fn the_gap_report_lists_each_senders_event_ids_in_receipt_order_and_is_bounded() {
    let app = spawn_app_with_file(&format!(
        "[clients.seller-a]\n[[clients.seller-a.api_keys]]\nhash = \"sha256:{}\"\n\
         [clients.seller-b]\n[[clients.seller-b.api_keys]]\nhash = \"sha256:{}\"\n\
         [reconcile]\nreceived_limit = 5\n",
        sha256_hex(KEY_A),
        sha256_hex(KEY_B)
    ))
    .await;
    let before = Utc::now();
    let event = |id: &str| {
        onap(
            id,
            ITEM,
            minutes(1),
            "SO-gap-report",
            "inProgress",
            &[("1", "inProgress")],
        )
    };
    let first = event("a-1");
    post_as(&app, Some(KEY_A), &first).await;
    post_as(&app, Some(KEY_B), &event("b-1")).await;
    post_as(&app, None, &event("anon-1")).await;
    post_as(&app, Some(KEY_A), &event("a-2")).await;
    // A resend is not a second receipt.
    assert_eq!(app.post_as(KEY_A, &first).await.status().as_u16(), 201);
    let since = encoded(before);

    let (status, report) = received(&app, &format!("since={since}")).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["total"], 4);
    assert_eq!(
        report["senders"],
        json!([
            {"client": "seller-a", "count": 2, "eventIds": ["a-1", "a-2"]},
            {"client": "seller-b", "count": 1, "eventIds": ["b-1"]},
            {"client": null, "count": 1, "eventIds": ["anon-1"]}
        ])
    );
    assert!(report["until"].as_str().is_some());

    let (_, only_a) = received(&app, &format!("since={since}&client=seller-a")).await;
    assert_eq!(
        only_a["senders"],
        json!([{"client": "seller-a", "count": 2, "eventIds": ["a-1", "a-2"]}])
    );
    let (_, anonymous) = received(&app, &format!("since={since}&client=")).await;
    assert_eq!(
        anonymous["senders"],
        json!([{"client": null, "count": 1, "eventIds": ["anon-1"]}])
    );
    let (_, nobody) = received(&app, &format!("since={since}&client=seller-z")).await;
    assert_eq!(nobody["senders"], json!([]));
    assert_eq!(nobody["total"], 0);
    let (_, later) = received(
        &app,
        &format!("since={}", encoded(Utc::now() + TimeDelta::hours(1))),
    )
    .await;
    assert_eq!(later["total"], 0);
    // A range that ends before it starts, or where it starts, is a mistake: refused.
    for until in [before - TimeDelta::hours(1), before] {
        let query = format!("since={since}&until={}", encoded(until));
        assert_received_refused(&app, &query, "until", "must be after since").await;
    }

    for (query, parameter) in [
        ("since=yesterday".to_owned(), "since"),
        (format!("since={since}&client=no%20spaces"), "client"),
    ] {
        assert_received_refused(&app, &query, parameter, "").await;
    }

    // Past the limit (5 here), the report is refused and says what to do.
    post_as(&app, Some(KEY_B), &event("b-2")).await;
    post_as(&app, Some(KEY_B), &event("b-3")).await;
    let query = format!("since={since}");
    assert_received_refused(&app, &query, "until", "narrow since and until").await;
    let (status, one_client) = received(&app, &format!("since={since}&client=seller-b")).await;
    assert_eq!(status, 200, "one client's part fits: {one_client}");
    assert_eq!(one_client["total"], 3);
}

/// Asserts that `GET /api/v1/received?{query}` is refused with 400/28 naming the query
/// `parameter`, in a message that says `says`.
async fn assert_received_refused(app: &TestApp, query: &str, parameter: &str, says: &str) {
    let response = app
        .get(
            format!("{}/api/v1/received?{query}", app.admin_base),
            Some(ADMIN_TOKEN),
        )
        .await;
    let error = assert_error(response, 400, 28).await;
    assert_eq!(
        error["referenceError"],
        format!("query:{parameter}"),
        "{query}"
    );
    assert!(
        error["message"].as_str().unwrap().contains(says),
        "{query}: {error}"
    );
}

/// An ONAP event as the store receives it, dated `ago` before now, received at `received_at`
/// from `client`.
fn new_event(body: &Value, received_at: DateTime<Utc>, client: Option<&str>) -> NewEvent {
    NewEvent {
        notification: parse_notification(Bytes::from(body.to_string()), ParseOptions::default())
            .unwrap(),
        received_at,
        sender: Some("192.0.2.7".into()),
        client: client.map(str::to_owned),
        trace_context: None,
    }
}

async fn open(storage: &order_listener::store::Storage) -> Store {
    Store::open_with_routes(
        storage,
        WriterOptions::default(),
        Vec::new(),
        Arc::new(Metrics::new()),
    )
    .await
    .unwrap()
}

fn filter(reasons: Reasons, after: Option<&str>, limit: usize) -> SuspectFilter {
    SuspectFilter {
        reasons,
        stale_after: StaleAfter::default(),
        now: Utc::now(),
        after: after.map(|id| id.parse().unwrap()),
        limit,
    }
}

#[tokio::test]
async fn the_store_lists_counts_and_pages_suspects_and_reports_receipts_on_every_backend() {
    for backend in backends().await {
        let name = backend.name;
        let store = open(&backend.storage).await;
        let now = Utc::now();
        let events = [
            (
                onap(
                    "s-1",
                    CREATION,
                    minutes(180),
                    "SO-b-stale",
                    "acknowledged",
                    &[("1", "acknowledged")],
                ),
                now - minutes(5),
                Some("seller"),
            ),
            (
                onap(
                    "o-1",
                    ITEM,
                    minutes(2),
                    "SO-a-orphan",
                    "inProgress",
                    &[("1", "inProgress")],
                ),
                now - minutes(4),
                Some("seller"),
            ),
            (
                onap(
                    "g-1",
                    CREATION,
                    minutes(3),
                    "SO-c-gap",
                    "acknowledged",
                    &[("1", "acknowledged")],
                ),
                now - minutes(3),
                None,
            ),
            (
                onap(
                    "g-3",
                    ORDER,
                    minutes(1),
                    "SO-c-gap",
                    "completed",
                    &[("1", "completed")],
                ),
                now - minutes(2),
                Some("seller"),
            ),
            (
                onap(
                    "x-1",
                    ITEM,
                    minutes(2000),
                    "SO-d-both",
                    "inProgress",
                    &[("1", "inProgress")],
                ),
                now - minutes(1),
                Some("other"),
            ),
        ];
        for (body, received_at, client) in &events {
            store
                .append(new_event(body, *received_at, *client))
                .await
                .unwrap();
        }
        let listed =
            |suspects: Vec<order_listener::store::SuspectOrder>| -> Vec<(String, Vec<Reason>)> {
                suspects
                    .into_iter()
                    .map(|suspect| {
                        (
                            suspect.order.id.to_string(),
                            suspect.reasons.iter().collect(),
                        )
                    })
                    .collect()
            };
        let all = listed(
            store
                .suspects(filter(Reasons::NONE, None, 100))
                .await
                .unwrap(),
        );
        assert_eq!(
            all,
            [
                ("SO-a-orphan".to_owned(), vec![Reason::CreationMissing]),
                ("SO-b-stale".to_owned(), vec![Reason::Stale]),
                ("SO-c-gap".to_owned(), vec![Reason::MissedTransition]),
                (
                    "SO-d-both".to_owned(),
                    vec![Reason::Stale, Reason::CreationMissing]
                ),
            ],
            "{name}"
        );
        let first = listed(
            store
                .suspects(filter(Reasons::NONE, None, 2))
                .await
                .unwrap(),
        );
        let rest = listed(
            store
                .suspects(filter(Reasons::NONE, Some("SO-b-stale"), 2))
                .await
                .unwrap(),
        );
        assert_eq!([first, rest].concat(), all, "{name}: pages join");
        let stale = listed(
            store
                .suspects(filter(Reasons::NONE.with(Reason::Stale), None, 100))
                .await
                .unwrap(),
        );
        assert_eq!(
            stale.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            ["SO-b-stale", "SO-d-both"],
            "{name}"
        );
        let missing = listed(
            store
                .suspects(filter(
                    Reasons::NONE.with(Reason::CreationMissing),
                    None,
                    100,
                ))
                .await
                .unwrap(),
        );
        assert_eq!(
            missing,
            [
                ("SO-a-orphan".to_owned(), vec![Reason::CreationMissing]),
                (
                    "SO-d-both".to_owned(),
                    vec![Reason::Stale, Reason::CreationMissing]
                ),
            ],
            "{name}: every reason of a listed order"
        );
        let counts = store
            .suspect_counts(&StaleAfter::default(), Utc::now())
            .await
            .unwrap();
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            [
                (Reason::Stale, 2),
                (Reason::MissedTransition, 1),
                (Reason::ItemNotFinal, 0),
                (Reason::CreationMissing, 2),
                (Reason::OutOfStep, 0),
            ],
            "{name}"
        );

        // The lost events arrive: the gap's middle (between two stored events) and the
        // orphan's creation (before its only one).
        store
            .append(new_event(
                &onap(
                    "g-2",
                    ITEM,
                    minutes(2),
                    "SO-c-gap",
                    "inProgress",
                    &[("1", "inProgress")],
                ),
                now,
                Some("seller"),
            ))
            .await
            .unwrap();
        store
            .append(new_event(
                &onap(
                    "o-0",
                    CREATION,
                    minutes(3),
                    "SO-a-orphan",
                    "acknowledged",
                    &[("1", "acknowledged")],
                ),
                now,
                Some("seller"),
            ))
            .await
            .unwrap();
        let after = listed(
            store
                .suspects(filter(Reasons::NONE, None, 100))
                .await
                .unwrap(),
        );
        assert_eq!(
            after.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            ["SO-b-stale", "SO-d-both"],
            "{name}"
        );

        // The gap report: receipt range, senders, limit.
        let report = store
            .received(ReceivedFilter {
                since: now - minutes(4),
                until: now - minutes(1),
                sender: None,
                limit: 10,
            })
            .await
            .unwrap();
        assert!(!report.over_limit);
        let groups: Vec<(Option<String>, Vec<String>)> = report
            .senders
            .iter()
            .map(|sender| {
                (
                    sender.client.clone(),
                    sender.event_ids.iter().map(|id| id.to_string()).collect(),
                )
            })
            .collect();
        assert_eq!(
            groups,
            [
                (
                    Some("seller".to_owned()),
                    vec!["o-1".to_owned(), "g-3".to_owned()]
                ),
                (None, vec!["g-1".to_owned()]),
            ],
            "{name}: [since, until) of receipt, the last one excluded"
        );
        let anonymous = store
            .received(ReceivedFilter {
                since: now - minutes(10),
                until: now + minutes(1),
                sender: Some(Sender::Anonymous),
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(anonymous.senders.len(), 1, "{name}");
        assert_eq!(anonymous.senders[0].count, 1, "{name}");
        let other = store
            .received(ReceivedFilter {
                since: now - minutes(10),
                until: now + minutes(1),
                sender: Some(Sender::Client("other".into())),
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(other.senders[0].event_ids[0].as_str(), "x-1", "{name}");
        let over = store
            .received(ReceivedFilter {
                since: now - minutes(10),
                until: now + minutes(1),
                sender: None,
                limit: 3,
            })
            .await
            .unwrap();
        assert!(over.over_limit, "{name}");
        assert_eq!(
            over.senders.iter().map(|sender| sender.count).sum::<u64>(),
            3,
            "{name}"
        );
        store.close().await;
    }
}
