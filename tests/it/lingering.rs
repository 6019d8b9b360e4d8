//! Lingering close: a client that is still sending a large body when the listener refuses it
//! early (413, 431, 401 before the body is read) reads the answer, not a connection reset.

use std::sync::Arc;

use order_listener::config::{Certificate, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::helpers::*;

/// The body the client sends without waiting for an answer.
const BODY: usize = 3 * 1024 * 1024;

/// The client's socket send buffer.
const SEND_BUFFER: u32 = 64 * 1024;

/// How many times each refusal is tried: a reset is a race, so one try proves little.
const TRIES: usize = 50;

/// A byte stream to the app: plain TCP or TLS.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for S {}

/// Connects to `app`'s public port, over TLS (HTTP/1.1 by ALPN) when `tls` gives the server's
/// certificate.
async fn connect(app: &TestApp, tls: Option<&[u8]>) -> Box<dyn Stream> {
    let (_, address) = app
        .public_base
        .split_once("://")
        .expect("the public base is a URL");
    let socket = TcpSocket::new_v4().expect("a socket");
    // A small send buffer, as on a network slower than the client: the client is still
    // sending when the answer comes (loopback would otherwise take all 3 MiB at once).
    socket
        .set_send_buffer_size(SEND_BUFFER)
        .expect("the send buffer is set");
    let stream = socket
        .connect(address.parse().expect("a socket address"))
        .await
        .expect("the app accepts");
    let Some(pem) = tls else {
        return Box::new(stream);
    };
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pem).expect("a PEM certificate"))
        .expect("the certificate is a root");
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from("localhost").expect("a server name");
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .expect("the TLS handshake succeeds");
    Box::new(stream)
}

/// Sends `head` then `body` on `stream` without waiting, while reading the answer; returns the
/// answer's status line, and whether all was sent and the answer ended with a close (or the
/// reset that came instead).
async fn status_while_sending(
    stream: Box<dyn Stream>,
    head: &[u8],
    body: usize,
) -> (String, std::io::Result<()>) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let head = head.to_vec();
    let sending = tokio::spawn(async move {
        writer.write_all(&head).await?;
        let chunk = vec![b' '; 64 * 1024];
        let mut left = body;
        while left > 0 {
            let n = left.min(chunk.len());
            writer.write_all(&chunk[..n]).await?;
            left -= n;
        }
        writer.flush().await
    });
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let line = loop {
        if let Some(end) = answer.windows(2).position(|pair| pair == b"\r\n") {
            break String::from_utf8_lossy(&answer[..end]).into_owned();
        }
        match reader.read(&mut buffer).await {
            Ok(0) => break format!("end of stream after {answer:?}"),
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(error) => break format!("{error} after {answer:?}"),
        }
    };
    let sent = sending.await.expect("the sending task ends");
    // Then the answer ends with a close, not a reset.
    let mut rest = Vec::new();
    let sent = sent.and(reader.read_to_end(&mut rest).await.map(drop));
    (line, sent)
}

/// A POST to the Listener API declaring `length` bytes of JSON, with `extra` header lines.
fn post_head(app: &TestApp, length: usize, extra: &str) -> Vec<u8> {
    let path = app
        .listener_url
        .strip_prefix(&app.public_base)
        .expect("the listener URL is on the public port");
    format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// Asserts that every one of [`TRIES`] clients sending `head` and `body` reads `status`, and
/// sends all without a reset.
async fn assert_always(app: &TestApp, tls: Option<&[u8]>, head: &[u8], body: usize, status: &str) {
    for attempt in 1..=TRIES {
        let stream = connect(app, tls).await;
        let (line, sent) = status_while_sending(stream, head, body).await;
        assert!(
            line.starts_with(&format!("HTTP/1.1 {status} ")),
            "attempt {attempt}: expected {status}, got {line}"
        );
        // The whole request went out: the server read it rather than resetting the connection.
        if let Err(error) = sent {
            panic!("attempt {attempt}: the {status} came with a reset while sending: {error}");
        }
    }
}

#[tokio::test]
async fn a_client_still_sending_a_too_large_body_reads_the_413() {
    let app = spawn_app().await;
    let head = post_head(&app, BODY, "");
    assert_always(&app, None, &head, BODY, "413").await;
}

#[tokio::test]
async fn a_client_without_credentials_still_sending_its_body_reads_the_401() {
    // The body is within the limit: the refusal is the gate's, before the body is read.
    let app = spawn_app_with(|config| {
        config.access.allow_anonymous = false;
        config.body_limit = 2 * BODY;
    })
    .await;
    let head = post_head(&app, BODY, "");
    assert_always(&app, None, &head, BODY, "401").await;
}

#[tokio::test]
async fn a_client_still_sending_oversized_headers_reads_the_431() {
    let app = spawn_app().await;
    // Far more header bytes than the server buffers (64 KiB), then the body.
    let padding = format!("X-Padding: {}\r\n", "p".repeat(256 * 1024));
    let head = post_head(&app, BODY, &padding);
    assert_always(&app, None, &head, BODY, "431").await;
}

#[tokio::test]
async fn over_tls_a_client_still_sending_a_too_large_body_reads_the_413() {
    let app = spawn_app_with(|config| {
        config.transport = Transport::Https(Certificate::SelfSigned {
            dir: config.data_dir.join("tls"),
        });
    })
    .await;
    let pem =
        std::fs::read(app.data_dir.join("tls/cert.pem")).expect("the certificate was generated");
    let head = post_head(&app, BODY, "");
    assert_always(&app, Some(&pem), &head, BODY, "413").await;
}

#[tokio::test]
async fn an_early_refusal_says_connection_close_and_a_late_one_keeps_the_connection() {
    let app = spawn_app_with(|config| config.body_limit = 4096).await;
    let early = app
        .post_raw(vec![b' '; 5000], Some("application/json"))
        .await;
    assert_eq!(early.status().as_u16(), 413);
    assert_eq!(early.headers()["connection"], "close");
    // The body was read, then refused: the connection can serve another request.
    let late = app.post_raw("{", Some("application/json")).await;
    assert_eq!(late.status().as_u16(), 400);
    assert!(late.headers().get("connection").is_none());
}
