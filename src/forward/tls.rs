//! TLS towards a sink's server: the system's roots plus the CAs of the sink's `ca_cert`, and
//! the client certificate of `client_cert` and `client_key` when set, handed to each library in
//! the form it takes (a rustls configuration, reqwest's, lapin's, redis's).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::sinks::SinkTls;

/// The rustls client configuration of a sink: the system's roots and the sink's CAs, its
/// client certificate if any, and the ring provider.
pub(crate) fn client_config(tls: &SinkTls) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_native_certs::load_native_certs().certs {
        // A certificate the store cannot use is skipped, as browsers do.
        let _ = roots.add(certificate);
    }
    for certificate in extra_cas(tls) {
        roots.add(certificate)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    match &tls.client {
        None => Ok(builder.with_no_client_auth()),
        Some(client) => {
            let chain = CertificateDer::pem_slice_iter(&client.chain_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| rustls::Error::General(format!("client_cert: {error}")))?;
            let key = PrivateKeyDer::from_pem_slice(client.key_pem.expose().as_bytes())
                .map_err(|error| rustls::Error::General(format!("client_key: {error}")))?;
            builder.with_client_auth_cert(chain, key)
        }
    }
}

/// [`client_config`], shared, when the sink's connection uses TLS (`wanted`); `None` when it
/// does not, so that a plain connection reads no roots.
pub(crate) fn client_config_if(
    wanted: bool,
    tls: &SinkTls,
) -> anyhow::Result<Option<Arc<rustls::ClientConfig>>> {
    use anyhow::Context;

    if !wanted {
        return Ok(None);
    }
    Ok(Some(Arc::new(
        client_config(tls).context("cannot set TLS up")?,
    )))
}

/// The sink's own CAs (checked to read when the configuration was).
fn extra_cas(tls: &SinkTls) -> Vec<CertificateDer<'static>> {
    tls.ca_pem
        .as_deref()
        .map(|pem| {
            CertificateDer::pem_slice_iter(pem)
                .filter_map(Result::ok)
                .collect()
        })
        .unwrap_or_default()
}

/// Adds the sink's CAs and client certificate to an HTTP client.
pub(crate) fn http(
    mut builder: reqwest::ClientBuilder,
    tls: &SinkTls,
) -> anyhow::Result<reqwest::ClientBuilder> {
    use anyhow::Context;

    if let Some(pem) = &tls.ca_pem {
        let certificates =
            reqwest::Certificate::from_pem_bundle(pem).context("ca_cert does not read")?;
        builder = builder.tls_certs_merge(certificates);
    }
    if let Some(client) = &tls.client {
        let mut pem = client.chain_pem.clone();
        pem.push(b'\n');
        pem.extend_from_slice(client.key_pem.expose().as_bytes());
        builder = builder.identity(
            reqwest::Identity::from_pem(&pem).context("client_cert and client_key do not read")?,
        );
    }
    Ok(builder)
}

/// lapin's form: the extra CAs as PEM, the client certificate as PEM (PKCS#8 key).
pub(crate) fn amqp(tls: &SinkTls) -> lapin::tcp::OwnedTLSConfig {
    lapin::tcp::OwnedTLSConfig {
        identity: tls
            .client
            .as_ref()
            .map(|client| lapin::tcp::OwnedIdentity::PKCS8 {
                pem: client.chain_pem.clone(),
                key: client.key_pem.expose().as_bytes().to_vec(),
            }),
        cert_chain: tls
            .ca_pem
            .as_deref()
            .map(|pem| String::from_utf8_lossy(pem).into_owned()),
    }
}

/// redis's form. Its roots replace the system's, so the system's are given with the sink's.
pub(crate) fn redis(tls: &SinkTls) -> redis::TlsCertificates {
    let root_cert = tls.ca_pem.as_ref().map(|_| {
        let mut roots: Vec<pem::Pem> = rustls_native_certs::load_native_certs()
            .certs
            .into_iter()
            .map(|der| pem::Pem::new("CERTIFICATE", der.to_vec()))
            .collect();
        roots.extend(
            extra_cas(tls)
                .into_iter()
                .map(|der| pem::Pem::new("CERTIFICATE", der.to_vec())),
        );
        pem::encode_many(&roots).into_bytes()
    });
    redis::TlsCertificates {
        client_tls: tls.client.as_ref().map(|client| redis::ClientTlsConfig {
            client_cert: client.chain_pem.clone(),
            client_key: client.key_pem.expose().as_bytes().to_vec(),
        }),
        root_cert,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::sinks::ClientCertificate;
    use crate::secret::Secret;

    fn ca() -> (rcgen::Issuer<'static, rcgen::KeyPair>, String) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        (rcgen::Issuer::new(params, key), pem)
    }

    #[test]
    fn the_sinks_ca_is_trusted_beside_the_systems_roots_and_its_certificate_is_shown() {
        let (issuer, ca_pem) = ca();
        let key = rcgen::KeyPair::generate().unwrap();
        let client = rcgen::CertificateParams::new(vec!["sink.example".to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let tls = SinkTls {
            ca_pem: Some(ca_pem.clone().into_bytes()),
            client: Some(ClientCertificate {
                chain_pem: client.pem().into_bytes(),
                key_pem: Secret::new(key.serialize_pem()),
            }),
        };
        let with = client_config(&tls).unwrap();
        assert!(with.client_auth_cert_resolver.has_certs());
        let without = client_config(&SinkTls::default()).unwrap();
        assert!(!without.client_auth_cert_resolver.has_certs());

        let amqp = amqp(&tls);
        assert_eq!(amqp.cert_chain.as_deref(), Some(ca_pem.as_str()));
        assert!(matches!(
            amqp.identity,
            Some(lapin::tcp::OwnedIdentity::PKCS8 { .. })
        ));
        let certificates = redis(&tls);
        let roots = String::from_utf8(certificates.root_cert.unwrap()).unwrap();
        let ca_body: String = ca_pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        let roots_body: String = roots
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        assert!(
            roots_body.contains(&ca_body),
            "the sink's CA is among redis's roots"
        );
        assert!(certificates.client_tls.is_some());
        assert!(
            redis(&SinkTls::default()).root_cert.is_none(),
            "without ca_cert, redis keeps the system's roots"
        );
        let builder = crate::outbound::builder(
            &crate::outbound::TlsOptions::default(),
            std::time::Duration::from_secs(1),
            1,
        )
        .unwrap();
        http(builder, &tls).unwrap().build().unwrap();
    }
}
