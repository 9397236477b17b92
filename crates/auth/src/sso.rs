//! The auth service's own login session (single sign-on): a second client, or the same one
//! later, signs in without a password while this session lives.
//!
//! The browser holds an opaque 256-bit token in an HttpOnly cookie scoped to `/auth`; the
//! database holds its SHA-256 with the user, IP, user agent, an idle window and an absolute
//! expiry. Revoking the session (sign-out, the security page) revokes its refresh tokens too.

use crate::AuthState;
use crate::util::{Requester, hash_token, random_token};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::Utc;
use turtlemen_db::auth_sessions::{self, AuthSession, NewSession};
use turtlemen_db::users::{self, User};
use turtlemen_db::{DbError, audit};

/// The cookie's name (`__Secure-` prefixed over https).
pub fn cookie_name(secure: bool) -> &'static str {
    if secure { "__Secure-turtlemen_sso" } else { "turtlemen_sso" }
}

/// The live session of this browser and its user, if any; records its use.
pub async fn current(state: &AuthState, jar: &CookieJar) -> Result<Option<(AuthSession, User)>, DbError> {
    let Some(cookie) = jar.get(cookie_name(state.secure_cookies)) else { return Ok(None) };
    if cookie.value().len() != 43 {
        return Ok(None);
    }
    let Some(session) = auth_sessions::find_by_token_hash(&state.db, &hash_token(cookie.value())).await? else {
        return Ok(None);
    };
    let now = Utc::now();
    if !session.is_live(now, state.settings.sso_idle) {
        return Ok(None);
    }
    let Some(user) = users::find_by_id(&state.db, session.user_id).await? else { return Ok(None) };
    if now - session.last_seen_at > chrono::Duration::minutes(1) {
        auth_sessions::touch(&state.db, session.id).await?;
    }
    Ok(Some((session, user)))
}

/// Starts a session for `user` (a fresh token every login: no fixation) and returns the jar
/// with its cookie.
pub async fn start(
    state: &AuthState,
    jar: CookieJar,
    user: &User,
    who: &Requester,
) -> Result<(CookieJar, AuthSession), DbError> {
    start_with(state, jar, user, who, "password").await
}

/// [`start`], recording how the user signed in (`password`, `external:github`…) in the audit log.
pub async fn start_with(
    state: &AuthState,
    jar: CookieJar,
    user: &User,
    who: &Requester,
    method: &str,
) -> Result<(CookieJar, AuthSession), DbError> {
    let token = random_token(32);
    let session = auth_sessions::create(
        &state.db,
        &NewSession {
            token_hash: &hash_token(&token),
            user_id: user.id,
            expires_at: Utc::now() + state.settings.sso_max,
            ip: &who.ip,
            user_agent: &who.user_agent,
        },
    )
    .await?;
    audit::record(&state.db, Some(user.id), "login", &who.ip, &who.user_agent, method).await?;
    let cookie = Cookie::build((cookie_name(state.secure_cookies), token))
        .path("/auth")
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(SameSite::Lax)
        .build();
    Ok((jar.add(cookie), session))
}

/// Ends `session` (and its refresh tokens) and removes the cookie.
pub async fn end(
    state: &AuthState,
    jar: CookieJar,
    session: &AuthSession,
    who: &Requester,
) -> Result<CookieJar, DbError> {
    auth_sessions::revoke(&state.db, session.user_id, session.id).await?;
    audit::record(&state.db, Some(session.user_id), "logout", &who.ip, &who.user_agent, "").await?;
    Ok(clear(state, jar))
}

/// The jar without the session cookie.
pub fn clear(state: &AuthState, jar: CookieJar) -> CookieJar {
    jar.remove(Cookie::build(cookie_name(state.secure_cookies)).path("/auth").build())
}
