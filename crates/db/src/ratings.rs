//! Ratings of videos (like / dislike) and the video's `likes` / `dislikes` counters, and the
//! "Liked videos" list built from them.
//!
//! A rating row and its video's counters change together in one short transaction retried on
//! 40001, and a counter moves only when a statement really changed a row (the `UPDATE` that
//! flips a rating, the `INSERT … ON CONFLICT DO NOTHING` of a new one, the `DELETE … RETURNING`
//! of an old one), so repeated and concurrent toggles keep both counters equal to `COUNT(*)` of
//! the rows — the rule of [`crate::subscriptions`]. On PostgreSQL a concurrent statement on the
//! same pair waits for the row lock and then re-checks its condition; SQLite runs writers one
//! at a time; CockroachDB's serialization failures are retried.

use crate::videos::{Row as VideoRow, Video, select};
use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// A user's rating of a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    Like,
    Dislike,
}

impl Rating {
    pub fn as_str(self) -> &'static str {
        match self {
            Rating::Like => "like",
            Rating::Dislike => "dislike",
        }
    }

    pub fn parse(s: &str) -> Option<Rating> {
        match s {
            "like" => Some(Rating::Like),
            "dislike" => Some(Rating::Dislike),
            _ => None,
        }
    }

    /// The counter change `(likes, dislikes)` of adding one rating like this.
    fn delta(self) -> (i64, i64) {
        match self {
            Rating::Like => (1, 0),
            Rating::Dislike => (0, 1),
        }
    }
}

const MOVE_COUNTERS: &str = "UPDATE videos SET likes = likes + $2, dislikes = dislikes + $3 WHERE id = $1";

/// Sets `user`'s rating of `video` (`None` removes it); `true` if anything changed. Idempotent:
/// the same rating again changes nothing.
pub async fn set(db: &Db, user: UserId, video: Uuid, rating: Option<Rating>) -> Result<bool, DbError> {
    retry_serializable(|| async {
        let now = Utc::now();
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let delta = match rating {
                None => {
                    let old: Option<String> = sqlx::query_scalar(
                        "DELETE FROM video_ratings WHERE user_id = $1 AND video_id = $2 RETURNING rating",
                    )
                    .bind(user.0)
                    .bind(video)
                    .fetch_optional(&mut *tx)
                    .await?;
                    old.as_deref().and_then(Rating::parse).map(|r| {
                        let (l, d) = r.delta();
                        (-l, -d)
                    })
                }
                Some(r) => {
                    // Flip an existing opposite rating, else insert a new one. Where a concurrent
                    // insert of the same pair won, the flip is tried once more against its row.
                    let flip = "UPDATE video_ratings SET rating = $3, rated_at = $4 \
                                WHERE user_id = $1 AND video_id = $2 AND rating <> $3";
                    let mut delta = None;
                    for attempt in 0..2 {
                        let flipped = sqlx::query(flip)
                            .bind(user.0)
                            .bind(video)
                            .bind(r.as_str())
                            .bind(now)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                        if flipped == 1 {
                            let (l, d) = r.delta();
                            delta = Some((l - d, d - l));
                            break;
                        }
                        if attempt == 1 {
                            break;
                        }
                        let inserted = sqlx::query(
                            "INSERT INTO video_ratings (user_id, video_id, rating, rated_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT DO NOTHING",
                        )
                        .bind(user.0)
                        .bind(video)
                        .bind(r.as_str())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if inserted == 1 {
                            delta = Some(r.delta());
                            break;
                        }
                    }
                    delta
                }
            };
            if let Some((likes, dislikes)) = delta {
                sqlx::query(MOVE_COUNTERS).bind(video).bind(likes).bind(dislikes).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, DbError>(delta.is_some())
        })
    })
    .await
}

/// `user`'s rating of `video`, if any.
pub async fn get(db: &Db, user: UserId, video: Uuid) -> Result<Option<Rating>, DbError> {
    let found: Option<String> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT rating FROM video_ratings WHERE user_id = $1 AND video_id = $2")
            .bind(user.0)
            .bind(video)
            .fetch_optional(pool)
            .await?
    });
    Ok(found.as_deref().and_then(Rating::parse))
}

/// How many like and dislike rows `video` has (the truth the counters must equal; for checks).
pub async fn count_rows(db: &Db, video: Uuid) -> Result<(i64, i64), DbError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(CASE WHEN rating = 'like' THEN 1 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN rating = 'dislike' THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM video_ratings WHERE video_id = $1",
        )
        .bind(video)
        .fetch_one(pool)
        .await?
    }))
}

/// A video with the time it entered a list (liked, watched…), for keyset paging.
#[derive(sqlx::FromRow)]
pub(crate) struct Dated {
    #[sqlx(flatten)]
    pub(crate) video: VideoRow,
    pub(crate) listed_at: DateTime<Utc>,
}

/// `user`'s liked videos, newest like first, after `(rated_at, video id)` when paging (index
/// `video_ratings_liked`). Videos they may no longer see (someone else's private one, one that
/// cannot be played) are left out.
pub async fn liked(
    db: &Db,
    user: UserId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u32,
) -> Result<Vec<(Video, DateTime<Utc>)>, DbError> {
    let (at, id) = after.unwrap_or((Utc::now() + chrono::TimeDelta::days(3650), Uuid::max()));
    let rows: Vec<Dated> = with_pool!(db, |pool| {
        sqlx::query_as(select!(
            columns ", r.rated_at AS listed_at",
            "JOIN video_ratings r ON r.video_id = v.id \
             WHERE r.user_id = $1 AND r.rating = 'like' AND r.rated_at <= $2 AND (r.rated_at < $2 OR r.video_id < $3) \
             AND (v.owner_id = $1 OR (v.privacy <> 'private' AND v.playable = TRUE AND v.hidden IS NULL)) \
             ORDER BY r.rated_at DESC, r.video_id DESC LIMIT $4"
        ))
        .bind(user.0)
        .bind(at)
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(|r| (Video::from(r.video), r.listed_at)).collect())
}

/// How many videos `user` likes that they may still see.
pub async fn liked_count(db: &Db, user: UserId) -> Result<u64, DbError> {
    let n: i64 = with_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM video_ratings r JOIN videos v ON v.id = r.video_id \
             WHERE r.user_id = $1 AND r.rating = 'like' \
             AND (v.owner_id = $1 OR (v.privacy <> 'private' AND v.playable = TRUE AND v.hidden IS NULL))",
        )
        .bind(user.0)
        .fetch_one(pool)
        .await?
    });
    Ok(u64::try_from(n).unwrap_or(0))
}
