//! The Listener envelope `{eventId, eventDate, eventType, event}`: its value types and the one
//! function that turns received bytes into a [`Notification`] or says exactly what is wrong.
//!
//! Parsing happens here once, at the edge; everything behind it receives valid types. This
//! module does no IO and knows nothing of HTTP: the HTTP layer maps [`EnvelopeError`] to status
//! codes. Its value types live in submodules: `ids` ([`EventId`], [`OrderId`]), `event_type`
//! ([`EventType`]) and `date` ([`EventDate`]), re-exported here.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::state::State;

mod date;
mod event_type;
mod ids;

pub use self::date::{EventDate, InvalidDate, InvalidEpochMillis, MAX_EPOCH_MILLIS};
pub use self::event_type::EventType;
pub use self::ids::{EventId, MAX_ID_LEN, OrderId};

/// What one item of `event.orderItem` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemFact {
    /// The item's id within its order.
    pub id: String,
    /// The item's state, when the event gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    /// add, modify or delete, when the event gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// What a service-order event says about its order: the part the projection needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderFacts {
    /// `event.id`.
    pub order_id: OrderId,
    /// `event.state`, the order's state when the event was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    /// `event.externalId`, the buyer's own reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// `event.orderDate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_date: Option<String>,
    /// `event.completionDateTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_date_time: Option<String>,
    /// The items of `event.orderItem` that carry an id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemFact>,
}

/// A received notification that passed every check.
#[derive(Debug, Clone)]
pub struct Notification {
    /// `eventId`.
    pub event_id: EventId,
    /// `eventType`.
    pub event_type: EventType,
    /// `eventDate`.
    pub event_date: EventDate,
    /// The facts about the order, for service-order events.
    pub order: Option<OrderFacts>,
    /// The body exactly as received.
    pub raw: Bytes,
}

/// What the parser accepts beyond the Listener API's three event types.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// Admit the service-inventory event types that newer NBI releases send.
    pub accept_service_inventory: bool,
}

/// A numbered functional error (HTTP 422). The codes are ours: the spec leaves 422 open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionalError {
    /// 60: the eventId is already stored with another payload.
    EventIdConflict,
    /// 61: a service-order event without a usable `event.id`.
    MissingOrderId,
    /// 62: a state change without `event.state`.
    MissingOrderState,
    /// 63: an item state change without an `orderItem[]` entry carrying `id` and `state`.
    MissingItemState,
    /// 64: a state value outside TMF641's StateType.
    UnknownState,
}

impl FunctionalError {
    /// Every functional error, for documentation and tests.
    pub const ALL: [FunctionalError; 5] = [
        FunctionalError::EventIdConflict,
        FunctionalError::MissingOrderId,
        FunctionalError::MissingOrderState,
        FunctionalError::MissingItemState,
        FunctionalError::UnknownState,
    ];

    /// The number in ErrorRepresentation's `code`.
    pub fn code(self) -> u16 {
        match self {
            FunctionalError::EventIdConflict => 60,
            FunctionalError::MissingOrderId => 61,
            FunctionalError::MissingOrderState => 62,
            FunctionalError::MissingItemState => 63,
            FunctionalError::UnknownState => 64,
        }
    }

    /// A short reason phrase for ErrorRepresentation's `reason`.
    pub fn reason(self) -> &'static str {
        match self {
            FunctionalError::EventIdConflict => "Event id already used with another payload",
            FunctionalError::MissingOrderId => "Event has no service order id",
            FunctionalError::MissingOrderState => "State change without a state",
            FunctionalError::MissingItemState => "Item state change without an item state",
            FunctionalError::UnknownState => "Unknown state",
        }
    }
}

/// Why a body was refused. Each variant carries what the sender needs to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The body is empty.
    #[error("the request has no body; send the Listener JSON object")]
    MissingBody,
    /// The body is not JSON, or is JSON but not an object.
    #[error("{0}")]
    InvalidBody(String),
    /// Required fields are missing or null; the names are in the order of the spec.
    #[error("missing required field{s}: {list}", s = if .0.len() > 1 { "s" } else { "" }, list = .0.join(", "))]
    MissingFields(Vec<&'static str>),
    /// A field has the wrong type or value.
    #[error("{field}: {message}")]
    InvalidField {
        /// The JSON path of the field.
        field: &'static str,
        /// What is wrong and what is expected.
        message: String,
    },
    /// The envelope is well-formed but its content contradicts the contract.
    #[error("{field}: {message}")]
    Functional {
        /// Which rule was broken.
        kind: FunctionalError,
        /// The JSON path of the offending field.
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

impl EnvelopeError {
    /// The JSON path of the field at fault, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            EnvelopeError::MissingFields(fields) => fields.first().copied(),
            EnvelopeError::InvalidField { field, .. } => Some(field),
            EnvelopeError::Functional { field, .. } => Some(field),
            EnvelopeError::MissingBody | EnvelopeError::InvalidBody(_) => None,
        }
    }
}

/// The JSON type of a value, for error messages.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether two bodies carry the same payload: the same JSON, whatever the key order and white
/// space. Identical bytes answer at once; others are parsed and compared.
pub fn same_payload(stored: &[u8], received: &[u8]) -> bool {
    if stored == received {
        return true;
    }
    match (
        serde_json::from_slice::<Value>(stored),
        serde_json::from_slice::<Value>(received),
    ) {
        (Ok(stored), Ok(received)) => stored == received,
        _ => false,
    }
}

/// Turns the received bytes into a [`Notification`], or says what the sender must fix.
///
/// Checks run in the order of the error codes: body, JSON, required fields, field types, then
/// the functional rules of the event type.
pub fn parse_notification(
    raw: Bytes,
    options: ParseOptions,
) -> Result<Notification, EnvelopeError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(EnvelopeError::MissingBody);
    }
    let document: Value = serde_json::from_slice(&raw).map_err(|error| {
        EnvelopeError::InvalidBody(format!("the body is not valid JSON: {error}"))
    })?;
    let Value::Object(fields) = &document else {
        return Err(EnvelopeError::InvalidBody(format!(
            "the body must be a JSON object, not {}",
            json_type(&document)
        )));
    };

    let missing: Vec<&'static str> = ["eventId", "eventDate", "eventType", "event"]
        .into_iter()
        .filter(|name| fields.get(*name).is_none_or(Value::is_null))
        .collect();
    if !missing.is_empty() {
        return Err(EnvelopeError::MissingFields(missing));
    }

    let event_id = match &fields["eventId"] {
        Value::String(text) => {
            EventId::try_from(text.clone()).map_err(|why| EnvelopeError::InvalidField {
                field: "eventId",
                message: why.to_owned(),
            })?
        }
        other => {
            return Err(EnvelopeError::InvalidField {
                field: "eventId",
                message: format!("must be a string, not {}", json_type(other)),
            });
        }
    };
    let event_date = match &fields["eventDate"] {
        Value::String(text) => {
            text.parse::<EventDate>()
                .map_err(|error| EnvelopeError::InvalidField {
                    field: "eventDate",
                    message: error.to_string(),
                })?
        }
        // Casablanca's NBI sent epoch milliseconds.
        Value::Number(number) => {
            EventDate::from_epoch_millis(number).map_err(|error| EnvelopeError::InvalidField {
                field: "eventDate",
                message: error.to_string(),
            })?
        }
        other => {
            return Err(EnvelopeError::InvalidField {
                field: "eventDate",
                message: format!(
                    "must be an RFC 3339 date-time string or epoch milliseconds, not {}",
                    json_type(other)
                ),
            });
        }
    };
    let event_type = parse_event_type(&fields["eventType"], options)?;
    let Value::Object(event) = &fields["event"] else {
        return Err(EnvelopeError::InvalidField {
            field: "event",
            message: format!("must be a JSON object, not {}", json_type(&fields["event"])),
        });
    };

    let order = if event_type.is_service_order() {
        Some(order_facts(event_type, event)?)
    } else {
        None
    };
    Ok(Notification {
        event_id,
        event_type,
        event_date,
        order,
        raw,
    })
}

fn parse_event_type(value: &Value, options: ParseOptions) -> Result<EventType, EnvelopeError> {
    let expected = "expected ServiceOrderCreationNotification, ServiceOrderStateChangeNotification \
                    or ServiceOrderItemStateChangeNotification";
    let Value::String(text) = value else {
        return Err(EnvelopeError::InvalidField {
            field: "eventType",
            message: format!("must be a string, not {}; {expected}", json_type(value)),
        });
    };
    match text.parse::<EventType>() {
        Ok(kind) if kind.is_service_order() || options.accept_service_inventory => Ok(kind),
        Ok(kind) => Err(EnvelopeError::InvalidField {
            field: "eventType",
            message: format!(
                "{kind} is a service-inventory event, which this listener does not accept; \
                 set accept_service_inventory_events = true to store and forward them"
            ),
        }),
        Err(_) => Err(EnvelopeError::InvalidField {
            field: "eventType",
            message: format!("`{text}` is not an event type; {expected}"),
        }),
    }
}

fn functional(
    kind: FunctionalError,
    field: impl Into<String>,
    message: impl Into<String>,
) -> EnvelopeError {
    EnvelopeError::Functional {
        kind,
        field: field.into(),
        message: message.into(),
    }
}

/// Reads an optional state at `path`: absent or null is `None`, anything else must be a state.
fn optional_state(value: Option<&Value>, path: &str) -> Result<Option<State>, EnvelopeError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => text
            .parse::<State>()
            .map(Some)
            .map_err(|error| functional(FunctionalError::UnknownState, path, error.to_string())),
        Some(other) => Err(functional(
            FunctionalError::UnknownState,
            path,
            format!("must be a TMF641 state string, not {}", json_type(other)),
        )),
    }
}

/// Reads an optional string, tolerating null and ignoring other types: these fields are only
/// informative, and real senders fill them loosely.
fn optional_text(event: &Map<String, Value>, key: &str) -> Option<String> {
    event.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Reads an optional date as text: a string is kept as sent; epoch milliseconds (Casablanca)
/// become RFC 3339; anything else is ignored, like other informative fields.
fn optional_date(event: &Map<String, Value>, key: &str) -> Option<String> {
    match event.get(key)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => EventDate::from_epoch_millis(number)
            .ok()
            .map(|date| date.to_string()),
        _ => None,
    }
}

fn order_facts(kind: EventType, event: &Map<String, Value>) -> Result<OrderFacts, EnvelopeError> {
    let order_id = match event.get("id") {
        Some(Value::String(text)) => OrderId::try_from(text.clone()).map_err(|why| {
            functional(
                FunctionalError::MissingOrderId,
                "event.id",
                format!("the service order id {why}"),
            )
        })?,
        None | Some(Value::Null) => {
            return Err(functional(
                FunctionalError::MissingOrderId,
                "event.id",
                format!("{kind} must carry the service order id in event.id"),
            ));
        }
        Some(other) => {
            return Err(functional(
                FunctionalError::MissingOrderId,
                "event.id",
                format!(
                    "the service order id must be a string, not {}",
                    json_type(other)
                ),
            ));
        }
    };
    let state = optional_state(event.get("state"), "event.state")?;
    if kind == EventType::ServiceOrderStateChange && state.is_none() {
        return Err(functional(
            FunctionalError::MissingOrderState,
            "event.state",
            "a ServiceOrderStateChangeNotification must carry the new state in event.state",
        ));
    }

    let mut items = Vec::new();
    match event.get("orderItem") {
        None | Some(Value::Null) => {}
        Some(Value::Array(entries)) => {
            for (index, entry) in entries.iter().enumerate() {
                let Value::Object(item) = entry else { continue };
                let state = optional_state(
                    item.get("state"),
                    &format!("event.orderItem[{index}].state"),
                )?;
                // Items without an id cannot be followed; they are kept in the raw body only.
                let Some(id) = item
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|id| !id.is_empty())
                else {
                    continue;
                };
                let action = item
                    .get("action")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                items.push(ItemFact {
                    id: id.to_owned(),
                    state,
                    action,
                });
            }
        }
        Some(other) => {
            return Err(EnvelopeError::InvalidField {
                field: "event.orderItem",
                message: format!("must be an array of order items, not {}", json_type(other)),
            });
        }
    }
    if kind == EventType::ServiceOrderItemStateChange
        && !items.iter().any(|item| item.state.is_some())
    {
        return Err(functional(
            FunctionalError::MissingItemState,
            "event.orderItem",
            "a ServiceOrderItemStateChangeNotification must carry the changed item, with its id \
             and state, in event.orderItem",
        ));
    }

    Ok(OrderFacts {
        order_id,
        state,
        external_id: optional_text(event, "externalId"),
        order_date: optional_date(event, "orderDate"),
        completion_date_time: optional_date(event, "completionDateTime"),
        items,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
