//! `GET /metrics` on the admin port: Listener API answers by eventType and status, refusals by
//! code, commit batches, outbox gauges and delivery attempts, as OpenMetrics text.

use order_listener::domain::envelope::EventId;
use serde_json::json;

use crate::helpers::*;

const KEY: &str = "olk_metrics_test_key_0123456789";

/// An app that requires an API key, with an HTTP sink whose address refuses connections.
async fn spawn_secured_app_with_a_failing_sink() -> TestApp {
    // A port that was just free and is closed again: connecting to it is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    spawn_app_from_file(
        &format!(
            "plain_http = true\nallow_anonymous = false\n\
             [clients.seller]\n[[clients.seller.api_keys]]\nhash = \"sha256:{}\"\n\
             [sinks.hook]\ntype = \"http\"\nurl = \"http://{closed}/hook\"\nretry_schedule = [\"1h\"]\n",
            sha256_hex(KEY)
        ),
        TestConfig::transport_and_access_from_file,
    )
    .await
}

async fn post_with_key(app: &TestApp, key: Option<&str>, body: String) -> reqwest::Response {
    let mut request = app
        .client
        .post(&app.listener_url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

/// Scrapes `/metrics` without a token; returns the text.
async fn scrape(app: &TestApp) -> String {
    let response = app.get(format!("{}/metrics", app.admin_base), None).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok()),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = response.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    text
}

/// The value of one series, named with its labels exactly as rendered.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// Waits until the event's delivery to `hook` has been attempted at least once: the worker
/// records an attempt's metrics before its outcome, and the store announces the outcome.
async fn wait_for_first_attempt(app: &TestApp, event_id: &str) {
    let event_id: EventId = event_id.parse().unwrap();
    when_outbox_changes(&app.store, "a first attempt", async || {
        let deliveries = app.store.deliveries_of(&event_id).await.unwrap();
        deliveries
            .iter()
            .any(|delivery| delivery.attempts > 0)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn listener_answers_refusals_commits_and_the_outbox_show_in_metrics() {
    let app = spawn_secured_app_with_a_failing_sink().await;
    let before = scrape(&app).await;
    assert_eq!(
        sample(&before, "order_listener_commit_batch_size_count"),
        Some(0.0)
    );

    let good = onap_lifecycle("SO-M1", 1).remove(0);
    assert_eq!(
        post_with_key(&app, Some(KEY), good.to_string())
            .await
            .status()
            .as_u16(),
        201
    );
    assert_error(
        post_with_key(&app, Some(KEY), "{not json".to_owned()).await,
        400,
        22,
    )
    .await;
    // A functional refusal comes after the body named its type, and is counted under it.
    let mut stateless = good.clone();
    stateless["eventId"] = json!("SO-M1-stateless");
    stateless["eventType"] = json!("ServiceOrderStateChangeNotification");
    stateless["event"]["state"] = serde_json::Value::Null;
    assert_error(
        post_with_key(&app, Some(KEY), stateless.to_string()).await,
        422,
        62,
    )
    .await;
    assert_error(post_with_key(&app, None, good.to_string()).await, 401, 40).await;
    let wrong = json!({"eventId": "x"}).to_string();
    assert_error(post_with_key(&app, Some("olk_wrong"), wrong).await, 401, 41).await;
    wait_for_first_attempt(&app, good["eventId"].as_str().unwrap()).await;

    let text = scrape(&app).await;
    let expectations = [
        (
            r#"order_listener_requests_total{event_type="ServiceOrderCreationNotification",status="201"}"#,
            1.0,
        ),
        (
            r#"order_listener_requests_total{event_type="unknown",status="400"}"#,
            1.0,
        ),
        (
            r#"order_listener_requests_total{event_type="ServiceOrderStateChangeNotification",status="422"}"#,
            1.0,
        ),
        (
            r#"order_listener_requests_total{event_type="unknown",status="401"}"#,
            2.0,
        ),
        (r#"order_listener_auth_failures_total{code="40"}"#, 1.0),
        (r#"order_listener_auth_failures_total{code="41"}"#, 1.0),
        // One append, committed alone.
        ("order_listener_commit_batch_size_count", 1.0),
        ("order_listener_commit_batch_size_sum", 1.0),
        ("order_listener_commit_seconds_count", 1.0),
        // The delivery failed once and waits an hour for its retry.
        (r#"order_listener_outbox_pending{sink="hook"}"#, 1.0),
        (r#"order_listener_dead_letters{sink="hook"}"#, 0.0),
        (
            r#"order_listener_delivery_attempts_total{sink="hook",result="failed"}"#,
            1.0,
        ),
        (r#"order_listener_delivery_seconds_count{sink="hook"}"#, 1.0),
    ];
    for (series, value) in expectations {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    assert_eq!(
        sample(
            &text,
            r#"order_listener_delivery_attempts_total{sink="hook",result="delivered"}"#
        ),
        None,
        "nothing was delivered"
    );
}

#[tokio::test]
async fn metrics_need_no_token_and_are_not_on_the_public_port() {
    let app = spawn_app().await;
    scrape(&app).await;
    let response = app.get(format!("{}/metrics", app.public_base), None).await;
    assert_eq!(response.status().as_u16(), 404);
}
