//! Standard Webhooks keys and signatures: the `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` headers over the raw body. HMAC-SHA256 (`v1,`) with `whsec_` secrets and
//! ed25519 (`v1a,`) with `whpk_` public keys; several signatures may be sent, so that keys can be
//! rotated.
//!
//! This is the one place that reads `whsec_` and `whpk_` text ([`WebhookSecret`],
//! [`WebhookPublicKey`], [`VerifyingKey`], each built by `FromStr`) and the one place that signs
//! and verifies. A leaf: it knows no configuration file, no HTTP framework and no clock (the
//! caller gives the current time).

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::{hmac, signature};

/// How far the timestamp may be from now, by default.
pub(crate) const DEFAULT_TOLERANCE_SECONDS: i64 = 5 * 60;

const SECRET_PREFIX: &str = "whsec_";
const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// Key text that is not a Standard Webhooks key of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKey {
    /// Neither `whsec_` nor `whpk_`.
    #[error(
        "a webhook key must be whsec_<base64> (HMAC secret) or whpk_<base64> (ed25519 public key)"
    )]
    UnknownPrefix,
    /// A secret was expected and something else was given.
    #[error("a webhook signing secret must be whsec_<base64>")]
    NotASecret,
    /// A public key was expected and something else was given.
    #[error("a webhook public key must be whpk_<base64> (an ed25519 public key)")]
    NotAPublicKey,
    /// Nothing, or not base64, after the prefix.
    #[error(
        "the webhook key after {prefix} is not base64 (as {prefix}MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw)"
    )]
    NotBase64 {
        /// `whsec_` or `whpk_`.
        prefix: &'static str,
    },
    /// A `whpk_` key that is not 32 bytes long.
    #[error("a whpk_ key must hold the 32 bytes of an ed25519 public key, not {0}")]
    PublicKeyLength(usize),
}

fn decode(prefix: &'static str, encoded: &str) -> Result<Vec<u8>, InvalidKey> {
    STANDARD
        .decode(encoded)
        .ok()
        .filter(|bytes| !bytes.is_empty())
        .ok_or(InvalidKey::NotBase64 { prefix })
}

/// A shared HMAC-SHA256 secret, `whsec_<base64>`: signs and verifies `v1` signatures.
#[derive(Clone)]
pub struct WebhookSecret {
    text: String,
    key: hmac::Key,
}

/// Two secrets are the same when their text is (a reload compares a sink's settings).
impl PartialEq for WebhookSecret {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for WebhookSecret {}

impl WebhookSecret {
    /// A new secret of 32 random bytes.
    pub fn generate() -> Result<WebhookSecret, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(WebhookSecret {
            text: format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)),
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
        })
    }

    /// The `whsec_…` text: to write in a config file, or show once.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The `webhook-signature` value for this message: `v1,<base64>`.
    pub fn sign(&self, id: &str, timestamp: &str, body: &[u8]) -> String {
        let tag = hmac::sign(&self.key, &signed_content(id, timestamp, body));
        format!("v1,{}", STANDARD.encode(tag))
    }

    fn verifies(&self, content: &[u8], tag: &[u8]) -> bool {
        // ring compares the tags in constant time.
        hmac::verify(&self.key, content, tag).is_ok()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

impl FromStr for WebhookSecret {
    type Err = InvalidKey;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(InvalidKey::NotASecret)?;
        let bytes = decode(SECRET_PREFIX, encoded)?;
        Ok(WebhookSecret {
            text: text.to_owned(),
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
        })
    }
}

/// An ed25519 public key, `whpk_<base64>`: verifies `v1a` signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookPublicKey {
    text: String,
    bytes: [u8; 32],
}

impl WebhookPublicKey {
    /// The `whpk_…` text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn verifies(&self, content: &[u8], signed: &[u8]) -> bool {
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.bytes)
            .verify(content, signed)
            .is_ok()
    }
}

impl fmt::Debug for WebhookPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WebhookPublicKey").field(&self.text).finish()
    }
}

impl FromStr for WebhookPublicKey {
    type Err = InvalidKey;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let encoded = text
            .strip_prefix(PUBLIC_KEY_PREFIX)
            .ok_or(InvalidKey::NotAPublicKey)?;
        let bytes = decode(PUBLIC_KEY_PREFIX, encoded)?;
        let length = bytes.len();
        let bytes = <[u8; 32]>::try_from(bytes).map_err(|_| InvalidKey::PublicKeyLength(length))?;
        Ok(WebhookPublicKey {
            text: text.to_owned(),
            bytes,
        })
    }
}

/// A key that can verify a signature.
#[derive(Debug, Clone)]
pub enum VerifyingKey {
    /// A shared HMAC-SHA256 secret (`whsec_…`).
    Hmac(WebhookSecret),
    /// An ed25519 public key (`whpk_…`).
    Ed25519(WebhookPublicKey),
}

impl FromStr for VerifyingKey {
    type Err = InvalidKey;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.starts_with(SECRET_PREFIX) {
            text.parse().map(VerifyingKey::Hmac)
        } else if text.starts_with(PUBLIC_KEY_PREFIX) {
            text.parse().map(VerifyingKey::Ed25519)
        } else {
            Err(InvalidKey::UnknownPrefix)
        }
    }
}

/// Why a signed request was refused; each maps to a 401 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SignatureError {
    /// A header is missing (40).
    #[error("the webhook-id, webhook-timestamp and webhook-signature headers are required")]
    Missing,
    /// No signature verifies with any key (41).
    #[error("no webhook signature matches")]
    Invalid,
    /// The timestamp is unreadable or too far from now (42).
    #[error("the webhook timestamp is outside the tolerance")]
    Expired,
}

/// The three headers of a signed request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignedHeaders<'a> {
    /// `webhook-id`.
    pub id: Option<&'a str>,
    /// `webhook-timestamp`, Unix seconds.
    pub timestamp: Option<&'a str>,
    /// `webhook-signature`: space-separated `v1,<base64>` or `v1a,<base64>`.
    pub signature: Option<&'a str>,
}

/// What is signed: `{id}.{timestamp}.{body}`.
fn signed_content(id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
    content.extend_from_slice(id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

/// Verifies the request: the timestamp is within `tolerance_seconds` of `now`, and at least one
/// of the signatures verifies with at least one of the keys.
pub(crate) fn verify(
    headers: SignedHeaders<'_>,
    body: &[u8],
    keys: &[VerifyingKey],
    now_unix: i64,
    tolerance_seconds: i64,
) -> Result<(), SignatureError> {
    let (Some(id), Some(timestamp), Some(signatures)) =
        (headers.id, headers.timestamp, headers.signature)
    else {
        return Err(SignatureError::Missing);
    };
    let timestamp = timestamp.trim();
    let sent: i64 = timestamp.parse().map_err(|_| SignatureError::Expired)?;
    if (now_unix - sent).abs() > tolerance_seconds {
        return Err(SignatureError::Expired);
    }
    let content = signed_content(id, timestamp, body);
    for entry in signatures.split_whitespace() {
        let Some((version, encoded)) = entry.split_once(',') else {
            continue;
        };
        let Ok(given) = STANDARD.decode(encoded) else {
            continue;
        };
        let valid = |key: &VerifyingKey| match (version, key) {
            ("v1", VerifyingKey::Hmac(secret)) => secret.verifies(&content, &given),
            ("v1a", VerifyingKey::Ed25519(public)) => public.verifies(&content, &given),
            _ => false,
        };
        if keys.iter().any(valid) {
            return Ok(());
        }
    }
    Err(SignatureError::Invalid)
}

#[cfg(test)]
mod tests {
    use ring::signature::KeyPair;

    use super::*;

    // The vector of the Standard Webhooks reference libraries (checked against the
    // `standardwebhooks` package from PyPI).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers<'a>(timestamp: &'a str, signature: &'a str) -> SignedHeaders<'a> {
        SignedHeaders {
            id: Some(ID),
            timestamp: Some(timestamp),
            signature: Some(signature),
        }
    }

    /// Verifies the reference message signed with `signature` at `now`, tolerance 300 s.
    fn check(
        signature: &str,
        body: &[u8],
        keys: &[VerifyingKey],
        now: i64,
    ) -> Result<(), SignatureError> {
        let timestamp = TIMESTAMP.to_string();
        verify(headers(&timestamp, signature), body, keys, now, 300)
    }

    fn key(text: &str) -> VerifyingKey {
        text.parse().unwrap()
    }

    #[test]
    fn the_reference_vector_verifies() {
        assert_eq!(check(SIGNATURE, BODY, &[key(SECRET)], TIMESTAMP), Ok(()));
    }

    #[test]
    fn signing_gives_the_reference_signature_and_the_text_round_trips() {
        let secret: WebhookSecret = SECRET.parse().unwrap();
        assert_eq!(secret.expose(), SECRET);
        assert_eq!(secret.sign(ID, &TIMESTAMP.to_string(), BODY), SIGNATURE);
        let again: WebhookSecret = secret.expose().parse().unwrap();
        assert_eq!(again.sign(ID, "1", b"x"), secret.sign(ID, "1", b"x"));
    }

    #[test]
    fn a_generated_secret_signs_what_it_verifies() {
        let secret = WebhookSecret::generate().unwrap();
        let parsed: WebhookSecret = secret.expose().parse().unwrap();
        let signed = secret.sign(ID, &TIMESTAMP.to_string(), BODY);
        assert_eq!(
            check(&signed, BODY, &[VerifyingKey::Hmac(parsed)], TIMESTAMP),
            Ok(())
        );
        assert_ne!(
            WebhookSecret::generate().unwrap().expose(),
            secret.expose(),
            "each secret is new"
        );
    }

    #[test]
    fn a_tampered_body_or_a_wrong_key_is_invalid() {
        let other = key("whsec_c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1yaWdodC1vbmU=");
        let tampered = br#"{"test": 2432232315}"#;
        let invalid = Err(SignatureError::Invalid);
        assert_eq!(
            check(SIGNATURE, tampered, &[key(SECRET)], TIMESTAMP),
            invalid
        );
        assert_eq!(
            check(SIGNATURE, BODY, std::slice::from_ref(&other), TIMESTAMP),
            invalid
        );
        // Rotation: the old and the new key are both configured, and either signature passes.
        assert_eq!(
            check(SIGNATURE, BODY, &[other, key(SECRET)], TIMESTAMP),
            Ok(())
        );
    }

    #[test]
    fn several_signatures_pass_if_one_verifies() {
        let several = format!("v1,AAAA v1,bm90LWEtc2lnbmF0dXJl {SIGNATURE}");
        assert_eq!(check(&several, BODY, &[key(SECRET)], TIMESTAMP), Ok(()));
    }

    #[test]
    fn an_old_or_future_timestamp_is_expired_and_missing_headers_are_missing() {
        let keys = [key(SECRET)];
        let expired = Err(SignatureError::Expired);
        assert_eq!(check(SIGNATURE, BODY, &keys, TIMESTAMP + 301), expired);
        assert_eq!(check(SIGNATURE, BODY, &keys, TIMESTAMP - 301), expired);
        assert_eq!(
            verify(headers("soon", SIGNATURE), BODY, &keys, TIMESTAMP, 300),
            expired
        );
        let timestamp = TIMESTAMP.to_string();
        let missing = SignedHeaders {
            id: None,
            timestamp: Some(&timestamp),
            signature: Some(SIGNATURE),
        };
        assert_eq!(
            verify(missing, BODY, &keys, TIMESTAMP, 300),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn ed25519_signatures_verify_with_the_public_key() {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let public = key(&format!(
            "whpk_{}",
            STANDARD.encode(pair.public_key().as_ref())
        ));
        let content = signed_content(ID, &TIMESTAMP.to_string(), BODY);
        let signed = format!("v1a,{}", STANDARD.encode(pair.sign(&content).as_ref()));
        assert_eq!(
            check(&signed, BODY, std::slice::from_ref(&public), TIMESTAMP),
            Ok(())
        );
        // A v1a signature is not checked against an HMAC key, nor v1 against a public key.
        let invalid = Err(SignatureError::Invalid);
        assert_eq!(check(&signed, BODY, &[key(SECRET)], TIMESTAMP), invalid);
        assert_eq!(check(SIGNATURE, BODY, &[public], TIMESTAMP), invalid);
    }

    #[test]
    fn malformed_keys_are_refused_with_what_to_write() {
        let refused = |text: &str| text.parse::<VerifyingKey>().unwrap_err();
        assert_eq!(
            refused("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            InvalidKey::UnknownPrefix
        );
        assert_eq!(refused("whpk_c2hvcnQ="), InvalidKey::PublicKeyLength(5));
        let not_base64 = refused("whsec_not base64!");
        assert_eq!(not_base64, InvalidKey::NotBase64 { prefix: "whsec_" });
        assert!(
            not_base64
                .to_string()
                .contains("after whsec_ is not base64"),
            "{not_base64}"
        );
        assert_eq!(
            refused("whsec_"),
            InvalidKey::NotBase64 { prefix: "whsec_" }
        );
        // A signing secret must be a secret, not a public key.
        assert_eq!(
            SECRET
                .replace("whsec_", "whpk_")
                .parse::<WebhookSecret>()
                .unwrap_err(),
            InvalidKey::NotASecret
        );
        assert_eq!(
            SECRET.parse::<WebhookPublicKey>().unwrap_err(),
            InvalidKey::NotAPublicKey
        );
    }

    #[test]
    fn a_secret_is_not_printed_by_debug() {
        let secret: WebhookSecret = SECRET.parse().unwrap();
        let shown = format!("{secret:?} {:?}", key(SECRET));
        assert!(!shown.contains("MfKQ9r8G"), "{shown}");
    }
}
