//! Several listeners on one PostgreSQL database: a concurrent stream with duplicates split
//! across two replica processes is stored once, delivered once per sink, and projected as a
//! single node would; a replica killed mid-stream loses nothing it acknowledged; and an outage
//! of the database (through a TCP proxy the test controls) gives 503/5, then recovery.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use order_listener::secret::Secret;
use order_listener::store::{EventFilter, OrderFilter, Storage, Store};
use rand::seq::SliceRandom;
use serde_json::Value;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;
use crate::store_contract::{fresh_postgres_schema, postgres_url};

fn postgres_or_skip() -> Option<String> {
    postgres_url()
}

fn replica(config: &Path, data_dir: &Path) -> RunningBinary {
    start_binary_with(data_dir, Some(config))
}

/// The state and items of every order, as a comparable map.
async fn projections(store: &Store) -> BTreeMap<String, String> {
    let orders = store
        .orders(OrderFilter {
            limit: 10_000,
            ..OrderFilter::default()
        })
        .await
        .unwrap();
    let mut map = BTreeMap::new();
    for summary in orders {
        let order = store.order(&summary.id).await.unwrap().unwrap();
        let items: Vec<String> = order
            .items
            .iter()
            .map(|item| format!("{}={:?}", item.id, item.state))
            .collect();
        map.insert(
            summary.id.as_str().to_owned(),
            format!(
                "{:?} {:?} anomalies={}",
                order.state,
                items,
                order.anomalies.len()
            ),
        );
    }
    map
}

async fn post(http: &reqwest::Client, url: &str, event: &Value) -> Option<u16> {
    http.post(url)
        .header("content-type", "application/json")
        .body(event.to_string())
        .send()
        .await
        .ok()
        .map(|response| response.status().as_u16())
}

#[tokio::test]
async fn two_replicas_share_one_database_store_once_deliver_once_and_survive_a_kill() {
    let Some(base) = postgres_or_skip() else {
        return;
    };
    init();
    let url = fresh_postgres_schema(&base).await;
    let receiver = WebhookReceiver::start(200).await;
    let hook = &receiver.url;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "database_url = \"{url}\"\noutbox_lease_seconds = 2\n\
             [sinks.hook]\ntype = \"http\"\nurl = \"{hook}\"\nretry_schedule = [\"100ms\"]\ntimeout_seconds = 1\n"
        ),
    )
    .unwrap();
    let first = replica(&config, &dir.path().join("a"));
    let second = replica(&config, &dir.path().join("b"));

    // 30 orders, every event twice, shuffled, 8 senders at once, each to a random replica.
    let events: Vec<Value> = (0..30)
        .flat_map(|index| onap_lifecycle(&format!("SO-rep-{index}"), 2))
        .collect();
    let mut stream: Vec<Value> = events.iter().chain(&events).cloned().collect();
    stream.shuffle(&mut rand::rng());
    let half = stream.len() / 2;
    let http = reqwest::Client::new();
    let urls = [first.listener_url.clone(), second.listener_url.clone()];
    let acknowledged = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let send = |batch: Vec<Value>, urls: Vec<String>| {
        let (http, acknowledged) = (http.clone(), acknowledged.clone());
        async move {
            let mut tasks = tokio::task::JoinSet::new();
            for (index, chunk) in batch.chunks(batch.len().div_ceil(8)).enumerate() {
                let (http, acknowledged, urls) = (http.clone(), acknowledged.clone(), urls.clone());
                let chunk = chunk.to_vec();
                tasks.spawn(async move {
                    for (offset, event) in chunk.iter().enumerate() {
                        let url = &urls[(index + offset) % urls.len()];
                        if post(&http, url, event).await == Some(201) {
                            acknowledged
                                .lock()
                                .unwrap()
                                .insert(event["eventId"].as_str().unwrap().to_owned());
                        }
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        }
    };
    send(stream[..half].to_vec(), urls.to_vec()).await;

    // One new eventId with two different payloads, at once, to both replicas: one is stored
    // (201), the other is refused (422/60); the same payload to both: 201 twice.
    let contested = onap_lifecycle("SO-contested", 1).remove(0);
    let mut other = contested.clone();
    other["event"]["externalId"] = "someone else".into();
    let (a, b) = tokio::join!(
        post(&http, &urls[0], &contested),
        post(&http, &urls[1], &other)
    );
    let mut answers = [a.unwrap(), b.unwrap()];
    answers.sort();
    assert_eq!(
        answers,
        [201, 422],
        "one payload wins, the other is a conflict"
    );
    let same = onap_lifecycle("SO-same", 1).remove(0);
    let (a, b) = tokio::join!(post(&http, &urls[0], &same), post(&http, &urls[1], &same));
    assert_eq!((a, b), (Some(201), Some(201)));
    // Kill the first replica mid-stream (it may hold leased deliveries); the rest, and every
    // event again, goes to the second.
    drop(first);
    send(stream[half..].to_vec(), vec![second.listener_url.clone()]).await;
    send(events.clone(), vec![second.listener_url.clone()]).await;
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert_eq!(
        acknowledged.len(),
        events.len(),
        "every event acknowledged at last"
    );

    // Every delivery is made (the killed replica's leases expire and are taken over).
    let mut expected = acknowledged.clone();
    expected.extend([
        "SO-contested-created".to_owned(),
        "SO-same-created".to_owned(),
    ]);
    receiver.until_delivered(&expected).await;

    // Stored once each, and projected as a single node projects the same events.
    let shared = Store::open_read_only(&Storage::Postgres {
        url: Secret::new(url),
    })
    .await
    .unwrap();
    let stored = shared
        .events(EventFilter {
            limit: 10_000,
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        stored.len(),
        events.len() + 2,
        "stored once each (and the two contested ids)"
    );
    let single = spawn_app().await;
    for event in &events {
        assert_eq!(single.post(event).await.status().as_u16(), 201);
    }
    let winner = shared
        .event(&"SO-contested-created".parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .1;
    single
        .post(&serde_json::from_slice::<Value>(&winner).unwrap())
        .await;
    single.post(&same).await;
    assert_eq!(projections(&shared).await, projections(&single.store).await);
    // The receiver has every event; the replicas record that right after answering.
    eventually("the outbox to settle", async || {
        let statuses = shared.sink_statuses().await.unwrap();
        (statuses[0].delivered == expected.len() as u64 && statuses[0].pending == 0).then_some(())
    })
    .await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for id in receiver.delivered() {
        *seen.entry(id).or_default() += 1;
    }
    // A delivery is made twice only if the killed replica had sent it and not yet recorded the
    // outcome: at most its worker's attempts in flight (the sink's default concurrency, 8).
    let duplicates: usize = seen.values().map(|count| count - 1).sum();
    eprintln!(
        "HTTP sink: {duplicates} duplicate deliveries (the killed replica's attempts in flight)"
    );
    assert!(
        duplicates <= DEFAULT_SINK_CONCURRENCY,
        "{duplicates} duplicate deliveries: more than one replica's attempts in flight"
    );
}

/// The sink's `concurrency` when the configuration does not set it.
const DEFAULT_SINK_CONCURRENCY: usize = 8;

/// A TCP proxy the test can cut and restore.
struct Proxy {
    address: SocketAddr,
    up: Arc<AtomicBool>,
    cut: Arc<std::sync::Mutex<CancellationToken>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(std::sync::Mutex::new(CancellationToken::new()));
        let (accept_up, accept_cut) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !accept_up.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let token = accept_cut.lock().unwrap().clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        () = token.cancelled() => {}
                    }
                });
            }
        });
        Proxy { address, up, cut }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        let mut token = self.cut.lock().unwrap();
        token.cancel();
        *token = CancellationToken::new();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_postgres_outage_gives_503_with_code_5_and_the_listener_recovers_without_a_restart() {
    let Some(base) = postgres_or_skip() else {
        return;
    };
    init();
    let direct = fresh_postgres_schema(&base).await;
    let parsed: tokio_postgres::Config = direct.parse().unwrap();
    let host = match &parsed.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        #[allow(unreachable_patterns)]
        _ => "127.0.0.1".to_owned(),
    };
    let port = parsed.get_ports().first().copied().unwrap_or(5432);
    let upstream: SocketAddr = format!("{host}:{port}").parse().unwrap();
    let proxy = Proxy::start(upstream).await;
    let through_proxy = direct.replacen(&format!("{host}:{port}"), &proxy.address.to_string(), 1);

    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(dir.path())
        .overrides(|overrides| overrides.database_url = Some(through_proxy))
        .build();
    let app = start(config).await;
    let events: Vec<Value> = (0..3)
        .flat_map(|index| onap_lifecycle(&format!("SO-out-{index}"), 1))
        .collect();
    let mut acknowledged = BTreeSet::new();
    let (before, rest) = events.split_at(4);
    for event in before {
        assert_eq!(app.post(event).await.status().as_u16(), 201);
        acknowledged.insert(event["eventId"].as_str().unwrap().to_owned());
    }

    proxy.cut();
    let ready = |app: &TestApp| {
        let client = app.client.clone();
        let url = format!("{}/readyz", app.admin_base);
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    let (during, after) = rest.split_at(2);
    for event in during {
        let response = app.post(event).await;
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("5")
        );
        assert_error(response, 503, 5).await;
    }
    assert_eq!(ready(&app).await, 503, "/readyz fails during the outage");

    proxy.restore();
    // The pool connects again on the next request: no restart.
    for event in during.iter().chain(after) {
        assert_eq!(app.post(event).await.status().as_u16(), 201);
        acknowledged.insert(event["eventId"].as_str().unwrap().to_owned());
    }
    assert_eq!(ready(&app).await, 200);
    let stored: BTreeSet<String> = app
        .stored_events()
        .await
        .iter()
        .map(|record| record.event_id.as_str().to_owned())
        .collect();
    assert_eq!(
        stored, acknowledged,
        "every acknowledged event, and nothing refused, is stored"
    );
    let direct_store = Store::open_read_only(&Storage::Postgres {
        url: Secret::new(direct),
    })
    .await
    .unwrap();
    assert_eq!(
        direct_store
            .events(EventFilter {
                limit: 100,
                ..EventFilter::default()
            })
            .await
            .unwrap()
            .len(),
        events.len()
    );
}
