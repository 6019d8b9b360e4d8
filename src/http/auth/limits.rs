//! How often a client may call: per-client rate limits (a token bucket, as GCRA from
//! `governor`). Who may call from where is `config::clients::SourceAllowlist`.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// A token bucket: `per_second` on average, up to `burst` at once.
pub(crate) struct RateLimit<C: Clock = DefaultClock> {
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
    pub(crate) fn new(per_second: f64, burst: NonZeroU32) -> Self {
        Self::with_clock(per_second, burst, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimit<C> {
    /// A limit on the given clock (tests use a fake one). `per_second` must be positive.
    pub(crate) fn with_clock(per_second: f64, burst: NonZeroU32, clock: C) -> Self {
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
    pub(crate) fn check(&self) -> Result<(), Duration> {
        self.limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

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
