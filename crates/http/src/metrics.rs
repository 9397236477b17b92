//! Request metrics in the Prometheus text format, at `/metrics`.
//!
//! Every request is counted by route group, method and status class, and timed in a histogram
//! by route group. Route groups are the first path segment among a fixed list, so no client can
//! grow the number of series. The gateway adds [`RouteMetrics`] per configured route (requests
//! by status class, latency, upstream errors by kind): handles made once when the route table
//! is built, so a request costs a few atomic additions and no allocation.
//!
//! Beside them, under the `turtlemen_` prefix, the process's operational figures: the job
//! queue, uploads and lives in progress, the database and session store (reachability, round
//! trip, pool) — taken every few seconds by the role (`turtlemen::health`) — and the speed of each
//! finished transcode, recorded by the worker ([`transcode_finished`]).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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
    ops_registry: Registry,
    ops: Ops,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    route_requests: Family<GatewayStatusLabels, Counter>,
    route_duration: Family<GatewayRouteLabels, Histogram>,
    upstream_errors: Family<UpstreamErrorLabels, Counter>,
    spliced: Counter,
    sendfile: Counter,
    closed_at_cap: Counter,
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

/// Counts idle connections closed to make room at the connection cap ([`crate::idle::Open`]).
pub fn closed_at_cap() {
    metrics().closed_at_cap.inc();
}

/// Counts response body bytes sent from files with `sendfile(2)` ([`crate::files`]).
pub fn sent_from_files(bytes: u64) {
    metrics().sendfile.inc_by(bytes);
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
        let sendfile = Counter::default();
        registry.register(
            "sendfile_bytes",
            "Response body bytes sent from files by sendfile(2), not copied through the server",
            sendfile.clone(),
        );
        let closed_at_cap = Counter::default();
        registry.register(
            "connections_closed_at_cap",
            "Idle connections closed to make room for a new one at the connection cap",
            closed_at_cap.clone(),
        );
        let mut ops_registry = Registry::with_prefix("turtlemen");
        let ops = Ops::register(&mut ops_registry);
        Metrics {
            registry,
            ops_registry,
            ops,
            requests,
            duration,
            route_requests,
            route_duration,
            upstream_errors,
            spliced,
            sendfile,
            closed_at_cap,
        }
    })
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobStateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolStateLabels {
    state: &'static str,
}

/// The operational figures (see the module's note).
struct Ops {
    jobs: Family<JobStateLabels, Gauge>,
    oldest_due_job: Gauge<f64, std::sync::atomic::AtomicU64>,
    uploads_active: Gauge,
    lives_active: Gauge,
    db_up: Gauge,
    db_ping: Gauge<f64, std::sync::atomic::AtomicU64>,
    db_connections: Family<PoolStateLabels, Gauge>,
    session_store_up: Gauge,
    session_store_ping: Gauge<f64, std::sync::atomic::AtomicU64>,
    transcode_speed: Histogram,
}

impl Ops {
    fn register(r: &mut Registry) -> Self {
        let ops = Ops {
            jobs: Family::default(),
            oldest_due_job: Gauge::default(),
            uploads_active: Gauge::default(),
            lives_active: Gauge::default(),
            db_up: Gauge::default(),
            db_ping: Gauge::default(),
            db_connections: Family::default(),
            session_store_up: Gauge::default(),
            session_store_ping: Gauge::default(),
            transcode_speed: Histogram::new([0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]),
        };
        r.register("jobs", "Jobs in the queue, by state (queued or running)", ops.jobs.clone());
        r.register(
            "jobs_oldest_due_age_seconds",
            "How long the oldest due job has waited for a worker",
            ops.oldest_due_job.clone(),
        );
        r.register("uploads_active", "Uploads started and neither finished nor expired", ops.uploads_active.clone());
        r.register("lives_active", "Lives on air", ops.lives_active.clone());
        r.register("database_up", "1 when the last database round trip succeeded", ops.db_up.clone());
        r.register("database_ping_seconds", "The last database round trip", ops.db_ping.clone());
        r.register("database_connections", "The connection pool, by state", ops.db_connections.clone());
        r.register(
            "session_store_up",
            "1 when the last session-store round trip succeeded",
            ops.session_store_up.clone(),
        );
        r.register("session_store_ping_seconds", "The last session-store round trip", ops.session_store_ping.clone());
        r.register(
            "transcode_speed_ratio",
            "Seconds of video transcoded per second of work, per finished transcode (× realtime)",
            ops.transcode_speed.clone(),
        );
        ops
    }
}

/// The work in progress, as a role counted it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WorkCounts {
    /// Jobs waiting for a worker (due or not).
    pub jobs_queued: i64,
    /// Jobs a worker holds.
    pub jobs_running: i64,
    /// How long the oldest due, unclaimed job has waited, in seconds (0 when none waits).
    pub oldest_due_job_secs: f64,
    /// Uploads started and neither finished nor expired.
    pub uploads_active: i64,
    /// Lives on air.
    pub lives_active: i64,
}

/// Records the work in progress.
pub fn record_work(s: &WorkCounts) {
    let ops = &metrics().ops;
    ops.jobs.get_or_create(&JobStateLabels { state: "queued" }).set(s.jobs_queued);
    ops.jobs.get_or_create(&JobStateLabels { state: "running" }).set(s.jobs_running);
    ops.oldest_due_job.set(s.oldest_due_job_secs);
    ops.uploads_active.set(s.uploads_active);
    ops.lives_active.set(s.lives_active);
}

/// Records a database round trip (`None`: it failed) and the pool's connections.
pub fn record_database(ping: Option<std::time::Duration>, (open, idle): (u32, usize)) {
    let ops = &metrics().ops;
    ops.db_up.set(i64::from(ping.is_some()));
    if let Some(t) = ping {
        ops.db_ping.set(t.as_secs_f64());
    }
    let idle = i64::try_from(idle).unwrap_or(i64::MAX);
    ops.db_connections.get_or_create(&PoolStateLabels { state: "idle" }).set(idle);
    ops.db_connections.get_or_create(&PoolStateLabels { state: "busy" }).set((i64::from(open) - idle).max(0));
}

/// Records a session-store round trip (`None`: it failed).
pub fn record_session_store(ping: Option<std::time::Duration>) {
    let ops = &metrics().ops;
    ops.session_store_up.set(i64::from(ping.is_some()));
    if let Some(t) = ping {
        ops.session_store_ping.set(t.as_secs_f64());
    }
}

/// Records a finished transcode: `media_secs` of video in `wall` time.
pub fn transcode_finished(media_secs: f64, wall: std::time::Duration) {
    let wall = wall.as_secs_f64();
    if media_secs > 0.0 && wall > 0.0 {
        metrics().ops.transcode_speed.observe(media_secs / wall);
    }
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

/// The route group of `path` (`/`, `api`, `media`…, `other`): a span's name, of bounded variety.
pub fn route_group(path: &str) -> &'static str {
    ROUTE_GROUPS[route_index(path)]
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
    use prometheus_client::encoding::text::{encode_eof, encode_registry};
    let (m, mut text) = (metrics(), String::new());
    let encoded = encode_registry(&mut text, &m.registry)
        .and_then(|()| encode_registry(&mut text, &m.ops_registry))
        .and_then(|()| encode_eof(&mut text));
    if encoded.is_err() {
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

    #[tokio::test]
    async fn operational_figures_follow_the_metrics_of_the_requests() {
        record_work(&WorkCounts {
            jobs_queued: 3,
            jobs_running: 1,
            oldest_due_job_secs: 2.5,
            uploads_active: 4,
            lives_active: 1,
        });
        record_database(Some(std::time::Duration::from_millis(2)), (5, 3));
        record_session_store(None);
        transcode_finished(40.0, std::time::Duration::from_secs(10));
        let res = serve().await;
        let body = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        for line in [
            r#"turtlemen_jobs{state="queued"} 3"#,
            r#"turtlemen_jobs{state="running"} 1"#,
            "turtlemen_jobs_oldest_due_age_seconds 2.5",
            "turtlemen_uploads_active 4",
            "turtlemen_lives_active 1",
            "turtlemen_database_up 1",
            r#"turtlemen_database_connections{state="busy"} 2"#,
            "turtlemen_session_store_up 0",
            r#"turtlemen_transcode_speed_ratio_bucket{le="4.0"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        // One document: the request metrics first, one end-of-file marker last.
        assert!(text.contains("turtlemen_http_requests") || text.contains("turtlemen_http_gateway"));
        assert_eq!(text.matches("# EOF").count(), 1);
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
