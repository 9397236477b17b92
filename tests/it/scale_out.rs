//! The multi-replica test: every role twice, each its own `turtlemen` process (the built
//! binary), on loopback behind HAProxy (round-robin over the two gateways), on PostgreSQL, Redis
//! and moto's S3 server. People sign in, comment and watch while one replica of each role in
//! turn — gateway, auth, API, worker — is killed with SIGKILL (`kill -9`) and started again; a
//! clip is uploaded with a break and resumed on the other API replica (the one that took the
//! first part is the API replica killed). Every request may be retried once by its client, as a
//! browser or app would, when a kill caught it in flight; a second failure fails the test, and so
//! does any 503 (a request refused for a dead replica while the other is up). Afterwards nothing
//! written is missing and the transcode finished exactly once (one job, taken up again once after
//! the kill, its renditions stored once).
//!
//! Runs on the external stack only (it is the scaled-out deployment): skipped without
//! `TURTLEMEN_TEST_POSTGRES_URL` / `TURTLEMEN_TEST_REDIS_URL`, unless the run requires them.

use crate::channels::publish_in;
use crate::cluster::{Person, Replica, free_port, list_keys, rounds_go_on, s3_env, start_haproxy, start_moto};
use crate::helpers::{PgSchema, external_urls};
use crate::uploads::metadata;
use crate::videos::clip;
use reqwest::StatusCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A cookie secret every role shares (at least 32 characters).
const COOKIE_SECRET: &str = "one cookie secret for every replica of the scale-out test";

/// The comments answered 201: (id, text).
type Written = Arc<Mutex<Vec<(String, String)>>>;

/// Two people watching and commenting on `video` until `stop`, each round counted in `rounds`.
fn background(
    people: Vec<Person>,
    video: String,
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicUsize>,
    written: Written,
) -> Vec<tokio::task::JoinHandle<()>> {
    people
        .into_iter()
        .map(|p| {
            let (video, stop, rounds, written) = (video.clone(), stop.clone(), rounds.clone(), written.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    p.watch(&video, false).await;
                    let text = format!("{} says {n}", p.name);
                    let id = p.comment(&video, &text).await;
                    written.lock().expect("written").push((id, text));
                    let list = p.get("the comments", &format!("/api/v1/videos/{video}/comments")).await;
                    assert_eq!(list.status, StatusCode::OK);
                    rounds.fetch_add(1, Ordering::SeqCst);
                    // A person's pace between rounds.
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
            })
        })
        .collect()
}

/// Several people commenting at once right after a kill: several requests with bodies meet
/// the dead replica before any gateway has marked it down.
async fn burst(people: &[Person], video: &str, label: &str, written: &Written) {
    let sends = people.iter().flat_map(|p| (0..3).map(move |i| (p, i))).map(|(p, i)| {
        let text = format!("{} during {label} {i}", p.name);
        async move { (p.comment(video, &text).await, text) }
    });
    let done = futures::future::join_all(sends).await;
    written.lock().expect("written").extend(done);
}

/// Kills `replica` and starts it again once, meanwhile, people have commented all at once,
/// `newcomer` has signed in and the background journeys have gone on.
async fn while_down(
    replica: &mut Replica,
    newcomer: &Person,
    (people, talk, written, rounds): (&[Person], &str, &Written, &AtomicUsize),
) {
    replica.kill();
    burst(people, talk, &format!("the {} kill", replica.name), written).await;
    newcomer.sign_in().await;
    rounds_go_on(rounds, 4, &format!("with {} down", replica.name)).await;
    replica.start();
    replica.ready().await;
    rounds_go_on(rounds, 4, &format!("after {} came back", replica.name)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_twice_survives_a_kill_of_each() {
    let Some((pg, redis)) = external_urls() else { return };
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("temp dir");
    let schema = PgSchema::create(&pg).await;
    // A Redis database of its own, away from the default one other tests and servers use (the
    // roles' key prefix is fixed).
    let redis = format!("{}/{}", redis.trim_end_matches('/'), 1 + uuid::Uuid::new_v4().as_bytes()[0] % 15);
    let (_moto, s3) = start_moto().await;
    let clip_file = clip(tmp.path(), "clip.mp4", "640x360", 12);
    let (lb, gateway_ports, auth_ports, api_ports, worker_ports) = (
        free_port(),
        [free_port(), free_port()],
        [free_port(), free_port()],
        [free_port(), free_port()],
        [free_port(), free_port()],
    );
    let urls = |ports: &[u16; 2]| ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect::<Vec<_>>().join(",");
    let public_url = format!("http://127.0.0.1:{lb}");
    let common: Vec<(String, String)> = [
        ("TURTLEMEN_DATABASE_URL", schema.url()),
        ("TURTLEMEN_DATABASE_MAX_CONNECTIONS", "4".into()),
        ("TURTLEMEN_SESSION_URL", redis),
        ("TURTLEMEN_PUBLIC_URL", public_url.clone()),
        ("TURTLEMEN_COOKIE_SECRET", COOKIE_SECRET.into()),
        // HAProxy in front of the gateways, the gateways in front of auth and API: all loopback.
        ("TURTLEMEN_TRUSTED_PROXIES", "127.0.0.1".into()),
        ("TURTLEMEN_UPSTREAM_AUTH", urls(&auth_ports)),
        ("TURTLEMEN_UPSTREAM_API", urls(&api_ports)),
        ("TURTLEMEN_FIRST_USER_ADMIN", "false".into()),
        // The people here comment several times a minute; the limit has its own tests.
        ("TURTLEMEN_COMMENTS_PER_MINUTE", "0".into()),
        // `served` lines name each request's id: which replica took a request is read there.
        ("TURTLEMEN_LOG_LEVEL", "info".into()),
    ]
    .into_iter()
    .chain(s3_env(&s3))
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let replica = |name: &str, role: &str, port: u16| {
        let mut args = vec![role.to_string()];
        let mut env = common.clone();
        if role == "worker" {
            args.extend(["--health-listen".into(), format!("127.0.0.1:{port}"), "--lease-secs".into(), "15".into()]);
        } else {
            env.push(("TURTLEMEN_LISTEN".into(), format!("127.0.0.1:{port}")));
        }
        Replica {
            name: name.into(),
            program: None,
            args,
            env,
            port,
            data_dir: tmp.path().join(name),
            log: tmp.path().join(format!("{name}.log")),
            child: None,
        }
    };

    // As an operator would: migrate once, then start the roles, both auth replicas at once on a
    // database without signing keys (one replica's first key wins; both sign with it).
    let (code, _, err) = crate::helpers::run_cli(
        &["migrate"],
        "",
        &common.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(),
    );
    assert_eq!(code, 0, "migrate: {err}");
    let mut auth = [replica("auth-1", "auth", auth_ports[0]), replica("auth-2", "auth", auth_ports[1])];
    let mut api = [replica("api-1", "api", api_ports[0]), replica("api-2", "api", api_ports[1])];
    let mut workers = [replica("worker-1", "worker", worker_ports[0]), replica("worker-2", "worker", worker_ports[1])];
    let mut gateways =
        [replica("gateway-1", "gateway", gateway_ports[0]), replica("gateway-2", "gateway", gateway_ports[1])];
    for r in auth.iter_mut().chain(api.iter_mut()).chain(workers.iter_mut()).chain(gateways.iter_mut()) {
        r.start();
    }
    for r in auth.iter_mut().chain(api.iter_mut()).chain(workers.iter_mut()).chain(gateways.iter_mut()) {
        r.ready().await;
    }
    let mut first_kids = Vec::new();
    for r in &auth {
        let url = format!("http://127.0.0.1:{}/auth/jwks", r.port);
        let set: serde_json::Value = reqwest::get(url).await.expect("the key set").json().await.expect("JSON");
        let keys = set["keys"].as_array().expect("keys");
        let es256 = keys.iter().find(|k| k["alg"] == "ES256").expect("an ES256 key");
        first_kids.push(es256["kid"].as_str().expect("a kid").to_string());
    }
    assert_eq!(first_kids[0], first_kids[1], "both auth replicas publish the key that won first");
    let _haproxy = start_haproxy(tmp.path(), lb, &gateway_ports).await;
    let db = turtlemen_db::Db::connect(&turtlemen_db::DbOptions {
        url: schema.url(),
        max_connections: 2,
        search_path: None,
        create_if_missing: false,
    })
    .await
    .expect("the test database");
    let names = ["ann", "bob", "cat", "dan", "eve"];
    for name in names {
        crate::helpers::create_account(&db, name, turtlemen_domain::Role::User).await;
    }
    eprintln!("scale-out: {} processes ready in {:.1} s", 9, started.elapsed().as_secs_f64());

    let retries = Arc::new(Mutex::new(Vec::new()));
    let [ann, bob, cat, dan, eve] = names.map(|n| Person::new(n, &public_url, &retries));
    for p in [&ann, &bob, &cat] {
        p.sign_in().await;
    }
    // A published video to talk about from the start (no media: the uploaded clip is the one
    // that is transcoded and played).
    let res = ann
        .send("create a video", |c| {
            c.post(ann.url("/api/v1/uploads"))
                .header("tus-resumable", "1.0.0")
                .header("upload-length", "1000")
                .header("upload-metadata", metadata(&[("filename", "a.mp4"), ("title", "Talk"), ("privacy", "public")]))
        })
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let talk = res.header("video-id");
    publish_in(&db, &talk).await;

    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let written: Written = Arc::new(Mutex::new(Vec::new()));
    let people = vec![bob.clone(), cat.clone()];
    let traffic = background(people.clone(), talk.clone(), stop.clone(), rounds.clone(), written.clone());
    rounds_go_on(&rounds, 4, "before any kill").await;

    // 1. A gateway: HAProxy sends everyone to the other. 2. An auth replica: sign-in forms and
    // code exchanges go to the other. A new person signs in while each is down.
    let talking = (&people[..], talk.as_str(), &written, &*rounds);
    while_down(&mut gateways[0], &dan, talking).await;
    while_down(&mut auth[0], &eve, talking).await;

    // 3. An API replica: the clip's first half is sent, then the upload breaks off (a client
    // put to sleep); the replica that took the first half is killed, and the upload resumes on
    // the other one.
    let bytes = std::fs::read(&clip_file).expect("the clip");
    let res = ann
        .send("create the upload", |c| {
            c.post(ann.url("/api/v1/uploads"))
                .header("tus-resumable", "1.0.0")
                .header("upload-length", bytes.len().to_string())
                .header(
                    "upload-metadata",
                    metadata(&[("filename", "clip.mp4"), ("title", "Scaled out"), ("privacy", "public")]),
                )
        })
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&res.body));
    let (upload, video) = (ann.url(&res.header("location")), res.header("video-id"));
    let half = bytes.len() / 2;
    let first_part = format!("first-part-{}", uuid::Uuid::new_v4().simple());
    let patch = |c: &reqwest::Client, offset: usize, id: &str| {
        c.patch(&upload)
            .header("tus-resumable", "1.0.0")
            .header("upload-offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .header("x-request-id", id)
    };
    let res = ann.send("the first half", |c| patch(c, 0, &first_part).body(bytes[..half].to_vec())).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", String::from_utf8_lossy(&res.body));
    let deadline = Instant::now() + Duration::from_secs(20);
    let took = loop {
        if let Some(i) = (0..2).find(|&i| api[i].served(&first_part)) {
            break i;
        }
        assert!(Instant::now() < deadline, "no API replica answered the first part");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let other = 1 - took;
    api[took].kill();
    burst(&people, &talk, "the API kill", &written).await;
    let tus_head = |c: &reqwest::Client| c.head(&upload).header("tus-resumable", "1.0.0");
    let offset: usize =
        ann.send("the upload's offset", tus_head).await.header("upload-offset").parse().expect("an offset");
    assert_eq!(offset, half, "the first half is kept");
    let second_part = format!("second-part-{}", uuid::Uuid::new_v4().simple());
    let res = ann.send("the second half", |c| patch(c, half, &second_part).body(bytes[half..].to_vec())).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(res.header("upload-offset"), bytes.len().to_string());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !api[other].served(&second_part) {
        assert!(Instant::now() < deadline, "the resumed part was not answered by the other API replica");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pool = pool(&schema).await;
    // 4. A worker: the transcode of the clip starts now, as the killed API replica comes back.
    // The worker running it is killed mid-transcode and started again on its own data dir,
    // where it finds its dead predecessor's lease and takes the job up at once.
    let api_back = async {
        rounds_go_on(&rounds, 4, "with an API replica down").await;
        api[took].start();
        api[took].ready().await;
    };
    let transcoding = async {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let running: Option<(Option<uuid::Uuid>,)> = sqlx::query_as(
                "SELECT lease_owner FROM jobs WHERE kind = 'transcode' AND state = 'running' AND payload LIKE $1",
            )
            .bind(format!("%{video}%"))
            .fetch_optional(&pool)
            .await
            .expect("jobs");
            let v = ann.get("the video's progress", &format!("/api/v1/videos/{video}")).await.json();
            assert_eq!(v["state"], "processing", "the transcode ended before the worker kill: {v}");
            if let (Some((Some(owner),)), true) = (running, v["progress"].as_u64().unwrap_or(0) >= 1) {
                let holder = (0..2)
                    .find(|&i| {
                        std::fs::read_to_string(workers[i].data_dir.join("workers/slot-0"))
                            .is_ok_and(|id| id.trim() == owner.hyphenated().to_string())
                    })
                    .expect("the worker holding the lease");
                workers[holder].kill();
                break holder;
            }
            assert!(Instant::now() < deadline, "no worker started the transcode: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let ((), holder) = tokio::join!(api_back, transcoding);
    workers[holder].start();
    workers[holder].ready().await;
    let deadline = Instant::now() + Duration::from_secs(180);
    let v = loop {
        let v = ann.watch(&video, true).await;
        if v["state"] != "processing" {
            break v;
        }
        assert!(Instant::now() < deadline, "the transcode never finished: {v}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(v["state"], "ready", "{v}");
    stop.store(true, Ordering::SeqCst);
    for t in traffic {
        t.await.expect("a background journey failed");
    }
    // Everyone watches the clip through the load balancer, all replicas up again.
    for p in [&bob, &cat, &dan, &eve] {
        let v = p.watch(&video, true).await;
        assert_eq!(v["state"], "ready");
    }

    // Nothing written was lost: every comment answered 201 is there with its text, and a
    // comment is there twice only if its request was retried (its first answer lost).
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT id::text, body FROM comments WHERE video_id = $1::uuid AND status = 'visible'")
            .bind(&talk)
            .fetch_all(&pool)
            .await
            .expect("comments");
    let written = written.lock().expect("written").clone();
    let retried = retries.lock().expect("retries").clone();
    for (id, text) in &written {
        assert!(stored.iter().any(|(i, t)| i == id && t == text), "comment {id} {text:?} is kept");
        let copies = stored.iter().filter(|(_, t)| t == text).count();
        assert!(copies == 1 || retried.iter().any(|r| r.contains(&format!("{text:?}"))), "{text:?} {copies} times");
    }
    // The original is the clip, byte for byte; its staging is gone.
    let original = reqwest::get(format!("{s3}/media/videos/{video}/original")).await.expect("moto answers");
    assert_eq!(original.status(), StatusCode::OK);
    assert!(original.bytes().await.expect("the original") == bytes, "the original is the clip sent");
    let upload_id = upload.rsplit('/').next().expect("an upload id");
    assert!(list_keys(&s3, &format!("uploads/{upload_id}")).await.is_empty(), "the staged parts are gone");
    // Exactly once: one transcode job for the video, which succeeded on its second attempt
    // (the first died with its worker); each rendition once, its segments as its playlist lists.
    let jobs: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, attempts FROM jobs WHERE kind = 'transcode' AND payload LIKE $1")
            .bind(format!("%{video}%"))
            .fetch_all(&pool)
            .await
            .expect("jobs");
    assert_eq!(jobs, vec![("succeeded".to_string(), 2)], "one transcode, finished once");
    let renditions: Vec<String> = v["renditions"]
        .as_array()
        .expect("renditions")
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!renditions.is_empty());
    let mut unique = renditions.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), renditions.len(), "each rendition once: {renditions:?}");
    let keys = list_keys(&s3, &format!("videos/{video}/hls/")).await;
    let hls_base = v["hls_url"].as_str().expect("an HLS URL").trim_end_matches("master.m3u8");
    for name in &renditions {
        let res = bob.get("a rendition's playlist", &format!("{hls_base}{name}/playlist.m3u8")).await;
        assert_eq!(res.status, StatusCode::OK);
        let playlist = String::from_utf8_lossy(&res.body);
        let listed = playlist.lines().filter(|l| l.ends_with(".m4s")).count();
        let stored = keys.iter().filter(|k| k.contains(&format!("/hls/{name}/")) && k.ends_with(".m4s")).count();
        assert!(listed > 0 && listed == stored, "{name}: {listed} listed, {stored} stored: {keys:?}");
        assert!(playlist.contains("#EXT-X-ENDLIST"));
    }
    eprintln!(
        "scale-out: {} comments kept, {} client retries ({:?}), {:.1} s in all",
        written.len(),
        retried.len(),
        retried,
        started.elapsed().as_secs_f64()
    );
}

async fn pool(schema: &PgSchema) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&schema.url()).await.expect("the test database")
}
