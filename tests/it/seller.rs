//! The seller side end to end, as ONAP: `hub` against the simulator's hub, and `simulate`
//! against the listener through a subscription. `seller_dialects.rs` does the same in the
//! other dialects.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::helpers::*;

/// Starts `simulate` with these arguments and waits for it to print its hub URL.
pub(crate) fn start_simulator(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(binary())
        .arg("simulate")
        .args(["--hub-listen", "127.0.0.1:0"])
        .args(args)
        .env("ORDER_LISTENER_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the simulator starts");
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let hub = loop {
        let line = lines
            .next()
            .expect("the simulator names its hub")
            .expect("text");
        if let Some(url) = line.strip_prefix("simulator hub: ") {
            break url.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, hub)
}

/// Runs `hub subscribe` for `callback` at the simulator's `hub` (in `dialect`, else ONAP) and
/// expects it to succeed; returns its stderr.
pub(crate) fn subscribe(hub: &str, dialect: Option<&str>, callback: &str) -> String {
    let mut args = vec!["hub", "subscribe"];
    if let Some(dialect) = dialect {
        args.extend(["--dialect", dialect]);
    }
    args.extend(["--server", hub, "--callback", callback]);
    let (ok, _, stderr) = run_cli(&args);
    assert!(ok, "{stderr}");
    stderr
}

/// The order `id` as the simulator's `hub` serves it.
pub(crate) async fn served_order(hub: &str, id: &str) -> Value {
    reqwest::get(format!("{hub}/serviceOrder/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Runs `simulate --target target` with `args` and `--json` to its end (it must succeed);
/// returns its summary.
pub(crate) async fn simulate_into(target: &str, args: &[&str]) -> Value {
    let output = tokio::process::Command::new(binary())
        .args(["simulate", "--target", target])
        .args(args)
        .arg("--json")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("the simulator runs");
    assert!(
        output.status.success(),
        "simulate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON summary")
}

/// Reads the simulator's pretty-printed JSON summary (it ends with a line of its own "}") while
/// it keeps serving.
pub(crate) fn summary(simulator: &mut Child) -> Value {
    let mut stdout = BufReader::new(simulator.stdout.take().expect("stdout is piped"));
    let mut text = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "a summary: {text}"
        );
        text.push_str(&line);
        if line == "}\n" {
            break;
        }
    }
    std::thread::spawn(move || for _ in stdout.lines() {});
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("a JSON summary: {text}"))
}

/// Reads the simulator's JSON summary to the end of its output, once it has run to completion
/// (it must exit successfully).
pub(crate) fn exit_summary(simulator: &mut Child) -> Value {
    let mut text = String::new();
    simulator
        .stdout
        .take()
        .expect("stdout is piped")
        .read_to_string(&mut text)
        .unwrap();
    let status = simulator.wait().unwrap();
    assert!(status.success(), "{text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("a JSON summary: {text}"))
}

#[tokio::test]
async fn the_hub_client_subscribes_lists_shows_and_deletes_and_warns_about_bad_queries() {
    let (mut simulator, hub) = start_simulator(&["--wait-subscribers", "1000"]);

    let (ok, stdout, stderr) = run_cli(&[
        "hub",
        "subscribe",
        "--server",
        &hub,
        "--callback",
        "https://buyer.example/listener",
        "--query",
        "eventType=ServiceOrderStateChangeNotification&serviceOrder.state=COMPLETED",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("warning:") && stderr.contains("`completed`"),
        "{stderr}"
    );
    let created: Value = serde_json::from_str(&stdout).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["callback"], "https://buyer.example/listener");

    // --strict refuses a query with warnings and sends nothing.
    let (ok, _, stderr) = run_cli(&[
        "hub",
        "subscribe",
        "--server",
        &hub,
        "--callback",
        "https://other.example/l",
        "--query",
        "eventType=ServiceOrderStateChangeNotification&serviceOrder.state=held, rejected",
        "--strict",
    ]);
    assert!(!ok);
    assert!(stderr.contains("spaces"), "{stderr}");

    let (ok, stdout, _) = run_cli(&["hub", "list", "--server", &hub, "--json"]);
    assert!(ok);
    let listed: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(listed, vec![created.clone()]);

    let (ok, stdout, _) = run_cli(&["hub", "show", &id, "--server", &hub]);
    assert!(ok);
    assert!(
        stdout.contains(&id) && stdout.contains("serviceOrder.state=COMPLETED"),
        "{stdout}"
    );

    let (ok, stdout, _) = run_cli(&["hub", "delete", &id, "--server", &hub]);
    assert!(ok);
    assert!(stdout.contains(&id));
    let (ok, _, stderr) = run_cli(&["hub", "show", &id, "--server", &hub]);
    assert!(!ok);
    assert!(stderr.contains("no subscription"), "{stderr}");
    let (_, stdout, _) = run_cli(&["hub", "list", "--server", &hub, "--json"]);
    assert_eq!(
        serde_json::from_str::<Vec<Value>>(&stdout).unwrap(),
        Vec::<Value>::new()
    );

    simulator.kill().unwrap();
    simulator.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_orders_with_duplicates_and_reordering_match_the_ground_truth() {
    let app = spawn_app().await;
    let (mut simulator, hub) = start_simulator(&[
        "--wait-subscribers",
        "1",
        "--orders",
        "200",
        "--duplicates",
        "0.25",
        "--reorder",
        "0.3",
        "--concurrency",
        "8",
        "--seed",
        "20261128",
        "--verify-admin",
        &app.admin_base,
        "--json",
    ]);

    let stderr = subscribe(&hub, None, &app.listener_url);
    assert!(
        !stderr.contains("warning"),
        "the default query is sound: {stderr}"
    );

    let summary = exit_summary(&mut simulator);
    assert_eq!(summary["orders"], 200);
    assert!(summary["duplicatesSent"].as_u64().unwrap() > 0);
    assert!(summary["reordered"].as_u64().unwrap() > 0);
    assert_eq!(summary["verification"]["checked"], 200);
    assert_eq!(summary["verification"]["mismatches"], Value::Array(vec![]));

    // Check the simulator's ground truth against the listener here too.
    let truth = summary["truth"].as_array().unwrap();
    assert_eq!(truth.len(), 200);
    for order in truth {
        let id = order["id"].as_str().unwrap();
        let (status, projection) = app.admin_get(&format!("/api/v1/service-orders/{id}")).await;
        assert_eq!(status, 200, "order {id}");
        assert_eq!(projection["state"], order["state"], "order {id}");
        for item in projection["items"].as_array().unwrap() {
            assert_eq!(
                item["state"],
                order["items"][item["id"].as_str().unwrap()],
                "order {id} item {}",
                item["id"]
            );
        }
        assert_eq!(
            projection["items"].as_array().unwrap().len(),
            order["items"].as_object().unwrap().len()
        );
        assert_eq!(projection["anomalies"], Value::Array(vec![]), "order {id}");
    }
    // Each notification is stored once, however often it was sent.
    let stored = app.stored_events().await;
    assert_eq!(
        stored.len() as u64,
        summary["notifications"].as_u64().unwrap()
    );
}
