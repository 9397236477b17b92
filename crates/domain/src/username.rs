//! Usernames: the public handle of an account (`@name`).
//!
//! Rules, applied after Unicode NFKC normalisation (so look-alike compatibility forms such as
//! full-width letters collapse to one spelling):
//! - 3 to 32 characters;
//! - letters and digits of any script, and `_`, `-`, `.`;
//! - starts and ends with a letter or digit;
//! - not one of the reserved names that would clash with our own paths.
//!
//! Uniqueness is case-insensitive: [`Username::key`] is the lower-cased form that the database
//! keeps unique, while [`Username::as_str`] keeps the spelling the user chose.

use std::fmt;
use unicode_normalization::UnicodeNormalization;

pub const MIN_LEN: usize = 3;
pub const MAX_LEN: usize = 32;

const RESERVED: &[&str] = &[
    "admin",
    "administrator",
    "api",
    "auth",
    "oauth2",
    "root",
    "static",
    "media",
    "system",
    "turtlemen",
    "me",
    "settings",
    "upload",
    "uploads",
    "login",
    "logout",
    "register",
    "support",
];

/// A parsed username.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Username(String);

/// Why a username was refused; the message is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("a username must be {MIN_LEN} to {MAX_LEN} characters long")]
    Length,
    #[error("a username may hold only letters, digits, '_', '-' and '.'")]
    Characters,
    #[error("a username must start and end with a letter or digit")]
    Edges,
    #[error("this username is reserved")]
    Reserved,
}

impl Username {
    pub fn parse(input: &str) -> Result<Self, UsernameError> {
        let normalized: String = input.trim().nfkc().collect();
        let len = normalized.chars().count();
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            return Err(UsernameError::Length);
        }
        if !normalized.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            return Err(UsernameError::Characters);
        }
        let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        if !alnum(normalized.chars().next()) || !alnum(normalized.chars().last()) {
            return Err(UsernameError::Edges);
        }
        let key = normalized.to_lowercase();
        if RESERVED.contains(&key.as_str()) {
            return Err(UsernameError::Reserved);
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form kept unique by the database.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(Username::parse("alice").unwrap().as_str(), "alice");
        assert_eq!(Username::parse(" Zoë_99 ").unwrap().as_str(), "Zoë_99");
        // Full-width letters fold to ASCII under NFKC.
        assert_eq!(Username::parse("ａｂｃ").unwrap().as_str(), "abc");
        assert_eq!(Username::parse("Alice").unwrap().key(), "alice");
    }

    #[test]
    fn refuses_bad_names() {
        assert_eq!(Username::parse("ab"), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"a".repeat(33)), Err(UsernameError::Length));
        assert_eq!(Username::parse("a b c"), Err(UsernameError::Characters));
        assert_eq!(Username::parse("a/../b"), Err(UsernameError::Characters));
        assert_eq!(Username::parse("<script>"), Err(UsernameError::Characters));
        assert_eq!(Username::parse("_abc"), Err(UsernameError::Edges));
        assert_eq!(Username::parse("abc."), Err(UsernameError::Edges));
        assert_eq!(Username::parse("Admin"), Err(UsernameError::Reserved));
    }
}
