//! The lives table: live streams, their stream keys (hashes only) and their state.
//!
//! A stream key is shown to its owner once, at creation or regeneration; only its SHA-256 is
//! stored (unique), so a database leak gives no one the right to publish. The ingest claims a
//! live with one conditional `UPDATE` ([`claim`]): the key's row, not ended, no encoder
//! connected — so two encoders (on any processes) never publish to one live. States move
//! waiting → live → ended and never back; [`end`] changes only a live not yet ended and says
//! whether it did, so the replay is made once.

use crate::videos::Privacy;
use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// Where a live is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = LiveState)]
pub enum LiveState {
    /// Made; no encoder has published yet.
    Waiting,
    /// An encoder publishes, or dropped and may come back within the grace period.
    Live,
    /// Over for good.
    Ended,
}

impl LiveState {
    fn parse(s: &str) -> LiveState {
        match s {
            "live" => LiveState::Live,
            "ended" => LiveState::Ended,
            _ => LiveState::Waiting,
        }
    }
}

/// A live with its channel and owner names.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub id: Uuid,
    pub owner_id: UserId,
    pub owner_username: String,
    pub channel_id: Uuid,
    pub channel_handle: String,
    pub channel_display_name: String,
    pub title: String,
    pub description: String,
    pub privacy: Privacy,
    pub replays: bool,
    pub state: LiveState,
    pub connected: bool,
    pub packager_url: Option<String>,
    pub last_reason: Option<String>,
    pub replay_video_id: Option<Uuid>,
    /// Approximate: players seen lately by the packaging process ([`set_viewers`]).
    pub viewers: u64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A live to create.
#[derive(Debug, Clone)]
pub struct NewLive {
    pub id: Uuid,
    pub owner_id: UserId,
    pub channel_id: Uuid,
    pub title: String,
    pub description: String,
    pub privacy: Privacy,
    pub replays: bool,
    /// SHA-256 of the stream key.
    pub key_hash: [u8; 32],
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    owner_id: Uuid,
    owner_username: String,
    channel_id: Uuid,
    channel_handle: String,
    channel_display_name: String,
    title: String,
    description: String,
    privacy: String,
    replays: bool,
    state: String,
    connected: bool,
    packager_url: Option<String>,
    last_reason: Option<String>,
    replay_video_id: Option<Uuid>,
    viewers: i64,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
}

impl From<Row> for Live {
    fn from(r: Row) -> Live {
        Live {
            id: r.id,
            owner_id: UserId(r.owner_id),
            owner_username: r.owner_username,
            channel_id: r.channel_id,
            channel_handle: r.channel_handle,
            channel_display_name: r.channel_display_name,
            title: r.title,
            description: r.description,
            privacy: Privacy::parse(&r.privacy).unwrap_or(Privacy::Private),
            replays: r.replays,
            state: LiveState::parse(&r.state),
            connected: r.connected,
            packager_url: r.packager_url,
            last_reason: r.last_reason,
            replay_video_id: r.replay_video_id,
            viewers: u64::try_from(r.viewers).unwrap_or(0),
            created_at: r.created_at,
            started_at: r.started_at,
            ended_at: r.ended_at,
        }
    }
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT l.id, l.owner_id, u.username AS owner_username, l.channel_id, c.handle AS channel_handle, \
             c.display_name AS channel_display_name, l.title, l.description, l.privacy, l.replays, l.state, \
             l.connected, l.packager_url, l.last_reason, l.replay_video_id, l.viewers, l.created_at, l.started_at, l.ended_at \
             FROM lives l JOIN users u ON u.id = l.owner_id JOIN channels c ON c.id = l.channel_id ",
            $rest
        )
    };
}

pub async fn create(db: &Db, new: &NewLive) -> Result<(), DbError> {
    let now = Utc::now();
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query(
                "INSERT INTO lives (id, owner_id, channel_id, title, description, privacy, replays, stream_key_hash, \
                 state, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'waiting', $9)",
            )
            .bind(new.id)
            .bind(new.owner_id.0)
            .bind(new.channel_id)
            .bind(&new.title)
            .bind(&new.description)
            .bind(new.privacy.as_str())
            .bind(new.replays)
            .bind(&new.key_hash[..])
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    })
    .await
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<Live>, DbError> {
    let row: Option<Row> =
        with_pool!(db, |pool| sqlx::query_as(select!("WHERE l.id = $1")).bind(id).fetch_optional(pool).await?);
    Ok(row.map(Live::from))
}

/// A user's lives, newest first, after the keyset position `after` (created_at, id).
pub async fn list_by_owner(
    db: &Db,
    owner: UserId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u32,
) -> Result<Vec<Live>, DbError> {
    let (at, id) = after.unwrap_or((Utc::now() + chrono::TimeDelta::days(1), Uuid::max()));
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(select!(
            "WHERE l.owner_id = $1 AND (l.created_at < $2 OR (l.created_at = $2 AND l.id < $3)) \
             ORDER BY l.created_at DESC, l.id DESC LIMIT $4"
        ))
        .bind(owner.0)
        .bind(at)
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(Live::from).collect())
}

/// Lives an encoder publishes to now (or that wait out their grace), across the instance.
pub async fn count_live(db: &Db, owner: Option<UserId>) -> Result<u64, DbError> {
    let n: i64 = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM lives WHERE state = 'live' AND ($1 IS NULL OR owner_id = $1)")
            .bind(owner.map(|o| o.0))
            .fetch_one(pool)
            .await?
    });
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Replaces the stream key of a live not yet ended; false if there is none such.
pub async fn set_key(db: &Db, id: Uuid, key_hash: &[u8; 32]) -> Result<bool, DbError> {
    retry_serializable(|| async {
        let done = with_pool!(db, |pool| {
            sqlx::query("UPDATE lives SET stream_key_hash = $2 WHERE id = $1 AND state <> 'ended'")
                .bind(id)
                .bind(&key_hash[..])
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    })
    .await
}

/// Why a stream key cannot publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRefused {
    UnknownKey,
    AlreadyLive,
    Ended,
    /// The owner already has this many lives on air, the most allowed.
    UserLimit(u64),
    /// The instance already carries this many lives, the most allowed.
    InstanceLimit(u64),
}

/// The most lives on air at once (a live in its grace period counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveLimits {
    pub per_user: u64,
    pub per_instance: u64,
}

/// Marks the live of `key_hash` live and connected to the packager at `packager_url` — if it
/// has not ended, no encoder is connected, and (unless it is already on air, an encoder
/// reconnecting) neither its owner nor the instance is at its limit of lives on air.
pub async fn claim(
    db: &Db,
    key_hash: &[u8; 32],
    packager_url: &str,
    limits: LiveLimits,
) -> Result<Result<Uuid, ClaimRefused>, DbError> {
    let now = Utc::now();
    let per_user = i64::try_from(limits.per_user).unwrap_or(i64::MAX);
    let per_instance = i64::try_from(limits.per_instance).unwrap_or(i64::MAX);
    let claimed: Option<Uuid> = retry_serializable(|| async {
        Ok(with_pool!(db, |pool| {
            sqlx::query_scalar(
                "UPDATE lives SET state = 'live', connected = true, packager_url = $2, \
                 started_at = COALESCE(started_at, $3), seen_at = $3 \
                 WHERE stream_key_hash = $1 AND state <> 'ended' AND connected = false \
                 AND (state = 'live' OR ( \
                   (SELECT COUNT(*) FROM lives o WHERE o.state = 'live' AND o.owner_id = lives.owner_id) < $4 \
                   AND (SELECT COUNT(*) FROM lives o WHERE o.state = 'live') < $5)) \
                 RETURNING id",
            )
            .bind(&key_hash[..])
            .bind(packager_url)
            .bind(now)
            .bind(per_user)
            .bind(per_instance)
            .fetch_optional(pool)
            .await?
        }))
    })
    .await?;
    if let Some(id) = claimed {
        return Ok(Ok(id));
    }
    let row: Option<(String, bool, i64, i64)> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT l.state, l.connected, \
             (SELECT COUNT(*) FROM lives o WHERE o.state = 'live' AND o.owner_id = l.owner_id), \
             (SELECT COUNT(*) FROM lives o WHERE o.state = 'live') \
             FROM lives l WHERE l.stream_key_hash = $1",
        )
        .bind(&key_hash[..])
        .fetch_optional(pool)
        .await?
    });
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(Err(match row {
        None => ClaimRefused::UnknownKey,
        Some((state, ..)) if state == "ended" => ClaimRefused::Ended,
        Some((state, connected, ..)) if state == "live" || connected => ClaimRefused::AlreadyLive,
        Some((_, _, mine, _)) if mine >= per_user => ClaimRefused::UserLimit(count(mine)),
        Some((_, _, _, all)) => ClaimRefused::InstanceLimit(count(all)),
    }))
}

/// Records why a publish to the live of `key_hash`, not yet on air, was refused.
pub async fn refused(db: &Db, key_hash: &[u8; 32], reason: &str) -> Result<(), DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query("UPDATE lives SET last_reason = $2 WHERE stream_key_hash = $1 AND state = 'waiting'")
                .bind(&key_hash[..])
                .bind(reason)
                .execute(pool)
                .await?;
        });
        Ok(())
    })
    .await
}

/// The encoder's connection ended (`reason`); the live stays live for its grace period.
pub async fn disconnected(db: &Db, id: Uuid, reason: &str) -> Result<(), DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query("UPDATE lives SET connected = false, last_reason = $2 WHERE id = $1 AND state <> 'ended'")
                .bind(id)
                .bind(reason)
                .execute(pool)
                .await?;
        });
        Ok(())
    })
    .await
}

/// Ends a live not yet ended; true if this call ended it.
pub async fn end(db: &Db, id: Uuid, reason: &str) -> Result<bool, DbError> {
    let now = Utc::now();
    // Chosen once: every attempt of the replay job makes this one video.
    let payload = serde_json::json!({ "live_id": id, "video_id": Uuid::now_v7() }).to_string();
    let key = replay_job_key(id);
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE lives SET state = 'ended', connected = false, viewers = 0, last_reason = $2, ended_at = $3 \
                 WHERE id = $1 AND state <> 'ended'",
            )
            .bind(id)
            .bind(reason)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done == 1 {
                sqlx::query(crate::jobs::ENQUEUE)
                    .bind(Uuid::now_v7())
                    .bind(LIVE_REPLAY.as_str())
                    .bind(&payload)
                    .bind(i64::from(crate::jobs::DEFAULT_MAX_ATTEMPTS))
                    .bind(now)
                    .bind(&key)
                    .bind(turtlemen_domain::trace::current_header())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, DbError>(done == 1)
        })
    })
    .await
}

/// The job that makes a live's replay once it ended (queued by [`end`] in the same
/// transaction, so a process dying right after the end loses no replay). Its payload names the
/// live and the video to make (`live_id`, `video_id`); its handler is the worker's.
pub const LIVE_REPLAY: crate::jobs::JobKind = crate::jobs::JobKind::new("live_replay");

/// The idempotency key of `live`'s replay job.
pub fn replay_job_key(live: Uuid) -> String {
    format!("live_replay:{live}")
}

/// Records the video the recording became.
pub async fn set_replay(db: &Db, id: Uuid, video: Uuid) -> Result<(), DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query("UPDATE lives SET replay_video_id = $2 WHERE id = $1")
                .bind(id)
                .bind(video)
                .execute(pool)
                .await?;
        });
        Ok(())
    })
    .await
}

/// Records the approximate viewer count of a live not yet ended (from its packaging process,
/// every few seconds when it changed).
pub async fn set_viewers(db: &Db, id: Uuid, viewers: u64) -> Result<(), DbError> {
    let viewers = i64::try_from(viewers).unwrap_or(i64::MAX);
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query("UPDATE lives SET viewers = $2 WHERE id = $1 AND state = 'live'")
                .bind(id)
                .bind(viewers)
                .execute(pool)
                .await?;
        });
        Ok(())
    })
    .await
}

/// The packaging process still holds `id` at `at`.
pub async fn seen(db: &Db, id: Uuid, at: DateTime<Utc>) -> Result<(), DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query("UPDATE lives SET seen_at = $2 WHERE id = $1 AND state = 'live'")
                .bind(id)
                .bind(at)
                .execute(pool)
                .await?;
        });
        Ok(())
    })
    .await
}

/// Lives on air whose packaging process has not said it holds them since `before` (it crashed).
pub async fn orphaned(db: &Db, before: DateTime<Utc>) -> Result<Vec<Uuid>, DbError> {
    Ok(with_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT id FROM lives WHERE state = 'live' AND COALESCE(seen_at, started_at, created_at) < $1 LIMIT 100",
        )
        .bind(before)
        .fetch_all(pool)
        .await?
    }))
}

/// A whole segment of a live's recording, as [`record_segment`] kept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedSegment {
    pub msn: u64,
    /// The encoder connection it came from (its init segment's number).
    pub run: u32,
    pub duration_ms: u64,
}

/// Records that segment `msn` of `live` (from encoder connection `run`, `duration_ms` long) is
/// in storage. Called right after the write, so the rows name exactly what storage holds, even
/// when the packaging process dies a moment later. Writing one twice changes nothing.
pub async fn record_segment(db: &Db, live: Uuid, segment: RecordedSegment) -> Result<(), DbError> {
    let msn = i64::try_from(segment.msn).unwrap_or(i64::MAX);
    let duration = i64::try_from(segment.duration_ms).unwrap_or(i64::MAX);
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query(
                "INSERT INTO live_segments (live_id, msn, run, duration_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(live)
            .bind(msn)
            .bind(i64::from(segment.run))
            .bind(duration)
            .execute(pool)
            .await?;
        });
        Ok(())
    })
    .await
}

/// The stored segments of `live`, in order (every encoder connection's).
pub async fn recording(db: &Db, live: Uuid) -> Result<Vec<RecordedSegment>, DbError> {
    let rows: Vec<(i64, i64, i64)> = with_pool!(db, |pool| {
        sqlx::query_as("SELECT msn, run, duration_ms FROM live_segments WHERE live_id = $1 ORDER BY msn")
            .bind(live)
            .fetch_all(pool)
            .await?
    });
    Ok(rows
        .into_iter()
        .map(|(msn, run, duration)| RecordedSegment {
            msn: u64::try_from(msn).unwrap_or(0),
            run: u32::try_from(run).unwrap_or(u32::MAX),
            duration_ms: u64::try_from(duration).unwrap_or(0),
        })
        .collect())
}

/// A live's title, description and privacy, as they may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveChange {
    pub title: String,
    pub description: String,
    pub privacy: Privacy,
}

/// Changes a live's title, description and privacy; false if it does not exist.
pub async fn update(db: &Db, id: Uuid, change: &LiveChange) -> Result<bool, DbError> {
    retry_serializable(|| async {
        let done = with_pool!(db, |pool| {
            sqlx::query("UPDATE lives SET title = $2, description = $3, privacy = $4 WHERE id = $1")
                .bind(id)
                .bind(&change.title)
                .bind(&change.description)
                .bind(change.privacy.as_str())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    })
    .await
}
