//! tus 1.0.0 uploads through the gateway, on both stacks: creation (with upload), offsets,
//! checksums, refused concurrent writers, interrupted chunks resumed to a byte-identical
//! original, termination, expiry with cleaning, quotas, and every malformed request refused
//! with a clean 4xx that changes nothing.

use crate::gateway::Browser;
use crate::helpers::{Stack, TestApp, fresh_settings};
use crate::on_both_stacks;
use base64::Engine;
use reqwest::{Method, RequestBuilder, StatusCode};
use std::path::PathBuf;
use std::time::Duration;
use turtlemen_domain::Role;

/// A signed-in browser session for a new user.
pub async fn signed_in(app: &TestApp, username: &str) -> Browser {
    signed_in_as(app, username, Role::User).await
}

/// A signed-in browser session for a new user with `role`.
pub async fn signed_in_as(app: &TestApp, username: &str, role: Role) -> Browser {
    crate::helpers::create_account(&app.db, username, role).await;
    let browser = Browser::default();
    let (landed, _) = browser.navigate(app, "/studio", username).await;
    assert!(landed.ends_with("/studio"), "signed in and back: {landed}");
    browser
}

pub fn tus(app: &TestApp, who: &Browser, method: Method, path: &str) -> RequestBuilder {
    app.client.request(method, app.url(path)).header("tus-resumable", "1.0.0").header("cookie", who.cookie_header())
}

pub fn metadata(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k} {}", base64::engine::general_purpose::STANDARD.encode(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Creates an upload of `length` bytes; returns its path and its video's id.
pub async fn create(app: &TestApp, who: &Browser, length: u64) -> (String, String) {
    let res = tus(app, who, Method::POST, "/api/v1/uploads")
        .header("upload-length", length.to_string())
        .header("upload-metadata", metadata(&[("filename", "clip.mp4"), ("title", "My clip")]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "{:?}", res.text().await);
    assert_eq!(res.headers()["tus-resumable"], "1.0.0");
    assert!(res.headers().contains_key("upload-expires"));
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/api/v1/uploads/"), "{location}");
    (location, res.headers()["video-id"].to_str().unwrap().to_owned())
}

async fn offset(app: &TestApp, who: &Browser, path: &str) -> (StatusCode, Option<u64>) {
    let res = tus(app, who, Method::HEAD, path).send().await.unwrap();
    let offset = res.headers().get("upload-offset").map(|v| v.to_str().unwrap().parse().unwrap());
    (res.status(), offset)
}

async fn patch(app: &TestApp, who: &Browser, path: &str, at: u64, bytes: &[u8]) -> reqwest::Response {
    tus(app, who, Method::PATCH, path)
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", at.to_string())
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
}

fn data_dir(app: &TestApp) -> PathBuf {
    app.data_dir.clone()
}

/// Where uploads in progress are staged: beside the media (the default `file://` store in the
/// data dir), so that every API replica sharing the media folder shares them.
fn staging_dir(app: &TestApp) -> PathBuf {
    app.data_dir.join("media").join("uploads")
}

fn original_path(app: &TestApp, video: &str) -> PathBuf {
    data_dir(app).join("media/videos").join(video).join("original")
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().to_vec()
}

fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

on_both_stacks! {
    async fn the_api_describes_itself(app) {
        let (status, doc) = app.get_json("/api/v1/openapi.json").await;
        assert_eq!(status, 200);
        assert_eq!(doc["openapi"], "3.1.0");
        for path in ["/uploads", "/uploads/{id}", "/videos/{id}", "/me/videos", "/admin/jobs", "/channels/{handle}/avatar", "/channels/{handle}/banner"] {
            assert!(doc["paths"][path].is_object(), "{path} documented");
        }
    }

    async fn capabilities_and_bad_creations(app) {
        let res = app.client.request(Method::OPTIONS, app.url("/api/v1/uploads")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(res.headers()["tus-version"], "1.0.0");
        let ext = res.headers()["tus-extension"].to_str().unwrap();
        for e in ["creation", "creation-with-upload", "termination", "expiration", "checksum"] {
            assert!(ext.split(',').any(|x| x == e), "{e} in {ext}");
        }
        assert_eq!(res.headers()["tus-max-size"], (8u64 << 30).to_string().as_str());
        assert!(res.headers()["tus-checksum-algorithm"].to_str().unwrap().contains("sha1"));

        // Signed-out visitors cannot create uploads.
        let anon = app.client.post(app.url("/api/v1/uploads")).header("tus-resumable", "1.0.0")
            .header("upload-length", "10").header("upload-metadata", metadata(&[("filename", "a.mp4")]))
            .send().await.unwrap();
        assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);

        let ann = signed_in(&app, "ann").await;
        type Case<'a> = (Vec<(&'a str, String)>, u16, &'a str);
        let cases: Vec<Case> = vec![
            (vec![("upload-metadata", metadata(&[("filename", "a.mp4")]))], 400, "upload_length_missing"),
            (vec![("upload-length", "0".into()), ("upload-metadata", metadata(&[("filename", "a.mp4")]))], 400, "empty_upload"),
            (vec![("upload-length", "-5".into()), ("upload-metadata", metadata(&[("filename", "a.mp4")]))], 400, "invalid_header"),
            (vec![("upload-length", (9u64 << 30).to_string()), ("upload-metadata", metadata(&[("filename", "a.mp4")]))], 413, "upload_too_large"),
            (vec![("upload-length", "10".into())], 400, "filename_missing"),
            (vec![("upload-length", "10".into()), ("upload-metadata", "filename !!notbase64".into())], 400, "invalid_metadata"),
            (vec![("upload-length", "10".into()), ("upload-defer-length", "1".into())], 400, "defer_length_unsupported"),
            (vec![("upload-length", "10".into()), ("upload-metadata", metadata(&[("filename", "a.mp4"), ("privacy", "secret")]))], 400, "invalid_privacy"),
            (vec![("upload-length", "10".into()), ("upload-metadata", metadata(&[("filename", "a.mp4"), ("title", &"x".repeat(101))]))], 400, "invalid_field"),
        ];
        for (headers, status, code) in cases {
            let mut req = tus(&app, &ann, Method::POST, "/api/v1/uploads");
            for (k, v) in &headers {
                req = req.header(*k, v);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status().as_u16(), status, "{headers:?}");
            assert_eq!(res.headers()["tus-resumable"], "1.0.0");
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["error"], code, "{headers:?}: {body}");
        }
        // Without Tus-Resumable: 412.
        let res = app.client.post(app.url("/api/v1/uploads")).header("cookie", ann.cookie_header())
            .header("upload-length", "10").header("upload-metadata", metadata(&[("filename", "a.mp4")]))
            .send().await.unwrap();
        assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
        // Nothing was created by any of them.
        let (status, body) = get_json(&app, &ann, "/api/v1/me/videos").await;
        assert_eq!(status, 200);
        assert_eq!(body["videos"].as_array().unwrap().len(), 0);
    }

    async fn an_upload_in_chunks_becomes_a_processing_video(app) {
        let ann = signed_in(&app, "ann").await;
        let bytes = sample(300_000);
        let (path, video) = create(&app, &ann, bytes.len() as u64).await;

        let (status, body) = get_json(&app, &ann, &format!("/api/v1/videos/{video}")).await;
        assert_eq!(status, 200);
        assert_eq!(body["state"], "uploading");
        assert_eq!(body["title"], "My clip");
        assert_eq!(body["privacy"], "public", "uploads are public unless told otherwise");
        assert_eq!(body["hls_url"], serde_json::Value::Null);
        assert_eq!(body["watch_url"], format!("/videos/{video}"));

        // The metadata can change while the bytes go up.
        let res = app.client.patch(app.url(&format!("/api/v1/videos/{video}")))
            .header("cookie", ann.cookie_header())
            .json(&serde_json::json!({"title": "Renamed", "tags": ["a", "b", "A"], "privacy": "public"}))
            .send().await.unwrap();
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["title"], "Renamed");
        assert_eq!(body["tags"], serde_json::json!(["a", "b"]));

        assert_eq!(offset(&app, &ann, &path).await, (StatusCode::OK, Some(0)));
        // Wrong content type, missing or wrong offset: refused, nothing written.
        let res = tus(&app, &ann, Method::PATCH, &path).header("upload-offset", "0").body("x").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let res = patch(&app, &ann, &path, 5, &bytes[..10]).await;
        assert_eq!(res.status(), StatusCode::CONFLICT);
        assert_eq!(offset(&app, &ann, &path).await.1, Some(0));

        let res = patch(&app, &ann, &path, 0, &bytes[..100_000]).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(res.headers()["upload-offset"], "100000");

        // A chunk whose checksum does not match is discarded whole.
        let wrong = base64::engine::general_purpose::STANDARD.encode([0u8; 20]);
        let res = tus(&app, &ann, Method::PATCH, &path)
            .header("content-type", "application/offset+octet-stream").header("upload-offset", "100000")
            .header("upload-checksum", format!("sha1 {wrong}")).body(bytes[100_000..200_000].to_vec())
            .send().await.unwrap();
        assert_eq!(res.status().as_u16(), 460);
        assert_eq!(offset(&app, &ann, &path).await.1, Some(100_000));
        // With the right checksum it counts.
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &bytes[100_000..200_000]);
        let res = tus(&app, &ann, Method::PATCH, &path)
            .header("content-type", "application/offset+octet-stream").header("upload-offset", "100000")
            .header("upload-checksum", format!("sha1 {}", base64::engine::general_purpose::STANDARD.encode(sha1)))
            .body(bytes[100_000..200_000].to_vec()).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(offset(&app, &ann, &path).await.1, Some(200_000));

        // Someone else cannot see, append to or end it.
        let bob = signed_in(&app, "bob").await;
        assert_eq!(offset(&app, &bob, &path).await.0, StatusCode::NOT_FOUND);
        assert_eq!(patch(&app, &bob, &path, 200_000, &bytes[200_000..]).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(tus(&app, &bob, Method::DELETE, &path).send().await.unwrap().status(), StatusCode::NOT_FOUND);
        assert_eq!(get_json(&app, &bob, &format!("/api/v1/videos/{video}")).await.0, 404, "private while uploading");

        // More bytes than declared: the part that fits is kept, the rest refused.
        let mut too_long = bytes[200_000..].to_vec();
        too_long.extend_from_slice(b"extra");
        let res = patch(&app, &ann, &path, 200_000, &too_long).await;
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(offset(&app, &ann, &path).await.1, Some(300_000));

        let (_, body) = get_json(&app, &ann, &format!("/api/v1/videos/{video}")).await;
        assert_eq!(body["state"], "processing");
        let stored = std::fs::read(original_path(&app, &video)).unwrap();
        assert_eq!(sha256(&stored), sha256(&bytes));
        assert!(!staging_dir(&app).join(path.rsplit('/').next().unwrap()).exists(), "staging file moved");
        let jobs = turtlemen_db::jobs::list(&app.db, &turtlemen_db::jobs::JobFilter::default()).await.unwrap();
        assert_eq!(jobs.iter().filter(|j| j.kind == "transcode").count(), 1);

        // A completed upload takes no more bytes and cannot be terminated.
        assert_eq!(patch(&app, &ann, &path, 0, b"x").await.status(), StatusCode::CONFLICT);
        assert_eq!(tus(&app, &ann, Method::DELETE, &path).send().await.unwrap().status(), StatusCode::CONFLICT);
    }

    async fn creation_with_upload_and_a_broken_off_chunk_resume_to_the_same_bytes(app) {
        let ann = signed_in(&app, "ann").await;
        let bytes = sample(3 * 1024 * 1024 + 17);
        let first = 1024 * 1024;
        let res = tus(&app, &ann, Method::POST, "/api/v1/uploads")
            .header("upload-length", bytes.len().to_string())
            .header("upload-metadata", metadata(&[("filename", "whole.mp4")]))
            .header("content-type", "application/offset+octet-stream")
            .body(bytes[..first].to_vec())
            .send().await.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        assert_eq!(res.headers()["upload-offset"], first.to_string().as_str());
        let path = res.headers()["location"].to_str().unwrap().to_owned();
        let video = res.headers()["video-id"].to_str().unwrap().to_owned();

        // A chunk whose connection breaks halfway: the bytes that arrived are kept.
        let half = bytes[first..first + 1024 * 1024].to_vec();
        let stream = futures::stream::iter(vec![
            Ok::<_, std::io::Error>(half),
            Err(std::io::Error::other("cable pulled")),
        ]);
        let res = tus(&app, &ann, Method::PATCH, &path)
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", first.to_string())
            .body(reqwest::Body::wrap_stream(stream))
            .send().await;
        assert!(res.is_err() || res.unwrap().status().is_client_error());
        let resumed_at = wait_for_offset(&app, &ann, &path, (first + 1024 * 1024) as u64).await;
        let res = patch(&app, &ann, &path, resumed_at, &bytes[resumed_at as usize..]).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let stored = std::fs::read(original_path(&app, &video)).unwrap();
        assert_eq!(stored.len(), bytes.len());
        assert_eq!(sha256(&stored), sha256(&bytes));
    }

    async fn a_second_writer_is_refused_not_interleaved(app) {
        let ann = signed_in(&app, "ann").await;
        let bytes = sample(2 * 1024 * 1024);
        let (path, _) = create(&app, &ann, bytes.len() as u64).await;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
        let slow = tus(&app, &ann, Method::PATCH, &path)
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", "0")
            .body(reqwest::Body::wrap_stream(tokio_stream_from(rx)))
            .send();
        let slow = tokio::spawn(slow);
        tx.send(Ok(bytes[..1000].to_vec())).await.unwrap();
        // Wait until the first request holds the upload's lease.
        let id = uuid::Uuid::parse_str(path.rsplit('/').next().unwrap()).unwrap();
        let mut held = false;
        for _ in 0..200 {
            if turtlemen_db::uploads::is_locked(&app.db, id).await.unwrap() {
                held = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(held, "the first writer took the lease");
        let res = patch(&app, &ann, &path, 0, &bytes[..1000]).await;
        assert_eq!(res.status(), StatusCode::LOCKED, "{:?}", res.text().await);
        let res = tus(&app, &ann, Method::DELETE, &path).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::LOCKED);
        tx.send(Ok(bytes[1000..].to_vec())).await.unwrap();
        drop(tx);
        let res = slow.await.unwrap().unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(res.headers()["upload-offset"], bytes.len().to_string().as_str());
    }

    async fn termination_removes_bytes_and_video(app) {
        let ann = signed_in(&app, "ann").await;
        let (path, video) = create(&app, &ann, 1000).await;
        assert_eq!(patch(&app, &ann, &path, 0, &sample(500)).await.status(), StatusCode::NO_CONTENT);
        let res = tus(&app, &ann, Method::DELETE, &path).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        assert_eq!(offset(&app, &ann, &path).await.0, StatusCode::NOT_FOUND);
        assert_eq!(get_json(&app, &ann, &format!("/api/v1/videos/{video}")).await.0, 404);
        let staging = std::fs::read_dir(staging_dir(&app)).unwrap().count();
        assert_eq!(staging, 0);
    }

    async fn malformed_chunks_change_nothing(app) {
        let ann = signed_in(&app, "ann").await;
        let (path, _) = create(&app, &ann, 1000).await;
        for (name, value) in [("upload-offset", "abc"), ("upload-offset", "-1"), ("upload-checksum", "md5 AAAA"), ("upload-checksum", "sha1 nope!")] {
            let mut req = tus(&app, &ann, Method::PATCH, &path).header("content-type", "application/offset+octet-stream");
            if name != "upload-offset" {
                req = req.header("upload-offset", "0");
            }
            let res = req.header(name, value).body(sample(10)).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{name}: {value}");
        }
        for bad_id in ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "..%2F..%2Fetc"] {
            let res = tus(&app, &ann, Method::HEAD, &format!("/api/v1/uploads/{bad_id}")).send().await.unwrap();
            assert!(res.status() == 404 || res.status() == 400, "{bad_id}: {}", res.status());
        }
        assert_eq!(offset(&app, &ann, &path).await.1, Some(0));
    }
}

/// Expired uploads answer 410 and are cleaned: staging bytes and the video row go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_uploads_expire_and_are_cleaned() {
    for stack in [Stack::Embedded, Stack::External] {
        let Some((mut settings, dir, schema)) = fresh_settings(stack).await else { continue };
        settings.upload_expiry_secs = Some(1);
        let app = TestApp::spawn_with(settings, dir, schema).await;
        let ann = signed_in(&app, "ann").await;
        let (path, video) = create(&app, &ann, 1000).await;
        assert_eq!(patch(&app, &ann, &path, 0, &sample(10)).await.status(), StatusCode::NO_CONTENT);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        // Expired: 410 until the janitor has removed it, 404 after.
        let status = offset(&app, &ann, &path).await.0;
        assert!(status == StatusCode::GONE || status == StatusCode::NOT_FOUND, "{status}");
        let mut gone = false;
        for _ in 0..50 {
            if get_json(&app, &ann, &format!("/api/v1/videos/{video}")).await.0 == 404 {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(gone, "the janitor removed the expired upload's video");
        assert_eq!(std::fs::read_dir(staging_dir(&app)).unwrap().count(), 0);
        app.stop().await;
    }
}

/// An expired upload that cannot be cleaned (its staging file replaced by a folder, which is not
/// removed as a file) is logged and left for the next pass: the uploads after it are cleaned all
/// the same, and it is still there to be tried again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_cannot_be_cleaned_does_not_stop_the_sweep() {
    for stack in [Stack::Embedded, Stack::External] {
        let Some((mut settings, dir, schema)) = fresh_settings(stack).await else { continue };
        settings.upload_expiry_secs = Some(2);
        let app = TestApp::spawn_with(settings, dir, schema).await;
        let ann = signed_in(&app, "ann").await;
        // Expired first, so the sweep meets it first.
        let (bad_path, bad_video) = create(&app, &ann, 1000).await;
        let (good_path, good_video) = create(&app, &ann, 1000).await;
        for path in [&bad_path, &good_path] {
            assert_eq!(patch(&app, &ann, path, 0, &sample(10)).await.status(), StatusCode::NO_CONTENT);
        }
        let staging = staging_dir(&app).join(bad_path.rsplit('/').next().unwrap());
        std::fs::remove_file(&staging).unwrap();
        std::fs::create_dir_all(staging.join("stuck")).unwrap();

        let mut gone = false;
        for _ in 0..100 {
            if get_json(&app, &ann, &format!("/api/v1/videos/{good_video}")).await.0 == 404 {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(gone, "the upload after the one that cannot be cleaned was cleaned");
        assert_eq!(get_json(&app, &ann, &format!("/api/v1/videos/{bad_video}")).await.0, 200, "kept for the next pass");
        // Once it can be cleaned, a later pass does.
        std::fs::remove_dir_all(&staging).unwrap();
        let mut gone = false;
        for _ in 0..100 {
            if get_json(&app, &ann, &format!("/api/v1/videos/{bad_video}")).await.0 == 404 {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(gone, "tried again and cleaned");
        app.stop().await;
    }
}

/// Quotas are checked at creation against the declared length: total and per 24 hours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_refuse_uploads_that_would_exceed_them() {
    let Some((mut settings, dir, schema)) = fresh_settings(Stack::Embedded).await else { return };
    settings.upload_quota_bytes = Some(5000);
    settings.upload_daily_quota_bytes = Some(3000);
    let app = TestApp::spawn_with(settings, dir, schema).await;
    let ann = signed_in(&app, "ann").await;
    create(&app, &ann, 2000).await;
    let over_daily = tus(&app, &ann, Method::POST, "/api/v1/uploads")
        .header("upload-length", "1500")
        .header("upload-metadata", metadata(&[("filename", "b.mp4")]))
        .send()
        .await
        .unwrap();
    assert_eq!(over_daily.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(over_daily.json::<serde_json::Value>().await.unwrap()["error"], "daily_quota_exceeded");
    let over_total = tus(&app, &ann, Method::POST, "/api/v1/uploads")
        .header("upload-length", "3500")
        .header("upload-metadata", metadata(&[("filename", "b.mp4")]))
        .send()
        .await
        .unwrap();
    assert_eq!(over_total.json::<serde_json::Value>().await.unwrap()["error"], "quota_exceeded");
    create(&app, &ann, 1000).await;
    app.stop().await;
}

async fn get_json(app: &TestApp, who: &Browser, path: &str) -> (u16, serde_json::Value) {
    let res = app.client.get(app.url(path)).header("cookie", who.cookie_header()).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// The committed offset once the server has seen the broken chunk end (at most `expected`).
async fn wait_for_offset(app: &TestApp, who: &Browser, path: &str, expected: u64) -> u64 {
    for _ in 0..100 {
        let (status, offset) = offset(app, who, path).await;
        if status == StatusCode::OK && offset == Some(expected) {
            return expected;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    offset(app, who, path).await.1.unwrap()
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A small tmpfs mounted over a folder for one test (needs root), unmounted when dropped.
pub(crate) struct SmallDisk(PathBuf);

impl SmallDisk {
    /// `None` where this machine does not let the test mount (not root); under CI
    /// (`TURTLEMEN_TEST_REQUIRE_EXTERNAL`) that is a failure, not a skip.
    pub(crate) fn mount(at: &std::path::Path, bytes: u64) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "turtlemen-test", &at.to_string_lossy()])
            .status();
        if status.as_ref().is_ok_and(|s| s.success()) {
            return Some(SmallDisk(at.to_owned()));
        }
        assert!(
            std::env::var_os("TURTLEMEN_TEST_REQUIRE_EXTERNAL").is_none(),
            "the disk-full test must mount a tmpfs (run as root): {status:?}"
        );
        eprintln!("skipped: cannot mount a tmpfs here ({status:?})");
        None
    }

    pub(crate) fn resize(&self, bytes: u64) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}"), &self.0.to_string_lossy()])
            .status()
            .unwrap();
        assert!(status.success(), "remount: {status}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").args(["-l", &self.0.to_string_lossy()]).status();
    }
}

/// The upload folder fills up mid-chunk: the chunk is refused with 507 and a reason, the
/// committed offset names only bytes that are on disk, the server keeps serving, and once
/// there is room the upload resumes from that offset to an original identical to the source
/// (moved in from another file system).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_the_chunk_and_loses_nothing() {
    let Some((settings, dir, schema)) = fresh_settings(Stack::Embedded).await else { return };
    let app = TestApp::spawn_with(settings, dir, schema).await;
    let ann = signed_in(&app, "ann").await;
    let Some(disk) = SmallDisk::mount(&staging_dir(&app), 1024 * 1024) else { return };
    let bytes = sample(3 * 1024 * 1024 + 5);
    let (path, video) = create(&app, &ann, bytes.len() as u64).await;

    let res = patch(&app, &ann, &path, 0, &bytes).await;
    assert_eq!(res.status(), StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "storage_full");
    let (status, committed) = offset(&app, &ann, &path).await;
    assert_eq!(status, StatusCode::OK);
    let committed = committed.unwrap();
    assert!(committed <= 1024 * 1024, "only bytes that fit are counted: {committed}");
    let on_disk = std::fs::read(staging_dir(&app).join(path.rsplit('/').next().unwrap())).unwrap();
    assert!(on_disk.len() as u64 >= committed);
    assert_eq!(on_disk[..committed as usize], bytes[..committed as usize], "the committed bytes are intact");
    let (status, _) = get_json(&app, &ann, &format!("/api/v1/videos/{video}")).await;
    assert_eq!(status, 200, "the server keeps serving");

    disk.resize(16 * 1024 * 1024);
    let res = patch(&app, &ann, &path, committed, &bytes[committed as usize..]).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT, "{:?}", res.text().await);
    let stored = std::fs::read(original_path(&app, &video)).unwrap();
    assert_eq!(sha256(&stored), sha256(&bytes));
    let (_, v) = get_json(&app, &ann, &format!("/api/v1/videos/{video}")).await;
    assert_ne!(v["state"], "uploading", "{v}");
    drop(disk);
    app.stop().await;
}
