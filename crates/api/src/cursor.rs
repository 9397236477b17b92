//! Opaque, tamper-proof pagination cursors for keyset-paged lists (the feed, a user's
//! subscriptions, a channel's videos, a user's notifications, a video's comments and replies).
//!
//! A cursor is `base64url(kind ‖ key ‖ id ‖ tag)`: `kind` names the list it belongs to, `key`
//! is the sort key of the last row shown (a time in nanoseconds or a count, 8 bytes big-endian),
//! `id` the last row's UUID, and `tag` an HMAC-SHA256 over the rest with a
//! key derived from the media key (shared by every API server). Anything else — wrong length,
//! bad base64, another kind of list's cursor, a changed byte — is refused with 400
//! `invalid_cursor`, so a client cannot forge a position. A cursor is not bound to one
//! channel or user: taken to another list of the same kind it is only a position there, and
//! shows nothing the caller could not page to anyway.

use crate::ApiState;
use base64::Engine;
use chrono::{DateTime, Utc};
use ring::hmac;
use turtlemen_http::ApiError;
use uuid::Uuid;

const TAG_LEN: usize = 32;
const BODY_LEN: usize = 1 + 8 + 16;
/// Longer text than this is no cursor of ours.
const MAX_TEXT: usize = 100;

/// Which list a cursor pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Feed = 1,
    Subscriptions = 2,
    ChannelNewest = 3,
    ChannelViews = 4,
    Notifications = 5,
    Lives = 16,
    /// A video's comments, newest first (the key is unused: ids are UUID v7, ordered by time).
    CommentsNewest = 20,
    /// A video's comments, most liked first (the key is the like count).
    CommentsTop = 21,
    /// A thread's replies, oldest first.
    CommentReplies = 22,
    /// An owner's held comments.
    HeldComments = 23,
    Reports = 24,
    /// A live's chat in stream order (the key is the stream time in milliseconds).
    ChatReplay = 25,
    PlaylistItems = 6,
    Liked = 7,
    History = 8,
    ChannelPlaylists = 9,
}

fn key(st: &ApiState) -> hmac::Key {
    st.media.derive(b"turtlemen pagination cursors v1")
}

fn invalid() -> ApiError {
    ApiError::bad_request("invalid_cursor", "The cursor is not one this server gave out; start from the first page.")
}

/// The cursor after a row whose sort key is `key` and id `id`.
pub fn encode(st: &ApiState, kind: Kind, key_value: i64, id: Uuid) -> String {
    encode_with(&key(st), kind, key_value, id)
}

/// [`encode`] with the HMAC key given (the fuzz target's way in).
pub fn encode_with(hmac_key: &hmac::Key, kind: Kind, key_value: i64, id: Uuid) -> String {
    let mut bytes = Vec::with_capacity(BODY_LEN + TAG_LEN);
    bytes.push(kind as u8);
    bytes.extend_from_slice(&key_value.to_be_bytes());
    bytes.extend_from_slice(id.as_bytes());
    let tag = hmac::sign(hmac_key, &bytes);
    bytes.extend_from_slice(tag.as_ref());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The position a cursor of `kind` names, or 400.
pub fn decode(st: &ApiState, kind: Kind, text: &str) -> Result<(i64, Uuid), ApiError> {
    decode_with(&key(st), kind, text)
}

/// [`decode`] with the HMAC key given (the fuzz target's way in).
pub fn decode_with(hmac_key: &hmac::Key, kind: Kind, text: &str) -> Result<(i64, Uuid), ApiError> {
    if text.len() > MAX_TEXT {
        return Err(invalid());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
    if bytes.len() != BODY_LEN + TAG_LEN || bytes[0] != kind as u8 {
        return Err(invalid());
    }
    let (body, tag) = bytes.split_at(BODY_LEN);
    // Compared in constant time by ring.
    hmac::verify(hmac_key, body, tag).map_err(|_| invalid())?;
    let mut k = [0u8; 8];
    k.copy_from_slice(&body[1..9]);
    let id = Uuid::from_slice(&body[9..]).map_err(|_| invalid())?;
    Ok((i64::from_be_bytes(k), id))
}

/// A time as a cursor key (nanoseconds since 1970; times past 2262 saturate).
pub fn time_key(at: DateTime<Utc>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// The time a cursor key names.
pub fn key_time(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

/// Decodes an optional `?cursor=` of a time-ordered list.
pub fn decode_time(st: &ApiState, kind: Kind, text: Option<&str>) -> Result<Option<(DateTime<Utc>, Uuid)>, ApiError> {
    text.filter(|t| !t.is_empty()).map(|t| decode(st, kind, t).map(|(k, id)| (key_time(k), id))).transpose()
}
