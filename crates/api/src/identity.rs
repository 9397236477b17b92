//! Who is calling the API, and what they may do: the access token in `Authorization: Bearer`,
//! verified here against the issuer's keys (signature, `iss`, `aud`, `exp`) — never a header a
//! client could set, and no session lookup. A request that bypassed the gateway without a
//! token has no identity.
//!
//! A token grants scopes ([`Scope`]); every handler that acts for a user names the one it
//! needs in its signature, so it cannot be forgotten:
//! - [`Scoped<S>`] (`Scoped<VideosWrite>`, …): the user, whose token grants `S`'s scope; a
//!   valid token without it is refused with 403 `insufficient_scope` and `WWW-Authenticate:
//!   Bearer error="insufficient_scope", scope="…"` (RFC 6750 §3.1). `Scoped<Signed>` needs no
//!   API scope (`/api/v1/me`). `Option<Scoped<S>>` is `None` for a visitor without a valid
//!   token *or* whose token lacks the scope: they are treated as anonymous.
//! - [`CurrentUser`] as an extractor needs every API scope: full access, which only the
//!   gateway's first-party session has. The server-rendered pages use it; an API handler
//!   written with it by mistake refuses third-party tokens rather than trusting them.
//!
//! Functions that act for a user also check: `user.require(Scope::VideosWrite)?`.

use crate::ApiState;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::marker::PhantomData;
use std::ops::Deref;
use turtlemen_db::users::{self, User};
use turtlemen_domain::UserId;
use turtlemen_http::ApiError;
use turtlemen_identity::{Scope, Scopes};

/// The signed-in user and what their token grants. As an extractor it needs full access
/// (every API scope); see the module documentation.
pub struct CurrentUser(pub User, pub Access, Unread);

/// The user's unread notifications, when read with the user: a page's `GET` shows them in its
/// bell, so the page extractor reads both in one statement
/// ([`turtlemen_db::notifications::user_with_unread`]).
#[derive(Debug, Clone, Copy)]
struct Unread(Option<u32>);

/// What the caller's access token grants and names.
#[derive(Debug, Clone)]
pub struct Access {
    pub scopes: Scopes,
    /// The auth service's session the token was issued in (`sid`).
    pub session_id: String,
    /// The client the token was issued to.
    pub client_id: String,
}

impl CurrentUser {
    /// The user's id.
    pub fn id(&self) -> UserId {
        self.0.id
    }

    /// The user's unread notifications (at most [`crate::notifications::UNREAD_CAP`]) if they
    /// were read with the user, as they are for a page's `GET`.
    pub fn unread(&self) -> Option<u32> {
        self.2.0
    }

    /// The scopes the caller's token grants.
    pub fn scopes(&self) -> &Scopes {
        &self.1.scopes
    }

    /// Ok if the token grants `scope`; the 403 `insufficient_scope` refusal otherwise.
    pub fn require(&self, scope: Scope) -> Result<(), InsufficientScope> {
        if self.1.scopes.grants(scope) { Ok(()) } else { Err(InsufficientScope(vec![scope])) }
    }

    /// Ok if the token grants every API scope (the first-party pages).
    fn require_full_access(&self) -> Result<(), InsufficientScope> {
        let missing: Vec<Scope> = Scope::api().filter(|s| !self.1.scopes.grants(*s)).collect();
        if missing.is_empty() { Ok(()) } else { Err(InsufficientScope(missing)) }
    }
}

/// A token that lacks the scopes an operation needs (RFC 6750 §3.1).
#[derive(Debug)]
pub struct InsufficientScope(pub Vec<Scope>);

impl InsufficientScope {
    fn scope(&self) -> String {
        Scopes::from_iter(self.0.iter().copied()).to_string()
    }
}

impl From<InsufficientScope> for ApiError {
    /// The error alone, for code paths that answer with an [`ApiError`] (no challenge header).
    fn from(e: InsufficientScope) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("The access token does not grant the scope this needs: {}.", e.scope()),
        )
    }
}

impl IntoResponse for InsufficientScope {
    fn into_response(self) -> Response {
        let challenge = format!(r#"Bearer error="insufficient_scope", scope="{}""#, self.scope());
        let mut res = ApiError::from(self).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        res
    }
}

/// Why a user could not be extracted.
#[derive(Debug)]
pub enum Refused {
    /// No valid token (401), or the keys are unreachable (503).
    Token(ApiError),
    /// A valid token without the scope (403).
    Scope(InsufficientScope),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Token(e) => e.into_response(),
            Refused::Scope(e) => e.into_response(),
        }
    }
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Refused {
        Refused::Token(e)
    }
}

/// Whether to read the user's unread notifications with the user: for a page's `GET` (what the
/// [`CurrentUser`] extractors serve), not for the JSON API or a form's `POST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum With {
    User,
    Unread,
}

impl With {
    fn for_page(parts: &Parts) -> With {
        if parts.method == axum::http::Method::GET && !parts.uri.path().starts_with("/api/") {
            With::Unread
        } else {
            With::User
        }
    }
}

/// The user behind a valid access token, whatever it grants.
async fn authenticate(parts: &Parts, state: &ApiState, with: With) -> Result<CurrentUser, ApiError> {
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(ApiError::unauthorized)?;
    let claims = state.jwks.verify_access(token.trim()).await.map_err(|e| match e {
        turtlemen_identity::VerifyError::Keys(_) => ApiError::unavailable("Sign-in is temporarily unavailable."),
        _ => ApiError::unauthorized(),
    })?;
    let id = uuid::Uuid::parse_str(&claims.sub).map_err(|_| ApiError::unauthorized())?;
    let (user, unread) = match with {
        With::User => users::find_by_id(&state.db, UserId(id)).await?.map(|u| (u, None)),
        With::Unread => {
            turtlemen_db::notifications::user_with_unread(&state.db, UserId(id), crate::notifications::UNREAD_CAP)
                .await?
                .map(|(u, n)| (u, Some(n)))
        }
    }
    .ok_or_else(ApiError::unauthorized)?;
    if user.is_banned() {
        // Every token of a banned account, whatever it grants; not 401, which would read as
        // "sign in again" (and make `Option<…>` extractors treat the caller as a visitor).
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "account_banned",
            "This account is suspended by the moderators of this instance.",
        ));
    }
    let access = Access { scopes: claims.scopes(), session_id: claims.sid, client_id: claims.client_id };
    Ok(CurrentUser(user, access, Unread(unread)))
}

/// `None` when the request carries no token or an invalid one; other failures stay errors.
async fn authenticate_optional(parts: &Parts, state: &ApiState, with: With) -> Result<Option<CurrentUser>, ApiError> {
    if !parts.headers.contains_key(header::AUTHORIZATION) {
        return Ok(None);
    }
    match authenticate(parts, state, with).await {
        Ok(user) => Ok(Some(user)),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => Ok(None),
        Err(e) => Err(e),
    }
}

impl FromRequestParts<ApiState> for CurrentUser {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        let user = authenticate(parts, state, With::for_page(parts)).await?;
        user.require_full_access().map_err(Refused::Scope)?;
        Ok(user)
    }
}

/// `Option<CurrentUser>`: the signed-in user with full access, or `None` for a visitor (pages
/// that anyone may see) — also for a token with less than full access.
impl OptionalFromRequestParts<ApiState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Option<Self>, Self::Rejection> {
        Ok(authenticate_optional(parts, state, With::for_page(parts))
            .await?
            .filter(|u| u.require_full_access().is_ok()))
    }
}

/// What an operation needs of the caller's token: one scope, or none beyond a valid token.
pub trait Need: Send + Sync + 'static {
    /// The scope needed; `None`: any valid access token.
    const SCOPE: Option<Scope>;
}

/// Any valid access token (`openid` is always granted): who the caller is, nothing more.
pub struct Signed;
/// [`Scope::VideosRead`].
pub struct VideosRead;
/// [`Scope::VideosWrite`].
pub struct VideosWrite;
/// [`Scope::ChannelsWrite`].
pub struct ChannelsWrite;
/// [`Scope::SubscriptionsRead`].
pub struct SubscriptionsRead;
/// [`Scope::SubscriptionsWrite`].
pub struct SubscriptionsWrite;
/// [`Scope::NotificationsRead`].
pub struct NotificationsRead;
/// [`Scope::NotificationsWrite`].
pub struct NotificationsWrite;
/// [`Scope::CommentsWrite`].
pub struct CommentsWrite;
/// [`Scope::LibraryRead`].
pub struct LibraryRead;
/// [`Scope::LibraryWrite`].
pub struct LibraryWrite;
/// [`Scope::Admin`].
pub struct Admin;
/// [`Scope::Moderation`].
pub struct Moderation;

impl Need for Signed {
    const SCOPE: Option<Scope> = None;
}
impl Need for VideosRead {
    const SCOPE: Option<Scope> = Some(Scope::VideosRead);
}
impl Need for VideosWrite {
    const SCOPE: Option<Scope> = Some(Scope::VideosWrite);
}
impl Need for ChannelsWrite {
    const SCOPE: Option<Scope> = Some(Scope::ChannelsWrite);
}
impl Need for SubscriptionsRead {
    const SCOPE: Option<Scope> = Some(Scope::SubscriptionsRead);
}
impl Need for SubscriptionsWrite {
    const SCOPE: Option<Scope> = Some(Scope::SubscriptionsWrite);
}
impl Need for NotificationsRead {
    const SCOPE: Option<Scope> = Some(Scope::NotificationsRead);
}
impl Need for NotificationsWrite {
    const SCOPE: Option<Scope> = Some(Scope::NotificationsWrite);
}
impl Need for CommentsWrite {
    const SCOPE: Option<Scope> = Some(Scope::CommentsWrite);
}
impl Need for LibraryRead {
    const SCOPE: Option<Scope> = Some(Scope::LibraryRead);
}
impl Need for LibraryWrite {
    const SCOPE: Option<Scope> = Some(Scope::LibraryWrite);
}
impl Need for Admin {
    const SCOPE: Option<Scope> = Some(Scope::Admin);
}
impl Need for Moderation {
    const SCOPE: Option<Scope> = Some(Scope::Moderation);
}

/// The signed-in user, whose token grants what `N` needs; derefs to [`CurrentUser`].
pub struct Scoped<N: Need>(pub CurrentUser, PhantomData<N>);

impl<N: Need> Scoped<N> {
    fn check(user: CurrentUser) -> Result<Self, InsufficientScope> {
        if let Some(scope) = N::SCOPE {
            user.require(scope)?;
        }
        Ok(Scoped(user, PhantomData))
    }
}

impl<N: Need> Deref for Scoped<N> {
    type Target = CurrentUser;
    fn deref(&self) -> &CurrentUser {
        &self.0
    }
}

impl<N: Need> FromRequestParts<ApiState> for Scoped<N> {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
        Scoped::check(authenticate(parts, state, With::User).await?).map_err(Refused::Scope)
    }
}

/// `Option<Scoped<N>>`: `None` for an anonymous visitor, an invalid token, or a token that
/// does not grant what `N` needs (the caller is then treated as anonymous).
impl<N: Need> OptionalFromRequestParts<ApiState> for Scoped<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Option<Self>, Self::Rejection> {
        Ok(authenticate_optional(parts, state, With::User).await?.and_then(|u| Scoped::check(u).ok()))
    }
}
