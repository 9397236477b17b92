//! The FLV the packager's ffmpeg reads on stdin, re-muxed from the RTMP audio and video
//! messages (which are FLV tag bodies already), and what the first bytes of a tag body say about
//! its codec.
//!
//! Only H.264 video (legacy codec id 7; an Enhanced RTMP `ExVideoTagHeader` — HEVC, AV1, VP9 —
//! is refused) and AAC audio (sound format 10) pass: the packager copies them into fMP4 without
//! transcoding. The picture size is read from the sequence parameter set of the AVC sequence
//! header, not from the encoder's metadata, which may say anything.

use bytes::{BufMut, Bytes, BytesMut};

/// The FLV file header (audio and video present) and the zero "previous tag size".
pub fn header() -> Bytes {
    Bytes::from_static(&[b'F', b'L', b'V', 1, 0x05, 0, 0, 0, 9, 0, 0, 0, 0])
}

/// FLV tag types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    Audio = 8,
    Video = 9,
}

/// One FLV tag with its trailing "previous tag size"; `None` for a body over 16 MiB (FLV's
/// 24-bit size field).
pub fn tag(kind: TagKind, timestamp_ms: u32, body: &[u8]) -> Option<Bytes> {
    let size = u32::try_from(body.len()).ok().filter(|s| *s < 1 << 24)?;
    let mut out = BytesMut::with_capacity(body.len() + 15);
    out.put_u8(kind as u8);
    out.put_uint(u64::from(size), 3);
    out.put_uint(u64::from(timestamp_ms & 0x00ff_ffff), 3);
    out.put_u8((timestamp_ms >> 24) as u8);
    out.put_uint(0, 3);
    out.put_slice(body);
    out.put_u32(size + 11);
    Some(out.freeze())
}

/// Why a tag cannot be passed through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("the video codec is {0}; send H.264 (AVC): this server does not transcode live video yet")]
    Video(String),
    #[error("the audio codec is {0}; send AAC")]
    Audio(String),
    #[error("the H.264 sequence header cannot be read")]
    BadSequenceHeader,
}

/// What a video tag body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Video {
    /// An AVC sequence header with the coded picture size.
    SequenceHeader { width: u32, height: u32 },
    /// A coded frame (`key`: a keyframe).
    Frame { key: bool },
    /// Nothing to decode (end of sequence, info frames).
    Other,
}

/// Reads a video tag body's header.
pub fn video(body: &[u8]) -> Result<Video, CodecError> {
    let Some(&first) = body.first() else { return Ok(Video::Other) };
    if first & 0x80 != 0 {
        // Enhanced RTMP: a FourCC follows the packet type.
        let fourcc = body.get(1..5).map(|f| String::from_utf8_lossy(f).into_owned()).unwrap_or_default();
        return Err(CodecError::Video(format!("{} (Enhanced RTMP)", fourcc.trim())));
    }
    let frame_type = first >> 4;
    match first & 0x0f {
        7 => {}
        12 => return Err(CodecError::Video("HEVC".into())),
        2 => return Err(CodecError::Video("Sorenson H.263".into())),
        4 | 5 => return Err(CodecError::Video("VP6".into())),
        other => return Err(CodecError::Video(format!("codec id {other}"))),
    }
    if frame_type == 5 {
        return Ok(Video::Other);
    }
    match body.get(1) {
        Some(0) => {
            let (width, height) = avc_dimensions(body.get(5..).unwrap_or_default())?;
            Ok(Video::SequenceHeader { width, height })
        }
        Some(1) => Ok(Video::Frame { key: frame_type == 1 }),
        _ => Ok(Video::Other),
    }
}

/// Whether an audio tag body is AAC.
pub fn audio(body: &[u8]) -> Result<(), CodecError> {
    let Some(&first) = body.first() else { return Ok(()) };
    match first >> 4 {
        10 => Ok(()),
        2 => Err(CodecError::Audio("MP3".into())),
        9 => Err(CodecError::Audio("an Enhanced RTMP codec".into())),
        other => Err(CodecError::Audio(format!("sound format {other}"))),
    }
}

/// The picture size from an `AVCDecoderConfigurationRecord`'s first SPS.
fn avc_dimensions(record: &[u8]) -> Result<(u32, u32), CodecError> {
    use h264_reader::avcc::AvcDecoderConfigurationRecord;
    use h264_reader::nal::Nal;
    let record = AvcDecoderConfigurationRecord::try_from(record).map_err(|_| CodecError::BadSequenceHeader)?;
    let sps = record
        .sequence_parameter_sets()
        .next()
        .ok_or(CodecError::BadSequenceHeader)?
        .map_err(|_| CodecError::BadSequenceHeader)?;
    let nal = h264_reader::nal::RefNal::new(sps, &[], true);
    let sps = h264_reader::nal::sps::SeqParameterSet::from_bits(nal.rbsp_bits())
        .map_err(|_| CodecError::BadSequenceHeader)?;
    sps.pixel_dimensions().map_err(|_| CodecError::BadSequenceHeader)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An AVC sequence header for 640×360 High profile, as ffmpeg's libx264 writes it.
    pub(crate) const SEQUENCE_HEADER_640X360: &[u8] = &[
        0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1e, 0xac,
        0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f,
        0x16, 0x2d, 0x96, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8, 0xf8, 0x00,
    ];

    #[test]
    fn tag_layout() {
        let t = tag(TagKind::Video, 0x0102_0304, b"abc").unwrap();
        assert_eq!(&t[..11], &[9, 0, 0, 3, 0x02, 0x03, 0x04, 0x01, 0, 0, 0]);
        assert_eq!(&t[11..14], b"abc");
        assert_eq!(&t[14..], &14u32.to_be_bytes());
        assert!(tag(TagKind::Audio, 0, &vec![0; 1 << 24]).is_none());
    }

    #[test]
    fn codecs() {
        assert_eq!(video(SEQUENCE_HEADER_640X360), Ok(Video::SequenceHeader { width: 640, height: 360 }));
        assert_eq!(video(&[0x17, 1, 0, 0, 0]), Ok(Video::Frame { key: true }));
        assert_eq!(video(&[0x27, 1, 0, 0, 0]), Ok(Video::Frame { key: false }));
        assert!(matches!(video(&[0x1c, 0]), Err(CodecError::Video(c)) if c == "HEVC"));
        assert!(matches!(video(&[0x90, b'h', b'v', b'c', b'1']), Err(CodecError::Video(c)) if c.contains("hvc1")));
        assert_eq!(video(&[0x17, 0, 0, 0, 0, 1, 2]), Err(CodecError::BadSequenceHeader));
        assert_eq!(audio(&[0xaf, 0x00, 0x12, 0x10]), Ok(()));
        assert!(audio(&[0x2f]).is_err());
    }
}
