//! `order-listener simulate`: plays the seller. It serves a Hub API, generates service orders
//! that walk a realistic state machine, POSTs each notification to every matching subscriber
//! with the faults asked for, then checks the listener's projection against its own ground
//! truth. With `--duration` it is a constant-rate load generator instead.

pub mod faults;
pub mod hub_server;
pub mod load;
pub mod model;
pub mod payload;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;

use self::faults::{Delivery, Faults, Plan};
use self::model::{Machine, ModelOptions, SimEvent, generate};
use crate::domain::state::State;
use crate::hub::Hub;
use crate::hub::query::HubQuery;
use crate::outbound::{CredentialArgs, Credentials, TlsOptions, authorize};

/// `simulate`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// POST every notification to this Listener API URL, as if it had subscribed to all of
    /// them. May be repeated; subscribers of --hub-listen are added to these.
    #[arg(long, value_name = "URL")]
    pub target: Vec<String>,
    /// Serve the Hub API (/nbi/api/v4/hub) on this address, so that listeners can subscribe.
    #[arg(long, value_name = "ADDR")]
    pub hub_listen: Option<std::net::SocketAddr>,
    /// With --hub-listen: wait for this many subscriptions before sending.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub wait_subscribers: usize,
    /// How long to wait for them.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub wait_timeout: Duration,
    /// How many service orders to generate.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub orders: usize,
    /// The most items in an order.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_items: usize,
    /// Which seller's state machine and notification habits to play.
    #[arg(long, value_enum, default_value = "onap")]
    pub machine: Machine,
    /// The seed of every random choice; the same seed replays the same run.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// How many notifications are in flight at once (ONAP posts each from its own thread).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub concurrency: usize,
    #[command(flatten)]
    faults: Faults,
    /// Load mode: offer this many requests per second (with --duration).
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// Load mode: how long to offer --rate, such as 30s or 2m.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Load mode: how many connections.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub connections: usize,
    /// After sending, check every order through the listener's admin API at this URL (the
    /// admin token comes from ORDER_LISTENER_ADMIN_TOKEN or --admin-token).
    #[arg(long, value_name = "URL")]
    pub verify_admin: Option<String>,
    /// The listener's admin token, for --verify-admin.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "ORDER_LISTENER_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    credentials: CredentialArgs,
    #[command(flatten)]
    tls: TlsOptions,
}

/// What was delivered to whom, and what came back.
#[derive(Debug, Default, Serialize)]
struct Delivered {
    /// Answers by status (`error` for transport failures).
    statuses: BTreeMap<String, u64>,
    /// Malformed bodies that got the expected 4xx.
    malformed_refused: u64,
    /// Malformed bodies that got something else.
    malformed_accepted: u64,
}

/// The listener's view of one order compared with the simulator's.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OrderTruth {
    /// The order id.
    pub id: String,
    /// The state the newest delivered notification carries.
    pub state: Option<State>,
    /// Each item's state from the newest delivered notification that mentions it.
    pub items: BTreeMap<String, State>,
    /// The seller's own final state (which ONAP may never have notified).
    pub seller_state: State,
}

/// The end-of-run summary.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    seed: u64,
    machine: String,
    orders: usize,
    notifications: usize,
    subscribers: Vec<String>,
    deliveries: u64,
    statuses: BTreeMap<String, u64>,
    duplicates_sent: usize,
    reordered: usize,
    bursts: usize,
    malformed_sent: usize,
    malformed_refused: u64,
    /// Notifications never sent: the listener cannot have them.
    dropped: usize,
    /// Orders whose newest notification was dropped or refused, so that the listener's state
    /// lags the seller's notifications.
    orders_missing_their_latest_notification: usize,
    /// Orders whose seller state was never notified (ONAP's rejected and partial).
    orders_with_unnotified_final_state: usize,
    verification: Option<Verification>,
    /// The ground truth of every order.
    truth: Vec<OrderTruth>,
}

/// The result of checking the listener.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    checked: usize,
    matching: usize,
    mismatches: Vec<Mismatch>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Mismatch {
    order: String,
    expected: Value,
    actual: Value,
}

/// Runs `simulate`.
pub async fn run(args: SimulateArgs) -> anyhow::Result<std::process::ExitCode> {
    args.faults.validate()?;
    let credentials = args.credentials.credentials()?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let subscriptions = hub_server::Subscriptions::default();
    if let Some(address) = args.hub_listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| {
                format!("cannot serve the Hub API on {address}; choose another --hub-listen")
            })?;
        let bound = listener.local_addr()?;
        eprintln!("simulator hub: http://{bound}{}", crate::hub::BASE_PATH);
        let router = hub_server::router(subscriptions.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "the simulator's hub stopped");
            }
        });
        if args.wait_subscribers > 0 {
            eprintln!("waiting for {} subscription(s)…", args.wait_subscribers);
            tokio::time::timeout(
                args.wait_timeout,
                subscriptions.wait_for(args.wait_subscribers),
            )
            .await
            .context("no listener subscribed in time (see --wait-timeout)")?;
        }
    }

    let mut subscribers: Vec<Hub> = args
        .target
        .iter()
        .map(|target| Hub {
            id: "target".into(),
            callback: target.clone(),
            query:
                "eventType=ServiceOrderCreationNotification,ServiceOrderStateChangeNotification,\
                    ServiceOrderItemStateChangeNotification"
                    .into(),
        })
        .collect();
    subscribers.extend(subscriptions.all());
    if subscribers.is_empty() {
        bail!("nobody to send to: give --target URL, or --hub-listen with --wait-subscribers");
    }

    if let Some(duration) = args.duration {
        let rate = args
            .rate
            .context("load mode needs --rate with --duration")?;
        let http = crate::outbound::client(&args.tls, Duration::from_secs(60), args.connections)?;
        let report = load::run(
            load::LoadOptions {
                target: subscribers[0].callback.clone(),
                rate,
                duration,
                connections: args.connections,
                credentials,
                seed,
                progress: !args.json,
            },
            http,
        )
        .await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_load(&report);
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }

    let (orders, events) = generate(ModelOptions {
        orders: args.orders,
        max_items: args.max_items,
        machine: args.machine,
        seed,
        start: chrono::Utc::now(),
    });
    let plan = args.faults.plan(events.len(), seed);
    let http =
        crate::outbound::client(&args.tls, Duration::from_secs(30), args.concurrency.max(1))?;
    let (delivered, accepted) = deliver(
        &http,
        &subscribers,
        &events,
        &plan,
        credentials.as_ref(),
        args.concurrency.max(1),
    )
    .await?;

    let truth = ground_truth(&orders, &events, &accepted);
    let orders_missing = orders_missing_their_newest(orders.len(), &events, &accepted);
    let unnotified = orders
        .iter()
        .zip(&truth)
        .filter(|(order, truth)| truth.state != Some(order.state))
        .count();

    let verification = match &args.verify_admin {
        Some(admin) => Some(verify(admin, args.admin_token.as_deref(), &truth, &args.tls).await?),
        None => None,
    };
    let summary = Summary {
        seed,
        machine: format!("{:?}", args.machine).to_lowercase(),
        orders: orders.len(),
        notifications: events.len(),
        subscribers: subscribers.iter().map(|hub| hub.callback.clone()).collect(),
        deliveries: delivered.statuses.values().sum(),
        statuses: delivered.statuses,
        duplicates_sent: plan.duplicated,
        reordered: plan.reordered,
        bursts: plan.bursts,
        malformed_sent: plan.malformed,
        malformed_refused: delivered.malformed_refused,
        dropped: plan.dropped.len(),
        orders_missing_their_latest_notification: orders_missing,
        orders_with_unnotified_final_state: unnotified,
        verification,
        truth,
    };
    let failed = summary
        .verification
        .as_ref()
        .is_some_and(|verification| !verification.mismatches.is_empty())
        || delivered.malformed_accepted > 0;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
        if delivered.malformed_accepted > 0 {
            println!(
                "  malformed bodies the listener accepted: {}",
                delivered.malformed_accepted
            );
        }
    }
    Ok(if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

/// Sends the plan; returns what came back and, per notification, whether any subscriber
/// acknowledged it with 201.
async fn deliver(
    http: &reqwest::Client,
    subscribers: &[Hub],
    events: &[SimEvent],
    plan: &Plan,
    credentials: Option<&Credentials>,
    concurrency: usize,
) -> anyhow::Result<(Delivered, Vec<bool>)> {
    let queries: Vec<HubQuery> = subscribers
        .iter()
        .map(|hub| HubQuery::parse(&hub.query))
        .collect();
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut delivered = Delivered::default();
    let mut accepted = vec![false; events.len()];
    let progress =
        indicatif::ProgressBar::new(plan.groups.iter().map(Vec::len).sum::<usize>() as u64);
    for group in &plan.groups {
        // A burst ignores the concurrency bound: everything in it goes at once.
        let burst = group.len() > 1;
        let mut sending = tokio::task::JoinSet::new();
        for delivery in group {
            let (event, body, expect_refusal) = match *delivery {
                Delivery::Event { index, .. } => (index, events[index].body.to_string(), false),
                Delivery::Malformed { index, variant } => {
                    let (body, _) = payload::malformed(variant, &events[index].body);
                    (index, body, true)
                }
            };
            for (hub, query) in subscribers.iter().zip(&queries) {
                let notification = &events[event];
                if !expect_refusal
                    && !query.matches(
                        notification.event_type.as_str(),
                        &notification.body["event"],
                    )
                {
                    continue;
                }
                let permit = if burst {
                    None
                } else {
                    Some(slots.clone().acquire_owned().await?)
                };
                let request = authorize(
                    http.post(&hub.callback)
                        .header(
                            reqwest::header::CONTENT_TYPE,
                            "application/json;charset=utf-8",
                        )
                        .body(body.clone()),
                    credentials,
                );
                sending.spawn(async move {
                    let _permit = permit;
                    let status = request
                        .send()
                        .await
                        .map(|response| response.status().as_u16())
                        .ok();
                    (event, expect_refusal, status)
                });
            }
            if !burst {
                // Keep the plan's order for single deliveries, up to the concurrency bound.
                while sending.len() >= concurrency {
                    if let Some(joined) = sending.join_next().await {
                        record(joined?, &mut delivered, &mut accepted);
                    }
                }
            }
        }
        while let Some(joined) = sending.join_next().await {
            record(joined?, &mut delivered, &mut accepted);
        }
        progress.inc(group.len() as u64);
    }
    progress.finish_and_clear();
    Ok((delivered, accepted))
}

fn record(outcome: (usize, bool, Option<u16>), delivered: &mut Delivered, accepted: &mut [bool]) {
    let (event, malformed, status) = outcome;
    let key = status.map_or_else(|| "error".to_owned(), |status| status.to_string());
    *delivered.statuses.entry(key).or_default() += 1;
    match (malformed, status) {
        (true, Some(400..=499)) => delivered.malformed_refused += 1,
        (true, _) => delivered.malformed_accepted += 1,
        (false, Some(201)) => accepted[event] = true,
        (false, _) => {}
    }
}

/// How many orders' newest notification the listener did not acknowledge, in one pass over
/// the events (they are sorted by eventDate, so the last one seen per order is the newest).
fn orders_missing_their_newest(
    order_count: usize,
    events: &[SimEvent],
    accepted: &[bool],
) -> usize {
    let mut newest_accepted = vec![None; order_count];
    for (event, accepted) in events.iter().zip(accepted) {
        newest_accepted[event.order] = Some(*accepted);
    }
    newest_accepted
        .into_iter()
        .filter(|newest| *newest == Some(false))
        .count()
}

/// What the listener must show for each order, given what it acknowledged.
fn ground_truth(
    orders: &[payload::SimOrder],
    events: &[SimEvent],
    accepted: &[bool],
) -> Vec<OrderTruth> {
    let mut truths: Vec<OrderTruth> = orders
        .iter()
        .map(|order| OrderTruth {
            id: order.id.clone(),
            state: None,
            items: BTreeMap::new(),
            seller_state: order.state,
        })
        .collect();
    let mut newest: HashMap<(usize, Option<String>), chrono::DateTime<chrono::Utc>> =
        HashMap::new();
    for (index, event) in events.iter().enumerate() {
        if !accepted[index] {
            continue;
        }
        let truth = &mut truths[event.order];
        if newest
            .get(&(event.order, None))
            .is_none_or(|date| *date < event.event_date)
        {
            newest.insert((event.order, None), event.event_date);
            truth.state = Some(event.order_state);
        }
        for (item, state) in &event.item_states {
            let key = (event.order, Some(item.clone()));
            if newest.get(&key).is_none_or(|date| *date < event.event_date) {
                newest.insert(key, event.event_date);
                truth.items.insert(item.clone(), *state);
            }
        }
    }
    truths
}

async fn verify(
    admin: &str,
    token: Option<&str>,
    truth: &[OrderTruth],
    tls: &TlsOptions,
) -> anyhow::Result<Verification> {
    let token = token.context(
        "--verify-admin needs the admin token: set ORDER_LISTENER_ADMIN_TOKEN or --admin-token",
    )?;
    let http = crate::outbound::client(tls, Duration::from_secs(30), 4)?;
    let admin = admin.trim_end_matches('/');
    let mut verification = Verification {
        checked: 0,
        matching: 0,
        mismatches: Vec::new(),
    };
    for order in truth {
        let url = format!("{admin}/api/v1/service-orders/{}", order.id);
        let response = http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!("the admin API refused the token (401); check ORDER_LISTENER_ADMIN_TOKEN");
        }
        let expected = serde_json::json!({
            "state": order.state,
            "items": order.items,
        });
        let actual = if status == reqwest::StatusCode::NOT_FOUND {
            serde_json::json!({"state": null, "items": {}})
        } else {
            let body: Value = response.error_for_status()?.json().await?;
            let items: BTreeMap<String, Value> = body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|item| {
                    (
                        item["id"].as_str().unwrap_or_default().to_owned(),
                        item["state"].clone(),
                    )
                })
                .collect();
            serde_json::json!({"state": body["state"], "items": items})
        };
        verification.checked += 1;
        if actual == expected {
            verification.matching += 1;
        } else {
            verification.mismatches.push(Mismatch {
                order: order.id.clone(),
                expected,
                actual,
            });
        }
    }
    Ok(verification)
}

fn print_summary(summary: &Summary) {
    println!(
        "simulated {} orders, {} notifications ({} machine, seed {})",
        summary.orders, summary.notifications, summary.machine, summary.seed
    );
    println!("  subscribers: {}", summary.subscribers.join(", "));
    let statuses: Vec<String> = summary
        .statuses
        .iter()
        .map(|(status, count)| format!("{status}×{count}"))
        .collect();
    println!(
        "  deliveries: {} ({})",
        summary.deliveries,
        statuses.join(", ")
    );
    println!(
        "  faults: {} duplicates, {} reordered, {} bursts, {} malformed ({} refused), {} dropped",
        summary.duplicates_sent,
        summary.reordered,
        summary.bursts,
        summary.malformed_sent,
        summary.malformed_refused,
        summary.dropped
    );
    println!(
        "  the listener cannot know the latest notification of {} order(s) (dropped); {} order(s) reached a state the seller never notified",
        summary.orders_missing_their_latest_notification,
        summary.orders_with_unnotified_final_state
    );
    match &summary.verification {
        None => println!("  not verified (give --verify-admin URL to check the listener)"),
        Some(verification) => {
            println!(
                "  verified {} orders: {} match the ground truth, {} do not",
                verification.checked,
                verification.matching,
                verification.mismatches.len()
            );
            for mismatch in verification.mismatches.iter().take(10) {
                println!(
                    "    {}: expected {} got {}",
                    mismatch.order, mismatch.expected, mismatch.actual
                );
            }
        }
    }
}

fn print_load(report: &load::LoadReport) {
    let statuses: Vec<String> = report
        .statuses
        .iter()
        .map(|(status, count)| format!("{status}×{count}"))
        .collect();
    println!(
        "offered {:.0}/s for {:.1}s over {} connections to {}",
        report.offered_rate, report.elapsed_seconds, report.connections, report.target
    );
    println!(
        "  sent {} ({}), throughput {:.0} created/s",
        report.sent,
        statuses.join(", "),
        report.throughput
    );
    let latency = &report.latency_ms;
    println!(
        "  latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  mean {:.2}",
        latency.p50, latency.p90, latency.p99, latency.p999, latency.max, latency.mean
    );
}
