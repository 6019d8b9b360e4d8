//! A 201 means committed: events acknowledged before a SIGKILL or a SIGTERM are all present,
//! exactly once, after a restart.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::sync::Notify;

use crate::helpers::*;

/// Senders post distinct events until the listener goes away; returns every acknowledged id.
/// `on_acks` is notified once `threshold` events have been acknowledged.
async fn burst(url: String, senders: usize, threshold: usize, on_acks: Arc<Notify>) -> Vec<String> {
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    // A request that gets no answer in time is given up, not acknowledged: once seen, the
    // whole test waited forever after the SIGKILL (not diagnosed: no socket and no process was
    // left), so a sender never waits longer than this.
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for sender in 0..senders {
        let (url, client, acknowledged, on_acks) = (
            url.clone(),
            client.clone(),
            acknowledged.clone(),
            on_acks.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for n in 0..100_000 {
                let order = format!("SO-{sender}-{}", n / 4);
                let event = onap_event(
                    &format!("burst-{sender}-{n}"),
                    "ServiceOrderItemStateChangeNotification",
                    n as i64,
                    &order,
                    "inProgress",
                    vec![onap_item("1", "add", "inProgress")],
                );
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(event.to_string())
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().as_u16() == 201 => {
                        let mut acknowledged = acknowledged.lock().unwrap();
                        acknowledged.push(event["eventId"].as_str().unwrap().to_owned());
                        if acknowledged.len() == threshold {
                            on_acks.notify_one();
                        }
                    }
                    // 503 while shutting down: not acknowledged, so not promised.
                    Ok(response) => assert_eq!(response.status().as_u16(), 503),
                    Err(_) => break, // the listener is gone
                }
            }
        }));
    }
    for task in tasks {
        tokio::time::timeout(PATIENCE * 2, task)
            .await
            .expect("every sender stops once the listener is gone")
            .unwrap();
    }
    Arc::try_unwrap(acknowledged).unwrap().into_inner().unwrap()
}

/// Every stored eventId with how often it is stored, read through the CLI.
fn stored_ids(data_dir: &Path) -> HashMap<String, usize> {
    let dir = data_dir.to_str().unwrap();
    let (ok, stdout, stderr) = run_cli(&[
        "events",
        "list",
        "--json",
        "--limit",
        "10000",
        "--data-dir",
        dir,
    ]);
    assert!(ok, "{stderr}");
    let events: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let mut counts = HashMap::new();
    for event in events {
        *counts
            .entry(event["eventId"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    counts
}

async fn assert_all_present_once(data_dir: &Path, acknowledged: &[String]) {
    // Restart on the same data: the store opens and serves again.
    let mut restarted = start_binary(data_dir);
    let counts = stored_ids(data_dir);
    for id in acknowledged {
        assert_eq!(
            counts.get(id),
            Some(&1),
            "acknowledged event {id} is stored exactly once"
        );
    }
    // A resend of an acknowledged event after the restart is deduplicated, not stored again.
    let first = acknowledged.first().expect("some events were acknowledged");
    let (sender, n) = first.trim_start_matches("burst-").split_once('-').unwrap();
    let n: i64 = n.parse().unwrap();
    let order = format!("SO-{sender}-{}", n / 4);
    let resend = onap_event(
        first,
        "ServiceOrderItemStateChangeNotification",
        n,
        &order,
        "inProgress",
        vec![onap_item("1", "add", "inProgress")],
    );
    let response = reqwest::Client::new()
        .post(&restarted.listener_url)
        .header("content-type", "application/json")
        .body(resend.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(stored_ids(data_dir).get(first), Some(&1));
    restarted.child.kill().unwrap();
    restarted.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_acknowledged_before_a_sigkill_is_stored_exactly_once() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let mut running = start_binary(dir.path());
    let acks = Arc::new(Notify::new());
    let sending = tokio::spawn(burst(running.listener_url.clone(), 16, 300, acks.clone()));
    tokio::time::timeout(PATIENCE, acks.notified())
        .await
        .expect("300 events acknowledged");
    running.child.kill().unwrap(); // SIGKILL, mid-burst
    running.child.wait().unwrap();
    let acknowledged = sending.await.unwrap();
    assert!(acknowledged.len() >= 300);
    assert_all_present_once(dir.path(), &acknowledged).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_commits_them_before_exiting() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let mut running = start_binary(dir.path());
    let acks = Arc::new(Notify::new());
    let sending = tokio::spawn(burst(running.listener_url.clone(), 16, 200, acks.clone()));
    tokio::time::timeout(PATIENCE, acks.notified())
        .await
        .expect("200 events acknowledged");
    kill(Pid::from_raw(running.child.id() as i32), Signal::SIGTERM).unwrap();
    let status = running.child.wait().unwrap();
    assert!(
        status.success(),
        "a graceful stop exits with 0, got {status}"
    );
    let acknowledged = sending.await.unwrap();
    assert_all_present_once(dir.path(), &acknowledged).await;
}

/// A stop or a reload asked for as soon as the Listener API's port is open is answered: the
/// port opens before the store, and a signal without its handler would end the process at
/// once, by its default action.
/// A child process killed when dropped, so that a failing test leaves none behind; for
/// `serve`, with its Listener API's port.
struct Reaped(std::process::Child, u16);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Reaped {
    /// `serve` on `data_dir` with `args` added, returned as soon as its Listener API's port is
    /// bound: the port is bound first, before the store opens or anything else starts.
    fn serve_until_bound(data_dir: &Path, args: &[&str], stderr: std::process::Stdio) -> Reaped {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut child = Reaped(
            std::process::Command::new(binary())
                .args(["serve", "--plain-http", "--allow-anonymous"])
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .args(["--admin-listen", "127.0.0.1:0", "--data-dir"])
                .arg(data_dir)
                .args(args)
                .env("RUST_LOG", "info")
                .stdout(std::process::Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap(),
            port,
        );
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(child.0.try_wait().unwrap().is_none(), "serve ended early");
            assert!(started.elapsed() < PATIENCE, "the port never opened");
            std::thread::yield_now();
        }
        child
    }
}

#[tokio::test]
async fn a_signal_at_the_first_sign_of_life_is_handled_not_fatal() {
    use std::os::unix::process::ExitStatusExt;
    init();
    for signal in [Signal::SIGHUP, Signal::SIGTERM] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Reaped::serve_until_bound(dir.path(), &[], std::process::Stdio::null());
        kill(Pid::from_raw(child.0.id() as i32), signal).unwrap();
        if signal == Signal::SIGHUP {
            // Still serving: a reload, not an end.
            let health = reqwest::get(format!("http://127.0.0.1:{}/healthz", child.1)).await;
            assert!(
                health.is_ok_and(|response| response.status().is_success()),
                "serve answers after SIGHUP"
            );
            kill(Pid::from_raw(child.0.id() as i32), Signal::SIGTERM).unwrap();
        }
        let status = child.0.wait().unwrap();
        assert_eq!(
            (status.code(), status.signal()),
            (Some(0), None),
            "{signal}: a graceful stop exits with 0, got {status}"
        );
    }
}

/// A stop asked for while the store is still opening ends the start-up at once, gracefully.
/// The "database" here accepts connections and never answers, so without that the stop would
/// wait for the store's 5 s connect timeout, and then fail on it.
#[tokio::test]
async fn a_stop_while_the_store_opens_ends_the_start_up() {
    use std::io::Read;
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let database = format!(
        "postgres://postgres@{}/nothing?sslmode=disable",
        silent.local_addr().unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut child = Reaped::serve_until_bound(
        dir.path(),
        &["--database-url", &database],
        std::process::Stdio::piped(),
    );
    kill(Pid::from_raw(child.0.id() as i32), Signal::SIGINT).unwrap();
    let status = child.0.wait().unwrap();
    let mut log = String::new();
    let mut stderr = child.0.stderr.take().unwrap();
    stderr.read_to_string(&mut log).unwrap();
    assert_eq!(status.code(), Some(0), "{status}: {log}");
    assert!(log.contains("stopped during start-up"), "{log}");
}
