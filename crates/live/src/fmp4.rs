//! Reading ffmpeg's fragmented MP4 as it arrives: the init segment (`ftyp` + `moov`) and then
//! one fragment (`moof` + `mdat`) at a time, with what the packager needs to know about each —
//! its duration (from the `trun` sample durations and the `mdhd` timescale) and whether it
//! starts with a sync sample (a keyframe), so it may be an `INDEPENDENT` part.
//!
//! Only box headers and the few fields named above are read; sample data is never copied apart
//! from the fragment's bytes. A box larger than [`MAX_BOX_BYTES`] or a malformed header is an
//! error, never a huge allocation.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest box accepted (a fragment of 200–500 ms is far smaller even at 50 Mb/s).
pub const MAX_BOX_BYTES: u64 = 64 * 1024 * 1024;

/// What went wrong reading the fMP4 stream.
#[derive(Debug, thiserror::Error)]
pub enum Fmp4Error {
    #[error("reading the packager's output failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed MP4 box: {0}")]
    Malformed(&'static str),
    #[error("an MP4 box of {0} bytes is larger than allowed")]
    TooLarge(u64),
}

/// One piece of the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// `ftyp` + `moov`: what every fragment is decoded with.
    Init(Init),
    /// `moof` + `mdat` (and anything between them, such as `styp`).
    Fragment(Fragment),
}

/// The init segment and the track facts fragments are measured with.
#[derive(Debug, Clone, PartialEq)]
pub struct Init {
    pub bytes: Bytes,
    pub tracks: Vec<Track>,
    /// What a multivariant playlist says of the stream ([`describe_init`]).
    pub facts: InitFacts,
}

/// The codecs (RFC 6381 strings, as `CODECS` in HLS wants them) and the picture size an init
/// segment declares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InitFacts {
    /// `avc1.PPCCLL` from the `avcC`, `mp4a.40.N` from the `esds`, in track order.
    pub codecs: Vec<String>,
    /// The video track's width and height (`tkhd`).
    pub size: Option<(u32, u32)>,
}

/// A track of the `moov`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Track {
    pub id: u32,
    pub timescale: u32,
    /// `vide` (true) or anything else.
    pub video: bool,
    /// `trex` defaults.
    pub default_duration: u32,
    pub default_flags: u32,
}

/// A fragment and what was learnt from its `moof`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fragment {
    pub bytes: Bytes,
    /// Seconds covered by the reference track (video if there is one).
    pub duration: f64,
    /// Whether the reference track's first sample is a sync sample.
    pub independent: bool,
    /// The reference track's decode time of its first sample, in seconds.
    pub start: f64,
}

/// `sample_is_non_sync_sample` in sample flags (ISO/IEC 14496-12 §8.8.3.1).
const NON_SYNC: u32 = 0x0001_0000;

/// Reads boxes from `reader` and groups them into [`Piece`]s.
pub struct Reader<R> {
    reader: R,
    tracks: Vec<Track>,
    pending: BytesMut,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    pub fn new(reader: R) -> Self {
        Reader { reader, tracks: Vec::new(), pending: BytesMut::new() }
    }

    /// The next piece; `None` at a clean end of stream (between boxes).
    pub async fn next(&mut self) -> Result<Option<Piece>, Fmp4Error> {
        loop {
            let Some((kind, bytes)) = self.read_box().await? else {
                return match self.pending.is_empty() {
                    true => Ok(None),
                    false => Err(Fmp4Error::Malformed("stream ended inside a fragment")),
                };
            };
            match &kind {
                b"ftyp" => {
                    self.pending.clear();
                    self.pending.extend_from_slice(&bytes);
                }
                b"moov" => {
                    self.tracks = parse_moov(&bytes[8..])?;
                    let facts = describe_init(&bytes[8..]);
                    self.pending.extend_from_slice(&bytes);
                    let init = Init { bytes: self.pending.split().freeze(), tracks: self.tracks.clone(), facts };
                    return Ok(Some(Piece::Init(init)));
                }
                b"mdat" => {
                    self.pending.extend_from_slice(&bytes);
                    let bytes = self.pending.split().freeze();
                    let fragment = describe_fragment(bytes, &self.tracks)?;
                    return Ok(Some(Piece::Fragment(fragment)));
                }
                // moof, styp, prft, sidx…: kept with the fragment they introduce.
                _ => self.pending.extend_from_slice(&bytes),
            }
        }
    }

    /// One whole box (header included), or `None` at end of stream before its first byte.
    async fn read_box(&mut self) -> Result<Option<([u8; 4], Vec<u8>)>, Fmp4Error> {
        let mut head = [0u8; 8];
        match self.reader.read_exact(&mut head[..1]).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        self.reader.read_exact(&mut head[1..]).await?;
        let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let kind = [head[4], head[5], head[6], head[7]];
        let mut out = head.to_vec();
        let size = match size32 {
            0 => return Err(Fmp4Error::Malformed("a box running to the end of the stream")),
            1 => {
                let mut large = [0u8; 8];
                self.reader.read_exact(&mut large).await?;
                out.extend_from_slice(&large);
                u64::from_be_bytes(large)
            }
            n => u64::from(n),
        };
        if size < out.len() as u64 {
            return Err(Fmp4Error::Malformed("a box smaller than its header"));
        }
        if size > MAX_BOX_BYTES {
            return Err(Fmp4Error::TooLarge(size));
        }
        let header = out.len();
        // Bounded above, so the cast cannot truncate on 64-bit targets.
        out.resize(size as usize, 0);
        self.reader.read_exact(&mut out[header..]).await?;
        Ok(Some((kind, out)))
    }
}

/// Iterates over the boxes in `data`: (type, body).
fn boxes(data: &[u8]) -> impl Iterator<Item = Result<([u8; 4], &[u8]), Fmp4Error>> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        if rest.len() < 8 {
            rest = &[];
            return Some(Err(Fmp4Error::Malformed("a truncated box header")));
        }
        let size = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let kind = [rest[4], rest[5], rest[6], rest[7]];
        let (header, size) = match size {
            0 => (8, rest.len()),
            1 if rest.len() >= 16 => {
                let mut large = [0u8; 8];
                large.copy_from_slice(&rest[8..16]);
                (16, usize::try_from(u64::from_be_bytes(large)).unwrap_or(usize::MAX))
            }
            n => (8, n),
        };
        if size < header || size > rest.len() {
            rest = &[];
            return Some(Err(Fmp4Error::Malformed("a box larger than its parent")));
        }
        let body = &rest[header..size];
        rest = &rest[size..];
        Some(Ok((kind, body)))
    })
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, Fmp4Error> {
    for b in boxes(data) {
        let (k, body) = b?;
        if &k == kind {
            return Ok(Some(body));
        }
    }
    Ok(None)
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, Fmp4Error> {
    data.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(Fmp4Error::Malformed("a field past the end of its box"))
}

fn u64_at(data: &[u8], at: usize) -> Result<u64, Fmp4Error> {
    Ok((u64::from(u32_at(data, at)?) << 32) | u64::from(u32_at(data, at + 4)?))
}

/// Tracks (id, timescale, handler) and their `trex` defaults.
fn parse_moov(moov: &[u8]) -> Result<Vec<Track>, Fmp4Error> {
    let mut tracks = Vec::new();
    for b in boxes(moov) {
        let (kind, body) = b?;
        if &kind != b"trak" {
            continue;
        }
        let tkhd = child(body, b"tkhd")?.ok_or(Fmp4Error::Malformed("a track without tkhd"))?;
        let id = match tkhd.first() {
            Some(1) => u32_at(tkhd, 20)?,
            _ => u32_at(tkhd, 12)?,
        };
        let mdia = child(body, b"mdia")?.ok_or(Fmp4Error::Malformed("a track without mdia"))?;
        let mdhd = child(mdia, b"mdhd")?.ok_or(Fmp4Error::Malformed("a track without mdhd"))?;
        let timescale = match mdhd.first() {
            Some(1) => u32_at(mdhd, 20)?,
            _ => u32_at(mdhd, 12)?,
        };
        let hdlr = child(mdia, b"hdlr")?.ok_or(Fmp4Error::Malformed("a track without hdlr"))?;
        let video = hdlr.get(8..12) == Some(b"vide");
        if timescale == 0 {
            return Err(Fmp4Error::Malformed("a track with a zero timescale"));
        }
        tracks.push(Track { id, timescale, video, default_duration: 0, default_flags: 0 });
    }
    if let Some(mvex) = child(moov, b"mvex")? {
        for b in boxes(mvex) {
            let (kind, trex) = b?;
            if &kind != b"trex" {
                continue;
            }
            let id = u32_at(trex, 4)?;
            if let Some(t) = tracks.iter_mut().find(|t| t.id == id) {
                t.default_duration = u32_at(trex, 12)?;
                t.default_flags = u32_at(trex, 20)?;
            }
        }
    }
    if tracks.is_empty() {
        return Err(Fmp4Error::Malformed("a moov without tracks"));
    }
    Ok(tracks)
}

/// The codecs and picture size of a `moov`'s body. Best effort: what cannot be read is left
/// out (a sample entry of another codec names itself by its four letters).
pub fn describe_init(moov: &[u8]) -> InitFacts {
    let mut facts = InitFacts::default();
    for (kind, trak) in boxes(moov).map_while(Result::ok) {
        if &kind != b"trak" {
            continue;
        }
        let entry = (|| {
            let stbl = child(child(child(trak, b"mdia").ok()??, b"minf").ok()??, b"stbl").ok()??;
            let stsd = child(stbl, b"stsd").ok()??;
            // Version and flags, the entry count, then the first sample entry.
            boxes(stsd.get(8..)?).next()?.ok()
        })();
        let Some((format, body)) = entry else { continue };
        match &format {
            b"avc1" | b"avc3" => {
                // A visual sample entry's fixed fields take 78 bytes before its boxes.
                let avcc = body.get(78..).and_then(|b| child(b, b"avcC").ok().flatten());
                facts.codecs.push(match avcc.and_then(|c| c.get(1..4)) {
                    Some(p) => format!("{}.{:02x}{:02x}{:02x}", String::from_utf8_lossy(&format), p[0], p[1], p[2]),
                    None => String::from_utf8_lossy(&format).into_owned(),
                });
                if let Some(tkhd) = child(trak, b"tkhd").ok().flatten()
                    && tkhd.len() >= 8
                {
                    let at = tkhd.len() - 8;
                    if let (Ok(w), Ok(h)) = (u32_at(tkhd, at), u32_at(tkhd, at + 4)) {
                        facts.size = Some((w >> 16, h >> 16));
                    }
                }
            }
            b"mp4a" => {
                // An audio sample entry's fixed fields take 28 bytes before its boxes.
                let esds = body.get(28..).and_then(|b| child(b, b"esds").ok().flatten());
                let object_type = esds.and_then(|e| audio_object_type(e.get(4..)?)).unwrap_or(2);
                facts.codecs.push(format!("mp4a.40.{object_type}"));
            }
            other => facts.codecs.push(String::from_utf8_lossy(other).into_owned()),
        }
    }
    facts
}

/// The MPEG-4 audio object type (2: AAC-LC, 5: HE-AAC…) in an `esds`'s descriptors: the first
/// five bits of the decoder-specific info (tag 5) inside the decoder config (tag 4).
fn audio_object_type(mut d: &[u8]) -> Option<u8> {
    // Each descriptor: a tag, a length in 1–4 bytes of 7 bits, then its body.
    fn descriptor(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let tag = *d.first()?;
        let mut len = 0usize;
        let mut at = 1;
        loop {
            let b = *d.get(at)?;
            len = (len << 7) | usize::from(b & 0x7f);
            at += 1;
            if b & 0x80 == 0 || at > 4 {
                break;
            }
        }
        let body = d.get(at..at.checked_add(len)?)?;
        Some((tag, body, &d[at + len..]))
    }
    let (tag, es, _) = descriptor(d)?;
    if tag != 3 {
        return None;
    }
    // ES_ID and flags; optional fields by the flags.
    let flags = *es.get(2)?;
    let mut at = 3;
    if flags & 0x80 != 0 {
        at += 2;
    }
    if flags & 0x40 != 0 {
        at += 1 + usize::from(*es.get(at)?);
    }
    if flags & 0x20 != 0 {
        at += 2;
    }
    d = es.get(at..)?;
    while let Some((tag, body, rest)) = descriptor(d) {
        if tag == 4 {
            // Object type, stream type, buffer size, max and average bit rate: 13 bytes.
            let (inner, _, _) = descriptor(body.get(13..)?)?;
            let (_, info, _) = descriptor(body.get(13..)?)?;
            return (inner == 5).then(|| info.first().map(|b| b >> 3)).flatten();
        }
        d = rest;
    }
    None
}

/// What one `traf` says about its track's samples in this fragment.
struct TrafFacts {
    track: u32,
    decode_time: u64,
    duration: u64,
    first_flags: u32,
}

fn parse_traf(traf: &[u8], tracks: &[Track]) -> Result<TrafFacts, Fmp4Error> {
    let tfhd = child(traf, b"tfhd")?.ok_or(Fmp4Error::Malformed("a traf without tfhd"))?;
    let tf_flags = u32_at(tfhd, 0)? & 0x00ff_ffff;
    let track = u32_at(tfhd, 4)?;
    let defaults = tracks.iter().find(|t| t.id == track).ok_or(Fmp4Error::Malformed("a traf of an unknown track"))?;
    let mut at = 8;
    if tf_flags & 0x01 != 0 {
        at += 8; // base data offset
    }
    if tf_flags & 0x02 != 0 {
        at += 4; // sample description index
    }
    let mut default_duration = defaults.default_duration;
    if tf_flags & 0x08 != 0 {
        default_duration = u32_at(tfhd, at)?;
        at += 4;
    }
    if tf_flags & 0x10 != 0 {
        at += 4; // default sample size
    }
    let mut default_flags = defaults.default_flags;
    if tf_flags & 0x20 != 0 {
        default_flags = u32_at(tfhd, at)?;
    }
    let decode_time = match child(traf, b"tfdt")? {
        Some(tfdt) if tfdt.first() == Some(&1) => u64_at(tfdt, 4)?,
        Some(tfdt) => u64::from(u32_at(tfdt, 4)?),
        None => 0,
    };
    let mut duration = 0u64;
    let mut first_flags = None;
    for b in boxes(traf) {
        let (kind, trun) = b?;
        if &kind != b"trun" {
            continue;
        }
        let flags = u32_at(trun, 0)? & 0x00ff_ffff;
        let count = u32_at(trun, 4)?;
        let mut at = 8;
        if flags & 0x001 != 0 {
            at += 4; // data offset
        }
        let mut first_sample_flags = None;
        if flags & 0x004 != 0 {
            first_sample_flags = Some(u32_at(trun, at)?);
            at += 4;
        }
        let per_sample = [0x100u32, 0x200, 0x400, 0x800].iter().filter(|f| flags & **f != 0).count() * 4;
        if (count as usize).saturating_mul(per_sample) > trun.len() {
            return Err(Fmp4Error::Malformed("a trun with more samples than bytes"));
        }
        for i in 0..count {
            let mut field = at;
            let sample_duration = match flags & 0x100 != 0 {
                true => {
                    let d = u32_at(trun, field)?;
                    field += 4;
                    d
                }
                false => default_duration,
            };
            if flags & 0x200 != 0 {
                field += 4; // size
            }
            let sample_flags = match flags & 0x400 != 0 {
                true => u32_at(trun, field)?,
                false => default_flags,
            };
            if i == 0 && first_flags.is_none() {
                first_flags = Some(first_sample_flags.unwrap_or(sample_flags));
            }
            duration += u64::from(sample_duration);
            at += per_sample;
        }
    }
    Ok(TrafFacts { track, decode_time, duration, first_flags: first_flags.unwrap_or(default_flags) })
}

/// Duration, start and independence of the fragment in `bytes`, from its `moof`.
fn describe_fragment(bytes: Bytes, tracks: &[Track]) -> Result<Fragment, Fmp4Error> {
    if tracks.is_empty() {
        return Err(Fmp4Error::Malformed("a fragment before the init segment"));
    }
    let moof = match boxes(&bytes).find(|b| matches!(b, Ok((k, _)) if k == b"moof")) {
        Some(found) => found?.1,
        None => return Err(Fmp4Error::Malformed("a fragment without moof")),
    };
    let mut facts = Vec::new();
    for b in boxes(moof) {
        let (kind, traf) = b?;
        if &kind == b"traf" {
            facts.push(parse_traf(traf, tracks)?);
        }
    }
    let reference = |f: &&TrafFacts| tracks.iter().any(|t| t.id == f.track && t.video);
    let chosen = facts.iter().find(reference).or(facts.first()).ok_or(Fmp4Error::Malformed("a moof without traf"))?;
    let track = tracks.iter().find(|t| t.id == chosen.track).ok_or(Fmp4Error::Malformed("unknown track"))?;
    let scale = f64::from(track.timescale);
    // A fragment with no video samples (audio only between two video fragments) never starts a
    // picture, so it is not independent unless the stream has no video at all.
    let has_video_track = tracks.iter().any(|t| t.video);
    let independent = match (has_video_track, reference(&chosen)) {
        (true, false) => false,
        _ => chosen.first_flags & NON_SYNC == 0,
    };
    Ok(Fragment {
        duration: chosen.duration as f64 / scale,
        independent,
        start: chosen.decode_time as f64 / scale,
        bytes,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn full(version_flags: u32, rest: &[u8]) -> Vec<u8> {
        let mut out = version_flags.to_be_bytes().to_vec();
        out.extend_from_slice(rest);
        out
    }

    fn be(values: &[u32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    fn trak(id: u32, timescale: u32, handler: &[u8; 4]) -> Vec<u8> {
        // tkhd v0: flags, ctime, mtime, track id, reserved, duration…
        let tkhd = mp4_box(b"tkhd", &full(3, &be(&[0, 0, id, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])));
        let mdhd = mp4_box(b"mdhd", &full(0, &be(&[0, 0, timescale, 0, 0])));
        let mut hdlr_body = full(0, &[0, 0, 0, 0]);
        hdlr_body.extend_from_slice(handler);
        hdlr_body.extend_from_slice(&[0; 13]);
        let hdlr = mp4_box(b"hdlr", &hdlr_body);
        let mdia = mp4_box(b"mdia", &[mdhd, hdlr].concat());
        mp4_box(b"trak", &[tkhd, mdia].concat())
    }

    /// An init segment with a 90 kHz video track 1 and a 48 kHz audio track 2.
    pub(crate) fn init_bytes() -> Vec<u8> {
        let ftyp = mp4_box(b"ftyp", b"iso6\0\0\0\0iso6cmfc");
        let trex1 = mp4_box(b"trex", &full(0, &be(&[1, 1, 3000, 0, 0x0101_0000])));
        let trex2 = mp4_box(b"trex", &full(0, &be(&[2, 1, 1024, 0, 0])));
        let mvex = mp4_box(b"mvex", &[trex1, trex2].concat());
        let moov = mp4_box(b"moov", &[trak(1, 90_000, b"vide"), trak(2, 48_000, b"soun"), mvex].concat());
        [ftyp, moov].concat()
    }

    /// A fragment whose video traf holds `samples` of 3000 ticks (1/30 s), starting at
    /// `decode_time`; the first sample is a keyframe when `key`.
    pub(crate) fn fragment_bytes(decode_time: u64, samples: u32, key: bool) -> Vec<u8> {
        let tfhd = mp4_box(b"tfhd", &full(0x02_0000, &be(&[1])));
        let mut tfdt_body = full(0x0100_0000, &[]);
        tfdt_body.extend_from_slice(&decode_time.to_be_bytes());
        let tfdt = mp4_box(b"tfdt", &tfdt_body);
        // trun: data offset + first sample flags, then per-sample sizes.
        let first = if key { 0x0200_0000 } else { 0x0101_0000 };
        let mut trun_body = full(0x000205, &be(&[samples, 0, first]));
        trun_body.extend(be(&vec![10; samples as usize]));
        let trun = mp4_box(b"trun", &trun_body);
        let traf_v = mp4_box(b"traf", &[tfhd, tfdt, trun].concat());
        // Audio: 2 samples of 1024 at 48 kHz with explicit durations.
        let tfhd_a = mp4_box(b"tfhd", &full(0x02_0000, &be(&[2])));
        let trun_a = mp4_box(b"trun", &full(0x000100, &be(&[2, 1024, 1024])));
        let traf_a = mp4_box(b"traf", &[tfhd_a, trun_a].concat());
        let moof = mp4_box(b"moof", &[mp4_box(b"mfhd", &full(0, &be(&[1]))), traf_v, traf_a].concat());
        let mdat = mp4_box(b"mdat", &vec![0xab; 10 * samples as usize]);
        [moof, mdat].concat()
    }

    async fn read_all(data: Vec<u8>) -> Result<Vec<Piece>, Fmp4Error> {
        let mut reader = Reader::new(std::io::Cursor::new(data));
        let mut out = Vec::new();
        while let Some(p) = reader.next().await? {
            out.push(p);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn init_then_fragments_with_duration_and_keyframes() {
        let init = init_bytes();
        let f1 = fragment_bytes(0, 9, true);
        let f2 = fragment_bytes(27_000, 6, false);
        let pieces = read_all([init.clone(), f1.clone(), f2.clone()].concat()).await.unwrap();
        assert_eq!(pieces.len(), 3);
        let Piece::Init(i) = &pieces[0] else { panic!("init first") };
        assert_eq!(i.bytes.as_ref(), init.as_slice());
        assert_eq!(i.tracks.len(), 2);
        assert_eq!((i.tracks[0].id, i.tracks[0].timescale, i.tracks[0].video), (1, 90_000, true));
        assert_eq!((i.tracks[1].timescale, i.tracks[1].video), (48_000, false));
        let Piece::Fragment(a) = &pieces[1] else { panic!("fragment") };
        assert_eq!(a.bytes.as_ref(), f1.as_slice());
        assert!(a.independent);
        assert!((a.duration - 0.3).abs() < 1e-9, "{}", a.duration);
        assert_eq!(a.start, 0.0);
        let Piece::Fragment(b) = &pieces[2] else { panic!("fragment") };
        assert!(!b.independent);
        assert!((b.duration - 0.2).abs() < 1e-9);
        assert!((b.start - 0.3).abs() < 1e-9);
    }

    #[tokio::test]
    async fn hostile_streams_are_errors_not_allocations() {
        // A box claiming 4 GiB.
        let huge = [&u32::MAX.to_be_bytes()[..], b"mdat"].concat();
        assert!(matches!(read_all(huge).await, Err(Fmp4Error::TooLarge(_))));
        // A box smaller than its header.
        let small = [&4u32.to_be_bytes()[..], b"moof"].concat();
        assert!(matches!(read_all(small).await, Err(Fmp4Error::Malformed(_))));
        // A fragment before any moov.
        assert!(matches!(read_all(fragment_bytes(0, 3, true)).await, Err(Fmp4Error::Malformed(_))));
        // Cut inside a box.
        let mut cut = init_bytes();
        cut.extend_from_slice(&fragment_bytes(0, 3, true)[..20]);
        assert!(read_all(cut).await.is_err());
        // A trun claiming more samples than it holds.
        let mut lying = fragment_bytes(0, 3, true);
        let at = lying.windows(4).position(|w| w == b"trun").unwrap() + 8;
        lying[at..at + 4].copy_from_slice(&1_000_000u32.to_be_bytes());
        assert!(read_all([init_bytes(), lying].concat()).await.is_err());
        // A clean end between boxes is no error.
        assert_eq!(read_all(Vec::new()).await.unwrap(), Vec::new());
    }
}
