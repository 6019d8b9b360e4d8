//! The OTLP exporter: its settings, read once at start-up from the standard `OTEL_*`
//! variables, and the tracer provider that batches spans to it over HTTP (protobuf or JSON) or
//! gRPC. Without an endpoint nothing is built. Header values (often API keys) are kept as
//! [`Secret`]s: only their names are ever printed.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::secret::Secret;

/// How spans travel to the collector (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `grpc`: OTLP/gRPC, usually on port 4317.
    Grpc,
    /// `http/protobuf` (the default): OTLP/HTTP with protobuf bodies, usually on port 4318.
    HttpProtobuf,
    /// `http/json`: OTLP/HTTP with JSON bodies.
    HttpJson,
}

impl Protocol {
    /// The variable's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
        }
    }
}

/// Where and how spans are exported: what the `OTEL_*` variables say.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The full URL spans are sent to (for HTTP, with its `/v1/traces`).
    pub endpoint: reqwest::Url,
    /// How.
    pub protocol: Protocol,
    /// Headers sent with every export (`OTEL_EXPORTER_OTLP_HEADERS`): name and secret value.
    pub headers: Vec<(String, Secret)>,
    /// How long one export may take.
    pub timeout: Duration,
}

/// A variable that does not read; names the variable, never a header's value.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct SettingsError {
    variable: &'static str,
    problem: String,
}

const SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
const TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";
const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
const PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
const TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
const HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
const TRACES_HEADERS: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
const TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
const TRACES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";

/// The service name when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` gives one.
const DEFAULT_SERVICE_NAME: &str = "order-listener";

impl Settings {
    /// Reads the process's environment; `None` when traces are off: no endpoint is set,
    /// `OTEL_TRACES_EXPORTER=none`, or `OTEL_SDK_DISABLED=true`.
    pub fn from_env() -> Result<Option<Settings>, SettingsError> {
        Settings::from_vars(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
    }

    /// Reads the variables `var` gives (the signal-specific `…_TRACES_…` one wins).
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Settings>, SettingsError> {
        let either = |traces: &str, general: &str| var(traces).or_else(|| var(general));
        if var(SDK_DISABLED).is_some_and(|value| value.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let exporter = var(TRACES_EXPORTER);
        match exporter.as_deref().map(str::trim) {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => {
                return Err(SettingsError {
                    variable: TRACES_EXPORTER,
                    problem: format!("{other:?} is not supported; use otlp or none"),
                });
            }
        }
        let protocol = match either(TRACES_PROTOCOL, PROTOCOL).as_deref().map(str::trim) {
            None | Some("http/protobuf") => Protocol::HttpProtobuf,
            Some("http/json") => Protocol::HttpJson,
            Some("grpc") => Protocol::Grpc,
            Some(other) => {
                return Err(SettingsError {
                    variable: PROTOCOL,
                    problem: format!(
                        "{other:?} is not a protocol; use grpc, http/protobuf or http/json"
                    ),
                });
            }
        };
        let (endpoint, variable) = match (var(TRACES_ENDPOINT), var(ENDPOINT)) {
            (Some(url), _) => (url, TRACES_ENDPOINT),
            // The general endpoint is a base: HTTP adds the signal's path, gRPC takes it as is.
            (None, Some(base)) if protocol == Protocol::Grpc => (base, ENDPOINT),
            (None, Some(base)) => (
                format!("{}/v1/traces", base.trim_end_matches('/')),
                ENDPOINT,
            ),
            // Asked for explicitly: the collector on this host, as the specification says.
            (None, None) if exporter.is_some() => match protocol {
                Protocol::Grpc => ("http://localhost:4317".to_owned(), TRACES_EXPORTER),
                _ => (
                    "http://localhost:4318/v1/traces".to_owned(),
                    TRACES_EXPORTER,
                ),
            },
            (None, None) => return Ok(None),
        };
        let endpoint = reqwest::Url::parse(endpoint.trim())
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
            .ok_or(SettingsError {
                variable,
                problem: "not an http:// or https:// URL".to_owned(),
            })?;
        let mut headers = match var(HEADERS) {
            Some(text) => parse_headers(&text, HEADERS)?,
            None => Vec::new(),
        };
        if let Some(text) = var(TRACES_HEADERS) {
            for (name, value) in parse_headers(&text, TRACES_HEADERS)? {
                headers.retain(|(other, _)| !other.eq_ignore_ascii_case(&name));
                headers.push((name, value));
            }
        }
        let timeout = match either(TRACES_TIMEOUT, TIMEOUT) {
            Some(text) => {
                Duration::from_millis(text.trim().parse().map_err(|_| SettingsError {
                    variable: TIMEOUT,
                    problem: format!("{text:?} is not a number of milliseconds"),
                })?)
            }
            None => Duration::from_secs(10),
        };
        Ok(Some(Settings {
            endpoint,
            protocol,
            headers,
            timeout,
        }))
    }

    /// The endpoint without what may be secret in a URL (user, password, query), to log.
    pub fn endpoint_to_log(&self) -> String {
        let mut shown = self.endpoint.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        shown.set_query(None);
        shown.to_string()
    }

    /// The headers' names, to log.
    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(name, _)| name.as_str()).collect()
    }
}

/// `key1=value1,key2=value2`, each part percent-decoded (W3C Baggage's format, as the
/// OpenTelemetry specification says). A part that does not read is an error that names its
/// position, never its text.
fn parse_headers(
    text: &str,
    variable: &'static str,
) -> Result<Vec<(String, Secret)>, SettingsError> {
    let mut headers = Vec::new();
    for (index, part) in text.split(',').enumerate() {
        if part.trim().is_empty() {
            continue;
        }
        let problem = |what: &str| SettingsError {
            variable,
            problem: format!("header {} {what}; write name=value,name=value", index + 1),
        };
        let (name, value) = part.split_once('=').ok_or_else(|| problem("has no ="))?;
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text.trim())
                .decode_utf8()
                .map(|text| text.into_owned())
        };
        let name = decode(name).map_err(|_| problem("has a name that is not UTF-8"))?;
        let value = decode(value).map_err(|_| problem("has a value that is not UTF-8"))?;
        if axum::http::HeaderName::try_from(name.as_str()).is_err()
            || axum::http::HeaderValue::try_from(value.as_str()).is_err()
        {
            return Err(problem("is not a valid HTTP header"));
        }
        headers.push((name, Secret::new(value)));
    }
    Ok(headers)
}

/// Builds the tracer provider that batches spans to the collector (on its own thread; the
/// exports run on the current Tokio runtime, which must outlive the provider's shutdown).
pub fn provider(settings: &Settings) -> anyhow::Result<SdkTracerProvider> {
    let endpoint = settings.endpoint.as_str().to_owned();
    let builder = opentelemetry_otlp::SpanExporter::builder();
    let exporter = match settings.protocol {
        Protocol::Grpc => {
            let mut headers = axum::http::HeaderMap::new();
            for (name, value) in &settings.headers {
                headers.insert(
                    axum::http::HeaderName::try_from(name.as_str())?,
                    axum::http::HeaderValue::try_from(value.expose())?,
                );
            }
            let metadata =
                opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers);
            let mut builder = builder
                .with_tonic()
                .with_endpoint(endpoint)
                .with_timeout(settings.timeout)
                .with_metadata(metadata);
            if settings.endpoint.scheme() == "https" {
                builder = builder.with_tls_config(
                    opentelemetry_otlp::tonic_types::transport::ClientTlsConfig::new()
                        .with_native_roots(),
                );
            }
            builder.build()?
        }
        Protocol::HttpProtobuf | Protocol::HttpJson => {
            let protocol = match settings.protocol {
                Protocol::HttpJson => opentelemetry_otlp::Protocol::HttpJson,
                _ => opentelemetry_otlp::Protocol::HttpBinary,
            };
            let headers: HashMap<String, String> = settings
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), value.expose().to_owned()))
                .collect();
            builder
                .with_http()
                .with_endpoint(endpoint)
                .with_protocol(protocol)
                .with_timeout(settings.timeout)
                .with_headers(headers)
                .with_http_client(RuntimeClient::new(settings.timeout)?)
                .build()?
        }
    };
    // The SDK reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; without either, the
    // service is order-listener rather than the SDK's unknown_service.
    let mut resource = Resource::builder();
    if service_name().is_none() {
        resource = resource.with_service_name(DEFAULT_SERVICE_NAME);
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// The service name the environment gives, if any.
fn service_name() -> Option<String> {
    Resource::builder()
        .build()
        .get(&opentelemetry::Key::new("service.name"))
        .map(|value| value.to_string())
        .filter(|name| !name.starts_with("unknown_service"))
}

/// The service name spans are exported under.
pub fn exported_service_name() -> String {
    service_name().unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned())
}

/// The HTTP client of the OTLP/HTTP exporter: our reqwest client (rustls, the system's roots),
/// its requests run on the Tokio runtime that built it, because the batch processor drives
/// exports from a thread of its own, where reqwest's futures cannot run.
#[derive(Debug)]
struct RuntimeClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl RuntimeClient {
    fn new(timeout: Duration) -> anyhow::Result<RuntimeClient> {
        Ok(RuntimeClient {
            client: crate::outbound::client(&crate::outbound::TlsOptions::default(), timeout, 2)?,
            runtime: tokio::runtime::Handle::try_current()?,
        })
    }
}

impl opentelemetry_http::HttpClient for RuntimeClient {
    fn send_bytes<'a, 'b>(
        &'a self,
        request: axum::http::Request<Bytes>,
    ) -> Pin<
        Box<
            dyn Future<Output = Result<axum::http::Response<Bytes>, opentelemetry_http::HttpError>>
                + Send
                + 'b,
        >,
    >
    where
        'a: 'b,
    {
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let request = reqwest::Request::try_from(request)?;
            let response = client.execute(request).await?;
            let mut answer = axum::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                answer = answer.header(name, value);
            }
            let body = response.bytes().await?;
            Ok::<_, opentelemetry_http::HttpError>(answer.body(body)?)
        });
        Box::pin(async move { sent.await? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Option<Settings>, SettingsError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Settings::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn traces_are_off_without_an_endpoint_or_when_disabled() {
        assert!(read(&[]).unwrap().is_none());
        assert!(
            read(&[(ENDPOINT, "http://collector:4318"), (SDK_DISABLED, "true")])
                .unwrap()
                .is_none()
        );
        assert!(
            read(&[
                (ENDPOINT, "http://collector:4318"),
                (TRACES_EXPORTER, "none")
            ])
            .unwrap()
            .is_none()
        );
    }

    #[test]
    fn the_http_endpoint_gets_the_signal_path_and_the_traces_endpoint_is_taken_as_is() {
        let settings = read(&[(ENDPOINT, "http://collector:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(
            settings.endpoint.as_str(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(settings.protocol, Protocol::HttpProtobuf);
        let settings = read(&[
            (ENDPOINT, "http://collector:4318"),
            (TRACES_ENDPOINT, "https://traces.example/custom"),
            (PROTOCOL, "http/json"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(settings.endpoint.as_str(), "https://traces.example/custom");
        assert_eq!(settings.protocol, Protocol::HttpJson);
        let settings = read(&[(ENDPOINT, "http://collector:4317"), (PROTOCOL, "grpc")])
            .unwrap()
            .unwrap();
        assert_eq!(settings.endpoint.as_str(), "http://collector:4317/");
        assert_eq!(settings.protocol, Protocol::Grpc);
        let settings = read(&[(TRACES_EXPORTER, "otlp")]).unwrap().unwrap();
        assert_eq!(
            settings.endpoint.as_str(),
            "http://localhost:4318/v1/traces"
        );
    }

    #[test]
    fn headers_are_decoded_the_traces_ones_win_and_a_bad_one_is_named_without_its_value() {
        let settings = read(&[
            (ENDPOINT, "http://collector:4318"),
            (HEADERS, "api-key=s3cr%3Dt,x-tenant=a"),
            (TRACES_HEADERS, "X-Tenant=b"),
            (TIMEOUT, "2500"),
        ])
        .unwrap()
        .unwrap();
        let headers: Vec<(&str, &str)> = settings
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.expose()))
            .collect();
        assert_eq!(headers, [("api-key", "s3cr=t"), ("X-Tenant", "b")]);
        assert_eq!(settings.header_names(), ["api-key", "X-Tenant"]);
        assert!(!format!("{settings:?}").contains("s3cr"), "{settings:?}");
        assert_eq!(settings.timeout, Duration::from_millis(2500));
        let error = read(&[
            (ENDPOINT, "http://c:4318"),
            (HEADERS, "a=1,s3cr3t-without-equals"),
        ])
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "OTEL_EXPORTER_OTLP_HEADERS: header 2 has no =; write name=value,name=value"
        );
    }

    #[test]
    fn what_does_not_read_is_refused_with_the_variable_named() {
        for (vars, variable) in [
            (vec![(ENDPOINT, "collector:4318")], ENDPOINT),
            (vec![(ENDPOINT, "ftp://collector")], ENDPOINT),
            (
                vec![(ENDPOINT, "http://c:4318"), (PROTOCOL, "thrift")],
                PROTOCOL,
            ),
            (
                vec![(ENDPOINT, "http://c:4318"), (TIMEOUT, "soon")],
                TIMEOUT,
            ),
            (vec![(TRACES_EXPORTER, "zipkin")], TRACES_EXPORTER),
        ] {
            let error = read(&vars).unwrap_err().to_string();
            assert!(error.starts_with(variable), "{error}");
        }
    }

    #[test]
    fn the_logged_endpoint_keeps_no_credentials() {
        let settings = read(&[(
            TRACES_ENDPOINT,
            "https://user:pa55@collector/v1/traces?token=t0k",
        )])
        .unwrap()
        .unwrap();
        assert_eq!(settings.endpoint_to_log(), "https://collector/v1/traces");
    }
}
