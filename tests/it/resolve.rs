//! References resolved from the seller: MEF LSO Legato events carry only `{id, href}`, and the
//! listener fetches each order from the seller's Service Ordering API through the outbox (the
//! internal sink `seller-api`), stores it as the event's snapshot and merges it into the
//! projection. The seller's API is a real HTTP server in the test; the store is touched on
//! both backends.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, Ordering};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use order_listener::domain::envelope::{Dialect, EventType, ItemFact, OrderFacts};
use order_listener::domain::state::State as OrderState;
use order_listener::store::{EventFilter, OrderFilter, PruneLimits, SinkStatus, Store};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::helpers::*;
use crate::store_contract::{backends, dialect_event, fresh_postgres_schema, postgres_url};

const MEF_V6: &str = "/mefApi/legato/serviceOrderingNotification/v6/listener";
/// Where the fake seller serves its Service Ordering API.
const API_ROOT: &str = "/mefApi/legato/serviceOrdering/v6";

/// What the fake seller wants in `Authorization`.
#[derive(Debug, Clone)]
enum Auth {
    None,
    /// Exactly this header value.
    Header(String),
    /// A token it issued at `/oauth/token` to this client (a Basic header value), for `scope`.
    OAuth2 {
        client: String,
        scope: String,
    },
}

/// One request the fake seller got.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    authorization: Option<String>,
    answered: u16,
}

struct SellerState {
    auth: Auth,
    /// What a GET of an order answers once its credentials are right (200: the order).
    answer: AtomicU16,
    /// What the token endpoint answers (200: a token).
    token_answer: AtomicU16,
    orders: Mutex<BTreeMap<String, Value>>,
    /// Where a GET of an order is redirected, when set.
    redirect: Mutex<Option<String>>,
    issued: Mutex<Vec<String>>,
    seen: watch::Sender<Vec<Seen>>,
}

/// A seller's Service Ordering API on port 0, with an OAuth2 token endpoint.
struct FakeSeller {
    /// `http://127.0.0.1:PORT`.
    origin: String,
    state: Arc<SellerState>,
    server: JoinHandle<()>,
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

async fn serve_seller(
    State(state): State<Arc<SellerState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let path = uri.path().to_owned();
    let response = answer_seller(&state, &method, &path, authorization.as_deref(), &body);
    let seen = Seen {
        method,
        path,
        authorization,
        answered: response.status().as_u16(),
    };
    state.seen.send_modify(|all| all.push(seen));
    response
}

fn answer_seller(
    state: &SellerState,
    method: &Method,
    path: &str,
    authorization: Option<&str>,
    body: &[u8],
) -> Response {
    let status = |code: u16| StatusCode::from_u16(code).unwrap();
    if *method == Method::POST && path == "/oauth/token" {
        let Auth::OAuth2 { client, scope } = &state.auth else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let form = String::from_utf8_lossy(body);
        let expected = format!("grant_type=client_credentials&scope={scope}");
        if authorization != Some(client.as_str()) || form != expected {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let answer = state.token_answer.load(Ordering::SeqCst);
        if answer != 200 {
            return status(answer).into_response();
        }
        let token = format!("access-s3cret-{}", uuid::Uuid::new_v4().simple());
        state.issued.lock().unwrap().push(token.clone());
        let body = json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600});
        return axum::Json(body).into_response();
    }
    let Some(id) = path.split("/serviceOrder/").nth(1) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if *method != Method::GET {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let allowed = match &state.auth {
        Auth::None => true,
        Auth::Header(expected) => authorization == Some(expected.as_str()),
        Auth::OAuth2 { .. } => state
            .issued
            .lock()
            .unwrap()
            .iter()
            .any(|token| authorization == Some(format!("Bearer {token}").as_str())),
    };
    if !allowed {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let answer = state.answer.load(Ordering::SeqCst);
    if answer != 200 {
        return status(answer).into_response();
    }
    if let Some(location) = state.redirect.lock().unwrap().clone() {
        return (StatusCode::FOUND, [("location", location)]).into_response();
    }
    match state.orders.lock().unwrap().get(id) {
        Some(order) => (
            [("content-type", "application/json;charset=utf-8")],
            order.to_string(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

impl FakeSeller {
    async fn start(auth: Auth) -> FakeSeller {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(SellerState {
            auth,
            answer: AtomicU16::new(200),
            token_answer: AtomicU16::new(200),
            orders: Mutex::new(BTreeMap::new()),
            redirect: Mutex::new(None),
            issued: Mutex::new(Vec::new()),
            seen: watch::channel(Vec::new()).0,
        });
        let router = axum::Router::new()
            .fallback(serve_seller)
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        FakeSeller {
            origin,
            state,
            server,
        }
    }

    /// The root of its Service Ordering API.
    fn base_url(&self) -> String {
        format!("{}{API_ROOT}", self.origin)
    }

    /// Where it serves `order_id`.
    fn href(&self, order_id: &str) -> String {
        format!("{}/serviceOrder/{order_id}", self.base_url())
    }

    /// Serves `order` (a ServiceOrder with its `id`) from now on.
    fn put(&self, order: Value) {
        let id = order["id"].as_str().unwrap().to_owned();
        self.state.orders.lock().unwrap().insert(id, order);
    }

    /// From now on, a GET of an order answers `status` (200: the order).
    fn answer(&self, status: u16) {
        self.state.answer.store(status, Ordering::SeqCst);
    }

    fn requests(&self) -> Vec<Seen> {
        self.state.seen.borrow().clone()
    }
}

impl Drop for FakeSeller {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A MEF ServiceOrder as the seller's API answers it.
fn service_order(order_id: &str, state: &str, items: &[(&str, &str)]) -> Value {
    let mut order = json!({
        "id": order_id,
        "href": format!("{API_ROOT}/serviceOrder/{order_id}"),
        "externalId": format!("BSS-{order_id}"),
        "orderDate": "2026-11-30T09:00:00.000Z",
        "state": state,
        "serviceOrderItem": items.iter().map(|(id, item_state)| json!({
            "id": id, "action": "add", "state": item_state,
            "service": {"serviceSpecification": {"id": "carrier-ethernet"}}
        })).collect::<Vec<_>>()
    });
    if state == "completed" {
        order["completionDate"] = json!("2026-11-30T12:00:00.000Z");
    }
    order
}

/// A MEF v6 event of `kind` about `order_id` with its `href`, at `minute` past ten.
fn mef_event(kind: &str, event_id: &str, minute: u32, payload: Value) -> Value {
    json!({
        "eventId": event_id,
        "eventTime": format!("2026-11-30T10:{minute:02}:00.000Z"),
        "eventType": kind,
        "event": payload
    })
}

async fn post_mef(app: &TestApp, body: &Value) {
    let kind = body["eventType"].as_str().unwrap();
    let response = app
        .post_raw_to(
            &format!("{}{MEF_V6}/{kind}", app.public_base),
            body.to_string(),
            Some("application/json"),
        )
        .await;
    assert_eq!(response.status().as_u16(), 204, "{kind}");
}

/// The MEF v6 sequence of one order: its creation, item 1 in progress, the order in progress.
fn first_three(order_id: &str, href: &str) -> Vec<Value> {
    vec![
        mef_event(
            "serviceOrderCreateEvent",
            &format!("{order_id}-create"),
            0,
            json!({"id": order_id, "href": href}),
        ),
        mef_event(
            "serviceOrderItemStateChangeEvent",
            &format!("{order_id}-item-1"),
            1,
            json!({"id": order_id, "orderItemId": "1", "href": href, "state": "inProgress"}),
        ),
        mef_event(
            "serviceOrderStateChangeEvent",
            &format!("{order_id}-progress"),
            2,
            json!({"id": order_id, "href": href, "state": "inProgress"}),
        ),
    ]
}

/// The `seller-api` sink's outbox.
async fn fetches(store: &Store) -> SinkStatus {
    store
        .sink_statuses()
        .await
        .unwrap()
        .into_iter()
        .find(|status| status.name.as_str() == "seller-api")
        .unwrap_or_else(|| SinkStatus {
            name: "seller-api".parse().unwrap(),
            pending: 0,
            delivered: 0,
            dead: 0,
            failing: 0,
            oldest_pending_at: None,
            disabled: None,
        })
}

/// Waits until the `seller-api` sink has made `count` fetches and has none pending.
async fn until_fetched(app: &TestApp, count: u64) {
    when_outbox_changes(&app.store, &format!("{count} fetches"), async || {
        let status = fetches(&app.store).await;
        (status.delivered == count && status.pending == 0).then_some(())
    })
    .await;
}

/// The configuration of one seller API `acme` at `seller`, with `extra` lines in its table,
/// retrying fetches at once.
fn seller_config(seller: &FakeSeller, extra: &str) -> String {
    format!(
        "[seller_apis.acme]\nbase_url = \"{}\"\n{extra}\n\
         [seller_fetch]\nretry_schedule = [\"100ms\"]\nretry_horizon = \"1h\"\n",
        seller.base_url()
    )
}

/// SQLite, and PostgreSQL in a fresh schema when configured: each as a `database_url`
/// override (`None`: the app's default SQLite file).
async fn databases() -> Vec<(&'static str, Option<String>)> {
    let mut databases = vec![("sqlite", None)];
    if let Some(url) = postgres_url() {
        databases.push(("postgres", Some(fresh_postgres_schema(&url).await)));
    }
    databases
}

async fn spawn_on(toml: &str, database: Option<String>) -> TestApp {
    spawn_app_from_file(toml, |config| {
        config.overrides(|overrides| overrides.database_url = database)
    })
    .await
}

async fn order(app: &TestApp, id: &str) -> Value {
    let (status, order) = app.admin_get(&format!("/api/v1/service-orders/{id}")).await;
    assert_eq!(status, 200, "{order}");
    order
}

/// `(id, state, action)` of each item, `-` for none.
fn items(order: &Value) -> Vec<(String, String, String)> {
    let text = |value: &Value| value.as_str().unwrap_or("-").to_owned();
    order["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                text(&item["id"]),
                text(&item["state"]),
                text(&item["action"]),
            )
        })
        .collect()
}

fn item(id: &str, state: &str, action: &str) -> (String, String, String) {
    (id.into(), state.into(), action.into())
}

#[tokio::test]
async fn a_mef_v6_sequence_ends_with_the_projection_holding_the_fetched_items_and_dates() {
    for (backend, database) in databases().await {
        let seller = FakeSeller::start(Auth::None).await;
        let href = seller.href("SO-1");
        seller.put(service_order(
            "SO-1",
            "acknowledged",
            &[("1", "acknowledged"), ("2", "acknowledged")],
        ));
        let app = spawn_on(&seller_config(&seller, ""), database).await;
        let events = first_three("SO-1", &href);
        for event in &events {
            post_mef(&app, event).await;
        }
        until_fetched(&app, 3).await;

        let projection = order(&app, "SO-1").await;
        assert_eq!(
            projection["externalId"], "BSS-SO-1",
            "{backend}: {projection}"
        );
        assert_eq!(projection["orderDate"], "2026-11-30T09:00:00.000Z");
        assert_eq!(projection["state"], "inProgress");
        assert_eq!(
            items(&projection),
            [item("1", "inProgress", "add"), item("2", "-", "add")],
            "{backend}: the fetched items, with the states only the events gave"
        );
        assert_eq!(projection["anomalies"], json!([]), "{backend}");

        // The seller completes the order; the last event says so and its fetch brings the
        // completion date. Item states still come from events only.
        seller.put(service_order(
            "SO-1",
            "completed",
            &[("1", "completed"), ("2", "completed")],
        ));
        let completed = mef_event(
            "serviceOrderStateChangeEvent",
            "SO-1-completed",
            3,
            json!({"id": "SO-1", "href": href, "state": "completed"}),
        );
        post_mef(&app, &completed).await;
        until_fetched(&app, 4).await;
        let projection = order(&app, "SO-1").await;
        assert_eq!(projection["state"], "completed", "{backend}");
        assert_eq!(
            projection["completionDateTime"], "2026-11-30T12:00:00.000Z",
            "{backend}: {projection}"
        );
        assert_eq!(
            items(&projection),
            [item("1", "inProgress", "add"), item("2", "-", "add")],
            "{backend}: a snapshot never gives an item a state the events did not"
        );

        // The stored projection row (the fold) agrees with the projection read from events.
        let summaries = app
            .store
            .orders(OrderFilter {
                limit: 10,
                ..OrderFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].item_count, 2, "{backend}");
        assert_eq!(summaries[0].external_id.as_deref(), Some("BSS-SO-1"));
        assert_eq!(summaries[0].state, Some(OrderState::Completed));

        // Each event keeps its body as received, and has its snapshot as the seller answered.
        let create_id = "SO-1-create".parse().unwrap();
        let (record, body) = app.store.event(&create_id).await.unwrap().unwrap();
        assert_eq!(body, Bytes::from(events[0].to_string()), "{backend}");
        let snapshot = app.store.snapshot(record.sequence).await.unwrap().unwrap();
        let answered: Value = serde_json::from_slice(&snapshot.body).unwrap();
        assert_eq!(answered["state"], "acknowledged", "{backend}");
        assert_eq!(snapshot.order_id.as_str(), "SO-1");

        // Every fetch followed the href, on the seller API's origin.
        let paths: Vec<String> = seller
            .requests()
            .iter()
            .map(|seen| format!("{} {} {}", seen.method, seen.path, seen.answered))
            .collect();
        let expected = format!("GET {API_ROOT}/serviceOrder/SO-1 200");
        assert_eq!(paths, vec![expected; 4], "{backend}");

        let metrics = app.metrics_text().await;
        assert!(
            metrics.contains(
                r#"order_listener_seller_fetches_total{seller="acme",outcome="fetched"} 4"#
            ),
            "{backend}: {metrics}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn with_the_seller_api_down_events_are_acknowledged_and_the_fetch_catches_up_when_it_is_back()
{
    for (backend, database) in databases().await {
        let seller = FakeSeller::start(Auth::None).await;
        seller.put(service_order("SO-2", "inProgress", &[("1", "inProgress")]));
        seller.answer(503);
        let app = spawn_on(&seller_config(&seller, ""), database).await;
        for event in first_three("SO-2", &seller.href("SO-2")) {
            post_mef(&app, &event).await;
        }
        assert_eq!(app.stored_events().await.len(), 3, "{backend}");
        let status = when_outbox_changes(&app.store, "a failed fetch", async || {
            let status = fetches(&app.store).await;
            (status.failing > 0).then_some(status)
        })
        .await;
        assert_eq!(
            (status.pending, status.delivered),
            (3, 0),
            "{backend}: every fetch waits, one order's one at a time"
        );
        let (_, sinks) = app.admin_get("/api/v1/sinks").await;
        let listed = sinks["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|sink| sink["name"] == "seller-api")
            .cloned();
        assert!(
            listed.is_some_and(|sink| sink["pending"] == 3),
            "{backend}: the admin API and the console show the sink: {sinks}"
        );
        // Meanwhile the projection holds what the events say.
        let projection = order(&app, "SO-2").await;
        assert_eq!(projection["externalId"], Value::Null, "{backend}");
        assert_eq!(items(&projection), [item("1", "inProgress", "-")]);
        let metrics = app.metrics_text().await;
        assert!(
            metrics.contains(
                r#"order_listener_seller_fetches_total{seller="acme",outcome="rejected"}"#
            ) && metrics.contains(r#"order_listener_outbox_pending{sink="seller-api"} 3"#),
            "{backend}: {metrics}"
        );

        seller.answer(200);
        until_fetched(&app, 3).await;
        let projection = order(&app, "SO-2").await;
        assert_eq!(projection["externalId"], "BSS-SO-2", "{backend}");
        assert_eq!(items(&projection), [item("1", "inProgress", "add")]);
        assert!(
            seller.requests().iter().any(|seen| seen.answered == 503),
            "{backend}: the seller was down at first"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn an_href_or_a_redirect_to_another_origin_is_not_followed() {
    let seller = FakeSeller::start(Auth::Header("Bearer seller-t0ken".into())).await;
    let elsewhere = FakeSeller::start(Auth::None).await;
    for fake in [&seller, &elsewhere] {
        fake.put(service_order(
            "SO-3",
            "acknowledged",
            &[("1", "acknowledged")],
        ));
    }
    let app = spawn_app_with_file(&seller_config(&seller, "bearer_token = \"seller-t0ken\"")).await;
    let create = mef_event(
        "serviceOrderCreateEvent",
        "SO-3-create",
        0,
        json!({"id": "SO-3", "href": elsewhere.href("SO-3")}),
    );
    post_mef(&app, &create).await;
    until_fetched(&app, 1).await;
    assert!(
        elsewhere.requests().is_empty(),
        "the other origin got {:?}",
        elsewhere.requests()
    );
    let seen = seller.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, format!("{API_ROOT}/serviceOrder/SO-3"));
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Bearer seller-t0ken")
    );
    assert_eq!(order(&app, "SO-3").await["externalId"], "BSS-SO-3");

    // Nor is a redirect to another origin: it is a failure, retried until the seller answers.
    for fake in [&seller, &elsewhere] {
        fake.put(service_order(
            "SO-4",
            "acknowledged",
            &[("1", "acknowledged")],
        ));
    }
    *seller.state.redirect.lock().unwrap() = Some(elsewhere.href("SO-4"));
    let create = mef_event(
        "serviceOrderCreateEvent",
        "SO-4-create",
        0,
        json!({"id": "SO-4", "href": seller.href("SO-4")}),
    );
    post_mef(&app, &create).await;
    when_outbox_changes(&app.store, "a redirected fetch", async || {
        (fetches(&app.store).await.failing > 0).then_some(())
    })
    .await;
    *seller.state.redirect.lock().unwrap() = None;
    until_fetched(&app, 2).await;
    assert!(
        elsewhere.requests().is_empty(),
        "the redirect was followed: {:?}",
        elsewhere.requests()
    );
    assert!(seller.requests().iter().any(|seen| seen.answered == 302));
    assert_eq!(order(&app, "SO-4").await["externalId"], "BSS-SO-4");
}

#[tokio::test]
async fn bearer_basic_and_oauth2_credentials_reach_their_seller_apis() {
    let bearer = FakeSeller::start(Auth::Header("Bearer b-t0ken".into())).await;
    let basic_seller = FakeSeller::start(Auth::Header(basic("buyer", "b-pa55"))).await;
    let oauth = FakeSeller::start(Auth::OAuth2 {
        client: basic("buyer-app", "c-s3cret"),
        scope: "serviceOrdering".into(),
    })
    .await;
    let sellers = [("SO-b", &bearer), ("SO-p", &basic_seller), ("SO-o", &oauth)];
    for (order_id, seller) in sellers {
        seller.put(service_order(
            order_id,
            "acknowledged",
            &[("1", "acknowledged")],
        ));
    }
    let toml = format!(
        "[seller_apis.bearer]\nbase_url = \"{}\"\nbearer_token = \"b-t0ken\"\n\
         [seller_apis.basic]\nbase_url = \"{}\"\nbasic = {{ user = \"buyer\", password = \"b-pa55\" }}\n\
         [seller_apis.oauth]\nbase_url = \"{}\"\n\
         oauth2 = {{ token_url = \"{}/oauth/token\", client_id = \"buyer-app\", client_secret = \"c-s3cret\", scope = \"serviceOrdering\" }}\n\
         [seller_fetch]\nretry_schedule = [\"100ms\"]\n",
        bearer.base_url(),
        basic_seller.base_url(),
        oauth.base_url(),
        oauth.origin,
    );
    let app = spawn_app_with_file(&toml).await;
    for (order_id, seller) in sellers {
        let create = mef_event(
            "serviceOrderCreateEvent",
            &format!("{order_id}-create"),
            0,
            json!({"id": order_id, "href": seller.href(order_id)}),
        );
        post_mef(&app, &create).await;
    }
    // A second event of the OAuth2 seller's order: its token is used again.
    let progress = mef_event(
        "serviceOrderStateChangeEvent",
        "SO-o-progress",
        1,
        json!({"id": "SO-o", "href": oauth.href("SO-o"), "state": "inProgress"}),
    );
    post_mef(&app, &progress).await;
    until_fetched(&app, 4).await;

    for (order_id, seller) in sellers {
        assert_eq!(
            order(&app, order_id).await["externalId"],
            format!("BSS-{order_id}")
        );
        let gets: Vec<Seen> = seller
            .requests()
            .into_iter()
            .filter(|seen| seen.method == Method::GET)
            .collect();
        assert!(
            !gets.is_empty() && gets.iter().all(|seen| seen.answered == 200),
            "{order_id}: every fetch was let in: {gets:?}"
        );
    }
    let tokens: Vec<Seen> = oauth
        .requests()
        .into_iter()
        .filter(|seen| seen.path == "/oauth/token")
        .collect();
    assert_eq!(tokens.len(), 1, "the token is kept: {tokens:?}");
    assert_eq!(tokens[0].answered, 200);
    let issued = oauth.state.issued.lock().unwrap().clone();
    assert!(
        oauth
            .requests()
            .iter()
            .filter(|seen| seen.method == Method::GET)
            .all(|seen| seen.authorization == Some(format!("Bearer {}", issued[0]))),
        "both fetches carried the issued token"
    );
}

#[tokio::test]
async fn secrets_never_appear_in_the_log_in_errors_or_in_dead_letters() {
    init();
    let refused_bearer = FakeSeller::start(Auth::Header("Bearer bearer-s3cret-7f1".into())).await;
    refused_bearer.answer(401);
    let forbidden_basic = FakeSeller::start(Auth::Header(basic("buyer", "basic-s3cret-9c2"))).await;
    forbidden_basic.answer(403);
    // A token is issued, but the seller then refuses it.
    let revoked = FakeSeller::start(Auth::OAuth2 {
        client: basic("app-c", "client-s3cret-4d8"),
        scope: "orders".into(),
    })
    .await;
    revoked.answer(401);
    // The token endpoint refuses the client.
    let no_token = FakeSeller::start(Auth::OAuth2 {
        client: basic("app-d", "client-s3cret-5e0"),
        scope: "orders".into(),
    })
    .await;
    no_token.state.token_answer.store(401, Ordering::SeqCst);
    let sellers = [
        ("SO-a", &refused_bearer),
        ("SO-b", &forbidden_basic),
        ("SO-c", &revoked),
        ("SO-d", &no_token),
    ];
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let toml = format!(
        "admin_token = \"{ADMIN_TOKEN}\"\n\
         [seller_apis.a]\nbase_url = \"{}\"\nbearer_token = \"bearer-s3cret-7f1\"\n\
         [seller_apis.b]\nbase_url = \"{}\"\nbasic = {{ user = \"buyer\", password = \"basic-s3cret-9c2\" }}\n\
         [seller_apis.c]\nbase_url = \"{}\"\n\
         oauth2 = {{ token_url = \"{}/oauth/token\", client_id = \"app-c\", client_secret = \"client-s3cret-4d8\", scope = \"orders\" }}\n\
         [seller_apis.d]\nbase_url = \"{}\"\n\
         oauth2 = {{ token_url = \"{}/oauth/token\", client_id = \"app-d\", client_secret = \"client-s3cret-5e0\", scope = \"orders\" }}\n\
         [seller_fetch]\nretry_schedule = [\"200ms\"]\nretry_horizon = \"2s\"\n",
        refused_bearer.base_url(),
        forbidden_basic.base_url(),
        revoked.base_url(),
        revoked.origin,
        no_token.base_url(),
        no_token.origin,
    );
    std::fs::write(&config, toml).unwrap();
    let data_dir = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let running = start_binary_logging(&data_dir, &config, &log);
    let public = reqwest::Url::parse(&running.listener_url).unwrap();
    let public_base = public.origin().ascii_serialization();
    let admin_base = running.admin_url();
    let client = reqwest::Client::new();
    for (order_id, seller) in sellers {
        let create = mef_event(
            "serviceOrderCreateEvent",
            &format!("{order_id}-create"),
            0,
            json!({"id": order_id, "href": seller.href(order_id)}),
        );
        let response = client
            .post(format!("{public_base}{MEF_V6}/serviceOrderCreateEvent"))
            .header("content-type", "application/json")
            .body(create.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 204);
    }
    let dead_letters = eventually("four dead fetches", async || {
        let (_, letters) = admin_json(&admin_base, "/api/v1/dead-letters?sink=seller-api").await;
        (letters["items"].as_array()?.len() == 4).then_some(letters)
    })
    .await;
    let errors: Vec<&str> = dead_letters["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|letter| letter["lastError"].as_str().unwrap_or_default())
        .collect();
    for expected in [
        "seller API a: answered 401 Unauthorized",
        "seller API b: answered 403 Forbidden",
        "seller API c: answered 401 Unauthorized",
        "seller API d: the OAuth2 token endpoint answered 401 Unauthorized",
    ] {
        assert!(
            errors.iter().any(|error| error.starts_with(expected)),
            "{expected} in {errors:?}"
        );
    }
    // Each secret did reach its seller, so that finding none below means something.
    let sent: String = sellers
        .iter()
        .flat_map(|(_, seller)| seller.requests())
        .filter_map(|seen| seen.authorization)
        .collect::<Vec<_>>()
        .join("\n");
    let issued = revoked.state.issued.lock().unwrap().clone();
    assert!(!issued.is_empty(), "seller c issued a token");
    let secrets = [
        "bearer-s3cret-7f1".to_owned(),
        basic("buyer", "basic-s3cret-9c2"),
        basic("app-c", "client-s3cret-4d8"),
        basic("app-d", "client-s3cret-5e0"),
        issued[0].clone(),
    ];
    for secret in &secrets {
        assert!(sent.contains(secret.as_str()), "{secret} was sent");
    }
    let sinks_list = run_cli(&[
        "sinks",
        "list",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);
    assert!(
        sinks_list.0 && sinks_list.1.contains("seller-api"),
        "{sinks_list:?}"
    );
    let letters_cli = run_cli(&[
        "dead-letters",
        "list",
        "--json",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);
    assert!(
        letters_cli.0 && letters_cli.1.contains("seller API a"),
        "{letters_cli:?}"
    );
    let metrics = client
        .get(format!("{admin_base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .contains(r#"order_listener_seller_fetches_total{seller="d",outcome="token_failed"}"#),
        "{metrics}"
    );
    drop(running);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("seller API b: answered 403 Forbidden"),
        "the failures are logged: {logged}"
    );
    let shown = [
        ("the log", logged),
        ("dead letters", dead_letters.to_string()),
        ("sinks list", format!("{sinks_list:?}")),
        ("dead-letters list", format!("{letters_cli:?}")),
        ("metrics", metrics),
    ];
    for (place, text) in &shown {
        for secret in secrets.iter().map(String::as_str).chain([
            "basic-s3cret-9c2",
            "client-s3cret-4d8",
            "client-s3cret-5e0",
            "access-s3cret-",
        ]) {
            assert!(!text.contains(secret), "{place} shows {secret}");
        }
    }
}

/// A MEF v6 creation of `order_id`, which says nothing but its id and href.
fn stored_creation(order_id: &str) -> order_listener::store::NewEvent {
    dialect_event(
        Dialect::MefLegatoV6,
        EventType::ServiceOrderCreateEvent,
        &json!({
            "eventId": format!("{order_id}-create"),
            "eventTime": "2026-11-30T10:00:00.000Z",
            "eventType": "serviceOrderCreateEvent",
            "event": {"id": order_id, "href": format!("https://seller.example/serviceOrder/{order_id}")}
        }),
    )
}

#[tokio::test]
async fn a_snapshot_changes_its_events_facts_and_the_fold_and_goes_with_its_event() {
    for backend in backends().await {
        let store = Store::open(&backend.storage, Default::default())
            .await
            .unwrap();
        let creation = stored_creation("SO-s");
        let raw = creation.notification.raw.clone();
        let order_listener::store::Appended::Stored { sequence } =
            store.append(creation).await.unwrap()
        else {
            panic!("{}: stored", backend.name)
        };
        let merged = OrderFacts {
            order_id: "SO-s".parse().unwrap(),
            state: Some(OrderState::Acknowledged),
            external_id: Some("BSS-s".into()),
            order_date: Some("2026-11-30T09:00:00Z".into()),
            completion_date_time: None,
            items: vec![ItemFact {
                id: "1".into(),
                state: None,
                action: Some("add".into()),
            }],
        };
        let answer = Bytes::from_static(br#"{"id":"SO-s","state":"acknowledged"}"#);
        store
            .record_snapshot(sequence, answer.clone(), merged.clone())
            .await
            .unwrap();
        // Fetched again (a replay): the snapshot is replaced.
        let again = Bytes::from_static(br#"{"id":"SO-s","state":"inProgress"}"#);
        store
            .record_snapshot(sequence, again.clone(), merged.clone())
            .await
            .unwrap();
        assert_eq!(
            store.snapshot(sequence).await.unwrap().unwrap().body,
            again,
            "{}",
            backend.name
        );
        let summaries = store
            .orders(OrderFilter {
                limit: 10,
                ..OrderFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(
            (summaries[0].item_count, summaries[0].external_id.as_deref()),
            (1, Some("BSS-s")),
            "{}: the fold is folded again",
            backend.name
        );
        assert_eq!(summaries[0].state, Some(OrderState::Acknowledged));
        let projection = store
            .order(&"SO-s".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(projection.timeline[0].facts, merged, "{}", backend.name);
        let (_, body) = store
            .event(&"SO-s-create".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(body, raw, "{}: the body is kept as received", backend.name);

        // A snapshot for an event of another order is refused and changes nothing.
        let mut other = merged.clone();
        other.order_id = "SO-x".parse().unwrap();
        assert!(
            store
                .record_snapshot(sequence, answer, other)
                .await
                .is_err()
        );
        assert_eq!(store.snapshot(sequence).await.unwrap().unwrap().body, again);

        // Retention takes the snapshot with its event.
        let limits = PruneLimits {
            events_before: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
            delivered_before: None,
        };
        let pruned = store.prune(limits, 100).await.unwrap();
        assert_eq!((pruned.events, pruned.orders), (1, 1), "{}", backend.name);
        assert!(store.snapshot(sequence).await.unwrap().is_none());
        let left = store
            .events(EventFilter {
                limit: 10,
                ..EventFilter::default()
            })
            .await
            .unwrap();
        assert!(left.is_empty(), "{}", backend.name);
        store.close().await;
    }
}
