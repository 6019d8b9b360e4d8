//! The simulator's own Hub API (`/nbi/api/v4/hub`), so that `order-listener hub subscribe` and
//! a buyer's own tooling can be tested before the seller is live. Subscriptions live in memory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::watch;

use crate::hub::{BASE_PATH, Hub, HubIn};

/// The subscriptions, shared by the server and the simulator.
#[derive(Clone)]
pub struct Subscriptions {
    hubs: Arc<Mutex<BTreeMap<String, Hub>>>,
    count: watch::Sender<usize>,
}

impl Default for Subscriptions {
    fn default() -> Self {
        Subscriptions {
            hubs: Arc::default(),
            count: watch::Sender::new(0),
        }
    }
}

impl Subscriptions {
    /// Every subscription now.
    pub fn all(&self) -> Vec<Hub> {
        self.hubs
            .lock()
            .map(|hubs| hubs.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Waits until at least `wanted` subscriptions exist.
    pub async fn wait_for(&self, wanted: usize) {
        let mut count = self.count.subscribe();
        let _ = count.wait_for(|count| *count >= wanted).await;
    }

    fn changed(&self, hubs: &BTreeMap<String, Hub>) {
        self.count.send_replace(hubs.len());
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({"code": status.as_u16(), "message": message});
    (status, axum::Json(body)).into_response()
}

async fn create(State(subscriptions): State<Subscriptions>, body: axum::body::Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<HubIn>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the body must be {\"callback\": URL, \"query\": \"eventType=…\"}",
        );
    };
    if reqwest::Url::parse(&request.callback).is_err() {
        return error(StatusCode::BAD_REQUEST, "callback must be an absolute URL");
    }
    let hub = Hub {
        id: uuid::Uuid::new_v4().to_string(),
        callback: request.callback,
        query: request.query,
    };
    let Ok(mut hubs) = subscriptions.hubs.lock() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the hub state is poisoned",
        );
    };
    hubs.insert(hub.id.clone(), hub.clone());
    subscriptions.changed(&hubs);
    tracing::info!(id = %hub.id, callback = %hub.callback, query = %hub.query, "subscription created");
    let mut response = (StatusCode::CREATED, axum::Json(&hub)).into_response();
    if let Ok(location) = HeaderValue::try_from(format!("{BASE_PATH}/hub/{}", hub.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

async fn list(State(subscriptions): State<Subscriptions>) -> Response {
    axum::Json(subscriptions.all()).into_response()
}

async fn show(State(subscriptions): State<Subscriptions>, Path(id): Path<String>) -> Response {
    let hub = subscriptions
        .hubs
        .lock()
        .ok()
        .and_then(|hubs| hubs.get(&id).cloned());
    match hub {
        Some(hub) => axum::Json(hub).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such subscription"),
    }
}

async fn delete(State(subscriptions): State<Subscriptions>, Path(id): Path<String>) -> Response {
    let Ok(mut hubs) = subscriptions.hubs.lock() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the hub state is poisoned",
        );
    };
    match hubs.remove(&id) {
        Some(_) => {
            subscriptions.changed(&hubs);
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(StatusCode::NOT_FOUND, "no such subscription"),
    }
}

/// The Hub API's routes.
pub fn router(subscriptions: Subscriptions) -> Router {
    Router::new()
        .route(&format!("{BASE_PATH}/hub"), get(list).post(create))
        .route(&format!("{BASE_PATH}/hub/{{id}}"), get(show).delete(delete))
        .with_state(subscriptions)
}
