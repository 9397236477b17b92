//! The gateway's own endpoints under `/oauth2`.
//!
//! Signing out takes a POST with the session's own token ([`session::CookieSigner::sign_out_token`],
//! handed to the pages with the identity); a GET only shows a page that asks. An external
//! issuer ends sessions by back-channel logout (`/oauth2/backchannel_logout`).

use crate::Gateway;
use crate::check::{Authn, HandOn, authenticate, set_identity_headers};
use crate::rp::{RpError, challenge, random_value};
use crate::session::{self, GatewaySession};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use turtlemen_domain::RedirectTarget;
use turtlemen_http::ApiError;
use turtlemen_session::ended;

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
        sid: text("sid"),
        auth_time: claims.get("auth_time").and_then(serde_json::Value::as_i64),
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

/// The sign-out form: `token`, and `rd` (where to go afterwards when the issuer has no sign-out
/// page: a local path, else `/`). Read by hand so that any body gets the same clean refusal.
#[derive(Debug, Default)]
struct SignOutForm {
    token: String,
    rd: Option<String>,
}

impl SignOutForm {
    fn parse(body: &[u8]) -> Self {
        let mut form = Self::default();
        for (k, v) in url::form_urlencoded::parse(body) {
            match &*k {
                "token" => form.token = v.into_owned(),
                "rd" => form.rd = Some(v.into_owned()),
                _ => {}
            }
        }
        form
    }
}

/// `GET /oauth2/sign_out`: a page that asks, with a form that posts the session's token — a
/// link or a top-level navigation from another site signs nobody out.
pub async fn sign_out_page(State(gw): State<Gateway>, headers: HeaderMap, Query(q): Query<StartQuery>) -> Response {
    let token = session::id_from(&gw, &headers).map(|id| gw.cookie_signer.sign_out_token(id));
    let escape = |s: &str| s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
    let rd = q.rd.as_deref().and_then(RedirectTarget::parse_local).map_or_else(String::new, |rd| {
        format!("<input type=\"hidden\" name=\"rd\" value=\"{}\">", escape(rd.as_str()))
    });
    let form = match token {
        Some(token) => format!(
            "<p>Sign out of Turtlemen on this browser?</p>\
             <form method=\"post\" action=\"/oauth2/sign_out\">\
             <input type=\"hidden\" name=\"token\" value=\"{token}\">{rd}\
             <button type=\"submit\">Sign out</button> <a href=\"/\">Stay signed in</a></form>"
        ),
        None => "<p>You are not signed in.</p><p><a href=\"/\">Home</a></p>".to_string(),
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Sign out — Turtlemen</title><main><h1>Sign out</h1>{form}</main></html>"
    );
    let mut res = Html(html).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `POST /oauth2/sign_out` with the session's token: ends the session here and at the issuer.
/// A missing or wrong token is refused (403) and the session lives on.
pub async fn sign_out(State(gw): State<Gateway>, jar: CookieJar, headers: HeaderMap, body: Bytes) -> Response {
    let form = SignOutForm::parse(&body);
    let mut id_token = None;
    if let Some(id) = session::id_from(&gw, &headers) {
        if !gw.cookie_signer.is_sign_out_token(id, &form.token) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf_failed",
                "This sign-out did not come from this site's own form; go back, reload the page and try again.",
            )
            .into_response();
        }
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
    let home = form.rd.as_deref().and_then(RedirectTarget::parse_local).unwrap_or_else(RedirectTarget::home);
    (jar, Redirect::to(end_session.as_deref().unwrap_or(home.as_str()))).into_response()
}

/// The event a logout token must carry (OpenID Connect Back-Channel Logout 1.0, §2.4).
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

fn logout_refused(description: &'static str) -> Response {
    let mut res = (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({"error": "invalid_request", "error_description": description})),
    )
        .into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Whether a JWT's header names no type or the logout token's (`logout+jwt`), so an ID token
/// or access token of ours cannot pass for one.
fn is_logout_type(token: &str) -> bool {
    let Some(head) = token.split('.').next() else { return false };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(head) else { return false };
    let Ok(header) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return false };
    match header.get("typ") {
        None => true,
        Some(t) => t.as_str().is_some_and(|t| t.eq_ignore_ascii_case("logout+jwt")),
    }
}

/// `POST /oauth2/backchannel_logout` (OpenID Connect Back-Channel Logout 1.0): an external
/// issuer (Keycloak) says a login session ended. The logout token is verified as the ID token
/// is (the issuer's keys, `iss`, `aud` = this client, `exp`), must carry the logout event and
/// no `nonce`; its `sid` is then marked ended in the session store, as the built-in auth
/// service marks its own, so the gateway sessions built on it end at their next read. Without
/// a `sid`, every session of its `sub` from before the token's `iat` ends.
pub async fn backchannel_logout(State(gw): State<Gateway>, body: Bytes) -> Response {
    let token = url::form_urlencoded::parse(&body).find(|(k, _)| k == "logout_token").map(|(_, v)| v.into_owned());
    let Some(token) = token.filter(|t| is_logout_type(t)) else {
        return logout_refused("A logout_token is required.");
    };
    let claims = match gw.jwks.verify_id_token(&token, &gw.config.client_id, None).await {
        Ok(c) => c,
        Err(turtlemen_identity::VerifyError::Keys(e)) => {
            tracing::error!(error = %e, "cannot fetch the issuer's keys");
            return ApiError::unavailable("The issuer's keys are unavailable.").into_response();
        }
        Err(_) => return logout_refused("The logout token is invalid or expired."),
    };
    if claims.get("events").and_then(|e| e.get(BACKCHANNEL_EVENT)).is_none_or(|e| !e.is_object())
        || claims.get("nonce").is_some()
    {
        return logout_refused("The token is not a logout token.");
    }
    let text = |k: &str| claims.get(k).and_then(|v| v.as_str()).filter(|v| !v.is_empty());
    let marked = match (text("sid"), text("sub")) {
        (Some(sid), _) => ended::end_session(&*gw.store, sid).await,
        (None, Some(sub)) => {
            let iat =
                claims.get("iat").and_then(serde_json::Value::as_i64).unwrap_or_else(|| chrono::Utc::now().timestamp());
            ended::end_user(&*gw.store, sub, iat).await
        }
        (None, None) => return logout_refused("The logout token names no session and no user."),
    };
    if let Err(e) = marked {
        tracing::error!(error = %e, "cannot mark the session ended");
        return ApiError::unavailable("Signing out is temporarily unavailable.").into_response();
    }
    tracing::info!(user.id = text("sub").unwrap_or("-"), "back-channel logout");
    let mut res = StatusCode::OK.into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `/oauth2/userinfo`: who the session (or Bearer token) belongs to.
pub async fn userinfo(State(gw): State<Gateway>, mut headers: HeaderMap) -> Response {
    match authenticate(&gw, &mut headers).await {
        Ok(Authn::Known(id)) => {
            let mut res = Json(serde_json::json!({
                "user": id.sub, "email": id.email, "preferred_username": id.username, "groups": id.groups,
            }))
            .into_response();
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
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
            set_identity_headers(res.headers_mut(), &id, HandOn::All);
            res
        }
        Ok(Authn::Anonymous { .. }) => StatusCode::UNAUTHORIZED.into_response(),
        Err(res) => res,
    }
}
