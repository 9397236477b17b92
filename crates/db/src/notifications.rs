//! In-app notifications ("a channel you follow published a video", "… is live now", "someone
//! subscribed to your channel"), their per-kind settings, and the jobs that produce them.
//!
//! Notifications are never written by the request that causes them: the cause enqueues a job
//! ([`announce_video`], [`announce_live`], [`announce_subscriber`]) and a worker produces the
//! rows. A new video, or a channel going live, reaches every subscriber through a fan-out in bounded batches ([`fan_out_batch`]: one short
//! `INSERT … SELECT … ON CONFLICT DO NOTHING` per batch of subscribers, walked in user id order
//! from a cursor the job checkpoints), so no transaction stays open for long and a batch run
//! twice (after a crash) changes nothing: the `UNIQUE (user_id, kind, channel_id, subject_id)`
//! key makes a second copy of a notification impossible, whoever tries.
//!
//! Reading never shows what the recipient may no longer see: a video notification is listed and
//! counted only while its video exists and is public and playable; a live notification only
//! while the live is public and its channel not suspended; a subscriber notification
//! only while the subscriber's account exists; a comment notification only while the comment
//! is shown and its video is one the recipient may see. The comment kinds are produced by
//! [`crate::comment_notifications`].
//!
//! This module must never hold a transaction across batches, nor produce a notification inline
//! in a request.

use crate::jobs::{self, JobKind, NewJob};
use crate::users::User;
use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::{DateTime, Utc};
use turtlemen_domain::UserId;
use uuid::Uuid;

/// The fan-out of a newly public video to its channel's subscribers; payload
/// `{"video_id", "after", "done"}` (`after`: the last subscriber id done), key
/// `notify_new_video:{video}`.
pub const NOTIFY_NEW_VIDEO: JobKind = JobKind::new("notify_new_video");

/// One "new subscriber" notification for a channel's owner; payload `{"channel_id",
/// "subscriber_id"}`, key `notify_new_subscriber:{channel}:{subscriber}`.
pub const NOTIFY_NEW_SUBSCRIBER: JobKind = JobKind::new("notify_new_subscriber");

/// The fan-out of a public live that went on air to its channel's subscribers; payload
/// `{"live_id", "after", "done"}`, key `notify_live_started:{live}` (once per live: a reconnect
/// queues nothing more).
pub const NOTIFY_LIVE_STARTED: JobKind = JobKind::new("notify_live_started");

/// Subscribers per fan-out batch (one short statement each).
pub const FAN_OUT_BATCH: u32 = 1000;

/// The unread count stops counting here (the bell shows "99+").
pub const UNREAD_CAP: u32 = 100;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = NotificationKind)]
pub enum Kind {
    /// A channel the recipient follows published a video.
    NewVideo,
    /// Someone subscribed to one of the recipient's channels.
    NewSubscriber,
    /// Someone replied to the recipient's comment ([`crate::comment_notifications`]).
    CommentReply,
    /// A comment mentions the recipient's `@handle`.
    CommentMention,
    /// Someone commented on the recipient's video.
    VideoComment,
    /// A moderator warned the recipient (`crate::moderation::warn`); always on.
    Warning,
    /// A channel the recipient follows went live.
    LiveStarted,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::NewVideo,
        Kind::LiveStarted,
        Kind::NewSubscriber,
        Kind::CommentReply,
        Kind::CommentMention,
        Kind::VideoComment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::NewVideo => "new_video",
            Kind::NewSubscriber => "new_subscriber",
            Kind::CommentReply => "comment_reply",
            Kind::CommentMention => "comment_mention",
            Kind::VideoComment => "video_comment",
            Kind::Warning => "warning",
            Kind::LiveStarted => "live_started",
        }
    }

    /// Every kind: [`Kind::ALL`] (those a recipient may turn off) and warnings.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().chain([Kind::Warning]).find(|k| k.as_str() == s)
    }
}

/// What a notification is about, with what it takes to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A video, public and playable when read.
    Video { id: Uuid, title: String },
    /// A live, public when read.
    Live { id: Uuid, title: String },
    /// A subscriber.
    Subscriber { id: UserId, username: String, display_name: String },
    /// A comment, shown when read, on a video the recipient may see.
    Comment { id: Uuid, video_id: Uuid, video_title: String, root_id: Option<Uuid>, author_username: String },
    /// A moderator's warning, in their words.
    Warning { text: String },
}

/// One notification as its recipient sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: Uuid,
    pub kind: Kind,
    pub subject: Subject,
    pub channel_id: Uuid,
    pub channel_handle: String,
    pub channel_display_name: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// A recipient's switches; every kind is on unless turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub new_video: bool,
    pub live_started: bool,
    pub new_subscriber: bool,
    pub comment_reply: bool,
    pub comment_mention: bool,
    pub video_comment: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            new_video: true,
            live_started: true,
            new_subscriber: true,
            comment_reply: true,
            comment_mention: true,
            video_comment: true,
        }
    }
}

impl Settings {
    pub fn enabled(&self, kind: Kind) -> bool {
        match kind {
            Kind::NewVideo => self.new_video,
            Kind::LiveStarted => self.live_started,
            Kind::NewSubscriber => self.new_subscriber,
            Kind::CommentReply => self.comment_reply,
            Kind::CommentMention => self.comment_mention,
            Kind::VideoComment => self.video_comment,
            Kind::Warning => true,
        }
    }
}

/// Queues the fan-out of `video` if it is public, playable and published now (called where a
/// video becomes playable). Queued once per video; a fan-out that already ran is queued again
/// and resumes from its checkpoint (a finished one does nothing).
pub async fn announce_video(db: &Db, video: Uuid) -> Result<bool, DbError> {
    announce(db, video, false).await
}

/// Queues the fan-out of `video` again from its first follower, if it is public, playable and
/// published now (called where a video is made public). Followers already notified are not
/// notified twice (the notifications' unique key), and feed heads built while the video was not
/// listed get it ([`crate::feed_heads`]).
pub async fn announce_relisted_video(db: &Db, video: Uuid) -> Result<bool, DbError> {
    announce(db, video, true).await
}

async fn announce(db: &Db, video: Uuid, afresh: bool) -> Result<bool, DbError> {
    let listed: Option<Uuid> = with_pool!(db, |pool| {
        sqlx::query_scalar(
            "SELECT id FROM videos WHERE id = $1 AND privacy = 'public' AND playable = TRUE AND published_at IS NOT NULL \
             AND hidden IS NULL",
        )
        .bind(video)
        .fetch_optional(pool)
        .await?
    });
    if listed.is_none() {
        return Ok(false);
    }
    let payload = serde_json::json!({ "video_id": video, "after": null, "done": false });
    let key = format!("notify_new_video:{video}");
    let job = NewJob::new(NOTIFY_NEW_VIDEO, &payload).idempotency_key(&key);
    if afresh { jobs::enqueue_afresh(db, &job).await } else { jobs::enqueue_again(db, &job).await }
}

/// Queues the fan-out of `live` if it is public and on air now (called when an encoder's
/// publish is accepted, and when a live on air is made public). Queued once per live: a
/// reconnect, or a second change of privacy, queues nothing more, and the notifications' unique
/// key keeps each follower's one row whatever runs twice.
pub async fn announce_live(db: &Db, live: Uuid) -> Result<bool, DbError> {
    let listed: Option<Uuid> = with_pool!(db, |pool| {
        sqlx::query_scalar("SELECT id FROM lives WHERE id = $1 AND privacy = 'public' AND state = 'live'")
            .bind(live)
            .fetch_optional(pool)
            .await?
    });
    if listed.is_none() {
        return Ok(false);
    }
    let payload = serde_json::json!({ "live_id": live, "after": null, "done": false });
    let key = format!("notify_live_started:{live}");
    Ok(jobs::enqueue(db, &NewJob::new(NOTIFY_LIVE_STARTED, &payload).idempotency_key(&key)).await?.created)
}

/// Queues the "new subscriber" notification of `subscriber` following `channel` (called right
/// after the subscription is made). Toggling subscribe/unsubscribe queues the job again at
/// most, and the notification exists at most once whatever happens.
pub async fn announce_subscriber(db: &Db, channel: Uuid, subscriber: UserId) -> Result<bool, DbError> {
    let payload = serde_json::json!({ "channel_id": channel, "subscriber_id": subscriber.0 });
    let key = format!("notify_new_subscriber:{channel}:{}", subscriber.0);
    jobs::enqueue_again(db, &NewJob::new(NOTIFY_NEW_SUBSCRIBER, &payload).idempotency_key(&key)).await
}

/// What a fan-out announces: a video (payload field `video_id`) or a live (`live_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Announced {
    #[serde(rename = "video_id")]
    Video(Uuid),
    #[serde(rename = "live_id")]
    Live(Uuid),
}

/// A fan-out's target: what a batch needs of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanOut {
    pub kind: Kind,
    /// The video or the live.
    pub subject: Uuid,
    pub channel: Uuid,
    /// A video's publication time: its followers' feed heads get it too ([`crate::feed_heads`]).
    pub published_at: Option<DateTime<Utc>>,
}

/// Whether `subject` may be announced now; `None` when it no longer exists. A video: public,
/// playable and published; a live: public and not ended (a fan-out that finds it over stops).
pub async fn fan_out_target(db: &Db, subject: Announced) -> Result<Option<(FanOut, bool)>, DbError> {
    Ok(match subject {
        Announced::Video(video) => {
            let row: Option<(Uuid, String, bool, Option<DateTime<Utc>>)> = with_pool!(db, |pool| {
                sqlx::query_as("SELECT channel_id, privacy, playable, published_at FROM videos WHERE id = $1")
                    .bind(video)
                    .fetch_optional(pool)
                    .await?
            });
            row.map(|(channel, privacy, playable, published)| {
                let target = FanOut { kind: Kind::NewVideo, subject: video, channel, published_at: published };
                (target, privacy == "public" && playable && published.is_some())
            })
        }
        Announced::Live(live) => {
            let row: Option<(Uuid, String, String)> = with_pool!(db, |pool| {
                sqlx::query_as("SELECT channel_id, privacy, state FROM lives WHERE id = $1")
                    .bind(live)
                    .fetch_optional(pool)
                    .await?
            });
            row.map(|(channel, privacy, state)| {
                (
                    FanOut { kind: Kind::LiveStarted, subject: live, channel, published_at: None },
                    privacy == "public" && state != "ended",
                )
            })
        }
    })
}

/// The last subscriber of the next batch: the `batch`-th subscriber id after `after`.
/// (PostgreSQL has no `max(uuid)`: the batch is read backwards instead.)
const BATCH_END: &str = "SELECT user_id FROM (SELECT user_id FROM subscriptions \
     WHERE channel_id = $1 AND user_id > $2 ORDER BY user_id LIMIT $3) b ORDER BY user_id DESC LIMIT 1";

/// One batch's notifications on PostgreSQL / CockroachDB: subscribers in `($3, $4]`, those who
/// turned the kind off left out. Binds subject, channel, after, last, now, kind.
const FAN_OUT_POSTGRES: &str = "INSERT INTO notifications (id, user_id, kind, subject_id, channel_id, created_at) \
     SELECT gen_random_uuid(), s.user_id, $6, $1, $2, $5 FROM subscriptions s \
     WHERE s.channel_id = $2 AND s.user_id > $3 AND s.user_id <= $4 \
     AND NOT EXISTS (SELECT 1 FROM notification_settings o WHERE o.user_id = s.user_id AND o.kind = $6 AND o.enabled = FALSE) \
     ON CONFLICT DO NOTHING";

/// The same on SQLite, with a random (version 4) UUID made in SQL for each row.
const FAN_OUT_SQLITE: &str = "INSERT INTO notifications (id, user_id, kind, subject_id, channel_id, created_at) \
     SELECT unhex(substr(h, 1, 12) || '4' || substr(h, 14, 3) || substr('89AB', 1 + (abs(random()) % 4), 1) || substr(h, 18)), \
     user_id, $6, $1, $2, $5 FROM (SELECT s.user_id, hex(randomblob(16)) AS h FROM subscriptions s \
     WHERE s.channel_id = $2 AND s.user_id > $3 AND s.user_id <= $4 \
     AND NOT EXISTS (SELECT 1 FROM notification_settings o WHERE o.user_id = s.user_id AND o.kind = $6 AND o.enabled = FALSE)) \
     WHERE true ON CONFLICT DO NOTHING";

/// Notifies the next `batch` subscribers of `target`'s channel after subscriber id `after`
/// (from the start when `None`), each who has not turned the target's kind off. Returns
/// the last subscriber id of the batch — the cursor to checkpoint — or `None` when no
/// subscriber is left. Two short statements, no transaction spanning them; running a batch
/// again inserts nothing twice.
pub async fn fan_out_batch(db: &Db, target: FanOut, after: Option<Uuid>, batch: u32) -> Result<Option<Uuid>, DbError> {
    let after = after.unwrap_or(Uuid::nil());
    let last: Option<Uuid> = with_pool!(db, |pool| {
        sqlx::query_scalar(BATCH_END)
            .bind(target.channel)
            .bind(after)
            .bind(i64::from(batch.max(1)))
            .fetch_optional(pool)
            .await?
    });
    let Some(last) = last else { return Ok(None) };
    retry_serializable(|| async {
        let now = Utc::now();
        let sql = match db {
            Db::Postgres(_) => FAN_OUT_POSTGRES,
            Db::Sqlite(_) => FAN_OUT_SQLITE,
        };
        with_pool!(db, |pool| {
            sqlx::query(sql)
                .bind(target.subject)
                .bind(target.channel)
                .bind(after)
                .bind(last)
                .bind(now)
                .bind(target.kind.as_str())
                .execute(pool)
                .await
                .map(|_| ())?
        });
        Ok(())
    })
    .await?;
    if let Some(published) = target.published_at {
        crate::feed_heads::push_batch(db, target.subject, target.channel, published, after, last).await?;
    }
    Ok(Some(last))
}

/// Tells the owner of `channel` that `subscriber` follows it, if they still do and the owner
/// has not turned the kind off. `true` if a notification was made now.
pub async fn notify_subscriber(db: &Db, channel: Uuid, subscriber: UserId) -> Result<bool, DbError> {
    let id = Uuid::now_v7();
    retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query(
                "INSERT INTO notifications (id, user_id, kind, subject_id, channel_id, created_at) \
                 SELECT $1, c.owner_id, 'new_subscriber', s.user_id, c.id, $4 FROM subscriptions s \
                 JOIN channels c ON c.id = s.channel_id WHERE s.channel_id = $2 AND s.user_id = $3 \
                 AND NOT EXISTS (SELECT 1 FROM notification_settings o WHERE o.user_id = c.owner_id \
                 AND o.kind = 'new_subscriber' AND o.enabled = FALSE) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(channel)
            .bind(subscriber.0)
            .bind(Utc::now())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    })
    .await
}

/// The joins and filter that keep what the recipient may no longer see out of lists and counts:
/// a video no longer public and playable, hidden by moderation or in a suspended channel, a live
/// no longer public or in a suspended channel, a
/// subscriber who is banned (see `crate::moderation`).
macro_rules! visible {
    ($($rest:tt)+) => {
        concat!(
            "FROM notifications n JOIN channels c ON c.id = n.channel_id \
             LEFT JOIN videos v ON n.kind = 'new_video' AND v.id = n.subject_id AND v.privacy = 'public' \
             AND v.playable = TRUE AND v.published_at IS NOT NULL AND v.hidden IS NULL AND c.suspended = FALSE \
             LEFT JOIN lives lv ON n.kind = 'live_started' AND lv.id = n.subject_id AND lv.privacy = 'public' \
             AND c.suspended = FALSE \
             LEFT JOIN users u ON n.kind = 'new_subscriber' AND u.id = n.subject_id AND u.banned_at IS NULL \
             LEFT JOIN comments cm ON n.kind IN ('comment_reply', 'comment_mention', 'video_comment') \
             AND cm.id = n.subject_id AND cm.status = 'visible' \
             LEFT JOIN videos cv ON cv.id = cm.video_id AND (cv.privacy <> 'private' OR cv.owner_id = n.user_id) \
             AND cv.hidden IS NULL \
             LEFT JOIN users ca ON ca.id = cm.author_id AND ca.banned_at IS NULL \
             WHERE (v.id IS NOT NULL OR lv.id IS NOT NULL OR u.id IS NOT NULL OR (cv.id IS NOT NULL AND ca.id IS NOT NULL) \
             OR n.kind = 'warning') AND ",
            $($rest)+
        )
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    kind: String,
    subject_id: Uuid,
    channel_id: Uuid,
    created_at: DateTime<Utc>,
    read_at: Option<DateTime<Utc>>,
    channel_handle: String,
    channel_display_name: String,
    video_title: Option<String>,
    live_title: Option<String>,
    username: Option<String>,
    user_display_name: Option<String>,
    comment_video_id: Option<Uuid>,
    comment_video_title: Option<String>,
    comment_root_id: Option<Uuid>,
    comment_author: Option<String>,
    text: Option<String>,
}

impl Row {
    fn into_notification(self) -> Option<Notification> {
        let kind = Kind::parse(&self.kind)?;
        let subject = match kind {
            Kind::NewVideo => Subject::Video { id: self.subject_id, title: self.video_title? },
            Kind::LiveStarted => Subject::Live { id: self.subject_id, title: self.live_title? },
            Kind::NewSubscriber => Subject::Subscriber {
                id: UserId(self.subject_id),
                username: self.username?,
                display_name: self.user_display_name.unwrap_or_default(),
            },
            Kind::CommentReply | Kind::CommentMention | Kind::VideoComment => Subject::Comment {
                id: self.subject_id,
                video_id: self.comment_video_id?,
                video_title: self.comment_video_title?,
                root_id: self.comment_root_id,
                author_username: self.comment_author?,
            },
            Kind::Warning => Subject::Warning { text: self.text? },
        };
        Some(Notification {
            id: self.id,
            kind,
            subject,
            channel_id: self.channel_id,
            channel_handle: self.channel_handle,
            channel_display_name: self.channel_display_name,
            created_at: self.created_at,
            read_at: self.read_at,
        })
    }
}

/// `user`'s notifications, newest first, after `(created_at, id)` when paging (index
/// `notifications_user_created`).
pub async fn list(
    db: &Db,
    user: UserId,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: u32,
) -> Result<Vec<Notification>, DbError> {
    let (at, id) = after.unwrap_or((Utc::now() + chrono::TimeDelta::days(3650), Uuid::max()));
    let rows: Vec<Row> = with_pool!(db, |pool| {
        sqlx::query_as(concat!(
            "SELECT n.id, n.kind, n.subject_id, n.channel_id, n.created_at, n.read_at, c.handle AS channel_handle, \
             c.display_name AS channel_display_name, v.title AS video_title, lv.title AS live_title, u.username, u.display_name AS user_display_name, \
             cv.id AS comment_video_id, cv.title AS comment_video_title, cm.root_id AS comment_root_id, ca.username AS comment_author, \
             n.text ",
            visible!(
                "n.user_id = $1 AND n.created_at <= $2 AND (n.created_at < $2 OR n.id < $3) \
                 ORDER BY n.created_at DESC, n.id DESC LIMIT $4"
            )
        ))
        .bind(user.0)
        .bind(at)
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    Ok(rows.into_iter().filter_map(Row::into_notification).collect())
}

/// How many of `user`'s visible notifications are unread, counting at most `cap` (a bounded
/// walk of the partial index `notifications_user_unread`).
pub async fn unread_count(db: &Db, user: UserId, cap: u32) -> Result<u32, DbError> {
    let n: i64 = with_pool!(db, |pool| {
        sqlx::query_scalar(concat!(
            "SELECT COUNT(*) FROM (SELECT 1 AS one ",
            visible!("n.user_id = $1 AND n.read_at IS NULL LIMIT $2"),
            ") x"
        ))
        .bind(user.0)
        .bind(i64::from(cap))
        .fetch_one(pool)
        .await?
    });
    Ok(u32::try_from(n).unwrap_or(cap))
}

/// The user `id` and their unread notifications (as [`unread_count`] counts them, at most
/// `cap`), in one statement: every page a signed-in user opens shows both (the bell), and on
/// PostgreSQL the round trip costs more than either lookup.
pub async fn user_with_unread(db: &Db, id: UserId, cap: u32) -> Result<Option<(User, u32)>, DbError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: crate::users::Row,
        unread: i64,
    }
    let row: Option<Row> = with_pool!(db, |pool| {
        sqlx::query_as(concat!(
            "SELECT ",
            crate::users::columns!(),
            ", (SELECT COUNT(*) FROM (SELECT 1 AS one ",
            visible!("n.user_id = $1 AND n.read_at IS NULL LIMIT $2"),
            ") x) AS unread FROM users WHERE id = $1"
        ))
        .bind(id.0)
        .bind(i64::from(cap))
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(|r| (User::from(r.user), u32::try_from(r.unread).unwrap_or(cap))))
}

/// Marks `user`'s notifications among `ids` read (others' ids change nothing). Returns how
/// many changed.
pub async fn mark_read(db: &Db, user: UserId, ids: &[Uuid]) -> Result<u64, DbError> {
    if ids.is_empty() {
        return Ok(0);
    }
    retry_serializable(|| async {
        let now = Utc::now();
        let n = match db {
            Db::Postgres(pool) => sqlx::query(
                "UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL AND id = ANY($3)",
            )
            .bind(now)
            .bind(user.0)
            .bind(ids)
            .execute(pool)
            .await?
            .rows_affected(),
            Db::Sqlite(pool) => {
                let list = serde_json::to_string(&ids.iter().map(|id| id.simple().to_string()).collect::<Vec<_>>())
                    .unwrap_or_else(|_| "[]".into());
                sqlx::query(
                    "UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL \
                     AND id IN (SELECT unhex(value) FROM json_each($3))",
                )
                .bind(now)
                .bind(user.0)
                .bind(list)
                .execute(pool)
                .await?
                .rows_affected()
            }
        };
        Ok(n)
    })
    .await
}

/// Marks every unread notification of `user` read. Returns how many changed.
pub async fn mark_all_read(db: &Db, user: UserId) -> Result<u64, DbError> {
    retry_serializable(|| async {
        let n = with_pool!(db, |pool| {
            sqlx::query("UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL")
                .bind(Utc::now())
                .bind(user.0)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n)
    })
    .await
}

/// `user`'s switches (defaults where they set none).
pub async fn settings(db: &Db, user: UserId) -> Result<Settings, DbError> {
    let rows: Vec<(String, bool)> = with_pool!(db, |pool| {
        sqlx::query_as("SELECT kind, enabled FROM notification_settings WHERE user_id = $1")
            .bind(user.0)
            .fetch_all(pool)
            .await?
    });
    let mut s = Settings::default();
    for (kind, enabled) in rows {
        match Kind::parse(&kind) {
            Some(Kind::NewVideo) => s.new_video = enabled,
            Some(Kind::LiveStarted) => s.live_started = enabled,
            Some(Kind::NewSubscriber) => s.new_subscriber = enabled,
            Some(Kind::CommentReply) => s.comment_reply = enabled,
            Some(Kind::CommentMention) => s.comment_mention = enabled,
            Some(Kind::VideoComment) => s.video_comment = enabled,
            // Warnings cannot be turned off (and have no settings row).
            Some(Kind::Warning) | None => {}
        }
    }
    Ok(s)
}

/// Turns notifications of `kind` on or off for `user`.
pub async fn set_enabled(db: &Db, user: UserId, kind: Kind, enabled: bool) -> Result<(), DbError> {
    retry_serializable(|| async {
        with_pool!(db, |pool| {
            sqlx::query(
                "INSERT INTO notification_settings (user_id, kind, enabled) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id, kind) DO UPDATE SET enabled = excluded.enabled",
            )
            .bind(user.0)
            .bind(kind.as_str())
            .bind(enabled)
            .execute(pool)
            .await
            .map(|_| ())?
        });
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_default_on() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert!(Settings::default().enabled(k));
        }
        assert_eq!(Kind::parse("new_comment"), None);
        assert_eq!(Kind::parse("comment_reply"), Some(Kind::CommentReply));
    }
}
