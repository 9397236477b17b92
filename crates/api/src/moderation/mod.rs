//! Moderation: reports (anyone signed in), the moderators' queue and its actions, bans, roles
//! and per-account upload quotas — the JSON API here, the pages in `pages::moderation`, the
//! `turtlemen admin` commands in the binary, all through the same functions:
//! - [`targets`]: what a report can be about — existence and visibility to the reporter, the
//!   owner, hiding and deleting — one function per kind and action (a comment is hidden or
//!   deleted by removing it);
//! - [`actions`]: a moderator's decision on a reported target (hide, delete, dismiss, warn, ban),
//!   which resolves its open reports and goes to the audit log;
//! - [`bans`]: ban and unban (the account, its content, its sessions at the gateways and the
//!   auth service, its address), role and quota changes — shared with the CLI;
//! - [`reports_api`], [`users_api`]: the operations under `/api/v1/reports` and `/api/v1/admin/…`.
//!
//! Who may: [`Moderator`] — the moderator or admin role *and* a token granting `moderation`;
//! anyone else is told the route does not exist (404), as for the admin API.

pub mod actions;
pub mod bans;
pub mod reports_api;
pub mod targets;
pub mod users_api;

use crate::ApiState;
use crate::identity::{CurrentUser, Scoped, Signed};
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use turtlemen_domain::UserId;
use turtlemen_http::ApiError;
use turtlemen_identity::Scope;
use utoipa_axum::router::OpenApiRouter;

/// The moderation routes, each with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    reports_api::routes().merge(users_api::routes())
}

/// Whether `user` acts as a moderator: the moderator or admin role and a token granting
/// `moderation` (a third-party app a moderator allowed less acts as a plain user).
pub fn acts_as_moderator(user: &CurrentUser) -> bool {
    user.0.role.may_moderate() && user.scopes().grants(Scope::Moderation)
}

/// The caller of a moderation operation: a moderator or admin whose token grants
/// `moderation`. Anyone else gets 404 (the route does not exist for them); a moderator whose
/// token lacks the scope gets 403 `insufficient_scope`.
pub struct Moderator(pub CurrentUser);

impl FromRequestParts<ApiState> for Moderator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Response> {
        let user = <Scoped<Signed> as OptionalFromRequestParts<ApiState>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?
            .filter(|u| u.0.0.role.may_moderate())
            .ok_or_else(|| ApiError::not_found().into_response())?;
        user.require(Scope::Moderation).map_err(IntoResponse::into_response)?;
        Ok(Moderator(user.0))
    }
}

/// Who did something, for the audit log: the acting account (`None`: the `turtlemen admin`
/// command line), and where the request came from.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: Option<UserId>,
    pub ip: String,
    pub user_agent: String,
}

impl Actor {
    /// The operator at the command line.
    pub fn command_line() -> Actor {
        Actor { user: None, ip: "command-line".into(), user_agent: String::new() }
    }

    /// `user`, acting through a request with these headers from `peer` (the address is the
    /// client's behind `trusted_proxies`).
    pub fn of(
        st: &crate::ApiState,
        user: &CurrentUser,
        headers: &HeaderMap,
        peer: Option<std::net::SocketAddr>,
    ) -> Actor {
        let ip = peer.map(|p| st.trusted_proxies.client_ip(p.ip(), headers).to_string()).unwrap_or_default();
        let user_agent: String =
            headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").chars().take(256).collect();
        Actor { user: Some(user.0.id), ip, user_agent }
    }

    /// Records `event` with `detail` in the audit log as this actor's.
    pub async fn audit(&self, db: &turtlemen_db::Db, event: &str, detail: &str) -> Result<(), turtlemen_db::DbError> {
        turtlemen_db::audit::record(db, self.user, event, &self.ip, &self.user_agent, detail).await
    }
}

/// The peer address, when the server recorded one.
pub(crate) fn peer(parts: &axum::http::Extensions) -> Option<std::net::SocketAddr> {
    parts.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0)
}

/// Checks a moderator's or reporter's free text: trimmed, `1..=max` characters, no control
/// characters but line breaks, no bidirectional overrides or isolates (they would reorder what
/// the moderator reads). `field` names it in the 400 `invalid_{field}`.
pub fn check_text(field: &'static str, text: &str, max: usize) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > max || crate::channels::has_control(text, true) {
        return Err(ApiError::bad_request(
            match field {
                "reason" => "invalid_reason",
                _ => "invalid_message",
            },
            format!("{field}: 1 to {max} characters, without control or direction characters"),
        ));
    }
    Ok(text.to_owned())
}
