//! Live streams in the API: creating a live (its stream key shown once, stored as a SHA-256),
//! reading one (state, `hls_url` while live, `replay_video_id` once the replay exists),
//! listing one's own, regenerating the key and ending it; the LL-HLS playlists and parts under
//! signed media URLs; and [`LiveDirectory`], the database side the ingest ([`turtlemen_live`])
//! calls — key checks, drops, the end and the replay.
//!
//! Visibility is the videos' rule ([`crate::videos`]): public and unlisted lives are visible to
//! anyone who names them, a private one only to its owner (404 to anyone else), and its media
//! URLs are signed for those who may see it, so a part request is checked by arithmetic alone.
//! Scopes: reading needs `videos:read` for one's own private lives, changes need
//! `videos:write` — a live is a video being made, so it shares the videos' scopes.

use crate::channels::json_body;
use crate::identity::{CurrentUser, Scoped, VideosRead, VideosWrite};
use crate::{ApiState, cursor};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use turtlemen_db::Db;
use turtlemen_db::lives::{self as rows, ClaimRefused, Live, LiveState, NewLive};
use turtlemen_db::videos::{Metadata, Privacy};
use turtlemen_http::{ApiError, ErrorBody};
use turtlemen_live::{Directory, EndReason, Hub, Refusal, StoredSegment};
use turtlemen_storage::{Storage, StorageKey};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub mod relay;
pub mod replay;

/// What the API knows of this process's ingest.
#[derive(Clone)]
pub struct LiveServices {
    /// The lives this process ingests; `None` when it runs no ingest.
    pub hub: Option<Arc<Hub>>,
    /// `rtmp://HOST:PORT/live`, the address encoders publish to.
    pub rtmp_url: String,
    /// `rtmps://HOST:PORT/live`, the same ingest over TLS, when it listens for RTMPS.
    pub rtmps_url: Option<String>,
    /// Fetches the media of lives packaged by other processes.
    pub relay: Arc<relay::Relay>,
}

/// The lives routes, each with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(one, change))
        .routes(routes!(mine))
        .routes(routes!(regenerate_key))
        .routes(routes!(end))
}

/// The live media routes (not in the API document: playlists and parts, like `/media`).
pub fn media_routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route("/media/live/{token}/{id}/{file}", axum::routing::get(serve_media))
        .route("/media/live/{token}/{id}/{rung}/{file}", axum::routing::get(serve_rung_media))
}

/// The channel a live is shown in.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = LiveChannel)]
pub struct LiveChannelView {
    pub id: Uuid,
    pub handle: String,
    pub display_name: String,
    pub url: String,
}

/// A live as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Live)]
pub struct LiveView {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub privacy: Privacy,
    pub state: LiveState,
    /// The Low-Latency HLS playlist (a signed URL) while live and packaged.
    pub hls_url: Option<String>,
    /// The ordinary video the recording became, once it exists.
    pub replay_video_id: Option<Uuid>,
    /// While live: about how many players watch (those that asked for the playlist in the
    /// last seconds).
    pub viewers: Option<u64>,
    pub channel: LiveChannelView,
    /// The live's page.
    pub watch_url: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Owner only: where to publish (`rtmp://HOST:PORT/live`; the stream key follows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtmp_url: Option<String>,
    /// Owner only, when the instance takes RTMPS: the same over TLS (`rtmps://HOST:PORT/live`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtmps_url: Option<String>,
    /// Owner only: whether an encoder is connected now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected: Option<bool>,
    /// Owner only: why the last connection, or the live, ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reason: Option<String>,
    /// Owner only: whether the recording becomes a video when the live ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replays: Option<bool>,
}

impl LiveView {
    pub fn build(st: &ApiState, l: &Live, viewer: Option<&CurrentUser>) -> LiveView {
        let owner = viewer.is_some_and(|u| u.0.id == l.owner_id);
        let live = l.state == LiveState::Live;
        // Each player's own nonce in its playlist URL lets the packager count distinct players.
        let hls_url = live.then(|| format!("{}/live.m3u8?v={}", media_base(st, l.id), Uuid::new_v4().simple()));
        let here = st.live.hub.as_ref().and_then(|h| h.stream(l.id));
        let viewers = live.then(|| here.map_or(l.viewers, |s| s.viewers(turtlemen_live::stream::VIEWER_WINDOW)));
        LiveView {
            id: l.id,
            title: l.title.clone(),
            description: l.description.clone(),
            privacy: l.privacy,
            state: l.state,
            hls_url,
            replay_video_id: l.replay_video_id,
            viewers,
            channel: LiveChannelView {
                id: l.channel_id,
                handle: l.channel_handle.clone(),
                display_name: l.channel_display_name.clone(),
                url: crate::channels::page_url(&l.channel_handle),
            },
            watch_url: watch_url(l.id),
            created_at: l.created_at,
            started_at: l.started_at,
            ended_at: l.ended_at,
            rtmp_url: owner.then(|| st.live.rtmp_url.clone()),
            rtmps_url: st.live.rtmps_url.clone().filter(|_| owner),
            connected: owner.then_some(l.connected),
            last_reason: if owner { l.last_reason.clone() } else { None },
            replays: owner.then_some(l.replays),
        }
    }
}

/// The live's page.
pub fn watch_url(id: Uuid) -> String {
    format!("/lives/{id}")
}

/// The signed base of a live's media (no trailing slash).
pub fn media_base(st: &ApiState, id: Uuid) -> String {
    format!("/media/live/{}/{id}", st.media.token(id, SystemTime::now()))
}

/// Whether `viewer` may see `l`.
pub fn may_view(l: &Live, viewer: Option<&CurrentUser>) -> bool {
    match l.privacy {
        Privacy::Public | Privacy::Unlisted => true,
        Privacy::Private => viewer.is_some_and(|u| u.0.id == l.owner_id),
    }
}

/// Whether `user` may change `l`: its owner, or an admin acting as one.
pub fn may_manage(l: &Live, user: &CurrentUser) -> bool {
    user.0.id == l.owner_id || crate::videos::acts_as_admin(user)
}

/// The live named by `id` if `viewer` may see it; 404 otherwise.
pub async fn visible(st: &ApiState, id: &str, viewer: Option<&CurrentUser>) -> Result<Live, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found())?;
    rows::get(&st.db, id).await?.filter(|l| may_view(l, viewer)).ok_or_else(ApiError::not_found)
}

async fn managed(st: &ApiState, id: &str, user: &CurrentUser) -> Result<Live, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found())?;
    let l = rows::get(&st.db, id).await?.ok_or_else(ApiError::not_found)?;
    if !may_manage(&l, user) && !may_view(&l, Some(user)) {
        return Err(ApiError::not_found());
    }
    if !may_manage(&l, user) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "not_your_live", "Only the streamer can change this live."));
    }
    Ok(l)
}

/// A new random stream key: 32 bytes, base64url (43 characters).
pub fn new_key() -> Result<String, ApiError> {
    use base64::Engine;
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| ApiError::unavailable("No randomness available."))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a stream key.
pub fn hash_key(key: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// `POST /lives`'s body.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewLive)]
pub struct NewLiveBody {
    /// 1 to 100 characters on one line.
    #[schema(min_length = 1, max_length = 100)]
    pub title: String,
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    /// `public` (the default), `unlisted` or `private`.
    #[schema(value_type = Option<Privacy>)]
    pub privacy: Option<String>,
    /// One of the streamer's channels by handle; their first channel by default.
    pub channel: Option<String>,
    /// Whether the recording becomes a video when the live ends (default true).
    pub replays: Option<bool>,
}

/// A live just made, or a regenerated key: the only time the stream key is shown.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = LiveWithKey)]
pub struct LiveWithKey {
    pub id: Uuid,
    /// Shown once: only its hash is kept. Paste it into the encoder's "stream key".
    pub stream_key: String,
    /// `rtmp://HOST:PORT/live`: the encoder's "server".
    pub rtmp_url: String,
    /// `rtmps://HOST:PORT/live`, when the instance takes RTMPS: the same server over TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtmps_url: Option<String>,
    pub watch_url: String,
    pub live: LiveView,
}

/// Parses title, description and privacy with the videos' rules.
pub fn check_fields(
    title: &str,
    description: &str,
    privacy: Option<&str>,
) -> Result<(String, String, Privacy), ApiError> {
    let privacy = match privacy {
        None => Privacy::Public,
        Some(p) => Privacy::parse(p)
            .ok_or_else(|| ApiError::bad_request("invalid_privacy", "privacy is public, unlisted or private."))?,
    };
    let m = Metadata {
        title: title.trim().to_owned(),
        description: description.trim().to_owned(),
        tags: Vec::new(),
        category: None,
        language: None,
        licence: None,
        privacy,
    };
    crate::videos::validate(&m)?;
    for (name, text) in [("title", &m.title), ("description", &m.description)] {
        if crate::channels::has_bidi_control(text) {
            return Err(ApiError::bad_request(
                "invalid_field",
                format!("{name}: no bidirectional overrides or isolates (they reorder the text around them)"),
            ));
        }
    }
    Ok((m.title, m.description, privacy))
}

/// Creates a live for `user` and returns it with its stream key.
pub async fn create_live(st: &ApiState, user: &CurrentUser, body: NewLiveBody) -> Result<LiveWithKey, ApiError> {
    let (title, description, privacy) =
        check_fields(&body.title, body.description.as_deref().unwrap_or(""), body.privacy.as_deref())?;
    let channel_id = crate::channels::for_upload(st, user, body.channel.as_deref()).await?;
    let key = new_key()?;
    let new = NewLive {
        id: Uuid::now_v7(),
        owner_id: user.id(),
        channel_id,
        title,
        description,
        privacy,
        replays: body.replays.unwrap_or(true),
        key_hash: hash_key(&key),
    };
    rows::create(&st.db, &new).await?;
    let live = rows::get(&st.db, new.id).await?.ok_or_else(ApiError::not_found)?;
    Ok(LiveWithKey {
        id: live.id,
        stream_key: key,
        rtmp_url: st.live.rtmp_url.clone(),
        rtmps_url: st.live.rtmps_url.clone(),
        watch_url: watch_url(live.id),
        live: LiveView::build(st, &live, Some(user)),
    })
}

/// Creates a live; the answer holds its stream key, shown this once.
#[utoipa::path(post, path = "/lives", tag = "lives",
    summary = "Creates a live stream for the signed-in user (JSON only); the stream key is shown once.",
    security(("oauth2" = ["videos:write"])),
    request_body(content = NewLiveBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The live and its stream key.", body = LiveWithKey, headers(("Location" = String, description = "The live in the API."))),
        (status = 400, description = "`invalid_json`, `invalid_field` (the message names it), `invalid_privacy` or `unknown_channel`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`, or `not_your_channel`.", body = ErrorBody),
        (status = 409, description = "`no_channel`: the account has no channel.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
async fn create(
    State(st): State<ApiState>,
    user: Scoped<VideosWrite>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: NewLiveBody = json_body(&headers, &body)?;
    let made = create_live(&st, &user, body).await?;
    let location = format!("/api/v1/lives/{}", made.id);
    let mut res = (StatusCode::CREATED, Json(made)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// One live.
#[utoipa::path(get, path = "/lives/{id}", tag = "lives",
    summary = "One live: its state (waiting, live, ended), `hls_url` while live, `replay_video_id` once the replay exists. Private lives exist only for their owner.",
    security((), ("oauth2" = ["videos:read"])),
    params(("id" = String, Path, description = "The live (a UUID; anything else is not found).")),
    responses(
        (status = 200, description = "The live.", body = LiveView),
        (status = 404, description = "No such live, or not yours to see.", body = ErrorBody),
    ))]
async fn one(
    State(st): State<ApiState>,
    viewer: Option<Scoped<VideosRead>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let viewer = viewer.as_deref();
    let l = visible(&st, &id, viewer).await?;
    let mut res = Json(LiveView::build(&st, &l, viewer)).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    Ok(res)
}

/// `PATCH /lives/{id}`'s body: the fields named change.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = LiveChange)]
pub struct LiveChangeBody {
    #[schema(min_length = 1, max_length = 100)]
    pub title: Option<String>,
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    #[schema(value_type = Option<Privacy>)]
    pub privacy: Option<String>,
}

/// Changes `id`'s title, description or privacy (owner or admin). Made private, its chat closes
/// for everyone but the owner and its followers' notifications stop showing it; made public
/// while on air, its followers are told (once per live).
pub async fn change_live(st: &ApiState, user: &CurrentUser, id: &str, body: LiveChangeBody) -> Result<Live, ApiError> {
    let l = managed(st, id, user).await?;
    let (title, description, privacy) = check_fields(
        body.title.as_deref().unwrap_or(&l.title),
        body.description.as_deref().unwrap_or(&l.description),
        Some(body.privacy.as_deref().unwrap_or(l.privacy.as_str())),
    )?;
    rows::update(&st.db, l.id, &rows::LiveChange { title, description, privacy }).await?;
    if privacy == Privacy::Private && l.privacy != Privacy::Private {
        let event = crate::chat::protocol::ServerEvent::Private;
        if let Err(e) = st.chat.publish(l.id, &event).await {
            // The sockets still close at their next post, which reads the live again.
            tracing::error!(live.id = %l.id, error = %e, "cannot tell a live's chat that it is private");
        }
    }
    if privacy == Privacy::Public {
        turtlemen_db::notifications::announce_live(&st.db, l.id).await?;
    }
    rows::get(&st.db, l.id).await?.ok_or_else(ApiError::not_found)
}

/// Changes a live.
#[utoipa::path(patch, path = "/lives/{id}", tag = "lives",
    summary = "Changes the live's title, description or privacy (owner or admin; JSON only). Made private, its chat closes for everyone but the owner.",
    security(("oauth2" = ["videos:write"])),
    params(("id" = String, Path, description = "The live.")),
    request_body(content = LiveChangeBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The live as it is now.", body = LiveView),
        (status = 400, description = "`invalid_json`, `invalid_field` (the message names it) or `invalid_privacy`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`, or `not_your_live`.", body = ErrorBody),
        (status = 404, description = "No such live, or not yours to see.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
async fn change(
    State(st): State<ApiState>,
    user: Scoped<VideosWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: LiveChangeBody = json_body(&headers, &body)?;
    let l = change_live(&st, &user, &id, body).await?;
    let mut res = Json(LiveView::build(&st, &l, Some(&*user))).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `GET /me/lives`'s query.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct MineQuery {
    /// The `next_cursor` of the previous page.
    #[param(max_length = 100)]
    cursor: Option<String>,
}

/// A page of lives.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = LiveList)]
struct LiveList {
    lives: Vec<LiveView>,
    /// The next page's cursor; null on the last page.
    next_cursor: Option<String>,
}

const PAGE: u32 = 20;

/// The signed-in user's lives, newest first.
#[utoipa::path(get, path = "/me/lives", tag = "lives",
    summary = "The signed-in user's lives, newest first.",
    security(("oauth2" = ["videos:read"])),
    params(MineQuery),
    responses(
        (status = 200, description = "Lives.", body = LiveList),
        (status = 400, description = "`invalid_cursor`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `videos:read`.", body = ErrorBody),
    ))]
async fn mine(
    State(st): State<ApiState>,
    user: Scoped<VideosRead>,
    Query(q): Query<MineQuery>,
) -> Result<Json<LiveList>, ApiError> {
    let after = cursor::decode_time(&st, cursor::Kind::Lives, q.cursor.as_deref())?;
    let mut lives = rows::list_by_owner(&st.db, user.id(), after, PAGE + 1).await?;
    let next_cursor = match lives.len() > PAGE as usize {
        true => {
            lives.truncate(PAGE as usize);
            lives.last().map(|l| cursor::encode(&st, cursor::Kind::Lives, cursor::time_key(l.created_at), l.id))
        }
        false => None,
    };
    Ok(Json(LiveList { lives: lives.iter().map(|l| LiveView::build(&st, l, Some(&*user))).collect(), next_cursor }))
}

/// Replaces the key of `id` (owner or admin) and returns the new one.
pub async fn regenerate(st: &ApiState, user: &CurrentUser, id: &str) -> Result<(Live, String), ApiError> {
    let l = managed(st, id, user).await?;
    let key = new_key()?;
    if !rows::set_key(&st.db, l.id, &hash_key(&key)).await? {
        return Err(ApiError::new(StatusCode::CONFLICT, "live_ended", "This live has ended; make a new one."));
    }
    Ok((l, key))
}

/// A new stream key; the old one stops working at once (an encoder publishing with it goes on
/// until it disconnects).
#[utoipa::path(post, path = "/lives/{id}/key", tag = "lives",
    summary = "Replaces the live's stream key (owner or admin); the new key is shown once.",
    security(("oauth2" = ["videos:write"])),
    params(("id" = String, Path, description = "The live.")),
    responses(
        (status = 200, description = "The live and its new stream key.", body = LiveWithKey),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`, or `not_your_live`.", body = ErrorBody),
        (status = 404, description = "No such live, or not yours to see.", body = ErrorBody),
        (status = 409, description = "`live_ended`.", body = ErrorBody),
    ))]
async fn regenerate_key(
    State(st): State<ApiState>,
    user: Scoped<VideosWrite>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (l, key) = regenerate(&st, &user, &id).await?;
    let body = LiveWithKey {
        id: l.id,
        stream_key: key,
        rtmp_url: st.live.rtmp_url.clone(),
        rtmps_url: st.live.rtmps_url.clone(),
        watch_url: watch_url(l.id),
        live: LiveView::build(&st, &l, Some(&*user)),
    };
    let mut res = Json(body).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Ends `id` (owner or admin): the encoder is disconnected, the replay made.
pub async fn end_live(st: &ApiState, user: &CurrentUser, id: &str) -> Result<Live, ApiError> {
    let l = managed(st, id, user).await?;
    if l.state == LiveState::Ended {
        return Ok(l);
    }
    let here = match &st.live.hub {
        Some(hub) => hub.end(l.id).await,
        None => false,
    };
    if !here {
        // Not ingested in this process (waiting, or another server's): ended in the database;
        // the ingest holding it sees the state at its next claim. Its replay (from what was
        // recorded so far) is the job the end queued.
        LiveDirectory::from_state(st).end(l.id, &EndReason::EndedByOwner).await?;
    }
    for _ in 0..50 {
        let now = rows::get(&st.db, l.id).await?.ok_or_else(ApiError::not_found)?;
        if now.state == LiveState::Ended {
            return Ok(now);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rows::get(&st.db, l.id).await?.ok_or_else(ApiError::not_found)
}

/// Ends a live now.
#[utoipa::path(post, path = "/lives/{id}/end", tag = "lives",
    summary = "Ends the live (owner or admin): the encoder is disconnected and the replay made.",
    security(("oauth2" = ["videos:write"])),
    params(("id" = String, Path, description = "The live.")),
    responses(
        (status = 200, description = "The live, ended.", body = LiveView),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`, or `not_your_live`.", body = ErrorBody),
        (status = 404, description = "No such live, or not yours to see.", body = ErrorBody),
    ))]
async fn end(
    State(st): State<ApiState>,
    user: Scoped<VideosWrite>,
    Path(id): Path<String>,
) -> Result<Json<LiveView>, ApiError> {
    let l = end_live(&st, &user, &id).await?;
    Ok(Json(LiveView::build(&st, &l, Some(&*user))))
}

/// The blocking-reload query of a playlist request.
#[derive(Debug, Default, serde::Deserialize)]
struct HlsQuery {
    #[serde(rename = "_HLS_msn")]
    msn: Option<String>,
    #[serde(rename = "_HLS_part")]
    part: Option<String>,
    #[serde(rename = "_HLS_skip")]
    _skip: Option<String>,
    /// The player's nonce, counted as a viewer.
    v: Option<String>,
}

/// Whether `nonce` looks like one [`LiveView::build`] hands out (others are not counted).
fn viewer_nonce(nonce: Option<&str>) -> Option<&str> {
    nonce.filter(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What a live media file name asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LiveFile {
    LowLatency,
    Plain,
    /// The recording of an ended live as a VOD playlist ([`replay::vod_playlist`]).
    Replay,
    Init(u32),
    Segment(u64),
    Part(u64, usize),
}

fn parse_file(name: &str) -> Option<LiveFile> {
    fn num(s: &str) -> Option<&str> {
        (!s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
    }
    match name {
        "live.m3u8" => Some(LiveFile::LowLatency),
        "index.m3u8" => Some(LiveFile::Plain),
        "replay.m3u8" => Some(LiveFile::Replay),
        _ => {
            if let Some(run) = name.strip_prefix("init-").and_then(|r| r.strip_suffix(".mp4")) {
                return num(run)?.parse().ok().map(LiveFile::Init);
            }
            if let Some(msn) = name.strip_prefix("seg-").and_then(|r| r.strip_suffix(".m4s")) {
                return num(msn)?.parse().ok().map(LiveFile::Segment);
            }
            let rest = name.strip_prefix("part-")?.strip_suffix(".m4s")?;
            let (msn, part) = rest.split_once('.')?;
            Some(LiveFile::Part(num(msn)?.parse().ok()?, num(part)?.parse().ok()?))
        }
    }
}

fn bytes_response(content_type: &'static str, cache: &'static str, body: impl Into<Body>) -> Response {
    let mut res = Response::new(body.into());
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    res
}

const PLAYLIST: &str = "application/vnd.apple.mpegurl";

/// `GET /media/live/{token}/{id}/{file}`: playlists, init segments, parts and segments — from
/// this process's memory when it packages the live, else from the process that does
/// ([`relay`]), whole segments and inits also from storage. A transcoded live's `live.m3u8` and
/// `index.m3u8` are multivariant playlists over its rungs; its other files here are the highest
/// rung's (the recorded one).
async fn serve_media(
    State(st): State<ApiState>,
    Path((token, id_text, name)): Path<(String, String, String)>,
    Query(q): Query<HlsQuery>,
    axum::extract::RawQuery(raw_query): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let request =
        MediaRequest { token, id_text, rung: None, name, raw_query, relayed: headers.contains_key(relay::RELAYED) };
    media(&st, request, q).await
}

/// `GET /media/live/{token}/{id}/{rung}/{file}`: the same files of one rung (`720p`) of a
/// transcoded live.
async fn serve_rung_media(
    State(st): State<ApiState>,
    Path((token, id_text, rung, name)): Path<(String, String, String, String)>,
    Query(q): Query<HlsQuery>,
    axum::extract::RawQuery(raw_query): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let rung = Some(turtlemen_live::ladder::parse_name(&rung).ok_or_else(ApiError::not_found)?);
    let request = MediaRequest { token, id_text, rung, name, raw_query, relayed: headers.contains_key(relay::RELAYED) };
    media(&st, request, q).await
}

/// A live media request, as its URL names it.
struct MediaRequest {
    token: String,
    id_text: String,
    /// A rung's height, for a rung's file.
    rung: Option<u32>,
    name: String,
    raw_query: Option<String>,
    relayed: bool,
}

async fn media(st: &ApiState, r: MediaRequest, q: HlsQuery) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&r.id_text).map_err(|_| ApiError::not_found())?;
    if !st.media.verify(&r.token, id, SystemTime::now()) {
        return Err(ApiError::not_found());
    }
    let file = parse_file(&r.name).ok_or_else(ApiError::not_found)?;
    if file == LiveFile::Replay {
        return match r.rung {
            None => recording_playlist(st, id).await,
            Some(_) => Err(ApiError::not_found()),
        };
    }
    let here = match st.live.hub.as_ref() {
        // A live just marked on air may not be listed by this process's hub yet.
        Some(h) => h
            .live_soon(id, Duration::from_secs(u64::from(h.config.packaging.params.target_duration)))
            .await
            .map(|l| (h, l)),
        None => None,
    };
    let Some((hub, live)) = here else {
        let rung = r.rung.map(|h| format!("{}/", turtlemen_live::ladder::name(h))).unwrap_or_default();
        let path = format!("/media/live/{}/{id}/{rung}{}", r.token, r.name);
        let query = r.raw_query.filter(|q| q.len() <= 200).map(|q| format!("?{q}")).unwrap_or_default();
        return elsewhere(st, id, file, r.rung.is_none(), &format!("{path}{query}"), r.relayed).await;
    };
    let bound = Duration::from_secs(3 * u64::from(live.stream.packaging.params.target_duration));
    let nonce = viewer_nonce(q.v.as_deref());
    if let (LiveFile::LowLatency | LiveFile::Plain, Some(nonce)) = (file, nonce) {
        live.stream.saw_viewer(nonce);
    }
    let stream = match r.rung {
        None if hub.transcodes() && matches!(file, LiveFile::LowLatency | LiveFile::Plain) => {
            let ladder = live.described_ladder(bound).await.ok_or_else(|| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "live_starting",
                    "The live's renditions are not ready yet; reload the playlist.",
                )
            })?;
            let (playlist, cache) = match file {
                LiveFile::LowLatency => ("live.m3u8", "no-cache"),
                _ => ("index.m3u8", "max-age=1"),
            };
            let query = nonce.map(|n| format!("v={n}"));
            let text = ladder.multivariant(playlist, query.as_deref()).unwrap_or_default();
            return Ok(bytes_response(PLAYLIST, cache, text));
        }
        None => live.stream.clone(),
        Some(height) => {
            let ladder = live.ladder_now().ok_or_else(ApiError::not_found)?;
            ladder.rendition(height).ok_or_else(ApiError::not_found)?.stream.clone()
        }
    };
    let recorded = Arc::ptr_eq(&stream, &live.stream);
    serve_stream(st, id, file, &stream, &q, bound, recorded).await
}

/// A file of one packaged stream from memory; whole segments and inits no longer there from
/// storage when the stream is the recorded one.
async fn serve_stream(
    st: &ApiState,
    id: Uuid,
    file: LiveFile,
    s: &turtlemen_live::stream::LiveStream,
    q: &HlsQuery,
    bound: Duration,
    recorded: bool,
) -> Result<Response, ApiError> {
    match file {
        LiveFile::LowLatency => {
            let number = |v: &Option<String>, name: &'static str| -> Result<Option<u64>, ApiError> {
                v.as_deref()
                    .map(|t| t.parse::<u64>().map_err(|_| ApiError::bad_request("invalid_hls_query", name)))
                    .transpose()
            };
            let msn = number(&q.msn, "_HLS_msn is a whole number.")?;
            let part = number(&q.part, "_HLS_part is a whole number.")?;
            match (msn, part) {
                (None, Some(_)) => {
                    return Err(ApiError::bad_request("invalid_hls_query", "_HLS_part needs _HLS_msn."));
                }
                (Some(msn), part) => {
                    let part = part.map(|p| usize::try_from(p).unwrap_or(usize::MAX));
                    match s.wait_for(msn, part, bound).await {
                        Ok(()) => {}
                        Err(turtlemen_live::stream::WaitError::TooFar) => {
                            return Err(ApiError::bad_request(
                                "hls_msn_too_far",
                                "_HLS_msn is more than two segments past the playlist's last.",
                            ));
                        }
                        Err(turtlemen_live::stream::WaitError::Timeout) => {
                            return Err(ApiError::new(
                                StatusCode::SERVICE_UNAVAILABLE,
                                "hls_part_late",
                                "The requested part did not arrive in time; reload the playlist.",
                            ));
                        }
                    }
                }
                (None, None) => {}
            }
            Ok(bytes_response(PLAYLIST, "no-cache", s.low_latency_playlist()))
        }
        LiveFile::Plain => Ok(bytes_response(PLAYLIST, "max-age=1", s.plain_playlist())),
        LiveFile::Init(run) => match s.init(run) {
            Some(bytes) => Ok(bytes_response("video/mp4", "max-age=3600", bytes)),
            None if recorded => stored(st, turtlemen_live::packager::init_key(id, run)).await,
            None => Err(ApiError::not_found()),
        },
        LiveFile::Part(msn, part) => {
            if s.part(msn, part).is_none() {
                // The preload hint names the next part: hold the request until it exists.
                let _ = s.wait_for(msn, Some(part), bound).await;
            }
            let bytes = s.part(msn, part).ok_or_else(ApiError::not_found)?;
            Ok(bytes_response("video/iso.segment", "max-age=3600", bytes))
        }
        LiveFile::Segment(msn) => match s.segment(msn) {
            Some(bytes) => Ok(bytes_response("video/iso.segment", "max-age=3600", bytes)),
            None if recorded => stored(st, turtlemen_live::packager::segment_key(id, msn)).await,
            None => Err(ApiError::not_found()),
        },
        LiveFile::Replay => Err(ApiError::not_found()),
    }
}

/// The recording of an ended live as a VOD playlist (404 before it ended, or with nothing
/// recorded); its inits and segments are then served from storage.
async fn recording_playlist(st: &ApiState, id: Uuid) -> Result<Response, ApiError> {
    let ended = rows::get(&st.db, id).await?.is_some_and(|l| l.state == LiveState::Ended);
    let recording = if ended { rows::recording(&st.db, id).await? } else { Vec::new() };
    if recording.is_empty() {
        return Err(ApiError::not_found());
    }
    Ok(bytes_response(PLAYLIST, "max-age=60", replay::vod_playlist(&recording)))
}

/// A live this process does not package: whole segments and inits of the recorded stream from
/// storage, the rest (and what storage does not have yet) from the packaging process, unless
/// this request was itself relayed.
async fn elsewhere(
    st: &ApiState,
    id: Uuid,
    file: LiveFile,
    recorded: bool,
    path_and_query: &str,
    relayed: bool,
) -> Result<Response, ApiError> {
    let from_storage = match file {
        LiveFile::Segment(msn) if recorded => Some(turtlemen_live::packager::segment_key(id, msn)),
        LiveFile::Init(run) if recorded => Some(turtlemen_live::packager::init_key(id, run)),
        _ => None,
    };
    if let Some(key) = from_storage {
        match stored(st, key).await {
            Err(e) if e.status == StatusCode::NOT_FOUND => {}
            done => return done,
        }
    }
    if relayed {
        return Err(ApiError::not_found());
    }
    let Some(base) = st.live.relay.packager(&st.db, id).await? else { return Err(ApiError::not_found()) };
    let got = st.live.relay.fetch(&base, path_and_query).await.map_err(|e| {
        tracing::warn!(live.id = %id, packager.url = %base, error = %e, "a live's packaging server did not answer");
        ApiError::unavailable("The server packaging this live did not answer; try again.")
    })?;
    let mut res = Response::new(Body::from(got.body));
    *res.status_mut() = StatusCode::from_u16(got.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let h = res.headers_mut();
    for (name, value) in [(header::CONTENT_TYPE, got.content_type), (header::CACHE_CONTROL, got.cache_control)] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            h.insert(name, v);
        }
    }
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    Ok(res)
}

/// A segment no longer in memory, from storage.
async fn stored(st: &ApiState, key: StorageKey) -> Result<Response, ApiError> {
    match st.storage.get(&key, None).await {
        Ok(read) => Ok(bytes_response("video/iso.segment", "max-age=3600", Body::from_stream(read.stream))),
        Err(turtlemen_storage::StorageError::NotFound(_)) => Err(ApiError::not_found()),
        Err(e) => Err(ApiError::internal(&e)),
    }
}

/// A live whose packaging process has not said it holds it for this long lost its process.
pub const ORPHANED_AFTER: Duration = Duration::from_secs(60);

/// Ends the lives left on air by a crashed packaging process (a janitor chore): their encoder
/// cannot be connected anywhere, and no grace timer runs for them. Returns how many ended. Their
/// replay is made by the job the end queued, from the segments the process recorded as stored.
pub async fn sweep_orphans(st: &ApiState) -> Result<usize, turtlemen_db::DbError> {
    let before = Utc::now() - chrono::TimeDelta::from_std(ORPHANED_AFTER).unwrap_or_default();
    let directory = LiveDirectory::from_state(st);
    let mut ended = 0;
    for id in rows::orphaned(&st.db, before).await? {
        if st.live.hub.as_ref().is_some_and(|h| h.stream(id).is_some()) {
            continue;
        }
        tracing::warn!(live.id = %id, "a live's packaging process stopped saying it holds it; ending the live");
        if directory.end(id, &EndReason::PackagerLost).await? {
            ended += 1;
        }
    }
    Ok(ended)
}

/// The database side of the ingest.
#[derive(Clone)]
pub struct LiveDirectory {
    pub db: Db,
    pub storage: Storage,
    /// Recorded with each live this process claims.
    pub packager_url: String,
    /// The most lives on air at once; a publish beyond is refused with the reason recorded.
    pub limits: rows::LiveLimits,
}

impl LiveDirectory {
    fn from_state(st: &ApiState) -> LiveDirectory {
        LiveDirectory {
            db: st.db.clone(),
            storage: st.storage.clone(),
            packager_url: String::new(),
            // Only ends lives: it never claims one.
            limits: rows::LiveLimits { per_user: 0, per_instance: 0 },
        }
    }

    /// Ends `live` with `reason` unless it already ended; true if this call ended it (and so
    /// queued its replay job, [`turtlemen_db::lives::LIVE_REPLAY`]).
    pub async fn end(&self, live: Uuid, reason: &EndReason) -> Result<bool, turtlemen_db::DbError> {
        rows::end(&self.db, live, &reason.to_string()).await
    }
}

#[async_trait::async_trait]
impl Directory for LiveDirectory {
    async fn claim(&self, stream_key: &str) -> Result<Uuid, Refusal> {
        if stream_key.is_empty() || stream_key.len() > 200 {
            return Err(Refusal::UnknownKey);
        }
        let key_hash = hash_key(stream_key);
        let refusal = match rows::claim(&self.db, &key_hash, &self.packager_url, self.limits).await {
            Ok(Ok(id)) => {
                // Followers hear of it once per live (a reconnect queues nothing more).
                if let Err(e) = turtlemen_db::notifications::announce_live(&self.db, id).await {
                    tracing::error!(live.id = %id, error = %e, "cannot announce a live to its followers");
                }
                return Ok(id);
            }
            Ok(Err(ClaimRefused::UnknownKey)) => Refusal::UnknownKey,
            Ok(Err(ClaimRefused::AlreadyLive)) => Refusal::AlreadyLive,
            Ok(Err(ClaimRefused::Ended)) => Refusal::Ended,
            Ok(Err(ClaimRefused::UserLimit(n))) => Refusal::UserLimit(n),
            Ok(Err(ClaimRefused::InstanceLimit(n))) => Refusal::InstanceLimit(n),
            Err(e) => return Err(Refusal::Unavailable(e.to_string())),
        };
        // A limit is the owner's to know: it is why their encoder could not go live.
        if matches!(refusal, Refusal::UserLimit(_) | Refusal::InstanceLimit(_))
            && let Err(e) = rows::refused(&self.db, &key_hash, &format!("refused: {refusal}")).await
        {
            tracing::error!(error = %e, "cannot record why a live's publish was refused");
        }
        Err(refusal)
    }

    async fn viewers(&self, live: Uuid, count: u64) {
        if let Err(e) = rows::set_viewers(&self.db, live, count).await {
            tracing::warn!(live.id = %live, error = %e, "cannot record a live's viewer count");
        }
    }

    async fn held(&self, live: Uuid) {
        if let Err(e) = rows::seen(&self.db, live, Utc::now()).await {
            tracing::warn!(live.id = %live, error = %e, "cannot record that this process holds a live");
        }
    }

    async fn dropped(&self, live: Uuid, reason: &EndReason) {
        if let Err(e) = rows::disconnected(&self.db, live, &reason.to_string()).await {
            tracing::error!(live.id = %live, error = %e, "cannot record a live encoder's drop");
        }
    }

    async fn stored(&self, live: Uuid, segment: StoredSegment) {
        let recorded = rows::RecordedSegment {
            msn: segment.msn,
            run: segment.run,
            duration_ms: (segment.duration * 1000.0).round().max(0.0) as u64,
        };
        if let Err(e) = rows::record_segment(&self.db, live, recorded).await {
            tracing::error!(live.id = %live, error = %e, "cannot record a live's stored segment");
        }
    }

    async fn ended(&self, live: Uuid, reason: &EndReason) {
        if let Err(e) = self.end(live, reason).await {
            tracing::error!(live.id = %live, error = %e, "cannot record a live's end");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_file_names() {
        assert_eq!(parse_file("live.m3u8"), Some(LiveFile::LowLatency));
        assert_eq!(parse_file("index.m3u8"), Some(LiveFile::Plain));
        assert_eq!(parse_file("replay.m3u8"), Some(LiveFile::Replay));
        assert_eq!(parse_file("init-3.mp4"), Some(LiveFile::Init(3)));
        assert_eq!(parse_file("seg-12.m4s"), Some(LiveFile::Segment(12)));
        assert_eq!(parse_file("part-12.3.m4s"), Some(LiveFile::Part(12, 3)));
        for bad in [
            "",
            "seg-.m4s",
            "seg--1.m4s",
            "part-1.m4s",
            "part-1.2.3.m4s",
            "../x",
            "init-9999999999999.mp4",
            "seg-1.m4s/",
        ] {
            assert_eq!(parse_file(bad), None, "{bad}");
        }
    }

    #[test]
    fn keys_are_random_and_stored_hashed() {
        let (a, b) = (new_key().unwrap(), new_key().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash_key(&a), hash_key(&a));
        assert_ne!(hash_key(&a), hash_key(&b));
    }
}
