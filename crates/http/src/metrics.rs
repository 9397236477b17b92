//! Request metrics in the Prometheus text format, at `/metrics`.
//!
//! Every request is counted by route group, method and status class, and timed in a histogram
//! by route group. Route groups are the first path segment among a fixed list, so no client can
//! grow the number of series. The gateway adds [`RouteMetrics`] per configured route (requests
//! by status class, latency, upstream errors by kind): handles made once when the route table
//! is built, so a request costs a few atomic additions and no allocation.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::OnceLock;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GatewayRouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GatewayStatusLabels {
    route: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamErrorLabels {
    route: String,
    kind: &'static str,
}

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    route_requests: Family<GatewayStatusLabels, Counter>,
    route_duration: Family<GatewayRouteLabels, Histogram>,
    upstream_errors: Family<UpstreamErrorLabels, Counter>,
    spliced: Counter,
}

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn status_class(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// Why a request to an upstream failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamError {
    /// No connection could be made.
    Connect = 0,
    /// No answer (or no further body) within the read timeout.
    Timeout = 1,
    /// The connection broke or the upstream spoke nonsense.
    Reset = 2,
}

const UPSTREAM_ERROR_KINDS: [&str; 3] = ["connect", "timeout", "reset"];

/// The metrics of one gateway route.
#[derive(Clone, Debug)]
pub struct RouteMetrics {
    requests: [Counter; 5],
    duration: Histogram,
    upstream_errors: [Counter; 3],
}

impl RouteMetrics {
    /// The handles for route `name` (the same series for the same name).
    pub fn for_route(name: &str) -> Self {
        let m = metrics();
        let route = || name.to_string();
        let requests = STATUS_CLASSES
            .map(|status| m.route_requests.get_or_create(&GatewayStatusLabels { route: route(), status }).clone());
        let duration = m.route_duration.get_or_create(&GatewayRouteLabels { route: route() }).clone();
        let upstream_errors = UPSTREAM_ERROR_KINDS
            .map(|kind| m.upstream_errors.get_or_create(&UpstreamErrorLabels { route: route(), kind }).clone());
        Self { requests, duration, upstream_errors }
    }

    /// Counts an answered request and its time to the response head.
    pub fn observe(&self, status: u16, elapsed: std::time::Duration) {
        self.requests[status_class(status)].inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// Counts a failed upstream exchange.
    pub fn upstream_error(&self, kind: UpstreamError) {
        self.upstream_errors[kind as usize].inc();
    }
}

/// Counts body bytes the gateway moved from socket to socket with `splice(2)`.
pub fn spliced(bytes: u64) {
    metrics().spliced.inc_by(bytes);
}

fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let mut registry = Registry::with_prefix("turtlemen_http");
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register("requests", "HTTP requests answered", requests.clone());
        registry.register(
            "request_duration_seconds",
            "Time to answer a request (until the response head)",
            duration.clone(),
        );
        let route_requests = Family::<GatewayStatusLabels, Counter>::default();
        let route_duration = Family::<GatewayRouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let upstream_errors = Family::<UpstreamErrorLabels, Counter>::default();
        let gateway = registry.sub_registry_with_prefix("gateway");
        gateway.register(
            "route_requests",
            "Requests answered per gateway route, by status class",
            route_requests.clone(),
        );
        gateway.register(
            "route_duration_seconds",
            "Time to answer a request per gateway route (until the response head)",
            route_duration.clone(),
        );
        gateway.register(
            "upstream_errors",
            "Failed upstream exchanges per gateway route, by kind",
            upstream_errors.clone(),
        );
        let spliced = Counter::default();
        gateway.register(
            "spliced_bytes",
            "Body bytes moved between client and upstream sockets by splice(2), not copied",
            spliced.clone(),
        );
        Metrics { registry, requests, duration, route_requests, route_duration, upstream_errors, spliced }
    })
}

/// Route groups: `/`, a fixed list of first path segments, and everything else.
const ROUTE_GROUPS: [&str; 12] =
    ["/", "api", "auth", "oauth2", "static", "media", "healthz", "readyz", "metrics", "watch", "upload", "other"];
const METHODS: [&str; 8] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other"];

fn route_index(path: &str) -> usize {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if first.is_empty() {
        return 0;
    }
    ROUTE_GROUPS[1..ROUTE_GROUPS.len() - 1].iter().position(|g| *g == first).map_or(ROUTE_GROUPS.len() - 1, |i| i + 1)
}

fn method_index(m: &axum::http::Method) -> usize {
    METHODS[..METHODS.len() - 1].iter().position(|name| *name == m.as_str()).unwrap_or(METHODS.len() - 1)
}

/// A request being answered, to be counted and timed by [`Observed::done`].
pub struct Observed {
    route: usize,
    method: usize,
}

impl Observed {
    pub fn of<B>(req: &http::Request<B>) -> Self {
        Self { route: route_index(req.uri().path()), method: method_index(req.method()) }
    }

    /// Counts the answer and its time to the response head.
    pub fn done(&self, status: u16, elapsed: std::time::Duration) {
        count(self.route, self.method, status, elapsed);
    }
}

/// Counts and times one answered request (for answers made outside the router).
pub fn observe(path: &str, method: &axum::http::Method, status: u16, elapsed: std::time::Duration) {
    count(route_index(path), method_index(method), status, elapsed);
}

/// The series' handles, looked up in the families once each: a request then costs two atomic
/// additions and no lock, while series nobody used stay out of `/metrics`.
fn count(route: usize, method: usize, status: u16, elapsed: std::time::Duration) {
    const N: usize = ROUTE_GROUPS.len() * METHODS.len() * STATUS_CLASSES.len();
    static COUNTERS: [OnceLock<Counter>; N] = [const { OnceLock::new() }; N];
    static DURATIONS: [OnceLock<Histogram>; ROUTE_GROUPS.len()] = [const { OnceLock::new() }; ROUTE_GROUPS.len()];
    let class = status_class(status);
    let m = metrics();
    let (route_label, method_label) = (ROUTE_GROUPS[route], METHODS[method]);
    COUNTERS[(route * METHODS.len() + method) * STATUS_CLASSES.len() + class]
        .get_or_init(|| {
            let labels = RequestLabels { route: route_label, method: method_label, status: STATUS_CLASSES[class] };
            m.requests.get_or_create(&labels).clone()
        })
        .inc();
    DURATIONS[route]
        .get_or_init(|| m.duration.get_or_create(&RouteLabels { route: route_label }).clone())
        .observe(elapsed.as_secs_f64());
}

/// `GET /metrics`.
pub async fn serve() -> Response {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &metrics().registry).is_err() {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let mut res = text.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_groups_are_bounded() {
        assert_eq!(ROUTE_GROUPS[route_index("/")], "/");
        assert_eq!(ROUTE_GROUPS[route_index("/api/v1/me")], "api");
        assert_eq!(ROUTE_GROUPS[route_index("/upload")], "upload");
        assert_eq!(ROUTE_GROUPS[route_index("/anything-a-client-makes-up")], "other");
        assert_eq!(METHODS[method_index(&axum::http::Method::PATCH)], "PATCH");
        assert_eq!(METHODS[method_index(&axum::http::Method::CONNECT)], "other");
    }

    #[test]
    fn route_metrics_share_series_by_name() {
        let a = RouteMetrics::for_route("metrics-test");
        let b = RouteMetrics::for_route("metrics-test");
        a.observe(204, std::time::Duration::from_millis(3));
        b.observe(502, std::time::Duration::from_millis(3));
        b.upstream_error(UpstreamError::Connect);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics().registry).unwrap();
        assert!(
            text.contains(r#"turtlemen_http_gateway_route_requests_total{route="metrics-test",status="2xx"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"turtlemen_http_gateway_route_requests_total{route="metrics-test",status="5xx"} 1"#));
        assert!(
            text.contains(r#"turtlemen_http_gateway_upstream_errors_total{route="metrics-test",kind="connect"} 1"#)
        );
        assert!(text.contains(r#"turtlemen_http_gateway_route_duration_seconds_count{route="metrics-test"} 2"#));
    }
}
