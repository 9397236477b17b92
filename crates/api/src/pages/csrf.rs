//! CSRF tokens for the studio's forms: an HMAC bound to the signed-in user, their session and an
//! expiry.
//!
//! The token is made with the instance's media key ([`crate::media::MediaSigner`], derived from
//! the cookie secret every API server shares) over a subject that is not a video id: the
//! SHA-256 of a fixed label, the user's id and the login session the access token names (its
//! `sid`), cut to 16 bytes. A cross-site page can neither read the token from our page nor
//! compute it, one user's token does not pass for another, and a token dies with the session it
//! was shown in: after signing out and in again the session, and so the token, is another.
//! Tokens last as long as media URLs (six to twelve hours) at most; a stale form is refused with
//! 403 and a reason, never half-applied.

use crate::ApiState;
use crate::identity::CurrentUser;
use axum::http::StatusCode;
use ring::digest;
use std::time::SystemTime;
use turtlemen_http::ApiError;
use uuid::Uuid;

/// What the token signs for `user` in the login session their access token names.
fn subject(user: &CurrentUser) -> Uuid {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"turtlemen page form v2\0");
    ctx.update(user.0.id.0.as_bytes());
    ctx.update(b"\0");
    ctx.update(user.1.session_id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&ctx.finish().as_ref()[..16]);
    Uuid::from_bytes(bytes)
}

/// The token for a form `user` is about to be shown in (bound to their login session).
pub(super) fn token(st: &ApiState, user: &CurrentUser) -> String {
    st.media.token(subject(user), SystemTime::now())
}

/// Refuses a submission whose token is missing, forged, someone else's, another session's or
/// expired.
pub(super) fn check(st: &ApiState, user: &CurrentUser, submitted: &str) -> Result<(), ApiError> {
    if st.media.verify(submitted, subject(user), SystemTime::now()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "This form has expired or did not come from this site. Go back, reload the page and try again.",
        ))
    }
}

/// A form that carries nothing but its CSRF token (a button such as "End" or "Mark all as read").
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(super) struct TokenForm {
    pub csrf: String,
}
