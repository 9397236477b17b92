//! The transcoded ladder: which rungs a live gets from its source (rungs above the source's
//! height are left out), the ffmpeg arguments that decode the source once and encode every rung
//! onto a pipe of its own, and the multivariant playlist over the rungs' playlists.
//!
//! Every rung is its own [`LiveStream`] packaged by the same code as a passthrough stream; the
//! first (highest) rung's stream is the live's recorded one ([`crate::Live::stream`]). Keyframes
//! are forced at the same times in every rung (each [`crate::stream::Packaging::segment_target`]),
//! so the rungs cut their segments at the same times and number them alike, which lets a player
//! switch between them at any segment.

use crate::fmp4::InitFacts;
use crate::stream::{LiveStream, Packaging};
use std::fmt::Write;
use std::sync::{Arc, OnceLock};

/// One rung: a picture height and the video bit rate it is encoded at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    pub height: u32,
    pub video_kbps: u32,
}

/// Room in `BANDWIDTH` for the audio, which is copied at whatever rate the encoder sends it.
pub const AUDIO_ALLOWANCE_KBPS: u32 = 192;

/// The rungs of `ladder` (highest first) a source `source_height` pixels high gets: those not
/// above it. A source lower than every rung gets one rung at its own height, at the lowest
/// rung's bit rate.
pub fn pick(ladder: &[Rung], source_height: u32) -> Vec<Rung> {
    let kept: Vec<Rung> = ladder.iter().copied().filter(|r| r.height <= source_height).collect();
    match (kept.is_empty(), ladder.last()) {
        (true, Some(lowest)) => vec![Rung { height: (source_height & !1).max(2), video_kbps: lowest.video_kbps }],
        _ => kept,
    }
}

/// A rung's name in media URLs: `720p`.
pub fn name(height: u32) -> String {
    format!("{height}p")
}

/// The height a rung's name (`720p`) stands for.
pub fn parse_name(text: &str) -> Option<u32> {
    let digits = text.strip_suffix('p')?;
    (!digits.is_empty() && digits.len() <= 4 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// One rung of a live: its stream, and what its init segment declares once ffmpeg wrote it.
pub struct Rendition {
    pub rung: Rung,
    pub stream: Arc<LiveStream>,
    facts: OnceLock<InitFacts>,
}

impl Rendition {
    /// The codecs and picture size of its first init segment, once written.
    pub fn facts(&self) -> Option<&InitFacts> {
        self.facts.get()
    }

    /// `BANDWIDTH`, bits per second: the video's cap and room for the audio.
    pub fn bandwidth(&self) -> u64 {
        u64::from(self.rung.video_kbps + AUDIO_ALLOWANCE_KBPS) * 1000
    }
}

/// The rungs of one live, decided from its first connection's picture and kept across
/// reconnects (a later connection's picture is scaled to the same heights).
pub struct Ladder {
    pub renditions: Vec<Rendition>,
}

impl Ladder {
    /// `rungs`, highest first; the first rung's stream is `top` (the recorded one).
    pub fn new(rungs: &[Rung], top: Arc<LiveStream>, packaging: Packaging) -> Ladder {
        let renditions = rungs
            .iter()
            .enumerate()
            .map(|(i, rung)| Rendition {
                rung: *rung,
                stream: if i == 0 { top.clone() } else { Arc::new(LiveStream::new(packaging)) },
                facts: OnceLock::new(),
            })
            .collect();
        Ladder { renditions }
    }

    /// The rendition `height` pixels high.
    pub fn rendition(&self, height: u32) -> Option<&Rendition> {
        self.renditions.iter().find(|r| r.rung.height == height)
    }

    /// Rendition `index`'s init segment was read; true once every rendition's was.
    pub(crate) fn learn(&self, index: usize, facts: InitFacts) -> bool {
        if let Some(r) = self.renditions.get(index) {
            let _ = r.facts.set(facts);
        }
        self.renditions.iter().all(|r| r.facts.get().is_some())
    }

    /// The multivariant playlist: one `EXT-X-STREAM-INF` per rung, highest first, each naming
    /// `{rung}/{playlist}` with `query` (the player's nonce) carried over. `None` until every
    /// rung's init segment was read (its codecs and size are what the playlist declares).
    pub fn multivariant(&self, playlist: &str, query: Option<&str>) -> Option<String> {
        let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:9\n");
        for r in &self.renditions {
            let facts = r.facts()?;
            let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", r.bandwidth());
            if let Some((w, h)) = facts.size {
                let _ = write!(out, ",RESOLUTION={w}x{h}");
            }
            if !facts.codecs.is_empty() {
                let _ = write!(out, ",CODECS=\"{}\"", facts.codecs.join(","));
            }
            let _ = writeln!(
                out,
                "\n{}/{playlist}{}",
                name(r.rung.height),
                query.map(|q| format!("?{q}")).unwrap_or_default()
            );
        }
        Some(out)
    }
}

/// ffmpeg's arguments after its input: the video decoded once, split and scaled to each rung,
/// each encoded with libx264 (`veryfast`, `zerolatency`, capped at the rung's rate, keyframes
/// forced every `keyframe_secs` and nowhere else), the AAC audio copied into every rung, and
/// rung `i` written as fMP4 fragments of `fragment_secs` to `pipe:{first_fd + i}`.
pub fn ffmpeg_outputs(rungs: &[Rung], fragment_secs: f64, keyframe_secs: f64, first_fd: i32) -> Vec<String> {
    let mut filter = match rungs.len() {
        0 | 1 => "[0:v]null[s0];".to_owned(),
        n => format!("[0:v]split={n}{};", (0..n).map(|i| format!("[s{i}]")).collect::<String>()),
    };
    for (i, r) in rungs.iter().enumerate() {
        let _ = write!(filter, "[s{i}]scale=-2:{}[v{i}];", r.height);
    }
    filter.pop();
    let micros = ((fragment_secs * 1e6) as u64).to_string();
    let mut args: Vec<String> = vec!["-filter_complex".into(), filter];
    for (i, r) in rungs.iter().enumerate() {
        let kbps = r.video_kbps;
        let fd = first_fd + i as i32;
        args.extend(
            [
                "-map",
                &format!("[v{i}]"),
                "-map",
                "0:a?",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-tune",
                "zerolatency",
                "-pix_fmt",
                "yuv420p",
                "-b:v",
                &format!("{kbps}k"),
                "-maxrate",
                &format!("{kbps}k"),
                "-bufsize",
                &format!("{kbps}k"),
                "-g",
                "100000",
                "-sc_threshold",
                "0",
                "-force_key_frames",
                &format!("expr:gte(t,n_forced*{keyframe_secs})"),
                "-fps_mode",
                "passthrough",
                "-c:a",
                "copy",
                "-f",
                "mp4",
                "-movflags",
                "cmaf+frag_keyframe+empty_moov+default_base_moof+skip_trailer",
                "-frag_duration",
                &micros,
                "-flush_packets",
                "1",
                &format!("pipe:{fd}"),
            ]
            .map(str::to_owned),
        );
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    const LADDER: [Rung; 3] = [
        Rung { height: 1080, video_kbps: 5000 },
        Rung { height: 720, video_kbps: 2500 },
        Rung { height: 360, video_kbps: 800 },
    ];

    #[test]
    fn rungs_above_the_source_are_left_out() {
        assert_eq!(pick(&LADDER, 1080), LADDER.to_vec());
        assert_eq!(pick(&LADDER, 720), LADDER[1..].to_vec());
        assert_eq!(pick(&LADDER, 480), LADDER[2..].to_vec());
        assert_eq!(pick(&LADDER, 241), vec![Rung { height: 240, video_kbps: 800 }]);
        assert!(pick(&[], 720).is_empty());
    }

    #[test]
    fn rung_names() {
        assert_eq!(name(720), "720p");
        assert_eq!(parse_name("720p"), Some(720));
        for bad in ["p", "720", "72a0p", "99999p", "-1p", "720pp"] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_multivariant_playlist_waits_for_every_init_then_lists_each_rung() {
        let packaging = Packaging::default();
        let ladder = Ladder::new(&LADDER[1..], Arc::new(LiveStream::new(packaging)), packaging);
        let facts = |w, h| InitFacts { codecs: vec!["avc1.64001f".into(), "mp4a.40.2".into()], size: Some((w, h)) };
        assert!(!ladder.learn(0, facts(1280, 720)));
        assert_eq!(ladder.multivariant("live.m3u8", None), None);
        assert!(ladder.learn(1, facts(640, 360)));
        let expected = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-STREAM-INF:BANDWIDTH=2692000,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\"
720p/live.m3u8?v=abc
#EXT-X-STREAM-INF:BANDWIDTH=992000,RESOLUTION=640x360,CODECS=\"avc1.64001f,mp4a.40.2\"
360p/live.m3u8?v=abc
";
        assert_eq!(ladder.multivariant("live.m3u8", Some("v=abc")).unwrap(), expected);
        assert!(ladder.rendition(360).is_some() && ladder.rendition(1080).is_none());
    }

    #[test]
    fn one_decode_split_to_every_rung_each_on_its_pipe() {
        let args = ffmpeg_outputs(&LADDER[1..], 0.3, 2.0, 3);
        let filter = &args[1];
        assert_eq!(filter, "[0:v]split=2[s0][s1];[s0]scale=-2:720[v0];[s1]scale=-2:360[v1]");
        assert_eq!(args.iter().filter(|a| *a == "libx264").count(), 2);
        assert!(args.contains(&"pipe:3".to_owned()) && args.contains(&"pipe:4".to_owned()));
        assert!(args.contains(&"expr:gte(t,n_forced*2)".to_owned()));
        assert_eq!(ffmpeg_outputs(&LADDER[2..], 0.3, 2.0, 3)[1], "[0:v]null[s0];[s0]scale=-2:360[v0]");
    }
}
