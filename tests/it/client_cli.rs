//! `order-listener client add|list|rotate|disable|enable|remove`, run as the real binary on a
//! config file in a temporary directory; then the file is loaded as `serve` loads it.

use std::path::{Path, PathBuf};

use argon2::PasswordVerifier;
use order_listener::config::clients::{Credential, parse_key_hash};
use order_listener::config::{Config, Overrides};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::helpers::*;

/// A temporary directory and the path of a config file in it (not created).
fn config_path() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("listener.toml");
    (dir, path)
}

/// Runs `order-listener client ARGS --config PATH`; asserts success and returns stdout.
fn client_ok(path: &Path, args: &[&str]) -> String {
    let (ok, stdout, stderr) = client_run(path, args);
    assert!(ok, "client {args:?} failed: {stderr}\n{stdout}");
    stdout
}

/// Runs `order-listener client ARGS --config PATH`; asserts failure and returns stderr.
fn client_err(path: &Path, args: &[&str]) -> String {
    let (ok, stdout, stderr) = client_run(path, args);
    assert!(!ok, "client {args:?} succeeded: {stdout}");
    stderr
}

fn client_run(path: &Path, args: &[&str]) -> (bool, String, String) {
    let mut full = vec!["client"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--config", path.to_str().unwrap()]);
    run_cli(&full)
}

/// The printed words that start with `prefix` (secrets are printed on their own line).
fn words_with_prefix<'a>(stdout: &'a str, prefix: &str) -> Vec<&'a str> {
    stdout
        .split_whitespace()
        .filter(|word| word.starts_with(prefix))
        .collect()
}

/// The one secret printed after the line that mentions `label`.
fn secret_after<'a>(stdout: &'a str, label: &str) -> &'a str {
    let mut lines = stdout.lines();
    lines
        .find(|line| line.contains(label))
        .unwrap_or_else(|| panic!("no line with {label:?} in {stdout}"));
    lines.next().unwrap().trim()
}

fn load(path: &Path) -> Config {
    Config::load(Some(path), &Overrides::default()).unwrap()
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// The `hash` of every API key of a client, as written in the file.
fn key_hashes(path: &Path, client: &str) -> Vec<String> {
    let file: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    file["clients"][client]["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["hash"].as_str().unwrap().to_owned())
        .collect()
}

/// The `expires_at` of every API key of a client.
fn key_expiries(path: &Path, client: &str) -> Vec<Option<chrono::DateTime<chrono::Utc>>> {
    let config = load(path);
    let client = config
        .access
        .clients
        .iter()
        .find(|known| known.name.as_str() == client)
        .unwrap();
    client
        .credentials
        .iter()
        .filter_map(|credential| match credential {
            Credential::ApiKey { expires_at, .. } => Some(*expires_at),
            _ => None,
        })
        .collect()
}

#[test]
fn add_prints_a_key_once_and_the_file_keeps_only_its_hash() {
    let (_dir, path) = config_path();
    let stdout = client_ok(&path, &["add", "nbi"]);
    assert!(stdout.contains("created"), "{stdout}");
    assert!(stdout.contains("will not be shown again"), "{stdout}");
    assert!(
        stdout.contains("send SIGHUP to `order-listener serve`"),
        "{stdout}"
    );
    let keys = words_with_prefix(&stdout, "olk_");
    assert_eq!(keys.len(), 1, "the key is printed once: {stdout}");
    let key = keys[0];

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(key), "the file holds no key");
    let hashes = key_hashes(&path, "nbi");
    assert_eq!(hashes.len(), 1);
    assert!(hashes[0].starts_with("sha256:"));
    assert_eq!(parse_key_hash(&hashes[0]).unwrap(), sha256(key));

    let config = load(&path);
    assert_eq!(config.access.clients.len(), 1);
    let client = &config.access.clients[0];
    assert_eq!(client.name.as_str(), "nbi");
    assert!(client.enabled);
    let [Credential::ApiKey { hash, header, .. }] = client.credentials.as_slice() else {
        panic!("one API key: {:?}", client.credentials);
    };
    assert_eq!(*hash, sha256(key));
    assert_eq!(*header, None);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn add_with_options_writes_each_setting() {
    let (_dir, path) = config_path();
    let stdout = client_ok(
        &path,
        &[
            "add",
            "seller-1",
            "--api-key-header",
            "X-Api-Key",
            "--expires-in",
            "90d",
            "--event-type",
            "ServiceOrderStateChangeNotification",
            "--allow-source",
            "10.1.0.0/16",
            "--rate",
            "2.5",
            "--burst",
            "10",
        ],
    );
    assert!(stdout.contains("X-Api-Key: <key>"), "{stdout}");
    let key = words_with_prefix(&stdout, "olk_")[0];
    let config = load(&path);
    let client = &config.access.clients[0];
    let [
        Credential::ApiKey {
            hash,
            header,
            expires_at,
        },
    ] = client.credentials.as_slice()
    else {
        panic!("one API key: {:?}", client.credentials);
    };
    assert_eq!(*hash, sha256(key));
    assert_eq!(header.as_ref().unwrap().as_str(), "x-api-key");
    let days = (expires_at.unwrap() - chrono::Utc::now()).num_days();
    assert!((89..=90).contains(&days), "{days}");
    assert_eq!(client.policy.event_types.as_ref().unwrap().len(), 1);
    let rate = client.policy.rate.unwrap();
    assert_eq!((rate.per_second, rate.burst.get()), (2.5, 10));
}

#[test]
fn public_key_methods_generate_no_api_key_unless_asked() {
    let (dir, path) = config_path();
    std::fs::write(&path, "[tls]\nclient_ca_file = \"ca.pem\"\n").unwrap();
    let pem = dir.path().join("issuer.pem");
    std::fs::write(&pem, rcgen::KeyPair::generate().unwrap().public_key_pem()).unwrap();
    let stdout = client_ok(
        &path,
        &[
            "add",
            "portal",
            "--jwt-public-key",
            pem.to_str().unwrap(),
            "--jwt-issuer",
            "https://issuer.example",
            "--mtls-subject",
            "cn = nbi.example, O=Seller",
            "--mtls-san",
            "nbi.example",
        ],
    );
    assert!(words_with_prefix(&stdout, "olk_").is_empty(), "{stdout}");
    let config = load(&path);
    let methods: Vec<&str> = config.access.clients[0]
        .credentials
        .iter()
        .map(Credential::method)
        .collect();
    assert_eq!(methods, vec!["jwt", "mtls"]);
    let Credential::Mtls { subjects, sans } = &config.access.clients[0].credentials[1] else {
        panic!("mtls");
    };
    assert_eq!(subjects, &vec!["CN=nbi.example,O=Seller".to_owned()]);
    assert_eq!(sans, &vec!["nbi.example".to_owned()]);

    let stdout = client_ok(
        &path,
        &[
            "add",
            "portal-2",
            "--jwt-public-key",
            pem.to_str().unwrap(),
            "--api-key",
        ],
    );
    assert_eq!(words_with_prefix(&stdout, "olk_").len(), 1, "{stdout}");
    let config = load(&path);
    let methods: Vec<&str> = config.access.clients[1]
        .credentials
        .iter()
        .map(Credential::method)
        .collect();
    assert_eq!(methods, vec!["api-key", "jwt"]);
}

#[test]
fn basic_stores_an_argon2_hash_that_verifies_the_printed_password() {
    let (_dir, path) = config_path();
    let stdout = client_ok(&path, &["add", "nbi", "--basic", "nbi-user"]);
    assert!(
        words_with_prefix(&stdout, "olk_").is_empty(),
        "no API key unless asked for: {stdout}"
    );
    let password = secret_after(&stdout, "password for user nbi-user");
    assert!(password.len() >= 24, "{password}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(password), "the file holds no password");

    let config = load(&path);
    let [
        Credential::Basic {
            user,
            password_hash,
            ..
        },
    ] = config.access.clients[0].credentials.as_slice()
    else {
        panic!("one Basic credential");
    };
    assert_eq!(user, "nbi-user");
    assert!(password_hash.starts_with("$argon2id$"), "{password_hash}");
    let argon2 = argon2::Argon2::default();
    assert!(
        argon2
            .verify_password(password.as_bytes(), password_hash.as_str())
            .is_ok()
    );
    assert!(
        argon2
            .verify_password(b"not the password", password_hash.as_str())
            .is_err()
    );
}

#[test]
fn list_shows_each_client_but_no_secret_or_hash() {
    let (_dir, path) = config_path();
    let mut secrets = Vec::new();
    let stdout = client_ok(&path, &["add", "keyed", "--expires-in", "30d"]);
    secrets.push(words_with_prefix(&stdout, "olk_")[0].to_owned());
    let stdout = client_ok(&path, &["add", "signed", "--webhook", "--basic", "u"]);
    secrets.push(words_with_prefix(&stdout, "whsec_")[0].to_owned());
    secrets.push(secret_after(&stdout, "password for user u").to_owned());
    client_ok(&path, &["disable", "signed"]);

    let table = client_ok(&path, &["list"]);
    let json = client_ok(&path, &["list", "--json"]);
    for output in [&table, &json] {
        for secret in &secrets {
            assert!(!output.contains(secret.as_str()), "{output}");
        }
        for marker in ["olk_", "whsec_", "sha256", "argon2"] {
            assert!(!output.contains(marker), "{marker} in {output}");
        }
    }
    assert!(
        table.contains("keyed") && table.contains("signed") && table.contains("webhook (hmac)"),
        "{table}"
    );
    let clients: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(clients.len(), 2);
    assert_eq!(clients[0]["name"], "keyed");
    assert_eq!(clients[0]["enabled"], true);
    assert!(clients[0]["nextExpiry"].is_string(), "{json}");
    assert_eq!(clients[1]["name"], "signed");
    assert_eq!(clients[1]["enabled"], false);
    assert_eq!(
        clients[1]["methods"],
        serde_json::json!(["basic (u)", "webhook (hmac)"])
    );
}

#[test]
fn rotate_with_a_grace_keeps_the_old_key_until_then_and_adds_a_new_one() {
    let (_dir, path) = config_path();
    let stdout = client_ok(&path, &["add", "nbi", "--api-key-header", "X-Api-Key"]);
    let old_key = words_with_prefix(&stdout, "olk_")[0].to_owned();

    let stdout = client_ok(&path, &["rotate", "nbi", "--grace", "2h"]);
    let new_keys = words_with_prefix(&stdout, "olk_");
    assert_eq!(new_keys.len(), 1, "{stdout}");
    let new_key = new_keys[0];
    assert_ne!(new_key, old_key);
    assert!(stdout.contains("X-Api-Key: <key>"), "same header: {stdout}");

    let hashes: Vec<[u8; 32]> = key_hashes(&path, "nbi")
        .iter()
        .map(|hash| parse_key_hash(hash).unwrap())
        .collect();
    assert_eq!(hashes, vec![sha256(&old_key), sha256(new_key)]);
    let expiries = key_expiries(&path, "nbi");
    let old_expiry = expiries[0].expect("the old key now expires");
    let minutes = (old_expiry - chrono::Utc::now()).num_minutes();
    assert!((110..=120).contains(&minutes), "{minutes}");
    assert_eq!(expiries[1], None, "the new key does not expire");

    // A second rotation keeps the earlier expiry of the first key.
    client_ok(&path, &["rotate", "nbi", "--grace", "7d"]);
    let expiries = key_expiries(&path, "nbi");
    assert_eq!(expiries.len(), 3);
    assert_eq!(expiries[0], Some(old_expiry));
    assert!(expiries[1].unwrap() > old_expiry);
}

#[test]
fn rotate_with_no_grace_expires_the_old_key_now() {
    let (_dir, path) = config_path();
    client_ok(&path, &["add", "nbi"]);
    let before = chrono::Utc::now();
    let stdout = client_ok(&path, &["rotate", "nbi", "--grace", "0s"]);
    assert!(stdout.contains("refused from now on"), "{stdout}");
    let expiries = key_expiries(&path, "nbi");
    let old_expiry = expiries[0].unwrap();
    assert!(old_expiry <= chrono::Utc::now());
    assert!(old_expiry >= before - chrono::Duration::seconds(1));
    assert_eq!(expiries[1], None);
}

#[test]
fn rotate_renews_basic_and_webhook_secrets_and_says_public_keys_are_not_rotated() {
    let (_dir, path) = config_path();
    let public = format!(
        "whpk_{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32])
    );
    let stdout = client_ok(
        &path,
        &[
            "add",
            "seller",
            "--basic",
            "u",
            "--webhook",
            "--webhook-public-key",
            &public,
        ],
    );
    let old_secret = words_with_prefix(&stdout, "whsec_")[0].to_owned();
    let old_password = secret_after(&stdout, "password for user u").to_owned();

    let stdout = client_ok(&path, &["rotate", "seller"]);
    let new_secret = words_with_prefix(&stdout, "whsec_")[0].to_owned();
    let new_password = secret_after(&stdout, "password for user u").to_owned();
    assert_ne!(new_secret, old_secret);
    assert_ne!(new_password, old_password);
    assert!(stdout.contains("still verifies"), "{stdout}");
    assert!(
        stdout.contains("Not rotated here: webhook ed25519"),
        "{stdout}"
    );
    let webhook_keys = |path: &Path| -> Vec<String> {
        let file: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        file["clients"]["seller"]["webhook"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        webhook_keys(&path),
        vec![new_secret.clone(), old_secret, public.clone()]
    );
    let config = load(&path);
    let Some(Credential::Basic { password_hash, .. }) = config.access.clients[0]
        .credentials
        .iter()
        .find(|credential| matches!(credential, Credential::Basic { .. }))
    else {
        panic!("a Basic credential");
    };
    assert!(
        argon2::Argon2::default()
            .verify_password(new_password.as_bytes(), password_hash.as_str())
            .is_ok()
    );

    let stdout = client_ok(&path, &["rotate", "seller", "--webhook", "--grace", "0s"]);
    let newest = words_with_prefix(&stdout, "whsec_")[0].to_owned();
    assert_eq!(webhook_keys(&path), vec![newest, public]);
}

#[test]
fn rotating_a_client_with_only_public_keys_is_refused_and_says_why() {
    let (_dir, path) = config_path();
    let public = format!(
        "whpk_{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32])
    );
    client_ok(&path, &["add", "seller", "--webhook-public-key", &public]);
    assert!(
        key_expiries(&path, "seller").is_empty(),
        "no API key unless asked for"
    );
    let stderr = client_err(&path, &["rotate", "seller"]);
    assert!(
        stderr.contains("nothing") || stderr.contains("no API key"),
        "{stderr}"
    );
    assert!(stderr.contains("keys that the client holds"), "{stderr}");
}

#[test]
fn disable_and_enable_flip_enabled() {
    let (_dir, path) = config_path();
    client_ok(&path, &["add", "nbi"]);
    let stdout = client_ok(&path, &["disable", "nbi"]);
    assert!(stdout.contains("disabled"), "{stdout}");
    assert!(!load(&path).access.clients[0].enabled);
    let stdout = client_ok(&path, &["disable", "nbi"]);
    assert!(stdout.contains("already disabled"), "{stdout}");
    client_ok(&path, &["enable", "nbi"]);
    assert!(load(&path).access.clients[0].enabled);
}

#[test]
fn remove_deletes_the_client() {
    let (_dir, path) = config_path();
    client_ok(&path, &["add", "first"]);
    client_ok(&path, &["add", "second"]);
    client_ok(&path, &["remove", "first"]);
    let config = load(&path);
    let names: Vec<&str> = config
        .access
        .clients
        .iter()
        .map(|client| client.name.as_str())
        .collect();
    assert_eq!(names, vec!["second"]);
}

#[test]
fn comments_and_layout_of_the_file_survive_an_edit() {
    let (_dir, path) = config_path();
    let original = "\
# The operator's notes about this listener.
listen = \"127.0.0.1:8443\"   # behind the gateway

# Who sends what.
[clients.legacy]
# The old seller, until March.
enabled = true # keep on
api_keys = [{ hash = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\" }]

[tls]
# Certificates come from the PKI.
# cert_file = \"/etc/x.pem\"
";
    std::fs::write(&path, original).unwrap();
    client_ok(&path, &["add", "nbi"]);
    client_ok(&path, &["disable", "legacy"]);
    client_ok(&path, &["rotate", "legacy"]);
    let text = std::fs::read_to_string(&path).unwrap();
    for line in [
        "# The operator's notes about this listener.",
        "listen = \"127.0.0.1:8443\"   # behind the gateway",
        "# Who sends what.",
        "# The old seller, until March.",
        "enabled = false # keep on",
        "# Certificates come from the PKI.",
        "# cert_file = \"/etc/x.pem\"",
    ] {
        assert!(text.contains(line), "{line:?} is kept:\n{text}");
    }
    let (legacy, nbi, tls) = (
        text.find("[clients.legacy]").unwrap(),
        text.find("[clients.nbi]").unwrap(),
        text.find("[tls]").unwrap(),
    );
    assert!(
        legacy < nbi && nbi < tls,
        "the new client follows the others:\n{text}"
    );
    // The untouched start of the file is byte for byte the same.
    assert!(
        text.starts_with(&original[..original.find("[clients.legacy]").unwrap()]),
        "{text}"
    );
    let config = load(&path);
    assert_eq!(config.access.clients.len(), 2);
}

#[test]
fn adding_then_removing_a_client_gives_back_the_file_byte_for_byte() {
    let (_dir, path) = config_path();
    assert!(run_cli(&["init", "--config", path.to_str().unwrap()]).0);
    let original = std::fs::read_to_string(&path).unwrap();
    // The default file ends with `[tls]` and its commented keys, which stay under it.
    let tls = original.find("[tls]").unwrap();
    let tls_section = &original[tls..];

    client_ok(&path, &["add", "nbi"]);
    client_ok(&path, &["add", "other", "--basic", "u"]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(tls_section), "{text}");
    assert!(
        text.find("[clients.nbi]").unwrap() < text.find("[clients.other]").unwrap(),
        "{text}"
    );

    client_ok(&path, &["remove", "nbi"]);
    client_ok(&path, &["remove", "other"]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
}

#[test]
fn adding_an_existing_client_is_refused() {
    let (_dir, path) = config_path();
    client_ok(&path, &["add", "nbi"]);
    let before = std::fs::read_to_string(&path).unwrap();
    let stderr = client_err(&path, &["add", "nbi"]);
    assert!(stderr.contains("already"), "{stderr}");
    assert!(stderr.contains("client rotate nbi"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
}

#[test]
fn an_unknown_client_is_refused_with_the_known_names() {
    let (_dir, path) = config_path();
    client_ok(&path, &["add", "alpha"]);
    client_ok(&path, &["add", "beta"]);
    for command in ["rotate", "disable", "enable", "remove"] {
        let stderr = client_err(&path, &[command, "gamma"]);
        assert!(
            stderr.contains("no client named gamma") && stderr.contains("alpha, beta"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn an_invalid_name_is_refused_with_the_rule() {
    let (_dir, path) = config_path();
    let stderr = client_err(&path, &["add", "has space"]);
    assert!(stderr.contains("1 to 64 letters"), "{stderr}");
    assert!(!path.exists());
}

#[test]
fn commands_other_than_add_need_an_existing_file() {
    let (_dir, path) = config_path();
    for args in [&["list"][..], &["disable", "nbi"], &["rotate", "nbi"]] {
        let stderr = client_err(&path, args);
        assert!(
            stderr.contains("does not exist")
                && stderr.contains("client add")
                && stderr.contains("order-listener init"),
            "{args:?}: {stderr}"
        );
    }
    assert!(!path.exists());
}

#[test]
fn an_edit_that_would_not_load_is_not_written() {
    let (_dir, path) = config_path();
    client_ok(&path, &["add", "nbi"]);
    let before = std::fs::read_to_string(&path).unwrap();
    // mTLS needs tls.client_ca_file, which this file does not set.
    let stderr = client_err(
        &path,
        &["add", "certified", "--mtls-subject", "CN=nbi.example"],
    );
    assert!(
        stderr.contains("nothing was written") && stderr.contains("client_ca_file"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no temporary file is left: {leftovers:?}"
    );
}

#[test]
fn client_help_explains_each_subcommand_and_flag() {
    let (ok, stdout, _) = run_cli(&["client", "--help"]);
    assert!(ok);
    for word in [
        "add", "list", "rotate", "disable", "enable", "remove", "--config",
    ] {
        assert!(stdout.contains(word), "client --help mentions {word}");
    }
    let (ok, stdout, _) = run_cli(&["client", "add", "--help"]);
    assert!(ok);
    for flag in [
        "--api-key-header",
        "--expires-in",
        "--basic",
        "--webhook",
        "--webhook-public-key",
        "--jwt-public-key",
        "--mtls-subject",
        "--event-type",
        "--allow-source",
        "--rate",
        "--burst",
    ] {
        assert!(stdout.contains(flag), "client add --help lists {flag}");
    }
    let (ok, stdout, _) = run_cli(&["client", "rotate", "--help"]);
    assert!(ok);
    assert!(
        stdout.contains("--grace") && stdout.contains("24h"),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_listener_accepts_the_key_printed_by_client_add() {
    let (dir, path) = config_path();
    let stdout = client_ok(&path, &["add", "nbi"]);
    let key = words_with_prefix(&stdout, "olk_")[0].to_owned();
    let config = TestConfig::new(dir.path().join("data"))
        .file(&path)
        .overrides(|overrides| overrides.allow_anonymous = None)
        .build();
    let app = start(config).await;

    let event = onap_event(
        "client-cli-1",
        "ServiceOrderCreationNotification",
        0,
        "SO-client-cli",
        "acknowledged",
        vec![onap_item("1", "add", "acknowledged")],
    );
    assert_error(app.post(&event).await, 401, 40).await;
    let response = app.post_as(&key, &event).await;
    assert_eq!(response.status().as_u16(), 201);
    let (_, stored) = app.admin_get("/api/v1/events/client-cli-1").await;
    assert_eq!(stored["client"], "nbi");
    app.stop().await;
}
