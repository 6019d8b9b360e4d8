//! The app under test in process: the one way tests build a configuration, and the running
//! app with the requests tests send it.

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::providers::Env;
use order_listener::app::App;
use order_listener::config::{Config, Overrides};
use order_listener::secret::Secret;
use order_listener::store::Store;
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{ADMIN_TOKEN, init};

/// A running app and what a test needs to talk to it.
pub(crate) struct TestApp {
    /// `http://127.0.0.1:PORT/externalapi/listener/v1/listener`.
    pub listener_url: String,
    /// `http://127.0.0.1:PORT` of the public port.
    pub public_base: String,
    /// `http://127.0.0.1:PORT` of the admin port.
    pub admin_base: String,
    /// An HTTP client.
    pub client: reqwest::Client,
    /// The store the app writes to.
    pub store: Store,
    /// The app's data directory.
    pub data_dir: PathBuf,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    /// The temporary directory the app lives in, removed when the app is dropped.
    pub _dir: Option<TempDir>,
}

/// The one way tests build a configuration, as `serve` loads one: command-line overrides
/// (plain HTTP, anonymous, both ports 0, a data directory), an optional configuration file,
/// no environment, and the admin token [`ADMIN_TOKEN`].
pub(crate) struct TestConfig {
    overrides: Overrides,
    file: Option<PathBuf>,
}

impl TestConfig {
    /// Plain HTTP, anonymous, both ports 0, the data in `data_dir`.
    pub(crate) fn new(data_dir: impl Into<PathBuf>) -> TestConfig {
        TestConfig {
            overrides: Overrides {
                listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                data_dir: Some(data_dir.into()),
                plain_http: Some(true),
                allow_anonymous: Some(true),
                ..Overrides::default()
            },
            file: None,
        }
    }

    /// Reads `path` as the configuration file, as `--config` does.
    pub(crate) fn file(mut self, path: impl Into<PathBuf>) -> TestConfig {
        self.file = Some(path.into());
        self
    }

    /// Leaves the transport and access to the file: no `--plain-http`, no `--allow-anonymous`.
    pub(crate) fn transport_and_access_from_file(self) -> TestConfig {
        self.overrides(|overrides| {
            overrides.plain_http = None;
            overrides.allow_anonymous = None;
        })
    }

    /// Changes the command-line overrides.
    pub(crate) fn overrides(mut self, change: impl FnOnce(&mut Overrides)) -> TestConfig {
        change(&mut self.overrides);
        self
    }

    /// The configuration; fails the test if it does not load.
    pub(crate) fn build(self) -> Config {
        let mut config = Config::load_from(
            self.file.as_deref(),
            Env::prefixed("ORDER_LISTENER_IT_UNUSED_"),
            &self.overrides,
        )
        .expect("the test configuration is valid");
        config.admin_token = Some(Secret::new(ADMIN_TOKEN));
        config
    }
}

/// A fresh temporary directory with `toml` written as its `config.toml`; the configuration
/// reads that file and keeps its data in `data/` there.
pub(crate) fn config_dir(toml: &str) -> (TempDir, TestConfig) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("config.toml");
    std::fs::write(&file, toml).expect("the configuration file is written");
    let config = TestConfig::new(dir.path().join("data")).file(file);
    (dir, config)
}

/// Loads `toml` as `serve` would load its `--config` file (in a fresh directory, which is
/// returned) and returns why it does not load, with its context; fails the test if it loads.
pub(crate) fn config_error(toml: &str) -> (TempDir, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("config.toml");
    std::fs::write(&file, toml).expect("the configuration file is written");
    let overrides = Overrides {
        data_dir: Some(dir.path().join("data")),
        ..Overrides::default()
    };
    let error = Config::load(Some(&file), &overrides)
        .map(|_| ())
        .expect_err("the configuration is refused");
    (dir, format!("{error:#}"))
}

/// Starts the app with `toml` as its configuration file (plain HTTP, anonymous, port 0).
pub(crate) async fn spawn_app_with_file(toml: &str) -> TestApp {
    spawn_app_from_file(toml, |config| config).await
}

/// As [`spawn_app_with_file`], with the configuration changed by `configure`.
pub(crate) async fn spawn_app_from_file(
    toml: &str,
    configure: impl FnOnce(TestConfig) -> TestConfig,
) -> TestApp {
    init();
    let (dir, config) = config_dir(toml);
    let mut app = start(configure(config).build()).await;
    app._dir = Some(dir);
    app
}

/// Starts the app with the test configuration.
pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app with the test configuration, changed by `customize`.
pub(crate) async fn spawn_app_with(customize: impl FnOnce(&mut Config)) -> TestApp {
    init();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = TestConfig::new(dir.path()).build();
    customize(&mut config);
    let mut app = start(config).await;
    app._dir = Some(dir);
    app
}

/// Starts the app with exactly this configuration.
pub(crate) async fn start(config: Config) -> TestApp {
    init();
    let data_dir = config.data_dir.clone();
    let app = App::build(config).await.expect("the app starts");
    let listener_url = app.listener_url();
    let public_base = format!("{}://{}", app.scheme(), app.public_addr());
    let admin_base = format!("http://{}", app.admin_addr());
    let store = app.store().clone();
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(app.run(shutdown.clone()));
    TestApp {
        listener_url,
        public_base,
        admin_base,
        client: reqwest::Client::new(),
        store,
        data_dir,
        shutdown,
        handle: Some(handle),
        _dir: None,
    }
}

impl TestApp {
    /// POSTs a JSON body with the ONAP content type.
    pub(crate) async fn post(&self, body: &Value) -> reqwest::Response {
        self.post_raw(body.to_string(), Some("application/json;charset=utf-8"))
            .await
    }

    /// POSTs bytes with the given content type.
    pub(crate) async fn post_raw(
        &self,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
    ) -> reqwest::Response {
        self.post_raw_to(&self.listener_url, body, content_type)
            .await
    }

    /// POSTs bytes with the given content type to `url` (another spelling of a listener path).
    pub(crate) async fn post_raw_to(
        &self,
        url: &str,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.client.post(url).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send().await.expect("the listener answers")
    }

    /// GETs `url`, with `token` as a bearer token if given.
    pub(crate) async fn get(
        &self,
        url: impl reqwest::IntoUrl,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the app answers")
    }

    /// POSTs a JSON body to the Listener API with `key` as a bearer token.
    pub(crate) async fn post_as(&self, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(&self.listener_url)
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("the listener answers")
    }

    /// GETs an admin API path with the admin token; returns the status and the JSON body.
    pub(crate) async fn admin_get(&self, path: &str) -> (u16, Value) {
        bearer_json(
            &self.client,
            &format!("{}{path}", self.admin_base),
            ADMIN_TOKEN,
        )
        .await
    }

    /// The Prometheus exposition of the admin port's `/metrics`.
    pub(crate) async fn metrics_text(&self) -> String {
        self.get(format!("{}/metrics", self.admin_base), None)
            .await
            .text()
            .await
            .expect("the metrics are text")
    }

    /// The last error of `sink`'s first dead letter (empty when it has none).
    pub(crate) async fn dead_letter_error(&self, sink: &str) -> String {
        let dead = self
            .store
            .dead_letters(Some(&sink.parse().unwrap()), None, 10)
            .await
            .unwrap();
        dead.first()
            .and_then(|letter| letter.last_error.clone())
            .unwrap_or_default()
    }

    /// Every stored event, newest first (up to the store's listing limit of 10,000).
    pub(crate) async fn stored_events(&self) -> Vec<order_listener::store::EventRecord> {
        let filter = order_listener::store::EventFilter {
            limit: 10_000,
            ..Default::default()
        };
        self.store
            .events(filter)
            .await
            .expect("the store lists its events")
    }

    /// Stops the app gracefully and waits for it.
    pub(crate) async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            handle
                .await
                .expect("the app task ends")
                .expect("the app stops cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// GETs `path` of the admin API at `admin_base` (an app started some other way than
/// [`start`], such as the binary) with the admin token; returns the status and the JSON body.
pub(crate) async fn admin_json(admin_base: &str, path: &str) -> (u16, Value) {
    bearer_json(
        &reqwest::Client::new(),
        &format!("{admin_base}{path}"),
        ADMIN_TOKEN,
    )
    .await
}

/// GETs `url` with `token` as a bearer token; returns the status and the JSON body (null when
/// the body is not JSON).
pub(crate) async fn bearer_json(client: &reqwest::Client, url: &str, token: &str) -> (u16, Value) {
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("the admin API answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}
