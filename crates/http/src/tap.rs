//! A plain TCP connection that hyper reads and writes, and that a handler can also reach past
//! hyper, to move a large body from one socket to another with `splice(2)` instead of copying
//! it through user space (see the gateway's `splice` module).
//!
//! hyper owns the connection it serves (or, as a client, the one it sends on), so a [`Tap`]
//! shares the socket between hyper and the handler and lets the handler steer hyper around the
//! bytes it moves itself:
//! - [`Tap::stop_reads`]: hyper's reads wait from now on, and [`Tap::poll_read_blocked`] tells
//!   when hyper has asked for more, so that every byte it had read is known to have been handed
//!   on;
//! - [`Tap::flushes`] and [`Tap::poll_flushed_since`]: ready once hyper has flushed since a
//!   given moment, so everything it had queued by then — a response head above all — is on the
//!   socket and bytes sent past it land after its own;
//! - [`Tap::discard`]: the next bytes of [`FILLER`] that hyper writes are dropped, standing for
//!   bytes that were sent past it, so hyper's own count of the body still comes out right. Only
//!   filler is ever dropped: a count that filler never comes to use up costs no real byte;
//! - [`HeadGate`]: opened by the server when it hands a response to hyper, so a body read by
//!   anything before that (a layer rendering an error) is never moved past hyper.
//!
//! A tap on a connection this process opened to a server ([`Tap::client`]) takes a write that
//! the server refused by closing its end as written: hyper then still reads the answer the
//! server sent before closing (an early 401 to a large upload) instead of failing on the write,
//! and fails on that read if no answer came.
//!
//! Left alone, a tap reads and writes as tokio's own stream does, including its saving on
//! edge-triggered readiness: a read or a (single-buffer) write that moved fewer bytes than asked
//! (and more than none) means the socket is drained or full, so the next attempt waits for
//! readiness instead of making a system call that would only find nothing ([`transfer`]).

use futures::task::AtomicWaker;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// What hyper is given to write for bytes sent past it: [`Tap::discard`] drops these bytes,
/// and only these (a write is known to be filler by where its bytes lie).
pub static FILLER: [u8; 256 * 1024] = [0; 256 * 1024];

/// Whether `buf` is a piece of [`FILLER`].
fn is_filler(buf: &[u8]) -> bool {
    FILLER.as_ptr_range().contains(&buf.as_ptr()) && !buf.is_empty()
}

struct Shared {
    stream: TcpStream,
    reads_stopped: AtomicBool,
    read_blocked: AtomicBool,
    read_waker: AtomicWaker,
    /// How many times hyper has flushed (only hyper's connection task flushes).
    flushes: AtomicU64,
    /// Whether a [`Tap::poll_flushed_since`] waits for the next flush.
    flush_wanted: AtomicBool,
    flush_waker: AtomicWaker,
    discard: AtomicU64,
    /// A connection to a server: writes it refused count as written (see the module docs).
    client: bool,
    /// An error was answered to a request whose body may not have been read.
    linger: AtomicBool,
}

/// Opened once a response is in hyper's hands (see the module docs); shared by clones.
#[derive(Clone, Debug, Default)]
pub struct HeadGate(Arc<AtomicBool>);

impl HeadGate {
    /// hyper has the response: it writes the head before it asks for the body.
    pub fn open(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_open(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A TCP connection shared by hyper (as its IO) and a handler (through a clone).
#[derive(Clone)]
pub struct Tap(Arc<Shared>);

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Tap").field(&self.0.stream).finish()
    }
}

impl Tap {
    /// A connection a server accepted.
    pub fn new(stream: TcpStream) -> Self {
        Self::with(stream, false)
    }

    /// A connection this process opened to a server (see the module docs).
    pub fn client(stream: TcpStream) -> Self {
        Self::with(stream, true)
    }

    fn with(stream: TcpStream, client: bool) -> Self {
        Self(Arc::new(Shared {
            stream,
            reads_stopped: AtomicBool::new(false),
            read_blocked: AtomicBool::new(false),
            read_waker: AtomicWaker::new(),
            flushes: AtomicU64::new(0),
            flush_wanted: AtomicBool::new(false),
            flush_waker: AtomicWaker::new(),
            discard: AtomicU64::new(0),
            client,
            linger: AtomicBool::new(false),
        }))
    }

    /// An error was answered to a request with a body: when the connection ends, the client
    /// may still be sending it ([`crate::linger`]).
    pub fn linger_on_close(&self) {
        self.0.linger.store(true, Ordering::Relaxed);
    }

    /// A new request came: the one before had its body read.
    pub fn clear_linger(&self) {
        if self.lingers() {
            self.0.linger.store(false, Ordering::Relaxed);
        }
    }

    /// Whether [`Self::linger_on_close`] was called (since the last request began).
    pub fn lingers(&self) -> bool {
        self.0.linger.load(Ordering::Relaxed)
    }

    /// Whether this is the last handle on the connection (hyper and every handler are done).
    pub fn is_sole(&self) -> bool {
        Arc::strong_count(&self.0) == 1
    }

    /// The socket, for readiness and `splice(2)`.
    pub fn stream(&self) -> &TcpStream {
        &self.0.stream
    }

    /// From now on, hyper's reads wait for ever (the connection is not read by hyper again).
    pub fn stop_reads(&self) {
        self.0.reads_stopped.store(true, Ordering::Release);
    }

    /// Ready once hyper has tried to read since [`Self::stop_reads`]: it has handed on
    /// everything it had read. Until then, `cx` is woken when it tries.
    pub fn poll_read_blocked(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.read_waker.register(cx.waker());
        if self.0.read_blocked.load(Ordering::Acquire) { Poll::Ready(()) } else { Poll::Pending }
    }

    /// How many times hyper has flushed so far.
    pub fn flushes(&self) -> u64 {
        self.0.flushes.load(Ordering::SeqCst)
    }

    /// Ready once hyper has flushed since [`Self::flushes`] said `seen`: everything it had queued
    /// by then is on the socket. Until then, `cx` is woken when it flushes.
    pub fn poll_flushed_since(&self, seen: u64, cx: &mut Context<'_>) -> Poll<()> {
        self.0.flush_waker.register(cx.waker());
        self.0.flush_wanted.store(true, Ordering::SeqCst);
        if self.0.flushes.load(Ordering::SeqCst) > seen { Poll::Ready(()) } else { Poll::Pending }
    }

    /// The next `n` bytes of [`FILLER`] hyper writes are dropped instead of sent.
    pub fn discard(&self, n: u64) {
        self.0.discard.fetch_add(n, Ordering::AcqRel);
    }

    /// Whether some filler is to be dropped (one load per write when not).
    fn discarding(&self) -> bool {
        self.0.discard.load(Ordering::Acquire) > 0
    }

    /// Takes up to `len` bytes of a filler write from the discard count; how many, if any.
    fn discarded(&self, len: usize) -> Option<usize> {
        let pending = self.0.discard.load(Ordering::Acquire);
        if pending == 0 || len == 0 {
            return None;
        }
        let n = usize::try_from(pending).unwrap_or(usize::MAX).min(len);
        self.0.discard.fetch_sub(n as u64, Ordering::AcqRel);
        Some(n)
    }

    /// A write's outcome, with a server's refusal taken as `len` bytes written on a client tap.
    fn refused_as_written(&self, done: io::Result<usize>, len: usize) -> io::Result<usize> {
        match done {
            Err(e) if self.0.client && is_refusal(&e) => Ok(len),
            done => done,
        }
    }

    fn flushed(&self) {
        // Only hyper's connection task flushes, so a load and a store count without a race.
        self.0.flushes.store(self.0.flushes.load(Ordering::Relaxed) + 1, Ordering::SeqCst);
        if self.0.flush_wanted.load(Ordering::SeqCst) {
            self.0.flush_wanted.store(false, Ordering::Relaxed);
            self.0.flush_waker.wake();
        }
    }
}

impl AsyncRead for Tap {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let shared = &self.0;
        if shared.reads_stopped.load(Ordering::Acquire) {
            shared.read_blocked.store(true, Ordering::Release);
            shared.read_waker.wake();
            return Poll::Pending;
        }
        loop {
            ready!(shared.stream.poll_read_ready(cx))?;
            let asked = buf.remaining();
            match transfer(&shared.stream, Interest::READABLE, asked, || shared.stream.try_read_buf(buf)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
                Ok(_) => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl AsyncWrite for Tap {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.discarding()
            && is_filler(buf)
            && let Some(n) = self.discarded(buf.len())
        {
            return Poll::Ready(Ok(n));
        }
        loop {
            ready!(self.0.stream.poll_write_ready(cx))?;
            match transfer(&self.0.stream, Interest::WRITABLE, buf.len(), || self.0.stream.try_write(buf)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                done => return Poll::Ready(self.refused_as_written(done, buf.len())),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut bufs = bufs;
        if self.discarding() {
            // Filler first in line is dropped; real bytes before filler are written up to it.
            let first = bufs.iter().position(|b| !b.is_empty()).unwrap_or(bufs.len());
            if bufs.get(first).is_some_and(|b| is_filler(b)) {
                if let Some(n) = self.discarded(bufs[first].len()) {
                    return Poll::Ready(Ok(n));
                }
            } else if let Some(filler) = bufs.iter().position(|b| is_filler(b)) {
                bufs = &bufs[..filler];
            }
        }
        loop {
            ready!(self.0.stream.poll_write_ready(cx))?;
            // Not cleared on a short write, as tokio does not either: `writev` takes at most
            // `IOV_MAX` slices, so writing fewer bytes than given does not prove the socket full.
            match self.0.stream.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                done => return Poll::Ready(self.refused_as_written(done, bufs.iter().map(|b| b.len()).sum())),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // hyper flushes its IO only once its own queue is written out.
        self.flushed();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        match rustix::net::shutdown(&self.0.stream, rustix::net::Shutdown::Write) {
            Err(rustix::io::Errno::NOTCONN) => Poll::Ready(Ok(())),
            done => Poll::Ready(done.map_err(io::Error::from)),
        }
    }
}

/// Whether a write failed because the peer closed its end.
pub fn is_refusal(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset)
}

/// Runs `op`, one read or write of up to `asked` bytes on `stream`, under the readiness tokio
/// knew of before it. When `op` moves some bytes but fewer than asked, that readiness is
/// cleared, as tokio's own `TcpStream` does: readiness is edge-triggered, so a short transfer
/// means the socket has nothing more to read (or no more room) until the next event, and the
/// caller's next attempt waits for that event instead of a system call finding `EAGAIN`. An
/// event that came in since is not lost: tokio clears only the readiness it had seen.
fn transfer(
    stream: &TcpStream,
    interest: Interest,
    asked: usize,
    op: impl FnOnce() -> io::Result<usize>,
) -> io::Result<usize> {
    let mut moved = None;
    let outcome = stream.try_io(interest, || {
        let n = op()?;
        moved = Some(n);
        // `WouldBlock` is how `try_io` is told to clear; the bytes moved are returned below.
        if n > 0 && n < asked { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(()) }
    });
    match moved {
        Some(n) => Ok(n),
        None => outcome.map(|()| 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair() -> (Tap, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (Tap::new(accepted.unwrap().0), client.unwrap())
    }

    #[tokio::test]
    async fn passes_bytes_both_ways_and_drops_the_discarded_ones() {
        let (mut tap, mut peer) = pair().await;
        peer.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        tap.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        tap.discard(3);
        tap.write_all(&FILLER[..3]).await.unwrap();
        tap.write_all(b"pong").await.unwrap();
        tap.shutdown().await.unwrap();
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"pong");
    }

    #[tokio::test]
    async fn only_filler_is_discarded() {
        let (mut tap, mut peer) = pair().await;
        tap.discard(5);
        // Real bytes are sent while a discard is pending, in plain and vectored writes alike.
        tap.write_all(b"head").await.unwrap();
        let vectored = [io::IoSlice::new(b"more"), io::IoSlice::new(&FILLER[..2])];
        let n = tap.write_vectored(&vectored).await.unwrap();
        assert_eq!(n, 4, "real bytes before filler go out alone");
        assert_eq!(tap.write_vectored(&vectored[1..]).await.unwrap(), 2, "then the filler is dropped");
        tap.write_all(&FILLER[..3]).await.unwrap();
        // The count is used up: filler now goes out as any byte would.
        tap.write_all(&FILLER[..1]).await.unwrap();
        tap.shutdown().await.unwrap();
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"headmore\0");
    }

    #[tokio::test]
    async fn stopped_reads_wait_and_say_so() {
        let (mut tap, mut peer) = pair().await;
        peer.write_all(b"data").await.unwrap();
        let watcher = tap.clone();
        assert!(poll_fn(|cx| Poll::Ready(watcher.poll_read_blocked(cx).is_pending())).await);
        tap.stop_reads();
        let mut storage = [0u8; 4];
        let read = poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut storage);
            Poll::Ready(Pin::new(&mut tap).poll_read(cx, &mut buf).is_pending())
        });
        assert!(read.await, "a stopped read waits, with the data there");
        assert!(poll_fn(|cx| Poll::Ready(watcher.poll_read_blocked(cx).is_ready())).await);
        // The bytes are still on the socket for whoever reads past hyper.
        let mut direct = [0u8; 4];
        watcher.stream().readable().await.unwrap();
        assert_eq!(watcher.stream().try_read(&mut direct).unwrap(), 4);
    }

    #[tokio::test]
    async fn a_short_read_waits_for_the_next_event_and_is_woken_by_it() {
        let (mut tap, mut peer) = pair().await;
        peer.write_all(b"abc").await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(tap.read(&mut buf).await.unwrap(), 3);
        // The short read cleared readiness: the socket is not tried again to find nothing.
        let mut tried = false;
        let _ = tap.stream().try_io(Interest::READABLE, || {
            tried = true;
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
        assert!(!tried, "no read is attempted after a short one");
        // The next read waits (its waker registered), and bytes that come later wake it.
        let mut next = std::pin::pin!(tap.read(&mut buf));
        assert!(futures::poll!(next.as_mut()).is_pending());
        peer.write_all(b"defg").await.unwrap();
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), next).await.expect("woken").unwrap();
        assert_eq!(&buf[..n], b"defg");
    }

    #[tokio::test]
    async fn flushed_is_ready_after_a_flush_since_the_moment_given() {
        let (mut tap, _peer) = pair().await;
        let watcher = tap.clone();
        tap.flush().await.unwrap();
        // A flush before the moment does not count.
        let seen = watcher.flushes();
        assert!(poll_fn(|cx| Poll::Ready(watcher.poll_flushed_since(seen, cx).is_pending())).await);
        assert!(poll_fn(|cx| Poll::Ready(watcher.poll_flushed_since(seen, cx).is_pending())).await);
        tap.flush().await.unwrap();
        poll_fn(|cx| watcher.poll_flushed_since(seen, cx)).await;
        let seen = watcher.flushes();
        assert!(
            poll_fn(|cx| Poll::Ready(watcher.poll_flushed_since(seen, cx).is_pending())).await,
            "one flush, one wait"
        );
    }
}
