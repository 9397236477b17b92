//! Brokering external identity providers: "Sign in with Google / GitHub / Facebook / any
//! OpenID Connect issuer", and linking such accounts to local ones.
//!
//! - [`client`]: the HTTP client for providers (https only, timeouts, capped bodies);
//! - [`oidc`]: any OpenID Connect provider by discovery (code + PKCE + state + nonce, ID token
//!   verified against the provider's JWKS);
//! - [`github`], [`facebook`]: OAuth 2.0 plus the provider's user API;
//! - [`flow`]: the HTTP side — starting a login or a link, the callback, unlinking;
//! - [`link`]: who an external login is (known link, link by verified email when allowed, or a
//!   new account).
//!
//! A flow's state (`provider`, PKCE verifier, nonce, `return_to`, the user to link to) lives in
//! the session store for ten minutes under the hash of the `state` value, is taken atomically
//! (single use), and is bound to the browser by a short-lived cookie holding `state`.
//!
//! Never: a redirect anywhere but the provider's configured authorization endpoint or a local
//! path; anything stored when the callback fails; an account linked by an email the provider
//! did not say was verified, or that the operator did not allow to link by.

pub mod client;
pub mod facebook;
pub mod flow;
pub mod github;
pub mod link;
pub mod oidc;

use crate::util::{b64url, random_token};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use turtlemen_config::{IdentityProvider, ProviderKind};
use turtlemen_http::ApiError;
use url::Url;

/// Why an external login failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("there is no such sign-in provider")]
    UnknownProvider,
    #[error("this sign-in was not started in this browser; please start again")]
    StateMismatch,
    #[error("this sign-in has expired or was already used; please start again")]
    Expired,
    #[error("the provider did not sign you in ({0})")]
    ProviderRefused(String),
    #[error("the provider refused the sign-in code ({0})")]
    TokenRefused(String),
    #[error("the provider's identity token is not valid ({0})")]
    InvalidIdToken(String),
    #[error("the provider answered something unexpected: {0}")]
    BadResponse(String),
    #[error("the provider cannot be reached: {0}")]
    Unreachable(String),
    #[error("the provider is misconfigured: {0}")]
    Misconfigured(String),
}

impl BrokerError {
    pub fn into_api(self, provider: &str) -> ApiError {
        let (status, code) = match &self {
            BrokerError::UnknownProvider => (StatusCode::NOT_FOUND, "unknown_provider"),
            BrokerError::StateMismatch => (StatusCode::BAD_REQUEST, "state_mismatch"),
            BrokerError::Expired => (StatusCode::BAD_REQUEST, "flow_expired"),
            BrokerError::ProviderRefused(_) => (StatusCode::BAD_REQUEST, "provider_error"),
            BrokerError::TokenRefused(_) => (StatusCode::BAD_REQUEST, "provider_error"),
            BrokerError::InvalidIdToken(_) => (StatusCode::BAD_REQUEST, "invalid_id_token"),
            BrokerError::BadResponse(_) => (StatusCode::BAD_GATEWAY, "provider_bad_response"),
            BrokerError::Unreachable(_) => (StatusCode::BAD_GATEWAY, "provider_unavailable"),
            BrokerError::Misconfigured(_) => (StatusCode::BAD_GATEWAY, "provider_misconfigured"),
        };
        tracing::warn!(security.event = "external_login_failed", provider = %provider, error = %self, "external sign-in failed");
        let message = match &self {
            // Details of a provider's failure are for the log, not the page.
            BrokerError::BadResponse(_) | BrokerError::Unreachable(_) | BrokerError::Misconfigured(_) => {
                "The sign-in provider could not complete the sign-in. Please try again later.".to_owned()
            }
            other => {
                let text = other.to_string();
                let mut chars = text.chars();
                chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str() + ".").unwrap_or_default()
            }
        };
        ApiError::new(status, code, message)
    }
}

/// What a provider told us about the person.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    /// The provider's stable id of the person.
    pub subject: String,
    pub email: Option<String>,
    /// Only when the provider says so explicitly.
    pub email_verified: bool,
    /// A username to start from (`preferred_username`, GitHub's `login`).
    pub username_hint: Option<String>,
    pub name: Option<String>,
}

/// A flow between "Sign in with …" and the callback, kept in the session store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingFlow {
    pub provider: String,
    pub verifier: String,
    pub nonce: String,
    pub return_to: String,
    /// Linking from the security page: the signed-in user, who must still be signed in.
    pub link_user: Option<uuid::Uuid>,
}

impl PendingFlow {
    pub fn new(provider: &str, return_to: &str, link_user: Option<uuid::Uuid>) -> Self {
        Self {
            provider: provider.to_owned(),
            verifier: random_token(32),
            nonce: random_token(32),
            return_to: return_to.to_owned(),
            link_user,
        }
    }

    /// The PKCE S256 challenge of the verifier.
    pub fn challenge(&self) -> String {
        b64url(ring::digest::digest(&ring::digest::SHA256, self.verifier.as_bytes()).as_ref())
    }
}

/// The configured providers and what it takes to talk to them.
pub struct Broker {
    providers: Vec<IdentityProvider>,
    client: client::ProviderClient,
    oidc: oidc::MetadataCache,
}

impl Broker {
    pub fn new(providers: Vec<IdentityProvider>) -> Result<Self, crate::SetupError> {
        let client = client::ProviderClient::new().map_err(crate::SetupError::HttpClient)?;
        Ok(Self { providers, client, oidc: oidc::MetadataCache::default() })
    }

    pub fn providers(&self) -> &[IdentityProvider] {
        &self.providers
    }

    pub fn provider(&self, id: &str) -> Option<&IdentityProvider> {
        self.providers.iter().find(|p| p.id == id)
    }

    /// Where to send the browser to sign in at `provider`.
    pub async fn authorization_url(
        &self,
        provider: &IdentityProvider,
        redirect_uri: &str,
        state: &str,
        flow: &PendingFlow,
    ) -> Result<Url, BrokerError> {
        match &provider.kind {
            ProviderKind::Oidc { .. } => oidc::authorization_url(self, provider, redirect_uri, state, flow).await,
            ProviderKind::Github { auth_url, .. } => {
                Ok(github::authorization_url(auth_url, provider, redirect_uri, state, flow))
            }
            ProviderKind::Facebook { auth_url, .. } => {
                Ok(facebook::authorization_url(auth_url, provider, redirect_uri, state, flow))
            }
        }
    }

    /// Exchanges the callback's code and returns who signed in.
    pub async fn finish(
        &self,
        provider: &IdentityProvider,
        redirect_uri: &str,
        code: &str,
        iss: Option<&str>,
        flow: &PendingFlow,
    ) -> Result<Profile, BrokerError> {
        match &provider.kind {
            ProviderKind::Oidc { .. } => oidc::finish(self, provider, redirect_uri, code, iss, flow).await,
            ProviderKind::Github { token_url, api_base_url, .. } => {
                github::finish(&self.client, provider, token_url, api_base_url, redirect_uri, code, flow).await
            }
            ProviderKind::Facebook { token_url, api_base_url, .. } => {
                facebook::finish(&self.client, provider, token_url, api_base_url, redirect_uri, code).await
            }
        }
    }
}

/// The text of a provider's error code, cut to a safe alphabet and length for the page.
pub(crate) fn shown_error(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')).take(64).collect()
}

/// `value[key]` as a non-empty string, or a number as text (GitHub and Facebook ids).
pub(crate) fn text_claim(value: &serde_json::Value, key: &str) -> Option<String> {
    match value.get(key)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The configured providers as buttons, for the login and security pages.
pub fn buttons(state: &crate::AuthState) -> Vec<turtlemen_web::auth_pages::ProviderButton> {
    state
        .broker
        .providers()
        .iter()
        .map(|p| turtlemen_web::auth_pages::ProviderButton { id: p.id.clone(), name: p.display_name.clone() })
        .collect()
}

/// The user's linked provider accounts, for the security page.
pub async fn identity_rows(
    state: &crate::AuthState,
    user_id: turtlemen_domain::UserId,
) -> Result<Vec<turtlemen_web::auth_pages::IdentityRow>, turtlemen_db::DbError> {
    Ok(turtlemen_db::identities::list_for_user(&state.db, user_id)
        .await?
        .into_iter()
        .map(|i| turtlemen_web::auth_pages::IdentityRow {
            id: i.id.to_string(),
            provider: state.broker.provider(&i.provider).map_or(i.provider.clone(), |p| p.display_name.clone()),
            email: i.email.unwrap_or_default(),
            linked: i.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        })
        .collect())
}
