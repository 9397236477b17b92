//! The notifications page (`/notifications`, a `required` route) and its forms: mark one read
//! (`POST /notifications/{id}/read`), mark all read (`POST /notifications/read-all`) and the
//! per-kind settings (`POST /notifications/settings`).
//!
//! They read and write through the same functions as the JSON API ([`crate::notifications`]),
//! so visibility (a video no longer public is left out) and the cursor checks are decided once.
//! Every form carries the studio's CSRF token ([`super::csrf`]) and comes back to the page, so
//! it all works without JavaScript. The page is personal: `Cache-Control: no-store`.

use super::{context, csrf, private};
use crate::ApiState;
use crate::identity::CurrentUser;
use crate::notifications::{self, Marking, NotificationJson};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use turtlemen_db::notifications::{Kind, Notification, Subject};
use turtlemen_http::ApiError;
use turtlemen_web::channel_pages::age_label;
use turtlemen_web::notification_pages::{self, NotificationItem, NotificationsView};
use uuid::Uuid;

/// Notifications per page.
const PAGE: u32 = 30;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/notifications", get(notifications_page))
        .route("/notifications/{id}/read", post(mark_one))
        .route("/notifications/read-all", post(mark_all))
        .route("/notifications/settings", post(save_settings))
}

/// A line of the list for `n`.
fn item(n: &Notification) -> NotificationItem {
    let json = NotificationJson::build(n);
    if let Some(live) = json.live {
        let channel = json.channel;
        return line(n, channel.display_name, channel.url, live.title, live.watch_url);
    }
    let (actor_name, actor_url, object_name, object_url) = match (&n.subject, json.video, json.subscriber, json.comment)
    {
        (Subject::Video { .. }, Some(video), _, _) => {
            (json.channel.display_name, json.channel.url, video.title, video.watch_url)
        }
        (_, _, _, Some(c)) => {
            let author_url = crate::channels::page_url(&c.author);
            (c.author, author_url, c.video_title, c.url)
        }
        (_, _, Some(who), _) => (who.display_name, who.url, json.channel.display_name, json.channel.url),
        (Subject::Warning { text }, _, _, _) => {
            ("The moderators".to_owned(), json.channel.url.clone(), text.clone(), json.channel.url)
        }
        // Unreachable: a video notification carries its video, a subscriber one its subscriber.
        _ => (json.channel.display_name, json.channel.url.clone(), String::new(), json.channel.url),
    };
    line(n, actor_name, actor_url, object_name, object_url)
}

/// The line of `n` naming who did what.
fn line(
    n: &Notification,
    actor_name: String,
    actor_url: String,
    object_name: String,
    object_url: String,
) -> NotificationItem {
    NotificationItem {
        id: n.id.to_string(),
        kind: n.kind.as_str().to_owned(),
        actor_name,
        actor_url,
        object_name,
        object_url,
        unread: n.read_at.is_none(),
        age: age_label((Utc::now() - n.created_at).num_seconds()),
        at: n.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct PageQuery {
    cursor: Option<String>,
    done: Option<String>,
}

/// `GET /notifications`.
async fn notifications_page(
    State(st): State<ApiState>,
    user: CurrentUser,
    Query(q): Query<PageQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let page = notifications::page(&st, &user, q.cursor.as_deref(), PAGE).await?;
    let settings = turtlemen_db::notifications::settings(&st.db, user.0.id).await?;
    let view = NotificationsView {
        items: page.notifications.iter().map(item).collect(),
        next_url: page.next_cursor.map(|c| format!("/notifications?cursor={c}")),
        paged: q.cursor.as_deref().is_some_and(|c| !c.is_empty()),
        csrf: csrf::token(&st, &user),
        new_video: settings.new_video,
        live_started: settings.live_started,
        new_subscriber: settings.new_subscriber,
        comment_reply: settings.comment_reply,
        comment_mention: settings.comment_mention,
        video_comment: settings.video_comment,
        notice: match q.done.as_deref() {
            Some("read") => Some("Marked as read.".into()),
            Some("all") => Some("All marked as read.".into()),
            Some("settings") => Some("Settings saved.".into()),
            _ => None,
        },
    };
    let ctx = context(&st, Some(&user), &uri, &headers).await;
    Ok(private(notification_pages::notifications_page(&view, &ctx)))
}

/// `POST /notifications/{id}/read`: another user's id changes nothing.
async fn mark_one(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<csrf::TokenForm>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::bad_request("invalid_id", "That is not a notification."))?;
    notifications::mark(&st, &user, &Marking::Ids(vec![id])).await?;
    Ok(Redirect::to("/notifications?done=read"))
}

/// `POST /notifications/read-all`.
async fn mark_all(
    State(st): State<ApiState>,
    user: CurrentUser,
    axum::Form(form): axum::Form<csrf::TokenForm>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    notifications::mark(&st, &user, &Marking::All).await?;
    Ok(Redirect::to("/notifications?done=all"))
}

/// The settings form: a checkbox is sent only when checked.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct SettingsForm {
    csrf: String,
    new_video: Option<String>,
    live_started: Option<String>,
    new_subscriber: Option<String>,
    comment_reply: Option<String>,
    comment_mention: Option<String>,
    video_comment: Option<String>,
}

/// `POST /notifications/settings`: every kind is set from the form (unchecked: off).
async fn save_settings(
    State(st): State<ApiState>,
    user: CurrentUser,
    axum::Form(form): axum::Form<SettingsForm>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let changes = [
        (Kind::NewVideo, form.new_video.is_some()),
        (Kind::LiveStarted, form.live_started.is_some()),
        (Kind::NewSubscriber, form.new_subscriber.is_some()),
        (Kind::CommentReply, form.comment_reply.is_some()),
        (Kind::CommentMention, form.comment_mention.is_some()),
        (Kind::VideoComment, form.video_comment.is_some()),
    ];
    notifications::set_kinds(&st, &user, &changes).await?;
    Ok(Redirect::to("/notifications?done=settings"))
}
