//! Who may post notifications: anyone (when explicitly allowed), or holders of an API key sent
//! as `Authorization: Bearer`. Only SHA-256 hashes of keys are kept, and they are compared in
//! constant time. Keys are random and long, so a fast hash is enough.

use std::io::Write;
use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, header};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::{Access, Secret};

/// The name recorded as the sender's client for requests made with the generated key.
pub const GENERATED_KEY_CLIENT: &str = "default";

/// Checks the credentials of a request.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// Every request is accepted without credentials.
    Anonymous,
    /// A bearer API key whose SHA-256 is one of these is required.
    ApiKeys {
        /// The hashes of the valid keys.
        hashes: Vec<[u8; 32]>,
    },
}

/// A key generated on first start, to be shown once.
#[derive(Debug)]
pub struct GeneratedKey {
    /// The key itself.
    pub key: Secret,
    /// Where its hash was stored.
    pub hash_file: PathBuf,
}

fn hash(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

/// The bearer token of `Authorization: Bearer <token>`, if the header has that form.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| ApiError::InvalidCredentials)?;
    let (scheme, token) = text
        .trim()
        .split_once(' ')
        .ok_or(ApiError::InvalidCredentials)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::InvalidCredentials);
    }
    Ok(Some(token.trim()))
}

/// Compares a presented secret with an expected one in constant time (through their hashes,
/// so that lengths leak nothing either).
pub fn secrets_match(presented: &str, expected: &Secret) -> bool {
    hash(presented.as_bytes())
        .ct_eq(&hash(expected.expose().as_bytes()))
        .into()
}

impl Authenticator {
    /// Checks the request; returns the client name to record with the event.
    pub fn check(&self, headers: &HeaderMap) -> Result<Option<&'static str>, ApiError> {
        match self {
            Authenticator::Anonymous => Ok(None),
            Authenticator::ApiKeys { hashes } => {
                let token = bearer_token(headers)?.ok_or(ApiError::MissingCredentials)?;
                let presented = hash(token.as_bytes());
                // Look at every hash so the time taken does not say which one matched.
                let matched = hashes
                    .iter()
                    .fold(subtle::Choice::from(0), |found, expected| {
                        found | presented.ct_eq(expected)
                    });
                if bool::from(matched) {
                    Ok(Some(GENERATED_KEY_CLIENT))
                } else {
                    Err(ApiError::InvalidCredentials)
                }
            }
        }
    }

    /// Builds the authenticator for `access`. For API keys, reads the key hash kept in the data
    /// directory, or generates a key on first start.
    pub fn load(
        access: Access,
        data_dir: &Path,
    ) -> anyhow::Result<(Authenticator, Option<GeneratedKey>)> {
        match access {
            Access::Anonymous => Ok((Authenticator::Anonymous, None)),
            Access::ApiKey => {
                let hash_file = data_dir.join("credentials").join("api-key.sha256");
                if hash_file.exists() {
                    let text = std::fs::read_to_string(&hash_file)?;
                    let hashes = text
                        .lines()
                        .map(str::trim)
                        .filter(|line| !line.is_empty() && !line.starts_with('#'))
                        .map(|line| {
                            let bytes = hex::decode(line).ok().and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
                            bytes.ok_or_else(|| {
                                anyhow::anyhow!(
                                    "{} holds a line that is not a SHA-256 in hex; delete the file to \
                                     generate a new key",
                                    hash_file.display()
                                )
                            })
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    return Ok((Authenticator::ApiKeys { hashes }, None));
                }
                let (key, key_hash) = generate_key()?;
                write_private(
                    &hash_file,
                    format!("{}\n", hex::encode(key_hash)).as_bytes(),
                )?;
                Ok((
                    Authenticator::ApiKeys {
                        hashes: vec![key_hash],
                    },
                    Some(GeneratedKey { key, hash_file }),
                ))
            }
        }
    }
}

/// A new random API key and its hash.
pub fn generate_key() -> anyhow::Result<(Secret, [u8; 32])> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|error| anyhow::anyhow!("no randomness for a new key: {error}"))?;
    let key = format!(
        "olk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let key_hash = hash(key.as_bytes());
    Ok((Secret::new(key), key_hash))
}

/// Writes a file that only the owner can read.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(authorization: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn a_generated_key_is_accepted_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let (auth, generated) = Authenticator::load(Access::ApiKey, dir.path()).unwrap();
        let key = generated.unwrap().key;
        assert!(matches!(
            auth.check(&headers(None)),
            Err(ApiError::MissingCredentials)
        ));
        assert!(matches!(
            auth.check(&headers(Some("Bearer wrong"))),
            Err(ApiError::InvalidCredentials)
        ));
        assert!(matches!(
            auth.check(&headers(Some("Basic abc"))),
            Err(ApiError::InvalidCredentials)
        ));
        let good = format!("bearer {}", key.expose());
        assert_eq!(
            auth.check(&headers(Some(&good))).unwrap(),
            Some(GENERATED_KEY_CLIENT)
        );

        // The second start reads the stored hash and generates nothing.
        let (again, none) = Authenticator::load(Access::ApiKey, dir.path()).unwrap();
        assert!(none.is_none());
        assert!(again.check(&headers(Some(&good))).is_ok());
        let stored =
            std::fs::read_to_string(dir.path().join("credentials/api-key.sha256")).unwrap();
        assert!(!stored.contains(key.expose()));
    }

    #[test]
    fn secrets_are_compared_by_value() {
        assert!(secrets_match("abc", &Secret::new("abc")));
        assert!(!secrets_match("abd", &Secret::new("abc")));
        assert!(!secrets_match("", &Secret::new("abc")));
    }
}
