//! The `live_replay` job: a live's recording — every encoder connection ("run") of it, in
//! order — made into the original of an ordinary video whose transcode is queued like an
//! upload's. The job is queued with the live's end, in the same transaction
//! ([`turtlemen_db::lives::end`]), so a process that dies right after the end loses no replay,
//! and a failed attempt (storage away, ffmpeg killed, the worker gone half-way) is tried again
//! by the queue.
//!
//! The recording is what the `live_segments` rows name: the packaging process writes one right
//! after each whole segment reaches storage, so the rows stay true when that process dies.
//!
//! Runs are joined by ffmpeg's concat demuxer, streams copied, never decoded: each run is its own
//! fragmented MP4 (its init segment, then its segments), and the demuxer lays each run after the
//! one before on one timeline. A live of one run is its own original, as it is.
//!
//! **Idempotent.** The video's id is in the payload, chosen when the job was queued, so every
//! attempt makes that one video: a row an earlier attempt created is reused, the original is
//! overwritten, the transcode's idempotency key queues it once, and the live points at the
//! video last. A live whose replay exists, whose owner turned replays off, or that recorded
//! nothing, is done at once.

use crate::{Handler, JobContext, JobError};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use turtlemen_db::lives::{Live, RecordedSegment};
use turtlemen_db::videos::{Metadata, VideoState};
use turtlemen_db::{Db, DbError, jobs};
use turtlemen_storage::{Storage, StorageError, StorageKey};
use uuid::Uuid;

pub use turtlemen_db::lives::LIVE_REPLAY;

/// The longest ffmpeg may take to join the runs (a copy: far less than the live lasted).
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Makes replays: where the recordings are read from and joined.
#[derive(Clone)]
pub struct Replayer {
    pub storage: Storage,
    /// Scratch space; each replay gets a folder here while it is joined.
    pub work_root: PathBuf,
}

/// Why a replay could not be made (this attempt).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the replay's work file: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error("ffmpeg could not join the runs ({status}): {stderr}")]
    Join { status: String, stderr: String },
    #[error("ffmpeg took more than {0} seconds to join the runs")]
    JoinTimeout(u64),
}

#[derive(Debug, Deserialize)]
struct Payload {
    live_id: Uuid,
    video_id: Uuid,
}

#[async_trait::async_trait]
impl Handler for Replayer {
    async fn run(&self, payload: serde_json::Value, ctx: JobContext) -> Result<(), JobError> {
        let p: Payload = serde_json::from_value(payload).map_err(JobError::permanent)?;
        let Some(live) = turtlemen_db::lives::get(&ctx.db, p.live_id).await? else { return Ok(()) };
        if live.replay_video_id.is_some() || !live.replays {
            return Ok(());
        }
        let recording = turtlemen_db::lives::recording(&ctx.db, live.id).await?;
        if recording.is_empty() {
            return Ok(());
        }
        let video = make(&ctx.db, &self.storage, &self.work_root, &live, &recording, p.video_id).await?;
        tracing::info!(live.id = %live.id, video.id = %video, segments = recording.len(), "live replay queued");
        Ok(())
    }
}

/// The recording's runs in order, each with its segments' numbers.
pub fn runs(recording: &[RecordedSegment]) -> Vec<(u32, Vec<u64>)> {
    let mut runs: Vec<(u32, Vec<u64>)> = Vec::new();
    for s in recording {
        match runs.last_mut() {
            Some((run, msns)) if *run == s.run => msns.push(s.msn),
            _ => runs.push((s.run, vec![s.msn])),
        }
    }
    runs
}

/// Makes `video`, the replay of `live` from `recording` (not empty): owned by the live's owner,
/// in its channel, with its title, description and privacy, its original the joined runs; its
/// transcode queued and the live pointed at it. An attempt after one that got as far as the
/// transcode only points the live at the video.
pub async fn make(
    db: &Db,
    storage: &Storage,
    work_root: &Path,
    live: &Live,
    recording: &[RecordedSegment],
    video: Uuid,
) -> Result<Uuid, ReplayError> {
    let existing = turtlemen_db::videos::get(db, video).await?;
    if existing.as_ref().is_some_and(|v| v.state != VideoState::Uploading) {
        turtlemen_db::lives::set_replay(db, live.id, video).await?;
        return Ok(video);
    }
    let dir = work_root.join(format!("live-{}", live.id));
    tokio::fs::create_dir_all(&dir).await?;
    let made = async {
        let original = assemble(storage, live.id, recording, &dir).await?;
        let bytes = tokio::fs::metadata(&original).await?.len();
        if existing.is_none() {
            let new = turtlemen_db::videos::NewVideo {
                id: video,
                owner_id: live.owner_id,
                channel_id: live.channel_id,
                metadata: Metadata {
                    title: live.title.clone(),
                    description: live.description.clone(),
                    tags: Vec::new(),
                    category: None,
                    language: None,
                    licence: None,
                    privacy: live.privacy,
                },
                original_name: format!("live-{}.mp4", live.id),
                original_bytes: bytes,
            };
            turtlemen_db::videos::create(db, &new).await?;
        }
        storage.put_file(&StorageKey::video_original(video), &original).await?;
        let payload = serde_json::json!({ "video_id": video });
        let idempotency = format!("transcode:{video}");
        let job = jobs::NewJob::new(crate::transcode::TRANSCODE, &payload).idempotency_key(&idempotency);
        jobs::enqueue(db, &job).await?;
        turtlemen_db::videos::mark_uploaded(db, video).await?;
        turtlemen_db::lives::set_replay(db, live.id, video).await?;
        Ok::<_, ReplayError>(video)
    }
    .await;
    if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
        tracing::warn!(live.id = %live.id, error = %e, "cannot remove a replay's work folder");
    }
    made
}

/// Writes each run as a fragmented MP4 in `dir` and joins them; returns the file to keep.
async fn assemble(
    storage: &Storage,
    live: Uuid,
    recording: &[RecordedSegment],
    dir: &Path,
) -> Result<PathBuf, ReplayError> {
    let mut files = Vec::new();
    for (run, msns) in runs(recording) {
        let path = dir.join(format!("run-{run}.mp4"));
        let mut keys = vec![turtlemen_live::packager::init_key(live, run)];
        keys.extend(msns.iter().map(|m| turtlemen_live::packager::segment_key(live, *m)));
        copy_objects(storage, &keys, &path).await?;
        files.push(path);
    }
    if files.len() == 1 {
        return Ok(files.remove(0));
    }
    // The concat demuxer's list names files beside it (plain names: its safe mode holds).
    let list: String =
        files.iter().filter_map(|f| f.file_name().and_then(|n| n.to_str())).map(|n| format!("file '{n}'\n")).collect();
    let list_path = dir.join("runs.txt");
    tokio::fs::write(&list_path, list).await?;
    let joined = dir.join("replay.mp4");
    let child = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-f", "concat", "-i"])
        .arg(&list_path)
        .args(["-map", "0", "-c", "copy", "-f", "mp4", "-y"])
        .arg(&joined)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let out = tokio::time::timeout(JOIN_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| ReplayError::JoinTimeout(JOIN_TIMEOUT.as_secs()))??;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(ReplayError::Join { status: out.status.to_string(), stderr: stderr.chars().take(2000).collect() });
    }
    Ok(joined)
}

/// Concatenates the objects `keys` into the file at `path`.
async fn copy_objects(storage: &Storage, keys: &[StorageKey], path: &Path) -> Result<(), ReplayError> {
    use futures::TryStreamExt;
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(path).await?;
    for key in keys {
        let mut read = storage.get(key, None).await?.stream;
        while let Some(chunk) = read.try_next().await? {
            file.write_all(&chunk).await?;
        }
    }
    file.sync_all().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(msn: u64, run: u32, duration_ms: u64) -> RecordedSegment {
        RecordedSegment { msn, run, duration_ms }
    }

    #[test]
    fn runs_keep_their_order_and_segments() {
        let rec = [seg(0, 0, 2000), seg(1, 0, 2000), seg(2, 1, 1500), seg(3, 2, 2100)];
        assert_eq!(runs(&rec), vec![(0, vec![0, 1]), (1, vec![2]), (2, vec![3])]);
        assert!(runs(&[]).is_empty());
    }
}
