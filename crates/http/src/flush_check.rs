//! Whether this build's hyper writes out everything it queued before it flushes a connection,
//! and queues a message's head before it asks for the body: what the gateway's splice path
//! relies on to send body bytes past hyper right after hyper's own (see [`crate::tap`]).
//!
//! hyper does not promise either. So [`hyper_flush_is_pinned`] checks both once per process,
//! with hyper's own HTTP/1 server and client connections on a wire that takes a few bytes per
//! write and refuses every other write (as a full socket does). A body waits for the first flush
//! after hyper first asks for it, then looks at what hyper had written by then: exactly the head
//! passes. Anything else — more, less, or no flush at all within the time allowed — fails, and
//! the gateway copies bodies instead of splicing them. The unit test below fails on a hyper
//! upgrade that changes this, so the change is seen before it ships.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use hyper_util::rt::TokioIo;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Why the check failed.
#[derive(Debug, thiserror::Error)]
pub enum FlushCheckError {
    #[error("at the first flush after the body was asked for, hyper had written {0:?}, not exactly the head")]
    NotTheHead(String),
    #[error("hyper did not flush after asking for the body, or never finished the message")]
    TimedOut,
    #[error("hyper failed: {0}")]
    Hyper(#[from] hyper::Error),
    #[error("the probe request could not be made: {0}")]
    Request(#[from] http::Error),
    #[error("the check could not run: {0}")]
    Runtime(#[from] io::Error),
}

/// Whether splicing past hyper is safe with this build (checked once, then remembered). A
/// failure is logged once, as a warning.
pub fn hyper_flush_is_pinned() -> bool {
    static PINNED: OnceLock<bool> = OnceLock::new();
    *PINNED.get_or_init(|| {
        // Its own thread and runtime: this may be called from inside a runtime or outside one.
        let outcome = std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
            rt.block_on(check())
        })
        .join()
        .unwrap_or(Err(FlushCheckError::TimedOut));
        match outcome {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "hyper flushes differently than the splice path assumes; bodies are copied");
                false
            }
        }
    })
}

/// Runs the check on a server connection and on a client connection.
pub async fn check() -> Result<(), FlushCheckError> {
    let within = Duration::from_secs(5);
    tokio::time::timeout(within, server_side()).await.map_err(|_| FlushCheckError::TimedOut)??;
    tokio::time::timeout(within, client_side()).await.map_err(|_| FlushCheckError::TimedOut)??;
    Ok(())
}

const BODY: &[u8] = b"body";

/// hyper serves a request; the response body is the probe.
async fn server_side() -> Result<(), FlushCheckError> {
    let wire = Wire::new(b"GET / HTTP/1.1\r\nhost: probe\r\nconnection: close\r\n\r\n", |_| true);
    let seen = Seen::default();
    let service = {
        let (wire, seen) = (wire.clone(), seen.clone());
        hyper::service::service_fn(move |_req| {
            let body = Held::new(wire.clone(), seen.clone());
            let res = http::Response::builder().header(http::header::CONTENT_LENGTH, BODY.len()).body(body);
            async move { res }
        })
    };
    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(wire.clone()), service).await?;
    seen.verdict()
}

/// hyper sends a request whose body is the probe.
async fn client_side() -> Result<(), FlushCheckError> {
    // The answer comes once the whole request is written.
    let wire = Wire::new(b"HTTP/1.1 204 No Content\r\n\r\n", |written| written.ends_with(BODY));
    let seen = Seen::default();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(wire.clone())).await?;
    let driven = tokio::spawn(conn);
    let req = http::Request::post("/")
        .header(http::header::HOST, "probe")
        .header(http::header::CONTENT_LENGTH, BODY.len())
        .body(Held::new(wire, seen.clone()))?;
    let res = sender.send_request(req).await?;
    res.into_body().collect().await?;
    driven.abort();
    seen.verdict()
}

/// What the probe body saw: `None` until it looked.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Option<Result<(), FlushCheckError>>>>);

impl Seen {
    fn verdict(&self) -> Result<(), FlushCheckError> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or(Err(FlushCheckError::TimedOut))
    }
}

/// Whether `written` is one message head and nothing else.
fn is_one_head(written: &[u8]) -> bool {
    written.windows(4).position(|w| w == b"\r\n\r\n").is_some_and(|end| end + 4 == written.len())
}

/// A connection's other end, in memory.
#[derive(Clone)]
struct Wire(Arc<Mutex<WireState>>);

struct WireState {
    /// What the other end sends, once `may_read` says so.
    input: &'static [u8],
    read: usize,
    may_read: fn(&[u8]) -> bool,
    written: Vec<u8>,
    /// `written.len()` at each flush.
    flushes: Vec<usize>,
    writes: u64,
    read_waker: Option<Waker>,
    flush_waker: Option<Waker>,
}

impl Wire {
    fn new(input: &'static [u8], may_read: fn(&[u8]) -> bool) -> Self {
        Self(Arc::new(Mutex::new(WireState {
            input,
            read: 0,
            may_read,
            written: Vec::new(),
            flushes: Vec::new(),
            writes: 0,
            read_waker: None,
            flush_waker: None,
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, WireState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes up to 3 bytes of `bufs`, refusing every other call as a full socket would.
    fn write(&self, cx: &mut Context<'_>, bufs: &[&[u8]]) -> Poll<io::Result<usize>> {
        let mut s = self.state();
        s.writes += 1;
        if s.writes % 2 == 1 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let mut taken = 0;
        for buf in bufs {
            let n = buf.len().min(3 - taken);
            s.written.extend_from_slice(&buf[..n]);
            taken += n;
            if taken == 3 {
                break;
            }
        }
        if let Some(w) = s.read_waker.take() {
            w.wake();
        }
        Poll::Ready(Ok(taken))
    }
}

impl AsyncRead for Wire {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut s = self.state();
        if s.read < s.input.len() && (s.may_read)(&s.written) {
            let n = buf.remaining().min(s.input.len() - s.read);
            let from = s.read;
            buf.put_slice(&s.input[from..from + n]);
            s.read += n;
            return Poll::Ready(Ok(()));
        }
        // Nothing yet, or nothing more: the other end keeps the connection open.
        s.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncWrite for Wire {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.write(cx, &[buf])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let bufs: Vec<&[u8]> = bufs.iter().map(|b| &b[..]).collect();
        self.write(cx, &bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut s = self.state();
        let len = s.written.len();
        s.flushes.push(len);
        if let Some(w) = s.flush_waker.take() {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The probe: a body of [`BODY`] that, asked for, waits for hyper's next flush and records
/// whether what hyper had written by then is exactly the head.
struct Held {
    wire: Wire,
    seen: Seen,
    /// The number of flushes when hyper first asked.
    asked_at: Option<usize>,
    sent: bool,
}

impl Held {
    fn new(wire: Wire, seen: Seen) -> Self {
        Self { wire, seen, asked_at: None, sent: false }
    }
}

impl Body for Held {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.sent {
            return Poll::Ready(None);
        }
        let wire = self.wire.clone();
        let mut s = wire.state();
        let asked_at = *self.asked_at.get_or_insert(s.flushes.len());
        let Some(&at_flush) = s.flushes.get(asked_at) else {
            s.flush_waker = Some(cx.waker().clone());
            return Poll::Pending;
        };
        let head = &s.written[..at_flush];
        let verdict = if is_one_head(head) {
            Ok(())
        } else {
            Err(FlushCheckError::NotTheHead(String::from_utf8_lossy(head).into_owned()))
        };
        *self.seen.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(verdict);
        drop(s);
        self.sent = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(BODY)))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(if self.sent { 0 } else { BODY.len() as u64 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when a hyper upgrade changes how it flushes: read the module docs, then either
    /// adapt the splice path or accept that bodies are copied.
    #[tokio::test]
    async fn this_hyper_writes_the_head_out_before_it_flushes_and_before_the_body() {
        check().await.expect("hyper flushes as the splice path assumes");
        assert!(hyper_flush_is_pinned());
    }

    /// A flush that comes with body bytes already past the head (a hyper that wrote the body
    /// before flushing) fails the check.
    #[test]
    fn bytes_past_the_head_at_the_flush_fail() {
        let wire = Wire::new(b"", |_| true);
        let seen = Seen::default();
        let mut body = Held::new(wire.clone(), seen.clone());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut body).poll_frame(&mut cx).is_pending(), "waits for a flush");
        {
            let mut s = wire.state();
            s.written.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbo");
            let len = s.written.len();
            s.flushes.push(len);
        }
        assert!(matches!(Pin::new(&mut body).poll_frame(&mut cx), Poll::Ready(Some(Ok(_)))));
        assert!(matches!(seen.verdict(), Err(FlushCheckError::NotTheHead(_))));
        // Nothing seen at all is a failure too.
        assert!(matches!(Seen::default().verdict(), Err(FlushCheckError::TimedOut)));
    }

    #[test]
    fn only_a_whole_head_alone_passes() {
        assert!(is_one_head(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n"));
        assert!(!is_one_head(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n"));
        assert!(!is_one_head(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbo"));
        assert!(!is_one_head(b""));
    }
}
