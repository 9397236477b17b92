//! When the database last gave trouble: any failure but a conflict, a connection that failed
//! its check, a server that went away. The pool's checks that cost a round trip on every use
//! (see [`crate::pool`]) are made only for a while after trouble, when they are what recovers a
//! pool, and not on the busy path of a healthy one.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long after trouble the pool keeps checking every connection it hands out or takes back.
pub const WINDOW: Duration = Duration::from_secs(30);

/// Milliseconds since [`epoch`] at the last trouble, plus one (0: none yet).
static LAST: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Something went wrong with the database.
pub(crate) fn seen() {
    LAST.store(now_ms().saturating_add(1), Ordering::Relaxed);
}

/// Whether trouble was seen within [`WINDOW`].
pub(crate) fn recent() -> bool {
    let last = LAST.load(Ordering::Relaxed);
    last != 0 && now_ms().saturating_add(1).saturating_sub(last) < WINDOW.as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trouble_is_recent_once_seen() {
        seen();
        assert!(recent());
    }
}
