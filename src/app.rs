//! Start-up and shutdown glue: binds the listeners, opens the store, prepares TLS and
//! credentials, then serves until cancelled and drains in order (requests, then the last
//! commit batch).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::sinks::SinkConfig;
use crate::config::{Config, Transport};
use crate::forward::Sink;
use crate::http::auth::Gate;
use crate::http::auth::generated::{GeneratedKey, default_client};
use crate::http::auth::overload::Overload;
use crate::http::tls::CertificateInfo;
use crate::http::{AppState, admin, public_router, server};
use crate::metrics::Metrics;
use crate::store::Store;

/// Swaps the running listener's clients, anonymous policy and source rules for those of a
/// newly loaded configuration (on SIGHUP). Requests in flight finish with the rules they
/// started with; rate-limit buckets start afresh. Other settings need a restart.
#[derive(Clone)]
pub struct AccessReloader {
    gate: Arc<arc_swap::ArcSwap<Gate>>,
    data_dir: std::path::PathBuf,
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
        self.gate.store(Arc::new(Gate::new(&access)));
        Ok(clients)
    }
}

/// A listener that is bound and ready to serve.
pub struct App {
    config: Config,
    public: TcpListener,
    admin: TcpListener,
    tls: Option<(TlsAcceptor, CertificateInfo)>,
    state: AppState,
    generated_key: Option<GeneratedKey>,
    sinks: Vec<(SinkConfig, Arc<Sink>)>,
}

impl App {
    /// Binds both listeners and opens the store. Fails with a message that says what to fix.
    pub async fn build(mut config: Config) -> anyhow::Result<App> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
        let public = server::bind(config.listen, "Listener API").await?;
        let admin = server::bind(config.admin_listen, "admin API").await?;
        let tls = match &config.transport {
            Transport::PlainHttp => None,
            Transport::Https(certificate) => Some(crate::http::tls::acceptor(
                certificate,
                config.listen,
                config.access.client_ca_file.as_deref(),
            )?),
        };
        // With no client configured and anonymous access off, a key is generated on first
        // start (its hash is kept in the data directory) for the client `default`.
        let generated_key = if config.access.clients.is_empty() && !config.access.allow_anonymous {
            let (client, generated) = default_client(&config.data_dir)?;
            config.access.clients.push(client);
            generated
        } else {
            None
        };
        let routes = config
            .sinks
            .iter()
            .filter(|sink| sink.enabled)
            .map(|sink| sink.route())
            .collect();
        let metrics = Arc::new(Metrics::new());
        let store =
            Store::open_with_routes(&config.storage, config.writer, routes, metrics.clone())
                .await
                .map_err(|error| anyhow::anyhow!(crate::telemetry::error_chain(&error)))
                .context("cannot open the store")?;
        let sinks = config
            .sinks
            .iter()
            .filter(|sink| sink.enabled)
            .map(|sink| Ok((sink.clone(), Arc::new(Sink::new(sink)?))))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let admin_url = config.admin_public_url.clone().unwrap_or_else(|| {
            format!(
                "http://{}",
                admin.local_addr().unwrap_or(config.admin_listen)
            )
        });
        let state = AppState {
            console: Arc::new(crate::http::console::Console::new(
                &config.console,
                &admin_url,
            )),
            sinks: sinks
                .iter()
                .map(|(sink, _)| sink.name.to_string())
                .collect(),
            metrics,
            store,
            gate: Arc::new(arc_swap::ArcSwap::from_pointee(Gate::new(&config.access))),
            overload: Arc::new(Overload::new(
                config.access.max_in_flight,
                config.access.max_queued,
            )),
            admin_token: config.admin_token.clone().map(Arc::new),
            body_limit: config.body_limit,
            body_read_timeout: config.limits.body_read_timeout,
            parse: config.parse,
            admin_public_url: admin_url.into(),
            base_path: config.base_path.clone().into(),
            // Replaced by the token `run` is given.
            shutdown: CancellationToken::new(),
        };
        Ok(App {
            config,
            public,
            admin,
            tls,
            state,
            generated_key,
            sinks,
        })
    }

    /// A handle that swaps in the clients and access rules of a newly loaded configuration.
    pub fn access_reloader(&self) -> AccessReloader {
        AccessReloader {
            gate: self.state.gate.clone(),
            data_dir: self.config.data_dir.clone(),
        }
    }

    /// The store the service writes to.
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// The public listener's bound address.
    pub fn public_addr(&self) -> SocketAddr {
        self.public.local_addr().unwrap_or(self.config.listen)
    }

    /// The admin listener's bound address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr().unwrap_or(self.config.admin_listen)
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The certificate in use, for HTTPS.
    pub fn certificate(&self) -> Option<&CertificateInfo> {
        self.tls.as_ref().map(|(_, info)| info)
    }

    /// The API key generated by this start, to be shown once.
    pub fn generated_key(&self) -> Option<&GeneratedKey> {
        self.generated_key.as_ref()
    }

    /// The URL to POST notifications to.
    pub fn listener_url(&self) -> String {
        format!(
            "{}://{}{}/listener",
            self.scheme(),
            self.public_addr(),
            self.config.base_path
        )
    }

    /// The text printed at start: where the service listens, the data dir, and a curl line.
    pub fn banner(&self) -> String {
        let mut lines = vec![
            format!("order-listener {} is listening", env!("CARGO_PKG_VERSION")),
            format!("  Listener API  POST {}", self.listener_url()),
            format!(
                "  admin API     http://{}  (/console/, /api/v1/…, /api/v1/stream, /metrics, /healthz, /readyz)",
                self.admin_addr()
            ),
            format!("  data dir      {}", self.config.data_dir.display()),
        ];
        let mut curl = String::from("curl");
        if let Some(info) = self.certificate() {
            if info.self_signed {
                lines.push(format!(
                    "  certificate   {} ({}self-signed; SHA-256 {})",
                    info.cert_file.display(),
                    if info.generated {
                        "generated now, "
                    } else {
                        ""
                    },
                    info.fingerprint
                ));
                curl.push_str(&format!(" --cacert {}", info.cert_file.display()));
            } else {
                lines.push(format!("  certificate   {}", info.cert_file.display()));
            }
        }
        let access = &self.config.access;
        let generated_only = access.clients.len() == 1
            && access.clients[0].name.as_str()
                == crate::http::auth::generated::GENERATED_KEY_CLIENT
            && !access.allow_anonymous;
        if access.allow_anonymous {
            lines.push("  credentials   none required (anonymous access is on): put an authenticating gateway in front".into());
        }
        match &self.generated_key {
            Some(generated) => {
                lines.push(format!("  API key       {}", generated.key.expose()));
                lines.push(format!(
                    "                shown only now; its hash is in {}. Delete that file to make a new key.",
                    generated.hash_file.display()
                ));
                curl.push_str(&format!(
                    " -H 'Authorization: Bearer {}'",
                    generated.key.expose()
                ));
            }
            None if generated_only => {
                lines.push(
                    "  credentials   Authorization: Bearer <API key printed at first start>".into(),
                );
                curl.push_str(" -H 'Authorization: Bearer $API_KEY'");
            }
            None if !access.allow_anonymous || !access.clients.is_empty() => {
                let names: Vec<&str> = access
                    .clients
                    .iter()
                    .map(|client| client.name.as_str())
                    .collect();
                lines.push(format!(
                    "  clients       {} (see `order-listener client list`)",
                    names.join(", ")
                ));
                if !access.allow_anonymous {
                    curl.push_str(" -H 'Authorization: Bearer $API_KEY'");
                }
            }
            None => {}
        }
        // A fresh eventId each start: re-running the same line is a resend (201, stored once),
        // and the line of a later start does not clash with it.
        let now = chrono::Utc::now();
        let sample = format!(
            r#"{{"eventId":"quick-start-{}","eventDate":"{}","eventType":"ServiceOrderCreationNotification","event":{{"id":"SO-1","state":"acknowledged","orderItem":[{{"id":"1","state":"acknowledged"}}]}}}}"#,
            now.timestamp_millis(),
            now.format("%Y-%m-%dT%H:%M:%S%.3fZ")
        );
        curl.push_str(&format!(
            " -H 'Content-Type: application/json' -d '{sample}' {}",
            self.listener_url()
        ));
        lines.push(String::new());
        lines.push("Try it:".into());
        lines.push(format!("  {curl}"));
        lines.join("\n")
    }

    /// Serves until `shutdown` is cancelled, then drains: listeners stop accepting, in-flight
    /// requests finish, delivery workers finish their attempts in flight, and the store commits
    /// its last batch.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let App {
            config,
            public,
            admin,
            tls,
            mut state,
            sinks,
            ..
        } = self;
        state.shutdown = shutdown.clone();
        if config.access.allow_anonymous {
            tracing::warn!(
                "anonymous access is enabled: anyone who reaches the Listener API can post events"
            );
        }
        let store = state.store.clone();
        let tasks = TaskTracker::new();
        for (sink_config, sink) in sinks {
            tracing::info!(sink = %sink_config.name, "delivering to sink");
            tasks.spawn(crate::forward::worker::run(
                store.clone(),
                sink,
                sink_config,
                state.metrics.clone(),
                shutdown.clone(),
            ));
        }
        if config.retention.is_enabled() {
            tracing::info!(
                events = ?config.retention.events.map(humantime::format_duration),
                delivered = ?config.retention.delivered.map(humantime::format_duration),
                "retention: pruning every {}",
                humantime::format_duration(config.retention.interval)
            );
            tasks.spawn(crate::retention::run(
                store.clone(),
                config.retention,
                shutdown.clone(),
            ));
        }
        tasks.spawn(server::serve(
            "public",
            public,
            public_router(state.clone()),
            tls.map(|(acceptor, _)| acceptor),
            config.limits,
            shutdown.clone(),
        ));
        tasks.spawn(server::serve(
            "admin",
            admin,
            admin::router(state),
            None,
            config.limits,
            shutdown.clone(),
        ));
        tasks.close();
        tasks.wait().await;
        store.close().await;
        tracing::info!("stopped; every acknowledged event is committed");
        Ok(())
    }
}
