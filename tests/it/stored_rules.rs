//! Events stored under looser checks than today's come back whole: a sender's resend of one is
//! the duplicate it is, not a refusal, and `import` takes it from an export. Three checks were
//! added after releases that stored such events: epoch numbers below 1973 (seconds, not
//! milliseconds), MEF's own state lists, and a leading byte-order mark.

use bytes::Bytes;
use order_listener::domain::envelope::{Dialect, EventType, ParseOptions, parse};
use order_listener::store::NewEvent;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::store_contract::mef_v6_state_change;

const MEF_V6: &str = "/mefApi/legato/serviceOrderingNotification/v6/listener";
const ONAP_JSON: &str = "application/json;charset=utf-8";
const MEF_JSON: &str = "application/json";

/// One body an earlier release stored, where today's listener refuses it as new.
struct OldBody {
    what: &'static str,
    dialect: Dialect,
    /// The path's event (MEF), or none (ONAP).
    kind: Option<EventType>,
    path: String,
    content_type: &'static str,
    bytes: Vec<u8>,
}

fn old_bodies() -> Vec<OldBody> {
    let mut seconds = onap_creation("old-seconds", "SO-old-1", 2);
    seconds["eventDate"] = json!(1553501336);
    let mut marked = b"\xEF\xBB\xBF".to_vec();
    marked.extend(
        onap_creation("old-bom", "SO-old-2", 2)
            .to_string()
            .into_bytes(),
    );
    let cancelling = mef_v6_state_change("old-mef", "SO-old-3", "assessingCancellation");
    let kind = EventType::ServiceOrderStateChangeEvent;
    vec![
        OldBody {
            what: "epoch seconds",
            dialect: Dialect::Onap,
            kind: None,
            path: String::new(),
            content_type: ONAP_JSON,
            bytes: seconds.to_string().into_bytes(),
        },
        OldBody {
            what: "a byte-order mark",
            dialect: Dialect::Onap,
            kind: None,
            path: String::new(),
            content_type: ONAP_JSON,
            bytes: marked,
        },
        OldBody {
            what: "a TMF641 state on a MEF order",
            dialect: Dialect::MefLegatoV6,
            kind: Some(kind),
            path: format!("{MEF_V6}/serviceOrderStateChangeEvent"),
            content_type: MEF_JSON,
            bytes: cancelling.to_string().into_bytes(),
        },
    ]
}

/// `body` as an earlier release stored it: read with its looser checks.
fn as_stored(body: &OldBody) -> NewEvent {
    let options = ParseOptions {
        as_stored: true,
        ..ParseOptions::default()
    };
    let raw = Bytes::from(body.bytes.clone());
    NewEvent {
        notification: parse(body.dialect, body.kind, raw, options)
            .unwrap_or_else(|error| panic!("{}: {error}", body.what)),
        received_at: chrono::Utc::now(),
        sender: Some("192.0.2.1".into()),
        client: None,
        trace_context: None,
    }
}

async fn post(app: &TestApp, body: &OldBody, bytes: Vec<u8>) -> reqwest::Response {
    let url = match body.dialect {
        Dialect::Onap => app.listener_url.clone(),
        _ => format!("{}{}", app.public_base, body.path),
    };
    app.post_raw_to(&url, bytes, Some(body.content_type)).await
}

async fn stored_count(app: &TestApp) -> usize {
    let (status, page) = app.admin_get("/api/v1/events?limit=100").await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_resend_of_an_event_stored_under_looser_checks_is_a_duplicate_not_a_refusal() {
    let app = spawn_app().await;
    let bodies = old_bodies();
    for body in &bodies {
        // As new, each is refused by today's checks.
        let response = post(&app, body, body.bytes.clone()).await;
        assert!(
            response.status().is_client_error(),
            "{}: {}",
            body.what,
            response.status()
        );
    }
    assert_eq!(stored_count(&app).await, 0);
    for body in &bodies {
        app.store.append(as_stored(body)).await.unwrap();
    }
    for body in &bodies {
        let response = post(&app, body, body.bytes.clone()).await;
        let status = response.status().as_u16();
        let echoed = response.bytes().await.unwrap();
        match body.dialect {
            // ONAP's answer echoes the stored body.
            Dialect::Onap => {
                assert_eq!(status, 201, "{}", body.what);
                assert_eq!(echoed.as_ref(), &body.bytes[..], "{}", body.what);
            }
            _ => assert_eq!(status, 204, "{}", body.what),
        }
    }
    assert_eq!(
        stored_count(&app).await,
        bodies.len(),
        "nothing stored twice"
    );

    // The same eventId with another payload is still refused by today's checks.
    let mut other: Value = serde_json::from_slice(&bodies[0].bytes).unwrap();
    other["event"]["state"] = json!("completed");
    let error = assert_error(
        post(&app, &bodies[0], other.to_string().into_bytes()).await,
        400,
        24,
    )
    .await;
    assert_eq!(error["referenceError"], "#/eventDate", "{error}");
    assert_eq!(stored_count(&app).await, bodies.len());
}

#[tokio::test]
async fn an_export_holding_events_stored_under_looser_checks_imports_whole() {
    let app = spawn_app().await;
    let bodies = old_bodies();
    for body in &bodies {
        app.store.append(as_stored(body)).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let source = app.data_dir.to_str().unwrap().to_owned();
    let (ok, exported, stderr) = run_cli(&["export", "--data-dir", &source]);
    assert!(ok, "{stderr}");
    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, &exported).unwrap();
    let target = dir.path().join("target");
    let (ok, stdout, stderr) = run_cli(&[
        "import",
        file.to_str().unwrap(),
        "--data-dir",
        target.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}{stderr}");
    assert!(!stderr.contains("line "), "no line refused: {stderr}");
    for body in &bodies {
        let id = as_stored(body).notification.event_id;
        let (ok, raw, stderr) = run_cli(&[
            "events",
            "show",
            id.as_str(),
            "--raw",
            "--data-dir",
            target.to_str().unwrap(),
        ]);
        assert!(ok, "{}: {stderr}", body.what);
        assert_eq!(
            raw.as_bytes(),
            &body.bytes[..],
            "{}: byte for byte",
            body.what
        );
    }
}
