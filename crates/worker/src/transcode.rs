//! The `transcode` job: an uploaded original becomes adaptive HLS with a poster and a
//! storyboard (through `turtlemen_media::process`), and the video row follows along —
//! progress while it runs, `playable` once the first segments are out, then `ready` or `failed`
//! with a reason its owner can read. Once playable, a public video's new-video notifications
//! are queued (`notifications::announce_video`, once per video; from the first follower again
//! on an attempt after a failed one, which made the video unplayable meanwhile).
//!
//! Idempotent, as every handler must be: a video already `ready` is left alone (transcoding it
//! again is the `retranscode` job's, [`crate::retranscode`]), a deleted one
//! ends the job, and a run after a killed worker starts over under the same storage keys (the
//! media pipeline overwrites, never appends), in a scratch folder of its own (the killed
//! worker's ffmpeg may outlive it for a moment). Progress is written at most once a second and
//! only when it changed, from a task beside the pipeline, so ffmpeg's pace never waits on the
//! database.

use crate::{JobContext, JobError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tracing::Instrument;
use turtlemen_db::videos::{self, Processed, Rendition, VideoState};
use turtlemen_media::{Event, ProcessError, ProcessOptions};
use turtlemen_storage::{Storage, StorageError, StorageKey, VideoOutput};
use uuid::Uuid;

pub use turtlemen_db::videos::TRANSCODE;

/// What the transcode handler needs besides the job.
#[derive(Debug, Clone)]
pub struct Transcoder {
    pub storage: Storage,
    /// Scratch space; each video gets a folder here while it is processed.
    pub work_root: PathBuf,
    pub options: ProcessOptions,
}

/// The most of ffmpeg's last words kept with a failed job.
const STDERR_KEPT: usize = 8 * 1024;

/// Progress is written no more often than this.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

impl Transcoder {
    /// Runs the ladder on the video's original into `output`, in this attempt's scratch folder
    /// under `video_work` (other attempts' folders there are left-overs of workers that died or
    /// lost the job; they go first). The original is read in place on local storage, else
    /// downloaded; the scratch folders are removed after.
    pub(crate) async fn process_original(
        &self,
        output: VideoOutput,
        video_work: &Path,
        attempt: u32,
        on_event: impl FnMut(Event) + Send,
    ) -> Result<Result<turtlemen_media::Processed, ProcessError>, JobError> {
        remove_earlier_attempts(video_work, attempt).await;
        let work = video_work.join(format!("attempt-{attempt}"));
        let original = StorageKey::video_original(output.video_id);
        let (input, downloaded) = match self.storage.readable_local_path(&original).await {
            Some(path) => (path, false),
            None => (download(&self.storage, &original, &work.join("original")).await?, true),
        };
        let result =
            turtlemen_media::process(&input, &work.join("out"), &self.storage, output, &self.options, on_event).await;
        if downloaded {
            let _ = tokio::fs::remove_dir_all(&work).await;
        } else {
            let _ = tokio::fs::remove_dir(&work).await;
        }
        let _ = tokio::fs::remove_dir(video_work).await;
        Ok(result)
    }
}

#[async_trait::async_trait]
impl crate::Handler for Transcoder {
    async fn run(&self, payload: serde_json::Value, ctx: JobContext) -> Result<(), JobError> {
        let video_id = payload
            .get("video_id")
            .and_then(|v| v.as_str())
            .and_then(|v| Uuid::parse_str(v).ok())
            .ok_or_else(|| JobError::permanent("the job names no video"))?;
        let Some(video) = videos::get(&ctx.db, video_id).await? else {
            tracing::info!(video.id = %video_id, "video deleted before processing; nothing to do");
            return Ok(());
        };
        match video.state {
            VideoState::Ready => return Ok(()),
            // The upload's completion was interrupted after queueing this job.
            VideoState::Uploading => videos::mark_uploaded(&ctx.db, video_id).await?,
            VideoState::Processing | VideoState::Failed => {}
        }
        // Each attempt has its own scratch folder: a killed worker's ffmpeg may still be writing
        // into its own until it dies on its next progress write. Other attempts' folders are
        // left-overs of workers that died or lost the job; they go.
        let video_work = self.work_root.join(video_id.hyphenated().to_string());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        // An attempt after a failed one: the video was playable, then not (`mark_retrying`), and
        // feed heads built meanwhile lack it, so its announcement starts over.
        let again = ctx.attempt > 1;
        let events = record_events(ctx.db.clone(), video_id, rx, again);
        let recorder = tokio::spawn(turtlemen_domain::trace::carried(events).in_current_span());
        let started = Instant::now();
        let result = self
            .process_original(video_id.into(), &video_work, ctx.attempt, move |event| {
                let _ = tx.send(event);
            })
            .await;
        let _ = recorder.await;
        let result = result?;

        match result {
            Ok(done) => {
                turtlemen_http::metrics::transcode_finished(done.duration_secs, started.elapsed());
                videos::mark_ready(&ctx.db, video_id, &processed(&done)).await?;
                // Here too in case the playable moment was missed.
                announce(&ctx.db, video_id, again).await?;
                Ok(())
            }
            Err(ProcessError::Rejected(reason)) => {
                // The file is the problem: the owner reads why; the job itself is done.
                videos::mark_failed(&ctx.db, video_id, &reason).await?;
                Ok(())
            }
            Err(e) => {
                let detail = match e.stderr_tail() {
                    Some(tail) => format!("{e}\n--- ffmpeg stderr ---\n{}", last_bytes(tail, STDERR_KEPT)),
                    None => e.to_string(),
                };
                if e.is_permanent() || ctx.is_last_attempt() {
                    videos::mark_failed(
                        &ctx.db,
                        video_id,
                        "Processing failed on our side; the site's administrators can see why.",
                    )
                    .await?;
                    return Err(JobError::Permanent(detail));
                }
                videos::mark_retrying(&ctx.db, video_id).await?;
                Err(JobError::Retry(detail))
            }
        }
    }
}

/// Removes the scratch folders of attempts other than `attempt` under `video_work`, if any.
async fn remove_earlier_attempts(video_work: &Path, attempt: u32) {
    let Ok(mut entries) = tokio::fs::read_dir(video_work).await else { return };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name();
        let other = name
            .to_str()
            .and_then(|n| n.strip_prefix("attempt-"))
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n != attempt);
        if other && let Err(e) = tokio::fs::remove_dir_all(entry.path()).await {
            tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove an earlier attempt's scratch folder");
        }
    }
}

/// Queues the video's new-video notifications now that it can be watched (if it is public):
/// once per video, or from the first follower `again` (nobody is notified twice).
async fn announce(db: &turtlemen_db::Db, video: Uuid, again: bool) -> Result<bool, turtlemen_db::DbError> {
    if again {
        turtlemen_db::notifications::announce_relisted_video(db, video).await
    } else {
        turtlemen_db::notifications::announce_video(db, video).await
    }
}

/// Writes progress (at most every [`PROGRESS_EVERY`], only when it changed) and playability
/// as the pipeline reports them.
async fn record_events(
    db: turtlemen_db::Db,
    video: Uuid,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
    again: bool,
) {
    let mut last: Option<(u8, Instant)> = None;
    let mut pending: Option<u8> = None;
    loop {
        let wait = last.map_or(Duration::ZERO, |(_, at)| PROGRESS_EVERY.saturating_sub(at.elapsed()));
        tokio::select! {
            event = rx.recv() => match event {
                None => break,
                Some(Event::Playable) => match videos::mark_playable(&db, video).await {
                    // A failure is logged: `mark_ready` queues them again at the end.
                    Ok(()) => if let Err(e) = announce(&db, video, again).await {
                        tracing::warn!(video.id = %video, error = %e, "cannot queue the new-video notifications");
                    },
                    Err(e) => tracing::warn!(video.id = %video, error = %e, "cannot mark a video playable"),
                },
                Some(Event::Progress { percent }) => {
                    if last.map(|(p, _)| p) != Some(percent) {
                        pending = Some(percent);
                    }
                }
            },
            _ = tokio::time::sleep(wait), if pending.is_some() => {
                if let Some(percent) = pending.take() {
                    write_progress(&db, video, percent, &mut last).await;
                }
            }
        }
    }
    if let Some(percent) = pending {
        write_progress(&db, video, percent, &mut last).await;
    }
}

async fn write_progress(db: &turtlemen_db::Db, video: Uuid, percent: u8, last: &mut Option<(u8, Instant)>) {
    match videos::set_progress(db, video, percent).await {
        Ok(()) => *last = Some((percent, Instant::now())),
        Err(e) => tracing::warn!(video.id = %video, error = %e, "cannot record progress"),
    }
}

/// Copies the original from a remote store into `to`, streaming.
async fn download(storage: &Storage, key: &StorageKey, to: &Path) -> Result<PathBuf, JobError> {
    use futures::StreamExt;
    if let Some(parent) = to.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let mut read = match storage.get(key, None).await {
        Ok(read) => read,
        Err(StorageError::NotFound(_)) => return Err(JobError::permanent("the uploaded original is missing")),
        Err(e) => return Err(e.into()),
    };
    let mut file = tokio::io::BufWriter::new(tokio::fs::File::create(to).await?);
    while let Some(chunk) = read.stream.next().await {
        file.write_all(&chunk?).await?;
    }
    file.flush().await?;
    Ok(to.to_owned())
}

pub(crate) fn processed(done: &turtlemen_media::Processed) -> Processed {
    Processed {
        duration_secs: done.duration_secs,
        width: done.width,
        height: done.height,
        renditions: done
            .renditions
            .iter()
            .map(|r| Rendition {
                name: r.name.clone(),
                width: r.size.map_or(0, |(w, _)| w),
                height: r.size.map_or(0, |(_, h)| h),
                bandwidth: r.bandwidth,
            })
            .collect(),
        has_poster: done.has_poster,
        has_storyboard: done.has_storyboard,
    }
}

/// The last `max` bytes of `text`, cut at a character boundary.
pub(crate) fn last_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
