//! Trending: views per video per hour, and the time-decayed score the home page orders by.
//!
//! The batched view counter ([`add_views_at`]) adds each video's new views to its total and to
//! the bucket of the current hour (`video_view_hours`), then recomputes that video's
//! `trending_score` from its buckets — all in one short transaction per video. A periodic chore
//! ([`refresh`]) lets every score decay: it drops buckets older than [`WINDOW_HOURS`], zeroes
//! the scores of videos left without any, and recomputes the rest in batches. The score is
//! `Σ views · ½^(age / HALF_LIFE_HOURS)` over the buckets of the window, so a view a day old
//! counts half as much as one just now and a week-old view hardly at all. The home page reads
//! the partial index `videos_trending` (score, then newest): one range scan, whatever the
//! number of videos.

use crate::videos::as_i64;
use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use uuid::Uuid;

/// A video's hourly view counts: (hour, views).
type Buckets = Vec<(DateTime<Utc>, i64)>;

/// A view loses half its weight in this many hours.
pub const HALF_LIFE_HOURS: f64 = 24.0;
/// Views older than this many hours no longer count.
pub const WINDOW_HOURS: i64 = 7 * 24;
/// Videos rescored per transaction by [`refresh`].
const BATCH: usize = 500;

/// The start of the hour `t` falls in.
pub fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

fn window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    hour_of(now) - TimeDelta::hours(WINDOW_HOURS)
}

/// The decayed score of hourly `buckets` at `now`.
pub fn score(buckets: &[(DateTime<Utc>, i64)], now: DateTime<Utc>) -> f64 {
    let since = window_start(now);
    buckets
        .iter()
        .filter(|(hour, _)| *hour >= since)
        .map(|(hour, views)| {
            let age_hours = ((now - *hour).num_seconds().max(0) as f64) / 3600.0;
            (*views).max(0) as f64 * 0.5f64.powf(age_hours / HALF_LIFE_HOURS)
        })
        .sum()
}

/// Adds counted views as seen at `at`: for each video, in one transaction, its total, its bucket
/// of that hour and its score. A video deleted meanwhile is skipped.
pub async fn add_views_at(db: &Db, counts: &[(Uuid, u64)], at: DateTime<Utc>) -> Result<(), DbError> {
    let hour = hour_of(at);
    let since = window_start(at);
    for &(id, n) in counts {
        retry_serializable(|| async {
            with_pool!(db, |pool| {
                let mut tx = pool.begin().await?;
                let found = sqlx::query("UPDATE videos SET views = views + $2 WHERE id = $1")
                    .bind(id)
                    .bind(as_i64(n))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if found > 0 {
                    sqlx::query(
                        "INSERT INTO video_view_hours (video_id, hour, views) VALUES ($1, $2, $3) \
                         ON CONFLICT (video_id, hour) DO UPDATE SET views = video_view_hours.views + excluded.views",
                    )
                    .bind(id)
                    .bind(hour)
                    .bind(as_i64(n))
                    .execute(&mut *tx)
                    .await?;
                    let buckets: Buckets =
                        sqlx::query_as("SELECT hour, views FROM video_view_hours WHERE video_id = $1 AND hour >= $2")
                            .bind(id)
                            .bind(since)
                            .fetch_all(&mut *tx)
                            .await?;
                    sqlx::query("UPDATE videos SET trending_score = $2 WHERE id = $1")
                        .bind(id)
                        .bind(score(&buckets, at))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            });
            Ok(())
        })
        .await?;
    }
    Ok(())
}

/// Lets every score decay to `now`: old buckets dropped, scores without buckets zeroed, the rest
/// recomputed [`BATCH`] videos per transaction. Returns how many videos were rescored.
pub async fn refresh(db: &Db, now: DateTime<Utc>) -> Result<u64, DbError> {
    let since = window_start(now);
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query("DELETE FROM video_view_hours WHERE hour < $1").bind(since).execute(pool).await?;
            sqlx::query(
                "UPDATE videos SET trending_score = 0 WHERE trending_score > 0 \
                 AND NOT EXISTS (SELECT 1 FROM video_view_hours h WHERE h.video_id = videos.id)",
            )
            .execute(pool)
            .await?;
        });
        Ok(())
    })
    .await?;

    // Walk the buckets in key order, a page at a time, scoring each video once all its
    // buckets are read.
    let mut after: (Uuid, DateTime<Utc>) = (Uuid::nil(), DateTime::<Utc>::UNIX_EPOCH);
    let mut current: Option<(Uuid, Buckets)> = None;
    let mut scored: Vec<(Uuid, f64)> = Vec::new();
    let mut total = 0u64;
    loop {
        let page: Vec<(Uuid, DateTime<Utc>, i64)> = with_pool!(db, |pool| {
            sqlx::query_as(
                "SELECT video_id, hour, views FROM video_view_hours \
                 WHERE video_id > $1 OR (video_id = $1 AND hour > $2) ORDER BY video_id, hour LIMIT 5000",
            )
            .bind(after.0)
            .bind(after.1)
            .fetch_all(pool)
            .await?
        });
        let done = page.len() < 5000;
        for (id, hour, views) in page {
            after = (id, hour);
            match &mut current {
                Some((cur, buckets)) if *cur == id => buckets.push((hour, views)),
                _ => {
                    if let Some((cur, buckets)) = current.take() {
                        scored.push((cur, score(&buckets, now)));
                    }
                    current = Some((id, vec![(hour, views)]));
                }
            }
        }
        if done && let Some((cur, buckets)) = current.take() {
            scored.push((cur, score(&buckets, now)));
        }
        if scored.len() >= BATCH || done {
            total += write_scores(db, &scored).await?;
            scored.clear();
        }
        if done {
            return Ok(total);
        }
    }
}

async fn write_scores(db: &Db, scores: &[(Uuid, f64)]) -> Result<u64, DbError> {
    if scores.is_empty() {
        return Ok(0);
    }
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            for &(id, s) in scores {
                sqlx::query("UPDATE videos SET trending_score = $2 WHERE id = $1")
                    .bind(id)
                    .bind(s)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(scores.len() as u64)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_lose_half_their_weight_each_half_life() {
        let now = hour_of(Utc::now());
        let day = TimeDelta::hours(24);
        assert!((score(&[(now, 8)], now) - 8.0).abs() < 1e-9);
        assert!((score(&[(now - day, 8)], now) - 4.0).abs() < 1e-9);
        assert!((score(&[(now - day - day, 8), (now, 1)], now) - 3.0).abs() < 1e-9);
        assert_eq!(score(&[(now - TimeDelta::hours(WINDOW_HOURS + 1), 1000)], now), 0.0, "outside the window");
    }
}
