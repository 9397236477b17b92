//! The embedded session store: one SQLite table in its own file, separate from the
//! application database (sessions are hot, small and disposable; they must not contend with
//! application writes or be backed up with them). Expired rows are invisible at once and swept
//! by a background task.

use crate::{SessionError, SessionStore};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::time::Duration;

/// Sessions in a local SQLite file.
#[derive(Clone, Debug)]
pub struct EmbeddedStore {
    pool: SqlitePool,
    /// In-process buses: one process serves everyone.
    buses: std::sync::Arc<crate::bus::Buses>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn expiry(ttl: Duration) -> i64 {
    now_ms().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

fn backend(e: sqlx::Error) -> SessionError {
    SessionError::Backend(e.to_string())
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store at `path` and starts its sweeper.
    pub async fn open(path: &Path) -> Result<Self, SessionError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await.map_err(|e| {
            SessionError::Unavailable(format!(
                "cannot open the embedded session store {}: {e}; check that the data dir is writable",
                path.display()
            ))
        })?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS sessions (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, expires_at INTEGER NOT NULL) STRICT",
        )
        .execute(&pool)
        .await
        .map_err(backend)?;
        sqlx::query("CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at)")
            .execute(&pool)
            .await
            .map_err(backend)?;
        let buses = crate::bus::Buses::new(crate::StoreOptions::Embedded { path: path.to_owned() });
        let store = Self { pool, buses: std::sync::Arc::new(buses) };
        let sweeper = store.pool.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                if sweeper.is_closed() {
                    break;
                }
                if let Err(e) =
                    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now_ms()).execute(&sweeper).await
                {
                    tracing::warn!(error = %e, "sweeping expired sessions failed");
                }
            }
        });
        Ok(store)
    }
}

#[async_trait::async_trait]
impl SessionStore for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SessionError> {
        sqlx::query_scalar("SELECT value FROM sessions WHERE key = $1 AND expires_at > $2")
            .bind(key)
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), SessionError> {
        sqlx::query(
            "INSERT INTO sessions (key, value, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
        )
        .bind(key)
        .bind(value)
        .bind(expiry(ttl))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, SessionError> {
        // One statement: an expired row counts as absent and is replaced.
        let done = sqlx::query(
            "INSERT INTO sessions (key, value, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at \
             WHERE sessions.expires_at <= $4",
        )
        .bind(key)
        .bind(value)
        .bind(expiry(ttl))
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn touch(&self, key: &str, ttl: Duration) -> Result<bool, SessionError> {
        let done = sqlx::query("UPDATE sessions SET expires_at = $1 WHERE key = $2 AND expires_at > $3")
            .bind(expiry(ttl))
            .bind(key)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, SessionError> {
        let row: Option<(Vec<u8>, i64)> =
            sqlx::query_as("DELETE FROM sessions WHERE key = $1 RETURNING value, expires_at")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        Ok(row.filter(|(_, expires_at)| *expires_at > now_ms()).map(|(value, _)| value))
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<i64, SessionError> {
        // One upsert: an expired row restarts at 1 with a new expiry, a live one counts on and
        // keeps its expiry. SET expressions see the row as it was before the update.
        let value: Vec<u8> = sqlx::query_scalar(
            "INSERT INTO sessions (key, value, expires_at) VALUES ($1, CAST('1' AS BLOB), $2) \
             ON CONFLICT (key) DO UPDATE SET \
               value = CASE WHEN sessions.expires_at <= $3 THEN CAST('1' AS BLOB) \
                 ELSE CAST(CAST(CAST(CAST(sessions.value AS TEXT) AS INTEGER) + 1 AS TEXT) AS BLOB) END, \
               expires_at = CASE WHEN sessions.expires_at <= $3 THEN excluded.expires_at ELSE sessions.expires_at END \
             RETURNING value",
        )
        .bind(key)
        .bind(expiry(ttl))
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        std::str::from_utf8(&value)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| SessionError::Backend(format!("{key} does not hold a counter")))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, SessionError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for every key.
        let mut query = sqlx::QueryBuilder::new("SELECT key, value FROM sessions WHERE expires_at > ");
        query.push_bind(now_ms()).push(" AND key IN (");
        let mut list = query.separated(", ");
        for key in keys {
            list.push_bind(*key);
        }
        list.push_unseparated(")");
        let rows: Vec<(String, Vec<u8>)> = query.build_query_as().fetch_all(&self.pool).await.map_err(backend)?;
        let found: std::collections::HashMap<String, Vec<u8>> = rows.into_iter().collect();
        Ok(keys.iter().map(|k| found.get(*k).cloned()).collect())
    }

    async fn delete(&self, key: &str) -> Result<(), SessionError> {
        sqlx::query("DELETE FROM sessions WHERE key = $1").bind(key).execute(&self.pool).await.map_err(backend)?;
        Ok(())
    }

    async fn delete_if(&self, key: &str, value: &[u8]) -> Result<bool, SessionError> {
        let done = sqlx::query("DELETE FROM sessions WHERE key = $1 AND value = $2 AND expires_at > $3")
            .bind(key)
            .bind(value)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }

    async fn ping(&self) -> Result<(), SessionError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(backend)?;
        Ok(())
    }

    async fn bus(&self, topic: &str) -> Result<crate::bus::Bus, SessionError> {
        self.buses.get(topic).await
    }
}
