//! The hub's subscription query, `key=value[,value]&key=value`, read the way ONAP NBI reads
//! it, with the warnings a buyer needs before sending one, and the matching rules the hub
//! applies to each notification.
//!
//! ONAP splits on `&`, keeps parts with exactly one `=`, trims the key and the whole value,
//! then splits the value on `,` without trimming again. Every subscription needs `eventType`;
//! `serviceOrder.state` narrows only ServiceOrderStateChangeNotification, and
//! `serviceOrder.serviceOrderItem.state` only ServiceOrderItemStateChangeNotification. Other
//! keys are ignored.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::domain::envelope::EventType;
use crate::domain::state::State;

/// The key every subscription needs.
pub(crate) const EVENT_TYPE: &str = "eventType";
/// Narrows order state changes.
pub(crate) const ORDER_STATE: &str = "serviceOrder.state";
/// Narrows item state changes.
pub(crate) const ITEM_STATE: &str = "serviceOrder.serviceOrderItem.state";

/// A query as the hub stores it: each key with its values, exactly as split.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HubQuery {
    criteria: BTreeMap<String, Vec<String>>,
}

impl HubQuery {
    /// Reads a query the way the hub does. Parts it would drop are dropped here too.
    pub(crate) fn parse(text: &str) -> HubQuery {
        let mut criteria = BTreeMap::new();
        for part in text.split('&') {
            let pieces: Vec<&str> = part.split('=').collect();
            if let [key, value] = pieces.as_slice() {
                let values = value.trim().split(',').map(str::to_owned).collect();
                criteria.insert(key.trim().to_owned(), values);
            }
        }
        HubQuery { criteria }
    }

    /// Whether the hub would send this notification to a subscriber with this query.
    pub(crate) fn matches(&self, event_type: &str, event: &Value) -> bool {
        let Some(types) = self.criteria.get(EVENT_TYPE) else {
            return false;
        };
        if !types.iter().any(|value| value == event_type) {
            return false;
        }
        match event_type {
            "ServiceOrderStateChangeNotification" => match self.criteria.get(ORDER_STATE) {
                None => true,
                Some(states) => event
                    .get("state")
                    .and_then(Value::as_str)
                    .is_some_and(|state| states.iter().any(|value| value == state)),
            },
            "ServiceOrderItemStateChangeNotification" => match self.criteria.get(ITEM_STATE) {
                None => true,
                Some(states) => event
                    .get("orderItem")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|item| item.get("state").and_then(Value::as_str))
                    .any(|state| states.iter().any(|value| value == state)),
            },
            _ => true,
        }
    }
}

/// Reads a query and says, in plain words, every way in which it will not do what its author
/// probably means. An empty list means the query is sound.
pub(crate) fn warnings(text: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    for part in text.split('&') {
        let pieces = part.split('=').count();
        if pieces != 2 {
            warnings.push(format!(
                "`{part}` is not of the form key=value; the hub ignores it"
            ));
        }
    }
    let query = HubQuery::parse(text);
    if !query.criteria.contains_key(EVENT_TYPE) {
        warnings.push(format!(
            "there is no {EVENT_TYPE}=…; the hub sends nothing to a subscription without one \
             (for example {EVENT_TYPE}=ServiceOrderCreationNotification,ServiceOrderStateChangeNotification)"
        ));
    }
    for (key, values) in &query.criteria {
        let known: Vec<&str> = match key.as_str() {
            EVENT_TYPE => EventType::ALL.iter().map(|kind| kind.as_str()).collect(),
            ORDER_STATE | ITEM_STATE => State::ALL.iter().map(|state| state.as_str()).collect(),
            _ => {
                warnings.push(format!(
                    "`{key}` is ignored by the hub: only {EVENT_TYPE}, {ORDER_STATE} and {ITEM_STATE} \
                     filter notifications"
                ));
                continue;
            }
        };
        for value in values {
            if known.contains(&value.as_str()) {
                continue;
            }
            let trimmed = value.trim();
            if trimmed != value && known.contains(&trimmed) {
                warnings.push(format!(
                    "`{value}` in {key} has spaces around it, so it never matches `{trimmed}`: \
                     the hub does not trim values after a comma; remove the spaces"
                ));
            } else if let Some(right) = known
                .iter()
                .find(|known| known.eq_ignore_ascii_case(trimmed))
            {
                warnings.push(format!(
                    "`{value}` in {key} never matches: values are case-sensitive lower camel case; \
                     write `{right}`"
                ));
            } else {
                warnings.push(format!(
                    "`{value}` in {key} never matches: expected one of {}",
                    known.join(", ")
                ));
            }
        }
    }
    let types = query.criteria.get(EVENT_TYPE).cloned().unwrap_or_default();
    if query.criteria.contains_key(ORDER_STATE)
        && !types
            .iter()
            .any(|t| t == "ServiceOrderStateChangeNotification")
    {
        warnings.push(format!(
            "{ORDER_STATE} only narrows ServiceOrderStateChangeNotification, which {EVENT_TYPE} does not include"
        ));
    }
    if query.criteria.contains_key(ITEM_STATE)
        && !types
            .iter()
            .any(|t| t == "ServiceOrderItemStateChangeNotification")
    {
        warnings.push(format!(
            "{ITEM_STATE} only narrows ServiceOrderItemStateChangeNotification, which {EVENT_TYPE} does not include"
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_sound_query_has_no_warning() {
        let text = "eventType=ServiceOrderStateChangeNotification,ServiceOrderItemStateChangeNotification\
                    &serviceOrder.state=completed,failed&serviceOrder.serviceOrderItem.state=failed";
        assert_eq!(warnings(text), Vec::<String>::new());
        assert_eq!(
            warnings("eventType = ServiceOrderCreationNotification"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_three_pitfalls_are_named() {
        let unknown =
            warnings("eventType=ServiceOrderCreationNotification&serviceOrder.externalId=x");
        assert!(
            unknown
                .iter()
                .any(|w| w.contains("serviceOrder.externalId") && w.contains("ignored")),
            "{unknown:?}"
        );
        let upper =
            warnings("eventType=ServiceOrderStateChangeNotification&serviceOrder.state=COMPLETED");
        assert!(
            upper
                .iter()
                .any(|w| w.contains("COMPLETED") && w.contains("`completed`")),
            "{upper:?}"
        );
        let spaced = warnings(
            "eventType=ServiceOrderStateChangeNotification&serviceOrder.state=held, rejected",
        );
        assert!(
            spaced
                .iter()
                .any(|w| w.contains("` rejected`") && w.contains("spaces")),
            "{spaced:?}"
        );
        let missing = warnings("serviceOrder.state=completed");
        assert!(
            missing.iter().any(|w| w.contains("no eventType")),
            "{missing:?}"
        );
    }

    #[test]
    fn matching_follows_the_hub() {
        let query = HubQuery::parse(
            "eventType=ServiceOrderStateChangeNotification,ServiceOrderCreationNotification&serviceOrder.state=completed",
        );
        assert!(query.matches(
            "ServiceOrderStateChangeNotification",
            &json!({"state": "completed"})
        ));
        assert!(!query.matches(
            "ServiceOrderStateChangeNotification",
            &json!({"state": "failed"})
        ));
        // The order-state filter does not narrow creations.
        assert!(query.matches(
            "ServiceOrderCreationNotification",
            &json!({"state": "acknowledged"})
        ));
        assert!(!query.matches("ServiceOrderItemStateChangeNotification", &json!({})));

        let items = HubQuery::parse(
            "eventType=ServiceOrderItemStateChangeNotification&serviceOrder.serviceOrderItem.state=failed",
        );
        assert!(items.matches(
            "ServiceOrderItemStateChangeNotification",
            &json!({"orderItem": [{"state": "failed"}]})
        ));
        assert!(!items.matches(
            "ServiceOrderItemStateChangeNotification",
            &json!({"orderItem": [{"state": "completed"}]})
        ));

        let spaced = HubQuery::parse(
            "eventType=ServiceOrderStateChangeNotification&serviceOrder.state=held, rejected",
        );
        assert!(!spaced.matches(
            "ServiceOrderStateChangeNotification",
            &json!({"state": "rejected"})
        ));
        assert!(!HubQuery::parse("").matches("ServiceOrderCreationNotification", &json!({})));
    }
}
