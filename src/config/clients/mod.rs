//! `[clients.NAME]`, `[anonymous]` and `[security]`: who may post, how each sender proves who it
//! is, and what it may do. Read from the file as plain settings, then checked once into
//! [`AccessConfig`]: key files are read, hashes and addresses parsed, and every mistake is
//! reported with the client's name and what to write instead.
//!
//! This file holds the settings as written and the checking; `access.rs` the checked types,
//! `allowlist.rs` the source allowlists. Nothing here verifies a request; `http::auth` does,
//! with these values.

mod access;
mod allowlist;

pub use self::access::{
    AccessConfig, Client, ClientIp, ClientName, Credential, Jwt, JwtKey, Policy, Rate,
    normalize_dn, parse_key_hash,
};
pub use self::allowlist::{InvalidNetwork, SourceAllowlist};

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, bail};
use axum::http::HeaderName;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::domain::envelope::EventType;
use crate::secret::Secret;
use crate::standard_webhooks::{DEFAULT_TOLERANCE_SECONDS, VerifyingKey};

/// One sender as written under `[clients.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ClientSettings {
    /// A disabled client is refused with 403/50.
    pub enabled: bool,
    /// The event types it may send; empty means all.
    pub event_types: Vec<String>,
    /// The source addresses or CIDRs it may call from; empty means any (within the global list).
    pub allowed_sources: Vec<String>,
    /// Its request rate.
    pub rate_limit: Option<RateLimitSettings>,
    /// API keys, by hash.
    pub api_keys: Vec<ApiKeySettings>,
    /// HTTP Basic.
    pub basic: Option<BasicSettings>,
    /// JWT bearer tokens.
    pub jwt: Option<JwtSettings>,
    /// Client certificates.
    pub mtls: Option<MtlsSettings>,
    /// Standard Webhooks signatures.
    pub webhook: Option<WebhookSettings>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            enabled: true,
            event_types: Vec::new(),
            allowed_sources: Vec::new(),
            rate_limit: None,
            api_keys: Vec::new(),
            basic: None,
            jwt: None,
            mtls: None,
            webhook: None,
        }
    }
}

/// A token bucket as written in the file.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct RateLimitSettings {
    /// Requests a second on average (may be fractional, as 0.5).
    pub per_second: f64,
    /// Requests allowed at once above the average.
    pub burst: u32,
}

/// One API key as written in the file.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiKeySettings {
    /// `sha256:<hex>` of the key.
    pub hash: String,
    /// The header it arrives in; unset means `Authorization: Bearer`.
    pub header: Option<String>,
    /// After this instant the key is refused with 401/42.
    #[serde(default, deserialize_with = "instant")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// HTTP Basic as written in the file.
#[derive(Debug, Clone, Deserialize)]
pub struct BasicSettings {
    /// The user name.
    pub user: String,
    /// The argon2 PHC string of the password (`$argon2id$v=19$…`).
    pub password_hash: String,
    /// After this instant the password is refused with 401/42.
    #[serde(default, deserialize_with = "instant")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// An instant written as a TOML date-time (`2027-01-01T00:00:00Z`) or as an RFC 3339 string.
fn instant<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    // figment hands a TOML date-time over as a one-entry map.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Toml(BTreeMap<String, String>),
        Native(toml::value::Datetime),
    }
    let text = match Written::deserialize(deserializer)? {
        Written::Text(text) => text,
        Written::Toml(map) => map.into_values().next().unwrap_or_default(),
        Written::Native(datetime) => datetime.to_string(),
    };
    DateTime::parse_from_rfc3339(text.trim())
        .map(|instant| Some(instant.with_timezone(&Utc)))
        .map_err(|_| {
            serde::de::Error::custom(format!(
                "{text:?} is not an instant with a time zone, as 2027-01-01T00:00:00Z"
            ))
        })
}

/// JWT verification as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JwtSettings {
    /// A shared HS256 secret.
    pub hs256_secret: Option<Secret>,
    /// A PEM public key: RSA for RS256, P-256 for ES256.
    pub public_key_file: Option<PathBuf>,
    /// A JSON Web Key Set file.
    pub jwks_file: Option<PathBuf>,
    /// Accepted `iss` values; empty means any.
    pub issuer: Vec<String>,
    /// Accepted `aud` values; empty means the claim is not checked.
    pub audience: Vec<String>,
    /// Whether a token without `exp` is refused.
    pub require_exp: bool,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_seconds: u64,
}

impl Default for JwtSettings {
    fn default() -> Self {
        JwtSettings {
            hs256_secret: None,
            public_key_file: None,
            jwks_file: None,
            issuer: Vec::new(),
            audience: Vec::new(),
            require_exp: true,
            leeway_seconds: 30,
        }
    }
}

/// Client certificates as written in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MtlsSettings {
    /// Accepted subject DNs, as `CN=nbi.seller.example,O=Seller`.
    pub subjects: Vec<String>,
    /// Accepted subject alternative names: DNS names, URIs, e-mail or IP addresses.
    pub sans: Vec<String>,
}

/// Standard Webhooks verification as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebhookSettings {
    /// `whsec_…` HMAC secrets and `whpk_…` ed25519 public keys; any of them may sign.
    pub keys: Vec<Secret>,
    /// How far `webhook-timestamp` may be from the listener's clock.
    pub tolerance_seconds: i64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            keys: Vec::new(),
            tolerance_seconds: DEFAULT_TOLERANCE_SECONDS,
        }
    }
}

/// What anonymous callers may do, as written under `[anonymous]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AnonymousSettings {
    /// The event types anonymous callers may send; empty means all.
    pub event_types: Vec<String>,
    /// The sources they may call from.
    pub allowed_sources: Vec<String>,
    /// Their shared request rate.
    pub rate_limit: Option<RateLimitSettings>,
}

/// Listener-wide protections as written under `[security]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SecuritySettings {
    /// Sources allowed for every client; empty means any.
    pub allowed_sources: Vec<String>,
    /// A header that carries the caller's address, as set by a proxy in front (for example
    /// `X-Forwarded-For`). Read only from `trusted_proxies`.
    pub client_ip_header: Option<String>,
    /// The proxies whose `client_ip_header` is believed.
    pub trusted_proxies: Vec<String>,
    /// Listener API requests handled at once.
    pub max_in_flight: usize,
    /// Requests waiting for a slot; past this, 503 with code 6.
    pub max_queued: usize,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        SecuritySettings {
            allowed_sources: Vec::new(),
            client_ip_header: None,
            trusted_proxies: Vec::new(),
            max_in_flight: 256,
            max_queued: 1024,
        }
    }
}

/// The file's settings, checked.
pub fn check(
    allow_anonymous: bool,
    anonymous: &AnonymousSettings,
    clients: &BTreeMap<String, ClientSettings>,
    security: &SecuritySettings,
    client_ca_file: Option<PathBuf>,
) -> anyhow::Result<AccessConfig> {
    let clients = clients
        .iter()
        .map(|(name, settings)| {
            check_client(name, settings).with_context(|| format!("in [clients.{name}]"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let anonymous = policy(
        &anonymous.event_types,
        &anonymous.allowed_sources,
        anonymous.rate_limit,
    )
    .context("in [anonymous]")?;
    let allowed_sources =
        sources(&security.allowed_sources).context("in security.allowed_sources")?;
    let client_ip = match &security.client_ip_header {
        None => ClientIp::Peer,
        Some(name) => {
            let name = HeaderName::from_str(name.trim()).with_context(|| {
                format!("security.client_ip_header {name:?} is not a header name")
            })?;
            if security.trusted_proxies.is_empty() {
                bail!(
                    "security.client_ip_header is set but security.trusted_proxies is empty: list \
                     the addresses of the proxies that set {name}, or anyone could forge it"
                );
            }
            ClientIp::Header {
                name,
                trusted: sources(&security.trusted_proxies)
                    .context("in security.trusted_proxies")?,
            }
        }
    };
    if security.max_in_flight == 0 {
        bail!("security.max_in_flight must be positive");
    }
    let access = AccessConfig {
        allow_anonymous,
        anonymous,
        clients,
        allowed_sources,
        client_ip,
        max_in_flight: security.max_in_flight,
        max_queued: security.max_queued,
        client_ca_file,
    };
    if access.uses_mtls() && access.client_ca_file.is_none() {
        bail!(
            "a client uses mtls but tls.client_ca_file is not set: name the CA that issues the \
             clients' certificates"
        );
    }
    Ok(access)
}

fn sources(entries: &[String]) -> anyhow::Result<SourceAllowlist> {
    Ok(SourceAllowlist::parse(entries.iter().map(String::as_str))?)
}

fn policy(
    event_types: &[String],
    allowed_sources: &[String],
    rate_limit: Option<RateLimitSettings>,
) -> anyhow::Result<Policy> {
    let event_types = if event_types.is_empty() {
        None
    } else {
        Some(
            event_types
                .iter()
                .map(|name| {
                    EventType::from_str(name).map_err(|_| {
                        anyhow::anyhow!(
                            "event_types has {name:?}; the event types are {}",
                            EventType::ALL.map(|kind| kind.as_str()).join(", ")
                        )
                    })
                })
                .collect::<anyhow::Result<BTreeSet<_>>>()?,
        )
    };
    let rate = match rate_limit {
        None => None,
        Some(RateLimitSettings { per_second, burst }) => {
            if !(per_second.is_finite() && per_second > 0.0) {
                bail!("rate_limit.per_second must be a positive number (got {per_second})");
            }
            let burst = NonZeroU32::new(burst).context("rate_limit.burst must be at least 1")?;
            Some(Rate { per_second, burst })
        }
    };
    Ok(Policy {
        event_types,
        sources: sources(allowed_sources).context("in allowed_sources")?,
        rate,
    })
}

fn check_client(name: &str, settings: &ClientSettings) -> anyhow::Result<Client> {
    let name = ClientName::from_str(name)?;
    let policy = policy(
        &settings.event_types,
        &settings.allowed_sources,
        settings.rate_limit,
    )?;
    let mut credentials = Vec::new();
    for (index, key) in settings.api_keys.iter().enumerate() {
        credentials.push(api_key(key).with_context(|| format!("in api_keys[{index}]"))?);
    }
    if let Some(basic) = &settings.basic {
        if basic.user.is_empty() || basic.user.contains(':') {
            bail!("basic.user must be non-empty and hold no ':'");
        }
        argon2::password_hash::phc::PasswordHash::new(&basic.password_hash).map_err(|_| {
            anyhow::anyhow!(
                "basic.password_hash is not an argon2 PHC string ($argon2id$v=19$…); \
                 `order-listener client add NAME --basic USER` writes one"
            )
        })?;
        credentials.push(Credential::Basic {
            user: basic.user.clone(),
            password_hash: basic.password_hash.clone(),
            expires_at: basic.expires_at,
        });
    }
    if let Some(jwt) = &settings.jwt {
        credentials.push(Credential::Jwt(check_jwt(jwt).context("in jwt")?));
    }
    if let Some(mtls) = &settings.mtls {
        if mtls.subjects.is_empty() && mtls.sans.is_empty() {
            bail!("mtls needs subjects or sans: which certificates are this client's?");
        }
        credentials.push(Credential::Mtls {
            subjects: mtls.subjects.iter().map(|dn| normalize_dn(dn)).collect(),
            sans: mtls.sans.iter().map(|san| san.trim().to_owned()).collect(),
        });
    }
    if let Some(webhook) = &settings.webhook {
        if webhook.keys.is_empty() {
            bail!("webhook.keys is empty: add the seller's whsec_ secret or whpk_ public key");
        }
        if webhook.tolerance_seconds <= 0 {
            bail!("webhook.tolerance_seconds must be positive");
        }
        let keys = webhook
            .keys
            .iter()
            .enumerate()
            .map(|(index, key)| {
                key.expose()
                    .parse::<VerifyingKey>()
                    .with_context(|| format!("webhook.keys[{index}] is not valid"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        credentials.push(Credential::Webhook {
            keys,
            tolerance_seconds: webhook.tolerance_seconds,
        });
    }
    if credentials.is_empty() {
        bail!(
            "the client has no way to authenticate: add api_keys, basic, jwt, mtls or webhook \
             (`order-listener client add {name}` adds an API key)"
        );
    }
    Ok(Client {
        name,
        enabled: settings.enabled,
        policy,
        credentials,
    })
}

fn api_key(settings: &ApiKeySettings) -> anyhow::Result<Credential> {
    let header = match &settings.header {
        None => None,
        Some(name) => {
            let header = HeaderName::from_str(name.trim())
                .with_context(|| format!("header {name:?} is not a header name"))?;
            // An API key in `Authorization` is a bearer token, which is the default.
            (header != axum::http::header::AUTHORIZATION).then_some(header)
        }
    };
    Ok(Credential::ApiKey {
        hash: parse_key_hash(&settings.hash)?,
        header,
        expires_at: settings.expires_at,
    })
}

fn check_jwt(settings: &JwtSettings) -> anyhow::Result<Jwt> {
    let mut keys = Vec::new();
    if let Some(secret) = &settings.hs256_secret {
        if secret.expose().len() < 32 {
            bail!("hs256_secret must be at least 32 bytes long");
        }
        keys.push(JwtKey {
            key: DecodingKey::from_secret(secret.expose().as_bytes()),
            algorithm: Algorithm::HS256,
            kid: None,
        });
    }
    if let Some(path) = &settings.public_key_file {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read public_key_file {}", path.display()))?;
        let key = if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
            JwtKey {
                key,
                algorithm: Algorithm::RS256,
                kid: None,
            }
        } else if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
            JwtKey {
                key,
                algorithm: Algorithm::ES256,
                kid: None,
            }
        } else {
            bail!(
                "public_key_file {} is not a PEM RSA (RS256) or P-256 (ES256) public key",
                path.display()
            );
        };
        keys.push(key);
    }
    if let Some(path) = &settings.jwks_file {
        keys.extend(read_jwks(path)?);
    }
    if keys.is_empty() {
        bail!("jwt needs hs256_secret, public_key_file or jwks_file");
    }
    Ok(Jwt {
        keys,
        issuer: settings.issuer.clone(),
        audience: settings.audience.clone(),
        require_exp: settings.require_exp,
        leeway_seconds: settings.leeway_seconds,
    })
}

fn read_jwks(path: &Path) -> anyhow::Result<Vec<JwtKey>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read jwks_file {}", path.display()))?;
    let set: JwkSet = serde_json::from_str(&text)
        .with_context(|| format!("jwks_file {} is not a JSON Web Key Set", path.display()))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let algorithm = match (&jwk.common.key_algorithm, &jwk.algorithm) {
            (Some(algorithm), _) => Algorithm::from_str(&algorithm.to_string()).ok(),
            (None, jsonwebtoken::jwk::AlgorithmParameters::RSA(_)) => Some(Algorithm::RS256),
            (None, jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_)) => {
                Some(Algorithm::ES256)
            }
            (None, _) => None,
        };
        let Some(algorithm) = algorithm.filter(|algorithm| {
            matches!(
                algorithm,
                Algorithm::RS256 | Algorithm::ES256 | Algorithm::HS256
            )
        }) else {
            continue;
        };
        let key = DecodingKey::from_jwk(jwk).with_context(|| {
            format!(
                "jwks_file {} holds a key that cannot be used",
                path.display()
            )
        })?;
        keys.push(JwtKey {
            key,
            algorithm,
            kid: jwk.common.key_id.clone(),
        });
    }
    if keys.is_empty() {
        bail!(
            "jwks_file {} holds no RS256, ES256 or HS256 key",
            path.display()
        );
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_without_credentials_is_refused_by_name() {
        let mut clients = BTreeMap::new();
        clients.insert("seller".to_owned(), ClientSettings::default());
        let error = check(
            false,
            &AnonymousSettings::default(),
            &clients,
            &SecuritySettings::default(),
            None,
        )
        .unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("[clients.seller]"), "{message}");
        assert!(message.contains("no way to authenticate"), "{message}");
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            (
                ClientSettings {
                    api_keys: vec![ApiKeySettings {
                        hash: "sha256:abc".into(),
                        header: None,
                        expires_at: None,
                    }],
                    ..ClientSettings::default()
                },
                "hash must be",
            ),
            (
                ClientSettings {
                    event_types: vec!["OrderNotification".into()],
                    ..ClientSettings::default()
                },
                "OrderNotification",
            ),
            (
                ClientSettings {
                    allowed_sources: vec!["10.0.0.0/40".into()],
                    ..ClientSettings::default()
                },
                "10.0.0.0/40",
            ),
            (
                ClientSettings {
                    basic: Some(BasicSettings {
                        user: "u".into(),
                        password_hash: "plain".into(),
                        expires_at: None,
                    }),
                    ..ClientSettings::default()
                },
                "argon2",
            ),
            (
                ClientSettings {
                    webhook: Some(WebhookSettings {
                        keys: vec![Secret::new("secret")],
                        ..WebhookSettings::default()
                    }),
                    ..ClientSettings::default()
                },
                "whsec_",
            ),
        ];
        for (settings, expected) in cases {
            let error = check_client("c", &settings).unwrap_err();
            let message = format!("{error:#}");
            assert!(message.contains(expected), "{expected}: {message}");
        }
    }

    #[test]
    fn the_client_ip_header_needs_trusted_proxies() {
        let security = SecuritySettings {
            client_ip_header: Some("X-Forwarded-For".into()),
            ..SecuritySettings::default()
        };
        let error = check(
            true,
            &AnonymousSettings::default(),
            &BTreeMap::new(),
            &security,
            None,
        )
        .unwrap_err();
        assert!(error.to_string().contains("trusted_proxies"), "{error}");
    }
}
