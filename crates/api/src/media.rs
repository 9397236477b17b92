//! Media delivery: HLS playlists and segments, posters and storyboards, under signed URLs.
//!
//! A media URL is `/media/{expiry}-{signature}/videos/{id}/…`: the signature is an HMAC of the
//! video id and the expiry, with a key derived from the instance's cookie secret (so every API
//! server shares it). The API hands such URLs only to viewers allowed to see the video, so a
//! segment request is checked by arithmetic alone — no database query, no session lookup.
//! Expiries are rounded to [`WINDOW`] boundaries so everyone watching a public video in the same
//! window gets the same URLs (caches share them). A URL keeps working until its expiry even if
//! the video turns private meanwhile: at most two windows.
//!
//! The path after the video id is parsed into a [`StorageKey`] from numbers and fixed names only;
//! nothing a client typed reaches the store. Responses carry the right content type, honour a
//! single byte range, and mark segments `immutable`. On plain HTTP/1.1 connections to a local
//! store, [`MediaFiles`] answers the same requests with `sendfile(2)`.

use crate::ApiState;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use futures::TryStreamExt;
use ring::hmac;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use turtlemen_db::videos::Video;
use turtlemen_http::ApiError;
use turtlemen_http::files::{FileReply, FileResponder};
use turtlemen_storage::{ByteRange, Segment, StorageError, StorageKey, VideoOutput};
use uuid::Uuid;

/// Media URLs are valid for one to two of these.
pub const WINDOW: Duration = Duration::from_secs(6 * 3600);

/// The key media URLs are signed with.
#[derive(Clone)]
pub struct MediaSigner {
    key: hmac::Key,
}

impl MediaSigner {
    /// Derives the media key from the instance's cookie secret.
    pub fn from_secret(secret: &[u8]) -> MediaSigner {
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), b"turtlemen media urls v1");
        MediaSigner { key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()) }
    }

    /// A key for another purpose, derived from the media key with `label` (so one secret
    /// serves several uses without a token of one passing for another).
    pub fn derive(&self, label: &[u8]) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&self.key, label).as_ref())
    }

    fn signature(&self, video: Uuid, expiry: u64) -> String {
        let mut msg = Vec::with_capacity(24);
        msg.extend_from_slice(video.as_bytes());
        msg.extend_from_slice(&expiry.to_be_bytes());
        let tag = hmac::sign(&self.key, &msg);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// The token for `video`, valid until the end of the window after the current one.
    pub fn token(&self, video: Uuid, now: SystemTime) -> String {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let window = WINDOW.as_secs();
        let expiry = (now / window + 2) * window;
        format!("{expiry}-{}", self.signature(video, expiry))
    }

    /// Whether `token` grants `video` at `now`.
    pub fn verify(&self, token: &str, video: Uuid, now: SystemTime) -> bool {
        let Some((expiry, signature)) = token.split_once('-') else { return false };
        if expiry.is_empty() || expiry.len() > 12 || !expiry.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        let Ok(expiry) = expiry.parse::<u64>() else { return false };
        if now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() >= expiry {
            return false;
        }
        let Ok(given) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature) else { return false };
        let mut msg = Vec::with_capacity(24);
        msg.extend_from_slice(video.as_bytes());
        msg.extend_from_slice(&expiry.to_be_bytes());
        hmac::verify(&self.key, &msg, &given).is_ok()
    }
}

/// The signed base URL of the media version a video serves (no trailing slash):
/// `/media/{token}/videos/{id}`, then `/versions/{n}` once it was transcoded again.
pub fn base_url(st: &ApiState, v: &Video) -> String {
    base_url_of(st, v.id, v.media_version)
}

/// [`base_url`] of the video `id` at `media_version`.
pub fn base_url_of(st: &ApiState, id: Uuid, media_version: u32) -> String {
    let token = st.media.token(id, SystemTime::now());
    match media_version {
        0 => format!("/media/{token}/videos/{id}"),
        n => format!("/media/{token}/videos/{id}/versions/{n}"),
    }
}

pub fn routes() -> Router<ApiState> {
    Router::new().route("/media/{token}/videos/{id}/{*rest}", get(serve))
}

/// What kind of file a media path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Playlist,
    InitSegment,
    Segment,
    Jpeg,
    Vtt,
}

impl Kind {
    fn content_type(self) -> &'static str {
        match self {
            Kind::Playlist => "application/vnd.apple.mpegurl",
            Kind::InitSegment => "video/mp4",
            Kind::Segment => "video/iso.segment",
            Kind::Jpeg => "image/jpeg",
            Kind::Vtt => "text/vtt; charset=utf-8",
        }
    }

    fn cache_control(self) -> &'static str {
        match self {
            // Segment names never change content; playlists grow while the video processes.
            Kind::InitSegment | Kind::Segment => "public, max-age=31536000, immutable",
            Kind::Playlist => "public, max-age=1",
            Kind::Jpeg | Kind::Vtt => "public, max-age=3600",
        }
    }
}

/// `seg-00042.m4s` → 42.
fn segment_number(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".m4s")?;
    (digits.len() == 5 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

/// `720p` → 720.
fn rendition_height(name: &str) -> Option<u32> {
    let digits = name.strip_suffix('p')?;
    (!digits.is_empty() && digits.len() <= 4 && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0'))
        .then(|| digits.parse().ok())?
}

/// `3` → 3: a media version after the first (no sign, no leading zero, not 0).
fn media_version(text: &str) -> Option<u32> {
    (!text.is_empty() && text.len() <= 9 && text.bytes().all(|b| b.is_ascii_digit()) && !text.starts_with('0'))
        .then(|| text.parse().ok())?
}

/// The stored object a media path names, built from numbers and fixed names only. The path may
/// start with `versions/{n}/`: the n-th re-transcode's output ([`VideoOutput`]).
fn key_for(id: Uuid, rest: &str) -> Option<(StorageKey, Kind)> {
    let (output, rest) = match rest.strip_prefix("versions/") {
        Some(versioned) => {
            let (n, rest) = versioned.split_once('/')?;
            (VideoOutput { video_id: id, version: media_version(n)? }, rest)
        }
        None => (VideoOutput::first(id), rest),
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["poster.jpg"] => Some((output.poster(), Kind::Jpeg)),
        ["storyboard.jpg"] => Some((output.storyboard(), Kind::Jpeg)),
        ["storyboard.vtt"] => Some((output.storyboard_vtt(), Kind::Vtt)),
        ["hls", "master.m3u8"] => Some((output.hls().join(Segment::fixed("master.m3u8")), Kind::Playlist)),
        ["hls", rendition, file] => {
            let folder = if *rendition == "audio" {
                output.audio_rendition()
            } else {
                output.rendition(rendition_height(rendition)?)
            };
            match *file {
                "playlist.m3u8" => Some((folder.join(Segment::fixed("playlist.m3u8")), Kind::Playlist)),
                "init.mp4" => Some((folder.join(Segment::fixed("init.mp4")), Kind::InitSegment)),
                name => segment_number(name).map(|n| (folder.join(Segment::numbered("seg", n, "m4s")), Kind::Segment)),
            }
        }
        _ => None,
    }
}

/// `Range: bytes=…` with one range; anything else is ignored (the whole object is sent).
fn parse_range(headers: &HeaderMap) -> Option<ByteRange> {
    let spec = headers.get(header::RANGE)?.to_str().ok()?.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let num = |s: &str| {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u64>().ok())?
    };
    match (start.trim(), end.trim()) {
        ("", suffix) => num(suffix).map(ByteRange::Last),
        (s, "") => num(s).map(ByteRange::From),
        (s, e) => {
            let (s, e) = (num(s)?, num(e)?);
            (s <= e).then(|| ByteRange::Bounded(s..e.saturating_add(1)))
        }
    }
}

async fn serve(
    State(st): State<ApiState>,
    Path((token, id, rest)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found())?;
    if !st.media.verify(&token, id, SystemTime::now()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "media_link_invalid",
            "This media link is invalid or has expired.",
        ));
    }
    let (key, kind) = key_for(id, &rest).ok_or_else(ApiError::not_found)?;
    let range = parse_range(&headers);
    let ranged = range.is_some();
    let read = match st.storage.get(&key, range).await {
        Ok(read) => read,
        Err(StorageError::NotFound(_)) => return Err(ApiError::not_found()),
        Err(StorageError::RangeNotSatisfiable { size }) => {
            let mut res = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                "The range is outside the file.",
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(res);
        }
        Err(e) => {
            tracing::error!(storage.key = %key, error = %e, "cannot read media");
            return Err(ApiError::unavailable("This file cannot be read right now."));
        }
    };
    let status = if ranged { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    let body = Body::from_stream(read.stream.map_err(std::io::Error::other));
    let mut res = (status, body).into_response();
    *res.headers_mut() = reply_headers(kind, ranged, &read.range, read.size);
    Ok(res)
}

/// The headers of a media answer carrying `range` of an object of `size` bytes.
fn reply_headers(kind: Kind, ranged: bool, range: &std::ops::Range<u64>, size: u64) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(6);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind.content_type()));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(kind.cache_control()));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(range.end - range.start));
    if ranged
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{}", range.start, range.end.saturating_sub(1), size))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    h
}

/// Media answered with `sendfile(2)` on plain connections (see [`turtlemen_http::files`]):
/// the same path grammar, signature check and headers as [`serve`], for a local store. Anything
/// it does not answer with a file — a bad or expired link, a missing file, a range outside it,
/// an escaped path, a query — goes to [`serve`], which renders the error.
pub struct MediaFiles {
    pub signer: std::sync::Arc<MediaSigner>,
    pub storage: turtlemen_storage::Storage,
}

impl FileResponder for MediaFiles {
    fn prefix(&self) -> &str {
        "/media/"
    }

    fn respond(&self, req: &axum::http::Request<()>) -> Option<FileReply> {
        let uri = req.uri();
        // The router decodes escapes; paths with any are left to it.
        if uri.query().is_some() || uri.path().contains('%') {
            return None;
        }
        let (token, rest) = uri.path().strip_prefix("/media/")?.split_once('/')?;
        let (id, rest) = rest.strip_prefix("videos/")?.split_once('/')?;
        let id = Uuid::parse_str(id).ok()?;
        if !self.signer.verify(token, id, SystemTime::now()) {
            return None;
        }
        let (key, kind) = key_for(id, rest)?;
        let range = parse_range(req.headers());
        let file = self.storage.open_local(&key, range.as_ref())?.ok()?;
        let ranged = range.is_some();
        Some(FileReply {
            status: if ranged { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK },
            headers: reply_headers(kind, ranged, &file.range, file.size),
            file: file.file,
            range: file.range,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_video_and_expiry() {
        let signer = MediaSigner::from_secret(b"0123456789abcdef0123456789abcdef");
        let video = Uuid::now_v7();
        let now = SystemTime::now();
        let token = signer.token(video, now);
        assert!(signer.verify(&token, video, now));
        assert!(signer.verify(&token, video, now + WINDOW));
        assert!(!signer.verify(&token, video, now + WINDOW * 2 + Duration::from_secs(1)));
        assert!(!signer.verify(&token, Uuid::now_v7(), now));
        let other = MediaSigner::from_secret(b"another secret of thirty-two bytes!");
        assert!(!other.verify(&token, video, now));
        let (expiry, sig) = token.split_once('-').unwrap();
        let later = format!("{}-{sig}", expiry.parse::<u64>().unwrap() + WINDOW.as_secs());
        assert!(!signer.verify(&later, video, now), "a stretched expiry must not verify");
        for bad in ["", "-", "123", "abc-def", "99999999999999999999-AAAA", &format!("{expiry}-")] {
            assert!(!signer.verify(bad, video, now), "{bad:?}");
        }
    }

    #[test]
    fn media_paths_map_to_keys_from_numbers_and_fixed_names_only() {
        let id = Uuid::nil();
        let k = |rest| {
            key_for(id, rest)
                .map(|(k, _)| k.as_str().trim_start_matches("videos/00000000-0000-0000-0000-000000000000/").to_owned())
        };
        assert_eq!(k("hls/master.m3u8").as_deref(), Some("hls/master.m3u8"));
        assert_eq!(k("hls/720p/playlist.m3u8").as_deref(), Some("hls/720p/playlist.m3u8"));
        assert_eq!(k("hls/720p/seg-00042.m4s").as_deref(), Some("hls/720p/seg-00042.m4s"));
        assert_eq!(k("hls/audio/init.mp4").as_deref(), Some("hls/audio/init.mp4"));
        assert_eq!(k("storyboard.vtt").as_deref(), Some("storyboard.vtt"));
        assert_eq!(k("versions/2/hls/720p/seg-00042.m4s").as_deref(), Some("versions/2/hls/720p/seg-00042.m4s"));
        assert_eq!(k("versions/13/poster.jpg").as_deref(), Some("versions/13/poster.jpg"));
        for bad in [
            "versions/0/hls/master.m3u8",
            "versions/02/hls/master.m3u8",
            "versions//hls/master.m3u8",
            "versions/x/poster.jpg",
            "versions/2",
            "versions/2/original",
            "versions/2/versions/3/poster.jpg",
            "versions/-1/poster.jpg",
            "",
            "original",
            "../original",
            "hls/../original",
            "hls/720p/../../original",
            "hls/0720p/init.mp4",
            "hls/p/init.mp4",
            "hls/720p/seg-1.m4s",
            "hls/720p/seg-000001.m4s",
            "hls/720p/seg-0000a.m4s",
            "hls/720p/init.mp4/x",
            "hls//master.m3u8",
            "HLS/master.m3u8",
            "hls/720p/%2e%2e",
            "poster.jpg/",
        ] {
            assert!(k(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn ranges_are_single_and_well_formed() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(parse_range(&h("bytes=0-99")), Some(ByteRange::Bounded(0..100)));
        assert_eq!(parse_range(&h("bytes=100-")), Some(ByteRange::From(100)));
        assert_eq!(parse_range(&h("bytes=-50")), Some(ByteRange::Last(50)));
        for ignored in
            ["bytes=5-1", "bytes=0-1,5-9", "items=0-1", "bytes=a-b", "bytes=-", "bytes=99999999999999999999-"]
        {
            assert_eq!(parse_range(&h(ignored)), None, "{ignored}");
        }
    }
}
