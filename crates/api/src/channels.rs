//! The channels API: a channel's public profile, creating more channels, and the owner's edits.
//!
//! - `GET /api/v1/channels/{handle}`: anyone; unknown handles are 404.
//! - `GET /api/v1/channels/{handle}/videos?sort=newest|views&cursor=`: its public, playable
//!   videos (never unlisted or private ones, not even for the owner: the studio lists those).
//! - `POST /api/v1/channels` `{"handle", "display_name"?, "description"?}`: a signed-in user
//!   creates another channel (at most [`MAX_CHANNELS_PER_USER`]); the handle must parse as a
//!   [`Handle`] and be free among every username and handle (409 `handle_taken`).
//! - `PATCH /api/v1/channels/{handle}` (JSON only): display name, description, links; by the
//!   owner or an admin. Channels are public, so another user gets 403 (not 404, unlike a private
//!   video: the channel's existence is no secret); a visitor 401.
//!
//! Text is checked here, once, for the API and the pages alike: lengths, no control
//! characters (newlines allowed in descriptions), no Unicode bidirectional overrides or isolates
//! (they would reorder the text around them); links are absolute `http`/`https` URLs without
//! credentials, parsed by the `url` crate.

use crate::identity::{ChannelsWrite, CurrentUser, Scoped, SubscriptionsRead};
use crate::{ApiState, cursor, videos};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use turtlemen_db::DbError;
use turtlemen_db::channels::{self as rows, Channel, Link, PageState, Picture, Profile, VideoAfter, VideoSort};
use turtlemen_db::videos::Card;
use turtlemen_domain::Handle;
use turtlemen_http::{ApiError, ErrorBody};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
pub const MAX_DESCRIPTION_CHARS: usize = 5000;
pub const MAX_LINKS: usize = 5;
pub const MAX_LINK_TITLE_CHARS: usize = 50;
pub const MAX_LINK_URL_CHARS: usize = 300;
pub const MAX_CHANNELS_PER_USER: usize = 20;

/// The channels routes, each with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(create)).routes(routes!(one, edit)).routes(routes!(channel_videos))
}

/// A channel as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Channel)]
pub struct ChannelJson {
    pub id: Uuid,
    pub handle: String,
    pub display_name: String,
    pub description: String,
    pub links: Vec<Link>,
    pub subscriber_count: u64,
    /// The owner's username.
    pub owner: String,
    /// The channel's page.
    pub url: String,
    pub created_at: DateTime<Utc>,
    /// The avatar (256 × 256 JPEG; 96 and 48 too, by changing the size in the name), or null.
    pub avatar_url: Option<String>,
    /// The banner (1920 × 320 JPEG; 960 too), or null.
    pub banner_url: Option<String>,
    /// Whether the signed-in caller follows it (absent for visitors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribed: Option<bool>,
}

impl ChannelJson {
    pub fn build(c: &Channel, subscribed: Option<bool>) -> ChannelJson {
        ChannelJson {
            id: c.id,
            handle: c.handle.clone(),
            display_name: c.display_name.clone(),
            description: c.description.clone(),
            links: c.links.clone(),
            subscriber_count: c.subscriber_count,
            owner: c.owner_username.clone(),
            url: page_url(&c.handle),
            created_at: c.created_at,
            avatar_url: crate::channel_images::largest_url(c, Picture::Avatar),
            banner_url: crate::channel_images::largest_url(c, Picture::Banner),
            subscribed,
        }
    }
}

/// The page of a channel: `/@handle`, the handle percent-encoded where it is not ASCII.
pub fn page_url(handle: &str) -> String {
    let mut out = String::from("/@");
    for b in handle.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The channel named by `handle` (as typed or carried in a URL), or 404 — also for a channel
/// suspended by its owner's ban (the one place the API and the pages find a channel).
pub async fn find(st: &ApiState, handle: &str) -> Result<Channel, ApiError> {
    let key = Handle::lookup_key(handle).ok_or_else(ApiError::not_found)?;
    rows::find_by_key(&st.db, &key).await?.filter(|c| !c.suspended).ok_or_else(ApiError::not_found)
}

/// [`find`] for the channel's page: with its owner's channels and whether `viewer` follows it,
/// read in the same statement ([`rows::page_state`]).
pub async fn find_for_page(st: &ApiState, handle: &str, viewer: Option<&CurrentUser>) -> Result<PageState, ApiError> {
    let key = Handle::lookup_key(handle).ok_or_else(ApiError::not_found)?;
    rows::page_state(&st.db, &key, viewer.map(|u| u.0.id))
        .await?
        .filter(|p| !p.channel.suspended)
        .ok_or_else(ApiError::not_found)
}

/// Whether `user` owns `c`.
pub fn owns(c: &Channel, user: &CurrentUser) -> bool {
    c.owner_id == user.0.id
}

/// Whether `user` may change `c`: its owner, or an admin acting as one (the rule of
/// [`videos::may_manage`]).
pub fn may_manage(c: &Channel, user: &CurrentUser) -> bool {
    owns(c, user) || videos::acts_as_admin(user)
}

/// Refuses (403 `not_your_channel`) a caller who may not change `c`. A channel is public, so
/// unlike a private video it is not hidden behind a 404.
pub fn check_manage(c: &Channel, user: &CurrentUser) -> Result<(), ApiError> {
    if may_manage(c, user) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "not_your_channel", "Only the channel's owner may change it."))
    }
}

fn field_error(field: &'static str, message: String) -> ApiError {
    ApiError::bad_request("invalid_field", format!("{field}: {message}"))
}

/// Unicode bidirectional embeddings, overrides and isolates: they reorder the text after them
/// (the plain direction marks LRM, RLM and ALM stay allowed: right-to-left names need them).
pub(crate) fn has_bidi_control(s: &str) -> bool {
    s.chars().any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
}

pub(crate) fn has_control(s: &str, allow_newlines: bool) -> bool {
    s.chars().any(|c| c.is_control() && !(allow_newlines && matches!(c, '\n' | '\r' | '\t'))) || has_bidi_control(s)
}

/// A checked display name.
pub fn check_display_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_DISPLAY_NAME_CHARS || has_control(name, false) {
        return Err(field_error(
            "display_name",
            format!("1 to {MAX_DISPLAY_NAME_CHARS} characters on one line, without control or direction characters"),
        ));
    }
    Ok(name.to_owned())
}

pub(crate) fn check_description(text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.chars().count() > MAX_DESCRIPTION_CHARS || has_control(text, true) {
        return Err(field_error(
            "description",
            format!("at most {MAX_DESCRIPTION_CHARS} characters, without control or direction characters"),
        ));
    }
    Ok(text.to_owned())
}

fn check_links(links: Vec<Link>) -> Result<Vec<Link>, ApiError> {
    if links.len() > MAX_LINKS {
        return Err(field_error("links", format!("at most {MAX_LINKS} links")));
    }
    links
        .into_iter()
        .map(|l| {
            let title = l.title.trim().to_owned();
            if title.is_empty() || title.chars().count() > MAX_LINK_TITLE_CHARS || has_control(&title, false) {
                return Err(field_error("links", format!("each title 1 to {MAX_LINK_TITLE_CHARS} characters")));
            }
            let raw = l.url.trim();
            let parsed = (raw.len() <= MAX_LINK_URL_CHARS).then(|| url::Url::parse(raw).ok()).flatten();
            let ok = parsed.as_ref().is_some_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some_and(|h| !h.is_empty())
                    && u.username().is_empty()
                    && u.password().is_none()
            });
            match parsed {
                Some(u) if ok => Ok(Link { title, url: u.to_string() }),
                _ => Err(field_error(
                    "links",
                    format!(
                        "each URL an absolute http:// or https:// address of at most {MAX_LINK_URL_CHARS} characters"
                    ),
                )),
            }
        })
        .collect()
}

/// A change to a channel's profile: every field optional.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ChannelPatch)]
pub struct ProfilePatch {
    /// 1 to 64 characters on one line, without control or direction characters.
    #[schema(min_length = 1, max_length = 64)]
    pub display_name: Option<String>,
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    #[schema(max_items = 5)]
    pub links: Option<Vec<Link>>,
}

impl ProfilePatch {
    /// `c`'s profile with this change applied, checked.
    pub fn apply(self, c: &Channel) -> Result<Profile, ApiError> {
        Ok(Profile {
            display_name: match self.display_name {
                Some(n) => check_display_name(&n)?,
                None => c.display_name.clone(),
            },
            description: match self.description {
                Some(d) => check_description(&d)?,
                None => c.description.clone(),
            },
            links: match self.links {
                Some(l) => check_links(l)?,
                None => c.links.clone(),
            },
        })
    }
}

/// Applies `patch` to the channel named `handle` for `user` (its owner or an admin).
pub async fn update(st: &ApiState, user: &CurrentUser, handle: &str, patch: ProfilePatch) -> Result<Channel, ApiError> {
    let c = find(st, handle).await?;
    check_manage(&c, user)?;
    let profile = patch.apply(&c)?;
    rows::update_profile(&st.db, c.id, &profile).await?;
    rows::get(&st.db, c.id).await?.ok_or_else(ApiError::not_found)
}

/// Refuses a body that is not JSON (a cross-site form cannot send JSON), then parses it.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the request as JSON (Content-Type: application/json).",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("The body is not valid: {e}")))
}

async fn subscribed(st: &ApiState, viewer: Option<&CurrentUser>, c: &Channel) -> Result<Option<bool>, ApiError> {
    match viewer {
        Some(u) => Ok(Some(turtlemen_db::subscriptions::is_subscribed(&st.db, u.0.id, c.id).await?)),
        None => Ok(None),
    }
}

/// A channel's public profile.
#[utoipa::path(get, path = "/channels/{handle}", tag = "channels",
    summary = "A channel's public profile; `subscribed` tells a caller whose token grants `subscriptions:read` whether they follow it.",
    security((), ("oauth2" = ["subscriptions:read"])),
    params(("handle" = String, Path, description = "The channel's handle (any case).")),
    responses(
        (status = 200, description = "The channel.", body = ChannelJson),
        (status = 404, description = "No channel has this handle.", body = ErrorBody),
    ))]
async fn one(
    State(st): State<ApiState>,
    viewer: Option<Scoped<SubscriptionsRead>>,
    Path(handle): Path<String>,
) -> Result<Response, ApiError> {
    let c = find(&st, &handle).await?;
    let subscribed = subscribed(&st, viewer.as_deref(), &c).await?;
    let mut res = Json(ChannelJson::build(&c, subscribed)).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("private, no-cache"));
    Ok(res)
}

/// Changes a channel's profile.
#[utoipa::path(patch, path = "/channels/{handle}", tag = "channels",
    summary = "Changes a channel's display name, description and links (owner or admin; JSON only).",
    security(("oauth2" = ["channels:write"])),
    params(("handle" = String, Path, description = "The channel's handle (any case).")),
    request_body(content = ProfilePatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed channel.", body = ChannelJson),
        (status = 400, description = "`invalid_json` or `invalid_field` (the message names it).", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`not_your_channel`, or `insufficient_scope` (no `channels:write`).", body = ErrorBody),
        (status = 404, description = "No channel has this handle.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
async fn edit(
    State(st): State<ApiState>,
    scoped: Scoped<ChannelsWrite>,
    Path(handle): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<ChannelJson>, ApiError> {
    let user = scoped.0;
    let patch: ProfilePatch = json_body(&headers, &body)?;
    let c = update(&st, &user, &handle, patch).await?;
    let subscribed = subscribed(&st, Some(&user), &c).await?;
    Ok(Json(ChannelJson::build(&c, subscribed)))
}

/// A new channel.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewChannel {
    /// Letters, digits, '_', '-', '.'; 3 to 32; unique across usernames and handles,
    /// case-insensitively; reserved words refused.
    #[schema(min_length = 3, max_length = 32)]
    handle: String,
    /// The handle by default.
    #[schema(min_length = 1, max_length = 64)]
    display_name: Option<String>,
    #[schema(max_length = 5000)]
    description: Option<String>,
}

/// Creates a channel.
#[utoipa::path(post, path = "/channels", tag = "channels",
    summary = "Creates another channel for the signed-in user (JSON only).",
    security(("oauth2" = ["channels:write"])),
    request_body(content = NewChannel, content_type = "application/json"),
    responses(
        (status = 201, description = "The channel.", body = ChannelJson, headers(("Location" = String, description = "The channel in the API."))),
        (status = 400, description = "`invalid_json`, `invalid_field` (the message names it) or `too_many_channels`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `channels:write`.", body = ErrorBody),
        (status = 409, description = "`handle_taken`.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
async fn create(
    State(st): State<ApiState>,
    scoped: Scoped<ChannelsWrite>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let user = scoped.0;
    let new: NewChannel = json_body(&headers, &body)?;
    let handle = Handle::parse(&new.handle).map_err(|e| field_error("handle", e.to_string()))?;
    let display_name = check_display_name(new.display_name.as_deref().unwrap_or(handle.as_str()))?;
    let description = new.description.as_deref().map(check_description).transpose()?;
    if rows::list_by_owner(&st.db, user.0.id).await?.len() >= MAX_CHANNELS_PER_USER {
        return Err(ApiError::bad_request(
            "too_many_channels",
            format!("An account may have at most {MAX_CHANNELS_PER_USER} channels."),
        ));
    }
    let mut c = rows::create(&st.db, user.0.id, &handle, &display_name).await.map_err(|e| match e {
        DbError::Conflict { .. } => {
            ApiError::new(StatusCode::CONFLICT, "handle_taken", "This handle is taken; choose another.")
        }
        other => other.into(),
    })?;
    if let Some(description) = description {
        let profile = Profile { display_name: c.display_name.clone(), description, links: Vec::new() };
        rows::update_profile(&st.db, c.id, &profile).await?;
        c = rows::get(&st.db, c.id).await?.ok_or_else(ApiError::not_found)?;
    }
    tracing::info!(channel.id = %c.id, user.id = %user.0.id.0, "channel created");
    let mut res = (StatusCode::CREATED, Json(ChannelJson::build(&c, Some(false)))).into_response();
    if let Ok(v) =
        header::HeaderValue::from_str(&format!("/api/v1/channels/{}", page_url(&c.handle).trim_start_matches("/@")))
    {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// A channel's videos' query.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VideosQuery {
    /// `newest` (the default) or `views`.
    pub sort: Option<String>,
    /// The `next_cursor` of the previous page, as given (opaque, signed: anything else is 400
    /// `invalid_cursor`).
    pub cursor: Option<String>,
    /// 1 to 100 (24 by default; larger values are taken as 100).
    pub limit: Option<u32>,
}

/// One page of a channel's listed videos (whole for the API, cards for the channel's page) and
/// the cursor of the next, if any.
pub struct ListedPage<T = turtlemen_db::videos::Video> {
    pub videos: Vec<T>,
    pub next_cursor: Option<String>,
    pub sort: VideoSort,
}

/// Parses `sort` (`newest`, the default, or `views`).
pub fn parse_sort(sort: Option<&str>) -> Result<VideoSort, ApiError> {
    match sort {
        None | Some("") | Some("newest") => Ok(VideoSort::Newest),
        Some("views") => Ok(VideoSort::MostViewed),
        Some(_) => Err(ApiError::bad_request("invalid_sort", "sort is newest or views.")),
    }
}

/// A page of `c`'s listed videos.
pub async fn video_page(st: &ApiState, c: &Channel, q: &VideosQuery, limit: u32) -> Result<ListedPage, ApiError> {
    let (sort, after) = listed_after(st, q)?;
    let videos = rows::videos(&st.db, c.id, sort, after, limit + 1).await?;
    Ok(listed_page(st, videos, sort, limit, |v| (v.listed_at(), v.views, v.id)))
}

/// The same page as [`video_page`], as cards (what the channel's page shows).
pub async fn card_page(st: &ApiState, c: &Channel, q: &VideosQuery, limit: u32) -> Result<ListedPage<Card>, ApiError> {
    let (sort, after) = listed_after(st, q)?;
    let cards = rows::video_cards(&st.db, c.id, sort, after, limit + 1).await?;
    Ok(listed_page(st, cards, sort, limit, |v| (v.listed_at(), v.views, v.id)))
}

/// The order `q` asks for and where its cursor says the page starts.
fn listed_after(st: &ApiState, q: &VideosQuery) -> Result<(VideoSort, Option<VideoAfter>), ApiError> {
    let sort = parse_sort(q.sort.as_deref())?;
    let after = match q.cursor.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => {
            let (k, id) = cursor::decode(st, cursor_kind(sort), t)?;
            Some(match sort {
                VideoSort::Newest => VideoAfter::Published(cursor::key_time(k), id),
                VideoSort::MostViewed => VideoAfter::Views(k, id),
            })
        }
    };
    Ok((sort, after))
}

fn cursor_kind(sort: VideoSort) -> cursor::Kind {
    match sort {
        VideoSort::Newest => cursor::Kind::ChannelNewest,
        VideoSort::MostViewed => cursor::Kind::ChannelViews,
    }
}

/// `limit` of `items` (read one more than a page) and the cursor after the last, by `key`
/// (listed time, views, id), if there are more.
fn listed_page<T>(
    st: &ApiState,
    mut items: Vec<T>,
    sort: VideoSort,
    limit: u32,
    key: impl Fn(&T) -> (DateTime<Utc>, u64, Uuid),
) -> ListedPage<T> {
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|v| {
            let (at, views, id) = key(v);
            let k = match sort {
                VideoSort::Newest => cursor::time_key(at),
                VideoSort::MostViewed => i64::try_from(views).unwrap_or(i64::MAX),
            };
            cursor::encode(st, cursor_kind(sort), k, id)
        })
    } else {
        None
    };
    ListedPage { videos: items, next_cursor, sort }
}

/// A page of videos.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct VideoPage {
    pub videos: Vec<videos::VideoView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A channel's videos.
#[utoipa::path(get, path = "/channels/{handle}/videos", tag = "channels",
    summary = "A channel's public, playable videos (with `original` for the owner signed in with full access).",
    params(("handle" = String, Path, description = "The channel's handle (any case)."), VideosQuery),
    responses(
        (status = 200, description = "Videos.", body = VideoPage),
        (status = 400, description = "`invalid_sort`, `invalid_cursor`, or a malformed query.", body = ErrorBody),
        (status = 404, description = "No channel has this handle.", body = ErrorBody),
    ))]
async fn channel_videos(
    State(st): State<ApiState>,
    viewer: Option<CurrentUser>,
    Path(handle): Path<String>,
    Query(q): Query<VideosQuery>,
) -> Result<Json<VideoPage>, ApiError> {
    let c = find(&st, &handle).await?;
    let limit = q.limit.unwrap_or(24).clamp(1, 100);
    let page = video_page(&st, &c, &q, limit).await?;
    Ok(Json(VideoPage {
        videos: page.videos.iter().map(|v| videos::VideoView::build(&st, v, viewer.as_ref())).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// The channel a new upload goes to: the one named by the `channel` metadata (a handle the
/// uploader owns: someone else's is 403 `not_your_channel`, an unknown one 400
/// `unknown_channel`), else the uploader's first channel.
pub async fn for_upload(st: &ApiState, user: &CurrentUser, named: Option<&str>) -> Result<Uuid, ApiError> {
    match named.map(str::trim).filter(|h| !h.is_empty()) {
        Some(handle) => {
            let c = match find(st, handle.trim_start_matches('@')).await {
                Ok(c) => c,
                Err(e) if e.status == StatusCode::NOT_FOUND => {
                    return Err(ApiError::bad_request("unknown_channel", "No channel has this handle."));
                }
                Err(e) => return Err(e),
            };
            if !owns(&c, user) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "not_your_channel",
                    "You can only publish in your own channels.",
                ));
            }
            Ok(c.id)
        }
        None => rows::first_of_owner(&st.db, user.0.id).await?.map(|c| c.id).ok_or_else(|| {
            ApiError::new(StatusCode::CONFLICT, "no_channel", "Your account has no channel to publish in.")
        }),
    }
}
