//! A channel's avatar and banner: uploaded, re-encoded, stored under a version, served for ever.
//!
//! - `PUT /api/v1/channels/{handle}/avatar|banner`: the raw image as the body, with an `image/*`
//!   `Content-Type` (a type no cross-site form or simple request can send, so a signed-in
//!   browser cannot be made to upload one) — by the owner, or an admin acting as one
//!   ([`crate::channels::check_manage`]); checked before a byte of the body is read. The body is
//!   read in chunks and refused past [`MAX_BYTES`] (413), then [`turtlemen_images`] checks the
//!   header, decodes and re-encodes it at fixed sizes (4xx with the image crate's reason).
//! - `DELETE` the same: back to the placeholder. Both answer the channel's JSON.
//! - `GET /media/channels/{id}/{avatar|banner}-{version}-{width}.jpg`: anyone; no query, the
//!   name is parsed into a [`StorageKey`] from a UUID, a literal and numbers. A new upload takes
//!   a new random version, so a URL's bytes never change (`immutable`) and the page links the
//!   new one at once; the files of the version it replaced are deleted.
//!
//! Order of an upload: renditions stored under the new version, then the version swapped in
//! the row (compare and set, so of two uploads at once each knows which files lost their name),
//! then the replaced files deleted. A crash between the steps leaves unnamed files, never a
//! name without files.

use crate::ApiState;
use crate::channels::{self, ChannelJson};
use crate::identity::{ChannelsWrite, CurrentUser, Scoped};
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures::TryStreamExt;
use turtlemen_db::channels::{self as rows, Channel, Picture};
use turtlemen_http::{ApiError, ErrorBody};
use turtlemen_images::{ImageError, Kind};
use turtlemen_storage::{StorageError, StorageKey};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub use turtlemen_images::MAX_BYTES;

/// The picture operations, each with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(put_avatar, delete_avatar))
        .routes(routes!(put_banner, delete_banner))
        // The handlers cap the body themselves, with a reason.
        .layer(DefaultBodyLimit::disable())
}

/// The public route serving the stored renditions.
pub fn media_routes() -> Router<ApiState> {
    Router::new().route("/media/channels/{id}/{file}", get(serve))
}

/// The processor an API server uses: [`turtlemen_images::DEFAULT_CONCURRENCY`] decodes at once.
pub fn processor() -> turtlemen_images::Processor {
    turtlemen_images::Processor::default()
}

fn kind(picture: Picture) -> Kind {
    match picture {
        Picture::Avatar => Kind::Avatar,
        Picture::Banner => Kind::Banner,
    }
}

fn stem(picture: Picture) -> &'static str {
    kind(picture).as_str()
}

/// The URL of one rendition.
pub fn url(channel: Uuid, picture: Picture, version: i64, width: u32) -> String {
    format!("/media/channels/{channel}/{}-{version}-{width}.jpg", stem(picture))
}

/// The URL of the largest rendition of `c`'s `picture`, if it has one.
pub fn largest_url(c: &Channel, picture: Picture) -> Option<String> {
    let (width, _) = kind(picture).sizes()[0];
    c.picture_version(picture).map(|v| url(c.id, picture, v, width))
}

/// The URL of `channel`'s avatar rendition at least `width` pixels wide (the largest if none).
pub fn avatar_url(channel: Uuid, version: Option<i64>, width: u32) -> Option<String> {
    let sizes = Kind::Avatar.sizes();
    let w = sizes.iter().rev().map(|&(w, _)| w).find(|&w| w >= width).unwrap_or(sizes[0].0);
    version.map(|v| url(channel, Picture::Avatar, v, w))
}

fn key(channel: Uuid, picture: Picture, version: i64, width: u32) -> StorageKey {
    StorageKey::channel_picture(channel, stem(picture), version.unsigned_abs(), width)
}

/// The refusal of a body past [`MAX_BYTES`].
pub fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("An image may be at most {} MiB; send a smaller file.", MAX_BYTES / (1024 * 1024)),
    )
}

/// An image the processor refused, as a 4xx with its reason (or a 500 for our own failure).
pub fn refused(e: ImageError) -> ApiError {
    if e.is_client_error() {
        let status = match e {
            ImageError::TooManyPixels { .. } | ImageError::TooMuchMemory => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, e.code(), e.to_string())
    } else {
        ApiError::internal(&e)
    }
}

/// Appends the chunks of a body to `into`, refusing past [`MAX_BYTES`] without reading further.
pub async fn read_capped<S, E>(mut body: S, into: &mut Vec<u8>) -> Result<(), ApiError>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| ApiError::bad_request("invalid_body", format!("The request body could not be read: {e}")))?
    {
        if into.len() + chunk.len() > MAX_BYTES {
            return Err(too_large());
        }
        into.extend_from_slice(&chunk);
    }
    Ok(())
}

/// Re-encodes `bytes` and makes it `c`'s `picture`; the replaced files are deleted.
pub async fn store(st: &ApiState, c: &Channel, picture: Picture, bytes: Vec<u8>) -> Result<Channel, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("empty_body", "Send the image file as the request body."));
    }
    let renditions = st.images.process(bytes, kind(picture)).await.map_err(refused)?;
    // Positive and below 2^53, so it survives JSON and JavaScript numbers as it is.
    let version = i64::try_from(Uuid::new_v4().as_u64_pair().0 >> 11).unwrap_or(1).max(1);
    for r in renditions {
        st.storage
            .put_bytes(&key(c.id, picture, version, r.width), Bytes::from(r.jpeg))
            .await
            .map_err(storage_error)?;
    }
    swap(st, c, picture, Some(version)).await
}

/// Removes `c`'s `picture` (nothing to do when it has none).
pub async fn remove(st: &ApiState, c: &Channel, picture: Picture) -> Result<Channel, ApiError> {
    swap(st, c, picture, None).await
}

/// Sets the version (retrying on a concurrent change), then deletes the replaced files.
async fn swap(st: &ApiState, c: &Channel, picture: Picture, new: Option<i64>) -> Result<Channel, ApiError> {
    let mut current = c.clone();
    for _ in 0..5 {
        let old = current.picture_version(picture);
        if rows::swap_picture(&st.db, c.id, picture, old, new).await? {
            if let Some(old) = old.filter(|o| Some(*o) != new) {
                delete_version(st, c.id, picture, old).await;
            }
            return rows::get(&st.db, c.id).await?.ok_or_else(ApiError::not_found);
        }
        current = rows::get(&st.db, c.id).await?.ok_or_else(ApiError::not_found)?;
    }
    if let Some(new) = new {
        delete_version(st, c.id, picture, new).await;
    }
    Err(ApiError::new(StatusCode::CONFLICT, "concurrent_change", "The picture changed meanwhile; try again."))
}

/// Deletes one version's renditions; a failure is logged (the files are merely orphaned).
async fn delete_version(st: &ApiState, channel: Uuid, picture: Picture, version: i64) {
    for &(width, _) in kind(picture).sizes() {
        if let Err(e) = st.storage.delete(&key(channel, picture, version, width)).await {
            tracing::warn!(channel.id = %channel, error = %e, "an old channel picture could not be deleted");
        }
    }
}

fn storage_error(e: StorageError) -> ApiError {
    tracing::error!(error = %e, "storing a channel picture failed");
    ApiError::unavailable("The picture could not be stored; try again.")
}

/// Refuses a body not declared as an image.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_image = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("image/"));
    if is_image {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the image file itself as the body, with its Content-Type (image/png, image/jpeg, image/gif or image/webp).",
        ))
    }
}

/// The channel an upload may change, if the request is acceptable before its body is read.
async fn check_upload(
    st: &ApiState,
    user: &CurrentUser,
    handle: &str,
    headers: &HeaderMap,
) -> Result<Channel, ApiError> {
    let c = channels::find(st, handle).await?;
    channels::check_manage(&c, user)?;
    check_content_type(headers)?;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BYTES as u64) {
        return Err(too_large());
    }
    Ok(c)
}

async fn upload(
    st: ApiState,
    user: CurrentUser,
    handle: String,
    headers: HeaderMap,
    body: Body,
    picture: Picture,
) -> Result<Json<ChannelJson>, ApiError> {
    // Refusals before the body is read still read (some of) it, so the answer reaches the client.
    let c = match check_upload(&st, &user, &handle, &headers).await {
        Ok(c) => c,
        Err(e) => {
            crate::uploads::drain(body).await;
            return Err(e);
        }
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let mut bytes = Vec::with_capacity(declared.map_or(64 * 1024, |n| n.min(MAX_BYTES as u64) as usize));
    let mut stream = body.into_data_stream();
    if let Err(e) = read_capped(&mut stream, &mut bytes).await {
        crate::uploads::drain(Body::from_stream(stream)).await;
        return Err(e);
    }
    let c = store(&st, &c, picture, bytes).await?;
    Ok(Json(ChannelJson::build(&c, None)))
}

async fn delete(
    st: ApiState,
    user: CurrentUser,
    handle: String,
    picture: Picture,
) -> Result<Json<ChannelJson>, ApiError> {
    let c = channels::find(&st, &handle).await?;
    channels::check_manage(&c, &user)?;
    let c = remove(&st, &c, picture).await?;
    Ok(Json(ChannelJson::build(&c, None)))
}

/// Sets the channel's avatar.
#[utoipa::path(put, path = "/channels/{handle}/avatar", tag = "channels",
    summary = "Sets the channel's avatar (256 × 256, 96 × 96 and 48 × 48 JPEG; owner, or an admin with the admin scope).",
    security(("oauth2" = ["channels:write"])),
    params(("handle" = String, Path, description = "The channel's handle (any case).")),
    request_body(description = "The image file itself (PNG, JPEG, GIF or WebP; a still picture; at most 2 MiB and 4096 × 4096 pixels). It is decoded and re-encoded as JPEG at fixed sizes; nothing else of it is kept.",
        content((Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/gif"), (Vec<u8> = "image/webp"))),
    responses(
        (status = 200, description = "The channel, with the new URL.", body = ChannelJson),
        (status = 400, description = "`empty_body` or `invalid_body`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`not_your_channel`, or `insufficient_scope` (no `channels:write`).", body = ErrorBody),
        (status = 404, description = "No channel has this handle.", body = ErrorBody),
        (status = 413, description = "Over 2 MiB (`payload_too_large`), or more pixels than allowed, read from the header before decoding (`image_too_large`).", body = ErrorBody),
        (status = 415, description = "The Content-Type is not an image type (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "`not_an_image`, `image_truncated`, `animated_image` or `invalid_image`; `message` says why.", body = ErrorBody),
    ))]
async fn put_avatar(
    State(st): State<ApiState>,
    scoped: Scoped<ChannelsWrite>,
    Path(handle): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ChannelJson>, ApiError> {
    upload(st, scoped.0, handle, headers, body, Picture::Avatar).await
}

/// Sets the channel's banner.
#[utoipa::path(put, path = "/channels/{handle}/banner", tag = "channels",
    summary = "Sets the channel's banner (1920 × 320 and 960 × 160 JPEG; owner, or an admin with the admin scope).",
    security(("oauth2" = ["channels:write"])),
    params(("handle" = String, Path, description = "The channel's handle (any case).")),
    request_body(description = "The image file itself (PNG, JPEG, GIF or WebP; a still picture; at most 2 MiB and 4096 × 4096 pixels). It is decoded and re-encoded as JPEG at fixed sizes; nothing else of it is kept.",
        content((Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/gif"), (Vec<u8> = "image/webp"))),
    responses(
        (status = 200, description = "The channel, with the new URL.", body = ChannelJson),
        (status = 400, description = "`empty_body` or `invalid_body`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`not_your_channel`, or `insufficient_scope` (no `channels:write`).", body = ErrorBody),
        (status = 404, description = "No channel has this handle.", body = ErrorBody),
        (status = 413, description = "Over 2 MiB (`payload_too_large`), or more pixels than allowed (`image_too_large`).", body = ErrorBody),
        (status = 415, description = "The Content-Type is not an image type (`unsupported_media_type`).", body = ErrorBody),
        (status = 422, description = "`not_an_image`, `image_truncated`, `animated_image` or `invalid_image`; `message` says why.", body = ErrorBody),
    ))]
async fn put_banner(
    State(st): State<ApiState>,
    scoped: Scoped<ChannelsWrite>,
    Path(handle): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ChannelJson>, ApiError> {
    upload(st, scoped.0, handle, headers, body, Picture::Banner).await
}

/// Removes the channel's avatar.
#[utoipa::path(delete, path = "/channels/{handle}/avatar", tag = "channels",
    summary = "Removes the channel's avatar (a placeholder is shown).",
    security(("oauth2" = ["channels:write"])),
    params(("handle" = String, Path, description = "The channel's handle (any case).")),
    responses(
        (status = 200, description = "The channel.", body = ChannelJson),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`not_your_channel`, or `insufficient_scope` (no `channels:write`).", body = ErrorBody),
        (status = 404, description = "No channel has this handle.", body = ErrorBody),
    ))]
async fn delete_avatar(
    State(st): State<ApiState>,
    scoped: Scoped<ChannelsWrite>,
    Path(handle): Path<String>,
) -> Result<Json<ChannelJson>, ApiError> {
    delete(st, scoped.0, handle, Picture::Avatar).await
}

/// Removes the channel's banner.
#[utoipa::path(delete, path = "/channels/{handle}/banner", tag = "channels",
    summary = "Removes the channel's banner (a placeholder is shown).",
    security(("oauth2" = ["channels:write"])),
    params(("handle" = String, Path, description = "The channel's handle (any case).")),
    responses(
        (status = 200, description = "The channel.", body = ChannelJson),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`not_your_channel`, or `insufficient_scope` (no `channels:write`).", body = ErrorBody),
        (status = 404, description = "No channel has this handle.", body = ErrorBody),
    ))]
async fn delete_banner(
    State(st): State<ApiState>,
    scoped: Scoped<ChannelsWrite>,
    Path(handle): Path<String>,
) -> Result<Json<ChannelJson>, ApiError> {
    delete(st, scoped.0, handle, Picture::Banner).await
}

/// `avatar-123-256.jpg` → (avatar, 123, 256), for the sizes that exist only.
fn parse_file(name: &str) -> Option<(Picture, i64, u32)> {
    let rest = name.strip_suffix(".jpg")?;
    let (picture, rest) = if let Some(r) = rest.strip_prefix("avatar-") {
        (Picture::Avatar, r)
    } else {
        (Picture::Banner, rest.strip_prefix("banner-")?)
    };
    let (version, width) = rest.split_once('-')?;
    let digits =
        |s: &str| !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
    if !digits(version) || !digits(width) {
        return None;
    }
    let version: i64 = version.parse().ok()?;
    let width: u32 = width.parse().ok()?;
    kind(picture).sizes().iter().any(|&(w, _)| w == width).then_some((picture, version, width))
}

/// `GET /media/channels/{id}/{file}`: a stored rendition, cached for ever.
async fn serve(State(st): State<ApiState>, Path((id, file)): Path<(String, String)>) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found())?;
    let (picture, version, width) = parse_file(&file).ok_or_else(ApiError::not_found)?;
    let object = match st.storage.get(&key(id, picture, version, width), None).await {
        Ok(o) => o,
        Err(StorageError::NotFound(_)) => return Err(ApiError::not_found()),
        Err(e) => return Err(storage_error(e)),
    };
    let len = object.size;
    let body = Body::from_stream(object.stream.map_err(std::io::Error::other));
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_parse_strictly() {
        assert_eq!(parse_file("avatar-42-256.jpg"), Some((Picture::Avatar, 42, 256)));
        assert_eq!(parse_file("banner-7-960.jpg"), Some((Picture::Banner, 7, 960)));
        for bad in [
            "avatar-42-257.jpg",
            "avatar-042-256.jpg",
            "avatar--256.jpg",
            "avatar-42-256.png",
            "banner-42-256.jpg",
            "../avatar-42-256.jpg",
            "avatar-99999999999999999999-256.jpg",
            "avatar-4 2-256.jpg",
        ] {
            assert_eq!(parse_file(bad), None, "{bad}");
        }
    }

    #[test]
    fn urls_name_the_stored_files() {
        let id = Uuid::nil();
        assert_eq!(url(id, Picture::Avatar, 5, 96), format!("/media/channels/{id}/avatar-5-96.jpg"));
        assert_eq!(avatar_url(id, Some(5), 40), Some(format!("/media/channels/{id}/avatar-5-48.jpg")));
        assert_eq!(avatar_url(id, Some(5), 500), Some(format!("/media/channels/{id}/avatar-5-256.jpg")));
        assert_eq!(avatar_url(id, None, 48), None);
    }
}
