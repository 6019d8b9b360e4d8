//! Every seller's dialect on the public port: TMF641 v4 and v5, MEF LSO Legato v5 and v6, and
//! ONAP. Each dialect's events, shaped as its spec's examples, get its success answer at its
//! default path and land in one store and one projection model, which the admin API, the CLI
//! and the stream show; every error class answers in the dialect's own shape.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::stream::open_stream;

const TMF_V4: &str = "/tmf-api/serviceOrdering/v4/listener";
const TMF_V5: &str = "/tmf-api/serviceOrdering/v5/listener";
const MEF_V5: &str = "/mefApi/legato/serviceOrderingNotification/v5/listener";
const MEF_V6: &str = "/mefApi/legato/serviceOrderingNotification/v6/listener";

/// A TMF641 ServiceOrder as the swagger's examples shape it.
fn tmf_order(id: &str, state: &str, item_state: &str) -> Value {
    json!({
        "id": id,
        "href": format!("https://seller.example/tmf-api/serviceOrdering/v4/serviceOrder/{id}"),
        "externalId": format!("BSS-{id}"),
        "orderDate": "2026-11-30T09:00:00.000Z",
        "state": state,
        "serviceOrderItem": [
            {"id": "1", "action": "add", "state": item_state,
             "service": {"serviceState": "designed", "serviceSpecification": {"id": "spec-1"}}},
            {"id": "2", "action": "add", "state": item_state, "service": {"name": "vCPE"}}
        ],
        "@type": "ServiceOrder"
    })
}

fn tmf_event(id: &str, kind: &str, time: &str, order: Value) -> Value {
    json!({
        "eventId": id,
        "eventTime": time,
        "eventType": kind,
        "correlationId": "c-1",
        "domain": "Commercial",
        "title": "Service order event",
        "description": format!("{kind} illustration"),
        "priority": "3",
        "timeOcurred": time,
        "event": {"serviceOrder": order}
    })
}

async fn post_json(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.post_raw_to(
        &format!("{}{path}", app.public_base),
        body.to_string(),
        Some("application/json;charset=utf-8"),
    )
    .await
}

async fn order(app: &TestApp, id: &str) -> Value {
    let (status, order) = app.admin_get(&format!("/api/v1/service-orders/{id}")).await;
    assert_eq!(status, 200, "{order}");
    order
}

fn item_states(order: &Value) -> Vec<(String, String)> {
    order["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["id"].as_str().unwrap().to_owned(),
                item["state"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn tmf641_v4_events_are_notified_with_201_and_project_like_onap() {
    let app = spawn_app().await;
    let events = [
        tmf_event(
            "v4-1",
            "ServiceOrderCreateEvent",
            "2026-11-30T10:00:00.000Z",
            tmf_order("SO-v4", "acknowledged", "acknowledged"),
        ),
        tmf_event(
            "v4-2",
            "ServiceOrderStateChangeEvent",
            "2026-11-30T10:05:00.000Z",
            tmf_order("SO-v4", "inProgress", "inProgress"),
        ),
        tmf_event(
            "v4-3",
            "ServiceOrderMilestoneEvent",
            "2026-11-30T10:06:00.000Z",
            tmf_order("SO-v4", "inProgress", "inProgress"),
        ),
        tmf_event(
            "v4-4",
            "ServiceOrderStateChangeEvent",
            "2026-11-30T10:10:00.000Z",
            tmf_order("SO-v4", "completed", "completed"),
        ),
    ];
    // Sent newest first: the projection follows the dates, not the arrival.
    for event in events.iter().rev() {
        let path = format!(
            "{TMF_V4}/{}",
            lower_camel(event["eventType"].as_str().unwrap())
        );
        let response = post_json(&app, &path, event).await;
        assert_eq!(response.status().as_u16(), 201, "{path}");
        assert!(response.headers().contains_key("location"));
        let echoed: Value = response.json().await.unwrap();
        assert_eq!(&echoed, event, "201 echoes the event");
    }
    let order = order(&app, "SO-v4").await;
    assert_eq!(order["state"], "completed", "{order}");
    assert_eq!(order["externalId"], "BSS-SO-v4");
    assert_eq!(
        item_states(&order),
        [
            ("1".into(), "completed".into()),
            ("2".into(), "completed".into())
        ]
    );
    assert_eq!(order["timeline"].as_array().unwrap().len(), 4);
    assert_eq!(order["anomalies"].as_array().unwrap().len(), 0, "{order}");
    let (_, listed) = app.admin_get("/api/v1/events?orderId=SO-v4").await;
    let types: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["eventType"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"ServiceOrderMilestoneEvent"), "{listed}");
}

/// `name` with its first letter lower-cased, as an event type names its endpoint.
pub(crate) fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|first| first.to_ascii_lowercase())
        .into_iter()
        .chain(chars)
        .collect()
}

#[tokio::test]
async fn tmf641_v5_events_are_notified_with_204_and_need_their_type() {
    let app = spawn_app().await;
    let mut created = tmf_event(
        "v5-1",
        "ServiceOrderCreateEvent",
        "2026-11-30T10:00:00Z",
        tmf_order("SO-v5", "acknowledged", "acknowledged"),
    );
    created["@type"] = json!("ServiceOrderCreateEvent");
    let response = post_json(&app, &format!("{TMF_V5}/serviceOrderCreateEvent"), &created).await;
    assert_eq!(response.status().as_u16(), 204);
    assert!(
        response.bytes().await.unwrap().is_empty(),
        "204 has no body"
    );

    // Generated v5 code writes the payload key as `ServiceOrder`.
    let mut changed = json!({
        "@type": "ServiceOrderStateChangeEvent",
        "eventId": "v5-2",
        "eventTime": "2026-11-30T10:05:00Z",
        "timeOccurred": "2026-11-30T10:05:00Z",
        "event": {"ServiceOrder": tmf_order("SO-v5", "inProgress", "inProgress")}
    });
    let path = format!("{TMF_V5}/serviceOrderStateChangeEvent/");
    assert_eq!(
        post_json(&app, &path, &changed).await.status().as_u16(),
        204
    );

    // A cancellation request joins the order's timeline without a state of its own.
    let cancel = json!({
        "@type": "CancelServiceOrderCreateEvent",
        "eventId": "v5-3",
        "eventTime": "2026-11-30T10:06:00Z",
        "event": {"cancelServiceOrder": {"id": "C-1", "state": "accepted",
                  "serviceOrder": {"id": "SO-v5"}}}
    });
    let response = post_json(
        &app,
        &format!("{TMF_V5}/cancelServiceOrderCreateEvent"),
        &cancel,
    )
    .await;
    assert_eq!(response.status().as_u16(), 204);

    let order = order(&app, "SO-v5").await;
    assert_eq!(order["state"], "inProgress", "{order}");
    assert_eq!(order["timeline"].as_array().unwrap().len(), 3);

    // The same resend is a duplicate, answered the same.
    assert_eq!(
        post_json(&app, &path, &changed).await.status().as_u16(),
        204
    );
    changed["event"]["ServiceOrder"]["state"] = json!("held");
    let conflict = post_json(&app, &path, &changed).await;
    assert_eq!(conflict.status().as_u16(), 409, "a conflicting resend");
    let body: Value = conflict.json().await.unwrap();
    assert_eq!(
        (&body["code"], &body["status"]),
        (&json!("60"), &json!("409"))
    );
    assert_eq!(app.stored_events().await.len(), 3);
}

#[tokio::test]
async fn mef_legato_reference_events_are_acknowledged_and_project_what_they_say() {
    let app = spawn_app().await;
    let href = "https://seller.example/mefApi/legato/serviceOrdering/v6/serviceOrder/SO-mef";
    let events = [
        (
            "serviceOrderCreateEvent",
            json!({"id": "SO-mef", "href": href}),
            "10:00",
        ),
        (
            "serviceOrderItemStateChangeEvent",
            json!({"id": "SO-mef", "orderItemId": "1", "href": href, "state": "inProgress"}),
            "10:01",
        ),
        (
            "serviceOrderStateChangeEvent",
            json!({"id": "SO-mef", "href": href, "state": "inProgress"}),
            "10:02",
        ),
        (
            "serviceOrderItemStateChangeEvent",
            json!({"id": "SO-mef", "orderItemId": "1", "href": href, "state": "completed"}),
            "10:03",
        ),
        (
            "serviceOrderStateChangeEvent",
            json!({"id": "SO-mef", "href": href, "state": "completed"}),
            "10:04",
        ),
    ];
    for (index, (kind, payload, time)) in events.iter().enumerate() {
        let body = json!({
            "eventId": format!("mef-{index}"),
            "eventTime": format!("2026-11-30T{time}:00.000Z"),
            "eventType": kind,
            "event": payload
        });
        let response = post_json(&app, &format!("{MEF_V6}/{kind}"), &body).await;
        assert_eq!(response.status().as_u16(), 204, "{kind}");
    }
    let order = order(&app, "SO-mef").await;
    assert_eq!(order["state"], "completed", "{order}");
    assert_eq!(item_states(&order), [("1".into(), "completed".into())]);

    // The management spelling of the base path reaches the same listener, v5 too.
    let body = json!({"eventId": "mef-v5", "eventTime": "2026-11-30T11:00:00Z",
        "eventType": "serviceOrderCreateEvent", "event": {"id": "SO-mef5"}});
    let path = "/mefApi/legato/serviceOrderingManagement/v5/listener/serviceOrderCreateEvent";
    assert_eq!(post_json(&app, path, &body).await.status().as_u16(), 204);
    assert_eq!(order_state(&app, "SO-mef5").await, Value::Null);
}

async fn order_state(app: &TestApp, id: &str) -> Value {
    order(app, id).await["state"].clone()
}

#[tokio::test]
async fn every_dialects_events_show_in_the_stream_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(TestConfig::new(dir.path()).build()).await;
    let mut tmf = tmf_event(
        "all-tmf",
        "ServiceOrderCreateEvent",
        "2026-11-30T10:00:00Z",
        tmf_order("SO-all", "acknowledged", "acknowledged"),
    );
    assert_eq!(
        post_json(&app, &format!("{TMF_V4}/serviceOrderCreateEvent"), &tmf)
            .await
            .status()
            .as_u16(),
        201
    );
    tmf["eventId"] = json!("all-tmf5");
    tmf["eventType"] = json!("ServiceOrderStateChangeEvent");
    tmf["@type"] = json!("ServiceOrderStateChangeEvent");
    tmf["eventTime"] = json!("2026-11-30T10:01:00Z");
    tmf["event"]["serviceOrder"]["state"] = json!("inProgress");
    assert_eq!(
        post_json(
            &app,
            &format!("{TMF_V5}/serviceOrderStateChangeEvent"),
            &tmf
        )
        .await
        .status()
        .as_u16(),
        204
    );
    let mef = json!({"eventId": "all-mef", "eventTime": "2026-11-30T10:02:00Z",
        "eventType": "serviceOrderStateChangeEvent", "event": {"id": "SO-all", "state": "completed"}});
    assert_eq!(
        post_json(
            &app,
            &format!("{MEF_V6}/serviceOrderStateChangeEvent"),
            &mef
        )
        .await
        .status()
        .as_u16(),
        204
    );
    let mut onap = onap_event(
        "all-onap",
        "ServiceOrderItemStateChangeNotification",
        0,
        "SO-all",
        "completed",
        vec![onap_item("1", "add", "completed")],
    );
    onap["eventDate"] = json!("2026-11-30T10:03:00.000Z");
    assert_eq!(app.post(&onap).await.status().as_u16(), 201);

    let mut stream = open_stream(&app, "?since=0", None).await;
    let messages = stream.take(4).await;
    let ids: Vec<&str> = messages
        .iter()
        .map(|message| message.data["eventId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["all-tmf", "all-tmf5", "all-mef", "all-onap"]);
    assert_eq!(messages[2].event, "ServiceOrderStateChangeEvent");

    let order = order(&app, "SO-all").await;
    assert_eq!(order["state"], "completed", "{order}");
    assert_eq!(order["timeline"].as_array().unwrap().len(), 4);
    let data_dir = app.data_dir.display().to_string();
    app.stop().await;
    let (ok, stdout, stderr) = run_cli(&[
        "orders",
        "show",
        "SO-all",
        "--json",
        "--data-dir",
        &data_dir,
    ]);
    assert!(ok, "{stderr}");
    let shown: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(shown["state"], "completed");
    assert_eq!(shown["timeline"].as_array().unwrap().len(), 4, "{shown}");
}

/// A listener of a dialect other than ONAP's, for the error tests.
#[derive(Debug, Clone, Copy)]
enum Seller {
    TmfV4,
    TmfV5,
    MefV5,
    MefV6,
}

impl Seller {
    const ALL: [Seller; 4] = [Seller::TmfV4, Seller::TmfV5, Seller::MefV5, Seller::MefV6];

    fn base(self) -> &'static str {
        match self {
            Seller::TmfV4 => TMF_V4,
            Seller::TmfV5 => TMF_V5,
            Seller::MefV5 => MEF_V5,
            Seller::MefV6 => MEF_V6,
        }
    }

    fn is_mef(self) -> bool {
        matches!(self, Seller::MefV5 | Seller::MefV6)
    }

    /// A valid creation event with this id, and the path it goes to.
    fn creation(self, id: &str) -> (String, Value) {
        let path = format!("{}/serviceOrderCreateEvent", self.base());
        let body = if self.is_mef() {
            json!({"eventId": id, "eventTime": "2026-11-30T10:00:00Z",
                   "eventType": "serviceOrderCreateEvent", "event": {"id": format!("SO-{id}")}})
        } else {
            let mut body = tmf_event(
                id,
                "ServiceOrderCreateEvent",
                "2026-11-30T10:00:00Z",
                tmf_order(&format!("SO-{id}"), "acknowledged", "acknowledged"),
            );
            if matches!(self, Seller::TmfV5) {
                body["@type"] = json!("ServiceOrderCreateEvent");
            }
            body
        };
        (path, body)
    }

    /// The MEF code of an answer that ONAP would give `code`; TMF uses the number itself.
    fn expected_code(self, status: u16, code: u16) -> Value {
        if !self.is_mef() {
            return json!(code.to_string());
        }
        json!(match (status, code) {
            (401, 40) => "missingCredentials",
            (401, _) => "invalidCredentials",
            (403, 51) => "forbiddenRequester",
            (403, 53) => "tooManyUsers",
            (403, _) => "accessDenied",
            (404, _) => "notFound",
            (405, _) => "methodNotAllowed",
            _ => "invalidBody",
        })
    }

    /// Asserts the dialect's error shape, its status and its code.
    async fn expect(self, response: reqwest::Response, status: u16, code: u16, what: &str) {
        assert_eq!(response.status().as_u16(), status, "{self:?}: {what}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json;charset=utf-8",
            "{self:?}: {what}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["code"],
            self.expected_code(status, code),
            "{self:?}: {what}: {body}"
        );
        let reason = body["reason"].as_str().unwrap_or_default();
        assert!(
            !reason.is_empty() && reason.len() <= 255,
            "{self:?}: {what}: {body}"
        );
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        if self.is_mef() {
            assert!(
                body.get("status").is_none(),
                "MEF's Error has no status: {body}"
            );
        } else {
            assert_eq!(
                body["status"],
                json!(status.to_string()),
                "{self:?}: {what}"
            );
            assert_eq!(body["@type"], "Error", "{self:?}: {what}");
        }
    }
}

#[tokio::test]
async fn every_error_class_answers_in_each_dialects_shape() {
    let key = |name: &str| format!("olk_dialect_{name}_0123456789abcdef");
    let mut toml = String::from("plain_http = true\nbody_limit_bytes = 8192\n");
    for (name, policy) in [
        ("seller", ""),
        ("far", "allowed_sources = [\"192.0.2.0/24\"]\n"),
        (
            "typed",
            "event_types = [\"ServiceOrderStateChangeEvent\"]\n",
        ),
        // One slow client per dialect: each has a burst of one.
        ("slow0", "rate_limit = { per_second = 0.001, burst = 1 }\n"),
        ("slow1", "rate_limit = { per_second = 0.001, burst = 1 }\n"),
        ("slow2", "rate_limit = { per_second = 0.001, burst = 1 }\n"),
        ("slow3", "rate_limit = { per_second = 0.001, burst = 1 }\n"),
    ] {
        toml.push_str(&format!(
            "[clients.{name}]\n{policy}[[clients.{name}.api_keys]]\nhash = \"sha256:{}\"\n",
            sha256_hex(&key(name))
        ));
    }
    let app = spawn_app_from_file(&toml, TestConfig::transport_and_access_from_file).await;
    let send = |path: String, body: String, content_type: Option<&str>, bearer: Option<String>| {
        let mut request = app
            .client
            .post(format!("{}{path}", app.public_base))
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type.to_owned());
        }
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        request.send()
    };
    const JSON: Option<&str> = Some("application/json");
    for (index, seller) in Seller::ALL.into_iter().enumerate() {
        let tag = format!("{seller:?}");
        let slow_key = Some(key(&format!("slow{index}")));
        let seller_key = Some(key("seller"));
        let (path, valid) = seller.creation(&format!("{tag}-ok"));

        // 401: no credentials, and a key nobody has.
        let response = send(path.clone(), valid.to_string(), JSON, None)
            .await
            .unwrap();
        seller.expect(response, 401, 40, "no credentials").await;
        let response = send(path.clone(), valid.to_string(), JSON, Some(key("nobody")))
            .await
            .unwrap();
        seller.expect(response, 401, 41, "an unknown key").await;

        // 403: a source not allowed, a type not allowed, and over the rate.
        let response = send(path.clone(), valid.to_string(), JSON, Some(key("far")))
            .await
            .unwrap();
        seller
            .expect(response, 403, 51, "a source not allowed")
            .await;
        let response = send(path.clone(), valid.to_string(), JSON, Some(key("typed")))
            .await
            .unwrap();
        seller.expect(response, 403, 52, "a type not allowed").await;
        let (slow_path, slow) = seller.creation(&format!("{tag}-slow-1"));
        let first = send(slow_path.clone(), slow.to_string(), JSON, slow_key.clone())
            .await
            .unwrap();
        assert!(first.status().is_success(), "{tag}: within the rate");
        let (_, slow) = seller.creation(&format!("{tag}-slow-2"));
        let response = send(slow_path, slow.to_string(), JSON, slow_key.clone())
            .await
            .unwrap();
        assert!(response.headers().contains_key("retry-after"));
        seller.expect(response, 403, 53, "over the rate").await;

        // 400: the body and its headers.
        let mut missing = valid.clone();
        missing.as_object_mut().unwrap().remove("event");
        let mut mistyped = valid.clone();
        mistyped["eventType"] = json!(if seller.is_mef() {
            "serviceOrderStateChangeEvent"
        } else {
            "ServiceOrderStateChangeEvent"
        });
        let mut no_order = valid.clone();
        if seller.is_mef() {
            no_order["event"] = json!({"href": "x"});
        } else {
            no_order["event"]["serviceOrder"]
                .as_object_mut()
                .unwrap()
                .remove("id");
        }
        let mut bad_state = valid.clone();
        if seller.is_mef() {
            bad_state["event"]["state"] = json!("DONE");
        } else {
            bad_state["event"]["serviceOrder"]["state"] = json!("DONE");
        }
        let bodies = [
            (String::new(), JSON, 21, "an empty body"),
            ("{oops".to_owned(), JSON, 22, "not JSON"),
            (missing.to_string(), JSON, 23, "a missing field"),
            (
                mistyped.to_string(),
                JSON,
                24,
                "a type that is not the path's",
            ),
            (valid.to_string(), None, 25, "no content type"),
            (
                valid.to_string(),
                Some("text/plain"),
                26,
                "not JSON's content type",
            ),
            (no_order.to_string(), JSON, 61, "no order id"),
            (bad_state.to_string(), JSON, 64, "an unknown state"),
        ];
        for (body, content_type, code, what) in bodies {
            let response = send(path.clone(), body, content_type, seller_key.clone())
                .await
                .unwrap();
            seller.expect(response, 400, code, what).await;
        }

        // A resend is answered as the first time; a conflicting one is refused.
        let first = send(path.clone(), valid.to_string(), JSON, seller_key.clone())
            .await
            .unwrap();
        let status = first.status().as_u16();
        assert!(status == 201 || status == 204, "{tag}: {status}");
        let again = send(path.clone(), valid.to_string(), JSON, seller_key.clone())
            .await
            .unwrap();
        assert_eq!(again.status().as_u16(), status, "{tag}: a resend");
        let mut conflicting = valid.clone();
        conflicting["eventTime"] = json!("2026-11-30T10:00:01Z");
        let response = send(
            path.clone(),
            conflicting.to_string(),
            JSON,
            seller_key.clone(),
        )
        .await
        .unwrap();
        let conflict_status = if seller.is_mef() { 400 } else { 409 };
        seller
            .expect(response, conflict_status, 60, "a conflicting resend")
            .await;

        // 404: an event the dialect does not have; 405: another method.
        let unknown = format!("{}/serviceOrderTeleportEvent", seller.base());
        let response = send(unknown, valid.to_string(), JSON, seller_key.clone())
            .await
            .unwrap();
        seller.expect(response, 404, 404, "an unknown event").await;
        let response = app
            .client
            .get(format!("{}{path}", app.public_base))
            .send()
            .await
            .unwrap();
        seller.expect(response, 405, 405, "GET").await;

        // 413: a body over the limit.
        let mut large = valid.clone();
        large["padding"] = json!("x".repeat(10_000));
        let response = send(path.clone(), large.to_string(), JSON, seller_key.clone())
            .await
            .unwrap();
        seller
            .expect(response, 413, 413, "a body over the limit")
            .await;
    }
    // Only the accepted events were stored: one valid and one slow-1 per dialect.
    assert_eq!(app.stored_events().await.len(), Seller::ALL.len() * 2);
}

#[tokio::test]
async fn a_tmf_event_without_an_event_id_is_keyed_by_its_content() {
    let app = spawn_app().await;
    let mut event = tmf_event(
        "unused",
        "ServiceOrderCreateEvent",
        "2026-11-30T10:00:00Z",
        tmf_order("SO-keyless", "acknowledged", "acknowledged"),
    );
    event.as_object_mut().unwrap().remove("eventId");
    let path = format!("{TMF_V4}/serviceOrderCreateEvent");
    assert_eq!(post_json(&app, &path, &event).await.status().as_u16(), 201);
    // The same content again, keys in another order: a duplicate, answered the same.
    let pairs: Vec<String> = event
        .as_object()
        .unwrap()
        .iter()
        .rev()
        .map(|(key, value)| format!("{}: {value}", Value::from(key.as_str())))
        .collect();
    let text = format!("{{ {} }}", pairs.join(",\n  "));
    assert_ne!(text, event.to_string());
    let again = app
        .post_raw_to(
            &format!("{}{path}", app.public_base),
            text,
            Some("application/json"),
        )
        .await;
    assert_eq!(again.status().as_u16(), 201);
    // Other content is another event.
    event["eventTime"] = json!("2026-11-30T10:00:01Z");
    assert_eq!(post_json(&app, &path, &event).await.status().as_u16(), 201);
    let stored = app.stored_events().await;
    assert_eq!(stored.len(), 2);
    assert!(
        stored
            .iter()
            .all(|record| record.event_id.as_str().starts_with("sha256:")),
        "{stored:?}"
    );
}

#[tokio::test]
async fn a_sink_is_told_each_events_dialect_and_can_take_only_some_dialects() {
    let (all, tmf_only) = (
        WebhookReceiver::start(200).await,
        WebhookReceiver::start(200).await,
    );
    let app = spawn_app_with_file(&format!(
        "[sinks.all]\ntype = \"http\"\nurl = \"{}\"\n\
         [sinks.tmf]\ntype = \"http\"\nurl = \"{}\"\ndialects = [\"tmf641-v4\"]\n",
        all.url, tmf_only.url
    ))
    .await;
    let tmf = tmf_event(
        "sink-tmf",
        "ServiceOrderCreateEvent",
        "2026-11-30T10:00:00Z",
        tmf_order("SO-sink", "acknowledged", "acknowledged"),
    );
    let path = format!("{TMF_V4}/serviceOrderCreateEvent");
    assert_eq!(post_json(&app, &path, &tmf).await.status().as_u16(), 201);
    let mef = json!({"eventId": "sink-mef", "eventTime": "2026-11-30T10:01:00Z",
        "eventType": "serviceOrderStateChangeEvent", "event": {"id": "SO-sink", "state": "inProgress"}});
    let path = format!("{MEF_V6}/serviceOrderStateChangeEvent");
    assert_eq!(post_json(&app, &path, &mef).await.status().as_u16(), 204);

    let seen = all
        .wait_for("both events", |seen| {
            seen.iter().filter(|received| received.delivered()).count() >= 2
        })
        .await;
    let dialects: std::collections::BTreeMap<String, String> = seen
        .iter()
        .map(|received| (received.event_id.clone(), received.dialect.clone()))
        .collect();
    assert_eq!(dialects["sink-tmf"], "tmf641-v4");
    assert_eq!(dialects["sink-mef"], "mef-legato-v6");
    let seen = tmf_only
        .wait_for("the TMF641 event", |seen| {
            seen.iter().any(|received| received.delivered())
        })
        .await;
    assert!(
        seen.iter().all(|received| received.event_id == "sink-tmf"),
        "{seen:?}"
    );
    // The MEF event was never queued for the TMF641-only sink.
    let (_, event) = app.admin_get("/api/v1/events/sink-mef").await;
    let sinks: Vec<&str> = event["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|delivery| delivery["sink"].as_str().unwrap())
        .collect();
    assert_eq!(sinks, ["all"], "{event}");
}
