//! The userinfo endpoint: the signed-in user's claims, for a valid access token, by scope.

use crate::AuthState;
use crate::oidc::error::OAuthError;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use turtlemen_db::users;
use turtlemen_domain::{Role, UserId};

pub async fn userinfo(State(state): State<AuthState>, headers: HeaderMap) -> Response {
    let result: Result<serde_json::Value, OAuthError> = async {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| OAuthError::new("invalid_token", "a Bearer access token is required"))?;
        let claims = state
            .signer()
            .verify_access(token.trim(), &state.issuer)
            .map_err(|e| OAuthError::new("invalid_token", e.to_string()))?;
        let id = uuid::Uuid::parse_str(&claims.sub).map_err(|_| OAuthError::new("invalid_token", "bad subject"))?;
        let user = users::find_by_id(&state.db, UserId(id))
            .await?
            .ok_or_else(|| OAuthError::new("invalid_token", "the account no longer exists"))?;
        let has = |s: &str| claims.scope.split(' ').any(|x| x == s);
        let mut body = serde_json::json!({ "sub": claims.sub });
        if has("profile") {
            body["preferred_username"] = user.username.clone().into();
            body["name"] = user.display_name.clone().into();
            body["groups"] = serde_json::json!(if user.role == Role::Admin { vec!["admin"] } else { vec![] });
        }
        if has("email") {
            body["email"] = user.email.clone().into();
            body["email_verified"] = user.email_verified.into();
        }
        Ok(body)
    }
    .await;
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}
