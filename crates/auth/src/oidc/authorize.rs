//! The authorization endpoint (authorization code flow only) and the consent form.
//!
//! Order of checks follows RFC 6749 §4.1.2.1: while the client or its `redirect_uri` is unknown
//! or unregistered (exact string match), the error is shown on a page and *never* redirected;
//! after that, errors go back to the client's `redirect_uri` with `state` and `iss`. Public
//! clients must use PKCE S256; `plain` is refused for everyone. Codes are 256-bit random,
//! single-use (taken atomically from the store) and live 60 seconds.

use crate::login::page;
use crate::oidc::{describe_scope, granted_scope, normalize_scope, scope_covers};
use crate::util::{Requester, hash_token, random_token};
use crate::{AuthState, sso};
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use turtlemen_db::auth_sessions::AuthSession;
use turtlemen_db::clients::{self, Client};
use turtlemen_db::consents;
use turtlemen_db::users::User;
use turtlemen_http::ApiError;
use turtlemen_web::auth_pages::{self, ConsentView, NoticeView};
use url::Url;

/// The parameters of an authorization request, as sent (query or consent form).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    /// Internal: the Unix time after which the visitor signed in for this request (set when we
    /// send them to the login page, so `prompt=login` and `max_age` are satisfied on return).
    pub login_after: Option<String>,
}

/// What a code stands for, kept in the store under the code's hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: uuid::Uuid,
    pub session_id: uuid::Uuid,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
}

/// A checked request.
struct Checked {
    client: Client,
    redirect_uri: Url,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    prompts: Vec<String>,
    max_age: Option<i64>,
    login_after: Option<i64>,
}

/// Why a request is refused: on a page, or back at the client.
enum Refusal {
    Page(String),
    Client { redirect_uri: Url, error: &'static str, description: String, state: Option<String> },
}

fn fits(v: &Option<String>, max: usize) -> bool {
    v.as_ref().is_none_or(|s| s.len() <= max)
}

fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

async fn check(state: &AuthState, p: &AuthorizeParams) -> Result<Result<Checked, Refusal>, ApiError> {
    let Some(client_id) = p.client_id.as_deref().filter(|c| !c.is_empty() && c.len() <= 128) else {
        return Ok(Err(Refusal::Page("The request names no application (client_id).".into())));
    };
    let Some(client) = clients::find(&state.db, client_id).await? else {
        return Ok(Err(Refusal::Page("This application is not registered here.".into())));
    };
    let Some(redirect) = p.redirect_uri.as_deref() else {
        return Ok(Err(Refusal::Page("The request names no redirect_uri.".into())));
    };
    if !client.redirect_uris.iter().any(|r| r == redirect) {
        return Ok(Err(Refusal::Page("The redirect_uri is not registered for this application.".into())));
    }
    let Ok(redirect_uri) = Url::parse(redirect) else {
        return Ok(Err(Refusal::Page("The registered redirect_uri is not a URL.".into())));
    };
    let back = |error: &'static str, description: &str| {
        Ok(Err(Refusal::Client {
            redirect_uri: redirect_uri.clone(),
            error,
            description: description.into(),
            state: p.state.clone().filter(|s| s.len() <= 1024),
        }))
    };
    if !fits(&p.state, 1024) || !fits(&p.nonce, 512) || !fits(&p.scope, 1024) || !fits(&p.login_hint, 254) {
        return back("invalid_request", "a parameter is too long");
    }
    if p.response_type.as_deref() != Some("code") {
        return back("unsupported_response_type", "only the authorization code flow (response_type=code) is supported");
    }
    let scope = normalize_scope(p.scope.as_deref().unwrap_or(""));
    if !scope.split(' ').any(|s| s == "openid") {
        return back("invalid_scope", "the openid scope is required");
    }
    let code_challenge = match (p.code_challenge.as_deref(), p.code_challenge_method.as_deref()) {
        (None, None) if client.is_public() => {
            return back("invalid_request", "public clients must use PKCE (code_challenge with S256)");
        }
        (None, None) => None,
        (Some(c), Some("S256")) if is_pkce_value(c) => Some(c.to_string()),
        (Some(_), Some("S256")) => return back("invalid_request", "code_challenge is malformed"),
        (Some(_), None | Some("plain")) => return back("invalid_request", "code_challenge_method must be S256"),
        _ => return back("invalid_request", "code_challenge_method without code_challenge, or unknown method"),
    };
    let prompts: Vec<String> =
        p.prompt.as_deref().unwrap_or("").split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect();
    if prompts.iter().any(|s| !matches!(s.as_str(), "none" | "login" | "consent")) {
        return back("invalid_request", "unsupported prompt value");
    }
    if prompts.iter().any(|s| s == "none") && prompts.len() > 1 {
        return back("invalid_request", "prompt=none cannot be combined with other values");
    }
    let max_age = match p.max_age.as_deref() {
        None | Some("") => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => return back("invalid_request", "max_age must be a non-negative integer"),
        },
    };
    let login_after = p.login_after.as_deref().and_then(|v| v.parse::<i64>().ok());
    Ok(Ok(Checked {
        client,
        redirect_uri,
        scope,
        state: p.state.clone(),
        nonce: p.nonce.clone(),
        code_challenge,
        prompts,
        max_age,
        login_after,
    }))
}

fn to_client(uri: &Url, state: &AuthState, pairs: &[(&str, &str)], client_state: Option<&str>) -> Response {
    let mut url = uri.clone();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        if let Some(s) = client_state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &state.issuer);
    }
    Redirect::to(url.as_str()).into_response()
}

fn refuse(state: &AuthState, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(message) => {
            let html = auth_pages::notice_page(&NoticeView {
                title: "This sign-in request cannot be completed",
                message: &message,
            });
            page(StatusCode::BAD_REQUEST, html)
        }
        Refusal::Client { redirect_uri, error, description, state: client_state } => to_client(
            &redirect_uri,
            state,
            &[("error", error), ("error_description", &description)],
            client_state.as_deref(),
        ),
    }
}

/// The path that resumes this request after the visitor has signed in.
fn resume_path(p: &AuthorizeParams, now: i64) -> String {
    let mut again = p.clone();
    again.prompt = None;
    again.login_after = Some(now.to_string());
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs_of(&again).iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish();
    format!("/auth/authorize?{query}")
}

/// The set parameters as name/value pairs.
fn pairs_of(p: &AuthorizeParams) -> Vec<(String, String)> {
    let value = serde_json::to_value(p).unwrap_or_default();
    let mut out = Vec::new();
    if let Some(map) = value.as_object() {
        for (k, v) in map {
            if let Some(s) = v.as_str() {
                out.push((k.clone(), s.to_string()));
            }
        }
    }
    out
}

/// Issues a code for `session` and sends the visitor back to the client.
async fn issue_code(state: &AuthState, c: &Checked, session: &AuthSession, user: &User) -> Result<Response, ApiError> {
    let code = random_token(32);
    let grant = CodeGrant {
        client_id: c.client.client_id.clone(),
        redirect_uri: c.redirect_uri.to_string(),
        user_id: user.id.0,
        session_id: session.id,
        scope: granted_scope(&c.client, &c.scope),
        nonce: c.nonce.clone(),
        code_challenge: c.code_challenge.clone(),
        auth_time: session.auth_time.timestamp(),
    };
    let bytes = serde_json::to_vec(&grant).map_err(|e| ApiError::internal(&e))?;
    state
        .store
        .set(&format!("code:{}", hash_token(&code)), &bytes, state.settings.code_ttl)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(to_client(&c.redirect_uri, state, &[("code", &code)], c.state.as_deref()))
}

pub async fn get_authorize(
    State(state): State<AuthState>,
    jar: CookieJar,
    Query(p): Query<AuthorizeParams>,
) -> Result<Response, ApiError> {
    let c = match check(&state, &p).await? {
        Ok(c) => c,
        Err(refusal) => return Ok(refuse(&state, refusal)),
    };
    let now = chrono::Utc::now().timestamp();
    let current = sso::current(&state, &jar).await?;
    // Signed in for this very request: after the login page was shown, at most ten minutes ago.
    let fresh = |s: &AuthSession| c.login_after.is_some_and(|t| now - t < 600 && s.auth_time.timestamp() >= t);
    let needs_login = match &current {
        None => true,
        Some((s, _)) if fresh(s) => false,
        Some((s, _)) => {
            c.prompts.iter().any(|p| p == "login") || c.max_age.is_some_and(|max| now - s.auth_time.timestamp() > max)
        }
    };
    let prompt_none = c.prompts.iter().any(|p| p == "none");
    let (session, user) = match current {
        Some(su) if !needs_login => su,
        _ if prompt_none => {
            return Ok(to_client(&c.redirect_uri, &state, &[("error", "login_required")], c.state.as_deref()));
        }
        _ => {
            let resume = resume_path(&p, now);
            let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("return_to", &resume).finish();
            // force: show the form even to a signed-in visitor (prompt=login, max_age).
            return Ok(Redirect::to(&format!("/auth/login?force=1&{query}")).into_response());
        }
    };
    if !c.client.first_party {
        let granted = consents::find(&state.db, user.id, &c.client.client_id).await?;
        let needs_consent =
            c.prompts.iter().any(|p| p == "consent") || !granted.as_deref().is_some_and(|g| scope_covers(g, &c.scope));
        if needs_consent {
            if prompt_none {
                return Ok(to_client(&c.redirect_uri, &state, &[("error", "consent_required")], c.state.as_deref()));
            }
            let (jar, csrf) = state.csrf.token(jar);
            let mut hidden = pairs_of(&p);
            hidden.retain(|(k, _)| k != "prompt" && k != "login_after");
            let html = auth_pages::consent_page(&ConsentView {
                csrf: &csrf,
                client_name: &c.client.name,
                username: &user.username,
                scopes: c.scope.split(' ').filter_map(describe_scope).collect(),
                hidden,
            });
            return Ok((jar, page(StatusCode::OK, html)).into_response());
        }
    }
    issue_code(&state, &c, &session, &user).await
}

/// The consent form's submission: the authorization request again, plus the decision.
#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(flatten)]
    params: AuthorizeParams,
}

pub async fn post_consent(
    State(state): State<AuthState>,
    jar: CookieJar,
    who: Requester,
    Form(form): Form<ConsentForm>,
) -> Result<Response, ApiError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return Ok(refuse(
            &state,
            Refusal::Page("The form expired; start signing in again from the application.".into()),
        ));
    }
    let c = match check(&state, &form.params).await? {
        Ok(c) => c,
        Err(refusal) => return Ok(refuse(&state, refusal)),
    };
    let Some((session, user)) = sso::current(&state, &jar).await? else {
        return Ok(to_client(&c.redirect_uri, &state, &[("error", "login_required")], c.state.as_deref()));
    };
    if form.decision != "allow" {
        turtlemen_db::audit::record(
            &state.db,
            Some(user.id),
            "consent_denied",
            &who.ip,
            &who.user_agent,
            &c.client.client_id,
        )
        .await?;
        return Ok(to_client(
            &c.redirect_uri,
            &state,
            &[("error", "access_denied"), ("error_description", "the user declined")],
            c.state.as_deref(),
        ));
    }
    // What the user allowed before stays allowed: the remembered consent grows.
    let before = consents::find(&state.db, user.id, &c.client.client_id).await?.unwrap_or_default();
    let remembered = normalize_scope(&format!("{before} {}", c.scope));
    consents::grant(&state.db, user.id, &c.client.client_id, &remembered).await?;
    turtlemen_db::audit::record(
        &state.db,
        Some(user.id),
        "consent_granted",
        &who.ip,
        &who.user_agent,
        &c.client.client_id,
    )
    .await?;
    issue_code(&state, &c, &session, &user).await
}
