//! What an uploaded file holds, asked of ffprobe, and whether we accept it.
//!
//! [`probe`] runs ffprobe with a fixed list of container formats (so a playlist or a
//! concatenation script disguised as a video cannot make ffmpeg read other files) and parses
//! its JSON into a [`Probe`]; [`Probe::validate`] applies the instance's [`Limits`]. Every
//! refusal is a [`ProcessError::Rejected`] worded for the video's owner.

use crate::error::ProcessError;
use crate::{Limits, Tools};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// The container formats (ffmpeg demuxer names) we open; anything else is refused before
/// ffmpeg looks further. Given to ffprobe and ffmpeg as `-format_whitelist`.
pub const ACCEPTED_FORMATS: &str =
    "mov,matroska,webm,avi,flv,mpegts,mpeg,ogg,asf,mxf,dv,gif,mp3,wav,flac,aac,aiff,amr,caf";

/// The smallest side we accept, in pixels.
pub const MIN_SIDE: u32 = 16;

/// How long ffprobe may take before it is killed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

const UNREADABLE: &str = "This file is not a video or audio file we can read. Please upload a video file \
                          such as MP4, MOV, MKV or WebM.";

/// What the file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// ffmpeg's name for the container, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub format: String,
    /// The container's length (the longest stream), in seconds; 0 if unknown.
    pub duration_secs: f64,
    /// The video stream we use (the first that is not cover art), if any.
    pub video: Option<VideoStream>,
    /// The audio stream we use (the first), if any.
    pub audio: Option<AudioStream>,
}

/// A video stream, with its size as displayed (after rotation and pixel aspect ratio).
#[derive(Debug, Clone, PartialEq)]
pub struct VideoStream {
    pub index: u32,
    pub codec: String,
    /// Displayed width: the coded width times the sample aspect ratio, swapped with the height
    /// for a quarter turn.
    pub width: u32,
    pub height: u32,
    /// Clockwise rotation the player applies, in degrees (0, 90, 180 or 270).
    pub rotation: u32,
    pub frame_rate: Option<f64>,
    pub duration_secs: Option<f64>,
}

/// An audio stream.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioStream {
    pub index: u32,
    pub codec: String,
    pub channels: u32,
    pub sample_rate: u32,
    pub duration_secs: Option<f64>,
}

/// Asks ffprobe what `input` holds. A file ffprobe cannot read is [`ProcessError::Rejected`];
/// an ffprobe that cannot be started is [`ProcessError::Failed`].
pub async fn probe(tools: &Tools, input: &Path) -> Result<Probe, ProcessError> {
    let mut url = std::ffi::OsString::from("file:");
    url.push(input);
    let child = tokio::process::Command::new(&tools.ffprobe)
        .args(["-v", "error", "-protocol_whitelist", "file", "-format_whitelist", ACCEPTED_FORMATS])
        .args(["-print_format", "json", "-show_format", "-show_streams"])
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ProcessError::Failed {
            message: format!("cannot start ffprobe ({}): {e}", tools.ffprobe.display()),
            stderr_tail: String::new(),
        })?;
    let output = match tokio::time::timeout(PROBE_TIMEOUT, child.wait_with_output()).await {
        Ok(output) => output.map_err(ProcessError::io("reading ffprobe's output"))?,
        Err(_) => {
            return Err(ProcessError::Failed {
                message: format!("ffprobe took longer than {} s", PROBE_TIMEOUT.as_secs()),
                stderr_tail: String::new(),
            });
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        tracing::info!(ffprobe.status = %output.status, ffprobe.stderr = %stderr.trim(), "ffprobe cannot read the file");
        return Err(ProcessError::Rejected(UNREADABLE.into()));
    }
    Probe::from_json(&output.stdout)
}

#[derive(Deserialize)]
struct RawProbe {
    format: Option<RawFormat>,
    #[serde(default)]
    streams: Vec<RawStream>,
}

#[derive(Deserialize)]
struct RawFormat {
    format_name: Option<String>,
    duration: Option<String>,
}

#[derive(Deserialize)]
struct RawStream {
    index: u32,
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    sample_aspect_ratio: Option<String>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    duration: Option<String>,
    channels: Option<u32>,
    sample_rate: Option<String>,
    #[serde(default)]
    disposition: HashMap<String, i64>,
    #[serde(default)]
    tags: HashMap<String, String>,
    #[serde(default)]
    side_data_list: Vec<HashMap<String, serde_json::Value>>,
}

impl Probe {
    /// Parses ffprobe's `-print_format json -show_format -show_streams` output.
    pub fn from_json(json: &[u8]) -> Result<Probe, ProcessError> {
        let raw: RawProbe = serde_json::from_slice(json).map_err(|e| {
            tracing::warn!(error = %e, "ffprobe printed JSON we cannot parse");
            ProcessError::Rejected(UNREADABLE.into())
        })?;
        let format = raw.format.as_ref().and_then(|f| f.format_name.clone()).unwrap_or_default();
        let mut duration_secs = raw.format.as_ref().and_then(|f| seconds(f.duration.as_deref())).unwrap_or(0.0);
        let video = raw
            .streams
            .iter()
            .filter(|s| s.codec_type.as_deref() == Some("video"))
            .filter(|s| s.disposition.get("attached_pic").copied().unwrap_or(0) == 0)
            .find_map(video_stream);
        let audio = raw.streams.iter().find(|s| s.codec_type.as_deref() == Some("audio")).map(|s| AudioStream {
            index: s.index,
            codec: s.codec_name.clone().unwrap_or_default(),
            channels: s.channels.unwrap_or(2),
            sample_rate: s.sample_rate.as_deref().and_then(|r| r.parse().ok()).unwrap_or(48_000),
            duration_secs: seconds(s.duration.as_deref()),
        });
        if duration_secs <= 0.0 {
            let streams = [video.as_ref().and_then(|v| v.duration_secs), audio.as_ref().and_then(|a| a.duration_secs)];
            duration_secs = streams.into_iter().flatten().fold(0.0, f64::max);
        }
        Ok(Probe { format, duration_secs, video, audio })
    }

    /// The length of what we transcode: the video stream's if known (audio may run longer, but
    /// the ladder follows the picture), else the container's.
    pub fn media_duration(&self) -> f64 {
        match &self.video {
            Some(VideoStream { duration_secs: Some(d), .. }) if *d > 0.0 => *d,
            _ => self.duration_secs,
        }
    }

    /// Refuses what the instance does not take, with a reason for the video's owner.
    pub fn validate(&self, limits: &Limits) -> Result<(), ProcessError> {
        let reject = |m: String| Err(ProcessError::Rejected(m));
        if self.video.is_none() && self.audio.is_none() {
            return reject("This file has no picture or sound we can play.".into());
        }
        if !(self.duration_secs > 0.0 && self.media_duration() > 0.0) {
            return reject("This video is empty: it has no length.".into());
        }
        if self.duration_secs > limits.max_duration_secs as f64 {
            return reject(format!(
                "This video is {} long; the longest we accept is {}.",
                clock(self.duration_secs),
                clock(limits.max_duration_secs as f64)
            ));
        }
        if let Some(v) = &self.video {
            let (long, short) = (v.width.max(v.height), v.width.min(v.height));
            let (max_long, max_short) =
                (limits.max_width.max(limits.max_height), limits.max_width.min(limits.max_height));
            if long > max_long || short > max_short {
                return reject(format!(
                    "This video is {}×{} pixels; the largest we accept is {}×{}.",
                    v.width, v.height, limits.max_width, limits.max_height
                ));
            }
            if short < MIN_SIDE {
                return reject(format!(
                    "This video is only {}×{} pixels; it must be at least {MIN_SIDE} pixels on each side.",
                    v.width, v.height
                ));
            }
        }
        Ok(())
    }
}

fn video_stream(s: &RawStream) -> Option<VideoStream> {
    let (coded_w, coded_h) = (s.width?, s.height?);
    if coded_w == 0 || coded_h == 0 {
        return None;
    }
    let mut width = coded_w;
    if let Some((num, den)) = s.sample_aspect_ratio.as_deref().and_then(ratio)
        && num > 0.0
        && den > 0.0
    {
        width = ((coded_w as f64 * num / den).round() as u32).max(1);
    }
    let rotation = rotation(s);
    let (width, height) = if rotation % 180 == 90 { (coded_h, width) } else { (width, coded_h) };
    let rate = |r: Option<&str>| r.and_then(ratio).filter(|(n, d)| *n > 0.0 && *d > 0.0).map(|(n, d)| n / d);
    Some(VideoStream {
        index: s.index,
        codec: s.codec_name.clone().unwrap_or_default(),
        width,
        height,
        rotation,
        frame_rate: rate(s.avg_frame_rate.as_deref()).or_else(|| rate(s.r_frame_rate.as_deref())),
        duration_secs: seconds(s.duration.as_deref()),
    })
}

/// The display rotation in whole quarter turns, from the display matrix side data (or the
/// `rotate` tag older files carry), as 0, 90, 180 or 270.
fn rotation(s: &RawStream) -> u32 {
    let from_side_data = s.side_data_list.iter().find_map(|d| d.get("rotation").and_then(|r| r.as_f64()));
    let degrees = from_side_data.or_else(|| s.tags.get("rotate").and_then(|r| r.parse::<f64>().ok())).unwrap_or(0.0);
    let quarter = (degrees / 90.0).round() as i64;
    (quarter.rem_euclid(4) * 90) as u32
}

fn ratio(s: &str) -> Option<(f64, f64)> {
    let (n, d) = s.split_once([':', '/'])?;
    Some((n.parse().ok()?, d.parse().ok()?))
}

fn seconds(s: Option<&str>) -> Option<f64> {
    s?.parse::<f64>().ok().filter(|d| d.is_finite() && *d >= 0.0)
}

/// `1:02:03` or `2:03`.
fn clock(secs: f64) -> String {
    let s = secs.round() as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 { format!("{h}:{m:02}:{s:02}") } else { format!("{m}:{s:02}") }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn probe_json(width: u32, height: u32, extra: &str) -> Vec<u8> {
        format!(
            r#"{{"format": {{"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "10.000000"}},
                "streams": [
                  {{"index": 0, "codec_type": "video", "codec_name": "h264", "width": {width}, "height": {height},
                    "avg_frame_rate": "30/1", "duration": "10.000000", "disposition": {{"attached_pic": 0}} {extra}}},
                  {{"index": 1, "codec_type": "audio", "codec_name": "aac", "channels": 2, "sample_rate": "44100"}}
                ]}}"#
        )
        .into_bytes()
    }

    #[test]
    fn rotation_and_pixel_aspect_give_the_displayed_size() {
        let rotated =
            probe_json(1920, 1080, r#", "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]"#);
        let v = Probe::from_json(&rotated).unwrap().video.unwrap();
        assert_eq!((v.width, v.height, v.rotation), (1080, 1920, 270));
        let tagged = probe_json(1280, 720, r#", "tags": {"rotate": "90"}"#);
        let v = Probe::from_json(&tagged).unwrap().video.unwrap();
        assert_eq!((v.width, v.height, v.rotation), (720, 1280, 90));
        let anamorphic = probe_json(720, 576, r#", "sample_aspect_ratio": "64:45""#);
        let v = Probe::from_json(&anamorphic).unwrap().video.unwrap();
        assert_eq!((v.width, v.height), (1024, 576));
        let upside_down = probe_json(640, 360, r#", "side_data_list": [{"rotation": 180}]"#);
        assert_eq!(Probe::from_json(&upside_down).unwrap().video.unwrap().height, 360);
    }

    #[test]
    fn cover_art_is_not_a_video() {
        let json = br#"{"format": {"format_name": "mp3", "duration": "3.5"},
            "streams": [{"index": 0, "codec_type": "audio", "codec_name": "mp3", "channels": 2, "sample_rate": "44100"},
                        {"index": 1, "codec_type": "video", "codec_name": "mjpeg", "width": 500, "height": 500,
                         "disposition": {"attached_pic": 1}}]}"#;
        let p = Probe::from_json(json).unwrap();
        assert!(p.video.is_none());
        assert_eq!(p.audio.unwrap().index, 0);
    }

    #[test]
    fn limits_are_enforced_with_readable_reasons() {
        let limits = Limits { max_duration_secs: 5, max_width: 1920, max_height: 1080 };
        let reason = |json: &[u8], limits: &Limits| match Probe::from_json(json).unwrap().validate(limits) {
            Err(ProcessError::Rejected(r)) => r,
            other => panic!("expected a rejection, got {other:?}"),
        };
        assert_eq!(
            reason(&probe_json(640, 360, ""), &limits),
            "This video is 0:10 long; the longest we accept is 0:05."
        );
        let roomy = Limits { max_duration_secs: 60, ..limits };
        assert!(reason(&probe_json(4000, 3000, ""), &roomy).contains("4000×3000 pixels"));
        assert!(reason(&probe_json(1920, 8, ""), &roomy).contains("at least 16 pixels"));
        // Portrait within a landscape limit is fine.
        Probe::from_json(&probe_json(1080, 1920, "")).unwrap().validate(&roomy).unwrap();
        let empty = br#"{"format": {"format_name": "mov", "duration": "0.000000"}, "streams": [
            {"index": 0, "codec_type": "video", "codec_name": "h264", "width": 320, "height": 240}]}"#;
        assert_eq!(reason(empty, &roomy), "This video is empty: it has no length.");
        let nothing = br#"{"format": {"format_name": "mov", "duration": "3"}, "streams": [
            {"index": 0, "codec_type": "data", "codec_name": "bin_data"}]}"#;
        assert!(reason(nothing, &roomy).contains("no picture or sound"));
        assert!(matches!(Probe::from_json(b"not json"), Err(ProcessError::Rejected(_))));
    }
}
