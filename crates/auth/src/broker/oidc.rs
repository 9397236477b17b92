//! Any OpenID Connect provider, found through its discovery document: authorization code flow
//! with PKCE S256, `state` and `nonce`; the token request authenticated with
//! `client_secret_basic` (or `client_secret_post` when that is all the provider offers); the ID
//! token verified against the provider's JWKS (RS256 or ES256: signature, `iss`, `aud`, `exp`,
//! `nonce`) by [`turtlemen_identity::Jwks`]; claims the ID token lacks read from `userinfo`,
//! whose `sub` must match.
//!
//! Discovery documents are cached for an hour; the issuer they name must be the configured one.

use super::{Broker, BrokerError, PendingFlow, Profile, shown_error, text_claim};
use base64::Engine;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use turtlemen_config::{IdentityProvider, ProviderKind};
use turtlemen_identity::{Jwks, VerifyError};
use url::Url;

/// How long a discovery document is trusted before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// What discovery told us about one provider, with its key set.
pub struct Metadata {
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
    /// The provider offers `client_secret_post` but not `client_secret_basic`.
    post_only: bool,
    jwks: Arc<Jwks>,
    fetched: Instant,
}

/// Discovery documents by provider id.
#[derive(Default)]
pub struct MetadataCache {
    entries: tokio::sync::Mutex<HashMap<String, Arc<Metadata>>>,
}

fn issuer_of(provider: &IdentityProvider) -> Result<(&str, &Url), BrokerError> {
    match &provider.kind {
        ProviderKind::Oidc { issuer, discovery_url } => Ok((issuer, discovery_url)),
        _ => Err(BrokerError::Misconfigured("not an OpenID Connect provider".into())),
    }
}

async fn metadata(broker: &Broker, provider: &IdentityProvider) -> Result<Arc<Metadata>, BrokerError> {
    let mut entries = broker.oidc.entries.lock().await;
    if let Some(m) = entries.get(&provider.id)
        && m.fetched.elapsed() < METADATA_TTL
    {
        return Ok(m.clone());
    }
    let (issuer, discovery_url) = issuer_of(provider)?;
    let (status, doc) =
        broker.client.json(broker.client.request(reqwest::Method::GET, discovery_url.as_str())?).await?;
    if !status.is_success() {
        return Err(BrokerError::BadResponse(format!("discovery answered {status}")));
    }
    let doc: Discovery =
        serde_json::from_value(doc).map_err(|e| BrokerError::BadResponse(format!("discovery document: {e}")))?;
    if doc.issuer.trim_end_matches('/') != issuer {
        return Err(BrokerError::Misconfigured(format!("discovery names issuer {:?}, not {issuer:?}", doc.issuer)));
    }
    let methods = doc.token_endpoint_auth_methods_supported.unwrap_or_default();
    let post_only = !methods.is_empty()
        && !methods.iter().any(|m| m == "client_secret_basic")
        && methods.iter().any(|m| m == "client_secret_post");
    // Tokens carry the issuer exactly as discovery spells it.
    let transport: Arc<dyn turtlemen_identity::Transport> = Arc::new(broker.client.clone());
    let jwks = Arc::new(Jwks::with_keys_url(&doc.issuer, &doc.jwks_uri, transport));
    let m = Arc::new(Metadata {
        authorization_endpoint: doc.authorization_endpoint,
        token_endpoint: doc.token_endpoint,
        userinfo_endpoint: doc.userinfo_endpoint,
        post_only,
        jwks,
        fetched: Instant::now(),
    });
    entries.insert(provider.id.clone(), m.clone());
    Ok(m)
}

pub async fn authorization_url(
    broker: &Broker,
    provider: &IdentityProvider,
    redirect_uri: &str,
    state: &str,
    flow: &PendingFlow,
) -> Result<Url, BrokerError> {
    let m = metadata(broker, provider).await?;
    let mut url = Url::parse(&m.authorization_endpoint)
        .map_err(|_| BrokerError::BadResponse("the authorization endpoint is not a URL".into()))?;
    if !turtlemen_config::providers::acceptable_endpoint(&url) {
        return Err(BrokerError::Misconfigured("the authorization endpoint is not https://".into()));
    }
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &provider.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &provider.scopes.join(" "))
        .append_pair("state", state)
        .append_pair("nonce", &flow.nonce)
        .append_pair("code_challenge", &flow.challenge())
        .append_pair("code_challenge_method", "S256");
    Ok(url)
}

/// `application/x-www-form-urlencoded` encoding of a client credential (RFC 6749 §2.3.1).
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub async fn finish(
    broker: &Broker,
    provider: &IdentityProvider,
    redirect_uri: &str,
    code: &str,
    iss: Option<&str>,
    flow: &PendingFlow,
) -> Result<Profile, BrokerError> {
    let m = metadata(broker, provider).await?;
    // RFC 9207: a callback that names an issuer must name this one (mix-up defence).
    if let Some(iss) = iss
        && iss.trim_end_matches('/') != m.jwks.issuer().trim_end_matches('/')
    {
        return Err(BrokerError::InvalidIdToken("the callback names another issuer".into()));
    }
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", flow.verifier.as_str()),
    ];
    let mut req = broker.client.request(reqwest::Method::POST, &m.token_endpoint)?;
    if m.post_only {
        form.push(("client_id", provider.client_id.as_str()));
        form.push(("client_secret", provider.client_secret.expose()));
    } else {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            form_encode(&provider.client_id),
            form_encode(provider.client_secret.expose())
        ));
        req = req.header(http::header::AUTHORIZATION, format!("Basic {basic}"));
    }
    let (status, body) = broker.client.json(req.form(&form)).await?;
    if !status.is_success() {
        let error = body.get("error").and_then(|e| e.as_str()).unwrap_or("no error code");
        return Err(BrokerError::TokenRefused(shown_error(error)));
    }
    let id_token = body
        .get("id_token")
        .and_then(|t| t.as_str())
        .ok_or_else(|| BrokerError::InvalidIdToken("the token answer has no ID token".into()))?;
    let claims =
        m.jwks.verify_id_token(id_token, &provider.client_id, Some(&flow.nonce)).await.map_err(|e| match e {
            VerifyError::Keys(k) => BrokerError::BadResponse(format!("the provider's keys: {k}")),
            other => BrokerError::InvalidIdToken(other.to_string()),
        })?;
    let mut profile = profile_from_claims(&claims)?;
    // Claims asked for with scopes may be only at userinfo (e.g. when an access token is issued).
    if (profile.email.is_none() || profile.name.is_none())
        && let (Some(userinfo), Some(access)) =
            (&m.userinfo_endpoint, body.get("access_token").and_then(|t| t.as_str()))
    {
        let req = broker.client.request(reqwest::Method::GET, userinfo)?.bearer_auth(access);
        let (status, info) = broker.client.json(req).await?;
        if status.is_success() {
            if text_claim(&info, "sub").as_deref() != Some(profile.subject.as_str()) {
                return Err(BrokerError::InvalidIdToken("userinfo names another subject".into()));
            }
            let more = profile_from_claims(&info)?;
            if profile.email.is_none() {
                profile.email = more.email;
                profile.email_verified = more.email_verified;
            }
            profile.name = profile.name.or(more.name);
            profile.username_hint = profile.username_hint.or(more.username_hint);
        }
    }
    Ok(profile)
}

/// The standard claims we use (OpenID Connect Core §5.1); `email_verified` counts only when it
/// is `true` (some providers send the string `"true"`).
pub fn profile_from_claims(claims: &serde_json::Value) -> Result<Profile, BrokerError> {
    let subject = text_claim(claims, "sub").ok_or_else(|| BrokerError::InvalidIdToken("no subject".into()))?;
    if subject.len() > 255 {
        return Err(BrokerError::InvalidIdToken("the subject is too long".into()));
    }
    let email_verified = match claims.get("email_verified") {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s == "true",
        _ => false,
    };
    Ok(Profile {
        subject,
        email: text_claim(claims, "email"),
        email_verified,
        username_hint: text_claim(claims, "preferred_username").or_else(|| text_claim(claims, "nickname")),
        name: text_claim(claims, "name"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_from_the_spec_example() {
        // OpenID Connect Core 1.0 §5.3.2, the UserInfo response example, plus a subject.
        let claims = serde_json::json!({
            "sub": "248289761001",
            "name": "Jane Doe",
            "given_name": "Jane",
            "family_name": "Doe",
            "preferred_username": "j.doe",
            "email": "janedoe@example.com",
            "picture": "http://example.com/janedoe/me.jpg"
        });
        let p = profile_from_claims(&claims).unwrap();
        assert_eq!(p.subject, "248289761001");
        assert_eq!(p.email.as_deref(), Some("janedoe@example.com"));
        assert!(!p.email_verified, "absent email_verified is not verified");
        assert_eq!(p.username_hint.as_deref(), Some("j.doe"));
        assert_eq!(p.name.as_deref(), Some("Jane Doe"));
        let verified = serde_json::json!({"sub": "1", "email": "a@b.example", "email_verified": "true"});
        assert!(profile_from_claims(&verified).unwrap().email_verified);
        let no_sub = serde_json::json!({"email": "a@b.example"});
        assert!(profile_from_claims(&no_sub).is_err());
    }
}
