//! Signing and verifying the tokens the auth service issues: ID tokens and JWT access tokens
//! (RFC 9068), ES256 with the instance's P-256 key, published as a JWK set.
//!
//! Verification accepts ES256 only, from our own key (by `kid`), with `iss`, `aud` and `exp`
//! checked, and tells access tokens (`typ: at+jwt`) from ID tokens so one cannot stand in for
//! the other. `alg: none` and every other algorithm are refused by construction.

use crate::util::b64url;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::digest;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};

pub use turtlemen_identity::{ACCESS_TOKEN_TYPE, API_AUDIENCE, AccessClaims};

/// The claims of an ID token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub azp: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    pub sid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed or its signature is invalid")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not of the expected kind")]
    WrongType,
}

/// The instance's signing key.
pub struct Signer {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: serde_json::Value,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads a PKCS#8 (DER) P-256 private key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &ring::rand::SystemRandom::new())
            .map_err(|_| "the signing key is not a PKCS#8 P-256 private key".to_string())?;
        let public = pair.public_key().as_ref();
        if public.len() != 65 || public[0] != 4 {
            return Err("unexpected public key encoding".into());
        }
        let (x, y) = (b64url(&public[1..33]), b64url(&public[33..65]));
        let kid = b64url(digest::digest(&digest::SHA256, public).as_ref())[..16].to_string();
        let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?;
        let jwk = serde_json::json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256" });
        Ok(Self { kid, encoding: EncodingKey::from_ec_der(der), decoding, jwk })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public keys, as served at the JWKS endpoint.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.jwk] })
    }

    fn sign(&self, typ: &str, claims: &impl Serialize) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_string());
        // Signing serialisable claims with a valid key cannot fail.
        #[allow(clippy::expect_used)]
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing a token")
    }

    pub fn sign_access(&self, claims: &AccessClaims) -> String {
        self.sign(ACCESS_TOKEN_TYPE, claims)
    }

    pub fn sign_id(&self, claims: &IdClaims) -> String {
        self.sign("JWT", claims)
    }

    fn validation(&self, issuer: &str, audience: &str, check_exp: bool) -> Validation {
        let mut v = Validation::new(Algorithm::ES256);
        v.set_issuer(&[issuer]);
        v.set_audience(&[audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.validate_exp = check_exp;
        v.leeway = 30;
        v
    }

    fn check_header(&self, token: &str, typ: &str) -> Result<(), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::ES256 || header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(TokenError::Invalid);
        }
        if header.typ.as_deref().map(str::to_ascii_lowercase) != Some(typ.to_ascii_lowercase()) {
            return Err(TokenError::WrongType);
        }
        Ok(())
    }

    /// Verifies an access token issued by `issuer` for the API.
    pub fn verify_access(&self, token: &str, issuer: &str) -> Result<AccessClaims, TokenError> {
        self.check_header(token, ACCESS_TOKEN_TYPE)?;
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation(issuer, API_AUDIENCE, true))
            .map(|d| d.claims)
            .map_err(map_error)
    }

    /// Verifies an ID token we issued to `client_id`; `check_exp: false` for `id_token_hint`,
    /// which may have expired.
    pub fn verify_id(
        &self,
        token: &str,
        issuer: &str,
        client_id: &str,
        check_exp: bool,
    ) -> Result<IdClaims, TokenError> {
        self.check_header(token, "JWT")?;
        jsonwebtoken::decode::<IdClaims>(token, &self.decoding, &self.validation(issuer, client_id, check_exp))
            .map(|d| d.claims)
            .map_err(map_error)
    }

    /// The `aud` of an ID token whose signature is ours, without checking the audience: to
    /// learn which client an `id_token_hint` was issued to.
    pub fn id_token_audience(&self, token: &str, issuer: &str) -> Result<String, TokenError> {
        self.check_header(token, "JWT")?;
        let mut v = self.validation(issuer, "", false);
        v.validate_aud = false;
        jsonwebtoken::decode::<IdClaims>(token, &self.decoding, &v).map(|d| d.claims.aud).map_err(map_error)
    }
}

fn map_error(e: jsonwebtoken::errors::Error) -> TokenError {
    match e.kind() {
        jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
        _ => TokenError::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &ring::rand::SystemRandom::new()).unwrap();
        Signer::from_pkcs8(doc.as_ref()).unwrap()
    }

    fn access(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://x/auth".into(),
            sub: "u1".into(),
            aud: API_AUDIENCE.into(),
            exp,
            iat: 0,
            jti: "j".into(),
            client_id: "c".into(),
            scope: "openid".into(),
            auth_time: 0,
            sid: "s".into(),
            preferred_username: "ann".into(),
            email: None,
            groups: vec![],
        }
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn round_trip_and_refusals() {
        let s = signer();
        let token = s.sign_access(&access(now() + 60));
        assert_eq!(s.verify_access(&token, "https://x/auth").unwrap().sub, "u1");
        assert!(matches!(s.verify_access(&token, "https://evil/auth"), Err(TokenError::Invalid)));
        assert!(matches!(
            s.verify_access(&s.sign_access(&access(now() - 3600)), "https://x/auth"),
            Err(TokenError::Expired)
        ));
        // Another key's token, even with our kid, fails.
        let other = signer();
        let forged = other.sign_access(&access(now() + 60));
        assert!(s.verify_access(&forged, "https://x/auth").is_err());
        // alg: none.
        let parts: Vec<&str> = token.split('.').collect();
        let none_header = b64url(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{}"}}"#, s.kid()).as_bytes());
        assert!(s.verify_access(&format!("{none_header}.{}.", parts[1]), "https://x/auth").is_err());
        // Tampered payload.
        let evil = b64url(br#"{"sub":"admin"}"#);
        assert!(s.verify_access(&format!("{}.{evil}.{}", parts[0], parts[2]), "https://x/auth").is_err());
    }

    #[test]
    fn an_id_token_is_not_an_access_token() {
        let s = signer();
        let id = IdClaims {
            iss: "https://x/auth".into(),
            sub: "u1".into(),
            aud: API_AUDIENCE.into(),
            azp: "c".into(),
            exp: now() + 60,
            iat: 0,
            auth_time: 0,
            sid: "s".into(),
            nonce: None,
            preferred_username: None,
            name: None,
            email: None,
            email_verified: None,
            groups: None,
        };
        let token = s.sign_id(&id);
        assert!(matches!(s.verify_access(&token, "https://x/auth"), Err(TokenError::WrongType)));
    }
}
