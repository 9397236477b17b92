//! What a chat frame asks for, with every check, and the event published when it is done:
//! posting ([`post`]), removing a message ([`delete`]), timing a user out ([`time_out`]).
//!
//! The caller is the user of the verified access token the socket was opened with (or nobody).
//! A refusal is a [`Refusal`] — a stable code and a reason, with `retry_after` for the rate limit
//! and the timeout — which the socket sends back as an error event; nothing is written then.

use super::MAX_CHARS;
use super::protocol::{MessageView, ServerEvent};
use crate::ApiState;
use crate::identity::CurrentUser;
use crate::rate_limit::{Action, Refusal};
use axum::http::StatusCode;
use chrono::Utc;
use turtlemen_db::chat::{self as rows, NewMessage};
use turtlemen_db::lives::{Live, LiveState};
use turtlemen_domain::{CommentText, UserId};
use turtlemen_http::ApiError;
use turtlemen_identity::Scope;
use uuid::Uuid;

/// The longest timeout: a week.
pub const MAX_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

/// Whether `user` may write in a live's chat at all: signed in with `comments:write`.
pub fn may_post(user: Option<&CurrentUser>) -> bool {
    user.is_some_and(|u| u.scopes().grants(Scope::CommentsWrite))
}

/// Whether `user` may remove messages and time users out in `l`'s chat: its streamer, or a
/// moderator ([`crate::moderation::acts_as_moderator`]).
pub fn may_moderate(l: &Live, user: Option<&CurrentUser>) -> bool {
    user.is_some_and(|u| u.0.id == l.owner_id || crate::moderation::acts_as_moderator(u))
}

/// Milliseconds since `l` started at `now`; 0 before it did.
pub fn stream_ms(l: &Live, now: chrono::DateTime<Utc>) -> i64 {
    l.started_at.map_or(0, |s| (now - s).num_milliseconds().max(0))
}

fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::from(ApiError::new(status, code, message.into()))
}

async fn current_live(st: &ApiState, live: Uuid) -> Result<Live, Refusal> {
    turtlemen_db::lives::get(&st.db, live)
        .await?
        .ok_or_else(|| refused(StatusCode::NOT_FOUND, "not_found", "This live no longer exists."))
}

/// The message text, trimmed and checked: not empty, no control characters, at most
/// [`MAX_CHARS`] characters.
pub fn parse_text(text: &str) -> Result<CommentText, Refusal> {
    if text.chars().count() > MAX_CHARS {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "text_too_long",
            format!("A chat message is at most {MAX_CHARS} characters."),
        ));
    }
    Ok(crate::comments::parse_text(text)?)
}

/// The account banned since the socket opened is refused (and the socket closed by its caller).
pub fn is_ban(r: &Refusal) -> bool {
    r.error.body.error == "account_banned"
}

/// Counts one message by `user` in the current minute; over `chat_per_minute`, refused.
async fn check_rate(st: &ApiState, user: &CurrentUser) -> Result<(), Refusal> {
    crate::rate_limit::check(st, user, Action::Chat).await
}

/// Writes `text` in `live`'s chat as `user`, and publishes it.
pub async fn post(st: &ApiState, live: Uuid, user: Option<&CurrentUser>, text: &str) -> Result<(), Refusal> {
    let Some(user) = user else {
        return Err(refused(StatusCode::UNAUTHORIZED, "sign_in_required", "Sign in to write in the chat."));
    };
    if !may_post(Some(user)) {
        return Err(ApiError::from(crate::identity::InsufficientScope(vec![Scope::CommentsWrite])).into());
    }
    let text = parse_text(text)?;
    // The account as it is now: a ban since the socket opened counts.
    let now_user = turtlemen_db::users::find_by_id(&st.db, user.id()).await?;
    if now_user.is_none_or(|u| u.is_banned()) {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "account_banned",
            "This account is suspended by the moderators of this instance.",
        ));
    }
    let l = current_live(st, live).await?;
    // Made private since the socket opened: as if it did not exist.
    if !crate::lives::may_view(&l, Some(user)) {
        return Err(refused(StatusCode::NOT_FOUND, "not_found", "This live no longer exists."));
    }
    if l.state == LiveState::Ended {
        return Err(refused(StatusCode::CONFLICT, "live_ended", "This live has ended; its chat is closed."));
    }
    let now = Utc::now();
    if let Some(until) = rows::timed_out_until(&st.db, live, user.id(), now).await? {
        let secs = u64::try_from((until - now).num_seconds()).unwrap_or(0).max(1);
        return Err(Refusal {
            error: ApiError::new(
                StatusCode::FORBIDDEN,
                "timed_out",
                format!("A moderator timed you out of this chat until {}.", until.format("%H:%M:%S UTC")),
            ),
            retry_after: Some(secs),
        });
    }
    check_rate(st, user).await?;
    let blocked = turtlemen_db::comments::blocked_words_for(&st.db, l.channel_id).await?;
    if let Some(word) = text.holds(blocked.iter().map(String::as_str)) {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "blocked_word",
            format!("This chat does not take messages with “{word}”."),
        ));
    }
    let m = NewMessage {
        id: Uuid::now_v7(),
        live_id: live,
        author_id: user.id(),
        text: text.as_str().to_owned(),
        stream_ms: stream_ms(&l, now),
        created_at: now,
    };
    rows::post(&st.db, &m).await?;
    let shown = rows::get(&st.db, live, m.id).await?;
    if let Some(shown) = shown {
        publish(st, live, &ServerEvent::Message { message: MessageView::from(&shown) }).await?;
    }
    Ok(())
}

async fn moderated_live(st: &ApiState, live: Uuid, user: Option<&CurrentUser>) -> Result<Live, Refusal> {
    let l = current_live(st, live).await?;
    if !may_moderate(&l, user) {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "not_a_moderator",
            "Only the streamer and the moderators can do this.",
        ));
    }
    Ok(l)
}

/// Removes message `id` of `live` (the streamer, a moderator); every viewer drops it.
pub async fn delete(st: &ApiState, live: Uuid, user: Option<&CurrentUser>, id: Uuid) -> Result<(), Refusal> {
    let l = moderated_live(st, live, user).await?;
    let by = user.map_or(l.owner_id, |u| u.id());
    if !rows::remove(&st.db, live, id, by).await? {
        return Err(refused(StatusCode::NOT_FOUND, "message_not_found", "There is no such message in this chat."));
    }
    publish(st, live, &ServerEvent::Deleted { id }).await
}

/// Forbids `target` to write in `live` for `seconds` (the streamer, a moderator).
pub async fn time_out(
    st: &ApiState,
    live: Uuid,
    user: Option<&CurrentUser>,
    target: Uuid,
    seconds: u64,
) -> Result<(), Refusal> {
    let l = moderated_live(st, live, user).await?;
    if !(1..=MAX_TIMEOUT_SECS).contains(&seconds) {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "invalid_duration",
            format!("A timeout lasts 1 to {MAX_TIMEOUT_SECS} seconds."),
        ));
    }
    let by = user.map_or(l.owner_id, |u| u.id());
    if UserId(target) == l.owner_id || UserId(target) == by {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "cannot_time_out",
            "The streamer and you yourself cannot be timed out.",
        ));
    }
    if turtlemen_db::users::find_by_id(&st.db, UserId(target)).await?.is_none() {
        return Err(refused(StatusCode::NOT_FOUND, "user_not_found", "There is no such user."));
    }
    let secs = i64::try_from(seconds).unwrap_or(i64::MAX);
    let until = Utc::now() + chrono::TimeDelta::seconds(secs);
    rows::time_out(&st.db, live, UserId(target), until, by).await?;
    publish(st, live, &ServerEvent::Timeout { user_id: target, until }).await
}

async fn publish(st: &ApiState, live: Uuid, event: &ServerEvent) -> Result<(), Refusal> {
    st.chat.publish(live, event).await.map_err(|e| {
        tracing::error!(live.id = %live, error = %e, "cannot publish a chat event");
        Refusal::from(ApiError::unavailable("The chat cannot reach the other viewers just now; try again."))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_capped_in_characters() {
        assert!(parse_text(&"é".repeat(MAX_CHARS)).is_ok());
        assert_eq!(parse_text(&"é".repeat(MAX_CHARS + 1)).unwrap_err().error.body.error, "text_too_long");
        assert_eq!(parse_text("   ").unwrap_err().error.body.error, "text_empty");
        assert_eq!(parse_text("  hi  ").unwrap().as_str(), "hi");
    }
}
