//! The videos API: one video, a user's videos, the public lists, editing, deleting and views.
//!
//! Visibility: a public or unlisted video is visible to anyone who names it (unlisted ones are
//! never listed); a private one only to its owner — to anyone else it does not exist (404).
//! Media URLs in the answers are signed ([`crate::media`]), so playback needs no further check.
//!
//! Scopes ([`crate::identity`]): seeing one's own private videos and `me/videos` needs
//! `videos:read`; `PATCH`, `DELETE` and a view counted for the user need `videos:write` (a
//! token without it counts as anonymous). A token without `videos:read` is a visitor here.

use crate::identity::{CurrentUser, Scoped, VideosRead, VideosWrite};
use crate::{ApiState, media};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use turtlemen_db::videos::{self as rows, Listing, Metadata, Privacy, Video, VideoState};
use turtlemen_domain::{Category, Role};
use turtlemen_http::{ApiError, ErrorBody};
use turtlemen_identity::Scope;
use turtlemen_storage::StorageKey;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub const MAX_TITLE_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 5000;
pub const MAX_TAGS: usize = 10;
pub const MAX_TAG_CHARS: usize = 30;
pub const MAX_FIELD_CHARS: usize = 50;
pub const MAX_FILENAME_CHARS: usize = 255;

/// The videos routes, each with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_public))
        .routes(routes!(one, edit, remove))
        .routes(routes!(view))
        .routes(routes!(mine))
}

/// The channel a video is published in, as shown with the video.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = VideoChannel)]
pub struct ChannelView {
    pub id: Uuid,
    pub handle: String,
    pub display_name: String,
    /// The owner's username.
    pub username: String,
    /// The channel's page.
    pub url: String,
}

/// A rendition as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Rendition)]
pub struct RenditionView {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bandwidth: u64,
}

/// A video as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Video)]
pub struct VideoView {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub category: Option<String>,
    pub language: Option<String>,
    pub licence: Option<String>,
    pub privacy: Privacy,
    pub state: VideoState,
    /// Processing progress in percent.
    #[schema(maximum = 100)]
    pub progress: u8,
    /// Why processing failed, for the owner.
    pub failure_reason: Option<String>,
    /// True as soon as the first segments are published, while still processing.
    pub playable: bool,
    /// The HLS master playlist (a signed URL valid for 6 to 12 hours) once playable.
    pub hls_url: Option<String>,
    pub poster_url: Option<String>,
    /// WebVTT thumbnails track (cues point into a sprite with #xywh).
    pub storyboard_url: Option<String>,
    pub duration_secs: Option<f64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub renditions: Vec<RenditionView>,
    pub views: u64,
    pub likes: u64,
    pub dislikes: u64,
    /// The caller's rating (only for a token granting `library:read`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub my_rating: Option<crate::ratings::RatingChoice>,
    pub channel: ChannelView,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    /// The video's page.
    pub watch_url: String,
    /// Only for the owner: the uploaded file's name and size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original: Option<OriginalView>,
}

/// The uploaded file (owner only).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Original)]
pub struct OriginalView {
    pub filename: String,
    pub bytes: u64,
}

impl VideoView {
    /// The view of `v` for `viewer` (signed media URLs included when it is playable).
    pub fn build(st: &ApiState, v: &Video, viewer: Option<&CurrentUser>) -> VideoView {
        let owner = viewer.is_some_and(|u| u.0.id == v.owner_id);
        let base = v.playable.then(|| media::base_url(st, v));
        let poster_url = base.as_deref().and_then(|b| poster_url(b, v));
        VideoView {
            id: v.id,
            title: v.title.clone(),
            description: v.description.clone(),
            tags: v.tags.clone(),
            category: v.category.clone(),
            language: v.language.clone(),
            licence: v.licence.clone(),
            privacy: v.privacy,
            state: v.state,
            progress: v.progress,
            failure_reason: v.failure_reason.clone(),
            playable: v.playable,
            hls_url: base.as_ref().map(|b| format!("{b}/hls/master.m3u8")),
            poster_url,
            storyboard_url: base.as_ref().filter(|_| v.has_storyboard).map(|b| format!("{b}/storyboard.vtt")),
            duration_secs: v.duration_secs,
            width: v.width,
            height: v.height,
            renditions: v
                .renditions
                .iter()
                .map(|r| RenditionView {
                    name: r.name.clone(),
                    width: r.width,
                    height: r.height,
                    bandwidth: r.bandwidth,
                })
                .collect(),
            views: v.views,
            likes: v.likes,
            dislikes: v.dislikes,
            my_rating: None,
            channel: ChannelView {
                id: v.channel_id,
                handle: v.channel_handle.clone(),
                display_name: v.channel_display_name.clone(),
                username: v.owner_username.clone(),
                url: crate::channels::page_url(&v.channel_handle),
            },
            created_at: v.created_at,
            published_at: v.published_at,
            watch_url: watch_url(v.id),
            original: owner.then(|| OriginalView { filename: v.original_name.clone(), bytes: v.original_bytes }),
        }
    }
}

/// The poster of `v` under its media URL `base` ([`media::base_url`]), if it has one.
fn poster_url(base: &str, v: &Video) -> Option<String> {
    shows_poster(v.has_poster, v.state).then(|| format!("{base}/poster.jpg"))
}

/// The poster URL of the video `id` at `media_version` if a card `shows` one (playable, and
/// [`shows_poster`]): what a card shows, without the rest of a [`VideoView`].
pub fn card_poster(st: &ApiState, id: Uuid, media_version: u32, shows: bool) -> Option<String> {
    shows.then(|| format!("{}/poster.jpg", media::base_url_of(st, id, media_version)))
}

/// Whether a video has a poster to show: made, or being made from the upload.
pub fn shows_poster(has_poster: bool, state: VideoState) -> bool {
    has_poster || state == VideoState::Processing
}

/// The watch page of a video.
pub fn watch_url(id: Uuid) -> String {
    format!("/videos/{id}")
}

/// Whether `viewer` may see `v` at all.
pub fn may_view(v: &Video, viewer: Option<&CurrentUser>) -> bool {
    // Hidden by moderation or by its owner's ban: its owner (who is told why) and moderators.
    if v.hidden.is_some() {
        return is_owner(v, viewer) || viewer.is_some_and(crate::moderation::acts_as_moderator);
    }
    match v.privacy {
        Privacy::Public | Privacy::Unlisted => v.state != VideoState::Uploading || is_owner(v, viewer),
        Privacy::Private => is_owner(v, viewer),
    }
}

fn is_owner(v: &Video, viewer: Option<&CurrentUser>) -> bool {
    viewer.is_some_and(|u| u.0.id == v.owner_id)
}

/// Whether `user` may change or delete `v`: its owner, or an admin whose token grants the
/// `admin` scope (a third-party app an admin allowed `videos:write` acts on their videos only).
pub fn may_manage(v: &Video, user: &CurrentUser) -> bool {
    user.0.id == v.owner_id || acts_as_admin(user)
}

/// Whether `user` is an admin acting as one: the admin role and a token granting `admin`.
pub fn acts_as_admin(user: &CurrentUser) -> bool {
    user.0.role == Role::Admin && user.scopes().grants(Scope::Admin)
}

/// The video named by `id` if `viewer` may see it; 404 otherwise.
pub async fn visible(st: &ApiState, id: &str, viewer: Option<&CurrentUser>) -> Result<Video, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found())?;
    rows::get(&st.db, id).await?.filter(|v| may_view(v, viewer)).ok_or_else(ApiError::not_found)
}

/// [`visible`] for the watch page: with the video's comment settings and the live it replays,
/// read in the same statement ([`rows::get_watched`]).
pub async fn visible_watched(st: &ApiState, id: &str, viewer: Option<&CurrentUser>) -> Result<rows::Watched, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found())?;
    rows::get_watched(&st.db, id).await?.filter(|w| may_view(&w.video, viewer)).ok_or_else(ApiError::not_found)
}

/// One video.
#[utoipa::path(get, path = "/videos/{id}", tag = "videos",
    summary = "One video. Private videos exist only for their owner, whose token grants `videos:read`; `my_rating` for a token granting `library:read` too.",
    security((), ("oauth2" = ["videos:read"])),
    params(("id" = String, Path, description = "The video (a UUID; anything else is not found).")),
    responses(
        (status = 200, description = "The video.", body = VideoView),
        (status = 404, description = "No such video, or not yours to see.", body = ErrorBody),
    ))]
async fn one(
    State(st): State<ApiState>,
    viewer: Option<Scoped<VideosRead>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let viewer = viewer.as_deref();
    let v = visible(&st, &id, viewer).await?;
    let mut view = VideoView::build(&st, &v, viewer);
    view.my_rating = crate::ratings::mine(&st, &v, viewer).await?;
    let mut res = Json(view).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("private, no-cache"));
    Ok(res)
}

/// `GET /videos`'s query.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PublicQuery {
    /// `recent` (the default) or `trending`.
    #[param(value_type = Option<String>, pattern = "^(recent|trending)$")]
    sort: Option<String>,
    /// Only this category's videos (a slug of the fixed list, e.g. `music`), newest first.
    #[param(max_length = 50)]
    category: Option<String>,
    /// 1 to 100 (24 by default; larger values are taken as 100).
    limit: Option<u32>,
}

/// `GET /me/videos`'s query.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct MineQuery {
    /// 1 to 100 (50 by default; larger values are taken as 100).
    limit: Option<u32>,
    /// Only videos created before this time (paging).
    before: Option<DateTime<Utc>>,
}

/// A list of videos.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct VideoList {
    videos: Vec<VideoView>,
}

/// Public videos that can be played.
#[utoipa::path(get, path = "/videos", tag = "videos",
    summary = "Public videos that can be played, most recent or trending.",
    security((), ("oauth2" = ["videos:read"])),
    params(PublicQuery),
    responses(
        (status = 200, description = "Videos.", body = VideoList),
        (status = 400, description = "A malformed query (`invalid_sort`, or a limit that is not a number).", body = ErrorBody),
    ))]
async fn list_public(
    State(st): State<ApiState>,
    viewer: Option<Scoped<VideosRead>>,
    Query(q): Query<PublicQuery>,
) -> Result<Json<VideoList>, ApiError> {
    let category = q.category.as_deref().map(parse_category).transpose()?;
    let listing = match (q.sort.as_deref(), category) {
        (None | Some("recent"), Some(c)) => Listing::Category(c.slug()),
        (None | Some("recent"), None) => Listing::Recent,
        (Some("trending"), None) => Listing::Trending,
        (Some("trending"), Some(_)) => {
            return Err(ApiError::bad_request("invalid_sort", "A category is listed newest first (sort=recent)."));
        }
        (Some(_), _) => return Err(ApiError::bad_request("invalid_sort", "sort is recent or trending.")),
    };
    let limit = q.limit.unwrap_or(24).clamp(1, 100);
    let videos = rows::list_public(&st.db, listing, limit).await?;
    Ok(Json(VideoList { videos: videos.iter().map(|v| VideoView::build(&st, v, viewer.as_deref())).collect() }))
}

/// The signed-in user's videos.
#[utoipa::path(get, path = "/me/videos", tag = "videos",
    summary = "The signed-in user's videos, newest first.",
    security(("oauth2" = ["videos:read"])),
    params(MineQuery),
    responses(
        (status = 200, description = "Videos.", body = VideoList),
        (status = 400, description = "A malformed query.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `videos:read`.", body = ErrorBody),
    ))]
async fn mine(
    State(st): State<ApiState>,
    user: Scoped<VideosRead>,
    Query(q): Query<MineQuery>,
) -> Result<Json<VideoList>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 100);
    let videos = rows::list_by_owner(&st.db, user.id(), q.before, limit).await?;
    Ok(Json(VideoList { videos: videos.iter().map(|v| VideoView::build(&st, v, Some(&*user))).collect() }))
}

/// A metadata change: every field optional.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataPatch {
    /// 1 to 100 characters on one line (trimmed).
    #[schema(min_length = 1, max_length = 100)]
    pub title: Option<String>,
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    /// At most 10 tags of at most 30 characters, without commas.
    #[schema(max_items = 10)]
    pub tags: Option<Vec<String>>,
    /// At most 50 characters; null or empty clears it.
    #[schema(value_type = Option<String>, max_length = 50)]
    pub category: Option<Option<String>>,
    #[schema(value_type = Option<String>, max_length = 50)]
    pub language: Option<Option<String>>,
    #[schema(value_type = Option<String>, max_length = 50)]
    pub licence: Option<Option<String>>,
    #[schema(value_type = Option<Privacy>)]
    pub privacy: Option<String>,
    /// Who may comment: `open`, `closed` or `held` (every comment waits for approval).
    #[schema(value_type = Option<turtlemen_db::comments::Policy>)]
    pub comment_policy: Option<String>,
}

impl MetadataPatch {
    /// `current` with this change applied, checked.
    pub fn apply(self, current: &Metadata) -> Result<Metadata, ApiError> {
        let privacy = match self.privacy.as_deref() {
            None => current.privacy,
            Some(p) => Privacy::parse(p)
                .ok_or_else(|| ApiError::bad_request("invalid_privacy", "privacy is public, unlisted or private."))?,
        };
        let m = Metadata {
            title: self.title.map(|t| t.trim().to_owned()).unwrap_or_else(|| current.title.clone()),
            description: self.description.map(|d| d.trim().to_owned()).unwrap_or_else(|| current.description.clone()),
            tags: self.tags.map(normalize_tags).unwrap_or_else(|| current.tags.clone()),
            category: match self.category {
                Some(c) => clean_category(c)?,
                None => current.category.clone(),
            },
            language: self.language.map(clean_optional).unwrap_or_else(|| current.language.clone()),
            licence: self.licence.map(clean_optional).unwrap_or_else(|| current.licence.clone()),
            privacy,
        };
        validate(&m)?;
        Ok(m)
    }
}

/// A comment policy as sent, or 400.
pub fn parse_comment_policy(s: &str) -> Result<turtlemen_db::comments::Policy, ApiError> {
    turtlemen_db::comments::Policy::parse(s)
        .ok_or_else(|| ApiError::bad_request("invalid_comment_policy", "comment_policy is open, closed or held."))
}

/// The category named by `s` (slug or label, any case), or a 400 listing the valid slugs.
pub fn parse_category(s: &str) -> Result<Category, ApiError> {
    Category::parse(s).ok_or_else(|| {
        let slugs: Vec<&str> = Category::all().iter().map(|c| c.slug()).collect();
        field_error("category", format!("one of {}", slugs.join(", ")))
    })
}

/// A category as sent: empty clears it, anything else must name one of the list (stored by slug).
fn clean_category(v: Option<String>) -> Result<Option<String>, ApiError> {
    clean_optional(v).map(|c| parse_category(&c).map(|c| c.slug().to_owned())).transpose()
}

fn clean_optional(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn normalize_tags(tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(t)) {
            out.push(t.to_owned());
        }
    }
    out
}

fn field_error(field: &'static str, message: String) -> ApiError {
    ApiError::bad_request("invalid_field", format!("{field}: {message}"))
}

fn has_control(s: &str, allow_newlines: bool) -> bool {
    s.chars().any(|c| c.is_control() && !(allow_newlines && (c == '\n' || c == '\r' || c == '\t')))
}

/// Checks the metadata a user set; the error names the field.
pub fn validate(m: &Metadata) -> Result<(), ApiError> {
    let chars = |s: &str| s.chars().count();
    if m.title.is_empty() || chars(&m.title) > MAX_TITLE_CHARS || has_control(&m.title, false) {
        return Err(field_error("title", format!("1 to {MAX_TITLE_CHARS} characters, on one line")));
    }
    if chars(&m.description) > MAX_DESCRIPTION_CHARS || has_control(&m.description, true) {
        return Err(field_error("description", format!("at most {MAX_DESCRIPTION_CHARS} characters")));
    }
    if m.tags.len() > MAX_TAGS {
        return Err(field_error("tags", format!("at most {MAX_TAGS} tags")));
    }
    if m.tags.iter().any(|t| chars(t) > MAX_TAG_CHARS || has_control(t, false) || t.contains(',')) {
        return Err(field_error("tags", format!("each at most {MAX_TAG_CHARS} characters, without commas")));
    }
    for (name, value) in [("category", &m.category), ("language", &m.language), ("licence", &m.licence)] {
        if value.as_deref().is_some_and(|v| chars(v) > MAX_FIELD_CHARS || has_control(v, false)) {
            return Err(field_error(name, format!("at most {MAX_FIELD_CHARS} characters")));
        }
    }
    Ok(())
}

/// The metadata of a new upload from its `Upload-Metadata` pairs: `filename` is required, the
/// title defaults to the file name without its extension, privacy to public (as PeerTube's
/// default: a first upload shows on the home page; the upload form offers the choice first).
pub fn metadata_from_upload(pairs: &BTreeMap<String, String>) -> Result<(Metadata, String), ApiError> {
    let filename =
        pairs.get("filename").map(|f| f.trim()).filter(|f| !f.is_empty()).ok_or_else(|| {
            ApiError::bad_request("filename_missing", "Upload-Metadata must carry the file's filename.")
        })?;
    if filename.chars().count() > MAX_FILENAME_CHARS || has_control(filename, false) {
        return Err(field_error("filename", format!("at most {MAX_FILENAME_CHARS} characters")));
    }
    // Only the last path component, whatever separator the client's system uses.
    let base = filename.rsplit(['/', '\\']).next().unwrap_or(filename);
    let stem = base.rsplit_once('.').map_or(base, |(s, _)| s).trim();
    let default_title: String = if stem.is_empty() { base } else { stem }.chars().take(MAX_TITLE_CHARS).collect();
    let tags = pairs.get("tags").map(|t| t.split(',').map(str::to_owned).collect()).unwrap_or_default();
    let patch = MetadataPatch {
        title: Some(
            pairs.get("title").map(|t| t.trim()).filter(|t| !t.is_empty()).unwrap_or(&default_title).to_owned(),
        ),
        description: pairs.get("description").cloned(),
        tags: Some(tags),
        category: pairs.get("category").cloned().map(Some),
        language: pairs.get("language").cloned().map(Some),
        licence: pairs.get("licence").or_else(|| pairs.get("license")).cloned().map(Some),
        privacy: pairs.get("privacy").cloned(),
        comment_policy: None,
    };
    let base_metadata = Metadata {
        title: String::new(),
        description: String::new(),
        tags: Vec::new(),
        category: None,
        language: None,
        licence: None,
        privacy: Privacy::Public,
    };
    Ok((patch.apply(&base_metadata)?, base.to_owned()))
}

fn metadata_of(v: &Video) -> Metadata {
    Metadata {
        title: v.title.clone(),
        description: v.description.clone(),
        tags: v.tags.clone(),
        category: v.category.clone(),
        language: v.language.clone(),
        licence: v.licence.clone(),
        privacy: v.privacy,
    }
}

/// The video `user` may manage, or 404.
async fn managed(st: &ApiState, id: &str, user: &CurrentUser) -> Result<Video, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found())?;
    rows::get(&st.db, id).await?.filter(|v| may_manage(v, user)).ok_or_else(ApiError::not_found)
}

/// Changes a video's metadata. The owner (or an admin) applies the change, with a token that
/// grants `videos:write`.
pub async fn update(st: &ApiState, user: &CurrentUser, id: &str, mut patch: MetadataPatch) -> Result<Video, ApiError> {
    user.require(Scope::VideosWrite)?;
    let v = managed(st, id, user).await?;
    let policy = patch.comment_policy.take().filter(|p| !p.is_empty()).map(|p| parse_comment_policy(&p)).transpose()?;
    let m = patch.apply(&metadata_of(&v))?;
    rows::update_metadata(&st.db, v.id, &m).await?;
    if let Some(p) = policy {
        turtlemen_db::comments::set_policy(&st.db, v.id, p).await?;
    }
    if m.privacy == Privacy::Public && v.privacy != Privacy::Public {
        // Made public: its subscribers hear of it now (once per video; nothing while it is not
        // yet playable, which queues it then) and their feeds get it. The change stands
        // whatever happens here.
        if let Err(e) = turtlemen_db::notifications::announce_relisted_video(&st.db, v.id).await {
            tracing::error!(video.id = %v.id, error = %e, "cannot queue the new-video notifications");
        }
    }
    rows::get(&st.db, v.id).await?.ok_or_else(ApiError::not_found)
}

/// `PATCH /api/v1/videos/{id}` with a JSON body (a cross-site form cannot send one).
#[utoipa::path(patch, path = "/videos/{id}", tag = "videos",
    summary = "Changes a video's metadata (owner or admin). JSON only.",
    security(("oauth2" = ["videos:write"])),
    params(("id" = String, Path, description = "The video.")),
    request_body(content = MetadataPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed video.", body = VideoView),
        (status = 400, description = "`invalid_json`, `invalid_field` (the message names it), `invalid_privacy` or `invalid_comment_policy`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `videos:write`.", body = ErrorBody),
        (status = 404, description = "No such video, or not yours to change.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
async fn edit(
    State(st): State<ApiState>,
    user: Scoped<VideosWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<VideoView>, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the change as JSON (Content-Type: application/json).",
        ));
    }
    let patch: MetadataPatch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("The body is not a valid change: {e}")))?;
    let v = update(&st, &user, &id, patch).await?;
    Ok(Json(VideoView::build(&st, &v, Some(&*user))))
}

/// Deletes a video and every stored object of it (original, HLS output, thumbnails), then its
/// row; an unfinished upload's staging bytes go too. Needs `videos:write`.
pub async fn delete(st: &ApiState, user: &CurrentUser, id: &str) -> Result<(), ApiError> {
    user.require(Scope::VideosWrite)?;
    let v = managed(st, id, user).await?;
    erase(st, &v).await?;
    tracing::info!(video.id = %v.id, user.id = %user.0.id.0, "video deleted");
    Ok(())
}

/// Removes video `v` for good: its upload in progress, every stored object, then the row (a
/// crash in between leaves the row, so it can be deleted again). The caller has decided who
/// may (its owner, an admin, a moderator acting on a report).
pub async fn erase(st: &ApiState, v: &Video) -> Result<(), ApiError> {
    for upload in turtlemen_db::uploads::for_video(&st.db, v.id).await? {
        crate::uploads::discard(st, &upload).await?;
    }
    st.storage.delete_prefix(&StorageKey::video(v.id)).await.map_err(|e| ApiError::internal(&e))?;
    rows::delete(&st.db, v.id).await?;
    Ok(())
}

/// Deletes a video.
#[utoipa::path(delete, path = "/videos/{id}", tag = "videos",
    summary = "Deletes a video and every stored file of it (owner or admin).",
    security(("oauth2" = ["videos:write"])),
    params(("id" = String, Path, description = "The video.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `videos:write`.", body = ErrorBody),
        (status = 404, description = "No such video, or not yours to delete.", body = ErrorBody),
    ))]
async fn remove(
    State(st): State<ApiState>,
    user: Scoped<VideosWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete(&st, &user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/videos/{id}/views`: the player reports a view; counted once per viewer per
/// window, written in batches. It counts for the user only with `videos:write`.
#[utoipa::path(post, path = "/videos/{id}/views", tag = "videos",
    summary = "Reports a view; counted once per viewer per hour (per user with `videos:write`, else per address).",
    security((), ("oauth2" = ["videos:write"])),
    params(("id" = String, Path, description = "The video.")),
    responses(
        (status = 204, description = "Reported."),
        (status = 400, description = "`not_playable`: the video cannot be played yet.", body = ErrorBody),
        (status = 404, description = "No such video, or not yours to see.", body = ErrorBody),
    ))]
async fn view(
    State(st): State<ApiState>,
    viewer: Option<Scoped<VideosRead>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
) -> Result<StatusCode, ApiError> {
    let v = visible(&st, &id, viewer.as_deref()).await?;
    if !v.playable {
        return Err(ApiError::bad_request("not_playable", "This video cannot be played yet."));
    }
    let who = match viewer.as_deref().filter(|u| u.require(Scope::VideosWrite).is_ok()) {
        Some(u) => format!("user:{}", u.0.id.0),
        None => {
            let ip = st.trusted_proxies.client_ip(peer.ip(), &headers);
            let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
            format!("anon:{ip}:{agent}")
        }
    };
    st.views.record(v.id, &who).await;
    Ok(StatusCode::NO_CONTENT)
}
