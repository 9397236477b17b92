//! Second-factor records: each user's TOTP secret (pending until confirmed), the last step used,
//! and hashed single-use recovery codes.

use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// A user's TOTP secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totp {
    pub secret: Vec<u8>,
    /// `false` while enrolment waits for the first code.
    pub enabled: bool,
    /// The last step whose code was accepted; older and equal steps are refused.
    pub last_step: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    secret: Vec<u8>,
    enabled_at: Option<DateTime<Utc>>,
    last_step: i64,
}

pub async fn get(db: &Db, user_id: UserId) -> Result<Option<Totp>, DbError> {
    let row: Option<Row> = with_pool!(db, |pool| {
        sqlx::query_as("SELECT secret, enabled_at, last_step FROM user_totp WHERE user_id = $1")
            .bind(user_id.0)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(|r| Totp { secret: r.secret, enabled: r.enabled_at.is_some(), last_step: r.last_step }))
}

/// Replaces the stored secret `old` with `new` (the same secret in another form); does nothing
/// if it changed meanwhile.
pub async fn replace_secret(db: &Db, user_id: UserId, old: &[u8], new: &[u8]) -> Result<(), DbError> {
    with_pool!(db, |pool| {
        sqlx::query("UPDATE user_totp SET secret = $1 WHERE user_id = $2 AND secret = $3")
            .bind(new)
            .bind(user_id.0)
            .bind(old)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

/// Whether the user signs in with a second factor.
pub async fn is_enabled(db: &Db, user_id: UserId) -> Result<bool, DbError> {
    Ok(get(db, user_id).await?.is_some_and(|t| t.enabled))
}

/// Stores a pending secret, replacing a pending one; an enabled secret is kept (returns false).
pub async fn put_pending(db: &Db, user_id: UserId, secret: &[u8]) -> Result<bool, DbError> {
    let n = with_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO user_totp (user_id, secret, enabled_at, last_step, created_at) VALUES ($1, $2, NULL, 0, $3) \
             ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, last_step = 0, created_at = excluded.created_at \
             WHERE user_totp.enabled_at IS NULL",
        )
        .bind(user_id.0)
        .bind(secret)
        .bind(Utc::now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Enables the pending secret, recording `step` as used, and replaces the recovery codes with
/// `code_hashes`; false when nothing was pending.
pub async fn enable(db: &Db, user_id: UserId, step: i64, code_hashes: &[String]) -> Result<bool, DbError> {
    let now = Utc::now();
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE user_totp SET enabled_at = $1, last_step = $2 WHERE user_id = $3 AND enabled_at IS NULL",
            )
            .bind(now)
            .bind(step)
            .bind(user_id.0)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id.0).execute(&mut *tx).await?;
            for hash in code_hashes {
                sqlx::query("INSERT INTO recovery_codes (id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(Uuid::now_v7())
                    .bind(user_id.0)
                    .bind(hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    })
    .await
}

/// Records `step` as used if it is later than the last one used; false means the code was
/// already spent (a replay) or the factor is not enabled. Atomic: of two concurrent uses of
/// one code, one wins.
pub async fn use_step(db: &Db, user_id: UserId, step: i64) -> Result<bool, DbError> {
    let n = with_pool!(db, |pool| {
        sqlx::query(
            "UPDATE user_totp SET last_step = $1 WHERE user_id = $2 AND enabled_at IS NOT NULL AND last_step < $1",
        )
        .bind(step)
        .bind(user_id.0)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Spends a recovery code; false when it is unknown or already used.
pub async fn use_recovery_code(db: &Db, user_id: UserId, code_hash: &str) -> Result<bool, DbError> {
    let n = with_pool!(db, |pool| {
        sqlx::query("UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL")
            .bind(Utc::now())
            .bind(user_id.0)
            .bind(code_hash)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Recovery codes not yet used.
pub async fn recovery_codes_left(db: &Db, user_id: UserId) -> Result<i64, DbError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
            .bind(user_id.0)
            .fetch_one(pool)
            .await?
    }))
}

/// Removes the secret and the recovery codes.
pub async fn disable(db: &Db, user_id: UserId) -> Result<(), DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM user_totp WHERE user_id = $1").bind(user_id.0).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id.0).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    })
    .await
}
