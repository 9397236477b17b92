//! The ladder: which renditions a source gets, as a pure function of what [`probe`] found.
//!
//! A rendition is named by its short side (`720p` is 1280×720 landscape or 720×1280
//! portrait, as PeerTube does) and made for every step of [`STEPS`] up to the source's short
//! side: never upscaled, dimensions even (H.264 4:2:0 needs it), aspect kept. A source
//! smaller than the lowest step gets one rendition at its own (even) size; a file without
//! picture gets one AAC audio-only rendition.
//!
//! [`probe`]: crate::probe

use crate::probe::Probe;
use turtlemen_storage::{StorageKey, VideoOutput};

/// The short sides we encode.
pub const STEPS: [u32; 8] = [144, 240, 360, 480, 720, 1080, 1440, 2160];

/// Which rendition: a picture height class, or the audio of an audio-only file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Label {
    /// Named by the short side, e.g. `720p`.
    Height(u32),
    Audio,
}

impl Label {
    /// The folder name, also used in the master playlist: `720p`, `audio`.
    pub fn name(&self) -> String {
        match self {
            Label::Height(h) => format!("{h}p"),
            Label::Audio => "audio".into(),
        }
    }

    /// Where the rendition of `output` is stored.
    pub fn key(&self, output: VideoOutput) -> StorageKey {
        match self {
            Label::Height(h) => output.rendition(*h),
            Label::Audio => output.audio_rendition(),
        }
    }
}

/// One planned rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub label: Label,
    /// Picture size, `None` for audio-only.
    pub size: Option<(u32, u32)>,
    /// Peak video bit rate (x264 `maxrate`), kbit/s; 0 for audio-only.
    pub video_kbps: u32,
    /// AAC bit rate, kbit/s, `None` when the source has no sound.
    pub audio_kbps: Option<u32>,
}

impl Step {
    /// The nominal peak bit rate of the muxed stream (bit/s), for the master playlist until
    /// the segments are measured: video and audio rates plus 10 % for the container.
    pub fn nominal_bandwidth(&self) -> u64 {
        let kbps = self.video_kbps as u64 + self.audio_kbps.unwrap_or(0) as u64;
        kbps * 1000 * 11 / 10
    }
}

/// The renditions for `probe`, highest first.
pub fn plan(probe: &Probe) -> Vec<Step> {
    let has_audio = probe.audio.is_some();
    let Some(video) = &probe.video else {
        return vec![Step { label: Label::Audio, size: None, video_kbps: 0, audio_kbps: Some(128) }];
    };
    let high_rate = video.frame_rate.is_some_and(|r| r > 31.0);
    let (w, h) = (video.width, video.height);
    let short = w.min(h);
    let step = |label: u32, size: (u32, u32)| {
        let base = video_kbps(label);
        Step {
            label: Label::Height(label),
            size: Some(size),
            video_kbps: if high_rate { base * 3 / 2 } else { base },
            audio_kbps: has_audio.then(|| audio_kbps(label)),
        }
    };
    if short < STEPS[0] {
        let size = (even(w), even(h));
        return vec![step(size.0.min(size.1), size)];
    }
    STEPS
        .iter()
        .rev()
        .filter(|&&s| s <= short)
        .map(|&s| {
            let exact = s as f64 * w.max(h) as f64 / short as f64;
            let long = (((exact / 2.0).round() as u32) * 2).min(even(w.max(h)));
            let s_even = even(s);
            step(s, if w >= h { (long, s_even) } else { (s_even, long) })
        })
        .collect()
}

/// Rounds down to even, at least 2.
fn even(n: u32) -> u32 {
    (n & !1).max(2)
}

/// `(largest short side, x264 maxrate kbit/s at up to 30 frames per second, AAC kbit/s)`.
const RATES: [(u32, u32, u32); 8] = [
    (144, 200, 64),
    (240, 400, 64),
    (360, 800, 96),
    (480, 1200, 96),
    (720, 2500, 128),
    (1080, 5000, 128),
    (1440, 10_000, 128),
    (u32::MAX, 18_000, 128),
];

fn rates(short: u32) -> (u32, u32) {
    let (_, video, audio) = RATES.iter().find(|(max, _, _)| short <= *max).copied().unwrap_or(RATES[RATES.len() - 1]);
    (video, audio)
}

fn video_kbps(short: u32) -> u32 {
    rates(short).0
}

fn audio_kbps(short: u32) -> u32 {
    rates(short).1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::tests::probe_json;

    fn sizes(json: &[u8]) -> Vec<(String, (u32, u32))> {
        plan(&Probe::from_json(json).unwrap()).into_iter().map(|s| (s.label.name(), s.size.unwrap_or((0, 0)))).collect()
    }

    fn named(list: &[(&str, (u32, u32))]) -> Vec<(String, (u32, u32))> {
        list.iter().map(|(n, s)| (n.to_string(), *s)).collect()
    }

    #[test]
    fn ladders_for_common_and_awkward_sources() {
        let rotated = r#", "side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]"#;
        type Case = (&'static str, Vec<u8>, Vec<(&'static str, (u32, u32))>);
        let cases: Vec<Case> = vec![
            (
                "landscape 1080p",
                probe_json(1920, 1080, ""),
                vec![
                    ("1080p", (1920, 1080)),
                    ("720p", (1280, 720)),
                    ("480p", (854, 480)),
                    ("360p", (640, 360)),
                    ("240p", (426, 240)),
                    ("144p", (256, 144)),
                ],
            ),
            (
                "4K",
                probe_json(3840, 2160, ""),
                vec![
                    ("2160p", (3840, 2160)),
                    ("1440p", (2560, 1440)),
                    ("1080p", (1920, 1080)),
                    ("720p", (1280, 720)),
                    ("480p", (854, 480)),
                    ("360p", (640, 360)),
                    ("240p", (426, 240)),
                    ("144p", (256, 144)),
                ],
            ),
            (
                "portrait 1080x1920",
                probe_json(1080, 1920, ""),
                vec![
                    ("1080p", (1080, 1920)),
                    ("720p", (720, 1280)),
                    ("480p", (480, 854)),
                    ("360p", (360, 640)),
                    ("240p", (240, 426)),
                    ("144p", (144, 256)),
                ],
            ),
            (
                "odd 641x361",
                probe_json(641, 361, ""),
                vec![("360p", (640, 360)), ("240p", (426, 240)), ("144p", (256, 144))],
            ),
            ("tiny 100x80", probe_json(100, 80, ""), vec![("80p", (100, 80))]),
            ("tiny odd 99x79", probe_json(99, 79, ""), vec![("78p", (98, 78))]),
            (
                "rotated phone video",
                probe_json(1280, 720, rotated),
                vec![
                    ("720p", (720, 1280)),
                    ("480p", (480, 854)),
                    ("360p", (360, 640)),
                    ("240p", (240, 426)),
                    ("144p", (144, 256)),
                ],
            ),
        ];
        for (name, json, expected) in cases {
            assert_eq!(sizes(&json), named(&expected), "{name}");
        }
    }

    #[test]
    fn nothing_is_upscaled_and_every_size_is_even() {
        for (w, h) in [(1920, 1080), (641, 361), (1081, 1921), (333, 777), (144, 144), (145, 143), (7680, 4320)] {
            for step in plan(&Probe::from_json(&probe_json(w, h, "")).unwrap()) {
                let (sw, sh) = step.size.unwrap();
                assert!(sw <= w && sh <= h, "{w}x{h} → {sw}x{sh}");
                assert!(sw % 2 == 0 && sh % 2 == 0, "{w}x{h} → {sw}x{sh}");
            }
        }
    }

    #[test]
    fn audio_only_gets_one_audio_rendition_and_silent_video_no_audio() {
        let json = br#"{"format": {"format_name": "mp3", "duration": "3.5"},
            "streams": [{"index": 0, "codec_type": "audio", "codec_name": "mp3", "channels": 2, "sample_rate": "44100"}]}"#;
        let steps = plan(&Probe::from_json(json).unwrap());
        assert_eq!(steps, vec![Step { label: Label::Audio, size: None, video_kbps: 0, audio_kbps: Some(128) }]);
        assert_eq!(steps[0].label.name(), "audio");
        let silent = br#"{"format": {"format_name": "mov", "duration": "3"}, "streams": [
            {"index": 0, "codec_type": "video", "codec_name": "h264", "width": 320, "height": 240, "avg_frame_rate": "60/1"}]}"#;
        let steps = plan(&Probe::from_json(silent).unwrap());
        assert_eq!(steps.len(), 2);
        assert!(steps.iter().all(|s| s.audio_kbps.is_none()));
        assert_eq!(steps[0].video_kbps, 600, "a high frame rate gets 1.5 times the rate");
    }
}
