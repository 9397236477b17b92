//! The gateway as an OpenID Connect relying party: discovery, the authorization request
//! (code + PKCE S256 + state + nonce), the code exchange, and refresh.

use crate::GatewayConfig;
use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::OnceCell;
use turtlemen_identity::{Jwks, Transport};

/// Why talking to the issuer failed.
#[derive(Debug, thiserror::Error)]
pub enum RpError {
    /// The issuer refused the grant (revoked, expired, replayed): sign in again.
    #[error("the issuer refused: {0}")]
    Refused(String),
    /// The issuer could not be reached or answered nonsense: try later.
    #[error("the issuer is unavailable: {0}")]
    Unavailable(String),
}

/// The parts of the issuer's discovery document the gateway uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// A token endpoint response.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
}

/// The relying party of one issuer.
pub struct RelyingParty {
    config: GatewayConfig,
    transport: Arc<dyn Transport>,
    pub jwks: Arc<Jwks>,
    metadata: OnceCell<Metadata>,
}

/// 32 random bytes, base64url.
pub fn random_value() -> String {
    let mut buf = [0u8; 32];
    // SystemRandom fails only when the OS has no randomness at all.
    #[allow(clippy::expect_used)]
    SystemRandom::new().fill(&mut buf).expect("system random source");
    URL_SAFE_NO_PAD.encode(buf)
}

/// The S256 challenge of a PKCE verifier.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref())
}

impl RelyingParty {
    pub fn new(config: &GatewayConfig, transport: Arc<dyn Transport>, jwks: Arc<Jwks>) -> Self {
        Self { config: config.clone(), transport, jwks, metadata: OnceCell::new() }
    }

    pub fn redirect_uri(&self) -> String {
        format!("{}oauth2/callback", self.config.public_url.as_str())
    }

    /// The discovery document, fetched once.
    pub async fn metadata(&self) -> Result<&Metadata, RpError> {
        self.metadata
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", self.config.issuer);
                let req =
                    http::Request::get(url).body(Body::empty()).map_err(|e| RpError::Unavailable(e.to_string()))?;
                let (status, _, body) =
                    self.transport.send(req).await.map_err(|e| RpError::Unavailable(e.to_string()))?;
                if !status.is_success() {
                    return Err(RpError::Unavailable(format!("discovery answered {status}")));
                }
                let meta: Metadata = serde_json::from_slice(&body).map_err(|e| RpError::Unavailable(e.to_string()))?;
                if meta.issuer != self.config.issuer {
                    return Err(RpError::Unavailable("the discovery document names another issuer".into()));
                }
                Ok(meta)
            })
            .await
    }

    /// Where to send the browser to sign in.
    pub async fn authorization_url(&self, state: &str, nonce: &str, verifier: &str) -> Result<String, RpError> {
        let meta = self.metadata().await?;
        let mut url = url::Url::parse(&meta.authorization_endpoint).map_err(|e| RpError::Unavailable(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.redirect_uri())
            .append_pair("scope", &turtlemen_identity::Scopes::all().to_string())
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &challenge(verifier))
            .append_pair("code_challenge_method", "S256");
        Ok(url.to_string())
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, RpError> {
        let meta = self.metadata().await?;
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = STANDARD.encode(format!("{}:{}", enc(&self.config.client_id), enc(&self.config.client_secret)));
        let req = http::Request::post(&meta.token_endpoint)
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::AUTHORIZATION, format!("Basic {basic}"))
            .header(http::header::ACCEPT, "application/json")
            .body(Body::from(body))
            .map_err(|e| RpError::Unavailable(e.to_string()))?;
        let (status, _, bytes) = self.transport.send(req).await.map_err(|e| RpError::Unavailable(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| RpError::Unavailable(format!("token response: {e}")));
        }
        let error = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| status.to_string());
        if status.is_client_error() { Err(RpError::Refused(error)) } else { Err(RpError::Unavailable(error)) }
    }

    /// Exchanges an authorization code.
    pub async fn exchange(&self, code: &str, verifier: &str) -> Result<TokenResponse, RpError> {
        let redirect_uri = self.redirect_uri();
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// Uses a refresh token (which the issuer rotates).
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, RpError> {
        self.token_request(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }
}
