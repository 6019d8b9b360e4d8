//! `order-listener simulate`: plays the seller, in any dialect. It serves the dialect's Hub
//! API and a Service Ordering API (`GET …/serviceOrder/{id}`, which reference-only events point
//! at), generates service orders that walk a realistic state machine, POSTs each notification
//! to every matching subscriber at the dialect's paths with the faults asked for, then checks
//! the listener's projection against its own ground truth. With `--duration` it is a
//! constant-rate load generator instead (ONAP's bodies only).

mod deliver;
pub mod faults;
pub mod hub_server;
pub mod load;
pub mod model;
pub mod payload;
pub mod seller_api;
pub mod truth;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use self::deliver::{Sending, deliver};
use self::faults::Faults;
use self::model::{Machine, ModelOptions, generate};
use self::seller_api::SellerBook;
use self::truth::{OrderTruth, Verification, ground_truth, orders_missing_their_newest, verify};
use crate::domain::envelope::Dialect;
use crate::hub::Hub;
use crate::hub::dialect::{base_path, default_query, dialect_parser};
use crate::outbound::{CredentialArgs, TlsOptions};
use crate::output::{errln, outln};

/// `simulate`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Which seller to play: its hub, listener paths, bodies, replies and states.
    #[arg(long, value_name = "DIALECT", default_value = "onap", value_parser = dialect_parser())]
    pub dialect: Dialect,
    /// POST every notification as if this URL had subscribed to all of them, as a callback in
    /// the dialect's sense: the listener URL for ONAP; the listener's base for TMF641
    /// (…/tmf-api/serviceOrdering/v4, to which /listener/{eventName} is added); its root URL
    /// for MEF (to which /mefApi/legato/serviceOrderingNotification/v5|v6/listener/{eventName}
    /// is added). May be repeated; subscribers of --hub-listen are added to these.
    #[arg(long, value_name = "URL")]
    pub target: Vec<String>,
    /// Serve the dialect's Hub API ({base}/hub, e.g. /nbi/api/v4/hub for ONAP) and its Service
    /// Ordering API ({base}/serviceOrder/{id}) on this address, so that listeners can
    /// subscribe and fetch orders. MEF runs serve the Service Ordering API on a port of their
    /// own without it.
    #[arg(long, value_name = "ADDR")]
    pub hub_listen: Option<std::net::SocketAddr>,
    /// The URL at which listeners reach this simulator's servers, for the `href` of TMF641
    /// and MEF events [default: http:// and the address served].
    #[arg(long, value_name = "URL")]
    pub seller_url: Option<String>,
    /// With --hub-listen: wait for this many subscriptions before sending.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub wait_subscribers: usize,
    /// How long to wait for them.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub wait_timeout: Duration,
    /// After the run, keep serving the hub and the Service Ordering API this long (such as
    /// 10m), in every order's final state, so that a listener can still fetch.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub linger: Option<Duration>,
    /// How many service orders to generate.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub orders: usize,
    /// The most items in an order.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_items: usize,
    /// Which state machine and notification habits to play [default: the dialect's own:
    /// onap for ONAP, tmf641 for TMF641, mef for MEF].
    #[arg(long, value_enum)]
    pub machine: Option<Machine>,
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

/// The end-of-run summary.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    seed: u64,
    dialect: Dialect,
    machine: String,
    orders: usize,
    notifications: usize,
    subscribers: Vec<String>,
    deliveries: u64,
    statuses: BTreeMap<String, u64>,
    /// Notifications acknowledged with another success status than the dialect's.
    wrong_success_status: u64,
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
    /// Orders whose seller state no acknowledged notification carries (ONAP's rejected and
    /// partial; every MEF v5 order, whose events carry no state).
    orders_with_unnotified_final_state: usize,
    verification: Option<Verification>,
    /// The ground truth of every order.
    truth: Vec<OrderTruth>,
}

/// Binds the address of the simulator's servers (the hub and the Service Ordering API), if it
/// serves any: --hub-listen, or a port of its own for a reference-only dialect's orders.
async fn bind(args: &SimulateArgs) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let address = match args.hub_listen {
        Some(address) => address,
        None if args.dialect.is_reference_only() => ([127, 0, 0, 1], 0).into(),
        None => return Ok(None),
    };
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| {
            format!("cannot serve the Hub API on {address}; choose another --hub-listen")
        })?;
    Ok(Some(listener))
}

/// Serves the hub and the Service Ordering API until the process ends.
fn serve(
    listener: tokio::net::TcpListener,
    subscriptions: &hub_server::Subscriptions,
    book: &SellerBook,
) {
    let router = hub_server::router(subscriptions.clone()).merge(seller_api::router(book.clone()));
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "the simulator's hub stopped");
        }
    });
}

/// Runs `simulate`.
pub async fn run(args: SimulateArgs) -> anyhow::Result<std::process::ExitCode> {
    args.faults.validate()?;
    let dialect = args.dialect;
    let machine = args.machine.unwrap_or(Machine::of(dialect));
    machine.check(dialect)?;
    if args.duration.is_some() && dialect != Dialect::Onap {
        bail!("load mode (--duration) sends ONAP's bodies only; leave --dialect out");
    }
    let credentials = args.credentials.credentials()?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let subscriptions = hub_server::Subscriptions::new(dialect);
    let listener = bind(&args).await?;
    let served = match &listener {
        Some(listener) => Some(listener.local_addr()?),
        None => None,
    };
    let seller_url = args
        .seller_url
        .clone()
        .or_else(|| served.map(|bound| format!("http://{bound}")));
    let book = SellerBook::new(dialect, seller_url.clone());
    if let Some(listener) = listener {
        serve(listener, &subscriptions, &book);
    }
    if let Some(url) = &seller_url {
        if args.hub_listen.is_some() {
            errln!("simulator hub: {url}{}", base_path(dialect));
        }
        if dialect.is_reference_only() {
            errln!(
                "simulator service ordering API: {url}{}/serviceOrder",
                base_path(dialect)
            );
        }
    }
    if args.hub_listen.is_some() && args.wait_subscribers > 0 {
        errln!("waiting for {} subscription(s)…", args.wait_subscribers);
        tokio::time::timeout(
            args.wait_timeout,
            subscriptions.wait_for(args.wait_subscribers),
        )
        .await
        .context("no listener subscribed in time (see --wait-timeout)")?;
    }

    let mut subscribers: Vec<Hub> = args
        .target
        .iter()
        .map(|target| Hub {
            id: "target".into(),
            callback: target.clone(),
            query: default_query(dialect),
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
            outln!("{}", serde_json::to_string_pretty(&report)?)?;
        } else {
            print_load(&report)?;
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }

    let (orders, events) = generate(ModelOptions {
        orders: args.orders,
        max_items: args.max_items,
        machine,
        dialect,
        seller_url,
        seed,
        start: chrono::Utc::now(),
    });
    book.load(&events);
    let plan = args.faults.plan(events.len(), seed);
    let http =
        crate::outbound::client(&args.tls, Duration::from_secs(30), args.concurrency.max(1))?;
    let sending = Sending {
        http: &http,
        dialect,
        subscribers: &subscribers,
        credentials: credentials.as_ref(),
        concurrency: args.concurrency.max(1),
        book: &book,
    };
    let (delivered, accepted) = deliver(&sending, &events, &plan).await?;
    book.advance_to_the_end();

    let truth = ground_truth(&orders, &events, &accepted);
    let orders_missing = orders_missing_their_newest(orders.len(), &events, &accepted);
    let unnotified = orders
        .iter()
        .zip(&truth)
        .filter(|(order, truth)| truth.state != Some(order.state))
        .count();

    let verification = match &args.verify_admin {
        Some(admin) => Some(
            verify(
                dialect,
                admin,
                args.admin_token.as_deref(),
                &truth,
                &args.tls,
            )
            .await?,
        ),
        None => None,
    };
    let summary = Summary {
        seed,
        dialect,
        machine: format!("{machine:?}").to_lowercase(),
        orders: orders.len(),
        notifications: events.len(),
        subscribers: subscribers.iter().map(|hub| hub.callback.clone()).collect(),
        deliveries: delivered.statuses.values().sum(),
        statuses: delivered.statuses,
        wrong_success_status: delivered.wrong_success_status,
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
        .is_some_and(|verification| !verification.passed())
        || delivered.malformed_accepted > 0
        || delivered.wrong_success_status > 0;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?)?;
    } else {
        print_summary(&summary)?;
        if delivered.malformed_accepted > 0 {
            outln!(
                "  malformed bodies the listener accepted: {}",
                delivered.malformed_accepted
            )?;
        }
    }
    if let Some(linger) = args.linger {
        errln!(
            "serving the hub and the Service Ordering API for {} more",
            humantime::format_duration(linger)
        );
        tokio::time::sleep(linger).await;
    }
    Ok(if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

fn print_summary(summary: &Summary) -> anyhow::Result<()> {
    outln!(
        "simulated {} orders, {} notifications ({} seller, {} machine, seed {})",
        summary.orders,
        summary.notifications,
        summary.dialect,
        summary.machine,
        summary.seed
    )?;
    outln!("  subscribers: {}", summary.subscribers.join(", "))?;
    let statuses: Vec<String> = summary
        .statuses
        .iter()
        .map(|(status, count)| format!("{status}×{count}"))
        .collect();
    outln!(
        "  deliveries: {} ({})",
        summary.deliveries,
        statuses.join(", ")
    )?;
    outln!(
        "  faults: {} duplicates, {} reordered, {} bursts, {} malformed ({} refused), {} dropped",
        summary.duplicates_sent,
        summary.reordered,
        summary.bursts,
        summary.malformed_sent,
        summary.malformed_refused,
        summary.dropped
    )?;
    if summary.wrong_success_status > 0 {
        outln!(
            "  acknowledged with another success status than the dialect's: {}",
            summary.wrong_success_status
        )?;
    }
    outln!(
        "  the listener cannot know the latest notification of {} order(s) (dropped); {} order(s) reached a state no acknowledged notification carries",
        summary.orders_missing_their_latest_notification,
        summary.orders_with_unnotified_final_state
    )?;
    match &summary.verification {
        None => outln!("  not verified (give --verify-admin URL to check the listener)")?,
        Some(verification) => verification.print()?,
    }
    Ok(())
}

fn print_load(report: &load::LoadReport) -> anyhow::Result<()> {
    let statuses: Vec<String> = report
        .statuses
        .iter()
        .map(|(status, count)| format!("{status}×{count}"))
        .collect();
    outln!(
        "offered {:.0}/s for {:.1}s over {} connections to {}",
        report.offered_rate,
        report.elapsed_seconds,
        report.connections,
        report.target
    )?;
    outln!(
        "  sent {} ({}), throughput {:.0} created/s",
        report.sent,
        statuses.join(", "),
        report.throughput
    )?;
    let latency = &report.latency_ms;
    outln!(
        "  latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  mean {:.2}",
        latency.p50,
        latency.p90,
        latency.p99,
        latency.p999,
        latency.max,
        latency.mean
    )?;
    Ok(())
}
