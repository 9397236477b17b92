//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
//!
//! With a valid `id_token_hint` for the signed-in user, the session ends at once; without one,
//! the visitor confirms on a page (a CSRF-protected form), so a link on another site cannot
//! sign anyone out. The visitor is sent to `post_logout_redirect_uri` only when it is
//! registered for the client the hint (or `client_id`) names; otherwise a page says they are
//! signed out.

use crate::login::page;
use crate::util::Requester;
use crate::{AuthState, sso};
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use turtlemen_db::clients;
use turtlemen_http::ApiError;
use turtlemen_web::auth_pages::{self, LogoutView, NoticeView};

/// The request's parameters (query or form).
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct LogoutParams {
    pub id_token_hint: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub client_id: Option<String>,
}

/// Where to send the visitor afterwards, if anywhere: a registered URI, with `state`.
async fn destination(state: &AuthState, p: &LogoutParams) -> Result<Option<String>, ApiError> {
    let Some(uri) = p.post_logout_redirect_uri.as_deref() else { return Ok(None) };
    let hinted = p.id_token_hint.as_deref().and_then(|t| state.signer().id_token_audience(t, &state.issuer).ok());
    let Some(client_id) = hinted.or_else(|| p.client_id.clone()) else { return Ok(None) };
    let Some(client) = clients::find(&state.db, &client_id).await? else { return Ok(None) };
    if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
        return Ok(None);
    }
    let Ok(mut url) = url::Url::parse(uri) else { return Ok(None) };
    if let Some(s) = p.state.as_deref().filter(|s| s.len() <= 1024) {
        url.query_pairs_mut().append_pair("state", s);
    }
    Ok(Some(url.to_string()))
}

async fn finish(state: &AuthState, jar: CookieJar, who: &Requester, p: &LogoutParams) -> Result<Response, ApiError> {
    let jar = match sso::current(state, &jar).await? {
        Some((session, _)) => sso::end(state, jar, &session, who).await?,
        None => sso::clear(state, jar),
    };
    let res = match destination(state, p).await? {
        Some(url) => Redirect::to(&url).into_response(),
        None => page(
            StatusCode::OK,
            auth_pages::notice_page(&NoticeView {
                title: "Signed out",
                message: "You are signed out of Turtlemen on this browser.",
            }),
        ),
    };
    Ok((jar, res).into_response())
}

pub async fn get_logout(
    State(state): State<AuthState>,
    jar: CookieJar,
    who: Requester,
    Query(p): Query<LogoutParams>,
) -> Result<Response, ApiError> {
    let current = sso::current(&state, &jar).await?;
    // A hint for this very user proves the request comes from an application they used.
    let proven = match (&current, p.id_token_hint.as_deref()) {
        (Some((session, user)), Some(hint)) => state.signer().id_token_audience(hint, &state.issuer).is_ok_and(|aud| {
            state
                .signer()
                .verify_id(hint, &state.issuer, &aud, false)
                .is_ok_and(|c| c.sub == user.id.to_string() && c.sid == session.id.to_string())
        }),
        _ => false,
    };
    if current.is_none() || proven {
        return finish(&state, jar, &who, &p).await;
    }
    let (jar, csrf) = state.csrf.token(jar);
    let hidden = [
        ("id_token_hint", &p.id_token_hint),
        ("post_logout_redirect_uri", &p.post_logout_redirect_uri),
        ("state", &p.state),
        ("client_id", &p.client_id),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.clone().map(|v| (k.to_string(), v)))
    .collect();
    let html = auth_pages::logout_page(&LogoutView { csrf: &csrf, hidden });
    Ok((jar, page(StatusCode::OK, html)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    params: LogoutParams,
}

pub async fn post_logout(
    State(state): State<AuthState>,
    jar: CookieJar,
    who: Requester,
    Form(form): Form<LogoutForm>,
) -> Result<Response, ApiError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        let html = auth_pages::notice_page(&NoticeView {
            title: "Not signed out",
            message: "The form expired; please try again.",
        });
        return Ok(page(StatusCode::FORBIDDEN, html));
    }
    finish(&state, jar, &who, &form.params).await
}
