//! The notification jobs: `notify_new_video` fans a newly public video out to its channel's
//! subscribers, `notify_live_started` a public live that went on air, `notify_new_subscriber` tells a channel's owner about a new follower,
//! `notify_comment` tells who a comment concerns (the parent's author, mentioned handles, the
//! video's owner).
//!
//! The fan-out works in bounded batches ([`turtlemen_db::notifications::fan_out_batch`]: one
//! short statement per [`FAN_OUT_BATCH`] subscribers, walked in user id order) and checkpoints
//! its cursor in the job's payload after each batch, under its lease ([`jobs::checkpoint`]).
//! A worker killed mid-way loses at most the batch it was writing; the worker that takes the
//! job over starts from the checkpoint, and a batch written twice inserts nothing twice (the
//! notifications' unique key). Before each batch the video (or live) is read again: deleted, or
//! no longer public and playable (a live: no longer public, or over), the fan-out stops where it
//! is, its checkpoint kept: the playable moment queued twice resumes it, while being made
//! public again starts it over (`announce_relisted_video`: feed heads built meanwhile need the
//! video, and nobody is notified twice).
//!
//! Never one transaction across batches; never a notification for a video or live its
//! recipients may not see.

use crate::{JobContext, JobError};
use std::time::Instant;
use turtlemen_db::jobs::{self, Lease};
use turtlemen_db::notifications::{self, FanOut};

pub use turtlemen_db::notifications::Announced;
use turtlemen_db::{Db, DbError};
use turtlemen_domain::UserId;
use uuid::Uuid;

pub use turtlemen_db::comment_notifications::NOTIFY_COMMENT;
pub use turtlemen_db::notifications::{FAN_OUT_BATCH, NOTIFY_LIVE_STARTED, NOTIFY_NEW_SUBSCRIBER, NOTIFY_NEW_VIDEO};

/// How far a fan-out got: the job's payload (`{"video_id" | "live_id", "after", "done"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// The video or the live announced.
    #[serde(flatten)]
    pub subject: Announced,
    /// The last subscriber (by id) already notified; `None` before the first batch.
    #[serde(default)]
    pub after: Option<Uuid>,
    /// Every subscriber has been reached.
    #[serde(default)]
    pub done: bool,
}

/// How a fan-out run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every subscriber has been reached (now or before).
    Finished,
    /// The video or live is gone or no longer to be announced: stopped, progress kept.
    Withdrawn,
    /// Stopped after the number of batches asked for, progress checkpointed.
    Paused,
}

/// The `notify_new_video` and `notify_live_started` handler (the payload names the subject).
#[derive(Debug, Clone, Copy)]
pub struct SubscriberFanOut {
    /// Subscribers per batch.
    pub batch: u32,
}

impl Default for SubscriberFanOut {
    fn default() -> Self {
        SubscriberFanOut { batch: FAN_OUT_BATCH }
    }
}

#[async_trait::async_trait]
impl crate::Handler for SubscriberFanOut {
    async fn run(&self, payload: serde_json::Value, ctx: JobContext) -> Result<(), JobError> {
        let progress: Progress = serde_json::from_value(payload)
            .map_err(|e| JobError::permanent(format!("malformed fan-out payload: {e}")))?;
        fan_out(&ctx.db, &ctx.lease(), progress, self.batch, None).await.map(|_| ())
    }
}

/// Runs the fan-out from `progress` in batches of `batch`, checkpointing after each, until it
/// finishes, the video or live is withdrawn, or `max_batches` batches ran (`None`: no limit). Fails
/// (to be retried) when the lease is lost or the database fails; whatever was done stays done.
pub async fn fan_out(
    db: &Db,
    lease: &Lease,
    mut progress: Progress,
    batch: u32,
    max_batches: Option<u32>,
) -> Result<Outcome, JobError> {
    let started = Instant::now();
    let mut batches = 0u32;
    let outcome = loop {
        if progress.done {
            break Outcome::Finished;
        }
        if max_batches.is_some_and(|max| batches >= max) {
            break Outcome::Paused;
        }
        match notifications::fan_out_target(db, progress.subject).await? {
            Some((target, true)) => {
                progress = step(db, target, progress, batch).await?;
                batches += 1;
                let payload = serde_json::to_value(progress).map_err(JobError::permanent)?;
                if !jobs::checkpoint(db, lease, &payload).await? {
                    return Err(JobError::retry("the job's lease passed to another worker"));
                }
            }
            _ => break Outcome::Withdrawn,
        }
    };
    tracing::info!(
        fanout.subject = ?progress.subject,
        fanout.batches = batches,
        fanout.outcome = ?outcome,
        duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "notification fan-out ran"
    );
    Ok(outcome)
}

/// One batch from `progress`; returns the progress after it.
async fn step(db: &Db, target: FanOut, progress: Progress, batch: u32) -> Result<Progress, DbError> {
    Ok(match notifications::fan_out_batch(db, target, progress.after, batch).await? {
        Some(last) => Progress { after: Some(last), ..progress },
        None => Progress { done: true, ..progress },
    })
}

#[derive(Debug, serde::Deserialize)]
struct SubscriberPayload {
    channel_id: Uuid,
    subscriber_id: Uuid,
}

/// The `notify_new_subscriber` handler: one notification for the channel's owner, if the
/// subscription still exists and the owner has the kind on (the row is unique: repeated
/// subscribe/unsubscribe never makes a second one).
pub async fn new_subscriber(payload: serde_json::Value, ctx: JobContext) -> Result<(), JobError> {
    let p: SubscriberPayload = serde_json::from_value(payload)
        .map_err(|e| JobError::permanent(format!("malformed new-subscriber payload: {e}")))?;
    let made = notifications::notify_subscriber(&ctx.db, p.channel_id, UserId(p.subscriber_id)).await?;
    tracing::debug!(channel.id = %p.channel_id, user.id = %p.subscriber_id, notification.made = made, "new subscriber");
    Ok(())
}

#[derive(Debug, serde::Deserialize)]
struct CommentPayload {
    comment_id: Uuid,
}

/// The `notify_comment` handler: the reply, mention and new-comment notifications of a shown
/// comment ([`turtlemen_db::comment_notifications::deliver`]; each at most once, whoever runs it).
pub async fn comment(payload: serde_json::Value, ctx: JobContext) -> Result<(), JobError> {
    let p: CommentPayload =
        serde_json::from_value(payload).map_err(|e| JobError::permanent(format!("malformed comment payload: {e}")))?;
    let made = turtlemen_db::comment_notifications::deliver(&ctx.db, p.comment_id).await?;
    tracing::debug!(comment.id = %p.comment_id, notifications.made = made, "comment notifications");
    Ok(())
}
