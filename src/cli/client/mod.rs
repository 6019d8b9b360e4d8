//! `order-listener client add|list|rotate|disable|enable|remove`: the senders under
//! `[clients.NAME]` of the config file, edited with `toml_edit` so that the rest of the file
//! keeps its comments and layout.
//!
//! New secrets are printed once. The file keeps a hash wherever a hash suffices (an API key's
//! SHA-256, a Basic password's argon2id); only a Standard Webhooks HMAC secret is kept as it is,
//! because verifying needs it. Every edit is checked by loading the result as `serve` would,
//! and written atomically with mode 0600, so a broken file is never left behind.
//!
//! This module does not talk to a running listener: `serve` reads its clients at start. Here:
//! the arguments, `add`, `disable`/`enable` and `remove`; `list.rs` and `rotate.rs` hold those
//! commands, `edit.rs` the editing of the file.

mod edit;
mod list;
mod rotate;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{ArgGroup, Args, Subcommand};
use toml_edit::{ArrayOfTables, InlineTable, Item, Table, Value, value};

use self::edit::{ConfigFile, api_key_table, set_value, string_array};
use crate::config::clients::ClientName;
use crate::domain::envelope::EventType;
use crate::http::auth::generated::generate_key;
use crate::output::outln;
use crate::secret::Secret;
use crate::standard_webhooks::{InvalidKey, WebhookPublicKey, WebhookSecret};

const APPLY: &str =
    "send SIGHUP to `order-listener serve` (or restart it) to apply: `pkill -HUP order-listener`";

/// `order-listener client …`: the config file and what to do with it.
#[derive(Debug, Args)]
pub(super) struct ClientArgs {
    /// The TOML configuration file that holds the clients: the one `serve --config` reads.
    #[arg(
        long,
        env = "ORDER_LISTENER_CONFIG",
        value_name = "FILE",
        global = true
    )]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: ClientCommand,
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Add a client. Without options it gets a new API key, printed once; options add other
    /// ways to authenticate and limit what it may do.
    Add(Box<AddArgs>),
    /// List the clients: how they authenticate, what they may do, and when credentials expire.
    /// Never shows a secret or a hash.
    List(ListArgs),
    /// Give a client new secrets, printed once: a new API key (the old ones expire after
    /// --grace), a new Basic password, a new webhook secret.
    Rotate(RotateArgs),
    /// Refuse a client's requests (403) without removing it.
    Disable(NameArgs),
    /// Accept a disabled client's requests again.
    Enable(NameArgs),
    /// Delete a client with all its credentials.
    Remove(NameArgs),
}

#[derive(Debug, Args)]
struct NameArgs {
    /// The client's name, as in [clients.NAME].
    name: ClientName,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("jwt_key").multiple(true).args(["jwt_public_key", "jwt_jwks"])))]
struct AddArgs {
    /// The client's name: 1 to 64 letters, digits, '.', '_' or '-'. It is recorded with every
    /// event the client sends.
    name: ClientName,
    /// Also generate an API key when other ways to authenticate are given (without any, an API
    /// key is always generated).
    #[arg(long)]
    api_key: bool,
    /// The header the API key arrives in, as X-Api-Key, instead of `Authorization: Bearer`.
    #[arg(long, value_name = "HEADER")]
    api_key_header: Option<String>,
    /// The new API key and Basic password stop working after this long, as 90d or 12h.
    #[arg(long, value_name = "DURATION", conflicts_with = "expires_at")]
    expires_in: Option<humantime::Duration>,
    /// The new API key and Basic password stop working at this instant (RFC 3339, as
    /// 2030-01-01T00:00:00Z).
    #[arg(long, value_name = "RFC3339")]
    expires_at: Option<DateTime<Utc>>,
    /// HTTP Basic for this user: a random password is generated and printed once; the file
    /// keeps its argon2id hash.
    #[arg(long, value_name = "USER")]
    basic: Option<String>,
    /// Standard Webhooks signatures with a new HMAC secret (whsec_…), printed once. HMAC needs
    /// the secret itself, so the config file holds it.
    #[arg(long)]
    webhook: bool,
    /// Standard Webhooks signatures with the seller's ed25519 public key (whpk_…). Repeatable.
    #[arg(long, value_name = "whpk_KEY", value_parser = parse_webhook_public_key)]
    webhook_public_key: Vec<WebhookPublicKey>,
    /// JWT bearer tokens signed by this PEM public key (RSA for RS256, P-256 for ES256).
    #[arg(long, value_name = "FILE")]
    jwt_public_key: Option<PathBuf>,
    /// JWT bearer tokens signed by a key of this JSON Web Key Set file.
    #[arg(long, value_name = "FILE")]
    jwt_jwks: Option<PathBuf>,
    /// Accept only JWTs with this `iss`. Repeatable; unset means any issuer.
    #[arg(long, value_name = "ISS", requires = "jwt_key")]
    jwt_issuer: Vec<String>,
    /// Accept only JWTs with this `aud`. Repeatable; unset means `aud` is not checked.
    #[arg(long, value_name = "AUD", requires = "jwt_key")]
    jwt_audience: Vec<String>,
    /// Client certificates with this subject DN, as "CN=nbi.seller.example,O=Seller".
    /// Repeatable. Needs tls.client_ca_file in the config file.
    #[arg(long, value_name = "DN")]
    mtls_subject: Vec<String>,
    /// Client certificates with this subject alternative name (DNS name, URI, e-mail or IP
    /// address). Repeatable. Needs tls.client_ca_file in the config file.
    #[arg(long, value_name = "NAME")]
    mtls_san: Vec<String>,
    /// The only event type the client may send, as ServiceOrderStateChangeNotification.
    /// Repeatable; unset means all.
    #[arg(long, value_name = "TYPE")]
    event_type: Vec<EventType>,
    /// An address or CIDR the client may call from, as 10.1.0.0/16. Repeatable; unset means any.
    #[arg(long, value_name = "CIDR")]
    allow_source: Vec<String>,
    /// The client's average request rate, per second (may be fractional, as 0.5).
    #[arg(long, value_name = "PER_SECOND")]
    rate: Option<f64>,
    /// Requests allowed at once above --rate [default: --rate rounded up].
    #[arg(long, value_name = "N", requires = "rate")]
    burst: Option<u32>,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RotateArgs {
    /// The client's name, as in [clients.NAME].
    name: ClientName,
    /// How long the old API keys keep working, as 24h or 7d; 0s refuses them at once (and
    /// removes the old webhook secrets).
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    grace: humantime::Duration,
    /// The new API key and Basic password stop working after this long, as 90d.
    #[arg(long, value_name = "DURATION", conflicts_with = "expires_at")]
    expires_in: Option<humantime::Duration>,
    /// The new API key and Basic password stop working at this instant (RFC 3339).
    #[arg(long, value_name = "RFC3339")]
    expires_at: Option<DateTime<Utc>>,
    /// Rotate only the API keys (may be combined with --basic and --webhook; none of the three
    /// rotates every secret the client has).
    #[arg(long)]
    api_key: bool,
    /// Rotate only the Basic password.
    #[arg(long)]
    basic: bool,
    /// Rotate only the webhook HMAC secret.
    #[arg(long)]
    webhook: bool,
}

/// Runs `order-listener client …`.
pub(super) fn run(args: ClientArgs) -> anyhow::Result<ExitCode> {
    let path = args.config.context(
        "name the config file with --config FILE (or ORDER_LISTENER_CONFIG): the file that \
         `order-listener serve --config FILE` reads",
    )?;
    match args.command {
        ClientCommand::Add(add_args) => add(&path, *add_args),
        ClientCommand::List(list_args) => list::list(&path, &list_args),
        ClientCommand::Rotate(rotate_args) => rotate::rotate(&path, &rotate_args),
        ClientCommand::Disable(NameArgs { name }) => set_enabled(&path, &name, Enabled::No),
        ClientCommand::Enable(NameArgs { name }) => set_enabled(&path, &name, Enabled::Yes),
        ClientCommand::Remove(NameArgs { name }) => remove(&path, &name),
    }
}

fn parse_webhook_public_key(text: &str) -> Result<WebhookPublicKey, String> {
    text.parse().map_err(|error| match error {
        InvalidKey::NotAPublicKey => "takes the seller's ed25519 public key, whpk_<base64>; for \
                                      an HMAC secret use --webhook, which generates one"
            .to_owned(),
        other => other.to_string(),
    })
}

/// A new secret to print once, with how it is used.
struct NewSecret {
    what: String,
    secret: Secret,
}

/// Prints `lines`, then the new `secrets` once, with how to keep them. Standard output closed
/// before the secrets were written is an error here, not the quiet end it is elsewhere: the
/// file keeps only hashes, so the secrets are lost, and the error says how to make new ones.
fn print_secrets(name: &ClientName, lines: &[String], secrets: &[NewSecret]) -> anyhow::Result<()> {
    match write_secrets(lines, secrets) {
        Err(error) if !secrets.is_empty() && crate::output::is_closed(&error) => bail!(
            "standard output was closed before the new secrets of client {name} were shown, and \
             they are shown only once: run `order-listener client rotate {name}` to make new ones"
        ),
        other => other,
    }
}

fn write_secrets(lines: &[String], secrets: &[NewSecret]) -> anyhow::Result<()> {
    for line in lines {
        outln!("{line}")?;
    }
    if secrets.is_empty() {
        return Ok(());
    }
    outln!()?;
    for NewSecret { what, secret } in secrets {
        outln!("{what}:")?;
        outln!("  {}", secret.expose())?;
    }
    outln!()?;
    outln!(
        "{} shown only now and will not be shown again: keep {} somewhere safe.",
        if secrets.len() == 1 {
            "This secret is"
        } else {
            "These secrets are"
        },
        if secrets.len() == 1 { "it" } else { "them" }
    )?;
    Ok(())
}

fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).context("no randomness for a new secret")?;
    Ok(bytes)
}

/// A random password and its argon2id PHC string.
fn new_password() -> anyhow::Result<(Secret, String)> {
    use argon2::password_hash::PasswordHasher;
    let password = URL_SAFE_NO_PAD.encode(random_bytes::<24>()?);
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .context("cannot hash the new password")?
        .to_string();
    Ok((Secret::new(password), hash))
}

fn rfc3339(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `now + duration`, for `--grace` and `--expires-in`.
fn after(now: DateTime<Utc>, duration: humantime::Duration) -> anyhow::Result<DateTime<Utc>> {
    chrono::Duration::from_std(duration.into())
        .ok()
        .and_then(|duration| now.checked_add_signed(duration))
        .with_context(|| format!("{duration} is too long"))
}

/// The expiry of new credentials, from `--expires-in` or `--expires-at`.
fn new_expiry(
    now: DateTime<Utc>,
    expires_in: Option<humantime::Duration>,
    expires_at: Option<DateTime<Utc>>,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    match (expires_in, expires_at) {
        (Some(duration), _) => after(now, duration).map(Some),
        (None, Some(instant)) if instant <= now => {
            bail!("--expires-at {} is not in the future", rfc3339(instant))
        }
        (None, instant) => Ok(instant),
    }
}

fn api_key_usage(header: Option<&str>) -> String {
    match header {
        Some(header) => format!("send it in the header `{header}: <key>`"),
        None => "send it as `Authorization: Bearer <key>`".to_owned(),
    }
}

fn expiry_note(expires_at: Option<DateTime<Utc>>) -> String {
    expires_at.map_or_else(String::new, |instant| {
        format!(", valid until {}", rfc3339(instant))
    })
}

fn add(path: &Path, args: AddArgs) -> anyhow::Result<ExitCode> {
    let mut file = ConfigFile::open_or_default(path)?;
    let name = &args.name;
    if file
        .client_names()
        .iter()
        .any(|known| known == name.as_str())
    {
        bail!(
            "{} already has a client named {name}; use `order-listener client rotate {name}` \
             for new secrets, or `order-listener client remove {name}` first",
            file.path.display()
        );
    }
    let had_clients = !file.client_names().is_empty();
    let now = Utc::now();
    let expires_at = new_expiry(now, args.expires_in, args.expires_at)?;
    let other_methods = args.basic.is_some()
        || args.webhook
        || !args.webhook_public_key.is_empty()
        || args.jwt_public_key.is_some()
        || args.jwt_jwks.is_some()
        || !args.mtls_subject.is_empty()
        || !args.mtls_san.is_empty();
    let with_api_key = args.api_key || args.api_key_header.is_some() || !other_methods;

    let mut client = Table::new();
    client.decor_mut().set_prefix(format!(
        "\n# Added by `order-listener client add` on {}.\n",
        now.format("%Y-%m-%d")
    ));
    client.insert("enabled", value(true));
    if !args.event_type.is_empty() {
        let names: Vec<&str> = args.event_type.iter().map(|kind| kind.as_str()).collect();
        client.insert("event_types", Item::Value(string_array(&names)));
    }
    if !args.allow_source.is_empty() {
        client.insert(
            "allowed_sources",
            Item::Value(string_array(&args.allow_source)),
        );
    }
    if let Some(per_second) = args.rate {
        // A burst below one request would refuse everything; round the rate up.
        let burst = args
            .burst
            .unwrap_or_else(|| per_second.ceil().clamp(1.0, f64::from(u32::MAX)) as u32);
        let mut rate = InlineTable::new();
        rate.insert("per_second", Value::from(per_second));
        rate.insert("burst", Value::from(i64::from(burst)));
        client.insert("rate_limit", value(rate));
    }

    let mut secrets = Vec::new();
    let mut notes = Vec::new();
    if with_api_key {
        let (key, hash) = generate_key()?;
        let header = args.api_key_header.as_deref();
        let mut keys = ArrayOfTables::new();
        keys.push(api_key_table(&hash, header, expires_at));
        client.insert("api_keys", Item::ArrayOfTables(keys));
        secrets.push(NewSecret {
            what: format!(
                "API key for {name} ({}{})",
                api_key_usage(header),
                expiry_note(expires_at)
            ),
            secret: key,
        });
    }
    if let Some(user) = &args.basic {
        let (password, hash) = new_password()?;
        let mut basic = Table::new();
        basic.insert("user", value(user.as_str()));
        basic.insert("password_hash", value(hash));
        if let Some(expires_at) = expires_at {
            basic.insert("expires_at", value(rfc3339(expires_at)));
        }
        client.insert("basic", Item::Table(basic));
        secrets.push(NewSecret {
            what: format!(
                "HTTP Basic password for user {user}{}",
                expiry_note(expires_at)
            ),
            secret: password,
        });
    }
    if let Some(jwt_settings) = jwt_table(&args)? {
        client.insert("jwt", Item::Table(jwt_settings));
    }
    if !args.mtls_subject.is_empty() || !args.mtls_san.is_empty() {
        let mut mtls = Table::new();
        if !args.mtls_subject.is_empty() {
            mtls.insert("subjects", Item::Value(string_array(&args.mtls_subject)));
        }
        if !args.mtls_san.is_empty() {
            mtls.insert("sans", Item::Value(string_array(&args.mtls_san)));
        }
        client.insert("mtls", Item::Table(mtls));
    }
    if args.webhook || !args.webhook_public_key.is_empty() {
        let mut keys = Vec::new();
        if args.webhook {
            let secret = WebhookSecret::generate().context("no randomness for a new secret")?;
            keys.push(secret.expose().to_owned());
            secrets.push(NewSecret {
                what: format!(
                    "webhook secret for {name} (the seller signs with it, as Standard Webhooks \
                     webhook-signature v1)"
                ),
                secret: Secret::new(secret.expose()),
            });
            notes.push(format!(
                "{} now holds the webhook secret itself, as HMAC needs it: it is written with \
                 mode 0600; keep it that way.",
                file.path.display()
            ));
        }
        keys.extend(
            args.webhook_public_key
                .iter()
                .map(|key| key.as_str().to_owned()),
        );
        let mut webhook = Table::new();
        webhook.insert("keys", Item::Value(string_array(&keys)));
        client.insert("webhook", Item::Table(webhook));
    }

    file.place_new_client(&mut client);
    file.clients_for_insert()?
        .insert(name.as_str(), Item::Table(client));
    let config = file.save()?;

    let mut lines = Vec::new();
    if file.created {
        lines.push(format!(
            "created {} from the default configuration (the file `order-listener init` writes); \
             start the listener with `order-listener serve --config {}`",
            file.path.display(),
            file.path.display()
        ));
    }
    lines.push(format!("added client {name} to {}", file.path.display()));
    print_secrets(name, &lines, &secrets)?;
    for note in notes {
        outln!("{note}")?;
    }
    let generated_key = config.data_dir.join("credentials").join("api-key.sha256");
    if !had_clients && generated_key.exists() {
        outln!(
            "The key generated at the first start (client `default`, {}) is no longer accepted \
             now that clients are configured.",
            generated_key.display()
        )?;
    }
    outln!("{APPLY}")?;
    Ok(ExitCode::SUCCESS)
}

/// `[clients.NAME.jwt]` from the flags; key files are written as absolute paths, as the file
/// resolves relative ones against its own directory.
fn jwt_table(args: &AddArgs) -> anyhow::Result<Option<Table>> {
    if args.jwt_public_key.is_none() && args.jwt_jwks.is_none() {
        return Ok(None);
    }
    let absolute = |path: &Path, flag: &str| -> anyhow::Result<String> {
        let resolved = fs::canonicalize(path)
            .with_context(|| format!("{flag} {}: cannot find the file", path.display()))?;
        resolved
            .to_str()
            .map(str::to_owned)
            .with_context(|| format!("{flag} {}: the path is not UTF-8", path.display()))
    };
    let mut jwt = Table::new();
    if let Some(path) = &args.jwt_public_key {
        jwt.insert(
            "public_key_file",
            value(absolute(path, "--jwt-public-key")?),
        );
    }
    if let Some(path) = &args.jwt_jwks {
        jwt.insert("jwks_file", value(absolute(path, "--jwt-jwks")?));
    }
    if !args.jwt_issuer.is_empty() {
        jwt.insert("issuer", Item::Value(string_array(&args.jwt_issuer)));
    }
    if !args.jwt_audience.is_empty() {
        jwt.insert("audience", Item::Value(string_array(&args.jwt_audience)));
    }
    Ok(Some(jwt))
}

/// Whether a client is to be enabled or disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Enabled {
    Yes,
    No,
}

fn set_enabled(path: &Path, name: &ClientName, wanted: Enabled) -> anyhow::Result<ExitCode> {
    let mut file = ConfigFile::open(path)?;
    let enable = wanted == Enabled::Yes;
    let client = file.client_mut(name)?;
    let current = client
        .get("enabled")
        .and_then(Item::as_bool)
        .unwrap_or(true);
    let word = if enable { "enabled" } else { "disabled" };
    if current == enable {
        outln!("client {name} is already {word}; nothing changed")?;
        return Ok(ExitCode::SUCCESS);
    }
    set_value(client, "enabled", Value::from(enable));
    file.save()?;
    outln!("client {name} is now {word} in {}", file.path.display())?;
    outln!("{APPLY}")?;
    Ok(ExitCode::SUCCESS)
}

fn remove(path: &Path, name: &ClientName) -> anyhow::Result<ExitCode> {
    let mut file = ConfigFile::open(path)?;
    file.remove_client(name)?;
    file.save()?;
    outln!(
        "removed client {name} and its credentials from {}",
        file.path.display()
    )?;
    outln!("{APPLY}")?;
    Ok(ExitCode::SUCCESS)
}
