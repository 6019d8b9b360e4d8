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

use serde::{Deserialize, Serialize};

use super::envelope::{Dialect, Family, OrderFacts};
use super::state::State;

mod examine;
mod stale;

pub use self::examine::{Finding, examine, findings};
pub use self::stale::{FinalStateNeverStale, StaleAfter};

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

#[cfg(test)]
mod tests {
    use super::State::*;
    use super::*;

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

    fn facts(state: Option<State>, items: &[(&str, Option<State>)]) -> OrderFacts {
        OrderFacts {
            order_id: "o-1".parse().unwrap(),
            state,
            external_id: None,
            order_date: None,
            completion_date_time: None,
            items: items
                .iter()
                .map(|(id, state)| crate::domain::envelope::ItemFact {
                    id: (*id).to_owned(),
                    state: *state,
                    action: None,
                })
                .collect(),
        }
    }

    #[test]
    fn an_event_is_out_of_step_when_it_finishes_the_order_but_not_an_item() {
        assert!(out_of_step(&facts(
            Some(Completed),
            &[("1", Some(Completed)), ("2", Some(InProgress))]
        )));
        assert!(!out_of_step(&facts(
            Some(Completed),
            &[("1", Some(Completed)), ("2", None)]
        )));
        assert!(!out_of_step(&facts(
            Some(InProgress),
            &[("1", Some(Completed))]
        )));
        assert!(!out_of_step(&facts(None, &[("1", Some(InProgress))])));
        assert!(!out_of_step(&facts(
            Some(Rejected),
            &[("1", Some(Acknowledged))]
        )));
    }

    #[test]
    fn the_stored_reasons_follow_the_evidence_and_the_states() {
        let onap = Evidence {
            dialects: dialect_bit(Dialect::Onap),
            creations: 1,
            ..Evidence::default()
        };
        assert_eq!(
            stored_reasons(Some(InProgress), [Some(InProgress)], 3, &onap),
            Reasons::NONE
        );
        assert_eq!(
            stored_reasons(
                Some(Completed),
                [Some(Completed), Some(InProgress), None],
                3,
                &onap
            ),
            Reasons::NONE.with(Reason::ItemNotFinal)
        );
        let orphan = Evidence {
            creations: 0,
            out_of_step: 1,
            missed: Missed([1, 0, 0]),
            ..onap.clone()
        };
        assert_eq!(
            stored_reasons(None, [], 2, &orphan),
            Reasons::NONE
                .with(Reason::MissedTransition)
                .with(Reason::CreationMissing)
                .with(Reason::OutOfStep)
        );
        let judged_as_tmf = Evidence {
            dialects: dialect_bit(Dialect::Tmf641V4),
            ..orphan
        };
        assert!(
            !stored_reasons(None, [], 2, &judged_as_tmf).contains(Reason::MissedTransition),
            "the count of the order's own family"
        );
        assert_eq!(
            stored_reasons(None, [], 0, &Evidence::default()),
            Reasons::NONE
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
}
