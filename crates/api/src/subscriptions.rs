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
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use chrono::{DateTime, Utc};
use turtlemen_db::channels::Channel;
use turtlemen_db::subscriptions as rows;
use turtlemen_http::ApiError;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/me/subscriptions", get(list))
        .route("/me/subscriptions/{handle}", axum::routing::put(subscribe).delete(unsubscribe))
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

#[derive(Debug, serde::Deserialize)]
struct ListQuery {
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, serde::Serialize)]
struct Item {
    channel: ChannelJson,
    subscribed_at: DateTime<Utc>,
}

#[derive(Debug, serde::Serialize)]
struct List {
    subscriptions: Vec<Item>,
    next_cursor: Option<String>,
}

async fn list(
    State(st): State<ApiState>,
    scoped: Scoped<SubscriptionsRead>,
    Query(q): Query<ListQuery>,
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
