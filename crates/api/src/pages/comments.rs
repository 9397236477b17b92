//! The comment pages: the watch page's comments section, a thread's page
//! (`/videos/{id}/comments/{comment}`), the forms that write, edit, delete, remove, pin, like and
//! approve comments, and the studio's queue of held comments (`/studio/comments`).
//!
//! Every form is a POST carrying the CSRF token ([`super::csrf`]) and goes through the same
//! functions as the JSON API ([`crate::comments`]), so authorization, limits and the blocked
//! words are decided once; afterwards the browser goes back to a checked local path
//! ([`RedirectTarget`]) — the new comment's anchor, or the page the form was on.

use super::{context, csrf, private};
use crate::comments::{self as api, CommentPage};
use crate::identity::CurrentUser;
use crate::{ApiState, videos};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use turtlemen_db::comments::{Comment, Policy, Sort, Status};
use turtlemen_db::videos::Video;
use turtlemen_domain::RedirectTarget;
use turtlemen_http::ApiError;
use turtlemen_web::channel_pages::age_label;
use turtlemen_web::comment_pages::{self, CommentItem, CommentsSection, HeldItem, HeldView, ThreadView};
use uuid::Uuid;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/videos/{id}/comments", post(write_submit))
        .route("/videos/{id}/comments/{comment}", get(thread_page))
        .route("/comments/{id}/edit", post(edit_submit))
        .route("/comments/{id}/delete", post(delete_submit))
        .route("/comments/{id}/pin", post(pin_submit))
        .route("/comments/{id}/like", post(like_submit))
        .route("/comments/{id}/approve", post(approve_submit))
        .route("/studio/comments", get(held_page))
}

/// The watch page's query, as far as comments go.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(super) struct CommentsQuery {
    pub sort: Option<String>,
    pub cursor: Option<String>,
    /// `1`: back from "Sign in to comment": focus the box.
    pub comment: Option<String>,
    /// What was just done, for the notice.
    pub done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<String> {
    Some(
        match done? {
            "held" => "Your comment is held for review: it shows once the channel approves it.",
            "held_word" => {
                "Your comment is held for review: it holds a word this channel or site reviews before it is shown. \
                 It shows once the channel approves it."
            }
            "deleted" => "Comment deleted.",
            "removed" => "Comment removed.",
            "approved" => "Comment approved.",
            "rejected" => "Comment rejected.",
            _ => return None,
        }
        .to_owned(),
    )
}

/// One comment as `viewer` sees it on `v`.
fn item(
    c: &Comment,
    v: &Video,
    viewer: Option<&CurrentUser>,
    policy: Policy,
    pinned: bool,
    liked: bool,
) -> CommentItem {
    let json = api::CommentJson::build(c, pinned, Some(liked));
    let author = viewer.is_some_and(|u| u.0.id == c.author_id);
    let moderator = viewer.is_some_and(|u| api::may_moderate(v, u));
    let shown = c.status == Status::Visible;
    CommentItem {
        id: c.id.to_string(),
        video_id: c.video_id.to_string(),
        status: c.status.as_str().to_owned(),
        author_name: json.author.as_ref().map(|a| a.display_name.clone()),
        author_url: json.author.as_ref().map(|a| a.url.clone()),
        reply_to: json.reply_to,
        html: json.html.unwrap_or_default(),
        text: if author { c.body.clone() } else { String::new() },
        age: age_label((Utc::now() - c.created_at).num_seconds()),
        at: c.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        edited: c.edited_at.is_some(),
        likes: c.like_count,
        liked,
        pinned,
        reply_count: c.reply_count,
        thread_url: c.root_id.is_none().then(|| format!("{}/comments/{}", videos::watch_url(c.video_id), c.id)),
        can_reply: viewer.is_some() && shown && policy != Policy::Closed,
        can_like: viewer.is_some() && shown,
        can_edit: author && matches!(c.status, Status::Visible | Status::Held),
        can_delete: author && matches!(c.status, Status::Visible | Status::Held),
        can_remove: !author && moderator && matches!(c.status, Status::Visible | Status::Held),
        can_pin: shown && c.root_id.is_none() && viewer.is_some_and(|u| videos::may_manage(v, u)),
        can_approve: moderator && c.status == Status::Held,
    }
}

/// The comments section of `v`'s watch page (its comment `settings` read with it).
pub(super) async fn section(
    st: &ApiState,
    v: &Video,
    settings: turtlemen_db::comments::VideoComments,
    viewer: Option<&CurrentUser>,
    q: &CommentsQuery,
    here: &str,
) -> Result<CommentsSection, ApiError> {
    let sort = api::parse_sort(q.sort.as_deref())?;
    let p: CommentPage = api::page(st, v, Some(settings), viewer, sort, q.cursor.as_deref(), api::PAGE).await?;
    let liked = |c: &Comment| p.liked.as_ref().is_some_and(|l| l.contains(&c.id));
    let policy = p.settings.policy;
    let items = p
        .pinned
        .iter()
        .map(|c| item(c, v, viewer, policy, true, liked(c)))
        .chain(p.held.iter().chain(p.comments.iter()).map(|c| item(c, v, viewer, policy, false, liked(c))))
        .collect();
    let sort_name = match sort {
        Sort::Newest => "newest",
        Sort::Top => "top",
    };
    Ok(CommentsSection {
        video_id: v.id.to_string(),
        count: p.settings.count,
        policy: policy.as_str().to_owned(),
        sort: sort_name.to_owned(),
        items,
        next_url: p.next_cursor.map(|c| format!("{}?sort={sort_name}&cursor={c}#comments", videos::watch_url(v.id))),
        csrf: viewer.map(|u| csrf::token(st, u)),
        return_to: format!("{}?comment=1#comment-box", videos::watch_url(v.id)),
        focus: q.comment.as_deref() == Some("1"),
        notice: notice(q.done.as_deref()),
        here: here.to_owned(),
    })
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ThreadQuery {
    cursor: Option<String>,
    done: Option<String>,
}

/// `GET /videos/{id}/comments/{comment}`: a thread; a reply's link goes to its thread.
async fn thread_page(
    State(st): State<ApiState>,
    viewer: Option<CurrentUser>,
    Path((video, comment)): Path<(String, String)>,
    Query(q): Query<ThreadQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let viewer = viewer.as_ref();
    let (c, v) = api::visible(&st, &comment, viewer).await?;
    if v.id.to_string() != video {
        return Err(ApiError::not_found());
    }
    if let Some(root) = c.root_id {
        return Ok(
            Redirect::to(&format!("{}/comments/{root}#comment-{}", videos::watch_url(v.id), c.id)).into_response()
        );
    }
    let p = api::replies_page(&st, viewer, &comment, q.cursor.as_deref(), 100).await?;
    let settings = turtlemen_db::comments::video_settings(&st.db, v.id).await?.ok_or_else(ApiError::not_found)?;
    let liked = |c: &Comment| p.liked.as_ref().is_some_and(|l| l.contains(&c.id));
    let ctx = context(&st, viewer, &uri, &headers).await;
    let thread_url = format!("{}/comments/{}", videos::watch_url(v.id), c.id);
    let view = ThreadView {
        video_title: v.title.clone(),
        watch_url: videos::watch_url(v.id),
        root: item(&p.root, &v, viewer, settings.policy, settings.pinned == Some(c.id), liked(&p.root)),
        replies: p.replies.iter().map(|r| item(r, &v, viewer, settings.policy, false, liked(r))).collect(),
        next_url: p.next_cursor.map(|cur| format!("{thread_url}?cursor={cur}")),
        section: CommentsSection {
            video_id: v.id.to_string(),
            count: settings.count,
            policy: settings.policy.as_str().to_owned(),
            sort: "newest".into(),
            csrf: viewer.map(|u| csrf::token(&st, u)),
            return_to: thread_url.clone(),
            notice: notice(q.done.as_deref()),
            here: ctx.path.clone(),
            ..Default::default()
        },
    };
    let html = comment_pages::thread_page(&view, &ctx);
    Ok(if viewer.is_some() { private(html) } else { Html(html).into_response() })
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct WriteForm {
    csrf: String,
    text: String,
    parent_id: String,
}

/// `POST /videos/{id}/comments`: writes, then shows the new comment (or says it is held).
async fn write_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<WriteForm>,
) -> Result<Response, api::Refusal> {
    csrf::check(&st, &user, &form.csrf)?;
    let parent = match form.parent_id.trim() {
        "" => None,
        p => Some(Uuid::parse_str(p).map_err(|_| ApiError::bad_request("invalid_parent", "That is not a comment."))?),
    };
    let w = api::write(&st, &user, &id, &form.text, parent).await?;
    let to = if let Some(why) = w.held_because {
        let done = match why {
            api::Held::BlockedWord => "held_word",
            api::Held::Policy => "held",
        };
        format!("{}?done={done}#comments", videos::watch_url(w.comment.video_id))
    } else {
        api::url(&w.comment)
    };
    Ok(Redirect::to(&to).into_response())
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ActionForm {
    csrf: String,
    text: String,
    action: String,
    return_to: String,
}

/// Where a form goes back to: its checked `return_to`, else the comment's place.
fn back(return_to: &str, fallback: String) -> Redirect {
    let to = RedirectTarget::parse_local(return_to).map_or(fallback, |t| t.as_str().to_owned());
    Redirect::to(&to)
}

/// `POST /comments/{id}/edit` (the author).
async fn edit_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let c = api::change(&st, &user, &id, &form.text).await?;
    Ok(Redirect::to(&api::url(&c)))
}

/// `POST /comments/{id}/delete`: the author deletes; the video's owner or a moderator removes
/// (or rejects a held comment).
async fn delete_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let (c, _) = api::take_down(&st, &user, &id).await?;
    Ok(back(&form.return_to, format!("{}#comments", videos::watch_url(c.video_id))))
}

/// `POST /comments/{id}/pin` with `action` = `pin` or `unpin` (the video's owner).
async fn pin_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let c = api::set_pin(&st, &user, &id, form.action != "unpin").await?;
    Ok(back(&form.return_to, api::url(&c)))
}

/// `POST /comments/{id}/like` with `action` = `like` or `none`.
async fn like_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Redirect, crate::rate_limit::Refusal> {
    csrf::check(&st, &user, &form.csrf)?;
    let c = api::set_like(&st, &user, &id, form.action != "none").await?;
    let fallback = api::url(&c);
    let to = RedirectTarget::parse_local(&form.return_to).map_or(fallback, |t| {
        // Back to the same place, at the comment.
        let base = t.as_str().split('#').next().unwrap_or("/").to_owned();
        format!("{base}#comment-{}", c.id)
    });
    Ok(Redirect::to(&to))
}

/// `POST /comments/{id}/approve` (the video's owner or a moderator).
async fn approve_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let c = api::approve_held(&st, &user, &id).await?;
    Ok(back(&form.return_to, api::url(&c)))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct HeldQuery {
    cursor: Option<String>,
    done: Option<String>,
}

/// `GET /studio/comments`: the held comments on the signed-in user's videos.
async fn held_page(
    State(st): State<ApiState>,
    user: CurrentUser,
    Query(q): Query<HeldQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (list, next) = api::held_page(&st, &user, q.cursor.as_deref(), api::PAGE).await?;
    let mut items = Vec::with_capacity(list.len());
    for c in &list {
        let Some(v) = turtlemen_db::videos::get(&st.db, c.video_id).await? else { continue };
        items.push(HeldItem {
            comment: item(c, &v, Some(&user), Policy::Held, false, false),
            video_title: v.title.clone(),
            watch_url: videos::watch_url(v.id),
        });
    }
    let view = HeldView {
        items,
        csrf: csrf::token(&st, &user),
        next_url: next.map(|c| format!("/studio/comments?cursor={c}")),
        notice: notice(q.done.as_deref()),
    };
    Ok(private(comment_pages::held_page(&view, &context(&st, Some(&user), &uri, &headers).await)))
}
