//! `order-listener prune [--dry-run]`: deletes now what `[retention]` lets go, in the same
//! bounded batches as the task of `serve` (and safely beside it), with a progress bar.

use std::process::ExitCode;

use chrono::Utc;
use clap::Args;

use super::StoreArgs;
use super::outbox::{plural, progress, store_error};
use crate::config::retention::Retention;
use crate::output::outln;
use crate::store::{Pruned, Store};

#[derive(Debug, Args)]
pub(super) struct PruneArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only count what would be deleted.
    #[arg(long)]
    dry_run: bool,
}

fn describe(pruned: &Pruned) -> String {
    format!(
        "{}, {} and {}",
        plural(pruned.events, "event", "events"),
        plural(
            pruned.deliveries + pruned.finished_deliveries,
            "delivery",
            "deliveries"
        ),
        plural(pruned.orders, "order", "orders"),
    )
}

fn kept(retention: &Retention) -> String {
    let show = |kept: Option<std::time::Duration>| {
        kept.map_or_else(
            || "forever".to_owned(),
            |kept| humantime::format_duration(kept).to_string(),
        )
    };
    format!(
        "events kept {}, finished deliveries kept {}",
        show(retention.events),
        show(retention.delivered)
    )
}

pub(super) async fn prune(args: PruneArgs) -> anyhow::Result<ExitCode> {
    let config = args.store.config()?;
    let retention = config.retention;
    if !retention.is_enabled() {
        outln!(
            "nothing to prune: [retention] sets neither events nor delivered, so everything is kept"
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let limits = retention.limits(Utc::now());
    if args.dry_run {
        let store = Store::open_read_only(&config.storage)
            .await
            .map_err(store_error)?;
        let prunable = store.prunable(limits).await.map_err(store_error)?;
        outln!(
            "would delete {} ({})",
            describe(&prunable),
            kept(&retention)
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let store = Store::open_for_admin(&config.storage)
        .await
        .map_err(store_error)?;
    let result = prune_batches(&store, &retention, limits).await;
    // Closing joins the writer, so the last batch is committed before the process exits.
    store.close().await;
    let total = result?;
    outln!("deleted {} ({})", describe(&total), kept(&retention))?;
    Ok(ExitCode::SUCCESS)
}

async fn prune_batches(
    store: &Store,
    retention: &Retention,
    limits: crate::store::PruneLimits,
) -> anyhow::Result<Pruned> {
    let expected = store.prunable(limits).await.map_err(store_error)?;
    let bar = progress(
        (expected.events + expected.finished_deliveries) as u64,
        "{spinner} pruning [{bar:40}] {pos}/{len} rows, {msg}",
    )?;
    let mut total = Pruned::default();
    loop {
        let pruned = store
            .prune(limits, retention.batch_size)
            .await
            .map_err(store_error)?;
        total.add(pruned);
        let done = (total.events + total.finished_deliveries) as u64;
        if done > bar.length().unwrap_or(0) {
            bar.set_length(done);
        }
        bar.set_position(done);
        bar.set_message(describe(&total));
        if !pruned.filled(retention.batch_size) {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(total)
}
