//! Forged session cookies cost no more than real ones: the gateway refuses a cookie value it
//! did not sign (its HMAC, keyed from `cookie_secret`) before asking the session store. Checked
//! on Redis through a tap that keeps every byte the program sends it: a forged cookie's store key
//! never appears there, a real one's does, and the real one still works. With the gateway's
//! session cache on, as deployed, a cached session is found by the cookie value itself, and a
//! forgery next to it (the same id with another tag, a value cut short or made longer) still
//! misses and is refused before the store.

use crate::helpers::{Stack, TestApp, fresh_settings};
use base64::Engine;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TCP relay to the Redis at `url` that keeps what clients send; returns its URL and the bytes.
async fn redis_tap(url: &str) -> (String, Arc<Mutex<Vec<u8>>>) {
    let rest = url.strip_prefix("redis://").expect("a redis:// URL");
    let (upstream, path) =
        rest.split_once('/').map_or((rest.to_string(), String::new()), |(a, p)| (a.into(), format!("/{p}")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { continue };
            let kept = kept.clone();
            tokio::spawn(async move {
                let (mut client_rx, mut client_tx) = client.into_split();
                let (mut server_rx, mut server_tx) = server.into_split();
                let up = async {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = client_rx.read(&mut buf).await {
                        if n == 0 || server_tx.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        kept.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                };
                let down = tokio::io::copy(&mut server_rx, &mut client_tx);
                let _ = tokio::join!(up, down);
            });
        }
    });
    (format!("redis://{addr}{path}"), seen)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_session_cookies_never_reach_the_store() {
    let Some((mut settings, dir, schema)) = fresh_settings(Stack::External).await else { return };
    let (url, seen) = redis_tap(settings.session_url.as_deref().unwrap()).await;
    settings.session_url = Some(url);
    let app = TestApp::spawn_with(settings, dir, schema).await;
    let ann = crate::uploads::signed_in(&app, "ann").await;
    let header = ann.cookie_header();
    let real = header
        .split("; ")
        .find_map(|pair| pair.strip_prefix("turtlemen_session="))
        .expect("the session cookie")
        .to_string();

    // Well formed (64 bytes, base64url) but not signed; and the real id with a changed tag.
    let unsigned = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 64]);
    let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&real).unwrap();
    bytes[63] ^= 1;
    let retagged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
    seen.lock().unwrap().clear();
    for forged in [&unsigned, &retagged] {
        for _ in 0..5 {
            let res = app
                .client
                .get(app.url("/api/v1/me"))
                .header("cookie", format!("turtlemen_session={forged}"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 401, "a forged cookie is no session");
        }
        let key = turtlemen_gateway::session::key(forged);
        assert!(!contains(&seen.lock().unwrap(), &key), "the store was asked for a forged cookie");
    }

    // The real cookie is looked up (the tests run without the gateway's session cache) and works.
    let res = app.client.get(app.url("/api/v1/me")).header("cookie", &header).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(contains(&seen.lock().unwrap(), &turtlemen_gateway::session::key(&real)), "the tap sees lookups");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_session_is_found_by_its_cookie_and_forgeries_next_to_it_are_refused() {
    let Some((mut settings, dir, schema)) = fresh_settings(Stack::External).await else { return };
    let (url, seen) = redis_tap(settings.session_url.as_deref().unwrap()).await;
    settings.session_url = Some(url);
    let app = TestApp::spawn_with_session_cache(settings, dir, schema, std::time::Duration::from_secs(600)).await;
    let ann = crate::uploads::signed_in(&app, "ann").await;
    let real = ann.cookie("turtlemen_session").expect("the session cookie");
    let me = |cookie: String| app.client.get(app.url("/api/v1/me")).header("cookie", cookie).send();

    // The first request may read the store; the next ones are answered from the cache.
    assert_eq!(me(format!("turtlemen_session={real}")).await.unwrap().status(), 200);
    seen.lock().unwrap().clear();
    for _ in 0..3 {
        assert_eq!(me(format!("turtlemen_session={real}")).await.unwrap().status(), 200);
    }
    let key = turtlemen_gateway::session::key(&real);
    assert!(!contains(&seen.lock().unwrap(), &key), "a cached session was read from the store again");

    let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&real).unwrap();
    bytes[63] ^= 1;
    let retagged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
    let short = real[..real.len() - 1].to_string();
    let long = format!("{real}A");
    for forged in [retagged, short, long] {
        let res = me(format!("turtlemen_session={forged}")).await.unwrap();
        assert_eq!(res.status(), 401, "{forged} is no session");
        let key = turtlemen_gateway::session::key(&forged);
        assert!(!contains(&seen.lock().unwrap(), &key), "the store was asked for {forged}");
    }
    // The real one still works, from the cache.
    assert_eq!(me(format!("turtlemen_session={real}")).await.unwrap().status(), 200);
    app.stop().await;
}
