//! Rating videos: `PUT /api/v1/videos/{id}/rating` with `{"rating": "like" | "dislike" |
//! "none"}` (JSON only; `library:write`). Idempotent: the same rating again changes nothing.
//! A video the caller may not see is 404, as everywhere. The counters and the rating row change
//! together ([`turtlemen_db::ratings`]), so `likes` and `dislikes` stay exact. Changes are
//! limited per user (`ratings_per_minute`, [`crate::rate_limit`]).

use crate::identity::{CurrentUser, LibraryWrite, Scoped};
use crate::rate_limit::{self, Action, Refusal};
use crate::{ApiState, channels, videos};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use turtlemen_db::ratings::{self as rows, Rating};
use turtlemen_db::videos::Video;
use turtlemen_http::{ApiError, ErrorBody};
use turtlemen_identity::Scope;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The ratings routes, each with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(rate))
}

/// A rating as the API shows and takes it: `none` is no rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = RatingValue)]
pub enum RatingChoice {
    Like,
    Dislike,
    None,
}

impl RatingChoice {
    pub fn of(r: Option<Rating>) -> RatingChoice {
        match r {
            Some(Rating::Like) => RatingChoice::Like,
            Some(Rating::Dislike) => RatingChoice::Dislike,
            None => RatingChoice::None,
        }
    }

    pub fn rating(self) -> Option<Rating> {
        match self {
            RatingChoice::Like => Some(Rating::Like),
            RatingChoice::Dislike => Some(Rating::Dislike),
            RatingChoice::None => None,
        }
    }

    /// From a form field (`like`, `dislike`, `none`).
    pub fn parse(s: &str) -> Option<RatingChoice> {
        match s {
            "like" => Some(RatingChoice::Like),
            "dislike" => Some(RatingChoice::Dislike),
            "none" => Some(RatingChoice::None),
            _ => None,
        }
    }
}

/// A rating to set.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RatingChange)]
struct Change {
    rating: RatingChoice,
}

/// The video's counts after a rating.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = RatingState)]
pub struct RatingState {
    pub rating: RatingChoice,
    pub likes: u64,
    pub dislikes: u64,
}

/// The caller's rating of `v` (`None` when the token does not grant `library:read`).
pub async fn mine(st: &ApiState, v: &Video, viewer: Option<&CurrentUser>) -> Result<Option<RatingChoice>, ApiError> {
    match viewer.filter(|u| u.require(Scope::LibraryRead).is_ok()) {
        Some(u) => Ok(Some(RatingChoice::of(rows::get(&st.db, u.0.id, v.id).await?))),
        None => Ok(None),
    }
}

/// Sets `user`'s rating of the video `id` (one they may see; 404 otherwise); the new counts.
/// Counted by the ratings limit.
pub async fn set(st: &ApiState, user: &CurrentUser, id: &str, choice: RatingChoice) -> Result<RatingState, Refusal> {
    user.require(Scope::LibraryWrite).map_err(ApiError::from)?;
    let v = videos::visible(st, id, Some(user)).await?;
    rate_limit::check(st, user, Action::Rating).await?;
    rows::set(&st.db, user.0.id, v.id, choice.rating()).await?;
    let v = turtlemen_db::videos::get(&st.db, v.id).await?.ok_or(ApiError::not_found())?;
    Ok(RatingState { rating: choice, likes: v.likes, dislikes: v.dislikes })
}

/// Rates a video.
#[utoipa::path(put, path = "/videos/{id}/rating", tag = "videos",
    summary = "Likes, dislikes or un-rates a video (idempotent). JSON only.",
    security(("oauth2" = ["library:write"])),
    params(("id" = String, Path, description = "The video.")),
    request_body(content = Change, content_type = "application/json"),
    responses(
        (status = 200, description = "The rating and the video's counts.", body = RatingState),
        (status = 400, description = "`invalid_json`: not `{\"rating\": \"like\" | \"dislike\" | \"none\"}`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `library:write`.", body = ErrorBody),
        (status = 404, description = "No such video, or not yours to see.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many rating changes this minute; see `Retry-After`.", body = ErrorBody),
    ))]
async fn rate(
    State(st): State<ApiState>,
    user: Scoped<LibraryWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<RatingState>, Refusal> {
    let change: Change = channels::json_body(&headers, &body)?;
    Ok(Json(set(&st, &user, &id, change.rating).await?))
}
