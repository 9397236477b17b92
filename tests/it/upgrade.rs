//! The zero-downtime upgrade (docs/operations.md, "Upgrades"): the previous release's binary and
//! this build's against one database at once, as real processes behind HAProxy, on both stacks —
//! SQLite (the database file, and the embedded session store beside it, shared by the processes
//! through one data dir, as on one machine) and PostgreSQL + Redis (the processes still share
//! one data dir: its local media folder).
//!
//! The previous release is the commit named in `tests/upgrade/PREVIOUS_RELEASE`, built from
//! this repository's history by `scripts/previous-release.sh` (which `scripts/test.sh` runs),
//! whose printed path is handed over as `TURTLEMEN_PREVIOUS_BIN`.
//!
//! The old binary makes the schema (its own `migrate`) and the accounts (`admin create-user`),
//! then serves alone: two people sign in, a clip is uploaded and transcoded to ready, a comment
//! is written. From then on both people run a small journey through the balancer the whole time
//! — the home page, the video's API and watch page, its master and a media playlist and a
//! segment, its comments, a new comment. The new binary runs `migrate` while the old one serves;
//! the old one goes on reading and writing on the migrated schema (and a comment is written
//! through it alone), and another of its processes starts on that schema; the new one starts
//! beside it, both behind the balancer and both answering the journeys; then the old one is
//! stopped (SIGTERM) and the new one serves alone. Then: no journey request failed or was
//! retried (HAProxy itself tries a refused connection again on the other server, so a client
//! never sees one), and everything the old binary made — the accounts' sessions, the video,
//! every comment, the one written after the migration — is served by the new one.
//!
//! Until a release adds a migration the two binaries share a schema; so that the previous
//! release's side is checked whatever the next release brings, this build is also started on a
//! schema one (made-up) migration ahead of it, as it will be when it is the previous release.

use crate::cluster::{Person, Replica, free_port, rounds_go_on, start_haproxy};
use crate::helpers::{PASSWORD, Stack, fresh_settings, run_cli, run_program};
use crate::media_move::{plays, upload};
use crate::on_both_stacks;
use crate::videos::clip;
use reqwest::StatusCode;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use turtlemen_db::Db;

/// A cookie secret both releases share (at least 32 characters).
const COOKIE_SECRET: &str = "one cookie secret for both releases of the upgrade test";

/// The previous release's binary, from `TURTLEMEN_PREVIOUS_BIN`; `None` (the test skipped)
/// when it is not set, unless the run requires every external piece.
fn previous_release() -> Option<PathBuf> {
    let how = "TURTLEMEN_PREVIOUS_BIN=\"$(bash scripts/previous-release.sh)\" (scripts/test.sh does this)";
    match std::env::var_os("TURTLEMEN_PREVIOUS_BIN").filter(|v| !v.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(path.is_file(), "TURTLEMEN_PREVIOUS_BIN names no file ({}); set {how}", path.display());
            Some(path)
        }
        None => {
            assert!(
                std::env::var("TURTLEMEN_TEST_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
                "the upgrade test needs the previous release's binary: set {how}"
            );
            eprintln!("skipped: set {how} to run the upgrade test");
            None
        }
    }
}

/// Runs `program` (this build's binary when `None`) with `args` off the async runtime; (exit
/// code, stdout, stderr).
async fn cli(program: Option<&Path>, args: &[&str], stdin: &str, env: &[(String, String)]) -> (i32, String, String) {
    let program = program.map(Path::to_owned);
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let (stdin, env) = (stdin.to_owned(), env.to_vec());
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match &program {
            Some(program) => run_program(program, &args, &stdin, &env),
            None => run_cli(&args, &stdin, &env),
        }
    })
    .await
    .expect("the command ran")
}

/// The versions of the migrations applied to the database at `url`.
async fn applied_migrations(url: &str) -> Vec<i64> {
    let options =
        turtlemen_db::DbOptions { url: url.into(), max_connections: 1, search_path: None, create_if_missing: false };
    let db = Db::connect(&options).await.expect("the database");
    let sql = "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version";
    let versions = match &db {
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
    }
    .expect("the applied migrations");
    db.close().await;
    versions
}

/// The comments answered 201: (id, text).
type Written = Arc<Mutex<Vec<(String, String)>>>;

/// `person`'s journey on `video`, round after round until `stop`, each round counted in
/// `rounds`: the home page, the video (its API, its watch page, its master and a media playlist
/// and a segment), its comments, and a new comment.
fn journey(
    person: Person,
    video: String,
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
    written: Written,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let home = person.url("/");
            let res = person.send("the home page", |c| c.get(&home).header("accept", "text/html")).await;
            assert_eq!(res.status, StatusCode::OK, "the home page");
            let v = person.watch(&video, true).await;
            assert_eq!(v["state"], "ready", "{v}");
            let list = person.get("the comments", &format!("/api/v1/videos/{video}/comments")).await;
            assert_eq!(list.status, StatusCode::OK, "{}", String::from_utf8_lossy(&list.body));
            let text = format!("{} says {n}", person.name);
            let id = person.comment(&video, &text).await;
            written.lock().expect("written").push((id, text));
            rounds.fetch_add(1, Ordering::SeqCst);
            // A person's pace between rounds.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Every visible top-level comment of `video` as `who` reads them: (id, text).
async fn all_comments(who: &Person, video: &str) -> Vec<(String, String)> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = who.get("the comments", &format!("/api/v1/videos/{video}/comments?limit=100&cursor={cursor}")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", String::from_utf8_lossy(&page.body));
        let page = page.json();
        for c in page["comments"].as_array().expect("comments") {
            let (id, text) = (c["id"].as_str().expect("an id"), c["text"].as_str().unwrap_or_default());
            all.push((id.to_string(), text.to_string()));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return all,
        }
    }
}

async fn upgrade_with_no_downtime(stack: Stack) {
    let Some(previous) = previous_release() else { return };
    let Some((settings, tmp, _schema)) = fresh_settings(stack).await else { return };
    let started = Instant::now();
    let data_dir = settings.data_dir.clone().expect("a data dir");
    let database_url =
        settings.database_url.clone().unwrap_or_else(|| format!("sqlite://{}/turtlemen.db", data_dir.display()));
    let (lb, old_port, new_port) = (free_port(), free_port(), free_port());
    let public_url = format!("http://127.0.0.1:{lb}");
    let mut common: Vec<(String, String)> = [
        ("TURTLEMEN_DATA_DIR", data_dir.display().to_string()),
        ("TURTLEMEN_DATABASE_URL", database_url.clone()),
        ("TURTLEMEN_DATABASE_MAX_CONNECTIONS", "4".into()),
        ("TURTLEMEN_PUBLIC_URL", public_url.clone()),
        ("TURTLEMEN_COOKIE_SECRET", COOKIE_SECRET.into()),
        // HAProxy in front: loopback.
        ("TURTLEMEN_TRUSTED_PROXIES", "127.0.0.1".into()),
        ("TURTLEMEN_FIRST_USER_ADMIN", "false".into()),
        ("TURTLEMEN_RTMP_LISTEN", "127.0.0.1:0".into()),
        // The people comment several times a minute; the limit has its own tests.
        ("TURTLEMEN_COMMENTS_PER_MINUTE", "0".into()),
        // Every page from a process, none from the gateway's cache.
        ("TURTLEMEN_PUBLIC_PAGE_MAX_AGE_SECS", "0".into()),
        // `served` lines say which process answered what.
        ("TURTLEMEN_LOG_LEVEL", "info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(redis) = &settings.session_url {
        // A Redis database of its own, away from the default one other tests and servers use (the
        // processes' key prefix is fixed).
        let redis = format!("{}/{}", redis.trim_end_matches('/'), 1 + uuid::Uuid::new_v4().as_bytes()[0] % 15);
        common.push(("TURTLEMEN_SESSION_URL".into(), redis));
    }
    let serve = |name: &str, program: Option<PathBuf>, port: u16| Replica {
        name: name.into(),
        program,
        args: vec!["serve".into()],
        env: common.iter().cloned().chain([("TURTLEMEN_LISTEN".into(), format!("127.0.0.1:{port}"))]).collect(),
        port,
        data_dir: data_dir.clone(),
        log: tmp.path().join(format!("{name}.log")),
        child: None,
    };
    let mut old = serve("previous", Some(previous.clone()), old_port);
    let mut new = serve("this-build", None, new_port);

    // The previous release alone: its schema, its accounts, its server.
    let (code, _, err) = cli(Some(&previous), &["migrate"], "", &common).await;
    assert_eq!(code, 0, "the previous release's migrate: {err}");
    let old_schema = applied_migrations(&database_url).await;
    for name in ["ann", "bob"] {
        let email = format!("{name}@example.org");
        let args = ["admin", "create-user", "--username", name, "--email", &email, "--password-stdin"];
        let (code, _, err) = cli(Some(&previous), &args, &format!("{PASSWORD}\n"), &common).await;
        assert_eq!(code, 0, "the previous release's create-user: {err}");
    }
    old.start();
    old.ready().await;
    // Both servers' places are in the balancer from the start; this build's is down until it
    // starts (a connection refused there is tried again on the other).
    let _haproxy = start_haproxy(tmp.path(), lb, &[old_port, new_port]).await;
    let retries = Arc::new(Mutex::new(Vec::new()));
    let [ann, bob] = ["ann", "bob"].map(|n| Person::new(n, &public_url, &retries));
    ann.sign_in().await;
    bob.sign_in().await;
    let clip_file = clip(tmp.path(), "clip.mp4", "640x360", 4);
    let video = upload(&ann, &clip_file, "Made by the previous release").await;
    plays(&ann, &video).await;
    let first = ann.comment(&video, "written by the previous release").await;

    // The journeys run from here to the end.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let written: Written = Arc::default();
    let traffic: Vec<_> = [&ann, &bob]
        .into_iter()
        .map(|p| journey(p.clone(), video.clone(), stop.clone(), rounds.clone(), written.clone()))
        .collect();
    rounds_go_on(&rounds, 4, "with the previous release alone").await;

    // This build migrates the schema under the running previous release, which goes on reading
    // and writing on it.
    let (code, _, err) = cli(None, &["migrate"], "", &common).await;
    assert_eq!(code, 0, "this build's migrate: {err}");
    let new_schema = applied_migrations(&database_url).await;
    assert!(old_schema.iter().all(|v| new_schema.contains(v)), "{old_schema:?} → {new_schema:?}");
    let answered_before = old.answered("/comments");
    rounds_go_on(&rounds, 4, "with the previous release on the migrated schema").await;
    assert!(old.answered("/comments") > answered_before, "the previous release served the journeys");
    // A process of the previous release started now — a replica restarting mid-upgrade — starts
    // on the migrated schema (`serve` migrates: the later migrations are no reason to stop).
    // Releases up to d9aca44 refuse ("previously applied but is missing") once this build adds a
    // migration: then name a later release in tests/upgrade/PREVIOUS_RELEASE.
    let mut restarted = serve("previous-restarted", Some(previous.clone()), free_port());
    restarted.start();
    restarted.ready().await;
    restarted.stop().await;
    let late_text = "written by the previous release after the migration";
    let late = ann.at(&format!("http://127.0.0.1:{old_port}")).comment(&video, late_text).await;

    // This build starts beside it: both behind the balancer, both answering the journeys.
    new.start();
    new.ready().await;
    let (old_before, new_before) = (old.answered("/comments"), new.answered("/comments"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while old.answered("/comments") <= old_before || new.answered("/comments") <= new_before {
        assert!(Instant::now() < deadline, "both releases never answered the journeys side by side");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rounds_go_on(&rounds, 4, "with both releases behind the balancer").await;
    // What the previous release made, this build serves: the sessions, the video, the comments.
    let straight = ann.at(&format!("http://127.0.0.1:{new_port}"));
    let me = straight.get("who am I", "/api/v1/me").await;
    assert_eq!((me.status, me.json()["username"].as_str()), (StatusCode::OK, Some("ann")), "ann's session");
    let v = straight.watch(&video, true).await;
    assert_eq!(
        (v["state"].as_str(), v["title"].as_str()),
        (Some("ready"), Some("Made by the previous release")),
        "{v}"
    );
    let comments = all_comments(&straight, &video).await;
    for (id, text) in [(&first, "written by the previous release"), (&late, late_text)] {
        assert!(comments.iter().any(|(i, t)| i == id && t == text), "{text:?} is served by this build");
    }

    // The previous release stops, as an operator or an orchestrator stops it; this build serves
    // alone.
    old.stop().await;
    let new_before = new.answered("/comments");
    rounds_go_on(&rounds, 4, "with this build alone").await;
    assert!(new.answered("/comments") > new_before, "this build served the journeys alone");
    stop.store(true, Ordering::SeqCst);
    for t in traffic {
        t.await.expect("a journey failed");
    }

    // Nothing written was lost, and nothing was retried.
    let comments = all_comments(&straight, &video).await;
    let written = written.lock().expect("written").clone();
    for (id, text) in &written {
        assert!(comments.iter().any(|(i, t)| i == id && t == text), "comment {id} {text:?} is kept");
    }
    let retried = retries.lock().expect("retries").clone();
    assert!(retried.is_empty(), "journey requests were retried: {retried:?}");
    eprintln!(
        "upgrade ({stack:?}): schema {} → {} migrations, {} rounds, {} comments kept, {:.1} s",
        old_schema.len(),
        new_schema.len(),
        rounds.load(Ordering::SeqCst),
        written.len(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_release_to_this_build_on_sqlite() {
    upgrade_with_no_downtime(Stack::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previous_release_to_this_build_on_postgres_and_redis() {
    upgrade_with_no_downtime(Stack::External).await;
}

/// A version no release has (migrations are numbered by their time: this is the last second of
/// 9999).
const LATER_RELEASE_MIGRATION: i64 = 99_991_231_235_959;

on_both_stacks! {
    // This build is the previous release of the next upgrade: on a schema one migration ahead of
    // it (a later release's `migrate` ran while it was serving), it starts again — a replica
    // restarting mid-upgrade, or a roll back — and serves, and its own `migrate` changes nothing.
    async fn this_build_starts_on_a_schema_newer_than_it_knows(app) {
        let sql = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                   VALUES ($1, 'a later release', TRUE, $2, 1)";
        let checksum = vec![0u8; 48];
        match &app.db {
            Db::Sqlite(pool) => sqlx::query(sql).bind(LATER_RELEASE_MIGRATION).bind(checksum).execute(pool).await.map(|r| r.rows_affected()),
            Db::Postgres(pool) => sqlx::query(sql).bind(LATER_RELEASE_MIGRATION).bind(checksum).execute(pool).await.map(|r| r.rows_affected()),
        }
        .expect("a later release's migration recorded");
        let mut env = vec![("TURTLEMEN_DATA_DIR".to_owned(), app.data_dir.display().to_string())];
        if let Some(url) = &app.settings.database_url {
            env.push(("TURTLEMEN_DATABASE_URL".to_owned(), url.clone()));
        }
        let (code, _, err) = cli(None, &["migrate"], "", &env).await;
        assert_eq!(code, 0, "migrate on a newer schema: {err}");
        let app = app.restart().await;
        assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
        let home = app.get_page("/").await;
        assert_eq!(home.status(), StatusCode::OK);
        let url = app.settings.database_url.clone();
        let url = url.unwrap_or_else(|| format!("sqlite://{}/turtlemen.db", app.data_dir.display()));
        assert!(applied_migrations(&url).await.contains(&LATER_RELEASE_MIGRATION), "the later migration is kept");
    }
}
