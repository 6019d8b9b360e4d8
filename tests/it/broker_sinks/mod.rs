//! The broker sinks added for issue 16 (Redis Streams, MQTT, Kafka), each against its real
//! server on this machine and read back with a client of the test's own, through the same four
//! scenarios: filters; the server down and then back (every event arrives, each order's in
//! eventDate order); a dead letter, then `dead-letters retry` with the real binary; a SIGKILL
//! during forwarding, after which duplicates are counted.
//!
//! "Down" is a TCP relay between the sink and the server that the test cuts ([`Relay`]): the
//! server is real, only the path to it fails, as a network or a restart would make it.

mod kafka;
mod mqtt;
mod redis_streams;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::forwarding::{ids, lifecycles, post_acknowledged, unique};
use crate::helpers::*;

/// One message a test's consumer read, in the order the server holds or sent them.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    /// The body's `eventId`.
    pub event_id: String,
    /// The body's `event.id`.
    pub order_id: Option<String>,
    /// The body's `eventDate`.
    pub event_date: String,
}

impl Message {
    /// The message of an ONAP body.
    pub(crate) fn of_body(body: &[u8]) -> Message {
        let event: Value = serde_json::from_slice(body).expect("the body is the event's JSON");
        Message {
            event_id: event["eventId"].as_str().unwrap_or_default().to_owned(),
            order_id: event["event"]["id"].as_str().map(str::to_owned),
            event_date: event["eventDate"].as_str().unwrap_or_default().to_owned(),
        }
    }
}

/// How many times each eventId came.
fn counts(messages: &[Message]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for message in messages {
        *counts.entry(message.event_id.as_str()).or_default() += 1;
    }
    counts
}

/// The messages beyond the first of each eventId.
pub(crate) fn duplicates(messages: &[Message]) -> usize {
    counts(messages).values().map(|count| count - 1).sum()
}

/// Asserts that exactly `expected` came, each once.
pub(crate) fn assert_each_once(messages: &[Message], expected: &BTreeSet<String>) {
    let counts = counts(messages);
    let got: BTreeSet<String> = counts.keys().map(|id| (*id).to_owned()).collect();
    assert_eq!(&got, expected, "exactly the expected events");
    assert!(
        counts.values().all(|count| *count == 1),
        "each once: {counts:?}"
    );
}

/// Asserts that within each order the messages came in eventDate order.
pub(crate) fn assert_in_order_per_order(messages: &[Message]) {
    let mut last: HashMap<&str, &str> = HashMap::new();
    for message in messages {
        let order = message.order_id.as_deref().unwrap_or_default();
        if let Some(previous) = last.get(order) {
            assert!(
                *previous <= message.event_date.as_str(),
                "order {order}: {} came after an event of {previous}",
                message.event_date
            );
        }
        last.insert(order, &message.event_date);
    }
}

/// Reads until `expected` all came; returns every message read.
pub(crate) async fn until_all(
    expected: &BTreeSet<String>,
    mut read: impl AsyncFnMut() -> Vec<Message>,
) -> Vec<Message> {
    eventually("every expected event at the server", async || {
        let messages = read().await;
        let got: BTreeSet<&String> = messages.iter().map(|message| &message.event_id).collect();
        expected
            .iter()
            .all(|id| got.contains(id))
            .then_some(messages)
    })
    .await
}

/// A TCP relay on port 0 to a real server, which the test can cut: while down, it closes every
/// connection it has and every new one at once.
pub(crate) struct Relay {
    /// Where the sink connects.
    pub addr: SocketAddr,
    up: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Relay {
    /// Starts a relay to `target`, up.
    pub(crate) async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("a free port");
        let addr = listener.local_addr().expect("a bound address");
        let (up, watching) = watch::channel(true);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !*watching.borrow() {
                    continue;
                }
                let mut watching = watching.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watching.wait_for(|up| !up) => {}
                    }
                });
            }
        });
        Relay { addr, up, task }
    }

    /// Cuts the path to the server.
    pub(crate) fn down(&self) {
        self.up.send_replace(false);
    }

    /// Lets connections through again.
    pub(crate) fn up(&self) {
        self.up.send_replace(true);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
        self.up.send_replace(false);
    }
}

/// The host and port of a service URL (`redis://127.0.0.1:6379`), resolved.
pub(crate) fn socket_of(url: &str) -> SocketAddr {
    let parsed = reqwest::Url::parse(url).expect("a service URL");
    let host = parsed.host_str().expect("a host");
    let port = parsed.port().expect("a port");
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .expect("the host resolves")
        .next()
        .expect("an address")
}

/// The app in process, with its configuration file, for the CLI to use the same store.
pub(crate) struct Fixture {
    /// The app.
    pub app: TestApp,
    config_path: PathBuf,
    _dir: TempDir,
}

impl Fixture {
    /// Starts the app with `toml`.
    pub(crate) async fn start(toml: &str) -> Fixture {
        init();
        let (dir, config) = config_dir(toml);
        let config_path = dir.path().join("config.toml");
        let app = start(config.build()).await;
        Fixture {
            app,
            config_path,
            _dir: dir,
        }
    }

    /// Runs the real binary with `args`, then the app's `--config` and `--data-dir`.
    pub(crate) async fn cli(&self, args: &[&str]) -> (bool, String, String) {
        run_cli_on(args, &self.config_path, &self.app.data_dir).await
    }

    /// Waits until `sink`'s outbox counts satisfy `done`.
    pub(crate) async fn until_sink(
        &self,
        sink: &str,
        what: &str,
        done: impl Fn(&order_listener::store::SinkStatus) -> bool,
    ) {
        when_outbox_changes(&self.app.store, what, async || {
            let statuses = self.app.store.sink_statuses().await.unwrap();
            statuses
                .iter()
                .any(|status| status.name.as_str() == sink && done(status))
                .then_some(())
        })
        .await;
    }
}

/// The filter scenario: `all` takes every event, `completed` (`order_states = ["completed"]`)
/// only the completions. Resends are stored once and handed on once.
pub(crate) async fn filters(
    toml: &str,
    read_all: impl AsyncFnMut() -> Vec<Message>,
    read_completed: impl AsyncFnMut() -> Vec<Message>,
) -> Fixture {
    let fixture = Fixture::start(toml).await;
    let events = lifecycles(&unique("SO-f"), 3);
    for event in events.iter().chain(&events[..2]) {
        assert_eq!(fixture.app.post(event).await.status().as_u16(), 201);
    }
    let every = ids(&events);
    let all = until_all(&every, read_all).await;
    assert_each_once(&all, &every);
    assert_in_order_per_order(&all);
    let completed = ids(events
        .iter()
        .filter(|event| event["event"]["state"] == "completed"));
    assert_eq!(completed.len(), 3);
    let mut read_completed = read_completed;
    until_all(&completed, &mut read_completed).await;
    // Every event was handed on to `all` by now and the filter is applied when an event is
    // stored, so nothing more can come to `completed`.
    fixture
        .until_sink("all", "every delivery recorded", |status| {
            status.delivered == every.len() as u64
        })
        .await;
    assert_each_once(&read_completed().await, &completed);
    fixture
}

/// The outage scenario: with the path to the server cut, events are accepted (each order's in
/// reverse) and their attempts fail; once it is back, every event arrives once, each order's in
/// eventDate order.
pub(crate) async fn down_then_back(
    relay: &Relay,
    toml: &str,
    sink: &str,
    read: impl AsyncFnMut() -> Vec<Message>,
) {
    relay.down();
    let fixture = Fixture::start(toml).await;
    let mut events = lifecycles(&unique("SO-d"), 4);
    events.reverse();
    for event in &events {
        assert_eq!(fixture.app.post(event).await.status().as_u16(), 201);
    }
    fixture
        .until_sink(sink, "a failed attempt in each of the 4 orders", |status| {
            status.failing >= 4
        })
        .await;
    relay.up();
    let every = ids(&events);
    let messages = until_all(&every, read).await;
    assert_each_once(&messages, &every);
    assert_in_order_per_order(&messages);
}

/// The dead-letter scenario: the first event dies while the path to the server is cut; the
/// order's later events go on once it is back; `dead-letters retry --all` (the real binary,
/// beside the running app) hands the dead one on too, once.
pub(crate) async fn dead_letter_then_retry(
    relay: &Relay,
    toml: &str,
    sink: &str,
    mut read: impl AsyncFnMut() -> Vec<Message>,
) -> Fixture {
    relay.down();
    let fixture = Fixture::start(toml).await;
    let events = lifecycles(&unique("SO-dl"), 1);
    assert_eq!(fixture.app.post(&events[0]).await.status().as_u16(), 201);
    fixture
        .until_sink(sink, "a dead letter", |status| status.dead == 1)
        .await;
    relay.up();
    for event in &events[1..] {
        assert_eq!(fixture.app.post(event).await.status().as_u16(), 201);
    }
    let later = ids(&events[1..]);
    until_all(&later, &mut read).await;
    let (ok, stdout, stderr) = fixture.cli(&["dead-letters", "retry", "--all"]).await;
    assert!(ok, "{stdout}{stderr}");
    let every = ids(&events);
    let messages = until_all(&every, &mut read).await;
    fixture
        .until_sink(sink, "the outbox to settle", |status| {
            (status.dead, status.pending, status.delivered) == (0, 0, every.len() as u64)
        })
        .await;
    assert_each_once(&messages, &every);
    fixture
}

/// The SIGKILL scenario with the real binary: half the events, a kill once the server has
/// something, a restart, every event again (resends are stored once). Returns the messages read
/// once every acknowledged event came, and the acknowledged eventIds.
pub(crate) async fn sigkill_during_forwarding(
    toml: &str,
    mut read: impl AsyncFnMut() -> Vec<Message>,
) -> (Vec<Message>, BTreeSet<String>) {
    init();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, toml).unwrap();
    let data_dir = dir.path().join("data");
    let events = lifecycles(&unique("SO-k"), 20);
    let http = reqwest::Client::new();
    let mut acknowledged = BTreeSet::new();
    let child = start_binary_with(&data_dir, Some(&config));
    for event in &events[..events.len() / 2] {
        post_acknowledged(&http, &child.listener_url, event, &mut acknowledged).await;
    }
    eventually("a first message at the server", async || {
        (!read().await.is_empty()).then_some(())
    })
    .await;
    let pid = nix::unistd::Pid::from_raw(child.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    drop(child);
    let mut child = start_binary_with(&data_dir, Some(&config));
    for event in &events {
        post_acknowledged(&http, &child.listener_url, event, &mut acknowledged).await;
    }
    until_all(&acknowledged, &mut read).await;
    // Attempts made again after the restart may still come: wait until the outbox is settled
    // (read by the CLI beside the running binary) before the count.
    let (config_arg, data_arg) = (config.to_str().unwrap(), data_dir.to_str().unwrap());
    eventually("the outbox settled", async || {
        let (ok, stdout, stderr) = run_cli(&[
            "sinks",
            "list",
            "--json",
            "--config",
            config_arg,
            "--data-dir",
            data_arg,
        ]);
        assert!(ok, "{stdout}{stderr}");
        let lines: Value = serde_json::from_str(&stdout).unwrap();
        lines
            .as_array()
            .unwrap()
            .iter()
            .all(|line| line["pending"] == 0 && line["dead"] == 0)
            .then_some(())
    })
    .await;
    let messages = read().await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.child.wait().unwrap().success());
    (messages, acknowledged)
}

/// `url` with its host and port replaced by the relay's (credentials and path kept).
pub(crate) fn via(url: &str, relay: &Relay) -> String {
    let mut parsed = reqwest::Url::parse(url).expect("a service URL");
    parsed.set_ip_host(relay.addr.ip()).expect("a host URL");
    parsed
        .set_port(Some(relay.addr.port()))
        .expect("a host URL");
    parsed.to_string()
}
