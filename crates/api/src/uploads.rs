//! Resumable uploads with tus 1.0.0 at `/api/v1/uploads`: creation (with upload), offset
//! lookup, appending chunks, termination, expiry and checksums.
//!
//! The bytes of an upload in progress are staged where every API replica reaches them
//! ([`crate::staging`]), appended as they arrive (never buffered whole): on local disk, a staging
//! file `uploads/{id}` in the media folder; on S3, segments `uploads/{id}/{start}` in the bucket.
//! The database holds the committed offset; a chunk is committed as it streams (every
//! [`COMMIT_EVERY`] bytes, and at its end) unless it carries a checksum, which commits it only
//! once verified. Before appending, a
//! request takes the upload's lease in the database, so a second concurrent `PATCH` is refused
//! with 423 instead of interleaving; the staging file is cut back to the committed offset (and a
//! new segment starts at it), so bytes a dead request left behind never count. The last byte
//! moves the file into place (or joins the segments) as the video's original, queues its
//! transcode and turns the video to `processing`; each of these steps is idempotent, and the
//! janitor finishes any that a crash interrupted. So an upload created on one API replica may be
//! resumed, finished or expired on any other.
//!
//! Every upload request acts for the user and needs `videos:write` ([`Uploader`]).

use crate::identity::{CurrentUser, Refused, Scoped, VideosWrite};
use crate::staging::{SegmentWriter, StagingWriter};
use crate::tus::{self, UPLOAD_EXPIRES, UPLOAD_LENGTH, UPLOAD_METADATA, UPLOAD_OFFSET};
use crate::{ApiState, videos};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use http_body_util::BodyExt;
use std::path::PathBuf;
use std::time::Duration;
use turtlemen_db::jobs::{self, NewJob};
use turtlemen_db::uploads::{self, Upload};
use turtlemen_db::videos::{self as video_rows, NewVideo};
use turtlemen_http::{ApiError, ErrorBody};
use turtlemen_storage::StorageKey;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The transcode job every completed upload queues.
pub use turtlemen_db::videos::TRANSCODE;

/// How long a request holds an upload's lease without committing bytes.
const LEASE: Duration = Duration::from_secs(60);
/// Bytes appended between commits of the offset (each commit also extends the lease).
pub const COMMIT_EVERY: u64 = 64 * 1024 * 1024;
/// A client that sends nothing for this long has its chunk ended (what arrived is kept).
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The tus routes, each with its description ([`crate::openapi`]). Bodies here are streamed,
/// so the default body limit does not apply.
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(capabilities, create))
        .routes(routes!(upload_capabilities, offset, append, terminate))
        .layer(DefaultBodyLimit::disable())
}

fn tus_headers(headers: &mut HeaderMap) {
    headers.insert(tus::TUS_RESUMABLE, HeaderValue::from_static(tus::VERSION));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Every tus response names the protocol version, errors included.
fn tus_error(e: ApiError) -> Response {
    let mut res = e.into_response();
    tus_headers(res.headers_mut());
    res
}

/// The user an upload request acts for (a token granting `videos:write`), or why not.
type Uploader = Result<Scoped<VideosWrite>, Refused>;

/// A refused caller's answer, with the tus headers, once the body is drained.
async fn refuse(refused: Refused, body: Option<Body>) -> Response {
    if let Some(body) = body {
        drain(body).await;
    }
    let mut res = refused.into_response();
    tus_headers(res.headers_mut());
    res
}

fn num(n: u64) -> HeaderValue {
    HeaderValue::from(n)
}

/// `OPTIONS /api/v1/uploads`: what this server supports.
#[utoipa::path(options, path = "/uploads", tag = "uploads",
    summary = "tus: what the server supports.",
    responses((status = 204, description = "Capabilities in the headers.", headers(
        ("Tus-Resumable" = String, description = "1.0.0"),
        ("Tus-Version" = String, description = "1.0.0"),
        ("Tus-Extension" = String, description = "creation,creation-with-upload,termination,expiration,checksum"),
        ("Tus-Max-Size" = u64, description = "The largest upload in bytes."),
        ("Tus-Checksum-Algorithm" = String, description = "sha1,sha256"),
    ))))]
async fn capabilities(State(st): State<ApiState>) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    tus_headers(h);
    h.insert(tus::TUS_VERSION, HeaderValue::from_static(tus::VERSION));
    h.insert(tus::TUS_EXTENSION, HeaderValue::from_static(tus::EXTENSIONS));
    h.insert(tus::TUS_MAX_SIZE, num(st.videos.upload_max_bytes));
    h.insert(tus::TUS_CHECKSUM_ALGORITHM, HeaderValue::from_static(tus::CHECKSUM_ALGORITHMS));
    res
}

/// `OPTIONS /api/v1/uploads/{id}`: the same capabilities.
#[utoipa::path(options, path = "/uploads/{id}", tag = "uploads",
    summary = "tus: what the server supports (the same answer as for /uploads).",
    params(("id" = String, Path, description = "The upload.")),
    responses((status = 204, description = "Capabilities in the headers.", headers(
        ("Tus-Version" = String, description = "1.0.0"),
        ("Tus-Extension" = String),
        ("Tus-Max-Size" = u64),
        ("Tus-Checksum-Algorithm" = String),
    ))))]
async fn upload_capabilities(st: State<ApiState>) -> Response {
    capabilities(st).await
}

/// The staging file of upload `id` on a local media folder; `None` on S3, where it is staged
/// in segments.
fn staging_path(st: &ApiState, id: Uuid) -> Option<PathBuf> {
    st.storage.local_path(&StorageKey::upload(id))
}

/// `POST /api/v1/uploads`: a new upload (and its video), optionally with its first bytes.
#[utoipa::path(post, path = "/uploads", tag = "uploads",
    summary = "tus creation (with upload): a new upload and its video, in state `uploading`.",
    security(("oauth2" = ["videos:write"])),
    params(
        ("Tus-Resumable" = String, Header, description = "Always 1.0.0."),
        ("Upload-Length" = u64, Header, description = "The file's size in bytes, 1 to Tus-Max-Size."),
        ("Upload-Metadata" = String, Header, description = "Comma-separated `key base64(value)`: filename (required), title, description, tags (comma-separated), category, language, licence, privacy (public | unlisted | private; default public), channel (a handle of the uploader's; default their first channel)."),
    ),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream", description = "Optionally the first bytes (creation-with-upload)."),
    responses(
        (status = 201, description = "Created.", headers(
            ("Location" = String, description = "The upload's URL."),
            ("Video-Id" = String, description = "Its video."),
            ("Upload-Expires" = String, description = "When it lapses (HTTP date)."),
            ("Upload-Offset" = u64, description = "The bytes received with the creation, when it carried some."),
        )),
        (status = 400, description = "A malformed or missing header or metadata field (`message` says which), or an unknown channel.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` (no `videos:write`), or `not_your_channel`.", body = ErrorBody),
        (status = 409, description = "`no_channel`: the account has no channel to publish in.", body = ErrorBody),
        (status = 412, description = "Not tus 1.0.0.", body = ErrorBody),
        (status = 413, description = "Too large, or over the user's total or daily quota.", body = ErrorBody),
        (status = 429, description = "Too many uploads started from this address or session; see `Retry-After`.", body = ErrorBody),
        (status = 507, description = "The server has no room for the bytes right now.", body = ErrorBody),
    ))]
async fn create(State(st): State<ApiState>, user: Uploader, headers: HeaderMap, mut body: Body) -> Response {
    let user = match user {
        Ok(user) => user,
        Err(refused) => return refuse(refused, Some(body)).await,
    };
    match create_inner(&st, &user, &headers, &mut body).await {
        Ok(res) => res,
        Err(e) => {
            drain(body).await;
            tus_error(e)
        }
    }
}

async fn create_inner(
    st: &ApiState,
    user: &CurrentUser,
    headers: &HeaderMap,
    body: &mut Body,
) -> Result<Response, ApiError> {
    tus::check_resumable(headers)?;
    if headers.contains_key(tus::UPLOAD_DEFER_LENGTH) {
        return Err(ApiError::bad_request(
            "defer_length_unsupported",
            "Declare the upload's size with Upload-Length; deferred lengths are not supported.",
        ));
    }
    let length = tus::parse_u64_header(headers, &UPLOAD_LENGTH)?
        .ok_or_else(|| ApiError::bad_request("upload_length_missing", "Send the file's size in Upload-Length."))?;
    if length == 0 {
        return Err(ApiError::bad_request("empty_upload", "The file is empty."));
    }
    if length > st.videos.upload_max_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload_too_large",
            format!("Uploads may be at most {} bytes.", st.videos.upload_max_bytes),
        ));
    }
    let raw_metadata = headers.get(UPLOAD_METADATA).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let pairs = tus::parse_metadata(headers)?;
    let (metadata, original_name) = videos::metadata_from_upload(&pairs)?;
    let channel_id = crate::channels::for_upload(st, user, pairs.get("channel").map(String::as_str)).await?;
    check_quota(st, user, length).await?;

    let upload_id = Uuid::now_v7();
    let video_id = Uuid::now_v7();
    let staging = staging_path(st, upload_id);
    if let Some(path) = &staging {
        if let Some(folder) = path.parent() {
            tokio::fs::create_dir_all(folder).await.map_err(|e| ApiError::internal(&e))?;
        }
        tokio::fs::File::create(path).await.map_err(|e| ApiError::internal(&e))?;
    }
    let expires_at = Utc::now() + st.videos.upload_expiry;
    let new_video =
        NewVideo { id: video_id, owner_id: user.0.id, channel_id, metadata, original_name, original_bytes: length };
    if let Err(e) = uploads::create(&st.db, upload_id, &new_video, &raw_metadata, expires_at).await {
        if let Some(path) = &staging {
            let _ = tokio::fs::remove_file(path).await;
        }
        return Err(e.into());
    }
    tracing::info!(upload.id = %upload_id, video.id = %video_id, upload.length = length, "upload created");

    let mut offset_after = None;
    if tus::is_chunk(headers) {
        let upload = uploads::get(&st.db, upload_id).await?.ok_or_else(ApiError::not_found)?;
        offset_after = Some(write_chunk(st, &upload, 0, None, body).await?);
    }
    let mut res = StatusCode::CREATED.into_response();
    let h = res.headers_mut();
    tus_headers(h);
    let location = format!("/api/v1/uploads/{upload_id}");
    h.insert(header::LOCATION, HeaderValue::from_str(&location).map_err(|e| ApiError::internal(&e))?);
    h.insert(UPLOAD_EXPIRES, tus::http_date(expires_at));
    h.insert(tus::VIDEO_ID, HeaderValue::from_str(&video_id.to_string()).map_err(|e| ApiError::internal(&e))?);
    if let Some(offset) = offset_after {
        h.insert(UPLOAD_OFFSET, num(offset));
    }
    Ok(res)
}

/// Refuses an upload that would take the user past their total or daily quota: the account's
/// own, where an admin set one (`users.upload_quota_bytes`…), else the instance's.
async fn check_quota(st: &ApiState, user: &CurrentUser, length: u64) -> Result<(), ApiError> {
    let mut limits = st.videos;
    let own = user.0.quota;
    limits.quota_bytes = own.total_bytes.unwrap_or(limits.quota_bytes);
    limits.daily_quota_bytes = own.daily_bytes.unwrap_or(limits.daily_quota_bytes);
    if limits.quota_bytes == 0 && limits.daily_quota_bytes == 0 {
        return Ok(());
    }
    let (total, today) = video_rows::bytes_used(&st.db, user.0.id, Utc::now() - chrono::TimeDelta::days(1)).await?;
    let over = |used: u64, quota: u64| quota > 0 && used.saturating_add(length) > quota;
    if over(total, limits.quota_bytes) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "quota_exceeded",
            format!("This upload would exceed your storage quota ({} of {} bytes used).", total, limits.quota_bytes),
        ));
    }
    if over(today, limits.daily_quota_bytes) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "daily_quota_exceeded",
            format!(
                "This upload would exceed your daily upload quota ({} of {} bytes in the last 24 hours).",
                today, limits.daily_quota_bytes
            ),
        ));
    }
    Ok(())
}

/// The caller's upload, or 404 (someone else's uploads do not exist for them); 410 once expired.
async fn own_upload(st: &ApiState, user: &CurrentUser, id: &str) -> Result<Upload, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found())?;
    let upload = uploads::get(&st.db, id).await?.filter(|u| u.owner() == user.0.id).ok_or_else(ApiError::not_found)?;
    if upload.completed_at.is_none() && upload.expires_at < Utc::now() {
        return Err(ApiError::new(StatusCode::GONE, "upload_expired", "This upload expired; start it again."));
    }
    Ok(upload)
}

/// `HEAD /api/v1/uploads/{id}`: how many bytes the server has.
#[utoipa::path(head, path = "/uploads/{id}", tag = "uploads",
    summary = "tus: the upload's committed offset, length and expiry (an answer without a body).",
    security(("oauth2" = ["videos:write"])),
    params(
        ("id" = String, Path, description = "The upload."),
        ("Tus-Resumable" = String, Header, description = "Always 1.0.0."),
    ),
    responses(
        (status = 200, description = "Offset in the headers.", headers(
            ("Upload-Offset" = u64), ("Upload-Length" = u64), ("Upload-Metadata" = String),
            ("Upload-Expires" = String, description = "While unfinished."), ("Video-Id" = String),
        )),
        (status = 401, description = "Not signed in."),
        (status = 403, description = "`insufficient_scope`: the token does not grant `videos:write`."),
        (status = 404, description = "No such upload of yours."),
        (status = 410, description = "Expired."),
        (status = 412, description = "Not tus 1.0.0."),
    ))]
async fn offset(State(st): State<ApiState>, user: Uploader, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let user = match user {
        Ok(user) => user,
        Err(refused) => return refuse(refused, None).await,
    };
    let result = async {
        tus::check_resumable(&headers)?;
        let upload = own_upload(&st, &user, &id).await?;
        if upload.is_complete() && upload.completed_at.is_none() {
            // The last chunk arrived but finishing was interrupted: finish now.
            finish(&st, &upload).await?;
        }
        let mut res = StatusCode::OK.into_response();
        let h = res.headers_mut();
        tus_headers(h);
        h.insert(UPLOAD_OFFSET, num(u64::try_from(upload.received).unwrap_or(0)));
        h.insert(UPLOAD_LENGTH, num(u64::try_from(upload.length).unwrap_or(0)));
        if let Ok(v) = HeaderValue::from_str(&upload.metadata)
            && !upload.metadata.is_empty()
        {
            h.insert(UPLOAD_METADATA, v);
        }
        if upload.completed_at.is_none() {
            h.insert(UPLOAD_EXPIRES, tus::http_date(upload.expires_at));
        }
        h.insert(
            tus::VIDEO_ID,
            HeaderValue::from_str(&upload.video_id.to_string()).map_err(|e| ApiError::internal(&e))?,
        );
        Ok::<_, ApiError>(res)
    }
    .await;
    result.unwrap_or_else(tus_error)
}

/// `PATCH /api/v1/uploads/{id}`: appends a chunk at `Upload-Offset`.
#[utoipa::path(patch, path = "/uploads/{id}", tag = "uploads",
    summary = "tus: appends a chunk at `Upload-Offset`, optionally checked by `Upload-Checksum` (sha1, sha256).",
    security(("oauth2" = ["videos:write"])),
    params(
        ("id" = String, Path, description = "The upload."),
        ("Tus-Resumable" = String, Header, description = "Always 1.0.0."),
        ("Upload-Offset" = u64, Header, description = "Where the chunk starts; must equal the committed offset."),
        ("Upload-Checksum" = Option<String>, Header, description = "`sha1 <base64>` or `sha256 <base64>` of the chunk."),
    ),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "Appended.", headers(
            ("Upload-Offset" = u64, description = "The new offset."),
            ("Upload-Expires" = String, description = "While unfinished."),
        )),
        (status = 400, description = "A missing or malformed header (`message` says which).", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `videos:write`.", body = ErrorBody),
        (status = 404, description = "No such upload of yours.", body = ErrorBody),
        (status = 409, description = "Wrong offset, or the upload is complete.", body = ErrorBody),
        (status = 410, description = "Expired.", body = ErrorBody),
        (status = 412, description = "Not tus 1.0.0.", body = ErrorBody),
        (status = 413, description = "More bytes than Upload-Length.", body = ErrorBody),
        (status = 415, description = "Not application/offset+octet-stream.", body = ErrorBody),
        (status = 423, description = "Another request is writing to this upload.", body = ErrorBody),
        (status = 460, description = "Checksum mismatch; the chunk was discarded.", body = ErrorBody),
        (status = 507, description = "The server has no room for the bytes right now.", body = ErrorBody),
    ))]
async fn append(
    State(st): State<ApiState>,
    user: Uploader,
    Path(id): Path<String>,
    headers: HeaderMap,
    mut body: Body,
) -> Response {
    let user = match user {
        Ok(user) => user,
        Err(refused) => return refuse(refused, Some(body)).await,
    };
    let result = async {
        tus::check_resumable(&headers)?;
        if !tus::is_chunk(&headers) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Send chunks with Content-Type: {}.", tus::OFFSET_OCTET_STREAM),
            ));
        }
        let offset = tus::parse_u64_header(&headers, &UPLOAD_OFFSET)?
            .ok_or_else(|| ApiError::bad_request("upload_offset_missing", "Send Upload-Offset with every chunk."))?;
        let checksum = tus::parse_checksum(&headers)?;
        let upload = own_upload(&st, &user, &id).await?;
        let new_offset = write_chunk(&st, &upload, offset, checksum, &mut body).await?;
        let mut res = StatusCode::NO_CONTENT.into_response();
        let h = res.headers_mut();
        tus_headers(h);
        h.insert(UPLOAD_OFFSET, num(new_offset));
        if new_offset < u64::try_from(upload.length).unwrap_or(0) {
            h.insert(UPLOAD_EXPIRES, tus::http_date(upload.expires_at));
        }
        Ok(res)
    }
    .await;
    match result {
        Ok(res) => res,
        Err(e) => {
            drain(body).await;
            tus_error(e)
        }
    }
}

/// Reads what is left of a refused request's body, up to [`DRAIN_LIMIT`] bytes for at most
/// [`DRAIN_TIME`], so the error response reaches the client: closing a connection with unread
/// bytes in it resets it, and the client would see a network error instead of the answer.
pub(crate) async fn drain(mut body: Body) {
    let mut left = DRAIN_LIMIT;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(frame)) = body.frame().await {
            let n = frame.data_ref().map_or(0, |d| d.len());
            if n >= left {
                break;
            }
            left -= n;
        }
    })
    .await;
}

/// The most of a refused body [`drain`] reads.
pub(crate) const DRAIN_LIMIT: usize = 1024 * 1024;
/// The longest [`drain`] waits.
pub(crate) const DRAIN_TIME: Duration = Duration::from_secs(2);

fn offset_conflict(expected: u64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "offset_mismatch",
        format!("Upload-Offset does not match: the server has {expected} bytes of this upload."),
    )
}

/// Takes the upload's lease, appends the body at `offset` and releases the lease. Returns the
/// committed offset after the chunk.
async fn write_chunk(
    st: &ApiState,
    upload: &Upload,
    offset: u64,
    checksum: Option<tus::Checksum>,
    body: &mut Body,
) -> Result<u64, ApiError> {
    let length = u64::try_from(upload.length).unwrap_or(0);
    if upload.completed_at.is_some() {
        return if offset == length { Ok(length) } else { Err(offset_conflict(length)) };
    }
    let writer = Uuid::new_v4();
    let Some(locked) = uploads::try_lock(&st.db, upload.id, writer, Utc::now() + LEASE).await? else {
        return Err(ApiError::new(
            StatusCode::LOCKED,
            "upload_locked",
            "Another request is writing to this upload; wait for it to end, then ask for the offset again.",
        ));
    };
    let committed = u64::try_from(locked.received).unwrap_or(0);
    let outcome = if offset != committed {
        Err(offset_conflict(committed))
    } else {
        append_locked(st, &locked, writer, checksum, body).await
    };
    if let Err(e) = uploads::unlock(&st.db, upload.id, writer).await {
        tracing::warn!(upload.id = %upload.id, error = %e, "cannot release an upload lease; it will lapse");
    }
    let received = outcome?;
    if received == length {
        let done = Upload { received: upload.length, ..locked };
        finish(st, &done).await?;
    }
    Ok(received)
}

/// Why a chunk stopped before its end.
enum Stop {
    /// The client stopped sending (disconnect, idle timeout): what arrived is kept.
    Client(&'static str),
    /// More bytes than `Upload-Length`.
    TooLong,
    /// Writing or committing failed on our side.
    Server(ApiError),
}

async fn append_locked(
    st: &ApiState,
    upload: &Upload,
    writer: Uuid,
    checksum: Option<tus::Checksum>,
    body: &mut Body,
) -> Result<u64, ApiError> {
    let length = u64::try_from(upload.length).unwrap_or(0);
    let start = u64::try_from(upload.received).unwrap_or(0);
    // Bytes past the committed offset were never acknowledged: the writer cuts them off.
    let mut file = Stager::open(st, upload.id, start).await?;
    let mut digest = checksum.as_ref().map(|c| ring::digest::Context::new(c.algorithm.digest_algorithm()));
    let mut received = start;
    let mut last_commit = start;
    let mut sync_asked = start;

    let stop: Option<Stop> = loop {
        let frame = match tokio::time::timeout(BODY_IDLE_TIMEOUT, body.frame()).await {
            Err(_) => break Some(Stop::Client("the client sent nothing for too long")),
            Ok(None) => break None,
            Ok(Some(Err(_))) => break Some(Stop::Client("the connection ended before the chunk did")),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else { continue };
        let room = length - received;
        let fits = data.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let too_long = fits < data.len();
        let piece = if too_long { data.slice(..fits) } else { data };
        if let Some(d) = digest.as_mut() {
            d.update(&piece);
        }
        if let Err(e) = file.write(piece).await {
            break Some(Stop::Server(e));
        }
        received += fits as u64;
        if too_long {
            break Some(Stop::TooLong);
        }
        // Without a checksum, bytes count as they become durable: the writer syncs every
        // COMMIT_EVERY bytes while this loop goes on reading, and each synced offset is recorded.
        if digest.is_none() {
            if received - sync_asked >= COMMIT_EVERY {
                if let Err(e) = file.request_commit(received).await {
                    break Some(Stop::Server(e));
                }
                sync_asked = received;
            }
            let durable = file.durable();
            if durable > last_commit {
                if let Err(e) = record(st, upload, writer, durable).await {
                    break Some(Stop::Server(e));
                }
                last_commit = durable;
            }
        }
    };

    let verified = match (&checksum, digest) {
        (Some(expected), Some(d)) if stop.is_none() => d.finish().as_ref() == expected.digest.as_slice(),
        (Some(_), _) => false,
        (None, _) => true,
    };
    let keep = match &stop {
        None | Some(Stop::Client(_)) => verified,
        Some(Stop::TooLong) => checksum.is_none(),
        // The disk or the database failed: what was queued may not be on disk, and the writer
        // has stopped; only the offset committed before counts.
        Some(Stop::Server(_)) => false,
    };
    let final_offset = if keep { received } else { last_commit };
    if keep {
        file.finish(received).await?;
        record(st, upload, writer, received).await?;
    } else {
        // Nothing of this chunk counts: cut the file back to what was committed.
        file.abandon(last_commit).await;
    }
    tracing::debug!(upload.id = %upload.id, upload.offset = final_offset, "chunk written");
    match stop {
        Some(Stop::Server(e)) => Err(e),
        Some(Stop::TooLong) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload_too_long",
            format!("The chunk runs past Upload-Length ({length} bytes); the bytes up to it were kept."),
        )),
        Some(Stop::Client(why)) if checksum.is_some() => {
            Err(ApiError::bad_request("incomplete_chunk", format!("{why}; a checksummed chunk must arrive whole.")))
        }
        Some(Stop::Client(why)) => Err(ApiError::bad_request("incomplete_chunk", format!("{why}; send the rest."))),
        None if !verified => Err(ApiError::new(
            StatusCode::from_u16(tus::CHECKSUM_MISMATCH).unwrap_or(StatusCode::BAD_REQUEST),
            "checksum_mismatch",
            "The chunk does not match its Upload-Checksum; it was discarded. Send it again.",
        )),
        None => Ok(final_offset),
    }
}

/// Where one request appends: the staging file on local disk, or segments in the object store.
enum Stager {
    File { writer: StagingWriter, path: PathBuf },
    Segments(SegmentWriter),
}

impl Stager {
    async fn open(st: &ApiState, id: Uuid, start: u64) -> Result<Stager, ApiError> {
        let Some(path) = staging_path(st, id) else {
            return Ok(Stager::Segments(SegmentWriter::new(st.storage.clone(), id, start)));
        };
        let writer = StagingWriter::open(path.clone(), start).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ApiError::new(StatusCode::GONE, "upload_expired", "This upload's bytes are gone; start it again.")
            } else {
                ApiError::internal(&e)
            }
        })?;
        Ok(Stager::File { writer, path })
    }

    async fn write(&mut self, bytes: bytes::Bytes) -> Result<(), ApiError> {
        match self {
            Stager::File { writer, .. } => writer.write(bytes).await.map_err(disk_error),
            Stager::Segments(segments) => segments.write(bytes).await.map_err(store_error),
        }
    }

    /// Asks for everything written so far to become durable: the file syncs in the background,
    /// and [`Stager::durable`] tells when; a segment is completed here and now.
    async fn request_commit(&mut self, offset: u64) -> Result<(), ApiError> {
        match self {
            Stager::File { writer, .. } => writer.request_sync(offset).await.map_err(disk_error),
            Stager::Segments(segments) => segments.cut().await.map(|_| ()).map_err(store_error),
        }
    }

    fn durable(&self) -> u64 {
        match self {
            Stager::File { writer, .. } => writer.durable(),
            Stager::Segments(segments) => segments.durable(),
        }
    }

    /// Makes everything written (up to `offset`) durable and ends the writer.
    async fn finish(self, offset: u64) -> Result<(), ApiError> {
        match self {
            Stager::File { writer, .. } => writer.finish(offset).await.map_err(disk_error),
            Stager::Segments(mut segments) => segments.cut().await.map(|_| ()).map_err(store_error),
        }
    }

    /// Drops what was written past `committed`.
    async fn abandon(self, committed: u64) {
        match self {
            Stager::File { writer, path } => writer.abandon(path, committed).await,
            Stager::Segments(segments) => segments.abandon().await,
        }
    }
}

fn store_error(e: turtlemen_storage::StorageError) -> ApiError {
    tracing::error!(error = %e, "cannot stage upload bytes in the object store");
    ApiError::unavailable("The upload's bytes could not be stored right now; ask for the offset and resume.")
}

fn disk_error(e: std::io::Error) -> ApiError {
    if e.raw_os_error() == Some(28) || e.kind() == std::io::ErrorKind::StorageFull {
        tracing::error!(error = %e, "the upload folder is full");
        return ApiError::storage_full("The server has no room for this upload right now; try again later.");
    }
    ApiError::internal(&e)
}

/// Records `received` bytes (already durable) as the committed offset, extending the lease.
async fn record(st: &ApiState, upload: &Upload, writer: Uuid, received: u64) -> Result<(), ApiError> {
    if !uploads::advance(&st.db, upload.id, writer, received, Utc::now() + LEASE).await? {
        return Err(ApiError::new(
            StatusCode::LOCKED,
            "upload_locked",
            "This request lost the upload's lease to another one; ask for the offset again.",
        ));
    }
    Ok(())
}

/// The upload is whole: its bytes become the video's original, its transcode is queued and the
/// video turns `processing`. Every step is idempotent, so running it again after a crash is safe.
pub async fn finish(st: &ApiState, upload: &Upload) -> Result<(), ApiError> {
    let key = StorageKey::video_original(upload.video_id);
    let not_stored = |e: turtlemen_storage::StorageError| {
        tracing::error!(upload.id = %upload.id, error = %e, "cannot store an upload's original");
        ApiError::unavailable("The upload is complete but could not be stored yet; it will be retried.")
    };
    let lost = || ApiError::new(StatusCode::GONE, "upload_lost", "This upload's bytes are gone.");
    match staging_path(st, upload.id) {
        Some(path) => match tokio::fs::metadata(&path).await {
            Ok(_) => {
                st.storage.put_file(&key, &path).await.map_err(not_stored)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Moved by an earlier run that was interrupted later on.
                if st.storage.head(&key).await.ok().flatten().is_none() {
                    return Err(lost());
                }
            }
            Err(e) => return Err(ApiError::internal(&e)),
        },
        None => {
            let length = u64::try_from(upload.length).unwrap_or(0);
            match st.storage.compose(upload.id, length, &key).await {
                Ok(_) => {}
                Err(turtlemen_storage::StorageError::NotFound(_)) => return Err(lost()),
                Err(e) => return Err(not_stored(e)),
            }
        }
    }
    let payload = serde_json::json!({ "video_id": upload.video_id });
    let idempotency = format!("transcode:{}", upload.video_id);
    jobs::enqueue(&st.db, &NewJob::new(TRANSCODE, &payload).idempotency_key(&idempotency)).await?;
    video_rows::mark_uploaded(&st.db, upload.video_id).await?;
    uploads::mark_complete(&st.db, upload.id).await?;
    tracing::info!(upload.id = %upload.id, video.id = %upload.video_id, "upload complete; transcode queued");
    Ok(())
}

/// `DELETE /api/v1/uploads/{id}`: abandons an unfinished upload, its bytes and its video.
#[utoipa::path(delete, path = "/uploads/{id}", tag = "uploads",
    summary = "tus termination: abandons an unfinished upload and its video.",
    security(("oauth2" = ["videos:write"])),
    params(
        ("id" = String, Path, description = "The upload."),
        ("Tus-Resumable" = String, Header, description = "Always 1.0.0."),
    ),
    responses(
        (status = 204, description = "Gone."),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `videos:write`.", body = ErrorBody),
        (status = 404, description = "No such upload of yours.", body = ErrorBody),
        (status = 409, description = "Complete: delete the video instead.", body = ErrorBody),
        (status = 410, description = "Expired.", body = ErrorBody),
        (status = 412, description = "Not tus 1.0.0.", body = ErrorBody),
        (status = 423, description = "A chunk is being written.", body = ErrorBody),
    ))]
async fn terminate(State(st): State<ApiState>, user: Uploader, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let user = match user {
        Ok(user) => user,
        Err(refused) => return refuse(refused, None).await,
    };
    let result = async {
        tus::check_resumable(&headers)?;
        let upload = own_upload(&st, &user, &id).await?;
        if upload.completed_at.is_some() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "upload_complete",
                "This upload is complete and is now a video; delete the video instead.",
            ));
        }
        let writer = Uuid::new_v4();
        if uploads::try_lock(&st.db, upload.id, writer, Utc::now() + LEASE).await?.is_none() {
            return Err(ApiError::new(StatusCode::LOCKED, "upload_locked", "A chunk is being written; try again."));
        }
        discard(&st, &upload).await?;
        let mut res = StatusCode::NO_CONTENT.into_response();
        tus_headers(res.headers_mut());
        Ok(res)
    }
    .await;
    result.unwrap_or_else(tus_error)
}

/// Removes an unfinished upload: its staged bytes, then its video (and with it the upload row).
pub async fn discard(st: &ApiState, upload: &Upload) -> Result<(), ApiError> {
    match staging_path(st, upload.id) {
        Some(path) => match tokio::fs::remove_file(path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ApiError::internal(&e)),
        },
        None => {
            st.storage.delete_prefix(&StorageKey::upload(upload.id)).await.map_err(|e| ApiError::internal(&e))?;
        }
    }
    st.storage.delete_prefix(&StorageKey::video(upload.video_id)).await.map_err(|e| ApiError::internal(&e))?;
    video_rows::delete(&st.db, upload.video_id).await?;
    tracing::info!(upload.id = %upload.id, video.id = %upload.video_id, "upload discarded");
    Ok(())
}

/// The janitor's pass: expired uploads are discarded, interrupted completions finished, old
/// completed upload rows and week-old succeeded jobs purged. Returns how many uploads were expired.
/// An upload that cannot be cleaned is logged and left for the next pass; the others are
/// cleaned all the same (one bad upload never blocks the rest).
pub async fn sweep(st: &ApiState) -> Result<usize, ApiError> {
    let now = Utc::now();
    let expired = uploads::expired(&st.db, now, 100).await?;
    let mut discarded = 0;
    for upload in &expired {
        let result = if upload.is_complete() { finish(st, upload).await } else { discard(st, upload).await };
        match result {
            Ok(()) => discarded += usize::from(!upload.is_complete()),
            Err(e) => swept_badly(upload, &e),
        }
    }
    for upload in uploads::unfinished_complete(&st.db, now - chrono::TimeDelta::minutes(1), 100).await? {
        if let Err(e) = finish(st, &upload).await {
            swept_badly(&upload, &e);
        }
    }
    uploads::purge_completed(&st.db, now - chrono::TimeDelta::days(1)).await?;
    jobs::purge_succeeded(&st.db, now - chrono::TimeDelta::days(7)).await?;
    Ok(discarded)
}

/// Logs an upload the sweep could not clean (once, here); the next pass tries it again.
fn swept_badly(upload: &Upload, e: &ApiError) {
    tracing::warn!(
        upload.id = %upload.id,
        video.id = %upload.video_id,
        error = %e.body.message,
        "cannot clean an upload; the next sweep tries again"
    );
}
