//! Rate limits at the entry for the endpoints worth attacking: sign-in, registration, "forgot
//! password" (each post may mail someone), the token endpoint and upload creation — per client
//! address and, where there is one, per session. Over the limit: 429 with `Retry-After` (the
//! same for every account named, so it tells nothing about accounts).
//!
//! The client address is the connection's peer, unless that peer is a trusted proxy: then the
//! right-most address in `X-Forwarded-For` that is not itself a trusted proxy
//! ([`turtlemen_http::client_addr`], the rule every role uses). Counters live in
//! this process (GCRA token buckets), so with several gateways each enforces its own share.

use axum::http::Method;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// What is being limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    Login,
    Register,
    /// `POST /auth/forgot-password`: the auth service caps links per account; this caps the
    /// mail one address can cause across accounts.
    Forgot,
    Token,
    Upload,
}

impl Bucket {
    /// The bucket of a request, if it is limited.
    pub fn of(method: &Method, path: &str) -> Option<Bucket> {
        if method != Method::POST {
            return None;
        }
        match path {
            "/auth/login" => Some(Bucket::Login),
            "/auth/register" => Some(Bucket::Register),
            "/auth/forgot-password" => Some(Bucket::Forgot),
            "/auth/token" => Some(Bucket::Token),
            "/api/v1/uploads" => Some(Bucket::Upload),
            _ => None,
        }
    }

    /// Requests allowed per period, as (burst, period).
    fn quota(self) -> (u32, Duration) {
        match self {
            // A flood guard: the auth service's own brute-force protection (per account and per
            // address, with lockouts) is the finer rule behind it.
            Bucket::Login => (30, Duration::from_secs(60)),
            Bucket::Register => (5, Duration::from_secs(600)),
            Bucket::Forgot => (5, Duration::from_secs(15 * 60)),
            Bucket::Token => (60, Duration::from_secs(60)),
            Bucket::Upload => (30, Duration::from_secs(3600)),
        }
    }
}

fn limiter<K: std::hash::Hash + Eq + Clone>(bucket: Bucket) -> DefaultKeyedRateLimiter<K> {
    let (burst, period) = bucket.quota();
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period / burst.get())
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    RateLimiter::keyed(quota)
}

/// The limiters of one gateway.
pub struct RateLimits {
    per_ip: Vec<(Bucket, DefaultKeyedRateLimiter<IpAddr>)>,
    per_session: Vec<(Bucket, DefaultKeyedRateLimiter<String>)>,
}

impl Default for RateLimits {
    fn default() -> Self {
        let all = [Bucket::Login, Bucket::Register, Bucket::Forgot, Bucket::Token, Bucket::Upload];
        Self {
            per_ip: all.iter().map(|&b| (b, limiter(b))).collect(),
            per_session: vec![(Bucket::Upload, limiter(Bucket::Upload))],
        }
    }
}

impl RateLimits {
    /// `Err(wait)` when this client (or session) is over the limit for `bucket`.
    pub fn check(&self, bucket: Bucket, ip: IpAddr, session: Option<&str>) -> Result<(), Duration> {
        let clock = DefaultClock::default();
        if let Some((_, l)) = self.per_ip.iter().find(|(b, _)| *b == bucket)
            && let Err(not_until) = l.check_key(&ip)
        {
            return Err(not_until.wait_time_from(clock.now()));
        }
        if let (Some(s), Some((_, l))) = (session, self.per_session.iter().find(|(b, _)| *b == bucket))
            && let Err(not_until) = l.check_key(&s.to_string())
        {
            return Err(not_until.wait_time_from(clock.now()));
        }
        Ok(())
    }

    /// Forgets clients that have been quiet long enough to be back at a full bucket.
    pub fn forget_idle(&self) {
        for (_, l) in &self.per_ip {
            l.retain_recent();
        }
        for (_, l) in &self.per_session {
            l.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_client() {
        let limits = RateLimits::default();
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        let b: IpAddr = "203.0.113.2".parse().unwrap();
        for _ in 0..30 {
            assert!(limits.check(Bucket::Login, a, None).is_ok());
        }
        let wait = limits.check(Bucket::Login, a, None).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(2));
        assert!(limits.check(Bucket::Login, b, None).is_ok(), "another client is not affected");
        assert!(limits.check(Bucket::Token, a, None).is_ok(), "another bucket is not affected");
    }

    #[test]
    fn forgot_password_posts_are_limited_per_client() {
        assert_eq!(Bucket::of(&Method::POST, "/auth/forgot-password"), Some(Bucket::Forgot));
        assert_eq!(Bucket::of(&Method::GET, "/auth/forgot-password"), None, "the form itself is free");
        let limits = RateLimits::default();
        let a: IpAddr = "203.0.113.1".parse().unwrap();
        for _ in 0..5 {
            assert!(limits.check(Bucket::Forgot, a, None).is_ok());
        }
        let wait = limits.check(Bucket::Forgot, a, None).unwrap_err();
        assert!(wait > Duration::from_secs(60) && wait <= Duration::from_secs(180), "{wait:?}");
        assert!(limits.check(Bucket::Forgot, "203.0.113.2".parse().unwrap(), None).is_ok());
    }
}
