//! Start-up refusals and warnings that say what to fix: addresses that are not addresses,
//! ports taken, one address for both listeners, a data directory that cannot be used, TLS
//! settings that plain HTTP ignores. Each runs the real binary, or loads the configuration as
//! `serve` does.

use std::path::Path;

use crate::helpers::*;

/// `serve`'s flags for plain HTTP and anonymous access on `data`, with `config`.
fn serve_args<'a>(data: &'a Path, config: &'a Path) -> Vec<&'a str> {
    let mut args = vec!["--plain-http", "--allow-anonymous"];
    args.extend(["--data-dir", data.to_str().unwrap()]);
    args.extend(["--config", config.to_str().unwrap()]);
    args
}

#[test]
fn a_host_name_for_an_address_is_refused_with_the_forms_that_work() {
    let (ok, _, stderr) = run_cli(&["serve", "--listen", "localhost:18280"]);
    assert!(!ok);
    assert!(
        stderr.contains("localhost:18280")
            && stderr.contains("127.0.0.1:8443")
            && stderr.contains("[::1]:8443"),
        "{stderr}"
    );
    let (ok, _, stderr) = run_cli(&["serve", "--admin-listen", "localhost"]);
    assert!(!ok && stderr.contains("[::1]:8443"), "{stderr}");

    // In the file, too.
    let (_dir, error) = config_error("admin_listen = \"localhost:9090\"\n");
    assert!(
        error.contains("admin_listen") && error.contains("127.0.0.1:8443"),
        "{error}"
    );
}

#[test]
fn one_address_for_both_listeners_is_refused_when_the_configuration_loads() {
    let (_dir, error) =
        config_error("listen = \"127.0.0.1:18290\"\nadmin_listen = \"127.0.0.1:18290\"\n");
    assert!(
        error.contains("listen and admin_listen are the same address"),
        "{error}"
    );
    let (_dir, error) =
        config_error("listen = \"0.0.0.0:18290\"\nadmin_listen = \"127.0.0.1:18290\"\n");
    assert!(
        error.contains("listen and admin_listen are the same address"),
        "{error}"
    );
}

#[test]
fn a_port_in_use_names_the_flag_and_the_config_key() {
    // Held by the test: the port is taken for as long as it lives.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let (file, data) = (dir.path().join("config.toml"), dir.path().join("data"));
    for (setting, other, flag) in [
        ("listen", "admin_listen", "--listen"),
        ("admin_listen", "listen", "--admin-listen"),
    ] {
        std::fs::write(
            &file,
            format!("{setting} = \"127.0.0.1:{port}\"\n{other} = \"127.0.0.1:0\"\n"),
        )
        .unwrap();
        let stderr = serve_refusal(&serve_args(&data, &file), &[]);
        assert!(
            stderr.contains(&format!("127.0.0.1:{port}"))
                && stderr.contains(&format!("{flag} or {setting} in the config file")),
            "{stderr}"
        );
    }
}

#[test]
fn a_data_directory_that_cannot_be_used_is_named_with_what_to_do() {
    // Tests run as root, whom permissions do not stop: a path under a regular file fails for
    // anyone.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "not a directory").unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "").unwrap();

    let data = file.join("sub");
    let stderr = serve_refusal(&serve_args(&data, &config), &[]);
    assert!(
        stderr.contains(&format!("the data directory {}", data.display()))
            && stderr.contains(
                "choose another --data-dir (data_dir in the config file), or fix its permissions"
            ),
        "{stderr}"
    );

    // A SQLite store named by database_url, elsewhere: that setting is the one to change.
    let store = file.join("store.sqlite3");
    std::fs::write(
        &config,
        format!("database_url = \"sqlite://{}\"\n", store.display()),
    )
    .unwrap();
    let stderr = serve_refusal(&serve_args(&dir.path().join("data"), &config), &[]);
    assert!(
        stderr.contains(&format!("the store's directory {}", file.display()))
            && stderr.contains("choose another database_url, or fix its permissions"),
        "{stderr}"
    );
}

#[tokio::test]
async fn tls_files_with_plain_http_are_warned_about_and_the_listener_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (file, log) = (dir.path().join("config.toml"), dir.path().join("serve.log"));
    // Not read: plain HTTP never loads them.
    std::fs::write(
        &file,
        "[tls]\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n",
    )
    .unwrap();
    let child = start_binary_logging_at(&dir.path().join("data"), &file, &log, Some("warn"));
    assert!(
        child.listener_url.starts_with("http://"),
        "{}",
        child.listener_url
    );
    let line = eventually("the warning about the TLS settings", async || {
        let text = std::fs::read_to_string(&log).ok()?;
        text.lines()
            .find(|line| line.contains("tls.cert_file"))
            .map(str::to_owned)
    })
    .await;
    assert!(
        line.contains("WARN")
            && line.contains("tls.cert_file and tls.key_file ignored")
            && line.contains("--plain-http"),
        "{line}"
    );

    // Without TLS settings, no such warning.
    let config = TestConfig::new(dir.path().join("other")).build();
    assert!(config.ignored.is_empty(), "{:?}", config.ignored);
}

#[test]
#[allow(clippy::result_large_err)] // figment's own test harness
fn an_ipv6_address_in_the_environment_reads_as_one() {
    use figment::providers::Env;
    use order_listener::config::{Config, Overrides};
    // `[::1]:…` starts as a TOML array would: it must still read as the address it is.
    figment::Jail::expect_with(|jail| {
        jail.set_env("OLIT6_LISTEN", "[::1]:18443");
        jail.set_env("OLIT6_ADMIN_LISTEN", "[::]:19090");
        let config = Config::load_from(
            None,
            Env::prefixed("OLIT6_").split("__"),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(config.listen, "[::1]:18443".parse().unwrap());
        assert_eq!(config.admin_listen, "[::]:19090".parse().unwrap());
        Ok(())
    });
}
