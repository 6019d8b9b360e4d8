//! The two listening addresses, `listen` and `admin_listen` (`--listen`, `--admin-listen`):
//! read as an IP address and a port, with a hint when they are not, and checked against each
//! other when the configuration loads, so that a mistake is named before anything binds.

use std::net::SocketAddr;

use anyhow::bail;
use serde::{Deserialize, Deserializer};

/// Reads an IP address and port (`127.0.0.1:8443`, `[::1]:8443`). A host name is refused with
/// the forms that work: the listener binds what it is given, and resolving a name (to which
/// of its addresses?) would hide the choice.
pub fn parse(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "{text:?} is not an IP address and port: write one such as 127.0.0.1:8443, \
             [::1]:8443 or 0.0.0.0:8443 (all interfaces); host names such as localhost are \
             not resolved"
        )
    })
}

/// [`parse`] for serde, for the file and the environment.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// Refuses a `listen` and an `admin_listen` that would take the same port: the same address,
/// or one of them on every interface that the other is on (a bind to `0.0.0.0:P` takes
/// `127.0.0.1:P` too, and `[::]:P` on Linux takes IPv4's as well). Port 0 (any free port)
/// never clashes.
pub(super) fn check(listen: SocketAddr, admin_listen: SocketAddr) -> anyhow::Result<()> {
    let covers = |wide: SocketAddr, other: SocketAddr| {
        wide.ip().is_unspecified() && (wide.is_ipv6() || other.is_ipv4())
    };
    let same_port = listen.port() != 0 && listen.port() == admin_listen.port();
    let overlap = listen.ip() == admin_listen.ip()
        || covers(listen, admin_listen)
        || covers(admin_listen, listen);
    if same_port && overlap {
        bail!(
            "listen and admin_listen are the same address ({listen} and {admin_listen}): the \
             Listener API and the admin API need a port each; change one (--listen or listen, \
             --admin-listen or admin_listen in the config file)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_ip_address_and_port_reads_and_a_host_name_says_what_to_write() {
        assert_eq!(parse("127.0.0.1:8443"), Ok(address("127.0.0.1:8443")));
        assert_eq!(parse("[::1]:8443"), Ok(address("[::1]:8443")));
        let error = parse("localhost:18280").unwrap_err();
        assert!(
            error.contains("\"localhost:18280\"")
                && error.contains("127.0.0.1:8443")
                && error.contains("[::1]:8443"),
            "{error}"
        );
    }

    #[test]
    fn the_two_listeners_may_not_share_a_port() {
        for (listen, admin) in [
            ("127.0.0.1:9090", "127.0.0.1:9090"),
            ("0.0.0.0:9090", "127.0.0.1:9090"),
            ("[::1]:9090", "[::]:9090"),
            ("[::]:9090", "127.0.0.1:9090"),
        ] {
            let error = check(address(listen), address(admin)).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("listen and admin_listen are the same address"),
                "{error}"
            );
        }
        for (listen, admin) in [
            ("127.0.0.1:8443", "127.0.0.1:9090"),
            ("127.0.0.1:0", "127.0.0.1:0"),
            ("127.0.0.1:9090", "127.0.0.2:9090"),
            ("0.0.0.0:9090", "[::1]:9090"),
        ] {
            assert!(
                check(address(listen), address(admin)).is_ok(),
                "{listen} {admin}"
            );
        }
    }
}
