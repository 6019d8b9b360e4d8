//! SIGHUP applies a changed configuration file to a running `serve` without a restart: sinks
//! added, removed and changed, rate limits (a bucket whose limit is unchanged is kept), and
//! retention; a file that does not load changes nothing. The real binary gets the real signal.

use std::path::Path;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::helpers::*;

const KEY: &str = "olk_reload_test_key_0123456789abcdef";

fn config(receiver: &str, sink_name: &str, burst: u32, retention: &str, retry: &str) -> String {
    format!(
        "plain_http = true\n{retention}\n\
         [clients.seller]\nrate_limit = {{ per_second = 0.001, burst = {burst} }}\n\
         [[clients.seller.api_keys]]\nhash = \"sha256:{}\"\n\
         [sinks.{sink_name}]\ntype = \"http\"\nurl = \"{receiver}\"\nretry_schedule = [\"{retry}\"]\n",
        sha256_hex(KEY)
    )
}

/// Sends SIGHUP and waits for the log to say the reload happened (`expect` appears once more).
pub(crate) async fn hangup(child: &RunningBinary, log: &Path, expect: &str) {
    let count = |text: &str| text.matches(expect).count();
    let before = count(&std::fs::read_to_string(log).unwrap_or_default());
    kill(Pid::from_raw(child.child.id() as i32), Signal::SIGHUP).unwrap();
    eventually(&format!("the log to say {expect:?}"), async || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        (count(&text) > before).then_some(())
    })
    .await;
}

async fn post(http: &reqwest::Client, url: &str, event: &Value) -> u16 {
    http.post(url)
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(event.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn sighup_applies_sinks_rate_limits_and_retention_and_a_broken_file_changes_nothing() {
    init();
    let (first, second) = (
        WebhookReceiver::start(200).await,
        WebhookReceiver::start(200).await,
    );
    let dir = tempfile::tempdir().unwrap();
    let (file, log) = (dir.path().join("config.toml"), dir.path().join("serve.log"));
    std::fs::write(&file, config(&first.url, "first", 2, "", "100ms")).unwrap();
    let child = start_binary_logging(&dir.path().join("data"), &file, &log);
    let (http, url) = (reqwest::Client::new(), child.listener_url.clone());
    let events: Vec<Value> = (0..6)
        .map(|index| onap_lifecycle(&format!("SO-reload-{index}"), 1).remove(0))
        .collect();
    let id = |index: usize| events[index]["eventId"].as_str().unwrap().to_owned();

    assert_eq!(post(&http, &url, &events[0]).await, 201);
    first
        .wait_for("the first sink's delivery", |seen| {
            seen.iter()
                .any(|received| received.delivered() && received.event_id == id(0))
        })
        .await;

    // The sink is replaced by another; the rate limit is the same, so its bucket is kept.
    std::fs::write(&file, config(&second.url, "second", 2, "", "100ms")).unwrap();
    hangup(&child, &log, "SIGHUP: reloaded").await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("sinks added: second") && text.contains("sinks removed: first"),
        "{text}"
    );
    assert_eq!(
        post(&http, &url, &events[1]).await,
        201,
        "the burst's second token"
    );
    assert_eq!(
        post(&http, &url, &events[2]).await,
        403,
        "the bucket was kept: a reset one would let this through"
    );
    second
        .wait_for("the new sink's delivery", |seen| {
            seen.iter()
                .any(|received| received.delivered() && received.event_id == id(1))
        })
        .await;
    assert!(
        !first.delivered().contains(&id(1)),
        "a removed sink gets nothing new"
    );

    // A file that does not load: refused, and everything runs as it was.
    std::fs::write(&file, "plain_http = [not toml").unwrap();
    hangup(&child, &log, "the configuration does not load").await;
    assert_eq!(
        post(&http, &url, &events[3]).await,
        403,
        "the same bucket still"
    );

    // A changed limit gets a new bucket; retention turned on prunes what it lets go; the sink's
    // settings changed, so its worker starts again.
    std::fs::write(
        &file,
        config(
            &second.url,
            "second",
            10,
            "[retention]\nevents = \"1s\"\ninterval = \"200ms\"",
            "200ms",
        ),
    )
    .unwrap();
    hangup(&child, &log, "SIGHUP: reloaded").await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("sinks changed: second") && text.contains("retention"),
        "{text}"
    );
    assert_eq!(post(&http, &url, &events[4]).await, 201, "a new bucket");
    second
        .wait_for("the changed sink's delivery", |seen| {
            seen.iter()
                .any(|received| received.delivered() && received.event_id == id(4))
        })
        .await;
    let token = banner_value(&child.banner, "admin token").expect("an admin token");
    let events = format!("{}/api/v1/events", child.admin_url());
    eventually("retention to prune the delivered events", async || {
        let (_, listed) = bearer_json(&http, &events, &token).await;
        listed["items"].as_array()?.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn sighup_changes_the_log_level_and_refuses_one_that_does_not_read() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (file, log) = (dir.path().join("config.toml"), dir.path().join("serve.log"));
    std::fs::write(&file, "plain_http = true\nlog_level = \"info\"\n").unwrap();
    let child = start_binary_logging_at(&dir.path().join("data"), &file, &log, None);
    let http = reqwest::Client::new();
    let send = async |id: &str| {
        http.post(&child.listener_url)
            .header("content-type", "application/json")
            .body(onap_lifecycle(id, 1).remove(0).to_string())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    // At info, a stored event logs nothing at debug level.
    assert_eq!(send("SO-level-1").await, 201);
    let debug_lines = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("event stored")
            .count()
    };
    assert_eq!(debug_lines(), 0);

    // A level that does not read is refused, and nothing else of the file is applied.
    std::fs::write(
        &file,
        "plain_http = true\nlog_level = \"order_listener=loud\"\n",
    )
    .unwrap();
    hangup(&child, &log, "does not load").await;
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("is not a log filter"),
        "the log says why"
    );
    assert_eq!(send("SO-level-2").await, 201);
    assert_eq!(debug_lines(), 0);

    std::fs::write(&file, "plain_http = true\nlog_level = \"debug\"\n").unwrap();
    hangup(&child, &log, "SIGHUP: reloaded").await;
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("log level debug")
    );
    assert_eq!(send("SO-level-3").await, 201);
    eventually("a debug line for the stored event", async || {
        (debug_lines() > 0).then_some(())
    })
    .await;
}
