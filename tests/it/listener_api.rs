//! The Listener API's answers: 201 with the echo, and every error status and code.

use serde_json::{Value, json};

use crate::helpers::*;

fn creation(event_id: &str, order_id: &str) -> Value {
    onap_creation(event_id, order_id, 2)
}

#[tokio::test]
async fn onap_events_of_all_three_types_are_stored_and_echoed_with_201() {
    let app = spawn_app().await;
    let events = [
        creation("e-create", "SO-1"),
        onap_event(
            "e-item",
            "ServiceOrderItemStateChangeNotification",
            10,
            "SO-1",
            "inProgress",
            vec![onap_item("1", "add", "inProgress")],
        ),
        onap_event(
            "e-state",
            "ServiceOrderStateChangeNotification",
            20,
            "SO-1",
            "completed",
            vec![
                onap_item("1", "add", "completed"),
                onap_item("2", "add", "completed"),
            ],
        ),
    ];
    for event in &events {
        let body = event.to_string();
        let response = app
            .post_raw(body.clone(), Some("application/json;charset=utf-8"))
            .await;
        assert_eq!(response.status().as_u16(), 201);
        assert_eq!(
            response.headers()["content-type"],
            "application/json;charset=utf-8"
        );
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(
            location,
            format!(
                "{}/api/v1/events/{}",
                app.admin_base,
                event["eventId"].as_str().unwrap()
            )
        );
        // The echo is the stored Listener, byte for byte as received.
        assert_eq!(response.bytes().await.unwrap(), body.as_bytes());

        // The Location resolves on the admin API, and the raw bytes are kept exactly.
        let stored = app
            .get(format!("{location}?raw=true"), Some(ADMIN_TOKEN))
            .await;
        assert_eq!(stored.status().as_u16(), 200);
        assert_eq!(stored.bytes().await.unwrap(), body.as_bytes());
    }
    let (status, stored) = app.admin_get("/api/v1/events/e-item").await;
    assert_eq!(status, 200);
    assert_eq!(
        stored["eventType"],
        "ServiceOrderItemStateChangeNotification"
    );
    assert_eq!(stored["orderId"], "SO-1");
    assert_eq!(stored["sender"], "127.0.0.1");
    assert_eq!(
        stored["body"]["event"]["orderItem"][0]["@type"],
        Value::Null
    );
}

#[tokio::test]
async fn json_content_types_in_any_case_and_spacing_are_accepted() {
    let app = spawn_app().await;
    for (index, content_type) in [
        "application/json",
        "application/json;charset=utf-8",
        "Application/JSON ; charset=UTF-8",
    ]
    .iter()
    .enumerate()
    {
        let response = app
            .post_raw(
                creation(&format!("ct-{index}"), "SO-ct").to_string(),
                Some(content_type),
            )
            .await;
        assert_eq!(response.status().as_u16(), 201, "{content_type}");
    }
}

#[tokio::test]
async fn a_resend_with_the_same_payload_is_acknowledged_and_stored_once() {
    let app = spawn_app().await;
    let event = creation("resent", "SO-2");
    assert_eq!(app.post(&event).await.status().as_u16(), 201);
    // The same JSON with other spacing is the same payload.
    let pretty = serde_json::to_string_pretty(&event).unwrap();
    let response = app.post_raw(pretty, Some("application/json")).await;
    assert_eq!(response.status().as_u16(), 201);
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed, event);

    let events = app.stored_events().await;
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn the_same_event_id_with_another_payload_is_refused_with_422_and_the_stored_event_kept() {
    let app = spawn_app().await;
    let event = creation("contested", "SO-3");
    assert_eq!(app.post(&event).await.status().as_u16(), 201);
    let mut other = event.clone();
    other["event"]["state"] = json!("rejected");
    let body = assert_error(app.post(&other).await, 422, 60).await;
    assert_eq!(body["referenceError"], "#/eventId");

    let (_, stored) = app.admin_get("/api/v1/events/contested").await;
    assert_eq!(stored["body"], event);
}

#[tokio::test]
async fn bad_bodies_get_400_with_the_spec_codes() {
    let app = spawn_app().await;
    let json_type = Some("application/json");
    assert_error(app.post_raw("", json_type).await, 400, 21).await;
    assert_error(app.post_raw("", None).await, 400, 21).await;
    assert_error(app.post_raw("{not json", json_type).await, 400, 22).await;
    assert_error(app.post_raw("[1,2,3]", json_type).await, 400, 22).await;
    assert_error(app.post_raw("\"text\"", json_type).await, 400, 22).await;

    let body = assert_error(
        app.post(&json!({"eventId": "x", "eventType": "ServiceOrderCreationNotification"}))
            .await,
        400,
        23,
    )
    .await;
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("eventDate") && message.contains("event"),
        "{message}"
    );
    assert_eq!(body["referenceError"], "#/eventDate");

    let valid = creation("fields", "SO-4");
    let cases = [
        ("eventType", json!("ServiceOrderDeleteNotification")),
        ("eventType", json!(7)),
        ("eventDate", json!("25/03/2019 08:08")),
        // Epoch milliseconds are a date (Casablanca); these numbers are not.
        ("eventDate", json!(1553501336310.5)),
        ("eventDate", json!(-1)),
        ("event", json!("not an object")),
        ("event", json!([])),
        ("eventId", json!("")),
        ("eventId", json!(12)),
    ];
    for (field, value) in cases {
        let mut body = valid.clone();
        body[field] = value.clone();
        let error = assert_error(app.post(&body).await, 400, 24).await;
        assert_eq!(
            error["referenceError"],
            format!("#/{field}"),
            "{field} = {value}"
        );
    }
}

#[tokio::test]
async fn bad_headers_get_400_with_the_spec_codes() {
    let app = spawn_app().await;
    let body = creation("headers", "SO-5").to_string();
    assert_error(app.post_raw(body.clone(), None).await, 400, 25).await;
    assert_error(
        app.post_raw(body.clone(), Some("text/plain")).await,
        400,
        26,
    )
    .await;
    assert_error(
        app.post_raw(body.clone(), Some("application/json;charset=latin1"))
            .await,
        400,
        26,
    )
    .await;
    assert_error(
        app.post_raw(body, Some("application/x-www-form-urlencoded"))
            .await,
        400,
        26,
    )
    .await;
}

#[tokio::test]
async fn events_that_contradict_their_type_get_422_with_their_codes() {
    let app = spawn_app().await;
    let mut no_order_id = creation("f-61", "SO-6");
    no_order_id["event"].as_object_mut().unwrap().remove("id");
    let mut no_state = onap_event(
        "f-62",
        "ServiceOrderStateChangeNotification",
        5,
        "SO-6",
        "completed",
        vec![],
    );
    no_state["event"]["state"] = Value::Null;
    let no_item = onap_event(
        "f-63",
        "ServiceOrderItemStateChangeNotification",
        5,
        "SO-6",
        "inProgress",
        vec![],
    );
    let mut item_without_state = onap_event(
        "f-63b",
        "ServiceOrderItemStateChangeNotification",
        5,
        "SO-6",
        "inProgress",
        vec![onap_item("1", "add", "inProgress")],
    );
    item_without_state["event"]["orderItem"][0]["state"] = Value::Null;
    let mut unknown_state = creation("f-64", "SO-6");
    unknown_state["event"]["state"] = json!("COMPLETED");

    assert_error(app.post(&no_order_id).await, 422, 61).await;
    assert_error(app.post(&no_state).await, 422, 62).await;
    assert_error(app.post(&no_item).await, 422, 63).await;
    assert_error(app.post(&item_without_state).await, 422, 63).await;
    let body = assert_error(app.post(&unknown_state).await, 422, 64).await;
    assert!(
        body["message"].as_str().unwrap().contains("inProgress"),
        "the message lists the valid states"
    );

    // Nothing of these was stored.
    let events = app.stored_events().await;
    assert!(events.is_empty());
}

#[tokio::test]
async fn other_paths_methods_and_oversized_bodies_get_404_405_and_413() {
    let app = spawn_app_with(|config| config.body_limit = 4096).await;
    let response = app
        .client
        .post(format!("{}/externalapi/listener/v1/other", app.public_base))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, 404).await;
    let response = app.get(&app.listener_url, None).await;
    let allow = response
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_error(response, 405, 405).await;
    assert_eq!(allow.as_deref(), Some("POST"));

    let mut big = creation("big", "SO-7");
    big["padding"] = json!("x".repeat(5000));
    assert_error(app.post(&big).await, 413, 413).await;
    // A body sent in chunks, with no length declared up front, is cut off too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(vec![b' '; 3000]), Ok(vec![b' '; 3000])];
    let stream = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    assert_error(
        app.post_raw(stream, Some("application/json")).await,
        413,
        413,
    )
    .await;
}

#[tokio::test]
async fn the_admin_api_is_not_served_on_the_public_port() {
    let app = spawn_app().await;
    assert_eq!(
        app.post(&creation("private", "SO-8"))
            .await
            .status()
            .as_u16(),
        201
    );
    let response = app
        .get(
            format!("{}/api/v1/events/private", app.public_base),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_error(response, 404, 404).await;
    // And the admin API wants its token.
    let response = app
        .get(format!("{}/api/v1/events/private", app.admin_base), None)
        .await;
    assert_error(response, 401, 40).await;
    let response = app
        .get(
            format!("{}/api/v1/events/private", app.admin_base),
            Some("wrong"),
        )
        .await;
    assert_error(response, 401, 41).await;
}

#[tokio::test]
async fn storage_that_is_shut_down_gets_503_with_retry_after() {
    let app = spawn_app().await;
    let ready = app.get(format!("{}/readyz", app.public_base), None).await;
    assert_eq!(ready.status().as_u16(), 200);
    app.store.close().await;
    let response = app.post(&creation("late", "SO-9")).await;
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned())
            .as_deref(),
        Some("5")
    );
    assert_error(response, 503, 5).await;
    let ready = app.get(format!("{}/readyz", app.public_base), None).await;
    assert_error(ready, 503, 5).await;
}

#[tokio::test]
async fn an_internal_storage_fault_gets_500_code_1_without_details() {
    let app = spawn_app().await;
    assert_eq!(
        app.post(&creation("before", "SO-10"))
            .await
            .status()
            .as_u16(),
        201
    );
    // Break the schema behind the listener's back.
    let connection = rusqlite::Connection::open(app.data_dir.join("events.sqlite3")).unwrap();
    connection
        .execute_batch("PRAGMA busy_timeout = 5000; DROP TABLE service_orders;")
        .unwrap();
    let body = assert_error(app.post(&creation("after", "SO-10b")).await, 500, 1).await;
    let message = body["message"].as_str().unwrap();
    assert!(
        !message.contains("service_orders") && !message.contains("SQL"),
        "{message}"
    );
    // The failed event was not acknowledged and not stored.
    let (status, _) = app.admin_get("/api/v1/events/after").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn without_anonymous_access_an_api_key_is_required() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let mut config = TestConfig::new(dir.path()).build();
    config.access.allow_anonymous = false;
    let built = order_listener::app::App::build(config.clone())
        .await
        .unwrap();
    let key = built
        .generated_key()
        .expect("a key is generated on first start")
        .key
        .expose()
        .to_owned();
    assert!(
        built.banner().contains(&key),
        "the banner shows the key once"
    );
    drop(built);
    let app = start(config).await;

    let event = creation("secured", "SO-11");
    assert_error(app.post(&event).await, 401, 40).await;
    let response = app.post_as("olk_wrong", &event).await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_error(response, 401, 41).await;
    let response = app.post_as(&key, &event).await;
    assert_eq!(response.status().as_u16(), 201);
    let (_, stored) = app.admin_get("/api/v1/events/secured").await;
    assert_eq!(stored["client"], "default");
}

#[tokio::test]
async fn service_inventory_events_are_stored_when_enabled() {
    let app = spawn_app_with(|config| config.parse.accept_service_inventory = true).await;
    let event = json!({"eventId": "svc-1", "eventDate": onap_date(0), "eventType": "ServiceCreationNotification",
        "event": {"id": "service-9", "state": "active"}});
    assert_eq!(app.post(&event).await.status().as_u16(), 201);
    let (_, stored) = app.admin_get("/api/v1/events/svc-1").await;
    assert_eq!(stored["orderId"], Value::Null);
    let (status, _) = app.admin_get("/api/v1/service-orders/service-9").await;
    assert_eq!(status, 404, "service-inventory events are not projected");
}

#[tokio::test]
async fn the_openapi_document_is_served_and_lists_every_code() {
    let app = spawn_app().await;
    let response = app
        .get(
            format!("{}/externalapi/listener/v1/openapi.json", app.public_base),
            None,
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let post = &document["paths"]["/externalapi/listener/v1/listener"]["post"];
    for status in [
        "201", "400", "401", "404", "405", "413", "422", "500", "503",
    ] {
        assert!(
            post["responses"][status].is_object(),
            "response {status} is documented"
        );
    }
    let text = document.to_string();
    for code in order_listener::domain::envelope::FunctionalError::ALL {
        assert!(
            text.contains(&format!("{}: ", code.code())),
            "422 code {} is documented",
            code.code()
        );
    }
}

#[tokio::test]
async fn health_answers_on_both_ports() {
    let app = spawn_app().await;
    for base in [&app.public_base, &app.admin_base] {
        for path in ["/healthz", "/readyz"] {
            let response = app.get(format!("{base}{path}"), None).await;
            assert_eq!(response.status().as_u16(), 200, "{base}{path}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_callback_registered_with_a_trailing_slash_reaches_the_listener() {
    let app = spawn_app().await;
    let event = creation("slash-1", "SO-slash");
    let response = app
        .post_raw_to(
            &format!("{}/", app.listener_url),
            event.to_string(),
            Some("application/json"),
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(response.json::<Value>().await.unwrap(), event);
    // The same event through the other spelling is the same event: stored once.
    assert_eq!(app.post(&event).await.status().as_u16(), 201);
    let stored = app.stored_events().await;
    assert_eq!(
        stored
            .iter()
            .filter(|record| record.event_id.as_str() == "slash-1")
            .count(),
        1
    );
    let (status, order) = app.admin_get("/api/v1/service-orders/SO-slash").await;
    assert_eq!(status, 200, "{order}");
}
