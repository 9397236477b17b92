//! The OpenID Connect provider endpoints.

pub mod authorize;
pub mod discovery;
pub mod error;
pub mod logout;
pub mod token;
pub mod userinfo;

/// Scopes this provider knows; others are dropped from a request.
pub const SUPPORTED_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// The requested scopes we support, in a stable order, space-separated.
pub fn normalize_scope(requested: &str) -> String {
    let asked: Vec<&str> = requested.split(' ').filter(|s| !s.is_empty()).collect();
    SUPPORTED_SCOPES.iter().filter(|s| asked.contains(s)).copied().collect::<Vec<_>>().join(" ")
}

/// Whether `granted` (space-separated) covers every scope in `wanted`.
pub fn scope_covers(granted: &str, wanted: &str) -> bool {
    let granted: Vec<&str> = granted.split(' ').collect();
    wanted.split(' ').filter(|s| !s.is_empty()).all(|s| granted.contains(&s))
}

/// What a scope lets a client do, for the consent page.
pub fn describe_scope(scope: &str) -> Option<&'static str> {
    match scope {
        "openid" => Some("Know who you are on Turtlemen"),
        "profile" => Some("See your username, display name and role"),
        "email" => Some("See your email address"),
        "offline_access" => Some("Stay connected while you are away"),
        _ => None,
    }
}
