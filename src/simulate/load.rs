//! The load generator: open-loop at a constant rate, so that a slow server cannot slow the
//! offered load and hide its own latency (coordinated omission). Request `n` is due at
//! `start + n / rate`; its latency counts from that moment, not from when it was sent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::time::Instant;

use super::model::{Machine, ModelOptions, generate};
use crate::domain::envelope::Dialect;
use crate::outbound::{Credentials, authorize};

/// What to offer.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The Listener API URL.
    pub target: String,
    /// Requests per second.
    pub rate: f64,
    /// How long to offer them.
    pub duration: Duration,
    /// Connections, and so the most requests in flight.
    pub connections: usize,
    /// Credentials for the target.
    pub credentials: Option<Credentials>,
    /// The seed for the payloads.
    pub seed: u64,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// The slowest.
    pub max: f64,
    /// The mean.
    pub mean: f64,
}

/// What a load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// The target.
    pub target: String,
    /// The offered rate, requests per second.
    pub offered_rate: f64,
    /// Seconds from the first due time to the last answer.
    pub elapsed_seconds: f64,
    /// Requests sent.
    pub sent: u64,
    /// Requests answered 201.
    pub created: u64,
    /// Answers by status (or `error` for transport failures).
    pub statuses: BTreeMap<String, u64>,
    /// Answers 201 per second.
    pub throughput: f64,
    /// Latency from the due time, in milliseconds.
    pub latency_ms: Percentiles,
    /// Connections used.
    pub connections: usize,
}

/// Placeholders in the body templates.
const EVENT_ID: &str = "@@EVENT@@";
const ORDER_ID: &str = "@@ORDER@@";

/// Makes unique, valid ONAP-shaped notifications cheaply: a pool of real notification bodies
/// with placeholders for the eventId and the order id, so that body `n` costs only a string
/// replace. Every pass over the pool is a new set of orders.
#[derive(Debug, Clone)]
pub struct Bodies {
    templates: Vec<(String, usize)>,
    run_id: String,
    run_hash: u64,
}

/// A fast, well-mixing hash of a number (SplitMix64's finaliser).
fn splitmix(mut value: u64) -> u64 {
    value = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

impl Bodies {
    /// A pool generated from `seed`; `run_id` keeps the ids of different runs apart.
    pub fn new(seed: u64, run_id: &str) -> Bodies {
        let (orders, events) = generate(ModelOptions {
            orders: 64,
            max_items: 3,
            machine: Machine::Onap,
            dialect: Dialect::Onap,
            seller_url: None,
            seed,
            start: chrono::Utc::now(),
        });
        let templates = events
            .iter()
            .map(|event| {
                let text = event.body.to_string();
                let text = text
                    .replace(&event.event_id, EVENT_ID)
                    .replace(&orders[event.order].id, ORDER_ID);
                (text, event.order)
            })
            .collect();
        let run_hash = run_id
            .bytes()
            .fold(seed, |hash, byte| splitmix(hash ^ u64::from(byte)));
        Bodies {
            templates,
            run_id: run_id.to_owned(),
            run_hash,
        }
    }

    /// The `n`th body. Its eventId is a random-looking UUID, as ONAP's are, so that the
    /// store's index sees the same scattered inserts as in production.
    pub fn body(&self, n: u64) -> String {
        let count = self.templates.len() as u64;
        let (template, order) = &self.templates[(n % count) as usize];
        let generation = n / count;
        let event_id = uuid::Uuid::from_u64_pair(splitmix(self.run_hash ^ n), splitmix(n));
        template
            .replace(EVENT_ID, &event_id.to_string())
            .replace(ORDER_ID, &format!("{}-{generation}-{order}", self.run_id))
    }

    /// How many bodies one pass over the pool makes.
    pub fn pool_size(&self) -> usize {
        self.templates.len()
    }
}

/// Runs the load and measures it.
pub async fn run(options: LoadOptions, http: reqwest::Client) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(options.rate > 0.0, "--rate must be positive");
    let total = (options.rate * options.duration.as_secs_f64()).round() as u64;
    anyhow::ensure!(total > 0, "--rate × --duration gives no request");
    let bodies = Arc::new(Bodies::new(
        options.seed,
        &format!("load-{:08x}", rand::random::<u32>()),
    ));
    let interval = Duration::from_secs_f64(1.0 / options.rate);
    let next = Arc::new(AtomicU64::new(0));
    let progress = if options.progress {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} requests ({per_sec})",
            )
            .context("the progress bar template")?,
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    // Start a little later so that every worker is ready at the first due time.
    let start = Instant::now() + Duration::from_millis(50);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..options.connections.max(1) {
        let (http, bodies, next, progress) =
            (http.clone(), bodies.clone(), next.clone(), progress.clone());
        let (target, credentials) = (options.target.clone(), options.credentials.clone());
        let mut latencies =
            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram")?;
        workers.spawn(async move {
            let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let due = start + interval.mul_f64(n as f64);
                tokio::time::sleep_until(due).await;
                let body = bodies.body(n);
                let request = http
                    .post(&target)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/json;charset=utf-8",
                    )
                    .body(body);
                let outcome = authorize(request, credentials.as_ref()).send().await;
                let key = match outcome {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        // Read the body so that the connection can be reused.
                        let _ = response.bytes().await;
                        status.to_string()
                    }
                    Err(_) => "error".to_owned(),
                };
                let micros = due.elapsed().as_micros().clamp(1, 60_000_000) as u64;
                let _ = latencies.record(micros);
                *statuses.entry(key).or_default() += 1;
                progress.inc(1);
            }
            (latencies, statuses)
        });
    }
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram")?;
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(joined) = workers.join_next().await {
        let (worker_latencies, worker_statuses) = joined.context("a load worker panicked")?;
        latencies
            .add(&worker_latencies)
            .context("merging latencies")?;
        for (status, count) in worker_statuses {
            *statuses.entry(status).or_default() += count;
        }
    }
    progress.finish_and_clear();
    let elapsed = start.elapsed().as_secs_f64();
    let created = statuses.get("201").copied().unwrap_or(0);
    let ms = |micros: u64| micros as f64 / 1000.0;
    Ok(LoadReport {
        target: options.target,
        offered_rate: options.rate,
        elapsed_seconds: elapsed,
        sent: latencies.len(),
        created,
        statuses,
        throughput: created as f64 / elapsed.max(f64::EPSILON),
        latency_ms: Percentiles {
            p50: ms(latencies.value_at_quantile(0.50)),
            p90: ms(latencies.value_at_quantile(0.90)),
            p99: ms(latencies.value_at_quantile(0.99)),
            p999: ms(latencies.value_at_quantile(0.999)),
            max: ms(latencies.max()),
            mean: latencies.mean() / 1000.0,
        },
        connections: options.connections.max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_unique_valid_notifications() {
        let bodies = Bodies::new(5, "run");
        assert!(bodies.pool_size() > 64);
        let mut ids = std::collections::HashSet::new();
        for n in 0..(bodies.pool_size() as u64 * 2) {
            let parsed = crate::domain::envelope::parse_notification(
                bodies.body(n).into(),
                Default::default(),
            )
            .expect("a body is a valid notification");
            assert!(
                ids.insert(parsed.event_id.to_string()),
                "eventIds are unique"
            );
            let order = parsed.order.expect("an order event").order_id;
            assert!(
                order
                    .as_str()
                    .starts_with(&format!("run-{}-", n / bodies.pool_size() as u64))
            );
        }
    }
}
