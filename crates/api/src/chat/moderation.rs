//! The chat's moderation over plain HTTP, for clients without a socket open (a studio, a bot):
//! `DELETE /api/v1/lives/{id}/chat/messages/{message}` removes a message and `POST
//! /api/v1/lives/{id}/chat/timeouts` with `{"user_id", "seconds"}` times a user out. They call
//! the very [`actions`] the socket's `delete` and `timeout` frames do, so every check and the
//! event every viewer receives are the same.
//!
//! Who: a signed-in caller whose token grants `comments:write` (401 / 403 otherwise), who may
//! see the live (404 otherwise, as the live itself), and who is its streamer or a moderator (403
//! `not_a_moderator`); a banned account is refused before anything (403 `account_banned`).

use super::actions;
use crate::ApiState;
use crate::channels::json_body;
use crate::identity::{CommentsWrite, Scoped};
use crate::rate_limit::Refusal;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use turtlemen_http::ErrorBody;
use uuid::Uuid;

/// `POST /lives/{id}/chat/timeouts`'s body.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ChatTimeout)]
pub(super) struct TimeoutBody {
    /// The user who may not write.
    user_id: Uuid,
    /// How long, 1 second to 7 days.
    #[schema(minimum = 1, maximum = 604800)]
    seconds: u64,
}

fn message_id(text: &str) -> Result<Uuid, Refusal> {
    Uuid::parse_str(text).map_err(|_| {
        Refusal::from(turtlemen_http::ApiError::new(
            StatusCode::NOT_FOUND,
            "message_not_found",
            "There is no such message in this chat.",
        ))
    })
}

/// Removes a chat message.
#[utoipa::path(delete, path = "/lives/{id}/chat/messages/{message}", tag = "lives",
    summary = "Removes a message from the live's chat (the streamer or a moderator); every viewer drops it.",
    security(("oauth2" = ["comments:write"])),
    params(("id" = String, Path, description = "The live."), ("message" = String, Path, description = "The message.")),
    responses(
        (status = 204, description = "Removed."),
        (status = 400, description = "`ambiguous_path`: the path holds dot segments or encoded separators.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` (`comments:write`), `account_banned` or `not_a_moderator`.", body = ErrorBody),
        (status = 404, description = "No such live (or not yours to see), or `message_not_found`.", body = ErrorBody),
    ))]
pub(super) async fn delete_message(
    State(st): State<ApiState>,
    user: Scoped<CommentsWrite>,
    Path((id, message)): Path<(String, String)>,
) -> Result<StatusCode, Refusal> {
    let l = crate::lives::visible(&st, &id, Some(&*user)).await?;
    actions::delete(&st, l.id, Some(&*user), message_id(&message)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Times a user out of a chat.
#[utoipa::path(post, path = "/lives/{id}/chat/timeouts", tag = "lives",
    summary = "Forbids a user to write in the live's chat for a while (the streamer or a moderator; JSON only).",
    security(("oauth2" = ["comments:write"])),
    params(("id" = String, Path, description = "The live.")),
    request_body(content = TimeoutBody, content_type = "application/json"),
    responses(
        (status = 204, description = "Timed out."),
        (status = 400, description = "`invalid_json`, `invalid_duration` or `cannot_time_out` (the streamer, or oneself).", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` (`comments:write`), `account_banned` or `not_a_moderator`.", body = ErrorBody),
        (status = 404, description = "No such live (or not yours to see), or `user_not_found`.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
pub(super) async fn time_out(
    State(st): State<ApiState>,
    user: Scoped<CommentsWrite>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode, Refusal> {
    let l = crate::lives::visible(&st, &id, Some(&*user)).await?;
    let body: TimeoutBody = json_body(&headers, &body)?;
    actions::time_out(&st, l.id, Some(&*user), body.user_id, body.seconds).await?;
    Ok(StatusCode::NO_CONTENT)
}
