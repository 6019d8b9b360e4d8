//! Configuration: the TOML file, then `ORDER_LISTENER_*` environment variables, then flags,
//! parsed once at start-up into typed [`Config`]. Nothing reads the environment after this.

pub mod addresses;
pub mod clients;
mod console;
pub mod http_auth;
pub mod listeners;
pub mod reconcile;
pub mod retention;
pub mod seller_apis;
pub mod sinks;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Serialized};
use serde::{Deserialize, Serialize};

pub use self::console::ConsoleConfig;
use self::console::ConsoleSettings;
use crate::domain::envelope::ParseOptions;
use crate::secret::Secret;
use crate::store::{Storage, WriterOptions};
use crate::telemetry::{LogFilter, LogFormat};

/// The commented configuration file that `order-listener init` writes.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

/// The embedded store's file in the data directory, unless `database_url` names another.
pub const EMBEDDED_STORE_FILE: &str = "events.sqlite3";

/// The prefix of every environment variable the listener reads.
pub const ENV_PREFIX: &str = "ORDER_LISTENER_";

/// The settings as written in the file and the environment, before checking.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Settings {
    #[serde(deserialize_with = "addresses::deserialize")]
    listen: SocketAddr,
    #[serde(deserialize_with = "addresses::deserialize")]
    admin_listen: SocketAddr,
    admin_public_url: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<Secret>,
    base_path: String,
    body_limit_bytes: usize,
    accept_service_inventory_events: bool,
    plain_http: bool,
    allow_anonymous: bool,
    admin_token: Option<Secret>,
    log_format: LogFormat,
    log_level: String,
    header_read_timeout_seconds: u64,
    body_read_timeout_seconds: u64,
    max_connections: usize,
    shutdown_grace_seconds: u64,
    commit_batch_max: usize,
    commit_queue_capacity: usize,
    outbox_lease_seconds: u64,
    tls: TlsSettings,
    console: ConsoleSettings,
    security: clients::SecuritySettings,
    anonymous: clients::AnonymousSettings,
    clients: BTreeMap<String, clients::ClientSettings>,
    sinks: BTreeMap<String, sinks::SinkSettings>,
    retention: retention::RetentionSettings,
    reconcile: reconcile::ReconcileSettings,
    dialects: BTreeMap<String, listeners::DialectSettings>,
    seller_apis: BTreeMap<String, seller_apis::SellerApiSettings>,
    seller_fetch: seller_apis::FetchSettings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TlsSettings {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            admin_public_url: None,
            data_dir: None,
            database_url: None,
            base_path: "/externalapi/listener/v1".into(),
            body_limit_bytes: 1024 * 1024,
            accept_service_inventory_events: false,
            plain_http: false,
            allow_anonymous: false,
            admin_token: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            header_read_timeout_seconds: 10,
            body_read_timeout_seconds: 30,
            max_connections: 1024,
            shutdown_grace_seconds: 10,
            commit_batch_max: 512,
            commit_queue_capacity: 4096,
            outbox_lease_seconds: 60,
            tls: TlsSettings::default(),
            console: ConsoleSettings::default(),
            security: clients::SecuritySettings::default(),
            anonymous: clients::AnonymousSettings::default(),
            clients: BTreeMap::new(),
            sinks: BTreeMap::new(),
            retention: retention::RetentionSettings::default(),
            reconcile: reconcile::ReconcileSettings::default(),
            dialects: BTreeMap::new(),
            seller_apis: BTreeMap::new(),
            seller_fetch: seller_apis::FetchSettings::default(),
        }
    }
}

/// Settings given on the command line. Only the flags that were given are set, so that they
/// override the file and the environment and nothing else.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Overrides {
    /// `--listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// `--admin-listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<SocketAddr>,
    /// `--data-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--database-url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// `--plain-http`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plain_http: Option<bool>,
    /// `--allow-anonymous`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_anonymous: Option<bool>,
    /// `--log-format`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

/// How the public listener speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP, for use behind a proxy and in tests.
    PlainHttp,
    /// HTTPS with the given certificate.
    Https(Certificate),
}

/// Where the server certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Certificate {
    /// PEM files given by the operator.
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// A self-signed certificate kept in this directory, generated on first start.
    SelfSigned {
        /// The directory.
        dir: PathBuf,
    },
}

/// Time limits that protect the listener from slow or stuck clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// For the request headers.
    pub header_read_timeout: Duration,
    /// For the whole body.
    pub body_read_timeout: Duration,
    /// Connections served at once, per listener.
    pub max_connections: usize,
    /// For in-flight requests at shutdown.
    pub shutdown_grace: Duration,
}

/// The checked configuration the program runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The public listener's address.
    pub listen: SocketAddr,
    /// The admin listener's address.
    pub admin_listen: SocketAddr,
    /// The admin listener's URL as clients reach it; unset means `http://` and the bound address.
    pub admin_public_url: Option<String>,
    /// Where local files live.
    pub data_dir: PathBuf,
    /// Where events are stored.
    pub storage: Storage,
    /// HTTP or HTTPS.
    pub transport: Transport,
    /// Who may post, how they prove it, and what they may do.
    pub access: clients::AccessConfig,
    /// The Listener API's path prefix, without a trailing slash.
    pub base_path: String,
    /// The dialects whose listeners the public port mounts, and where.
    pub listeners: Vec<listeners::Mount>,
    /// The largest body accepted.
    pub body_limit: usize,
    /// Which event types are accepted.
    pub parse: ParseOptions,
    /// The admin API's token.
    pub admin_token: Option<Secret>,
    /// Log line format.
    pub log_format: LogFormat,
    /// Log filter (`RUST_LOG`, when set, wins: `telemetry::chosen_filter`).
    pub log_level: LogFilter,
    /// Timeouts and bounds.
    pub limits: Limits,
    /// Group commit.
    pub writer: WriterOptions,
    /// Where accepted events are handed on: the configured sinks, and the internal
    /// `seller-api` sink when a seller API is configured.
    pub sinks: Vec<sinks::SinkConfig>,
    /// The sellers' Service Ordering APIs that reference-only events are resolved from.
    pub seller_apis: Vec<seller_apis::SellerApi>,
    /// The web console.
    pub console: ConsoleConfig,
    /// How long events and finished outbox rows are kept.
    pub retention: retention::Retention,
    /// How suspect orders are found.
    pub reconcile: reconcile::Reconcile,
    /// Settings given but not used, and why: `serve` logs each as a warning at start.
    pub ignored: Vec<String>,
}

/// The default data directory: the platform's, or `./order-listener-data` without a home.
pub fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "order-listener")
        .map(|dirs| dirs.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("order-listener-data"))
}

/// Reads the config file, rejecting unknown keys by name.
fn read_file(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text)
        .with_context(|| format!("the config file {} is not valid TOML", path.display()))?;
    let mut unknown = Vec::new();
    let checked: Result<Settings, _> =
        serde_ignored::deserialize(toml::Value::Table(table.clone()), |key| {
            unknown.push(key.to_string())
        });
    checked.with_context(|| format!("the config file {} has a bad value", path.display()))?;
    if !unknown.is_empty() {
        bail!(
            "the config file {} has unknown setting{} {}; `order-listener init` writes a file \
             that lists every setting",
            path.display(),
            if unknown.len() > 1 { "s" } else { "" },
            unknown.join(", ")
        );
    }
    Ok(table)
}

impl Config {
    /// Layers the file, the environment and the flags, then checks the result.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        Self::load_from(file, Env::prefixed(ENV_PREFIX).split("__"), overrides)
    }

    /// As [`Config::load`], with the environment given explicitly (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: Env,
        overrides: &Overrides,
    ) -> anyhow::Result<Config> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            figment = figment.merge(Serialized::defaults(read_file(path)?));
        }
        let mut settings: Settings = figment
            .merge(env)
            .merge(Serialized::defaults(overrides))
            .extract()
            .context("invalid configuration")?;
        if let Some(dir) = file.and_then(Path::parent) {
            settings.resolve_paths(dir);
        }
        Config::try_from(settings)
    }
}

impl Settings {
    /// Makes the file paths of the config file relative to its directory.
    fn resolve_paths(&mut self, dir: &Path) {
        let resolve = |path: &mut Option<PathBuf>| {
            if let Some(relative) = path.as_ref().filter(|path| path.is_relative()) {
                *path = Some(dir.join(relative));
            }
        };
        resolve(&mut self.tls.cert_file);
        resolve(&mut self.tls.key_file);
        resolve(&mut self.tls.client_ca_file);
        for api in self.seller_apis.values_mut() {
            resolve(&mut api.ca_cert);
        }
        for sink in self.sinks.values_mut() {
            resolve(&mut sink.ca_cert);
            resolve(&mut sink.client_cert);
            resolve(&mut sink.client_key);
        }
        for client in self.clients.values_mut() {
            if let Some(jwt) = &mut client.jwt {
                resolve(&mut jwt.public_key_file);
                resolve(&mut jwt.jwks_file);
            }
        }
    }
}

/// Parses `sqlite://PATH` and `postgres://…` URLs.
fn parse_database_url(url: &Secret) -> anyhow::Result<Storage> {
    let text = url.expose();
    if let Some(path) = text
        .strip_prefix("sqlite://")
        .or_else(|| text.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() {
            bail!(
                "database_url sqlite:// needs a file path, such as sqlite:///var/lib/order-listener/events.sqlite3"
            );
        }
        return Ok(Storage::Sqlite {
            path: PathBuf::from(path),
        });
    }
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        return Ok(Storage::Postgres { url: url.clone() });
    }
    bail!(
        "database_url must start with sqlite:// or postgres:// (the value is not shown: it may hold a password)"
    )
}

impl TryFrom<Settings> for Config {
    type Error = anyhow::Error;

    fn try_from(settings: Settings) -> anyhow::Result<Config> {
        let data_dir = settings.data_dir.unwrap_or_else(default_data_dir);
        let storage = match &settings.database_url {
            Some(url) if !url.expose().is_empty() => parse_database_url(url)?,
            _ => Storage::Sqlite {
                path: data_dir.join(EMBEDDED_STORE_FILE),
            },
        };
        let base_path = settings.base_path.trim_end_matches('/').to_owned();
        if !base_path.is_empty() && !base_path.starts_with('/') {
            bail!(
                "base_path must start with /, as in /externalapi/listener/v1 (got {base_path:?})"
            );
        }
        addresses::check(settings.listen, settings.admin_listen)?;
        let listeners = listeners::check(&base_path, &settings.dialects)?;
        let access = clients::check(
            settings.allow_anonymous,
            &settings.anonymous,
            &settings.clients,
            &settings.security,
            settings.tls.client_ca_file.clone(),
        )?;
        if settings.plain_http && access.client_ca_file.is_some() {
            bail!("tls.client_ca_file (mTLS) needs HTTPS: unset plain_http, or drop the client CA");
        }
        let mut ignored = Vec::new();
        let tls_files = [
            ("tls.cert_file", &settings.tls.cert_file),
            ("tls.key_file", &settings.tls.key_file),
        ];
        let tls_given: Vec<&str> = tls_files
            .iter()
            .filter(|(_, file)| file.is_some())
            .map(|(name, _)| *name)
            .collect();
        if settings.plain_http && !tls_given.is_empty() {
            ignored.push(format!(
                "{} ignored: --plain-http (plain_http) serves the Listener API without TLS",
                tls_given.join(" and ")
            ));
        }
        let transport = if settings.plain_http {
            Transport::PlainHttp
        } else {
            match (settings.tls.cert_file, settings.tls.key_file) {
                (Some(cert), Some(key)) => Transport::Https(Certificate::Files { cert, key }),
                (None, None) => Transport::Https(Certificate::SelfSigned {
                    dir: data_dir.join("tls"),
                }),
                _ => bail!(
                    "tls.cert_file and tls.key_file go together: set both, or neither for a self-signed certificate"
                ),
            }
        };
        let log_level: LogFilter = match settings.log_level.parse() {
            Ok(filter) => filter,
            Err(error) => bail!("log_level {}", crate::telemetry::error_chain(&error)),
        };
        if settings.body_limit_bytes == 0 {
            bail!("body_limit_bytes must be positive");
        }
        if settings.max_connections == 0 {
            bail!("max_connections must be positive");
        }
        let seller_apis = seller_apis::check(&settings.seller_apis)?;
        let mut sinks = sinks::check(&settings.sinks)?;
        sinks.extend(seller_apis::fetch_sink(
            &seller_apis,
            &settings.seller_fetch,
        )?);
        let admin_public_url = settings
            .admin_public_url
            .map(|url| url.trim_end_matches('/').to_owned());
        Ok(Config {
            listen: settings.listen,
            admin_listen: settings.admin_listen,
            admin_public_url,
            data_dir,
            storage,
            transport,
            access,
            base_path,
            listeners,
            body_limit: settings.body_limit_bytes,
            parse: ParseOptions {
                accept_service_inventory: settings.accept_service_inventory_events,
                as_stored: false,
            },
            admin_token: settings
                .admin_token
                .filter(|token| !token.expose().is_empty()),
            log_format: settings.log_format,
            log_level,
            limits: Limits {
                header_read_timeout: Duration::from_secs(
                    settings.header_read_timeout_seconds.max(1),
                ),
                body_read_timeout: Duration::from_secs(settings.body_read_timeout_seconds.max(1)),
                max_connections: settings.max_connections,
                shutdown_grace: Duration::from_secs(settings.shutdown_grace_seconds),
            },
            sinks,
            seller_apis,
            console: ConsoleConfig::try_from(&settings.console)?,
            retention: retention::check(&settings.retention)?,
            reconcile: reconcile::check(&settings.reconcile)?,
            ignored,
            writer: WriterOptions {
                max_batch: settings.commit_batch_max.max(1),
                queue_capacity: settings.commit_queue_capacity.max(1),
                lease: Duration::from_secs(settings.outbox_lease_seconds.max(1)),
                ..WriterOptions::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Env {
        Env::prefixed("ORDER_LISTENER_CONFIG_TEST_NOTHING_")
    }

    #[test]
    fn the_default_file_lists_valid_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, DEFAULT_CONFIG).unwrap();
        let config = Config::load_from(Some(&path), no_env(), &Overrides::default()).unwrap();
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 8443)));
        assert_eq!(config.base_path, "/externalapi/listener/v1");
        assert!(!config.access.allow_anonymous);
        assert!(config.access.clients.is_empty());
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test harness
    fn flags_beat_the_environment_which_beats_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1000\"\nadmin_listen = \"127.0.0.1:1001\"\nbase_path = \"/file\"\n").unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("OLTEST_ADMIN_LISTEN", "127.0.0.1:2001");
            jail.set_env("OLTEST_BASE_PATH", "/env");
            jail.set_env("OLTEST_ADMIN_TOKEN", "12345");
            let overrides = Overrides {
                plain_http: Some(true),
                ..Overrides::default()
            };
            let config = Config::load_from(
                Some(&path),
                Env::prefixed("OLTEST_").split("__"),
                &overrides,
            )
            .unwrap();
            assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 1000)));
            assert_eq!(
                config.admin_listen,
                SocketAddr::from(([127, 0, 0, 1], 2001))
            );
            assert_eq!(config.base_path, "/env");
            assert_eq!(config.transport, Transport::PlainHttp);
            assert_eq!(
                config.admin_token.as_ref().map(Secret::expose),
                Some("12345")
            );
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test harness
    fn a_client_secret_can_come_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[clients.seller_e.webhook]\ntolerance_seconds = 60\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            let key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
            jail.set_env(
                "OLTEST_CLIENTS__SELLER_E__WEBHOOK__KEYS",
                format!("[\"{key}\"]"),
            );
            let config = Config::load_from(
                Some(&path),
                Env::prefixed("OLTEST_").split("__"),
                &Overrides::default(),
            )
            .unwrap();
            let client = &config.access.clients[0];
            assert_eq!(client.name.as_str(), "seller_e");
            assert!(matches!(
                &client.credentials[0],
                clients::Credential::Webhook { keys, tolerance_seconds: 60 } if keys.len() == 1
            ));
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_in_the_file_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "lisen = \"127.0.0.1:1000\"\n[tls]\ncert = \"x\"\n").unwrap();
        let error = Config::load_from(Some(&path), no_env(), &Overrides::default()).unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains("lisen") && message.contains("tls.cert"),
            "{message}"
        );
    }

    #[test]
    fn expiry_dates_may_be_toml_dates_or_strings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let hash = format!("sha256:{}", "ab".repeat(32));
        std::fs::write(
            &path,
            format!(
                "[[clients.a.api_keys]]\nhash = \"{hash}\"\nexpires_at = 2027-01-01T00:00:00Z\n\
                 [[clients.b.api_keys]]\nhash = \"{hash}\"\nexpires_at = \"2027-01-01T01:00:00+01:00\"\n"
            ),
        )
        .unwrap();
        let config = Config::load_from(Some(&path), no_env(), &Overrides::default()).unwrap();
        let expiries: Vec<_> = config
            .access
            .clients
            .iter()
            .map(|client| match &client.credentials[0] {
                clients::Credential::ApiKey { expires_at, .. } => expires_at.unwrap().to_rfc3339(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(expiries, ["2027-01-01T00:00:00+00:00"; 2]);

        std::fs::write(
            &path,
            format!("[[clients.a.api_keys]]\nhash = \"{hash}\"\nexpires_at = 2027-01-01\n"),
        )
        .unwrap();
        let error = Config::load_from(Some(&path), no_env(), &Overrides::default()).unwrap_err();
        assert!(format!("{error:#}").contains("time zone"), "{error:#}");
    }

    #[test]
    fn database_urls_choose_the_backend() {
        let sqlite = parse_database_url(&Secret::new("sqlite:///tmp/x.sqlite3")).unwrap();
        assert_eq!(
            sqlite,
            Storage::Sqlite {
                path: PathBuf::from("/tmp/x.sqlite3")
            }
        );
        assert!(matches!(
            parse_database_url(&Secret::new("postgres://u:p@h/db")),
            Ok(Storage::Postgres { .. })
        ));
        let error = parse_database_url(&Secret::new("mysql://u:hunter2@h/db"))
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn secrets_do_not_debug_print() {
        assert_eq!(
            format!("{:?}", Secret::new("hunter2")),
            "Secret([redacted])"
        );
    }
}
