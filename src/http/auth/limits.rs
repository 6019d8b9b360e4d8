//! Who may connect and how often: source-address allowlists (CIDRs) and per-client rate limits
//! (a token bucket, as GCRA from `governor`).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
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

/// A token bucket: `per_second` on average, up to `burst` at once.
pub struct RateLimit<C: Clock = DefaultClock> {
    limiter: RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<C::Instant>>,
    clock: C,
}

impl<C: Clock> std::fmt::Debug for RateLimit<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit").finish_non_exhaustive()
    }
}

impl RateLimit {
    /// A limit on the real clock.
    pub fn new(per_second: f64, burst: NonZeroU32) -> Self {
        Self::with_clock(per_second, burst, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimit<C> {
    /// A limit on the given clock (tests use a fake one). `per_second` must be positive.
    pub fn with_clock(per_second: f64, burst: NonZeroU32, clock: C) -> Self {
        let period =
            Duration::from_secs_f64(1.0 / per_second.max(1e-6)).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        RateLimit {
            limiter: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
        }
    }

    /// Takes a token, or says how long until one is free (for `Retry-After`).
    pub fn check(&self) -> Result<(), Duration> {
        self.limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

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

    #[test]
    fn a_burst_passes_then_the_rate_holds_and_retry_after_says_when() {
        let clock = FakeRelativeClock::default();
        let limit = RateLimit::with_clock(10.0, NonZeroU32::new(3).unwrap(), clock.clone());
        for _ in 0..3 {
            assert_eq!(limit.check(), Ok(()));
        }
        let wait = limit.check().unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        clock.advance(Duration::from_millis(100));
        assert_eq!(limit.check(), Ok(()));
        assert!(limit.check().is_err());
    }
}
