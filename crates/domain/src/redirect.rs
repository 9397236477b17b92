//! Where a visitor may be sent after signing in or out: only a path on this site.
//!
//! A [`RedirectTarget`] is a same-origin, absolute path (`/watch/abc?t=30`). Everything that a
//! browser could read as another origin is refused: scheme-relative `//host`, backslashes
//! (`/\host`, which browsers treat like `//`), control characters and whitespace (stripped by
//! browsers, turning `/\t/host` into `//host`), and anything not starting with `/`.

use std::fmt;

/// Longest accepted target.
pub const MAX_LEN: usize = 2048;

/// A checked same-origin path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectTarget(String);

impl RedirectTarget {
    /// Parses a local path; `None` when it is not one.
    pub fn parse_local(input: &str) -> Option<Self> {
        let ok = input.len() <= MAX_LEN
            && input.starts_with('/')
            && !input.starts_with("//")
            && !input.contains('\\')
            && !input.chars().any(|c| c.is_control() || c.is_whitespace());
        ok.then(|| Self(input.to_string()))
    }

    /// The home page.
    pub fn home() -> Self {
        Self("/".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RedirectTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_only() {
        for ok in [
            "/",
            "/watch/abc?t=30",
            "/auth/authorize?client_id=x&redirect_uri=https%3A%2F%2Fa",
            "/@ann",
            "/%2F%2Fevil.com",
        ] {
            assert!(RedirectTarget::parse_local(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "https://evil.com",
            "//evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "/\t/evil.com",
            "/ /evil.com",
            " /x",
            "javascript:alert(1)",
            "evil.com",
            "/\r\nLocation: x",
            "http:/evil.com",
            "///evil.com",
        ] {
            assert!(RedirectTarget::parse_local(bad).is_none(), "{bad:?}");
        }
        assert!(RedirectTarget::parse_local(&format!("/{}", "a".repeat(MAX_LEN))).is_none());
    }
}
