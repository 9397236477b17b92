//! Small shared helpers: random tokens, hashing for storage, and who is asking.

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use std::net::SocketAddr;
use turtlemen_http::client_addr::TrustedProxies;

/// `bytes` random bytes, base64url without padding (32 bytes → 43 characters, 256 bits).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The system random source failing is unrecoverable for an auth service; SystemRandom only
    // fails when the OS cannot provide randomness at all.
    #[allow(clippy::expect_used)]
    SystemRandom::new().fill(&mut buf).expect("system random source");
    URL_SAFE_NO_PAD.encode(buf)
}

/// SHA-256 of a token, hex: what the database keeps instead of the token.
pub fn hash_token(token: &str) -> String {
    hex(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The client's address and user agent, for the audit log and session list.
#[derive(Debug, Clone)]
pub struct Requester {
    pub ip: String,
    pub user_agent: String,
}

impl Requester {
    /// The requester of a request from `peer` with `headers`: the client behind `trusted`
    /// proxies (none believed without them).
    pub fn from_parts(
        peer: Option<&ConnectInfo<SocketAddr>>,
        headers: &HeaderMap,
        trusted: Option<&TrustedProxies>,
    ) -> Self {
        let ip = peer
            .map(|ConnectInfo(addr)| trusted.map_or(addr.ip(), |t| t.client_ip(addr.ip(), headers)).to_string())
            .unwrap_or_else(|| "unknown".into());
        let user_agent: String = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .take(256)
            .collect();
        Self { ip, user_agent }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Requester {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        // The router's layer hands over the trusted proxies (`TrustedProxies` as an extension).
        let trusted = parts.extensions.get::<TrustedProxies>();
        Ok(Self::from_parts(parts.extensions.get::<ConnectInfo<SocketAddr>>(), &parts.headers, trusted))
    }
}
