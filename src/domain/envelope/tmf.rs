//! TMF641 v4 and v5 listener events: `{eventId, eventTime, eventType, event: {serviceOrder}}`
//! (v5 adds a required `@type`), one path per event type. The swagger makes no field required,
//! so the rules here are the listener's own, and the README states them:
//!
//! - The event type is the path's. A body `eventType` (or v5's `@type`) that names another is
//!   refused (400/24), because one of the two is wrong and storing it would file the event
//!   under a guess.
//! - Without an `eventId`, the key is derived from the content: `sha256:` and the hex SHA-256
//!   of the body's JSON with its keys sorted. A resend of the same content is then a duplicate,
//!   and two events that differ in anything are two events.
//! - The date is `eventTime`, else `timeOccurred` (v5) or `timeOcurred` (v4's spelling); one
//!   of them is required, so that the event takes its place on the order's timeline, and each
//!   one given (not null) must be a date.
//! - The order is `event.serviceOrder` (v5 code generators write `event.ServiceOrder`, which
//!   is taken too); a cancellation's order is `event.cancelServiceOrder.serviceOrder`.

use bytes::Bytes;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{
    Dialect, EnvelopeError, EventDate, EventId, EventType, FunctionalError, Notification,
    OrderFacts, ParseOptions, Role, body_object, event_date, event_id, functional, invalid,
    json_type, object, order_facts, order_id, require, require_order_state,
};

/// Where a TMF641 event's date is read from, first given first: `eventTime`; `timeOccurred`,
/// as TMF641 v5 spells it; `timeOcurred`, as the v4 swagger spells it.
const DATE_NAMES: &[&str] = &["eventTime", "timeOccurred", "timeOcurred"];

/// Parses an event of type `kind` (named by its path) sent by a TMF641 `dialect` seller.
pub(super) fn parse(
    dialect: Dialect,
    kind: EventType,
    raw: Bytes,
    options: ParseOptions,
) -> Result<Notification, EnvelopeError> {
    let fields = body_object(&raw, options)?;
    if dialect == Dialect::Tmf641V5 {
        require(&fields, &["@type", "event"])?;
    } else {
        require(&fields, &["event"])?;
    }
    // Every date given must be one; the first given is the event's.
    let mut dates = Vec::new();
    for &name in DATE_NAMES {
        if let Some(value) = fields.get(name).filter(|value| !value.is_null()) {
            dates.push(event_date(value, name, options)?);
        }
    }
    let event_date: EventDate = *dates
        .first()
        .ok_or(EnvelopeError::MissingDate(DATE_NAMES))?;
    let event_id = match fields.get("eventId") {
        None | Some(Value::Null) => derived_event_id(&fields)?,
        Some(value) => event_id(value, "eventId")?,
    };
    for name in ["eventType", "@type"] {
        if let Some(value) = fields.get(name).filter(|value| !value.is_null()) {
            agree_with_path(kind, value, name)?;
        }
    }
    let event = object(&fields["event"], "event")?;
    let facts = if kind.role() == Role::Other && kind.as_str().starts_with("Cancel") {
        cancellation_facts(kind, event)?
    } else {
        // Either spelling; when both are given, each must be an order, and the first counts.
        let mut orders = Vec::new();
        for key in ["serviceOrder", "ServiceOrder"] {
            if let Some(order) = event.get(key) {
                let path = format!("event.{key}");
                let facts = order_facts(kind, object(order, &path)?, &path)?;
                if kind.role() == Role::StateChange {
                    require_order_state(kind, &facts, &path)?;
                }
                orders.push(facts);
            }
        }
        orders.into_iter().next().ok_or_else(|| {
            functional(
                FunctionalError::MissingOrderId,
                "event.serviceOrder",
                format!("{kind} must carry the service order in event.serviceOrder"),
            )
        })?
    };
    Ok(Notification {
        event_id,
        event_type: kind,
        event_date,
        order: Some(facts),
        dialect,
        reference: None,
        source: super::Source::Seller,
        raw,
    })
}

/// Refuses a body type that is not the path's. Both spellings of the path's type are taken.
fn agree_with_path(kind: EventType, value: &Value, field: &str) -> Result<(), EnvelopeError> {
    let Value::String(text) = value else {
        return Err(invalid(
            field,
            format!("must be a string, not {}", json_type(value)),
        ));
    };
    if text.parse::<EventType>() == Ok(kind) {
        return Ok(());
    }
    Err(invalid(
        field,
        format!(
            "`{text}` does not match the listener path, which is for {kind}; post the event \
             to the path of its type, or send {field} {kind}"
        ),
    ))
}

/// The key of an event sent without an eventId: the SHA-256 of its JSON with sorted keys.
fn derived_event_id(fields: &Map<String, Value>) -> Result<EventId, EnvelopeError> {
    // serde_json's map is ordered by key, so this is the same for any key order and spacing.
    let canonical = Value::Object(fields.clone()).to_string();
    let digest = Sha256::digest(canonical.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    // 71 printable characters: always a valid id; the error is only the type's.
    EventId::try_from(format!("sha256:{hex}")).map_err(|why| invalid("eventId", why))
}

/// A cancellation request's facts: the order it cancels, with no order state (its `state` is
/// the request's TaskStateType, which the timeline shows through the raw event).
fn cancellation_facts(
    kind: EventType,
    event: &Map<String, Value>,
) -> Result<OrderFacts, EnvelopeError> {
    let id = event
        .get("cancelServiceOrder")
        .and_then(|request| request.get("serviceOrder"))
        .and_then(|order| order.get("id"));
    let order_id = order_id(id, "event.cancelServiceOrder.serviceOrder.id", || {
        format!("{kind} must name the order it cancels in event.cancelServiceOrder.serviceOrder.id")
    })?;
    Ok(OrderFacts {
        order_id,
        state: None,
        external_id: None,
        order_date: None,
        completion_date_time: None,
        items: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::state::State;

    fn state_change() -> Value {
        json!({
            "eventId": "tmf-1",
            "eventTime": "2026-11-30T10:00:00.000Z",
            "eventType": "ServiceOrderStateChangeEvent",
            "event": {"serviceOrder": {
                "id": "SO-1", "state": "inProgress", "externalId": "BSS-1",
                "orderDate": "2026-11-30T09:00:00Z",
                "serviceOrderItem": [{"id": "1", "action": "add", "state": "inProgress",
                                      "service": {"name": "x"}}]
            }}
        })
    }

    fn parse_as(
        dialect: Dialect,
        kind: EventType,
        body: &Value,
    ) -> Result<Notification, EnvelopeError> {
        parse(
            dialect,
            kind,
            Bytes::from(body.to_string()),
            ParseOptions::default(),
        )
    }

    #[test]
    fn a_v4_state_change_gives_the_order_and_its_items() {
        let notification = parse_as(
            Dialect::Tmf641V4,
            EventType::ServiceOrderStateChangeEvent,
            &state_change(),
        )
        .unwrap();
        assert_eq!(notification.dialect, Dialect::Tmf641V4);
        let order = notification.order.unwrap();
        assert_eq!(order.order_id.as_str(), "SO-1");
        assert_eq!(order.state, Some(State::InProgress));
        assert_eq!(order.external_id.as_deref(), Some("BSS-1"));
        assert_eq!(order.items.len(), 1);
    }

    #[test]
    fn v5_needs_its_type_and_takes_the_generated_spelling_of_the_order() {
        let mut body = state_change();
        let order = body["event"]["serviceOrder"].take();
        body["event"] = json!({"ServiceOrder": order});
        assert_eq!(
            parse_as(
                Dialect::Tmf641V5,
                EventType::ServiceOrderStateChangeEvent,
                &body
            )
            .unwrap_err(),
            EnvelopeError::MissingFields(vec!["@type"])
        );
        body["@type"] = json!("ServiceOrderStateChangeEvent");
        let notification = parse_as(
            Dialect::Tmf641V5,
            EventType::ServiceOrderStateChangeEvent,
            &body,
        )
        .unwrap();
        assert_eq!(notification.order.unwrap().order_id.as_str(), "SO-1");
    }

    #[test]
    fn a_type_that_contradicts_the_path_is_refused() {
        let error = parse_as(
            Dialect::Tmf641V4,
            EventType::ServiceOrderMilestoneEvent,
            &state_change(),
        )
        .unwrap_err();
        assert_eq!(error.field(), Some("eventType"));
        assert!(
            error.to_string().contains("ServiceOrderMilestoneEvent"),
            "{error}"
        );
    }

    #[test]
    fn without_an_event_id_the_key_is_the_content_whatever_its_key_order() {
        let mut body = state_change();
        body.as_object_mut().unwrap().remove("eventId");
        let first = parse_as(
            Dialect::Tmf641V4,
            EventType::ServiceOrderStateChangeEvent,
            &body,
        )
        .unwrap();
        let reordered = br#"{"event":{"serviceOrder":{"state":"inProgress","id":"SO-1","externalId":"BSS-1","orderDate":"2026-11-30T09:00:00Z","serviceOrderItem":[{"state":"inProgress","id":"1","action":"add","service":{"name":"x"}}]}},"eventType":"ServiceOrderStateChangeEvent","eventTime":"2026-11-30T10:00:00.000Z"}"#;
        let second = parse(
            Dialect::Tmf641V4,
            EventType::ServiceOrderStateChangeEvent,
            Bytes::from_static(reordered),
            ParseOptions::default(),
        )
        .unwrap();
        assert_eq!(first.event_id, second.event_id);
        assert!(first.event_id.as_str().starts_with("sha256:"));
        body["eventTime"] = json!("2026-11-30T10:00:01.000Z");
        let other = parse_as(
            Dialect::Tmf641V4,
            EventType::ServiceOrderStateChangeEvent,
            &body,
        )
        .unwrap();
        assert_ne!(first.event_id, other.event_id);
    }

    #[test]
    fn a_date_is_required_and_the_misspelt_one_counts() {
        let mut body = state_change();
        body.as_object_mut().unwrap().remove("eventTime");
        assert_eq!(
            parse_as(
                Dialect::Tmf641V4,
                EventType::ServiceOrderStateChangeEvent,
                &body
            )
            .unwrap_err(),
            EnvelopeError::MissingDate(DATE_NAMES)
        );
        assert_eq!(
            EnvelopeError::MissingDate(DATE_NAMES).to_string(),
            "missing required field: eventTime (also read as timeOccurred or timeOcurred)"
        );
        body["timeOcurred"] = json!("2026-11-30T10:00:00Z");
        assert!(
            parse_as(
                Dialect::Tmf641V4,
                EventType::ServiceOrderStateChangeEvent,
                &body
            )
            .is_ok()
        );
    }

    #[test]
    fn functional_rules_hold_in_tmf_paths() {
        let mut no_state = state_change();
        no_state["event"]["serviceOrder"]["state"] = Value::Null;
        let mut no_order = state_change();
        no_order["event"] = json!({});
        let mut bad_item = state_change();
        bad_item["event"]["serviceOrder"]["serviceOrderItem"][0]["state"] = json!("done");
        for (body, code, path) in [
            (no_state, 62, "event.serviceOrder.state"),
            (no_order, 61, "event.serviceOrder"),
            (bad_item, 64, "event.serviceOrder.serviceOrderItem[0].state"),
        ] {
            match parse_as(
                Dialect::Tmf641V4,
                EventType::ServiceOrderStateChangeEvent,
                &body,
            ) {
                Err(EnvelopeError::Functional { kind, field, .. }) => {
                    assert_eq!((kind.code(), field.as_str()), (code, path));
                }
                other => panic!("expected {code}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_cancellation_names_the_order_it_cancels_without_a_state() {
        let body = json!({
            "eventId": "c-1", "eventTime": "2026-11-30T10:00:00Z",
            "eventType": "CancelServiceOrderStateChangeEvent",
            "event": {"cancelServiceOrder": {"id": "C-1", "state": "done",
                      "serviceOrder": {"id": "SO-1"}}}
        });
        let order = parse_as(
            Dialect::Tmf641V4,
            EventType::CancelServiceOrderStateChangeEvent,
            &body,
        )
        .unwrap()
        .order
        .unwrap();
        assert_eq!(order.order_id.as_str(), "SO-1");
        assert_eq!(order.state, None);
    }
}
