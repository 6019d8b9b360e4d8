//! The internal sink `seller-api`: resolves an event that only refers to its order (MEF LSO
//! Legato's `{id, href}`) by fetching the order from the seller's Service Ordering API, then
//! stores it as the event's snapshot with the event's facts merged
//! (`domain::snapshot::merge`), which folds the order again (`Store::record_snapshot`).
//!
//! Fetches go through the outbox like any delivery, so they are retried on `[seller_fetch]`'s
//! schedule, survive restarts, show in metrics, on the console and in `dead-letters`, and never
//! hold up the listener. A 404 (the order may not be visible yet), a 401 and a 403 are failures
//! to retry like any other answer that is not a 2xx.
//!
//! Which seller API, and which URL: the one whose `base_url` has the origin of the event's
//! `href`, with the href as the URL; else the one that takes the event's dialect, with
//! `{base_url}/serviceOrder/{id}`. An href to another origin is never followed (it could point
//! the listener, with a seller's credentials, anywhere), nor is a redirect: a 3xx is a failure
//! like any other answer that is not a 2xx. Secrets go only in request headers and
//! never into an error or a log line; no error holds a URL.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use reqwest::StatusCode;
use reqwest::Url;
use reqwest::header::{ACCEPT, RETRY_AFTER};

use super::error::{SellerError, parse_retry_after};
use super::token::TokenSource;
use super::{ForwardError, Sent};
use crate::config::http_auth::HttpAuth;
use crate::config::seller_apis::SellerApi;
use crate::domain::envelope::{Dialect, OrderFacts, OrderId, ParseOptions, parse};
use crate::domain::snapshot::{OtherOrder, merge, read_order};
use crate::metrics::{FetchOutcome, Metrics};
use crate::store::{Delivery, Store};

/// The largest order a seller may answer.
const MAX_ORDER_BYTES: usize = 8 * 1024 * 1024;

/// The `outcome` label of the fetch metric for a failure.
pub(crate) fn outcome(error: &SellerError) -> FetchOutcome {
    match error {
        SellerError::Answered { status, .. } => match *status {
            StatusCode::NOT_FOUND => FetchOutcome::NotFound,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => FetchOutcome::Unauthorized,
            _ => FetchOutcome::Rejected,
        },
        SellerError::Request { .. } => FetchOutcome::Unreachable,
        SellerError::Token(_) => FetchOutcome::TokenFailed,
        SellerError::NotAnOrder(_) | SellerError::OtherOrder(_) | SellerError::TooLarge { .. } => {
            FetchOutcome::Unreadable
        }
    }
}

/// One seller API, ready to fetch: the `seller-api` sink's and reconciliation's client.
pub(crate) struct Seller {
    api: SellerApi,
    http: reqwest::Client,
    token: Option<TokenSource>,
}

impl Seller {
    /// Prepares the client of `api` (its TLS options and timeout); nothing is connected yet.
    pub(crate) fn new(api: &SellerApi) -> anyhow::Result<Seller> {
        let http = crate::outbound::client_without_redirects(&api.tls, api.timeout, 8)
            .map_err(|error| error.context(format!("cannot prepare seller API {}", api.name)))?;
        let token = match &api.auth {
            Some(HttpAuth::OAuth2(grant)) => Some(TokenSource::new(grant.clone())),
            _ => None,
        };
        Ok(Seller {
            api: api.clone(),
            http,
            token,
        })
    }

    /// The API it fetches from.
    pub(crate) fn api(&self) -> &SellerApi {
        &self.api
    }

    /// GETs `order_id` from the API (`{base_url}/serviceOrder/{id}`) and reads it; the answer's
    /// body as received, and its facts. An answer about another order is an error.
    pub(crate) async fn fetch_order(
        &self,
        order_id: &OrderId,
    ) -> Result<(Bytes, OrderFacts), SellerError> {
        let answer = self.fetch(self.api.order_url(order_id.as_str())).await?;
        let order = read_order(&answer).map_err(SellerError::NotAnOrder)?;
        if &order.order_id != order_id {
            return Err(SellerError::OtherOrder(OtherOrder {
                event: order_id.clone(),
                fetched: order.order_id,
            }));
        }
        Ok((answer, order))
    }

    /// GETs one page of the API's orders (`{base_url}/serviceOrder?offset=N&limit=N`, as ONAP's
    /// NBI and TMF641 list them): each order as its own JSON text, and its facts. An answer that
    /// is not a list of orders is an error.
    pub(crate) async fn list_orders(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<(Bytes, OrderFacts)>, SellerError> {
        let mut url = self.api.list_url();
        url.query_pairs_mut()
            .append_pair("offset", &offset.to_string())
            .append_pair("limit", &limit.to_string());
        let answer = self.fetch(url).await?;
        let not_a_list = |why: String| {
            SellerError::NotAnOrder(crate::domain::envelope::EnvelopeError::InvalidBody(why))
        };
        let listed: Vec<serde_json::Value> = serde_json::from_slice(&answer)
            .map_err(|error| not_a_list(format!("the list is not a JSON array: {error}")))?;
        listed
            .into_iter()
            .map(|order| {
                let text = Bytes::from(order.to_string());
                let facts = read_order(&text).map_err(SellerError::NotAnOrder)?;
                Ok((text, facts))
            })
            .collect()
    }

    /// GETs the order at `url`, with the API's credentials.
    async fn fetch(&self, url: Url) -> Result<Bytes, SellerError> {
        let mut request = self.http.get(url).header(ACCEPT, "application/json");
        request = match &self.api.auth {
            None => request,
            Some(HttpAuth::Fixed(credentials)) => {
                crate::outbound::authorize(request, Some(credentials))
            }
            Some(HttpAuth::OAuth2(_)) => match &self.token {
                Some(token) => request.bearer_auth(token.get(&self.http).await?.expose()),
                None => request,
            },
        };
        let failed = |source: reqwest::Error| SellerError::Request {
            source: source.without_url(),
        };
        let mut response = request.send().await.map_err(failed)?;
        let status = response.status();
        if !status.is_success() {
            if status == StatusCode::UNAUTHORIZED
                && let Some(token) = &self.token
            {
                // The token may have been revoked before its time: the next attempt asks again.
                token.forget().await;
            }
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(parse_retry_after);
            return Err(SellerError::Answered {
                status,
                retry_after,
            });
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_ORDER_BYTES {
                return Err(SellerError::TooLarge {
                    limit: MAX_ORDER_BYTES,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

/// The `seller-api` sink.
pub(crate) struct SellerApiSink {
    sellers: Vec<Seller>,
    store: Store,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for SellerApiSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SellerApiSink").finish_non_exhaustive()
    }
}

impl SellerApiSink {
    /// Prepares a client per seller API (its TLS options and timeout); nothing is connected yet.
    pub(crate) fn new(
        apis: &[SellerApi],
        store: Store,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<SellerApiSink> {
        let sellers = apis
            .iter()
            .map(Seller::new)
            .collect::<anyhow::Result<_>>()?;
        Ok(SellerApiSink {
            sellers,
            store,
            metrics,
        })
    }

    /// Resolves one event: reads it, fetches its order, stores the snapshot and the merged
    /// facts. An event that is not about an order has nothing to resolve.
    pub(crate) async fn deliver(&self, delivery: &Delivery) -> Result<Sent, ForwardError> {
        let store_failed = |source| ForwardError::Store { source };
        let (record, body) = self
            .store
            .event(&delivery.event_id)
            .await
            .map_err(store_failed)?
            .ok_or_else(|| ForwardError::EventGone {
                event_id: delivery.event_id.to_string(),
            })?;
        // The event's own facts, from its body as received: a fetch again (a retry, a replay)
        // merges into what the event said, not into an earlier merge.
        let options = ParseOptions {
            accept_service_inventory: true,
            as_stored: true,
        };
        let own = parse(record.dialect, Some(record.event_type), body, options)
            .map_err(|source| ForwardError::StoredEvent { source })?
            .order;
        let Some(own) = own else {
            return Ok(Sent::default());
        };
        let Some((seller, url)) = choose(
            &self.sellers,
            |seller| &seller.api,
            record.dialect,
            record.reference.as_deref(),
            own.order_id.as_str(),
        ) else {
            self.metrics.fetch("", FetchOutcome::NoSellerApi);
            return Err(ForwardError::NoSellerApi {
                dialect: record.dialect,
            });
        };
        let name = seller.api.name.as_str();
        let fetched = async {
            let answer = seller.fetch(url).await?;
            let order = read_order(&answer).map_err(SellerError::NotAnOrder)?;
            let facts = merge(record.dialect, record.event_type, &own, &order)?;
            Ok::<_, SellerError>((answer, facts))
        }
        .await;
        let (answer, facts) = fetched.map_err(|source| {
            self.metrics.fetch(name, outcome(&source));
            ForwardError::Seller {
                seller: name.to_owned(),
                source,
            }
        })?;
        if let Err(source) = self
            .store
            .record_snapshot(record.sequence, answer, facts)
            .await
        {
            self.metrics.fetch(name, FetchOutcome::NotStored);
            return Err(store_failed(source));
        }
        self.metrics.fetch(name, FetchOutcome::Fetched);
        Ok(Sent::default())
    }
}

/// The seller API of an event of `dialect` that refers to its order with `reference`, and the
/// URL to fetch: the API on the href's origin (preferring one that takes the dialect) and the
/// href itself, without any user or password in it; else the first API that takes the dialect
/// and its `serviceOrder/{order_id}`. An href to another origin is not followed.
pub(crate) fn choose<'a, T>(
    sellers: &'a [T],
    api: impl Fn(&T) -> &SellerApi,
    dialect: Dialect,
    reference: Option<&str>,
    order_id: &str,
) -> Option<(&'a T, Url)> {
    let href = reference
        .and_then(|text| Url::parse(text).ok())
        .filter(|url| matches!(url.scheme(), "http" | "https"));
    if let Some(mut href) = href {
        let on_origin = |seller: &&T| api(seller).same_origin(&href);
        let found = sellers
            .iter()
            .filter(on_origin)
            .find(|seller| api(seller).dialects.contains(&dialect))
            .or_else(|| sellers.iter().find(on_origin));
        if let Some(seller) = found {
            let _ = href.set_username("");
            let _ = href.set_password(None);
            href.set_fragment(None);
            return Some((seller, href));
        }
        tracing::debug!(%dialect, "an href to no seller API's origin is not followed; fetching from the dialect's seller API");
    }
    sellers
        .iter()
        .find(|seller| api(seller).dialects.contains(&dialect))
        .map(|seller| (seller, api(seller).order_url(order_id)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::config::seller_apis::{SellerApiSettings, check};

    fn apis() -> Vec<SellerApi> {
        let api = |base_url: &str, dialects: &[&str]| SellerApiSettings {
            base_url: base_url.into(),
            dialects: Some(dialects.iter().map(|d| (*d).to_owned()).collect()),
            ..SellerApiSettings::default()
        };
        let settings: BTreeMap<String, SellerApiSettings> = [
            (
                "a".into(),
                api("https://a.example/api/", &["mef-legato-v6"]),
            ),
            ("b".into(), api("https://b.example/api", &["mef-legato-v5"])),
            (
                "c".into(),
                api("https://b.example:8443/", &["mef-legato-v6"]),
            ),
        ]
        .into();
        check(&settings).unwrap()
    }

    fn chosen(reference: Option<&str>, dialect: Dialect) -> Option<(String, String)> {
        let apis = apis();
        choose(&apis, |api| api, dialect, reference, "SO-1")
            .map(|(api, url)| (api.name.clone(), url.to_string()))
    }

    #[test]
    fn the_href_is_followed_on_its_seller_apis_origin_only() {
        assert_eq!(
            chosen(
                Some("https://b.example/api/serviceOrder/SO-1"),
                Dialect::MefLegatoV5
            ),
            Some(("b".into(), "https://b.example/api/serviceOrder/SO-1".into()))
        );
        assert_eq!(
            chosen(Some("https://b.example:8443/x/SO-1"), Dialect::MefLegatoV6),
            Some(("c".into(), "https://b.example:8443/x/SO-1".into())),
            "the port is part of the origin"
        );
        assert_eq!(
            chosen(
                Some("https://user:pw@b.example/api/serviceOrder/SO-1#x"),
                Dialect::MefLegatoV6
            ),
            Some(("b".into(), "https://b.example/api/serviceOrder/SO-1".into())),
            "an API on the origin is used even for another dialect, and the href loses its user"
        );
        for reference in [
            Some("http://169.254.169.254/latest/meta-data"),
            Some("https://a.example.evil.example/api/serviceOrder/SO-1"),
            Some("serviceOrder/SO-1"),
            Some("file:///etc/passwd"),
            None,
        ] {
            assert_eq!(
                chosen(reference, Dialect::MefLegatoV6),
                Some(("a".into(), "https://a.example/api/serviceOrder/SO-1".into())),
                "{reference:?}"
            );
        }
        assert_eq!(chosen(Some("https://x.example/"), Dialect::Onap), None);
    }

    #[test]
    fn failures_are_counted_by_what_happened_and_say_what_to_check() {
        let answered = |status| SellerError::Answered {
            status,
            retry_after: None,
        };
        assert_eq!(
            outcome(&answered(StatusCode::NOT_FOUND)),
            FetchOutcome::NotFound
        );
        assert_eq!(
            outcome(&answered(StatusCode::FORBIDDEN)),
            FetchOutcome::Unauthorized
        );
        assert_eq!(
            outcome(&answered(StatusCode::SERVICE_UNAVAILABLE)),
            FetchOutcome::Rejected
        );
        assert_eq!(
            answered(StatusCode::UNAUTHORIZED).to_string(),
            "answered 401 Unauthorized (check the seller API's credentials)"
        );
        let error = ForwardError::Seller {
            seller: "acme".into(),
            source: SellerError::Answered {
                status: StatusCode::TOO_MANY_REQUESTS,
                retry_after: Some(Duration::from_secs(9)),
            },
        };
        assert!(error.is_retryable() && !error.is_gone());
        assert_eq!(error.retry_after(), Some(Duration::from_secs(9)));
        assert_eq!(
            crate::telemetry::error_chain(&error),
            "seller API acme: answered 429 Too Many Requests"
        );
        let gone = ForwardError::Seller {
            seller: "acme".into(),
            source: answered(StatusCode::GONE),
        };
        assert!(!gone.is_gone(), "a seller's 410 does not disable the sink");
    }
}
