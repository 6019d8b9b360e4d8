//! TMF641 v4 and v5 notification bodies: `{eventId, eventTime, eventType, …, event:
//! {serviceOrder}}`, the whole order in every event, v4's `timeOcurred` (spelt so) and v5's
//! `@type` and `timeOccurred`. A cancellation's events carry `event.cancelServiceOrder`, whose
//! state is a TaskStateType; v5's information-required event carries `informationRequired` and
//! a reference to the order.

use chrono::Duration;
use serde_json::{Map, Value, json};

use super::{Change, Notice, SimItem, SimOrder, TaskState, wire_date};
use crate::domain::envelope::{Dialect, EventType};

fn item_json(dialect: Dialect, item: &SimItem) -> Value {
    let mut json = json!({
        "id": item.id,
        "action": item.action,
        "state": item.state.as_str(),
        "service": {
            "id": item.service_id,
            "name": format!("vFW-{}", item.id),
            "serviceSpecification": {"id": "90b476bc-0988-4417-bae9-41b376f0e1b6", "name": "vFW"},
        },
    });
    if dialect == Dialect::Tmf641V5 {
        json["@type"] = json!("ServiceOrderItem");
        json["service"]["@type"] = json!("Service");
    }
    json
}

/// The order as a TMF641 `ServiceOrder`: v4 names the buyer's reference `externalId`, v5 an
/// `externalReference`.
pub fn service_order(dialect: Dialect, order: &SimOrder, href: &str) -> Value {
    let mut json = json!({
        "id": order.id,
        "href": href,
        "category": "vFW",
        "state": order.state.as_str(),
        "orderDate": wire_date(order.order_date),
        "requestedStartDate": wire_date(order.order_date),
        "requestedCompletionDate": wire_date(order.order_date + Duration::days(30)),
        "serviceOrderItem": order.items.iter().map(|item| item_json(dialect, item)).collect::<Vec<_>>(),
    });
    if let Some(started) = order.started_at {
        json["startDate"] = json!(wire_date(started));
    }
    if let Some(completed) = order.completed_at {
        json["completionDate"] = json!(wire_date(completed));
    }
    if dialect == Dialect::Tmf641V5 {
        json["@type"] = json!("ServiceOrder");
        json["externalReference"] = json!([{
            "@type": "ExternalReference",
            "name": order.external_id,
            "externalReferenceType": "buyerOrderId",
        }]);
    } else {
        json["externalId"] = json!(order.external_id);
    }
    json
}

/// The `event` of a cancellation request's notification.
fn cancel_service_order(dialect: Dialect, notice: &Notice<'_>, state: TaskState) -> Value {
    let mut json = json!({
        "id": format!("cancel-{}", notice.order.id),
        "href": format!("{}/cancel", notice.href),
        "state": state.as_str(),
        "cancellationReason": "The buyer no longer needs the service",
        "requestedCancellationDate": wire_date(notice.date),
        "serviceOrder": {"id": notice.order.id, "href": notice.href},
    });
    if state == TaskState::Done {
        json["effectiveCancellationDate"] = json!(wire_date(notice.date));
    }
    if dialect == Dialect::Tmf641V5 {
        json["@type"] = json!("CancelServiceOrder");
        json["serviceOrder"]["@type"] = json!("ServiceOrderRef");
    }
    json!({"cancelServiceOrder": json})
}

/// The `event` for a change that carries the whole order, with the milestone or jeopardy
/// alert that the change adds.
fn order_event(dialect: Dialect, notice: &Notice<'_>) -> Value {
    let mut order = service_order(dialect, notice.order, notice.href);
    let date = wire_date(notice.date);
    match notice.change {
        Change::Milestone => {
            order["milestone"] = json!([{
                "id": "1", "name": "firstItemDelivered", "status": "reached",
                "message": "The first item is delivered", "milestoneDate": date,
            }]);
        }
        Change::Jeopardy => {
            order["jeopardyAlert"] = json!([{
                "id": "1", "name": "delay", "jeopardyType": "hazard", "alertDate": date,
                "exception": "The order is held", "message": "Delivery may be late",
            }]);
        }
        _ => {}
    }
    json!({"serviceOrder": order})
}

/// The whole notification.
pub fn notification(dialect: Dialect, kind: EventType, notice: &Notice<'_>) -> Value {
    let event = match notice.change {
        Change::CancellationRequested => {
            cancel_service_order(dialect, notice, TaskState::Acknowledged)
        }
        Change::CancellationInformationRequired => {
            cancel_service_order(dialect, notice, TaskState::InProgress)
        }
        Change::CancellationState(state) => cancel_service_order(dialect, notice, state),
        Change::InformationRequired if dialect == Dialect::Tmf641V5 => json!({
            "informationRequired": [{
                "op": "add", "path": "/note/-",
                "value": {"text": "Which site contact should the technician call?"},
            }],
            "serviceOrder": {"id": notice.order.id, "href": notice.href, "@type": "ServiceOrderRef"},
        }),
        _ => order_event(dialect, notice),
    };
    let date = wire_date(notice.date);
    let mut body = Map::new();
    if dialect == Dialect::Tmf641V5 {
        body.insert("@type".into(), json!(kind.as_str()));
    }
    body.insert("eventId".into(), json!(notice.event_id));
    body.insert("eventTime".into(), json!(date));
    body.insert("eventType".into(), json!(kind.as_str()));
    body.insert("correlationId".into(), json!(notice.order.id));
    body.insert("domain".into(), json!("serviceOrdering"));
    body.insert("title".into(), json!(kind.as_str()));
    body.insert(
        "description".into(),
        json!(format!("{kind} for service order {}", notice.order.id)),
    );
    let occurred = if dialect == Dialect::Tmf641V5 {
        "timeOccurred"
    } else {
        "timeOcurred"
    };
    body.insert(occurred.into(), json!(date));
    match notice.change {
        Change::ItemState(_) if dialect == Dialect::Tmf641V4 => {
            body.insert("fieldPath".into(), json!("serviceOrderItem.state"));
        }
        Change::InformationRequired | Change::CancellationInformationRequired
            if dialect == Dialect::Tmf641V4 =>
        {
            body.insert("fieldPath".into(), json!("note"));
        }
        _ => {}
    }
    body.insert("event".into(), event);
    Value::Object(body)
}
