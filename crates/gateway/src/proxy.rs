//! Forwarding to upstream pools: the other roles when they run as separate processes, and any
//! pool named in `[upstreams.NAME]`.
//!
//! Bodies stream both ways (hyper's `Incoming` in, the upstream's body out): nothing is
//! buffered, so uploads of many gigabytes pass with flat memory; a body that pauses longer than
//! allowed ends with an error ([`crate::body::IdleTimeout`]). Each address of a pool keeps its
//! own connections ([`crate::upstream`]: kept-alive HTTP/1.1 or h2c, connect and read
//! timeouts). Addresses of a pool
//! take turns (round-robin); one that refuses connections is left out for a while (passive
//! health), and the request it refused goes to the next address: nothing of a request is
//! handed over before its connection is made. Hop-by-hop headers are dropped; `X-Forwarded-For/-Proto/-Host` are set from the
//! connection, and a client's own values are kept only when it is a trusted proxy. WebSocket
//! (and other HTTP/1.1) upgrades are passed through: both sides are upgraded and bytes copied
//! between them.

use crate::body::{BodyError, IdleTimeout, body_error_kind};
use crate::splice::{self, Destination, Flow, Spliced};
use crate::upstream::{Address, PooledBody, Unanswered};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;
use turtlemen_config::UpstreamSpec;
use turtlemen_http::ApiError;
use turtlemen_http::metrics::{RouteMetrics, UpstreamError};
use turtlemen_http::tap::{HeadGate, Tap};

/// Longest pause in a client's request body before it is given up (408).
pub const CLIENT_BODY_IDLE: Duration = Duration::from_secs(60);

/// How long an address that refused a connection is left out.
const DOWN_FOR_MS: i64 = 10_000;

/// Several addresses serving the same role.
pub struct Pool {
    pub name: String,
    addrs: Vec<Arc<Address>>,
    next: AtomicUsize,
    down_until: Vec<AtomicI64>,
    http2: bool,
    read_timeout: Duration,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Why an upstream pool or the route table cannot be built from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamConfigError {
    #[error("{pool} upstream {url:?} is not a URL")]
    NotAUrl { pool: String, url: String },
    #[error("{pool} upstream {url:?}: only http:// upstreams are supported")]
    NotHttp { pool: String, url: String },
    #[error("{pool} upstream {url:?} names no host")]
    NoHost { pool: String, url: String },
    #[error("the {pool} pool has no address")]
    Empty { pool: String },
    #[error("route {route:?} names the unknown upstream {upstream:?}")]
    UnknownUpstream { route: String, upstream: String },
}

impl Pool {
    /// A pool of `spec.urls` (`http://host:port` addresses).
    pub fn new(name: &str, spec: &UpstreamSpec) -> Result<Self, UpstreamConfigError> {
        let mut addrs = Vec::new();
        for url in &spec.urls {
            let at = || (name.to_owned(), url.clone());
            let uri: Uri = url.parse().map_err(|_| {
                let (pool, url) = at();
                UpstreamConfigError::NotAUrl { pool, url }
            })?;
            if uri.scheme_str() != Some("http") {
                let (pool, url) = at();
                return Err(UpstreamConfigError::NotHttp { pool, url });
            }
            let no_host = || {
                let (pool, url) = at();
                UpstreamConfigError::NoHost { pool, url }
            };
            let mut authority = uri.authority().cloned().ok_or_else(no_host)?;
            if authority.port_u16().is_none() {
                authority = format!("{authority}:80").parse().map_err(|_| no_host())?;
            }
            addrs.push(Address::new(authority, spec.connect_timeout, spec.http2));
        }
        if addrs.is_empty() {
            return Err(UpstreamConfigError::Empty { pool: name.to_owned() });
        }
        let down_until = addrs.iter().map(|_| AtomicI64::new(0)).collect();
        Ok(Self {
            name: name.into(),
            addrs,
            next: AtomicUsize::new(0),
            down_until,
            http2: spec.http2,
            read_timeout: spec.read_timeout,
        })
    }

    /// The next address that is not marked down (or the next one, if all are).
    fn pick(&self) -> usize {
        let n = self.addrs.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = now_ms();
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| self.down_until[i].load(Ordering::Relaxed) <= now)
            .unwrap_or(start % n)
    }

    fn mark_down(&self, i: usize) {
        self.down_until[i].store(now_ms() + DOWN_FOR_MS, Ordering::Relaxed);
    }

    /// How long the response head is awaited on a route with `timeout` (`None`: no total
    /// timeout): the pool's read timeout, or the route's when that is shorter.
    pub fn head_timeout(&self, timeout: Option<Duration>) -> Duration {
        timeout.map_or(self.read_timeout, |t| t.min(self.read_timeout))
    }

    /// The first address, as an `http://` base URL (for the issuer transport).
    pub fn first_url(&self) -> String {
        format!("http://{}", self.addrs[0].authority)
    }
}

/// How requests are forwarded (the clients are the pools').
#[derive(Clone)]
pub struct Proxy {
    trusted: Vec<IpNet>,
    public_scheme: &'static str,
    /// Whether large bodies may be spliced past hyper ([`turtlemen_http::flush_check`]);
    /// otherwise they are copied.
    splice: bool,
}

/// A `static`, not a `const`: a `const` array of header names is made and dropped again at
/// every use.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Whether `name` is one of [`HOP_BY_HOP`], by its text: a match on a few literals costs less
/// than hashing the nine names into the map to remove them.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Drops the hop-by-hop headers: the fixed ones, and those `Connection` names. Runs twice per
/// proxied request, so the common case (none of them) only looks each header name over once.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        let listed: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in listed {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP.iter() {
        headers.remove(name);
    }
}

/// `ip` as a header value. An IPv4 address is written without the formatting machinery: every
/// proxied request carries its client's.
fn ip_value(ip: IpAddr) -> HeaderValue {
    let IpAddr::V4(v4) = ip else {
        return HeaderValue::from_str(&ip.to_string()).unwrap_or(HeaderValue::from_static("unknown"));
    };
    let (mut text, mut len) = ([0u8; 15], 0);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        let digits = [octet / 100, octet / 10 % 10, octet % 10];
        let first = match octet {
            100.. => 0,
            10..=99 => 1,
            _ => 2,
        };
        for digit in &digits[first..] {
            text[len] = b'0' + digit;
            len += 1;
        }
    }
    HeaderValue::from_bytes(&text[..len]).unwrap_or(HeaderValue::from_static("unknown"))
}

impl Proxy {
    pub fn new(trusted: Vec<IpNet>, public_scheme: &'static str) -> Self {
        Self { trusted, public_scheme, splice: turtlemen_http::flush_check::hyper_flush_is_pinned() }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    fn forwarded_headers(&self, headers: &mut HeaderMap, peer: Option<IpAddr>) {
        const XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
        const XFP: HeaderName = HeaderName::from_static("x-forwarded-proto");
        const XFH: HeaderName = HeaderName::from_static("x-forwarded-host");
        let trusted = peer.is_some_and(|ip| self.is_trusted(ip));
        let peer_value = peer.map_or(HeaderValue::from_static("unknown"), ip_value);
        // A client's own values are looked up only when they count: from a trusted proxy.
        let theirs = |name: &HeaderName| if trusted { headers.get(name) } else { None };
        let xff = match theirs(&XFF).and_then(|v| v.to_str().ok()) {
            Some(chain) => {
                HeaderValue::from_str(&format!("{chain}, {}", peer_value.to_str().unwrap_or("unknown"))).ok()
            }
            None => Some(peer_value),
        };
        let proto = match theirs(&XFP).and_then(|v| v.to_str().ok()) {
            Some("http") => "http",
            Some("https") => "https",
            _ => self.public_scheme,
        };
        let host = theirs(&XFH).or_else(|| headers.get(header::HOST)).cloned();
        if let Some(v) = xff {
            headers.insert(XFF, v);
        }
        headers.insert(XFP, HeaderValue::from_static(proto));
        match host {
            Some(h) => {
                headers.insert(XFH, h);
            }
            None => {
                headers.remove(XFH);
            }
        }
    }

    /// Sets `X-Forwarded-For/-Proto/-Host` on a request for a router in this process exactly as
    /// [`Self::forward`] sets them for an upstream, so a service reads the same client behind
    /// `trusted_proxies` whether it runs under `serve` or alone. (The connection's own headers
    /// stay: an in-process service upgrades the client's connection itself.)
    pub fn in_process(&self, req: &mut Request<Body>) {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        self.forwarded_headers(req.headers_mut(), peer);
    }

    /// Forwards `req` to an address of `pool` and streams the answer back. The connection is
    /// made before the request is handed over, so a request whose address refuses it (or does
    /// not answer the connect in time) goes to the next address, body and all, and that
    /// address is left out for a while; one whose body was handed over is not sent again (the
    /// body is streamed, not kept), so a connection that breaks after that is a 502. Failures are
    /// counted in `metrics` by kind. The response head is awaited for `head_timeout` (see
    /// [`Pool::head_timeout`]); `None` when the caller's own timeout is reached first.
    pub async fn forward(
        &self,
        pool: &Pool,
        mut req: Request<Body>,
        metrics: &RouteMetrics,
        head_timeout: Option<Duration>,
    ) -> Response {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let upgrade = upgrade_protocol(req.headers());
        // A plain HTTP/1 client connection, which a large response body may be spliced to
        // (and a large request body from), when this build's hyper flushes as splicing needs.
        let client_tap = match req.version() {
            http::Version::HTTP_10 | http::Version::HTTP_11 if req.method() != http::Method::HEAD => {
                req.extensions_mut().remove::<Tap>().filter(|_| self.splice)
            }
            _ => None,
        };
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        // The route was picked by the target's authority when it has one (absolute form, or
        // HTTP/2's `:authority`; the server refused a `Host` that differs), so that is the Host
        // the upstream is told, and the `X-Forwarded-Host` made from it.
        if let Some(host) = parts.uri.authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
            parts.headers.insert(header::HOST, host);
        }
        // HTTP/2 carries it as `:authority` instead: a `host` beside it would be a second one.
        let routed: Option<http::uri::Authority> = if pool.http2 {
            parts.headers.remove(header::HOST).and_then(|h| h.to_str().ok()?.parse().ok())
        } else {
            None
        };
        self.forwarded_headers(&mut parts.headers, peer);
        if let Some(proto) = &upgrade {
            if pool.http2 {
                return ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "bad_gateway",
                    "This service cannot take upgraded connections.",
                )
                .into_response();
            }
            parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts.headers.insert(header::UPGRADE, proto.clone());
        }
        parts.version = if pool.http2 { http::Version::HTTP_2 } else { http::Version::HTTP_11 };
        parts.extensions = http::Extensions::new();
        let bodiless = parts.headers.get(header::CONTENT_LENGTH).is_none_or(|v| v == "0")
            && !parts.headers.contains_key(header::TRANSFER_ENCODING)
            && matches!(
                parts.method,
                http::Method::GET | http::Method::HEAD | http::Method::OPTIONS | http::Method::DELETE
            );
        // A large request body of known length is spliced to the upstream connection it is
        // sent on (HTTP/1.1 only; upgrades copy).
        let upload = match (&client_tap, upgrade.is_none() && !pool.http2 && !bodiless) {
            (Some(from), true) => {
                splice_request_len(&parts.headers).map(|len| (len, from.clone(), Destination::default()))
            }
            _ => None,
        };
        let pq = parts.uri.path_and_query().cloned().unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        // A client without a host (HTTP/1.0, or HTTP/2 without `:authority`) reaches an
        // HTTP/1.1 upstream, which must be told one: the address's own.
        let host_from_address = !pool.http2 && !parts.headers.contains_key(header::HOST);
        let body = match (bodiless, upload) {
            (true, _) => Body::empty(),
            (false, Some((len, from, to))) => {
                parts.extensions.insert(to.clone());
                let idle = (CLIENT_BODY_IDLE, pool.read_timeout);
                Body::new(Spliced::new(body, from, to, len, idle, Flow::Request))
            }
            (false, None) => Body::new(IdleTimeout::new(body, CLIENT_BODY_IDLE)),
        };
        // Built once: an address that cannot be connected to gives it back untouched (its body
        // unread), and it goes to the next address; once handed over, it is not sent again.
        let mut unsent = Some(Request::from_parts(parts, body));
        let mut failure = StatusCode::BAD_GATEWAY;
        for _ in 0..pool.addrs.len() {
            let Some(mut req) = unsent.take() else { break };
            let i = pool.pick();
            let address = &pool.addrs[i];
            // HTTP/1.1 takes the origin form (`/path?query`); HTTP/2 names the authority too.
            let uri = if pool.http2 {
                let mut uri = http::uri::Parts::default();
                uri.scheme = Some(http::uri::Scheme::HTTP);
                uri.authority = Some(routed.clone().unwrap_or_else(|| address.authority.clone()));
                uri.path_and_query = Some(pq.clone());
                Uri::from_parts(uri).ok()
            } else {
                Some(Uri::from(pq.clone()))
            };
            let Some(uri) = uri else {
                return ApiError::bad_request("bad_request", "The request target is malformed.").into_response();
            };
            *req.uri_mut() = uri;
            if host_from_address && let Ok(v) = HeaderValue::from_str(address.authority.as_str()) {
                req.headers_mut().insert(header::HOST, v);
            }
            // Made in each arm, not bound first: see `turtlemen_http::layers::Foundation::run`.
            let answered = match head_timeout {
                Some(limit) => tokio::time::timeout(limit, address.send(req)).await,
                None => Ok(address.send(req).await),
            };
            match answered {
                Ok(Ok(res)) => {
                    if let (Some(client_side), StatusCode::SWITCHING_PROTOCOLS) = (client_upgrade, res.status()) {
                        return switch(res, client_side, &pool.name);
                    }
                    let spliced = client_tap.and_then(|to| Some((splice_len(&res)?, res.body().tap()?.clone(), to)));
                    let (mut parts, body) = res.into_parts();
                    strip_hop_by_hop(&mut parts.headers);
                    parts.version = http::Version::HTTP_11;
                    let body = match spliced {
                        Some((len, from, to)) => {
                            let gate = HeadGate::default();
                            parts.extensions.insert(gate.clone());
                            Body::new(Spliced::new(
                                body,
                                from,
                                Destination::new(to),
                                len,
                                (pool.read_timeout, CLIENT_BODY_IDLE),
                                Flow::Response(gate),
                            ))
                        }
                        None => Body::new(IdleTimeout::new(body, pool.read_timeout)),
                    };
                    return Response::from_parts(parts, body);
                }
                Ok(Err(Unanswered { error: e, request })) => {
                    let kind = body_error_kind(&e);
                    match kind {
                        Some(BodyError::TooLarge) => {
                            return ApiError::new(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                "payload_too_large",
                                "The request body is too large.",
                            )
                            .into_response();
                        }
                        Some(BodyError::Idle) => {
                            return ApiError::new(
                                StatusCode::REQUEST_TIMEOUT,
                                "request_timeout",
                                "The request body stopped arriving.",
                            )
                            .into_response();
                        }
                        // The client's own body broke (a malformed chunk, a cut-off upload):
                        // not the upstream's failure.
                        Some(BodyError::Source) => {
                            return ApiError::bad_request(
                                "malformed_body",
                                "The request body is malformed or ended early.",
                            )
                            .into_response();
                        }
                        None => {}
                    }
                    tracing::warn!(upstream.pool = %pool.name, upstream.address = %address.authority, error = %e, "upstream failed");
                    if e.is_connect() {
                        metrics.upstream_error(UpstreamError::Connect);
                        pool.mark_down(i);
                        failure = StatusCode::SERVICE_UNAVAILABLE;
                        unsent = request;
                        continue;
                    }
                    metrics.upstream_error(UpstreamError::Reset);
                    failure = StatusCode::BAD_GATEWAY;
                    break;
                }
                Err(_) => {
                    metrics.upstream_error(UpstreamError::Timeout);
                    tracing::warn!(upstream.pool = %pool.name, upstream.address = %address.authority, "upstream timed out");
                    return ApiError::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        "gateway_timeout",
                        "The service took too long to answer.",
                    )
                    .into_response();
                }
            }
        }
        if failure == StatusCode::SERVICE_UNAVAILABLE {
            return ApiError::unavailable("The service is unreachable; try again shortly.").into_response();
        }
        ApiError::new(StatusCode::BAD_GATEWAY, "bad_gateway", "The service answered badly; try again shortly.")
            .into_response()
    }
}

/// The length of a response body worth splicing: a body of at least [`splice::MIN_LEN`] bytes
/// whose length the response gives (not chunked, not a status without a body), and that goes
/// out as it came (not an error body the foundation reads and replaces with its own).
fn splice_len(res: &http::Response<PooledBody>) -> Option<u64> {
    // The length first: most answers are small, and that settles it.
    let len = splice_request_len(res.headers())?;
    let status = res.status();
    let whole = !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || turtlemen_http::layers::replaces_body(status, res.headers()));
    whole.then_some(len)
}

/// The length of a message body worth splicing, from its headers: a `Content-Length` of at
/// least [`splice::MIN_LEN`] and no `Transfer-Encoding`.
fn splice_request_len(headers: &HeaderMap) -> Option<u64> {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return None;
    }
    let len: u64 = headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()?;
    (len >= splice::MIN_LEN).then_some(len)
}

/// The protocol a request asks to upgrade to (`Connection: upgrade` plus `Upgrade`).
fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if asks { headers.get(header::UPGRADE).cloned() } else { None }
}

/// Answers 101 to the client and joins the two upgraded connections.
fn switch(
    mut upstream: hyper::Response<crate::upstream::PooledBody>,
    client: hyper::upgrade::OnUpgrade,
    pool: &str,
) -> Response {
    let upstream_io = hyper::upgrade::on(&mut upstream);
    let (mut parts, _) = upstream.into_parts();
    let proto = parts.headers.get(header::UPGRADE).cloned();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    if let Some(p) = proto {
        parts.headers.insert(header::UPGRADE, p);
    }
    parts.version = http::Version::HTTP_11;
    let pool = pool.to_string();
    tokio::spawn(async move {
        match tokio::try_join!(client, upstream_io) {
            Ok((c, u)) => {
                let (mut c, mut u) = (TokioIo::new(c), TokioIo::new(u));
                if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut u).await {
                    tracing::debug!(upstream.pool = %pool, error = %e, "upgraded connection ended");
                }
            }
            Err(e) => tracing::debug!(upstream.pool = %pool, error = %e, "upgrade failed"),
        }
    });
    Response::from_parts(parts, Body::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_is_awaited_for_the_shorter_of_the_route_and_the_pool() {
        let pool = Pool::new("api", &UpstreamSpec::http1(vec!["http://127.0.0.1:1".into()])).unwrap();
        let secs = Duration::from_secs;
        assert_eq!(pool.head_timeout(None), secs(60), "no total timeout: the read timeout");
        assert_eq!(pool.head_timeout(Some(secs(30))), secs(30));
        assert_eq!(pool.head_timeout(Some(secs(90))), secs(60));
    }

    #[test]
    fn forwarded_headers_trust_only_trusted_peers() {
        let proxy = Proxy::new(vec!["10.0.0.0/8".parse().unwrap()], "https");
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        h.insert(header::HOST, HeaderValue::from_static("video.example.org"));
        let mut untrusted = h.clone();
        proxy.forwarded_headers(&mut untrusted, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(untrusted["x-forwarded-for"], "203.0.113.9", "a client's own chain is dropped");
        assert_eq!(untrusted["x-forwarded-proto"], "https");
        assert_eq!(untrusted["x-forwarded-host"], "video.example.org");
        let mut trusted = h.clone();
        proxy.forwarded_headers(&mut trusted, Some("10.1.2.3".parse().unwrap()));
        assert_eq!(trusted["x-forwarded-for"], "6.6.6.6, 10.1.2.3");
        assert_eq!(trusted["x-forwarded-proto"], "http");
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_and_the_rest_kept() {
        // The quick test and the list name the same nine.
        assert!(HOP_BY_HOP.iter().all(is_hop_by_hop));
        assert!(!is_hop_by_hop(&header::ACCEPT) && !is_hop_by_hop(&HeaderName::from_static("x-connection")));
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-private, Upgrade"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-private", HeaderValue::from_static("hop"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        h.insert(header::COOKIE, HeaderValue::from_static("a=b"));
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["accept", "cookie"]);
        // Only one of the fixed names, without `Connection`: it goes too.
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(HeaderName::as_str).collect::<Vec<_>>(), ["accept"]);
        // None at all: nothing changes.
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        h.insert(header::HOST, HeaderValue::from_static("video.example.org"));
        let before = h.clone();
        strip_hop_by_hop(&mut h);
        assert_eq!(h, before);
    }

    #[test]
    fn client_addresses_are_written_as_std_writes_them() {
        for ip in ["0.0.0.0", "127.0.0.1", "10.9.99.100", "255.255.255.255", "192.168.0.19", "::1", "2001:db8::7"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_value(ip), ip.to_string().as_str());
        }
    }

    #[tokio::test]
    async fn round_robin_skips_addresses_that_are_down() {
        let spec = |urls: &[&str]| UpstreamSpec::http1(urls.iter().map(|u| u.to_string()).collect());
        let pool = Pool::new("api", &spec(&["http://127.0.0.1:1", "http://127.0.0.1:2"])).unwrap();
        assert_ne!(pool.pick(), pool.pick());
        pool.mark_down(0);
        assert!((0..4).all(|_| pool.pick() == 1));
        assert!(Pool::new("api", &spec(&["https://x"])).is_err());
        assert!(Pool::new("api", &spec(&[])).is_err());
    }
}
