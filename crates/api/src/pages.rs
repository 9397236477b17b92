//! The server-rendered pages of the API role: home, watch, upload, the creator's studio.
//!
//! Pages work without JavaScript and are enhanced with it; each knows the viewer from the access
//! token the gateway hands on (`Option<CurrentUser>`), never from a header a client could set.
//! Pages read and write through the same functions as the JSON API ([`crate::videos`]), so
//! visibility and validation are decided in one place: a private video is a 404 page for anyone
//! but its owner, exactly as it is a 404 answer. The studio's forms (edit, delete) are checked
//! with a CSRF token bound to the session ([`csrf`]); the gateway's session cookie is
//! `SameSite=Lax` as well. The navigation's "Sign out" form carries the token the gateway hands
//! on for the visitor's session. Pages for a signed-in user (upload, studio) are never stored by
//! a cache (`Cache-Control: no-store`).
//! [`community`] holds the channel page, its Subscribe form and the subscriptions feed;
//! [`notifications`] the notifications page (the bell in every page's header shows the
//! signed-in viewer's unread count).
//! [`channel_edit`] the channel's edit page (profile, avatar, banner, blocked words);
//! [`blocked_words`] the instance's blocked words (`/admin/blocked-words`) and the form both
//! pages show.
//! [`search`] the search page.
//! [`comments`] the watch page's comments, a thread's page, the comment forms and the studio's
//! held comments.
//! [`library`] ratings, playlists, watch later and the history pages.

mod blocked_words;
mod channel_edit;
mod comments;
mod community;
mod csrf;
mod library;
mod live;
mod moderation;
mod notifications;
mod search;

use crate::identity::CurrentUser;
use crate::{ApiState, videos};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use turtlemen_db::videos::{self as rows, Listing, Video, VideoState};
use turtlemen_domain::Category;
use turtlemen_http::ApiError;
use turtlemen_web::video_pages::{
    self, EditView, MetadataForm, RenditionItem, StudioRow, StudioView, UploadView, WatchView,
};
use turtlemen_web::{CategoryLink, HomeView, PageContext};
use uuid::Uuid;

/// How many videos each home-page list shows.
const HOME_LIST: u32 = 16;
/// How many of the feed's videos the home page shows.
const HOME_SUBSCRIPTIONS: u32 = 8;
/// How many videos the studio list shows.
const STUDIO_LIST: u32 = 100;

/// The page routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(home))
        .route("/upload", get(upload))
        .route("/videos/{id}", get(watch))
        .route("/studio/videos", get(studio))
        .route("/studio/videos/{id}/edit", get(edit_form).post(edit_submit))
        .route("/studio/videos/{id}/delete", post(delete_submit))
        .merge(community::routes())
        .merge(notifications::routes())
        .merge(channel_edit::routes())
        .merge(search::routes())
        .merge(live::routes())
        .merge(comments::routes())
        .merge(moderation::routes())
        .merge(blocked_words::routes())
        .merge(library::routes())
}

/// The header the gateway hands a session's sign-out token in.
const SIGN_OUT_TOKEN: &str = "x-turtlemen-sign-out-token";

/// Who is looking, at which path (for "Sign in" to come back to), the token their "Sign out"
/// form posts (only rendered into their own page: a forged header harms nobody else), and their
/// unread notifications for the bell (read with the user for a page's `GET`; otherwise one
/// bounded count, whose failure only hides the count).
async fn context(st: &ApiState, viewer: Option<&CurrentUser>, uri: &Uri, headers: &HeaderMap) -> PageContext {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    // Only a plain local path goes back into a link; the gateway checks it again.
    let path = if path.starts_with('/') && !path.starts_with("//") { path } else { "/" };
    let sign_out_token = headers
        .get(SIGN_OUT_TOKEN)
        .and_then(|v| v.to_str().ok())
        .filter(|t| t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .map(str::to_owned);
    let unread = match viewer {
        Some(u) if u.unread().is_some() => u.unread(),
        Some(u) => {
            match turtlemen_db::notifications::unread_count(&st.db, u.0.id, crate::notifications::UNREAD_CAP).await {
                Ok(n) => Some(n),
                Err(e) => {
                    tracing::warn!(user.id = %u.0.id.0, error = %e, "cannot count unread notifications");
                    None
                }
            }
        }
        None => None,
    };
    PageContext { viewer: viewer.map(|u| display_name(&u.0)), path: path.to_owned(), sign_out_token, unread }
}

/// A page for one signed-in user: no cache keeps it.
fn private(html: String) -> Response {
    let mut res = Html(html).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A page anyone may see. As an anonymous visitor gets it, a shared cache (the gateway's page
/// cache) may keep it for `public_page_max_age` — the same bytes for every anonymous visitor,
/// so a popular page costs one render per that time. A signed-in viewer's copy carries their
/// name, bell and tokens: it is theirs alone (the gateway marks it `no-store`).
fn public_page(st: &ApiState, viewer: Option<&CurrentUser>, status: StatusCode, html: String) -> Response {
    let mut res = (status, Html(html)).into_response();
    let max_age = st.videos.public_page_max_age.as_secs();
    if viewer.is_none()
        && max_age > 0
        && status == StatusCode::OK
        && let Ok(v) = HeaderValue::from_str(&format!("public, max-age=0, s-maxage={max_age}"))
    {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    res
}

fn display_name(u: &turtlemen_db::users::User) -> String {
    if u.display_name.trim().is_empty() { u.username.clone() } else { u.display_name.clone() }
}

/// Whole seconds for display.
fn whole_seconds(d: Option<f64>) -> Option<u32> {
    d.filter(|d| d.is_finite() && *d >= 0.0).map(|d| d.round().min(f64::from(u32::MAX)) as u32)
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct HomeQuery {
    category: Option<String>,
}

/// `GET /` (`?category=slug` adds that category's newest videos): from your subscriptions for
/// a signed-in viewer (the feed's first few), recent, trending and the categories — each list one
/// indexed read.
async fn home(
    State(st): State<ApiState>,
    viewer: Option<CurrentUser>,
    Query(q): Query<HomeQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let chosen = match q.category.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => Some(videos::parse_category(c)?),
        None => None,
    };
    let card = |v: &Video| community::card(&st, v, None);
    let subscriptions = match &viewer {
        Some(u) => Some(
            crate::feed::cards(&st, u, None, HOME_SUBSCRIPTIONS)
                .await?
                .videos
                .iter()
                .map(|c| community::card(&st, c, None))
                .collect(),
        ),
        None => None,
    };
    let category = match chosen {
        Some(c) => {
            Some((c.label().to_owned(), home_list(&st, Listing::Category(c.slug())).await?.iter().map(card).collect()))
        }
        None => None,
    };
    let recent = home_list(&st, Listing::Recent).await?;
    let trending = home_list(&st, Listing::Trending).await?;
    let categories = Category::all()
        .iter()
        .map(|c| CategoryLink {
            label: c.label().to_owned(),
            url: format!("/?category={}", c.slug()),
            current: chosen == Some(*c),
        })
        .collect();
    let view = HomeView {
        subscriptions,
        recent: recent.iter().map(card).collect(),
        trending: trending.iter().map(card).collect(),
        categories,
        category,
    };
    let html = turtlemen_web::home_page_for(&view, &context(&st, viewer.as_ref(), &uri, &headers).await);
    Ok(public_page(&st, viewer.as_ref(), StatusCode::OK, html))
}

/// One of the home page's lists, the same for every viewer: kept a moment for all
/// ([`crate::shared_lists`]).
async fn home_list(st: &ApiState, listing: Listing<'_>) -> Result<std::sync::Arc<Vec<Video>>, ApiError> {
    Ok(st.lists.home.get_or_load(format!("{listing:?}"), || rows::list_public(&st.db, listing, HOME_LIST)).await?)
}

/// `GET /upload` (the gateway sends visitors without a session to sign in first).
async fn upload(
    State(st): State<ApiState>,
    user: CurrentUser,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let channels = turtlemen_db::channels::list_by_owner(&st.db, user.0.id).await?;
    let view = UploadView {
        form: MetadataForm::default(),
        max_bytes: st.videos.upload_max_bytes,
        channels: channels.into_iter().map(|c| (c.handle, c.display_name)).collect(),
    };
    Ok(private(video_pages::upload_page(&view, &context(&st, Some(&user), &uri, &headers).await)))
}

/// `GET /videos/{id}`: the watch page, for anyone who may see the video.
async fn watch(
    State(st): State<ApiState>,
    viewer: Option<CurrentUser>,
    Path(id): Path<String>,
    Query(q): Query<comments::CommentsQuery>,
    Query(lq): Query<library::WatchQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let turtlemen_db::videos::Watched { video: v, comments: settings, replay_of } =
        videos::visible_watched(&st, &id, viewer.as_ref()).await?;
    let view = videos::VideoView::build(&st, &v, viewer.as_ref());
    let ctx = context(&st, viewer.as_ref(), &uri, &headers).await;
    // What the viewer has done with the video, for the Subscribe control and the library, in
    // one statement.
    let state = match &viewer {
        Some(u) => Some(turtlemen_db::watch_state::get(&st.db, u.0.id, v.id, v.channel_id).await?),
        None => None,
    };
    let known = viewer.as_ref().zip(state.as_ref());
    let subscribe =
        Some(community::subscribe_button_of(&st, (&v).into(), known.map(|(u, s)| (u, s.subscribed)), &ctx.path));
    let comments = Some(comments::section(&st, &v, settings, viewer.as_ref(), &q, &ctx.path).await?);
    let library = library::watch_library(&st, &v, known, &lq, &ctx.path).await?;
    // A live's replay plays the live's recording until its own transcode is ready.
    let recording_url = replay_of
        .filter(|_| v.state != turtlemen_db::videos::VideoState::Ready)
        .map(|live| format!("{}/replay.m3u8", crate::lives::media_base(&st, live)));
    let replay_chat_live = replay_of.map(|l| l.to_string());
    let page = WatchView {
        channel_url: view.channel.url.clone(),
        channel_avatar_url: crate::channel_images::avatar_url(v.channel_id, v.channel_avatar_version, 48),
        subscribe,
        id: v.id.to_string(),
        title: view.title,
        description: view.description,
        channel_name: view.channel.display_name,
        views: view.views,
        state: v.state.as_str().to_owned(),
        progress: view.progress,
        failure_reason: view.failure_reason,
        plays_recording: recording_url.is_some(),
        hls_url: recording_url.or(view.hls_url),
        poster_url: view.poster_url,
        storyboard_url: view.storyboard_url,
        duration_secs: whole_seconds(view.duration_secs),
        width: view.width,
        height: view.height,
        renditions: view.renditions.into_iter().map(|r| RenditionItem { name: r.name, height: r.height }).collect(),
        date: view.published_at.unwrap_or(view.created_at).format("%Y-%m-%d").to_string(),
        can_edit: viewer.as_ref().is_some_and(|u| videos::may_manage(&v, u)),
        comments,
        hidden_notice: moderation::hidden_notice(&v),
        report: moderation::report_form(
            &st,
            viewer.as_ref(),
            v.owner_id,
            format!("/videos/{}/report", v.id),
            "this video",
            &ctx.path,
        ),
        return_to: ctx.path.clone(),
        library,
        replay_chat_live,
    };
    Ok(public_page(&st, viewer.as_ref(), StatusCode::OK, video_pages::watch_page(&page, &ctx)))
}

/// `GET /studio/videos`: the signed-in user's videos, newest first.
async fn studio(
    State(st): State<ApiState>,
    user: CurrentUser,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let notice = match uri.query() {
        Some("deleted=1") => Some("Video deleted.".to_owned()),
        _ => None,
    };
    Ok(private(render_studio(&st, &user, &context(&st, Some(&user), &uri, &headers).await, notice).await?))
}

async fn render_studio(
    st: &ApiState,
    user: &CurrentUser,
    ctx: &PageContext,
    notice: Option<String>,
) -> Result<String, ApiError> {
    let list = rows::list_by_owner(&st.db, user.0.id, None, STUDIO_LIST).await?;
    let rows = list
        .iter()
        .map(|v| {
            let view = videos::VideoView::build(st, v, Some(user));
            StudioRow {
                id: v.id.to_string(),
                title: view.title,
                privacy: v.privacy.as_str().to_owned(),
                state: v.state.as_str().to_owned(),
                progress: view.progress,
                failure_reason: view.failure_reason.filter(|_| v.state == VideoState::Failed),
                thumbnail_url: view.poster_url,
                duration_secs: whole_seconds(view.duration_secs),
                views: view.views,
                watch_url: view.watch_url,
            }
        })
        .collect();
    let view = StudioView { rows, csrf: csrf::token(st, user), notice };
    Ok(video_pages::studio_page(&view, ctx))
}

/// The video `user` may manage, or 404 (someone else's video does not exist for them).
async fn managed(st: &ApiState, id: &str, user: &CurrentUser) -> Result<Video, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found())?;
    rows::get(&st.db, id).await?.filter(|v| videos::may_manage(v, user)).ok_or_else(ApiError::not_found)
}

fn form_of(v: &Video) -> MetadataForm {
    MetadataForm {
        title: v.title.clone(),
        description: v.description.clone(),
        tags: v.tags.join(", "),
        category: v.category.clone().unwrap_or_default(),
        language: v.language.clone().unwrap_or_default(),
        licence: v.licence.clone().unwrap_or_default(),
        privacy: v.privacy.as_str().to_owned(),
    }
}

/// `GET /studio/videos/{id}/edit`.
async fn edit_form(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let v = managed(&st, &id, &user).await?;
    let policy = turtlemen_db::comments::video_settings(&st.db, v.id).await?.map(|s| s.policy);
    let view = EditView {
        comment_policy: policy.unwrap_or(turtlemen_db::comments::Policy::Open).as_str().to_owned(),
        id: v.id.to_string(),
        form: form_of(&v),
        csrf: csrf::token(&st, &user),
        error: None,
        saved: uri.query() == Some("saved=1"),
        watch_url: videos::watch_url(v.id),
    };
    Ok(private(video_pages::edit_page(&view, &context(&st, Some(&user), &uri, &headers).await)))
}

/// The edit form as posted; a missing field is empty, as a browser sends it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct EditSubmission {
    csrf: String,
    title: String,
    description: String,
    tags: String,
    category: String,
    language: String,
    licence: String,
    privacy: String,
    comment_policy: String,
}

impl EditSubmission {
    fn form(&self) -> MetadataForm {
        MetadataForm {
            title: self.title.clone(),
            description: self.description.clone(),
            tags: self.tags.clone(),
            category: self.category.clone(),
            language: self.language.clone(),
            licence: self.licence.clone(),
            privacy: self.privacy.clone(),
        }
    }

    fn patch(self) -> videos::MetadataPatch {
        videos::MetadataPatch {
            title: Some(self.title),
            description: Some(self.description),
            tags: Some(self.tags.split(',').map(str::to_owned).collect()),
            category: Some(Some(self.category)),
            language: Some(Some(self.language)),
            licence: Some(Some(self.licence)),
            privacy: Some(self.privacy),
            comment_policy: Some(self.comment_policy),
        }
    }
}

/// `POST /studio/videos/{id}/edit`: saves and comes back to the form; a refused change shows
/// the form again, refilled, with the reason (400).
async fn edit_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    axum::Form(form): axum::Form<EditSubmission>,
) -> Result<Response, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let refill = form.form();
    let refill_policy = form.comment_policy.clone();
    match videos::update(&st, &user, &id, form.patch()).await {
        Ok(v) => Ok(Redirect::to(&format!("/studio/videos/{}/edit?saved=1", v.id)).into_response()),
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            let v = managed(&st, &id, &user).await?;
            let view = EditView {
                comment_policy: refill_policy,
                id: v.id.to_string(),
                form: refill,
                csrf: csrf::token(&st, &user),
                error: Some(e.body.message.into_owned()),
                saved: false,
                watch_url: videos::watch_url(v.id),
            };
            let html = video_pages::edit_page(&view, &context(&st, Some(&user), &uri, &headers).await);
            let mut res = private(html);
            *res.status_mut() = StatusCode::BAD_REQUEST;
            Ok(res)
        }
        Err(e) => Err(e),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct DeleteSubmission {
    csrf: String,
}

/// `POST /studio/videos/{id}/delete`: deletes (media, then the row) and returns to the list.
async fn delete_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<DeleteSubmission>,
) -> Result<Redirect, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    videos::delete(&st, &user, &id).await?;
    Ok(Redirect::to("/studio/videos?deleted=1"))
}
