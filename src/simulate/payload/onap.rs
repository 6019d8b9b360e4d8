//! Notification bodies built the way ONAP NBI's EventFactory builds them: the order filtered to
//! `id, href, externalId, state, orderDate, completionDateTime, orderItem`, full item objects,
//! nulls kept, dates as `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`, and item events carrying only the item
//! that changed.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{SimItem, SimOrder};
use crate::domain::envelope::EventType;
use crate::domain::state::State;

/// ONAP's date format.
pub fn onap_date(date: DateTime<Utc>) -> String {
    date.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn item_json(item: &SimItem) -> Value {
    json!({
        "id": item.id,
        "action": item.action,
        "state": item.state.as_str(),
        "percentProgress": match item.state {
            State::Completed => "100",
            State::InProgress => "50",
            _ => "0",
        },
        "@type": null,
        "@schemaLocation": null,
        "@baseType": null,
        "orderItemRelationship": [],
        "service": {
            "id": item.service_id,
            "href": null,
            "name": format!("vFW-{}", item.id),
            "serviceState": if item.action == "delete" { "inactive" } else { "active" },
            "@type": null,
            "@schemaLocation": null,
            "serviceCharacteristic": [{
                "name": "bandwidth",
                "valueType": null,
                "value": {"@type": null, "@schemaLocation": null, "serviceCharacteristicValue": "10"}
            }],
            "serviceRelationship": null,
            "relatedParty": null,
            "serviceSpecification": {
                "id": "90b476bc-0988-4417-bae9-41b376f0e1b6",
                "href": null,
                "name": null,
                "version": null,
                "targetServiceSchema": null,
                "@type": null,
                "@schemaLocation": null,
                "@baseType": null
            }
        },
        "orderItemMessage": []
    })
}

/// The `event` of a notification about `order`; for an item event, only `changed_item`.
pub fn order_summary(order: &SimOrder, changed_item: Option<usize>) -> Value {
    let items: Vec<Value> = match changed_item {
        Some(index) => vec![item_json(&order.items[index])],
        None => order.items.iter().map(item_json).collect(),
    };
    json!({
        "id": order.id,
        "href": format!("serviceOrder/{}", order.id),
        "externalId": order.external_id,
        "state": order.state.as_str(),
        "orderDate": onap_date(order.order_date),
        "completionDateTime": order.completed_at.map(onap_date),
        "orderItem": items,
    })
}

/// The whole notification.
pub fn notification(
    event_id: &str,
    event_type: EventType,
    date: DateTime<Utc>,
    event: Value,
) -> Value {
    json!({
        "eventId": event_id,
        "eventDate": onap_date(date),
        "eventType": event_type.as_str(),
        "event": event,
    })
}
