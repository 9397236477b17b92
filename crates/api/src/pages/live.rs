//! The live pages: `/lives/{id}` (anyone who may see the live) and the studio's "Go live" page
//! `/studio/lives` with its forms — a new live (`POST /studio/lives`), a new stream key
//! (`POST /studio/lives/{id}/key`) and "End" (`POST /studio/lives/{id}/end`).
//!
//! They go through the same functions as the JSON API ([`crate::lives`]), so a private live is a
//! 404 page exactly where it is a 404 answer, and a key is made and hashed in one place. A new
//! key is shown in the answer to the form that made it (`no-store`), never in a URL. Every form
//! is CSRF-checked before anything changes.

use super::{context, csrf, private};
use crate::ApiState;
use crate::identity::CurrentUser;
use crate::lives::{self, LiveView, NewLiveBody};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use turtlemen_http::ApiError;
use turtlemen_web::live_pages::{self, LiveWatchView, ShownKey, StudioLiveItem, StudioLivesView};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/lives/{id}", get(live_page))
        .route("/studio/lives", get(studio).post(create))
        .route("/studio/lives/{id}/key", post(new_key))
        .route("/studio/lives/{id}/end", post(end))
}

/// `GET /lives/{id}`.
async fn live_page(
    State(st): State<ApiState>,
    viewer: Option<CurrentUser>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let l = lives::visible(&st, &id, viewer.as_ref()).await?;
    let json = LiveView::build(&st, &l, viewer.as_ref());
    let view = LiveWatchView {
        id: l.id.to_string(),
        title: l.title.clone(),
        description: l.description.clone(),
        state: serde_json::to_value(json.state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        hls_url: json.hls_url,
        viewers: json.viewers,
        channel_name: l.channel_display_name.clone(),
        channel_url: json.channel.url,
        replay_url: l.replay_video_id.map(crate::videos::watch_url),
        can_manage: viewer.as_ref().is_some_and(|u| lives::may_manage(&l, u)),
    };
    let ctx = context(&st, viewer.as_ref(), &uri, &headers).await;
    Ok(private(live_pages::live_page(&view, &ctx)))
}

async fn studio_view(st: &ApiState, user: &CurrentUser) -> Result<StudioLivesView, ApiError> {
    let lives = turtlemen_db::lives::list_by_owner(&st.db, user.id(), None, 50).await?;
    Ok(StudioLivesView {
        rtmp_url: st.live.rtmp_url.clone(),
        rtmps_url: st.live.rtmps_url.clone(),
        csrf: csrf::token(st, user),
        lives: lives
            .iter()
            .map(|l| StudioLiveItem {
                id: l.id.to_string(),
                title: l.title.clone(),
                state: serde_json::to_value(l.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                privacy: l.privacy.as_str().to_owned(),
                last_reason: l.last_reason.clone(),
            })
            .collect(),
        shown: None,
        error: None,
    })
}

async fn render_studio(
    st: &ApiState,
    user: &CurrentUser,
    uri: &Uri,
    headers: &HeaderMap,
    status: StatusCode,
    change: impl FnOnce(&mut StudioLivesView),
) -> Result<Response, ApiError> {
    let mut view = studio_view(st, user).await?;
    change(&mut view);
    let ctx = context(st, Some(user), uri, headers).await;
    let mut res = private(live_pages::studio_lives_page(&view, &ctx));
    *res.status_mut() = status;
    Ok(res)
}

/// `GET /studio/lives`.
async fn studio(
    State(st): State<ApiState>,
    user: CurrentUser,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    render_studio(&st, &user, &uri, &headers, StatusCode::OK, |_| {}).await
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct NewLiveForm {
    csrf: String,
    title: String,
    description: String,
    privacy: String,
    replays: Option<String>,
}

/// `POST /studio/lives`: the new live's key is shown on the page this answers with.
async fn create(
    State(st): State<ApiState>,
    user: CurrentUser,
    uri: Uri,
    headers: HeaderMap,
    axum::Form(form): axum::Form<NewLiveForm>,
) -> Result<Response, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let body = NewLiveBody {
        title: form.title,
        description: Some(form.description),
        privacy: Some(form.privacy).filter(|p| !p.is_empty()),
        channel: None,
        replays: Some(form.replays.is_some()),
    };
    match lives::create_live(&st, &user, body).await {
        Ok(made) => {
            let shown = ShownKey { live_id: made.id.to_string(), title: made.live.title, stream_key: made.stream_key };
            render_studio(&st, &user, &uri, &headers, StatusCode::OK, |v| v.shown = Some(shown)).await
        }
        Err(e) if e.status.is_client_error() => {
            let message = e.body.message.to_string();
            render_studio(&st, &user, &uri, &headers, e.status, |v| v.error = Some(message)).await
        }
        Err(e) => Err(e),
    }
}

/// `POST /studio/lives/{id}/key`: the new key is shown on the page this answers with.
async fn new_key(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    axum::Form(form): axum::Form<csrf::TokenForm>,
) -> Result<Response, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    let (l, key) = lives::regenerate(&st, &user, &id).await?;
    let shown = ShownKey { live_id: l.id.to_string(), title: l.title, stream_key: key };
    render_studio(&st, &user, &uri, &headers, StatusCode::OK, |v| v.shown = Some(shown)).await
}

/// `POST /studio/lives/{id}/end`.
async fn end(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<csrf::TokenForm>,
) -> Result<Response, ApiError> {
    csrf::check(&st, &user, &form.csrf)?;
    lives::end_live(&st, &user, &id).await?;
    Ok(Redirect::to("/studio/lives").into_response())
}
