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
        let (parts, body) = res.into_parts();
        let bytes = http_body_util::Limited::new(body, 1 << 20)
            .collect()
            .await
            .map_err(|e| TransportError(e.to_string()))?
            .to_bytes();
        Ok((parts.status, parts.headers, bytes))
    }
}

/// The issuer over plain HTTP at an internal address: each request keeps its path and query
/// but goes to `base` (e.g. `http://auth.internal:8081`), whatever host its URL names, so the
/// public issuer URL can stay in tokens while traffic stays inside the deployment.
#[derive(Clone)]
pub struct Http {
    base: http::uri::Authority,
    client: hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Body>,
}

impl Http {
    /// `base` must be an `http://host:port` URL.
    pub fn new(base: &str) -> Result<Self, TransportError> {
        let uri: http::Uri = base.parse().map_err(|e: http::uri::InvalidUri| TransportError(e.to_string()))?;
        if uri.scheme_str() != Some("http") {
            return Err(TransportError(format!("{base}: only http:// internal addresses are supported")));
        }
        let base = uri.authority().cloned().ok_or_else(|| TransportError(format!("{base}: no host")))?;
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_connect_timeout(Some(std::time::Duration::from_secs(3)));
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        Ok(Self { base, client })
    }
}

#[async_trait::async_trait]
impl Transport for Http {
    async fn send(&self, req: Request<Body>) -> Result<(StatusCode, HeaderMap, Bytes), TransportError> {
        let (mut parts, body) = req.into_parts();
        let pq = parts.uri.path_and_query().map_or("/", |pq| pq.as_str()).to_string();
        parts.uri = http::Uri::builder()
            .scheme("http")
            .authority(self.base.clone())
            .path_and_query(pq)
            .build()
            .map_err(|e| TransportError(e.to_string()))?;
        let call = self.client.request(Request::from_parts(parts, body));
        let res = tokio::time::timeout(std::time::Duration::from_secs(10), call)
            .await
            .map_err(|_| TransportError("timed out".into()))?
            .map_err(|e| TransportError(e.to_string()))?;
        let (parts, body) = res.into_parts();
        let bytes = http_body_util::Limited::new(body, 1 << 20)
            .collect()
            .await
            .map_err(|e| TransportError(e.to_string()))?
            .to_bytes();
        Ok((parts.status, parts.headers, bytes))
    }
}
