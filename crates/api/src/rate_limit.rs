//! Per-user limits on how often an action may be done — comments written
//! (`comments_per_minute`), ratings changed (`ratings_per_minute`: video likes and dislikes,
//! comment likes), live chat messages (`chat_per_minute`) — counted in the shared session store per fixed one-minute window, so every
//! API server of an instance counts together.
//!
//! Over the limit: 429 `rate_limited` with `Retry-After` (the seconds left in the window). A
//! store that cannot count refuses with 503: an action never goes through uncounted. A limit of
//! 0 turns the check off. This module does not decide what an action is allowed to do.

use crate::ApiState;
use crate::identity::CurrentUser;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use std::time::Duration;
use turtlemen_http::ApiError;

/// The window the limits count in.
pub const WINDOW: Duration = Duration::from_secs(60);

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Writing a comment or reply.
    Comment,
    /// Changing a rating: a video's like or dislike, a comment's like.
    Rating,
    /// Writing in a live's chat.
    Chat,
}

impl Action {
    fn key(self) -> &'static str {
        match self {
            Action::Comment => "comments:rate",
            Action::Rating => "ratings:rate",
            Action::Chat => "chat:rate",
        }
    }

    fn limit(self, st: &ApiState) -> u32 {
        match self {
            Action::Comment => st.videos.comments_per_minute,
            Action::Rating => st.videos.ratings_per_minute,
            Action::Chat => st.videos.chat_per_minute,
        }
    }

    fn refused(self, limit: u32) -> String {
        match self {
            Action::Comment => format!("You can write {limit} comments a minute; wait a moment and try again."),
            Action::Rating => format!("You can change {limit} ratings a minute; wait a moment and try again."),
            Action::Chat => format!("You can write {limit} chat messages a minute; wait a moment."),
        }
    }

    fn unavailable(self) -> &'static str {
        match self {
            Action::Comment => "Comments cannot be written just now; try again in a moment.",
            Action::Rating => "Ratings cannot be changed just now; try again in a moment.",
            Action::Chat => "The chat cannot be written just now; try again in a moment.",
        }
    }
}

/// A refusal that may carry `Retry-After` (a rate limit).
#[derive(Debug)]
pub struct Refusal {
    pub error: ApiError,
    pub retry_after: Option<u64>,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal { error, retry_after: None }
    }
}

impl From<turtlemen_db::DbError> for Refusal {
    fn from(e: turtlemen_db::DbError) -> Self {
        Refusal::from(ApiError::from(e))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut res = self.error.into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// Counts one `action` by `user` in the current window; over the limit, 429.
pub async fn check(st: &ApiState, user: &CurrentUser, action: Action) -> Result<(), Refusal> {
    let limit = action.limit(st);
    if limit == 0 {
        return Ok(());
    }
    let window = WINDOW.as_secs();
    let slot = Utc::now().timestamp().div_euclid(window as i64);
    let key = format!("{}:{}:{slot}", action.key(), user.0.id.0);
    let n = st.sessions.incr(&key, WINDOW).await.map_err(|e| {
        tracing::error!(error = %e, action = action.key(), "cannot count for the rate limit");
        ApiError::unavailable(action.unavailable())
    })?;
    if n > i64::from(limit) {
        let retry = window - Utc::now().timestamp().rem_euclid(window as i64) as u64;
        return Err(Refusal {
            error: ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", action.refused(limit)),
            retry_after: Some(retry.max(1)),
        });
    }
    Ok(())
}
