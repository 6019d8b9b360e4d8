//! The delivery workers of the configured sinks, one per sink, started with the app and
//! changed in place when the configuration is reloaded (SIGHUP): a sink added gets a worker, a
//! removed one's worker finishes its attempts in flight and stops, a changed one is stopped and
//! started again with its new settings. Deliveries stay in the outbox across all of it.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Sink;
use crate::config::seller_apis::SellerApi;
use crate::config::sinks::{SinkConfig, SinkTarget};
use crate::domain::routing::SinkName;
use crate::metrics::Metrics;
use crate::store::Store;

/// What a reload changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Sinks that got a worker.
    pub added: Vec<SinkName>,
    /// Sinks whose worker stopped.
    pub removed: Vec<SinkName>,
    /// Sinks whose worker started again with new settings.
    pub changed: Vec<SinkName>,
}

struct Running {
    config: SinkConfig,
    stop: CancellationToken,
    done: JoinHandle<()>,
}

/// The running workers.
pub(crate) struct Workers {
    store: Store,
    metrics: Arc<Metrics>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    running: tokio::sync::Mutex<BTreeMap<SinkName, Running>>,
}

impl Workers {
    /// No worker yet; each one stops on `shutdown` and is tracked by `tasks`.
    pub(crate) fn new(
        store: Store,
        metrics: Arc<Metrics>,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Workers {
        Workers {
            store,
            metrics,
            tasks,
            shutdown,
            running: tokio::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Starts a sink's worker, and a probe of the sink whose result goes to the log, so that a
    /// wrong address, certificate or login shows as the sink starts (or is changed by a
    /// reload) rather than at its first event, which may be hours away.
    fn spawn(&self, config: SinkConfig, sink: Arc<Sink>) -> Running {
        tracing::info!(sink = %config.name, "delivering to sink");
        let stop = self.shutdown.child_token();
        self.tasks.spawn(super::probe_and_log(
            config.name.clone(),
            config.timeout,
            sink.clone(),
            stop.clone(),
        ));
        let done = self.tasks.spawn(super::worker::run(
            self.store.clone(),
            sink,
            config.clone(),
            self.metrics.clone(),
            stop.clone(),
        ));
        Running { config, stop, done }
    }

    /// Starts the workers of sinks already built.
    pub(crate) async fn start(&self, sinks: Vec<(SinkConfig, Arc<Sink>)>) {
        let mut running = self.running.lock().await;
        for (config, sink) in sinks {
            let name = config.name.clone();
            running.insert(name, self.spawn(config, sink));
        }
    }

    /// Makes the workers those of `configs` (the enabled sinks). Every new sink is built
    /// first: if one cannot be, nothing changes. The seller-API sink starts again on every
    /// reload, since its seller APIs may have changed.
    pub(crate) async fn apply(
        &self,
        configs: &[SinkConfig],
        seller_apis: &[SellerApi],
    ) -> anyhow::Result<Changes> {
        let mut running = self.running.lock().await;
        let mut built = Vec::new();
        for config in configs {
            let unchanged = running
                .get(&config.name)
                .is_some_and(|old| old.config == *config && config.target != SinkTarget::SellerApi);
            if !unchanged {
                let sink = Sink::new(config, seller_apis, &self.store, &self.metrics)?;
                built.push((config.clone(), Arc::new(sink)));
            }
        }
        let mut changes = Changes::default();
        let wanted: Vec<&SinkName> = configs.iter().map(|config| &config.name).collect();
        let gone: Vec<SinkName> = running
            .keys()
            .filter(|name| !wanted.contains(name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(old) = running.remove(&name) {
                stop(old).await;
                tracing::info!(sink = %name, "sink removed: its worker stopped; its outbox rows stay");
                changes.removed.push(name);
            }
        }
        for (config, sink) in built {
            let name = config.name.clone();
            match running.remove(&name) {
                Some(old) => {
                    // The old worker finishes its attempts first: one worker per sink at a time.
                    stop(old).await;
                    changes.changed.push(name.clone());
                }
                None => changes.added.push(name.clone()),
            }
            running.insert(name, self.spawn(config, sink));
        }
        Ok(changes)
    }
}

async fn stop(running: Running) {
    running.stop.cancel();
    let _ = running.done.await;
}
