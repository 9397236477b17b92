//! Bans, roles and quotas: the decisions about accounts, shared by the API, the admin pages and
//! the `turtlemen admin` commands, each audited with its actor.
//!
//! A ban changes the database first (account, content, address: one transaction,
//! `turtlemen_db::moderation::ban`) and then ends every session (`turtlemen_signout`): the
//! gateways' marks, the login sessions, the refresh tokens. Ending the sessions runs on every
//! ban request, also when the account was banned already, so a ban whose session store was
//! down a moment ago is completed by asking again. From the database change on, the API refuses
//! the account's tokens and the auth service its sign-ins, whatever the session store does.

use super::Actor;
use turtlemen_db::moderation::{self, Changed};
use turtlemen_db::users::{self, QuotaOverride, User};
use turtlemen_db::{Db, DbError};
use turtlemen_domain::{Role, UserId};
use turtlemen_http::ApiError;
use turtlemen_session::Sessions;

/// Why a change to an account was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountActionError {
    #[error("no such account")]
    NoAccount,
    /// Only a more privileged role may act on an account (a moderator bans users; an admin
    /// also moderators; nobody bans an admin or themselves).
    #[error("{0}")]
    NotAllowed(&'static str),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Sessions(#[from] turtlemen_signout::EndError),
}

impl From<AccountActionError> for ApiError {
    fn from(e: AccountActionError) -> ApiError {
        match e {
            AccountActionError::NoAccount => ApiError::not_found(),
            AccountActionError::NotAllowed(why) => ApiError::new(axum::http::StatusCode::FORBIDDEN, "not_allowed", why),
            AccountActionError::Db(e) => e.into(),
            AccountActionError::Sessions(e) => e.into(),
        }
    }
}

fn rank(role: Role) -> u8 {
    match role {
        Role::User => 0,
        Role::Moderator => 1,
        Role::Admin => 2,
    }
}

/// Ok if `actor_role` (`None`: the command line, which may do anything) may ban `target`.
fn check_may_ban(actor: &Actor, actor_role: Option<Role>, target: &User) -> Result<(), AccountActionError> {
    if actor.user == Some(target.id) {
        return Err(AccountActionError::NotAllowed("You cannot ban yourself."));
    }
    match actor_role {
        Some(role) if rank(role) <= rank(target.role) => {
            Err(AccountActionError::NotAllowed("Only a more privileged role may ban this account."))
        }
        _ => Ok(()),
    }
}

/// Bans `target` (see the module documentation); returns whether it was not banned before.
pub async fn ban(
    db: &Db,
    sessions: &Sessions,
    actor: &Actor,
    actor_role: Option<Role>,
    target: &User,
    reason: &str,
) -> Result<bool, AccountActionError> {
    check_may_ban(actor, actor_role, target)?;
    let changed = match moderation::ban(db, target.id, reason).await? {
        Changed::NoAccount => return Err(AccountActionError::NoAccount),
        Changed::Done => true,
        Changed::Already => false,
    };
    let ended = turtlemen_signout::end_all_sessions(db, sessions, target.id).await?;
    if changed {
        let detail = format!("user={} reason={}", target.id, reason);
        actor.audit(db, "user_banned", &detail).await?;
        tracing::info!(user.id = %target.id, sessions = ended, "account banned");
    }
    Ok(changed)
}

/// Lifts `target`'s ban; returns whether it was banned.
pub async fn unban(db: &Db, actor: &Actor, target: &User) -> Result<bool, AccountActionError> {
    let changed = match moderation::unban(db, target.id).await? {
        Changed::NoAccount => return Err(AccountActionError::NoAccount),
        Changed::Done => true,
        Changed::Already => false,
    };
    if changed {
        actor.audit(db, "user_unbanned", &format!("user={}", target.id)).await?;
        tracing::info!(user.id = %target.id, "account unbanned");
    }
    Ok(changed)
}

/// Sets `target`'s role (admins and the command line only: the caller checks).
pub async fn set_role(db: &Db, actor: &Actor, target: &User, role: Role) -> Result<(), AccountActionError> {
    if actor.user == Some(target.id) && role != target.role {
        return Err(AccountActionError::NotAllowed("You cannot change your own role."));
    }
    if !moderation::set_role(db, target.id, role).await? {
        return Err(AccountActionError::NoAccount);
    }
    let detail = format!("user={} from={} to={}", target.id, target.role.as_str(), role.as_str());
    Ok(actor.audit(db, "role_changed", &detail).await?)
}

/// Sets `target`'s upload quota overrides (admins and the command line only: the caller checks).
pub async fn set_quota(db: &Db, actor: &Actor, target: UserId, quota: QuotaOverride) -> Result<(), AccountActionError> {
    if !moderation::set_quota(db, target, quota).await? {
        return Err(AccountActionError::NoAccount);
    }
    let show = |b: Option<u64>| b.map_or_else(|| "default".to_owned(), |b| b.to_string());
    let detail = format!("user={} total={} daily={}", target, show(quota.total_bytes), show(quota.daily_bytes));
    Ok(actor.audit(db, "quota_changed", &detail).await?)
}

/// The account named `username` (as typed), or [`AccountActionError::NoAccount`].
pub async fn find_by_username(db: &Db, username: &str) -> Result<User, AccountActionError> {
    let name = turtlemen_domain::Username::parse(username).map_err(|_| AccountActionError::NoAccount)?;
    users::find_by_username(db, &name).await?.ok_or(AccountActionError::NoAccount)
}
