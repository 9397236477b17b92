//! Refresh tokens: stored as SHA-256 hashes, rotated on every use, grouped in families so that
//! presenting a used token revokes every token descended from the same login (reuse detection,
//! after the OAuth 2.0 Security BCP).

use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// A stored refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub id: Uuid,
    pub family_id: Uuid,
    pub session_id: Uuid,
    pub client_id: String,
    pub user_id: UserId,
    pub scope: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    family_id: Uuid,
    session_id: Uuid,
    client_id: String,
    user_id: Uuid,
    scope: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<Row> for RefreshToken {
    fn from(r: Row) -> Self {
        RefreshToken {
            id: r.id,
            family_id: r.family_id,
            session_id: r.session_id,
            client_id: r.client_id,
            user_id: UserId(r.user_id),
            scope: r.scope,
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
            revoked_at: r.revoked_at,
        }
    }
}

/// What a new token records. `family_id` is `None` for the first token of a login.
#[derive(Debug, Clone)]
pub struct NewRefreshToken<'a> {
    pub token_hash: &'a str,
    pub family_id: Option<Uuid>,
    pub session_id: Uuid,
    pub client_id: &'a str,
    pub user_id: UserId,
    pub scope: &'a str,
    pub expires_at: DateTime<Utc>,
}

pub async fn create(db: &Db, t: &NewRefreshToken<'_>) -> Result<(), DbError> {
    let id = Uuid::now_v7();
    with_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, token_hash, family_id, session_id, client_id, user_id, scope, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(t.token_hash)
        .bind(t.family_id.unwrap_or(id))
        .bind(t.session_id)
        .bind(t.client_id)
        .bind(t.user_id.0)
        .bind(t.scope)
        .bind(Utc::now())
        .bind(t.expires_at)
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok(())
}

pub async fn find(db: &Db, token_hash: &str) -> Result<Option<RefreshToken>, DbError> {
    let row: Option<Row> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT id, family_id, session_id, client_id, user_id, scope, created_at, expires_at, used_at, revoked_at \
             FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(RefreshToken::from))
}

/// Marks the token used, unless it already was; returns whether this call was the one that
/// used it (a `false` means the token is being replayed).
pub async fn mark_used(db: &Db, id: Uuid) -> Result<bool, DbError> {
    let done = with_pool!(db, |pool| {
        sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL")
            .bind(Utc::now())
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(done == 1)
}

/// Revokes every token of a family.
pub async fn revoke_family(db: &Db, family_id: Uuid) -> Result<u64, DbError> {
    let now = Utc::now();
    retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(family_id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n)
    })
    .await
}
