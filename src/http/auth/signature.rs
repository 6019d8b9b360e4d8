//! Standard Webhooks signatures: `webhook-id`, `webhook-timestamp` and `webhook-signature`
//! headers over the raw body. HMAC-SHA256 (`v1,`) with `whsec_` secrets and ed25519 (`v1a,`)
//! with `whpk_` public keys; several signatures may be sent, so that keys can be rotated.
//!
//! Pure: the caller gives the headers, the body, the keys and the current time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::{hmac, signature};

/// How far the timestamp may be from now, by default.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 5 * 60;

/// A key that can verify a signature.
#[derive(Clone)]
pub enum VerifyingKey {
    /// A shared HMAC-SHA256 secret (`whsec_…`).
    Hmac(hmac::Key),
    /// An ed25519 public key (`whpk_…`).
    Ed25519(Vec<u8>),
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyingKey::Hmac(_) => f.write_str("Hmac([redacted])"),
            VerifyingKey::Ed25519(_) => f.write_str("Ed25519(public key)"),
        }
    }
}

/// The key text is not a Standard Webhooks key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a webhook key must be whsec_<base64> (HMAC secret) or whpk_<base64> (ed25519 public key)")]
pub struct InvalidKey;

impl std::str::FromStr for VerifyingKey {
    type Err = InvalidKey;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let decode = |encoded: &str| STANDARD.decode(encoded).map_err(|_| InvalidKey);
        if let Some(secret) = text.strip_prefix("whsec_") {
            Ok(VerifyingKey::Hmac(hmac::Key::new(
                hmac::HMAC_SHA256,
                &decode(secret)?,
            )))
        } else if let Some(public) = text.strip_prefix("whpk_") {
            let bytes = decode(public)?;
            if bytes.len() != 32 {
                return Err(InvalidKey);
            }
            Ok(VerifyingKey::Ed25519(bytes))
        } else {
            Err(InvalidKey)
        }
    }
}

/// Why a signed request was refused; each maps to a 401 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
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
pub struct SignedHeaders<'a> {
    /// `webhook-id`.
    pub id: Option<&'a str>,
    /// `webhook-timestamp`, Unix seconds.
    pub timestamp: Option<&'a str>,
    /// `webhook-signature`: space-separated `v1,<base64>` or `v1a,<base64>`.
    pub signature: Option<&'a str>,
}

/// Verifies the request: the timestamp is within `tolerance_seconds` of `now`, and at least one
/// of the signatures verifies with at least one of the keys.
pub fn verify(
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
    let sent: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Expired)?;
    if (now_unix - sent).abs() > tolerance_seconds {
        return Err(SignatureError::Expired);
    }
    let mut content = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
    content.extend_from_slice(id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.trim().as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);

    for entry in signatures.split_whitespace() {
        let Some((version, encoded)) = entry.split_once(',') else {
            continue;
        };
        let Ok(given) = STANDARD.decode(encoded) else {
            continue;
        };
        for key in keys {
            let valid = match (version, key) {
                // ring compares the tags in constant time.
                ("v1", VerifyingKey::Hmac(secret)) => {
                    hmac::verify(secret, &content, &given).is_ok()
                }
                ("v1a", VerifyingKey::Ed25519(public)) => {
                    signature::UnparsedPublicKey::new(&signature::ED25519, public)
                        .verify(&content, &given)
                        .is_ok()
                }
                _ => false,
            };
            if valid {
                return Ok(());
            }
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

    #[test]
    fn the_reference_vector_verifies() {
        let key: VerifyingKey = SECRET.parse().unwrap();
        let timestamp = TIMESTAMP.to_string();
        assert_eq!(
            verify(headers(&timestamp, SIGNATURE), BODY, &[key], TIMESTAMP, 300),
            Ok(())
        );
    }

    #[test]
    fn a_tampered_body_or_a_wrong_key_is_invalid() {
        let key: VerifyingKey = SECRET.parse().unwrap();
        let other: VerifyingKey = "whsec_c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1yaWdodC1vbmU="
            .parse()
            .unwrap();
        let timestamp = TIMESTAMP.to_string();
        let tampered = br#"{"test": 2432232315}"#;
        assert_eq!(
            verify(
                headers(&timestamp, SIGNATURE),
                tampered,
                std::slice::from_ref(&key),
                TIMESTAMP,
                300
            ),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify(
                headers(&timestamp, SIGNATURE),
                BODY,
                std::slice::from_ref(&other),
                TIMESTAMP,
                300
            ),
            Err(SignatureError::Invalid)
        );
        // Rotation: the old and the new key are both configured, and either signature passes.
        assert_eq!(
            verify(
                headers(&timestamp, SIGNATURE),
                BODY,
                &[other, key],
                TIMESTAMP,
                300
            ),
            Ok(())
        );
    }

    #[test]
    fn several_signatures_pass_if_one_verifies() {
        let key: VerifyingKey = SECRET.parse().unwrap();
        let timestamp = TIMESTAMP.to_string();
        let several = format!("v1,AAAA v1,bm90LWEtc2lnbmF0dXJl {SIGNATURE}");
        assert_eq!(
            verify(headers(&timestamp, &several), BODY, &[key], TIMESTAMP, 300),
            Ok(())
        );
    }

    #[test]
    fn an_old_or_future_timestamp_is_expired_and_missing_headers_are_missing() {
        let key: VerifyingKey = SECRET.parse().unwrap();
        let timestamp = TIMESTAMP.to_string();
        let keys = [key];
        assert_eq!(
            verify(
                headers(&timestamp, SIGNATURE),
                BODY,
                &keys,
                TIMESTAMP + 301,
                300
            ),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            verify(
                headers(&timestamp, SIGNATURE),
                BODY,
                &keys,
                TIMESTAMP - 301,
                300
            ),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            verify(headers("soon", SIGNATURE), BODY, &keys, TIMESTAMP, 300),
            Err(SignatureError::Expired)
        );
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
        let public: VerifyingKey = format!("whpk_{}", STANDARD.encode(pair.public_key().as_ref()))
            .parse()
            .unwrap();
        let timestamp = TIMESTAMP.to_string();
        let content = [ID.as_bytes(), b".", timestamp.as_bytes(), b".", BODY].concat();
        let signed = format!("v1a,{}", STANDARD.encode(pair.sign(&content).as_ref()));
        assert_eq!(
            verify(
                headers(&timestamp, &signed),
                BODY,
                std::slice::from_ref(&public),
                TIMESTAMP,
                300
            ),
            Ok(())
        );
        // A v1a signature is not checked against an HMAC key, nor v1 against a public key.
        let hmac: VerifyingKey = SECRET.parse().unwrap();
        assert_eq!(
            verify(headers(&timestamp, &signed), BODY, &[hmac], TIMESTAMP, 300),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify(
                headers(&timestamp, SIGNATURE),
                BODY,
                &[public],
                TIMESTAMP,
                300
            ),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn keys_must_have_their_prefix() {
        assert!(
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
                .parse::<VerifyingKey>()
                .is_err()
        );
        assert!("whpk_c2hvcnQ=".parse::<VerifyingKey>().is_err());
        assert!("whsec_not base64!".parse::<VerifyingKey>().is_err());
    }
}
