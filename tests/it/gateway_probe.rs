//! The gateway against requests an attacker writes by hand (issue 19's outside probe): one
//! authority per request (a route picked by one host while the upstream is told another is an
//! auth bypass), an upstream's error body never spliced before the gateway's own head, a broken
//! request body is the client's fault, a connection that had file answers stays HTTP/1.1, the
//! header read time is not started again when the file loop hands a connection to hyper, and an
//! upstream that answers early while a large body is still arriving is heard.
//!
//! Raw sockets on the client side; real upstreams (the test upstream, or plain sockets that
//! misbehave on purpose).

use crate::gateway_routes::spawn_with_toml;
use crate::helpers::Stack;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads one response head a byte at a time (never into what follows), then exactly the body
/// its `Content-Length` gives: status, lowercased head, body.
async fn read_response(conn: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut buf = Vec::new();
    while !buf.ends_with(b"\r\n\r\n") {
        let byte = conn.read_u8().await.expect("the connection ended inside the head");
        buf.push(byte);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    assert!(res.parse(&buf).unwrap().is_complete(), "a response head: {}", String::from_utf8_lossy(&buf));
    let len = res.headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-length"));
    let len: usize = len.map_or(0, |h| std::str::from_utf8(h.value).unwrap().parse().unwrap());
    let status = res.code.unwrap();
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).await.unwrap();
    (status, String::from_utf8_lossy(&buf).to_lowercase(), body)
}

/// Sends `raw` on a new connection and reads one response.
pub async fn exchange(addr: SocketAddr, raw: &str) -> (u16, String, Vec<u8>) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(raw.as_bytes()).await.unwrap();
    read_response(&mut conn).await
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|_| panic!("JSON: {}", String::from_utf8_lossy(body)))
}

/// Two host routes to the same upstream, one open and one behind sign-in: the route is picked
/// by one authority, and the upstream is told that same one. A target and a Host that disagree,
/// a missing Host and a doubled one are refused, over HTTP/1.1 and h2c alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_authority_per_request() {
    let echo = crate::upstream::spawn().await;
    let toml = format!(
        r#"
        [[routes]]
        name = "p-public"
        host = "public.example"
        path = "/"
        upstream = "echo"
        auth = "none"

        [[routes]]
        name = "p-internal"
        host = "internal.example"
        path = "/"
        upstream = "echo"
        auth = "required"

        [upstreams.echo]
        urls = ["http://{echo}"]
        "#
    );
    let app = spawn_with_toml(Stack::Embedded, &toml).await.unwrap();

    // The open route's authority in the target, the guarded one's in Host: refused.
    let (status, _, body) = exchange(
        app.addr,
        "GET http://public.example/secret HTTP/1.1\r\nHost: internal.example\r\nAccept: application/json\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["error"], "conflicting_host");
    // Agreeing (case aside), it passes, and the upstream is told that authority.
    let (status, _, body) =
        exchange(app.addr, "GET http://public.example/secret HTTP/1.1\r\nHost: Public.Example\r\n\r\n").await;
    assert_eq!(status, 200);
    let seen = json(&body);
    assert_eq!(seen["headers"]["host"], "public.example");
    assert_eq!(seen["headers"]["x-forwarded-host"], "public.example");
    // RFC 9112 §3.2: exactly one Host on HTTP/1.1 (the media path goes through the file loop).
    for raw in [
        "GET /secret HTTP/1.1\r\nAccept: application/json\r\n\r\n",
        "GET /media/x HTTP/1.1\r\nAccept: application/json\r\n\r\n",
        "GET http://public.example/secret HTTP/1.1\r\nAccept: application/json\r\n\r\n",
        "GET /secret HTTP/1.1\r\nHost: public.example\r\nHost: internal.example\r\nAccept: application/json\r\n\r\n",
        "GET /media/x HTTP/1.1\r\nHost: public.example\r\nHost: public.example\r\nAccept: application/json\r\n\r\n",
        // User information, lists and spaces: one reader's host is another's.
        "GET http://internal.example:1@public.example/secret HTTP/1.1\r\nHost: internal.example:1@public.example\r\nAccept: application/json\r\n\r\n",
        "GET /secret HTTP/1.1\r\nHost: internal.example:1@public.example\r\nAccept: application/json\r\n\r\n",
        "GET /secret HTTP/1.1\r\nHost: public.example, internal.example\r\nAccept: application/json\r\n\r\n",
    ] {
        let (status, _, body) = exchange(app.addr, raw).await;
        assert_eq!(status, 400, "{raw:?}: {}", String::from_utf8_lossy(&body));
        assert!(json(&body)["error"].as_str().unwrap().ends_with("_host"), "{raw:?}");
    }

    // h2c: `:authority` against a `host` header.
    let conn = TcpStream::connect(app.addr).await.unwrap();
    let (mut h2, driver) = hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .handshake(hyper_util::rt::TokioIo::new(conn))
        .await
        .unwrap();
    tokio::spawn(driver);
    let request = |host: Option<&str>| {
        let mut req =
            hyper::Request::builder().uri("http://public.example/secret").header("accept", "application/json");
        if let Some(host) = host {
            req = req.header("host", host);
        }
        req.body(axum::body::Body::empty()).unwrap()
    };
    let res = h2.send_request(request(Some("internal.example"))).await.unwrap();
    assert_eq!(res.status(), 400);
    let userinfo = hyper::Request::builder()
        .uri("http://internal.example:1@public.example/secret")
        .header("accept", "application/json")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(h2.send_request(userinfo).await.unwrap().status(), 400, "user information in :authority");
    let res = h2.send_request(request(None)).await.unwrap();
    assert_eq!(res.status(), 200, "an h2 request names its host in :authority alone");
    let body = axum::body::to_bytes(axum::body::Body::new(res.into_body()), usize::MAX).await.unwrap();
    let seen = json(&body);
    assert_eq!(seen["headers"]["host"], "public.example");
    assert_eq!(seen["headers"]["x-forwarded-host"], "public.example");
}

/// A plain-socket upstream that answers each connection's first request with `head`, then
/// after `pause` with `body`, and keeps the connection open.
async fn scripted_upstream(head: &'static [u8], pause: Duration, body: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = Arc::new(body);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            let body = body.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(head).await;
                tokio::time::sleep(pause).await;
                let _ = s.write_all(&body).await;
                // Held open until the gateway lets go.
                let _ = s.read(&mut buf).await;
            });
        }
    });
    addr
}

/// An upstream's large plain-text 404, whose body comes late and starts like a response of its
/// own: the client gets the gateway's own error page, then the answer to its pipelined request,
/// and never the upstream's bytes as a response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_error_body_is_rendered_not_spliced() {
    const LEN: usize = 1_048_676;
    let injected = b"HTTP/1.1 200 OK\r\nx-injected: 1\r\ncontent-length: 5\r\n\r\nPWNED";
    let mut body = injected.to_vec();
    body.resize(LEN, b'x');
    let head = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 1048676\r\n\r\n";
    let upstream = scripted_upstream(head, Duration::from_millis(300), body).await;
    let toml = format!(
        r#"
        [[routes]]
        name = "p-split"
        path = "/split"
        upstream = "liar"
        auth = "none"

        [upstreams.liar]
        urls = ["http://{upstream}"]
        "#
    );
    let app = spawn_with_toml(Stack::Embedded, &toml).await.unwrap();
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    let two = "GET /split/x HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n\
               GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    conn.write_all(two.as_bytes()).await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(20), read_response(&mut conn));
    let (status, head, body) = read.await.expect("the first answer arrives");
    assert!(!head.contains("x-injected"), "the upstream's bytes came as a response: {head}");
    assert_eq!(status, 404, "{head}");
    assert_eq!(json(&body)["error"], "not_found");
    let read = tokio::time::timeout(Duration::from_secs(20), read_response(&mut conn));
    let (next, next_head, _) = read.await.expect("the second answer arrives");
    assert_eq!(next, 200, "the pipelined request is answered: {next_head}");
}

/// A chunked request body that breaks the chunked syntax is the client's fault: 400, and no
/// upstream failure counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunked_body_is_a_bad_request() {
    let echo = crate::upstream::spawn().await;
    let toml = format!(
        r#"
        [[routes]]
        name = "p-chunked"
        path = "/chunked"
        upstream = "echo"
        auth = "none"

        [upstreams.echo]
        urls = ["http://{echo}"]
        "#
    );
    let app = spawn_with_toml(Stack::Embedded, &toml).await.unwrap();
    let raw = "POST /chunked/x HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\
               Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nnot a chunk\r\n0\r\n\r\n";
    let (status, _, body) = exchange(app.addr, raw).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["error"], "malformed_body");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("turtlemen_http_gateway_upstream_errors_total{route=\"p-chunked\"")
                && !l.ends_with(" 0")),
        "{metrics}"
    );
}

/// An upstream that refuses a large upload at once (401, then closes) while the body is still
/// arriving: the client gets the 401, whether the body is spliced (known length) or copied
/// (chunked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_refusal_during_a_large_upload_reaches_the_client() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ =
                    s.write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                // Closed with the body unread: the gateway's next write meets a reset.
            });
        }
    });
    let toml = format!(
        r#"
        [[routes]]
        name = "p-early"
        path = "/early"
        upstream = "strict"
        auth = "none"
        max_body_bytes = 1073741824

        [upstreams.strict]
        urls = ["http://{upstream}"]
        "#
    );
    let app = spawn_with_toml(Stack::Embedded, &toml).await.unwrap();
    const LEN: usize = 16 * 1024 * 1024;
    for round in 0..6 {
        let chunked = round % 2 == 1;
        let mut conn = TcpStream::connect(app.addr).await.unwrap();
        let framing = if chunked { "Transfer-Encoding: chunked".to_string() } else { format!("Content-Length: {LEN}") };
        let head =
            format!("PUT /early/up HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n{framing}\r\n\r\n");
        conn.write_all(head.as_bytes()).await.unwrap();
        let (mut rx, mut tx) = conn.into_split();
        // The body keeps coming while the answer is read; the gateway may stop taking it.
        let sending = tokio::spawn(async move {
            let piece = vec![b'u'; 64 * 1024];
            for _ in 0..LEN / piece.len() {
                let sent = if chunked {
                    let size = format!("{:x}\r\n", piece.len());
                    tx.write_all(size.as_bytes()).await.is_ok()
                        && tx.write_all(&piece).await.is_ok()
                        && tx.write_all(b"\r\n").await.is_ok()
                } else {
                    tx.write_all(&piece).await.is_ok()
                };
                if !sent {
                    return;
                }
            }
            let _ = tx.write_all(if chunked { &b"0\r\n\r\n"[..] } else { &b""[..] }).await;
        });
        let mut got = Vec::new();
        let read = async {
            let mut buf = [0u8; 4096];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match rx.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), read).await.expect("an answer arrives");
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 401"), "round {round} (chunked: {chunked}): {text}");
        sending.abort();
    }
}

/// File answers for the tests below: `/f/data` is a small file, anything else goes to a router
/// that answers "routed".
mod with_files {
    use super::*;
    use turtlemen_http::files::{FileReply, FileResponder};

    struct OneFile(std::path::PathBuf);

    impl FileResponder for OneFile {
        fn prefix(&self) -> &str {
            "/f/"
        }

        fn respond(&self, req: &axum::http::Request<()>) -> Option<FileReply> {
            if req.uri().path() != "/f/data" {
                return None;
            }
            let file = std::fs::File::open(&self.0).ok()?;
            let size = file.metadata().ok()?.len();
            Some(FileReply {
                status: axum::http::StatusCode::OK,
                headers: axum::http::HeaderMap::new(),
                file,
                range: 0..size,
            })
        }
    }

    /// A server with file answers and a header read time of `header_read`.
    async fn start(header_read: Duration) -> (SocketAddr, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        std::fs::write(&path, b"file bytes").unwrap();
        let limits = turtlemen_config::HttpLimits {
            request_timeout: Duration::from_secs(5),
            header_read_timeout: header_read,
            max_body_bytes: 1024,
            max_header_bytes: 8192,
            max_connections: 100,
            shutdown_timeout: Duration::from_secs(1),
        };
        let router = axum::Router::new().fallback(|| async { "routed" });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let extras = turtlemen_http::server::Extras { tls: None, files: Some(Arc::new(OneFile(path))) };
        tokio::spawn(turtlemen_http::server::serve_with(listener, router, limits, extras, std::future::pending()));
        (addr, dir)
    }

    /// After a file answer, an HTTP/2 preface is a bad request on an HTTP/1.1 connection: the
    /// server does not start speaking HTTP/2 (its first frame would be SETTINGS).
    #[tokio::test]
    async fn a_preface_after_a_file_answer_does_not_switch_to_http2() {
        let (addr, _dir) = start(Duration::from_secs(5)).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /f/data HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
        let (status, _, body) = read_response(&mut conn).await;
        assert_eq!((status, &body[..]), (200, &b"file bytes"[..]));
        // The preface, then an empty SETTINGS frame.
        conn.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0").await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut rest));
        let _ = read.await.expect("the connection ends");
        assert!(rest.is_empty() || rest.starts_with(b"HTTP/1.1 4"), "not HTTP/2: {rest:?}");
        // A fresh connection may still open with the preface (h2c by prior knowledge).
        let conn = TcpStream::connect(addr).await.unwrap();
        let (mut h2, driver) = hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake(hyper_util::rt::TokioIo::new(conn))
            .await
            .unwrap();
        tokio::spawn(driver);
        let req = hyper::Request::builder().uri("http://t/x").body(axum::body::Body::empty()).unwrap();
        assert_eq!(h2.send_request(req).await.unwrap().status(), 200);
    }

    /// An HTTP/2 preface that stops part-way is cut off at the header read time too (hyper's
    /// version detection, which would take it over, has no timer).
    #[tokio::test]
    async fn a_preface_cut_short_is_held_no_longer_than_a_head() {
        let limit = Duration::from_secs(1);
        let (addr, _dir) = start(limit).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let began = Instant::now();
        conn.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut rest));
        let _ = read.await.expect("the connection ends");
        let took = began.elapsed();
        assert!(took < limit * 3 / 2, "cut off after {took:?}, the limit being {limit:?}");
    }

    /// A head that the file loop gives up on part-way (more headers than it takes) and that
    /// never ends is cut off one header read time after it began, not that time again after
    /// the hand-off to hyper.
    #[tokio::test]
    async fn the_header_read_time_holds_across_the_hand_off() {
        let limit = Duration::from_secs(1);
        let (addr, _dir) = start(limit).await;
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let began = Instant::now();
        conn.write_all(b"GET /f/data HTTP/1.1\r\nHost: t\r\n").await.unwrap();
        // A slow client: most of the time goes by before the rest of its headers come.
        tokio::time::sleep(limit * 7 / 10).await;
        let many: String = (0..60).map(|i| format!("X-{i}: v\r\n")).collect();
        conn.write_all(many.as_bytes()).await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut rest));
        let _ = read.await.expect("the connection ends");
        let took = began.elapsed();
        assert!(took < limit * 3 / 2, "cut off after {took:?}, the limit being {limit:?}");
        let text = String::from_utf8_lossy(&rest);
        assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    }
}
