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

    // Plain HTTP is not served on the HTTPS port.
    let plain = app.listener_url.replacen("https://", "http://", 1);
    assert!(
        reqwest::Client::new()
            .post(plain)
            .body(event.to_string())
            .send()
            .await
            .is_err()
    );
}
