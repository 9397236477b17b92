//! HLS playlist text: reading the media playlists ffmpeg writes, and writing the ones we
//! publish (media playlists naming only segments already stored, and the master playlist).
//!
//! Every URI we write is relative to its playlist (`seg-00001.m4s`, `720p/playlist.m3u8`), so
//! the files work under any base URL, a signed-token path segment included.

use std::fmt::Write;
use turtlemen_storage::Segment;

/// One finished segment as ffmpeg listed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    /// From the file name `seg-{number:05}.m4s`.
    pub number: u32,
    pub duration: f64,
}

impl Entry {
    /// The segment's file name, which is also its last key segment and its URI.
    pub fn segment(&self) -> Segment {
        Segment::numbered("seg", self.number, "m4s")
    }
}

/// Whether a media playlist may still grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Processing: segments are appended, none removed.
    Event,
    /// Done: `#EXT-X-ENDLIST`.
    Vod,
}

/// A line of a media playlist that we did not expect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaylistError {
    #[error("bad segment duration {0:?}")]
    Duration(String),
    #[error("unexpected segment name {0:?}")]
    SegmentName(String),
    #[error("segment {0:?} has no duration")]
    NoDuration(String),
}

/// The segments listed by a media playlist ffmpeg wrote; an error names a line we do not
/// expect (we chose the segment names, so anything else is a bug or tampering).
pub fn parse_media(text: &str) -> Result<Vec<Entry>, PlaylistError> {
    let mut entries = Vec::new();
    let mut duration = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let d = rest.split(',').next().unwrap_or("");
            duration = Some(d.parse::<f64>().map_err(|_| PlaylistError::Duration(line.to_string()))?);
        } else if !line.starts_with('#') {
            let number = line
                .strip_prefix("seg-")
                .and_then(|l| l.strip_suffix(".m4s"))
                .filter(|n| n.len() >= 5 && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(|| PlaylistError::SegmentName(line.to_string()))?;
            let duration = duration.take().ok_or_else(|| PlaylistError::NoDuration(line.to_string()))?;
            entries.push(Entry { number, duration });
        }
    }
    Ok(entries)
}

/// The target duration: the segment length, or the longest segment rounded, if longer.
pub fn target_duration(entries: &[Entry], segment_secs: u32) -> u32 {
    entries.iter().map(|e| e.duration.round() as u32).fold(segment_secs, u32::max)
}

/// A media playlist of `entries` after the `init` map.
pub fn render_media(entries: &[Entry], target: u32, init: &str, kind: Kind) -> String {
    let kind_name = match kind {
        Kind::Event => "EVENT",
        Kind::Vod => "VOD",
    };
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:{kind_name}\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"{init}\"\n"
    );
    for e in entries {
        let _ = write!(out, "#EXTINF:{:.6},\n{}\n", e.duration, e.segment().as_str());
    }
    if kind == Kind::Vod {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// One line of the master playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Relative to the master playlist, e.g. `720p/playlist.m3u8`.
    pub uri: String,
    /// Peak bit rate, bit/s.
    pub bandwidth: u64,
    pub average_bandwidth: Option<u64>,
    /// RFC 6381 codecs, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
}

/// The master playlist listing `variants` in the given order.
pub fn render_master(variants: &[Variant]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for v in variants {
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", v.bandwidth);
        if let Some(avg) = v.average_bandwidth {
            let _ = write!(out, ",AVERAGE-BANDWIDTH={avg}");
        }
        let _ = write!(out, ",CODECS=\"{}\"", v.codecs);
        if let Some((w, h)) = v.resolution {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        if let Some(rate) = v.frame_rate {
            let _ = write!(out, ",FRAME-RATE={rate:.3}");
        }
        let _ = write!(out, "\n{}\n", v.uri);
    }
    out
}

/// The RFC 6381 name of the H.264 stream an fMP4 init segment describes (`avc1.PPCCLL` from
/// its `avcC` box: profile, constraint flags, level).
pub fn avc1_codec(init: &[u8]) -> Option<String> {
    let at = init.windows(4).position(|w| w == b"avcC")?;
    let config = init.get(at + 4..at + 8)?;
    (config[0] == 1).then(|| format!("avc1.{:02x}{:02x}{:02x}", config[1], config[2], config[3]))
}

/// AAC-LC, which ffmpeg's native AAC encoder makes.
pub const AAC_LC: &str = "mp4a.40.2";

#[cfg(test)]
mod tests {
    use super::*;

    const FFMPEG_EVENT: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1\n\
        #EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n\
        #EXTINF:2.000000,\nseg-00001.m4s\n#EXTINF:1.966667,\nseg-00002.m4s\n";

    #[test]
    fn ffmpeg_playlists_are_read_and_ours_written_relative() {
        let entries = parse_media(FFMPEG_EVENT).unwrap();
        assert_eq!(entries, vec![Entry { number: 1, duration: 2.0 }, Entry { number: 2, duration: 1.966667 }]);
        let event = render_media(&entries, target_duration(&entries, 2), "init.mp4", Kind::Event);
        assert!(event.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
        assert!(event.ends_with("#EXTINF:1.966667,\nseg-00002.m4s\n"));
        assert!(!event.contains("ENDLIST"));
        let vod = render_media(&entries, 2, "init.mp4", Kind::Vod);
        assert!(vod.contains("#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"));
        assert!(vod.contains("#EXT-X-MAP:URI=\"init.mp4\"\n"));
        assert!(vod.ends_with("seg-00002.m4s\n#EXT-X-ENDLIST\n"));
        assert_eq!(target_duration(&[Entry { number: 1, duration: 6.6 }], 4), 7);
    }

    #[test]
    fn unexpected_playlist_lines_are_refused() {
        for bad in [
            "#EXTINF:2.0,\n../../etc/passwd\n",
            "#EXTINF:2.0,\nhttp://example.com/seg-00001.m4s\n",
            "#EXTINF:2.0,\nseg-1.m4s\n",
            "seg-00001.m4s\n",
            "#EXTINF:abc,\nseg-00001.m4s\n",
        ] {
            assert!(parse_media(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_master_playlist_has_codecs_resolution_and_bandwidth() {
        let master = render_master(&[
            Variant {
                uri: "720p/playlist.m3u8".into(),
                bandwidth: 2_900_000,
                average_bandwidth: Some(1_500_000),
                codecs: "avc1.64001f,mp4a.40.2".into(),
                resolution: Some((1280, 720)),
                frame_rate: Some(30.0),
            },
            Variant {
                uri: "audio/playlist.m3u8".into(),
                bandwidth: 140_800,
                average_bandwidth: None,
                codecs: AAC_LC.into(),
                resolution: None,
                frame_rate: None,
            },
        ]);
        assert_eq!(
            master,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=2900000,AVERAGE-BANDWIDTH=1500000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000\n\
             720p/playlist.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=140800,CODECS=\"mp4a.40.2\"\naudio/playlist.m3u8\n"
        );
    }

    #[test]
    fn the_h264_codec_comes_from_the_avcc_box() {
        let init = [&b"\0\0\0\x35avcC"[..], &[1, 0x64, 0x00, 0x1f, 0xff][..]].concat();
        assert_eq!(avc1_codec(&init).as_deref(), Some("avc1.64001f"));
        assert_eq!(avc1_codec(b"no such box"), None);
    }
}
