//! The feed: `GET /api/v1/me/feed?cursor=&limit=` — the newest public, playable videos of the
//! channels the caller follows, newest first, keyset-paged by `(published_at, id)` with an
//! opaque, signed cursor ([`crate::cursor`]; a forged one is 400). Private and unlisted videos
//! never appear. The query and its plan are described at [`turtlemen_db::subscriptions::feed`].

use crate::channels::VideoPage;
use crate::identity::{CurrentUser, Scoped, SubscriptionsRead};
use crate::subscriptions::PageQuery;
use crate::{ApiState, cursor, videos};
use axum::Json;
use axum::extract::{Query, State};
use turtlemen_db::subscriptions as rows;
use turtlemen_db::videos::Video;
use turtlemen_http::{ApiError, ErrorBody};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The feed's route with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(feed))
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
        videos.last().map(|v| cursor::encode(st, cursor::Kind::Feed, cursor::time_key(v.listed_at()), v.id))
    } else {
        None
    };
    Ok(FeedPage { videos, next_cursor })
}

/// The feed.
#[utoipa::path(get, path = "/me/feed", tag = "subscriptions",
    summary = "Newest public, playable videos of the channels the signed-in user follows.",
    security(("oauth2" = ["subscriptions:read"])),
    params(PageQuery),
    responses(
        (status = 200, description = "Videos, newest first.", body = VideoPage),
        (status = 400, description = "`invalid_cursor`, or a malformed query.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `subscriptions:read`.", body = ErrorBody),
    ))]
async fn feed(
    State(st): State<ApiState>,
    scoped: Scoped<SubscriptionsRead>,
    Query(q): Query<PageQuery>,
) -> Result<Json<VideoPage>, ApiError> {
    let user = scoped.0;
    let limit = q.limit.unwrap_or(24).clamp(1, 100);
    let p = page(&st, &user, q.cursor.as_deref(), limit).await?;
    Ok(Json(VideoPage {
        videos: p.videos.iter().map(|v| videos::VideoView::build(&st, v, Some(&user))).collect(),
        next_cursor: p.next_cursor,
    }))
}
