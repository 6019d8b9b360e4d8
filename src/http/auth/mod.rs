//! Who may post, and what they may do: the [`Gate`] every Listener API request passes.
//!
//! A request is first placed (its source address, through a trusted proxy when configured),
//! then identified as one configured client by one of its credentials (API key, HTTP Basic,
//! JWT, client certificate or Standard Webhooks signature), or taken as anonymous when that is
//! allowed. The caller's policy then says whether it is enabled, may call from there, is within
//! its rate, and may send this event type. Each refusal is a [`Denied`] with the spec's code.
//!
//! Secrets are compared in constant time and never logged; failures are logged by the handler
//! with the source address and the code. Identification is in `identify.rs`; this file holds
//! the gate, its policy checks and the refusals.

pub(crate) mod generated;
mod identify;
pub(crate) mod limits;
pub(crate) mod mtls;
pub(crate) mod overload;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use self::limits::RateLimit;
use crate::config::clients::{AccessConfig, ClientIp, Credential, Policy, Rate, SourceAllowlist};
use crate::domain::envelope::EventType;

/// The spec's reason for refusing a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeniedCode {
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
    pub(crate) fn code(self) -> u16 {
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
pub(crate) struct Denied {
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
pub(crate) enum Caller {
    /// The configured client with this index.
    Client(usize),
    /// No credentials, accepted because anonymous access is on.
    Anonymous,
}

/// What is known after the headers: the caller, or that the body is needed to check a
/// signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Identified {
    /// The caller is known.
    Caller(Caller),
    /// Standard Webhooks headers were sent: verify them against the body.
    NeedsBody,
}

struct PolicyState {
    event_types: Option<BTreeSet<EventType>>,
    sources: SourceAllowlist,
    /// The limit as configured, and its bucket (shared with the gate it was carried over
    /// from, when a reload left the limit as it was).
    rate: Option<(Rate, Arc<RateLimit>)>,
}

impl PolicyState {
    /// The state of `policy`, keeping the bucket of `previous` when its limit is the same.
    fn new(policy: &Policy, previous: Option<&PolicyState>) -> Self {
        let rate = policy.rate.map(|rate| {
            let kept = previous
                .and_then(|previous| previous.rate.as_ref())
                .filter(|(old, _)| *old == rate)
                .map(|(_, bucket)| bucket.clone());
            let bucket =
                kept.unwrap_or_else(|| Arc::new(RateLimit::new(rate.per_second, rate.burst)));
            (rate, bucket)
        });
        PolicyState {
            event_types: policy.event_types.clone(),
            sources: policy.sources.clone(),
            rate,
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
pub(crate) struct Gate {
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
    pub(crate) fn new(access: &AccessConfig) -> Gate {
        Gate::reloaded(access, None)
    }

    /// Builds the gate of a reloaded configuration: a client (or the anonymous policy) whose
    /// rate limit is unchanged keeps its bucket from `previous`, so a reload neither refills
    /// nor empties it.
    pub(crate) fn reloaded(access: &AccessConfig, previous: Option<&Gate>) -> Gate {
        let previous_policy = |name: &str| {
            previous.and_then(|gate| {
                gate.clients
                    .iter()
                    .find(|client| &*client.name == name)
                    .map(|client| &client.policy)
            })
        };
        let clients: Vec<ClientState> = access
            .clients
            .iter()
            .map(|client| ClientState {
                name: Arc::from(client.name.as_str()),
                enabled: client.enabled,
                policy: PolicyState::new(&client.policy, previous_policy(client.name.as_str())),
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
            anonymous: access.allow_anonymous.then(|| {
                PolicyState::new(
                    &access.anonymous,
                    previous.and_then(|gate| gate.anonymous.as_ref()),
                )
            }),
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
    pub(crate) fn client_name(&self, caller: Caller) -> Option<Arc<str>> {
        match caller {
            Caller::Client(index) => self.clients.get(index).map(|client| client.name.clone()),
            Caller::Anonymous => None,
        }
    }

    /// The caller's address: the TCP peer, or the address a trusted proxy put in the configured
    /// header (the nearest one that is not itself a trusted proxy).
    pub(crate) fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
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
    pub(crate) fn check_source(&self, ip: IpAddr) -> Result<(), Denied> {
        if self.allowed_sources.allows(ip) {
            Ok(())
        } else {
            Err(Denied::new(
                DeniedCode::ForbiddenRequester,
                format!("requests from {ip} are not allowed"),
            ))
        }
    }

    /// Checks what the identified caller may do, before the body is parsed: enabled (50), source
    /// (51) and rate (53).
    pub(crate) fn authorize(&self, caller: Caller, ip: IpAddr) -> Result<(), Denied> {
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
        if let Some((_, rate)) = &policy.rate
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
    pub(crate) fn permit_event_type(
        &self,
        caller: Caller,
        event_type: EventType,
    ) -> Result<(), Denied> {
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

#[cfg(test)]
mod tests;
