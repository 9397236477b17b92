//! The feed: `GET /api/v1/me/feed?cursor=&limit=` — the newest public, playable videos of the
//! channels the caller follows, newest first, keyset-paged by `(published_at, id)` with an
//! opaque, signed cursor ([`crate::cursor`]; a forged one is 400). Private and unlisted videos
//! never appear. The query and its plan are described at [`turtlemen_db::subscriptions::feed`].

use crate::identity::{CurrentUser, Scoped, SubscriptionsRead};
use crate::{ApiState, cursor, videos};
use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use turtlemen_db::subscriptions as rows;
use turtlemen_db::videos::Video;
use turtlemen_http::ApiError;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/me/feed", get(feed))
}

/// One page of the feed and the cursor of the next, if any.
pub struct FeedPage {
    pub videos: Vec<Video>,
    pub next_cursor: Option<String>,
}

/// The page of `user`'s feed after `cursor_text` (the first page without one).
pub async fn page(
    st: &ApiState,
    user: &CurrentUser,
    cursor_text: Option<&str>,
    limit: u32,
) -> Result<FeedPage, ApiError> {
    let after = cursor::decode_time(st, cursor::Kind::Feed, cursor_text)?;
    let mut videos = rows::feed(&st.db, user.0.id, after, limit + 1).await?;
    let next_cursor = if videos.len() > limit as usize {
        videos.truncate(limit as usize);
        videos.last().map(|v| {
            cursor::encode(st, cursor::Kind::Feed, cursor::time_key(v.published_at.unwrap_or(v.created_at)), v.id)
        })
    } else {
        None
    };
    Ok(FeedPage { videos, next_cursor })
}

#[derive(Debug, serde::Deserialize)]
struct FeedQuery {
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, serde::Serialize)]
struct FeedList {
    videos: Vec<videos::VideoView>,
    next_cursor: Option<String>,
}

async fn feed(
    State(st): State<ApiState>,
    scoped: Scoped<SubscriptionsRead>,
    Query(q): Query<FeedQuery>,
) -> Result<Json<FeedList>, ApiError> {
    let user = scoped.0;
    let limit = q.limit.unwrap_or(24).clamp(1, 100);
    let p = page(&st, &user, q.cursor.as_deref(), limit).await?;
    Ok(Json(FeedList {
        videos: p.videos.iter().map(|v| videos::VideoView::build(&st, v, Some(&user))).collect(),
        next_cursor: p.next_cursor,
    }))
}
