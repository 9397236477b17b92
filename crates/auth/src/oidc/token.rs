//! The token endpoint (authorization_code, refresh_token), revocation (RFC 7009) and
//! introspection (RFC 7662), with client authentication by `client_secret_basic`,
//! `client_secret_post`, or none for public clients.
//!
//! A refresh token is issued only when the grant includes `offline_access`. Refresh tokens
//! rotate on every use. Presenting one that was already used revokes its whole family (every
//! token descended from the same sign-in) and is logged as a security event.
//!
//! An authorization code is single-use (RFC 6749 §4.1.2): its first redemption leaves a marker
//! in the session store, for as long as the code could have lived, naming the refresh-token
//! family it started; a second redemption is refused and revokes that family. Access tokens
//! already issued are JWTs and stay valid until they expire (minutes); nothing recalls them.
//!
//! Introspection (RFC 7662) answers a client about its own tokens only; a first-party client
//! (the gateway, this instance's resource server) may introspect any. Everyone else is told
//! `{"active": false}`.

use crate::AuthState;
use crate::oidc::authorize::CodeGrant;
use crate::oidc::error::OAuthError;
use crate::tokens::{API_AUDIENCE, AccessClaims, IdClaims};
use crate::util::{Requester, hash_token, random_token};
use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::Utc;
use ring::digest;
use serde::Deserialize;
use turtlemen_db::clients::{self, Client};
use turtlemen_db::refresh_tokens::{self, NewRefreshToken};
use turtlemen_db::users::{self, User};
use turtlemen_db::{audit, auth_sessions};
use turtlemen_domain::{Role, UserId};
use turtlemen_identity::{Scope, Scopes};

/// The fields of every request to these endpoints.
#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    token: Option<String>,
    #[allow(dead_code)]
    token_type_hint: Option<String>,
    scope: Option<String>,
}

/// Authenticates the calling client (RFC 6749 §2.3). Exactly one method may be used.
async fn authenticate(state: &AuthState, headers: &HeaderMap, form: &TokenForm) -> Result<Client, OAuthError> {
    let basic = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "));
    let (client_id, secret) = match basic {
        Some(encoded) => {
            if form.client_secret.is_some() {
                return Err(OAuthError::invalid_request("use one client authentication method"));
            }
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| OAuthError::invalid_client())?;
            let text = String::from_utf8(decoded).map_err(|_| OAuthError::invalid_client())?;
            let (id, secret) = text.split_once(':').ok_or_else(OAuthError::invalid_client)?;
            let decode =
                |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
            let id = decode(id).ok_or_else(OAuthError::invalid_client)?;
            if form.client_id.as_deref().is_some_and(|f| f != id) {
                return Err(OAuthError::invalid_request("client_id does not match the authenticated client"));
            }
            (id, Some(decode(secret).ok_or_else(OAuthError::invalid_client)?))
        }
        None => (form.client_id.clone().ok_or_else(OAuthError::invalid_client)?, form.client_secret.clone()),
    };
    if client_id.is_empty() || client_id.len() > 128 {
        return Err(OAuthError::invalid_client());
    }
    let client = clients::find(&state.db, &client_id).await?.ok_or_else(OAuthError::invalid_client)?;
    match (&client.secret_hash, secret) {
        (None, None) => Ok(client),
        (Some(stored), Some(given)) if given.len() <= 512 && ring_eq(stored, &hash_token(&given)) => Ok(client),
        _ => Err(OAuthError::invalid_client()),
    }
}

/// Constant-time comparison of two hex digests.
fn ring_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

fn groups(user: &User) -> Vec<String> {
    match user.role {
        Role::Admin => vec!["admin".into()],
        Role::Moderator => vec!["moderator".into()],
        Role::User => vec![],
    }
}

/// What the tokens of one response are about.
struct Grant<'a> {
    client: &'a Client,
    user: &'a User,
    session_id: uuid::Uuid,
    auth_time: i64,
    scope: &'a str,
    nonce: Option<String>,
    /// The refresh-token family this response continues or starts.
    family: uuid::Uuid,
}

/// Mints the access token, ID token and a new refresh token for one grant.
async fn issue(state: &AuthState, g: Grant<'_>) -> Result<Response, OAuthError> {
    let Grant { client, user, session_id, auth_time, scope, nonce, family } = g;
    let now = Utc::now();
    let iat = now.timestamp();
    let has = |s: &str| scope.split(' ').any(|x| x == s);
    let access = AccessClaims {
        iss: state.issuer.clone(),
        sub: user.id.to_string(),
        aud: API_AUDIENCE.into(),
        exp: iat + state.settings.access_token_ttl.num_seconds(),
        iat,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: client.client_id.clone(),
        scope: scope.to_string(),
        auth_time,
        sid: session_id.to_string(),
        preferred_username: user.username.clone(),
        email: has("email").then(|| user.email.clone()),
        groups: groups(user),
    };
    let id = IdClaims {
        iss: state.issuer.clone(),
        sub: user.id.to_string(),
        aud: client.client_id.clone(),
        azp: client.client_id.clone(),
        exp: iat + state.settings.id_token_ttl.num_seconds(),
        iat,
        auth_time,
        sid: session_id.to_string(),
        nonce,
        preferred_username: has("profile").then(|| user.username.clone()),
        name: has("profile").then(|| user.display_name.clone()),
        email: has("email").then(|| user.email.clone()),
        email_verified: has("email").then_some(user.email_verified),
        groups: has("profile").then(|| groups(user)),
    };
    let mut body = serde_json::json!({
        "access_token": state.signer().sign_access(&access),
        "token_type": "Bearer",
        "expires_in": state.settings.access_token_ttl.num_seconds(),
        "id_token": state.signer().sign_id_for(&client.id_token_alg, &id),
        "scope": scope,
    });
    // Only `offline_access` earns a refresh token (OpenID Connect Core §11).
    if Scopes::parse(scope).contains(Scope::OfflineAccess) {
        let refresh = random_token(32);
        refresh_tokens::create(
            &state.db,
            &NewRefreshToken {
                token_hash: &hash_token(&refresh),
                family_id: Some(family),
                session_id,
                client_id: &client.client_id,
                user_id: user.id,
                scope,
                expires_at: now + state.settings.refresh_token_ttl,
            },
        )
        .await?;
        body["refresh_token"] = refresh.into();
    }
    Ok(no_store(Json(body).into_response()))
}

/// The form, or the OAuth error for a body that is not one (wrong type, malformed, too big).
fn read_form(form: Result<Form<TokenForm>, FormRejection>) -> Result<TokenForm, OAuthError> {
    form.map(|Form(f)| f)
        .map_err(|e| OAuthError::invalid_request(format!("the request body is not a valid form: {}", e.body_text())))
}

pub async fn token(
    State(state): State<AuthState>,
    headers: HeaderMap,
    who: Requester,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let form = match read_form(form) {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    match token_inner(&state, &headers, &who, form).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

async fn token_inner(
    state: &AuthState,
    headers: &HeaderMap,
    who: &Requester,
    form: TokenForm,
) -> Result<Response, OAuthError> {
    let client = authenticate(state, headers, &form).await?;
    match form.grant_type.as_deref() {
        Some("authorization_code") => code_grant(state, &client, &form, who).await,
        Some("refresh_token") => refresh_grant(state, &client, &form, who).await,
        Some(_) => Err(OAuthError::new("unsupported_grant_type", "use authorization_code or refresh_token")),
        None => Err(OAuthError::invalid_request("grant_type is required")),
    }
}

/// What the first redemption of a code leaves behind, under `code-used:{hash}`.
#[derive(Debug, serde::Serialize, Deserialize)]
struct UsedCode {
    /// The refresh-token family the redemption started.
    family: uuid::Uuid,
    user_id: Option<uuid::Uuid>,
}

/// Takes the code for this redemption, or refuses it. The first redemption claims the code's
/// marker (set-if-absent, so of two concurrent ones exactly one wins) before taking the code;
/// a later one flags the code as replayed, then finds the marker and revokes the refresh-token
/// family the first one started. (The first one looks for that flag once its tokens exist,
/// so a replay racing it revokes them too: see [`code_grant`].)
async fn redeem(
    state: &AuthState,
    client: &Client,
    code: &str,
    family: uuid::Uuid,
    who: &Requester,
) -> Result<CodeGrant, OAuthError> {
    let refused = || OAuthError::invalid_grant("the code is invalid, expired or already used");
    let key = hash_token(code);
    let marker = format!("code-used:{key}");
    let mine = serde_json::to_vec(&UsedCode { family, user_id: None }).map_err(|_| refused())?;
    if !state.store.set_if_absent(&marker, &mine, state.settings.code_ttl).await? {
        state.store.set(&format!("code-replayed:{key}"), b"1", state.settings.code_ttl).await?;
        let first = state.store.get(&marker).await?.and_then(|b| serde_json::from_slice::<UsedCode>(&b).ok());
        if let Some(first) = first {
            let revoked = refresh_tokens::revoke_family(&state.db, first.family).await?;
            if let Some(user) = first.user_id {
                audit::record(
                    &state.db,
                    Some(UserId(user)),
                    "authorization_code_reuse",
                    &who.ip,
                    &who.user_agent,
                    &client.client_id,
                )
                .await?;
            }
            tracing::warn!(client.id = %client.client_id, tokens.revoked = revoked, "authorization code replayed; family revoked");
        }
        return Err(refused());
    }
    let grant =
        state.store.take(&format!("code:{key}")).await?.and_then(|b| serde_json::from_slice::<CodeGrant>(&b).ok());
    let Some(grant) = grant else {
        // No such code (or expired): nothing to remember.
        state.store.delete(&marker).await?;
        return Err(refused());
    };
    let used = serde_json::to_vec(&UsedCode { family, user_id: Some(grant.user_id) }).map_err(|_| refused())?;
    state.store.set(&marker, &used, state.settings.code_ttl).await?;
    Ok(grant)
}

async fn code_grant(
    state: &AuthState,
    client: &Client,
    form: &TokenForm,
    who: &Requester,
) -> Result<Response, OAuthError> {
    let code = form
        .code
        .as_deref()
        .filter(|c| c.len() <= 128)
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let family = uuid::Uuid::now_v7();
    let grant = redeem(state, client, code, family, who).await?;
    let replayed = format!("code-replayed:{}", hash_token(code));
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the code was issued to another client"));
    }
    if form.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request"));
    }
    match (&grant.code_challenge, form.code_verifier.as_deref()) {
        (Some(challenge), Some(verifier)) => {
            let valid = (43..=128).contains(&verifier.len())
                && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            let computed = crate::util::b64url(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref());
            if !valid || !ring_eq(&computed, challenge) {
                return Err(OAuthError::invalid_grant("PKCE verification failed"));
            }
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant("no code_challenge was sent with the authorization request"));
        }
        (None, None) => {}
    }
    let session = auth_sessions::find(&state.db, grant.session_id).await?;
    if !session.is_some_and(|s| s.is_live(Utc::now(), state.settings.sso_idle)) {
        return Err(OAuthError::invalid_grant("the sign-in session has ended"));
    }
    let user = users::find_by_id(&state.db, UserId(grant.user_id))
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("no such user"))?;
    let g = Grant {
        client,
        user: &user,
        session_id: grant.session_id,
        auth_time: grant.auth_time,
        scope: &grant.scope,
        nonce: grant.nonce,
        family,
    };
    let res = issue(state, g).await?;
    // A replay that raced this redemption may have revoked the family before it had a token.
    if state.store.get(&replayed).await?.is_some() {
        refresh_tokens::revoke_family(&state.db, family).await?;
        return Err(OAuthError::invalid_grant("the code was used twice"));
    }
    Ok(res)
}

async fn refresh_grant(
    state: &AuthState,
    client: &Client,
    form: &TokenForm,
    who: &Requester,
) -> Result<Response, OAuthError> {
    let presented = form
        .refresh_token
        .as_deref()
        .filter(|t| t.len() <= 128)
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
    let token = refresh_tokens::find(&state.db, &hash_token(presented)).await?.ok_or_else(invalid)?;
    if token.client_id != client.client_id {
        return Err(invalid());
    }
    if token.revoked_at.is_some() || token.expires_at <= Utc::now() {
        return Err(invalid());
    }
    if token.used_at.is_some() || !refresh_tokens::mark_used(&state.db, token.id).await? {
        let revoked = refresh_tokens::revoke_family(&state.db, token.family_id).await?;
        audit::record(
            &state.db,
            Some(token.user_id),
            "refresh_token_reuse",
            &who.ip,
            &who.user_agent,
            &client.client_id,
        )
        .await?;
        tracing::warn!(user.id = %token.user_id, client.id = %client.client_id, tokens.revoked = revoked, "refresh token replayed; family revoked");
        return Err(invalid());
    }
    let session = auth_sessions::find(&state.db, token.session_id).await?;
    let Some(session) = session.filter(|s| s.is_live(Utc::now(), state.settings.sso_idle)) else {
        return Err(OAuthError::invalid_grant("the sign-in session has ended"));
    };
    let scope = match form.scope.as_deref() {
        None => token.scope.clone(),
        Some(asked) => {
            let asked = crate::oidc::normalize_scope(asked);
            if !crate::oidc::scope_covers(&token.scope, &asked) {
                return Err(OAuthError::new("invalid_scope", "a refresh cannot widen the scope"));
            }
            asked
        }
    };
    // A first-party client's tokens carry every API scope, also when its refresh token is
    // older than some of them.
    let scope = crate::oidc::granted_scope(client, &scope);
    let user = users::find_by_id(&state.db, token.user_id).await?.ok_or_else(invalid)?;
    auth_sessions::touch(&state.db, session.id).await?;
    let g = Grant {
        client,
        user: &user,
        session_id: session.id,
        auth_time: session.auth_time.timestamp(),
        scope: &scope,
        nonce: None,
        family: token.family_id,
    };
    issue(state, g).await
}

/// RFC 7009: always 200 for a well-formed request from an authenticated client, whether or
/// not the token was known; only the client's own refresh tokens are revoked.
pub async fn revoke(
    State(state): State<AuthState>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let result: Result<(), OAuthError> = async {
        let form = read_form(form)?;
        let client = authenticate(&state, &headers, &form).await?;
        let token = form.token.as_deref().ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        if token.len() <= 128
            && let Some(found) = refresh_tokens::find(&state.db, &hash_token(token)).await?
            && found.client_id == client.client_id
        {
            refresh_tokens::revoke_family(&state.db, found.family_id).await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => e.into_response(),
    }
}

/// RFC 7662: whether a token is active, and what it carries, for confidential clients — about
/// their own tokens only, except for first-party clients, which may ask about any.
pub async fn introspect(
    State(state): State<AuthState>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let result: Result<serde_json::Value, OAuthError> = async {
        let form = read_form(form)?;
        let client = authenticate(&state, &headers, &form).await?;
        if client.is_public() {
            return Err(OAuthError::new("unauthorized_client", "only confidential clients may introspect"));
        }
        let token = form.token.as_deref().ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let inactive = serde_json::json!({ "active": false });
        if token.len() > 8192 {
            return Ok(inactive);
        }
        let may_see = |owner: &str| client.first_party || owner == client.client_id;
        if let Ok(claims) = state.signer().verify_access(token, &state.issuer) {
            if !may_see(&claims.client_id) {
                return Ok(inactive);
            }
            return Ok(serde_json::json!({
                "active": true, "token_type": "Bearer", "scope": claims.scope, "client_id": claims.client_id,
                "username": claims.preferred_username, "sub": claims.sub, "aud": claims.aud, "iss": claims.iss,
                "exp": claims.exp, "iat": claims.iat, "jti": claims.jti,
            }));
        }
        if token.len() <= 128
            && let Some(t) = refresh_tokens::find(&state.db, &hash_token(token)).await?
            && may_see(&t.client_id)
        {
            let now = Utc::now();
            let session_live = auth_sessions::find(&state.db, t.session_id)
                .await?
                .is_some_and(|s| s.is_live(now, state.settings.sso_idle));
            if t.used_at.is_none() && t.revoked_at.is_none() && t.expires_at > now && session_live {
                let username = users::find_by_id(&state.db, t.user_id).await?.map(|u| u.username);
                return Ok(serde_json::json!({
                    "active": true, "token_type": "refresh_token", "scope": t.scope, "client_id": t.client_id,
                    "username": username, "sub": t.user_id.to_string(), "iss": state.issuer,
                    "exp": t.expires_at.timestamp(), "iat": t.created_at.timestamp(),
                }));
            }
        }
        Ok(inactive)
    }
    .await;
    match result {
        Ok(body) => no_store(Json(body).into_response()),
        Err(e) => e.into_response(),
    }
}
