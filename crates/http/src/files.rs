//! Zero-copy file answers on plain HTTP/1.1 connections.
//!
//! hyper sends a body by copying it through user space; for the hottest and simplest requests —
//! a `GET` of an HLS segment — that copy is most of the cost. So a connection accepted without
//! TLS is read here first: while its requests are bodiless `GET`s and `HEAD`s that a
//! [`FileResponder`] answers with a local file, the response head is written and the file sent
//! with `sendfile(2)`, straight from the page cache to the socket.
//!
//! The first request the responder does not take — another path, a body, an upgrade, HTTP/1.0,
//! a missing or doubled `Host`, a head that is malformed or larger than allowed, HTTP/2's
//! preface — hands the connection, with every byte already read, to hyper for the rest of its
//! life; so everything else is served exactly as without this module. Two things carry over the
//! hand-off: a head that hyper would still wait for (past this module's size or header-count
//! limits) is read here to its end first, within the same header read time, so that time is
//! not started again; and on a connection that had file answers a later HTTP/2 preface closes
//! the connection instead of being handed over (hyper would switch to HTTP/2 on it). A responder answers
//! successes only: a bad signature, a missing file or a range outside the file go to the
//! router, which renders the error.
//!
//! The responses carry what the foundation layers add elsewhere: the security headers, the
//! request id, a `served` line in the access log and the request metrics.

use crate::layers::{REQUEST_ID, SECURITY_HEADERS, is_valid_request_id};
use crate::tap::Tap;
use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Version, header};
use std::fs::File;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use turtlemen_config::HttpLimits;

/// Longest wait for a client to take more of a response before the connection is dropped.
pub const SEND_IDLE: Duration = Duration::from_secs(60);

/// Most headers a request taken here may have; one with more goes to hyper.
const MAX_HEADERS: usize = 48;

/// A file answering a request.
#[derive(Debug)]
pub struct FileReply {
    /// 200 or 206.
    pub status: StatusCode,
    /// The response's own headers (content type, caching, `Content-Range`…); `Content-Length`,
    /// `Date`, the request id and the security headers are added when it is sent.
    pub headers: HeaderMap,
    pub file: File,
    /// The bytes of `file` to send.
    pub range: Range<u64>,
}

/// Answers some requests with local files.
pub trait FileResponder: Send + Sync + 'static {
    /// Only requests whose path starts with this are offered to [`Self::respond`].
    fn prefix(&self) -> &str;

    /// The file answering `req` (a bodiless `GET` or `HEAD` in origin form), or `None` to leave
    /// the request — and the rest of the connection — to the router. Runs on an async worker:
    /// it may open and stat a local file, never read one.
    fn respond(&self, req: &Request<()>) -> Option<FileReply>;
}

/// What the bytes read so far hold.
#[derive(Debug)]
pub enum Head {
    /// Not a whole head yet.
    Partial,
    /// A request for the responder, and the length of its head.
    Mine(Box<Request<()>>, usize),
    /// Something for hyper.
    NotMine,
    /// Something for hyper, whose head hyper would still wait for (past this module's size or
    /// header-count limits).
    Unfinished,
}

/// Reads the request head at the start of `buf`, deciding whether it is one this module takes.
/// Public for the fuzz target (`fuzz/`), which feeds it raw bytes as a client would.
pub fn parse(buf: &[u8], prefix: &str, max_head: usize) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= max_head => len,
        Ok(httparse::Status::Partial) if buf.len() <= max_head => return Head::Partial,
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => return Head::Unfinished,
        _ => return Head::NotMine,
    };
    let method = match req.method {
        Some("GET") => Method::GET,
        Some("HEAD") => Method::HEAD,
        _ => return Head::NotMine,
    };
    let Some(path) = req.path.filter(|p| p.starts_with(prefix) && p.starts_with('/')) else { return Head::NotMine };
    if req.version != Some(1) {
        return Head::NotMine;
    }
    let mut map = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(h.name.as_bytes()), HeaderValue::from_bytes(h.value))
        else {
            return Head::NotMine;
        };
        map.append(name, value);
    }
    let has_body = map.contains_key(header::TRANSFER_ENCODING)
        || map.get_all(header::CONTENT_LENGTH).iter().any(|v| v.as_bytes() != b"0");
    let asks_upgrade = map.contains_key(header::UPGRADE) || map.contains_key(header::EXPECT);
    // Exactly one Host (RFC 9112 §3.2); hyper's side refuses anything else.
    let mut hosts = map.get_all(header::HOST).iter();
    let one_host = hosts.next().is_some() && hosts.next().is_none();
    if has_body || asks_upgrade || !one_host {
        return Head::NotMine;
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = map;
    match path.parse() {
        Ok(uri) => *request.uri_mut() = uri,
        Err(_) => return Head::NotMine,
    }
    Head::Mine(Box::new(request), len)
}

/// Whether `buf[from..]` holds the empty line that ends a head (`\n\n` or `\n\r\n`), looking
/// back two bytes so an ending split between reads is found.
pub fn head_ends(buf: &[u8], from: usize) -> bool {
    let tail = &buf[from.saturating_sub(2)..];
    tail.windows(2).any(|w| w == b"\n\n") || tail.windows(3).any(|w| w == b"\n\r\n")
}

/// HTTP/2's connection preface.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether `buf` starts as HTTP/2's preface does, as far as it goes (as hyper tells the
/// protocols apart).
fn opens_like_h2(buf: &[u8]) -> bool {
    let n = buf.len().min(H2_PREFACE.len());
    n > 0 && buf[..n] == H2_PREFACE[..n]
}

/// Whether the client asked to close the connection after this request.
fn wants_close(req: &Request<()>) -> bool {
    req.headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("close"))
}

/// Serves `stream`'s requests from `files` while it can, then gives the connection (and the
/// bytes already read) to `hyper`. Ends early when `stop` turns true between requests, or when
/// the server asks the connection to make room (its `Activity`).
pub(crate) async fn serve<H, Fut>(
    mut stream: Tap,
    files: Arc<dyn FileResponder>,
    limits: HttpLimits,
    (mut stop, activity): (watch::Receiver<bool>, Arc<crate::idle::Activity>),
    hyper: H,
) where
    H: FnOnce(Rewind) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut buf = BytesMut::with_capacity(4096);
    // The most hyper holds of a head; past it, hyper refuses the head at once.
    let hyper_holds = limits.max_header_bytes.max(crate::server::READ_BUFFER);
    let mut answered = false;
    loop {
        // A whole head must arrive within the header read time, counted from the first wait,
        // and hyper is given one it does not wait for: its own timer would start again.
        let deadline = tokio::time::Instant::now() + limits.header_read_timeout;
        // Once the head is known to be hyper's but not whole: where to look for its end.
        let mut unfinished: Option<usize> = None;
        let (req, len) = loop {
            let head = match unfinished {
                None => parse(&buf, files.prefix(), limits.max_header_bytes),
                Some(from) if head_ends(&buf, from) || buf.len() > hyper_holds => Head::NotMine,
                Some(_) => {
                    unfinished = Some(buf.len());
                    Head::Partial
                }
            };
            match head {
                Head::Mine(req, len) => break (req, len),
                Head::NotMine if answered && opens_like_h2(&buf) => {
                    // hyper would take the preface for HTTP/2 by prior knowledge; after HTTP/1.1
                    // requests it is a malformed one.
                    let _ = stream.shutdown().await;
                    return;
                }
                // A preface goes to hyper only whole: hyper's version detection has no timer,
                // so a connection stopping part-way would otherwise be held for ever.
                Head::NotMine if opens_like_h2(&buf) && buf.len() < H2_PREFACE.len() => {}
                Head::NotMine => return hyper(Rewind { prefix: buf.freeze(), inner: stream }).await,
                Head::Unfinished => {
                    unfinished = Some(0);
                    continue;
                }
                Head::Partial => {}
            }
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(4096);
            }
            tokio::select! {
                read = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)) => match read {
                    Ok(Ok(n)) if n > 0 => {}
                    // Closed, broken or too slow: hyper would close it too.
                    _ => return,
                },
                _ = stop.changed() => return,
                // Asked to make room at the connection cap: it has no request in progress.
                () = activity.close_asked() => return,
            }
        };
        let start = Instant::now();
        // In progress until it is sent: a connection sending files is not idle.
        let busy = activity.begin(req.version());
        let Some(reply) = files.respond(&req) else {
            return hyper(Rewind { prefix: buf.freeze(), inner: stream }).await;
        };
        buf.advance(len);
        let close = wants_close(&req) || *stop.borrow();
        let status = reply.status;
        let sent = send(&mut stream, &req, reply, close).await;
        drop(busy);
        crate::metrics::observe(req.uri().path(), req.method(), status.as_u16(), start.elapsed());
        if let Err(e) = sent {
            tracing::debug!(error = %e, url.path = %req.uri().path(), "file answer ended early");
            return;
        }
        answered = true;
        if close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Writes the response head for `reply`, then the file's bytes (none for `HEAD`).
async fn send(stream: &mut Tap, req: &Request<()>, reply: FileReply, close: bool) -> io::Result<()> {
    let started = Instant::now();
    let id = req
        .headers()
        .get(REQUEST_ID)
        .filter(|v| is_valid_request_id(v.as_bytes()))
        .cloned()
        .unwrap_or_else(crate::layers::new_request_id);
    let length = reply.range.end - reply.range.start;
    let mut head = Vec::with_capacity(768);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(reply.status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(reply.status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    let mut line = |name: &[u8], value: &[u8]| {
        head.extend_from_slice(name);
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    };
    for (name, value) in &reply.headers {
        if name != header::CONTENT_LENGTH && name != header::CONNECTION {
            line(name.as_str().as_bytes(), value.as_bytes());
        }
    }
    for (name, value) in SECURITY_HEADERS {
        if !reply.headers.contains_key(&name) {
            line(name.as_str().as_bytes(), value.as_bytes());
        }
    }
    line(REQUEST_ID.as_str().as_bytes(), id.as_bytes());
    line(b"content-length", length.to_string().as_bytes());
    line(b"date", httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
    if close {
        line(b"connection", b"close");
    }
    head.extend_from_slice(b"\r\n");
    tokio::time::timeout(SEND_IDLE, stream.write_all(&head))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading"))??;
    tracing::info!(
        request.id = id.to_str().unwrap_or("-"),
        http.method = %req.method(),
        url.path = %req.uri().path(),
        http.status = reply.status.as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "served"
    );
    if *req.method() == Method::HEAD {
        return Ok(());
    }
    send_file(stream.stream(), &reply.file, reply.range).await
}

/// Sends `range` of `file` on `stream` with `sendfile(2)`, waiting for the socket as needed.
async fn send_file(stream: &TcpStream, file: &File, range: Range<u64>) -> io::Result<()> {
    let mut offset = range.start;
    while offset < range.end {
        // Linux sends at most about 2 GiB per call.
        let count = usize::try_from((range.end - offset).min(1 << 30)).unwrap_or(1 << 30);
        tokio::time::timeout(SEND_IDLE, stream.writable())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading"))??;
        match stream.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(stream, file, Some(&mut offset), count).map_err(io::Error::from)
        }) {
            // The file shrank under us: stop short rather than send made-up bytes.
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while sent")),
            Ok(sent) => crate::metrics::sent_from_files(sent as u64),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A connection with bytes already read from it put back in front.
pub struct Rewind {
    prefix: Bytes,
    inner: Tap,
}

impl AsyncRead for Rewind {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(out.remaining());
            out.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, out)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(raw: &str) -> Head {
        parse(raw.as_bytes(), "/media/", 8192)
    }

    #[test]
    fn takes_only_plain_bodiless_gets_and_heads_under_the_prefix() {
        let Head::Mine(req, len) = decide("GET /media/a HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\nGET /next")
        else {
            panic!("a plain GET is taken")
        };
        assert_eq!((req.method(), req.uri().path(), len), (&Method::GET, "/media/a", 52));
        assert_eq!(req.headers()[header::RANGE], "bytes=0-1");
        assert!(matches!(decide("HEAD /media/a HTTP/1.1\r\nHost: x\r\n\r\n"), Head::Mine(..)));
        assert!(matches!(decide("GET /media/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"), Head::Mine(..)));
        assert!(matches!(decide("GET /media/a HTTP/1.1\r\nHost: x\r\n"), Head::Partial));
        for other in [
            "POST /media/a HTTP/1.1\r\n\r\n",
            "GET /api/v1/me HTTP/1.1\r\n\r\n",
            "GET /media/a HTTP/1.0\r\n\r\n",
            "GET http://x/media/a HTTP/1.1\r\n\r\n",
            "GET /media/a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            "GET /media/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /media/a HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            "GET /media/a HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GET /media/a HTTP/1.1\r\nBad Header\r\n\r\n",
            "GET /media/a HTTP/1.1\r\n\r\n",
            "GET /media/a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            "\x16\x03\x01",
        ] {
            assert!(matches!(decide(other), Head::NotMine), "{other:?}");
        }
    }

    #[test]
    fn a_head_past_the_limit_goes_to_hyper() {
        let big = format!("GET /media/a HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(9000));
        assert!(matches!(decide(&big), Head::NotMine));
        assert!(matches!(decide(&big[..8500]), Head::Unfinished), "a partial head past the limit is hyper's");
        let many: String = (0..60).map(|i| format!("X-{i}: v\r\n")).collect();
        assert!(matches!(decide(&format!("GET /media/a HTTP/1.1\r\n{many}\r\n")), Head::Unfinished));
        let (whole, split) = ("GET / HTTP/1.1\r\nA: b\r\n\r\n", "GET / HTTP/1.1\nA: b\n\n");
        assert!(head_ends(whole.as_bytes(), 0) && head_ends(split.as_bytes(), 0));
        assert!(head_ends(whole.as_bytes(), whole.len() - 1), "an ending split between reads is found");
        assert!(!head_ends(b"GET / HTTP/1.1\r\nA: b\r\n", 0));
        assert!(opens_like_h2(b"PRI * HTTP/2.0\r\n\r\n") && opens_like_h2(H2_PREFACE));
        assert!(!opens_like_h2(b"PRI /x HTTP/1.1\r\n\r\n") && !opens_like_h2(b""));
    }

    /// Answers `/f/data` from a file (a single `bytes=A-B` range honoured), nothing else.
    struct OneFile(std::path::PathBuf);

    impl FileResponder for OneFile {
        fn prefix(&self) -> &str {
            "/f/"
        }

        fn respond(&self, req: &Request<()>) -> Option<FileReply> {
            if req.uri().path() != "/f/data" {
                return None;
            }
            let file = File::open(&self.0).ok()?;
            let size = file.metadata().ok()?.len();
            let range = match req.headers().get(header::RANGE).and_then(|v| v.to_str().ok()?.strip_prefix("bytes=")) {
                Some(r) => {
                    let (a, b) = r.split_once('-')?;
                    a.parse().ok()?..b.parse::<u64>().ok()? + 1
                }
                None => 0..size,
            };
            let status = if range.end - range.start == size { StatusCode::OK } else { StatusCode::PARTIAL_CONTENT };
            Some(FileReply { status, headers: HeaderMap::new(), file, range })
        }
    }

    #[tokio::test]
    async fn files_go_out_by_sendfile_and_the_rest_of_the_connection_to_hyper() {
        let path = std::env::temp_dir().join(format!("turtlemen-files-{}", uuid::Uuid::new_v4()));
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = crate::test_limits();
        let (_stop_tx, stop_rx) = watch::channel(false);
        let (handed_tx, handed_rx) = tokio::sync::oneshot::channel();
        let files: Arc<dyn FileResponder> = Arc::new(OneFile(path.clone()));
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            // Stands in for hyper: keeps what reaches it.
            let hyper = |mut io: Rewind| async move {
                let mut rest = Vec::new();
                io.read_to_end(&mut rest).await.unwrap();
                let _ = handed_tx.send(rest);
            };
            serve(Tap::new(stream), files, limits, (stop_rx, crate::idle::Activity::new()), hyper).await;
        });
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let tail = "POST /f/data HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
        let requests = format!(
            "GET /f/data HTTP/1.1\r\nHost: t\r\n\r\nGET /f/data HTTP/1.1\r\nHost: t\r\nRange: bytes=10-19\r\n\r\n\
             HEAD /f/data HTTP/1.1\r\nHost: t\r\n\r\n{tail}"
        );
        conn.write_all(requests.as_bytes()).await.unwrap();
        conn.shutdown().await.unwrap();
        let mut got = Vec::new();
        conn.read_to_end(&mut got).await.unwrap();
        let handed = handed_rx.await.unwrap();
        assert_eq!(String::from_utf8_lossy(&handed), tail, "hyper gets the first request not taken, whole");
        let mut rest = &got[..];
        for (status, body, head_only) in [(200, &data[..], false), (206, &data[10..20], false), (200, &data[..0], true)]
        {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut res = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(len) = res.parse(rest).unwrap() else { panic!("a partial answer") };
            assert_eq!(res.code, Some(status));
            let value = |n: &str| res.headers.iter().find(|h| h.name == n).map(|h| h.value.to_vec());
            assert_eq!(value("x-content-type-options").as_deref(), Some(&b"nosniff"[..]));
            assert!(value("x-request-id").is_some() && value("date").is_some());
            let length: usize = String::from_utf8(value("content-length").unwrap()).unwrap().parse().unwrap();
            let sent = if head_only { 0 } else { length };
            assert_eq!(length, if head_only { data.len() } else { body.len() });
            assert!(rest[len..len + sent] == *body);
            rest = &rest[len + sent..];
        }
        assert!(rest.is_empty());
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn connection_close_is_honoured() {
        let Head::Mine(req, _) = decide("GET /media/a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n")
        else {
            panic!()
        };
        assert!(wants_close(&req));
    }
}
