//! The session store: short-lived records with an expiry, keyed by opaque ids.
//!
//! The gateway keeps browser sessions here (tokens and claims), the auth service its login
//! sessions and its brute-force counters. One interface, [`SessionStore`], two implementations:
//! - [`embedded::EmbeddedStore`] — a SQLite file in the data dir (the default): survives
//!   restarts, needs no server, serves one machine;
//! - [`redis::RedisStore`] — Redis, so that several gateways share sessions.
//!
//! Values are opaque bytes; callers serialise. Expired records are never returned, whether or
//! not they have been swept yet. Keys are namespaced by the caller (`gw:…`, `sso:…`).
//!
//! [`ended`] is the one record two roles share by contract: the auth service marks the login
//! sessions (and users) whose sessions ended, the gateway checks those marks when it reads a
//! browser session.
//!
//! [`bus`] is the publish/subscribe beside the store: in-process under the embedded store, Redis
//! pub/sub under Redis (the live chat's messages reach every API replica through it; ended
//! sessions are announced to every gateway on it, [`ended::Notice`]). A store hands out the bus
//! of a topic beside it ([`SessionStore::bus`]), one per topic and process.

pub mod bus;
pub mod embedded;
pub mod ended;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

/// What went wrong with the session store.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Unavailable(String),
    #[error("session store error: {0}")]
    Backend(String),
}

/// A key-value store whose every record expires.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// The value under `key`, unless absent or expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SessionError>;
    /// Stores `value` under `key` for `ttl`, replacing any previous value.
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), SessionError>;
    /// Stores `value` only if `key` holds nothing live; returns whether it was stored.
    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, SessionError>;
    /// Moves the expiry of a live record to `ttl` from now; returns whether it existed.
    async fn touch(&self, key: &str, ttl: Duration) -> Result<bool, SessionError>;
    /// Removes `key` and returns what it held, if live — atomically, so of two concurrent
    /// callers exactly one gets the value (single-use codes rely on this).
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, SessionError>;
    /// Adds one to the counter under `key` and returns the new count, atomically (of two
    /// concurrent callers each sees its own count). A counter that is absent or expired starts at
    /// 1 and expires `ttl` from now; later increments keep that expiry, so a counter counts
    /// within a fixed window. The value is the count in decimal ASCII, as [`Self::get`] reads it.
    async fn incr(&self, key: &str, ttl: Duration) -> Result<i64, SessionError>;
    /// The values under `keys`, in order, `None` for an absent or expired key — in one round
    /// trip (a session and the marks that may have ended it are read together).
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, SessionError>;
    /// Removes `key`; removing an absent key is not an error.
    async fn delete(&self, key: &str) -> Result<(), SessionError>;
    /// Removes `key` only if it holds `value` (live), atomically; returns whether it did. A lock
    /// taken with [`Self::set_if_absent`] and a value only its taker knows is released with this,
    /// so a taker whose lock expired and passed to another never releases the other's.
    async fn delete_if(&self, key: &str, value: &[u8]) -> Result<bool, SessionError>;
    /// One round trip, for readiness checks.
    async fn ping(&self) -> Result<(), SessionError>;
    /// The bus of `topic` beside this store ([`bus`]): the same one for every caller holding
    /// this store, opened on first use.
    async fn bus(&self, topic: &str) -> Result<bus::Bus, SessionError>;
}

/// A shared handle to whichever store is configured.
pub type Sessions = Arc<dyn SessionStore>;

/// Where the sessions live.
#[derive(Debug, Clone)]
pub enum StoreOptions {
    /// A SQLite file at this path.
    Embedded { path: std::path::PathBuf },
    /// A Redis server; every key is prefixed with `prefix` (tests use one prefix each).
    Redis { url: String, prefix: String },
}

/// Opens the configured store and checks that it answers.
pub async fn open(opts: &StoreOptions) -> Result<Sessions, SessionError> {
    let store: Sessions = match opts {
        StoreOptions::Embedded { path } => Arc::new(embedded::EmbeddedStore::open(path).await?),
        StoreOptions::Redis { url, prefix } => {
            Arc::new(redis::RedisStore::connect(url, prefix.clone(), bus::Buses::new(opts.clone())).await?)
        }
    };
    store.ping().await?;
    Ok(store)
}
