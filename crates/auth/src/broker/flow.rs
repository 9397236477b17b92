//! The HTTP side of brokering: `POST /auth/broker/{provider}/start` ("Sign in with …", from the
//! login page), `POST /auth/account/providers/{provider}/link` (from the security page),
//! `GET /auth/broker/{provider}/callback`, and `POST /auth/account/identities/{id}/unlink`.
//!
//! Every start is a POST with a CSRF token. The callback checks, in order: the provider exists;
//! the `state` in the query is the one in this browser's cookie; the flow record is taken (single
//! use, so a replayed callback finds nothing); it was started for this provider; the provider
//! sent no `error`; then the code is exchanged and the identity verified. Any failure is an error
//! page (4xx, or 502 when the provider itself fails) and stores nothing.
//!
//! A successful login starts the SSO session like a password login (or parks it for the second
//! factor when the account has one) and continues to the flow's `return_to`, so an OIDC
//! authorization request that sent the browser to the login page resumes.

use super::link::{self, LinkOutcome, LoginOutcome};
use super::{BrokerError, PendingFlow, shown_error};
use crate::login::{page, see_other, store_error};
use crate::util::{Requester, hash_token};
use crate::{AuthState, sso};
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use turtlemen_config::IdentityProvider;
use turtlemen_db::audit;
use turtlemen_db::identities::{self, Unlinked};
use turtlemen_domain::{RedirectTarget, UserId};
use turtlemen_http::ApiError;
use turtlemen_web::auth_pages::{self, NoticeView};

/// How long a started flow waits for its callback.
const FLOW_TTL: std::time::Duration = std::time::Duration::from_secs(10 * 60);
const COOKIE_PATH: &str = "/auth/broker";

fn cookie_name(secure: bool) -> &'static str {
    if secure { "__Secure-turtlemen_broker" } else { "turtlemen_broker" }
}

fn flow_key(state: &str) -> String {
    format!("broker:{}", hash_token(state))
}

fn local(path: &str) -> RedirectTarget {
    RedirectTarget::parse_local(path).unwrap_or_else(RedirectTarget::home)
}

fn csrf_failed() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "csrf_failed", "The form expired; please go back and try again.")
}

/// `{public_url}auth/broker/{id}/callback`: the redirect URI to register at the provider.
pub fn redirect_uri(state: &AuthState, provider: &IdentityProvider) -> String {
    format!("{}auth/broker/{}/callback", state.public_url.as_str(), provider.id)
}

fn provider<'a>(state: &'a AuthState, id: &str) -> Result<&'a IdentityProvider, ApiError> {
    state.broker.provider(id).ok_or_else(|| BrokerError::UnknownProvider.into_api(&shown_error(id)))
}

/// Stores the flow, sets the state cookie and sends the browser to the provider.
async fn begin(
    state: &AuthState,
    jar: CookieJar,
    provider: &IdentityProvider,
    flow: PendingFlow,
) -> Result<Response, ApiError> {
    let state_value = crate::util::random_token(32);
    let url = state
        .broker
        .authorization_url(provider, &redirect_uri(state, provider), &state_value, &flow)
        .await
        .map_err(|e| e.into_api(&provider.id))?;
    let value = serde_json::to_vec(&flow).map_err(|e| ApiError::internal(&e))?;
    state.store.set(&flow_key(&state_value), &value, FLOW_TTL).await.map_err(store_error)?;
    let cookie = Cookie::build((cookie_name(state.secure_cookies), state_value))
        .path(COOKIE_PATH)
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(SameSite::Lax)
        .build();
    // The one redirect off this site: to the provider's configured authorization endpoint.
    Ok((jar.add(cookie), Redirect::to(url.as_str())).into_response())
}

#[derive(Debug, Deserialize)]
pub struct StartForm {
    #[serde(default)]
    csrf: String,
    return_to: Option<String>,
}

/// "Sign in with …" on the login page.
pub async fn post_start(
    State(state): State<AuthState>,
    Path(id): Path<String>,
    jar: CookieJar,
    Form(form): Form<StartForm>,
) -> Result<Response, ApiError> {
    let provider = provider(&state, &id)?;
    if !state.csrf.verify(&jar, &form.csrf) {
        return Err(csrf_failed());
    }
    let target =
        form.return_to.as_deref().and_then(RedirectTarget::parse_local).unwrap_or_else(|| local("/auth/account"));
    begin(&state, jar, provider, PendingFlow::new(&provider.id, target.as_str(), None)).await
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// "Link …" on the security page.
pub async fn post_link(
    State(state): State<AuthState>,
    Path(id): Path<String>,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    let provider = provider(&state, &id)?;
    if !state.csrf.verify(&jar, &form.csrf) {
        return Err(csrf_failed());
    }
    let Some((_, user)) = sso::current(&state, &jar).await? else { return Ok(crate::account::to_login()) };
    begin(&state, jar, provider, PendingFlow::new(&provider.id, "/auth/account", Some(user.id.0))).await
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// The provider sends the browser back here.
pub async fn get_callback(
    State(state): State<AuthState>,
    Path(id): Path<String>,
    jar: CookieJar,
    who: Requester,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    let provider = provider(&state, &id)?;
    let fail = |e: BrokerError| e.into_api(&provider.id);
    let cookie = jar.get(cookie_name(state.secure_cookies)).map(|c| c.value().to_owned());
    let jar = jar.remove(Cookie::build(cookie_name(state.secure_cookies)).path(COOKIE_PATH).build());
    let query_state = q.state.as_deref().filter(|s| s.len() == 43);
    let (Some(query_state), Some(cookie)) = (query_state, cookie) else {
        return Ok((jar, fail(BrokerError::StateMismatch)).into_response());
    };
    if hash_token(query_state) != hash_token(&cookie) {
        return Ok((jar, fail(BrokerError::StateMismatch)).into_response());
    }
    let Some(raw) = state.store.take(&flow_key(query_state)).await.map_err(store_error)? else {
        return Ok((jar, fail(BrokerError::Expired)).into_response());
    };
    let flow: PendingFlow = serde_json::from_slice(&raw).map_err(|_| fail(BrokerError::Expired))?;
    if flow.provider != provider.id {
        return Ok((jar, fail(BrokerError::StateMismatch)).into_response());
    }
    if let Some(error) = q.error.as_deref() {
        return Ok((jar, fail(BrokerError::ProviderRefused(shown_error(error)))).into_response());
    }
    let Some(code) = q.code.as_deref().filter(|c| !c.is_empty() && c.len() <= 2048) else {
        return Ok((jar, fail(BrokerError::ProviderRefused("no code".into()))).into_response());
    };
    let profile =
        match state.broker.finish(provider, &redirect_uri(&state, provider), code, q.iss.as_deref(), &flow).await {
            Ok(p) => p,
            Err(e) => return Ok((jar, fail(e)).into_response()),
        };
    match flow.link_user {
        Some(user_id) => finish_link(&state, jar, &who, provider, UserId(user_id), &profile).await,
        None => finish_login(&state, jar, &who, provider, &profile, &flow.return_to).await,
    }
}

fn notice(jar: CookieJar, status: StatusCode, title: &str, message: &str) -> Response {
    (jar, page(status, auth_pages::notice_page(&NoticeView { title, message }))).into_response()
}

async fn finish_login(
    state: &AuthState,
    jar: CookieJar,
    who: &Requester,
    provider: &IdentityProvider,
    profile: &super::Profile,
    return_to: &str,
) -> Result<Response, ApiError> {
    let user = match link::resolve_login(state, provider, profile).await? {
        LoginOutcome::SignIn { user, how } => {
            let detail = format!("{} ({how})", provider.id);
            if how == "created" {
                audit::record(&state.db, Some(user.id), "register", &who.ip, &who.user_agent, &detail).await?;
            }
            if how == "linked_by_email" {
                audit::record(&state.db, Some(user.id), "identity_linked", &who.ip, &who.user_agent, &detail).await?;
            }
            audit::record(&state.db, Some(user.id), "external_login", &who.ip, &who.user_agent, &detail).await?;
            tracing::info!(security.event = "external_login", user.id = %user.id, provider = %provider.id, how, "signed in through a provider");
            user
        }
        LoginOutcome::EmailTaken => {
            let message = format!(
                "An account with the email address {} uses is already here. Sign in to it (with its password) and link {} from your account security page.",
                provider.display_name, provider.display_name
            );
            return Ok(notice(jar, StatusCode::CONFLICT, "Sign in to link this account", &message));
        }
        LoginOutcome::NoEmail => {
            let message = format!(
                "{} did not share an email address, so no account could be made. Create an account here, then link {} from your account security page.",
                provider.display_name, provider.display_name
            );
            return Ok(notice(jar, StatusCode::UNPROCESSABLE_ENTITY, "No email address", &message));
        }
    };
    if user.is_banned() {
        // The provider vouched for the person: saying why leaks nothing.
        audit::record(&state.db, Some(user.id), "login_failed", &who.ip, &who.user_agent, "banned").await?;
        return Ok(notice(jar, StatusCode::FORBIDDEN, "Account suspended", crate::login::SUSPENDED));
    }
    let target = local(return_to);
    if turtlemen_db::totp::is_enabled(&state.db, user.id).await? {
        // A provider stands in for the password, never for the second factor.
        return crate::second_factor::begin(state, jar, &user, &target).await;
    }
    let (jar, _) = sso::start_with(state, jar, &user, who, &format!("external:{}", provider.id)).await?;
    Ok((jar, see_other(&target)).into_response())
}

async fn finish_link(
    state: &AuthState,
    jar: CookieJar,
    who: &Requester,
    provider: &IdentityProvider,
    user_id: UserId,
    profile: &super::Profile,
) -> Result<Response, ApiError> {
    // The person who started the link must still be the one signed in here.
    match sso::current(state, &jar).await? {
        Some((_, user)) if user.id == user_id => {}
        _ => return Ok((jar, BrokerError::StateMismatch.into_api(&provider.id)).into_response()),
    }
    match link::link_to(state, user_id, provider, profile).await? {
        LinkOutcome::Linked => {
            audit::record(&state.db, Some(user_id), "identity_linked", &who.ip, &who.user_agent, &provider.id).await?;
            tracing::info!(security.event = "identity_linked", user.id = %user_id, provider = %provider.id, "provider linked");
            Ok((jar, see_other(&local("/auth/account?done=linked"))).into_response())
        }
        LinkOutcome::AlreadyYours => Ok((jar, see_other(&local("/auth/account?done=linked"))).into_response()),
        LinkOutcome::OtherAccount => {
            let message = format!(
                "This {} account is linked to another account here. Sign in to that one to unlink it first.",
                provider.display_name
            );
            Ok(notice(jar, StatusCode::CONFLICT, "Already linked elsewhere", &message))
        }
    }
}

/// "Unlink" on the security page.
pub async fn post_unlink(
    State(state): State<AuthState>,
    Path(id): Path<String>,
    jar: CookieJar,
    who: Requester,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return Err(csrf_failed());
    }
    let Some((_, user)) = sso::current(&state, &jar).await? else { return Ok(crate::account::to_login()) };
    let id = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::not_found())?;
    match identities::unlink(&state.db, user.id, id).await? {
        Unlinked::Done { provider } => {
            audit::record(&state.db, Some(user.id), "identity_unlinked", &who.ip, &who.user_agent, &provider).await?;
            tracing::info!(security.event = "identity_unlinked", user.id = %user.id, provider = %provider, "provider unlinked");
            Ok(see_other(&local("/auth/account?done=unlinked")))
        }
        Unlinked::LastWayToSignIn => Ok(notice(
            jar,
            StatusCode::CONFLICT,
            "Keep one way to sign in",
            "This is the only way you sign in to this account: link another provider before unlinking this one.",
        )),
        Unlinked::NotFound => Err(ApiError::not_found()),
    }
}
