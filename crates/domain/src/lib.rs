//! Domain types shared by every role.
//!
//! Values here are *parsed*, not validated later: a [`Username`] or an [`Email`] can only be built
//! through its `parse` function, so code that holds one never has to check it again. This crate
//! knows nothing of HTTP, JSON request shapes or SQL.

mod category;
pub mod comment_text;
mod email;
pub mod failure;
mod handle;
mod ids;
mod redirect;
pub mod search;
mod secret;
pub mod trace;
mod username;

pub use category::Category;
pub use comment_text::{BlockedWord, BlockedWordError, CommentText, CommentTextError};
pub use email::{Email, EmailError};
pub use failure::{Classify, FailureClass};
pub use handle::{Handle, HandleError};
pub use ids::UserId;
pub use redirect::RedirectTarget;
pub use search::{SearchText, SearchTextError};
pub use secret::Secret;
pub use username::{Username, UsernameError};

/// A user's role on this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    /// Works the report queue: hides and deletes content, warns and bans users.
    Moderator,
    /// Everything a moderator does, and roles, quotas and the instance's administration.
    Admin,
}

impl Role {
    /// Every role, least privileged first.
    pub const ALL: [Role; 3] = [Role::User, Role::Moderator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }

    /// Reads a role as stored; anything unknown is the least privileged role.
    pub fn from_stored(s: &str) -> Self {
        Role::parse(s).unwrap_or(Role::User)
    }

    /// The role named `s` exactly (`user`, `moderator`, `admin`).
    pub fn parse(s: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether the role may act on reports, hide or delete others' content, warn and ban.
    pub fn may_moderate(self) -> bool {
        matches!(self, Role::Moderator | Role::Admin)
    }
}
