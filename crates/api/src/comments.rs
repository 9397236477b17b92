//! Comments on videos, threaded as YouTube shows them.
//!
//! - `GET /api/v1/videos/{id}/comments?sort=newest|top&cursor=`: the top-level comments, each
//!   with its reply count (the first page also carries the pinned comment and the viewer's own
//!   held ones — all held ones for the video's owner); `POST` the same URL with `{"text",
//!   "parent_id"}` writes one (201; `status` says `held` when it waits for approval).
//! - `GET /api/v1/comments/{id}`, `PATCH` (the author changes the text; marked edited),
//!   `DELETE` (the author deletes — "[deleted]" while replies hang on it; the video's owner or a
//!   moderator removes — "[removed]").
//! - `GET /api/v1/comments/{id}/replies?cursor=`: a thread's replies, oldest first; a reply to a
//!   reply is in its thread with the "@name" it answers (`reply_to`).
//! - `PUT`/`DELETE /api/v1/comments/{id}/pin` (the video's owner; one pinned comment per video),
//!   `PUT /api/v1/comments/{id}/rating` (`{"rating": "like" | "none"}`), `POST …/approve` (the
//!   owner or a moderator shows a held comment; rejecting is `DELETE`),
//!   `GET /api/v1/me/comments/held` (the owner's queue).
//!
//! Visibility is the video's ([`videos::visible`]): the comments of a private video are 404 to
//! anyone but its owner, exactly as the video is. A held comment exists only for its author, the
//! video's owner and moderators. Reading is public; writing needs `comments:write`. Text is
//! checked ([`CommentText`]: 10,000 characters at most, before any parsing), rendered once on
//! write ([`markdown`]) and stored with its source. Writing is limited per user
//! (`comments_per_minute`), and so are likes (`ratings_per_minute`), by [`crate::rate_limit`].
//! A comment holding a blocked word (the instance's list or the channel's) is held, and the
//! answer says so; an edit that would bring one into a shown comment is refused with the same
//! reason. Notifications are queued as a job after the write, never made here.

pub mod markdown;

use crate::identity::{CommentsWrite, CurrentUser, Scoped, VideosRead};
use crate::rate_limit::{self, Action};
use crate::{ApiState, channels, cursor, videos};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
pub use rate_limit::Refusal;
use turtlemen_db::comments::{self as rows, Comment, Gone, Policy, Sort, Status};
use turtlemen_db::videos::Video;
use turtlemen_domain::CommentText;
use turtlemen_http::{ApiError, ErrorBody};
use turtlemen_identity::Scope;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Comments per page (top-level and replies) unless asked otherwise.
pub const PAGE: u32 = 20;
/// Held comments shown on a video's first page.
const HELD_ON_PAGE: u32 = 20;

/// The comments routes, each with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(one, edit, remove))
        .routes(routes!(replies))
        .routes(routes!(pin, unpin))
        .routes(routes!(rate))
        .routes(routes!(approve))
        .routes(routes!(held_queue))
}

/// Whether `user` acts as a moderator of comments: the moderation rule, the one place it is
/// decided (a moderator or admin whose token grants `moderation`).
pub use crate::moderation::acts_as_moderator;

/// Whether `user` may remove any comment of `v` and approve its held ones: its owner or a
/// moderator.
pub fn may_moderate(v: &Video, user: &CurrentUser) -> bool {
    v.owner_id == user.0.id || acts_as_moderator(user)
}

/// A comment's author as shown.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = CommentAuthor)]
pub struct AuthorRef {
    pub username: String,
    pub display_name: String,
    /// Their channel's page.
    pub url: String,
}

/// A comment as the API shows it. A deleted or removed one keeps its place (and replies) but
/// has no author, text or HTML.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Comment)]
pub struct CommentJson {
    pub id: Uuid,
    pub video_id: Uuid,
    /// The comment it answers.
    pub parent_id: Option<Uuid>,
    /// The thread's top-level comment (null for a top-level comment).
    pub root_id: Option<Uuid>,
    pub author: Option<AuthorRef>,
    /// The username a reply to a reply answers ("@name").
    pub reply_to: Option<String>,
    pub status: Status,
    /// The markdown source.
    pub text: Option<String>,
    /// The sanitised HTML rendering of `text`.
    pub html: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the author last changed the text (null: never).
    pub edited_at: Option<DateTime<Utc>>,
    pub likes: u64,
    /// Replies in its thread (top-level comments).
    pub reply_count: u64,
    pub pinned: bool,
    /// Whether the caller likes it (null for a visitor).
    pub liked: Option<bool>,
    /// Where it is shown.
    pub url: String,
}

impl CommentJson {
    pub fn build(c: &Comment, pinned: bool, liked: Option<bool>) -> CommentJson {
        let shown = matches!(c.status, Status::Visible | Status::Held);
        CommentJson {
            id: c.id,
            video_id: c.video_id,
            parent_id: c.parent_id,
            root_id: c.root_id,
            author: shown.then(|| AuthorRef {
                username: c.author_username.clone(),
                display_name: if c.author_display_name.trim().is_empty() {
                    c.author_username.clone()
                } else {
                    c.author_display_name.clone()
                },
                url: channels::page_url(&c.author_username),
            }),
            reply_to: c.reply_to_username.clone().filter(|_| shown),
            status: c.status,
            text: shown.then(|| c.body.clone()),
            html: shown.then(|| c.html.clone()),
            created_at: c.created_at,
            edited_at: c.edited_at,
            likes: c.like_count,
            reply_count: c.reply_count,
            pinned,
            liked,
            url: url(c),
        }
    }
}

/// Where a comment is shown: the watch page for a top-level one, its thread's page for a reply.
pub fn url(c: &Comment) -> String {
    match c.root_id {
        None => format!("{}#comment-{}", videos::watch_url(c.video_id), c.id),
        Some(root) => format!("{}/comments/{root}#comment-{}", videos::watch_url(c.video_id), c.id),
    }
}

/// Whether `viewer` may see `c` (on a video they may see): a held comment only for its author,
/// the video's owner and moderators.
fn may_see(c: &Comment, v: &Video, viewer: Option<&CurrentUser>) -> bool {
    c.status != Status::Held || viewer.is_some_and(|u| u.0.id == c.author_id || may_moderate(v, u))
}

/// The comment named by `id` and its video, if `viewer` may see both; 404 otherwise.
pub async fn visible(st: &ApiState, id: &str, viewer: Option<&CurrentUser>) -> Result<(Comment, Video), ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found())?;
    let c = rows::get(&st.db, id).await?.ok_or_else(ApiError::not_found)?;
    let v = videos::visible(st, &c.video_id.to_string(), viewer).await?;
    if !may_see(&c, &v, viewer) {
        return Err(ApiError::not_found());
    }
    Ok((c, v))
}

/// Which of `list` the viewer likes (`None` for a visitor).
async fn likes_of(
    st: &ApiState,
    viewer: Option<&CurrentUser>,
    list: &[&Comment],
) -> Result<Option<Vec<Uuid>>, ApiError> {
    match viewer {
        Some(u) if !list.is_empty() => {
            let ids: Vec<Uuid> = list.iter().map(|c| c.id).collect();
            Ok(Some(rows::liked_by(&st.db, u.0.id, &ids).await?))
        }
        Some(_) => Ok(Some(Vec::new())),
        None => Ok(None),
    }
}

/// `sort` as asked (`newest` by default).
pub fn parse_sort(sort: Option<&str>) -> Result<Sort, ApiError> {
    match sort.filter(|s| !s.is_empty()) {
        None | Some("newest") => Ok(Sort::Newest),
        Some("top") => Ok(Sort::Top),
        Some(_) => Err(ApiError::bad_request("invalid_sort", "sort is newest or top.")),
    }
}

fn cursor_kind(sort: Sort) -> cursor::Kind {
    match sort {
        Sort::Newest => cursor::Kind::CommentsNewest,
        Sort::Top => cursor::Kind::CommentsTop,
    }
}

/// One page of a video's comments, with what the first page adds.
pub struct CommentPage {
    pub settings: rows::VideoComments,
    /// The pinned comment (first page only, when it is still shown).
    pub pinned: Option<Comment>,
    /// Held comments the viewer may see (first page only).
    pub held: Vec<Comment>,
    pub comments: Vec<Comment>,
    /// Comment ids the viewer likes (`None`: a visitor).
    pub liked: Option<Vec<Uuid>>,
    pub next_cursor: Option<String>,
}

/// The page of `v`'s comments in `sort` order after `cursor_text` (first page without one).
/// `settings` are the video's comment settings when already read with it (the watch page reads
/// them with the video); otherwise they are read here.
pub async fn page(
    st: &ApiState,
    v: &Video,
    settings: Option<rows::VideoComments>,
    viewer: Option<&CurrentUser>,
    sort: Sort,
    cursor_text: Option<&str>,
    limit: u32,
) -> Result<CommentPage, ApiError> {
    let after = match cursor_text.filter(|t| !t.is_empty()) {
        Some(t) => Some(cursor::decode(st, cursor_kind(sort), t)?),
        None => None,
    };
    let settings = match settings {
        Some(s) => s,
        None => rows::video_settings(&st.db, v.id).await?.ok_or_else(ApiError::not_found)?,
    };
    // The video's moderators see every held comment; anyone else only their own.
    let reader = viewer.map(|u| rows::Reader { user: u.0.id, held_of: (!may_moderate(v, u)).then_some(u.0.id) });
    let query = rows::PageQuery {
        video: v.id,
        sort,
        after,
        limit: limit + 1,
        reader,
        pinned: settings.pinned,
        held_limit: HELD_ON_PAGE,
    };
    let rows::Page { mut comments, held, pinned, liked } = rows::page(&st.db, &query).await?;
    let next_cursor = if comments.len() > limit as usize {
        comments.truncate(limit as usize);
        comments.last().map(|c| {
            let key = match sort {
                Sort::Newest => 0,
                Sort::Top => i64::try_from(c.like_count).unwrap_or(i64::MAX),
            };
            cursor::encode(st, cursor_kind(sort), key, c.id)
        })
    } else {
        None
    };
    if let Some(p) = &pinned {
        comments.retain(|c| c.id != p.id);
    }
    // The likes among what is shown (the page was read one longer, to know whether more follow).
    let liked = viewer.map(|_| {
        liked
            .into_iter()
            .filter(|id| pinned.iter().chain(held.iter()).chain(comments.iter()).any(|c| c.id == *id))
            .collect()
    });
    Ok(CommentPage { settings, pinned, held, comments, liked, next_cursor })
}

/// `GET …/comments`'s query.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `newest` (the default) or `top` (most liked, then newest).
    #[param(value_type = Option<String>, pattern = "^(newest|top)$")]
    pub sort: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 100)]
    pub cursor: Option<String>,
    /// 1 to 100 (20 by default; larger values are taken as 100).
    pub limit: Option<u32>,
}

/// A page of a video's comments.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = CommentList)]
struct ListJson {
    /// The video's visible comments, replies included.
    count: u64,
    policy: Policy,
    /// The pinned comment (first page only; it is not repeated in `comments`).
    pinned: Option<CommentJson>,
    /// Held comments the caller may see: their own, or all of them for the video's owner
    /// (first page only).
    held: Vec<CommentJson>,
    comments: Vec<CommentJson>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

fn json_list(p: &CommentPage) -> ListJson {
    let liked = |c: &Comment| p.liked.as_ref().map(|l| l.contains(&c.id));
    let pinned_id = p.settings.pinned;
    let build = |c: &Comment| CommentJson::build(c, Some(c.id) == pinned_id, liked(c));
    ListJson {
        count: p.settings.count,
        policy: p.settings.policy,
        pinned: p.pinned.as_ref().map(build),
        held: p.held.iter().map(build).collect(),
        comments: p.comments.iter().map(build).collect(),
        next_cursor: p.next_cursor.clone(),
    }
}

/// A video's top-level comments.
#[utoipa::path(get, path = "/videos/{id}/comments", tag = "comments",
    summary = "A video's top-level comments with their reply counts, newest or top first. A private video's comments exist only for its owner.",
    security((), ("oauth2" = ["videos:read"])),
    params(("id" = String, Path, description = "The video."), ListQuery),
    responses(
        (status = 200, description = "A page of comments.", body = ListJson),
        (status = 400, description = "`invalid_sort` or `invalid_cursor`.", body = ErrorBody),
        (status = 404, description = "No such video, or not yours to see.", body = ErrorBody),
    ))]
async fn list(
    State(st): State<ApiState>,
    viewer: Option<Scoped<VideosRead>>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let viewer = viewer.as_deref();
    let sort = parse_sort(q.sort.as_deref())?;
    let v = videos::visible(&st, &id, viewer).await?;
    let limit = q.limit.unwrap_or(PAGE).clamp(1, 100);
    let p = page(&st, &v, None, viewer, sort, q.cursor.as_deref(), limit).await?;
    let mut res = Json(json_list(&p)).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    Ok(res)
}

/// Checks comment text, with a 400 that says why.
pub fn parse_text(text: &str) -> Result<CommentText, ApiError> {
    CommentText::parse(text).map_err(|e| {
        let code = match e {
            turtlemen_domain::CommentTextError::TooLong => "text_too_long",
            turtlemen_domain::CommentTextError::Empty => "text_empty",
            turtlemen_domain::CommentTextError::Control => "invalid_text",
        };
        ApiError::bad_request(code, format!("{}.", capitalised(&e.to_string())))
    })
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// What was written, and why it waits if it does.
pub struct Written {
    pub comment: Comment,
    /// Why it is held: the video's policy, or a blocked word.
    pub held_because: Option<Held>,
}

/// Why a new comment waits for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The video's policy holds every comment.
    Policy,
    /// It holds a blocked word.
    BlockedWord,
}

impl Held {
    /// The reason, in a sentence.
    pub fn reason(self) -> &'static str {
        match self {
            Held::Policy => "The channel reviews comments on this video before they are shown.",
            Held::BlockedWord => BLOCKED_REASON,
        }
    }
}

/// Writes a comment by `user` on video `video_id` (a reply when `parent` names one).
pub async fn write(
    st: &ApiState,
    user: &CurrentUser,
    video_id: &str,
    text: &str,
    parent: Option<Uuid>,
) -> Result<Written, Refusal> {
    user.require(Scope::CommentsWrite).map_err(ApiError::from)?;
    let v = videos::visible(st, video_id, Some(user)).await?;
    let text = parse_text(text)?;
    let settings = rows::video_settings(&st.db, v.id).await?.ok_or_else(ApiError::not_found)?;
    if settings.policy == Policy::Closed {
        return Err(
            ApiError::new(StatusCode::FORBIDDEN, "comments_closed", "Comments are closed on this video.").into()
        );
    }
    let (parent_id, root_id) = match parent {
        None => (None, None),
        Some(pid) => {
            let p = rows::get(&st.db, pid).await?.filter(|p| p.video_id == v.id && may_see(p, &v, Some(user)));
            let p =
                p.ok_or_else(|| ApiError::bad_request("invalid_parent", "parent_id names no comment on this video."))?;
            match p.status {
                Status::Visible => {}
                Status::Deleted => {
                    return Err(conflict("parent_deleted", "That comment was deleted; you cannot reply to it.").into());
                }
                Status::Removed => {
                    return Err(conflict("parent_removed", "That comment was removed; you cannot reply to it.").into());
                }
                Status::Held => {
                    return Err(conflict(
                        "parent_held",
                        "That comment awaits approval; you can reply once it is shown.",
                    )
                    .into());
                }
            }
            (Some(p.id), Some(p.root_id.unwrap_or(p.id)))
        }
    };
    rate_limit::check(st, user, Action::Comment).await?;
    let owner = v.owner_id == user.0.id;
    let held_because = if owner {
        None
    } else if settings.policy == Policy::Held {
        Some(Held::Policy)
    } else {
        blocked_word_in(st, &v, &text).await?.map(|_| Held::BlockedWord)
    };
    let html = markdown::render(&text);
    let new = rows::NewComment {
        id: Uuid::now_v7(),
        video_id: v.id,
        author: user.0.id,
        parent_id,
        root_id,
        body: text.as_str(),
        html: &html,
        held: held_because.is_some(),
    };
    if rows::create(&st.db, &new).await? == rows::Created::ParentGone {
        return Err(match parent_id {
            Some(_) => conflict("parent_gone", "That comment was deleted; you cannot reply to it."),
            None => ApiError::not_found(),
        }
        .into());
    }
    if held_because.is_none() {
        announce(st, new.id).await;
    }
    let comment = rows::get(&st.db, new.id).await?.ok_or_else(ApiError::not_found)?;
    tracing::info!(comment.id = %comment.id, video.id = %v.id, user.id = %user.0.id.0, held = held_because.is_some(), "comment written");
    Ok(Written { comment, held_because })
}

/// Why a comment holding a blocked word is not shown as it is.
pub const BLOCKED_REASON: &str = "It holds a word this channel or site reviews before it is shown.";

/// The first blocked word (the instance's, or `v`'s channel's) that `text` holds.
async fn blocked_word_in(st: &ApiState, v: &Video, text: &CommentText) -> Result<Option<String>, ApiError> {
    let blocked = rows::blocked_words_for(&st.db, v.channel_id).await?;
    Ok(text.holds(blocked.iter().map(String::as_str)).map(str::to_owned))
}

/// Queues the notifications of a comment now shown; a failure is logged, the comment stands.
async fn announce(st: &ApiState, comment: Uuid) {
    if let Err(e) = turtlemen_db::comment_notifications::announce(&st.db, comment).await {
        tracing::error!(comment.id = %comment, error = %e, "cannot queue the comment's notifications");
    }
}

fn conflict(code: &'static str, message: &'static str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message)
}

/// A new comment.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewComment)]
struct NewCommentJson {
    /// Markdown: emphasis, code, links, quotes and lists; at most 10,000 characters.
    #[schema(min_length = 1, max_length = 10000)]
    text: String,
    /// The comment this one answers.
    parent_id: Option<Uuid>,
}

/// A written comment, and whether it waits for approval.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = WrittenComment)]
struct WrittenJson {
    #[serde(flatten)]
    comment: CommentJson,
    /// Why it is held for approval (null when it is shown).
    held_reason: Option<&'static str>,
}

/// Writes a comment.
#[utoipa::path(post, path = "/videos/{id}/comments", tag = "comments",
    summary = "Writes a comment, or a reply with `parent_id`. Held for the owner's approval when the video's policy says so or the text holds a blocked word (`status` is then `held`). JSON only.",
    security(("oauth2" = ["comments:write"])),
    params(("id" = String, Path, description = "The video.")),
    request_body(content = NewCommentJson, content_type = "application/json"),
    responses(
        (status = 201, description = "Written (shown, or held: see `status`).", body = WrittenJson),
        (status = 400, description = "`invalid_json`, `text_too_long`, `text_empty`, `invalid_text` or `invalid_parent`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` (`comments:write`) or `comments_closed`.", body = ErrorBody),
        (status = 404, description = "No such video, or not yours to see.", body = ErrorBody),
        (status = 409, description = "`parent_deleted`, `parent_removed`, `parent_held`, or `parent_gone` (erased while the reply was written): that comment cannot be answered.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many comments this minute; see `Retry-After`.", body = ErrorBody),
    ))]
async fn create(
    State(st): State<ApiState>,
    user: Scoped<CommentsWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Refusal> {
    let new: NewCommentJson = channels::json_body(&headers, &body)?;
    let w = write(&st, &user, &id, &new.text, new.parent_id).await?;
    let json = WrittenJson {
        comment: CommentJson::build(&w.comment, false, Some(false)),
        held_reason: w.held_because.map(Held::reason),
    };
    Ok((StatusCode::CREATED, Json(json)).into_response())
}

/// One comment.
#[utoipa::path(get, path = "/comments/{id}", tag = "comments",
    summary = "One comment. It exists only where its video does for the caller; a held one only for its author, the video's owner and moderators.",
    security((), ("oauth2" = ["videos:read"])),
    params(("id" = String, Path, description = "The comment.")),
    responses(
        (status = 200, description = "The comment.", body = CommentJson),
        (status = 404, description = "No such comment, or not yours to see.", body = ErrorBody),
    ))]
async fn one(
    State(st): State<ApiState>,
    viewer: Option<Scoped<VideosRead>>,
    Path(id): Path<String>,
) -> Result<Json<CommentJson>, ApiError> {
    let viewer = viewer.as_deref();
    let (c, _) = visible(&st, &id, viewer).await?;
    let settings = rows::video_settings(&st.db, c.video_id).await?.ok_or_else(ApiError::not_found)?;
    let liked = likes_of(&st, viewer, &[&c]).await?.map(|l| l.contains(&c.id));
    Ok(Json(CommentJson::build(&c, settings.pinned == Some(c.id), liked)))
}

/// Changes a comment's text (its author only); it is marked edited. The blocked words are
/// checked as for a new comment: a shown comment cannot take one in (400 `blocked_word`,
/// nothing changed) — holding it afterwards would hide a thread others answered — while a held
/// one stays held whatever it says; the video's owner is not checked, as when writing.
pub async fn change(st: &ApiState, user: &CurrentUser, id: &str, text: &str) -> Result<Comment, ApiError> {
    user.require(Scope::CommentsWrite)?;
    let (c, v) = visible(st, id, Some(user)).await?;
    if c.author_id != user.0.id {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "not_your_comment", "Only its author can change a comment."));
    }
    let text = parse_text(text)?;
    if c.status == Status::Visible
        && v.owner_id != user.0.id
        && let Some(word) = blocked_word_in(st, &v, &text).await?
    {
        return Err(ApiError::bad_request(
            "blocked_word",
            format!("“{word}”: {BLOCKED_REASON} A shown comment cannot be changed to hold it."),
        ));
    }
    if !rows::edit(&st.db, c.id, text.as_str(), &markdown::render(&text)).await? {
        return Err(conflict("comment_gone", "This comment was deleted or removed; it cannot be changed."));
    }
    rows::get(&st.db, c.id).await?.ok_or_else(ApiError::not_found)
}

/// A change of text.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CommentPatch)]
struct PatchJson {
    #[schema(min_length = 1, max_length = 10000)]
    text: String,
}

/// Changes a comment.
#[utoipa::path(patch, path = "/comments/{id}", tag = "comments",
    summary = "Changes a comment's text (its author only); the comment is marked edited. JSON only.",
    security(("oauth2" = ["comments:write"])),
    params(("id" = String, Path, description = "The comment.")),
    request_body(content = PatchJson, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed comment.", body = CommentJson),
        (status = 400, description = "`invalid_json`, `text_too_long`, `text_empty`, `invalid_text`, or `blocked_word`: the new text of a shown comment holds a word of the instance's or the channel's blocked words (a held comment stays held instead).", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` (`comments:write`) or `not_your_comment`.", body = ErrorBody),
        (status = 404, description = "No such comment, or not yours to see.", body = ErrorBody),
        (status = 409, description = "`comment_gone`: it was deleted or removed.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
async fn edit(
    State(st): State<ApiState>,
    user: Scoped<CommentsWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<CommentJson>, ApiError> {
    let patch: PatchJson = channels::json_body(&headers, &body)?;
    let c = change(&st, &user, &id, &patch.text).await?;
    let settings = rows::video_settings(&st.db, c.video_id).await?.ok_or_else(ApiError::not_found)?;
    let liked = likes_of(&st, Some(&user), &[&c]).await?.map(|l| l.contains(&c.id));
    Ok(Json(CommentJson::build(&c, settings.pinned == Some(c.id), liked)))
}

/// Deletes (its author) or removes (the video's owner, a moderator) a comment; a held one is
/// rejected. Anyone else: 403 `not_your_comment`.
pub async fn take_down(st: &ApiState, user: &CurrentUser, id: &str) -> Result<(Comment, Gone), ApiError> {
    user.require(Scope::CommentsWrite)?;
    let (c, v) = visible(st, id, Some(user)).await?;
    let mark = if c.author_id == user.0.id {
        Status::Deleted
    } else if may_moderate(&v, user) {
        Status::Removed
    } else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_your_comment",
            "Only its author, the video's owner or a moderator can take a comment down.",
        ));
    };
    let gone = rows::take_down(&st.db, c.id, mark).await?;
    tracing::info!(comment.id = %c.id, user.id = %user.0.id.0, mark = mark.as_str(), outcome = ?gone, "comment taken down");
    Ok((c, gone))
}

/// Deletes or removes a comment.
#[utoipa::path(delete, path = "/comments/{id}", tag = "comments",
    summary = "Deletes a comment (its author: shown as \"[deleted]\" while replies hang on it), removes it (the video's owner or a moderator: \"[removed]\"), or rejects a held one. Repeating it changes nothing.",
    security(("oauth2" = ["comments:write"])),
    params(("id" = String, Path, description = "The comment.")),
    responses(
        (status = 204, description = "Deleted or removed."),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` (`comments:write`) or `not_your_comment`.", body = ErrorBody),
        (status = 404, description = "No such comment, or not yours to see.", body = ErrorBody),
    ))]
async fn remove(
    State(st): State<ApiState>,
    user: Scoped<CommentsWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    take_down(&st, &user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `…/replies`'s query.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RepliesQuery {
    /// The `next_cursor` of the previous page.
    #[param(max_length = 100)]
    pub cursor: Option<String>,
    /// 1 to 100 (20 by default; larger values are taken as 100).
    pub limit: Option<u32>,
}

/// A page of a thread's replies.
pub struct RepliesPage {
    pub root: Comment,
    pub video: Video,
    pub replies: Vec<Comment>,
    pub liked: Option<Vec<Uuid>>,
    pub next_cursor: Option<String>,
}

/// The replies of the thread of `id` (a top-level comment) after `cursor_text`.
pub async fn replies_page(
    st: &ApiState,
    viewer: Option<&CurrentUser>,
    id: &str,
    cursor_text: Option<&str>,
    limit: u32,
) -> Result<RepliesPage, ApiError> {
    let (root, video) = visible(st, id, viewer).await?;
    if root.root_id.is_some() {
        return Err(ApiError::bad_request("not_a_thread", "Replies are listed under the thread's top-level comment."));
    }
    let after = match cursor_text.filter(|t| !t.is_empty()) {
        Some(t) => Some(cursor::decode(st, cursor::Kind::CommentReplies, t)?.1),
        None => None,
    };
    let mut replies = rows::replies(&st.db, root.id, after, limit + 1).await?;
    let next_cursor = if replies.len() > limit as usize {
        replies.truncate(limit as usize);
        replies.last().map(|c| cursor::encode(st, cursor::Kind::CommentReplies, 0, c.id))
    } else {
        None
    };
    let all: Vec<&Comment> = std::iter::once(&root).chain(replies.iter()).collect();
    let liked = likes_of(st, viewer, &all).await?;
    Ok(RepliesPage { root, video, replies, liked, next_cursor })
}

/// A page of replies.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ReplyList)]
struct RepliesJson {
    replies: Vec<CommentJson>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// A thread's replies.
#[utoipa::path(get, path = "/comments/{id}/replies", tag = "comments",
    summary = "The replies in a top-level comment's thread, oldest first; a reply to a reply names the user it answers (`reply_to`).",
    security((), ("oauth2" = ["videos:read"])),
    params(("id" = String, Path, description = "A top-level comment."), RepliesQuery),
    responses(
        (status = 200, description = "A page of replies.", body = RepliesJson),
        (status = 400, description = "`invalid_cursor`, or `not_a_thread` for a reply.", body = ErrorBody),
        (status = 404, description = "No such comment, or not yours to see.", body = ErrorBody),
    ))]
async fn replies(
    State(st): State<ApiState>,
    viewer: Option<Scoped<VideosRead>>,
    Path(id): Path<String>,
    Query(q): Query<RepliesQuery>,
) -> Result<Json<RepliesJson>, ApiError> {
    let viewer = viewer.as_deref();
    let limit = q.limit.unwrap_or(PAGE).clamp(1, 100);
    let p = replies_page(&st, viewer, &id, q.cursor.as_deref(), limit).await?;
    let liked = |c: &Comment| p.liked.as_ref().map(|l| l.contains(&c.id));
    Ok(Json(RepliesJson {
        replies: p.replies.iter().map(|c| CommentJson::build(c, false, liked(c))).collect(),
        next_cursor: p.next_cursor,
    }))
}

/// Pins (`true`) or unpins a top-level comment; the video's owner (or an admin acting as one).
pub async fn set_pin(st: &ApiState, user: &CurrentUser, id: &str, pinned: bool) -> Result<Comment, ApiError> {
    user.require(Scope::CommentsWrite)?;
    let (c, v) = visible(st, id, Some(user)).await?;
    if !videos::may_manage(&v, user) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_your_video",
            "Only the video's owner can pin a comment.",
        ));
    }
    if pinned {
        if c.root_id.is_some() || c.status != Status::Visible {
            return Err(ApiError::bad_request("not_pinnable", "Only a shown top-level comment can be pinned."));
        }
        rows::set_pinned(&st.db, v.id, Some(c.id)).await?;
    } else {
        let settings = rows::video_settings(&st.db, v.id).await?.ok_or_else(ApiError::not_found)?;
        if settings.pinned == Some(c.id) {
            rows::set_pinned(&st.db, v.id, None).await?;
        }
    }
    Ok(c)
}

/// Pins a comment.
#[utoipa::path(put, path = "/comments/{id}/pin", tag = "comments",
    summary = "Pins a top-level comment on its video (the video's owner); the pinned one before is unpinned. Idempotent.",
    security(("oauth2" = ["comments:write"])),
    params(("id" = String, Path, description = "The comment.")),
    responses(
        (status = 204, description = "Pinned."),
        (status = 400, description = "`not_pinnable`: a reply, or not shown.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` (`comments:write`) or `not_your_video`.", body = ErrorBody),
        (status = 404, description = "No such comment, or not yours to see.", body = ErrorBody),
    ))]
async fn pin(
    State(st): State<ApiState>,
    user: Scoped<CommentsWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    set_pin(&st, &user, &id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Unpins a comment.
#[utoipa::path(delete, path = "/comments/{id}/pin", tag = "comments",
    summary = "Unpins the comment (the video's owner). Idempotent.",
    security(("oauth2" = ["comments:write"])),
    params(("id" = String, Path, description = "The comment.")),
    responses(
        (status = 204, description = "Not pinned (any more)."),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` (`comments:write`) or `not_your_video`.", body = ErrorBody),
        (status = 404, description = "No such comment, or not yours to see.", body = ErrorBody),
    ))]
async fn unpin(
    State(st): State<ApiState>,
    user: Scoped<CommentsWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    set_pin(&st, &user, &id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Likes (`true`) a shown comment, or takes the like back. Idempotent.
/// Counted by the ratings limit (`ratings_per_minute`).
pub async fn set_like(st: &ApiState, user: &CurrentUser, id: &str, like: bool) -> Result<Comment, Refusal> {
    user.require(Scope::CommentsWrite).map_err(ApiError::from)?;
    let (c, _) = visible(st, id, Some(user)).await?;
    if like && c.status != Status::Visible {
        return Err(conflict("comment_not_shown", "Only a shown comment can be liked.").into());
    }
    rate_limit::check(st, user, Action::Rating).await?;
    rows::rate(&st.db, c.id, user.0.id, like).await?;
    Ok(rows::get(&st.db, c.id).await?.ok_or_else(ApiError::not_found)?)
}

/// A rating of a comment.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CommentRating)]
struct RatingJson {
    /// `like`, or `none` to take a like back.
    #[schema(pattern = "^(like|none)$")]
    rating: String,
}

/// The comment's likes after a rating.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = CommentRated)]
struct RatedJson {
    likes: u64,
    liked: bool,
}

/// Rates a comment.
#[utoipa::path(put, path = "/comments/{id}/rating", tag = "comments",
    summary = "Likes a comment (`like`) or takes the like back (`none`). Idempotent; the count stays exact under concurrent toggles. JSON only.",
    security(("oauth2" = ["comments:write"])),
    params(("id" = String, Path, description = "The comment.")),
    request_body(content = RatingJson, content_type = "application/json"),
    responses(
        (status = 200, description = "The likes now.", body = RatedJson),
        (status = 400, description = "`invalid_json` or `invalid_rating`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` (`comments:write`).", body = ErrorBody),
        (status = 404, description = "No such comment, or not yours to see.", body = ErrorBody),
        (status = 409, description = "`comment_not_shown`: deleted, removed or held.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many rating changes this minute; see `Retry-After`.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
async fn rate(
    State(st): State<ApiState>,
    user: Scoped<CommentsWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<RatedJson>, Refusal> {
    let r: RatingJson = channels::json_body(&headers, &body)?;
    let like = match r.rating.as_str() {
        "like" => true,
        "none" => false,
        _ => return Err(ApiError::bad_request("invalid_rating", "rating is like or none.").into()),
    };
    let c = set_like(&st, &user, &id, like).await?;
    Ok(Json(RatedJson { likes: c.like_count, liked: like }))
}

/// Shows a held comment: the video's owner or a moderator.
pub async fn approve_held(st: &ApiState, user: &CurrentUser, id: &str) -> Result<Comment, ApiError> {
    user.require(Scope::CommentsWrite)?;
    let (c, v) = visible(st, id, Some(user)).await?;
    if !may_moderate(&v, user) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_your_video",
            "Only the video's owner or a moderator can approve a comment.",
        ));
    }
    if rows::approve(&st.db, c.id).await? {
        announce(st, c.id).await;
    } else if c.status != Status::Visible {
        return Err(conflict("not_held", "This comment is not waiting for approval."));
    }
    rows::get(&st.db, c.id).await?.ok_or_else(ApiError::not_found)
}

/// Approves a held comment.
#[utoipa::path(post, path = "/comments/{id}/approve", tag = "comments",
    summary = "Shows a held comment (the video's owner or a moderator). Approving a shown comment changes nothing.",
    security(("oauth2" = ["comments:write"])),
    params(("id" = String, Path, description = "The comment.")),
    responses(
        (status = 200, description = "The comment, shown.", body = CommentJson),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` (`comments:write`) or `not_your_video`.", body = ErrorBody),
        (status = 404, description = "No such comment, or not yours to see.", body = ErrorBody),
        (status = 409, description = "`not_held`: deleted or removed.", body = ErrorBody),
    ))]
async fn approve(
    State(st): State<ApiState>,
    user: Scoped<CommentsWrite>,
    Path(id): Path<String>,
) -> Result<Json<CommentJson>, ApiError> {
    let c = approve_held(&st, &user, &id).await?;
    Ok(Json(CommentJson::build(&c, false, None)))
}

/// A page of the owner's held comments and the cursor of the next.
pub async fn held_page(
    st: &ApiState,
    user: &CurrentUser,
    cursor_text: Option<&str>,
    limit: u32,
) -> Result<(Vec<Comment>, Option<String>), ApiError> {
    let after = match cursor_text.filter(|t| !t.is_empty()) {
        Some(t) => Some(cursor::decode(st, cursor::Kind::HeldComments, t)?.1),
        None => None,
    };
    let mut list = rows::held_for_owner(&st.db, user.0.id, after, limit + 1).await?;
    let next = if list.len() > limit as usize {
        list.truncate(limit as usize);
        list.last().map(|c| cursor::encode(st, cursor::Kind::HeldComments, 0, c.id))
    } else {
        None
    };
    Ok((list, next))
}

/// The owner's queue.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = HeldComments)]
struct HeldJson {
    comments: Vec<CommentJson>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// The held comments on the caller's videos.
#[utoipa::path(get, path = "/me/comments/held", tag = "comments",
    summary = "Comments held for approval on the caller's videos, oldest first.",
    security(("oauth2" = ["comments:write"])),
    params(RepliesQuery),
    responses(
        (status = 200, description = "Held comments.", body = HeldJson),
        (status = 400, description = "`invalid_cursor`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` (`comments:write`).", body = ErrorBody),
    ))]
async fn held_queue(
    State(st): State<ApiState>,
    user: Scoped<CommentsWrite>,
    Query(q): Query<RepliesQuery>,
) -> Result<Json<HeldJson>, ApiError> {
    let limit = q.limit.unwrap_or(PAGE).clamp(1, 100);
    let (list, next_cursor) = held_page(&st, &user, q.cursor.as_deref(), limit).await?;
    Ok(Json(HeldJson { comments: list.iter().map(|c| CommentJson::build(c, false, None)).collect(), next_cursor }))
}
