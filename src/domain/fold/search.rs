//! [`NeighbourSearch`]: for an event that lands between two others, the nearest stored events
//! before and after it on each of its tracks, from pages of stored events the store offers. The
//! search only decides what it still needs; the store does the reading.

use std::collections::{BTreeMap, BTreeSet};

use super::{Neighbours, Step, Track};
use crate::domain::key::FoldKey;
use crate::domain::state::State;

/// Finds, for a new event's key, the nearest events before and after it on some tracks, from
/// the order's stored events offered in pages: before the key newest first, after it oldest
/// first, by eventDate (any order within one date). The store pages until [`Self::done`].
#[derive(Debug)]
pub struct NeighbourSearch {
    key: FoldKey,
    tracks: BTreeSet<Track>,
    before: BTreeMap<Track, (FoldKey, State)>,
    after: BTreeMap<Track, (FoldKey, State)>,
    /// Every event before the key with a date above this one has been offered; `None` once
    /// all of them have.
    before_floor: Option<i64>,
    /// Every event after the key with a date below this one has been offered; `None` once
    /// all of them have.
    after_ceiling: Option<i64>,
}

impl NeighbourSearch {
    /// A search around `key` on `tracks`.
    pub fn new(key: FoldKey, tracks: impl IntoIterator<Item = Track>) -> NeighbourSearch {
        NeighbourSearch {
            before_floor: Some(key.date_us + 1),
            after_ceiling: Some(key.date_us - 1),
            key,
            tracks: tracks.into_iter().collect(),
            before: BTreeMap::new(),
            after: BTreeMap::new(),
        }
    }

    /// The key searched around.
    pub fn key(&self) -> &FoldKey {
        &self.key
    }

    /// Considers one stored event (the new event itself is ignored).
    pub fn offer(&mut self, step: &Step) {
        if step.key == self.key {
            return;
        }
        let before = step.key < self.key;
        for track in &self.tracks {
            let Some((first, last)) = step.states_of(track) else {
                continue;
            };
            if before {
                let better = self
                    .before
                    .get(track)
                    .is_none_or(|(best, _)| step.key > *best);
                if better {
                    self.before.insert(track.clone(), (step.key.clone(), last));
                }
            } else {
                let better = self
                    .after
                    .get(track)
                    .is_none_or(|(best, _)| step.key < *best);
                if better {
                    self.after.insert(track.clone(), (step.key.clone(), first));
                }
            }
        }
    }

    /// Every stored event before the key dated after `date_us` has been offered (`None`:
    /// every one).
    pub fn seen_before_down_to(&mut self, date_us: Option<i64>) {
        self.before_floor = date_us;
    }

    /// Every stored event after the key dated before `date_us` has been offered (`None`:
    /// every one).
    pub fn seen_after_up_to(&mut self, date_us: Option<i64>) {
        self.after_ceiling = date_us;
    }

    /// Whether the events before the key still need another page.
    pub fn wants_before(&self) -> bool {
        let Some(floor) = self.before_floor else {
            return false;
        };
        // A candidate is final once every event of its date (and later) has been offered.
        self.tracks.iter().any(|track| {
            self.before
                .get(track)
                .is_none_or(|(best, _)| best.date_us <= floor)
        })
    }

    /// Whether the events after the key still need another page.
    pub fn wants_after(&self) -> bool {
        let Some(ceiling) = self.after_ceiling else {
            return false;
        };
        self.tracks.iter().any(|track| {
            self.after
                .get(track)
                .is_none_or(|(best, _)| best.date_us >= ceiling)
        })
    }

    /// Whether the search is over.
    pub fn done(&self) -> bool {
        !self.wants_before() && !self.wants_after()
    }

    /// The neighbours found; a track without both is left out (and [`Fold::apply`](super::Fold::apply) says so).
    pub fn neighbours(&self) -> Neighbours {
        self.tracks
            .iter()
            .filter_map(|track| {
                let (_, previous) = self.before.get(track)?;
                let (_, next) = self.after.get(track)?;
                Some((track.clone(), (*previous, *next)))
            })
            .collect()
    }
}
