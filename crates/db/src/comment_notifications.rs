//! The notifications a comment makes: a reply tells the author of the comment it answers
//! (`comment_reply`), a `@handle` tells that channel's owner (`comment_mention`), and a comment
//! on a video tells the video's owner (`video_comment`).
//!
//! Made by a job ([`NOTIFY_COMMENT`], queued once per comment when it is shown: written, or
//! approved), never by the request. Each recipient gets one notification per comment, of the
//! first kind that applies in that order (a reply that also mentions its parent's author is a
//! reply), and nobody is told of their own comment. The rows' unique key makes a job run twice
//! insert nothing twice; recipients who turned a kind off are left out. On a private video only
//! its owner can see the comments, so only the owner may be told.

use crate::jobs::{self, JobKind, NewJob};
use crate::notifications::Kind;
use crate::{Db, DbError, retry_serializable, with_pool};
use chrono::Utc;
use turtlemen_domain::{CommentText, UserId};
use uuid::Uuid;

/// The notifications of one shown comment; payload `{"comment_id"}`, key
/// `notify_comment:{comment}`.
pub const NOTIFY_COMMENT: JobKind = JobKind::new("notify_comment");

/// Queues the notifications of `comment` (once per comment).
pub async fn announce(db: &Db, comment: Uuid) -> Result<bool, DbError> {
    let payload = serde_json::json!({ "comment_id": comment });
    let key = format!("notify_comment:{comment}");
    Ok(jobs::enqueue(db, &NewJob::new(NOTIFY_COMMENT, &payload).idempotency_key(&key)).await?.created)
}

/// Who should hear of `comment`, each once, with the kind that applies first.
pub async fn recipients(db: &Db, comment: Uuid) -> Result<Option<(Uuid, Vec<(UserId, Kind)>)>, DbError> {
    type Found = (Uuid, String, String, Option<Uuid>, Uuid, Uuid, String);
    let row: Option<Found> = with_pool!(db, |pool| {
        sqlx::query_as(
            "SELECT c.author_id, c.status, c.body, p.author_id, v.owner_id, v.channel_id, v.privacy \
             FROM comments c JOIN videos v ON v.id = c.video_id LEFT JOIN comments p ON p.id = c.parent_id \
             WHERE c.id = $1",
        )
        .bind(comment)
        .fetch_optional(pool)
        .await?
    });
    let Some((author, status, body, parent_author, owner, channel, privacy)) = row else { return Ok(None) };
    if status != "visible" {
        return Ok(None);
    }
    let mut out: Vec<(UserId, Kind)> = Vec::new();
    let mut add = |who: Uuid, kind: Kind| {
        let private_to_them = privacy == "private" && who != owner;
        if who != author && !private_to_them && !out.iter().any(|(u, _)| u.0 == who) {
            out.push((UserId(who), kind));
        }
    };
    if let Some(p) = parent_author {
        add(p, Kind::CommentReply);
    }
    let mentions = CommentText::parse(&body).map(|t| t.mentions()).unwrap_or_default();
    for key in mentions {
        let owner_of: Option<Uuid> = with_pool!(db, |pool| {
            sqlx::query_scalar("SELECT owner_id FROM channels WHERE handle_key = $1")
                .bind(&key)
                .fetch_optional(pool)
                .await?
        });
        if let Some(o) = owner_of {
            add(o, Kind::CommentMention);
        }
    }
    add(owner, Kind::VideoComment);
    Ok(Some((channel, out)))
}

/// Makes the notifications of `comment`; how many were made now (0 when it is no longer shown,
/// or when they all exist already).
pub async fn deliver(db: &Db, comment: Uuid) -> Result<u32, DbError> {
    let Some((channel, list)) = recipients(db, comment).await? else { return Ok(0) };
    let mut made = 0;
    for (user, kind) in list {
        let n = retry_serializable(|| async {
            Ok(with_pool!(db, |pool| {
                sqlx::query(
                    "INSERT INTO notifications (id, user_id, kind, subject_id, channel_id, created_at) \
                     SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM notification_settings o \
                     WHERE o.user_id = $2 AND o.kind = $3 AND o.enabled = FALSE) ON CONFLICT DO NOTHING",
                )
                .bind(Uuid::now_v7())
                .bind(user.0)
                .bind(kind.as_str())
                .bind(comment)
                .bind(channel)
                .bind(Utc::now())
                .execute(pool)
                .await?
                .rows_affected()
            }))
        })
        .await?;
        made += u32::try_from(n).unwrap_or(0);
    }
    Ok(made)
}
