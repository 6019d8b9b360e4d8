//! Shared test helpers: spawning the app, ONAP-shaped payloads, and the running binary.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use figment::providers::Env;
use order_listener::app::App;
use order_listener::config::{Config, Overrides};
use order_listener::secret::Secret;
use order_listener::store::Store;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The admin token every test app is given.
pub(crate) const ADMIN_TOKEN: &str = "test-admin-token";

static INIT: Once = Once::new();

/// Installs the TLS provider for the test client, and logs when `TEST_LOG=1`.
pub(crate) fn init() {
    INIT.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        if std::env::var_os("TEST_LOG").is_some() {
            order_listener::telemetry::init(order_listener::telemetry::LogFormat::Text, "debug");
        }
    });
}

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
        let response = self
            .client
            .get(format!("{}{path}", self.admin_base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("the admin API answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
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

/// The hex SHA-256 of `text`, as API key hashes are written in the configuration.
pub(crate) fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Asserts an ErrorRepresentation with this status and code; returns the body.
pub(crate) async fn assert_error(response: reqwest::Response, status: u16, code: u64) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json;charset=utf-8")
    );
    let body: Value = response.json().await.expect("an ErrorRepresentation body");
    assert_eq!(body["code"], json!(code), "code in {body}");
    assert_eq!(body["status"], json!(status), "status in {body}");
    assert!(
        body["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "reason in {body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
    body
}

/// A date as ONAP's EventFactory writes it: `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`, `millis` after a
/// fixed start.
pub(crate) fn onap_date(millis: i64) -> String {
    let start =
        chrono::DateTime::parse_from_rfc3339("2019-03-25T08:08:56.310Z").expect("a valid date");
    (start + chrono::Duration::milliseconds(millis))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A full ONAP order item, nulls included.
pub(crate) fn onap_item(id: &str, action: &str, state: &str) -> Value {
    json!({
        "orderMessage": [],
        "id": id,
        "action": action,
        "state": state,
        "percentProgress": "0",
        "@type": null,
        "@schemaLocation": null,
        "@baseType": null,
        "orderItemRelationship": [],
        "service": {
            "id": null, "href": null, "name": format!("service-{id}"), "serviceState": "active",
            "@type": null, "@schemaLocation": null,
            "serviceCharacteristic": [{"name": "speed", "valueType": null,
                "value": {"@type": null, "@schemaLocation": null, "serviceCharacteristicValue": "10"}}],
            "serviceRelationship": null, "relatedParty": null,
            "serviceSpecification": {"id": "90b476bc-0988-4417-bae9-41b376f0e1b6", "href": null, "name": null,
                "version": null, "targetServiceSchema": null, "@type": null, "@schemaLocation": null, "@baseType": null}
        },
        "orderItemMessage": []
    })
}

/// An ONAP notification: the envelope around the filtered order.
pub(crate) fn onap_event(
    event_id: &str,
    event_type: &str,
    millis: i64,
    order_id: &str,
    state: &str,
    items: Vec<Value>,
) -> Value {
    json!({
        "eventId": event_id,
        "eventDate": onap_date(millis),
        "eventType": event_type,
        "event": {
            "id": order_id,
            "href": format!("serviceOrder/{order_id}"),
            "externalId": format!("ext-{order_id}"),
            "state": state,
            "orderDate": onap_date(0),
            "completionDateTime": if matches!(state, "completed" | "failed") { json!(onap_date(millis)) } else { Value::Null },
            "orderItem": items
        }
    })
}

/// The notifications ONAP sends for one order whose items all complete: creation, each item
/// going inProgress then completed, and the order's completion.
pub(crate) fn onap_lifecycle(order_id: &str, item_count: usize) -> Vec<Value> {
    let ids: Vec<String> = (1..=item_count).map(|i| i.to_string()).collect();
    let all = |state: &str| {
        ids.iter()
            .map(|id| onap_item(id, "add", state))
            .collect::<Vec<_>>()
    };
    let mut events = vec![onap_event(
        &format!("{order_id}-created"),
        "ServiceOrderCreationNotification",
        0,
        order_id,
        "acknowledged",
        all("acknowledged"),
    )];
    let mut millis = 0;
    for (step, state) in ["inProgress", "completed"].into_iter().enumerate() {
        for id in &ids {
            millis += 7;
            events.push(onap_event(
                &format!("{order_id}-item-{id}-{step}"),
                "ServiceOrderItemStateChangeNotification",
                millis,
                order_id,
                "inProgress",
                vec![onap_item(id, "add", state)],
            ));
        }
    }
    events.push(onap_event(
        &format!("{order_id}-completed"),
        "ServiceOrderStateChangeNotification",
        millis + 1,
        order_id,
        "completed",
        all("completed"),
    ));
    events
}

/// The built binary.
pub(crate) fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_order-listener")
}

/// The binary running `serve` on port 0; knows its URL from the start-up banner. Killed when
/// dropped, so that a failing test leaves no process behind.
pub(crate) struct RunningBinary {
    /// The process.
    pub child: Child,
    /// The listener URL it printed.
    pub listener_url: String,
    /// The start-up banner, line by line.
    pub banner: Vec<String>,
}

impl Drop for RunningBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `order-listener serve --plain-http --allow-anonymous` on `data_dir` and waits for its
/// banner.
pub(crate) fn start_binary(data_dir: &Path) -> RunningBinary {
    start_binary_with(data_dir, None)
}

/// As [`start_binary`], with a config file.
pub(crate) fn start_binary_with(data_dir: &Path, config: Option<&Path>) -> RunningBinary {
    let mut command = Command::new(binary());
    command.args([
        "serve",
        "--plain-http",
        "--allow-anonymous",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    spawn_serve(command.arg("--data-dir").arg(data_dir))
}

/// Spawns a prepared `serve` command and reads its banner, up to the curl line after
/// "Try it:".
pub(crate) fn spawn_serve(command: &mut Command) -> RunningBinary {
    spawn_serve_logging(command.env("RUST_LOG", "warn"), Stdio::inherit())
}

/// As [`start_binary_with`], logging at debug level into the file `log`.
pub(crate) fn start_binary_logging(data_dir: &Path, config: &Path, log: &Path) -> RunningBinary {
    start_binary_logging_at(data_dir, config, log, Some("debug"))
}

/// As [`start_binary_logging`], with `RUST_LOG` set to `rust_log`, or unset so that the
/// configuration's `log_level` rules.
pub(crate) fn start_binary_logging_at(
    data_dir: &Path,
    config: &Path,
    log: &Path,
    rust_log: Option<&str>,
) -> RunningBinary {
    let mut command = Command::new(binary());
    command
        .args(["serve", "--plain-http", "--allow-anonymous"])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir);
    match rust_log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    let file = std::fs::File::create(log).expect("the log file is created");
    spawn_serve_logging(&mut command, Stdio::from(file))
}

/// Spawns a prepared `serve` command with its log going to `stderr`, and reads its banner.
pub(crate) fn spawn_serve_logging(command: &mut Command, stderr: Stdio) -> RunningBinary {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    loop {
        let line = lines
            .next()
            .expect("the banner ends with a curl line")
            .expect("stdout is text");
        let last = banner
            .last()
            .is_some_and(|previous: &String| previous.starts_with("Try it:"));
        banner.push(line);
        if last {
            break;
        }
    }
    let listener_url = banner
        .iter()
        .find_map(|line| line.trim().strip_prefix("Listener API  POST "))
        .expect("the banner names the Listener API")
        .trim()
        .to_owned();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    RunningBinary {
        child,
        listener_url,
        banner,
    }
}

/// The value the banner prints after `label` (`"admin token"`, `"console"`, …).
pub(crate) fn banner_value(banner: &[String], label: &str) -> Option<String> {
    banner.iter().find_map(|line| {
        let rest = line.trim().strip_prefix(label)?;
        rest.starts_with(' ').then(|| rest.trim().to_owned())
    })
}

/// Runs the CLI with arguments and returns (exit success, stdout, stderr).
pub(crate) fn run_cli(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(binary())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the CLI runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// How long a test waits for something that should happen at once.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `probe` until it gives a value, or fails the test after [`PATIENCE`].
pub(crate) async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a service test needs from `.ci/run` (a URL, or a program's path), read from
/// `variable`. Without it, the test is skipped with a note saying what to set; but when `CI`
/// is set, a missing service is a failure, so that CI never passes by skipping.
pub(crate) fn service(variable: &str, to: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{variable} is not set, but CI is: set it to {to}"
            );
            eprintln!("skipped: set {variable} to {to}");
            None
        }
    }
}

/// Polls `probe` whenever the store announces an outbox change (a delivery recorded, a lease
/// taken), until it gives a value, or fails the test after [`PATIENCE`] without one.
pub(crate) async fn when_outbox_changes<T>(
    store: &Store,
    what: &str,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let mut outbox = store
        .commits()
        .expect("the store announces its commits")
        .outbox;
    loop {
        outbox.borrow_and_update();
        if let Some(value) = probe().await {
            return value;
        }
        tokio::time::timeout(PATIENCE, outbox.changed())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("the store runs");
    }
}

/// One request a [`WebhookReceiver`] got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    /// The body's `eventId`.
    pub event_id: String,
    /// The body's `event.id`, if any.
    pub order_id: Option<String>,
    /// The body's `eventDate`.
    pub event_date: String,
    /// The `webhook-id` header.
    pub webhook_id: String,
    /// The `Order-Listener-Dialect` header (empty when absent).
    pub dialect: String,
    /// The `Order-Listener-Source` header (empty when absent).
    pub source: String,
    /// Whether a `webhook-signature` (`v1,…`) came with it.
    pub signed: bool,
    /// The `traceparent` and `tracestate` headers (empty when absent).
    pub trace: (String, String),
    /// What the receiver answered.
    pub answered: u16,
}

impl Received {
    /// Whether the receiver took it (answered 2xx).
    pub(crate) fn delivered(&self) -> bool {
        (200..300).contains(&self.answered)
    }
}

/// The one webhook receiver of the tests: on port 0, it answers every POST to `/hook` with the
/// status it is told and records every request, in arrival order. Stopped when dropped.
pub(crate) struct WebhookReceiver {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    answer: Arc<AtomicU16>,
    seen: watch::Receiver<Vec<Received>>,
    server: JoinHandle<()>,
}

#[derive(Clone)]
struct ReceiverState {
    answer: Arc<AtomicU16>,
    seen: Arc<watch::Sender<Vec<Received>>>,
}

async fn receive(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> StatusCode {
    let answered = state.answer.load(Ordering::SeqCst);
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let received = Received {
        event_id: event["eventId"].as_str().unwrap_or_default().to_owned(),
        order_id: event["event"]["id"].as_str().map(str::to_owned),
        event_date: event["eventDate"].as_str().unwrap_or_default().to_owned(),
        webhook_id: header("webhook-id"),
        dialect: header("order-listener-dialect"),
        source: header("order-listener-source"),
        signed: header("webhook-signature").starts_with("v1,"),
        trace: (header("traceparent"), header("tracestate")),
        answered,
    };
    state.seen.send_modify(|seen| seen.push(received));
    StatusCode::from_u16(answered).expect("a valid status to answer with")
}

impl WebhookReceiver {
    /// Starts a receiver that answers `answer`.
    pub(crate) async fn start(answer: u16) -> WebhookReceiver {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("a free port");
        let url = format!(
            "http://{}/hook",
            listener.local_addr().expect("a bound address")
        );
        let answer = Arc::new(AtomicU16::new(answer));
        let (sender, seen) = watch::channel(Vec::new());
        let state = ReceiverState {
            answer: answer.clone(),
            seen: Arc::new(sender),
        };
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state);
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("the receiver serves");
        });
        WebhookReceiver {
            url,
            answer,
            seen,
            server,
        }
    }

    /// From now on, answer with `status`.
    pub(crate) fn answer(&self, status: u16) {
        self.answer.store(status, Ordering::SeqCst);
    }

    /// The eventIds of the requests answered with 2xx, in arrival order.
    pub(crate) fn delivered(&self) -> Vec<String> {
        self.seen
            .borrow()
            .iter()
            .filter(|received| received.delivered())
            .map(|received| received.event_id.clone())
            .collect()
    }

    /// Waits until what was received satisfies `done`, or fails the test after [`PATIENCE`];
    /// returns every request so far.
    pub(crate) async fn wait_for(
        &self,
        what: &str,
        done: impl FnMut(&Vec<Received>) -> bool,
    ) -> Vec<Received> {
        let mut seen = self.seen.clone();
        match tokio::time::timeout(PATIENCE, seen.wait_for(done)).await {
            Ok(Ok(seen)) => seen.clone(),
            _ => panic!(
                "timed out waiting for the receiver to get {what}; it got {:?}",
                self.seen.borrow()
            ),
        }
    }

    /// Waits until every one of `expected` has been answered with a 2xx; returns every request
    /// so far.
    pub(crate) async fn until_delivered(&self, expected: &BTreeSet<String>) -> Vec<Received> {
        self.wait_for(&format!("every one of {expected:?} delivered"), |seen| {
            let delivered: BTreeSet<&String> = seen
                .iter()
                .filter(|received| received.delivered())
                .map(|received| &received.event_id)
                .collect();
            expected.iter().all(|id| delivered.contains(id))
        })
        .await
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}
