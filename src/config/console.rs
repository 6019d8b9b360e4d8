//! `[console]`: the web console's settings as written, and as the console uses them.

use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// `[console]` as written: durations in humantime's syntax ("1h", "30m").
#[derive(Debug, Deserialize)]
#[serde(default)]
pub(super) struct ConsoleSettings {
    stuck_after: String,
    session_ttl: String,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            stuck_after: "1h".into(),
            session_ttl: "12h".into(),
        }
    }
}

/// The web console's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// An order in a non-final state that has not changed for longer than this is stuck.
    pub stuck_after: Duration,
    /// How long a console login lasts.
    pub session_ttl: Duration,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            stuck_after: Duration::from_secs(3600),
            session_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

impl TryFrom<&ConsoleSettings> for ConsoleConfig {
    type Error = anyhow::Error;

    fn try_from(settings: &ConsoleSettings) -> anyhow::Result<ConsoleConfig> {
        let duration = |name: &str, text: &str| {
            humantime::parse_duration(text)
                .ok()
                .filter(|duration| !duration.is_zero())
                .with_context(|| {
                    format!("console.{name} must be a positive duration such as \"1h\" or \"30m\" (got {text:?})")
                })
        };
        Ok(ConsoleConfig {
            stuck_after: duration("stuck_after", &settings.stuck_after)?,
            session_ttl: duration("session_ttl", &settings.session_ttl)?,
        })
    }
}
