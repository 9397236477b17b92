//! OAuth 2.0 error responses (RFC 6749 §5.2): `{"error", "error_description"}` with the
//! status the RFC gives, `Cache-Control: no-store`, and `WWW-Authenticate` for client
//! authentication failures.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error of the token, revocation, introspection or userinfo endpoints.
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        let status = match error {
            "invalid_client" | "invalid_token" => StatusCode::UNAUTHORIZED,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        Self { status, error, description: description.into() }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }

    pub fn invalid_client() -> Self {
        Self::new("invalid_client", "client authentication failed")
    }
}

impl From<turtlemen_db::DbError> for OAuthError {
    fn from(e: turtlemen_db::DbError) -> Self {
        tracing::error!(error = %e, "database error in an OAuth endpoint");
        Self::new("temporarily_unavailable", "try again shortly")
    }
}

impl From<turtlemen_session::SessionError> for OAuthError {
    fn from(e: turtlemen_session::SessionError) -> Self {
        tracing::error!(error = %e, "session store error in an OAuth endpoint");
        Self::new("temporarily_unavailable", "try again shortly")
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.error, "error_description": self.description });
        let mut res = (self.status, Json(body)).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.error == "invalid_client" {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"turtlemen\""));
        }
        if self.error == "invalid_token" {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
        }
        res
    }
}
