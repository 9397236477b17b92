//! The static assets: embedded in the binary, named by content hash, served forever-cacheable.
//!
//! `build.rs` generates the table ([`ASSETS`]) from `web/src/` and the npm packages in
//! `web/node_modules/`. A page asks [`asset_url`] for an asset's current URL; because the URL
//! changes whenever the content does, responses are `immutable` and a year-long cache is safe.
//! Text assets carry a gzip form made at build time, sent (`Content-Encoding: gzip`, its own
//! entity tag, `Vary: Accept-Encoding`) to clients that accept it: the page weight that counts
//! is what crosses the network. This module never reads the file system at run time and never
//! serves a name that is not in the table.

use axum::Router;
use axum::extract::Path;
use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use turtlemen_http::ApiError;

/// One embedded asset.
#[derive(Debug)]
pub(crate) struct Asset {
    /// The stable name pages ask for, e.g. `app.css`.
    pub logical: &'static str,
    /// The name it is served under, with its content hash, e.g. `app.3f2a9c1b7d.css`.
    pub file: &'static str,
    /// `/static/` + [`Asset::file`].
    pub url: &'static str,
    pub content_type: &'static str,
    /// The content hash, quoted as an entity tag.
    pub etag: &'static str,
    /// The entity tag of the gzip form (another representation, so another tag).
    pub gzip_etag: &'static str,
    pub bytes: &'static [u8],
    /// The same bytes gzip-compressed, when that is smaller.
    pub gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

const CACHE_FOREVER: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// The URL of an asset by its logical name (`app.css` → `/static/app.3f2a9c1b7d.css`), or
/// `None` if there is no such asset.
pub fn asset_url(logical: &str) -> Option<&'static str> {
    ASSETS.iter().find(|a| a.logical == logical).map(|a| a.url)
}

/// `GET /static/{file}`, by hashed file name.
pub fn static_routes() -> Router {
    Router::new().route("/static/{file}", get(serve))
}

async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let asset = ASSETS.iter().find(|a| a.file == file).ok_or_else(ApiError::not_found)?;
    let gzip = asset.gzip.filter(|_| accepts_gzip(&headers));
    let etag = if gzip.is_some() { asset.gzip_etag } else { asset.etag };
    let common =
        [(ETAG, HeaderValue::from_static(etag)), (CACHE_CONTROL, CACHE_FOREVER), (X_CONTENT_TYPE_OPTIONS, NOSNIFF)];
    let mut res = if matches_etag(&headers, etag) {
        (StatusCode::NOT_MODIFIED, common).into_response()
    } else {
        let content_type = [(CONTENT_TYPE, HeaderValue::from_static(asset.content_type))];
        match gzip {
            Some(bytes) => {
                (common, content_type, [(CONTENT_ENCODING, HeaderValue::from_static("gzip"))], bytes).into_response()
            }
            None => (common, content_type, asset.bytes).into_response(),
        }
    };
    if asset.gzip.is_some() {
        res.headers_mut().insert(VARY, HeaderValue::from_static("accept-encoding"));
    }
    Ok(res)
}

/// Whether `Accept-Encoding` allows gzip: `gzip` (or `*`) listed without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let refused = parts
            .any(|p| p.trim().strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>().map_or(true, |q| q <= 0.0)));
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

/// Whether `If-None-Match` names this entity tag (weak comparison, as RFC 9110 asks for it).
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|tag| {
        let tag = tag.trim();
        tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    fn is_hashed(asset: &Asset) -> bool {
        let Some((rest, ext)) = asset.file.rsplit_once('.') else { return false };
        let Some((stem, hash)) = rest.rsplit_once('.') else { return false };
        hash.len() == 10
            && hash.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            && asset.logical == format!("{stem}.{ext}")
            && asset.etag == format!("\"{hash}\"")
            && asset.url == format!("/static/{}", asset.file)
    }

    #[test]
    fn the_table_holds_every_asset_under_a_hashed_name() {
        assert!(!ASSETS.is_empty());
        for logical in ["app.css", "app.js", "favicon.svg", "hls.min.js", "tus.min.js"] {
            assert!(asset_url(logical).is_some(), "{logical} is missing");
        }
        for asset in ASSETS {
            assert!(is_hashed(asset), "{asset:?} is not named by its hash");
            assert!(!asset.bytes.is_empty(), "{} is empty", asset.logical);
        }
        assert_eq!(asset_url("nope.css"), None);
    }

    async fn get(uri: &str, if_none_match: Option<&str>) -> Response {
        let mut req = Request::get(uri);
        if let Some(tag) = if_none_match {
            req = req.header(IF_NONE_MATCH, tag);
        }
        static_routes().oneshot(req.body(Body::empty()).expect("a valid request")).await.expect("infallible")
    }

    #[tokio::test]
    async fn an_asset_is_served_forever_cacheable_and_revalidates() {
        let url = asset_url("app.css").expect("app.css is in the table");
        let res = get(url, None).await;
        assert_eq!(res.status(), StatusCode::OK);
        let h = res.headers();
        assert_eq!(h[CONTENT_TYPE], "text/css; charset=utf-8");
        assert_eq!(h[CACHE_CONTROL], "public, max-age=31536000, immutable");
        assert_eq!(h[X_CONTENT_TYPE_OPTIONS], "nosniff");
        let etag = h[ETAG].to_str().expect("ASCII").to_owned();

        let res = get(url, Some(&etag)).await;
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(res.headers()[ETAG], etag.as_str());

        let res = get(url, Some(&format!("\"other\", W/{etag}"))).await;
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

        let res = get(url, Some("\"other\"")).await;
        assert_eq!(res.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_client_that_accepts_gzip_gets_the_smaller_form() {
        let asset = ASSETS.iter().find(|a| a.logical == "app.css").expect("app.css");
        let gz = asset.gzip.expect("CSS compresses");
        assert!(gz.len() * 2 < asset.bytes.len(), "{} of {}", gz.len(), asset.bytes.len());
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut unzipped).expect("valid gzip");
        assert_eq!(unzipped, asset.bytes, "the same bytes once decoded");
        let ask = |accept: &'static str| {
            let req = Request::get(asset.url).header(ACCEPT_ENCODING, accept).body(Body::empty()).expect("request");
            static_routes().oneshot(req)
        };
        let res = ask("br, gzip;q=0.8").await.expect("infallible");
        assert_eq!(res.headers()[CONTENT_ENCODING], "gzip");
        assert_eq!(res.headers()[VARY], "accept-encoding");
        assert_eq!(res.headers()[ETAG], asset.gzip_etag);
        for refused in ["identity", "gzip;q=0", "br"] {
            let res = ask(refused).await.expect("infallible");
            assert!(res.headers().get(CONTENT_ENCODING).is_none(), "{refused}");
            assert_eq!(res.headers()[ETAG], asset.etag, "{refused}");
            assert_eq!(res.headers()[VARY], "accept-encoding", "{refused}");
        }
        let res = get(asset.url, None).await;
        assert!(res.headers().get(CONTENT_ENCODING).is_none(), "no Accept-Encoding: identity");
    }

    #[tokio::test]
    async fn an_unknown_or_unhashed_name_is_not_found() {
        assert_eq!(get("/static/app.css", None).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(get("/static/app.0000000000.css", None).await.status(), StatusCode::NOT_FOUND);
    }
}
