//! `POST /api/v1/reports` (anyone signed in), and the moderators' queue:
//! `GET /api/v1/admin/reports` and `POST /api/v1/admin/reports/{target}/{id}`.
//!
//! [`file`] and [`queue_page`] are also what the pages call, so validation, visibility, the
//! rate limit and the cursor are decided once.

use super::actions::{self, Action};
use super::targets::{self, Described};
use super::{Actor, Moderator};
use crate::ApiState;
use crate::cursor::{self, Kind as CursorKind};
use crate::identity::{CurrentUser, Scoped, Signed};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use std::time::Duration;
use turtlemen_db::reports::{self, Filed, TargetKind, TargetReports};
use turtlemen_http::{ApiError, ErrorBody};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The report routes, each with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(create)).routes(routes!(queue)).routes(routes!(resolve))
}

/// Longest reason a reporter may give.
pub const MAX_REASON_CHARS: usize = 1000;
/// Reports one account may file per [`RATE_WINDOW`] (repeats included).
pub const RATE_LIMIT: i64 = 20;
/// The rate limit's window.
pub const RATE_WINDOW: Duration = Duration::from_secs(3600);
/// Targets per queue page.
pub const QUEUE_PAGE: u32 = 20;

/// `POST /reports`'s body.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = NewReport)]
pub struct NewReport {
    /// What is reported.
    pub target: TargetKind,
    /// The video's, comment's or user's id.
    pub id: Uuid,
    /// Why, in the reporter's words.
    #[schema(min_length = 1, max_length = 1000)]
    pub reason: String,
}

/// A filed report.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = FiledReport)]
pub struct FiledJson {
    /// The open report.
    pub id: Uuid,
    /// `false`: the caller had reported this target already and it is still open; nothing was added.
    pub created: bool,
}

/// Files `reporter`'s report (see [`create`]'s description for every rule).
pub async fn file(
    st: &ApiState,
    reporter: &CurrentUser,
    kind: TargetKind,
    id: Uuid,
    reason: &str,
) -> Result<Filed, ApiError> {
    let reason = super::check_text("reason", reason, MAX_REASON_CHARS)?;
    let key = format!("report-rate:{}", reporter.0.id);
    let count = st.sessions.incr(&key, RATE_WINDOW).await.map_err(|e| {
        tracing::error!(error = %e, "session store error while rate-limiting reports");
        ApiError::unavailable("Reporting is temporarily unavailable; try again shortly.")
    })?;
    if count > RATE_LIMIT {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "You have sent many reports in a short time; try again later.",
        ));
    }
    targets::check_reportable(st, reporter, kind, id).await?;
    let filed = reports::file(&st.db, reporter.0.id, kind, id, &reason).await?;
    if filed.created {
        tracing::info!(report.id = %filed.id, target.kind = kind.as_str(), target.id = %id, "report filed");
    }
    Ok(filed)
}

/// Files a report.
#[utoipa::path(post, path = "/reports", tag = "moderation",
    summary = "Reports a video, comment or user to the moderators. One open report per reporter and target: a repeat answers the open one (200). At most 20 reports an hour.",
    security(("oauth2" = [])),
    request_body(content = NewReport, content_type = "application/json"),
    responses(
        (status = 201, description = "Filed.", body = FiledJson),
        (status = 200, description = "Already reported by the caller and still open; nothing added.", body = FiledJson),
        (status = 400, description = "`invalid_json`, `invalid_reason` (1 to 1,000 characters, no control or direction characters).", body = ErrorBody),
        (status = 401, description = "Not signed in.", body = ErrorBody),
        (status = 403, description = "`account_banned`: the caller's account is banned.", body = ErrorBody),
        (status = 404, description = "No such target, or not one the caller may see.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not JSON.", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many reports in the last hour.", body = ErrorBody),
    ))]
async fn create(
    State(st): State<ApiState>,
    user: Scoped<Signed>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let new: NewReport = crate::channels::json_body(&headers, &body)?;
    let filed = file(&st, &user, new.target, new.id, &new.reason).await?;
    let status = if filed.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(FiledJson { id: filed.id, created: filed.created })).into_response())
}

/// One report in the queue.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = QueuedReport)]
pub struct ReportJson {
    pub id: Uuid,
    /// The reporter's username.
    pub reporter: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// A reported target with its open reports, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ReportedTargetReports)]
pub struct TargetJson {
    pub target: TargetKind,
    pub id: Uuid,
    /// When it was last reported.
    pub latest: DateTime<Utc>,
    #[serde(flatten)]
    pub described: Described,
    pub reports: Vec<ReportJson>,
}

/// A page of the queue.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ReportQueue)]
pub struct QueueJson {
    pub targets: Vec<TargetJson>,
    /// The next page's `cursor`; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /admin/reports`'s query.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

async fn to_json(st: &ApiState, t: TargetReports) -> Result<TargetJson, ApiError> {
    Ok(TargetJson {
        target: t.kind,
        id: t.id,
        latest: t.latest,
        described: targets::describe(st, t.kind, t.id).await?,
        reports: t
            .reports
            .into_iter()
            .map(|r| ReportJson { id: r.id, reporter: r.reporter_username, reason: r.reason, created_at: r.created_at })
            .collect(),
    })
}

/// A page of open reports grouped by target, the most recently reported first.
pub async fn queue_page(st: &ApiState, cursor_text: Option<&str>) -> Result<QueueJson, ApiError> {
    let after = match cursor_text.filter(|c| !c.is_empty()) {
        Some(text) => {
            let (key, id) = cursor::decode(st, CursorKind::Reports, text)?;
            Some((cursor::key_time(key), id))
        }
        None => None,
    };
    let groups = reports::queue(&st.db, after, QUEUE_PAGE).await?;
    let next_cursor = (groups.len() == QUEUE_PAGE as usize)
        .then(|| groups.last().map(|g| cursor::encode(st, CursorKind::Reports, cursor::time_key(g.latest), g.id)))
        .flatten();
    let mut targets = Vec::with_capacity(groups.len());
    for g in groups {
        targets.push(to_json(st, g).await?);
    }
    Ok(QueueJson { targets, next_cursor })
}

/// The queue.
#[utoipa::path(get, path = "/admin/reports", tag = "moderation",
    summary = "Open reports grouped by target, the most recently reported first (moderators and admins; 404 to anyone else).",
    security(("oauth2" = ["moderation"])),
    params(QueueQuery),
    responses(
        (status = 200, description = "A page of the queue.", body = QueueJson),
        (status = 400, description = "`invalid_cursor`.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: an access token was sent and is not valid (no token at all is a 404).", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: a moderator whose token does not grant `moderation`; `account_banned`.", body = ErrorBody),
        (status = 404, description = "Not a moderator (or not signed in): there is nothing here for them.", body = ErrorBody),
    ))]
async fn queue(
    State(st): State<ApiState>,
    _moderator: Moderator,
    Query(q): Query<QueueQuery>,
) -> Result<Json<QueueJson>, ApiError> {
    Ok(Json(queue_page(&st, q.cursor.as_deref()).await?))
}

/// `POST /admin/reports/{target}/{id}`'s body.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = ModerationDecision)]
pub struct Decision {
    pub action: Action,
    /// The reason shown to the owner (hide), the warning's words (warn: required), or the ban's
    /// reason (kept for moderators).
    #[schema(max_length = 1000)]
    pub message: Option<String>,
}

/// What a decision resolved.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ModerationOutcome)]
pub struct Outcome {
    pub action: Action,
    /// Open reports of the target now resolved.
    pub resolved: u64,
}

/// Parses a target kind from a path segment (`video`, `comment`, `user`), else 404.
pub fn parse_kind(s: &str) -> Result<TargetKind, ApiError> {
    TargetKind::parse(s).ok_or_else(ApiError::not_found)
}

/// Acts on a reported target.
#[utoipa::path(post, path = "/admin/reports/{target}/{id}", tag = "moderation",
    summary = "Acts on a target: hide or delete the content, dismiss the reports, warn or ban its owner; every open report of it is resolved, recording who and how (moderators and admins).",
    security(("oauth2" = ["moderation"])),
    params(
        ("target" = String, Path, description = "video, comment or user."),
        ("id" = String, Path, description = "The target's id."),
    ),
    request_body(content = Decision, content_type = "application/json"),
    responses(
        (status = 200, description = "Done.", body = Outcome),
        (status = 400, description = "`invalid_json`, `invalid_message`, `invalid_action` (hide or delete of a user).", body = ErrorBody),
        (status = 401, description = "`invalid_token`: an access token was sent and is not valid (no token at all is a 404).", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`; `not_allowed`: banning an account of an equal or higher role, or oneself; `account_banned`.", body = ErrorBody),
        (status = 404, description = "No such target, or not a moderator.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not JSON.", body = ErrorBody),
    ))]
async fn resolve(
    State(st): State<ApiState>,
    Moderator(moderator): Moderator,
    Path((target, id)): Path<(String, String)>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Result<Json<Outcome>, ApiError> {
    let kind = parse_kind(&target)?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found())?;
    let decision: Decision = crate::channels::json_body(&headers, &body)?;
    let actor = Actor::of(&st, &moderator, &headers, super::peer(&extensions));
    let resolved =
        actions::act(&st, &moderator, &actor, kind, id, decision.action, decision.message.as_deref()).await?;
    Ok(Json(Outcome { action: decision.action, resolved }))
}
