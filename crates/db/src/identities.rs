//! Accounts at external identity providers (GitHub, Google, any OpenID Connect issuer…) linked
//! to local users: one row per (provider, subject), unique, so a provider account signs in to at
//! most one local account.
//!
//! Never: unlinking the last way an account signs in (no password and a single provider), or
//! linking a provider account that already belongs to someone else (the unique key refuses it).

use crate::users::{NewUser, User};
use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::{Role, UserId};
use uuid::Uuid;

/// One linked provider account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    pub id: Uuid,
    pub user_id: UserId,
    /// The provider's configured id (`github`, `google`…).
    pub provider: String,
    /// The provider's stable id for the person (`sub`, GitHub's numeric id…).
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// What the provider told us about the person, to link.
#[derive(Debug, Clone)]
pub struct NewIdentity<'a> {
    pub provider: &'a str,
    pub subject: &'a str,
    pub email: Option<&'a str>,
    pub email_verified: bool,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    user_id: Uuid,
    provider: String,
    subject: String,
    email: Option<String>,
    email_verified: bool,
    created_at: DateTime<Utc>,
    last_login_at: Option<DateTime<Utc>>,
}

impl From<Row> for ExternalIdentity {
    fn from(r: Row) -> Self {
        ExternalIdentity {
            id: r.id,
            user_id: UserId(r.user_id),
            provider: r.provider,
            subject: r.subject,
            email: r.email,
            email_verified: r.email_verified,
            created_at: r.created_at,
            last_login_at: r.last_login_at,
        }
    }
}

/// The column list, as a literal so that every query stays a `&'static str`.
macro_rules! columns {
    () => {
        "id, user_id, provider, subject, email, email_verified, created_at, last_login_at"
    };
}

/// The link of a provider account, if any.
pub async fn find(db: &Db, provider: &str, subject: &str) -> Result<Option<ExternalIdentity>, DbError> {
    let sql = concat!("SELECT ", columns!(), " FROM external_identities WHERE provider = $1 AND subject = $2");
    let row: Option<Row> =
        with_pool!(db, |pool| { sqlx::query_as(sql).bind(provider).bind(subject).fetch_optional(pool).await? });
    Ok(row.map(ExternalIdentity::from))
}

/// A user's linked provider accounts, oldest first.
pub async fn list_for_user(db: &Db, user_id: UserId) -> Result<Vec<ExternalIdentity>, DbError> {
    let sql = concat!("SELECT ", columns!(), " FROM external_identities WHERE user_id = $1 ORDER BY created_at, id");
    let rows: Vec<Row> = with_pool!(db, |pool| { sqlx::query_as(sql).bind(user_id.0).fetch_all(pool).await? });
    Ok(rows.into_iter().map(ExternalIdentity::from).collect())
}

/// Links a provider account to `user_id`. A provider account linked already (to anyone) is
/// [`DbError::Conflict`].
pub async fn link(db: &Db, user_id: UserId, new: &NewIdentity<'_>) -> Result<ExternalIdentity, DbError> {
    let id = Uuid::now_v7();
    let now = Utc::now();
    let sql = concat!(
        "INSERT INTO external_identities (",
        columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) RETURNING ",
        columns!()
    );
    let row: Row = with_pool!(db, |pool| {
        sqlx::query_as(sql)
            .bind(id)
            .bind(user_id.0)
            .bind(new.provider)
            .bind(new.subject)
            .bind(new.email)
            .bind(new.email_verified)
            .bind(now)
            .fetch_one(pool)
            .await?
    });
    Ok(row.into())
}

/// Records a sign-in through a linked account, with the email the provider gave this time.
pub async fn record_login(db: &Db, id: Uuid, email: Option<&str>, email_verified: bool) -> Result<(), DbError> {
    with_pool!(db, |pool| {
        sqlx::query("UPDATE external_identities SET last_login_at = $1, email = $2, email_verified = $3 WHERE id = $4")
            .bind(Utc::now())
            .bind(email)
            .bind(email_verified)
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(())
}

/// Creates an account that signs in only through a provider (no password), linked to it, with
/// its personal channel, in one transaction. A taken username, email or provider account is [`DbError::Conflict`] naming it.
pub async fn create_user_with_identity(
    db: &Db,
    new: &NewUser,
    email_verified: bool,
    identity: &NewIdentity<'_>,
) -> Result<User, DbError> {
    let user_id = UserId::new();
    let now = Utc::now();
    let role = retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let first = crate::moderation::claim_first_account(&mut *tx, user_id, now).await?;
            let role = if first && new.promote_if_first { Role::Admin } else { new.role };
            sqlx::query(
                "INSERT INTO users (id, username, username_key, email, email_key, display_name, password_hash, role, email_verified, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            )
            .bind(user_id.0)
            .bind(new.username.as_str())
            .bind(new.username.key())
            .bind(new.email.as_str())
            .bind(new.email.key())
            .bind(&new.display_name)
            .bind(new.password_hash.as_deref())
            .bind(role.as_str())
            .bind(email_verified)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let sql =
                concat!("INSERT INTO external_identities (", columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $7)");
            sqlx::query(sql)
                .bind(Uuid::now_v7())
                .bind(user_id.0)
                .bind(identity.provider)
                .bind(identity.subject)
                .bind(identity.email)
                .bind(identity.email_verified)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(crate::channels::INSERT_PERSONAL)
                .bind(user_id.0)
                .bind(new.username.as_str())
                .bind(new.username.key())
                .bind(&new.display_name)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            crate::search::Indexer::reindex_channel(&mut *tx, user_id.0).await?;
            tx.commit().await?;
            Ok::<_, DbError>(role)
        })
    })
    .await
    .map_err(crate::channels::as_username_conflict)?;
    Ok(User {
        id: user_id,
        username: new.username.as_str().to_owned(),
        email: new.email.as_str().to_owned(),
        display_name: new.display_name.clone(),
        role,
        email_verified,
        created_at: now,
        banned_at: None,
        quota: Default::default(),
    })
}

/// What an unlink did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlinked {
    /// The link is gone; its provider id.
    Done { provider: String },
    /// Refused: the account has no password and this is its only provider.
    LastWayToSignIn,
    /// No such link of this user.
    NotFound,
}

/// Removes one of `user_id`'s links unless it is the last way the account signs in. The user's
/// row is written first so that two concurrent unlinks of one account run one after the other
/// (a row lock on PostgreSQL, the write lock on SQLite) and cannot both pass the check.
pub async fn unlink(db: &Db, user_id: UserId, id: Uuid) -> Result<Unlinked, DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE users SET updated_at = $1 WHERE id = $2")
                .bind(Utc::now())
                .bind(user_id.0)
                .execute(&mut *tx)
                .await?;
            let provider: Option<String> = sqlx::query_scalar(
                "DELETE FROM external_identities WHERE id = $1 AND user_id = $2 \
                 AND ((SELECT password_hash FROM users WHERE id = $2) IS NOT NULL \
                      OR (SELECT COUNT(*) FROM external_identities WHERE user_id = $2) > 1) \
                 RETURNING provider",
            )
            .bind(id)
            .bind(user_id.0)
            .fetch_optional(&mut *tx)
            .await?;
            let outcome = match provider {
                Some(provider) => Unlinked::Done { provider },
                None => {
                    let exists: Option<Uuid> =
                        sqlx::query_scalar("SELECT id FROM external_identities WHERE id = $1 AND user_id = $2")
                            .bind(id)
                            .bind(user_id.0)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if exists.is_some() { Unlinked::LastWayToSignIn } else { Unlinked::NotFound }
                }
            };
            tx.commit().await?;
            Ok::<_, DbError>(outcome)
        })
    })
    .await
}
