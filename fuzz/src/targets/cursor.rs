//! Pagination cursors (`turtlemen_api::cursor`), which come back from clients in `?cursor=`.
//!
//! Holds: text that is no cursor is refused with 400 `invalid_cursor`; a cursor accepted is
//! exactly the text the server would print for its position (no second spelling); a position
//! encoded decodes to itself, for its own list only, and any change to its text is refused.

use ring::hmac;
use turtlemen_api::cursor::{Kind, decode_with, encode_with};
use uuid::Uuid;

const KINDS: [Kind; 16] = [
    Kind::Feed,
    Kind::Subscriptions,
    Kind::ChannelNewest,
    Kind::ChannelViews,
    Kind::Notifications,
    Kind::Lives,
    Kind::CommentsNewest,
    Kind::CommentsTop,
    Kind::CommentReplies,
    Kind::HeldComments,
    Kind::Reports,
    Kind::ChatReplay,
    Kind::PlaylistItems,
    Kind::Liked,
    Kind::History,
    Kind::ChannelPlaylists,
];

pub fn run(data: &[u8]) {
    let key = hmac::Key::new(hmac::HMAC_SHA256, b"fuzzing cursor key");
    if let Ok(text) = std::str::from_utf8(data) {
        for kind in KINDS {
            match decode_with(&key, kind, text) {
                Ok((k, id)) => assert_eq!(encode_with(&key, kind, k, id), text, "a second spelling"),
                Err(e) => {
                    assert_eq!(e.status.as_u16(), 400);
                    assert_eq!(e.body.error, "invalid_cursor");
                }
            }
        }
    }
    // A position from the bytes: kind, key, id, then an edit (position, xor) to its text.
    if data.len() < 1 + 8 + 16 {
        return;
    }
    let kind = KINDS[usize::from(data[0]) % KINDS.len()];
    let k = i64::from_be_bytes(data[1..9].try_into().expect("8 bytes"));
    let id = Uuid::from_slice(&data[9..25]).expect("16 bytes");
    let text = encode_with(&key, kind, k, id);
    assert_eq!(decode_with(&key, kind, &text).ok(), Some((k, id)));
    for other in KINDS.iter().filter(|o| **o != kind) {
        assert!(decode_with(&key, *other, &text).is_err(), "a cursor read by another list");
    }
    if let [at, xor, ..] = data[25..] {
        let mut edited = text.clone().into_bytes();
        let at = usize::from(at) % edited.len();
        edited[at] ^= xor;
        if let Ok(edited) = String::from_utf8(edited)
            && edited != text
        {
            assert!(decode_with(&key, kind, &edited).is_err(), "an edited cursor was accepted: {edited}");
        }
    }
}
