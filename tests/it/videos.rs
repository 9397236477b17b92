//! Videos end to end with real ffmpeg, on both stacks: a clip uploaded with tus is processed
//! by the worker into HLS and becomes ready; its signed media URLs serve playlists, segments
//! (with ranges) and thumbnails to anyone holding them and nothing to forged ones; private
//! videos stay their owner's; views count once per viewer; deleting removes every stored
//! object; a worker killed mid-transcode leaves a job that another worker finishes once the
//! lease lapses, or that the same worker restarted takes up at once, without duplicate output; a file that is not a video fails with a reason its owner can read;
//! the upload's trace (`traceparent`) reaches its transcode and the fan-out that queues.

use crate::gateway::Browser;
use crate::helpers::{Stack, TestApp, fresh_settings};
use crate::on_both_stacks;
use crate::uploads::{metadata, signed_in, tus};
use reqwest::{Method, StatusCode};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A clip made by ffmpeg's test sources: `secs` long at `size`, with a tone.
pub fn clip(dir: &Path, name: &str, size: &str, secs: u32) -> PathBuf {
    let path = dir.join(name);
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=25"))
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t"])
        .arg(secs.to_string())
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    path
}

/// Uploads `file` in one chunk; returns the video id.
pub async fn upload(app: &TestApp, who: &Browser, file: &Path, privacy: &str) -> String {
    let bytes = std::fs::read(file).unwrap();
    let name = file.file_name().unwrap().to_str().unwrap();
    let res = tus(app, who, Method::POST, "/api/v1/uploads")
        .header("upload-length", bytes.len().to_string())
        .header("upload-metadata", metadata(&[("filename", name), ("privacy", privacy)]))
        .header("content-type", "application/offset+octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["upload-offset"], bytes.len().to_string().as_str());
    res.headers()["video-id"].to_str().unwrap().to_owned()
}

pub async fn video_json(app: &TestApp, who: Option<&Browser>, id: &str) -> (u16, serde_json::Value) {
    let mut req = app.client.get(app.url(&format!("/api/v1/videos/{id}")));
    if let Some(b) = who {
        req = req.header("cookie", b.cookie_header());
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or_default())
}

/// Polls the video until it is ready or failed; panics after `secs`.
pub async fn wait_until_processed(app: &TestApp, who: &Browser, id: &str, secs: u64) -> serde_json::Value {
    until_settled(Duration::from_secs(secs), async || Some(video_json(app, Some(who), id).await.1)).await
}

/// Polls a video's JSON with `look` (`None`: no answer this time) until the video is ready or
/// failed, and returns it; panics after `within`.
pub async fn until_settled(
    within: Duration,
    mut look: impl AsyncFnMut() -> Option<serde_json::Value>,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let seen = look().await;
        if let Some(v) = seen.as_ref().filter(|v| v["state"] == "ready" || v["state"] == "failed") {
            return v.clone();
        }
        assert!(std::time::Instant::now() < deadline, "the video never settled: {seen:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn stored_files(app: &TestApp, id: &str) -> Vec<String> {
    let root = app.data_dir.join("media/videos").join(id);
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(&root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

on_both_stacks! {
    async fn an_uploads_trace_reaches_its_transcode_and_the_fan_out_that_queues(app) {
        let tmp = tempfile::tempdir().unwrap();
        let file = clip(tmp.path(), "traced.mp4", "320x180", 1);
        let ann = signed_in(&app, "ann").await;
        let bob = signed_in(&app, "bob").await;
        let (status, _) = crate::channels::call(&app, Some(&bob), Method::PUT, "/api/v1/me/subscriptions/ann", None).await;
        assert_eq!(status, 204);
        let bytes = std::fs::read(&file).unwrap();
        let trace = "0af7651916cd43dd8448eb211c80319c";
        let res = tus(&app, &ann, Method::POST, "/api/v1/uploads")
            .header("traceparent", format!("00-{trace}-b7ad6b7169203331-01"))
            .header("upload-length", bytes.len().to_string())
            .header("upload-metadata", metadata(&[("filename", "traced.mp4"), ("privacy", "public")]))
            .header("content-type", "application/offset+octet-stream")
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let id = res.headers()["video-id"].to_str().unwrap().to_owned();
        assert_eq!(wait_until_processed(&app, &ann, &id, 120).await["state"], "ready");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        for key in [format!("transcode:{id}"), format!("notify_new_video:{id}")] {
            let job = loop {
                let all = turtlemen_db::jobs::list(&app.db, &turtlemen_db::jobs::JobFilter { limit: 1000, ..Default::default() }).await.unwrap();
                if let Some(job) = all.into_iter().find(|j| j.idempotency_key.as_deref() == Some(key.as_str())) {
                    break job;
                }
                assert!(std::time::Instant::now() < deadline, "no job {key}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            let recorded = job.traceparent.unwrap_or_default();
            assert!(recorded.starts_with(&format!("00-{trace}-")) && recorded.ends_with("-01"), "{key}: {recorded}");
            assert!(!recorded.contains("b7ad6b7169203331"), "{key}: the parent is a span of ours, not the caller's");
        }
    }

    async fn an_uploaded_clip_becomes_adaptive_hls_with_signed_media(app) {
        let tmp = tempfile::tempdir().unwrap();
        let file = clip(tmp.path(), "holiday.mp4", "640x360", 3);
        let ann = signed_in(&app, "ann").await;
        let id = upload(&app, &ann, &file, "unlisted").await;
        let v = wait_until_processed(&app, &ann, &id, 120).await;
        assert_eq!(v["state"], "ready", "{v}");
        assert_eq!(v["progress"], 100);
        assert_eq!(v["title"], "holiday");
        assert_eq!(v["width"], 640);
        assert!(v["duration_secs"].as_f64().unwrap() > 2.5);
        let names: Vec<&str> = v["renditions"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"360p") && names.contains(&"144p") && !names.contains(&"480p"), "{names:?}");

        // Anyone with the link may watch an unlisted video; media URLs are signed.
        let (status, public) = video_json(&app, None, &id).await;
        assert_eq!(status, 200);
        let hls = public["hls_url"].as_str().unwrap().to_owned();
        assert!(hls.starts_with("/media/") && hls.ends_with("/hls/master.m3u8"), "{hls}");
        let res = app.get(&hls).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/vnd.apple.mpegurl");
        let master = res.text().await.unwrap();
        assert!(master.contains("CODECS=") && master.contains("RESOLUTION=640x360") && master.contains("BANDWIDTH="), "{master}");
        let base = hls.trim_end_matches("master.m3u8");
        let variant = master.lines().find(|l| l.ends_with(".m3u8")).unwrap();
        let playlist = app.get(&format!("{base}{variant}")).await.text().await.unwrap();
        assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
        let folder = format!("{base}{}", variant.rsplit_once('/').map_or("", |(d, _)| d));
        let segment = playlist.lines().find(|l| l.ends_with(".m4s")).unwrap();
        let res = app.client.get(app.url(&format!("{folder}/{segment}"))).header("range", "bytes=0-99").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(res.headers()["content-type"], "video/iso.segment");
        assert!(res.headers()["cache-control"].to_str().unwrap().contains("immutable"));
        assert!(res.headers()["content-range"].to_str().unwrap().starts_with("bytes 0-99/"));
        assert_eq!(res.bytes().await.unwrap().len(), 100);
        let res = app.client.get(app.url(&format!("{folder}/{segment}"))).header("range", "bytes=999999999-").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        let whole = app.get(&format!("{folder}/{segment}")).await.bytes().await.unwrap();
        let sent_before = sendfile_bytes(&app).await;
        segment_requests_share_a_connection_with_the_router(&app, &format!("{folder}/{segment}"), &whole).await;
        // The default route table sends media files straight from the file (the zero-copy path).
        let sent = sendfile_bytes(&app).await - sent_before;
        assert!(sent >= whole.len() as u64, "{sent} bytes went out by sendfile, not the whole segment");
        let poster = app.get(public["poster_url"].as_str().unwrap()).await;
        assert_eq!(poster.status(), 200);
        assert_eq!(poster.headers()["content-type"], "image/jpeg");
        let vtt = app.get(public["storyboard_url"].as_str().unwrap()).await.text().await.unwrap();
        assert!(vtt.starts_with("WEBVTT") && vtt.contains("#xywh="), "{vtt}");

        // Forged, stretched or foreign tokens get nothing; neither do paths outside the output.
        let token = hls.split('/').nth(2).unwrap();
        let (expiry, sig) = token.split_once('-').unwrap();
        let forged = [
            hls.replace(sig, &"A".repeat(sig.len())),
            hls.replace(expiry, &(expiry.parse::<u64>().unwrap() + 3600).to_string()),
            hls.replace(&id, "00000000-0000-0000-0000-000000000000"),
        ];
        for url in forged {
            let status = app.get(&url).await.status();
            assert!(status == 403 || status == 404, "{url}: {status}");
        }
        for path in ["original", "hls/../original", "hls/360p/../../original"] {
            let url = hls.replace("hls/master.m3u8", path);
            assert_eq!(app.get(&url).await.status(), 404, "{url}");
        }

        // Private: only its owner sees it at all.
        let res = app.client.patch(app.url(&format!("/api/v1/videos/{id}"))).header("cookie", ann.cookie_header())
            .json(&serde_json::json!({"privacy": "private"})).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(video_json(&app, None, &id).await.0, 404);
        let bob = signed_in(&app, "bob").await;
        assert_eq!(video_json(&app, Some(&bob), &id).await.0, 404);
        let res = app.client.patch(app.url(&format!("/api/v1/videos/{id}"))).header("cookie", bob.cookie_header())
            .json(&serde_json::json!({"title": "mine now"})).send().await.unwrap();
        assert_eq!(res.status(), 404);
        let res = app.client.delete(app.url(&format!("/api/v1/videos/{id}"))).header("cookie", bob.cookie_header()).send().await.unwrap();
        assert_eq!(res.status(), 404);
        // A cross-site form cannot change it: the change must be JSON.
        let res = app.client.patch(app.url(&format!("/api/v1/videos/{id}"))).header("cookie", ann.cookie_header())
            .form(&[("title", "csrf")]).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

        // Listed: only public videos, in the owner's list all of them.
        let (_, mine) = get_as(&app, &ann, "/api/v1/me/videos").await;
        assert_eq!(mine["videos"][0]["id"], id.as_str());
        let (_, listed) = get_as(&app, &bob, "/api/v1/videos?sort=recent").await;
        assert!(listed["videos"].as_array().unwrap().is_empty());

        // Views: once per viewer per window, whatever the number of reports.
        let res = app.client.patch(app.url(&format!("/api/v1/videos/{id}"))).header("cookie", ann.cookie_header())
            .json(&serde_json::json!({"privacy": "public"})).send().await.unwrap();
        assert_eq!(res.status(), 200);
        for who in [&bob, &bob, &bob, &ann] {
            let res = app.client.post(app.url(&format!("/api/v1/videos/{id}/views"))).header("cookie", who.cookie_header()).send().await.unwrap();
            assert_eq!(res.status(), 204);
        }
        let mut views = 0;
        for _ in 0..40 {
            views = video_json(&app, None, &id).await.1["views"].as_u64().unwrap();
            if views == 2 { break; }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(views, 2);
        let (_, listed) = get_as(&app, &bob, "/api/v1/videos?sort=trending").await;
        assert_eq!(listed["videos"][0]["id"], id.as_str());

        // Deleting removes every stored object.
        assert!(!stored_files(&app, &id).is_empty());
        let res = app.client.delete(app.url(&format!("/api/v1/videos/{id}"))).header("cookie", ann.cookie_header()).send().await.unwrap();
        assert_eq!(res.status(), 204);
        assert_eq!(video_json(&app, Some(&ann), &id).await.0, 404);
        assert!(stored_files(&app, &id).is_empty(), "{:?}", stored_files(&app, &id));
        assert_eq!(app.get(&hls).await.status(), 404);
    }

    async fn a_file_that_is_not_a_video_fails_with_a_readable_reason(app) {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("notes.mp4");
        std::fs::write(&file, b"these are my holiday notes, not a video at all".repeat(100)).unwrap();
        let ann = signed_in(&app, "ann").await;
        let id = upload(&app, &ann, &file, "public").await;
        let v = wait_until_processed(&app, &ann, &id, 60).await;
        assert_eq!(v["state"], "failed", "{v}");
        let reason = v["failure_reason"].as_str().unwrap();
        assert!(!reason.is_empty() && !reason.contains("ffprobe") && !reason.contains("moov"), "{reason}");
        assert_eq!(v["hls_url"], serde_json::Value::Null);
        assert_eq!(stored_files(&app, &id), vec!["original".to_string()], "nothing half-published");

        // Admins see the job queue; others are told there is nothing there.
        assert_eq!(get_as(&app, &ann, "/api/v1/admin/jobs").await.0, 404);
        let carol = crate::uploads::signed_in_as(&app, "carol", turtlemen_domain::Role::Admin).await;
        let (status, jobs) = get_as(&app, &carol, "/api/v1/admin/jobs?kind=transcode").await;
        assert_eq!(status, 200);
        assert_eq!(jobs["jobs"][0]["state"], "succeeded", "{jobs}");
        assert_eq!(jobs["jobs"][0]["key"], format!("transcode:{id}"));
        assert_eq!(get_as(&app, &carol, "/api/v1/admin/jobs?state=bogus").await.0, 400);
        let job = jobs["jobs"][0]["id"].as_str().unwrap();
        let res = app.client.post(app.url(&format!("/api/v1/admin/jobs/{job}/retry"))).header("cookie", carol.cookie_header()).send().await.unwrap();
        assert_eq!(res.status(), 409, "a succeeded job is not retried");
    }
}

/// A worker killed in the middle of a transcode: its lease lapses, another worker takes the
/// job up again and the video becomes ready, with each rendition's segments stored once. The
/// dead worker's slot stays held (by this test), so the other worker cannot tell it died and
/// waits for the 3 s lease to lapse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_transcode_is_finished_by_another() {
    killed_mid_transcode(Takeover::LeaseLapses).await;
}

/// `kill -9` of a worker mid-transcode, then the same worker started again on the same data
/// dir: it finds the dead worker's id in the slot it now locks, ends that worker's leases and
/// finishes the video at once, though the leases were taken for an hour. Prints the time from
/// the restart to ready (the figure for `benches/takeover.sh` is measured there, not here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_takes_up_its_own_killed_transcode_at_once() {
    killed_mid_transcode(Takeover::Restart).await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takeover {
    /// Another worker, unaware of the death, after the 3 s lease lapses.
    LeaseLapses,
    /// The worker restarted in the dead one's slot, with hour-long leases.
    Restart,
}

async fn killed_mid_transcode(takeover: Takeover) {
    for stack in [Stack::Embedded, Stack::External] {
        let Some((settings, dir, schema)) = fresh_settings(stack).await else { continue };
        let app = TestApp::spawn_without_worker(settings.clone(), dir, schema).await;
        let tmp = tempfile::tempdir().unwrap();
        let file = clip(tmp.path(), "long.mp4", "960x540", 20);
        let ann = signed_in(&app, "ann").await;
        let id = upload(&app, &ann, &file, "public").await;

        let lease = if takeover == Takeover::Restart { "3600" } else { "3" };
        let worker = || {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_turtlemen"));
            cmd.args(["worker", "--lease-secs", lease]);
            cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
            cmd.env("TURTLEMEN_DATA_DIR", &app.data_dir).env("TURTLEMEN_LOG_LEVEL", "warn");
            if let Some(url) = &settings.database_url {
                cmd.env("TURTLEMEN_DATABASE_URL", url);
            }
            cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
            cmd.spawn().expect("worker starts")
        };
        let mut first = worker();
        // Wait until it is transcoding (progress reported), then kill it outright (SIGKILL).
        // Generous: on a loaded machine a worker's start and ffmpeg's first percent take long.
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        loop {
            let (_, v) = video_json(&app, Some(&ann), &id).await;
            if v["progress"].as_u64().unwrap_or(0) >= 1 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the first worker never started: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        first.kill().unwrap();
        first.wait().unwrap();
        let (_, v) = video_json(&app, Some(&ann), &id).await;
        assert_eq!(v["state"], "processing", "killed mid-transcode: {v}");
        let jobs = turtlemen_db::jobs::list(&app.db, &turtlemen_db::jobs::JobFilter::default()).await.unwrap();
        let job = jobs.iter().find(|j| j.kind == "transcode").unwrap().clone();
        assert!(job.lease_expires_at.unwrap() > chrono::Utc::now(), "the dead worker's lease is still live");

        // Holding the dead worker's slot hides its death from the next worker.
        let _held = (takeover == Takeover::LeaseLapses)
            .then(|| turtlemen_worker::slot::Slot::take(&app.data_dir.join("workers"), uuid::Uuid::now_v7()).unwrap());
        let restarted = std::time::Instant::now();
        let mut second = worker();
        let v = wait_until_processed(&app, &ann, &id, 180).await;
        let elapsed = restarted.elapsed();
        second.kill().unwrap();
        second.wait().unwrap();
        assert_eq!(v["state"], "ready", "{v}");
        eprintln!("{stack:?} {takeover:?}: ready {:.1} s after the second worker started", elapsed.as_secs_f64());
        let job = turtlemen_db::jobs::get(&app.db, job.id).await.unwrap().unwrap();
        assert_eq!(job.attempts, 2, "taken up again after the first worker died: {job:?}");

        // No duplicate output: every stored segment is named by its playlist, once.
        let files = stored_files(&app, &id);
        for rendition in v["renditions"].as_array().unwrap() {
            let name = rendition["name"].as_str().unwrap();
            let playlist = std::fs::read_to_string(
                app.data_dir.join("media/videos").join(&id).join("hls").join(name).join("playlist.m3u8"),
            )
            .unwrap();
            let listed: Vec<&str> = playlist.lines().filter(|l| l.ends_with(".m4s")).collect();
            let stored: Vec<&String> =
                files.iter().filter(|f| f.starts_with(&format!("hls/{name}/")) && f.ends_with(".m4s")).collect();
            assert_eq!(listed.len(), stored.len(), "{name}: {listed:?} vs {stored:?}");
            assert!(playlist.contains("#EXT-X-ENDLIST"));
        }
        app.stop().await;
    }
}

/// `turtlemen_http_sendfile_bytes` as `/metrics` gives it.
async fn sendfile_bytes(app: &TestApp) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("turtlemen_http_sendfile_bytes_total "))
        .unwrap_or_else(|| panic!("{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// On one connection, pipelined: the segment (answered with `sendfile`), a `HEAD` of it, a
/// segment request with a body (left to the router), then a page: every answer whole and in
/// order, the foundation's headers on all of them.
async fn segment_requests_share_a_connection_with_the_router(app: &TestApp, path: &str, whole: &[u8]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let requests = format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nX-Request-Id: seg-1\r\n\r\n\
         HEAD {path} HTTP/1.1\r\nHost: t\r\n\r\n\
         GET {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi\
         GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(requests.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut got)).await.expect("answers in time").unwrap();
    let mut rest = &got[..];
    let mut answers = Vec::new();
    for head_only in [false, true, false, false] {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut res = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(len) = res.parse(rest).unwrap() else { panic!("a partial answer") };
        let header = |name: &str| {
            res.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
        };
        let length: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
        assert!(header("x-request-id").is_some());
        let body_len = if head_only { 0 } else { length };
        answers.push((res.code.unwrap(), length, header("x-request-id").unwrap(), rest[len..len + body_len].to_vec()));
        rest = &rest[len + body_len..];
    }
    assert!(rest.is_empty(), "nothing after the last answer");
    assert_eq!((answers[0].0, answers[0].1, answers[0].2.as_str()), (200, whole.len(), "seg-1"));
    assert!(answers[0].3 == whole, "the segment arrives whole");
    assert_eq!((answers[1].0, answers[1].1), (200, whole.len()), "HEAD tells the length");
    assert_eq!(answers[2].0, 200, "a segment request with a body is the router's");
    assert!(answers[2].3 == whole);
    assert_eq!(answers[3].0, 200);
}

async fn get_as(app: &TestApp, who: &Browser, path: &str) -> (u16, serde_json::Value) {
    let res = app.client.get(app.url(path)).header("cookie", who.cookie_header()).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or_default())
}
