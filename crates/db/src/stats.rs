//! Figures about the instance's work in progress, for the operational metrics at `/metrics`:
//! the job queue (depth and the age of the oldest due job), uploads in progress, lives on air,
//! and the connection pool. Each is one indexed query or a pool counter, cheap enough to take
//! every few seconds.

use crate::{Db, DbError, with_pool};
use chrono::{DateTime, Utc};

/// What the instance is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Snapshot {
    /// Jobs waiting for a worker (due or not).
    pub jobs_queued: i64,
    /// Jobs a worker holds.
    pub jobs_running: i64,
    /// How long the oldest due, unclaimed job has waited, in seconds (0 when none waits).
    pub oldest_due_job_secs: f64,
    /// Uploads started and neither finished nor expired.
    pub uploads_active: i64,
    /// Lives on air.
    pub lives_active: i64,
}

/// Counts the work in progress.
pub async fn snapshot(db: &Db) -> Result<Snapshot, DbError> {
    let now = Utc::now();
    let jobs: Vec<(String, i64, Option<DateTime<Utc>>)> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT state, COUNT(*), MIN(CASE WHEN run_at <= $1 THEN run_at END) FROM jobs \
             WHERE state IN ('queued', 'running') GROUP BY state",
        )
        .bind(now)
        .fetch_all(pool)
        .await?
    });
    let mut snap = Snapshot::default();
    for (state, count, oldest_due) in jobs {
        match state.as_str() {
            "queued" => {
                snap.jobs_queued = count;
                snap.oldest_due_job_secs =
                    oldest_due.map_or(0.0, |at| (now - at).num_milliseconds().max(0) as f64 / 1000.0);
            }
            _ => snap.jobs_running = count,
        }
    }
    snap.uploads_active = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM uploads WHERE completed_at IS NULL AND expires_at > $1")
            .bind(now)
            .fetch_one(pool)
            .await?
    });
    snap.lives_active = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM lives WHERE state = 'live'").fetch_one(pool).await?
    });
    Ok(snap)
}

/// The connection pool: `(open connections, idle ones)`.
pub fn pool_connections(db: &Db) -> (u32, usize) {
    with_pool!(db, |pool| (pool.size(), pool.num_idle()))
}
