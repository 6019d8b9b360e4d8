//! `[reconcile]`: how suspect orders are found and what they are compared with (issue 14). Its
//! `stale_after` table says how long an order may stay without an event in each non-final state
//! before it is stale (the rules themselves are `domain::suspect`'s); `received_limit` bounds the
//! gap report. The rest says how `serve` repairs suspects from the `[seller_apis]`: how often it
//! sweeps (`sweep_every`, or "never"), how many requests a minute each seller API takes
//! (`requests_per_minute`), how soon an order checked and found right is checked again
//! (`recheck_after`).

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
    sweep_every: String,
    requests_per_minute: u32,
    recheck_after: String,
    list_every: String,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings {
            stale_after: StaleAfterSettings::default(),
            received_limit: DEFAULT_RECEIVED_LIMIT,
            sweep_every: "5m".into(),
            requests_per_minute: 60,
            recheck_after: "1h".into(),
            list_every: "15m".into(),
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
    /// How often `serve` checks the suspects against the seller APIs; `None`: never.
    pub sweep_every: Option<Duration>,
    /// The most requests a minute reconciliation sends to one seller API.
    pub requests_per_minute: std::num::NonZeroU32,
    /// How long an order found right (or repaired) is not checked again unless it changes.
    pub recheck_after: Duration,
    /// How often `serve` lists the orders of the seller APIs that list them (`list_orders`),
    /// to find the orders it never heard of; `None`: never.
    pub list_every: Option<Duration>,
}

impl Default for Reconcile {
    fn default() -> Self {
        Reconcile {
            stale_after: StaleAfter::default(),
            received_limit: DEFAULT_RECEIVED_LIMIT,
            sweep_every: Some(Duration::from_secs(300)),
            requests_per_minute: std::num::NonZeroU32::new(60).unwrap_or(std::num::NonZeroU32::MIN),
            recheck_after: Duration::from_secs(3600),
            list_every: Some(Duration::from_secs(900)),
        }
    }
}

/// A period: a positive duration, or "never" (`None`), for `reconcile.{key}`.
fn period(key: &str, text: &str) -> anyhow::Result<Option<Duration>> {
    let text = text.trim();
    if text == "never" {
        return Ok(None);
    }
    humantime::parse_duration(text)
        .ok()
        .filter(|every| !every.is_zero())
        .map(Some)
        .with_context(|| {
            format!(
                "reconcile.{key} must be a positive duration such as \"5m\", or \"never\" \
                 (got {text:?})"
            )
        })
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
    let requests_per_minute = std::num::NonZeroU32::new(settings.requests_per_minute)
        .context("reconcile.requests_per_minute must be at least 1 (the default is 60)")?;
    let recheck_after = period("recheck_after", &settings.recheck_after)?
        .context("reconcile.recheck_after cannot be \"never\"; give a duration such as \"1h\"")?;
    Ok(Reconcile {
        stale_after,
        received_limit: settings.received_limit,
        sweep_every: period("sweep_every", &settings.sweep_every)?,
        requests_per_minute,
        recheck_after,
        list_every: period("list_every", &settings.list_every)?,
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
    fn the_sweep_can_be_turned_off_and_its_mistakes_are_named() {
        let reconcile = check(&settings(
            "sweep_every = \"never\"\nrequests_per_minute = 6\n",
        ))
        .unwrap();
        assert_eq!(reconcile.sweep_every, None);
        assert_eq!(reconcile.requests_per_minute.get(), 6);
        for (bad, key) in [
            ("sweep_every = \"0s\"", "reconcile.sweep_every"),
            ("requests_per_minute = 0", "reconcile.requests_per_minute"),
            ("recheck_after = \"never\"", "reconcile.recheck_after"),
            ("list_every = \"often\"", "reconcile.list_every"),
        ] {
            let error = check(&settings(bad)).unwrap_err();
            assert!(format!("{error:#}").contains(key), "{bad}: {error:#}");
        }
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
