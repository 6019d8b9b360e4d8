//! OAuth2's client-credentials grant (RFC 6749, 4.4) for a seller API or a webhook sink: the
//! client authenticates with HTTP Basic at the token endpoint, and the token is kept until
//! shortly before it expires. One request for a token at a time per seller API or sink; the
//! token and the client's secret are held as [`Secret`]s and never printed.

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::http_auth::OAuth2;
use crate::forward::error::TokenError;
use crate::secret::Secret;

/// How long a token without `expires_in` is kept.
const UNSTATED_LIFETIME: Duration = Duration::from_secs(300);
/// The most a token is renewed before it expires.
const MOST_EARLY: Duration = Duration::from_secs(60);

/// A token and when to ask for the next one.
struct Token {
    value: Secret,
    renew_at: Instant,
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct Answer {
    access_token: Option<Secret>,
    expires_in: Option<u64>,
}

/// Where a seller API's or a sink's tokens come from, and the one in use.
pub(crate) struct TokenSource {
    grant: OAuth2,
    cached: Mutex<Option<Token>>,
}

/// When a token that lives `lifetime` from `now` is renewed: a fifth of its life early, at
/// most [`MOST_EARLY`].
fn renew_at(now: Instant, lifetime: Duration) -> Instant {
    now + lifetime - (lifetime / 5).min(MOST_EARLY)
}

impl TokenSource {
    pub(crate) fn new(grant: OAuth2) -> TokenSource {
        TokenSource {
            grant,
            cached: Mutex::new(None),
        }
    }

    /// The token to send: the cached one while it is fresh, else a new one.
    pub(crate) async fn get(&self, http: &reqwest::Client) -> Result<Secret, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached
            .as_ref()
            .filter(|token| Instant::now() < token.renew_at)
        {
            return Ok(token.value.clone());
        }
        *cached = None;
        let token = self.request(http).await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    /// Drops the cached token (the server refused it).
    pub(crate) async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    async fn request(&self, http: &reqwest::Client) -> Result<Token, TokenError> {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.grant.scope {
            form.push(("scope", scope));
        }
        // Encoding pairs of plain strings cannot fail.
        let body = serde_urlencoded::to_string(&form).unwrap_or_default();
        let failed = |source: reqwest::Error| TokenError::Request {
            source: source.without_url(),
        };
        let sent = Instant::now();
        let response = http
            .post(self.grant.token_url.clone())
            .basic_auth(
                &self.grant.client_id,
                Some(self.grant.client_secret.expose()),
            )
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(failed)?;
        let status = response.status();
        if !status.is_success() {
            return Err(TokenError::Refused { status });
        }
        let answer: Answer = response.json().await.map_err(|_| TokenError::Unreadable)?;
        let value = answer
            .access_token
            .filter(|token| !token.expose().is_empty())
            .ok_or(TokenError::Unreadable)?;
        let lifetime = answer
            .expires_in
            .map_or(UNSTATED_LIFETIME, Duration::from_secs);
        Ok(Token {
            value,
            renew_at: renew_at(sent, lifetime),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_renewed_shortly_before_it_expires() {
        let now = Instant::now();
        let hour = Duration::from_secs(3600);
        assert_eq!(renew_at(now, hour), now + hour - MOST_EARLY);
        let minute = Duration::from_secs(60);
        assert_eq!(renew_at(now, minute), now + Duration::from_secs(48));
        assert_eq!(renew_at(now, Duration::ZERO), now, "renewed at once");
    }
}
