//! Handing events on, seen from outside: a real HTTP receiver that the test controls (it answers
//! 500, 201 or 410 as told and records what it got), the app in process with a `[sinks.hook]`
//! pointing at it, and the real binary's `replay`, `dead-letters` and `sinks` commands against the
//! same data directory while the app runs. Tests wait on the receiver's record or poll the admin
//! API until a state appears, with a timeout; never on a sleep.

use std::path::PathBuf;

use serde_json::{Value, json};
use tempfile::TempDir;

use order_listener::domain::envelope::{Dialect, EventType};

use crate::helpers::*;
use crate::store_contract::{dialect_event, tmf641_v4_state_change};

/// The app with `[sinks.hook]` pointing at a receiver, and a config file the CLI reads.
struct Fixture {
    app: TestApp,
    receiver: WebhookReceiver,
    config_path: PathBuf,
    _dir: TempDir,
}

impl Fixture {
    /// A sink that retries after 1 s and gives up 2 s after a delivery was queued.
    async fn start(answer: u16) -> Fixture {
        init();
        let receiver = WebhookReceiver::start(answer).await;
        let (dir, config) = config_dir(&format!(
            "[sinks.hook]\ntype = \"http\"\nurl = \"{}\"\nretry_schedule = [\"1s\"]\n\
             retry_horizon = \"2s\"\ntimeout_seconds = 5\n",
            receiver.url
        ));
        let config_path = dir.path().join("config.toml");
        let app = start(config.build()).await;
        Fixture {
            app,
            receiver,
            config_path,
            _dir: dir,
        }
    }

    /// Runs the real binary with `args`, then `--config` and `--data-dir` of the app.
    async fn cli(&self, args: &[&str]) -> (bool, String, String) {
        run_cli_on(args, &self.config_path, &self.app.data_dir).await
    }

    /// Polls `GET /api/v1/sinks` until the `hook` sink's status satisfies `done`.
    async fn wait_for_hook(&self, what: &str, mut done: impl FnMut(&Value) -> bool) -> Value {
        eventually(what, async || {
            let (status, page) = self.app.admin_get("/api/v1/sinks").await;
            assert_eq!(status, 200, "{page}");
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|item| item["name"] == "hook")
                .filter(|item| done(item))
                .cloned()
        })
        .await
    }

    /// Polls `GET /api/v1/dead-letters` until the list satisfies `done`.
    async fn wait_for_dead_letters(
        &self,
        what: &str,
        mut done: impl FnMut(&[Value]) -> bool,
    ) -> Vec<Value> {
        eventually(what, async || {
            let (status, page) = self.app.admin_get("/api/v1/dead-letters").await;
            assert_eq!(status, 200, "{page}");
            let items = page["items"].as_array().unwrap().clone();
            done(&items).then_some(items)
        })
        .await
    }
}

fn creation(event_id: &str, order_id: &str) -> Value {
    onap_creation(event_id, order_id, 1)
}

#[tokio::test]
async fn a_dead_letter_is_listed_and_after_dead_letters_retry_it_is_delivered() {
    let fixture = Fixture::start(500).await;
    let app = &fixture.app;
    assert_eq!(app.post(&creation("dl-1", "SO-dl")).await.status(), 201);

    let letters = fixture
        .wait_for_dead_letters("a dead letter past the 2 s horizon", |items| {
            !items.is_empty()
        })
        .await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["eventId"], "dl-1");
    assert_eq!(letter["sink"], "hook");
    assert_eq!(letter["orderId"], "SO-dl");
    assert_eq!(letter["state"], "dead");
    assert!(letter["attempts"].as_u64().unwrap() >= 1, "{letter}");
    assert!(
        letter["lastError"].as_str().unwrap().contains("500"),
        "{letter}"
    );
    assert!(letter.get("body").is_none(), "{letter}");
    let id = letter["id"].as_i64().unwrap();
    assert!(
        fixture.receiver.delivered().is_empty(),
        "nothing was delivered yet"
    );

    // The admin API queues it again; while it is pending it is no dead letter, so a second
    // retry finds nothing. With the receiver still failing, it dies again.
    let retry = |id: i64| {
        app.client
            .post(format!("{}/api/v1/dead-letters/{id}/retry", app.admin_base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };
    let response = retry(id).await.unwrap();
    assert_eq!(response.status().as_u16(), 202);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"requeued": 1})
    );
    assert_error(retry(id).await.unwrap(), 404, 404).await;
    fixture
        .wait_for_dead_letters("the retried delivery to die again", |items| {
            items.iter().any(|item| item["id"] == id)
        })
        .await;

    let (ok, stdout, stderr) = fixture.cli(&["dead-letters", "list"]).await;
    assert!(ok, "{stderr}");
    for text in [
        "dl-1",
        "hook",
        "SO-dl",
        "ServiceOrderCreationNotification",
        "500",
        "1 dead letter",
    ] {
        assert!(stdout.contains(text), "{text} in {stdout}");
    }
    let (ok, stdout, stderr) = fixture
        .cli(&["dead-letters", "list", "--sink", "hook", "--json"])
        .await;
    assert!(ok, "{stderr}");
    let listed: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["eventId"], "dl-1");

    let (ok, stdout, stderr) = fixture.cli(&["sinks", "list", "--json"]).await;
    assert!(ok, "{stderr}");
    let sinks: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(sinks.len(), 1, "{sinks:?}");
    assert_eq!(sinks[0]["name"], "hook");
    assert_eq!(sinks[0]["type"], "http");
    assert_eq!(
        (&sinks[0]["pending"], &sinks[0]["dead"]),
        (&json!(0), &json!(1))
    );

    let (ok, _, stderr) = fixture.cli(&["dead-letters", "retry"]).await;
    assert!(!ok, "retry without a choice is refused");
    assert!(
        stderr.contains("--id") && stderr.contains("--all"),
        "{stderr}"
    );

    fixture.receiver.answer(201);
    let (ok, stdout, stderr) = fixture.cli(&["dead-letters", "retry", "--all"]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("queued 1 dead letter"), "{stdout}");

    fixture
        .receiver
        .wait_for("dl-1 answered 201", |seen| {
            seen.iter()
                .any(|received| received.event_id == "dl-1" && received.answered == 201)
        })
        .await;
    let hook = fixture
        .wait_for_hook("the delivery recorded", |hook| hook["delivered"] == 1)
        .await;
    assert_eq!(
        (&hook["pending"], &hook["dead"]),
        (&json!(0), &json!(0)),
        "{hook}"
    );
    let (_, page) = app.admin_get("/api/v1/dead-letters").await;
    assert_eq!(page["items"], json!([]));
    assert_eq!(page["nextCursor"], Value::Null);

    let (_, event) = app.admin_get("/api/v1/events/dl-1").await;
    let deliveries = event["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{event}");
    assert_eq!(deliveries[0]["sink"], "hook");
    assert_eq!(deliveries[0]["state"], "delivered");
    assert!(deliveries[0].get("body").is_none());
}

#[tokio::test]
async fn replay_delivers_delivered_events_again_in_order_with_the_event_id_as_webhook_id() {
    let fixture = Fixture::start(201).await;
    let events = onap_lifecycle("SO-replay", 1);
    let ids: Vec<String> = events
        .iter()
        .map(|event| event["eventId"].as_str().unwrap().to_owned())
        .collect();
    for event in &events {
        assert_eq!(fixture.app.post(event).await.status(), 201);
    }
    fixture
        .receiver
        .wait_for("every event once", |seen| seen.len() == ids.len())
        .await;
    assert_eq!(fixture.receiver.delivered(), ids, "eventDate order");
    fixture
        .wait_for_hook("every delivery recorded", |hook| hook["delivered"] == 4)
        .await;

    let (ok, stdout, stderr) = fixture.cli(&["replay", "--sink", "hook"]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("queued 4 deliveries"), "{stdout}");
    let seen = fixture
        .receiver
        .wait_for("every event twice", |seen| seen.len() == 2 * ids.len())
        .await;
    assert_eq!(
        fixture.receiver.delivered()[ids.len()..],
        ids[..],
        "eventDate order again"
    );
    for received in &seen {
        assert_eq!(received.webhook_id, received.event_id);
    }
    let hook = fixture
        .wait_for_hook("the replay recorded", |hook| {
            hook["pending"] == 0 && hook["delivered"] == 4
        })
        .await;
    assert_eq!(hook["dead"], 0);

    let (ok, stdout, stderr) = fixture.cli(&["sinks", "list"]).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("hook") && stdout.contains("http") && stdout.contains("enabled"),
        "{stdout}"
    );

    // One event, by id and time; then a window that holds nothing.
    let (ok, stdout, stderr) = fixture
        .cli(&[
            "replay",
            "--sink",
            "hook",
            "--event",
            "SO-replay-completed",
            "--since",
            "1h",
        ])
        .await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("queued 1 delivery"), "{stdout}");
    fixture
        .receiver
        .wait_for("the completed event a third time", |seen| {
            seen.len() == 2 * ids.len() + 1
        })
        .await;
    assert_eq!(
        fixture.receiver.delivered().last().map(String::as_str),
        Some("SO-replay-completed")
    );
    let (ok, stdout, stderr) = fixture
        .cli(&[
            "replay",
            "--sink",
            "hook",
            "--since",
            "2999-01-01T00:00:00Z",
        ])
        .await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("queued 0 deliveries"), "{stdout}");

    let (ok, _, stderr) = fixture.cli(&["replay", "--sink", "nope"]).await;
    assert!(!ok);
    assert!(stderr.contains("configured sinks: hook"), "{stderr}");
    let (ok, _, stderr) = fixture
        .cli(&["replay", "--sink", "hook", "--since", "someday"])
        .await;
    assert!(!ok);
    assert!(stderr.contains("RFC 3339"), "{stderr}");
}

#[tokio::test]
async fn replay_by_dialect_sends_again_only_that_dialects_events() {
    let fixture = Fixture::start(201).await;
    assert_eq!(
        fixture
            .app
            .post(&creation("r-onap-1", "SO-r-onap"))
            .await
            .status(),
        201
    );
    // As the TMF641 v4 listener hands its events to the store.
    let tmf = tmf641_v4_state_change("r-tmf-1", "SO-r-tmf", "inProgress");
    let kind = EventType::ServiceOrderStateChangeEvent;
    fixture
        .app
        .store
        .append(dialect_event(Dialect::Tmf641V4, kind, &tmf))
        .await
        .unwrap();
    fixture
        .receiver
        .wait_for("both events once", |seen| seen.len() == 2)
        .await;
    fixture
        .wait_for_hook("both deliveries recorded", |hook| hook["delivered"] == 2)
        .await;

    let (ok, stdout, stderr) = fixture
        .cli(&["replay", "--sink", "hook", "--dialect", "tmf641-v4"])
        .await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("queued 1 delivery"), "{stdout}");
    fixture
        .receiver
        .wait_for("the TMF641 event again", |seen| seen.len() == 3)
        .await;
    assert_eq!(
        fixture.receiver.delivered().last().map(String::as_str),
        Some("r-tmf-1")
    );
    fixture
        .wait_for_hook("the replay recorded", |hook| {
            hook["pending"] == 0 && hook["delivered"] == 2
        })
        .await;
    let (ok, stdout, stderr) = fixture
        .cli(&["replay", "--sink", "hook", "--dialect", "mef-legato-v6"])
        .await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("queued 0 deliveries"), "{stdout}");

    let (ok, _, stderr) = fixture
        .cli(&["replay", "--sink", "hook", "--dialect", "tmf641"])
        .await;
    assert!(!ok);
    assert!(
        stderr.contains("not a dialect") && stderr.contains("tmf641-v4, tmf641-v5"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_410_disables_the_sink_until_sinks_enable_and_then_delivery_resumes() {
    let fixture = Fixture::start(410).await;
    let app = &fixture.app;
    assert_eq!(
        app.post(&creation("gone-1", "SO-gone-1")).await.status(),
        201
    );
    let hook = fixture
        .wait_for_hook("the sink disabled", |hook| !hook["disabled"].is_null())
        .await;
    assert!(
        hook["disabled"]["reason"].as_str().unwrap().contains("410"),
        "{hook}"
    );
    assert!(hook["disabled"]["at"].is_string(), "{hook}");

    fixture.receiver.answer(201);
    assert_eq!(
        app.post(&creation("gone-2", "SO-gone-2")).await.status(),
        201
    );
    let (_, event) = app.admin_get("/api/v1/events/gone-2").await;
    assert_eq!(event["deliveries"][0]["state"], "pending", "{event}");
    let (ok, stdout, stderr) = fixture.cli(&["sinks", "list"]).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("disabled since") && stdout.contains("sinks enable hook"),
        "{stdout}"
    );

    let (ok, stdout, stderr) = fixture.cli(&["sinks", "enable", "hook"]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("enabled again"), "{stdout}");
    fixture
        .receiver
        .wait_for("both events answered 201", |seen| {
            ["gone-1", "gone-2"].iter().all(|id| {
                seen.iter()
                    .any(|received| received.event_id == *id && received.answered == 201)
            })
        })
        .await;
    let hook = fixture
        .wait_for_hook("both deliveries recorded", |hook| hook["delivered"] == 2)
        .await;
    assert_eq!(hook["disabled"], Value::Null, "{hook}");

    let (ok, stdout, _) = fixture.cli(&["sinks", "enable", "hook"]).await;
    assert!(ok);
    assert!(stdout.contains("was not disabled"), "{stdout}");
    let enable = |name: &str| {
        app.client
            .post(format!("{}/api/v1/sinks/{name}/enable", app.admin_base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };
    let response = enable("hook").await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"name": "hook", "wasDisabled": false})
    );

    // A sink the configuration does not name cannot be enabled, as `replay --sink` says.
    let (ok, stdout, stderr) = fixture.cli(&["sinks", "enable", "nope"]).await;
    assert!(!ok, "{stdout}{stderr}");
    assert!(
        stderr.contains("no sink named nope is configured; configured sinks: hook"),
        "{stderr}"
    );
    let error = assert_error(enable("nope").await.unwrap(), 404, 404).await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no sink named nope is configured"),
        "{error}"
    );
}

#[tokio::test]
async fn the_outbox_routes_need_the_admin_token_and_check_their_input() {
    let app = spawn_app().await;
    let routes = [
        ("GET", "/api/v1/sinks"),
        ("GET", "/api/v1/dead-letters"),
        ("POST", "/api/v1/dead-letters/1/retry"),
        ("POST", "/api/v1/sinks/hook/enable"),
    ];
    let request = |method: &str, path: &str| {
        let url = format!("{}{path}", app.admin_base);
        match method {
            "GET" => app.client.get(url),
            _ => app.client.post(url),
        }
    };
    for (method, path) in routes {
        assert_error(request(method, path).send().await.unwrap(), 401, 40).await;
        let wrong = request(method, path).bearer_auth("not-the-token");
        assert_error(wrong.send().await.unwrap(), 401, 41).await;
    }

    let with_token = |method: &str, path: &str| request(method, path).bearer_auth(ADMIN_TOKEN);
    let response = with_token("POST", "/api/v1/dead-letters/1/retry")
        .send()
        .await
        .unwrap();
    assert_error(response, 404, 404).await;
    let response = with_token("POST", "/api/v1/dead-letters/x/retry")
        .send()
        .await
        .unwrap();
    assert_error(response, 404, 404).await;
    for query in ["limit=0", "sink=no%20spaces", "cursor=-3"] {
        let path = format!("/api/v1/dead-letters?{query}");
        let body = assert_error(with_token("GET", &path).send().await.unwrap(), 400, 28).await;
        assert!(
            body["referenceError"]
                .as_str()
                .unwrap()
                .starts_with("query:"),
            "{body}"
        );
    }
    let (status, page) = app.admin_get("/api/v1/sinks").await;
    assert_eq!((status, page), (200, json!({"items": []})));
    // No sink is configured: there is none to enable.
    let response = with_token("POST", "/api/v1/sinks/hook/enable")
        .send()
        .await
        .unwrap();
    assert_error(response, 404, 404).await;

    // Without sinks, an event has no deliveries.
    assert_eq!(
        app.post(&creation("plain-1", "SO-plain")).await.status(),
        201
    );
    let (_, event) = app.admin_get("/api/v1/events/plain-1").await;
    assert_eq!(event["deliveries"], json!([]), "{event}");
}

#[tokio::test]
async fn sinks_check_tries_each_sink_and_serve_logs_the_same_at_its_start() {
    init();
    let receiver = WebhookReceiver::start(200).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (dir, _) = config_dir(&format!(
        "[sinks.hook]\ntype = \"http\"\nurl = \"{}\"\n\n\
         [sinks.gone]\ntype = \"http\"\nurl = \"http://{closed}/hook\"\ntimeout_seconds = 5\n",
        receiver.url
    ));
    let (config, data) = (dir.path().join("config.toml"), dir.path().join("data"));
    let (ok, out, err) = run_cli_on(&["sinks", "check"], &config, &data).await;
    assert!(!ok, "one sink cannot be reached: {out}{err}");
    let line = |name: &str| {
        out.lines()
            .find(|line| line.contains(&format!(" {name} (http)")))
            .unwrap_or_else(|| panic!("a line for {name}: {out}"))
            .to_owned()
    };
    // The receiver routes POST only: HEAD reaches it and is answered 405.
    assert!(
        line("hook").starts_with("ok") && line("hook").contains("405"),
        "{out}"
    );
    assert!(
        line("gone").starts_with("FAILED") && line("gone").contains("could not connect"),
        "{out}"
    );
    assert!(err.contains("1 sink(s) cannot be reached"), "{err}");
    let (ok, out, _) = run_cli_on(&["sinks", "check", "hook"], &config, &data).await;
    assert!(ok && !out.contains("gone"), "{out}");
    let (ok, _, err) = run_cli_on(&["sinks", "check", "nosuch"], &config, &data).await;
    assert!(!ok && err.contains("no sink named nosuch"), "{err}");
    assert!(receiver.delivered().is_empty(), "a check delivers nothing");

    // `serve` tries each sink once as it starts, and says so in its log.
    let log = dir.path().join("serve.log");
    let _child = start_binary_logging(&data, &config, &log);
    eventually("the start's sink checks in the log", async || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let reachable = text
            .lines()
            .any(|line| line.contains("sink reachable") && line.contains("hook"));
        let unreachable = text.lines().any(|line| {
            line.contains("sink not reachable at the start")
                && line.contains("gone")
                && line.contains("could not connect")
        });
        (reachable && unreachable).then_some(())
    })
    .await;
}

#[tokio::test]
async fn sinks_enable_of_a_sink_switched_off_in_the_configuration_says_why_it_still_gets_nothing() {
    init();
    let (dir, config) = config_dir(
        "[sinks.off]\ntype = \"http\"\nurl = \"http://127.0.0.1:9/hook\"\nenabled = false\n",
    );
    let app = start(config.build()).await;
    let (ok, stdout, stderr) = run_cli_on(
        &["sinks", "enable", "off"],
        &dir.path().join("config.toml"),
        &app.data_dir,
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("was not disabled"), "{stdout}");
    assert!(
        stdout.contains("enabled = false in the configuration")
            && stdout.contains("set enabled = true and reload"),
        "{stdout}"
    );
    // The admin API knows only the sinks `serve` runs.
    let response = app
        .client
        .post(format!("{}/api/v1/sinks/off/enable", app.admin_base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_error(response, 404, 404).await;
}
