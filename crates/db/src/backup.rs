//! Backing up and restoring the embedded (SQLite) database.
//!
//! [`backup`] takes an online, consistent copy while servers run: SQLite's `VACUUM INTO`, one
//! read transaction, so writers carry on (WAL) and the copy is the database as of one moment —
//! never a file copy of a live WAL database, which can miss what the WAL holds. The copy is
//! written beside its destination, synced, then linked into place, so the named file is whole or
//! absent, and an existing file is never overwritten.
//!
//! [`restore`] replaces a stopped instance's database with such a copy. It first checks the
//! copy (a readable SQLite database that passes `quick_check`, with Turtlemen's migrations
//! table, every applied migration one this binary knows unchanged), then that no process holds
//! the database (an exclusive lock taken without waiting: a running server's connections hold a
//! shared lock), writes the copy beside the database, syncs it, renames it over the database,
//! removes the old write-ahead log and shared-memory files (applied to the new file they would
//! corrupt it), and runs the newer migrations. PostgreSQL and CockroachDB are backed up with
//! their own tools (`pg_dump`/`pg_restore`, `BACKUP`/`RESTORE`): both functions refuse them.
//!
//! This module must never copy a live database file byte by byte, nor replace one in place.

use crate::{Db, DbError};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteLockingMode};
use sqlx::{ConnectOptions, Connection, Executor};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// Where to read how PostgreSQL and CockroachDB are backed up.
const SERVER_TOOLS: &str = "back up PostgreSQL with pg_dump (restore with pg_restore) and CockroachDB with its \
     BACKUP and RESTORE statements; see docs/operations.md";

/// Why a backup was not written.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the database is PostgreSQL or CockroachDB, which Turtlemen does not copy itself: {SERVER_TOOLS}")]
    NotSqlite,
    #[error("{0} exists already; name a new file (a backup never overwrites one)")]
    Exists(PathBuf),
    #[error("cannot write the backup {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the backup {0} cannot be read back: {1}")]
    Unreadable(PathBuf, String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Why a restore did not happen. Nothing was changed unless the error says so.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("restore replaces an embedded SQLite database only: {SERVER_TOOLS}")]
    NotSqlite,
    #[error("{0} does not exist")]
    Missing(PathBuf),
    #[error("{path} is not a usable SQLite database: {reason}")]
    NotADatabase { path: PathBuf, reason: String },
    #[error("{0} is not a Turtlemen database (it has no migrations table)")]
    NotTurtlemen(PathBuf),
    #[error(
        "{path} was made by a newer Turtlemen: its schema is at version {found}, this binary knows up to {known}; \
         restore it with that release or a newer one"
    )]
    Newer { path: PathBuf, found: i64, known: i64 },
    #[error(
        "{path} has migration {version} applied differently from this binary's, or not completed; it cannot be brought up to date"
    )]
    Mismatch { path: PathBuf, version: i64 },
    #[error(
        "the database {0} is in use (a Turtlemen server or another program has it open); stop every server that uses it, then restore"
    )]
    InUse(PathBuf),
    #[error("cannot replace the database at {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the database was replaced, but bringing it up to date failed: {0}")]
    Migrate(DbError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a backup or restore wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub bytes: u64,
    /// Tables in the copy (SQLite's own and the full-text index's shadow tables included).
    pub tables: u64,
    /// The newest migration applied in the copy.
    pub schema_version: i64,
}

/// Writes a consistent copy of the SQLite database `db` to the new file `to`, while servers keep
/// using it.
pub async fn backup(db: &Db, to: &Path) -> Result<Copied, BackupError> {
    let Db::Sqlite(pool) = db else { return Err(BackupError::NotSqlite) };
    if to.symlink_metadata().is_ok() {
        return Err(BackupError::Exists(to.to_owned()));
    }
    let io = |source| BackupError::Io { path: to.to_owned(), source };
    let partial = beside(to, "partial");
    match std::fs::remove_file(&partial) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let target = partial.to_str().ok_or_else(|| io(std::io::Error::other("the path is not UTF-8")))?;
    let copied = sqlx::query("VACUUM INTO $1").bind(target).execute(pool).await;
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&partial);
        return Err(BackupError::Db(e.into()));
    }
    let placed = sync_file(&partial).and_then(|()| std::fs::hard_link(&partial, to));
    let _ = std::fs::remove_file(&partial);
    match placed {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(BackupError::Exists(to.to_owned())),
        other => other.map_err(io)?,
    }
    sync_dir(to).map_err(io)?;
    let mut conn = open_copy(to).await.map_err(|e| BackupError::Unreadable(to.to_owned(), e.to_string()))?;
    let described = describe(&mut conn, to).await;
    let _ = conn.close().await;
    described.map_err(|e| BackupError::Unreadable(to.to_owned(), e.to_string()))
}

/// Replaces the SQLite database of `database_url` (which no process may have open) with the
/// backup `from`, then migrates it to this binary's schema.
pub async fn restore(database_url: &str, from: &Path) -> Result<Copied, RestoreError> {
    if !database_url.starts_with("sqlite:") {
        return Err(RestoreError::NotSqlite);
    }
    let target = SqliteConnectOptions::from_str(database_url)
        .map_err(|e| DbError::Unavailable(format!("malformed SQLite URL: {e}; use sqlite://PATH")))?
        .get_filename()
        .to_owned();
    if !from.is_file() {
        return Err(RestoreError::Missing(from.to_owned()));
    }
    let not_db = |e: sqlx::Error| RestoreError::NotADatabase { path: from.to_owned(), reason: e.to_string() };
    let mut source = open_copy(from).await.map_err(not_db)?;
    let checked = check(&mut source, from).await;
    if let Err(e) = checked {
        let _ = source.close().await;
        return Err(e);
    }
    let io = |source| RestoreError::Io { path: target.clone(), source };
    let incoming = beside(&target, "restoring");
    match std::fs::remove_file(&incoming) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let into = incoming.to_str().ok_or_else(|| io(std::io::Error::other("the path is not UTF-8")))?.to_owned();
    let written = source.execute(sqlx::query("VACUUM INTO $1").bind(into)).await;
    let _ = source.close().await;
    if let Err(e) = written.map_err(DbError::from).map(|_| ()).and_then(|()| sync_file(&incoming).map_err(io_db)) {
        let _ = std::fs::remove_file(&incoming);
        return Err(e.into());
    }
    if let Err(e) = ensure_unused(&target).await {
        let _ = std::fs::remove_file(&incoming);
        return Err(e);
    }
    std::fs::rename(&incoming, &target).map_err(io)?;
    for stale in [beside_suffix(&target, "-wal"), beside_suffix(&target, "-shm")] {
        match std::fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
    }
    sync_dir(&target).map_err(io)?;

    let db = Db::connect(&crate::DbOptions {
        url: database_url.to_owned(),
        max_connections: 1,
        search_path: None,
        create_if_missing: false,
    })
    .await?;
    let migrated = db.migrate().await;
    db.close().await;
    migrated.map_err(RestoreError::Migrate)?;
    let mut conn = open_copy(&target).await.map_err(DbError::from)?;
    let described = describe(&mut conn, &target).await;
    let _ = conn.close().await;
    Ok(described?)
}

fn io_db(e: std::io::Error) -> DbError {
    DbError::Unavailable(format!("cannot write the restored database: {e}"))
}

/// Opens a file that no one writes (a backup) to read it: immutable, so no lock, journal or
/// shared memory file is made beside it.
async fn open_copy(path: &Path) -> Result<SqliteConnection, sqlx::Error> {
    SqliteConnectOptions::new().filename(path).read_only(true).immutable(true).connect().await
}

/// The copy's size, tables and schema version.
async fn describe(conn: &mut SqliteConnection, path: &Path) -> Result<Copied, DbError> {
    let tables: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetch_one(&mut *conn).await?;
    let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
        .fetch_one(&mut *conn)
        .await?;
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(Copied { bytes, tables: u64::try_from(tables).unwrap_or(0), schema_version: version.unwrap_or(0) })
}

/// Refuses a file that is not a sound Turtlemen database this binary can migrate.
async fn check(conn: &mut SqliteConnection, path: &Path) -> Result<(), RestoreError> {
    let not_db = |e: sqlx::Error| RestoreError::NotADatabase { path: path.to_owned(), reason: e.to_string() };
    let verdict: String = sqlx::query_scalar("PRAGMA quick_check(1)").fetch_one(&mut *conn).await.map_err(not_db)?;
    if verdict != "ok" {
        return Err(RestoreError::NotADatabase { path: path.to_owned(), reason: format!("quick_check: {verdict}") });
    }
    let table: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(not_db)?;
    if table.is_none() {
        return Err(RestoreError::NotTurtlemen(path.to_owned()));
    }
    let applied: Vec<(i64, bool, Vec<u8>)> =
        sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await
            .map_err(not_db)?;
    let known: Vec<(i64, &[u8])> = crate::pool::SQLITE_MIGRATIONS
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, m.checksum.as_ref()))
        .collect();
    let newest_known = known.iter().map(|(v, _)| *v).max().unwrap_or(0);
    let newest_found = applied.iter().map(|(v, ..)| *v).max().unwrap_or(0);
    if applied.iter().any(|(v, ..)| !known.iter().any(|(k, _)| k == v)) {
        return Err(RestoreError::Newer { path: path.to_owned(), found: newest_found, known: newest_known });
    }
    for (version, success, checksum) in &applied {
        let same = known.iter().any(|(k, sum)| k == version && *sum == checksum.as_slice());
        if !success || !same {
            return Err(RestoreError::Mismatch { path: path.to_owned(), version: *version });
        }
    }
    Ok(())
}

/// Fails with [`RestoreError::InUse`] if any process has the database open: its exclusive lock
/// is taken without waiting, then let go at once.
async fn ensure_unused(target: &Path) -> Result<(), RestoreError> {
    if !target.exists() {
        return Ok(());
    }
    let opts = SqliteConnectOptions::new()
        .filename(target)
        .locking_mode(SqliteLockingMode::Exclusive)
        .busy_timeout(Duration::ZERO);
    let mut conn = match opts.connect().await {
        Ok(conn) => conn,
        Err(e) if is_busy(&e) => return Err(RestoreError::InUse(target.to_owned())),
        Err(e) => return Err(RestoreError::Db(e.into())),
    };
    let locked = match conn.execute("BEGIN EXCLUSIVE").await {
        Ok(_) => conn.execute("COMMIT").await.map(|_| ()),
        Err(e) => Err(e),
    };
    let _ = conn.close().await;
    match locked {
        Ok(()) => Ok(()),
        Err(e) if is_busy(&e) => Err(RestoreError::InUse(target.to_owned())),
        Err(e) => Err(RestoreError::Db(e.into())),
    }
}

/// SQLite's `SQLITE_BUSY` (5) or `SQLITE_LOCKED` (6), extended codes included.
fn is_busy(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else { return false };
    db.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

/// `dir/.{name}.{what}`: a hidden file beside `path`, on the same file system (for the rename).
fn beside(path: &Path, what: &str) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".");
    name.push(what);
    path.with_file_name(name)
}

/// `path` with `suffix` appended to its file name (`turtlemen.db-wal`).
fn beside_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn sync_file(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

/// Makes a rename or link in `path`'s folder durable.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_files_stay_in_the_folder() {
        assert_eq!(beside(Path::new("/d/turtlemen.db"), "restoring"), PathBuf::from("/d/.turtlemen.db.restoring"));
        assert_eq!(beside(Path::new("b.db"), "partial"), PathBuf::from(".b.db.partial"));
        assert_eq!(beside_suffix(Path::new("/d/turtlemen.db"), "-wal"), PathBuf::from("/d/turtlemen.db-wal"));
    }
}
