//! Sinks over TLS to servers that a private CA vouches for and that ask for a client
//! certificate (`ca_cert`, `client_cert`, `client_key` in `[sinks.NAME]`). Each test starts a
//! real server of its own with TLS and client-certificate checks on (nats-server, Mosquitto,
//! redis-server; for HTTP, a hyper server in the test), and gives the app three sinks to it:
//! `trusted` (the CA and the certificate), `no-certificate` (the CA only) and `no-ca` (the
//! certificate only). One event is posted: the server holds it from `trusted`, read back with
//! a client of the test's own, and the other two sinks' deliveries fail and end as dead
//! letters, `no-ca`'s naming the certificate it could not trust.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::helpers::*;

/// A CA, a server certificate for 127.0.0.1 and a client certificate it signed, as files.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sink test CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        std::fs::write(
            dir.path().join("ca.pem"),
            params.self_signed(&ca_key).unwrap().pem(),
        )
        .unwrap();
        let issuer = rcgen::Issuer::new(params, ca_key);
        for (name, subject) in [("server", "127.0.0.1"), ("client", "order-listener")] {
            let mut params =
                rcgen::CertificateParams::new(vec![subject.to_owned(), "localhost".to_owned()])
                    .unwrap();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, subject);
            let key = rcgen::KeyPair::generate().unwrap();
            let certificate = params.signed_by(&key, &issuer).unwrap();
            std::fs::write(dir.path().join(format!("{name}.pem")), certificate.pem()).unwrap();
            std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem()).unwrap();
        }
        Pki { dir }
    }

    /// A client certificate and key that this CA did not sign, written as `NAME.pem` and
    /// `NAME.key`.
    fn stranger(&self, name: &str) {
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = rcgen::CertificateParams::new(vec!["stranger".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(self.path(&format!("{name}.pem")), certificate.pem()).unwrap();
        std::fs::write(self.path(&format!("{name}.key")), key.serialize_pem()).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A path as a TOML (and server configuration) string.
    fn file(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// A free port on 127.0.0.1 for a server to take.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `command` and waits until it listens on `port`.
async fn serve(mut command: Command, port: u16) -> Child {
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the server runs");
    eventually("the server listening", async || {
        TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    child
}

/// The three sinks of `kind` to `url`, with `extra` settings each; the two that must fail
/// give up after a second.
fn sinks(kind: &str, url: &str, extra: &str, pki: &Pki) -> String {
    let (ca, cert, key) = (
        pki.file("ca.pem"),
        pki.file("client.pem"),
        pki.file("client.key"),
    );
    let failing = "retry_schedule = [\"200ms\"]\nretry_horizon = \"1s\"\ntimeout_seconds = 2";
    format!(
        r#"
[sinks.trusted]
type = "{kind}"
url = "{url}"
ca_cert = "{ca}"
client_cert = "{cert}"
client_key = "{key}"
{extra}

[sinks.no-certificate]
type = "{kind}"
url = "{url}"
ca_cert = "{ca}"
{failing}
{extra}

[sinks.no-ca]
type = "{kind}"
url = "{url}"
client_cert = "{cert}"
client_key = "{key}"
{failing}
{extra}
"#
    )
}

/// Posts one event; waits until `trusted` delivered it and the other two gave it up (each a
/// dead letter); checks that `no-ca` says it could not trust the server's certificate.
/// Returns the event.
async fn post_and_settle(app: &TestApp, order: &str) -> Value {
    let event = onap_lifecycle(order, 1).remove(0);
    assert_eq!(app.post(&event).await.status().as_u16(), 201);
    when_outbox_changes(
        &app.store,
        "one delivery and two dead letters",
        async || {
            let statuses = app.store.sink_statuses().await.unwrap();
            let of = |name: &str| statuses.iter().find(|status| status.name.as_str() == name);
            let settled = of("trusted").is_some_and(|status| status.delivered == 1)
                && ["no-certificate", "no-ca"]
                    .iter()
                    .all(|name| of(name).is_some_and(|status| status.dead == 1));
            settled.then_some(())
        },
    )
    .await;
    let error = app.dead_letter_error("no-ca").await;
    assert!(
        error.contains("invalid peer certificate"),
        "no-ca cannot trust the server's certificate: {error}"
    );
    // no-certificate's error is not checked: under TLS 1.3 the server refuses the client after
    // the handshake, and the client reads either its alert (CertificateRequired) or a reset.
    event
}

/// `sinks check` on the app's configuration: `trusted` reaches the server, `no-ca` cannot
/// trust it, `no-certificate` is refused.
async fn assert_check(app: &TestApp, kind: &str) {
    let dir = app
        ._dir
        .as_ref()
        .expect("the app's configuration directory");
    let (ok, out, err) = run_cli_on(
        &["sinks", "check"],
        &dir.path().join("config.toml"),
        &app.data_dir,
    )
    .await;
    assert!(!ok, "two sinks fail: {out}{err}");
    let line = |name: &str| {
        out.lines()
            .find(|line| line.contains(&format!(" {name} ({kind})")))
            .unwrap_or_else(|| panic!("a line for {name}: {out}"))
            .to_owned()
    };
    assert!(line("trusted").starts_with("ok"), "{out}");
    assert!(
        line("no-ca").starts_with("FAILED") && line("no-ca").contains("invalid peer certificate"),
        "{out}"
    );
    assert!(line("no-certificate").starts_with("FAILED"), "{out}");
}

#[tokio::test]
async fn a_nats_server_that_asks_for_a_client_certificate_gets_the_event_from_the_sink_that_has_one()
 {
    let Some(nats_server) = service("ORDER_LISTENER_TEST_NATS_SERVER", "the nats-server program")
    else {
        return;
    };
    let pki = Pki::new();
    let port = free_port();
    let config = pki.path("nats.conf");
    std::fs::write(
        &config,
        format!(
            "host: 127.0.0.1\nport: {port}\njetstream {{ store_dir: \"{store}\" }}\n\
             tls {{ cert_file: \"{cert}\", key_file: \"{key}\", ca_file: \"{ca}\", verify: true, \
             timeout: 5 }}\n",
            store = pki.file("jetstream"),
            cert = pki.file("server.pem"),
            key = pki.file("server.key"),
            ca = pki.file("ca.pem"),
        ),
    )
    .unwrap();
    let mut command = Command::new(&nats_server);
    command.arg("-c").arg(&config);
    let _server = serve(command, port).await;

    let url = format!("tls://127.0.0.1:{port}");
    let extra = "subject = \"tls.{eventType}.{orderId}\"\nstream = \"TLS\"";
    let app = spawn_app_with_file(&sinks("nats", &url, extra, &pki)).await;
    let event = post_and_settle(&app, "SO-nats-tls").await;
    assert_check(&app, "nats").await;

    // Read back over TLS with the same client certificate.
    let client = async_nats::ConnectOptions::new()
        .add_root_certificates(pki.path("ca.pem"))
        .add_client_certificate(pki.path("client.pem"), pki.path("client.key"))
        .require_tls(true)
        .connect(&url)
        .await
        .expect("the test's own client connects");
    let stream = async_nats::jetstream::new(client)
        .get_stream("TLS")
        .await
        .unwrap();
    let message = stream.get_raw_message(1).await.unwrap();
    let body: Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(body["eventId"], event["eventId"]);
    assert_eq!(
        stream
            .get_raw_message(2)
            .await
            .ok()
            .map(|message| message.sequence),
        None,
        "only the trusted sink's message"
    );
}

#[tokio::test]
async fn an_mqtt_broker_that_asks_for_a_client_certificate_gets_the_event_from_the_sink_that_has_one()
 {
    let Some(mosquitto) = service("ORDER_LISTENER_TEST_MOSQUITTO", "the mosquitto program") else {
        return;
    };
    let pki = Pki::new();
    let port = free_port();
    let config = pki.path("mosquitto.conf");
    std::fs::write(
        &config,
        format!(
            "user root\nlistener {port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n\
             require_certificate true\nallow_anonymous true\npersistence false\n",
            ca = pki.file("ca.pem"),
            cert = pki.file("server.pem"),
            key = pki.file("server.key"),
        ),
    )
    .unwrap();
    let mut command = Command::new(&mosquitto);
    command.arg("-c").arg(&config);
    let _broker = serve(command, port).await;

    let url = format!("mqtts://127.0.0.1:{port}");
    // The projection is published retained, so the test's subscriber finds it afterwards.
    let extra = "topic = \"tls/{orderId}/events\"\nstate_topic = \"tls/{orderId}/state\"";
    let app = spawn_app_with_file(&sinks("mqtt", &url, extra, &pki)).await;
    post_and_settle(&app, "SO-mqtt-tls").await;
    assert_check(&app, "mqtt").await;

    let output = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .arg("--cafile")
        .arg(pki.path("ca.pem"))
        .arg("--cert")
        .arg(pki.path("client.pem"))
        .arg("--key")
        .arg(pki.path("client.key"))
        .args(["-t", "tls/+/state", "-C", "1", "-W", "20"])
        .output()
        .await
        .expect("mosquitto_sub runs (Debian: apt-get install mosquitto-clients)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let state: Value = serde_json::from_slice(&output.stdout).expect("the retained projection");
    assert_eq!(state["id"], "SO-mqtt-tls", "{state}");
}

#[tokio::test]
async fn a_redis_server_that_asks_for_a_client_certificate_gets_the_event_from_the_sink_that_has_one()
 {
    let Some(redis_server) = service(
        "ORDER_LISTENER_TEST_REDIS_SERVER",
        "the redis-server program",
    ) else {
        return;
    };
    let pki = Pki::new();
    let port = free_port();
    let mut command = Command::new(&redis_server);
    command
        .args(["--port", "0", "--bind", "127.0.0.1"])
        .args(["--tls-port", &port.to_string()])
        .arg("--tls-cert-file")
        .arg(pki.path("server.pem"))
        .arg("--tls-key-file")
        .arg(pki.path("server.key"))
        .arg("--tls-ca-cert-file")
        .arg(pki.path("ca.pem"))
        .args([
            "--tls-auth-clients",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(pki.dir.path());
    let _server = serve(command, port).await;

    let url = format!("rediss://127.0.0.1:{port}");
    let app = spawn_app_with_file(&sinks("redis", &url, "stream = \"tls-orders\"", &pki)).await;
    let event = post_and_settle(&app, "SO-redis-tls").await;
    assert_check(&app, "redis").await;

    let read = |name: &str| std::fs::read(pki.path(name)).unwrap();
    let client = redis::Client::build_with_tls(
        url.as_str(),
        redis::TlsCertificates {
            client_tls: Some(redis::ClientTlsConfig {
                client_cert: read("client.pem"),
                client_key: read("client.key"),
            }),
            root_cert: Some(read("ca.pem")),
        },
    )
    .unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg("tls-orders")
        .arg("-")
        .arg("+")
        .query_async(&mut connection)
        .await
        .unwrap();
    let ids: Vec<String> = entries
        .ids
        .iter()
        .map(|entry| entry.get::<String>("eventId").unwrap_or_default())
        .collect();
    assert_eq!(
        ids,
        [event["eventId"].as_str().unwrap()],
        "only the trusted sink's entry"
    );
}

/// A RabbitMQ node of the test's own, TLS only, that asks for a client certificate. Its start
/// script does not exec the VM, so the node runs in a process group of its own, killed whole.
struct RabbitNode {
    child: Child,
}

impl RabbitNode {
    async fn start(program: &str, pki: &Pki, port: u16) -> RabbitNode {
        std::fs::write(
            pki.path("rabbitmq.conf"),
            format!(
                "listeners.tcp = none\nlisteners.ssl.default = 127.0.0.1:{port}\n\
                 ssl_options.cacertfile = {ca}\nssl_options.certfile = {cert}\n\
                 ssl_options.keyfile = {key}\nssl_options.verify = verify_peer\n\
                 ssl_options.fail_if_no_peer_cert = true\n",
                ca = pki.file("ca.pem"),
                cert = pki.file("server.pem"),
                key = pki.file("server.key"),
            ),
        )
        .unwrap();
        // No plugins: the management plugin would want the machine's node's HTTP port.
        std::fs::write(pki.path("plugins"), "[].\n").unwrap();
        let mut command = Command::new(program);
        command
            .env(
                "RABBITMQ_NODENAME",
                format!("sink-tls-{}@localhost", uuid::Uuid::new_v4().simple()),
            )
            .env("RABBITMQ_NODE_PORT", free_port().to_string())
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_CONFIG_FILE", pki.path("rabbitmq"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", pki.path("plugins"))
            .env("RABBITMQ_MNESIA_BASE", pki.path("mnesia"))
            .env("RABBITMQ_LOG_BASE", pki.path("log"))
            .env("RABBITMQ_PID_FILE", pki.path("rabbitmq.pid"))
            .process_group(0);
        RabbitNode {
            child: serve(command, port).await,
        }
    }
}

impl Drop for RabbitNode {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[tokio::test]
async fn a_rabbitmq_node_that_asks_for_a_client_certificate_gets_the_event_from_the_sink_that_has_one()
 {
    use lapin::options::BasicGetOptions;

    let Some(rabbitmq) = service(
        "ORDER_LISTENER_TEST_RABBITMQ_SERVER",
        "RabbitMQ's start script that runs a node in the foreground \
         (/usr/lib/rabbitmq/bin/rabbitmq-server)",
    ) else {
        return;
    };
    let pki = Pki::new();
    let port = free_port();
    let _node = RabbitNode::start(&rabbitmq, &pki, port).await;

    // The test's own client, over TLS with the client certificate: a queue for every message.
    let url = format!("amqps://guest:guest@127.0.0.1:{port}/%2f");
    let read = |name: &str| std::fs::read(pki.path(name)).unwrap();
    let connection = lapin::DefaultConnectionBuilder::new()
        .unwrap()
        .with_uri_str(url.clone())
        .with_tls_config(lapin::tcp::OwnedTLSConfig {
            identity: Some(lapin::tcp::OwnedIdentity::PKCS8 {
                pem: read("client.pem"),
                key: read("client.key"),
            }),
            cert_chain: Some(String::from_utf8(read("ca.pem")).unwrap()),
        })
        .connect()
        .await
        .expect("the test's own client connects");
    let (channel, queue) = crate::forwarding::amqp_bound_queue(&connection, "tls-orders").await;

    let app = spawn_app_with_file(&sinks("amqp", &url, "exchange = \"tls-orders\"", &pki)).await;
    let event = post_and_settle(&app, "SO-amqp-tls").await;
    assert_check(&app, "amqp").await;

    let message = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the trusted sink's message");
    let body: Value = serde_json::from_slice(&message.delivery.data).unwrap();
    assert_eq!(body["eventId"], event["eventId"]);
    let more = channel
        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap();
    assert!(more.is_none(), "only the trusted sink's message");
}

/// An HTTPS receiver that asks for a client certificate from the test's CA and records each
/// body it is given.
struct HttpsReceiver {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HttpsReceiver {
    async fn start(pki: &Pki) -> HttpsReceiver {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        init();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(pki.path("ca.pem")).unwrap())
            .unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .unwrap();
        let chain = CertificateDer::pem_file_iter(pki.path("server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(pki.path("server.key")).unwrap();
        let config = rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/hook", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let recorded = bodies.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, recorded) = (acceptor.clone(), recorded.clone());
                tokio::spawn(async move {
                    // A client without the certificate fails here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let recorded = recorded.clone();
                            async move {
                                use http_body_util::BodyExt;
                                let body = request.into_body().collect().await?.to_bytes();
                                if let Ok(value) = serde_json::from_slice(&body) {
                                    recorded.lock().unwrap().push(value);
                                }
                                Ok::<_, hyper::Error>(hyper::Response::new(
                                    http_body_util::Empty::<bytes::Bytes>::new(),
                                ))
                            }
                        },
                    );
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                });
            }
        });
        HttpsReceiver { url, bodies, task }
    }
}

impl Drop for HttpsReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn an_https_webhook_that_asks_for_a_client_certificate_gets_the_event_from_the_sink_that_has_one()
 {
    let pki = Pki::new();
    let receiver = HttpsReceiver::start(&pki).await;
    let app = spawn_app_with_file(&sinks("http", &receiver.url, "", &pki)).await;
    let event = post_and_settle(&app, "SO-https-tls").await;
    assert_check(&app, "http").await;
    let bodies = receiver.bodies.lock().unwrap().clone();
    assert_eq!(bodies, [event], "only the trusted sink's request");
}

#[test]
fn a_sink_whose_tls_file_does_not_read_stops_the_start_with_its_path_beside_the_config_file() {
    let (dir, message) = config_error(
        "[sinks.hook]\ntype = \"http\"\nurl = \"https://127.0.0.1:9/\"\nca_cert = \"absent.pem\"\n",
    );
    let path = dir.path().join("absent.pem").display().to_string();
    assert!(
        message.contains("[sinks.hook]") && message.contains("ca_cert") && message.contains(&path),
        "{message}"
    );
}

#[tokio::test]
async fn a_renewed_client_certificate_is_taken_on_sighup_without_a_restart() {
    let pki = Pki::new();
    let receiver = HttpsReceiver::start(&pki).await;
    // The sink starts with a certificate the receiver's CA did not sign.
    pki.stranger("rotating");
    let config = pki.path("config.toml");
    std::fs::write(
        &config,
        format!(
            "[sinks.rotating]\ntype = \"http\"\nurl = \"{}\"\nca_cert = \"ca.pem\"\n\
             client_cert = \"rotating.pem\"\nclient_key = \"rotating.key\"\n\
             retry_schedule = [\"100ms\"]\n",
            receiver.url
        ),
    )
    .unwrap();
    let log = pki.path("serve.log");
    let child = start_binary_logging(&pki.path("data"), &config, &log);
    let event = onap_lifecycle("SO-rotated", 1).remove(0);
    let status = reqwest::Client::new()
        .post(&child.listener_url)
        .header("content-type", "application/json")
        .body(event.to_string())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 201);
    eventually("an attempt refused for its certificate", async || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("received fatal alert").then_some(())
    })
    .await;
    assert!(receiver.bodies.lock().unwrap().is_empty());

    // The renewal replaces both files; SIGHUP reads them again.
    std::fs::copy(pki.path("client.key"), pki.path("rotating.key")).unwrap();
    std::fs::copy(pki.path("client.pem"), pki.path("rotating.pem")).unwrap();
    crate::reload::hangup(&child, &log, "SIGHUP: reloaded").await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("sinks changed: rotating"), "{text}");
    // The changed sink is tried as its worker starts again.
    eventually("the changed sink tried and reached", async || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .any(|line| line.contains("sink reachable") && line.contains("rotating"))
            .then_some(())
    })
    .await;
    let bodies = eventually(
        "the event delivered with the renewed certificate",
        async || {
            let bodies = receiver.bodies.lock().unwrap().clone();
            (!bodies.is_empty()).then_some(bodies)
        },
    )
    .await;
    assert_eq!(bodies, [event]);
}
