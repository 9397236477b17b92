//! The database layer on both backends: migrations, schema checks, and retrying a transaction
//! that PostgreSQL really aborts with SQLSTATE 40001.

use crate::helpers::{PgSchema, external_urls};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use turtlemen_db::{Db, DbError, DbOptions, retry_serializable};

fn opts(url: String) -> DbOptions {
    DbOptions { url, max_connections: 4, search_path: None, create_if_missing: true }
}

async fn migrations_are_checked_and_idempotent(db: Db) {
    assert!(matches!(db.ensure_migrated().await, Err(DbError::SchemaOutdated(_))), "a fresh database is behind");
    db.migrate().await.unwrap();
    db.migrate().await.unwrap();
    db.ensure_migrated().await.unwrap();
    assert_eq!(turtlemen_db::users::count(&db).await.unwrap(), 0);
}

#[tokio::test]
async fn sqlite_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&opts(format!("sqlite://{}", dir.path().join("t.db").display()))).await.unwrap();
    migrations_are_checked_and_idempotent(db).await;
}

#[tokio::test]
async fn postgres_migrations() {
    let Some((pg, _)) = external_urls() else { return };
    let schema = PgSchema::create(&pg).await;
    let db = Db::connect(&opts(schema.url())).await.unwrap();
    migrations_are_checked_and_idempotent(db).await;
}

#[tokio::test]
async fn sqlite_file_in_a_missing_folder_is_a_clear_error() {
    let err = Db::connect(&opts("sqlite:///nonexistent-folder/sub/t.db".into())).await.unwrap_err().to_string();
    assert!(err.contains("cannot open SQLite database") && err.contains("--database-url"), "{err}");
}

/// Two SERIALIZABLE transactions that each count the users and then insert one conflict (write
/// skew): PostgreSQL aborts one with 40001, and `retry_serializable` runs it again.
#[tokio::test]
async fn postgres_serialization_failures_are_retried() {
    let Some((pg, _)) = external_urls() else { return };
    let schema = PgSchema::create(&pg).await;
    let db = Db::connect(&opts(schema.url())).await.unwrap();
    db.migrate().await.unwrap();
    let Db::Postgres(pool) = db.clone() else { unreachable!() };

    let attempts = Arc::new(AtomicU32::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let worker = |name: &'static str| {
        let (pool, attempts, barrier) = (pool.clone(), attempts.clone(), barrier.clone());
        tokio::spawn(async move {
            retry_serializable(|| {
                let (pool, attempts, barrier) = (pool.clone(), attempts.clone(), barrier.clone());
                async move {
                    let first = attempts.fetch_add(1, Ordering::SeqCst) < 2;
                    let mut tx = pool.begin_with("BEGIN ISOLATION LEVEL SERIALIZABLE").await?;
                    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&mut *tx).await?;
                    if first {
                        // Both first attempts have read before either writes.
                        barrier.wait().await;
                    }
                    sqlx::query(
                        "INSERT INTO users (id, username, username_key, email, email_key, display_name, role, created_at, updated_at) \
                         VALUES ($1, $2, $2, $3, $3, $2, 'user', now(), now())",
                    )
                    .bind(uuid::Uuid::now_v7())
                    .bind(format!("{name}{n}"))
                    .bind(format!("{name}@example.org"))
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok::<_, DbError>(())
                }
            })
            .await
        })
    };
    let (a, b) = (worker("ann"), worker("ben"));
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    assert!(attempts.load(Ordering::SeqCst) >= 3, "one transaction was aborted with 40001 and retried");
    assert_eq!(turtlemen_db::users::count(&db).await.unwrap(), 2);
}

#[tokio::test]
async fn other_errors_are_not_retried() {
    let attempts = AtomicU32::new(0);
    let out: Result<(), DbError> = retry_serializable(|| {
        attempts.fetch_add(1, Ordering::SeqCst);
        async { Err(DbError::Conflict { constraint: "x".into() }) }
    })
    .await;
    assert!(matches!(out, Err(DbError::Conflict { .. })));
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

/// `TURTLEMEN_TEST_POSTGRES_SERIALIZABLE=1` runs the PostgreSQL stack at CockroachDB's isolation
/// (see `PgSchema::url`).
#[tokio::test]
async fn the_postgres_stack_runs_at_serializable_when_asked() {
    let Some((pg, _)) = external_urls() else { return };
    let schema = PgSchema::create(&pg).await;
    let db = Db::connect(&opts(schema.url())).await.unwrap();
    let Db::Postgres(pool) = db else { unreachable!() };
    let level: String = sqlx::query_scalar("SHOW transaction_isolation").fetch_one(&pool).await.unwrap();
    let asked = std::env::var_os("TURTLEMEN_TEST_POSTGRES_SERIALIZABLE").is_some_and(|v| v == "1");
    assert_eq!(level, if asked { "serializable" } else { "read committed" });
}

/// A request dropped while its transaction's `BEGIN` is on the wire (a client that went away)
/// leaves no transaction open on its connection: the next transaction's first statement is its
/// own (sqlx 0.9.0's PostgreSQL `begin` was not cancel-safe, so a pooled connection went to the
/// next request inside a stale transaction; seen by the community bench as "SET TRANSACTION
/// ISOLATION LEVEL must be called before any query").
#[tokio::test]
async fn a_begin_cancelled_on_the_wire_leaves_no_open_transaction() {
    use sqlx::Connection;
    use std::future::Future;
    let Some((pg, _)) = external_urls() else { return };
    let mut conn = sqlx::PgConnection::connect(&pg).await.unwrap();
    let mut cancelled = 0;
    for _ in 0..20 {
        // Polled once: the BEGIN is sent and its answer awaited; then the future is dropped
        // (one that was answered at once is a transaction, dropped and rolled back as usual).
        let mut begin = Box::pin(conn.begin());
        let pending = std::future::poll_fn(|cx| std::task::Poll::Ready(begin.as_mut().poll(cx).is_pending())).await;
        drop(begin);
        cancelled += usize::from(pending);
        // A transaction whose first statement must come first, as the feed's snapshot read does.
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .expect("the connection was not left inside a transaction");
        tx.commit().await.unwrap();
    }
    assert!(cancelled > 0, "no BEGIN was caught waiting for its answer");
}
