//! Password reset: "forgot password" asks for a username or email and always gives the same
//! answer at the same speed (the lookup and the mail happen after the answer, in a task), so it
//! tells nobody whether an account exists. A matching account gets a single-use link for 30
//! minutes (at most three links per quarter hour; the gateway lets one client address post the
//! form five times per quarter hour, whatever accounts it names); the link opens a form for a new password
//! under the usual policy. Setting it ends every session and refresh token of the account (and
//! every gateway session built on them: [`crate::sso::end_all_sessions`]),
//! voids its other reset links, clears its brute-force lockout and confirms the address the link
//! reached.
//!
//! Never: an answer or a timing that depends on whether the account exists; the link in a log.

use crate::email_links::{self, well_formed};
use crate::login::{find_account, page};
use crate::mail::Mail;
use crate::util::{Requester, hash_token};
use crate::verify_email::{TokenQuery, invalid_link, message};
use crate::{AuthState, passwords};
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use std::time::Duration;
use turtlemen_db::email_tokens::{self, Purpose};
use turtlemen_db::{DbError, audit, users};
use turtlemen_domain::Email;
use turtlemen_http::ApiError;
use turtlemen_web::recovery_pages::{self, ForgotView, ResetView};

/// Reset links one account may be sent per quarter hour.
const LINKS_PER_QUARTER: i64 = 3;

fn forgot(state: &AuthState, jar: CookieJar, status: StatusCode, view: ForgotView<'_>) -> Response {
    let (jar, csrf) = state.csrf.token(jar);
    let html = recovery_pages::forgot_page(&ForgotView { csrf: &csrf, ..view });
    (jar, page(status, html)).into_response()
}

pub async fn get_forgot(State(state): State<AuthState>, jar: CookieJar) -> Response {
    forgot(&state, jar, StatusCode::OK, ForgotView { csrf: "", name: "", error: None, sent: false })
}

#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

pub async fn post_forgot(
    State(state): State<AuthState>,
    jar: CookieJar,
    who: Requester,
    Form(form): Form<ForgotForm>,
) -> Response {
    let name: String = form.name.trim().chars().take(254).collect();
    if !state.csrf.verify(&jar, &form.csrf) {
        let error = Some("Your form expired. Please try again.");
        return forgot(&state, jar, StatusCode::FORBIDDEN, ForgotView { csrf: "", name: &name, error, sent: false });
    }
    if name.is_empty() || form.name.len() > 254 {
        let error = Some("Enter your username or email address.");
        return forgot(
            &state,
            jar,
            StatusCode::UNPROCESSABLE_ENTITY,
            ForgotView { csrf: "", name: &name, error, sent: false },
        );
    }
    // The answer does not wait for the lookup or the mail: same page, same time, either way.
    let task_state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = request_reset(&task_state, &name, &who).await {
            tracing::warn!(error = %e, "a password reset request failed");
        }
    });
    forgot(&state, jar, StatusCode::OK, ForgotView { csrf: "", name: "", error: None, sent: true })
}

/// Finds the account and mails it a link (within the rate limit).
async fn request_reset(state: &AuthState, name: &str, who: &Requester) -> Result<(), DbError> {
    let Some(user) = find_account(state, name).await? else {
        tracing::info!(user.known = false, client.ip = %who.ip, "password reset asked for no account");
        return Ok(());
    };
    let key = format!("mail:reset:{}", user.id);
    let count = match state.store.incr(&key, Duration::from_secs(15 * 60)).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "session store error counting reset links; none sent");
            return Ok(());
        }
    };
    if count > LINKS_PER_QUARTER {
        audit::record(&state.db, Some(user.id), "password_reset_requested", &who.ip, &who.user_agent, "rate limited")
            .await?;
        return Ok(());
    }
    let link = email_links::issue(state, &user, Purpose::ResetPassword, "", "reset-password").await?;
    let body = format!(
        "Hello {},\n\nSomeone (hopefully you) asked to set a new password for your Turtlemen account.\n\
         Open this link within 30 minutes to choose one:\n\n{link}\n\n\
         If you did not ask, ignore this message: your password stays as it is.\n",
        user.username
    );
    let mail = Mail { to: user.email.clone(), subject: "Set a new password".into(), body };
    let sent = email_links::send(state, Some(&user), mail).await;
    audit::record(
        &state.db,
        Some(user.id),
        "password_reset_requested",
        &who.ip,
        &who.user_agent,
        if sent { "link sent" } else { "sending failed" },
    )
    .await
}

fn reset_form(state: &AuthState, jar: CookieJar, status: StatusCode, view: ResetView<'_>) -> Response {
    let (jar, csrf) = state.csrf.token(jar);
    let html = recovery_pages::reset_page(&ResetView { csrf: &csrf, ..view });
    let mut res = (jar, page(status, html)).into_response();
    res.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    res
}

pub async fn get_reset(
    State(state): State<AuthState>,
    jar: CookieJar,
    Query(q): Query<TokenQuery>,
) -> Result<Response, ApiError> {
    // Opening the link does not use it (mail scanners open links); setting the password does.
    if !well_formed(&q.token)
        || email_tokens::peek(&state.db, &hash_token(&q.token), Purpose::ResetPassword).await?.is_none()
    {
        return Ok(invalid_link());
    }
    Ok(reset_form(&state, jar, StatusCode::OK, ResetView { csrf: "", token: &q.token, error: None, form_error: None }))
}

#[derive(Debug, Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
}

pub async fn post_reset(
    State(state): State<AuthState>,
    jar: CookieJar,
    who: Requester,
    Form(form): Form<ResetForm>,
) -> Result<Response, ApiError> {
    if !well_formed(&form.token) {
        return Ok(invalid_link());
    }
    if !state.csrf.verify(&jar, &form.csrf) {
        let form_error = Some("Your form expired. Please try again.");
        let view = ResetView { csrf: "", token: &form.token, error: None, form_error };
        return Ok(reset_form(&state, jar, StatusCode::FORBIDDEN, view));
    }
    let policy = if form.new_password.len() > 1024 {
        Err(passwords::PasswordError::TooLong)
    } else {
        passwords::check_policy(&form.new_password)
    };
    if let Err(e) = policy {
        let error = e.to_string();
        let view = ResetView { csrf: "", token: &form.token, error: Some(&error), form_error: None };
        return Ok(reset_form(&state, jar, StatusCode::UNPROCESSABLE_ENTITY, view));
    }
    let Some(link) = email_tokens::take(&state.db, &hash_token(&form.token), Purpose::ResetPassword).await? else {
        return Ok(invalid_link());
    };
    let new_password = form.new_password;
    let hash = passwords::run(move || passwords::hash(&new_password))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))?;
    let user = link.user_id;
    users::set_password_hash(&state.db, user, &hash).await?;
    let ended = crate::sso::end_all_sessions(&state.db, &state.store, user).await?;
    email_tokens::void_all(&state.db, user, Purpose::ResetPassword).await?;
    if let Ok(email) = Email::parse(&link.email) {
        users::mark_email_verified(&state.db, user, &email).await?;
    }
    state.throttle().clear_account(user).await.map_err(crate::login::store_error)?;
    audit::record(
        &state.db,
        Some(user),
        "password_reset",
        &who.ip,
        &who.user_agent,
        &format!("{ended} sessions ended"),
    )
    .await?;
    tracing::info!(security.event = "password_reset", user.id = %user, sessions.ended = ended, "password reset");
    let jar = crate::sso::clear(&state, jar);
    let done = message(
        StatusCode::OK,
        "Your password is changed",
        "Every session of your account was signed out. Sign in with your new password.",
        "/auth/login",
        "Sign in",
    );
    Ok((jar, done).into_response())
}
