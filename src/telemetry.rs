//! Logging: structured tracing output as text or JSON lines, the log filter (`log_level`,
//! `RUST_LOG`) checked once, and the one helper that formats an error with its whole source
//! chain for a log line.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

/// What every refusal of a log filter says to do instead.
const FILTER_SYNTAX: &str = "use a level (trace, debug, info, warn, error, off), or directives \
     target=level separated by commas, such as order_listener=debug,tower_http=info,warn";

/// A log filter in tracing's `EnvFilter` syntax (`info`, `order_listener=debug,warn`), checked
/// once, where it is read: `log_level` and `RUST_LOG`.
///
/// `EnvFilter` reads a bare word that is not a level as a target (`warning` shows only the
/// logs of a module named `warning`: none), so a misspelt level would silently turn every log
/// line off, the warnings included. Here a bare word must be a level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter(String);

/// Why a log filter was refused.
#[derive(Debug, thiserror::Error)]
pub enum LogFilterError {
    /// A directive with neither `=` nor a span is a word that is not a level.
    #[error("{text:?} is not a log filter: `{word}` is not a level; {FILTER_SYNTAX}")]
    NotALevel {
        /// The whole filter.
        text: String,
        /// The word.
        word: String,
    },
    /// `EnvFilter` does not parse it.
    #[error("{text:?} is not a log filter; {FILTER_SYNTAX}")]
    Syntax {
        /// The whole filter.
        text: String,
        /// What `EnvFilter` says.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
}

impl FromStr for LogFilter {
    type Err = LogFilterError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // EnvFilter splits directives at every comma, so this sees what it sees.
        let bare_word = text.split(',').map(str::trim).find(|directive| {
            !directive.is_empty()
                && !directive.contains(['=', '['])
                && LevelFilter::from_str(directive).is_err()
        });
        if let Some(word) = bare_word {
            return Err(LogFilterError::NotALevel {
                text: text.to_owned(),
                word: word.to_owned(),
            });
        }
        EnvFilter::try_new(text).map_err(|source| LogFilterError::Syntax {
            text: text.to_owned(),
            source,
        })?;
        Ok(LogFilter(text.to_owned()))
    }
}

impl LogFilter {
    /// The filter as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn env_filter(&self) -> EnvFilter {
        // Checked when parsed, so nothing is left out.
        EnvFilter::new(&self.0)
    }
}

impl std::fmt::Display for LogFilter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// `RUST_LOG`, when it is set and not empty.
fn rust_log_text() -> Option<String> {
    std::env::var_os(EnvFilter::DEFAULT_ENV)
        .map(|value| value.to_string_lossy().into_owned())
        .filter(|value| !value.trim().is_empty())
}

/// The filter to log with: `RUST_LOG` when it is set (checked as `log_level` is, and refused
/// the same way), else `configured`. Read once, at start.
pub fn chosen_filter(configured: &LogFilter) -> anyhow::Result<LogFilter> {
    match rust_log_text() {
        Some(text) => text
            .parse()
            .map_err(|error| anyhow::anyhow!("RUST_LOG {}", error_chain(&error))),
        None => Ok(configured.clone()),
    }
}

/// Whether text logs are coloured: only on a terminal, and never when `NO_COLOR` is set to
/// something (<https://no-color.org>). A file, a pipe or journald gets plain text.
fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// Installs the global subscriber with `filter` (see [`chosen_filter`]).
pub fn init(format: LogFormat, filter: &LogFilter) {
    init_with_traces(format, filter, None);
}

/// As [`init`], with the exporter's layer when traces are exported. The log output never shows
/// the spans meant for the exporter (`traces::TARGET`), so that it is the same either way.
pub fn init_with_traces(
    format: LogFormat,
    filter: &LogFilter,
    traces: Option<&crate::traces::Exporter>,
) {
    use std::io::IsTerminal;
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::{FilterExt, filter_fn};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let (levels, handle) = tracing_subscriber::reload::Layer::new(filter.env_filter());
    let filter = levels.and(
        filter_fn(|metadata| metadata.target() != crate::traces::TARGET)
            .with_max_level_hint(LevelFilter::TRACE),
    );
    let ansi = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let logs = match format {
        LogFormat::Text => logs.with_filter(filter).boxed(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_filter(filter)
            .boxed(),
    };
    let mut layers = vec![logs];
    layers.extend(traces.map(crate::traces::Exporter::layer));
    let installed = tracing_subscriber::registry().with(layers).try_init();
    // A second call (tests start several apps) keeps the first subscriber.
    if installed.is_ok() {
        let _ = LEVEL.set(Box::new(move |filter| {
            handle.reload(filter).map_err(|error| error.to_string())
        }));
    }
}

/// Swaps the log filter of the installed subscriber.
type Reload = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

static LEVEL: std::sync::OnceLock<Reload> = std::sync::OnceLock::new();

/// Sets the log filter of the running process, as a reload does. `RUST_LOG`, when set, wins:
/// then nothing changes and the answer is `Ok(false)`.
pub fn set_level(filter: &LogFilter) -> anyhow::Result<bool> {
    if rust_log_text().is_some() {
        return Ok(false);
    }
    let reload = LEVEL
        .get()
        .ok_or_else(|| anyhow::anyhow!("no log subscriber is installed"))?;
    reload(filter.env_filter()).map_err(anyhow::Error::msg)?;
    Ok(true)
}

/// Formats an error with its sources: `outer: middle: root`.
///
/// A cause whose text the message before it already ends with is not repeated: some errors
/// (async-nats', lapin's) print their source in their own message and report it as the source
/// too.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{message}")]
    struct Layer {
        message: String,
        #[source]
        source: Option<Box<Layer>>,
    }

    fn layer(message: &str, source: Option<Layer>) -> Layer {
        Layer {
            message: message.to_owned(),
            source: source.map(Box::new),
        }
    }

    #[test]
    fn levels_and_target_directives_are_log_filters() {
        for text in [
            "info",
            "WARN",
            "off",
            "order_listener=debug,tower_http=info",
            "order_listener=debug,warn",
            "order_listener::store=trace, info",
            "[append]=debug",
        ] {
            let filter: LogFilter = text
                .parse()
                .unwrap_or_else(|error| panic!("{text}: {error}"));
            assert_eq!(filter.as_str(), text);
        }
    }

    #[test]
    fn a_bare_word_that_is_not_a_level_is_refused_with_the_levels_listed() {
        // EnvFilter takes each of these as a target name, which silently logs nothing.
        for (text, word) in [
            ("warning", "warning"),
            ("loud", "loud"),
            ("order_listener=debug,warning", "warning"),
            ("order_listener", "order_listener"),
        ] {
            let error = text.parse::<LogFilter>().unwrap_err();
            assert!(
                matches!(&error, LogFilterError::NotALevel { word: found, .. } if found == word),
                "{text}: {error:?}"
            );
            let message = error.to_string();
            for level in [
                "trace",
                "debug",
                "info",
                "warn",
                "error",
                "off",
                "target=level",
            ] {
                assert!(message.contains(level), "{message}");
            }
        }
    }

    #[test]
    fn a_filter_that_does_not_parse_is_refused() {
        let error = "order_listener=bogus,==".parse::<LogFilter>().unwrap_err();
        assert!(matches!(error, LogFilterError::Syntax { .. }), "{error:?}");
        assert!(error_chain(&error).contains("is not a log filter"));
    }

    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour(true, None));
        assert!(
            colour(true, Some(OsStr::new(""))),
            "an empty NO_COLOR is unset"
        );
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None), "a file or journald");
        assert!(!colour(false, Some(OsStr::new("1"))));
    }

    #[test]
    fn every_cause_is_named_once() {
        let root = layer("connection refused", None);
        let chain = layer("publish", Some(layer("cannot connect", Some(root))));
        assert_eq!(
            error_chain(&chain),
            "publish: cannot connect: connection refused"
        );
        // A middle error that prints its source itself does not make it appear twice.
        let root = layer("connection refused", None);
        let chain = layer(
            "AMQP: cannot connect",
            Some(layer("IO error: connection refused", Some(root))),
        );
        assert_eq!(
            error_chain(&chain),
            "AMQP: cannot connect: IO error: connection refused"
        );
    }
}
