//! The admin API: the job queue's state (`GET /api/v1/admin/jobs`, one job, and retrying a
//! queued or failed one now). Only users with the admin role; anyone else is told the route
//! does not exist (404), so its presence leaks nothing. An admin's token must also grant the
//! `admin` scope (the gateway's first-party session always does; a third-party client needs the
//! admin's consent to it), else 403 `insufficient_scope`.

use crate::ApiState;
use crate::identity::{CurrentUser, Scoped, Signed};
use axum::Json;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use turtlemen_db::jobs::{self, JobFilter, JobState, JobSummary};
use turtlemen_domain::Role;
use turtlemen_http::{ApiError, ErrorBody};
use turtlemen_identity::Scope;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The admin routes, each with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(one)).routes(routes!(retry))
}

/// The caller: an admin whose token grants the `admin` scope. Anyone else is told 404 (the
/// route does not exist for them); an admin whose token lacks the scope gets 403.
pub(crate) struct AdminUser(pub(crate) CurrentUser);

impl FromRequestParts<ApiState> for AdminUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Response> {
        let user = <Scoped<Signed> as OptionalFromRequestParts<ApiState>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?
            .filter(|u| u.0.0.role == Role::Admin)
            .ok_or_else(|| ApiError::not_found().into_response())?;
        user.require(Scope::Admin).map_err(IntoResponse::into_response)?;
        Ok(AdminUser(user.0))
    }
}

/// A job as admins see it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Job)]
pub struct JobView {
    pub id: Uuid,
    pub kind: String,
    /// queued, running, succeeded or failed.
    #[schema(value_type = String, pattern = "^(queued|running|succeeded|failed)$")]
    pub state: &'static str,
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at: DateTime<Utc>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// With ffmpeg's last words for transcodes.
    pub last_error: Option<String>,
    pub key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The trace of the request (or job) that queued it, as 32 hex digits: its log lines, and
    /// the job's, carry `trace.id` with this value.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub trace_id: Option<String>,
}

impl From<JobSummary> for JobView {
    fn from(j: JobSummary) -> JobView {
        JobView {
            id: j.id,
            kind: j.kind,
            state: j.state.as_str(),
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            run_at: j.run_at,
            lease_expires_at: j.lease_expires_at,
            last_error: j.last_error,
            key: j.idempotency_key,
            created_at: j.created_at,
            updated_at: j.updated_at,
            trace_id: j
                .traceparent
                .as_deref()
                .and_then(|t| turtlemen_domain::trace::parse(t.as_bytes()))
                .map(|p| format!("{:032x}", p.trace_id)),
        }
    }
}

/// `GET /admin/jobs`'s query.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// queued, running, succeeded or failed.
    state: Option<String>,
    /// Only jobs of this kind (`transcode`, …).
    kind: Option<String>,
    /// 1 to 500 (100 by default; larger values are taken as 500).
    limit: Option<u32>,
}

/// Jobs, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct JobList {
    jobs: Vec<JobView>,
}

/// The job queue.
#[utoipa::path(get, path = "/admin/jobs", tag = "admin",
    summary = "The job queue, newest first (admins only; 404 to anyone else).",
    security(("oauth2" = ["admin"])),
    params(ListQuery),
    responses(
        (status = 200, description = "Jobs, newest first.", body = JobList),
        (status = 400, description = "`invalid_state`, or a malformed query.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: an access token was sent and is not valid (no token at all is a 404).", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: an admin whose token does not grant `admin`.", body = ErrorBody),
        (status = 404, description = "Not an admin (or not signed in): there is nothing here for them.", body = ErrorBody),
    ))]
async fn list(
    State(st): State<ApiState>,
    _admin: AdminUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<JobList>, ApiError> {
    let state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(JobState::parse(s).ok_or_else(|| {
            ApiError::bad_request("invalid_state", "state is one of queued, running, succeeded, failed.")
        })?),
    };
    let filter = JobFilter { state, kind: q.kind.as_deref(), limit: q.limit.unwrap_or(100).clamp(1, 500) };
    let jobs: Vec<JobView> = jobs::list(&st.db, &filter).await?.into_iter().map(JobView::from).collect();
    Ok(Json(JobList { jobs }))
}

/// One job.
#[utoipa::path(get, path = "/admin/jobs/{id}", tag = "admin",
    summary = "One job (admins only).",
    security(("oauth2" = ["admin"])),
    params(("id" = String, Path, description = "The job.")),
    responses(
        (status = 200, description = "The job.", body = JobView),
        (status = 401, description = "`invalid_token`: an access token was sent and is not valid (no token at all is a 404).", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: an admin whose token does not grant `admin`.", body = ErrorBody),
        (status = 404, description = "No such job, or not an admin.", body = ErrorBody),
    ))]
async fn one(State(st): State<ApiState>, _admin: AdminUser, Path(id): Path<String>) -> Result<Json<JobView>, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found())?;
    let job = jobs::get(&st.db, id).await?.ok_or_else(ApiError::not_found)?;
    Ok(Json(job.into()))
}

/// Runs a job again now.
#[utoipa::path(post, path = "/admin/jobs/{id}/retry", tag = "admin",
    summary = "Runs a queued or failed job again now (admins only).",
    security(("oauth2" = ["admin"])),
    params(("id" = String, Path, description = "The job.")),
    responses(
        (status = 204, description = "Queued."),
        (status = 401, description = "`invalid_token`: an access token was sent and is not valid (no token at all is a 404).", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`: an admin whose token does not grant `admin`.", body = ErrorBody),
        (status = 404, description = "No such job, or not an admin.", body = ErrorBody),
        (status = 409, description = "`not_retryable`: running or succeeded jobs are not retried.", body = ErrorBody),
    ))]
async fn retry(
    State(st): State<ApiState>,
    AdminUser(who): AdminUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found())?;
    if !jobs::retry_now(&st.db, id).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_retryable",
            "Only a queued or failed job can be retried.",
        ));
    }
    tracing::info!(job.id = %id, user.id = %who.0.id.0, "job retried by an admin");
    Ok(StatusCode::NO_CONTENT)
}
