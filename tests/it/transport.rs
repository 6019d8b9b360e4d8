//! HTTPS by default: a self-signed certificate is generated on first start and kept.

use order_listener::config::{Certificate, Transport};

use crate::helpers::*;

#[tokio::test]
async fn https_with_a_generated_self_signed_certificate_accepts_events() {
    let app = spawn_app_with(|config| {
        config.transport = Transport::Https(Certificate::SelfSigned {
            dir: config.data_dir.join("tls"),
        });
    })
    .await;
    assert!(app.listener_url.starts_with("https://127.0.0.1:"));
    let pem =
        std::fs::read(app.data_dir.join("tls/cert.pem")).expect("the certificate was generated");
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let event = onap_lifecycle("SO-tls", 1).remove(0);
    let response = client
        .post(&app.listener_url)
        .header("content-type", "application/json;charset=utf-8")
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_2,
        "ALPN offers h2"
    );

    // The OpenAPI document names the HTTPS address it is served at.
    let document: serde_json::Value = client
        .get(format!(
            "{}/externalapi/listener/v1/openapi.json",
            app.public_base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(app.public_base.starts_with("https://127.0.0.1:"));
    assert_eq!(document["servers"][0]["url"], app.public_base.as_str());

    // Plain HTTP is not served on the HTTPS port: the answer says to use HTTPS, and the
    // event is not stored.
    let mut other = event.clone();
    other["eventId"] = serde_json::json!("SO-tls-plain");
    let plain = app.listener_url.replacen("https://", "http://", 1);
    let refused = reqwest::Client::new()
        .post(plain)
        .header("content-type", "application/json")
        .body(other.to_string())
        .send()
        .await
        .expect("a plain HTTP client reads an answer");
    assert_eq!(refused.status().as_u16(), 400);
    let text = refused.text().await.unwrap();
    assert!(text.contains("https://"), "{text}");
    assert!(
        app.store
            .event(&"SO-tls-plain".parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

/// A CA that signs server certificates for 127.0.0.1, so that a client trusts every one.
struct ServerPki {
    ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl ServerPki {
    fn new() -> ServerPki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test server CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap();
        ServerPki {
            ca_pem: ca.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A new server certificate and its key, as PEM; and the certificate's DER.
    fn server(&self) -> (String, String, Vec<u8>) {
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        (
            certificate.pem(),
            key.serialize_pem(),
            certificate.der().to_vec(),
        )
    }
}

/// The server certificate a response came over.
fn peer_certificate(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("the response carries its TLS info")
        .to_vec()
}

#[tokio::test]
async fn a_renewed_certificate_reaches_new_connections_while_open_ones_finish() {
    let pki = ServerPki::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (old_pem, old_key, old_der) = pki.server();
    std::fs::write(&cert_file, &old_pem).unwrap();
    std::fs::write(&key_file, &old_key).unwrap();
    let app = spawn_app_with(|config| {
        config.transport = Transport::Https(Certificate::Files {
            cert: cert_file.clone(),
            key: key_file.clone(),
        });
    })
    .await;
    let client = || {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()])
            .tls_info(true)
            .build()
            .unwrap()
    };
    let post = |client: &reqwest::Client, id: &str| {
        let event = onap_lifecycle(id, 1).remove(0);
        client
            .post(&app.listener_url)
            .header("content-type", "application/json")
            .body(event.to_string())
            .send()
    };
    // An open connection, on the old certificate.
    let open = client();
    let response = post(&open, "SO-before").await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(peer_certificate(&response), old_der);

    // The renewal replaces both files, as an ACME client does.
    let (new_pem, new_key, new_der) = pki.server();
    std::fs::write(&key_file, &new_key).unwrap();
    std::fs::write(&cert_file, &new_pem).unwrap();
    let seen = eventually("a new connection to see the new certificate", async || {
        let response = post(&client(), "SO-new").await.ok()?;
        let certificate = peer_certificate(&response);
        (certificate == new_der).then_some(response.status().as_u16())
    })
    .await;
    assert_eq!(seen, 201);

    // The open connection was not dropped: it completes on its own certificate.
    let response = post(&open, "SO-after").await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(peer_certificate(&response), old_der, "the same connection");
}

/// How many TLS reloads ended with `outcome`, from `/metrics`.
async fn tls_reloads(app: &TestApp, outcome: &str) -> u64 {
    let text = app.metrics_text().await;
    text.lines()
        .find(|line| {
            line.starts_with(&format!(
                "order_listener_tls_reloads_total{{outcome=\"{outcome}\"}}"
            ))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_certificate_that_does_not_load_leaves_the_running_one() {
    let pki = ServerPki::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let (pem, key, der) = pki.server();
    std::fs::write(&cert_file, &pem).unwrap();
    std::fs::write(&key_file, &key).unwrap();
    let app = spawn_app_with(|config| {
        config.transport = Transport::Https(Certificate::Files {
            cert: cert_file.clone(),
            key: key_file.clone(),
        });
    })
    .await;
    // A new client each time: a new connection.
    let served = || async {
        let response = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()])
            .tls_info(true)
            .build()
            .unwrap()
            .post(&app.listener_url)
            .header("content-type", "application/json")
            .body(onap_lifecycle("SO-x", 1).remove(0).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
        peer_certificate(&response)
    };
    // A key that does not fit the certificate: the reload fails and the running pair stays.
    let (_, other_key, _) = pki.server();
    std::fs::write(&key_file, &other_key).unwrap();
    eventually("the failed reload", async || {
        (tls_reloads(&app, "failed").await >= 1).then_some(())
    })
    .await;
    assert_eq!(served().await, der, "the running certificate stays");
    assert_eq!(tls_reloads(&app, "ok").await, 0);

    // A good pair is taken at its next change.
    let (good_pem, good_key, good_der) = pki.server();
    std::fs::write(&key_file, &good_key).unwrap();
    std::fs::write(&cert_file, &good_pem).unwrap();
    eventually("the good pair to be served", async || {
        (served().await == good_der).then_some(())
    })
    .await;
    assert!(tls_reloads(&app, "ok").await >= 1);
}
