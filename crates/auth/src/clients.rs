//! Registering OAuth clients: `turtlemen admin create-client`, and the gateway, which `serve`
//! registers as a first-party client (no consent screen).
//!
//! Secrets are 256-bit random strings shown once; only their SHA-256 is stored.

use crate::util::{hash_token, random_token};
use turtlemen_db::clients::{self, Client};
use turtlemen_db::{Db, DbError};
use url::Url;

/// The gateway's client id.
pub const GATEWAY_CLIENT_ID: &str = "turtlemen-gateway";

/// Why a client was not registered.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("client-id: 1 to 128 characters of letters, digits, '-', '_', '.' or ':'")]
    ClientId,
    #[error("redirect-uri {0:?}: must be an absolute https URL (http only for localhost), without a fragment")]
    RedirectUri(String),
    #[error("redirect-uri: at least one is required")]
    NoRedirectUri,
    #[error("id-token-alg: ES256 or RS256")]
    IdTokenAlg,
    #[error("client-id: a client with this id already exists")]
    Taken,
    #[error(transparent)]
    Db(DbError),
}

/// Checks a redirect URI: absolute, no fragment, https (or http to a loopback host, or a
/// private-use scheme for native apps, RFC 8252).
pub fn check_redirect_uri(uri: &str) -> Result<(), ClientError> {
    let bad = || ClientError::RedirectUri(uri.to_string());
    let url = Url::parse(uri).map_err(|_| bad())?;
    if url.fragment().is_some() || uri.len() > 2048 {
        return Err(bad());
    }
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        "http" | "https" | "javascript" | "data" | "file" | "vbscript" => Err(bad()),
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(bad()),
    }
}

/// What `admin create-client` asks for.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub client_id: String,
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub first_party: bool,
    /// `id_token_signed_response_alg`: `None` for ES256, `Some("RS256")` for clients that only
    /// verify RSA signatures.
    pub id_token_alg: Option<String>,
}

/// Registers a client; returns its secret (confidential clients only).
pub async fn create(db: &Db, new: NewClient) -> Result<Option<String>, ClientError> {
    let id_ok = !new.client_id.is_empty()
        && new.client_id.len() <= 128
        && new.client_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if !id_ok {
        return Err(ClientError::ClientId);
    }
    if new.redirect_uris.is_empty() {
        return Err(ClientError::NoRedirectUri);
    }
    for uri in new.redirect_uris.iter().chain(&new.post_logout_redirect_uris) {
        check_redirect_uri(uri)?;
    }
    let id_token_alg = match new.id_token_alg.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("ES256") => "ES256",
        Some("RS256") => "RS256",
        Some(_) => return Err(ClientError::IdTokenAlg),
    };
    let secret = (!new.public).then(|| random_token(32));
    let client = Client {
        name: new.name.unwrap_or_else(|| new.client_id.clone()),
        client_id: new.client_id,
        secret_hash: secret.as_deref().map(hash_token),
        redirect_uris: new.redirect_uris,
        post_logout_redirect_uris: new.post_logout_redirect_uris,
        first_party: new.first_party,
        id_token_alg: id_token_alg.into(),
    };
    clients::create(db, &client).await.map_err(|e| match e {
        DbError::Conflict { .. } => ClientError::Taken,
        other => ClientError::Db(other),
    })?;
    Ok(secret)
}

/// Registers (or updates) the built-in gateway as a first-party confidential client whose
/// secret is derived from the instance's cookie key, so every gateway of a deployment knows it
/// without another setting.
pub async fn ensure_gateway(db: &Db, public_url: &Url, cookie_key: &[u8]) -> Result<String, DbError> {
    let secret = gateway_secret(cookie_key);
    let client = Client {
        client_id: GATEWAY_CLIENT_ID.into(),
        secret_hash: Some(hash_token(&secret)),
        name: "Turtlemen".into(),
        redirect_uris: vec![format!("{}oauth2/callback", public_url.as_str())],
        post_logout_redirect_uris: vec![public_url.to_string()],
        first_party: true,
        id_token_alg: "ES256".into(),
    };
    clients::upsert(db, &client).await?;
    Ok(secret)
}

/// The gateway's client secret: HMAC of a fixed label under the cookie key.
pub fn gateway_secret(cookie_key: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, cookie_key);
    crate::util::b64url(ring::hmac::sign(&key, b"turtlemen gateway client secret").as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris() {
        for ok in ["https://app.example/cb", "http://localhost:3000/cb", "http://127.0.0.1:9/cb", "com.example.app:/cb"]
        {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example/cb",
            "https://app.example/cb#frag",
            "javascript:alert(1)",
            "/relative",
            "data:text/html,x",
            "notaurl",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
