//! Request metrics in the Prometheus text format, at `/metrics`.
//!
//! Every request is counted by route group, method and status class, and timed in a histogram
//! by route group. Route groups are the first path segment among a fixed list, so no client can
//! grow the number of series.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::OnceLock;
use std::time::Instant;

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

struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
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
        Metrics { registry, requests, duration }
    })
}

fn route_group(path: &str) -> &'static str {
    const GROUPS: &[&str] =
        &["api", "auth", "oauth2", "static", "media", "healthz", "readyz", "metrics", "watch", "upload"];
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if first.is_empty() {
        return "/";
    }
    GROUPS.iter().find(|g| **g == first).copied().unwrap_or("other")
}

fn method_label(m: &axum::http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: counts and times every request.
pub async fn record(req: Request, next: Next) -> Response {
    let route = route_group(req.uri().path());
    let method = method_label(req.method());
    let start = Instant::now();
    let res = next.run(req).await;
    let status = match res.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let m = metrics();
    m.requests.get_or_create(&RequestLabels { route, method, status }).inc();
    m.duration.get_or_create(&RouteLabels { route }).observe(start.elapsed().as_secs_f64());
    res
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
        assert_eq!(route_group("/"), "/");
        assert_eq!(route_group("/api/v1/me"), "api");
        assert_eq!(route_group("/anything-a-client-makes-up"), "other");
    }
}
