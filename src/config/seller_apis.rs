//! `[seller_apis.NAME]`: the sellers' Service Ordering APIs, from which the listener fetches the
//! order of an event that only refers to it (MEF LSO Legato's `{id, href}`), and
//! `[seller_fetch]`: how those fetches are retried. Read as plain settings and checked once into
//! [`SellerApi`]s and the internal sink [`SELLER_API_SINK`] that fetches through the outbox.
//! Without a seller API, nothing is fetched and no such sink exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::Url;
use serde::Deserialize;

use super::http_auth::{self, BasicSettings, HttpAuth, OAuth2Settings, http_url};
use super::sinks::{RetryPolicy, SELLER_API_SINK, SinkConfig, SinkTarget, SinkTls, retry_policy};
use crate::domain::envelope::{Dialect, Source};
use crate::domain::routing::RouteFilter;
use crate::outbound::TlsOptions;
use crate::secret::Secret;

/// One seller API as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SellerApiSettings {
    /// The root of the seller's Service Ordering API; an order is `{base_url}/serviceOrder/{id}`.
    pub base_url: String,
    /// The dialects whose orders this API serves; unset means every reference-only dialect.
    pub dialects: Option<Vec<String>>,
    /// Fetch the order of every event of these dialects as it arrives (the `seller-api` sink).
    /// Unset: only for reference-only dialects (MEF), whose events carry no order. Either way
    /// the API serves reconciliation (`[reconcile]`).
    pub resolve_events: Option<bool>,
    /// The API lists its orders (`GET {base_url}/serviceOrder?offset&limit`, as ONAP's NBI
    /// and TMF641 do): reconciliation then also finds the orders the listener never heard of.
    pub list_orders: bool,
    /// `Authorization: Bearer` with this token.
    pub bearer_token: Option<Secret>,
    /// HTTP Basic.
    pub basic: Option<BasicSettings>,
    /// OAuth2's client-credentials grant.
    pub oauth2: Option<OAuth2Settings>,
    /// How long one request may take.
    pub timeout_seconds: u64,
    /// Trust the server certificates signed by this PEM file, on top of the system's roots.
    pub ca_cert: Option<PathBuf>,
    /// Accept any server certificate. For tests only: it defeats TLS.
    pub insecure: bool,
}

impl Default for SellerApiSettings {
    fn default() -> Self {
        SellerApiSettings {
            base_url: String::new(),
            dialects: None,
            resolve_events: None,
            list_orders: false,
            bearer_token: None,
            basic: None,
            oauth2: None,
            timeout_seconds: 10,
            ca_cert: None,
            insecure: false,
        }
    }
}

/// `[seller_fetch]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct FetchSettings {
    /// Waits between attempts, as `5s`, `2m`, `1h`; the last repeats.
    pub retry_schedule: Vec<String>,
    /// How long after its event arrived a fetch becomes a dead letter.
    pub retry_horizon: String,
    /// Orders fetched at once.
    pub concurrency: usize,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            retry_schedule: ["5s", "30s", "2m", "10m", "1h"].map(str::to_owned).to_vec(),
            retry_horizon: "24h".into(),
            concurrency: 8,
        }
    }
}

/// A checked seller API.
#[derive(Debug, Clone)]
pub struct SellerApi {
    /// Its name in the file, in metrics and in logs.
    pub name: String,
    /// The root of its Service Ordering API.
    pub base_url: Url,
    /// The dialects whose orders it serves.
    pub dialects: BTreeSet<Dialect>,
    /// The dialects whose every event's order it fetches as the event arrives.
    pub resolves: BTreeSet<Dialect>,
    /// Whether it lists its orders, for reconciliation.
    pub list_orders: bool,
    /// Its credentials, if it wants any.
    pub auth: Option<HttpAuth>,
    /// One request's time limit.
    pub timeout: Duration,
    /// Which servers are trusted.
    pub(crate) tls: TlsOptions,
}

impl SellerApi {
    /// Where it lists its orders: `{base_url}/serviceOrder`.
    pub fn list_url(&self) -> Url {
        let mut url = self.base_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("serviceOrder");
        }
        url
    }

    /// Where it serves `order_id`: `{base_url}/serviceOrder/{order_id}`, the id one path
    /// segment whatever it holds.
    pub fn order_url(&self, order_id: &str) -> Url {
        let mut url = self.base_url.clone();
        // A base URL that can be a base (http and https ones are) has path segments.
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("serviceOrder").push(order_id);
        }
        url
    }

    /// Whether `url` is on this API's origin (scheme, host and port).
    pub fn same_origin(&self, url: &Url) -> bool {
        self.base_url.origin() == url.origin()
    }
}

fn check_api(name: &str, settings: &SellerApiSettings) -> anyhow::Result<SellerApi> {
    crate::domain::name::check("the name", name)?;
    if settings.base_url.trim().is_empty() {
        bail!("base_url is required: the root of the seller's Service Ordering API");
    }
    let base_url = http_url("base_url", &settings.base_url)?;
    let valid = Dialect::ALL.map(Dialect::as_str).join(", ");
    let dialects: BTreeSet<Dialect> = match &settings.dialects {
        None => Dialect::ALL
            .into_iter()
            .filter(|dialect| dialect.is_reference_only())
            .collect(),
        Some(names) => names
            .iter()
            .map(|text| {
                text.parse::<Dialect>()
                    .ok()
                    .with_context(|| format!("dialects has {text:?}; use one of {valid}"))
            })
            .collect::<anyhow::Result<_>>()?,
    };
    if dialects.is_empty() {
        bail!(
            "dialects is empty: name at least one, or leave it out for {{mef-legato-v5, mef-legato-v6}}"
        );
    }
    let auth = http_auth::check(
        settings.bearer_token.as_ref(),
        settings.basic.as_ref(),
        settings.oauth2.as_ref(),
    )?;
    let resolves = dialects
        .iter()
        .copied()
        .filter(|dialect| {
            settings
                .resolve_events
                .unwrap_or_else(|| dialect.is_reference_only())
        })
        .collect();
    Ok(SellerApi {
        name: name.to_owned(),
        base_url,
        dialects,
        resolves,
        list_orders: settings.list_orders,
        auth,
        timeout: Duration::from_secs(settings.timeout_seconds.max(1)),
        tls: TlsOptions {
            ca_cert: settings.ca_cert.clone(),
            insecure: settings.insecure,
        },
    })
}

/// Checks every `[seller_apis.NAME]`, by name.
pub fn check(apis: &BTreeMap<String, SellerApiSettings>) -> anyhow::Result<Vec<SellerApi>> {
    apis.iter()
        .map(|(name, settings)| {
            check_api(name, settings).with_context(|| format!("in [seller_apis.{name}]"))
        })
        .collect()
}

/// The internal sink [`SELLER_API_SINK`] that fetches the orders of the events the seller APIs
/// resolve (a seller's own events: a synthesized one carries its order) through the outbox,
/// retried as `[seller_fetch]` says; `None` when no API resolves events.
pub fn fetch_sink(
    apis: &[SellerApi],
    settings: &FetchSettings,
) -> anyhow::Result<Option<SinkConfig>> {
    let dialects: BTreeSet<Dialect> = apis
        .iter()
        .flat_map(|api| api.resolves.iter().copied())
        .collect();
    if dialects.is_empty() {
        return Ok(None);
    }
    let retry: RetryPolicy = retry_policy(&settings.retry_schedule, &settings.retry_horizon)
        .context("in [seller_fetch]")?;
    if settings.concurrency == 0 {
        bail!("in [seller_fetch]: concurrency must be at least 1");
    }
    // An attempt may ask for an OAuth2 token first, then for the order.
    let slowest = apis.iter().map(|api| api.timeout).max().unwrap_or_default();
    Ok(Some(SinkConfig {
        name: SELLER_API_SINK
            .parse()
            .map_err(anyhow::Error::msg)
            .context("the seller API sink's name")?,
        enabled: true,
        filter: RouteFilter {
            dialects: Some(dialects),
            sources: Some([Source::Seller].into()),
            ..RouteFilter::default()
        },
        concurrency: settings.concurrency,
        timeout: slowest * 2,
        retry,
        target: SinkTarget::SellerApi,
        // Each seller API has its own TLS options.
        tls: SinkTls::default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::http_auth::OAuth2;
    use crate::outbound::Credentials;

    fn api(base_url: &str) -> SellerApiSettings {
        SellerApiSettings {
            base_url: base_url.into(),
            ..SellerApiSettings::default()
        }
    }

    #[test]
    fn a_seller_api_resolves_the_reference_only_dialects_by_default() {
        let checked = check_api("acme", &api("https://seller.example/mefApi/v6/")).unwrap();
        assert_eq!(
            checked.dialects,
            [Dialect::MefLegatoV5, Dialect::MefLegatoV6].into()
        );
        assert!(checked.auth.is_none());
        assert_eq!(
            checked.order_url("SO 1/2").as_str(),
            "https://seller.example/mefApi/v6/serviceOrder/SO%201%2F2",
            "the id is one segment"
        );
        let bare = check_api("acme", &api("https://seller.example")).unwrap();
        assert_eq!(
            bare.order_url("SO-1").as_str(),
            "https://seller.example/serviceOrder/SO-1"
        );
        assert_eq!(
            checked.list_url().as_str(),
            "https://seller.example/mefApi/v6/serviceOrder"
        );
        assert!(bare.same_origin(&Url::parse("https://seller.example:443/x").unwrap()));
        assert!(!bare.same_origin(&Url::parse("http://seller.example/x").unwrap()));
        assert!(!bare.same_origin(&Url::parse("https://evil.example/x").unwrap()));
    }

    #[test]
    fn one_credential_of_three_kinds() {
        let oauth2 = SellerApiSettings {
            oauth2: Some(OAuth2Settings {
                token_url: "https://auth.example/token".into(),
                client_id: "buyer".into(),
                client_secret: Secret::new("s3cret"),
                scope: Some("orders".into()),
            }),
            ..api("https://seller.example")
        };
        assert!(matches!(
            check_api("acme", &oauth2).unwrap().auth,
            Some(HttpAuth::OAuth2(OAuth2 { ref scope, .. })) if scope.as_deref() == Some("orders")
        ));
        let both = SellerApiSettings {
            bearer_token: Some(Secret::new("t0ken")),
            ..oauth2
        };
        let message = format!("{:#}", check_api("acme", &both).unwrap_err());
        assert!(message.contains("not several"), "{message}");
        assert!(!message.contains("t0ken") && !message.contains("s3cret"));
    }

    #[test]
    fn mistakes_are_named_and_secrets_are_not_shown() {
        let cases = [
            (api(""), "base_url is required"),
            (api("ftp://seller.example"), "http:// or https://"),
            (
                api("https://buyer:hunter2@seller.example"),
                "must not hold credentials",
            ),
            (
                SellerApiSettings {
                    dialects: Some(vec!["mef".into()]),
                    ..api("https://seller.example")
                },
                "dialects has \"mef\"; use one of onap",
            ),
            (
                SellerApiSettings {
                    dialects: Some(vec![]),
                    ..api("https://seller.example")
                },
                "dialects is empty",
            ),
        ];
        for (settings, expected) in cases {
            let message = format!(
                "{:#}",
                check(&[("acme".into(), settings)].into()).unwrap_err()
            );
            assert!(message.contains(expected), "{expected}: {message}");
            assert!(message.contains("[seller_apis.acme]"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        let message = format!(
            "{:#}",
            check(&[("a b".into(), api("https://x.example"))].into()).unwrap_err()
        );
        assert!(message.contains("not valid"), "{message}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's own test harness
    fn a_seller_apis_or_sinks_secret_can_come_from_the_environment_and_the_sink_joins_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[seller_apis.acme]\nbase_url = \"https://seller.example/api\"\n\
             [sinks.hooks]\ntype = \"http\"\nurl = \"http://hooks.example/\"\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("OLTEST_SELLER_APIS__ACME__BEARER_TOKEN", "env-t0ken");
            jail.set_env("OLTEST_SINKS__HOOKS__BEARER_TOKEN", "env-s1nk-t0ken");
            let config = crate::config::Config::load_from(
                Some(&path),
                figment::providers::Env::prefixed("OLTEST_").split("__"),
                &crate::config::Overrides::default(),
            )
            .unwrap();
            assert!(matches!(
                &config.seller_apis[0].auth,
                Some(HttpAuth::Fixed(Credentials::Bearer(token))) if token.expose() == "env-t0ken"
            ));
            let names: Vec<&str> = config.sinks.iter().map(|sink| sink.name.as_str()).collect();
            assert_eq!(names, ["hooks", SELLER_API_SINK]);
            assert!(matches!(
                &config.sinks[0].target,
                SinkTarget::Http { auth: Some(auth), .. }
                    if matches!(&**auth, HttpAuth::Fixed(Credentials::Bearer(token)) if token.expose() == "env-s1nk-t0ken")
            ));
            let printed = format!("{config:?}");
            assert!(!printed.contains("env-t0ken") && !printed.contains("env-s1nk-t0ken"));
            Ok(())
        });
    }

    #[test]
    fn the_fetch_sink_takes_every_seller_apis_dialects_and_its_own_retries() {
        assert!(
            fetch_sink(&[], &FetchSettings::default())
                .unwrap()
                .is_none()
        );
        let mef = check_api("mef", &api("https://a.example")).unwrap();
        let onap = check_api(
            "onap",
            &SellerApiSettings {
                dialects: Some(vec!["onap".into()]),
                ..api("https://c.example")
            },
        )
        .unwrap();
        assert!(onap.resolves.is_empty(), "ONAP's events carry their order");
        assert!(
            fetch_sink(std::slice::from_ref(&onap), &FetchSettings::default())
                .unwrap()
                .is_none(),
            "an API for reconciliation alone fetches nothing per event"
        );
        let tmf = check_api(
            "tmf",
            &SellerApiSettings {
                dialects: Some(vec!["tmf641-v4".into()]),
                resolve_events: Some(true),
                timeout_seconds: 30,
                ..api("https://b.example")
            },
        )
        .unwrap();
        let settings = FetchSettings {
            retry_schedule: vec!["100ms".into()],
            retry_horizon: "1h".into(),
            concurrency: 2,
        };
        let sink = fetch_sink(&[mef, tmf, onap], &settings).unwrap().unwrap();
        assert_eq!(sink.name.as_str(), SELLER_API_SINK);
        assert_eq!(
            sink.filter.dialects,
            Some(
                [
                    Dialect::Tmf641V4,
                    Dialect::MefLegatoV5,
                    Dialect::MefLegatoV6
                ]
                .into()
            )
        );
        assert_eq!(sink.filter.sources, Some([Source::Seller].into()));
        assert_eq!(sink.retry.wait_after(3), Duration::from_millis(100));
        assert_eq!(sink.timeout, Duration::from_secs(60));
        assert!(matches!(sink.target, SinkTarget::SellerApi));
    }
}
