//! [`examine`]: the reasons an order is suspect found in its timeline, each with what shows it
//! ([`Finding`]). It is the reference the fold's stored summary is checked against, and what an
//! order's JSON, `orders show` and the console's order page show.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    Missed, Reason, StaleAfter, Subject, dialect_bit, judging_family, left_open, out_of_step,
};
use crate::domain::envelope::{EventDate, EventId, Role};
use crate::domain::projection::{AnomalySubject, ServiceOrder, TimelineEntry};
use crate::domain::state::State;

/// One reason an order is suspect, with what shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "camelCase")]
pub enum Finding {
    /// Silent for longer than its state's threshold.
    #[serde(rename_all = "camelCase")]
    Stale {
        /// The order's state.
        state: State,
        /// Its newest event's date.
        last_event_date: EventDate,
        /// The state's threshold, in seconds.
        stale_after_seconds: u64,
    },
    /// A transition that skips notified states.
    #[serde(rename_all = "camelCase")]
    MissedTransition {
        /// The event that made the transition.
        event_id: EventId,
        /// Its date.
        event_date: EventDate,
        /// The order or the item.
        #[serde(flatten)]
        subject: AnomalySubject,
        /// The state before.
        from: State,
        /// The state after.
        to: State,
    },
    /// An item left in a non-final state under a final order.
    #[serde(rename_all = "camelCase")]
    ItemNotFinal {
        /// The item.
        item_id: String,
        /// Its state.
        state: State,
        /// The order's state.
        order_state: State,
    },
    /// No creation event: the first event received is named.
    #[serde(rename_all = "camelCase")]
    CreationMissing {
        /// The earliest event of the order.
        first_event_id: EventId,
        /// Its date.
        first_event_date: EventDate,
    },
    /// An event that contradicts itself.
    #[serde(rename_all = "camelCase")]
    OutOfStep {
        /// The event.
        event_id: EventId,
        /// Its date.
        event_date: EventDate,
        /// The order's state it gives.
        state: State,
        /// The items it leaves open under that state.
        item_ids: Vec<String>,
    },
}

impl Finding {
    /// Its reason.
    pub fn reason(&self) -> Reason {
        match self {
            Finding::Stale { .. } => Reason::Stale,
            Finding::MissedTransition { .. } => Reason::MissedTransition,
            Finding::ItemNotFinal { .. } => Reason::ItemNotFinal,
            Finding::CreationMissing { .. } => Reason::CreationMissing,
            Finding::OutOfStep { .. } => Reason::OutOfStep,
        }
    }
}

/// Every reason `order` is suspect at `now`, each with what shows it.
pub fn findings(
    order: &ServiceOrder,
    now: DateTime<Utc>,
    stale_after: &StaleAfter,
) -> Vec<Finding> {
    let stale = order
        .state
        .filter(|_| stale_after.is_stale(order.state, order.last_event_date.as_datetime(), now));
    stale
        .map(|state| Finding::Stale {
            state,
            last_event_date: order.last_event_date,
            stale_after_seconds: stale_after.after(state).map_or(0, |after| after.as_secs()),
        })
        .into_iter()
        .chain(examine(order))
        .collect()
}

/// One state on a track: the event that gave it, and the state.
type Mark<'a> = (&'a TimelineEntry, State);

/// The reasons judged when an order is saved, found again in its timeline (sorted, as
/// [`project`](super::projection::project) gives it) with the events that show them: the
/// reference that a fold's summary ([`stored_reasons`] of its [`Evidence`]) equals.
pub fn examine(order: &ServiceOrder) -> Vec<Finding> {
    let mut findings = missed_transitions(order);
    if let Some(order_state) = order.state {
        for item in &order.items {
            if let Some(state) = item.state.filter(|state| left_open(order_state, *state)) {
                findings.push(Finding::ItemNotFinal {
                    item_id: item.id.clone(),
                    state,
                    order_state,
                });
            }
        }
    }
    let created = order
        .timeline
        .iter()
        .any(|entry| entry.event_type.role() == Role::Creation);
    if let Some(first) = order.timeline.first().filter(|_| !created) {
        findings.push(Finding::CreationMissing {
            first_event_id: first.event_id.clone(),
            first_event_date: first.event_date,
        });
    }
    for entry in order
        .timeline
        .iter()
        .filter(|entry| out_of_step(&entry.facts))
    {
        let facts = &entry.facts;
        let Some(state) = facts.state else { continue };
        let mut item_ids: Vec<String> = facts
            .items
            .iter()
            .filter(|item| item.state.is_some_and(|item| left_open(state, item)))
            .map(|item| item.id.clone())
            .collect();
        item_ids.dedup();
        findings.push(Finding::OutOfStep {
            event_id: entry.event_id.clone(),
            event_date: entry.event_date,
            state,
            item_ids,
        });
    }
    findings
}

/// The transitions that skip notified states, under the rules of the order's family.
fn missed_transitions(order: &ServiceOrder) -> Vec<Finding> {
    let mut tracks: Vec<(AnomalySubject, Vec<Mark<'_>>)> =
        vec![(AnomalySubject::Order, order.order_track().collect())];
    for item in &order.items {
        let marks = order.item_track(&item.id).collect();
        let subject = AnomalySubject::Item {
            item_id: item.id.clone(),
        };
        tracks.push((subject, marks));
    }
    let pairs: Vec<(&AnomalySubject, Mark<'_>, Mark<'_>)> = tracks
        .iter()
        .flat_map(|(subject, marks)| {
            marks
                .windows(2)
                .map(move |pair| (subject, pair[0], pair[1]))
        })
        .collect();
    let of = |subject: &AnomalySubject, from: State, to: State| match subject {
        AnomalySubject::Order => Missed::of(Subject::Order, from, to),
        AnomalySubject::Item { .. } => Missed::of(Subject::Item, from, to),
    };
    let counts = pairs.iter().fold(
        Missed::default(),
        |counts, (subject, (_, from), (_, to))| counts.plus(of(subject, *from, *to)),
    );
    let dialects = order
        .timeline
        .iter()
        .fold(0, |bits, entry| bits | dialect_bit(entry.dialect));
    let Some(family) = judging_family(dialects, counts) else {
        return Vec::new();
    };
    pairs
        .into_iter()
        .filter(|(subject, (_, from), (_, to))| of(subject, *from, *to).get(family) > 0)
        .map(
            |(subject, (_, from), (entry, to))| Finding::MissedTransition {
                event_id: entry.event_id.clone(),
                event_date: entry.event_date,
                subject: subject.clone(),
                from,
                to,
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::domain::envelope::{Dialect, EventType, ItemFact, OrderFacts, OrderId};
    use crate::domain::projection::project;
    use crate::domain::state::State::*;

    fn order_id() -> OrderId {
        "o-1".parse().unwrap()
    }

    struct At {
        id: &'static str,
        millis: i64,
        kind: EventType,
        dialect: Dialect,
        state: Option<State>,
        items: Vec<(&'static str, State)>,
    }

    fn at(id: &'static str, millis: i64, kind: EventType, dialect: Dialect) -> At {
        At {
            id,
            millis,
            kind,
            dialect,
            state: None,
            items: Vec::new(),
        }
    }

    impl At {
        fn order(mut self, state: State) -> At {
            self.state = Some(state);
            self
        }
        fn item(mut self, id: &'static str, state: State) -> At {
            self.items.push((id, state));
            self
        }
        /// The order's state and its one item's, item "1".
        fn states(self, order: State, item_1: State) -> At {
            self.order(order).item("1", item_1)
        }
    }

    fn order(events: Vec<At>) -> ServiceOrder {
        let timeline = events
            .into_iter()
            .map(|event| TimelineEntry {
                source: crate::domain::envelope::Source::Seller,
                event_id: event.id.parse().unwrap(),
                event_date: EventDate::from_timestamp_micros(
                    1_700_000_000_000_000 + event.millis * 1000,
                )
                .unwrap(),
                event_type: event.kind,
                dialect: event.dialect,
                facts: OrderFacts {
                    order_id: order_id(),
                    state: event.state,
                    external_id: None,
                    order_date: None,
                    completion_date_time: None,
                    items: event
                        .items
                        .into_iter()
                        .map(|(id, state)| ItemFact {
                            id: id.into(),
                            state: Some(state),
                            action: None,
                        })
                        .collect(),
                },
            })
            .collect();
        project(order_id(), timeline).unwrap()
    }

    fn reasons(order: &ServiceOrder) -> Vec<Reason> {
        examine(order).iter().map(Finding::reason).collect()
    }

    use EventType::{
        ServiceOrderCreateEvent as TmfCreate, ServiceOrderCreation as OnapCreate,
        ServiceOrderItemStateChange as OnapItem, ServiceOrderItemStateChangeEvent as MefItem,
        ServiceOrderStateChange as OnapOrder, ServiceOrderStateChangeEvent as TmfOrder,
    };

    #[test]
    fn an_onap_order_completed_without_its_in_progress_is_not_suspect() {
        let onap = Dialect::Onap;
        let order = order(vec![
            at("e1", 0, OnapCreate, onap).states(Acknowledged, Acknowledged),
            at("e2", 10, OnapItem, onap).states(InProgress, InProgress),
            at("e3", 20, OnapItem, onap).states(InProgress, Completed),
            at("e4", 30, OnapOrder, onap).states(Completed, Completed),
        ]);
        assert_eq!(examine(&order), vec![]);
        let skipped = self::order(vec![
            at("e1", 0, OnapCreate, onap).states(Acknowledged, Acknowledged),
            at("e4", 30, OnapOrder, onap).states(Completed, Completed),
        ]);
        // The order may skip inProgress; the item may not.
        assert_eq!(
            examine(&skipped),
            vec![Finding::MissedTransition {
                event_id: "e4".parse().unwrap(),
                event_date: skipped.timeline[1].event_date,
                subject: AnomalySubject::Item {
                    item_id: "1".into()
                },
                from: Acknowledged,
                to: Completed,
            }]
        );
    }

    #[test]
    fn a_tmf641_order_that_skips_in_progress_lost_a_notification_and_its_items_are_not_judged() {
        let tmf = Dialect::Tmf641V4;
        let order = order(vec![
            at("e1", 0, TmfCreate, tmf).states(Acknowledged, Acknowledged),
            at("e2", 10, TmfOrder, tmf).states(Completed, Completed),
        ]);
        let findings = examine(&order);
        assert_eq!(reasons(&order), vec![Reason::MissedTransition]);
        assert!(
            matches!(
                &findings[0],
                Finding::MissedTransition {
                    subject: AnomalySubject::Order,
                    from: Acknowledged,
                    to: Completed,
                    ..
                }
            ),
            "{findings:?}"
        );
    }

    #[test]
    fn a_mef_order_completed_with_an_item_still_in_progress_lost_the_items_completion() {
        let mef = Dialect::MefLegatoV6;
        let order = order(vec![
            at("e1", 0, TmfCreate, mef),
            at("e2", 10, MefItem, mef).item("1", InProgress),
            at("e3", 11, MefItem, mef).item("2", InProgress),
            at("e4", 12, TmfOrder, mef).order(InProgress),
            at("e5", 20, MefItem, mef).item("1", Completed),
            at("e6", 30, TmfOrder, mef).order(Completed),
        ]);
        assert_eq!(
            examine(&order),
            vec![Finding::ItemNotFinal {
                item_id: "2".into(),
                state: InProgress,
                order_state: Completed,
            }]
        );
    }

    #[test]
    fn events_without_a_creation_name_the_first_one() {
        let onap = Dialect::Onap;
        let order = order(vec![
            at("late", 20, OnapItem, onap).states(InProgress, Completed),
            at("early", 10, OnapItem, onap).states(InProgress, InProgress),
        ]);
        assert_eq!(
            examine(&order),
            vec![Finding::CreationMissing {
                first_event_id: "early".parse().unwrap(),
                first_event_date: order.timeline[0].event_date,
            }]
        );
    }

    #[test]
    fn an_event_that_completes_the_order_with_an_item_in_progress_is_out_of_step() {
        let tmf = Dialect::Tmf641V5;
        let order = order(vec![
            at("e1", 0, TmfCreate, tmf)
                .order(Acknowledged)
                .item("1", Acknowledged)
                .item("2", Acknowledged),
            at("e2", 5, TmfOrder, tmf)
                .order(InProgress)
                .item("1", InProgress)
                .item("2", InProgress),
            at("e3", 10, TmfOrder, tmf)
                .order(Completed)
                .item("1", Completed)
                .item("2", InProgress),
        ]);
        assert_eq!(
            reasons(&order),
            vec![Reason::ItemNotFinal, Reason::OutOfStep]
        );
        assert!(matches!(
            examine(&order).last(),
            Some(Finding::OutOfStep { item_ids, state: Completed, .. }) if item_ids == &["2".to_owned()]
        ));
        let json = serde_json::to_value(examine(&order)).unwrap();
        assert_eq!(json[1]["reason"], "outOfStep");
        assert_eq!(json[1]["itemIds"][0], "2");
    }

    #[test]
    fn a_rejected_order_whose_items_never_started_is_not_suspect() {
        let tmf = Dialect::Tmf641V4;
        let order = order(vec![
            at("e1", 0, TmfCreate, tmf).states(Acknowledged, Acknowledged),
            at("e2", 10, TmfOrder, tmf).states(Rejected, Acknowledged),
        ]);
        assert_eq!(examine(&order), vec![]);
    }

    #[test]
    fn a_stale_finding_names_the_state_and_its_threshold_and_serialises_by_reason() {
        let onap = Dialect::Onap;
        let order = order(vec![
            at("e1", 0, OnapCreate, onap).states(Acknowledged, Acknowledged),
        ]);
        let now = order.last_event_date.as_datetime() + TimeDelta::hours(2);
        let findings = findings(&order, now, &StaleAfter::default());
        assert_eq!(
            findings,
            vec![Finding::Stale {
                state: Acknowledged,
                last_event_date: order.last_event_date,
                stale_after_seconds: 3600,
            }]
        );
        let json = serde_json::to_value(&findings).unwrap();
        assert_eq!(json[0]["reason"], "stale");
        assert_eq!(json[0]["staleAfterSeconds"], 3600);
        let fresh = self::findings(
            &order,
            order.last_event_date.as_datetime(),
            &StaleAfter::default(),
        );
        assert_eq!(fresh, vec![]);
    }

    #[test]
    fn a_missed_transition_serialises_its_subject_flat() {
        let finding = Finding::MissedTransition {
            event_id: "e9".parse().unwrap(),
            event_date: EventDate::from_timestamp_micros(0).unwrap(),
            subject: AnomalySubject::Item {
                item_id: "7".into(),
            },
            from: Acknowledged,
            to: Completed,
        };
        let json = serde_json::to_value(&finding).unwrap();
        assert_eq!(json["reason"], "missedTransition");
        assert_eq!(json["subject"], "item");
        assert_eq!(json["itemId"], "7");
        assert_eq!(json["from"], "acknowledged");
        assert_eq!(json["eventId"], "e9");
    }
}
