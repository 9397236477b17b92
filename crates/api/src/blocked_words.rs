//! Blocked words for comments: the instance's list (admins: `GET`/`PUT
//! /api/v1/admin/blocked-words`) and each channel's (its owner, or an admin acting as one:
//! `GET`/`PUT /api/v1/channels/{handle}/blocked-words`). The pages edit the same lists through
//! [`replace`] (`crate::pages`: the channel edit page and `/admin/blocked-words`).
//!
//! A `PUT` replaces the list. Words and phrases are normalised as comments are matched against
//! them ([`BlockedWord`]: NFKC, lower case, words joined by one space), so `ＳＰＡＭ` and `Spam` are
//! one entry. A comment holding one, as whole words, is held for the video owner's approval —
//! never refused silently ([`crate::comments::write`]).

use crate::admin::AdminUser;
use crate::identity::{ChannelsWrite, Scoped};
use crate::{ApiState, channels};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use turtlemen_db::comments as rows;
use turtlemen_domain::BlockedWord;
use turtlemen_http::{ApiError, ErrorBody};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The most entries one list may hold.
pub const MAX_WORDS: usize = 500;

/// The blocked-words routes, each with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(instance_list, instance_set)).routes(routes!(channel_list, channel_set))
}

/// A list of blocked words or phrases.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BlockedWords)]
pub struct WordsJson {
    /// Words or phrases, each at most 60 characters; at most 500. Stored normalised.
    #[schema(max_items = 500)]
    pub words: Vec<String>,
}

/// The entries of a form's field: one a line, blank lines left out.
pub fn from_lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// `words` normalised, sorted and without repeats, or 400.
pub fn parse_words(words: &[String]) -> Result<Vec<String>, ApiError> {
    if words.len() > MAX_WORDS {
        return Err(ApiError::bad_request("too_many_words", format!("A list holds at most {MAX_WORDS} words.")));
    }
    let mut out = Vec::with_capacity(words.len());
    for w in words.iter().filter(|w| !w.trim().is_empty()) {
        let parsed =
            BlockedWord::parse(w).map_err(|e| ApiError::bad_request("invalid_word", format!("“{w}”: {e}.")))?;
        out.push(parsed.as_str().to_owned());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Replaces the list of `scope` with `words`; the list now.
pub async fn replace(st: &ApiState, scope: Uuid, words: &[String]) -> Result<Vec<String>, ApiError> {
    let words = parse_words(words)?;
    rows::set_blocked_words(&st.db, scope, &words).await?;
    Ok(rows::blocked_words(&st.db, scope).await?)
}

/// The instance's list.
#[utoipa::path(get, path = "/admin/blocked-words", tag = "admin",
    summary = "The instance-wide blocked words for comments (admins only; 404 to anyone else).",
    security(("oauth2" = ["admin"])),
    responses(
        (status = 200, description = "The list.", body = WordsJson),
        (status = 401, description = "`invalid_token`: an access token was sent and is not valid (no token at all is a 404).", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: an admin whose token does not grant `admin`.", body = ErrorBody),
        (status = 404, description = "Not an admin (or not signed in): there is nothing here for them.", body = ErrorBody),
    ))]
async fn instance_list(State(st): State<ApiState>, _admin: AdminUser) -> Result<Json<WordsJson>, ApiError> {
    Ok(Json(WordsJson { words: rows::blocked_words(&st.db, rows::INSTANCE).await? }))
}

/// Replaces the instance's list.
#[utoipa::path(put, path = "/admin/blocked-words", tag = "admin",
    summary = "Replaces the instance-wide blocked words (admins only). JSON only.",
    security(("oauth2" = ["admin"])),
    request_body(content = WordsJson, content_type = "application/json"),
    responses(
        (status = 200, description = "The list now, normalised.", body = WordsJson),
        (status = 400, description = "`invalid_json`, `invalid_word` or `too_many_words`.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: an access token was sent and is not valid (no token at all is a 404).", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: an admin whose token does not grant `admin`.", body = ErrorBody),
        (status = 404, description = "Not an admin (or not signed in): there is nothing here for them.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
async fn instance_set(
    State(st): State<ApiState>,
    _admin: AdminUser,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<WordsJson>, ApiError> {
    let w: WordsJson = channels::json_body(&headers, &body)?;
    Ok(Json(WordsJson { words: replace(&st, rows::INSTANCE, &w.words).await? }))
}

/// A channel's list.
#[utoipa::path(get, path = "/channels/{handle}/blocked-words", tag = "channels",
    summary = "A channel's blocked words for comments on its videos (its owner, or an admin).",
    security(("oauth2" = ["channels:write"])),
    params(("handle" = String, Path, description = "The channel's handle.")),
    responses(
        (status = 200, description = "The list.", body = WordsJson),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` (`channels:write`) or `not_your_channel`.", body = ErrorBody),
        (status = 404, description = "No such channel.", body = ErrorBody),
    ))]
async fn channel_list(
    State(st): State<ApiState>,
    user: Scoped<ChannelsWrite>,
    Path(handle): Path<String>,
) -> Result<Json<WordsJson>, ApiError> {
    let c = channels::find(&st, &handle).await?;
    channels::check_manage(&c, &user)?;
    Ok(Json(WordsJson { words: rows::blocked_words(&st.db, c.id).await? }))
}

/// Replaces a channel's list.
#[utoipa::path(put, path = "/channels/{handle}/blocked-words", tag = "channels",
    summary = "Replaces a channel's blocked words (its owner, or an admin). JSON only.",
    security(("oauth2" = ["channels:write"])),
    params(("handle" = String, Path, description = "The channel's handle.")),
    request_body(content = WordsJson, content_type = "application/json"),
    responses(
        (status = 200, description = "The list now, normalised.", body = WordsJson),
        (status = 400, description = "`invalid_json`, `invalid_word` or `too_many_words`.", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` (`channels:write`) or `not_your_channel`.", body = ErrorBody),
        (status = 404, description = "No such channel.", body = ErrorBody),
        (status = 413, description = "The body is too large.", body = ErrorBody),
        (status = 415, description = "The body is not JSON.", body = ErrorBody),
    ))]
async fn channel_set(
    State(st): State<ApiState>,
    user: Scoped<ChannelsWrite>,
    Path(handle): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<WordsJson>, ApiError> {
    let c = channels::find(&st, &handle).await?;
    channels::check_manage(&c, &user)?;
    let w: WordsJson = channels::json_body(&headers, &body)?;
    Ok(Json(WordsJson { words: replace(&st, c.id, &w.words).await? }))
}
