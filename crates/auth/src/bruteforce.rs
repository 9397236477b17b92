//! Brute-force protection, after Keycloak's brute-force detection: failure counters per account
//! and per client IP in the session store, temporary lockouts with growing waits.
//!
//! - Every `max_failures`-th failure of an account locks it for `wait_increment`, doubling with
//!   each further lockout up to `max_wait`; the failure count is forgotten `failure_reset` after
//!   the first failure, or at once on a success.
//! - `ip_max_failures` failures from one IP within `ip_window` lock that IP out of every account
//!   until the window ends. A success does *not* clear the IP counter: an attacker holding one
//!   account could otherwise clear it between guesses at others.
//! - A locked attempt is refused before the credential is checked, and the caller answers it
//!   exactly like a wrong password, so a lockout tells nothing an attacker can use. Names that
//!   match no account are counted and locked the same way, so locking does not reveal which
//!   accounts exist.
//! - The attempt is counted *before* the credential is checked, and the attempt that reaches the
//!   threshold sets the lock before checking, so parallel guesses cannot slip past the limit.
//!
//! Never: verify a credential while locked, or key a counter on anything but the account id or
//! a hash of the name typed.

use crate::util::hash_token;
use std::time::Duration;
use turtlemen_domain::UserId;
use turtlemen_session::{SessionError, Sessions};

/// Thresholds and waits of the brute-force protection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BruteForceSettings {
    /// Failures of one account that lock it.
    pub max_failures: u32,
    /// The first lockout's length; each further lockout doubles it…
    pub wait_increment: Duration,
    /// …up to this.
    pub max_wait: Duration,
    /// How long an account's failures are remembered, from the first one.
    pub failure_reset: Duration,
    /// Failures from one IP that lock it out…
    pub ip_max_failures: u32,
    /// …within this window (from the first of them).
    pub ip_window: Duration,
}

impl Default for BruteForceSettings {
    fn default() -> Self {
        Self {
            max_failures: 5,
            wait_increment: Duration::from_secs(60),
            max_wait: Duration::from_secs(15 * 60),
            failure_reset: Duration::from_secs(12 * 3600),
            ip_max_failures: 20,
            ip_window: Duration::from_secs(15 * 60),
        }
    }
}

impl BruteForceSettings {
    /// The length of the `nth` lockout (1-based) of an account.
    pub fn wait(&self, nth: u32) -> Duration {
        let factor = 1u32.checked_shl(nth.saturating_sub(1)).unwrap_or(u32::MAX);
        self.wait_increment.saturating_mul(factor).min(self.max_wait)
    }
}

/// Whose failures an attempt counts towards.
#[derive(Debug, Clone)]
pub enum Subject<'a> {
    /// An existing account.
    Account(UserId),
    /// A name that matched no account (counted all the same).
    Unknown(&'a str),
    /// An account's second factor: counted apart from its password, so that signing in again
    /// with a known password does not clear the count of wrong codes.
    SecondFactor(UserId),
}

impl Subject<'_> {
    fn key(&self) -> String {
        match self {
            Subject::Account(id) => format!("u:{}", id.0),
            Subject::Unknown(name) => format!("n:{}", hash_token(&name.trim().to_lowercase())),
            Subject::SecondFactor(id) => format!("t:{}", id.0),
        }
    }
}

/// Why an attempt was refused unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    Account,
    Ip,
}

/// A lockout that a failure just started, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lockout {
    Account { wait: Duration },
    Ip { window: Duration },
}

impl Lockout {
    /// The audit log's detail: what was locked and for how long.
    pub fn detail(&self) -> String {
        match self {
            Lockout::Account { wait } => format!("account for {}s", wait.as_secs()),
            Lockout::Ip { window } => format!("ip for up to {}s", window.as_secs()),
        }
    }
}

/// One counted attempt, between [`Throttle::begin`] and its outcome.
#[derive(Debug)]
#[must_use = "report the outcome with Throttle::failed or Throttle::succeeded"]
pub struct Attempt {
    account: String,
    ip: String,
    /// The lockout this attempt set pre-emptively (it reached the threshold).
    locks: Option<Duration>,
}

/// The brute-force checks over the session store.
pub struct Throttle<'a> {
    pub store: &'a Sessions,
    pub settings: &'a BruteForceSettings,
}

fn count(value: Option<Vec<u8>>) -> i64 {
    value.and_then(|v| std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok())).unwrap_or(0)
}

impl Throttle<'_> {
    /// Counts an attempt by `subject` from `ip` before its credential is checked: `Err` when it
    /// must be refused unchecked.
    pub async fn begin(&self, subject: &Subject<'_>, ip: &str) -> Result<Result<Attempt, Locked>, SessionError> {
        let account = format!("bf:a:{}", subject.key());
        let lock = format!("{account}:lock");
        let ip = format!("bf:ip:{}", hash_token(ip));
        if count(self.store.get(&ip).await?) >= i64::from(self.settings.ip_max_failures) {
            return Ok(Err(Locked::Ip));
        }
        if self.store.get(&lock).await?.is_some() {
            return Ok(Err(Locked::Account));
        }
        let n = self.store.incr(&account, self.settings.failure_reset).await?;
        let max = i64::from(self.settings.max_failures.max(1));
        let mut locks = None;
        if n % max == 0 {
            let wait = self.settings.wait(u32::try_from(n / max).unwrap_or(u32::MAX));
            self.store.set(&lock, b"1", wait).await?;
            locks = Some(wait);
        } else if self.store.get(&lock).await?.is_some() {
            // A concurrent attempt reached the threshold meanwhile.
            return Ok(Err(Locked::Account));
        }
        Ok(Ok(Attempt { account, ip, locks }))
    }

    /// The credential was wrong: counts the IP's failure; returns the lockouts this started.
    pub async fn failed(&self, attempt: Attempt) -> Result<Vec<Lockout>, SessionError> {
        let mut out = Vec::new();
        if let Some(wait) = attempt.locks {
            out.push(Lockout::Account { wait });
        }
        let n = self.store.incr(&attempt.ip, self.settings.ip_window).await?;
        if n == i64::from(self.settings.ip_max_failures) {
            out.push(Lockout::Ip { window: self.settings.ip_window });
        }
        Ok(out)
    }

    /// Forgets an account's failures and lifts its lockout (after a password reset).
    pub async fn clear_account(&self, user: UserId) -> Result<(), SessionError> {
        let account = format!("bf:a:{}", Subject::Account(user).key());
        self.store.delete(&format!("{account}:lock")).await?;
        self.store.delete(&account).await
    }

    /// The credential was right: the account's failures are forgotten.
    pub async fn succeeded(&self, attempt: Attempt) -> Result<(), SessionError> {
        self.store.delete(&format!("{}:lock", attempt.account)).await?;
        self.store.delete(&attempt.account).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap() {
        let s = BruteForceSettings::default();
        let mins: Vec<u64> = (1..=7).map(|n| s.wait(n).as_secs() / 60).collect();
        assert_eq!(mins, [1, 2, 4, 8, 15, 15, 15]);
        assert_eq!(s.wait(200), s.max_wait, "no overflow");
    }

    #[test]
    fn unknown_names_are_keyed_by_a_hash_of_the_name() {
        let a = Subject::Unknown(" Nobody ").key();
        assert_eq!(a, Subject::Unknown("nobody").key());
        assert!(!a.contains("nobody"));
    }
}
