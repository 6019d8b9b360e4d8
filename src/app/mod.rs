//! Start-up and shutdown glue: binds the listeners, opens the store, prepares TLS and
//! credentials, then serves until cancelled and drains in order (requests, then the last
//! commit batch).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod reload;

pub use self::reload::{AccessReloader, Reloader, TlsReloader};
use crate::config::sinks::SinkConfig;
use crate::config::{Config, Transport};
use crate::forward::Sink;
use crate::forward::workers::Workers;
use crate::http::auth::Gate;
use crate::http::auth::generated::{
    AdminToken, GeneratedKey, default_client, generated_admin_token,
};
use crate::http::auth::overload::Overload;
use crate::http::tls::{CertificateInfo, Tls};
use crate::http::{AppState, admin, public_router, server};
use crate::metrics::Metrics;
use crate::store::Store;

/// `text` as one word of a POSIX shell command: as it is when the shell would read it so, else
/// in single quotes (in which nothing expands; a single quote is written `'\''`).
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Where the setting that chose `path` is changed: the data directory, or `database_url` for
/// a SQLite store elsewhere.
fn setting_of(config: &Config, path: &std::path::Path) -> &'static str {
    if path.starts_with(&config.data_dir) {
        "--data-dir (data_dir in the config file)"
    } else {
        "database_url"
    }
}

/// Creates the data directory and, for a SQLite store, checks that this user may write in
/// the store's directory and its files, so that a place it cannot use is named, with what to
/// do, before anything fails on it (the lock, SQLite's "attempt to write a readonly
/// database"). With PostgreSQL the data directory may stay read-only once it holds what a
/// first start writes there.
fn prepare_data_dir(config: &Config) -> anyhow::Result<()> {
    let fix = |what: &str, path: &std::path::Path| {
        format!(
            "{what} {}; choose another {}, or fix its permissions",
            path.display(),
            setting_of(config, path)
        )
    };
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).with_context(|| fix("cannot create the data directory", dir))?;
    let crate::store::Storage::Sqlite { path } = &config.storage else {
        return Ok(());
    };
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        let what = if parent == dir.as_path() {
            "cannot write in the data directory"
        } else {
            "cannot write in the store's directory"
        };
        writable_directory(parent).with_context(|| fix(what, parent))?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = std::path::PathBuf::from(file);
        if file.exists() {
            writable(&file).with_context(|| fix("cannot write the store's file", &file))?;
        }
    }
    Ok(())
}

/// Whether this user may write `path` (`access(2)`: root may write nearly anything).
fn writable(path: &std::path::Path) -> std::io::Result<()> {
    rustix::fs::access(path, rustix::fs::Access::WRITE_OK).map_err(std::io::Error::from)
}

/// Whether `path` is a directory this user may create files in.
fn writable_directory(path: &std::path::Path) -> std::io::Result<()> {
    if !std::fs::metadata(path)?.is_dir() {
        return Err(std::io::ErrorKind::NotADirectory.into());
    }
    writable(path)
}

/// Takes the lock that keeps a second `serve` and `restore` off a SQLite store.
fn lock_store(config: &Config) -> anyhow::Result<Option<std::fs::File>> {
    use crate::store::sqlite::backup::{BackupError, lock_for_serve};
    let crate::store::Storage::Sqlite { path } = &config.storage else {
        return Ok(None);
    };
    let choose = if *path == config.data_dir.join(crate::config::EMBEDDED_STORE_FILE) {
        "one data directory serves one listener; stop the other or choose another --data-dir"
    } else {
        "one store serves one listener; stop the other or choose another database_url"
    };
    match lock_for_serve(path) {
        Ok(lock) => Ok(Some(lock)),
        Err(error @ BackupError::InUse(_)) => Err(anyhow::anyhow!("{error}: {choose}")),
        Err(other) => Err(anyhow::Error::new(other).context(format!(
            "cannot lock the store; choose another {}, or fix the permissions of its directory",
            setting_of(config, path)
        ))),
    }
}

/// A listener that is bound and ready to serve.
pub struct App {
    config: Config,
    public: TcpListener,
    admin: TcpListener,
    /// HTTPS, and its certificate as loaded at start.
    tls: Option<(Arc<Tls>, CertificateInfo)>,
    state: AppState,
    generated_key: Option<GeneratedKey>,
    /// The admin token generated by this start, and the console's one-time login link.
    generated_admin: Option<(GeneratedKey, String)>,
    sinks: Vec<(SinkConfig, Arc<Sink>)>,
    /// The tasks of `run`, and what stops them.
    tasks: TaskTracker,
    stop: CancellationToken,
    /// The sinks' delivery workers, started by `run`, changed by a reload.
    workers: Arc<Workers>,
    /// The retention settings the pruning task follows.
    retention: tokio::sync::watch::Sender<crate::config::retention::Retention>,
    /// Held while this `serve` uses a SQLite store, so that `restore` refuses to replace it.
    _serve_lock: Option<std::fs::File>,
}

impl App {
    /// Binds both listeners and opens the store. Fails with a message that says what to fix.
    pub async fn build(mut config: Config) -> anyhow::Result<App> {
        prepare_data_dir(&config)?;
        let serve_lock = lock_store(&config)?;
        let public = server::bind(config.listen, "Listener API", "listen").await?;
        let admin = server::bind(config.admin_listen, "admin API", "admin_listen").await?;
        let metrics = Arc::new(Metrics::new());
        let tls = match &config.transport {
            Transport::PlainHttp => None,
            Transport::Https(certificate) => {
                let tls = Tls::load(
                    certificate,
                    config.listen,
                    config.access.client_ca_file.as_deref(),
                    metrics.clone(),
                )?;
                let info = (*tls.info()).clone();
                Some((Arc::new(tls), info))
            }
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
        // With no admin token configured, one is generated on first start (its hash is kept in
        // the data directory), so that a new user can open the console.
        let (admin_token, generated_admin_token) = match &config.admin_token {
            Some(token) => (AdminToken::Configured(token.clone()), None),
            None => generated_admin_token(&config.data_dir)?,
        };
        let routes = config
            .sinks
            .iter()
            .filter(|sink| sink.enabled)
            .map(|sink| sink.route())
            .collect();
        let store =
            Store::open_with_routes(&config.storage, config.writer, routes, metrics.clone())
                .await
                .map_err(|error| anyhow::anyhow!(crate::telemetry::error_chain(&error)))
                .context("cannot open the store")?;
        let sinks = config
            .sinks
            .iter()
            .filter(|sink| sink.enabled)
            .map(|sink| {
                let built = Sink::new(sink, &config.seller_apis, &store, &metrics)?;
                Ok((sink.clone(), Arc::new(built)))
            })
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
            sinks: Arc::new(arc_swap::ArcSwap::from_pointee(
                sinks.iter().map(|(sink, _)| sink.name.clone()).collect(),
            )),
            metrics,
            store,
            gate: Arc::new(arc_swap::ArcSwap::from_pointee(Gate::new(&config.access))),
            overload: Arc::new(Overload::new(
                config.access.max_in_flight,
                config.access.max_queued,
            )),
            admin_token: Some(Arc::new(admin_token)),
            body_limit: config.body_limit,
            body_read_timeout: config.limits.body_read_timeout,
            parse: config.parse,
            admin_public_url: admin_url.clone().into(),
            public_url: format!(
                "{}://{}",
                if tls.is_some() { "https" } else { "http" },
                public.local_addr().unwrap_or(config.listen)
            )
            .into(),
            base_path: config.base_path.clone().into(),
            listeners: config.listeners.clone().into(),
            reconcile: config.reconcile,
            // Replaced by the token `run` is given.
            shutdown: CancellationToken::new(),
        };
        let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
        let workers = Arc::new(Workers::new(
            state.store.clone(),
            state.metrics.clone(),
            tasks.clone(),
            stop.clone(),
        ));
        let (retention, _) = tokio::sync::watch::channel(config.retention);
        Ok(App {
            tasks,
            stop,
            workers,
            retention,
            config,
            public,
            admin,
            tls,
            generated_admin: match generated_admin_token {
                Some(token) => {
                    let code = state
                        .console
                        .issue_login_code()
                        .context("cannot make the console's login link")?;
                    Some((token, format!("{admin_url}/console/login?code={code}")))
                }
                None => None,
            },
            state,
            generated_key,
            sinks,
            _serve_lock: serve_lock,
        })
    }

    /// A handle that applies a newly loaded configuration to the running app.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            access: self.access_reloader(),
            tls: self.tls_reloader(),
            workers: self.workers.clone(),
            retention: self.retention.clone(),
            sink_names: self.state.sinks.clone(),
            store: self.state.store.clone(),
            log_level: Arc::new(std::sync::Mutex::new(self.config.log_level.clone())),
        }
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

    /// The public listener's TLS, to reload (on SIGHUP); none with plain HTTP.
    pub fn tls_reloader(&self) -> Option<TlsReloader> {
        self.tls.as_ref().map(|(tls, _)| TlsReloader(tls.clone()))
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

    /// The text printed at start: where the service listens, the data dir, and a curl line
    /// that works when pasted into a POSIX shell (`$API_KEY` in double quotes, so that the
    /// shell expands it; every other word as it is meant, whatever the paths hold).
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
                let cert_file = info.cert_file.display().to_string();
                curl.push_str(&format!(" --cacert {}", shell_word(&cert_file)));
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
                curl.push_str(r#" -H "Authorization: Bearer $API_KEY""#);
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
                    curl.push_str(r#" -H "Authorization: Bearer $API_KEY""#);
                }
            }
            None => {}
        }
        if let Some((token, login)) = &self.generated_admin {
            lines.push(format!("  admin token   {}", token.key.expose()));
            lines.push(format!(
                "                shown only now; its hash is in {}. Delete that file to make a new one, or set ORDER_LISTENER_ADMIN_TOKEN.",
                token.hash_file.display()
            ));
            lines.push(format!("  console       {login}"));
            lines.push(
                "                opens the console once, within an hour; then log in with the admin token."
                    .into(),
            );
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
            shell_word(&self.listener_url())
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
            tasks,
            stop,
            workers,
            retention,
            _serve_lock: serve_lock,
            ..
        } = self;
        // Everything `run` started stops with `shutdown`.
        let shutdown = {
            let (outer, inner) = (shutdown, stop.clone());
            tokio::spawn(async move {
                outer.cancelled().await;
                inner.cancel();
            });
            stop
        };
        state.shutdown = shutdown.clone();
        for setting in &config.ignored {
            tracing::warn!("{setting}");
        }
        if config.access.allow_anonymous {
            tracing::warn!(
                "anonymous access is enabled: anyone who reaches the Listener API can post events"
            );
        }
        let store = state.store.clone();
        workers.start(sinks).await;
        let settings = retention.subscribe();
        if config.retention.is_enabled() {
            tracing::info!(
                events = ?config.retention.events.map(humantime::format_duration),
                delivered = ?config.retention.delivered.map(humantime::format_duration),
                "retention: pruning every {}",
                humantime::format_duration(config.retention.interval)
            );
        }
        // Always running, so that a reload can turn retention on.
        tasks.spawn(crate::retention::run(
            store.clone(),
            settings,
            shutdown.clone(),
        ));
        if let Some((tls, _)) = &tls {
            tasks.spawn(tls.clone().watch(shutdown.clone()));
        }
        if !config.seller_apis.is_empty() {
            let reconciler = crate::reconcile::Reconciler::new(
                &config.seller_apis,
                store.clone(),
                state.metrics.clone(),
            )?;
            tasks.spawn(crate::reconcile::sweep::run(
                Arc::new(reconciler),
                store.clone(),
                config.reconcile,
                state.metrics.clone(),
                shutdown.clone(),
            ));
        }
        tasks.spawn(server::serve(
            "public",
            public,
            public_router(state.clone()),
            tls.map(|(tls, _)| tls),
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
        // Only now may `restore` replace the store.
        drop(serve_lock);
        tracing::info!("stopped; every acknowledged event is committed");
        Ok(())
    }
}
