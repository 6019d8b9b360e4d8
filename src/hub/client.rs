//! A client of the seller's Hub API, in any dialect: subscribe, list, show and delete.

use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;

use super::Hub;
use super::dialect::{base_path, subscription_request};
use crate::domain::envelope::Dialect;
use crate::outbound::{Credentials, TlsOptions, authorize};

/// Why a hub call failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HubError {
    /// The server URL cannot be used.
    #[error("the hub URL {0:?} is not a valid http(s) URL")]
    InvalidUrl(String),
    /// The hub could not be reached or did not answer in time.
    #[error("cannot reach the hub at {url}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The hub has no subscription with this id.
    #[error("the hub has no subscription {0}")]
    NotFound(String),
    /// The dialect's Hub API does not define the operation, and this hub does not offer it.
    #[error(
        "the {dialect} Hub API has no `{operation}` and this hub does not offer one \
         (it answered {status}); keep the ids that `hub subscribe` prints"
    )]
    NotOffered {
        /// The dialect.
        dialect: Dialect,
        /// The operation, as `GET /hub`.
        operation: &'static str,
        /// What the hub answered.
        status: StatusCode,
    },
    /// The hub refused the call.
    #[error("the hub answered {status}: {body}")]
    Refused {
        /// The status.
        status: StatusCode,
        /// The body, as text.
        body: String,
    },
    /// The answer was not the Hub API's JSON.
    #[error("the hub's answer is not a Hub API document: {0}")]
    BadAnswer(String),
    /// The client could not be built.
    #[error(transparent)]
    Setup(#[from] anyhow::Error),
}

/// A client for one hub.
#[derive(Debug, Clone)]
pub(crate) struct HubClient {
    http: reqwest::Client,
    dialect: Dialect,
    base: Url,
    credentials: Option<Credentials>,
}

impl HubClient {
    /// A client for the `dialect` hub at `server`: either the full base (`…/nbi/api/v4`) or
    /// just the scheme, host and port, to which the dialect's base path is added.
    pub(crate) fn new(
        dialect: Dialect,
        server: &str,
        credentials: Option<Credentials>,
        tls: &TlsOptions,
    ) -> Result<Self, HubError> {
        let mut base = Url::parse(server).map_err(|_| HubError::InvalidUrl(server.to_owned()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(HubError::InvalidUrl(server.to_owned()));
        }
        if base.path() == "/" || base.path().is_empty() {
            base.set_path(base_path(dialect));
        }
        let path = base.path().trim_end_matches('/').to_owned();
        base.set_path(&path);
        let http = crate::outbound::client(tls, Duration::from_secs(30), 2)?;
        Ok(HubClient {
            http,
            dialect,
            base,
            credentials,
        })
    }

    fn url(&self, tail: &str) -> String {
        format!("{}{tail}", self.base)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, HubError> {
        authorize(request, self.credentials.as_ref())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|source| HubError::Unreachable {
                url: url.to_owned(),
                source,
            })
    }

    async fn json<T: DeserializeOwned>(
        response: reqwest::Response,
        id: Option<&str>,
    ) -> Result<T, HubError> {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if let (StatusCode::NOT_FOUND, Some(id)) = (status, id) {
            return Err(HubError::NotFound(id.to_owned()));
        }
        if !status.is_success() {
            return Err(HubError::Refused { status, body });
        }
        serde_json::from_str(&body).map_err(|error| HubError::BadAnswer(format!("{error}: {body}")))
    }

    /// `POST /hub`: registers `callback` for the notifications that `query` selects, with the
    /// body the dialect's hub takes.
    pub(crate) async fn subscribe(&self, callback: &str, query: &str) -> Result<Hub, HubError> {
        let url = self.url("/hub");
        let body = subscription_request(self.dialect, callback, query);
        let response = self.send(self.http.post(&url).json(&body), &url).await?;
        Self::json(response, None).await
    }

    /// `GET /hub`: every subscription. Only ONAP's Hub API defines it; a TMF641 or MEF hub
    /// that does not offer it is told apart from one that fails.
    pub(crate) async fn list(&self) -> Result<Vec<Hub>, HubError> {
        let url = self.url("/hub");
        let response = self.send(self.http.get(&url), &url).await?;
        let status = response.status();
        if self.dialect != Dialect::Onap
            && matches!(
                status,
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
            )
        {
            return Err(HubError::NotOffered {
                dialect: self.dialect,
                operation: "GET /hub",
                status,
            });
        }
        Self::json(response, None).await
    }

    /// `GET /hub/{id}`. TMF641 v4 does not define it; a hub that answers 405 does not offer it.
    pub(crate) async fn show(&self, id: &str) -> Result<Hub, HubError> {
        let url = self.url(&format!("/hub/{}", encode(id)));
        let response = self.send(self.http.get(&url), &url).await?;
        if response.status() == StatusCode::METHOD_NOT_ALLOWED {
            return Err(HubError::NotOffered {
                dialect: self.dialect,
                operation: "GET /hub/{id}",
                status: response.status(),
            });
        }
        Self::json(response, Some(id)).await
    }

    /// `DELETE /hub/{id}`.
    pub(crate) async fn delete(&self, id: &str) -> Result<(), HubError> {
        let url = self.url(&format!("/hub/{}", encode(id)));
        let response = self.send(self.http.delete(&url), &url).await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Err(HubError::NotFound(id.to_owned()));
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(HubError::Refused { status, body });
        }
        Ok(())
    }
}

fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}
