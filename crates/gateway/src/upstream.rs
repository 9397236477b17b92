//! Connections to one upstream address: kept-alive HTTP/1.1 connections taken from and given
//! back to an idle list, or one shared h2c connection.
//!
//! hyper's own connection halves are used directly (`hyper::client::conn`) instead of the
//! general-purpose client of hyper-util, which serves any URL: that client hashes the
//! authority into a shared pool map and spawns a task per response to watch the connection
//! become idle again. Here an address knows its connections, and a connection goes back to the
//! idle list when its response body is finished ([`PooledBody`]), with no task and no lookup;
//! only one that is still busy then (an upstream that answered before reading the whole
//! request body) is watched by a task until it is free or closed.
//!
//! A connection is ready before a request is handed to it: when none can be made (the address
//! refuses, or does not answer in time), the request comes back untouched, its body unread
//! ([`Unanswered::request`]), so the caller may send it to another address.

use crate::splice::Destination;
use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use turtlemen_http::tap::Tap;

/// Most idle connections kept per address.
const MAX_IDLE: usize = 256;
/// An idle connection older than this is closed rather than used. Shorter than the time our
/// own servers keep an idle kept-alive connection (`header_read_timeout_secs`, 10 s by
/// default): a connection taken as the upstream closes it would fail its request after the
/// request was written (502), which no retry may undo for a request with a body.
const IDLE_FOR: Duration = Duration::from_secs(4);

/// Why a request did not get a response head.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("connecting failed: {0}")]
    Connect(#[source] std::io::Error),
    #[error("connecting timed out")]
    ConnectTimeout,
    #[error(transparent)]
    Http(#[from] hyper::Error),
}

impl SendError {
    /// Whether no connection could be made (the address may be down).
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_) | Self::ConnectTimeout)
    }
}

/// A request that got no response head: why, and the request itself when none of it was
/// handed over (no connection was ready), so that it can go to another address as it is.
#[derive(Debug)]
pub struct Unanswered {
    pub error: SendError,
    pub request: Option<http::Request<Body>>,
}

impl Unanswered {
    fn sent(error: impl Into<SendError>) -> Self {
        Self { error: error.into(), request: None }
    }
}

/// A kept-alive HTTP/1.1 connection: hyper's half, and the socket under it.
struct Conn {
    sender: http1::SendRequest<Body>,
    tap: Tap,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// One upstream address and its connections.
pub struct Address {
    /// `host:port`, as given in the configuration.
    pub authority: http::uri::Authority,
    connect_timeout: Duration,
    http2: bool,
    idle: Mutex<Vec<Idle>>,
    shared: tokio::sync::Mutex<Option<http2::SendRequest<Body>>>,
}

impl Address {
    pub fn new(authority: http::uri::Authority, connect_timeout: Duration, http2: bool) -> Arc<Self> {
        Arc::new(Self {
            authority,
            connect_timeout,
            http2,
            idle: Mutex::new(Vec::new()),
            shared: tokio::sync::Mutex::new(None),
        })
    }

    async fn connect(&self) -> Result<TcpStream, SendError> {
        let addr = self.authority.as_str();
        let stream = match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(SendError::Connect(e)),
            Err(_) => return Err(SendError::ConnectTimeout),
        };
        // Requests are written whole; waiting to fill a segment only adds latency.
        stream.set_nodelay(true).map_err(SendError::Connect)?;
        Ok(stream)
    }

    /// Sends `req` (origin-form URI, `Host` set by the caller) and answers its response head.
    /// A [`Destination`] in its extensions is given the connection the request goes out on.
    /// The connection is made ready first: when that fails, the request is given back unsent
    /// with the error. A request that found a kept-alive connection closed before it was
    /// written is sent again on another one; once written, it is not (it may have had effects).
    pub async fn send(self: &Arc<Self>, req: http::Request<Body>) -> Result<http::Response<PooledBody>, Unanswered> {
        if self.http2 {
            return Box::pin(self.send_h2(req)).await;
        }
        let mut req = req;
        let splice_to = req.extensions().get::<Destination>().cloned();
        loop {
            let (mut conn, reused) = match self.take_idle() {
                Some(c) => (c, true),
                // Boxed, as the rarer ways below are: a request's future stays small, so it
                // is cheap to move (every await moves it).
                None => match Box::pin(self.handshake_h1()).await {
                    Ok(c) => (c, false),
                    Err(error) => return Err(Unanswered { error, request: Some(req) }),
                },
            };
            if let Some(to) = &splice_to {
                to.set(conn.tap.clone());
            }
            match conn.sender.try_send_request(req).await {
                Ok(res) => {
                    let lease = Lease { conn: Some(conn), address: self.clone() };
                    return Ok(res.map(|body| PooledBody { inner: body, lease: Some(lease) }));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(Unanswered::sent(e.into_error())),
                },
            }
        }
    }

    async fn handshake_h1(&self) -> Result<Conn, SendError> {
        let tap = Tap::client(self.connect().await?);
        let (mut sender, conn) = http1::Builder::new().handshake(TokioIo::new(tap.clone())).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        sender.ready().await?;
        Ok(Conn { sender, tap })
    }

    /// The most recently used idle connection that is ready (LIFO keeps few connections warm).
    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(Idle { conn, since }) = idle.pop() {
            if conn.sender.is_ready() && since.elapsed() < IDLE_FOR {
                return Some(conn);
            }
        }
        None
    }

    fn put_idle(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.first().is_some_and(|oldest| oldest.since.elapsed() >= IDLE_FOR) {
            idle.remove(0);
        }
        if idle.len() < MAX_IDLE {
            idle.push(Idle { conn, since: Instant::now() });
        }
    }

    /// Gives a connection whose exchange is over back to the idle list, at once when it is
    /// ready for the next request, else once it becomes ready (or is dropped if it closes).
    fn give_back(self: Arc<Self>, mut conn: Conn) {
        if conn.sender.is_ready() {
            self.put_idle(conn);
        } else if !conn.sender.is_closed() {
            tokio::spawn(async move {
                if let Ok(Ok(())) = tokio::time::timeout(IDLE_FOR, conn.sender.ready()).await {
                    self.put_idle(conn);
                }
            });
        }
    }

    async fn send_h2(&self, mut req: http::Request<Body>) -> Result<http::Response<PooledBody>, Unanswered> {
        let mut sender = match self.h2_sender().await {
            Ok(sender) => sender,
            Err(error) => return Err(Unanswered { error, request: Some(req) }),
        };
        *req.version_mut() = http::Version::HTTP_2;
        let res = sender.send_request(req).await.map_err(Unanswered::sent)?;
        Ok(res.map(|body| PooledBody { inner: body, lease: None }))
    }

    /// The shared h2c connection, made when there is none (or it closed), ready for a stream.
    async fn h2_sender(&self) -> Result<http2::SendRequest<Body>, SendError> {
        let mut sender = {
            let mut shared = self.shared.lock().await;
            match shared.as_ref().filter(|s| !s.is_closed()) {
                Some(s) => s.clone(),
                None => {
                    let io = TokioIo::new(self.connect().await?);
                    let (sender, conn) = http2::Builder::new(TokioExecutor::new()).handshake(io).await?;
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, "upstream h2 connection ended");
                        }
                    });
                    *shared = Some(sender.clone());
                    sender
                }
            }
        };
        sender.ready().await?;
        Ok(sender)
    }
}

/// A kept-alive connection lent to one exchange.
struct Lease {
    conn: Option<Conn>,
    address: Arc<Address>,
}

/// An upstream response body that gives its connection back once it has been read to the end.
/// Dropped before its end, the connection is dropped too (HTTP/1.1 cannot skip the rest).
pub struct PooledBody {
    inner: Incoming,
    lease: Option<Lease>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some(Lease { conn: Some(conn), address }) = self.lease.take() {
            address.give_back(conn);
        }
    }

    /// The HTTP/1.1 connection this body arrives on (none over HTTP/2). A body read past hyper
    /// through it leaves the connection unusable: it is closed when the body is dropped.
    pub fn tap(&self) -> Option<&Tap> {
        self.lease.as_ref().and_then(|l| l.conn.as_ref()).map(|c| &c.tap)
    }
}

impl hyper::body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.release();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        if hyper::body::Body::is_end_stream(&self.inner) {
            self.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A raw HTTP/1.1 server that counts its connections and answers every request "ok"; with
    /// `close_after`, it closes each connection after its first answer (without saying so).
    async fn counting_server(close_after: bool) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    loop {
                        let Ok(n) = s.read(&mut buf).await else { return };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
                            if close_after {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn get(addr: std::net::SocketAddr) -> http::Request<Body> {
        http::Request::builder().uri("/").header("host", addr.to_string()).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn a_finished_exchange_gives_its_connection_back_and_an_unfinished_one_does_not() {
        let (addr, accepted) = counting_server(false).await;
        let up = Address::new(addr.to_string().parse().unwrap(), Duration::from_secs(1), false);
        for _ in 0..5 {
            let res = up.send(get(addr)).await.unwrap();
            assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "ok");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "one kept-alive connection");
        // A response dropped unread closes its connection; the next request opens another.
        let _ = up.send(get(addr)).await.unwrap();
        let res = up.send(get(addr)).await.unwrap();
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "ok");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_idle_connection_the_upstream_closed_is_not_used() {
        let (addr, accepted) = counting_server(true).await;
        let up = Address::new(addr.to_string().parse().unwrap(), Duration::from_secs(1), false);
        for n in 1..=3 {
            let res = up.send(get(addr)).await.unwrap();
            assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "ok");
            assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), n);
            // The connection went back idle; wait until it has seen the upstream's close (the
            // race where it has not yet is a request failed after sending, as in any client).
            let closed = tokio::time::timeout(Duration::from_secs(5), async {
                while up.idle.lock().unwrap().iter().any(|c| !c.conn.sender.is_closed()) {
                    tokio::task::yield_now().await;
                }
            });
            assert!(closed.await.is_ok(), "the closed connection is noticed");
        }
    }

    #[tokio::test]
    async fn a_connection_idle_past_its_time_is_not_taken_as_the_upstream_closes_it() {
        // An upstream that keeps idle connections a little longer than the pool uses them, and
        // drops a connection whose next request comes later than that: the race of a request
        // written just as the server closes (no FIN seen yet, so the pool cannot tell).
        let keeps = IDLE_FOR + Duration::from_millis(500);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut buf, mut answered) = (vec![0u8; 4096], None::<Instant>);
                    while let Ok(n @ 1..) = s.read(&mut buf).await {
                        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            if answered.is_some_and(|at| at.elapsed() >= keeps) {
                                return;
                            }
                            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
                            answered = Some(Instant::now());
                        }
                    }
                });
            }
        });
        let up = Address::new(addr.to_string().parse().unwrap(), Duration::from_secs(1), false);
        let res = up.send(get(addr)).await.unwrap();
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "ok");
        tokio::time::sleep(keeps + Duration::from_millis(200)).await;
        let res = up.send(get(addr)).await.expect("sent on a new connection, not the stale one");
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "ok");
    }

    #[tokio::test]
    async fn a_request_with_a_body_comes_back_unread_when_no_connection_is_made() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = listener.local_addr().unwrap();
        drop(listener);
        let (live, accepted) = counting_server(false).await;
        for http2 in [false, true] {
            // A body that tells when it is first read.
            let read = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = read.clone();
            let body = Body::from_stream(futures::stream::once(async move {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, std::io::Error>(Bytes::from_static(b"a body"))
            }));
            let post = http::Request::post("/").header("host", closed.to_string()).body(body).unwrap();
            let down = Address::new(closed.to_string().parse().unwrap(), Duration::from_secs(1), http2);
            let failed = down.send(post).await.err().expect("nothing listens there");
            assert!(failed.error.is_connect(), "{failed:?}");
            assert!(!read.load(std::sync::atomic::Ordering::SeqCst), "the body was not touched");
            if !http2 {
                // Given back whole, it goes out on an address that answers.
                let up = Address::new(live.to_string().parse().unwrap(), Duration::from_secs(1), false);
                let res = up.send(failed.request.expect("given back")).await.unwrap();
                assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "ok");
                assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
            } else {
                assert!(failed.request.is_some(), "given back over h2c too");
            }
        }
    }
}
