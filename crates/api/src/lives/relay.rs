//! Any API server answers for any live: a playlist or part of a live packaged by another process
//! is fetched from that process (the `packager_url` its ingest recorded when it claimed the
//! live) and passed on, blocking reloads included — the packaging process holds the request
//! until the part exists, and this one waits with it.
//!
//! A redirect would be shorter, but `packager_url` is an internal address that browsers cannot
//! reach, so the bytes come through here. Where a live is packaged is read from the database at
//! most once a second per live ([`Relay::packager`]), not once per request. A relayed request is
//! marked ([`RELAYED`]) and a marked request is never relayed again, and no process relays to
//! its own address: a stale row can cost a 404, never a loop.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use turtlemen_db::lives::LiveState;
use turtlemen_db::{Db, DbError};
use uuid::Uuid;

/// The header a relayed request carries.
pub const RELAYED: &str = "x-turtlemen-live-relayed";

/// How long where a live is packaged is remembered.
const REMEMBER: Duration = Duration::from_secs(1);
/// Lives remembered at most (the memory is emptied past this).
const REMEMBERED_MAX: usize = 10_000;
/// The longest a relayed request may take: the packager's longest blocking wait (three target
/// durations, 12 s by default) and some.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Why a relayed request failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("the relay's HTTP client cannot be built: {0}")]
    Client(reqwest::Error),
    #[error("the packaging server did not answer: {0}")]
    Upstream(#[from] reqwest::Error),
}

/// What the packaging process answered.
#[derive(Debug)]
pub struct Relayed {
    pub status: u16,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub body: Bytes,
}

/// The relay of one API process.
pub struct Relay {
    client: reqwest::Client,
    /// This process's own packager URL when it ingests (never relayed to).
    own: Option<String>,
    known: Mutex<HashMap<Uuid, (Instant, Option<String>)>>,
}

/// `url` without its trailing slashes, so two spellings of one address compare equal.
fn trimmed(url: &str) -> &str {
    url.trim_end_matches('/')
}

impl Relay {
    /// `own`: the packager URL this process records for the lives it ingests, if it does.
    pub fn new(own: Option<String>) -> Result<Relay, RelayError> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(RelayError::Client)?;
        Ok(Relay { client, own: own.map(|u| trimmed(&u).to_owned()), known: Mutex::new(HashMap::new()) })
    }

    /// The packaging process of `live` if it is live and packaged by another process.
    pub async fn packager(&self, db: &Db, live: Uuid) -> Result<Option<String>, DbError> {
        let now = Instant::now();
        if let Some((at, url)) = self.known.lock().unwrap_or_else(|e| e.into_inner()).get(&live)
            && now.duration_since(*at) < REMEMBER
        {
            return Ok(url.clone());
        }
        let url = turtlemen_db::lives::get(db, live)
            .await?
            .filter(|l| l.state == LiveState::Live)
            .and_then(|l| l.packager_url)
            .map(|u| trimmed(&u).to_owned())
            .filter(|u| !u.is_empty() && self.own.as_deref() != Some(u.as_str()));
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= REMEMBERED_MAX {
            known.clear();
        }
        known.insert(live, (now, url.clone()));
        Ok(url)
    }

    /// GETs `path_and_query` (starting with `/`) from the packaging process at `base`.
    pub async fn fetch(&self, base: &str, path_and_query: &str) -> Result<Relayed, RelayError> {
        let res = self.client.get(format!("{base}{path_and_query}")).header(RELAYED, "1").send().await?;
        let header = |name: reqwest::header::HeaderName| {
            res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let cache_control = header(reqwest::header::CACHE_CONTROL);
        let status = res.status().as_u16();
        let body = res.bytes().await?;
        Ok(Relayed { status, content_type, cache_control, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_without_trailing_slashes() {
        let relay = Relay::new(Some("http://10.0.0.5:8080/".into())).unwrap();
        assert_eq!(relay.own.as_deref(), Some("http://10.0.0.5:8080"));
        assert_eq!(trimmed("http://a/"), trimmed("http://a"));
    }
}
