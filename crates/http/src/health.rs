//! `/healthz` (the process answers) and `/readyz` (the stores it depends on answer), each store
//! a [`Probe`] the role hands in: this crate knows no store.

use crate::client_addr::TrustedProxies;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// An error a check returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type CheckFn = dyn Fn() -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync;

/// A dependency `/readyz` checks, shown under its name (`database`, `session_store`).
#[derive(Clone)]
pub struct Probe {
    name: &'static str,
    check: Arc<CheckFn>,
}

/// What one check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// It answered, in this long.
    Ok(Duration),
    /// It answered with an error (logged).
    Unreachable,
    /// It did not answer within [`CHECK_TIMEOUT`].
    Timeout,
}

impl Checked {
    /// The word `/readyz` shows.
    pub fn as_str(&self) -> &'static str {
        match self {
            Checked::Ok(_) => "ok",
            Checked::Unreachable => "unreachable",
            Checked::Timeout => "timeout",
        }
    }

    /// The round trip, when it answered.
    pub fn round_trip(&self) -> Option<Duration> {
        match self {
            Checked::Ok(t) => Some(*t),
            _ => None,
        }
    }
}

impl Probe {
    /// A probe named `name` whose `check` answers `Ok` while the dependency serves.
    pub fn new<F, Fut, E>(name: &'static str, check: F) -> Probe
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let check = move || -> BoxFuture<'static, Result<(), BoxError>> {
            let fut = check();
            Box::pin(async move { fut.await.map_err(Into::into) })
        };
        Probe { name, check: Arc::new(check) }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs the check once, within [`CHECK_TIMEOUT`]; a failure is logged.
    pub async fn check(&self) -> Checked {
        let start = Instant::now();
        match tokio::time::timeout(CHECK_TIMEOUT, (self.check)()).await {
            Ok(Ok(())) => Checked::Ok(start.elapsed()),
            Ok(Err(e)) => {
                tracing::warn!(probe = self.name, error = %e, "readiness check failed");
                Checked::Unreachable
            }
            Err(_) => Checked::Timeout,
        }
    }
}

/// What `/readyz` checks: the stores the role uses, and nothing else.
#[derive(Clone, Default)]
pub struct Readiness {
    pub probes: Vec<Probe>,
}

/// The paths the routers here answer: a front that takes requests before them
/// ([`crate::server::App::Front`]) leaves these alone.
pub const PATHS: [&str; 3] = [HEALTHZ, READYZ, METRICS];
const HEALTHZ: &str = "/healthz";
const READYZ: &str = "/readyz";
const METRICS: &str = "/metrics";

/// The health routes and `/metrics`.
pub fn router(readiness: Readiness) -> Router {
    health(readiness).route(METRICS, get(crate::metrics::serve))
}

/// The health routes, and `/metrics` answered 404: a main listener's when the figures have a
/// listener of their own. The path is taken here so that a gateway does not hand it on to an
/// upstream either.
pub fn probes(readiness: Readiness) -> Router {
    health(readiness).route(METRICS, axum::routing::any(|| async { crate::error::ApiError::not_found() }))
}

/// The health routes, and `/metrics` answered only to a client on this machine (a loopback
/// address, behind `trusted` proxies): a listener that faces users (the gateway's, `serve`'s)
/// when the figures have no listener of their own. Others get 404.
pub fn local_metrics(readiness: Readiness, trusted: TrustedProxies) -> Router {
    let figures = move |req: Request| {
        let local = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|ConnectInfo(peer)| trusted.client_ip(peer.ip(), req.headers()).to_canonical().is_loopback());
        async move {
            match local {
                true => crate::metrics::serve().await,
                false => crate::error::ApiError::not_found().into_response(),
            }
        }
    };
    health(readiness).route(METRICS, axum::routing::any(figures))
}

fn health(readiness: Readiness) -> Router {
    Router::new().route(HEALTHZ, get(|| async { "ok\n" })).route(READYZ, get(ready)).with_state(readiness)
}

async fn ready(State(r): State<Readiness>) -> Response {
    let checked = futures::future::join_all(r.probes.iter().map(Probe::check)).await;
    let ready = checked.iter().all(|c| matches!(c, Checked::Ok(_)));
    let mut body = serde_json::Map::new();
    body.insert("ready".into(), ready.into());
    for (probe, c) in r.probes.iter().zip(&checked) {
        body.insert(probe.name.into(), c.as_str().into());
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    // A JSON body with its own content type: the error layer passes it through unchanged.
    (status, axum::Json(serde_json::Value::Object(body))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn readyz(probes: Vec<Probe>) -> (StatusCode, serde_json::Value) {
        let res = tower::ServiceExt::oneshot(
            router(Readiness { probes }),
            axum::http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap(),
        )
        .await
        .unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn ready_only_when_every_probe_answers() {
        let up = || Probe::new("database", || async { Ok::<_, std::io::Error>(()) });
        let down = Probe::new("session_store", || async { Err(std::io::Error::other("refused")) });
        assert_eq!(readyz(vec![]).await, (StatusCode::OK, serde_json::json!({ "ready": true })));
        assert_eq!(readyz(vec![up()]).await, (StatusCode::OK, serde_json::json!({ "ready": true, "database": "ok" })));
        assert_eq!(
            readyz(vec![up(), down]).await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({ "ready": false, "database": "ok", "session_store": "unreachable" })
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_that_hangs_times_out() {
        let hangs = Probe::new("database", std::future::pending::<Result<(), std::io::Error>>);
        assert_eq!(hangs.check().await, Checked::Timeout);
    }
}
