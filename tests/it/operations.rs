//! Operations at the command line, with the real binary beside a running instance, on both
//! stacks: `admin backup` copies the SQLite database while the server serves and writes, and
//! `admin restore` puts the copy into a fresh data folder that a new server then serves (the
//! account signs in, the video plays); restore refuses garbage, a database of a newer schema and
//! a database in use; both refuse PostgreSQL, naming its tools. `admin retranscode` transcodes
//! a ready video again while it stays ready and playable, switches it to the new renditions,
//! later retires the old ones, and `--all` queues every ready video.

use crate::gateway::Browser;
use crate::helpers::{Stack, TestApp, fresh_settings, run_cli};
use crate::on_both_stacks;
use crate::uploads::signed_in;
use crate::videos::{clip, upload, video_json, wait_until_processed};
use std::path::Path;
use std::time::{Duration, Instant};
use turtlemen_db::jobs::{self, JobFilter, JobState};

/// The environment that points the binary at `app`'s data folder and database.
fn cli_env(app: &TestApp) -> Vec<(String, String)> {
    let mut env = vec![("TURTLEMEN_DATA_DIR".to_owned(), app.data_dir.display().to_string())];
    if let Some(url) = &app.settings.database_url {
        env.push(("TURTLEMEN_DATABASE_URL".to_owned(), url.clone()));
    }
    env
}

/// Runs the binary with `args` and `env` off the async runtime; (exit code, stdout, stderr).
async fn admin(args: &[&str], env: &[(String, String)]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env = env.to_vec();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_cli(&args, "", &env)
    })
    .await
    .unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Files under `dir`, recursively (none if it does not exist).
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.flatten().map(|e| if e.file_type().unwrap().is_dir() { files_under(&e.path()) } else { 1 }).sum()
}

/// Polls `id` (as its owner) until its playlist URL names media version `version`, checking at
/// every look that the video is ready and its master playlist answers; returns the video.
async fn until_version(app: &TestApp, who: &Browser, id: &str, version: u32) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    let wanted = format!("/videos/{id}/versions/{version}/hls/master.m3u8");
    loop {
        let (status, v) = video_json(app, Some(who), id).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!((v["state"].as_str(), v["playable"].as_bool()), (Some("ready"), Some(true)), "{v}");
        let hls = v["hls_url"].as_str().unwrap().to_owned();
        let master = app.get(&hls).await;
        assert_eq!(master.status(), 200, "{hls}");
        if hls.ends_with(&wanted) {
            return v;
        }
        assert!(Instant::now() < deadline, "never switched to version {version}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A copy of the SQLite file `from` at `to`, with `statements` run in it.
async fn altered(from: &Path, to: &Path, statements: &[&'static str]) -> std::path::PathBuf {
    use sqlx::{ConnectOptions, Connection, Executor};
    std::fs::copy(from, to).unwrap();
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(to).connect().await.unwrap();
    for sql in statements {
        conn.execute(*sql).await.unwrap();
    }
    conn.close().await.unwrap();
    to.to_owned()
}

/// The master playlist at `hls`, one of its variants' VOD playlist and a segment all answer.
async fn plays(app: &TestApp, hls: &str) {
    let master = app.get(hls).await.text().await.unwrap();
    let base = hls.trim_end_matches("master.m3u8");
    let variant = master.lines().find(|l| l.ends_with(".m3u8")).unwrap_or_else(|| panic!("{master}"));
    let playlist = app.get(&format!("{base}{variant}")).await.text().await.unwrap();
    assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    let folder = format!("{base}{}", variant.rsplit_once('/').map_or("", |(d, _)| d));
    let segment = playlist.lines().find(|l| l.ends_with(".m4s")).unwrap();
    assert_eq!(app.get(&format!("{folder}/{segment}")).await.status(), 200);
}

on_both_stacks! {
    async fn backup_while_serving_then_restore_into_a_fresh_data_dir(app) {
        let tmp = tempfile::tempdir().unwrap();
        let backup = tmp.path().join("turtlemen-backup.db");
        let backup_arg = backup.to_str().unwrap();
        if app.db.backend() == turtlemen_db::Backend::Postgres {
            // PostgreSQL and CockroachDB have their own tools; nothing is written or replaced.
            let (code, _, err) = admin(&["admin", "backup", "--to", backup_arg], &cli_env(&app)).await;
            assert_ne!(code, 0);
            assert!(err.contains("pg_dump") && err.contains("BACKUP") && err.contains("docs/operations.md"), "{err}");
            assert!(!backup.exists());
            std::fs::write(&backup, b"anything").unwrap();
            let (code, _, err) = admin(&["admin", "restore", "--from", backup_arg], &cli_env(&app)).await;
            assert_ne!(code, 0);
            assert!(err.contains("pg_restore") && err.contains("RESTORE"), "{err}");
            return;
        }

        let ann = signed_in(&app, "ann").await;
        let id = upload(&app, &ann, &clip(tmp.path(), "kept.mp4", "320x180", 2), "unlisted").await;
        assert_eq!(wait_until_processed(&app, &ann, &id, 120).await["state"], "ready");

        // The server keeps writing while the backup is taken.
        let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let writer = tokio::spawn({
            let (db, writing) = (app.db.clone(), writing.clone());
            async move {
                let mut n = 0;
                while writing.load(std::sync::atomic::Ordering::Relaxed) {
                    crate::helpers::create_account(&db, &format!("writer{n}"), turtlemen_domain::Role::User).await;
                    n += 1;
                }
                n
            }
        });
        let (code, out, err) = admin(&["admin", "backup", "--to", backup_arg], &cli_env(&app)).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("wrote") && out.contains("bytes") && out.contains("tables, schema version "), "{out}");
        let (code, _, err) = admin(&["admin", "backup", "--to", backup_arg], &cli_env(&app)).await;
        assert_ne!(code, 0);
        assert!(err.contains("exists already"), "{err}");
        writing.store(false, std::sync::atomic::Ordering::Relaxed);
        assert!(writer.await.unwrap() > 0, "the server was written to during the backup");

        // A running server's database is not replaced.
        let (code, _, err) = admin(&["admin", "restore", "--from", backup_arg], &cli_env(&app)).await;
        assert_ne!(code, 0);
        assert!(err.contains("in use") && err.contains("stop every server"), "{err}");
        assert!(turtlemen_db::users::find_by_username(&app.db, &turtlemen_domain::Username::parse("writer0").unwrap()).await.unwrap().is_some());

        // What can't be restored is refused before anything is written.
        let (empty_settings, empty_dir, _) = fresh_settings(Stack::Embedded).await.unwrap();
        let empty_env = vec![("TURTLEMEN_DATA_DIR".to_owned(), empty_settings.data_dir.clone().unwrap().display().to_string())];
        let garbage = tmp.path().join("garbage.db");
        std::fs::write(&garbage, b"this is not a database, only words ".repeat(200)).unwrap();
        let foreign = tmp.path().join("foreign.db");
        {
            use sqlx::{ConnectOptions, Connection, Executor};
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(&foreign).create_if_missing(true).connect().await.unwrap();
            conn.execute("CREATE TABLE notes (body TEXT)").await.unwrap();
            conn.close().await.unwrap();
        }
        let newer = altered(&backup, &tmp.path().join("newer.db"), &[
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99991231000000, 'from the future', TRUE, X'00', 1)",
        ]).await;
        let modified = altered(&backup, &tmp.path().join("modified.db"), &[
            "UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = (SELECT MIN(version) FROM _sqlx_migrations)",
        ]).await;
        let missing = tmp.path().join("missing.db");
        for (file, needle) in [
            (&garbage, "not a usable SQLite database"),
            (&foreign, "not a Turtlemen database"),
            (&newer, "newer Turtlemen"),
            (&modified, "applied differently"),
            (&missing, "does not exist"),
        ] {
            let (code, _, err) = admin(&["admin", "restore", "--from", file.to_str().unwrap()], &empty_env).await;
            assert_ne!(code, 0, "{file:?}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(needle), "{needle}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
        let empty_db = empty_settings.data_dir.as_ref().unwrap().join("turtlemen.db");
        assert!(!empty_db.exists(), "nothing restored");

        // A backup of an older schema is brought up to this binary's.
        let schema = out.split("schema version ").nth(1).unwrap().trim().to_owned();
        let older = altered(&backup, &tmp.path().join("older.db"), &[
            "ALTER TABLE videos DROP COLUMN media_version",
            "DELETE FROM _sqlx_migrations WHERE version = 20261206073000",
        ]).await;
        let (code, restored_out, err) = admin(&["admin", "restore", "--from", older.to_str().unwrap()], &empty_env).await;
        assert_eq!(code, 0, "{err}");
        assert!(restored_out.contains(&format!("schema version {schema};")), "{restored_out} after {out}");
        {
            use sqlx::{ConnectOptions, Connection};
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(&empty_db).connect().await.unwrap();
            let versions: Vec<i64> = sqlx::query_scalar("SELECT media_version FROM videos").fetch_all(&mut conn).await.unwrap();
            assert_eq!(versions, vec![0], "the column the older schema lacked");
            conn.close().await.unwrap();
        }
        drop(empty_dir);

        // A fresh data folder with the instance's secrets and media (docs/operations.md), and
        // the backup restored into it: a new server there has the account and the video.
        let (settings, dir, _) = fresh_settings(Stack::Embedded).await.unwrap();
        let fresh = settings.data_dir.clone().unwrap();
        copy_tree(&app.data_dir.join("secrets"), &fresh.join("secrets"));
        copy_tree(&app.data_dir.join("media"), &fresh.join("media"));
        let env = vec![("TURTLEMEN_DATA_DIR".to_owned(), fresh.display().to_string())];
        let (code, out, err) = admin(&["admin", "restore", "--from", backup_arg], &env).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("restored") && out.contains("start the servers again"), "{out}");
        assert!(backup.exists(), "the backup itself is kept");
        let restored = TestApp::spawn_with(settings, dir, None).await;
        let (status, v) = video_json(&restored, None, &id).await;
        assert_eq!((status, v["state"].as_str()), (200, Some("ready")), "{v}");
        plays(&restored, v["hls_url"].as_str().unwrap()).await;
        let again = Browser::default();
        let (landed, _) = again.navigate(&restored, "/studio", "ann").await;
        assert!(landed.ends_with("/studio"), "ann signs in on the restored instance: {landed}");
        restored.stop().await;
    }

    async fn retranscode_keeps_a_ready_video_watchable_and_replaces_its_renditions(app) {
        let tmp = tempfile::tempdir().unwrap();
        let env = cli_env(&app);
        let ann = signed_in(&app, "ann").await;
        let first = upload(&app, &ann, &clip(tmp.path(), "first.mp4", "320x180", 2), "unlisted").await;
        let v = wait_until_processed(&app, &ann, &first, 120).await;
        assert_eq!(v["state"], "ready", "{v}");
        let old_hls = v["hls_url"].as_str().unwrap().to_owned();
        assert!(!old_hls.contains("/versions/"), "{old_hls}");

        // Bad ids are refused with one line.
        let unknown = uuid::Uuid::now_v7().to_string();
        for (args, needle) in [
            (vec!["admin", "retranscode", unknown.as_str()], "no video"),
            (vec!["admin", "retranscode", "not-an-id"], "not a video id"),
            (vec!["admin", "retranscode"], "required"),
        ] {
            let (code, _, err) = admin(&args, &env).await;
            assert_ne!(code, 0, "{args:?}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(needle), "{needle}: {err}");
        }

        let (code, out, err) = admin(&["admin", "retranscode", &first], &env).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&format!("queued video {first} for re-transcoding (media version 1)")), "{out}");
        let (code, out, _) = admin(&["admin", "retranscode", &first], &env).await;
        assert_eq!(code, 0);
        assert!(out.contains("is queued or being re-transcoded already"), "{out}");

        let v = until_version(&app, &ann, &first, 1).await;
        let runs = jobs::list(&app.db, &JobFilter { kind: Some("retranscode"), ..JobFilter::default() }).await.unwrap();
        assert_eq!(runs.len(), 1, "queued once: {runs:?}");
        assert_eq!(runs[0].idempotency_key.as_deref(), Some(format!("retranscode:{first}:1").as_str()));
        let new_hls = v["hls_url"].as_str().unwrap().to_owned();
        plays(&app, &new_hls).await;
        assert!(v["poster_url"].as_str().unwrap().contains("/versions/1/poster.jpg"), "{v}");
        assert_eq!(app.get(v["poster_url"].as_str().unwrap()).await.status(), 200);
        // Whoever loaded the old renditions keeps them for now.
        plays(&app, &old_hls).await;
        let stored = app.data_dir.join("media/videos").join(&first);
        assert!(files_under(&stored.join("versions/1/hls")) > 0);

        // The old version is retired later: made due now, the worker removes it and nothing else.
        let key = format!("retire_media:{first}:1");
        let retire = jobs::list(&app.db, &JobFilter { kind: Some("retire_media"), ..JobFilter::default() }).await.unwrap();
        let job = retire.iter().find(|j| j.idempotency_key.as_deref() == Some(key.as_str())).expect("a retire job");
        assert_eq!(job.state, JobState::Queued);
        assert!(job.run_at > chrono::Utc::now() + chrono::Duration::hours(11), "{job:?}");
        turtlemen_db::with_pool!(&app.db, |pool| {
            sqlx::query("UPDATE jobs SET run_at = $1 WHERE id = $2").bind(chrono::Utc::now()).bind(job.id).execute(pool).await.unwrap();
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while jobs::get(&app.db, job.id).await.unwrap().unwrap().state != JobState::Succeeded {
            assert!(Instant::now() < deadline, "the retire job never ran");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(files_under(&stored.join("hls")), 0, "the first version's renditions are gone");
        assert!(!stored.join("poster.jpg").exists());
        assert!(stored.join("original").exists(), "the original stays");
        assert_eq!(app.get(&old_hls).await.status(), 404);
        plays(&app, &new_hls).await;

        // `--all`: every ready video, each to the version after its own.
        let second = upload(&app, &ann, &clip(tmp.path(), "second.mp4", "320x180", 2), "unlisted").await;
        assert_eq!(wait_until_processed(&app, &ann, &second, 120).await["state"], "ready");
        let (code, out, err) = admin(&["admin", "retranscode", "--all"], &env).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("queued 2 videos for re-transcoding (0 were queued or running already)"), "{out}");
        plays(&app, until_version(&app, &ann, &first, 2).await["hls_url"].as_str().unwrap()).await;
        plays(&app, until_version(&app, &ann, &second, 1).await["hls_url"].as_str().unwrap()).await;
        let runs = jobs::list(&app.db, &JobFilter { kind: Some("retranscode"), ..JobFilter::default() }).await.unwrap();
        assert_eq!(runs.len(), 3, "{runs:?}");
        let failed = jobs::list(&app.db, &JobFilter { state: Some(JobState::Failed), ..JobFilter::default() }).await.unwrap();
        assert!(failed.is_empty(), "{failed:?}");
    }
}
