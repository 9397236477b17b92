//! The OpenID Connect provider endpoints.
//!
//! Scopes come from one list, [`turtlemen_identity::Scope`]: the OpenID Connect ones (`openid`,
//! `profile`, `email`, `offline_access`) and the API's (`videos:read`, `videos:write`, `channels:write`, `subscriptions:read`,
//! `subscriptions:write`, `notifications:read`, `notifications:write`, `comments:write`,
//! `library:read`, `library:write`, `account`, `admin`, `moderation`).
//! A third-party client gets what the user consented to; a first-party client (the gateway)
//! needs no consent and always holds every API scope. A refresh token is issued only for
//! `offline_access`.

pub mod authorize;
pub mod discovery;
pub mod error;
pub mod logout;
pub mod token;
pub mod userinfo;

use turtlemen_db::clients::Client;
use turtlemen_identity::{Scope, Scopes};

/// The names of the scopes this provider knows (discovery's `scopes_supported`); others are
/// dropped from a request.
pub fn supported_scopes() -> Vec<&'static str> {
    Scope::ALL.iter().map(|s| s.as_str()).collect()
}

/// The requested scopes we support, in a stable order, space-separated.
pub fn normalize_scope(requested: &str) -> String {
    Scopes::parse(requested).to_string()
}

/// Whether `granted` (space-separated) covers every scope in `wanted`.
pub fn scope_covers(granted: &str, wanted: &str) -> bool {
    Scopes::parse(granted).covers(&Scopes::parse(wanted))
}

/// The scope a token for `client` carries when `asked` was granted: a first-party client
/// holds every API scope whatever it asked (it acts for the user on the user's own pages).
pub fn granted_scope(client: &Client, asked: &str) -> String {
    let scopes = Scopes::parse(asked);
    if client.first_party { scopes.with(Scope::api()) } else { scopes }.to_string()
}

/// What a scope lets a client do, for the consent page.
pub fn describe_scope(scope: &str) -> Option<&'static str> {
    Scope::parse(scope).map(Scope::description)
}
