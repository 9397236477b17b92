//! The issuer's keys, cached, and access-token verification with them.
//!
//! Verification is local: a token whose `kid` the cache knows is checked against the cached key
//! at once, never behind a request to the issuer. Staleness, both ways bounded: a token naming a
//! `kid` the cache does not know waits for the set to be fetched again (at most once every
//! [`REFETCH_INTERVAL`]), so a new key verifies from its first token; and the first use of a set
//! older than [`MAX_AGE`] starts one fetch in the background (the token is answered with the
//! cached key meanwhile), so a key the issuer dropped stops verifying once that fetch lands. If
//! the issuer cannot be reached, the cached keys go on verifying and the failure is logged.
//!
//! An access token is used for many requests (the gateway hands on the same one until it is
//! refreshed), and checking an ES256 signature was a tenth of the CPU of a signed-in page. So the
//! claims of an access token already verified are kept ([`Verified`]), under the SHA-256 of its
//! exact bytes: the same bytes give the same signature, `typ`, `iss` and `aud` checks. What can
//! change between two uses is checked again on each: `exp` (with the same leeway) and that the
//! key set still holds the token's `kid` (a fetched set empties the kept claims). A token that
//! failed is not kept, so it is checked in full every time.

use crate::{ACCESS_TOKEN_TYPE, API_AUDIENCE, AccessClaims, Transport};
use axum::body::Body;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;

/// The least time between two fetches of the key set (a flood of tokens with made-up `kid`s
/// must not become a flood of requests to the issuer).
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// The longest time a fetched key set is used before it is fetched again (in the background).
pub const MAX_AGE: Duration = Duration::from_secs(300);

/// How long past its `exp` a token is still taken (clocks differ).
const LEEWAY_SECS: u64 = 30;

/// The most access tokens whose claims are kept ([`Verified`]); past it, the expired ones go,
/// then all (a flood of valid tokens costs what it did before the cache, no memory).
const VERIFIED_MAX: usize = 20_000;

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is malformed or its signature is invalid")]
    Invalid,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not an access token")]
    WrongType,
    #[error("the issuer's keys are unavailable: {0}")]
    Keys(String),
}

/// Verifies access tokens of one issuer.
pub struct Jwks {
    issuer: String,
    source: Arc<Source>,
    /// [`MAX_AGE`] (tests shorten it).
    max_age: Duration,
}

/// Where the keys come from, and the keys last fetched: shared with a background refresh.
struct Source {
    keys_url: String,
    transport: Arc<dyn Transport>,
    keys: RwLock<Cached>,
    /// When the set was last asked for; held over the request, so one fetch runs at a time.
    last_fetch: Arc<Mutex<Option<Instant>>>,
    /// Access tokens verified against the keys in `keys`: emptied when they are replaced.
    verified: Verified,
    /// [`REFETCH_INTERVAL`] (tests shorten it).
    refetch_interval: Duration,
}

/// The keys last fetched, and when.
#[derive(Default)]
struct Cached {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

/// The claims of access tokens verified in full, by the SHA-256 of the token, with the `kid`
/// that verified each.
#[derive(Default)]
struct Verified {
    tokens: std::sync::Mutex<Tokens>,
    /// How many signatures were checked (tests read it).
    #[cfg(test)]
    checked: std::sync::atomic::AtomicUsize,
}

/// The kept claims, and how many times the key set was replaced (a check begun against an
/// earlier set is not kept).
#[derive(Default)]
struct Tokens {
    claims: HashMap<[u8; 32], (Arc<str>, AccessClaims)>,
    generation: u64,
}

impl Verified {
    fn key(token: &str) -> [u8; 32] {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        key
    }

    fn get(&self, key: &[u8; 32]) -> Option<(Arc<str>, AccessClaims)> {
        self.tokens.lock().ok()?.claims.get(key).cloned()
    }

    /// How many times the key set was replaced; read under the set's lock, it names that set.
    fn generation(&self) -> u64 {
        self.tokens.lock().map_or(u64::MAX, |t| t.generation)
    }

    /// Keeps the claims of a check begun in `generation`, unless the key set changed since.
    fn put(&self, generation: u64, key: [u8; 32], kid: Arc<str>, claims: AccessClaims) {
        let Ok(mut tokens) = self.tokens.lock() else { return };
        if tokens.generation != generation {
            return;
        }
        if tokens.claims.len() >= VERIFIED_MAX {
            let now = unix_now();
            tokens.claims.retain(|_, (_, c)| !expired(c, now));
            if tokens.claims.len() >= VERIFIED_MAX {
                tokens.claims.clear();
            }
        }
        tokens.claims.insert(key, (kid, claims));
    }

    /// Forgets every check: the key set was replaced.
    fn clear(&self) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.claims.clear();
            tokens.generation = tokens.generation.wrapping_add(1);
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Whether `claims` are past their `exp` by more than the leeway at `now` (jsonwebtoken's rule).
fn expired(claims: &AccessClaims, now: u64) -> bool {
    u64::try_from(claims.exp).map_or(true, |exp| exp.saturating_add(LEEWAY_SECS) < now)
}

impl Jwks {
    /// `issuer` without a trailing slash; the keys are at `{issuer}/jwks`.
    pub fn new(issuer: &str, transport: Arc<dyn Transport>) -> Self {
        Self::with_keys_url(issuer, &format!("{issuer}/jwks"), transport)
    }

    /// An issuer whose keys are elsewhere (an external provider's `jwks_uri`).
    pub fn with_keys_url(issuer: &str, keys_url: &str, transport: Arc<dyn Transport>) -> Self {
        Self {
            issuer: issuer.to_string(),
            source: Arc::new(Source {
                keys_url: keys_url.to_string(),
                transport,
                keys: RwLock::default(),
                last_fetch: Arc::default(),
                verified: Verified::default(),
                refetch_interval: REFETCH_INTERVAL,
            }),
            max_age: MAX_AGE,
        }
    }

    #[cfg(test)]
    fn with_timings(self, refetch_interval: Duration, max_age: Duration) -> Self {
        let source = Arc::into_inner(self.source).expect("timings are set before any use");
        Self { source: Arc::new(Source { refetch_interval, ..source }), max_age, ..self }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    async fn key(&self, kid: &str) -> Result<Option<DecodingKey>, VerifyError> {
        Ok(self.key_in_set(kid).await?.map(|(key, _)| key))
    }

    /// The key under `kid`, and the generation of the set it was found in ([`Tokens`]).
    async fn key_in_set(&self, kid: &str) -> Result<Option<(DecodingKey, u64)>, VerifyError> {
        {
            let cached = self.source.keys.read().await;
            if let Some(key) = cached.keys.get(kid).cloned() {
                if cached.fetched.is_none_or(|t| t.elapsed() >= self.max_age) {
                    self.source.refresh_in_background();
                }
                return Ok(Some((key, self.source.verified.generation())));
            }
        }
        self.source.fetch().await?;
        let cached = self.source.keys.read().await;
        Ok(cached.keys.get(kid).cloned().map(|key| (key, self.source.verified.generation())))
    }

    /// Verifies an ID token issued to `client_id` (signature by a known key, `iss`, `aud`,
    /// `exp`, and `nonce` when given) and returns its claims.
    pub async fn verify_id_token(
        &self,
        token: &str,
        client_id: &str,
        nonce: Option<&str>,
    ) -> Result<serde_json::Value, VerifyError> {
        if token.len() > 16384 {
            return Err(VerifyError::Invalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Invalid)?;
        if !matches!(header.alg, Algorithm::ES256 | Algorithm::RS256) {
            return Err(VerifyError::Invalid);
        }
        if header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)) {
            return Err(VerifyError::WrongType);
        }
        let kid = header.kid.ok_or(VerifyError::Invalid)?;
        let key = self.key(&kid).await?.ok_or(VerifyError::Invalid)?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[client_id]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = LEEWAY_SECS;
        let claims =
            jsonwebtoken::decode::<serde_json::Value>(token, &key, &v).map(|d| d.claims).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => VerifyError::Expired,
                    _ => VerifyError::Invalid,
                }
            })?;
        if let Some(expected) = nonce
            && claims.get("nonce").and_then(|n| n.as_str()) != Some(expected)
        {
            return Err(VerifyError::Invalid);
        }
        Ok(claims)
    }

    /// Verifies an access token: ES256 signature by a known key, `typ`, `iss`, `aud`, `exp`. A
    /// token verified before is answered from [`Verified`] once its `exp` and `kid` pass again.
    pub async fn verify_access(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        if token.len() > 8192 {
            return Err(VerifyError::Invalid);
        }
        let digest = Verified::key(token);
        if let Some((kid, claims)) = self.source.verified.get(&digest) {
            if expired(&claims, unix_now()) {
                return Err(VerifyError::Expired);
            }
            // The set may have dropped the key, or be old enough to be fetched again.
            return match self.key(&kid).await? {
                Some(_) => Ok(claims),
                None => Err(VerifyError::Invalid),
            };
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Invalid)?;
        if header.alg != Algorithm::ES256 {
            return Err(VerifyError::Invalid);
        }
        if !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)) {
            return Err(VerifyError::WrongType);
        }
        let kid = header.kid.ok_or(VerifyError::Invalid)?;
        let (key, generation) = self.key_in_set(&kid).await?.ok_or(VerifyError::Invalid)?;
        let mut v = Validation::new(Algorithm::ES256);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[API_AUDIENCE]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = LEEWAY_SECS;
        #[cfg(test)]
        self.source.verified.checked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let claims =
            jsonwebtoken::decode::<AccessClaims>(token, &key, &v).map(|d| d.claims).map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => VerifyError::Expired,
                _ => VerifyError::Invalid,
            })?;
        self.source.verified.put(generation, digest, kid.into(), claims.clone());
        Ok(claims)
    }
}

impl Source {
    /// Fetches the set again unless it was asked for within the refetch interval (then the
    /// caller gets what that fetch brought).
    async fn fetch(&self) -> Result<(), VerifyError> {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.refetch_interval) {
            return Ok(());
        }
        *last = Some(Instant::now());
        self.fetch_now().await
    }

    /// Starts one fetch in the background, unless one is running or the last was too recent.
    fn refresh_in_background(self: &Arc<Self>) {
        let Ok(mut last) = self.last_fetch.clone().try_lock_owned() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < self.refetch_interval) {
            return;
        }
        *last = Some(Instant::now());
        let source = self.clone();
        tokio::spawn(async move {
            if let Err(e) = source.fetch_now().await {
                tracing::warn!(error = %e, "cannot fetch the issuer's keys again; using those fetched earlier");
            }
            drop(last);
        });
    }

    /// Asks the issuer for the set and replaces the cached one (the caller holds `last_fetch`).
    async fn fetch_now(&self) -> Result<(), VerifyError> {
        let req = http::Request::get(self.keys_url.as_str())
            .body(Body::empty())
            .map_err(|e| VerifyError::Keys(e.to_string()))?;
        let (status, _, body) = self.transport.send(req).await.map_err(|e| VerifyError::Keys(e.to_string()))?;
        if !status.is_success() {
            return Err(VerifyError::Keys(format!("the key set answered {status}")));
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| VerifyError::Keys(e.to_string()))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            if let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) {
                keys.insert(kid, key);
            }
        }
        tracing::debug!(keys.count = keys.len(), "fetched the issuer's keys");
        let mut cached = self.keys.write().await;
        *cached = Cached { keys, fetched: Some(Instant::now()) };
        // Under the write lock: no check against the old set can be kept after this.
        self.verified.clear();
        drop(cached);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InProcess;
    use axum::response::IntoResponse;
    use std::sync::Mutex as StdMutex;

    /// A key set of the public key of RFC 7517's example A.1 under each of `kids`.
    fn set(kids: &[&str]) -> serde_json::Value {
        let (x, y) = ("MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4", "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM");
        let keys: Vec<_> = kids
            .iter()
            .map(|kid| serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": x, "y": y}))
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// What the test issuer answers: a key set (`None`: 503), after `delay` (a hanging issuer).
    #[derive(Default)]
    struct Served {
        set: Option<serde_json::Value>,
        delay: Duration,
        requests: usize,
    }

    /// An issuer answering `/jwks` with whatever the test put in `served`, counting requests.
    fn issuer(served: Arc<StdMutex<Served>>) -> Arc<dyn Transport> {
        let router = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (body, delay) = {
                    let mut served = served.lock().unwrap_or_else(|e| e.into_inner());
                    served.requests += 1;
                    (served.set.clone(), served.delay)
                };
                async move {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    match body {
                        Some(set) => axum::Json(set).into_response(),
                        None => http::StatusCode::SERVICE_UNAVAILABLE.into_response(),
                    }
                }
            }),
        );
        Arc::new(InProcess::new(router))
    }

    fn serving(set: Option<serde_json::Value>) -> Arc<StdMutex<Served>> {
        Arc::new(StdMutex::new(Served { set, ..Served::default() }))
    }

    /// Lets a background fetch from an issuer answering at once land (paused time: no real wait).
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn new_kids_are_fetched_and_dropped_keys_go_once_the_set_is_old() {
        let served = serving(Some(set(&["a"])));
        let serve = |set: Option<serde_json::Value>| served.lock().unwrap_or_else(|e| e.into_inner()).set = set;
        let jwks = Jwks::new("http://issuer", issuer(served.clone())).with_timings(Duration::ZERO, MAX_AGE);
        assert!(jwks.key("a").await.unwrap().is_some());
        serve(Some(set(&["b"])));
        assert!(jwks.key("a").await.unwrap().is_some(), "a fresh set is used as it is");
        assert!(jwks.key("b").await.unwrap().is_some(), "an unknown kid fetches the set again");
        assert!(jwks.key("a").await.unwrap().is_none(), "which no longer has the dropped key");
        // Once old, the set is fetched again on its next use; an unreachable issuer leaves it in use.
        tokio::time::advance(MAX_AGE).await;
        serve(None);
        assert!(jwks.key("b").await.unwrap().is_some());
        settle().await;
        assert!(jwks.key("b").await.unwrap().is_some(), "kept while the issuer is unreachable");
        settle().await;
        serve(Some(set(&["c"])));
        assert!(jwks.key("b").await.unwrap().is_some(), "answered from the old set while it is fetched");
        settle().await;
        assert!(jwks.key("b").await.unwrap().is_none(), "dropped by the issuer: refused once the fetch lands");
        assert!(jwks.key("c").await.unwrap().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_known_kid_never_waits_for_the_issuer_and_one_background_fetch_renews_a_stale_set() {
        let served = serving(Some(set(&["a"])));
        let jwks = Jwks::new("http://issuer", issuer(served.clone()));
        assert!(jwks.key("a").await.unwrap().is_some());
        // The issuer now hangs for 10 s before answering a set with a new key.
        let hang = Duration::from_secs(10);
        {
            let mut served = served.lock().unwrap_or_else(|e| e.into_inner());
            (served.set, served.delay) = (Some(set(&["a", "b"])), hang);
        }
        tokio::time::advance(MAX_AGE).await;
        let answer_soon = Duration::from_secs(1);
        for _ in 0..5 {
            let key = tokio::time::timeout(answer_soon, jwks.key("a"))
                .await
                .expect("a known kid is answered from the stale set at once");
            assert!(key.unwrap().is_some());
        }
        // An unknown kid is the one case that waits for the issuer.
        assert!(tokio::time::timeout(answer_soon, jwks.key("unknown")).await.is_err());
        tokio::time::sleep(hang).await;
        settle().await;
        assert_eq!(served.lock().unwrap_or_else(|e| e.into_inner()).requests, 2, "one background fetch");
        let b = tokio::time::timeout(answer_soon, jwks.key("b")).await.expect("the renewed set is cached");
        assert!(b.unwrap().is_some(), "the renewed set is used once the issuer answers");
    }

    /// A P-256 key of the test's own: its public half as a key set under `kid`, and tokens
    /// signed with it.
    struct Signer {
        pkcs8: ring::pkcs8::Document,
        public: Vec<u8>,
    }

    impl Signer {
        fn new() -> Self {
            use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
            let public = pair.public_key().as_ref().to_vec();
            Self { pkcs8, public }
        }

        fn set(&self, kid: &str) -> serde_json::Value {
            use base64::Engine;
            let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
            let (x, y) = (b64(&self.public[1..33]), b64(&self.public[33..]));
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid, "x": x, "y": y}]})
        }

        /// An access token under `kid` that expires `exp_in` seconds from now (negative: ago).
        fn token(&self, kid: &str, exp_in: i64) -> String {
            let now = i64::try_from(unix_now()).unwrap();
            let claims = AccessClaims {
                iss: "http://issuer".into(),
                sub: "u1".into(),
                aud: API_AUDIENCE.into(),
                exp: now + exp_in,
                iat: now - 60,
                jti: "j".into(),
                client_id: "c".into(),
                scope: "openid".into(),
                auth_time: now - 60,
                sid: "s".into(),
                preferred_username: "u".into(),
                email: None,
                groups: vec![],
            };
            let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
            header.typ = Some(ACCESS_TOKEN_TYPE.into());
            header.kid = Some(kid.into());
            let key = jsonwebtoken::EncodingKey::from_ec_der(self.pkcs8.as_ref());
            jsonwebtoken::encode(&header, &claims, &key).unwrap()
        }
    }

    fn checked(jwks: &Jwks) -> usize {
        jwks.source.verified.checked.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[tokio::test]
    async fn an_access_token_is_checked_once_then_its_key_every_time() {
        let signer = Signer::new();
        let served = serving(Some(signer.set("k")));
        let jwks = Jwks::new("http://issuer", issuer(served.clone())).with_timings(Duration::ZERO, MAX_AGE);
        let token = signer.token("k", 600);
        assert_eq!(jwks.verify_access(&token).await.unwrap().sub, "u1");
        assert_eq!(jwks.verify_access(&token).await.unwrap().sub, "u1");
        assert_eq!(checked(&jwks), 1, "the second use is answered from the kept claims");
        // Other bytes are checked in full: one character of the payload changed.
        let dot = token.find('.').unwrap() + 5;
        let mut tampered = token.clone().into_bytes();
        tampered[dot] = if tampered[dot] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(matches!(jwks.verify_access(&tampered).await, Err(VerifyError::Invalid)));
        assert!(matches!(jwks.verify_access(&tampered).await, Err(VerifyError::Invalid)));
        assert_eq!(checked(&jwks), 3, "a refused token is never kept");
        // The issuer drops the key; once the set is fetched again the kept token is refused.
        served.lock().unwrap_or_else(|e| e.into_inner()).set = Some(signer.set("other"));
        assert!(jwks.key("unknown").await.unwrap().is_none(), "an unknown kid fetches the set again");
        assert!(matches!(jwks.verify_access(&token).await, Err(VerifyError::Invalid)));
        // And a set holding it again verifies it afresh.
        served.lock().unwrap_or_else(|e| e.into_inner()).set = Some(signer.set("k"));
        let before = checked(&jwks);
        assert_eq!(jwks.verify_access(&token).await.unwrap().sub, "u1");
        assert_eq!(checked(&jwks), before + 1, "checked against the new set, not taken from the old");
    }

    #[tokio::test]
    async fn a_kept_token_expires_as_a_checked_one_does() {
        let signer = Signer::new();
        let jwks = Jwks::new("http://issuer", issuer(serving(Some(signer.set("k")))));
        // Expired 29 s ago: still within the 30 s leeway, for about a second.
        let token = signer.token("k", -29);
        assert!(jwks.verify_access(&token).await.is_ok());
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert!(matches!(jwks.verify_access(&token).await, Err(VerifyError::Expired)));
        assert_eq!(checked(&jwks), 1, "refused from the kept claims, as the full check refuses it");
        let fresh = Jwks::new("http://issuer", issuer(serving(Some(signer.set("k")))));
        assert!(matches!(fresh.verify_access(&token).await, Err(VerifyError::Expired)), "the full check agrees");
    }
}
