//! `allowed_sources` and `trusted_proxies`: source-address allowlists of addresses and CIDRs,
//! parsed once. The gate in `http::auth` asks them; nothing here sees a request.

use std::net::IpAddr;

use ipnet::IpNet;

/// Source networks allowed to call; empty means every source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceAllowlist {
    networks: Vec<IpNet>,
}

/// An allowlist entry is not an address or a CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP address or a CIDR such as 10.0.0.0/8 or 2001:db8::/32")]
pub struct InvalidNetwork(pub String);

impl SourceAllowlist {
    /// Parses addresses (`192.0.2.7`) and CIDRs (`192.0.2.0/24`).
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, InvalidNetwork> {
        let networks = entries
            .into_iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| InvalidNetwork(entry.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(SourceAllowlist { networks })
    }

    /// Whether `source` may call. An IPv4 address seen as IPv6 (`::ffff:192.0.2.7`, as a
    /// dual-stack socket reports it) is checked as IPv4.
    pub fn allows(&self, source: IpAddr) -> bool {
        if self.networks.is_empty() {
            return true;
        }
        let source = match source {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(source, IpAddr::V4),
            v4 => v4,
        };
        self.networks
            .iter()
            .any(|network| network.contains(&source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_allowlist_admits_only_its_networks() {
        let list = SourceAllowlist::parse(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"]).unwrap();
        assert!(list.allows(ip("10.1.2.3")));
        assert!(list.allows(ip("192.0.2.7")));
        assert!(!list.allows(ip("192.0.2.8")));
        assert!(list.allows(ip("2001:db8::1")));
        assert!(!list.allows(ip("2001:db9::1")));
        assert!(
            list.allows(ip("::ffff:10.9.9.9")),
            "IPv4-mapped IPv6 is checked as IPv4"
        );
        assert!(
            SourceAllowlist::default().allows(ip("203.0.113.1")),
            "empty admits all"
        );
        assert_eq!(
            SourceAllowlist::parse(["10.0.0.0/33"]),
            Err(InvalidNetwork("10.0.0.0/33".into()))
        );
    }
}
