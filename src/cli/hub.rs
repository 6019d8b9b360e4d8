//! `order-listener hub subscribe|list|show|delete`: a client of the seller's Hub API.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::hub::Hub;
use crate::hub::client::{HubClient, HubError};
use crate::hub::query::warnings;
use crate::outbound::{CredentialArgs, TlsOptions};

/// Where the hub is and how to reach it.
#[derive(Debug, Args)]
pub(super) struct HubServer {
    /// The seller's hub: https://host:port (the base path /nbi/api/v4 is added) or the full
    /// base URL.
    #[arg(long, value_name = "URL", env = "ORDER_LISTENER_HUB_URL")]
    server: String,
    #[command(flatten)]
    credentials: CredentialArgs,
    #[command(flatten)]
    tls: TlsOptions,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub(super) enum HubCommand {
    /// Register a listener for the notifications a query selects.
    Subscribe {
        #[command(flatten)]
        server: HubServer,
        /// The listener's URL, as the seller will reach it.
        #[arg(long, value_name = "URL")]
        callback: String,
        /// Which notifications: key=value[,value]&key=value. The keys that select anything are
        /// eventType, serviceOrder.state and serviceOrder.serviceOrderItem.state.
        #[arg(
            long,
            value_name = "QUERY",
            default_value = "eventType=ServiceOrderCreationNotification,ServiceOrderStateChangeNotification,ServiceOrderItemStateChangeNotification"
        )]
        query: String,
        /// Refuse to send a query that has warnings.
        #[arg(long)]
        strict: bool,
    },
    /// List the hub's subscriptions.
    List {
        #[command(flatten)]
        server: HubServer,
    },
    /// Show one subscription.
    Show {
        #[command(flatten)]
        server: HubServer,
        /// The subscription id.
        id: String,
    },
    /// Delete one subscription.
    Delete {
        #[command(flatten)]
        server: HubServer,
        /// The subscription id.
        id: String,
    },
}

fn client(server: &HubServer) -> anyhow::Result<HubClient> {
    Ok(HubClient::new(
        &server.server,
        server.credentials.credentials()?,
        &server.tls,
    )?)
}

fn print(hubs: &[Hub], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(hubs)?);
        return Ok(());
    }
    let mut table = comfy_table::Table::new();
    table
        .load_style(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_header(["id", "callback", "query"]);
    for hub in hubs {
        table.add_row([hub.id.as_str(), hub.callback.as_str(), hub.query.as_str()]);
    }
    println!("{table}");
    Ok(())
}

fn failed(error: HubError) -> anyhow::Result<ExitCode> {
    eprintln!("error: {}", crate::telemetry::error_chain(&error));
    Ok(ExitCode::FAILURE)
}

pub(super) async fn run(command: HubCommand) -> anyhow::Result<ExitCode> {
    match command {
        HubCommand::Subscribe {
            server,
            callback,
            query,
            strict,
        } => {
            let problems = warnings(&query);
            for problem in &problems {
                eprintln!("warning: {problem}");
            }
            if strict && !problems.is_empty() {
                eprintln!("error: the query has warnings and --strict is set; nothing was sent");
                return Ok(ExitCode::FAILURE);
            }
            match client(&server)?.subscribe(&callback, &query).await {
                Ok(hub) => {
                    if server.json {
                        println!("{}", serde_json::to_string_pretty(&hub)?);
                    } else {
                        println!(
                            "subscribed: id {}\n  callback {}\n  query    {}",
                            hub.id, hub.callback, hub.query
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => failed(error),
            }
        }
        HubCommand::List { server } => match client(&server)?.list().await {
            Ok(hubs) => print(&hubs, server.json).map(|()| ExitCode::SUCCESS),
            Err(error) => failed(error),
        },
        HubCommand::Show { server, id } => match client(&server)?.show(&id).await {
            Ok(hub) => print(&[hub], server.json).map(|()| ExitCode::SUCCESS),
            Err(error) => failed(error),
        },
        HubCommand::Delete { server, id } => match client(&server)?.delete(&id).await {
            Ok(()) => {
                println!("deleted subscription {id}");
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => failed(error),
        },
    }
}
