//! A short shared cache of the answers anonymous visitors get (a "microcache"), kept by each
//! gateway in memory.
//!
//! The service decides what may be kept and for how long, in the standard way: an answer is
//! kept only if it is addressed to shared caches (`s-maxage`; a `max-age` alone is left to
//! browsers) and a shared cache may store it (`Cache-Control: public, s-maxage=N`, judged by
//! `http-cache-semantics`' RFC 9111 rules), it is a `200` to a `GET` without credentials, it sets
//! no cookie, varies on nothing, and declares a length of at most [`MAX_ENTRY_BYTES`]. The API
//! server marks its public pages so only when the visitor is anonymous (`public_page_max_age`),
//! so a signed-in visitor's page is never kept, and a request carrying an identity is never
//! answered from here.
//!
//! Staleness is bounded: an answer is served fresh for its `s-maxage`; after that, one request
//! fetches it again while the others, for at most as long again, get the old answer (as nginx's
//! `proxy_cache_use_stale updating`), so a popular page costs the services one request per
//! `s-maxage` however many visitors ask. The client's own `Cache-Control` does not bypass it (a
//! flood of `no-cache` requests would otherwise reach the services). Memory is bounded by
//! [`MAX_TOTAL_BYTES`].

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// The largest answer kept.
pub const MAX_ENTRY_BYTES: u64 = 1024 * 1024;
/// All answers kept together, bodies and headers.
pub const MAX_TOTAL_BYTES: usize = 64 * 1024 * 1024;
/// The longest an answer is kept fresh, whatever the service says.
pub const MAX_TTL: Duration = Duration::from_secs(60);

/// Answers kept, by route, authority and path with query.
#[derive(Default)]
pub struct PageCache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Key, std::sync::Arc<Entry>>,
    bytes: usize,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    route: usize,
    authority: String,
    path_and_query: String,
}

struct Entry {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
    stored: Instant,
    fresh_for: Duration,
    /// One request is fetching the answer again.
    refreshing: AtomicBool,
    size: usize,
}

impl Entry {
    fn response(&self) -> Response {
        let mut res = Response::new(Body::from(self.body.clone()));
        *res.status_mut() = self.status;
        *res.version_mut() = self.version;
        *res.headers_mut() = self.headers.clone();
        res.headers_mut().insert(header::AGE, HeaderValue::from(self.stored.elapsed().as_secs()));
        res
    }
}

/// What a lookup found.
enum Found {
    /// Serve this.
    Hit(Response),
    /// Fetch, and keep the answer if it may be kept.
    Miss,
}

impl PageCache {
    /// Answers `req` (on route `route`) from the cache, or by `next`, keeping what may be kept.
    /// Requests that may not be answered from a shared cache go straight to `next`.
    pub async fn serve<F, Fut>(&self, route: usize, req: Request, next: F) -> Response
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = Response>,
    {
        let Some(key) = Self::key(route, &req) else {
            return next(req).await;
        };
        if let Found::Hit(res) = self.lookup(&key) {
            return res;
        }
        // What the policy is judged against: the request as it was asked.
        let (mut head, ()) = Request::new(()).into_parts();
        head.method = Method::GET;
        head.uri = req.uri().clone();
        head.headers = req.headers().clone();
        let res = next(req).await;
        match self.keep(key.clone(), &head, res).await {
            Ok(res) => res,
            Err(res) => {
                self.forget(&key);
                res
            }
        }
    }

    /// The key of a request that may be answered from a shared cache: a `GET` with no
    /// credentials of any kind and no range.
    fn key(route: usize, req: &Request) -> Option<Key> {
        if req.method() != Method::GET {
            return None;
        }
        let h = req.headers();
        if h.contains_key(header::AUTHORIZATION) || h.contains_key(header::RANGE) {
            return None;
        }
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| h.get(header::HOST).and_then(|v| v.to_str().ok()).map(str::to_owned))?;
        let path_and_query = req.uri().path_and_query()?.as_str().to_owned();
        Some(Key { route, authority: authority.to_ascii_lowercase(), path_and_query })
    }

    fn lookup(&self, key: &Key) -> Found {
        let entry = {
            let Ok(state) = self.state.lock() else { return Found::Miss };
            let Some(entry) = state.entries.get(key) else { return Found::Miss };
            entry.clone()
        };
        let age = entry.stored.elapsed();
        if age < entry.fresh_for {
            return Found::Hit(entry.response());
        }
        // Stale: one request fetches it again; the others get the old answer meanwhile, for at
        // most as long again.
        if age < entry.fresh_for * 2 && entry.refreshing.swap(true, Ordering::AcqRel) {
            return Found::Hit(entry.response());
        }
        Found::Miss
    }

    fn forget(&self, key: &Key) {
        if let Ok(mut state) = self.state.lock()
            && let Some(old) = state.entries.remove(key)
        {
            state.bytes -= old.size;
        }
    }

    /// Keeps `res` if a shared cache may: `Ok` with the answer to send (its body read into
    /// memory when kept), `Err` with the answer untouched when it may not be kept.
    async fn keep(&self, key: Key, req: &http::request::Parts, res: Response) -> Result<Response, Response> {
        let length = res.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        // Only what the service addressed to shared caches (`s-maxage`): a `max-age` alone is
        // for browsers (a channel's avatar is `public, immutable` for a year, yet gone at once
        // when replaced).
        let for_shared_caches = res
            .headers()
            .get_all(header::CACHE_CONTROL)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.to_ascii_lowercase().contains("s-maxage")));
        if res.status() != StatusCode::OK
            || !for_shared_caches
            || res.headers().contains_key(header::SET_COOKIE)
            || res.headers().contains_key(header::VARY)
            || length.is_none_or(|n| n > MAX_ENTRY_BYTES)
        {
            return Err(res);
        }
        let policy = http_cache_semantics::CachePolicy::new_options(
            req,
            &res,
            SystemTime::now(),
            http_cache_semantics::CacheOptions { shared: true, cache_heuristic: 0.0, ..Default::default() },
        );
        let fresh_for = policy.time_to_live(SystemTime::now()).min(MAX_TTL);
        if !policy.is_storable() || fresh_for.is_zero() {
            return Err(res);
        }
        let (parts, body) = res.into_parts();
        let body = match http_body_util::Limited::new(body, MAX_ENTRY_BYTES as usize).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                tracing::warn!(error = %e, "an answer to keep ended early");
                let mut res = Response::new(Body::from("The service's answer ended early."));
                *res.status_mut() = StatusCode::BAD_GATEWAY;
                return Err(res);
            }
        };
        let size = body.len() + parts.headers.iter().map(|(k, v)| k.as_str().len() + v.len()).sum::<usize>();
        let entry = std::sync::Arc::new(Entry {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
            stored: Instant::now(),
            fresh_for,
            refreshing: AtomicBool::new(false),
            size,
        });
        let res = entry.response();
        if let Ok(mut state) = self.state.lock() {
            if let Some(old) = state.entries.remove(&key) {
                state.bytes -= old.size;
            }
            if state.bytes + size > MAX_TOTAL_BYTES {
                let before = state.entries.len();
                state.entries.retain(|_, e| e.stored.elapsed() < e.fresh_for * 2);
                state.bytes = state.entries.values().map(|e| e.size).sum();
                tracing::debug!(dropped = before - state.entries.len(), "page cache full; dropped expired answers");
            }
            if state.bytes + size <= MAX_TOTAL_BYTES {
                state.bytes += size;
                state.entries.insert(key, entry);
            }
        }
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn get(path: &str, extra: &[(&str, &str)]) -> Request {
        let mut b = http::Request::get(path).header(header::HOST, "example.org");
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).expect("a request")
    }

    fn answer(cache_control: &str, extra: &[(&str, &str)]) -> Response {
        let body = "<p>a page</p>";
        let mut b = http::Response::builder()
            .header(header::CACHE_CONTROL, cache_control)
            .header(header::CONTENT_LENGTH, body.len());
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        b.body(Body::from(body)).expect("a response")
    }

    /// Asks twice; how many times the service was asked.
    async fn asked_twice(req: impl Fn() -> Request, res: impl Fn() -> Response) -> usize {
        let cache = PageCache::default();
        let calls = AtomicUsize::new(0);
        for _ in 0..2 {
            let out = cache
                .serve(0, req(), |_| async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    res()
                })
                .await;
            let body = out.into_body().collect().await.expect("a body").to_bytes();
            assert_eq!(&body[..], b"<p>a page</p>");
        }
        calls.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn only_what_a_shared_cache_may_keep_is_kept() {
        let public = "public, max-age=0, s-maxage=5";
        assert_eq!(asked_twice(|| get("/", &[]), || answer(public, &[])).await, 1, "kept");
        assert_eq!(
            asked_twice(|| get("/", &[("cache-control", "no-cache")]), || answer(public, &[])).await,
            1,
            "the client's no-cache does not get past it"
        );
        for (cc, extra, why) in [
            ("no-store", &[][..], "no-store"),
            ("private, max-age=60", &[][..], "private"),
            ("public, max-age=0", &[][..], "no shared age"),
            ("public, max-age=3600, immutable", &[][..], "for browsers only"),
            (public, &[("set-cookie", "a=b")][..], "sets a cookie"),
            (public, &[("vary", "accept-language")][..], "varies"),
        ] {
            assert_eq!(asked_twice(|| get("/", &[]), || answer(cc, extra)).await, 2, "{why}");
        }
        // Requests with credentials or ranges are never answered from it.
        assert_eq!(asked_twice(|| get("/", &[("authorization", "Bearer x")]), || answer(public, &[])).await, 2);
        assert_eq!(asked_twice(|| get("/", &[("range", "bytes=0-1")]), || answer(public, &[])).await, 2);
    }

    #[tokio::test]
    async fn a_stale_answer_is_fetched_again_by_one_request() {
        let cache = PageCache::default();
        let key = PageCache::key(0, &get("/x", &[])).expect("a key");
        let calls = AtomicUsize::new(0);
        let fetch = |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            answer("public, s-maxage=1", &[])
        };
        cache.serve(0, get("/x", &[]), fetch).await;
        // Made stale by hand: the first request after fetches, the next gets the kept answer.
        {
            let mut state = cache.state.lock().expect("lock");
            let old = state.entries.remove(&key).expect("kept");
            let mut e = Entry {
                status: old.status,
                version: old.version,
                headers: old.headers.clone(),
                body: old.body.clone(),
                stored: Instant::now() - Duration::from_millis(1500),
                fresh_for: old.fresh_for,
                refreshing: AtomicBool::new(false),
                size: old.size,
            };
            e.fresh_for = Duration::from_secs(1);
            state.entries.insert(key.clone(), std::sync::Arc::new(e));
        }
        assert!(matches!(cache.lookup(&key), Found::Miss), "the first after expiry fetches");
        assert!(matches!(cache.lookup(&key), Found::Hit(_)), "the others get the kept answer");
        cache.serve(0, get("/x", &[]), fetch).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "served from the cache while another fetches");
    }
}
