//! Unit tests of the gate: identification and policy, without HTTP. The integration tests in
//! `tests/it/security.rs` cover every code for every kind of credential over HTTPS.

use std::collections::BTreeMap;

use axum::http::{HeaderValue, header};
use base64::Engine;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;

use super::*;
use crate::config::clients::{self, AnonymousSettings, ClientSettings, SecuritySettings};

const SECRET: &str = "a shared HS256 secret of at least 32 bytes";

fn gate(clients: &[(&str, ClientSettings)], security: SecuritySettings) -> Gate {
    let clients: BTreeMap<String, ClientSettings> = clients
        .iter()
        .map(|(name, settings)| ((*name).to_owned(), settings.clone()))
        .collect();
    let access = clients::check(
        false,
        &AnonymousSettings::default(),
        &clients,
        &security,
        None,
    )
    .unwrap();
    Gate::new(&access)
}

fn jwt_client(issuer: &[&str], audience: &[&str]) -> ClientSettings {
    ClientSettings {
        jwt: Some(clients::JwtSettings {
            hs256_secret: Some(crate::secret::Secret::new(SECRET)),
            issuer: issuer.iter().map(|text| (*text).to_owned()).collect(),
            audience: audience.iter().map(|text| (*text).to_owned()).collect(),
            ..clients::JwtSettings::default()
        }),
        ..ClientSettings::default()
    }
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers
}

fn token(claims: serde_json::Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

async fn code_of(gate: &Gate, headers: &HeaderMap) -> Result<Caller, u16> {
    match gate.identify(headers, None).await {
        Ok(Identified::Caller(caller)) => Ok(caller),
        Ok(Identified::NeedsBody) => Err(0),
        Err(denied) => Err(denied.code.code()),
    }
}

#[tokio::test]
async fn jwt_claims_are_checked_nbf_iss_and_aud_give_41_and_exp_gives_42() {
    let gate = gate(
        &[("seller", jwt_client(&["https://seller"], &["buyer"]))],
        SecuritySettings::default(),
    );
    let now = Utc::now().timestamp();
    let good = json!({"iss": "https://seller", "aud": "buyer", "exp": now + 60});
    assert_eq!(
        code_of(&gate, &bearer(&token(good.clone()))).await,
        Ok(Caller::Client(0))
    );
    let cases = [
        (
            json!({"iss": "https://other", "aud": "buyer", "exp": now + 60}),
            41,
        ),
        (
            json!({"iss": "https://seller", "aud": "someone", "exp": now + 60}),
            41,
        ),
        (
            json!({"iss": "https://seller", "aud": "buyer", "exp": now + 60, "nbf": now + 3600}),
            41,
        ),
        (json!({"iss": "https://seller", "aud": "buyer"}), 41),
        (
            json!({"iss": "https://seller", "aud": "buyer", "exp": now - 3600}),
            42,
        ),
    ];
    for (claims, code) in cases {
        assert_eq!(
            code_of(&gate, &bearer(&token(claims.clone()))).await,
            Err(code),
            "{claims}"
        );
    }
    // `alg: none` and other algorithms are not accepted.
    let mut parts: Vec<String> = token(good).split('.').map(str::to_owned).collect();
    parts[0] =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{}.{}.", parts[0], parts[1]);
    assert_eq!(code_of(&gate, &bearer(&unsigned)).await, Err(41));
}

#[tokio::test]
async fn a_basic_user_that_does_not_exist_is_invalid_like_a_wrong_password() {
    use argon2::password_hash::PasswordHasher;
    let hash = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(256, 1, 1, None).unwrap(),
    )
    .hash_password(b"right")
    .unwrap()
    .to_string();
    let settings = ClientSettings {
        basic: Some(clients::BasicSettings {
            user: "seller".into(),
            password_hash: hash,
            expires_at: None,
        }),
        ..ClientSettings::default()
    };
    let gate = gate(&[("seller", settings)], SecuritySettings::default());
    let basic = |credentials: &str| {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        headers
    };
    assert_eq!(
        code_of(&gate, &basic("seller:right")).await,
        Ok(Caller::Client(0))
    );
    // Remembered: the second check does not need argon2, and still agrees.
    assert_eq!(
        code_of(&gate, &basic("seller:right")).await,
        Ok(Caller::Client(0))
    );
    assert_eq!(code_of(&gate, &basic("seller:wrong")).await, Err(41));
    assert_eq!(code_of(&gate, &basic("nobody:right")).await, Err(41));
    assert_eq!(code_of(&gate, &basic("no colon")).await, Err(41));
}

#[tokio::test]
async fn other_authorization_schemes_are_invalid_and_nothing_is_missing() {
    let key = "olk_unit";
    let settings = ClientSettings {
        api_keys: vec![clients::ApiKeySettings {
            hash: format!("sha256:{}", hex::encode(sha256(key.as_bytes()))),
            header: None,
            expires_at: None,
        }],
        ..ClientSettings::default()
    };
    let gate = gate(&[("seller", settings)], SecuritySettings::default());
    assert_eq!(code_of(&gate, &bearer(key)).await, Ok(Caller::Client(0)));
    let mut digest = HeaderMap::new();
    digest.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Digest username=x"),
    );
    assert_eq!(code_of(&gate, &digest).await, Err(41));
    assert_eq!(code_of(&gate, &HeaderMap::new()).await, Err(40));
    let mut signed = HeaderMap::new();
    signed.insert("webhook-id", HeaderValue::from_static("msg_1"));
    assert_eq!(
        code_of(&gate, &signed).await,
        Err(0),
        "signature headers wait for the body"
    );
    assert_eq!(
        gate.identify_signed(&signed, b"{}").unwrap_err().code,
        DeniedCode::Missing
    );
}

#[test]
fn the_client_ip_comes_from_a_trusted_proxy_only() {
    let gate = gate(
        &[],
        SecuritySettings {
            client_ip_header: Some("X-Forwarded-For".into()),
            trusted_proxies: vec!["10.0.0.0/8".into()],
            ..SecuritySettings::default()
        },
    );
    let forwarded = |value: &str| {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        headers
    };
    let proxy: SocketAddr = "10.0.0.5:4000".parse().unwrap();
    let stranger: SocketAddr = "203.0.113.9:4000".parse().unwrap();
    let ip = |text: &str| text.parse::<IpAddr>().unwrap();
    assert_eq!(
        gate.client_ip(proxy, &forwarded("198.51.100.7")),
        ip("198.51.100.7")
    );
    // The nearest address that is not a trusted proxy: what the client wrote itself is ignored.
    assert_eq!(
        gate.client_ip(proxy, &forwarded("192.0.2.1, 198.51.100.7, 10.0.0.9")),
        ip("198.51.100.7")
    );
    assert_eq!(
        gate.client_ip(proxy, &forwarded("[2001:db8::1]:443")),
        ip("2001:db8::1")
    );
    assert_eq!(gate.client_ip(proxy, &HeaderMap::new()), ip("10.0.0.5"));
    // Anyone else's header is not read.
    assert_eq!(
        gate.client_ip(stranger, &forwarded("198.51.100.7")),
        ip("203.0.113.9")
    );
}
