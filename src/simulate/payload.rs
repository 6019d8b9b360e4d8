//! Notification bodies built the way ONAP NBI's EventFactory builds them: the order filtered to
//! `id, href, externalId, state, orderDate, completionDateTime, orderItem`, full item objects,
//! nulls kept, dates as `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`, and item events carrying only the item
//! that changed.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::domain::envelope::EventType;
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
    /// When it reached a final state.
    pub completed_at: Option<DateTime<Utc>>,
    /// Its items.
    pub items: Vec<SimItem>,
}

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

/// Bodies that break the Listener contract, each with the status a correct listener answers.
pub fn malformed(variant: usize, valid: &Value) -> (String, u16) {
    match variant % 5 {
        0 => {
            let text = valid.to_string();
            (text[..text.len() / 2].to_owned(), 400)
        }
        1 => {
            let mut body = valid.clone();
            if let Some(object) = body.as_object_mut() {
                object.remove("eventId");
            }
            (body.to_string(), 400)
        }
        2 => {
            let mut body = valid.clone();
            body["eventDate"] = json!("25/03/2019 08:08");
            (body.to_string(), 400)
        }
        3 => ("[]".to_owned(), 400),
        _ => {
            let mut body = valid.clone();
            body["event"]["state"] = json!("COMPLETED");
            body["eventId"] = json!(format!(
                "{}-malformed",
                body["eventId"].as_str().unwrap_or("x")
            ));
            (body.to_string(), 422)
        }
    }
}
