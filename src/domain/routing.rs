//! Which events go to which sink: a [`Route`] names a sink and a [`RouteFilter`] on the event's
//! dialect, its type, its order's state and its items' states. Pure: the store applies routes when it writes
//! an event, so that the event and its pending deliveries commit together.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use super::envelope::{Dialect, EventType, Notification, OrderFacts, Source};
use super::state::State;

/// A sink's name: 1 to 64 letters, digits, `.`, `_` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SinkName(String);

impl SinkName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for SinkName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for SinkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for SinkName {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        crate::domain::name::check("sink name", name).map_err(|invalid| invalid.to_string())?;
        Ok(SinkName(name.to_owned()))
    }
}

/// What an event must be for a sink to get it. Every part that is set must match; an empty
/// filter takes every event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteFilter {
    /// Sent in one of these dialects; `None` means any.
    pub dialects: Option<BTreeSet<Dialect>>,
    /// Written by one of these sources (a seller, or the listener's reconciliation); `None`
    /// means any.
    pub sources: Option<BTreeSet<Source>>,
    /// One of these types; `None` means any.
    pub event_types: Option<BTreeSet<EventType>>,
    /// The order's state (`event.state`) is one of these; `None` means any.
    pub order_states: Option<BTreeSet<State>>,
    /// At least one item of `event.orderItem` is in one of these states; `None` means any.
    pub item_states: Option<BTreeSet<State>>,
}

impl RouteFilter {
    /// Whether `notification` passes.
    pub fn matches(&self, notification: &Notification) -> bool {
        self.matches_facts(
            notification.source,
            notification.dialect,
            notification.event_type,
            notification.order.as_ref(),
        )
    }

    /// Whether an event from this source, of this dialect and type, saying this about its
    /// order, passes.
    pub fn matches_facts(
        &self,
        source: Source,
        dialect: Dialect,
        event_type: EventType,
        order: Option<&OrderFacts>,
    ) -> bool {
        if let Some(dialects) = &self.dialects
            && !dialects.contains(&dialect)
        {
            return false;
        }
        if let Some(sources) = &self.sources
            && !sources.contains(&source)
        {
            return false;
        }
        if let Some(types) = &self.event_types
            && !types.contains(&event_type)
        {
            return false;
        }
        if let Some(states) = &self.order_states
            && !order
                .and_then(|facts| facts.state)
                .is_some_and(|state| states.contains(&state))
        {
            return false;
        }
        if let Some(states) = &self.item_states
            && !order.is_some_and(|facts| {
                facts
                    .items
                    .iter()
                    .any(|item| item.state.is_some_and(|state| states.contains(&state)))
            })
        {
            return false;
        }
        true
    }
}

/// A sink and the events it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The sink.
    pub sink: SinkName,
    /// The events it takes.
    pub filter: RouteFilter,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::envelope::{ParseOptions, parse, parse_notification};

    fn notification(event_type: &str, order_state: Option<&str>, item_state: &str) -> Notification {
        let mut event = serde_json::json!({
            "id": "SO-1",
            "orderItem": [{"id": "1", "state": item_state}]
        });
        if let Some(state) = order_state {
            event["state"] = state.into();
        }
        let body = serde_json::json!({
            "eventId": "e-1",
            "eventDate": "2019-03-25T08:08:56.310Z",
            "eventType": event_type,
            "event": event,
        });
        parse_notification(body.to_string().into(), ParseOptions::default()).unwrap()
    }

    fn set<T: Ord>(items: impl IntoIterator<Item = T>) -> Option<BTreeSet<T>> {
        Some(items.into_iter().collect())
    }

    #[test]
    fn filters_match_as_a_table() {
        let completed_order = notification(
            "ServiceOrderStateChangeNotification",
            Some("completed"),
            "completed",
        );
        let item_failed = notification(
            "ServiceOrderItemStateChangeNotification",
            Some("inProgress"),
            "failed",
        );
        let cases = [
            (RouteFilter::default(), true, true),
            (
                RouteFilter {
                    event_types: set([EventType::ServiceOrderStateChange]),
                    ..RouteFilter::default()
                },
                true,
                false,
            ),
            (
                RouteFilter {
                    order_states: set([State::Completed, State::Failed]),
                    ..RouteFilter::default()
                },
                true,
                false,
            ),
            (
                RouteFilter {
                    item_states: set([State::Failed]),
                    ..RouteFilter::default()
                },
                false,
                true,
            ),
            (
                RouteFilter {
                    event_types: set([EventType::ServiceOrderItemStateChange]),
                    item_states: set([State::Completed]),
                    ..RouteFilter::default()
                },
                false,
                false,
            ),
        ];
        for (filter, first, second) in cases {
            assert_eq!(filter.matches(&completed_order), first, "{filter:?}");
            assert_eq!(filter.matches(&item_failed), second, "{filter:?}");
        }
    }

    #[test]
    fn a_dialect_filter_takes_only_the_events_of_its_dialects() {
        let onap = notification(
            "ServiceOrderStateChangeNotification",
            Some("completed"),
            "completed",
        );
        let body = serde_json::json!({
            "eventId": "tmf-1",
            "eventTime": "2026-11-30T10:00:00Z",
            "eventType": "ServiceOrderStateChangeEvent",
            "event": {"serviceOrder": {"id": "SO-2", "state": "completed"}}
        });
        let tmf = parse(
            Dialect::Tmf641V4,
            Some(EventType::ServiceOrderStateChangeEvent),
            body.to_string().into(),
            ParseOptions::default(),
        )
        .unwrap();
        let tm_forum = RouteFilter {
            dialects: set([Dialect::Tmf641V4, Dialect::Tmf641V5]),
            ..RouteFilter::default()
        };
        assert!(tm_forum.matches(&tmf));
        assert!(!tm_forum.matches(&onap));
        // Every part must match: the dialect does not widen the other parts.
        let failures = RouteFilter {
            order_states: set([State::Failed]),
            ..tm_forum.clone()
        };
        assert!(!failures.matches(&tmf));
        // A replay asks with the stored dialect, and gets the same answer.
        let onap_only = RouteFilter {
            dialects: set([Dialect::Onap]),
            ..RouteFilter::default()
        };
        assert!(!onap_only.matches_facts(
            Source::Seller,
            tmf.dialect,
            tmf.event_type,
            tmf.order.as_ref()
        ));
        assert!(onap_only.matches_facts(
            Source::Seller,
            Dialect::Onap,
            tmf.event_type,
            tmf.order.as_ref()
        ));
    }

    #[test]
    fn a_sink_can_leave_out_the_events_the_listener_synthesized() {
        let seller = notification(
            "ServiceOrderStateChangeNotification",
            Some("completed"),
            "completed",
        );
        let reconciled = Notification {
            source: Source::Reconciled,
            ..seller.clone()
        };
        let sellers_only = RouteFilter {
            sources: set([Source::Seller]),
            ..RouteFilter::default()
        };
        assert!(sellers_only.matches(&seller));
        assert!(!sellers_only.matches(&reconciled));
        assert!(
            RouteFilter::default().matches(&reconciled),
            "no filter takes both"
        );
        let repairs_only = RouteFilter {
            sources: set([Source::Reconciled]),
            ..RouteFilter::default()
        };
        assert!(!repairs_only.matches(&seller) && repairs_only.matches(&reconciled));
    }

    #[test]
    fn sink_names_are_checked() {
        assert!("oss-http".parse::<SinkName>().is_ok());
        assert!("".parse::<SinkName>().is_err());
        assert!("a b".parse::<SinkName>().is_err());
    }
}
