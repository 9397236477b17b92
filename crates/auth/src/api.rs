//! The auth service's JSON API for signed-in users and administrators, authenticated with the
//! user's Bearer access token (verified against our own keys, no session lookup), which must
//! grant the `account` scope (and `admin` for the administrators' audit) — a third-party client
//! the user allowed less gets 403 `insufficient_scope`:
//!
//! - `GET /auth/api/sessions`: the user's live SSO sessions; `DELETE /auth/api/sessions/{id}`
//!   revokes one and its refresh tokens (another user's id is simply not found);
//! - `GET /auth/api/audit?before=&limit=`: the user's own security events, newest first, paged
//!   by the `next` cursor;
//! - `GET /auth/api/admin/audit?user=&before=&limit=`: everyone's (or one user's), for
//!   administrators only (403 for others);
//! - `GET /auth/admin/audit`: the same as a page, for a signed-in administrator (404 for others).
//!
//! Errors are the project's `{"error", "message"}` JSON.

use crate::util::Requester;
use crate::{AuthState, sso};
use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use turtlemen_db::audit::{self, AuditEvent};
use turtlemen_db::users::{self, User};
use turtlemen_db::{Db, DbError, auth_sessions};
use turtlemen_domain::{RedirectTarget, Role, UserId, Username};
use turtlemen_http::ApiError;
use turtlemen_identity::{Scope, Scopes};
use turtlemen_web::recovery_pages::{self, AdminAuditView, AuditRow};
use uuid::Uuid;

/// The most events one page holds.
const MAX_PAGE: i64 = 100;

/// The user a valid Bearer access token names, and the session it was issued under.
pub struct Bearer {
    pub user: User,
    pub session_id: Option<Uuid>,
    /// What the token grants (`account` at least).
    pub scopes: Scopes,
}

/// 403 `insufficient_scope` with its RFC 6750 challenge.
fn insufficient_scope(scope: Scope) -> Response {
    let mut res = ApiError::new(
        StatusCode::FORBIDDEN,
        "insufficient_scope",
        format!("The access token does not grant the scope this needs: {scope}."),
    )
    .into_response();
    if let Ok(v) = header::HeaderValue::from_str(&format!(r#"Bearer error="insufficient_scope", scope="{scope}""#)) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

impl FromRequestParts<AuthState> for Bearer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AuthState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized().into_response())?;
        let claims = state
            .signer()
            .verify_access(token.trim(), &state.issuer)
            .map_err(|_| ApiError::unauthorized().into_response())?;
        let scopes = claims.scopes();
        if !scopes.grants(Scope::Account) {
            return Err(insufficient_scope(Scope::Account));
        }
        let id = Uuid::parse_str(&claims.sub).map_err(|_| ApiError::unauthorized().into_response())?;
        let user = users::find_by_id(&state.db, UserId(id))
            .await
            .map_err(|e| ApiError::from(e).into_response())?
            .ok_or_else(|| ApiError::unauthorized().into_response())?;
        Ok(Bearer { user, session_id: Uuid::parse_str(&claims.sid).ok(), scopes })
    }
}

pub async fn list_sessions(State(state): State<AuthState>, me: Bearer) -> Result<Response, ApiError> {
    let now = chrono::Utc::now();
    let sessions: Vec<serde_json::Value> = auth_sessions::list_for_user(&state.db, me.user.id)
        .await?
        .into_iter()
        .filter(|s| s.is_live(now, state.settings.sso_idle))
        .map(|s| {
            serde_json::json!({
                "id": s.id, "created": s.auth_time, "last_seen": s.last_seen_at, "expires": s.expires_at,
                "ip": s.ip, "user_agent": s.user_agent, "current": Some(s.id) == me.session_id,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "sessions": sessions })).into_response())
}

pub async fn delete_session(
    State(state): State<AuthState>,
    me: Bearer,
    who: Requester,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found())?;
    if !crate::sso::end_one(&state, me.user.id, id).await? {
        return Err(ApiError::not_found());
    }
    audit::record(&state.db, Some(me.user.id), "session_revoked", &who.ip, &who.user_agent, &id.to_string()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    before: Option<String>,
    limit: Option<i64>,
    user: Option<String>,
}

impl PageQuery {
    fn before(&self) -> Result<Option<Uuid>, ApiError> {
        match self.before.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => Uuid::parse_str(s)
                .map(Some)
                .map_err(|_| ApiError::bad_request("invalid_cursor", "before must be an event id from `next`.")),
        }
    }

    fn limit(&self) -> i64 {
        self.limit.unwrap_or(50).clamp(1, MAX_PAGE)
    }
}

fn event_json(e: &AuditEvent) -> serde_json::Value {
    serde_json::json!({
        "id": e.id, "time": e.created_at, "event": e.event, "user_id": e.user_id.map(|u| u.0),
        "ip": e.ip, "user_agent": e.user_agent, "detail": e.detail,
    })
}

/// One page and the cursor of the next (when this one is full).
async fn events_page(
    db: &Db,
    user: Option<UserId>,
    q: &PageQuery,
) -> Result<(Vec<AuditEvent>, Option<Uuid>), ApiError> {
    let limit = q.limit();
    let events = audit::page(db, user, q.before()?, limit).await?;
    let next = if events.len() as i64 == limit { events.last().map(|e| e.id) } else { None };
    Ok((events, next))
}

pub async fn own_audit(
    State(state): State<AuthState>,
    me: Bearer,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let (events, next) = events_page(&state.db, Some(me.user.id), &q).await?;
    let events: Vec<_> = events.iter().map(event_json).collect();
    Ok(Json(serde_json::json!({ "events": events, "next": next })).into_response())
}

/// The user an administrator's filter names: a username or a user id.
async fn named_user(db: &Db, text: &str) -> Result<Option<User>, DbError> {
    if let Ok(id) = Uuid::parse_str(text) {
        return users::find_by_id(db, UserId(id)).await;
    }
    match Username::parse(text) {
        Ok(name) => users::find_by_username(db, &name).await,
        Err(_) => Ok(None),
    }
}

pub async fn admin_audit(
    State(state): State<AuthState>,
    me: Bearer,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    if me.user.role != Role::Admin {
        return Err(ApiError::forbidden());
    }
    if !me.scopes.grants(Scope::Admin) {
        return Ok(insufficient_scope(Scope::Admin));
    }
    let filter = match q.user.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(named_user(&state.db, text).await?.ok_or_else(ApiError::not_found)?.id),
    };
    let (events, next) = events_page(&state.db, filter, &q).await?;
    let events: Vec<_> = events.iter().map(event_json).collect();
    Ok(Json(serde_json::json!({ "events": events, "next": next })).into_response())
}

/// The administrators' audit page (SSO session; anyone else finds nothing here).
pub async fn admin_audit_page(
    State(state): State<AuthState>,
    jar: CookieJar,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let Some((_, me)) = sso::current(&state, &jar).await? else {
        let to = RedirectTarget::parse_local("/auth/login?return_to=%2Fauth%2Fadmin%2Faudit")
            .unwrap_or_else(RedirectTarget::home);
        return Ok(crate::login::see_other(&to));
    };
    if me.role != Role::Admin {
        return Err(ApiError::not_found());
    }
    let typed = q.user.as_deref().map(str::trim).unwrap_or("").chars().take(64).collect::<String>();
    let (filter, error) = if typed.is_empty() {
        (None, None)
    } else {
        match named_user(&state.db, &typed).await? {
            Some(u) => (Some(u.id), None),
            None => (None, Some("No user has this name or id.")),
        }
    };
    let (events, next) = if error.is_some() { (vec![], None) } else { events_page(&state.db, filter, &q).await? };
    let mut names = std::collections::HashMap::new();
    let mut rows = Vec::with_capacity(events.len());
    for e in &events {
        let user = match e.user_id {
            None => "—".to_string(),
            Some(id) => match names.get(&id) {
                Some(name) => String::clone(name),
                None => {
                    let name =
                        users::find_by_id(&state.db, id).await?.map(|u| u.username).unwrap_or_else(|| id.to_string());
                    names.insert(id, name.clone());
                    name
                }
            },
        };
        rows.push(AuditRow {
            when: e.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            user,
            event: e.event.replace('_', " "),
            detail: e.detail.clone(),
            ip: e.ip.clone(),
            user_agent: e.user_agent.clone(),
        });
    }
    let older = next.map(|id| {
        let user: String = url::form_urlencoded::byte_serialize(typed.as_bytes()).collect();
        format!("/auth/admin/audit?user={user}&before={id}")
    });
    let html = recovery_pages::admin_audit_page(&AdminAuditView { user: &typed, rows, older, error });
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok(crate::login::page(status, html))
}
