//! The `retranscode` job: a `ready` video is transcoded again (after an ffmpeg upgrade, a new
//! ladder or a fix to the pipeline) without ever becoming unwatchable. The new output is a
//! media version of its own (`turtlemen_storage::VideoOutput`), written beside the one being
//! served; once complete, one conditional update switches the video to it
//! (`videos::publish_version`), and a `retire_media` job, due [`RETIRE_AFTER`] later, deletes the
//! versions it replaced — viewers who loaded the old playlists keep their segments meanwhile.
//!
//! Idempotent like the first transcode: a video deleted, no longer `ready`, or already serving
//! this version (or a newer one) ends the job; a run after a killed worker starts over under the
//! same version's keys. It never writes the video's state, progress or playability, and never
//! touches the version being served: a failed or refused run removes only its own output, and
//! the job keeps the error for admins.

use crate::transcode::{Transcoder, download, last_bytes, processed, remove_earlier_attempts};
use crate::{JobContext, JobError};
use std::time::{Duration, Instant};
use turtlemen_db::jobs::{self, NewJob};
use turtlemen_db::videos::{self, VideoState};
use turtlemen_media::ProcessError;
use turtlemen_storage::{Storage, StorageKey, VideoOutput};
use uuid::Uuid;

pub use turtlemen_db::videos::{RETIRE_MEDIA, RETRANSCODE};

/// How long a replaced media version stays stored after its replacement is published: the
/// lifetime of the longest media link handed out for it (two six-hour windows), so a viewer
/// who started on the old version can watch it to the end.
pub const RETIRE_AFTER: Duration = Duration::from_secs(12 * 3600);

/// The most of ffmpeg's last words kept with a failed job.
const STDERR_KEPT: usize = 8 * 1024;

/// Runs `retranscode` jobs with the same storage, scratch space and options as the transcoder.
#[derive(Debug, Clone)]
pub struct Retranscoder(pub Transcoder);

/// The `(video, version)` a job's payload names.
fn target(payload: &serde_json::Value) -> Result<(Uuid, u32), JobError> {
    let video = payload
        .get("video_id")
        .and_then(|v| v.as_str())
        .and_then(|v| Uuid::parse_str(v).ok())
        .ok_or_else(|| JobError::permanent("the job names no video"))?;
    let version = payload
        .get("version")
        .and_then(|v| v.as_u64())
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v > 0)
        .ok_or_else(|| JobError::permanent("the job names no media version above 0"))?;
    Ok((video, version))
}

/// Queues the re-transcode of `video` into `version` (the one after the version it serves); one
/// that failed before is queued again. `false`: that re-transcode is queued or running already.
pub async fn enqueue(db: &turtlemen_db::Db, video: Uuid, version: u32) -> Result<bool, turtlemen_db::DbError> {
    let payload = serde_json::json!({ "video_id": video.to_string(), "version": version });
    let key = format!("retranscode:{video}:{version}");
    jobs::enqueue_again(db, &NewJob::new(RETRANSCODE, &payload).idempotency_key(&key)).await
}

#[async_trait::async_trait]
impl crate::Handler for Retranscoder {
    async fn run(&self, payload: serde_json::Value, ctx: JobContext) -> Result<(), JobError> {
        let (video_id, version) = target(&payload)?;
        let Some(video) = videos::get(&ctx.db, video_id).await? else {
            tracing::info!(video.id = %video_id, "video deleted before its re-transcode; nothing to do");
            return Ok(());
        };
        if video.state != VideoState::Ready {
            tracing::info!(video.id = %video_id, state = video.state.as_str(), "video not ready; not re-transcoded");
            return Ok(());
        }
        if video.media_version >= version {
            return Ok(());
        }
        let t = &self.0;
        let output = VideoOutput { video_id, version };
        let video_work = t.work_root.join(format!("{}.v{version}", video_id.hyphenated()));
        remove_earlier_attempts(&video_work, ctx.attempt).await;
        let work = video_work.join(format!("attempt-{}", ctx.attempt));
        let original = StorageKey::video_original(video_id);
        let (input, downloaded) = match t.storage.readable_local_path(&original).await {
            Some(path) => (path, false),
            None => (download(&t.storage, &original, &work.join("original")).await?, true),
        };
        let started = Instant::now();
        let result = turtlemen_media::process(&input, &work.join("out"), &t.storage, output, &t.options, |_| {}).await;
        if downloaded {
            let _ = tokio::fs::remove_dir_all(&work).await;
        } else {
            let _ = tokio::fs::remove_dir(&work).await;
        }
        let _ = tokio::fs::remove_dir(&video_work).await;

        match result {
            Ok(done) => {
                turtlemen_http::metrics::transcode_finished(done.duration_secs, started.elapsed());
                if videos::publish_version(&ctx.db, video_id, version, &processed(&done)).await? {
                    tracing::info!(video.id = %video_id, media.version = version, "re-transcoded; the new version is served");
                    retire_later(&ctx.db, video_id, version).await?;
                } else {
                    // Deleted, no longer ready, or a newer version won meanwhile: this output
                    // is nobody's.
                    tracing::info!(video.id = %video_id, media.version = version, "re-transcode not published");
                    turtlemen_media::remove_outputs(&t.storage, output).await?;
                }
                Ok(())
            }
            // `process` removed this version's output; the served one is untouched.
            Err(ProcessError::Rejected(reason)) => {
                Err(JobError::Permanent(format!("the original was refused this time: {reason}")))
            }
            Err(e) => {
                let detail = match e.stderr_tail() {
                    Some(tail) => format!("{e}\n--- ffmpeg stderr ---\n{}", last_bytes(tail, STDERR_KEPT)),
                    None => e.to_string(),
                };
                if e.is_permanent() { Err(JobError::Permanent(detail)) } else { Err(JobError::Retry(detail)) }
            }
        }
    }
}

/// Queues the deletion of the versions `version` replaced, due [`RETIRE_AFTER`] from now.
async fn retire_later(db: &turtlemen_db::Db, video: Uuid, version: u32) -> Result<(), turtlemen_db::DbError> {
    let payload = serde_json::json!({ "video_id": video.to_string(), "version": version });
    let key = format!("retire_media:{video}:{version}");
    let mut job = NewJob::new(RETIRE_MEDIA, &payload).idempotency_key(&key);
    job.run_at = chrono::Duration::from_std(RETIRE_AFTER).ok().map(|d| chrono::Utc::now() + d);
    jobs::enqueue(db, &job).await?;
    Ok(())
}

/// Runs `retire_media` jobs: deletes every media version of the video below the one it serves
/// now (the original and the served version stay). A deleted video's objects went with it.
#[derive(Debug, Clone)]
pub struct MediaRetirer {
    pub storage: Storage,
}

#[async_trait::async_trait]
impl crate::Handler for MediaRetirer {
    async fn run(&self, payload: serde_json::Value, ctx: JobContext) -> Result<(), JobError> {
        let (video_id, _) = target(&payload)?;
        let Some(video) = videos::get(&ctx.db, video_id).await? else { return Ok(()) };
        for version in 0..video.media_version {
            turtlemen_media::remove_outputs(&self.storage, VideoOutput { video_id, version }).await?;
        }
        tracing::info!(video.id = %video_id, media.version = video.media_version, "replaced media versions removed");
        Ok(())
    }
}
