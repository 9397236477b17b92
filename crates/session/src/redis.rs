//! The Redis session store (Redis 7 or later): `SET … PX`, `GET`, `MGET`, `PEXPIRE`, `DEL`, `INCR`
//! and one `EVAL` script (compare-and-delete) through a reconnecting connection manager, so
//! several gateways share sessions and Redis does the expiry.

use crate::{SessionError, SessionStore};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use std::time::Duration;

/// Sessions in Redis, every key under one prefix.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    buses: std::sync::Arc<crate::bus::Buses>,
}

fn backend(e: redis::RedisError) -> SessionError {
    SessionError::Backend(e.to_string())
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    /// Connects (bounded to a few seconds) and returns a store whose keys all start with `prefix`,
    /// and whose buses are `buses` (opened on first use).
    pub async fn connect(url: &str, prefix: String, buses: crate::bus::Buses) -> Result<Self, SessionError> {
        let client = redis::Client::open(url)
            .map_err(|e| SessionError::Unavailable(format!("malformed Redis URL: {e}; use redis://HOST:PORT")))?;
        let where_ = client.get_connection_info().addr().to_string();
        let unreachable = |e: String| {
            SessionError::Unavailable(format!(
                "cannot reach Redis at {where_}: {e}; check --session-url and that the server is running"
            ))
        };
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(3)))
            .set_number_of_retries(1);
        let conn = tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new_with_config(client, config))
            .await
            .map_err(|_| unreachable("timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Self { conn, prefix, buses: std::sync::Arc::new(buses) })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait::async_trait]
impl SessionStore for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SessionError> {
        self.conn.clone().get(self.key(key)).await.map_err(backend)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), SessionError> {
        let opts = redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(millis(ttl)));
        let _: () = self.conn.clone().set_options(self.key(key), value, opts).await.map_err(backend)?;
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, SessionError> {
        let opts = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::PX(millis(ttl)));
        let stored: Option<String> =
            self.conn.clone().set_options(self.key(key), value, opts).await.map_err(backend)?;
        Ok(stored.is_some())
    }

    async fn touch(&self, key: &str, ttl: Duration) -> Result<bool, SessionError> {
        let ms = i64::try_from(millis(ttl)).unwrap_or(i64::MAX);
        self.conn.clone().pexpire(self.key(key), ms).await.map_err(backend)
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, SessionError> {
        self.conn.clone().get_del(self.key(key)).await.map_err(backend)
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<i64, SessionError> {
        // INCR and `PEXPIRE … NX` (Redis 7) in one MULTI: the expiry is set only when INCR
        // created the counter, so the window is fixed from the first increment.
        let key = self.key(key);
        let (count,): (i64,) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(&key)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(millis(ttl))
            .arg("NX")
            .ignore()
            .query_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok(count)
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, SessionError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        // MGET always answers with one entry per key (a lone key included).
        redis::cmd("MGET").arg(&keys).query_async(&mut self.conn.clone()).await.map_err(backend)
    }

    async fn delete(&self, key: &str) -> Result<(), SessionError> {
        let _: i64 = self.conn.clone().del(self.key(key)).await.map_err(backend)?;
        Ok(())
    }

    async fn delete_if(&self, key: &str, value: &[u8]) -> Result<bool, SessionError> {
        // Compare and delete in one script, which Redis runs atomically.
        const SCRIPT: &str =
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
        let deleted: i64 = redis::cmd("EVAL")
            .arg(SCRIPT)
            .arg(1)
            .arg(self.key(key))
            .arg(value)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        Ok(deleted == 1)
    }

    async fn ping(&self) -> Result<(), SessionError> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn.clone()).await.map_err(backend)?;
        Ok(())
    }

    async fn bus(&self, topic: &str) -> Result<crate::bus::Bus, SessionError> {
        self.buses.get(topic).await
    }
}
