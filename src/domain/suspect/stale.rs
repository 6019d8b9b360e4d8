//! [`StaleAfter`]: how long an order may stay without an event in each non-final state before
//! it is stale. Judged when read, never stored: the thresholds come from the configuration and
//! the answer from the clock.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::state::State;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::state::State::*;

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
}
