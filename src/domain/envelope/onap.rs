//! ONAP's Listener envelope `{eventId, eventDate, eventType, event}`, as NBI sends it: the
//! order's summary in `event`, items in `event.orderItem`, and (Casablanca) dates as epoch
//! milliseconds.

use bytes::Bytes;
use serde_json::Value;

use super::{
    Dialect, EnvelopeError, EventType, Notification, ParseOptions, Role, body_object, event_date,
    event_id, invalid, json_type, object, order_facts, require, require_item_state,
    require_order_state,
};

/// Turns the bytes received at ONAP's listener into a [`Notification`], or says what the
/// sender must fix.
///
/// Checks run in the order of the error codes: body, JSON, required fields, field types, then
/// the functional rules of the event type.
pub fn parse_notification(
    raw: Bytes,
    options: ParseOptions,
) -> Result<Notification, EnvelopeError> {
    let fields = body_object(&raw, options)?;
    require(&fields, &["eventId", "eventDate", "eventType", "event"])?;
    let event_id = event_id(&fields["eventId"], "eventId")?;
    let event_date = event_date(&fields["eventDate"], "eventDate", options)?;
    let event_type = parse_event_type(&fields["eventType"], options)?;
    let event = object(&fields["event"], "event")?;
    let order = if event_type.is_service_order() {
        Some(service_order(event_type, event).map_err(|error| error.about(event_type))?)
    } else {
        None
    };
    Ok(Notification {
        event_id,
        event_type,
        event_date,
        order,
        dialect: Dialect::Onap,
        reference: None,
        source: super::Source::Seller,
        raw,
    })
}

/// The order's facts in `event`, checked against the rules of `event_type`.
fn service_order(
    event_type: EventType,
    event: &serde_json::Map<String, Value>,
) -> Result<super::OrderFacts, EnvelopeError> {
    let facts = order_facts(event_type, event, "event")?;
    match event_type.role() {
        Role::StateChange => require_order_state(event_type, &facts, "event")?,
        Role::ItemStateChange => require_item_state(
            event_type,
            &facts,
            "event.orderItem",
            "the changed item, with its id and state, in event.orderItem",
        )?,
        Role::Creation | Role::Other | Role::NotAnOrder => {}
    }
    Ok(facts)
}

fn parse_event_type(value: &Value, options: ParseOptions) -> Result<EventType, EnvelopeError> {
    let expected = "expected ServiceOrderCreationNotification, ServiceOrderStateChangeNotification \
                    or ServiceOrderItemStateChangeNotification";
    let Value::String(text) = value else {
        return Err(invalid(
            "eventType",
            format!("must be a string, not {}; {expected}", json_type(value)),
        ));
    };
    match text.parse::<EventType>() {
        Ok(kind) if Dialect::Onap.event_types().contains(&kind) => Ok(kind),
        Ok(kind) if !kind.is_service_order() && options.accept_service_inventory => Ok(kind),
        Ok(kind) if !kind.is_service_order() => Err(invalid(
            "eventType",
            format!(
                "{kind} is a service-inventory event, which this listener does not accept; \
                 set accept_service_inventory_events = true to store and forward them"
            ),
        )),
        Ok(kind) => Err(invalid(
            "eventType",
            format!(
                "{kind} is a TM Forum event type; post it to its own listener path, \
                 …/listener/{}, or {expected}",
                kind.path_name().unwrap_or_default()
            ),
        )),
        Err(_) => Err(invalid(
            "eventType",
            format!("`{text}` is not an event type; {expected}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use serde_json::Value;

    use super::super::{ItemFact, MAX_EPOCH_MILLIS, same_payload};
    use super::*;
    use crate::domain::state::State;

    fn parse(value: Value) -> Result<Notification, EnvelopeError> {
        parse_notification(Bytes::from(value.to_string()), ParseOptions::default())
    }

    fn onap_item_event() -> Value {
        json!({
            "eventId": "0f1f6b8e-2b5a-4a8e-9d3c-7f1b2c3d4e5f",
            "eventDate": "2019-03-25T08:08:56.310Z",
            "eventType": "ServiceOrderItemStateChangeNotification",
            "event": {
                "id": "5c988c98e3caf4000173cb4d",
                "href": "serviceOrder/5c988c98e3caf4000173cb4d",
                "externalId": "BBS_BSS_TrackindId6979",
                "state": "inProgress",
                "orderDate": "2019-03-25T08:08:56.297Z",
                "completionDateTime": null,
                "orderItem": [{
                    "id": "1", "action": "add", "state": "inProgress", "percentProgress": "0",
                    "@type": null, "@schemaLocation": null, "@baseType": null,
                    "orderItemRelationship": [], "service": {"id": null, "name": "x"},
                    "orderItemMessage": []
                }]
            }
        })
    }

    #[test]
    fn onap_item_event_is_parsed_with_its_facts() {
        let notification = parse(onap_item_event()).unwrap();
        assert_eq!(
            notification.event_type,
            EventType::ServiceOrderItemStateChange
        );
        assert_eq!(
            notification.event_date.to_string(),
            "2019-03-25T08:08:56.310Z"
        );
        let order = notification.order.unwrap();
        assert_eq!(order.order_id.as_str(), "5c988c98e3caf4000173cb4d");
        assert_eq!(order.state, Some(State::InProgress));
        assert_eq!(order.completion_date_time, None);
        assert_eq!(
            order.items,
            vec![ItemFact {
                id: "1".into(),
                state: Some(State::InProgress),
                action: Some("add".into())
            }]
        );
    }

    #[test]
    fn empty_and_non_json_bodies_are_told_apart() {
        assert_eq!(
            parse_notification(Bytes::new(), ParseOptions::default()).unwrap_err(),
            EnvelopeError::MissingBody
        );
        assert_eq!(
            parse_notification(Bytes::from_static(b" \n"), ParseOptions::default()).unwrap_err(),
            EnvelopeError::MissingBody
        );
        assert!(matches!(
            parse_notification(Bytes::from_static(b"{oops"), ParseOptions::default()),
            Err(EnvelopeError::InvalidBody(_))
        ));
        assert!(
            matches!(parse(json!([1, 2])), Err(EnvelopeError::InvalidBody(m)) if m.contains("an array"))
        );
    }

    #[test]
    fn casablanca_epoch_milliseconds_are_dates() {
        let mut event = onap_item_event();
        event["eventDate"] = json!(1553501336310_i64);
        event["event"]["orderDate"] = json!(1553501336297_i64);
        event["event"]["completionDateTime"] = json!(1553501336310.0);
        let body = Bytes::from(event.to_string());
        let notification = parse_notification(body.clone(), ParseOptions::default()).unwrap();
        assert_eq!(
            notification.event_date.to_string(),
            "2019-03-25T08:08:56.310Z"
        );
        let order = notification.order.unwrap();
        assert_eq!(
            order.order_date.as_deref(),
            Some("2019-03-25T08:08:56.297Z")
        );
        assert_eq!(
            order.completion_date_time.as_deref(),
            Some("2019-03-25T08:08:56.310Z")
        );
        assert_eq!(notification.raw, body, "the body is kept as received");
        // An informative date that is no date is left out, as other loose fields are.
        let mut loose = onap_item_event();
        loose["event"]["orderDate"] = json!(-5);
        let order = parse(loose).unwrap().order.unwrap();
        assert_eq!(order.order_date, None);
    }

    #[test]
    fn a_byte_order_mark_is_named_and_a_key_given_twice_counts_with_its_last_value() {
        let body = onap_item_event().to_string();
        let mut marked = b"\xEF\xBB\xBF".to_vec();
        marked.extend_from_slice(body.as_bytes());
        match parse_notification(Bytes::from(marked), ParseOptions::default()) {
            Err(EnvelopeError::InvalidBody(message)) => {
                assert!(message.contains("byte-order mark"), "{message}")
            }
            other => panic!("expected 22, got {other:?}"),
        }
        let twice = body.replacen('{', r#"{"eventId": "first","#, 1);
        let notification =
            parse_notification(Bytes::from(twice.clone()), ParseOptions::default()).unwrap();
        assert_eq!(
            notification.event_id.as_str(),
            "0f1f6b8e-2b5a-4a8e-9d3c-7f1b2c3d4e5f"
        );
        assert_eq!(notification.raw, twice.as_bytes(), "both are kept");
    }

    #[test]
    fn epoch_seconds_are_refused_with_a_hint_not_stored_as_1970() {
        let mut event = onap_item_event();
        event["eventDate"] = json!(1553501336_i64);
        match parse(event) {
            Err(EnvelopeError::InvalidField { field, message }) => {
                assert_eq!(field, "eventDate");
                assert!(
                    message.contains("looks like seconds since the epoch (2019-03-25T08:08:56Z)"),
                    "{message}"
                );
            }
            other => panic!("expected 24, got {other:?}"),
        }
        let mut earliest = onap_item_event();
        earliest["eventDate"] = json!(super::super::MIN_EPOCH_MILLIS);
        assert_eq!(
            parse(earliest).unwrap().event_date.to_string(),
            "1973-03-03T09:46:40Z"
        );
    }

    #[test]
    fn missing_fields_are_all_named() {
        let error =
            parse(json!({"eventType": "ServiceOrderCreationNotification", "eventId": null}))
                .unwrap_err();
        assert_eq!(
            error,
            EnvelopeError::MissingFields(vec!["eventId", "eventDate", "event"])
        );
        assert_eq!(error.field(), Some("eventId"));
    }

    #[test]
    fn wrong_field_types_and_values_name_the_field() {
        let cases = [
            ("eventId", json!(""), "eventId"),
            ("eventId", json!(42), "eventId"),
            ("eventDate", json!("25/03/2019"), "eventDate"),
            ("eventDate", json!(1553501336310.5), "eventDate"),
            ("eventDate", json!(-1), "eventDate"),
            ("eventDate", json!(MAX_EPOCH_MILLIS + 1), "eventDate"),
            ("eventDate", json!(true), "eventDate"),
            (
                "eventType",
                json!("ServiceOrderDeletedNotification"),
                "eventType",
            ),
            (
                "eventType",
                json!("ServiceCreationNotification"),
                "eventType",
            ),
            ("event", json!("a string"), "event"),
        ];
        for (key, value, field) in cases {
            let mut body = onap_item_event();
            body[key] = value;
            match parse(body) {
                Err(EnvelopeError::InvalidField { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{key}: expected an invalid field, got {other:?}"),
            }
        }
    }

    #[test]
    fn service_inventory_events_need_the_option() {
        let body = json!({"eventId": "s1", "eventDate": "2019-03-25T08:08:56.310Z",
            "eventType": "ServiceCreationNotification", "event": {"id": "svc-1"}});
        assert!(parse(body.clone()).is_err());
        let notification = parse_notification(
            Bytes::from(body.to_string()),
            ParseOptions {
                accept_service_inventory: true,
                ..ParseOptions::default()
            },
        )
        .unwrap();
        assert_eq!(notification.event_type, EventType::ServiceCreation);
        assert!(notification.order.is_none());
    }

    #[test]
    fn functional_rules_give_their_codes() {
        let mut no_id = onap_item_event();
        no_id["event"]["id"] = Value::Null;
        let mut no_state = onap_item_event();
        no_state["eventType"] = json!("ServiceOrderStateChangeNotification");
        no_state["event"]["state"] = Value::Null;
        let mut no_item_state = onap_item_event();
        no_item_state["event"]["orderItem"][0]["state"] = Value::Null;
        let mut no_items = onap_item_event();
        no_items["event"]["orderItem"] = json!([]);
        let mut bad_state = onap_item_event();
        bad_state["event"]["state"] = json!("COMPLETED");
        let mut bad_item_state = onap_item_event();
        bad_item_state["event"]["orderItem"][0]["state"] = json!("done");

        let cases = [
            (no_id, 61, "event.id"),
            (no_state, 62, "event.state"),
            (no_item_state, 63, "event.orderItem"),
            (no_items, 63, "event.orderItem"),
            (bad_state, 64, "event.state"),
            (bad_item_state, 64, "event.orderItem[0].state"),
        ];
        for (body, code, path) in cases {
            match parse(body) {
                Err(EnvelopeError::Functional { kind, field, .. }) => {
                    assert_eq!((kind.code(), field.as_str()), (code, path));
                }
                other => panic!("expected {code}, got {other:?}"),
            }
        }
    }

    #[test]
    fn payloads_are_compared_as_json() {
        assert!(same_payload(
            br#"{"a":1,"b":[1,2]}"#,
            br#"{ "b": [1, 2], "a": 1 }"#
        ));
        assert!(!same_payload(br#"{"a":1}"#, br#"{"a":2}"#));
        assert!(!same_payload(br#"{"a":[1,2]}"#, br#"{"a":[2,1]}"#));
        assert!(!same_payload(b"not json", b"not json either"));
    }

    #[test]
    fn nulls_and_unknown_fields_are_tolerated() {
        let mut body = onap_item_event();
        body["sellerExtension"] = json!({"any": "thing"});
        body["event"]["externalId"] = Value::Null;
        let notification = parse(body).unwrap();
        let stored: Value = serde_json::from_slice(&notification.raw).unwrap();
        assert_eq!(stored["sellerExtension"]["any"], "thing");
        assert_eq!(notification.order.unwrap().external_id, None);
    }
}
