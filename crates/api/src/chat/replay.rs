//! A live's kept chat in stream order, for the replay: `GET /api/v1/lives/{id}/chat/messages`
//! from a stream time (`from_ms`, where the player is) and on by keyset cursor
//! (`(stream_ms, id)`, [`cursor::Kind::ChatReplay`]). The player asks again as it plays and
//! shows each message when `currentTime` reaches its `stream_ms`.
//!
//! Visibility is the live's: a private live's chat is a 404 to anyone but its owner.

use super::protocol::MessageView;
use crate::identity::{Scoped, VideosRead};
use crate::{ApiState, cursor};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use turtlemen_http::{ApiError, ErrorBody};

/// Messages per page.
pub const PAGE: u32 = 100;

/// `GET /lives/{id}/chat/messages`'s query.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ReplayQuery {
    /// Start at this stream time (milliseconds since the live started); 0 by default.
    #[param(minimum = 0)]
    from_ms: Option<i64>,
    /// The `next_cursor` of the previous page (then `from_ms` is ignored).
    #[param(max_length = 100)]
    cursor: Option<String>,
}

/// A page of a live's chat in stream order.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ChatMessageList)]
pub(super) struct MessageList {
    messages: Vec<MessageView>,
    /// The next page's cursor; null on the last page.
    next_cursor: Option<String>,
}

/// A live's chat by stream time.
#[utoipa::path(get, path = "/lives/{id}/chat/messages", tag = "lives",
    summary = "A live's chat in stream order (for the replay), from `from_ms` or a cursor; removed messages and those of banned users are left out.",
    security((), ("oauth2" = ["videos:read"])),
    params(("id" = String, Path, description = "The live."), ReplayQuery),
    responses(
        (status = 200, description = "Messages, oldest stream time first.", body = MessageList),
        (status = 400, description = "`invalid_cursor` or `invalid_from`.", body = ErrorBody),
        (status = 404, description = "No such live, or not yours to see.", body = ErrorBody),
    ))]
pub(super) async fn list(
    State(st): State<ApiState>,
    viewer: Option<Scoped<VideosRead>>,
    Path(id): Path<String>,
    Query(q): Query<ReplayQuery>,
) -> Result<Response, ApiError> {
    let l = crate::lives::visible(&st, &id, viewer.as_deref()).await?;
    let from_ms = q.from_ms.unwrap_or(0);
    if from_ms < 0 {
        return Err(ApiError::bad_request("invalid_from", "from_ms is a stream time in milliseconds, 0 or more."));
    }
    let after = q
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| cursor::decode(&st, cursor::Kind::ChatReplay, c))
        .transpose()?;
    let mut rows = turtlemen_db::chat::replay_page(&st.db, l.id, after, from_ms, PAGE + 1).await?;
    let next_cursor = match rows.len() > PAGE as usize {
        true => {
            rows.truncate(PAGE as usize);
            rows.last().map(|m| cursor::encode(&st, cursor::Kind::ChatReplay, m.stream_ms, m.id))
        }
        false => None,
    };
    let body = MessageList { messages: rows.iter().map(MessageView::from).collect(), next_cursor };
    let mut res = Json(body).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    Ok(res)
}
