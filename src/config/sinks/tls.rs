//! A sink's TLS files (`ca_cert`, `client_cert`, `client_key`): read and checked with the
//! configuration, for every type of sink.

use std::path::Path;

use anyhow::{Context, bail};

use super::SinkSettings;
use crate::secret::Secret;

/// A sink's TLS files, read and checked with the configuration, so that a reload picks up a
/// renewed certificate and a missing file stops the start with its name.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SinkTls {
    /// The extra CAs, PEM.
    pub ca_pem: Option<Vec<u8>>,
    /// The client certificate chain and its key, PEM.
    pub client: Option<ClientCertificate>,
}

/// A client certificate for TLS: the chain and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The certificate, then any intermediates.
    pub chain_pem: Vec<u8>,
    /// The private key.
    pub key_pem: Secret,
}

impl SinkTls {
    /// Whether anything is set.
    pub fn is_set(&self) -> bool {
        self.ca_pem.is_some() || self.client.is_some()
    }
}

impl std::fmt::Debug for SinkTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkTls")
            .field("ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.client.is_some())
            .finish()
    }
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientCertificate([redacted])")
    }
}

/// Reads the TLS files of a sink and checks that they hold what they should.
pub(super) fn read_tls(settings: &SinkSettings) -> anyhow::Result<SinkTls> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let read = |field: &str, path: &Path| {
        std::fs::read(path).with_context(|| format!("{field}: cannot read {}", path.display()))
    };
    let certificates = |field: &str, path: &Path, pem: &[u8]| -> anyhow::Result<()> {
        let count = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| {
                anyhow::anyhow!("{field}: {} does not read as PEM: {error}", path.display())
            })?
            .len();
        if count == 0 {
            bail!(
                "{field}: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            );
        }
        Ok(())
    };
    let ca_pem = match &settings.ca_cert {
        Some(path) => {
            let pem = read("ca_cert", path)?;
            certificates("ca_cert", path, &pem)?;
            Some(pem)
        }
        None => None,
    };
    let client = match (&settings.client_cert, &settings.client_key) {
        (Some(cert), Some(key)) => {
            let chain_pem = read("client_cert", cert)?;
            certificates("client_cert", cert, &chain_pem)?;
            let key_pem = String::from_utf8(read("client_key", key)?)
                .map_err(|_| anyhow::anyhow!("client_key: {} is not a PEM file", key.display()))?;
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|error| {
                anyhow::anyhow!(
                    "client_key: {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {error}",
                    key.display()
                )
            })?;
            Some(ClientCertificate {
                chain_pem,
                key_pem: Secret::new(key_pem),
            })
        }
        (None, None) => None,
        (Some(_), None) => bail!("client_cert needs client_key, the file of its private key"),
        (None, Some(_)) => bail!("client_key needs client_cert, the file of its certificate"),
    };
    Ok(SinkTls { ca_pem, client })
}

/// Whether `url` of a sink of `kind` can use TLS settings.
pub(super) fn speaks_tls(kind: &str, url: &str) -> bool {
    match kind {
        "http" => url.starts_with("https://"),
        // A NATS server asks for TLS in its greeting; the settings then require it.
        "nats" => true,
        "amqp" => url.starts_with("amqps://"),
        "redis" => url.starts_with("rediss://"),
        "mqtt" => url.starts_with("mqtts://"),
        "kafka" => url.starts_with("kafkas://"),
        // An unknown type is refused for itself.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::super::check_sink;
    use super::super::tests::sink;
    use super::*;

    #[test]
    fn tls_files_are_read_and_checked_with_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = rcgen::CertificateParams::new(vec!["sink.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let ca = dir.path().join("ca.pem");
        let cert = dir.path().join("client.pem");
        let key_file = dir.path().join("client.key");
        let not_pem = dir.path().join("notes.txt");
        std::fs::write(&ca, certificate.pem()).unwrap();
        std::fs::write(&cert, certificate.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        std::fs::write(&not_pem, "hello").unwrap();
        let with =
            |url: &str, ca_cert: Option<&Path>, client: Option<(&Path, &Path)>| SinkSettings {
                ca_cert: ca_cert.map(Path::to_path_buf),
                client_cert: client.map(|(cert, _)| cert.to_path_buf()),
                client_key: client.map(|(_, key)| key.to_path_buf()),
                ..sink("nats", url)
            };

        let tls = check_sink(
            "s",
            &with("tls://b:4222", Some(&ca), Some((&cert, &key_file))),
        )
        .unwrap()
        .tls;
        assert_eq!(tls.ca_pem.as_deref(), Some(certificate.pem().as_bytes()));
        let client = tls.client.as_ref().unwrap();
        assert_eq!(client.key_pem.expose(), key.serialize_pem());
        let printed = format!("{tls:?}");
        assert!(!printed.contains("PRIVATE KEY"), "{printed}");
        assert!(
            !check_sink("s", &sink("nats", "nats://b:4222"))
                .unwrap()
                .tls
                .is_set()
        );

        let refused =
            |settings: SinkSettings| format!("{:#}", check_sink("s", &settings).unwrap_err());
        let message = refused(with("nats://b", Some(&dir.path().join("absent.pem")), None));
        assert!(
            message.contains("ca_cert: cannot read") && message.contains("absent.pem"),
            "{message}"
        );
        let message = refused(with("nats://b", Some(&not_pem), None));
        assert!(message.contains("holds no PEM certificate"), "{message}");
        let message = refused(with("nats://b", None, Some((&cert, &cert))));
        assert!(
            message.contains("client_key") && message.contains("no PEM private key"),
            "{message}"
        );
        let message = refused(SinkSettings {
            client_cert: Some(cert.clone()),
            ..sink("nats", "nats://b")
        });
        assert!(
            message.contains("client_cert needs client_key"),
            "{message}"
        );
        let message = refused(SinkSettings {
            kind: "redis".into(),
            ..with("redis://b:6379", Some(&ca), None)
        });
        assert!(message.contains("rediss://"), "{message}");
        for (kind, url) in [
            ("http", "https://b/"),
            ("amqp", "amqps://b/"),
            ("redis", "rediss://b:6380"),
            ("mqtt", "mqtts://b:8883"),
            ("kafka", "kafkas://b:9093"),
        ] {
            let settings = SinkSettings {
                kind: kind.into(),
                ..with(url, Some(&ca), None)
            };
            assert!(check_sink("s", &settings).unwrap().tls.is_set(), "{kind}");
        }
    }
}
