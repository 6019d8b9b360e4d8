//! What SIGHUP swaps in a running app: the access rules, the certificate, and the rest of a
//! newly loaded configuration that can change without a restart.

use std::sync::Arc;

use crate::config::Config;
use crate::config::sinks::SinkConfig;
use crate::forward::workers::Workers;
use crate::http::auth::Gate;
use crate::http::auth::generated::default_client;
use crate::http::tls::Tls;
use crate::store::Store;

/// Swaps the running listener's clients, anonymous policy and source rules for those of a
/// newly loaded configuration (on SIGHUP). Requests in flight finish with the rules they
/// started with; a client whose rate limit is unchanged keeps its bucket.
#[derive(Clone)]
pub struct AccessReloader {
    pub(super) gate: Arc<arc_swap::ArcSwap<Gate>>,
    pub(super) data_dir: std::path::PathBuf,
}

impl AccessReloader {
    /// Builds the new gate and swaps it in; returns how many clients it has. On error the
    /// running rules stay.
    pub fn reload(&self, config: &Config) -> anyhow::Result<usize> {
        let mut access = config.access.clone();
        if access.clients.is_empty() && !access.allow_anonymous {
            // The generated key's client, from its stored hash (nothing new is generated here
            // unless the file was deleted, and then the key is logged nowhere: restart instead).
            let hash_file = self.data_dir.join("credentials").join("api-key.sha256");
            anyhow::ensure!(
                hash_file.exists(),
                "no client is configured and {} is missing: restart `serve` to generate a key",
                hash_file.display()
            );
            let (client, _) = default_client(&self.data_dir)?;
            access.clients.push(client);
        }
        let clients = access.clients.len();
        let previous = self.gate.load_full();
        self.gate
            .store(Arc::new(Gate::reloaded(&access, Some(&previous))));
        Ok(clients)
    }
}

/// Reloads the public listener's certificate, key and client CA from their files (on SIGHUP;
/// `serve` also watches the files). New connections get the new ones; open ones keep theirs.
#[derive(Clone)]
pub struct TlsReloader(pub(super) Arc<Tls>);

impl TlsReloader {
    /// Reloads now, logging the outcome; on error the running certificate stays.
    pub fn reload(&self) {
        self.0.reload_and_log("SIGHUP");
    }
}

/// Applies a reloaded configuration to the running app (SIGHUP) without dropping a connection:
/// the sinks (added, removed, changed: their workers, and the routes new events are queued
/// by), the clients, anonymous policy, source rules and rate limits (a bucket whose limit is
/// unchanged is kept), retention, the log level, and the certificate. Other settings (addresses, the store,
/// the console) need a restart.
#[derive(Clone)]
pub struct Reloader {
    pub(super) access: AccessReloader,
    pub(super) tls: Option<TlsReloader>,
    pub(super) workers: Arc<Workers>,
    pub(super) retention: tokio::sync::watch::Sender<crate::config::retention::Retention>,
    pub(super) sink_names: Arc<arc_swap::ArcSwap<Vec<crate::domain::routing::SinkName>>>,
    pub(super) store: Store,
    /// The log level in effect.
    pub(super) log_level: Arc<std::sync::Mutex<crate::telemetry::LogFilter>>,
}

impl Reloader {
    /// Applies `config`; returns what changed, one line each. The sinks are built first: if one
    /// cannot be, nothing changes.
    pub async fn reload(&self, config: &Config) -> anyhow::Result<Vec<String>> {
        let enabled: Vec<SinkConfig> = config
            .sinks
            .iter()
            .filter(|sink| sink.enabled)
            .cloned()
            .collect();
        let mut lines = Vec::new();
        let changes = self.workers.apply(&enabled, &config.seller_apis).await?;
        let clients = self.access.reload(config)?;
        lines.push(format!("{clients} clients and their access rules"));
        self.store
            .set_routes(enabled.iter().map(SinkConfig::route).collect());
        self.sink_names.store(Arc::new(
            enabled.iter().map(|sink| sink.name.clone()).collect(),
        ));
        for (what, names) in [
            ("added", &changes.added),
            ("removed", &changes.removed),
            ("changed", &changes.changed),
        ] {
            if !names.is_empty() {
                let names: Vec<&str> = names.iter().map(|name| name.as_str()).collect();
                lines.push(format!("sinks {what}: {}", names.join(", ")));
            }
        }
        self.retention.send_if_modified(|running| {
            let changed = *running != config.retention;
            *running = config.retention;
            if changed {
                lines.push("retention".to_owned());
            }
            changed
        });
        if let Ok(mut level) = self.log_level.lock()
            && *level != config.log_level
        {
            if crate::telemetry::set_level(&config.log_level)? {
                lines.push(format!("log level {}", config.log_level));
            } else {
                lines.push("log level left to RUST_LOG, which is set".to_owned());
            }
            level.clone_from(&config.log_level);
        }
        if let Some(tls) = &self.tls {
            tls.reload();
        }
        Ok(lines)
    }
}
