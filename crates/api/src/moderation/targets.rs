//! What a report can be about, one function per kind and question: does it exist for this
//! reporter, who owns it, how the queue names it, and how a moderator hides or deletes it.
//!
//! A comment is reported as its viewer sees it (`comments::visible`); hiding and deleting one
//! both remove it (shown as "[removed]" where replies hang on it, else erased).

use crate::ApiState;
use crate::identity::CurrentUser;
use turtlemen_db::comments;
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

/// Ok if `viewer` may see the comment (on a video they may see; a held one only its author, the
/// video's owner and moderators); 404 otherwise.
pub async fn comment_exists(st: &ApiState, viewer: &CurrentUser, id: Uuid) -> Result<(), ApiError> {
    crate::comments::visible(st, &id.to_string(), Some(viewer)).await.map(|_| ())
}

/// The comment's author.
pub async fn comment_owner(st: &ApiState, id: Uuid) -> Result<UserId, ApiError> {
    Ok(comments::get(&st.db, id).await?.ok_or_else(ApiError::not_found)?.author_id)
}

/// Removes the comment as a moderator (hide and delete both land here).
pub async fn remove_comment(st: &ApiState, id: Uuid) -> Result<(), ApiError> {
    comments::get(&st.db, id).await?.ok_or_else(ApiError::not_found)?;
    comments::take_down(&st.db, id, comments::Status::Removed).await?;
    Ok(())
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
        TargetKind::Comment => match comments::get(&st.db, id).await? {
            Some(c) => Described {
                label: match c.status {
                    comments::Status::Deleted => "[deleted]".to_owned(),
                    comments::Status::Removed => "[removed]".to_owned(),
                    _ => c.body.chars().take(120).collect(),
                },
                url: Some(crate::comments::url(&c)),
                owner: Some(c.author_username.clone()),
                owner_id: Some(c.author_id),
                hidden: matches!(c.status, comments::Status::Deleted | comments::Status::Removed),
            },
            None => gone,
        },
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
