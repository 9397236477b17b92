//! The edge every role's router gets: the [`Foundation`], which does, in this order, request id
//! (kept from the client if it is a short token, made otherwise) and W3C trace context
//! ([`crate::trace`]) → tracing span and access log → metrics → error rendering → panic
//! catching → timeout (not for streaming uploads), with the default body limit inside. Every
//! answer gets the security headers ([`SECURITY_HEADERS`], and `Strict-Transport-Security` over
//! https). One async function instead of a stack of tower layers: each layer cost a boxed
//! future, a service clone and a header pass per request. It wraps a router as one middleware
//! ([`foundation`], [`Foundation::wrap`]), or is called directly by a front that takes requests
//! before any router does ([`crate::server::App::Front`]: the gateway's proxied requests go
//! through no axum router at all).

use crate::error::{ApiError, ErrorBody};
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use http_body_util::BodyExt;
use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tracing::Instrument;
use turtlemen_config::HttpLimits;
use turtlemen_domain::trace::{Attribute, FinishedSpan, SpanKind, SpanSink};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The default Content-Security-Policy: everything from our own origin, no plugins, no framing
/// by other sites. `blob:` media for the HLS player (MSE). A handler may set its own.
pub const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
                       object-src 'none'; base-uri 'self'; frame-ancestors 'none'";

/// Headers every response carries unless its handler set its own.
pub const SECURITY_HEADERS: [(HeaderName, &str); 3] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
    (header::CONTENT_SECURITY_POLICY, CSP),
];

/// Renders an error as a full HTML page for a browser.
pub type ErrorPageRenderer = fn(StatusCode, &ErrorBody) -> String;

/// A bare page, for roles that have no templates.
pub fn plain_error_page(status: StatusCode, body: &ErrorBody) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>{} — Turtlemen</title><main><h1>{}</h1><p>{}</p><p><a href=\"/\">Home</a></p></main></html>",
        status.as_u16(),
        esc(status.canonical_reason().unwrap_or("Error")),
        esc(&body.message)
    )
}

/// The foundation, made once per listener: what it needs for every request. It wraps a router
/// ([`Self::wrap`], as an axum middleware) or is called directly around a handler
/// ([`Self::run`]) by a front that takes requests before any router ([`crate::server::App`]).
#[derive(Clone)]
pub struct Foundation {
    timeout: Duration,
    max_body_bytes: usize,
    render: ErrorPageRenderer,
    /// `Strict-Transport-Security`, for an instance reached over https.
    hsts: Option<HeaderValue>,
    /// Where each request's span goes when it is done, if this process exports its spans.
    spans: Option<Arc<dyn SpanSink>>,
}

/// Wraps a role's router in the foundation (see the module's documentation).
pub fn foundation(router: Router, limits: &HttpLimits, render: ErrorPageRenderer) -> Router {
    Foundation::new(limits, render, None, None).wrap(router)
}

impl Foundation {
    /// The foundation for `limits`, errors rendered as pages by `render`, every answer also
    /// carrying `Strict-Transport-Security: {hsts}` (for an instance reached over https; `None`
    /// sends none), each request's span handed to `spans` when it is done (and a trace that
    /// starts here marked sampled).
    pub fn new(
        limits: &HttpLimits,
        render: ErrorPageRenderer,
        hsts: Option<&str>,
        spans: Option<Arc<dyn SpanSink>>,
    ) -> Self {
        let hsts = hsts.and_then(|v| HeaderValue::from_str(v).ok());
        Self { timeout: limits.request_timeout, max_body_bytes: limits.max_body_bytes, render, hsts, spans }
    }

    /// `router` behind the foundation, with the default body limit inside.
    pub fn wrap(&self, router: Router) -> Router {
        router
            .layer(DefaultBodyLimit::max(self.max_body_bytes))
            .layer(middleware::from_fn_with_state(self.clone(), around))
    }

    /// The time [`Self::run`] gives `req`'s answer (until its head), if any: a streaming upload
    /// has none. A caller inside `run` that would set a limit no shorter need not set it: this
    /// one, started first, is reached first.
    pub fn limit_for(&self, req: &Request) -> Option<Duration> {
        (!is_streaming_upload(req)).then_some(self.timeout)
    }

    /// The default body limit, for a router called from inside [`Self::run`] (which sets none).
    pub fn body_limit(&self) -> DefaultBodyLimit {
        DefaultBodyLimit::max(self.max_body_bytes)
    }

    /// Runs `inner` on `req` inside the foundation. The request's id and trace context are set
    /// when this is called; the future returned does the rest.
    pub fn run<F, Fut>(&self, mut req: Request, inner: F) -> impl Future<Output = Response>
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = Response>,
    {
        let start = Instant::now();
        let id = match req.headers().get(REQUEST_ID) {
            Some(v) if is_valid_request_id(v.as_bytes()) => v.clone(),
            _ => {
                let id = new_request_id();
                req.headers_mut().insert(REQUEST_ID, id.clone());
                id
            }
        };
        let trace = crate::trace::enter(req.headers_mut(), self.spans.is_some());
        // What the exported span says of the request, taken only when spans are exported.
        let described = self.spans.as_ref().map(|_| {
            let request_id = id.to_str().unwrap_or("-").to_owned();
            (req.method().clone(), req.uri().path().to_owned(), request_id, SystemTime::now())
        });
        let span = tracing::info_span!(
            "request",
            request.id = id.to_str().unwrap_or("-"),
            trace.id = %format_args!("{:032x}", trace.trace_id),
            http.method = %req.method(),
            url.path = req.uri().path()
        );
        let json = wants_json(&req);
        let observed = crate::metrics::Observed::of(&req);
        let limit = self.limit_for(&req);
        // Each future is made where it is awaited, never bound first and moved: a future moved
        // into another keeps its first place in the enclosing one too, and `inner`'s is the
        // largest part of every request's (`benches/gateway_instructions.sh`).
        let work = async move {
            let outcome = match limit {
                None => AssertUnwindSafe(inner(req)).catch_unwind().await,
                Some(limit) => tokio::time::timeout(limit, AssertUnwindSafe(inner(req)).catch_unwind())
                    .await
                    .unwrap_or_else(|_| Ok(StatusCode::REQUEST_TIMEOUT.into_response())),
            };
            let res = outcome.unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
            let mut res = render_errors(res, json, &id, self.render).await;
            let headers = res.headers_mut();
            for (name, value) in SECURITY_HEADERS {
                if !headers.contains_key(&name) {
                    headers.insert(name, HeaderValue::from_static(value));
                }
            }
            if let Some(hsts) = &self.hsts {
                headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
            }
            headers.insert(REQUEST_ID, id);
            let status = res.status().as_u16();
            observed.done(status, start.elapsed());
            if let (Some(spans), Some((method, path, request_id, began))) = (&self.spans, described) {
                spans.finished(FinishedSpan {
                    context: trace,
                    name: format!("{method} {}", crate::metrics::route_group(&path)),
                    kind: SpanKind::Server,
                    start: began,
                    end: SystemTime::now(),
                    attributes: vec![
                        ("http.request.method", Attribute::Text(method.to_string())),
                        ("url.path", Attribute::Text(path)),
                        ("http.response.status_code", Attribute::Int(i64::from(status))),
                        ("http.request.id", Attribute::Text(request_id)),
                    ],
                    failed: status >= 500,
                });
            }
            tracing::info!(http.status = status, duration_ms = start.elapsed().as_secs_f64() * 1000.0, "served");
            res
        }
        .instrument(span);
        // Returned, not awaited here: an `async fn` would hold `work` twice, as its own local
        // and inside the scope it is moved into.
        turtlemen_domain::trace::scope(trace, work)
    }
}

/// [`Foundation::run`] as an axum middleware.
async fn around(State(f): State<Foundation>, req: Request, next: Next) -> Response {
    f.run(req, |req| next.run(req)).await
}

/// A new request id: UUID-shaped, unique in this process (a random start, then a counter
/// scrambled by a bijection) and made without a system call, unlike a random UUID each time.
pub fn new_request_id() -> HeaderValue {
    static HI: OnceLock<u64> = OnceLock::new();
    let hi = *HI.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let uuid = uuid::Builder::from_random_bytes(uuid::Uuid::from_u64_pair(hi, next_random()).into_bytes()).into_uuid();
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_bytes(uuid.hyphenated().encode_lower(&mut buf).as_bytes())
        .unwrap_or(HeaderValue::from_static("-"))
}

pub(crate) use turtlemen_domain::trace::next_random;

/// Whether a request streams an upload body of any size and length: a tus creation or chunk
/// (`POST /api/v1/uploads`, `PATCH /api/v1/uploads/{id}`). Such requests have no total time
/// limit; their handler ends a body that stays idle instead.
pub fn is_streaming_upload(req: &Request) -> bool {
    let path = req.uri().path();
    match *req.method() {
        axum::http::Method::POST => path == "/api/v1/uploads",
        axum::http::Method::PATCH => {
            path.strip_prefix("/api/v1/uploads/").is_some_and(|id| !id.is_empty() && !id.contains('/'))
        }
        _ => false,
    }
}

/// Whether a request id a client sent is a short token, safe to log and echo.
pub fn is_valid_request_id(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= 64 && id.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Whether the client should get JSON rather than a page.
fn wants_json(req: &Request) -> bool {
    let path = req.uri().path();
    if path.starts_with("/api/") || path == "/api" || path.starts_with("/oauth2/") || path.starts_with("/auth/api/") {
        return true;
    }
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.contains("application/json") && !accept.contains("text/html")
}

/// Whether [`foundation`] replaces the body of a response with this status and these headers
/// (and no [`ErrorBody`]) by its own error page, reading at most a short plain-text message
/// from it: an error whose body is neither JSON nor HTML. A proxy must not move such a body
/// past the foundation (the gateway's splice).
pub fn replaces_body(status: StatusCode, headers: &axum::http::HeaderMap) -> bool {
    if !(status.is_client_error() || status.is_server_error()) {
        return false;
    }
    // A handler that wrote JSON or HTML wrote its error body on purpose (e.g. an OAuth error).
    let content_type = headers.get(header::CONTENT_TYPE).map_or(&b""[..], |v| v.as_bytes());
    !(content_type.starts_with(b"application/json") || content_type.starts_with(b"text/html"))
}

/// The `Retry-After` of a 503 that names none, in seconds.
pub const RETRY_UNAVAILABLE_SECS: &str = "1";

/// Gives every error response one shape: `{"error","message"}` for API clients, a page for
/// browsers. Errors made by axum's extractors or the layers (plain text) are rewritten; a
/// server error never shows its original body.
async fn render_errors(res: Response, json: bool, request_id: &HeaderValue, render: ErrorPageRenderer) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    if status == StatusCode::SERVICE_UNAVAILABLE && !parts.headers.contains_key(header::RETRY_AFTER) {
        // Every 503 is a passing state (a database away, no upstream left): say when to retry.
        parts.headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_UNAVAILABLE_SECS));
    }
    let error = match parts.extensions.remove::<ErrorBody>() {
        Some(e) => e,
        None => {
            if !replaces_body(status, &parts.headers) {
                return Response::from_parts(parts, body);
            }
            let message: Cow<'static, str> = if status.is_client_error() {
                let text = read_short(body).await;
                if text.is_empty() {
                    Cow::Borrowed(status.canonical_reason().unwrap_or("Bad request"))
                } else {
                    Cow::Owned(text)
                }
            } else {
                Cow::Borrowed("Something went wrong on our side.")
            };
            ErrorBody { error: Cow::Borrowed(ApiError::code_for(status)), message }
        }
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of the body is never read: the connection cannot carry another request.
        parts.headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let (content_type, bytes) = if json {
        ("application/json", serde_json::to_vec(&error).unwrap_or_default())
    } else {
        ("text/html; charset=utf-8", render(status, &error).into_bytes())
    };
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    parts.headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    parts.headers.insert(REQUEST_ID, request_id.clone());
    Response::from_parts(parts, Body::from(bytes))
}

/// At most 512 bytes of a plain-text body, as a one-line message.
async fn read_short(body: Body) -> String {
    let limited = http_body_util::Limited::new(body, 4096);
    match limited.collect().await {
        Ok(c) => {
            let bytes = c.to_bytes();
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]);
            text.lines().next().unwrap_or("").trim().to_string()
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The foundation's future holds the handler's once: a future bound to a local and then
    /// moved into another (a timeout, a scope) keeps its first place as well, which doubled
    /// every request's future in the gateway.
    #[test]
    fn the_foundation_holds_the_handlers_future_once() {
        const HELD: usize = 16 * 1024;
        let limits = crate::test_limits();
        let foundation = Foundation::new(&limits, |_, _| String::new(), None, None);
        let handler = |_req: Request| async {
            let held = [7u8; HELD];
            tokio::task::yield_now().await;
            Response::new(Body::from(held.to_vec()))
        };
        let inner = std::mem::size_of_val(&handler(Request::new(Body::empty())));
        assert!(inner >= HELD, "{inner}");
        let whole = std::mem::size_of_val(&foundation.run(Request::new(Body::empty()), handler));
        assert!(whole < inner + 4096, "the foundation's future is {whole} bytes around a handler's of {inner}");
    }
}
