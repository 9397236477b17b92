//! The API server: the JSON API under `/api/v1`, the media under `/media`, and the
//! server-rendered pages.
//!
//! Modules: [`identity`] (who is calling, from the verified access token), [`tus`] and
//! [`uploads`] (resumable uploads; the scopes each handler needs are in [`identity`]), [`videos`]
//! (the videos API), [`media`] (signed media URLs and delivery), [`views`] (view counting),
//! [`admin`] (the job queue for admins), [`channels`], [`channel_images`] (avatars and banners),
//! [`subscriptions`] and [`feed`] (channels, following them, their videos; paged by [`cursor`]),
//! [`notifications`] (the signed-in user's notifications and their settings), [`search`] (search
//! and suggestions), [`lives`] (live streams, their media, and the ingest's database side), [`chat`] (a live's chat over WebSocket, shared by every replica through the session store's bus, and its replay by stream time),
//! [`comments`] (threads, likes, the held queue) and [`blocked_words`] (the lists that hold a
//! comment for approval), [`moderation`] (reports, the moderators' queue, bans, roles and
//! quotas), [`ratings`], [`playlists`] and [`history`] (a viewer's library: likes, playlists
//! with watch later and liked videos, the watch history), [`pages`] (HTML). [`janitor`] runs the periodic chores: view counts written
//! in batches, trending scores decayed, expired uploads cleaned, lives of a stopped packager ended.

pub mod admin;
pub mod blocked_words;
pub mod channel_images;
pub mod channels;
pub mod chat;
pub mod comments;
pub mod cursor;
pub mod feed;
pub mod history;
pub mod identity;
pub mod lives;
pub mod media;
pub mod moderation;
pub mod notifications;
pub mod openapi;
pub mod pages;
pub mod playlists;
pub mod rate_limit;
pub mod ratings;
pub mod search;
pub mod shared_lists;
pub mod staging;
pub mod subscriptions;
pub mod tus;
pub mod uploads;
pub mod videos;
pub mod views;

use axum::{Json, Router};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use turtlemen_config::VideoLimits;
use turtlemen_db::Db;
use turtlemen_http::{ApiError, ErrorBody};
use turtlemen_identity::Jwks;
use turtlemen_storage::Storage;

/// Shared state of the API server's handlers.
#[derive(Clone)]
pub struct ApiState {
    pub db: Db,
    /// The issuer's keys, to verify access tokens locally.
    pub jwks: Arc<Jwks>,
    /// Where media lives.
    pub storage: Storage,
    /// Staging folder for uploads in progress.
    pub uploads_dir: PathBuf,
    pub videos: VideoLimits,
    /// Signs and checks media URLs.
    pub media: Arc<media::MediaSigner>,
    pub views: Arc<views::ViewCounter>,
    /// Decodes and re-encodes channel pictures, a few at a time.
    pub images: turtlemen_images::Processor,
    /// This process's live ingest, if it runs one.
    pub live: lives::LiveServices,
    /// The shared session store: per-user rate limits (comments, reports), and the marks a ban
    /// writes to end the banned user's gateway sessions.
    pub sessions: turtlemen_session::Sessions,
    /// The live chat: its bus across replicas and the origin its sockets accept.
    pub chat: chat::Chat,
    /// Proxies whose `X-Forwarded-For` names the client (the gateway, and what is in front of
    /// it): the one rule for client addresses, as at the gateway.
    pub trusted_proxies: turtlemen_http::client_addr::TrustedProxies,
    /// The lists every viewer sees alike, kept a moment ([`shared_lists`]).
    pub lists: Arc<shared_lists::SharedLists>,
}

/// The API server's routes.
pub fn router(state: ApiState) -> Router {
    // Every API route comes with its description ([`openapi`]).
    let api: Router<ApiState> = openapi::routes().split_for_parts().0.fallback(|| async { ApiError::not_found() });
    Router::new()
        .merge(pages::routes())
        .merge(media::routes())
        .merge(channel_images::media_routes())
        .merge(lives::media_routes())
        .nest("/api/v1", api)
        .with_state(state)
        .merge(turtlemen_web::static_routes())
        .fallback(|| async { ApiError::not_found() })
}

/// The signed-in user as `/api/v1/me` shows them.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct UserView {
    #[schema(value_type = uuid::Uuid)]
    pub id: turtlemen_domain::UserId,
    pub username: String,
    pub display_name: String,
    /// Only with the `email` scope.
    pub email: Option<String>,
    #[schema(value_type = String, example = "user")]
    pub role: turtlemen_domain::Role,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// `GET /api/v1/me`: the signed-in user — any valid access token (no API scope needed); the
/// email address only with the `email` scope.
#[utoipa::path(get, path = "/me", tag = "me",
    summary = "The signed-in user: any valid access token (`openid`); `email` only with the `email` scope.",
    security(("oauth2" = [])),
    responses(
        (status = 200, description = "The user.", body = UserView),
        (status = 401, description = "Not signed in.", body = ErrorBody),
    ))]
async fn me(user: identity::Scoped<identity::Signed>) -> Json<UserView> {
    let u = &user.0.0;
    let email = user.scopes().grants(turtlemen_identity::Scope::Email).then(|| u.email.clone());
    Json(UserView {
        id: u.id,
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        email,
        role: u.role,
        created_at: u.created_at,
    })
}

/// How often counted views are written.
pub const VIEW_FLUSH_EVERY: Duration = Duration::from_secs(10);
/// How often expired uploads are looked for.
pub const UPLOAD_SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often trending scores decay ([`turtlemen_db::trending::refresh`]); a video's own score is
/// also recomputed whenever its views are written.
pub const TRENDING_EVERY: Duration = Duration::from_secs(300);
/// Feed heads expired per round of [`TRENDING_EVERY`] ([`turtlemen_db::feed_heads::expire`]).
const FEED_HEADS_EXPIRED_PER_ROUND: u32 = 1000;

/// The API server's periodic chores, until `stop` resolves (then views are flushed once more):
/// views written every [`VIEW_FLUSH_EVERY`], uploads (and lives left by a crashed packaging
/// process, [`lives::sweep_orphans`]) swept every `sweep_every` (normally
/// [`UPLOAD_SWEEP_EVERY`]; a shorter period also flushes views sooner), trending scores decayed
/// every [`TRENDING_EVERY`], with old feed heads expired.
pub async fn janitor(state: ApiState, sweep_every: Duration, stop: impl Future<Output = ()>) {
    let mut flush = tokio::time::interval(VIEW_FLUSH_EVERY.min(sweep_every));
    let mut sweep = tokio::time::interval(sweep_every);
    let mut trending = tokio::time::interval(TRENDING_EVERY);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = flush.tick() => state.views.flush(&state.db).await,
            _ = trending.tick() => {
                if let Err(e) = turtlemen_db::trending::refresh(&state.db, chrono::Utc::now()).await {
                    tracing::warn!(error = %e, "trending refresh failed; will retry");
                }
                match turtlemen_db::feed_heads::expire(&state.db, chrono::Utc::now(), FEED_HEADS_EXPIRED_PER_ROUND).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(feed_heads.expired = n, "old feed heads removed"),
                    Err(e) => tracing::warn!(error = %e, "expiring feed heads failed; will retry"),
                }
            }
            _ = sweep.tick() => {
                match uploads::sweep(&state).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(uploads.expired = n, "expired uploads removed"),
                    Err(e) => tracing::warn!(error = %e.body.message, "upload sweep failed; will retry"),
                }
                if let Err(e) = lives::sweep_orphans(&state).await {
                    tracing::warn!(error = %e, "sweeping the lives of stopped packagers failed; will retry");
                }
            }
        }
    }
    state.views.flush(&state.db).await;
}
