//! Securing the listener: every refusal code (401/40–42, 403/50–53, 503/6) for every kind of
//! credential, mTLS with a CA and certificates made here, Standard Webhooks signed by the
//! Python reference package, and no secret in the logs.

use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{EncodingKey, Header, encode};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use ring::signature::KeyPair as _;
use serde_json::{Value, json};

use crate::helpers::*;

/// The kinds of credential a client can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bearer,
    Header,
    Basic,
    JwtHs256,
    JwtRs256,
    JwtEs256Jwks,
    WebhookHmac,
    WebhookEd25519,
    Mtls,
}

const KINDS: [Kind; 9] = [
    Kind::Bearer,
    Kind::Header,
    Kind::Basic,
    Kind::JwtHs256,
    Kind::JwtRs256,
    Kind::JwtEs256Jwks,
    Kind::WebhookHmac,
    Kind::WebhookEd25519,
    Kind::Mtls,
];

impl Kind {
    fn slug(self) -> &'static str {
        match self {
            Kind::Bearer => "bearer",
            Kind::Header => "header",
            Kind::Basic => "basic",
            Kind::JwtHs256 => "jwths",
            Kind::JwtRs256 => "jwtrs",
            Kind::JwtEs256Jwks => "jwtes",
            Kind::WebhookHmac => "hookhmac",
            Kind::WebhookEd25519 => "hooked",
            Kind::Mtls => "mtls",
        }
    }
}

/// Policies every kind is tried under; each is its own client `<kind>-<variant>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Ok,
    Disabled,
    FarSource,
    StateChangesOnly,
    Slow,
    Expired,
}

const VARIANTS: [Variant; 6] = [
    Variant::Ok,
    Variant::Disabled,
    Variant::FarSource,
    Variant::StateChangesOnly,
    Variant::Slow,
    Variant::Expired,
];

impl Variant {
    fn slug(self) -> &'static str {
        match self {
            Variant::Ok => "ok",
            Variant::Disabled => "off",
            Variant::FarSource => "far",
            Variant::StateChangesOnly => "typed",
            Variant::Slow => "slow",
            Variant::Expired => "old",
        }
    }

    fn policy_toml(self) -> &'static str {
        match self {
            Variant::Disabled => "enabled = false\n",
            Variant::FarSource => "allowed_sources = [\"192.0.2.0/24\"]\n",
            Variant::StateChangesOnly => {
                "event_types = [\"ServiceOrderStateChangeNotification\"]\n"
            }
            Variant::Slow => "rate_limit = { per_second = 0.001, burst = 1 }\n",
            Variant::Ok | Variant::Expired => "",
        }
    }
}

const PAST: &str = "2020-01-01T00:00:00Z";

/// A test CA, and certificates it signs.
struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: ca.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A client certificate and key, as one PEM for `reqwest::Identity`.
    fn client(&self, common_name: &str, expired: bool) -> String {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        format!("{}{}", certificate.pem(), key.serialize_pem())
    }
}

/// How a webhook sender signs.
enum Signer {
    Hmac(Vec<u8>),
    Ed25519(ring::signature::Ed25519KeyPair),
}

impl Signer {
    fn headers(&self, body: &str, timestamp: i64) -> Vec<(&'static str, String)> {
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let content = format!("{id}.{timestamp}.{body}");
        let signature = match self {
            Signer::Hmac(secret) => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
                format!(
                    "v1,{}",
                    STANDARD.encode(ring::hmac::sign(&key, content.as_bytes()))
                )
            }
            Signer::Ed25519(pair) => {
                format!("v1a,{}", STANDARD.encode(pair.sign(content.as_bytes())))
            }
        };
        vec![
            ("webhook-id", id),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ]
    }
}

/// What a client sends to prove who it is.
enum Proof {
    Bearer(String),
    Header(String),
    Basic(String, String),
    /// A JWT signing key, its algorithm, issuer and key id.
    Jwt(EncodingKey, jsonwebtoken::Algorithm, String, Option<String>),
    Webhook(Signer),
    /// A reqwest client that presents a certificate.
    Certificate(reqwest::Client),
}

/// One configured client and its credentials.
struct TestClient {
    name: String,
    kind: Kind,
    variant: Variant,
    proof: Proof,
}

/// A listener over HTTPS with a client CA and a client for every kind and variant.
struct Fixture {
    app: TestApp,
    https: reqwest::Client,
    clients: Vec<TestClient>,
    /// Certificates no client accepts, from the right CA and from another one.
    stranger: reqwest::Client,
    foreign: reqwest::Client,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).unwrap();
    bytes
}

/// A cheap argon2id hash (the real parameters are slow in a debug build).
fn cheap_argon2(password: &str) -> String {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(256, 1, 1, None).unwrap(),
    )
    .hash_password(password.as_bytes())
    .unwrap()
    .to_string()
}

fn https_client(server_pem: &[u8], identity: Option<&str>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(server_pem).unwrap()]);
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// What [`write_config`] made: the clients (their certificate clients wait for the server's
/// certificate), the CA, and every secret written or to be sent.
struct Written {
    clients: Vec<(String, Kind, Variant, PendingProof)>,
    pki: Pki,
    secrets: Vec<String>,
}

/// Writes the config, the key files and the CA into `dir`.
fn write_config(dir: &Path, variants: &[Variant], extra: &str) -> Written {
    let pki = Pki::new("order-listener test clients CA");
    std::fs::write(dir.join("clients-ca.pem"), &pki.ca_pem).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/jwt-rs256-public.pem"
        ),
        dir.join("jwt-rs256-public.pem"),
    )
    .unwrap();
    let mut toml = format!(
        "plain_http = false\nallow_anonymous = false\n{extra}\n[tls]\nclient_ca_file = \"clients-ca.pem\"\n"
    );
    let mut clients = Vec::new();
    let mut secrets = Vec::new();
    for kind in KINDS {
        for &variant in variants {
            let name = format!("{}-{}", kind.slug(), variant.slug());
            let expires = if variant == Variant::Expired {
                format!("expires_at = {PAST}\n")
            } else {
                String::new()
            };
            writeln!(toml, "\n[clients.{name}]\n{}", variant.policy_toml()).unwrap();
            let proof = match kind {
                Kind::Bearer | Kind::Header => {
                    let key = format!("olk_{}", hex::encode(random_bytes::<16>()));
                    let header = if kind == Kind::Header {
                        "header = \"X-API-Key\"\n"
                    } else {
                        ""
                    };
                    writeln!(
                        toml,
                        "[[clients.{name}.api_keys]]\nhash = \"sha256:{}\"\n{header}{expires}",
                        sha256_hex(&key)
                    )
                    .unwrap();
                    secrets.push(key.clone());
                    if kind == Kind::Header {
                        PendingProof::Ready(Proof::Header(key))
                    } else {
                        PendingProof::Ready(Proof::Bearer(key))
                    }
                }
                Kind::Basic => {
                    let password = hex::encode(random_bytes::<12>());
                    writeln!(
                        toml,
                        "[clients.{name}.basic]\nuser = \"{name}\"\npassword_hash = \"{}\"\n{expires}",
                        cheap_argon2(&password)
                    )
                    .unwrap();
                    secrets.push(password.clone());
                    PendingProof::Ready(Proof::Basic(name.clone(), password))
                }
                Kind::JwtHs256 => {
                    let secret = hex::encode(random_bytes::<24>());
                    writeln!(toml, "[clients.{name}.jwt]\nhs256_secret = \"{secret}\"\n").unwrap();
                    secrets.push(secret.clone());
                    PendingProof::Ready(Proof::Jwt(
                        EncodingKey::from_secret(secret.as_bytes()),
                        jsonwebtoken::Algorithm::HS256,
                        name.clone(),
                        None,
                    ))
                }
                Kind::JwtRs256 => {
                    // One seller key for all: the issuer tells the clients apart.
                    writeln!(
                        toml,
                        "[clients.{name}.jwt]\npublic_key_file = \"jwt-rs256-public.pem\"\nissuer = [\"{name}\"]\naudience = [\"order-listener\"]\n"
                    )
                    .unwrap();
                    let pem = std::fs::read(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/tests/fixtures/jwt-rs256-private.pem"
                    ))
                    .unwrap();
                    PendingProof::Ready(Proof::Jwt(
                        EncodingKey::from_rsa_pem(&pem).unwrap(),
                        jsonwebtoken::Algorithm::RS256,
                        name.clone(),
                        None,
                    ))
                }
                Kind::JwtEs256Jwks => {
                    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
                    let encoding =
                        EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
                    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(
                        &encoding,
                        jsonwebtoken::Algorithm::ES256,
                    )
                    .unwrap();
                    jwk.common.key_id = Some(name.clone());
                    let file = format!("{name}.jwks.json");
                    std::fs::write(
                        dir.join(&file),
                        serde_json::to_string(&json!({ "keys": [jwk] })).unwrap(),
                    )
                    .unwrap();
                    writeln!(toml, "[clients.{name}.jwt]\njwks_file = \"{file}\"\n").unwrap();
                    PendingProof::Ready(Proof::Jwt(
                        encoding,
                        jsonwebtoken::Algorithm::ES256,
                        name.clone(),
                        Some(name.clone()),
                    ))
                }
                Kind::WebhookHmac => {
                    let secret = random_bytes::<32>();
                    let key = format!("whsec_{}", STANDARD.encode(secret));
                    writeln!(toml, "[clients.{name}.webhook]\nkeys = [\"{key}\"]\n").unwrap();
                    secrets.push(key);
                    PendingProof::Ready(Proof::Webhook(Signer::Hmac(secret.to_vec())))
                }
                Kind::WebhookEd25519 => {
                    let rng = ring::rand::SystemRandom::new();
                    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
                    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
                    let public = format!("whpk_{}", STANDARD.encode(pair.public_key().as_ref()));
                    writeln!(toml, "[clients.{name}.webhook]\nkeys = [\"{public}\"]\n").unwrap();
                    PendingProof::Ready(Proof::Webhook(Signer::Ed25519(pair)))
                }
                Kind::Mtls => {
                    writeln!(toml, "[clients.{name}.mtls]\nsubjects = [\"CN={name}\"]\n").unwrap();
                    PendingProof::Certificate(pki.client(&name, variant == Variant::Expired))
                }
            };
            clients.push((name, kind, variant, proof));
        }
    }
    std::fs::write(dir.join("config.toml"), &toml).unwrap();
    Written {
        clients,
        pki,
        secrets,
    }
}

enum PendingProof {
    Ready(Proof),
    /// A certificate and key PEM; the client is made once the server certificate exists.
    Certificate(String),
}

impl Fixture {
    async fn start(variants: &[Variant], extra: &str) -> Fixture {
        init();
        let dir = tempfile::tempdir().unwrap();
        let Written {
            clients: pending,
            pki,
            ..
        } = write_config(dir.path(), variants, extra);
        let config = TestConfig::new(dir.path().join("data"))
            .file(dir.path().join("config.toml"))
            .transport_and_access_from_file()
            .build();
        let mut app = start(config).await;
        let server_pem = std::fs::read(app.data_dir.join("tls/cert.pem")).unwrap();
        let https = https_client(&server_pem, None);
        let clients = pending
            .into_iter()
            .map(|(name, kind, variant, proof)| TestClient {
                name,
                kind,
                variant,
                proof: match proof {
                    PendingProof::Ready(proof) => proof,
                    PendingProof::Certificate(pem) => {
                        Proof::Certificate(https_client(&server_pem, Some(&pem)))
                    }
                },
            })
            .collect();
        let stranger = https_client(&server_pem, Some(&pki.client("stranger", false)));
        let foreign = https_client(
            &server_pem,
            Some(&Pki::new("another CA").client("mtls-ok", false)),
        );
        app._dir = Some(dir);
        Fixture {
            app,
            https,
            clients,
            stranger,
            foreign,
        }
    }

    fn client(&self, kind: Kind, variant: Variant) -> &TestClient {
        self.clients
            .iter()
            .find(|client| client.kind == kind && client.variant == variant)
            .unwrap()
    }
}

/// How to spoil a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spoil {
    None,
    /// Wrong secret, signature or key.
    Wrong,
    /// Past its time (JWT `exp`, webhook timestamp); the other kinds expire in their config.
    Stale,
}

fn event_body(event_id: &str, event_type: &str) -> String {
    let state = if event_type == "ServiceOrderCreationNotification" {
        "acknowledged"
    } else {
        "completed"
    };
    onap_event(
        event_id,
        event_type,
        0,
        &format!("SO-{event_id}"),
        state,
        vec![onap_item("1", "add", state)],
    )
    .to_string()
}

fn jwt(
    key: &EncodingKey,
    algorithm: jsonwebtoken::Algorithm,
    issuer: &str,
    kid: Option<&str>,
    spoil: Spoil,
) -> String {
    let now = chrono::Utc::now().timestamp();
    let exp = if spoil == Spoil::Stale {
        now - 3600
    } else {
        now + 600
    };
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    let claims =
        json!({ "iss": issuer, "aud": "order-listener", "sub": "seller", "iat": now, "exp": exp });
    let mut token = encode(&header, &claims, key).unwrap();
    if spoil == Spoil::Wrong {
        // Replace the signature with another token's: same shape, does not verify.
        let other = encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"not the key of any client, at least 32 bytes"),
        )
        .unwrap();
        let signature = other.rsplit('.').next().unwrap().to_owned();
        let cut = token.rfind('.').unwrap();
        token.truncate(cut + 1);
        token.push_str(&signature);
    }
    token
}

impl Fixture {
    /// Sends `body` as `client`, with its proof spoiled as asked.
    async fn send(
        &self,
        client: &TestClient,
        body: &str,
        spoil: Spoil,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let sender = Sender {
            https: &self.https,
            url: &self.app.listener_url,
        };
        sender.send(client, body, spoil).await.0
    }

    /// Sends the creation event `event_id` as `kind`'s client in good standing.
    async fn send_creation(&self, kind: Kind, event_id: &str) -> reqwest::Response {
        let body = event_body(event_id, "ServiceOrderCreationNotification");
        self.send(self.client(kind, Variant::Ok), &body, Spoil::None)
            .await
            .unwrap()
    }
}

async fn expect(
    response: Result<reqwest::Response, reqwest::Error>,
    status: u16,
    code: u64,
    what: &str,
) -> Value {
    let response = response.unwrap_or_else(|error| panic!("{what}: no answer: {error}"));
    let actual = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(
        (actual, body["code"].as_u64()),
        (status, Some(code)),
        "{what}: {body}"
    );
    body
}

#[tokio::test]
async fn every_refusal_code_holds_for_every_kind_of_credential() {
    let fixture = Fixture::start(&VARIANTS, "").await;
    let creation = "ServiceOrderCreationNotification";
    let state_change = "ServiceOrderStateChangeNotification";
    for kind in KINDS {
        let id = |what: &str| format!("{}-{what}", kind.slug());
        let ok = fixture.client(kind, Variant::Ok);
        // Sends the event `name` of `event_type` as `client`, its proof spoiled as asked.
        let send = async |client: &TestClient, name: &str, event_type: &str, spoil: Spoil| {
            let body = event_body(&id(name), event_type);
            fixture.send(client, &body, spoil).await
        };
        let variant = |variant: Variant| fixture.client(kind, variant);

        // Accepted, and recorded with the client's name.
        let response = send(ok, "accepted", creation, Spoil::None).await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            201,
            "{kind:?}: {}",
            response.text().await.unwrap()
        );
        let (status, stored) = fixture
            .app
            .admin_get(&format!("/api/v1/events/{}", id("accepted")))
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            stored["client"],
            json!(ok.name),
            "{kind:?} records its client"
        );

        // 40: no credentials at all.
        let response = fixture
            .https
            .post(&fixture.app.listener_url)
            .header("content-type", "application/json")
            .body(event_body(&id("bare"), creation))
            .send()
            .await;
        expect(response, 401, 40, &format!("{kind:?} without credentials")).await;

        // 41: wrong credentials; 42: expired ones. A certificate from an unknown CA, or an
        // expired one, fails the TLS handshake instead.
        if kind == Kind::Mtls {
            let foreign = fixture
                .foreign
                .post(&fixture.app.listener_url)
                .body(event_body(&id("foreign"), creation))
                .send()
                .await;
            assert!(
                foreign.is_err(),
                "a certificate from another CA fails the handshake"
            );
            let expired = send(variant(Variant::Expired), "expired", creation, Spoil::None).await;
            assert!(
                expired.is_err(),
                "an expired certificate fails the handshake"
            );
            let stranger = fixture
                .stranger
                .post(&fixture.app.listener_url)
                .header("content-type", "application/json")
                .body(event_body(&id("stranger"), creation))
                .send()
                .await;
            let body = expect(stranger, 403, 51, "a certificate no client accepts").await;
            assert!(
                body["message"].as_str().unwrap().contains("stranger"),
                "{body}"
            );
        } else {
            let wrong = send(ok, "wrong", creation, Spoil::Wrong).await;
            expect(wrong, 401, 41, &format!("{kind:?} with a wrong secret")).await;
            let expired = send(variant(Variant::Expired), "expired", creation, Spoil::Stale).await;
            expect(expired, 401, 42, &format!("{kind:?} expired")).await;
        }

        // 50: a disabled client.
        let disabled = send(
            variant(Variant::Disabled),
            "disabled",
            creation,
            Spoil::None,
        )
        .await;
        expect(disabled, 403, 50, &format!("{kind:?} disabled")).await;

        // 51: a client that may only call from 192.0.2.0/24.
        let far = send(variant(Variant::FarSource), "far", creation, Spoil::None).await;
        expect(far, 403, 51, &format!("{kind:?} from a source not allowed")).await;

        // 52: a client that may only send state changes.
        let typed = variant(Variant::StateChangesOnly);
        let refused = send(typed, "typed-creation", creation, Spoil::None).await;
        let body = expect(
            refused,
            403,
            52,
            &format!("{kind:?} sending a type it may not"),
        )
        .await;
        assert!(
            body["message"].as_str().unwrap().contains(state_change),
            "{body}"
        );
        let response = send(typed, "typed-change", state_change, Spoil::None)
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            201,
            "{kind:?} sending a type it may"
        );

        // 53: over the rate (a burst of one, then one request in about 17 minutes).
        let slow = variant(Variant::Slow);
        let first = send(slow, "slow-1", creation, Spoil::None).await.unwrap();
        assert_eq!(first.status().as_u16(), 201, "{kind:?} within its rate");
        let second = send(slow, "slow-2", creation, Spoil::None).await.unwrap();
        let retry_after: u64 = second
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok())
            .expect("a 53 says when to retry");
        assert!(
            (900..=1000).contains(&retry_after),
            "{kind:?}: Retry-After {retry_after}"
        );
        expect(Ok(second), 403, 53, &format!("{kind:?} over its rate")).await;
    }

    // Nothing refused was stored: only the accepted, typed-change and slow-1 events.
    let stored = fixture.app.stored_events().await;
    assert_eq!(
        stored.len(),
        KINDS.len() * 3,
        "{:?}",
        stored.iter().map(|e| &e.event_id).collect::<Vec<_>>()
    );
}

/// Holds one request in flight (its body never ends) so the listener's only slot is taken.
struct Blocker {
    sender: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    task: tokio::task::JoinHandle<Result<reqwest::Response, reqwest::Error>>,
}

#[tokio::test]
async fn past_the_global_bound_every_kind_gets_503_with_code_6() {
    let extra = "[security]\nmax_in_flight = 1\nmax_queued = 0\n";
    let fixture = Fixture::start(&[Variant::Ok], extra).await;
    let Proof::Bearer(key) = &fixture.client(Kind::Bearer, Variant::Ok).proof else {
        unreachable!("bearer clients hold a key");
    };
    // A request that is authenticated (so the listener goes on to wait for its body) and whose
    // body never ends holds the only slot. It takes the slot once its headers arrive; a probe
    // in flight at that moment takes it instead, and the blocker is refused: then start another.
    let block = || {
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        let request = fixture
            .https
            .post(&fixture.app.listener_url)
            .bearer_auth(key)
            .header("content-type", "application/json")
            .header("content-length", "100")
            .body(reqwest::Body::wrap_stream(tokio_stream_from(receiver)));
        Blocker {
            sender,
            task: tokio::spawn(request.send()),
        }
    };
    let mut blocker = block();
    let mut probes = 0;
    eventually("the blocking request to take the slot", async || {
        if blocker.task.is_finished() {
            // Refused because a probe held the slot: start another and give it a poll's head
            // start, or a probe sent at once can win the slot every time.
            blocker = block();
            return None;
        }
        probes += 1;
        let response = fixture
            .send_creation(Kind::Bearer, &format!("probe-{probes}"))
            .await;
        // Probes go one at a time, so a 503 means the blocker holds the slot.
        (response.status().as_u16() == 503).then_some(())
    })
    .await;
    for kind in KINDS {
        let response = fixture
            .send_creation(kind, &format!("{}-overload", kind.slug()))
            .await;
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("1"),
            "{kind:?}"
        );
        expect(Ok(response), 503, 6, &format!("{kind:?} overloaded")).await;
    }

    // Once the slot is free, everyone gets in again.
    drop(blocker.sender);
    let _ = blocker.task.await;
    for kind in KINDS {
        let response = fixture
            .send_creation(kind, &format!("{}-after", kind.slug()))
            .await;
        assert_eq!(
            response.status().as_u16(),
            201,
            "{kind:?} after the overload"
        );
    }
}

fn tokio_stream_from(
    mut receiver: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |context| receiver.poll_recv(context))
}

#[tokio::test]
async fn a_trusted_proxy_header_places_the_caller_and_others_cannot_forge_it() {
    let key = "olk_proxy_test_key_0123456789";
    let app = spawn_app_from_file(
        &format!(
                "plain_http = true\n[security]\nclient_ip_header = \"X-Forwarded-For\"\ntrusted_proxies = [\"127.0.0.1/32\"]\n\
                 [clients.seller]\nallowed_sources = [\"198.51.100.0/24\"]\n[[clients.seller.api_keys]]\nhash = \"sha256:{}\"\n",
                sha256_hex(key)
            ),
        TestConfig::transport_and_access_from_file,
    )
    .await;
    let post = |forwarded: &str, id: &str| {
        app.client
            .post(&app.listener_url)
            .bearer_auth(key)
            .header("content-type", "application/json")
            .header("x-forwarded-for", forwarded.to_owned())
            .body(event_body(id, "ServiceOrderCreationNotification"))
            .send()
    };
    // The proxy (127.0.0.1, trusted) says the caller is 198.51.100.9: allowed.
    assert_eq!(
        post("198.51.100.9", "via-proxy")
            .await
            .unwrap()
            .status()
            .as_u16(),
        201
    );
    // A caller that writes its own header in front is placed by the proxy's entry.
    assert_eq!(
        post("198.51.100.9, 203.0.113.5", "forged")
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    expect(
        post("203.0.113.5", "outside").await,
        403,
        51,
        "a source outside the client's list",
    )
    .await;
}

#[tokio::test]
async fn anonymous_access_keeps_its_own_policy_and_credentials_still_identify() {
    let key = "olk_anonymous_test_key_0123456789";
    let app = spawn_app_from_file(
        &format!(
                "plain_http = true\nallow_anonymous = true\n[anonymous]\nevent_types = [\"ServiceOrderCreationNotification\"]\n\
                 [clients.seller]\n[[clients.seller.api_keys]]\nhash = \"sha256:{}\"\n",
                sha256_hex(key)
            ),
        TestConfig::transport_and_access_from_file,
    )
    .await;
    let creation = event_body("anon-1", "ServiceOrderCreationNotification");
    assert_eq!(
        app.post_raw(creation, Some("application/json"))
            .await
            .status()
            .as_u16(),
        201
    );
    let change = event_body("anon-2", "ServiceOrderStateChangeNotification");
    assert_error(
        app.post_raw(change.clone(), Some("application/json")).await,
        403,
        52,
    )
    .await;
    // A wrong key is refused even though anonymous access is on.
    let wrong = app
        .client
        .post(&app.listener_url)
        .bearer_auth("olk_wrong")
        .header("content-type", "application/json")
        .body(change.clone())
        .send()
        .await
        .unwrap();
    assert_error(wrong, 401, 41).await;
    let right = app
        .client
        .post(&app.listener_url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(change)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status().as_u16(), 201);
    let (_, stored) = app.admin_get("/api/v1/events/anon-2").await;
    assert_eq!(stored["client"], json!("seller"));
    let (_, stored) = app.admin_get("/api/v1/events/anon-1").await;
    assert_eq!(stored["client"], Value::Null);
}

/// The Python interpreter with the `standardwebhooks` package, from `.ci/run`.
fn python_with_standardwebhooks() -> Option<String> {
    service(
        "ORDER_LISTENER_TEST_PYTHON",
        "a Python with `standardwebhooks` installed",
    )
}

const PYTHON_SENDER: &str = r#"
import json, sys, urllib.request, urllib.error, uuid
from datetime import datetime, timezone
from standardwebhooks.webhooks import Webhook

url, secret, event_id, tamper = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "tamper"
body = json.dumps({
    "eventId": event_id, "eventDate": "2019-03-25T08:08:56.310Z",
    "eventType": "ServiceOrderCreationNotification",
    "event": {"id": "SO-" + event_id, "state": "acknowledged",
              "orderItem": [{"id": "1", "state": "acknowledged", "action": "add"}]},
})
msg_id = "msg_" + uuid.uuid4().hex
now = datetime.now(tz=timezone.utc)
signature = Webhook(secret).sign(msg_id, now, body)
if tamper:
    body = body.replace("acknowledged", "completed", 1)
request = urllib.request.Request(url, data=body.encode(), method="POST", headers={
    "content-type": "application/json",
    "webhook-id": msg_id,
    "webhook-timestamp": str(int(now.timestamp())),
    "webhook-signature": signature,
})
try:
    with urllib.request.urlopen(request) as response:
        print(response.status, response.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode())
"#;

#[tokio::test]
async fn requests_signed_by_the_python_standardwebhooks_package_are_accepted_and_tampering_is_refused()
 {
    let Some(python) = python_with_standardwebhooks() else {
        return;
    };
    let secret = format!("whsec_{}", STANDARD.encode(random_bytes::<32>()));
    let app = spawn_app_from_file(
        &format!("plain_http = true\n[clients.python-seller.webhook]\nkeys = [\"{secret}\"]\n"),
        TestConfig::transport_and_access_from_file,
    )
    .await;
    let run = |event_id: &'static str, tamper: &'static str| {
        let (python, url, secret) = (python.clone(), app.listener_url.clone(), secret.clone());
        tokio::task::spawn_blocking(move || {
            let output = Command::new(python)
                .args(["-c", PYTHON_SENDER, &url, &secret, event_id, tamper])
                .output()
                .expect("python runs");
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap()
        })
    };
    let accepted = run("py-signed", "no").await.unwrap();
    assert!(accepted.starts_with("201 "), "{accepted}");
    let tampered = run("py-tampered", "tamper").await.unwrap();
    assert!(tampered.starts_with("401 "), "{tampered}");
    let body: Value = serde_json::from_str(tampered.split_once(' ').unwrap().1).unwrap();
    assert_eq!(body["code"], json!(41));
    let (_, stored) = app.admin_get("/api/v1/events/py-signed").await;
    assert_eq!(stored["client"], json!("python-seller"));
    let (status, _) = app.admin_get("/api/v1/events/py-tampered").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn no_secret_appears_in_the_logs_even_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let Written {
        clients: pending,
        mut secrets,
        ..
    } = write_config(
        dir.path(),
        &[Variant::Ok, Variant::Expired],
        "log_level = \"trace\"\nadmin_token = \"admin-token-that-must-not-leak\"\n",
    );
    secrets.push("admin-token-that-must-not-leak".to_owned());
    let data_dir = dir.path().join("data");
    let mut child = Command::new(binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .arg("--config")
        .arg(dir.path().join("config.toml"))
        .arg("--data-dir")
        .arg(&data_dir)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (listener_url, admin_base) = read_banner(&mut stdout);
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let stderr = child.stderr.take().unwrap();
    let collected = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::BufReader::new(stderr).read_to_string(&mut text);
        text
    });
    let server_pem = std::fs::read(data_dir.join("tls/cert.pem")).unwrap();
    let https = https_client(&server_pem, None);
    let mut sent = Vec::new();
    for (name, kind, variant, proof) in pending {
        let proof = match proof {
            PendingProof::Ready(proof) => proof,
            PendingProof::Certificate(pem) => {
                Proof::Certificate(https_client(&server_pem, Some(&pem)))
            }
        };
        let client = TestClient {
            name: name.clone(),
            kind,
            variant,
            proof,
        };
        let sender = Sender {
            https: &https,
            url: &listener_url,
        };
        for spoil in [Spoil::None, Spoil::Wrong, Spoil::Stale] {
            let body = event_body(
                &format!("{name}-{spoil:?}"),
                "ServiceOrderCreationNotification",
            );
            let (answer, credential) = sender.send(&client, &body, spoil).await;
            sent.extend(credential);
            if kind != Kind::Mtls {
                assert!(answer.is_ok(), "{name} {spoil:?}");
            }
        }
    }
    let admin = reqwest::Client::new()
        .get(format!("{admin_base}/api/v1/events/x"))
        .bearer_auth("admin-token-that-must-not-leak")
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status().as_u16(), 404);
    let wrong_admin = reqwest::Client::new()
        .get(format!("{admin_base}/api/v1/events/x"))
        .bearer_auth("wrong-admin-token-guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_admin.status().as_u16(), 401);
    sent.push("wrong-admin-token-guess".to_owned());

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    let logs = collected.join().unwrap();
    assert!(logs.contains("request refused"), "refusals are logged");
    assert!(
        logs.contains("client_ip") && logs.contains("code"),
        "with the address and code"
    );
    for secret in secrets.iter().chain(&sent) {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret appears in the logs: {secret}"
        );
    }
}

/// Sends notifications to a listener as a test client.
struct Sender<'a> {
    https: &'a reqwest::Client,
    url: &'a str,
}

impl Sender<'_> {
    /// Sends `body` as `client`, with its proof spoiled as asked; returns the answer and the
    /// credential text that was sent, if any.
    async fn send(
        &self,
        client: &TestClient,
        body: &str,
        spoil: Spoil,
    ) -> (Result<reqwest::Response, reqwest::Error>, Option<String>) {
        let http = match &client.proof {
            Proof::Certificate(with_certificate) => with_certificate,
            _ => self.https,
        };
        let wrong = spoil == Spoil::Wrong;
        let mut request = http
            .post(self.url)
            .header("content-type", "application/json");
        let mut credential = None;
        match &client.proof {
            Proof::Bearer(key) => {
                let value = if wrong { "olk_wrong_guess" } else { key };
                request = request.bearer_auth(value);
                credential = Some(value.to_owned());
            }
            Proof::Header(key) => {
                let value = if wrong { "olk_wrong_guess" } else { key };
                request = request.header("x-api-key", value);
                credential = Some(value.to_owned());
            }
            Proof::Basic(user, password) => {
                let password = if wrong {
                    "wrong-password-guess"
                } else {
                    password
                };
                request = request.basic_auth(user, Some(password));
                credential = Some(STANDARD.encode(format!("{user}:{password}")));
            }
            Proof::Jwt(key, algorithm, issuer, kid) => {
                let token = jwt(key, *algorithm, issuer, kid.as_deref(), spoil);
                request = request.bearer_auth(&token);
                credential = Some(token);
            }
            Proof::Webhook(signer) => {
                let now = chrono::Utc::now().timestamp();
                let timestamp = if spoil == Spoil::Stale {
                    now - 3600
                } else {
                    now
                };
                // A wrong signature: signed over other bytes than those sent.
                let signed = if wrong {
                    format!("{body} ")
                } else {
                    body.to_owned()
                };
                for (name, value) in signer.headers(&signed, timestamp) {
                    request = request.header(name, value);
                }
            }
            Proof::Certificate(_) => {}
        }
        (request.body(body.to_owned()).send().await, credential)
    }
}

/// Reads the banner up to the admin line; returns the listener URL and the admin base URL.
fn read_banner(stdout: &mut impl std::io::BufRead) -> (String, String) {
    let mut listener = None;
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the banner ends early"
        );
        let text = line.trim();
        if let Some(rest) = text.strip_prefix("Listener API  POST ") {
            listener = Some(rest.trim().to_owned());
        }
        if let Some(rest) = text.strip_prefix("admin API") {
            let admin = rest.split_whitespace().next().unwrap().to_owned();
            return (listener.expect("the listener line comes first"), admin);
        }
    }
}

#[tokio::test]
async fn oversized_headers_are_refused_and_slow_headers_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|config| {
        config.limits.header_read_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let address = app.public_base.trim_start_matches("http://").to_owned();

    // 100 KiB of headers: more than the 64 KiB bound.
    let response = app
        .client
        .post(&app.listener_url)
        .header("x-padding", "a".repeat(100 * 1024))
        .header("content-type", "application/json")
        .body(event_body("padded", "ServiceOrderCreationNotification"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 431);

    // Slowloris: a request line and one header, then nothing. The listener closes the
    // connection once header_read_timeout has passed (the test waits for that, up to PATIENCE).
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(b"POST /externalapi/listener/v1/listener HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "the connection was not closed");
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

#[tokio::test]
async fn sighup_applies_client_changes_without_a_restart() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let config_arg = config.to_str().unwrap();
    let (ok, stdout, stderr) = run_cli(&["client", "add", "seller", "--config", config_arg]);
    assert!(ok, "{stderr}");
    let key = stdout
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("olk_"))
        .expect("the new key is printed")
        .to_owned();
    let running = start_binary_with(&dir.path().join("data"), Some(&config));
    let http = reqwest::Client::new();
    let mut sent = 0;
    let mut post = || {
        sent += 1;
        http.post(&running.listener_url)
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(event_body(
                &format!("hup-{sent}"),
                "ServiceOrderCreationNotification",
            ))
            .send()
    };
    assert_eq!(post().await.unwrap().status().as_u16(), 201);
    let hangup = || {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(running.child.id() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap()
    };

    let (ok, _, stderr) = run_cli(&["client", "disable", "seller", "--config", config_arg]);
    assert!(ok, "{stderr}");
    hangup();
    // The reload is asynchronous: ask until the new rules answer.
    let refused = eventually("SIGHUP to disable the client", async || {
        let response = post().await.unwrap();
        if response.status().as_u16() == 403 {
            return Some(response);
        }
        assert_eq!(response.status().as_u16(), 201);
        None
    })
    .await;
    assert_error(refused, 403, 50).await;

    let (ok, _, stderr) = run_cli(&["client", "enable", "seller", "--config", config_arg]);
    assert!(ok, "{stderr}");
    hangup();
    eventually("SIGHUP to enable the client", async || {
        let status = post().await.unwrap().status().as_u16();
        assert!(status == 201 || status == 403, "{status}");
        (status == 201).then_some(())
    })
    .await;
}
