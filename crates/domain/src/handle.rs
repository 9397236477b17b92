//! Channel handles: the public name of a channel (`/@handle`).
//!
//! A handle follows the username rules ([`crate::Username`]: NFKC, 3 to 32 letters, digits,
//! `_`, `-`, `.`, starting and ending with a letter or digit), and refuses more reserved words:
//! the usernames' and the names of our own pages and features, so that `@studio` or
//! `@subscriptions` never looks like part of the site. A user's first channel takes their
//! username as its handle; handles and usernames share one case-insensitive namespace, kept
//! unique by the database through [`Handle::key`].

use crate::username::{Username, UsernameError};
use std::fmt;

/// Words refused as handles on top of the reserved usernames.
const RESERVED: &[&str] = &[
    "about",
    "channel",
    "channels",
    "community",
    "explore",
    "feed",
    "healthz",
    "help",
    "home",
    "live",
    "metrics",
    "moderator",
    "notifications",
    "official",
    "playlists",
    "privacy",
    "readyz",
    "search",
    "signin",
    "signup",
    "staff",
    "studio",
    "subscriptions",
    "terms",
    "trending",
    "upload",
    "video",
    "videos",
    "watch",
    "www",
];

/// A parsed channel handle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Handle(String);

/// Why a handle was refused; the message is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    #[error("a handle must be {} to {} characters long", crate::username::MIN_LEN, crate::username::MAX_LEN)]
    Length,
    #[error("a handle may hold only letters, digits, '_', '-' and '.'")]
    Characters,
    #[error("a handle must start and end with a letter or digit")]
    Edges,
    #[error("this handle is reserved")]
    Reserved,
}

impl Handle {
    pub fn parse(input: &str) -> Result<Self, HandleError> {
        let name = Username::parse(input).map_err(|e| match e {
            UsernameError::Length => HandleError::Length,
            UsernameError::Characters => HandleError::Characters,
            UsernameError::Edges => HandleError::Edges,
            UsernameError::Reserved => HandleError::Reserved,
        })?;
        if RESERVED.contains(&name.key().as_str()) {
            return Err(HandleError::Reserved);
        }
        Ok(Self(name.as_str().to_owned()))
    }

    /// The key to look a channel up by from text a visitor typed or a link carried: the same
    /// normalisation as [`Handle::parse`] without its checks (so channels whose handle predates
    /// a reserved word are still found). `None` for text no handle can match.
    pub fn lookup_key(input: &str) -> Option<String> {
        use unicode_normalization::UnicodeNormalization;
        let normalized: String = input.trim().nfkc().collect();
        let len = normalized.chars().count();
        (crate::username::MIN_LEN..=crate::username::MAX_LEN).contains(&len).then(|| normalized.to_lowercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form kept unique by the database.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_usernames_accept() {
        assert_eq!(Handle::parse("Turtle.Talks").unwrap().as_str(), "Turtle.Talks");
        assert_eq!(Handle::parse("Turtle.Talks").unwrap().key(), "turtle.talks");
        assert_eq!(Handle::parse("ｚｏｅ").unwrap().as_str(), "zoe");
        assert_eq!(Handle::parse("Zoë_99").unwrap().as_str(), "Zoë_99");
    }

    #[test]
    fn refuses_bad_and_reserved_handles() {
        assert_eq!(Handle::parse("ab"), Err(HandleError::Length));
        assert_eq!(Handle::parse("a b"), Err(HandleError::Characters));
        assert_eq!(Handle::parse("<script>"), Err(HandleError::Characters));
        assert_eq!(Handle::parse("evil\u{202e}txt"), Err(HandleError::Characters));
        assert_eq!(Handle::parse("-abc"), Err(HandleError::Edges));
        for word in ["admin", "API", "auth", "oauth2", "media", "static", "Studio", "upload", "search", "subscriptions"]
        {
            assert_eq!(Handle::parse(word), Err(HandleError::Reserved), "{word}");
        }
    }
}
