//! Who is calling the API: the access token in `Authorization: Bearer`, verified here against
//! the issuer's keys (signature, `iss`, `aud`, `exp`) — never a header a client could set, and
//! no session lookup. A request that bypassed the gateway without a token has no identity.

use crate::ApiState;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use turtlemen_db::users::{self, User};
use turtlemen_domain::UserId;
use turtlemen_http::ApiError;

/// The signed-in user; extracting it fails with 401 when there is none.
pub struct CurrentUser(pub User);

impl FromRequestParts<ApiState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Self::Rejection> {
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
        let user = users::find_by_id(&state.db, UserId(id)).await?.ok_or_else(ApiError::unauthorized)?;
        Ok(CurrentUser(user))
    }
}

/// `Option<CurrentUser>`: the signed-in user, or `None` for a visitor without a valid token
/// (pages that anyone may see).
impl OptionalFromRequestParts<ApiState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Option<Self>, Self::Rejection> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(None);
        }
        match <CurrentUser as FromRequestParts<ApiState>>::from_request_parts(parts, state).await {
            Ok(user) => Ok(Some(user)),
            Err(e) if e.status == axum::http::StatusCode::UNAUTHORIZED => Ok(None),
            Err(e) => Err(e),
        }
    }
}
