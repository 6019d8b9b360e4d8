//! `order-listener hub subscribe|list|show|delete`: a client of the seller's Hub API, in the
//! seller's dialect (`--dialect`).

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::domain::envelope::Dialect;
use crate::hub::Hub;
use crate::hub::client::{HubClient, HubError};
use crate::hub::dialect::{
    base_path, callback_note, callback_warnings, default_query, dialect_parser,
};
use crate::hub::query::warnings;
use crate::outbound::{CredentialArgs, TlsOptions};
use crate::output::{errln, outln};

/// Where the hub is, which dialect it speaks and how to reach it.
#[derive(Debug, Args)]
pub(super) struct HubServer {
    /// The seller's hub: https://host:port (the dialect's base path is added: /nbi/api/v4 for
    /// ONAP, /tmf-api/serviceOrdering/v4 or v5 for TMF641,
    /// /mefApi/legato/serviceOrderingManagement/v5 or v6 for MEF) or the full base URL.
    #[arg(long, value_name = "URL", env = "ORDER_LISTENER_HUB_URL")]
    server: String,
    /// The seller's dialect: which hub paths and bodies to use.
    #[arg(long, value_name = "DIALECT", default_value = "onap", value_parser = dialect_parser())]
    dialect: Dialect,
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
    ///
    /// The callback is what the seller's hub stores; where the events then go depends on the
    /// dialect. ONAP POSTs every event to the callback itself, so register the listener's URL
    /// (…/externalapi/listener/v1/listener). A TMF641 seller POSTs each event to the callback
    /// followed by /listener/{eventName}, so register the listener's base
    /// (…/tmf-api/serviceOrdering/v4 or v5). A MEF Legato seller appends the notification
    /// API's base path and the resource path
    /// (/mefApi/legato/serviceOrderingNotification/v5|v6/listener/{eventName}), so register
    /// the listener's root URL: https://host:port.
    Subscribe {
        #[command(flatten)]
        server: HubServer,
        /// The URL the seller will reach the listener at; see above for what each dialect adds
        /// to it.
        #[arg(long, value_name = "URL")]
        callback: String,
        /// Which notifications: key=value[,value]&key=value. ONAP's hub filters on eventType,
        /// serviceOrder.state and serviceOrder.serviceOrderItem.state; TMF641 and MEF hubs
        /// must filter on eventType only. [default: every service-order event type of the
        /// dialect, in its spelling: eventType=ServiceOrderCreationNotification,… for ONAP,
        /// eventType=ServiceOrderCreateEvent,… for TMF641,
        /// eventType=serviceOrderCreateEvent,… for MEF]
        #[arg(long, value_name = "QUERY")]
        query: Option<String>,
        /// Refuse to send a query or callback that has warnings.
        #[arg(long)]
        strict: bool,
    },
    /// List the hub's subscriptions (ONAP defines GET /hub; TMF641 and MEF hubs may not offer
    /// it).
    List {
        #[command(flatten)]
        server: HubServer,
    },
    /// Show one subscription (TMF641 v4 hubs may not offer it).
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
        server.dialect,
        &server.server,
        server.credentials.credentials()?,
        &server.tls,
    )?)
}

fn print(hubs: &[Hub], json: bool) -> anyhow::Result<()> {
    if json {
        super::print_json(&hubs)?;
        return Ok(());
    }
    let mut out = super::table(&["id", "callback", "query"]);
    for hub in hubs {
        out.add_row([hub.id.as_str(), hub.callback.as_str(), hub.query.as_str()]);
    }
    outln!("{out}")?;
    Ok(())
}

fn failed(error: HubError) -> anyhow::Result<ExitCode> {
    errln!("error: {}", crate::telemetry::error_chain(&error));
    Ok(ExitCode::FAILURE)
}

async fn subscribe(
    server: HubServer,
    callback: String,
    query: Option<String>,
    strict: bool,
) -> anyhow::Result<ExitCode> {
    let dialect = server.dialect;
    let query = query.unwrap_or_else(|| default_query(dialect));
    let mut problems = warnings(dialect, &query);
    problems.extend(callback_warnings(dialect, &callback));
    for problem in &problems {
        errln!("warning: {problem}");
    }
    if strict && !problems.is_empty() {
        errln!("error: there are warnings and --strict is set; nothing was sent");
        return Ok(ExitCode::FAILURE);
    }
    let hub = match client(&server)?.subscribe(&callback, &query).await {
        Ok(hub) => hub,
        Err(error) => return failed(error),
    };
    let note = callback_note(dialect, &hub.callback);
    if server.json {
        super::print_json(&hub)?;
        if let Some(note) = note {
            errln!("note: {note}");
        }
    } else {
        outln!(
            "subscribed: id {}\n  callback {}\n  query    {}",
            hub.id,
            hub.callback,
            hub.query
        )?;
        if let Some(note) = note {
            outln!(
                "  hub      {dialect}, {}\n  note: {note}",
                base_path(dialect)
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn run(command: HubCommand) -> anyhow::Result<ExitCode> {
    match command {
        HubCommand::Subscribe {
            server,
            callback,
            query,
            strict,
        } => subscribe(server, callback, query, strict).await,
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
                outln!("deleted subscription {id}")?;
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => failed(error),
        },
    }
}
