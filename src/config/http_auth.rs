//! How the listener proves who it is to an HTTP server it calls (a seller API, a webhook
//! sink): `bearer_token`, `basic = {user, password}` or `oauth2 = {token_url, client_id,
//! client_secret, scope}`, at most one, written the same way wherever they are taken.

use anyhow::{Context, bail};
use reqwest::Url;
use serde::Deserialize;

use crate::outbound::Credentials;
use crate::secret::Secret;

/// `basic = {user, password}`.
#[derive(Debug, Clone, Deserialize)]
pub struct BasicSettings {
    /// The user.
    pub user: String,
    /// The password.
    pub password: Secret,
}

/// `oauth2 = {token_url, client_id, client_secret, scope}`.
#[derive(Debug, Clone, Deserialize)]
pub struct OAuth2Settings {
    /// The token endpoint.
    pub token_url: String,
    /// The client's id.
    pub client_id: String,
    /// The client's secret.
    pub client_secret: Secret,
    /// The scope to ask for, if the seller wants one.
    #[serde(default)]
    pub scope: Option<String>,
}

/// OAuth2's client-credentials grant, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuth2 {
    /// The token endpoint.
    pub token_url: Url,
    /// The client's id.
    pub client_id: String,
    /// The client's secret.
    pub client_secret: Secret,
    /// The scope asked for.
    pub scope: Option<String>,
}

/// How the listener proves who it is to a server it calls.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpAuth {
    /// A fixed `Authorization` header: Bearer or Basic.
    Fixed(Credentials),
    /// A token from OAuth2's client-credentials grant, cached until shortly before it expires.
    OAuth2(OAuth2),
}

/// A checked `http://` or `https://` URL without credentials in it, for `field`.
pub(super) fn http_url(field: &str, text: &str) -> anyhow::Result<Url> {
    let url = Url::parse(text.trim())
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
        .with_context(|| format!("{field} must be an http:// or https:// URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        bail!(
            "{field} must not hold credentials (the value is not shown): use bearer_token, basic \
             or oauth2"
        );
    }
    Ok(url)
}

/// The one way of proving who the listener is that the settings give, if any.
pub(super) fn check(
    bearer_token: Option<&Secret>,
    basic: Option<&BasicSettings>,
    oauth2: Option<&OAuth2Settings>,
) -> anyhow::Result<Option<HttpAuth>> {
    let mut auths = Vec::new();
    if let Some(token) = bearer_token {
        if token.expose().is_empty() {
            bail!("bearer_token is empty");
        }
        auths.push(HttpAuth::Fixed(Credentials::Bearer(token.clone())));
    }
    if let Some(basic) = basic {
        auths.push(HttpAuth::Fixed(Credentials::Basic {
            user: basic.user.clone(),
            password: basic.password.clone(),
        }));
    }
    if let Some(oauth2) = oauth2 {
        if oauth2.client_id.is_empty() {
            bail!("oauth2.client_id is empty");
        }
        auths.push(HttpAuth::OAuth2(OAuth2 {
            token_url: http_url("oauth2.token_url", &oauth2.token_url)?,
            client_id: oauth2.client_id.clone(),
            client_secret: oauth2.client_secret.clone(),
            scope: oauth2.scope.clone().filter(|scope| !scope.is_empty()),
        }));
    }
    if auths.len() > 1 {
        bail!("give one of bearer_token, basic and oauth2, not several");
    }
    Ok(auths.pop())
}
