//! The simulated seller's Service Ordering API: `GET {base}/serviceOrder/{id}` answers the
//! order as the seller has it *now*, which is what a listener fetches when an event carries
//! only a reference (MEF's `{id, href}`). The events' `href` points here.
//!
//! "Now" follows the run: the simulator advances the book to each notification it is about to
//! send, so that an order is served from its creation on, in the state of the newest change
//! due, whether that change's notification was sent, dropped or is still to come late. When
//! the run ends, the book holds every order's final state.
//!
//! `GET {base}/serviceOrder?offset=N&limit=N` lists the orders that exist now, in the order of
//! their creation, as ONAP's NBI and TMF641's list do (other filters are not applied).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::model::SimEvent;
use super::payload::{SimOrder, href, served_order};
use crate::domain::envelope::{Dialect, Family};
use crate::hub::dialect::base_path;

#[derive(Debug, Default)]
struct Book {
    /// The order after each event, in the events' order.
    history: Vec<SimOrder>,
    /// How many of them are due.
    due: usize,
    /// Each order as the seller has it now, by id.
    current: HashMap<String, SimOrder>,
}

/// The seller's orders over the run, shared by the simulator and the API.
#[derive(Debug, Clone)]
pub struct SellerBook {
    dialect: Dialect,
    seller_url: Option<String>,
    book: Arc<Mutex<Book>>,
}

impl SellerBook {
    /// An empty book for a `dialect` seller that serves at `seller_url`.
    pub fn new(dialect: Dialect, seller_url: Option<String>) -> SellerBook {
        SellerBook {
            dialect,
            seller_url,
            book: Arc::default(),
        }
    }

    /// Takes the run's notifications; none is due yet.
    pub fn load(&self, events: &[SimEvent]) {
        if let Ok(mut book) = self.book.lock() {
            book.history = events
                .iter()
                .map(|event| event.order_after.clone())
                .collect();
            book.due = 0;
            book.current.clear();
        }
    }

    /// Makes every change up to notification `index` (included) the seller's present.
    pub fn advance_through(&self, index: usize) {
        let Ok(mut book) = self.book.lock() else {
            return;
        };
        let Book {
            history,
            due,
            current,
        } = &mut *book;
        let until = (index + 1).min(history.len());
        for order in history.iter().take(until).skip(*due) {
            current.insert(order.id.clone(), order.clone());
        }
        *due = (*due).max(until);
    }

    /// Makes the whole run the seller's present: every order in its final state.
    pub fn advance_to_the_end(&self) {
        let last = self.book.lock().map(|book| book.history.len()).unwrap_or(0);
        if last > 0 {
            self.advance_through(last - 1);
        }
    }

    /// A page of the orders that exist now, in the order of their creation.
    fn listed(&self, offset: usize, limit: usize) -> Vec<serde_json::Value> {
        let Ok(book) = self.book.lock() else {
            return Vec::new();
        };
        let mut seen = std::collections::HashSet::new();
        book.history
            .iter()
            .take(book.due)
            .filter(|order| seen.insert(order.id.as_str()))
            .skip(offset)
            .take(limit)
            .filter_map(|order| book.current.get(&order.id))
            .map(|order| {
                let href = href(self.dialect, self.seller_url.as_deref(), &order.id);
                served_order(self.dialect, order, &href)
            })
            .collect()
    }

    /// The order as the API serves it, if it exists yet.
    fn served(&self, id: &str) -> Option<serde_json::Value> {
        let order = self.book.lock().ok()?.current.get(id).cloned()?;
        let href = href(self.dialect, self.seller_url.as_deref(), id);
        Some(served_order(self.dialect, &order, &href))
    }
}

async fn service_order(State(book): State<SellerBook>, Path(id): Path<String>) -> Response {
    if let Some(order) = book.served(&id) {
        return axum::Json(order).into_response();
    }
    let message = format!("this seller has no service order {id}");
    let body = match book.dialect.family() {
        Family::Mef => json!({"code": "notFound", "reason": "Not found", "message": message}),
        Family::Tmf => json!({"code": "404", "reason": "Not found", "message": message,
                              "status": "404"}),
        Family::Onap => json!({"code": 404, "message": message}),
    };
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// `GET {base}/serviceOrder?offset&limit` parameters.
#[derive(Debug, serde::Deserialize)]
struct Page {
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

async fn service_orders(
    State(book): State<SellerBook>,
    axum::extract::Query(page): axum::extract::Query<Page>,
) -> Response {
    let limit = page.limit.unwrap_or(100).min(1000);
    axum::Json(book.listed(page.offset, limit)).into_response()
}

/// The Service Ordering API's routes: `GET {base}/serviceOrder/{id}` and the list,
/// `GET {base}/serviceOrder`.
pub fn router(book: SellerBook) -> Router {
    Router::new()
        .route(
            &format!("{}/serviceOrder", base_path(book.dialect)),
            get(service_orders),
        )
        .route(
            &format!("{}/serviceOrder/{{id}}", base_path(book.dialect)),
            get(service_order),
        )
        .with_state(book)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::state::State as OrderState;
    use crate::simulate::model::{Machine, ModelOptions, generate};

    #[test]
    fn an_order_is_served_from_its_creation_in_its_newest_due_state() {
        let (orders, events) = generate(ModelOptions {
            orders: 3,
            max_items: 2,
            machine: Machine::Mef,
            dialect: Dialect::MefLegatoV6,
            seller_url: Some("http://seller.example".into()),
            seed: 9,
            start: chrono::Utc::now(),
        });
        let book = SellerBook::new(Dialect::MefLegatoV6, Some("http://seller.example".into()));
        book.load(&events);
        let first = &orders[events[0].order].id;
        assert!(book.served(first).is_none(), "nothing is due yet");
        book.advance_through(0);
        let served = book.served(first).unwrap();
        assert_eq!(served["state"], "acknowledged");
        assert_eq!(
            served["href"],
            format!(
                "http://seller.example/mefApi/legato/serviceOrderingManagement/v6/serviceOrder/{first}"
            )
        );
        book.advance_to_the_end();
        let listed: Vec<String> = book
            .listed(0, 1000)
            .iter()
            .map(|order| order["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(listed.len(), orders.len(), "every order is listed once");
        assert_eq!(book.listed(1, 1).len(), 1);
        assert_eq!(book.listed(1, 1)[0]["id"], listed[1].as_str());
        for order in &orders {
            let served = book.served(&order.id).unwrap();
            assert_eq!(served["state"], order.state.as_str());
            assert_ne!(order.state, OrderState::Acknowledged);
            assert_eq!(
                served["serviceOrderItem"].as_array().unwrap().len(),
                order.items.len()
            );
        }
    }
}
