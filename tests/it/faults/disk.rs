//! The disk full, on the embedded deployment (SQLite, local storage, the data dir on a small
//! tmpfs): first the whole data dir full under load — the database, the session store and an
//! upload's chunk all meet ENOSPC: writes are refused with 507 and a reason (never 500), reads go
//! on, nothing committed is lost, and writes succeed again as soon as there is room; then the
//! transcode's scratch folder (`work/`, its own small tmpfs) full during a transcode: the job
//! fails without harm and is retried, and the video is ready once there is room.

use super::Upload;
use super::load::{Load, Outcome, Tally};
use crate::helpers::{Stack, TestApp, fresh_settings};
use crate::uploads::SmallDisk;
use crate::videos::clip;
use reqwest::StatusCode;
use std::io::Write;
use std::time::{Duration, Instant};

/// Fills the file system of `dir` with one file (`filler`) until it has no room left.
fn fill(filler: &std::path::Path) {
    let mut file = std::fs::File::create(filler).expect("the filler");
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).and_then(|()| file.flush()).is_ok() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_under_load() {
    let (mut settings, dir, schema) = fresh_settings(Stack::Embedded).await.expect("embedded stack");
    // Each person comes from an address of their own.
    settings.trusted_proxies = Some("127.0.0.1".into());
    // The people comment several times a minute; the limit has its own tests.
    settings.comments_per_minute = Some(0);
    let data_dir = settings.data_dir.clone().expect("a data dir");
    let Some(disk) = SmallDisk::mount(&data_dir, 96 * 1024 * 1024) else { return };
    let app = TestApp::spawn_with(settings, dir, schema).await;
    let tmp = tempfile::tempdir().expect("temp dir");
    let (people, talk) = super::people_and_talk(&app.db, &app.url("")).await;
    let ann = people[0].clone();
    let load = Load::start(people, &talk);
    load.writes_go_on(6, "before the disk fills").await;

    // 1. The data dir full: the database, the sessions, the upload folder.
    let bytes = std::fs::read(clip(tmp.path(), "clip.mp4", "320x180", 6)).expect("a clip");
    let upload = Upload::create(&ann, bytes.len(), "Full").await;
    let filler = data_dir.join("filler");
    let fault = Instant::now();
    fill(&filler);
    let res = upload.patch(0, &bytes).await.expect("the chunk is answered");
    assert_eq!(res.status, StatusCode::INSUFFICIENT_STORAGE, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(res.json()["error"], "storage_full");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !load.ops().iter().any(|o| o.started > fault && o.is_write() && o.outcome == Outcome::Status(507)) {
        assert!(Instant::now() < deadline, "no write met the full disk: {:?}", load.ops().last());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The outage: the disk stays full while the people go on.
    tokio::time::sleep(super::OUTAGE).await;
    std::fs::remove_file(&filler).expect("room again");
    let back = Instant::now();
    let recovered = load.writes_go_on(1, "once there is room").await;
    let committed_offset = upload.offset().await;
    let res = upload.patch(committed_offset, &bytes[committed_offset..]).await.expect("the upload resumes");
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", String::from_utf8_lossy(&res.body));
    load.writes_go_on(6, "after the disk was freed").await;
    let (ops, committed) = load.stop().await;
    let lost = super::lost(&app.db, &committed).await;
    let tally = Tally { case: "disk full: data dir (sqlite)", ops: &ops, fault, back, recovered };
    tally.print(lost, &format!("full {} ms", (back - fault).as_millis()));
    assert_eq!(lost, 0, "committed writes lost");
    tally.check(&[]);
    let unclean: Vec<_> =
        tally.during().filter(|o| !matches!(o.outcome, Outcome::Ok | Outcome::Status(507 | 503))).collect();
    assert!(unclean.is_empty(), "with the disk full, refused with 507 (or 503): {unclean:?}");
    let v = upload.settled(Duration::from_secs(120)).await;
    assert_eq!(v["state"], "ready", "{v}");

    // 2. The transcode's scratch folder full during a transcode.
    let work = SmallDisk::mount(&data_dir.join("work"), 32 * 1024).expect("a tmpfs for work/");
    let load = Load::start(super::people(&app.url("")), &talk);
    let transcoded = Upload::create(&ann, bytes.len(), "Scratch full").await;
    let fault = Instant::now();
    let res = transcoded.patch(0, &bytes).await.expect("the clip is sent");
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", String::from_utf8_lossy(&res.body));
    let turtlemen_db::Db::Sqlite(pool) = &app.db else { panic!("the embedded stack") };
    let deadline = Instant::now() + Duration::from_secs(120);
    let error = loop {
        let failed: Option<(i64, Option<String>)> = sqlx::query_as(
            "SELECT attempts, last_error FROM jobs WHERE kind = 'transcode' AND state = 'queued' AND attempts >= 1 \
             AND payload LIKE ?",
        )
        .bind(format!("%{}%", transcoded.video))
        .fetch_optional(pool)
        .await
        .expect("jobs");
        if let Some((_, error)) = failed {
            break error.unwrap_or_default();
        }
        assert!(Instant::now() < deadline, "the transcode never met the full scratch folder");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    work.resize(256 * 1024 * 1024);
    let back = Instant::now();
    let v = transcoded.settled(Duration::from_secs(120)).await;
    let recovered = Instant::now();
    assert_eq!(v["state"], "ready", "the transcode is retried once there is room: {v}");
    let (ops, committed) = load.stop().await;
    let lost = super::lost(&app.db, &committed).await;
    let tally = Tally { case: "disk full: work dir (transcode)", ops: &ops, fault, back, recovered };
    let first_line = error.lines().next().unwrap_or_default().chars().take(80).collect::<String>();
    tally.print(
        lost,
        &format!(
            "ready {} ms after room was made; the attempt failed with: {first_line}",
            (recovered - back).as_millis()
        ),
    );
    assert_eq!(lost, 0);
    assert!(ops.iter().all(|o| o.outcome == Outcome::Ok), "{:?}", ops.iter().find(|o| o.outcome != Outcome::Ok));
    assert!(!data_dir.join("work").join(&transcoded.video).exists(), "no scratch left behind");
    drop(work);
    app.stop().await;
    drop(disk);
}
