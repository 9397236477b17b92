//! Subscriptions: following channels.
//!
//! - `PUT /api/v1/me/subscriptions/{handle}`: follow (idempotent; 204 whether or not it was
//!   new).
//! - `DELETE /api/v1/me/subscriptions/{handle}`: stop following (idempotent; 204).
//! - `GET /api/v1/me/subscriptions?cursor=&limit=`: the channels followed, newest subscription
//!   first, keyset-paged with an opaque cursor ([`crate::cursor`]).
//!
//! Subscribing to a channel you own is refused (400 `own_channel`): a creator's own follow would
//! only inflate the count and fill their feed with their own uploads. The count and the
//! subscription change in one transaction ([`turtlemen_db::subscriptions`]); a new subscription
//! then queues the channel owner's notification (a job; at most one notification per follower
//! and channel, however often they toggle).

use crate::channels::{self, ChannelJson};
use crate::identity::{CurrentUser, Scoped, SubscriptionsRead, SubscriptionsWrite};
use crate::{ApiState, cursor};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use turtlemen_db::channels::Channel;
use turtlemen_db::subscriptions as rows;
use turtlemen_http::{ApiError, ErrorBody};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The subscriptions routes, each with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(subscribe, unsubscribe))
}

/// Makes `user` follow `c` (no change if they already do); `true` if it is new.
pub async fn follow(st: &ApiState, user: &CurrentUser, c: &Channel) -> Result<bool, ApiError> {
    if channels::owns(c, user) {
        return Err(ApiError::bad_request("own_channel", "You cannot subscribe to your own channel."));
    }
    let new = rows::subscribe(&st.db, user.0.id, c.id).await?;
    if new {
        tracing::info!(channel.id = %c.id, user.id = %user.0.id.0, "subscribed");
        // The owner's notification is made by a job, never here. The subscription stands
        // whatever happens to the notification.
        if let Err(e) = turtlemen_db::notifications::announce_subscriber(&st.db, c.id, user.0.id).await {
            tracing::error!(channel.id = %c.id, user.id = %user.0.id.0, error = %e, "cannot queue the new-subscriber notification");
        }
    }
    Ok(new)
}

/// Makes `user` stop following `c`; `true` if they did follow it.
pub async fn unfollow(st: &ApiState, user: &CurrentUser, c: &Channel) -> Result<bool, ApiError> {
    Ok(rows::unsubscribe(&st.db, user.0.id, c.id).await?)
}

/// Follows a channel.
#[utoipa::path(put, path = "/me/subscriptions/{handle}", tag = "subscriptions",
    summary = "Follows a channel (idempotent). Following your own channel is refused (own_channel).",
    security(("oauth2" = ["subscriptions:write"])),
    params(("handle" = String, Path, description = "The channel's handle (any case).")),
    responses(
        (status = 204, description = "Followed."),
        (status = 400, description = "`own_channel`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `subscriptions:write`.", body = ErrorBody),
        (status = 404, description = "No channel has this handle.", body = ErrorBody),
    ))]
async fn subscribe(
    State(st): State<ApiState>,
    scoped: Scoped<SubscriptionsWrite>,
    Path(handle): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = scoped.0;
    let c = channels::find(&st, &handle).await?;
    follow(&st, &user, &c).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stops following a channel.
#[utoipa::path(delete, path = "/me/subscriptions/{handle}", tag = "subscriptions",
    summary = "Stops following a channel (idempotent).",
    security(("oauth2" = ["subscriptions:write"])),
    params(("handle" = String, Path, description = "The channel's handle (any case).")),
    responses(
        (status = 204, description = "Not followed."),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `subscriptions:write`.", body = ErrorBody),
        (status = 404, description = "No channel has this handle.", body = ErrorBody),
    ))]
async fn unsubscribe(
    State(st): State<ApiState>,
    scoped: Scoped<SubscriptionsWrite>,
    Path(handle): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user = scoped.0;
    let c = channels::find(&st, &handle).await?;
    unfollow(&st, &user, &c).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A keyset-paged list's query.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page, as given (opaque, signed: anything else is 400
    /// `invalid_cursor`).
    pub cursor: Option<String>,
    /// 1 to 100 (larger values are taken as 100).
    pub limit: Option<u32>,
}

/// A channel followed.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Subscription)]
struct Item {
    channel: ChannelJson,
    subscribed_at: DateTime<Utc>,
}

/// A page of subscriptions.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = SubscriptionList)]
struct List {
    subscriptions: Vec<Item>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// The channels followed.
#[utoipa::path(get, path = "/me/subscriptions", tag = "subscriptions",
    summary = "The channels the signed-in user follows, newest subscription first.",
    security(("oauth2" = ["subscriptions:read"])),
    params(PageQuery),
    responses(
        (status = 200, description = "Subscriptions.", body = List),
        (status = 400, description = "`invalid_cursor`, or a malformed query.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: the token does not grant `subscriptions:read`.", body = ErrorBody),
    ))]
async fn list(
    State(st): State<ApiState>,
    scoped: Scoped<SubscriptionsRead>,
    Query(q): Query<PageQuery>,
) -> Result<Json<List>, ApiError> {
    let user = scoped.0;
    let limit = q.limit.unwrap_or(50).clamp(1, 100);
    let after = cursor::decode_time(&st, cursor::Kind::Subscriptions, q.cursor.as_deref())?;
    let mut subs = rows::list(&st.db, user.0.id, after, limit + 1).await?;
    let next_cursor = if subs.len() > limit as usize {
        subs.truncate(limit as usize);
        subs.last()
            .map(|s| cursor::encode(&st, cursor::Kind::Subscriptions, cursor::time_key(s.created_at), s.channel.id))
    } else {
        None
    };
    Ok(Json(List {
        subscriptions: subs
            .iter()
            .map(|s| Item { channel: ChannelJson::build(&s.channel, Some(true)), subscribed_at: s.created_at })
            .collect(),
        next_cursor,
    }))
}
