//! Idle, slow and abandoned connections. Each kind — one that never sends a byte, a request head
//! sent a byte at a time (slowloris), a kept-alive connection with no next request, an HTTP/2
//! preface left half-way, a TLS connection with no request after its handshake — is closed
//! within the header read time, on every path a connection takes: `serve` (plain connections go
//! through the file-answer loop first), a bare server as a gateway or API server alone runs it
//! (straight to hyper), and HTTPS. At the connection cap the connection idle the longest makes
//! room for a newcomer — a slowloris or a stuck TLS handshake at once, while a response still
//! being sent is kept; with every one busy, accepting waits.
//! Signed-in requests are served while 2,000 idle connections are held (both stacks). A body
//! refused by its size before it is read gets its 413, not a reset (lingering close), through
//! the gateway and straight to a server alone.

use crate::gateway::Browser;
use crate::helpers::{Stack, TestApp, fresh_settings};
use crate::on_both_stacks;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The header read time the servers here are given.
const HEADER_READ: Duration = Duration::from_secs(1);

/// How long past the header read time a connection may live before the test says it was kept.
const MARGIN: Duration = Duration::from_secs(4);

/// Reads until the server closes (EOF or reset); whether that happened within `within`.
async fn closed_within(stream: &mut tokio::net::tcp::OwnedReadHalf, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// What a connection does before it sits there.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Silent,
    Slowloris,
    KeptAlive,
    HalfPreface,
}

/// Opens a connection of `kind` to `addr` and checks that the server closes it in time.
async fn is_closed_in_time(addr: SocketAddr, kind: Kind) {
    let (mut read, mut write) = TcpStream::connect(addr).await.unwrap().into_split();
    let trickle = match kind {
        Kind::Silent => None,
        Kind::HalfPreface => {
            write.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
            None
        }
        Kind::KeptAlive => {
            write.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = read.read(&mut buf).await.unwrap();
                assert!(n > 0, "answered before sitting idle");
                head.extend_from_slice(&buf[..n]);
            }
            assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
            None
        }
        Kind::Slowloris => Some(tokio::spawn(async move {
            // A byte every 200 ms, for ever: the head never ends.
            let head = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ".iter().copied().chain(std::iter::repeat(b'a'));
            for b in head {
                if write.write_all(&[b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })),
    };
    assert!(closed_within(&mut read, HEADER_READ + MARGIN).await, "a {kind:?} connection was kept past its limit");
    if let Some(t) = trickle {
        t.abort();
    }
}

async fn every_kind_is_closed_in_time(addr: SocketAddr) {
    let kinds = [Kind::Silent, Kind::Slowloris, Kind::KeptAlive, Kind::HalfPreface];
    futures::future::join_all(kinds.map(|k| is_closed_in_time(addr, k))).await;
}

/// A server as a role alone runs it (no file answers: every connection goes straight to hyper),
/// with `limits`, around a router that answers `/healthz` and anything else with 404.
async fn bare_server(limits: turtlemen_config::HttpLimits) -> SocketAddr {
    let router = turtlemen_http::layers::foundation(
        axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" })),
        &limits,
        turtlemen_http::layers::plain_error_page,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(turtlemen_http::server::serve(listener, router, limits, std::future::pending()));
    addr
}

fn limits(max_connections: usize) -> turtlemen_config::HttpLimits {
    turtlemen_config::HttpLimits {
        request_timeout: Duration::from_secs(10),
        header_read_timeout: HEADER_READ,
        max_body_bytes: 1024,
        max_header_bytes: 8192,
        max_connections,
        shutdown_timeout: Duration::from_secs(1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_are_closed_by_serve() {
    let (mut settings, dir, _) = fresh_settings(Stack::Embedded).await.unwrap();
    settings.header_read_timeout_secs = Some(HEADER_READ.as_secs());
    let app = TestApp::spawn_with(settings, dir, None).await;
    every_kind_is_closed_in_time(app.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_are_closed_by_a_role_alone() {
    let addr = bare_server(limits(100)).await;
    every_kind_is_closed_in_time(addr).await;
}

/// An HTTP/2 connection (h2c by prior knowledge) is closed once no request has been in
/// progress on it for the header read time — after its one request, and with none at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_with_no_request_in_progress_is_closed() {
    let addr = bare_server(limits(100)).await;
    for ask in [true, false] {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .unwrap();
        let conn = tokio::spawn(conn);
        if ask {
            let req = hyper::Request::get(format!("http://{addr}/healthz"))
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap();
            let res = sender.send_request(req).await.unwrap();
            assert_eq!(res.status(), 200);
            let _ = http_body_util::BodyExt::collect(res.into_body()).await.unwrap();
        }
        let ended = tokio::time::timeout(HEADER_READ + MARGIN, conn).await;
        assert!(ended.is_ok(), "an idle HTTP/2 connection was kept past its limit (after a request: {ask})");
    }
}

/// An HTTPS server alone with `limits` that answers anything with "ok", and its certificate.
async fn tls_server(
    limits: turtlemen_config::HttpLimits,
) -> (SocketAddr, rustls::pki_types::CertificateDer<'static>, tempfile::TempDir) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let tls = Arc::new(turtlemen_http::tls::ReloadingTls::load(&cert, &key).unwrap());
    let router = axum::Router::new().fallback(|| async { "ok" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let extras = turtlemen_http::server::Extras { tls: Some(tls), files: None };
    tokio::spawn(turtlemen_http::server::serve_with(listener, router, limits, extras, std::future::pending()));
    (addr, made.cert.der().clone(), dir)
}

/// A TLS client of `addr` trusting `cert`, offering `alpn`, past its handshake (blocking).
fn tls_client(
    addr: SocketAddr,
    cert: rustls::pki_types::CertificateDer<'static>,
    alpn: &[u8],
) -> (rustls::ClientConnection, std::net::TcpStream) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(HEADER_READ + MARGIN)).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).unwrap();
    }
    assert_eq!(conn.alpn_protocol(), Some(alpn));
    (conn, sock)
}

/// Over HTTPS, a client that completes the handshake and then asks nothing is closed too,
/// whichever protocol ALPN agreed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_connection_with_no_request_is_closed() {
    let (addr, cert, _dir) = tls_server(limits(100)).await;
    for alpn in [b"http/1.1".to_vec(), b"h2".to_vec()] {
        let cert = cert.clone();
        let closed = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let (mut conn, mut sock) = tls_client(addr, cert, &alpn);
            // Nothing is sent. An HTTP/2 server speaks first (SETTINGS); read until it closes.
            let mut tls = rustls::Stream::new(&mut conn, &mut sock);
            let mut buf = [0u8; 4096];
            loop {
                match tls.read(&mut buf) {
                    Ok(0) => return true,
                    Ok(_) => {}
                    Err(e) => {
                        return !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut);
                    }
                }
            }
        })
        .await
        .unwrap();
        assert!(closed, "a TLS connection with no request was kept past its limit");
    }
}

/// At the connection cap, TLS connections stuck in their handshake (half a ClientHello) make
/// room for a newcomer at once, long before the handshake's time limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_a_stuck_tls_handshake_makes_room() {
    let mut limits = limits(2);
    limits.header_read_timeout = Duration::from_secs(60);
    let (addr, cert, _dir) = tls_server(limits).await;
    let mut stuck = Vec::new();
    for _ in 0..2 {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        // A handshake record's header and a few bytes of a ClientHello that never ends.
        conn.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]).await.unwrap();
        stuck.push(conn);
    }
    let answered = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let (mut conn, mut sock) = tls_client(addr, cert, b"http/1.1");
            let mut tls = rustls::Stream::new(&mut conn, &mut sock);
            tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
            let mut answer = Vec::new();
            let _ = tls.read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).into_owned()
        }),
    )
    .await
    .expect("the newcomer was served before the handshake limit")
    .unwrap();
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    // One of the stuck handshakes made room for it.
    let mut closed = 0;
    for conn in &mut stuck {
        closed += usize::from(is_closed(conn, Duration::from_millis(500)).await);
    }
    assert!(closed >= 1, "a stuck handshake was closed for the newcomer");
}

/// A server alone with `limits` whose `/slow/{n}` answers only when gate `n` (of 3) gets a
/// permit, and whose `/stream/{n}` sends "first" at once and "last" only then; `arrived` gets
/// a permit as each `/slow` request reaches its handler.
struct Gated {
    addr: SocketAddr,
    gates: Arc<[tokio::sync::Semaphore; 3]>,
    arrived: Arc<tokio::sync::Semaphore>,
}

async fn gated_server(limits: turtlemen_config::HttpLimits) -> Gated {
    use axum::extract::Path;
    let gates = Arc::new([0; 3].map(tokio::sync::Semaphore::new));
    let arrived = Arc::new(tokio::sync::Semaphore::new(0));
    let (g, a) = (gates.clone(), arrived.clone());
    let slow = move |Path(n): Path<usize>| {
        let (gates, arrived) = (g.clone(), a.clone());
        async move {
            arrived.add_permits(1);
            gates[n].acquire().await.unwrap().forget();
            "slow"
        }
    };
    let g = gates.clone();
    let stream = move |Path(n): Path<usize>| {
        let gates = g.clone();
        let last = futures::stream::once(async move {
            gates[n].acquire().await.unwrap().forget();
            Ok::<_, std::convert::Infallible>(bytes::Bytes::from_static(b"last"))
        });
        let first = futures::stream::once(async { Ok(bytes::Bytes::from_static(b"first")) });
        async move { axum::body::Body::from_stream(futures::StreamExt::chain(first, last)) }
    };
    let router = turtlemen_http::layers::foundation(
        axum::Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok" }))
            .route("/slow/{n}", axum::routing::get(slow))
            .route("/stream/{n}", axum::routing::get(stream)),
        &limits,
        turtlemen_http::layers::plain_error_page,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(turtlemen_http::server::serve(listener, router, limits, std::future::pending()));
    Gated { addr, gates, arrived }
}

/// A connection that sent `GET path`.
async fn asking(addr: SocketAddr, path: &str) -> TcpStream {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).await.unwrap();
    conn
}

/// What `conn` reads within `within`: `None` if nothing came.
async fn answer(conn: &mut TcpStream, within: Duration) -> Option<String> {
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(within, conn.read(&mut buf)).await {
        Ok(Ok(n)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Ok(Err(e)) => Some(format!("error: {e}")),
        Err(_) => None,
    }
}

/// Whether the server has closed `conn` (EOF or reset) within `within`.
async fn is_closed(conn: &mut TcpStream, within: Duration) -> bool {
    matches!(answer(conn, within).await, Some(s) if s.is_empty() || s.starts_with("error"))
}

/// At the connection cap, a newcomer is served at once by closing the connection with no
/// request in progress for the longest; busy connections are never closed for it, and when all
/// are busy, accepting waits until one turns idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_the_longest_idle_connection_makes_room() {
    let mut limits = limits(3);
    limits.header_read_timeout = Duration::from_secs(60);
    let Gated { addr, gates, arrived } = gated_server(limits).await;
    // Waits bounded so that a failure is reported, not hung on.
    let within = Duration::from_secs(10);
    let mut busy = Vec::new();
    for n in 0..3 {
        busy.push(asking(addr, &format!("/slow/{n}")).await);
    }
    arrived.acquire_many(3).await.unwrap().forget();
    // Every connection is busy: the newcomer is made by the kernel but not served (the server
    // looks for an idle one each second; three looks find none).
    let mut first = asking(addr, "/healthz").await;
    assert_eq!(answer(&mut first, Duration::from_secs(3)).await, None, "served past the cap with none idle");
    // Connection 0 turns idle (answered, kept alive): it is closed for the newcomer, who is served.
    gates[0].add_permits(1);
    let a = answer(&mut busy[0], within).await.expect("the first slow request is answered");
    assert!(a.starts_with("HTTP/1.1 200"), "{a}");
    let a = answer(&mut first, within).await.expect("served once a connection turned idle");
    assert!(a.starts_with("HTTP/1.1 200"), "{a}");
    assert!(is_closed(&mut busy[0], within).await, "the idle connection was closed for it");
    // Two idle now (the newcomer, then connection 1): the one idle longer goes first.
    gates[1].add_permits(1);
    let a = answer(&mut busy[1], within).await.expect("the second slow request is answered");
    assert!(a.starts_with("HTTP/1.1 200"), "{a}");
    let mut next = asking(addr, "/healthz").await;
    let a = answer(&mut next, within).await.expect("the next newcomer is served at once");
    assert!(a.starts_with("HTTP/1.1 200"), "{a}");
    assert!(is_closed(&mut first, within).await, "the connection idle the longest was closed");
    // The server chose once, before serving `next`: connection 1 is still open.
    let mut byte = [0u8; 1];
    let kept = matches!(busy[1].try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    assert!(kept, "the one idle since later was kept");
    // The busy one was never touched: it gets its answer.
    gates[2].add_permits(1);
    let a = answer(&mut busy[2], within).await.expect("the busy request is answered");
    assert!(a.starts_with("HTTP/1.1 200"), "{a}");
}

/// At the connection cap, a connection still sending its request head (slowloris) makes room
/// for a newcomer at once, though hyper would wait for its head until the header read time;
/// a response still being sent counts as a request in progress and is never cut for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_a_slowloris_makes_room_and_a_response_being_sent_is_kept() {
    let mut limits = limits(2);
    limits.header_read_timeout = Duration::from_secs(60);
    let Gated { addr, gates, .. } = gated_server(limits).await;
    let within = Duration::from_secs(10);
    // A response whose head and first bytes are out, its body not done: its handler has
    // returned, but the request is still in progress.
    let mut sending = asking(addr, "/stream/0").await;
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("first") {
        let part = answer(&mut sending, within).await.expect("the first bytes are sent");
        assert!(!part.is_empty() && !part.starts_with("error"), "{part}");
        got.extend_from_slice(part.as_bytes());
    }
    assert!(got.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&got));
    // A head that never ends, opened after that response began (connections are accepted in
    // the order they were made, so it is open before the newcomer is).
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: a").await.unwrap();
    let mut newcomer = asking(addr, "/healthz").await;
    let a = answer(&mut newcomer, within).await.expect("the newcomer is served before the header read time");
    assert!(a.starts_with("HTTP/1.1 200"), "{a}");
    assert!(is_closed(&mut slow, within).await, "the slowloris connection was closed for it");
    // The response being sent was kept whole.
    gates[0].add_permits(1);
    while !String::from_utf8_lossy(&got).ends_with("0\r\n\r\n") {
        let part = answer(&mut sending, within).await.expect("the rest of the body is sent");
        assert!(!part.is_empty() && !part.starts_with("error"), "the response was cut: {part:?}");
        got.extend_from_slice(part.as_bytes());
    }
    assert!(String::from_utf8_lossy(&got).contains("last"), "{}", String::from_utf8_lossy(&got));
}

/// Raises this process's open-file limit to its hard limit: the test holds both ends of its
/// connections.
fn more_files() {
    if let Ok(limit) = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum.ok_or(()) {
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit { current: Some(limit), maximum: Some(limit) },
        );
    }
}

/// How many idle connections the served-while-idle test holds (the bench goes to 10,000).
const IDLE: usize = 2000;

on_both_stacks! {
    async fn signed_in_requests_are_served_while_idle_connections_are_held(app) {
        more_files();
        let browser = Browser::default();
        crate::gateway::user(&app, "ann", turtlemen_domain::Role::User).await;
        let (landed, _) = browser.navigate(&app, "/subscriptions", "ann").await;
        assert!(landed.ends_with("/subscriptions"), "{landed}");
        // Half never send a byte; half made one request and sit on the kept-alive connection.
        let mut idle = Vec::with_capacity(IDLE);
        for i in 0..IDLE {
            let Ok(mut conn) = TcpStream::connect(app.addr).await else { break };
            if i % 2 == 1 {
                conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
            }
            idle.push(conn);
        }
        assert_eq!(idle.len(), IDLE, "the idle connections were opened");
        for _ in 0..20 {
            let res = app
                .client
                .get(app.url("/api/v1/me"))
                .header("cookie", browser.cookie_header())
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .expect("a real request is answered while idle connections are held");
            assert_eq!(res.status(), 200);
            assert_eq!(res.json::<serde_json::Value>().await.unwrap()["username"], "ann");
        }
        // They were all still held (the default header read time is 10 s): the load was real.
        let mut buf = [0u8; 1];
        let open = idle.iter().filter(|c| matches!(c.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)).count();
        assert!(open >= IDLE / 2 - 10, "the silent connections were still open: {open}");
    }
}

/// Sends a 50 MB body to `path` at `addr` (whose limit is smaller) as a client that writes its
/// whole body before it reads (Python's `http.client` does): the server must not reset the
/// connection under it. The status the client then reads.
async fn send_large_body(addr: SocketAddr, path: &str) -> u16 {
    const SIZE: usize = 50 * 1024 * 1024;
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {SIZE}\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 1024 * 1024];
    for _ in 0..SIZE / chunk.len() {
        let sent = tokio::time::timeout(Duration::from_secs(30), conn.write_all(&chunk)).await;
        assert!(matches!(sent, Ok(Ok(()))), "the body was cut off by the server: {sent:?}");
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), conn.read_to_end(&mut answer)).await;
    assert!(matches!(read, Ok(Ok(_))), "the answer was read, not a reset: {read:?}");
    let text = String::from_utf8_lossy(&answer);
    text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("an answer: {text}"))
}

on_both_stacks! {
    async fn a_body_refused_by_its_size_is_answered_not_reset(app) {
        for _ in 0..3 {
            assert_eq!(send_large_body(app.addr, "/api/v1/anything").await, 413);
        }
        // The connection's lingering did not stop the server.
        assert_eq!(app.get("/healthz").await.status(), 200);
    }
}

/// Straight to a server alone (no gateway in front): the foundation's body limit answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_refused_by_a_server_alone_is_answered_not_reset() {
    let router = axum::Router::new().route(
        "/api/echo",
        axum::routing::post(|axum::Json(v): axum::Json<serde_json::Value>| async move { axum::Json(v) }),
    );
    let limits = limits(100);
    let router = turtlemen_http::layers::foundation(router, &limits, turtlemen_http::layers::plain_error_page);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(turtlemen_http::server::serve(listener, router, limits, std::future::pending()));
    for _ in 0..3 {
        assert_eq!(send_large_body(addr, "/api/echo").await, 413);
    }
}
