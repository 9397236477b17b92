//! Who an external login is, and linking provider accounts to local ones.
//!
//! First login through a provider:
//! 1. the (provider, subject) pair is linked already → that account;
//! 2. a local account has the provider's email → linked to it only when the provider said the
//!    email is verified *and* the operator set `link_by_verified_email` for that provider;
//!    otherwise nothing is linked and the person is asked to sign in and link from the security
//!    page;
//! 3. otherwise a new account without a password: a username made from the provider's
//!    (`preferred_username`, `login`, the email's local part) and made unique, the provider's
//!    name as display name, its email — verified only when the provider says so.
//!
//! Never: a silent link by an unverified email, a provider account linked to two local ones.

use super::Profile;
use crate::AuthState;
use turtlemen_config::IdentityProvider;
use turtlemen_db::DbError;
use turtlemen_db::identities::{self, NewIdentity};
use turtlemen_db::users::{self, NewUser, User};
use turtlemen_domain::{Email, Role, UserId, Username};

/// What a first (or later) external login resolves to.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Sign in as this account; `how` says why (`known`, `linked_by_email`, `created`).
    SignIn { user: User, how: &'static str },
    /// A local account has this email and may not be linked automatically.
    EmailTaken,
    /// The provider shared no usable email, and there is no account to sign in to.
    NoEmail,
}

fn identity<'a>(provider: &'a IdentityProvider, profile: &'a Profile) -> NewIdentity<'a> {
    NewIdentity {
        provider: &provider.id,
        subject: &profile.subject,
        email: profile.email.as_deref(),
        email_verified: profile.email_verified,
    }
}

/// Resolves an external login to an account, linking or creating one as the rules allow.
pub async fn resolve_login(
    state: &AuthState,
    provider: &IdentityProvider,
    profile: &Profile,
) -> Result<LoginOutcome, DbError> {
    // Twice at most: a concurrent first login may create the link between our look-up and insert.
    for _ in 0..2 {
        if let Some(link) = identities::find(&state.db, &provider.id, &profile.subject).await? {
            identities::record_login(&state.db, link.id, profile.email.as_deref(), profile.email_verified).await?;
            return Ok(match users::find_by_id(&state.db, link.user_id).await? {
                Some(user) => LoginOutcome::SignIn { user, how: "known" },
                None => LoginOutcome::NoEmail,
            });
        }
        let email = profile.email.as_deref().and_then(|e| Email::parse(e).ok());
        let Some(email) = email else { return Ok(LoginOutcome::NoEmail) };
        if let Some(user) = users::find_by_email(&state.db, &email).await? {
            if !(profile.email_verified && provider.link_by_verified_email) {
                return Ok(LoginOutcome::EmailTaken);
            }
            match identities::link(&state.db, user.id, &identity(provider, profile)).await {
                Ok(link) => {
                    identities::record_login(&state.db, link.id, profile.email.as_deref(), profile.email_verified)
                        .await?;
                    return Ok(LoginOutcome::SignIn { user, how: "linked_by_email" });
                }
                Err(DbError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        match create(state, provider, profile, &email).await? {
            Created::User(user) => return Ok(LoginOutcome::SignIn { user, how: "created" }),
            Created::EmailTaken => return Ok(LoginOutcome::EmailTaken),
            Created::IdentityTaken => continue,
        }
    }
    Ok(LoginOutcome::NoEmail)
}

enum Created {
    User(User),
    EmailTaken,
    IdentityTaken,
}

async fn create(
    state: &AuthState,
    provider: &IdentityProvider,
    profile: &Profile,
    email: &Email,
) -> Result<Created, DbError> {
    let display_name = profile
        .name
        .as_deref()
        .map(|n| n.trim().chars().filter(|c| !c.is_control()).take(64).collect::<String>())
        .filter(|n| !n.is_empty());
    // A banned account's address is taken for good (until an unban), as if the account held it.
    if turtlemen_db::moderation::is_email_banned(&state.db, email).await? {
        return Ok(Created::EmailTaken);
    }
    for username in username_candidates(profile, email) {
        let new = NewUser {
            display_name: display_name.clone().unwrap_or_else(|| username.as_str().to_owned()),
            username,
            email: email.clone(),
            password_hash: None,
            role: Role::User,
            promote_if_first: state.settings.first_user_admin,
        };
        match identities::create_user_with_identity(
            &state.db,
            &new,
            profile.email_verified,
            &identity(provider, profile),
        )
        .await
        {
            Ok(user) => return Ok(Created::User(user)),
            Err(DbError::Conflict { constraint }) if constraint.contains("username") => continue,
            Err(DbError::Conflict { constraint }) if constraint.contains("email") => return Ok(Created::EmailTaken),
            Err(DbError::Conflict { .. }) => return Ok(Created::IdentityTaken),
            Err(e) => return Err(e),
        }
    }
    Err(DbError::Conflict { constraint: "username".into() })
}

/// A username from `text`: disallowed characters become `-`, edges trimmed to letters or digits,
/// at most 26 characters (room for a suffix).
pub fn username_base(text: &str) -> Option<String> {
    let mapped: String =
        text.chars().map(|c| if c.is_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '-' }).collect();
    let trimmed: String = mapped.trim_matches(|c: char| !c.is_alphanumeric()).chars().take(26).collect::<String>();
    let trimmed = trimmed.trim_end_matches(|c: char| !c.is_alphanumeric()).to_owned();
    Username::parse(&trimmed).ok().map(|u| u.as_str().to_owned())
}

/// Usernames to try in turn: the base, then with 2…9, then with random numbers.
fn username_candidates(profile: &Profile, email: &Email) -> Vec<Username> {
    let local = email.as_str().split('@').next().unwrap_or("");
    let base = [profile.username_hint.as_deref(), Some(local), profile.name.as_deref()]
        .into_iter()
        .flatten()
        .find_map(username_base)
        .unwrap_or_else(|| "user".to_owned());
    let mut out = vec![base.clone()];
    out.extend((2..10).map(|n| format!("{base}{n}")));
    out.extend((0..5).map(|_| {
        let n = u32::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..4].try_into().unwrap_or([0; 4])) % 1_000_000;
        format!("{base}-{n}")
    }));
    // Each becomes the handle of the account's first channel too, so it must parse as one.
    out.into_iter()
        .filter(|c| turtlemen_domain::Handle::parse(c).is_ok())
        .filter_map(|c| Username::parse(&c).ok())
        .collect()
}

/// What linking from the security page did.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkOutcome {
    Linked,
    /// Linked to this account already: nothing to do.
    AlreadyYours,
    /// Linked to another account: refused.
    OtherAccount,
}

pub async fn link_to(
    state: &AuthState,
    user_id: UserId,
    provider: &IdentityProvider,
    profile: &Profile,
) -> Result<LinkOutcome, DbError> {
    if let Some(link) = identities::find(&state.db, &provider.id, &profile.subject).await? {
        return Ok(if link.user_id == user_id { LinkOutcome::AlreadyYours } else { LinkOutcome::OtherAccount });
    }
    match identities::link(&state.db, user_id, &identity(provider, profile)).await {
        Ok(_) => Ok(LinkOutcome::Linked),
        Err(DbError::Conflict { .. }) => Ok(LinkOutcome::OtherAccount),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_from_provider_names() {
        assert_eq!(username_base("octocat").as_deref(), Some("octocat"));
        assert_eq!(username_base("Jane Doe").as_deref(), Some("Jane-Doe"));
        assert_eq!(username_base("  --j.doe+tag-- ").as_deref(), Some("j.doe-tag"));
        assert_eq!(username_base("ab"), None, "too short");
        assert_eq!(username_base("admin"), None, "reserved");
        assert_eq!(username_base(&"x".repeat(40)).map(|s| s.len()), Some(26));
        let email = Email::parse("ann.lee@example.org").unwrap();
        let names = username_candidates(&Profile { subject: "1".into(), ..Profile::default() }, &email);
        assert_eq!(names[0].as_str(), "ann.lee");
        assert_eq!(names[1].as_str(), "ann.lee2");
        assert!(names.len() >= 10);
    }
}
