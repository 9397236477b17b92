//! A small upstream for gateway tests, served the way any HTTP server would be (hyper-util's
//! auto builder: HTTP/1.1, and HTTP/2 with prior knowledge). It tells what it received:
//! - `…/slow`: answers after five seconds;
//! - `…/big/N`: streams N bytes (64 KiB chunks);
//! - `…/sized/N`: N bytes of [`pattern`] with a `Content-Length`, in 64 KiB chunks;
//! - `…/short/N`: says N bytes, sends half of [`pattern`] and breaks the connection;
//! - anything else: JSON with the method, path, HTTP version, headers, and the number and
//!   SHA-256 of the body bytes it read (counted as they stream, never kept).

use axum::body::Body;
use axum::extract::Request;
use futures::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use tower::ServiceExt;

async fn answer(req: Request) -> axum::response::Response {
    let path = req.uri().path().to_string();
    if path.ends_with("/slow") {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        return axum::response::IntoResponse::into_response("late");
    }
    if let Some(n) = path.split("/big/").nth(1).and_then(|n| n.parse::<usize>().ok()) {
        let chunk = bytes::Bytes::from(vec![b'v'; 64 * 1024]);
        let stream = futures::stream::iter((0..n.div_ceil(chunk.len())).map(move |i| {
            let len = chunk.len().min(n - i * chunk.len());
            Ok::<_, std::io::Error>(chunk.slice(..len))
        }));
        return axum::response::Response::new(Body::from_stream(stream));
    }
    for (kind, sent) in [("/sized/", 1.0), ("/short/", 0.5)] {
        if let Some(n) = path.split(kind).nth(1).and_then(|n| n.parse::<usize>().ok()) {
            let data = bytes::Bytes::from(pattern(n));
            let end = (n as f64 * sent) as usize;
            let stream = futures::stream::iter((0..n.div_ceil(65536)).map(move |i| {
                let at = i * 65536;
                if at >= end {
                    return Err(std::io::Error::other("broken off"));
                }
                Ok(data.slice(at..(at + 65536).min(end)))
            }));
            let mut res = axum::response::Response::new(Body::from_stream(stream));
            res.headers_mut().insert("content-length", n.into());
            return res;
        }
    }
    // What a Turtlemen server behind the gateway would say of the request's authority.
    let authority_fault = turtlemen_http::server::authority_fault(&req).map(|f| f.code());
    let (parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let mut body_bytes = 0usize;
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => {
                body_bytes += c.len();
                digest.update(&c);
            }
            Err(_) => break,
        }
    }
    let sha256: String = digest.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let headers: serde_json::Map<String, serde_json::Value> =
        parts.headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").into())).collect();
    let json = serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "version": format!("{:?}", parts.version),
        "authority": parts.uri.authority().map(|a| a.as_str()),
        "authority_fault": authority_fault,
        "headers": headers,
        "body_bytes": body_bytes,
        "sha256": sha256,
    });
    axum::response::IntoResponse::into_response(axum::Json(json))
}

/// `n` bytes that tell their own offsets apart (no run repeats at a power of two).
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ (i >> 16) as u8).collect()
}

/// Starts the upstream on a free port; it runs until the test's runtime ends.
pub async fn spawn() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(answer);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let app = app.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    app.clone().oneshot(req.map(Body::new))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}
