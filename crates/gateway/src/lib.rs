//! The gateway (the OAuth2 Proxy role): the ingress every request enters by.
//!
//! - [`routes`]: the route table (from `[[routes]]` or built in): host, path prefix and method
//!   pick the upstream and whether a visitor must be signed in (`required`), may be
//!   (`optional`) or is the service's own business (`none`); matched on the real request only;
//! - [`dispatch`]: every request's way through — route, check, body limit, target, timeout,
//!   per-route metrics — as the listener's front, called before any axum router;
//!   [`page_cache`] keeps a moment what anonymous visitors get when the service marks it
//!   public; [`proxy`] forwards to upstream pools (HTTP/1.1 or h2c, WebSockets)
//!   over [`upstream`] connections, [`body`] ends bodies that stall, [`splice`] moves large
//!   response bodies from socket to socket without copying them;
//! - [`rp`]: the gateway as an OpenID Connect relying party of one issuer (code + PKCE S256 +
//!   state + nonce), with token refresh;
//! - [`session`]: the browser session — an opaque 256-bit cookie id signed with an HMAC, the
//!   tokens kept server-side in the session store (embedded or Redis), ended at once when the
//!   issuer's login session it was built on ends (the auth service's `ended` marks);
//! - [`check`]: the check at the entry — client-supplied identity headers removed in every
//!   spelling, the session (refreshed once per session when expired) or a Bearer JWT verified,
//!   identity handed on as `X-Auth-Request-*` and `Authorization: Bearer`;
//! - [`endpoints`]: `/oauth2/start`, `/oauth2/callback`, `/oauth2/sign_out` (a POST with the
//!   session's token; a GET asks), `/oauth2/backchannel_logout` (an external issuer ends
//!   sessions), `/oauth2/userinfo`, `/oauth2/auth` (forward auth for nginx, Traefik, Envoy).
//!
//! Never: trust an identity header from a client, route on `X-Forwarded-*` headers, redirect
//! to anything but a local path, keep a token in the cookie.

pub mod body;
pub mod check;
pub mod dispatch;
pub mod endpoints;
pub mod limits;
pub mod page_cache;
pub mod proxy;
pub mod routes;
pub mod rp;
pub mod session;
pub mod splice;
pub mod upstream;

use axum::Router;
use axum::routing::{any, get, post};
use std::sync::Arc;
use turtlemen_identity::{Jwks, Transport};
use turtlemen_session::Sessions;
use url::Url;

/// How the gateway signs people in.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub public_url: Url,
    /// The issuer, without a trailing slash.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// A session ends after this long unused…
    pub idle: std::time::Duration,
    /// …and after this long in any case.
    pub absolute: std::time::Duration,
    /// Proxies whose `X-Forwarded-For` names the real client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How long a session read from the store is reused without reading it again.
    pub session_cache_ttl: std::time::Duration,
    /// The route table, in order.
    pub routes: Vec<turtlemen_config::RouteSpec>,
    /// What routes fall back on.
    pub route_defaults: routes::RouteDefaults,
    /// Pools named by routes.
    pub upstreams: std::collections::BTreeMap<String, turtlemen_config::UpstreamSpec>,
}

/// The gateway's shared state.
pub struct GatewayInner {
    pub config: GatewayConfig,
    pub store: Sessions,
    pub transport: Arc<dyn Transport>,
    pub jwks: Arc<Jwks>,
    pub rp: rp::RelyingParty,
    pub secure_cookies: bool,
    pub routes: routes::RouteTable,
    pub limits: limits::RateLimits,
    pub session_cache: session::SessionCache,
    pub cookie_signer: session::CookieSigner,
    /// One lock per session being refreshed in this process (single flight).
    pub refresh_locks: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

pub type Gateway = Arc<GatewayInner>;

impl GatewayInner {
    pub fn new(config: GatewayConfig, store: Sessions, transport: Arc<dyn Transport>) -> Gateway {
        let jwks = Arc::new(Jwks::new(&config.issuer, transport.clone()));
        let secure = config.public_url.scheme() == "https";
        let session_cache = session::SessionCache::new(config.session_cache_ttl);
        let cookie_signer = session::CookieSigner::new(&config.client_secret);
        let gateway = Arc::new(Self {
            rp: rp::RelyingParty::new(&config, transport.clone(), jwks.clone()),
            routes: routes::RouteTable::new(config.routes.clone(), &config.route_defaults),
            config,
            store,
            transport,
            jwks,
            secure_cookies: secure,
            limits: limits::RateLimits::default(),
            session_cache,
            cookie_signer,
            refresh_locks: std::sync::Mutex::default(),
        });
        // Forget quiet clients now and then, so the limiters' memory stays bounded.
        let weak = Arc::downgrade(&gateway);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(gw) = weak.upgrade() else { break };
                gw.limits.forget_idle();
            }
        });
        gateway
    }

    /// Follows the announcements of ended sessions on the store's bus, so a ban or sign-out
    /// anywhere drops this gateway's cached sessions at once. Called before serving.
    pub async fn follow_endings(&self) -> Result<(), turtlemen_session::SessionError> {
        let bus = self.store.bus(turtlemen_session::ended::TOPIC).await?;
        self.session_cache.follow(bus.subscribe());
        Ok(())
    }
}

/// The gateway in front of the services, as its listener's front ([`dispatch::front`]): `auth`
/// and `api` serve the routes naming them (routers in this process under `serve`, pools for a
/// gateway alone); named upstreams are proxied.
pub fn front(
    gateway: Gateway,
    auth: dispatch::Target,
    api: dispatch::Target,
    foundation: turtlemen_http::layers::Foundation,
) -> Result<Arc<dispatch::Dispatch>, proxy::UpstreamConfigError> {
    let oauth2 = Router::new()
        .route("/oauth2/start", get(endpoints::start))
        .route("/oauth2/callback", get(endpoints::callback))
        .route("/oauth2/sign_out", get(endpoints::sign_out_page).post(endpoints::sign_out))
        .route("/oauth2/backchannel_logout", post(endpoints::backchannel_logout))
        .route("/oauth2/userinfo", get(endpoints::userinfo))
        .route("/oauth2/auth", any(endpoints::forward_auth))
        .with_state(gateway.clone());
    dispatch::front(gateway, auth, api, oauth2, foundation)
}
