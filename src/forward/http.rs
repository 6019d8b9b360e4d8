//! The HTTP webhook sink: POSTs the event's body as received, with Standard Webhooks headers
//! (`webhook-id` is the eventId, so the receiver can deduplicate; signed when a `whsec_` secret
//! is set). A 2xx is a delivery; 410 disables the sink; anything else is retried, no sooner
//! than `Retry-After`. The trace context goes in `traceparent` and `tracestate`, the event's
//! dialect in `Order-Listener-Dialect`, and who wrote it (`seller` or `reconciled`) in
//! `Order-Listener-Source`. With `bearer_token`, `basic` or `oauth2`, an `Authorization`
//! header too (an OAuth2 token is kept until shortly before it expires, and dropped on a 401).

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use super::token::TokenSource;
use super::{ForwardError, Sent};
use crate::config::http_auth::HttpAuth;
use crate::config::sinks::SinkTls;
use crate::domain::envelope::{Dialect, Source};
use crate::secret::Secret;
use crate::standard_webhooks::WebhookSecret;
use crate::store::Delivery;
use crate::traces::TraceContext;
use crate::traces::context::{TRACEPARENT, TRACESTATE};

/// An HTTP webhook.
pub(crate) struct HttpSink {
    client: reqwest::Client,
    url: Secret,
    signing_key: Option<WebhookSecret>,
    auth: Option<HttpAuth>,
    /// The OAuth2 tokens, when `auth` is OAuth2.
    token: Option<TokenSource>,
}

impl std::fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSink").finish_non_exhaustive()
    }
}

impl HttpSink {
    /// A sink posting to `url`.
    pub(crate) fn new(
        url: &Secret,
        signing_key: Option<&WebhookSecret>,
        auth: Option<&HttpAuth>,
        timeout: Duration,
        tls: &SinkTls,
    ) -> anyhow::Result<Self> {
        let builder =
            crate::outbound::builder(&crate::outbound::TlsOptions::default(), timeout, 32)?;
        let client = super::tls::http(builder, tls)?
            .build()
            .context("cannot build the HTTP client")?;
        Ok(HttpSink {
            client,
            url: url.clone(),
            signing_key: signing_key.cloned(),
            auth: auth.cloned(),
            token: match auth {
                Some(HttpAuth::OAuth2(grant)) => Some(TokenSource::new(grant.clone())),
                _ => None,
            },
        })
    }

    /// POSTs one event.
    pub(crate) async fn deliver(
        &self,
        delivery: &Delivery,
        trace: Option<&TraceContext>,
    ) -> Result<Sent, ForwardError> {
        self.post(
            delivery.event_id.as_str(),
            delivery.body.clone(),
            Some((delivery.dialect, delivery.source)),
            trace,
        )
        .await
    }

    /// Sends `HEAD` to the URL, with the sink's login: any answer but 401 and 403 shows that
    /// the receiver is there and can be reached (TLS included).
    pub(crate) async fn probe(&self) -> Result<String, ForwardError> {
        let request = self.authorize(self.client.head(self.url.expose())).await?;
        let response = request.send().await.map_err(ForwardError::from_request)?;
        let status = response.status();
        if matches!(
            status,
            reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN
        ) {
            self.refused(status).await;
            return Err(ForwardError::from_status(status, None));
        }
        Ok(format!("reachable; HEAD answered {status}"))
    }

    /// Adds the sink's login to a request: a fixed header, or the current OAuth2 token.
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ForwardError> {
        Ok(match (&self.auth, &self.token) {
            (Some(HttpAuth::Fixed(credentials)), _) => {
                crate::outbound::authorize(request, Some(credentials))
            }
            (Some(HttpAuth::OAuth2(_)), Some(token)) => {
                let token = token
                    .get(&self.client)
                    .await
                    .map_err(|source| ForwardError::Token { source })?;
                request.bearer_auth(token.expose())
            }
            _ => request,
        })
    }

    /// After a refusal: a 401 drops the OAuth2 token, which may have been revoked before its
    /// time, so that the next attempt asks for another.
    async fn refused(&self, status: reqwest::StatusCode) {
        if status == reqwest::StatusCode::UNAUTHORIZED
            && let Some(token) = &self.token
        {
            token.forget().await;
        }
    }

    /// POSTs `body` as the message `id`.
    async fn post(
        &self,
        id: &str,
        body: Bytes,
        event: Option<(Dialect, Source)>,
        trace: Option<&TraceContext>,
    ) -> Result<Sent, ForwardError> {
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let mut request = self
            .client
            .post(self.url.expose())
            .header(CONTENT_TYPE, "application/json;charset=utf-8")
            .header("webhook-id", id)
            .header("webhook-timestamp", &timestamp);
        if let Some(key) = &self.signing_key {
            request = request.header("webhook-signature", key.sign(id, &timestamp, &body));
        }
        if let Some((dialect, source)) = event {
            request = request
                .header(super::DIALECT_HEADER, dialect.as_str())
                .header(super::SOURCE_HEADER, source.as_str());
        }
        if let Some(trace) = trace {
            request = request.header(TRACEPARENT, trace.traceparent());
            if let Some(state) = trace.tracestate() {
                request = request.header(TRACESTATE, state);
            }
        }
        request = self.authorize(request).await?;
        // reqwest's error names the URL, which may hold a token: `from_request` drops it.
        let response = request
            .body(body)
            .send()
            .await
            .map_err(ForwardError::from_request)?;
        let status = response.status();
        if status.is_success() {
            return Ok(Sent::default());
        }
        self.refused(status).await;
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok());
        Err(ForwardError::from_status(status, retry_after))
    }
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::telemetry::error_chain;

    /// A sink posting to a URL whose user, path and query hold secrets.
    fn sink(port: u16, timeout: Duration) -> HttpSink {
        let url = Secret::new(format!(
            "http://hook:pa55word@127.0.0.1:{port}/hooks/tok3n-path?key=tok3n-query"
        ));
        HttpSink::new(&url, None, None, timeout, &SinkTls::default()).unwrap()
    }

    fn assert_no_secret(error: &ForwardError) {
        for text in [error_chain(error), format!("{error:?}")] {
            assert!(
                !text.contains("tok3n") && !text.contains("pa55word"),
                "the URL's secrets leak: {text}"
            );
        }
    }

    /// Answers one request with `answer` (a status line and headers); returns the port.
    async fn answering(answer: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buffer = [0; 1024];
            while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                let read = stream.read(&mut buffer).await.unwrap();
                assert!(read > 0, "the request ended early");
                request.extend_from_slice(&buffer[..read]);
            }
            let answer = format!("{answer}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            stream.write_all(answer.as_bytes()).await.unwrap();
            stream.shutdown().await.unwrap();
        });
        port
    }

    #[tokio::test]
    async fn a_503_with_retry_after_is_rejected_with_that_wait() {
        let port = answering("HTTP/1.1 503 Service Unavailable\r\nretry-after: 7").await;
        let error = sink(port, Duration::from_secs(5))
            .post("e-1", Bytes::new(), None, None)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                ForwardError::Rejected { status, .. } if status == StatusCode::SERVICE_UNAVAILABLE
            ),
            "{error:?}"
        );
        assert!(error.is_retryable());
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
        assert_no_secret(&error);
    }

    #[tokio::test]
    async fn a_410_is_gone() {
        let port = answering("HTTP/1.1 410 Gone").await;
        let error = sink(port, Duration::from_secs(5))
            .post("e-1", Bytes::new(), None, None)
            .await
            .unwrap_err();
        assert!(error.is_gone(), "{error:?}");
        assert!(!error.is_retryable());
        assert_no_secret(&error);
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable_and_its_message_keeps_the_url_secret() {
        // A port that was just free: nothing listens on it.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let error = sink(port, Duration::from_secs(5))
            .post("e-1", Bytes::new(), None, None)
            .await
            .unwrap_err();
        assert!(
            matches!(error, ForwardError::Unreachable { .. }),
            "{error:?}"
        );
        assert!(error.is_retryable());
        let chain = error_chain(&error);
        assert!(
            chain.starts_with("HTTP sink: could not connect: "),
            "the source is kept: {chain}"
        );
        assert_no_secret(&error);
    }

    #[tokio::test]
    async fn a_silent_receiver_times_out_and_its_message_keeps_the_url_secret() {
        // The kernel accepts the connection into the backlog; nothing ever answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let error = sink(port, Duration::from_millis(200))
            .post("e-1", Bytes::new(), None, None)
            .await
            .unwrap_err();
        assert!(matches!(error, ForwardError::TimedOut { .. }), "{error:?}");
        assert!(error.is_retryable());
        assert_no_secret(&error);
        drop(listener);
    }
}
