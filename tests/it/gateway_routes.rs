//! The gateway's route table from configuration, with real upstreams: host, path and method
//! matching (first match wins), each route's auth mode (on both stacks), body limits, timeouts,
//! an upstream that is down, h2c upstreams, streaming both ways, request ids and forwarded
//! headers passed on, and the per-route metrics.

use crate::gateway::{Browser, user};
use crate::helpers::{Stack, TestApp, fresh_settings};
use futures::StreamExt;
use reqwest::StatusCode;
use turtlemen_config::Settings;
use turtlemen_domain::Role;

/// The app with `toml` laid under the test settings (for `[[routes]]` and `[upstreams]`).
pub async fn spawn_with_toml(stack: Stack, toml: &str) -> Option<TestApp> {
    let (base, dir, schema) = fresh_settings(stack).await?;
    let file: Settings = toml::from_str(toml).unwrap();
    Some(TestApp::spawn_with(base.over(file), dir, schema).await)
}

fn table(echo: std::net::SocketAddr) -> String {
    format!(
        r#"
        [[routes]]
        name = "t-tenant"
        host = "*.tenant.test"
        path = "/"
        upstream = "echo"
        auth = "none"

        [[routes]]
        name = "t-echo-write"
        path = "/echo"
        methods = ["POST", "PUT"]
        upstream = "echo"
        auth = "optional"
        max_body_bytes = 1024

        [[routes]]
        name = "t-echo"
        path = "/echo"
        upstream = "echo"
        auth = "required"

        [[routes]]
        name = "t-stream"
        path = "/stream"
        upstream = "echo"
        auth = "none"
        max_body_bytes = 1073741824
        timeout_secs = 0

        [[routes]]
        name = "t-down"
        path = "/down"
        upstream = "down"
        auth = "none"

        [[routes]]
        name = "t-slow"
        path = "/slow"
        upstream = "slow"
        auth = "none"

        [[routes]]
        name = "t-h2"
        path = "/h2"
        upstream = "h2"
        auth = "none"

        [[routes]]
        name = "auth"
        path = "/auth"
        upstream = "auth"
        auth = "none"

        [[routes]]
        name = "oauth2"
        path = "/oauth2"
        upstream = "gateway"
        auth = "none"

        [[routes]]
        name = "root"
        path = "/"
        upstream = "api"
        auth = "optional"

        [upstreams.echo]
        urls = ["http://{echo}"]

        [upstreams.h2]
        urls = ["http://{echo}"]
        http2 = true

        [upstreams.slow]
        urls = ["http://{echo}"]
        read_timeout_secs = 1

        [upstreams.down]
        urls = ["http://127.0.0.1:1"]
        connect_timeout_ms = 500
        "#
    )
}

async fn routes_auth_modes(stack: Stack) {
    let echo = crate::upstream::spawn().await;
    let Some(app) = spawn_with_toml(stack, &table(echo)).await else { return };
    user(&app, "ann", Role::User).await;

    // `required`: an API client gets 401, a browser is sent to sign in; nothing reaches the upstream.
    let res = app.client.get(app.url("/echo/x")).header("accept", "application/json").send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = app.client.get(app.url("/echo/x")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/oauth2/start?rd=%2Fecho%2Fx");

    // Signed in, the upstream gets the identity — and never the client's own identity headers.
    let browser = Browser::default();
    let (landed, _) = browser.navigate(&app, "/echo/after-sign-in", "ann").await;
    assert_eq!(landed, app.url("/echo/after-sign-in"));
    let seen: serde_json::Value = app
        .client
        .get(app.url("/echo/who"))
        .header("cookie", browser.cookie_header())
        .header("x-auth-request-user", "admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["path"], "/echo/who");
    assert_eq!(seen["headers"]["x-auth-request-preferred-username"], "ann");
    assert_ne!(seen["headers"]["x-auth-request-user"], "admin");
    assert!(seen["headers"]["authorization"].as_str().unwrap().starts_with("Bearer "));
    assert!(seen["headers"].get("cookie").is_some(), "cookies pass on");

    // Method: a POST falls to the `optional` route, anonymous is fine there.
    let res = app.client.post(app.url("/echo/x")).body("hello").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let seen: serde_json::Value = res.json().await.unwrap();
    assert_eq!((seen["method"].as_str(), seen["body_bytes"].as_u64()), (Some("POST"), Some(5)));
    assert!(seen["headers"].get("x-auth-request-user").is_none());

    // `none` on the tenant host: the path is the upstream's, the built-in routes are not consulted.
    let res = app.client.get(app.url("/auth/login")).header("host", "a.b.tenant.test").send().await.unwrap();
    let seen: serde_json::Value = res.json().await.unwrap();
    assert_eq!(seen["path"], "/auth/login");
    assert_eq!(seen["headers"]["host"], "a.b.tenant.test");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_pick_upstream_and_auth_mode_on_sqlite() {
    routes_auth_modes(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_pick_upstream_and_auth_mode_on_postgres_and_redis() {
    routes_auth_modes(Stack::External).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxying_limits_failures_and_metrics() {
    let echo = crate::upstream::spawn().await;
    let app = spawn_with_toml(Stack::Embedded, &table(echo)).await.unwrap();

    // Request ids and forwarded headers go on; a client's own X-Forwarded-* are replaced.
    let seen: serde_json::Value = app
        .client
        .get(app.url("/stream/ids"))
        .header("x-request-id", "req-abc-123")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-host", "evil.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["headers"]["x-request-id"], "req-abc-123");
    assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["headers"]["x-forwarded-host"], app.addr.to_string());
    assert_eq!(seen["version"], "HTTP/1.1");

    // Per-route body limit: declared too large, or streamed past the limit, is a 413.
    let res = app.client.post(app.url("/echo/x")).body(vec![b'x'; 2048]).send().await.unwrap();
    assert_eq!(res.status(), 413);
    let chunks = futures::stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 1024])));
    let res = app
        .client
        .post(app.url("/echo/x"))
        .header("accept", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "payload_too_large");

    // An upstream that is down: 503 at once, with an error body; one that is slow: 504.
    let started = std::time::Instant::now();
    let res = app.client.get(app.url("/down/x")).header("accept", "application/json").send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "service_unavailable");
    let res = app.client.get(app.url("/down/x")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.text().await.unwrap().contains("<html"), "a page for browsers");
    let res = app.client.get(app.url("/slow/slow")).send().await.unwrap();
    assert_eq!(res.status(), 504);
    assert!(started.elapsed() < std::time::Duration::from_secs(4), "{:?}", started.elapsed());

    // h2c upstream.
    let seen: serde_json::Value = app.client.get(app.url("/h2/x")).send().await.unwrap().json().await.unwrap();
    assert_eq!(seen["version"], "HTTP/2.0");
    // Told the routed authority once, as `:authority`: a Turtlemen role behind it accepts it.
    assert_eq!(seen["authority"], app.addr.to_string(), "{seen}");
    assert!(seen["headers"].get("host").is_none(), "{seen}");
    assert_eq!(seen["authority_fault"], serde_json::Value::Null, "{seen}");
    // An HTTP/1.0 client without Host reaches an HTTP/1.1 upstream with the upstream's own.
    let (status, _, body) = crate::gateway_probe::exchange(app.addr, "GET /stream/x HTTP/1.0\r\n\r\n").await;
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200, "{seen}");
    assert!(seen["headers"]["host"].is_string(), "{seen}");
    assert_eq!(seen["authority_fault"], serde_json::Value::Null, "{seen}");

    // Bodies stream both ways.
    const N: usize = 64 * 1024 * 1024;
    let chunks = futures::stream::iter((0..N / 65536).map(|_| Ok::<_, std::io::Error>(vec![b'u'; 65536])));
    let res = app.client.put(app.url("/stream/up")).body(reqwest::Body::wrap_stream(chunks)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["body_bytes"], N);
    let res = app.client.get(app.url(&format!("/stream/big/{N}"))).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let mut got = 0;
    let mut body = res.bytes_stream();
    while let Some(chunk) = body.next().await {
        got += chunk.unwrap().len();
    }
    assert_eq!(got, N);

    // Per-route metrics.
    let text = app.get("/metrics").await.text().await.unwrap();
    for line in [
        r#"turtlemen_http_gateway_upstream_errors_total{route="t-down",kind="connect"}"#,
        r#"turtlemen_http_gateway_upstream_errors_total{route="t-slow",kind="timeout"} 1"#,
        r#"turtlemen_http_gateway_route_requests_total{route="t-down",status="5xx"} 2"#,
        r#"turtlemen_http_gateway_route_requests_total{route="t-echo-write",status="4xx"} 2"#,
        r#"turtlemen_http_gateway_route_duration_seconds_count{route="t-stream"} 4"#, // three streams and the HTTP/1.0 request
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_hosts_are_misdirected_when_every_route_names_a_host() {
    let echo = crate::upstream::spawn().await;
    let toml = format!(
        r#"
        [[routes]]
        name = "h-only"
        host = "video.example.org"
        path = "/"
        upstream = "echo"
        auth = "none"

        [upstreams.echo]
        urls = ["http://{echo}"]
        "#
    );
    let app = spawn_with_toml(Stack::Embedded, &toml).await.unwrap();
    let res = app.client.get(app.url("/x")).header("host", "VIDEO.example.org:443").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = app.client.get(app.url("/x")).header("host", "other.example.org").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::MISDIRECTED_REQUEST);
    let res = app.client.get(app.url("/x")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::MISDIRECTED_REQUEST);
    assert!(res.text().await.unwrap().contains("<html"));
    // Ambiguous paths are refused before any route is tried.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(b"GET /a/../x HTTP/1.1\r\nHost: video.example.org\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
}

/// Reads one response from `conn`: its status, and the body its `Content-Length` gives (or what
/// arrives before the connection ends, with `false`).
async fn read_response(conn: &mut tokio::net::TcpStream, head_only: bool) -> (u16, Vec<u8>, bool) {
    let (status, _, body, whole) = read_response_head(conn, head_only).await;
    (status, body, whole)
}

/// [`read_response`], with the head's header lines (lowercased). Reads the head a byte at a
/// time and then exactly the body, never into a response that follows on the connection (a
/// pipelined one may arrive in the same segment); bytes sent past a body are caught when the
/// next response is read, as they would not parse.
async fn read_response_head(conn: &mut tokio::net::TcpStream, head_only: bool) -> (u16, String, Vec<u8>, bool) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    while !buf.ends_with(b"\r\n\r\n") {
        let byte = conn.read_u8().await.expect("the connection ended inside the head");
        buf.push(byte);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    assert!(res.parse(&buf).unwrap().is_complete(), "a response head: {}", String::from_utf8_lossy(&buf));
    let len = res.headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-length"));
    let len: usize = std::str::from_utf8(len.unwrap().value).unwrap().parse().unwrap();
    let (status, len) = (res.code.unwrap(), if head_only { 0 } else { len });
    let head = String::from_utf8_lossy(&buf).to_lowercase();
    let mut body = Vec::with_capacity(len);
    let mut chunk = vec![0u8; 256 * 1024];
    while body.len() < len {
        let want = (len - body.len()).min(chunk.len());
        match conn.read(&mut chunk[..want]).await {
            Ok(0) | Err(_) => return (status, head, body, false),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    (status, head, body, true)
}

/// Large bodies of known length are spliced from the upstream's socket to the client's: they
/// arrive byte for byte, the client's connection carries on with more requests, and an upstream
/// that breaks off mid-body ends the client's connection instead of leaving it waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_pass_byte_exact_past_the_gateway() {
    use tokio::io::AsyncWriteExt;
    let echo = crate::upstream::spawn().await;
    // A route of its own: metrics are the process's, and other tests count theirs.
    let toml = format!(
        r#"
        [[routes]]
        name = "t-splice"
        path = "/stream"
        upstream = "echo"
        auth = "none"
        max_body_bytes = 1073741824
        timeout_secs = 0

        [upstreams.echo]
        urls = ["http://{echo}"]
        "#
    );
    let app = spawn_with_toml(Stack::Embedded, &toml).await.unwrap();
    let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    for n in [8 * 1024 * 1024 + 12345, 1024 * 1024, 3 * 1024 * 1024 + 1] {
        let get = format!("GET /stream/sized/{n} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        conn.write_all(get.as_bytes()).await.unwrap();
        let (status, body, whole) = read_response(&mut conn, false).await;
        assert_eq!((status, body.len(), whole), (200, n, true));
        assert!(body == crate::upstream::pattern(n), "{n} bytes arrive in order, unchanged");
    }
    // HEAD and a small answer on the same connection, then two requests sent back to back.
    conn.write_all(b"HEAD /stream/sized/5000000 HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    assert_eq!(read_response(&mut conn, true).await.0, 200);
    let two = "GET /stream/sized/2000000 HTTP/1.1\r\nHost: localhost\r\n\r\nGET /stream/x HTTP/1.1\r\nHost: localhost\r\n\r\n";
    conn.write_all(two.as_bytes()).await.unwrap();
    let (status, body, _) = read_response(&mut conn, false).await;
    assert_eq!(status, 200);
    assert!(body == crate::upstream::pattern(2_000_000));
    let (status, body, _) = read_response(&mut conn, false).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["path"], "/stream/x");

    // An upstream that breaks off: the client gets the head, part of the body, then the end.
    let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(b"GET /stream/short/4000000 HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), read_response(&mut conn, false));
    let (status, body, whole) = read.await.expect("the connection ends, it does not hang");
    assert_eq!((status, whole), (200, false));
    assert!(body.len() < 4_000_000 && body[..] == crate::upstream::pattern(4_000_000)[..body.len()]);

    // A client that goes away mid-body leaves the gateway serving the next one.
    let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(b"GET /stream/sized/67108864 HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut some = vec![0u8; 1024 * 1024];
    tokio::io::AsyncReadExt::read_exact(&mut conn, &mut some).await.unwrap();
    drop(conn);
    let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(b"GET /stream/sized/1048576 HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    assert_eq!(read_response(&mut conn, false).await.1, crate::upstream::pattern(1024 * 1024));

    // Uploads: the upstream reads every byte in order; the client's connection closes after the
    // answer. With `Expect: 100-continue` (as curl sends), the body follows the interim answer.
    let sha256 = |data: &[u8]| -> String {
        ring::digest::digest(&ring::digest::SHA256, data).as_ref().iter().map(|b| format!("{b:02x}")).collect()
    };
    for (n, expect) in [(6 * 1024 * 1024 + 7, false), (2 * 1024 * 1024, true)] {
        let data = crate::upstream::pattern(n);
        let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let expect_header = if expect { "Expect: 100-continue\r\n" } else { "" };
        let head = format!("PUT /stream/up HTTP/1.1\r\nHost: localhost\r\nContent-Length: {n}\r\n{expect_header}\r\n");
        conn.write_all(head.as_bytes()).await.unwrap();
        if expect {
            let mut interim = [0u8; 25];
            tokio::io::AsyncReadExt::read_exact(&mut conn, &mut interim).await.unwrap();
            assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        } else {
            // Part of the body comes with the head, as clients write it.
            conn.write_all(&data[..100_000]).await.unwrap();
        }
        let sent = if expect { 0 } else { 100_000 };
        conn.write_all(&data[sent..]).await.unwrap();
        let (status, head, body, _) = read_response_head(&mut conn, false).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert!(head.contains("\r\nconnection: close\r\n"), "the client is told not to reuse it: {head}");
        let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((seen["body_bytes"].as_u64(), seen["sha256"].as_str()), (Some(n as u64), Some(&*sha256(&data))));
    }
    // Most of those bytes went by splice(2), not through hyper (the counter is the process's).
    let text = app.get("/metrics").await.text().await.unwrap();
    let spliced: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("turtlemen_http_gateway_spliced_bytes_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(spliced >= 20 * 1024 * 1024, "{spliced} bytes spliced");
}

/// A pool of two addresses, one a closed port: every request with a body reaches the other,
/// whole — small, chunked, and large enough to be spliced — including those that met the
/// closed port first (they are sent on before any of their body is handed over).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_with_bodies_pass_a_pool_address_that_refuses_connections() {
    let echo = crate::upstream::spawn().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let toml = format!(
        r#"
        [[routes]]
        name = "t-pair"
        path = "/pair"
        upstream = "pair"
        auth = "none"
        max_body_bytes = 16777216

        [upstreams.pair]
        urls = ["http://{closed}", "http://{echo}"]
        "#
    );
    let app = spawn_with_toml(Stack::Embedded, &toml).await.unwrap();
    let sha256 = |data: &[u8]| -> String {
        ring::digest::digest(&ring::digest::SHA256, data).as_ref().iter().map(|b| format!("{b:02x}")).collect()
    };
    // Sent together, so that several meet the closed port before it is left out.
    let sizes = [10, 2000, 300_000, 1536 * 1024 + 3, 5, 70_000, 2 * 1024 * 1024, 1];
    let sends = sizes.iter().enumerate().map(|(n, &len)| {
        let data = crate::upstream::pattern(len);
        let req = app.client.post(app.url(&format!("/pair/{n}")));
        // Every other one chunked (no length), the rest with a Content-Length.
        let req = if n % 2 == 0 {
            req.body(data.clone())
        } else {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> = data.chunks(65536).map(|c| Ok(c.to_vec())).collect();
            req.body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        };
        async move { (req.send().await.unwrap(), data) }
    });
    for (res, data) in futures::future::join_all(sends).await {
        assert_eq!(res.status(), StatusCode::OK);
        let seen: serde_json::Value = res.json().await.unwrap();
        assert_eq!(seen["method"], "POST");
        assert_eq!(
            (seen["body_bytes"].as_u64(), seen["sha256"].as_str()),
            (Some(data.len() as u64), Some(&*sha256(&data)))
        );
    }
    // The closed port was met (and so left out), and nobody was answered 503 for it.
    let text = app.get("/metrics").await.text().await.unwrap();
    let count = |prefix: &str| -> u64 {
        text.lines().find_map(|l| l.strip_prefix(prefix)).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    };
    assert!(count(r#"turtlemen_http_gateway_upstream_errors_total{route="t-pair",kind="connect"} "#) >= 1, "{text}");
    assert_eq!(count(r#"turtlemen_http_gateway_route_requests_total{route="t-pair",status="5xx"} "#), 0);
    assert_eq!(count(r#"turtlemen_http_gateway_route_requests_total{route="t-pair",status="2xx"} "#), 8);
}
