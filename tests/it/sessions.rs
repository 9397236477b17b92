//! The session store contract, run against both implementations.

use crate::helpers::external_urls;
use std::time::Duration;
use turtlemen_session::{Sessions, StoreOptions};

async fn contract(store: Sessions) {
    let long = Duration::from_secs(60);
    assert_eq!(store.get("missing").await.unwrap(), None);

    store.set("a", b"one", long).await.unwrap();
    assert_eq!(store.get("a").await.unwrap().as_deref(), Some(&b"one"[..]));
    store.set("a", b"two", long).await.unwrap();
    assert_eq!(store.get("a").await.unwrap().as_deref(), Some(&b"two"[..]), "set replaces");

    assert!(!store.set_if_absent("a", b"three", long).await.unwrap(), "live key is kept");
    assert_eq!(store.get("a").await.unwrap().as_deref(), Some(&b"two"[..]));
    assert!(store.set_if_absent("b", b"new", long).await.unwrap());

    assert!(store.touch("a", long).await.unwrap());
    assert!(!store.touch("missing", long).await.unwrap());

    store.delete("a").await.unwrap();
    store.delete("a").await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), None);

    // Expiry: a record is gone once its time has passed (waiting here is the behaviour under
    // test, not synchronisation), and an expired key counts as absent.
    store.set("short", b"x", Duration::from_millis(150)).await.unwrap();
    store.set("touched", b"y", Duration::from_millis(150)).await.unwrap();
    assert!(store.touch("touched", long).await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.get("short").await.unwrap(), None);
    assert!(!store.touch("short", long).await.unwrap());
    assert!(store.set_if_absent("short", b"again", long).await.unwrap());
    assert_eq!(store.get("touched").await.unwrap().as_deref(), Some(&b"y"[..]), "touch extended it");

    // incr: a fixed window from the first increment; an expired counter starts again at 1.
    assert_eq!(store.incr("window", Duration::from_millis(300)).await.unwrap(), 1);
    assert_eq!(store.incr("window", long).await.unwrap(), 2, "counts on; keeps the first expiry");
    assert_eq!(store.get("window").await.unwrap().as_deref(), Some(&b"2"[..]), "decimal ASCII");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.get("window").await.unwrap(), None, "the later ttl did not extend it");
    assert_eq!(store.incr("window", long).await.unwrap(), 1);
    // Concurrent increments each see their own count.
    let all = futures::future::join_all((0..20).map(|_| store.incr("many", long))).await;
    let mut counts: Vec<i64> = all.into_iter().map(Result::unwrap).collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=20).collect::<Vec<i64>>());
    store.set("plain", b"1", long).await.unwrap();
    assert_eq!(store.incr("plain", long).await.unwrap(), 2, "a counter written by set counts on");

    // take: exactly one of two concurrent callers gets the value, then it is gone.
    store.set("code", b"c", long).await.unwrap();
    let (a, b) = tokio::join!(store.take("code"), store.take("code"));
    let winners = [a.unwrap(), b.unwrap()].into_iter().flatten().count();
    assert_eq!(winners, 1);
    assert_eq!(store.take("code").await.unwrap(), None);

    // delete_if: only the holder of the value removes the key (a lock released by its owner).
    store.set("lock", b"mine", long).await.unwrap();
    assert!(!store.delete_if("lock", b"theirs").await.unwrap(), "another value leaves it");
    assert_eq!(store.get("lock").await.unwrap().as_deref(), Some(&b"mine"[..]));
    assert!(store.delete_if("lock", b"mine").await.unwrap());
    assert_eq!(store.get("lock").await.unwrap(), None);
    assert!(!store.delete_if("lock", b"mine").await.unwrap(), "nothing left to delete");

    // get_many: the values of several keys at once, in order, absent or expired ones as None.
    store.set("m1", b"one", long).await.unwrap();
    store.set("m3", b"three", long).await.unwrap();
    store.set("m4", b"gone", Duration::from_millis(100)).await.unwrap();
    assert_eq!(store.get_many(&[]).await.unwrap(), Vec::<Option<Vec<u8>>>::new());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        store.get_many(&["m1", "m2", "m3", "m4", "m1"]).await.unwrap(),
        vec![Some(b"one".to_vec()), None, Some(b"three".to_vec()), None, Some(b"one".to_vec())]
    );

    // Binary values survive unchanged.
    let bytes: Vec<u8> = (0..=255).collect();
    store.set("bin", &bytes, long).await.unwrap();
    assert_eq!(store.get("bin").await.unwrap(), Some(bytes));
    store.ping().await.unwrap();
}

#[tokio::test]
async fn embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = turtlemen_session::open(&StoreOptions::Embedded { path: dir.path().join("s.db") }).await.unwrap();
    contract(store).await;
}

#[tokio::test]
async fn embedded_store_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions::Embedded { path: dir.path().join("s.db") };
    let store = turtlemen_session::open(&opts).await.unwrap();
    store.set("k", b"v", Duration::from_secs(60)).await.unwrap();
    drop(store);
    let store = turtlemen_session::open(&opts).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
}

#[tokio::test]
async fn redis_store() {
    let Some((_, redis)) = external_urls() else { return };
    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let store = turtlemen_session::open(&StoreOptions::Redis { url: redis, prefix }).await.unwrap();
    contract(store).await;
}

#[tokio::test]
async fn redis_keys_are_namespaced() {
    let Some((_, redis)) = external_urls() else { return };
    let a = turtlemen_session::open(&StoreOptions::Redis {
        url: redis.clone(),
        prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
    })
    .await
    .unwrap();
    let b = turtlemen_session::open(&StoreOptions::Redis {
        url: redis,
        prefix: format!("test:{}:", uuid::Uuid::new_v4().simple()),
    })
    .await
    .unwrap();
    a.set("same", b"a", Duration::from_secs(60)).await.unwrap();
    assert_eq!(b.get("same").await.unwrap(), None);
}

#[tokio::test]
async fn unreachable_redis_is_a_clear_error() {
    let err = turtlemen_session::open(&StoreOptions::Redis { url: "redis://127.0.0.1:1".into(), prefix: "x:".into() })
        .await
        .err()
        .expect("port 1 has no Redis");
    let text = err.to_string();
    assert!(text.contains("cannot reach Redis at 127.0.0.1:1") && text.contains("--session-url"), "{text}");
}
