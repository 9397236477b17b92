//! W3C Trace Context (`traceparent`): every request belongs to a trace. A valid incoming
//! `traceparent` is continued; otherwise a new trace starts. Each process that handles the
//! request is a span of the trace and hands itself on as the parent: the header is rewritten on
//! the request, which the gateway forwards to auth and API like any other header. The trace id
//! is a field of the request's tracing span, so it is in every log line of the request, beside
//! the request id. A new trace is marked sampled where this process exports its spans. The request's work runs inside [`turtlemen_domain::trace::scope`], so a job it
//! enqueues records the trace and the worker continues it.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
pub use turtlemen_domain::trace::{Parent, TraceContext, parse};

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Continues the trace of a valid `traceparent` in `headers` with a new span of this process,
/// or starts a new trace; either way the request's header is set to name this process's span as
/// the parent of what it calls.
pub fn enter(headers: &mut HeaderMap, sampled: bool) -> TraceContext {
    let parent = headers.get(&TRACEPARENT).and_then(|v| parse(v.as_bytes()));
    let ctx = TraceContext::continuing_sampled(parent, sampled);
    if let Ok(value) = HeaderValue::from_bytes(&ctx.header_bytes()) {
        headers.insert(TRACEPARENT, value);
    }
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_parent_is_continued_with_a_new_span() {
        let mut headers = HeaderMap::new();
        headers
            .insert(TRACEPARENT, HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        let ctx = enter(&mut headers, false);
        assert_eq!(ctx.trace_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.flags, 1);
        let passed_on = headers[&TRACEPARENT].to_str().unwrap().to_string();
        assert!(passed_on.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{passed_on}");
        assert!(!passed_on.contains("00f067aa0ba902b7"), "the parent is this process's span now");
        assert_eq!(
            parse(passed_on.as_bytes()),
            Some(Parent { trace_id: ctx.trace_id, span_id: ctx.span_id, flags: 1 })
        );
    }

    #[test]
    fn an_invalid_parent_starts_a_new_trace() {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_static("garbage"));
        let a = enter(&mut headers, false);
        let b = enter(&mut HeaderMap::new(), false);
        assert_ne!(a.trace_id, b.trace_id);
        assert_eq!(parse(headers[&TRACEPARENT].as_bytes()).map(|p| (p.trace_id, p.flags)), Some((a.trace_id, 0)));
    }
}
