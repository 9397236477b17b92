//! The watch history: one row per user and video, updated in place with the position the
//! viewer reached (the watch page resumes there), and the user's switch that pauses recording.
//!
//! While history is paused nothing is written: [`record`] checks the switch in the same
//! statement as the write (`… WHERE NOT EXISTS (paused)`), so a report racing a pause is either
//! before it or dropped.

use crate::ratings::Dated;
use crate::videos::{Video, select};
use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// Records that `user` reached `position_secs` in `video` now; `false` when history is paused
/// (nothing written).
pub async fn record(db: &Db, user: UserId, video: Uuid, position_secs: u32) -> Result<bool, DbError> {
    retry_serializable(|| async {
        let now = Utc::now();
        let n = with_pool!(db, |pool| {
            sqlx::query(
                "INSERT INTO watch_history (user_id, video_id, position_secs, watched_at) \
                 SELECT $1, $2, $3, $4 WHERE NOT EXISTS \
                 (SELECT 1 FROM library_settings WHERE user_id = $1 AND history_paused = TRUE) \
                 ON CONFLICT (user_id, video_id) DO UPDATE SET position_secs = excluded.position_secs, \
                 watched_at = excluded.watched_at",
            )
            .bind(user.0)
            .bind(video)
            .bind(i64::from(position_secs))
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    })
    .await
}

/// An entry of the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub video: Video,
    pub position_secs: u32,
    pub watched_at: DateTime<Utc>,
}

/// `user`'s history, last watched first, after `(watched_at, video id)` when paging (index
/// `watch_history_recent`). Videos they may no longer see are left out.
pub async fn list(
    db: &Db,
    user: UserId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u32,
) -> Result<Vec<Entry>, DbError> {
    let (at, id) = after.unwrap_or((Utc::now() + chrono::TimeDelta::days(3650), Uuid::max()));
    let rows: Vec<(Dated, i64)> = with_pool!(db, |pool| {
        let rows: Vec<Positioned> = sqlx::query_as(select!(
            columns ", h.watched_at AS listed_at, h.position_secs AS position_secs",
            "JOIN watch_history h ON h.video_id = v.id \
             WHERE h.user_id = $1 AND h.watched_at <= $2 AND (h.watched_at < $2 OR h.video_id < $3) \
             AND (v.owner_id = $1 OR (v.privacy <> 'private' AND v.playable = TRUE AND v.hidden IS NULL)) \
             ORDER BY h.watched_at DESC, h.video_id DESC LIMIT $4"
        ))
        .bind(user.0)
        .bind(at)
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
        rows.into_iter().map(|r| (r.dated, r.position_secs)).collect()
    });
    Ok(rows
        .into_iter()
        .map(|(d, p)| Entry {
            video: Video::from(d.video),
            position_secs: u32::try_from(p).unwrap_or(0),
            watched_at: d.listed_at,
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct Positioned {
    #[sqlx(flatten)]
    dated: Dated,
    position_secs: i64,
}

/// Removes one video from `user`'s history; `false` when it was not there.
pub async fn remove(db: &Db, user: UserId, video: Uuid) -> Result<bool, DbError> {
    retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query("DELETE FROM watch_history WHERE user_id = $1 AND video_id = $2")
                .bind(user.0)
                .bind(video)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    })
    .await
}

/// Clears `user`'s history; how many entries went.
pub async fn clear(db: &Db, user: UserId) -> Result<u64, DbError> {
    retry_serializable(|| async {
        Ok(with_pool!(db, |pool| {
            sqlx::query("DELETE FROM watch_history WHERE user_id = $1")
                .bind(user.0)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    })
    .await
}

/// Whether `user` paused recording their history.
pub async fn paused(db: &Db, user: UserId) -> Result<bool, DbError> {
    let found: Option<bool> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT history_paused FROM library_settings WHERE user_id = $1")
            .bind(user.0)
            .fetch_optional(pool)
            .await?
    });
    Ok(found.unwrap_or(false))
}

/// Pauses (`true`) or resumes recording `user`'s history.
pub async fn set_paused(db: &Db, user: UserId, paused: bool) -> Result<(), DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query(
                "INSERT INTO library_settings (user_id, history_paused) VALUES ($1, $2) \
                 ON CONFLICT (user_id) DO UPDATE SET history_paused = excluded.history_paused",
            )
            .bind(user.0)
            .bind(paused)
            .execute(pool)
            .await
            .map(|_| ())?
        });
        Ok(())
    })
    .await
}
