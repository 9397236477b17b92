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
use chrono::{DateTime, Utc};
use turtlemen_db::subscriptions as rows;
use turtlemen_db::videos::{Card, Video};
use turtlemen_http::{ApiError, ErrorBody};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The feed's route with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(feed))
}

/// One page of the feed (whole videos for the API, [`Card`]s for the pages) and the cursor of
/// the next, if any.
pub struct FeedPage<T = Video> {
    pub videos: Vec<T>,
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
    let videos = rows::feed(&st.db, user.0.id, after, limit + 1).await?;
    Ok(paged(st, videos, limit, |v| (v.listed_at(), v.id)))
}

/// The same page as [`page`], as cards (what the feed's page and the home page show).
pub async fn cards(
    st: &ApiState,
    user: &CurrentUser,
    cursor_text: Option<&str>,
    limit: u32,
) -> Result<FeedPage<Card>, ApiError> {
    let after = cursor::decode_time(st, cursor::Kind::Feed, cursor_text)?;
    let cards = rows::feed_cards(&st.db, user.0.id, after, limit + 1).await?;
    Ok(paged(st, cards, limit, |c| (c.listed_at(), c.id)))
}

/// [`cards`] for the feed's page: it records the viewer's visit and returns, with the page, the
/// end of their previous one (what is newer is marked new).
pub async fn cards_on_visit(
    st: &ApiState,
    user: &CurrentUser,
    cursor_text: Option<&str>,
    limit: u32,
) -> Result<(FeedPage<Card>, Option<DateTime<Utc>>), ApiError> {
    let after = cursor::decode_time(st, cursor::Kind::Feed, cursor_text)?;
    let (cards, new_since) = rows::feed_cards_on_visit(&st.db, user.0.id, after, limit + 1, Utc::now()).await?;
    Ok((paged(st, cards, limit, |c| (c.listed_at(), c.id)), new_since))
}

/// `limit` of `items` (read one more than a page) and the cursor after the last if there are more.
fn paged<T>(st: &ApiState, mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> (DateTime<Utc>, Uuid)) -> FeedPage<T> {
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|v| {
            let (at, id) = key(v);
            cursor::encode(st, cursor::Kind::Feed, cursor::time_key(at), id)
        })
    } else {
        None
    };
    FeedPage { videos: items, next_cursor }
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
