//! MEF LSO Legato notification bodies (v5, MEF 99; v6, Mplify 99.1): `{eventId, eventTime,
//! eventType, event}` with a lower-camel-case `eventType`, and a payload that only refers to the
//! order: `{id, href}`, with `orderItemId` for an item's event. v6 adds `state` to a state
//! change and to an item's state change. The order itself is what the seller's Service
//! Ordering API serves (`service_order`).

use chrono::Duration;
use serde_json::{Value, json};

use super::{Change, Notice, SimOrder, wire_date};
use crate::domain::envelope::{Dialect, EventType};

/// The reference an event carries.
fn reference(dialect: Dialect, notice: &Notice<'_>) -> Value {
    let order = notice.order;
    let v6 = dialect == Dialect::MefLegatoV6;
    match notice.change {
        Change::ItemState(index) if v6 => json!({
            "id": order.id,
            "orderItemId": order.items[index].id,
            "href": notice.href,
            "state": order.items[index].state.as_str(),
        }),
        Change::ItemState(index) => json!({
            "id": order.id, "orderItemId": order.items[index].id, "href": notice.href,
        }),
        Change::OrderState if v6 => json!({
            "id": order.id, "href": notice.href, "state": order.state.as_str(),
        }),
        _ => json!({"id": order.id, "href": notice.href}),
    }
}

/// The whole notification.
pub fn notification(dialect: Dialect, kind: EventType, notice: &Notice<'_>) -> Value {
    json!({
        "eventId": notice.event_id,
        "eventTime": wire_date(notice.date),
        "eventType": kind.path_name().unwrap_or_else(|| kind.as_str().to_owned()),
        "event": reference(dialect, notice),
    })
}

/// The order as MEF's `ServiceOrder` (the required `id`, `orderDate`, `state`,
/// `requestedStartDate`, `requestedCompletionDate` and `serviceOrderItem`, each item with `id`,
/// `action`, `state` and `service`), plus the dates the seller knows.
pub fn service_order(order: &SimOrder, href: &str) -> Value {
    let items: Vec<Value> = order
        .items
        .iter()
        .map(|item| {
            let mut service = json!({"id": item.service_id});
            if item.action != "delete" {
                service["serviceConfiguration"] =
                    json!({"@type": "urn:mef:lso:spec:legato:access-eline-ovc:v1.0.0:all"});
            }
            json!({
                "id": item.id,
                "action": item.action,
                "state": item.state.as_str(),
                "service": service,
            })
        })
        .collect();
    let mut json = json!({
        "id": order.id,
        "href": href,
        "externalId": order.external_id,
        "state": order.state.as_str(),
        "orderDate": wire_date(order.order_date),
        "requestedStartDate": wire_date(order.order_date),
        "requestedCompletionDate": wire_date(order.order_date + Duration::days(30)),
        "serviceOrderItem": items,
    });
    if let Some(started) = order.started_at {
        json["startDate"] = json!(wire_date(started));
    }
    if let Some(completed) = order.completed_at {
        json["completionDate"] = json!(wire_date(completed));
    }
    json
}
