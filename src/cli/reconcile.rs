//! `order-listener reconcile`: checks orders against their sellers' Service Ordering APIs now,
//! as `serve`'s sweep does on its schedule (`reconcile::Reconciler`), and records a synthesized
//! event for each order whose seller's state differs. Works while `serve` runs: the repairs
//! are appended to the same store, and `serve` forwards them.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use chrono::Utc;
use clap::Args;

use super::StoreArgs;
use super::outbox::{open_for_admin, plural, progress};
use super::{or_dash, print_json, table};
use crate::domain::envelope::OrderId;
use crate::domain::suspect::{Reason, Reasons};
use crate::metrics::Metrics;
use crate::output::outln;
use crate::reconcile::{Check, Outcome, Reconciler};
use crate::store::{Store, SuspectFilter};

#[derive(Debug, Args)]
pub(super) struct ReconcileArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Check this order (may be repeated).
    #[arg(long = "order", value_name = "ID")]
    orders: Vec<OrderId>,
    /// Check every suspect order (`orders suspects` lists them).
    #[arg(long)]
    all_suspects: bool,
    /// Also list the orders of every seller API with `list_orders = true`, and record the
    /// creation of each order the listener has no event of.
    #[arg(long)]
    list: bool,
    /// Fetch and compare, but record nothing: show what would be repaired.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Every suspect, with its reasons, in order id order.
async fn all_suspects(
    store: &Store,
    stale_after: crate::domain::suspect::StaleAfter,
) -> anyhow::Result<Vec<(OrderId, Reasons)>> {
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .suspects(SuspectFilter {
                reasons: Reasons::NONE,
                stale_after,
                now: Utc::now(),
                after: after.clone(),
                limit: 1000,
            })
            .await?;
        let full = page.len() == 1000;
        after = page.last().map(|suspect| suspect.order.id.clone());
        found.extend(
            page.into_iter()
                .map(|suspect| (suspect.order.id, suspect.reasons)),
        );
        if !full {
            return Ok(found);
        }
    }
}

pub(super) async fn run(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    if args.orders.is_empty() && !args.all_suspects && !args.list {
        bail!("say which orders to check: --order ID (may be repeated), --all-suspects, or --list");
    }
    let config = args.store.config()?;
    if config.seller_apis.is_empty() {
        bail!(
            "no seller API is configured, so there is nobody to ask: add a [seller_apis.NAME] \
             table with the base_url of the seller's Service Ordering API (and dialects = \
             [\"onap\"] for ONAP's /nbi/api/v4)"
        );
    }
    let store = open_for_admin(&config).await?;
    // A repair is forwarded like any event: it queues for every sink whose filter takes it,
    // and `serve` delivers it.
    store.set_routes(
        config
            .sinks
            .iter()
            .filter(|sink| sink.enabled)
            .map(|sink| sink.route())
            .collect(),
    );
    let mut orders: Vec<(OrderId, Reasons)> = args
        .orders
        .iter()
        .map(|id| (id.clone(), Reasons::NONE))
        .collect();
    if args.all_suspects {
        for (id, reasons) in all_suspects(&store, config.reconcile.stale_after).await? {
            match orders.iter_mut().find(|(known, _)| *known == id) {
                Some(known) => known.1 = reasons,
                None => orders.push((id, reasons)),
            }
        }
    }
    let reconciler = Reconciler::new(&config.seller_apis, store.clone(), Arc::new(Metrics::new()))?;
    let bar = progress(
        orders.len() as u64,
        "{spinner} checking {pos}/{len} orders [{bar:30}] {elapsed}",
    )?;
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut checks = Vec::with_capacity(orders.len());
    if args.list {
        let listing = reconciler.listing_sellers();
        if listing.is_empty() {
            bail!(
                "no seller API lists its orders: set list_orders = true in the [seller_apis.NAME] \
                 of a seller whose API has GET {{base_url}}/serviceOrder"
            );
        }
        for index in listing {
            match reconciler.list(index, args.dry_run, None).await {
                Ok(found) => checks.extend(found),
                Err(outcome) => bail!(
                    "cannot list the orders of seller API {}: {}",
                    reconciler.seller_names()[index],
                    match outcome {
                        Outcome::Failed { error, .. } => error,
                        other => other.label().to_owned(),
                    }
                ),
            }
        }
    }
    for (id, reasons) in &orders {
        checks.push(reconciler.check(id, *reasons, args.dry_run).await);
        bar.inc(1);
    }
    bar.finish_and_clear();
    store.close().await;
    let failed = checks.iter().any(|check| {
        matches!(
            check.outcome,
            Outcome::Failed { .. } | Outcome::NoSellerApi { .. }
        )
    });
    if args.json {
        print_json(&checks)?;
    } else {
        print_checks(&checks, args.dry_run)?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_checks(checks: &[Check], dry_run: bool) -> anyhow::Result<()> {
    let mut out = table(&["order", "reasons", "seller API", "outcome", "details"]);
    for check in checks {
        let details = match &check.outcome {
            Outcome::Repaired {
                difference,
                event_id,
                ..
            } => format!("{} (event {event_id})", difference.summary()),
            Outcome::Differs { difference } => difference.summary(),
            Outcome::NoSellerApi { dialect } => {
                format!("no [seller_apis] entry serves {dialect}")
            }
            Outcome::Failed { error, .. } => error.clone(),
            Outcome::Matched | Outcome::NotFound => String::new(),
        };
        out.add_row(vec![
            check.order_id.to_string(),
            or_dash(
                Some(
                    check
                        .reasons
                        .iter()
                        .map(Reason::as_str)
                        .collect::<Vec<_>>()
                        .join(" "),
                )
                .filter(|text| !text.is_empty()),
            ),
            or_dash(check.seller_api.clone()),
            check.outcome.label().to_owned(),
            or_dash(Some(details).filter(|text| !text.is_empty())),
        ]);
    }
    outln!("{out}")?;
    let count = |label: &str| {
        checks
            .iter()
            .filter(|check| check.outcome.label() == label)
            .count()
    };
    let changed = if dry_run {
        format!(
            "{} would be repaired",
            plural(count("differs"), "order", "orders")
        )
    } else {
        format!("{} repaired", plural(count("repaired"), "order", "orders"))
    };
    outln!(
        "checked {}: {changed}, {} matched, {} not found, {} failed",
        plural(checks.len(), "order", "orders"),
        count("matched"),
        count("not_found"),
        count("failed") + count("no_seller_api"),
    )?;
    Ok(())
}
