//! W3C Trace Context: the trace a piece of work belongs to, and the span this process opens in
//! it. A request's trace arrives in its `traceparent` header (read and passed on by the HTTP
//! foundation); a job's trace was recorded with the job when it was enqueued. While work runs
//! inside [`scope`], [`current`] names its trace, so what it enqueues or calls carries the trace
//! on: gateway → services → jobs → the jobs those jobs enqueue. A process that exports its spans
//! (OTLP, behind config) hands each finished one to a [`SpanSink`]; this module knows no exporter.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// The trace a piece of work belongs to, and the span this process opens in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: u128,
    pub span_id: u64,
    /// The span this one continues (another process's, or the one that queued a job); 0 when
    /// this span started the trace.
    pub parent_id: u64,
    /// The trace flags (bit 0: sampled), passed on unchanged.
    pub flags: u8,
}

/// The length of a version-00 `traceparent`: `00-{32 hex}-{16 hex}-{2 hex}`.
pub const TRACEPARENT_LEN: usize = 55;

/// A `traceparent`'s fields, as [`parse`] reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: u128,
    pub span_id: u64,
    pub flags: u8,
}

impl TraceContext {
    /// A new span of this process in the trace of `parent`, or in a new trace (not marked
    /// sampled) when there is none.
    pub fn continuing(parent: Option<Parent>) -> TraceContext {
        TraceContext::continuing_sampled(parent, false)
    }

    /// [`TraceContext::continuing`], a new trace marked sampled when `sampled` (this process
    /// exports its spans).
    pub fn continuing_sampled(parent: Option<Parent>, sampled: bool) -> TraceContext {
        let span_id = next_random().max(1);
        match parent {
            Some(p) => TraceContext { trace_id: p.trace_id, span_id, parent_id: p.span_id, flags: p.flags },
            None => TraceContext { trace_id: new_trace_id(), span_id, parent_id: 0, flags: u8::from(sampled) },
        }
    }

    /// A new span of this process in the trace a stored `traceparent` names, or in a new trace
    /// when it is missing or malformed.
    pub fn continuing_header(traceparent: Option<&str>) -> TraceContext {
        TraceContext::continuing(traceparent.and_then(|v| parse(v.as_bytes())))
    }

    /// The `traceparent` naming this span as the parent.
    pub fn header(&self) -> String {
        self.header_bytes().iter().map(|&b| char::from(b)).collect()
    }

    /// [`Self::header`] as ASCII bytes, written without the formatting machinery: every request
    /// through the HTTP foundation writes one.
    pub fn header_bytes(&self) -> [u8; TRACEPARENT_LEN] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; TRACEPARENT_LEN];
        // Two digits per byte, most significant first: every request writes one.
        let mut put = |at: usize, bytes: &[u8]| {
            for (pair, byte) in out[at..at + 2 * bytes.len()].chunks_exact_mut(2).zip(bytes) {
                pair[0] = HEX[usize::from(byte >> 4)];
                pair[1] = HEX[usize::from(byte & 0xf)];
            }
        };
        put(0, &[0]);
        put(3, &self.trace_id.to_be_bytes());
        put(36, &self.span_id.to_be_bytes());
        put(53, &[self.flags]);
        out
    }

    /// The trace id as 32 lower-case hex digits (how it is logged).
    pub fn trace_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// Runs `work` as span `ctx`: [`current`] returns `ctx` inside it. Not an `async fn`, which
/// would hold `work` twice: as its argument and inside the scope it is moved into.
pub fn scope<F: Future>(ctx: TraceContext, work: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(ctx, work)
}

/// `work` to run in another task (`tokio::spawn`) as part of the running span: a task does not
/// inherit its spawner's [`scope`].
pub fn carried<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let ctx = current();
    async move {
        match ctx {
            Some(ctx) => scope(ctx, work).await,
            None => work.await,
        }
    }
}

/// The span the running work belongs to, if it runs inside [`scope`].
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|c| *c).ok()
}

/// The `traceparent` to record with what the running work starts (a job it enqueues), naming
/// the running span as its parent; `None` outside any [`scope`].
pub fn current_header() -> Option<String> {
    current().map(|c| c.header())
}

fn new_trace_id() -> u128 {
    ((u128::from(next_random()) << 64) | u128::from(next_random())).max(1)
}

/// A 64-bit value unique in this process and unpredictable across processes (a random start,
/// then a counter scrambled by a bijection), made without a system call: request ids and trace
/// span ids.
pub fn next_random() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let lo = *SEED.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().1);
    // SplitMix64's finaliser: a bijection on u64, so distinct counters give distinct values.
    let mut z = lo.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A `traceparent` as the specification reads it: version 00 is exactly 55 characters; a later
/// version may be longer (its extra fields after a `-` are ignored); version `ff`, upper-case
/// hex, and all-zero ids are invalid.
pub fn parse(v: &[u8]) -> Option<Parent> {
    if v.len() < 55 || (v.len() > 55 && v[55] != b'-') {
        return None;
    }
    // Lower-case hex digits, read in one pass: every request through the HTTP foundation
    // behind a gateway carries one.
    let field = |range: std::ops::Range<usize>| -> Option<u128> {
        v[range].iter().try_fold(0u128, |n, &b| {
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                _ => return None,
            };
            Some(n << 4 | u128::from(digit))
        })
    };
    let version = field(0..2)?;
    if version == 0xff || (version == 0 && v.len() != 55) || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let trace_id = field(3..35)?;
    let span_id = u64::try_from(field(36..52)?).ok()?;
    let flags = u8::try_from(field(53..55)?).ok()?;
    (trace_id != 0 && span_id != 0).then_some(Parent { trace_id, span_id, flags })
}

/// What a span was: a request this process served, or a job it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Server,
    Consumer,
}

/// A finished span of this process, for a [`SpanSink`].
#[derive(Debug, Clone)]
pub struct FinishedSpan {
    pub context: TraceContext,
    pub name: String,
    pub kind: SpanKind,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(&'static str, Attribute)>,
    /// The work failed (a 5xx, a job that did not succeed).
    pub failed: bool,
}

/// A span attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribute {
    Text(String),
    Int(i64),
}

/// Where finished spans go (an exporter); called on the path that finished them, so it must
/// only queue.
pub trait SpanSink: Send + Sync + std::fmt::Debug {
    fn finished(&self, span: FinishedSpan);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_the_w3c_layout() {
        for (trace_id, span_id, flags) in [
            (1, 1, 0),
            (u128::MAX, u64::MAX, 0xff),
            (0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736, 0x00f0_67aa_0ba9_02b7, 1),
        ] {
            let ctx = TraceContext { trace_id, span_id, parent_id: 0, flags };
            assert_eq!(ctx.header(), format!("00-{trace_id:032x}-{span_id:016x}-{flags:02x}"));
            assert_eq!(parse(&ctx.header_bytes()), Some(Parent { trace_id, span_id, flags }));
        }
    }

    #[test]
    fn malformed_parents_are_refused() {
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
    }

    #[test]
    fn a_stored_parent_is_continued_with_a_new_span_and_a_bad_one_starts_a_trace() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = TraceContext::continuing_header(Some(parent));
        assert_eq!(ctx.trace_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!((ctx.flags, ctx.parent_id), (1, 0x00f0_67aa_0ba9_02b7));
        assert_ne!(ctx.span_id, 0x00f0_67aa_0ba9_02b7);
        assert_eq!(
            parse(ctx.header().as_bytes()),
            Some(Parent { trace_id: ctx.trace_id, span_id: ctx.span_id, flags: 1 })
        );
        let fresh = TraceContext::continuing_header(Some("garbage"));
        assert_ne!(fresh.trace_id, ctx.trace_id);
        assert_ne!(fresh.trace_id, TraceContext::continuing_header(None).trace_id);
        assert_eq!((fresh.parent_id, fresh.flags), (0, 0), "a new trace has no parent");
        assert_eq!(TraceContext::continuing_sampled(None, true).flags, 1, "and is sampled where spans are recorded");
    }

    #[tokio::test]
    async fn work_in_a_scope_names_its_span_and_nothing_outside_does() {
        assert_eq!(current(), None);
        let ctx = TraceContext::continuing(None);
        let inside = scope(ctx, async { (current(), current_header()) }).await;
        assert_eq!(inside, (Some(ctx), Some(ctx.header())));
        assert_eq!(current_header(), None);
        let spawned = scope(ctx, async { tokio::spawn(carried(async { current() })).await.unwrap() }).await;
        assert_eq!(spawned, Some(ctx), "a carried task belongs to its spawner's span");
        let bare = scope(ctx, async { tokio::spawn(async { current() }).await.unwrap() }).await;
        assert_eq!(bare, None);
    }
}
