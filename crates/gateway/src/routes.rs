//! The route table: which upstream serves a request, and what it asks of the visitor.
//!
//! First match wins, by host (exact or `*.domain`), path prefix on a segment boundary and
//! method, on the request's own Host and path — never on a header a client could add such as
//! `X-Forwarded-Host`. Paths with dot segments or encoded slashes and dots are refused before
//! matching (see [`is_ambiguous`]), so `/api/../upload` cannot slip past a rule.
//! Without `[[routes]]` in the configuration, [`builtin`] applies.

use axum::http::{Method, Request, header};
use std::time::Duration;
pub use turtlemen_config::{AuthMode, HostPattern, RouteSpec, UpstreamRef};
use turtlemen_http::metrics::RouteMetrics;

/// Instance-wide values a route falls back on.
#[derive(Debug, Clone, Copy)]
pub struct RouteDefaults {
    pub max_body_bytes: u64,
    pub max_upload_bytes: u64,
    pub request_timeout: Duration,
}

impl Default for RouteDefaults {
    fn default() -> Self {
        Self {
            max_body_bytes: 2 * 1024 * 1024,
            max_upload_bytes: 8 * 1024 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// The built-in table for the built-in roles.
pub fn builtin(defaults: &RouteDefaults) -> Vec<RouteSpec> {
    use AuthMode::{None as Open, Optional, Required};
    use UpstreamRef::{Api, Auth, Gateway};
    let r = |name: &str, path: &str, upstream: UpstreamRef, auth: AuthMode| RouteSpec {
        name: name.into(),
        host: None,
        path: path.into(),
        methods: None,
        upstream,
        auth,
        max_body_bytes: None,
        timeout: None,
    };
    vec![
        r("auth", "/auth", Auth, Open),
        r("oauth2", "/oauth2", Gateway, Open),
        r("static", "/static", Api, Open),
        RouteSpec {
            max_body_bytes: Some(defaults.max_upload_bytes),
            timeout: Some(Duration::ZERO),
            ..r("uploads", "/api/v1/uploads", Api, Optional)
        },
        r("api", "/api", Api, Optional),
        // Media URLs are signed and their answers are the same for everyone: no session is
        // looked up, and files go out by sendfile.
        RouteSpec { timeout: Some(Duration::ZERO), ..r("media", "/media", Api, Open) },
        r("upload", "/upload", Api, Required),
        r("subscriptions", "/subscriptions", Api, Required),
        r("notifications", "/notifications", Api, Required),
        r("settings", "/settings", Api, Required),
        r("history", "/history", Api, Required),
        r("studio", "/studio", Api, Required),
        r("root", "/", Api, Optional),
    ]
}

/// One route, ready to serve.
#[derive(Debug, Clone)]
pub struct Route {
    pub spec: RouteSpec,
    pub max_body_bytes: u64,
    /// `None`: no total timeout.
    pub timeout: Option<Duration>,
    pub metrics: RouteMetrics,
}

/// Why no route serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoute {
    /// Every route names a host, and this Host is none of them (421).
    UnknownHost,
    /// Nothing matches (404).
    NotFound,
}

/// The routes, in order.
#[derive(Debug, Clone)]
pub struct RouteTable {
    pub routes: Vec<Route>,
    all_hosted: bool,
    any_hosted: bool,
}

impl Default for RouteTable {
    fn default() -> Self {
        let d = RouteDefaults::default();
        Self::new(builtin(&d), &d)
    }
}

impl RouteTable {
    pub fn new(specs: Vec<RouteSpec>, defaults: &RouteDefaults) -> Self {
        let all_hosted = !specs.is_empty() && specs.iter().all(|s| s.host.is_some());
        let any_hosted = specs.iter().any(|s| s.host.is_some());
        let routes = specs
            .into_iter()
            .map(|spec| Route {
                max_body_bytes: spec.max_body_bytes.unwrap_or(defaults.max_body_bytes),
                timeout: match spec.timeout {
                    Some(t) if t.is_zero() => None,
                    Some(t) => Some(t),
                    None => Some(defaults.request_timeout),
                },
                metrics: RouteMetrics::for_route(&spec.name),
                spec,
            })
            .collect();
        Self { routes, all_hosted, any_hosted }
    }

    /// The index of the first route serving `req`.
    pub fn find<B>(&self, req: &Request<B>) -> Result<usize, NoRoute> {
        let host = if self.any_hosted { request_host(req) } else { None };
        self.find_by(host.as_deref(), req.method(), req.uri().path())
    }

    /// The index of the first route serving `host` (lower case, no port), `method` and `path`.
    pub fn find_by(&self, host: Option<&str>, method: &Method, path: &str) -> Result<usize, NoRoute> {
        let found = self.routes.iter().position(|r| {
            let s = &r.spec;
            s.host.as_ref().is_none_or(|h| host.is_some_and(|host| h.matches(host)))
                && prefix_matches(&s.path, path)
                && s.methods.as_ref().is_none_or(|ms| ms.iter().any(|m| m == method.as_str()))
        });
        match found {
            Some(i) => Ok(i),
            None if self.all_hosted
                && !self
                    .routes
                    .iter()
                    .any(|r| r.spec.host.as_ref().is_some_and(|h| host.is_some_and(|x| h.matches(x)))) =>
            {
                Err(NoRoute::UnknownHost)
            }
            None => Err(NoRoute::NotFound),
        }
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    prefix == "/" || path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The request's own host: the target's authority (absolute form, or HTTP/2's `:authority`) or
/// the Host header, lower case, port removed. The server refuses a request whose two disagree
/// (`turtlemen_http::server::authority_fault`), and the proxy forwards this same authority.
pub fn request_host<B>(req: &Request<B>) -> Option<String> {
    let raw = match req.uri().authority() {
        Some(a) => a.host().to_string(),
        None => {
            let h = req.headers().get(header::HOST)?.to_str().ok()?;
            match h.strip_prefix('[') {
                Some(v6) => v6.split(']').next()?.to_string(),
                None => h.rsplit_once(':').map_or(h, |(host, _port)| host).to_string(),
            }
        }
    };
    Some(raw.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase())
}

/// Whether a path could be read two ways (dot segments, encoded `/`, `\` or `.`).
pub fn is_ambiguous(path: &str) -> bool {
    let b = path.as_bytes();
    // Every request passes here: a path with no `%`, `\` or `.` (most of them) is looked over once.
    if !b.iter().any(|c| matches!(c, b'%' | b'\\' | b'.')) {
        return false;
    }
    let encoded = b.windows(3).any(|w| {
        w[0] == b'%'
            && ((w[1] == b'2' && matches!(w[2], b'f' | b'F' | b'e' | b'E'))
                || (w[1] == b'5' && matches!(w[2], b'c' | b'C')))
    });
    encoded || path.contains('\\') || path.split('/').any(|seg| seg == "." || seg == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(t: &RouteTable, path: &str) -> AuthMode {
        t.routes[t.find_by(None, &Method::GET, path).unwrap()].spec.auth
    }

    #[test]
    fn builtin_matching() {
        let t = RouteTable::default();
        assert_eq!(mode(&t, "/upload"), AuthMode::Required);
        assert_eq!(mode(&t, "/upload/new"), AuthMode::Required);
        assert_eq!(mode(&t, "/uploads-are-public"), AuthMode::Optional, "segment boundary");
        assert_eq!(mode(&t, "/auth/token"), AuthMode::None);
        assert_eq!(mode(&t, "/media/token/videos/id/hls/master.m3u8"), AuthMode::None);
        assert_eq!(mode(&t, "/authx"), AuthMode::Optional);
        assert_eq!(mode(&t, "/api/v1/me"), AuthMode::Optional);
        assert_eq!(mode(&t, "/"), AuthMode::Optional);
        let uploads = &t.routes[t.find_by(None, &Method::PATCH, "/api/v1/uploads/abc").unwrap()];
        assert_eq!(uploads.spec.name, "uploads");
        assert_eq!(uploads.max_body_bytes, 8 * 1024 * 1024 * 1024);
        assert_eq!(uploads.timeout, None);
        let api = &t.routes[t.find_by(None, &Method::POST, "/api/v1/videos").unwrap()];
        assert_eq!((api.max_body_bytes, api.timeout), (2 * 1024 * 1024, Some(Duration::from_secs(30))));
        assert_eq!(
            t.routes[t.find_by(None, &Method::GET, "/oauth2/auth").unwrap()].spec.upstream,
            UpstreamRef::Gateway
        );
    }

    #[test]
    fn host_method_and_order() {
        let spec = |name: &str, host: Option<HostPattern>, path: &str, methods: Option<Vec<String>>| RouteSpec {
            name: name.into(),
            host,
            path: path.into(),
            methods,
            upstream: UpstreamRef::Api,
            auth: AuthMode::None,
            max_body_bytes: None,
            timeout: None,
        };
        let t = RouteTable::new(
            vec![
                spec("cdn", Some(HostPattern::Suffix(".cdn.example.org".into())), "/", None),
                spec("ro", Some(HostPattern::Exact("example.org".into())), "/api", Some(vec!["GET".into()])),
                spec("site", Some(HostPattern::Exact("example.org".into())), "/", None),
            ],
            &RouteDefaults::default(),
        );
        let name = |host: &str, m: Method, p: &str| t.find_by(Some(host), &m, p).map(|i| t.routes[i].spec.name.clone());
        assert_eq!(name("a.b.cdn.example.org", Method::GET, "/x").unwrap(), "cdn");
        assert_eq!(name("example.org", Method::GET, "/api/x").unwrap(), "ro");
        assert_eq!(name("example.org", Method::POST, "/api/x").unwrap(), "site", "method mismatch falls through");
        assert_eq!(name("cdn.example.org", Method::GET, "/"), Err(NoRoute::UnknownHost));
        assert_eq!(t.find_by(None, &Method::GET, "/"), Err(NoRoute::UnknownHost));

        let req = Request::builder().uri("/x").header("host", "Example.ORG:8443").body(()).unwrap();
        assert_eq!(request_host(&req).as_deref(), Some("example.org"));
        let req = Request::builder().uri("/x").header("host", "[::1]:80").body(()).unwrap();
        assert_eq!(request_host(&req).as_deref(), Some("::1"));
        let req = Request::builder().uri("https://Video.example.org/x").body(()).unwrap();
        assert_eq!(request_host(&req).as_deref(), Some("video.example.org"));
    }

    #[test]
    fn ambiguous_paths() {
        for p in ["/api/../upload", "/./upload", "/%2e%2e/upload", "/api%2Fx", "/a\\b", "/x/..", "/a%5cb"] {
            assert!(is_ambiguous(p), "{p}");
        }
        for p in ["/upload", "/api/v1/bench", "/watch/abc.mp4", "/a..b/c", "/a%20b", "/"] {
            assert!(!is_ambiguous(p), "{p}");
        }
    }
}
