//! The uploads table: tus uploads in progress and the lease that keeps one writer per upload.
//!
//! `received` is the committed offset: the bytes the server has acknowledged. A request that
//! appends bytes first takes the upload's short lease ([`try_lock`]); another request finding
//! the lease held is refused rather than interleaved. The writer moves `received` forward (which
//! also extends its lease) and releases the lease when done; a writer that died simply lets the
//! lease lapse.

use crate::videos::NewVideo;
use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// An upload as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Upload {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub video_id: Uuid,
    /// Declared total length (`Upload-Length`).
    pub length: i64,
    /// Committed offset.
    pub received: i64,
    /// The `Upload-Metadata` header as received, echoed on `HEAD`.
    pub metadata: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl Upload {
    pub fn owner(&self) -> UserId {
        UserId(self.owner_id)
    }

    pub fn is_complete(&self) -> bool {
        self.received >= self.length
    }
}

const COLUMNS: &str = "id, owner_id, video_id, length, received, metadata, created_at, expires_at, completed_at";

/// Creates the video (state `uploading`), then its upload; if the second insert fails, the
/// video is removed again.
pub async fn create(
    db: &Db,
    upload_id: Uuid,
    video: &NewVideo,
    metadata: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), DbError> {
    crate::videos::create(db, video).await?;
    let now = Utc::now();
    let inserted = retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query(
                "INSERT INTO uploads (id, owner_id, video_id, length, received, metadata, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, 0, $5, $6, $7)",
            )
            .bind(upload_id)
            .bind(video.owner_id.0)
            .bind(video.id)
            .bind(i64::try_from(video.original_bytes).unwrap_or(i64::MAX))
            .bind(metadata)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|_| ())?
        });
        Ok(())
    })
    .await;
    if let Err(e) = inserted {
        // Leave no video without its upload.
        let _ = crate::videos::delete(db, video.id).await;
        return Err(e);
    }
    Ok(())
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<Upload>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM uploads WHERE id = $1");
    let row: Option<Upload> =
        with_pool!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(pool).await?);
    Ok(row)
}

/// The unfinished uploads of a video (at most one in practice).
pub async fn for_video(db: &Db, video: Uuid) -> Result<Vec<Upload>, DbError> {
    let sql = format!("SELECT {COLUMNS} FROM uploads WHERE video_id = $1 AND completed_at IS NULL");
    let rows: Vec<Upload> =
        with_pool!(db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(video).fetch_all(pool).await?);
    Ok(rows)
}

/// Takes the writer's lease until `until`, if nobody holds it and the upload is not complete.
/// Returns the upload as it stands when taken.
pub async fn try_lock(db: &Db, id: Uuid, writer: Uuid, until: DateTime<Utc>) -> Result<Option<Upload>, DbError> {
    let sql = format!(
        "UPDATE uploads SET patch_owner = $2, patch_until = $3 \
         WHERE id = $1 AND completed_at IS NULL AND (patch_owner IS NULL OR patch_until < $4) RETURNING {COLUMNS}"
    );
    retry_serializable(|| async {
        let row: Option<Upload> = with_pool!(db, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .bind(writer)
                .bind(until)
                .bind(Utc::now())
                .fetch_optional(pool)
                .await?
        });
        Ok(row)
    })
    .await
}

/// Whether a writer holds the upload's lease now (for admins and tests).
pub async fn is_locked(db: &Db, id: Uuid) -> Result<bool, DbError> {
    let held: Option<bool> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT patch_owner IS NOT NULL AND patch_until > $2 FROM uploads WHERE id = $1")
            .bind(id)
            .bind(Utc::now())
            .fetch_optional(pool)
            .await?
    });
    Ok(held.unwrap_or(false))
}

/// Records the committed offset and extends the lease; `false` if this writer lost the lease.
pub async fn advance(db: &Db, id: Uuid, writer: Uuid, received: u64, until: DateTime<Utc>) -> Result<bool, DbError> {
    retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query("UPDATE uploads SET received = $3, patch_until = $4 WHERE id = $1 AND patch_owner = $2")
                .bind(id)
                .bind(writer)
                .bind(i64::try_from(received).unwrap_or(i64::MAX))
                .bind(until)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    })
    .await
}

/// Releases the lease (the offset was recorded by [`advance`]).
pub async fn unlock(db: &Db, id: Uuid, writer: Uuid) -> Result<(), DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query("UPDATE uploads SET patch_owner = NULL, patch_until = NULL WHERE id = $1 AND patch_owner = $2")
                .bind(id)
                .bind(writer)
                .execute(pool)
                .await
                .map(|_| ())?
        });
        Ok(())
    })
    .await
}

/// Marks the upload complete (its bytes are now the video's original). Idempotent.
pub async fn mark_complete(db: &Db, id: Uuid) -> Result<(), DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query(
                "UPDATE uploads SET completed_at = COALESCE(completed_at, $2), patch_owner = NULL, patch_until = NULL \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(Utc::now())
            .execute(pool)
            .await
            .map(|_| ())?
        });
        Ok(())
    })
    .await
}

/// Uploads past their expiry and never completed, oldest first.
pub async fn expired(db: &Db, now: DateTime<Utc>, limit: u32) -> Result<Vec<Upload>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM uploads WHERE completed_at IS NULL AND expires_at < $1 ORDER BY expires_at LIMIT $2"
    );
    let rows: Vec<Upload> = with_pool!(db, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(now).bind(i64::from(limit)).fetch_all(pool).await?
    });
    Ok(rows)
}

/// Uploads whose last byte arrived before `before` but whose completion never ran (a crash
/// between the two).
pub async fn unfinished_complete(db: &Db, before: DateTime<Utc>, limit: u32) -> Result<Vec<Upload>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM uploads WHERE completed_at IS NULL AND received >= length AND created_at < $1 \
         AND (patch_until IS NULL OR patch_until < $1) LIMIT $2"
    );
    let rows: Vec<Upload> = with_pool!(db, |pool| {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(before).bind(i64::from(limit)).fetch_all(pool).await?
    });
    Ok(rows)
}

/// Completed uploads finished before `before`: their rows are no longer needed.
pub async fn purge_completed(db: &Db, before: DateTime<Utc>) -> Result<u64, DbError> {
    retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query("DELETE FROM uploads WHERE completed_at IS NOT NULL AND completed_at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    })
    .await
}
