//! The admin API's lists: events with filters and cursor pagination, service orders with
//! filters, and their errors.

use serde_json::{Value, json};

use order_listener::domain::envelope::{Dialect, EventType};

use crate::helpers::*;
use crate::store_contract::{dialect_event, mef_href, mef_v6_state_change, tmf641_v4_state_change};

/// Asserts that `path` is answered 400/28 naming the query `parameter`.
async fn assert_bad_query(app: &TestApp, path: &str, parameter: &str) {
    let (status, body) = app.admin_get(path).await;
    assert_eq!(
        (status, body["code"].clone()),
        (400, json!(28)),
        "{path}: {body}"
    );
    assert_eq!(
        body["referenceError"],
        json!(format!("query:{parameter}")),
        "{path}"
    );
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            item["eventId"]
                .as_str()
                .or(item["id"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn events_are_listed_newest_first_a_page_at_a_time_with_filters() {
    let app = spawn_app().await;
    let mut sent = Vec::new();
    for order in ["SO-A", "SO-B"] {
        for event in onap_lifecycle(order, 1) {
            assert_eq!(app.post(&event).await.status().as_u16(), 201);
            sent.push(event["eventId"].as_str().unwrap().to_owned());
        }
    }

    // Pages of 2, following nextCursor, give every event once, newest first.
    let mut seen = Vec::new();
    let mut path = "/api/v1/events?limit=2".to_owned();
    loop {
        let (status, page) = app.admin_get(&path).await;
        assert_eq!(status, 200, "{page}");
        assert!(page["items"].as_array().unwrap().len() <= 2);
        seen.extend(ids(&page));
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/events?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let mut newest_first = sent.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let (_, page) = app
        .admin_get("/api/v1/events?orderId=SO-B&eventType=ServiceOrderCreationNotification")
        .await;
    assert_eq!(ids(&page), ["SO-B-created"], "{page}");
    // onap_lifecycle dates its events 0, 1, 2… ms after 2019-03-25T08:08:56.310Z.
    let (_, page) = app
        .admin_get("/api/v1/events?orderId=SO-A&since=2019-03-25T08:08:56.311Z")
        .await;
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        sent.len() / 2 - 1,
        "{page}"
    );
    let (_, page) = app
        .admin_get("/api/v1/events?until=2019-03-25T08:08:56.311Z")
        .await;
    assert_eq!(ids(&page), ["SO-B-created", "SO-A-created"], "{page}");
    let (_, page) = app
        .admin_get("/api/v1/events?time=receivedAt&since=2100-01-01T00:00:00Z")
        .await;
    assert_eq!(page["items"], json!([]));
    assert_eq!(page["nextCursor"], Value::Null);
}

#[tokio::test]
async fn events_are_listed_by_dialect_and_an_unknown_dialect_is_refused_naming_the_dialects() {
    let app = spawn_app().await;
    let created = onap_lifecycle("SO-onap", 1).remove(0);
    assert_eq!(app.post(&created).await.status().as_u16(), 201);
    // The other dialects' listeners are not this test's subject: their events go to the store
    // as those listeners hand them over.
    let state_change = EventType::ServiceOrderStateChangeEvent;
    let tmf = tmf641_v4_state_change("tmf-1", "SO-tmf", "inProgress");
    let mef = mef_v6_state_change("mef-1", "SO-mef", "completed");
    for (dialect, body) in [(Dialect::Tmf641V4, &tmf), (Dialect::MefLegatoV6, &mef)] {
        app.store
            .append(dialect_event(dialect, state_change, body))
            .await
            .unwrap();
    }

    let (status, page) = app.admin_get("/api/v1/events?dialect=tmf641-v4").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), ["tmf-1"], "{page}");
    assert_eq!(page["items"][0]["dialect"], "tmf641-v4");
    assert_eq!(
        page["items"][0]["eventType"],
        "ServiceOrderStateChangeEvent"
    );
    assert!(page["items"][0].get("reference").is_none(), "{page}");
    let (_, page) = app.admin_get("/api/v1/events?dialect=mef-legato-v6").await;
    assert_eq!(ids(&page), ["mef-1"], "{page}");
    assert_eq!(page["items"][0]["reference"], json!(mef_href("SO-mef")));
    let (_, page) = app
        .admin_get("/api/v1/events?dialect=onap&orderId=SO-onap")
        .await;
    assert_eq!(ids(&page), ["SO-onap-created"], "{page}");
    assert_eq!(page["items"][0]["dialect"], "onap");
    let (_, page) = app.admin_get("/api/v1/events?dialect=tmf641-v5").await;
    assert_eq!(page["items"], json!([]));
    let (_, page) = app.admin_get("/api/v1/events").await;
    assert_eq!(ids(&page), ["mef-1", "tmf-1", "SO-onap-created"], "{page}");
    let (_, event) = app.admin_get("/api/v1/events/mef-1").await;
    assert_eq!(
        (&event["dialect"], &event["body"]),
        (&json!("mef-legato-v6"), &mef)
    );

    for bad in ["tmf641", "ONAP", ""] {
        let path = format!("/api/v1/events?dialect={bad}");
        assert_bad_query(&app, &path, "dialect").await;
        let (_, body) = app.admin_get(&path).await;
        let message = body["message"].as_str().unwrap();
        for name in Dialect::ALL.map(Dialect::as_str) {
            assert!(message.contains(name), "{message}");
        }
    }
}

#[tokio::test]
async fn service_orders_are_listed_with_filters() {
    let app = spawn_app().await;
    for event in onap_lifecycle("SO-done", 2) {
        app.post(&event).await;
    }
    let created = onap_lifecycle("SO-open", 1).remove(0);
    app.post(&created).await;

    let (status, page) = app.admin_get("/api/v1/service-orders").await;
    assert_eq!(status, 200);
    let mut all = ids(&page);
    all.sort();
    assert_eq!(all, ["SO-done", "SO-open"]);
    let (_, page) = app
        .admin_get("/api/v1/service-orders?state=completed")
        .await;
    assert_eq!(ids(&page), ["SO-done"]);
    assert_eq!(page["items"][0]["itemCount"], json!(2));
    let (_, page) = app
        .admin_get("/api/v1/service-orders?externalId=ext-SO-open")
        .await;
    assert_eq!(ids(&page), ["SO-open"]);
    let (_, page) = app.admin_get("/api/v1/service-orders?anomalies=true").await;
    assert_eq!(page["items"], json!([]));
    let (_, page) = app
        .admin_get("/api/v1/service-orders?updatedSince=2100-01-01T00:00:00Z")
        .await;
    assert_eq!(page["items"], json!([]));
}

#[tokio::test]
async fn list_parameters_are_checked_and_the_token_is_required() {
    let app = spawn_app().await;
    for (path, parameter) in [
        ("/api/v1/events?limit=0", "limit"),
        ("/api/v1/events?limit=lots", "limit"),
        ("/api/v1/events?eventType=OrderNotification", "eventType"),
        ("/api/v1/events?since=yesterday", "since"),
        ("/api/v1/events?time=now", "time"),
        ("/api/v1/events?cursor=-4", "cursor"),
        // A range that ends where it starts, or before, holds nothing: a mistake, said so.
        (
            "/api/v1/events?since=2019-03-25T08:08:56Z&until=2019-03-25T08:08:56Z",
            "until",
        ),
        (
            "/api/v1/events?time=receivedAt&since=2019-03-26T00:00:00Z&until=2019-03-25T00:00:00Z",
            "until",
        ),
        ("/api/v1/service-orders?state=COMPLETED", "state"),
        ("/api/v1/service-orders?anomalies=yes", "anomalies"),
    ] {
        assert_bad_query(&app, path, parameter).await;
    }
    for path in ["/api/v1/events", "/api/v1/service-orders"] {
        let response = app.get(format!("{}{path}", app.admin_base), None).await;
        assert_error(response, 401, 40).await;
    }
}

#[tokio::test]
async fn a_query_that_does_not_read_is_a_400_28_and_a_request_without_a_token_is_a_401_first() {
    let app = spawn_app().await;
    for (path, parameter) in [
        ("/api/v1/events?limit=1&limit=2", "limit"),
        ("/api/v1/events/some-id?raw=maybe", "raw"),
        ("/api/v1/dead-letters?limit=x", "limit"),
        ("/api/v1/stream?since=1&since=2", "since"),
    ] {
        assert_bad_query(&app, path, parameter).await;
        // Without a token the query is never read: the answer is 401.
        let response = app.get(format!("{}{path}", app.admin_base), None).await;
        assert_error(response, 401, 40).await;
    }
    // A change without the token is refused before its path is read, too.
    let response = app
        .client
        .post(format!(
            "{}/api/v1/dead-letters/not-a-number/retry",
            app.admin_base
        ))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, 40).await;
}

#[tokio::test]
async fn a_missing_required_query_parameter_is_a_400_27_that_says_what_to_send() {
    let app = spawn_app().await;
    for path in ["/api/v1/received", "/api/v1/received?client=seller"] {
        let (status, body) = app.admin_get(path).await;
        assert_eq!((status, &body["code"]), (400, &json!(27)), "{path}: {body}");
        assert_eq!(body["reason"], "Missing query-string parameter", "{body}");
        assert_eq!(body["referenceError"], "query:since", "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("send since=<RFC 3339 date>"), "{message}");
    }
    // A parameter given with a value that does not read is still 28.
    assert_bad_query(&app, "/api/v1/received?since=yesterday", "since").await;
}
