//! Notifications for the signed-in user.
//!
//! - `GET /api/v1/me/notifications?cursor=&limit=`: newest first, each with `read`, keyset-paged
//!   by `(created_at, id)` with a signed cursor ([`crate::cursor`]; a forged one is 400).
//! - `GET /api/v1/me/notifications/unread`: `{"unread": n}`, counted up to
//!   [`UNREAD_CAP`] (the bell shows "99+").
//! - `POST /api/v1/me/notifications/read` (JSON only): `{"ids": [...]}` (at most
//!   [`MAX_MARK_IDS`]) or `{"all": true}`; ids that are not the caller's change nothing.
//! - `GET`/`PUT /api/v1/me/notifications/settings`: `{"new_video": bool, "new_subscriber":
//!   bool}`, every kind on by default; `PUT` changes the kinds it names.
//!
//! Reading needs `notifications:read`, changing `notifications:write` (which includes read).
//! Each notification carries what it takes to show it (channel handle and name, the video's
//! title and watch URL, or the subscriber's names) and nothing about a video its recipient may no
//! longer see: those are left out ([`turtlemen_db::notifications`]). Notifications are made by
//! jobs, never by these handlers.

use crate::identity::{CurrentUser, NotificationsRead, NotificationsWrite, Scoped};
use crate::{ApiState, channels, cursor, videos};
use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use turtlemen_db::notifications::{self as rows, Kind, Notification, Settings, Subject};
use turtlemen_http::ApiError;
use uuid::Uuid;

pub use turtlemen_db::notifications::UNREAD_CAP;

/// The most ids one "mark read" request may name.
pub const MAX_MARK_IDS: usize = 100;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/me/notifications", get(list))
        .route("/me/notifications/unread", get(unread))
        .route("/me/notifications/read", post(mark_read))
        .route("/me/notifications/settings", get(get_settings).put(put_settings))
}

/// The channel a notification is about.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChannelRef {
    pub id: Uuid,
    pub handle: String,
    pub display_name: String,
    pub url: String,
}

/// The video of a `new_video` notification.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VideoRef {
    pub id: Uuid,
    pub title: String,
    pub watch_url: String,
}

/// The follower of a `new_subscriber` notification.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SubscriberRef {
    pub username: String,
    pub display_name: String,
    /// Their personal channel's page.
    pub url: String,
}

/// A notification as the API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NotificationJson {
    pub id: Uuid,
    pub kind: Kind,
    pub read: bool,
    pub created_at: DateTime<Utc>,
    pub channel: ChannelRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriber: Option<SubscriberRef>,
}

impl NotificationJson {
    pub fn build(n: &Notification) -> NotificationJson {
        let (video, subscriber) = match &n.subject {
            Subject::Video { id, title } => {
                (Some(VideoRef { id: *id, title: title.clone(), watch_url: videos::watch_url(*id) }), None)
            }
            Subject::Subscriber { username, display_name, .. } => (
                None,
                Some(SubscriberRef {
                    username: username.clone(),
                    display_name: if display_name.trim().is_empty() { username.clone() } else { display_name.clone() },
                    url: channels::page_url(username),
                }),
            ),
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
            subscriber,
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

#[derive(Debug, serde::Deserialize)]
struct ListQuery {
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, serde::Serialize)]
struct List {
    notifications: Vec<NotificationJson>,
    next_cursor: Option<String>,
}

async fn list(
    State(st): State<ApiState>,
    scoped: Scoped<NotificationsRead>,
    Query(q): Query<ListQuery>,
) -> Result<Json<List>, ApiError> {
    let limit = q.limit.unwrap_or(30).clamp(1, 100);
    let p = page(&st, &scoped, q.cursor.as_deref(), limit).await?;
    Ok(Json(List {
        notifications: p.notifications.iter().map(NotificationJson::build).collect(),
        next_cursor: p.next_cursor,
    }))
}

#[derive(Debug, serde::Serialize)]
struct Unread {
    /// Counted up to [`UNREAD_CAP`].
    unread: u32,
}

async fn unread(State(st): State<ApiState>, scoped: Scoped<NotificationsRead>) -> Result<Json<Unread>, ApiError> {
    Ok(Json(Unread { unread: rows::unread_count(&st.db, scoped.0.0.id, UNREAD_CAP).await? }))
}

/// What "mark read" names: some ids, or all.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkRead {
    ids: Option<Vec<Uuid>>,
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

#[derive(Debug, serde::Serialize)]
struct Marked {
    marked: u64,
    unread: u32,
}

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

/// The settings as the API shows them.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct SettingsJson {
    new_video: bool,
    new_subscriber: bool,
}

impl From<Settings> for SettingsJson {
    fn from(s: Settings) -> Self {
        SettingsJson { new_video: s.new_video, new_subscriber: s.new_subscriber }
    }
}

/// A change of settings: the kinds named are set.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsPatch {
    new_video: Option<bool>,
    new_subscriber: Option<bool>,
}

/// Sets the kinds `changes` names for `user`.
pub async fn set_kinds(st: &ApiState, user: &CurrentUser, changes: &[(Kind, bool)]) -> Result<Settings, ApiError> {
    for &(kind, enabled) in changes {
        rows::set_enabled(&st.db, user.0.id, kind, enabled).await?;
    }
    Ok(rows::settings(&st.db, user.0.id).await?)
}

async fn get_settings(
    State(st): State<ApiState>,
    scoped: Scoped<NotificationsRead>,
) -> Result<Json<SettingsJson>, ApiError> {
    Ok(Json(rows::settings(&st.db, scoped.0.0.id).await?.into()))
}

async fn put_settings(
    State(st): State<ApiState>,
    scoped: Scoped<NotificationsWrite>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<SettingsJson>, ApiError> {
    let patch: SettingsPatch = channels::json_body(&headers, &body)?;
    let changes: Vec<(Kind, bool)> = [(Kind::NewVideo, patch.new_video), (Kind::NewSubscriber, patch.new_subscriber)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    Ok(Json(set_kinds(&st, &scoped, &changes).await?.into()))
}
