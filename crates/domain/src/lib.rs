//! Domain types shared by every role.
//!
//! Values here are *parsed*, not validated later: a [`Username`] or an [`Email`] can only be built
//! through its `parse` function, so code that holds one never has to check it again. This crate
//! knows nothing of HTTP, JSON request shapes or SQL.

mod category;
pub mod comment_text;
mod email;
mod handle;
mod ids;
mod redirect;
pub mod search;
mod secret;
mod username;

pub use category::Category;
pub use comment_text::{BlockedWord, BlockedWordError, CommentText, CommentTextError};
pub use email::{Email, EmailError};
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
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Reads a role as stored; anything unknown is the least privileged role.
    pub fn from_stored(s: &str) -> Self {
        if s == "admin" { Role::Admin } else { Role::User }
    }
}
