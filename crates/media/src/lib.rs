//! The media pipeline: turns an uploaded original into adaptive HLS with a poster and a
//! storyboard, with the system's ffmpeg and ffprobe, publishing to [`Storage`] as it goes.
//!
//! [`process`] probes the file ([`probe`]; refusals are [`ProcessError::Rejected`] with a
//! reason for the video's owner), plans the ladder ([`ladder`]), runs ONE ffmpeg process for
//! the whole ladder and the thumbnails ([`command`], [`run`]), and meanwhile mirrors finished
//! segments and playlists to storage ([`publish`]), so the video is playable (an EVENT
//! playlist) seconds after processing starts; at the end the playlists become VOD.
//!
//! It is idempotent per video and version ([`VideoOutput`]): a re-run wipes the work dir and
//! writes the same keys, and removes keys of that version's HLS output it did not write. A
//! re-transcode runs as the next version, whose keys are apart from the served one's. It never
//! touches the original, knows nothing of the database or HTTP, and names objects only by
//! [`StorageKey`]s built from the video id and version.

pub mod command;
pub mod error;
pub mod ladder;
pub mod playlist;
pub mod probe;
pub mod publish;
pub mod run;
pub mod thumbs;

pub use error::{ProcessError, Timeout};
pub use probe::{Probe, probe};
pub use publish::Rendition;

use bytes::Bytes;
use command::{Extras, Job};
use publish::Publisher;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thumbs::Storyboard;
use turtlemen_storage::{Storage, StorageKey, VideoOutput};

/// How often the work dir is checked for finished segments while ffmpeg runs.
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(250);

/// The programs used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
}

impl Default for Tools {
    /// `ffmpeg` and `ffprobe` from `PATH`.
    fn default() -> Tools {
        Tools { ffmpeg: "ffmpeg".into(), ffprobe: "ffprobe".into() }
    }
}

/// What the instance accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_duration_secs: u64,
    /// The largest picture, either way round (a portrait video is checked against the
    /// limit turned a quarter).
    pub max_width: u32,
    pub max_height: u32,
}

impl Default for Limits {
    /// Six hours, 4K.
    fn default() -> Limits {
        Limits { max_duration_secs: 6 * 3600, max_width: 3840, max_height: 2160 }
    }
}

/// How to process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessOptions {
    pub tools: Tools,
    pub limits: Limits,
    /// x264 preset, one of [`command::PRESETS`].
    pub preset: String,
    /// Threads per encoder (and for decoding); 0 lets ffmpeg choose.
    pub threads: u32,
    /// Niceness ffmpeg runs at (`nice -n`); 0 runs it directly.
    pub nice: i32,
    /// ffmpeg is killed after this long without progress.
    pub stall_timeout: Duration,
    /// ffmpeg is killed after this long in all.
    pub total_timeout: Duration,
    /// HLS segment length, seconds.
    pub segment_secs: u32,
}

impl Default for ProcessOptions {
    fn default() -> ProcessOptions {
        ProcessOptions {
            tools: Tools::default(),
            limits: Limits::default(),
            preset: "veryfast".into(),
            threads: 0,
            nice: 10,
            stall_timeout: Duration::from_secs(120),
            total_timeout: Duration::from_secs(12 * 3600),
            segment_secs: 4,
        }
    }
}

impl ProcessOptions {
    fn check(&self) -> Result<(), ProcessError> {
        let bad = |m: String| Err(ProcessError::InvalidOptions(m));
        if !command::PRESETS.contains(&self.preset.as_str()) {
            return bad(format!("unknown x264 preset {:?}; use one of {}", self.preset, command::PRESETS.join(", ")));
        }
        if !(1..=30).contains(&self.segment_secs) {
            return bad(format!("segment length {} s is not between 1 and 30", self.segment_secs));
        }
        if !(-20..=19).contains(&self.nice) {
            return bad(format!("niceness {} is not between -20 and 19", self.nice));
        }
        if self.stall_timeout.is_zero() || self.total_timeout.is_zero() {
            return bad("timeouts must be longer than zero".into());
        }
        Ok(())
    }
}

/// What happened so far, for the caller to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Share of the video processed; increases, and reaches 100 once everything is stored.
    Progress { percent: u8 },
    /// The master playlist and a first segment of every rendition are stored: the video can be
    /// watched (it keeps growing until processing ends).
    Playable,
}

/// The result of a successful run.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    pub duration_secs: f64,
    /// The source's displayed size (after rotation); 0×0 for audio-only.
    pub width: u32,
    pub height: u32,
    /// Highest first.
    pub renditions: Vec<Rendition>,
    pub has_poster: bool,
    pub has_storyboard: bool,
}

/// Turns `input` into HLS, a poster and a storyboard under the keys of `output` in `storage`
/// (a video id alone: its first version).
///
/// `work_dir` belongs to this call: it is wiped at the start and removed at the end. On any
/// error, that version's HLS output, poster and storyboard are removed from storage (the
/// original and other versions are never touched), so a rejected or failed run leaves nothing
/// half-made.
pub async fn process(
    input: &Path,
    work_dir: &Path,
    storage: &Storage,
    output: impl Into<VideoOutput>,
    opts: &ProcessOptions,
    on_event: impl FnMut(Event) + Send,
) -> Result<Processed, ProcessError> {
    let output = output.into();
    let video_id = output.video_id;
    opts.check()?;
    let started = std::time::Instant::now();
    let result = async {
        let probe = probe::probe(&opts.tools, input).await?;
        probe.validate(&opts.limits)?;
        transcode(&probe, input, work_dir, storage, output, opts, on_event).await
    }
    .await;
    if let Err(e) = tokio::fs::remove_dir_all(work_dir).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(video.id = %video_id, error = %e, "cannot remove the work dir");
    }
    match &result {
        Ok(done) => tracing::info!(
            video.id = %video_id,
            duration_ms = started.elapsed().as_millis() as u64,
            renditions = done.renditions.len(),
            "video processed"
        ),
        Err(e) => {
            tracing::info!(video.id = %video_id, error = %e, "video not processed");
            if let Err(cleanup) = remove_outputs(storage, output).await {
                tracing::warn!(video.id = %video_id, error = %cleanup, "cannot remove a failed video's output");
            }
        }
    }
    result
}

async fn transcode(
    probe: &Probe,
    input: &Path,
    work_dir: &Path,
    storage: &Storage,
    output: VideoOutput,
    opts: &ProcessOptions,
    on_event: impl FnMut(Event) + Send,
) -> Result<Processed, ProcessError> {
    let video_id = output.video_id;
    let ladder = ladder::plan(probe);
    match tokio::fs::remove_dir_all(work_dir).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(ProcessError::io("wiping the work dir")(e)),
        _ => {}
    }
    for step in &ladder {
        tokio::fs::create_dir_all(command::rendition_dir(work_dir, step))
            .await
            .map_err(ProcessError::io("creating the work dir"))?;
    }
    let duration = probe.media_duration();
    let extras = probe.video.as_ref().map(|v| Extras {
        poster_time: thumbs::poster_time(duration),
        poster_size: thumbs::poster_size(v.width, v.height),
        storyboard: Storyboard::plan(v.width, v.height, duration),
    });
    let job = Job {
        input,
        work_dir,
        probe,
        ladder: &ladder,
        segment_secs: opts.segment_secs,
        preset: &opts.preset,
        threads: opts.threads,
        extras: extras.clone(),
    };
    let cmd = command::ffmpeg(&opts.tools, opts.nice, &job);
    tracing::debug!(video.id = %video_id, command = %cmd.shell_words(), "running ffmpeg");

    let events = std::sync::Mutex::new(on_event);
    let emit = |e: Event| {
        if let Ok(mut f) = events.lock() {
            f(e)
        }
    };
    let frame_rate = command::output_frame_rate(probe);
    let mut publisher = Publisher::new(storage, output, work_dir, &ladder, opts.segment_secs, frame_rate);
    let (done_tx, mut done_rx) = tokio::sync::watch::channel(false);
    let watch = run::Watch { stall: opts.stall_timeout, total: opts.total_timeout };
    let ffmpeg = async {
        let outcome = run::run(&cmd, duration, watch, |percent| emit(Event::Progress { percent })).await;
        let _ = done_tx.send(true);
        outcome
    };
    let follow = async {
        loop {
            let finished = *done_rx.borrow();
            if publisher.step().await? {
                emit(Event::Playable);
            }
            if finished {
                return Ok::<_, ProcessError>(());
            }
            tokio::select! {
                () = tokio::time::sleep(PUBLISH_INTERVAL) => {}
                _ = done_rx.changed() => {}
            }
        }
    };
    tokio::try_join!(ffmpeg, follow)?;

    // A file cut short can decode "successfully" to its end; refuse it rather than publish a
    // shorter video than the owner uploaded.
    let stored = publisher.stored_duration();
    if stored < duration * 0.9 - opts.segment_secs as f64 {
        return Err(ProcessError::Rejected(format!(
            "This file seems damaged or incomplete: only {stored:.0} of its {duration:.0} seconds could be read. \
             Please upload the complete file again."
        )));
    }
    let (renditions, first_master) = publisher.finish().await?;
    if first_master {
        emit(Event::Playable);
    }
    let mut keys = publisher.keys();
    let mut store_file = async |file: &str, key: StorageKey| -> Result<bool, ProcessError> {
        let path = work_dir.join(file);
        match tokio::fs::File::open(&path).await {
            Ok(f) if f.metadata().await.is_ok_and(|m| m.len() > 0) => {
                storage.put_stream(&key, f).await?;
                keys.insert(key);
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ProcessError::io(format!("reading {file}"))(e)),
        }
    };
    let has_poster = store_file(command::POSTER, output.poster()).await?;
    let has_storyboard = store_file(command::STORYBOARD, output.storyboard()).await?;
    if has_storyboard && let Some(x) = &extras {
        let vtt = output.storyboard_vtt();
        storage.put_bytes(&vtt, Bytes::from(x.storyboard.vtt(command::STORYBOARD))).await?;
        keys.insert(vtt);
    }
    remove_leftovers(storage, output, &keys).await?;
    emit(Event::Progress { percent: 100 });
    let (width, height) = probe.video.as_ref().map_or((0, 0), |v| (v.width, v.height));
    Ok(Processed { duration_secs: duration, width, height, renditions, has_poster, has_storyboard })
}

/// The keys outside the HLS prefix that processing writes.
fn extra_keys(output: VideoOutput) -> [StorageKey; 3] {
    [output.poster(), output.storyboard(), output.storyboard_vtt()]
}

/// Deletes what an earlier run stored and this one did not.
async fn remove_leftovers(
    storage: &Storage,
    output: VideoOutput,
    keep: &std::collections::HashSet<StorageKey>,
) -> Result<(), ProcessError> {
    let video_id = output.video_id;
    let kept: std::collections::HashSet<&str> = keep.iter().map(|k| k.as_str()).collect();
    for object in storage.list(&output.hls()).await? {
        if kept.contains(object.key.as_str()) {
            continue;
        }
        match publish::hls_key(output, &object.key) {
            Some(key) => storage.delete(&key).await?,
            None => {
                tracing::warn!(video.id = %video_id, storage.key = %object.key, "unknown object left in the HLS output")
            }
        }
    }
    for key in extra_keys(output) {
        if !keep.contains(&key) {
            storage.delete(&key).await?;
        }
    }
    Ok(())
}

/// Deletes everything processing may have stored for one version of a video (a re-transcode's
/// output that lost, or a version replaced by a newer one); the original and other versions
/// stay.
pub async fn remove_outputs(storage: &Storage, output: VideoOutput) -> Result<(), ProcessError> {
    storage.delete_prefix(&output.hls()).await?;
    for key in extra_keys(output) {
        storage.delete(&key).await?;
    }
    Ok(())
}
