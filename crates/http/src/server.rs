//! The accept loop: HTTP/1.1 and HTTP/2 (h2c) on one listener — or, given a certificate,
//! HTTPS only (TLS with ALPN `h2`/`http/1.1`, see [`crate::tls`]) — with limits hyper enforces
//! before any handler runs (request-head size → 431, header read time → connection closed; the
//! TLS handshake gets the same time) and a graceful shutdown that stops accepting, lets
//! in-flight requests finish, and gives up after the configured bound.
//!
//! No connection is held long without a request, whatever it sends: a connection on which no
//! request has come yet, or an HTTP/2 one with none in progress, is shut down gracefully once it
//! has been so for the header read time ([`crate::idle`]: hyper's protocol detection and its
//! HTTP/2 side have no such timer), and hyper's own header read timer runs between requests on a
//! kept-alive HTTP/1.1 connection. Over TLS the protocol is the one ALPN agreed. HTTP/2 peers
//! that vanish are found by pings. At most `max_connections` are open at once: at the cap, the
//! connection with no request in progress for the longest is asked to close, as nginx does
//! ([`crate::idle::Open`]), and dropped if it still has none a moment later (a request head
//! trickling in, a TLS handshake); when every one is busy, accepting waits until one ends or turns idle
//! (the kernel's listen queue holds the newcomers). A plain
//! connection that hyper ends while the client is still sending is closed lingering
//! ([`crate::linger`]). A plain-HTTP request on
//! the TLS port gets a short 400 and the connection is closed. Given a
//! [`FileResponder`], plain connections go through [`files`] first (file answers with
//! `sendfile(2)`), then to hyper. A plain connection is a [`Tap`] that each of its requests
//! carries in its extensions, so that a handler may move a large body past hyper.

use crate::error::ApiError;
use crate::files::{self, FileResponder};
use crate::tap::{HeadGate, Tap};
use crate::tls::ReloadingTls;
use crate::{idle, linger};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;
use turtlemen_config::HttpLimits;

/// The size of hyper's HTTP/1 read buffer at most. It bounds a request head too, but it also
/// sizes the pieces a body is read in: at 16 KiB a streamed upload crawled through the gateway
/// at under half the upstream's speed. So heads are held to `max_header_bytes` by [`head_size`]
/// after parsing, and only a head past this buffer is refused by hyper itself.
pub(crate) const READ_BUFFER: usize = 256 * 1024;

/// How often an HTTP/2 connection is pinged, and how long the answer may take before the
/// connection is closed: a peer that went away without a word is found within a minute.
const H2_PING_INTERVAL: Duration = Duration::from_secs(40);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// About how many bytes a request head took on the wire (request line and header lines).
fn head_size<B>(req: &hyper::Request<B>) -> usize {
    let uri = req.uri();
    let target =
        uri.path_and_query().map_or(1, |pq| pq.as_str().len()) + uri.authority().map_or(0, |a| a.as_str().len());
    let line = req.method().as_str().len() + target + 12;
    line + req.headers().iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum::<usize>()
}

/// Why a request does not name exactly one authority (host and port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityFault {
    /// An HTTP/1.1 request without `Host` (RFC 9112 §3.2).
    #[error("The request has no Host header.")]
    MissingHost,
    /// More than one `Host` header (RFC 9112 §3.2).
    #[error("The request has more than one Host header.")]
    DuplicateHost,
    /// The request target's authority (absolute form, or HTTP/2's `:authority`) is not the
    /// `Host` header's.
    #[error("The request target's host is not the Host header's.")]
    Conflicting,
    /// An authority that is not a host and an optional port: user information (`a@b`), a
    /// list, spaces (RFC 9110 §4.2.4, §7.2), which one reader could take for another host.
    #[error("The request's host is not a host name or address with an optional port.")]
    Malformed,
}

impl AuthorityFault {
    /// The `error` code of the 400 answer.
    pub fn code(self) -> &'static str {
        match self {
            Self::MissingHost => "missing_host",
            Self::DuplicateHost => "duplicate_host",
            Self::Conflicting => "conflicting_host",
            Self::Malformed => "malformed_host",
        }
    }
}

/// One authority per request: an HTTP/1.1 request has exactly one `Host`; a request whose
/// target carries an authority (absolute form, or HTTP/2's `:authority`) has no other `Host`.
/// So whatever picks a route by the target and whatever forwards the `Host` agree. HTTP/2
/// requests may leave `host` out, HTTP/1.0 ones too.
pub fn authority_fault<B>(req: &http::Request<B>) -> Option<AuthorityFault> {
    let mut hosts = req.headers().get_all(http::header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Some(AuthorityFault::DuplicateHost);
    }
    // Only a host (name, IPv4, or IPv6 in brackets) and an optional port: no `@`, `,`, spaces
    // or anything else a second parser could read as another host.
    let plain =
        |v: &[u8]| v.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']'));
    if host.is_some_and(|h| !plain(h.as_bytes()))
        || req.uri().authority().is_some_and(|a| !plain(a.as_str().as_bytes()))
    {
        return Some(AuthorityFault::Malformed);
    }
    match (host, req.uri().authority()) {
        (Some(host), Some(target)) if !host.as_bytes().eq_ignore_ascii_case(target.as_str().as_bytes()) => {
            Some(AuthorityFault::Conflicting)
        }
        (None, _) if req.version() == http::Version::HTTP_11 => Some(AuthorityFault::MissingHost),
        _ => None,
    }
}

/// What a listener serves.
#[derive(Clone)]
pub enum App {
    /// Every request goes to this router.
    Router(Router),
    /// The requests `front` [`takes`](Front::takes) go to it without any router; the rest go to
    /// `rest`. The gateway is such a front: a proxied request then costs no axum routing, no
    /// middleware stack and no boxed service clones.
    Front { front: Arc<dyn Front>, rest: Router },
}

impl From<Router> for App {
    fn from(router: Router) -> Self {
        Self::Router(router)
    }
}

/// A handler called before any router, for the requests it takes. It applies the foundation
/// itself ([`crate::layers::Foundation::run`]).
pub trait Front: Send + Sync + 'static {
    /// Whether this front answers `req` (otherwise the listener's router does).
    fn takes(&self, req: &axum::extract::Request) -> bool;
    /// The answer to `req`.
    fn call(self: Arc<Self>, req: axum::extract::Request) -> FrontFuture;
}

/// What [`Front::call`] returns.
pub type FrontFuture = std::pin::Pin<Box<dyn Future<Output = axum::response::Response> + Send>>;

impl App {
    async fn call(&self, req: hyper::Request<Incoming>) -> axum::response::Response {
        let req = req.map(Body::new);
        let router = match self {
            Self::Router(router) => router,
            Self::Front { front, .. } if front.takes(&req) => return front.clone().call(req).await,
            Self::Front { rest, .. } => rest,
        };
        match router.clone().oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        }
    }
}

/// At the connection cap, how often the server looks again for an idle connection to close
/// while every open one is busy.
const MAKE_ROOM_EVERY: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `shutdown` resolves, then drains connections for at most
/// `limits.shutdown_timeout`. The peer address reaches handlers as `ConnectInfo<SocketAddr>`.
pub async fn serve(listener: TcpListener, app: impl Into<App>, limits: HttpLimits, shutdown: impl Future<Output = ()>) {
    serve_with(listener, app, limits, Extras::default(), shutdown).await;
}

/// What a listener may add to plain serving.
#[derive(Default)]
pub struct Extras {
    /// HTTPS only, with this certificate.
    pub tls: Option<Arc<ReloadingTls>>,
    /// Requests answered with files sent by `sendfile(2)` on plain connections ([`files`]).
    pub files: Option<Arc<dyn FileResponder>>,
}

/// [`serve`], over TLS or with file answers as `extras` say.
pub async fn serve_with(
    listener: TcpListener,
    app: impl Into<App>,
    limits: HttpLimits,
    extras: Extras,
    shutdown: impl Future<Output = ()>,
) {
    let app = Arc::new(app.into());
    let Extras { tls, files } = extras;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(READ_BUFFER));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    // Dead HTTP/2 peers are found by pings; a live one is held to `max_concurrent_streams`.
    builder.http2().keep_alive_interval(H2_PING_INTERVAL).keep_alive_timeout(H2_PING_TIMEOUT);
    // One slot per open connection: at the cap, accepting waits for a connection to end.
    let slots = Arc::new(Semaphore::new(limits.max_connections.min(Semaphore::MAX_PERMITS)));
    // At the cap, the connection idle the longest is asked to close ([`idle::Open`]).
    let open = Arc::new(idle::Open::default());
    let graceful = GracefulShutdown::new();
    // Connections still in the file-answer loop stop between requests; each holds a watcher of
    // `graceful` from its start, so the drain below waits for them too.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // A newcomer at the cap: room is made by closing the connection idle the longest; when
        // every one is busy, that is tried again now and then until one ends or turns idle (the
        // newcomer waits, and the ones after it wait in the kernel's listen queue).
        let slot = loop {
            if let Ok(slot) = slots.clone().try_acquire_owned() {
                break Some(slot);
            }
            open.close_longest_idle();
            tokio::select! {
                // The semaphore is never closed.
                slot = slots.clone().acquire_owned() => break slot.ok(),
                () = tokio::time::sleep(MAKE_ROOM_EVERY) => {}
                () = &mut shutdown => break None,
            }
        };
        let Some(slot) = slot else { break };
        let max_head = limits.max_header_bytes;
        let activity = idle::Activity::new();
        // Counted as open with its slot, until the connection's task ends.
        let slot = (slot, open.register(&activity));
        let service = |tap: Option<Tap>, activity: Arc<idle::Activity>| {
            let app = app.clone();
            hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                let busy = activity.begin(req.version());
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                if let Some(tap) = &tap {
                    tap.clear_linger();
                    req.extensions_mut().insert(tap.clone());
                }
                let (app, tap) = (app.clone(), tap.clone());
                async move {
                    let res = if head_size(&req) > max_head {
                        ApiError::new(
                            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                            "request_header_fields_too_large",
                            "The request's headers are too large.",
                        )
                        .into_response()
                    } else if let Some(fault) = authority_fault(&req) {
                        ApiError::bad_request(fault.code(), fault.to_string()).into_response()
                    } else {
                        let has_body = req.headers().contains_key(http::header::TRANSFER_ENCODING)
                            || req.headers().get(http::header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0");
                        let res = app.call(req).await;
                        // An error answered to a request with a body: its body may be unread.
                        if let (true, Some(tap)) = (has_body, &tap)
                            && (res.status().is_client_error() || res.status().is_server_error())
                        {
                            tap.linger_on_close();
                        }
                        // The response is hyper's now: a body may go past it once the head is out.
                        if let Some(gate) = res.extensions().get::<HeadGate>() {
                            gate.open();
                        }
                        res
                    };
                    // The request is in progress until its body is sent (`idle`).
                    Ok::<_, std::convert::Infallible>(res.map(|b| idle::Tracked::new(b, busy)))
                }
            })
        };
        let limit = limits.header_read_timeout;
        let Some(tls) = &tls else {
            let tap = Tap::new(stream);
            let service = service(Some(tap.clone()), activity.clone());
            let last = tap.clone();
            if let Some(files) = &files {
                let (files, builder, watcher, stop) =
                    (files.clone(), builder.clone(), graceful.watcher(), stop_rx.clone());
                let watched = (stop_rx.clone(), activity.clone());
                let hyper = move |io: files::Rewind| async move {
                    serve_connection(&builder, io, service, Watch { activity, limit, stop, peer }).await;
                    drop(watcher);
                    linger::close(last).await;
                };
                let served = files::serve(tap, files, limits, watched, hyper);
                tokio::spawn(async move {
                    served.await;
                    drop(slot);
                });
                continue;
            }
            let (builder, watcher, stop) = (builder.clone(), graceful.watcher(), stop_rx.clone());
            tokio::spawn(async move {
                serve_connection(&builder, tap, service, Watch { activity, limit, stop, peer }).await;
                drop(watcher);
                linger::close(last).await;
                drop(slot);
            });
            continue;
        };
        let service = service(None, activity.clone());
        let (tls, builder, watcher, stop) = (tls.clone(), builder.clone(), graceful.watcher(), stop_rx.clone());
        tokio::spawn(async move {
            let handshake = async {
                if !starts_like_tls(&stream).await {
                    let mut stream = stream;
                    let _ = stream.write_all(PLAIN_ON_TLS).await;
                    let _ = stream.shutdown().await;
                    return None;
                }
                match tokio_rustls::TlsAcceptor::from(tls.config()).accept(stream).await {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::debug!(error = %e, client.address = %peer, "TLS handshake failed");
                        None
                    }
                }
            };
            // A handshake has no request in progress: at the cap it may be asked to make room.
            let stream = tokio::select! {
                done = tokio::time::timeout(limit, handshake) => done,
                () = activity.close_asked() => return,
            };
            let Ok(Some(stream)) = stream else { return };
            // The protocol is the one ALPN agreed (HTTP/1.1 without ALPN, RFC 9113 §3.2), not
            // guessed from the first bytes by hyper.
            let builder = match stream.get_ref().1.alpn_protocol() {
                Some(b"h2") => builder.http2_only(),
                _ => builder.http1_only(),
            };
            serve_connection(&builder, stream, service, Watch { activity, limit, stop, peer }).await;
            drop(watcher);
            drop(slot);
        });
    }
    drop(listener);
    tracing::info!("shutting down: no longer accepting, finishing in-flight requests");
    let _ = stop_tx.send(true);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(limits.shutdown_timeout) => {
            tracing::warn!(timeout_s = limits.shutdown_timeout.as_secs(), "shutdown bound reached; dropping remaining connections");
        }
    }
}

/// What watches a connection besides hyper: its requests in progress, the idle limit, the
/// server's stop signal, and the peer (for the log).
struct Watch {
    activity: Arc<idle::Activity>,
    limit: Duration,
    stop: watch::Receiver<bool>,
    peer: SocketAddr,
}

/// Serves `io` with `builder` until the connection ends — shut down gracefully once idle past
/// the limit ([`idle`]) or when the server stops, dropped when asked to make room and idle.
async fn serve_connection<I, S, B>(builder: &auto::Builder<TokioExecutor>, io: I, service: S, watch: Watch)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Watch { activity, limit, mut stop, peer } = watch;
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service).into_owned();
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    let conn = idle::Watched::new(conn, |c| c.graceful_shutdown(), activity, limit, stopped);
    match conn.await {
        Some(Err(e)) => tracing::debug!(error = %e, client.address = %peer, "connection ended with an error"),
        Some(Ok(())) => {}
        None => tracing::debug!(client.address = %peer, "connection dropped to make room"),
    }
}

const PLAIN_ON_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 45\r\nconnection: close\r\n\r\nThis port speaks HTTPS; use an https:// URL.\n";

/// Whether the first byte the client sent opens a TLS handshake record (0x16).
async fn starts_like_tls(stream: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    matches!(stream.peek(&mut first).await, Ok(1) if first[0] == 0x16)
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C). The handlers are installed when this is called, not
/// when the future is first polled: a SIGTERM sent as soon as the server has answered (an
/// orchestrator stopping a replica it has just seen ready) then finds them in place, instead of
/// the default action killing the process before it drains. Call it inside a Tokio runtime.
#[cfg(unix)]
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    let listen = |kind: SignalKind, name: &'static str| {
        signal(kind).inspect_err(|e| tracing::error!(error = %e, signal = name, "cannot listen for the signal")).ok()
    };
    let (term, interrupt) = (listen(SignalKind::terminate(), "SIGTERM"), listen(SignalKind::interrupt(), "SIGINT"));
    async fn received(signal: Option<Signal>) {
        match signal {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    async move {
        tokio::select! {
            () = received(term) => {},
            () = received(interrupt) => {},
        }
    }
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::Duration;

    /// The handlers are in place once `shutdown_signal` is called, before its future is polled:
    /// a SIGTERM raised in between is caught (without a handler, the default action would end
    /// this test's process).
    #[tokio::test]
    async fn a_sigterm_before_the_first_poll_is_caught() {
        let stop = super::shutdown_signal();
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM).expect("SIGTERM sent");
        let caught = tokio::time::timeout(Duration::from_secs(10), stop).await;
        assert!(caught.is_ok(), "the SIGTERM sent before the first poll was not seen");
    }
}
