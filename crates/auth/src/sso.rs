//! The auth service's own login session (single sign-on): a second client, or the same one
//! later, signs in without a password while this session lives.
//!
//! The browser holds an opaque 256-bit token in an HttpOnly cookie scoped to `/auth`; the
//! database holds its SHA-256 with the user, IP, user agent, an idle window and an absolute
//! expiry. Revoking the session (sign-out, the security page) revokes its refresh tokens too.
//!
//! Every way a session ends goes through this module, which also marks it ended in the shared
//! session store ([`turtlemen_session::ended`]): the gateway sessions built on it end at once,
//! not when their access token expires. [`end_all_sessions`] (from `turtlemen-signout`, which
//! the API's ban shares) ends every session of a user: a password reset, a ban.

use crate::AuthState;
use crate::util::{Requester, hash_token, random_token};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::Utc;
use turtlemen_db::auth_sessions::{self, AuthSession, NewSession};
use turtlemen_db::users::{self, User};
use turtlemen_db::{DbError, audit};
use turtlemen_domain::UserId;
use uuid::Uuid;

use turtlemen_signout::mark_ended;
pub use turtlemen_signout::{EndError, end_all_sessions};

/// Ends session `id` of `user` (and its refresh tokens and gateway sessions); returns whether
/// the user had it.
///
/// The gateways' marks are written *before* the database is changed: if the session store is
/// down the request fails with nothing changed and can be retried, instead of leaving a session
/// revoked here whose gateway sessions nothing will ever end. A mark for a session whose
/// revocation then fails ends nothing the user did not ask to end.
pub async fn end_one(state: &AuthState, user: UserId, id: Uuid) -> Result<bool, EndError> {
    let live = auth_sessions::list_for_user(&state.db, user).await?;
    if !live.iter().any(|s| s.id == id) {
        return Ok(false);
    }
    mark_ended(&state.store, &[id]).await?;
    Ok(auth_sessions::revoke(&state.db, user, id).await?)
}

/// Ends every session of `user` but `except` (the one asking); returns how many ended. Marks
/// first, as [`end_one`].
pub async fn end_others(state: &AuthState, user: UserId, except: Uuid) -> Result<u64, EndError> {
    let live: Vec<Uuid> = auth_sessions::list_for_user(&state.db, user)
        .await?
        .into_iter()
        .map(|s| s.id)
        .filter(|id| *id != except)
        .collect();
    mark_ended(&state.store, &live).await?;
    let ids = auth_sessions::end_all_for_user(&state.db, user, Some(except)).await?;
    // A session started between the two reads is revoked too; mark it as well.
    let late: Vec<Uuid> = ids.iter().copied().filter(|id| !live.contains(id)).collect();
    mark_ended(&state.store, &late).await?;
    Ok(ids.len() as u64)
}

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
    // A banned account has no session (the ban revoked them; this holds if one slipped through).
    let Some(user) = users::find_by_id(&state.db, session.user_id).await?.filter(|u| !u.is_banned()) else {
        return Ok(None);
    };
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
    // A new session, a new CSRF cookie: no token from before the sign-in passes after it.
    Ok((state.csrf.rotate(jar.add(cookie)), session))
}

/// Ends `session` (and its refresh tokens and gateway sessions) and removes the cookie.
pub async fn end(
    state: &AuthState,
    jar: CookieJar,
    session: &AuthSession,
    who: &Requester,
) -> Result<CookieJar, EndError> {
    end_one(state, session.user_id, session.id).await?;
    audit::record(&state.db, Some(session.user_id), "logout", &who.ip, &who.user_agent, "").await?;
    Ok(clear(state, jar))
}

/// The jar without the session cookie.
pub fn clear(state: &AuthState, jar: CookieJar) -> CookieJar {
    jar.remove(Cookie::build(cookie_name(state.secure_cookies)).path("/auth").build())
}
