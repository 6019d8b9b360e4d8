//! The command line: `init`, `--help`, and the read-only queries, run as the real binary while
//! the listener serves.

use order_listener::domain::envelope::{Dialect, EventType};
use serde_json::Value;

use crate::helpers::*;
use crate::store_contract::{dialect_event, mef_href, mef_v6_state_change};

#[tokio::test]
async fn orders_and_events_can_be_read_with_the_cli_while_the_listener_runs() {
    let app = spawn_app().await;
    let events = onap_lifecycle("SO-cli", 2);
    for event in &events {
        assert_eq!(app.post(event).await.status().as_u16(), 201);
    }
    let dir = app.data_dir.to_str().unwrap().to_owned();

    let (ok, stdout, stderr) = run_cli(&["orders", "show", "SO-cli", "--json", "--data-dir", &dir]);
    assert!(ok, "{stderr}");
    let order: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(order["id"], "SO-cli");
    assert_eq!(order["state"], "completed");
    let items: Vec<(&str, &str)> = order["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["id"].as_str().unwrap(),
                item["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(items, vec![("1", "completed"), ("2", "completed")]);
    assert_eq!(order["timeline"].as_array().unwrap().len(), events.len());
    assert_eq!(order["anomalies"], Value::Array(vec![]));

    let (ok, stdout, _) = run_cli(&["orders", "show", "SO-cli", "--data-dir", &dir]);
    assert!(ok);
    assert!(
        stdout.contains("SO-cli")
            && stdout.contains("completed")
            && stdout.contains("no anomalies"),
        "{stdout}"
    );

    let (ok, stdout, _) = run_cli(&[
        "orders",
        "list",
        "--json",
        "--state",
        "completed",
        "--data-dir",
        &dir,
    ]);
    assert!(ok);
    let orders: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["itemCount"], 2);

    let (ok, stdout, _) = run_cli(&["events", "list", "--order", "SO-cli", "--data-dir", &dir]);
    assert!(ok);
    assert!(
        stdout.contains("SO-cli-created") && stdout.contains(&format!("{} events", events.len())),
        "{stdout}"
    );

    let (ok, stdout, _) = run_cli(&[
        "events",
        "show",
        "SO-cli-completed",
        "--raw",
        "--data-dir",
        &dir,
    ]);
    assert!(ok);
    assert_eq!(stdout, events.last().unwrap().to_string());

    let (ok, _, stderr) = run_cli(&["orders", "show", "SO-missing", "--data-dir", &dir]);
    assert!(!ok);
    assert!(
        stderr.contains("no service order with id SO-missing"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_cli_lists_shows_and_filters_events_by_dialect() {
    let app = spawn_app().await;
    let created = onap_lifecycle("SO-cli-onap", 1).remove(0);
    assert_eq!(app.post(&created).await.status().as_u16(), 201);
    // As the MEF listener hands its events to the store.
    let mef = mef_v6_state_change("cli-mef-1", "SO-cli-mef", "inProgress");
    let kind = EventType::ServiceOrderStateChangeEvent;
    app.store
        .append(dialect_event(Dialect::MefLegatoV6, kind, &mef))
        .await
        .unwrap();
    let dir = app.data_dir.to_str().unwrap().to_owned();

    let (ok, stdout, stderr) = run_cli(&[
        "events",
        "list",
        "--dialect",
        "mef-legato-v6",
        "--json",
        "--data-dir",
        &dir,
    ]);
    assert!(ok, "{stderr}");
    let listed: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(listed.len(), 1, "{stdout}");
    assert_eq!(listed[0]["eventId"], "cli-mef-1");
    assert_eq!(listed[0]["dialect"], "mef-legato-v6");
    assert_eq!(listed[0]["reference"], mef_href("SO-cli-mef").as_str());

    let (ok, stdout, _) = run_cli(&["events", "list", "--data-dir", &dir]);
    assert!(ok);
    let row = |id: &str| {
        stdout
            .lines()
            .find(|line| line.contains(id))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(row("cli-mef-1").contains("mef-legato-v6"), "{stdout}");
    assert!(row("SO-cli-onap-created").contains("onap"), "{stdout}");
    assert!(stdout.contains("dialect"), "the column is named: {stdout}");

    let (ok, stdout, _) = run_cli(&["events", "show", "cli-mef-1", "--data-dir", &dir]);
    assert!(ok);
    assert!(
        stdout.contains("mef-legato-v6") && stdout.contains(&mef_href("SO-cli-mef")),
        "{stdout}"
    );

    let (ok, _, stderr) = run_cli(&["events", "list", "--dialect", "mef", "--data-dir", &dir]);
    assert!(!ok);
    assert!(
        stderr.contains("`mef` is not a dialect") && stderr.contains("mef-legato-v5"),
        "{stderr}"
    );
}

#[tokio::test]
async fn every_list_command_refuses_a_limit_of_zero_as_the_admin_api_does() {
    let app = spawn_app().await;
    for order in ["SO-limit-1", "SO-limit-2"] {
        let created = onap_creation(&format!("{order}-created"), order, 1);
        assert_eq!(app.post(&created).await.status().as_u16(), 201);
    }
    let dir = app.data_dir.to_str().unwrap().to_owned();
    for command in [
        ["orders", "list"],
        ["events", "list"],
        ["orders", "suspects"],
        ["dead-letters", "list"],
    ] {
        let mut args = command.to_vec();
        args.extend(["--limit", "0", "--json", "--data-dir", &dir]);
        let (ok, stdout, stderr) = run_cli(&args);
        assert!(!ok, "{command:?} --limit 0: {stdout}");
        assert!(
            stderr.contains("--limit") && stderr.contains("1..=10000"),
            "{command:?}: {stderr}"
        );
    }
    let (ok, stdout, stderr) = run_cli(&[
        "orders",
        "list",
        "--limit",
        "1",
        "--json",
        "--data-dir",
        &dir,
    ]);
    assert!(ok, "{stderr}");
    let orders: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(orders.len(), 1, "{stdout}");
    // The API refuses limit=0 too.
    let (status, body) = app.admin_get("/api/v1/service-orders?limit=0").await;
    assert_eq!((status, &body["code"]), (400, &Value::from(28)), "{body}");
}

#[test]
fn reading_a_store_that_does_not_exist_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let (ok, _, stderr) = run_cli(&["orders", "list", "--data-dir", missing.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("no store at") && stderr.contains("--data-dir"),
        "{stderr}"
    );
    assert!(!missing.exists(), "a read does not create a store");
}

#[test]
fn init_writes_a_config_that_serve_accepts_and_does_not_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("listener.toml");
    let path_text = path.to_str().unwrap();
    let (ok, stdout, stderr) = run_cli(&["init", "--config", path_text]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("order-listener serve --config"), "{stdout}");
    let config = order_listener::config::Config::load(Some(&path), &Default::default()).unwrap();
    assert_eq!(config.base_path, "/externalapi/listener/v1");

    let (ok, _, stderr) = run_cli(&["init", "--config", path_text]);
    assert!(!ok);
    assert!(stderr.contains("--force"), "{stderr}");
    assert!(run_cli(&["init", "--config", path_text, "--force"]).0);
}

#[test]
fn help_explains_the_commands_and_the_serve_flags() {
    let (ok, stdout, _) = run_cli(&["--help"]);
    assert!(ok);
    for word in ["serve", "init", "events", "orders", "ORDER_LISTENER_"] {
        assert!(stdout.contains(word), "--help mentions {word}");
    }
    let (ok, stdout, _) = run_cli(&["serve", "--help"]);
    assert!(ok);
    for flag in [
        "--config",
        "--listen",
        "--admin-listen",
        "--data-dir",
        "--database-url",
        "--plain-http",
        "--allow-anonymous",
        "--log-format",
    ] {
        assert!(stdout.contains(flag), "serve --help lists {flag}");
    }
}

#[test]
fn help_describes_reconcile_list_and_postgres_urls() {
    let (ok, stdout, _) = run_cli(&["--help"]);
    assert!(ok);
    // The command's summary, up to the next command.
    let reconcile: String = stdout
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("reconcile "))
        .take_while(|line| !line.trim_start().starts_with("prune "))
        .collect();
    for flag in ["--order", "--all-suspects", "--list", "--dry-run"] {
        assert!(reconcile.contains(flag), "{flag} in {reconcile}");
    }
    // Every command that takes --database-url says both kinds of store.
    for command in [
        &["serve"][..],
        &["events", "list"],
        &["orders", "show"],
        &["export"],
        &["import"],
        &["reconcile"],
        &["sinks", "list"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let (ok, stdout, _) = run_cli(&args);
        assert!(ok, "{command:?}");
        assert!(
            stdout.contains("sqlite:///") && stdout.contains("postgres://"),
            "{command:?}: {stdout}"
        );
    }
}

#[test]
fn a_bad_config_file_is_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\nbody_limit = 5\n").unwrap();
    let (ok, _, stderr) = run_cli(&["serve", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("body_limit"), "{stderr}");
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary())
        .args([
            "serve",
            "--plain-http",
            "--allow-anonymous",
            "--log-format",
            "json",
        ])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let entry: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not a JSON line: {line}"));
        assert!(
            entry["level"].is_string() && entry["timestamp"].is_string(),
            "{entry}"
        );
        let message = entry["message"].as_str().unwrap_or_default().to_owned();
        seen.push(message.clone());
        // The warning about anonymous access is written at every start.
        if message.contains("anonymous access is enabled") {
            assert_eq!(entry["level"], "WARN");
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        seen.iter()
            .any(|m| m.contains("anonymous access is enabled")),
        "{seen:?}"
    );
}

/// The flags of a `serve` that would start at once: plain HTTP, anonymous, port 0, `data`.
fn quick_serve_args<'a>(data: &'a std::path::Path, config: &'a std::path::Path) -> Vec<&'a str> {
    let mut args = vec!["--plain-http", "--allow-anonymous"];
    args.extend(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
    args.extend(["--data-dir", data.to_str().unwrap()]);
    args.extend(["--config", config.to_str().unwrap()]);
    args
}

#[test]
fn a_log_level_that_is_not_a_level_is_refused_at_start_with_the_levels_listed() {
    let dir = tempfile::tempdir().unwrap();
    let (file, data) = (dir.path().join("config.toml"), dir.path().join("data"));
    let says_what_to_write = |stderr: &str| {
        for word in [
            "trace",
            "debug",
            "info",
            "warn",
            "error",
            "off",
            "target=level",
        ] {
            assert!(stderr.contains(word), "names {word}: {stderr}");
        }
    };
    // EnvFilter reads these as target names: every log line, warnings included, would vanish.
    for level in ["warning", "loud"] {
        std::fs::write(&file, format!("log_level = \"{level}\"\n")).unwrap();
        let stderr = serve_refusal(&quick_serve_args(&data, &file), &[]);
        assert!(
            stderr.contains("log_level") && stderr.contains(&format!("`{level}` is not a level")),
            "{stderr}"
        );
        says_what_to_write(&stderr);
    }
    // RUST_LOG, which wins over log_level, is checked the same way.
    std::fs::write(&file, "log_level = \"info\"\n").unwrap();
    let stderr = serve_refusal(&quick_serve_args(&data, &file), &[("RUST_LOG", "warning")]);
    assert!(
        stderr.contains("RUST_LOG") && stderr.contains("`warning` is not a level"),
        "{stderr}"
    );
    says_what_to_write(&stderr);
}

#[tokio::test]
async fn target_directives_in_log_level_and_rust_log_keep_the_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    for (log_level, rust_log) in [
        ("order_listener=info,tower_http=warn", None),
        ("info", Some("order_listener=debug,tower_http=info")),
    ] {
        std::fs::write(&file, format!("log_level = \"{log_level}\"\n")).unwrap();
        let log = dir.path().join("serve.log");
        let data = dir.path().join("data");
        let child = start_binary_logging_at(&data, &file, &log, rust_log);
        eventually("the warning that anonymous access is on", async || {
            let text = std::fs::read_to_string(&log).ok()?;
            text.contains("anonymous access is enabled").then_some(())
        })
        .await;
        drop(child);
    }
}

#[tokio::test]
async fn text_logs_written_to_a_file_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (file, log) = (dir.path().join("config.toml"), dir.path().join("serve.log"));
    std::fs::write(&file, "log_format = \"text\"\n").unwrap();
    let _child = start_binary_logging_at(&dir.path().join("data"), &file, &log, Some("info"));
    let text = eventually("the warning that anonymous access is on", async || {
        let text = std::fs::read_to_string(&log).ok()?;
        text.contains("anonymous access is enabled").then_some(text)
    })
    .await;
    assert!(
        !text.contains('\u{1b}'),
        "no ANSI escape in a file: {text:?}"
    );
    assert!(text.contains(" WARN "), "{text}");
}

/// The words a POSIX shell hands to `curl` when the banner's "Try it" line is pasted, with
/// `API_KEY` set to `api_key` (a shell function stands in for curl and prints them).
fn pasted_curl_words(banner: &str, api_key: &str) -> Vec<String> {
    let line = banner
        .lines()
        .skip_while(|line| !line.starts_with("Try it:"))
        .nth(1)
        .expect("a line after Try it:")
        .trim();
    assert!(line.starts_with("curl "), "{line}");
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("curl() {{ printf '%s\\n' \"$@\"; }}\n{line}"))
        .env("API_KEY", api_key)
        .output()
        .expect("sh runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The word after `flag` in `words`.
fn after<'a>(words: &'a [String], flag: &str) -> &'a str {
    let at = words.iter().position(|word| word == flag);
    at.and_then(|at| words.get(at + 1))
        .unwrap_or_else(|| panic!("{flag} and a value in {words:?}"))
}

#[tokio::test]
async fn the_banners_curl_line_works_when_pasted_into_a_shell() {
    init();
    let dir = tempfile::tempdir().unwrap();
    // A data directory that the shell would split and expand if the line did not quote it.
    let data = dir.path().join("it's a $HOME dir");
    let mut config = TestConfig::new(&data)
        .overrides(|overrides| overrides.plain_http = None)
        .build();
    config.access.allow_anonymous = false;

    // The first start shows the key it generated, in the line.
    let first = order_listener::app::App::build(config.clone())
        .await
        .unwrap();
    let key = first
        .generated_key()
        .expect("a key")
        .key
        .expose()
        .to_owned();
    let cert_file = first.certificate().expect("HTTPS").cert_file.clone();
    let words = pasted_curl_words(&first.banner(), "from-the-environment");
    assert!(
        words.contains(&format!("Authorization: Bearer {key}")),
        "{words:?}"
    );
    assert_eq!(after(&words, "--cacert"), cert_file.to_str().unwrap());
    drop(first);

    // Every later start names $API_KEY, which the shell must expand.
    let second = order_listener::app::App::build(config).await.unwrap();
    let banner = second.banner();
    assert!(
        banner.contains(r#""Authorization: Bearer $API_KEY""#),
        "{banner}"
    );
    let words = pasted_curl_words(&banner, "from-the-environment");
    assert!(
        words.contains(&"Authorization: Bearer from-the-environment".to_owned()),
        "{words:?}"
    );
    assert_eq!(after(&words, "--cacert"), cert_file.to_str().unwrap());
    let body: Value = serde_json::from_str(after(&words, "-d")).expect("the body is one word");
    assert_eq!(body["eventType"], "ServiceOrderCreationNotification");
    assert_eq!(words.last(), Some(&second.listener_url()));
}

#[tokio::test]
async fn every_command_that_prints_ends_quietly_when_its_reader_closes_the_pipe() {
    let app = spawn_app().await;
    for event in onap_lifecycle("SO-pipe", 2) {
        assert_eq!(app.post(&event).await.status().as_u16(), 201);
    }
    let dir = app.data_dir.to_str().unwrap().to_owned();
    let event = "SO-pipe-created";
    let commands: &[&[&str]] = &[
        &["events", "list", "--limit", "500"],
        &["events", "list", "--json"],
        &["events", "show", event],
        &["events", "show", event, "--json"],
        &["events", "show", event, "--raw"],
        &["orders", "list"],
        &["orders", "list", "--json"],
        &["orders", "show", "SO-pipe"],
        &["orders", "show", "SO-pipe", "--json"],
        &["orders", "suspects"],
        &["sinks", "list"],
        &["dead-letters", "list"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.extend(["--data-dir", &dir]);
        let (status, stderr) = run_cli_into_a_closed_pipe(&args);
        assert!(
            !stderr.contains("panicked") && status.code() != Some(101),
            "{command:?}: {status}: {stderr}"
        );
        // A closed pipe is the reader's choice: the command ends quietly, as a success.
        assert_eq!(status.code(), Some(0), "{command:?}: {stderr}");
        assert_eq!(stderr, "", "{command:?} says nothing");
    }
    // An export cut short is incomplete: an error, so that `set -o pipefail` sees it.
    let (status, stderr) = run_cli_into_a_closed_pipe(&["export", "--data-dir", &dir]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("standard output was closed") && stderr.contains("export is incomplete"),
        "{stderr}"
    );
    // Another failure is still one, pipe closed or not.
    let (status, stderr) = run_cli_into_a_closed_pipe(&["init", "--config", "/dev/null/x"]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write /dev/null/x"), "{stderr}");
}

#[test]
fn serve_keeps_serving_when_its_banner_cannot_be_printed() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(binary())
        .args(["serve", "--plain-http", "--allow-anonymous"])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let mut seen = Vec::new();
    // The warning, then the one `App::run` logs once it serves.
    for expected in [
        "cannot print the start-up banner",
        "anonymous access is enabled",
    ] {
        let found = lines.by_ref().any(|line| {
            seen.push(line.clone());
            line.contains(expected)
        });
        assert!(found, "{expected:?} in {seen:#?}");
    }
    assert!(child.try_wait().unwrap().is_none(), "it serves: {seen:#?}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_client_whose_new_secret_cannot_be_shown_is_told_how_to_make_another() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("listener.toml");
    let file = file.to_str().unwrap();
    let (status, stderr) = run_cli_into_a_closed_pipe(&["client", "add", "nbi", "--config", file]);
    // The file keeps only the key's hash: the key is lost, which is not a quiet end.
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("order-listener client rotate nbi"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = run_cli(&["client", "rotate", "nbi", "--config", file]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("will not be shown again"), "{stdout}");
}

#[test]
fn a_closed_standard_error_does_not_make_a_command_panic() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    for args in [
        // Says "no event with id …" on standard error, and exits with 1.
        &["events", "show", "no-such-event", "--data-dir", data][..],
        // An error, which the binary's main prints.
        &["init", "--config", "/dev/null/x"][..],
    ] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let status = Command::new(binary())
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(writer)
            .status()
            .expect("the CLI runs");
        assert_eq!(status.code(), Some(1), "{args:?}: {status}");
    }
}
