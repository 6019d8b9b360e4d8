//! `order-listener client rotate`: new secrets for a client, printed once. Old API keys expire
//! after the grace, the Basic password is replaced, a new webhook secret is put first; keys
//! that the client holds (JWT, mTLS, `whpk_`) are named, not rotated.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use toml_edit::{Item, TableLike, Value};

use super::edit::{ConfigFile, rotate_api_keys, set_value};
use super::{
    APPLY, NewSecret, RotateArgs, after, api_key_usage, expiry_note, new_expiry, new_password,
    print_secrets, rfc3339,
};
use crate::config::clients::ClientName;
use crate::output::outln;
use crate::secret::Secret;
use crate::standard_webhooks::{VerifyingKey, WebhookSecret};

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

pub(super) fn rotate(path: &Path, args: &RotateArgs) -> anyhow::Result<ExitCode> {
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

    let rotated = format!("rotated the secrets of client {name} in {file_path}");
    print_secrets(name, &[rotated], &secrets)?;
    for note in notes {
        outln!("{note}")?;
    }
    if !held_by_client.is_empty() {
        outln!(
            "Not rotated here: {} (keys that the client holds; replace them in the file when \
             the client changes them).",
            held_by_client.join(", ")
        )?;
    }
    outln!("{APPLY}")?;
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
        format!("{} refused from now on.", the_old(old, "API key", name, IS))
    } else {
        format!(
            "{} working until {} at the latest.",
            the_old(old, "API key", name, ("keeps", "keep")),
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
    let is_hmac = |key: &Value| {
        key.as_str()
            .is_some_and(|text| matches!(text.parse(), Ok(VerifyingKey::Hmac(_))))
    };
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
    let secret = WebhookSecret::generate().context("no randomness for a new secret")?;
    keys.insert(0, secret.expose());
    rotation.secrets.push(NewSecret {
        what: format!("new webhook secret for {name} (the seller signs with it)"),
        secret: Secret::new(secret.expose()),
    });
    let old_secrets = |verb| the_old(old, "webhook secret", name, verb);
    rotation.notes.push(if timing.revokes_now() {
        format!("{} removed.", old_secrets(IS))
    } else {
        format!(
            "{} until you remove {} from webhook.keys in {file_path} (or rotate again with \
             --grace 0s), once the seller signs with the new one.",
            old_secrets(("still verifies", "still verify")),
            if old == 1 { "it" } else { "them" },
        )
    });
    rotation.notes.push(format!(
        "{file_path} holds the webhook secret itself, as HMAC needs it: it is written with mode \
         0600; keep it that way."
    ));
    Ok(())
}

/// The verb of [`the_old`] for one secret and for several.
const IS: (&str, &str) = ("is", "are");

/// The start of a note on a client's old secrets, up to its verb: "The old API key of a is", or
/// "The 2 old API keys of a are".
fn the_old(count: usize, what: &str, name: &ClientName, (one, many): (&str, &str)) -> String {
    if count == 1 {
        format!("The old {what} of {name} {one}")
    } else {
        format!("The {count} old {what}s of {name} {many}")
    }
}
