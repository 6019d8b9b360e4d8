//! A webhook sink proves who it is as its receiver asks: `bearer_token`, `basic`, or a token
//! from OAuth2's client-credentials grant, kept while it lasts and asked for again when the
//! receiver refuses it. The settings are those of a seller API (`config::http_auth`).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;

use crate::helpers::*;

#[tokio::test]
async fn a_webhook_sink_sends_its_bearer_token_or_basic_login() {
    let (bearer, basic) = (
        WebhookReceiver::start(200).await,
        WebhookReceiver::start(200).await,
    );
    let app = spawn_app_with_file(&format!(
        r#"
[sinks.bearer]
type = "http"
url = "{}"
bearer_token = "s3cret-token"

[sinks.basic]
type = "http"
url = "{}"
basic = {{ user = "oss", password = "pa55" }}
"#,
        bearer.url, basic.url
    ))
    .await;
    let event = onap_lifecycle("SO-auth", 1).remove(0);
    assert_eq!(app.post(&event).await.status().as_u16(), 201);
    let id: BTreeSet<String> = [event["eventId"].as_str().unwrap().to_owned()].into();
    let seen = bearer.until_delivered(&id).await;
    assert_eq!(seen[0].authorization, "Bearer s3cret-token");
    let seen = basic.until_delivered(&id).await;
    let expected = base64::engine::general_purpose::STANDARD.encode("oss:pa55");
    assert_eq!(seen[0].authorization, format!("Basic {expected}"));
}

/// A token endpoint and a receiver that takes the tokens it issued and not revoked.
#[derive(Default)]
struct Issuer {
    issued: Vec<String>,
    revoked: BTreeSet<String>,
    /// Each request to the receiver: the token it came with and the status it got.
    requests: Vec<(String, u16)>,
}

type Shared = Arc<Mutex<Issuer>>;

async fn token(
    State(issuer): State<Shared>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let client = base64::engine::general_purpose::STANDARD.encode("listener:cl1ent-secret");
    let authorized = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        == Some(format!("Basic {client}").as_str());
    if !authorized || !body.contains("grant_type=client_credentials") {
        return (StatusCode::UNAUTHORIZED, String::new());
    }
    let mut issuer = issuer.lock().unwrap();
    let value = format!("tok-{}", issuer.issued.len() + 1);
    issuer.issued.push(value.clone());
    (
        StatusCode::OK,
        serde_json::json!({"access_token": value, "token_type": "Bearer", "expires_in": 3600})
            .to_string(),
    )
}

async fn hook(State(issuer): State<Shared>, headers: HeaderMap) -> StatusCode {
    let mut issuer = issuer.lock().unwrap();
    let presented = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let status = if issuer.issued.contains(&presented) && !issuer.revoked.contains(&presented) {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    issuer.requests.push((presented, status.as_u16()));
    status
}

/// Serves `/token` and `/hook` on port 0; the shared state, the base URL and the server.
async fn start_issuer() -> (Shared, String, tokio::task::JoinHandle<()>) {
    let issuer: Shared = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route("/token", axum::routing::post(token))
        .route("/hook", axum::routing::post(hook))
        .with_state(issuer.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (issuer, base, server)
}

/// `[sinks.oss]`: a webhook at `{base}/hook` that logs in at `{base}/token` with
/// `client_secret`, retried every 100 ms, with `extra` settings.
fn oauth2_sink(base: &str, client_secret: &str, extra: &str) -> String {
    format!(
        r#"
[sinks.oss]
type = "http"
url = "{base}/hook"
retry_schedule = ["100ms"]
{extra}
oauth2 = {{ token_url = "{base}/token", client_id = "listener", client_secret = "{client_secret}" }}
"#
    )
}

#[tokio::test]
async fn an_oauth2_token_is_kept_while_it_lasts_and_asked_for_again_when_refused() {
    let (issuer, base, server) = start_issuer().await;
    let app = spawn_app_with_file(&oauth2_sink(&base, "cl1ent-secret", "")).await;
    let events = onap_lifecycle("SO-oauth2", 3);
    let delivered = async |count: usize| {
        when_outbox_changes(&app.store, "deliveries", async || {
            let statuses = app.store.sink_statuses().await.unwrap();
            statuses
                .iter()
                .any(|status| status.delivered == count as u64)
                .then_some(())
        })
        .await;
    };
    for event in &events[..2] {
        assert_eq!(app.post(event).await.status().as_u16(), 201);
    }
    delivered(2).await;
    {
        let issuer = issuer.lock().unwrap();
        assert_eq!(issuer.issued, ["tok-1"], "one token for both deliveries");
        assert_eq!(
            issuer.requests,
            [("tok-1".to_owned(), 200), ("tok-1".to_owned(), 200)]
        );
    }

    // The receiver stops taking the token before it expires: the sink asks for a new one.
    issuer.lock().unwrap().revoked.insert("tok-1".to_owned());
    assert_eq!(app.post(&events[2]).await.status().as_u16(), 201);
    delivered(3).await;
    let issuer = issuer.lock().unwrap();
    assert_eq!(issuer.issued, ["tok-1", "tok-2"]);
    assert_eq!(
        issuer.requests[2..],
        [("tok-1".to_owned(), 401), ("tok-2".to_owned(), 200)]
    );
    server.abort();
}

#[tokio::test]
async fn a_token_endpoint_that_refuses_the_client_is_named_in_the_deliverys_error() {
    let (issuer, base, server) = start_issuer().await;
    let app = spawn_app_with_file(&oauth2_sink(&base, "wrong", "retry_horizon = \"300ms\"")).await;
    let event = onap_lifecycle("SO-oauth2-refused", 1).remove(0);
    assert_eq!(app.post(&event).await.status().as_u16(), 201);
    when_outbox_changes(&app.store, "a dead letter", async || {
        let statuses = app.store.sink_statuses().await.unwrap();
        statuses.iter().any(|status| status.dead == 1).then_some(())
    })
    .await;
    let error = app.dead_letter_error("oss").await;
    assert!(
        error.contains("HTTP sink: no OAuth2 token")
            && error.contains("the OAuth2 token endpoint answered 401")
            && !error.contains("wrong"),
        "{error}"
    );
    assert!(
        issuer.lock().unwrap().requests.is_empty(),
        "nothing sent without a token"
    );
    server.abort();
}

#[tokio::test]
async fn a_login_on_a_broker_sink_or_two_logins_on_one_are_refused_at_the_start() {
    for (toml, expected) in [
        (
            "[sinks.bus]\ntype = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nbearer_token = \"t\"\n",
            "bearer_token, basic and oauth2 are for http sinks",
        ),
        (
            "[sinks.hook]\ntype = \"http\"\nurl = \"http://127.0.0.1:9/\"\nbearer_token = \"t\"\n\
             basic = { user = \"u\", password = \"p\" }\n",
            "give one of bearer_token, basic and oauth2",
        ),
    ] {
        let (_dir, message) = config_error(toml);
        assert!(message.contains(expected), "{message}");
    }
}
