//! The checked form of `[clients.NAME]`, `[anonymous]` and `[security]`: [`AccessConfig`] and
//! what it holds ([`Client`], [`Credential`], [`Policy`], [`ClientIp`]), each value already
//! parsed, so that `http::auth` only compares. Built by [`super::check`]; nothing here reads the
//! file or verifies a request.

use std::collections::BTreeSet;
use std::fmt;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context;
use axum::http::HeaderName;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::allowlist::SourceAllowlist;
use crate::domain::envelope::EventType;
use crate::standard_webhooks::VerifyingKey;

/// A client's name: 1 to 64 letters, digits, `.`, `_` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientName(String);

impl ClientName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ClientName {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> anyhow::Result<Self> {
        crate::domain::name::check("client name", name)?;
        Ok(ClientName(name.to_owned()))
    }
}

/// A checked token bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests a second on average.
    pub per_second: f64,
    /// Requests allowed at once.
    pub burst: NonZeroU32,
}

/// What a caller may do once it is known.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The event types it may send; `None` means all.
    pub event_types: Option<BTreeSet<EventType>>,
    /// Where it may call from.
    pub sources: SourceAllowlist,
    /// How often.
    pub rate: Option<Rate>,
}

/// A JWT verification key.
#[derive(Clone)]
pub struct JwtKey {
    /// The key.
    pub key: DecodingKey,
    /// The one algorithm it verifies.
    pub algorithm: Algorithm,
    /// The `kid` it answers to, from a JWKS.
    pub kid: Option<String>,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Checked JWT verification settings.
#[derive(Debug, Clone)]
pub struct Jwt {
    /// The keys, any of which may sign.
    pub keys: Vec<JwtKey>,
    /// Accepted issuers; empty means any.
    pub issuer: Vec<String>,
    /// Accepted audiences; empty means not checked.
    pub audience: Vec<String>,
    /// Whether `exp` is required.
    pub require_exp: bool,
    /// Clock skew allowed.
    pub leeway_seconds: u64,
}

/// One way for a client to prove who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An API key, compared by SHA-256.
    ApiKey {
        /// SHA-256 of the key.
        hash: [u8; 32],
        /// The header it arrives in; `None` is `Authorization: Bearer`.
        header: Option<HeaderName>,
        /// When it stops working.
        expires_at: Option<DateTime<Utc>>,
    },
    /// HTTP Basic with an argon2 password hash.
    Basic {
        /// The user name.
        user: String,
        /// The PHC string.
        password_hash: String,
        /// When it stops working.
        expires_at: Option<DateTime<Utc>>,
    },
    /// A signed JWT bearer token.
    Jwt(Jwt),
    /// A client certificate from the configured CA with one of these names.
    Mtls {
        /// Normalized subject DNs.
        subjects: Vec<String>,
        /// Subject alternative names.
        sans: Vec<String>,
    },
    /// Standard Webhooks signatures.
    Webhook {
        /// The keys, any of which may sign.
        keys: Vec<VerifyingKey>,
        /// Allowed clock distance, in seconds.
        tolerance_seconds: i64,
    },
}

impl Credential {
    /// The method's name, as `client list` shows it.
    pub fn method(&self) -> &'static str {
        match self {
            Credential::ApiKey { .. } => "api-key",
            Credential::Basic { .. } => "basic",
            Credential::Jwt(_) => "jwt",
            Credential::Mtls { .. } => "mtls",
            Credential::Webhook { .. } => "webhook",
        }
    }
}

/// A checked client.
#[derive(Debug, Clone)]
pub struct Client {
    /// Its name, recorded with each event it sends.
    pub name: ClientName,
    /// Whether it may post at all.
    pub enabled: bool,
    /// What it may do.
    pub policy: Policy,
    /// How it proves who it is.
    pub credentials: Vec<Credential>,
}

/// Where the caller's address comes from.
#[derive(Debug, Clone, Default)]
pub enum ClientIp {
    /// The TCP peer.
    #[default]
    Peer,
    /// A header set by one of the trusted proxies; other peers are taken as they are.
    Header {
        /// The header, as `x-forwarded-for`.
        name: HeaderName,
        /// The proxies whose header is believed.
        trusted: SourceAllowlist,
    },
}

/// Everything about who may post.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    /// Requests without credentials are accepted, under `anonymous`.
    pub allow_anonymous: bool,
    /// What anonymous callers may do.
    pub anonymous: Policy,
    /// The configured clients, in name order.
    pub clients: Vec<Client>,
    /// Sources allowed for everyone.
    pub allowed_sources: SourceAllowlist,
    /// Where the caller's address comes from.
    pub client_ip: ClientIp,
    /// Requests handled at once.
    pub max_in_flight: usize,
    /// Requests waiting; past this, 503/6.
    pub max_queued: usize,
    /// The CA whose certificates clients may present; enables mTLS.
    pub client_ca_file: Option<PathBuf>,
}

impl AccessConfig {
    /// Whether any client authenticates with a certificate.
    pub fn uses_mtls(&self) -> bool {
        self.clients.iter().any(|client| {
            client
                .credentials
                .iter()
                .any(|credential| matches!(credential, Credential::Mtls { .. }))
        })
    }
}

/// Parses `sha256:<hex>` (or bare hex) into the hash bytes.
pub fn parse_key_hash(text: &str) -> anyhow::Result<[u8; 32]> {
    let hex_text = text.trim().strip_prefix("sha256:").unwrap_or(text.trim());
    hex::decode(hex_text)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .context("hash must be sha256:<64 hex digits>; `order-listener client add` writes one")
}

/// `cn=a, O=b` → `CN=a,O=b`: attribute names in upper case, no spaces around separators.
pub fn normalize_dn(dn: &str) -> String {
    dn.split(',')
        .map(|part| match part.split_once('=') {
            Some((key, value)) => format!("{}={}", key.trim().to_ascii_uppercase(), value.trim()),
            None => part.trim().to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_are_checked() {
        assert!(ClientName::from_str("onap-nbi_1.prod").is_ok());
        assert!(ClientName::from_str("").is_err());
        assert!(ClientName::from_str("has space").is_err());
        assert!(ClientName::from_str(&"x".repeat(65)).is_err());
    }

    #[test]
    fn distinguished_names_are_normalized() {
        assert_eq!(
            normalize_dn("cn = nbi , O=Seller Inc"),
            "CN=nbi,O=Seller Inc"
        );
    }
}
