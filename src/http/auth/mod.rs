//! Who may post, and what they may do: the [`Gate`] every Listener API request passes.
//!
//! A request is first placed (its source address, through a trusted proxy when configured),
//! then identified as one configured client by one of its credentials (API key, HTTP Basic,
//! JWT, client certificate or Standard Webhooks signature), or taken as anonymous when that is
//! allowed. The caller's policy then says whether it is enabled, may call from there, is within
//! its rate, and may send this event type. Each refusal is a [`Denied`] with the spec's code.
//!
//! Secrets are compared in constant time and never logged; failures are logged by the handler
//! with the source address and the code.

pub mod generated;
pub mod limits;
pub mod mtls;
pub mod overload;
pub mod signature;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::PasswordVerifier;
use axum::http::{HeaderMap, HeaderName, header};
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use self::limits::{RateLimit, SourceAllowlist};
use self::mtls::PeerIdentity;
use self::signature::{SignatureError, SignedHeaders};
use crate::config::clients::{AccessConfig, ClientIp, Credential, Jwt, Policy};
use crate::domain::envelope::EventType;

/// The spec's reason for refusing a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeniedCode {
    /// 401/40: no credentials.
    Missing,
    /// 401/41: credentials that do not verify.
    Invalid,
    /// 401/42: credentials that have expired.
    Expired,
    /// 403/50: the client is disabled.
    Disabled,
    /// 403/51: not from an allowed source, or a certificate no client accepts.
    ForbiddenRequester,
    /// 403/52: the client may not send this event type.
    ForbiddenEventType,
    /// 403/53: over the client's rate.
    TooManyRequests,
}

impl DeniedCode {
    /// The spec's numbered code.
    pub fn code(self) -> u16 {
        match self {
            DeniedCode::Missing => 40,
            DeniedCode::Invalid => 41,
            DeniedCode::Expired => 42,
            DeniedCode::Disabled => 50,
            DeniedCode::ForbiddenRequester => 51,
            DeniedCode::ForbiddenEventType => 52,
            DeniedCode::TooManyRequests => 53,
        }
    }
}

/// A refused request: the code, and a message for the caller that names no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denied {
    /// Why.
    pub code: DeniedCode,
    /// What went wrong and what to do.
    pub message: String,
    /// The client it was, when known.
    pub client: Option<Arc<str>>,
    /// For 53: when a request would be accepted again.
    pub retry_after: Option<Duration>,
}

impl Denied {
    fn new(code: DeniedCode, message: impl Into<String>) -> Self {
        Denied {
            code,
            message: message.into(),
            client: None,
            retry_after: None,
        }
    }

    fn missing() -> Self {
        Denied::new(
            DeniedCode::Missing,
            "credentials are missing; send the credentials configured for this sender \
             (Authorization: Bearer <API key or JWT>, Authorization: Basic, a client \
             certificate, or Standard Webhooks signature headers)",
        )
    }

    fn invalid(message: impl Into<String>) -> Self {
        Denied::new(DeniedCode::Invalid, message)
    }

    fn of(mut self, client: &Arc<str>) -> Self {
        self.client = Some(client.clone());
        self
    }
}

/// Whom a request was identified as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The configured client with this index.
    Client(usize),
    /// No credentials, accepted because anonymous access is on.
    Anonymous,
}

/// What is known after the headers: the caller, or that the body is needed to check a
/// signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identified {
    /// The caller is known.
    Caller(Caller),
    /// Standard Webhooks headers were sent: verify them against the body.
    NeedsBody,
}

struct PolicyState {
    event_types: Option<BTreeSet<EventType>>,
    sources: SourceAllowlist,
    rate: Option<RateLimit>,
}

impl From<&Policy> for PolicyState {
    fn from(policy: &Policy) -> Self {
        PolicyState {
            event_types: policy.event_types.clone(),
            sources: policy.sources.clone(),
            rate: policy
                .rate
                .map(|rate| RateLimit::new(rate.per_second, rate.burst)),
        }
    }
}

struct ClientState {
    name: Arc<str>,
    enabled: bool,
    policy: PolicyState,
    credentials: Vec<Credential>,
}

struct ApiKeyEntry {
    hash: [u8; 32],
    header: Option<HeaderName>,
    expires_at: Option<DateTime<Utc>>,
    client: usize,
}

/// Successful Basic checks, remembered by a hash of the credentials so that argon2 runs once
/// per password and not once per request. Bounded: cleared when full.
const BASIC_CACHE_LIMIT: usize = 1024;

/// Checks every Listener API request; built once at start.
pub struct Gate {
    clients: Vec<ClientState>,
    anonymous: Option<PolicyState>,
    allowed_sources: SourceAllowlist,
    client_ip: ClientIp,
    api_keys: Vec<ApiKeyEntry>,
    api_key_headers: Vec<HeaderName>,
    basic_verified: Mutex<std::collections::HashSet<[u8; 32]>>,
    basic_dummy: String,
    /// argon2 is deliberately slow: bound how many run at once.
    basic_slots: Semaphore,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("clients", &self.clients.len())
            .field("anonymous", &self.anonymous.is_some())
            .finish_non_exhaustive()
    }
}

/// An argon2id hash of a random, forgotten password, to verify against when the user is unknown,
/// so that the time taken does not tell which users exist.
fn dummy_password_hash() -> String {
    use argon2::password_hash::PasswordHasher;
    let mut password = [0u8; 32];
    let _ = getrandom::fill(&mut password);
    argon2::Argon2::default()
        .hash_password(&password)
        .map(|hash| hash.to_string())
        .unwrap_or_default()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Gate {
    /// Builds the gate from the checked configuration.
    pub fn new(access: &AccessConfig) -> Gate {
        let clients: Vec<ClientState> = access
            .clients
            .iter()
            .map(|client| ClientState {
                name: Arc::from(client.name.as_str()),
                enabled: client.enabled,
                policy: PolicyState::from(&client.policy),
                credentials: client.credentials.clone(),
            })
            .collect();
        let mut api_keys = Vec::new();
        let mut api_key_headers: Vec<HeaderName> = Vec::new();
        for (index, client) in clients.iter().enumerate() {
            for credential in &client.credentials {
                if let Credential::ApiKey {
                    hash,
                    header,
                    expires_at,
                } = credential
                {
                    if let Some(name) = header
                        && !api_key_headers.contains(name)
                    {
                        api_key_headers.push(name.clone());
                    }
                    api_keys.push(ApiKeyEntry {
                        hash: *hash,
                        header: header.clone(),
                        expires_at: *expires_at,
                        client: index,
                    });
                }
            }
        }
        Gate {
            clients,
            anonymous: access
                .allow_anonymous
                .then(|| PolicyState::from(&access.anonymous)),
            allowed_sources: access.allowed_sources.clone(),
            client_ip: access.client_ip.clone(),
            api_keys,
            api_key_headers,
            basic_verified: Mutex::new(std::collections::HashSet::new()),
            basic_dummy: if access.clients.iter().any(|client| {
                client
                    .credentials
                    .iter()
                    .any(|credential| matches!(credential, Credential::Basic { .. }))
            }) {
                dummy_password_hash()
            } else {
                String::new()
            },
            basic_slots: Semaphore::new(2),
        }
    }

    /// The name of a client, to record with its events.
    pub fn client_name(&self, caller: Caller) -> Option<Arc<str>> {
        match caller {
            Caller::Client(index) => self.clients.get(index).map(|client| client.name.clone()),
            Caller::Anonymous => None,
        }
    }

    /// The caller's address: the TCP peer, or the address a trusted proxy put in the configured
    /// header (the nearest one that is not itself a trusted proxy).
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.ip();
        let ClientIp::Header { name, trusted } = &self.client_ip else {
            return peer;
        };
        if !trusted.allows(peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|part| parse_forwarded_address(part.trim()))
            .collect();
        forwarded
            .iter()
            .rev()
            .find(|address| !trusted.allows(**address))
            .or(forwarded.first())
            .copied()
            .unwrap_or(peer)
    }

    /// Refuses sources outside the global allowlist (403/51).
    pub fn check_source(&self, ip: IpAddr) -> Result<(), Denied> {
        if self.allowed_sources.allows(ip) {
            Ok(())
        } else {
            Err(Denied::new(
                DeniedCode::ForbiddenRequester,
                format!("requests from {ip} are not allowed"),
            ))
        }
    }

    /// Identifies the caller from the headers and the client certificate.
    pub async fn identify(
        &self,
        headers: &HeaderMap,
        certificate: Option<&PeerIdentity>,
    ) -> Result<Identified, Denied> {
        let now = Utc::now();
        if let Some(identity) = certificate {
            return self.identify_certificate(identity).map(Identified::Caller);
        }
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let text = value
                .to_str()
                .map_err(|_| Denied::invalid("the Authorization header is not valid text"))?;
            let (scheme, credentials) = text.trim().split_once(' ').ok_or_else(|| {
                Denied::invalid("the Authorization header must be `Bearer <token>` or `Basic <…>`")
            })?;
            let credentials = credentials.trim();
            if scheme.eq_ignore_ascii_case("bearer") {
                return self
                    .identify_bearer(credentials, now)
                    .map(Identified::Caller);
            }
            if scheme.eq_ignore_ascii_case("basic") {
                return self
                    .identify_basic(credentials, now)
                    .await
                    .map(Identified::Caller);
            }
            return Err(Denied::invalid(format!(
                "the Authorization scheme {scheme:?} is not accepted; use Bearer or Basic"
            )));
        }
        for name in &self.api_key_headers {
            if let Some(value) = headers.get(name) {
                let key = value.to_str().unwrap_or_default().trim();
                return self
                    .identify_api_key(key, Some(name), now)
                    .map(Identified::Caller);
            }
        }
        let signed = ["webhook-id", "webhook-timestamp", "webhook-signature"];
        if signed.iter().any(|name| headers.contains_key(*name)) {
            return Ok(Identified::NeedsBody);
        }
        if self.anonymous.is_some() {
            return Ok(Identified::Caller(Caller::Anonymous));
        }
        Err(Denied::missing())
    }

    fn identify_certificate(&self, identity: &PeerIdentity) -> Result<Caller, Denied> {
        let subject = crate::config::clients::normalize_dn(&identity.subject);
        for (index, client) in self.clients.iter().enumerate() {
            for credential in &client.credentials {
                if let Credential::Mtls { subjects, sans } = credential
                    && (subjects.contains(&subject)
                        || identity.sans.iter().any(|san| sans.contains(san)))
                {
                    return Ok(Caller::Client(index));
                }
            }
        }
        Err(Denied::new(
            DeniedCode::ForbiddenRequester,
            format!(
                "the client certificate {:?} is valid but no client accepts it; add its subject \
                 or a SAN to a client's mtls section",
                identity.subject
            ),
        ))
    }

    fn identify_bearer(&self, token: &str, now: DateTime<Utc>) -> Result<Caller, Denied> {
        if token.is_empty() {
            return Err(Denied::invalid("the bearer token is empty"));
        }
        if token.split('.').count() == 3 && decode_header(token).is_ok() {
            return self.identify_jwt(token);
        }
        self.identify_api_key(token, None, now)
    }

    fn identify_api_key(
        &self,
        key: &str,
        header: Option<&HeaderName>,
        now: DateTime<Utc>,
    ) -> Result<Caller, Denied> {
        let presented = sha256(key.as_bytes());
        // Compare with every key so that the time taken does not say which one matched.
        let mut found = None;
        for entry in &self.api_keys {
            let same: bool = presented.ct_eq(&entry.hash).into();
            if same && entry.header.as_ref() == header {
                found = Some(entry);
            }
        }
        let Some(entry) = found else {
            return Err(Denied::invalid("the API key is not valid"));
        };
        let client = &self.clients[entry.client];
        if let Some(expires_at) = entry.expires_at
            && expires_at <= now
        {
            return Err(Denied::new(
                DeniedCode::Expired,
                format!(
                    "the API key expired at {}; ask the listener's operator for a new one",
                    expires_at.to_rfc3339()
                ),
            )
            .of(&client.name));
        }
        Ok(Caller::Client(entry.client))
    }

    async fn identify_basic(&self, encoded: &str, now: DateTime<Utc>) -> Result<Caller, Denied> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                Denied::invalid("the Basic credentials are not base64 of user:password")
            })?;
        let (user, password) = decoded.split_once(':').ok_or_else(|| {
            Denied::invalid("the Basic credentials are not base64 of user:password")
        })?;
        let found = self.clients.iter().enumerate().find_map(|(index, client)| {
            client
                .credentials
                .iter()
                .find_map(|credential| match credential {
                    Credential::Basic {
                        user: expected,
                        password_hash,
                        expires_at,
                    } if expected == user => Some((index, password_hash.clone(), *expires_at)),
                    _ => None,
                })
        });
        let remembered = sha256(decoded.as_bytes());
        let known = found.is_some()
            && self
                .basic_verified
                .lock()
                .is_ok_and(|verified| verified.contains(&remembered));
        let verified = if known {
            true
        } else {
            let hash = found
                .as_ref()
                .map_or_else(|| self.basic_dummy.clone(), |(_, hash, _)| hash.clone());
            let password = password.to_owned();
            let _slot = self
                .basic_slots
                .acquire()
                .await
                .map_err(|_| Denied::invalid("the listener is stopping"))?;
            tokio::task::spawn_blocking(move || {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), hash.as_str())
                    .is_ok()
            })
            .await
            .unwrap_or(false)
        };
        let Some((index, _, expires_at)) = found.filter(|_| verified) else {
            return Err(Denied::invalid("the user or password is not valid"));
        };
        if !known && let Ok(mut cache) = self.basic_verified.lock() {
            if cache.len() >= BASIC_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(remembered);
        }
        if let Some(expires_at) = expires_at
            && expires_at <= now
        {
            return Err(Denied::new(
                DeniedCode::Expired,
                format!(
                    "the password expired at {}; ask the listener's operator for a new one",
                    expires_at.to_rfc3339()
                ),
            )
            .of(&self.clients[index].name));
        }
        Ok(Caller::Client(index))
    }

    fn identify_jwt(&self, token: &str) -> Result<Caller, Denied> {
        let header = decode_header(token).map_err(|_| Denied::invalid("the JWT is malformed"))?;
        let mut refusal = Denied::invalid("no client's key verifies the JWT's signature");
        for (index, client) in self.clients.iter().enumerate() {
            for credential in &client.credentials {
                let Credential::Jwt(jwt) = credential else {
                    continue;
                };
                match verify_jwt(token, &header, jwt) {
                    JwtOutcome::Valid => return Ok(Caller::Client(index)),
                    JwtOutcome::NotThisKey => {}
                    JwtOutcome::Refused(denied) => refusal = denied.of(&client.name),
                }
            }
        }
        Err(refusal)
    }

    /// Identifies a signed request from its Standard Webhooks headers and the raw body.
    pub fn identify_signed(&self, headers: &HeaderMap, body: &[u8]) -> Result<Caller, Denied> {
        let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let signed = SignedHeaders {
            id: text("webhook-id"),
            timestamp: text("webhook-timestamp"),
            signature: text("webhook-signature"),
        };
        let now = Utc::now().timestamp();
        let mut refusal = None;
        for (index, client) in self.clients.iter().enumerate() {
            for credential in &client.credentials {
                let Credential::Webhook {
                    keys,
                    tolerance_seconds,
                } = credential
                else {
                    continue;
                };
                match signature::verify(signed, body, keys, now, *tolerance_seconds) {
                    Ok(()) => return Ok(Caller::Client(index)),
                    Err(SignatureError::Missing) => {
                        return Err(Denied::new(
                            DeniedCode::Missing,
                            "a signed request needs all of webhook-id, webhook-timestamp and \
                             webhook-signature",
                        ));
                    }
                    Err(SignatureError::Expired) => {
                        refusal = Some(Denied::new(
                            DeniedCode::Expired,
                            format!(
                                "webhook-timestamp is more than {tolerance_seconds} seconds from \
                                 the listener's clock; check the sender's clock and sign again"
                            ),
                        ));
                    }
                    Err(SignatureError::Invalid) => {}
                }
            }
        }
        if signed.id.is_none() || signed.timestamp.is_none() || signed.signature.is_none() {
            return Err(Denied::new(
                DeniedCode::Missing,
                "a signed request needs all of webhook-id, webhook-timestamp and webhook-signature",
            ));
        }
        Err(refusal.unwrap_or_else(|| {
            Denied::invalid("no webhook signature verifies with a configured key")
        }))
    }

    /// Checks what the identified caller may do, before the body is parsed: enabled (50), source
    /// (51) and rate (53).
    pub fn authorize(&self, caller: Caller, ip: IpAddr) -> Result<(), Denied> {
        let (policy, name) = match caller {
            Caller::Client(index) => {
                let client = &self.clients[index];
                if !client.enabled {
                    return Err(Denied::new(
                        DeniedCode::Disabled,
                        format!(
                            "client {} is disabled; ask the listener's operator to enable it",
                            client.name
                        ),
                    )
                    .of(&client.name));
                }
                (&client.policy, Some(&client.name))
            }
            Caller::Anonymous => match &self.anonymous {
                Some(policy) => (policy, None),
                None => return Err(Denied::missing()),
            },
        };
        let attach = |denied: Denied| match name {
            Some(name) => denied.of(name),
            None => denied,
        };
        if !policy.sources.allows(ip) {
            return Err(attach(Denied::new(
                DeniedCode::ForbiddenRequester,
                format!("requests from {ip} are not allowed for this sender"),
            )));
        }
        if let Some(rate) = &policy.rate
            && let Err(wait) = rate.check()
        {
            let mut denied = attach(Denied::new(
                DeniedCode::TooManyRequests,
                format!(
                    "too many requests; retry after {} seconds",
                    wait.as_secs_f64().ceil().max(1.0)
                ),
            ));
            denied.retry_after = Some(wait);
            return Err(denied);
        }
        Ok(())
    }

    /// Refuses event types the caller may not send (403/52).
    pub fn permit_event_type(&self, caller: Caller, event_type: EventType) -> Result<(), Denied> {
        let (allowed, name) = match caller {
            Caller::Client(index) => (
                &self.clients[index].policy.event_types,
                Some(&self.clients[index].name),
            ),
            Caller::Anonymous => match &self.anonymous {
                Some(policy) => (&policy.event_types, None),
                None => return Err(Denied::missing()),
            },
        };
        match allowed {
            Some(types) if !types.contains(&event_type) => {
                let denied = Denied::new(
                    DeniedCode::ForbiddenEventType,
                    format!(
                        "this sender may not send {event_type}; it may send {}",
                        types
                            .iter()
                            .map(|kind| kind.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                Err(match name {
                    Some(name) => denied.of(name),
                    None => denied,
                })
            }
            _ => Ok(()),
        }
    }
}

/// `192.0.2.7`, `192.0.2.7:1234`, `[2001:db8::1]:443` or `"[2001:db8::1]"` → the address.
fn parse_forwarded_address(text: &str) -> Option<IpAddr> {
    let text = text.trim_matches('"');
    if let Ok(address) = text.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

enum JwtOutcome {
    Valid,
    NotThisKey,
    Refused(Denied),
}

fn verify_jwt(token: &str, header: &jsonwebtoken::Header, jwt: &Jwt) -> JwtOutcome {
    let mut outcome = JwtOutcome::NotThisKey;
    for key in &jwt.keys {
        if key.algorithm != header.alg {
            continue;
        }
        if let (Some(wanted), Some(kid)) = (&header.kid, &key.kid)
            && wanted != kid
        {
            continue;
        }
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = jwt.leeway_seconds;
        validation.validate_nbf = true;
        let mut required = Vec::new();
        if jwt.require_exp {
            required.push("exp");
        } else {
            validation.validate_exp = false;
        }
        if jwt.issuer.is_empty() {
            validation.iss = None;
        } else {
            validation.set_issuer(&jwt.issuer);
            required.push("iss");
        }
        if jwt.audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&jwt.audience);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        match decode::<serde_json::Value>(token, &key.key, &validation) {
            Ok(_) => return JwtOutcome::Valid,
            Err(error) => {
                let refusal = match error.kind() {
                    ErrorKind::InvalidSignature
                    | ErrorKind::InvalidAlgorithm
                    | ErrorKind::InvalidEcdsaKey
                    | ErrorKind::InvalidRsaKey(_)
                    | ErrorKind::InvalidKeyFormat => continue,
                    ErrorKind::ExpiredSignature => Denied::new(
                        DeniedCode::Expired,
                        "the JWT has expired (exp is past); get a new token",
                    ),
                    ErrorKind::ImmatureSignature => {
                        Denied::invalid("the JWT is not valid yet (nbf is in the future)")
                    }
                    ErrorKind::InvalidIssuer => Denied::invalid("the JWT's iss is not accepted"),
                    ErrorKind::InvalidAudience => Denied::invalid("the JWT's aud is not accepted"),
                    ErrorKind::MissingRequiredClaim(claim) => {
                        Denied::invalid(format!("the JWT has no {claim} claim"))
                    }
                    _ => Denied::invalid("the JWT is not valid"),
                };
                outcome = JwtOutcome::Refused(refusal);
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests;
