//! The incremental projection: what the store keeps of each order so that one more event costs
//! time in the size of that event, not in the number of events the order already has.
//!
//! [`project`](super::projection::project) folds a whole timeline; it stays the reference. A
//! [`Fold`] holds exactly what that fold's result depends on:
//!
//! - every value that "the newest event that gives it wins" (the order's state, externalId,
//!   orderDate, completionDateTime, each item's state and action) together with the
//!   [`FoldKey`] of the event that gave it;
//! - for each *track* (the order's state, and each item's state) the first and the last
//!   event that moved it, because an anomaly is a property of two neighbours on a track.
//!
//! An event whose key is after every event of each of its tracks (it arrived in order) or
//! before every one of them (newest-first arrival) is applied from the fold alone. An event
//! that lands *between* two events of a track needs those two neighbours: the store looks them
//! up around the event's key ([`NeighbourSearch`]) and the anomaly count changes by
//! `bad(previous, new) + bad(new, next) - bad(previous, next)`. The result always equals a full
//! fold of the same set of events: the property test in this module checks it against
//! [`project`](super::projection::project) for random arrival orders.
//!
//! The counts the suspect rules need ([`Evidence`]) are kept the same way: the missed
//! transitions are a property of neighbours on a track, like anomalies; the dialects, the
//! creations and the events out of step add up event by event. The same property test checks
//! [`Fold::suspects`] against [`examine`](super::suspect::examine) of the full projection.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::envelope::{Dialect, EventDate, EventId, EventType, OrderFacts, Role};
use super::key::FoldKey;
use super::projection::{ItemProjection, OrderValues, TimelineEntry};
use super::state::State;
use super::suspect::{self, Evidence, Missed, Reasons, Subject};

mod search;

pub use self::search::NeighbourSearch;

/// A value and the key of the event that gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamped<T> {
    /// The value.
    pub value: T,
    /// The event that gave it.
    pub at: FoldKey,
}

/// The two ends of a track: the earliest and the newest event that gave it a state. `first`
/// holds the first state that event gave, `last` the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ends {
    /// The earliest event on the track.
    pub first: Stamped<State>,
    /// The newest event on the track; its state is the track's state.
    pub last: Stamped<State>,
}

/// One item as folded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFold {
    /// The item's state track.
    pub states: Option<Ends>,
    /// add, modify or delete, from the newest event that gave it.
    pub action: Option<Stamped<String>>,
}

/// What the store keeps of an order to apply its next event (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    /// How many events were applied.
    pub events: u64,
    /// The newest event applied.
    pub newest: Option<FoldKey>,
    /// The order's state track.
    pub states: Option<Ends>,
    /// The buyer's reference.
    pub external_id: Option<Stamped<String>>,
    /// When the order was placed.
    pub order_date: Option<Stamped<String>>,
    /// When the order was completed.
    pub completion_date_time: Option<Stamped<String>>,
    /// The items by id.
    pub items: BTreeMap<String, ItemFold>,
    /// How many transitions the state machine does not allow.
    pub anomalies: u64,
    /// What the suspect rules need.
    pub evidence: Evidence,
}

/// A track: the order's state, or one item's state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Track {
    /// The order's state.
    Order,
    /// The state of the item with this id.
    Item(String),
}

impl Track {
    fn subject(&self) -> Subject {
        match self {
            Track::Order => Subject::Order,
            Track::Item(_) => Subject::Item,
        }
    }
}

/// What one event contributes to a fold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Where it sits.
    pub key: FoldKey,
    /// The order's state it gives.
    pub state: Option<State>,
    /// The newest-wins values it gives.
    pub values: OrderValues,
    /// One entry per item id the event names, sorted by id.
    pub items: Vec<ItemStep>,
    /// How the seller sent it.
    pub dialect: Dialect,
    /// Whether it is the order's creation.
    pub creation: bool,
    /// Whether it contradicts itself ([`suspect::out_of_step`]).
    pub out_of_step: bool,
}

/// What one event says about one item. An event may name an item more than once; its states
/// are then a short track of their own, whose inner anomalies count once the event is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemStep {
    /// The item's id.
    pub id: String,
    /// The first state the event gives the item, and the last (equal when it gives one).
    pub states: Option<(State, State)>,
    /// Transitions not allowed between the states the event gives the item, in its order.
    pub inner_anomalies: u64,
    /// Transitions that skip notified states between the states the event gives the item.
    pub inner_missed: Missed,
    /// The last action the event gives the item.
    pub action: Option<String>,
}

impl Step {
    /// What a projected timeline's `entry` contributes.
    pub fn of_entry(entry: &TimelineEntry) -> Step {
        Step::new(
            &entry.event_id,
            entry.event_type,
            entry.event_date,
            &entry.facts,
            entry.dialect,
        )
    }

    /// What an event of `event_type` with these `facts`, sent in `dialect`, contributes.
    pub fn new(
        event_id: &EventId,
        event_type: EventType,
        event_date: EventDate,
        facts: &OrderFacts,
        dialect: Dialect,
    ) -> Step {
        let mut items: BTreeMap<&str, ItemStep> = BTreeMap::new();
        for fact in &facts.items {
            let item = items.entry(&fact.id).or_insert_with(|| ItemStep {
                id: fact.id.clone(),
                states: None,
                inner_anomalies: 0,
                inner_missed: Missed::default(),
                action: None,
            });
            if let Some(next) = fact.state {
                item.states = Some(match item.states {
                    None => (next, next),
                    Some((first, last)) => {
                        item.inner_anomalies += u64::from(!last.can_go_to(next));
                        item.inner_missed =
                            item.inner_missed
                                .plus(Missed::of(Subject::Item, last, next));
                        (first, next)
                    }
                });
            }
            if let Some(action) = &fact.action {
                item.action = Some(action.clone());
            }
        }
        Step {
            key: FoldKey::new(event_date, event_type, facts.state, event_id),
            state: facts.state,
            values: OrderValues::of(facts),
            items: items.into_values().collect(),
            dialect,
            creation: event_type.role() == Role::Creation,
            out_of_step: suspect::out_of_step(facts),
        }
    }

    /// The states this event gives `track`, first and last, if it gives any.
    pub fn states_of(&self, track: &Track) -> Option<(State, State)> {
        match track {
            Track::Order => self.state.map(|state| (state, state)),
            Track::Item(id) => self
                .items
                .binary_search_by(|item| item.id.as_str().cmp(id))
                .ok()
                .and_then(|index| self.items[index].states),
        }
    }
}

/// The event lands between two events of a track, but they were not given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the neighbours of event {event_id} on {track:?} are missing")]
pub struct MissingNeighbours {
    /// The event.
    pub event_id: String,
    /// The track.
    pub track: Track,
}

/// The state of the event just before and the one just after a new event, on each track where
/// it lands between two others: `(previous's last state, next's first state)`.
pub type Neighbours = BTreeMap<Track, (State, State)>;

fn bad(from: State, to: State) -> u64 {
    u64::from(!from.can_go_to(to))
}

/// What a pair of neighbours on a track counts: an anomaly, and missed transitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    anomalies: u64,
    missed: Missed,
}

impl Tally {
    fn of(track: &Track, from: State, to: State) -> Tally {
        Tally {
            anomalies: bad(from, to),
            missed: Missed::of(track.subject(), from, to),
        }
    }

    fn plus(self, other: Tally) -> Tally {
        Tally {
            anomalies: self.anomalies + other.anomalies,
            missed: self.missed.plus(other.missed),
        }
    }
}

/// Where a key lands on a track.
enum Place {
    /// The track had no state yet.
    Alone,
    /// After its newest event.
    After,
    /// Before its earliest event.
    Before,
    /// Between two of its events.
    Between,
}

fn place(ends: Option<&Ends>, key: &FoldKey) -> Place {
    match ends {
        None => Place::Alone,
        Some(ends) if *key > ends.last.at => Place::After,
        Some(ends) if *key < ends.first.at => Place::Before,
        Some(_) => Place::Between,
    }
}

/// Places the segment `(first, last)` of the event at `key` on a track, and returns what the
/// pairs it makes count.
fn put(
    ends: &mut Option<Ends>,
    key: &FoldKey,
    (first, last): (State, State),
    neighbours: Option<(State, State)>,
    track: &Track,
) -> Result<Tally, MissingNeighbours> {
    let stamp = |value| Stamped {
        value,
        at: key.clone(),
    };
    match (place(ends.as_ref(), key), ends.as_mut()) {
        (Place::After, Some(ends)) => {
            let added = Tally::of(track, ends.last.value, first);
            ends.last = stamp(last);
            Ok(added)
        }
        (Place::Before, Some(ends)) => {
            let added = Tally::of(track, last, ends.first.value);
            ends.first = stamp(first);
            Ok(added)
        }
        (Place::Between, Some(_)) => {
            let (previous, next) = neighbours.ok_or_else(|| MissingNeighbours {
                event_id: key.event_id.clone(),
                track: track.clone(),
            })?;
            // The caller subtracts the pair this event splits.
            Ok(Tally::of(track, previous, first).plus(Tally::of(track, last, next)))
        }
        _ => {
            *ends = Some(Ends {
                first: stamp(first),
                last: stamp(last),
            });
            Ok(Tally::default())
        }
    }
}

/// Replaces `slot` with `value` when the event at `key` is newer than the one that gave it.
fn newest_wins(slot: &mut Option<Stamped<String>>, value: Option<&String>, key: &FoldKey) {
    if let Some(value) = value
        && slot.as_ref().is_none_or(|current| *key > current.at)
    {
        *slot = Some(Stamped {
            value: value.clone(),
            at: key.clone(),
        });
    }
}

impl Fold {
    /// Folds a whole set of events, in key order: what [`Fold::apply`] must always agree with.
    pub fn rebuild(mut steps: Vec<Step>) -> Fold {
        steps.sort_by(|a, b| a.key.cmp(&b.key));
        let mut fold = Fold::default();
        for step in &steps {
            // In key order every track is extended at its end, so no neighbour is needed. Only
            // a second step with the same key (the same event given twice) lands "between",
            // and it is skipped: an event counts once.
            if fold.apply(step, &Neighbours::new()).is_err() {
                continue;
            }
        }
        fold
    }

    /// The tracks on which `step` lands between two events already applied: the store must
    /// look up their neighbours ([`NeighbourSearch`]) before [`Fold::apply`].
    pub fn between(&self, step: &Step) -> Vec<Track> {
        let mut tracks = Vec::new();
        if step.state.is_some() && matches!(place(self.states.as_ref(), &step.key), Place::Between)
        {
            tracks.push(Track::Order);
        }
        for item in &step.items {
            let ends = self
                .items
                .get(&item.id)
                .and_then(|fold| fold.states.as_ref());
            if item.states.is_some() && matches!(place(ends, &step.key), Place::Between) {
                tracks.push(Track::Item(item.id.clone()));
            }
        }
        tracks
    }

    /// Applies one event that is not yet in the fold. `neighbours` must hold every track of
    /// [`Fold::between`]; on error, nothing was changed.
    pub fn apply(&mut self, step: &Step, neighbours: &Neighbours) -> Result<(), MissingNeighbours> {
        let needed = self.between(step);
        if let Some(track) = needed.iter().find(|track| !neighbours.contains_key(track)) {
            return Err(MissingNeighbours {
                event_id: step.key.event_id.clone(),
                track: track.clone(),
            });
        }
        // Every track that lands between two events splits their pair.
        let split = needed
            .iter()
            .filter_map(|track| Some((track, neighbours.get(track)?)))
            .fold(Tally::default(), |split, (track, (previous, next))| {
                split.plus(Tally::of(track, *previous, *next))
            });
        let mut added = Tally::default();
        if let Some(state) = step.state {
            added = added.plus(put(
                &mut self.states,
                &step.key,
                (state, state),
                neighbours.get(&Track::Order).copied(),
                &Track::Order,
            )?);
        }
        for item in &step.items {
            let fold = self.items.entry(item.id.clone()).or_default();
            added = added.plus(Tally {
                anomalies: item.inner_anomalies,
                missed: item.inner_missed,
            });
            if let Some(states) = item.states {
                let track = Track::Item(item.id.clone());
                added = added.plus(put(
                    &mut fold.states,
                    &step.key,
                    states,
                    neighbours.get(&track).copied(),
                    &track,
                )?);
            }
            newest_wins(&mut fold.action, item.action.as_ref(), &step.key);
        }
        let values = &step.values;
        newest_wins(
            &mut self.external_id,
            values.external_id.as_ref(),
            &step.key,
        );
        newest_wins(&mut self.order_date, values.order_date.as_ref(), &step.key);
        newest_wins(
            &mut self.completion_date_time,
            values.completion_date_time.as_ref(),
            &step.key,
        );
        // `split` pairs were counted before; each is replaced by the two in `added`.
        self.anomalies = (self.anomalies + added.anomalies).saturating_sub(split.anomalies);
        let evidence = &mut self.evidence;
        evidence.missed = evidence.missed.plus(added.missed).minus(split.missed);
        evidence.dialects |= suspect::dialect_bit(step.dialect);
        evidence.creations += u64::from(step.creation);
        evidence.out_of_step += u64::from(step.out_of_step);
        self.events += 1;
        if self.newest.as_ref().is_none_or(|newest| step.key > *newest) {
            self.newest = Some(step.key.clone());
        }
        Ok(())
    }

    /// The order's state.
    pub fn state(&self) -> Option<State> {
        self.states.as_ref().map(|ends| ends.last.value)
    }

    /// The items as [`project`](super::projection::project) lists them, sorted by id.
    pub fn items(&self) -> Vec<ItemProjection> {
        self.items
            .iter()
            .map(|(id, fold)| ItemProjection {
                id: id.clone(),
                state: fold.states.as_ref().map(|ends| ends.last.value),
                action: fold.action.as_ref().map(|action| action.value.clone()),
                updated_at: fold
                    .states
                    .as_ref()
                    .and_then(|ends| EventDate::from_timestamp_micros(ends.last.at.date_us)),
            })
            .collect()
    }

    /// The reasons the order is suspect that are judged when it is saved (all but stale).
    pub fn suspects(&self) -> Reasons {
        suspect::stored_reasons(
            self.state(),
            self.items
                .values()
                .map(|item| item.states.as_ref().map(|ends| ends.last.value)),
            self.events,
            &self.evidence,
        )
    }

    /// The eventDate of the newest event.
    pub fn last_event_date(&self) -> Option<EventDate> {
        self.newest
            .as_ref()
            .and_then(|key| EventDate::from_timestamp_micros(key.date_us))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::arbitrary::{self, order_id};
    use crate::domain::projection::project;

    /// Applies `steps` one by one as the store does, looking neighbours up among those already
    /// applied, offered a date at a time in the direction the store pages.
    fn incremental(arrivals: &[Step]) -> Fold {
        let mut fold = Fold::default();
        let mut applied: Vec<Step> = Vec::new();
        for step in arrivals {
            if applied.iter().any(|seen| seen.key == step.key) {
                continue; // a resend: the store never applies it twice
            }
            let tracks = fold.between(step);
            let mut neighbours = Neighbours::new();
            if !tracks.is_empty() {
                let mut search = NeighbourSearch::new(step.key.clone(), tracks);
                let mut before: Vec<&Step> =
                    applied.iter().filter(|seen| seen.key < step.key).collect();
                before.sort_by_key(|seen| std::cmp::Reverse(seen.key.date_us));
                let mut after: Vec<&Step> =
                    applied.iter().filter(|seen| seen.key > step.key).collect();
                after.sort_by_key(|seen| seen.key.date_us);
                // Pages of two, as the store's pages of many.
                for page in before.chunks(2) {
                    if !search.wants_before() {
                        break;
                    }
                    page.iter().for_each(|seen| search.offer(seen));
                    search.seen_before_down_to(page.last().map(|seen| seen.key.date_us));
                }
                search.seen_before_down_to(None);
                for page in after.chunks(2) {
                    if !search.wants_after() {
                        break;
                    }
                    page.iter().for_each(|seen| search.offer(seen));
                    search.seen_after_up_to(page.last().map(|seen| seen.key.date_us));
                }
                search.seen_after_up_to(None);
                neighbours = search.neighbours();
            }
            fold.apply(step, &neighbours).unwrap();
            applied.push(step.clone());
        }
        fold
    }

    /// The fold's view of an order must be the reference's.
    fn assert_matches_project(fold: &Fold, entries: Vec<TimelineEntry>) {
        let order = project(order_id(), entries).unwrap();
        assert_eq!(fold.state(), order.state);
        assert_eq!(fold.items(), order.items);
        assert_eq!(fold.anomalies, order.anomalies.len() as u64);
        assert_eq!(fold.events, order.timeline.len() as u64);
        assert_eq!(fold.last_event_date(), Some(order.last_event_date));
        let value = |slot: &Option<Stamped<String>>| slot.as_ref().map(|s| s.value.clone());
        assert_eq!(value(&fold.external_id), order.external_id);
        assert_eq!(value(&fold.order_date), order.order_date);
        assert_eq!(
            value(&fold.completion_date_time),
            order.completion_date_time
        );
        let examined: Reasons = crate::domain::suspect::examine(&order)
            .iter()
            .map(crate::domain::suspect::Finding::reason)
            .collect();
        assert_eq!(fold.suspects(), examined, "{order:#?}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The differential test: any arrival order, with resends, applied incrementally gives
        /// exactly the full fold, and the full fold gives what `project` gives.
        #[test]
        fn incremental_equals_full_fold_and_project(
            entries in arbitrary::timeline(16),
            seed in any::<u64>(),
            resends in proptest::collection::vec(any::<proptest::sample::Index>(), 0..4),
        ) {
            let steps: Vec<Step> = entries.iter().map(Step::of_entry).collect();
            let full = Fold::rebuild(steps.clone());
            assert_matches_project(&full, entries.clone());

            let mut arrivals = steps.clone();
            for index in &resends {
                arrivals.push(index.get(&steps).clone());
            }
            arbitrary::shuffle(&mut arrivals, seed);
            prop_assert_eq!(incremental(&arrivals), full.clone());

            let mut newest_first = steps;
            newest_first.sort_by(|a, b| b.key.cmp(&a.key));
            prop_assert_eq!(incremental(&newest_first), full);
        }
    }

    #[test]
    fn a_late_event_between_two_others_replaces_their_pair() {
        use EventType::*;
        let at = |id: &str, millis: i64, state: State| {
            let entry = TimelineEntry {
                source: crate::domain::envelope::Source::Seller,
                event_id: id.parse().unwrap(),
                event_date: EventDate::from_timestamp_micros(millis * 1000).unwrap(),
                event_type: ServiceOrderStateChange,
                dialect: Dialect::Onap,
                facts: OrderFacts {
                    order_id: order_id(),
                    state: Some(state),
                    external_id: None,
                    order_date: None,
                    completion_date_time: None,
                    items: vec![],
                },
            };
            Step::of_entry(&entry)
        };
        // acknowledged → completed is allowed by ONAP's machine; acknowledged → inProgress →
        // completed too. A rejected in the middle makes two forbidden transitions.
        let first = at("a", 1, State::Acknowledged);
        let last = at("c", 3, State::Completed);
        let middle = at("b", 2, State::Rejected);
        let fold = incremental(&[first.clone(), last.clone(), middle.clone()]);
        assert_eq!(fold, Fold::rebuild(vec![first, middle, last]));
        assert_eq!(fold.state(), Some(State::Completed));
        assert_eq!(fold.anomalies, 1); // rejected → completed; acknowledged → rejected is allowed
    }

    #[test]
    fn between_without_neighbours_is_refused_and_changes_nothing() {
        let entry = |id: &str, millis: i64| {
            Step::of_entry(&TimelineEntry {
                source: crate::domain::envelope::Source::Seller,
                event_id: id.parse().unwrap(),
                event_date: EventDate::from_timestamp_micros(millis * 1000).unwrap(),
                event_type: EventType::ServiceOrderStateChange,
                dialect: Dialect::Onap,
                facts: OrderFacts {
                    order_id: order_id(),
                    state: Some(State::InProgress),
                    external_id: None,
                    order_date: None,
                    completion_date_time: None,
                    items: vec![],
                },
            })
        };
        let fold = Fold::rebuild(vec![entry("a", 1), entry("c", 3)]);
        let mut changed = fold.clone();
        let error = changed
            .apply(&entry("b", 2), &Neighbours::new())
            .unwrap_err();
        assert_eq!(error.track, Track::Order);
        assert_eq!(changed, fold);
    }
}
