//! What a report can be about, one function per kind and question: does it exist for this
//! reporter, who owns it, how the queue names it, and how a moderator hides or deletes it.
//!
//! Comments do not exist on this branch: [`comment_exists`], [`comment_owner`] and
//! [`remove_comment`] answer 400 `unknown_target` until comments land; the comments work fills
//! in those three functions and nothing else here changes.

use crate::ApiState;
use crate::identity::CurrentUser;
use turtlemen_db::reports::TargetKind;
use turtlemen_db::users;
use turtlemen_domain::UserId;
use turtlemen_http::ApiError;
use uuid::Uuid;

/// How the queue shows a target.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ReportedTarget)]
pub struct Described {
    /// A title or a name; "(gone)" when the target no longer exists.
    pub label: String,
    /// Its page (a path), when it has one.
    pub url: Option<String>,
    /// Its owner's username (the user themselves for a user target).
    pub owner: Option<String>,
    #[serde(skip)]
    pub owner_id: Option<UserId>,
    /// Hidden by moderation already (a video), or banned (a user).
    pub hidden: bool,
}

fn unknown_target() -> ApiError {
    ApiError::bad_request("unknown_target", "Comments cannot be reported yet.")
}

/// Until comments land: no comment exists.
pub async fn comment_exists(_st: &ApiState, _viewer: &CurrentUser, _id: Uuid) -> Result<(), ApiError> {
    Err(unknown_target())
}

/// Until comments land: no comment has an owner.
pub async fn comment_owner(_st: &ApiState, _id: Uuid) -> Result<UserId, ApiError> {
    Err(unknown_target())
}

/// Until comments land: there is no comment to remove (hide and delete both land here).
pub async fn remove_comment(_st: &ApiState, _id: Uuid) -> Result<(), ApiError> {
    Err(unknown_target())
}

/// Ok if the target exists and `reporter` may see it: a video they may watch (someone else's
/// private video is 404, as everywhere), an account that is not banned, a comment (see above).
pub async fn check_reportable(
    st: &ApiState,
    reporter: &CurrentUser,
    kind: TargetKind,
    id: Uuid,
) -> Result<(), ApiError> {
    match kind {
        TargetKind::Video => crate::videos::visible(st, &id.to_string(), Some(reporter)).await.map(|_| ()),
        TargetKind::User => {
            let found = users::find_by_id(&st.db, UserId(id)).await?.filter(|u| !u.is_banned());
            found.map(|_| ()).ok_or_else(ApiError::not_found)
        }
        TargetKind::Comment => comment_exists(st, reporter, id).await,
    }
}

/// Who owns the target: the warning's and the ban's recipient. 404 when it is gone.
pub async fn owner(st: &ApiState, kind: TargetKind, id: Uuid) -> Result<UserId, ApiError> {
    match kind {
        TargetKind::Video => {
            let v = turtlemen_db::videos::get(&st.db, id).await?.ok_or_else(ApiError::not_found)?;
            Ok(v.owner_id)
        }
        TargetKind::User => Ok(users::find_by_id(&st.db, UserId(id)).await?.ok_or_else(ApiError::not_found)?.id),
        TargetKind::Comment => comment_owner(st, id).await,
    }
}

/// How the queue names the target.
pub async fn describe(st: &ApiState, kind: TargetKind, id: Uuid) -> Result<Described, ApiError> {
    let gone = Described { label: "(gone)".into(), url: None, owner: None, owner_id: None, hidden: false };
    Ok(match kind {
        TargetKind::Video => match turtlemen_db::videos::get(&st.db, id).await? {
            Some(v) => Described {
                label: v.title.clone(),
                url: Some(format!("/videos/{}", v.id)),
                owner: Some(v.owner_username.clone()),
                owner_id: Some(v.owner_id),
                hidden: v.hidden.is_some(),
            },
            None => gone,
        },
        TargetKind::User => match users::find_by_id(&st.db, UserId(id)).await? {
            Some(u) => Described {
                label: u.display_name.clone(),
                url: Some(crate::channels::page_url(&u.username)),
                owner: Some(u.username.clone()),
                owner_id: Some(u.id),
                hidden: u.is_banned(),
            },
            None => gone,
        },
        TargetKind::Comment => gone,
    })
}

/// Hides the target from everyone but its owner and moderators; `reason` is shown to the owner.
pub async fn hide(st: &ApiState, kind: TargetKind, id: Uuid, reason: &str) -> Result<(), ApiError> {
    match kind {
        TargetKind::Video => {
            if !turtlemen_db::moderation::hide_video(&st.db, id, reason).await? {
                return Err(ApiError::not_found());
            }
            Ok(())
        }
        TargetKind::Comment => remove_comment(st, id).await,
        TargetKind::User => Err(user_has_no_content_action()),
    }
}

/// Deletes the target for good.
pub async fn delete(st: &ApiState, kind: TargetKind, id: Uuid) -> Result<(), ApiError> {
    match kind {
        TargetKind::Video => {
            let v = turtlemen_db::videos::get(&st.db, id).await?.ok_or_else(ApiError::not_found)?;
            crate::videos::erase(st, &v).await
        }
        TargetKind::Comment => remove_comment(st, id).await,
        TargetKind::User => Err(user_has_no_content_action()),
    }
}

fn user_has_no_content_action() -> ApiError {
    ApiError::bad_request(
        "invalid_action",
        "A reported user is warned, banned or the report dismissed; hide and delete apply to content.",
    )
}
