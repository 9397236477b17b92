//! Opening the pool for either backend, migrating it and checking it.

use crate::{DbError, with_pool};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

pub(crate) static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The application database: a pool of whichever backend the URL named.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which engine a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to open the database.
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// `sqlite://…` or `postgres://…`.
    pub url: String,
    pub max_connections: u32,
    /// PostgreSQL only: the schema to work in (tests use one schema each).
    pub search_path: Option<String>,
    /// SQLite only: create the file when it does not exist.
    pub create_if_missing: bool,
}

/// Run on a SQLite connection going back to the pool, and on one handed out, for a while after
/// the database gave trouble ([`crate::trouble`]): ends a transaction SQLite still holds there.
/// A statement that fails mid-transaction with the disk full (`SQLITE_FULL`) can leave SQLite
/// inside a transaction the driver no longer counts (or one the driver's rollback could not
/// end); that idle connection then keeps the file's write lock, and every other writer waits
/// out the busy timeout and fails with "database is locked" long after the disk has room again.
/// `ROLLBACK` ends such a transaction and fails harmlessly when none is open (the usual case); a
/// connection the driver still counts in a transaction is closed instead.
///
/// Without trouble it costs nothing: a `ROLLBACK` on every release was a second round trip to
/// the connection's worker thread for every query (about 8 % of a busy server's CPU). The failure
/// is seen as it is turned into a [`DbError`], which may come just after the connection went back;
/// the check when it is next handed out covers that.
async fn end_stray_transaction(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::{Connection, Executor};
    if !crate::trouble::recent() {
        return Ok(!conn.is_in_transaction());
    }
    let _ = conn.execute("ROLLBACK").await;
    Ok(!conn.is_in_transaction())
}

/// A PostgreSQL connection used this recently is handed out unchecked (HikariCP's bypass window
/// is the same 500 ms), unless the database gave trouble lately.
const CHECK_AFTER_IDLE: Duration = Duration::from_millis(500);

/// Checks that a pooled PostgreSQL connection still answers (one round trip), as sqlx does
/// before handing it out, when it sat idle past [`CHECK_AFTER_IDLE`] or the database gave
/// trouble lately ([`crate::trouble`]: a server restart breaks every pooled connection, and
/// checking each one is how the pool replaces them without failing requests). On failure the
/// pool closes it (and opens another), and the pool's server is suspected of having gone away
/// ([`crate::refusals`]).
async fn usable(conn: &mut sqlx::PgConnection, idle_for: Duration) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    if idle_for < CHECK_AFTER_IDLE && !crate::trouble::recent() {
        return Ok(true);
    }
    conn.ping().await.inspect_err(|_| crate::refusals::suspect())?;
    Ok(true)
}

impl Db {
    /// Opens the pool and checks that one connection works.
    pub async fn connect(opts: &DbOptions) -> Result<Db, DbError> {
        if opts.url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(&opts.url)
                .map_err(|e| DbError::Unavailable(format!("malformed SQLite URL: {e}; use sqlite://PATH")))?
                .create_if_missing(opts.create_if_missing)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            let file = connect.get_filename().display().to_string();
            let pool = SqlitePoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(Duration::from_secs(5))
                // sqlx's check before use is a round trip to the connection's worker thread, which
                // only tells that thread is alive; sqlx checks that again when a connection goes back.
                .test_before_acquire(false)
                .after_release(|conn, _| Box::pin(end_stray_transaction(conn)))
                .before_acquire(|conn, _| Box::pin(end_stray_transaction(conn)))
                .connect_with(connect)
                .await
                .map_err(|e| DbError::Unavailable(format!("cannot open SQLite database {file}: {e}; check the path in --database-url and that its folder is writable")))?;
            Ok(Db::Sqlite(pool))
        } else {
            let mut connect = PgConnectOptions::from_str(&opts.url).map_err(|e| {
                DbError::Unavailable(format!("malformed PostgreSQL URL: {e}; use postgres://USER@HOST:PORT/DATABASE"))
            })?;
            if let Some(schema) = &opts.search_path {
                connect = connect.options([("search_path", schema.as_str())]);
            }
            let target = format!(
                "{}:{}/{}",
                connect.get_host(),
                connect.get_port(),
                connect.get_database().unwrap_or("postgres")
            );
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(Duration::from_secs(5))
                // The check sqlx makes before handing out a pooled connection, made here so that
                // a failure is heard (see `refusals`).
                .test_before_acquire(false)
                .before_acquire(|conn, meta| Box::pin(usable(conn, meta.idle_for)))
                .connect_with(connect)
                .await
                .map_err(|e| DbError::Unavailable(format!("cannot connect to PostgreSQL at {target}: {e}; check --database-url and that the server is running")))?;
            Ok(Db::Postgres(pool))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    fn migrator(&self) -> Migrator {
        let embedded = match self {
            Db::Sqlite(_) => &SQLITE_MIGRATIONS,
            Db::Postgres(_) => &POSTGRES_MIGRATIONS,
        };
        let mut migrator = Migrator::with_migrations(embedded.iter().cloned().collect());
        // No advisory locks: CockroachDB lacks them. Migrations are run from one place
        // (`turtlemen migrate`, or `serve` on its own embedded database) and written to be
        // safe to run once.
        migrator.set_locking(false);
        // A schema newer than this binary — a later release's migrations, applied by its
        // `turtlemen migrate` while this release still runs (an upgrade: docs/operations.md) —
        // is no reason to refuse to start: those migrations only add (expand, then contract), so
        // this release runs on it as on its own. Its own migrations are still all applied.
        migrator.set_ignore_missing(true);
        migrator
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), DbError> {
        let migrator = self.migrator();
        with_pool!(self, |pool| migrator.run(pool).await)?;
        Ok(())
    }

    /// Fails with [`DbError::SchemaOutdated`] unless every migration this binary knows is
    /// applied. Roles started alone call this instead of migrating behind the operator's back.
    pub async fn ensure_migrated(&self) -> Result<(), DbError> {
        let applied: Vec<i64> = with_pool!(self, |pool| {
            let table: Option<String> = match self.backend() {
                Backend::Sqlite => {
                    sqlx::query_scalar(
                        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                    )
                    .fetch_optional(pool)
                    .await?
                }
                Backend::Postgres => sqlx::query_scalar("SELECT CAST(to_regclass('_sqlx_migrations') AS TEXT)")
                    .fetch_optional(pool)
                    .await?
                    .flatten(),
            };
            if table.is_none() {
                Vec::new()
            } else {
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version")
                    .fetch_all(pool)
                    .await?
            }
        });
        let missing: Vec<i64> = self.migrator().iter().map(|m| m.version).filter(|v| !applied.contains(v)).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(DbError::SchemaOutdated(format!("{} migration(s) pending", missing.len())))
        }
    }

    /// One round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), DbError> {
        with_pool!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    /// The bundled SQLite is built with the settings `.cargo/config.toml` gives it: without the
    /// query planner stability guarantee every statement with `LIMIT $n` is compiled again at
    /// each use, and the statement cache keeps nothing.
    #[tokio::test]
    async fn sqlite_build_settings() {
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let options: Vec<String> = sqlx::query_scalar("SELECT compile_options FROM pragma_compile_options")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        for wanted in ["ENABLE_QPSG", "DEFAULT_MEMSTATUS=0"] {
            assert!(options.iter().any(|o| o == wanted), "SQLite built without {wanted}: {options:?}");
        }
        // One page cache per connection, not one behind a process-wide mutex.
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "SQLite built with ENABLE_MEMORY_MANAGEMENT: {options:?}"
        );
    }
}
