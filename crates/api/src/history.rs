//! The watch history: what the signed-in user watched, last first, with where they stopped.
//!
//! - `PUT /api/v1/me/history/{video_id}` `{"position_secs": n}`: the watch page reports the
//!   position every ~10 s and when the page is hidden (one row per video, updated in place;
//!   nothing is written while history is paused — still 204). JSON only, like every write here
//!   (a `sendBeacon` sends it as a `Blob` typed `application/json`).
//! - `GET /api/v1/me/history?cursor=`: keyset pages, last watched first.
//! - `DELETE /api/v1/me/history` (clear), `DELETE …/{video_id}` (one).
//! - `GET`/`PUT /api/v1/me/history/settings` `{"paused": bool}`.
//!
//! Scopes: `library:read` to read, `library:write` to change. A video the user may not see is
//! 404 when reported, and is left out of the list.

use crate::identity::{CurrentUser, LibraryRead, LibraryWrite, Scoped};
use crate::playlists::next;
use crate::videos::VideoView;
use crate::{ApiState, channels, cursor, videos};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use turtlemen_db::history::{self as rows, Entry};
use turtlemen_http::{ApiError, ErrorBody};
use turtlemen_identity::Scope;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The longest position taken (a day); longer reports are cut to it.
pub const MAX_POSITION_SECS: u32 = 86_400;

/// The history routes, each with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list, clear))
        .routes(routes!(settings, change_settings))
        .routes(routes!(report, remove))
}

/// Records `user`'s position in the video `id` (one they may see; 404 otherwise); `false` when
/// history is paused.
pub async fn record(st: &ApiState, user: &CurrentUser, id: &str, position_secs: u32) -> Result<bool, ApiError> {
    user.require(Scope::LibraryWrite)?;
    let v = videos::visible(st, id, Some(user)).await?;
    Ok(rows::record(&st.db, user.0.id, v.id, position_secs.min(MAX_POSITION_SECS)).await?)
}

/// Where the watch page should start from the position `v`'s history holds (`at`): there,
/// unless at the start or near the end (then from the start, as a finished video is watched
/// again).
pub fn resume_from(at: Option<u32>, v: &turtlemen_db::videos::Video) -> Option<u32> {
    let duration = v.duration_secs.unwrap_or(f64::MAX);
    at.filter(|p| *p > 0 && f64::from(*p) < duration - 5.0)
}

/// A position report.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = HistoryReport)]
struct Report {
    /// Seconds from the start (at most a day).
    #[schema(maximum = 86400)]
    position_secs: u32,
}

/// Reports the position reached in a video.
#[utoipa::path(put, path = "/me/history/{video_id}", tag = "history",
    summary = "Records the position reached in a video (one entry per video, updated in place; nothing while paused). JSON only.",
    security(("oauth2" = ["library:write"])),
    params(("video_id" = String, Path, description = "The video.")),
    request_body(content = Report, content_type = "application/json"),
    responses(
        (status = 204, description = "Recorded (or history is paused)."),
        (status = 400, description = "`invalid_json`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `library:write`.", body = ErrorBody),
        (status = 404, description = "No such video, or not yours to see.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
async fn report(
    State(st): State<ApiState>,
    user: Scoped<LibraryWrite>,
    Path(video_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let r: Report = channels::json_body(&headers, &body)?;
    record(&st, &user, &video_id, r.position_secs).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes one video from the history.
#[utoipa::path(delete, path = "/me/history/{video_id}", tag = "history",
    summary = "Removes a video from the history (idempotent).",
    security(("oauth2" = ["library:write"])),
    params(("video_id" = String, Path, description = "The video.")),
    responses(
        (status = 204, description = "Not in the history (any more)."),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `library:write`.", body = ErrorBody),
        (status = 404, description = "Not a video id.", body = ErrorBody),
    ))]
async fn remove(
    State(st): State<ApiState>,
    user: Scoped<LibraryWrite>,
    Path(video_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&video_id).map_err(|_| ApiError::not_found())?;
    rows::remove(&st.db, user.0.0.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clears the history.
#[utoipa::path(delete, path = "/me/history", tag = "history",
    summary = "Clears the whole history.",
    security(("oauth2" = ["library:write"])),
    responses(
        (status = 204, description = "Cleared."),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `library:write`.", body = ErrorBody),
    ))]
async fn clear(State(st): State<ApiState>, user: Scoped<LibraryWrite>) -> Result<StatusCode, ApiError> {
    rows::clear(&st.db, user.0.0.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One entry.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = HistoryEntry)]
pub struct EntryJson {
    pub video: VideoView,
    pub position_secs: u32,
    pub watched_at: DateTime<Utc>,
}

/// A page of the history.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = History)]
pub struct HistoryPage {
    pub entries: Vec<EntryJson>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
    /// Whether recording is paused.
    pub paused: bool,
}

/// A page of `user`'s history after `cursor`.
pub async fn page(
    st: &ApiState,
    user: &CurrentUser,
    cursor_text: Option<&str>,
    limit: u32,
) -> Result<HistoryPage, ApiError> {
    let limit = limit.clamp(1, 100);
    let after = cursor::decode_time(st, cursor::Kind::History, cursor_text)?;
    let mut entries = rows::list(&st.db, user.0.id, after, limit + 1).await?;
    let next_cursor = next(&mut entries, limit, |e: &Entry| {
        cursor::encode(st, cursor::Kind::History, cursor::time_key(e.watched_at), e.video.id)
    });
    Ok(HistoryPage {
        entries: entries
            .iter()
            .map(|e| EntryJson {
                video: VideoView::build(st, &e.video, Some(user)),
                position_secs: e.position_secs,
                watched_at: e.watched_at,
            })
            .collect(),
        next_cursor,
        paused: rows::paused(&st.db, user.0.id).await?,
    })
}

/// A page query.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// The `next_cursor` of the previous page, as given (signed: anything else is 400
    /// `invalid_cursor`).
    cursor: Option<String>,
    /// 1 to 100 (50 by default; larger values are taken as 100).
    limit: Option<u32>,
}

/// The history.
#[utoipa::path(get, path = "/me/history", tag = "history",
    summary = "The signed-in user's watch history, last watched first, with resume positions.",
    security(("oauth2" = ["library:read"])),
    params(PageQuery),
    responses(
        (status = 200, description = "History.", body = HistoryPage),
        (status = 400, description = "`invalid_cursor`, or a malformed query.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `library:read`.", body = ErrorBody),
    ))]
async fn list(
    State(st): State<ApiState>,
    user: Scoped<LibraryRead>,
    Query(q): Query<PageQuery>,
) -> Result<Json<HistoryPage>, ApiError> {
    Ok(Json(page(&st, &user, q.cursor.as_deref(), q.limit.unwrap_or(50)).await?))
}

/// The history settings.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = HistorySettings)]
struct Settings {
    /// While true, nothing is recorded.
    paused: bool,
}

/// The history settings.
#[utoipa::path(get, path = "/me/history/settings", tag = "history",
    summary = "Whether recording the history is paused.",
    security(("oauth2" = ["library:read"])),
    responses(
        (status = 200, description = "Settings.", body = Settings),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `library:read`.", body = ErrorBody),
    ))]
async fn settings(State(st): State<ApiState>, user: Scoped<LibraryRead>) -> Result<Json<Settings>, ApiError> {
    Ok(Json(Settings { paused: rows::paused(&st.db, user.0.0.id).await? }))
}

/// Pauses or resumes the history.
#[utoipa::path(put, path = "/me/history/settings", tag = "history",
    summary = "Pauses or resumes recording the history. JSON only.",
    security(("oauth2" = ["library:write"])),
    request_body(content = Settings, content_type = "application/json"),
    responses(
        (status = 200, description = "Settings.", body = Settings),
        (status = 400, description = "`invalid_json`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `library:write`.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
async fn change_settings(
    State(st): State<ApiState>,
    user: Scoped<LibraryWrite>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Settings>, ApiError> {
    let s: Settings = channels::json_body(&headers, &body)?;
    rows::set_paused(&st.db, user.0.0.id, s.paused).await?;
    Ok(Json(s))
}
