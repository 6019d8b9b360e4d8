//! Outbound HTTP: one way to build a client with the operator's TLS trust options and to attach
//! credentials, shared by the hub client, the simulator, the HTTP sink and the seller APIs.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::secret::Secret;

/// Which servers the client trusts.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct TlsOptions {
    /// Trust the server certificates signed by this PEM file (such as the listener's generated
    /// {data_dir}/tls/cert.pem), on top of the system's roots.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Accept any server certificate. For tests only: it defeats TLS.
    #[arg(long)]
    pub insecure: bool,
}

/// How the client proves who it is.
#[derive(Clone, PartialEq)]
pub enum Credentials {
    /// HTTP Basic.
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: Secret,
    },
    /// `Authorization: Bearer`.
    Bearer(Secret),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, [redacted])"),
            Credentials::Bearer(_) => f.write_str("Bearer([redacted])"),
        }
    }
}

/// Credentials given on the command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct CredentialArgs {
    /// Send `Authorization: Bearer TOKEN`. Prefer the environment variable to the flag, which
    /// other users can see in the process list.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "ORDER_LISTENER_CLIENT_TOKEN",
        hide_env_values = true,
        conflicts_with = "user"
    )]
    pub token: Option<String>,
    /// Send HTTP Basic credentials as USER:PASSWORD (the password may also come from
    /// ORDER_LISTENER_CLIENT_PASSWORD, with --user USER).
    #[arg(long, value_name = "USER[:PASSWORD]")]
    pub user: Option<String>,
    /// The Basic password, when --user gives only the user.
    #[arg(
        long,
        hide = true,
        env = "ORDER_LISTENER_CLIENT_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
}

impl CredentialArgs {
    /// The credentials, if any were given.
    pub(crate) fn credentials(&self) -> anyhow::Result<Option<Credentials>> {
        if let Some(token) = &self.token {
            return Ok(Some(Credentials::Bearer(Secret::new(token.clone()))));
        }
        let Some(user) = &self.user else {
            return Ok(None);
        };
        let (user, password) = match user.split_once(':') {
            Some((user, password)) => (user.to_owned(), password.to_owned()),
            None => (
                user.clone(),
                self.password.clone().context(
                    "--user needs a password: USER:PASSWORD, or ORDER_LISTENER_CLIENT_PASSWORD",
                )?,
            ),
        };
        Ok(Some(Credentials::Basic {
            user,
            password: Secret::new(password),
        }))
    }
}

/// Adds the credentials to a request.
pub(crate) fn authorize(
    request: reqwest::RequestBuilder,
    credentials: Option<&Credentials>,
) -> reqwest::RequestBuilder {
    match credentials {
        None => request,
        Some(Credentials::Bearer(token)) => request.bearer_auth(token.expose()),
        Some(Credentials::Basic { user, password }) => {
            request.basic_auth(user, Some(password.expose()))
        }
    }
}

/// Builds an HTTP client with these trust options, a request timeout and a connection pool of
/// `max_idle` connections per host.
pub(crate) fn client(
    tls: &TlsOptions,
    timeout: Duration,
    max_idle: usize,
) -> anyhow::Result<reqwest::Client> {
    builder(tls, timeout, max_idle)?
        .build()
        .context("cannot build the HTTP client")
}

/// As [`client`], for a client that must not be sent elsewhere by the server it asks: a
/// redirect is an answer like any other, never followed (the seller APIs).
pub(crate) fn client_without_redirects(
    tls: &TlsOptions,
    timeout: Duration,
    max_idle: usize,
) -> anyhow::Result<reqwest::Client> {
    builder(tls, timeout, max_idle)?
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("cannot build the HTTP client")
}

/// The client builder [`client`] finishes, for a caller that adds to it.
pub(crate) fn builder(
    tls: &TlsOptions,
    timeout: Duration,
    max_idle: usize,
) -> anyhow::Result<reqwest::ClientBuilder> {
    // reqwest's rustls needs a process-wide crypto provider; a second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(max_idle)
        .tcp_nodelay(true)
        .tls_danger_accept_invalid_certs(tls.insecure);
    if let Some(path) = &tls.ca_cert {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read the CA certificate {}", path.display()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} is not a PEM certificate bundle", path.display()))?;
        builder = builder.tls_certs_merge(certificates);
    }
    Ok(builder)
}
