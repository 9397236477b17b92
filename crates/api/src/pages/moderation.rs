//! Moderation pages: the "Report" forms (`POST /videos/{id}/report`, `POST /@{handle}/report`),
//! the moderators' queue (`/admin/reports`, its actions `POST /admin/reports/{target}/{id}`) and
//! the accounts page (`/admin/users`; ban and unban for moderators, role and quotas for admins).
//!
//! They go through the same functions as the JSON API ([`crate::moderation`]), so validation,
//! visibility, the rate limit and who may do what are decided once. The admin pages are 404 to
//! anyone but moderators and admins; every form carries the CSRF token ([`super::csrf`]) and
//! comes back to its page, so it all works without JavaScript. `Cache-Control: no-store`.

use super::{context, csrf, private};
use crate::ApiState;
use crate::identity::CurrentUser;
use crate::moderation::actions::{self, Action};
use crate::moderation::reports_api::{self, QueueJson};
use crate::moderation::{Actor, bans, users_api};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, HeaderMap, Uri};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use turtlemen_db::reports::TargetKind;
use turtlemen_db::users::QuotaOverride;
use turtlemen_domain::{Role, UserId};
use turtlemen_http::ApiError;
use turtlemen_web::channel_pages::age_label;
use turtlemen_web::moderation_pages::{self, AccountRow, QueueView, QueuedReport, QueuedTarget, ReportForm, UsersView};
use uuid::Uuid;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/videos/{id}/report", post(report_video))
        .route("/@{handle}/report", post(report_channel_owner))
        .route("/admin/reports", get(queue_page))
        .route("/admin/reports/{target}/{id}", post(decide))
        .route("/admin/users", get(users_page))
        .route("/admin/users/{id}/{change}", post(change_account))
}

/// The "Report" form for a page: `None` for the content's owner (nobody reports themselves).
pub(super) fn report_form(
    st: &ApiState,
    viewer: Option<&CurrentUser>,
    owner: UserId,
    action: String,
    what: &str,
    return_to: &str,
) -> Option<ReportForm> {
    if viewer.is_some_and(|u| u.0.id == owner) {
        return None;
    }
    Some(ReportForm {
        action,
        what: what.to_owned(),
        csrf: viewer.map(|u| csrf::token(st, u)),
        return_to: return_to.to_owned(),
    })
}

/// What the owner of a hidden video, or a moderator, is told on its page.
pub(super) fn hidden_notice(v: &turtlemen_db::videos::Video) -> Option<String> {
    match &v.hidden {
        None => None,
        Some(turtlemen_db::videos::Hidden::Moderation { reason }) => {
            Some(format!("This video is hidden by the moderators: {reason}"))
        }
        Some(turtlemen_db::videos::Hidden::OwnerBanned) => {
            Some("This video is hidden: its owner's account is suspended.".into())
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct ReportFormBody {
    csrf: String,
    reason: String,
}

async fn file_and_thank(
    st: &ApiState,
    user: &CurrentUser,
    (kind, id): (TargetKind, Uuid),
    form: &ReportFormBody,
    back: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    csrf::check(st, user, &form.csrf)?;
    let filed = reports_api::file(st, user, kind, id, &form.reason).await?;
    let ctx = context(st, Some(user), uri, headers).await;
    Ok(private(moderation_pages::reported_page(back, !filed.created, &ctx)))
}

/// `POST /videos/{id}/report`.
async fn report_video(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ReportFormBody>,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found())?;
    let back = format!("/videos/{id}");
    file_and_thank(&st, &user, (TargetKind::Video, id), &form, &back, &uri, &headers).await
}

/// `POST /@{handle}/report`: reports the channel's owner (a user target).
async fn report_channel_owner(
    State(st): State<ApiState>,
    user: CurrentUser,
    Path(handle): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    axum::Form(form): axum::Form<ReportFormBody>,
) -> Result<Response, ApiError> {
    let c = crate::channels::find(&st, &handle).await?;
    let back = crate::channels::page_url(&c.handle);
    file_and_thank(&st, &user, (TargetKind::User, c.owner_id.0), &form, &back, &uri, &headers).await
}

/// The viewer, if they moderate with the page's full access; 404 for anyone else.
fn moderator(viewer: Option<CurrentUser>) -> Result<CurrentUser, ApiError> {
    viewer.filter(crate::moderation::acts_as_moderator).ok_or_else(ApiError::not_found)
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct QueueQuery {
    cursor: Option<String>,
    done: Option<String>,
}

fn queue_view(page: QueueJson, csrf: String, paged: bool, notice: Option<String>) -> QueueView {
    let now = Utc::now();
    QueueView {
        targets: page
            .targets
            .into_iter()
            .map(|t| QueuedTarget {
                kind: t.target.as_str().to_owned(),
                id: t.id.to_string(),
                label: t.described.label,
                url: t.described.url,
                owner: t.described.owner,
                hidden: t.described.hidden,
                reports: t
                    .reports
                    .into_iter()
                    .map(|r| QueuedReport {
                        reporter: r.reporter,
                        reason: r.reason,
                        age: age_label((now - r.created_at).num_seconds()),
                        at: r.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    })
                    .collect(),
            })
            .collect(),
        next_url: page.next_cursor.map(|c| format!("/admin/reports?cursor={c}")),
        paged,
        csrf,
        notice,
        admin: false,
    }
}

/// `GET /admin/reports`.
async fn queue_page(
    State(st): State<ApiState>,
    viewer: Option<CurrentUser>,
    Query(q): Query<QueueQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = moderator(viewer)?;
    let page = reports_api::queue_page(&st, q.cursor.as_deref()).await?;
    let notice = q.done.as_deref().and_then(Action::parse).map(|a| {
        match a {
            Action::Hide => "Hidden; its reports are resolved.",
            Action::Delete => "Deleted; its reports are resolved.",
            Action::Dismiss => "Reports dismissed.",
            Action::Warn => "Warning sent; its reports are resolved.",
            Action::Ban => "Owner banned; their sessions ended.",
        }
        .to_owned()
    });
    let paged = q.cursor.as_deref().is_some_and(|c| !c.is_empty());
    let view =
        QueueView { admin: user.0.role == Role::Admin, ..queue_view(page, csrf::token(&st, &user), paged, notice) };
    let ctx = context(&st, Some(&user), &uri, &headers).await;
    Ok(private(moderation_pages::queue_page(&view, &ctx)))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct DecisionForm {
    csrf: String,
    action: String,
    message: String,
}

/// `POST /admin/reports/{target}/{id}`.
async fn decide(
    State(st): State<ApiState>,
    viewer: Option<CurrentUser>,
    Path((target, id)): Path<(String, String)>,
    headers: HeaderMap,
    extensions: Extensions,
    axum::Form(form): axum::Form<DecisionForm>,
) -> Result<Redirect, ApiError> {
    let user = moderator(viewer)?;
    csrf::check(&st, &user, &form.csrf)?;
    let kind = reports_api::parse_kind(&target)?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::not_found())?;
    let action = Action::parse(&form.action)
        .ok_or_else(|| ApiError::bad_request("invalid_action", "action is hide, delete, dismiss, warn or ban."))?;
    let actor = Actor::of(&st, &user, &headers, crate::moderation::peer(&extensions));
    actions::act(&st, &user, &actor, kind, id, action, Some(&form.message)).await?;
    Ok(Redirect::to(&format!("/admin/reports?done={}", form.action)))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct UsersQuery {
    q: Option<String>,
    after: Option<String>,
    done: Option<String>,
}

/// `GET /admin/users`.
async fn users_page(
    State(st): State<ApiState>,
    viewer: Option<CurrentUser>,
    Query(q): Query<UsersQuery>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = moderator(viewer)?;
    let found = users_api::search(&st, q.q.as_deref(), q.after.as_deref()).await?;
    let query = q.q.clone().unwrap_or_default();
    let next_url = (found.len() == users_api::USERS_PAGE as usize)
        .then(|| found.last())
        .flatten()
        .map(|u| format!("/admin/users?q={}&after={}", encode(&query), encode(&u.username.to_lowercase())));
    let show = |b: Option<u64>| b.map(|b| b.to_string()).unwrap_or_default();
    let view = UsersView {
        query,
        accounts: found
            .iter()
            .map(|u| AccountRow {
                id: u.id.to_string(),
                username: u.username.clone(),
                display_name: u.display_name.clone(),
                role: u.role.as_str().to_owned(),
                banned: u.is_banned(),
                total_quota: show(u.quota.total_bytes),
                daily_quota: show(u.quota.daily_bytes),
            })
            .collect(),
        next_url,
        csrf: csrf::token(&st, &user),
        admin: user.0.role == Role::Admin,
        notice: match q.done.as_deref() {
            Some("ban") => Some("Banned; their sessions ended.".into()),
            Some("unban") => Some("Unbanned.".into()),
            Some("role") => Some("Role set.".into()),
            Some("quota") => Some("Quotas set.".into()),
            _ => None,
        },
    };
    let ctx = context(&st, Some(&user), &uri, &headers).await;
    Ok(private(moderation_pages::users_page(&view, &ctx)))
}

/// Percent-encodes a query value (letters, digits and `-_.~` as they are).
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct AccountForm {
    csrf: String,
    reason: String,
    role: String,
    total_bytes: String,
    daily_bytes: String,
}

/// A quota field: empty is the instance's setting; anything but digits is refused.
fn quota_field(field: &'static str, text: &str) -> Result<Option<u64>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u64>().map(Some).map_err(|_| {
        ApiError::bad_request("invalid_quota", format!("{field}: a number of bytes, or empty for the default."))
    })
}

/// `POST /admin/users/{id}/ban|unban|role|quota`.
async fn change_account(
    State(st): State<ApiState>,
    viewer: Option<CurrentUser>,
    Path((id, change)): Path<(String, String)>,
    headers: HeaderMap,
    extensions: Extensions,
    axum::Form(form): axum::Form<AccountForm>,
) -> Result<Redirect, ApiError> {
    let user = moderator(viewer)?;
    csrf::check(&st, &user, &form.csrf)?;
    let target = users_api::target(&st, &id).await?;
    let actor = Actor::of(&st, &user, &headers, crate::moderation::peer(&extensions));
    let admin_only = || if user.0.role == Role::Admin { Ok(()) } else { Err(ApiError::not_found()) };
    match change.as_str() {
        "ban" => users_api::ban_as(&st, &user, &actor, &target, Some(&form.reason)).await?,
        "unban" => {
            bans::unban(&st.db, &actor, &target).await?;
        }
        "role" => {
            admin_only()?;
            let role = Role::parse(&form.role)
                .ok_or_else(|| ApiError::bad_request("invalid_role", "role is user, moderator or admin."))?;
            bans::set_role(&st.db, &actor, &target, role).await?;
        }
        "quota" => {
            admin_only()?;
            let quota = QuotaOverride {
                total_bytes: quota_field("total_bytes", &form.total_bytes)?,
                daily_bytes: quota_field("daily_bytes", &form.daily_bytes)?,
            };
            bans::set_quota(&st.db, &actor, target.id, quota).await?;
        }
        _ => return Err(ApiError::not_found()),
    }
    Ok(Redirect::to(&format!("/admin/users?q={}&done={change}", encode(&target.username.to_lowercase()))))
}
