//! Email verification: the link sent at registration (and again from the security page, a few
//! times an hour at most) marks the account's address confirmed; the `email_verified` claim of
//! ID tokens and userinfo follows it.
//!
//! A link confirms only the address it was sent to: if the account's address changed since,
//! it confirms nothing. Each link works once, for 24 hours.

use crate::account::{back_to_account, to_login};
use crate::email_links::{self, well_formed};
use crate::login::page;
use crate::util::{Requester, hash_token};
use crate::{AuthState, sso};
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use std::time::Duration;
use turtlemen_db::email_tokens::{self, Purpose};
use turtlemen_db::{audit, users};
use turtlemen_domain::{Email, RedirectTarget};
use turtlemen_http::ApiError;
use turtlemen_web::recovery_pages::{self, MessageView};

/// Links a user may ask for per hour from the security page.
const RESENDS_PER_HOUR: i64 = 3;

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    pub(crate) token: String,
}

/// A message page with one link on.
pub(crate) fn message(status: StatusCode, title: &str, message: &str, href: &str, text: &str) -> Response {
    let html = recovery_pages::message_page(&MessageView { title, message, link_href: href, link_text: text });
    page(status, html)
}

pub(crate) fn invalid_link() -> Response {
    message(
        StatusCode::BAD_REQUEST,
        "This link does not work",
        "It was already used, has expired, or was not copied whole. You can ask for a new one.",
        "/auth/account",
        "Go to your account",
    )
}

pub async fn get_verify_email(
    State(state): State<AuthState>,
    who: Requester,
    Query(q): Query<TokenQuery>,
) -> Result<Response, ApiError> {
    if !well_formed(&q.token) {
        return Ok(invalid_link());
    }
    let Some(link) = email_tokens::take(&state.db, &hash_token(&q.token), Purpose::VerifyEmail).await? else {
        return Ok(invalid_link());
    };
    let confirmed = match Email::parse(&link.email) {
        Ok(email) => users::mark_email_verified(&state.db, link.user_id, &email).await?,
        Err(_) => false,
    };
    if !confirmed {
        return Ok(invalid_link());
    }
    audit::record(&state.db, Some(link.user_id), "email_verified", &who.ip, &who.user_agent, "").await?;
    tracing::info!(security.event = "email_verified", user.id = %link.user_id, "email address confirmed");
    let next = RedirectTarget::parse_local(&link.return_to)
        .map(|t| {
            format!(
                "/auth/login?return_to={}",
                url::form_urlencoded::byte_serialize(t.as_str().as_bytes()).collect::<String>()
            )
        })
        .unwrap_or_else(|| "/auth/account".into());
    Ok(message(
        StatusCode::OK,
        "Email address confirmed",
        "Thank you: your email address is confirmed.",
        &next,
        "Continue",
    ))
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// The security page's "send the confirmation link again".
pub async fn resend(
    State(state): State<AuthState>,
    jar: CookieJar,
    who: Requester,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "csrf_failed", "The form expired; please try again."));
    }
    let Some((_, user)) = sso::current(&state, &jar).await? else { return Ok(to_login()) };
    if user.email_verified {
        return Ok(back_to_account("verified"));
    }
    let key = format!("mail:verify:{}", user.id);
    let sent = state.store.incr(&key, Duration::from_secs(3600)).await.map_err(crate::login::store_error)?;
    if sent > RESENDS_PER_HOUR {
        return Ok(back_to_account("verify_limit"));
    }
    email_links::send_verification(&state, &user, "").await?;
    audit::record(&state.db, Some(user.id), "verification_sent", &who.ip, &who.user_agent, "").await?;
    Ok((jar, back_to_account("verify_sent")).into_response())
}
