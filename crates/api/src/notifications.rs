//! Notifications for the signed-in user.
//!
//! - `GET /api/v1/me/notifications?cursor=&limit=`: newest first, each with `read`, keyset-paged
//!   by `(created_at, id)` with a signed cursor ([`crate::cursor`]; a forged one is 400).
//! - `GET /api/v1/me/notifications/unread`: `{"unread": n}`, counted up to
//!   [`UNREAD_CAP`] (the bell shows "99+").
//! - `POST /api/v1/me/notifications/read` (JSON only): `{"ids": [...]}` (at most
//!   [`MAX_MARK_IDS`]) or `{"all": true}`; ids that are not the caller's change nothing.
//! - `GET`/`PUT /api/v1/me/notifications/settings`: `{"new_video": bool, "live_started": bool,
//!   "new_subscriber": bool, "comment_reply": bool, "comment_mention": bool, "video_comment": bool}`, every kind on
//!   by default; `PUT` changes the kinds it names.
//!
//! Reading needs `notifications:read`, changing `notifications:write` (which includes read).
//! Each notification carries what it takes to show it (channel handle and name, the video's
//! title and watch URL, or the subscriber's names) and nothing about a video its recipient may no
//! longer see: those are left out ([`turtlemen_db::notifications`]). Notifications are made by
//! jobs, never by these handlers.

use crate::identity::{CurrentUser, NotificationsRead, NotificationsWrite, Scoped};
use crate::subscriptions::PageQuery;
use crate::{ApiState, channels, cursor, videos};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use turtlemen_db::notifications::{self as rows, Kind, Notification, Settings, Subject};
use turtlemen_http::{ApiError, ErrorBody};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub use turtlemen_db::notifications::UNREAD_CAP;

/// The most ids one "mark read" request may name.
pub const MAX_MARK_IDS: usize = 100;

/// The notifications routes, each with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(unread))
        .routes(routes!(mark_read))
        .routes(routes!(get_settings, put_settings))
}

/// The channel a notification is about: new_video, the channel that published; new_subscriber,
/// your channel they followed.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ChannelRef {
    pub id: Uuid,
    pub handle: String,
    pub display_name: String,
    pub url: String,
}

/// The video of a `new_video` notification.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct VideoRef {
    pub id: Uuid,
    pub title: String,
    pub watch_url: String,
}

/// The live of a `live_started` notification.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LiveRef {
    pub id: Uuid,
    pub title: String,
    /// The live's page (it links the replay once the live is over).
    pub watch_url: String,
}

/// The follower of a `new_subscriber` notification.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SubscriberRef {
    pub username: String,
    pub display_name: String,
    /// Their personal channel's page.
    pub url: String,
}

/// A notification as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Notification)]
pub struct NotificationJson {
    pub id: Uuid,
    pub kind: Kind,
    pub read: bool,
    pub created_at: DateTime<Utc>,
    pub channel: ChannelRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoRef>,
    /// The live of `live_started`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriber: Option<SubscriberRef>,
    /// The comment of `comment_reply`, `comment_mention` and `video_comment`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<CommentRef>,
    /// A moderator's warning (kind `warning`), in their words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The comment a comment notification is about.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CommentRef {
    pub id: Uuid,
    /// Its author's username.
    pub author: String,
    pub video_id: Uuid,
    pub video_title: String,
    /// Where it is shown.
    pub url: String,
}

impl NotificationJson {
    pub fn build(n: &Notification) -> NotificationJson {
        let warning = match &n.subject {
            Subject::Warning { text } => Some(text.clone()),
            _ => None,
        };
        let live = match &n.subject {
            Subject::Live { id, title } => {
                Some(LiveRef { id: *id, title: title.clone(), watch_url: crate::lives::watch_url(*id) })
            }
            _ => None,
        };
        let (video, subscriber, comment) = match &n.subject {
            Subject::Video { id, title } => {
                (Some(VideoRef { id: *id, title: title.clone(), watch_url: videos::watch_url(*id) }), None, None)
            }
            Subject::Subscriber { username, display_name, .. } => (
                None,
                Some(SubscriberRef {
                    username: username.clone(),
                    display_name: if display_name.trim().is_empty() { username.clone() } else { display_name.clone() },
                    url: channels::page_url(username),
                }),
                None,
            ),
            Subject::Comment { id, video_id, video_title, root_id, author_username } => (
                None,
                None,
                Some(CommentRef {
                    id: *id,
                    author: author_username.clone(),
                    video_id: *video_id,
                    video_title: video_title.clone(),
                    url: match root_id {
                        None => format!("{}#comment-{id}", videos::watch_url(*video_id)),
                        Some(root) => format!("{}/comments/{root}#comment-{id}", videos::watch_url(*video_id)),
                    },
                }),
            ),
            Subject::Warning { .. } | Subject::Live { .. } => (None, None, None),
        };
        NotificationJson {
            id: n.id,
            kind: n.kind,
            read: n.read_at.is_some(),
            created_at: n.created_at,
            channel: ChannelRef {
                id: n.channel_id,
                handle: n.channel_handle.clone(),
                display_name: n.channel_display_name.clone(),
                url: channels::page_url(&n.channel_handle),
            },
            video,
            live,
            subscriber,
            comment,
            warning,
        }
    }
}

/// One page of a user's notifications and the cursor of the next, if any.
pub struct NotificationPage {
    pub notifications: Vec<Notification>,
    pub next_cursor: Option<String>,
}

/// The page of `user`'s notifications after `cursor_text` (the first page without one).
pub async fn page(
    st: &ApiState,
    user: &CurrentUser,
    cursor_text: Option<&str>,
    limit: u32,
) -> Result<NotificationPage, ApiError> {
    let after = cursor::decode_time(st, cursor::Kind::Notifications, cursor_text)?;
    let mut list = rows::list(&st.db, user.0.id, after, limit + 1).await?;
    let next_cursor = if list.len() > limit as usize {
        list.truncate(limit as usize);
        list.last().map(|n| cursor::encode(st, cursor::Kind::Notifications, cursor::time_key(n.created_at), n.id))
    } else {
        None
    };
    Ok(NotificationPage { notifications: list, next_cursor })
}

/// A page of notifications.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = NotificationPage)]
struct List {
    notifications: Vec<NotificationJson>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// The signed-in user's notifications.
#[utoipa::path(get, path = "/me/notifications", tag = "notifications",
    summary = "The signed-in user's notifications, newest first. A video that is no longer public or playable, or was deleted, is left out.",
    security(("oauth2" = ["notifications:read"])),
    params(PageQuery),
    responses(
        (status = 200, description = "Notifications.", body = List),
        (status = 400, description = "`invalid_cursor`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `notifications:read`.", body = ErrorBody),
    ))]
async fn list(
    State(st): State<ApiState>,
    scoped: Scoped<NotificationsRead>,
    Query(q): Query<PageQuery>,
) -> Result<Json<List>, ApiError> {
    let limit = q.limit.unwrap_or(30).clamp(1, 100);
    let p = page(&st, &scoped, q.cursor.as_deref(), limit).await?;
    Ok(Json(List {
        notifications: p.notifications.iter().map(NotificationJson::build).collect(),
        next_cursor: p.next_cursor,
    }))
}

/// How many notifications are unread.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = UnreadCount)]
struct Unread {
    /// Counted up to 100.
    #[schema(maximum = 100)]
    unread: u32,
}

/// The unread count.
#[utoipa::path(get, path = "/me/notifications/unread", tag = "notifications",
    summary = "How many notifications are unread, counted up to 100.",
    security(("oauth2" = ["notifications:read"])),
    responses(
        (status = 200, description = "The count.", body = Unread),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `notifications:read`.", body = ErrorBody),
    ))]
async fn unread(State(st): State<ApiState>, scoped: Scoped<NotificationsRead>) -> Result<Json<Unread>, ApiError> {
    Ok(Json(Unread { unread: rows::unread_count(&st.db, scoped.0.0.id, UNREAD_CAP).await? }))
}

/// What "mark read" names: some ids (`{"ids": [...]}`, at most 100), or all (`{"all": true}`).
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MarkRead)]
struct MarkRead {
    /// Notifications to mark read; ids that are not the caller's change nothing.
    #[schema(max_items = 100)]
    ids: Option<Vec<Uuid>>,
    /// `true`: every notification.
    all: Option<bool>,
}

/// Which notifications to mark read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marking {
    Ids(Vec<Uuid>),
    All,
}

impl MarkRead {
    fn parse(self) -> Result<Marking, ApiError> {
        match (self.ids, self.all) {
            (Some(ids), None | Some(false)) if ids.len() <= MAX_MARK_IDS => Ok(Marking::Ids(ids)),
            (Some(_), None | Some(false)) => Err(ApiError::bad_request(
                "too_many_ids",
                format!("Name at most {MAX_MARK_IDS} notifications at once, or send {{\"all\": true}}."),
            )),
            (None, Some(true)) => Ok(Marking::All),
            _ => Err(ApiError::bad_request(
                "invalid_marking",
                "Send {\"ids\": [...]} to mark some notifications read, or {\"all\": true} for all of them.",
            )),
        }
    }
}

/// Marks `user`'s notifications read; returns how many changed.
pub async fn mark(st: &ApiState, user: &CurrentUser, marking: &Marking) -> Result<u64, ApiError> {
    Ok(match marking {
        Marking::Ids(ids) => rows::mark_read(&st.db, user.0.id, ids).await?,
        Marking::All => rows::mark_all_read(&st.db, user.0.id).await?,
    })
}

/// How many changed, and the unread count after.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct Marked {
    marked: u64,
    #[schema(maximum = 100)]
    unread: u32,
}

/// Marks notifications read.
#[utoipa::path(post, path = "/me/notifications/read", tag = "notifications",
    summary = "Marks notifications read: the ids given, or all (JSON only).",
    security(("oauth2" = ["notifications:write"])),
    request_body(content = MarkRead, content_type = "application/json"),
    responses(
        (status = 200, description = "Marked.", body = Marked),
        (status = 400, description = "`invalid_json`, `invalid_marking` or `too_many_ids`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `notifications:write`.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
async fn mark_read(
    State(st): State<ApiState>,
    scoped: Scoped<NotificationsWrite>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Marked>, ApiError> {
    let marking = channels::json_body::<MarkRead>(&headers, &body)?.parse()?;
    let marked = mark(&st, &scoped, &marking).await?;
    Ok(Json(Marked { marked, unread: rows::unread_count(&st.db, scoped.0.0.id, UNREAD_CAP).await? }))
}

/// Which kinds of notification a user gets.
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
#[schema(as = NotificationSettings)]
struct SettingsJson {
    /// A channel you follow published a video.
    new_video: bool,
    /// A channel you follow went live.
    live_started: bool,
    /// Someone subscribed to your channel.
    new_subscriber: bool,
    /// Someone replied to your comment.
    comment_reply: bool,
    /// A comment mentions your @handle.
    comment_mention: bool,
    /// Someone commented on your video.
    video_comment: bool,
}

impl From<Settings> for SettingsJson {
    fn from(s: Settings) -> Self {
        SettingsJson {
            new_video: s.new_video,
            live_started: s.live_started,
            new_subscriber: s.new_subscriber,
            comment_reply: s.comment_reply,
            comment_mention: s.comment_mention,
            video_comment: s.video_comment,
        }
    }
}

/// A change of settings: the kinds named are set, the others keep theirs.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NotificationSettingsPatch)]
struct SettingsPatch {
    new_video: Option<bool>,
    live_started: Option<bool>,
    new_subscriber: Option<bool>,
    comment_reply: Option<bool>,
    comment_mention: Option<bool>,
    video_comment: Option<bool>,
}

/// Sets the kinds `changes` names for `user`.
pub async fn set_kinds(st: &ApiState, user: &CurrentUser, changes: &[(Kind, bool)]) -> Result<Settings, ApiError> {
    for &(kind, enabled) in changes {
        rows::set_enabled(&st.db, user.0.id, kind, enabled).await?;
    }
    Ok(rows::settings(&st.db, user.0.id).await?)
}

/// The notification settings.
#[utoipa::path(get, path = "/me/notifications/settings", tag = "notifications",
    summary = "Which kinds of notification the signed-in user gets (every kind unless turned off).",
    security(("oauth2" = ["notifications:read"])),
    responses(
        (status = 200, description = "The settings.", body = SettingsJson),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `notifications:read`.", body = ErrorBody),
    ))]
async fn get_settings(
    State(st): State<ApiState>,
    scoped: Scoped<NotificationsRead>,
) -> Result<Json<SettingsJson>, ApiError> {
    Ok(Json(rows::settings(&st.db, scoped.0.0.id).await?.into()))
}

/// Changes the notification settings.
#[utoipa::path(put, path = "/me/notifications/settings", tag = "notifications",
    summary = "Turns kinds of notification on or off; kinds not named keep their setting (JSON only).",
    security(("oauth2" = ["notifications:write"])),
    request_body(content = SettingsPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The settings now.", body = SettingsJson),
        (status = 400, description = "`invalid_json` (an unknown kind, or not a boolean).", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `notifications:write`.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
async fn put_settings(
    State(st): State<ApiState>,
    scoped: Scoped<NotificationsWrite>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<SettingsJson>, ApiError> {
    let patch: SettingsPatch = channels::json_body(&headers, &body)?;
    let changes: Vec<(Kind, bool)> = [
        (Kind::NewVideo, patch.new_video),
        (Kind::LiveStarted, patch.live_started),
        (Kind::NewSubscriber, patch.new_subscriber),
        (Kind::CommentReply, patch.comment_reply),
        (Kind::CommentMention, patch.comment_mention),
        (Kind::VideoComment, patch.video_comment),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    Ok(Json(set_kinds(&st, &scoped, &changes).await?.into()))
}
