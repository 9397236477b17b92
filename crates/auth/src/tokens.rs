//! Signing and verifying the tokens the auth service issues: ID tokens and JWT access tokens
//! (RFC 9068), ES256 with the instance's P-256 key, published as a JWK set.
//!
//! Verification accepts only our own keys (by `kid`, each with its one algorithm: ES256, or RS256
//! for ID tokens of clients that ask for it), with `iss`, `aud` and `exp` checked, and tells
//! access tokens (`typ: at+jwt`) from ID tokens so one cannot stand in for the other. `alg:
//! none` and every other algorithm are refused by construction. After a rotation the retired
//! public keys stay in the JWK set, and keep verifying, until every token they signed expired.

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

/// A public key that verifies tokens: a next, current or retired signing key.
struct PublicKey {
    kid: String,
    alg: Algorithm,
    decoding: DecodingKey,
    jwk: serde_json::Value,
    /// When it stopped signing (Unix seconds); `None` while it is next or current.
    retired_at: Option<i64>,
}

/// A key that signs, from `activated_at` until `retired_at`.
struct SigningKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    /// Its place among its algorithm's keys: of the keys in force, the highest signs.
    generation: i64,
    /// Unix seconds.
    activated_at: i64,
    retired_at: Option<i64>,
}

/// A retired key's public half, as older versions kept them in the data dir
/// (`secrets/retired-signing-keys.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RetiredKey {
    pub jwk: serde_json::Value,
    /// Unix seconds.
    pub retired_at: i64,
}

/// One key as the database keeps it, opened: what [`Signer::from_records`] takes.
#[derive(Clone)]
pub struct KeyRecord {
    /// The `kid` it is stored under (checked against the key itself).
    pub kid: String,
    /// PKCS#8 DER; `None` for a public key only (one imported as already retired).
    pub pkcs8: Option<Vec<u8>>,
    /// The public JWK.
    pub jwk: serde_json::Value,
    pub generation: i64,
    /// Unix seconds: signs from then (a future time for the next key)…
    pub activated_at: i64,
    /// …until then.
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// What is wrong with key material: a private key that is not the expected kind, a public JWK
/// that cannot verify, or a key that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum KeyMaterialError {
    #[error("the signing key is not a PKCS#8 P-256 private key")]
    NotEs256,
    #[error("the RS256 key is not a PKCS#8 RSA private key")]
    NotRsa,
    #[error("the RS256 key is shorter than 2048 bits")]
    RsaTooShort,
    #[error("unexpected public key encoding")]
    Encoding,
    #[error("cannot encode the key: {0}")]
    EncodePkcs1(#[source] rsa::pkcs1::Error),
    #[error("cannot encode the key: {0}")]
    EncodePkcs8(#[source] rsa::pkcs8::Error),
    #[error("cannot generate a signing key: the system random source failed")]
    Random,
    #[error("cannot generate a signing key: {0}")]
    Generate(#[source] rsa::Error),
    #[error("a JWK without {0}")]
    JwkField(&'static str),
    #[error("unsupported key type {0}")]
    KeyType(String),
    #[error("the JWK cannot verify: {0}")]
    Jwk(#[source] jsonwebtoken::errors::Error),
    #[error("unsupported algorithm {0:?}")]
    Algorithm(Algorithm),
}

/// What is wrong with a damaged key record.
#[derive(Debug, thiserror::Error)]
pub enum Damage {
    #[error("its public key is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("its public key: {0}")]
    PublicKey(#[source] KeyMaterialError),
    #[error("its public key is {0}")]
    OtherKid(String),
    #[error("{0}")]
    PrivateKey(#[source] KeyMaterialError),
    #[error("its private key does not match its public key")]
    Mismatch,
}

/// Why a stored key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyRecordError {
    #[error("signing key {kid} is damaged: {reason}")]
    Damaged {
        kid: String,
        #[source]
        reason: Damage,
    },
    #[error("there is no ES256 signing key")]
    NoEs256,
}

/// The instance's signing keys: ES256 keys (every access token, and ID tokens by default),
/// RS256 keys (ID tokens of clients registered with `id_token_signed_response_alg = RS256`), each
/// signing from its activation until its retirement, and the public keys published and accepted:
/// the next keys (published before they sign, so a cached key set already knows them), the
/// current ones, and retired ones until `retention` after their retirement.
pub struct Signer {
    signing: Vec<SigningKey>,
    keys: Vec<PublicKey>,
    retention: i64,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid()).finish_non_exhaustive()
    }
}

/// The kid of a public key: the first 16 characters of the base64url SHA-256 of its bytes.
fn kid_of(public: &[u8]) -> String {
    b64url(digest::digest(&digest::SHA256, public).as_ref())[..16].to_string()
}

/// The public JWK of a PKCS#8 P-256 private key.
pub fn es256_public_jwk(der: &[u8]) -> Result<serde_json::Value, KeyMaterialError> {
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &ring::rand::SystemRandom::new())
        .map_err(|_| KeyMaterialError::NotEs256)?;
    let public = pair.public_key().as_ref();
    if public.len() != 65 || public[0] != 4 {
        return Err(KeyMaterialError::Encoding);
    }
    let (x, y) = (b64url(&public[1..33]), b64url(&public[33..65]));
    Ok(
        serde_json::json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid_of(public), "use": "sig", "alg": "ES256" }),
    )
}

/// The public JWK of a PKCS#8 RSA private key, and the key in PKCS#1 (what the signer takes).
fn rs256_parts(der: &[u8]) -> Result<(serde_json::Value, Vec<u8>), KeyMaterialError> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|_| KeyMaterialError::NotRsa)?;
    if key.size() < 256 {
        return Err(KeyMaterialError::RsaTooShort);
    }
    let (n, e) = (key.n().to_bytes_be(), key.e().to_bytes_be());
    let jwk = serde_json::json!({ "kty": "RSA", "n": b64url(&n), "e": b64url(&e), "kid": kid_of(&n), "use": "sig", "alg": "RS256" });
    let pkcs1 = key.to_pkcs1_der().map_err(KeyMaterialError::EncodePkcs1)?.as_bytes().to_vec();
    Ok((jwk, pkcs1))
}

/// The public JWK of a PKCS#8 RSA private key.
pub fn rs256_public_jwk(der: &[u8]) -> Result<serde_json::Value, KeyMaterialError> {
    rs256_parts(der).map(|(jwk, _)| jwk)
}

/// A new ES256 signing key, PKCS#8 DER.
pub fn generate_es256_pkcs8() -> Result<Vec<u8>, KeyMaterialError> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &ring::rand::SystemRandom::new())
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|_| KeyMaterialError::Random)
}

/// A new RS256 signing key (2048-bit RSA), PKCS#8 DER. `ring` signs with RSA but cannot make
/// RSA keys; the `rsa` crate (already used by jsonwebtoken's RSA support) can.
pub fn generate_rs256_pkcs8() -> Result<Vec<u8>, KeyMaterialError> {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(KeyMaterialError::Generate)?;
    Ok(key.to_pkcs8_der().map_err(KeyMaterialError::EncodePkcs8)?.as_bytes().to_vec())
}

/// A verifying key from a public JWK we published (EC P-256 or RSA).
fn public_key(jwk: &serde_json::Value, retired_at: Option<i64>) -> Result<PublicKey, KeyMaterialError> {
    let field = |name: &'static str| jwk.get(name).and_then(|v| v.as_str()).ok_or(KeyMaterialError::JwkField(name));
    let kid = field("kid")?.to_string();
    let (alg, decoding) = match field("kty")? {
        "EC" => (Algorithm::ES256, DecodingKey::from_ec_components(field("x")?, field("y")?)),
        "RSA" => (Algorithm::RS256, DecodingKey::from_rsa_components(field("n")?, field("e")?)),
        other => return Err(KeyMaterialError::KeyType(other.to_string())),
    };
    Ok(PublicKey { kid, alg, decoding: decoding.map_err(KeyMaterialError::Jwk)?, jwk: jwk.clone(), retired_at })
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A signing key from PKCS#8 DER, with its public JWK, if it is ES256 or RS256.
fn signing_parts(der: &[u8], alg: Algorithm) -> Result<(serde_json::Value, EncodingKey), KeyMaterialError> {
    match alg {
        Algorithm::ES256 => Ok((es256_public_jwk(der)?, EncodingKey::from_ec_der(der))),
        Algorithm::RS256 => rs256_parts(der).map(|(jwk, pkcs1)| (jwk, EncodingKey::from_rsa_der(&pkcs1))),
        other => Err(KeyMaterialError::Algorithm(other)),
    }
}

impl Signer {
    /// Loads a PKCS#8 (DER) P-256 private key: the only key, signing everything.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyMaterialError> {
        let mut signer = Self { signing: Vec::new(), keys: Vec::new(), retention: 0 };
        signer.add_current(der, Algorithm::ES256)?;
        Ok(signer)
    }

    /// Adds the current RS256 key (PKCS#8 DER), for clients that ask for RS256 ID tokens.
    pub fn with_rs256_pkcs8(mut self, der: &[u8]) -> Result<Self, KeyMaterialError> {
        self.add_current(der, Algorithm::RS256)?;
        Ok(self)
    }

    fn add_current(&mut self, der: &[u8], alg: Algorithm) -> Result<(), KeyMaterialError> {
        let (jwk, encoding) = signing_parts(der, alg)?;
        let key = public_key(&jwk, None)?;
        self.signing.push(SigningKey {
            kid: key.kid.clone(),
            alg,
            encoding,
            generation: 0,
            activated_at: i64::MIN,
            retired_at: None,
        });
        self.keys.push(key);
        Ok(())
    }

    /// The keys as stored (each algorithm's newest first, as they are published): private keys
    /// sign between their activation and retirement; public keys are published and accepted
    /// until `retention` after their retirement (the longest lifetime of a token they signed),
    /// older ones are left out. Every key is checked against its `kid`; an ES256 key that signs
    /// is required.
    pub fn from_records(records: &[KeyRecord], retention: chrono::Duration) -> Result<Self, KeyRecordError> {
        let mut signer = Self { signing: Vec::new(), keys: Vec::new(), retention: retention.num_seconds() };
        let now = now();
        for r in records {
            let damaged = |reason: Damage| KeyRecordError::Damaged { kid: r.kid.clone(), reason };
            let key = public_key(&r.jwk, r.retired_at).map_err(|e| damaged(Damage::PublicKey(e)))?;
            if key.kid != r.kid {
                return Err(damaged(Damage::OtherKid(key.kid)));
            }
            if let Some(der) = &r.pkcs8 {
                let (jwk, encoding) = signing_parts(der, key.alg).map_err(|e| damaged(Damage::PrivateKey(e)))?;
                if jwk != r.jwk {
                    return Err(damaged(Damage::Mismatch));
                }
                signer.signing.push(SigningKey {
                    kid: key.kid.clone(),
                    alg: key.alg,
                    encoding,
                    generation: r.generation,
                    activated_at: r.activated_at,
                    retired_at: r.retired_at,
                });
            }
            if signer.in_force(&key, now) && !signer.keys.iter().any(|k| k.kid == key.kid) {
                signer.keys.push(key);
            }
        }
        if !signer.signing.iter().any(|k| k.alg == Algorithm::ES256) {
            return Err(KeyRecordError::NoEs256);
        }
        Ok(signer)
    }

    /// The key of `alg` that signs now: of the activated keys not retired, the highest
    /// generation; failing that (clocks apart), the activated key of the highest; failing that,
    /// the key that activates first (never a later generation ahead of its time).
    fn current(&self, alg: Algorithm) -> Option<&SigningKey> {
        let now = now();
        self.signing.iter().filter(|k| k.alg == alg).max_by_key(|k| {
            let activated = k.activated_at <= now;
            let rank = match activated {
                true => (k.generation, k.activated_at),
                false => (k.activated_at.saturating_neg(), k.generation),
            };
            (activated && k.retired_at.is_none_or(|r| r > now), activated, rank)
        })
    }

    fn current_es256(&self) -> &SigningKey {
        // Every constructor requires an ES256 signing key.
        #[allow(clippy::expect_used)]
        self.current(Algorithm::ES256).expect("an ES256 signing key")
    }

    /// The current ES256 key's id.
    pub fn kid(&self) -> &str {
        &self.current_es256().kid
    }

    /// Whether a key still verifies: next or current, or retired less than `retention` ago.
    fn in_force(&self, key: &PublicKey, now: i64) -> bool {
        key.retired_at.is_none_or(|at| now - at < self.retention)
    }

    /// The public keys, as served at the JWKS endpoint.
    pub fn jwks(&self) -> serde_json::Value {
        let now = now();
        let keys: Vec<&serde_json::Value> =
            self.keys.iter().filter(|k| self.in_force(k, now)).map(|k| &k.jwk).collect();
        serde_json::json!({ "keys": keys })
    }

    fn sign_with(&self, alg: Algorithm, key: &SigningKey, typ: &str, claims: &impl Serialize) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(key.kid.clone());
        header.typ = Some(typ.to_string());
        // Signing serialisable claims with a valid key cannot fail.
        #[allow(clippy::expect_used)]
        jsonwebtoken::encode(&header, claims, &key.encoding).expect("signing a token")
    }

    pub fn sign_access(&self, claims: &AccessClaims) -> String {
        self.sign_with(Algorithm::ES256, self.current_es256(), ACCESS_TOKEN_TYPE, claims)
    }

    pub fn sign_id(&self, claims: &IdClaims) -> String {
        self.sign_with(Algorithm::ES256, self.current_es256(), "JWT", claims)
    }

    /// Signs an ID token with the algorithm the client registered (`RS256`, else ES256).
    pub fn sign_id_for(&self, alg: &str, claims: &IdClaims) -> String {
        match (self.current(Algorithm::RS256), alg) {
            (Some(key), "RS256") => self.sign_with(Algorithm::RS256, key, "JWT", claims),
            _ => self.sign_id(claims),
        }
    }

    fn validation(&self, alg: Algorithm, issuer: &str, audience: &str, check_exp: bool) -> Validation {
        let mut v = Validation::new(alg);
        v.set_issuer(&[issuer]);
        v.set_audience(&[audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.validate_exp = check_exp;
        v.leeway = 30;
        v
    }

    /// The key named by the token's `kid`, if its `alg` is that key's and `typ` is `typ`.
    fn key_for(&self, token: &str, typ: &str) -> Result<&PublicKey, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let now = now();
        let key = self
            .keys
            .iter()
            .find(|k| header.kid.as_deref() == Some(k.kid.as_str()) && self.in_force(k, now))
            .ok_or(TokenError::Invalid)?;
        if header.alg != key.alg {
            return Err(TokenError::Invalid);
        }
        if header.typ.as_deref().map(str::to_ascii_lowercase) != Some(typ.to_ascii_lowercase()) {
            return Err(TokenError::WrongType);
        }
        Ok(key)
    }

    /// Verifies an access token issued by `issuer` for the API.
    pub fn verify_access(&self, token: &str, issuer: &str) -> Result<AccessClaims, TokenError> {
        let key = self.key_for(token, ACCESS_TOKEN_TYPE)?;
        if key.alg != Algorithm::ES256 {
            return Err(TokenError::Invalid);
        }
        let v = self.validation(key.alg, issuer, API_AUDIENCE, true);
        jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &v).map(|d| d.claims).map_err(map_error)
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
        let key = self.key_for(token, "JWT")?;
        let v = self.validation(key.alg, issuer, client_id, check_exp);
        jsonwebtoken::decode::<IdClaims>(token, &key.decoding, &v).map(|d| d.claims).map_err(map_error)
    }

    /// The `aud` of an ID token whose signature is ours, without checking the audience: to
    /// learn which client an `id_token_hint` was issued to.
    pub fn id_token_audience(&self, token: &str, issuer: &str) -> Result<String, TokenError> {
        let key = self.key_for(token, "JWT")?;
        let mut v = self.validation(key.alg, issuer, "", false);
        v.validate_aud = false;
        jsonwebtoken::decode::<IdClaims>(token, &key.decoding, &v).map(|d| d.claims.aud).map_err(map_error)
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

    fn id_claims(aud: &str) -> IdClaims {
        IdClaims {
            iss: "https://x/auth".into(),
            sub: "u1".into(),
            aud: aud.into(),
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
        }
    }

    #[test]
    fn of_keys_none_yet_activated_the_first_to_activate_signs_not_the_newest() {
        // A clock that reads a first key's activation as still ahead (it was stored a moment
        // ago, or clocks are apart) while the next key waits for its publish lead.
        let (first, next) = (generate_es256_pkcs8().unwrap(), generate_es256_pkcs8().unwrap());
        let record = |der: &[u8], generation, activated_at, retired_at| {
            let jwk = es256_public_jwk(der).unwrap();
            KeyRecord {
                kid: jwk["kid"].as_str().unwrap().to_string(),
                pkcs8: Some(der.to_vec()),
                jwk,
                generation,
                activated_at,
                retired_at,
            }
        };
        let records = [record(&next, 2, now() + 120, None), record(&first, 1, now() + 1, Some(now() + 120))];
        let signer = Signer::from_records(&records, chrono::Duration::minutes(6)).unwrap();
        assert_eq!(signer.kid(), records[1].kid, "the key activating in a second, not the one in two minutes");
    }

    #[test]
    fn rs256_id_tokens_and_rotation() {
        let es = generate_es256_pkcs8().unwrap();
        let rs = generate_rs256_pkcs8().unwrap();
        let old = Signer::from_pkcs8(&es).unwrap().with_rs256_pkcs8(&rs).unwrap();
        let id = old.sign_id_for("RS256", &id_claims("c"));
        assert_eq!(jsonwebtoken::decode_header(&id).unwrap().alg, Algorithm::RS256);
        assert_eq!(old.verify_id(&id, "https://x/auth", "c", true).unwrap().sub, "u1");
        assert_eq!(old.jwks()["keys"].as_array().unwrap().len(), 2);
        let old_access = old.sign_access(&access(now() + 60));

        // Rotate: the new ES256 key published first, signing from its activation; the old keys
        // retired then (the RS256 one with a public half only, as imported from old versions).
        let record = |der: Option<&[u8]>, jwk: serde_json::Value, generation, activated_at, retired_at| KeyRecord {
            kid: jwk["kid"].as_str().unwrap().to_string(),
            pkcs8: der.map(<[u8]>::to_vec),
            jwk,
            generation,
            activated_at,
            retired_at,
        };
        let next_es = generate_es256_pkcs8().unwrap();
        let rotation = |at: i64| {
            vec![
                record(Some(next_es.as_slice()), es256_public_jwk(&next_es).unwrap(), 2, at, None),
                record(Some(es.as_slice()), es256_public_jwk(&es).unwrap(), 1, now() - 60, Some(at)),
                record(None, rs256_public_jwk(&rs).unwrap(), 1, now() - 60, Some(at)),
            ]
        };
        let six = chrono::Duration::minutes(6);
        let published = Signer::from_records(&rotation(now() + 60), six).unwrap();
        assert_eq!(published.kid(), old.kid(), "the next key is not signing yet");
        assert_eq!(published.jwks()["keys"].as_array().unwrap().len(), 3, "but published");
        let new = Signer::from_records(&rotation(now()), six).unwrap();
        assert_ne!(new.kid(), old.kid(), "activated: it signs");
        assert_eq!(new.jwks()["keys"].as_array().unwrap().len(), 3, "new ES256 and both retired keys");
        assert!(new.verify_access(&old_access, "https://x/auth").is_ok(), "tokens of a retired key still verify");
        assert!(new.verify_id(&id, "https://x/auth", "c", true).is_ok());
        assert_ne!(
            jsonwebtoken::decode_header(new.sign_access(&access(now() + 60))).unwrap().kid,
            Some(old.kid().into())
        );
        assert!(published.verify_access(&new.sign_access(&access(now() + 60)), "https://x/auth").is_ok());
        assert_eq!(new.sign_id_for("RS256", &id_claims("c")).split('.').count(), 3, "without an RS256 key: ES256");

        // Past the retention window they drop out of the set and verify nothing.
        let later = Signer::from_records(&rotation(now() - 3600), six).unwrap();
        assert_eq!(later.jwks()["keys"].as_array().unwrap().len(), 1);
        assert!(later.verify_access(&old_access, "https://x/auth").is_err());

        // A row whose private key is another key's, or without any ES256 key, is refused.
        let mut swapped = rotation(now());
        swapped[0].pkcs8 = Some(es.clone());
        assert!(matches!(Signer::from_records(&swapped, six), Err(KeyRecordError::Damaged { .. })));
        assert!(matches!(Signer::from_records(&rotation(now())[2..], six), Err(KeyRecordError::NoEs256)));

        // An RS256 key cannot sign access tokens that pass, nor stand in under an ES256 kid.
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(old.kid().into());
        header.typ = Some(ACCESS_TOKEN_TYPE.into());
        let forged = jsonwebtoken::encode(
            &header,
            &access(now() + 60),
            &EncodingKey::from_rsa_der(&rs256_parts(&rs).unwrap().1),
        )
        .unwrap();
        assert!(old.verify_access(&forged, "https://x/auth").is_err());
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
