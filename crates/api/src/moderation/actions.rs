//! A moderator's decision on a reported target — the one function the queue page and the API
//! both call. Each action closes every open report of the target, recording who and how
//! (`reports.resolved_by`, `resolution`), and goes to the audit log with its actor.

use super::{Actor, bans, targets};
use crate::ApiState;
use crate::identity::CurrentUser;
use turtlemen_db::reports::{self, Resolution, TargetKind};
use turtlemen_http::ApiError;
use uuid::Uuid;

/// What a moderator does with a reported target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ModerationAction)]
pub enum Action {
    /// Hide the content from everyone but its owner (told why) and moderators.
    Hide,
    /// Delete the content for good.
    Delete,
    /// Close the reports; nothing else changes.
    Dismiss,
    /// Send the owner a warning (a notification holding the message).
    Warn,
    /// Ban the owner.
    Ban,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "hide" => Some(Action::Hide),
            "delete" => Some(Action::Delete),
            "dismiss" => Some(Action::Dismiss),
            "warn" => Some(Action::Warn),
            "ban" => Some(Action::Ban),
            _ => None,
        }
    }
}

/// Longest moderator message (a hide reason, a warning, a ban reason).
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// Carries out `action` on the target `kind`/`id` as `moderator`, then resolves its open
/// reports; returns how many were resolved. `message` is the reason shown to the owner (hide),
/// the warning's text (warn, required), or the ban's reason.
pub async fn act(
    st: &ApiState,
    moderator: &CurrentUser,
    actor: &Actor,
    kind: TargetKind,
    id: Uuid,
    action: Action,
    message: Option<&str>,
) -> Result<u64, ApiError> {
    let message = match message.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => Some(super::check_text("message", m, MAX_MESSAGE_CHARS)?),
        None => None,
    };
    let resolution = match action {
        Action::Hide => {
            let reason = message.as_deref().unwrap_or("It breaks this instance's rules.");
            targets::hide(st, kind, id, reason).await?;
            Resolution::Hidden
        }
        Action::Delete => {
            targets::delete(st, kind, id).await?;
            Resolution::Deleted
        }
        Action::Dismiss => Resolution::Dismissed,
        Action::Warn => {
            let text = message.as_deref().ok_or_else(|| {
                ApiError::bad_request("invalid_message", "message: a warning needs the words to send.")
            })?;
            let owner = targets::owner(st, kind, id).await?;
            turtlemen_db::moderation::warn(&st.db, owner, text).await?;
            Resolution::Warned
        }
        Action::Ban => {
            let owner = targets::owner(st, kind, id).await?;
            let user = turtlemen_db::users::find_by_id(&st.db, owner).await?.ok_or_else(ApiError::not_found)?;
            let reason = message.as_deref().unwrap_or("");
            bans::ban(&st.db, &st.sessions, actor, Some(moderator.0.role), &user, reason).await?;
            Resolution::Banned
        }
    };
    let resolved = reports::resolve(&st.db, kind, id, moderator.0.id, resolution).await?;
    let detail = format!("target={}:{} action={} reports={}", kind.as_str(), id, resolution.as_str(), resolved);
    actor.audit(&st.db, "report_resolved", &detail).await?;
    tracing::info!(target.kind = kind.as_str(), target.id = %id, action = resolution.as_str(), reports = resolved, "reports resolved");
    Ok(resolved)
}
