//! The one webhook receiver of the tests, recording what it is sent.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::PATIENCE;

/// One request a [`WebhookReceiver`] got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// The body's `eventId`.
    pub event_id: String,
    /// The body's `event.id`, if any.
    pub order_id: Option<String>,
    /// The body's `eventDate`.
    pub event_date: String,
    /// The `webhook-id` header.
    pub webhook_id: String,
    /// The `Order-Listener-Dialect` header (empty when absent).
    pub dialect: String,
    /// The `Order-Listener-Source` header (empty when absent).
    pub source: String,
    /// Whether a `webhook-signature` (`v1,…`) came with it.
    pub signed: bool,
    /// The `traceparent` and `tracestate` headers (empty when absent).
    pub trace: (String, String),
    /// The `Authorization` header (empty when absent).
    pub authorization: String,
    /// What the receiver answered.
    pub answered: u16,
}

impl Received {
    /// Whether the receiver took it (answered 2xx).
    pub(crate) fn delivered(&self) -> bool {
        (200..300).contains(&self.answered)
    }
}

/// The one webhook receiver of the tests: on port 0, it answers every POST to `/hook` with the
/// status it is told and records every request, in arrival order. Stopped when dropped.
pub(crate) struct WebhookReceiver {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    answer: Arc<AtomicU16>,
    seen: watch::Receiver<Vec<Received>>,
    server: JoinHandle<()>,
}

#[derive(Clone)]
struct ReceiverState {
    answer: Arc<AtomicU16>,
    seen: Arc<watch::Sender<Vec<Received>>>,
}

async fn receive(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> StatusCode {
    let answered = state.answer.load(Ordering::SeqCst);
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let received = Received {
        event_id: event["eventId"].as_str().unwrap_or_default().to_owned(),
        order_id: event["event"]["id"].as_str().map(str::to_owned),
        event_date: event["eventDate"].as_str().unwrap_or_default().to_owned(),
        webhook_id: header("webhook-id"),
        dialect: header("order-listener-dialect"),
        source: header("order-listener-source"),
        signed: header("webhook-signature").starts_with("v1,"),
        trace: (header("traceparent"), header("tracestate")),
        authorization: header("authorization"),
        answered,
    };
    state.seen.send_modify(|seen| seen.push(received));
    StatusCode::from_u16(answered).expect("a valid status to answer with")
}

impl WebhookReceiver {
    /// Starts a receiver that answers `answer`.
    pub(crate) async fn start(answer: u16) -> WebhookReceiver {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("a free port");
        let url = format!(
            "http://{}/hook",
            listener.local_addr().expect("a bound address")
        );
        let answer = Arc::new(AtomicU16::new(answer));
        let (sender, seen) = watch::channel(Vec::new());
        let state = ReceiverState {
            answer: answer.clone(),
            seen: Arc::new(sender),
        };
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state);
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("the receiver serves");
        });
        WebhookReceiver {
            url,
            answer,
            seen,
            server,
        }
    }

    /// From now on, answer with `status`.
    pub(crate) fn answer(&self, status: u16) {
        self.answer.store(status, Ordering::SeqCst);
    }

    /// The eventIds of the requests answered with 2xx, in arrival order.
    pub(crate) fn delivered(&self) -> Vec<String> {
        self.seen
            .borrow()
            .iter()
            .filter(|received| received.delivered())
            .map(|received| received.event_id.clone())
            .collect()
    }

    /// Waits until what was received satisfies `done`, or fails the test after [`PATIENCE`];
    /// returns every request so far.
    pub(crate) async fn wait_for(
        &self,
        what: &str,
        done: impl FnMut(&Vec<Received>) -> bool,
    ) -> Vec<Received> {
        let mut seen = self.seen.clone();
        match tokio::time::timeout(PATIENCE, seen.wait_for(done)).await {
            Ok(Ok(seen)) => seen.clone(),
            _ => panic!(
                "timed out waiting for the receiver to get {what}; it got {:?}",
                self.seen.borrow()
            ),
        }
    }

    /// Waits until every one of `expected` has been answered with a 2xx; returns every request
    /// so far.
    pub(crate) async fn until_delivered(&self, expected: &BTreeSet<String>) -> Vec<Received> {
        self.wait_for(&format!("every one of {expected:?} delivered"), |seen| {
            let delivered: BTreeSet<&String> = seen
                .iter()
                .filter(|received| received.delivered())
                .map(|received| &received.event_id)
                .collect();
            expected.iter().all(|id| delivered.contains(id))
        })
        .await
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}
