//! The middleware stack every role's router gets, outermost first:
//! request id (kept from a trusted upstream if well-formed, made otherwise) → tracing span and
//! access log → request id echoed on the response → security headers (CSP, nosniff, referrer
//! policy) → error rendering → panic catching → timeout (not for streaming uploads) → default
//! body limit.

use crate::error::{ApiError, ErrorBody};
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use std::borrow::Cow;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use turtlemen_config::HttpLimits;

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

/// Wraps a role's router in the foundation stack.
pub fn foundation(router: Router, limits: &HttpLimits, render: ErrorPageRenderer) -> Router {
    let mut router = router
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(limits.request_timeout, timeout_unless_streaming_upload))
        .layer(CatchPanicLayer::custom(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
        .layer(middleware::from_fn_with_state(render, render_errors));
    for (name, value) in SECURITY_HEADERS {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)));
    }
    router
        .layer(middleware::from_fn(crate::metrics::record))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", request.id = %id, http.method = %req.method(), url.path = %req.uri().path())
                })
                .on_request(())
                .on_response(|res: &Response, latency: Duration, _span: &tracing::Span| {
                    tracing::info!(http.status = res.status().as_u16(), duration_ms = latency.as_secs_f64() * 1000.0, "served");
                })
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(middleware::from_fn(sanitize_request_id))
}

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

/// Answers 408 when a request takes longer than `limit` to be answered — except streaming
/// uploads (see [`is_streaming_upload`]).
async fn timeout_unless_streaming_upload(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    if is_streaming_upload(&req) {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

/// Whether a request id a client sent is a short token, safe to log and echo.
pub fn is_valid_request_id(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= 64 && id.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Drops an incoming request id that is not a short token, so logs cannot be forged through it.
async fn sanitize_request_id(mut req: Request, next: Next) -> Response {
    if !req.headers().get(REQUEST_ID).is_some_and(|v| is_valid_request_id(v.as_bytes())) {
        req.headers_mut().remove(REQUEST_ID);
    }
    next.run(req).await
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

/// Gives every error response one shape: `{"error","message"}` for API clients, a page for
/// browsers. Errors made by axum's extractors or the layers (plain text) are rewritten; a
/// server error never shows its original body.
async fn render_errors(State(render): State<ErrorPageRenderer>, req: Request, next: Next) -> Response {
    let json = wants_json(&req);
    let request_id = req.extensions().get::<RequestId>().cloned();
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let error = match parts.extensions.remove::<ErrorBody>() {
        Some(e) => e,
        None => {
            let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            if content_type.starts_with("application/json") || content_type.starts_with("text/html") {
                // A handler wrote its own error body on purpose (e.g. an OAuth error response).
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
    if let Some(id) = request_id {
        parts.headers.insert(REQUEST_ID, id.header_value().clone());
    }
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
