//! The live ingest's FLV tag bodies (`turtlemen_live::flv`): an encoder's audio and video
//! messages, whose first bytes name the codec and, for H.264, carry the sequence header the
//! picture size is read from; and the FLV tags they are re-muxed into.
//!
//! Holds: a refusal is a typed `CodecError`; a size read from a sequence header is a picture
//! (both sides at least one pixel); a tag reads back as the kind, time and body it was made of.

use turtlemen_live::flv::{self, TagKind, Video};

pub fn run(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let kind = if pick & 1 == 0 { TagKind::Video } else { TagKind::Audio };
    match kind {
        TagKind::Video => {
            if let Ok(Video::SequenceHeader { width, height }) = flv::video(body) {
                assert!(width >= 1 && height >= 1, "a {width}×{height} picture");
            }
        }
        TagKind::Audio => {
            let _ = flv::audio(body);
        }
    }
    let timestamp = u32::from(pick).wrapping_mul(0x0101_0101);
    let tag = flv::tag(kind, timestamp, body).expect("bodies here are under 16 MiB");
    assert_eq!(read_tag(&tag), (kind as u8, timestamp, body));
}

/// An FLV tag's type, time and body, checking its sizes.
fn read_tag(tag: &[u8]) -> (u8, u32, &[u8]) {
    let be24 = |b: &[u8]| u32::from_be_bytes([0, b[0], b[1], b[2]]);
    let size = be24(&tag[1..4]) as usize;
    let time = be24(&tag[4..7]) | u32::from(tag[7]) << 24;
    assert_eq!(be24(&tag[8..11]), 0, "stream id");
    assert_eq!(tag.len(), 11 + size + 4);
    let previous = u32::from_be_bytes(tag[11 + size..].try_into().expect("4 bytes"));
    assert_eq!(previous as usize, 11 + size);
    (tag[0], time, &tag[11..11 + size])
}
