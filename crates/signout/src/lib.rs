//! Ending sessions for the gateways and the issuer at once: the `ended` marks every gateway
//! reads with its session ([`turtlemen_session::ended`]) and their announcement on the store's
//! bus (every gateway drops what it cached of those sessions), then the login sessions and
//! their refresh tokens revoked in the database.
//!
//! Two roles need it: the auth service (sign-out, "Sign out this session", a password change
//! or reset) and the API server (a moderator's ban, served by the API's pages and JSON), and the
//! `turtlemen admin ban` command. Neither role's crate may depend on the other, so the core
//! lives here, below both. Marks are written *before* the database is changed: if the session
//! store is down the caller fails with nothing changed and can retry, instead of leaving
//! sessions revoked here whose gateway sessions nothing will ever end.
//!
//! *Never* here: deciding who may end whose sessions (the callers do), HTTP routes.

use chrono::Utc;
use turtlemen_db::{Db, DbError, auth_sessions};
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

/// Marks the login sessions `ids` ended for the gateways, and announces each to them
/// ([`ended::Notice`]) so none reuses what it cached.
pub async fn mark_ended(store: &Sessions, ids: &[Uuid]) -> Result<(), SessionError> {
    for id in ids {
        ended::end_session(&**store, &id.to_string()).await?;
    }
    for id in ids {
        ended::announce(&**store, &ended::Notice::Session(id.to_string())).await;
    }
    Ok(())
}

/// Ends every session of `user` — login sessions, their refresh tokens, and the gateway
/// sessions built on them (also those authenticated in an earlier second, through the user
/// mark) — and returns how many login sessions ended. For a password reset and a ban.
pub async fn end_all_sessions(db: &Db, store: &Sessions, user: UserId) -> Result<u64, EndError> {
    let live: Vec<Uuid> = auth_sessions::list_for_user(db, user).await?.into_iter().map(|s| s.id).collect();
    mark_ended(store, &live).await?;
    ended::end_user(&**store, &user.to_string(), Utc::now().timestamp()).await?;
    // Announced before the database changes: the gateways drop their cached sessions while the
    // revocation runs, so the user's next request, wherever it lands, reads the marks.
    ended::announce(&**store, &ended::Notice::User(user.to_string())).await;
    let ids = auth_sessions::end_all_for_user(db, user, None).await?;
    // A session started between the two reads is revoked too; mark it as well.
    let late: Vec<Uuid> = ids.iter().copied().filter(|id| !live.contains(id)).collect();
    mark_ended(store, &late).await?;
    Ok(ids.len() as u64)
}
