//! The events the listener writes itself: when the seller's Service Ordering API shows an order
//! that differs from what its notifications told, reconciliation stores a **synthesized** event
//! that carries the fetched order ([`synthesize`]), and [`parse`] reads one back (an import).
//!
//! Its body is an envelope of its own, in no seller's dialect, so that it can never be taken for
//! a seller's notification:
//!
//! ```json
//! {"eventId": "reconciled:SO-1:3f2a…", "eventDate": "2026-11-30T14:02:11.503Z",
//!  "eventType": "ServiceOrderStateChangeNotification", "source": "reconciled",
//!  "reconciliation": {"sellerApi": "nbi", "suspect": ["stale"], "orderState": {"from": "inProgress", "to": "completed"}},
//!  "event": { …the order exactly as the seller's API answered it… }}
//! ```
//!
//! - `eventId` starts with `reconciled:`, then the order id and a digest of what was seen: the
//!   order's newest event and the seller's order. The same repair, found twice (by `serve`'s
//!   sweep and by `order-listener reconcile` at once), is then one event.
//! - `eventType` is the dialect family's state change (or its creation, for an order the
//!   listener never heard of), so that the event folds like the seller's own.
//! - `eventDate` is when the order was fetched, never before the newest event already applied:
//!   a seller's event that arrives later with an earlier eventDate still folds before it.

use bytes::Bytes;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{
    Dialect, EnvelopeError, EventDate, EventId, EventType, Family, Notification, OrderFacts,
    ParseOptions, Source, body_object, event_date, event_id, invalid, object, order_facts, require,
};

/// The prefix of every synthesized event's id.
pub const EVENT_ID_PREFIX: &str = "reconciled:";

/// What a synthesized event is made of.
#[derive(Debug, Clone)]
pub struct Synthesis<'a> {
    /// The dialect of the order's events: the event is filed under it.
    pub dialect: Dialect,
    /// The order as the seller's API answered it (its facts, read with `snapshot::read_order`).
    pub order: &'a OrderFacts,
    /// The answer's body, a JSON object.
    pub fetched: &'a [u8],
    /// Whether the listener had no event of the order: the event is then its creation.
    pub creation: bool,
    /// The eventId of the order's newest event, if any: part of the digest.
    pub newest_event: Option<&'a EventId>,
    /// When the order was fetched, or later (see the module documentation).
    pub event_date: EventDate,
    /// Why the order was checked, and what differed: the body's `reconciliation`.
    pub reconciliation: Value,
}

/// The event type a synthesized event of `dialect` takes.
pub fn event_type(dialect: Dialect, creation: bool) -> EventType {
    match (dialect.family(), creation) {
        (Family::Onap, true) => EventType::ServiceOrderCreation,
        (Family::Onap, false) => EventType::ServiceOrderStateChange,
        (_, true) => EventType::ServiceOrderCreateEvent,
        (_, false) => EventType::ServiceOrderStateChangeEvent,
    }
}

/// The synthesized event for `synthesis`. `Err` when the fetched body is not a JSON object
/// (which `read_order` already refused) or the order id is too long for an eventId.
pub fn synthesize(synthesis: &Synthesis<'_>) -> Result<Notification, EnvelopeError> {
    let order: Value = serde_json::from_slice(synthesis.fetched)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| invalid("event", "the seller's order is not a JSON object"))?;
    let mut digest = Sha256::new();
    digest.update(synthesis.order.order_id.as_str().as_bytes());
    digest.update([0]);
    digest.update(
        synthesis
            .newest_event
            .map_or("", |id| id.as_str())
            .as_bytes(),
    );
    digest.update([0]);
    digest.update(synthesis.fetched);
    let digest = hex::encode(&digest.finalize()[..12]);
    let id = format!(
        "{EVENT_ID_PREFIX}{}:{digest}",
        synthesis.order.order_id.as_str()
    );
    let event_id =
        EventId::try_from(id).map_err(|why| invalid("eventId", format!("synthesized: {why}")))?;
    let event_type = event_type(synthesis.dialect, synthesis.creation);
    let body = json!({
        "eventId": event_id.as_str(),
        "eventDate": synthesis.event_date.to_string(),
        "eventType": event_type.as_str(),
        "source": Source::Reconciled.as_str(),
        "reconciliation": synthesis.reconciliation,
        "event": order,
    });
    Ok(Notification {
        event_id,
        event_type,
        event_date: synthesis.event_date,
        order: Some(synthesis.order.clone()),
        dialect: synthesis.dialect,
        reference: None,
        source: Source::Reconciled,
        raw: Bytes::from(body.to_string()),
    })
}

/// Reads a synthesized event's body back, filed under `dialect`.
pub fn parse(dialect: Dialect, raw: Bytes) -> Result<Notification, EnvelopeError> {
    let fields: Map<String, Value> = body_object(&raw, ParseOptions::default())?;
    require(
        &fields,
        &["eventId", "eventDate", "eventType", "source", "event"],
    )?;
    let (id, date, kind, event) = (
        &fields["eventId"],
        &fields["eventDate"],
        &fields["eventType"],
        &fields["event"],
    );
    if fields["source"].as_str() != Some(Source::Reconciled.as_str()) {
        return Err(invalid(
            "source",
            "a synthesized event's source is \"reconciled\"",
        ));
    }
    let event_id = event_id(id, "eventId")?;
    if !event_id.as_str().starts_with(EVENT_ID_PREFIX) {
        return Err(invalid(
            "eventId",
            format!("a synthesized event's id starts with {EVENT_ID_PREFIX}"),
        ));
    }
    let event_type = [event_type(dialect, true), event_type(dialect, false)]
        .into_iter()
        .find(|kind_of| kind.as_str() == Some(kind_of.as_str()))
        .ok_or_else(|| {
            invalid(
                "eventType",
                format!("not a type a synthesized {dialect} event takes"),
            )
        })?;
    let order = order_facts(event_type, object(event, "event")?, "event")?;
    Ok(Notification {
        event_id,
        event_type,
        event_date: event_date(date, "eventDate", ParseOptions::default())?,
        order: Some(order),
        dialect,
        reference: None,
        source: Source::Reconciled,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::snapshot::read_order;
    use crate::domain::state::State;

    #[test]
    fn a_synthesized_event_reads_back_as_itself_and_never_as_a_sellers() {
        let fetched = br#"{"id":"SO-1","state":"completed","orderItem":[{"id":"01","state":"completed","action":"add"}]}"#;
        let order = read_order(fetched).unwrap();
        let newest: EventId = "e-9".parse().unwrap();
        let date: EventDate = "2026-11-30T14:02:11.503Z".parse().unwrap();
        let synthesis = Synthesis {
            dialect: Dialect::Onap,
            order: &order,
            fetched,
            creation: false,
            newest_event: Some(&newest),
            event_date: date,
            reconciliation: json!({"sellerApi": "nbi", "suspect": ["stale"]}),
        };
        let event = synthesize(&synthesis).unwrap();
        assert!(event.event_id.as_str().starts_with("reconciled:SO-1:"));
        assert_eq!(event.event_type, EventType::ServiceOrderStateChange);
        assert_eq!(event.source, Source::Reconciled);
        assert_eq!(event.order.as_ref().unwrap().state, Some(State::Completed));
        let again = synthesize(&synthesis).unwrap();
        assert_eq!(again.event_id, event.event_id, "the same repair has one id");
        let later: EventId = "e-10".parse().unwrap();
        let other = synthesize(&Synthesis {
            newest_event: Some(&later),
            ..synthesis.clone()
        })
        .unwrap();
        assert_ne!(
            other.event_id, event.event_id,
            "a repair after new events is another"
        );

        let read = parse(Dialect::Onap, event.raw.clone()).unwrap();
        assert_eq!(read.event_id, event.event_id);
        assert_eq!(read.event_date, date);
        assert_eq!(read.order, event.order);
        assert_eq!(read.source, Source::Reconciled);
        let body: Value = serde_json::from_slice(&event.raw).unwrap();
        assert_eq!(body["source"], "reconciled");
        assert_eq!(body["event"]["orderItem"][0]["action"], "add");

        // A seller's notification is not read as a synthesized event.
        let sellers = json!({"eventId": "e-1", "eventDate": "2026-11-30T14:02:11.503Z",
            "eventType": "ServiceOrderStateChangeNotification", "event": {"id": "SO-1"}});
        assert!(parse(Dialect::Onap, Bytes::from(sellers.to_string())).is_err());
        let forged = json!({"eventId": "e-1", "eventDate": "2026-11-30T14:02:11.503Z",
            "eventType": "ServiceOrderStateChangeNotification", "source": "reconciled",
            "event": {"id": "SO-1"}});
        let error = parse(Dialect::Onap, Bytes::from(forged.to_string())).unwrap_err();
        assert!(error.to_string().contains("reconciled:"), "{error}");
    }

    #[test]
    fn a_synthesized_event_takes_its_familys_types() {
        assert_eq!(
            event_type(Dialect::Onap, true),
            EventType::ServiceOrderCreation
        );
        assert_eq!(
            event_type(Dialect::Tmf641V5, false),
            EventType::ServiceOrderStateChangeEvent
        );
        assert_eq!(
            event_type(Dialect::MefLegatoV6, true),
            EventType::ServiceOrderCreateEvent
        );
    }
}
