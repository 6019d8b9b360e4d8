//! Helpers of `bench/run.sh` and `bench/wrk.sh`: fill a store with events through the real
//! write path, measure the cost of an append as one order grows, measure order-query latency on
//! the admin API, and turn a results directory into tables and a plot.
//!
//! Usage:
//!   bench_tool prefill --data-dir DIR --events N [--from N]
//!   bench_tool order-cost --data-dir DIR [--database-url URL] [--sizes 1000,10000,100000]
//!   bench_tool query --admin URL --token T --data-dir DIR [--samples N]
//!   bench_tool report --results DIR --plot FILE.svg

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use order_listener::domain::envelope::{ParseOptions, parse_notification};
use order_listener::secret::Secret;
use order_listener::simulate::load::Bodies;
use order_listener::store::{NewEvent, OrderFilter, Storage, Store, WriterOptions};
use plotters::prelude::*;
use serde_json::{Value, json};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Append events to the store at DIR, as the listener would, with a progress bar.
    Prefill {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        events: u64,
        /// The number of the first body, so that a second fill continues the first.
        #[arg(long, default_value_t = 0)]
        from: u64,
    },
    /// Append events all to one new order and print, as a markdown table, the mean cost of an
    /// append over a window of appends taken when the order holds each of `sizes` events.
    OrderCost {
        #[arg(long)]
        data_dir: PathBuf,
        /// A PostgreSQL URL; without it, the SQLite store in DATA_DIR.
        #[arg(long)]
        database_url: Option<String>,
        /// The order's sizes at which a window starts, ascending.
        #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
        sizes: Vec<u64>,
        /// Appends measured per window.
        #[arg(long, default_value_t = 2000)]
        window: u64,
        /// Appends in flight.
        #[arg(long, default_value_t = 64)]
        in_flight: usize,
    },
    /// Append EVENTS events to one new order in date order, then as many to another new order
    /// newest first, and print the time of each as a markdown table.
    Arrival {
        #[arg(long)]
        data_dir: PathBuf,
        /// A PostgreSQL URL; without it, the SQLite store in DATA_DIR.
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, default_value_t = 10_000)]
        events: u64,
        /// Appends in flight.
        #[arg(long, default_value_t = 64)]
        in_flight: usize,
    },
    /// Measure GET /api/v1/service-orders/{id} latency, one query at a time.
    Query {
        #[arg(long)]
        admin: String,
        #[arg(long)]
        token: String,
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 2000)]
        samples: usize,
    },
    /// Print the markdown tables of a results directory and draw the plot.
    Report {
        #[arg(long)]
        results: PathBuf,
        #[arg(long)]
        plot: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Prefill {
            data_dir,
            events,
            from,
        } => prefill(&data_dir, events, from).await,
        Command::OrderCost {
            data_dir,
            database_url,
            sizes,
            window,
            in_flight,
        } => {
            let storage = storage_of(&data_dir, database_url)?;
            order_cost(&storage, &sizes, window, in_flight).await
        }
        Command::Arrival {
            data_dir,
            database_url,
            events,
            in_flight,
        } => arrival(&storage_of(&data_dir, database_url)?, events, in_flight).await,
        Command::Query {
            admin,
            token,
            data_dir,
            samples,
        } => query(&admin, &token, &data_dir, samples).await,
        Command::Report { results, plot } => report(&results, &plot),
    }
}

async fn prefill(data_dir: &Path, events: u64, from: u64) -> anyhow::Result<()> {
    let storage = Storage::Sqlite {
        path: data_dir.join("events.sqlite3"),
    };
    let store = Store::open(&storage, WriterOptions::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let bodies = Arc::new(Bodies::new(1, "prefill"));
    let next = Arc::new(AtomicU64::new(from));
    let end = from + events;
    let bar = indicatif::ProgressBar::new(events);
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
    )?);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..512 {
        let (store, bodies, next, bar) = (store.clone(), bodies.clone(), next.clone(), bar.clone());
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= end {
                    return Ok::<(), anyhow::Error>(());
                }
                let notification =
                    parse_notification(bodies.body(n).into(), ParseOptions::default())?;
                store
                    .append(NewEvent {
                        notification,
                        received_at: chrono::Utc::now(),
                        sender: None,
                        client: None,
                        trace_context: None,
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                bar.inc(1);
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    bar.finish();
    store.close().await;
    Ok(())
}

/// Appends to one order until the last window ends, with `in_flight` appends always waiting,
/// and prints a row as each window ends (so a run cut short by a timeout keeps its rows).
fn storage_of(data_dir: &Path, database_url: Option<String>) -> anyhow::Result<Storage> {
    Ok(match database_url {
        Some(url) => Storage::Postgres {
            url: Secret::new(url),
        },
        None => {
            std::fs::create_dir_all(data_dir)?;
            Storage::Sqlite {
                path: data_dir.join("events.sqlite3"),
            }
        }
    })
}

/// Appends body `number` of the pool, moved onto `order_id` and dated `date`.
async fn append_to_order(
    store: &Store,
    bodies: &Bodies,
    number: u64,
    order_id: &str,
    date: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let mut body: Value = serde_json::from_str(&bodies.body(number))?;
    body["eventDate"] = json!(date.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
    body["event"]["id"] = json!(order_id);
    body["event"]["href"] = json!(format!("serviceOrder/{order_id}"));
    let notification = parse_notification(body.to_string().into(), ParseOptions::default())?;
    store
        .append(NewEvent {
            notification,
            received_at: chrono::Utc::now(),
            sender: None,
            client: None,
            trace_context: None,
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(())
}

/// Appends `events` events to one new order, in date order or newest first, `in_flight` at a
/// time; returns how long that took.
async fn append_one_order(
    store: &Store,
    bodies: &Arc<Bodies>,
    order_id: &str,
    events: u64,
    newest_first: bool,
    in_flight: usize,
) -> anyhow::Result<std::time::Duration> {
    let first_date = chrono::Utc::now();
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight.max(1) {
        let (store, bodies, next, order_id) = (
            store.clone(),
            bodies.clone(),
            next.clone(),
            order_id.to_owned(),
        );
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= events {
                    return Ok::<(), anyhow::Error>(());
                }
                let offset = if newest_first { events - n } else { n };
                // The second order's bodies follow the first's, so that eventIds differ.
                let number = n + if newest_first { events } else { 0 };
                let date = first_date + chrono::Duration::milliseconds(offset as i64);
                append_to_order(&store, &bodies, number, &order_id, date).await?;
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    Ok(started.elapsed())
}

async fn arrival(storage: &Storage, events: u64, in_flight: usize) -> anyhow::Result<()> {
    let store = Store::open(storage, WriterOptions::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let run_id = format!("arrival-{:08x}", rand::random::<u32>());
    let bodies = Arc::new(Bodies::new(1, &run_id));
    println!("| arrival | events | seconds | µs per append | vs in order |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let mut in_order = None;
    for (name, newest_first) in [("in date order", false), ("newest first", true)] {
        let order_id = format!("{run_id}-{}", if newest_first { "back" } else { "fwd" });
        let took =
            append_one_order(&store, &bodies, &order_id, events, newest_first, in_flight).await?;
        let base = *in_order.get_or_insert(took);
        println!(
            "| {name} | {events} | {:.2} | {:.1} | {:.2}× |",
            took.as_secs_f64(),
            took.as_secs_f64() * 1e6 / events as f64,
            took.as_secs_f64() / base.as_secs_f64()
        );
    }
    store.close().await;
    Ok(())
}

async fn order_cost(
    storage: &Storage,
    sizes: &[u64],
    window: u64,
    in_flight: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!(!sizes.is_empty() && window > 0, "no window to measure");
    anyhow::ensure!(
        sizes.windows(2).all(|pair| pair[0] + window <= pair[1]),
        "--sizes must ascend by at least --window ({window}) so that windows do not overlap"
    );
    let store = Store::open(storage, WriterOptions::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let run_id = format!("order-cost-{:08x}", rand::random::<u32>());
    let bodies = Arc::new(Bodies::new(1, &run_id));
    let order_id = format!("{run_id}-order");
    let first_date = chrono::Utc::now();
    let end = sizes.last().copied().unwrap_or(0) + window;
    // When the appends numbered by these counts completed.
    let boundaries: Vec<u64> = sizes.iter().flat_map(|&s| [s, s + window]).collect();
    let marks = Arc::new(Mutex::new(BTreeMap::<u64, Instant>::new()));
    let (completed_tx, mut completed_rx) = tokio::sync::watch::channel(0u64);
    let completed_tx = Arc::new(completed_tx);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight.max(1) {
        let (store, bodies, next, marks, completed_tx) = (
            store.clone(),
            bodies.clone(),
            next.clone(),
            marks.clone(),
            completed_tx.clone(),
        );
        let (order_id, boundaries) = (order_id.clone(), boundaries.clone());
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= end {
                    return Ok::<(), anyhow::Error>(());
                }
                // A body of the pool, moved onto the one order, with a date after the last.
                let date = first_date + chrono::Duration::milliseconds(n as i64);
                append_to_order(&store, &bodies, n, &order_id, date).await?;
                completed_tx.send_modify(|completed| {
                    *completed += 1;
                    if boundaries.contains(completed)
                        && let Ok(mut marks) = marks.lock()
                    {
                        marks.insert(*completed, Instant::now());
                    }
                });
            }
        });
    }
    println!(
        "| events on the order | appends measured | µs per append | appends/s | vs first row |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    let mut first_cost = None;
    for &size in sizes {
        // Tasks end once every append is issued; one that fails ends the run.
        loop {
            tokio::select! {
                reached = completed_rx.wait_for(|&completed| completed >= size + window) => {
                    anyhow::ensure!(reached.is_ok(), "the appends stopped before {} events", size + window);
                    break;
                }
                Some(joined) = tasks.join_next() => joined??,
            }
        }
        let span = {
            let marks = marks
                .lock()
                .map_err(|_| anyhow::anyhow!("a task panicked"))?;
            match (marks.get(&size), marks.get(&(size + window))) {
                (Some(start), Some(stop)) => stop.duration_since(*start),
                _ => anyhow::bail!("a window's marks are missing"),
            }
        };
        let micros = span.as_secs_f64() * 1e6 / window as f64;
        let first = *first_cost.get_or_insert(micros);
        println!(
            "| {size}–{} | {window} | {micros:.1} | {:.0} | {:.2}× |",
            size + window,
            1e6 / micros,
            micros / first
        );
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    store.close().await;
    Ok(())
}

async fn query(admin: &str, token: &str, data_dir: &Path, samples: usize) -> anyhow::Result<()> {
    let storage = Storage::Sqlite {
        path: data_dir.join("events.sqlite3"),
    };
    let store = Store::open_read_only(&storage)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let orders = store
        .orders(OrderFilter {
            limit: samples,
            ..OrderFilter::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    anyhow::ensure!(!orders.is_empty(), "the store has no order to query");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for order in orders.iter().cycle().take(samples) {
        let started = Instant::now();
        let response = http
            .get(format!("{admin}/api/v1/service-orders/{}", order.id))
            .bearer_auth(token)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "query answered {}",
            response.status()
        );
        let _ = response.bytes().await?;
        latencies.record(started.elapsed().as_micros().max(1) as u64)?;
    }
    let ms = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{}",
        json!({"samples": samples, "p50": ms(0.5), "p99": ms(0.99), "p999": ms(0.999), "max": latencies.max() as f64 / 1000.0})
    );
    Ok(())
}

/// One target's runs, by offered rate.
struct Target {
    name: String,
    runs: BTreeMap<u64, Value>,
    peak_rss_kib: Option<u64>,
    query: Option<Value>,
}

fn load_targets(results: &Path) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(results)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .context("a target directory name")?
            .to_owned();
        let mut runs = BTreeMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let file = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            if let Some(rate) = file
                .strip_prefix("rate-")
                .and_then(|r| r.strip_suffix(".json"))
            {
                let report: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
                runs.insert(rate.parse()?, report);
            }
        }
        let peak_rss_kib = std::fs::read_to_string(dir.join("rss.txt"))
            .ok()
            .and_then(|text| text.split_whitespace().find_map(|word| word.parse().ok()));
        let query = std::fs::read_to_string(dir.join("query.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        targets.push(Target {
            name,
            runs,
            peak_rss_kib,
            query,
        });
    }
    Ok(targets)
}

fn passing(report: &Value) -> bool {
    let sent = report["sent"].as_f64().unwrap_or(0.0);
    let created = report["created"].as_f64().unwrap_or(0.0);
    report["latency_ms"]["p99"].as_f64().unwrap_or(f64::MAX) < 50.0 && created >= sent * 0.999
}

fn best(target: &Target) -> Option<(u64, f64)> {
    target
        .runs
        .iter()
        .filter(|(_, report)| passing(report))
        .map(|(rate, report)| (*rate, report["throughput"].as_f64().unwrap_or(0.0)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

fn report(results: &Path, plot: &Path) -> anyhow::Result<()> {
    let targets = load_targets(results)?;
    let ceiling = targets
        .iter()
        .find(|t| t.name.contains("ceiling"))
        .and_then(best)
        .map(|(_, t)| t);
    let baseline = targets
        .iter()
        .find(|t| t.name.contains("baseline"))
        .and_then(best)
        .map(|(_, t)| t);
    println!(
        "| target | best throughput with p99 < 50 ms | offered | vs ceiling | vs baseline | peak RSS |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for target in &targets {
        let (rate, throughput) = best(target).unwrap_or((0, 0.0));
        let ratio = |other: Option<f64>| {
            other
                .filter(|o| *o > 0.0)
                .map_or("–".to_owned(), |o| format!("{:.2}×", throughput / o))
        };
        let rss = target.peak_rss_kib.map_or("–".to_owned(), |kib| {
            format!("{:.1} MiB", kib as f64 / 1024.0)
        });
        println!(
            "| {} | {throughput:.0}/s | {rate}/s | {} | {} | {rss} |",
            target.name,
            ratio(ceiling),
            ratio(baseline)
        );
    }
    println!();
    println!("| target | offered | achieved | p50 ms | p99 ms | p99.9 ms | max ms | non-201 |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for target in &targets {
        for (rate, report) in &target.runs {
            let l = &report["latency_ms"];
            let errors =
                report["sent"].as_u64().unwrap_or(0) - report["created"].as_u64().unwrap_or(0);
            println!(
                "| {} | {rate}/s | {:.0}/s | {:.2} | {:.2} | {:.2} | {:.2} | {errors} |",
                target.name,
                report["throughput"].as_f64().unwrap_or(0.0),
                l["p50"].as_f64().unwrap_or(0.0),
                l["p99"].as_f64().unwrap_or(0.0),
                l["p999"].as_f64().unwrap_or(0.0),
                l["max"].as_f64().unwrap_or(0.0),
            );
        }
    }
    let queries: Vec<&Target> = targets.iter().filter(|t| t.query.is_some()).collect();
    if !queries.is_empty() {
        println!();
        println!("| store | order query p50 ms | p99 ms | p99.9 ms |");
        println!("| --- | ---: | ---: | ---: |");
        for target in queries {
            let q = target
                .query
                .as_ref()
                .map(|q| (q["p50"].clone(), q["p99"].clone(), q["p999"].clone()));
            if let Some((p50, p99, p999)) = q {
                println!("| {} | {p50} | {p99} | {p999} |", target.name);
            }
        }
    }
    draw(&targets, plot)
}

fn draw(targets: &[Target], plot: &Path) -> anyhow::Result<()> {
    let max_rate = targets
        .iter()
        .flat_map(|t| t.runs.keys())
        .copied()
        .max()
        .unwrap_or(1000) as f64;
    let root = SVGBackend::new(plot, (960, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "p99 latency against offered rate (log scale)",
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..max_rate * 1.05, (0.1f64..5000f64).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("offered rate (requests/s)")
        .y_desc("p99 latency (ms)")
        .draw()?;
    let colours = [
        RED,
        BLUE,
        GREEN,
        MAGENTA,
        CYAN,
        BLACK,
        RGBColor(255, 140, 0),
    ];
    for (index, target) in targets.iter().enumerate() {
        let colour = colours[index % colours.len()];
        let points: Vec<(f64, f64)> = target
            .runs
            .iter()
            .map(|(rate, report)| {
                (
                    *rate as f64,
                    report["latency_ms"]["p99"]
                        .as_f64()
                        .unwrap_or(5000.0)
                        .clamp(0.1, 5000.0),
                )
            })
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(target.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart.draw_series(
            points
                .into_iter()
                .map(|point| Circle::new(point, 3, colour.filled())),
        )?;
    }
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, 50.0), (max_rate * 1.05, 50.0)],
            BLACK.mix(0.3),
        ))?
        .label("50 ms")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.3)));
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()?;
    root.present()?;
    Ok(())
}
