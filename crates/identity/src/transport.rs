//! Reaching the issuer: one request in, status, headers and body out.

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Why the issuer could not be asked.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the issuer: {0}")]
pub struct TransportError(pub String);

/// A way to send requests to the issuer.
#[async_trait::async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Sends `req` (its URI a full URL of the issuer) and reads the whole response (at most
    /// 1 MiB: discovery, keys and token responses are small).
    async fn send(&self, req: Request<Body>) -> Result<(StatusCode, HeaderMap, Bytes), TransportError>;
}

/// The issuer's router in this process: requests go straight to it, paths unchanged.
#[derive(Clone)]
pub struct InProcess {
    router: axum::Router,
}

impl InProcess {
    /// `router` must answer the issuer's paths as they appear in its URLs (e.g. `/auth/jwks`).
    pub fn new(router: axum::Router) -> Self {
        Self { router }
    }
}

#[async_trait::async_trait]
impl Transport for InProcess {
    async fn send(&self, req: Request<Body>) -> Result<(StatusCode, HeaderMap, Bytes), TransportError> {
        let (mut parts, body) = req.into_parts();
        // Only the path and query reach the in-process router, as they would over the wire.
        if let Some(pq) = parts.uri.path_and_query() {
            parts.uri = pq.as_str().parse().map_err(|e: http::uri::InvalidUri| TransportError(e.to_string()))?;
        }
        let res = self
            .router
            .clone()
            .oneshot(Request::from_parts(parts, body))
            .await
            .map_err(|e| TransportError(e.to_string()))?;
        answer(res).await
    }
}

/// An answer's status, headers and body (at most 1 MiB: the issuer's documents are small).
async fn answer(res: http::Response<Body>) -> Result<(StatusCode, HeaderMap, Bytes), TransportError> {
    let (parts, body) = res.into_parts();
    let bytes = http_body_util::Limited::new(body, 1 << 20)
        .collect()
        .await
        .map_err(|e| TransportError(e.to_string()))?
        .to_bytes();
    Ok((parts.status, parts.headers, bytes))
}

/// The issuer over plain HTTP at internal addresses: each request keeps its path and query but
/// goes to one of the addresses (e.g. `http://auth.internal:8081`), whatever host its URL names,
/// so the public issuer URL can stay in tokens while traffic stays inside the deployment. The
/// addresses take turns; one that refuses the connection is skipped for the next, so a dead
/// auth replica costs no sign-in and no key fetch (the request is small and was not sent).
#[derive(Clone)]
pub struct Http {
    bases: std::sync::Arc<[http::uri::Authority]>,
    next: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    client: hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Body>,
}

impl Http {
    /// `base` must be an `http://host:port` URL.
    pub fn new(base: &str) -> Result<Self, TransportError> {
        Self::pool(&[base])
    }

    /// Several `http://host:port` URLs of the same issuer (its replicas); at least one.
    pub fn pool(bases: &[impl AsRef<str>]) -> Result<Self, TransportError> {
        let bases = bases
            .iter()
            .map(|base| {
                let base = base.as_ref();
                let uri: http::Uri = base.parse().map_err(|e: http::uri::InvalidUri| TransportError(e.to_string()))?;
                if uri.scheme_str() != Some("http") {
                    return Err(TransportError(format!("{base}: only http:// internal addresses are supported")));
                }
                uri.authority().cloned().ok_or_else(|| TransportError(format!("{base}: no host")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if bases.is_empty() {
            return Err(TransportError("no address of the issuer".into()));
        }
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_connect_timeout(Some(std::time::Duration::from_secs(3)));
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        Ok(Self { bases: bases.into(), next: Default::default(), client })
    }
}

#[async_trait::async_trait]
impl Transport for Http {
    async fn send(&self, req: Request<Body>) -> Result<(StatusCode, HeaderMap, Bytes), TransportError> {
        let (parts, body) = req.into_parts();
        // Kept whole so that it can go to another address (forms and key requests are small).
        let body = http_body_util::Limited::new(body, 1 << 20)
            .collect()
            .await
            .map_err(|e| TransportError(e.to_string()))?
            .to_bytes();
        let pq = parts.uri.path_and_query().map_or("/", |pq| pq.as_str()).to_string();
        let first = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut last = TransportError("no address of the issuer".into());
        for i in 0..self.bases.len() {
            let base = &self.bases[(first + i) % self.bases.len()];
            let mut attempt = Request::builder().method(parts.method.clone()).version(parts.version);
            if let Some(headers) = attempt.headers_mut() {
                *headers = parts.headers.clone();
            }
            let uri = http::Uri::builder()
                .scheme("http")
                .authority(base.clone())
                .path_and_query(pq.as_str())
                .build()
                .map_err(|e| TransportError(e.to_string()))?;
            let attempt = attempt.uri(uri).body(Body::from(body.clone())).map_err(|e| TransportError(e.to_string()))?;
            let res = match tokio::time::timeout(std::time::Duration::from_secs(10), self.client.request(attempt)).await
            {
                Err(_) => return Err(TransportError("timed out".into())),
                Ok(Err(e)) if e.is_connect() => {
                    last = TransportError(format!("{base}: {e}"));
                    continue;
                }
                Ok(Err(e)) => return Err(TransportError(e.to_string())),
                Ok(Ok(res)) => res,
            };
            return answer(res.map(Body::new)).await;
        }
        Err(last)
    }
}
