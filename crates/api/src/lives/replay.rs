//! A live's recording as an HLS VOD playlist, which the replay's watch page plays until the
//! replay's own transcode is ready. The replay video itself is made by the worker's
//! `live_replay` job (`turtlemen_worker::replay`), queued with the live's end.

use turtlemen_db::lives::RecordedSegment;

/// The recording as an HLS VOD playlist: each run after a discontinuity with its own init
/// segment, names relative to the live's media base (`init-{run}.mp4`, `seg-{msn}.m4s`).
pub fn vod_playlist(recording: &[RecordedSegment]) -> String {
    use std::fmt::Write;
    let longest = recording.iter().map(|s| s.duration_ms).max().unwrap_or(0);
    let target = longest.div_ceil(1000).max(1);
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-PLAYLIST-TYPE:VOD\n\
         #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    );
    let mut run = None;
    for s in recording {
        if run != Some(s.run) {
            if run.is_some() {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"init-{}.mp4\"", s.run);
            run = Some(s.run);
        }
        let _ = writeln!(out, "#EXTINF:{}.{:03},\nseg-{}.m4s", s.duration_ms / 1000, s.duration_ms % 1000, s.msn);
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(msn: u64, run: u32, duration_ms: u64) -> RecordedSegment {
        RecordedSegment { msn, run, duration_ms }
    }

    #[test]
    fn the_vod_playlist_names_every_run_after_a_discontinuity() {
        let rec = [seg(0, 0, 2000), seg(1, 0, 1960), seg(2, 1, 2345)];
        assert_eq!(
            vod_playlist(&rec),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n\
             #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MAP:URI=\"init-0.mp4\"\n#EXTINF:2.000,\nseg-0.m4s\n#EXTINF:1.960,\nseg-1.m4s\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-1.mp4\"\n#EXTINF:2.345,\nseg-2.m4s\n\
             #EXT-X-ENDLIST\n"
        );
    }
}
