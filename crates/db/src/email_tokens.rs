//! Single-use links sent by mail (email verification, password reset): only the SHA-256 of the
//! token is stored, with the purpose, the address it was sent to, an expiry and when it was used.
//!
//! Why a table and not the session store: a verification link lives a day and must survive a
//! flushed Redis, and a password reset must be able to void every other link of the account.
//! Taking a token is one `UPDATE … RETURNING` that only an unused, unexpired row matches, so two
//! concurrent uses cannot both succeed.

use crate::{Db, DbError, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
        }
    }
}

/// A valid link's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailToken {
    pub user_id: UserId,
    /// The address the link was sent to.
    pub email: String,
    /// A local path to continue to afterwards (empty: none).
    pub return_to: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    user_id: Uuid,
    email: String,
    return_to: String,
}

impl From<Row> for EmailToken {
    fn from(r: Row) -> Self {
        EmailToken { user_id: UserId(r.user_id), email: r.email, return_to: r.return_to }
    }
}

/// What a new link records.
#[derive(Debug, Clone)]
pub struct NewEmailToken<'a> {
    pub token_hash: &'a str,
    pub user_id: UserId,
    pub purpose: Purpose,
    pub email: &'a str,
    pub return_to: &'a str,
    pub expires_at: DateTime<Utc>,
}

pub async fn create(db: &Db, t: &NewEmailToken<'_>) -> Result<(), DbError> {
    with_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO email_tokens (id, token_hash, user_id, purpose, email, return_to, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(Uuid::now_v7())
        .bind(t.token_hash)
        .bind(t.user_id.0)
        .bind(t.purpose.as_str())
        .bind(t.email)
        .bind(t.return_to)
        .bind(Utc::now())
        .bind(t.expires_at)
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok(())
}

/// The link's record if it is unused and unexpired, without using it (to show a form).
pub async fn peek(db: &Db, token_hash: &str, purpose: Purpose) -> Result<Option<EmailToken>, DbError> {
    let row: Option<Row> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT user_id, email, return_to FROM email_tokens \
             WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(token_hash)
        .bind(purpose.as_str())
        .bind(Utc::now())
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(EmailToken::from))
}

/// Uses the link: its record if it was unused and unexpired, `None` otherwise. Atomic.
pub async fn take(db: &Db, token_hash: &str, purpose: Purpose) -> Result<Option<EmailToken>, DbError> {
    let now = Utc::now();
    let row: Option<Row> = with_pool!(db, |pool| {
        sqlx::query_as(
            "UPDATE email_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 \
             RETURNING user_id, email, return_to",
        )
        .bind(now)
        .bind(token_hash)
        .bind(purpose.as_str())
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(EmailToken::from))
}

/// Voids every unused link of `user_id` for `purpose`; returns how many.
pub async fn void_all(db: &Db, user_id: UserId, purpose: Purpose) -> Result<u64, DbError> {
    let done = with_pool!(db, |pool| {
        sqlx::query("UPDATE email_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL")
            .bind(Utc::now())
            .bind(user_id.0)
            .bind(purpose.as_str())
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(done)
}

/// Removes links that expired before `before` (housekeeping).
pub async fn delete_expired(db: &Db, before: DateTime<Utc>) -> Result<u64, DbError> {
    let done = with_pool!(db, |pool| {
        sqlx::query("DELETE FROM email_tokens WHERE expires_at < $1").bind(before).execute(pool).await?.rows_affected()
    });
    Ok(done)
}
