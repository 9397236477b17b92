//! The gateway's route table and upstream pools as configured: `[[routes]]` and
//! `[upstreams.NAME]` in the TOML file (they have no flag or environment form).
//!
//! [`RouteSettings`] and [`UpstreamSettings`] are the raw TOML shapes; [`resolve`] checks every
//! entry and turns them into [`RouteSpec`]s and [`UpstreamSpec`]s, with errors on one line that
//! name the entry and the key (`routes[2].path: …`). Matching itself lives in the gateway.

use crate::ConfigError;
use std::collections::BTreeMap;
use std::time::Duration;

/// What a route asks of the visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Signed-in visitors only: browsers are sent to sign in, API clients get 401.
    Required,
    /// Identity is handed on when there is one.
    Optional,
    /// The upstream handles its own authentication (the auth service) or needs none.
    None,
}

/// One `[[routes]]` entry, as written.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    pub upstream: String,
    pub auth: AuthMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
}

/// One `[upstreams.NAME]` entry, as written.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSettings {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_timeout_secs: Option<u64>,
}

/// Where a route sends its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamRef {
    /// The auth service (in this process, or the `upstream_auth` pool).
    Auth,
    /// The API server (in this process, or the `upstream_api` pool).
    Api,
    /// The gateway's own endpoints (`/oauth2/…`).
    Gateway,
    /// A pool from `[upstreams.NAME]`.
    Named(String),
}

/// Which hosts a route serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this host (lower case, no port).
    Exact(String),
    /// Any subdomain of this one (`*.example.org` is stored as `.example.org`).
    Suffix(String),
}

impl HostPattern {
    /// Whether `host` (lower case, port removed) is served.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        }
    }
}

/// A checked route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub name: String,
    pub host: Option<HostPattern>,
    /// A path prefix matched on a segment boundary; `/` matches everything.
    pub path: String,
    /// Upper-case method names; `None`: every method.
    pub methods: Option<Vec<String>>,
    pub upstream: UpstreamRef,
    pub auth: AuthMode,
    /// `None`: the instance's `max_body_bytes`.
    pub max_body_bytes: Option<u64>,
    /// `None`: the instance's `request_timeout_secs`; `Some(ZERO)`: no total timeout.
    pub timeout: Option<Duration>,
}

/// A checked upstream pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSpec {
    pub urls: Vec<String>,
    /// Speak HTTP/2 without TLS (h2c, prior knowledge) to this pool.
    pub http2: bool,
    pub connect_timeout: Duration,
    /// Longest wait for the response head, and longest pause inside a response body.
    pub read_timeout: Duration,
}

impl UpstreamSpec {
    /// A pool with the default timeouts.
    pub fn http1(urls: Vec<String>) -> Self {
        Self { urls, http2: false, connect_timeout: Duration::from_secs(3), read_timeout: Duration::from_secs(60) }
    }
}

fn entry_error(key: String, message: impl Into<String>) -> ConfigError {
    ConfigError::Entry { key, message: message.into() }
}

/// Checks the `[upstreams]` table.
pub fn resolve_upstreams(
    raw: Option<&BTreeMap<String, UpstreamSettings>>,
) -> Result<BTreeMap<String, UpstreamSpec>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, u) in raw.into_iter().flatten() {
        let key = |field: &str| format!("upstreams.{name}.{field}");
        if !is_name(name) {
            return Err(entry_error(format!("upstreams.{name}"), "names use a-z, 0-9, - and _"));
        }
        if matches!(name.as_str(), "auth" | "api" | "gateway") {
            return Err(entry_error(
                format!("upstreams.{name}"),
                "auth, api and gateway are built in; pick another name",
            ));
        }
        let urls = crate::parse_upstream_list(&key("urls"), u.urls.iter().map(String::as_str))?;
        if urls.is_empty() {
            return Err(entry_error(key("urls"), "needs at least one http://HOST:PORT"));
        }
        let connect_ms = u.connect_timeout_ms.unwrap_or(3000);
        if connect_ms == 0 {
            return Err(entry_error(key("connect_timeout_ms"), "must be greater than zero"));
        }
        let read = u.read_timeout_secs.unwrap_or(60);
        if read == 0 {
            return Err(entry_error(key("read_timeout_secs"), "must be greater than zero"));
        }
        out.insert(
            name.clone(),
            UpstreamSpec {
                urls,
                http2: u.http2.unwrap_or(false),
                connect_timeout: Duration::from_millis(connect_ms),
                read_timeout: Duration::from_secs(read),
            },
        );
    }
    Ok(out)
}

/// Checks the `[[routes]]` list against the known upstreams.
pub fn resolve_routes(
    raw: &[RouteSettings],
    upstreams: &BTreeMap<String, UpstreamSpec>,
) -> Result<Vec<RouteSpec>, ConfigError> {
    let mut out: Vec<RouteSpec> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let key = |field: &str| format!("routes[{i}].{field}");
        if !is_name(&r.name) {
            return Err(entry_error(key("name"), format!("{:?}: names use a-z, 0-9, - and _", r.name)));
        }
        if out.iter().any(|o| o.name == r.name) {
            return Err(entry_error(key("name"), format!("{:?} is used by an earlier route", r.name)));
        }
        let path = r.path.as_str();
        let path_ok = path.starts_with('/')
            && (path == "/" || !path.ends_with('/'))
            && !path.contains(['?', '#', '%', '\\', ' '])
            && !path.split('/').any(|s| s == "." || s == "..");
        if !path_ok {
            return Err(entry_error(
                key("path"),
                format!(
                    "{path:?}: use a path prefix like /api (starts with /, no trailing /, no ? # % or dot segments)"
                ),
            ));
        }
        let host = match r.host.as_deref() {
            None => None,
            Some(h) => Some(parse_host(h).ok_or_else(|| {
                entry_error(key("host"), format!("{h:?}: use a host name like video.example.org or *.example.org"))
            })?),
        };
        let methods = match &r.methods {
            None => None,
            Some(list) if list.is_empty() => {
                return Err(entry_error(key("methods"), "leave it out for every method, or name at least one"));
            }
            Some(list) => {
                let mut ms = Vec::new();
                for m in list {
                    if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()) {
                        return Err(entry_error(key("methods"), format!("{m:?} is not a method like GET or POST")));
                    }
                    ms.push(m.to_ascii_uppercase());
                }
                Some(ms)
            }
        };
        let upstream = match r.upstream.as_str() {
            "auth" => UpstreamRef::Auth,
            "api" => UpstreamRef::Api,
            "gateway" => UpstreamRef::Gateway,
            name if upstreams.contains_key(name) => UpstreamRef::Named(name.to_string()),
            name => {
                return Err(entry_error(
                    key("upstream"),
                    format!("{name:?} is neither auth, api, gateway nor a name from [upstreams.NAME]"),
                ));
            }
        };
        if r.max_body_bytes == Some(0) {
            return Err(entry_error(key("max_body_bytes"), "must be greater than zero"));
        }
        out.push(RouteSpec {
            name: r.name.clone(),
            host,
            path: r.path.clone(),
            methods,
            upstream,
            auth: r.auth,
            max_body_bytes: r.max_body_bytes,
            timeout: r.timeout_secs.map(Duration::from_secs),
        });
    }
    if raw.is_empty() {
        return Err(entry_error("routes".into(), "is empty; leave [[routes]] out for the built-in table"));
    }
    Ok(out)
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn parse_host(h: &str) -> Option<HostPattern> {
    let h = h.to_ascii_lowercase();
    let (wild, rest) = match h.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, h.as_str()),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
    };
    if rest.is_empty() || rest.len() > 253 || !rest.split('.').all(label_ok) {
        return None;
    }
    Some(if wild { HostPattern::Suffix(format!(".{rest}")) } else { HostPattern::Exact(rest.to_string()) })
}
