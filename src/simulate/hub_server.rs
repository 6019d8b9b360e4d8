//! The simulator's own Hub API, in the dialect it plays (`{base}/hub`, as `hub::dialect` says),
//! so that `order-listener hub subscribe` and a buyer's own tooling can be tested before the
//! seller is live. Subscriptions live in memory. Beyond each dialect's spec, every hub here
//! also lists its subscriptions (`GET /hub`, ONAP's) and shows one (`GET /hub/{id}`, which
//! TMF641 v4 does not define), so that a test can look.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::domain::envelope::{Dialect, Family};
use crate::hub::Hub;
use crate::hub::dialect::{base_path, read_subscription, subscription_answer};

/// The subscriptions, shared by the server and the simulator.
#[derive(Clone)]
pub struct Subscriptions {
    dialect: Dialect,
    hubs: Arc<Mutex<BTreeMap<String, Hub>>>,
    count: watch::Sender<usize>,
}

impl Default for Subscriptions {
    fn default() -> Self {
        Subscriptions::new(Dialect::Onap)
    }
}

impl Subscriptions {
    /// No subscription yet, at a `dialect` hub.
    pub fn new(dialect: Dialect) -> Subscriptions {
        Subscriptions {
            dialect,
            hubs: Arc::default(),
            count: watch::Sender::new(0),
        }
    }

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

    fn href(&self, id: &str) -> String {
        format!("{}/hub/{id}", base_path(self.dialect))
    }

    fn answer(&self, hub: &Hub) -> Value {
        subscription_answer(
            self.dialect,
            &hub.id,
            &hub.callback,
            &hub.query,
            &self.href(&hub.id),
        )
    }

    /// An error in the dialect's shape.
    fn error(&self, status: StatusCode, message: &str) -> Response {
        let reason = status.canonical_reason().unwrap_or("Error");
        let body = match self.dialect.family() {
            Family::Onap => json!({"code": status.as_u16(), "message": message}),
            Family::Tmf => json!({
                "code": status.as_u16().to_string(), "reason": reason, "message": message,
                "status": status.as_u16().to_string(),
            }),
            Family::Mef => {
                let code = match status {
                    StatusCode::BAD_REQUEST => "invalidBody",
                    StatusCode::NOT_FOUND => "notFound",
                    _ => "internalError",
                };
                json!({"code": code, "reason": reason, "message": message})
            }
        };
        (status, axum::Json(body)).into_response()
    }
}

async fn create(State(subscriptions): State<Subscriptions>, body: axum::body::Bytes) -> Response {
    let request = match read_subscription(subscriptions.dialect, &body) {
        Ok(request) => request,
        Err(why) => return subscriptions.error(StatusCode::BAD_REQUEST, &why),
    };
    let hub = Hub {
        id: uuid::Uuid::new_v4().to_string(),
        callback: request.callback,
        query: request.query,
    };
    let Ok(mut hubs) = subscriptions.hubs.lock() else {
        return subscriptions.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the hub state is poisoned",
        );
    };
    hubs.insert(hub.id.clone(), hub.clone());
    subscriptions.changed(&hubs);
    drop(hubs);
    tracing::info!(id = %hub.id, callback = %hub.callback, query = %hub.query, "subscription created");
    let mut response =
        (StatusCode::CREATED, axum::Json(subscriptions.answer(&hub))).into_response();
    if let Ok(location) = HeaderValue::try_from(subscriptions.href(&hub.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

async fn list(State(subscriptions): State<Subscriptions>) -> Response {
    let all: Vec<Value> = subscriptions
        .all()
        .iter()
        .map(|hub| subscriptions.answer(hub))
        .collect();
    axum::Json(all).into_response()
}

async fn show(State(subscriptions): State<Subscriptions>, Path(id): Path<String>) -> Response {
    let hub = subscriptions
        .hubs
        .lock()
        .ok()
        .and_then(|hubs| hubs.get(&id).cloned());
    match hub {
        Some(hub) => axum::Json(subscriptions.answer(&hub)).into_response(),
        None => subscriptions.error(StatusCode::NOT_FOUND, "no such subscription"),
    }
}

async fn delete(State(subscriptions): State<Subscriptions>, Path(id): Path<String>) -> Response {
    let Ok(mut hubs) = subscriptions.hubs.lock() else {
        return subscriptions.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the hub state is poisoned",
        );
    };
    match hubs.remove(&id) {
        Some(_) => {
            subscriptions.changed(&hubs);
            StatusCode::NO_CONTENT.into_response()
        }
        None => {
            drop(hubs);
            subscriptions.error(StatusCode::NOT_FOUND, "no such subscription")
        }
    }
}

/// The Hub API's routes, under the dialect's base path.
pub fn router(subscriptions: Subscriptions) -> Router {
    let base = base_path(subscriptions.dialect);
    Router::new()
        .route(&format!("{base}/hub"), get(list).post(create))
        .route(&format!("{base}/hub/{{id}}"), get(show).delete(delete))
        .with_state(subscriptions)
}
