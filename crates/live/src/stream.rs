//! One live stream's packaged media in memory: init segments per run, the window of recent
//! segments and their parts, and waiting for a part that does not exist yet.
//!
//! The packager pushes fragments ([`LiveStream::push`]); a fragment is one part, and a
//! segment is cut before an independent part once the segment holds
//! [`Packaging::segment_target`] seconds (or before any part that would take it past the
//! playlist's target duration). Viewers read snapshots and bytes under a short lock; blocking
//! playlist reload waits on a `watch` channel bumped at every change, bounded by a timeout, so
//! no request hangs.
//!
//! It also counts its viewers, approximately: each player's playlist URL carries a nonce of its
//! own, and the distinct nonces seen in the last [`VIEWER_WINDOW`] are the count — kept in
//! memory, bounded, never written per request.

use crate::playlist::{self, Params, PartLine, SegmentLine, Snapshot};
use bytes::{Bytes, BytesMut};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A player that has not asked for the playlist for this long is no longer counted.
pub const VIEWER_WINDOW: Duration = Duration::from_secs(10);
/// Players remembered at most per stream (a flood of made-up nonces stops counting there).
const VIEWERS_MAX: usize = 100_000;

/// How segments are cut and how many are kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Packaging {
    pub params: Params,
    /// A segment is cut at the first keyframe after this many seconds.
    pub segment_target: f64,
    /// Whole segments kept in memory and in the playlists.
    pub window: usize,
}

impl Default for Packaging {
    fn default() -> Self {
        Packaging {
            params: Params { target_duration: 4, part_target: 0.5, parts_kept: 3 },
            segment_target: 2.0,
            window: 15,
        }
    }
}

struct Part {
    bytes: Bytes,
    duration: f64,
    independent: bool,
}

struct Segment {
    msn: u64,
    run: u32,
    parts: Vec<Part>,
    complete: bool,
}

impl Segment {
    fn duration(&self) -> f64 {
        self.parts.iter().map(|p| p.duration).sum()
    }

    fn line(&self) -> SegmentLine {
        SegmentLine {
            msn: self.msn,
            run: self.run,
            parts: self.parts.iter().map(|p| PartLine { duration: p.duration, independent: p.independent }).collect(),
            complete: self.complete,
        }
    }

    fn bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.parts.iter().map(|p| p.bytes.len()).sum());
        for p in &self.parts {
            out.extend_from_slice(&p.bytes);
        }
        out.freeze()
    }
}

/// A whole segment, as handed to storage.
#[derive(Debug, Clone, PartialEq)]
pub struct CutSegment {
    pub msn: u64,
    pub run: u32,
    pub duration: f64,
    pub bytes: Bytes,
}

#[derive(Default)]
struct Inner {
    inits: BTreeMap<u32, Bytes>,
    segments: VecDeque<Segment>,
    discontinuity_sequence: u64,
    next_msn: u64,
    /// The current run; `None` before the first init.
    run: Option<u32>,
    ended: bool,
}

/// Why a blocking request is answered without the part it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// Further ahead than the spec lets a client ask (400).
    #[error("the requested segment is too far in the future")]
    TooFar,
    /// The part did not come within the bound (503).
    #[error("the requested part did not arrive in time")]
    Timeout,
}

/// One stream's packaged media.
pub struct LiveStream {
    pub packaging: Packaging,
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
    /// When each player (by its nonce) last asked for a playlist.
    viewers: Mutex<HashMap<String, Instant>>,
    /// The playlists last written, each with the change it was written at: every player waiting
    /// on a blocking reload is woken by the same change, and one writing serves them all.
    low_latency: Rendered,
    plain: Rendered,
}

/// A playlist's text and the change (the `changed` counter) it shows at least.
#[derive(Default)]
struct Rendered(Mutex<Option<(u64, Bytes)>>);

impl Rendered {
    /// The text for change `at`: the one kept if it was written at `at`, else a new one from
    /// `write` (outside the lock). A text is kept under the counter read before its snapshot
    /// was taken, so it is never older than the change it is kept under; a text written for an
    /// earlier change never replaces one kept for a later change.
    fn get(&self, at: u64, write: impl FnOnce() -> String) -> Bytes {
        if let Some((kept_at, text)) = &*self.0.lock().unwrap_or_else(|e| e.into_inner())
            && *kept_at == at
        {
            return text.clone();
        }
        let text = Bytes::from(write());
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if kept.as_ref().is_none_or(|(kept_at, _)| *kept_at < at) {
            *kept = Some((at, text.clone()));
        }
        text
    }
}

/// Where a part is, relative to what exists.
enum Position {
    Present,
    Coming,
    TooFar,
}

impl LiveStream {
    pub fn new(packaging: Packaging) -> Self {
        LiveStream {
            packaging,
            inner: Mutex::new(Inner::default()),
            changed: watch::channel(0).0,
            viewers: Mutex::new(HashMap::new()),
            low_latency: Rendered::default(),
            plain: Rendered::default(),
        }
    }

    /// The player of `nonce` asked for a playlist now.
    pub fn saw_viewer(&self, nonce: &str) {
        let now = Instant::now();
        let mut seen = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = seen.get_mut(nonce) {
            *at = now;
            return;
        }
        if seen.len() >= VIEWERS_MAX {
            seen.retain(|_, at| now.duration_since(*at) < VIEWER_WINDOW);
            if seen.len() >= VIEWERS_MAX {
                return;
            }
        }
        seen.insert(nonce.to_owned(), now);
    }

    /// Players that asked for a playlist within `window` ([`VIEWER_WINDOW`]; older ones are
    /// forgotten).
    pub fn viewers(&self, window: Duration) -> u64 {
        let now = Instant::now();
        let mut seen = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, at| now.duration_since(*at) < window);
        seen.len() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every change is one push).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// A new encoder connection's init segment: the segment in progress is closed and the next
    /// one starts a new run (a discontinuity). Returns the run number and the closed segment.
    pub fn begin_run(&self, init: Bytes) -> (u32, Option<CutSegment>) {
        let (run, cut) = {
            let mut g = self.lock();
            let cut = close_last(&mut g);
            let run = g.run.map_or(0, |r| r + 1);
            g.run = Some(run);
            g.inits.insert(run, init);
            g.ended = false;
            (run, cut)
        };
        self.bump();
        (run, cut)
    }

    /// Adds a fragment as the next part; returns the segment it closed, if any.
    pub fn push(&self, bytes: Bytes, duration: f64, independent: bool) -> Option<CutSegment> {
        let p = self.packaging;
        let cut = {
            let mut g = self.lock();
            let run = g.run?;
            let current = g.segments.back().filter(|s| !s.complete).map(|s| (s.duration(), s.run));
            let cut = match current {
                Some((d, r)) if r == run => {
                    let over = d + duration > f64::from(p.params.target_duration);
                    ((independent && d >= p.segment_target) || over).then(|| close_last(&mut g)).flatten()
                }
                Some(_) => close_last(&mut g),
                None => None,
            };
            if g.segments.back().is_none_or(|s| s.complete) {
                let msn = g.next_msn;
                g.next_msn += 1;
                g.segments.push_back(Segment { msn, run, parts: Vec::new(), complete: false });
                trim(&mut g, p.window);
            }
            if let Some(s) = g.segments.back_mut() {
                s.parts.push(Part { bytes, duration, independent });
            }
            cut
        };
        self.bump();
        cut
    }

    /// The stream is over: the last segment is closed and playlists get `EXT-X-ENDLIST`.
    pub fn end(&self) -> Option<CutSegment> {
        let cut = {
            let mut g = self.lock();
            g.ended = true;
            close_last(&mut g)
        };
        self.bump();
        cut
    }

    pub fn snapshot(&self) -> Snapshot {
        let g = self.lock();
        Snapshot {
            segments: g.segments.iter().map(Segment::line).collect(),
            discontinuity_sequence: g.discontinuity_sequence,
            ended: g.ended,
        }
    }

    /// Whether anything can be played yet (a part exists).
    pub fn has_media(&self) -> bool {
        self.lock().segments.iter().any(|s| !s.parts.is_empty())
    }

    /// The Low-Latency HLS playlist, written once per change.
    pub fn low_latency_playlist(&self) -> Bytes {
        let at = *self.changed.borrow();
        self.low_latency.get(at, || playlist::low_latency(&self.packaging.params, &self.snapshot()))
    }

    /// The playlist of whole segments, written once per change.
    pub fn plain_playlist(&self) -> Bytes {
        let at = *self.changed.borrow();
        self.plain.get(at, || playlist::plain(&self.packaging.params, &self.snapshot()))
    }

    pub fn init(&self, run: u32) -> Option<Bytes> {
        self.lock().inits.get(&run).cloned()
    }

    pub fn part(&self, msn: u64, part: usize) -> Option<Bytes> {
        let g = self.lock();
        g.segments.iter().find(|s| s.msn == msn)?.parts.get(part).map(|p| p.bytes.clone())
    }

    /// A whole segment still in memory.
    pub fn segment(&self, msn: u64) -> Option<Bytes> {
        let g = self.lock();
        g.segments.iter().find(|s| s.msn == msn && s.complete).map(Segment::bytes)
    }

    fn position(&self, msn: u64, part: Option<usize>) -> Position {
        let g = self.lock();
        if g.ended {
            return Position::Present;
        }
        let last = g.segments.back().map(|s| (s.msn, s.complete, s.parts.len()));
        let Some((last_msn, complete, parts)) = last else {
            return if msn <= 1 { Position::Coming } else { Position::TooFar };
        };
        if msn > last_msn + 2 {
            return Position::TooFar;
        }
        let present = match part {
            _ if msn < last_msn => true,
            _ if msn > last_msn => false,
            None => complete,
            Some(p) => complete || p < parts,
        };
        if present { Position::Present } else { Position::Coming }
    }

    /// Waits until segment `msn` (part `part`, or the whole segment) exists, at most `bound`.
    pub async fn wait_for(&self, msn: u64, part: Option<usize>, bound: Duration) -> Result<(), WaitError> {
        let mut rx = self.changed.subscribe();
        let wait = async {
            loop {
                match self.position(msn, part) {
                    Position::Present => return Ok(()),
                    Position::TooFar => return Err(WaitError::TooFar),
                    Position::Coming => {}
                }
                if rx.changed().await.is_err() {
                    return Err(WaitError::Timeout);
                }
            }
        };
        tokio::time::timeout(bound, wait).await.unwrap_or(Err(WaitError::Timeout))
    }
}

fn close_last(g: &mut Inner) -> Option<CutSegment> {
    let s = g.segments.back_mut().filter(|s| !s.complete && !s.parts.is_empty())?;
    s.complete = true;
    Some(CutSegment { msn: s.msn, run: s.run, duration: s.duration(), bytes: s.bytes() })
}

/// Drops the oldest segments beyond `window` whole ones (plus the one being cut), counting
/// the discontinuities that leave, and the inits no segment uses any more.
fn trim(g: &mut Inner, window: usize) {
    while g.segments.len() > window + 1 {
        let Some(old) = g.segments.pop_front() else { break };
        if g.segments.front().is_some_and(|next| next.run != old.run) {
            g.discontinuity_sequence += 1;
        }
    }
    let first_run = g.segments.front().map(|s| s.run).or(g.run).unwrap_or(0);
    g.inits.retain(|run, _| *run >= first_run);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> LiveStream {
        LiveStream::new(Packaging {
            params: Params { target_duration: 4, part_target: 0.5, parts_kept: 2 },
            segment_target: 2.0,
            window: 3,
        })
    }

    fn frag(n: u8) -> Bytes {
        Bytes::from(vec![n; 4])
    }

    #[tokio::test]
    async fn segments_are_cut_at_keyframes_after_the_target() {
        let s = stream();
        assert!(s.push(frag(0), 0.5, true).is_none(), "nothing before an init");
        assert_eq!(s.begin_run(Bytes::from_static(b"init")).0, 0);
        for i in 0..4 {
            assert!(s.push(frag(i), 0.5, i == 0).is_none());
        }
        // 2 s reached but this part is no keyframe: the segment grows.
        assert!(s.push(frag(4), 0.5, false).is_none());
        let cut = s.push(frag(5), 0.5, true).expect("cut before the keyframe");
        assert_eq!((cut.msn, cut.run, cut.duration), (0, 0, 2.5));
        assert_eq!(cut.bytes.len(), 20);
        assert_eq!(s.segment(0).unwrap(), cut.bytes);
        assert_eq!(s.part(1, 0).unwrap(), frag(5));
        assert!(s.part(1, 1).is_none());
        // Past the target duration without a keyframe: cut anyway.
        for i in 0..7 {
            assert!(s.push(frag(6 + i), 0.5, false).is_none());
        }
        assert_eq!(s.push(frag(20), 0.5, false).map(|c| c.duration), Some(4.0));
        assert_eq!(s.init(0).unwrap(), Bytes::from_static(b"init"));
    }

    #[tokio::test]
    async fn a_new_run_is_a_discontinuity_that_slides_out() {
        let s = stream();
        s.begin_run(Bytes::from_static(b"a"));
        s.push(frag(0), 2.0, true);
        s.push(frag(1), 2.0, true);
        let (run, cut) = s.begin_run(Bytes::from_static(b"b"));
        assert_eq!((run, cut.map(|c| c.msn)), (1, Some(1)));
        for i in 0..4 {
            s.push(frag(i), 2.0, true);
        }
        let snap = s.snapshot();
        assert_eq!(snap.segments.iter().map(|x| (x.msn, x.run)).collect::<Vec<_>>(), [(2, 1), (3, 1), (4, 1), (5, 1)]);
        assert_eq!(snap.discontinuity_sequence, 1);
        assert!(s.init(0).is_none(), "the old run's init left with its segments");
        assert!(s.end().is_some());
        assert!(s.low_latency_playlist().ends_with(b"#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn a_playlist_is_written_once_per_change_and_follows_every_change() {
        let s = stream();
        s.begin_run(Bytes::from_static(b"init"));
        s.push(frag(0), 0.5, true);
        let first = s.low_latency_playlist();
        // Nothing changed: the same text, not a copy.
        assert_eq!(first.as_ptr(), s.low_latency_playlist().as_ptr());
        s.push(frag(1), 0.5, false);
        let second = s.low_latency_playlist();
        let text = std::str::from_utf8(&second).unwrap();
        assert!(text.contains("URI=\"part-0.1.m4s\""), "{text}");
        assert!(text.contains("URI=\"part-0.2.m4s\"") && text.contains("PRELOAD-HINT"), "{text}");
        assert_ne!(first, second);
        // The plain playlist has no whole segment yet, then the one cut.
        assert!(!std::str::from_utf8(&s.plain_playlist()).unwrap().contains("seg-0.m4s"));
        s.push(frag(2), 2.0, true);
        s.push(frag(3), 0.5, true);
        assert!(std::str::from_utf8(&s.plain_playlist()).unwrap().contains("seg-0.m4s"));
        s.end();
        assert!(s.low_latency_playlist().ends_with(b"#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn a_text_for_an_earlier_change_never_replaces_a_later_one() {
        let kept = Rendered::default();
        let later = kept.get(5, || "five".into());
        // A writer that read the counter before the change finishes after the later one.
        assert_eq!(kept.get(4, || "four".into()), "four");
        assert_eq!(kept.get(5, || unreachable!("kept")).as_ptr(), later.as_ptr());
        assert_eq!(kept.get(6, || "six".into()), "six");
    }

    #[test]
    fn viewers_are_the_distinct_players_seen_lately() {
        let s = stream();
        assert_eq!(s.viewers(VIEWER_WINDOW), 0);
        s.saw_viewer("a");
        s.saw_viewer("b");
        s.saw_viewer("a");
        assert_eq!(s.viewers(VIEWER_WINDOW), 2);
        // Past the window they are forgotten.
        assert_eq!(s.viewers(Duration::ZERO), 0);
        assert_eq!(s.viewers(VIEWER_WINDOW), 0);
    }

    #[tokio::test]
    async fn blocking_reload_returns_when_the_part_exists() {
        let s = std::sync::Arc::new(stream());
        s.begin_run(Bytes::from_static(b"init"));
        s.push(frag(0), 0.5, true);
        let bound = Duration::from_secs(5);
        assert_eq!(s.wait_for(0, Some(0), bound).await, Ok(()));
        assert_eq!(s.wait_for(9, None, bound).await, Err(WaitError::TooFar));
        let waiter = {
            let s = s.clone();
            tokio::spawn(async move { s.wait_for(0, Some(1), bound).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        s.push(frag(1), 0.5, false);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert_eq!(s.wait_for(1, Some(0), Duration::from_millis(50)).await, Err(WaitError::Timeout));
    }
}
