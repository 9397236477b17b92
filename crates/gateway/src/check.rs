//! The check at the entry, run before every request reaches a service.
//!
//! 1. Paths that could be read two ways are refused (400), before the route is matched
//!    (by [`crate::dispatch`]).
//! 2. Every client-supplied identity header is removed, in every spelling (any case, `_` for
//!    `-`), on every route.
//! 3. On `optional` and `required` routes the visitor is identified by a Bearer JWT (verified
//!    locally against the issuer's keys; an invalid one is a 401, never a fallback) or by the
//!    session cookie (its access token refreshed when expired, once per session however many
//!    requests arrive together; a refused refresh ends the session).
//! 4. The identity is handed on as `Authorization: Bearer <access token>` (and, for a session,
//!    `X-Turtlemen-Sign-Out-Token`, the token the pages put in their "Sign out" form), and to
//!    every upstream but the built-in API server also as
//!    `X-Auth-Request-User/-Email/-Preferred-Username/-Groups` (see [`HandOn`]); without one,
//!    a `required` route sends a browser to sign in and answers API clients 401. An answer to
//!    an identified request is per user: unless the service said otherwise it carries
//!    `Cache-Control: no-store`.

use crate::Gateway;
use crate::limits::Bucket;
use crate::routes::AuthMode;
use crate::rp::RpError;
use crate::session::{self, GatewaySession};
use axum::extract::ConnectInfo;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use turtlemen_http::ApiError;

/// Who the visitor is, as handed on to the services: cheap to clone, with its header values
/// made once (a session's identity is cached with it, so a request copies no token).
#[derive(Debug, Clone)]
pub struct Identity(Arc<IdentityData>);

#[derive(Debug)]
pub struct IdentityData {
    pub sub: String,
    pub username: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub access_token: String,
    /// `X-Auth-Request-*`, then `Authorization: Bearer` (and the sign-out token), ready to
    /// insert: the first `user_headers` are the user's.
    headers: Vec<(HeaderName, HeaderValue)>,
    user_headers: usize,
}

/// What a service is handed of the visitor's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandOn {
    /// The access token (and a session's sign-out token): the built-in API server verifies the
    /// token and reads nothing else, so the user headers would only be parsed and dropped.
    Token,
    /// The token and `X-Auth-Request-*`, for upstreams that take the gateway's word for who
    /// the visitor is (OAuth2 Proxy's user headers), and for forward auth.
    All,
}

impl HandOn {
    /// What the route's upstream is handed.
    pub fn to(upstream: &crate::routes::UpstreamRef) -> HandOn {
        match upstream {
            crate::routes::UpstreamRef::Api => HandOn::Token,
            _ => HandOn::All,
        }
    }
}

impl std::ops::Deref for Identity {
    type Target = IdentityData;
    fn deref(&self) -> &IdentityData {
        &self.0
    }
}

impl Identity {
    pub fn new(
        sub: String,
        username: String,
        email: Option<String>,
        groups: Vec<String>,
        access_token: String,
    ) -> Self {
        let mut headers = Vec::with_capacity(5);
        let mut put = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
                headers.push((HeaderName::from_static(name), v));
            }
        };
        put("x-auth-request-user", &sub);
        put("x-auth-request-preferred-username", &username);
        if let Some(email) = &email {
            put("x-auth-request-email", email);
        }
        put("x-auth-request-groups", &groups.join(","));
        let user_headers = headers.len();
        if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {access_token}")) {
            v.set_sensitive(true);
            headers.push((header::AUTHORIZATION, v));
        }
        Self(Arc::new(IdentityData { sub, username, email, groups, access_token, headers, user_headers }))
    }
}

/// The header that hands a session's sign-out token to the pages (a client's is removed with
/// the other `x-turtlemen-*` headers).
pub const SIGN_OUT_TOKEN: HeaderName = HeaderName::from_static("x-turtlemen-sign-out-token");

impl Identity {
    /// The identity of a browser session, with its sign-out token.
    pub fn of_session(s: &GatewaySession, sign_out_token: &str) -> Self {
        let mut identity =
            Self::new(s.sub.clone(), s.username.clone(), s.email.clone(), s.groups.clone(), s.access_token.clone());
        if let (Some(data), Ok(v)) = (Arc::get_mut(&mut identity.0), HeaderValue::from_str(sign_out_token)) {
            data.headers.push((SIGN_OUT_TOKEN, v));
        }
        identity
    }
}

/// The result of identifying a request.
pub enum Authn {
    Anonymous { clear_cookie: bool },
    Known(Identity),
}

const IDENTITY_HEADERS: &[&str] = &[
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
    "x-forwarded-groups",
    "x-forwarded-access-token",
    "x-user",
    "x-email",
    "x-remote-user",
    "remote-user",
    "x-userinfo",
    "x-id-token",
    "x-access-token",
];

/// Whether `name` spells an identity header (any case, `_` for `-`), without allocating: this
/// runs for every header of every request.
fn is_identity_header(name: &str) -> bool {
    let same = |a: u8, b: u8| a.to_ascii_lowercase() == b || (a == b'_' && b == b'-');
    let starts = |p: &str| name.len() >= p.len() && name.bytes().zip(p.bytes()).all(|(a, b)| same(a, b));
    starts("x-auth-request-")
        || starts("x-turtlemen-")
        || IDENTITY_HEADERS.iter().any(|h| h.len() == name.len() && starts(h))
}

/// Removes every identity header a client may have sent.
pub fn strip_identity_headers(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers.keys().filter(|n| is_identity_header(n.as_str())).cloned().collect();
    for name in names {
        headers.remove(name);
    }
}

/// Sets the identity headers `hand_on` names. Every client-sent one is gone by now
/// ([`strip_identity_headers`] and `Authorization` in [`authenticate`]): they are appended.
pub fn set_identity_headers(headers: &mut HeaderMap, id: &Identity, hand_on: HandOn) {
    let from = match hand_on {
        HandOn::Token => id.user_headers,
        HandOn::All => 0,
    };
    for (name, value) in &id.headers[from..] {
        headers.append(name.clone(), value.clone());
    }
}

fn invalid_token(message: &'static str) -> Response {
    let mut res = ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", message).into_response();
    res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
    res
}

/// Identifies the request by Bearer token or session cookie. `Err` is a response to send as is.
pub async fn authenticate(gw: &Gateway, headers: &mut HeaderMap) -> Result<Authn, Response> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(|t| t.trim().to_string());
        headers.remove(header::AUTHORIZATION);
        if let Some(token) = token {
            return match Box::pin(gw.jwks.verify_access(&token)).await {
                Ok(c) => Ok(Authn::Known(Identity::new(c.sub, c.preferred_username, c.email, c.groups, token))),
                Err(turtlemen_identity::VerifyError::Keys(e)) => {
                    tracing::error!(error = %e, "cannot fetch the issuer's keys");
                    Err(ApiError::unavailable("Sign-in is temporarily unavailable.").into_response())
                }
                Err(_) => Err(invalid_token("The access token is invalid or expired.")),
            };
        }
    }
    // Checked (HMAC) by the session's load unless its session is cached: see `SessionCache`.
    let Some(id) = session::cookie_in(gw, headers) else {
        return Ok(Authn::Anonymous { clear_cookie: false });
    };
    match current(gw, id).await {
        Ok(Some(identity)) => Ok(Authn::Known(identity)),
        Ok(None) => Ok(Authn::Anonymous { clear_cookie: true }),
        Err(e) => {
            tracing::error!(error = %e, "cannot check the session");
            Err(ApiError::unavailable("Sign-in is temporarily unavailable; try again shortly.").into_response())
        }
    }
}

/// Why a session could not be checked: the visitor is told to try again shortly (503), the
/// session is kept.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("the session store failed: {0}")]
    Store(#[from] turtlemen_session::SessionError),
    #[error("the issuer did not answer the refresh: {0}")]
    Issuer(String),
    #[error("timed out waiting for another gateway's refresh")]
    RefreshWait,
    #[error("a refresh lock was poisoned")]
    Poisoned,
}

/// Who the live session `id` names, its access token refreshed if it has (nearly) expired.
/// `id` is the cookie's value as sent: [`session::load_with_identity`] checks it before the
/// store is asked, and nothing below runs for a value it does not find.
pub async fn current(gw: &Gateway, id: &str) -> Result<Option<Identity>, CheckError> {
    let Some((s, identity)) = session::load_with_identity(gw, id).await? else {
        return Ok(None);
    };
    if !needs_refresh(&s) {
        return Ok(Some(identity));
    }
    // Boxed: the refresh is rare, and its future large.
    Ok(Box::pin(refresh_once(gw, id)).await?.map(|s| session::identity(gw, id, &s)))
}

/// How long a gateway's refresh lock on a session lasts if its owner never releases it.
const REFRESH_LOCK_TTL: Duration = Duration::from_secs(15);

/// A fresh random value naming the holder of a refresh lock (128 bits, never repeated).
fn lock_owner() -> [u8; 16] {
    use ring::rand::SecureRandom;
    let mut owner = [0u8; 16];
    // SystemRandom fails only when the OS has no randomness at all.
    #[allow(clippy::expect_used)]
    ring::rand::SystemRandom::new().fill(&mut owner).expect("system random source");
    owner
}

fn needs_refresh(s: &GatewaySession) -> bool {
    s.access_expires_at <= session::unix_now() + 15
}

/// Refreshes a session's tokens exactly once however many requests ask at the same moment:
/// in this process through a per-session lock, across gateways through a lock in the shared
/// store (the issuer revokes a refresh token family when one token is used twice).
async fn refresh_once(gw: &Gateway, id: &str) -> Result<Option<GatewaySession>, CheckError> {
    let key = session::key(id);
    let local = {
        let mut locks = gw.refresh_locks.lock().map_err(|_| CheckError::Poisoned)?;
        locks.entry(key.clone()).or_default().clone()
    };
    let outcome = async {
        let _guard = local.lock().await;
        // Another request (or gateway) may have refreshed while we waited.
        let Some(s) = session::load_fresh(gw, id).await? else { return Ok(None) };
        let s = GatewaySession::clone(&s);
        if !needs_refresh(&s) {
            return Ok(Some(s));
        }
        let lock_key = format!("gwlock:{key}");
        // A value only this refresh knows: the lock is released by its owner alone, never by a
        // refresh that outlived its lock after another gateway took it.
        let owner = lock_owner();
        if !gw.store.set_if_absent(&lock_key, &owner, REFRESH_LOCK_TTL).await? {
            // Another gateway is refreshing this session: wait for its result.
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                match session::load_fresh(gw, id).await? {
                    Some(s) if !needs_refresh(&s) => return Ok(Some(GatewaySession::clone(&s))),
                    None => return Ok(None),
                    Some(_) => {}
                }
            }
            return Err(CheckError::RefreshWait);
        }
        let result = refresh(gw, id, s).await;
        if let Err(e) = gw.store.delete_if(&lock_key, &owner).await {
            tracing::warn!(error = %e, "cannot release a session's refresh lock; it expires on its own");
        }
        result
    }
    .await;
    if let Ok(mut locks) = gw.refresh_locks.lock()
        && locks.get(&key).is_some_and(|l| std::sync::Arc::strong_count(l) <= 2)
    {
        locks.remove(&key);
    }
    outcome
}

async fn refresh(gw: &Gateway, id: &str, mut s: GatewaySession) -> Result<Option<GatewaySession>, CheckError> {
    let Some(refresh_token) = s.refresh_token.clone() else {
        session::delete(gw, id).await?;
        return Ok(None);
    };
    match gw.rp.refresh(&refresh_token).await {
        Ok(tokens) => {
            s.access_expires_at = chrono::Utc::now().timestamp() + tokens.expires_in.unwrap_or(300);
            s.access_token = tokens.access_token;
            if let Some(rt) = tokens.refresh_token {
                s.refresh_token = Some(rt);
            }
            if let Some(idt) = tokens.id_token {
                s.id_token = idt;
            }
            session::save(gw, id, &s).await?;
            tracing::debug!(user.id = %s.sub, "session refreshed");
            Ok(Some(s))
        }
        Err(RpError::Refused(reason)) => {
            tracing::info!(user.id = %s.sub, reason = %reason, "refresh refused; session ended");
            session::delete(gw, id).await?;
            Ok(None)
        }
        Err(RpError::Unavailable(e)) => Err(CheckError::Issuer(e)),
    }
}

/// Whether the client is a browser navigating (sent to sign in) rather than an API client.
fn is_browser(req: &Request) -> bool {
    let path = req.uri().path();
    if path == "/api" || path.starts_with("/api/") {
        return false;
    }
    req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// The check for a request on a route asking `mode`: identity headers removed, rate limits
/// applied, the visitor identified; then `next` runs with the identity handed on as `hand_on`
/// says, or the visitor is sent to sign in. Ambiguous paths are refused by the caller, before
/// matching.
pub async fn at_the_entry<F, Fut>(gw: &Gateway, mode: AuthMode, hand_on: HandOn, mut req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    strip_identity_headers(req.headers_mut());
    let path = req.uri().path();
    if let Some(bucket) = Bucket::of(req.method(), path) {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        let ip = turtlemen_http::client_addr::client_ip(peer, req.headers(), &gw.config.trusted_proxies);
        let session = session::id_from(gw, req.headers()).map(session::key);
        if let Err(wait) = gw.limits.check(bucket, ip, session.as_deref()) {
            tracing::warn!(client.ip = %ip, limit = ?bucket, "rate limited");
            let mut res = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many attempts; wait a moment and try again.",
            )
            .into_response();
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return res;
        }
    }
    if mode == AuthMode::None {
        return next(req).await;
    }
    let authn = match authenticate(gw, req.headers_mut()).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    match authn {
        Authn::Known(identity) => {
            set_identity_headers(req.headers_mut(), &identity, hand_on);
            let mut res = next(req).await;
            // What a signed-in visitor gets is theirs: no cache keeps it, unless the service
            // decided (signed media URLs are private and cached by the browser on purpose).
            if !res.headers().contains_key(header::CACHE_CONTROL) {
                res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            res
        }
        Authn::Anonymous { clear_cookie } => {
            let mut res = if mode != AuthMode::Required {
                next(req).await
            } else if is_browser(&req) {
                let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str()).to_string();
                let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("rd", &target).finish();
                Redirect::to(&format!("/oauth2/start?{query}")).into_response()
            } else {
                ApiError::unauthorized().into_response()
            };
            // A cookie that names no live session is dropped.
            if let Some(removal) = clear_cookie.then(|| session::removal_header(gw)).flatten() {
                res.headers_mut().append(header::SET_COOKIE, removal);
            }
            res
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_headers_in_every_spelling() {
        let mut h = HeaderMap::new();
        for name in [
            "X-Auth-Request-User",
            "x_auth_request_email",
            "X-AUTH-REQUEST-GROUPS",
            "x-forwarded-user",
            "Remote-User",
            "x_forwarded_email",
            "x-turtlemen-role",
        ] {
            h.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static("admin"));
        }
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        strip_identity_headers(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
    }

    #[test]
    fn the_api_server_is_handed_the_token_and_other_upstreams_the_user_too() {
        use crate::routes::UpstreamRef;
        let id =
            Identity::new("u-1".into(), "ann".into(), Some("ann@example.org".into()), vec!["admin".into()], "t".into());
        let handed = |to: HandOn| {
            let mut h = HeaderMap::new();
            set_identity_headers(&mut h, &id, to);
            let mut names: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
            names.sort_unstable();
            names.join(" ")
        };
        assert_eq!(HandOn::to(&UpstreamRef::Api), HandOn::Token);
        assert_eq!(handed(HandOn::Token), "authorization");
        for upstream in [UpstreamRef::Auth, UpstreamRef::Gateway, UpstreamRef::Named("echo".into())] {
            assert_eq!(HandOn::to(&upstream), HandOn::All);
        }
        assert_eq!(
            handed(HandOn::All),
            "authorization x-auth-request-email x-auth-request-groups x-auth-request-preferred-username x-auth-request-user"
        );
    }
}
