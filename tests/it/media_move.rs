//! Moving media between local disk and S3 (moto's server) with no downtime, both ways, on both
//! stacks, with the real binary: a video transcoded on the old store keeps playing after the
//! instance restarts on the new one with the old as `storage_fallback_url` while nothing was
//! copied; a new upload lands in the new store; `admin copy-media` copies the old media; without
//! the fallback both videos play; a second copy copies nothing. And `admin copy-media` refuses
//! bad URLs and one store twice.

use crate::cluster::{Person, Replica, free_port, list_keys, s3_env, start_moto};
use crate::helpers::{PASSWORD, Stack, fresh_settings, run_cli};
use crate::uploads::metadata;
use crate::videos::clip;
use reqwest::StatusCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs the binary off the async runtime; (exit code, stdout, stderr).
async fn cli(args: &[&str], stdin: &str, env: &[(String, String)]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let (stdin, env) = (stdin.to_owned(), env.to_vec());
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_cli(&args, &stdin, &env)
    })
    .await
    .expect("the command ran")
}

/// Uploads `file` in one piece as `who`; the video's id.
pub(crate) async fn upload(who: &Person, file: &std::path::Path, title: &str) -> String {
    let bytes = std::fs::read(file).expect("the clip");
    let res = who
        .send("create the upload", |c| {
            c.post(who.url("/api/v1/uploads"))
                .header("tus-resumable", "1.0.0")
                .header("upload-length", bytes.len().to_string())
                .header(
                    "upload-metadata",
                    metadata(&[("filename", "clip.mp4"), ("title", title), ("privacy", "public")]),
                )
        })
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&res.body));
    let (location, video) = (who.url(&res.header("location")), res.header("video-id"));
    let res = who
        .send("the upload's bytes", |c| {
            c.patch(&location)
                .header("tus-resumable", "1.0.0")
                .header("upload-offset", "0")
                .header("content-type", "application/offset+octet-stream")
                .body(bytes.clone())
        })
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", String::from_utf8_lossy(&res.body));
    video
}

/// Waits until `video` is ready, then plays it (master playlist, a rendition, a segment).
pub(crate) async fn plays(who: &Person, video: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let v = who.get("the video", &format!("/api/v1/videos/{video}")).await.json();
        match v["state"].as_str() {
            Some("ready") => break,
            Some("uploading" | "processing") => {}
            _ => panic!("the video did not become ready: {v}"),
        }
        assert!(Instant::now() < deadline, "the video never became ready: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let v = who.watch(video, true).await;
    assert!(v["hls_url"].is_string(), "{v}");
}

/// Files under `dir` whose path contains `part`.
fn files_with(dir: &std::path::Path, part: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| {
            if e.file_type().expect("a file type").is_dir() {
                files_with(&e.path(), part)
            } else {
                usize::from(e.path().to_string_lossy().contains(part))
            }
        })
        .sum()
}

/// The copy-media summary's count of objects copied.
fn copied(out: &str) -> u64 {
    let line = out.lines().last().unwrap_or_default();
    line.strip_prefix("copied ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary in {out:?}"))
}

/// Objects of `video` in the store named `url` (moto's bucket `media`, or the folder `media`).
async fn stored(url: &str, s3: &str, media: &std::path::Path, video: &str) -> usize {
    match url.starts_with("s3://") {
        true => list_keys(s3, &format!("videos/{video}")).await.len(),
        false => files_with(media, video),
    }
}

/// Moves the media from local disk to S3 (`to_s3`) or back.
async fn move_with_no_downtime(stack: Stack, to_s3: bool) {
    let Some((settings, dir, _schema)) = fresh_settings(stack).await else { return };
    let data_dir = settings.data_dir.clone().expect("a data dir");
    let media = data_dir.join("media");
    let old_url = url::Url::from_directory_path(&media).expect("an absolute folder").to_string();
    let (_moto, s3) = start_moto().await;
    let (old_url, new_url) = match to_s3 {
        true => (old_url, "s3://media".to_owned()),
        false => ("s3://media".to_owned(), old_url),
    };
    let port = free_port();
    let mut env: Vec<(String, String)> = vec![
        ("TURTLEMEN_LISTEN".into(), format!("127.0.0.1:{port}")),
        ("TURTLEMEN_FIRST_USER_ADMIN".into(), "false".into()),
        ("TURTLEMEN_LOG_LEVEL".into(), "warn".into()),
    ];
    env.extend(s3_env(&s3).into_iter().filter(|(k, _)| k.starts_with("AWS_")).map(|(k, v)| (k.to_owned(), v)));
    if let Some(url) = &settings.database_url {
        env.push(("TURTLEMEN_DATABASE_URL".into(), url.clone()));
    }
    if let Some(url) = &settings.session_url {
        env.push(("TURTLEMEN_SESSION_URL".into(), url.clone()));
    }
    let admin_env: Vec<(String, String)> =
        env.iter().cloned().chain([("TURTLEMEN_DATA_DIR".into(), data_dir.display().to_string())]).collect();
    let (code, _, err) = cli(&["migrate"], "", &admin_env).await;
    assert_eq!(code, 0, "migrate: {err}");
    let (code, _, err) = cli(
        &["admin", "create-user", "--username", "ann", "--email", "ann@example.org", "--password-stdin"],
        &format!("{PASSWORD}\n"),
        &admin_env,
    )
    .await;
    assert_eq!(code, 0, "create-user: {err}");
    let mut server = Replica {
        name: "serve".into(),
        program: None,
        args: vec!["serve".into()],
        env: env.iter().cloned().chain([("TURTLEMEN_STORAGE_URL".into(), old_url.clone())]).collect(),
        port,
        data_dir: data_dir.clone(),
        log: dir.path().join("serve.log"),
        child: None,
    };
    let clip_file = clip(dir.path(), "clip.mp4", "640x360", 4);
    let ann = Person::new("ann", &format!("http://127.0.0.1:{port}"), &Arc::new(Mutex::new(Vec::new())));

    // On the old store, as before the move.
    server.start();
    server.ready().await;
    ann.sign_in().await;
    let old = upload(&ann, &clip_file, "Before the move").await;
    plays(&ann, &old).await;
    assert!(stored(&old_url, &s3, &media, &old).await > 0, "the old video is in the old store");

    // (a) New writes to the new store, the old one as the fallback: the old video plays with
    // nothing copied.
    server.kill();
    server.env = env.clone();
    server.env.push(("TURTLEMEN_STORAGE_URL".into(), new_url.clone()));
    server.env.push(("TURTLEMEN_STORAGE_FALLBACK_URL".into(), old_url.clone()));
    server.start();
    server.ready().await;
    ann.sign_in().await;
    plays(&ann, &old).await;
    assert_eq!(stored(&new_url, &s3, &media, &old).await, 0, "nothing was copied yet");
    let new = upload(&ann, &clip_file, "During the move").await;
    plays(&ann, &new).await;
    assert!(stored(&new_url, &s3, &media, &new).await > 0, "the new video is in the new store");
    assert_eq!(stored(&old_url, &s3, &media, &new).await, 0, "the new video is not in the old store");

    // (b) Copy the old media; (c) drop the fallback: both play from the new store alone.
    let copy_env = env.clone();
    let (code, out, err) = cli(&["admin", "copy-media", "--from", &old_url, "--to", &new_url], "", &copy_env).await;
    assert_eq!(code, 0, "copy-media: {err}");
    assert!(copied(&out) > 0, "{out}");
    assert!(stored(&new_url, &s3, &media, &old).await > 0, "the old video was copied");
    server.kill();
    server.env = env.iter().cloned().chain([("TURTLEMEN_STORAGE_URL".into(), new_url.clone())]).collect();
    server.start();
    server.ready().await;
    ann.sign_in().await;
    plays(&ann, &old).await;
    plays(&ann, &new).await;

    // Run again: everything is there already.
    let (code, out, err) = cli(&["admin", "copy-media", "--from", &old_url, "--to", &new_url], "", &copy_env).await;
    assert_eq!(code, 0, "copy-media again: {err}");
    assert_eq!(copied(&out), 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_to_s3_with_no_downtime_embedded() {
    move_with_no_downtime(Stack::Embedded, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_to_s3_with_no_downtime_external() {
    move_with_no_downtime(Stack::External, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_to_local_with_no_downtime_embedded() {
    move_with_no_downtime(Stack::Embedded, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_to_local_with_no_downtime_external() {
    move_with_no_downtime(Stack::External, false).await;
}

#[tokio::test]
async fn copy_media_refuses_bad_urls_and_one_store_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = url::Url::from_directory_path(dir.path()).expect("an absolute folder").to_string();
    let inside = url::Url::from_directory_path(dir.path().join("inner")).expect("an absolute folder").to_string();
    let missing = url::Url::from_directory_path(dir.path().join("missing")).expect("an absolute folder").to_string();
    let cases: [(&str, &str, &str); 6] = [
        (&folder, &folder, "the same store"),
        ("s3://media", "s3://media/", "the same store"),
        (&folder, &inside, "one inside the other"),
        ("not a url", "s3://media", "--from \"not a url\" is not a URL"),
        (&folder, "http://example.org/media", "--to: unsupported storage \"http\""),
        (&missing, "s3://media", "--from: there is no folder"),
    ];
    for (from, to, says) in cases {
        let (code, _, err) = cli(&["admin", "copy-media", "--from", from, "--to", to], "", &[]).await;
        assert_ne!(code, 0, "{from} → {to} was accepted");
        assert!(err.contains(says), "{from} → {to}: {err}");
    }
    assert!(!dir.path().join("missing").exists(), "a missing source is not created");
}
