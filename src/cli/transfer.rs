//! `order-listener export` and `import`: move stored events between stores (SQLite to
//! PostgreSQL and back) as JSON lines, one event a line:
//!
//! `{"sequence":7,"eventId":"…","eventType":"…","dialect":"onap","receivedAt":"2024-05-01T12:00:00.123456Z","sender":"192.0.2.1","client":"seller","body":"<the body as received>"}`
//!
//! The body is kept as the exact text received (a JSON string, not parsed JSON), so that the
//! imported store holds the same bytes and a seller's resend still compares equal. Import parses
//! it as its `dialect`'s listener did, at the path of its `eventType` (TMF641 and MEF have a path
//! per event type); a line without a dialect, written before dialects were recorded, is ONAP's.
//! Import appends through [`Store::append`], as the Listener API does: resends are duplicates, other
//! payloads under a stored eventId are conflicts, projections are computed by the target. The
//! source's sequence numbers are not kept: the target numbers events in the order it stores
//! them. Imported events queue no deliveries: the history was handed on by the source already.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use clap::Args;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};

use super::StoreArgs;
use super::outbox::{parse_since, plural, progress, store_error};
use crate::domain::envelope::{
    Dialect, EventType, Family, ParseOptions, Source, parse, reconciled,
};
use crate::output::{OutputError, errln, outln};
use crate::store::{Appended, EventFilter, NewEvent, Store, StoreError};

/// Events read from the store in one call.
const PAGE: usize = 500;

/// Appends in flight at once while importing, so that SQLite's writer commits them in groups.
const IN_FLIGHT: usize = 64;

#[derive(Debug, Args)]
pub(super) struct ExportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only events received at or after then: an RFC 3339 instant (2024-05-01T12:00:00Z) or a
    /// duration ago (30m, 2h, 7days).
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    since: Option<DateTime<Utc>>,
    /// Only events received before then (same forms as --since).
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    until: Option<DateTime<Utc>>,
}

#[derive(Debug, Args)]
pub(super) struct ImportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The file `order-listener export` wrote, or - for standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportedEvent {
    /// The event's place in the source; informative only, import does not keep it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sequence: Option<i64>,
    /// The eventId, for people reading the file; import takes it from the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_id: Option<String>,
    /// The event's type as stored: in a dialect with a path per event type, the path's, which
    /// the parser needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_type: Option<EventType>,
    /// How the seller sent it; ONAP when absent (exports written before dialects were stored).
    #[serde(default)]
    dialect: Dialect,
    /// Who wrote it: `reconciled` for an event the listener synthesized; a seller when absent.
    #[serde(default, skip_serializing_if = "is_sellers")]
    source: Source,
    received_at: DateTime<Utc>,
    sender: Option<String>,
    client: Option<String>,
    /// The body exactly as received.
    body: String,
}

pub(super) async fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let config = args.store.config()?;
    let store = Store::open_read_only(&config.storage)
        .await
        .map_err(store_error)?;
    let newest = store
        .events(EventFilter {
            limit: 1,
            ..EventFilter::default()
        })
        .await
        .map_err(store_error)?
        .first()
        .map_or(0, |event| event.sequence);
    let bar = progress(
        newest.max(0) as u64,
        "{spinner} exporting [{bar:40}] event #{pos} of #{len}, {msg}",
    )?;
    let mut out = tokio::io::BufWriter::new(tokio::io::stdout());
    let mut after = 0;
    let mut exported = 0usize;
    loop {
        let page = store.events_after(after, PAGE).await.map_err(store_error)?;
        let Some((last, _)) = page.last() else { break };
        after = last.sequence;
        for (record, body) in page {
            let wanted = args.since.is_none_or(|since| record.received_at >= since)
                && args.until.is_none_or(|until| record.received_at < until);
            if !wanted {
                continue;
            }
            let body = String::from_utf8(body.to_vec()).with_context(|| {
                format!(
                    "the body of event {} (sequence {}) is not UTF-8, so it cannot be exported as JSON text",
                    record.event_id, record.sequence
                )
            })?;
            let line = ExportedEvent {
                sequence: Some(record.sequence),
                event_id: Some(record.event_id.to_string()),
                event_type: Some(record.event_type),
                source: record.source,
                dialect: record.dialect,
                received_at: record.received_at,
                sender: record.sender,
                client: record.client,
                body,
            };
            let mut text = serde_json::to_vec(&line)?;
            text.push(b'\n');
            out.write_all(&text)
                .await
                .map_err(|error| incomplete(error, exported))?;
            exported += 1;
        }
        if after as u64 > bar.length().unwrap_or(0) {
            bar.set_length(after as u64);
        }
        bar.set_position(after as u64);
        bar.set_message(format!("{exported} exported"));
    }
    out.flush()
        .await
        .map_err(|error| incomplete(error, exported))?;
    bar.finish_and_clear();
    errln!("exported {}", plural(exported, "event", "events"));
    Ok(ExitCode::SUCCESS)
}

/// A write of the export that failed. Unlike a list cut short by `| head`, an export whose
/// reader went away is incomplete, and a backup made of it would lack events: a closed pipe is
/// an error here, with how many lines were written, not a quiet success.
fn incomplete(error: std::io::Error, exported: usize) -> anyhow::Error {
    match OutputError::from(error) {
        OutputError::Closed => anyhow::anyhow!(
            "standard output was closed after {} (at most; some may not have been flushed): \
             the export is incomplete",
            plural(exported, "event", "events")
        ),
        failed => anyhow::Error::new(failed),
    }
}

/// What became of the lines of an import.
#[derive(Debug, Default)]
struct Tally {
    stored: usize,
    duplicates: usize,
    conflicts: usize,
    errors: usize,
}

fn is_sellers(source: &Source) -> bool {
    *source == Source::Seller
}

/// One line turned into an event, or why it cannot be.
fn parse_line(line: &[u8]) -> Result<NewEvent, String> {
    let exported: ExportedEvent = serde_json::from_slice(line)
        .map_err(|error| format!("not a line of `order-listener export`: {error}"))?;
    // Every type the listener can store is admitted, and read as the source read it: the
    // source accepted it once, perhaps under a release whose checks were looser.
    let options = ParseOptions {
        accept_service_inventory: true,
        as_stored: true,
    };
    let dialect = exported.dialect;
    if dialect.family() != Family::Onap && exported.event_type.is_none() {
        return Err(format!(
            "a {dialect} event needs its eventType (its listener path's), which `order-listener \
             export` writes; add it to the line"
        ));
    }
    let body = Bytes::from(exported.body);
    let notification = match exported.source {
        Source::Seller => parse(dialect, exported.event_type, body, options).map_err(|error| {
            format!("the body is not a notification of the {dialect} dialect: {error}")
        })?,
        Source::Reconciled => reconciled::parse(dialect, body)
            .map_err(|error| format!("the body is not a synthesized event: {error}"))?,
    };
    if let Some(event_type) = exported.event_type
        && event_type != notification.event_type
    {
        return Err(format!(
            "eventType {event_type} does not match the body's {}",
            notification.event_type
        ));
    }
    if let Some(event_id) = exported.event_id
        && event_id != notification.event_id.as_str()
    {
        return Err(format!(
            "eventId {event_id:?} does not match the body's {:?}",
            notification.event_id.as_str()
        ));
    }
    Ok(NewEvent {
        notification,
        received_at: exported.received_at,
        sender: exported.sender,
        client: exported.client,
        trace_context: None,
    })
}

pub(super) async fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let config = args.store.config()?;
    let (input, length): (Box<dyn AsyncRead + Unpin + Send>, Option<u64>) =
        if args.file.as_os_str() == "-" {
            (Box::new(tokio::io::stdin()), None)
        } else {
            let file = tokio::fs::File::open(&args.file)
                .await
                .with_context(|| format!("cannot open {}", args.file.display()))?;
            let length = file.metadata().await.ok().map(|metadata| metadata.len());
            (Box::new(file), length)
        };
    // Creates the target when it does not exist yet; with no routes, nothing is queued for
    // sinks.
    let store = Store::open(&config.storage, config.writer)
        .await
        .map_err(store_error)?;
    let result = import_lines(&store, BufReader::new(input), length).await;
    // Closing joins the writer, so the last appends are committed before the process exits.
    store.close().await;
    let tally = result?;
    outln!(
        "imported {}: {} stored, {}, {}, {}",
        if args.file.as_os_str() == "-" {
            "standard input".to_owned()
        } else {
            args.file.display().to_string()
        },
        tally.stored,
        plural(tally.duplicates, "duplicate", "duplicates"),
        plural(tally.conflicts, "conflict", "conflicts"),
        plural(tally.errors, "error", "errors"),
    )?;
    Ok(if tally.errors > 0 || tally.conflicts > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn import_lines(
    store: &Store,
    mut input: BufReader<Box<dyn AsyncRead + Unpin + Send>>,
    length: Option<u64>,
) -> anyhow::Result<Tally> {
    let bar = match length {
        Some(length) => progress(
            length,
            "{spinner} importing [{bar:40}] {bytes}/{total_bytes}, {msg}",
        )?,
        None => progress(0, "{spinner} importing {bytes}, {msg}")?,
    };
    let mut tally = Tally::default();
    let mut in_flight = FuturesOrdered::new();
    let mut line = Vec::new();
    let mut number = 0usize;
    let mut read = 0u64;
    loop {
        line.clear();
        let size = input
            .read_until(b'\n', &mut line)
            .await
            .context("cannot read the input")?;
        if size == 0 {
            break;
        }
        number += 1;
        read += size as u64;
        bar.set_position(read);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_line(&line) {
            Ok(event) => {
                let store = store.clone();
                in_flight.push_back(async move { (number, store.append(event).await) });
            }
            Err(why) => {
                tally.errors += 1;
                bar.suspend(|| errln!("line {number}: {why}"));
            }
        }
        if in_flight.len() >= IN_FLIGHT
            && let Some((number, outcome)) = in_flight.next().await
        {
            count(&mut tally, &bar, number, outcome)?;
            bar.set_message(progress_message(&tally));
        }
    }
    while let Some((number, outcome)) = in_flight.next().await {
        count(&mut tally, &bar, number, outcome)?;
    }
    bar.finish_and_clear();
    Ok(tally)
}

fn progress_message(tally: &Tally) -> String {
    format!(
        "{} stored, {} duplicates, {} conflicts, {} errors",
        tally.stored, tally.duplicates, tally.conflicts, tally.errors
    )
}

/// Counts one append; a store failure other than a conflict stops the import.
fn count(
    tally: &mut Tally,
    bar: &indicatif::ProgressBar,
    number: usize,
    outcome: Result<Appended, StoreError>,
) -> anyhow::Result<()> {
    match outcome {
        Ok(Appended::Stored { .. }) => tally.stored += 1,
        Ok(Appended::Duplicate { .. }) => tally.duplicates += 1,
        Err(StoreError::Conflict { event_id }) => {
            tally.conflicts += 1;
            bar.suspend(|| {
                errln!(
                    "line {number}: event {event_id} is already stored with a different payload; the stored one is kept"
                );
            });
        }
        Err(error) => {
            bar.abandon();
            return Err(store_error(error)).with_context(|| {
                format!(
                    "line {number}: the store failed; stopped here (lines before it were stored; \
                     importing the file again skips them as duplicates)"
                )
            });
        }
    }
    Ok(())
}
