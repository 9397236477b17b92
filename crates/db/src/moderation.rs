//! Moderation state of accounts and content: roles, bans, per-account upload quotas, the first
//! account's claim to be admin, videos hidden by moderators, and warnings.
//!
//! A ban is one short transaction: the account's `banned_at`, every video of it not already
//! hidden marked `hidden = 'ban'`, its channels `suspended`, its comments taken out of the
//! counters (`videos.comment_count`, the threads' `reply_count`: a banned author's comments are
//! hidden, see [`crate::comments`]), and its normalised address kept in `banned_emails`. An
//! unban undoes exactly that (a video a moderator hid stays hidden). Ending
//! the account's sessions is not database work; the caller does it (`turtlemen-signout`).
//!
//! Where a ban or a hide shows — the filters, one per query family, listed in ARCHITECTURE.md:
//! `v.hidden IS NULL` in every listing of videos (home lists, channel lists, feed, search,
//! suggestions), `c.suspended = FALSE` in channel lookups and search, and both in
//! `notifications::visible!`; a video read by id is checked by the API (`videos::may_view`).
//! This module never decides who may do what; the API does.

use crate::users::QuotaOverride;
use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};
use std::future::Future;
use turtlemen_domain::{Email, Role, UserId};
use uuid::Uuid;

/// Claims, in the transaction creating an account, the instance's one "first account" row.
pub(crate) trait FirstAccountClaim: Send {
    /// `true` when this account is the instance's first.
    fn claim_first_account(
        &mut self,
        id: UserId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;
}

const CLAIM: &str = "INSERT INTO first_account (id, user_id, created_at) VALUES (1, $1, $2) ON CONFLICT DO NOTHING";

macro_rules! impl_claim {
    ($conn:ty) => {
        impl FirstAccountClaim for $conn {
            async fn claim_first_account(&mut self, id: UserId, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
                Ok(sqlx::query(CLAIM).bind(id.0).bind(now).execute(&mut *self).await?.rows_affected() == 1)
            }
        }
    };
}
impl_claim!(sqlx::PgConnection);
impl_claim!(sqlx::SqliteConnection);

/// Whether the account `id` being created is the instance's first: claims the one-row marker
/// with `INSERT … ON CONFLICT DO NOTHING` in the account's own transaction, so of two
/// concurrent first sign-ups exactly one wins (the other waits for the row, or retries on 40001).
pub(crate) async fn claim_first_account<C: FirstAccountClaim>(
    conn: &mut C,
    id: UserId,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    conn.claim_first_account(id, now).await
}

/// Whether any account holds the admin role.
pub async fn has_admin(db: &Db) -> Result<bool, DbError> {
    let found: Option<Uuid> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT id FROM users WHERE role = 'admin' LIMIT 1").fetch_optional(pool).await?
    });
    Ok(found.is_some())
}

/// Sets `user`'s role; `false` when there is no such account.
pub async fn set_role(db: &Db, user: UserId, role: Role) -> Result<bool, DbError> {
    let n = with_pool!(db, |pool| {
        sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
            .bind(role.as_str())
            .bind(Utc::now())
            .bind(user.0)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}

/// Sets `user`'s upload quota overrides (`None` in a field: the instance's setting); `false`
/// when there is no such account.
pub async fn set_quota(db: &Db, user: UserId, quota: QuotaOverride) -> Result<bool, DbError> {
    let as_i64 = |b: Option<u64>| b.map(crate::videos::as_i64);
    let n = with_pool!(db, |pool| {
        sqlx::query(
            "UPDATE users SET upload_quota_bytes = $1, daily_upload_quota_bytes = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(as_i64(quota.total_bytes))
        .bind(as_i64(quota.daily_bytes))
        .bind(Utc::now())
        .bind(user.0)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(n == 1)
}

/// What a ban or an unban changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// The account's state changed (and its content with it).
    Done,
    /// It already was so; nothing changed.
    Already,
    /// No such account.
    NoAccount,
}

/// Video comment counts with or without the visible comments of account `$1` (`-` on a ban,
/// `+` on an unban), and thread reply counts with or without its replies that are not held;
/// each statement touches only the rows the account commented on.
macro_rules! comment_counts {
    (videos $op:tt) => {
        concat!(
            "UPDATE videos SET comment_count = comment_count ", stringify!($op),
            " (SELECT COUNT(*) FROM comments c WHERE c.video_id = videos.id AND c.author_id = $1 AND c.status = 'visible') \
             WHERE id IN (SELECT video_id FROM comments WHERE author_id = $1 AND status = 'visible')"
        )
    };
    (replies $op:tt) => {
        concat!(
            "UPDATE comments SET reply_count = reply_count ", stringify!($op),
            " (SELECT COUNT(*) FROM comments r WHERE r.root_id = comments.id AND r.author_id = $1 AND r.status <> 'held') \
             WHERE id IN (SELECT root_id FROM comments WHERE author_id = $1 AND root_id IS NOT NULL AND status <> 'held')"
        )
    };
}
const COMMENTS_UNCOUNTED: &str = comment_counts!(videos -);
const REPLIES_UNCOUNTED: &str = comment_counts!(replies -);
const COMMENTS_COUNTED: &str = comment_counts!(videos+);
const REPLIES_COUNTED: &str = comment_counts!(replies+);

/// Bans `user`: marks the account, hides its videos (those not already hidden), suspends its
/// channels, takes its comments out of the counters and keeps its normalised address, in one transaction — all only if the account was
/// not banned already, so a second ban changes nothing.
pub async fn ban(db: &Db, user: UserId, reason: &str) -> Result<Changed, DbError> {
    let now = Utc::now();
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let email_key: Option<String> = sqlx::query_scalar(
                "UPDATE users SET banned_at = $1, ban_reason = $2, updated_at = $1 WHERE id = $3 AND banned_at IS NULL \
                 RETURNING email_key",
            )
            .bind(now)
            .bind(reason)
            .bind(user.0)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(email_key) = email_key else {
                let exists: Option<Uuid> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
                    .bind(user.0)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(if exists.is_some() { Changed::Already } else { Changed::NoAccount });
            };
            sqlx::query("UPDATE videos SET hidden = 'ban' WHERE owner_id = $1 AND hidden IS NULL")
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE channels SET suspended = TRUE WHERE owner_id = $1")
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
            sqlx::query(COMMENTS_UNCOUNTED).bind(user.0).execute(&mut *tx).await?;
            sqlx::query(REPLIES_UNCOUNTED).bind(user.0).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO banned_emails (email_key, user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(&email_key)
            .bind(user.0)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Changed::Done)
        })
    })
    .await
}

/// Lifts `user`'s ban: what [`ban`] hid shows again (a video a moderator hid stays hidden), its
/// comments count again, the address may register again.
pub async fn unban(db: &Db, user: UserId) -> Result<Changed, DbError> {
    let now = Utc::now();
    let changed = retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let lifted: Option<Uuid> = sqlx::query_scalar(
                "UPDATE users SET banned_at = NULL, ban_reason = NULL, updated_at = $1 WHERE id = $2 \
                 AND banned_at IS NOT NULL RETURNING id",
            )
            .bind(now)
            .bind(user.0)
            .fetch_optional(&mut *tx)
            .await?;
            if lifted.is_none() {
                let exists: Option<Uuid> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
                    .bind(user.0)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(if exists.is_some() { Changed::Already } else { Changed::NoAccount });
            }
            sqlx::query("UPDATE videos SET hidden = NULL WHERE owner_id = $1 AND hidden = 'ban'")
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE channels SET suspended = FALSE WHERE owner_id = $1")
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
            sqlx::query(COMMENTS_COUNTED).bind(user.0).execute(&mut *tx).await?;
            sqlx::query(REPLIES_COUNTED).bind(user.0).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM banned_emails WHERE user_id = $1").bind(user.0).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Changed::Done)
        })
    })
    .await?;
    if changed == Changed::Done {
        // Feed heads built during the ban lack the videos shown again: their followers' next
        // reads build new ones. Short transactions after the unban's own, however many follow.
        if let Err(e) = crate::feed_heads::drop_followers(db, user).await {
            tracing::warn!(user.id = %user.0, error = %e, "cannot drop the feed heads of an unbanned user's followers");
        }
    }
    Ok(changed)
}

/// Whether `email` (normalised) belongs to a banned account.
pub async fn is_email_banned(db: &Db, email: &Email) -> Result<bool, DbError> {
    let found: Option<String> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT email_key FROM banned_emails WHERE email_key = $1")
            .bind(email.key())
            .fetch_optional(pool)
            .await?
    });
    Ok(found.is_some())
}

/// Hides video `id` by moderation with `reason` (shown to its owner), whatever hid it before;
/// `false` when there is no such video.
pub async fn hide_video(db: &Db, id: Uuid, reason: &str) -> Result<bool, DbError> {
    let n = with_pool!(db, |pool| {
        sqlx::query("UPDATE videos SET hidden = 'moderation', hidden_reason = $1, updated_at = $2 WHERE id = $3")
            .bind(reason)
            .bind(Utc::now())
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(n == 1)
}

/// Accounts for the admin page: those whose username starts with `prefix` (lower-cased key),
/// in username order after `after`, at most `limit`.
pub async fn find_users(
    db: &Db,
    prefix: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<crate::users::User>, DbError> {
    // Keys are lower-case ASCII letters, digits, `_` and `-`: `prefix` + U+FFFF bounds the range
    // without LIKE (whose wildcards a prefix could contain).
    let end = format!("{prefix}\u{ffff}");
    let rows: Vec<crate::users::Row> = with_pool!(db, |pool| {
        sqlx::query_as(concat!(
            "SELECT ",
            crate::users::columns!(),
            " FROM users WHERE username_key >= $1 AND username_key > $2 AND username_key < $3 \
             ORDER BY username_key LIMIT $4"
        ))
        .bind(prefix)
        .bind(after.unwrap_or(""))
        .bind(&end)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Sends `user` a moderator's warning: a notification of kind `warning` holding `text`, on the
/// user's personal channel. Returns its id.
pub async fn warn(db: &Db, user: UserId, text: &str) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    with_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO notifications (id, user_id, kind, subject_id, channel_id, created_at, text) \
             VALUES ($1, $2, 'warning', $1, $2, $3, $4)",
        )
        .bind(id)
        .bind(user.0)
        .bind(Utc::now())
        .bind(text)
        .execute(pool)
        .await
        .map(|_| ())?
    });
    Ok(id)
}
