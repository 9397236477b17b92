//! W3C Trace Context (`traceparent`): every request belongs to a trace. A valid incoming
//! `traceparent` is continued; otherwise a new trace starts. Each process that handles the
//! request is a span of the trace and hands itself on as the parent: the header is rewritten on
//! the request, which the gateway forwards to auth and API like any other header. The trace id
//! is a field of the request's tracing span, so it is in every log line of the request, beside
//! the request id.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The trace a request belongs to, and the span this process opens in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: u128,
    pub span_id: u64,
    /// The trace flags (bit 0: sampled), passed on unchanged.
    pub flags: u8,
}

impl TraceContext {
    /// Continues the trace of a valid `traceparent` in `headers` with a new span of this
    /// process, or starts a new trace; either way the request's header is set to name this
    /// process's span as the parent of what it calls.
    pub fn enter(headers: &mut HeaderMap) -> TraceContext {
        let parent = headers.get(&TRACEPARENT).and_then(|v| parse(v.as_bytes()));
        let (trace_id, flags) = parent.unwrap_or_else(|| (new_trace_id(), 0));
        let ctx = TraceContext { trace_id, span_id: nonzero(crate::layers::next_random()), flags };
        if let Ok(value) = HeaderValue::from_str(&ctx.header()) {
            headers.insert(TRACEPARENT, value);
        }
        ctx
    }

    /// The `traceparent` naming this span as the parent.
    pub fn header(&self) -> String {
        format!("00-{:032x}-{:016x}-{:02x}", self.trace_id, self.span_id, self.flags)
    }

    /// The trace id as 32 lower-case hex digits (how it is logged).
    pub fn trace_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

fn new_trace_id() -> u128 {
    let (hi, lo) = (crate::layers::next_random(), crate::layers::next_random());
    ((u128::from(hi) << 64) | u128::from(lo)).max(1)
}

fn nonzero(v: u64) -> u64 {
    v.max(1)
}

/// `(trace id, flags)` of a `traceparent` as the specification reads it: version 00 is exactly
/// 55 characters; a later version may be longer (its extra fields after a `-` are ignored);
/// version `ff`, upper-case hex, and all-zero ids are invalid.
pub fn parse(v: &[u8]) -> Option<(u128, u8)> {
    if v.len() < 55 || (v.len() > 55 && v[55] != b'-') {
        return None;
    }
    let field = |range: std::ops::Range<usize>| -> Option<u128> {
        let s = std::str::from_utf8(&v[range]).ok()?;
        if !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        u128::from_str_radix(s, 16).ok()
    };
    let version = field(0..2)?;
    if version == 0xff || (version == 0 && v.len() != 55) || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let trace_id = field(3..35)?;
    let parent_id = field(36..52)?;
    let flags = u8::try_from(field(53..55)?).ok()?;
    (trace_id != 0 && parent_id != 0).then_some((trace_id, flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_parent_is_continued_with_a_new_span() {
        let mut headers = HeaderMap::new();
        headers
            .insert(TRACEPARENT, HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        let ctx = TraceContext::enter(&mut headers);
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
        let a = TraceContext::enter(&mut headers);
        let b = TraceContext::enter(&mut HeaderMap::new());
        assert_ne!(a.trace_id, b.trace_id);
        assert_eq!(parse(headers[&TRACEPARENT].as_bytes()), Some((a.trace_id, 0)));
    }
}
