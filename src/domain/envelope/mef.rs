//! MEF LSO Legato service-ordering notifications (v5 and v6): `{eventId, eventTime, eventType,
//! event}`, all required, with a lower-camel-case `eventType` that must be the path's, and a
//! payload that only refers to the order: `{id, href}`, plus `orderItemId` for an item's state
//! change, and in v6 a required `state` (the order's, or the item's) in both state changes.
//! The order itself is fetched from the seller.

use bytes::Bytes;
use serde_json::Value;

use super::{
    Dialect, EnvelopeError, EventType, FunctionalError, ItemFact, Notification, OrderFacts,
    ParseOptions, Role, body_object, event_date, event_id, functional, invalid, json_type, object,
    optional_state, optional_text, order_id, require,
};
use crate::domain::state::State;

/// Parses an event of type `kind` (named by its path) sent by a MEF Legato `dialect` seller.
pub(super) fn parse(
    dialect: Dialect,
    kind: EventType,
    raw: Bytes,
    options: ParseOptions,
) -> Result<Notification, EnvelopeError> {
    let fields = body_object(&raw, options)?;
    require(&fields, &["eventId", "eventTime", "eventType", "event"])?;
    let event_id = event_id(&fields["eventId"], "eventId")?;
    let event_date = event_date(&fields["eventTime"], "eventTime", options)?;
    let expected = kind.path_name().unwrap_or_default();
    match &fields["eventType"] {
        Value::String(text) if *text == expected => {}
        Value::String(text) => {
            return Err(invalid(
                "eventType",
                format!(
                    "`{text}` does not match the listener path, which is for {expected}; post \
                     the event to the path of its type"
                ),
            ));
        }
        other => {
            return Err(invalid(
                "eventType",
                format!("must be a string, not {}", json_type(other)),
            ));
        }
    }
    let event = object(&fields["event"], "event")?;
    let order_id = order_id(event.get("id"), "event.id", || {
        format!("{expected} must carry the service order id in event.id")
    })?;
    let state = if kind.role() == Role::ItemStateChange {
        mef_state(event.get("state"), State::MEF_ITEM, "an item", options)?
    } else {
        mef_state(event.get("state"), &State::MEF_ORDER, "an order", options)?
    };
    // v6 requires the state in both state changes; v5 sends none.
    if dialect == Dialect::MefLegatoV6 && state.is_none() {
        match kind.role() {
            Role::StateChange => {
                return Err(functional(
                    FunctionalError::MissingOrderState,
                    "event.state",
                    format!("{expected} must carry the order's new state in event.state"),
                ));
            }
            Role::ItemStateChange => {
                return Err(functional(
                    FunctionalError::MissingItemState,
                    "event.state",
                    format!("{expected} must carry the item's new state in event.state"),
                ));
            }
            Role::Creation | Role::Other | Role::NotAnOrder => {}
        }
    }
    let (order_state, items) = if kind.role() == Role::ItemStateChange {
        let Some(item_id) = event
            .get("orderItemId")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
        else {
            return Err(functional(
                FunctionalError::MissingItemState,
                "event.orderItemId",
                format!("{expected} must carry the changed item's id in event.orderItemId"),
            ));
        };
        let item = ItemFact {
            id: item_id.to_owned(),
            state,
            action: None,
        };
        (None, vec![item])
    } else {
        (state, Vec::new())
    };
    Ok(Notification {
        event_id,
        event_type: kind,
        event_date,
        order: Some(OrderFacts {
            order_id,
            state: order_state,
            external_id: None,
            order_date: None,
            completion_date_time: None,
            items,
        }),
        dialect,
        reference: optional_text(event, "href"),
        source: super::Source::Seller,
        raw,
    })
}

/// Reads the optional state at `event.state`, which must be one of MEF's states for `whose`
/// (code 64 otherwise, with MEF's list).
fn mef_state(
    value: Option<&Value>,
    allowed: &[State],
    whose: &str,
    options: ParseOptions,
) -> Result<Option<State>, EnvelopeError> {
    let refuse = |text: &str| {
        functional(
            FunctionalError::UnknownState,
            "event.state",
            format!(
                "`{text}` is not a MEF state of {whose}; expected one of {}",
                allowed
                    .iter()
                    .map(|state| state.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    };
    match value {
        Some(Value::String(text)) => match text.parse::<State>() {
            // Stored before MEF's own lists were enforced, it was read against TMF641's.
            Ok(state) if allowed.contains(&state) || options.as_stored => Ok(Some(state)),
            _ => Err(refuse(text)),
        },
        // Absent, null, or not a string: the common rule and its message.
        other => optional_state(other, "event.state"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse_json(kind: EventType, body: &Value) -> Result<Notification, EnvelopeError> {
        parse(
            Dialect::MefLegatoV6,
            kind,
            Bytes::from(body.to_string()),
            ParseOptions::default(),
        )
    }

    #[test]
    fn an_item_event_refers_to_its_order_and_names_the_item() {
        let body = json!({
            "eventId": "m-1", "eventTime": "2026-11-30T10:00:00Z",
            "eventType": "serviceOrderItemStateChangeEvent",
            "event": {"id": "SO-9", "orderItemId": "2", "state": "completed",
                      "href": "https://seller.example/serviceOrder/SO-9"}
        });
        let notification = parse_json(EventType::ServiceOrderItemStateChangeEvent, &body).unwrap();
        assert_eq!(
            notification.reference.as_deref(),
            Some("https://seller.example/serviceOrder/SO-9")
        );
        let order = notification.order.unwrap();
        assert_eq!(order.state, None, "the state is the item's");
        assert_eq!(order.items[0].id, "2");
        assert_eq!(order.items[0].state, Some(State::Completed));
    }

    #[test]
    fn every_field_is_required_and_the_type_is_the_paths() {
        assert_eq!(
            parse_json(EventType::ServiceOrderCreateEvent, &json!({"eventId": "x"})).unwrap_err(),
            EnvelopeError::MissingFields(vec!["eventTime", "eventType", "event"])
        );
        let body = json!({"eventId": "m-2", "eventTime": "2026-11-30T10:00:00Z",
            "eventType": "ServiceOrderCreateEvent", "event": {"id": "SO-9"}});
        assert_eq!(
            parse_json(EventType::ServiceOrderCreateEvent, &body)
                .unwrap_err()
                .field(),
            Some("eventType"),
            "MEF writes its types in lower camel case"
        );
        let body = json!({"eventId": "m-2", "eventTime": "2026-11-30T10:00:00Z",
            "eventType": "serviceOrderItemStateChangeEvent", "event": {"id": "SO-9"}});
        match parse_json(EventType::ServiceOrderItemStateChangeEvent, &body) {
            Err(EnvelopeError::Functional { kind, .. }) => {
                assert_eq!(kind, FunctionalError::MissingItemState)
            }
            other => panic!("expected 63, got {other:?}"),
        }
    }

    #[test]
    fn states_are_mefs_not_tmf641s() {
        let event = |kind: &str, state: &str| {
            json!({"eventId": "m-3", "eventTime": "2026-11-30T10:00:00Z", "eventType": kind,
                   "event": {"id": "SO-9", "orderItemId": "1", "state": state}})
        };
        let order = EventType::ServiceOrderStateChangeEvent;
        let item = EventType::ServiceOrderItemStateChangeEvent;
        for (kind, name, state) in [
            (
                order,
                "serviceOrderStateChangeEvent",
                "assessingCancellation",
            ),
            (order, "serviceOrderStateChangeEvent", "cancelled"),
            (item, "serviceOrderItemStateChangeEvent", "partial"),
            (
                item,
                "serviceOrderItemStateChangeEvent",
                "pendingCancellation",
            ),
        ] {
            match parse_json(kind, &event(name, state)) {
                Err(EnvelopeError::Functional {
                    kind,
                    event_type,
                    field,
                    message,
                }) => {
                    assert_eq!(kind, FunctionalError::UnknownState);
                    assert_eq!(field, "event.state");
                    assert!(message.contains("not a MEF state"), "{message}");
                    let (_, expected) = message.split_once("expected one of").unwrap();
                    assert!(!expected.contains("ancel"), "{message}");
                    assert_eq!(event_type, None, "the dialect's entry names the type");
                }
                other => panic!("{state} in {name}: expected 64, got {other:?}"),
            }
        }
        let notification = parse_json(order, &event("serviceOrderStateChangeEvent", "partial"));
        assert_eq!(
            notification.unwrap().order.unwrap().state,
            Some(State::Partial)
        );
        let refused = super::super::parse(
            Dialect::MefLegatoV6,
            Some(item),
            Bytes::from(event("serviceOrderItemStateChangeEvent", "partial").to_string()),
            super::super::ParseOptions::default(),
        )
        .unwrap_err();
        assert_eq!(refused.event_type(), Some(item), "counted under its type");
    }
}
