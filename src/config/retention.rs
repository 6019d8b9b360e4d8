//! `[retention]`: how long events and finished outbox rows are kept, and how pruning runs.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::store::PruneLimits;

/// `[retention]` as written.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RetentionSettings {
    events: Option<String>,
    delivered: Option<String>,
    interval: String,
    batch_size: usize,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            events: None,
            delivered: None,
            interval: "1m".into(),
            batch_size: 500,
        }
    }
}

/// How long rows are kept, and how pruning runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Events received longer ago than this go; `None` keeps them forever.
    pub events: Option<Duration>,
    /// Delivered and dead outbox rows whose last attempt is older than this go; `None` keeps
    /// them as long as their event.
    pub delivered: Option<Duration>,
    /// How often `serve` prunes.
    pub interval: Duration,
    /// The most events, and the most outbox rows, deleted in one transaction.
    pub batch_size: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            events: None,
            delivered: None,
            interval: Duration::from_secs(60),
            batch_size: 500,
        }
    }
}

impl Retention {
    /// Whether anything is ever pruned.
    pub fn is_enabled(&self) -> bool {
        self.events.is_some() || self.delivered.is_some()
    }

    /// The instants before which rows go, seen at `now`.
    pub fn limits(&self, now: DateTime<Utc>) -> PruneLimits {
        let before = |kept: Option<Duration>| {
            kept.and_then(|kept| chrono::Duration::from_std(kept).ok())
                .map(|kept| {
                    now.checked_sub_signed(kept)
                        .unwrap_or(DateTime::<Utc>::MIN_UTC)
                })
        };
        PruneLimits {
            events_before: before(self.events),
            delivered_before: before(self.delivered),
        }
    }
}

fn duration(field: &str, text: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(text.trim()).with_context(|| {
        format!("retention.{field} {text:?} is not a duration such as 400d, 30days or 12h")
    })
}

fn kept(field: &str, text: Option<&str>) -> anyhow::Result<Option<Duration>> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => {
            let kept = duration(field, text)?;
            if kept.is_zero() {
                anyhow::bail!(
                    "retention.{field} = {text:?} would delete everything at once; leave it unset to keep forever"
                );
            }
            Ok(Some(kept))
        }
    }
}

/// Checks `[retention]`.
pub fn check(settings: &RetentionSettings) -> anyhow::Result<Retention> {
    let interval = duration("interval", &settings.interval)?;
    if interval.is_zero() {
        anyhow::bail!("retention.interval must be positive");
    }
    if settings.batch_size == 0 {
        anyhow::bail!("retention.batch_size must be positive");
    }
    Ok(Retention {
        events: kept("events", settings.events.as_deref())?,
        delivered: kept("delivered", settings.delivered.as_deref())?,
        interval,
        batch_size: settings.batch_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(events: Option<&str>, delivered: Option<&str>) -> RetentionSettings {
        RetentionSettings {
            events: events.map(Into::into),
            delivered: delivered.map(Into::into),
            ..RetentionSettings::default()
        }
    }

    #[test]
    fn unset_or_empty_keeps_forever() {
        let retention = check(&settings(None, Some(""))).unwrap();
        assert!(!retention.is_enabled());
        assert_eq!(retention.limits(Utc::now()).events_before, None);
    }

    #[test]
    fn durations_become_instants_before_now() {
        let retention = check(&settings(Some("400d"), Some("30days"))).unwrap();
        let now = Utc::now();
        let limits = retention.limits(now);
        assert_eq!(
            limits.events_before,
            Some(now - chrono::Duration::days(400))
        );
        assert_eq!(
            limits.delivered_before,
            Some(now - chrono::Duration::days(30))
        );
    }

    #[test]
    fn bad_or_zero_durations_are_refused_by_name() {
        let error = check(&settings(Some("soon"), None)).unwrap_err();
        assert!(
            format!("{error:#}").contains("retention.events"),
            "{error:#}"
        );
        let error = check(&settings(None, Some("0s"))).unwrap_err();
        assert!(
            format!("{error:#}").contains("retention.delivered"),
            "{error:#}"
        );
    }
}
