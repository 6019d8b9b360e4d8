//! The hub's subscription query, `key=value[,value]&key=value`, read the way each dialect's
//! hub reads it, with the warnings a buyer needs before sending one, and the matching rules the
//! hub applies to each notification.
//!
//! ONAP splits on `&`, keeps parts with exactly one `=`, trims the key and the whole value,
//! then splits the value on `,` without trimming again. Every subscription needs `eventType`;
//! `serviceOrder.state` narrows only ServiceOrderStateChangeNotification, and
//! `serviceOrder.serviceOrderItem.state` only ServiceOrderItemStateChangeNotification. Other
//! keys are ignored.
//!
//! TMF641 and MEF follow TMF630: `eventType=a,b` or `eventType=a&eventType=b`, and MEF says an
//! empty query selects every event type (the simulator reads TMF641's the same way).
//! `eventType` is the only key a MEF seller must honour (MEF 99 R34); values are the dialect's
//! own spelling (`ServiceOrderStateChangeEvent` in TMF641, `serviceOrderStateChangeEvent` in
//! MEF) and are compared exactly, as a strict seller does.

use std::collections::BTreeMap;

use serde_json::Value;

use super::dialect::wire_event_type;
use crate::domain::envelope::{Dialect, EventType, Family};
use crate::domain::state::State;

/// The key every subscription needs.
pub(crate) const EVENT_TYPE: &str = "eventType";
/// Narrows order state changes.
pub(crate) const ORDER_STATE: &str = "serviceOrder.state";
/// Narrows item state changes.
pub(crate) const ITEM_STATE: &str = "serviceOrder.serviceOrderItem.state";

/// A query as the hub stores it: each key with its values, exactly as split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HubQuery {
    dialect: Dialect,
    criteria: BTreeMap<String, Vec<String>>,
}

impl HubQuery {
    /// Reads a query the way the dialect's hub does. Parts it would drop are dropped here too.
    pub(crate) fn parse(dialect: Dialect, text: &str) -> HubQuery {
        let mut criteria: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for part in text.split('&') {
            let pieces: Vec<&str> = part.split('=').collect();
            let [key, value] = pieces.as_slice() else {
                continue;
            };
            if dialect == Dialect::Onap {
                let values = value.trim().split(',').map(str::to_owned).collect();
                criteria.insert(key.trim().to_owned(), values);
            } else {
                criteria
                    .entry(key.trim().to_owned())
                    .or_default()
                    .extend(value.split(',').map(|value| value.trim().to_owned()));
            }
        }
        HubQuery { dialect, criteria }
    }

    /// Whether the hub would send this notification (of type `kind`, whose `event` is given)
    /// to a subscriber with this query.
    pub(crate) fn matches(&self, kind: EventType, event: &Value) -> bool {
        if self.dialect != Dialect::Onap {
            let wire = wire_event_type(self.dialect, kind);
            return self
                .criteria
                .get(EVENT_TYPE)
                .is_none_or(|types| types.contains(&wire));
        }
        let event_type = kind.as_str();
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
pub(crate) fn warnings(dialect: Dialect, text: &str) -> Vec<String> {
    if dialect != Dialect::Onap {
        return tmf630_warnings(dialect, text);
    }
    let mut warnings = Vec::new();
    for part in text.split('&') {
        let pieces = part.split('=').count();
        if pieces != 2 {
            warnings.push(format!(
                "`{part}` is not of the form key=value; the hub ignores it"
            ));
        }
    }
    let query = HubQuery::parse(dialect, text);
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

/// The warnings of a TMF641 or MEF query: parts that are not `key=value`, keys the seller may
/// ignore, and event types that never match (another spelling, or not the dialect's).
fn tmf630_warnings(dialect: Dialect, text: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    if text.trim().is_empty() {
        return warnings;
    }
    for part in text.split('&') {
        if part.split('=').count() != 2 {
            warnings.push(format!(
                "`{part}` is not of the form key=value; the hub ignores it"
            ));
        }
    }
    let known: Vec<String> = dialect
        .event_types()
        .iter()
        .map(|kind| wire_event_type(dialect, *kind))
        .collect();
    let query = HubQuery::parse(dialect, text);
    for (key, values) in &query.criteria {
        if key != EVENT_TYPE {
            let must = match dialect.family() {
                Family::Mef => "the only key a MEF seller must honour",
                Family::Onap | Family::Tmf => "the only key every TMF641 seller filters on",
            };
            warnings.push(format!(
                "`{key}` may be ignored by the hub: {EVENT_TYPE} is {must}, so expect every event \
                 of the selected types"
            ));
            continue;
        }
        for value in values {
            if known.contains(value) {
                continue;
            }
            if let Some(right) = known.iter().find(|known| known.eq_ignore_ascii_case(value)) {
                warnings.push(format!(
                    "`{value}` in {key} never matches: a {dialect} seller writes `{right}`"
                ));
            } else {
                warnings.push(format!(
                    "`{value}` in {key} never matches: a {dialect} seller sends {}",
                    known.join(", ")
                ));
            }
        }
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
        assert_eq!(warnings(Dialect::Onap, text), Vec::<String>::new());
        assert_eq!(
            warnings(
                Dialect::Onap,
                "eventType = ServiceOrderCreationNotification"
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_three_pitfalls_are_named() {
        let unknown = warnings(
            Dialect::Onap,
            "eventType=ServiceOrderCreationNotification&serviceOrder.externalId=x",
        );
        assert!(
            unknown
                .iter()
                .any(|w| w.contains("serviceOrder.externalId") && w.contains("ignored")),
            "{unknown:?}"
        );
        let upper = warnings(
            Dialect::Onap,
            "eventType=ServiceOrderStateChangeNotification&serviceOrder.state=COMPLETED",
        );
        assert!(
            upper
                .iter()
                .any(|w| w.contains("COMPLETED") && w.contains("`completed`")),
            "{upper:?}"
        );
        let spaced = warnings(
            Dialect::Onap,
            "eventType=ServiceOrderStateChangeNotification&serviceOrder.state=held, rejected",
        );
        assert!(
            spaced
                .iter()
                .any(|w| w.contains("` rejected`") && w.contains("spaces")),
            "{spaced:?}"
        );
        let missing = warnings(Dialect::Onap, "serviceOrder.state=completed");
        assert!(
            missing.iter().any(|w| w.contains("no eventType")),
            "{missing:?}"
        );
    }

    #[test]
    fn tmf_and_mef_queries_follow_tmf630() {
        let both = HubQuery::parse(
            Dialect::MefLegatoV6,
            "eventType = serviceOrderStateChangeEvent&eventType=serviceOrderItemStateChangeEvent",
        );
        assert!(both.matches(EventType::ServiceOrderStateChangeEvent, &json!({})));
        assert!(both.matches(EventType::ServiceOrderItemStateChangeEvent, &json!({})));
        assert!(!both.matches(EventType::ServiceOrderCreateEvent, &json!({})));
        let everything = HubQuery::parse(Dialect::MefLegatoV5, "");
        assert!(everything.matches(EventType::ServiceOrderCreateEvent, &json!({})));
        let tmf = HubQuery::parse(
            Dialect::Tmf641V4,
            "eventType=ServiceOrderStateChangeEvent,ServiceOrderMilestoneEvent",
        );
        assert!(tmf.matches(EventType::ServiceOrderMilestoneEvent, &json!({})));
        assert!(!tmf.matches(EventType::ServiceOrderJeopardyEvent, &json!({})));
        // MEF spells its types in lower camel case, and a strict seller compares exactly.
        let upper = HubQuery::parse(
            Dialect::MefLegatoV6,
            "eventType=ServiceOrderStateChangeEvent",
        );
        assert!(!upper.matches(EventType::ServiceOrderStateChangeEvent, &json!({})));
    }

    #[test]
    fn tmf_and_mef_warnings_name_the_dialects_spelling() {
        assert_eq!(
            warnings(
                Dialect::MefLegatoV6,
                &crate::hub::dialect::default_query(Dialect::MefLegatoV6)
            ),
            Vec::<String>::new()
        );
        assert_eq!(warnings(Dialect::MefLegatoV5, ""), Vec::<String>::new());
        let upper = warnings(
            Dialect::MefLegatoV6,
            "eventType=ServiceOrderStateChangeEvent",
        );
        assert!(
            upper[0].contains("`serviceOrderStateChangeEvent`"),
            "{upper:?}"
        );
        let onap_type = warnings(
            Dialect::Tmf641V5,
            "eventType=ServiceOrderStateChangeNotification",
        );
        assert!(
            onap_type[0].contains("ServiceOrderMilestoneEvent"),
            "{onap_type:?}"
        );
        let other_key = warnings(
            Dialect::MefLegatoV5,
            "eventType=serviceOrderCreateEvent&state=completed",
        );
        assert!(other_key[0].contains("may be ignored"), "{other_key:?}");
    }

    #[test]
    fn matching_follows_the_hub() {
        let query = HubQuery::parse(
            Dialect::Onap,
            "eventType=ServiceOrderStateChangeNotification,ServiceOrderCreationNotification&serviceOrder.state=completed",
        );
        assert!(query.matches(
            EventType::ServiceOrderStateChange,
            &json!({"state": "completed"})
        ));
        assert!(!query.matches(
            EventType::ServiceOrderStateChange,
            &json!({"state": "failed"})
        ));
        // The order-state filter does not narrow creations.
        assert!(query.matches(
            EventType::ServiceOrderCreation,
            &json!({"state": "acknowledged"})
        ));
        assert!(!query.matches(EventType::ServiceOrderItemStateChange, &json!({})));

        let items = HubQuery::parse(
            Dialect::Onap,
            "eventType=ServiceOrderItemStateChangeNotification&serviceOrder.serviceOrderItem.state=failed",
        );
        assert!(items.matches(
            EventType::ServiceOrderItemStateChange,
            &json!({"orderItem": [{"state": "failed"}]})
        ));
        assert!(!items.matches(
            EventType::ServiceOrderItemStateChange,
            &json!({"orderItem": [{"state": "completed"}]})
        ));

        let spaced = HubQuery::parse(
            Dialect::Onap,
            "eventType=ServiceOrderStateChangeNotification&serviceOrder.state=held, rejected",
        );
        assert!(!spaced.matches(
            EventType::ServiceOrderStateChange,
            &json!({"state": "rejected"})
        ));
        assert!(
            !HubQuery::parse(Dialect::Onap, "")
                .matches(EventType::ServiceOrderCreation, &json!({}))
        );
    }
}
