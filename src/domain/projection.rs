//! The projection of a service order: its current state, its items' states, its timeline and
//! its anomalies, computed from the events received for it.
//!
//! [`project`] is a pure function of the *set* of events: it sorts them by eventDate (ties
//! broken by event type, lifecycle stage, then eventId) before folding, so that any arrival
//! order gives the same projection and an older event never overwrites a newer state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::envelope::{Dialect, EventDate, EventId, EventType, OrderFacts, OrderId, Source};
use super::key::FoldKey;
use super::state::State;

/// One event applied to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineEntry {
    /// The event's id.
    pub event_id: EventId,
    /// When the seller says it happened.
    pub event_date: EventDate,
    /// Its type.
    pub event_type: EventType,
    /// How the seller sent it.
    #[serde(default)]
    pub dialect: Dialect,
    /// Who wrote it: shown only for an event the listener synthesized (`reconciled`).
    #[serde(default, skip_serializing_if = "is_sellers")]
    pub source: Source,
    /// What it says about the order.
    #[serde(flatten)]
    pub facts: OrderFacts,
}

/// Whether an event is a seller's own (which the timeline does not say).
fn is_sellers(source: &Source) -> bool {
    *source == Source::Seller
}

impl TimelineEntry {
    /// Where it sits among its order's events: the total order the projection folds in.
    pub fn key(&self) -> FoldKey {
        FoldKey::new(
            self.event_date,
            self.event_type,
            self.facts.state,
            &self.event_id,
        )
    }
}

/// The state of one item of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemProjection {
    /// The item's id within its order.
    pub id: String,
    /// Its latest known state.
    pub state: Option<State>,
    /// add, modify or delete, as last given.
    pub action: Option<String>,
    /// The eventDate of the event that gave the state.
    pub updated_at: Option<EventDate>,
}

/// What an anomaly is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "subject", rename_all = "camelCase")]
pub enum AnomalySubject {
    /// The order itself.
    Order,
    /// One item of the order.
    #[serde(rename_all = "camelCase")]
    Item {
        /// The item's id.
        item_id: String,
    },
}

/// A transition that the state machine does not allow. The event was still accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Anomaly {
    /// The event that made the transition.
    pub event_id: EventId,
    /// Its date.
    pub event_date: EventDate,
    /// The order or the item.
    #[serde(flatten)]
    pub subject: AnomalySubject,
    /// The state before.
    pub from: State,
    /// The state the event moved to.
    pub to: State,
}

/// The values of an order that the newest event giving them sets, where an absent value never
/// erases one: what [`project`] keeps while it folds, and what a fold's
/// [`Step`](super::fold::Step) carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderValues {
    /// `externalId`, the buyer's reference.
    pub external_id: Option<String>,
    /// `orderDate`, as the seller wrote it.
    pub order_date: Option<String>,
    /// `completionDateTime`, as the seller wrote it.
    pub completion_date_time: Option<String>,
}

impl OrderValues {
    /// What `facts` gives.
    pub fn of(facts: &OrderFacts) -> OrderValues {
        OrderValues {
            external_id: facts.external_id.clone(),
            order_date: facts.order_date.clone(),
            completion_date_time: facts.completion_date_time.clone(),
        }
    }

    /// These values, from a newer event, over `older` ones: where these give none, the older
    /// stay.
    pub fn over(self, older: OrderValues) -> OrderValues {
        OrderValues {
            external_id: self.external_id.or(older.external_id),
            order_date: self.order_date.or(older.order_date),
            completion_date_time: self.completion_date_time.or(older.completion_date_time),
        }
    }
}

/// Everything known about one service order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceOrder {
    /// The seller's order id.
    pub id: OrderId,
    /// The latest known state.
    pub state: Option<State>,
    /// The buyer's reference.
    pub external_id: Option<String>,
    /// When the order was placed, as the seller wrote it.
    pub order_date: Option<String>,
    /// When the order was completed, as the seller wrote it.
    pub completion_date_time: Option<String>,
    /// The items, sorted by id.
    pub items: Vec<ItemProjection>,
    /// Every event applied, sorted by eventDate.
    pub timeline: Vec<TimelineEntry>,
    /// Transitions the state machine does not allow, in timeline order.
    pub anomalies: Vec<Anomaly>,
    /// The eventDate of the newest event.
    pub last_event_date: EventDate,
}

impl ServiceOrder {
    /// The order's track: each event that gives the order a state, with that state, in
    /// timeline order.
    pub fn order_track(&self) -> impl Iterator<Item = (&TimelineEntry, State)> {
        self.timeline
            .iter()
            .filter_map(|entry| entry.facts.state.map(|state| (entry, state)))
    }

    /// The track of item `item_id`: each state an event gives it, with the event, in timeline
    /// order (an event that names the item twice gives both).
    pub fn item_track<'a>(
        &'a self,
        item_id: &'a str,
    ) -> impl Iterator<Item = (&'a TimelineEntry, State)> + 'a {
        self.timeline.iter().flat_map(move |entry| {
            entry
                .facts
                .items
                .iter()
                .filter(move |fact| fact.id == item_id)
                .filter_map(move |fact| fact.state.map(|state| (entry, state)))
        })
    }
}

/// Folds the events of one order into its projection. Returns `None` for no events.
pub fn project(id: OrderId, mut timeline: Vec<TimelineEntry>) -> Option<ServiceOrder> {
    timeline.sort_by_cached_key(TimelineEntry::key);
    let last_event_date = timeline.last()?.event_date;

    let mut state: Option<State> = None;
    let mut values = OrderValues::default();
    let mut items: BTreeMap<String, ItemProjection> = BTreeMap::new();
    let mut anomalies = Vec::new();

    for entry in &timeline {
        let facts = &entry.facts;
        if let Some(next) = facts.state {
            if let Some(previous) = state.filter(|previous| !previous.can_go_to(next)) {
                anomalies.push(Anomaly {
                    event_id: entry.event_id.clone(),
                    event_date: entry.event_date,
                    subject: AnomalySubject::Order,
                    from: previous,
                    to: next,
                });
            }
            state = Some(next);
        }
        values = OrderValues::of(facts).over(values);

        for fact in &facts.items {
            let item = items
                .entry(fact.id.clone())
                .or_insert_with(|| ItemProjection {
                    id: fact.id.clone(),
                    state: None,
                    action: None,
                    updated_at: None,
                });
            if let Some(next) = fact.state {
                if let Some(previous) = item.state.filter(|previous| !previous.can_go_to(next)) {
                    anomalies.push(Anomaly {
                        event_id: entry.event_id.clone(),
                        event_date: entry.event_date,
                        subject: AnomalySubject::Item {
                            item_id: fact.id.clone(),
                        },
                        from: previous,
                        to: next,
                    });
                }
                item.state = Some(next);
                item.updated_at = Some(entry.event_date);
            }
            item.action = fact.action.clone().or(item.action.take());
        }
    }

    Some(ServiceOrder {
        id,
        state,
        external_id: values.external_id,
        order_date: values.order_date,
        completion_date_time: values.completion_date_time,
        items: items.into_values().collect(),
        timeline,
        anomalies,
        last_event_date,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::arbitrary::{self, order_id};
    use crate::domain::envelope::ItemFact;

    fn entry(
        id: &str,
        millis: i64,
        kind: EventType,
        state: Option<State>,
        items: &[(&str, State)],
    ) -> TimelineEntry {
        TimelineEntry {
            source: crate::domain::envelope::Source::Seller,
            event_id: id.parse().unwrap(),
            event_date: EventDate::from_timestamp_micros(1_553_501_336_000_000 + millis * 1000)
                .unwrap(),
            event_type: kind,
            dialect: Dialect::Onap,
            facts: OrderFacts {
                order_id: order_id(),
                state,
                external_id: Some("ext-1".into()),
                order_date: None,
                completion_date_time: None,
                items: items
                    .iter()
                    .map(|(id, state)| ItemFact {
                        id: (*id).into(),
                        state: Some(*state),
                        action: Some("add".into()),
                    })
                    .collect(),
            },
        }
    }

    fn onap_lifecycle() -> Vec<TimelineEntry> {
        use EventType::*;
        use State::*;
        vec![
            entry(
                "e1",
                0,
                ServiceOrderCreation,
                Some(Acknowledged),
                &[("1", Acknowledged), ("2", Acknowledged)],
            ),
            entry(
                "e2",
                10,
                ServiceOrderItemStateChange,
                Some(InProgress),
                &[("1", InProgress)],
            ),
            entry(
                "e3",
                20,
                ServiceOrderItemStateChange,
                Some(InProgress),
                &[("2", InProgress)],
            ),
            entry(
                "e4",
                30,
                ServiceOrderItemStateChange,
                Some(InProgress),
                &[("1", Completed)],
            ),
            entry(
                "e5",
                40,
                ServiceOrderItemStateChange,
                Some(InProgress),
                &[("2", Completed)],
            ),
            entry(
                "e6",
                40,
                ServiceOrderStateChange,
                Some(Completed),
                &[("1", Completed), ("2", Completed)],
            ),
        ]
    }

    #[test]
    fn an_onap_lifecycle_ends_completed_without_anomalies() {
        let order = project(order_id(), onap_lifecycle()).unwrap();
        assert_eq!(order.state, Some(State::Completed));
        assert_eq!(
            order
                .items
                .iter()
                .map(|i| (i.id.as_str(), i.state))
                .collect::<Vec<_>>(),
            vec![("1", Some(State::Completed)), ("2", Some(State::Completed))]
        );
        assert_eq!(order.anomalies, vec![]);
        assert_eq!(order.timeline.len(), 6);
        assert_eq!(order.external_id.as_deref(), Some("ext-1"));
    }

    #[test]
    fn an_older_event_arriving_last_does_not_overwrite_a_newer_state() {
        let mut events = onap_lifecycle();
        events.rotate_left(1); // the creation arrives last
        let order = project(order_id(), events).unwrap();
        assert_eq!(order.state, Some(State::Completed));
        assert_eq!(order.timeline[0].event_id.as_str(), "e1");
    }

    #[test]
    fn a_forbidden_transition_is_an_anomaly_and_still_applied() {
        use EventType::*;
        use State::*;
        let events = vec![
            entry(
                "e1",
                0,
                ServiceOrderCreation,
                Some(Acknowledged),
                &[("1", Acknowledged)],
            ),
            entry(
                "e2",
                10,
                ServiceOrderStateChange,
                Some(Completed),
                &[("1", Completed)],
            ),
            entry(
                "e3",
                20,
                ServiceOrderStateChange,
                Some(Failed),
                &[("1", InProgress)],
            ),
        ];
        let order = project(order_id(), events).unwrap();
        assert_eq!(order.state, Some(Failed));
        assert_eq!(
            order
                .anomalies
                .iter()
                .map(|a| (a.event_id.as_str(), a.subject.clone(), a.from, a.to))
                .collect::<Vec<_>>(),
            vec![
                ("e3", AnomalySubject::Order, Completed, Failed),
                (
                    "e3",
                    AnomalySubject::Item {
                        item_id: "1".into()
                    },
                    Completed,
                    InProgress
                ),
            ]
        );
    }

    #[test]
    fn no_events_means_no_order() {
        assert_eq!(project(order_id(), vec![]), None);
    }

    proptest! {
        #[test]
        fn every_arrival_order_gives_the_same_projection(
            entries in arbitrary::timeline(12),
            seed in any::<u64>(),
        ) {
            let expected = project(order_id(), entries.clone());
            let mut shuffled = entries;
            arbitrary::shuffle(&mut shuffled, seed);
            prop_assert_eq!(project(order_id(), shuffled), expected);
        }
    }
}
