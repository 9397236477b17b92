//! The auth service (the Keycloak role): accounts and, in time, the OpenID Connect provider,
//! SSO sessions and brokering of external providers.
//!
//! Today it owns account creation and password hashing; its HTTP routes (under `/auth`) arrive
//! with the auth-service issue.

pub mod accounts;
pub mod passwords;

use axum::Router;

/// The auth service's routes, mounted under `/auth` by the gateway.
pub fn router() -> Router {
    Router::new()
}
