//! Forwarding to upstream pools, when the roles run as separate processes.
//!
//! Bodies stream both ways (hyper's `Incoming` in, the upstream's body out): nothing is
//! buffered, so uploads of many gigabytes pass with flat memory. Addresses of a pool take turns
//! (round-robin); one that refuses connections is left out for a while (passive health). Hop-by-
//! hop headers are dropped; `X-Forwarded-For/-Proto/-Host` are set from the connection, and a
//! client's own values are kept only when it is a trusted proxy.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;
use turtlemen_http::ApiError;

/// How long an address that refused a connection is left out.
const DOWN_FOR_MS: i64 = 10_000;

/// Several addresses serving the same role.
pub struct Pool {
    pub name: String,
    addrs: Vec<http::uri::Authority>,
    next: AtomicUsize,
    down_until: Vec<AtomicI64>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Pool {
    /// `urls`: `http://host:port` addresses.
    pub fn new(name: &str, urls: &[String]) -> Result<Self, String> {
        let mut addrs = Vec::new();
        for url in urls {
            let uri: Uri = url.parse().map_err(|_| format!("{name} upstream {url:?} is not a URL"))?;
            if uri.scheme_str() != Some("http") {
                return Err(format!("{name} upstream {url:?}: only http:// upstreams are supported"));
            }
            addrs.push(uri.authority().cloned().ok_or_else(|| format!("{name} upstream {url:?} names no host"))?);
        }
        if addrs.is_empty() {
            return Err(format!("the {name} pool has no address"));
        }
        let down_until = addrs.iter().map(|_| AtomicI64::new(0)).collect();
        Ok(Self { name: name.into(), addrs, next: AtomicUsize::new(0), down_until })
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

    /// The first address, as an `http://` base URL (for the issuer transport).
    pub fn first_url(&self) -> String {
        format!("http://{}", self.addrs[0])
    }
}

/// The forwarding client.
#[derive(Clone)]
pub struct Proxy {
    client: Client<HttpConnector, Body>,
    trusted: Vec<IpNet>,
    public_scheme: &'static str,
    response_timeout: Duration,
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
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
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

impl Proxy {
    pub fn new(trusted: Vec<IpNet>, public_scheme: &'static str, response_timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        connector.set_nodelay(true);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Self { client, trusted, public_scheme, response_timeout }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    fn forwarded_headers(&self, headers: &mut HeaderMap, peer: Option<IpAddr>) {
        let trusted = peer.is_some_and(|ip| self.is_trusted(ip));
        let peer_text = peer.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
        let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(chain) if trusted => format!("{chain}, {peer_text}"),
            _ => peer_text,
        };
        let proto = headers
            .get("x-forwarded-proto")
            .filter(|_| trusted)
            .and_then(|v| v.to_str().ok())
            .filter(|v| matches!(*v, "http" | "https"))
            .unwrap_or(self.public_scheme)
            .to_string();
        let host = headers.get("x-forwarded-host").filter(|_| trusted).or_else(|| headers.get(header::HOST)).cloned();
        let mut set = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        };
        set("x-forwarded-for", &xff);
        set("x-forwarded-proto", &proto);
        match host {
            Some(h) => {
                headers.insert(HeaderName::from_static("x-forwarded-host"), h);
            }
            None => {
                headers.remove("x-forwarded-host");
            }
        }
    }

    /// Forwards `req` to an address of `pool` and streams the answer back. A request without
    /// a body whose address refuses the connection is tried on the next address; one with a
    /// body cannot be replayed (it is streamed, not kept), so it fails with 502.
    pub async fn forward(&self, pool: &Pool, req: Request<Body>) -> Response {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let (mut parts, body) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        self.forwarded_headers(&mut parts.headers, peer);
        parts.version = http::Version::HTTP_11;
        let bodiless = parts.headers.get(header::CONTENT_LENGTH).is_none_or(|v| v == "0")
            && !parts.headers.contains_key(header::TRANSFER_ENCODING)
            && matches!(
                parts.method,
                http::Method::GET | http::Method::HEAD | http::Method::OPTIONS | http::Method::DELETE
            );
        let pq = parts.uri.path_and_query().map_or("/", |pq| pq.as_str()).to_string();
        let mut body = Some(body);
        let tries = if bodiless { pool.addrs.len() } else { 1 };
        for _ in 0..tries {
            let i = pool.pick();
            let mut head = parts.clone();
            head.uri = match Uri::builder()
                .scheme("http")
                .authority(pool.addrs[i].clone())
                .path_and_query(pq.as_str())
                .build()
            {
                Ok(uri) => uri,
                Err(_) => {
                    return ApiError::bad_request("bad_request", "The request target is malformed.").into_response();
                }
            };
            let this_body = if bodiless { Body::empty() } else { body.take().unwrap_or_else(Body::empty) };
            let call = self.client.request(Request::from_parts(head, this_body));
            match tokio::time::timeout(self.response_timeout, call).await {
                Ok(Ok(res)) => {
                    let (mut parts, body) = res.into_parts();
                    strip_hop_by_hop(&mut parts.headers);
                    return Response::from_parts(parts, Body::new(body));
                }
                Ok(Err(e)) => {
                    tracing::warn!(upstream.pool = %pool.name, upstream.address = %pool.addrs[i], error = %e, "upstream failed");
                    if e.is_connect() {
                        pool.mark_down(i);
                        continue;
                    }
                    break;
                }
                Err(_) => {
                    tracing::warn!(upstream.pool = %pool.name, upstream.address = %pool.addrs[i], "upstream timed out");
                    return ApiError::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        "gateway_timeout",
                        "The service took too long to answer.",
                    )
                    .into_response();
                }
            }
        }
        ApiError::new(StatusCode::BAD_GATEWAY, "bad_gateway", "The service is unreachable; try again shortly.")
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_headers_trust_only_trusted_peers() {
        let proxy = Proxy::new(vec!["10.0.0.0/8".parse().unwrap()], "https", Duration::from_secs(1));
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
    fn round_robin_skips_addresses_that_are_down() {
        let pool = Pool::new("api", &["http://127.0.0.1:1".into(), "http://127.0.0.1:2".into()]).unwrap();
        assert_ne!(pool.pick(), pool.pick());
        pool.mark_down(0);
        assert!((0..4).all(|_| pool.pick() == 1));
        assert!(Pool::new("api", &["https://x".into()]).is_err());
        assert!(Pool::new("api", &[]).is_err());
    }
}
