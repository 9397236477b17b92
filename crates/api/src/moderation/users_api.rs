//! Accounts for moderators and admins: `GET /api/v1/admin/users` (search by name),
//! `PUT`/`DELETE /api/v1/admin/users/{id}/ban` (moderators and admins), and for admins only
//! `PUT …/{id}/role` and `PUT …/{id}/quota`. The decisions themselves are [`super::bans`]'.

use super::bans;
use super::{Actor, Moderator};
use crate::ApiState;
use crate::identity::CurrentUser;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use turtlemen_db::users::{self, QuotaOverride, User};
use turtlemen_domain::{Role, UserId};
use turtlemen_http::{ApiError, ErrorBody};
use turtlemen_identity::Scope;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The account routes, each with its description ([`crate::openapi`]).
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(ban, unban))
        .routes(routes!(set_role))
        .routes(routes!(set_quota))
}

/// Accounts per page of the search.
pub const USERS_PAGE: u32 = 50;

/// An account as moderators see it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ModeratedUser)]
pub struct UserJson {
    #[schema(value_type = Uuid)]
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    #[schema(value_type = String, example = "user")]
    pub role: Role,
    pub banned_at: Option<DateTime<Utc>>,
    /// Upload quota overrides in bytes (`null`: the instance's setting).
    pub upload_quota_bytes: Option<u64>,
    pub daily_upload_quota_bytes: Option<u64>,
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserJson {
    fn from(u: &User) -> UserJson {
        UserJson {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            role: u.role,
            banned_at: u.banned_at,
            upload_quota_bytes: u.quota.total_bytes,
            daily_upload_quota_bytes: u.quota.daily_bytes,
            created_at: u.created_at,
        }
    }
}

/// `GET /admin/users`'s query.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// The start of the username (any case); empty: everyone.
    pub q: Option<String>,
    /// The last username of the previous page.
    pub after: Option<String>,
}

/// A page of accounts.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ModeratedUsers)]
pub struct UsersJson {
    pub users: Vec<UserJson>,
}

/// Accounts whose username starts with `q`, in username order after `after`.
pub async fn search(st: &ApiState, q: Option<&str>, after: Option<&str>) -> Result<Vec<User>, ApiError> {
    let prefix: String = q.unwrap_or("").trim().to_lowercase();
    if prefix.chars().count() > 64 || prefix.chars().any(char::is_control) {
        return Err(ApiError::bad_request("invalid_query", "q: at most 64 characters of a username."));
    }
    let after = after.map(str::to_lowercase).filter(|a| !a.is_empty() && a.chars().count() <= 64);
    Ok(turtlemen_db::moderation::find_users(&st.db, &prefix, after.as_deref(), USERS_PAGE).await?)
}

/// Search accounts.
#[utoipa::path(get, path = "/admin/users", tag = "moderation",
    summary = "Accounts whose username starts with `q`, in username order (moderators and admins; 404 to anyone else).",
    security(("oauth2" = ["moderation"])),
    params(UsersQuery),
    responses(
        (status = 200, description = "Up to 50 accounts.", body = UsersJson),
        (status = 400, description = "`invalid_query`.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: an access token was sent and is not valid (no token at all is a 404).", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`; `account_banned`.", body = ErrorBody),
        (status = 404, description = "Not a moderator (or not signed in).", body = ErrorBody),
    ))]
async fn list(
    State(st): State<ApiState>,
    _moderator: Moderator,
    Query(q): Query<UsersQuery>,
) -> Result<Json<UsersJson>, ApiError> {
    let found = search(&st, q.q.as_deref(), q.after.as_deref()).await?;
    Ok(Json(UsersJson { users: found.iter().map(UserJson::from).collect() }))
}

/// The account `id` names, or 404.
pub async fn target(st: &ApiState, id: &str) -> Result<User, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found())?;
    users::find_by_id(&st.db, UserId(id)).await?.ok_or_else(ApiError::not_found)
}

/// `PUT /admin/users/{id}/ban`'s body.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = BanRequest)]
pub struct BanBody {
    /// Why (kept for moderators; never shown to the account).
    #[schema(max_length = 1000)]
    pub reason: Option<String>,
}

fn optional_json<T: serde::de::DeserializeOwned + Default>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() { Ok(T::default()) } else { crate::channels::json_body(headers, body) }
}

/// Bans `user` as `moderator` (the page and the API).
pub async fn ban_as(
    st: &ApiState,
    moderator: &CurrentUser,
    actor: &Actor,
    user: &User,
    reason: Option<&str>,
) -> Result<(), ApiError> {
    let reason = match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => super::check_text("reason", r, super::actions::MAX_MESSAGE_CHARS)?,
        None => String::new(),
    };
    bans::ban(&st.db, &st.sessions, actor, Some(moderator.0.role), user, &reason).await?;
    Ok(())
}

/// Bans an account.
#[utoipa::path(put, path = "/admin/users/{id}/ban", tag = "moderation",
    summary = "Bans an account: its sessions end at once everywhere, its tokens are refused, its content is hidden, its address cannot register again (idempotent; moderators and admins).",
    security(("oauth2" = ["moderation"])),
    params(("id" = String, Path, description = "The account.")),
    request_body(content = BanBody, content_type = "application/json", description = "Optional."),
    responses(
        (status = 204, description = "Banned."),
        (status = 400, description = "`invalid_json`, `invalid_reason`.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: an access token was sent and is not valid (no token at all is a 404).", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`; `not_allowed`: an account of an equal or higher role, or oneself; `account_banned`.", body = ErrorBody),
        (status = 404, description = "No such account, or not a moderator.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: a body that is not JSON.", body = ErrorBody),
        (status = 503, description = "`unavailable`: the session store is down; the ban stands, ask again to end the sessions.", body = ErrorBody),
    ))]
async fn ban(
    State(st): State<ApiState>,
    Moderator(moderator): Moderator,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let user = target(&st, &id).await?;
    let body: BanBody = optional_json(&headers, &body)?;
    let actor = Actor::of(&st, &moderator, &headers, super::peer(&extensions));
    ban_as(&st, &moderator, &actor, &user, body.reason.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a ban.
#[utoipa::path(delete, path = "/admin/users/{id}/ban", tag = "moderation",
    summary = "Lifts a ban: the account may sign in again and its content shows again, except what a moderator hid (idempotent; moderators and admins).",
    security(("oauth2" = ["moderation"])),
    params(("id" = String, Path, description = "The account.")),
    responses(
        (status = 204, description = "Not banned (any more)."),
        (status = 401, description = "`invalid_token`: an access token was sent and is not valid (no token at all is a 404).", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`; `account_banned`.", body = ErrorBody),
        (status = 404, description = "No such account, or not a moderator.", body = ErrorBody),
    ))]
async fn unban(
    State(st): State<ApiState>,
    Moderator(moderator): Moderator,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Result<StatusCode, ApiError> {
    let user = target(&st, &id).await?;
    let actor = Actor::of(&st, &moderator, &headers, super::peer(&extensions));
    bans::unban(&st.db, &actor, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Refuses (404, as if the route did not exist) a moderator who is not an admin, and an admin
/// whose token lacks `admin` (403): roles and quotas are the admins'.
fn require_admin(moderator: &CurrentUser) -> Result<(), ApiError> {
    if moderator.0.role != Role::Admin {
        return Err(ApiError::not_found());
    }
    Ok(moderator.require(Scope::Admin)?)
}

/// `PUT /admin/users/{id}/role`'s body.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = RoleChange)]
pub struct RoleBody {
    /// user, moderator or admin.
    #[schema(value_type = String, pattern = "^(user|moderator|admin)$")]
    pub role: Role,
}

/// Sets a role.
#[utoipa::path(put, path = "/admin/users/{id}/role", tag = "moderation",
    summary = "Sets an account's role: user, moderator or admin (admins only, with the `admin` scope too).",
    security(("oauth2" = ["moderation"])),
    params(("id" = String, Path, description = "The account.")),
    request_body(content = RoleBody, content_type = "application/json"),
    responses(
        (status = 204, description = "Set."),
        (status = 400, description = "`invalid_json`: not a role.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: an access token was sent and is not valid (no token at all is a 404).", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`; `not_allowed`: one's own role; `account_banned`.", body = ErrorBody),
        (status = 404, description = "No such account, or not an admin.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not JSON.", body = ErrorBody),
    ))]
async fn set_role(
    State(st): State<ApiState>,
    Moderator(admin): Moderator,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    require_admin(&admin)?;
    let user = target(&st, &id).await?;
    let body: RoleBody = crate::channels::json_body(&headers, &body)?;
    let actor = Actor::of(&st, &admin, &headers, super::peer(&extensions));
    bans::set_role(&st.db, &actor, &user, body.role).await.map_err(ApiError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /admin/users/{id}/quota`'s body: `null` (or absent) restores the instance's setting.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = QuotaChange)]
pub struct QuotaBody {
    /// Bytes of originals the account may keep in all (0: no limit).
    pub total_bytes: Option<u64>,
    /// Bytes the account may upload in any 24 hours (0: no limit).
    pub daily_bytes: Option<u64>,
}

/// Sets upload quotas.
#[utoipa::path(put, path = "/admin/users/{id}/quota", tag = "moderation",
    summary = "Sets an account's upload quotas, overriding the instance's (admins only, with the `admin` scope too).",
    security(("oauth2" = ["moderation"])),
    params(("id" = String, Path, description = "The account.")),
    request_body(content = QuotaBody, content_type = "application/json"),
    responses(
        (status = 204, description = "Set."),
        (status = 400, description = "`invalid_json`: not a quota.", body = ErrorBody),
        (status = 401, description = "`invalid_token`: an access token was sent and is not valid (no token at all is a 404).", body = ErrorBody),
        (status = 403, description = "`insufficient_scope`; `account_banned`.", body = ErrorBody),
        (status = 404, description = "No such account, or not an admin.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the body is not JSON.", body = ErrorBody),
    ))]
async fn set_quota(
    State(st): State<ApiState>,
    Moderator(admin): Moderator,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    require_admin(&admin)?;
    let user = target(&st, &id).await?;
    let body: QuotaBody = crate::channels::json_body(&headers, &body)?;
    let actor = Actor::of(&st, &admin, &headers, super::peer(&extensions));
    let quota = QuotaOverride { total_bytes: body.total_bytes, daily_bytes: body.daily_bytes };
    bans::set_quota(&st.db, &actor, user.id, quota).await.map_err(ApiError::from)?;
    Ok(StatusCode::NO_CONTENT)
}
