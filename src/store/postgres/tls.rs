//! Connection options with libpq's meaning, so that a URL copied from psql or another tool
//! means the same here: `sslmode` is one of `disable`, `allow`, `prefer` (the default),
//! `require`, `verify-ca` or `verify-full`, and `sslrootcert` names the CA certificates to trust.
//! Both the URL form (`postgres://…?sslmode=…`) and the key=value form (`host=… sslmode=…`)
//! are read. tokio-postgres knows neither `verify-*` nor `sslrootcert`, so they are taken out
//! of the string here and the rest is left to it.
//!
//! As in libpq, `prefer`, `allow` and `require` encrypt without checking the server's
//! certificate (unless `sslrootcert` is given, when `require` checks it as `verify-ca` does);
//! `verify-ca` checks that a trusted CA signed it; `verify-full` also checks that it names the
//! host. `prefer` falls back to plain text when the server offers no TLS; `allow` is read as
//! `prefer` (libpq tries plain text first; both reach a server that takes either).

use std::str::FromStr;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio_postgres::config::SslMode as DriverMode;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plain text only.
    Disable,
    /// Plain text or TLS, whichever the server takes (read as `Prefer`).
    Allow,
    /// TLS when the server offers it, without checking its certificate.
    Prefer,
    /// TLS, without checking the certificate (unless `sslrootcert` is given).
    Require,
    /// TLS, with a certificate signed by a trusted CA.
    VerifyCa,
    /// TLS, with a certificate signed by a trusted CA that names the host.
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = String;

    fn from_str(text: &str) -> Result<SslMode, String> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode {other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                ));
            }
        })
    }
}

/// How to connect: the driver's configuration and the TLS client, if any.
pub(crate) struct Connect {
    /// The driver's configuration, with its `ssl_mode` set.
    pub config: tokio_postgres::Config,
    /// The TLS client; `None` for `disable`.
    pub tls: Option<rustls::ClientConfig>,
}

/// Reads a connection string (URL or key=value) with libpq's TLS options. Errors never quote
/// the string: it may hold a password.
pub(crate) fn connect_options(text: &str) -> Result<Connect, String> {
    let (rest, options) = take_tls_options(text)?;
    let mut config = tokio_postgres::Config::from_str(&rest).map_err(|error| {
        format!(
            "database_url is not a valid PostgreSQL URL or key=value connection string ({error}; the value is not shown: it may hold a password)"
        )
    })?;
    let mode = match &options.mode {
        Some(mode) => mode.parse()?,
        None => SslMode::Prefer,
    };
    let roots = match &options.root_cert {
        Some(path) => Some(read_roots(path)?),
        None => None,
    };
    let check = match (mode, roots.is_some()) {
        (SslMode::Disable, _) => None,
        (SslMode::Allow | SslMode::Prefer, _) | (SslMode::Require, false) => Some(Check::Nothing),
        (SslMode::Require | SslMode::VerifyCa, _) => Some(Check::Ca),
        (SslMode::VerifyFull, _) => Some(Check::Full),
    };
    config.ssl_mode(match mode {
        SslMode::Disable => DriverMode::Disable,
        SslMode::Allow | SslMode::Prefer => DriverMode::Prefer,
        _ => DriverMode::Require,
    });
    let tls = match check {
        None => None,
        Some(check) => Some(client_config(check, roots)?),
    };
    Ok(Connect { config, tls })
}

/// The TLS options taken out of a connection string.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsOptions {
    mode: Option<String>,
    root_cert: Option<String>,
}

/// Splits `sslmode` and `sslrootcert` off a URL's query or a key=value string.
fn take_tls_options(text: &str) -> Result<(String, TlsOptions), String> {
    let mut options = TlsOptions::default();
    let mut keep = |key: &str, value: String| match key {
        "sslmode" => {
            options.mode = Some(value);
            false
        }
        "sslrootcert" => {
            options.root_cert = Some(value);
            false
        }
        _ => true,
    };
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        let Some((base, query)) = text.split_once('?') else {
            return Ok((text.to_owned(), options));
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let value = percent_encoding::percent_decode_str(value)
                    .decode_utf8_lossy()
                    .into_owned();
                keep(key, value)
            })
            .collect();
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, options));
    }
    let mut rest = Vec::new();
    for (key, value) in key_values(text)? {
        if keep(&key, value.clone()) {
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            rest.push(format!("{key}='{quoted}'"));
        }
    }
    Ok((rest.join(" "), options))
}

/// The pairs of a libpq key=value string: values may be single-quoted, and a backslash
/// escapes the next character.
fn key_values(text: &str) -> Result<Vec<(String, String)>, String> {
    let malformed = || "database_url is not a valid key=value connection string".to_owned();
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') || key.is_empty() {
            return Err(malformed());
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.push(chars.next().ok_or_else(malformed)?),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(malformed()),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.push(chars.next().ok_or_else(malformed)?);
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

fn read_roots(path: &str) -> Result<rustls::RootCertStore, String> {
    let pem = std::fs::read(path).map_err(|error| format!("sslrootcert {path}: {error}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        let certificate: CertificateDer<'static> =
            certificate.map_err(|error| format!("sslrootcert {path}: {error}"))?;
        roots
            .add(certificate)
            .map_err(|error| format!("sslrootcert {path}: {error}"))?;
    }
    if roots.is_empty() {
        return Err(format!("sslrootcert {path} holds no certificate"));
    }
    Ok(roots)
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Nothing: the channel is encrypted, the server not authenticated (libpq's `require`).
    Nothing,
    /// That a trusted CA signed it, whatever host it names.
    Ca,
    /// That a trusted CA signed it and it names the host.
    Full,
}

fn client_config(
    check: Check,
    roots: Option<rustls::RootCertStore>,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match roots {
        Some(roots) => roots,
        None => {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(certificate);
            }
            roots
        }
    };
    let verifier = Arc::new(Verifier::new(check, roots, provider.clone())?);
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS for PostgreSQL: {error}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// Checks the server's certificate as far as the `sslmode` asks; handshake signatures are
/// always checked.
#[derive(Debug)]
struct Verifier {
    check: Check,
    webpki: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl Verifier {
    fn new(
        check: Check,
        roots: rustls::RootCertStore,
        provider: Arc<CryptoProvider>,
    ) -> Result<Verifier, String> {
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|error| format!("TLS for PostgreSQL: {error}"))?;
        Ok(Verifier {
            check,
            webpki,
            provider,
        })
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.check == Check::Nothing {
            return Ok(ServerCertVerified::assertion());
        }
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.check == Check::Ca => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> (String, Option<String>, Option<String>) {
        let (rest, options) = take_tls_options(text).unwrap();
        (rest, options.mode, options.root_cert)
    }

    #[test]
    fn the_tls_options_come_out_of_a_url_and_the_rest_is_left_as_it_was() {
        assert_eq!(
            split(
                "postgres://u:p%40ss@h:5432/db?sslmode=verify-ca&application_name=x&sslrootcert=%2Fetc%2Fca.pem"
            ),
            (
                "postgres://u:p%40ss@h:5432/db?application_name=x".to_owned(),
                Some("verify-ca".to_owned()),
                Some("/etc/ca.pem".to_owned())
            )
        );
        assert_eq!(
            split("postgres://h/db?sslmode=disable"),
            (
                "postgres://h/db".to_owned(),
                Some("disable".to_owned()),
                None
            )
        );
        assert_eq!(
            split("postgresql://h/db"),
            ("postgresql://h/db".to_owned(), None, None)
        );
    }

    #[test]
    fn the_tls_options_come_out_of_a_key_value_string_with_quotes_and_escapes() {
        let (rest, mode, root) =
            split(r"host=h  dbname = 'my db' password='it\'s' sslmode=require sslrootcert=/a\ b");
        assert_eq!(mode.as_deref(), Some("require"));
        assert_eq!(root.as_deref(), Some("/a b"));
        assert_eq!(rest, r"host='h' dbname='my db' password='it\'s'");
        let config = tokio_postgres::Config::from_str(&rest).unwrap();
        assert_eq!(config.get_dbname(), Some("my db"));
        assert_eq!(config.get_password(), Some(&b"it's"[..]));
        assert!(take_tls_options("host").is_err());
        assert!(take_tls_options("host='h").is_err());
    }

    #[test]
    fn modes_follow_libpq_and_an_unknown_one_is_refused_without_quoting_the_url() {
        let mode = |url: &str| {
            let connect = connect_options(url).unwrap();
            (connect.config.get_ssl_mode(), connect.tls.is_some())
        };
        assert_eq!(mode("postgres://h/db"), (DriverMode::Prefer, true));
        assert_eq!(
            mode("postgres://h/db?sslmode=disable"),
            (DriverMode::Disable, false)
        );
        assert_eq!(
            mode("postgres://h/db?sslmode=allow"),
            (DriverMode::Prefer, true)
        );
        assert_eq!(mode("host=h sslmode=require"), (DriverMode::Require, true));
        assert_eq!(
            mode("host=h sslmode=verify-full"),
            (DriverMode::Require, true)
        );
        let error = connect_options("postgres://u:secret@h/db?sslmode=maybe")
            .err()
            .unwrap();
        assert!(
            error.contains("verify-full") && !error.contains("secret"),
            "{error}"
        );
        let error = connect_options("postgres://u:secret@h/db?sslrootcert=/nonexistent")
            .err()
            .unwrap();
        assert!(
            error.contains("/nonexistent") && !error.contains("secret"),
            "{error}"
        );
    }

    /// A CA, and a server certificate it signed for `localhost`.
    fn ca_and_server() -> (rustls::RootCertStore, CertificateDer<'static>) {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca =
            rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        (roots, server.der().clone())
    }

    #[test]
    fn verify_ca_takes_any_name_that_the_ca_signed_and_verify_full_only_the_host() {
        let (roots, server) = ca_and_server();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = |check| Verifier::new(check, roots.clone(), provider.clone()).unwrap();
        let check = |check, host: &str| {
            verifier(check)
                .verify_server_cert(
                    &server,
                    &[],
                    &ServerName::try_from(host.to_owned()).unwrap(),
                    &[],
                    UnixTime::now(),
                )
                .is_ok()
        };
        assert!(check(Check::Full, "localhost"));
        assert!(!check(Check::Full, "127.0.0.1"));
        assert!(check(Check::Ca, "127.0.0.1"));
        assert!(check(Check::Nothing, "127.0.0.1"));
        // A certificate no trusted CA signed.
        let (_, stranger) = ca_and_server();
        let unknown = verifier(Check::Ca).verify_server_cert(
            &stranger,
            &[],
            &ServerName::try_from("localhost").unwrap(),
            &[],
            UnixTime::now(),
        );
        assert!(unknown.is_err());
    }
}
