//! Every request's way through the gateway, in `serve` and in a gateway alone alike:
//! ambiguous path refused → route matched ([`crate::routes`]) → the check at the entry with the
//! route's auth mode ([`crate::check`]) → body limit → an anonymous answer kept a moment
//! ([`crate::page_cache`]) or the route's target, within the route's timeout → the route's
//! metrics.
//!
//! A target is a router in this process (the auth service, the API server, the gateway's own
//! `/oauth2` endpoints under `serve`) or an upstream pool reached over HTTP ([`crate::proxy`]).
//! Both get the same request, `X-Forwarded-*` included, so a route behaves the same in either
//! mode.
//!
//! The gateway is its listener's front ([`turtlemen_http::server::App::Front`]): the server
//! hands it every request but the health paths directly, and it runs the foundation around
//! [`entry`] itself. A proxied request so passes no axum router, middleware stack or boxed
//! service clone (measured: `benches/gateway.sh`).

use crate::Gateway;
use crate::page_cache::PageCache;
use crate::proxy::{Pool, Proxy, UpstreamConfigError};
use crate::routes::{AuthMode, NoRoute, UpstreamRef, is_ambiguous};
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;
use turtlemen_http::ApiError;
use turtlemen_http::files::{FileReply, FileResponder};
use turtlemen_http::layers::Foundation;
use turtlemen_http::server::{Front, FrontFuture};

/// Where a route's requests go.
#[derive(Clone)]
pub enum Target {
    /// A router in this process.
    InProcess(Router),
    /// Addresses reached over HTTP.
    Pool(Arc<Pool>),
}

/// The gateway as its listener's front ([`turtlemen_http::server::App::Front`]): every request
/// but the health paths enters by [`entry`], inside the foundation, without an axum router.
pub struct Dispatch {
    gw: Gateway,
    foundation: Foundation,
    /// One per route, in the table's order.
    targets: Vec<Target>,
    proxy: Proxy,
    /// Answers to anonymous visitors that the services marked as fit for a shared cache.
    pages: PageCache,
}

/// The gateway's front: every request it takes enters by [`entry`]. `auth` and `api` serve the
/// routes whose upstream is `auth` or `api`; `gateway` routes get the `/oauth2` endpoints; named
/// upstreams get pools made from the configuration. An in-process router is called inside
/// `foundation`, with its default body limit.
pub fn front(
    gw: Gateway,
    auth: Target,
    api: Target,
    oauth2: Router,
    foundation: Foundation,
) -> Result<Arc<Dispatch>, UpstreamConfigError> {
    let mut pools: BTreeMap<&str, Arc<Pool>> = BTreeMap::new();
    for (name, spec) in &gw.config.upstreams {
        pools.insert(name, Arc::new(Pool::new(name, spec)?));
    }
    let mut targets = Vec::new();
    for route in &gw.routes.routes {
        let limited = |target: &Target| match target {
            Target::InProcess(router) => Target::InProcess(router.clone().layer(foundation.body_limit())),
            Target::Pool(pool) => Target::Pool(pool.clone()),
        };
        targets.push(match &route.spec.upstream {
            UpstreamRef::Auth => limited(&auth),
            UpstreamRef::Api => limited(&api),
            UpstreamRef::Gateway => limited(&Target::InProcess(oauth2.clone())),
            UpstreamRef::Named(name) => Target::Pool(pools.get(name.as_str()).cloned().ok_or_else(|| {
                UpstreamConfigError::UnknownUpstream { route: route.spec.name.to_string(), upstream: name.clone() }
            })?),
        });
    }
    let scheme = if gw.config.public_url.scheme() == "https" { "https" } else { "http" };
    let proxy = Proxy::new(gw.config.trusted_proxies.clone(), scheme);
    Ok(Arc::new(Dispatch { gw, foundation, targets, proxy, pages: PageCache::default() }))
}

impl Front for Dispatch {
    fn takes(&self, req: &Request) -> bool {
        !turtlemen_http::health::PATHS.contains(&req.uri().path())
    }

    fn call(self: Arc<Self>, req: Request) -> FrontFuture {
        // Written straight into its allocation: the request's future is several kilobytes, and
        // `Box::pin(async { … })` built it on the stack first and copied it whole, twice, for
        // every request (`benches/gateway_instructions.sh`).
        in_place(move || async move { self.foundation.run(req, |req| entry(&self, req)).await })
    }
}

/// The future `make` makes, made in its heap allocation rather than moved there.
fn in_place<F: Future>(make: impl FnOnce() -> F) -> std::pin::Pin<Box<F>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}

async fn entry(d: &Dispatch, req: Request) -> Response {
    let start = Instant::now();
    if is_ambiguous(req.uri().path()) {
        return ApiError::bad_request("ambiguous_path", "The path contains dot segments or encoded separators.")
            .into_response();
    }
    let index = match d.gw.routes.find(&req) {
        Ok(i) => i,
        Err(NoRoute::UnknownHost) => {
            return ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "unknown_host",
                "This server does not serve that host.",
            )
            .into_response();
        }
        Err(NoRoute::NotFound) => return ApiError::not_found().into_response(),
    };
    let route = &d.gw.routes.routes[index];
    let hand_on = crate::check::HandOn::to(&route.spec.upstream);
    let res = crate::check::at_the_entry(&d.gw, route.spec.auth, hand_on, req, |req| async {
        let too_large = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|n| n > route.max_body_bytes);
        if too_large {
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "The request body is too large.")
                .into_response();
        }
        let limit = usize::try_from(route.max_body_bytes).unwrap_or(usize::MAX);
        let req = req.map(|b| Body::new(http_body_util::Limited::new(b, limit)));
        d.pages.serve(index, req, |req| to_target(d, index, req)).await
    })
    .await;
    route.metrics.observe(res.status().as_u16(), start.elapsed());
    res
}

/// Hands `req` to route `index`'s target, within the route's timeout.
///
/// A timeout that the foundation's own (around this request since it came in) is no longer
/// than is not set again: the foundation's is reached first, so a second timer would only cost
/// its registration. Under the default routes, that is every request but streaming uploads.
async fn to_target(d: &Dispatch, index: usize, mut req: Request) -> Response {
    let route = &d.gw.routes.routes[index];
    let outer = d.foundation.limit_for(&req);
    let own = |limit: Duration| own_limit(limit, outer);
    let router = match &d.targets[index] {
        // The proxy applies the route's timeout with its own read timeout.
        Target::Pool(pool) => {
            let head = own(pool.head_timeout(route.timeout));
            return d.proxy.forward(pool, req, &route.metrics, head).await;
        }
        Target::InProcess(router) => router.clone(),
    };
    d.proxy.in_process(&mut req);
    // Made in each arm, not bound first: see `Foundation::run`.
    let call = |req| async {
        match router.oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        }
    };
    match route.timeout.and_then(own) {
        None => call(req).await,
        Some(limit) => match tokio::time::timeout(limit, call(req)).await {
            Ok(res) => res,
            Err(_) => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "gateway_timeout", "The service took too long to answer.")
                    .into_response()
            }
        },
    }
}

/// `limit`, unless the foundation's `outer` limit (started first) is no longer: then `None`.
fn own_limit(limit: Duration, outer: Option<Duration>) -> Option<Duration> {
    outer.is_none_or(|outer| limit < outer).then_some(limit)
}

/// File answers (see [`turtlemen_http::files`]) for the API server in this process, put behind
/// the route table: a request is offered to `api_files` only when the gateway would route it to
/// the API on a route that lets anonymous visitors in (`auth = "none"` or `"optional"`), and
/// only with an unambiguous path. The files answered are media, whose URLs are signed: the
/// signature is their authorization, and who the visitor is changes nothing, so the session is
/// not looked at. A route with `auth = "required"` is left to the check at the entry. The
/// route's metrics count it.
pub fn api_files(gw: Gateway, api_files: Arc<dyn FileResponder>) -> Arc<dyn FileResponder> {
    Arc::new(RoutedFiles { gw, inner: api_files })
}

struct RoutedFiles {
    gw: Gateway,
    inner: Arc<dyn FileResponder>,
}

impl FileResponder for RoutedFiles {
    fn prefix(&self) -> &str {
        self.inner.prefix()
    }

    fn respond(&self, req: &http::Request<()>) -> Option<FileReply> {
        let start = Instant::now();
        if is_ambiguous(req.uri().path()) {
            return None;
        }
        let route = &self.gw.routes.routes[self.gw.routes.find(req).ok()?];
        if route.spec.upstream != UpstreamRef::Api || route.spec.auth == AuthMode::Required {
            return None;
        }
        let reply = self.inner.respond(req)?;
        route.metrics.observe(reply.status.as_u16(), start.elapsed());
        Some(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_the_foundations_reaches_first_is_not_set_again() {
        let secs = Duration::from_secs;
        assert_eq!(own_limit(secs(30), Some(secs(30))), None, "the default routes");
        assert_eq!(own_limit(secs(60), Some(secs(30))), None);
        assert_eq!(own_limit(secs(2), Some(secs(30))), Some(secs(2)), "a shorter route timeout");
        assert_eq!(own_limit(secs(60), None), Some(secs(60)), "a streaming upload has no outer limit");
    }
}
