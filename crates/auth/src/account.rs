//! The account security page: where the user is signed in (each session revocable) and their
//! recent security events.

use crate::login::{page, see_other};
use crate::util::Requester;
use crate::{AuthState, sso};
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use turtlemen_db::{audit, auth_sessions};
use turtlemen_domain::RedirectTarget;
use turtlemen_http::ApiError;
use turtlemen_web::auth_pages::{self, AccountView, EventRow, SessionRow};

fn to_login() -> Response {
    see_other(
        &RedirectTarget::parse_local("/auth/login?return_to=%2Fauth%2Faccount").unwrap_or_else(RedirectTarget::home),
    )
}

pub async fn get_account(State(state): State<AuthState>, jar: CookieJar) -> Result<Response, ApiError> {
    let Some((current, user)) = sso::current(&state, &jar).await? else { return Ok(to_login()) };
    let sessions = auth_sessions::list_for_user(&state.db, user.id)
        .await?
        .into_iter()
        .filter(|s| s.is_live(chrono::Utc::now(), state.settings.sso_idle))
        .map(|s| SessionRow {
            id: s.id.to_string(),
            current: s.id == current.id,
            ip: s.ip,
            user_agent: if s.user_agent.is_empty() { "Unknown browser".into() } else { s.user_agent },
            started: s.auth_time.format("%Y-%m-%d %H:%M UTC").to_string(),
        })
        .collect();
    let events = audit::for_user(&state.db, user.id, 50)
        .await?
        .into_iter()
        .map(|e| EventRow {
            when: e.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            event: e.event.replace('_', " "),
            ip: e.ip,
            user_agent: e.user_agent,
        })
        .collect();
    let (jar, csrf) = state.csrf.token(jar);
    let html = auth_pages::account_page(&AccountView { csrf: &csrf, username: &user.username, sessions, events });
    Ok((jar, page(StatusCode::OK, html)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn revoke_session(
    State(state): State<AuthState>,
    jar: CookieJar,
    who: Requester,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "csrf_failed", "The form expired; please try again."));
    }
    let Some((_, user)) = sso::current(&state, &jar).await? else { return Ok(to_login()) };
    let id = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::not_found())?;
    // Only the user's own sessions: another user's id is simply not found.
    if !auth_sessions::revoke(&state.db, user.id, id).await? {
        return Err(ApiError::not_found());
    }
    audit::record(&state.db, Some(user.id), "session_revoked", &who.ip, &who.user_agent, &id.to_string()).await?;
    Ok(see_other(&RedirectTarget::parse_local("/auth/account").unwrap_or_else(RedirectTarget::home)))
}
