//! The videos table: metadata, processing state and counters of each video.
//!
//! A video is created with its upload (state `uploading`), becomes `processing` when the upload
//! completes, and `ready` or `failed` when its transcode ends. `playable` turns true while it is
//! still processing, as soon as the first segments of every rendition are published. Lists join
//! the owner's and the channel's names so a page needs one query.

use crate::search::Indexer;
use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// The job that turns a video's original into HLS; its payload is `{"video_id": …}` and its
/// idempotency key `transcode:{video_id}`.
pub const TRANSCODE: crate::jobs::JobKind = crate::jobs::JobKind::new("transcode");

/// The job that transcodes a `ready` video again into its next media version, leaving the
/// served version alone until the new one is complete; its payload is
/// `{"video_id": …, "version": n}` and its idempotency key `retranscode:{video_id}:{n}`.
pub const RETRANSCODE: crate::jobs::JobKind = crate::jobs::JobKind::new("retranscode");

/// The job that deletes a media version a re-transcode replaced, once viewers who started on it
/// have had time to finish; payload `{"video_id": …, "version": n}`, idempotency key
/// `retire_media:{video_id}:{n}`.
pub const RETIRE_MEDIA: crate::jobs::JobKind = crate::jobs::JobKind::new("retire_media");

/// Who may see a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Privacy {
    /// Listed and playable by anyone.
    Public,
    /// Playable by anyone with the link, never listed.
    Unlisted,
    /// Only its owner.
    Private,
}

impl Privacy {
    pub fn as_str(self) -> &'static str {
        match self {
            Privacy::Public => "public",
            Privacy::Unlisted => "unlisted",
            Privacy::Private => "private",
        }
    }

    pub fn parse(s: &str) -> Option<Privacy> {
        match s {
            "public" => Some(Privacy::Public),
            "unlisted" => Some(Privacy::Unlisted),
            "private" => Some(Privacy::Private),
            _ => None,
        }
    }
}

/// Where a video is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VideoState {
    Uploading,
    Processing,
    Ready,
    Failed,
}

impl VideoState {
    pub fn as_str(self) -> &'static str {
        match self {
            VideoState::Uploading => "uploading",
            VideoState::Processing => "processing",
            VideoState::Ready => "ready",
            VideoState::Failed => "failed",
        }
    }

    fn from_stored(s: &str) -> VideoState {
        match s {
            "uploading" => VideoState::Uploading,
            "processing" => VideoState::Processing,
            "ready" => VideoState::Ready,
            _ => VideoState::Failed,
        }
    }
}

/// One rendition of the HLS ladder, as published.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rendition {
    /// `720p`, or `audio` for an audio-only video.
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Peak bits per second, as the master playlist says.
    pub bandwidth: u64,
}

/// A video with its owner's names.
#[derive(Debug, Clone, PartialEq)]
pub struct Video {
    pub id: Uuid,
    pub owner_id: UserId,
    pub owner_username: String,
    pub owner_display_name: String,
    /// The channel it is published in, with the channel's handle and name.
    pub channel_id: Uuid,
    pub channel_handle: String,
    pub channel_display_name: String,
    /// The channel's avatar version (`None`: no avatar).
    pub channel_avatar_version: Option<i64>,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub category: Option<String>,
    pub language: Option<String>,
    pub licence: Option<String>,
    pub privacy: Privacy,
    pub state: VideoState,
    /// 0–100 while processing.
    pub progress: u8,
    pub playable: bool,
    pub failure_reason: Option<String>,
    pub duration_secs: Option<f64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub renditions: Vec<Rendition>,
    pub has_poster: bool,
    pub has_storyboard: bool,
    /// Which transcode's output is served: 0 for the first, `n` after the n-th re-transcode
    /// (`turtlemen_storage::VideoOutput`).
    pub media_version: u32,
    pub original_name: String,
    pub original_bytes: u64,
    pub views: u64,
    /// Likes and dislikes, kept equal to the rating rows ([`crate::ratings`]).
    pub likes: u64,
    pub dislikes: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    /// Why the video is hidden from everyone but its owner and moderators; `None`: it is not.
    pub hidden: Option<Hidden>,
}

/// Why a video is hidden ([`crate::moderation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hidden {
    /// A moderator hid it, saying why (shown to the owner).
    Moderation { reason: String },
    /// Its owner is banned.
    OwnerBanned,
}

/// The metadata a user sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub category: Option<String>,
    pub language: Option<String>,
    pub licence: Option<String>,
    pub privacy: Privacy,
}

/// What it takes to create a video (with its upload).
#[derive(Debug, Clone)]
pub struct NewVideo {
    pub id: Uuid,
    pub owner_id: UserId,
    /// One of the owner's channels.
    pub channel_id: Uuid,
    pub metadata: Metadata,
    pub original_name: String,
    pub original_bytes: u64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    id: Uuid,
    owner_id: Uuid,
    owner_username: String,
    owner_display_name: String,
    channel_id: Uuid,
    channel_handle: String,
    channel_display_name: String,
    channel_avatar_version: Option<i64>,
    title: String,
    description: String,
    tags: String,
    category: Option<String>,
    language: Option<String>,
    licence: Option<String>,
    privacy: String,
    state: String,
    progress: i32,
    playable: bool,
    failure_reason: Option<String>,
    duration_secs: Option<f64>,
    width: Option<i32>,
    height: Option<i32>,
    renditions: String,
    has_poster: bool,
    has_storyboard: bool,
    media_version: i32,
    original_name: String,
    original_bytes: i64,
    views: i64,
    likes: i64,
    dislikes: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    published_at: Option<DateTime<Utc>>,
    hidden: Option<String>,
    hidden_reason: Option<String>,
}

impl Row {
    /// The key public lists are ordered and paged by: `(published_at, id)`.
    pub(crate) fn list_key(&self) -> (DateTime<Utc>, Uuid) {
        (self.published_at.unwrap_or(self.created_at), self.id)
    }
}

impl Video {
    /// When the video was listed: its publication, or its creation if not published. Lists
    /// are ordered and paged by it ([`Video::list_key`]), and cards show its age.
    pub fn listed_at(&self) -> DateTime<Utc> {
        self.published_at.unwrap_or(self.created_at)
    }

    /// The key public lists are ordered and paged by: `(published_at, id)`.
    pub fn list_key(&self) -> (DateTime<Utc>, Uuid) {
        (self.listed_at(), self.id)
    }
}

impl From<Row> for Video {
    fn from(r: Row) -> Video {
        Video {
            id: r.id,
            owner_id: UserId(r.owner_id),
            owner_username: r.owner_username,
            owner_display_name: r.owner_display_name,
            channel_id: r.channel_id,
            channel_handle: r.channel_handle,
            channel_display_name: r.channel_display_name,
            channel_avatar_version: r.channel_avatar_version,
            title: r.title,
            description: r.description,
            tags: serde_json::from_str(&r.tags).unwrap_or_default(),
            category: r.category,
            language: r.language,
            licence: r.licence,
            privacy: Privacy::parse(&r.privacy).unwrap_or(Privacy::Private),
            state: VideoState::from_stored(&r.state),
            progress: r.progress.clamp(0, 100) as u8,
            playable: r.playable,
            failure_reason: r.failure_reason,
            duration_secs: r.duration_secs,
            width: r.width.and_then(|w| u32::try_from(w).ok()),
            height: r.height.and_then(|h| u32::try_from(h).ok()),
            renditions: serde_json::from_str(&r.renditions).unwrap_or_default(),
            has_poster: r.has_poster,
            has_storyboard: r.has_storyboard,
            media_version: u32::try_from(r.media_version).unwrap_or(0),
            original_name: r.original_name,
            original_bytes: u64::try_from(r.original_bytes).unwrap_or(0),
            views: u64::try_from(r.views).unwrap_or(0),
            likes: u64::try_from(r.likes).unwrap_or(0),
            dislikes: u64::try_from(r.dislikes).unwrap_or(0),
            created_at: r.created_at,
            updated_at: r.updated_at,
            published_at: r.published_at,
            hidden: match r.hidden.as_deref() {
                None => None,
                Some("ban") => Some(Hidden::OwnerBanned),
                Some(_) => Some(Hidden::Moderation { reason: r.hidden_reason.unwrap_or_default() }),
            },
        }
    }
}

/// What a list's card shows of a video (the feed's pages read only this): 14 columns of the
/// 36 a [`Video`] has, and no owner join. sqlx copies every column of every SQLite row and
/// a [`Video`] parses its tags and renditions, so a page of whole videos cost the feed about a
/// fifth of its CPU in decoding what no card shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub id: Uuid,
    pub channel_id: Uuid,
    pub channel_handle: String,
    pub channel_display_name: String,
    pub channel_avatar_version: Option<i64>,
    pub title: String,
    pub state: VideoState,
    pub playable: bool,
    pub duration_secs: Option<f64>,
    pub has_poster: bool,
    pub media_version: u32,
    pub views: u64,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

impl Card {
    /// As [`Video::listed_at`].
    pub fn listed_at(&self) -> DateTime<Utc> {
        self.published_at.unwrap_or(self.created_at)
    }
}

/// A row of [`card_columns`].
#[derive(sqlx::FromRow)]
pub(crate) struct CardRow {
    id: Uuid,
    channel_id: Uuid,
    channel_handle: String,
    channel_display_name: String,
    channel_avatar_version: Option<i64>,
    title: String,
    state: String,
    playable: bool,
    duration_secs: Option<f64>,
    has_poster: bool,
    media_version: i32,
    views: i64,
    created_at: DateTime<Utc>,
    published_at: Option<DateTime<Utc>>,
}

impl CardRow {
    /// As [`Row::list_key`].
    pub(crate) fn list_key(&self) -> (DateTime<Utc>, Uuid) {
        (self.published_at.unwrap_or(self.created_at), self.id)
    }
}

impl From<CardRow> for Card {
    fn from(r: CardRow) -> Card {
        Card {
            id: r.id,
            channel_id: r.channel_id,
            channel_handle: r.channel_handle,
            channel_display_name: r.channel_display_name,
            channel_avatar_version: r.channel_avatar_version,
            title: r.title,
            state: VideoState::from_stored(&r.state),
            playable: r.playable,
            duration_secs: r.duration_secs,
            has_poster: r.has_poster,
            media_version: u32::try_from(r.media_version).unwrap_or(0),
            views: u64::try_from(r.views).unwrap_or(0),
            created_at: r.created_at,
            published_at: r.published_at,
        }
    }
}

/// The columns of [`CardRow`] (`v` the video, `c` its channel).
macro_rules! card_columns {
    () => {
        "SELECT v.id, v.channel_id, c.handle AS channel_handle, c.display_name AS channel_display_name, \
         c.avatar_version AS channel_avatar_version, v.title, v.state, v.playable, v.duration_secs, \
         v.has_poster, v.media_version, v.views, v.created_at, v.published_at"
    };
}
pub(crate) use card_columns;

/// The columns of [`Row`], as `select!` reads them.
macro_rules! video_columns {
    () => {
        "SELECT v.id, v.owner_id, u.username AS owner_username, u.display_name AS owner_display_name, \
         v.channel_id, c.handle AS channel_handle, c.display_name AS channel_display_name, c.avatar_version AS channel_avatar_version, v.title, \
         v.description, v.tags, v.category, v.language, v.licence, v.privacy, v.state, v.progress, \
         v.playable, v.failure_reason, v.duration_secs, v.width, v.height, v.renditions, v.has_poster, \
         v.has_storyboard, v.media_version, v.original_name, v.original_bytes, v.views, v.likes, v.dislikes, v.created_at, v.updated_at, v.published_at, \
         v.hidden, v.hidden_reason"
    };
}
pub(crate) use video_columns;

macro_rules! select {
    // Cards ([`CardRow`]): the video and its channel only.
    (cards indexed $index:literal, $($rest:tt)+) => {
        concat!(
            $crate::videos::card_columns!(),
            " FROM videos v INDEXED BY ",
            $index,
            " JOIN channels c ON c.id = v.channel_id ",
            $($rest)+
        )
    };
    (cards $($rest:tt)+) => {
        concat!($crate::videos::card_columns!(), " FROM videos v JOIN channels c ON c.id = v.channel_id ", $($rest)+)
    };
    // SQLite only: the plan is pinned to `$index` (statistics are rarely gathered on an embedded
    // database, and without them SQLite may prefer a worse index); it fails loudly if the index
    // cannot serve the query.
    (indexed $index:literal, $($rest:tt)+) => {
        concat!(
            $crate::videos::video_columns!(),
            " FROM videos v INDEXED BY ",
            $index,
            " JOIN users u ON u.id = v.owner_id JOIN channels c ON c.id = v.channel_id ",
            $($rest)+
        )
    };
    // More columns after the video's (`, x.a AS b`), for a row that flattens [`Row`].
    (columns $extra:literal, $($rest:tt)+) => {
        concat!(
            $crate::videos::video_columns!(),
            $extra,
            " FROM videos v JOIN users u ON u.id = v.owner_id JOIN channels c ON c.id = v.channel_id ",
            $($rest)+
        )
    };
    ($($rest:tt)+) => {
        concat!(
            $crate::videos::video_columns!(),
            " FROM videos v JOIN users u ON u.id = v.owner_id JOIN channels c ON c.id = v.channel_id ",
            $($rest)+
        )
    };
}
pub(crate) use select;

fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Runs one `UPDATE videos … WHERE id = $1` that binds the time of the change as `$2`.
async fn touch(db: &Db, id: Uuid, sql: &'static str) -> Result<(), DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| sqlx::query(sql).bind(id).bind(Utc::now()).execute(pool).await.map(|_| ())?);
        Ok(())
    })
    .await
}

/// Inserts a video in state `uploading`, with its search index entry.
pub async fn create(db: &Db, new: &NewVideo) -> Result<(), DbError> {
    let now = Utc::now();
    let m = &new.metadata;
    let tags = tags_json(&m.tags);
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO videos (id, owner_id, title, description, tags, category, language, licence, privacy, state, \
                 original_name, original_bytes, created_at, updated_at, channel_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'uploading', $10, $11, $12, $12, $13)",
            )
            .bind(new.id)
            .bind(new.owner_id.0)
            .bind(&m.title)
            .bind(&m.description)
            .bind(&tags)
            .bind(m.category.as_deref())
            .bind(m.language.as_deref())
            .bind(m.licence.as_deref())
            .bind(m.privacy.as_str())
            .bind(&new.original_name)
            .bind(as_i64(new.original_bytes))
            .bind(now)
            .bind(new.channel_id)
            .execute(&mut *tx)
            .await?;
            Indexer::reindex_video(&mut *tx, new.id).await?;
            tx.commit().await?
        });
        Ok(())
    })
    .await
}

pub async fn get(db: &Db, id: Uuid) -> Result<Option<Video>, DbError> {
    let row: Option<Row> =
        with_pool!(db, |pool| sqlx::query_as(select!("WHERE v.id = $1")).bind(id).fetch_optional(pool).await?);
    Ok(row.map(Video::from))
}

/// A video with what its watch page shows beside it, read with it ([`get_watched`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Watched {
    pub video: Video,
    /// Its comment settings and counters (columns of its row).
    pub comments: crate::comments::VideoComments,
    /// The live whose replay it is, if any (`lives.replay_video_id`).
    pub replay_of: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct WatchedRow {
    #[sqlx(flatten)]
    video: Row,
    comment_policy: String,
    comment_count: i64,
    pinned_comment_id: Option<Uuid>,
    replay_of: Option<Uuid>,
}

/// [`get`] with the video's comment settings and the live it replays, in one statement (the
/// watch page needs all three; ARCHITECTURE.md, "Statements per page" under `crates/api`).
pub async fn get_watched(db: &Db, id: Uuid) -> Result<Option<Watched>, DbError> {
    let row: Option<WatchedRow> = with_pool!(db, |pool| {
        sqlx::query_as(select!(
            columns ", v.comment_policy, v.comment_count, v.pinned_comment_id, \
                     (SELECT l.id FROM lives l WHERE l.replay_video_id = v.id LIMIT 1) AS replay_of",
            "WHERE v.id = $1"
        ))
        .bind(id)
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(|r| Watched {
        video: Video::from(r.video),
        comments: crate::comments::VideoComments::of_columns(&r.comment_policy, r.comment_count, r.pinned_comment_id),
        replay_of: r.replay_of,
    }))
}

/// A user's videos, newest first; `before` pages by creation time.
pub async fn list_by_owner(
    db: &Db,
    owner: UserId,
    before: Option<DateTime<Utc>>,
    limit: u32,
) -> Result<Vec<Video>, DbError> {
    let before = before.unwrap_or_else(|| Utc::now() + chrono::TimeDelta::days(1));
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(select!(
            "WHERE v.owner_id = $1 AND v.created_at < $2 ORDER BY v.created_at DESC, v.id DESC LIMIT $3"
        ))
        .bind(owner.0)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(Video::from).collect())
}

/// Which public list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing<'a> {
    /// Newest published first.
    Recent,
    /// Highest time-decayed view score first ([`crate::trending`]), then newest.
    Trending,
    /// One category's videos (by slug), newest first.
    Category(&'a str),
}

macro_rules! listed {
    // `trending_score >= 0` is always true: it matches the predicate of `videos_published`,
    // which only this query may use (see the migration).
    (recent) => {
        "WHERE v.privacy = 'public' AND v.playable = TRUE AND v.published_at IS NOT NULL AND v.trending_score >= 0 AND v.hidden IS NULL \
         ORDER BY v.published_at DESC, v.id DESC LIMIT $1"
    };
    (trending) => {
        "WHERE v.privacy = 'public' AND v.playable = TRUE AND v.published_at IS NOT NULL AND v.hidden IS NULL \
         ORDER BY v.trending_score DESC, v.published_at DESC, v.id DESC LIMIT $1"
    };
    (category) => {
        "WHERE v.privacy = 'public' AND v.playable = TRUE AND v.published_at IS NOT NULL AND v.category = $2 AND v.hidden IS NULL \
         ORDER BY v.published_at DESC, v.id DESC LIMIT $1"
    };
}

/// Public videos that can be played (ready, or playable while processing), for the home page:
/// each list one range scan of its partial index (`videos_published`, `videos_trending`,
/// `videos_category_published`; named with `INDEXED BY` on SQLite, which has no statistics to
/// choose by).
pub async fn list_public(db: &Db, listing: Listing<'_>, limit: u32) -> Result<Vec<Video>, DbError> {
    let limit = i64::from(limit);
    let rows: Vec<Row> = match (db, listing) {
        (Db::Sqlite(pool), Listing::Recent) => {
            sqlx::query_as(select!(indexed "videos_published", listed!(recent))).bind(limit).fetch_all(pool).await?
        }
        (Db::Sqlite(pool), Listing::Trending) => {
            sqlx::query_as(select!(indexed "videos_trending", listed!(trending))).bind(limit).fetch_all(pool).await?
        }
        (Db::Sqlite(pool), Listing::Category(slug)) => {
            sqlx::query_as(select!(indexed "videos_category_published", listed!(category)))
                .bind(limit)
                .bind(slug)
                .fetch_all(pool)
                .await?
        }
        (Db::Postgres(pool), Listing::Recent) => {
            sqlx::query_as(select!(listed!(recent))).bind(limit).fetch_all(pool).await?
        }
        (Db::Postgres(pool), Listing::Trending) => {
            sqlx::query_as(select!(listed!(trending))).bind(limit).fetch_all(pool).await?
        }
        (Db::Postgres(pool), Listing::Category(slug)) => {
            sqlx::query_as(select!(listed!(category))).bind(limit).bind(slug).fetch_all(pool).await?
        }
    };
    Ok(rows.into_iter().map(Video::from).collect())
}

/// Replaces the user-set metadata, and the search index entry with it. `false` when there is no
/// such video.
pub async fn update_metadata(db: &Db, id: Uuid, m: &Metadata) -> Result<bool, DbError> {
    let tags = tags_json(&m.tags);
    retry_serializable(|| async {
        let done = with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE videos SET title = $2, description = $3, tags = $4, category = $5, language = $6, licence = $7, \
                 privacy = $8, updated_at = $9 WHERE id = $1",
            )
            .bind(id)
            .bind(&m.title)
            .bind(&m.description)
            .bind(&tags)
            .bind(m.category.as_deref())
            .bind(m.language.as_deref())
            .bind(m.licence.as_deref())
            .bind(m.privacy.as_str())
            .bind(Utc::now())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                Indexer::reindex_video(&mut *tx, id).await?;
            }
            tx.commit().await?;
            n
        });
        Ok(done > 0)
    })
    .await
}

/// `uploading` → `processing` (the upload completed). Idempotent.
pub async fn mark_uploaded(db: &Db, id: Uuid) -> Result<(), DbError> {
    touch(
        db,
        id,
        "UPDATE videos SET state = 'processing', progress = 0, updated_at = $2 WHERE id = $1 AND state = 'uploading'",
    )
    .await
}

/// Processing progress, 0–100 (only while processing).
pub async fn set_progress(db: &Db, id: Uuid, percent: u8) -> Result<(), DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query("UPDATE videos SET progress = $2, updated_at = $3 WHERE id = $1 AND state = 'processing'")
                .bind(id)
                .bind(i32::from(percent.min(100)))
                .bind(Utc::now())
                .execute(pool)
                .await
                .map(|_| ())?
        });
        Ok(())
    })
    .await
}

/// The first segments of every rendition are published: viewers may start watching. The video
/// counts as published from now on (for the public lists).
pub async fn mark_playable(db: &Db, id: Uuid) -> Result<(), DbError> {
    touch(
        db,
        id,
        "UPDATE videos SET playable = true, published_at = COALESCE(published_at, $2), updated_at = $2 \
         WHERE id = $1 AND state IN ('processing', 'ready')",
    )
    .await
}

/// What processing learned about the video.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    pub duration_secs: f64,
    pub width: u32,
    pub height: u32,
    pub renditions: Vec<Rendition>,
    pub has_poster: bool,
    pub has_storyboard: bool,
}

/// Processing finished: the video is `ready` and playable.
pub async fn mark_ready(db: &Db, id: Uuid, p: &Processed) -> Result<(), DbError> {
    let renditions = serde_json::to_string(&p.renditions).unwrap_or_else(|_| "[]".into());
    retry_serializable(|| async {
        let now = Utc::now();
        with_pool!(db, |pool| {
            sqlx::query(
                "UPDATE videos SET state = 'ready', progress = 100, playable = true, failure_reason = NULL, \
                 duration_secs = $2, width = $3, height = $4, renditions = $5, has_poster = $6, has_storyboard = $7, \
                 published_at = COALESCE(published_at, $8), updated_at = $8 WHERE id = $1",
            )
            .bind(id)
            .bind(p.duration_secs)
            .bind(i32::try_from(p.width).unwrap_or(i32::MAX))
            .bind(i32::try_from(p.height).unwrap_or(i32::MAX))
            .bind(&renditions)
            .bind(p.has_poster)
            .bind(p.has_storyboard)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())?
        });
        Ok(())
    })
    .await
}

/// A re-transcode finished: its output, version `version`, is served from now on in place of
/// the one before, with the video staying `ready` throughout. `false` (nothing changed) when the
/// video is gone, no longer `ready`, or already serves this version or a newer one.
pub async fn publish_version(db: &Db, id: Uuid, version: u32, p: &Processed) -> Result<bool, DbError> {
    let renditions = serde_json::to_string(&p.renditions).unwrap_or_else(|_| "[]".into());
    let version = i32::try_from(version).unwrap_or(i32::MAX);
    retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query(
                "UPDATE videos SET media_version = $2, duration_secs = $3, width = $4, height = $5, renditions = $6, \
                 has_poster = $7, has_storyboard = $8, updated_at = $9 \
                 WHERE id = $1 AND state = 'ready' AND media_version < $2",
            )
            .bind(id)
            .bind(version)
            .bind(p.duration_secs)
            .bind(i32::try_from(p.width).unwrap_or(i32::MAX))
            .bind(i32::try_from(p.height).unwrap_or(i32::MAX))
            .bind(&renditions)
            .bind(p.has_poster)
            .bind(p.has_storyboard)
            .bind(Utc::now())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    })
    .await
}

/// Up to `limit` `ready` videos with ids above `after` (all from the start when `None`), in id
/// order, each with the media version it serves: the pages a re-transcode of every video walks.
pub async fn ready_after(db: &Db, after: Option<Uuid>, limit: u32) -> Result<Vec<(Uuid, u32)>, DbError> {
    let rows: Vec<(Uuid, i32)> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT id, media_version FROM videos WHERE state = 'ready' AND ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().map(|(id, v)| (id, u32::try_from(v).unwrap_or(0))).collect())
}

/// An attempt failed and will be retried: what it published is gone, so nothing is playable
/// until the next attempt publishes again.
pub async fn mark_retrying(db: &Db, id: Uuid) -> Result<(), DbError> {
    touch(
        db,
        id,
        "UPDATE videos SET playable = false, progress = 0, updated_at = $2 WHERE id = $1 AND state = 'processing'",
    )
    .await
}

/// Processing failed for good: the owner reads `reason`. Nothing is playable any more.
pub async fn mark_failed(db: &Db, id: Uuid, reason: &str) -> Result<(), DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query(
                "UPDATE videos SET state = 'failed', playable = false, failure_reason = $2, updated_at = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(reason)
            .bind(Utc::now())
            .execute(pool)
            .await
            .map(|_| ())?
        });
        Ok(())
    })
    .await
}

/// Removes a video row (its upload and its search index entry go with it). `false` when there
/// was none.
pub async fn delete(db: &Db, id: Uuid) -> Result<bool, DbError> {
    retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            let mut tx = pool.begin().await?;
            Indexer::unindex_video(&mut *tx, id).await?;
            let n = sqlx::query("DELETE FROM videos WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n > 0)
    })
    .await
}

/// Adds counted views now: see [`crate::trending::add_views_at`].
pub async fn add_views(db: &Db, counts: &[(Uuid, u64)]) -> Result<(), DbError> {
    crate::trending::add_views_at(db, counts, Utc::now()).await
}

/// Bytes a user's videos take (their originals as declared, uploads in progress included), all
/// time and since `since`: what upload quotas are checked against.
pub async fn bytes_used(db: &Db, owner: UserId, since: DateTime<Utc>) -> Result<(u64, u64), DbError> {
    let (total, recent): (Option<i64>, Option<i64>) = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT CAST(SUM(original_bytes) AS BIGINT), \
             CAST(SUM(CASE WHEN created_at > $2 THEN original_bytes ELSE 0 END) AS BIGINT) \
             FROM videos WHERE owner_id = $1",
        )
        .bind(owner.0)
        .bind(since)
        .fetch_one(pool)
        .await?
    });
    let n = |v: Option<i64>| u64::try_from(v.unwrap_or(0)).unwrap_or(0);
    Ok((n(total), n(recent)))
}
