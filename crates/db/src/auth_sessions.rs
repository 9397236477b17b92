//! SSO login sessions of the auth service: one row per signed-in browser, found by the SHA-256
//! of the opaque cookie token (the token itself is never stored).

use crate::{Db, DbError, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// A login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSession {
    pub id: Uuid,
    pub user_id: UserId,
    pub auth_time: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ip: String,
    pub user_agent: String,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl AuthSession {
    /// Live: not revoked, before its absolute expiry and used within `idle`.
    pub fn is_live(&self, now: DateTime<Utc>, idle: chrono::Duration) -> bool {
        self.revoked_at.is_none() && now < self.expires_at && now < self.last_seen_at + idle
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    user_id: Uuid,
    auth_time: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    ip: String,
    user_agent: String,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<Row> for AuthSession {
    fn from(r: Row) -> Self {
        AuthSession {
            id: r.id,
            user_id: UserId(r.user_id),
            auth_time: r.auth_time,
            last_seen_at: r.last_seen_at,
            expires_at: r.expires_at,
            ip: r.ip,
            user_agent: r.user_agent,
            revoked_at: r.revoked_at,
        }
    }
}

/// What a new session records.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
    pub ip: &'a str,
    pub user_agent: &'a str,
}

pub async fn create(db: &Db, s: &NewSession<'_>) -> Result<AuthSession, DbError> {
    let now = Utc::now();
    let row: Row = with_pool!(db, |pool| {
        sqlx::query_as(
            "INSERT INTO auth_sessions (id, token_hash, user_id, auth_time, last_seen_at, expires_at, ip, user_agent) \
             VALUES ($1, $2, $3, $4, $4, $5, $6, $7) \
             RETURNING id, user_id, auth_time, last_seen_at, expires_at, ip, user_agent, revoked_at",
        )
        .bind(Uuid::now_v7())
        .bind(s.token_hash)
        .bind(s.user_id.0)
        .bind(now)
        .bind(s.expires_at)
        .bind(s.ip)
        .bind(s.user_agent)
        .fetch_one(pool)
        .await?
    });
    Ok(row.into())
}

/// `SELECT` of every [`Row`] column, then `$tail` (a literal, so the query stays `&'static`).
macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT id, user_id, auth_time, last_seen_at, expires_at, ip, user_agent, revoked_at FROM auth_sessions ",
            $tail
        )
    };
}

pub async fn find_by_token_hash(db: &Db, token_hash: &str) -> Result<Option<AuthSession>, DbError> {
    let row: Option<Row> = with_pool!(db, |pool| {
        sqlx::query_as(select!("WHERE token_hash = $1")).bind(token_hash).fetch_optional(pool).await?
    });
    Ok(row.map(AuthSession::from))
}

pub async fn find(db: &Db, id: Uuid) -> Result<Option<AuthSession>, DbError> {
    let row: Option<Row> =
        with_pool!(db, |pool| { sqlx::query_as(select!("WHERE id = $1"),).bind(id).fetch_optional(pool).await? });
    Ok(row.map(AuthSession::from))
}

/// The user's sessions that are not revoked, newest first.
pub async fn list_for_user(db: &Db, user_id: UserId) -> Result<Vec<AuthSession>, DbError> {
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(select!("WHERE user_id = $1 AND revoked_at IS NULL ORDER BY auth_time DESC"))
            .bind(user_id.0)
            .fetch_all(pool)
            .await?
    });
    Ok(rows.into_iter().map(AuthSession::from).collect())
}

/// Records use of the session (sliding the idle window).
pub async fn touch(db: &Db, id: Uuid) -> Result<(), DbError> {
    with_pool!(db, |pool| {
        sqlx::query("UPDATE auth_sessions SET last_seen_at = $1 WHERE id = $2")
            .bind(Utc::now())
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

/// Revokes a session of `user_id` and every refresh token issued under it; returns whether the
/// session existed (and belonged to the user).
pub async fn revoke(db: &Db, user_id: UserId, id: Uuid) -> Result<bool, DbError> {
    let now = Utc::now();
    crate::retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("UPDATE auth_sessions SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .bind(user_id.0)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE session_id = $2 AND user_id = $3 AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .bind(user_id.0)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        })
    })
    .await
}

/// Revokes every session of `user_id` but `except` (the one making the change, if any) and
/// every refresh token issued under them; returns how many sessions ended.
pub async fn revoke_all_for_user(db: &Db, user_id: UserId, except: Option<Uuid>) -> Result<u64, DbError> {
    Ok(end_all_for_user(db, user_id, except).await?.len() as u64)
}

/// [`revoke_all_for_user`], returning the ids of the sessions it ended (for the marks that end
/// the gateway sessions built on them).
pub async fn end_all_for_user(db: &Db, user_id: UserId, except: Option<Uuid>) -> Result<Vec<Uuid>, DbError> {
    let now = Utc::now();
    // The nil UUID is no session's id: `None` spares none.
    let keep = except.unwrap_or(Uuid::nil());
    crate::retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let ended: Vec<Uuid> = sqlx::query_scalar(
                "UPDATE auth_sessions SET revoked_at = $1 WHERE user_id = $2 AND id <> $3 AND revoked_at IS NULL \
                 RETURNING id",
            )
            .bind(now)
            .bind(user_id.0)
            .bind(keep)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND session_id <> $3 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(user_id.0)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(ended)
        })
    })
    .await
}
