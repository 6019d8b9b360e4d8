//! ONAP-shaped payloads: dates as ONAP writes them, order items, notifications, and the
//! notifications of a whole order's life.

use serde_json::{Value, json};

/// A date as ONAP's EventFactory writes it: `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`, `millis` after a
/// fixed start.
pub(crate) fn onap_date(millis: i64) -> String {
    let start =
        chrono::DateTime::parse_from_rfc3339("2019-03-25T08:08:56.310Z").expect("a valid date");
    (start + chrono::Duration::milliseconds(millis))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A full ONAP order item, nulls included.
pub(crate) fn onap_item(id: &str, action: &str, state: &str) -> Value {
    json!({
        "orderMessage": [],
        "id": id,
        "action": action,
        "state": state,
        "percentProgress": "0",
        "@type": null,
        "@schemaLocation": null,
        "@baseType": null,
        "orderItemRelationship": [],
        "service": {
            "id": null, "href": null, "name": format!("service-{id}"), "serviceState": "active",
            "@type": null, "@schemaLocation": null,
            "serviceCharacteristic": [{"name": "speed", "valueType": null,
                "value": {"@type": null, "@schemaLocation": null, "serviceCharacteristicValue": "10"}}],
            "serviceRelationship": null, "relatedParty": null,
            "serviceSpecification": {"id": "90b476bc-0988-4417-bae9-41b376f0e1b6", "href": null, "name": null,
                "version": null, "targetServiceSchema": null, "@type": null, "@schemaLocation": null, "@baseType": null}
        },
        "orderItemMessage": []
    })
}

/// An ONAP notification: the envelope around the filtered order.
pub(crate) fn onap_event(
    event_id: &str,
    event_type: &str,
    millis: i64,
    order_id: &str,
    state: &str,
    items: Vec<Value>,
) -> Value {
    json!({
        "eventId": event_id,
        "eventDate": onap_date(millis),
        "eventType": event_type,
        "event": {
            "id": order_id,
            "href": format!("serviceOrder/{order_id}"),
            "externalId": format!("ext-{order_id}"),
            "state": state,
            "orderDate": onap_date(0),
            "completionDateTime": if matches!(state, "completed" | "failed") { json!(onap_date(millis)) } else { Value::Null },
            "orderItem": items
        }
    })
}

/// ONAP's creation notification of `order_id`, its items `1` to `item_count` acknowledged.
pub(crate) fn onap_creation(event_id: &str, order_id: &str, item_count: usize) -> Value {
    let items = (1..=item_count)
        .map(|id| onap_item(&id.to_string(), "add", "acknowledged"))
        .collect();
    onap_event(
        event_id,
        "ServiceOrderCreationNotification",
        0,
        order_id,
        "acknowledged",
        items,
    )
}

/// The notifications ONAP sends for one order whose items all complete: creation, each item
/// going inProgress then completed, and the order's completion.
pub(crate) fn onap_lifecycle(order_id: &str, item_count: usize) -> Vec<Value> {
    let ids: Vec<String> = (1..=item_count).map(|i| i.to_string()).collect();
    let all = |state: &str| {
        ids.iter()
            .map(|id| onap_item(id, "add", state))
            .collect::<Vec<_>>()
    };
    let mut events = vec![onap_creation(
        &format!("{order_id}-created"),
        order_id,
        item_count,
    )];
    let mut millis = 0;
    for (step, state) in ["inProgress", "completed"].into_iter().enumerate() {
        for id in &ids {
            millis += 7;
            events.push(onap_event(
                &format!("{order_id}-item-{id}-{step}"),
                "ServiceOrderItemStateChangeNotification",
                millis,
                order_id,
                "inProgress",
                vec![onap_item(id, "add", state)],
            ));
        }
    }
    events.push(onap_event(
        &format!("{order_id}-completed"),
        "ServiceOrderStateChangeNotification",
        millis + 1,
        order_id,
        "completed",
        all("completed"),
    ));
    events
}
