//! The outbox commands: `replay`, `dead-letters list|retry` and `sinks list|enable`. They work
//! while `serve` runs: reads open the store read-only; changes open it with a writer of their
//! own (`Store::open_for_admin`), and the serving process picks the queued work up within a
//! second. They never call a sink themselves.

use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use super::{StoreArgs, or_dash, print_json, table};
use crate::config::Config;
use crate::config::sinks::SinkConfig;
use crate::domain::envelope::{Dialect, EventId, OrderId};
use crate::domain::routing::{RouteFilter, SinkName};
use crate::output::{errln, outln};
use crate::store::{EventFilter, Requeue, RequeueScope, Store, StoreError};

/// Events looked at, or dead letters queued, in one store call: small enough that the serving
/// process's own writes never wait long behind one.
const BATCH: usize = 500;

#[derive(Debug, Args)]
pub(super) struct ReplayArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The sink to deliver to again, as named by [sinks.NAME] in the config file.
    #[arg(long, value_name = "NAME")]
    sink: SinkName,
    /// Only events received since then: an RFC 3339 instant (2024-05-01T12:00:00Z) or a
    /// duration ago (30m, 2h, 7days).
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    since: Option<DateTime<Utc>>,
    /// Only events of this service order.
    #[arg(long, value_name = "ID")]
    order: Option<OrderId>,
    /// Only this event.
    #[arg(long, value_name = "ID")]
    event: Option<EventId>,
    /// Only events sent in this dialect (onap, tmf641-v4, tmf641-v5, mef-legato-v5,
    /// mef-legato-v6), among those the sink's filter takes.
    #[arg(long, value_name = "DIALECT")]
    dialect: Option<Dialect>,
}

#[derive(Debug, Subcommand)]
pub(super) enum DeadLettersCommand {
    /// Deliveries given up after their sink's retry horizon, newest first.
    List(DeadLetterListArgs),
    /// Queue dead letters again (--id ID … or --all); `serve` delivers them.
    Retry(DeadLetterRetryArgs),
}

#[derive(Debug, Args)]
pub(super) struct DeadLetterListArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only dead letters of this sink.
    #[arg(long, value_name = "NAME")]
    sink: Option<SinkName>,
    /// At most this many (1 to 10000).
    #[arg(long, default_value_t = 50, value_parser = super::limit_parser())]
    limit: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(super) struct DeadLetterRetryArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only dead letters of this sink.
    #[arg(long, value_name = "NAME")]
    sink: Option<SinkName>,
    /// A dead letter's id, as `dead-letters list` shows it; repeat, or separate with commas.
    #[arg(long = "id", value_name = "ID", value_delimiter = ',')]
    ids: Vec<i64>,
    /// Every dead letter (of --sink, when given).
    #[arg(long, conflicts_with = "ids")]
    all: bool,
}

/// `--since`: an RFC 3339 instant, or a duration before now.
pub(super) fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    since_at(text, Utc::now())
}

fn since_at(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&Utc));
    }
    humantime::parse_duration(text)
        .ok()
        .and_then(|ago| chrono::Duration::from_std(ago).ok())
        .and_then(|ago| now.checked_sub_signed(ago))
        .ok_or_else(|| {
            format!(
                "{text:?} is neither an RFC 3339 instant (2024-05-01T12:00:00Z) nor a duration \
                 ago (30m, 2h, 7days)"
            )
        })
}

pub(super) fn store_error(error: StoreError) -> anyhow::Error {
    anyhow::anyhow!(crate::telemetry::error_chain(&error))
}

pub(super) async fn open_read_only(config: &Config) -> anyhow::Result<Store> {
    Store::open_read_only(&config.storage)
        .await
        .map_err(store_error)
}

pub(super) async fn open_for_admin(config: &Config) -> anyhow::Result<Store> {
    Store::open_for_admin(&config.storage)
        .await
        .map_err(store_error)
}

/// The configured sink named `name`, or an error that says which sinks are configured.
pub(super) fn configured<'a>(
    config: &'a Config,
    name: &SinkName,
) -> anyhow::Result<&'a SinkConfig> {
    if let Some(sink) = config.sinks.iter().find(|sink| &sink.name == name) {
        return Ok(sink);
    }
    if config.sinks.is_empty() {
        bail!(
            "no sink named {name} is configured, and no sink at all: add a [sinks.{name}] table \
             to the file given with --config"
        );
    }
    let names: Vec<&str> = config.sinks.iter().map(|sink| sink.name.as_str()).collect();
    bail!(
        "no sink named {name} is configured; configured sinks: {}",
        names.join(", ")
    )
}

pub(super) fn progress(length: u64, template: &str) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new(length);
    bar.set_style(
        ProgressStyle::with_template(template)
            .context("the progress bar template")?
            .progress_chars("=> "),
    );
    Ok(bar)
}

pub(super) fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// The sink's disabled mark, if it answered 410 Gone.
pub(super) async fn disabled_mark(store: &Store, name: &str) -> anyhow::Result<Option<String>> {
    Ok(store
        .sink_statuses()
        .await?
        .into_iter()
        .find(|status| status.name.as_str() == name)
        .and_then(|status| status.disabled)
        .map(|(_, reason)| reason))
}

fn warn_if_disabled(config: &Config, name: &str, mark: Option<&str>) {
    if let Some(reason) = mark {
        errln!(
            "note: sink {name} is disabled ({reason}); nothing is delivered to it until \
             `order-listener sinks enable {name}`"
        );
    }
    if config
        .sinks
        .iter()
        .any(|sink| sink.name.as_str() == name && !sink.enabled)
    {
        errln!(
            "note: sink {name} has enabled = false in the configuration; `serve` delivers to it \
             only once it is enabled there"
        );
    }
}

pub(super) async fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let config = args.store.config()?;
    let sink = configured(&config, &args.sink)?;
    let filter = replay_filter(sink, args.dialect)?;
    let store = open_for_admin(&config).await?;
    let result = replay_batches(&store, sink, &filter, &args).await;
    let mark = disabled_mark(&store, sink.name.as_str()).await;
    // Closing joins the writer, so the last batch is committed before the process exits.
    store.close().await;
    let queued = result?;
    outln!(
        "queued {} for sink {} again; `serve` delivers them",
        plural(queued, "delivery", "deliveries"),
        sink.name
    )?;
    warn_if_disabled(&config, sink.name.as_str(), mark?.as_deref());
    Ok(ExitCode::SUCCESS)
}

/// The sink's filter, narrowed to `dialect` when one is asked for; a dialect the sink does not
/// take is a mistake worth saying, not an empty replay.
fn replay_filter(sink: &SinkConfig, dialect: Option<Dialect>) -> anyhow::Result<RouteFilter> {
    let mut filter = sink.filter.clone();
    if let Some(dialect) = dialect {
        if let Some(taken) = &filter.dialects
            && !taken.contains(&dialect)
        {
            let names: Vec<&str> = taken.iter().map(|dialect| dialect.as_str()).collect();
            bail!(
                "sink {} takes only {} events (its `dialects`), so none of dialect {dialect} \
                 can be replayed to it",
                sink.name,
                names.join(", ")
            );
        }
        filter.dialects = Some([dialect].into());
    }
    Ok(filter)
}

/// Requeues a batch of events at a time, continuing after the last one looked at, until a call
/// finds no more; returns how many deliveries were queued.
async fn replay_batches(
    store: &Store,
    sink: &SinkConfig,
    filter: &RouteFilter,
    args: &ReplayArgs,
) -> anyhow::Result<usize> {
    // The newest event now: the bar runs through sequence numbers up to it.
    let newest = store
        .events(EventFilter {
            limit: 1,
            ..EventFilter::default()
        })
        .await?
        .first()
        .map_or(0, |event| event.sequence);
    let bar = progress(
        newest.max(0) as u64,
        "{spinner} replaying [{bar:40}] event #{pos} of #{len}, {msg}",
    )?;
    let mut queued = 0;
    let mut after_sequence = 0;
    loop {
        let requeued = store
            .requeue(Requeue {
                sink: Some(sink.name.clone()),
                scope: RequeueScope::Replay,
                since: args.since,
                order_id: args.order.clone(),
                event_id: args.event.clone(),
                limit: BATCH,
                after_sequence,
                filter: Some(filter.clone()),
                ..Requeue::default()
            })
            .await?;
        if requeued.last_sequence <= after_sequence {
            break;
        }
        after_sequence = requeued.last_sequence;
        queued += requeued.count;
        // Events that arrived since the start are looked at too.
        if after_sequence as u64 > bar.length().unwrap_or(0) {
            bar.set_length(after_sequence as u64);
        }
        bar.set_position(after_sequence as u64);
        bar.set_message(format!("{queued} queued"));
    }
    bar.finish_and_clear();
    Ok(queued)
}

pub(super) async fn list_dead_letters(args: DeadLetterListArgs) -> anyhow::Result<ExitCode> {
    let config = args.store.config()?;
    let store = open_read_only(&config).await?;
    let letters = store
        .dead_letters(args.sink.as_ref(), None, args.limit)
        .await?;
    if args.json {
        print_json(&letters)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = table(&[
        "id",
        "sink",
        "eventId",
        "eventType",
        "order",
        "attempts",
        "queued at",
        "last error",
    ]);
    for letter in &letters {
        out.add_row(vec![
            letter.id.to_string(),
            letter.sink.to_string(),
            letter.event_id.to_string(),
            letter.event_type.to_string(),
            or_dash(letter.order_id.as_ref()),
            letter.attempts.to_string(),
            letter.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            or_dash(letter.last_error.as_ref()),
        ]);
    }
    outln!("{out}")?;
    let more = if letters.len() == args.limit {
        " (there may be more: raise --limit)"
    } else {
        ""
    };
    outln!(
        "{}{more}",
        plural(letters.len(), "dead letter", "dead letters")
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn retry_dead_letters(args: DeadLetterRetryArgs) -> anyhow::Result<ExitCode> {
    if args.ids.is_empty() && !args.all {
        bail!(
            "say which dead letters to retry: --id ID (repeat it, or separate ids with commas; \
             `order-listener dead-letters list` shows them), or --all (with --sink NAME for one \
             sink only)"
        );
    }
    let config = args.store.config()?;
    let store = open_for_admin(&config).await?;
    let sink = args.sink.clone();
    let result = retry_batches(&store, sink.clone(), &args.ids).await;
    let statuses = store.sink_statuses().await;
    store.close().await;
    let queued = result?;
    outln!(
        "queued {} again; `serve` delivers them",
        plural(queued, "dead letter", "dead letters")
    )?;
    for status in statuses? {
        if sink.as_ref().is_none_or(|sink| sink == &status.name) {
            let reason = status.disabled.as_ref().map(|(_, reason)| reason.as_str());
            warn_if_disabled(&config, status.name.as_str(), reason);
        }
    }
    if !args.ids.is_empty() && queued < args.ids.len() {
        let missing = args.ids.len() - queued;
        errln!(
            "{missing} of the {} ids given {}{}",
            args.ids.len(),
            if missing == 1 {
                "is not a dead letter"
            } else {
                "are not dead letters"
            },
            sink.map_or_else(String::new, |sink| format!(" of sink {sink}")),
        );
        if queued == 0 {
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Requeues dead letters a batch at a time until a batch comes back short.
async fn retry_batches(
    store: &Store,
    sink: Option<SinkName>,
    ids: &[i64],
) -> anyhow::Result<usize> {
    let total = if ids.is_empty() {
        store
            .sink_statuses()
            .await?
            .iter()
            .filter(|status| sink.as_ref().is_none_or(|sink| sink == &status.name))
            .map(|status| status.dead)
            .sum()
    } else {
        ids.len() as u64
    };
    let bar = progress(
        total,
        "{spinner} retrying [{bar:40}] {pos}/{len} dead letters",
    )?;
    let mut queued = 0;
    loop {
        let requeued = store
            .requeue(Requeue {
                sink: sink.clone(),
                scope: RequeueScope::DeadLetters,
                ids: ids.to_vec(),
                limit: BATCH,
                ..Requeue::default()
            })
            .await?;
        queued += requeued.count;
        if queued as u64 > bar.length().unwrap_or(0) {
            bar.set_length(queued as u64);
        }
        bar.set_position(queued as u64);
        if requeued.count < BATCH {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(queued)
}

/// One line of `sinks list`: the outbox's counts with what the configuration says.
#[cfg(test)]
mod tests {
    use super::*;

    fn sink(dialects: &[&str]) -> SinkConfig {
        let settings = crate::config::sinks::SinkSettings {
            kind: "http".into(),
            url: Some(crate::secret::Secret::new("http://127.0.0.1:9/")),
            dialects: dialects.iter().map(|name| (*name).to_owned()).collect(),
            ..Default::default()
        };
        crate::config::sinks::check(&[("hook".to_owned(), settings)].into())
            .unwrap()
            .remove(0)
    }

    #[test]
    fn a_replay_by_dialect_narrows_the_sinks_filter_and_refuses_a_dialect_it_does_not_take() {
        let every = sink(&[]);
        assert_eq!(replay_filter(&every, None).unwrap().dialects, None);
        assert_eq!(
            replay_filter(&every, Some(Dialect::MefLegatoV5))
                .unwrap()
                .dialects,
            Some([Dialect::MefLegatoV5].into())
        );
        let tm_forum = sink(&["tmf641-v4", "tmf641-v5"]);
        assert_eq!(
            replay_filter(&tm_forum, Some(Dialect::Tmf641V5))
                .unwrap()
                .dialects,
            Some([Dialect::Tmf641V5].into())
        );
        let refused = replay_filter(&tm_forum, Some(Dialect::Onap)).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "sink hook takes only tmf641-v4, tmf641-v5 events (its `dialects`), so none of \
             dialect onap can be replayed to it"
        );
    }

    #[test]
    fn since_takes_an_instant_or_a_duration_ago() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let cases = [
            ("2024-04-30T08:00:00Z", Some("2024-04-30T08:00:00+00:00")),
            (
                "2024-04-30T10:00:00+02:00",
                Some("2024-04-30T08:00:00+00:00"),
            ),
            ("2h", Some("2024-05-01T10:00:00+00:00")),
            ("1day 30m", Some("2024-04-30T11:30:00+00:00")),
            ("yesterday", None),
            ("", None),
        ];
        for (text, expected) in cases {
            let parsed = since_at(text, now).ok().map(|at| at.to_rfc3339());
            assert_eq!(parsed.as_deref(), expected, "{text:?}");
        }
        assert!(since_at("soon", now).unwrap_err().contains("RFC 3339"));
    }
}
