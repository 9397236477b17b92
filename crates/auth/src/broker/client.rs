//! The HTTP client the broker talks to providers with: rustls, no redirects followed, a
//! timeout on every call, response bodies capped at 1 MiB, and only `https://` URLs (`http://`
//! on loopback hosts, for local test providers).
//!
//! Never: a request to a URL that fails [`acceptable_endpoint`], a body read without a cap.

use super::BrokerError;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use std::time::Duration;
use turtlemen_config::providers::acceptable_endpoint;
use turtlemen_identity::{Transport, TransportError};
use url::Url;

/// Largest response body read from a provider (discovery, keys, tokens, profiles are small).
const MAX_BODY: usize = 1 << 20;
/// Longest wait for one provider call, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A shared client for every provider.
#[derive(Clone)]
pub struct ProviderClient {
    client: reqwest::Client,
}

impl ProviderClient {
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("Turtlemen/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client })
    }

    /// A request builder for `url`, refused unless it may carry secrets.
    pub fn request(&self, method: reqwest::Method, url: &str) -> Result<reqwest::RequestBuilder, BrokerError> {
        let parsed = Url::parse(url).map_err(|_| BrokerError::Misconfigured(format!("{url:?} is not a URL")))?;
        if !acceptable_endpoint(&parsed) {
            return Err(BrokerError::Misconfigured(format!("{url} is neither https:// nor a loopback address")));
        }
        Ok(self.client.request(method, parsed))
    }

    /// Sends and reads the whole answer, at most [`MAX_BODY`] bytes.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Result<(StatusCode, Bytes), BrokerError> {
        let mut res = req.send().await.map_err(|e| BrokerError::Unreachable(without_url(e)))?;
        let status = res.status();
        if res.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(BrokerError::BadResponse("the answer is too large".into()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| BrokerError::Unreachable(without_url(e)))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(BrokerError::BadResponse("the answer is too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, Bytes::from(body)))
    }

    /// Sends and parses a JSON answer of any status.
    pub async fn json(&self, req: reqwest::RequestBuilder) -> Result<(StatusCode, serde_json::Value), BrokerError> {
        let (status, body) = self.send(req.header(http::header::ACCEPT, "application/json")).await?;
        let value = serde_json::from_slice(&body)
            .map_err(|_| BrokerError::BadResponse(format!("the answer ({status}) is not JSON")))?;
        Ok((status, value))
    }
}

/// The error's text without the URL (which may carry a query with a token).
fn without_url(e: reqwest::Error) -> String {
    e.without_url().to_string()
}

/// Key sets are fetched through the same client (for [`turtlemen_identity::Jwks`]).
#[async_trait::async_trait]
impl Transport for ProviderClient {
    async fn send(&self, req: Request<Body>) -> Result<(StatusCode, HeaderMap, Bytes), TransportError> {
        let url = req.uri().to_string();
        let builder = self.request(req.method().clone(), &url).map_err(|e| TransportError(e.to_string()))?;
        let (status, body) = ProviderClient::send(self, builder).await.map_err(|e| TransportError(e.to_string()))?;
        Ok((status, HeaderMap::new(), body))
    }
}
