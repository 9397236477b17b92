//! WebSockets through the gateway to an upstream (tokio-tungstenite on both ends): the upgrade
//! request obeys the route's auth mode, carries the identity, and messages echo both ways.

use crate::gateway::{Browser, user};
use crate::gateway_routes::spawn_with_toml;
use crate::helpers::Stack;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use turtlemen_domain::Role;

/// A WebSocket echo server that also answers the handshake with `x-seen-user`: the user the
/// gateway named in `X-Auth-Request-Preferred-Username`.
async fn ws_echo() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                #[allow(clippy::result_large_err)] // the callback's type is tungstenite's
                let seen = |req: &Request, mut res: Response| {
                    let user = req.headers().get("x-auth-request-preferred-username").cloned();
                    res.headers_mut().insert("x-seen-user", user.unwrap_or_else(|| "nobody".parse().unwrap()));
                    Ok(res)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, seen).await else { return };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn websocket_through_the_gateway(stack: Stack) {
    let upstream = ws_echo().await;
    let toml = format!(
        r#"
        [[routes]]
        name = "ws-chat"
        path = "/ws"
        upstream = "chat"
        auth = "required"

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

        [upstreams.chat]
        urls = ["http://{upstream}"]
        "#
    );
    let Some(app) = spawn_with_toml(stack, &toml).await else { return };
    user(&app, "ann", Role::User).await;
    let url = format!("ws://{}/ws/room", app.addr);

    // Anonymous: the upgrade is refused like any request on a required route.
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 401),
        other => panic!("expected 401, got {:?}", other.map(|(_, r)| r.status())),
    }

    let browser = Browser::default();
    browser.navigate(&app, "/oauth2/start?rd=/", "ann").await;
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut().insert("cookie", browser.cookie_header().parse().unwrap());
    req.headers_mut().insert("x-auth-request-preferred-username", "admin".parse().unwrap());
    let (mut ws, res) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(res.status(), 101);
    assert_eq!(res.headers()["x-seen-user"], "ann", "identity from the session, not from the client");
    for text in ["hello", "über", &"x".repeat(100_000)] {
        ws.send(Message::text(text)).await.unwrap();
        let back = ws.next().await.unwrap().unwrap();
        assert_eq!(back.into_text().unwrap().as_str(), text);
    }
    ws.send(Message::binary(vec![0u8, 1, 2, 255])).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap().into_data().as_ref(), &[0u8, 1, 2, 255]);
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_through_the_gateway_on_sqlite() {
    websocket_through_the_gateway(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_through_the_gateway_on_postgres_and_redis() {
    websocket_through_the_gateway(Stack::External).await;
}
