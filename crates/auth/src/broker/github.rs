//! GitHub: OAuth 2.0 (an OAuth app's web flow) plus its REST API.
//!
//! Authorize at `https://github.com/login/oauth/authorize`; exchange the code at
//! `…/login/oauth/access_token` with `Accept: application/json` (GitHub answers errors with a
//! 200 and an `error` field); then `GET {api}/user` (the numeric `id` is the subject, `login` a
//! username hint) and `GET {api}/user/emails` (the primary address, verified or not as GitHub
//! says). GitHub issues no ID token, so there is no nonce; `state` and PKCE still bind the flow.

use super::client::ProviderClient;
use super::{BrokerError, PendingFlow, Profile, shown_error, text_claim};
use turtlemen_config::IdentityProvider;
use url::Url;

pub fn authorization_url(
    auth_url: &Url,
    provider: &IdentityProvider,
    redirect_uri: &str,
    state: &str,
    flow: &PendingFlow,
) -> Url {
    let mut url = auth_url.clone();
    url.query_pairs_mut()
        .append_pair("client_id", &provider.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", &provider.scopes.join(" "))
        .append_pair("state", state)
        .append_pair("code_challenge", &flow.challenge())
        .append_pair("code_challenge_method", "S256");
    url
}

/// `{base}/{path}` whether or not the base ends with a slash.
pub(crate) fn api(base: &Url, path: &str) -> String {
    format!("{}/{path}", base.as_str().trim_end_matches('/'))
}

pub async fn finish(
    client: &ProviderClient,
    provider: &IdentityProvider,
    token_url: &Url,
    api_base: &Url,
    redirect_uri: &str,
    code: &str,
    flow: &PendingFlow,
) -> Result<Profile, BrokerError> {
    let form = [
        ("client_id", provider.client_id.as_str()),
        ("client_secret", provider.client_secret.expose()),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", flow.verifier.as_str()),
    ];
    let (status, token) = client.json(client.request(reqwest::Method::POST, token_url.as_str())?.form(&form)).await?;
    let access = access_token(status, &token)?;
    let get = |path: &str| -> Result<reqwest::RequestBuilder, BrokerError> {
        Ok(client
            .request(reqwest::Method::GET, &api(api_base, path))?
            .bearer_auth(&access)
            .header(http::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28"))
    };
    let (status, user) = client.send(get("user")?).await?;
    if !status.is_success() {
        return Err(BrokerError::BadResponse(format!("GET /user answered {status}")));
    }
    let user: serde_json::Value =
        serde_json::from_slice(&user).map_err(|_| BrokerError::BadResponse("GET /user is not JSON".into()))?;
    let (status, emails) = client.send(get("user/emails")?).await?;
    // Without the `user:email` scope the list is refused; the profile's public email remains.
    let emails: serde_json::Value =
        if status.is_success() { serde_json::from_slice(&emails).unwrap_or_default() } else { serde_json::Value::Null };
    profile(&user, &emails)
}

/// The access token of a token answer, or the error GitHub gave.
pub(crate) fn access_token(status: http::StatusCode, body: &serde_json::Value) -> Result<String, BrokerError> {
    if let Some(error) = body.get("error").and_then(|e| e.as_str()) {
        return Err(BrokerError::TokenRefused(shown_error(error)));
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

/// The profile from `GET /user` and `GET /user/emails`: the primary email and its verification
/// as GitHub reports it; without the list, the profile's public email, unverified.
pub fn profile(user: &serde_json::Value, emails: &serde_json::Value) -> Result<Profile, BrokerError> {
    let subject = match user.get("id") {
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return Err(BrokerError::BadResponse("GET /user has no numeric id".into())),
    };
    let primary = emails.as_array().and_then(|list| {
        list.iter().find(|e| e.get("primary").and_then(|p| p.as_bool()) == Some(true)).and_then(|e| {
            Some((e.get("email")?.as_str()?.to_owned(), e.get("verified").and_then(|v| v.as_bool()) == Some(true)))
        })
    });
    let (email, email_verified) = match primary {
        Some((email, verified)) => (Some(email), verified),
        None => (text_claim(user, "email"), false),
    };
    Ok(Profile {
        subject,
        email,
        email_verified,
        username_hint: text_claim(user, "login"),
        name: text_claim(user, "name"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shapes() {
        // Trimmed from GitHub's REST docs: "Get the authenticated user" and "List email addresses
        // for the authenticated user".
        let user = serde_json::json!({
            "login": "octocat", "id": 1, "node_id": "MDQ6VXNlcjE=", "type": "User",
            "name": "monalisa octocat", "email": "octocat@github.com"
        });
        let emails = serde_json::json!([
            {"email": "octocat@github.com", "verified": true, "primary": true, "visibility": "public"},
            {"email": "other@example.com", "verified": false, "primary": false, "visibility": null}
        ]);
        let p = profile(&user, &emails).unwrap();
        assert_eq!(p.subject, "1");
        assert_eq!((p.email.as_deref(), p.email_verified), (Some("octocat@github.com"), true));
        assert_eq!(p.username_hint.as_deref(), Some("octocat"));
        assert_eq!(p.name.as_deref(), Some("monalisa octocat"));
        // No list (scope not granted): the public email, never counted as verified.
        let p = profile(&user, &serde_json::Value::Null).unwrap();
        assert_eq!((p.email.as_deref(), p.email_verified), (Some("octocat@github.com"), false));
        assert!(profile(&serde_json::json!({"login": "x", "id": "1"}), &emails).is_err(), "id must be a number");
    }

    #[test]
    fn token_errors_come_with_a_200() {
        // "Troubleshooting OAuth app access token request errors": a 200 with an error field.
        let body = serde_json::json!({
            "error": "bad_verification_code",
            "error_description": "The code passed is incorrect or expired.",
            "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"
        });
        assert!(
            matches!(access_token(http::StatusCode::OK, &body), Err(BrokerError::TokenRefused(e)) if e == "bad_verification_code")
        );
        let ok = serde_json::json!({"access_token": "gho_16C7e42F292c6912E7710c838347Ae178B4a", "scope": "repo,gist", "token_type": "bearer"});
        assert_eq!(access_token(http::StatusCode::OK, &ok).unwrap(), "gho_16C7e42F292c6912E7710c838347Ae178B4a");
    }
}
