//! The users table: accounts, looked up by id or by case-insensitive username.

use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::{Email, Role, UserId, Username};
use uuid::Uuid;

/// An account as the rest of the system sees it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
    /// When the account was banned; `None` while it is not.
    pub banned_at: Option<DateTime<Utc>>,
    /// The upload quotas an admin set for this account, overriding the instance's.
    pub quota: QuotaOverride,
}

impl User {
    /// Whether the account is banned: no session, no token, no content shown.
    pub fn is_banned(&self) -> bool {
        self.banned_at.is_some()
    }
}

/// Per-account upload quotas in bytes; `None`: the instance's setting applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaOverride {
    pub total_bytes: Option<u64>,
    pub daily_bytes: Option<u64>,
}

/// What it takes to create an account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub display_name: String,
    /// A PHC string (Argon2id); `None` for accounts that only sign in through a provider.
    pub password_hash: Option<String>,
    pub role: Role,
    /// Whether the account becomes admin if it is the instance's first (the `first_user_admin`
    /// setting; [`crate::moderation::claim_first_account`]).
    pub promote_if_first: bool,
}

#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    id: Uuid,
    username: String,
    email: String,
    display_name: String,
    role: String,
    email_verified: bool,
    created_at: DateTime<Utc>,
    banned_at: Option<DateTime<Utc>>,
    upload_quota_bytes: Option<i64>,
    daily_upload_quota_bytes: Option<i64>,
}

/// The columns [`Row`] reads (a macro, so queries stay `&'static str` literals).
macro_rules! columns {
    () => {
        "id, username, email, display_name, role, email_verified, created_at, banned_at, \
         upload_quota_bytes, daily_upload_quota_bytes"
    };
}
pub(crate) use columns;

impl From<Row> for User {
    fn from(r: Row) -> Self {
        User {
            id: UserId(r.id),
            username: r.username,
            email: r.email,
            display_name: r.display_name,
            role: Role::from_stored(&r.role),
            email_verified: r.email_verified,
            created_at: r.created_at,
            banned_at: r.banned_at,
            quota: QuotaOverride {
                total_bytes: r.upload_quota_bytes.and_then(|b| u64::try_from(b).ok()),
                daily_bytes: r.daily_upload_quota_bytes.and_then(|b| u64::try_from(b).ok()),
            },
        }
    }
}

/// Inserts an account and its personal channel (same id, the username as handle) in one
/// transaction. A taken username or email is [`DbError::Conflict`] naming `username_key` or
/// `email_key` (a username some channel already uses as its handle is taken).
pub async fn create(db: &Db, new: &NewUser) -> Result<User, DbError> {
    let id = UserId::new();
    let now = Utc::now();
    retry_serializable(|| async {
        let row: Row = with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let first = crate::moderation::claim_first_account(&mut *tx, id, now).await?;
            let role = if first && new.promote_if_first { Role::Admin } else { new.role };
            let row: Row = sqlx::query_as(concat!(
                "INSERT INTO users (id, username, username_key, email, email_key, display_name, password_hash, role, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING ",
                columns!()
            ))
            .bind(id.0)
            .bind(new.username.as_str())
            .bind(new.username.key())
            .bind(new.email.as_str())
            .bind(new.email.key())
            .bind(&new.display_name)
            .bind(new.password_hash.as_deref())
            .bind(role.as_str())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(crate::channels::INSERT_PERSONAL)
                .bind(id.0)
                .bind(new.username.as_str())
                .bind(new.username.key())
                .bind(&new.display_name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            crate::search::Indexer::reindex_channel(&mut *tx, id.0).await?;
            tx.commit().await?;
            row
        });
        Ok(row.into())
    })
    .await
    .map_err(crate::channels::as_username_conflict)
}

pub async fn find_by_username(db: &Db, username: &Username) -> Result<Option<User>, DbError> {
    let row: Option<Row> = with_pool!(db, |pool| {
        sqlx::query_as(concat!("SELECT ", columns!(), " FROM users WHERE username_key = $1"))
            .bind(username.key())
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(User::from))
}

pub async fn find_by_email(db: &Db, email: &Email) -> Result<Option<User>, DbError> {
    let row: Option<Row> = with_pool!(db, |pool| {
        sqlx::query_as(concat!("SELECT ", columns!(), " FROM users WHERE email_key = $1"))
            .bind(email.key())
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(User::from))
}

pub async fn find_by_id(db: &Db, id: UserId) -> Result<Option<User>, DbError> {
    let row: Option<Row> = with_pool!(db, |pool| {
        sqlx::query_as(concat!("SELECT ", columns!(), " FROM users WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(User::from))
}

/// The stored password hash of an account, for the auth service only.
pub async fn password_hash(db: &Db, id: UserId) -> Result<Option<String>, DbError> {
    let hash: Option<Option<String>> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1").bind(id.0).fetch_optional(pool).await?
    });
    Ok(hash.flatten())
}

/// Replaces the stored password hash of an account.
pub async fn set_password_hash(db: &Db, id: UserId, hash: &str) -> Result<(), DbError> {
    with_pool!(db, |pool| {
        sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(hash)
            .bind(Utc::now())
            .bind(id.0)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

/// Marks the account's email verified, if it still is `email` (a link sent to an address the
/// account has since left verifies nothing); returns whether it did.
pub async fn mark_email_verified(db: &Db, id: UserId, email: &Email) -> Result<bool, DbError> {
    let done = with_pool!(db, |pool| {
        sqlx::query("UPDATE users SET email_verified = $1, updated_at = $2 WHERE id = $3 AND email_key = $4")
            .bind(true)
            .bind(Utc::now())
            .bind(id.0)
            .bind(email.key())
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(done == 1)
}

pub async fn count(db: &Db) -> Result<i64, DbError> {
    Ok(with_pool!(db, |pool| sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await?))
}
