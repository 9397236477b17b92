//! The HTTP foundation: health, error shapes, request ids, limits, timeouts, shutdown; `/metrics`
//! only to this machine on the listener users reach, or on a listener of its own.

use crate::on_both_stacks;
use axum::Json;
use axum::Router;
use axum::routing::{get, post};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turtlemen_config::{Config, Settings};
use turtlemen_http::layers;

on_both_stacks! {
    async fn health_and_readiness(app) {
        let res = app.get("/healthz").await;
        assert_eq!(res.status(), 200);
        let (status, body) = app.get_json("/readyz").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["ready"], true);
        assert_eq!(body["database"], "ok");
        assert_eq!(body["session_store"], "ok");
        app.stop().await;
    }

    async fn metrics_count_requests(app) {
        app.get("/api/v1/nothing").await;
        let res = app.get("/metrics").await;
        assert_eq!(res.status(), 200);
        let text = res.text().await.unwrap();
        assert!(text.contains("turtlemen_http_requests_total{route=\"api\",method=\"GET\",status=\"4xx\"}"), "{text}");
        assert!(text.contains("turtlemen_http_request_duration_seconds_bucket"));
    }

    async fn metrics_move_to_a_listener_of_their_own(app) {
        assert_eq!(app.metrics_addr, None);
        let app = app.restart_with(|s| s.metrics_listen = Some("127.0.0.1:0".into())).await;
        let metrics = app.metrics_addr.expect("a metrics listener");
        assert_ne!(metrics, app.addr);
        app.get("/api/v1/nothing").await;
        assert_eq!(app.get("/metrics").await.status(), 404, "the main listener publishes no figures");
        assert_eq!(app.get("/healthz").await.status(), 200, "and still answers the probes");
        let at = |path: &str| app.client.get(format!("http://{metrics}{path}")).send();
        let res = at("/metrics").await.unwrap();
        assert_eq!(res.status(), 200);
        let text = res.text().await.unwrap();
        assert!(text.contains("turtlemen_http_requests_total{route=\"api\",method=\"GET\",status=\"4xx\"}"), "{text}");
        assert_eq!(at("/healthz").await.unwrap().status(), 200);
        assert_eq!(at("/readyz").await.unwrap().status(), 200);
        for other in ["/api/v1/nothing", "/", "/auth/login", "/media/x"] {
            assert_eq!(at(other).await.unwrap().status(), 404, "{other}: only the figures and the probes");
        }
        app.stop().await;
        assert!(tokio::net::TcpStream::connect(metrics).await.is_err(), "closed with the instance");
    }

    async fn metrics_are_answered_only_to_this_machine(app) {
        let app = app.restart_with(|s| s.trusted_proxies = Some("127.0.0.1/32".into())).await;
        let from = |client: Option<&'static str>| {
            let mut req = app.client.get(app.url("/metrics"));
            if let Some(c) = client {
                req = req.header("x-forwarded-for", c);
            }
            async move { req.send().await.unwrap().status() }
        };
        assert_eq!(from(None).await, 200, "a client on this machine");
        assert_eq!(from(Some("127.0.0.1")).await, 200, "on this machine behind a trusted proxy");
        assert_eq!(from(Some("203.0.113.9")).await, 404, "elsewhere, behind a trusted proxy");
        assert_eq!(app.get("/healthz").await.status(), 200, "the probes answer anyone");
        app.stop().await;
    }

    async fn api_errors_have_one_json_shape(app) {
        let res = app.get("/api/v1/no-such-thing").await;
        assert_eq!(res.status(), 404);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let body: serde_json::Value = res.json().await.unwrap();
        let obj = body.as_object().unwrap();
        assert_eq!(obj.len(), 2, "exactly error and message: {body}");
        assert_eq!(body["error"], "not_found");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    async fn browsers_get_error_pages(app) {
        let res = app.get_page("/no-such-page").await;
        assert_eq!(res.status(), 404);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let html = res.text().await.unwrap();
        assert!(html.contains("href=\"/\""), "a way home: {html}");
    }

    async fn home_page_is_served(app) {
        let res = app.get_page("/").await;
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        assert!(res.text().await.unwrap().contains("Turtlemen"));
    }

    async fn request_ids(app) {
        let res = app.get("/healthz").await;
        let made = res.headers()["x-request-id"].to_str().unwrap().to_string();
        assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");

        let res = app.client.get(app.url("/healthz")).header("x-request-id", "edge-42.a_b").send().await.unwrap();
        assert_eq!(res.headers()["x-request-id"], "edge-42.a_b", "a well-formed upstream id is kept");

        for forged in ["has space", "x\"}{\"admin\":true", &"a".repeat(65)] {
            let res = app.client.get(app.url("/healthz")).header("x-request-id", forged).send().await.unwrap();
            let id = res.headers()["x-request-id"].to_str().unwrap();
            assert_ne!(id, forged);
            assert!(uuid::Uuid::parse_str(id).is_ok());
        }
    }

    async fn oversized_headers_are_refused(app) {
        let res = app.client.get(app.url("/healthz")).header("x-big", "a".repeat(64 * 1024)).send().await.unwrap();
        assert_eq!(res.status(), 431);
        // And the server keeps serving.
        assert_eq!(app.get("/healthz").await.status(), 200);
    }
}

/// A slow client that never finishes its headers is cut off after the header read timeout.
#[tokio::test]
async fn slow_headers_are_cut_off() {
    let (mut settings, dir, _) = crate::helpers::fresh_settings(crate::helpers::Stack::Embedded).await.unwrap();
    settings.header_read_timeout_secs = Some(1);
    let app = crate::helpers::TestApp::spawn_with(settings, dir, None).await;
    let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut buf)).await;
    let read = read.expect("the server closes the connection instead of waiting forever");
    assert!(read.is_ok());
    let text = String::from_utf8_lossy(&buf);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
}

/// The foundation stack around a router made for the test: body limits, malformed JSON,
/// timeouts and panics all come back as clean JSON errors, and shutdown drains.
mod foundation {
    use super::*;
    use std::sync::Arc;
    use tokio::sync::Notify;

    fn test_router(arrived: Arc<Notify>) -> Router {
        Router::new()
            .route("/api/echo", post(|Json(v): Json<serde_json::Value>| async move { Json(v) }))
            .route(
                "/api/slow",
                get(|| async move {
                    arrived.notify_one();
                    tokio::time::sleep(Duration::from_millis(600)).await;
                    "done"
                }),
            )
            .route(
                "/api/hang",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "never"
                }),
            )
            .route(
                "/api/panic",
                get(|| async {
                    #[allow(clippy::panic)]
                    if true {
                        panic!("secret internal detail");
                    }
                    "unreachable"
                }),
            )
    }

    struct Started {
        addr: std::net::SocketAddr,
        stop: tokio::sync::oneshot::Sender<()>,
        task: tokio::task::JoinHandle<()>,
        arrived: Arc<Notify>,
    }

    async fn start() -> Started {
        let config = Config::resolve(Settings {
            max_body_bytes: Some(1024),
            request_timeout_secs: Some(1),
            shutdown_timeout_secs: Some(5),
            ..Settings::default()
        })
        .unwrap();
        let arrived = Arc::new(Notify::new());
        let router = layers::foundation(test_router(arrived.clone()), &config.http, layers::plain_error_page);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(turtlemen_http::server::serve(listener, router, config.http, async {
            let _ = rx.await;
        }));
        Started { addr, stop: tx, task, arrived }
    }

    async fn json_error(res: reqwest::Response) -> (u16, serde_json::Value) {
        let status = res.status().as_u16();
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        (status, res.json().await.unwrap())
    }

    #[tokio::test]
    async fn bad_bodies_timeouts_and_panics() {
        // Keep the stop sender alive: dropping it shuts the server down.
        let Started { addr, stop: _stop, .. } = start().await;
        let client = reqwest::Client::new();
        let url = |p: &str| format!("http://{addr}{p}");

        let ok = client
            .post(url("/api/echo"))
            .header("content-type", "application/json")
            .body("{\"a\":1}")
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);

        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(4096));
        let res =
            client.post(url("/api/echo")).header("content-type", "application/json").body(big).send().await.unwrap();
        let (status, body) = json_error(res).await;
        assert_eq!((status, body["error"].as_str()), (413, Some("payload_too_large")));

        let res = client
            .post(url("/api/echo"))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        let (status, body) = json_error(res).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "{body}");

        let res = client.post(url("/api/echo")).body("{}").send().await.unwrap();
        let (status, body) = json_error(res).await;
        assert_eq!((status, body["error"].as_str()), (415, Some("unsupported_media_type")));

        let res = client.get(url("/api/hang")).send().await.unwrap();
        let (status, body) = json_error(res).await;
        assert_eq!((status, body["error"].as_str()), (408, Some("request_timeout")));

        let res = client.get(url("/api/panic")).send().await.unwrap();
        let (status, body) = json_error(res).await;
        assert_eq!((status, body["error"].as_str()), (500, Some("internal_error")));
        assert!(!body.to_string().contains("secret internal detail"));
    }

    #[tokio::test]
    async fn shutdown_finishes_in_flight_requests_and_stops_accepting() {
        let Started { addr, stop, task, arrived } = start().await;
        let client = reqwest::Client::new();
        let in_flight = tokio::spawn({
            let client = client.clone();
            async move { client.get(format!("http://{addr}/api/slow")).send().await.unwrap().text().await.unwrap() }
        });
        arrived.notified().await;
        stop.send(()).unwrap();
        assert_eq!(in_flight.await.unwrap(), "done");
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("drained within the bound").unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer accepting");
    }

    /// A front that takes `/api/front/*` and runs the foundation itself (as the gateway does).
    struct TestFront(layers::Foundation);

    impl turtlemen_http::server::Front for TestFront {
        fn takes(&self, req: &axum::extract::Request) -> bool {
            req.uri().path().starts_with("/api/front/")
        }

        fn call(self: Arc<Self>, req: axum::extract::Request) -> turtlemen_http::server::FrontFuture {
            Box::pin(async move {
                self.0
                    .run(req, |req| async move {
                        #[allow(clippy::panic)]
                        if req.uri().path() == "/api/front/panic" {
                            panic!("secret front detail");
                        }
                        axum::response::IntoResponse::into_response("front")
                    })
                    .await
            })
        }
    }

    #[tokio::test]
    async fn a_front_answers_what_it_takes_inside_the_foundation_and_the_router_the_rest() {
        let config = Config::resolve(Settings::default()).unwrap();
        let foundation = layers::Foundation::new(&config.http, layers::plain_error_page, None, None);
        let rest = foundation.wrap(Router::new().route("/api/rest", get(|| async { "rest" })));
        let app = turtlemen_http::server::App::Front { front: Arc::new(TestFront(foundation)), rest };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_stop, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(turtlemen_http::server::serve(listener, app, config.http, async {
            let _ = rx.await;
        }));
        let client = reqwest::Client::new();
        let url = |p: &str| format!("http://{addr}{p}");

        let res = client.get(url("/api/front/x")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers().contains_key("x-request-id"), "the foundation ran around the front");
        assert!(res.headers().contains_key("content-security-policy"));
        assert_eq!(res.text().await.unwrap(), "front");

        let res = client.get(url("/api/rest")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers().contains_key("x-request-id"));
        assert_eq!(res.text().await.unwrap(), "rest");

        // Neither the front's nor the router's: the router's 404, rendered by the foundation.
        let (status, body) = json_error(client.get(url("/api/elsewhere")).send().await.unwrap()).await;
        assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "{body}");

        // A panic in the front is caught and rendered without its detail.
        let (status, body) = json_error(client.get(url("/api/front/panic")).send().await.unwrap()).await;
        assert_eq!((status, body["error"].as_str()), (500, Some("internal_error")));
        assert!(!body.to_string().contains("secret front detail"));
    }
}

/// `/readyz` says 503 and names the failing store when the database is gone.
#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let db = turtlemen_db::Db::connect(&turtlemen_db::DbOptions {
        url: format!("sqlite://{}", dir.path().join("t.db").display()),
        max_connections: 1,
        search_path: None,
        create_if_missing: true,
    })
    .await
    .unwrap();
    db.close().await;
    let router = turtlemen_http::health::router(turtlemen::health::readiness(Some(&db), None));
    let res = tower::ServiceExt::oneshot(
        router,
        axum::http::Request::get("/readyz").body(axum::body::Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 503);
    let bytes = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["database"], "unreachable");
    assert_eq!(body["ready"], false);
}
