//! Playlists: a user's lists of videos, their system "Watch later" (`WL`) and "Liked videos"
//! (`LL`, built from their likes), and a channel's public lists.
//!
//! - `POST /api/v1/playlists` `{"title", "description"?, "privacy"?, "channel"?}` (at most
//!   200 per user); `GET`/`PATCH`/`DELETE /api/v1/playlists/{id}`;
//!   `GET|POST …/{id}/items` (keyset pages with the signed cursor; add `{"video_id"}`);
//!   `PATCH …/{id}/items/{item_id}` `{"position": n}` (0-based, a move of one row);
//!   `DELETE …/{id}/items/{item_id}`; `GET /api/v1/me/playlists`;
//!   `GET /api/v1/channels/{handle}/playlists` (public ones).
//! - `WL` and `LL` name the caller's own lists (a visitor has none: 404). Watch later is made
//!   on first change (reading it, or the list of one's playlists, writes nothing: until then it
//!   is shown empty, with no dates); Liked videos is virtual (newest like first) and changes
//!   only by rating.
//!
//! Who sees what: a public or unlisted list anyone who names it, a private one only its owner
//! (404 to anyone else, as a private video). Items show what the viewer may see: someone else's
//! private video, or one that cannot be played, never shows through a list. Changes: the owner,
//! or an admin acting as one ([`videos::acts_as_admin`]); another user gets 404 for a private
//! list and 403 `not_your_playlist` for one they can see. Text follows the channels' rules
//! (lengths, no control or direction characters). Scopes: `library:read` to see one's own
//! private lists, `library:write` to change anything.

use crate::identity::{CurrentUser, LibraryRead, LibraryWrite, Scoped};
use crate::videos::VideoView;
use crate::{ApiState, channels, cursor, videos};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use turtlemen_db::playlists::{self as rows, Fields, Item, Kind, Playlist, PlaylistError};
use turtlemen_db::videos::Privacy;
use turtlemen_http::{ApiError, ErrorBody};
use turtlemen_identity::Scope;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub const MAX_TITLE_CHARS: usize = 150;
/// The id of the caller's "Watch later" in URLs.
pub const WATCH_LATER: &str = "WL";
/// The id of the caller's "Liked videos" in URLs.
pub const LIKED: &str = "LL";

/// The playlists routes, each with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(one, edit, remove))
        .routes(routes!(list_items, add))
        .routes(routes!(move_item, remove_item))
        .routes(routes!(mine))
        .routes(routes!(of_channel))
}

/// The channel a playlist is shown on.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = PlaylistChannel)]
pub struct ChannelRef {
    pub id: Uuid,
    pub handle: String,
    pub display_name: String,
    pub url: String,
}

/// A playlist as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Playlist)]
pub struct PlaylistJson {
    /// A UUID, or `WL` (watch later) and `LL` (liked videos) for the caller's system lists.
    pub id: String,
    /// `playlist`, `watch_later` or `liked`.
    pub kind: &'static str,
    pub title: String,
    pub description: String,
    pub privacy: Privacy,
    /// The owner's username.
    pub owner: String,
    /// The channel it is shown on (none for liked videos).
    pub channel: Option<ChannelRef>,
    /// Items the caller may see.
    pub item_count: u64,
    /// Its page.
    pub url: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl PlaylistJson {
    pub fn build(p: &Playlist) -> PlaylistJson {
        // A Watch later not made yet ([`watch_later_as_is`]) has no dates.
        let made = !p.id.is_nil();
        let id = match p.kind {
            Kind::WatchLater => WATCH_LATER.to_owned(),
            Kind::User => p.id.to_string(),
        };
        PlaylistJson {
            url: page_url(&id),
            id,
            kind: if p.kind == Kind::WatchLater { "watch_later" } else { "playlist" },
            title: p.title.clone(),
            description: p.description.clone(),
            privacy: p.privacy,
            owner: p.owner_username.clone(),
            channel: Some(ChannelRef {
                id: p.channel_id,
                handle: p.channel_handle.clone(),
                display_name: p.channel_display_name.clone(),
                url: channels::page_url(&p.channel_handle),
            }),
            item_count: p.item_count,
            created_at: made.then_some(p.created_at),
            updated_at: made.then_some(p.updated_at),
        }
    }

    /// The caller's virtual "Liked videos".
    pub fn liked(user: &CurrentUser, count: u64) -> PlaylistJson {
        PlaylistJson {
            id: LIKED.into(),
            kind: "liked",
            title: "Liked videos".into(),
            description: String::new(),
            privacy: Privacy::Private,
            owner: user.0.username.clone(),
            channel: None,
            item_count: count,
            url: page_url(LIKED),
            created_at: None,
            updated_at: None,
        }
    }
}

/// A playlist's page.
pub fn page_url(id: &str) -> String {
    format!("/playlists/{id}")
}

/// Which list a path names.
pub enum Named {
    /// A stored list (a user's or Watch later).
    Stored(Playlist),
    /// The caller's liked videos.
    Liked(UserIdOf),
}

/// The owner of a virtual list.
pub struct UserIdOf(pub turtlemen_domain::UserId);

fn not_yours() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "not_your_playlist", "Only the playlist's owner may change it.")
}

/// Whether `viewer` may see `p`.
pub fn may_view(p: &Playlist, viewer: Option<&CurrentUser>) -> bool {
    p.privacy != Privacy::Private || viewer.is_some_and(|u| u.0.id == p.owner_id)
}

/// Whether `user` may change `p`: the owner, or an admin acting as one.
pub fn may_manage(p: &Playlist, user: &CurrentUser) -> bool {
    p.owner_id == user.0.id || videos::acts_as_admin(user)
}

/// The list `id` names for `viewer` (`WL`, `LL`, or a UUID of a list they may see), to read;
/// 404 otherwise. An admin acting as one finds private lists too (to manage them).
pub async fn find(st: &ApiState, id: &str, viewer: Option<&CurrentUser>) -> Result<Named, ApiError> {
    lookup(st, id, viewer, Use::Read).await
}

/// What a list is looked up for: a Watch later not used yet is made only to be changed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Read,
    Change,
}

async fn lookup(st: &ApiState, id: &str, viewer: Option<&CurrentUser>, to: Use) -> Result<Named, ApiError> {
    let me = viewer.map(|u| u.0.id);
    match id {
        WATCH_LATER => {
            let u = viewer.ok_or_else(ApiError::not_found)?;
            let wl = if to == Use::Change { watch_later(st, u).await? } else { watch_later_as_is(st, u).await? };
            Ok(Named::Stored(wl))
        }
        LIKED => Ok(Named::Liked(UserIdOf(me.ok_or_else(ApiError::not_found)?))),
        _ => {
            let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found())?;
            let p = rows::get(&st.db, id, me).await?.ok_or_else(ApiError::not_found)?;
            let admin = viewer.is_some_and(videos::acts_as_admin);
            if may_view(&p, viewer) || admin { Ok(Named::Stored(p)) } else { Err(ApiError::not_found()) }
        }
    }
}

/// `user`'s Watch later (made on first use, on their first channel).
pub async fn watch_later(st: &ApiState, user: &CurrentUser) -> Result<Playlist, ApiError> {
    let channel = turtlemen_db::channels::first_of_owner(&st.db, user.0.id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "no_channel", "Your account has no channel."))?;
    Ok(rows::watch_later(&st.db, user.0.id, channel.id).await?)
}

/// `user`'s Watch later as it stands, made by nothing: before its first use, an empty list
/// with the nil id (which names no stored list, so it has no items) on their first channel.
pub async fn watch_later_as_is(st: &ApiState, user: &CurrentUser) -> Result<Playlist, ApiError> {
    if let Some(p) = rows::find_watch_later(&st.db, user.0.id).await? {
        return Ok(p);
    }
    let channel = turtlemen_db::channels::first_of_owner(&st.db, user.0.id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "no_channel", "Your account has no channel."))?;
    Ok(Playlist {
        id: Uuid::nil(),
        owner_id: user.0.id,
        owner_username: user.0.username.clone(),
        channel_id: channel.id,
        channel_handle: channel.handle,
        channel_display_name: channel.display_name,
        kind: Kind::WatchLater,
        title: rows::WATCH_LATER_TITLE.into(),
        description: String::new(),
        privacy: Privacy::Private,
        item_count: 0,
        created_at: user.0.created_at,
        updated_at: user.0.created_at,
    })
}

/// The stored list `id` names that `user` may change (403 `not_your_playlist` for one they
/// can see; 404 otherwise; the virtual liked list is 400 `system_playlist`).
pub async fn managed(st: &ApiState, id: &str, user: &CurrentUser) -> Result<Playlist, ApiError> {
    user.require(Scope::LibraryWrite)?;
    match lookup(st, id, Some(user), Use::Change).await? {
        Named::Stored(p) if may_manage(&p, user) => Ok(p),
        Named::Stored(_) => Err(not_yours()),
        Named::Liked(_) => Err(system_list()),
    }
}

fn system_list() -> ApiError {
    ApiError::bad_request("system_playlist", "This list is kept by Turtlemen: like, or add to Watch later, instead.")
}

fn field_error(field: &'static str, message: String) -> ApiError {
    ApiError::bad_request("invalid_field", format!("{field}: {message}"))
}

/// A checked title: 1 to [`MAX_TITLE_CHARS`] characters on one line.
pub fn check_title(title: &str) -> Result<String, ApiError> {
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS || channels::has_control(title, false) {
        return Err(field_error(
            "title",
            format!("1 to {MAX_TITLE_CHARS} characters on one line, without control or direction characters"),
        ));
    }
    Ok(title.to_owned())
}

fn parse_privacy(p: &str) -> Result<Privacy, ApiError> {
    Privacy::parse(p).ok_or_else(|| ApiError::bad_request("invalid_privacy", "privacy is public, unlisted or private."))
}

/// The channel `handle` of `owner` (400 `unknown_channel`, 403 `not_your_channel`).
async fn owners_channel(st: &ApiState, owner: turtlemen_domain::UserId, handle: &str) -> Result<Uuid, ApiError> {
    let c = match channels::find(st, handle.trim().trim_start_matches('@')).await {
        Ok(c) => c,
        Err(e) if e.status == StatusCode::NOT_FOUND => {
            return Err(ApiError::bad_request("unknown_channel", "No channel has this handle."));
        }
        Err(e) => return Err(e),
    };
    if c.owner_id != owner {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_your_channel",
            "A playlist is shown on its owner's channel.",
        ));
    }
    Ok(c.id)
}

/// A new playlist, or a change to one (every field optional in a change).
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PlaylistFields)]
pub struct PlaylistPatch {
    /// 1 to 150 characters on one line.
    #[schema(min_length = 1, max_length = 150)]
    pub title: Option<String>,
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    /// `public`, `unlisted` or `private` (new lists: private).
    #[schema(value_type = Option<Privacy>)]
    pub privacy: Option<String>,
    /// The handle of one of the owner's channels to show it on (new lists: their first).
    pub channel: Option<String>,
}

impl PlaylistPatch {
    async fn apply(self, st: &ApiState, owner: turtlemen_domain::UserId, current: &Fields) -> Result<Fields, ApiError> {
        Ok(Fields {
            title: match self.title {
                Some(t) => check_title(&t)?,
                None => current.title.clone(),
            },
            description: match self.description {
                Some(d) => channels::check_description(&d)?,
                None => current.description.clone(),
            },
            privacy: match self.privacy {
                Some(p) => parse_privacy(&p)?,
                None => current.privacy,
            },
            channel_id: match self.channel.as_deref().filter(|c| !c.trim().is_empty()) {
                Some(h) => owners_channel(st, owner, h).await?,
                None => current.channel_id,
            },
        })
    }
}

/// Creates a playlist for `user`.
pub async fn create_for(st: &ApiState, user: &CurrentUser, patch: PlaylistPatch) -> Result<Playlist, ApiError> {
    user.require(Scope::LibraryWrite)?;
    if patch.title.is_none() {
        return Err(field_error("title", format!("1 to {MAX_TITLE_CHARS} characters on one line")));
    }
    let first = channels::for_upload(st, user, None).await?;
    let base =
        Fields { title: String::new(), description: String::new(), privacy: Privacy::Private, channel_id: first };
    let fields = patch.apply(st, user.0.id, &base).await?;
    let id = Uuid::now_v7();
    rows::create(&st.db, id, user.0.id, &fields).await.map_err(playlist_error)?;
    rows::get(&st.db, id, Some(user.0.id)).await?.ok_or_else(ApiError::not_found)
}

/// Changes a list `user` may manage.
pub async fn update_for(
    st: &ApiState,
    user: &CurrentUser,
    id: &str,
    patch: PlaylistPatch,
) -> Result<Playlist, ApiError> {
    let p = managed(st, id, user).await?;
    if p.kind == Kind::WatchLater {
        return Err(system_list());
    }
    let current = Fields {
        title: p.title.clone(),
        description: p.description.clone(),
        privacy: p.privacy,
        channel_id: p.channel_id,
    };
    let fields = patch.apply(st, p.owner_id, &current).await?;
    rows::update(&st.db, p.id, &fields).await?;
    rows::get(&st.db, p.id, Some(user.0.id)).await?.ok_or_else(ApiError::not_found)
}

/// Deletes a list `user` may manage.
pub async fn delete_for(st: &ApiState, user: &CurrentUser, id: &str) -> Result<(), ApiError> {
    let p = managed(st, id, user).await?;
    if p.kind == Kind::WatchLater {
        return Err(system_list());
    }
    rows::delete(&st.db, p.id).await?;
    Ok(())
}

fn playlist_error(e: PlaylistError) -> ApiError {
    match e {
        PlaylistError::TooManyPlaylists => ApiError::new(
            StatusCode::CONFLICT,
            "too_many_playlists",
            format!("You have {} playlists, the most one may keep.", rows::MAX_PLAYLISTS),
        ),
        PlaylistError::Full => ApiError::new(
            StatusCode::CONFLICT,
            "playlist_full",
            format!("A playlist holds at most {} videos.", rows::MAX_ITEMS),
        ),
        PlaylistError::AlreadyThere => {
            ApiError::new(StatusCode::CONFLICT, "already_in_playlist", "This video is in the playlist already.")
        }
        PlaylistError::NotFound => ApiError::not_found(),
        PlaylistError::Db(e) => e.into(),
    }
}

/// Adds the video `video` (one `user` may see; 404 otherwise) to the list `id`; the item's id.
pub async fn add_for(st: &ApiState, user: &CurrentUser, id: &str, video: &str) -> Result<Uuid, ApiError> {
    let p = managed(st, id, user).await?;
    let v = videos::visible(st, video, Some(user)).await?;
    rows::add_item(&st.db, p.id, v.id).await.map_err(playlist_error)
}

/// Removes an item of a list `user` may manage (404 when it has no such item).
pub async fn remove_for(st: &ApiState, user: &CurrentUser, id: &str, item: &str) -> Result<(), ApiError> {
    let p = managed(st, id, user).await?;
    let item = Uuid::parse_str(item).map_err(|_| ApiError::not_found())?;
    if rows::remove_item(&st.db, p.id, item).await? { Ok(()) } else { Err(ApiError::not_found()) }
}

/// Moves an item to `index` (0-based) of a list `user` may manage.
pub async fn move_for(st: &ApiState, user: &CurrentUser, id: &str, item: &str, index: u32) -> Result<(), ApiError> {
    let p = managed(st, id, user).await?;
    let item = Uuid::parse_str(item).map_err(|_| ApiError::not_found())?;
    if rows::move_item(&st.db, p.id, item, index).await? { Ok(()) } else { Err(ApiError::not_found()) }
}

/// One item as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = PlaylistItem)]
pub struct ItemJson {
    /// The item (in liked videos: the video's id).
    pub id: Uuid,
    pub video: VideoView,
    /// When it was added (liked).
    pub added_at: DateTime<Utc>,
}

/// A page of items.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = PlaylistItems)]
pub struct ItemPage {
    pub items: Vec<ItemJson>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A page of the items `viewer` may see of the named list, after `cursor`.
pub async fn item_page(
    st: &ApiState,
    named: &Named,
    viewer: Option<&CurrentUser>,
    cursor_text: Option<&str>,
    limit: u32,
) -> Result<ItemPage, ApiError> {
    let limit = limit.clamp(1, 100);
    match named {
        Named::Stored(p) => {
            let after = cursor_text
                .filter(|t| !t.is_empty())
                .map(|t| cursor::decode(st, cursor::Kind::PlaylistItems, t))
                .transpose()?;
            let mut items = rows::items(&st.db, p.id, viewer.map(|u| u.0.id), after, limit + 1).await?;
            let next_cursor =
                next(&mut items, limit, |i: &Item| cursor::encode(st, cursor::Kind::PlaylistItems, i.position, i.id));
            Ok(ItemPage {
                items: items
                    .iter()
                    .map(|i| ItemJson { id: i.id, video: VideoView::build(st, &i.video, viewer), added_at: i.added_at })
                    .collect(),
                next_cursor,
            })
        }
        Named::Liked(owner) => {
            let after = cursor::decode_time(st, cursor::Kind::Liked, cursor_text)?;
            let mut liked = turtlemen_db::ratings::liked(&st.db, owner.0, after, limit + 1).await?;
            let next_cursor = next(&mut liked, limit, |(v, at): &(turtlemen_db::videos::Video, DateTime<Utc>)| {
                cursor::encode(st, cursor::Kind::Liked, cursor::time_key(*at), v.id)
            });
            Ok(ItemPage {
                items: liked
                    .iter()
                    .map(|(v, at)| ItemJson { id: v.id, video: VideoView::build(st, v, viewer), added_at: *at })
                    .collect(),
                next_cursor,
            })
        }
    }
}

/// Cuts a `limit + 1` fetch to `limit` and gives the cursor after its last row, if there was more.
pub(crate) fn next<T>(rows: &mut Vec<T>, limit: u32, encode: impl Fn(&T) -> String) -> Option<String> {
    if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(encode)
    } else {
        None
    }
}

/// The JSON of a named list.
pub async fn json_of(st: &ApiState, named: &Named, user: Option<&CurrentUser>) -> Result<PlaylistJson, ApiError> {
    match (named, user) {
        (Named::Stored(p), _) => Ok(PlaylistJson::build(p)),
        (Named::Liked(owner), Some(u)) => {
            Ok(PlaylistJson::liked(u, turtlemen_db::ratings::liked_count(&st.db, owner.0).await?))
        }
        (Named::Liked(_), None) => Err(ApiError::not_found()),
    }
}

/// A playlist with its first page of items.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = PlaylistWithItems)]
struct OneJson {
    playlist: PlaylistJson,
    items: Vec<ItemJson>,
    next_cursor: Option<String>,
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

const PLAYLIST_ID: &str = "A playlist's UUID, or `WL` / `LL` for the caller's watch later and liked videos.";

/// One playlist and its first items.
#[utoipa::path(get, path = "/playlists/{id}", tag = "playlists",
    summary = "A playlist and its first items. Private lists exist only for their owner (`library:read`).",
    security((), ("oauth2" = ["library:read"])),
    params(("id" = String, Path, description = PLAYLIST_ID), PageQuery),
    responses(
        (status = 200, description = "The playlist.", body = OneJson),
        (status = 400, description = "`invalid_cursor`, or a malformed query.", body = ErrorBody),
        (status = 404, description = "No such playlist, or not yours to see.", body = ErrorBody),
    ))]
async fn one(
    State(st): State<ApiState>,
    viewer: Option<Scoped<LibraryRead>>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<OneJson>, ApiError> {
    let viewer = viewer.as_deref();
    let named = find(&st, &id, viewer).await?;
    let page = item_page(&st, &named, viewer, q.cursor.as_deref(), q.limit.unwrap_or(50)).await?;
    Ok(Json(OneJson {
        playlist: json_of(&st, &named, viewer).await?,
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// A playlist's items.
#[utoipa::path(get, path = "/playlists/{id}/items", tag = "playlists",
    summary = "A page of a playlist's items, in order (what the caller may see).",
    security((), ("oauth2" = ["library:read"])),
    params(("id" = String, Path, description = PLAYLIST_ID), PageQuery),
    responses(
        (status = 200, description = "Items.", body = ItemPage),
        (status = 400, description = "`invalid_cursor`, or a malformed query.", body = ErrorBody),
        (status = 404, description = "No such playlist, or not yours to see.", body = ErrorBody),
    ))]
async fn list_items(
    State(st): State<ApiState>,
    viewer: Option<Scoped<LibraryRead>>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<ItemPage>, ApiError> {
    let viewer = viewer.as_deref();
    let named = find(&st, &id, viewer).await?;
    Ok(Json(item_page(&st, &named, viewer, q.cursor.as_deref(), q.limit.unwrap_or(50)).await?))
}

/// Creates a playlist.
#[utoipa::path(post, path = "/playlists", tag = "playlists",
    summary = "Creates a playlist (private unless said; at most 200 per user). JSON only.",
    security(("oauth2" = ["library:write"])),
    request_body(content = PlaylistPatch, content_type = "application/json"),
    responses(
        (status = 201, description = "The playlist.", body = PlaylistJson),
        (status = 400, description = "`invalid_json`, `invalid_field`, `invalid_privacy` or `unknown_channel`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`not_your_channel`, or `insufficient_scope` (no `library:write`).", body = ErrorBody),
        (status = 409, description = "`too_many_playlists`.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
async fn create(
    State(st): State<ApiState>,
    user: Scoped<LibraryWrite>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<PlaylistJson>), ApiError> {
    let patch: PlaylistPatch = channels::json_body(&headers, &body)?;
    let p = create_for(&st, &user, patch).await?;
    Ok((StatusCode::CREATED, Json(PlaylistJson::build(&p))))
}

/// Changes a playlist.
#[utoipa::path(patch, path = "/playlists/{id}", tag = "playlists",
    summary = "Changes a playlist's title, description, privacy or channel (owner or admin). JSON only.",
    security(("oauth2" = ["library:write"])),
    params(("id" = String, Path, description = PLAYLIST_ID)),
    request_body(content = PlaylistPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed playlist.", body = PlaylistJson),
        (status = 400, description = "`invalid_json`, `invalid_field`, `invalid_privacy`, `unknown_channel` or `system_playlist`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`not_your_playlist`, `not_your_channel`, or `insufficient_scope`.", body = ErrorBody),
        (status = 404, description = "No such playlist, or not yours to see.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
async fn edit(
    State(st): State<ApiState>,
    user: Scoped<LibraryWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<PlaylistJson>, ApiError> {
    let patch: PlaylistPatch = channels::json_body(&headers, &body)?;
    Ok(Json(PlaylistJson::build(&update_for(&st, &user, &id, patch).await?)))
}

/// Deletes a playlist.
#[utoipa::path(delete, path = "/playlists/{id}", tag = "playlists",
    summary = "Deletes a playlist (owner or admin); the system lists stay.",
    security(("oauth2" = ["library:write"])),
    params(("id" = String, Path, description = PLAYLIST_ID)),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "`system_playlist`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`not_your_playlist`, or `insufficient_scope`.", body = ErrorBody),
        (status = 404, description = "No such playlist, or not yours to see.", body = ErrorBody),
    ))]
async fn remove(
    State(st): State<ApiState>,
    user: Scoped<LibraryWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete_for(&st, &user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A video to add.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewPlaylistItem)]
struct NewItem {
    video_id: String,
}

/// The item added.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = AddedPlaylistItem)]
struct Added {
    id: Uuid,
}

/// Adds a video.
#[utoipa::path(post, path = "/playlists/{id}/items", tag = "playlists",
    summary = "Appends a video the caller may see (at most 5,000 per playlist; once each). JSON only.",
    security(("oauth2" = ["library:write"])),
    params(("id" = String, Path, description = PLAYLIST_ID)),
    request_body(content = NewItem, content_type = "application/json"),
    responses(
        (status = 201, description = "Added.", body = Added),
        (status = 400, description = "`invalid_json` or `system_playlist`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`not_your_playlist`, or `insufficient_scope`.", body = ErrorBody),
        (status = 404, description = "No such playlist or video, or not yours to see.", body = ErrorBody),
        (status = 409, description = "`already_in_playlist` or `playlist_full`.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
async fn add(
    State(st): State<ApiState>,
    user: Scoped<LibraryWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Added>), ApiError> {
    let new: NewItem = channels::json_body(&headers, &body)?;
    let item = add_for(&st, &user, &id, &new.video_id).await?;
    Ok((StatusCode::CREATED, Json(Added { id: item })))
}

/// A move.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PlaylistItemMove)]
struct Move {
    /// The 0-based place in the whole list; past the end is the end.
    #[schema(maximum = 5000)]
    position: u32,
}

/// Moves an item.
#[utoipa::path(patch, path = "/playlists/{id}/items/{item_id}", tag = "playlists",
    summary = "Moves an item to a new place (0-based). JSON only.",
    security(("oauth2" = ["library:write"])),
    params(("id" = String, Path, description = PLAYLIST_ID), ("item_id" = String, Path, description = "The item.")),
    request_body(content = Move, content_type = "application/json"),
    responses(
        (status = 204, description = "Moved."),
        (status = 400, description = "`invalid_json` or `system_playlist`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`not_your_playlist`, or `insufficient_scope`.", body = ErrorBody),
        (status = 404, description = "No such playlist or item.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
async fn move_item(
    State(st): State<ApiState>,
    user: Scoped<LibraryWrite>,
    Path((id, item)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let m: Move = channels::json_body(&headers, &body)?;
    move_for(&st, &user, &id, &item, m.position.min(rows::MAX_ITEMS as u32)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes an item.
#[utoipa::path(delete, path = "/playlists/{id}/items/{item_id}", tag = "playlists",
    summary = "Removes an item.",
    security(("oauth2" = ["library:write"])),
    params(("id" = String, Path, description = PLAYLIST_ID), ("item_id" = String, Path, description = "The item.")),
    responses(
        (status = 204, description = "Removed."),
        (status = 400, description = "`system_playlist`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`not_your_playlist`, or `insufficient_scope`.", body = ErrorBody),
        (status = 404, description = "No such playlist or item.", body = ErrorBody),
    ))]
async fn remove_item(
    State(st): State<ApiState>,
    user: Scoped<LibraryWrite>,
    Path((id, item)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    remove_for(&st, &user, &id, &item).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Playlists.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = PlaylistList)]
struct ListJson {
    playlists: Vec<PlaylistJson>,
    /// Pass as `cursor` for the next page; null on the last (always null for `/me/playlists`).
    next_cursor: Option<String>,
}

/// Every list of `user`: Watch later, Liked videos, then theirs, newest first.
pub async fn all_of(st: &ApiState, user: &CurrentUser) -> Result<Vec<PlaylistJson>, ApiError> {
    let wl = watch_later_as_is(st, user).await?;
    let mut out = vec![PlaylistJson::build(&wl)];
    out.push(PlaylistJson::liked(user, turtlemen_db::ratings::liked_count(&st.db, user.0.id).await?));
    for p in rows::list_by_owner(&st.db, user.0.id).await?.iter().filter(|p| p.kind == Kind::User) {
        out.push(PlaylistJson::build(p));
    }
    Ok(out)
}

/// The caller's playlists.
#[utoipa::path(get, path = "/me/playlists", tag = "playlists",
    summary = "The signed-in user's playlists: Watch later, Liked videos, then their own lists, newest first.",
    security(("oauth2" = ["library:read"])),
    responses(
        (status = 200, description = "Playlists.", body = ListJson),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `library:read`.", body = ErrorBody),
    ))]
async fn mine(State(st): State<ApiState>, user: Scoped<LibraryRead>) -> Result<Json<ListJson>, ApiError> {
    Ok(Json(ListJson { playlists: all_of(&st, &user).await?, next_cursor: None }))
}

/// A channel's public playlists, after `cursor`; `limit` of them.
pub async fn public_page(
    st: &ApiState,
    channel: Uuid,
    viewer: Option<&CurrentUser>,
    cursor_text: Option<&str>,
    limit: u32,
) -> Result<(Vec<PlaylistJson>, Option<String>), ApiError> {
    let after = cursor::decode_time(st, cursor::Kind::ChannelPlaylists, cursor_text)?;
    let mut lists = rows::list_public_by_channel(&st.db, channel, viewer.map(|u| u.0.id), after, limit + 1).await?;
    let next_cursor = next(&mut lists, limit, |p: &Playlist| {
        cursor::encode(st, cursor::Kind::ChannelPlaylists, cursor::time_key(p.updated_at), p.id)
    });
    Ok((lists.iter().map(PlaylistJson::build).collect(), next_cursor))
}

/// A channel's public playlists.
#[utoipa::path(get, path = "/channels/{handle}/playlists", tag = "playlists",
    summary = "A channel's public playlists, most recently changed first.",
    params(("handle" = String, Path, description = "The channel's handle (any case)."), PageQuery),
    responses(
        (status = 200, description = "Playlists.", body = ListJson),
        (status = 400, description = "`invalid_cursor`, or a malformed query.", body = ErrorBody),
        (status = 404, description = "No channel has this handle.", body = ErrorBody),
    ))]
async fn of_channel(
    State(st): State<ApiState>,
    Path(handle): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<ListJson>, ApiError> {
    let c = channels::find(&st, &handle).await?;
    let limit = q.limit.unwrap_or(50).clamp(1, 100);
    let (playlists, next_cursor) = public_page(&st, c.id, None, q.cursor.as_deref(), limit).await?;
    Ok(Json(ListJson { playlists, next_cursor }))
}
