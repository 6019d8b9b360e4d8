//! The read-only commands `events list|show` and `orders list|show`: tables for people,
//! `--json` for scripts. They open the store read-only, so they work while `serve` runs.

use std::process::ExitCode;

use chrono::Utc;
use clap::Args;

use super::{StoreArgs, or_dash, print_json, table};
use crate::domain::envelope::{Dialect, EventId, EventType, OrderId};
use crate::domain::projection::AnomalySubject;
use crate::domain::state::State;
use crate::domain::suspect::{self, Finding};
use crate::output::{errln, outln};
use crate::store::{EventFilter, OrderFilter, Store};

#[derive(Debug, Args)]
pub(super) struct EventListArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only events of this service order.
    #[arg(long, value_name = "ID")]
    order: Option<OrderId>,
    /// Only events of this type, such as ServiceOrderStateChangeNotification.
    #[arg(long = "type", value_name = "EVENT_TYPE")]
    event_type: Option<EventType>,
    /// Only events sent in this dialect: onap, tmf641-v4, tmf641-v5, mef-legato-v5 or
    /// mef-legato-v6.
    #[arg(long, value_name = "DIALECT")]
    dialect: Option<Dialect>,
    /// At most this many (1 to 10000).
    #[arg(long, default_value_t = 50, value_parser = super::limit_parser())]
    limit: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(super) struct EventShowArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The eventId.
    id: EventId,
    /// Print the metadata and the body as one JSON object.
    #[arg(long, conflicts_with = "raw")]
    json: bool,
    /// Print the body exactly as it was received, and nothing else.
    #[arg(long)]
    raw: bool,
}

#[derive(Debug, Args)]
pub(super) struct OrderListArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only orders in this state, such as inProgress.
    #[arg(long, value_name = "STATE")]
    state: Option<State>,
    /// Only orders with anomalies.
    #[arg(long)]
    anomalies: bool,
    /// At most this many (1 to 10000).
    #[arg(long, default_value_t = 50, value_parser = super::limit_parser())]
    limit: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(super) struct OrderShowArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The service order id (event.id).
    id: OrderId,
    /// Print one JSON object: id, state, items, timeline, anomalies and suspects.
    #[arg(long)]
    json: bool,
}

async fn open(args: &StoreArgs) -> anyhow::Result<Store> {
    open_with(&args.config()?).await
}

/// Opens the store of `config` read-only.
pub(super) async fn open_with(config: &crate::config::Config) -> anyhow::Result<Store> {
    Store::open_read_only(&config.storage)
        .await
        .map_err(|error| anyhow::anyhow!(crate::telemetry::error_chain(&error)))
}

pub(super) async fn list_events(args: EventListArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store).await?;
    let events = store
        .events(EventFilter {
            event_type: args.event_type,
            order_id: args.order,
            dialect: args.dialect,
            limit: args.limit,
            ..EventFilter::default()
        })
        .await?;
    if args.json {
        print_json(&events)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = table(&[
        "#",
        "eventId",
        "dialect",
        "source",
        "eventType",
        "eventDate",
        "order",
        "received",
        "sender",
    ]);
    for event in &events {
        out.add_row(vec![
            event.sequence.to_string(),
            event.event_id.to_string(),
            event.dialect.to_string(),
            event.source.to_string(),
            event.event_type.to_string(),
            event.event_date.to_string(),
            or_dash(event.order_id.as_ref()),
            event
                .received_at
                .format("%Y-%m-%d %H:%M:%S%.3f")
                .to_string(),
            or_dash(event.sender.as_ref()),
        ]);
    }
    outln!("{out}")?;
    outln!(
        "{} event{}",
        events.len(),
        if events.len() == 1 { "" } else { "s" }
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn show_event(args: EventShowArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store).await?;
    let Some((record, body)) = store.event(&args.id).await? else {
        errln!("no event with id {}", args.id);
        return Ok(ExitCode::FAILURE);
    };
    if args.raw {
        crate::output::bytes(&body)?;
        return Ok(ExitCode::SUCCESS);
    }
    let parsed: serde_json::Value = serde_json::from_slice(&body)?;
    if args.json {
        let mut document = serde_json::to_value(&record)?;
        document["body"] = parsed;
        print_json(&document)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = table(&["field", "value"]);
    out.add_row(vec!["eventId".to_owned(), record.event_id.to_string()]);
    out.add_row(vec!["dialect".to_owned(), record.dialect.to_string()]);
    out.add_row(vec!["source".to_owned(), record.source.to_string()]);
    out.add_row(vec!["eventType".to_owned(), record.event_type.to_string()]);
    out.add_row(vec!["eventDate".to_owned(), record.event_date.to_string()]);
    out.add_row(vec!["order".to_owned(), or_dash(record.order_id.as_ref())]);
    if let Some(reference) = &record.reference {
        out.add_row(vec!["reference".to_owned(), reference.clone()]);
    }
    out.add_row(vec!["received".to_owned(), record.received_at.to_rfc3339()]);
    out.add_row(vec!["sender".to_owned(), or_dash(record.sender.as_ref())]);
    out.add_row(vec!["client".to_owned(), or_dash(record.client.as_ref())]);
    out.add_row(vec!["sequence".to_owned(), record.sequence.to_string()]);
    outln!("{out}")?;
    outln!("{}", serde_json::to_string_pretty(&parsed)?)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn list_orders(args: OrderListArgs) -> anyhow::Result<ExitCode> {
    let store = open(&args.store).await?;
    let orders = store
        .orders(OrderFilter {
            state: args.state,
            with_anomalies: args.anomalies,
            limit: args.limit,
            ..OrderFilter::default()
        })
        .await?;
    if args.json {
        print_json(&orders)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = table(&[
        "order",
        "state",
        "externalId",
        "items",
        "events",
        "anomalies",
        "last event",
    ]);
    for order in &orders {
        out.add_row(vec![
            order.id.to_string(),
            or_dash(order.state),
            or_dash(order.external_id.as_ref()),
            order.item_count.to_string(),
            order.event_count.to_string(),
            order.anomaly_count.to_string(),
            order.last_event_date.to_string(),
        ]);
    }
    outln!("{out}")?;
    outln!(
        "{} order{}",
        orders.len(),
        if orders.len() == 1 { "" } else { "s" }
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn show_order(args: OrderShowArgs) -> anyhow::Result<ExitCode> {
    let config = args.store.config()?;
    let store = open_with(&config).await?;
    let Some(order) = store.order(&args.id).await? else {
        errln!("no service order with id {}", args.id);
        return Ok(ExitCode::FAILURE);
    };
    let findings = suspect::findings(&order, Utc::now(), &config.reconcile.stale_after);
    if args.json {
        let mut document = serde_json::to_value(&order)?;
        document["suspects"] = serde_json::to_value(&findings)?;
        print_json(&document)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "service order {}  state {}  externalId {}",
        order.id,
        or_dash(order.state),
        or_dash(order.external_id.as_ref())
    )?;
    outln!(
        "orderDate {}  completionDateTime {}",
        or_dash(order.order_date.as_ref()),
        or_dash(order.completion_date_time.as_ref())
    )?;
    let mut items = table(&["item", "state", "action", "since"]);
    for item in &order.items {
        items.add_row(vec![
            item.id.clone(),
            or_dash(item.state),
            or_dash(item.action.as_ref()),
            or_dash(item.updated_at),
        ]);
    }
    outln!("{items}")?;
    let mut timeline = table(&["eventDate", "eventType", "order state", "items", "eventId"]);
    for entry in &order.timeline {
        let items: Vec<String> = entry
            .facts
            .items
            .iter()
            .map(|item| format!("{}={}", item.id, or_dash(item.state)))
            .collect();
        timeline.add_row(vec![
            entry.event_date.to_string(),
            entry.event_type.to_string(),
            or_dash(entry.facts.state),
            items.join(" "),
            entry.event_id.to_string(),
        ]);
    }
    outln!("{timeline}")?;
    if order.anomalies.is_empty() {
        outln!("no anomalies")?;
    } else {
        let mut anomalies = table(&["eventDate", "subject", "transition", "eventId"]);
        for anomaly in &order.anomalies {
            let subject = match &anomaly.subject {
                AnomalySubject::Order => "order".to_owned(),
                AnomalySubject::Item { item_id } => format!("item {item_id}"),
            };
            anomalies.add_row(vec![
                anomaly.event_date.to_string(),
                subject,
                format!("{} -> {} (not allowed)", anomaly.from, anomaly.to),
                anomaly.event_id.to_string(),
            ]);
        }
        outln!("{anomalies}")?;
    }
    print_findings(&findings)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints what makes an order suspect, for `orders show`.
fn print_findings(findings: &[Finding]) -> anyhow::Result<()> {
    if findings.is_empty() {
        outln!("not suspect")?;
        return Ok(());
    }
    let mut out = table(&["reason", "what shows it", "eventId"]);
    for finding in findings {
        let (what, event) = match finding {
            Finding::Stale {
                state,
                last_event_date,
                stale_after_seconds,
            } => (
                format!(
                    "{state} since {last_event_date}, longer than {}",
                    humantime::format_duration(std::time::Duration::from_secs(
                        *stale_after_seconds
                    ))
                ),
                None,
            ),
            Finding::MissedTransition {
                event_id,
                subject,
                from,
                to,
                ..
            } => {
                let subject = match subject {
                    AnomalySubject::Order => "order".to_owned(),
                    AnomalySubject::Item { item_id } => format!("item {item_id}"),
                };
                (format!("{subject}: {from} -> {to}"), Some(event_id))
            }
            Finding::ItemNotFinal {
                item_id,
                state,
                order_state,
            } => (
                format!("item {item_id} is {state}, the order {order_state}"),
                None,
            ),
            Finding::CreationMissing { first_event_id, .. } => (
                "no creation event; the first event received is".to_owned(),
                Some(first_event_id),
            ),
            Finding::OutOfStep {
                event_id,
                state,
                item_ids,
                ..
            } => (
                format!(
                    "order {state} with item(s) {} not final",
                    item_ids.join(", ")
                ),
                Some(event_id),
            ),
        };
        out.add_row(vec![finding.reason().to_string(), what, or_dash(event)]);
    }
    outln!("{out}")?;
    Ok(())
}
