//! W3C Trace Context (`traceparent`): every request belongs to a trace. A valid incoming
//! `traceparent` is continued; otherwise a new trace starts. Each process that handles the
//! request is a span of the trace and hands itself on as the parent: the header is rewritten on
//! the request, which the gateway forwards to auth and API like any other header. The trace id
//! is a field of the request's tracing span, so it is in every log line of the request, beside
//! the request id. The request's work runs inside [`turtlemen_domain::trace::scope`], so a job it
//! enqueues records the trace and the worker continues it.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
pub use turtlemen_domain::trace::{TraceContext, parse};

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Continues the trace of a valid `traceparent` in `headers` with a new span of this process,
/// or starts a new trace; either way the request's header is set to name this process's span as
/// the parent of what it calls.
pub fn enter(headers: &mut HeaderMap) -> TraceContext {
    let ctx = TraceContext::continuing(headers.get(&TRACEPARENT).and_then(|v| parse(v.as_bytes())));
    if let Ok(value) = HeaderValue::from_str(&ctx.header()) {
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
        let ctx = enter(&mut headers);
        assert_eq!(ctx.trace_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.flags, 1);
        let passed_on = headers[&TRACEPARENT].to_str().unwrap().to_string();
        assert!(passed_on.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{passed_on}");
        assert!(!passed_on.contains("00f067aa0ba902b7"), "the parent is this process's span now");
        assert_eq!(parse(passed_on.as_bytes()), Some((ctx.trace_id, 1)));
    }

    #[test]
    fn an_invalid_parent_starts_a_new_trace() {
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad}");
        }
        // A later version with more fields is read for its first ones.
        assert!(parse(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-abc").is_some());
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, HeaderValue::from_static("garbage"));
        let a = enter(&mut headers);
        let b = enter(&mut HeaderMap::new());
        assert_ne!(a.trace_id, b.trace_id);
        assert_eq!(parse(headers[&TRACEPARENT].as_bytes()), Some((a.trace_id, 0)));
    }
}
