//! Prometheus metrics, all named `order_listener_*`, served as OpenMetrics text on the admin port
//! at `/metrics`. One [`Metrics`] per running app (no global registry), shared by the handlers,
//! the store's writer and the delivery workers.
//!
//! Recording is cheap and never fails or blocks on IO. Outbox and suspect gauges are not kept
//! here: they are read from the store when scraped and passed to [`Metrics::render_with`].

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The prefix of every series.
const PREFIX: &str = "order_listener";

/// The media type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What happened to one delivery attempt, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// The sink took it.
    Delivered,
    /// It failed and will be tried again.
    Failed,
    /// It failed past the horizon and is now a dead letter.
    Dead,
}

impl AttemptResult {
    /// The `result` label.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Delivered => "delivered",
            AttemptResult::Failed => "failed",
            AttemptResult::Dead => "dead",
        }
    }
}

/// What became of one fetch of an order from a seller API, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Fetched and stored as the event's snapshot.
    Fetched,
    /// The seller answered 404.
    NotFound,
    /// The seller answered 401 or 403.
    Unauthorized,
    /// The seller answered another status that is not a 2xx.
    Rejected,
    /// No answer: no connection, a timeout, a reset.
    Unreachable,
    /// No OAuth2 token could be had.
    TokenFailed,
    /// The answer is not the event's order.
    Unreadable,
    /// Fetched, but the store could not keep it.
    NotStored,
    /// No seller API takes the event's dialect.
    NoSellerApi,
}

impl FetchOutcome {
    /// The `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchOutcome::Fetched => "fetched",
            FetchOutcome::NotFound => "not_found",
            FetchOutcome::Unauthorized => "unauthorized",
            FetchOutcome::Rejected => "rejected",
            FetchOutcome::Unreachable => "unreachable",
            FetchOutcome::TokenFailed => "token_failed",
            FetchOutcome::Unreadable => "unreadable",
            FetchOutcome::NotStored => "not_stored",
            FetchOutcome::NoSellerApi => "no_seller_api",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FetchLabels {
    seller: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    event_type: String,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CodeLabels {
    code: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SinkLabels {
    sink: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct AttemptLabels {
    sink: String,
    result: &'static str,
}

type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

/// Delivery latency buckets: 5 ms to about 10 s.
fn delivery_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 12))
}

/// The app's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    auth_failures: Family<CodeLabels, Counter>,
    commit_batch_size: Histogram,
    commit_seconds: Histogram,
    delivery_attempts: Family<AttemptLabels, Counter>,
    delivery_seconds: HistogramFamily<SinkLabels>,
    delivery_duplicates: Family<SinkLabels, Counter>,
    tls_reloads: Family<OutcomeLabels, Counter>,
    disk_full: prometheus_client::metrics::gauge::Gauge,
    seller_fetches: Family<FetchLabels, Counter>,
    reconcile_checks: Family<FetchLabels, Counter>,
    reconcile_backoff: Family<SellerLabels, prometheus_client::metrics::gauge::Gauge>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SellerLabels {
    seller: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(PREFIX);
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Listener API answers, by eventType (unknown before the body is parsed) and HTTP status",
            requests.clone(),
        );
        let auth_failures = Family::<CodeLabels, Counter>::default();
        registry.register(
            "auth_failures",
            "Listener API callers refused, by error code (40-42 and 50-53 from the gate, 6 when overloaded)",
            auth_failures.clone(),
        );
        // The writer's largest batch is `commit_batch_max` (512 by default).
        let commit_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        registry.register(
            "commit_batch_size",
            "Appends committed together in one transaction",
            commit_batch_size.clone(),
        );
        // 0.25 ms to about 4 s: an fsynced commit is a few milliseconds on a healthy disk.
        let commit_seconds = Histogram::new(exponential_buckets(0.00025, 2.0, 15));
        registry.register_with_unit(
            "commit",
            "Time to write and fsync one commit batch",
            Unit::Seconds,
            commit_seconds.clone(),
        );
        let delivery_attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "delivery_attempts",
            "Delivery attempts by sink and result (delivered, failed and will be retried, dead)",
            delivery_attempts.clone(),
        );
        let delivery_seconds: HistogramFamily<SinkLabels> =
            Family::new_with_constructor(delivery_histogram);
        registry.register_with_unit(
            "delivery",
            "Time of one delivery attempt, whatever its result",
            Unit::Seconds,
            delivery_seconds.clone(),
        );
        let delivery_duplicates = Family::<SinkLabels, Counter>::default();
        registry.register(
            "delivery_duplicates",
            "Messages the broker reported as duplicates it already had",
            delivery_duplicates.clone(),
        );
        let tls_reloads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "tls_reloads",
            "Reloads of the public listener's certificate, key and client CA (on a file change or SIGHUP), by outcome (ok, failed: the running one stayed)",
            tls_reloads.clone(),
        );
        let disk_full = prometheus_client::metrics::gauge::Gauge::default();
        registry.register(
            "store_disk_full",
            "1 while the last commit failed because the disk that holds the store is full (events are refused with 503, code 5), else 0",
            disk_full.clone(),
        );
        let seller_fetches = Family::<FetchLabels, Counter>::default();
        registry.register(
            "seller_fetches",
            "Orders fetched from seller APIs for reference-only events, by seller API and outcome \
             (fetched, not_found, unauthorized, rejected, unreachable, token_failed, unreadable, \
             not_stored, no_seller_api)",
            seller_fetches.clone(),
        );
        let reconcile_checks = Family::<FetchLabels, Counter>::default();
        registry.register(
            "reconcile_checks",
            "Orders checked against a seller API by reconciliation, by seller API and outcome \
             (matched, repaired, not_found, failed, no_seller_api)",
            reconcile_checks.clone(),
        );
        let reconcile_backoff =
            Family::<SellerLabels, prometheus_client::metrics::gauge::Gauge>::default();
        registry.register(
            "reconcile_backoff_seconds",
            "How long reconciliation waits before its next request to a seller API after \
             failures (0 while it answers)",
            reconcile_backoff.clone(),
        );
        Metrics {
            reconcile_checks,
            reconcile_backoff,
            tls_reloads,
            disk_full,
            registry,
            seller_fetches,
            requests,
            auth_failures,
            commit_batch_size,
            commit_seconds,
            delivery_attempts,
            delivery_seconds,
            delivery_duplicates,
        }
    }

    /// A Listener API request finished with `status`; `event_type` when the body named one.
    pub fn request(&self, event_type: Option<&str>, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                event_type: event_type.unwrap_or("unknown").to_owned(),
                status,
            })
            .inc();
    }

    /// A caller was refused with this code (401/40–42, 403/50–53, or 503/6 when overloaded).
    pub fn auth_failure(&self, code: u16) {
        self.auth_failures.get_or_create(&CodeLabels { code }).inc();
    }

    /// A commit of `size` appends took `elapsed`.
    pub fn commit(&self, size: usize, elapsed: Duration) {
        self.commit_batch_size.observe(size as f64);
        self.commit_seconds.observe(elapsed.as_secs_f64());
    }

    /// A delivery attempt to `sink` ended so, after `elapsed`.
    pub fn delivery(&self, sink: &str, result: AttemptResult, elapsed: Duration) {
        self.delivery_attempts
            .get_or_create(&AttemptLabels {
                sink: sink.to_owned(),
                result: result.as_str(),
            })
            .inc();
        self.delivery_seconds
            .get_or_create(&SinkLabels {
                sink: sink.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Whether the last commit failed for lack of disk space.
    pub fn disk_full(&self, full: bool) {
        self.disk_full.set(i64::from(full));
    }

    /// The public listener's TLS files were reloaded (`ok`) or did not load (`failed`).
    pub fn tls_reload(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.tls_reloads
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// A fetch of an order from seller API `seller` ended so (`seller` is empty when no seller
    /// API takes the event).
    pub fn fetch(&self, seller: &str, outcome: FetchOutcome) {
        self.seller_fetches
            .get_or_create(&FetchLabels {
                seller: seller.to_owned(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Reconciliation checked an order against seller API `seller` (empty when none takes the
    /// order's dialect) with this outcome.
    pub fn reconcile_check(&self, seller: &str, outcome: &'static str) {
        self.reconcile_checks
            .get_or_create(&FetchLabels {
                seller: seller.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Reconciliation now waits `backoff` before its next request to `seller`.
    pub fn reconcile_backoff(&self, seller: &str, backoff: Duration) {
        self.reconcile_backoff
            .get_or_create(&SellerLabels {
                seller: seller.to_owned(),
            })
            .set(i64::try_from(backoff.as_secs()).unwrap_or(i64::MAX));
    }

    /// The broker said a published message was a duplicate it already had.
    pub fn duplicate(&self, sink: &str) {
        self.delivery_duplicates
            .get_or_create(&SinkLabels {
                sink: sink.to_owned(),
            })
            .inc();
    }

    /// Every series as OpenMetrics text (see [`CONTENT_TYPE`]), with the outbox gauges of
    /// `sinks` as read from the store at this scrape; `None` leaves them out (the store did not
    /// answer).
    pub fn render(&self, sinks: Option<&[OutboxGauges]>) -> String {
        self.render_with(sinks, None)
    }

    /// As [`Metrics::render`], with the suspect orders counted by reason at this scrape;
    /// `None` leaves them out (the store did not answer).
    pub fn render_with(
        &self,
        sinks: Option<&[OutboxGauges]>,
        suspects: Option<&[SuspectGauge]>,
    ) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail; the encoder's Result is for other writers.
        let _ = encode_registry(&mut text, &self.registry);
        if let Some(sinks) = sinks {
            let _ = encode_registry(&mut text, &outbox_registry(sinks));
        }
        if let Some(suspects) = suspects {
            let _ = encode_registry(&mut text, &suspect_registry(suspects));
        }
        let _ = encode_eof(&mut text);
        text
    }
}

/// How many orders are suspect for one reason at a scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspectGauge {
    /// The reason's name.
    pub reason: &'static str,
    /// How many orders.
    pub orders: u64,
}

fn suspect_registry(suspects: &[SuspectGauge]) -> Registry {
    let mut registry = Registry::with_prefix(PREFIX);
    let orders = Family::<ReasonLabels, Gauge>::default();
    for suspect in suspects {
        orders
            .get_or_create(&ReasonLabels {
                reason: suspect.reason,
            })
            .set(i64::try_from(suspect.orders).unwrap_or(i64::MAX));
    }
    registry.register(
        "orders_suspect",
        "Orders suspect of a lost notification, by reason (an order counts once per reason)",
        orders,
    );
    registry
}

/// One sink's outbox at a scrape: what the store counted, for the gauges of that scrape only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxGauges {
    /// The sink's name.
    pub sink: String,
    /// Deliveries waiting.
    pub pending: u64,
    /// Dead letters.
    pub dead: u64,
}

/// What the web console shows of the metrics, read from one rendering so that it always agrees
/// with `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Listener API answers by HTTP status, every event type together.
    pub answers_by_status: std::collections::BTreeMap<u16, u64>,
    /// Callers refused, by error code (40–42, 50–53, 6).
    pub refusals_by_code: std::collections::BTreeMap<u16, u64>,
    /// Commit batches written.
    pub commits: u64,
    /// The 99th percentile of commit time, as the upper bound of its histogram bucket (in
    /// seconds; infinite past the last bucket); `None` before the first commit.
    pub commit_p99_seconds: Option<f64>,
}

impl Metrics {
    /// The counters and the commit percentile the console shows.
    pub fn snapshot(&self) -> Snapshot {
        parse_snapshot(&self.render(None))
    }
}

/// The value of label `name` in a sample's label set, as rendered.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &labels[start..];
    Some(&rest[..rest.find('"')?])
}

fn parse_snapshot(text: &str) -> Snapshot {
    let mut snapshot = Snapshot::default();
    let mut buckets: Vec<(f64, u64)> = Vec::new();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        // Counters are whole numbers rendered as floats or integers.
        let count = value.max(0.0) as u64;
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        match name {
            "order_listener_requests_total" => {
                if let Some(status) = label(labels, "status").and_then(|s| s.parse().ok()) {
                    *snapshot.answers_by_status.entry(status).or_default() += count;
                }
            }
            "order_listener_auth_failures_total" => {
                if let Some(code) = label(labels, "code").and_then(|c| c.parse().ok()) {
                    *snapshot.refusals_by_code.entry(code).or_default() += count;
                }
            }
            "order_listener_commit_seconds_count" => snapshot.commits = count,
            "order_listener_commit_seconds_bucket" => {
                if let Some(bound) = label(labels, "le").and_then(|le| match le {
                    "+Inf" => Some(f64::INFINITY),
                    other => other.parse().ok(),
                }) {
                    buckets.push((bound, count));
                }
            }
            _ => {}
        }
    }
    if snapshot.commits > 0 {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let rank = (snapshot.commits * 99).div_ceil(100);
        snapshot.commit_p99_seconds = buckets
            .iter()
            .find(|(_, cumulative)| *cumulative >= rank)
            .map(|(bound, _)| *bound);
    }
    snapshot
}

/// The outbox gauges of one scrape, in a registry of their own that lives only for it, so that
/// a sink that is gone from the store is gone from the scrape too.
fn outbox_registry(sinks: &[OutboxGauges]) -> Registry {
    let mut registry = Registry::with_prefix(PREFIX);
    let pending = Family::<SinkLabels, Gauge>::default();
    let dead = Family::<SinkLabels, Gauge>::default();
    for sink in sinks {
        let labels = SinkLabels {
            sink: sink.sink.clone(),
        };
        pending
            .get_or_create(&labels)
            .set(i64::try_from(sink.pending).unwrap_or(i64::MAX));
        dead.get_or_create(&labels)
            .set(i64::try_from(sink.dead).unwrap_or(i64::MAX));
    }
    registry.register(
        "outbox_pending",
        "Deliveries waiting in the outbox, by sink",
        pending,
    );
    registry.register(
        "dead_letters",
        "Deliveries that failed past the retry horizon, by sink",
        dead,
    );
    registry
}

#[cfg(test)]
mod tests;
