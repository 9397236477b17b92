//! Email addresses.
//!
//! Deliberately permissive about the local part (RFC 5321 allows far more than most forms do)
//! and strict about what would break mail delivery or our storage: one `@`, a dotted domain,
//! no whitespace or control characters, at most 254 bytes. The domain is lower-cased; the
//! local part keeps its case, and [`Email::key`] (all lower-case) is what is kept unique.

use std::fmt;

pub const MAX_LEN: usize = 254;

/// A parsed email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Email(String);

/// Why an email address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("an email address must be at most {MAX_LEN} characters long")]
    Length,
    #[error("an email address looks like name@example.org")]
    Shape,
}

impl Email {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let input = input.trim();
        if input.len() > MAX_LEN {
            return Err(EmailError::Length);
        }
        let (local, domain) = input.rsplit_once('@').ok_or(EmailError::Shape)?;
        let bad_char = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ',' | ';');
        if local.is_empty()
            || local.len() > 64
            || local.contains('@')
            || local.chars().any(bad_char)
            || domain.chars().any(bad_char)
        {
            return Err(EmailError::Shape);
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(EmailError::Shape);
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form kept unique by the database.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts() {
        assert_eq!(Email::parse("Ann@Example.ORG").unwrap().as_str(), "Ann@example.org");
        assert_eq!(Email::parse("a.b+tag@sub.example.co").unwrap().key(), "a.b+tag@sub.example.co");
    }

    #[test]
    fn refuses() {
        for bad in [
            "",
            "no-at",
            "@example.org",
            "a@",
            "a@localhost",
            "a b@example.org",
            "a@exa mple.org",
            "a@-x.org",
            "a@x..org",
            "a@b@c.org",
            "<a>@x.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(Email::parse(&format!("{}@example.org", "a".repeat(250))), Err(EmailError::Length));
    }
}
