//! `order-listener orders suspects`: the orders that look incomplete and why (issue 14), as the
//! admin API's `GET /api/v1/suspects` lists them, with the stale thresholds of the
//! configuration. Reads the store read-only, so it works while `serve` runs.

use std::process::ExitCode;

use chrono::Utc;
use clap::Args;

use super::StoreArgs;
use super::query::open_with;
use super::{or_dash, print_json, table};
use crate::domain::envelope::OrderId;
use crate::domain::suspect::{Reason, Reasons};
use crate::output::outln;
use crate::store::SuspectFilter;

#[derive(Debug, Args)]
pub(super) struct SuspectsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only orders suspect for this reason: stale, missedTransition, itemNotFinal,
    /// creationMissing or outOfStep.
    #[arg(long, value_name = "REASON")]
    reason: Option<Reason>,
    /// Only orders whose id sorts after this one (the last id of a previous page).
    #[arg(long, value_name = "ID")]
    after: Option<OrderId>,
    /// At most this many (1 to 10000), in order id order.
    #[arg(long, default_value_t = 100, value_parser = super::limit_parser())]
    limit: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub(super) async fn list(args: SuspectsArgs) -> anyhow::Result<ExitCode> {
    let config = args.store.config()?;
    let store = open_with(&config).await?;
    let suspects = store
        .suspects(SuspectFilter {
            reasons: args
                .reason
                .map_or(Reasons::NONE, |reason| Reasons::NONE.with(reason)),
            stale_after: config.reconcile.stale_after,
            now: Utc::now(),
            after: args.after,
            limit: args.limit,
        })
        .await?;
    if args.json {
        print_json(&suspects)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = table(&[
        "order",
        "state",
        "reasons",
        "last event",
        "externalId",
        "events",
    ]);
    for suspect in &suspects {
        let order = &suspect.order;
        out.add_row(vec![
            order.id.to_string(),
            or_dash(order.state),
            suspect
                .reasons
                .iter()
                .map(Reason::as_str)
                .collect::<Vec<_>>()
                .join(" "),
            order.last_event_date.to_string(),
            or_dash(order.external_id.as_ref()),
            order.event_count.to_string(),
        ]);
    }
    outln!("{out}")?;
    outln!(
        "{} suspect order{}{}",
        suspects.len(),
        if suspects.len() == 1 { "" } else { "s" },
        match suspects.last() {
            Some(last) if suspects.len() == args.limit =>
                format!("; more may follow: --after {}", last.order.id),
            _ => String::new(),
        }
    )?;
    Ok(ExitCode::SUCCESS)
}
