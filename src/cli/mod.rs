//! The command line: `serve`, `init`, `client`, the read-only `events` and `orders` queries,
//! the outbox commands (`replay`, `dead-letters`, `sinks`), `prune`, `backup`/`restore`, and
//! `export`/`import`.
//! Parsing is clap's; each command turns its flags into [`Config`] and calls the library.

mod backup;
mod client;
mod hub;
mod outbox;
mod query;
mod reconcile;
mod retention;
mod sinks;
mod suspects;
mod transfer;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::{self, Config, Overrides};
use crate::output::outln;
use crate::telemetry::LogFormat;

const ABOUT: &str = "The buyer's side of TMF641 service-order notifications.";

const LONG_ABOUT: &str = "\
The buyer's side of TMF641 service-order notifications: a seller's hub POSTs every change of a \
service order to the listener of its dialect (ONAP External API, TMF641 v4 or v5, MEF LSO \
Legato v5 or v6), and order-listener stores each event durably, exactly once, projects it into \
the state of its service order, and hands it on from an outbox to sinks: HTTP webhooks, NATS \
JetStream, RabbitMQ, Redis Streams, MQTT and Kafka. The admin port serves the admin API, a live event stream, metrics and a web \
console.

Settings come from a TOML file (--config), then environment variables ORDER_LISTENER_*, then \
flags. `order-listener init` writes a file that documents every setting.";

const AFTER_HELP: &str = "\
Quick start:
  order-listener serve                       HTTPS on 127.0.0.1:8443, API key printed once
  order-listener serve --plain-http --allow-anonymous   for tests, or behind a gateway
  order-listener orders list                 what the listener knows, while it runs
  order-listener sinks list                  what was handed on to each sink, and what waits";

/// The `order-listener` command line.
#[derive(Debug, Parser)]
#[command(name = "order-listener", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the listener: the Listener API on --listen and the admin API on --admin-listen.
    Serve(ServeArgs),
    /// Write a configuration file that lists and explains every setting.
    Init(InitArgs),
    /// Add, list, rotate, disable, enable or remove the clients (senders) in the config file.
    Client(client::ClientArgs),
    /// Read stored events (works while `serve` runs).
    #[command(subcommand)]
    Events(EventsCommand),
    /// Read the service orders projected from the events (works while `serve` runs).
    #[command(subcommand)]
    Orders(OrdersCommand),
    /// Subscribe a listener at the seller's hub, and list, show or delete subscriptions, in the
    /// seller's dialect (--dialect onap, tmf641-v4, tmf641-v5, mef-legato-v5, mef-legato-v6).
    #[command(subcommand)]
    Hub(hub::HubCommand),
    /// Queue a sink's deliveries again: every matching event, delivered or not (works while
    /// `serve` runs, which delivers them).
    Replay(outbox::ReplayArgs),
    /// List the deliveries given up after their sink's retry horizon, or queue them again.
    #[command(subcommand)]
    DeadLetters(outbox::DeadLettersCommand),
    /// Show each sink's outbox, enable a sink again after it answered 410 Gone, or check that
    /// each sink can be reached (TLS and login included) without delivering anything.
    #[command(subcommand)]
    Sinks(sinks::SinksCommand),
    /// Check orders against the seller's Service Ordering API ([seller_apis]) now, and record
    /// a synthesized event (source: reconciled) for each whose seller state differs: --order
    /// ID, --all-suspects, or --list (also record the creation of each order the seller lists
    /// and the listener never heard of); --dry-run only shows (works while `serve` runs, which
    /// also does it every reconcile.sweep_every and reconcile.list_every).
    Reconcile(reconcile::ReconcileArgs),
    /// Delete now what [retention] lets go (`serve` also does it every retention.interval).
    Prune(retention::PruneArgs),
    /// Copy the embedded store to a file while `serve` runs, and check the copy.
    Backup(backup::BackupArgs),
    /// Replace the embedded store with a backup; refused while `serve` runs on it.
    Restore(backup::RestoreArgs),
    /// Write stored events as JSON lines to standard output, oldest first, bodies byte for
    /// byte (works while `serve` runs).
    Export(transfer::ExportArgs),
    /// Store the events of an `export` file (or - for standard input) in this store, creating
    /// it if needed. Resends are skipped as duplicates, conflicts and bad lines are reported
    /// with their line numbers (the exit status is then 1). Imported events are not queued
    /// for sinks: that history was handed on by the store it came from.
    Import(transfer::ImportArgs),
    /// Play the seller, in any dialect (--dialect): serve a hub, send realistic notifications
    /// with faults, check the listener's result; or, with --rate and --duration, generate load.
    Simulate(Box<crate::simulate::SimulateArgs>),
}

/// Where the store is: the flags every command that reads it takes.
#[derive(Debug, Args, Clone)]
struct StoreArgs {
    /// A TOML configuration file (see `order-listener init`).
    #[arg(long, env = "ORDER_LISTENER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where the embedded store, the certificate and credentials live
    /// [default: the platform data directory, ~/.local/share/order-listener on Linux].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The store's URL instead of the embedded default: sqlite:///path/file.sqlite3, or
    /// postgres://user@host/database (postgresql:// too) for PostgreSQL.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The address of the Listener API: an IP address and port, such as 0.0.0.0:8443 or
    /// [::1]:8443 [default: 127.0.0.1:8443].
    #[arg(long, value_name = "ADDR", value_parser = config::addresses::parse)]
    listen: Option<std::net::SocketAddr>,
    /// The address of the admin API and health checks: an IP address and port
    /// [default: 127.0.0.1:9090].
    #[arg(long, value_name = "ADDR", value_parser = config::addresses::parse)]
    admin_listen: Option<std::net::SocketAddr>,
    /// Serve plain HTTP instead of HTTPS: only behind a TLS-terminating proxy, or in tests.
    #[arg(long)]
    plain_http: bool,
    /// Accept notifications without credentials, as ONAP sends them. Put an authenticating
    /// gateway in front.
    #[arg(long)]
    allow_anonymous: bool,
    /// How log lines are written [default: text].
    #[arg(long, value_enum, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
}

#[derive(Debug, Args)]
struct InitArgs {
    /// Where to write the file.
    #[arg(long, value_name = "FILE", default_value = "order-listener.toml")]
    config: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// The newest events first.
    List(query::EventListArgs),
    /// One event, with its body pretty-printed (keys sorted); --raw prints the bytes as received.
    Show(query::EventShowArgs),
}

#[derive(Debug, Subcommand)]
enum OrdersCommand {
    /// The most recently updated orders first.
    List(query::OrderListArgs),
    /// One order: its state, items, timeline, anomalies and why it is suspect.
    Show(query::OrderShowArgs),
    /// The orders that look incomplete (a notification was probably lost), with their reasons:
    /// stale, missedTransition, itemNotFinal, creationMissing, outOfStep.
    Suspects(suspects::SuspectsArgs),
}

impl StoreArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            ..Overrides::default()
        }
    }

    fn config(&self) -> anyhow::Result<Config> {
        Config::load(self.config.as_deref(), &self.overrides())
    }
}

/// Runs the parsed command line. A reader that closed standard output (`| head`) ends a
/// command quietly and successfully: it has read what it wanted.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match run_command(cli.command).await {
        Err(error) if crate::output::is_closed(&error) => Ok(ExitCode::SUCCESS),
        outcome => outcome,
    }
}

async fn run_command(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::Init(args) => init(args),
        Command::Client(args) => client::run(args),
        Command::Events(EventsCommand::List(args)) => query::list_events(args).await,
        Command::Events(EventsCommand::Show(args)) => query::show_event(args).await,
        Command::Orders(OrdersCommand::List(args)) => query::list_orders(args).await,
        Command::Orders(OrdersCommand::Show(args)) => query::show_order(args).await,
        Command::Orders(OrdersCommand::Suspects(args)) => suspects::list(args).await,
        Command::Hub(command) => hub::run(command).await,
        Command::Replay(args) => outbox::replay(args).await,
        Command::DeadLetters(outbox::DeadLettersCommand::List(args)) => {
            outbox::list_dead_letters(args).await
        }
        Command::DeadLetters(outbox::DeadLettersCommand::Retry(args)) => {
            outbox::retry_dead_letters(args).await
        }
        Command::Sinks(sinks::SinksCommand::List(args)) => sinks::list_sinks(args).await,
        Command::Sinks(sinks::SinksCommand::Enable(args)) => sinks::enable_sink(args).await,
        Command::Sinks(sinks::SinksCommand::Check(args)) => sinks::check_sinks(args).await,
        Command::Reconcile(args) => reconcile::run(args).await,
        Command::Prune(args) => retention::prune(args).await,
        Command::Backup(args) => backup::backup(args).await,
        Command::Restore(args) => backup::restore(args).await,
        Command::Export(args) => transfer::export(args).await,
        Command::Import(args) => transfer::import(args).await,
        Command::Simulate(args) => {
            let filter = crate::telemetry::chosen_filter(&"warn".parse()?)?;
            crate::telemetry::init(LogFormat::Text, &filter);
            crate::simulate::run(*args).await
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // First of all: a SIGTERM or SIGHUP that arrived before its handler would end the process
    // at once (their default action), without the last commit or the reload it asked for.
    let mut signals = Signals::register();
    let overrides = Overrides {
        listen: args.listen,
        admin_listen: args.admin_listen,
        plain_http: args.plain_http.then_some(true),
        allow_anonymous: args.allow_anonymous.then_some(true),
        log_format: args.log_format,
        ..args.store.overrides()
    };
    let config = Config::load(args.store.config.as_deref(), &overrides)?;
    // RUST_LOG, when set, wins over log_level; either is refused if it is not a filter.
    let filter = crate::telemetry::chosen_filter(&config.log_level)?;
    // Traces: the standard OTEL_* variables, read once here; off without an endpoint.
    let traces = crate::traces::export::Settings::from_env()
        .context("the OpenTelemetry settings do not read")?
        .map(crate::traces::Exporter::start)
        .transpose()
        .context("cannot start the OpenTelemetry exporter")?;
    crate::telemetry::init_with_traces(config.log_format, &filter, traces.as_ref());
    if let Some(traces) = &traces {
        traces.announce();
    }
    if !signals.watches_terminate() {
        tracing::warn!("cannot watch SIGTERM; only SIGINT stops the listener");
    }
    // A stop asked for while the store opens (a long migration, say) ends the start-up there.
    let app = tokio::select! {
        app = App::build(config) => app?,
        () = signals.stop() => {
            tracing::info!("stopped during start-up");
            return Ok(ExitCode::SUCCESS);
        }
    };
    // A closed standard output does not stop the listener: the logs still go to stderr. The
    // key and token generated now are shown nowhere else, so the warning says how to renew them.
    if let Err(error) = outln!("{}", app.banner()) {
        tracing::warn!(
            error = %crate::telemetry::error_chain(&error),
            "cannot print the start-up banner; serving anyway. A key or admin token generated \
             now is not shown: delete its hash file under credentials/ in the data directory \
             and restart for a new one"
        );
    }
    #[cfg(unix)]
    if let Some(mut hangups) = signals.hangup.take() {
        let reloader = app.reloader();
        let (file, overrides) = (args.store.config.clone(), overrides.clone());
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let config = match Config::load(file.as_deref(), &overrides) {
                    Ok(config) => config,
                    Err(error) => {
                        tracing::error!(
                            error = %format!("{error:#}"),
                            "SIGHUP: the configuration does not load; the running one stays"
                        );
                        continue;
                    }
                };
                match reloader.reload(&config).await {
                    Ok(changes) => tracing::info!(
                        applied = %changes.join("; "),
                        "SIGHUP: reloaded the sinks, clients and access rules, rate limits, \
                         retention, the log level and the certificate; addresses, the store and \
                         the console need a restart"
                    ),
                    Err(error) => tracing::error!(
                        error = %format!("{error:#}"),
                        "SIGHUP: the configuration was not applied; the running one stays"
                    ),
                }
            }
        });
    } else {
        tracing::warn!("cannot watch SIGHUP; restart `serve` to apply changes");
    }

    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        signals.stop().await;
        tracing::info!("shutting down: finishing in-flight requests and the last commit");
        stop.cancel();
    });
    app.run(shutdown).await?;
    if let Some(traces) = traces {
        traces.shutdown().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// The signals `serve` answers: SIGINT and SIGTERM stop it, SIGHUP reloads its configuration.
/// Each is watched from [`Signals::register`] on, `serve`'s first step; one that cannot be
/// watched keeps its default action, and is logged once logging has started.
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn register() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
                hangup: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Whether SIGTERM is watched.
    fn watches_terminate(&self) -> bool {
        #[cfg(unix)]
        return self.terminate.is_some();
        #[cfg(not(unix))]
        true
    }

    /// Waits for SIGINT or SIGTERM.
    async fn stop(&mut self) {
        #[cfg(unix)]
        {
            async fn wait(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = wait(&mut self.interrupt) => {}
                () = wait(&mut self.terminate) => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The most rows a list command's `--limit` asks for: the most one page of the store holds.
const MOST_ROWS: u64 = crate::store::MOST_ROWS as u64;

/// `--limit` of every list command: a whole number from 1 to [`MOST_ROWS`]. 0 is refused, as the
/// admin API refuses `limit=0`, rather than read as the smallest page; more than a page holds
/// is refused rather than cut short without a word.
fn limit_parser() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..=MOST_ROWS)
}

/// A table for the terminal with `header`, in the style every command's table has.
fn table(header: &[&str]) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table
        .load_style(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_header(header);
    table
}

/// `value` in a table's cell, `-` when there is none.
fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

/// Prints `value` as pretty JSON, what `--json` asks of every command.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    if args.config.exists() && !args.force {
        bail!(
            "{} already exists; pass --force to replace it",
            args.config.display()
        );
    }
    std::fs::write(&args.config, config::DEFAULT_CONFIG)
        .with_context(|| format!("cannot write {}", args.config.display()))?;
    outln!(
        "wrote {path}; edit it, then run: order-listener serve --config {path}",
        path = args.config.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
