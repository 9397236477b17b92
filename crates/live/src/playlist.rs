//! Writing the playlists of a live stream — pure text from a description of its segments, so
//! the exact output is unit-tested.
//!
//! Two playlists over the same segments: the Low-Latency HLS one (RFC 8216bis: `EXT-X-PART` for
//! the parts of the last few segments and of the segment being cut, `EXT-X-PRELOAD-HINT` for
//! the next part, `EXT-X-SERVER-CONTROL` with blocking reload, `EXT-X-PART-INF`) and the plain
//! one of whole segments for players without LL-HLS. URIs are relative (`init-{run}.mp4`,
//! `seg-{msn}.m4s`, `part-{msn}.{part}.m4s`), so the signed prefix a viewer was given carries
//! over. A reconnected encoder starts a new run: `EXT-X-DISCONTINUITY` and the run's own
//! `EXT-X-MAP`.

use std::fmt::Write;

/// The fixed facts a playlist announces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// `EXT-X-TARGETDURATION`, whole seconds.
    pub target_duration: u32,
    /// `PART-TARGET`, seconds.
    pub part_target: f64,
    /// How many of the last whole segments keep their parts listed.
    pub parts_kept: usize,
}

impl Params {
    /// `PART-HOLD-BACK`: three part targets (the spec asks for at least two).
    pub fn part_hold_back(&self) -> f64 {
        3.0 * self.part_target
    }
}

/// A part as the playlist shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartLine {
    pub duration: f64,
    pub independent: bool,
}

/// A segment (whole, or the one being cut) as the playlist shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentLine {
    pub msn: u64,
    /// Which encoder connection made it (a new run is a discontinuity with its own init).
    pub run: u32,
    pub parts: Vec<PartLine>,
    /// Whether the segment is whole (has an `EXTINF`).
    pub complete: bool,
}

impl SegmentLine {
    pub fn duration(&self) -> f64 {
        self.parts.iter().map(|p| p.duration).sum()
    }
}

/// What a playlist is written from.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The segments in the window, oldest first; the last may be incomplete.
    pub segments: Vec<SegmentLine>,
    /// Discontinuities that slid out of the window before its first segment.
    pub discontinuity_sequence: u64,
    /// The stream has ended: no more segments will come.
    pub ended: bool,
}

fn header(out: &mut String, p: &Params, snap: &Snapshot, version: u32) {
    out.push_str("#EXTM3U\n");
    let _ = writeln!(out, "#EXT-X-VERSION:{version}");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", p.target_duration);
    let first = snap.segments.first().map_or(0, |s| s.msn);
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first}");
    if snap.discontinuity_sequence > 0 {
        let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", snap.discontinuity_sequence);
    }
}

/// Writes the segment lines; `with_parts` for the LL-HLS playlist.
fn body(out: &mut String, p: &Params, snap: &Snapshot, with_parts: bool) {
    let complete = snap.segments.iter().filter(|s| s.complete).count();
    let mut run = None;
    for (i, s) in snap.segments.iter().enumerate() {
        if !with_parts && !s.complete {
            break;
        }
        if run != Some(s.run) {
            if run.is_some() {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"init-{}.mp4\"", s.run);
            run = Some(s.run);
        }
        if with_parts && (!s.complete || i + p.parts_kept >= complete) {
            for (n, part) in s.parts.iter().enumerate() {
                let _ = write!(out, "#EXT-X-PART:DURATION={:.5},URI=\"part-{}.{n}.m4s\"", part.duration, s.msn);
                out.push_str(if part.independent { ",INDEPENDENT=YES\n" } else { "\n" });
            }
        }
        if s.complete {
            let _ = writeln!(out, "#EXTINF:{:.5},\nseg-{}.m4s", s.duration(), s.msn);
        }
    }
}

/// The Low-Latency HLS playlist.
pub fn low_latency(p: &Params, snap: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    header(&mut out, p, snap, 9);
    let _ = writeln!(
        out,
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3},HOLD-BACK={:.3}",
        p.part_hold_back(),
        3.0 * f64::from(p.target_duration)
    );
    let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={:.3}", p.part_target);
    body(&mut out, p, snap, true);
    if snap.ended {
        out.push_str("#EXT-X-ENDLIST\n");
    } else if let Some((msn, part)) = next_part(snap) {
        let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-{msn}.{part}.m4s\"");
    }
    out
}

/// The playlist of whole segments, for players without LL-HLS (and for the replay).
pub fn plain(p: &Params, snap: &Snapshot) -> String {
    let mut out = String::with_capacity(2048);
    header(&mut out, p, snap, 7);
    body(&mut out, p, snap, false);
    if snap.ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// The part that will come next: (msn, part index).
pub fn next_part(snap: &Snapshot) -> Option<(u64, usize)> {
    let last = snap.segments.last()?;
    Some(match last.complete {
        true => (last.msn + 1, 0),
        false => (last.msn, last.parts.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(duration: f64, independent: bool) -> PartLine {
        PartLine { duration, independent }
    }

    fn params() -> Params {
        Params { target_duration: 4, part_target: 0.4, parts_kept: 2 }
    }

    fn snapshot() -> Snapshot {
        let whole = |msn, run| SegmentLine {
            msn,
            run,
            parts: vec![part(0.5, true), part(0.5, false), part(0.5, false), part(0.5, false)],
            complete: true,
        };
        Snapshot {
            segments: vec![
                whole(7, 0),
                whole(8, 0),
                whole(9, 1),
                SegmentLine { msn: 10, run: 1, parts: vec![part(0.33333, true)], complete: false },
            ],
            discontinuity_sequence: 2,
            ended: false,
        }
    }

    #[test]
    fn low_latency_playlist_text() {
        let expected = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-DISCONTINUITY-SEQUENCE:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.200,HOLD-BACK=12.000
#EXT-X-PART-INF:PART-TARGET=0.400
#EXT-X-MAP:URI=\"init-0.mp4\"
#EXTINF:2.00000,
seg-7.m4s
#EXT-X-PART:DURATION=0.50000,URI=\"part-8.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI=\"part-8.1.m4s\"
#EXT-X-PART:DURATION=0.50000,URI=\"part-8.2.m4s\"
#EXT-X-PART:DURATION=0.50000,URI=\"part-8.3.m4s\"
#EXTINF:2.00000,
seg-8.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init-1.mp4\"
#EXT-X-PART:DURATION=0.50000,URI=\"part-9.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI=\"part-9.1.m4s\"
#EXT-X-PART:DURATION=0.50000,URI=\"part-9.2.m4s\"
#EXT-X-PART:DURATION=0.50000,URI=\"part-9.3.m4s\"
#EXTINF:2.00000,
seg-9.m4s
#EXT-X-PART:DURATION=0.33333,URI=\"part-10.0.m4s\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-10.1.m4s\"
";
        assert_eq!(low_latency(&params(), &snapshot()), expected);
    }

    #[test]
    fn plain_playlist_has_whole_segments_only() {
        let mut snap = snapshot();
        let expected = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-DISCONTINUITY-SEQUENCE:2
#EXT-X-MAP:URI=\"init-0.mp4\"
#EXTINF:2.00000,
seg-7.m4s
#EXTINF:2.00000,
seg-8.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init-1.mp4\"
#EXTINF:2.00000,
seg-9.m4s
";
        assert_eq!(plain(&params(), &snap), expected);
        snap.segments.pop();
        snap.ended = true;
        assert!(plain(&params(), &snap).ends_with("seg-9.m4s\n#EXT-X-ENDLIST\n"));
        let ll = low_latency(&params(), &snap);
        assert!(ll.ends_with("seg-9.m4s\n#EXT-X-ENDLIST\n"), "{ll}");
        assert!(!ll.contains("PRELOAD-HINT"));
    }

    #[test]
    fn next_part_follows_the_last_segment() {
        let mut snap = snapshot();
        assert_eq!(next_part(&snap), Some((10, 1)));
        snap.segments.last_mut().unwrap().complete = true;
        assert_eq!(next_part(&snap), Some((11, 0)));
        assert_eq!(next_part(&Snapshot { segments: vec![], discontinuity_sequence: 0, ended: false }), None);
    }
}
