//! Marks of ended sessions: how the auth service tells every gateway, at once, that sessions
//! built on a login session must end.
//!
//! The auth service writes a mark when a login (SSO) session ends by any path — sign-out,
//! "Sign out this session", a password change ending the others, a reset or a ban ending
//! them all — and, for "every session of this user", a mark holding the Unix second from which the
//! user's sessions count again. The gateway keeps the login session's id (`sid` of the ID
//! token) and `auth_time` with its own session and reads the marks together with the session
//! ([`super::SessionStore::get_many`]); a marked session is ended there and then.
//!
//! Marks live [`REMEMBER`]: longer than any gateway session (30 days at most). Absent marks
//! mean "not ended": an external issuer writes none, and its sessions end as before, when a
//! refresh is refused.
//!
//! A gateway reuses a session it read a moment ago without reading the marks again, so each
//! mark is also announced ([`Notice`], on the store's bus topic [`TOPIC`]) once written: every
//! gateway drops what it cached of those sessions, and the next request reads the marks. The
//! marks decide; a notice that is lost only leaves the cache's own time to live.

use crate::{SessionError, SessionStore};
use std::time::Duration;

/// The bus topic of [`Notice`]s.
pub const TOPIC: &str = "ended";

/// What an announcement says ended: every session of a user, or one login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Every session of user `sub`.
    User(String),
    /// The sessions built on login session `sid`.
    Session(String),
}

impl Notice {
    /// The payload on the bus.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Notice::User(sub) => format!("user:{sub}").into_bytes(),
            Notice::Session(sid) => format!("sid:{sid}").into_bytes(),
        }
    }

    /// A payload read from the bus; `None` for anything else.
    pub fn parse(payload: &[u8]) -> Option<Notice> {
        let text = std::str::from_utf8(payload).ok()?;
        if let Some(sub) = text.strip_prefix("user:") {
            Some(Notice::User(sub.to_owned()))
        } else {
            text.strip_prefix("sid:").map(|sid| Notice::Session(sid.to_owned()))
        }
    }
}

/// Announces `notice` to every process sharing `store` (after its mark is written). A failure
/// is logged, not returned: the mark already ends the sessions, the notice only hastens it.
pub async fn announce(store: &dyn SessionStore, notice: &Notice) {
    let sent = match store.bus(TOPIC).await {
        Ok(bus) => bus.publish(&notice.encode()).await,
        Err(e) => Err(e),
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, "cannot announce ended sessions; gateways see the mark when their cache expires");
    }
}

/// How long a mark is kept: past the absolute lifetime of every session it could end.
pub const REMEMBER: Duration = Duration::from_secs(31 * 24 * 3600);

/// The key of the mark for login session `sid`.
pub fn session_key(sid: &str) -> String {
    format!("ended:sid:{sid}")
}

/// The key of the mark for every session of user `sub`.
pub fn user_key(sub: &str) -> String {
    format!("ended:user:{sub}")
}

/// Marks login session `sid` as ended.
pub async fn end_session(store: &dyn SessionStore, sid: &str) -> Result<(), SessionError> {
    store.set(&session_key(sid), b"1", REMEMBER).await
}

/// Marks every session of user `sub` authenticated before `now` (Unix seconds) as ended.
pub async fn end_user(store: &dyn SessionStore, sub: &str, now: i64) -> Result<(), SessionError> {
    store.set(&user_key(sub), now.to_string().as_bytes(), REMEMBER).await
}

/// Whether a session is ended, given the marks read for it (its login session's, its user's)
/// and its `auth_time`. A user mark ends sessions authenticated in an earlier second; a session
/// that began in the same second is ended by its own mark, so a sign-in just after the mark
/// stands.
pub fn is_ended(session_mark: Option<&[u8]>, user_mark: Option<&[u8]>, auth_time: Option<i64>) -> bool {
    if session_mark.is_some() {
        return true;
    }
    let since = user_mark.and_then(|m| std::str::from_utf8(m).ok()).and_then(|m| m.parse::<i64>().ok());
    matches!((since, auth_time), (Some(since), Some(at)) if at < since)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_end_what_they_name() {
        assert!(!is_ended(None, None, Some(100)));
        assert!(is_ended(Some(b"1"), None, Some(100)));
        assert!(is_ended(None, Some(b"101"), Some(100)), "authenticated before the mark");
        assert!(!is_ended(None, Some(b"100"), Some(100)), "the same second: its own mark decides");
        assert!(!is_ended(None, Some(b"100"), Some(200)), "signed in again afterwards");
        assert!(!is_ended(None, Some(b"100"), None), "no auth_time: only its own mark");
        assert!(!is_ended(None, Some(b"garbage"), Some(1)));
    }

    #[test]
    fn notices_read_back_as_written() {
        for n in [Notice::User("0190-ab".into()), Notice::Session("s:1".into())] {
            assert_eq!(Notice::parse(&n.encode()), Some(n));
        }
        assert_eq!(Notice::parse(b"other:1"), None);
        assert_eq!(Notice::parse(&[0xff, 0xfe]), None);
    }
}
