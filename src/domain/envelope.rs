//! The envelopes of every [`Dialect`]: their value types and [`parse`], which turns received
//! bytes into a [`Notification`] or says exactly what is wrong.
//!
//! Parsing happens here once, at the edge; everything behind it receives valid types. This
//! module does no IO and knows nothing of HTTP: the HTTP layer maps [`EnvelopeError`] to each
//! dialect's status codes and error shape. Each dialect's parser is a submodule (`onap`, `tmf`,
//! `mef`) over the shared readers here (ids, dates, an order's facts). The value types live in
//! submodules too: `ids` ([`EventId`], [`OrderId`]), `event_type` ([`EventType`], [`Role`]),
//! `date` ([`EventDate`]) and `dialect` ([`Dialect`]), re-exported here.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::state::State;

/// Displays and serializes a type as its `as_str` name, and deserializes it with its `FromStr`,
/// whose error says what was expected.
macro_rules! by_name {
    ($name:ty) => {
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Asserts that each of `all` reads back from the name it displays, and that `unknown` is
/// refused with an error that says `expected`: the round trip of a [`by_name!`] type.
#[cfg(test)]
fn assert_names_read_back<T>(all: impl IntoIterator<Item = T>, unknown: &str, expected: &str)
where
    T: Copy + std::fmt::Display + std::fmt::Debug + PartialEq + std::str::FromStr<Err = String>,
{
    for value in all {
        assert_eq!(value.to_string().parse::<T>(), Ok(value));
    }
    let refused = unknown.parse::<T>().map(|_| ()).unwrap_err();
    assert!(refused.contains(expected), "{unknown}: {refused}");
}

mod date;
mod dialect;
mod event_type;
mod ids;
mod mef;
mod onap;
pub mod reconciled;
mod source;
mod tmf;

pub use self::date::{
    EventDate, InvalidDate, InvalidEpochMillis, MAX_EPOCH_MILLIS, MIN_EPOCH_MILLIS,
};
pub use self::dialect::{Dialect, Family};
pub use self::event_type::{EventType, Role};
pub use self::ids::{EventId, MAX_ID_LEN, OrderId};
pub use self::onap::parse_notification;
pub use self::source::Source;

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
    /// `eventDate` (`eventTime` in the TM Forum's dialects).
    pub event_date: EventDate,
    /// The facts about the order, for service-order events.
    pub order: Option<OrderFacts>,
    /// How the seller sent it.
    pub dialect: Dialect,
    /// Where the seller serves the order, when the event carries only a reference to it
    /// (MEF's `event.href`).
    pub reference: Option<String>,
    /// Who wrote it: a seller, or the listener when it reconciled the order.
    pub source: Source,
    /// The body exactly as received.
    pub raw: Bytes,
}

/// What the parser accepts beyond the Listener API's three event types.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// Admit the service-inventory event types that newer NBI releases send.
    pub accept_service_inventory: bool,
    /// The body was stored by a listener before: an `import` of an export, or a sender's resend
    /// of an event already stored. It is read as the release that stored it read it: the checks
    /// added since are relaxed, so that an event once accepted is never refused on its way back.
    /// A leading byte-order mark is skipped, epoch numbers from 0 (not only from 1973) are
    /// milliseconds, and a MEF state may be any TMF641 state as well as MEF's own.
    pub as_stored: bool,
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
    /// No date under any of the names the dialect reads one from (code 23, as a missing field);
    /// the first name is the contract's.
    #[error("missing required field: {first} (also read as {rest})", first = .0[0], rest = .0[1..].join(" or "))]
    MissingDate(&'static [&'static str]),
    /// A field has the wrong type or value.
    #[error("{field}: {message}")]
    InvalidField {
        /// The JSON path of the field.
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// The envelope is well-formed but its content contradicts the contract.
    #[error("{field}: {message}")]
    Functional {
        /// Which rule was broken.
        kind: FunctionalError,
        /// The event type the body names, which the rule belongs to (set by the dialect's
        /// parser once it knows the type).
        event_type: Option<EventType>,
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
            EnvelopeError::MissingDate(names) => names.first().copied(),
            EnvelopeError::InvalidField { field, .. } => Some(field),
            EnvelopeError::Functional { field, .. } => Some(field),
            EnvelopeError::MissingBody | EnvelopeError::InvalidBody(_) => None,
        }
    }

    /// The event type the refused body names, when the refusal came after it was read: the
    /// functional rules (codes 61–64) belong to a type.
    pub fn event_type(&self) -> Option<EventType> {
        match self {
            EnvelopeError::Functional { event_type, .. } => *event_type,
            _ => None,
        }
    }

    /// Names the event type that a functional rule belongs to.
    pub(super) fn about(self, kind: EventType) -> Self {
        match self {
            EnvelopeError::Functional {
                kind: rule,
                field,
                message,
                ..
            } => EnvelopeError::Functional {
                kind: rule,
                event_type: Some(kind),
                field,
                message,
            },
            other => other,
        }
    }
}

/// The JSON type of a value, for error messages.
pub(super) fn json_type(value: &Value) -> &'static str {
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

/// Turns the bytes received at a listener of `dialect` into a [`Notification`], or says what
/// the sender must fix. `path_event` is the event type the path names (TMF641 and MEF have a
/// path per event; ONAP's one path names none).
pub fn parse(
    dialect: Dialect,
    path_event: Option<EventType>,
    raw: Bytes,
    options: ParseOptions,
) -> Result<Notification, EnvelopeError> {
    match (dialect.family(), path_event) {
        (Family::Onap, _) => parse_notification(raw, options),
        (Family::Tmf, Some(kind)) => {
            tmf::parse(dialect, kind, raw, options).map_err(|error| error.about(kind))
        }
        (Family::Mef, Some(kind)) => {
            mef::parse(dialect, kind, raw, options).map_err(|error| error.about(kind))
        }
        (_, None) => Err(EnvelopeError::InvalidBody(format!(
            "a {dialect} listener path names its event"
        ))),
    }
}

/// The body as a JSON object: the first checks of every dialect (codes 21 and 22).
pub(super) fn body_object(
    raw: &[u8],
    options: ParseOptions,
) -> Result<Map<String, Value>, EnvelopeError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(EnvelopeError::MissingBody);
    }
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let raw = match raw.strip_prefix(BOM) {
        Some(rest) if options.as_stored => rest,
        _ => raw,
    };
    if raw.starts_with(BOM) {
        return Err(EnvelopeError::InvalidBody(
            "the body starts with a UTF-8 byte-order mark (EF BB BF), which JSON does not allow \
             (RFC 8259, section 8.1): send the JSON text without it"
                .to_owned(),
        ));
    }
    // A key given twice in one object counts once, with its last value, as Jackson (which ONAP
    // and most Java systems use) and serde_json both read it; the stored bytes keep both.
    let document: Value = serde_json::from_slice(raw).map_err(|error| {
        EnvelopeError::InvalidBody(format!("the body is not valid JSON: {error}"))
    })?;
    match document {
        Value::Object(fields) => Ok(fields),
        other => Err(EnvelopeError::InvalidBody(format!(
            "the body must be a JSON object, not {}",
            json_type(&other)
        ))),
    }
}

/// Refuses the body if any of `names` is absent or null, naming them all (code 23).
pub(super) fn require(
    fields: &Map<String, Value>,
    names: &[&'static str],
) -> Result<(), EnvelopeError> {
    let missing: Vec<&'static str> = names
        .iter()
        .copied()
        .filter(|name| fields.get(*name).is_none_or(Value::is_null))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(EnvelopeError::MissingFields(missing))
    }
}

/// An invalid field (code 24).
pub(super) fn invalid(field: impl Into<String>, message: impl Into<String>) -> EnvelopeError {
    EnvelopeError::InvalidField {
        field: field.into(),
        message: message.into(),
    }
}

/// Reads the eventId at `field`.
pub(super) fn event_id(value: &Value, field: &str) -> Result<EventId, EnvelopeError> {
    match value {
        Value::String(text) => EventId::try_from(text.clone()).map_err(|why| invalid(field, why)),
        other => Err(invalid(
            field,
            format!("must be a string, not {}", json_type(other)),
        )),
    }
}

/// Reads the event's date at `field`: an RFC 3339 string, or epoch milliseconds as Casablanca's
/// NBI sent them.
pub(super) fn event_date(
    value: &Value,
    field: &str,
    options: ParseOptions,
) -> Result<EventDate, EnvelopeError> {
    match value {
        Value::String(text) => text
            .parse::<EventDate>()
            .map_err(|error| invalid(field, error.to_string())),
        Value::Number(number) => {
            let read = if options.as_stored {
                EventDate::from_stored_epoch_millis(number)
            } else {
                EventDate::from_epoch_millis(number)
            };
            read.map_err(|error| invalid(field, error.to_string()))
        }
        other => Err(invalid(
            field,
            format!(
                "must be an RFC 3339 date-time string or epoch milliseconds, not {}",
                json_type(other)
            ),
        )),
    }
}

/// Reads the object at `field`, which must be one.
pub(super) fn object<'a>(
    value: &'a Value,
    field: &str,
) -> Result<&'a Map<String, Value>, EnvelopeError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(invalid(
            field,
            format!("must be a JSON object, not {}", json_type(other)),
        )),
    }
}

pub(super) fn functional(
    kind: FunctionalError,
    field: impl Into<String>,
    message: impl Into<String>,
) -> EnvelopeError {
    EnvelopeError::Functional {
        kind,
        event_type: None,
        field: field.into(),
        message: message.into(),
    }
}

/// Reads an optional state at `path`: absent or null is `None`, anything else must be a state.
pub(super) fn optional_state(
    value: Option<&Value>,
    path: &str,
) -> Result<Option<State>, EnvelopeError> {
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
pub(super) fn optional_text(event: &Map<String, Value>, key: &str) -> Option<String> {
    event.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Reads an optional date as text: a string is kept as sent; epoch milliseconds (Casablanca)
/// become RFC 3339; anything else is ignored, like other informative fields.
pub(super) fn optional_date(event: &Map<String, Value>, key: &str) -> Option<String> {
    match event.get(key)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => EventDate::from_epoch_millis(number)
            .ok()
            .map(|date| date.to_string()),
        _ => None,
    }
}

/// Reads the facts of the order object at `path` (ONAP's `event`, TMF641's
/// `event.serviceOrder`). It takes either spelling of the fields that differ: `orderItem` or
/// `serviceOrderItem`, `completionDateTime` or `completionDate`, `externalId` or the first
/// `externalReference`'s name.
pub(super) fn order_facts(
    kind: EventType,
    order: &Map<String, Value>,
    path: &str,
) -> Result<OrderFacts, EnvelopeError> {
    let id_path = format!("{path}.id");
    let order_id = order_id(order.get("id"), &id_path, || {
        format!("{kind} must carry the service order id in {id_path}")
    })?;
    let state = optional_state(order.get("state"), &format!("{path}.state"))?;

    let mut items = Vec::new();
    let items_key = ["orderItem", "serviceOrderItem"]
        .into_iter()
        .find(|key| order.get(*key).is_some_and(|value| !value.is_null()));
    if let Some(key) = items_key {
        let items_path = format!("{path}.{key}");
        let Value::Array(entries) = &order[key] else {
            return Err(invalid(
                &items_path,
                format!(
                    "must be an array of order items, not {}",
                    json_type(&order[key])
                ),
            ));
        };
        for (index, entry) in entries.iter().enumerate() {
            let Value::Object(item) = entry else { continue };
            let state = optional_state(item.get("state"), &format!("{items_path}[{index}].state"))?;
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
    let external_id = optional_text(order, "externalId").or_else(|| {
        order
            .get("externalReference")
            .and_then(Value::as_array)
            .and_then(|references| references.first())
            .and_then(|reference| reference.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    Ok(OrderFacts {
        order_id,
        state,
        external_id,
        order_date: optional_date(order, "orderDate"),
        completion_date_time: optional_date(order, "completionDateTime")
            .or_else(|| optional_date(order, "completionDate")),
        items,
    })
}

/// Reads the service order id at `path` (422/61 when it is unusable); `missing` says what to
/// send when it is absent or null.
pub(super) fn order_id(
    value: Option<&Value>,
    path: &str,
    missing: impl FnOnce() -> String,
) -> Result<OrderId, EnvelopeError> {
    let refuse = |message: String| functional(FunctionalError::MissingOrderId, path, message);
    match value {
        Some(Value::String(text)) => OrderId::try_from(text.clone())
            .map_err(|why| refuse(format!("the service order id {why}"))),
        None | Some(Value::Null) => Err(refuse(missing())),
        Some(other) => Err(refuse(format!(
            "the service order id must be a string, not {}",
            json_type(other)
        ))),
    }
}

/// Refuses a state change without the order's new state (422/62).
pub(super) fn require_order_state(
    kind: EventType,
    facts: &OrderFacts,
    path: &str,
) -> Result<(), EnvelopeError> {
    if facts.state.is_some() {
        return Ok(());
    }
    Err(functional(
        FunctionalError::MissingOrderState,
        format!("{path}.state"),
        format!("a {kind} must carry the new state in {path}.state"),
    ))
}

/// Refuses an item state change without an item carrying an id and a state (422/63).
pub(super) fn require_item_state(
    kind: EventType,
    facts: &OrderFacts,
    field: &str,
    what: &str,
) -> Result<(), EnvelopeError> {
    if facts.items.iter().any(|item| item.state.is_some()) {
        return Ok(());
    }
    Err(functional(
        FunctionalError::MissingItemState,
        field,
        format!("a {kind} must carry {what}"),
    ))
}
