//! An order fetched from the seller's Service Ordering API (`GET …/serviceOrder/{id}`), and the
//! rule that merges it into the facts of the event that asked for it. Pure: the fetch is
//! `forward::seller_api`'s, the storing `store`'s.
//!
//! A snapshot shows the order when it was fetched, not when the event happened: by then the
//! seller may have moved on. So it only fills in what the event left out, for that event:
//!
//! - `externalId`, `orderDate` and `completionDateTime`, when the event gives none;
//! - the items' ids and actions, never their states: an item the event does not name is added
//!   without a state, an item it names gets its action when it has none;
//! - states only for a dialect whose events carry none (MEF v5): there, the order's state for a
//!   creation or a state change, and the state of the item an item state change names. A
//!   dialect whose events carry states (MEF v6: every state change says its state) takes its
//!   states from its events alone: a snapshot fetched after the seller moved on would put a
//!   later state at an earlier event (a creation), and show transitions that never happened.
//!
//! A state the event gives is never overridden: the event is the seller's word at its time.

use serde_json::Value;

use super::envelope::{
    Dialect, EnvelopeError, EventType, ItemFact, OrderFacts, OrderId, ParseOptions, Role,
    body_object, invalid, order_facts,
};

/// The seller answered another order than the one the event is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the seller answered order {fetched} for an event about order {event}")]
pub struct OtherOrder {
    /// The event's order.
    pub event: OrderId,
    /// The order the seller answered.
    pub fetched: OrderId,
}

/// Reads a fetched `ServiceOrder` (TMF641 or MEF): its id, state, externalId, dates and items,
/// with the envelope's own reader, so that either spelling of the fields that differ is taken
/// (`serviceOrderItem` or `orderItem`, `completionDate` or `completionDateTime`).
pub fn read_order(body: &[u8]) -> Result<OrderFacts, EnvelopeError> {
    let order = body_object(body, ParseOptions::default())?;
    if !order.get("id").is_some_and(Value::is_string) {
        return Err(invalid(
            "serviceOrder.id",
            "the seller's order must carry its id as a string",
        ));
    }
    // The type only names the order in a message about a missing id, which was checked above.
    order_facts(EventType::ServiceOrderCreateEvent, &order, "serviceOrder")
}

/// The facts of an event of `event_type` (`event`, as it said them) with what the `fetched`
/// order fills in (see the module documentation).
pub fn merge(
    dialect: Dialect,
    event_type: EventType,
    event: &OrderFacts,
    fetched: &OrderFacts,
) -> Result<OrderFacts, OtherOrder> {
    let fill_states = !dialect.carries_states();
    if event.order_id != fetched.order_id {
        return Err(OtherOrder {
            event: event.order_id.clone(),
            fetched: fetched.order_id.clone(),
        });
    }
    let role = event_type.role();
    let mut merged = event.clone();
    merged.external_id = event
        .external_id
        .clone()
        .or_else(|| fetched.external_id.clone());
    merged.order_date = event
        .order_date
        .clone()
        .or_else(|| fetched.order_date.clone());
    merged.completion_date_time = event
        .completion_date_time
        .clone()
        .or_else(|| fetched.completion_date_time.clone());
    if fill_states && merged.state.is_none() && matches!(role, Role::Creation | Role::StateChange) {
        merged.state = fetched.state;
    }
    let named = event.items.len();
    for item in &fetched.items {
        let mut known = false;
        for own in merged.items[..named]
            .iter_mut()
            .filter(|own| own.id == item.id)
        {
            known = true;
            if own.action.is_none() {
                own.action = item.action.clone();
            }
            if fill_states && own.state.is_none() && role == Role::ItemStateChange {
                own.state = item.state;
            }
        }
        if !known && !merged.items.iter().any(|own| own.id == item.id) {
            merged.items.push(ItemFact {
                id: item.id.clone(),
                state: None,
                action: item.action.clone(),
            });
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::state::State;

    fn fetched() -> OrderFacts {
        let body = json!({
            "id": "SO-1", "state": "completed", "externalId": "BSS-1",
            "orderDate": "2026-11-30T09:00:00Z", "completionDate": "2026-11-30T12:00:00Z",
            "serviceOrderItem": [
                {"id": "1", "action": "add", "state": "completed"},
                {"id": "2", "action": "modify", "state": "failed"},
                {"id": "2", "action": "modify", "state": "failed"}
            ]
        });
        read_order(body.to_string().as_bytes()).unwrap()
    }

    fn event(state: Option<State>, items: Vec<ItemFact>) -> OrderFacts {
        OrderFacts {
            order_id: "SO-1".parse().unwrap(),
            state,
            external_id: None,
            order_date: None,
            completion_date_time: None,
            items,
        }
    }

    fn item(id: &str, state: Option<State>) -> ItemFact {
        ItemFact {
            id: id.into(),
            state,
            action: None,
        }
    }

    /// `own`, an event of `kind` from a MEF Legato v5 seller, merged with [`fetched`].
    fn v5(kind: EventType, own: &OrderFacts) -> OrderFacts {
        merge(Dialect::MefLegatoV5, kind, own, &fetched()).unwrap()
    }

    #[test]
    fn the_order_is_read_in_either_spelling() {
        let order = fetched();
        assert_eq!(order.state, Some(State::Completed));
        assert_eq!(
            order.completion_date_time.as_deref(),
            Some("2026-11-30T12:00:00Z")
        );
        let tmf = json!({"id": "SO-1", "completionDateTime": "2026-11-30T12:00:00Z",
                         "orderItem": [{"id": "7", "action": "delete"}]});
        let order = read_order(tmf.to_string().as_bytes()).unwrap();
        assert_eq!(
            order.completion_date_time.as_deref(),
            Some("2026-11-30T12:00:00Z")
        );
        assert_eq!(order.items[0].action.as_deref(), Some("delete"));
        for (body, field) in [
            (json!({"state": "completed"}), "serviceOrder.id"),
            (json!({"id": 7}), "serviceOrder.id"),
            (json!({"id": "SO-1", "state": "done"}), "serviceOrder.state"),
        ] {
            let error = read_order(body.to_string().as_bytes()).unwrap_err();
            assert_eq!(error.field(), Some(field), "{body}: {error}");
        }
        assert!(read_order(b"<html>").is_err());
    }

    #[test]
    fn a_creation_gets_the_dates_the_items_without_states_and_the_state() {
        let merged = v5(EventType::ServiceOrderCreateEvent, &event(None, vec![]));
        assert_eq!(merged.state, Some(State::Completed), "the event gives none");
        assert_eq!(merged.external_id.as_deref(), Some("BSS-1"));
        assert_eq!(merged.order_date.as_deref(), Some("2026-11-30T09:00:00Z"));
        assert_eq!(
            merged.completion_date_time.as_deref(),
            Some("2026-11-30T12:00:00Z")
        );
        let items: Vec<(&str, Option<State>, Option<&str>)> = merged
            .items
            .iter()
            .map(|item| (item.id.as_str(), item.state, item.action.as_deref()))
            .collect();
        assert_eq!(
            items,
            [("1", None, Some("add")), ("2", None, Some("modify"))],
            "ids and actions, never the states, each id once"
        );
    }

    #[test]
    fn a_state_the_event_gives_is_never_overridden() {
        let change = event(Some(State::InProgress), vec![]);
        let merged = v5(EventType::ServiceOrderStateChangeEvent, &change);
        assert_eq!(merged.state, Some(State::InProgress));

        let named = event(None, vec![item("2", Some(State::InProgress))]);
        let merged = v5(EventType::ServiceOrderItemStateChangeEvent, &named);
        assert_eq!(merged.state, None, "an item event gives the order no state");
        assert_eq!(merged.items[0].state, Some(State::InProgress));
        assert_eq!(merged.items[0].action.as_deref(), Some("modify"));
        assert_eq!(merged.items[1].state, None, "another item: no state");
    }

    #[test]
    fn a_v5_event_without_states_gets_the_named_items_and_the_orders() {
        let named = event(None, vec![item("1", None)]);
        let merged = v5(EventType::ServiceOrderItemStateChangeEvent, &named);
        assert_eq!(merged.items[0].state, Some(State::Completed));
        assert_eq!(merged.items[1].state, None);
        let change = event(None, vec![]);
        let merged = v5(EventType::ServiceOrderStateChangeEvent, &change);
        assert_eq!(merged.state, Some(State::Completed));
        let information = v5(EventType::ServiceOrderInformationRequiredEvent, &change);
        assert_eq!(information.state, None, "not a state change");
    }

    #[test]
    fn what_the_event_says_stays_and_another_order_is_refused() {
        let mut own = event(None, vec![]);
        own.external_id = Some("mine".into());
        own.order_date = Some("2026-11-29T00:00:00Z".into());
        let merged = v5(EventType::ServiceOrderCreateEvent, &own);
        assert_eq!(merged.external_id.as_deref(), Some("mine"));
        assert_eq!(merged.order_date.as_deref(), Some("2026-11-29T00:00:00Z"));
        let mut other = fetched();
        other.order_id = "SO-2".parse().unwrap();
        let error = merge(
            Dialect::MefLegatoV5,
            EventType::ServiceOrderCreateEvent,
            &own,
            &other,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the seller answered order SO-2 for an event about order SO-1"
        );
    }

    #[test]
    fn merging_again_gives_the_same_facts() {
        let first = v5(EventType::ServiceOrderCreateEvent, &event(None, vec![]));
        let again = v5(EventType::ServiceOrderCreateEvent, &first);
        assert_eq!(again, first);
    }

    #[test]
    fn a_dialect_whose_events_carry_states_takes_none_from_a_snapshot() {
        let own = event(None, vec![]);
        let merged = merge(
            Dialect::MefLegatoV6,
            EventType::ServiceOrderCreateEvent,
            &own,
            &fetched(),
        )
        .unwrap();
        assert_eq!(merged.state, None, "a v6 creation keeps its own (no) state");
        assert!(merged.items.iter().all(|item| item.state.is_none()));
        assert_eq!(
            merged.order_date,
            fetched().order_date,
            "dates are filled in"
        );
    }
}
