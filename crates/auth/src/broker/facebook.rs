//! Meta/Facebook Login: OAuth 2.0 (the "manually build a login flow" web flow) plus the Graph
//! API.
//!
//! Authorize at `https://www.facebook.com/v19.0/dialog/oauth`; exchange the code with
//! `GET https://graph.facebook.com/v19.0/oauth/access_token?client_id&redirect_uri&client_secret&code`;
//! then `GET /me?fields=id,name,email` with the token and its `appsecret_proof`
//! (HMAC-SHA256 of the token under the app secret). Facebook does not say whether an email was
//! verified, so it never counts as verified: a Facebook login never links by email.

use super::client::ProviderClient;
use super::github::api;
use super::{BrokerError, PendingFlow, Profile, shown_error, text_claim};
use turtlemen_config::IdentityProvider;
use url::Url;

pub fn authorization_url(
    auth_url: &Url,
    provider: &IdentityProvider,
    redirect_uri: &str,
    state: &str,
    _flow: &PendingFlow,
) -> Url {
    let mut url = auth_url.clone();
    url.query_pairs_mut()
        .append_pair("client_id", &provider.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state)
        .append_pair("response_type", "code")
        .append_pair("scope", &provider.scopes.join(","));
    url
}

pub async fn finish(
    client: &ProviderClient,
    provider: &IdentityProvider,
    token_url: &Url,
    api_base: &Url,
    redirect_uri: &str,
    code: &str,
) -> Result<Profile, BrokerError> {
    let query = [
        ("client_id", provider.client_id.as_str()),
        ("redirect_uri", redirect_uri),
        ("client_secret", provider.client_secret.expose()),
        ("code", code),
    ];
    let mut token_req = token_url.clone();
    token_req.query_pairs_mut().extend_pairs(query);
    let (status, token) = client.json(client.request(reqwest::Method::GET, token_req.as_str())?).await?;
    let access = access_token(status, &token)?;
    let proof = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, provider.client_secret.expose().as_bytes()),
        access.as_bytes(),
    );
    let proof: String = proof.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let mut me = Url::parse(&api(api_base, "me")).map_err(|e| BrokerError::Misconfigured(e.to_string()))?;
    me.query_pairs_mut().append_pair("fields", "id,name,email").append_pair("appsecret_proof", &proof);
    let (status, user) = client.json(client.request(reqwest::Method::GET, me.as_str())?.bearer_auth(&access)).await?;
    if !status.is_success() {
        return Err(BrokerError::BadResponse(format!("GET /me answered {status}")));
    }
    profile(&user)
}

/// The access token of a token answer, or Graph's error (`{"error": {"message", "type",
/// "code"}}`).
pub(crate) fn access_token(status: http::StatusCode, body: &serde_json::Value) -> Result<String, BrokerError> {
    if let Some(error) = body.get("error") {
        let kind = error.get("type").and_then(|t| t.as_str()).unwrap_or("error");
        let code = error.get("code").map(|c| c.to_string()).unwrap_or_default();
        return Err(BrokerError::TokenRefused(shown_error(&format!("{kind}.{code}"))));
    }
    if !status.is_success() {
        return Err(BrokerError::TokenRefused(format!("status {}", status.as_u16())));
    }
    body.get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| BrokerError::BadResponse("the token answer has no access token".into()))
}

/// The profile from `GET /me?fields=id,name,email` (`email` is absent when the person did not
/// share it or has none).
pub fn profile(me: &serde_json::Value) -> Result<Profile, BrokerError> {
    let subject = text_claim(me, "id").ok_or_else(|| BrokerError::BadResponse("GET /me has no id".into()))?;
    Ok(Profile {
        subject,
        email: text_claim(me, "email"),
        email_verified: false,
        username_hint: None,
        name: text_claim(me, "name"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shapes() {
        // Graph API reference, "User": ids are strings of digits.
        let me = serde_json::json!({"id": "4", "name": "Mark Zuckerberg", "email": "mark@example.com"});
        let p = profile(&me).unwrap();
        assert_eq!(p.subject, "4");
        assert_eq!(p.email.as_deref(), Some("mark@example.com"));
        assert!(!p.email_verified, "Facebook emails never count as verified");
        assert!(profile(&serde_json::json!({"name": "x"})).is_err());
        // "Handling errors" in the Graph API docs.
        let error = serde_json::json!({"error": {"message": "Invalid verification code format.", "type": "OAuthException", "code": 100, "fbtrace_id": "AbCdEf"}});
        assert!(
            matches!(access_token(http::StatusCode::BAD_REQUEST, &error), Err(BrokerError::TokenRefused(e)) if e == "OAuthException.100")
        );
        let ok = serde_json::json!({"access_token": "EAAB", "token_type": "bearer", "expires_in": 5183944});
        assert_eq!(access_token(http::StatusCode::OK, &ok).unwrap(), "EAAB");
    }
}
