//! `order-listener backup --to FILE` and `order-listener restore FILE`: an online, checked copy
//! of the embedded SQLite store while `serve` runs, and its restore into a store no `serve`
//! holds. On PostgreSQL both say how to use `pg_dump` and `pg_restore` instead.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::StoreArgs;
use crate::output::{errln, outln};
use crate::store::Storage;
use crate::store::sqlite::backup::{self, BackupError, Checked};

#[derive(Debug, Args)]
pub(super) struct BackupArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The file to write: a complete SQLite store, checked before it takes this name.
    #[arg(long, value_name = "FILE")]
    to: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Args)]
pub(super) struct RestoreArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// A file written by `order-listener backup`.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// How to back up and restore a PostgreSQL store.
const POSTGRES: &str = "the store is PostgreSQL, which order-listener does not copy itself. \
Take a consistent online backup with pg_dump while the listeners run:\n\
\n    pg_dump --format=custom --file=order-listener.dump \"$DATABASE_URL\"\n\
\nand restore it, with every listener stopped, with:\n\
\n    pg_restore --clean --if-exists --no-owner --dbname=\"$DATABASE_URL\" order-listener.dump\n\
\nwhere DATABASE_URL is the store's URL (--database-url). Continuous archiving (WAL) or your \
provider's snapshots give point-in-time recovery.";

fn describe(checked: &Checked) -> String {
    format!(
        "{} events and {} orders (newest sequence {}, {:.1} MB)",
        checked.events,
        checked.orders,
        checked.last_sequence,
        checked.bytes as f64 / 1_000_000.0
    )
}

fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

pub(super) async fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let config = args.store.config()?;
    let Storage::Sqlite { path } = config.storage else {
        errln!("order-listener backup: {POSTGRES}");
        return Ok(ExitCode::from(2));
    };
    anyhow::ensure!(
        path.exists(),
        "no store at {}: pass the --data-dir (or --config) that `serve` uses",
        path.display()
    );
    anyhow::ensure!(
        args.force || !args.to.exists(),
        "{} exists: choose another file, or pass --force to replace it",
        args.to.display()
    );
    let bar = spinner(format!(
        "copying {} to {} and checking the copy",
        path.display(),
        args.to.display()
    ));
    let target = args.to.clone();
    let checked = tokio::task::spawn_blocking(move || backup::backup(&path, &target))
        .await
        .context("the backup task failed")?
        .context("the backup failed; nothing was written")?;
    bar.finish_and_clear();
    outln!(
        "backed up {} to {}; SQLite's integrity check passed",
        describe(&checked),
        args.to.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let config = args.store.config()?;
    let Storage::Sqlite { path } = config.storage else {
        errln!("order-listener restore: {POSTGRES}");
        return Ok(ExitCode::from(2));
    };
    let bar = spinner(format!(
        "checking {} and restoring it to {}",
        args.file.display(),
        path.display()
    ));
    let (file, database) = (args.file.clone(), path.clone());
    let outcome = tokio::task::spawn_blocking(move || backup::restore(&file, &database))
        .await
        .context("the restore task failed")?;
    bar.finish_and_clear();
    let (checked, kept) = outcome
        .map_err(|error| match error {
            BackupError::InUse(_) => {
                anyhow::anyhow!("{error}: stop it first (a restore replaces the whole store)")
            }
            other => anyhow::Error::new(other),
        })
        .context("the store was not restored")?;
    outln!("restored {} into {}", describe(&checked), path.display())?;
    if let Some(kept) = kept {
        outln!(
            "the store it replaced is kept as {}; delete it once the restored one serves",
            kept.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
