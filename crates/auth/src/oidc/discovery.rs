//! OpenID Connect discovery and the JWK set.

use crate::AuthState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

pub async fn configuration(State(state): State<AuthState>) -> Response {
    let i = &state.issuer;
    let doc = serde_json::json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks"),
        "revocation_endpoint": format!("{i}/revoke"),
        "introspection_endpoint": format!("{i}/introspect"),
        "end_session_endpoint": format!("{i}/logout"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "userinfo_signing_alg_values_supported": ["none"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": crate::oidc::supported_scopes(),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "sid",
                             "preferred_username", "name", "email", "email_verified", "groups"],
        "prompt_values_supported": ["none", "login", "consent"],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    });
    cached(Json(doc).into_response())
}

/// The key set: kept by HTTP caches for [`JWKS_MAX_AGE_SECS`](crate::signing_keys::JWKS_MAX_AGE_SECS)
/// at most, which a rotation's publication lead outlasts.
pub async fn jwks(State(state): State<AuthState>) -> Response {
    let mut res = Json(state.signer().jwks()).into_response();
    let max_age = format!("public, max-age={}", crate::signing_keys::JWKS_MAX_AGE_SECS);
    if let Ok(value) = HeaderValue::from_str(&max_age) {
        res.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jwk-set+json"));
    res
}

fn cached(mut res: Response) -> Response {
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}
