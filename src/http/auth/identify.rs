//! Identification: which configured client a request comes from, by its client certificate,
//! `Authorization` (API key, JWT or Basic), an API key header, or Standard Webhooks signature
//! headers checked against the raw body. What the caller may then do is the gate's policy, in
//! `mod.rs`; nothing here looks at sources, rates or event types.

use argon2::PasswordVerifier;
use axum::http::{HeaderMap, HeaderName, header};
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use subtle::ConstantTimeEq;

use super::mtls::PeerIdentity;
use super::{BASIC_CACHE_LIMIT, Caller, Denied, DeniedCode, Gate, Identified, sha256};
use crate::config::clients::{Credential, Jwt};
use crate::standard_webhooks::{self, SignatureError, SignedHeaders};

impl Gate {
    /// Identifies the caller from the headers and the client certificate.
    pub(crate) async fn identify(
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
    pub(crate) fn identify_signed(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Caller, Denied> {
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
                match standard_webhooks::verify(signed, body, keys, now, *tolerance_seconds) {
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
