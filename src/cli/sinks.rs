//! `order-listener sinks list|enable|check`: each sink's outbox, a sink enabled again after a
//! 410, and each sink tried without delivering anything.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::outbox::{configured, disabled_mark, open_for_admin, open_read_only, store_error};
use super::{StoreArgs, or_dash, print_json, table};
use crate::config::Config;
use crate::config::sinks::{SinkConfig, SinkTarget};
use crate::domain::routing::SinkName;
use crate::forward::Sink;
use crate::output::{errln, outln};
use crate::store::{SinkStatus, Store};

#[derive(Debug, Subcommand)]
pub(super) enum SinksCommand {
    /// Each sink's outbox: pending, delivered, dead, failing, and whether it is disabled.
    List(SinkListArgs),
    /// Enable a sink again after it answered 410 Gone. The sink must be configured: another
    /// name is refused (exit status 1), as `replay --sink` refuses it.
    Enable(SinkEnableArgs),
    /// Connect to each configured sink (or NAME) without delivering anything, and say what
    /// each found: the address, TLS and the login work, or what is wrong. The exit status is 1
    /// when one fails.
    Check(SinkCheckArgs),
}

#[derive(Debug, Args)]
pub(super) struct SinkCheckArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only this sink.
    name: Option<SinkName>,
}

#[derive(Debug, Args)]
pub(super) struct SinkListArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(super) struct SinkEnableArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The sink.
    name: SinkName,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SinkLine {
    name: String,
    /// `http`, `nats`, `amqp`, `redis`, …; `None` when the outbox has rows for a sink no longer configured.
    #[serde(rename = "type")]
    kind: Option<&'static str>,
    /// `enabled` in the configuration.
    enabled_in_config: bool,
    pending: u64,
    delivered: u64,
    dead: u64,
    failing: u64,
    oldest_pending_at: Option<DateTime<Utc>>,
    disabled_at: Option<DateTime<Utc>>,
    disabled_reason: Option<String>,
}

fn sink_lines(config: &Config, statuses: Vec<SinkStatus>) -> Vec<SinkLine> {
    let mut lines: Vec<SinkLine> = statuses
        .into_iter()
        .map(|status| {
            let (disabled_at, disabled_reason) = status.disabled.unzip();
            SinkLine {
                name: status.name.to_string(),
                kind: None,
                enabled_in_config: false,
                pending: status.pending,
                delivered: status.delivered,
                dead: status.dead,
                failing: status.failing,
                oldest_pending_at: status.oldest_pending_at,
                disabled_at,
                disabled_reason,
            }
        })
        .collect();
    for sink in &config.sinks {
        let kind = match sink.target {
            SinkTarget::Http { .. } => "http",
            SinkTarget::Nats { .. } => "nats",
            SinkTarget::Amqp { .. } => "amqp",
            SinkTarget::Redis { .. } => "redis",
            SinkTarget::Mqtt { .. } => "mqtt",
            SinkTarget::Kafka { .. } => "kafka",
            SinkTarget::SellerApi => "seller-api",
        };
        let index = match lines
            .iter()
            .position(|line| line.name == sink.name.as_str())
        {
            Some(index) => index,
            None => {
                lines.push(SinkLine {
                    name: sink.name.as_str().to_owned(),
                    kind: None,
                    enabled_in_config: false,
                    pending: 0,
                    delivered: 0,
                    dead: 0,
                    failing: 0,
                    oldest_pending_at: None,
                    disabled_at: None,
                    disabled_reason: None,
                });
                lines.len() - 1
            }
        };
        lines[index].kind = Some(kind);
        lines[index].enabled_in_config = sink.enabled;
    }
    lines.sort_by(|a, b| a.name.cmp(&b.name));
    lines
}

pub(super) async fn list_sinks(args: SinkListArgs) -> anyhow::Result<ExitCode> {
    let config = args.store.config()?;
    let store = open_read_only(&config).await?;
    let lines = sink_lines(&config, store.sink_statuses().await?);
    if args.json {
        print_json(&lines)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = table(&[
        "sink",
        "type",
        "pending",
        "delivered",
        "dead",
        "failing",
        "oldest pending",
        "status",
    ]);
    for line in &lines {
        let status = match (&line.disabled_at, &line.disabled_reason) {
            // `sinks enable` refuses a sink the configuration does not name.
            (Some(at), reason) if line.kind.is_none() => format!(
                "disabled since {} ({}); not configured",
                at.format("%Y-%m-%d %H:%M:%S"),
                reason.as_deref().unwrap_or("-"),
            ),
            (Some(at), reason) => format!(
                "disabled since {} ({}): `order-listener sinks enable {}`",
                at.format("%Y-%m-%d %H:%M:%S"),
                reason.as_deref().unwrap_or("-"),
                line.name
            ),
            (None, _) if line.kind.is_none() => "not configured".to_owned(),
            (None, _) if !line.enabled_in_config => "enabled = false in the config".to_owned(),
            (None, _) => "enabled".to_owned(),
        };
        out.add_row(vec![
            line.name.clone(),
            line.kind.unwrap_or("-").to_owned(),
            line.pending.to_string(),
            line.delivered.to_string(),
            line.dead.to_string(),
            line.failing.to_string(),
            or_dash(
                line.oldest_pending_at
                    .map(|at| at.format("%Y-%m-%d %H:%M:%S")),
            ),
            status,
        ]);
    }
    outln!("{out}")?;
    if lines.is_empty() {
        outln!("no sinks: add [sinks.NAME] tables to the file given with --config")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn check_sinks(args: SinkCheckArgs) -> anyhow::Result<ExitCode> {
    let config = args.store.config()?;
    let chosen: Vec<&SinkConfig> = config
        .sinks
        .iter()
        .filter(|sink| sink.target != SinkTarget::SellerApi)
        .filter(|sink| args.name.as_ref().is_none_or(|name| &sink.name == name))
        .collect();
    if chosen.is_empty() {
        match &args.name {
            Some(name) => {
                bail!("no sink named {name} is configured: see `order-listener sinks list`")
            }
            None => {
                outln!("no sinks: add [sinks.NAME] tables to the file given with --config")?;
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
    // A sink is built with a store (MQTT publishes projections from it); a probe reads none,
    // so a throwaway one serves, and the real store is not touched (nor needed).
    let scratch = tempfile::tempdir().context("cannot make a temporary directory")?;
    let store = Store::open(
        &crate::store::Storage::Sqlite {
            path: scratch.path().join("check.sqlite3"),
        },
        crate::store::WriterOptions::default(),
    )
    .await
    .map_err(store_error)?;
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let mut failed = 0;
    for sink in chosen {
        let built = Sink::new(sink, &config.seller_apis, &store, &metrics)
            .with_context(|| format!("sink {}", sink.name))?;
        let disabled = if sink.enabled {
            ""
        } else {
            " (enabled = false)"
        };
        let line = match tokio::time::timeout(sink.timeout, built.probe()).await {
            Ok(Ok(found)) => format!(
                "ok      {} ({}){disabled}: {found}",
                sink.name,
                built.kind()
            ),
            Ok(Err(error)) => {
                failed += 1;
                format!(
                    "FAILED  {} ({}){disabled}: {}",
                    sink.name,
                    built.kind(),
                    crate::telemetry::error_chain(&error)
                )
            }
            Err(_) => {
                failed += 1;
                format!(
                    "FAILED  {} ({}){disabled}: no answer within timeout_seconds ({}s)",
                    sink.name,
                    built.kind(),
                    sink.timeout.as_secs()
                )
            }
        };
        outln!("{line}")?;
    }
    store.close().await;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        errln!("{failed} sink(s) cannot be reached: see the lines above");
        ExitCode::FAILURE
    })
}

pub(super) async fn enable_sink(args: SinkEnableArgs) -> anyhow::Result<ExitCode> {
    let config = args.store.config()?;
    // As `replay --sink`: a sink the configuration does not name has nothing to resume.
    let enabled_in_config = configured(&config, &args.name)?.enabled;
    let store = open_for_admin(&config).await?;
    let name = args.name.as_str();
    let result = async {
        let mark = disabled_mark(&store, name).await?;
        if mark.is_some() {
            store.set_sink_disabled(&args.name, None).await?;
        }
        Ok::<_, anyhow::Error>(mark)
    }
    .await;
    store.close().await;
    match result? {
        Some(reason) => outln!(
            "sink {name} is enabled again (it was disabled: {reason}); `serve` resumes its \
             deliveries within a second"
        )?,
        None => outln!("sink {name} was not disabled; nothing to do")?,
    }
    // The admin API, which knows only the sinks `serve` runs, answers 404 for such a sink; here
    // its mark is cleared, and the reason it still gets nothing is said.
    if !enabled_in_config {
        outln!(
            "note: sink {name} has enabled = false in the configuration, so `serve` delivers              nothing to it; set enabled = true and reload (SIGHUP) to start it"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
