//! `order-listener client add|list|rotate|disable|enable|remove`: the senders under
//! `[clients.NAME]` of the config file, edited with `toml_edit` so that the rest of the file
//! keeps its comments and layout.
//!
//! New secrets are printed once. The file keeps a hash wherever a hash suffices (an API key's
//! SHA-256, a Basic password's argon2id); only a Standard Webhooks HMAC secret is kept as it is,
//! because verifying needs it. Every edit is checked by loading the result as `serve` would,
//! and written atomically with mode 0600, so a broken file is never left behind.
//!
//! This module does not talk to a running listener: `serve` reads its clients at start.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{ArgGroup, Args, Subcommand};
use comfy_table::{Table as TextTable, presets::UTF8_FULL_CONDENSED};
use serde::Deserialize;
use serde_json::json;
use toml_edit::{
    Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, TableLike, Value, value,
};

use crate::config::clients::{ClientName, ClientSettings};
use crate::config::{self, Config, Overrides, Secret};
use crate::domain::envelope::EventType;
use crate::http::auth::generated::generate_key;

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
    webhook_public_key: Vec<String>,
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
        ClientCommand::List(list_args) => list(&path, &list_args),
        ClientCommand::Rotate(rotate_args) => rotate(&path, &rotate_args),
        ClientCommand::Disable(NameArgs { name }) => set_enabled(&path, &name, Enabled::No),
        ClientCommand::Enable(NameArgs { name }) => set_enabled(&path, &name, Enabled::Yes),
        ClientCommand::Remove(NameArgs { name }) => remove(&path, &name),
    }
}

fn parse_webhook_public_key(text: &str) -> Result<String, String> {
    if !text.starts_with("whpk_") {
        return Err(
            "takes the seller's ed25519 public key, whpk_<base64>; for an HMAC secret use \
             --webhook, which generates one"
                .into(),
        );
    }
    text.parse::<crate::http::auth::signature::VerifyingKey>()
        .map_err(|error| error.to_string())?;
    Ok(text.to_owned())
}

/// A new secret to print once, with how it is used.
struct NewSecret {
    what: String,
    secret: Secret,
}

fn print_secrets(secrets: &[NewSecret]) {
    if secrets.is_empty() {
        return;
    }
    println!();
    for NewSecret { what, secret } in secrets {
        println!("{what}:");
        println!("  {}", secret.expose());
    }
    println!();
    println!(
        "{} shown only now and will not be shown again: keep {} somewhere safe.",
        if secrets.len() == 1 {
            "This secret is"
        } else {
            "These secrets are"
        },
        if secrets.len() == 1 { "it" } else { "them" }
    );
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

/// A Standard Webhooks HMAC secret: `whsec_` and base64 of 32 random bytes.
fn new_webhook_secret() -> anyhow::Result<Secret> {
    Ok(Secret::new(format!(
        "whsec_{}",
        STANDARD.encode(random_bytes::<32>()?)
    )))
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

fn string_array<S: AsRef<str>>(items: &[S]) -> Value {
    Value::Array(items.iter().map(AsRef::as_ref).collect::<Array>())
}

/// Sets `key` to `new`, keeping the comments around an existing value.
fn set_value(table: &mut dyn TableLike, key: &str, mut new: Value) {
    match table.get_mut(key).and_then(Item::as_value_mut) {
        Some(old) => {
            *new.decor_mut() = old.decor().clone();
            *old = new;
        }
        None => {
            table.insert(key, Item::Value(new));
        }
    }
}

/// An `expires_at` as written: an RFC 3339 string (or a TOML date-time).
fn read_expiry(table: &dyn TableLike) -> anyhow::Result<Option<DateTime<Utc>>> {
    let Some(item) = table.get("expires_at") else {
        return Ok(None);
    };
    let text = match item.as_value() {
        Some(Value::String(text)) => text.value().clone(),
        Some(Value::Datetime(datetime)) => datetime.value().to_string(),
        _ => bail!("expires_at must be an RFC 3339 date-time, as \"2030-01-01T00:00:00Z\""),
    };
    let instant = DateTime::parse_from_rfc3339(&text)
        .with_context(|| format!("expires_at {text:?} is not an RFC 3339 date-time"))?;
    Ok(Some(instant.with_timezone(&Utc)))
}

/// The config file, parsed for editing.
struct ConfigFile {
    /// The path as the user gave it, for messages.
    path: PathBuf,
    /// The file that is replaced: the path with symbolic links resolved.
    target: PathBuf,
    document: DocumentMut,
    created: bool,
}

impl ConfigFile {
    /// Opens an existing file; says how to create one if there is none.
    fn open(path: &Path) -> anyhow::Result<ConfigFile> {
        if !path.exists() {
            bail!(
                "{path} does not exist: create it with `order-listener client add NAME --config \
                 {path}`, or `order-listener init --config {path}` for a commented default file",
                path = path.display()
            );
        }
        // Edit the file a symbolic link points to, not the link.
        let target = fs::canonicalize(path)
            .with_context(|| format!("cannot resolve the path {}", path.display()))?;
        let text = fs::read_to_string(&target)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        let document = text
            .parse::<DocumentMut>()
            .with_context(|| format!("the config file {} is not valid TOML", path.display()))?;
        Ok(ConfigFile {
            path: path.to_path_buf(),
            target,
            document,
            created: false,
        })
    }

    /// Opens the file, or starts from the default configuration if there is none (written only
    /// with the first successful edit).
    fn open_or_default(path: &Path) -> anyhow::Result<ConfigFile> {
        if path.exists() {
            return ConfigFile::open(path);
        }
        let document = config::DEFAULT_CONFIG
            .parse::<DocumentMut>()
            .context("the built-in default configuration is valid TOML")?;
        Ok(ConfigFile {
            path: path.to_path_buf(),
            target: path.to_path_buf(),
            document,
            created: true,
        })
    }

    fn client_names(&self) -> Vec<String> {
        self.document
            .get("clients")
            .and_then(Item::as_table_like)
            .map(|clients| clients.iter().map(|(name, _)| name.to_owned()).collect())
            .unwrap_or_default()
    }

    fn unknown_client(&self, name: &ClientName) -> anyhow::Error {
        let known = self.client_names();
        if known.is_empty() {
            anyhow::anyhow!(
                "{} has no clients; add one with `order-listener client add {name}`",
                self.path.display()
            )
        } else {
            anyhow::anyhow!(
                "{} has no client named {name}; its clients are: {}",
                self.path.display(),
                known.join(", ")
            )
        }
    }

    fn client_mut(&mut self, name: &ClientName) -> anyhow::Result<&mut dyn TableLike> {
        let exists = self
            .document
            .get("clients")
            .and_then(Item::as_table_like)
            .and_then(|clients| clients.get(name.as_str()))
            .is_some_and(Item::is_table_like);
        if !exists {
            return Err(self.unknown_client(name));
        }
        self.document
            .get_mut("clients")
            .and_then(Item::as_table_like_mut)
            .and_then(|clients| clients.get_mut(name.as_str()))
            .and_then(Item::as_table_like_mut)
            .context("the client table was just found")
    }

    /// The `[clients]` table, created if missing, for a new `[clients.NAME]`.
    fn clients_for_insert(&mut self) -> anyhow::Result<&mut Table> {
        let path = self.path.display().to_string();
        self.document
            .as_table_mut()
            .entry("clients")
            .or_insert_with(|| {
                let mut clients = Table::new();
                // No `[clients]` header of its own: only the `[clients.NAME]` tables show.
                clients.set_implicit(true);
                Item::Table(clients)
            })
            .as_table_mut()
            .with_context(|| {
                format!(
                    "`clients` in {path} is not written as [clients.NAME] tables; write it that \
                     way to let `order-listener client` edit it"
                )
            })
    }

    /// Gives a new client's tables their place: after the last client, or at the end of the
    /// file. Comments after the last table of a file belong to that table's body, so when the
    /// new client becomes the last table they move above its header instead of under it.
    fn place_new_client(&mut self, client: &mut Table) {
        let mut all = Vec::new();
        table_positions(self.document.as_table(), &mut all);
        let mut clients = Vec::new();
        if let Some(Item::Table(table)) = self.document.get("clients") {
            if !table.is_implicit()
                && let Some(position) = table.position()
            {
                clients.push(position);
            }
            table_positions(table, &mut clients);
        }
        let last = all.iter().copied().max().unwrap_or(0);
        match clients.iter().copied().max() {
            // Equal positions keep the order of the document, where the new client comes
            // after the others.
            Some(last_client) if last_client < last => set_positions(client, last_client),
            _ => {
                set_positions(client, last + 1);
                let trailing = self
                    .document
                    .trailing()
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if !trailing.trim().is_empty() {
                    let mut prefix = trailing;
                    if !prefix.ends_with('\n') {
                        prefix.push('\n');
                    }
                    prefix.push_str(
                        client
                            .decor()
                            .prefix()
                            .and_then(|raw| raw.as_str())
                            .unwrap_or_default(),
                    );
                    client.decor_mut().set_prefix(prefix);
                    self.document.set_trailing("");
                }
            }
        }
    }

    /// Removes a client. The comments above its header that a blank line separates from it
    /// belong to what precedes it (such as the commented keys of `[tls]`), so they stay.
    fn remove_client(&mut self, name: &ClientName) -> anyhow::Result<()> {
        self.client_mut(name)?;
        let clients = self
            .document
            .get_mut("clients")
            .and_then(Item::as_table_like_mut)
            .context("the clients were just found")?;
        let removed = clients
            .remove(name.as_str())
            .context("the client was just found")?;
        if clients.is_empty()
            && let Some(Item::Table(table)) = self.document.get("clients")
            && table.is_implicit()
        {
            self.document.remove("clients");
        }
        let Item::Table(removed) = removed else {
            return Ok(());
        };
        let mut headers = Vec::new();
        if let Some(position) = removed.position() {
            headers.push((position, &removed));
        }
        table_headers(&removed, &mut headers);
        let Some(&(first, first_table)) = headers.iter().min_by_key(|(position, _)| *position)
        else {
            return Ok(());
        };
        let last_removed = headers
            .iter()
            .map(|(position, _)| *position)
            .max()
            .unwrap_or(first);
        let prefix = first_table
            .decor()
            .prefix()
            .and_then(|raw| raw.as_str())
            .unwrap_or_default();
        let kept = comments_of_the_preceding_table(prefix);
        if kept.trim().is_empty() {
            return Ok(());
        }
        let mut remaining = Vec::new();
        table_positions(self.document.as_table(), &mut remaining);
        let next = remaining
            .into_iter()
            .filter(|position| *position > last_removed)
            .min();
        match next.and_then(|position| table_at_mut(self.document.as_table_mut(), position)) {
            Some(table) => {
                let own = table
                    .decor()
                    .prefix()
                    .and_then(|raw| raw.as_str())
                    .unwrap_or_default()
                    .to_owned();
                table.decor_mut().set_prefix(format!("{kept}{own}"));
            }
            None => {
                let trailing = self
                    .document
                    .trailing()
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                self.document.set_trailing(format!("{kept}{trailing}"));
            }
        }
        Ok(())
    }

    /// Checks the edited text by loading it as `serve` would, then replaces the file
    /// atomically, readable by its owner only. Returns the loaded configuration.
    fn save(&self) -> anyhow::Result<Config> {
        let text = self.document.to_string();
        let dir = match self.target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
        let file_name = self
            .target
            .file_name()
            .with_context(|| format!("{} is not a file name", self.path.display()))?
            .to_string_lossy()
            .into_owned();
        let temporary = TemporaryFile::create(&dir, &file_name, text.as_bytes())?;
        let config = match Config::load(Some(&temporary.path), &Overrides::default()) {
            Ok(config) => config,
            Err(error) => {
                // Name the real file, not the temporary one, in the message.
                let message = format!("{error:#}").replace(
                    &temporary.path.display().to_string(),
                    &self.path.display().to_string(),
                );
                let loads_now = !self.created
                    && Config::load(Some(&self.target), &Overrides::default()).is_ok();
                if self.created || loads_now {
                    bail!(
                        "nothing was written: with this change {} would not load: {message}",
                        self.path.display()
                    );
                }
                bail!(
                    "nothing was written: {} does not load even before this change; fix it \
                     first: {message}",
                    self.path.display()
                );
            }
        };
        temporary.persist(&self.target)?;
        Ok(config)
    }
}

/// The positions of the tables under `table` (not its own).
fn table_positions(table: &Table, positions: &mut Vec<isize>) {
    let mut headers = Vec::new();
    table_headers(table, &mut headers);
    positions.extend(headers.into_iter().map(|(position, _)| position));
}

/// The tables under `table` (not itself) that have a place in the document, with it.
fn table_headers<'a>(table: &'a Table, headers: &mut Vec<(isize, &'a Table)>) {
    for (_, item) in table.iter() {
        let children: Vec<&Table> = match item {
            Item::Table(child) => vec![child],
            Item::ArrayOfTables(array) => array.iter().collect(),
            _ => continue,
        };
        for child in children {
            if let Some(position) = child.position() {
                headers.push((position, child));
            }
            table_headers(child, headers);
        }
    }
}

/// The table under `table` at this place in the document.
fn table_at_mut(table: &mut Table, position: isize) -> Option<&mut Table> {
    for (_, item) in table.iter_mut() {
        let children: Vec<&mut Table> = match item {
            Item::Table(child) => vec![child],
            Item::ArrayOfTables(array) => array.iter_mut().collect(),
            _ => continue,
        };
        for child in children {
            if child.position() == Some(position) {
                return Some(child);
            }
            if let Some(found) = table_at_mut(child, position) {
                return Some(found);
            }
        }
    }
    None
}

/// Puts `table` and the tables under it at one place in the document; they keep their order.
fn set_positions(table: &mut Table, position: isize) {
    table.set_position(Some(position));
    for (_, item) in table.iter_mut() {
        match item {
            Item::Table(child) => set_positions(child, position),
            Item::ArrayOfTables(array) => {
                for child in array.iter_mut() {
                    set_positions(child, position);
                }
            }
            _ => {}
        }
    }
}

/// Of the text above a table header, the part before its last blank line: the comments that
/// end the table before it, not the ones that describe this one.
fn comments_of_the_preceding_table(prefix: &str) -> String {
    let lines: Vec<&str> = prefix.split_inclusive('\n').collect();
    match lines.iter().rposition(|line| line.trim().is_empty()) {
        Some(blank) => lines[..blank].concat(),
        None => String::new(),
    }
}

/// A file next to the config file that is removed unless it replaces it.
struct TemporaryFile {
    path: PathBuf,
    persisted: bool,
}

impl TemporaryFile {
    fn create(dir: &Path, file_name: &str, contents: &[u8]) -> anyhow::Result<TemporaryFile> {
        let suffix = hex::encode(random_bytes::<6>()?);
        let path = dir.join(format!(".{file_name}.{suffix}.tmp"));
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let temporary = TemporaryFile {
            path,
            persisted: false,
        };
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", temporary.path.display()))?;
        Ok(temporary)
    }

    fn persist(mut self, target: &Path) -> anyhow::Result<()> {
        fs::rename(&self.path, target)
            .with_context(|| format!("cannot replace {}", target.display()))?;
        self.persisted = true;
        // Make the rename itself durable; the file is complete either way, so a failure here
        // is not worth an error.
        #[cfg(unix)]
        if let Some(dir) = target.parent().filter(|dir| !dir.as_os_str().is_empty())
            && let Ok(dir) = fs::File::open(dir)
        {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn api_key_table(
    hash: &[u8; 32],
    header: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
) -> Table {
    let mut key = Table::new();
    key.insert("hash", value(format!("sha256:{}", hex::encode(hash))));
    if let Some(header) = header {
        key.insert("header", value(header));
    }
    if let Some(expires_at) = expires_at {
        key.insert("expires_at", value(rfc3339(expires_at)));
    }
    key
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
            let secret = new_webhook_secret()?;
            keys.push(secret.expose().to_owned());
            secrets.push(NewSecret {
                what: format!(
                    "webhook secret for {name} (the seller signs with it, as Standard Webhooks \
                     webhook-signature v1)"
                ),
                secret,
            });
            notes.push(format!(
                "{} now holds the webhook secret itself, as HMAC needs it: it is written with \
                 mode 0600; keep it that way.",
                file.path.display()
            ));
        }
        keys.extend(args.webhook_public_key.iter().cloned());
        let mut webhook = Table::new();
        webhook.insert("keys", Item::Value(string_array(&keys)));
        client.insert("webhook", Item::Table(webhook));
    }

    file.place_new_client(&mut client);
    file.clients_for_insert()?
        .insert(name.as_str(), Item::Table(client));
    let config = file.save()?;

    if file.created {
        println!(
            "created {} from the default configuration (the file `order-listener init` writes); \
             start the listener with `order-listener serve --config {}`",
            file.path.display(),
            file.path.display()
        );
    }
    println!("added client {name} to {}", file.path.display());
    print_secrets(&secrets);
    for note in notes {
        println!("{note}");
    }
    let generated_key = config.data_dir.join("credentials").join("api-key.sha256");
    if !had_clients && generated_key.exists() {
        println!(
            "The key generated at the first start (client `default`, {}) is no longer accepted \
             now that clients are configured.",
            generated_key.display()
        );
    }
    println!("{APPLY}");
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

/// Only the `[clients]` of the file, read as `serve` reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ClientsOnly {
    clients: BTreeMap<String, ClientSettings>,
}

fn list(path: &Path, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let file = ConfigFile::open(path)?;
    let clients: ClientsOnly = toml::from_str(&file.document.to_string())
        .with_context(|| format!("the clients in {} are not valid", file.path.display()))?;
    let now = Utc::now();
    let rows: Vec<ClientSummary> = clients
        .clients
        .iter()
        .map(|(name, settings)| ClientSummary::new(name, settings, now))
        .collect();
    if args.json {
        let entries: Vec<serde_json::Value> = rows.iter().map(ClientSummary::to_json).collect();
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!(
            "{} has no clients; add one with `order-listener client add NAME`",
            file.path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = TextTable::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header([
        "client",
        "enabled",
        "methods",
        "event types",
        "sources",
        "rate",
        "next expiry",
    ]);
    for row in &rows {
        table.add_row(vec![
            row.name.clone(),
            if row.settings.enabled { "yes" } else { "no" }.to_owned(),
            row.methods.join("\n"),
            if row.settings.event_types.is_empty() {
                "all".to_owned()
            } else {
                row.settings.event_types.join("\n")
            },
            if row.settings.allowed_sources.is_empty() {
                "any".to_owned()
            } else {
                row.settings.allowed_sources.join("\n")
            },
            row.settings.rate_limit.map_or_else(
                || "-".to_owned(),
                |rate| format!("{}/s, burst {}", rate.per_second, rate.burst),
            ),
            row.next_expiry.map_or_else(|| "-".to_owned(), rfc3339),
        ]);
    }
    println!("{table}");
    println!(
        "{} client{} in {}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        file.path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What `client list` shows of one client: no secret, no hash.
struct ClientSummary<'a> {
    name: String,
    settings: &'a ClientSettings,
    methods: Vec<String>,
    /// The earliest expiry still to come among API keys and the Basic password.
    next_expiry: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

impl<'a> ClientSummary<'a> {
    fn new(name: &str, settings: &'a ClientSettings, now: DateTime<Utc>) -> Self {
        let mut methods = Vec::new();
        let expired = |expires_at: Option<DateTime<Utc>>| expires_at.is_some_and(|at| at <= now);
        if !settings.api_keys.is_empty() {
            let count = settings.api_keys.len();
            let expired_count = settings
                .api_keys
                .iter()
                .filter(|key| expired(key.expires_at))
                .count();
            let mut method = if count == 1 {
                "api-key".to_owned()
            } else {
                format!("api-key ×{count}")
            };
            if expired_count > 0 {
                let _ = write!(method, " ({expired_count} expired)");
            }
            methods.push(method);
        }
        if let Some(basic) = &settings.basic {
            let mut method = format!("basic ({})", basic.user);
            if expired(basic.expires_at) {
                method.push_str(" expired");
            }
            methods.push(method);
        }
        if settings.jwt.is_some() {
            methods.push("jwt".to_owned());
        }
        if settings.mtls.is_some() {
            methods.push("mtls".to_owned());
        }
        if let Some(webhook) = &settings.webhook {
            let hmac = webhook
                .keys
                .iter()
                .filter(|key| key.expose().starts_with("whsec_"))
                .count();
            let ed25519 = webhook.keys.len() - hmac;
            let kinds: Vec<String> = [(hmac, "hmac"), (ed25519, "ed25519")]
                .into_iter()
                .filter(|(count, _)| *count > 0)
                .map(|(count, kind)| {
                    if count == 1 {
                        kind.to_owned()
                    } else {
                        format!("{kind} ×{count}")
                    }
                })
                .collect();
            methods.push(format!("webhook ({})", kinds.join(", ")));
        }
        let next_expiry = settings
            .api_keys
            .iter()
            .map(|key| key.expires_at)
            .chain(settings.basic.iter().map(|basic| basic.expires_at))
            .flatten()
            .filter(|at| *at > now)
            .min();
        ClientSummary {
            name: name.to_owned(),
            settings,
            methods,
            next_expiry,
            now,
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let settings = self.settings;
        json!({
            "name": self.name,
            "enabled": settings.enabled,
            "methods": self.methods,
            "apiKeys": settings.api_keys.iter().map(|key| json!({
                "header": key.header,
                "expiresAt": key.expires_at.map(rfc3339),
                "expired": key.expires_at.is_some_and(|at| at <= self.now),
            })).collect::<Vec<_>>(),
            "basicUser": settings.basic.as_ref().map(|basic| basic.user.as_str()),
            "eventTypes": settings.event_types,
            "allowedSources": settings.allowed_sources,
            "rateLimit": settings.rate_limit.map(|rate| json!({
                "perSecond": rate.per_second,
                "burst": rate.burst,
            })),
            "nextExpiry": self.next_expiry.map(rfc3339),
        })
    }
}

/// What a rotation made, and what it has to say.
#[derive(Default)]
struct Rotation {
    secrets: Vec<NewSecret>,
    notes: Vec<String>,
    /// Asked-for methods the client does not have.
    missing: Vec<&'static str>,
    /// Methods whose keys the client holds; they are not rotated here.
    held_by_client: Vec<&'static str>,
}

/// When old secrets stop working, and when new ones do.
struct Timing {
    now: DateTime<Utc>,
    grace_end: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

impl Timing {
    fn revokes_now(&self) -> bool {
        self.grace_end <= self.now
    }
}

fn rotate(path: &Path, args: &RotateArgs) -> anyhow::Result<ExitCode> {
    let mut file = ConfigFile::open(path)?;
    let name = &args.name;
    let now = Utc::now();
    let timing = Timing {
        now,
        grace_end: after(now, args.grace)?,
        expires_at: new_expiry(now, args.expires_in, args.expires_at)?,
    };
    let every_method = !(args.api_key || args.basic || args.webhook);
    let file_path = file.path.display().to_string();
    let client = file.client_mut(name)?;

    let mut rotation = Rotation::default();
    if args.api_key || every_method {
        rotate_api_keys_of(client, name, &timing, &mut rotation)
            .with_context(|| format!("in [clients.{name}] api_keys of {file_path}"))?;
    }
    if args.basic || every_method {
        rotate_basic_of(client, name, &timing, &mut rotation)?;
    }
    if args.webhook || every_method {
        rotate_webhook_of(client, name, &timing, &file_path, &mut rotation)?;
    }
    if client.contains_key("jwt") {
        rotation.held_by_client.push("jwt");
    }
    if client.contains_key("mtls") {
        rotation.held_by_client.push("mtls");
    }

    let Rotation {
        secrets,
        notes,
        missing,
        held_by_client,
    } = rotation;
    if secrets.is_empty() || (!every_method && !missing.is_empty()) {
        let what = if every_method {
            "no API key, Basic password or webhook secret".to_owned()
        } else {
            format!("no {}", missing.join(", no "))
        };
        bail!(
            "client {name} has {what} to rotate{}",
            if held_by_client.is_empty() {
                String::new()
            } else {
                format!(
                    "; its {} credentials use keys that the client holds: replace them in \
                     {file_path} when the client changes them",
                    held_by_client.join(", ")
                )
            }
        );
    }
    file.save()?;

    println!("rotated the secrets of client {name} in {file_path}");
    print_secrets(&secrets);
    for note in notes {
        println!("{note}");
    }
    if !held_by_client.is_empty() {
        println!(
            "Not rotated here: {} (keys that the client holds; replace them in the file when \
             the client changes them).",
            held_by_client.join(", ")
        );
    }
    println!("{APPLY}");
    Ok(ExitCode::SUCCESS)
}

fn rotate_api_keys_of(
    client: &mut dyn TableLike,
    name: &ClientName,
    timing: &Timing,
    rotation: &mut Rotation,
) -> anyhow::Result<()> {
    let Some(keys) = client.get_mut("api_keys") else {
        rotation.missing.push("API key");
        return Ok(());
    };
    let rotated = rotate_api_keys(keys, timing.grace_end, timing.expires_at)?;
    rotation.secrets.push(NewSecret {
        what: format!(
            "new API key for {name} ({}{})",
            api_key_usage(rotated.header.as_deref()),
            expiry_note(timing.expires_at)
        ),
        secret: rotated.key,
    });
    let old = rotated.old_keys;
    if old == 0 {
        return Ok(());
    }
    rotation.notes.push(if timing.revokes_now() {
        format!(
            "The {old} old API key{} of {name} {} refused from now on.",
            plural(old),
            if old == 1 { "is" } else { "are" }
        )
    } else {
        format!(
            "The old API key{} of {name} keep{} working until {} at the latest.",
            plural(old),
            if old == 1 { "s" } else { "" },
            rfc3339(timing.grace_end)
        )
    });
    Ok(())
}

/// Replaces the password hash: Basic has one password, so there is no grace.
fn rotate_basic_of(
    client: &mut dyn TableLike,
    name: &ClientName,
    timing: &Timing,
    rotation: &mut Rotation,
) -> anyhow::Result<()> {
    let Some(basic) = client.get_mut("basic").and_then(Item::as_table_like_mut) else {
        rotation.missing.push("Basic password");
        return Ok(());
    };
    let user = basic
        .get("user")
        .and_then(Item::as_str)
        .unwrap_or("?")
        .to_owned();
    let (password, hash) = new_password()?;
    set_value(basic, "password_hash", Value::from(hash));
    match timing.expires_at {
        Some(instant) => set_value(basic, "expires_at", Value::from(rfc3339(instant))),
        None => {
            basic.remove("expires_at");
        }
    }
    rotation.secrets.push(NewSecret {
        what: format!(
            "new HTTP Basic password for user {user}{}",
            expiry_note(timing.expires_at)
        ),
        secret: password,
    });
    rotation.notes.push(format!(
        "The old Basic password of {name} is replaced: it stops working when `serve` reloads (SIGHUP) or restarts."
    ));
    Ok(())
}

/// Puts a new HMAC secret first; the old ones go only with `--grace 0s`, as a secret has no
/// expiry to set.
fn rotate_webhook_of(
    client: &mut dyn TableLike,
    name: &ClientName,
    timing: &Timing,
    file_path: &str,
    rotation: &mut Rotation,
) -> anyhow::Result<()> {
    let Some(keys) = client
        .get_mut("webhook")
        .and_then(Item::as_table_like_mut)
        .and_then(|webhook| webhook.get_mut("keys"))
        .and_then(Item::as_array_mut)
    else {
        rotation.missing.push("webhook secret");
        return Ok(());
    };
    let is_hmac = |key: &Value| key.as_str().is_some_and(|text| text.starts_with("whsec_"));
    if keys.iter().any(|key| !is_hmac(key)) {
        rotation.held_by_client.push("webhook ed25519 (whpk_)");
    }
    let old = keys.iter().filter(|key| is_hmac(key)).count();
    if old == 0 {
        rotation.missing.push("webhook secret");
        return Ok(());
    }
    if timing.revokes_now() {
        keys.retain(|key| !is_hmac(key));
    }
    let secret = new_webhook_secret()?;
    keys.insert(0, secret.expose());
    rotation.secrets.push(NewSecret {
        what: format!("new webhook secret for {name} (the seller signs with it)"),
        secret,
    });
    rotation.notes.push(if timing.revokes_now() {
        format!(
            "The old webhook secret{} of {name} {} removed.",
            plural(old),
            if old == 1 { "is" } else { "are" }
        )
    } else {
        format!(
            "The old webhook secret{s} of {name} still verif{y} until you remove {them} from \
             webhook.keys in {file_path} (or rotate again with --grace 0s), once the seller \
             signs with the new one.",
            s = plural(old),
            y = if old == 1 { "ies" } else { "y" },
            them = if old == 1 { "it" } else { "them" },
        )
    });
    rotation.notes.push(format!(
        "{file_path} holds the webhook secret itself, as HMAC needs it: it is written with mode \
         0600; keep it that way."
    ));
    Ok(())
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// The outcome of rotating a client's API keys.
struct RotatedKeys {
    key: Secret,
    header: Option<String>,
    /// How many keys were there before.
    old_keys: usize,
}

/// Makes the existing keys expire by `grace_end` (keeping earlier expiries) and appends a new
/// key with the header of the newest one.
fn rotate_api_keys(
    keys: &mut Item,
    grace_end: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> anyhow::Result<RotatedKeys> {
    let limit = |entry: &mut dyn TableLike| -> anyhow::Result<Option<String>> {
        let current = read_expiry(entry)?;
        if current.is_none_or(|at| at > grace_end) {
            set_value(entry, "expires_at", Value::from(rfc3339(grace_end)));
        }
        Ok(entry
            .get("header")
            .and_then(Item::as_str)
            .map(str::to_owned))
    };
    let (key, hash) = generate_key()?;
    let mut header = None;
    let old_keys;
    match keys {
        Item::ArrayOfTables(tables) => {
            old_keys = tables.len();
            for entry in tables.iter_mut() {
                header = limit(entry)?;
            }
            tables.push(api_key_table(&hash, header.as_deref(), expires_at));
        }
        Item::Value(Value::Array(array)) => {
            old_keys = array.len();
            for entry in array.iter_mut() {
                let entry = entry
                    .as_inline_table_mut()
                    .context("api_keys must be tables with a hash")?;
                header = limit(entry)?;
            }
            let table = api_key_table(&hash, header.as_deref(), expires_at);
            array.push(table.into_inline_table());
        }
        _ => bail!("api_keys must be a list of tables, as [[clients.NAME.api_keys]]"),
    }
    Ok(RotatedKeys {
        key,
        header,
        old_keys,
    })
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
        println!("client {name} is already {word}; nothing changed");
        return Ok(ExitCode::SUCCESS);
    }
    set_value(client, "enabled", Value::from(enable));
    file.save()?;
    println!("client {name} is now {word} in {}", file.path.display());
    println!("{APPLY}");
    Ok(ExitCode::SUCCESS)
}

fn remove(path: &Path, name: &ClientName) -> anyhow::Result<ExitCode> {
    let mut file = ConfigFile::open(path)?;
    file.remove_client(name)?;
    file.save()?;
    println!(
        "removed client {name} and its credentials from {}",
        file.path.display()
    );
    println!("{APPLY}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotating_limits_old_keys_to_the_grace_but_keeps_earlier_expiries() {
        let mut document: DocumentMut = "[[clients.a.api_keys]]\nhash = \"sha256:00\"\n\
             header = \"X-Key\"\n\n[[clients.a.api_keys]]\nhash = \"sha256:11\"\n\
             expires_at = \"2000-01-01T00:00:00Z\"\n"
            .parse()
            .unwrap();
        let grace_end = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let keys = document["clients"]["a"].get_mut("api_keys").unwrap();
        let rotated = rotate_api_keys(keys, grace_end, None).unwrap();
        assert_eq!(rotated.old_keys, 2);
        // The newest key had no header, so neither has the new one.
        assert_eq!(rotated.header, None);
        let keys = document["clients"]["a"]["api_keys"]
            .as_array_of_tables()
            .unwrap();
        let expiries: Vec<Option<&str>> = keys
            .iter()
            .map(|key| key.get("expires_at").and_then(Item::as_str))
            .collect();
        assert_eq!(
            expiries,
            vec![
                Some("2030-01-01T00:00:00Z"),
                Some("2000-01-01T00:00:00Z"),
                None
            ]
        );
    }

    #[test]
    fn inline_api_keys_are_rotated_in_their_own_form() {
        let mut document: DocumentMut =
            "[clients.a]\napi_keys = [{ hash = \"sha256:00\", header = \"X-Key\" }]\n"
                .parse()
                .unwrap();
        let grace_end = Utc::now();
        let keys = document["clients"]["a"].get_mut("api_keys").unwrap();
        let rotated = rotate_api_keys(keys, grace_end, None).unwrap();
        assert_eq!(rotated.header.as_deref(), Some("X-Key"));
        let keys = document["clients"]["a"]["api_keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
    }

    #[test]
    fn set_value_keeps_a_trailing_comment() {
        let mut document: DocumentMut = "[clients.a]\nenabled = true # on for now\n"
            .parse()
            .unwrap();
        let client = document["clients"]["a"].as_table_like_mut().unwrap();
        set_value(client, "enabled", Value::from(false));
        assert_eq!(
            document.to_string(),
            "[clients.a]\nenabled = false # on for now\n"
        );
    }

    #[test]
    fn new_webhook_secrets_are_valid_standard_webhooks_keys() {
        let secret = new_webhook_secret().unwrap();
        assert!(
            secret
                .expose()
                .parse::<crate::http::auth::signature::VerifyingKey>()
                .is_ok()
        );
    }
}
