//! The gateway's browser sessions.
//!
//! The cookie holds only an opaque 256-bit id and its HMAC (`__Host-` prefixed over https;
//! Secure, HttpOnly, SameSite=Lax): a value this gateway (or one sharing its secret) did not
//! make is refused without asking the store, so forged cookies cost no more than none. The
//! store keeps the tokens and the identity under the SHA-256 of the cookie value, so a copy of
//! the store holds no usable cookie. Idle expiry is the store's TTL (renewed on use); absolute
//! expiry is in the record. A login always makes a new id.
//!
//! The record keeps the issuer's login session (`sid` and `auth_time` of the ID token); the
//! session is read together with the marks the auth service writes when that login session, or
//! every session of the user, ends ([`turtlemen_session::ended`]), and a marked session ends at
//! once. A session read in the last moment ([`SessionCache`]) is reused without that read; an
//! ending is announced on the store's bus and drops it from every gateway's cache, and only a
//! lost announcement leaves it there for the cache's time to live.

use crate::Gateway;
use crate::check::Identity;
use axum::http::{HeaderMap, HeaderValue, header};
use axum_extra::extract::cookie::{Cookie, SameSite};
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use turtlemen_session::{SessionError, ended};

/// What the gateway remembers of a signed-in browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewaySession {
    pub sub: String,
    pub username: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub access_token: String,
    /// Unix seconds.
    pub access_expires_at: i64,
    pub refresh_token: Option<String>,
    pub id_token: String,
    /// Unix seconds; the session ends then whatever happens.
    pub expires_at: i64,
    /// The issuer's login session this session was built on (`sid` of the ID token), if it
    /// named one.
    #[serde(default)]
    pub sid: Option<String>,
    /// When the user authenticated at the issuer (`auth_time`, Unix seconds), if it said.
    #[serde(default)]
    pub auth_time: Option<i64>,
}

impl GatewaySession {
    /// The store keys of the marks that end this session: its login session's and its user's.
    fn mark_keys(&self) -> [String; 2] {
        // Without a `sid` the key names no mark ever written: only the user's mark applies.
        [ended::session_key(self.sid.as_deref().unwrap_or("")), ended::user_key(&self.sub)]
    }
}

pub fn cookie_name(gw: &Gateway) -> &'static str {
    if gw.secure_cookies { "__Host-turtlemen_session" } else { "turtlemen_session" }
}

/// The store key of a cookie value.
pub fn key(cookie_value: &str) -> String {
    let hash = digest::digest(&digest::SHA256, cookie_value.as_bytes());
    format!("gw:{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash.as_ref()))
}

/// The value of the session cookie in the request's `Cookie` headers, if there is one (found
/// without building a cookie jar: this runs for every request).
pub fn cookie_in<'h>(gw: &Gateway, headers: &'h HeaderMap) -> Option<&'h str> {
    cookie_value(headers, cookie_name(gw))
}

/// The value of the first cookie called `name` in the request's `Cookie` headers that is ASCII.
/// Read for every request, so it works on bytes and finds each `;` with `memchr`.
pub fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get_all(header::COOKIE).iter().find_map(|v| {
        let mut rest = v.as_bytes();
        loop {
            let end = memchr::memchr(b';', rest).unwrap_or(rest.len());
            let value = rest[..end].trim_ascii().strip_prefix(name.as_bytes()).and_then(|r| r.strip_prefix(b"="));
            if let Some(value) = value.filter(|v| v.is_ascii()) {
                return std::str::from_utf8(value).ok();
            }
            rest = rest.get(end + 1..)?;
        }
    })
}

/// The session id in the request's cookie, if this gateway made it.
pub fn id_from<'h>(gw: &Gateway, headers: &'h HeaderMap) -> Option<&'h str> {
    cookie_in(gw, headers).filter(|v| gw.cookie_signer.made(v))
}

/// Makes and checks session cookie values: 32 random bytes and their HMAC-SHA256, base64url.
pub struct CookieSigner(hmac::Key);

/// The length of a cookie value: 64 bytes in base64url without padding.
const VALUE_LEN: usize = 86;

impl CookieSigner {
    /// The signer for gateways sharing `secret` (the gateway's client secret).
    pub fn new(secret: &str) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let key = hmac::sign(&root, b"turtlemen gateway session cookie");
        Self(hmac::Key::new(hmac::HMAC_SHA256, key.as_ref()))
    }

    /// A new session cookie value.
    pub fn new_value(&self) -> String {
        let mut value = [0u8; 64];
        // SystemRandom fails only when the OS has no randomness at all.
        #[allow(clippy::expect_used)]
        SystemRandom::new().fill(&mut value[..32]).expect("system random source");
        let tag = hmac::sign(&self.0, &value[..32]);
        value[32..].copy_from_slice(tag.as_ref());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value)
    }

    /// The token that signs session `id` out (the sign-out form's CSRF token): an HMAC of the
    /// id, so it is bound to this session and dies with it.
    pub fn sign_out_token(&self, id: &str) -> String {
        let tag = hmac::sign(&self.0, format!("sign out\0{id}").as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// Whether `token` is [`Self::sign_out_token`] of session `id` (constant-time).
    pub fn is_sign_out_token(&self, id: &str, token: &str) -> bool {
        let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token) else { return false };
        hmac::verify(&self.0, format!("sign out\0{id}").as_bytes(), &tag).is_ok()
    }

    /// Whether `value` is one [`Self::new_value`] made with this key.
    pub fn made(&self, value: &str) -> bool {
        if value.len() != VALUE_LEN {
            return false;
        }
        let mut bytes = [0u8; 64];
        match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(value, &mut bytes) {
            Ok(64) => hmac::verify(&self.0, &bytes[..32], &bytes[32..]).is_ok(),
            _ => false,
        }
    }
}

/// Sessions read from the store in the last moment, so a busy page does not read the store for
/// every request. Entries are found by the cookie value itself: a request whose session is
/// cached costs neither the HMAC check nor the hash that makes the store key (together about an
/// eighth of the gateway's instructions per signed-in request, `benches/gateway_instructions.sh`).
/// Only values that passed the HMAC check are ever put here, so finding one is as good as the
/// check; any other value is checked before the store is asked ([`load_with_identity`]). The
/// values stay in this process's memory; the store keeps only their hashes.
///
/// A sign-out or refused refresh on this gateway removes the entry at once; an ending anywhere
/// else (a ban, a reset, "Sign out this session", another gateway's sign-out) removes it as
/// soon as its announcement ([`ended::Notice`]) arrives on the store's bus — read before every
/// lookup, so in one process the next request already misses. Without the announcement (a lost
/// message) an entry stays at most the cache's time to live (`GatewayConfig::session_cache_ttl`,
/// two seconds by default; zero turns the cache off).
pub struct SessionCache {
    ttl: std::time::Duration,
    state: std::sync::Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    entries: std::collections::HashMap<String, Cached>,
    /// Announcements of ended sessions not yet applied.
    notices: Option<tokio::sync::broadcast::Receiver<turtlemen_session::bus::Payload>>,
    /// What was announced in the last time to live: a read that began before an announcement
    /// arrived is not cached after it.
    recent: Vec<(std::time::Instant, ended::Notice)>,
    /// When announcements were last missed (and everything dropped): a read that began before
    /// is not cached.
    missed_at: Option<std::time::Instant>,
}

/// A session as read from the store, and its identity (made once, handed on by every request).
struct Cached {
    at: std::time::Instant,
    session: Arc<GatewaySession>,
    identity: Identity,
}

const CACHE_MAX: usize = 50_000;

/// Whether `notice` names `session`.
fn names(notice: &ended::Notice, session: &GatewaySession) -> bool {
    match notice {
        ended::Notice::User(sub) => *sub == session.sub,
        ended::Notice::Session(sid) => session.sid.as_deref() == Some(sid.as_str()),
    }
}

impl CacheState {
    /// Applies the announcements that arrived since the last look.
    fn apply_notices(&mut self, ttl: std::time::Duration) {
        use tokio::sync::broadcast::error::TryRecvError;
        if let Some(rx) = self.notices.as_mut() {
            loop {
                match rx.try_recv() {
                    Ok(payload) => {
                        if let Some(notice) = ended::Notice::parse(&payload) {
                            self.entries.retain(|_, c| !names(&notice, &c.session));
                            self.recent.push((std::time::Instant::now(), notice));
                        }
                    }
                    // Some were missed: whatever they named is gone with everything else.
                    Err(TryRecvError::Lagged(_)) => {
                        self.entries.clear();
                        self.recent.clear();
                        self.missed_at = Some(std::time::Instant::now());
                    }
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
        }
        // Nothing announced lately, the usual case: no clock is read.
        if !self.recent.is_empty() {
            self.recent.retain(|(at, _)| at.elapsed() < ttl);
        }
    }
}

impl SessionCache {
    pub fn new(ttl: std::time::Duration) -> Self {
        Self { ttl, state: std::sync::Mutex::default() }
    }

    /// Follows the announcements of ended sessions (the store's bus, topic [`ended::TOPIC`]).
    pub fn follow(&self, notices: tokio::sync::broadcast::Receiver<turtlemen_session::bus::Payload>) {
        if let Ok(mut state) = self.state.lock() {
            state.notices = Some(notices);
        }
    }

    fn get(&self, id: &str) -> Option<(Arc<GatewaySession>, Identity)> {
        let mut state = self.state.lock().ok()?;
        state.apply_notices(self.ttl);
        state.entries.get(id).filter(|c| c.at.elapsed() < self.ttl).map(|c| (c.session.clone(), c.identity.clone()))
    }

    /// The mark keys of a session read before, however long ago: read with the session itself,
    /// they save a round trip (the marks a session is checked against never change).
    fn mark_keys(&self, id: &str) -> Option<[String; 2]> {
        self.state.lock().ok()?.entries.get(id).map(|c| c.session.mark_keys())
    }

    /// Keeps `session` (of the checked cookie value `id`), read from the store from `read_at`
    /// on, unless an ending of it was announced since.
    fn put(&self, id: String, session: Arc<GatewaySession>, identity: Identity, read_at: std::time::Instant) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut state) = self.state.lock() {
            state.apply_notices(self.ttl);
            let missed = state.missed_at.is_some_and(|at| at >= read_at);
            if missed || state.recent.iter().any(|(at, n)| *at >= read_at && names(n, &session)) {
                return;
            }
            let entries = &mut state.entries;
            if entries.len() >= CACHE_MAX {
                let ttl = self.ttl;
                entries.retain(|_, c| c.at.elapsed() < ttl);
                if entries.len() >= CACHE_MAX {
                    entries.clear();
                }
            }
            entries.insert(id, Cached { at: std::time::Instant::now(), session, identity });
        }
    }

    fn forget(&self, id: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.entries.remove(id);
        }
    }
}

/// The live session `id` names (from this gateway's cache, or the store).
pub async fn load(gw: &Gateway, id: &str) -> Result<Option<Arc<GatewaySession>>, SessionError> {
    Ok(load_with_identity(gw, id).await?.map(|(s, _)| s))
}

/// Seconds since the Unix epoch, as sessions keep their times: read for every request, so
/// without building a calendar date as `chrono::Utc::now` does.
pub fn unix_now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// [`load`], with the identity the session hands on. `id` may be any cookie value: one that
/// is not in the cache is checked ([`CookieSigner::made`]) before the store is asked, so a
/// forged cookie costs no store lookup.
pub async fn load_with_identity(
    gw: &Gateway,
    id: &str,
) -> Result<Option<(Arc<GatewaySession>, Identity)>, SessionError> {
    let now = unix_now();
    if let Some(found) = gw.session_cache.get(id).filter(|(s, _)| s.expires_at > now) {
        return Ok(Some(found));
    }
    if !gw.cookie_signer.made(id) {
        return Ok(None);
    }
    let key = key(id);
    let read_at = std::time::Instant::now();
    // Boxed: a read from the store is the rarer way, and its future is large.
    let Some(session) = Box::pin(read(gw, id, &key)).await? else { return Ok(None) };
    if session.expires_at <= now {
        gw.store.delete(&key).await?;
        return Ok(None);
    }
    let identity = identity(gw, id, &session);
    let session = Arc::new(session);
    gw.session_cache.put(id.to_owned(), session.clone(), identity.clone(), read_at);
    Ok(Some((session, identity)))
}

/// The session of cookie value `id`, under `key` in the store, unless it is absent, unreadable
/// or ended by a mark (then it is removed): one round trip when this gateway has read it
/// before, two otherwise.
async fn read(gw: &Gateway, id: &str, key: &str) -> Result<Option<GatewaySession>, SessionError> {
    let guessed = gw.session_cache.mark_keys(id);
    let (bytes, mut marks) = match &guessed {
        Some([sid, user]) => {
            let mut values = gw.store.get_many(&[key, sid.as_str(), user.as_str()]).await?.into_iter();
            let bytes = values.next().flatten();
            (bytes, Some((values.next().flatten(), values.next().flatten())))
        }
        None => (gw.store.get(key).await?, None),
    };
    let Some(session) = bytes.and_then(|b| serde_json::from_slice::<GatewaySession>(&b).ok()) else {
        gw.session_cache.forget(id);
        return Ok(None);
    };
    let keys = session.mark_keys();
    if guessed.as_ref() != Some(&keys) {
        let [sid, user] = &keys;
        let mut values = gw.store.get_many(&[sid.as_str(), user.as_str()]).await?.into_iter();
        marks = Some((values.next().flatten(), values.next().flatten()));
    }
    let (session_mark, user_mark) = marks.unwrap_or_default();
    if ended::is_ended(session_mark.as_deref(), user_mark.as_deref(), session.auth_time) {
        tracing::info!(user.id = %session.sub, "gateway session ended with its login session");
        gw.session_cache.forget(id);
        gw.store.delete(key).await?;
        return Ok(None);
    }
    Ok(Some(session))
}

/// The identity session `id` hands on, with its sign-out token.
pub fn identity(gw: &Gateway, id: &str, session: &GatewaySession) -> Identity {
    Identity::of_session(session, &gw.cookie_signer.sign_out_token(id))
}

/// Reads the store, never the cache (to see another request's refresh).
pub async fn load_fresh(gw: &Gateway, id: &str) -> Result<Option<Arc<GatewaySession>>, SessionError> {
    gw.session_cache.forget(id);
    load(gw, id).await
}

pub async fn save(gw: &Gateway, id: &str, session: &GatewaySession) -> Result<(), SessionError> {
    let bytes = serde_json::to_vec(session).map_err(|e| SessionError::Backend(e.to_string()))?;
    let written_at = std::time::Instant::now();
    gw.store.set(&key(id), &bytes, gw.config.idle).await?;
    gw.session_cache.put(id.to_owned(), Arc::new(session.clone()), identity(gw, id, session), written_at);
    Ok(())
}

/// Ends a session in the store and in this gateway's cache.
pub async fn delete(gw: &Gateway, id: &str) -> Result<(), SessionError> {
    gw.session_cache.forget(id);
    gw.store.delete(&key(id)).await
}

/// The cookie for a new session id.
pub fn cookie(gw: &Gateway, id: String) -> Cookie<'static> {
    Cookie::build((cookie_name(gw), id))
        .path("/")
        .http_only(true)
        .secure(gw.secure_cookies)
        .same_site(SameSite::Lax)
        .max_age(time_duration(gw.config.absolute))
        .build()
}

pub fn removal(gw: &Gateway) -> Cookie<'static> {
    Cookie::build(cookie_name(gw)).path("/").build()
}

/// A `Set-Cookie` value that makes the browser drop the session cookie.
pub fn removal_header(gw: &Gateway) -> Option<HeaderValue> {
    let mut cookie = removal(gw);
    cookie.make_removal();
    HeaderValue::from_str(&cookie.to_string()).ok()
}

fn time_duration(d: std::time::Duration) -> time::Duration {
    time::Duration::seconds(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use turtlemen_session::bus::Bus;

    fn session(sub: &str, sid: &str) -> Arc<GatewaySession> {
        Arc::new(GatewaySession {
            sub: sub.into(),
            username: sub.into(),
            email: None,
            groups: Vec::new(),
            access_token: "token".into(),
            access_expires_at: 0,
            refresh_token: None,
            id_token: String::new(),
            expires_at: i64::MAX,
            sid: Some(sid.into()),
            auth_time: Some(0),
        })
    }

    fn put(cache: &SessionCache, key: &str, s: Arc<GatewaySession>, read_at: std::time::Instant) {
        let identity = Identity::new(s.sub.clone(), s.username.clone(), None, Vec::new(), s.access_token.clone());
        cache.put(key.into(), s, identity, read_at);
    }

    #[tokio::test]
    async fn announced_endings_leave_the_cache_before_the_next_lookup() {
        let cache = SessionCache::new(std::time::Duration::from_secs(60));
        let bus = Bus::local();
        cache.follow(bus.subscribe());
        let now = std::time::Instant::now;
        put(&cache, "gw:ann-1", session("ann", "sid-a1"), now());
        put(&cache, "gw:ann-2", session("ann", "sid-a2"), now());
        put(&cache, "gw:bob", session("bob", "sid-b"), now());
        assert!(cache.get("gw:ann-1").is_some() && cache.get("gw:bob").is_some());

        // Every session of a user, then one login session: gone at the next lookup.
        bus.publish(&ended::Notice::User("ann".into()).encode()).await.unwrap();
        assert!(cache.get("gw:ann-1").is_none() && cache.get("gw:ann-2").is_none());
        assert!(cache.get("gw:bob").is_some(), "another user's session stays");
        bus.publish(&ended::Notice::Session("sid-b".into()).encode()).await.unwrap();
        assert!(cache.get("gw:bob").is_none());
        assert_eq!(cache.mark_keys("gw:bob"), None);

        // A read that began before the announcement is not kept after it; one after it is.
        let before = now();
        bus.publish(&ended::Notice::User("carl".into()).encode()).await.unwrap();
        assert!(cache.get("gw:none").is_none());
        put(&cache, "gw:carl", session("carl", "sid-c"), before);
        assert!(cache.get("gw:carl").is_none(), "read before its ending");
        put(&cache, "gw:carl", session("carl", "sid-c2"), now());
        assert!(cache.get("gw:carl").is_some(), "a session read after its user's ending");
        // Anything else on the bus is ignored.
        bus.publish(b"other").await.unwrap();
        assert!(cache.get("gw:carl").is_some());
    }

    #[test]
    fn the_cookie_is_found_by_its_whole_name() {
        let headers = |values: &[&[u8]]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(header::COOKIE, HeaderValue::from_bytes(v).unwrap());
            }
            h
        };
        let find = |values: &[&[u8]]| cookie_value(&headers(values), "sid").map(str::to_owned);
        assert_eq!(find(&[b"sid=abc"]), Some("abc".into()));
        assert_eq!(find(&[b"a=1; sid=abc; b=2"]), Some("abc".into()));
        assert_eq!(find(&[b"a=1;sid=abc"]), Some("abc".into()));
        assert_eq!(find(&[b"a=1", b" sid=abc "]), Some("abc".into()), "a second header");
        assert_eq!(find(&[b"sid=first; sid=second"]), Some("first".into()), "the first one");
        assert_eq!(find(&[b"sid="]), Some("".into()));
        for missing in [&b"xsid=abc"[..], b"sidx=abc", b"sid abc", b"sid", b"", b"; ;", b"a=sid=abc"] {
            assert_eq!(find(&[missing]), None, "{:?}", String::from_utf8_lossy(missing));
        }
        assert_eq!(find(&[b"sid=caf\xc3\xa9"]), None, "not ASCII");
        assert_eq!(find(&[b"a=\xff; sid=abc"]), Some("abc".into()), "another cookie's bytes do not hide it");
    }

    #[test]
    fn cookie_values_are_checked_before_the_store() {
        let signer = CookieSigner::new("secret");
        let value = signer.new_value();
        assert_eq!(value.len(), VALUE_LEN);
        assert!(signer.made(&value));
        assert_ne!(value, signer.new_value(), "random");
        assert!(!CookieSigner::new("other secret").made(&value), "another key's cookie");
        let mut tampered = value.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        assert!(!signer.made(std::str::from_utf8(&tampered).unwrap()));
        for bad in ["", "x", &"x".repeat(43), &"A".repeat(VALUE_LEN), &"é".repeat(43), &format!("{}=", &value[..85])] {
            assert!(!signer.made(bad), "{bad:?}");
        }
    }
}
