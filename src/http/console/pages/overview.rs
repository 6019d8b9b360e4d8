//! The overview: events received per minute by type (an SVG chart, with the numbers in a
//! table), the commit p99, stuck and anomalous orders, the outbox, and the Listener API's
//! answers and refusals since start, from `Metrics::snapshot`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use chrono::{DateTime, TimeDelta, Utc};

use super::{PageResult, Reader, failed, ok, reader, stuck_before};
use crate::domain::envelope::{EventType, Role};
use crate::http::AppState;
use crate::http::console::html::Nav;
use crate::http::outbox::{self, SinkOverview};
use crate::metrics::Snapshot;
use crate::store::{MinuteCount, OrderFilter};

/// Minutes in the chart.
const CHART_MINUTES: i64 = 30;
/// Orders counted at most in a tile.
const TILE_LIMIT: usize = 1000;

/// `GET /console/`.
pub(super) async fn show(
    State(app): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
) -> PageResult {
    let reader = reader(&app, &headers, &uri).await?;
    let now = Utc::now();
    let counts = app
        .store
        .events_per_minute(now - TimeDelta::minutes(CHART_MINUTES))
        .await
        .map_err(failed)?;
    let metrics = app.metrics.snapshot();
    let sinks = outbox::sink_overview(&app).await.map_err(failed)?;
    let store = &app.store;
    let count_orders = |search: OrderFilter| async move {
        store
            .orders(OrderFilter {
                limit: TILE_LIMIT,
                ..search
            })
            .await
            .map(|orders| orders.len())
            .map_err(failed)
    };
    let stuck = count_orders(OrderFilter {
        unchanged_before: Some(stuck_before(now, app.console.stuck_after)),
        ..OrderFilter::default()
    })
    .await?;
    let anomalous = count_orders(OrderFilter {
        with_anomalies: true,
        ..OrderFilter::default()
    })
    .await?;
    Ok(ok(render_overview(
        &reader,
        &OverviewView {
            now,
            counts: &counts,
            metrics: &metrics,
            sinks: &sinks,
            stuck,
            anomalous,
        },
    )))
}

/// What the overview shows.
#[derive(Debug)]
pub(super) struct OverviewView<'a> {
    /// When the page is read: the chart ends at this minute.
    pub now: DateTime<Utc>,
    /// Events per minute and type, over the chart's minutes.
    pub counts: &'a [MinuteCount],
    /// The Listener API's answers, refusals and commits since start.
    pub metrics: &'a Snapshot,
    /// Every sink's outbox.
    pub sinks: &'a [SinkOverview],
    /// Stuck orders, counted up to [`TILE_LIMIT`].
    pub stuck: usize,
    /// Orders with an anomaly, counted up to [`TILE_LIMIT`].
    pub anomalous: usize,
}

/// The commit p99 as its histogram bucket's upper bound.
fn commit_p99(seconds: Option<f64>) -> String {
    match seconds {
        None => "no commit yet".to_owned(),
        Some(seconds) if seconds.is_infinite() => "over 4 s".to_owned(),
        Some(seconds) if seconds < 1.0 => format!("≤ {:.2} ms", seconds * 1000.0),
        Some(seconds) => format!("≤ {seconds:.2} s"),
    }
}

/// A count that stopped at [`TILE_LIMIT`].
fn at_most(count: usize) -> String {
    if count >= TILE_LIMIT {
        format!("{TILE_LIMIT} or more")
    } else {
        count.to_string()
    }
}

/// A table of counts by code or status, with "None since start." when empty, and the rows that
/// `marks` names standing out.
fn counts_table(
    id: &str,
    caption: &str,
    heading: &str,
    counts: &BTreeMap<u16, u64>,
    marks: Marks,
) -> String {
    let mut table = format!(
        r#"<table id="{id}"><caption class="visually-hidden">{caption}</caption><thead><tr><th scope="col">{heading}</th><th scope="col">Count</th></tr></thead><tbody>"#
    );
    for (key, count) in counts {
        let class = match marks {
            Marks::ErrorStatuses if *key >= 400 => r#" class="anomaly""#,
            Marks::ErrorStatuses | Marks::None => "",
        };
        let _ = write!(table, "<tr{class}><td>{key}</td><td>{count}</td></tr>");
    }
    if counts.is_empty() {
        table.push_str(r#"<tr><td colspan="2">None since start.</td></tr>"#);
    }
    table.push_str("</tbody></table>");
    table
}

/// Which rows of a counts table stand out.
#[derive(Debug, Clone, Copy)]
enum Marks {
    /// None: every code in the table is a refusal.
    None,
    /// HTTP statuses from 400 on.
    ErrorStatuses,
}

/// The overview page.
pub(super) fn render_overview(reader: &Reader, view: &OverviewView<'_>) -> String {
    let pending: u64 = view.sinks.iter().map(|sink| sink.status.pending).sum();
    let dead: u64 = view.sinks.iter().map(|sink| sink.status.dead).sum();
    let content = format!(
        r#"<section id="overview-live" data-live aria-label="Overview">
<ul class="tiles">
<li><span class="tile-label">p99 commit latency</span> <span class="tile-value" id="commit-p99">{p99}</span> <span class="muted">over {commits} commits since start</span></li>
<li><span class="tile-label">Stuck orders</span> <a class="tile-value" href="/console/orders?stuck=1">{stuck}</a></li>
<li><span class="tile-label">Orders with anomalies</span> <a class="tile-value" href="/console/orders?anomalies=1">{anomalous}</a></li>
<li><span class="tile-label">Outbox</span> <a class="tile-value" href="/console/sinks">{pending} pending, {dead} dead</a></li>
</ul>
<h2>Events received per minute</h2>
{chart}
<div class="columns"><div><h2>Refusals by error code</h2>{refusals}</div><div><h2>Listener API answers by status</h2>{answers}</div></div></section>"#,
        p99 = commit_p99(view.metrics.commit_p99_seconds),
        commits = view.metrics.commits,
        stuck = at_most(view.stuck),
        anomalous = at_most(view.anomalous),
        chart = chart(view.now, view.counts),
        refusals = counts_table(
            "refusals",
            "Callers refused, by error code",
            "Code",
            &view.metrics.refusals_by_code,
            Marks::None,
        ),
        answers = counts_table(
            "answers",
            "Listener API answers by HTTP status",
            "Status",
            &view.metrics.answers_by_status,
            Marks::ErrorStatuses,
        ),
    );
    reader.stream_page("Overview", Nav::Overview, &content)
}

/// The chart's colour and short name for each event type: one colour per role, whatever the
/// dialect, so that creations are blue whoever sent them.
fn type_style(event_type: EventType) -> (&'static str, &'static str) {
    match event_type {
        EventType::ServiceCreation => ("#7c3aed", "service created"),
        EventType::ServiceAttributeValueChange => ("#be185d", "service changed"),
        EventType::ServiceRemove => ("#374151", "service removed"),
        other => match other.role() {
            Role::Creation => ("#1d4ed8", "creation"),
            Role::StateChange => ("#047857", "order state"),
            Role::ItemStateChange => ("#b45309", "item state"),
            Role::Other | Role::NotAnOrder => ("#0e7490", "other order event"),
        },
    }
}

/// Events per minute by type as stacked bars, with a legend and the numbers in a table.
fn chart(now: DateTime<Utc>, counts: &[MinuteCount]) -> String {
    let first_minute = now.timestamp() / 60 - (CHART_MINUTES - 1);
    let mut per_minute: BTreeMap<i64, BTreeMap<EventType, u64>> = BTreeMap::new();
    let mut types = BTreeSet::new();
    for count in counts {
        let minute = count.minute.timestamp() / 60;
        if minute >= first_minute {
            *per_minute
                .entry(minute)
                .or_default()
                .entry(count.event_type)
                .or_default() += count.count;
            types.insert(count.event_type);
        }
    }
    let highest = per_minute
        .values()
        .map(|by_type| by_type.values().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let (width, height, left, bottom) = (640.0_f64, 180.0_f64, 40.0_f64, 20.0_f64);
    let bar = (width - left) / CHART_MINUTES as f64;
    let plot = height - bottom - 10.0;
    let mut svg = format!(
        r##"<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">
<title id="chart-title">Events received per minute, by type</title>
<desc id="chart-desc">The last {CHART_MINUTES} minutes; at most {highest} events in one minute. The numbers are in the table below.</desc>
<line x1="{left}" y1="{base}" x2="{width}" y2="{base}" stroke="#374151"/>
<text x="{label_x}" y="14" font-size="11" text-anchor="end" fill="#1f2937">{highest}</text>
<text x="{label_x}" y="{base}" font-size="11" text-anchor="end" fill="#1f2937">0</text>
"##,
        base = height - bottom,
        label_x = left - 4.0,
    );
    for slot in 0..CHART_MINUTES {
        let minute = first_minute + slot;
        let x = left + slot as f64 * bar;
        let mut y = height - bottom;
        if let Some(by_type) = per_minute.get(&minute) {
            for (event_type, count) in by_type {
                let bar_height = plot * (*count as f64) / (highest as f64);
                y -= bar_height;
                let (colour, name) = type_style(*event_type);
                let _ = write!(
                    svg,
                    r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{bar_height:.1}" fill="{colour}"><title>{name}: {count}</title></rect>"#,
                    w = bar - 2.0,
                );
            }
        }
        if slot % 5 == 0 || slot == CHART_MINUTES - 1 {
            let label = DateTime::from_timestamp(minute * 60, 0)
                .map(|at| at.format("%H:%M").to_string())
                .unwrap_or_default();
            let (x, anchor) = if slot == CHART_MINUTES - 1 {
                (width - 2.0, "end")
            } else {
                (x, "start")
            };
            let _ = write!(
                svg,
                r##"<text x="{x:.1}" y="{y}" font-size="11" text-anchor="{anchor}" fill="#1f2937">{label}</text>"##,
                y = height - 4.0
            );
        }
    }
    svg.push_str("</svg>");
    let mut legend = String::from(r#"<ul class="legend">"#);
    for event_type in &types {
        let (colour, name) = type_style(*event_type);
        let _ = write!(
            legend,
            r#"<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" fill="{colour}"/></svg> {name} <span class="muted">({})</span></li>"#,
            event_type.as_str()
        );
    }
    if types.is_empty() {
        legend.push_str("<li>No events in the last 30 minutes.</li>");
    }
    legend.push_str("</ul>");
    let mut table = String::from(
        r#"<details><summary>The numbers</summary><table><caption class="visually-hidden">Events per minute by type</caption><thead><tr><th scope="col">Minute (UTC)</th><th scope="col">Type</th><th scope="col">Events</th></tr></thead><tbody>"#,
    );
    for (minute, by_type) in &per_minute {
        for (event_type, count) in by_type {
            let _ = write!(
                table,
                "<tr><td>{}</td><td>{}</td><td>{count}</td></tr>",
                DateTime::from_timestamp(minute * 60, 0)
                    .map(|at| at.format("%H:%M").to_string())
                    .unwrap_or_default(),
                event_type.as_str()
            );
        }
    }
    table.push_str("</tbody></table></details>");
    format!("{svg}{legend}{table}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::outbox::SinkOverview;
    use crate::store::SinkStatus;

    fn sink(name: &str, pending: u64, dead: u64) -> SinkOverview {
        SinkOverview {
            status: SinkStatus {
                name: name.parse().unwrap(),
                pending,
                delivered: 0,
                dead,
                failing: 0,
                oldest_pending_at: None,
                disabled: None,
            },
            configured: true,
        }
    }

    fn render(
        metrics: &Snapshot,
        counts: &[MinuteCount],
        sinks: &[SinkOverview],
        stuck: usize,
    ) -> String {
        render_overview(
            &Reader::at(7),
            &OverviewView {
                now: Utc::now(),
                counts,
                metrics,
                sinks,
                stuck,
                anomalous: 2,
            },
        )
    }

    #[test]
    fn a_fresh_start_shows_empty_states() {
        let page = render(&Snapshot::default(), &[], &[], 0);
        assert!(page.contains(r#"<span class="tile-value" id="commit-p99">no commit yet</span>"#));
        assert!(page.contains("No events in the last 30 minutes."));
        assert_eq!(page.matches("None since start.").count(), 2);
        assert!(page.contains(">0 pending, 0 dead</a>"));
        assert!(page.contains(r#"name="csrf" value="csrf-token""#));
    }

    #[test]
    fn tiles_sum_the_outboxes_and_cap_the_order_counts() {
        let page = render(
            &Snapshot::default(),
            &[],
            &[sink("a", 3, 1), sink("b", 4, 0)],
            TILE_LIMIT,
        );
        assert!(page.contains(">7 pending, 1 dead</a>"));
        assert!(page.contains(r#"href="/console/orders?stuck=1">1000 or more</a>"#));
        assert!(page.contains(r#"href="/console/orders?anomalies=1">2</a>"#));
    }

    #[test]
    fn answers_by_status_mark_errors_and_refusals_list_their_codes() {
        let metrics = Snapshot {
            answers_by_status: BTreeMap::from([(201, 5), (429, 2)]),
            refusals_by_code: BTreeMap::from([(41, 2)]),
            commits: 9,
            commit_p99_seconds: Some(0.0025),
        };
        let page = render(&metrics, &[], &[], 0);
        assert!(page.contains("<tr><td>201</td><td>5</td></tr>"));
        assert!(page.contains(r#"<tr class="anomaly"><td>429</td><td>2</td></tr>"#));
        assert!(page.contains("<tr><td>41</td><td>2</td></tr>"));
        assert!(page.contains("≤ 2.50 ms"));
        assert!(page.contains("over 9 commits since start"));
    }

    #[test]
    fn the_commit_p99_reads_in_the_unit_that_fits() {
        assert_eq!(commit_p99(Some(f64::INFINITY)), "over 4 s");
        assert_eq!(commit_p99(Some(1.5)), "≤ 1.50 s");
    }

    #[test]
    fn the_chart_stacks_this_minutes_events_by_type_and_drops_older_ones() {
        let now = Utc::now();
        let count = |minutes_ago: i64, event_type, count| MinuteCount {
            minute: now - TimeDelta::minutes(minutes_ago),
            event_type,
            count,
        };
        let svg = chart(
            now,
            &[
                count(0, EventType::ServiceOrderCreation, 3),
                count(0, EventType::ServiceOrderStateChange, 1),
                count(90, EventType::ServiceRemove, 50),
            ],
        );
        assert!(svg.contains("<title>creation: 3</title>"));
        assert!(svg.contains("<title>order state: 1</title>"));
        assert!(svg.contains("at most 4 events in one minute"));
        assert!(!svg.contains("service removed"), "older than the chart");
        assert!(!svg.contains("No events in the last 30 minutes."));
    }
}
