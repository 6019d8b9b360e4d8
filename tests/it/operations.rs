//! The operations guide's files hold what they claim: the alert rules name only metrics the
//! listener exports (and promtool accepts them when it is installed), the systemd unit runs
//! `serve` with its stable flags and reloads with SIGHUP, and the container image starts `serve`.

use std::collections::BTreeSet;

use crate::helpers::*;

fn read(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/docs/operations/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The metric families a rule file or an exposition names: `order_listener_…` without the
/// suffixes Prometheus adds to counters and histograms.
fn families(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (start, _) in text.match_indices("order_listener_") {
        let name: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let family = ["_total", "_bucket", "_count", "_sum", "_created"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name)
            .to_owned();
        found.insert(family);
    }
    found
}

/// The metric families `src/metrics.rs` registers: `register("name", …)`, and
/// `register_with_unit("name", …, Unit::Seconds)` as `name_seconds`.
fn registered() -> BTreeSet<String> {
    let source =
        std::fs::read_to_string(format!("{}/src/metrics.rs", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let compact: String = source.split_whitespace().collect();
    let mut names = BTreeSet::new();
    for (marker, suffix) in [("register(\"", ""), ("register_with_unit(\"", "_seconds")] {
        for piece in compact.split(marker).skip(1) {
            let name = &piece[..piece.find('"').unwrap()];
            names.insert(format!("order_listener_{name}{suffix}"));
        }
    }
    names
}

#[tokio::test]
async fn the_alert_rules_name_only_metrics_the_listener_exports() {
    let rules = read("alerts.yml");
    let named = families(&rules);
    assert!(named.len() >= 8, "{named:?}");
    let registered = registered();
    let unknown: Vec<&String> = named.difference(&registered).collect();
    assert!(
        unknown.is_empty(),
        "rules name {unknown:?}; registered: {registered:?}"
    );
    // The reading of the source is checked against a running listener's exposition.
    let app = spawn_app().await;
    assert_eq!(
        app.post(&onap_lifecycle("SO-ops", 1)[0])
            .await
            .status()
            .as_u16(),
        201
    );
    let exposition = app.metrics_text().await;
    let exported: BTreeSet<String> = exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert!(exported.contains("order_listener_requests"), "{exported:?}");
    let unread: Vec<&String> = exported.difference(&registered).collect();
    assert!(
        unread.is_empty(),
        "exported but not read from the source: {unread:?}"
    );
}

#[test]
fn promtool_accepts_the_alert_rules() {
    let Ok(promtool) = std::env::var("ORDER_LISTENER_TEST_PROMTOOL") else {
        eprintln!(
            "skipped: set ORDER_LISTENER_TEST_PROMTOOL to check the alert rules with promtool"
        );
        return;
    };
    let output = std::process::Command::new(promtool)
        .args(["check", "rules"])
        .arg(format!(
            "{}/docs/operations/alerts.yml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .output()
        .expect("promtool runs");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_systemd_unit_serves_with_the_stable_flags_and_reloads_with_sighup() {
    let unit = read("order-listener.service");
    let value = |key: &str| {
        unit.lines()
            .find_map(|line| line.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("the unit sets {key}"))
            .to_owned()
    };
    let start = value("ExecStart");
    assert!(start.contains(" serve "), "{start}");
    let (ok, help, _) = run_cli(&["serve", "--help"]);
    assert!(ok);
    for flag in start
        .split_whitespace()
        .filter(|word| word.starts_with("--"))
    {
        assert!(help.contains(flag), "`serve` has no {flag}");
    }
    assert_eq!(value("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert!(
        start.contains(&value("ReadWritePaths")),
        "the data dir is writable"
    );
    let grace: u64 = value("TimeoutStopSec").parse().unwrap();
    assert!(grace > 10, "longer than the default shutdown grace");
}

#[test]
fn the_container_image_runs_serve_from_debian_with_its_settings_in_the_environment() {
    let file = read("Containerfile");
    let from: Vec<&str> = file
        .lines()
        .filter(|line| line.starts_with("FROM "))
        .collect();
    assert_eq!(from, ["FROM docker.io/library/debian:bookworm-slim"]);
    assert!(file.contains("CMD [\"serve\"]"));
    for variable in [
        "ORDER_LISTENER_LISTEN",
        "ORDER_LISTENER_ADMIN_LISTEN",
        "ORDER_LISTENER_DATA_DIR",
    ] {
        assert!(file.contains(variable), "{variable}");
    }
    // Each variable is a setting of the configuration file, as `serve` reads the environment.
    let defaults = order_listener::config::DEFAULT_CONFIG;
    for variable in [
        "ORDER_LISTENER_LISTEN",
        "ORDER_LISTENER_ADMIN_LISTEN",
        "ORDER_LISTENER_DATA_DIR",
    ] {
        let key = variable
            .strip_prefix(order_listener::config::ENV_PREFIX)
            .unwrap()
            .to_lowercase();
        assert!(
            defaults.lines().any(|line| line
                .trim_start_matches("# ")
                .starts_with(&format!("{key} ="))),
            "{key} is not a setting"
        );
    }
}
