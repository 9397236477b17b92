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

/// A TCP relay to `target` (one connection) that hands the server's bytes on to the client only
/// while the returned switch is on: a server answer held back for as long as a test needs.
async fn held_back_relay(target: (String, u16)) -> (std::net::SocketAddr, tokio::sync::watch::Sender<bool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (switch, mut on) = tokio::sync::watch::channel(true);
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = tokio::net::TcpStream::connect(target).await.unwrap();
        let ((mut client_r, mut client_w), (mut server_r, mut server_w)) = (client.into_split(), server.into_split());
        tokio::spawn(async move { tokio::io::copy(&mut client_r, &mut server_w).await });
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if on.wait_for(|on| *on).await.is_err() || client_w.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    (addr, switch)
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
    use std::str::FromStr;
    let Some((pg, _)) = external_urls() else { return };
    let opts = sqlx::postgres::PgConnectOptions::from_str(&pg).unwrap();
    let (relay, answers) = held_back_relay((opts.get_host().to_owned(), opts.get_port())).await;
    let mut conn = sqlx::PgConnection::connect_with(&opts.host("127.0.0.1").port(relay.port())).await.unwrap();
    for _ in 0..5 {
        // The BEGIN reaches the server, its answer is held back, and the waiting future is
        // dropped.
        answers.send_replace(false);
        let mut begin = Box::pin(conn.begin());
        let pending = std::future::poll_fn(|cx| std::task::Poll::Ready(begin.as_mut().poll(cx).is_pending())).await;
        assert!(pending, "BEGIN waits for the answer held back");
        drop(begin);
        answers.send_replace(true);
        // A transaction whose first statement must come first, as the feed's snapshot read does.
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .expect("the connection was not left inside a transaction");
        tx.commit().await.unwrap();
    }
}
