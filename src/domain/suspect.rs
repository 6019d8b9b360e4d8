//! Suspects: orders whose projection looks incomplete because a seller's notification was
//! probably lost (issue 14). The rules are written here once, as pure functions; the store
//! keeps what they need in each order's fold ([`Evidence`]) and a summary of the reasons on its
//! row, and [`examine`] finds the same reasons again in an order's timeline, with the events
//! that show them. No IO.
//!
//! - **stale**: an order in a non-final state whose newest event is older than that state's
//!   threshold ([`StaleAfter`]). Time-based, so judged when read, never stored.
//! - **missedTransition**: two states in a row on a track (the order's state, or one item's)
//!   that the seller's machine cannot go between directly although it can by way of others:
//!   the notifications in between were lost ([`skips`]).
//! - **itemNotFinal**: the order is final, and an item is left in a non-final state
//!   ([`left_open`]).
//! - **creationMissing**: events arrived for an order whose creation never did.
//! - **outOfStep**: one event contradicts itself: it gives the order a final state and one of
//!   its items a non-final one ([`out_of_step`]).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::envelope::{Dialect, EventDate, EventId, Family, OrderFacts, Role};
use super::projection::{AnomalySubject, ServiceOrder, TimelineEntry};
use super::state::State;

/// Why an order is suspect. The names are stable: the API, the CLI, the metrics and a repair
/// refer to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Not final, and no event for longer than its state's threshold.
    Stale,
    /// A transition that skips states the seller would have notified.
    MissedTransition,
    /// A final order with an item left in a non-final state.
    ItemNotFinal,
    /// Events for an order whose creation was never received.
    CreationMissing,
    /// An event that gives the order a final state and an item a non-final one.
    OutOfStep,
}

impl Reason {
    /// Every reason.
    pub const ALL: [Reason; 5] = [
        Reason::Stale,
        Reason::MissedTransition,
        Reason::ItemNotFinal,
        Reason::CreationMissing,
        Reason::OutOfStep,
    ];

    /// Its name in the API, the CLI, the configuration and the metrics' `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Stale => "stale",
            Reason::MissedTransition => "missedTransition",
            Reason::ItemNotFinal => "itemNotFinal",
            Reason::CreationMissing => "creationMissing",
            Reason::OutOfStep => "outOfStep",
        }
    }

    /// One line for people.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Stale => "not final, and silent for longer than its state's threshold",
            Reason::MissedTransition => "a transition skips states the seller would have notified",
            Reason::ItemNotFinal => "the order is final but an item is not",
            Reason::CreationMissing => "events arrived for an order whose creation never did",
            Reason::OutOfStep => {
                "an event gives the order a final state and an item a non-final one"
            }
        }
    }

    /// Its bit in a [`Reasons`] set; the stored summary keeps all but stale's.
    fn bit(self) -> u8 {
        match self {
            Reason::MissedTransition => 1,
            Reason::ItemNotFinal => 2,
            Reason::CreationMissing => 4,
            Reason::OutOfStep => 8,
            Reason::Stale => 16,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "`{text}` is not a suspect reason; expected one of {}",
                    Reason::ALL.map(Reason::as_str).join(", ")
                )
            })
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A set of reasons; serialised as the list of their names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Reasons(u8);

/// The bits of the reasons judged when an order is saved.
const STORED_BITS: u8 = 1 | 2 | 4 | 8;

impl Reasons {
    /// No reason.
    pub const NONE: Reasons = Reasons(0);

    /// Every reason.
    pub fn all() -> Reasons {
        Reason::ALL.into_iter().collect()
    }

    /// This set and `reason`.
    pub fn with(self, reason: Reason) -> Reasons {
        Reasons(self.0 | reason.bit())
    }

    /// Whether `reason` is in the set.
    pub fn contains(self, reason: Reason) -> bool {
        self.0 & reason.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the two sets share a reason.
    pub fn intersects(self, other: Reasons) -> bool {
        self.0 & other.0 != 0
    }

    /// The reasons, in [`Reason::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = Reason> {
        Reason::ALL
            .into_iter()
            .filter(move |reason| self.contains(*reason))
    }

    /// The stored summary of an order (the `suspects` column): the reasons judged when it is
    /// saved, one bit each (missedTransition 1, itemNotFinal 2, creationMissing 4, outOfStep
    /// 8). Stale is never stored.
    pub fn stored_bits(self) -> i64 {
        i64::from(self.0 & STORED_BITS)
    }

    /// The reasons of a stored summary; bits this program does not know are left out.
    pub fn from_stored_bits(bits: i64) -> Reasons {
        Reasons(u8::try_from(bits & i64::from(STORED_BITS)).unwrap_or_default())
    }
}

impl FromIterator<Reason> for Reasons {
    fn from_iter<I: IntoIterator<Item = Reason>>(reasons: I) -> Reasons {
        reasons.into_iter().fold(Reasons::NONE, Reasons::with)
    }
}

impl Serialize for Reasons {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// What a track follows: the order's state, or one item's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The order's state.
    Order,
    /// An item's state.
    Item,
}

/// The families of dialects, in the order [`Missed`] counts them.
const FAMILIES: [Family; 3] = [Family::Onap, Family::Tmf, Family::Mef];

fn family_index(family: Family) -> usize {
    match family {
        Family::Onap => 0,
        Family::Tmf => 1,
        Family::Mef => 2,
    }
}

/// Whether `to` can follow `from` through any number of transitions of the state machine.
pub fn reaches(from: State, to: State) -> bool {
    let mut seen = vec![from];
    let mut next = 0;
    while let Some(&state) = seen.get(next) {
        next += 1;
        for candidate in State::ALL {
            if candidate != state && state.can_go_to(candidate) {
                if candidate == to {
                    return true;
                }
                if !seen.contains(&candidate) {
                    seen.push(candidate);
                }
            }
        }
    }
    false
}

/// A transition a notifying seller makes in one step: TMF641's machine, which does not go from
/// acknowledged straight to completed (the state machine [`State::can_go_to`] allows it for
/// ONAP's sake, where it is what the order's notifications show).
fn notified_step(from: State, to: State) -> bool {
    from.can_go_to(to) && !(from == State::Acknowledged && to == State::Completed)
}

/// Whether a seller of `family` going from `from` to `to` on a track of `subject` implies
/// that notifications were lost: the two states differ, `to` can follow `from` by way of other
/// states, and the seller does not go from one to the other in one notified step.
///
/// Which tracks are judged, by family:
/// - ONAP: items, not the order. NBI notifies an order at its creation (acknowledged) and when
///   it is completed or failed; its item events carry the order's state as it is. Going from
///   acknowledged to completed or failed is therefore normal for an ONAP order. NBI notifies
///   each item's changes, inProgress included.
/// - TMF641: the order, not its items. Every change of the order is notified, but TMF641 has
///   no item event: items are seen only as each order event lists them, and may move several
///   steps between two events.
/// - MEF Legato: the order and its items, each notified when its state really changes.
pub fn skips(family: Family, subject: Subject, from: State, to: State) -> bool {
    let judged = !matches!(
        (family, subject),
        (Family::Onap, Subject::Order) | (Family::Tmf, Subject::Item)
    );
    judged && from != to && !notified_step(from, to) && reaches(from, to)
}

/// How many transitions skip notified states, under each family's rules ([`skips`]). Counts
/// add and subtract as a fold's pairs of neighbours change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missed(pub [u64; 3]);

impl Missed {
    /// What one transition counts.
    pub fn of(subject: Subject, from: State, to: State) -> Missed {
        Missed(FAMILIES.map(|family| u64::from(skips(family, subject, from, to))))
    }

    /// Both counts together.
    #[must_use]
    pub fn plus(self, other: Missed) -> Missed {
        Missed(std::array::from_fn(|index| self.0[index] + other.0[index]))
    }

    /// These counts without `other`'s (never below zero).
    #[must_use]
    pub fn minus(self, other: Missed) -> Missed {
        Missed(std::array::from_fn(|index| {
            self.0[index].saturating_sub(other.0[index])
        }))
    }

    /// The count under `family`'s rules.
    pub fn get(self, family: Family) -> u64 {
        self.0[family_index(family)]
    }
}

/// The family whose rules judge an order whose events came in `dialects`: its own, or, when
/// its events came in several families, the one that finds the fewest missed transitions
/// (ties go to the first of ONAP, TMF641, MEF). `None` for no dialect.
pub fn judging_family(dialects: u8, counts: Missed) -> Option<Family> {
    FAMILIES
        .into_iter()
        .filter(|family| {
            Dialect::ALL
                .into_iter()
                .any(|dialect| dialect.family() == *family && dialects & dialect_bit(dialect) != 0)
        })
        .min_by_key(|family| counts.get(*family))
}

/// A dialect's bit in [`Evidence::dialects`].
pub fn dialect_bit(dialect: Dialect) -> u8 {
    let index = Dialect::ALL
        .iter()
        .position(|known| *known == dialect)
        .unwrap_or_default();
    1 << index
}

/// What a fold keeps for the suspect rules: each a count over the set of the order's events,
/// so that it is kept incrementally whatever the arrival order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The dialects the events came in, one bit each ([`dialect_bit`]).
    pub dialects: u8,
    /// Creation events applied.
    pub creations: u64,
    /// Events that contradict themselves ([`out_of_step`]).
    pub out_of_step: u64,
    /// Transitions between neighbours on a track that skip notified states, by family.
    pub missed: Missed,
}

impl Evidence {
    /// The missed transitions under the rules of the order's family ([`judging_family`]).
    pub fn missed_transitions(&self) -> u64 {
        judging_family(self.dialects, self.missed).map_or(0, |family| self.missed.get(family))
    }
}

/// Whether an item in `item` state is left open under an order in `order` state: the order is
/// final and the item is not. A rejected order's items that never left acknowledged are not:
/// the seller refused the whole order before any work began.
pub fn left_open(order: State, item: State) -> bool {
    order.is_final()
        && !item.is_final()
        && !(order == State::Rejected && item == State::Acknowledged)
}

/// Whether one event contradicts itself: it gives the order a final state and an item a state
/// [`left_open`] under it.
pub fn out_of_step(facts: &OrderFacts) -> bool {
    facts.state.is_some_and(|order| {
        facts
            .items
            .iter()
            .any(|item| item.state.is_some_and(|state| left_open(order, state)))
    })
}

/// The reasons judged when an order is saved, from its state, its items' states, its number of
/// events and its [`Evidence`].
pub fn stored_reasons(
    state: Option<State>,
    item_states: impl IntoIterator<Item = Option<State>>,
    events: u64,
    evidence: &Evidence,
) -> Reasons {
    let mut reasons = Reasons::NONE;
    if evidence.missed_transitions() > 0 {
        reasons = reasons.with(Reason::MissedTransition);
    }
    if let Some(order) = state
        && item_states
            .into_iter()
            .flatten()
            .any(|item| left_open(order, item))
    {
        reasons = reasons.with(Reason::ItemNotFinal);
    }
    if events > 0 && evidence.creations == 0 {
        reasons = reasons.with(Reason::CreationMissing);
    }
    if evidence.out_of_step > 0 {
        reasons = reasons.with(Reason::OutOfStep);
    }
    reasons
}

/// How long an order may stay silent in each non-final state before it is stale; `None` for a
/// state that is never judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleAfter([Option<Duration>; 6]);

const HOUR: Duration = Duration::from_secs(3600);

impl Default for StaleAfter {
    /// acknowledged 1h, inProgress 24h, pending and held 7 days, assessingCancellation and
    /// pendingCancellation 24h.
    fn default() -> Self {
        StaleAfter([
            Some(HOUR),
            Some(7 * 24 * HOUR),
            Some(7 * 24 * HOUR),
            Some(24 * HOUR),
            Some(24 * HOUR),
            Some(24 * HOUR),
        ])
    }
}

/// A threshold was given for a final state, which is never stale.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is a final state, which is never stale; thresholds are for {list}", list = StaleAfter::OPEN_STATES.map(State::as_str).join(", "))]
pub struct FinalStateNeverStale(pub State);

impl StaleAfter {
    /// The non-final states, each with a threshold.
    pub const OPEN_STATES: [State; 6] = [
        State::Acknowledged,
        State::Pending,
        State::Held,
        State::InProgress,
        State::AssessingCancellation,
        State::PendingCancellation,
    ];

    fn index(state: State) -> Option<usize> {
        Self::OPEN_STATES.iter().position(|open| *open == state)
    }

    /// These thresholds with `state`'s set to `after` (`None`: never stale).
    pub fn with(
        mut self,
        state: State,
        after: Option<Duration>,
    ) -> Result<Self, FinalStateNeverStale> {
        let index = Self::index(state).ok_or(FinalStateNeverStale(state))?;
        self.0[index] = after;
        Ok(self)
    }

    /// The threshold of `state`; `None` for a final state or one never judged.
    pub fn after(&self, state: State) -> Option<Duration> {
        Self::index(state).and_then(|index| self.0[index])
    }

    /// For each judged state, the instant before which its newest event makes an order stale,
    /// seen at `now`.
    pub fn cutoffs(&self, now: DateTime<Utc>) -> Vec<(State, DateTime<Utc>)> {
        Self::OPEN_STATES
            .into_iter()
            .filter_map(|state| Some((state, before(now, self.after(state)?))))
            .collect()
    }

    /// Whether an order in `state`, whose newest event is dated `last_event`, is stale at
    /// `now`. An order with no known state is never stale: nothing says it is not finished.
    pub fn is_stale(
        &self,
        state: Option<State>,
        last_event: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> bool {
        state
            .and_then(|state| self.after(state))
            .is_some_and(|after| last_event < before(now, after))
    }
}

/// `now - span`, or the earliest instant when that is out of range.
fn before(now: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(span)
        .ok()
        .and_then(|span| now.checked_sub_signed(span))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

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
    let mut tracks: Vec<(AnomalySubject, Vec<Mark<'_>>)> = vec![(
        AnomalySubject::Order,
        order
            .timeline
            .iter()
            .filter_map(|entry| entry.facts.state.map(|state| (entry, state)))
            .collect(),
    )];
    for item in &order.items {
        let marks = order
            .timeline
            .iter()
            .flat_map(|entry| {
                entry
                    .facts
                    .items
                    .iter()
                    .filter(|fact| fact.id == item.id)
                    .filter_map(move |fact| fact.state.map(|state| (entry, state)))
            })
            .collect();
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
    use super::State::*;
    use super::*;
    use crate::domain::envelope::{EventType, ItemFact, OrderId};
    use crate::domain::projection::project;

    #[test]
    fn every_reason_round_trips_through_its_name_and_only_stale_is_not_stored() {
        for reason in Reason::ALL {
            assert_eq!(reason.as_str().parse::<Reason>(), Ok(reason));
            let alone = Reasons::NONE.with(reason);
            let stored = Reasons::from_stored_bits(alone.stored_bits());
            assert_eq!(stored.contains(reason), reason != Reason::Stale, "{reason}");
        }
        assert!("Stale".parse::<Reason>().unwrap_err().contains("outOfStep"));
        let all = Reasons::all();
        assert_eq!(all.iter().count(), 5);
        assert_eq!(all.stored_bits(), 15);
        assert_eq!(
            Reasons::from_stored_bits(0xff).iter().count(),
            4,
            "unknown bits"
        );
        assert_eq!(
            serde_json::to_string(&Reasons::NONE.with(Reason::OutOfStep).with(Reason::Stale))
                .unwrap(),
            r#"["stale","outOfStep"]"#
        );
    }

    #[test]
    fn reach_follows_the_state_machine_through_other_states() {
        assert!(reaches(Acknowledged, Failed), "by way of inProgress");
        assert!(reaches(InProgress, Cancelled), "by way of pending");
        assert!(reaches(Held, Cancelled), "by way of assessingCancellation");
        assert!(
            !reaches(Completed, InProgress),
            "a final state has no way out"
        );
        assert!(!reaches(InProgress, Acknowledged));
        assert!(!reaches(InProgress, Rejected));
    }

    #[test]
    fn a_skip_is_judged_per_family_and_track_as_the_table_says() {
        use Family::{Mef, Onap, Tmf};
        use Subject::{Item, Order};
        // (family, subject, from, to, a notification was lost)
        let table = [
            // ONAP never notifies an order's inProgress: its order goes straight on.
            (Onap, Order, Acknowledged, Completed, false),
            (Onap, Order, Acknowledged, Failed, false),
            // ONAP notifies every item change.
            (Onap, Item, Acknowledged, Completed, true),
            (Onap, Item, Acknowledged, Failed, true),
            (Onap, Item, Acknowledged, InProgress, false),
            (Onap, Item, InProgress, Completed, false),
            (Onap, Item, InProgress, InProgress, false),
            // TMF641 notifies every change of the order; items show only in order events.
            (Tmf, Order, Acknowledged, Completed, true),
            (Tmf, Order, Acknowledged, Pending, true),
            (Tmf, Order, InProgress, Cancelled, true),
            (Tmf, Order, Pending, Completed, true),
            (Tmf, Order, InProgress, Completed, false),
            (Tmf, Order, Held, InProgress, false),
            (Tmf, Order, PendingCancellation, Cancelled, false),
            (Tmf, Item, Acknowledged, Completed, false),
            // MEF notifies the order and each item.
            (Mef, Order, Acknowledged, Completed, true),
            (Mef, Item, Acknowledged, Completed, true),
            (Mef, Item, InProgress, Held, false),
            // A transition that cannot happen at all is an anomaly, never a skip.
            (Tmf, Order, Completed, InProgress, false),
            (Mef, Item, Failed, Completed, false),
            (Onap, Item, InProgress, Acknowledged, false),
        ];
        for (family, subject, from, to, lost) in table {
            assert_eq!(
                skips(family, subject, from, to),
                lost,
                "{family:?} {subject:?} {from} -> {to}"
            );
        }
    }

    #[test]
    fn an_order_in_several_families_is_judged_by_the_one_that_finds_fewest() {
        let onap = dialect_bit(Dialect::Onap);
        let tmf = dialect_bit(Dialect::Tmf641V5);
        let counts = Missed([2, 0, 5]);
        assert_eq!(judging_family(onap, counts), Some(Family::Onap));
        assert_eq!(judging_family(onap | tmf, counts), Some(Family::Tmf));
        assert_eq!(judging_family(0, counts), None);
        let evidence = Evidence {
            dialects: onap | dialect_bit(Dialect::MefLegatoV6),
            missed: counts,
            ..Evidence::default()
        };
        assert_eq!(evidence.missed_transitions(), 2);
        assert_eq!(
            Missed([1, 2, 3]).minus(Missed([2, 1, 0])),
            Missed([0, 1, 3])
        );
    }

    #[test]
    fn an_item_left_open_under_a_final_order_is_not_final_unless_it_was_refused_untouched() {
        assert!(left_open(Completed, InProgress));
        assert!(left_open(Failed, Acknowledged));
        assert!(left_open(Rejected, InProgress));
        assert!(
            !left_open(Rejected, Acknowledged),
            "refused before any work"
        );
        assert!(!left_open(Completed, Failed));
        assert!(!left_open(InProgress, InProgress), "the order is not final");
    }

    #[test]
    fn the_default_thresholds_and_staleness() {
        let defaults = StaleAfter::default();
        assert_eq!(defaults.after(Acknowledged), Some(HOUR));
        assert_eq!(defaults.after(InProgress), Some(24 * HOUR));
        assert_eq!(defaults.after(Held), Some(7 * 24 * HOUR));
        assert_eq!(defaults.after(Completed), None);
        for state in StaleAfter::OPEN_STATES {
            assert!(defaults.after(state).is_some(), "{state} has a default");
        }
        let now = Utc::now();
        let two_hours_ago = now - TimeDelta::hours(2);
        assert!(defaults.is_stale(Some(Acknowledged), two_hours_ago, now));
        assert!(!defaults.is_stale(Some(InProgress), two_hours_ago, now));
        assert!(!defaults.is_stale(Some(Completed), now - TimeDelta::days(900), now));
        assert!(!defaults.is_stale(None, now - TimeDelta::days(900), now));
        let never = defaults.with(Acknowledged, None).unwrap();
        assert!(!never.is_stale(Some(Acknowledged), two_hours_ago, now));
        assert_eq!(never.cutoffs(now).len(), 5);
        assert_eq!(
            defaults.with(Completed, Some(HOUR)),
            Err(FinalStateNeverStale(Completed))
        );
        let far = defaults.with(Held, Some(Duration::MAX)).unwrap();
        assert!(!far.is_stale(Some(Held), DateTime::<Utc>::MIN_UTC, now));
    }

    // --- examine: whole orders ---

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
    }

    fn order(events: Vec<At>) -> ServiceOrder {
        let timeline = events
            .into_iter()
            .map(|event| TimelineEntry {
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
            at("e1", 0, OnapCreate, onap)
                .order(Acknowledged)
                .item("1", Acknowledged),
            at("e2", 10, OnapItem, onap)
                .order(InProgress)
                .item("1", InProgress),
            at("e3", 20, OnapItem, onap)
                .order(InProgress)
                .item("1", Completed),
            at("e4", 30, OnapOrder, onap)
                .order(Completed)
                .item("1", Completed),
        ]);
        assert_eq!(examine(&order), vec![]);
        let skipped = self::order(vec![
            at("e1", 0, OnapCreate, onap)
                .order(Acknowledged)
                .item("1", Acknowledged),
            at("e4", 30, OnapOrder, onap)
                .order(Completed)
                .item("1", Completed),
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
            at("e1", 0, TmfCreate, tmf)
                .order(Acknowledged)
                .item("1", Acknowledged),
            at("e2", 10, TmfOrder, tmf)
                .order(Completed)
                .item("1", Completed),
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
            at("late", 20, OnapItem, onap)
                .order(InProgress)
                .item("1", Completed),
            at("early", 10, OnapItem, onap)
                .order(InProgress)
                .item("1", InProgress),
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
            at("e1", 0, TmfCreate, tmf)
                .order(Acknowledged)
                .item("1", Acknowledged),
            at("e2", 10, TmfOrder, tmf)
                .order(Rejected)
                .item("1", Acknowledged),
        ]);
        assert_eq!(examine(&order), vec![]);
    }

    #[test]
    fn a_stale_finding_names_the_state_and_its_threshold_and_serialises_by_reason() {
        let onap = Dialect::Onap;
        let order = order(vec![
            at("e1", 0, OnapCreate, onap)
                .order(Acknowledged)
                .item("1", Acknowledged),
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
