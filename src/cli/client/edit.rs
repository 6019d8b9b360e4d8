//! The config file as `order-listener client` edits it: `toml_edit` surgery that keeps the
//! rest of the file's comments and layout ([`ConfigFile`]: find, place and remove
//! `[clients.NAME]` tables; API key tables and their rotation), and the checked, atomic 0600
//! save. What to change is decided by the command handlers in `mod.rs` and `rotate.rs`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use toml_edit::{Array, DocumentMut, Item, Table, TableLike, Value, value};

use super::rfc3339;
use crate::config::clients::ClientName;
use crate::config::{self, Config, Overrides};
use crate::http::auth::generated::generate_key;
use crate::private_file::PrivateFile;
use crate::secret::Secret;

pub(super) fn string_array<S: AsRef<str>>(items: &[S]) -> Value {
    Value::Array(items.iter().map(AsRef::as_ref).collect::<Array>())
}

/// Sets `key` to `new`, keeping the comments around an existing value.
pub(super) fn set_value(table: &mut dyn TableLike, key: &str, mut new: Value) {
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
pub(super) struct ConfigFile {
    /// The path as the user gave it, for messages.
    pub(super) path: PathBuf,
    /// The file that is replaced: the path with symbolic links resolved.
    target: PathBuf,
    pub(super) document: DocumentMut,
    /// Whether the file does not exist yet.
    pub(super) created: bool,
}

impl ConfigFile {
    /// Opens an existing file; says how to create one if there is none.
    pub(super) fn open(path: &Path) -> anyhow::Result<ConfigFile> {
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
    pub(super) fn open_or_default(path: &Path) -> anyhow::Result<ConfigFile> {
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

    pub(super) fn client_names(&self) -> Vec<String> {
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

    pub(super) fn client_mut(&mut self, name: &ClientName) -> anyhow::Result<&mut dyn TableLike> {
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
    pub(super) fn clients_for_insert(&mut self) -> anyhow::Result<&mut Table> {
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
    pub(super) fn place_new_client(&mut self, client: &mut Table) {
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
                let trailing = self.trailing();
                if !trailing.trim().is_empty() {
                    let mut prefix = trailing;
                    if !prefix.ends_with('\n') {
                        prefix.push('\n');
                    }
                    prefix.push_str(prefix_of(client));
                    client.decor_mut().set_prefix(prefix);
                    self.document.set_trailing("");
                }
            }
        }
    }

    /// Removes a client. The comments above its header that a blank line separates from it
    /// belong to what precedes it (such as the commented keys of `[tls]`), so they stay.
    pub(super) fn remove_client(&mut self, name: &ClientName) -> anyhow::Result<()> {
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
        let kept = comments_of_the_preceding_table(prefix_of(first_table));
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
                let own = prefix_of(table).to_owned();
                table.decor_mut().set_prefix(format!("{kept}{own}"));
            }
            None => {
                let trailing = self.trailing();
                self.document.set_trailing(format!("{kept}{trailing}"));
            }
        }
        Ok(())
    }

    /// The text after the last table of the file (its comments).
    fn trailing(&self) -> String {
        self.document
            .trailing()
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Checks the edited text by loading it as `serve` would, then replaces the file
    /// atomically, readable by its owner only. Returns the loaded configuration.
    pub(super) fn save(&self) -> anyhow::Result<Config> {
        let text = self.document.to_string();
        let temporary = PrivateFile::next_to(&self.target, text.as_bytes())
            .with_context(|| format!("cannot write the new {} next to it", self.path.display()))?;
        let config = match Config::load(Some(temporary.path()), &Overrides::default()) {
            Ok(config) => config,
            Err(error) => {
                // Name the real file, not the temporary one, in the message.
                let message = format!("{error:#}").replace(
                    &temporary.path().display().to_string(),
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
        temporary
            .persist(&self.target)
            .with_context(|| format!("cannot replace {}", self.path.display()))?;
        Ok(config)
    }
}

/// The text above a table's header (its comments and blank lines).
fn prefix_of(table: &Table) -> &str {
    table
        .decor()
        .prefix()
        .and_then(|raw| raw.as_str())
        .unwrap_or_default()
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

pub(super) fn api_key_table(
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

/// The outcome of rotating a client's API keys.
pub(super) struct RotatedKeys {
    pub(super) key: Secret,
    pub(super) header: Option<String>,
    /// How many keys were there before.
    pub(super) old_keys: usize,
}

/// Makes the existing keys expire by `grace_end` (keeping earlier expiries) and appends a new
/// key with the header of the newest one.
pub(super) fn rotate_api_keys(
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
}
