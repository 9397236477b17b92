//! The gateway's own endpoints under `/oauth2`.

use crate::Gateway;
use crate::check::{Authn, authenticate, set_identity_headers};
use crate::rp::{RpError, challenge, random_value};
use crate::session::{self, GatewaySession};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use turtlemen_domain::RedirectTarget;
use turtlemen_http::ApiError;

const STATE_COOKIE: &str = "turtlemen_oauth_state";
const PENDING_TTL: Duration = Duration::from_secs(600);

/// A sign-in in progress, kept in the store under its `state`.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    verifier: String,
    nonce: String,
    rd: String,
}

#[derive(Debug, Deserialize)]
pub struct StartQuery {
    rd: Option<String>,
}

fn unavailable(e: &RpError) -> Response {
    tracing::error!(error = %e, "the issuer is unavailable");
    ApiError::unavailable("Sign-in is temporarily unavailable; try again shortly.").into_response()
}

/// `/oauth2/start?rd=PATH`: begins a sign-in that returns to `rd` (a local path, else `/`).
pub async fn start(State(gw): State<Gateway>, jar: CookieJar, Query(q): Query<StartQuery>) -> Response {
    let rd = q.rd.as_deref().and_then(RedirectTarget::parse_local).unwrap_or_else(RedirectTarget::home);
    let (state, nonce, verifier) = (random_value(), random_value(), random_value());
    let url = match gw.rp.authorization_url(&state, &nonce, &verifier).await {
        Ok(url) => url,
        Err(e) => return unavailable(&e),
    };
    debug_assert_eq!(challenge(&verifier).len(), 43);
    let pending = Pending { verifier, nonce, rd: rd.to_string() };
    let Ok(bytes) = serde_json::to_vec(&pending) else { return ApiError::unavailable("try again").into_response() };
    if let Err(e) = gw.store.set(&format!("gwstate:{state}"), &bytes, PENDING_TTL).await {
        tracing::error!(error = %e, "cannot keep the sign-in state");
        return ApiError::unavailable("Sign-in is temporarily unavailable; try again shortly.").into_response();
    }
    // Binds the callback to this browser: a code and state lured into another browser fail.
    let cookie = Cookie::build((STATE_COOKIE, state))
        .path("/oauth2")
        .http_only(true)
        .secure(gw.secure_cookies)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(600))
        .build();
    (jar.add(cookie), Redirect::to(&url)).into_response()
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn refused(message: &'static str) -> Response {
    ApiError::new(StatusCode::BAD_REQUEST, "sign_in_failed", message).into_response()
}

/// `/oauth2/callback`: finishes the sign-in and starts a session with a new id.
pub async fn callback(State(gw): State<Gateway>, jar: CookieJar, Query(q): Query<CallbackQuery>) -> Response {
    let Some(state) = q.state.filter(|s| s.len() == 43) else {
        return refused("The sign-in response is incomplete; start again.");
    };
    if jar.get(STATE_COOKIE).map(|c| c.value()) != Some(state.as_str()) {
        return refused("This sign-in was started in another browser or has expired; start again.");
    }
    let jar = jar.remove(Cookie::build(STATE_COOKIE).path("/oauth2").build());
    let pending = match gw.store.take(&format!("gwstate:{state}")).await {
        Ok(Some(bytes)) => match serde_json::from_slice::<Pending>(&bytes) {
            Ok(p) => p,
            Err(_) => return refused("The sign-in state is unreadable; start again."),
        },
        Ok(None) => {
            return (jar, refused("This sign-in has expired or was already used; start again.")).into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read the sign-in state");
            return ApiError::unavailable("Sign-in is temporarily unavailable.").into_response();
        }
    };
    if let Some(error) = q.error {
        tracing::info!(oauth.error = %error, "sign-in not completed at the issuer");
        return (jar, refused("Sign-in was not completed.")).into_response();
    }
    let Some(code) = q.code.filter(|c| c.len() <= 512) else {
        return (jar, refused("The sign-in response has no code.")).into_response();
    };
    let tokens = match gw.rp.exchange(&code, &pending.verifier).await {
        Ok(t) => t,
        Err(RpError::Refused(e)) => {
            tracing::info!(oauth.error = %e, "code exchange refused");
            return (jar, refused("The sign-in could not be completed; start again.")).into_response();
        }
        Err(e) => return unavailable(&e),
    };
    let Some(id_token) = tokens.id_token.clone() else {
        return (jar, refused("The issuer sent no ID token.")).into_response();
    };
    let claims = match gw.jwks.verify_id_token(&id_token, &gw.config.client_id, Some(&pending.nonce)).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "ID token refused");
            return (jar, refused("The sign-in response could not be verified.")).into_response();
        }
    };
    let text = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let Some(sub) = text("sub") else { return (jar, refused("The ID token names no user.")).into_response() };
    let now = chrono::Utc::now().timestamp();
    let session = GatewaySession {
        username: text("preferred_username").unwrap_or_else(|| sub.clone()),
        sub,
        email: text("email"),
        groups: claims
            .get("groups")
            .and_then(|g| g.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        access_token: tokens.access_token,
        access_expires_at: now + tokens.expires_in.unwrap_or(300),
        refresh_token: tokens.refresh_token,
        id_token,
        expires_at: now + i64::try_from(gw.config.absolute.as_secs()).unwrap_or(i64::MAX / 2),
    };
    let id = gw.cookie_signer.new_value();
    if let Err(e) = session::save(&gw, &id, &session).await {
        tracing::error!(error = %e, "cannot store the session");
        return ApiError::unavailable("Sign-in is temporarily unavailable.").into_response();
    }
    tracing::info!(user.id = %session.sub, "gateway session started");
    let rd = RedirectTarget::parse_local(&pending.rd).unwrap_or_else(RedirectTarget::home);
    (jar.add(session::cookie(&gw, id)), Redirect::to(rd.as_str())).into_response()
}

/// `/oauth2/sign_out`: ends the session here and at the issuer.
pub async fn sign_out(State(gw): State<Gateway>, jar: CookieJar, headers: HeaderMap) -> Response {
    let mut id_token = None;
    if let Some(id) = session::id_from(&gw, &headers) {
        if let Ok(Some(s)) = session::load(&gw, id).await {
            id_token = Some(s.id_token.clone());
        }
        if let Err(e) = session::delete(&gw, id).await {
            tracing::error!(error = %e, "cannot delete the session");
            return ApiError::unavailable("Signing out is temporarily unavailable.").into_response();
        }
    }
    let jar = jar.remove(session::removal(&gw));
    let end_session = match (&id_token, gw.rp.metadata().await) {
        (Some(hint), Ok(meta)) => {
            meta.end_session_endpoint.as_deref().and_then(|e| url::Url::parse(e).ok()).map(|mut u| {
                u.query_pairs_mut()
                    .append_pair("id_token_hint", hint)
                    .append_pair("post_logout_redirect_uri", gw.config.public_url.as_str());
                u.to_string()
            })
        }
        _ => None,
    };
    (jar, Redirect::to(end_session.as_deref().unwrap_or("/"))).into_response()
}

/// `/oauth2/userinfo`: who the session (or Bearer token) belongs to.
pub async fn userinfo(State(gw): State<Gateway>, mut headers: HeaderMap) -> Response {
    match authenticate(&gw, &mut headers).await {
        Ok(Authn::Known(id)) => Json(serde_json::json!({
            "user": id.sub, "email": id.email, "preferred_username": id.username, "groups": id.groups,
        }))
        .into_response(),
        Ok(Authn::Anonymous { .. }) => ApiError::unauthorized().into_response(),
        Err(res) => res,
    }
}

/// `/oauth2/auth`: forward auth (nginx `auth_request`, Traefik `forwardAuth`, Envoy): 202 with
/// the identity headers, or 401.
pub async fn forward_auth(State(gw): State<Gateway>, mut headers: HeaderMap) -> Response {
    match authenticate(&gw, &mut headers).await {
        Ok(Authn::Known(id)) => {
            let mut res = StatusCode::ACCEPTED.into_response();
            set_identity_headers(res.headers_mut(), &id);
            res
        }
        Ok(Authn::Anonymous { .. }) => StatusCode::UNAUTHORIZED.into_response(),
        Err(res) => res,
    }
}
