//! Console sessions: a login with the admin token starts one, kept in this process's memory with
//! an expiry, and names it in a cookie (`HttpOnly`, `SameSite=Strict`, `Path=/`). Each session
//! has its own random CSRF token, which every console form that changes something carries.
//!
//! Session ids are 256 random bits. Only their SHA-256 is kept and looked up, so a lookup's
//! timing tells nothing about a live id; CSRF tokens are compared in constant time. The number
//! of sessions is bounded: past it, the session closest to expiry is dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "order_listener_console";

/// The most sessions kept at once.
const MAX_SESSIONS: usize = 1024;

/// A live session, as a handler sees it.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The token the session's forms carry.
    pub csrf: String,
    /// The session id, to end it.
    id_hash: [u8; 32],
}

impl Session {
    /// Whether `presented` is this session's CSRF token, compared in constant time.
    pub(crate) fn csrf_matches(&self, presented: &str) -> bool {
        self.csrf.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

#[derive(Debug)]
struct Entry {
    expires: Instant,
    csrf: String,
}

/// The live sessions of this process.
#[derive(Debug)]
pub(crate) struct Sessions {
    ttl: Duration,
    live: Mutex<HashMap<[u8; 32], Entry>>,
}

/// No randomness was available for a session id.
#[derive(Debug, thiserror::Error)]
#[error("no randomness for a console session")]
pub(crate) struct NoRandomness(#[source] getrandom::Error);

pub(super) fn random_token() -> Result<String, NoRandomness> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(NoRandomness)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

pub(super) fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// No sessions yet; each will last `ttl`.
    pub(crate) fn new(ttl: Duration) -> Self {
        Sessions {
            ttl,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// How long a session lasts.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session; returns its id, for the cookie.
    pub(crate) fn start(&self) -> Result<String, NoRandomness> {
        let id = random_token()?;
        let csrf = random_token()?;
        let now = Instant::now();
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        live.retain(|_, entry| entry.expires > now);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live
                .iter()
                .min_by_key(|(_, entry)| entry.expires)
                .map(|(key, _)| *key)
        {
            live.remove(&oldest);
        }
        live.insert(
            digest(&id),
            Entry {
                expires: now + self.ttl,
                csrf,
            },
        );
        Ok(id)
    }

    /// The live session named by the request's cookie, if any.
    pub(crate) fn find(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers)?;
        let id_hash = digest(id);
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match live.get(&id_hash) {
            Some(entry) if entry.expires > Instant::now() => Some(Session {
                csrf: entry.csrf.clone(),
                id_hash,
            }),
            Some(_) => {
                live.remove(&id_hash);
                None
            }
            None => None,
        }
    }

    /// Ends a session (logout).
    pub(crate) fn end(&self, session: &Session) {
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        live.remove(&session.id_hash);
    }
}

/// The session cookie's value in the request, if any.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// Whether the session cookie is marked `Secure`, which follows from how browsers reach the
/// admin listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CookieSecurity {
    /// Marked `Secure`: the admin listener is reached over HTTPS.
    Secure,
    /// Not marked: the admin listener is reached over plain HTTP, where a `Secure` cookie would
    /// never come back.
    Plain,
}

impl CookieSecurity {
    /// The cookie's security for an admin listener that browsers reach at `admin_url`.
    pub(crate) fn for_url(admin_url: &str) -> Self {
        if admin_url.starts_with("https://") {
            CookieSecurity::Secure
        } else {
            CookieSecurity::Plain
        }
    }

    fn attribute(self) -> &'static str {
        match self {
            CookieSecurity::Secure => "; Secure",
            CookieSecurity::Plain => "",
        }
    }
}

/// The `Set-Cookie` value that names session `id`.
pub(crate) fn set_cookie(id: &str, ttl: Duration, security: CookieSecurity) -> String {
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        ttl.as_secs(),
        security.attribute()
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn clear_cookie(security: CookieSecurity) -> String {
    format!(
        "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        security.attribute()
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::http::HeaderValue;

    use super::*;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn a_started_session_is_found_by_its_cookie_until_it_ends() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let id = sessions.start().unwrap();
        let headers = with_cookie(&format!("theme=dark; {COOKIE}={id}"));
        let session = sessions.find(&headers).unwrap();
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches("forged"));
        sessions.end(&session);
        assert!(sessions.find(&headers).is_none());
    }

    #[test]
    fn unknown_and_expired_sessions_are_not_found() {
        let sessions = Sessions::new(Duration::from_secs(60));
        assert!(
            sessions
                .find(&with_cookie(&format!("{COOKIE}=made-up")))
                .is_none()
        );
        assert!(sessions.find(&HeaderMap::new()).is_none());
        let expired = Sessions::new(Duration::ZERO);
        let id = expired.start().unwrap();
        assert!(
            expired
                .find(&with_cookie(&format!("{COOKIE}={id}")))
                .is_none()
        );
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped_to_the_whole_listener() {
        let cookie = set_cookie("abc", Duration::from_secs(3600), CookieSecurity::Plain);
        assert_eq!(
            cookie,
            format!("{COOKIE}=abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=3600")
        );
        assert!(
            set_cookie("abc", Duration::from_secs(1), CookieSecurity::Secure).ends_with("; Secure")
        );
        assert_eq!(
            clear_cookie(CookieSecurity::Plain),
            format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
        );
        assert!(clear_cookie(CookieSecurity::Secure).ends_with("Max-Age=0; Secure"));
    }

    #[test]
    fn the_cookie_is_secure_only_behind_https() {
        assert_eq!(
            CookieSecurity::for_url("https://admin.example:9090"),
            CookieSecurity::Secure
        );
        assert_eq!(
            CookieSecurity::for_url("http://127.0.0.1:9090"),
            CookieSecurity::Plain
        );
    }
}
