//! The HTTP webhook sink: POSTs the event's body as received, with Standard Webhooks headers
//! (`webhook-id` is the eventId, so the receiver can deduplicate; signed when a `whsec_` secret
//! is set). A 2xx is a delivery; 410 disables the sink; anything else is retried, no sooner
//! than `Retry-After`.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use super::{ForwardError, Sent};
use crate::secret::Secret;
use crate::standard_webhooks::WebhookSecret;
use crate::store::Delivery;

/// An HTTP webhook.
pub(crate) struct HttpSink {
    client: reqwest::Client,
    url: Secret,
    signing_key: Option<WebhookSecret>,
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
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let client = crate::outbound::client(&crate::outbound::TlsOptions::default(), timeout, 32)?;
        Ok(HttpSink {
            client,
            url: url.clone(),
            signing_key: signing_key.cloned(),
        })
    }

    /// POSTs one event.
    pub(crate) async fn deliver(&self, delivery: &Delivery) -> Result<Sent, ForwardError> {
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let id = delivery.event_id.as_str();
        let mut request = self
            .client
            .post(self.url.expose())
            .header(CONTENT_TYPE, "application/json;charset=utf-8")
            .header("webhook-id", id)
            .header("webhook-timestamp", &timestamp)
            .body(delivery.body.clone());
        if let Some(key) = &self.signing_key {
            request = request.header(
                "webhook-signature",
                key.sign(id, &timestamp, &delivery.body),
            );
        }
        let response = request.send().await.map_err(|error| {
            // reqwest's message names the URL, which may hold a token: keep only the kind.
            let kind = if error.is_timeout() {
                "timed out"
            } else if error.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            ForwardError::retry(format!("HTTP sink: {kind}"))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(Sent::default());
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        Err(ForwardError {
            message: format!("HTTP sink answered {status}"),
            retry_after,
            gone: status == StatusCode::GONE,
        })
    }
}

/// `Retry-After` as seconds or as an HTTP date.
fn parse_retry_after(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    (date.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let wait = parse_retry_after(&later).unwrap();
        assert!(
            wait > Duration::from_secs(80) && wait <= Duration::from_secs(90),
            "{wait:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
