//! The simulated orders, and what a seller of each dialect sends about them: the event type
//! for each change (`event_type`), the body (`onap`, `tmf`, `mef`), what that body tells a
//! listener (`carried`, the simulator's ground truth), the order its Service Ordering API
//! serves (`served_order`), and malformed variants.

pub mod mef;
pub mod onap;
pub mod tmf;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::domain::envelope::{Dialect, EventType, Family};
use crate::domain::state::State;

/// An item of a simulated order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimItem {
    /// `01`, `02`, …
    pub id: String,
    /// add, modify or delete.
    pub action: &'static str,
    /// Its state now.
    pub state: State,
    /// The service instance it acts on.
    pub service_id: String,
}

/// A simulated service order, as the seller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOrder {
    /// The seller's id, like ONAP's (a MongoDB ObjectId).
    pub id: String,
    /// The buyer's reference.
    pub external_id: String,
    /// When it was placed.
    pub order_date: DateTime<Utc>,
    /// Its state now.
    pub state: State,
    /// When the seller started working on it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a final state.
    pub completed_at: Option<DateTime<Utc>>,
    /// Its items.
    pub items: Vec<SimItem>,
}

/// What happened to an order, which a seller notifies in its dialect's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The order was created.
    Created,
    /// The order's state changed.
    OrderState,
    /// This item's state changed.
    ItemState(usize),
    /// The order reached a milestone (TMF641).
    Milestone,
    /// The order is in jeopardy (TMF641).
    Jeopardy,
    /// The seller needs information from the buyer (TMF641, MEF).
    InformationRequired,
    /// The buyer asked to cancel the order (TMF641).
    CancellationRequested,
    /// The seller needs information about the cancellation (TMF641).
    CancellationInformationRequired,
    /// The cancellation request moved to this state (TMF641).
    CancellationState(TaskState),
    /// The order was deleted (TMF641).
    Deleted,
}

/// TMF641's TaskStateType: the state of a cancellation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Received.
    Acknowledged,
    /// Being worked on.
    InProgress,
    /// The order is cancelled.
    Done,
    /// The order could not be cancelled.
    TerminatedWithError,
}

impl TaskState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Acknowledged => "acknowledged",
            TaskState::InProgress => "inProgress",
            TaskState::Done => "done",
            TaskState::TerminatedWithError => "terminatedWithError",
        }
    }
}

/// The event a seller of `dialect` sends for `change`, or `None` when it has none.
pub fn event_type(dialect: Dialect, change: Change) -> Option<EventType> {
    use EventType::*;
    match (dialect.family(), change) {
        (Family::Onap, Change::Created) => Some(ServiceOrderCreation),
        (Family::Onap, Change::OrderState) => Some(ServiceOrderStateChange),
        (Family::Onap, Change::ItemState(_)) => Some(ServiceOrderItemStateChange),
        (Family::Onap, _) => None,
        (_, Change::Created) => Some(ServiceOrderCreateEvent),
        (_, Change::OrderState) => Some(ServiceOrderStateChangeEvent),
        (_, Change::InformationRequired) => Some(ServiceOrderInformationRequiredEvent),
        // TMF641 has no item event: the order's attributes changed, its items among them.
        (Family::Tmf, Change::ItemState(_)) => Some(ServiceOrderAttributeValueChangeEvent),
        (Family::Tmf, Change::Milestone) => Some(ServiceOrderMilestoneEvent),
        (Family::Tmf, Change::Jeopardy) => Some(ServiceOrderJeopardyEvent),
        (Family::Tmf, Change::CancellationRequested) => Some(CancelServiceOrderCreateEvent),
        (Family::Tmf, Change::CancellationInformationRequired) => {
            Some(CancelServiceOrderInformationRequiredEvent)
        }
        (Family::Tmf, Change::CancellationState(_)) => Some(CancelServiceOrderStateChangeEvent),
        (Family::Tmf, Change::Deleted) => Some(ServiceOrderDeleteEvent),
        (Family::Mef, Change::ItemState(_)) => Some(ServiceOrderItemStateChangeEvent),
        (Family::Mef, _) => None,
    }
}

/// What one notification tells a listener about its order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Carried {
    /// The order's state, when the body gives it.
    pub order_state: Option<State>,
    /// The items' states the body gives.
    pub item_states: Vec<(String, State)>,
}

/// What the body a seller of `dialect` sends for `change` tells about `order` (as it is after
/// the change). This is the simulator's ground truth: it is written from the dialects' rules,
/// not from the listener's parsers, and a test checks that the parsers agree.
pub fn carried(dialect: Dialect, change: Change, order: &SimOrder) -> Carried {
    let all_items = || {
        order
            .items
            .iter()
            .map(|item| (item.id.clone(), item.state))
            .collect()
    };
    let one_item = |index: usize| vec![(order.items[index].id.clone(), order.items[index].state)];
    match (dialect, change) {
        (Dialect::Onap, Change::ItemState(index)) => Carried {
            order_state: Some(order.state),
            item_states: one_item(index),
        },
        (Dialect::Onap, _) => Carried {
            order_state: Some(order.state),
            item_states: all_items(),
        },
        // A cancellation request names its order without its state; so does v5's reference.
        (
            Dialect::Tmf641V4 | Dialect::Tmf641V5,
            Change::CancellationRequested
            | Change::CancellationInformationRequired
            | Change::CancellationState(_),
        )
        | (Dialect::Tmf641V5, Change::InformationRequired) => Carried::default(),
        (Dialect::Tmf641V4 | Dialect::Tmf641V5, _) => Carried {
            order_state: Some(order.state),
            item_states: all_items(),
        },
        (Dialect::MefLegatoV6, Change::OrderState) => Carried {
            order_state: Some(order.state),
            item_states: Vec::new(),
        },
        (Dialect::MefLegatoV6, Change::ItemState(index)) => Carried {
            order_state: None,
            item_states: one_item(index),
        },
        (Dialect::MefLegatoV5 | Dialect::MefLegatoV6, _) => Carried::default(),
    }
}

/// One notification to render.
#[derive(Debug, Clone, Copy)]
pub struct Notice<'a> {
    /// Its eventId.
    pub event_id: &'a str,
    /// When it happened.
    pub date: DateTime<Utc>,
    /// What happened.
    pub change: Change,
    /// The order after the change.
    pub order: &'a SimOrder,
    /// Where the seller serves the order.
    pub href: &'a str,
}

/// Where a seller of `dialect` serves an order: ONAP writes `serviceOrder/{id}` as NBI does;
/// the others an absolute URL under the simulator's `seller_url` (a path alone without one).
pub fn href(dialect: Dialect, seller_url: Option<&str>, order_id: &str) -> String {
    match dialect {
        Dialect::Onap => format!("serviceOrder/{order_id}"),
        _ => format!(
            "{}{}/serviceOrder/{order_id}",
            seller_url.unwrap_or_default().trim_end_matches('/'),
            crate::hub::dialect::base_path(dialect)
        ),
    }
}

/// The body a seller of `dialect` sends for `notice`, whose event type is `kind`.
pub fn body(dialect: Dialect, kind: EventType, notice: &Notice<'_>) -> Value {
    match dialect.family() {
        Family::Onap => {
            let changed_item = match notice.change {
                Change::ItemState(index) => Some(index),
                _ => None,
            };
            onap::notification(
                notice.event_id,
                kind,
                notice.date,
                onap::order_summary(notice.order, changed_item),
            )
        }
        Family::Tmf => tmf::notification(dialect, kind, notice),
        Family::Mef => mef::notification(dialect, kind, notice),
    }
}

/// The order as the seller's Service Ordering API serves it (`GET …/serviceOrder/{id}`).
pub fn served_order(dialect: Dialect, order: &SimOrder, href: &str) -> Value {
    match dialect.family() {
        Family::Onap => {
            let mut summary = onap::order_summary(order, None);
            summary["href"] = json!(href);
            summary
        }
        Family::Tmf => tmf::service_order(dialect, order, href),
        Family::Mef => mef::service_order(order, href),
    }
}

/// The date format every dialect's seller writes here: RFC 3339 in UTC with milliseconds.
pub fn wire_date(date: DateTime<Utc>) -> String {
    onap::onap_date(date)
}

/// A body that breaks the dialect's contract, made from a valid one; a correct listener
/// refuses each with a 4xx. Variant 4 has an eventId of its own, so that the refusal is for its
/// content rather than a conflict.
pub fn malformed(dialect: Dialect, variant: usize, valid: &Value) -> String {
    let mut body = valid.clone();
    match variant % 5 {
        0 => {
            let text = valid.to_string();
            return text[..text.len() / 2].to_owned();
        }
        1 => {
            let required = match dialect {
                Dialect::Tmf641V4 => "event",
                Dialect::Tmf641V5 => "@type",
                _ => "eventId",
            };
            if let Some(object) = body.as_object_mut() {
                object.remove(required);
            }
        }
        2 => {
            let date = if dialect == Dialect::Onap {
                "eventDate"
            } else {
                "eventTime"
            };
            body[date] = json!("25/03/2019 08:08");
        }
        3 => return "[]".to_owned(),
        _ => {
            let event = &mut body["event"];
            match dialect.family() {
                Family::Tmf if event.get("cancelServiceOrder").is_some() => {
                    if let Some(request) = event["cancelServiceOrder"].as_object_mut() {
                        request.remove("serviceOrder");
                    }
                }
                Family::Tmf => event["serviceOrder"]["state"] = json!("COMPLETED"),
                Family::Onap | Family::Mef => event["state"] = json!("COMPLETED"),
            }
            body["eventId"] = json!(format!(
                "{}-malformed",
                body["eventId"].as_str().unwrap_or("x")
            ));
        }
    }
    body.to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::simulate::model::{Machine, ModelOptions, SimEvent, generate};

    fn run(dialect: Dialect) -> Vec<SimEvent> {
        generate(ModelOptions {
            orders: 40,
            max_items: 3,
            machine: Machine::of(dialect),
            dialect,
            seller_url: Some("http://seller.example".into()),
            seed: 17,
            start: Utc::now(),
        })
        .1
    }

    fn keys(value: &Value) -> Vec<&str> {
        value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    fn first(events: &[SimEvent], kind: EventType) -> &Value {
        &events
            .iter()
            .find(|event| event.event_type == kind)
            .unwrap_or_else(|| panic!("a {kind}"))
            .body
    }

    #[test]
    fn mef_events_carry_references_and_v6_adds_states() {
        let v6 = run(Dialect::MefLegatoV6);
        let item = first(&v6, EventType::ServiceOrderItemStateChangeEvent);
        assert_eq!(keys(item), ["event", "eventId", "eventTime", "eventType"]);
        assert_eq!(item["eventType"], "serviceOrderItemStateChangeEvent");
        assert_eq!(keys(&item["event"]), ["href", "id", "orderItemId", "state"]);
        let href = item["event"]["href"].as_str().unwrap();
        assert!(
            href.starts_with(
                "http://seller.example/mefApi/legato/serviceOrderingManagement/v6/serviceOrder/"
            ),
            "{href}"
        );
        let state = first(&v6, EventType::ServiceOrderStateChangeEvent);
        assert_eq!(keys(&state["event"]), ["href", "id", "state"]);
        let created = first(&v6, EventType::ServiceOrderCreateEvent);
        assert_eq!(keys(&created["event"]), ["href", "id"]);

        let v5 = run(Dialect::MefLegatoV5);
        let item = first(&v5, EventType::ServiceOrderItemStateChangeEvent);
        assert_eq!(keys(&item["event"]), ["href", "id", "orderItemId"]);
        let state = first(&v5, EventType::ServiceOrderStateChangeEvent);
        assert_eq!(keys(&state["event"]), ["href", "id"]);
        assert_eq!(state["eventType"], "serviceOrderStateChangeEvent");
    }

    #[test]
    fn tmf_events_carry_the_whole_order_and_v5_its_types() {
        let v4 = run(Dialect::Tmf641V4);
        let body = first(&v4, EventType::ServiceOrderAttributeValueChangeEvent);
        assert_eq!(body["eventType"], "ServiceOrderAttributeValueChangeEvent");
        assert_eq!(body["fieldPath"], "serviceOrderItem.state");
        assert!(body.get("@type").is_none() && body.get("eventDate").is_none());
        assert_eq!(body["timeOcurred"], body["eventTime"]);
        let order = &body["event"]["serviceOrder"];
        assert!(order["externalId"].is_string());
        assert!(!order["serviceOrderItem"].as_array().unwrap().is_empty());

        let v5 = run(Dialect::Tmf641V5);
        let body = first(&v5, EventType::ServiceOrderStateChangeEvent);
        assert_eq!(body["@type"], "ServiceOrderStateChangeEvent");
        assert_eq!(body["timeOccurred"], body["eventTime"]);
        let order = &body["event"]["serviceOrder"];
        assert_eq!(order["@type"], "ServiceOrder");
        assert_eq!(order["serviceOrderItem"][0]["@type"], "ServiceOrderItem");
        assert!(order["externalReference"][0]["name"].is_string());
        let asked = first(&v5, EventType::ServiceOrderInformationRequiredEvent);
        assert_eq!(
            keys(&asked["event"]),
            ["informationRequired", "serviceOrder"]
        );
        assert_eq!(asked["event"]["serviceOrder"]["@type"], "ServiceOrderRef");
    }

    #[test]
    fn a_cancellations_events_carry_the_request_and_its_task_state() {
        let v4 = run(Dialect::Tmf641V4);
        let states: Vec<&str> = v4
            .iter()
            .filter(|event| event.event_type == EventType::CancelServiceOrderStateChangeEvent)
            .filter_map(|event| event.body["event"]["cancelServiceOrder"]["state"].as_str())
            .collect();
        assert!(!states.is_empty());
        assert!(
            states
                .iter()
                .all(|state| ["inProgress", "done", "terminatedWithError"].contains(state))
        );
        let created = first(&v4, EventType::CancelServiceOrderCreateEvent);
        assert_eq!(
            created["event"]["cancelServiceOrder"]["state"],
            "acknowledged"
        );
        assert!(created["event"]["cancelServiceOrder"]["serviceOrder"]["id"].is_string());
    }

    #[test]
    fn the_seller_api_serves_each_dialects_order_shape() {
        let order = SimOrder {
            id: "SO-1".into(),
            external_id: "BSS-1".into(),
            order_date: Utc::now(),
            state: State::Completed,
            started_at: Some(Utc::now()),
            completed_at: Some(Utc::now()),
            items: vec![SimItem {
                id: "01".into(),
                action: "add",
                state: State::Completed,
                service_id: "svc-1".into(),
            }],
        };
        let mef = served_order(Dialect::MefLegatoV6, &order, "http://s/o/SO-1");
        for key in [
            "id",
            "href",
            "state",
            "orderDate",
            "startDate",
            "completionDate",
            "requestedStartDate",
            "requestedCompletionDate",
        ] {
            assert!(mef[key].is_string(), "{key}");
        }
        assert_eq!(
            keys(&mef["serviceOrderItem"][0]),
            ["action", "id", "service", "state"]
        );
        let tmf = served_order(Dialect::Tmf641V5, &order, "http://s/o/SO-1");
        assert_eq!(tmf["@type"], "ServiceOrder");
    }

    #[test]
    fn malformed_bodies_break_each_dialects_contract() {
        for dialect in Dialect::ALL {
            let events = run(dialect);
            for (variant, event) in events.iter().take(25).enumerate() {
                let path_event = (dialect != Dialect::Onap).then_some(event.event_type);
                let body = malformed(dialect, variant, &event.body);
                assert!(
                    crate::domain::envelope::parse(
                        dialect,
                        path_event,
                        body.clone().into(),
                        crate::domain::envelope::ParseOptions::default()
                    )
                    .is_err(),
                    "{dialect} variant {variant}: {body}"
                );
            }
        }
    }
}
