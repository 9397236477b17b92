//! Object keys: where each stored object lives, built only from ids and fixed path segments.
//!
//! A [`StorageKey`] is a `/`-separated list of [`Segment`]s, and a segment comes only from a
//! literal checked by [`Segment::fixed`] (at compile time in a `const`), a UUID, or a number
//! formatted here. So a key can never climb out of its folder (`..`), name another folder
//! (`/`, `\`), hide (`.name`) or smuggle control characters — whatever a user typed.
//!
//! This module must never gain a constructor that takes a runtime string.

use std::borrow::Cow;
use uuid::Uuid;

/// The longest segment.
pub const MAX_SEGMENT_BYTES: usize = 128;

/// One path segment: lowercase ASCII letters, digits, `-`, `_` and `.`, not starting with `.`,
/// 1 to 128 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Segment(Cow<'static, str>);

impl Segment {
    /// A literal segment; panics (at compile time in a `const`) unless [`Segment::is_safe`].
    pub const fn fixed(s: &'static str) -> Segment {
        assert!(Self::is_safe(s), "a storage key segment is [a-z0-9._-]+, not starting with '.'");
        Segment(Cow::Borrowed(s))
    }

    /// Whether `s` may be a segment.
    pub const fn is_safe(s: &str) -> bool {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > MAX_SEGMENT_BYTES || b[0] == b'.' {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_' || c == b'.') {
                return false;
            }
            i += 1;
        }
        true
    }

    /// An id, hyphenated lowercase.
    pub fn id(id: Uuid) -> Segment {
        Segment(Cow::Owned(id.hyphenated().to_string()))
    }

    /// `{stem}-{n:05}.{ext}`, e.g. `seg-00001.m4s`.
    pub fn numbered(stem: &'static str, n: u32, ext: &'static str) -> Segment {
        let s = format!("{}-{n:05}.{}", Segment::fixed(stem).0, Segment::fixed(ext).0);
        Segment(Cow::Owned(s))
    }

    /// `{n}{suffix}`, e.g. `720p`.
    pub fn number(n: u32, suffix: &'static str) -> Segment {
        if suffix.is_empty() {
            return Segment(Cow::Owned(n.to_string()));
        }
        Segment(Cow::Owned(format!("{n}{}", Segment::fixed(suffix).0)))
    }

    /// A byte offset, zero-padded to 20 digits so that names sort as numbers do.
    pub fn offset(n: u64) -> Segment {
        Segment(Cow::Owned(format!("{n:020}")))
    }

    /// `{stem}-{version}-{width}.{ext}`, e.g. `avatar-81723-256.jpg`.
    pub fn versioned(stem: &'static str, version: u64, width: u32, ext: &'static str) -> Segment {
        let s = format!("{}-{version}-{width}.{}", Segment::fixed(stem).0, Segment::fixed(ext).0);
        Segment(Cow::Owned(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where an object (or, as a prefix, a folder of objects) lives in the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StorageKey(String);

const VIDEOS: Segment = Segment::fixed("videos");
const ORIGINAL: Segment = Segment::fixed("original");
const HLS: Segment = Segment::fixed("hls");
const AUDIO: Segment = Segment::fixed("audio");
const POSTER: Segment = Segment::fixed("poster.jpg");
const STORYBOARD: Segment = Segment::fixed("storyboard.jpg");
const STORYBOARD_VTT: Segment = Segment::fixed("storyboard.vtt");
const CHANNELS: Segment = Segment::fixed("channels");
const UPLOADS: Segment = Segment::fixed("uploads");
const VERSIONS: Segment = Segment::fixed("versions");

impl StorageKey {
    /// A top-level key (an area such as `videos`).
    pub fn root(area: Segment) -> StorageKey {
        StorageKey(area.0.into_owned())
    }

    /// This key with one more segment.
    pub fn join(&self, segment: Segment) -> StorageKey {
        StorageKey(format!("{}/{}", self.0, segment.0))
    }

    /// `videos/{id}`: everything stored for one video (delete it with `delete_prefix`).
    pub fn video(id: Uuid) -> StorageKey {
        StorageKey::root(VIDEOS).join(Segment::id(id))
    }

    /// `videos/{id}/original`: the uploaded file as received.
    pub fn video_original(id: Uuid) -> StorageKey {
        StorageKey::video(id).join(ORIGINAL)
    }

    /// `videos/{id}/hls`: the HLS output (master playlist and one folder per rendition) of the
    /// first transcode ([`VideoOutput::first`]).
    pub fn video_hls(id: Uuid) -> StorageKey {
        VideoOutput::first(id).hls()
    }

    /// `videos/{id}/hls/{height}p`: one rendition's playlist and segments (first transcode).
    pub fn video_rendition(id: Uuid, height: u32) -> StorageKey {
        VideoOutput::first(id).rendition(height)
    }

    /// `videos/{id}/hls/audio`: the one rendition of an audio-only video (first transcode).
    pub fn video_audio_rendition(id: Uuid) -> StorageKey {
        VideoOutput::first(id).audio_rendition()
    }

    /// `videos/{id}/poster.jpg`: the still shown before playback (first transcode).
    pub fn video_poster(id: Uuid) -> StorageKey {
        VideoOutput::first(id).poster()
    }

    /// `videos/{id}/storyboard.jpg`: the sprite of seek-preview tiles (first transcode).
    pub fn video_storyboard(id: Uuid) -> StorageKey {
        VideoOutput::first(id).storyboard()
    }

    /// `videos/{id}/storyboard.vtt`: the WebVTT track naming a tile of the sprite per time range
    /// (first transcode).
    pub fn video_storyboard_vtt(id: Uuid) -> StorageKey {
        VideoOutput::first(id).storyboard_vtt()
    }

    /// `channels/{id}`: everything stored for one channel.
    pub fn channel(id: Uuid) -> StorageKey {
        StorageKey::root(CHANNELS).join(Segment::id(id))
    }

    /// `channels/{id}/{picture}-{version}-{width}.jpg`: one rendition of a channel's avatar or
    /// banner (`picture` is a literal such as `avatar`).
    pub fn channel_picture(id: Uuid, picture: &'static str, version: u64, width: u32) -> StorageKey {
        StorageKey::channel(id).join(Segment::versioned(picture, version, width, "jpg"))
    }

    /// `uploads/{id}`: where an upload in progress is staged. On local disk the staging file
    /// itself (beside the media, so that it is shared wherever the media is and its move into
    /// place is a rename); on S3 the prefix of its segments ([`StorageKey::upload_segment`]).
    pub fn upload(id: Uuid) -> StorageKey {
        StorageKey::root(UPLOADS).join(Segment::id(id))
    }

    /// `uploads/{id}/{start:020}`: the bytes of an upload from offset `start` on, staged in an
    /// object store.
    pub fn upload_segment(id: Uuid, start: u64) -> StorageKey {
        StorageKey::upload(id).join(Segment::offset(start))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn path(&self) -> object_store::path::Path {
        // Every segment is already a valid object_store path part, so nothing is re-encoded.
        object_store::path::Path::from(self.0.as_str())
    }
}

/// Everything one transcode of a video stores (HLS, poster, storyboard), as one *version*: the
/// first transcode is version 0, under `videos/{id}` itself (where it always was); a
/// re-transcode writes version `n` under `videos/{id}/versions/{n}`, beside the version being
/// served, so viewers keep watching the old one until the new one is published in its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VideoOutput {
    pub video_id: Uuid,
    pub version: u32,
}

impl VideoOutput {
    /// The output of the first transcode (version 0).
    pub fn first(video_id: Uuid) -> VideoOutput {
        VideoOutput { video_id, version: 0 }
    }

    /// `videos/{id}` for version 0, else `videos/{id}/versions/{n}`: the folder the version's
    /// files live in (for version 0 it holds the original and other versions too: never delete
    /// it as a prefix; [`VideoOutput::hls`] and the fixed files are the version's own).
    pub fn root(&self) -> StorageKey {
        let video = StorageKey::video(self.video_id);
        if self.version == 0 { video } else { video.join(VERSIONS).join(Segment::number(self.version, "")) }
    }

    /// The HLS output: the master playlist and one folder per rendition.
    pub fn hls(&self) -> StorageKey {
        self.root().join(HLS)
    }

    /// One rendition's playlist and segments, `{height}p`.
    pub fn rendition(&self, height: u32) -> StorageKey {
        self.hls().join(Segment::number(height, "p"))
    }

    /// The one rendition of an audio-only video.
    pub fn audio_rendition(&self) -> StorageKey {
        self.hls().join(AUDIO)
    }

    /// The still shown before playback.
    pub fn poster(&self) -> StorageKey {
        self.root().join(POSTER)
    }

    /// The sprite of seek-preview tiles.
    pub fn storyboard(&self) -> StorageKey {
        self.root().join(STORYBOARD)
    }

    /// The WebVTT track naming a tile of the sprite per time range.
    pub fn storyboard_vtt(&self) -> StorageKey {
        self.root().join(STORYBOARD_VTT)
    }
}

impl From<Uuid> for VideoOutput {
    /// A video's first transcode.
    fn from(video_id: Uuid) -> VideoOutput {
        VideoOutput::first(video_id)
    }
}

impl std::fmt::Display for StorageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_segments_cannot_be_expressed() {
        let hostile = [
            "", ".", "..", "/", "a/b", "../etc", "\\", "a\\b", "\0", "a\0b", ".hidden", "a b", "a\nb", "A", "é",
            "%2e%2e", "a#1", "a?b", "~", "*",
        ];
        for s in hostile {
            assert!(!Segment::is_safe(s), "{s:?} passed");
            let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
            assert!(std::panic::catch_unwind(|| Segment::fixed(leaked)).is_err(), "{s:?} built a segment");
        }
        assert!(!Segment::is_safe(&"a".repeat(MAX_SEGMENT_BYTES + 1)));
        assert!(std::panic::catch_unwind(|| Segment::numbered("../seg", 1, "m4s")).is_err());
        assert!(std::panic::catch_unwind(|| Segment::numbered("seg", 1, "m4s/..")).is_err());
        assert!(std::panic::catch_unwind(|| Segment::number(1, "/..")).is_err());
    }

    #[test]
    fn keys_follow_the_layout() {
        let id = Uuid::parse_str("0192f0c1-7a1b-7c3d-8e4f-5a6b7c8d9e0f").unwrap();
        assert_eq!(StorageKey::video_original(id).as_str(), "videos/0192f0c1-7a1b-7c3d-8e4f-5a6b7c8d9e0f/original");
        let seg = StorageKey::video_rendition(id, 720).join(Segment::numbered("seg", 1, "m4s"));
        assert_eq!(seg.as_str(), "videos/0192f0c1-7a1b-7c3d-8e4f-5a6b7c8d9e0f/hls/720p/seg-00001.m4s");
        assert_eq!(
            StorageKey::video_audio_rendition(id).as_str(),
            "videos/0192f0c1-7a1b-7c3d-8e4f-5a6b7c8d9e0f/hls/audio"
        );
        assert_eq!(StorageKey::video_poster(id).as_str(), "videos/0192f0c1-7a1b-7c3d-8e4f-5a6b7c8d9e0f/poster.jpg");
        assert_eq!(
            StorageKey::video_storyboard(id).as_str(),
            "videos/0192f0c1-7a1b-7c3d-8e4f-5a6b7c8d9e0f/storyboard.jpg"
        );
        assert_eq!(
            StorageKey::video_storyboard_vtt(id).as_str(),
            "videos/0192f0c1-7a1b-7c3d-8e4f-5a6b7c8d9e0f/storyboard.vtt"
        );
        let v2 = VideoOutput { video_id: id, version: 2 };
        assert_eq!(v2.rendition(720).as_str(), "videos/0192f0c1-7a1b-7c3d-8e4f-5a6b7c8d9e0f/versions/2/hls/720p");
        assert_eq!(v2.poster().as_str(), "videos/0192f0c1-7a1b-7c3d-8e4f-5a6b7c8d9e0f/versions/2/poster.jpg");
        assert_eq!(VideoOutput::first(id).hls(), StorageKey::video_hls(id));
        assert_eq!(
            StorageKey::channel_picture(id, "avatar", 42, 256).as_str(),
            "channels/0192f0c1-7a1b-7c3d-8e4f-5a6b7c8d9e0f/avatar-42-256.jpg"
        );
        assert!(std::panic::catch_unwind(|| Segment::versioned("../avatar", 1, 2, "jpg")).is_err());
        assert_eq!(
            StorageKey::upload_segment(id, 67_108_864).as_str(),
            "uploads/0192f0c1-7a1b-7c3d-8e4f-5a6b7c8d9e0f/00000000000067108864"
        );
        assert_eq!(
            StorageKey::root(Segment::fixed("thumbnails")).join(Segment::number(3, "")).as_str(),
            "thumbnails/3"
        );
    }

    #[test]
    fn every_key_is_a_canonical_object_path() {
        let keys = [
            StorageKey::video(Uuid::now_v7()),
            StorageKey::video_original(Uuid::new_v4()),
            StorageKey::video_rendition(Uuid::nil(), 2160).join(Segment::numbered("seg", u32::MAX, "m4s")),
            StorageKey::upload_segment(Uuid::now_v7(), u64::MAX),
        ];
        for key in keys {
            let parsed = object_store::path::Path::parse(key.as_str()).unwrap();
            assert_eq!(parsed.as_ref(), key.as_str());
            assert_eq!(key.path().as_ref(), key.as_str());
            assert!(key.as_str().split('/').all(Segment::is_safe), "{key}");
        }
    }
}
