//! Shared test helpers, one submodule an area: the app in process (`app`), ONAP-shaped payloads
//! (`onap`), the running binary and the CLI (`binary`), waiting on a condition (`wait`) and the
//! webhook receiver (`webhook`). Callers `use crate::helpers::*;` and get every helper by name.

use std::sync::Once;

use serde_json::{Value, json};

mod app;
mod binary;
mod onap;
mod wait;
mod webhook;

pub(crate) use app::{
    TestApp, TestConfig, admin_json, bearer_json, config_dir, config_error, spawn_app,
    spawn_app_from_file, spawn_app_with, spawn_app_with_file, start,
};
pub(crate) use binary::{
    RunningBinary, banner_value, binary, run_cli, run_cli_into_a_closed_pipe, run_cli_on,
    serve_refusal, spawn_serve, spawn_serve_logging, start_binary, start_binary_logging,
    start_binary_logging_at, start_binary_with,
};
pub(crate) use onap::{onap_creation, onap_date, onap_event, onap_item, onap_lifecycle};
pub(crate) use wait::{PATIENCE, eventually, when_outbox_changes};
pub(crate) use webhook::{Received, WebhookReceiver};

/// The admin token every test app is given.
pub(crate) const ADMIN_TOKEN: &str = "test-admin-token";

static INIT: Once = Once::new();

/// Installs the TLS provider for the test client, and logs when `TEST_LOG=1`.
pub(crate) fn init() {
    INIT.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        if std::env::var_os("TEST_LOG").is_some() {
            let debug = "debug".parse().expect("debug is a level");
            let filter = order_listener::telemetry::chosen_filter(&debug)
                .expect("RUST_LOG, when set, is a log filter");
            order_listener::telemetry::init(order_listener::telemetry::LogFormat::Text, &filter);
        }
    });
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
