//! The floor under the gateway's proxying, for `benches/gateway.sh`: a reverse proxy made of
//! hyper alone — hyper's HTTP/1.1 server and hyper-util's pooled client on tokio's
//! multi-threaded runtime, the way hyper's own proxy example is built — that forwards every
//! request to one upstream. No route table, no session check, no identity headers, no metrics,
//! no request ids, no timeouts: what this costs per request, any proxy on this HTTP stack costs
//! at least, so the bench can tell the gateway's own work from the stack's.
//!
//! ```text
//! cargo run --release --example bare_proxy -- 127.0.0.1:8081 127.0.0.1:8080
//! ```

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: bare_proxy LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(2);
    };
    let listener = TcpListener::bind(&listen).await?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new()).build(connector);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let (client, upstream) = (client.clone(), upstream.clone());
        let service = service_fn(move |mut req: Request<Incoming>| {
            let client = client.clone();
            let target = format!("http://{upstream}{}", req.uri().path_and_query().map_or("/", |pq| pq.as_str()));
            async move {
                let Ok(uri) = target.parse() else {
                    let empty = Empty::new().map_err(|never| match never {}).boxed();
                    return Ok(Response::builder().status(400).body(empty).unwrap_or_default());
                };
                *req.uri_mut() = uri;
                let res = client.request(req).await?;
                Ok::<_, hyper_util::client::legacy::Error>(res.map(BoxBody::new))
            }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
