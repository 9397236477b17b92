//! Publishing while ffmpeg works: copies finished segments from the work dir to storage and
//! republishes each rendition's playlist after them, so a viewer can start within seconds.
//!
//! Order is the guarantee: a segment (and before the first, the init segment) is stored
//! before any playlist names it; a rendition's playlist is stored before the master names it;
//! the master is stored once every rendition has a segment. ffmpeg's own playlist is only
//! read (it is replaced atomically and lists finished segments only); the playlists we store
//! are written by [`crate::playlist`] from the segments already stored. Keys are the same on
//! every run for the same video and version ([`VideoOutput`]), so a re-run overwrites instead of
//! adding; a re-transcode writes a version of its own beside the one being served.

use crate::command::{INIT, PLAYLIST, rendition_dir};
use crate::error::ProcessError;
use crate::ladder::{Label, Step};
use crate::playlist::{self, AAC_LC, Entry, Kind, Variant};
use bytes::Bytes;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use turtlemen_storage::{Segment, Storage, StorageKey, VideoOutput};

const INIT_SEGMENT: Segment = Segment::fixed("init.mp4");
const PLAYLIST_SEGMENT: Segment = Segment::fixed("playlist.m3u8");
const MASTER_SEGMENT: Segment = Segment::fixed("master.m3u8");

/// A finished rendition, as published.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    /// `720p`, or `audio` for an audio-only video; also its folder under the HLS prefix.
    pub name: String,
    /// Picture size, `None` for audio-only.
    pub size: Option<(u32, u32)>,
    /// Peak segment bit rate, bit/s (the master playlist's `BANDWIDTH`).
    pub bandwidth: u64,
    /// Mean bit rate, bit/s.
    pub average_bandwidth: u64,
    /// RFC 6381 codecs.
    pub codecs: String,
    pub segments: u32,
    pub duration_secs: f64,
}

struct Track {
    step: Step,
    dir: PathBuf,
    key: StorageKey,
    init: Option<Bytes>,
    codecs: Option<String>,
    stored: Vec<(Entry, u64)>,
    published: usize,
}

/// Follows one run's work dir and mirrors it to storage.
pub struct Publisher<'a> {
    storage: &'a Storage,
    output: VideoOutput,
    segment_secs: u32,
    frame_rate: Option<f64>,
    tracks: Vec<Track>,
    master_published: bool,
}

impl<'a> Publisher<'a> {
    pub fn new(
        storage: &'a Storage,
        output: VideoOutput,
        work_dir: &Path,
        ladder: &[Step],
        segment_secs: u32,
        frame_rate: Option<f64>,
    ) -> Publisher<'a> {
        let tracks = ladder
            .iter()
            .map(|step| Track {
                step: step.clone(),
                dir: rendition_dir(work_dir, step),
                key: step.label.key(output),
                init: None,
                codecs: None,
                stored: Vec::new(),
                published: 0,
            })
            .collect();
        Publisher { storage, output, segment_secs, frame_rate, tracks, master_published: false }
    }

    /// Stores the segments ffmpeg finished since the last call and the playlists naming them;
    /// true when this call published the master playlist (the video became playable).
    pub async fn step(&mut self) -> Result<bool, ProcessError> {
        for track in &mut self.tracks {
            let text = match tokio::fs::read_to_string(track.dir.join(PLAYLIST)).await {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ProcessError::io("reading ffmpeg's playlist")(e)),
            };
            let entries = playlist::parse_media(&text).map_err(|message| ProcessError::Failed {
                message: format!("ffmpeg's playlist for {}: {message}", track.step.label.name()),
                stderr_tail: String::new(),
            })?;
            for entry in entries.iter().skip(track.stored.len()) {
                if track.init.is_none() {
                    store_init(self.storage, track).await?;
                }
                let segment = entry.segment();
                let file = tokio::fs::File::open(track.dir.join(segment.as_str()))
                    .await
                    .map_err(ProcessError::io(format!("opening {}", segment.as_str())))?;
                let bytes = self.storage.put_stream(&track.key.join(segment), file).await?;
                track.stored.push((*entry, bytes));
            }
            if track.stored.len() > track.published {
                publish_playlist(self.storage, track, self.segment_secs, Kind::Event).await?;
            }
        }
        if !self.master_published && self.tracks.iter().all(|t| !t.stored.is_empty()) {
            self.publish_master(false).await?;
            self.master_published = true;
            return Ok(true);
        }
        Ok(false)
    }

    /// Seconds of media stored for the first rendition.
    pub fn stored_duration(&self) -> f64 {
        self.tracks.first().map_or(0.0, |t| t.stored.iter().map(|(e, _)| e.duration).sum())
    }

    /// After ffmpeg succeeded and a last [`Publisher::step`]: the init segments again (should
    /// ffmpeg have rewritten one), every playlist as VOD, and the master with measured bit
    /// rates. True in `.1` if this published the master for the first time.
    pub async fn finish(&mut self) -> Result<(Vec<Rendition>, bool), ProcessError> {
        let first_master = !self.master_published;
        for track in &mut self.tracks {
            if track.stored.is_empty() {
                return Err(ProcessError::Failed {
                    message: format!("ffmpeg finished without a segment for {}", track.step.label.name()),
                    stderr_tail: String::new(),
                });
            }
            store_init(self.storage, track).await?;
            publish_playlist(self.storage, track, self.segment_secs, Kind::Vod).await?;
        }
        self.publish_master(true).await?;
        self.master_published = true;
        let renditions = self
            .tracks
            .iter()
            .map(|t| {
                let (bandwidth, average_bandwidth) = measured(t, self.segment_secs);
                Rendition {
                    name: t.step.label.name(),
                    size: t.step.size,
                    bandwidth,
                    average_bandwidth,
                    codecs: t.codecs.clone().unwrap_or_default(),
                    segments: t.stored.len() as u32,
                    duration_secs: t.stored.iter().map(|(e, _)| e.duration).sum(),
                }
            })
            .collect();
        Ok((renditions, first_master))
    }

    /// Every key this run stored.
    pub fn keys(&self) -> HashSet<StorageKey> {
        let mut keys = HashSet::from([self.output.hls().join(MASTER_SEGMENT)]);
        for t in &self.tracks {
            keys.insert(t.key.join(INIT_SEGMENT));
            keys.insert(t.key.join(PLAYLIST_SEGMENT));
            keys.extend(t.stored.iter().map(|(e, _)| t.key.join(e.segment())));
        }
        keys
    }

    async fn publish_master(&self, measured_rates: bool) -> Result<(), ProcessError> {
        let variants: Vec<Variant> = self
            .tracks
            .iter()
            .map(|t| {
                let (bandwidth, average) = if measured_rates {
                    let (peak, avg) = measured(t, self.segment_secs);
                    (peak, Some(avg))
                } else {
                    (t.step.nominal_bandwidth(), None)
                };
                Variant {
                    uri: format!("{}/{PLAYLIST}", t.step.label.name()),
                    bandwidth,
                    average_bandwidth: average,
                    codecs: t.codecs.clone().unwrap_or_default(),
                    resolution: t.step.size,
                    frame_rate: if t.step.size.is_some() { self.frame_rate } else { None },
                }
            })
            .collect();
        let key = self.output.hls().join(MASTER_SEGMENT);
        self.storage.put_bytes(&key, Bytes::from(playlist::render_master(&variants))).await?;
        Ok(())
    }
}

/// Rebuilds the key of an object listed under the HLS prefix of `output` from the ids and
/// numbers in its name (keys are never made from runtime text); `None` for a name we never
/// write.
pub fn hls_key(output: VideoOutput, listed: &str) -> Option<StorageKey> {
    let hls = output.hls();
    let rest = listed.strip_prefix(hls.as_str())?.strip_prefix('/')?;
    if rest == MASTER_SEGMENT.as_str() {
        return Some(hls.join(MASTER_SEGMENT));
    }
    let (folder, file) = rest.split_once('/')?;
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse::<u32>().ok()).flatten();
    let label = match folder {
        "audio" => Label::Audio,
        _ => Label::Height(digits(folder.strip_suffix('p')?)?),
    };
    let rendition = label.key(output);
    let key = match file {
        "init.mp4" => rendition.join(INIT_SEGMENT),
        "playlist.m3u8" => rendition.join(PLAYLIST_SEGMENT),
        _ => {
            let n = digits(file.strip_prefix("seg-")?.strip_suffix(".m4s")?)?;
            rendition.join(Segment::numbered("seg", n, "m4s"))
        }
    };
    (key.as_str() == listed).then_some(key)
}

/// Stores the rendition's init segment if it is new or changed, and learns its codecs.
async fn store_init(storage: &Storage, track: &mut Track) -> Result<(), ProcessError> {
    let bytes = Bytes::from(
        tokio::fs::read(track.dir.join(INIT)).await.map_err(ProcessError::io("reading ffmpeg's init segment"))?,
    );
    if track.init.as_ref() == Some(&bytes) {
        return Ok(());
    }
    let audio = track.step.audio_kbps.map(|_| AAC_LC);
    let codecs = match track.step.label {
        Label::Audio => AAC_LC.to_string(),
        Label::Height(_) => {
            let video = playlist::avc1_codec(&bytes).ok_or_else(|| ProcessError::Failed {
                message: "ffmpeg's init segment describes no H.264 stream".into(),
                stderr_tail: String::new(),
            })?;
            audio.map_or(video.clone(), |a| format!("{video},{a}"))
        }
    };
    storage.put_bytes(&track.key.join(INIT_SEGMENT), bytes.clone()).await?;
    track.init = Some(bytes);
    track.codecs = Some(codecs);
    Ok(())
}

async fn publish_playlist(
    storage: &Storage,
    track: &mut Track,
    segment_secs: u32,
    kind: Kind,
) -> Result<(), ProcessError> {
    let entries: Vec<Entry> = track.stored.iter().map(|(e, _)| *e).collect();
    let text = playlist::render_media(&entries, playlist::target_duration(&entries, segment_secs), INIT, kind);
    storage.put_bytes(&track.key.join(PLAYLIST_SEGMENT), Bytes::from(text)).await?;
    track.published = entries.len();
    Ok(())
}

/// (peak, mean) bit rate of the stored segments, bit/s. A last segment shorter than half the
/// segment length is left out of the peak: its keyframe would make it look expensive.
fn measured(track: &Track, segment_secs: u32) -> (u64, u64) {
    let rate = |bytes: u64, secs: f64| if secs > 0.0 { (bytes as f64 * 8.0 / secs).ceil() as u64 } else { 0 };
    let total_bytes: u64 = track.stored.iter().map(|(_, b)| b).sum();
    let total_secs: f64 = track.stored.iter().map(|(e, _)| e.duration).sum();
    let n = track.stored.len();
    let peak = track
        .stored
        .iter()
        .enumerate()
        .filter(|(i, (e, _))| n == 1 || i + 1 < n || e.duration >= segment_secs as f64 / 2.0)
        .map(|(_, (e, b))| rate(*b, e.duration))
        .max()
        .unwrap_or(0);
    (peak.max(1), rate(total_bytes, total_secs).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_hls_objects_map_back_to_keys() {
        use uuid::Uuid;
        let id = Uuid::now_v7();
        let first = VideoOutput::first(id);
        let hls = StorageKey::video_hls(id);
        for key in [
            hls.join(MASTER_SEGMENT),
            StorageKey::video_rendition(id, 720).join(Segment::numbered("seg", 12, "m4s")),
            StorageKey::video_rendition(id, 80).join(INIT_SEGMENT),
            StorageKey::video_audio_rendition(id).join(PLAYLIST_SEGMENT),
        ] {
            assert_eq!(hls_key(first, key.as_str()), Some(key));
        }
        for odd in ["x", "720p/seg-1.m4s", "720p/other.bin", "p/init.mp4", "720p/seg-00001.m4s/x", "0720p/init.mp4"] {
            assert_eq!(hls_key(first, &format!("{hls}/{odd}")), None, "{odd}");
        }
        assert_eq!(hls_key(first, &format!("{}/master.m3u8", StorageKey::video_hls(Uuid::now_v7()))), None);
        // A later version's objects map back under its own prefix only.
        let second = VideoOutput { video_id: id, version: 1 };
        let seg = second.rendition(720).join(Segment::numbered("seg", 3, "m4s"));
        assert_eq!(hls_key(second, seg.as_str()), Some(seg.clone()));
        assert_eq!(hls_key(first, seg.as_str()), None);
    }
}
