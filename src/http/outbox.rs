//! The outbox as the admin API and the console both show it: every sink's overview, and the
//! retry of one dead letter. Each is written once here, so that the two surfaces cannot
//! disagree; each surface renders the result its own way (JSON, HTML).
//!
//! It reads the store and changes it only through `Store::requeue`; it renders nothing and
//! never calls a sink (the delivery worker sends what a retry queues).

use super::AppState;
use super::error::ApiError;
use crate::domain::routing::SinkName;
use crate::store::{Requeue, RequeueScope, SinkStatus, Store};

/// One sink as an operator sees it: its outbox, and whether the configuration names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SinkOverview {
    /// The outbox's counts and the sink's disabled mark.
    pub status: SinkStatus,
    /// Whether the configuration names the sink (one removed from it may keep an outbox).
    pub configured: bool,
}

/// Every configured sink, and every sink that has an outbox or is disabled, by name.
pub(crate) async fn sink_overview(app: &AppState) -> Result<Vec<SinkOverview>, ApiError> {
    let statuses = app.store.sink_statuses().await?;
    Ok(overview_of(statuses, &app.sinks.load()))
}

/// The store's statuses with a zero status for each configured sink the store does not know
/// yet, each marked configured or not, sorted by name.
fn overview_of(mut statuses: Vec<SinkStatus>, configured: &[SinkName]) -> Vec<SinkOverview> {
    for name in configured {
        if !statuses.iter().any(|status| &status.name == name) {
            statuses.push(SinkStatus {
                name: name.clone(),
                pending: 0,
                delivered: 0,
                dead: 0,
                failing: 0,
                oldest_pending_at: None,
                disabled: None,
            });
        }
    }
    statuses.sort_by(|a, b| a.name.cmp(&b.name));
    statuses
        .into_iter()
        .map(|status| SinkOverview {
            configured: configured.contains(&status.name),
            status,
        })
        .collect()
}

/// What a dead-letter retry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// The delivery is pending again; the worker sends it.
    Queued,
    /// No dead letter has that id (any more): it never was one, or was retried already.
    NotADeadLetter,
}

/// Queues the dead letter with outbox row `delivery` again, as `POST
/// /api/v1/dead-letters/{id}/retry` and the console's Retry button do.
pub(crate) async fn retry_dead_letter(store: &Store, delivery: i64) -> Result<Retry, ApiError> {
    let requeued = store
        .requeue(Requeue {
            scope: RequeueScope::DeadLetters,
            ids: vec![delivery],
            limit: 1,
            ..Requeue::default()
        })
        .await?;
    Ok(if requeued.count == 0 {
        Retry::NotADeadLetter
    } else {
        Retry::Queued
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, dead: u64) -> SinkStatus {
        SinkStatus {
            name: name.parse().unwrap(),
            pending: 1,
            delivered: 2,
            dead,
            failing: 0,
            oldest_pending_at: None,
            disabled: None,
        }
    }

    #[test]
    fn a_configured_sink_without_an_outbox_is_shown_empty_and_every_sink_is_sorted_by_name() {
        let overview = overview_of(
            vec![status("zeta", 3), status("gone", 1)],
            &["zeta".parse().unwrap(), "alpha".parse().unwrap()],
        );
        let names: Vec<(&str, bool)> = overview
            .iter()
            .map(|sink| (sink.status.name.as_str(), sink.configured))
            .collect();
        assert_eq!(
            names,
            [("alpha", true), ("gone", false), ("zeta", true)],
            "a sink only the store knows is shown as not configured"
        );
        assert_eq!(overview[0].status.pending, 0);
        assert_eq!(overview[0].status.dead, 0);
        assert_eq!(overview[2].status, status("zeta", 3));
    }

    #[test]
    fn no_sinks_anywhere_is_an_empty_overview() {
        assert!(overview_of(Vec::new(), &[]).is_empty());
    }
}
