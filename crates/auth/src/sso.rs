//! The auth service's own login session (single sign-on): a second client, or the same one
//! later, signs in without a password while this session lives.
//!
//! The browser holds an opaque 256-bit token in an HttpOnly cookie scoped to `/auth`; the
//! database holds its SHA-256 with the user, IP, user agent, an idle window and an absolute
//! expiry. Revoking the session (sign-out, the security page) revokes its refresh tokens too.
//!
//! Every way a session ends goes through this module, which also marks it ended in the shared
//! session store ([`turtlemen_session::ended`]): the gateway sessions built on it end at once,
//! not when their access token expires. [`end_all_sessions`] ends every session of a user
//! (a password reset; the ban the moderation issue will add).

use crate::AuthState;
use crate::util::{Requester, hash_token, random_token};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::Utc;
use turtlemen_db::auth_sessions::{self, AuthSession, NewSession};
use turtlemen_db::users::{self, User};
use turtlemen_db::{Db, DbError, audit};
use turtlemen_domain::UserId;
use turtlemen_http::ApiError;
use turtlemen_session::{SessionError, Sessions, ended};
use uuid::Uuid;

/// Why ending sessions failed.
#[derive(Debug, thiserror::Error)]
pub enum EndError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot mark the sessions ended: {0}")]
    Store(#[from] SessionError),
}

impl From<EndError> for ApiError {
    fn from(e: EndError) -> Self {
        match e {
            EndError::Db(e) => e.into(),
            EndError::Store(e) => {
                tracing::error!(error = %e, "cannot mark sessions ended");
                ApiError::unavailable("Signing out is temporarily unavailable; try again shortly.")
            }
        }
    }
}

/// Marks the login sessions `ids` ended for the gateways.
async fn mark_ended(store: &Sessions, ids: &[Uuid]) -> Result<(), SessionError> {
    for id in ids {
        ended::end_session(&**store, &id.to_string()).await?;
    }
    Ok(())
}

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

/// Ends every session of `user` — login sessions, their refresh tokens, and the gateway
/// sessions built on them (also those authenticated in an earlier second, through the user
/// mark) — and returns how many login sessions ended. For a password reset, and for whatever
/// must sign a user out everywhere at once (the ban the moderation issue will add). Marks
/// first, as [`end_one`].
pub async fn end_all_sessions(db: &Db, store: &Sessions, user: UserId) -> Result<u64, EndError> {
    let live: Vec<Uuid> = auth_sessions::list_for_user(db, user).await?.into_iter().map(|s| s.id).collect();
    mark_ended(store, &live).await?;
    ended::end_user(&**store, &user.to_string(), Utc::now().timestamp()).await?;
    let ids = auth_sessions::end_all_for_user(db, user, None).await?;
    let late: Vec<Uuid> = ids.iter().copied().filter(|id| !live.contains(id)).collect();
    mark_ended(store, &late).await?;
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
