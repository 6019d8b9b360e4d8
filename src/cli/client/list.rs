//! `order-listener client list`: the clients of the file, read as `serve` reads them, as a table
//! or JSON. Shows how each authenticates and when credentials expire; never a secret or a hash.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::edit::ConfigFile;
use super::{ListArgs, rfc3339};
use crate::config::clients::ClientSettings;
use crate::output::outln;
use crate::standard_webhooks::VerifyingKey;

/// Only the `[clients]` of the file, read as `serve` reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ClientsOnly {
    clients: BTreeMap<String, ClientSettings>,
}

pub(super) fn list(path: &Path, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let file = ConfigFile::open(path)?;
    let clients: ClientsOnly = toml::from_str(&file.document.to_string())
        .with_context(|| format!("the clients in {} are not valid", file.path.display()))?;
    let now = Utc::now();
    let rows: Vec<ClientSummary> = clients
        .clients
        .iter()
        .map(|(name, settings)| ClientSummary::new(name, settings, now))
        .collect();
    if args.json {
        let entries: Vec<serde_json::Value> = rows.iter().map(ClientSummary::to_json).collect();
        crate::cli::print_json(&entries)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        outln!(
            "{} has no clients; add one with `order-listener client add NAME`",
            file.path.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = crate::cli::table(&[
        "client",
        "enabled",
        "methods",
        "event types",
        "sources",
        "rate",
        "next expiry",
    ]);
    for row in &rows {
        table.add_row(vec![
            row.name.clone(),
            if row.settings.enabled { "yes" } else { "no" }.to_owned(),
            row.methods.join("\n"),
            if row.settings.event_types.is_empty() {
                "all".to_owned()
            } else {
                row.settings.event_types.join("\n")
            },
            if row.settings.allowed_sources.is_empty() {
                "any".to_owned()
            } else {
                row.settings.allowed_sources.join("\n")
            },
            crate::cli::or_dash(
                row.settings
                    .rate_limit
                    .map(|rate| format!("{}/s, burst {}", rate.per_second, rate.burst)),
            ),
            crate::cli::or_dash(row.next_expiry.map(rfc3339)),
        ]);
    }
    outln!("{table}")?;
    outln!(
        "{} client{} in {}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        file.path.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// What `client list` shows of one client: no secret, no hash.
struct ClientSummary<'a> {
    name: String,
    settings: &'a ClientSettings,
    methods: Vec<String>,
    /// The earliest expiry still to come among API keys and the Basic password.
    next_expiry: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

impl<'a> ClientSummary<'a> {
    fn new(name: &str, settings: &'a ClientSettings, now: DateTime<Utc>) -> Self {
        let mut methods = Vec::new();
        let expired = |expires_at: Option<DateTime<Utc>>| expires_at.is_some_and(|at| at <= now);
        if !settings.api_keys.is_empty() {
            let count = settings.api_keys.len();
            let expired_count = settings
                .api_keys
                .iter()
                .filter(|key| expired(key.expires_at))
                .count();
            let mut method = if count == 1 {
                "api-key".to_owned()
            } else {
                format!("api-key ×{count}")
            };
            if expired_count > 0 {
                let _ = write!(method, " ({expired_count} expired)");
            }
            methods.push(method);
        }
        if let Some(basic) = &settings.basic {
            let mut method = format!("basic ({})", basic.user);
            if expired(basic.expires_at) {
                method.push_str(" expired");
            }
            methods.push(method);
        }
        if settings.jwt.is_some() {
            methods.push("jwt".to_owned());
        }
        if settings.mtls.is_some() {
            methods.push("mtls".to_owned());
        }
        if let Some(webhook) = &settings.webhook {
            let keys: Vec<VerifyingKey> = webhook
                .keys
                .iter()
                .filter_map(|key| key.expose().parse().ok())
                .collect();
            let hmac = keys
                .iter()
                .filter(|key| matches!(key, VerifyingKey::Hmac(_)))
                .count();
            let ed25519 = keys.len() - hmac;
            let kinds: Vec<String> = [(hmac, "hmac"), (ed25519, "ed25519")]
                .into_iter()
                .filter(|(count, _)| *count > 0)
                .map(|(count, kind)| {
                    if count == 1 {
                        kind.to_owned()
                    } else {
                        format!("{kind} ×{count}")
                    }
                })
                .collect();
            methods.push(format!("webhook ({})", kinds.join(", ")));
        }
        let next_expiry = settings
            .api_keys
            .iter()
            .map(|key| key.expires_at)
            .chain(settings.basic.iter().map(|basic| basic.expires_at))
            .flatten()
            .filter(|at| *at > now)
            .min();
        ClientSummary {
            name: name.to_owned(),
            settings,
            methods,
            next_expiry,
            now,
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let settings = self.settings;
        json!({
            "name": self.name,
            "enabled": settings.enabled,
            "methods": self.methods,
            "apiKeys": settings.api_keys.iter().map(|key| json!({
                "header": key.header,
                "expiresAt": key.expires_at.map(rfc3339),
                "expired": key.expires_at.is_some_and(|at| at <= self.now),
            })).collect::<Vec<_>>(),
            "basicUser": settings.basic.as_ref().map(|basic| basic.user.as_str()),
            "eventTypes": settings.event_types,
            "allowedSources": settings.allowed_sources,
            "rateLimit": settings.rate_limit.map(|rate| json!({
                "perSecond": rate.per_second,
                "burst": rate.burst,
            })),
            "nextExpiry": self.next_expiry.map(rfc3339),
        })
    }
}
