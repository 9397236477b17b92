//! Which paths need a signed-in visitor.
//!
//! First match wins, by path prefix on a segment boundary, on the request's own path — never on
//! a header a client could set. Paths with dot segments or encoded slashes and dots are
//! refused before matching, so `/api/../upload` cannot slip past a rule.

/// What a route asks of the visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Signed-in visitors only: browsers are sent to sign in, API clients get 401.
    Required,
    /// Identity is handed on when there is one.
    Optional,
    /// The upstream handles its own authentication (the auth service) or needs none.
    None,
}

/// One rule.
#[derive(Debug, Clone)]
pub struct Route {
    pub prefix: &'static str,
    pub auth: AuthMode,
}

/// The rules, first match wins; anything unmatched is `Optional`.
#[derive(Debug, Clone)]
pub struct RouteTable {
    pub routes: Vec<Route>,
}

impl Default for RouteTable {
    fn default() -> Self {
        use AuthMode::*;
        let r = |prefix, auth| Route { prefix, auth };
        Self {
            routes: vec![
                r("/auth", None),
                r("/static", None),
                r("/healthz", None),
                r("/readyz", None),
                r("/metrics", None),
                r("/upload", Required),
                r("/subscriptions", Required),
                r("/settings", Required),
                r("/studio", Required),
                r("/api", Optional),
                r("/", Optional),
            ],
        }
    }
}

impl RouteTable {
    pub fn mode(&self, path: &str) -> AuthMode {
        self.routes
            .iter()
            .find(|r| {
                r.prefix == "/"
                    || path == r.prefix
                    || path.strip_prefix(r.prefix).is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'))
            })
            .map_or(AuthMode::Optional, |r| r.auth)
    }
}

/// Whether a path could be read two ways (dot segments, encoded `/`, `\` or `.`).
pub fn is_ambiguous(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains("%2e")
        || path.contains('\\')
        || path.split('/').any(|seg| seg == "." || seg == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let t = RouteTable::default();
        assert_eq!(t.mode("/upload"), AuthMode::Required);
        assert_eq!(t.mode("/upload/new"), AuthMode::Required);
        assert_eq!(t.mode("/uploads-are-public"), AuthMode::Optional, "segment boundary");
        assert_eq!(t.mode("/auth/token"), AuthMode::None);
        assert_eq!(t.mode("/authx"), AuthMode::Optional);
        assert_eq!(t.mode("/api/v1/me"), AuthMode::Optional);
        assert_eq!(t.mode("/"), AuthMode::Optional);
    }

    #[test]
    fn ambiguous_paths() {
        for p in ["/api/../upload", "/./upload", "/%2e%2e/upload", "/api%2Fx", "/a\\b", "/x/.."] {
            assert!(is_ambiguous(p), "{p}");
        }
        for p in ["/upload", "/watch/abc.mp4", "/a..b/c"] {
            assert!(!is_ambiguous(p), "{p}");
        }
    }
}
