//! A channel's edit page (`/studio/channels/{handle}`): its name and description, its avatar,
//! its banner and its blocked words (`POST /studio/channels/{handle}/blocked-words`, one word or
//! phrase a line, checked as the API checks a list), for the owner or an admin
//! ([`channels::check_manage`], as in the API).
//!
//! Every form carries the studio's CSRF token ([`super::csrf`]) and works without JavaScript:
//! the pictures are `multipart/form-data` posts of one file. The token field comes before the
//! file in the form, so it is read and checked before a byte of the file; the file is read in
//! chunks and refused past [`channel_images::MAX_BYTES`]. A refusal shows the page again with
//! the reason and the API's status code; a success comes back to the page with a notice.

use super::{context, csrf, private};
use crate::identity::CurrentUser;
use crate::{ApiState, blocked_words, channel_images, channels};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use turtlemen_db::channels::{Channel, Picture};
use turtlemen_http::ApiError;
use turtlemen_web::channel_pages::{self, ChannelEditView};

pub(super) fn routes() -> Router<ApiState> {
    let pictures = Router::new()
        .route("/studio/channels/{handle}/avatar", post(avatar_submit))
        .route("/studio/channels/{handle}/banner", post(banner_submit))
        // These handlers cap what they read themselves, with a reason.
        .layer(DefaultBodyLimit::disable());
    Router::new()
        .route("/studio/channels/{handle}", get(edit_page).post(profile_submit))
        .route("/studio/channels/{handle}/avatar/remove", post(avatar_remove))
        .route("/studio/channels/{handle}/banner/remove", post(banner_remove))
        .route("/studio/channels/{handle}/blocked-words", post(blocked_words_submit))
        .merge(pictures)
}

/// The largest form field other than the file.
const MAX_FIELD_BYTES: usize = 1024;

/// The channel `user` may change, or the refusal.
async fn managed(st: &ApiState, handle: &str, user: &CurrentUser) -> Result<Channel, ApiError> {
    let c = channels::find(st, handle).await?;
    channels::check_manage(&c, user)?;
    Ok(c)
}

fn render(
    st: &ApiState,
    c: &Channel,
    user: &CurrentUser,
    ctx: &turtlemen_web::PageContext,
    error: Option<String>,
    notice: Option<String>,
    words: String,
) -> String {
    let url = channels::page_url(&c.handle);
    let action = super::community::edit_url(c);
    let blocked_words = super::blocked_words::form(
        st,
        user,
        format!("{action}/blocked-words"),
        words,
        "A comment on this channel's videos holding one waits for your approval.",
    );
    let view = ChannelEditView {
        handle: c.handle.clone(),
        display_name: c.display_name.clone(),
        description: c.description.clone(),
        avatar: super::community::avatar_of(c, 96),
        banner_url: c
            .banner_version
            .map(|v| channel_images::url(c.id, Picture::Banner, v, turtlemen_images::BANNER_SIZES[1].0)),
        action,
        url,
        csrf: csrf::token(st, user),
        max_mib: channel_images::MAX_BYTES / (1024 * 1024),
        blocked_words,
        error,
        notice,
    };
    channel_pages::channel_edit_page(&view, ctx)
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct EditQuery {
    done: Option<String>,
}

/// `GET /studio/channels/{handle}`.
async fn edit_page(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(handle): Path<String>,
    axum::extract::Query(q): axum::extract::Query<EditQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let c = managed(&st, &handle, &user).await?;
    let notice = match q.done.as_deref() {
        Some("saved") => Some("Saved.".to_owned()),
        Some("avatar") => Some("Avatar updated.".to_owned()),
        Some("banner") => Some("Banner updated.".to_owned()),
        Some("removed") => Some("Picture removed.".to_owned()),
        Some("words") => Some("Blocked words saved.".to_owned()),
        _ => None,
    };
    let words = super::blocked_words::shown(&st, c.id).await?;
    Ok(private(render(&st, &c, &user, &context(&st, Some(&user), &uri, &headers).await, None, notice, words)))
}

/// The page again with `e`'s reason, under `e`'s status.
async fn refused_page(
    st: &ApiState,
    c: &Channel,
    user: &CurrentUser,
    uri: &Uri,
    headers: &HeaderMap,
    e: ApiError,
) -> Response {
    refused_page_with(st, c, user, uri, headers, e, None).await
}

/// [`refused_page`], the blocked-words field showing `typed` (what was sent) when given.
async fn refused_page_with(
    st: &ApiState,
    c: &Channel,
    user: &CurrentUser,
    uri: &Uri,
    headers: &HeaderMap,
    e: ApiError,
    typed: Option<String>,
) -> Response {
    let words = match typed {
        Some(t) => t,
        None => match super::blocked_words::shown(st, c.id).await {
            Ok(w) => w,
            Err(e) => return e.into_response(),
        },
    };
    let ctx = context(st, Some(user), uri, headers).await;
    let html = render(st, c, user, &ctx, Some(e.body.message.into_owned()), None, words);
    let mut res = private(html);
    *res.status_mut() = e.status;
    res
}

fn back(c: &Channel, done: &str) -> Response {
    Redirect::to(&format!("{}?done={done}", super::community::edit_url(c))).into_response()
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ProfileForm {
    csrf: String,
    display_name: String,
    description: String,
}

/// `POST /studio/channels/{handle}`: name and description (links stay the API's).
async fn profile_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(handle): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ProfileForm>,
) -> Result<Response, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let c = managed(&st, &handle, &user).await?;
    let patch = channels::ProfilePatch {
        display_name: Some(form.display_name),
        description: Some(form.description),
        links: None,
    };
    match channels::update(&st, &user, &handle, patch).await {
        Ok(c) => Ok(back(&c, "saved")),
        Err(e) if e.status.is_client_error() => Ok(refused_page(&st, &c, &user, &uri, &headers, e).await),
        Err(e) => Err(e),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct WordsForm {
    csrf: String,
    words: String,
}

/// `POST /studio/channels/{handle}/blocked-words`: replaces the channel's list; a refused list
/// shows the page again with the reason and what was typed.
async fn blocked_words_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(handle): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    axum::Form(form): axum::Form<WordsForm>,
) -> Result<Response, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let c = managed(&st, &handle, &user).await?;
    match blocked_words::replace(&st, c.id, &blocked_words::from_lines(&form.words)).await {
        Ok(_) => Ok(back(&c, "words")),
        Err(e) if e.status.is_client_error() => {
            Ok(refused_page_with(&st, &c, &user, &uri, &headers, e, Some(form.words)).await)
        }
        Err(e) => Err(e),
    }
}

/// Reads the `csrf` field (which must come first) and checks it, then the `file` field.
async fn read_form(st: &ApiState, user: &CurrentUser, form: &mut Multipart) -> Result<Vec<u8>, ApiError> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request("invalid_form", format!("The form could not be read: {e}"))
    };
    let mut checked = false;
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        match field.name() {
            Some("csrf") => {
                let mut token = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    token.extend_from_slice(&chunk);
                    if token.len() > MAX_FIELD_BYTES {
                        return Err(ApiError::bad_request("invalid_form", "A form field is too long."));
                    }
                }
                csrf::check(st, user, &String::from_utf8_lossy(&token))?;
                checked = true;
            }
            Some("file") if checked => {
                let mut bytes = Vec::new();
                channel_images::read_capped(field, &mut bytes).await?;
                return Ok(bytes);
            }
            _ => break,
        }
    }
    if checked {
        Err(ApiError::bad_request("empty_body", "Choose an image file to upload."))
    } else {
        csrf::check(st, user, "").map(|()| Vec::new())
    }
}

/// Reads what is left of a refused form (as [`crate::uploads::drain`] does for a body), so the
/// answer reaches the browser instead of a reset connection.
async fn drain(mut form: Multipart) {
    let mut left = crate::uploads::DRAIN_LIMIT;
    let _ = tokio::time::timeout(crate::uploads::DRAIN_TIME, async {
        while let Ok(Some(mut field)) = form.next_field().await {
            while let Ok(Some(chunk)) = field.chunk().await {
                if chunk.len() >= left {
                    return;
                }
                left -= chunk.len();
            }
        }
    })
    .await;
}

async fn upload(
    st: ApiState,
    user: CurrentUser,
    handle: String,
    uri: Uri,
    headers: HeaderMap,
    mut form: Multipart,
    picture: Picture,
) -> Result<Response, ApiError> {
    let c = managed(&st, &handle, &user).await?;
    let result = match read_form(&st, &user, &mut form).await {
        Ok(bytes) => channel_images::store(&st, &c, picture, bytes).await,
        Err(e) => {
            drain(form).await;
            Err(e)
        }
    };
    match result {
        Ok(c) => Ok(back(&c, if picture == Picture::Avatar { "avatar" } else { "banner" })),
        // A forged form changes nothing and is shown no page.
        Err(e) if e.body.error == "csrf_failed" => Err(e),
        Err(e) if e.status.is_client_error() => Ok(refused_page(&st, &c, &user, &uri, &headers, e).await),
        Err(e) => Err(e),
    }
}

async fn avatar_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(handle): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    form: Multipart,
) -> Result<Response, ApiError> {
    upload(st, user, handle, uri, headers, form, Picture::Avatar).await
}

async fn banner_submit(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(handle): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    form: Multipart,
) -> Result<Response, ApiError> {
    upload(st, user, handle, uri, headers, form, Picture::Banner).await
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct RemoveForm {
    csrf: String,
}

async fn remove(
    st: ApiState,
    user: CurrentUser,
    handle: String,
    form: RemoveForm,
    picture: Picture,
) -> Result<Response, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let c = managed(&st, &handle, &user).await?;
    let c = channel_images::remove(&st, &c, picture).await?;
    Ok(back(&c, "removed"))
}

async fn avatar_remove(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(handle): Path<String>,
    axum::Form(form): axum::Form<RemoveForm>,
) -> Result<Response, ApiError> {
    remove(st, user, handle, form, Picture::Avatar).await
}

async fn banner_remove(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(handle): Path<String>,
    axum::Form(form): axum::Form<RemoveForm>,
) -> Result<Response, ApiError> {
    remove(st, user, handle, form, Picture::Banner).await
}
