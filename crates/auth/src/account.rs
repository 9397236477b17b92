//! The account security page: where the user is signed in (each session revocable), password
//! change, and their recent security events.
//!
//! Changing the password needs the current one (counted by the brute-force protection like a
//! sign-in) and ends every other session with its refresh tokens and the gateway sessions built
//! on it ([`sso::end_others`]); "Sign out this session" ends one the same way ([`sso::end_one`]).

use crate::bruteforce::Subject;
use crate::login::{page, report_lockouts, see_other, store_error, verify_password};
use crate::util::Requester;
use crate::{AuthState, passwords, sso};
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use turtlemen_db::auth_sessions::AuthSession;
use turtlemen_db::users::{self, User};
use turtlemen_db::{audit, auth_sessions};
use turtlemen_domain::RedirectTarget;
use turtlemen_http::ApiError;
use turtlemen_web::auth_pages::{self, AccountView, EventRow, PasswordChangeErrors, SessionRow};

pub(crate) fn to_login() -> Response {
    see_other(
        &RedirectTarget::parse_local("/auth/login?return_to=%2Fauth%2Faccount").unwrap_or_else(RedirectTarget::home),
    )
}

/// What `?done=` on the security page confirms (a fixed message, never the query's text).
#[derive(Debug, Deserialize)]
pub struct Done {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "password" => Some("Your password was changed. Every other session was signed out."),
        "totp_off" => Some("Two-step verification is off."),
        "linked" => Some("The provider is linked: you can sign in with it."),
        "unlinked" => Some("The provider is unlinked."),
        "verify_sent" => Some("We sent a new confirmation link to your email address."),
        "verify_limit" => Some("We already sent several links recently; please check your mail or try again later."),
        _ => None,
    }
}

pub(crate) fn back_to_account(done: &str) -> Response {
    see_other(&RedirectTarget::parse_local(&format!("/auth/account?done={done}")).unwrap_or_else(RedirectTarget::home))
}

pub async fn get_account(
    State(state): State<AuthState>,
    jar: CookieJar,
    Query(q): Query<Done>,
) -> Result<Response, ApiError> {
    let Some((current, user)) = sso::current(&state, &jar).await? else { return Ok(to_login()) };
    let view = Extras { notice: notice(q.done.as_deref()), ..Extras::default() };
    render(&state, jar, &current, &user, view, StatusCode::OK).await
}

/// The parts of the security page that depend on what was just submitted.
#[derive(Default)]
pub(crate) struct Extras {
    pub notice: Option<&'static str>,
    pub password_errors: PasswordChangeErrors,
    pub totp_error: Option<String>,
}

pub(crate) async fn render(
    state: &AuthState,
    jar: CookieJar,
    current: &AuthSession,
    user: &User,
    extras: Extras,
    status: StatusCode,
) -> Result<Response, ApiError> {
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
    let has_password = users::password_hash(&state.db, user.id).await?.is_some();
    let totp_enabled = turtlemen_db::totp::is_enabled(&state.db, user.id).await?;
    let recovery_codes_left =
        if totp_enabled { turtlemen_db::totp::recovery_codes_left(&state.db, user.id).await? } else { 0 };
    let identities = crate::broker::identity_rows(state, user.id).await?;
    let (jar, csrf) = state.csrf.token(jar);
    let html = auth_pages::account_page(&AccountView {
        identities,
        providers: crate::broker::buttons(state),
        csrf: &csrf,
        username: &user.username,
        email: &user.email,
        email_verified: user.email_verified,
        notice: extras.notice,
        has_password,
        password_errors: extras.password_errors,
        totp_enabled,
        recovery_codes_left,
        totp_error: extras.totp_error,
        sessions,
        events,
    });
    Ok((jar, page(status, html)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// Changes the password: the current one (counted by the brute-force protection), the policy
/// for the new one; then every other session ends.
pub async fn change_password(
    State(state): State<AuthState>,
    jar: CookieJar,
    who: Requester,
    Form(form): Form<PasswordForm>,
) -> Result<Response, ApiError> {
    let Some((current, user)) = sso::current(&state, &jar).await? else { return Ok(to_login()) };
    let mut errors = PasswordChangeErrors::default();
    if !state.csrf.verify(&jar, &form.csrf) {
        errors.form = Some("Your form expired. Please try again.".into());
        let extras = Extras { password_errors: errors, ..Extras::default() };
        return render(&state, jar, &current, &user, extras, StatusCode::FORBIDDEN).await;
    }
    if form.new_password.len() > 1024 {
        errors.new_password = Some(passwords::PasswordError::TooLong.to_string());
    } else if let Err(e) = passwords::check_policy(&form.new_password) {
        errors.new_password = Some(e.to_string());
    }
    let wrong = "Incorrect password.";
    let stored = users::password_hash(&state.db, user.id).await?;
    if form.current_password.len() > 1024 {
        errors.current_password = Some(wrong.into());
    } else {
        match state.throttle().begin(&Subject::Account(user.id), &who.ip).await.map_err(store_error)? {
            Err(_) => {
                audit::record(&state.db, Some(user.id), "password_change_failed", &who.ip, &who.user_agent, "locked")
                    .await?;
                errors.current_password = Some(wrong.into());
            }
            Ok(attempt) => {
                let hash = stored.clone().unwrap_or_else(|| state.dummy_hash.clone());
                if stored.is_some() && verify_password(form.current_password.clone(), hash).await {
                    state.throttle().succeeded(attempt).await.map_err(store_error)?;
                } else {
                    let lockouts = state.throttle().failed(attempt).await.map_err(store_error)?;
                    audit::record(&state.db, Some(user.id), "password_change_failed", &who.ip, &who.user_agent, "")
                        .await?;
                    report_lockouts(&state, Some(user.id), &lockouts, &who).await?;
                    errors.current_password = Some(wrong.into());
                }
            }
        }
    }
    if errors.current_password.is_some() || errors.new_password.is_some() {
        let extras = Extras { password_errors: errors, ..Extras::default() };
        return render(&state, jar, &current, &user, extras, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let new_password = form.new_password;
    let hash = passwords::run(move || passwords::hash(&new_password))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))?;
    users::set_password_hash(&state.db, user.id, &hash).await?;
    let ended = sso::end_others(&state, user.id, current.id).await?;
    audit::record(
        &state.db,
        Some(user.id),
        "password_changed",
        &who.ip,
        &who.user_agent,
        &format!("{ended} other sessions ended"),
    )
    .await?;
    tracing::info!(security.event = "password_changed", user.id = %user.id, sessions.ended = ended, "password changed");
    Ok(back_to_account("password"))
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
    if !sso::end_one(&state, user.id, id).await? {
        return Err(ApiError::not_found());
    }
    audit::record(&state.db, Some(user.id), "session_revoked", &who.ip, &who.user_agent, &id.to_string()).await?;
    Ok(see_other(&RedirectTarget::parse_local("/auth/account").unwrap_or_else(RedirectTarget::home)))
}
