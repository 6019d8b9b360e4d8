//! The secrets generated on first start, each printed once with only its SHA-256 kept in
//! `{data_dir}/credentials/`: the API key of the client named `default`, when no client is
//! configured and anonymous access is off (`api-key.sha256`), and the admin token, when none is
//! configured (`admin-token.sha256`). Also the small credential helpers the admin API shares.

use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, header};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::clients::{Client, Credential, Policy};
use crate::private_file::write_private;
use crate::secret::Secret;

/// The name recorded as the sender's client for requests made with the generated key.
pub(crate) const GENERATED_KEY_CLIENT: &str = "default";

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

/// An `Authorization` header that is not `Bearer <token>`: invalid credentials (401, 41).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotBearer;

/// The bearer token of `Authorization: Bearer <token>`; `None` without the header.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, NotBearer> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| NotBearer)?;
    let (scheme, token) = text.trim().split_once(' ').ok_or(NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(NotBearer);
    }
    Ok(Some(token.trim()))
}

/// The admin token the admin API and the console expect.
#[derive(Debug)]
pub(crate) enum AdminToken {
    /// Configured (`admin_token`, `ORDER_LISTENER_ADMIN_TOKEN`).
    Configured(Secret),
    /// Generated on a first start: only its SHA-256 is known.
    Generated([u8; 32]),
}

impl AdminToken {
    /// Whether `presented` is the token, compared in constant time.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        match self {
            AdminToken::Configured(expected) => secrets_match(presented, expected),
            AdminToken::Generated(expected) => hash(presented.as_bytes()).ct_eq(expected).into(),
        }
    }
}

/// The admin token when none is configured: read from the data directory, or generated now.
pub(crate) fn generated_admin_token(
    data_dir: &Path,
) -> anyhow::Result<(AdminToken, Option<GeneratedKey>)> {
    let hash_file = data_dir.join("credentials").join("admin-token.sha256");
    let (hashes, generated) = read_or_generate(&hash_file, "ola_")?;
    let hash = hashes.first().copied().ok_or_else(|| {
        anyhow::anyhow!(
            "{} holds no hash; delete the file to generate a new admin token",
            hash_file.display()
        )
    })?;
    Ok((AdminToken::Generated(hash), generated))
}

/// The SHA-256 hashes kept in `hash_file`, or, when there is none, a new secret starting with
/// `prefix` (returned to be shown once) whose hash is written there.
fn read_or_generate(
    hash_file: &Path,
    prefix: &str,
) -> anyhow::Result<(Vec<[u8; 32]>, Option<GeneratedKey>)> {
    if hash_file.exists() {
        let text = std::fs::read_to_string(hash_file)?;
        let hashes = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                crate::config::clients::parse_key_hash(line).map_err(|_| {
                    anyhow::anyhow!(
                        "{} holds a line that is not a SHA-256 in hex; delete the file to \
                         generate a new secret",
                        hash_file.display()
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        return Ok((hashes, None));
    }
    let (key, key_hash) = generate_secret(prefix)?;
    write_private(hash_file, format!("{}\n", hex::encode(key_hash)).as_bytes())?;
    Ok((
        vec![key_hash],
        Some(GeneratedKey {
            key,
            hash_file: hash_file.to_path_buf(),
        }),
    ))
}

/// Compares a presented secret with an expected one in constant time (through their hashes,
/// so that lengths leak nothing either).
pub(crate) fn secrets_match(presented: &str, expected: &Secret) -> bool {
    hash(presented.as_bytes())
        .ct_eq(&hash(expected.expose().as_bytes()))
        .into()
}

/// The client of the generated key: reads the key hash kept in the data directory, or
/// generates a key on first start.
pub(crate) fn default_client(data_dir: &Path) -> anyhow::Result<(Client, Option<GeneratedKey>)> {
    let hash_file = data_dir.join("credentials").join("api-key.sha256");
    let (hashes, generated) = read_or_generate(&hash_file, "olk_")?;
    let client = Client {
        name: GENERATED_KEY_CLIENT.parse()?,
        enabled: true,
        policy: Policy::default(),
        credentials: hashes
            .into_iter()
            .map(|hash| Credential::ApiKey {
                hash,
                header: None,
                expires_at: None,
            })
            .collect(),
    };
    Ok((client, generated))
}

/// A new random API key and its hash.
pub(crate) fn generate_key() -> anyhow::Result<(Secret, [u8; 32])> {
    generate_secret("olk_")
}

/// A new random secret starting with `prefix`, and its hash.
fn generate_secret(prefix: &str) -> anyhow::Result<(Secret, [u8; 32])> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|error| anyhow::anyhow!("no randomness for a new key: {error}"))?;
    let key = format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let key_hash = hash(key.as_bytes());
    Ok((Secret::new(key), key_hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_generated_once_and_only_its_hash_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (client, generated) = default_client(dir.path()).unwrap();
        let key = generated.unwrap().key;
        assert_eq!(client.name.as_str(), GENERATED_KEY_CLIENT);
        let Credential::ApiKey { hash, .. } = &client.credentials[0] else {
            panic!("not an API key: {:?}", client.credentials);
        };
        assert_eq!(*hash, Sha256::digest(key.expose().as_bytes()).as_slice());

        // The second start reads the stored hash and generates nothing.
        let (again, none) = default_client(dir.path()).unwrap();
        assert!(none.is_none());
        assert_eq!(again.credentials.len(), 1);
        let stored =
            std::fs::read_to_string(dir.path().join("credentials/api-key.sha256")).unwrap();
        assert!(!stored.contains(key.expose()));
    }

    #[test]
    fn an_admin_token_is_generated_once_and_matched_by_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let (token, generated) = generated_admin_token(dir.path()).unwrap();
        let shown = generated.unwrap().key;
        assert!(shown.expose().starts_with("ola_"));
        assert!(token.matches(shown.expose()));
        assert!(!token.matches("ola_wrong"));
        let (again, none) = generated_admin_token(dir.path()).unwrap();
        assert!(none.is_none());
        assert!(again.matches(shown.expose()));
        let stored =
            std::fs::read_to_string(dir.path().join("credentials/admin-token.sha256")).unwrap();
        assert!(!stored.contains(shown.expose()));
        assert!(AdminToken::Configured(Secret::new("abc")).matches("abc"));
    }

    #[test]
    fn secrets_are_compared_by_value() {
        assert!(secrets_match("abc", &Secret::new("abc")));
        assert!(!secrets_match("abd", &Secret::new("abc")));
        assert!(!secrets_match("", &Secret::new("abc")));
    }
}
