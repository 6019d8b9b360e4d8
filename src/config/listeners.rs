//! Which dialects' listeners the public port mounts, and where: `[dialects.<name>]` tables
//! with `enabled` and `base_path`. Every dialect is mounted by default at the base path of its
//! spec (MEF's also at the `serviceOrderingManagement` spelling its hub example uses); ONAP's
//! base path is the top-level `base_path`.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::domain::envelope::Dialect;

/// One dialect's table as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialectSettings {
    /// Mount its listeners (default true).
    enabled: Option<bool>,
    /// Where (default: the spec's base path).
    base_path: Option<String>,
}

/// A dialect's listeners, mounted under each of its base paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The dialect.
    pub dialect: Dialect,
    /// The base paths its listener paths follow (`{base}/listener…`), without a trailing slash.
    pub base_paths: Vec<String>,
}

/// Checks the `[dialects.*]` tables against the dialects there are, with ONAP's base path from
/// the top level, and gives the mounts of the enabled dialects.
pub(crate) fn check(
    onap_base_path: &str,
    settings: &BTreeMap<String, DialectSettings>,
) -> anyhow::Result<Vec<Mount>> {
    for name in settings.keys() {
        name.parse::<Dialect>()
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("[dialects.{name}]"))?;
    }
    let mut mounts = Vec::new();
    for dialect in Dialect::ALL {
        let table = settings.get(dialect.as_str()).cloned().unwrap_or_default();
        if table.enabled == Some(false) {
            continue;
        }
        let base_paths = match (dialect, table.base_path) {
            (_, Some(path)) => vec![normalize(&path, dialect)?],
            (Dialect::Onap, None) => vec![normalize(onap_base_path, dialect)?],
            (_, None) => dialect
                .default_base_paths()
                .iter()
                .map(|path| (*path).to_owned())
                .collect(),
        };
        mounts.push(Mount {
            dialect,
            base_paths,
        });
    }
    let mut owners: BTreeMap<&str, Dialect> = BTreeMap::new();
    for mount in &mounts {
        for path in &mount.base_paths {
            if let Some(other) = owners.insert(path, mount.dialect) {
                bail!(
                    "dialects {other} and {} are both mounted at {path:?}; give one of them another \
                     base_path in its [dialects.<name>] table",
                    mount.dialect
                );
            }
        }
    }
    Ok(mounts)
}

/// A base path without its trailing slash, which must start with `/` (or be empty: the root).
fn normalize(path: &str, dialect: Dialect) -> anyhow::Result<String> {
    let path = path.trim_end_matches('/');
    if !path.is_empty() && !path.starts_with('/') {
        bail!(
            "the base path of {dialect} must start with /, as in {} (got {path:?})",
            dialect.default_base_paths()[0]
        );
    }
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dialect_is_mounted_by_default_at_its_specs_path() {
        let mounts = check("/externalapi/listener/v1", &BTreeMap::new()).unwrap();
        assert_eq!(mounts.len(), Dialect::ALL.len());
        assert_eq!(mounts[0].base_paths, ["/externalapi/listener/v1"]);
        let mef = mounts
            .iter()
            .find(|mount| mount.dialect == Dialect::MefLegatoV6)
            .unwrap();
        assert_eq!(mef.base_paths.len(), 2, "both spellings of MEF's base path");
    }

    #[test]
    fn a_dialect_can_be_turned_off_or_moved() {
        let settings: BTreeMap<String, DialectSettings> = toml::from_str(
            "[tmf641-v4]\nenabled = false\n[mef-legato-v5]\nbase_path = \"/mef/\"\n",
        )
        .unwrap();
        let mounts = check("/onap", &settings).unwrap();
        assert!(
            mounts
                .iter()
                .all(|mount| mount.dialect != Dialect::Tmf641V4)
        );
        let mef = mounts
            .iter()
            .find(|mount| mount.dialect == Dialect::MefLegatoV5)
            .unwrap();
        assert_eq!(mef.base_paths, ["/mef"]);
    }

    #[test]
    fn unknown_dialects_bad_paths_and_shared_paths_are_refused() {
        let unknown: BTreeMap<String, DialectSettings> =
            toml::from_str("[tmf641]\nenabled = true\n").unwrap();
        let error = format!("{:#}", check("/onap", &unknown).unwrap_err());
        assert!(error.contains("tmf641-v4"), "{error}");
        let relative: BTreeMap<String, DialectSettings> =
            toml::from_str("[tmf641-v5]\nbase_path = \"tmf\"\n").unwrap();
        assert!(check("/onap", &relative).is_err());
        let shared: BTreeMap<String, DialectSettings> =
            toml::from_str("[tmf641-v5]\nbase_path = \"/tmf-api/serviceOrdering/v4\"\n").unwrap();
        let error = check("/onap", &shared).unwrap_err().to_string();
        assert!(error.contains("both mounted"), "{error}");
    }
}
