//! Client certificates: the verifier that asks for one during the TLS handshake and accepts only
//! certificates from the configured CA (unknown or expired ones fail the handshake; clients
//! without a certificate go on to other credentials), and the names read from an accepted one.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The names of an accepted client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerIdentity {
    /// The subject DN, as `CN=nbi.seller.example, O=Seller`.
    pub subject: String,
    /// DNS names, URIs, e-mail and IP addresses of the subject alternative names.
    pub sans: Vec<String>,
}

impl PeerIdentity {
    /// Reads the names of a DER certificate; `None` if it cannot be parsed (rustls has already
    /// verified it, so this does not happen in practice).
    pub(crate) fn from_der(der: &[u8]) -> Option<PeerIdentity> {
        let (_, certificate) = X509Certificate::from_der(der).ok()?;
        let subject = certificate.subject().to_string();
        let mut sans = Vec::new();
        if let Ok(Some(extension)) = certificate.subject_alternative_name() {
            for name in &extension.value.general_names {
                match name {
                    GeneralName::DNSName(name)
                    | GeneralName::URI(name)
                    | GeneralName::RFC822Name(name) => sans.push((*name).to_owned()),
                    GeneralName::IPAddress(bytes) => {
                        if let Ok(octets) = <[u8; 4]>::try_from(*bytes) {
                            sans.push(std::net::IpAddr::from(octets).to_string());
                        } else if let Ok(octets) = <[u8; 16]>::try_from(*bytes) {
                            sans.push(std::net::IpAddr::from(octets).to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(PeerIdentity { subject, sans })
    }
}

/// A verifier that trusts the CA certificates in `ca_file` and lets clients without a
/// certificate through (they must then authenticate otherwise).
pub(crate) fn client_verifier(ca_file: &Path) -> anyhow::Result<Arc<dyn ClientCertVerifier>> {
    let mut roots = RootCertStore::empty();
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
        .and_then(|certs| certs.collect())
        .with_context(|| format!("cannot read the client CA {}", ca_file.display()))?;
    if certificates.is_empty() {
        anyhow::bail!(
            "the client CA {} holds no PEM certificate",
            ca_file.display()
        );
    }
    for certificate in certificates {
        roots.add(certificate).with_context(|| {
            format!(
                "the client CA {} holds an unusable certificate",
                ca_file.display()
            )
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .with_context(|| format!("cannot verify clients with the CA {}", ca_file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_from_a_certificate() {
        let mut params =
            rcgen::CertificateParams::new(vec!["nbi.seller.example".to_owned()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "nbi");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Seller");
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("192.0.2.7".parse().unwrap()));
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        let identity = PeerIdentity::from_der(certificate.der()).unwrap();
        assert_eq!(
            crate::config::clients::normalize_dn(&identity.subject),
            "CN=nbi,O=Seller"
        );
        assert_eq!(identity.sans, ["nbi.seller.example", "192.0.2.7"]);
    }
}
