//! `[reconcile]`: how suspect orders are found and what they are compared with (issue 14). Its
//! `stale_after` table says how long an order may stay without an event in each non-final state
//! before it is stale (the rules themselves are `domain::suspect`'s); `received_limit` bounds the
//! gap report.

use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::domain::state::State;
use crate::domain::suspect::StaleAfter;

/// `[reconcile]` as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct ReconcileSettings {
    stale_after: StaleAfterSettings,
    received_limit: usize,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings {
            stale_after: StaleAfterSettings::default(),
            received_limit: DEFAULT_RECEIVED_LIMIT,
        }
    }
}

/// The most events one gap report lists, unless configured.
pub const DEFAULT_RECEIVED_LIMIT: usize = 50_000;

/// `[reconcile.stale_after]` as written: a duration per non-final state, or "never". The keys
/// are the states' names; the environment's lower-case spellings are taken too.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct StaleAfterSettings {
    acknowledged: Option<String>,
    pending: Option<String>,
    held: Option<String>,
    #[serde(alias = "inprogress")]
    in_progress: Option<String>,
    #[serde(alias = "assessingcancellation")]
    assessing_cancellation: Option<String>,
    #[serde(alias = "pendingcancellation")]
    pending_cancellation: Option<String>,
}

/// The checked `[reconcile]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconcile {
    /// How long an order may stay silent in each non-final state.
    pub stale_after: StaleAfter,
    /// The most events one gap report (`GET /api/v1/received`) lists; a range that holds more
    /// is refused.
    pub received_limit: usize,
}

impl Default for Reconcile {
    fn default() -> Self {
        Reconcile {
            stale_after: StaleAfter::default(),
            received_limit: DEFAULT_RECEIVED_LIMIT,
        }
    }
}

/// A threshold: a positive duration, or "never".
fn threshold(state: State, text: &str) -> anyhow::Result<Option<Duration>> {
    let text = text.trim();
    if text == "never" {
        return Ok(None);
    }
    humantime::parse_duration(text)
        .ok()
        .filter(|after| !after.is_zero())
        .map(Some)
        .with_context(|| {
            format!(
                "reconcile.stale_after.{state} must be a positive duration such as \"1h\" or \
                 \"7d\", or \"never\" (got {text:?})"
            )
        })
}

/// Checks `[reconcile]`: each threshold given replaces its state's default.
pub fn check(settings: &ReconcileSettings) -> anyhow::Result<Reconcile> {
    let given = &settings.stale_after;
    let mut stale_after = StaleAfter::default();
    for (state, text) in [
        (State::Acknowledged, &given.acknowledged),
        (State::Pending, &given.pending),
        (State::Held, &given.held),
        (State::InProgress, &given.in_progress),
        (State::AssessingCancellation, &given.assessing_cancellation),
        (State::PendingCancellation, &given.pending_cancellation),
    ] {
        if let Some(text) = text {
            stale_after = stale_after.with(state, threshold(state, text)?)?;
        }
    }
    if settings.received_limit == 0 {
        anyhow::bail!(
            "reconcile.received_limit must be positive (the default is {DEFAULT_RECEIVED_LIMIT})"
        );
    }
    Ok(Reconcile {
        stale_after,
        received_limit: settings.received_limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> ReconcileSettings {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn unset_thresholds_keep_their_defaults() {
        let reconcile = check(&settings("")).unwrap();
        assert_eq!(reconcile, Reconcile::default());
        assert_eq!(reconcile.received_limit, 50_000);
        assert_eq!(
            reconcile.stale_after.after(State::Acknowledged),
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn a_threshold_replaces_its_default_and_never_turns_it_off() {
        let reconcile = check(&settings(
            "[stale_after]\ninProgress = \"2h\"\nheld = \"never\"\n",
        ))
        .unwrap();
        let stale_after = reconcile.stale_after;
        assert_eq!(
            stale_after.after(State::InProgress),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(stale_after.after(State::Held), None);
        assert_eq!(
            stale_after.after(State::Pending),
            StaleAfter::default().after(State::Pending)
        );
    }

    #[test]
    fn a_zero_report_limit_is_refused() {
        let error = check(&settings("received_limit = 0\n")).unwrap_err();
        assert!(
            format!("{error:#}").contains("reconcile.received_limit"),
            "{error:#}"
        );
    }

    #[test]
    fn a_bad_or_zero_threshold_is_refused_by_name() {
        for bad in ["soon", "0s"] {
            let error =
                check(&settings(&format!("[stale_after]\npending = \"{bad}\"\n"))).unwrap_err();
            assert!(
                format!("{error:#}").contains("reconcile.stale_after.pending"),
                "{error:#}"
            );
        }
    }
}
