//! What a Kafka sink's URL and `sasl_mechanism` say.

use std::str::FromStr;

use anyhow::bail;

/// The SASL mechanism of a Kafka sink whose URL has a user and password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaSasl {
    /// PLAIN (over TLS, please).
    Plain,
    /// SCRAM-SHA-256.
    ScramSha256,
    /// SCRAM-SHA-512.
    ScramSha512,
}

impl FromStr for KafkaSasl {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<KafkaSasl> {
        match text.to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(KafkaSasl::Plain),
            "SCRAM-SHA-256" => Ok(KafkaSasl::ScramSha256),
            "SCRAM-SHA-512" => Ok(KafkaSasl::ScramSha512),
            _ => bail!(
                "sasl_mechanism {text:?} is not known: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
            ),
        }
    }
}

/// What a `kafka://` or `kafkas://` URL says: `[user:password@]host:port[,host:port…]`.
#[derive(Debug, PartialEq, Eq)]
pub struct KafkaBrokers {
    /// The bootstrap brokers, `host:port`.
    pub addresses: Vec<String>,
    /// TLS.
    pub tls: bool,
    /// The SASL user and password.
    pub credentials: Option<(String, String)>,
}

impl KafkaBrokers {
    /// Reads the URL; `Err` says what is wrong.
    pub fn parse(url: &str) -> Result<KafkaBrokers, &'static str> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("kafka://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("kafkas://") {
            (true, rest)
        } else {
            return Err("url must start with kafka:// or kafkas://");
        };
        let rest = rest.trim_end_matches('/');
        let (credentials, hosts) = match rest.rsplit_once('@') {
            Some((login, hosts)) => {
                let (user, password) = login.split_once(':').unwrap_or((login, ""));
                let decode = |text: &str| {
                    percent_encoding::percent_decode_str(text)
                        .decode_utf8_lossy()
                        .into_owned()
                };
                (Some((decode(user), decode(password))), hosts)
            }
            None => (None, rest),
        };
        let addresses: Vec<String> = hosts
            .split(',')
            .map(|host| {
                if host
                    .rsplit_once(':')
                    .is_some_and(|(name, port)| !name.is_empty() && port.parse::<u16>().is_ok())
                {
                    Ok(host.to_owned())
                } else {
                    Err("each broker must be host:port, as kafka://127.0.0.1:9092")
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(KafkaBrokers {
            addresses,
            tls,
            credentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_the_brokers_tls_and_the_login() {
        assert_eq!(
            KafkaBrokers::parse("kafkas://svc%40acme:p%3Ass@b1:9093,b2:9093/"),
            Ok(KafkaBrokers {
                addresses: vec!["b1:9093".into(), "b2:9093".into()],
                tls: true,
                credentials: Some(("svc@acme".into(), "p:ss".into())),
            })
        );
        assert_eq!(
            KafkaBrokers::parse("kafka://127.0.0.1:9092").map(|brokers| brokers.tls),
            Ok(false)
        );
        assert!(KafkaBrokers::parse("kafka://broker").is_err());
        assert!(KafkaBrokers::parse("http://broker:9092").is_err());
    }
}
