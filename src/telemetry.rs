//! Logging: structured tracing output as text or JSON lines, and the one helper that formats an
//! error with its whole source chain for a log line.

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

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

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `level`.
pub fn init(format: LogFormat, level: &str) {
    init_with_traces(format, level, None);
}

/// As [`init`], with the exporter's layer when traces are exported. The log output never shows
/// the spans meant for the exporter (`traces::TARGET`), so that it is the same either way.
pub fn init_with_traces(format: LogFormat, level: &str, traces: Option<&crate::traces::Exporter>) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::{FilterExt, filter_fn};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let levels = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (levels, handle) = tracing_subscriber::reload::Layer::new(levels);
    let filter = levels.and(
        filter_fn(|metadata| metadata.target() != crate::traces::TARGET)
            .with_max_level_hint(tracing_subscriber::filter::LevelFilter::TRACE),
    );
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
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

/// Sets the log level (a `log_level` value: `info`, `debug`, `order_listener=debug,warn`…) of
/// the running process, as a reload does. `RUST_LOG`, when set, wins: then nothing changes and
/// the answer is `Ok(false)`.
pub fn set_level(level: &str) -> anyhow::Result<bool> {
    if std::env::var_os(EnvFilter::DEFAULT_ENV).is_some() {
        return Ok(false);
    }
    let filter = EnvFilter::try_new(level)
        .map_err(|error| anyhow::anyhow!("log_level {level:?} does not read: {error}"))?;
    let reload = LEVEL
        .get()
        .ok_or_else(|| anyhow::anyhow!("no log subscriber is installed"))?;
    reload(filter).map_err(anyhow::Error::msg)?;
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
